//! [`Shutdown`], a broadcast "please stop" signal with child scopes, its
//! [`Triggered`] future and the [`Reason`] it carries.
//!
//! Each scope is a node of a tree (`shutdown/tree.rs`): a child holds its
//! parent, a parent holds its children weakly, and a trigger walks the
//! subtree with an explicit stack, closing each node's `async_channel` (one
//! that never carries a message, made only once somebody waits). Closing a
//! channel wakes every receiver at once, so a waiter watches exactly one
//! channel however deep the hierarchy is.

mod tree;

use std::convert::Infallible;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use async_channel::Recv;
use pin_project_lite::pin_project;

use crate::sync::Arc;
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
            let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                if let Some(reason) = self.reason() {
                    log::debug!("shutdown triggered: {reason}");
                }
            }));
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
    /// be made afresh in every turn of a loop.
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
        Triggered {
            node: &self.node,
            recv: None,
        }
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
        RunUntilTriggered {
            triggered: self.triggered(),
            future,
        }
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
    /// - Memory: a live child costs about 180 bytes (its node, and its slot
    ///   in the parent) until somebody waits on it; the first
    ///   [`triggered`](Self::triggered) future that has to wait adds its
    ///   channel, about 900 bytes. Dropping the last handle of a scope
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
}

impl fmt::Debug for Shutdown {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Shutdown")
            .field("reason", &self.reason())
            .finish_non_exhaustive()
    }
}

/// Why a [`Shutdown`] was triggered.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum Reason {
    /// An OS signal arrived; holds its number (2 for SIGINT, 15 for SIGTERM;
    /// Ctrl-C on Windows is reported as 2).
    Signal(i32),
    /// [`Shutdown::trigger`] was called.
    Requested,
    /// The work this shutdown scoped has finished: a `TaskSet`'s `join`
    /// returned (as Go's `errgroup.WithContext` cancels its context when
    /// `Wait` returns).
    Finished,
    /// A task failed; holds its error.
    Error(std::sync::Arc<dyn std::error::Error + Send + Sync + 'static>),
}

impl Reason {
    /// A [`Reason::Error`] from an error value or a message.
    ///
    /// # Examples
    ///
    /// ```
    /// let reason = smol_graceful::Reason::error("disk full");
    /// assert_eq!(reason.to_string(), "error: disk full");
    /// ```
    pub fn error(error: impl Into<Box<dyn std::error::Error + Send + Sync + 'static>>) -> Reason {
        Reason::Error(std::sync::Arc::from(error.into()))
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reason::Signal(2) => f.write_str("signal SIGINT"),
            Reason::Signal(15) => f.write_str("signal SIGTERM"),
            Reason::Signal(signo) => write!(f, "signal {signo}"),
            Reason::Requested => f.write_str("requested"),
            Reason::Finished => f.write_str("finished"),
            Reason::Error(error) => write!(f, "error: {error}"),
        }
    }
}

pin_project! {
    /// Future of [`Shutdown::triggered`]: ready once the shutdown has been
    /// triggered.
    #[must_use = "futures do nothing unless polled"]
    pub struct Triggered<'a> {
        node: &'a Node,
        // `None` until the first poll finds the shutdown not yet triggered:
        // a future that is ready at once never makes a channel.
        #[pin]
        recv: Option<Recv<'a, Infallible>>,
    }
}

impl Future for Triggered<'_> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let mut this = self.project();
        if this.recv.is_none() {
            if this.node.is_triggered() {
                return Poll::Ready(());
            }
            match this.node.receiver() {
                Some(receiver) => this.recv.set(Some(receiver.recv())),
                None => return Poll::Ready(()),
            }
        }
        let Some(recv) = this.recv.as_pin_mut() else {
            unreachable!("set above")
        };
        // The channel never carries a message, so the only way `recv`
        // finishes is with the error that says it was closed.
        match std::task::ready!(recv.poll(cx)) {
            Ok(never) => match never {},
            Err(_closed) => Poll::Ready(()),
        }
    }
}

impl fmt::Debug for Triggered<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Triggered").finish_non_exhaustive()
    }
}

pin_project! {
    /// Future of [`Shutdown::run_until_triggered`].
    #[must_use = "futures do nothing unless polled"]
    pub struct RunUntilTriggered<'a, F> {
        #[pin]
        triggered: Triggered<'a>,
        #[pin]
        future: F,
    }
}

impl<F: Future> Future for RunUntilTriggered<'_, F> {
    type Output = Option<F::Output>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        // Biased: shutdown first, so a triggered shutdown never polls `future`.
        if this.triggered.poll(cx).is_ready() {
            return Poll::Ready(None);
        }
        this.future.poll(cx).map(Some)
    }
}

impl<F> fmt::Debug for RunUntilTriggered<'_, F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RunUntilTriggered").finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    //! Internals, with no optional feature; behaviour is tested in
    //! `tests/shutdown.rs`.

    use super::*;

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
