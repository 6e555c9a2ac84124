//! How a [`TaskSet`] ends: [`join`](TaskSet::join) (every result, spawn
//! order), [`join_timeout`](TaskSet::join_timeout),
//! [`join_next`](TaskSet::join_next) and the set as a [`Stream`]
//! (completion order), and [`abort`](TaskSet::abort) (cut what has not
//! finished).

use std::borrow::Cow;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use futures_core::Stream;
use smol::Timer;

use super::error::TaskError;
#[cfg(doc)]
use super::error::TaskSetClosed;
use super::futures::{Join, JoinNext, JoinTimeout};
#[cfg(doc)]
use super::spawner::Spawner;
use super::user_code::user_code;
use super::TaskSet;
#[cfg(doc)]
use crate::shutdown::Reason;

impl<T, E> TaskSet<T, E> {
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
    /// with [`Reason::Finished`] (a failure that triggered it first keeps its
    /// [`Reason::Error`]), as errgroup's `Wait` cancels the context of
    /// `WithContext`: whatever still watches the set's shutdown stops too.
    ///
    /// A task that [`join_next`](Self::join_next) already handed out is not
    /// in `join`'s answer: its outcome went to the caller then. So after
    /// `join_next` has yielded some tasks, `join` returns the others: the
    /// first failure among them (in completion order), or their results in
    /// spawn order.
    ///
    /// `join` waits for tasks, not for [`Spawner`]s: a spawner kept alive
    /// does not hold it up, and fails with [`TaskSetClosed`] afterwards.
    ///
    /// # Errors
    ///
    /// The first [`TaskError`]: a task that returned `Err`, panicked or was
    /// dropped (or [aborted](Self::abort)) before it finished.
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
    ///     set.spawn_blocking_named("b", || Ok("b")).await.unwrap();
    ///     assert_eq!(set.join().await.unwrap(), ["a", "b"]);
    ///     assert!(set.spawn(&ex, async { Ok("c") }).await.is_err()); // closed
    /// }));
    /// ```
    pub fn join(&mut self) -> Join<'_, T, E> {
        assert!(
            !self.joined,
            "TaskSet::join called after a join already returned the outcomes"
        );
        let spawner = &self.spawner;
        Join::new(spawner.group.wait(), &spawner.shared, &mut self.joined)
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
        let group = &self.spawner.group;
        assert!(
            !self.joined,
            "TaskSet::join_timeout called after a join already returned the outcomes"
        );
        JoinTimeout::new(
            Join::new(group.wait(), &self.spawner.shared, &mut self.joined),
            timer,
        )
    }

    /// Waits for the next task to finish and returns its name (or `task #i`)
    /// and outcome: results in *completion* order, as tokio's
    /// `JoinSet::join_next`.
    ///
    /// `None` once no task is running and every finished one has been
    /// handed out. A task added later (through a [`Spawner`]) is handed out
    /// by a later call: the set may grow again after `None`, as a
    /// `JoinSet` does. A task that spawns before it returns is still
    /// running when it spawns, so a loop of `join_next` sees every task of a
    /// recursive fan-out.
    ///
    /// Unlike [`join`](Self::join), `join_next` neither closes the set nor
    /// triggers its [`shutdown`](Self::shutdown): a server can spawn and
    /// collect as it goes, and a failure still triggers the shutdown when it
    /// happens. The outcome it hands out is gone from the set: a later
    /// `join` returns the rest (see [`join`](Self::join)). Every failure is
    /// handed out, not only the first.
    ///
    /// The set is also a [`Stream`] of the same items (`futures-lite`'s
    /// `StreamExt::next`, `futures`' `StreamExt`, ...).
    ///
    /// # Cancel safety
    ///
    /// Cancel-safe: an outcome leaves the set only in the poll that returns
    /// it, so dropping the future loses nothing.
    ///
    /// # Examples
    ///
    /// ```
    /// use smol::{channel, Executor};
    /// use smol_graceful::TaskSet;
    ///
    /// let ex = Executor::new();
    /// let mut set = TaskSet::<u32, String>::new();
    /// let (go, gate) = channel::unbounded::<()>();
    /// smol::block_on(ex.run(async {
    ///     let slow = gate.clone();
    ///     set.spawn_named("slow", &ex, async move { slow.recv().await.ok(); Ok(1) }).await.unwrap();
    ///     set.spawn_named("fast", &ex, async { Ok(2) }).await.unwrap();
    ///     let (name, result) = set.join_next().await.unwrap();
    ///     assert_eq!((&*name, result.unwrap()), ("fast", 2));
    ///     go.send(()).await.unwrap();
    ///     let (name, result) = set.join_next().await.unwrap();
    ///     assert_eq!((&*name, result.unwrap()), ("slow", 1));
    ///     assert!(set.join_next().await.is_none());
    /// }));
    /// ```
    pub fn join_next(&mut self) -> JoinNext<'_, T, E> {
        JoinNext::new(&self.spawner.shared)
    }

    /// Cancels every task that has not finished: each async task's future is
    /// dropped at its next poll (its executor is woken for it), and the task
    /// ends as [`TaskError::Cancelled`], as Python's `TaskGroup` cancels its
    /// tasks at their next `await`.
    ///
    /// `abort` also closes the set (later spawns fail with
    /// [`TaskSetClosed`]) and triggers its [`shutdown`](Self::shutdown)
    /// ([`Reason::Requested`] unless it was triggered already). Then
    /// [`join`](Self::join) (or [`join_next`](Self::join_next)) collects the
    /// outcomes: the first failure is the first task cancelled, unless a
    /// task failed before the abort.
    ///
    /// Blocking tasks ([`spawn_blocking`](Self::spawn_blocking)) cannot be
    /// cut: they run to the end of their closure, are still counted by
    /// [`len`](Self::len) and named by [`stragglers`](Self::stragglers) and
    /// [`join_timeout`](Self::join_timeout) as running, and `join` waits for
    /// them; let them check [`Shutdown::is_triggered`](crate::Shutdown::is_triggered)
    /// between steps. A [`TrackedTask`](super::TrackedTask) is cut at its
    /// next poll too, so one that nobody polls again stays listed until it is
    /// dropped.
    ///
    /// # Examples
    ///
    /// Grace, then force: ask the tasks to stop, give them a deadline with
    /// [`join_timeout`](Self::join_timeout), abort what is left, and join.
    ///
    /// ```
    /// use std::time::Duration;
    /// use smol::Executor;
    /// use smol_graceful::TaskSet;
    ///
    /// let ex = Executor::new();
    /// let mut set = TaskSet::<(), String>::new();
    /// smol::block_on(ex.run(async {
    ///     set.spawn_with(&ex, |shutdown| async move {
    ///         shutdown.triggered().await; // polite: stops when asked
    ///         Ok(())
    ///     })
    ///     .await
    ///     .unwrap();
    ///     set.spawn_named("stubborn", &ex, std::future::pending()).await.unwrap();
    ///
    ///     set.shutdown().trigger(); // grace...
    ///     let stragglers = set.join_timeout(Duration::from_millis(20)).await.unwrap_err();
    ///     assert_eq!(stragglers.names(), ["stubborn"]);
    ///
    ///     set.abort(); // ...then force
    ///     let error = set.join().await.unwrap_err();
    ///     assert!(error.is_cancelled());
    ///     assert_eq!(error.task(), "stubborn");
    /// }));
    /// ```
    pub fn abort(&self) {
        let spawner = &self.spawner;
        spawner.group.close();
        // The trigger takes effect before it logs: a panicking logger
        // cannot keep the tasks from being cut.
        user_code(|| spawner.shared.shutdown.trigger());
        spawner.shared.abort.abort();
    }
}

/// The set as a stream of finished tasks in completion order: what
/// [`join_next`](TaskSet::join_next) returns, one item per task.
///
/// # Examples
///
/// ```
/// use futures_lite::StreamExt;
/// use smol::Executor;
/// use smol_graceful::TaskSet;
///
/// let ex = Executor::new();
/// let mut set = TaskSet::<u32, String>::new();
/// smol::block_on(ex.run(async {
///     for i in 0..3 {
///         set.spawn(&ex, async move { Ok(i) }).await.unwrap();
///     }
///     let mut sum = 0;
///     while let Some((_name, result)) = set.next().await {
///         sum += result.unwrap();
///     }
///     assert_eq!(sum, 3);
/// }));
/// ```
impl<T, E> Stream for TaskSet<T, E> {
    type Item = (Cow<'static, str>, Result<T, TaskError<E>>);

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.spawner.shared.poll_next(cx)
    }
}
