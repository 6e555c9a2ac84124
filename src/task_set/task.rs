//! [`TrackedTask`]: a task of a set as a plain future. Every way to start a
//! task runs its body inside one: it waits for its slot if it queued, polls
//! the body under `catch_unwind`, watches the abort flag, and hands the
//! outcome to its [`Slot`].

use std::fmt;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::task::{Context, Poll};

use pin_project_lite::pin_project;
use smol::future::{CatchUnwind, FutureExt as _};

use super::abort::AbortWatch;
use super::table::Slot;
#[cfg(doc)]
use super::{TaskError, TaskSet};
use crate::panic::isolate;

pin_project! {
    /// A task of a [`TaskSet`] as a plain future, for any runtime: waits for
    /// its slot in a limited set, polls the task's body, catches its panics
    /// and records its outcome in the set.
    ///
    /// Made by [`TaskSet::track`] and [`TaskBuilder::track`](super::TaskBuilder::track).
    /// Its output is `()`: the outcome goes to [`TaskSet::join`]. The task
    /// counts in the set from the moment this future is made until it
    /// completes or is dropped; dropped unfinished, the task ends as
    /// [`TaskError::Cancelled`]. After [`TaskSet::abort`], its next poll
    /// drops the body and completes, and the task ends as
    /// [`TaskError::Cancelled`] too.
    ///
    /// # Examples
    ///
    /// ```
    /// use smol_graceful::TaskSet;
    ///
    /// # smol::block_on(async {
    /// let mut set = TaskSet::new();
    /// let task = set.track(async { Ok::<_, String>("done") }).unwrap();
    /// task.await; // or hand it to any executor
    /// assert_eq!(set.join().await.unwrap(), ["done"]);
    /// # });
    /// ```
    #[must_use = "futures do nothing unless polled"]
    pub struct TrackedTask<F, T, E> {
        // `None` once the body finished or was dropped by an abort.
        #[pin]
        body: Option<CatchUnwind<AssertUnwindSafe<F>>>,
        slot: Option<Slot<T, E>>,
        // True while the task waits for a slot of its set's limit.
        queued: bool,
        watch: AbortWatch,
    }
}

impl<F: Future<Output = Result<T, E>>, T, E> TrackedTask<F, T, E> {
    pub(super) fn new(body: F, slot: Slot<T, E>, started: bool) -> TrackedTask<F, T, E> {
        TrackedTask {
            body: Some(AssertUnwindSafe(body).catch_unwind()),
            slot: Some(slot),
            queued: !started,
            watch: AbortWatch::default(),
        }
    }
}

impl<F: Future<Output = Result<T, E>>, T, E: fmt::Display> Future for TrackedTask<F, T, E> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let mut this = self.project();
        let (Some(slot), Some(body)) = (this.slot.as_ref(), this.body.as_mut().as_pin_mut()) else {
            return Poll::Ready(());
        };
        let mut aborted = slot.shared.abort.is_aborted();
        if !aborted && *this.queued {
            aborted = !std::task::ready!(slot.poll_start(cx));
            *this.queued = false;
        }
        if !aborted {
            if let Poll::Ready(caught) = body.poll(cx) {
                // The body's locals are gone; record its outcome.
                this.body.set(None);
                if let Some(slot) = this.slot.take() {
                    slot.finish(caught);
                }
                return Poll::Ready(());
            }
            if !this.watch.register(&slot.shared.abort, cx) {
                return Poll::Pending;
            }
        }
        // Aborted: cut at this poll. Drop the body (user code, isolated),
        // then the slot records the cancellation.
        isolate(|| this.body.set(None));
        drop(this.slot.take());
        Poll::Ready(())
    }
}

impl<F, T, E> fmt::Debug for TrackedTask<F, T, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TrackedTask")
            .field("finished", &self.slot.is_none())
            .field("queued", &self.queued)
            .finish_non_exhaustive()
    }
}
