//! [`Reason`]: why a [`Shutdown`](crate::Shutdown) was triggered.

use std::error::Error;
use std::fmt;
use std::sync::Arc;

#[cfg(doc)]
use super::Shutdown;

/// Why a [`Shutdown`] was triggered.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum Reason {
    /// An OS signal arrived; holds its number (2 for SIGINT, 15 for SIGTERM;
    /// Ctrl-C on Windows is reported as 2).
    Signal(i32),
    /// [`Shutdown::trigger`] was called.
    Requested,
    /// The work this shutdown scoped has finished: a `TaskSet`'s `join`
    /// returned (as Go's `errgroup.WithContext` cancels its context when
    /// `Wait` returns).
    Finished,
    /// A [`DropGuard`](crate::DropGuard) was dropped without being
    /// disarmed; `panicking` says it was dropped by a panic unwinding.
    GuardDropped {
        /// True if the guard was dropped while its thread was panicking.
        panicking: bool,
    },
    /// A scope made by `Shutdown::child_with_deadline` (feature `smol`)
    /// reached its deadline.
    DeadlineExceeded,
    /// A successor took over this process's listening sockets and serves
    /// (`upgrade::Upgrade::start`, feature `upgrade`); holds its pid.
    Upgraded {
        /// The successor's process id.
        successor: u32,
    },
    /// A task failed; holds its error, whose `Display` is the text shown.
    /// [`Reason::as_error`] lends it out (to downcast it), and as an
    /// [`Error`](std::error::Error) a `Reason` gives it as its `source()`.
    Error(Arc<dyn Error + Send + Sync + 'static>),
}

impl Reason {
    /// A [`Reason::Error`] from an error value or a message.
    ///
    /// # Examples
    ///
    /// ```
    /// let reason = smol_graceful::Reason::error("disk full");
    /// assert_eq!(reason.to_string(), "error: disk full");
    /// ```
    pub fn error(error: impl Into<Box<dyn Error + Send + Sync + 'static>>) -> Reason {
        Reason::Error(Arc::from(error.into()))
    }

    /// The error of a [`Reason::Error`], to inspect or downcast; `None` for
    /// the other reasons.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::io;
    /// use smol_graceful::Reason;
    ///
    /// let reason = Reason::error(io::Error::new(io::ErrorKind::StorageFull, "disk full"));
    /// let io = reason.as_error().and_then(|e| e.downcast_ref::<io::Error>()).unwrap();
    /// assert_eq!(io.kind(), io::ErrorKind::StorageFull);
    /// assert!(Reason::Requested.as_error().is_none());
    /// ```
    pub fn as_error(&self) -> Option<&(dyn Error + Send + Sync + 'static)> {
        match self {
            Reason::Error(error) => Some(&**error),
            _ => None,
        }
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reason::Signal(2) => f.write_str("signal SIGINT"),
            Reason::Signal(15) => f.write_str("signal SIGTERM"),
            Reason::Signal(signo) => write!(f, "signal {signo}"),
            Reason::Requested => f.write_str("requested"),
            Reason::Finished => f.write_str("finished"),
            Reason::DeadlineExceeded => f.write_str("deadline exceeded"),
            Reason::Upgraded { successor } => write!(f, "upgraded: pid {successor} serves now"),
            Reason::GuardDropped { panicking: false } => f.write_str("drop guard dropped"),
            Reason::GuardDropped { panicking: true } => {
                f.write_str("drop guard dropped by a panic unwinding")
            }
            Reason::Error(error) => write!(f, "error: {error}"),
        }
    }
}

/// A `Reason` is an error too, so that a shutdown's cause can travel up as
/// one: its `source()` is the task's error for [`Reason::Error`], which
/// keeps `source()` chains whole.
impl Error for Reason {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        match self {
            Reason::Error(error) => Some(&**error),
            _ => None,
        }
    }
}
