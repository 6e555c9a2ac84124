//! The synchronization types the crate is built on, in one place.
//!
//! Every module takes its atomics, locks and reference counts from here, so a
//! model checker (`--cfg loom`) can swap them for instrumented versions without
//! touching the algorithms that use them.

pub(crate) use std::sync::atomic::{AtomicBool, Ordering};
pub(crate) use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};

/// Locks `mutex`, ignoring poisoning.
///
/// Every critical section in this crate leaves its data consistent at each
/// step (no user code runs under a lock), so a panic elsewhere while the lock
/// was held cannot have left it half-updated.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}
