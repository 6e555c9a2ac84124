//! Tell systemd what the service is doing (feature `systemd`): ready, stopping,
//! still draining, still alive.
//!
//! A `Type=notify` service tells its service manager how it is doing with
//! small datagrams on the Unix socket named by `NOTIFY_SOCKET`
//! ([sd_notify(3)]), sent here with the [`sd-notify`] crate:
//!
//! | call | message | what systemd does with it |
//! |---|---|---|
//! | [`ready`] | `READY=1` | the start job ends; units ordered after this one start |
//! | [`stopping`], [`notify_on_shutdown`] | `STOPPING=1` | shows the unit as `deactivating` |
//! | [`extend_timeout`], [`extend_timeout_while`] | `EXTEND_TIMEOUT_USEC=N` | does not kill the service for the next N µs, even past `TimeoutStopSec` |
//! | [`watchdog`] | `WATCHDOG=1` | resets the `WatchdogSec` timer |
//!
//! A graceful stop under systemd is: `READY=1` once serving; then SIGTERM
//! (`KillSignal=`, which [`signal::watch`] turns into
//! a [`Shutdown`] trigger); `STOPPING=1`; `EXTEND_TIMEOUT_USEC` every so
//! often while the drain runs, so that a drain longer than `TimeoutStopSec`
//! is not cut by SIGKILL; exit.
//!
//! # What holds
//!
//! - **A no-op outside systemd.** Without `NOTIFY_SOCKET` (a terminal, a
//!   container, a test), every function returns `Ok(())` and sends nothing,
//!   [`extend_timeout_while`] only runs its future, and [`watchdog`] returns
//!   `None`. The only trace is a `log::debug!` line. On targets other than
//!   Unix the whole module is that no-op.
//! - **Never a panic; errors are `io::Error`s.** [`ready`], [`stopping`],
//!   [`extend_timeout`] and [`notify_on_shutdown`] return them (a bad
//!   `NOTIFY_SOCKET`, a manager that went away); they name the message and
//!   the socket. The futures that run beside your own work,
//!   [`extend_timeout_while`] and [`Watchdog`], cannot return them without
//!   getting in its way: they log the first failure of a run with
//!   `log::warn!` (and the recovery with `log::info!`) and keep sending.
//! - **The futures never block an executor thread.** Sending a datagram to a
//!   local socket returns at once, unless the manager's receive queue is full
//!   (it stalled): then the send waits for room, as sd_notify(3) does. The
//!   plain functions send in place and so may wait then; the futures send on
//!   smol's blocking pool ([`smol::unblock`]) and wait for that, one message
//!   at a time and in order, so a stalled manager holds back only the next
//!   message of that future, never the executor.
//! - **The timers are async-io's** (the `systemd` feature turns on `smol`):
//!   they work under any executor, tokio included.
//! - **Limits.** `NOTIFY_SOCKET` must be a path: the abstract-namespace
//!   (`@name`) and `vsock:` forms are not supported by `sd-notify` 0.5 (a
//!   send fails with an error). No file descriptors are passed, and no
//!   `MAINPID=`: the process that calls these must be the service's main
//!   process (or the unit sets `NotifyAccess=all`).
//!
//! # Examples
//!
//! The order of a graceful stop, with a bounded drain:
//!
//! ```no_run
//! use std::time::Duration;
//! use smol_graceful::{signal, systemd, Group, Shutdown};
//!
//! # fn main() -> std::io::Result<()> {
//! let shutdown = Shutdown::new();
//! smol::spawn(signal::watch(&shutdown)?).detach();
//! if let Some(watchdog) = systemd::watchdog() {
//!     smol::spawn(watchdog).detach();
//! }
//! let group = Group::new();
//! // ... bind, start the work, each task holding a guard of `group` ...
//!
//! smol::block_on(async {
//!     if let Err(e) = systemd::ready() {
//!         log::warn!("{e}");
//!     }
//!     // Waits for SIGTERM, then sends STOPPING=1.
//!     if let Err(e) = systemd::notify_on_shutdown(&shutdown).await {
//!         log::warn!("{e}");
//!     }
//!     // While the drain runs, systemd waits 10 s more every 5 s.
//!     let drain = group.wait_timeout(Duration::from_secs(30));
//!     match systemd::extend_timeout_while(Duration::from_secs(10), drain).await {
//!         Ok(()) => log::info!("drained"),
//!         Err(stragglers) => log::warn!("{stragglers}"),
//!     }
//! });
//! # Ok(())
//! # }
//! ```
//!
//! [sd_notify(3)]: https://www.freedesktop.org/software/systemd/man/latest/sd_notify.html
//! [`sd-notify`]: https://docs.rs/sd-notify
//!
// `signal` is a feature of its own: without it, the link leads to the features list.
#![cfg_attr(feature = "signal", doc = "[`signal::watch`]: crate::signal::watch")]
#![cfg_attr(not(feature = "signal"), doc = "[`signal::watch`]: crate#features")]

use std::fmt;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use smol::Timer;

use crate::shutdown::Shutdown;

/// The variable that names the service manager's socket.
const NOTIFY_SOCKET: &str = "NOTIFY_SOCKET";

/// The shortest interval between two messages of a future: a
/// `WATCHDOG_USEC` or an extension below twice this would otherwise make it
/// spin.
const MIN_INTERVAL: Duration = Duration::from_millis(1);

/// One notification.
#[derive(Clone, Debug)]
enum Message {
    Ready,
    Stopping,
    ExtendTimeout(Duration),
    Watchdog,
    Status(String),
    /// Sent by an upgrade once its successor is ready.
    #[cfg(all(unix, feature = "upgrade"))]
    MainPid(u32),
}

impl fmt::Display for Message {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Message::Ready => f.write_str("READY=1"),
            Message::Stopping => f.write_str("STOPPING=1"),
            // systemd reads a 64-bit number; saturate rather than wrap.
            Message::ExtendTimeout(by) => write!(
                f,
                "EXTEND_TIMEOUT_USEC={}",
                u64::try_from(by.as_micros()).unwrap_or(u64::MAX)
            ),
            Message::Watchdog => f.write_str("WATCHDOG=1"),
            Message::Status(text) => write!(f, "STATUS={text}"),
            #[cfg(all(unix, feature = "upgrade"))]
            Message::MainPid(pid) => write!(f, "MAINPID={pid}"),
        }
    }
}

/// True if `NOTIFY_SOCKET` is set: the process runs under a service manager
/// that listens to notifications (on Unix; elsewhere always false).
///
/// The functions of this module check it themselves; this is for a service
/// that wants to say which way it runs.
///
/// # Examples
///
/// ```
/// if !smol_graceful::systemd::is_enabled() {
///     println!("not under systemd: notifications are no-ops");
/// }
/// ```
#[cfg_attr(docsrs, doc(cfg(feature = "systemd")))]
pub fn is_enabled() -> bool {
    cfg!(unix) && std::env::var_os(NOTIFY_SOCKET).is_some()
}

/// Sends `message` in place, or nothing without `NOTIFY_SOCKET`.
#[cfg(unix)]
fn send(message: Message) -> io::Result<()> {
    use sd_notify::NotifyState;

    let Some(socket) = std::env::var_os(NOTIFY_SOCKET) else {
        log::debug!("systemd: NOTIFY_SOCKET is not set; {message} not sent");
        return Ok(());
    };
    let text;
    let state = match message {
        Message::Ready => NotifyState::Ready,
        Message::Stopping => NotifyState::Stopping,
        Message::Watchdog => NotifyState::Watchdog,
        Message::Status(ref text) => NotifyState::Status(text),
        #[cfg(feature = "upgrade")]
        Message::MainPid(pid) => NotifyState::MainPid(pid),
        // sd-notify's `ExtendTimeoutUsec` holds a u32 (71 minutes at most).
        Message::ExtendTimeout(_) => {
            text = message.to_string();
            NotifyState::Custom(&text)
        }
    };
    sd_notify::notify(&[state]).map_err(|e| {
        io::Error::new(
            e.kind(),
            format!("systemd: cannot send {message} to NOTIFY_SOCKET {socket:?}: {e}"),
        )
    })
}

/// Not Unix: nothing to send to.
#[cfg(not(unix))]
fn send(message: Message) -> io::Result<()> {
    log::debug!("systemd: not a Unix target; {message} not sent");
    Ok(())
}

/// Sends `message` from smol's blocking pool, so that a stalled manager
/// cannot block the executor thread that polls the caller.
async fn send_unblocked(message: Message) -> io::Result<()> {
    if is_enabled() {
        smol::unblock(move || send(message)).await
    } else {
        send(message) // the no-op: no thread hop for nothing
    }
}

/// Tells the service manager that the service is ready: `READY=1`.
///
/// Call it once the service serves (after binding its sockets), so that
/// `systemctl start` returns and units ordered after this one start then, not
/// before. With `Type=notify`, systemd waits for it up to `TimeoutStartSec`.
///
/// Sends in place: returns at once, unless the manager's queue is full (see
/// the [module docs](self)).
///
/// # Errors
///
/// The error of the send, naming the socket: `NOTIFY_SOCKET` is set but no
/// manager listens there, or it is not a path. Without `NOTIFY_SOCKET`,
/// `Ok(())`.
///
/// # Examples
///
/// ```
/// // A no-op outside systemd.
/// smol_graceful::systemd::ready()?;
/// # std::io::Result::Ok(())
/// ```
#[cfg_attr(docsrs, doc(cfg(feature = "systemd")))]
pub fn ready() -> io::Result<()> {
    let sent = send(Message::Ready);
    // A successor started by an upgrade tells the instance it replaces.
    #[cfg(all(unix, feature = "upgrade"))]
    crate::upgrade::report_ready()?;
    sent
}

/// Tells the service manager the service's new main process:
/// `MAINPID=pid` (sent by an upgrade once its successor is ready).
#[cfg(all(unix, feature = "upgrade"))]
pub(crate) fn main_pid(pid: u32) -> io::Result<()> {
    send(Message::MainPid(pid))
}

/// Tells the service manager that the service is stopping: `STOPPING=1`.
///
/// [`notify_on_shutdown`] sends it when a [`Shutdown`] triggers. Sends in
/// place, as [`ready`] does.
///
/// # Errors
///
/// As for [`ready`].
///
/// # Examples
///
/// ```
/// smol_graceful::systemd::stopping()?;
/// # std::io::Result::Ok(())
/// ```
#[cfg_attr(docsrs, doc(cfg(feature = "systemd")))]
pub fn stopping() -> io::Result<()> {
    send(Message::Stopping)
}

/// Tells the service manager what the service is doing, for `systemctl
/// status`: `STATUS=text` (one line; a newline in `text` is sent as a
/// space). `serve::run` (features `signal` and `smol`) sends the drain's progress
/// this way each second. Sends in place, as [`ready`] does.
///
/// # Errors
///
/// As for [`ready`].
///
/// # Examples
///
/// ```
/// smol_graceful::systemd::status("draining: 2 connection(s) left")?;
/// # std::io::Result::Ok(())
/// ```
#[cfg_attr(docsrs, doc(cfg(feature = "systemd")))]
pub fn status(text: &str) -> io::Result<()> {
    send(Message::Status(text.replace('\n', " ")))
}

/// Asks the service manager for `by` more time: `EXTEND_TIMEOUT_USEC`.
///
/// systemd then does not time the service out (and, while it stops, does not
/// SIGKILL it) for `by` from now, even past the unit's `TimeoutStartSec` or
/// `TimeoutStopSec`; send it again before `by` runs out to keep going.
/// [`extend_timeout_while`] does that for as long as a future runs. Sends in
/// place, as [`ready`] does. `by` is sent in whole microseconds.
///
/// # Errors
///
/// As for [`ready`].
///
/// # Examples
///
/// ```
/// smol_graceful::systemd::extend_timeout(std::time::Duration::from_secs(30))?;
/// # std::io::Result::Ok(())
/// ```
#[cfg_attr(docsrs, doc(cfg(feature = "systemd")))]
pub fn extend_timeout(by: Duration) -> io::Result<()> {
    send(Message::ExtendTimeout(by))
}

/// Waits until `shutdown` triggers, then tells the service manager that the
/// service is stopping: `STOPPING=1`.
///
/// Await it where the service waits for its shutdown, so that `STOPPING=1`
/// goes out before whatever the drain sends ([`extend_timeout_while`]); or
/// spawn it, when nothing else is sent. The send runs on smol's blocking
/// pool.
///
/// # Errors
///
/// As for [`ready`].
///
/// # Cancel safety
///
/// Cancel-safe while it waits for the trigger. Dropped once the send has
/// started, the message may still be sent.
///
/// # Examples
///
/// ```
/// use smol_graceful::{systemd, Shutdown};
///
/// # smol::block_on(async {
/// let shutdown = Shutdown::new();
/// shutdown.trigger(); // usually SIGTERM, through `signal::watch`
/// systemd::notify_on_shutdown(&shutdown).await?;
/// # std::io::Result::Ok(())
/// # }).unwrap();
/// ```
#[cfg_attr(docsrs, doc(cfg(feature = "systemd")))]
pub fn notify_on_shutdown(
    shutdown: &Shutdown,
) -> impl Future<Output = io::Result<()>> + Send + 'static {
    let shutdown = shutdown.clone();
    async move {
        shutdown.triggered().await;
        send_unblocked(Message::Stopping).await
    }
}

/// Runs `future`, and asks the service manager for `by` more time
/// (`EXTEND_TIMEOUT_USEC`) when it starts and every `by / 2` until it ends.
///
/// Wrap the drain in it: a drain bounded by its own grace period then never
/// has it cut short by the unit's `TimeoutStopSec`, whatever the two are set
/// to; and if the process hangs, systemd still kills it `by` after the last
/// extension. Pick `by` well above the pauses the process may take (a few
/// seconds). `future` is polled first: if it is ready at once, nothing is
/// sent. Below 2 ms, `by` counts as 2 ms.
///
/// Without `NOTIFY_SOCKET` it only runs `future`.
///
/// # Errors
///
/// A failed send does not stop `future` or the extensions: the first failure
/// in a row is logged with `log::warn!`, later ones with `log::debug!`, and
/// the recovery with `log::info!`.
///
/// # Cancel safety
///
/// Dropping it drops `future` and stops the extensions (one already being
/// sent may still go out).
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use smol_graceful::{systemd, Group};
///
/// # smol::block_on(async {
/// let group = Group::new();
/// let drain = group.wait_timeout(Duration::from_secs(60));
/// // systemd waits 10 s more, every 5 s, while the drain runs.
/// let drained = systemd::extend_timeout_while(Duration::from_secs(10), drain).await;
/// assert!(drained.is_ok());
/// # });
/// ```
#[cfg_attr(docsrs, doc(cfg(feature = "systemd")))]
pub async fn extend_timeout_while<F: Future>(by: Duration, future: F) -> F::Output {
    if !is_enabled() {
        log::debug!("systemd: NOTIFY_SOCKET is not set; no timeout extensions");
        return future.await;
    }
    let by = by.max(2 * MIN_INTERVAL);
    // `or` polls `future` first, so a ready future sends nothing.
    smol::future::or(future, repeat(Message::ExtendTimeout(by), by / 2)).await
}

/// Sends `message` now and then every `interval` (after each send returns),
/// forever; logs failed sends.
async fn repeat<T>(message: Message, interval: Duration) -> T {
    let mut failing = false;
    loop {
        match send_unblocked(message.clone()).await {
            Ok(()) if failing => {
                failing = false;
                log::info!("systemd: {message} sent again");
            }
            Ok(()) => {}
            Err(e) if failing => log::debug!("{e}"),
            Err(e) => {
                failing = true;
                log::warn!("{e}; will retry every {interval:?}");
            }
        }
        Timer::after(interval).await;
    }
}

/// Pings the service manager's watchdog, if it asked for one: a future that
/// sends `WATCHDOG=1` at once and then every half of `WATCHDOG_USEC`.
///
/// `None` when no watchdog is asked of this process: `NOTIFY_SOCKET` or
/// `WATCHDOG_USEC` is not set, `WATCHDOG_USEC` is 0 or not a number, or
/// `WATCHDOG_PID` names another process (as `sd_watchdog_enabled(3)` does,
/// with the `sd-notify` crate's reading: a `WATCHDOG_PID` that is not a
/// number is taken as unset). systemd sets both variables from the unit's
/// `WatchdogSec=`.
///
/// Spawn it for the life of the process. It pings from wherever it is
/// polled, so it proves that *that* executor still runs tasks: spawn it
/// where a stall would matter.
///
/// # Examples
///
/// ```no_run
/// if let Some(watchdog) = smol_graceful::systemd::watchdog() {
///     log::info!("pinging the watchdog every {:?}", watchdog.interval());
///     smol::spawn(watchdog).detach();
/// }
/// ```
#[cfg_attr(docsrs, doc(cfg(feature = "systemd")))]
pub fn watchdog() -> Option<Watchdog> {
    let timeout = watchdog_timeout()?;
    if !is_enabled() {
        log::debug!("systemd: WATCHDOG_USEC is set but NOTIFY_SOCKET is not; no watchdog");
        return None;
    }
    let interval = (timeout / 2).max(MIN_INTERVAL);
    Some(Watchdog {
        timeout,
        interval,
        pings: Box::pin(repeat(Message::Watchdog, interval)),
    })
}

/// The watchdog timeout asked of this process, if any.
#[cfg(unix)]
fn watchdog_timeout() -> Option<Duration> {
    sd_notify::watchdog_enabled().filter(|timeout| !timeout.is_zero())
}

/// Not Unix: no watchdog.
#[cfg(not(unix))]
fn watchdog_timeout() -> Option<Duration> {
    None
}

/// Pings the service manager's watchdog (`WATCHDOG=1`) every
/// [`interval`](Watchdog::interval), forever; made by [`watchdog`].
///
/// It never finishes. A failed ping does not stop it: the first failure in a
/// row is logged with `log::warn!`, and it keeps pinging.
#[cfg_attr(docsrs, doc(cfg(feature = "systemd")))]
#[must_use = "futures do nothing unless polled"]
pub struct Watchdog {
    timeout: Duration,
    interval: Duration,
    pings: Pin<Box<dyn Future<Output = ()> + Send>>,
}

impl Watchdog {
    /// The watchdog timeout the service manager set (`WATCHDOG_USEC`).
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// How often it pings: half the timeout (at least 1 ms).
    pub fn interval(&self) -> Duration {
        self.interval
    }
}

impl Future for Watchdog {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        self.pings.as_mut().poll(cx)
    }
}

impl fmt::Debug for Watchdog {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Watchdog")
            .field("timeout", &self.timeout)
            .field("interval", &self.interval)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_spelled_as_sd_notify_3_says() {
        assert_eq!(Message::Ready.to_string(), "READY=1");
        assert_eq!(Message::Stopping.to_string(), "STOPPING=1");
        assert_eq!(Message::Watchdog.to_string(), "WATCHDOG=1");
        let extend = Message::ExtendTimeout(Duration::from_millis(1500));
        assert_eq!(extend.to_string(), "EXTEND_TIMEOUT_USEC=1500000");
        // Past sd-notify's u32 (71 minutes), and past u64 microseconds.
        let hours = Message::ExtendTimeout(Duration::from_secs(2 * 3600));
        assert_eq!(hours.to_string(), "EXTEND_TIMEOUT_USEC=7200000000");
        let max = Message::ExtendTimeout(Duration::MAX);
        assert_eq!(max.to_string(), format!("EXTEND_TIMEOUT_USEC={}", u64::MAX));
    }
}
