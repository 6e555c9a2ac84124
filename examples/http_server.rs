//! An HTTP/1.1 server that drains its connections on Ctrl-C / SIGTERM: run it with
//! `cargo run --example http_server [ADDR]`, then press Ctrl-C.
//!
//! Try `curl 'http://127.0.0.1:8080/slow?ms=5000'` and press Ctrl-C while it waits: the
//! server stops accepting, closes idle keep-alive connections at once, lets the slow
//! request finish (answered with `Connection: close`) and exits 0. A second Ctrl-C exits
//! at once with 130. `GRACE_MS` (default 10000) bounds the drain; past it the server names
//! the connections still open and exits 1. It exits 2 if it cannot start.
//!
//! `HEADER_TIMEOUT_MS` (default 10000) bounds the wait for a request head, counted from
//! when the server starts waiting for it (on connect, and after each response): a
//! connection with nothing sent by then is closed, one with part of a head is answered
//! `408` and closed. At shutdown a connection in the middle of sending a head is not
//! waited for: it is answered `503` and closed. (The README says what happens to each
//! kind of connection at shutdown.)
//!
//! Routes: `GET /slow?ms=N` answers after N ms (`400` without a valid `ms`); any other
//! path answers at once. No web framework: the request head is parsed by hand below.

use std::fmt;
use std::io::{self, Write as _};
use std::pin::pin;
use std::time::Duration;

use smol::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use smol::net::{TcpListener, TcpStream};
use smol::Timer;
use smol_graceful::{signal, Group, Shutdown};

/// The largest request head (request line and headers) we read.
const MAX_HEAD: u64 = 8 * 1024;
/// When the server closes a connection after a response, how long it keeps reading
/// (and discarding) what the client still sends; see [`close_politely`].
const LINGER: Duration = Duration::from_millis(500);
/// And at most how much of it.
const LINGER_BYTES: usize = 64 * 1024;

fn main() {
    if log::set_logger(&StderrLogger).is_ok() {
        let level = std::env::var("RUST_LOG").ok().and_then(|l| l.parse().ok());
        log::set_max_level(level.unwrap_or(log::LevelFilter::Info));
    }

    let addr = std::env::args().nth(1);
    let addr = addr.as_deref().unwrap_or("127.0.0.1:8080");
    let (grace, header_timeout) = match (env_ms("GRACE_MS"), env_ms("HEADER_TIMEOUT_MS")) {
        (Ok(grace), Ok(header)) => (
            grace.unwrap_or(Duration::from_secs(10)),
            header.unwrap_or(Duration::from_secs(10)),
        ),
        (Err(name), _) | (_, Err(name)) => {
            complain(format_args!(
                "http_server: {name} must be a number of milliseconds"
            ));
            exit(2);
        }
    };
    exit(smol::block_on(run(addr, grace, header_timeout)));
}

/// Serves on `addr` until a signal, drains, and returns the exit code.
async fn run(addr: &str, grace: Duration, header_timeout: Duration) -> i32 {
    // The handlers go in first, before anything that can take time (resolving and
    // binding the address): until they are installed, a SIGTERM kills the process with
    // the default action and nothing is drained. The first SIGINT/SIGTERM triggers
    // `shutdown`; a second one exits at once with 128 + signo. A detached task on
    // smol's global executor lives until the process exits, which keeps the handlers
    // installed.
    let shutdown = Shutdown::new();
    match signal::watch(&shutdown) {
        Ok(watcher) => smol::spawn(watcher).detach(),
        Err(e) => {
            complain(format_args!("http_server: cannot watch signals: {e}"));
            return 2;
        }
    }
    say(format_args!(
        "starting (pid {}): Ctrl-C or SIGTERM drains, a second one exits at once",
        std::process::id()
    ));

    let bound = TcpListener::bind(addr).await;
    let (local, listener) = match bound.and_then(|l| Ok((l.local_addr()?, l))) {
        Ok(bound) => bound,
        Err(e) => {
            complain(format_args!("http_server: cannot listen on {addr}: {e}"));
            return 2;
        }
    };
    say(format_args!("listening on http://{local}"));

    let group = Group::new();
    let acceptor = smol::spawn(accept(
        listener,
        group.clone(),
        shutdown.clone(),
        header_timeout,
    ));
    shutdown.triggered().await;
    // The acceptor returns once it has dropped the listener: from here on, new
    // connections are refused.
    acceptor.await;
    let reason = shutdown
        .reason()
        .map_or("unknown".into(), |r| r.to_string());
    say(format_args!(
        "shutdown: {reason}; draining {} connection(s)",
        group.len()
    ));
    match group.wait_timeout(grace).await {
        Ok(()) => {
            say(format_args!("drained, exiting"));
            0
        }
        Err(stragglers) => {
            say(format_args!("grace period over, exiting with stragglers"));
            complain(format_args!(
                "http_server: gave up after {} ms: {stragglers}",
                grace.as_millis()
            ));
            1
        }
    }
}

/// Accepts connections until shutdown; each one is served by its own task, tracked in
/// `group` under the peer's address.
async fn accept(listener: TcpListener, group: Group, shutdown: Shutdown, header_timeout: Duration) {
    while let Some(accepted) = shutdown.run_until_triggered(listener.accept()).await {
        let (stream, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(e) => {
                // For example out of file descriptors: back off instead of spinning.
                // The head timeout frees descriptors held by stalled clients.
                log::warn!("accept failed: {e}");
                Timer::after(Duration::from_millis(100)).await;
                continue;
            }
        };
        // Named, so that if the drain times out the report says which connections hung.
        let Ok(guard) = group.add_named(format!("connection {peer}")) else {
            break; // the group is closed: we are draining already
        };
        let shutdown = shutdown.clone();
        smol::spawn(async move {
            let _guard = guard; // dropped when this task ends, however it ends
            if let Err(e) = serve(stream, &shutdown, header_timeout).await {
                log::debug!("connection {peer}: {e}");
            }
        })
        .detach();
    }
    // `listener` is dropped here, which closes the listening socket.
}

/// Serves the requests of one keep-alive connection until the client closes it, a
/// request asks to close or is malformed, its head does not arrive in time, or
/// shutdown starts while it is idle.
async fn serve(stream: TcpStream, shutdown: &Shutdown, header_timeout: Duration) -> io::Result<()> {
    let mut reader = BufReader::new(stream.clone());
    let mut writer = stream;
    loop {
        let (status, body, keep_alive) =
            match read_head(&mut reader, shutdown, header_timeout).await? {
                // The client closed the connection, or sent nothing in time, or shutdown
                // found it idle: there is nothing to answer.
                Head::Nothing => return Ok(()),
                // From a complete head on, a request runs to completion: shutdown does not
                // cut it.
                Head::Complete(Ok(request)) => {
                    let (status, body) = respond(&request).await;
                    (status, body, request.keep_alive)
                }
                Head::Complete(Err(why)) => (400, format!("bad request: {why}\n"), false),
                Head::TimedOut => (
                    408,
                    "timed out waiting for the request head\n".into(),
                    false,
                ),
                Head::ShuttingDown => (503, "shutting down\n".into(), false),
            };
        // Checked after the work, so a request that was running when shutdown began
        // tells the client that this connection is closing.
        let keep_alive = keep_alive && !shutdown.is_triggered();
        let response = response(status, &body, keep_alive);
        writer.write_all(response.as_bytes()).await?;
        if !keep_alive {
            close_politely(&writer, &mut reader).await;
            return Ok(());
        }
    }
}

/// How the wait for a request head ended.
enum Head {
    /// A whole head: the request, or why it is malformed (or too large).
    Complete(Result<Request, String>),
    /// Nothing of a request: the client closed the connection, or sent nothing within
    /// the head timeout, or shutdown started.
    Nothing,
    /// Part of a head, and the head timeout expired.
    TimedOut,
    /// Part of a head, and shutdown started.
    ShuttingDown,
}

/// Waits for the next request head, for at most `timeout`, or until shutdown. A head
/// that has arrived whole when shutdown starts (sent before the client could know) is
/// still returned, to be served.
async fn read_head(
    reader: &mut BufReader<TcpStream>,
    shutdown: &Shutdown,
    timeout: Duration,
) -> io::Result<Head> {
    let mut head = Vec::new();
    let cut = {
        let mut read = pin!(read_head_bytes(reader, &mut head));
        let stop = async {
            let expired = async {
                Timer::after(timeout).await;
                Head::TimedOut
            };
            let stopping = async {
                shutdown.triggered().await;
                Head::ShuttingDown
            };
            smol::future::or(expired, stopping).await
        };
        let read_or_stop = async { Ok(read.as_mut().await) };
        match smol::future::or(read_or_stop, async { Err(stop.await) }).await {
            Ok(read) => return read,
            // One last look, without waiting, at what has already arrived.
            Err(Head::ShuttingDown) => match smol::future::poll_once(read.as_mut()).await {
                Some(read) => return read,
                None => Head::ShuttingDown,
            },
            Err(cut) => cut,
        }
    };
    // Cut short: is a request half-way through arriving?
    if head.is_empty() && reader.buffer().is_empty() {
        Ok(Head::Nothing)
    } else {
        Ok(cut)
    }
}

/// Reads one request head into `head`. `Err` for an I/O error or a connection closed
/// mid-request.
async fn read_head_bytes(
    reader: &mut BufReader<TcpStream>,
    head: &mut Vec<u8>,
) -> io::Result<Head> {
    let mut limited = (&mut *reader).take(MAX_HEAD);
    loop {
        let start = head.len();
        if limited.read_until(b'\n', head).await? == 0 {
            if limited.limit() == 0 {
                return Ok(Head::Complete(Err("request head too large".into())));
            }
            if head.is_empty() {
                return Ok(Head::Nothing); // the client closed the connection
            }
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        if matches!(&head[start..], b"\r\n" | b"\n") {
            break; // the empty line that ends the head
        }
    }
    Ok(Head::Complete(
        parse_head(&String::from_utf8_lossy(head)).map_err(String::from),
    ))
}

/// Closes a connection after the last response without losing that response. Closing a
/// socket that has unread input (the rest of an oversized head, a request pipelined
/// behind the last one) makes the kernel send RST instead of FIN, and a client that
/// gets RST may lose the response before reading it. So: end our side (the client
/// reads the response, then EOF), then read and discard what the client still sends
/// until it closes, for at most [`LINGER`] and [`LINGER_BYTES`].
async fn close_politely(stream: &TcpStream, reader: &mut BufReader<TcpStream>) {
    if stream.shutdown(std::net::Shutdown::Write).is_err() {
        return; // not connected any more: nothing to protect
    }
    let drain = async {
        let mut buf = [0; 4096];
        let mut left = LINGER_BYTES;
        while left > 0 {
            match reader.read(&mut buf).await {
                Ok(0) | Err(_) => return, // the client closed (or reset) its side
                Ok(n) => left = left.saturating_sub(n),
            }
        }
    };
    smol::future::or(drain, async {
        Timer::after(LINGER).await;
    })
    .await;
}

/// A parsed request head.
struct Request {
    method: String,
    target: String,
    keep_alive: bool,
}

/// Parses a request head. GET requests have no body, so we accept none.
fn parse_head(head: &str) -> Result<Request, &'static str> {
    let mut lines = head.lines();
    let mut parts = lines.next().unwrap_or_default().split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err("malformed request line");
    };
    let mut keep_alive = match version {
        "HTTP/1.1" => true, // keep-alive unless asked otherwise
        "HTTP/1.0" => false,
        _ => return Err("unsupported HTTP version"),
    };
    for line in lines.take_while(|line| !line.is_empty()) {
        let (name, value) = line.split_once(':').ok_or("malformed header")?;
        let value = value.trim();
        if name.eq_ignore_ascii_case("connection") {
            for option in value.split(',').map(str::trim) {
                if option.eq_ignore_ascii_case("close") {
                    keep_alive = false;
                } else if option.eq_ignore_ascii_case("keep-alive") {
                    keep_alive = true;
                }
            }
        } else if name.eq_ignore_ascii_case("transfer-encoding")
            || name.eq_ignore_ascii_case("content-length") && value != "0"
        {
            return Err("request bodies are not supported");
        }
    }
    let (method, target) = (method.to_owned(), target.to_owned());
    Ok(Request {
        method,
        target,
        keep_alive,
    })
}

/// Routes a request; returns the status and body of the response.
async fn respond(request: &Request) -> (u16, String) {
    if request.method != "GET" {
        return (405, "only GET is supported\n".into());
    }
    let (path, query) = request
        .target
        .split_once('?')
        .unwrap_or((&request.target, ""));
    if path != "/slow" {
        return (200, "hello\n".into());
    }
    let ms = query.split('&').find_map(|pair| pair.strip_prefix("ms="));
    match ms.and_then(|ms| ms.parse::<u64>().ok()) {
        Some(ms) => {
            // Not raced against shutdown: in-flight work is allowed to finish.
            smol::Timer::after(Duration::from_millis(ms)).await;
            (200, format!("slept {ms} ms\n"))
        }
        None => (400, "/slow needs ?ms=N (milliseconds)\n".into()),
    }
}

/// Formats a complete response.
fn response(status: u16, body: &str, keep_alive: bool) -> String {
    let reason = match status {
        200 => "OK",
        400 => "Bad Request",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        _ => "Service Unavailable",
    };
    let connection = if keep_alive { "keep-alive" } else { "close" };
    format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\
         Connection: {connection}\r\n\r\n{body}",
        body.len()
    )
}

/// Prints a progress line on stdout and flushes it, so a supervisor sees it at once.
fn say(line: std::fmt::Arguments<'_>) {
    let mut stdout = io::stdout().lock();
    let _ = writeln!(stdout, "{line}").and_then(|()| stdout.flush());
}

/// Prints a line on stderr. A write error is ignored: with stderr gone (`2>/dev/full`,
/// a log pipe whose reader died) the server must keep serving and draining, and
/// `eprintln!` would panic instead.
fn complain(line: fmt::Arguments<'_>) {
    let _ = writeln!(io::stderr(), "{line}");
}

/// Reads `name` as milliseconds: `Ok(None)` if unset, `Err(name)` if not a number.
fn env_ms(name: &'static str) -> Result<Option<Duration>, &'static str> {
    match std::env::var(name) {
        Err(_) => Ok(None),
        Ok(ms) => ms
            .parse()
            .map(|ms| Some(Duration::from_millis(ms)))
            .map_err(|_| name),
    }
}

/// Flushes what is buffered, then exits with `code`.
fn exit(code: i32) -> ! {
    // The signal watcher logs on a thread of its own: let it finish.
    signal::flush_log(Duration::from_millis(100));
    let _ = io::stdout().flush();
    log::logger().flush();
    std::process::exit(code)
}

/// A minimal `log` backend: `[LEVEL] message` on stderr; the level comes from
/// `RUST_LOG` (`info` by default). The library logs the signals it receives. It never
/// panics: a logger runs inside whatever code logs, here the signal watcher.
struct StderrLogger;

impl log::Log for StderrLogger {
    fn enabled(&self, metadata: &log::Metadata<'_>) -> bool {
        metadata.level() <= log::max_level()
    }

    fn log(&self, record: &log::Record<'_>) {
        if self.enabled(record.metadata()) {
            complain(format_args!("[{}] {}", record.level(), record.args()));
        }
    }

    fn flush(&self) {}
}
