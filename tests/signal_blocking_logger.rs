//! A logger that blocks forever (as one does that writes to a pipe whose reader stalled)
//! does not stop signal handling: the shutdown is triggered before anything is logged,
//! and later signals still reach the second-signal action while the logger is stuck.
//!
//! The logger is enabled at info level, the usual level of a service. (The watcher
//! triggers without `Shutdown::trigger_with`'s own debug-level log line, so a stuck
//! debug-level logger cannot hold it either: `tests/signal_exit_despite_logger.rs`
//! checks that.)
//!
//! Signal handlers are process-wide, so this binary holds this one scenario.

#![cfg(all(unix, feature = "smol", feature = "signal"))]

mod common;

use std::process::Command;
use std::sync::mpsc::{self, Sender};
use std::sync::{Mutex, OnceLock};
use std::thread;

use common::signals::{first_sigint_triggers, watch_reporting_later_signals};
use common::{kill_self, LIMIT};
use smol_graceful::signal::Signal;
use smol_graceful::Shutdown;

/// The watched shutdown, so that the logger can see whether it was triggered first.
static SHUTDOWN: OnceLock<Shutdown> = OnceLock::new();

/// A `log` backend that reports, for each record, whether the shutdown was already
/// triggered when it was called, and then never returns.
struct StuckLogger {
    calls: Mutex<Sender<bool>>,
}

impl log::Log for StuckLogger {
    fn enabled(&self, _: &log::Metadata<'_>) -> bool {
        true
    }

    fn log(&self, _: &log::Record<'_>) {
        let triggered = SHUTDOWN.get().is_some_and(Shutdown::is_triggered);
        let _ = self.calls.lock().unwrap().send(triggered);
        loop {
            thread::park();
        }
    }

    fn flush(&self) {}
}

#[test]
fn a_stuck_logger_does_not_stop_signal_handling() {
    let (calls_tx, calls) = mpsc::channel();
    let logger = Box::leak(Box::new(StuckLogger {
        calls: Mutex::new(calls_tx),
    }));
    log::set_logger(logger).expect("the only logger of this binary");
    log::set_max_level(log::LevelFilter::Info);

    let shutdown = SHUTDOWN.get_or_init(Shutdown::new);
    let seen = watch_reporting_later_signals(shutdown);

    first_sigint_triggers(shutdown);
    // The first record reached the logger after the trigger (and is stuck there).
    assert_eq!(calls.recv_timeout(LIMIT), Ok(true));

    // The stuck logger holds none of the later signals back.
    for round in 0..3 {
        kill_self("INT");
        assert_eq!(seen.recv_timeout(LIMIT), Ok(Signal::Int), "round {round}");
    }

    // Nor does a storm, whose records overflow the log thread's queue: 500 SIGINTs
    // (which the kernel may merge into as few as one), then one SIGTERM. A merged
    // SIGINT may still be pending when the SIGTERM comes, and two threads may handle
    // them in either order, so both are awaited in any order.
    let storm = format!(
        "for i in $(seq 500); do kill -INT {pid}; done; kill -TERM {pid}",
        pid = std::process::id()
    );
    let status = Command::new("sh")
        .args(["-c", &storm])
        .status()
        .expect("run sh");
    assert!(status.success(), "{storm}: {status}");
    let (mut ints, mut term) = (0, false);
    while ints == 0 || !term {
        match seen.recv_timeout(LIMIT) {
            Ok(Signal::Int) => ints += 1,
            Ok(Signal::Term) if !term => term = true,
            other => panic!("storm: {ints} SIGINTs, SIGTERM seen: {term}; then {other:?}"),
        }
    }
}
