//! After-trigger callbacks: [`Shutdown::after_trigger`](super::Shutdown::after_trigger),
//! Go's `context.AfterFunc`.
//!
//! A registration is a [`Callback`] in its node's `callbacks` (see
//! `tree.rs`, invariant 6) and an [`AfterTrigger`] handle. Whether it runs
//! or is stopped is decided by one compare-and-swap on its `state`, from
//! `PENDING` to `FIRED` (the trigger) or to `STOPPED` (`stop`): exactly one
//! of the two can win, whatever the race. The winner of `FIRED` takes the
//! function and runs it on a thread of its own (smol's blocking pool with
//! the `smol` feature, a new thread otherwise), isolated: a callback that
//! panics or blocks holds up neither the trigger nor the other callbacks.

use std::fmt;

use super::tree::Node;
use std::sync::Arc;

// `Callback` is in a std `Arc` also under loom: the race loom explores is
// the one on its `state`, a loom atomic.
use crate::sync::{lock, Arc as NodeArc, AtomicU8, Mutex, Ordering, Weak};

const PENDING: u8 = 0;
const FIRED: u8 = 1;
const STOPPED: u8 = 2;

type Function = Box<dyn FnOnce() + Send + 'static>;

/// One registration.
pub(crate) struct Callback {
    /// `PENDING` until the trigger sets `FIRED` or `stop` sets `STOPPED`.
    state: AtomicU8,
    /// Taken by whoever set `FIRED`, or dropped with the registration.
    function: Mutex<Option<Function>>,
    /// Run where it fires (the crate's own, which cannot block: dropping a
    /// deadline's timer), not on a thread of its own.
    inline: bool,
}

impl Callback {
    /// Runs the function unless the registration was stopped.
    pub(crate) fn fire(self: Arc<Callback>) {
        // AcqRel: the one compare-and-swap that decides (see `stop`); the
        // function itself is handed over under its mutex.
        if self
            .state
            .compare_exchange(PENDING, FIRED, Ordering::AcqRel, Ordering::Acquire)
            .is_err()
        {
            return;
        }
        let function = lock(&self.function).take();
        match function {
            Some(function) if self.inline => {
                crate::panic::isolate(function);
            }
            Some(function) => run_detached(function),
            None => {}
        }
    }
}

/// The handle of a callback registered with
/// [`Shutdown::after_trigger`](super::Shutdown::after_trigger): stop it
/// before the trigger runs it.
pub struct AfterTrigger {
    callback: Arc<Callback>,
    /// The node and slot to unregister from on `stop` (none if the scope
    /// had triggered already at the registration).
    node: Option<(Weak<Node>, u32)>,
}

impl AfterTrigger {
    pub(crate) fn register(node: &NodeArc<Node>, function: Function, inline: bool) -> AfterTrigger {
        let callback = Arc::new(Callback {
            state: AtomicU8::new(PENDING),
            function: Mutex::new(Some(function)),
            inline,
        });
        let slot = node.register(&callback);
        let handle = AfterTrigger {
            callback: Arc::clone(&callback),
            node: slot.map(|slot| (NodeArc::downgrade(node), slot)),
        };
        if slot.is_none() {
            // Already triggered: run it now, as Go's `AfterFunc` does.
            callback.fire();
        }
        handle
    }

    /// Stops the callback from running: `true` if this call stopped it,
    /// `false` if it has already run or started (or was stopped before).
    /// For every registration, exactly one of "it runs" and "a `stop`
    /// returns `true`" happens, whatever the race with the trigger.
    ///
    /// # Examples
    ///
    /// ```
    /// use smol_graceful::Shutdown;
    ///
    /// let shutdown = Shutdown::new();
    /// let callback = shutdown.after_trigger(|| unreachable!("stopped"));
    /// assert!(callback.stop());
    /// assert!(!callback.stop()); // only once
    /// shutdown.trigger();
    /// ```
    pub fn stop(&self) -> bool {
        // AcqRel: the compare-and-swap that decides against `fire`'s; only
        // one of the two can leave `PENDING`.
        // (Planted bug for tests/loom.rs: a load, then a store, which loom
        // must catch running a stopped callback.)
        let stopped = if cfg!(smol_graceful_bug = "stop_load_then_store") {
            let pending = self.callback.state.load(Ordering::Acquire) == PENDING;
            if pending {
                self.callback.state.store(STOPPED, Ordering::Release);
            }
            pending
        } else {
            self.callback
                .state
                .compare_exchange(PENDING, STOPPED, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
        };
        if stopped {
            let function = lock(&self.callback.function).take();
            if let Some((node, slot)) = &self.node {
                if let Some(node) = node.upgrade() {
                    node.unregister(*slot);
                }
            }
            // Its captured state is user code: dropped now rather than at
            // the trigger, outside the lock, isolated.
            crate::panic::drop_quietly(function);
        }
        stopped
    }
}

impl fmt::Debug for AfterTrigger {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Acquire: a snapshot for display only.
        let state = match self.callback.state.load(Ordering::Acquire) {
            PENDING => "pending",
            FIRED => "fired",
            _ => "stopped",
        };
        f.debug_struct("AfterTrigger")
            .field("state", &state)
            .finish_non_exhaustive()
    }
}

/// Runs a callback on a thread of its own, isolated.
fn run_detached(function: Function) {
    let isolated = move || {
        crate::panic::isolate(function);
    };
    // Under loom the model runs it inline: the race is in `state`.
    #[cfg(loom)]
    isolated();
    #[cfg(all(not(loom), feature = "smol"))]
    smol::unblock(isolated).detach();
    #[cfg(all(not(loom), not(feature = "smol")))]
    {
        // Kept here too, so that a thread that cannot start leaves the
        // callback to run inline rather than lost.
        let cell = std::sync::Arc::new(Mutex::new(Some(isolated)));
        let on_thread = std::sync::Arc::clone(&cell);
        let started = std::thread::Builder::new()
            .name("smol-graceful-after-trigger".into())
            .spawn(move || lock(&on_thread).take().map(|run| run()));
        if let Err(e) = started {
            log::warn!("no thread for an after-trigger callback ({e}): running it here");
            if let Some(run) = lock(&cell).take() {
                run();
            }
        }
    }
}
