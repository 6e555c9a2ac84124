//! The named futures of a [`TaskSet`]: [`Reserve`] (a free slot), the
//! waiting spawns built on it ([`Spawn`], [`SpawnLocal`], [`Track`],
//! [`SpawnBlocking`]), a task for any runtime ([`TrackedTask`]), and the
//! joins ([`Join`], [`JoinNext`], [`JoinTimeout`]).
//!
//! Every way to start a task is a plain `#[track_caller]` fn that reads
//! `Location::caller()` at the call and hands it to the future it returns
//! (through `Starting`): an `async fn` would record a line of this crate
//! instead.

use std::borrow::Cow;
use std::fmt;
use std::future::Future;
use std::panic::{AssertUnwindSafe, Location};
use std::pin::Pin;
use std::task::{Context, Poll};

use pin_project_lite::pin_project;
use smol::future::{CatchUnwind, FutureExt as _};
use smol::lock::futures::AcquireArc;
use smol::{Executor, LocalExecutor, Timer};

use super::abort::AbortWatch;
use super::error::{TaskError, TaskSetClosed};
use super::permit::Permit;
use super::slot::{Shared, Slot};
use super::spawner::Spawner;
use super::user_code::user_code;
#[cfg(doc)]
use super::TaskSet;
use crate::group::Wait;
use crate::shutdown::Reason;
#[cfg(doc)]
use crate::stragglers::Straggler;
use crate::stragglers::Stragglers;

pin_project! {
    /// A task of a [`TaskSet`] as a plain future, for any runtime: polls the
    /// task's body, catches its panics and records its outcome in the set.
    ///
    /// Made by [`TaskSet::track`] and [`Permit::track`]. Its output is `()`:
    /// the outcome goes to [`TaskSet::join`]. The task counts in the set from
    /// the moment this future is made until it completes or is dropped;
    /// dropped unfinished, the task ends as [`TaskError::Cancelled`]. After
    /// [`TaskSet::abort`], its next poll drops the body and completes, and
    /// the task ends as [`TaskError::Cancelled`] too.
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
        // `None` once the body finished or was dropped by an abort.
        #[pin]
        future: Option<CatchUnwind<AssertUnwindSafe<F>>>,
        slot: Option<Slot<T, E>>,
        watch: AbortWatch,
    }
}

impl<F, T, E> TrackedTask<F, T, E>
where
    F: Future<Output = Result<T, E>>,
{
    /// Task `slot`, whose body is `future`.
    pub(super) fn new(future: F, slot: Slot<T, E>) -> TrackedTask<F, T, E> {
        TrackedTask {
            future: Some(AssertUnwindSafe(future).catch_unwind()),
            slot: Some(slot),
            watch: AbortWatch::default(),
        }
    }
}

impl<F, T, E> Future for TrackedTask<F, T, E>
where
    F: Future<Output = Result<T, E>>,
    E: fmt::Display,
{
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let mut this = self.project();
        let aborted = match this.slot.as_ref() {
            None => return Poll::Ready(()),
            Some(slot) => slot.shared().abort.is_aborted(),
        };
        if !aborted {
            let Some(future) = this.future.as_mut().as_pin_mut() else {
                return Poll::Ready(());
            };
            if let Poll::Ready(caught) = future.poll(cx) {
                // The body's locals are gone; record its outcome.
                this.future.set(None);
                if let Some(slot) = this.slot.take() {
                    slot.finish(caught);
                }
                return Poll::Ready(());
            }
            let registered = match this.slot.as_ref() {
                Some(slot) => this.watch.register(&slot.shared().abort, cx),
                None => false,
            };
            if !registered {
                return Poll::Pending;
            }
        }
        // Aborted: cut at this poll. Drop the body (user code, caught),
        // then the slot records the cancellation.
        user_code(|| this.future.set(None));
        drop(this.slot.take());
        Poll::Ready(())
    }
}

impl<F, T, E> fmt::Debug for TrackedTask<F, T, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TrackedTask")
            .field("index", &self.slot.as_ref().map(Slot::index))
            .finish_non_exhaustive()
    }
}

pin_project! {
    /// Future of [`TaskSet::reserve`]: resolves to a [`Permit`] once a slot
    /// is free.
    #[must_use = "futures do nothing unless polled"]
    pub struct Reserve<'s, T, E> {
        spawner: &'s Spawner<T, E>,
        #[pin]
        acquire: Option<AcquireArc>,
    }
}

impl<'s, T, E> Reserve<'s, T, E> {
    /// Waits for `acquire` (the limit's slot, in a limited set).
    pub(super) fn new(
        spawner: &'s Spawner<T, E>,
        acquire: Option<AcquireArc>,
    ) -> Reserve<'s, T, E> {
        Reserve { spawner, acquire }
    }
}

impl<'s, T, E> Future for Reserve<'s, T, E> {
    type Output = Result<Permit<'s, T, E>, TaskSetClosed>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let spawner: &'s Spawner<T, E> = this.spawner;
        if spawner.is_closed() {
            return Poll::Ready(Err(TaskSetClosed));
        }
        let permit = match this.acquire.as_pin_mut() {
            None => None,
            Some(acquire) => Some(std::task::ready!(acquire.poll(cx))),
        };
        // The group may have closed while this waited: then the slot is
        // released and the reservation fails.
        let guard = spawner.add_guard().map_err(|_| TaskSetClosed)?;
        Poll::Ready(Ok(Permit::new(spawner, permit, guard)))
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
    /// Reserves a slot in `set` for a task named `name`, started at the
    /// caller's line (every caller is `#[track_caller]`).
    #[track_caller]
    fn new(spawner: &'s Spawner<T, E>, name: Option<Cow<'static, str>>) -> Starting<'s, T, E> {
        Starting {
            reserve: spawner.reserve(),
            name,
            location: Location::caller(),
        }
    }

    /// The named permit, once a slot is free.
    fn poll_permit(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Result<Permit<'s, T, E>, TaskSetClosed>> {
        let this = self.project();
        let permit = std::task::ready!(this.reserve.poll(cx))?;
        Poll::Ready(Ok(match this.name.take() {
            Some(name) => permit.named(name),
            None => permit,
        }))
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

impl<'s, 'a, F, T, E> Spawn<'s, 'a, F, T, E> {
    /// Waits for a slot in `set`, then spawns `future` on `executor` as a
    /// task named `name`, started at the caller's line.
    #[track_caller]
    pub(super) fn new(
        spawner: &'s Spawner<T, E>,
        name: Option<Cow<'static, str>>,
        executor: &'s Executor<'a>,
        future: F,
    ) -> Spawn<'s, 'a, F, T, E> {
        Spawn {
            start: Starting::new(spawner, name),
            executor,
            future: Some(future),
        }
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
    /// Future of [`TaskSet::spawn_local`]: waits for a free slot, then spawns
    /// the `!Send` task on a [`LocalExecutor`] and resolves to `Ok(())`.
    ///
    /// It holds the line `spawn_local` was called from, which the task's
    /// [`Straggler::location`] reports. Dropped before it resolves, it spawns
    /// nothing and drops the task's future.
    #[must_use = "futures do nothing unless polled"]
    pub struct SpawnLocal<'s, 'a, F, T, E> {
        #[pin]
        start: Starting<'s, T, E>,
        executor: &'s LocalExecutor<'a>,
        // The task's body; taken when it is spawned.
        future: Option<F>,
    }
}

impl<'s, 'a, F, T, E> SpawnLocal<'s, 'a, F, T, E> {
    /// Waits for a slot, then spawns `future` on `executor`, started at the
    /// caller's line.
    #[track_caller]
    pub(super) fn new(
        spawner: &'s Spawner<T, E>,
        executor: &'s LocalExecutor<'a>,
        future: F,
    ) -> SpawnLocal<'s, 'a, F, T, E> {
        SpawnLocal {
            start: Starting::new(spawner, None),
            executor,
            future: Some(future),
        }
    }
}

impl<'a, F, T, E> Future for SpawnLocal<'_, 'a, F, T, E>
where
    F: Future<Output = Result<T, E>> + 'a,
    T: 'a,
    E: fmt::Display + 'a,
{
    type Output = Result<(), TaskSetClosed>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        assert!(
            this.future.is_some(),
            "`SpawnLocal` polled after it completed"
        );
        let location = this.start.location;
        let permit = std::task::ready!(this.start.poll_permit(cx))?;
        if let Some(future) = this.future.take() {
            permit.spawn_local_at(this.executor, future, location);
        }
        Poll::Ready(Ok(()))
    }
}

impl<F, T, E> fmt::Debug for SpawnLocal<'_, '_, F, T, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SpawnLocal")
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

impl<'s, F, T, E> Track<'s, F, T, E> {
    /// Waits for a slot in `set`, then makes `future` a task started at the
    /// caller's line.
    #[track_caller]
    pub(super) fn new(spawner: &'s Spawner<T, E>, future: F) -> Track<'s, F, T, E> {
        Track {
            start: Starting::new(spawner, None),
            future: Some(future),
        }
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

impl<'s, B, T, E> SpawnBlocking<'s, B, T, E> {
    /// Waits for a slot in `set`, then starts `f` as a task named `name`,
    /// started at the caller's line.
    #[track_caller]
    pub(super) fn new(
        spawner: &'s Spawner<T, E>,
        name: Option<Cow<'static, str>>,
        f: B,
    ) -> SpawnBlocking<'s, B, T, E> {
        SpawnBlocking {
            start: Starting::new(spawner, name),
            f: Some(f),
        }
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

impl<'s, T, E> Join<'s, T, E> {
    /// Waits for `wait` (the set's group, closed at the call), then takes
    /// the outcomes from `shared` and sets `joined`.
    pub(super) fn new(
        wait: Wait<'s>,
        shared: &'s Shared<T, E>,
        joined: &'s mut bool,
    ) -> Join<'s, T, E> {
        Join {
            wait,
            shared,
            joined,
        }
    }
}

impl<T, E> Future for Join<'_, T, E> {
    type Output = Result<Vec<T>, TaskError<E>>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = &mut *self;
        std::task::ready!(Pin::new(&mut this.wait).poll(cx));
        assert!(!*this.joined, "`Join` polled after it completed");
        *this.joined = true;
        // The group is drained, so the table is complete (invariant 1 of
        // `slot.rs`).
        let outcomes = this.shared.take_outcomes();
        // The set is over: like errgroup's `WithContext` when `Wait`
        // returns, tell whatever still watches its shutdown. A failure that
        // triggered it first keeps its reason. The trigger takes effect
        // before it logs, so a panicking logger is ignored.
        user_code(|| this.shared.shutdown.trigger_with(Reason::Finished));
        Poll::Ready(outcomes.into_results())
    }
}

impl<T, E> fmt::Debug for Join<'_, T, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Join")
            .field("wait", &self.wait)
            .finish_non_exhaustive()
    }
}

/// Future of [`TaskSet::join_next`]: the next task to finish, by name, with
/// its outcome; `None` once no task is running or left to hand out.
#[must_use = "futures do nothing unless polled"]
pub struct JoinNext<'s, T, E> {
    shared: &'s Shared<T, E>,
}

impl<'s, T, E> JoinNext<'s, T, E> {
    /// The next finished task of `shared`'s table.
    pub(super) fn new(shared: &'s Shared<T, E>) -> JoinNext<'s, T, E> {
        JoinNext { shared }
    }
}

impl<T, E> Future for JoinNext<'_, T, E> {
    type Output = Option<(Cow<'static, str>, Result<T, TaskError<E>>)>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.shared.poll_next(cx)
    }
}

impl<T, E> fmt::Debug for JoinNext<'_, T, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JoinNext").finish_non_exhaustive()
    }
}

/// Future of [`TaskSet::join_timeout`]: what [`Join`] returns, or the
/// [`Stragglers`] when the time runs out first.
#[must_use = "futures do nothing unless polled"]
pub struct JoinTimeout<'s, T, E> {
    join: Join<'s, T, E>,
    timer: Timer,
}

impl<'s, T, E> JoinTimeout<'s, T, E> {
    /// `join`, given up when `timer` fires (the set's table names the
    /// stragglers).
    pub(super) fn new(join: Join<'s, T, E>, timer: Timer) -> JoinTimeout<'s, T, E> {
        JoinTimeout { join, timer }
    }
}

impl<T, E> Future for JoinTimeout<'_, T, E> {
    type Output = Result<Result<Vec<T>, TaskError<E>>, Stragglers>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        // Finished work wins over an expired timer.
        if let Poll::Ready(outcome) = Pin::new(&mut self.join).poll(cx) {
            return Poll::Ready(Ok(outcome));
        }
        std::task::ready!(Pin::new(&mut self.timer).poll(cx));
        let stragglers = self.join.shared.stragglers();
        if stragglers.is_empty() {
            // The last task ended between the two polls: still a finish. Its
            // outcome is recorded; if its guard is still dropping, the
            // join's wait (registered by the poll above) wakes us once it
            // has, and the join is ready then.
            return match Pin::new(&mut self.join).poll(cx) {
                Poll::Ready(outcome) => Poll::Ready(Ok(outcome)),
                Poll::Pending => Poll::Pending,
            };
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
