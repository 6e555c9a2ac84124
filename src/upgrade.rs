//! Upgrades that neither refuse nor queue a connection (feature `upgrade`,
//! Unix): start the new binary with this process's listening sockets, wait
//! until it says it is ready, then drain this one.
//!
//! nginx's binary upgrade, HAProxy's seamless reload and Cloudflare's
//! tableflip work this way: old and new instances serve side by side for a
//! moment, on the same sockets, so a connection is never refused (the socket
//! never stops listening) and never waits for the old instance's drain (the
//! new one accepts it at once). A socket-activated restart
//! (`tests/restart.rs`) loses nothing either, but connections made while
//! the old instance drains wait in the kernel's queue until the next
//! instance starts.
//!
//! # How it goes
//!
//! [`Upgrade::start`]:
//!
//! 1. starts the successor: the executable this process was started from
//!    (the file now at that path, so a new build that replaced it), with the
//!    same arguments and environment, plus the listening sockets in
//!    systemd's socket-activation convention: as fds 3, 4, … with
//!    `LISTEN_FDS`, `LISTEN_FDNAMES` and `LISTEN_PID` (the successor's own
//!    pid), so that the successor's socket-activation path (the `listenfd`
//!    crate, `sd_listen_fds`) takes them unchanged;
//! 2. waits for the successor to report ready: its
//!    [`systemd::ready`](crate::systemd::ready) sends `READY=1` to a socket
//!    this process owns (named by `SMOL_GRACEFUL_READY_SOCKET`, in a
//!    directory only this user can enter), besides systemd's socket if there
//!    is one;
//! 3. under systemd (`NOTIFY_SOCKET` set), tells systemd the new main pid
//!    (`MAINPID=`);
//! 4. triggers this process's [`Shutdown`] with [`Reason::Upgraded`]: the
//!    service stops accepting, closes its own descriptors (the successor's
//!    keep the sockets listening) and drains.
//!
//! If the successor exits first, or is not ready within the
//! [timeout](Upgrade::ready_timeout), or the shutdown triggers meanwhile,
//! the successor is stopped (SIGTERM, then SIGKILL after five seconds) and
//! reaped, `start` returns an error that says why (with the exit status),
//! and this instance goes on serving as if nothing had happened. One
//! upgrade runs at a time: a `start` during another fails with
//! [`io::ErrorKind::ResourceBusy`]. A second signal that makes the
//! `signal` watcher (feature `signal`) exit at once kills a successor still
//! starting first (SIGKILL), so that none is left serving alone.
//!
//! # Limits
//!
//! - The successor is started through `/bin/sh` (`LISTEN_PID=$$ exec ...`), the
//!   only way without `unsafe` to set `LISTEN_PID` to its own pid: an image
//!   without a shell (distroless) cannot upgrade, and `start` says so.
//! - Ready means ready: a successor that says `READY=1` and then crashes
//!   leaves no instance serving (as with nginx and tableflip), so call
//!   [`systemd::ready`](crate::systemd::ready) once the service accepts, not
//!   before its set-up has succeeded.
//! - Only the listeners given to [`Upgrade::listener`] are handed over;
//!   connections already accepted stay with this instance and drain.
//!
//! # Under systemd
//!
//! ```ini
//! [Service]
//! Type=notify
//! ExecStart=/usr/local/bin/my-server
//! ExecReload=kill -HUP $MAINPID
//! # The successor's READY=1, and the old process's MAINPID=, come from processes
//! # other than the main one while it changes hands.
//! NotifyAccess=all
//! ```
//!
//! `systemctl reload my-server` then upgrades in place, and `systemctl stop`
//! stops whichever instance is the main one (and, with the default
//! `KillMode=control-group`, an old one still draining).
//!
//! # Examples
//!
//! An upgrade on SIGHUP, as `examples/http_server.rs` (with `--features
//! upgrade`) does it:
//!
//! ```no_run
//! use std::sync::Arc;
//! use async_signal::{Signal, Signals};
//! use smol::stream::StreamExt as _;
//! use smol_graceful::{signal, systemd, upgrade::Upgrade, Shutdown};
//!
//! # fn main() -> std::io::Result<()> {
//! # smol::block_on(async {
//! let shutdown = Shutdown::new();
//! smol::spawn(signal::watch(&shutdown)?).detach();
//! // A listener inherited from the previous instance (see `listenfd`), or bound.
//! let listener = smol::net::TcpListener::bind("127.0.0.1:8080").await?;
//! let upgrade = Arc::new(Upgrade::new(&shutdown).listener("http", &listener)?);
//! let mut hangups = Signals::new([Signal::Hup])?;
//! systemd::ready()?; // tells the previous instance, if any, that we serve
//! smol::spawn(async move {
//!     while let Some(Some(_)) = shutdown.run_until_triggered(hangups.next()).await {
//!         let upgrade = Arc::clone(&upgrade);
//!         smol::spawn(async move {
//!             match upgrade.start().await {
//!                 Ok(pid) => log::info!("pid {pid} serves now; draining"),
//!                 Err(e) => log::error!("upgrade failed, still serving: {e}"),
//!             }
//!         })
//!         .detach();
//!     }
//! })
//! .detach();
//! // ... accept on `listener` until the shutdown triggers, then drain ...
//! # Ok(())
//! # })
//! # }
//! ```

use std::ffi::OsString;
use std::fmt;
use std::fs::DirBuilder;
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::DirBuilderExt as _;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use command_fds::{CommandFdExt as _, FdMapping};
use rustix::process::{kill_process, Pid, Signal};
use smol::{Async, Timer};

use crate::shutdown::{AfterTrigger, Reason, Shutdown};
use crate::sync::lock;

/// The variable that names the socket a successor reports `READY=1` on.
const READY_SOCKET: &str = "SMOL_GRACEFUL_READY_SOCKET";

/// How long a successor that failed may take to exit after SIGTERM, before
/// SIGKILL.
const STOP_GRACE: Duration = Duration::from_secs(5);

/// How often a starting successor is checked for having exited.
const EXIT_POLL: Duration = Duration::from_millis(10);

/// The successors that are starting, killed by [`abandon`].
static STARTING: Mutex<Vec<u32>> = Mutex::new(Vec::new());

/// Kills (SIGKILL) every successor still starting: called by the signal
/// watcher before it exits at once on a second signal, so that no successor
/// is left to serve on its own after a forced exit.
#[cfg(feature = "signal")]
pub(crate) fn abandon() {
    for pid in std::mem::take(&mut *lock(&STARTING)) {
        send(pid, Signal::KILL);
    }
}

/// Sends `signal` to process `pid`; a process already gone is no error.
fn send(pid: u32, signal: Signal) {
    if let Some(pid) = i32::try_from(pid).ok().and_then(Pid::from_raw) {
        let _ = kill_process(pid, signal);
    }
}

/// Hands this process's listening sockets to a successor, and drains this
/// process once the successor is ready: see the [module docs](self).
///
/// Made with [`Upgrade::new`] and the listeners to hand over; it keeps a
/// duplicate of each listener's descriptor until its [`Shutdown`] triggers
/// (so a socket this process bound stops listening when the service drops
/// its own listener at shutdown, as without an `Upgrade`).
pub struct Upgrade {
    shutdown: Shutdown,
    listeners: Arc<Mutex<Vec<(String, OwnedFd)>>>,
    ready_timeout: Duration,
    state: Mutex<State>,
    release: AfterTrigger,
}

/// Where an [`Upgrade`] stands.
#[derive(Clone, Copy, Debug)]
enum State {
    Idle,
    /// A successor with this pid is starting.
    Starting(u32),
    /// The successor with this pid took over.
    Done(u32),
}

impl Upgrade {
    /// An upgrade that triggers `shutdown` once a successor is ready, with
    /// no listener yet and a 60-second [ready timeout](Upgrade::ready_timeout).
    ///
    /// # Examples
    ///
    /// ```
    /// use smol_graceful::{upgrade::Upgrade, Shutdown};
    ///
    /// let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    /// let upgrade = Upgrade::new(&Shutdown::new()).listener("http", &listener)?;
    /// # drop(upgrade);
    /// # std::io::Result::Ok(())
    /// ```
    pub fn new(shutdown: &Shutdown) -> Upgrade {
        let listeners = Arc::new(Mutex::new(Vec::new()));
        let release = shutdown.after_trigger({
            let listeners = Arc::clone(&listeners);
            move || drop(std::mem::take(&mut *lock(&listeners)))
        });
        Upgrade {
            shutdown: shutdown.clone(),
            listeners,
            ready_timeout: Duration::from_secs(60),
            state: Mutex::new(State::Idle),
            release,
        }
    }

    /// Adds a listening socket to hand over, under `name` (the successor
    /// gets it as the next fd from 3, in the order added, and its name in
    /// `LISTEN_FDNAMES`). Keeps a duplicate of its descriptor.
    ///
    /// # Errors
    ///
    /// [`io::ErrorKind::InvalidInput`] if `name` is empty, longer than 255
    /// bytes, or has a `:` or a character that is not printable ASCII (the
    /// rules of systemd's `FileDescriptorName=`); the error of `dup` if the
    /// process is out of descriptors.
    pub fn listener(self, name: impl Into<String>, listener: &impl AsFd) -> io::Result<Upgrade> {
        let name = name.into();
        let printable = |c: char| c.is_ascii_graphic() && c != ':';
        if name.is_empty() || name.len() > 255 || !name.chars().all(printable) {
            let message = format!(
                "upgrade: listener name {name:?} must be 1 to 255 printable ASCII \
                 characters without ':' (as systemd's FileDescriptorName=)"
            );
            return Err(io::Error::new(io::ErrorKind::InvalidInput, message));
        }
        let fd = listener.as_fd().try_clone_to_owned()?;
        // Checked under the lock that the trigger's release takes after the
        // trigger: either the release finds this copy, or it is not kept.
        let mut listeners = lock(&self.listeners);
        if !self.shutdown.is_triggered() {
            listeners.push((name, fd));
        }
        drop(listeners);
        Ok(self)
    }

    /// How long a successor may take to report ready (60 s by default);
    /// past it, it is stopped and [`start`](Upgrade::start) fails with
    /// [`io::ErrorKind::TimedOut`].
    pub fn ready_timeout(mut self, timeout: Duration) -> Upgrade {
        self.ready_timeout = timeout;
        self
    }

    /// Starts a successor with the listeners, waits until it is ready, tells
    /// systemd its pid (under systemd), and triggers the shutdown with
    /// [`Reason::Upgraded`]; returns the successor's pid. See the [module
    /// docs](self).
    ///
    /// Dropping the future before it returns stops the successor (SIGKILL)
    /// and leaves this instance serving.
    ///
    /// # Errors
    ///
    /// This instance goes on serving after any of them:
    /// - [`io::ErrorKind::ResourceBusy`]: another upgrade is under way;
    /// - `AlreadyExists`: this instance has handed over already;
    /// - `Interrupted`: the shutdown had triggered, or triggered while the
    ///   successor started (which is then stopped);
    /// - `TimedOut`: the successor was not ready in time (it is stopped);
    /// - `InvalidInput`: no listener was added;
    /// - `Other`: the successor exited before it was ready (with its exit
    ///   status in the message), or could not be started (the message says
    ///   why).
    pub async fn start(&self) -> io::Result<u32> {
        let mut attempt = self.begin()?;
        let listeners = lock(&self.listeners)
            .iter()
            .map(|(name, fd)| Ok((name.clone(), fd.try_clone()?)))
            .collect::<io::Result<Vec<_>>>()
            .map_err(|e| io::Error::new(e.kind(), format!("cannot copy the listeners: {e}")))?;
        if listeners.is_empty() {
            let message = "no listener to hand over (see Upgrade::listener)";
            return Err(io::Error::new(io::ErrorKind::InvalidInput, message));
        }
        let (socket, ready_at) = attempt.ready_socket()?;
        let mut command = successor(listeners, &ready_at)?;
        let child = smol::unblock(move || command.spawn()).await;
        let child =
            attempt.started(child.map_err(|e| {
                io::Error::new(e.kind(), format!("cannot start the successor: {e}"))
            })?);
        let pid = child.id();
        log::info!("upgrade: started the successor, pid {pid}; waiting for it to be ready");

        let outcome = {
            let ready = async { Outcome::Ready(reported_ready(&socket).await) };
            let exited = async { Outcome::Exited(exit_status(child).await) };
            let timeout = async {
                Timer::after(self.ready_timeout).await;
                Outcome::TimedOut
            };
            let cancelled = async {
                self.shutdown.triggered().await;
                Outcome::Cancelled
            };
            smol::future::or(
                smol::future::or(ready, exited),
                smol::future::or(timeout, cancelled),
            )
            .await
        };
        let error = match outcome {
            Outcome::Ready(Ok(())) => return Ok(attempt.done(pid)),
            Outcome::Ready(Err(e)) => io::Error::new(
                e.kind(),
                format!("cannot receive from the successor (pid {pid}): {e}"),
            ),
            Outcome::Exited(Ok(status)) => {
                attempt.reaped();
                io::Error::other(format!(
                    "the successor (pid {pid}) exited before it was ready: {status}"
                ))
            }
            Outcome::Exited(Err(e)) => io::Error::new(
                e.kind(),
                format!("cannot wait for the successor (pid {pid}): {e}"),
            ),
            Outcome::TimedOut => io::Error::new(
                io::ErrorKind::TimedOut,
                format!(
                    "the successor (pid {pid}) was not ready within {:?}; stopped it",
                    self.ready_timeout
                ),
            ),
            Outcome::Cancelled => io::Error::new(
                io::ErrorKind::Interrupted,
                format!(
                    "the shutdown triggered while the successor (pid {pid}) started; stopped it"
                ),
            ),
        };
        attempt.stop().await;
        Err(error)
    }

    /// Claims the upgrade for one attempt, or says why not.
    fn begin(&self) -> io::Result<Attempt<'_>> {
        let mut state = lock(&self.state);
        match *state {
            State::Starting(pid) => Err(io::Error::new(
                io::ErrorKind::ResourceBusy,
                format!("an upgrade is under way already (successor pid {pid})"),
            )),
            State::Done(pid) => Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                format!("this instance has handed over to pid {pid} already"),
            )),
            State::Idle if self.shutdown.is_triggered() => Err(io::Error::new(
                io::ErrorKind::Interrupted,
                "the shutdown has triggered; no upgrade",
            )),
            State::Idle => {
                *state = State::Starting(0);
                Ok(Attempt {
                    upgrade: self,
                    dir: None,
                    child: None,
                })
            }
        }
    }
}

impl Drop for Upgrade {
    fn drop(&mut self) {
        self.release.stop();
    }
}

impl fmt::Debug for Upgrade {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<String> = lock(&self.listeners)
            .iter()
            .map(|(n, _)| n.clone())
            .collect();
        f.debug_struct("Upgrade")
            .field("listeners", &names)
            .field("ready_timeout", &self.ready_timeout)
            .field("state", &*lock(&self.state))
            .finish_non_exhaustive()
    }
}

/// How the wait for a successor ended.
enum Outcome {
    Ready(io::Result<()>),
    Exited(io::Result<ExitStatus>),
    TimedOut,
    Cancelled,
}

/// One attempt: owns the ready socket's directory and the successor until
/// it is done; dropped unfinished (a failure, or the future dropped), it
/// kills and reaps the successor, removes the directory and frees the
/// upgrade for the next attempt.
struct Attempt<'u> {
    upgrade: &'u Upgrade,
    dir: Option<PathBuf>,
    child: Option<Child>,
}

impl Attempt<'_> {
    /// Binds the socket the successor reports on, in a new directory only
    /// this user can enter (so no one else can say ready for it).
    fn ready_socket(&mut self) -> io::Result<(Async<UnixDatagram>, PathBuf)> {
        static ATTEMPTS: AtomicUsize = AtomicUsize::new(0);
        // Relaxed: only makes the name unique; orders nothing.
        let n = ATTEMPTS.fetch_add(1, Ordering::Relaxed);
        let base = std::env::var_os("XDG_RUNTIME_DIR")
            .map(PathBuf::from)
            .filter(|dir| dir.is_dir())
            .unwrap_or_else(std::env::temp_dir);
        let dir = base.join(format!("smol-graceful-upgrade-{}-{n}", std::process::id()));
        DirBuilder::new().mode(0o700).create(&dir).map_err(|e| {
            io::Error::new(e.kind(), format!("cannot create {}: {e}", dir.display()))
        })?;
        self.dir = Some(dir.clone());
        let path = dir.join("ready");
        let socket = UnixDatagram::bind(&path)
            .and_then(Async::new)
            .map_err(|e| {
                io::Error::new(e.kind(), format!("cannot bind {}: {e}", path.display()))
            })?;
        Ok((socket, path))
    }

    /// Records the started successor; returns it to wait on.
    fn started(&mut self, child: Child) -> &mut Child {
        *lock(&self.upgrade.state) = State::Starting(child.id());
        lock(&STARTING).push(child.id());
        self.child.insert(child)
    }

    /// The successor was reaped, or took over: nothing left to stop.
    fn reaped(&mut self) {
        if let Some(child) = self.child.take() {
            lock(&STARTING).retain(|&pid| pid != child.id());
        }
    }

    /// The successor took over: MAINPID to systemd, then the shutdown.
    fn done(mut self, pid: u32) -> u32 {
        // Not waited for: it goes on running when this process exits.
        self.reaped();
        *lock(&self.upgrade.state) = State::Done(pid);
        #[cfg(feature = "systemd")]
        if crate::systemd::is_enabled() {
            if let Err(e) = crate::systemd::main_pid(pid) {
                log::warn!("upgrade: {e}");
            }
        }
        log::info!("upgrade: the successor (pid {pid}) is ready; this instance drains");
        self.upgrade
            .shutdown
            .trigger_with(Reason::Upgraded { successor: pid });
        pid
    }

    /// Stops the successor: SIGTERM, then SIGKILL if it has not exited
    /// within [`STOP_GRACE`]; reaps it.
    async fn stop(&mut self) {
        let Some(child) = self.child.as_mut() else {
            return;
        };
        send(child.id(), Signal::TERM);
        let exited = async { exit_status(child).await.ok() };
        let late = async {
            Timer::after(STOP_GRACE).await;
            None
        };
        if smol::future::or(exited, late).await.is_some() {
            self.reaped();
        }
    }
}

impl Drop for Attempt<'_> {
    fn drop(&mut self) {
        if let Some(child) = self.child.as_mut() {
            let _ = child.kill();
            let _ = child.wait();
        }
        self.reaped();
        if let Some(dir) = self.dir.take() {
            let _ = std::fs::remove_file(dir.join("ready"));
            let _ = std::fs::remove_dir(&dir);
        }
        let mut state = lock(&self.upgrade.state);
        if let State::Starting(_) = *state {
            *state = State::Idle;
        }
    }
}

/// The command that starts the successor with `listeners` as fds 3, 4, …
fn successor(listeners: Vec<(String, OwnedFd)>, ready_at: &Path) -> io::Result<Command> {
    let program = std::env::current_exe()?;
    // Linux names an executable replaced since it started "path (deleted)":
    // the successor is the file now at the path.
    let program = match program.to_str().and_then(|p| p.strip_suffix(" (deleted)")) {
        Some(path) => PathBuf::from(path),
        None => program,
    };
    let names: Vec<&str> = listeners.iter().map(|(name, _)| name.as_str()).collect();
    let names = names.join(":");
    let mut command = Command::new("/bin/sh");
    // `sh` sets LISTEN_PID to its own pid, which `exec` keeps for the program.
    command
        .arg("-c")
        .arg(r#"LISTEN_PID=$$ exec "$0" "$@""#)
        .arg(program)
        .args(std::env::args_os().skip(1))
        .env("LISTEN_FDS", listeners.len().to_string())
        .env("LISTEN_FDNAMES", names)
        .env_remove("LISTEN_PID")
        .env(READY_SOCKET, ready_at);
    let mappings = listeners
        .into_iter()
        .zip(3..)
        .map(|((_, parent_fd), child_fd)| FdMapping {
            parent_fd,
            child_fd,
        })
        .collect();
    command
        .fd_mappings(mappings)
        .map_err(|e| io::Error::other(e.to_string()))?;
    Ok(command)
}

/// Waits for a datagram with a `READY=1` line on `socket`.
async fn reported_ready(socket: &Async<UnixDatagram>) -> io::Result<()> {
    let mut buffer = [0; 4096];
    loop {
        let n = socket.recv(&mut buffer).await?;
        let text = String::from_utf8_lossy(&buffer[..n]);
        if text.lines().any(|line| line == "READY=1") {
            return Ok(());
        }
        log::debug!("upgrade: the successor says {text:?}");
    }
}

/// Waits for `child` to exit (it is checked every [`EXIT_POLL`]).
async fn exit_status(child: &mut Child) -> io::Result<ExitStatus> {
    loop {
        if let Some(status) = child.try_wait()? {
            return Ok(status);
        }
        Timer::after(EXIT_POLL).await;
    }
}

/// In a successor: sends `READY=1` to the process that started it, once
/// (called by [`systemd::ready`](crate::systemd::ready)). `Ok(())` in a
/// process no upgrade started.
pub(crate) fn report_ready() -> io::Result<()> {
    static REPORTED: AtomicBool = AtomicBool::new(false);
    let Some(path) = std::env::var_os(READY_SOCKET) else {
        return Ok(());
    };
    // Relaxed: only makes the report happen once; orders nothing.
    if REPORTED.swap(true, Ordering::Relaxed) {
        return Ok(());
    }
    send_ready(&path).map_err(|e| {
        io::Error::new(
            e.kind(),
            format!("upgrade: cannot report READY=1 to the previous instance at {path:?}: {e}"),
        )
    })
}

fn send_ready(path: &OsString) -> io::Result<()> {
    UnixDatagram::unbound()?.send_to(b"READY=1", path).map(drop)
}
