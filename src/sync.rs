//! The synchronization types the crate is built on, in one place.
//!
//! Every module takes its atomics, locks and reference counts from here, so
//! the loom model checker (`RUSTFLAGS="--cfg loom"`, see `tests/loom.rs`) can
//! swap them for instrumented versions without touching the algorithms that
//! use them.
//!
//! Under loom, [`Arc`] and [`Weak`] are a model of std's (`sync/loom_arc.rs`),
//! because the group's count *is* an `Arc`'s strong count and loom's `Arc`
//! has no `Weak`. Code outside the modelled algorithms uses `std::sync::Arc`
//! directly.

#[cfg(not(loom))]
pub(crate) use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
#[cfg(not(loom))]
pub(crate) use std::sync::{Arc, Mutex, MutexGuard, Weak};

#[cfg(loom)]
pub(crate) use loom::sync::atomic::{AtomicBool, AtomicU8, Ordering};
#[cfg(loom)]
pub(crate) use loom::sync::{Mutex, MutexGuard};
#[cfg(loom)]
pub(crate) use loom_arc::{Arc, LastRef, Weak};

#[cfg(loom)]
mod loom_arc;

use std::sync::PoisonError;

/// Locks `mutex`, ignoring poisoning.
///
/// Every critical section in this crate leaves its data consistent at each
/// step, and the only foreign code that runs under a lock is `Waker::clone`
/// and `Waker::drop` (a waker parked or replaced), so a panic while the lock
/// was held cannot have left the data half-updated.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The data of a mutex its owner holds exclusively (in a `Drop`, say): no
/// lock taken, poisoning ignored as in [`lock`].
pub(crate) fn get_mut<T>(mutex: &mut Mutex<T>) -> &mut T {
    mutex.get_mut().unwrap_or_else(PoisonError::into_inner)
}
