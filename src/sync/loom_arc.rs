//! A loom model of `std::sync::{Arc, Weak}`, for `--cfg loom` builds.
//!
//! The group's count *is* the strong count of an `Arc`, and loom's `Arc` has
//! no `Weak`. This is a small model of the standard library's algorithm
//! (the same orderings: relaxed increment, release decrement, acquire fence
//! before the last owner's clean-up, and a compare-and-swap loop in
//! `upgrade`) built on loom's atomics, so loom explores every interleaving
//! of the count itself. The memory is held by a `std::sync::Arc`, so the
//! value is dropped when the last model `Arc` goes, and `new_cyclic` works
//! as in std. One difference: the model runs the clean-up hook
//! [`LastRef::last_ref`] where std would run the value's `Drop`, so types
//! whose `Drop` matters implement `LastRef` under loom instead; and the
//! model's `Arc::into_inner` returns, for the last reference, a [`Last`]
//! whose drop runs that hook, standing for the value std would hand back.

use std::ops::Deref;

use loom::sync::atomic::{fence, AtomicUsize, Ordering};

/// What the last strong reference does instead of dropping the value.
pub(crate) trait LastRef {
    /// Called once, when the strong count drops to zero.
    fn last_ref(&self) {}
}

/// The modelled counts live in loom atomics; the memory itself is held
/// by a `std::sync::Arc` (or `Weak`), which drops the value when the last
/// model `Arc` goes, as std does, and gives `new_cyclic` for free.
struct Inner<T> {
    strong: AtomicUsize,
    value: T,
    /// Only so that loom reports a leaked `Inner` (it checks its own
    /// `Arc`s for leaks at the end of each execution).
    _leak_check: loom::sync::Arc<()>,
}

/// Model of `std::sync::Arc`.
pub(crate) struct Arc<T: LastRef> {
    inner: std::sync::Arc<Inner<T>>,
    /// False once [`Arc::into_inner`] has given up this reference's
    /// count, so that `Drop` does not give it up twice.
    counted: bool,
}

/// What [`Arc::into_inner`] returns for the last reference, standing for
/// std's `T`: dropping it runs the clean-up hook, as dropping the `T`
/// that std hands back runs `T`'s `Drop`.
pub(crate) struct Last<T: LastRef> {
    inner: std::sync::Arc<Inner<T>>,
}

impl<T: LastRef> Drop for Last<T> {
    fn drop(&mut self) {
        self.inner.value.last_ref();
    }
}

/// Model of `std::sync::Weak`.
pub(crate) struct Weak<T: LastRef> {
    inner: std::sync::Weak<Inner<T>>,
}

impl<T: LastRef> Arc<T> {
    pub(crate) fn new(value: T) -> Arc<T> {
        Arc::new_cyclic(|_| value)
    }

    pub(crate) fn new_cyclic(make: impl FnOnce(&Weak<T>) -> T) -> Arc<T> {
        Arc {
            counted: true,
            inner: std::sync::Arc::new_cyclic(|inner| {
                let weak = Weak {
                    inner: inner.clone(),
                };
                Inner {
                    strong: AtomicUsize::new(1),
                    value: make(&weak),
                    _leak_check: loom::sync::Arc::new(()),
                }
            }),
        }
    }

    /// Model of `std::sync::Arc::into_inner`: gives up this reference
    /// like `drop`, but if it was the last one, returns the value (here a
    /// [`Last`]) instead of cleaning up, so the caller chooses when the
    /// clean-up runs.
    pub(crate) fn into_inner(mut this: Arc<T>) -> Option<Last<T>> {
        this.counted = false;
        if !this.release() {
            return None;
        }
        Some(Last {
            inner: std::sync::Arc::clone(&this.inner),
        })
    }

    /// Gives up this reference's count; true if it was the last one,
    /// after the acquire fence that the clean-up needs.
    fn release(&self) -> bool {
        // Planted bug (see tests/loom.rs): a relaxed decrement and no
        // fence, which loom must catch.
        let planted = cfg!(smol_graceful_bug = "relaxed_decrement");
        // Release, as std: this owner's writes happen-before the clean-up.
        let order = if planted {
            Ordering::Relaxed
        } else {
            Ordering::Release
        };
        if self.inner.strong.fetch_sub(1, order) != 1 {
            return false;
        }
        // Acquire, as std: the clean-up sees every owner's writes.
        if !planted {
            fence(Ordering::Acquire);
        }
        true
    }

    pub(crate) fn strong_count(this: &Arc<T>) -> usize {
        // Relaxed, as std: a snapshot of the count, publishing nothing.
        this.inner.strong.load(Ordering::Relaxed)
    }

    pub(crate) fn downgrade(this: &Arc<T>) -> Weak<T> {
        Weak {
            inner: std::sync::Arc::downgrade(&this.inner),
        }
    }
}

impl<T: LastRef> Clone for Arc<T> {
    fn clone(&self) -> Arc<T> {
        // Relaxed, as std: a new reference can only be made from an
        // existing one, which already keeps the value alive.
        self.inner.strong.fetch_add(1, Ordering::Relaxed);
        Arc {
            inner: std::sync::Arc::clone(&self.inner),
            counted: true,
        }
    }
}

impl<T: LastRef> Drop for Arc<T> {
    fn drop(&mut self) {
        if self.counted && self.release() {
            self.inner.value.last_ref();
        }
    }
}

impl<T: LastRef + Default> Default for Arc<T> {
    fn default() -> Arc<T> {
        Arc::new(T::default())
    }
}

impl<T: LastRef> Deref for Arc<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.inner.value
    }
}

impl<T: LastRef> Clone for Weak<T> {
    fn clone(&self) -> Weak<T> {
        Weak {
            inner: self.inner.clone(),
        }
    }
}

impl<T: LastRef> Weak<T> {
    pub(crate) fn upgrade(&self) -> Option<Arc<T>> {
        // The memory is gone (or not built yet, inside `new_cyclic`):
        // the modelled count is zero too.
        let inner = self.inner.upgrade()?;
        let strong = &inner.strong;
        let mut n = strong.load(Ordering::Relaxed);
        loop {
            if n == 0 {
                // Model only: the memory held by `inner` may be freed
                // by this thread when it drops `inner`, so it must come
                // after every owner's last use, which the decrements
                // (a release sequence) published.
                fence(Ordering::Acquire);
                return None;
            }
            // Acquire on success, as std's `fetch_update(Acquire, Relaxed, ..)`.
            match strong.compare_exchange_weak(n, n + 1, Ordering::Acquire, Ordering::Relaxed) {
                Ok(_) => break,
                Err(actual) => n = actual,
            }
        }
        Some(Arc {
            inner,
            counted: true,
        })
    }

    pub(crate) fn strong_count(&self) -> usize {
        self.inner
            .upgrade()
            // Relaxed, as std: a snapshot of the count, publishing nothing.
            .map_or(0, |inner| inner.strong.load(Ordering::Relaxed))
    }
}
