//! A waker that records whether it was woken, for tests whose names promise
//! a *wake*: they assert that the waker was woken, not only that a re-poll
//! is ready.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};

/// A waker and the flag it sets when woken.
#[derive(Default)]
pub struct FlagWaker {
    woken: AtomicBool,
}

impl Wake for FlagWaker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        // SeqCst: tests read the flag from other threads with no other
        // synchronization, and speed does not matter here.
        self.woken.store(true, Ordering::SeqCst);
    }
}

impl FlagWaker {
    pub fn new() -> Arc<FlagWaker> {
        Arc::default()
    }

    /// True once the waker has been woken; resets the flag.
    pub fn take_woken(&self) -> bool {
        self.woken.swap(false, Ordering::SeqCst)
    }

    /// Polls `future` once with this waker.
    pub fn poll<F: Future + ?Sized>(self: &Arc<Self>, future: Pin<&mut F>) -> Poll<F::Output> {
        let waker = Waker::from(Arc::clone(self));
        future.poll(&mut Context::from_waker(&waker))
    }
}
