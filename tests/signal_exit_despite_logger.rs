//! The default second-signal action, exit at once with 128 + signo, happens whatever the
//! logger does: a logger that never returns (a stalled log pipe) or one that panics on
//! every record (`2>/dev/full`) can neither prevent the exit nor hold it for long.
//!
//! Each scenario (`common::second_signal`) runs in a child process, this test binary
//! re-run with its role set to the logger to install: [`STUCK`], [`STUCK_DEBUG`] or
//! [`PANICKING`]. The child installs that logger and `signal::watch`; the parent sends
//! SIGTERM twice and expects exit status 143 (128 + 15) within 3 s.

#![cfg(all(unix, feature = "smol", feature = "signal"))]

mod common;

use std::thread;

use common::second_signal::{child_waits_for_the_second_signal, second_sigterm_exits_with_143};
use common::subprocess::child_role;

/// A logger that never returns, enabled at info level (a service's usual level).
const STUCK: &str = "stuck";
/// The same, enabled at debug level.
const STUCK_DEBUG: &str = "stuck-debug";
/// A logger that panics on every record, enabled at every level.
const PANICKING: &str = "panicking";

#[test]
fn second_sigterm_exits_with_143_while_the_logger_is_stuck() {
    if let Some(logger) = child_role() {
        child(&logger);
    }
    second_sigterm_exits_with_143(
        "second_sigterm_exits_with_143_while_the_logger_is_stuck",
        STUCK,
    );
}

/// At debug level too: the watcher triggers without `trigger_with`'s own log line
/// (which would run in place, on the watcher's task), so a stuck debug-level logger
/// cannot hold the watcher after the first signal.
#[test]
fn second_sigterm_exits_with_143_while_a_debug_level_logger_is_stuck() {
    if let Some(logger) = child_role() {
        child(&logger);
    }
    second_sigterm_exits_with_143(
        "second_sigterm_exits_with_143_while_a_debug_level_logger_is_stuck",
        STUCK_DEBUG,
    );
}

#[test]
fn second_sigterm_exits_with_143_while_the_logger_panics() {
    if let Some(logger) = child_role() {
        child(&logger);
    }
    second_sigterm_exits_with_143(
        "second_sigterm_exits_with_143_while_the_logger_panics",
        PANICKING,
    );
}

/// A `log` backend that never returns from `log`.
struct StuckLogger;

impl log::Log for StuckLogger {
    fn enabled(&self, _: &log::Metadata<'_>) -> bool {
        true
    }

    fn log(&self, _: &log::Record<'_>) {
        loop {
            thread::park();
        }
    }

    fn flush(&self) {
        loop {
            thread::park();
        }
    }
}

/// A `log` backend that panics in `log` and `flush`.
struct PanickingLogger;

impl log::Log for PanickingLogger {
    fn enabled(&self, _: &log::Metadata<'_>) -> bool {
        true
    }

    fn log(&self, record: &log::Record<'_>) {
        panic!("the logger cannot write {:?}", record.args().to_string());
    }

    fn flush(&self) {
        panic!("the logger cannot flush");
    }
}

/// The child side: install `logger`, then watch signals and wait to be ended by the
/// second.
fn child(logger: &str) -> ! {
    let (logger, level): (&'static dyn log::Log, _) = match logger {
        STUCK => (&StuckLogger, log::LevelFilter::Info),
        STUCK_DEBUG => (&StuckLogger, log::LevelFilter::Debug),
        PANICKING => (&PanickingLogger, log::LevelFilter::Trace),
        other => panic!("child: unknown logger {other:?}"),
    };
    log::set_logger(logger).expect("child: the only logger");
    log::set_max_level(level);
    child_waits_for_the_second_signal()
}
