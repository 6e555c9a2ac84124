//! A logger that panics, and an error whose `Display` panics, cannot make
//! `trigger_with` panic: the trigger is complete before it logs. Its own
//! binary, because the logger is process-wide.

use std::fmt;

use smol_graceful::{Reason, Shutdown};

struct PanickingLogger;

impl log::Log for PanickingLogger {
    fn enabled(&self, _: &log::Metadata<'_>) -> bool {
        true
    }
    fn log(&self, record: &log::Record<'_>) {
        // Formats first (where a panicking `Display` panics), then fails
        // as a logger on a dead pipe would.
        let line = record.args().to_string();
        panic!("logger failed on a line of {} bytes", line.len());
    }
    fn flush(&self) {}
}

#[derive(Debug)]
struct BadDisplay;

impl fmt::Display for BadDisplay {
    fn fmt(&self, _: &mut fmt::Formatter<'_>) -> fmt::Result {
        panic!("Display of BadDisplay");
    }
}

impl std::error::Error for BadDisplay {}

#[test]
fn a_panicking_logger_or_display_does_not_escape_trigger_with() {
    log::set_logger(&PanickingLogger).unwrap();
    log::set_max_level(log::LevelFilter::Trace);
    std::panic::set_hook(Box::new(|_| {})); // the planned panics stay quiet

    let root = Shutdown::new();
    let child = root.child();
    assert!(root.trigger_with(Reason::error(BadDisplay)));
    assert!(child.is_triggered());

    let other = Shutdown::new();
    assert!(other.trigger());
    assert!(!other.trigger());
}
