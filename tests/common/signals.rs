//! The in-process signal scenarios' shared steps. Signal handlers are process-wide, so
//! each scenario is a test binary of its own; these are the steps they share.

use std::sync::mpsc::{self, Receiver};

use smol_graceful::signal::{Builder, Signal};
use smol_graceful::{Reason, Shutdown};

use super::{kill_self, run_bounded};

/// Installs the signal handlers for `shutdown`, with a second-signal action that sends
/// each later signal on the returned channel, and runs the watcher (detached) on smol's
/// global executor.
pub fn watch_reporting_later_signals(shutdown: &Shutdown) -> Receiver<Signal> {
    let (seen_tx, seen) = mpsc::channel();
    let watcher = Builder::new()
        .on_second_signal(move |signal| {
            let _ = seen_tx.send(signal);
        })
        .watch(shutdown)
        .expect("install the signal handlers");
    smol::spawn(watcher).detach();
    seen
}

/// Sends SIGINT to this process and waits (bounded) for it to trigger `shutdown`, which
/// must then give SIGINT as its reason.
#[track_caller]
pub fn first_sigint_triggers(shutdown: &Shutdown) {
    kill_self("INT");
    run_bounded(shutdown.triggered());
    let reason = shutdown.reason();
    assert!(
        matches!(reason, Some(Reason::Signal(2))),
        "reason: {reason:?}"
    );
}
