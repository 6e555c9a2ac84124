//! The default second-signal action seen from outside, for the tests that check it under
//! different loggers. The exit would end the test runner, so the scenario runs in a child
//! process (this test binary, re-run by [`rerun_self`]): the child watches signals and
//! says it is ready; the parent sends SIGTERM, waits for the child to report the trigger,
//! sends SIGTERM again and expects exit status 143 (128 + 15) within [`EXIT_LIMIT`]. The
//! child is killed on any failure.

use std::io::Write;
use std::thread;
use std::time::{Duration, Instant};

use smol::Timer;
use smol_graceful::{signal, Shutdown};

use super::subprocess::rerun_self;

/// How long any step of the parent may take before the test gives up.
pub const STEP: Duration = Duration::from_secs(10);
/// How fast the second SIGTERM must end the child.
pub const EXIT_LIMIT: Duration = Duration::from_secs(3);
/// How long the child waits for each signal before it gives up (the parent fails long
/// before).
const CHILD_LIMIT: Duration = Duration::from_secs(30);

/// The child side, with its logger installed: watch signals, say `child: ready`, wait for
/// the trigger and say what triggered it, then wait to be ended by the second signal.
pub fn child_waits_for_the_second_signal() -> ! {
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
            Timer::after(CHILD_LIMIT).await;
            false
        },
    ));
    assert!(triggered, "child: no signal within {CHILD_LIMIT:?}");
    say(&format!(
        "child: triggered by {}",
        shutdown.reason().unwrap()
    ));

    // The second signal ends the process from the watcher's thread.
    thread::sleep(CHILD_LIMIT);
    panic!("child: still alive {CHILD_LIMIT:?} after the trigger");
}

/// Prints `line` on stdout and flushes it, so the parent sees it at once.
fn say(line: &str) {
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "{line}").unwrap();
    stdout.flush().unwrap();
}

/// The parent side: re-runs `test` as a child playing `role`, signals it twice and checks
/// that the second SIGTERM ends it with status 143 within [`EXIT_LIMIT`]. Returns what
/// the child wrote on stderr.
pub fn second_sigterm_exits_with_143(test: &str, role: &str) -> String {
    let mut child = rerun_self(test, role, STEP);
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
    stderr
}
