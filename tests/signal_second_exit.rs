//! The default second-signal action: exit at once with 128 + signo.
//!
//! The exit would end the test runner, so the scenario runs in a child process: this
//! test binary re-runs itself with [`CHILD`] set and `--exact` this test. The child
//! installs `signal::watch`, says it is ready, and blocks (at most 30 s); the parent
//! sends SIGTERM, waits for the child to report the trigger, sends SIGTERM again and
//! expects exit status 143 (128 + 15) within 3 s. The child is killed on any failure.

#![cfg(all(unix, feature = "smol", feature = "signal"))]

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

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
    let mut child = Subprocess::start();
    child.expect_line("child: ready");

    child.signal("TERM");
    let line = child.expect_line("child: triggered by");
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

/// The child process; killed (and reaped) on drop if it is still running.
struct Subprocess {
    child: Child,
    stdout: Receiver<String>,
    stderr: Option<JoinHandle<String>>,
}

impl Subprocess {
    fn start() -> Subprocess {
        let mut child = Command::new(std::env::current_exe().expect("current_exe"))
            .args(["--exact", TEST, "--nocapture", "--test-threads=1"])
            .env(CHILD, "1")
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start the child");
        let stdout = child.stdout.take().expect("piped stdout");
        let (lines, receiver) = mpsc::channel();
        thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if lines.send(line).is_err() {
                    break;
                }
            }
        });
        let mut stderr = child.stderr.take().expect("piped stderr");
        let stderr = thread::spawn(move || {
            let mut text = String::new();
            let _ = stderr.read_to_string(&mut text);
            text
        });
        Subprocess {
            child,
            stdout: receiver,
            stderr: Some(stderr),
        }
    }

    /// Sends `signal` (`"TERM"`, `"INT"`) with the `kill` command.
    fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .args([format!("-{signal}"), self.child.id().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -{signal}: {status}");
    }

    /// Waits (bounded) for a stdout line containing `text`, and returns it. (The test
    /// runner may print `test NAME ... ` on the same line before the child's output.)
    fn expect_line(&self, text: &str) -> String {
        let deadline = Instant::now() + STEP;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.stdout.recv_timeout(left) {
                Ok(line) if line.contains(text) => return line,
                Ok(_) => {}
                Err(e) => panic!("no stdout line with {text:?}: {e}"),
            }
        }
    }

    /// Waits for the child to exit within `limit`; panics (and the drop kills it) past
    /// that.
    fn wait_exit(&mut self, limit: Duration) -> ExitStatus {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "the child did not exit within {limit:?}"
            );
            thread::sleep(Duration::from_millis(5));
        }
    }

    /// Everything the child wrote on stderr; call after it exited.
    fn stderr(&mut self) -> String {
        let reader = self.stderr.take().expect("stderr read once");
        reader.join().expect("stderr reader")
    }
}

impl Drop for Subprocess {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
