//! `examples/http_server.rs` run as a subprocess, and a blocking HTTP/1.1 client to talk
//! to it over real sockets.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::ops::Deref;
use std::os::unix::io::{AsRawFd, RawFd};
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus};
use std::sync::Mutex;
use std::time::Duration;

use super::subprocess::Process;

/// How long any single step may take before the test gives up.
pub const STEP: Duration = Duration::from_secs(10);

/// The example's binary with the default features, built once per test binary, with the
/// same profile and target directory as the test itself (cargo does nothing if it is
/// fresh, and rebuilds it if it is stale or missing).
pub fn example_binary() -> PathBuf {
    example_binary_with_features("")
}

/// The example's binary built with `features` (a comma-separated list on top of the
/// default features; empty for none), once per test binary and feature list.
pub fn example_binary_with_features(features: &str) -> PathBuf {
    static BINARIES: Mutex<Vec<(String, PathBuf)>> = Mutex::new(Vec::new());
    let mut binaries = BINARIES.lock().unwrap_or_else(|e| e.into_inner());
    if let Some((_, binary)) = binaries.iter().find(|(f, _)| f == features) {
        return binary.clone();
    }
    let binary = build_example(features);
    binaries.push((features.to_owned(), binary.clone()));
    binary
}

/// Builds the example with `features`; returns its binary: a link to the build named
/// after the features (`examples/http_server--systemd`, `http_server--default` for
/// none), since cargo puts the build of every feature set at `examples/http_server`,
/// and a test binary that builds with other features must never run another's build.
/// (cargo replaces that file, it does not rewrite it, so the link keeps this build.)
fn build_example(features: &str) -> PathBuf {
    let extra = Some(features).filter(|f| !f.is_empty());
    let examples = super::subprocess::build_examples(&["http_server"], extra);
    let built = examples.join("http_server");
    assert!(built.exists(), "no example binary at {}", built.display());
    let binary = examples.join(format!("http_server--{}", extra.unwrap_or("default")));
    let _ = std::fs::remove_file(&binary);
    if std::fs::hard_link(&built, &binary).is_err() {
        std::fs::copy(&built, &binary).expect("copy the example binary");
    }
    binary
}

/// The command that runs the example on `addr`, with `GRACE_MS` set to `grace_ms` (or
/// unset), and `HEADER_TIMEOUT_MS`, `DRAIN_DELAY_MS` and `RUST_LOG` unset.
pub fn example_command(addr: &str, grace_ms: Option<u64>) -> Command {
    let mut command = Command::new(example_binary());
    command
        .arg(addr)
        .env_remove("GRACE_MS")
        .env_remove("HEADER_TIMEOUT_MS")
        .env_remove("DRAIN_DELAY_MS")
        .env_remove("RUST_LOG");
    if let Some(ms) = grace_ms {
        command.env("GRACE_MS", ms.to_string());
    }
    command
}

/// The command that runs `binary` the way a service manager starts a socket-activated
/// service: with `listener` (a listening socket, or anything to test with) as its fd 3, `LISTEN_FDS=1` and `LISTEN_PID` set to its own
/// pid (by `sh`, which then `exec`s `binary`, keeping that pid), and `args` after it.
/// The environment of [`example_command`] otherwise.
pub fn activated_command(binary: &Path, listener: &impl AsRawFd, args: &[&str]) -> Command {
    let mut command = Command::new("sh");
    command
        .arg("-c")
        .arg(r#"LISTEN_PID=$$ exec "$0" "$@""#)
        .arg(binary)
        .args(args)
        .env("LISTEN_FDS", "1");
    with_fd_3(&mut command, listener.as_raw_fd());
    command
        .env_remove("GRACE_MS")
        .env_remove("HEADER_TIMEOUT_MS")
        .env_remove("DRAIN_DELAY_MS")
        .env_remove("RUST_LOG");
    command
}

/// Makes `fd` (which must stay open until the command is spawned) the child's fd 3, open
/// across `exec`, as systemd passes a socket (`SD_LISTEN_FDS_START`).
pub fn with_fd_3(command: &mut Command, fd: RawFd) {
    // SAFETY: between fork and exec the closure calls only `dup2` and `fcntl`, which
    // are async-signal-safe, allocates nothing, and touches no lock.
    unsafe {
        command.pre_exec(move || {
            if fd == 3 {
                // `dup2(3, 3)` would keep FD_CLOEXEC: clear it instead.
                if libc::fcntl(3, libc::F_SETFD, 0) == -1 {
                    return Err(io::Error::last_os_error());
                }
            } else if libc::dup2(fd, 3) == -1 {
                // The copy `dup2` makes is open across exec.
                return Err(io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

/// A running example server; killed (and reaped) on drop if it is still running. It
/// derefs to its [`Process`], for `signal`, `expect_line` and `pid`.
pub struct Server {
    process: Process,
    pub addr: SocketAddr,
}

impl Server {
    /// Starts the server on a free port and waits for its `listening on` line.
    pub fn start(grace_ms: Option<u64>) -> Server {
        Server::start_command(&mut example_command("127.0.0.1:0", grace_ms))
    }

    /// Starts `command` (which must make the server listen on a free port) and waits
    /// for its `listening on` line.
    pub fn start_command(command: &mut Command) -> Server {
        Server::listening(Process::spawn(command, STEP))
    }

    /// Waits for `process`, a started server, to print its `listening on` line.
    pub fn listening(process: Process) -> Server {
        let addr = listening_addr(&process);
        Server { process, addr }
    }

    pub fn connect(&self) -> Client {
        Client::connect(self.addr).expect("connect to the server")
    }

    /// Waits for the server to exit within `limit` (kills it and panics past that);
    /// returns its status, the stdout lines not read yet, and its stderr.
    pub fn finish(self, limit: Duration) -> (ExitStatus, Vec<String>, String) {
        self.process.finish(limit)
    }
}

impl Deref for Server {
    type Target = Process;

    fn deref(&self) -> &Process {
        &self.process
    }
}

/// Waits for `process`, a started server, to print its `listening on` line; returns
/// the address in it.
pub fn listening_addr(process: &Process) -> SocketAddr {
    let line = process.expect_line("listening on http://");
    line["listening on http://".len()..]
        .parse()
        .unwrap_or_else(|e| panic!("bad address in {line:?}: {e}"))
}

/// A client whose connection the server has certainly accepted (it answered a `GET /`
/// on it), with a request for `path` written and not yet answered.
pub fn in_flight(server: &Server, path: &str) -> Client {
    let mut client = server.connect();
    assert_eq!(client.get("/").status, 200);
    client.send(path).expect("send");
    client
}

/// A blocking HTTP/1.1 client on one keep-alive connection.
pub struct Client {
    reader: BufReader<TcpStream>,
}

#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        let mut headers = self.headers.iter();
        let (_, value) = headers.find(|(n, _)| n.eq_ignore_ascii_case(name))?;
        Some(value)
    }
}

/// Whether `error` is a socket timeout.
fn timed_out(error: &io::Error) -> bool {
    matches!(
        error.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}

impl Client {
    pub fn connect(addr: SocketAddr) -> io::Result<Client> {
        let stream = TcpStream::connect_timeout(&addr, STEP)?;
        stream.set_read_timeout(Some(STEP))?;
        stream.set_write_timeout(Some(STEP))?;
        Ok(Client {
            reader: BufReader::new(stream),
        })
    }

    /// The client's address, which is the peer address the server sees.
    pub fn local_addr(&self) -> SocketAddr {
        self.reader.get_ref().local_addr().expect("local_addr")
    }

    /// Another handle on the connection, to write from another thread.
    pub fn writer(&self) -> TcpStream {
        self.reader.get_ref().try_clone().expect("clone the stream")
    }

    pub fn send(&mut self, path: &str) -> io::Result<()> {
        self.send_raw(&format!("GET {path} HTTP/1.1\r\nHost: test\r\n\r\n"))
    }

    pub fn send_raw(&mut self, request: &str) -> io::Result<()> {
        self.send_bytes(request.as_bytes())
    }

    pub fn send_bytes(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.reader.get_mut().write_all(bytes)
    }

    /// Reads one response; `UnexpectedEof` if the server closed without one.
    pub fn receive(&mut self) -> io::Result<Response> {
        let status = self.receive_status()?;
        let status = status.ok_or(io::ErrorKind::UnexpectedEof)?;
        self.receive_rest(status)
    }

    /// Reads one response; `None` if the server closed (or reset) the connection before
    /// it. Panics on a read timeout, or an error after the status line.
    pub fn receive_unless_closed(&mut self) -> Option<Response> {
        let status = match self.receive_status() {
            Ok(status) => status?,
            Err(e) if timed_out(&e) => panic!("no response within {STEP:?}: {e}"),
            Err(_) => return None, // reset
        };
        Some(self.receive_rest(status).expect("the rest of the response"))
    }

    /// Reads a status line and returns its code; `None` at EOF.
    fn receive_status(&mut self) -> io::Result<Option<u16>> {
        let mut line = String::new();
        if self.reader.read_line(&mut line)? == 0 {
            return Ok(None);
        }
        let status = line.split(' ').nth(1).and_then(|s| s.parse().ok());
        Ok(Some(
            status.unwrap_or_else(|| panic!("bad status line {line:?}")),
        ))
    }

    /// Reads the headers and body of a response whose status line has been read.
    fn receive_rest(&mut self, status: u16) -> io::Result<Response> {
        let mut headers = Vec::new();
        let mut line = String::new();
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

    pub fn get(&mut self, path: &str) -> Response {
        self.send(path).expect("send");
        self.receive().unwrap_or_else(|e| panic!("GET {path}: {e}"))
    }

    /// Asserts that the server closes the connection (EOF or reset) without sending
    /// anything, within the read timeout.
    pub fn assert_closed_by_server(&mut self) {
        let mut byte = [0; 1];
        match self.reader.read(&mut byte) {
            Ok(0) => {}
            Ok(_) => panic!("the server sent data instead of closing"),
            Err(e) if timed_out(&e) => panic!("the server did not close the connection: {e}"),
            Err(_) => {} // reset
        }
    }

    /// Asserts that the server ends the connection cleanly (EOF, a FIN), without
    /// sending anything more, within the read timeout. A reset (RST, which the kernel
    /// sends when a socket is closed with input unread) fails: a client reset while it
    /// still sends may never read the response it was sent, and on some systems the
    /// reset discards the response from the client's buffer.
    pub fn assert_eof(&mut self) {
        let mut byte = [0; 1];
        match self.reader.read(&mut byte) {
            Ok(0) => {}
            Ok(_) => panic!("the server sent data instead of closing"),
            Err(e) if timed_out(&e) => panic!("the server did not close the connection: {e}"),
            Err(e) => panic!("the server reset the connection instead of closing it: {e}"),
        }
    }
}
