//! An HTTP/1.1 server that drains its connections on Ctrl-C / SIGTERM: run it with
//! `cargo run --example http_server [ADDR]`, then press Ctrl-C.
//!
//! Try `curl 'http://127.0.0.1:8080/slow?ms=5000'` and press Ctrl-C while it waits: the
//! server stops accepting, closes idle keep-alive connections at once, lets the slow
//! request finish (answered with `Connection: close`) and exits 0. A second Ctrl-C exits
//! at once with 130. `GRACE_MS` (default 10000) bounds the drain; past it the server names
//! the connections still open and exits 1. It exits 2 if it cannot start.
//!
//! Routes: `GET /slow?ms=N` answers after N ms (`400` without a valid `ms`); any other
//! path answers at once. No web framework: the request head is parsed by hand below.

use std::io::{self, Write as _};
use std::time::Duration;

use smol::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use smol::net::{TcpListener, TcpStream};
use smol_graceful::{signal, Group, Shutdown};

/// The largest request head (request line and headers) we read.
const MAX_HEAD: u64 = 8 * 1024;

fn main() {
    if log::set_logger(&StderrLogger).is_ok() {
        let level = std::env::var("RUST_LOG").ok().and_then(|l| l.parse().ok());
        log::set_max_level(level.unwrap_or(log::LevelFilter::Info));
    }

    let addr = std::env::args().nth(1);
    let addr = addr.as_deref().unwrap_or("127.0.0.1:8080");
    let grace = match std::env::var("GRACE_MS").map(|ms| ms.parse()) {
        Err(_) => Duration::from_secs(10),
        Ok(Ok(ms)) => Duration::from_millis(ms),
        Ok(Err(_)) => {
            eprintln!("http_server: GRACE_MS must be a number of milliseconds");
            exit(2);
        }
    };
    exit(smol::block_on(run(addr, grace)));
}

/// Serves on `addr` until a signal, drains, and returns the exit code.
async fn run(addr: &str, grace: Duration) -> i32 {
    let bound = TcpListener::bind(addr).await;
    let (local, listener) = match bound.and_then(|l| Ok((l.local_addr()?, l))) {
        Ok(bound) => bound,
        Err(e) => {
            eprintln!("http_server: cannot listen on {addr}: {e}");
            return 2;
        }
    };
    let shutdown = Shutdown::new();
    // The first SIGINT/SIGTERM triggers `shutdown`; a second one exits at once with
    // 128 + signo. A detached task on smol's global executor lives until the process
    // exits, which keeps the handlers installed.
    match signal::watch(&shutdown) {
        Ok(watcher) => smol::spawn(watcher).detach(),
        Err(e) => {
            eprintln!("http_server: cannot watch signals: {e}");
            return 2;
        }
    }
    say(format_args!("listening on http://{local}"));

    let group = Group::new();
    let acceptor = smol::spawn(accept(listener, group.clone(), shutdown.clone()));
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
            eprintln!(
                "http_server: gave up after {} ms: {stragglers}",
                grace.as_millis()
            );
            1
        }
    }
}

/// Accepts connections until shutdown; each one is served by its own task, tracked in
/// `group` under the peer's address.
async fn accept(listener: TcpListener, group: Group, shutdown: Shutdown) {
    while let Some(accepted) = shutdown.run_until_triggered(listener.accept()).await {
        let (stream, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(e) => {
                // For example out of file descriptors: back off instead of spinning.
                log::warn!("accept failed: {e}");
                smol::Timer::after(Duration::from_millis(100)).await;
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
            if let Err(e) = serve(stream, &shutdown).await {
                log::debug!("connection {peer}: {e}");
            }
        })
        .detach();
    }
    // `listener` is dropped here, which closes the listening socket.
}

/// Serves the requests of one keep-alive connection until the client closes it, a
/// request asks to close or is malformed, or shutdown starts while it is idle.
async fn serve(stream: TcpStream, shutdown: &Shutdown) -> io::Result<()> {
    let mut reader = BufReader::new(stream.clone());
    let mut writer = stream;
    loop {
        // Idle between requests: wait for the next one, or for shutdown.
        let next = async { reader.fill_buf().await.map(|buf| buf.len()) };
        let arrived = match shutdown.run_until_triggered(next).await {
            Some(arrived) => arrived?,
            // Shutdown: close now, unless a request has already arrived (sent before
            // the client could know); that one is answered, with `Connection: close`.
            None => match smol::future::poll_once(reader.fill_buf()).await {
                Some(buf) => buf?.len(),
                None => return Ok(()),
            },
        };
        if arrived == 0 {
            return Ok(()); // the client closed the connection
        }
        // From the first byte on, a request runs to completion: shutdown does not cut it.
        let (status, body, keep_alive) = match read_request(&mut reader).await? {
            Ok(request) => {
                let (status, body) = respond(&request).await;
                (status, body, request.keep_alive)
            }
            Err(why) => (400, format!("bad request: {why}\n"), false),
        };
        // Checked after the work, so a request that was running when shutdown began
        // tells the client that this connection is closing.
        let keep_alive = keep_alive && !shutdown.is_triggered();
        let response = response(status, &body, keep_alive);
        writer.write_all(response.as_bytes()).await?;
        if !keep_alive {
            return Ok(());
        }
    }
}

/// A parsed request head.
struct Request {
    method: String,
    target: String,
    keep_alive: bool,
}

/// Reads one request head. `Ok(Err(why))` for a malformed request; `Err` for an I/O
/// error or a connection closed mid-request.
async fn read_request(reader: &mut BufReader<TcpStream>) -> io::Result<Result<Request, String>> {
    let mut head = Vec::new();
    let mut limited = (&mut *reader).take(MAX_HEAD);
    loop {
        let start = head.len();
        if limited.read_until(b'\n', &mut head).await? == 0 {
            if limited.limit() == 0 {
                return Ok(Err("request head too large".into()));
            }
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        if matches!(&head[start..], b"\r\n" | b"\n") {
            break; // the empty line that ends the head
        }
    }
    Ok(parse_head(&String::from_utf8_lossy(&head)).map_err(String::from))
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
        _ => "Method Not Allowed",
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

/// Flushes what is buffered, then exits with `code`.
fn exit(code: i32) -> ! {
    let _ = io::stdout().flush();
    log::logger().flush();
    std::process::exit(code)
}

/// A minimal `log` backend: `[LEVEL] message` on stderr; the level comes from
/// `RUST_LOG` (`info` by default). The library logs the signals it receives.
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
