//! A custom second-signal action: the first SIGINT triggers the shutdown, every later
//! one calls the action and the process keeps running.
//!
//! Signal handlers are process-wide, so this binary holds this one scenario.

#![cfg(all(unix, feature = "smol", feature = "signal"))]

mod common;

use std::sync::mpsc::{self, TryRecvError};
use std::time::Duration;

use common::{kill_self, run_bounded};
use smol_graceful::signal::{Builder, Signal};
use smol_graceful::{Reason, Shutdown};

/// How long a signal may take to reach the watcher before the test fails (as long as
/// `run_bounded` waits).
const LIMIT: Duration = Duration::from_secs(5);

#[test]
fn second_sigint_calls_the_custom_action_instead_of_exiting() {
    let shutdown = Shutdown::new();
    let (seen_tx, seen_rx) = mpsc::channel();
    let watcher = Builder::new()
        .on_second_signal(move |signal| {
            let _ = seen_tx.send(signal);
        })
        .watch(&shutdown)
        .expect("install the signal handlers");
    smol::spawn(watcher).detach();

    // First SIGINT: the shutdown, not the action.
    kill_self("INT");
    run_bounded(shutdown.triggered());
    let reason = shutdown.reason();
    assert!(
        matches!(reason, Some(Reason::Signal(2))),
        "reason: {reason:?}"
    );
    assert_eq!(seen_rx.try_recv(), Err(TryRecvError::Empty));

    // Second SIGINT (sent only now, so the kernel cannot merge it with the first): the
    // action runs with the signal, and this process is still here to see it.
    kill_self("INT");
    assert_eq!(seen_rx.recv_timeout(LIMIT), Ok(Signal::Int));
    // The first signal's reason stays.
    assert!(matches!(shutdown.reason(), Some(Reason::Signal(2))));

    // Every later signal calls the action again, SIGTERM included.
    kill_self("TERM");
    assert_eq!(seen_rx.recv_timeout(LIMIT), Ok(Signal::Term));
    assert!(matches!(shutdown.reason(), Some(Reason::Signal(2))));
}
