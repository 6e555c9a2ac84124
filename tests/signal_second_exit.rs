//! The default second-signal action: exit at once with 128 + signo.
//!
//! The exit would end the test runner, so the scenario runs in a child process: this
//! test binary re-runs itself with [`CHILD`] set and `--exact` this test. The child
//! installs `signal::watch`, says it is ready, and blocks (at most 30 s); the parent
//! sends SIGTERM, waits for the child to report the trigger, sends SIGTERM again and
//! expects exit status 143 (128 + 15) within 3 s. The child is killed on any failure.

#![cfg(all(unix, feature = "smol", feature = "signal"))]

mod common;

use std::io::Write;
use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

use common::subprocess::Process;
use smol::Timer;
use smol_graceful::{signal, Shutdown};

/// Set in the child's environment: run the child side of the scenario.
const CHILD: &str = "SMOL_GRACEFUL_SECOND_EXIT_CHILD";
/// This test's name, for `--exact`.
const TEST: &str = "second_sigterm_exits_at_once_with_143";
/// How long any step of the parent may take before the test gives up.
const STEP: Duration = Duration::from_secs(10);
/// How fast the second SIGTERM must end the child.
const EXIT_LIMIT: Duration = Duration::from_secs(3);

#[test]
fn second_sigterm_exits_at_once_with_143() {
    if std::env::var_os(CHILD).is_some() {
        child();
    } else {
        parent();
    }
}

/// The child side: watch signals and wait to be killed by the second one.
fn child() {
    if log::set_logger(&StderrLogger).is_ok() {
        log::set_max_level(log::LevelFilter::Info);
    }
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

/// The parent side.
fn parent() {
    // The test runner may print `test NAME ... ` on the same line before the child's
    // output, so the lines are matched by what they contain.
    let mut child = Process::spawn(
        Command::new(std::env::current_exe().expect("current_exe"))
            .args(["--exact", TEST, "--nocapture", "--test-threads=1"])
            .env(CHILD, "1"),
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
    // The library said why before it exited (and flushed the logger).
    assert!(stderr.contains("143"), "stderr: {stderr}");
}
