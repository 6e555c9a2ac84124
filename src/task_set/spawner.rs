//! [`Spawner`]: a cloneable handle that adds tasks to a [`TaskSet`] from
//! anywhere (from inside its tasks too), until the set is closed.
//!
//! A spawner is the set's group and its shared table: everything a spawn
//! needs, and nothing that `join` needs (`join` keeps the outcomes, behind
//! `&mut TaskSet`). A spawner holds no guard, so `join` waits for tasks,
//! never for spawners.

use std::borrow::Cow;
use std::fmt;
use std::future::Future;
use std::panic::Location;
use std::sync::Arc;

use smol::{Executor, LocalExecutor};

use super::error::TrySpawnError;
#[cfg(doc)]
use super::error::{TaskError, TaskSetClosed};
use super::futures::{Reserve, Spawn, SpawnBlocking, SpawnLocal, Track};
use super::permit::{Limit, Permit};
use super::slot::Shared;
#[cfg(doc)]
use super::TaskSet;
use crate::group::{Closed, Group, Guard};
use crate::shutdown::Shutdown;

/// A cloneable handle that spawns tasks into a [`TaskSet`] until the set is
/// closed: Go's `g.Go` from inside a goroutine (recursive fan-out).
///
/// Made by [`TaskSet::spawner`]. `Send + Sync` (when `T` and `E` are
/// `Send`) and `'static`: move a clone into each task. Its spawns obey the
/// set's limit, take names and record the caller's line, as the set's own.
///
/// **When it is closed.** Unlike the set's own spawn methods, which fail
/// once [`join`](TaskSet::join) has been called, a spawner keeps adding
/// tasks while a `join` waits, as long as a task of the set is still
/// running: as Go's `g.Go` from inside a goroutine works while `g.Wait`
/// waits (a `WaitGroup.Add` while the counter is above zero). A task that
/// spawns is still running when it spawns, so `join` waits for its
/// children too, however deep the recursion goes. Once the set has drained
/// after a join, or after [`abort`](TaskSet::abort), every spawn fails with
/// [`TaskSetClosed`] ([`TrySpawnError::Closed`]).
///
/// **A limit and recursion.** A task that waits in
/// [`spawn`](Self::spawn) for a free slot holds its own: if every running
/// task does, none can finish (Go's `SetLimit` with a recursive `Go` has the
/// same trap). Under a limit, spawn children with
/// [`try_spawn`](Self::try_spawn) and do the work inline when it says
/// [`TrySpawnError::Full`].
///
/// **`join` waits for tasks, not for spawners**: a spawner that outlives the
/// join (kept in a struct, say) does not keep it waiting; it can spawn
/// nothing afterwards.
///
/// # Examples
///
/// A crawler: each page task adds a task per link it finds.
///
/// ```
/// use std::sync::Arc;
/// use smol::Executor;
/// use smol_graceful::{Spawner, TaskSet};
///
/// fn crawl(
///     ex: Arc<Executor<'static>>,
///     spawner: Spawner<u32, String>,
///     page: u32,
/// ) -> impl std::future::Future<Output = Result<u32, String>> + Send + 'static {
///     async move {
///         for link in [page * 2, page * 2 + 1].into_iter().filter(|&l| l < 16) {
///             let child = crawl(ex.clone(), spawner.clone(), link);
///             spawner.spawn(&ex, Box::pin(child)).await.map_err(|e| e.to_string())?;
///         }
///         Ok(page)
///     }
/// }
///
/// let ex = Arc::new(Executor::new());
/// let mut set = TaskSet::new();
/// smol::block_on(ex.run(async {
///     let root = crawl(ex.clone(), set.spawner(), 1);
///     set.spawn(&ex, root).await.unwrap();
///     let mut pages = set.join().await.unwrap();
///     pages.sort();
///     assert_eq!(pages, (1..16).collect::<Vec<_>>());
/// }));
/// ```
pub struct Spawner<T, E> {
    pub(super) group: Group,
    /// A std `Arc`: task sets are never built under loom.
    pub(super) shared: Arc<Shared<T, E>>,
    /// True for the set's own spawner, which takes no task once `join` was
    /// called; false for the ones [`TaskSet::spawner`] hands out, which
    /// take tasks while one still runs (invariant 6 of `slot.rs`).
    pub(super) strict: bool,
}

impl<T, E> Clone for Spawner<T, E> {
    fn clone(&self) -> Spawner<T, E> {
        Spawner {
            group: self.group.clone(),
            shared: Arc::clone(&self.shared),
            strict: self.strict,
        }
    }
}

impl<T, E> fmt::Debug for Spawner<T, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Spawner")
            .field("len", &self.group.len())
            .field("closed", &self.group.is_closed())
            .finish_non_exhaustive()
    }
}

impl<T, E> Spawner<T, E> {
    /// The set's [`Shutdown`] ([`TaskSet::shutdown`]).
    ///
    /// # Examples
    ///
    /// ```
    /// let set = smol_graceful::TaskSet::<(), String>::new();
    /// set.spawner().shutdown().trigger();
    /// assert!(set.shutdown().is_triggered());
    /// ```
    pub fn shutdown(&self) -> &Shutdown {
        &self.shared.shutdown
    }

    /// True once this spawner can add no more tasks: the set was aborted, or
    /// a join was called and no task of the set is still running.
    ///
    /// # Examples
    ///
    /// ```
    /// let mut set = smol_graceful::TaskSet::<(), String>::new();
    /// let spawner = set.spawner();
    /// drop(set.join()); // closes the set, even unpolled
    /// assert!(spawner.is_closed());
    /// ```
    pub fn is_closed(&self) -> bool {
        self.group.is_closed()
            && (self.strict || self.shared.abort.is_aborted() || self.shared.len() == 0)
    }

    /// A guard for a new task: from the group while it is open; after a
    /// join closed it, a clone of the anchor while a task still runs
    /// (invariant 6 of `slot.rs`), unless this is the set's own spawner.
    pub(super) fn add_guard(&self) -> Result<Guard, Closed> {
        match self.group.add() {
            Ok(guard) => Ok(guard),
            Err(closed) if self.strict => Err(closed),
            Err(closed) => self.shared.anchor_guard().ok_or(closed),
        }
    }

    /// [`TaskSet::reserve`], from a spawner.
    ///
    /// # Errors
    ///
    /// [`TaskSetClosed`] once the set is closed.
    ///
    /// # Cancel safety
    ///
    /// Cancel-safe: dropping it before it resolves takes no slot.
    ///
    /// # Examples
    ///
    /// ```
    /// let set = smol_graceful::TaskSet::<(), String>::new();
    /// let spawner = set.spawner();
    /// # smol::block_on(async {
    /// let _task = spawner.reserve().await.unwrap().named("a").track(async { Ok(()) });
    /// assert_eq!(set.stragglers().names(), ["a"]);
    /// # });
    /// ```
    pub fn reserve(&self) -> Reserve<'_, T, E> {
        Reserve::new(self, self.shared.limit.as_ref().map(Limit::acquire))
    }

    /// [`TaskSet::try_reserve`], from a spawner.
    ///
    /// # Errors
    ///
    /// [`TrySpawnError::Full`] at the limit, [`TrySpawnError::Closed`] once
    /// the set is closed.
    ///
    /// # Examples
    ///
    /// ```
    /// use smol_graceful::{TaskSet, TrySpawnError};
    ///
    /// let set = TaskSet::<(), String>::new().with_limit(1);
    /// let spawner = set.spawner();
    /// let permit = spawner.try_reserve().unwrap();
    /// assert_eq!(set.try_reserve().unwrap_err(), TrySpawnError::Full);
    /// # drop(permit);
    /// ```
    pub fn try_reserve(&self) -> Result<Permit<'_, T, E>, TrySpawnError> {
        if self.is_closed() {
            return Err(TrySpawnError::Closed);
        }
        let permit = match &self.shared.limit {
            None => None,
            Some(limit) => Some(limit.try_acquire().ok_or(TrySpawnError::Full)?),
        };
        // The group may close between the check and here: then this fails.
        let guard = self.add_guard()?;
        Ok(Permit::new(self, permit, guard))
    }
}

impl<T, E: fmt::Display> Spawner<T, E> {
    /// [`TaskSet::spawn`], from a spawner.
    ///
    /// # Errors
    ///
    /// [`TaskSetClosed`] once the set is closed; `future` is dropped.
    ///
    /// # Cancel safety
    ///
    /// Cancel-safe: dropped before it resolves, it spawns nothing.
    ///
    /// # Examples
    ///
    /// See the [type docs](Self).
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
        Spawn::new(self, None, executor, future)
    }

    /// [`TaskSet::spawn_named`], from a spawner.
    ///
    /// # Errors
    ///
    /// [`TaskSetClosed`] once the set is closed; `future` is dropped.
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
    /// let spawner = set.spawner();
    /// smol::block_on(ex.run(async {
    ///     spawner.spawn_named("fetch", &ex, async { Err("404") }).await.unwrap();
    ///     assert_eq!(set.join().await.unwrap_err().task(), "fetch");
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
        Spawn::new(self, Some(name.into()), executor, future)
    }

    /// [`TaskSet::spawn_with`], from a spawner.
    ///
    /// # Errors
    ///
    /// [`TaskSetClosed`] once the set is closed; the future is dropped.
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
    /// let mut set = TaskSet::new();
    /// let spawner = set.spawner();
    /// smol::block_on(ex.run(async {
    ///     spawner
    ///         .spawn_with(&ex, |shutdown| async move {
    ///             shutdown.triggered().await;
    ///             Ok::<_, String>("stopped")
    ///         })
    ///         .await
    ///         .unwrap();
    ///     set.shutdown().trigger();
    ///     assert_eq!(set.join().await.unwrap(), ["stopped"]);
    /// }));
    /// ```
    #[track_caller]
    pub fn spawn_with<'s, 'a, W, F>(
        &'s self,
        executor: &'s Executor<'a>,
        make: W,
    ) -> Spawn<'s, 'a, F, T, E>
    where
        W: FnOnce(Shutdown) -> F,
        F: Future<Output = Result<T, E>> + Send + 'a,
        T: Send + 'a,
        E: Send + 'a,
    {
        Spawn::new(self, None, executor, make(self.shared.shutdown.clone()))
    }

    /// [`TaskSet::spawn_local`], from a spawner.
    ///
    /// # Errors
    ///
    /// [`TaskSetClosed`] once the set is closed; `future` is dropped.
    ///
    /// # Cancel safety
    ///
    /// Cancel-safe, like [`spawn`](Self::spawn).
    ///
    /// # Examples
    ///
    /// ```
    /// use smol::LocalExecutor;
    /// use smol_graceful::TaskSet;
    ///
    /// let ex = LocalExecutor::new();
    /// let mut set = TaskSet::new();
    /// let spawner = set.spawner();
    /// let shared = std::rc::Rc::new(2); // !Send
    /// smol::block_on(ex.run(async {
    ///     spawner.spawn_local(&ex, async move { Ok::<_, String>(*shared) }).await.unwrap();
    ///     assert_eq!(set.join().await.unwrap(), [2]);
    /// }));
    /// ```
    #[track_caller]
    pub fn spawn_local<'s, 'a, F>(
        &'s self,
        executor: &'s LocalExecutor<'a>,
        future: F,
    ) -> SpawnLocal<'s, 'a, F, T, E>
    where
        F: Future<Output = Result<T, E>> + 'a,
        T: 'a,
        E: 'a,
    {
        SpawnLocal::new(self, executor, future)
    }

    /// [`TaskSet::try_spawn`], from a spawner.
    ///
    /// # Errors
    ///
    /// [`TrySpawnError::Full`] at the limit, [`TrySpawnError::Closed`] once
    /// the set is closed; `future` is dropped unspawned.
    ///
    /// # Examples
    ///
    /// ```
    /// use smol::Executor;
    /// use smol_graceful::{TaskSet, TrySpawnError};
    ///
    /// let ex = Executor::new();
    /// let mut set = TaskSet::new();
    /// let spawner = set.spawner();
    /// spawner.try_spawn(&ex, async { Ok::<_, String>(1) }).unwrap();
    /// smol::block_on(ex.run(async { assert_eq!(set.join().await.unwrap(), [1]) }));
    /// let late = spawner.try_spawn(&ex, async { Ok(2) });
    /// assert_eq!(late, Err(TrySpawnError::Closed));
    /// ```
    #[track_caller]
    pub fn try_spawn<'a, F>(&self, executor: &Executor<'a>, future: F) -> Result<(), TrySpawnError>
    where
        F: Future<Output = Result<T, E>> + Send + 'a,
        T: Send + 'a,
        E: Send + 'a,
    {
        let permit = self.try_reserve()?;
        permit.spawn_at(executor, future, Location::caller());
        Ok(())
    }

    /// [`TaskSet::try_spawn_named`], from a spawner.
    ///
    /// # Errors
    ///
    /// As [`try_spawn`](Self::try_spawn).
    ///
    /// # Examples
    ///
    /// ```
    /// use smol::Executor;
    /// use smol_graceful::TaskSet;
    ///
    /// let ex = Executor::new();
    /// let set = TaskSet::<(), String>::new();
    /// let spawner = set.spawner();
    /// spawner.try_spawn_named("poller", &ex, std::future::pending()).unwrap();
    /// assert_eq!(set.stragglers().names(), ["poller"]);
    /// ```
    #[track_caller]
    pub fn try_spawn_named<'a, F>(
        &self,
        name: impl Into<Cow<'static, str>>,
        executor: &Executor<'a>,
        future: F,
    ) -> Result<(), TrySpawnError>
    where
        F: Future<Output = Result<T, E>> + Send + 'a,
        T: Send + 'a,
        E: Send + 'a,
    {
        let permit = self.try_reserve()?.named(name);
        permit.spawn_at(executor, future, Location::caller());
        Ok(())
    }

    /// [`TaskSet::track`], from a spawner.
    ///
    /// # Errors
    ///
    /// [`TaskSetClosed`] once the set is closed; `future` is dropped.
    ///
    /// # Cancel safety
    ///
    /// Cancel-safe: dropped before it resolves, it makes no task.
    ///
    /// # Examples
    ///
    /// ```
    /// use smol_graceful::TaskSet;
    ///
    /// # smol::block_on(async {
    /// let mut set = TaskSet::new();
    /// let spawner = set.spawner();
    /// let task = spawner.track(async { Ok::<_, String>(3) }).await.unwrap();
    /// smol::spawn(task).detach();
    /// assert_eq!(set.join().await.unwrap(), [3]);
    /// # });
    /// ```
    #[track_caller]
    pub fn track<F>(&self, future: F) -> Track<'_, F, T, E>
    where
        F: Future<Output = Result<T, E>>,
    {
        Track::new(self, future)
    }

    /// [`TaskSet::spawn_blocking`], from a spawner.
    ///
    /// # Errors
    ///
    /// [`TaskSetClosed`] once the set is closed; `f` is dropped unrun.
    ///
    /// # Cancel safety
    ///
    /// Cancel-safe: dropped before it resolves, it starts nothing.
    ///
    /// # Examples
    ///
    /// ```
    /// # smol::block_on(async {
    /// let mut set = smol_graceful::TaskSet::<u8, String>::new();
    /// set.spawner().spawn_blocking(|| Ok(4)).await.unwrap();
    /// assert_eq!(set.join().await.unwrap(), [4]);
    /// # });
    /// ```
    #[track_caller]
    pub fn spawn_blocking<B>(&self, f: B) -> SpawnBlocking<'_, B, T, E>
    where
        B: FnOnce() -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: Send + 'static,
    {
        SpawnBlocking::new(self, None, f)
    }

    /// [`TaskSet::spawn_blocking_named`], from a spawner.
    ///
    /// # Errors
    ///
    /// [`TaskSetClosed`] once the set is closed; `f` is dropped unrun.
    ///
    /// # Cancel safety
    ///
    /// Cancel-safe, like [`spawn_blocking`](Self::spawn_blocking).
    ///
    /// # Examples
    ///
    /// ```
    /// # smol::block_on(async {
    /// let mut set = smol_graceful::TaskSet::<(), &str>::new();
    /// set.spawner().spawn_blocking_named("fsync", || Err("EIO")).await.unwrap();
    /// assert_eq!(set.join().await.unwrap_err().task(), "fsync");
    /// # });
    /// ```
    #[track_caller]
    pub fn spawn_blocking_named<B>(
        &self,
        name: impl Into<Cow<'static, str>>,
        f: B,
    ) -> SpawnBlocking<'_, B, T, E>
    where
        B: FnOnce() -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: Send + 'static,
    {
        SpawnBlocking::new(self, Some(name.into()), f)
    }
}
