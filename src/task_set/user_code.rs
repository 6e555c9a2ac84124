//! Running user code the set cannot trust not to panic: the error's
//! `Display` and `Drop`, the `Drop` of results and panic payloads, the
//! logger. Each helper catches the panic (the panic hook has reported it)
//! and lets the set carry on: this is how the bookkeeping in `slot.rs`
//! keeps its invariant 5.

use std::any::Any;
use std::panic::AssertUnwindSafe;

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

/// Drops a panic payload, which is user code too when it is not a plain
/// message. If that `Drop` panics in turn, the second payload is dropped
/// only if it is a plain message, and leaked otherwise: a chain of payloads
/// whose drops panic must end somewhere.
pub(super) fn drop_payload(payload: Box<dyn Any + Send>) {
    if let Err(again) = std::panic::catch_unwind(AssertUnwindSafe(move || drop(payload))) {
        if again.is::<&'static str>() || again.is::<String>() {
            drop(again);
        } else {
            std::mem::forget(again);
        }
    }
}

/// The message of a panic payload: the `&str` or `String` that `panic!`
/// makes, or a placeholder for any other payload.
pub(super) fn panic_message(payload: &(dyn Any + Send)) -> String {
    if let Some(message) = payload.downcast_ref::<&'static str>() {
        (*message).to_owned()
    } else if let Some(message) = payload.downcast_ref::<String>() {
        message.clone()
    } else {
        "a panic payload that is not a string".to_owned()
    }
}
