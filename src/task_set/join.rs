//! How a [`TaskSet`] ends, and the futures that wait on it:
//! [`join`](TaskSet::join) (every result, spawn order),
//! [`join_timeout`](TaskSet::join_timeout), [`join_next`](TaskSet::join_next)
//! and the set as a [`Stream`] (completion order), and
//! [`ready`](TaskSet::ready) (room for one more task).

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use event_listener::EventListener;
use futures_core::Stream;
use smol::Timer;

use super::error::TaskError;
use super::table::{Next, Shared};
use super::TaskSet;
use crate::group::Closed;
use crate::shutdown::Reason;
use crate::stragglers::Stragglers;

/// Future of [`TaskSet::join`].
#[must_use = "futures do nothing unless polled"]
pub struct Join<'s, T, E> {
    pub(super) set: &'s Shared<T, E>,
}

impl<T, E> Future for Join<'_, T, E> {
    type Output = Result<Vec<T>, TaskError<E>>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let outcome = std::task::ready!(self.set.poll_join(cx));
        // The set is over: like errgroup's `WithContext` when `Wait`
        // returns, tell whatever still watches its shutdown. A failure that
        // triggered it first keeps its reason.
        self.set.shutdown.trigger_with(Reason::Finished);
        Poll::Ready(outcome)
    }
}

/// Future of [`TaskSet::join_timeout`].
#[must_use = "futures do nothing unless polled"]
pub struct JoinTimeout<'s, T, E> {
    pub(super) join: Join<'s, T, E>,
    pub(super) timer: Timer,
}

impl<T, E> Future for JoinTimeout<'_, T, E> {
    type Output = Result<Result<Vec<T>, TaskError<E>>, Stragglers>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        // Finished work wins over an expired timer: the table is the one
        // count, so a join that is not ready has a task to report.
        if let Poll::Ready(outcome) = Pin::new(&mut self.join).poll(cx) {
            return Poll::Ready(Ok(outcome));
        }
        std::task::ready!(Pin::new(&mut self.timer).poll(cx));
        Poll::Ready(Err(self.join.set.stragglers()))
    }
}

/// Future of [`TaskSet::join_next`].
#[must_use = "futures do nothing unless polled"]
pub struct JoinNext<'s, T, E> {
    pub(super) set: &'s Shared<T, E>,
}

impl<T, E> Future for JoinNext<'_, T, E> {
    type Output = Option<Next<T, E>>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.set.poll_next(cx)
    }
}

/// Future of [`TaskSet::ready`].
#[must_use = "futures do nothing unless polled"]
pub struct Ready<'s, T, E> {
    pub(super) set: &'s Shared<T, E>,
    pub(super) listener: Option<EventListener>,
}

impl<T, E> Future for Ready<'_, T, E> {
    type Output = Result<(), Closed>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        // Check, listen, check again, then wait: a slot freed between the
        // first check and `listen` is seen by the second check.
        while !self.set.has_room()? {
            match &mut self.listener {
                None => self.listener = Some(self.set.room.listen()),
                Some(listener) => {
                    std::task::ready!(Pin::new(listener).poll(cx));
                    self.listener = None;
                }
            }
        }
        Poll::Ready(Ok(()))
    }
}

impl<T, E> Stream for TaskSet<T, E> {
    type Item = Next<T, E>;

    /// [`join_next`](TaskSet::join_next) as a stream.
    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.shared.poll_next(cx)
    }
}

macro_rules! debug_future {
    ($($name:ident),*) => {$(
        impl<T, E> fmt::Debug for $name<'_, T, E> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_struct(stringify!($name)).finish_non_exhaustive()
            }
        }
    )*};
}
debug_future!(Join, JoinTimeout, JoinNext, Ready);
