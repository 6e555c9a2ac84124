//! A logger that panics on every record (as a logger does whose `eprintln!` hits a full
//! disk or a dead log pipe) does not stop signal handling: the first SIGINT still
//! triggers the shutdown, and every later one still reaches the second-signal action.
//!
//! Signal handlers are process-wide, so this binary holds this one scenario.

#![cfg(all(unix, feature = "smol", feature = "signal"))]

mod common;

use std::sync::mpsc::{self, Sender};
use std::sync::Mutex;

use common::signals::{first_sigint_triggers, watch_reporting_later_signals};
use common::{kill_self, LIMIT};
use smol_graceful::signal::Signal;
use smol_graceful::{Reason, Shutdown};

/// A `log` backend that reports each record's text on a channel, then panics.
struct PanickingLogger {
    records: Mutex<Sender<String>>,
}

impl log::Log for PanickingLogger {
    fn enabled(&self, _: &log::Metadata<'_>) -> bool {
        true
    }

    fn log(&self, record: &log::Record<'_>) {
        let text = record.args().to_string();
        let _ = self.records.lock().unwrap().send(text.clone());
        panic!("the logger cannot write {text:?}");
    }

    fn flush(&self) {}
}

#[test]
fn a_panicking_logger_does_not_stop_signal_handling() {
    let (records_tx, records) = mpsc::channel();
    let logger = Box::leak(Box::new(PanickingLogger {
        records: Mutex::new(records_tx),
    }));
    log::set_logger(logger).expect("the only logger of this binary");
    log::set_max_level(log::LevelFilter::Trace);

    let shutdown = Shutdown::new();
    let seen = watch_reporting_later_signals(&shutdown);

    // The first SIGINT triggers the shutdown, whatever the logger does with the record.
    first_sigint_triggers(&shutdown);
    // The record was offered to the logger (which panicked on it).
    let first = records
        .recv_timeout(LIMIT)
        .expect("the first signal is logged");
    assert!(first.contains("SIGINT") || first.contains("Int"), "{first}");

    // Later signals are still read and handled, each one logged (and panicked on).
    for round in 0..3 {
        kill_self("INT");
        assert_eq!(seen.recv_timeout(LIMIT), Ok(Signal::Int), "round {round}");
        records
            .recv_timeout(LIMIT)
            .unwrap_or_else(|e| panic!("round {round}: no record: {e}"));
    }
    assert!(matches!(shutdown.reason(), Some(Reason::Signal(2))));
}
