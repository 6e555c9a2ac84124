//! Load for the restart and upgrade tests: clients that send requests to an address
//! without pause until told to stop, each counting what it was served, how long each
//! request took, and what it lost.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use super::http::STEP;

/// Clients that open a new connection for each request (`Connection: close`), and
/// clients that keep theirs alive.
pub const CLOSING_CLIENTS: usize = 6;
pub const KEEP_ALIVE_CLIENTS: usize = 2;
/// A bound on each client's requests, whatever the timing.
pub const MAX_REQUESTS: usize = 20_000;

/// What one client saw.
#[derive(Default)]
pub struct Tally {
    pub served: usize,
    /// Each request's start, and its time from the first byte sent to the last byte
    /// of the answer (retry included).
    pub latencies: Vec<(Instant, Duration)>,
    /// Requests retried once on a new connection, after a reused one was closed before
    /// any byte of the answer.
    pub retries: usize,
    /// Requests without their answer, and why.
    pub lost: Vec<String>,
}

impl Tally {
    /// Counts one request's outcome; `what` names it if it was lost.
    pub fn record(
        &mut self,
        result: Result<(), Failure>,
        started: Instant,
        what: impl FnOnce() -> String,
    ) {
        match result {
            Ok(()) => {
                self.served += 1;
                self.latencies.push((started, started.elapsed()));
            }
            Err(f) => self.lost.push(format!("{}: {}", what(), f.error)),
        }
    }
}

/// A failed request: why, and whether the connection ended before any byte of an
/// answer came (the case an HTTP client may retry, on a reused connection).
pub struct Failure {
    pub error: String,
    pub before_any_byte: bool,
}

impl Failure {
    pub fn new(what: &str, error: impl std::fmt::Display, before_any_byte: bool) -> Failure {
        Failure {
            error: format!("{what}: {error}"),
            before_any_byte,
        }
    }
}

/// A response: its status, body, and whether it said `Connection: close`.
pub struct Answer {
    pub status: u16,
    pub body: String,
    pub close: bool,
}

/// Opens a connection to `addr` with read and write timeouts of [`STEP`].
pub fn connect(addr: SocketAddr) -> Result<BufReader<TcpStream>, Failure> {
    let stream =
        TcpStream::connect_timeout(&addr, STEP).map_err(|e| Failure::new("connect", e, false))?;
    for result in [
        stream.set_read_timeout(Some(STEP)),
        stream.set_write_timeout(Some(STEP)),
        stream.set_nodelay(true),
    ] {
        result.map_err(|e| Failure::new("socket options", e, false))?;
    }
    Ok(BufReader::new(stream))
}

/// Sends `GET path` on `conn` (with `Connection: close` if `close`) and reads the answer.
pub fn request(
    conn: &mut BufReader<TcpStream>,
    path: &str,
    close: bool,
) -> Result<Answer, Failure> {
    let close_header = if close { "Connection: close\r\n" } else { "" };
    let head = format!("GET {path} HTTP/1.1\r\nHost: test\r\n{close_header}\r\n");
    // A write that fails was refused by a connection that is gone: nothing answered.
    conn.get_mut()
        .write_all(head.as_bytes())
        .map_err(|e| Failure::new("send", e, true))?;
    let mut line = String::new();
    match conn.read_line(&mut line) {
        Ok(0) => return Err(Failure::new("status line", "closed", true)),
        Ok(_) => {}
        // A reset with nothing read; a timeout is a server that did not answer.
        Err(e) => {
            let timeout = matches!(
                e.kind(),
                io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
            );
            return Err(Failure::new("status line", e, line.is_empty() && !timeout));
        }
    }
    let status = line
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| Failure::new("status line", format!("{line:?}"), false))?;
    let (mut length, mut close) = (None, false);
    loop {
        line.clear();
        match conn.read_line(&mut line) {
            Ok(0) => return Err(Failure::new("headers", "closed", false)),
            Ok(_) => {}
            Err(e) => return Err(Failure::new("headers", e, false)),
        }
        let header = line.trim_end();
        if header.is_empty() {
            break;
        }
        if let Some((name, value)) = header.split_once(':') {
            let value = value.trim();
            if name.eq_ignore_ascii_case("content-length") {
                length = value.parse::<u64>().ok();
            } else if name.eq_ignore_ascii_case("connection") {
                close = value.eq_ignore_ascii_case("close");
            }
        }
    }
    let length = length.ok_or_else(|| Failure::new("headers", "no Content-Length", false))?;
    let mut body = String::new();
    conn.take(length)
        .read_to_string(&mut body)
        .map_err(|e| Failure::new("body", e, false))?;
    if body.len() as u64 != length {
        return Err(Failure::new("body", "cut short", false));
    }
    Ok(Answer {
        status,
        body,
        close,
    })
}

/// The path of request `n` of client `client`: 0 to 19 ms of work, so that requests
/// are in flight at every SIGTERM.
pub fn path(client: usize, n: usize) -> (String, String) {
    let ms = (n * 7 + client * 3) % 20;
    (format!("/slow?ms={ms}"), format!("slept {ms} ms\n"))
}

/// Checks an answer to a request whose expected body is `body`.
pub fn check(answer: &Answer, body: &str) -> Result<(), Failure> {
    if answer.status == 200 && answer.body == body {
        Ok(())
    } else {
        let error = format!("{} {:?}", answer.status, answer.body);
        Err(Failure::new("answer", error, false))
    }
}

/// A client that opens a new connection for every request, until `stop`.
pub fn closing_client(addr: SocketAddr, client: usize, stop: &AtomicBool) -> Tally {
    let mut tally = Tally::default();
    // Relaxed: a flag polled between requests; nothing is published with it.
    for n in (0..MAX_REQUESTS).take_while(|_| !stop.load(Ordering::Relaxed)) {
        let (path, body) = path(client, n);
        let started = Instant::now();
        let result = connect(addr).and_then(|mut conn| {
            let answer = request(&mut conn, &path, true)?;
            check(&answer, &body)
        });
        tally.record(result, started, || format!("client {client}, {path}"));
    }
    tally
}

/// A client that keeps its connection alive, until `stop`. Like real HTTP clients, it
/// retries a request once, on a new connection, when a connection it had already used
/// is closed before any byte of the answer (the server closed it as idle, as the
/// request was on its way); and it opens a new connection after `Connection: close`.
pub fn keep_alive_client(addr: SocketAddr, client: usize, stop: &AtomicBool) -> Tally {
    let mut tally = Tally::default();
    // The connection, and whether a request has been answered on it.
    let mut conn: Option<(BufReader<TcpStream>, bool)> = None;
    // Relaxed: as in `closing_client`.
    for n in (0..MAX_REQUESTS).take_while(|_| !stop.load(Ordering::Relaxed)) {
        let (path, body) = path(client, n);
        let started = Instant::now();
        let mut retried = false;
        let result = loop {
            let (stream, reused) = match conn.take() {
                Some(open) => open,
                None => match connect(addr) {
                    Ok(stream) => (stream, false),
                    Err(f) => break Err(f),
                },
            };
            let mut stream = stream;
            match request(&mut stream, &path, false) {
                Ok(answer) => {
                    if !answer.close {
                        conn = Some((stream, true));
                    }
                    break check(&answer, &body);
                }
                Err(f) if f.before_any_byte && reused && !retried => {
                    retried = true;
                    tally.retries += 1;
                }
                Err(f) => break Err(f),
            }
        };
        tally.record(result, started, || {
            format!("keep-alive client {client}, {path}")
        });
    }
    tally
}

/// The `p`-th percentile of sorted `values` (nearest rank).
pub fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = (p / 100.0 * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

pub fn ms(duration: Duration) -> String {
    format!("{:.1} ms", duration.as_secs_f64() * 1000.0)
}

/// Clients running against one address until [`Load::stop`].
pub struct Load {
    stop: Arc<AtomicBool>,
    clients: Vec<JoinHandle<Tally>>,
}

impl Load {
    /// Starts [`CLOSING_CLIENTS`] clients that open a new connection for each request
    /// and [`KEEP_ALIVE_CLIENTS`] that keep theirs alive, against `addr`.
    pub fn start(addr: SocketAddr) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let clients = (0..CLOSING_CLIENTS + KEEP_ALIVE_CLIENTS)
            .map(|client| {
                let stop = Arc::clone(&stop);
                thread::spawn(move || {
                    if client < CLOSING_CLIENTS {
                        closing_client(addr, client, &stop)
                    } else {
                        keep_alive_client(addr, client, &stop)
                    }
                })
            })
            .collect();
        Load { stop, clients }
    }

    /// Stops the clients and returns what each saw.
    pub fn stop(mut self) -> Vec<Tally> {
        // Relaxed: the clients only poll it; their results come back through `join`.
        self.stop.store(true, Ordering::Relaxed);
        let clients = std::mem::take(&mut self.clients);
        clients.into_iter().map(super::join_within).collect()
    }
}

impl Drop for Load {
    fn drop(&mut self) {
        // Relaxed: as in `stop` (here a test failed, and the clients are left to end).
        self.stop.store(true, Ordering::Relaxed);
    }
}
