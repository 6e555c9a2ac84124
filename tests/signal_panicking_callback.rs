//! A second-signal action that panics does not stop signal handling: the panic is caught,
//! and the next signal calls the action again.
//!
//! SIGINT is used because, if the watcher died, a later SIGINT would be ignored (the test
//! then fails on a bounded wait) rather than kill the test process.
//!
//! Signal handlers are process-wide, so this binary holds this one scenario.

#![cfg(all(unix, feature = "smol", feature = "signal"))]

mod common;

use std::sync::mpsc;

use common::signals::first_sigint_triggers;
use common::{kill_self, LIMIT};
use smol_graceful::signal::{Builder, Signal};
use smol_graceful::{Reason, Shutdown};

/// A panic payload whose `Drop` panics too.
struct PanicsOnDrop;

impl Drop for PanicsOnDrop {
    fn drop(&mut self) {
        panic!("the panic payload fails to drop");
    }
}

#[test]
fn a_panicking_second_signal_action_is_called_again_on_the_third_signal() {
    let shutdown = Shutdown::new();
    let (seen_tx, seen) = mpsc::channel();
    let mut calls = 0;
    let watcher = Builder::new()
        .on_second_signal(move |signal| {
            calls += 1;
            let _ = seen_tx.send((calls, signal));
            match calls {
                1 => panic!("the second-signal action fails"),
                // A payload that panics again when it is dropped.
                2 => std::panic::panic_any(PanicsOnDrop),
                _ => {}
            }
        })
        .watch(&shutdown)
        .expect("install the signal handlers");
    smol::spawn(watcher).detach();

    first_sigint_triggers(&shutdown);

    // Second signal: the action runs and panics.
    kill_self("INT");
    assert_eq!(seen.recv_timeout(LIMIT), Ok((1, Signal::Int)));
    // Third signal: the watcher survived the panic and calls the action again (whose
    // state, `calls`, survived too); this time the panic's payload panics when dropped.
    kill_self("INT");
    assert_eq!(seen.recv_timeout(LIMIT), Ok((2, Signal::Int)));
    // Fourth: still handled.
    kill_self("INT");
    assert_eq!(seen.recv_timeout(LIMIT), Ok((3, Signal::Int)));
    assert!(matches!(shutdown.reason(), Some(Reason::Signal(2))));
}
