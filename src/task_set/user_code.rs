//! Running user code the set cannot trust not to panic: the error's
//! `Display` and `Drop`, the `Drop` of results and panic payloads, the
//! logger. Each helper catches the panic (the panic hook has reported it)
//! and lets the set carry on: this is how the bookkeeping in `slot.rs`
//! keeps its invariant 5.

use std::panic::AssertUnwindSafe;

pub(super) use crate::panic::drop_payload;

/// Runs user code that the set cannot trust not to panic (a `Display`, a
/// `Drop`, the logger): `None` if it panicked. The panic hook has already
/// reported the panic; the set carries on.
pub(super) fn user_code<R>(f: impl FnOnce() -> R) -> Option<R> {
    match std::panic::catch_unwind(AssertUnwindSafe(f)) {
        Ok(value) => Some(value),
        Err(payload) => {
            drop_payload(payload);
            None
        }
    }
}

/// Drops `value` (user code), ignoring a panic in its `Drop`.
pub(super) fn drop_quietly<V>(value: V) {
    user_code(move || drop(value));
}
