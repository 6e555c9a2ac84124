//! [`TaskSet::abort`](super::TaskSet::abort)'s machinery: one flag per set
//! and an event every pending task listens to, so that each task is woken,
//! sees the flag at its next poll, and drops its body.
//!
//! A task makes its listener the first time its body returns `Pending`
//! (a task that finishes in one poll never makes one), and re-registers
//! only when its executor hands it a different waker, so a task polled
//! many times pays one `will_wake` comparison per poll. Ordering, the
//! event-listener pattern: `abort` stores the flag, then notifies; a task
//! listens, then loads the flag. Either the load sees the store, or the
//! listener was inserted before the notification and is woken by it.
//!
//! The file needs neither smol nor the rest of the task set, and takes its
//! atomic from `crate::sync`: `tests/loom.rs` includes it as it is and
//! model-checks it (`abort_reaches_a_task_that_registered`,
//! `abort_wakes_a_pending_task`).

use std::future::Future as _;
use std::task::{Context, Waker};

use event_listener::{Event, EventListener};

use crate::sync::{AtomicBool, Ordering};

/// A set's abort flag and the event that wakes its tasks when it is set.
pub(super) struct AbortFlag {
    aborted: AtomicBool,
    event: Event,
}

impl AbortFlag {
    pub(super) fn new() -> AbortFlag {
        AbortFlag {
            aborted: AtomicBool::new(false),
            event: Event::new(),
        }
    }

    /// Sets the flag and wakes every task that listens. True if this call
    /// set it.
    pub(super) fn abort(&self) -> bool {
        // SeqCst: pairs with the SeqCst load in `is_aborted` that follows a
        // task's `listen` (the event-listener pattern, see the module docs):
        // either that load sees this store, or `notify` (which begins with a
        // SeqCst fence) sees the listener and wakes it. That is the contract
        // event-listener documents. Today its list is behind a mutex that
        // both `listen` and `notify` take, which alone orders the two sides,
        // so the loom models pass even with both orderings Relaxed; SeqCst
        // keeps this correct if the list goes lock-free. The planted bug the
        // models catch breaks the pattern's other requirement instead: the
        // task loads the flag before it listens (`load_before_listen`, in
        // `register`).
        let first = !self.aborted.swap(true, Ordering::SeqCst);
        self.event.notify(usize::MAX);
        first
    }

    /// True once `abort` was called.
    pub(super) fn is_aborted(&self) -> bool {
        // SeqCst: see `abort`. The other caller, a task's check at the start
        // of each poll, needs no more: a poll that follows the wake from
        // `abort`'s `notify` is ordered after the swap by that wake.
        self.aborted.load(Ordering::SeqCst)
    }
}

/// One task's watch on its set's abort flag: one pointer in every task, and
/// a box only in a task that has returned `Pending`, with the listener made
/// then and the waker it holds (to skip re-registering the same one). A
/// task's future stays small, which keeps smol's allocation for it in a
/// cheap size class.
#[derive(Default)]
pub(super) struct AbortWatch(Option<Box<(EventListener, Option<Waker>)>>);

impl AbortWatch {
    /// After the task's body returned `Pending`: makes sure `cx`'s waker is
    /// woken by an abort. True if the set is aborted already.
    pub(super) fn register(&mut self, flag: &AbortFlag, cx: &mut Context<'_>) -> bool {
        let (listener, waker) = match &mut self.0 {
            Some(listening) => &mut **listening,
            None => {
                // Planted bug for tests/loom.rs: load, then listen; an abort
                // between the two is neither seen nor heard.
                let early =
                    cfg!(smol_graceful_bug = "load_before_listen").then(|| flag.is_aborted());
                let listening = self.0.insert(Box::new((flag.event.listen(), None)));
                // Listen, then load (see the module docs).
                if early.unwrap_or_else(|| flag.is_aborted()) {
                    return true;
                }
                &mut **listening
            }
        };
        if waker.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
            return false;
        }
        *waker = Some(cx.waker().clone());
        std::pin::Pin::new(listener).poll(cx).is_ready()
    }
}
