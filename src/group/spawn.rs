//! [`Group::spawn`] and [`Group::spawn_local`]: track and spawn in one call on
//! smol's executors (feature `smol`).

use std::future::Future;

use smol::{Executor, LocalExecutor, Task};

use crate::group::{Closed, Group};

impl Group {
    /// Spawns `future` on `executor`, counted by this group until it
    /// completes or its [`Task`] is cancelled (dropped).
    ///
    /// This is `executor.spawn(group.track(future)?)`. For smol's global
    /// executor, write `smol::spawn(group.track(future)?)`.
    ///
    /// # Errors
    ///
    /// [`Closed`] if the group has been closed; `future` is then dropped
    /// without being spawned.
    ///
    /// # Examples
    ///
    /// ```
    /// use smol::Executor;
    /// use smol_graceful::Group;
    ///
    /// let ex = Executor::new();
    /// let group = Group::new();
    /// let task = group.spawn(&ex, async { 40 + 2 }).unwrap();
    /// smol::block_on(ex.run(async {
    ///     assert_eq!(task.await, 42);
    ///     group.wait().await;
    /// }));
    /// ```
    pub fn spawn<'a, F>(
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

    /// Spawns a `!Send` `future` on a [`LocalExecutor`], counted by this
    /// group until it completes or its [`Task`] is cancelled.
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
    /// let shared = Rc::new(5);
    /// group.spawn_local(&ex, async move { *shared * 2 }).unwrap().detach();
    /// smol::block_on(ex.run(group.wait()));
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
