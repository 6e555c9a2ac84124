//! [`TaskSet`]: errgroup-style sets of fallible tasks built on [`Group`] and
//! [`Shutdown`], with bounded concurrency ([`Permit`]) and tracked blocking
//! work (feature `smol`).
//!
//! A set is a [`Group`] that counts its running tasks, a [`Shutdown`] that
//! the first failure triggers, an optional semaphore (the limit) and a
//! table of outcomes in spawn order. Each task owns a slot that, when the
//! task ends, records the outcome, then drops its guard of the group, then
//! releases its permit: so `join`, which waits for the group to drain,
//! finds every outcome in the table, and the group never counts more tasks
//! than the limit allows.
//!
//! This file is the public face. The rooms behind it:
//! - `task_set/slot.rs`: the table and the slot protocol, with its
//!   invariants and lock order;
//! - `task_set/permit.rs`: the limit and [`Permit`];
//! - `task_set/spawn.rs`: the ways to add a task (`spawn`, `track`, ...);
//! - `task_set/spawner.rs`: [`Spawner`], which every way to add a task
//!   goes through, and which tasks hold to add tasks;
//! - `task_set/join.rs`: `join`, `join_timeout`, `join_next` (and the
//!   `Stream`), `abort`;
//! - `task_set/abort.rs`: the abort flag and each task's watch on it;
//! - `task_set/futures.rs`: the named futures ([`Reserve`], [`Spawn`],
//!   [`SpawnLocal`], [`Track`], [`SpawnBlocking`], [`TrackedTask`],
//!   [`Join`], [`JoinNext`], [`JoinTimeout`]);
//! - `task_set/error.rs`: [`TaskError`], [`TaskSetClosed`],
//!   [`TrySpawnError`];
//! - `task_set/user_code.rs`: running user code that may panic.

use std::fmt;
use std::num::NonZeroUsize;
use std::sync::Arc;

#[cfg(doc)]
use smol::{Executor, LocalExecutor};

use crate::group::Group;
#[cfg(doc)]
use crate::shutdown::Reason;
use crate::shutdown::Shutdown;
use crate::stragglers::Stragglers;

mod abort;
mod error;
mod futures;
mod join;
mod permit;
mod slot;
mod spawn;
mod spawner;
mod user_code;

pub use self::error::{TaskError, TaskSetClosed, TrySpawnError};
pub use self::futures::{
    Join, JoinNext, JoinTimeout, Reserve, Spawn, SpawnBlocking, SpawnLocal, Track, TrackedTask,
};
pub use self::permit::Permit;
pub use self::spawner::Spawner;

use self::permit::Limit;
use self::slot::Shared;
use self::user_code::user_code;

/// A set of fallible tasks that fail together: the first error stops the
/// siblings, and [`join`](Self::join) returns it, or every result in spawn
/// order.
///
/// This is Go's `errgroup.WithContext` (and Python's `asyncio.TaskGroup`)
/// for smol, built from this crate's two halves: a [`Group`] that counts the
/// running tasks and a [`Shutdown`] that tells them to stop.
///
/// # Semantics
///
/// - **Spawning.** Each task is a future (or, with
///   [`spawn_blocking`](Self::spawn_blocking), a closure on smol's blocking
///   thread pool) that returns `Result<T, E>`. [`spawn`](Self::spawn) runs it
///   on a smol [`Executor`]; [`track`](Self::track) wraps it in a
///   [`TrackedTask`] future for any other runtime; a [`Permit`] also spawns
///   on a [`LocalExecutor`]. Tasks are numbered from 0 in spawn order, the
///   order in which they join the set (when a waiting `spawn` gets its slot,
///   or a [`Permit`] is used), and a task without a name is called `task #i`,
///   in errors and in [`Stragglers`] reports alike.
/// - **The first failure wins.** The first task to *end* with `Err(e)`, to
///   panic (the panic is caught and becomes [`TaskError::Panicked`]), or to
///   be dropped before it finished ([`TaskError::Cancelled`]) triggers the
///   set's [`shutdown`](Self::shutdown) with [`Reason::Error`], whose message
///   is the error's `Display`. The error value itself is kept for `join`.
///   Later failures are logged at debug level and kept for
///   [`join_next`](Self::join_next).
/// - **Cancellation is cooperative.** Triggering the shutdown does not drop
///   any task: each one sees [`Shutdown::triggered`] (or wraps its work in
///   [`Shutdown::run_until_triggered`]) and returns, as in Go where
///   goroutines watch `ctx.Done()`. The set waits for all of them.
/// - **Joining.** [`join`](Self::join) closes the set at the call (later
///   spawns return [`TaskSetClosed`]), waits until every task has ended, then
///   returns the first failure, or every `T` in spawn order.
///   [`join_timeout`](Self::join_timeout) gives up after a deadline and names
///   the [`Stragglers`], blocking threads included. Both are cancel-safe:
///   drop one and join again later.
/// - **Completion order.** [`join_next`](Self::join_next) (and the set as a
///   `Stream`) hands out each task's name and outcome as it finishes,
///   every failure included, without closing the set; a later `join`
///   returns what it did not hand out.
/// - **Adding tasks from tasks.** A [`Spawner`] ([`spawner`](Self::spawner))
///   is a cloneable, `'static` handle that tasks keep to spawn more tasks
///   (recursive fan-out), while a `join` waits too, as long as a task of the
///   set still runs.
/// - **Forcing.** [`abort`](Self::abort) cuts every async task that has not
///   finished at its next poll (it ends as [`TaskError::Cancelled`]);
///   blocking ones run on. `join_timeout`, then `abort`, then `join` is
///   "grace, then force".
/// - **The set's shutdown ends with it.** When `join` (or `join_timeout`)
///   returns the outcome, it triggers the set's shutdown, with
///   [`Reason::Finished`] unless a failure triggered it first: as Go's
///   `WithContext` cancels its context the first time `Wait` returns,
///   anything still watching the set's shutdown (a helper given a
///   [`child`](Shutdown::child) of it, say) stops with the set.
/// - **Bounded concurrency.** With [`with_limit(n)`](Self::with_limit), at
///   most `n` tasks (async and blocking alike) run at once.
///   [`spawn`](Self::spawn) and [`reserve`](Self::reserve) wait for a free
///   slot (back-pressure, errgroup's `Go` after `SetLimit`);
///   [`try_spawn`](Self::try_spawn) and [`try_reserve`](Self::try_reserve)
///   return [`TrySpawnError::Full`] instead (errgroup's `TryGo`).
/// - **Parents.** [`with_parent`](Self::with_parent) makes the set's
///   shutdown a [`child`](Shutdown::child) of another: a service-wide
///   shutdown reaches the set's tasks, while a failure inside the set stops
///   only the set.
/// - **One lifecycle.** Once joined, a set stays closed, like a [`Group`].
///   Dropping a set that was not joined triggers its shutdown, so its tasks
///   stop, but nothing waits for them: join a set before you drop it.
///
/// A set keeps one entry per task until it is joined (the result until
/// [`join_next`](Self::join_next) hands it out, then a few words), so a set
/// that lives as long as a server and spawns a task per request grows by
/// that much per request; use a set per batch there.
///
/// The error type needs only [`Display`](fmt::Display) (to write the
/// shutdown's reason), so `std::io::Error`, `String`, `&str` and
/// `anyhow::Error` all work.
///
/// User code the set runs on its own may panic without breaking it: if the
/// error's `Display` panics, the shutdown's reason says so
/// (`"loader failed (its error's Display panicked)"`) and `join` still
/// returns the error, named by its task; a panicking `Drop` of a result, an
/// error or a panic payload, or a panicking logger, is caught and ignored
/// (the panic hook has reported it).
///
/// # Examples
///
/// The first error stops the siblings and is what `join` returns:
///
/// ```
/// use smol::Executor;
/// use smol_graceful::{Reason, TaskError, TaskSet};
///
/// let ex = Executor::new();
/// let mut set = TaskSet::new();
/// smol::block_on(ex.run(async {
///     for id in 0..3 {
///         let shutdown = set.shutdown().clone();
///         set.spawn_named(format!("worker {id}"), &ex, async move {
///             shutdown.triggered().await; // work until told to stop
///             Ok(id)
///         })
///         .await
///         .unwrap();
///     }
///     set.spawn_named("loader", &ex, async { Err("bad config") }).await.unwrap();
///
///     let error = set.join().await.unwrap_err();
///     assert_eq!(error.to_string(), "loader failed: bad config");
///     assert!(matches!(error, TaskError::Failed { error: "bad config", .. }));
///     assert!(matches!(set.shutdown().reason(), Some(Reason::Error(_))));
/// }));
/// ```
///
/// When every task succeeds, `join` returns the results in spawn order,
/// whatever order the tasks finished in:
///
/// ```
/// use std::time::Duration;
/// use smol::{Executor, Timer};
/// use smol_graceful::TaskSet;
///
/// let ex = Executor::new();
/// let mut set = TaskSet::new().with_limit(2);
/// smol::block_on(ex.run(async {
///     for ms in [30, 20, 10] {
///         set.spawn(&ex, async move {
///             Timer::after(Duration::from_millis(ms)).await;
///             Ok::<_, std::io::Error>(ms)
///         })
///         .await
///         .unwrap();
///     }
///     assert_eq!(set.join().await.unwrap(), [30, 20, 10]);
/// }));
/// ```
///
/// # Compared with its peers
///
/// - Go's `errgroup`: [`new`](Self::new) / [`with_parent`](Self::with_parent)
///   are `WithContext` (the set's [`Shutdown`] is the context, triggered by
///   the first failure or when `join` returns, as the context is cancelled
///   by the first error or when `Wait` returns),
///   [`spawn`](Self::spawn) is `Go`, [`with_limit`](Self::with_limit) and
///   [`try_spawn`](Self::try_spawn) are `SetLimit` and `TryGo`. `join` also
///   returns every result in spawn order, a panic becomes an error that names
///   its task instead of crashing the process, and `join_timeout` names the
///   tasks that did not finish.
///   A [`Spawner`] is `g.Go` from inside a goroutine.
/// - Python's `asyncio.TaskGroup`: the same "first failure stops the rest",
///   but tasks are first *asked* to stop (cooperatively, through the
///   shutdown); [`abort`](Self::abort) cancels them at their next poll as a
///   `TaskGroup` does at their next `await`. `join` returns the first error
///   rather than an exception group ([`join_next`](Self::join_next) hands
///   out every one).
/// - tokio's `JoinSet`: [`join_next`](Self::join_next) and
///   [`abort`](Self::abort) are its `join_next` and `abort_all`. A `JoinSet`
///   aborts its tasks on drop and needs tokio; a `TaskSet` asks them to stop
///   on drop, runs on smol, async-executor or (with [`track`](Self::track))
///   any runtime, counts blocking work, and has a concurrency limit.
pub struct TaskSet<T, E> {
    /// The set's group and table; cloned by [`spawner`](Self::spawner).
    spawner: Spawner<T, E>,
    /// True once a [`Join`] has returned the outcomes: they are gone.
    joined: bool,
}

impl<T, E> TaskSet<T, E> {
    /// Creates an empty set with its own [`Shutdown`] and no limit.
    ///
    /// # Examples
    ///
    /// ```
    /// use smol_graceful::TaskSet;
    ///
    /// let set = TaskSet::<u32, std::io::Error>::new();
    /// assert!(set.is_empty());
    /// assert!(!set.shutdown().is_triggered());
    /// ```
    pub fn new() -> TaskSet<T, E> {
        TaskSet::with_shutdown(Shutdown::new())
    }

    /// Creates an empty set whose shutdown is a [`child`](Shutdown::child) of
    /// `parent`: triggering `parent` tells the set's tasks to stop, while a
    /// failure in the set triggers only the set's own shutdown.
    ///
    /// # Examples
    ///
    /// ```
    /// use smol_graceful::{Shutdown, TaskSet};
    ///
    /// let service = Shutdown::new();
    /// let set = TaskSet::<(), String>::with_parent(&service);
    /// service.trigger();
    /// assert!(set.shutdown().is_triggered());
    /// ```
    pub fn with_parent(parent: &Shutdown) -> TaskSet<T, E> {
        TaskSet::with_shutdown(parent.child())
    }

    fn with_shutdown(shutdown: Shutdown) -> TaskSet<T, E> {
        TaskSet {
            spawner: Spawner {
                group: Group::new(),
                shared: Arc::new(Shared::new(shutdown)),
                strict: true,
            },
            joined: false,
        }
    }

    /// Limits the set to `limit` tasks at once, async and blocking alike.
    ///
    /// At the limit, [`spawn`](Self::spawn), [`reserve`](Self::reserve) and
    /// the other waiting methods wait for a task to end;
    /// [`try_spawn`](Self::try_spawn) and [`try_reserve`](Self::try_reserve)
    /// fail with [`TrySpawnError::Full`]. An unused [`Permit`] holds a slot
    /// too.
    ///
    /// # Panics
    ///
    /// If `limit` is 0 (no task could ever start), or if a task has already
    /// been spawned (it would not be counted).
    ///
    /// # Examples
    ///
    /// ```
    /// use smol_graceful::TaskSet;
    ///
    /// let set = TaskSet::<(), String>::new().with_limit(8);
    /// assert_eq!(set.limit(), Some(8));
    /// ```
    #[track_caller]
    pub fn with_limit(mut self, limit: usize) -> TaskSet<T, E> {
        let Some(max) = NonZeroUsize::new(limit) else {
            panic!(
                "TaskSet::with_limit(0): no task could ever start; the limit must be at least 1"
            );
        };
        assert!(
            self.spawner.shared.never_spawned(),
            "TaskSet::with_limit must be called before the first spawn"
        );
        let Some(shared) = Arc::get_mut(&mut self.spawner.shared) else {
            panic!("TaskSet::with_limit must be called before TaskSet::spawner");
        };
        shared.limit = Some(Limit::new(max));
        self
    }

    /// The limit set by [`with_limit`](Self::with_limit), if any.
    ///
    /// # Examples
    ///
    /// ```
    /// use smol_graceful::TaskSet;
    ///
    /// assert_eq!(TaskSet::<(), String>::new().limit(), None);
    /// ```
    pub fn limit(&self) -> Option<usize> {
        self.spawner.shared.limit.as_ref().map(Limit::max)
    }

    /// The set's shutdown: give a clone to each task so it can stop when a
    /// sibling fails, or trigger it to stop them all.
    ///
    /// # Examples
    ///
    /// ```
    /// use smol::Executor;
    /// use smol_graceful::TaskSet;
    ///
    /// let ex = Executor::new();
    /// let mut set = TaskSet::new();
    /// smol::block_on(ex.run(async {
    ///     let shutdown = set.shutdown().clone();
    ///     set.spawn(&ex, async move {
    ///         let mut ticks = 0;
    ///         while shutdown.run_until_triggered(smol::future::yield_now()).await.is_some() {
    ///             ticks += 1;
    ///         }
    ///         Ok::<_, String>(ticks)
    ///     })
    ///     .await
    ///     .unwrap();
    ///     set.shutdown().trigger();
    ///     assert_eq!(set.join().await.unwrap().len(), 1);
    /// }));
    /// ```
    pub fn shutdown(&self) -> &Shutdown {
        &self.spawner.shared.shutdown
    }

    /// The number of tasks that have been spawned and have not ended yet
    /// (a [`Spawner`]'s reserved [`Permit`] that is not used yet counts too).
    ///
    /// # Examples
    ///
    /// ```
    /// use smol_graceful::TaskSet;
    ///
    /// # smol::block_on(async {
    /// let set = TaskSet::<(), String>::new();
    /// let task = set.track(async { Ok(()) }).await.unwrap();
    /// assert_eq!(set.len(), 1);
    /// task.await;
    /// assert_eq!(set.len(), 0);
    /// # });
    /// ```
    pub fn len(&self) -> usize {
        self.spawner.shared.len()
    }

    /// True if no spawned task is still running.
    ///
    /// # Examples
    ///
    /// ```
    /// assert!(smol_graceful::TaskSet::<(), String>::new().is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// A snapshot of the running tasks, each by its name (or `task #i`),
    /// blocking ones included.
    ///
    /// # Examples
    ///
    /// ```
    /// use smol_graceful::TaskSet;
    ///
    /// # smol::block_on(async {
    /// let set = TaskSet::<(), String>::new();
    /// let _a = set.track(async { Ok(()) }).await.unwrap();
    /// let _b = set.reserve().await.unwrap().named("b").track(async { Ok(()) });
    /// assert_eq!(set.stragglers().names(), ["task #0", "b"]);
    /// # });
    /// ```
    pub fn stragglers(&self) -> Stragglers {
        self.spawner.shared.stragglers()
    }

    /// Waits for a free slot and returns a [`Permit`] to spawn one task with:
    /// the building block of every waiting spawn method.
    ///
    /// Without a limit the permit is ready at once. Reserving first lets you
    /// wait for room *before* doing the work that makes a task, such as
    /// accepting a connection, so a full set pushes back on its source.
    ///
    /// # Errors
    ///
    /// [`TaskSetClosed`] once [`join`](Self::join) or
    /// [`join_timeout`](Self::join_timeout) has been called, even if that
    /// join future was dropped before it finished: the set closes at the call.
    ///
    /// # Cancel safety
    ///
    /// Cancel-safe: dropping it before it resolves takes no slot.
    ///
    /// # Examples
    ///
    /// ```
    /// use smol::{channel, Executor};
    /// use smol_graceful::TaskSet;
    ///
    /// let ex = Executor::new();
    /// let mut set = TaskSet::new().with_limit(2);
    /// let (conns, incoming) = channel::unbounded();
    /// for id in 0..5 {
    ///     conns.try_send(id).unwrap();
    /// }
    /// drop(conns);
    /// smol::block_on(ex.run(async {
    ///     // Accept a connection only when there is room to serve it.
    ///     while let Ok(permit) = set.reserve().await {
    ///         let Ok(id) = incoming.recv().await else { break };
    ///         permit.named(format!("connection {id}")).spawn(&ex, async move {
    ///             Ok::<_, std::io::Error>(id * 2)
    ///         });
    ///     }
    ///     assert_eq!(set.join().await.unwrap(), [0, 2, 4, 6, 8]);
    /// }));
    /// ```
    pub fn reserve(&self) -> Reserve<'_, T, E> {
        self.spawner.reserve()
    }

    /// Returns a [`Permit`] at once if a slot is free.
    ///
    /// # Errors
    ///
    /// [`TrySpawnError::Full`] if the set is at its limit,
    /// [`TrySpawnError::Closed`] once [`join`](Self::join) or
    /// [`join_timeout`](Self::join_timeout) has been called (even if that
    /// join future was dropped).
    ///
    /// # Examples
    ///
    /// ```
    /// use smol_graceful::{TaskSet, TrySpawnError};
    ///
    /// let set = TaskSet::<(), String>::new().with_limit(1);
    /// let permit = set.try_reserve().unwrap();
    /// assert_eq!(set.try_reserve().unwrap_err(), TrySpawnError::Full);
    /// drop(permit);
    /// assert!(set.try_reserve().is_ok());
    /// ```
    pub fn try_reserve(&self) -> Result<Permit<'_, T, E>, TrySpawnError> {
        self.spawner.try_reserve()
    }
}

impl<T, E> Default for TaskSet<T, E> {
    fn default() -> TaskSet<T, E> {
        TaskSet::new()
    }
}

impl<T, E> Drop for TaskSet<T, E> {
    /// Triggers the shutdown unless the set was joined: tasks nobody will
    /// join should stop.
    fn drop(&mut self) {
        if !self.joined {
            // The trigger takes effect before it logs; a panicking logger
            // must not turn a drop during unwinding into an abort.
            user_code(|| self.spawner.shared.shutdown.trigger());
        }
    }
}

impl<T, E> fmt::Debug for TaskSet<T, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TaskSet")
            .field("len", &self.len())
            .field("limit", &self.limit())
            .field("shutdown", &self.spawner.shared.shutdown)
            .field("joined", &self.joined)
            .finish_non_exhaustive()
    }
}
