//! OS signals trigger a [`Shutdown`] (feature `signal`).
//!
//! [`watch`] listens for SIGINT and SIGTERM (Ctrl-C on Windows). The first
//! signal triggers the shutdown with [`Reason::Signal`], and is then logged
//! with `log::info!`; a second one exits the process at once with status
//! `128 + signo` (130 for SIGINT), because a user who presses Ctrl-C twice
//! wants out now. [`Builder`] changes the signal set and what the second
//! signal does.
//!
//! Listening is a future, [`Watch`]: spawn it on the executor of your choice
//! and keep it running for the life of the process. It never finishes on its
//! own, on purpose: while it lives it keeps the OS handlers installed. (Once
//! async-signal's `Signals` is dropped, SIGINT stays *ignored* for the rest
//! of the process instead of going back to its default action, so a watcher
//! that stopped listening would make Ctrl-C do nothing at all.)
//!
//! # How it is built
//!
//! [`Watch`] wraps async-signal's `Signals` stream and acts on each signal
//! it reads at once, on its own task: the trigger, the exit, or the
//! second-signal action. What it has to say about it goes to a log thread
//! started with the watcher (module `report`), so the logger does not run
//! on the watcher's task unless that thread could not be started. A failed
//! read is retried after a growing delay that a short-lived thread waits
//! out (module `backoff`), so no timer is needed.
//!
//! # What holds
//!
//! - **Act, then log.** Each signal is acted on (the trigger, the exit, the
//!   second-signal action) before anything about it is logged. The log
//!   thread is started with the watcher, so a record is written a channel
//!   send after the action; a process that exits within microseconds of the
//!   first signal (nothing to drain) may still lose that line, unless it
//!   calls [`flush_log`] before exiting.
//! - **The logger cannot stop the watcher.** The watcher does not call the
//!   logger itself: it hands its records, in order, to a thread of its own
//!   (started with the watcher), which calls the logger inside
//!   `catch_unwind`. A logger that panics loses that record and nothing
//!   else; one that blocks (a log pipe whose reader stalled) holds back only
//!   later records (64 wait, further ones are dropped and counted), never a
//!   signal. If that thread cannot be started, records are logged in place,
//!   still inside `catch_unwind` (a blocking logger then does block the
//!   watcher).
//! - **The exit waits at most 100 ms for its record.** Before exiting, the
//!   watcher hands its warning ("exiting now with status 143") to the log
//!   thread and waits until the logger has written and flushed it, or 100 ms,
//!   whichever comes first. A working logger takes microseconds, so the exit
//!   still comes at once and says why; a stuck or panicking logger delays it
//!   by at most 100 ms and cannot prevent it. (Without the log thread the
//!   exit is not logged at all.)
//! - **A panicking action is caught.** A panic in the
//!   [`on_second_signal`](Builder::on_second_signal) action is caught and
//!   logged; the watcher keeps running and calls the action again on the next
//!   signal. The action runs on the watcher's task, so it must not block.
//!   (The panic hook still runs, on that task, as for any panic.)
//! - **Read errors are retried, never abandoned.** If reading the signal
//!   notifications fails, the watcher retries after 1 ms, doubling the delay
//!   up to 1 s, for as long as the errors last, and starts again at 1 ms
//!   after a good read; it logs the 1st, 2nd, 4th, 8th, ... error in a row
//!   and the recovery. The handlers stay installed throughout, so a signal
//!   that arrives meanwhile is read on the next try. The delay is kept by a
//!   short-lived sleeping thread, so no timer (and no `smol` feature) is
//!   needed; if no thread can be started, the watcher sleeps the delay on
//!   its own task instead.
//! - Under `panic = "abort"` nothing can be caught: a panicking logger or
//!   action aborts the process.
//! - **Install early.** A signal that arrives before [`watch`] has installed
//!   the handlers gets the default action (the process dies): call it first
//!   thing in `main`, before binding sockets or loading configuration. A
//!   signal that lands *while* the handlers are being installed can be lost
//!   in signal-hook-registry (the registry async-signal uses), whose
//!   fallback for that window does nothing when the previous disposition
//!   was the default: the process neither dies nor hears it (seen once in
//!   about 250 start-ups under load). Send it again.
//!
//! # Examples
//!
//! ```no_run
//! use smol_graceful::{signal, Shutdown};
//!
//! fn main() -> std::io::Result<()> {
//!     let shutdown = Shutdown::new();
//!     smol::spawn(signal::watch(&shutdown)?).detach();
//!     smol::block_on(async {
//!         shutdown.triggered().await;
//!         println!("stopping: {}", shutdown.reason().unwrap());
//!     });
//!     Ok(())
//! }
//! ```

use std::fmt;
use std::future::Future;
use std::io;
use std::panic::{self, AssertUnwindSafe};
use std::pin::Pin;
use std::task::{Context, Poll};

use async_signal::Signals;
use futures_core::Stream;

pub use async_signal::Signal;

use crate::panic::{drop_payload, message as panic_message};
use crate::shutdown::{Reason, Shutdown};

mod backoff;
mod report;

pub use report::flush_log;

use backoff::{Backoff, Retry};
use report::Report;

/// Listens for SIGINT and SIGTERM (Ctrl-C on Windows) with the default
/// behaviour: the first signal triggers `shutdown`, the second exits with
/// `128 + signo`. Same as `Builder::new().watch(shutdown)`.
///
/// The handlers are installed by this call; the returned future must be
/// polled (spawned) for signals to reach `shutdown`.
///
/// # Errors
///
/// Any error from installing the signal handlers.
///
/// # Examples
///
/// ```no_run
/// # smol::block_on(async {
/// let shutdown = smol_graceful::Shutdown::new();
/// smol::spawn(smol_graceful::signal::watch(&shutdown)?).detach();
/// shutdown.triggered().await;
/// # std::io::Result::Ok(())
/// # }).unwrap();
/// ```
pub fn watch(shutdown: &Shutdown) -> io::Result<Watch> {
    Builder::new().watch(shutdown)
}

/// What a signal after the first one does.
enum Second {
    /// Exit the process with `128 + signo`.
    Exit,
    /// Log it and do nothing else.
    Ignore,
    /// Call the user's function.
    Call(Box<dyn FnMut(Signal) + Send + 'static>),
}

/// Configures signal watching: which signals, and what a second signal does.
///
/// # Examples
///
/// ```no_run
/// use smol_graceful::signal::{Builder, Signal};
/// use smol_graceful::Shutdown;
///
/// # fn main() -> std::io::Result<()> {
/// let shutdown = Shutdown::new();
/// let watcher = Builder::new()
///     .signals([Signal::Int, Signal::Term, Signal::Hup])
///     .on_second_signal(|signal| eprintln!("{signal:?} again: still draining, please wait"))
///     .watch(&shutdown)?;
/// smol::spawn(watcher).detach();
/// # Ok(())
/// # }
/// ```
pub struct Builder {
    signals: Vec<Signal>,
    second: Second,
}

impl Default for Builder {
    fn default() -> Self {
        Builder::new()
    }
}

impl Builder {
    /// The default: SIGINT and SIGTERM (Ctrl-C on Windows); a second signal
    /// exits with `128 + signo`.
    pub fn new() -> Builder {
        #[cfg(unix)]
        let signals = vec![Signal::Int, Signal::Term];
        #[cfg(not(unix))]
        let signals = vec![Signal::Int];
        Builder {
            signals,
            second: Second::Exit,
        }
    }

    /// Replaces the set of signals to listen for.
    pub fn signals(mut self, signals: impl IntoIterator<Item = Signal>) -> Builder {
        self.signals = signals.into_iter().collect();
        self
    }

    /// Whether a second signal exits the process at once (the default) or
    /// is only logged.
    ///
    /// The exit waits at most 100 ms for the logger to write why (see the
    /// [module docs](self#what-holds)).
    pub fn exit_on_second_signal(mut self, exit: bool) -> Builder {
        self.second = if exit { Second::Exit } else { Second::Ignore };
        self
    }

    /// Calls `action` for every signal after the first, instead of exiting.
    ///
    /// `action` runs on the watcher's task, before the signal is logged, so
    /// it must not block. If it panics, the panic is caught and logged, and
    /// the watcher keeps running: the next signal calls `action` again.
    pub fn on_second_signal(mut self, action: impl FnMut(Signal) + Send + 'static) -> Builder {
        self.second = Second::Call(Box::new(action));
        self
    }

    /// Installs the handlers and returns the future that forwards signals to
    /// `shutdown`.
    ///
    /// # Errors
    ///
    /// [`io::ErrorKind::InvalidInput`] if the signal set is empty or holds a
    /// signal that cannot or must not be caught (`SIGKILL`, `SIGSTOP`, and the
    /// fault signals `SIGILL`, `SIGFPE`, `SIGSEGV`), and any error from
    /// installing the handlers.
    pub fn watch(self, shutdown: &Shutdown) -> io::Result<Watch> {
        if self.signals.is_empty() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "no signals to watch: the signal set is empty",
            ));
        }
        // signal-hook-registry (under async-signal) panics for these instead
        // of returning an error, so refuse them here.
        #[cfg(unix)]
        if let Some(signal) = self.signals.iter().copied().find(|s| {
            matches!(
                s,
                Signal::Kill | Signal::Stop | Signal::Ill | Signal::Fpe | Signal::Segv
            )
        }) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "cannot watch {signal:?} (signal {}): it cannot or must not be caught",
                    signal as i32
                ),
            ));
        }
        let signals = Signals::new(&self.signals)?;
        Ok(Watch {
            signals,
            shutdown: shutdown.clone(),
            seen: 0,
            second: self.second,
            report: Report::start(),
            backoff: Backoff::default(),
            retry: None,
        })
    }
}

impl fmt::Debug for Builder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let second = match self.second {
            Second::Exit => "exit",
            Second::Ignore => "ignore",
            Second::Call(_) => "call",
        };
        f.debug_struct("Builder")
            .field("signals", &self.signals)
            .field("second", &second)
            .finish()
    }
}

/// The signal watcher: a future that forwards OS signals to a [`Shutdown`].
///
/// It never completes. Spawn it and let it run for the life of the process;
/// dropping it uninstalls the handlers (and leaves SIGINT ignored, see the
/// [module docs](self)), and ends its log thread once that thread has
/// logged what it was given.
#[must_use = "signals reach the shutdown only while the watcher is polled"]
pub struct Watch {
    signals: Signals,
    shutdown: Shutdown,
    /// Signals seen so far (saturating).
    seen: usize,
    second: Second,
    report: Report,
    /// The read errors in a row, and the delay before the next read.
    backoff: Backoff,
    /// Set while waiting out a back-off delay: no read until then.
    retry: Option<Retry>,
}

impl Watch {
    /// Acts on `signal`, then logs it.
    fn on_signal(&mut self, signal: Signal) {
        let signo = signal as i32;
        self.seen = self.seen.saturating_add(1);
        let name = SignalName(signal);
        if self.seen == 1 {
            // Quietly: `trigger_with` would log in place, where a stuck
            // logger would hold the watcher. The record then goes to the log
            // thread, which is already waiting for it.
            let text = if self.shutdown.trigger_quietly(Reason::Signal(signo)) {
                format!("received {name}: shutting down; send it again to exit at once")
            } else {
                format!("received {name}: shutdown was already in progress; send it again to exit at once")
            };
            self.report.log(log::Level::Info, text);
            return;
        }
        match &mut self.second {
            Second::Exit => {
                let status = 128 + signo;
                self.report.log_before_exit(format!(
                    "received {name} again: exiting now with status {status}"
                ));
                // No successor of an upgrade may go on serving alone.
                #[cfg(all(unix, feature = "upgrade"))]
                crate::upgrade::abandon();
                std::process::exit(status);
            }
            Second::Ignore => self.report.log(
                log::Level::Warn,
                format!("received {name} again: still shutting down"),
            ),
            Second::Call(action) => {
                match panic::catch_unwind(AssertUnwindSafe(|| action(signal))) {
                    Ok(()) => self.report.log(
                        log::Level::Warn,
                        format!("received {name} again: called the second-signal action"),
                    ),
                    Err(payload) => {
                        let text = format!(
                            "received {name} again: the second-signal action panicked: {}; \
                         it will be called again on the next signal",
                            panic_message(&*payload)
                        );
                        drop_payload(payload);
                        self.report.log(log::Level::Error, text);
                    }
                }
            }
        }
    }

    /// Records a failed read (`what`), and arranges the next read after the
    /// back-off delay.
    fn on_read_error(&mut self, what: &dyn fmt::Display, cx: &mut Context<'_>) {
        let step = self.backoff.fail();
        if step.log {
            self.report.log(
                log::Level::Error,
                format!(
                    "reading signals failed ({} in a row): {what}; retrying in {:?} (the handlers stay installed)",
                    step.failures, step.delay
                ),
            );
        }
        self.retry = Retry::start(step.delay, cx.waker());
    }
}

impl Future for Watch {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        loop {
            if let Some(retry) = &self.retry {
                if retry.pending(cx.waker()) {
                    return Poll::Pending;
                }
                self.retry = None;
            }
            match Pin::new(&mut self.signals).poll_next(cx) {
                Poll::Ready(Some(Ok(signal))) => {
                    let failures = self.backoff.succeed();
                    if failures > 0 {
                        self.report.log(
                            log::Level::Info,
                            format!("reading signals works again after {failures} failed reads"),
                        );
                    }
                    self.on_signal(signal);
                }
                Poll::Ready(Some(Err(error))) => self.on_read_error(&error, cx),
                // `Signals` is documented never to end; if it did, keep the
                // handlers and try again later like after an error, rather
                // than finish (which would drop them) or go deaf.
                Poll::Ready(None) => self.on_read_error(&"the signal stream ended", cx),
                Poll::Pending => return Poll::Pending,
            }
        }
    }
}

impl fmt::Debug for Watch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Watch")
            .field("signals", &self.signals)
            .field("seen", &self.seen)
            .field("read_errors_in_a_row", &self.backoff.failures)
            .finish_non_exhaustive()
    }
}

/// A signal as people write it: `SIGINT`, `SIGTERM`, ...
struct SignalName(Signal);

impl fmt::Display for SignalName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let debug = format!("{:?}", self.0); // `Int`, `Term`, `Hup`, ...
        write!(f, "SIG{} (signal {})", debug.to_uppercase(), self.0 as i32)
    }
}
