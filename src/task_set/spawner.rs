//! [`Spawner`]: a cloneable, `'static` handle that tasks keep to start more
//! tasks of their set.

use std::fmt;
use std::future::Future;
use std::sync::Arc;

use super::builder::TaskBuilder;
use super::table::Shared;
#[cfg(doc)]
use super::TaskSet;
use crate::group::Closed;

/// A cloneable, `'static` handle to add tasks to a [`TaskSet`]: what a task
/// keeps to spawn more tasks (a crawler's fetch that finds links, a
/// connection that starts a helper), as Go's `g.Go` from inside a
/// goroutine. Made by [`TaskSet::spawner`].
///
/// It adds tasks while the set is open: until the set is dropped, aborted,
/// or joined and drained. While a [`join`](TaskSet::join) waits, a task
/// that is still counted can add more (so recursive fan-out is joined
/// whole); once a join has seen no task left, every spawner refuses with
/// [`Closed`]. In a limited set a spawned task that does not fit waits
/// inside the set: a task that spawns never waits, so no depth of recursion
/// can deadlock.
///
/// # Examples
///
/// A crawler under a limit: each page spawns its links, `join` collects
/// every page however deep the recursion goes.
///
/// ```
/// use smol_graceful::{Spawner, TaskSet};
///
/// fn visit(spawner: Spawner<u32, String>, page: u32) -> Result<(), smol_graceful::Closed> {
///     let next = spawner.clone();
///     spawner.spawn(async move {
///         for link in [page * 2 + 1, page * 2 + 2].into_iter().filter(|&l| l < 15) {
///             visit(next.clone(), link).map_err(|e| e.to_string())?;
///         }
///         Ok(page)
///     })
/// }
///
/// # smol::block_on(async {
/// let mut set = TaskSet::new().with_limit(2);
/// visit(set.spawner(), 0).unwrap();
/// let mut pages = set.join().await.unwrap();
/// pages.sort();
/// assert_eq!(pages, (0..15).collect::<Vec<_>>());
/// # });
/// ```
pub struct Spawner<T, E> {
    shared: Arc<Shared<T, E>>,
}

impl<T, E> Spawner<T, E> {
    pub(super) fn new(shared: Arc<Shared<T, E>>) -> Spawner<T, E> {
        Spawner { shared }
    }

    /// Starts `future` on smol's global executor; the same as
    /// [`TaskSet::spawn`].
    ///
    /// # Errors
    ///
    /// [`Closed`] once the set is closed.
    #[track_caller]
    pub fn spawn<F>(&self, future: F) -> Result<(), Closed>
    where
        F: Future<Output = Result<T, E>> + Send + 'static,
        T: Send + 'static,
        E: fmt::Display + Send + 'static,
    {
        self.build_task().spawn(future)
    }

    /// A [`TaskBuilder`] to name a task or start it elsewhere than on smol's
    /// global executor; the same as [`TaskSet::build_task`].
    pub fn build_task(&self) -> TaskBuilder<'_, T, E> {
        TaskBuilder::new(&self.shared)
    }

    /// True once the set takes no more tasks: it was dropped, aborted, or
    /// joined and drained.
    ///
    /// # Examples
    ///
    /// ```
    /// use smol_graceful::TaskSet;
    ///
    /// let set = TaskSet::<(), String>::new();
    /// let spawner = set.spawner();
    /// assert!(!spawner.is_closed());
    /// drop(set);
    /// assert!(spawner.is_closed());
    /// assert!(spawner.spawn(async { Ok(()) }).is_err());
    /// ```
    pub fn is_closed(&self) -> bool {
        self.shared.is_closed()
    }
}

impl<T, E> Clone for Spawner<T, E> {
    fn clone(&self) -> Spawner<T, E> {
        Spawner::new(Arc::clone(&self.shared))
    }
}

impl<T, E> fmt::Debug for Spawner<T, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Spawner")
            .field("closed", &self.is_closed())
            .finish_non_exhaustive()
    }
}
