//! The default second-signal action: exit at once with 128 + signo.
//!
//! The scenario (`common::second_signal`) runs in a child process, this test binary
//! re-run: the child installs a logger that writes to stderr and `signal::watch`; the
//! parent sends SIGTERM twice and expects exit status 143 (128 + 15) within 3 s, and
//! the library's log line saying why.

#![cfg(all(unix, feature = "smol", feature = "signal"))]

mod common;

use common::second_signal::{child_waits_for_the_second_signal, second_sigterm_exits_with_143};
use common::subprocess::child_role;

#[test]
fn second_sigterm_exits_at_once_with_143() {
    if child_role().is_some() {
        child();
    }
    let stderr = second_sigterm_exits_with_143("second_sigterm_exits_at_once_with_143", "child");
    // The library said why before it exited (and flushed the logger).
    assert!(stderr.contains("143"), "stderr: {stderr}");
}

/// The child side: the library's warnings go to stderr.
fn child() -> ! {
    if log::set_logger(&StderrLogger).is_ok() {
        log::set_max_level(log::LevelFilter::Info);
    }
    child_waits_for_the_second_signal()
}

/// A minimal `log` backend for the child: the library's warnings go to stderr.
struct StderrLogger;

impl log::Log for StderrLogger {
    fn enabled(&self, metadata: &log::Metadata<'_>) -> bool {
        metadata.level() <= log::max_level()
    }

    fn log(&self, record: &log::Record<'_>) {
        if self.enabled(record.metadata()) {
            eprintln!("[{}] {}", record.level(), record.args());
        }
    }

    fn flush(&self) {}
}
