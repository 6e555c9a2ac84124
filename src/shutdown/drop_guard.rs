//! [`DropGuard`]: a [`Shutdown`] that triggers when it is dropped.

use std::fmt;

use super::{Reason, Shutdown};

/// A [`Shutdown`] handle that triggers the shutdown when dropped, unless
/// [`disarm`](Self::disarm)ed first. Made by [`Shutdown::drop_guard`].
///
/// Tie it to the scope whose end must stop the others: a supervisor's
/// stack frame, a connection's task, a test. A drop by a panic unwinding
/// triggers too, with [`Reason::GuardDropped`] `{ panicking: true }`.
#[must_use = "dropping a drop guard at once triggers its shutdown"]
pub struct DropGuard {
    /// `None` once disarmed.
    shutdown: Option<Shutdown>,
}

impl DropGuard {
    pub(super) fn new(shutdown: Shutdown) -> DropGuard {
        DropGuard {
            shutdown: Some(shutdown),
        }
    }

    /// Gives the handle back without triggering.
    pub fn disarm(mut self) -> Shutdown {
        self.shutdown
            .take()
            .expect("a DropGuard is disarmed at most once")
    }
}

impl Drop for DropGuard {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let panicking = std::thread::panicking();
            shutdown.trigger_with(Reason::GuardDropped { panicking });
        }
    }
}

impl fmt::Debug for DropGuard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DropGuard")
            .field("shutdown", &self.shutdown)
            .finish()
    }
}
