//! [`Group::progress`]: a drain you can watch (feature `smol`).

use std::fmt;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use futures_core::Stream;
use smol::Timer;

use super::Group;
use crate::stragglers::Stragglers;

impl Group {
    /// A stream of [`Stragglers`] snapshots, one every `period`, that ends
    /// at the first tick finding the group empty: how a drain moves (how
    /// many are left, the oldest named ones with their age and call site),
    /// for a log line or a status each second. It neither closes the group
    /// nor waits for it: race it with [`wait_timeout`](Self::wait_timeout),
    /// which ends the drain.
    ///
    /// The ticks are async-io's timers, so the stream works under any
    /// executor.
    ///
    /// # Panics
    ///
    /// If `period` is zero (it would tick without pause).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use smol::stream::StreamExt as _;
    /// use smol_graceful::Group;
    ///
    /// # smol::block_on(async {
    /// let group = Group::new();
    /// let guard = group.add_named("connection 127.0.0.1:52666").unwrap();
    /// let mut progress = group.progress(Duration::from_millis(10));
    /// let left = progress.next().await.unwrap();
    /// assert_eq!(left.names(), ["connection 127.0.0.1:52666"]);
    /// drop(guard);
    /// assert!(progress.next().await.is_none()); // drained
    /// # });
    /// ```
    #[track_caller]
    pub fn progress(&self, period: Duration) -> Progress<'_> {
        assert!(
            !period.is_zero(),
            "Group::progress: a zero period would tick without pause"
        );
        Progress {
            group: self,
            period,
            timer: Timer::interval(period),
            done: false,
        }
    }
}

/// Stream of [`Group::progress`].
#[must_use = "streams do nothing unless polled"]
pub struct Progress<'g> {
    group: &'g Group,
    period: Duration,
    timer: Timer,
    done: bool,
}

impl Stream for Progress<'_> {
    type Item = Stragglers;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Stragglers>> {
        if self.done {
            return Poll::Ready(None);
        }
        if Pin::new(&mut self.timer).poll_next(cx).is_pending() {
            return Poll::Pending;
        }
        if self.group.is_empty() {
            self.done = true;
            return Poll::Ready(None);
        }
        Poll::Ready(Some(self.group.stragglers()))
    }
}

impl fmt::Debug for Progress<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Progress")
            .field("period", &self.period)
            .field("done", &self.done)
            .finish_non_exhaustive()
    }
}
