//! Child processes for the tests: the crate's examples, or this test binary re-run
//! ([`rerun_self`]), with their output captured and every wait for them bounded.

use std::io::{BufRead, BufReader, Read};
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::OnceLock;
use std::thread;
use std::time::{Duration, Instant};

/// Set in the environment of a test binary re-run by [`rerun_self`]: the side of the test
/// the child plays.
const ROLE: &str = "SMOL_GRACEFUL_TEST_ROLE";

/// The role [`rerun_self`] gave this process, or `None` in the test binary as cargo ran it
/// (the parent).
pub fn child_role() -> Option<String> {
    std::env::var(ROLE).ok()
}

/// Re-runs this test binary as a child process that runs only `test` (`--exact`, on one
/// thread, its output not captured by the test harness), with [`child_role`] returning
/// `role` there. For scenarios that would end or wedge the test runner: an abort, an exit,
/// a process-wide signal handler. The child's output is captured as by [`Process::spawn`],
/// and each wait for it gives up after `step`.
///
/// The harness may print `test NAME ... ` on the line before the child's first output,
/// so match the child's lines with [`Process::expect_line_containing`].
pub fn rerun_self(test: &str, role: &str, step: Duration) -> Process {
    Process::spawn(&mut rerun_self_command(test, role), step)
}

/// The command [`rerun_self`] runs, for a caller that adds to it (its environment)
/// before it is spawned.
pub fn rerun_self_command(test: &str, role: &str) -> Command {
    let exe = std::env::current_exe().expect("current_exe");
    let mut command = Command::new(exe);
    command
        .args(["--exact", test, "--nocapture", "--test-threads=1"])
        .env(ROLE, role);
    command
}

/// Sends `signal` (`"TERM"`, `"INT"`) to process `pid` with the `kill` command.
pub fn send_signal(pid: u32, signal: &str) {
    let status = Command::new("kill")
        .args([format!("-{signal}"), pid.to_string()])
        .status()
        .expect("run kill");
    assert!(status.success(), "kill -{signal}: {status}");
}

/// Some of the crate's examples, built once per test binary with the same profile and
/// target directory as the test itself (cargo does nothing if they are fresh, and
/// rebuilds them if they are stale or missing, so a test never runs a stale binary).
pub struct Examples {
    names: &'static [&'static str],
    dir: OnceLock<PathBuf>,
}

impl Examples {
    /// The examples `names`, all built by one `cargo build` on first use.
    pub const fn new(names: &'static [&'static str]) -> Examples {
        Examples {
            names,
            dir: OnceLock::new(),
        }
    }

    /// The binary of `example`, one of the names given to [`Examples::new`].
    pub fn binary(&self, example: &str) -> PathBuf {
        assert!(
            self.names.contains(&example),
            "{example:?} is not among {:?}",
            self.names
        );
        let binary = self
            .dir
            .get_or_init(|| build_examples(self.names, None))
            .join(example);
        assert!(binary.exists(), "no example binary at {}", binary.display());
        binary
    }
}

/// Builds the examples `names` (with `features`, if any); returns the directory
/// they are in.
pub fn build_examples(names: &[&str], features: Option<&str>) -> PathBuf {
    // This test runs from `<target>/<profile>/deps/`; examples live beside `deps`.
    let exe = std::env::current_exe().expect("current_exe");
    let profile_dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("profile dir");
    let mut cargo = Command::new(env!("CARGO"));
    cargo
        .args(["build", "--quiet"])
        .current_dir(env!("CARGO_MANIFEST_DIR"));
    for name in names {
        cargo.args(["--example", name]);
    }
    if let Some(features) = features {
        cargo.args(["--features", features]);
    }
    // The target dir this test was built in (`CARGO_TARGET_DIR` or the default), so
    // the binaries land where we look for them.
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
    assert!(
        status.success(),
        "cargo build --example {names:?} --features {features:?}: {status}"
    );
    profile_dir.join("examples")
}

/// A running child process whose stdout lines and stderr are captured; killed (and
/// reaped) on drop if it is still running.
pub struct Process {
    child: Child,
    stdout: Receiver<String>,
    stderr: Receiver<String>,
    /// How long a wait for output may take.
    step: Duration,
}

impl Process {
    /// Starts `command` with no stdin, piped stdout and stderr, and no `RUST_LOG`. Waits
    /// for its output give up (and fail the test) after `step`.
    pub fn spawn(command: &mut Command, step: Duration) -> Process {
        let mut child = command
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start the child process");
        // Forward the stdout lines to a channel, and collect the stderr.
        let pipe = child.stdout.take().expect("piped stdout");
        let (lines, stdout) = mpsc::channel();
        thread::spawn(move || {
            for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                if lines.send(line).is_err() {
                    break;
                }
            }
        });
        let mut pipe = child.stderr.take().expect("piped stderr");
        let (all, stderr) = mpsc::channel();
        thread::spawn(move || {
            let mut text = String::new();
            let _ = pipe.read_to_string(&mut text);
            let _ = all.send(text);
        });
        Process {
            child,
            stdout,
            stderr,
            step,
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends `signal` (`"TERM"`, `"INT"`) with the `kill` command.
    pub fn signal(&self, signal: &str) {
        send_signal(self.pid(), signal);
    }

    /// Waits (bounded) for a stdout line starting with `prefix`, and returns it.
    pub fn expect_line(&self, prefix: &str) -> String {
        self.expect_line_where(&format!("starting with {prefix:?}"), |line| {
            line.starts_with(prefix)
        })
    }

    /// Waits (bounded) for a stdout line containing `text`, and returns it.
    pub fn expect_line_containing(&self, text: &str) -> String {
        self.expect_line_where(&format!("with {text:?}"), |line| line.contains(text))
    }

    fn expect_line_where(&self, what: &str, wanted: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + self.step;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.stdout.recv_timeout(left) {
                Ok(line) if wanted(&line) => return line,
                Ok(_) => {}
                Err(e) => panic!("no stdout line {what}: {e}"),
            }
        }
    }

    /// Waits for the process to exit within `limit`; kills it and panics past that.
    pub fn wait_exit(&mut self, limit: Duration) -> ExitStatus {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return status;
            }
            if Instant::now() >= deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                panic!("the child process did not exit within {limit:?}");
            }
            thread::sleep(Duration::from_millis(5));
        }
    }

    /// Everything the process wrote on stderr; call once, after it exited.
    pub fn stderr(&mut self) -> String {
        // The process is gone, so the pipe reaches EOF: the reader ends promptly.
        self.stderr
            .recv_timeout(self.step)
            .unwrap_or_else(|e| panic!("stderr not closed after exit: {e}"))
    }

    /// Waits for the process to exit within `limit` (kills it and panics past that);
    /// returns its status, the stdout lines not read yet, and its stderr.
    pub fn finish(mut self, limit: Duration) -> (ExitStatus, Vec<String>, String) {
        let status = self.wait_exit(limit);
        // The process is gone, so its pipes reach EOF: the readers end promptly.
        let mut rest = Vec::new();
        let deadline = Instant::now() + self.step;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.stdout.recv_timeout(left) {
                Ok(line) => rest.push(line),
                Err(RecvTimeoutError::Disconnected) => break,
                Err(RecvTimeoutError::Timeout) => panic!("stdout not closed after exit"),
            }
        }
        let stderr = self.stderr();
        (status, rest, stderr)
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

impl Process {
    /// Like [`Process::spawn`], but `stdout` and `stderr` go where given (`None`: piped
    /// and captured, as by `spawn`), and the command's `RUST_LOG` is left as it is. An
    /// output that is not captured reads as empty: no stdout lines, an empty stderr.
    pub fn spawn_redirected(
        command: &mut Command,
        stdout: Option<Stdio>,
        stderr: Option<Stdio>,
        step: Duration,
    ) -> Process {
        let (capture_stdout, capture_stderr) = (stdout.is_none(), stderr.is_none());
        let mut child = command
            .stdin(Stdio::null())
            .stdout(stdout.unwrap_or_else(Stdio::piped))
            .stderr(stderr.unwrap_or_else(Stdio::piped))
            .spawn()
            .expect("start the child process");
        // The senders of an output that is not captured are dropped at once: no lines.
        let (lines, stdout) = mpsc::channel();
        if capture_stdout {
            let pipe = child.stdout.take().expect("piped stdout");
            thread::spawn(move || {
                for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                    if lines.send(line).is_err() {
                        break;
                    }
                }
            });
        }
        let (all, stderr) = mpsc::channel();
        if capture_stderr {
            let mut pipe = child.stderr.take().expect("piped stderr");
            thread::spawn(move || {
                let mut text = String::new();
                let _ = pipe.read_to_string(&mut text);
                let _ = all.send(text);
            });
        } else {
            let _ = all.send(String::new());
        }
        Process {
            child,
            stdout,
            stderr,
            step,
        }
    }
}

/// A write end of a pipe whose read end is already closed: a child given it as stdout
/// or stderr gets `EPIPE` on every write (Rust ignores `SIGPIPE`), like a program whose
/// log reader died.
pub fn broken_pipe() -> Stdio {
    // `true` exits without reading its stdin; once it has, nothing reads the pipe.
    let mut reader = Command::new("true")
        .stdin(Stdio::piped())
        .spawn()
        .expect("run true");
    let pipe = reader.stdin.take().expect("piped stdin");
    let status = reader.wait().expect("wait for true");
    assert!(status.success(), "true: {status}");
    Stdio::from(pipe)
}

/// The full device: a child given it as stdout or stderr gets `ENOSPC` on every write.
pub fn dev_full() -> Stdio {
    let full = std::fs::File::options()
        .write(true)
        .open("/dev/full")
        .expect("open /dev/full");
    Stdio::from(full)
}

impl Process {
    /// Waits up to `limit` for the process to exit: its status, or `None` if it is
    /// still running (it is left running).
    pub fn try_wait_exit(&mut self, limit: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            thread::sleep(Duration::from_millis(5));
        }
    }
}
