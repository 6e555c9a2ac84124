//! [`Group`], its RAII [`Guard`], the [`Closed`] error and the [`Tracked`]
//! future: the public face of the wait group.
//!
//! A group is a count of live guards and a way to wait for it to reach
//! zero. The count (`group/count.rs`) is the strong count of one `Arc`, so a
//! guard is a reference: dropping it is one decrement, and `add` takes no
//! lock and allocates nothing (it is a `Weak::upgrade`: a compare-and-swap
//! loop, plus a load). Waiting (`group/wait.rs`) closes the group, then
//! sleeps until the last reference's `Drop` marks it done and wakes every
//! waiter: the first async waiter through a slot that costs no allocation,
//! the others through an `event_listener::Event`. `group/spawn.rs` adds
//! spawning on smol's executors.

mod count;
#[cfg(feature = "smol")]
mod progress;
#[cfg(feature = "smol")]
mod spawn;
mod wait;

use std::borrow::Cow;
use std::fmt;
use std::future::Future;
use std::panic::Location;
use std::pin::Pin;
use std::task::{Context, Poll};
#[cfg(feature = "smol")]
use std::time::{Duration, Instant};

use pin_project_lite::pin_project;

use crate::stragglers::Stragglers;
use crate::sync::Arc;
use count::{check_count, Count, Token};
#[cfg(feature = "smol")]
pub use progress::Progress;
use wait::Shared;
#[cfg(feature = "smol")]
pub use wait::WaitTimeout;
pub use wait::{Wait, WaitOwned};

/// A wait group: counts running tasks with RAII [`Guard`]s and waits until
/// they are all gone.
///
/// Each task holds a [`Guard`] from [`add`](Self::add) (or runs inside
/// [`track`](Self::track) / [`spawn`], which hold one for it).
/// Dropping the guard, normally or by a panic unwinding, tells the group the
/// task is done. [`wait`](Self::wait) *closes* the group, so no new work can
/// join, and resolves once every guard is gone.
///
/// A group is one lifecycle: once closed it stays closed and
/// [`add`](Self::add) returns [`Err(Closed)`](Closed). Make a new group for
/// the next lifecycle; it is cheap. Cloning a `Group` gives another handle to
/// the same group. Dropping every handle while guards still live is fine: the
/// guards keep counting and nothing leaks.
///
/// The group knows nothing about executors: guards are `Send + Sync`, and the
/// wait futures are woken through their [`Waker`](std::task::Waker)s (or [`event_listener`]), so
/// any executor, or a plain thread with [`wait_blocking`](Self::wait_blocking),
/// can wait.
///
/// # Examples
///
/// ```
/// use smol_graceful::Group;
///
/// # smol::block_on(async {
/// let group = Group::new();
/// for i in 0..3 {
///     let guard = group.add()?;
///     smol::spawn(async move {
///         let _guard = guard; // dropped when the task ends
///         println!("task {i} done");
///     })
///     .detach();
/// }
/// group.wait().await; // closes the group, then waits for the three tasks
/// assert!(group.is_empty());
/// assert!(group.add().is_err());
/// # Ok::<(), smol_graceful::Closed>(())
/// # }).unwrap();
/// ```
///
/// # Compared with its peers
///
/// - Go's `sync.WaitGroup`: `Add`/`Done` become an RAII guard, so `Done` can
///   be neither forgotten nor called twice; `Add` after `Wait` started is an
///   error instead of a race; a group is never reused across lifecycles; and
///   [`wait_timeout`] names the tasks that did not finish.
/// - crossbeam's `WaitGroup`: the same RAII idea for threads, but waiting
///   consumes a handle and blocks a thread; here waiting is a future (or
///   blocking, if you prefer), several waiters are fine, and the group can
///   be closed against new work.
/// - tokio-util's `TaskTracker`: the closest peer (close, then wait). It
///   needs tokio for spawning and timers; this group works with any executor,
///   and adds named guards and straggler reports.
///
#[cfg_attr(feature = "smol", doc = "[`spawn`]: Self::spawn")]
#[cfg_attr(not(feature = "smol"), doc = "[`spawn`]: crate#features")]
#[cfg_attr(feature = "smol", doc = "[`wait_timeout`]: Self::wait_timeout")]
#[cfg_attr(not(feature = "smol"), doc = "[`wait_timeout`]: crate#features")]
#[derive(Clone)]
pub struct Group {
    handle: Arc<Handle>,
}

/// What every handle of one group shares. Dropping the last handle drops the
/// group's own reference to the root token, as closing does.
struct Handle {
    /// How many guards are alive, and whether the group is closed.
    count: Count,
    /// The state the waiters and named guards share with the root token
    /// (inline: one allocation fewer per group).
    shared: Shared,
}

// Under loom, `sync::Arc` is a model that needs this (see `sync.rs`).
#[cfg(loom)]
impl crate::sync::LastRef for Handle {}

impl Default for Group {
    fn default() -> Group {
        let handle = Arc::new_cyclic(|handle| Handle {
            count: Count::new(handle),
            shared: Shared::default(),
        });
        Group { handle }
    }
}

impl Group {
    /// Creates an open group with no guards.
    ///
    /// # Examples
    ///
    /// ```
    /// let group = smol_graceful::Group::new();
    /// assert!(group.is_empty());
    /// assert!(!group.is_closed());
    /// ```
    pub fn new() -> Group {
        Group::default()
    }

    /// Counts one more task: returns a [`Guard`] that counts it down when
    /// dropped.
    ///
    /// No lock and no allocation: a load of the closed flag, a
    /// `Weak::upgrade` (a load and a compare-and-swap loop, which retries
    /// while other threads change the count at the same moment) and a load
    /// of the count to guard against overflow. Uncontended, that costs about
    /// as much as an `Arc` clone; the crate's README has the measurements.
    ///
    /// # Errors
    ///
    /// [`Closed`] if the group has been closed ([`close`](Self::close),
    /// [`wait`](Self::wait) and friends close it).
    ///
    /// # Aborts
    ///
    /// More than `usize::MAX / 4` live guards abort the process, as `Arc`
    /// does on reference-count overflow (only leaked guards get there).
    ///
    /// # Examples
    ///
    /// ```
    /// let group = smol_graceful::Group::new();
    /// let guard = group.add().unwrap();
    /// assert_eq!(group.len(), 1);
    /// drop(guard);
    /// assert_eq!(group.len(), 0);
    /// ```
    #[inline]
    pub fn add(&self) -> Result<Guard, Closed> {
        self.handle.count.add().map(|token| Guard { token })
    }

    /// Counts one more task, like [`add`](Self::add), and lists it by name in
    /// [`Stragglers`] reports while it lives, with its age and the place
    /// `add_named` was called from.
    ///
    /// Named guards take a short lock and allocate a small record; anonymous
    /// ones do not pay for this.
    ///
    /// # Errors
    ///
    /// [`Closed`] if the group has been closed.
    ///
    /// # Examples
    ///
    /// ```
    /// let group = smol_graceful::Group::new();
    /// let _guard = group.add_named(format!("connection {}", 7)).unwrap();
    /// assert_eq!(group.stragglers().names(), ["connection 7"]);
    /// ```
    #[track_caller]
    pub fn add_named(&self, name: impl Into<Cow<'static, str>>) -> Result<Guard, Closed> {
        let location = Location::caller();
        let name = name.into();
        // Counted before it is registered (and, in `Token::last_ref`,
        // unregistered before it stops counting): no snapshot lists a guard
        // it does not count.
        let root = self.handle.count.add()?;
        let slot = self.handle.shared.registry.insert(name, location);
        Ok(Guard {
            token: Arc::new(Token::Named { root, slot }),
        })
    }

    /// Wraps `future` so that it holds a guard until it completes or is
    /// dropped.
    ///
    /// The result is an ordinary future: spawn it on any executor, or poll it
    /// yourself.
    ///
    /// # Errors
    ///
    /// [`Closed`] if the group has been closed.
    ///
    /// # Examples
    ///
    /// ```
    /// use smol_graceful::Group;
    ///
    /// # smol::block_on(async {
    /// let group = Group::new();
    /// let (go, gate) = smol::channel::bounded::<()>(1);
    /// let task = smol::spawn(group.track(async move { gate.recv().await.map(|()| 2) })?);
    /// assert_eq!(group.len(), 1); // counted until the future completes
    /// go.send(()).await.unwrap();
    /// assert_eq!(task.await, Ok(2));
    /// group.wait().await;
    /// # Ok::<(), smol_graceful::Closed>(())
    /// # }).unwrap();
    /// ```
    pub fn track<F: Future>(&self, future: F) -> Result<Tracked<F>, Closed> {
        Ok(self.add()?.track(future))
    }

    /// The number of live guards.
    ///
    /// Exact at the instant it is read, also while another thread closes
    /// the group (a closed group with no guards is `0`, never `1`); guards
    /// added or dropped on other threads can change it right after.
    ///
    /// # Examples
    ///
    /// ```
    /// let group = smol_graceful::Group::new();
    /// let a = group.add().unwrap();
    /// let _b = a.clone();
    /// assert_eq!(group.len(), 2);
    /// ```
    pub fn len(&self) -> usize {
        self.handle.count.len()
    }

    /// True if no guard is alive.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Closes the group: from now on [`add`](Self::add) and friends return
    /// [`Err(Closed)`](Closed). Live guards are not affected (and can still be
    /// cloned).
    ///
    /// Returns `true` if this call closed the group, `false` if it already
    /// was closed.
    ///
    /// # Examples
    ///
    /// ```
    /// let group = smol_graceful::Group::new();
    /// assert!(group.close());
    /// assert!(!group.close());
    /// assert!(group.add().is_err());
    /// ```
    #[inline]
    pub fn close(&self) -> bool {
        self.handle.count.close()
    }

    /// True once [`close`](Self::close) (or a wait) has been called.
    #[inline]
    pub fn is_closed(&self) -> bool {
        self.handle.count.is_closed()
    }

    /// Closes the group and waits until every guard is gone.
    ///
    /// The group is closed at the call, not at the first poll. The future is
    /// ready at once if no guard is alive; otherwise it resolves when the
    /// last guard drops. Any number of tasks may wait at the same time.
    ///
    /// Do not wait on a group from a task that holds one of its guards
    /// (including a future made by [`track`](Self::track) or
    /// [`spawn`] of the same group): that guard lives until the
    /// wait returns, so the wait never resolves. Drop the guard first, or
    /// wait from outside the group. [`wait_timeout`]
    /// gives up instead, and lists that guard among the stragglers.
    ///
    /// # Cancel safety
    ///
    /// Cancel-safe: dropping the future loses nothing, and calling `wait`
    /// again waits again (the group stays closed).
    ///
    /// # Examples
    ///
    /// ```
    /// use smol_graceful::Group;
    ///
    /// # smol::block_on(async {
    /// let group = Group::new();
    /// let guard = group.add().unwrap();
    /// let worker = smol::spawn(async move {
    ///     smol::Timer::after(std::time::Duration::from_millis(5)).await;
    ///     drop(guard);
    /// });
    /// group.wait().await;
    /// assert_eq!(group.len(), 0);
    /// # worker.await;
    /// # });
    /// ```
    ///
    #[cfg_attr(feature = "smol", doc = "[`spawn`]: Self::spawn")]
    #[cfg_attr(not(feature = "smol"), doc = "[`spawn`]: crate#features")]
    #[cfg_attr(feature = "smol", doc = "[`wait_timeout`]: Self::wait_timeout")]
    #[cfg_attr(not(feature = "smol"), doc = "[`wait_timeout`]: crate#features")]
    #[inline]
    pub fn wait(&self) -> Wait<'_> {
        self.close();
        Wait::new(&self.handle.shared)
    }

    /// [`wait`](Self::wait) as a `'static` future: it holds a clone of this
    /// handle, so a task can own it (tokio's `TaskTracker::wait` borrows
    /// too; this is the owned form). Closes the group at the call.
    ///
    /// # Cancel safety
    ///
    /// Cancel-safe, like [`wait`](Self::wait).
    ///
    /// # Examples
    ///
    /// ```
    /// use smol_graceful::Group;
    ///
    /// # smol::block_on(async {
    /// let group = Group::new();
    /// let guard = group.add().unwrap();
    /// let drained = smol::spawn(group.wait_owned()); // borrows nothing
    /// drop(guard);
    /// drained.await;
    /// assert!(group.is_closed() && group.is_empty());
    /// # });
    /// ```
    pub fn wait_owned(&self) -> WaitOwned {
        self.close();
        WaitOwned::new(self.clone())
    }

    /// Closes the group and blocks the current thread until every guard is
    /// gone: [`wait`](Self::wait) for plain threads.
    ///
    /// Do not call this on an executor thread that has to run the tasks you
    /// are waiting for, nor while this thread holds one of the group's
    /// guards: either way it never returns.
    ///
    /// # Examples
    ///
    /// ```
    /// let group = smol_graceful::Group::new();
    /// let guard = group.add().unwrap();
    /// std::thread::spawn(move || drop(guard));
    /// group.wait_blocking();
    /// assert!(group.is_empty());
    /// ```
    pub fn wait_blocking(&self) {
        self.close();
        self.handle.shared.wait_blocking();
    }

    /// Closes the group and blocks the current thread until every guard is
    /// gone or `timeout` has passed, whichever comes first.
    ///
    /// A guard the calling thread holds is still alive when the time runs
    /// out, so it is always among the stragglers (see [`wait`](Self::wait)).
    ///
    /// # Errors
    ///
    /// The [`Stragglers`] still alive when the time ran out.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// let group = smol_graceful::Group::new();
    /// let _stuck = group.add_named("stuck").unwrap();
    /// let err = group.wait_blocking_timeout(Duration::from_millis(1)).unwrap_err();
    /// assert_eq!(err.names(), ["stuck"]);
    /// ```
    pub fn wait_blocking_timeout(&self, timeout: std::time::Duration) -> Result<(), Stragglers> {
        let deadline = std::time::Instant::now().checked_add(timeout);
        self.close();
        if self.handle.shared.wait_blocking_until(deadline) {
            Ok(())
        } else {
            Err(self.stragglers())
        }
    }

    /// Closes the group and waits until every guard is gone or `timeout` has
    /// passed, whichever comes first. The clock starts at the call.
    ///
    /// Waiting from a task that holds one of the group's guards cannot
    /// succeed (see [`wait`](Self::wait)): that guard is still alive when the
    /// time runs out, and is reported among the stragglers.
    ///
    /// # Errors
    ///
    /// The [`Stragglers`] still alive when the time ran out: how many, and
    /// the names and ages of the named ones.
    ///
    /// # Cancel safety
    ///
    /// Cancel-safe, like [`wait`](Self::wait).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use smol_graceful::Group;
    ///
    /// # smol::block_on(async {
    /// let group = Group::new();
    /// let _flusher = group.add_named("flusher").unwrap();
    /// match group.wait_timeout(Duration::from_millis(20)).await {
    ///     Ok(()) => println!("all done"),
    ///     Err(stragglers) => eprintln!("gave up waiting: {stragglers}"),
    /// }
    /// # });
    /// ```
    #[cfg(feature = "smol")]
    #[inline]
    pub fn wait_timeout(&self, timeout: Duration) -> WaitTimeout<'_> {
        WaitTimeout::new(self, || Instant::now().checked_add(timeout))
    }

    /// Closes the group and waits until every guard is gone or `deadline`
    /// has come, whichever is first. A deadline already past answers at once.
    ///
    /// As with [`wait_timeout`](Self::wait_timeout), a guard held by the
    /// waiting task itself is always among the stragglers.
    ///
    /// # Errors
    ///
    /// The [`Stragglers`] still alive at the deadline.
    ///
    /// # Cancel safety
    ///
    /// Cancel-safe, like [`wait`](Self::wait).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Instant;
    /// use smol_graceful::Group;
    ///
    /// # smol::block_on(async {
    /// let group = Group::new();
    /// let _guard = group.add().unwrap();
    /// let stragglers = group.wait_deadline(Instant::now()).await.unwrap_err();
    /// assert_eq!(stragglers.count(), 1);
    /// # });
    /// ```
    #[cfg(feature = "smol")]
    #[inline]
    pub fn wait_deadline(&self, deadline: Instant) -> WaitTimeout<'_> {
        WaitTimeout::new(self, || Some(deadline))
    }

    /// A snapshot of the live guards: how many, and the named ones with
    /// their ages.
    ///
    /// # Examples
    ///
    /// ```
    /// let group = smol_graceful::Group::new();
    /// let _a = group.add_named("a").unwrap();
    /// let _b = group.add().unwrap();
    /// let report = group.stragglers();
    /// assert_eq!(report.count(), 2);
    /// assert_eq!(report.names(), ["a"]);
    /// ```
    pub fn stragglers(&self) -> Stragglers {
        self.handle.shared.registry.snapshot(|| self.len())
    }
}

impl fmt::Debug for Group {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Group")
            .field("len", &self.len())
            .field("closed", &self.is_closed())
            .finish_non_exhaustive()
    }
}

/// Proof that one task of a [`Group`] is still running; dropping it says the
/// task is done.
///
/// Made by [`Group::add`] and [`Group::add_named`]. Move it into the task it
/// counts. It is dropped when the task ends, also when it ends by panicking
/// and unwinding, or when its future is cancelled.
///
/// Cloning a guard counts one more task and works even after the group was
/// closed: a live guard proves the group is not done, so work derived from
/// tracked work stays tracked. The clone of a named guard is listed under the
/// same name, with its own age.
///
/// # Examples
///
/// ```
/// let group = smol_graceful::Group::new();
/// let guard = group.add().unwrap();
/// group.close();
/// let helper = guard.clone(); // fine after close
/// assert_eq!(group.len(), 2);
/// drop((guard, helper));
/// assert!(group.is_empty());
/// ```
#[must_use = "a guard counts a task only while it is alive; dropping it at once counts nothing"]
pub struct Guard {
    token: Arc<Token>,
}

impl Guard {
    /// Wraps `future` so that it holds this guard until it completes or is
    /// dropped: with [`Group::add_named`], a named tracked future in one
    /// call. Works after the group was closed, for work derived from a task
    /// that already holds a guard.
    ///
    /// # Examples
    ///
    /// ```
    /// use smol_graceful::Group;
    ///
    /// # smol::block_on(async {
    /// let group = Group::new();
    /// let (go, gate) = smol::channel::bounded::<()>(1);
    /// let flusher = smol::spawn(group.add_named("flusher")?.track(async move { gate.recv().await }));
    /// assert_eq!(group.stragglers().names(), ["flusher"]);
    /// go.send(()).await.unwrap();
    /// assert_eq!(flusher.await, Ok(()));
    /// group.wait().await;
    /// # Ok::<(), smol_graceful::Closed>(())
    /// # }).unwrap();
    /// ```
    pub fn track<F: Future>(self, future: F) -> Tracked<F> {
        Tracked {
            future,
            guard: Some(self),
        }
    }

    /// True if the guard was made by [`Group::add_named`] (or cloned from
    /// such a guard), so it is listed by name in [`Stragglers`].
    pub fn is_named(&self) -> bool {
        matches!(*self.token, Token::Named { .. })
    }
}

impl Clone for Guard {
    fn clone(&self) -> Guard {
        match &*self.token {
            Token::Root(_) => {
                let token = Arc::clone(&self.token);
                check_count(&token);
                Guard { token }
            }
            Token::Named { root, slot } => {
                let root = Arc::clone(root);
                check_count(&root);
                // Every handle gone means no registry and nobody to report
                // to: the clone still counts, unlisted. A failed upgrade
                // never succeeds later, so its drop will not look up `slot`.
                let slot = match root.handle() {
                    Some(handle) => handle.shared.registry.duplicate(*slot),
                    None => usize::MAX,
                };
                Guard {
                    token: Arc::new(Token::Named { root, slot }),
                }
            }
        }
    }
}

impl fmt::Debug for Guard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Guard")
            .field("named", &self.is_named())
            .finish_non_exhaustive()
    }
}

/// The error of adding to a closed [`Group`], or of spawning on a closed
/// task set (feature `smol`).
///
/// It converts into [`std::io::Error`] (kind `Other`, with `Closed` as the
/// inner error), so `?` works in functions that return `io::Result`.
///
/// # Examples
///
/// ```
/// use smol_graceful::{Closed, Group};
///
/// fn start(group: &Group) -> std::io::Result<()> {
///     let _guard = group.add_named("worker")?;
///     Ok(())
/// }
///
/// let group = Group::new();
/// group.close();
/// assert_eq!(group.add().unwrap_err(), Closed);
/// assert_eq!(Closed.to_string(), "closed: it takes no new work");
/// let error = start(&group).unwrap_err();
/// assert!(error.get_ref().is_some_and(|inner| inner.is::<Closed>()));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Closed;

impl fmt::Display for Closed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("closed: it takes no new work")
    }
}

impl std::error::Error for Closed {}

impl From<Closed> for std::io::Error {
    fn from(closed: Closed) -> std::io::Error {
        std::io::Error::other(closed)
    }
}

pin_project! {
    /// A future that holds a [`Guard`] until it completes or is dropped.
    /// Made by [`Group::track`] and [`Guard::track`].
    #[must_use = "futures do nothing unless polled"]
    pub struct Tracked<F> {
        #[pin]
        future: F,
        guard: Option<Guard>,
    }
}

impl<F: Future> Future for Tracked<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.project();
        let output = std::task::ready!(this.future.poll(cx));
        // Done: uncount now rather than when the executor drops the future.
        this.guard.take();
        Poll::Ready(output)
    }
}

impl<F> fmt::Debug for Tracked<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Tracked")
            .field("guard", &self.guard)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    //! Internals, with no optional feature (CI runs these with
    //! `--no-default-features`); behaviour is tested in `tests/group.rs`.

    use super::*;

    #[test]
    fn named_guards_unregister_when_dropped_and_clones_register_anew() {
        let group = Group::new();
        let named = group.add_named("a").unwrap();
        let clone = named.clone();
        assert_eq!(group.stragglers().names(), ["a", "a"]);
        drop(named);
        assert_eq!(group.stragglers().names(), ["a"]);
        drop(clone);
        assert!(group.stragglers().named().is_empty());
    }
}
