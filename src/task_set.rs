//! [`TaskSet`]: Go's errgroup for smol. Fallible tasks that fail together,
//! with a concurrency limit, blocking work counted, and a report of what is
//! still running (feature `smol`).
//!
//! A set is one table (`task_set/table.rs`, the one protocol file): an entry
//! per task in spawn order, the slots of the limit, the tasks waiting for
//! one, and the outcomes in completion order. A [`Shutdown`] tells the
//! tasks to stop when one fails. The rooms behind this file:
//! - `task_set/table.rs`: the table and the slot protocol, with its
//!   invariants and lock order; `task_set/entries.rs`: its storage;
//! - `task_set/builder.rs`: [`TaskBuilder`], every way to start a task;
//! - `task_set/task.rs`: [`TrackedTask`], the future every task runs in;
//! - `task_set/spawner.rs`: [`Spawner`], for tasks that start tasks;
//! - `task_set/join.rs`: the futures that wait on a set ([`Join`],
//!   [`JoinTimeout`], [`JoinNext`], [`Ready`]) and the `Stream`;
//! - `task_set/abort.rs`: the abort flag and each task's watch on it;
//! - `task_set/error.rs`: [`TaskError`].

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use smol::Timer;
#[cfg(doc)]
use smol::{Executor, LocalExecutor};

use crate::group::Closed;
#[cfg(doc)]
use crate::shutdown::Reason;
use crate::shutdown::Shutdown;
use crate::stragglers::Stragglers;

mod abort;
mod builder;
mod entries;
mod error;
mod join;
mod spawner;
mod table;
mod task;

pub use self::builder::TaskBuilder;
pub use self::error::TaskError;
pub use self::join::{Join, JoinNext, JoinTimeout, Ready};
pub use self::spawner::Spawner;
pub use self::task::TrackedTask;

use self::table::Shared;

/// A set of fallible tasks that fail together: the first error stops the
/// siblings, and [`join`](Self::join) returns it, or every result in spawn
/// order.
///
/// This is Go's `errgroup.WithContext` (and Python's `asyncio.TaskGroup`)
/// for smol: a table of tasks and a [`Shutdown`] that tells them to stop.
///
/// # Semantics
///
/// - **Spawning.** Each task is a future that returns `Result<T, E>`.
///   [`spawn`](Self::spawn) runs it on smol's global executor, as
///   `smol::spawn` does; [`build_task`](Self::build_task) names it or runs
///   it elsewhere (an [`Executor`], a [`LocalExecutor`], smol's blocking
///   pool); [`track`](Self::track) hands it back as a [`TrackedTask`] for
///   any runtime. Tasks are numbered from 0 in spawn order, and a task
///   without a name is called `task #i`, in errors and reports alike.
/// - **The first failure wins.** The first task to *end* with `Err(e)`, to
///   panic (the panic is caught: [`TaskError::Panicked`] keeps its
///   payload), or to be cut before it finished ([`TaskError::Cancelled`])
///   triggers the set's [`shutdown`](Self::shutdown) with
///   [`Reason::Error`]. That reason carries the failure's *text*
///   (`"loader failed: bad config"`), not the value: the value is `E`,
///   which need not be `Clone` or an `Error`, and goes to `join`. To hand
///   the value itself to the listeners, trigger the shutdown from the task
///   with [`Reason::error(e.clone())`](Reason::error) before it returns.
///   Later failures are logged at debug level and kept for
///   [`join_next`](Self::join_next).
/// - **Cancellation is cooperative.** Triggering the shutdown drops no
///   task: each one watches [`Shutdown::triggered`] (or wraps its work in
///   [`Shutdown::run_until_triggered`]) and returns, as goroutines watch
///   `ctx.Done()`. [`abort`](Self::abort) is the forceful way.
/// - **One count.** [`len`](Self::len), [`is_empty`](Self::is_empty),
///   [`join_next`](Self::join_next), [`join`](Self::join),
///   [`ready`](Self::ready) and [`stragglers`](Self::stragglers) read the
///   same table, in which a task stops counting (and frees its slot) in the
///   same step that makes its outcome visible: once `join_next` has handed
///   out a task, its slot is free; once it says `None`, `len` is 0.
/// - **Joining.** [`join`](Self::join) waits until no task is left, then
///   returns the first failure, or every `T` in spawn order.
///   [`join_timeout`](Self::join_timeout) gives up after a deadline and
///   names the stragglers. While a join waits, tasks may add tasks (through
///   a [`Spawner`]); once a join has seen the set empty, the set is closed
///   and every later spawn returns [`Closed`].
/// - **Bounded concurrency.** With [`with_limit(n)`](Self::with_limit), at
///   most `n` tasks (async and blocking alike) run at once. No spawn ever
///   waits: a task that does not fit is listed at once and waits *inside*
///   the set for a slot (FIFO), counted, joined and abortable, so tasks that
///   spawn tasks never deadlock, however deep the recursion. A producer
///   outside the set gets back-pressure from [`ready`](Self::ready): wait
///   for room, then spawn (errgroup's `SetLimit` + `Go`).
/// - **The set's shutdown ends with it.** When `join` returns, it triggers
///   the set's shutdown with [`Reason::Finished`] unless a failure did
///   first, as errgroup's `Wait` cancels its context.
/// - **Parents.** [`with_parent`](Self::with_parent) makes the set's
///   shutdown a [`child`](Shutdown::child) of another: a service-wide
///   shutdown reaches the set's tasks, while a failure inside the set stops
///   only the set.
/// - **Dropping.** Dropping a set closes it (its [`Spawner`]s refuse),
///   triggers its shutdown and [aborts](Self::abort) its tasks, as tokio's
///   `JoinSet` aborts on drop; blocking work already running runs to its
///   end, unobserved. Join a set to learn how its tasks ended.
///
/// A set keeps one entry per task (16 bytes for a `T` of at most 8 bytes)
/// until [`join`](Self::join) takes them, or until [`join_next`](Self::join_next)
/// has handed out every task at a moment none is running: then it starts
/// afresh (numbering goes on). A server that spawns a task per request and
/// collects them with `join_next` keeps only what is unfinished or not yet
/// handed out.
///
/// The error type needs only [`Display`](fmt::Display) (for the shutdown's
/// reason), so `std::io::Error`, `String`, `&str` and `anyhow::Error` all
/// work. User code the set runs may panic without breaking it: if the
/// error's `Display` panics, the reason says so (`"loader failed (its
/// error's Display panicked)"`) and `join` still returns the error; a
/// panicking `Drop` of a result, an error or a payload, or a panicking
/// logger, is caught and ignored (the panic hook has reported it).
///
/// # Examples
///
/// The first error stops the siblings and is what `join` returns:
///
/// ```
/// use smol_graceful::{Reason, TaskError, TaskSet};
///
/// # smol::block_on(async {
/// let mut set = TaskSet::new();
/// for id in 0..3 {
///     let shutdown = set.shutdown().clone();
///     set.build_task().name(format!("worker {id}")).spawn(async move {
///         shutdown.triggered().await; // work until told to stop
///         Ok(id)
///     })?;
/// }
/// set.build_task().name("loader").spawn(async { Err("bad config") })?;
///
/// let error = set.join().await.unwrap_err();
/// assert_eq!(error.to_string(), "loader failed: bad config");
/// assert!(matches!(error, TaskError::Failed { error: "bad config", .. }));
/// assert!(matches!(set.shutdown().reason(), Some(Reason::Error(_))));
/// # Ok::<(), smol_graceful::Closed>(())
/// # }).unwrap();
/// ```
///
/// When every task succeeds, `join` returns the results in spawn order,
/// whatever order the tasks finished in:
///
/// ```
/// use std::time::Duration;
/// use smol::Timer;
/// use smol_graceful::TaskSet;
///
/// # smol::block_on(async {
/// let mut set = TaskSet::new().with_limit(2);
/// for ms in [30, 20, 10] {
///     set.spawn(async move {
///         Timer::after(Duration::from_millis(ms)).await;
///         Ok::<_, std::io::Error>(ms)
///     })?;
/// }
/// assert_eq!(set.join().await?, [30, 20, 10]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # }).unwrap();
/// ```
///
/// # Compared with its peers
///
/// - Go's `errgroup`: [`new`](Self::new) / [`with_parent`](Self::with_parent)
///   are `WithContext`, [`spawn`](Self::spawn) is `Go`,
///   [`with_limit`](Self::with_limit) is `SetLimit` (but a spawn past the
///   limit queues instead of blocking the caller; [`ready`](Self::ready)
///   waits for room), [`join`](Self::join) is `Wait`. `join` also returns
///   every result in spawn order, a panic becomes an error that names its
///   task instead of crashing the process, and `join_timeout` names the
///   tasks that did not finish.
/// - tokio's `JoinSet`: [`spawn`](Self::spawn), `spawn_on`, `spawn_local`,
///   `spawn_blocking` and [`build_task`](Self::build_task)`.name(..)` are
///   its methods of the same names (the variants live on the [`TaskBuilder`]);
///   [`join_next`](Self::join_next) and [`abort`](Self::abort) are its
///   `join_next` and `abort_all`; [`TaskError`] speaks `JoinError`'s
///   vocabulary. A `TaskSet` also stops siblings on the first failure,
///   runs on smol, async-executor or (with [`track`](Self::track)) any
///   runtime, counts blocking work, and has a concurrency limit.
pub struct TaskSet<T, E> {
    shared: Arc<Shared<T, E>>,
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
            shared: Arc::new(Shared::new(shutdown, usize::MAX)),
        }
    }

    /// Lets at most `limit` tasks run at once, async and blocking alike; the
    /// others wait inside the set for a slot, in spawn order.
    ///
    /// # Panics
    ///
    /// If `limit` is 0 (no task could ever start), or if the set already
    /// has a task or a [`Spawner`].
    ///
    /// # Examples
    ///
    /// ```
    /// use smol_graceful::TaskSet;
    ///
    /// # smol::block_on(async {
    /// let mut set = TaskSet::<(), String>::new().with_limit(1);
    /// set.spawn(std::future::pending())?;
    /// set.spawn(async { Ok(()) })?; // waits inside the set
    /// assert_eq!(set.len(), 2);
    /// set.abort();
    /// assert!(set.join().await.unwrap_err().is_cancelled());
    /// # Ok::<(), smol_graceful::Closed>(())
    /// # }).unwrap();
    /// ```
    #[track_caller]
    pub fn with_limit(mut self, limit: usize) -> TaskSet<T, E> {
        assert!(
            limit > 0,
            "TaskSet::with_limit(0): no task could ever start; the limit must be at least 1"
        );
        let fresh = Arc::get_mut(&mut self.shared).is_some_and(|shared| shared.set_limit(limit));
        assert!(
            fresh,
            "TaskSet::with_limit must be called before the first spawn and before TaskSet::spawner"
        );
        self
    }

    /// The set's shutdown: give a clone to each task so it can stop when a
    /// sibling fails, or trigger it to stop them all.
    ///
    /// # Examples
    ///
    /// ```
    /// use smol_graceful::TaskSet;
    ///
    /// # smol::block_on(async {
    /// let mut set = TaskSet::new();
    /// let shutdown = set.shutdown().clone();
    /// set.spawn(async move {
    ///     let mut ticks = 0;
    ///     while shutdown.run_until_triggered(smol::future::yield_now()).await.is_some() {
    ///         ticks += 1;
    ///     }
    ///     Ok::<_, String>(ticks)
    /// })
    /// .unwrap();
    /// set.shutdown().trigger();
    /// assert_eq!(set.join().await.unwrap().len(), 1);
    /// # });
    /// ```
    pub fn shutdown(&self) -> &Shutdown {
        &self.shared.shutdown
    }

    /// The number of tasks that have not ended: running, or waiting for a
    /// slot of the limit.
    ///
    /// # Examples
    ///
    /// ```
    /// use smol_graceful::TaskSet;
    ///
    /// # smol::block_on(async {
    /// let set = TaskSet::<(), String>::new();
    /// let task = set.track(async { Ok(()) }).unwrap();
    /// assert_eq!(set.len(), 1);
    /// task.await;
    /// assert_eq!(set.len(), 0);
    /// # });
    /// ```
    pub fn len(&self) -> usize {
        self.shared.len()
    }

    /// True if no task is left: running or waiting for a slot.
    ///
    /// # Examples
    ///
    /// ```
    /// assert!(smol_graceful::TaskSet::<(), String>::new().is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// A snapshot of the tasks that have not ended, each by its name (or
    /// `task #i`), age and call site, blocking ones and queued ones included.
    ///
    /// # Examples
    ///
    /// ```
    /// use smol_graceful::TaskSet;
    ///
    /// let set = TaskSet::<(), String>::new();
    /// let _a = set.track(async { Ok(()) }).unwrap();
    /// let _b = set.build_task().name("b").track(async { Ok(()) }).unwrap();
    /// assert_eq!(set.stragglers().names(), ["task #0", "b"]);
    /// ```
    pub fn stragglers(&self) -> Stragglers {
        self.shared.stragglers()
    }

    /// Starts `future` on smol's global executor, as `smol::spawn` does. It
    /// never waits: past the limit, the task waits inside the set.
    ///
    /// Shorthand for [`build_task`](Self::build_task)`().spawn(future)`.
    ///
    /// # Errors
    ///
    /// [`Closed`] once the set is closed (joined and drained, or aborted).
    ///
    /// # Examples
    ///
    /// ```
    /// use smol_graceful::TaskSet;
    ///
    /// # smol::block_on(async {
    /// let mut set = TaskSet::new();
    /// set.spawn(async { Ok::<_, std::io::Error>(1) })?;
    /// assert_eq!(set.join().await?, [1]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # }).unwrap();
    /// ```
    #[track_caller]
    pub fn spawn<F>(&self, future: F) -> Result<(), Closed>
    where
        F: Future<Output = Result<T, E>> + Send + 'static,
        T: Send + 'static,
        E: fmt::Display + Send + 'static,
    {
        self.build_task().spawn(future)
    }

    /// The task as a future for any runtime: see [`TrackedTask`]. Shorthand
    /// for [`build_task`](Self::build_task)`().track(future)`.
    ///
    /// # Errors
    ///
    /// [`Closed`] once the set is closed.
    ///
    /// # Examples
    ///
    /// ```
    /// use smol_graceful::TaskSet;
    ///
    /// let mut set = TaskSet::new();
    /// let task = set.track(async { Ok::<_, String>(7) }).unwrap();
    /// std::thread::spawn(move || smol::block_on(task)).join().unwrap();
    /// assert_eq!(smol::block_on(set.join()).unwrap(), [7]);
    /// ```
    #[track_caller]
    pub fn track<F>(&self, future: F) -> Result<TrackedTask<F, T, E>, Closed>
    where
        F: Future<Output = Result<T, E>>,
    {
        self.build_task().track(future)
    }

    /// A [`TaskBuilder`] to name the next task or start it elsewhere than on
    /// smol's global executor.
    ///
    /// # Examples
    ///
    /// ```
    /// use smol::{Executor, LocalExecutor};
    /// use smol_graceful::TaskSet;
    ///
    /// let ex = Executor::new();
    /// let local = LocalExecutor::new();
    /// let mut set = TaskSet::<&str, String>::new();
    /// set.build_task().name("on ex").spawn_on(&ex, async { Ok("a") }).unwrap();
    /// let not_send = std::rc::Rc::new("b");
    /// set.build_task().spawn_local(&local, async move { Ok(*not_send) }).unwrap();
    /// let joined = smol::block_on(ex.run(local.run(set.join())));
    /// assert_eq!(joined.unwrap(), ["a", "b"]);
    /// ```
    pub fn build_task(&self) -> TaskBuilder<'_, T, E> {
        TaskBuilder::new(&self.shared)
    }

    /// A cloneable, `'static` handle for tasks to add tasks: see [`Spawner`].
    ///
    /// # Examples
    ///
    /// ```
    /// use smol_graceful::TaskSet;
    ///
    /// # smol::block_on(async {
    /// let mut set = TaskSet::<u32, String>::new();
    /// let spawner = set.spawner();
    /// set.spawn(async move {
    ///     spawner.spawn(async { Ok(2) }).map_err(|e| e.to_string())?;
    ///     Ok(1)
    /// })
    /// .unwrap();
    /// assert_eq!(set.join().await.unwrap(), [1, 2]);
    /// # });
    /// ```
    pub fn spawner(&self) -> Spawner<T, E> {
        Spawner::new(Arc::clone(&self.shared))
    }

    /// Waits until a task spawned now would run at once: back-pressure for
    /// a producer outside the set (accept a connection only when there is
    /// room to serve it). Without a limit it is ready at once.
    ///
    /// # Errors
    ///
    /// [`Closed`] once the set is closed.
    ///
    /// # Cancel safety
    ///
    /// Cancel-safe: it reserves nothing.
    ///
    /// # Examples
    ///
    /// ```
    /// use smol_graceful::TaskSet;
    ///
    /// # smol::block_on(async {
    /// let mut set = TaskSet::new().with_limit(2);
    /// for id in 0..5 {
    ///     set.ready().await?; // at most 2 tasks, none queued
    ///     assert!(set.len() < 2);
    ///     set.spawn(async move { Ok::<_, std::io::Error>(id * 2) })?;
    /// }
    /// assert_eq!(set.join().await?, [0, 2, 4, 6, 8]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # }).unwrap();
    /// ```
    pub fn ready(&self) -> Ready<'_, T, E> {
        Ready {
            set: &self.shared,
            listener: None,
        }
    }

    /// Waits until no task is left, then returns the first failure or every
    /// result in spawn order, and closes the set.
    ///
    /// "First" means first to end: see the [type docs](Self). Tasks are not
    /// told to stop: if nothing failed, `join` waits for them to finish on
    /// their own; trigger [`shutdown`](Self::shutdown) first to stop them.
    /// While it waits, a task still running may add tasks through a
    /// [`Spawner`], and `join` waits for them too. When it returns, it
    /// triggers the set's shutdown with [`Reason::Finished`] (a failure that
    /// triggered it first keeps its [`Reason::Error`]). A task that
    /// [`join_next`](Self::join_next) already handed out is not in `join`'s
    /// answer. A second `join` returns `Ok` with no values.
    ///
    /// # Errors
    ///
    /// The first [`TaskError`] not yet handed out by `join_next`.
    ///
    /// # Cancel safety
    ///
    /// Cancel-safe: dropping the future loses no outcome, and a later `join`
    /// picks up where it left off.
    ///
    /// # Examples
    ///
    /// ```
    /// use smol_graceful::TaskSet;
    ///
    /// # smol::block_on(async {
    /// let mut set = TaskSet::new();
    /// set.spawn(async { Ok::<_, String>("a") }).unwrap();
    /// set.build_task().spawn_blocking(|| Ok("b")).unwrap();
    /// assert_eq!(set.join().await.unwrap(), ["a", "b"]);
    /// assert!(set.spawn(async { Ok("c") }).is_err()); // closed
    /// # });
    /// ```
    pub fn join(&mut self) -> Join<'_, T, E> {
        Join { set: &self.shared }
    }

    /// [`join`](Self::join) with a deadline: gives up after `timeout` and
    /// names the tasks still counted. The clock starts at the call.
    ///
    /// After a timeout the set keeps every outcome and its tasks go on:
    /// trigger [`shutdown`](Self::shutdown) or [`abort`](Self::abort) and
    /// join again ("grace, then force"), or drop the set.
    ///
    /// # Errors
    ///
    /// `Err(stragglers)` if the time ran out with tasks left: how many, and
    /// their names, ages and call sites. Otherwise `Ok` of what
    /// [`join`](Self::join) returns. Finished work wins a tie: a set whose
    /// last task has ended answers `Ok`, even with a zero `timeout`.
    ///
    /// # Cancel safety
    ///
    /// Cancel-safe, like [`join`](Self::join).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use smol_graceful::TaskSet;
    ///
    /// # smol::block_on(async {
    /// let mut set = TaskSet::<(), String>::new();
    /// set.build_task().name("stuck").spawn(std::future::pending()).unwrap();
    /// let stragglers = set.join_timeout(Duration::from_millis(10)).await.unwrap_err();
    /// assert_eq!(stragglers.names(), ["stuck"]);
    /// set.abort();
    /// assert!(set.join().await.unwrap_err().is_cancelled());
    /// # });
    /// ```
    pub fn join_timeout(&mut self, timeout: Duration) -> JoinTimeout<'_, T, E> {
        JoinTimeout {
            timer: Timer::after(timeout),
            join: self.join(),
        }
    }

    /// The next task to finish, with its name and outcome, in completion
    /// order; `None` once no task is left. Failures are handed out too.
    /// It does not close the set: spawn more and call it again (the set as
    /// a `Stream` does the same).
    ///
    /// # Cancel safety
    ///
    /// Cancel-safe: an outcome is taken only by the poll that returns it.
    ///
    /// # Examples
    ///
    /// ```
    /// use smol_graceful::TaskSet;
    ///
    /// # smol::block_on(async {
    /// let mut set = TaskSet::<u32, String>::new();
    /// set.build_task().name("one").spawn(async { Ok(1) }).unwrap();
    /// let (name, outcome) = set.join_next().await.unwrap();
    /// assert_eq!((&*name, outcome.unwrap()), ("one", 1));
    /// assert!(set.join_next().await.is_none());
    /// assert!(set.is_empty());
    /// # });
    /// ```
    pub fn join_next(&mut self) -> JoinNext<'_, T, E> {
        JoinNext { set: &self.shared }
    }

    /// Cuts every async task at its next poll (they end as
    /// [`TaskError::Cancelled`]), queued ones included, triggers the
    /// shutdown and closes the set. Blocking work already running runs on
    /// and is waited for. Then [`join`](Self::join) to collect the outcomes.
    ///
    /// # Examples
    ///
    /// ```
    /// use smol_graceful::TaskSet;
    ///
    /// # smol::block_on(async {
    /// let mut set = TaskSet::<(), String>::new();
    /// set.spawn(std::future::pending()).unwrap();
    /// set.abort();
    /// assert!(set.join().await.unwrap_err().is_cancelled());
    /// # });
    /// ```
    pub fn abort(&self) {
        self.shared.abort_tasks();
    }
}

impl<T, E> Default for TaskSet<T, E> {
    fn default() -> TaskSet<T, E> {
        TaskSet::new()
    }
}

impl<T, E> Drop for TaskSet<T, E> {
    /// Closes the set, triggers its shutdown and aborts its tasks.
    fn drop(&mut self) {
        self.abort();
    }
}

impl<T, E> fmt::Debug for TaskSet<T, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TaskSet")
            .field("len", &self.len())
            .field("shutdown", &self.shared.shutdown)
            .finish_non_exhaustive()
    }
}
