//! The limit of a set and the [`Permit`] that holds one of its slots.
//!
//! A limited set keeps a semaphore of `max` permits: every running task,
//! and every unused [`Permit`], holds one. A task's permit is released only
//! after its guard of the group dropped (invariant 2 of `slot.rs`).

use std::borrow::Cow;
use std::fmt;
use std::future::Future;
use std::num::NonZeroUsize;
use std::panic::{AssertUnwindSafe, Location};
use std::sync::Arc;

use smol::lock::futures::AcquireArc;
use smol::lock::{Semaphore, SemaphoreGuardArc};
use smol::{Executor, LocalExecutor};

use super::futures::TrackedTask;
use super::slot::{Reservation, Slot};
use super::spawner::Spawner;
#[cfg(doc)]
use super::TaskSet;
use crate::group::Guard;

/// The concurrency limit of a set.
#[derive(Clone)]
pub(super) struct Limit {
    max: NonZeroUsize,
    /// `max` permits; every task, and every unused [`Permit`], holds one.
    /// A std `Arc`: the semaphore's `acquire_arc` needs one.
    semaphore: Arc<Semaphore>,
}

impl Limit {
    /// A limit of `max` tasks at once.
    pub(super) fn new(max: NonZeroUsize) -> Limit {
        Limit {
            max,
            semaphore: Arc::new(Semaphore::new(max.get())),
        }
    }

    /// The most tasks that may run at once.
    pub(super) fn max(&self) -> usize {
        self.max.get()
    }

    /// Waits for a free slot.
    pub(super) fn acquire(&self) -> AcquireArc {
        self.semaphore.acquire_arc()
    }

    /// A free slot, if there is one now.
    pub(super) fn try_acquire(&self) -> Option<SemaphoreGuardArc> {
        self.semaphore.try_acquire_arc()
    }
}

/// A reserved slot in a [`TaskSet`]: spawn exactly one task with it.
///
/// Made by [`TaskSet::reserve`] and [`TaskSet::try_reserve`] (and the same
/// methods of a [`Spawner`]). In a limited set it holds one of the limit's
/// slots until the task it starts has ended, or until it is dropped unused
/// (which spawns nothing and leaves no trace in the results). A permit
/// counts in the set from its reservation, so the spawn methods here cannot
/// fail: a permit of a [`TaskSet`] borrows the set, which cannot be joined
/// while it lives, and a `join` that starts while a [`Spawner`]'s permit is
/// unused waits for it to be used or dropped (and
/// [`len`](TaskSet::len) counts it meanwhile).
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
    spawner: &'s Spawner<T, E>,
    /// The limit's slot, in a limited set.
    permit: Option<SemaphoreGuardArc>,
    /// The task's count in the set's group, taken at the reservation.
    guard: Guard,
    /// The task's count in the set's `len` until it is listed.
    reservation: Reservation<'s>,
    name: Option<Cow<'static, str>>,
}

impl<'s, T, E> Permit<'s, T, E> {
    /// An unnamed permit of `spawner`'s set, counted by `guard`, holding
    /// `permit` (the limit's slot) in a limited set.
    pub(super) fn new(
        spawner: &'s Spawner<T, E>,
        permit: Option<SemaphoreGuardArc>,
        guard: Guard,
    ) -> Permit<'s, T, E> {
        Permit {
            spawner,
            permit,
            guard,
            reservation: Reservation::new(&spawner.shared),
            name: None,
        }
    }

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

    /// Makes this permit's task, started at `location`: the permit's guard
    /// already counts it in the group, and now it is listed (invariant 1 of
    /// `slot.rs`).
    fn register(self, location: &'static Location<'static>) -> Slot<T, E> {
        let Permit {
            spawner,
            permit,
            guard,
            reservation,
            name,
        } = self;
        Slot::register(&spawner.shared, reservation, guard, permit, name, location)
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

    /// [`spawn`](Self::spawn), for a task started at `location`.
    pub(super) fn spawn_at<'a, F>(
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
        self.spawn_local_at(executor, future, Location::caller());
    }

    /// [`spawn_local`](Self::spawn_local), for a task started at `location`.
    pub(super) fn spawn_local_at<'a, F>(
        self,
        executor: &LocalExecutor<'a>,
        future: F,
        location: &'static Location<'static>,
    ) where
        F: Future<Output = Result<T, E>> + 'a,
        T: 'a,
        E: 'a,
    {
        executor.spawn(self.track_at(future, location)).detach();
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

    /// [`track`](Self::track), for a task started at `location`.
    pub(super) fn track_at<F>(
        self,
        future: F,
        location: &'static Location<'static>,
    ) -> TrackedTask<F, T, E>
    where
        F: Future<Output = Result<T, E>>,
    {
        TrackedTask::new(future, self.register(location))
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

    /// [`spawn_blocking`](Self::spawn_blocking), for a task started at
    /// `location`.
    pub(super) fn spawn_blocking_at<B>(self, f: B, location: &'static Location<'static>)
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
