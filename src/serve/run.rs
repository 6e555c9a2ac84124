//! [`run`]: a service's `main` in one call (features `signal` and `smol`).

use std::future::Future;
use std::io;
use std::process::ExitCode;
use std::time::Duration;

use smol::future;

use smol::stream::StreamExt as _;

use crate::group::Group;
use crate::panic::isolate;
use crate::shutdown::{Reason, Shutdown};
use crate::signal;
use crate::stragglers::Stragglers;

/// The drain's default bound when `GRACE_MS` is not set.
const DEFAULT_GRACE: Duration = Duration::from_secs(10);

/// Runs a service from signal to exit, as a `main` should: returns the
/// process's exit code.
///
/// In order:
/// 1. installs the SIGINT/SIGTERM watcher ([`signal::watch`]) before
///    `service` runs, so that a signal during start-up (while it binds)
///    drains instead of killing the process; a second signal exits at once
///    with 128 + signo, also during the drain;
/// 2. runs `service(shutdown, group)`: it serves until `shutdown` triggers
///    (the first signal), counting its work in `group` (connections as
///    [`Connection`](super::Connection)s, tasks with
///    [`Group::spawn`](crate::Group::spawn) or guards), and returns once it
///    has stopped taking new work; when it returns, `shutdown` is triggered
///    if it was not, so background work stops too;
/// 3. drains: logs at info level what is running as soon as `run` sees the
///    trigger (`shutting down: 2 left, oldest 3.1 s: connection
///    127.0.0.1:52666 (and 1 more)`; work that ends at the trigger itself,
///    such as idle connections, may be gone already), what is still running
///    when the service has returned
///    (`draining: ...`), then once a second while the drain
///    lasts (with the `systemd` feature, also as `STATUS=`, shown by
///    `systemctl status`); waits for `group` for at most `GRACE_MS`
///    milliseconds (an environment variable; 10 s when unset), and logs the
///    stragglers by name at warn level if some remain;
/// 4. flushes the signal log ([`signal::flush_log`]), so that "received
///    SIGTERM" is not lost, and returns the exit code.
///
/// Every log line is isolated: a logger (or an error's `Display`) that
/// panics loses its line and nothing else. The exit code: 0 when everything
/// drained, 1 when stragglers remained, 2 when the service could not run (the watcher could not be installed,
/// `GRACE_MS` is not a number, or `service` returned an error, which is
/// logged at error level). Everything runs inside the returned future, so
/// it works under smol's `block_on`, any other executor, or
/// `futures_lite::future::block_on`; the signal watcher is polled with the
/// service and stops when `run` returns.
///
/// # Examples
///
/// ```no_run
/// use std::process::ExitCode;
/// use smol::net::TcpListener;
/// use smol_graceful::serve;
///
/// fn main() -> ExitCode {
///     smol::block_on(serve::run(|shutdown, group| async move {
///         let listener = TcpListener::bind("127.0.0.1:7000").await?;
///         while let Some(accepted) = shutdown.run_until_triggered(listener.accept()).await {
///             let (stream, peer) = accepted?;
///             let conn = serve::Connection::new(stream, &group, &shutdown, format!("connection {peer}"))?;
///             smol::spawn(async move {
///                 let (reader, mut writer) = (conn.clone(), conn);
///                 let _ = smol::io::copy(reader, &mut writer).await; // an echo server
///             })
///             .detach();
///         }
///         Ok(()) // the listener closes here: no new connection is accepted
///     }))
/// }
/// ```
pub async fn run<F, S>(service: F) -> ExitCode
where
    F: FnOnce(Shutdown, Group) -> S,
    S: Future<Output = io::Result<()>>,
{
    let code = serve(service).await;
    signal::flush_log(Duration::from_millis(100));
    ExitCode::from(code)
}

async fn serve<F, S>(service: F) -> u8
where
    F: FnOnce(Shutdown, Group) -> S,
    S: Future<Output = io::Result<()>>,
{
    let grace = match grace() {
        Ok(grace) => grace,
        Err(e) => {
            isolate(|| log::error!("{e}"));
            return 2;
        }
    };
    let (shutdown, group) = (Shutdown::new(), Group::new());
    let watcher = match signal::watch(&shutdown) {
        Ok(watcher) => watcher,
        Err(e) => {
            isolate(|| log::error!("cannot watch signals: {e}"));
            return 2;
        }
    };
    let mut watcher = std::pin::pin!(watcher);
    // The watcher never ends on its own: each `or` ends with the other side.
    // What was running when the shutdown began, said at that moment (the
    // work may be gone by the time the service returns).
    let announce = async {
        shutdown.triggered().await;
        isolate(|| log::info!("shutting down: {}", summary(&group.stragglers())));
        future::pending().await
    };
    let served = future::or(
        async {
            (&mut watcher).await;
            Ok(())
        },
        // `announce` first: polled before the service in the turn the
        // trigger wakes both, it speaks before the service can return.
        future::or(announce, service(shutdown.clone(), group.clone())),
    )
    .await;
    let failed = match served {
        Ok(()) => {
            shutdown.trigger_with(Reason::Finished);
            false
        }
        Err(e) => {
            isolate(|| log::error!("{e}"));
            shutdown.trigger_with(Reason::error(e));
            true
        }
    };
    if !group.is_empty() {
        isolate(|| log::info!("draining: {}", summary(&group.stragglers())));
    }
    let progress = async {
        let mut progress = group.progress(PROGRESS_EVERY);
        while let Some(left) = progress.next().await {
            report_progress(&left);
        }
        future::pending().await
    };
    let drained = future::or(
        async {
            (&mut watcher).await;
            Ok(())
        },
        future::or(group.wait_timeout(grace), progress),
    )
    .await;
    match drained {
        Ok(()) if failed => 2,
        Ok(()) => 0,
        Err(stragglers) => {
            isolate(|| log::warn!("gave up after {} ms: {stragglers}", grace.as_millis()));
            // A failed service says so, whatever its drain left.
            if failed {
                2
            } else {
                1
            }
        }
    }
}

/// How often a drain reports its progress.
const PROGRESS_EVERY: Duration = Duration::from_secs(1);

/// One line on what is left: how many, and the oldest named one.
fn summary(left: &Stragglers) -> String {
    let count = left.count();
    match left.named().first() {
        Some(oldest) => {
            let age = oldest.age().as_secs_f64();
            let more = match count - 1 {
                0 => String::new(),
                more => format!(" (and {more} more)"),
            };
            format!("{count} left, oldest {age:.1} s: {}{more}", oldest.name())
        }
        None => format!("{count} left"),
    }
}

/// A progress line in the log and, with the `systemd` feature, in the
/// unit's status.
fn report_progress(left: &Stragglers) {
    let line = format!("draining: {}", summary(left));
    isolate(|| log::info!("{line}"));
    #[cfg(feature = "systemd")]
    if let Err(e) = crate::systemd::status(&line) {
        isolate(|| log::debug!("{e}"));
    }
}

/// `GRACE_MS`, or the default.
fn grace() -> io::Result<Duration> {
    match std::env::var("GRACE_MS") {
        Err(std::env::VarError::NotPresent) => Ok(DEFAULT_GRACE),
        Ok(ms) => ms.trim().parse().map(Duration::from_millis).map_err(|_| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("GRACE_MS must be a number of milliseconds, not {ms:?}"),
            )
        }),
        Err(e) => Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("GRACE_MS: {e}"),
        )),
    }
}
