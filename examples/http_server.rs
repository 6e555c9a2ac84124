//! An HTTP server on hyper 1 and smol that drains its connections on Ctrl-C / SIGTERM:
//! run it with `cargo run --example http_server [ADDR]`, then press Ctrl-C.
//!
//! Try `curl 'http://127.0.0.1:8080/slow?ms=5000'` and press Ctrl-C while it waits: the
//! server stops accepting, closes idle keep-alive connections at once, lets the slow
//! request finish (answered with `Connection: close`) and exits 0. A second Ctrl-C exits
//! at once with 130. It exits 2 if it cannot start.
//!
//! Routes: `GET /slow?ms=N` answers after N ms (`400` without a valid `ms`);
//! `GET /healthz` answers `200` while serving and `503` once shutdown has begun; any
//! other path answers `200` at once. A client that shuts down its write side after
//! sending its request (`nc -N`) gets its answer, then the connection closes.
//!
//! Settings, in milliseconds, from the environment:
//! - `DRAIN_DELAY_MS` (default 0): after the first signal, keep accepting and serving
//!   this long, with `/healthz` at 503, so that a load balancer (or Kubernetes' endpoint
//!   controller) stops sending traffic before the listener closes.
//! - `GRACE_MS` (default 10000): then how long the drain may take; past it the server
//!   names the connections still open and exits 1.
//! - `HEADER_TIMEOUT_MS` (default 10000): how long a request head may take to arrive,
//!   counted from when the server starts waiting for it; past it hyper closes the
//!   connection (without a `408`).
//!
//! Each connection is served by hyper and watched with `smol_graceful::hyper::watch`,
//! which calls hyper's `graceful_shutdown` when the drain starts and counts the
//! connection in a `Group`, named after its peer, until it ends. `main` is
//! `smol_graceful::serve::run` around the service: the signals, the drain within
//! `GRACE_MS` and the exit code are its; past the grace, `main` drops the stragglers.
//!
//! Socket activation: when a service manager hands over a listening socket as fd 3
//! (`LISTEN_FDS=1`, and `LISTEN_PID` this process or unset: systemd's `.socket` units,
//! `systemfd` in development), the server serves on it and ignores `ADDR`. It owns only
//! its descriptor: at shutdown it stops accepting and closes that, and the socket goes
//! on listening in the manager, whose kernel queue holds new connections until the next
//! instance accepts them. So a restart refuses nothing.
//!
//! Upgrades, with `--features upgrade` (Unix): `kill -HUP <pid>` starts the executable
//! now at this one's path, with the same arguments, handing it the listening socket
//! (`smol_graceful::upgrade`). Once it says it is ready (its `systemd::ready()`), this
//! instance stops accepting and drains as at SIGTERM (without the drain delay: the
//! address keeps being served), while the new one serves on the same socket; nothing is
//! refused and nothing waits for the drain. If the new one exits or is not ready within
//! `READY_TIMEOUT_MS` (default 30000), this one logs why and goes on serving. SIGINT
//! and SIGTERM keep their meaning during an upgrade.
//!
//! With `--features systemd` it also tells systemd what it does (`NOTIFY_SOCKET`):
//! `READY=1` once listening, `STOPPING=1` at the signal, `EXTEND_TIMEOUT_USEC` while it
//! waits out the drain delay and drains, and `WATCHDOG=1` if the unit sets
//! `WatchdogSec`. A notification that fails is logged, and the server carries on.

use std::convert::Infallible;
use std::io::{self, Write as _};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use smol::net::TcpListener;
use smol::Timer;
use smol_graceful::{serve, Group, Reason, Shutdown};
use smol_hyper::rt::{FuturesIo, SmolTimer};

/// The settings from the environment (`serve::run` reads `GRACE_MS`).
struct Settings {
    drain_delay: Duration,
    header_timeout: Duration,
    #[cfg(feature = "upgrade")]
    ready_timeout: Duration,
}

impl Settings {
    fn from_env() -> io::Result<Settings> {
        Ok(Settings {
            drain_delay: env_ms("DRAIN_DELAY_MS")?.unwrap_or_default(),
            header_timeout: env_ms("HEADER_TIMEOUT_MS")?.unwrap_or(Duration::from_secs(10)),
            #[cfg(feature = "upgrade")]
            ready_timeout: env_ms("READY_TIMEOUT_MS")?.unwrap_or(Duration::from_secs(30)),
        })
    }
}

fn main() -> ExitCode {
    // `RUST_LOG` sets the level (`info` by default). env_logger ignores write errors:
    // with stderr gone (`2>/dev/full`, a dead log pipe) the server keeps serving.
    let env = env_logger::Env::default().default_filter_or("info");
    let _ = env_logger::Builder::from_env(env).try_init();
    let addr = std::env::args().nth(1);
    let addr = addr.as_deref().unwrap_or("127.0.0.1:8080");

    // `run` installs the signal handlers before `serve` binds anything, runs it, drains
    // the connections for GRACE_MS (naming the stragglers) and returns the exit code:
    // 0, 1 with stragglers, 2 if it cannot start; a second signal exits with 128 + signo.
    // `forced` then drops the stragglers, whose group `connections` keeps.
    let (forced, mut connections) = (Shutdown::new(), None);
    let code = smol::block_on(serve::run(|shutdown, group| {
        connections = Some(group.clone());
        serve(addr, shutdown, group, forced.clone())
    }));
    match connections {
        _ if code == ExitCode::SUCCESS => say(format_args!("drained, exiting")),
        Some(group) if code == ExitCode::from(1) => {
            say(format_args!("grace period over, exiting with stragglers"));
            // Grace, then force (as `TaskSet::join_timeout`, `abort`, `join`): drop
            // the connections still open, so that each closes now, and see them go.
            let open = group.len();
            forced.trigger();
            match smol::block_on(group.wait_timeout(Duration::from_millis(500))) {
                Ok(()) => say(format_args!("closed the {open} connection(s) still open")),
                Err(left) => log::error!("still open after being closed: {left}"),
            }
        }
        _ => {}
    }
    code
}

/// The service: serves on `addr` until the signal and then for the drain delay, and
/// returns once the listener is closed; `serve::run` then drains `group`. `forced`
/// drops the connections still open.
async fn serve(addr: &str, shutdown: Shutdown, group: Group, forced: Shutdown) -> io::Result<()> {
    let settings = Settings::from_env()?;
    say(format_args!(
        "starting (pid {}): Ctrl-C or SIGTERM drains, a second one exits at once",
        std::process::id()
    ));
    // SIGHUP is caught from here on (its default action would end the process).
    #[cfg(feature = "upgrade")]
    let hangups = async_signal::Signals::new([async_signal::Signal::Hup])?;
    let (local, listener) = listen(addr).await.map_err(io::Error::other)?;
    #[cfg(feature = "upgrade")]
    smol::spawn(upgrade_on_hangup(
        hangups,
        &listener,
        &shutdown,
        settings.ready_timeout,
    )?)
    .detach();
    say(format_args!("listening on http://{local}"));
    #[cfg(feature = "systemd")]
    {
        use smol_graceful::systemd;
        if let Err(e) = systemd::ready() {
            log::warn!("{e}");
        }
        if let Some(watchdog) = systemd::watchdog() {
            smol::spawn(watchdog).detach();
        }
    }

    // `shutdown` (the signal) turns /healthz to 503; `draining`, triggered after the
    // drain delay, stops accepting and closes the connections gracefully.
    let draining = Shutdown::new();
    let acceptor = smol::spawn(accept(
        listener,
        group.clone(),
        shutdown.clone(),
        [draining.clone(), forced],
        settings.header_timeout,
    ));
    // Waits for the signal (and with `systemd`, then sends STOPPING=1, and
    // EXTEND_TIMEOUT_USEC now and every 5 s until the exit, so that the unit's
    // TimeoutStopSec does not cut a drain that GRACE_MS still allows).
    #[cfg(not(feature = "systemd"))]
    shutdown.triggered().await;
    #[cfg(feature = "systemd")]
    {
        use smol_graceful::systemd;
        if let Err(e) = systemd::notify_on_shutdown(&shutdown).await {
            log::warn!("{e}");
        }
        let until_exit = std::future::pending::<()>();
        smol::spawn(systemd::extend_timeout_while(
            Duration::from_secs(10),
            until_exit,
        ))
        .detach();
    }
    let reason = shutdown
        .reason()
        .map_or("unknown".into(), |r| r.to_string());
    // After an upgrade the address goes on being served: no delay is needed.
    let upgraded = matches!(shutdown.reason(), Some(Reason::Upgraded { .. }));
    if !settings.drain_delay.is_zero() && !upgraded {
        // Still serving, but /healthz says 503: time for the load balancer to notice.
        say(format_args!(
            "{reason}: serving {} ms more before draining",
            settings.drain_delay.as_millis()
        ));
        Timer::after(settings.drain_delay).await;
    }
    draining.trigger();
    // The acceptor returns once it has dropped the listener: from here on, new
    // connections are refused (or, on a socket from a service manager, left queued for
    // the next instance).
    acceptor.await;
    say(format_args!(
        "shutdown: {reason}; draining {} connection(s)",
        group.len()
    ));
    Ok(())
}

/// The listening socket: the one a service manager handed over (socket activation), or
/// else `addr` bound; with its address. `Err` says what failed.
async fn listen(addr: &str) -> Result<(std::net::SocketAddr, TcpListener), String> {
    // `LISTEN_FDS` (and `LISTEN_PID`, when set, naming this process) say whether fd 3
    // is ours. listenfd checks that it is a TCP socket before it takes it.
    let inherited = match listenfd::ListenFd::from_env().take_tcp_listener(0) {
        Ok(inherited) => inherited,
        Err(e) => return Err(format!("cannot use the socket from LISTEN_FDS: {e}")),
    };
    let listener = match inherited {
        Some(listener) => {
            log::info!("serving on the inherited socket (LISTEN_FDS), not {addr}");
            TcpListener::try_from(listener)
                .map_err(|e| format!("cannot use the socket from LISTEN_FDS: {e}"))?
        }
        None => TcpListener::bind(addr)
            .await
            .map_err(|e| format!("cannot listen on {addr}: {e}"))?,
    };
    match listener.local_addr() {
        Ok(local) => Ok((local, listener)),
        Err(e) => Err(format!("cannot listen on {addr}: {e}")),
    }
}

/// Upgrades on each SIGHUP (from `hangups`) until `shutdown` triggers: hands `listener` to a new
/// instance and, once it is ready, triggers `shutdown` (see the module docs). Each
/// upgrade runs in a task of its own, so that a second SIGHUP during one is refused
/// (and logged) rather than queued.
#[cfg(feature = "upgrade")]
fn upgrade_on_hangup(
    mut hangups: async_signal::Signals,
    listener: &TcpListener,
    shutdown: &Shutdown,
    ready_timeout: Duration,
) -> io::Result<impl std::future::Future<Output = ()>> {
    use smol::stream::StreamExt as _;
    use smol_graceful::upgrade::Upgrade;

    let upgrade = Upgrade::new(shutdown)
        .listener("http", listener)?
        .ready_timeout(ready_timeout);
    let upgrade = std::sync::Arc::new(upgrade);
    let shutdown = shutdown.clone();
    Ok(async move {
        while let Some(Some(_)) = shutdown.run_until_triggered(hangups.next()).await {
            say(format_args!("SIGHUP: upgrading"));
            let upgrade = upgrade.clone();
            smol::spawn(async move {
                match upgrade.start().await {
                    Ok(pid) => say(format_args!("upgraded: pid {pid} serves now; draining")),
                    Err(e) => say(format_args!("upgrade failed: {e}")),
                }
            })
            .detach();
        }
    })
}

/// Accepts connections until `draining` triggers; each one is served by hyper in its
/// own task, drained once `draining` has triggered (see [`drain_when_due`]) and counted
/// in `group` under the peer's address.
async fn accept(
    listener: TcpListener,
    group: Group,
    shutdown: Shutdown,
    [draining, forced]: [Shutdown; 2],
    header_timeout: Duration,
) {
    let mut http = http1::Builder::new();
    http.timer(SmolTimer::new())
        .header_read_timeout(header_timeout)
        // A client that shuts down its write side after its request (`nc -N`, some
        // HTTP/1.0 clients and scripts) still gets the answer; then the connection
        // closes. hyper's default drops such a request unanswered.
        .half_close(true)
        // hyper's smallest read buffer: a larger request head gets `431`.
        .max_buf_size(8 * 1024);
    while let Some(accepted) = draining.run_until_triggered(listener.accept()).await {
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
        // The connection's first request sends on `started`.
        let (started_tx, started) = smol::channel::bounded(1);
        let service = service_fn({
            let shutdown = shutdown.clone();
            move |request| {
                let _ = started_tx.try_send(());
                respond(request, shutdown.clone())
            }
        });
        let io = FuturesIo::new(stream);
        let conn = http.serve_connection(io, service);
        // When the drain reaches it (`conn_draining`): no more keep-alive, idle
        // connections closed, requests in flight finished. Named, so that if the drain
        // times out the report says which.
        let conn_draining = Shutdown::new();
        let Ok(conn) = smol_graceful::hyper::watch(
            conn,
            http1::Connection::graceful_shutdown,
            &conn_draining,
            &group,
            format!("connection {peer}"),
        ) else {
            break; // the group is closed: we are draining already
        };
        let due = drain_when_due(
            draining.clone(),
            started,
            conn_draining,
            Instant::now() + FIRST_REQUEST_WAIT,
        );
        let forced = forced.clone();
        smol::spawn(async move {
            // `due` never ends: the connection's end ends both; `forced` drops it.
            let served = forced.run_until_triggered(smol::future::or(conn, due));
            if let Some(Err(e)) = served.await {
                log::debug!("connection {peer}: {e}");
            }
        })
        .detach();
    }
    // `listener` is dropped here, which closes our descriptor: a socket we bound stops
    // listening (new connections are refused); one handed over by a service manager
    // goes on listening there, and new connections wait in its queue for the next
    // instance. Never `shutdown(2)` it: that would stop it listening for everyone.
}

/// How long a new connection may take to start its first request before the drain may
/// close it.
const FIRST_REQUEST_WAIT: Duration = Duration::from_secs(1);

/// Triggers `conn_draining`, which drains one connection, once `draining` has triggered
/// and the connection has started a request (`started`) or been open since
/// `fresh_until`; then waits forever.
///
/// hyper closes a connection that has not sent a byte yet at once when told to shut
/// down gracefully. But one accepted just as the drain starts is not idle: its first
/// request is on its way (half a round trip behind the handshake), and closing the
/// connection would drop that request unanswered; clients do not retry a request on a
/// new connection. So a new connection gets until `fresh_until` (hyper's head timeout
/// may close it sooner), as Go's `http.Server` gives new connections 5 s.
async fn drain_when_due<T>(
    draining: Shutdown,
    started: smol::channel::Receiver<()>,
    conn_draining: Shutdown,
    fresh_until: Instant,
) -> T {
    draining.triggered().await;
    // `recv` also returns if the connection ended (and dropped its service).
    let first_request = async {
        let _ = started.recv().await;
    };
    smol::future::or(first_request, async {
        Timer::at(fresh_until).await;
    })
    .await;
    conn_draining.trigger();
    std::future::pending().await
}

/// Answers one request.
async fn respond(
    request: Request<Incoming>,
    shutdown: Shutdown,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let (status, body) = match request.uri().path() {
        "/healthz" if shutdown.is_triggered() => {
            (StatusCode::SERVICE_UNAVAILABLE, "draining\n".into())
        }
        "/healthz" => (StatusCode::OK, "ok\n".into()),
        "/slow" => {
            let query = request.uri().query().unwrap_or_default();
            let ms = query.split('&').find_map(|pair| pair.strip_prefix("ms="));
            match ms.and_then(|ms| ms.parse::<u64>().ok()) {
                Some(ms) => {
                    // Not raced against shutdown: in-flight work is allowed to finish.
                    Timer::after(Duration::from_millis(ms)).await;
                    (StatusCode::OK, format!("slept {ms} ms\n"))
                }
                None => (
                    StatusCode::BAD_REQUEST,
                    "/slow needs ?ms=N (milliseconds)\n".into(),
                ),
            }
        }
        _ => (StatusCode::OK, "hello\n".into()),
    };
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    Ok(response)
}

/// Prints a progress line on stdout and flushes it, so a supervisor sees it at once. A
/// write error is ignored: the server must keep serving and draining without stdout.
fn say(line: std::fmt::Arguments<'_>) {
    let mut stdout = io::stdout().lock();
    let _ = writeln!(stdout, "{line}").and_then(|()| stdout.flush());
}

/// Reads `name` as milliseconds: `Ok(None)` if unset, an error if not a number.
fn env_ms(name: &str) -> io::Result<Option<Duration>> {
    match std::env::var(name) {
        Err(_) => Ok(None),
        Ok(ms) => ms
            .parse()
            .map(|ms| Some(Duration::from_millis(ms)))
            .map_err(|_| {
                let message = format!("{name} must be a number of milliseconds, not {ms:?}");
                io::Error::new(io::ErrorKind::InvalidInput, message)
            }),
    }
}
