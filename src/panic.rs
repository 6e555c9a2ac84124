//! The one home of panic isolation: user code the crate runs on its own (a
//! logger, a callback, a `Display`, a `Drop`, a task's payload) may panic,
//! and the crate carries on. Each helper catches the panic (the panic hook
//! has reported it) and drops its payload without unwinding again.

use std::any::Any;
use std::panic::AssertUnwindSafe;

/// The message of a panic payload: the `&str` or `String` that `panic!`
/// makes, or a placeholder for any other payload.
#[cfg(any(feature = "signal", feature = "smol"))]
pub(crate) fn message(payload: &(dyn Any + Send)) -> &str {
    payload
        .downcast_ref::<&'static str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("a panic payload that is not a string")
}

/// Drops a panic payload, which is user code too when it is not a plain
/// message. If that `Drop` panics in turn, the second payload is dropped
/// only if it is a plain message, and leaked otherwise: a chain of payloads
/// whose drops panic must end somewhere.
pub(crate) fn drop_payload(payload: Box<dyn Any + Send>) {
    if let Err(again) = std::panic::catch_unwind(AssertUnwindSafe(move || drop(payload))) {
        if again.is::<&'static str>() || again.is::<String>() {
            drop(again);
        } else {
            std::mem::forget(again);
        }
    }
}

/// Runs user code that the crate cannot trust not to panic (a `Display`, a
/// `Drop`, the logger): `None` if it panicked.
pub(crate) fn isolate<R>(f: impl FnOnce() -> R) -> Option<R> {
    match std::panic::catch_unwind(AssertUnwindSafe(f)) {
        Ok(value) => Some(value),
        Err(payload) => {
            drop_payload(payload);
            None
        }
    }
}

/// Drops `value` (user code), ignoring a panic in its `Drop`.
pub(crate) fn drop_quietly<V>(value: V) {
    isolate(move || drop(value));
}
