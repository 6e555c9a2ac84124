//! Helpers shared by the integration tests, each of which includes them with `mod common;`.
//!
//! Every wait here is bounded: a hang fails the test instead of stalling the run.

// Each test binary compiles its own copy of this module and uses only part of it.
#![allow(dead_code)]

#[cfg(all(unix, feature = "smol", feature = "signal"))]
pub mod http;
#[cfg(unix)]
pub mod subprocess;
pub mod waker;

/// Runs `future` to completion on the current thread, failing the test if it
/// takes longer than five seconds.
#[cfg(feature = "smol")]
pub fn run_bounded<T>(future: impl std::future::Future<Output = T>) -> T {
    futures_lite::future::block_on(async {
        smol::future::or(future, async {
            smol::Timer::after(std::time::Duration::from_secs(5)).await;
            panic!("timed out after 5 s");
        })
        .await
    })
}

/// Sends `signal` (`"TERM"`, `"INT"`) to this test process with the `kill` command.
#[cfg(unix)]
pub fn kill_self(signal: &str) {
    subprocess::send_signal(std::process::id(), signal);
}
