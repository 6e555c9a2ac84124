//! Subprocess tests of `examples/http_server.rs`: run the built example, talk HTTP to it
//! over real sockets, send it real signals with `kill`, and check what it answers, prints
//! and exits with.
//!
//! Every wait is bounded (socket read timeouts, `recv_timeout`, a `try_wait` loop), and a
//! `Server` kills its child when dropped, so a hang fails fast and leaves no process.
//! Nothing sleeps and then asserts: the tests wait for the lines the server prints, or
//! for an answer that proves the server has a connection, before they signal it.

#![cfg(all(unix, feature = "smol", feature = "signal"))]

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::sync::OnceLock;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

/// How long any single step may take before the test gives up.
const STEP: Duration = Duration::from_secs(10);

/// The example binary, built once per test run (cargo does nothing if it is fresh, so a
/// `cargo test --test http_server` never runs a stale binary).
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
        // The target dir this test was built in (`CARGO_TARGET_DIR` or the default), so
        // the binary lands where we look for it.
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
    fn start(grace_ms: Option<u64>) -> Server {
        let mut child = spawn_example("127.0.0.1:0", grace_ms);
        let (stdout, stderr) = capture(&mut child);
        let mut server = Server {
            child,
            addr: SocketAddr::from(([0, 0, 0, 0], 0)),
            stdout,
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

    fn connect(&self) -> Client {
        Client::connect(self.addr).expect("connect to the server")
    }

    /// Waits for the server to exit within `limit`; returns its status and stderr.
    fn wait_exit(mut self, limit: Duration) -> (ExitStatus, String) {
        let status = wait_with_deadline(&mut self.child, limit);
        let stderr = self
            .stderr
            .take()
            .expect("stderr")
            .join()
            .expect("stderr reader");
        (status, stderr)
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

fn spawn_example(addr: &str, grace_ms: Option<u64>) -> Child {
    let mut command = Command::new(binary());
    command
        .arg(addr)
        .env_remove("GRACE_MS")
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if let Some(ms) = grace_ms {
        command.env("GRACE_MS", ms.to_string());
    }
    command.spawn().expect("start the example")
}

/// Forwards the child's stdout lines to a channel, and collects its stderr.
fn capture(child: &mut Child) -> (Receiver<String>, JoinHandle<String>) {
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
    (receiver, stderr)
}

/// Polls `child` until it exits; kills it and panics if `limit` passes first.
fn wait_with_deadline(child: &mut Child, limit: Duration) -> ExitStatus {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            return status;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the server did not exit within {limit:?}");
        }
        thread::sleep(Duration::from_millis(10));
    }
}

/// A blocking HTTP/1.1 client on one keep-alive connection.
struct Client {
    reader: BufReader<TcpStream>,
}

#[derive(Debug)]
struct Response {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Response {
    fn header(&self, name: &str) -> Option<&str> {
        let mut headers = self.headers.iter();
        let (_, value) = headers.find(|(n, _)| n.eq_ignore_ascii_case(name))?;
        Some(value)
    }
}

impl Client {
    fn connect(addr: SocketAddr) -> io::Result<Client> {
        let stream = TcpStream::connect_timeout(&addr, STEP)?;
        stream.set_read_timeout(Some(STEP))?;
        stream.set_write_timeout(Some(STEP))?;
        Ok(Client {
            reader: BufReader::new(stream),
        })
    }

    /// The client's address, which is the peer address the server sees.
    fn local_addr(&self) -> SocketAddr {
        self.reader.get_ref().local_addr().expect("local_addr")
    }

    fn send(&mut self, path: &str) -> io::Result<()> {
        self.send_raw(&format!("GET {path} HTTP/1.1\r\nHost: test\r\n\r\n"))
    }

    fn send_raw(&mut self, request: &str) -> io::Result<()> {
        self.reader.get_mut().write_all(request.as_bytes())
    }

    /// Reads one response; `UnexpectedEof` if the server closed without one.
    fn receive(&mut self) -> io::Result<Response> {
        let mut line = String::new();
        if self.reader.read_line(&mut line)? == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        let status = line.split(' ').nth(1).and_then(|s| s.parse().ok());
        let status = status.unwrap_or_else(|| panic!("bad status line {line:?}"));
        let mut headers = Vec::new();
        loop {
            line.clear();
            self.reader.read_line(&mut line)?;
            let line = line.trim_end();
            if line.is_empty() {
                break;
            }
            let (name, value) = line.split_once(':').expect("header line");
            headers.push((name.to_owned(), value.trim().to_owned()));
        }
        let mut response = Response {
            status,
            headers,
            body: String::new(),
        };
        let len: u64 = response
            .header("content-length")
            .expect("Content-Length")
            .parse()
            .unwrap();
        (&mut self.reader)
            .take(len)
            .read_to_string(&mut response.body)?;
        Ok(response)
    }

    fn get(&mut self, path: &str) -> Response {
        self.send(path).expect("send");
        self.receive().unwrap_or_else(|e| panic!("GET {path}: {e}"))
    }

    /// Asserts that the server closes the connection (EOF or reset) without sending
    /// anything, within the read timeout.
    fn assert_closed_by_server(&mut self) {
        let mut byte = [0; 1];
        match self.reader.read(&mut byte) {
            Ok(0) => {}
            Ok(_) => panic!("the server sent data instead of closing"),
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                panic!("the server did not close the connection: {e}")
            }
            Err(_) => {} // reset
        }
    }
}

/// A client whose connection the server has certainly accepted (it answered a `GET /`
/// on it), with a request for `path` written and not yet answered.
fn in_flight(server: &Server, path: &str) -> Client {
    let mut client = server.connect();
    assert_eq!(client.get("/").status, 200);
    client.send(path).expect("send");
    client
}

#[test]
fn sigterm_drains_in_flight_requests_refuses_new_ones_and_exits_0() {
    let server = Server::start(None);
    let mut clients: Vec<Client> = (0..20)
        .map(|_| in_flight(&server, "/slow?ms=1500"))
        .collect();
    server.signal("TERM");
    let line = server.expect_line("shutdown:");
    assert!(line.contains("SIGTERM"), "{line}");
    assert!(line.contains("draining 20 connection(s)"), "{line}");

    // The listener is closed before the shutdown line is printed.
    match Client::connect(server.addr) {
        Err(e) => assert_eq!(e.kind(), io::ErrorKind::ConnectionRefused, "{e}"),
        Ok(mut late) => {
            // Connected to the kernel's backlog just before the listener closed.
            let _ = late.send("/");
            late.assert_closed_by_server();
        }
    }

    for client in &mut clients {
        let response = client.receive().expect("the in-flight request is answered");
        assert_eq!(response.status, 200, "{response:?}");
        assert_eq!(response.body, "slept 1500 ms\n");
        assert_eq!(response.header("connection"), Some("close"), "{response:?}");
        client.assert_closed_by_server();
    }
    server.expect_line("drained");
    let (status, stderr) = server.wait_exit(STEP);
    assert_eq!(status.code(), Some(0), "stderr: {stderr}");
}

#[test]
fn stragglers_past_the_grace_period_are_named_and_exit_1() {
    let server = Server::start(Some(400));
    let clients: Vec<Client> = (0..2)
        .map(|_| in_flight(&server, "/slow?ms=20000"))
        .collect();
    server.signal("TERM");
    let signalled = Instant::now();
    let (status, stderr) = server.wait_exit(STEP);
    assert!(
        signalled.elapsed() < Duration::from_secs(5),
        "{:?}",
        signalled.elapsed()
    );
    assert_eq!(status.code(), Some(1), "stderr: {stderr}");
    assert!(stderr.contains("connection 127.0.0.1:"), "stderr: {stderr}");
    for client in &clients {
        let name = format!("connection {}", client.local_addr());
        assert!(stderr.contains(&name), "{name} not in stderr: {stderr}");
    }
}

#[test]
fn a_second_sigint_exits_at_once_with_130() {
    let server = Server::start(None);
    let _client = in_flight(&server, "/slow?ms=20000");
    server.signal("INT");
    let line = server.expect_line("shutdown:");
    assert!(line.contains("SIGINT"), "{line}");
    server.signal("INT");
    let signalled = Instant::now();
    let (status, stderr) = server.wait_exit(STEP);
    assert!(
        signalled.elapsed() < Duration::from_secs(3),
        "{:?}",
        signalled.elapsed()
    );
    assert_eq!(status.code(), Some(130), "stderr: {stderr}");
}

#[test]
fn an_idle_server_exits_0_at_once_on_sigterm() {
    let server = Server::start(None);
    server.signal("TERM");
    let signalled = Instant::now();
    server.expect_line("shutdown: signal SIGTERM; draining 0 connection(s)");
    server.expect_line("drained");
    let (status, stderr) = server.wait_exit(STEP);
    assert!(
        signalled.elapsed() < Duration::from_secs(3),
        "{:?}",
        signalled.elapsed()
    );
    assert_eq!(status.code(), Some(0), "stderr: {stderr}");
}

#[test]
fn an_idle_keep_alive_connection_is_closed_at_once_on_sigterm() {
    let server = Server::start(None);
    let mut client = server.connect();
    assert_eq!(client.get("/").header("connection"), Some("keep-alive"));
    server.signal("TERM");
    let signalled = Instant::now();
    client.assert_closed_by_server();
    server.expect_line("drained");
    let (status, stderr) = server.wait_exit(STEP);
    assert!(
        signalled.elapsed() < Duration::from_secs(3),
        "{:?}",
        signalled.elapsed()
    );
    assert_eq!(status.code(), Some(0), "stderr: {stderr}");
}

#[test]
fn bad_requests_get_400_and_keep_alive_serves_several_requests() {
    let server = Server::start(None);
    let mut client = server.connect();
    assert_eq!(client.get("/slow").status, 400);
    assert_eq!(client.get("/slow?ms=abc").status, 400);
    let unknown = client.get("/no/such/path");
    assert_eq!(unknown.status, 200);
    assert_eq!(unknown.header("connection"), Some("keep-alive"));
    assert_eq!(client.get("/slow?ms=1").status, 200);

    // A malformed request is answered 400, and the connection closed.
    let mut garbage = server.connect();
    garbage.send_raw("garbage\r\n\r\n").expect("send");
    let response = garbage.receive().expect("a 400 response");
    assert_eq!(response.status, 400);
    assert_eq!(response.header("connection"), Some("close"));
    garbage.assert_closed_by_server();

    server.signal("TERM");
    let (status, stderr) = server.wait_exit(STEP);
    assert_eq!(status.code(), Some(0), "stderr: {stderr}");
}

#[test]
fn a_bind_failure_exits_2_with_a_message() {
    let taken = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = taken.local_addr().expect("local_addr").to_string();
    let mut child = spawn_example(&addr, None);
    let (_stdout, stderr) = capture(&mut child);
    let status = wait_with_deadline(&mut child, STEP);
    let stderr = stderr.join().expect("stderr reader");
    assert_eq!(status.code(), Some(2), "stderr: {stderr}");
    assert!(stderr.contains(&addr), "stderr: {stderr}");
}
