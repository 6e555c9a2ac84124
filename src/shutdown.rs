//! [`Shutdown`], a broadcast "please stop" signal with child scopes, its
//! [`Triggered`] future and the [`Reason`] it carries.
//!
//! Each `Shutdown` node owns an `async_channel` that never carries a message:
//! triggering closes it, which wakes every receiver at once. A parent keeps
//! its children weakly and closes their channels when it triggers, so a
//! waiter watches exactly one channel however deep the hierarchy is.

use std::convert::Infallible;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use async_channel::{Receiver, Recv, Sender};
use pin_project_lite::pin_project;

use crate::sync::{lock, Arc, Mutex, Weak};

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

struct Node {
    /// Never sends; held so the channel stays open until it is closed.
    _sender: Sender<Infallible>,
    /// Closed (by `trigger_with`) to broadcast the trigger.
    receiver: Receiver<Infallible>,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    /// `Some` once triggered; set under the lock together with closing the
    /// channel, so `is_triggered()` and `reason()` never disagree for long
    /// and `trigger` returns `true` exactly once.
    reason: Option<Reason>,
    /// Children to trigger with this node, held weakly so dropped children
    /// cost nothing. Dead entries are pruned as the list grows.
    children: Vec<Weak<Node>>,
}

impl Default for Node {
    fn default() -> Self {
        let (sender, receiver) = async_channel::bounded(1);
        Node {
            _sender: sender,
            receiver,
            state: Mutex::new(State::default()),
        }
    }
}

// Under loom, `sync::Arc` is a model that needs this (see `sync.rs`).
#[cfg(loom)]
impl crate::sync::LastRef for Node {}

impl Node {
    fn trigger_with(&self, reason: Reason) -> bool {
        let children = {
            let mut state = lock(&self.state);
            if state.reason.is_some() {
                return false;
            }
            state.reason = Some(reason.clone());
            // Closed under the lock: once a `trigger` has returned (true or
            // false), `is_triggered()` is true for everyone.
            self.receiver.close();
            std::mem::take(&mut state.children)
        };
        for child in children.iter().filter_map(Weak::upgrade) {
            // A child that triggered on its own keeps its own reason.
            child.trigger_with(reason.clone());
        }
        true
    }
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
        let triggered = self.node.trigger_with(reason);
        if triggered {
            log::debug!(
                "shutdown triggered: {}",
                self.reason().map_or_else(String::new, |r| r.to_string())
            );
        }
        triggered
    }

    /// True once the shutdown (or an ancestor) has been triggered.
    pub fn is_triggered(&self) -> bool {
        self.node.receiver.is_closed()
    }

    /// Why the shutdown was triggered, or `None` if it has not been.
    pub fn reason(&self) -> Option<Reason> {
        lock(&self.node.state).reason.clone()
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
            recv: self.node.receiver.recv(),
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
    /// A child made after this shutdown was triggered starts triggered.
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
        let child = Shutdown::new();
        let mut state = lock(&self.node.state);
        match &state.reason {
            Some(reason) => {
                let reason = reason.clone();
                drop(state);
                child.node.trigger_with(reason);
            }
            None => {
                if state.children.len() == state.children.capacity() {
                    // Amortized pruning: drop dead children before growing.
                    state.children.retain(|c| c.strong_count() > 0);
                }
                state.children.push(Arc::downgrade(&child.node));
            }
        }
        child
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
            Reason::Error(error) => write!(f, "error: {error}"),
        }
    }
}

pin_project! {
    /// Future of [`Shutdown::triggered`]: ready once the shutdown has been
    /// triggered.
    #[must_use = "futures do nothing unless polled"]
    pub struct Triggered<'a> {
        #[pin]
        recv: Recv<'a, Infallible>,
    }
}

impl Future for Triggered<'_> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        // The channel never carries a message, so the only way `recv`
        // finishes is with the error that says it was closed.
        match std::task::ready!(self.project().recv.poll(cx)) {
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
    fn dead_children_are_pruned_as_the_list_grows() {
        let root = Shutdown::new();
        for _ in 0..1000 {
            drop(root.child());
        }
        let len = lock(&root.node.state).children.len();
        assert!(len <= 64, "{len} weak children kept for 0 live ones");
    }

    #[test]
    fn triggering_takes_the_children_list() {
        let root = Shutdown::new();
        let child = root.child();
        assert_eq!(lock(&root.node.state).children.len(), 1);
        root.trigger();
        assert!(lock(&root.node.state).children.is_empty());
        assert!(child.is_triggered());
    }
}
