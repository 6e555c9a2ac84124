//! [`Group::spawn`], [`Group::spawn_on`] and [`Group::spawn_local`]: track
//! and spawn in one call on smol's executors (feature `smol`).

use std::future::Future;

use smol::{Executor, LocalExecutor, Task};

use super::{Closed, Group};

impl Group {
    /// Spawns `future` on smol's global executor (as `smol::spawn` does),
    /// counted by this group until it completes or its [`Task`] is cancelled
    /// (dropped). `.detach()` the task to let it run on its own.
    ///
    /// This is `smol::spawn(group.track(future)?)`. To name it in straggler
    /// reports, track it with a named guard:
    /// `smol::spawn(group.add_named("flusher")?.track(future))`.
    ///
    /// # Errors
    ///
    /// [`Closed`] if the group has been closed; `future` is then dropped
    /// without being spawned.
    ///
    /// # Examples
    ///
    /// ```
    /// use smol_graceful::Group;
    ///
    /// # smol::block_on(async {
    /// let group = Group::new();
    /// let task = group.spawn(async { 40 + 2 })?;
    /// assert_eq!(task.await, 42);
    /// group.wait().await;
    /// # Ok::<(), smol_graceful::Closed>(())
    /// # }).unwrap();
    /// ```
    pub fn spawn<F>(&self, future: F) -> Result<Task<F::Output>, Closed>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        Ok(smol::spawn(self.track(future)?))
    }

    /// [`spawn`](Self::spawn) on `executor`.
    ///
    /// # Errors
    ///
    /// [`Closed`] if the group has been closed.
    ///
    /// # Examples
    ///
    /// ```
    /// use smol::Executor;
    /// use smol_graceful::Group;
    ///
    /// let ex = Executor::new();
    /// let group = Group::new();
    /// let task = group.spawn_on(&ex, async { 40 + 2 }).unwrap();
    /// smol::block_on(ex.run(async {
    ///     assert_eq!(task.await, 42);
    ///     group.wait().await;
    /// }));
    /// ```
    pub fn spawn_on<'a, F>(
        &self,
        executor: &Executor<'a>,
        future: F,
    ) -> Result<Task<F::Output>, Closed>
    where
        F: Future + Send + 'a,
        F::Output: Send + 'a,
    {
        Ok(executor.spawn(self.track(future)?))
    }

    /// [`spawn`](Self::spawn) on a [`LocalExecutor`]: the future need not
    /// be `Send`.
    ///
    /// # Errors
    ///
    /// [`Closed`] if the group has been closed.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::rc::Rc;
    /// use smol::LocalExecutor;
    /// use smol_graceful::Group;
    ///
    /// let ex = LocalExecutor::new();
    /// let group = Group::new();
    /// let local = Rc::new(1); // not Send
    /// let task = group.spawn_local(&ex, async move { *local + 1 }).unwrap();
    /// smol::block_on(ex.run(async {
    ///     assert_eq!(task.await, 2);
    ///     group.wait().await;
    /// }));
    /// ```
    pub fn spawn_local<'a, F>(
        &self,
        executor: &LocalExecutor<'a>,
        future: F,
    ) -> Result<Task<F::Output>, Closed>
    where
        F: Future + 'a,
        F::Output: 'a,
    {
        Ok(executor.spawn(self.track(future)?))
    }
}
