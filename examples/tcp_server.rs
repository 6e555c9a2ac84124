//! A TCP server on smol that drains its connections on Ctrl-C / SIGTERM: the whole
//! graceful shutdown is `serve::run` around an accept loop, with each connection
//! wrapped in a `serve::Connection`. Start here.
//!
//! Run it with `cargo run --example tcp_server [ADDR]` (default `127.0.0.1:7000`;
//! `127.0.0.1:0` picks a free port), talk to it with `nc 127.0.0.1 7000`, then press
//! Ctrl-C in the server's terminal.
//!
//! Each line is a request, answered with one line: `PING` gets `PONG`, `SLOW <ms>`
//! gets `DONE <ms>` after `ms` milliseconds, anything else `ERR unknown command`.
//!
//! Send `SLOW 5000` and press Ctrl-C while it waits: the server stops accepting,
//! closes idle connections at once, lets the slow request finish (its answer ends with
//! ` (closing)`, as HTTP says `Connection: close`), closes that connection too and
//! exits 0. A drain longer than `GRACE_MS` (default 10000) exits 1, naming the
//! connections still open; a second Ctrl-C exits at once with 130; an address it
//! cannot bind exits 2.

use std::io::{self, Write as _};
use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use smol::io::{AsyncBufReadExt as _, AsyncWriteExt as _, BufReader};
use smol::net::{TcpListener, TcpStream};
use smol::Timer;
use smol_graceful::serve::{self, Connection};

fn main() -> ExitCode {
    let env = env_logger::Env::default().default_filter_or("info");
    let _ = env_logger::Builder::from_env(env).try_init();
    let addr = std::env::args().nth(1);
    let addr = addr.unwrap_or_else(|| "127.0.0.1:7000".to_owned());

    // `run` watches SIGINT/SIGTERM, runs this service until the first one, waits for
    // the connections to drain, and returns the exit code.
    smol::block_on(serve::run(|shutdown, group| async move {
        let listener = TcpListener::bind(&addr).await?;
        let mut stdout = io::stdout();
        writeln!(stdout, "listening on {}", listener.local_addr()?)?;
        stdout.flush()?;
        // `None` once the shutdown has triggered: stop accepting.
        while let Some(accepted) = shutdown.run_until_triggered(listener.accept()).await {
            let (stream, peer) = match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of file descriptors, say: wait, and go on serving.
                    log::warn!("accept: {e}");
                    Timer::after(Duration::from_millis(100)).await;
                    continue;
                }
            };
            let name = format!("connection {peer}");
            let conn = Connection::new(stream, &group, &shutdown, name)?;
            smol::spawn(handle(conn, peer)).detach();
        }
        Ok(()) // The listener closes here; `run` drains the connections.
    }))
}

/// Serves one connection; logs the error that ended it, if one did.
async fn handle(conn: Connection<TcpStream>, peer: SocketAddr) {
    if let Err(e) = answer_lines(conn).await {
        log::warn!("connection {peer}: {e}");
    }
}

/// Answers each line read from `conn` with one line, until the client closes the
/// connection, or the shutdown does between requests. Dropping `conn` at the end
/// closes it and ends its count in the group.
async fn answer_lines(conn: Connection<TcpStream>) -> io::Result<()> {
    let mut reader = BufReader::new(conn.clone());
    let mut writer = conn;
    let mut line = String::new();
    // Once the shutdown has triggered, `Connection` reads end of stream unless a
    // request is in progress: the loop ends there, after answering that request.
    while reader.read_line(&mut line).await? > 0 {
        let mut answer = respond(line.trim_end()).await;
        if writer.closing() {
            answer.push_str(" (closing)");
        }
        answer.push('\n');
        writer.write_all(answer.as_bytes()).await?;
        line.clear();
    }
    Ok(())
}

/// The answer to one request.
async fn respond(request: &str) -> String {
    let slow = request.strip_prefix("SLOW ");
    match (request, slow.and_then(|ms| ms.parse().ok())) {
        ("PING", _) => "PONG".to_owned(),
        (_, Some(ms)) => {
            Timer::after(Duration::from_millis(ms)).await;
            format!("DONE {ms}")
        }
        _ => "ERR unknown command".to_owned(),
    }
}
