//! An HTTP/1.1 server on async-h1 and smol whose connections drain with
//! `serve::Connection` on Ctrl-C / SIGTERM: run it with
//! `cargo run --example async_h1_server [ADDR]` (default `127.0.0.1:8081`), then press
//! Ctrl-C.
//!
//! async-h1 has no graceful shutdown of its own, and needs none here: each stream is
//! wrapped in a `serve::Connection`, which watches its reads and writes. At the signal
//! the server stops accepting; a keep-alive connection waiting for its next request
//! reads end-of-stream, so async-h1 ends it at once; a request in progress finishes,
//! and its handler sees `closing()` and answers `Connection: close`. `serve::run`
//! does the rest: the signal watcher, the drain within `GRACE_MS` (default 10000),
//! the connections still open named on stderr, and the exit code (0 drained, 1
//! stragglers, 2 cannot start; a second Ctrl-C exits at once with 130).
//!
//! Try `curl 'http://127.0.0.1:8081/slow?ms=5000'` and press Ctrl-C while it waits.
//! Routes: `GET /slow?ms=N` answers after N ms (`400` without a valid `ms`); any other
//! path answers at once.

use std::io::{self, Write as _};
use std::process::ExitCode;
use std::time::Duration;

use http_types::headers::CONNECTION;
use http_types::{Request, Response, StatusCode};
use smol::net::{TcpListener, TcpStream};
use smol::Timer;
use smol_graceful::serve::{self, Connection};

fn main() -> ExitCode {
    // `RUST_LOG` sets the level (`info` by default): the signal and the stragglers.
    let env = env_logger::Env::default().default_filter_or("info");
    let _ = env_logger::Builder::from_env(env).try_init();
    let addr = std::env::args().nth(1);
    let addr = addr.unwrap_or_else(|| "127.0.0.1:8081".into());

    smol::block_on(serve::run(|shutdown, group| async move {
        let listener = TcpListener::bind(&addr)
            .await
            .map_err(|e| io::Error::new(e.kind(), format!("cannot listen on {addr}: {e}")))?;
        let local = listener.local_addr()?;
        // Flushed at the newline; without stdout the server serves on.
        let _ = writeln!(io::stdout(), "listening on http://{local}");
        while let Some(accepted) = shutdown.run_until_triggered(listener.accept()).await {
            let (stream, peer) = match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of file descriptors, say: back off instead of spinning.
                    log::warn!("accept failed: {e}");
                    Timer::after(Duration::from_millis(100)).await;
                    continue;
                }
            };
            let name = format!("connection {peer}");
            let conn = Connection::new(stream, &group, &shutdown, name)?;
            // async-h1 reads and writes through clones of the stream: the clones of
            // a `Connection` share its state and its count in `group`.
            let served = async_h1::accept(conn.clone(), move |req| respond(req, conn.clone()));
            smol::spawn(async move {
                if let Err(e) = served.await {
                    log::debug!("connection {peer}: {e}");
                }
            })
            .detach();
        }
        Ok(()) // the listener closes here: new connections are refused
    }))
}

/// Answers one request, with `Connection: close` once the drain has begun.
async fn respond(req: Request, conn: Connection<TcpStream>) -> http_types::Result<Response> {
    // In progress until answered, also while it reads a body after async-h1's
    // `100 Continue` (an interim answer the connection cannot tell from the final one).
    let _busy = conn.busy();
    let mut response = match req.url().path() {
        "/slow" => {
            let mut query = req.url().query_pairs();
            let ms = query.find_map(|(key, value)| (key == "ms").then(|| value.parse().ok()));
            match ms.flatten() {
                Some(ms) => {
                    // Not raced against the shutdown: work in progress may finish.
                    Timer::after(Duration::from_millis(ms)).await;
                    text(StatusCode::Ok, format!("slept {ms} ms\n"))
                }
                None => text(StatusCode::BadRequest, "/slow needs ?ms=N (milliseconds)\n"),
            }
        }
        _ => text(StatusCode::Ok, "hello\n"),
    };
    if conn.closing() {
        response.insert_header(CONNECTION, "close");
    }
    Ok(response)
}

/// A `text/plain` response.
fn text(status: StatusCode, body: impl Into<String>) -> Response {
    let mut response = Response::new(status);
    response.set_body(body.into());
    response
}
