//! [`Shutdown`], a broadcast "please stop" signal with child scopes, its
//! [`Triggered`] future and the [`Reason`] it carries.
//!
//! Each scope is a node of a tree (`shutdown/tree.rs`): a child holds its
//! parent, a parent holds its children weakly, and a trigger walks the
//! subtree with an explicit stack, closing each node's `async_channel` (one
//! that never carries a message, made only once somebody waits). Closing a
//! channel wakes every receiver at once, so a waiter watches exactly one
//! channel however deep the hierarchy is.

mod callbacks;
mod drop_guard;
mod futures;
mod reason;
mod tree;

use std::fmt;
use std::future::Future;

use crate::sync::Arc;
pub use callbacks::AfterTrigger;
pub use drop_guard::DropGuard;
pub use futures::{RunUntilTriggered, Triggered, TriggeredOwned};
pub use reason::Reason;
use tree::Node;

/// A broadcast shutdown signal: trigger it once, and every clone and child
/// sees it.
///
/// Clones share one signal. [`child`](Self::child) makes a narrower scope
/// that is triggered when its parent is, or on its own, but never upward.
/// Tasks wait with [`triggered`](Self::triggered) (cheap to create inside a
/// loop) or wrap their work in [`run_until_triggered`](Self::run_until_triggered).
///
/// # Examples
///
/// ```
/// use smol_graceful::{Reason, Shutdown};
///
/// # smol::block_on(async {
/// let shutdown = Shutdown::new();
/// let worker = smol::spawn({
///     let shutdown = shutdown.clone();
///     async move {
///         let mut ticks = 0;
///         while !shutdown.is_triggered() {
///             ticks += 1;
///             smol::future::yield_now().await;
///         }
///         ticks
///     }
/// });
/// assert!(shutdown.trigger());
/// shutdown.triggered().await; // ready at once now
/// assert!(matches!(shutdown.reason(), Some(Reason::Requested)));
/// worker.await;
/// # });
/// ```
#[derive(Clone, Default)]
pub struct Shutdown {
    node: Arc<Node>,
}

impl Shutdown {
    /// Creates a signal that has not been triggered.
    pub fn new() -> Shutdown {
        Shutdown::default()
    }

    /// Triggers the shutdown with [`Reason::Requested`].
    ///
    /// Returns `true` if this call triggered it, `false` if it already was.
    ///
    /// # Examples
    ///
    /// ```
    /// let shutdown = smol_graceful::Shutdown::new();
    /// assert!(shutdown.trigger());
    /// assert!(!shutdown.trigger());
    /// ```
    pub fn trigger(&self) -> bool {
        self.trigger_with(Reason::Requested)
    }

    /// Triggers the shutdown, recording why. Its children are triggered with
    /// the same reason.
    ///
    /// Returns `true` if this call triggered it; if it was already triggered,
    /// the first reason stays and this returns `false`.
    ///
    /// The trigger is logged with `log::debug!` after it is complete; a
    /// panic while logging it (a logger, or the `Display` of the error in
    /// [`Reason::Error`]) is caught, so this never panics.
    ///
    /// # Examples
    ///
    /// ```
    /// use smol_graceful::{Reason, Shutdown};
    ///
    /// let shutdown = Shutdown::new();
    /// shutdown.trigger_with(Reason::error("database unreachable"));
    /// assert_eq!(shutdown.reason().unwrap().to_string(), "error: database unreachable");
    /// ```
    pub fn trigger_with(&self, reason: Reason) -> bool {
        let triggered = self.trigger_quietly(reason);
        if triggered {
            // The trigger is complete; neither a panicking logger nor an
            // error whose `Display` panics may turn it into a panic here.
            crate::panic::isolate(|| {
                if let Some(reason) = self.reason() {
                    log::debug!("shutdown triggered: {reason}");
                }
            });
        }
        triggered
    }

    /// [`trigger_with`](Self::trigger_with) without its log line, for
    /// callers that must not wait on a logger (the signal watcher logs on
    /// a thread of its own).
    pub(crate) fn trigger_quietly(&self, reason: Reason) -> bool {
        self.node.trigger(reason)
    }

    /// True once the shutdown (or an ancestor) has been triggered.
    ///
    /// Once it returns `true`, the calling thread sees everything the
    /// triggering thread wrote before its `trigger` call (a Release store
    /// read by an Acquire load), so data written before the trigger can be
    /// read without more synchronization.
    pub fn is_triggered(&self) -> bool {
        self.node.is_triggered()
    }

    /// Why the shutdown was triggered, or `None` if it has not been.
    pub fn reason(&self) -> Option<Reason> {
        self.node.reason()
    }

    /// A future that is ready once the shutdown has been triggered.
    ///
    /// Cheap to create: it allocates nothing until it has to wait, so it can
    /// be made afresh in every turn of a loop. Once it is ready, the task
    /// sees what the triggering thread wrote before the trigger, as after
    /// [`is_triggered`](Self::is_triggered) returned `true`.
    ///
    /// # Cancel safety
    ///
    /// Cancel-safe: dropping it loses nothing; a new one sees the trigger.
    ///
    /// # Examples
    ///
    /// ```
    /// use smol_graceful::Shutdown;
    ///
    /// # smol::block_on(async {
    /// let shutdown = Shutdown::new();
    /// let waiter = smol::spawn({
    ///     let shutdown = shutdown.clone();
    ///     async move { shutdown.triggered().await }
    /// });
    /// shutdown.trigger();
    /// waiter.await;
    /// # });
    /// ```
    pub fn triggered(&self) -> Triggered<'_> {
        Triggered::new(&self.node)
    }

    /// Runs `future` until it completes or the shutdown is triggered,
    /// whichever comes first: `Some(output)`, or `None` if shutdown won.
    ///
    /// Biased towards shutdown: the trigger is checked before each poll of
    /// `future`, so if the shutdown was already triggered, `future` is never
    /// polled. When shutdown wins, `future` is not polled again; it is
    /// dropped with the returned future.
    ///
    /// # Cancel safety
    ///
    /// As cancel-safe as `future` itself.
    ///
    /// # Examples
    ///
    /// ```
    /// use smol_graceful::Shutdown;
    ///
    /// # smol::block_on(async {
    /// let shutdown = Shutdown::new();
    /// assert_eq!(shutdown.run_until_triggered(async { 7 }).await, Some(7));
    /// shutdown.trigger();
    /// assert_eq!(shutdown.run_until_triggered(async { 7 }).await, None);
    /// # });
    /// ```
    pub fn run_until_triggered<F: Future>(&self, future: F) -> RunUntilTriggered<'_, F> {
        RunUntilTriggered::new(self.triggered(), future)
    }

    /// A `'static` future that is ready once the shutdown has been
    /// triggered: [`triggered`](Self::triggered) for a task that must own its
    /// stop signal (tokio's `cancelled_owned`). It holds a clone of this
    /// handle.
    ///
    /// # Cancel safety
    ///
    /// Cancel-safe, like [`triggered`](Self::triggered).
    ///
    /// # Examples
    ///
    /// ```
    /// use smol_graceful::Shutdown;
    ///
    /// # smol::block_on(async {
    /// let shutdown = Shutdown::new();
    /// let stopped = shutdown.triggered_owned(); // borrows nothing
    /// let waiter = smol::spawn(stopped);
    /// shutdown.trigger();
    /// waiter.await;
    /// # });
    /// ```
    pub fn triggered_owned(&self) -> TriggeredOwned {
        TriggeredOwned::new(Arc::clone(&self.node))
    }

    /// Turns this handle into a guard that triggers the shutdown when it is
    /// dropped, unless [`disarm`](DropGuard::disarm)ed first (tokio's
    /// `drop_guard`). The trigger's reason is [`Reason::GuardDropped`],
    /// whose `panicking` field says whether a panic unwinding dropped it.
    ///
    /// # Examples
    ///
    /// ```
    /// use smol_graceful::{Reason, Shutdown};
    ///
    /// let shutdown = Shutdown::new();
    /// let guard = shutdown.clone().drop_guard();
    /// drop(guard);
    /// assert!(matches!(shutdown.reason(), Some(Reason::GuardDropped { panicking: false })));
    ///
    /// let other = Shutdown::new();
    /// let guard = other.clone().drop_guard();
    /// let handle: Shutdown = guard.disarm(); // no trigger
    /// assert!(!handle.is_triggered());
    /// ```
    pub fn drop_guard(self) -> DropGuard {
        DropGuard::new(self)
    }

    /// Makes a child scope: triggered when this one is (with this one's
    /// reason), or on its own without affecting this one.
    ///
    /// What holds:
    ///
    /// - A live scope hears every trigger of every ancestor, whoever still
    ///   holds the scopes in between: a child keeps its parent's scope
    ///   alive (not the other way round), so a helper may make a scope and
    ///   return only its children. A scope triggered by an ancestor reports
    ///   the reason of the ancestor whose trigger reached it first.
    /// - A child made after this shutdown was triggered starts triggered.
    /// - When the [`trigger`](Self::trigger) call that triggered a scope
    ///   returns, every live descendant is triggered too.
    /// - Neither a trigger nor a drop recurses per level: chains tens of
    ///   thousands of scopes deep are fine on a small stack.
    /// - `child()` and a child's drop cost O(1) (amortized) however many
    ///   children are alive: each takes this scope's lock once, and a
    ///   trigger walks the live descendants once.
    /// - Memory: a live child costs about 85 bytes (its node, and its slot
    ///   in the parent) until somebody waits on it; the first
    ///   [`triggered`](Self::triggered) future that has to wait adds its
    ///   channel, about 920 bytes. Dropping the last handle of a scope
    ///   frees it once its own children are gone; nothing is leaked
    ///   whatever the order of the drops.
    ///
    /// # Examples
    ///
    /// ```
    /// use smol_graceful::Shutdown;
    ///
    /// let server = Shutdown::new();
    /// let connection = server.child();
    /// connection.trigger();
    /// assert!(!server.is_triggered()); // never upward
    ///
    /// let other = server.child();
    /// server.trigger();
    /// assert!(other.is_triggered()); // always downward
    /// ```
    pub fn child(&self) -> Shutdown {
        Shutdown {
            node: Node::child(&self.node),
        }
    }

    /// A [`child`](Self::child) that also triggers itself at `deadline`,
    /// with [`Reason::DeadlineExceeded`]: Go's `context.WithDeadline` (and,
    /// with `Instant::now() + timeout`, `WithTimeout`). Its ancestors'
    /// triggers still reach it; its deadline never triggers upward.
    ///
    /// The deadline is an async-io timer watched by a task on smol's global
    /// executor (feature `smol`), so it fires whatever executor the waiters
    /// run on. The task and its timer are released as soon as the scope
    /// triggers (by its deadline, an ancestor or itself) or is dropped.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    /// use smol_graceful::{Reason, Shutdown};
    ///
    /// # smol::block_on(async {
    /// let server = Shutdown::new();
    /// let request = server.child_with_deadline(Instant::now() + Duration::from_millis(10));
    /// request.triggered().await;
    /// assert!(matches!(request.reason(), Some(Reason::DeadlineExceeded)));
    /// assert!(!server.is_triggered()); // never upward
    /// # });
    /// ```
    #[cfg(feature = "smol")]
    pub fn child_with_deadline(&self, deadline: std::time::Instant) -> Shutdown {
        let child = self.child();
        let node = Arc::downgrade(&child.node);
        let timer = smol::spawn(async move {
            smol::Timer::at(deadline).await;
            if let Some(node) = node.upgrade() {
                node.trigger(Reason::DeadlineExceeded);
            }
        });
        // Dropped, which cancels the timer, when the scope triggers or is
        // dropped; at once if it has triggered already.
        drop(AfterTrigger::register(
            &child.node,
            Box::new(move || drop(timer)),
            true,
        ));
        child
    }

    /// Registers `callback` to run once, on a thread of its own, when this
    /// scope triggers (at once if it has): Go's `context.AfterFunc`. The
    /// returned handle's [`stop`](AfterTrigger::stop) prevents the run if
    /// it comes first; for every registration exactly one of "it ran" and
    /// "`stop` returned `true`" happens.
    ///
    /// Callbacks run after the trigger has taken effect and with no lock
    /// held, each on smol's blocking thread pool (feature `smol`) or a new
    /// thread: one that panics or blocks holds up neither the trigger nor
    /// the other callbacks. A callback registered on a scope runs when the
    /// scope triggers on its own or through an ancestor.
    ///
    /// # Examples
    ///
    /// ```
    /// use smol_graceful::Shutdown;
    ///
    /// let shutdown = Shutdown::new();
    /// let (closed, gone) = std::sync::mpsc::channel();
    /// shutdown.after_trigger(move || closed.send("close the listener").unwrap());
    /// shutdown.trigger();
    /// assert_eq!(gone.recv().unwrap(), "close the listener");
    /// ```
    pub fn after_trigger(&self, callback: impl FnOnce() + Send + 'static) -> AfterTrigger {
        AfterTrigger::register(&self.node, Box::new(callback), false)
    }
}

impl fmt::Debug for Shutdown {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Shutdown")
            .field("reason", &self.reason())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    //! Internals, with no optional feature; behaviour is tested in
    //! `tests/shutdown.rs`.

    use super::*;
    use std::pin::Pin;
    use std::task::{Context, Poll};

    #[test]
    fn dead_children_free_their_slots() {
        let root = Shutdown::new();
        let kept: Vec<Shutdown> = (0..100).map(|_| root.child()).collect();
        for _ in 0..1000 {
            drop(root.child());
        }
        assert_eq!(root.node.live_children(), (100, 101));
        drop(kept);
        assert_eq!(root.node.live_children(), (0, 0), "the slab is emptied");
    }

    #[test]
    fn a_dropped_middle_scope_frees_its_slot_when_its_last_child_goes() {
        let root = Shutdown::new();
        let grandchild = root.child().child();
        assert_eq!(root.node.live_children().0, 1, "the middle scope lives on");
        drop(grandchild);
        assert_eq!(root.node.live_children(), (0, 0));
    }

    #[test]
    fn a_channel_is_made_only_when_somebody_waits() {
        let shutdown = Shutdown::new();
        let ready = shutdown.child();
        ready.trigger();
        let mut wait = std::pin::pin!(ready.triggered());
        assert!(futures_lite_poll(wait.as_mut()).is_ready());
        assert!(!ready.node.has_channel());
        assert!(!shutdown.node.has_channel());
        let mut wait = std::pin::pin!(shutdown.triggered());
        assert!(futures_lite_poll(wait.as_mut()).is_pending());
        assert!(shutdown.node.has_channel());
    }

    fn futures_lite_poll<F: Future + ?Sized>(future: Pin<&mut F>) -> Poll<F::Output> {
        let waker = std::task::Waker::noop();
        future.poll(&mut Context::from_waker(waker))
    }
}
