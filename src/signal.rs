//! OS signals trigger a [`Shutdown`] (feature `signal`).
//!
//! [`watch`] listens for SIGINT and SIGTERM (Ctrl-C on Windows). The first
//! signal is logged with `log::info!` and triggers the shutdown with
//! [`Reason::Signal`]; a second one is logged with `log::warn!` and exits the
//! process at once with status `128 + signo` (130 for SIGINT), because a
//! user who presses Ctrl-C twice wants out now. [`Builder`] changes the
//! signal set and what the second signal does.
//!
//! Listening is a future, [`Watch`]: spawn it on the executor of your choice
//! and keep it running for the life of the process. It never finishes on its
//! own, on purpose: while it lives it keeps the OS handlers installed. (Once
//! async-signal's `Signals` is dropped, SIGINT stays *ignored* for the rest
//! of the process instead of going back to its default action, so a watcher
//! that stopped listening would make Ctrl-C do nothing at all.)
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
use std::pin::Pin;
use std::task::{Context, Poll};

use async_signal::Signals;
use futures_core::Stream;

pub use async_signal::Signal;

use crate::shutdown::{Reason, Shutdown};

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
    pub fn exit_on_second_signal(mut self, exit: bool) -> Builder {
        self.second = if exit { Second::Exit } else { Second::Ignore };
        self
    }

    /// Calls `action` for every signal after the first, instead of exiting.
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
            errors: 0,
            second: self.second,
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
/// [module docs](self)).
#[must_use = "signals reach the shutdown only while the watcher is polled"]
pub struct Watch {
    signals: Signals,
    shutdown: Shutdown,
    seen: usize,
    /// Read errors in a row; see `poll`.
    errors: u32,
    second: Second,
}

/// How many read errors in a row `Watch` retries at once before it stops
/// re-polling itself (so a persistent error cannot spin an executor thread).
const MAX_RETRIES: u32 = 3;

impl Watch {
    fn on_signal(&mut self, signal: Signal) {
        let signo = signal as i32;
        self.seen += 1;
        if self.seen == 1 {
            log::info!("received {signal:?} (signal {signo}): shutting down; send it again to exit at once");
            if !self.shutdown.trigger_with(Reason::Signal(signo)) {
                log::info!("shutdown was already in progress");
            }
            return;
        }
        match &mut self.second {
            Second::Exit => {
                log::warn!(
                    "received {signal:?} (signal {signo}) again: exiting now with status {}",
                    128 + signo
                );
                log::logger().flush();
                std::process::exit(128 + signo);
            }
            Second::Ignore => {
                log::warn!("received {signal:?} (signal {signo}) again: still shutting down");
            }
            Second::Call(action) => {
                log::warn!("received {signal:?} (signal {signo}) again");
                action(signal);
            }
        }
    }
}

impl Future for Watch {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        loop {
            match Pin::new(&mut self.signals).poll_next(cx) {
                Poll::Ready(Some(Ok(signal))) => {
                    self.errors = 0;
                    self.on_signal(signal);
                }
                Poll::Ready(Some(Err(error))) => {
                    // Reading the notification pipe failed. Report it and
                    // try again on the next turn of the executor rather than
                    // stop listening (which would leave SIGINT ignored); but
                    // only a few times in a row, so that a persistent error
                    // does not spin. After that the watcher runs again only
                    // when something wakes it (the handlers stay installed).
                    self.errors = self.errors.saturating_add(1);
                    if self.errors <= MAX_RETRIES {
                        log::error!("reading signals failed: {error}; retrying");
                        cx.waker().wake_by_ref();
                    } else if self.errors == MAX_RETRIES + 1 {
                        log::error!(
                            "reading signals failed {} times in a row: {error}; \
                             no longer retrying at once",
                            self.errors
                        );
                    }
                    return Poll::Pending;
                }
                // `Signals` is documented never to end; if it did, stay
                // pending (and keep the handlers) rather than finish.
                Poll::Ready(None) | Poll::Pending => return Poll::Pending,
            }
        }
    }
}

impl fmt::Debug for Watch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Watch")
            .field("signals", &self.signals)
            .field("seen", &self.seen)
            .finish_non_exhaustive()
    }
}
