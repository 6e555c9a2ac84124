//! [`TaskBuilder`]: every way to start a task of a set goes through here. A
//! new way to start a task is one method on it (and, if it deserves a
//! shortcut, one on `TaskSet`).

use std::borrow::Cow;
use std::fmt;
use std::future::Future;
use std::panic::{catch_unwind, AssertUnwindSafe, Location};
use std::sync::Arc;

use smol::{Executor, LocalExecutor};

use super::table::{Shared, Slot};
use super::task::TrackedTask;
#[cfg(doc)]
use super::{Spawner, TaskError, TaskSet};
use crate::group::Closed;

/// Starts one task of a [`TaskSet`], optionally named, on the executor of
/// your choice: made by [`TaskSet::build_task`] and [`Spawner::build_task`],
/// as tokio's `JoinSet::build_task`.
///
/// Every start method records the caller's line (shown in
/// [`Stragglers`](crate::Stragglers) reports) and none of them waits: in a
/// [limited](TaskSet::with_limit) set that is full, the task is listed at
/// once and waits inside the set for a slot, counted by
/// [`len`](TaskSet::len), joined by [`join`](TaskSet::join) and cut by
/// [`abort`](TaskSet::abort). Tasks that start tasks never deadlock.
///
/// # Errors
///
/// Each start method returns [`Closed`] once the set is closed: it was
/// dropped, or a [`join`](TaskSet::join) was called and found no task left.
///
/// # Examples
///
/// ```
/// use smol_graceful::TaskSet;
///
/// # smol::block_on(async {
/// let mut set = TaskSet::<u32, String>::new();
/// set.build_task().name("answer").spawn(async { Ok(42) })?;
/// set.build_task().name("sum").spawn_blocking(|| Ok((1..=3).sum()))?;
/// assert_eq!(set.join().await.unwrap(), [42, 6]);
/// # Ok::<(), smol_graceful::Closed>(())
/// # }).unwrap();
/// ```
#[must_use = "a builder does nothing until a start method is called"]
pub struct TaskBuilder<'s, T, E> {
    shared: &'s Arc<Shared<T, E>>,
    name: Option<Cow<'static, str>>,
}

impl<'s, T, E> TaskBuilder<'s, T, E> {
    pub(super) fn new(shared: &'s Arc<Shared<T, E>>) -> TaskBuilder<'s, T, E> {
        TaskBuilder { shared, name: None }
    }

    /// Names the task: its name replaces `task #i` in errors,
    /// [`join_next`](TaskSet::join_next) and straggler reports.
    pub fn name(mut self, name: impl Into<Cow<'static, str>>) -> TaskBuilder<'s, T, E> {
        self.name = Some(name.into());
        self
    }

    /// Starts `future` on smol's global executor, as `smol::spawn` does.
    ///
    /// # Errors
    ///
    /// [`Closed`] once the set is closed.
    #[track_caller]
    pub fn spawn<F>(self, future: F) -> Result<(), Closed>
    where
        F: Future<Output = Result<T, E>> + Send + 'static,
        T: Send + 'static,
        E: fmt::Display + Send + 'static,
    {
        self.track(future).map(|task| smol::spawn(task).detach())
    }

    /// Starts `future` on `executor`.
    ///
    /// # Errors
    ///
    /// [`Closed`] once the set is closed.
    #[track_caller]
    pub fn spawn_on<'a, F>(self, executor: &Executor<'a>, future: F) -> Result<(), Closed>
    where
        F: Future<Output = Result<T, E>> + Send + 'a,
        T: Send + 'a,
        E: fmt::Display + Send + 'a,
    {
        self.track(future).map(|task| executor.spawn(task).detach())
    }

    /// Starts `future` on a [`LocalExecutor`]: it need not be `Send`.
    ///
    /// # Errors
    ///
    /// [`Closed`] once the set is closed.
    #[track_caller]
    pub fn spawn_local<'a, F>(self, executor: &LocalExecutor<'a>, future: F) -> Result<(), Closed>
    where
        F: Future<Output = Result<T, E>> + 'a,
        T: 'a,
        E: fmt::Display + 'a,
    {
        self.track(future).map(|task| executor.spawn(task).detach())
    }

    /// Runs `f` on smol's blocking thread pool (`smol::unblock`). It counts
    /// until it returns: [`abort`](TaskSet::abort) cannot cut it once it
    /// runs (only while it waits for a slot).
    ///
    /// # Errors
    ///
    /// [`Closed`] once the set is closed.
    #[track_caller]
    pub fn spawn_blocking<B>(self, f: B) -> Result<(), Closed>
    where
        B: FnOnce() -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: fmt::Display + Send + 'static,
    {
        let slot = Slot::register(self.shared, self.name, Location::caller())?;
        let run = move |slot: Slot<T, E>| {
            let work = move || slot.finish(catch_unwind(AssertUnwindSafe(f)));
            smol::unblock(work).detach();
        };
        if !slot.queued {
            run(slot);
        } else {
            // Wait for a slot (abortable) on the global executor, then hand
            // the slot to the blocking thread with the work.
            smol::spawn(async move {
                if std::future::poll_fn(|cx| slot.poll_start(cx)).await {
                    run(slot);
                }
            })
            .detach();
        }
        Ok(())
    }

    /// The task as a future for any runtime, to spawn yourself (tokio,
    /// async-std, a thread with `block_on`): see [`TrackedTask`]. It counts
    /// from now until it completes or is dropped.
    ///
    /// # Errors
    ///
    /// [`Closed`] once the set is closed.
    #[track_caller]
    pub fn track<F>(self, future: F) -> Result<TrackedTask<F, T, E>, Closed>
    where
        F: Future<Output = Result<T, E>>,
    {
        let slot = Slot::register(self.shared, self.name, Location::caller())?;
        Ok(TrackedTask::new(future, slot))
    }
}

impl<T, E> fmt::Debug for TaskBuilder<'_, T, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TaskBuilder")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}
