//! The default second-signal action, exit at once with 128 + signo, happens whatever the
//! logger does: a logger that never returns (a stalled log pipe) or one that panics on
//! every record (`2>/dev/full`) can neither prevent the exit nor hold it for long.
//!
//! The exit would end the test runner, so each scenario runs in a child process: this
//! test binary re-runs itself with [`CHILD`] set to the logger to install and `--exact`
//! the test. The child installs that logger and `signal::watch`, says it is ready, and
//! waits (at most 30 s); the parent sends SIGTERM, waits for the child to report the
//! trigger, sends SIGTERM again and expects exit status 143 (128 + 15) within
//! [`EXIT_LIMIT`]. The child is killed on any failure.

#![cfg(all(unix, feature = "smol", feature = "signal"))]

mod common;

use std::io::Write;
use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

use common::subprocess::Process;
use smol::Timer;
use smol_graceful::{signal, Shutdown};

/// Set in the child's environment to the logger it installs: [`STUCK`], [`STUCK_DEBUG`]
/// or [`PANICKING`].
const CHILD: &str = "SMOL_GRACEFUL_EXIT_DESPITE_LOGGER_CHILD";
/// A logger that never returns, enabled at info level (a service's usual level).
const STUCK: &str = "stuck";
/// The same, enabled at debug level.
const STUCK_DEBUG: &str = "stuck-debug";
/// A logger that panics on every record, enabled at every level.
const PANICKING: &str = "panicking";
/// How long any step of the parent may take before the test gives up.
const STEP: Duration = Duration::from_secs(10);
/// How fast the second SIGTERM must end the child.
const EXIT_LIMIT: Duration = Duration::from_secs(3);

#[test]
fn second_sigterm_exits_with_143_while_the_logger_is_stuck() {
    match std::env::var(CHILD) {
        Ok(logger) => child(&logger),
        Err(_) => parent(
            STUCK,
            "second_sigterm_exits_with_143_while_the_logger_is_stuck",
        ),
    }
}

/// At debug level too: the watcher triggers without `trigger_with`'s own log line
/// (which would run in place, on the watcher's task), so a stuck debug-level logger
/// cannot hold the watcher after the first signal.
#[test]
fn second_sigterm_exits_with_143_while_a_debug_level_logger_is_stuck() {
    match std::env::var(CHILD) {
        Ok(logger) => child(&logger),
        Err(_) => parent(
            STUCK_DEBUG,
            "second_sigterm_exits_with_143_while_a_debug_level_logger_is_stuck",
        ),
    }
}

#[test]
fn second_sigterm_exits_with_143_while_the_logger_panics() {
    match std::env::var(CHILD) {
        Ok(logger) => child(&logger),
        Err(_) => parent(
            PANICKING,
            "second_sigterm_exits_with_143_while_the_logger_panics",
        ),
    }
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

/// The child side: install `logger`, watch signals and wait to be ended by the second.
fn child(logger: &str) {
    let (logger, level): (&'static dyn log::Log, _) = match logger {
        STUCK => (&StuckLogger, log::LevelFilter::Info),
        STUCK_DEBUG => (&StuckLogger, log::LevelFilter::Debug),
        PANICKING => (&PanickingLogger, log::LevelFilter::Trace),
        other => panic!("child: unknown logger {other:?}"),
    };
    log::set_logger(logger).expect("child: the only logger");
    log::set_max_level(level);
    let shutdown = Shutdown::new();
    let watcher = signal::watch(&shutdown).expect("install the signal handlers");
    smol::spawn(watcher).detach();
    say("child: ready");

    let triggered = smol::block_on(smol::future::or(
        async {
            shutdown.triggered().await;
            true
        },
        async {
            Timer::after(Duration::from_secs(30)).await;
            false
        },
    ));
    assert!(triggered, "child: no signal within 30 s");
    say(&format!(
        "child: triggered by {}",
        shutdown.reason().unwrap()
    ));

    // The second signal ends the process from the watcher's thread; if it never
    // comes, give up after 30 s (the parent fails long before).
    thread::sleep(Duration::from_secs(30));
    panic!("child: still alive 30 s after the trigger");
}

/// Prints `line` on stdout and flushes it, so the parent sees it at once.
fn say(line: &str) {
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "{line}").unwrap();
    stdout.flush().unwrap();
}

/// The parent side: run `test` in a child with `logger`, and signal it twice.
fn parent(logger: &str, test: &str) {
    // The test runner may print `test NAME ... ` on the same line before the child's
    // output, so the lines are matched by what they contain.
    let mut child = Process::spawn(
        Command::new(std::env::current_exe().expect("current_exe"))
            .args(["--exact", test, "--nocapture", "--test-threads=1"])
            .env(CHILD, logger),
        STEP,
    );
    child.expect_line_containing("child: ready");

    child.signal("TERM");
    let line = child.expect_line_containing("child: triggered by");
    assert!(line.contains("signal SIGTERM"), "{line}");

    let signalled = Instant::now();
    child.signal("TERM");
    let status = child.wait_exit(EXIT_LIMIT);
    let elapsed = signalled.elapsed();
    let stderr = child.stderr();
    assert!(elapsed < EXIT_LIMIT, "exit took {elapsed:?}");
    assert_eq!(
        status.code(),
        Some(143),
        "status {status}; stderr: {stderr}"
    );
}
