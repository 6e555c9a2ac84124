//! Bursts and mixes of real signals against `examples/http_server.rs`: the server is run
//! as a subprocess and signalled with `kill`, as in `tests/http_server.rs` (whose helpers
//! are copied here, trimmed to what these scenarios need).
//!
//! Signals of one kind may coalesce in the kernel, so a burst of SIGTERMs is seen as one
//! or as several: the outcome must be exit 0 (one seen, the drain finished) or 143
//! (128 + SIGTERM: a second one forced the exit), and never a hang. Every wait is
//! bounded, and a `Server` kills its child when dropped.

#![cfg(all(unix, feature = "smol", feature = "signal"))]

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::OnceLock;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

/// How long any single step may take before the test gives up.
const STEP: Duration = Duration::from_secs(10);

/// How fast a burst must end the server, from the first `kill`.
const BURST_LIMIT: Duration = Duration::from_secs(5);

/// The example binary, built once per test run (cargo does nothing if it is fresh).
fn binary() -> &'static PathBuf {
    static BINARY: OnceLock<PathBuf> = OnceLock::new();
    BINARY.get_or_init(|| {
        // This test runs from `<target>/<profile>/deps/`; examples live beside `deps`.
        let exe = std::env::current_exe().expect("current_exe");
        let profile_dir = exe
            .parent()
            .and_then(|deps| deps.parent())
            .expect("profile dir");
        let mut cargo = Command::new(env!("CARGO"));
        cargo
            .args(["build", "--quiet", "--example", "http_server"])
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
        assert!(
            status.success(),
            "cargo build --example http_server: {status}"
        );
        let binary = profile_dir.join("examples").join("http_server");
        assert!(binary.exists(), "no example binary at {}", binary.display());
        binary
    })
}

/// A running example server; killed (and reaped) on drop if it is still running.
struct Server {
    child: Child,
    addr: SocketAddr,
    stdout: Receiver<String>,
    stderr: Option<JoinHandle<String>>,
}

impl Server {
    /// Starts the server on a free port and waits for its `listening on` line.
    fn start() -> Server {
        let mut child = Command::new(binary())
            .arg("127.0.0.1:0")
            .env_remove("GRACE_MS")
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
        let mut server = Server {
            child,
            addr: SocketAddr::from(([0, 0, 0, 0], 0)),
            stdout: receiver,
            stderr: Some(stderr),
        };
        let line = server.expect_line("listening on http://");
        server.addr = line["listening on http://".len()..]
            .parse()
            .unwrap_or_else(|e| panic!("bad address in {line:?}: {e}"));
        server
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends `signal` (`"TERM"`, `"INT"`) with the `kill` command.
    fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .args([format!("-{signal}"), self.pid().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -{signal}: {status}");
    }

    /// Sends `count` SIGTERMs as fast as a shell can: `count` separate `kill` calls
    /// (the shell's builtin), so `count` separate deliveries, not one `kill` with many
    /// arguments. The child is not reaped before the caller waits for it, so its pid
    /// stays valid (at worst a zombie) for every call.
    fn burst_of_sigterms(&self, count: u32) {
        let script = format!(
            "for i in $(seq {count}); do kill -TERM {}; done",
            self.pid()
        );
        let status = Command::new("sh")
            .args(["-c", &script])
            .status()
            .expect("run sh");
        assert!(status.success(), "{script}: {status}");
    }

    /// Waits (bounded) for a stdout line starting with `prefix`, and returns it.
    fn expect_line(&self, prefix: &str) -> String {
        let deadline = Instant::now() + STEP;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.stdout.recv_timeout(left) {
                Ok(line) if line.starts_with(prefix) => return line,
                Ok(_) => {}
                Err(e) => panic!("no stdout line starting with {prefix:?}: {e}"),
            }
        }
    }

    fn connect(&self) -> BufReader<TcpStream> {
        let stream = TcpStream::connect_timeout(&self.addr, STEP).expect("connect");
        stream.set_read_timeout(Some(STEP)).expect("read timeout");
        stream.set_write_timeout(Some(STEP)).expect("write timeout");
        BufReader::new(stream)
    }

    /// Waits for the server to exit within `limit` (kills it and panics past that);
    /// returns its status, the stdout lines not read yet, and its stderr.
    fn wait_exit(mut self, limit: Duration) -> (ExitStatus, Vec<String>, String) {
        let deadline = Instant::now() + limit;
        let status = loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                break status;
            }
            if Instant::now() >= deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                panic!("the server did not exit within {limit:?}");
            }
            thread::sleep(Duration::from_millis(10));
        };
        // The process is gone, so its pipes reach EOF: the readers end promptly.
        let mut rest = Vec::new();
        let deadline = Instant::now() + STEP;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.stdout.recv_timeout(left) {
                Ok(line) => rest.push(line),
                Err(RecvTimeoutError::Disconnected) => break,
                Err(RecvTimeoutError::Timeout) => panic!("stdout not closed after exit"),
            }
        }
        let stderr = self.stderr.take().expect("stderr");
        let stderr = stderr.join().expect("stderr reader");
        (status, rest, stderr)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Sends `GET path` on `conn` without reading the answer.
fn send(conn: &mut BufReader<TcpStream>, path: &str) {
    let request = format!("GET {path} HTTP/1.1\r\nHost: test\r\n\r\n");
    conn.get_mut().write_all(request.as_bytes()).expect("send");
}

/// Reads one response head and body; `None` if the server closed (or reset) the
/// connection first. Panics on a read timeout.
fn receive(conn: &mut BufReader<TcpStream>) -> Option<(String, Vec<String>, String)> {
    let mut status = String::new();
    match conn.read_line(&mut status) {
        Ok(0) => return None,
        Ok(_) => {}
        Err(e)
            if matches!(
                e.kind(),
                io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
            ) =>
        {
            panic!("no response within {STEP:?}: {e}")
        }
        Err(_) => return None, // reset
    }
    let mut headers = Vec::new();
    let mut len = 0;
    loop {
        let mut line = String::new();
        conn.read_line(&mut line).expect("header line");
        let line = line.trim_end().to_owned();
        if line.is_empty() {
            break;
        }
        if let Some(value) = line.to_ascii_lowercase().strip_prefix("content-length:") {
            len = value.trim().parse().expect("Content-Length");
        }
        headers.push(line);
    }
    let mut body = String::new();
    conn.take(len).read_to_string(&mut body).expect("body");
    Some((status.trim_end().to_owned(), headers, body))
}

/// A connection the server has certainly accepted (it answered a `GET /` on it), with
/// a request for `path` written and not yet answered.
fn in_flight(server: &Server, path: &str) -> BufReader<TcpStream> {
    let mut conn = server.connect();
    send(&mut conn, "/");
    let (status, _, _) = receive(&mut conn).expect("an answer to GET /");
    assert!(status.starts_with("HTTP/1.1 200 "), "{status}");
    send(&mut conn, path);
    conn
}

/// Checks the outcome of a burst of SIGTERMs: exit 0 after a finished drain, or 143
/// forced by a second SIGTERM, within [`BURST_LIMIT`] of the first `kill`.
fn assert_burst_outcome(server: Server, burst_started: Instant) -> Option<i32> {
    let (status, stdout, stderr) = server.wait_exit(BURST_LIMIT);
    let elapsed = burst_started.elapsed();
    assert!(elapsed < BURST_LIMIT, "exit took {elapsed:?}");
    let code = status.code();
    match code {
        Some(0) => {
            assert!(
                stdout.iter().any(|l| l.starts_with("drained")),
                "exit 0 without `drained`: stdout {stdout:?}, stderr: {stderr}"
            );
        }
        Some(143) => {
            assert!(
                stderr.contains("143"),
                "exit 143 without the library's warning: stderr: {stderr}"
            );
        }
        _ => panic!("exit {status} after a burst of SIGTERMs; stdout {stdout:?}, stderr: {stderr}"),
    }
    // Whatever was printed about the shutdown names the signal that started it.
    if let Some(line) = stdout.iter().find(|l| l.starts_with("shutdown:")) {
        assert!(line.contains("SIGTERM"), "{line}");
    }
    code
}

#[test]
fn a_burst_of_50_sigterms_ends_in_exit_0_or_143_never_a_hang() {
    let server = Server::start();
    let mut slow = in_flight(&server, "/slow?ms=1000");
    let burst_started = Instant::now();
    server.burst_of_sigterms(50);
    let code = assert_burst_outcome(server, burst_started);
    // The process has exited: the slow request was either answered before the drain
    // ended (exit 0), or cut by the forced exit (143).
    match receive(&mut slow) {
        Some((status, headers, body)) => {
            assert!(status.starts_with("HTTP/1.1 200 "), "{status}");
            assert_eq!(body, "slept 1000 ms\n");
            assert!(
                headers
                    .iter()
                    .any(|h| h.eq_ignore_ascii_case("connection: close")),
                "{headers:?}"
            );
        }
        None => assert_eq!(code, Some(143), "a drained server dropped a request"),
    }
}

#[test]
fn a_burst_of_50_sigterms_on_an_idle_server_ends_in_exit_0_or_143() {
    let server = Server::start();
    let burst_started = Instant::now();
    server.burst_of_sigterms(50);
    assert_burst_outcome(server, burst_started);
}

#[test]
fn sigterm_then_sigint_forces_exit_130() {
    let server = Server::start();
    let _slow = in_flight(&server, "/slow?ms=20000");
    server.signal("TERM");
    let line = server.expect_line("shutdown:");
    assert!(line.contains("SIGTERM"), "{line}");
    assert!(line.contains("draining 1 connection(s)"), "{line}");
    let signalled = Instant::now();
    server.signal("INT");
    let (status, _, stderr) = server.wait_exit(Duration::from_secs(3));
    assert!(
        signalled.elapsed() < Duration::from_secs(3),
        "{:?}",
        signalled.elapsed()
    );
    assert_eq!(status.code(), Some(130), "stderr: {stderr}");
    assert!(stderr.contains("130"), "stderr: {stderr}");
}
