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
        running: Option<Running<F, T, E>>,
        watch: AbortWatch,
    }
}

pin_project! {
    /// The body and its slot, in one `Option` whose `None` takes no room
    /// (it is a spare value of the slot's `queued`): the task's future is
    /// its body and three words, which keeps smol's allocation for it in a
    /// cheap size class.
    struct Running<F, T, E> {
        #[pin]
        body: CatchUnwind<AssertUnwindSafe<F>>,
        // Taken out to record the outcome once the body is dropped.
        slot: Option<Slot<T, E>>,
    }
}

impl<F: Future<Output = Result<T, E>>, T, E> TrackedTask<F, T, E> {
    pub(super) fn new(body: F, slot: Slot<T, E>) -> TrackedTask<F, T, E> {
        let (body, slot) = (AssertUnwindSafe(body).catch_unwind(), Some(slot));
        let (running, watch) = (Some(Running { body, slot }), AbortWatch::default());
        TrackedTask { running, watch }
    }
}

impl<F: Future<Output = Result<T, E>>, T, E: fmt::Display> Future for TrackedTask<F, T, E> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let mut this = self.project();
        let Some(running) = this.running.as_mut().as_pin_mut() else {
            return Poll::Ready(());
        };
        let running = running.project();
        let Some(slot) = running.slot.as_mut() else {
            return Poll::Ready(());
        };
        let mut aborted = slot.shared.abort.is_aborted();
        if !aborted && slot.queued {
            aborted = !std::task::ready!(slot.poll_start(cx));
            slot.queued = false;
        }
        let caught = match aborted {
            true => None,
            false => match running.body.poll(cx) {
                Poll::Ready(caught) => Some(caught),
                Poll::Pending if this.watch.register(&slot.shared.abort, cx) => None,
                Poll::Pending => return Poll::Pending,
            },
        };
        // The body goes first (user code, isolated), then the slot records
        // its outcome, or a cancellation if an abort cut it.
        let slot = running.slot.take();
        isolate(|| this.running.set(None));
        match (slot, caught) {
            (Some(slot), Some(caught)) => slot.finish(caught),
            (slot, _) => drop(slot),
        }
        Poll::Ready(())
    }
}

impl<F, T, E> fmt::Debug for TrackedTask<F, T, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let slot = self
            .running
            .as_ref()
            .and_then(|running| running.slot.as_ref());
        f.debug_struct("TrackedTask")
            .field("finished", &slot.is_none())
            .field("queued", &slot.is_some_and(|slot| slot.queued))
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use std::convert::Infallible;

    use crate::TaskSet;

    /// A task's future is its body and three words (`Running`'s docs say
    /// why that matters); this keeps it so.
    #[test]
    fn a_tracked_task_is_its_body_and_three_words() {
        let set = TaskSet::<u64, Infallible>::new();
        let index = std::hint::black_box(7_u64);
        let body = async move { Ok(std::future::ready(index).await) };
        let body_size = std::mem::size_of_val(&body);
        let task = set.track(body).unwrap();
        let overhead = std::mem::size_of_val(&task) - body_size;
        assert!(
            overhead <= 24,
            "a TrackedTask is {overhead} bytes over its body"
        );
    }
}
