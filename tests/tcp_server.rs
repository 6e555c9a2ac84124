//! Subprocess tests of `examples/tcp_server.rs`: run the built example, talk its line
//! protocol over real sockets, send it real signals with `kill`, and check what it
//! answers and exits with.
//!
//! Every wait is bounded (socket read timeouts, `recv_timeout`, a `try_wait` loop), and
//! a child still running when a check fails is killed. Nothing sleeps and then asserts:
//! a request is known to be in progress because the server answered the one sent with
//! it, and the shutdown is known to have begun because an idle connection was closed.

#![cfg(all(unix, feature = "smol", feature = "signal"))]

mod common;

use std::io::{self, BufRead as _, BufReader, Read as _, Write as _};
use std::net::{Shutdown as Direction, SocketAddr, TcpStream};
use std::process::{Command, ExitStatus};
use std::time::{Duration, Instant};

use common::subprocess::{Examples, Process};

/// How long any single step may take before the test gives up.
const STEP: Duration = Duration::from_secs(10);

static EXAMPLES: Examples = Examples::new(&["tcp_server"]);

/// The example, listening on a free port.
struct Server {
    process: Process,
    addr: SocketAddr,
}

impl Server {
    /// Starts the server on a free port, with `GRACE_MS` set to `grace_ms` (or unset),
    /// and waits for its `listening on` line.
    fn start(grace_ms: Option<u64>) -> Server {
        let mut command = Command::new(EXAMPLES.binary("tcp_server"));
        command.arg("127.0.0.1:0").env_remove("GRACE_MS");
        if let Some(ms) = grace_ms {
            command.env("GRACE_MS", ms.to_string());
        }
        let process = Process::spawn(&mut command, STEP);
        let line = process.expect_line("listening on ");
        let addr = line["listening on ".len()..]
            .parse()
            .unwrap_or_else(|e| panic!("bad address in {line:?}: {e}"));
        Server { process, addr }
    }

    fn connect(&self) -> Client {
        Client::connect(self.addr).expect("connect to the server")
    }

    /// A connection the server has certainly accepted and served (it answered a
    /// `PING` on it), idle now.
    fn idle(&self) -> Client {
        let mut client = self.connect();
        assert_eq!(client.request("PING"), "PONG");
        client
    }

    /// A connection with `request` in progress: sent in one write after a `PING`, so
    /// the server read both lines at once, and once it has answered the `PING` it has
    /// started on `request`.
    fn in_flight(&self, request: &str) -> Client {
        let mut client = self.connect();
        client.send(&format!("PING\n{request}\n"));
        assert_eq!(client.receive(), "PONG");
        client
    }

    fn signal(&self, signal: &str) {
        self.process.signal(signal);
    }

    /// Waits for the server to exit within [`STEP`] (kills it and panics past that);
    /// returns its status and stderr.
    fn finish(self) -> (ExitStatus, String) {
        let (status, _, stderr) = self.process.finish(STEP);
        (status, stderr)
    }
}

/// A blocking client: one line per request, one line per answer.
struct Client {
    reader: BufReader<TcpStream>,
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

    fn send(&mut self, text: &str) {
        self.reader
            .get_mut()
            .write_all(text.as_bytes())
            .expect("send");
    }

    /// Reads one answer line, without its line end.
    fn receive(&mut self) -> String {
        let mut line = String::new();
        match self.reader.read_line(&mut line) {
            Ok(0) => panic!("the server closed the connection instead of answering"),
            Ok(_) => line.trim_end().to_owned(),
            Err(e) => panic!("no answer: {e}"),
        }
    }

    fn request(&mut self, request: &str) -> String {
        self.send(&format!("{request}\n"));
        self.receive()
    }

    /// Shuts down the client's write side: the server reads end of stream.
    fn shutdown_write(&self) {
        self.reader
            .get_ref()
            .shutdown(Direction::Write)
            .expect("shutdown(Write)");
    }

    /// True if an answer has arrived and not been read, checked without waiting.
    fn has_answer(&self) -> bool {
        if !self.reader.buffer().is_empty() {
            return true;
        }
        let stream = self.reader.get_ref();
        stream.set_nonblocking(true).expect("set_nonblocking");
        let peeked = stream.peek(&mut [0; 1]);
        stream.set_nonblocking(false).expect("set_nonblocking");
        match peeked {
            Ok(n) => n > 0,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => false,
            Err(e) => panic!("peek: {e}"),
        }
    }

    /// Asserts that the server ends the connection cleanly (EOF), without sending
    /// anything more, within the read timeout.
    fn assert_eof(&mut self) {
        let mut rest = String::new();
        match self.reader.read_to_string(&mut rest) {
            Ok(0) => {}
            Ok(_) => panic!("the server sent {rest:?} instead of closing"),
            Err(e) => panic!("the server did not close the connection cleanly: {e}"),
        }
    }

    /// Asserts that the server closes the connection (EOF or reset) without answering,
    /// within the read timeout.
    fn assert_closed_by_server(&mut self) {
        let mut rest = String::new();
        match self.reader.read_to_string(&mut rest) {
            Ok(0) => {}
            Ok(_) => panic!("the server sent {rest:?} instead of closing"),
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

#[test]
fn answers_each_line_with_one_line() {
    let server = Server::start(None);
    let mut client = server.connect();
    assert_eq!(client.request("PING"), "PONG");
    assert_eq!(client.request("SLOW 1"), "DONE 1");
    assert_eq!(client.request("SLOW 0"), "DONE 0");
    // `nc -C` and telnet end lines with CRLF.
    assert_eq!(client.request("PING\r"), "PONG");
    for unknown in ["HELLO", "SLOW", "SLOW abc", "SLOW -1", "ping", ""] {
        assert_eq!(
            client.request(unknown),
            "ERR unknown command",
            "{unknown:?}"
        );
    }
    // Several requests in one write are answered in order.
    client.send("SLOW 20\nPING\n");
    assert_eq!(client.receive(), "DONE 20");
    assert_eq!(client.receive(), "PONG");

    server.signal("TERM");
    client.assert_eof();
    let (status, stderr) = server.finish();
    assert_eq!(status.code(), Some(0), "stderr: {stderr}");
}

#[test]
fn sigterm_closes_idle_connections_at_once_finishes_requests_in_progress_and_exits_0() {
    let server = Server::start(None);
    let mut idle = server.idle();
    let mut slow = server.in_flight("SLOW 1500");

    server.signal("TERM");
    // The idle connection ends at once: well before the slow request is answered.
    idle.assert_eof();
    assert!(
        !slow.has_answer(),
        "the idle connection was closed only after the slow request was answered"
    );

    // The slow request finishes, says the connection closes, and it does.
    assert_eq!(slow.receive(), "DONE 1500 (closing)");
    slow.assert_eof();
    let (status, stderr) = server.finish();
    assert_eq!(status.code(), Some(0), "stderr: {stderr}");
    assert!(stderr.contains("received SIGTERM"), "stderr: {stderr}");
    // The drain's first line says what was running when `run` saw the trigger:
    // the slow request at least (the idle connection may have ended already).
    let first = stderr
        .lines()
        .find(|line| line.contains("shutting down: "))
        .unwrap_or_else(|| panic!("no `shutting down:` line: {stderr}"));
    assert!(
        first.contains(" left, oldest ") && first.contains("connection 127.0.0.1:"),
        "{first}"
    );
}

#[test]
fn stragglers_past_grace_ms_are_named_and_exit_1() {
    let server = Server::start(Some(200));
    let slow = server.in_flight("SLOW 10000");
    server.signal("TERM");
    let signalled = Instant::now();
    let (status, stderr) = server.finish();
    assert_eq!(status.code(), Some(1), "stderr: {stderr}");
    assert!(
        signalled.elapsed() < Duration::from_secs(5),
        "{:?}",
        signalled.elapsed()
    );
    let name = format!("connection {}", slow.local_addr());
    assert!(stderr.contains(&name), "{name} not in stderr: {stderr}");
}

#[test]
fn a_client_that_shuts_down_its_write_side_still_gets_its_answers() {
    let server = Server::start(None);
    let mut half = server.connect();
    half.send("PING\n");
    half.shutdown_write();
    assert_eq!(half.receive(), "PONG");
    half.assert_eof();

    // One in progress when the client's end of stream arrives is answered too.
    let mut slow = server.connect();
    slow.send("SLOW 100\n");
    slow.shutdown_write();
    assert_eq!(slow.receive(), "DONE 100");
    slow.assert_eof();

    // And the server goes on serving others.
    let mut other = server.idle();
    assert_eq!(other.request("SLOW 1"), "DONE 1");

    server.signal("TERM");
    other.assert_eof();
    let (status, stderr) = server.finish();
    assert_eq!(status.code(), Some(0), "stderr: {stderr}");
}

#[test]
fn a_second_sigterm_during_the_drain_exits_143_at_once() {
    let server = Server::start(None);
    let mut idle = server.idle();
    let _slow = server.in_flight("SLOW 20000");
    server.signal("TERM");
    // The idle connection's end shows the first signal has started the drain.
    idle.assert_eof();

    server.signal("TERM");
    let signalled = Instant::now();
    let (status, stderr) = server.finish();
    assert_eq!(status.code(), Some(143), "stderr: {stderr}");
    assert!(
        signalled.elapsed() < Duration::from_secs(3),
        "{:?}",
        signalled.elapsed()
    );
}

#[test]
fn a_connection_made_during_the_drain_is_not_served() {
    let server = Server::start(None);
    let mut idle = server.idle();
    let mut slow = server.in_flight("SLOW 1500");
    server.signal("TERM");
    // The idle connection's end shows the drain has begun.
    idle.assert_eof();

    match Client::connect(server.addr) {
        // Refused, or reset when the listener closed during the handshake.
        Err(e) => assert!(
            matches!(
                e.kind(),
                io::ErrorKind::ConnectionRefused | io::ErrorKind::ConnectionReset
            ),
            "{e}"
        ),
        Ok(mut late) => {
            // Connected to the kernel's backlog before the listener closed: closed
            // (EOF or reset) without an answer.
            let _ = late.reader.get_mut().write_all(b"PING\n");
            late.assert_closed_by_server();
        }
    }

    // The drain itself goes on.
    assert_eq!(slow.receive(), "DONE 1500 (closing)");
    slow.assert_eof();
    let (status, stderr) = server.finish();
    assert_eq!(status.code(), Some(0), "stderr: {stderr}");
}
