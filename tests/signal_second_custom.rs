//! A custom second-signal action: the first SIGINT triggers the shutdown, every later
//! one calls the action and the process keeps running.
//!
//! Signal handlers are process-wide, so this binary holds this one scenario.

#![cfg(all(unix, feature = "smol", feature = "signal"))]

mod common;

use std::sync::mpsc::TryRecvError;

use common::signals::{first_sigint_triggers, watch_reporting_later_signals};
use common::{kill_self, LIMIT};
use smol_graceful::signal::Signal;
use smol_graceful::{Reason, Shutdown};

#[test]
fn second_sigint_calls_the_custom_action_instead_of_exiting() {
    let shutdown = Shutdown::new();
    let seen_rx = watch_reporting_later_signals(&shutdown);

    // First SIGINT: the shutdown, not the action.
    first_sigint_triggers(&shutdown);
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
