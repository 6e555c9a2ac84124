//! The ways to add a task to a [`TaskSet`] that wait for a free slot
//! ([`spawn`](TaskSet::spawn) and its kin, [`track`](TaskSet::track),
//! [`spawn_blocking`](TaskSet::spawn_blocking)), and
//! [`try_spawn`](TaskSet::try_spawn), which does not: each is a
//! [`Permit`](super::Permit) used at once, and each is the same method of
//! the set's [`Spawner`], which [`spawner`](TaskSet::spawner) hands out.

use std::borrow::Cow;
use std::fmt;
use std::future::Future;

use smol::{Executor, LocalExecutor};

use super::error::TrySpawnError;
#[cfg(doc)]
use super::error::{TaskError, TaskSetClosed};
#[cfg(doc)]
use super::futures::TrackedTask;
use super::futures::{Spawn, SpawnBlocking, SpawnLocal, Track};
use super::spawner::Spawner;
use super::TaskSet;
use crate::shutdown::Shutdown;

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
    /// use smol::{Executor, LocalExecutor};
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
        self.spawner.spawn(executor, future)
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
    /// use smol::{Executor, LocalExecutor};
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
        self.spawner.spawn_named(name, executor, future)
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
    /// use smol::{Executor, LocalExecutor};
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
        self.spawner.try_spawn(executor, future)
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
        self.spawner.track(future)
    }

    /// Waits for a free slot, then runs the blocking closure `f` on smol's
    /// blocking thread pool ([`smol::unblock`]) as a task of this set.
    ///
    /// The task counts until `f` has returned on its thread, even if every
    /// async handle is gone, so the set never reports that it finished while
    /// a blocking thread still runs, and [`join_timeout`](Self::join_timeout)
    /// names it among the stragglers. A panic in `f` becomes
    /// [`TaskError::Panicked`]. The thread cannot be interrupted, not even
    /// by [`abort`](Self::abort): pass `f` a clone of
    /// [`shutdown`](Self::shutdown) and let it check
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
    /// set.spawn_blocking(|| Ok::<_, std::io::Error>(0xbeef)).await.unwrap();
    /// assert_eq!(set.join().await.unwrap(), [0xbeef]);
    /// # });
    /// ```
    #[track_caller]
    pub fn spawn_blocking<B>(&self, f: B) -> SpawnBlocking<'_, B, T, E>
    where
        B: FnOnce() -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: Send + 'static,
    {
        self.spawner.spawn_blocking(f)
    }

    /// [`spawn_blocking`](Self::spawn_blocking), with a name for errors and
    /// straggler reports.
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
    /// use smol_graceful::TaskSet;
    ///
    /// # smol::block_on(async {
    /// let mut set = TaskSet::<(), _>::new();
    /// set.spawn_blocking_named("checksum", || Err("mismatch")).await.unwrap();
    /// assert_eq!(set.join().await.unwrap_err().to_string(), "checksum failed: mismatch");
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
        self.spawner.spawn_blocking_named(name, f)
    }

    /// [`try_spawn`](Self::try_spawn), with a name for errors and straggler
    /// reports.
    ///
    /// # Errors
    ///
    /// As [`try_spawn`](Self::try_spawn); `future` is dropped unspawned.
    ///
    /// # Examples
    ///
    /// ```
    /// use smol::{Executor, LocalExecutor};
    /// use smol_graceful::TaskSet;
    ///
    /// let ex = Executor::new();
    /// let set = TaskSet::<(), String>::new();
    /// set.try_spawn_named("poller", &ex, std::future::pending()).unwrap();
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
        self.spawner.try_spawn_named(name, executor, future)
    }

    /// [`spawn`](Self::spawn), giving the task the set's
    /// [`shutdown`](Self::shutdown): `make` receives a clone and returns the
    /// task's future, so no clone line is needed.
    ///
    /// # Errors
    ///
    /// [`TaskSetClosed`] once the set is closed; the future is dropped.
    ///
    /// # Cancel safety
    ///
    /// Cancel-safe, like [`spawn`](Self::spawn). `make` runs at the call.
    ///
    /// # Examples
    ///
    /// ```
    /// use smol::{Executor, LocalExecutor};
    /// use smol_graceful::TaskSet;
    ///
    /// let ex = Executor::new();
    /// let mut set = TaskSet::new();
    /// smol::block_on(ex.run(async {
    ///     for id in 0..3 {
    ///         set.spawn_with(&ex, move |shutdown| async move {
    ///             shutdown.triggered().await;
    ///             Ok::<_, String>(id)
    ///         })
    ///         .await
    ///         .unwrap();
    ///     }
    ///     set.shutdown().trigger();
    ///     assert_eq!(set.join().await.unwrap(), [0, 1, 2]);
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
        self.spawner.spawn_with(executor, make)
    }

    /// Waits for a free slot, then spawns the `!Send` `future` on a
    /// [`LocalExecutor`] as a task of this set.
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
    /// use std::rc::Rc;
    /// use smol::LocalExecutor;
    /// use smol_graceful::TaskSet;
    ///
    /// let ex = LocalExecutor::new();
    /// let mut set = TaskSet::new();
    /// let name = Rc::new("local"); // !Send
    /// smol::block_on(ex.run(async {
    ///     set.spawn_local(&ex, async move { Ok::<_, String>(*name) }).await.unwrap();
    ///     assert_eq!(set.join().await.unwrap(), ["local"]);
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
        self.spawner.spawn_local(executor, future)
    }
}

impl<T, E> TaskSet<T, E> {
    /// A cloneable [`Spawner`] that adds tasks to this set from anywhere,
    /// from inside its own tasks too, until the set is closed.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::Arc;
    /// use smol::{Executor, LocalExecutor};
    /// use smol_graceful::TaskSet;
    ///
    /// let ex = Arc::new(Executor::new());
    /// let mut set = TaskSet::<u32, String>::new();
    /// let spawner = set.spawner();
    /// smol::block_on(ex.run(async {
    ///     let (ex2, spawner2) = (ex.clone(), spawner.clone());
    ///     set.spawn(&ex, async move {
    ///         spawner2.spawn(&ex2, async { Ok(2) }).await.map_err(|e| e.to_string())?;
    ///         Ok(1)
    ///     })
    ///     .await
    ///     .unwrap();
    ///     let mut all = set.join().await.unwrap();
    ///     all.sort();
    ///     assert_eq!(all, [1, 2]);
    ///     assert!(spawner.is_closed()); // kept alive, but the set is over
    ///     assert!(spawner.try_spawn(&ex, async { Ok(3) }).is_err());
    /// }));
    /// ```
    pub fn spawner(&self) -> Spawner<T, E> {
        Spawner {
            strict: false,
            ..self.spawner.clone()
        }
    }
}
