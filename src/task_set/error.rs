//! Why a task of a set did not succeed: [`TaskError`].

use std::any::Any;
use std::borrow::Cow;
use std::fmt;
use std::sync::{Mutex, PoisonError};

#[cfg(doc)]
use super::{TaskSet, TrackedTask};
use crate::panic::{isolate, message};
#[cfg(doc)]
use crate::shutdown::Reason;
use crate::sync::lock;

/// Why a task of a [`TaskSet`] did not succeed: it returned an error,
/// panicked or was cancelled. Each variant names the task.
///
/// Its `Display` names the task (`task #i` if it has no name) and says what
/// happened: `"fetch failed: connection refused"`,
/// `"task #3 panicked: index out of bounds"`. The first failure's text is
/// the message of the set's [`Reason::Error`].
///
/// The accessors are those of tokio's `JoinError`:
/// [`is_panic`](Self::is_panic), [`is_cancelled`](Self::is_cancelled),
/// [`into_panic`](Self::into_panic) (the original payload, for
/// [`std::panic::resume_unwind`]) and [`try_into_panic`](Self::try_into_panic);
/// the error a task returned is a field of [`Failed`](Self::Failed), to
/// match on.
///
/// It implements [`std::error::Error`] whenever `E` is `Debug + Display`,
/// so also for `String` and `anyhow::Error`. The task's error is part of
/// the message, so `source()` is `None` (a reporter that walks the chain
/// would otherwise print it twice).
///
/// # Examples
///
/// ```
/// use smol_graceful::{TaskError, TaskSet};
///
/// # smol::block_on(async {
/// let mut set = TaskSet::<(), &str>::new();
/// set.build_task().name("fetch").spawn(async { Err("connection refused") }).unwrap();
/// match set.join().await {
///     Err(TaskError::Failed { task, error }) => {
///         assert_eq!(task, "fetch");
///         assert_eq!(error, "connection refused");
///     }
///     other => panic!("unexpected {other:?}"),
/// }
/// # });
/// ```
#[non_exhaustive]
pub enum TaskError<E> {
    /// The task returned `Err(error)`.
    Failed {
        /// The task's name, or `task #i`.
        task: Cow<'static, str>,
        /// What the task returned.
        error: E,
    },
    /// The task panicked; the panic was caught and its payload kept.
    Panicked {
        /// The task's name, or `task #i`.
        task: Cow<'static, str>,
        /// What the task panicked with (its message is in `Display`), behind
        /// a mutex so that the error is `Sync`, as `anyhow` and
        /// `Box<dyn Error + Send + Sync>` need;
        /// [`into_panic`](Self::into_panic) takes it out.
        payload: Mutex<Box<dyn Any + Send + 'static>>,
    },
    /// The task ended before it finished: the set was
    /// [aborted](TaskSet::abort) or dropped, or its [`TrackedTask`] (or its
    /// executor) was dropped.
    Cancelled {
        /// The task's name, or `task #i`.
        task: Cow<'static, str>,
    },
}

impl<E> TaskError<E> {
    /// The name of the task, or `task #i` for an unnamed one.
    ///
    /// # Examples
    ///
    /// ```
    /// use smol_graceful::TaskSet;
    ///
    /// # smol::block_on(async {
    /// let mut set = TaskSet::<(), &str>::new();
    /// set.build_task().name("fsync").spawn_blocking(|| Err("disk full")).unwrap();
    /// assert_eq!(set.join().await.unwrap_err().task(), "fsync");
    /// # });
    /// ```
    pub fn task(&self) -> &str {
        self.task_name()
    }

    /// True if the task panicked.
    ///
    /// # Examples
    ///
    /// ```
    /// use smol_graceful::TaskSet;
    ///
    /// # smol::block_on(async {
    /// let mut set = TaskSet::<(), String>::new();
    /// set.spawn(async { panic!("boom") }).unwrap();
    /// let error = set.join().await.unwrap_err();
    /// assert!(error.is_panic());
    /// assert_eq!(error.to_string(), "task #0 panicked: boom");
    /// # });
    /// ```
    pub fn is_panic(&self) -> bool {
        matches!(self, TaskError::Panicked { .. })
    }

    /// True if the task was cancelled before it finished.
    ///
    /// # Examples
    ///
    /// ```
    /// use smol_graceful::TaskSet;
    ///
    /// # smol::block_on(async {
    /// let mut set = TaskSet::<(), String>::new();
    /// let task = set.track(std::future::pending()).unwrap();
    /// drop(task);
    /// assert!(set.join().await.unwrap_err().is_cancelled());
    /// # });
    /// ```
    pub fn is_cancelled(&self) -> bool {
        matches!(self, TaskError::Cancelled { .. })
    }

    /// The panic's payload, to [`resume_unwind`](std::panic::resume_unwind)
    /// it, or `Err(self)` if the task did not panic.
    ///
    /// # Errors
    ///
    /// `Err(self)` for a failure or a cancellation.
    ///
    /// # Examples
    ///
    /// ```
    /// use smol_graceful::TaskSet;
    ///
    /// # smol::block_on(async {
    /// let mut set = TaskSet::<(), String>::new();
    /// set.spawn(async { std::panic::panic_any(42_u32) }).unwrap();
    /// let payload = set.join().await.unwrap_err().try_into_panic().unwrap();
    /// assert_eq!(payload.downcast_ref::<u32>(), Some(&42));
    /// # });
    /// ```
    pub fn try_into_panic(self) -> Result<Box<dyn Any + Send + 'static>, TaskError<E>> {
        match self {
            TaskError::Panicked { payload, .. } => {
                Ok(payload.into_inner().unwrap_or_else(PoisonError::into_inner))
            }
            other => Err(other),
        }
    }

    /// The panic's payload, as tokio's `JoinError::into_panic`.
    ///
    /// # Panics
    ///
    /// If the task did not panic (use [`try_into_panic`](Self::try_into_panic)
    /// when unsure).
    ///
    /// # Examples
    ///
    /// ```
    /// use smol_graceful::TaskSet;
    ///
    /// # smol::block_on(async {
    /// let mut set = TaskSet::<(), String>::new();
    /// set.spawn(async { panic!("boom") }).unwrap();
    /// let error = set.join().await.unwrap_err();
    /// let outcome = std::panic::catch_unwind(|| std::panic::resume_unwind(error.into_panic()));
    /// assert_eq!(outcome.unwrap_err().downcast_ref::<&str>(), Some(&"boom"));
    /// # });
    /// ```
    #[track_caller]
    pub fn into_panic(self) -> Box<dyn Any + Send + 'static> {
        match self.try_into_panic() {
            Ok(payload) => payload,
            Err(other) => {
                let (task, what) = (other.task(), other.describe_without_error());
                panic!("TaskError::into_panic: {task} did not panic ({what})")
            }
        }
    }

    pub(super) fn task_name(&self) -> &Cow<'static, str> {
        match self {
            TaskError::Failed { task, .. }
            | TaskError::Panicked { task, .. }
            | TaskError::Cancelled { task } => task,
        }
    }

    /// The `Display` text; if the user's `Display` panics, the text without
    /// it, saying so.
    pub(super) fn describe(&self) -> String
    where
        E: fmt::Display,
    {
        isolate(|| self.to_string()).unwrap_or_else(|| {
            let without = self.describe_without_error();
            format!("{without} (its error's Display panicked)")
        })
    }

    /// The text without the user's `Display` (which may panic).
    pub(super) fn describe_without_error(&self) -> String {
        match self {
            TaskError::Failed { task, .. } => format!("{task} failed"),
            TaskError::Panicked { task, payload } => {
                format!("{task} panicked: {}", message(&**lock(payload)))
            }
            TaskError::Cancelled { task } => format!("{task} was cancelled before it finished"),
        }
    }
}

impl<E: fmt::Display> fmt::Display for TaskError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TaskError::Failed { task, error } => write!(f, "{task} failed: {error}"),
            other => f.write_str(&other.describe_without_error()),
        }
    }
}

impl<E: fmt::Debug> fmt::Debug for TaskError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TaskError::Failed { task, error } => f
                .debug_struct("Failed")
                .field("task", task)
                .field("error", error)
                .finish(),
            TaskError::Panicked { task, payload } => f
                .debug_struct("Panicked")
                .field("task", task)
                .field("message", &message(&**lock(payload)))
                .finish_non_exhaustive(),
            TaskError::Cancelled { task } => {
                f.debug_struct("Cancelled").field("task", task).finish()
            }
        }
    }
}

impl<E: fmt::Debug + fmt::Display> std::error::Error for TaskError<E> {}
