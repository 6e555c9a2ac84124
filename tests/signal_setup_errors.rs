//! Setting up the signal watcher reports bad input as an `io::Error`, never a panic.
//!
//! Each case fails before any handler is installed, so the two tests can share a
//! binary (signal handlers are process-wide).

#![cfg(all(unix, feature = "signal"))]

use std::io;
use std::panic::{self, AssertUnwindSafe};

use smol_graceful::signal::{Builder, Signal};
use smol_graceful::Shutdown;

/// Runs `Builder::watch` with `signals`, turning a panic into a test failure that says so.
fn watch_with(signals: Vec<Signal>) -> io::Result<()> {
    let shutdown = Shutdown::new();
    let outcome = panic::catch_unwind(AssertUnwindSafe(|| {
        Builder::new().signals(signals).watch(&shutdown).map(drop)
    }));
    match outcome {
        Ok(result) => result,
        Err(payload) => {
            let message = payload
                .downcast_ref::<String>()
                .map(String::as_str)
                .or_else(|| payload.downcast_ref::<&str>().copied())
                .unwrap_or("(non-string payload)");
            panic!("Builder::watch panicked instead of returning an io::Error: {message}");
        }
    }
}

#[test]
fn an_empty_signal_set_is_an_invalid_input_error() {
    let error = watch_with(Vec::new()).unwrap_err();
    assert_eq!(error.kind(), io::ErrorKind::InvalidInput, "{error}");
}

#[test]
fn an_uncatchable_signal_is_an_io_error_not_a_panic() {
    for signal in [
        Signal::Kill,
        Signal::Stop,
        Signal::Ill,
        Signal::Fpe,
        Signal::Segv,
    ] {
        let error = watch_with(vec![Signal::Term, signal])
            .expect_err("an uncatchable signal must be refused");
        assert_eq!(error.kind(), io::ErrorKind::InvalidInput, "{error}");
        assert!(
            error.to_string().contains(&format!("{signal:?}")),
            "the error names the refused signal: {error}"
        );
    }
}
