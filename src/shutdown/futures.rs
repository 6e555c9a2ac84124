//! The futures of [`Shutdown`]: [`Triggered`] (borrowing), [`TriggeredOwned`]
//! (`'static`), and [`RunUntilTriggered`].

use std::convert::Infallible;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use async_channel::{Receiver, Recv};
use futures_core::Stream;
use pin_project_lite::pin_project;

use super::tree::Node;
#[cfg(doc)]
use super::Shutdown;
use crate::sync::Arc;

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

impl<'a> Triggered<'a> {
    pub(super) fn new(node: &'a Node) -> Triggered<'a> {
        Triggered { node, recv: None }
    }
}

impl<'a, F> RunUntilTriggered<'a, F> {
    pub(super) fn new(triggered: Triggered<'a>, future: F) -> RunUntilTriggered<'a, F> {
        RunUntilTriggered { triggered, future }
    }
}

pin_project! {
    /// Future of [`Shutdown::triggered_owned`]: ready once the shutdown has
    /// been triggered. It holds its own handle to the shutdown, so it is
    /// `'static`.
    #[must_use = "futures do nothing unless polled"]
    pub struct TriggeredOwned {
        node: Arc<Node>,
        // A receiver of the node's channel, cloned at the first poll that
        // has to wait (none for a future that is ready at once).
        #[pin]
        receiver: Option<Receiver<Infallible>>,
    }
}

impl TriggeredOwned {
    pub(super) fn new(node: Arc<Node>) -> TriggeredOwned {
        TriggeredOwned {
            node,
            receiver: None,
        }
    }
}

impl Future for TriggeredOwned {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let mut this = self.project();
        if this.receiver.is_none() {
            if this.node.is_triggered() {
                return Poll::Ready(());
            }
            match this.node.receiver() {
                Some(receiver) => this.receiver.set(Some(receiver.clone())),
                None => return Poll::Ready(()),
            }
        }
        let Some(receiver) = this.receiver.as_pin_mut() else {
            unreachable!("set above")
        };
        // No wakeup can be lost: the receiver was made (or found) while the
        // shutdown was not triggered, so the trigger closes it, and a closed
        // channel's stream ends. It never carries a message.
        match std::task::ready!(receiver.poll_next(cx)) {
            Some(never) => match never {},
            None => Poll::Ready(()),
        }
    }
}

impl fmt::Debug for TriggeredOwned {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TriggeredOwned")
            .field("triggered", &self.node.is_triggered())
            .finish_non_exhaustive()
    }
}
