//! [`TaskSet`]: errgroup-style sets of fallible tasks built on [`Group`] and
//! [`Shutdown`], with bounded concurrency ([`Permit`]) and tracked blocking
//! work (feature `smol`).
//!
//! # How it is built
//!
//! A set is a [`Group`] (who is still running), a [`Shutdown`] (tells the
//! siblings to stop), an optional [`Semaphore`] (the limit) and one
//! mutex-protected table of outcomes indexed by spawn order. Each running
//! task owns a `Slot`: its index, an anonymous guard of the group (taking
//! one is a `Weak::upgrade`, a compare-and-swap loop, plus a load; no lock
//! and no allocation) and, in a limited set, a semaphore permit. While the task runs,
//! its table entry holds its name, birth time and spawn site, which is what
//! [`TaskSet::stragglers`] reports; names are only formatted (`task #i`)
//! when a report or an error needs them. When the task ends, the slot records
//! the outcome *first*, then drops the guard, then releases the permit: once
//! the group is drained every outcome is in the table, and the group never
//! counts more tasks than the limit allows. A slot dropped before its task
//! ended (the future was dropped, its executor went away) records a
//! cancellation in the same way.
//!
//! Every way to start a task is a plain `#[track_caller]` fn that reads
//! `Location::caller()` at the call and hands it to the future it returns
//! ([`Spawn`], [`Track`], [`SpawnBlocking`]): an `async fn` would record a
//! line of this file instead.
//!
//! # Invariants
//!
//! 1. `State::failed` is set and `State::first_error` stored by the same
//!    `Shared::fail` call, before the failing task's guard drops, with
//!    nothing in between that can panic: user code there (the error's
//!    `Display`) runs under `user_code`. So once the group is drained, a
//!    table entry that is not `Succeeded` implies a stored first error.
//! 2. User code the set runs on its own (the `Display` and `Drop` of the
//!    error type, the `Drop` of results and panic payloads, the logger) runs
//!    under `user_code`, outside the table's lock, so a panic there cannot
//!    stop the set from recording an outcome, triggering its shutdown or
//!    answering `join`.
//!
//! There are no atomics in this file: the table is behind a mutex, and the
//! group's own orderings (see `group.rs`) make every recorded outcome
//! visible to the `join` that sees the group drained. This module needs the
//! `smol` feature, which loom builds leave off, so it never runs under loom.

use std::any::Any;
use std::borrow::Cow;
use std::fmt;
use std::future::Future;
use std::num::NonZeroUsize;
use std::panic::{AssertUnwindSafe, Location};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use pin_project_lite::pin_project;
use smol::future::{CatchUnwind, FutureExt as _};
use smol::lock::futures::AcquireArc;
use smol::lock::{Semaphore, SemaphoreGuardArc};
use smol::{Executor, LocalExecutor, Timer};

use crate::group::{Closed, Group, Guard, Wait};
use crate::shutdown::{Reason, Shutdown};
use crate::stragglers::{Straggler, Stragglers};
use crate::sync::{lock, Arc, Mutex};

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
///   Later failures are logged at debug level and dropped.
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
/// - **The set's shutdown ends with it.** When `join` (or `join_timeout`)
///   returns the outcome, it triggers the set's shutdown, with
///   [`Reason::Requested`] unless a failure triggered it first: as Go's
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
/// A set keeps one `Option<T>` per task until it is joined, so a set that
/// lives as long as a server and spawns a task per request grows by that much
/// per request; use `T = ()` (one byte) there, or a set per batch.
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
/// - Python's `asyncio.TaskGroup`: the same "first failure stops the rest",
///   but tasks are *asked* to stop (cooperatively, through the shutdown)
///   rather than cancelled at their next `await`, and `join` returns the first
///   error rather than an exception group.
/// - tokio's `JoinSet`: yields results in completion order and aborts its
///   tasks on drop, and needs tokio. A `TaskSet` keeps spawn order, runs on
///   smol, async-executor or (with [`track`](Self::track)) any runtime,
///   counts blocking work, and has a concurrency limit.
pub struct TaskSet<T, E> {
    group: Group,
    shared: Arc<Shared<T, E>>,
    limit: Option<Limit>,
    /// True once a [`Join`] has returned the outcomes: they are gone.
    joined: bool,
}

/// The concurrency limit of a set.
struct Limit {
    max: NonZeroUsize,
    /// `max` permits; every task, and every unused [`Permit`], holds one.
    semaphore: Arc<Semaphore>,
}

/// What a set shares with its running tasks.
struct Shared<T, E> {
    /// The set's shutdown, triggered by the first failure.
    shutdown: Shutdown,
    state: Mutex<State<T, E>>,
}

struct State<T, E> {
    /// One entry per spawned task, indexed by spawn order. Taken by `join`.
    outcomes: Vec<Outcome<T>>,
    /// Set by the first failure. Later failures see it and are dropped.
    failed: bool,
    /// The first failure, stored just after `failed` is set (its message is
    /// written in between, outside the lock, because that runs user code)
    /// and before the failing task's guard drops. Taken by `join`.
    first_error: Option<TaskError<E>>,
}

impl<T, E> Drop for State<T, E> {
    /// Drops what a set that was never joined still holds, one value at a
    /// time, so that a panicking `Drop` of one leaves the others dropped and
    /// the panic inside (invariant 2).
    fn drop(&mut self) {
        for outcome in self.outcomes.drain(..) {
            drop_quietly(outcome);
        }
        drop_quietly(self.first_error.take());
    }
}

/// One task's entry in a set's table.
enum Outcome<T> {
    /// Still running: what a straggler report says about it.
    Running {
        /// The name given to its [`Permit`], if any.
        name: Option<Cow<'static, str>>,
        born: Instant,
        location: &'static Location<'static>,
    },
    /// Returned `Ok(value)`.
    Succeeded(T),
    /// Failed, panicked or was cancelled (the first failure of the set is
    /// kept in `State::first_error`).
    Ended,
}

/// The name of task `index`: the one it was given, or `task #index`.
fn task_name(name: Option<Cow<'static, str>>, index: usize) -> Cow<'static, str> {
    name.unwrap_or_else(|| Cow::Owned(format!("task #{index}")))
}

impl<T, E> Shared<T, E> {
    /// The running tasks, each by its name, oldest first, and the count of
    /// `group` (which the tasks' guards count in).
    fn stragglers(&self, group: &Group) -> Stragglers {
        let state = lock(&self.state);
        let now = Instant::now();
        // Read under the table's lock: a task counts before it is listed
        // (`register`) and is unlisted before it stops counting (`settle`),
        // both under this lock, so `count >= named.len()`.
        let count = group.len();
        let named = state
            .outcomes
            .iter()
            .enumerate()
            .filter_map(|(index, outcome)| match outcome {
                Outcome::Running {
                    name,
                    born,
                    location,
                } => Some(Straggler::new(
                    task_name(name.clone(), index),
                    now.saturating_duration_since(*born),
                    location,
                )),
                _ => None,
            })
            .collect();
        Stragglers::new(count, named)
    }

    /// Records a failure; the first one triggers the shutdown.
    fn fail(&self, error: TaskError<E>, describe: fn(&TaskError<E>) -> String) {
        let first = !std::mem::replace(&mut lock(&self.state).failed, true);
        if first {
            // `describe` may run the user's `Display`: not under the lock,
            // and caught, so the error is stored whatever it does (invariant 1).
            let message = user_code(|| describe(&error)).unwrap_or_else(|| {
                format!(
                    "{} (its error's Display panicked)",
                    error.describe_without_error()
                )
            });
            lock(&self.state).first_error = Some(error);
            // The trigger takes effect before it logs: a panicking logger
            // cannot keep the siblings from hearing it.
            user_code(|| self.shutdown.trigger_with(Reason::error(message)));
        } else {
            user_code(|| {
                if log::log_enabled!(log::Level::Debug) {
                    log::debug!("{} (after the first failure; dropped)", describe(&error));
                }
            });
            drop_quietly(error);
        }
    }
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
            group: Group::new(),
            shared: Arc::new(Shared {
                shutdown,
                state: Mutex::new(State {
                    outcomes: Vec::new(),
                    failed: false,
                    first_error: None,
                }),
            }),
            limit: None,
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
            lock(&self.shared.state).outcomes.is_empty(),
            "TaskSet::with_limit must be called before the first spawn"
        );
        self.limit = Some(Limit {
            max,
            semaphore: Arc::new(Semaphore::new(limit)),
        });
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
        self.limit.as_ref().map(|limit| limit.max.get())
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
        &self.shared.shutdown
    }

    /// The number of tasks that have been spawned and have not ended yet.
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
        self.group.len()
    }

    /// True if no spawned task is still running.
    ///
    /// # Examples
    ///
    /// ```
    /// assert!(smol_graceful::TaskSet::<(), String>::new().is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.group.is_empty()
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
        self.shared.stragglers(&self.group)
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
        Reserve {
            set: self,
            acquire: self
                .limit
                .as_ref()
                .map(|limit| limit.semaphore.acquire_arc()),
        }
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
        if self.group.is_closed() {
            return Err(TrySpawnError::Closed);
        }
        let permit = match &self.limit {
            None => None,
            Some(limit) => Some(
                limit
                    .semaphore
                    .try_acquire_arc()
                    .ok_or(TrySpawnError::Full)?,
            ),
        };
        Ok(Permit {
            set: self,
            permit,
            name: None,
        })
    }

    /// Closes the set, waits until every task has ended, and returns the
    /// first failure or every result in spawn order.
    ///
    /// Closing comes first, at the call: a spawn after it returns
    /// [`TaskSetClosed`], even if this future is dropped unpolled.
    /// "First" means first to end: see the [type docs](Self). Tasks are not
    /// told to stop: if nothing failed, `join` waits for them to finish on
    /// their own; trigger [`shutdown`](Self::shutdown) first to stop them.
    ///
    /// When it returns, `join` triggers the set's [`shutdown`](Self::shutdown)
    /// with [`Reason::Requested`] (a failure that triggered it first keeps its
    /// [`Reason::Error`]), as errgroup's `Wait` cancels the context of
    /// `WithContext`: whatever still watches the set's shutdown stops too.
    ///
    /// # Errors
    ///
    /// The first [`TaskError`]: a task that returned `Err`, panicked or was
    /// dropped before it finished.
    ///
    /// # Panics
    ///
    /// If an earlier `join` on this set already returned: the outcomes were
    /// handed out then.
    ///
    /// # Cancel safety
    ///
    /// Cancel-safe: dropping the future loses no outcome, and a later `join`
    /// (or [`join_timeout`](Self::join_timeout)) picks up where it left off.
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
    ///     set.spawn(&ex, async { Ok::<_, String>("a") }).await.unwrap();
    ///     set.spawn_blocking("b", || Ok("b")).await.unwrap();
    ///     assert_eq!(set.join().await.unwrap(), ["a", "b"]);
    ///     assert!(set.spawn(&ex, async { Ok("c") }).await.is_err()); // closed
    /// }));
    /// ```
    pub fn join(&mut self) -> Join<'_, T, E> {
        assert!(
            !self.joined,
            "TaskSet::join called after a join already returned the outcomes"
        );
        Join {
            wait: self.group.wait(),
            shared: &self.shared,
            joined: &mut self.joined,
        }
    }

    /// [`join`](Self::join) with a deadline: gives up after `timeout` and
    /// names the tasks still running. The clock starts at the call.
    ///
    /// The set is closed at the call, as with `join` (later spawns return
    /// [`TaskSetClosed`], even if this future is dropped). After a timeout the
    /// set keeps every outcome; trigger [`shutdown`](Self::shutdown) and join
    /// again, or drop the set and leave the stragglers behind.
    ///
    /// # Errors
    ///
    /// `Err(stragglers)` if the time ran out with tasks still running: how
    /// many, and their names and ages. Otherwise `Ok` of what
    /// [`join`](Self::join) returns, and the shutdown is triggered as `join`
    /// does; after `Err`, it is not (trigger it yourself, or drop the set).
    ///
    /// Finished work wins a tie: if the last task ends just as the time runs
    /// out, so that every task has ended when the expired future looks, it
    /// returns `Ok` with the outcome, never `Err` with an empty report. A
    /// `timeout` of zero thus collects a set whose work is already done.
    ///
    /// # Panics
    ///
    /// If an earlier join on this set already returned.
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
    /// let stuck = set.reserve().await.unwrap().named("stuck").track(async {
    ///     std::future::pending::<()>().await;
    ///     Ok(())
    /// });
    /// let stragglers = set.join_timeout(Duration::from_millis(10)).await.unwrap_err();
    /// assert_eq!(stragglers.names(), ["stuck"]);
    ///
    /// drop(stuck); // a task dropped before it finished counts as cancelled
    /// let error = set.join().await.unwrap_err();
    /// assert_eq!(error.to_string(), "stuck was cancelled before it finished");
    /// # });
    /// ```
    pub fn join_timeout(&mut self, timeout: Duration) -> JoinTimeout<'_, T, E> {
        let timer = Timer::after(timeout);
        let group = &self.group;
        assert!(
            !self.joined,
            "TaskSet::join_timeout called after a join already returned the outcomes"
        );
        JoinTimeout {
            join: Join {
                wait: group.wait(),
                shared: &self.shared,
                joined: &mut self.joined,
            },
            timer,
            group,
        }
    }
}

impl<T, E: fmt::Display> TaskSet<T, E> {
    /// Waits for a free slot, then spawns `future` on `executor` as a task of
    /// this set.
    ///
    /// This is `set.reserve().await?.spawn(executor, future)`. The task is
    /// detached: its outcome goes to [`join`](Self::join). For smol's global
    /// executor, spawn [`track`](Self::track)'s future with `smol::spawn`.
    /// Straggler reports give the line this was called from.
    ///
    /// # Errors
    ///
    /// [`TaskSetClosed`] once [`join`](Self::join) or
    /// [`join_timeout`](Self::join_timeout) has been called, even if that
    /// join future was dropped before it finished; `future` is dropped unspawned.
    ///
    /// # Cancel safety
    ///
    /// Cancel-safe: dropping the returned future before it resolves spawns
    /// nothing and drops `future`.
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
    ///     set.spawn(&ex, async { "42".parse::<u32>() }).await.unwrap();
    ///     assert_eq!(set.join().await.unwrap(), [42]);
    /// }));
    /// ```
    #[track_caller]
    pub fn spawn<'s, 'a, F>(
        &'s self,
        executor: &'s Executor<'a>,
        future: F,
    ) -> Spawn<'s, 'a, F, T, E>
    where
        F: Future<Output = Result<T, E>> + Send + 'a,
        T: Send + 'a,
        E: Send + 'a,
    {
        Spawn {
            start: self.start(None),
            executor,
            future: Some(future),
        }
    }

    /// [`spawn`](Self::spawn), with a name for errors and straggler reports.
    ///
    /// # Errors
    ///
    /// [`TaskSetClosed`] once [`join`](Self::join) or
    /// [`join_timeout`](Self::join_timeout) has been called, even if that
    /// join future was dropped before it finished.
    ///
    /// # Cancel safety
    ///
    /// Cancel-safe, like [`spawn`](Self::spawn).
    ///
    /// # Examples
    ///
    /// ```
    /// use smol::Executor;
    /// use smol_graceful::TaskSet;
    ///
    /// let ex = Executor::new();
    /// let mut set = TaskSet::<(), _>::new();
    /// smol::block_on(ex.run(async {
    ///     set.spawn_named("migrate", &ex, async { Err("table locked") }).await.unwrap();
    ///     let error = set.join().await.unwrap_err();
    ///     assert_eq!(error.task(), "migrate");
    /// }));
    /// ```
    #[track_caller]
    pub fn spawn_named<'s, 'a, F>(
        &'s self,
        name: impl Into<Cow<'static, str>>,
        executor: &'s Executor<'a>,
        future: F,
    ) -> Spawn<'s, 'a, F, T, E>
    where
        F: Future<Output = Result<T, E>> + Send + 'a,
        T: Send + 'a,
        E: Send + 'a,
    {
        Spawn {
            start: self.start(Some(name.into())),
            executor,
            future: Some(future),
        }
    }

    /// Spawns `future` on `executor` if a slot is free, without waiting:
    /// errgroup's `TryGo`.
    ///
    /// To keep `future` when the set is full, call
    /// [`try_reserve`](Self::try_reserve) first and spawn with the permit.
    ///
    /// # Errors
    ///
    /// [`TrySpawnError::Full`] at the limit, [`TrySpawnError::Closed`] once
    /// [`join`](Self::join) or [`join_timeout`](Self::join_timeout) has been
    /// called (even if that join future was dropped); `future` is dropped
    /// unspawned.
    ///
    /// # Examples
    ///
    /// ```
    /// use smol::Executor;
    /// use smol_graceful::{TaskSet, TrySpawnError};
    ///
    /// let ex = Executor::new();
    /// let mut set = TaskSet::new().with_limit(1);
    /// set.try_spawn(&ex, async { Ok::<_, String>(1) }).unwrap();
    /// let full = set.try_spawn(&ex, async { Ok(2) });
    /// assert_eq!(full, Err(TrySpawnError::Full));
    /// smol::block_on(ex.run(async { assert_eq!(set.join().await.unwrap(), [1]) }));
    /// ```
    #[track_caller]
    pub fn try_spawn<'a, F>(&self, executor: &Executor<'a>, future: F) -> Result<(), TrySpawnError>
    where
        F: Future<Output = Result<T, E>> + Send + 'a,
        T: Send + 'a,
        E: Send + 'a,
    {
        self.try_reserve()?.spawn(executor, future);
        Ok(())
    }

    /// Waits for a free slot, then wraps `future` as a task of this set for
    /// any runtime: spawn the returned [`TrackedTask`] on tokio,
    /// async-executor, smol's global executor, or poll it yourself.
    ///
    /// The task counts from the moment the returned future resolves until
    /// the [`TrackedTask`] completes or is dropped; dropped unfinished, it
    /// ends as [`TaskError::Cancelled`].
    ///
    /// # Errors
    ///
    /// [`TaskSetClosed`] once [`join`](Self::join) or
    /// [`join_timeout`](Self::join_timeout) has been called, even if that
    /// join future was dropped before it finished; `future` is dropped.
    ///
    /// # Cancel safety
    ///
    /// Cancel-safe: dropping the returned future before it resolves makes no
    /// task.
    ///
    /// # Examples
    ///
    /// ```
    /// use smol_graceful::TaskSet;
    ///
    /// # smol::block_on(async {
    /// let mut set = TaskSet::new();
    /// let task = set.track(async { Ok::<_, String>(7) }).await.unwrap();
    /// std::thread::spawn(move || smol::block_on(task)); // any runtime
    /// assert_eq!(set.join().await.unwrap(), [7]);
    /// # });
    /// ```
    #[track_caller]
    pub fn track<F>(&self, future: F) -> Track<'_, F, T, E>
    where
        F: Future<Output = Result<T, E>>,
    {
        Track {
            start: self.start(None),
            future: Some(future),
        }
    }

    /// Waits for a free slot, then runs the blocking closure `f` on smol's
    /// blocking thread pool ([`smol::unblock`]) as a task of this set, named
    /// `name`.
    ///
    /// The task counts until `f` has returned on its thread, even if every
    /// async handle is gone, so the set never reports that it finished while
    /// a blocking thread still runs, and [`join_timeout`](Self::join_timeout)
    /// names it among the stragglers. A panic in `f` becomes
    /// [`TaskError::Panicked`]. The thread cannot be interrupted: pass `f` a
    /// clone of [`shutdown`](Self::shutdown) and let it check
    /// [`Shutdown::is_triggered`] between steps.
    ///
    /// # Errors
    ///
    /// [`TaskSetClosed`] once [`join`](Self::join) or
    /// [`join_timeout`](Self::join_timeout) has been called, even if that
    /// join future was dropped before it finished; `f` is dropped unrun.
    ///
    /// # Cancel safety
    ///
    /// Cancel-safe: dropping the returned future before it resolves starts
    /// nothing. Once it has resolved, `f` runs to the end regardless.
    ///
    /// # Examples
    ///
    /// ```
    /// use smol_graceful::TaskSet;
    ///
    /// # smol::block_on(async {
    /// let mut set = TaskSet::new();
    /// set.spawn_blocking("checksum", || Ok::<_, std::io::Error>(0xbeef)).await.unwrap();
    /// assert_eq!(set.join().await.unwrap(), [0xbeef]);
    /// # });
    /// ```
    #[track_caller]
    pub fn spawn_blocking<B>(
        &self,
        name: impl Into<Cow<'static, str>>,
        f: B,
    ) -> SpawnBlocking<'_, B, T, E>
    where
        B: FnOnce() -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: Send + 'static,
    {
        SpawnBlocking {
            start: self.start(Some(name.into())),
            f: Some(f),
        }
    }
}

impl<T, E> TaskSet<T, E> {
    /// The first half of a waiting spawn: a [`Reserve`], the task's name and
    /// the caller's line (read here, so every caller is `#[track_caller]`).
    #[track_caller]
    fn start(&self, name: Option<Cow<'static, str>>) -> Starting<'_, T, E> {
        Starting {
            reserve: self.reserve(),
            name,
            location: Location::caller(),
        }
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
            user_code(|| self.shared.shutdown.trigger());
        }
    }
}

impl<T, E> fmt::Debug for TaskSet<T, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TaskSet")
            .field("len", &self.len())
            .field("limit", &self.limit())
            .field("shutdown", &self.shared.shutdown)
            .field("joined", &self.joined)
            .finish_non_exhaustive()
    }
}

/// A reserved slot in a [`TaskSet`]: spawn exactly one task with it.
///
/// Made by [`TaskSet::reserve`] and [`TaskSet::try_reserve`]. In a limited
/// set it holds one of the limit's slots until the task it starts has ended,
/// or until it is dropped unused (which spawns nothing and leaves no trace in
/// the results). A permit borrows its set, so a set cannot be joined while a
/// permit is outstanding, and the spawn methods here cannot fail.
///
/// Give the task a name with [`named`](Self::named) before spawning it.
///
/// # Examples
///
/// ```
/// use smol::LocalExecutor;
/// use smol_graceful::TaskSet;
///
/// let ex = LocalExecutor::new();
/// let mut set = TaskSet::new();
/// let local = std::rc::Rc::new(3); // !Send
/// smol::block_on(ex.run(async {
///     let permit = set.reserve().await.unwrap();
///     permit.named("triple").spawn_local(&ex, async move { Ok::<_, String>(*local * 3) });
///     assert_eq!(set.join().await.unwrap(), [9]);
/// }));
/// ```
#[must_use = "a permit spawns nothing unless used; dropping it frees its slot"]
pub struct Permit<'s, T, E> {
    set: &'s TaskSet<T, E>,
    /// The limit's slot, in a limited set.
    permit: Option<SemaphoreGuardArc>,
    name: Option<Cow<'static, str>>,
}

impl<'s, T, E> Permit<'s, T, E> {
    /// Names the task this permit will spawn, for errors and straggler
    /// reports (otherwise it is `task #i`, `i` its spawn index).
    ///
    /// # Examples
    ///
    /// ```
    /// use smol_graceful::TaskSet;
    ///
    /// let set = TaskSet::<(), String>::new();
    /// let _task = set.try_reserve().unwrap().named("indexer").track(async { Ok(()) });
    /// assert_eq!(set.stragglers().names(), ["indexer"]);
    /// ```
    pub fn named(mut self, name: impl Into<Cow<'static, str>>) -> Permit<'s, T, E> {
        self.name = Some(name.into());
        self
    }

    /// Makes this permit's task, started at `location`: counts it in the
    /// group, then lists it.
    fn register(self, location: &'static Location<'static>) -> Slot<T, E> {
        let Permit { set, permit, name } = self;
        // Only `join` and `join_timeout` close the group, and they need
        // `&mut` the set, which this permit's borrow rules out; a permit is
        // only made while the group is open.
        let guard = set
            .group
            .add()
            .expect("a permit borrows its set, so the set cannot close while it lives");
        let shared = Arc::clone(&set.shared);
        let index = {
            let mut state = lock(&shared.state);
            let index = state.outcomes.len();
            // The clock is read under the lock, so spawn order and birth
            // times agree (stragglers are listed oldest first).
            state.outcomes.push(Outcome::Running {
                name,
                born: Instant::now(),
                location,
            });
            index
        };
        Slot {
            shared,
            index,
            permit,
            guard: Some(guard),
        }
    }
}

impl<T, E: fmt::Display> Permit<'_, T, E> {
    /// Spawns `future` on `executor` as this permit's task (detached: its
    /// outcome goes to [`TaskSet::join`]).
    ///
    /// # Examples
    ///
    /// ```
    /// use smol::Executor;
    /// use smol_graceful::TaskSet;
    ///
    /// let ex = Executor::new();
    /// let mut set = TaskSet::new();
    /// set.try_reserve().unwrap().spawn(&ex, async { Ok::<_, String>(1) });
    /// smol::block_on(ex.run(async { assert_eq!(set.join().await.unwrap(), [1]) }));
    /// ```
    #[track_caller]
    pub fn spawn<'a, F>(self, executor: &Executor<'a>, future: F)
    where
        F: Future<Output = Result<T, E>> + Send + 'a,
        T: Send + 'a,
        E: Send + 'a,
    {
        self.spawn_at(executor, future, Location::caller());
    }

    fn spawn_at<'a, F>(
        self,
        executor: &Executor<'a>,
        future: F,
        location: &'static Location<'static>,
    ) where
        F: Future<Output = Result<T, E>> + Send + 'a,
        T: Send + 'a,
        E: Send + 'a,
    {
        executor.spawn(self.track_at(future, location)).detach();
    }

    /// Spawns a `!Send` `future` on a [`LocalExecutor`] as this permit's
    /// task.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::rc::Rc;
    /// use smol::LocalExecutor;
    /// use smol_graceful::TaskSet;
    ///
    /// let ex = LocalExecutor::new();
    /// let mut set = TaskSet::new();
    /// let name = Rc::new("local");
    /// set.try_reserve().unwrap().spawn_local(&ex, async move { Ok::<_, String>(*name) });
    /// smol::block_on(ex.run(async { assert_eq!(set.join().await.unwrap(), ["local"]) }));
    /// ```
    #[track_caller]
    pub fn spawn_local<'a, F>(self, executor: &LocalExecutor<'a>, future: F)
    where
        F: Future<Output = Result<T, E>> + 'a,
        T: 'a,
        E: 'a,
    {
        executor
            .spawn(self.track_at(future, Location::caller()))
            .detach();
    }

    /// Wraps `future` as this permit's task, for any runtime: see
    /// [`TaskSet::track`].
    ///
    /// # Examples
    ///
    /// ```
    /// use smol_graceful::TaskSet;
    ///
    /// # smol::block_on(async {
    /// let mut set = TaskSet::new();
    /// let task = set.try_reserve().unwrap().track(async { Ok::<_, String>(5) });
    /// smol::spawn(task).detach();
    /// assert_eq!(set.join().await.unwrap(), [5]);
    /// # });
    /// ```
    #[track_caller]
    pub fn track<F>(self, future: F) -> TrackedTask<F, T, E>
    where
        F: Future<Output = Result<T, E>>,
    {
        self.track_at(future, Location::caller())
    }

    fn track_at<F>(self, future: F, location: &'static Location<'static>) -> TrackedTask<F, T, E>
    where
        F: Future<Output = Result<T, E>>,
    {
        TrackedTask {
            future: AssertUnwindSafe(future).catch_unwind(),
            slot: Some(self.register(location)),
        }
    }

    /// Runs the blocking closure `f` on smol's blocking thread pool as this
    /// permit's task: see [`TaskSet::spawn_blocking`].
    ///
    /// # Examples
    ///
    /// ```
    /// use smol_graceful::TaskSet;
    ///
    /// # smol::block_on(async {
    /// let mut set = TaskSet::<u64, String>::new();
    /// set.try_reserve().unwrap().named("sum").spawn_blocking(|| Ok((1..=10).sum()));
    /// assert_eq!(set.join().await.unwrap(), [55]);
    /// # });
    /// ```
    #[track_caller]
    pub fn spawn_blocking<B>(self, f: B)
    where
        B: FnOnce() -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: Send + 'static,
    {
        self.spawn_blocking_at(f, Location::caller());
    }

    fn spawn_blocking_at<B>(self, f: B, location: &'static Location<'static>)
    where
        B: FnOnce() -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: Send + 'static,
    {
        let slot = self.register(location);
        // Detached, the blocking pool still runs the closure; the slot (and
        // its guard) lives inside it, so the task counts until `f` returns on
        // its thread, whatever happens to the async side.
        smol::unblock(move || slot.finish(std::panic::catch_unwind(AssertUnwindSafe(f)))).detach();
    }
}

impl<T, E> fmt::Debug for Permit<'_, T, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Permit")
            .field("name", &self.name)
            .field("limited", &self.permit.is_some())
            .finish_non_exhaustive()
    }
}

/// One running task's place in its set: records the outcome, then stops
/// counting in the group, then frees the limit's slot.
struct Slot<T, E> {
    shared: Arc<Shared<T, E>>,
    index: usize,
    /// Released after the guard drops.
    permit: Option<SemaphoreGuardArc>,
    /// `Some` until the outcome is recorded.
    guard: Option<Guard>,
}

impl<T, E> Slot<T, E> {
    /// Records the task's outcome, then drops the guard, then releases the
    /// permit. Recording first: once the group is drained, every outcome is
    /// in. Releasing last: a new task can only count once this one stopped.
    fn settle(&mut self, outcome: Result<T, Ending<E>>, describe: fn(&TaskError<E>) -> String) {
        let Some(guard) = self.guard.take() else {
            return;
        };
        let (failure, unrecorded) = {
            let mut state = lock(&self.shared.state);
            // Always present: `join` takes the table only once the group is
            // drained, that is after this guard dropped.
            let entry = state.outcomes.get_mut(self.index);
            match (outcome, entry) {
                (Ok(value), Some(entry)) => {
                    *entry = Outcome::Succeeded(value);
                    (None, None)
                }
                (Ok(value), None) => (None, Some(value)),
                (Err(ending), entry) => {
                    let name = match entry.map(|entry| std::mem::replace(entry, Outcome::Ended)) {
                        Some(Outcome::Running { name, .. }) => name,
                        _ => None,
                    };
                    (Some(ending.into_error(task_name(name, self.index))), None)
                }
            }
        };
        // Not under the lock: user code (invariant 2).
        drop_quietly(unrecorded);
        if let Some(error) = failure {
            self.shared.fail(error, describe);
        }
        drop(guard);
        drop(self.permit.take());
    }
}

/// How a task ended, short of success, before its name is looked up.
enum Ending<E> {
    Failed(E),
    Panicked(String),
    Cancelled,
}

impl<E> Ending<E> {
    fn into_error(self, task: Cow<'static, str>) -> TaskError<E> {
        match self {
            Ending::Failed(error) => TaskError::Failed { task, error },
            Ending::Panicked(message) => TaskError::Panicked { task, message },
            Ending::Cancelled => TaskError::Cancelled { task },
        }
    }
}

impl<T, E: fmt::Display> Slot<T, E> {
    /// Records what the task's body returned or how it panicked.
    fn finish(mut self, caught: std::thread::Result<Result<T, E>>) {
        let outcome = match caught {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(error)) => Err(Ending::Failed(error)),
            Err(payload) => {
                let message = panic_message(&*payload);
                drop_payload(payload);
                Err(Ending::Panicked(message))
            }
        };
        self.settle(outcome, |error| error.to_string());
    }
}

impl<T, E> Drop for Slot<T, E> {
    /// A slot dropped before its task ended: the task was cancelled.
    fn drop(&mut self) {
        if self.guard.is_some() {
            self.settle(Err(Ending::Cancelled), TaskError::describe_without_error);
        }
    }
}

/// Runs user code that the set cannot trust not to panic (a `Display`, a
/// `Drop`, the logger): `None` if it panicked. The panic hook has already
/// reported the panic; the set carries on.
fn user_code<R>(f: impl FnOnce() -> R) -> Option<R> {
    match std::panic::catch_unwind(AssertUnwindSafe(f)) {
        Ok(value) => Some(value),
        Err(payload) => {
            drop_payload(payload);
            None
        }
    }
}

/// Drops `value` (user code), ignoring a panic in its `Drop`.
fn drop_quietly<V>(value: V) {
    user_code(move || drop(value));
}

/// Drops a panic payload, which is user code too when it is not a plain
/// message. If that `Drop` panics in turn, the second payload is dropped
/// only if it is a plain message, and leaked otherwise: a chain of payloads
/// whose drops panic must end somewhere.
fn drop_payload(payload: Box<dyn Any + Send>) {
    if let Err(again) = std::panic::catch_unwind(AssertUnwindSafe(move || drop(payload))) {
        if again.is::<&'static str>() || again.is::<String>() {
            drop(again);
        } else {
            std::mem::forget(again);
        }
    }
}

/// The message of a panic payload: the `&str` or `String` that `panic!`
/// makes, or a placeholder for any other payload.
fn panic_message(payload: &(dyn Any + Send)) -> String {
    if let Some(message) = payload.downcast_ref::<&'static str>() {
        (*message).to_owned()
    } else if let Some(message) = payload.downcast_ref::<String>() {
        message.clone()
    } else {
        "a panic payload that is not a string".to_owned()
    }
}

pin_project! {
    /// A task of a [`TaskSet`] as a plain future, for any runtime: polls the
    /// task's body, catches its panics and records its outcome in the set.
    ///
    /// Made by [`TaskSet::track`] and [`Permit::track`]. Its output is `()`:
    /// the outcome goes to [`TaskSet::join`]. The task counts in the set from
    /// the moment this future is made until it completes or is dropped;
    /// dropped unfinished, the task ends as [`TaskError::Cancelled`].
    ///
    /// # Examples
    ///
    /// ```
    /// use smol_graceful::TaskSet;
    ///
    /// # smol::block_on(async {
    /// let mut set = TaskSet::new();
    /// let task = set.track(async { Ok::<_, String>("done") }).await.unwrap();
    /// task.await; // or hand it to any executor
    /// assert_eq!(set.join().await.unwrap(), ["done"]);
    /// # });
    /// ```
    #[must_use = "futures do nothing unless polled"]
    pub struct TrackedTask<F, T, E> {
        #[pin]
        future: CatchUnwind<AssertUnwindSafe<F>>,
        slot: Option<Slot<T, E>>,
    }
}

impl<F, T, E> Future for TrackedTask<F, T, E>
where
    F: Future<Output = Result<T, E>>,
    E: fmt::Display,
{
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.project();
        let caught = std::task::ready!(this.future.poll(cx));
        if let Some(slot) = this.slot.take() {
            slot.finish(caught);
        }
        Poll::Ready(())
    }
}

impl<F, T, E> fmt::Debug for TrackedTask<F, T, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TrackedTask")
            .field("index", &self.slot.as_ref().map(|slot| slot.index))
            .finish_non_exhaustive()
    }
}

pin_project! {
    /// Future of [`TaskSet::reserve`]: resolves to a [`Permit`] once a slot
    /// is free.
    #[must_use = "futures do nothing unless polled"]
    pub struct Reserve<'s, T, E> {
        set: &'s TaskSet<T, E>,
        #[pin]
        acquire: Option<AcquireArc>,
    }
}

impl<'s, T, E> Future for Reserve<'s, T, E> {
    type Output = Result<Permit<'s, T, E>, TaskSetClosed>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let set: &'s TaskSet<T, E> = this.set;
        if set.group.is_closed() {
            return Poll::Ready(Err(TaskSetClosed));
        }
        let permit = match this.acquire.as_pin_mut() {
            None => None,
            Some(acquire) => Some(std::task::ready!(acquire.poll(cx))),
        };
        Poll::Ready(Ok(Permit {
            set,
            permit,
            name: None,
        }))
    }
}

impl<T, E> fmt::Debug for Reserve<'_, T, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Reserve")
            .field("limited", &self.acquire.is_some())
            .finish_non_exhaustive()
    }
}

pin_project! {
    /// The shared half of [`Spawn`], [`Track`] and [`SpawnBlocking`]: waits
    /// for a [`Permit`], then names it.
    struct Starting<'s, T, E> {
        #[pin]
        reserve: Reserve<'s, T, E>,
        name: Option<Cow<'static, str>>,
        // Where the spawn method was called: read at the call, since the
        // future is polled from somewhere else.
        location: &'static Location<'static>,
    }
}

impl<'s, T, E> Starting<'s, T, E> {
    /// The named permit, once a slot is free.
    fn poll_permit(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Result<Permit<'s, T, E>, TaskSetClosed>> {
        let this = self.project();
        let mut permit = std::task::ready!(this.reserve.poll(cx))?;
        permit.name = this.name.take();
        Poll::Ready(Ok(permit))
    }
}

impl<T, E> fmt::Debug for Starting<'_, T, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Starting")
            .field("name", &self.name)
            .field("location", &format_args!("{}", self.location))
            .finish_non_exhaustive()
    }
}

pin_project! {
    /// Future of [`TaskSet::spawn`] and [`TaskSet::spawn_named`]: waits for a
    /// free slot, then spawns the task and resolves to `Ok(())`.
    ///
    /// It holds the line `spawn` was called from, which the task's
    /// [`Straggler::location`] reports. Dropped before it resolves, it spawns
    /// nothing and drops the task's future.
    #[must_use = "futures do nothing unless polled"]
    pub struct Spawn<'s, 'a, F, T, E> {
        #[pin]
        start: Starting<'s, T, E>,
        executor: &'s Executor<'a>,
        // The task's body; taken when it is spawned.
        future: Option<F>,
    }
}

impl<'a, F, T, E> Future for Spawn<'_, 'a, F, T, E>
where
    F: Future<Output = Result<T, E>> + Send + 'a,
    T: Send + 'a,
    E: fmt::Display + Send + 'a,
{
    type Output = Result<(), TaskSetClosed>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        assert!(this.future.is_some(), "`Spawn` polled after it completed");
        let location = this.start.location;
        let permit = std::task::ready!(this.start.poll_permit(cx))?;
        if let Some(future) = this.future.take() {
            permit.spawn_at(this.executor, future, location);
        }
        Poll::Ready(Ok(()))
    }
}

impl<F, T, E> fmt::Debug for Spawn<'_, '_, F, T, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Spawn")
            .field("start", &self.start)
            .field("spawned", &self.future.is_none())
            .finish_non_exhaustive()
    }
}

pin_project! {
    /// Future of [`TaskSet::track`]: waits for a free slot, then resolves to
    /// the task as a [`TrackedTask`].
    ///
    /// It holds the line `track` was called from, which the task's
    /// [`Straggler::location`] reports. Dropped before it resolves, it makes
    /// no task and drops the task's future.
    #[must_use = "futures do nothing unless polled"]
    pub struct Track<'s, F, T, E> {
        #[pin]
        start: Starting<'s, T, E>,
        // The task's body; taken when the task is made.
        future: Option<F>,
    }
}

impl<F, T, E> Future for Track<'_, F, T, E>
where
    F: Future<Output = Result<T, E>>,
    E: fmt::Display,
{
    type Output = Result<TrackedTask<F, T, E>, TaskSetClosed>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let Some(future) = this.future.take() else {
            panic!("`Track` polled after it completed");
        };
        let location = this.start.location;
        match this.start.poll_permit(cx) {
            Poll::Ready(Ok(permit)) => Poll::Ready(Ok(permit.track_at(future, location))),
            Poll::Ready(Err(closed)) => Poll::Ready(Err(closed)),
            Poll::Pending => {
                *this.future = Some(future);
                Poll::Pending
            }
        }
    }
}

impl<F, T, E> fmt::Debug for Track<'_, F, T, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Track")
            .field("start", &self.start)
            .field("done", &self.future.is_none())
            .finish_non_exhaustive()
    }
}

pin_project! {
    /// Future of [`TaskSet::spawn_blocking`]: waits for a free slot, then
    /// starts the closure on smol's blocking thread pool and resolves to
    /// `Ok(())`.
    ///
    /// It holds the line `spawn_blocking` was called from, which the task's
    /// [`Straggler::location`] reports. Dropped before it resolves, it starts
    /// nothing and drops the closure.
    #[must_use = "futures do nothing unless polled"]
    pub struct SpawnBlocking<'s, B, T, E> {
        #[pin]
        start: Starting<'s, T, E>,
        // The closure; taken when it is started.
        f: Option<B>,
    }
}

impl<B, T, E> Future for SpawnBlocking<'_, B, T, E>
where
    B: FnOnce() -> Result<T, E> + Send + 'static,
    T: Send + 'static,
    E: fmt::Display + Send + 'static,
{
    type Output = Result<(), TaskSetClosed>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        assert!(
            this.f.is_some(),
            "`SpawnBlocking` polled after it completed"
        );
        let location = this.start.location;
        let permit = std::task::ready!(this.start.poll_permit(cx))?;
        if let Some(f) = this.f.take() {
            permit.spawn_blocking_at(f, location);
        }
        Poll::Ready(Ok(()))
    }
}

impl<B, T, E> fmt::Debug for SpawnBlocking<'_, B, T, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SpawnBlocking")
            .field("start", &self.start)
            .field("started", &self.f.is_none())
            .finish_non_exhaustive()
    }
}

/// Future of [`TaskSet::join`]: the first failure, or every result in spawn
/// order, once every task has ended.
#[must_use = "futures do nothing unless polled"]
pub struct Join<'s, T, E> {
    wait: Wait<'s>,
    shared: &'s Shared<T, E>,
    joined: &'s mut bool,
}

impl<T, E> Future for Join<'_, T, E> {
    type Output = Result<Vec<T>, TaskError<E>>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = &mut *self;
        std::task::ready!(Pin::new(&mut this.wait).poll(cx));
        assert!(!*this.joined, "`Join` polled after it completed");
        *this.joined = true;
        // Every task's slot recorded its outcome before its guard dropped,
        // and the group is drained: the table is complete.
        let (outcomes, first_error) = {
            let mut state = lock(&this.shared.state);
            (
                std::mem::take(&mut state.outcomes),
                state.first_error.take(),
            )
        };
        // The set is over: like errgroup's `WithContext` when `Wait`
        // returns, tell whatever still watches its shutdown. A failure that
        // triggered it first keeps its reason. The trigger takes effect
        // before it logs, so a panicking logger is ignored.
        user_code(|| this.shared.shutdown.trigger());
        Poll::Ready(results(outcomes, first_error))
    }
}

/// What `join` returns from a complete table: the first failure, or every
/// result in spawn order. Results it does not return are dropped one by one,
/// quietly (invariant 2).
fn results<T, E>(
    outcomes: Vec<Outcome<T>>,
    first_error: Option<TaskError<E>>,
) -> Result<Vec<T>, TaskError<E>> {
    let mut error = first_error;
    let mut values = Vec::with_capacity(if error.is_none() { outcomes.len() } else { 0 });
    for (index, outcome) in outcomes.into_iter().enumerate() {
        match outcome {
            Outcome::Succeeded(value) if error.is_none() => values.push(value),
            Outcome::Succeeded(value) => drop_quietly(value),
            // Invariant 1 rules these out without a stored error; should it
            // ever break, `join` still answers, and names the task.
            Outcome::Running { name, .. } => {
                error.get_or_insert_with(|| TaskError::Cancelled {
                    task: task_name(name, index),
                });
            }
            Outcome::Ended => {
                error.get_or_insert_with(|| TaskError::Cancelled {
                    task: task_name(None, index),
                });
            }
        }
    }
    match error {
        None => Ok(values),
        Some(error) => {
            values.into_iter().for_each(drop_quietly);
            Err(error)
        }
    }
}

impl<T, E> fmt::Debug for Join<'_, T, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Join")
            .field("wait", &self.wait)
            .finish_non_exhaustive()
    }
}

/// Future of [`TaskSet::join_timeout`]: what [`Join`] returns, or the
/// [`Stragglers`] when the time runs out first.
#[must_use = "futures do nothing unless polled"]
pub struct JoinTimeout<'s, T, E> {
    join: Join<'s, T, E>,
    timer: Timer,
    group: &'s Group,
}

impl<T, E> Future for JoinTimeout<'_, T, E> {
    type Output = Result<Result<Vec<T>, TaskError<E>>, Stragglers>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        // Finished work wins over an expired timer.
        if let Poll::Ready(outcome) = Pin::new(&mut self.join).poll(cx) {
            return Poll::Ready(Ok(outcome));
        }
        std::task::ready!(Pin::new(&mut self.timer).poll(cx));
        let stragglers = self.join.shared.stragglers(self.group);
        if stragglers.is_empty() {
            // The last task ended between the two polls: still a finish.
            if let Poll::Ready(outcome) = Pin::new(&mut self.join).poll(cx) {
                return Poll::Ready(Ok(outcome));
            }
        }
        Poll::Ready(Err(stragglers))
    }
}

impl<T, E> fmt::Debug for JoinTimeout<'_, T, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JoinTimeout")
            .field("join", &self.join)
            .finish_non_exhaustive()
    }
}

/// Why a [`TaskSet`] failed: the first task that returned an error, panicked
/// or was cancelled, by name.
///
/// Its `Display` names the task (`task #i` if it has no name) and says what
/// happened: `"fetch failed: connection refused"`,
/// `"task #3 panicked: index out of bounds"`. The same text is the
/// message of the set's [`Reason::Error`].
///
/// It implements [`std::error::Error`] whenever `E` is `Debug + Display`
/// (so also for `anyhow::Error`); the task's error is part of the message,
/// and [`into_error`](Self::into_error) hands it back.
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
    /// dropped, or its executor was, before the task completed.
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
    /// set.spawn_blocking("fsync", || Err("disk full")).await.unwrap();
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
    /// set.spawn_blocking("open", || Err(io::ErrorKind::NotFound.into())).await.unwrap();
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

    /// The `Display` text, with only the task's name for `Failed`: what a
    /// cancelled slot can write without requiring `E: Display`.
    fn describe_without_error(&self) -> String {
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
