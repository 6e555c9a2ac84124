//! Why a set failed ([`TaskError`]) and why it took no task
//! ([`TaskSetClosed`], [`TrySpawnError`]).

use std::borrow::Cow;
use std::fmt;

#[cfg(doc)]
use super::{TaskSet, TrackedTask};
use crate::group::Closed;
#[cfg(doc)]
use crate::shutdown::Reason;

/// Why a [`TaskSet`] failed: the first task that returned an error, panicked
/// or was cancelled, by name.
///
/// Its `Display` names the task (`task #i` if it has no name) and says what
/// happened: `"fetch failed: connection refused"`,
/// `"task #3 panicked: index out of bounds"`. The same text is the
/// message of the set's [`Reason::Error`].
///
/// It implements [`std::error::Error`] whenever `E` is `Debug + Display`,
/// so also for `String`, `anyhow::Error` and `Box<dyn Error + Send + Sync>`
/// (none of which is an `Error` itself). The task's error is part of the
/// message, so `source()` is `None`: a reporter that walks the chain would
/// otherwise print it twice, and a `source()` that returns `E` would need
/// `E: Error + 'static`, shutting those three out. The error itself comes
/// back with [`error`](Self::error), [`into_error`](Self::into_error) or
/// [`try_into_error`](Self::try_into_error); panics and cancellations have
/// [`is_panic`](Self::is_panic), [`into_panic`](Self::into_panic),
/// [`is_cancelled`](Self::is_cancelled) (tokio's `JoinError` vocabulary).
///
/// # Examples
///
/// ```
/// use smol::Executor;
/// use smol_graceful::{TaskError, TaskSet};
///
/// let ex = Executor::new();
/// let mut set = TaskSet::<(), String>::new();
/// smol::block_on(ex.run(async {
///     set.spawn(&ex, async { panic!("boom") }).await.unwrap();
///     match set.join().await {
///         Err(TaskError::Panicked { task, message }) => {
///             assert_eq!(task, "task #0");
///             assert_eq!(message, "boom");
///         }
///         other => panic!("unexpected {other:?}"),
///     }
/// }));
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum TaskError<E> {
    /// The task returned `Err(error)`.
    Failed {
        /// The task's name, or `task #i`.
        task: Cow<'static, str>,
        /// What the task returned.
        error: E,
    },
    /// The task panicked; the panic was caught.
    Panicked {
        /// The task's name, or `task #i`.
        task: Cow<'static, str>,
        /// The panic's message, if it was a string.
        message: String,
    },
    /// The task was dropped before it finished: its [`TrackedTask`] was
    /// dropped, or its executor was, before the task completed, or the set
    /// was [aborted](TaskSet::abort).
    Cancelled {
        /// The task's name, or `task #i`.
        task: Cow<'static, str>,
    },
}

impl<E> TaskError<E> {
    /// The name of the task that failed, or `task #i` for an unnamed one.
    ///
    /// # Examples
    ///
    /// ```
    /// use smol_graceful::TaskSet;
    ///
    /// # smol::block_on(async {
    /// let mut set = TaskSet::<(), &str>::new();
    /// set.spawn_blocking_named("fsync", || Err("disk full")).await.unwrap();
    /// assert_eq!(set.join().await.unwrap_err().task(), "fsync");
    /// # });
    /// ```
    pub fn task(&self) -> &str {
        match self {
            TaskError::Failed { task, .. }
            | TaskError::Panicked { task, .. }
            | TaskError::Cancelled { task } => task,
        }
    }

    /// The error the task returned, if it returned one (rather than panicking
    /// or being cancelled).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::io;
    /// use smol_graceful::TaskSet;
    ///
    /// # smol::block_on(async {
    /// let mut set = TaskSet::<(), io::Error>::new();
    /// set.spawn_blocking_named("open", || Err(io::ErrorKind::NotFound.into())).await.unwrap();
    /// let error = set.join().await.unwrap_err().into_error().unwrap();
    /// assert_eq!(error.kind(), io::ErrorKind::NotFound);
    /// # });
    /// ```
    pub fn into_error(self) -> Option<E> {
        match self {
            TaskError::Failed { error, .. } => Some(error),
            TaskError::Panicked { .. } | TaskError::Cancelled { .. } => None,
        }
    }

    /// True if the task returned `Err` ([`TaskError::Failed`]).
    ///
    /// # Examples
    ///
    /// ```
    /// # smol::block_on(async {
    /// let mut set = smol_graceful::TaskSet::<(), &str>::new();
    /// set.spawn_blocking(|| Err("no")).await.unwrap();
    /// let error = set.join().await.unwrap_err();
    /// assert!(error.is_failed() && !error.is_panic() && !error.is_cancelled());
    /// # });
    /// ```
    pub fn is_failed(&self) -> bool {
        matches!(self, TaskError::Failed { .. })
    }

    /// True if the task panicked ([`TaskError::Panicked`]); tokio's
    /// `JoinError::is_panic`.
    ///
    /// # Examples
    ///
    /// ```
    /// # smol::block_on(async {
    /// let mut set = smol_graceful::TaskSet::<(), String>::new();
    /// set.spawn_blocking(|| panic!("boom")).await.unwrap();
    /// assert!(set.join().await.unwrap_err().is_panic());
    /// # });
    /// ```
    pub fn is_panic(&self) -> bool {
        matches!(self, TaskError::Panicked { .. })
    }

    /// True if the task was dropped or [aborted](TaskSet::abort) before it
    /// finished ([`TaskError::Cancelled`]); tokio's
    /// `JoinError::is_cancelled`.
    ///
    /// # Examples
    ///
    /// ```
    /// # smol::block_on(async {
    /// let mut set = smol_graceful::TaskSet::<(), String>::new();
    /// drop(set.track(async { Ok(()) }).await.unwrap()); // dropped unfinished
    /// assert!(set.join().await.unwrap_err().is_cancelled());
    /// # });
    /// ```
    pub fn is_cancelled(&self) -> bool {
        matches!(self, TaskError::Cancelled { .. })
    }

    /// The error the task returned, by reference, if it returned one.
    ///
    /// # Examples
    ///
    /// ```
    /// # smol::block_on(async {
    /// let mut set = smol_graceful::TaskSet::<(), &str>::new();
    /// set.spawn_blocking(|| Err("disk full")).await.unwrap();
    /// assert_eq!(set.join().await.unwrap_err().error(), Some(&"disk full"));
    /// # });
    /// ```
    pub fn error(&self) -> Option<&E> {
        match self {
            TaskError::Failed { error, .. } => Some(error),
            TaskError::Panicked { .. } | TaskError::Cancelled { .. } => None,
        }
    }

    /// The panic's message, if the task panicked (`"a panic payload that is
    /// not a string"` for a payload other than a `&str` or `String`).
    ///
    /// # Examples
    ///
    /// ```
    /// # smol::block_on(async {
    /// let mut set = smol_graceful::TaskSet::<(), String>::new();
    /// set.spawn_blocking(|| panic!("boom")).await.unwrap();
    /// assert_eq!(set.join().await.unwrap_err().panic_message(), Some("boom"));
    /// # });
    /// ```
    pub fn panic_message(&self) -> Option<&str> {
        match self {
            TaskError::Panicked { message, .. } => Some(message),
            TaskError::Failed { .. } | TaskError::Cancelled { .. } => None,
        }
    }

    /// The error the task returned, or `Err(self)` if it panicked or was
    /// cancelled: [`into_error`](Self::into_error) that keeps the other
    /// cases.
    ///
    /// # Errors
    ///
    /// `Err(self)` unless this is [`TaskError::Failed`].
    ///
    /// # Examples
    ///
    /// ```
    /// # smol::block_on(async {
    /// let mut set = smol_graceful::TaskSet::<(), String>::new();
    /// set.spawn_blocking(|| panic!("boom")).await.unwrap();
    /// let error = set.join().await.unwrap_err();
    /// let panicked = error.try_into_error().unwrap_err();
    /// assert!(panicked.is_panic());
    /// # });
    /// ```
    pub fn try_into_error(self) -> Result<E, TaskError<E>> {
        match self {
            TaskError::Failed { error, .. } => Ok(error),
            other => Err(other),
        }
    }

    /// The panic's message, or `Err(self)` if the task did not panic:
    /// tokio's `JoinError::try_into_panic`.
    ///
    /// The set keeps the message, not the payload: a payload is neither
    /// `Sync`, `Clone` nor comparable, and its `Drop` is user code the set
    /// runs under a guard as soon as the panic is caught.
    ///
    /// # Errors
    ///
    /// `Err(self)` unless this is [`TaskError::Panicked`].
    ///
    /// # Examples
    ///
    /// ```
    /// # smol::block_on(async {
    /// let mut set = smol_graceful::TaskSet::<(), String>::new();
    /// set.spawn_blocking(|| panic!("boom")).await.unwrap();
    /// assert_eq!(set.join().await.unwrap_err().try_into_panic().unwrap(), "boom");
    /// # });
    /// ```
    pub fn try_into_panic(self) -> Result<String, TaskError<E>> {
        match self {
            TaskError::Panicked { message, .. } => Ok(message),
            other => Err(other),
        }
    }

    /// The panic's message: tokio's `JoinError::into_panic`. To go on
    /// unwinding with it, `std::panic::resume_unwind(Box::new(message))`.
    ///
    /// # Panics
    ///
    /// If the task did not panic (see [`is_panic`](Self::is_panic) and
    /// [`try_into_panic`](Self::try_into_panic)).
    ///
    /// # Examples
    ///
    /// ```
    /// # smol::block_on(async {
    /// let mut set = smol_graceful::TaskSet::<(), String>::new();
    /// set.spawn_blocking(|| panic!("boom")).await.unwrap();
    /// assert_eq!(set.join().await.unwrap_err().into_panic(), "boom");
    /// # });
    /// ```
    #[track_caller]
    pub fn into_panic(self) -> String {
        match self {
            TaskError::Panicked { message, .. } => message,
            TaskError::Failed { task, .. } => {
                panic!("TaskError::into_panic: {task} did not panic, it failed")
            }
            TaskError::Cancelled { task } => {
                panic!("TaskError::into_panic: {task} did not panic, it was cancelled")
            }
        }
    }

    /// The task's name, as stored.
    pub(super) fn task_name(&self) -> &Cow<'static, str> {
        match self {
            TaskError::Failed { task, .. }
            | TaskError::Panicked { task, .. }
            | TaskError::Cancelled { task } => task,
        }
    }

    /// The `Display` text, with only the task's name for `Failed`: what a
    /// cancelled slot can write without requiring `E: Display`.
    pub(super) fn describe_without_error(&self) -> String {
        match self {
            TaskError::Failed { task, .. } => format!("{task} failed"),
            TaskError::Panicked { task, message } => format!("{task} panicked: {message}"),
            TaskError::Cancelled { task } => format!("{task} was cancelled before it finished"),
        }
    }
}

impl<E: fmt::Display> fmt::Display for TaskError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TaskError::Failed { task, error } => write!(f, "{task} failed: {error}"),
            TaskError::Panicked { task, message } => write!(f, "{task} panicked: {message}"),
            TaskError::Cancelled { task } => write!(f, "{task} was cancelled before it finished"),
        }
    }
}

impl<E: fmt::Debug + fmt::Display> std::error::Error for TaskError<E> {}

/// The error of the waiting ways to add a task to a [`TaskSet`] once it is
/// closed: [`join`](TaskSet::join) or [`join_timeout`](TaskSet::join_timeout)
/// has been called, even if that join future was dropped before it finished.
///
/// Returned by [`TaskSet::spawn`], [`spawn_named`](TaskSet::spawn_named),
/// [`track`](TaskSet::track), [`spawn_blocking`](TaskSet::spawn_blocking) and
/// [`reserve`](TaskSet::reserve); the `try_` methods say
/// [`TrySpawnError::Closed`].
///
/// # Examples
///
/// ```
/// use smol_graceful::{TaskSet, TaskSetClosed};
///
/// # smol::block_on(async {
/// let mut set = TaskSet::<(), String>::new();
/// drop(set.join()); // closes the set, even unpolled
/// assert_eq!(set.track(async { Ok(()) }).await.unwrap_err(), TaskSetClosed);
/// assert_eq!(TaskSetClosed.to_string(), "task set is closed: join was called");
/// # });
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct TaskSetClosed;

impl fmt::Display for TaskSetClosed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("task set is closed: join was called")
    }
}

impl std::error::Error for TaskSetClosed {}

/// The error of [`TaskSet::try_spawn`] and [`TaskSet::try_reserve`].
///
/// # Examples
///
/// ```
/// use smol_graceful::{TaskSet, TrySpawnError};
///
/// # smol::block_on(async {
/// let mut set = TaskSet::<(), String>::new().with_limit(1);
/// let only = set.try_reserve().unwrap();
/// assert_eq!(set.try_reserve().unwrap_err(), TrySpawnError::Full);
/// assert_eq!(TrySpawnError::Full.to_string(), "task set is full");
/// drop(only); // a permit borrows the set: drop it before joining
/// set.join().await.unwrap();
/// assert_eq!(set.try_reserve().unwrap_err(), TrySpawnError::Closed);
/// # });
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TrySpawnError {
    /// The set is at its limit: every slot is taken.
    Full,
    /// [`join`](TaskSet::join) or [`join_timeout`](TaskSet::join_timeout)
    /// has been called (even if that join future was dropped): the set takes
    /// no new tasks. Says the same as [`TaskSetClosed`].
    Closed,
}

impl fmt::Display for TrySpawnError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TrySpawnError::Full => f.write_str("task set is full"),
            TrySpawnError::Closed => fmt::Display::fmt(&TaskSetClosed, f),
        }
    }
}

impl std::error::Error for TrySpawnError {}

impl From<TaskSetClosed> for TrySpawnError {
    fn from(_: TaskSetClosed) -> TrySpawnError {
        TrySpawnError::Closed
    }
}

impl From<Closed> for TrySpawnError {
    fn from(_: Closed) -> TrySpawnError {
        TrySpawnError::Closed
    }
}
