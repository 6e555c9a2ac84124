//! The `workers` and `any_executor` examples, run as subprocesses: their exit codes and
//! what they print. (`examples/http_server.rs` has its own tests.)
//!
//! Every run is bounded, and a child still running when a check fails is killed.

#![cfg(all(unix, feature = "smol", feature = "signal"))]

use std::io::{BufRead, BufReader, Read};
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::OnceLock;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

/// How long an example may run (or a step may take) before the test gives up.
const LIMIT: Duration = Duration::from_secs(20);

/// The binary of `example`. The examples are built once per test run with the same
/// profile and target directory as this test (cargo does nothing if they are fresh, and
/// rebuilds them if they are stale or missing).
fn binary(example: &str) -> PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    let examples_dir = BUILT.get_or_init(|| {
        // This test runs from `<target>/<profile>/deps/`; examples live beside `deps`.
        let exe = std::env::current_exe().expect("current_exe");
        let profile_dir = exe
            .parent()
            .and_then(|deps| deps.parent())
            .expect("profile dir");
        let mut cargo = Command::new(env!("CARGO"));
        cargo
            .args(["build", "--quiet", "--example", "workers"])
            .args(["--example", "any_executor"])
            .current_dir(env!("CARGO_MANIFEST_DIR"));
        if let Some(target_dir) = profile_dir.parent() {
            cargo.arg("--target-dir").arg(target_dir);
        }
        match profile_dir.file_name().and_then(|name| name.to_str()) {
            Some("debug") | None => {}
            Some("release") => {
                cargo.arg("--release");
            }
            Some(profile) => {
                cargo.args(["--profile", profile]);
            }
        }
        let status = cargo.status().expect("run cargo build");
        assert!(status.success(), "cargo build of the examples: {status}");
        profile_dir.join("examples")
    });
    let binary = examples_dir.join(example);
    assert!(binary.exists(), "no example binary at {}", binary.display());
    binary
}

/// A running example; killed (and reaped) on drop if it is still running.
struct Example {
    child: Child,
    stdout: Receiver<String>,
    stderr: Option<JoinHandle<String>>,
}

impl Example {
    fn start(command: &mut Command) -> Example {
        let mut child = command
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start the example");
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
        Example {
            child,
            stdout: receiver,
            stderr: Some(stderr),
        }
    }

    /// Waits (bounded) for a stdout line starting with `prefix`, and returns it.
    fn expect_line(&self, prefix: &str) -> String {
        let deadline = Instant::now() + LIMIT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.stdout.recv_timeout(left) {
                Ok(line) if line.starts_with(prefix) => return line,
                Ok(_) => {}
                Err(e) => panic!("no stdout line starting with {prefix:?}: {e}"),
            }
        }
    }

    fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .args([format!("-{signal}"), self.child.id().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -{signal}: {status}");
    }

    /// Waits for the example to exit within [`LIMIT`] (the drop kills it past that);
    /// returns its status, the stdout lines not read yet, and its stderr.
    fn finish(mut self) -> (ExitStatus, Vec<String>, String) {
        let deadline = Instant::now() + LIMIT;
        let status = loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                break status;
            }
            assert!(
                Instant::now() < deadline,
                "the example did not exit within {LIMIT:?}"
            );
            thread::sleep(Duration::from_millis(10));
        };
        // The process is gone, so its pipes reach EOF: the readers end promptly.
        let mut stdout = Vec::new();
        loop {
            match self.stdout.recv_timeout(LIMIT) {
                Ok(line) => stdout.push(line),
                Err(RecvTimeoutError::Disconnected) => break,
                Err(RecvTimeoutError::Timeout) => panic!("stdout not closed after exit"),
            }
        }
        let stderr = self.stderr.take().expect("stderr");
        let stderr = stderr.join().expect("stderr reader");
        (status, stdout, stderr)
    }
}

impl Drop for Example {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Runs `command` to the end (bounded) and returns its status, stdout lines and stderr.
fn run(command: &mut Command) -> (ExitStatus, Vec<String>, String) {
    Example::start(command).finish()
}

/// The number in `line` right after `before` (`"stopped after "` in
/// `"worker 0: stopped after 7 jobs"`).
fn number_after(line: &str, before: &str) -> u64 {
    let start = line
        .find(before)
        .unwrap_or_else(|| panic!("{before:?} in {line:?}"));
    let digits: String = line[start + before.len()..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits
        .parse()
        .unwrap_or_else(|e| panic!("a number in {line:?}: {e}"))
}

/// The checks common to every clean `workers` run: each worker stopped, the final flush
/// came after all of them and accounts for every job they did, and the drain ended.
fn assert_workers_stopped_and_flushed(stdout: &[String]) {
    let position = |prefix: &str| {
        stdout
            .iter()
            .position(|line| line.starts_with(prefix))
            .unwrap_or_else(|| panic!("no line starting with {prefix:?} in {stdout:#?}"))
    };
    let final_flush = position("flush (final):");
    let mut jobs = 0;
    for id in 0..4 {
        let stopped = position(&format!("worker {id}: stopped after "));
        assert!(stopped < final_flush, "{stdout:#?}");
        jobs += number_after(&stdout[stopped], "stopped after ");
    }
    assert!(jobs > 0, "no work was done: {stdout:#?}");
    // `flush (final): 3 jobs (66 ms busy), 32 in all; ...`
    let total = number_after(&stdout[final_flush], "busy), ");
    assert_eq!(total, jobs, "the final flush missed jobs: {stdout:#?}");
    assert!(position("drained in ") > final_flush, "{stdout:#?}");
}

#[test]
fn workers_example_stops_after_run_ms_drains_and_exits_0() {
    let (status, stdout, stderr) = run(Command::new(binary("workers"))
        .env("RUN_MS", "200")
        .env_remove("GRACE_MS"));
    assert_eq!(
        status.code(),
        Some(0),
        "stdout {stdout:#?}, stderr: {stderr}"
    );
    assert!(stdout[0].starts_with("running 5 tasks"), "{stdout:#?}");
    let shutdown = stdout
        .iter()
        .find(|line| line.starts_with("shutdown:"))
        .expect("a shutdown line");
    assert!(shutdown.starts_with("shutdown: requested"), "{shutdown}");
    assert_workers_stopped_and_flushed(&stdout);
}

#[test]
fn workers_example_drains_on_sigint_and_exits_0() {
    let example = Example::start(Command::new(binary("workers")).env_remove("RUN_MS"));
    let running = example.expect_line("running ");
    assert!(running.contains("press Ctrl-C"), "{running}");
    example.signal("INT");
    let shutdown = example.expect_line("shutdown:");
    assert!(
        shutdown.starts_with("shutdown: signal SIGINT"),
        "{shutdown}"
    );
    let (status, rest, stderr) = example.finish();
    assert_eq!(status.code(), Some(0), "stdout {rest:#?}, stderr: {stderr}");
    assert!(
        stderr.contains("SIGINT") || stderr.contains("Int"),
        "{stderr}"
    );
    assert!(
        rest.iter().any(|l| l.starts_with("drained in ")),
        "{rest:#?}"
    );
}

#[test]
fn workers_example_names_a_stubborn_worker_and_exits_1() {
    let (status, stdout, stderr) = run(Command::new(binary("workers"))
        .arg("--stubborn")
        .env("RUN_MS", "100")
        .env("GRACE_MS", "300"));
    assert_eq!(
        status.code(),
        Some(1),
        "stdout {stdout:#?}, stderr: {stderr}"
    );
    let gave_up = stdout
        .iter()
        .position(|line| line.starts_with("gave up after 300 ms"))
        .unwrap_or_else(|| panic!("no `gave up` line: {stdout:#?}"));
    let report = stdout[gave_up..].join("\n");
    assert!(report.contains("1 task still running"), "{report}");
    assert!(report.contains("stubborn worker"), "{report}");
    // The well-behaved workers still stopped, and the flusher still flushed.
    assert!(
        stdout.iter().any(|l| l.starts_with("flush (final):")),
        "{stdout:#?}"
    );
    for id in 0..4 {
        let stopped = format!("worker {id}: stopped after ");
        assert!(
            stdout.iter().any(|l| l.starts_with(&stopped)),
            "{stdout:#?}"
        );
    }
}

#[test]
fn workers_example_rejects_a_bad_run_ms_with_exit_2() {
    let (status, stdout, stderr) = run(Command::new(binary("workers")).env("RUN_MS", "soon"));
    assert_eq!(
        status.code(),
        Some(2),
        "stdout {stdout:#?}, stderr: {stderr}"
    );
    assert!(stderr.contains("RUN_MS"), "{stderr}");
}

#[test]
fn any_executor_example_drains_tasks_from_every_runtime_and_exits_0() {
    let (status, stdout, stderr) = run(&mut Command::new(binary("any_executor")));
    assert_eq!(
        status.code(),
        Some(0),
        "stdout {stdout:#?}, stderr: {stderr}"
    );
    let line = |prefix: &str| {
        stdout
            .iter()
            .position(|line| line.starts_with(prefix))
            .unwrap_or_else(|| panic!("no line starting with {prefix:?} in {stdout:#?}"))
    };
    let counted = line("5 tasks running under 4 runtimes");
    assert!(
        stdout[counted].contains(r#"named: ["plain thread"]"#),
        "{stdout:#?}"
    );
    let all_done = line("all 5 tasks finished");
    for (task, thread) in [
        ("smol executor #0", "smol-executor-"),
        ("smol executor #1", "smol-executor-"),
        ("local executor", "local-executor"),
        ("plain thread", "plain"),
        ("tokio", "tokio-worker"),
    ] {
        let running = line(&format!("{task}: running on thread {thread}"));
        assert!(running < counted, "{stdout:#?}");
        // Each task stopped after the trigger, and before the single wait returned.
        let stopped = line(&format!("{task}: stopped after "));
        assert!(counted < stopped && stopped < all_done, "{stdout:#?}");
    }
}
