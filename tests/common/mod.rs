//! Helpers shared by the integration tests, each of which includes them with `mod common;`.
//! One helper per job: a bounded wait ([`within`], and its blocking forms [`run_bounded`]
//! and [`join_within`]), an executor pool ([`pool::Pool`]), a flag waker
//! ([`waker::FlagWaker`]), and child processes ([`subprocess`], with
//! [`subprocess::rerun_self`] for tests that re-run their own binary).
//!
//! Every wait here is bounded: a hang fails the test, naming what it waited for, instead of
//! stalling the run.

// Each test binary compiles its own copy of this module and uses only part of it.
#![allow(dead_code)]

pub mod counting_alloc;
#[cfg(all(unix, feature = "smol", feature = "signal"))]
pub mod http;
#[cfg(all(unix, feature = "smol", feature = "signal"))]
pub mod load;
#[cfg(unix)]
pub mod notify;
#[cfg(feature = "smol")]
pub mod pool;
#[cfg(all(unix, feature = "smol", feature = "signal"))]
pub mod second_signal;
#[cfg(all(unix, feature = "smol", feature = "signal"))]
pub mod signals;
#[cfg(unix)]
pub mod subprocess;
pub mod user_code;
pub mod waker;

use std::panic::Location;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

/// How long any single wait in a test may take before the test fails.
pub const LIMIT: Duration = Duration::from_secs(5);

/// Awaits `future`, failing the test with "`what`: timed out after 5s" if it takes longer
/// than [`LIMIT`]. The timer is async-io's, which runs under any executor (its own thread
/// drives it otherwise), so this bounds a wait on smol, tokio or `block_on` alike.
#[cfg(feature = "smol")]
pub async fn within<T>(
    what: impl std::fmt::Display,
    future: impl std::future::Future<Output = T>,
) -> T {
    smol::future::or(future, async {
        smol::Timer::after(LIMIT).await;
        panic!("{what}: timed out after {LIMIT:?}");
    })
    .await
}

/// Runs `future` to completion on the current thread, bounded by [`within`]; a timeout
/// names the line of the call.
#[cfg(feature = "smol")]
#[track_caller]
pub fn run_bounded<T>(future: impl std::future::Future<Output = T>) -> T {
    let caller = Location::caller();
    futures_lite::future::block_on(within(format_args!("the wait at {caller}"), future))
}

/// Joins `handle`, failing the test if the thread has not ended within [`LIMIT`] (and
/// passing on its panic if it panicked); a timeout names the line of the call.
#[track_caller]
pub fn join_within<T>(handle: JoinHandle<T>) -> T {
    let caller = Location::caller();
    let deadline = Instant::now() + LIMIT;
    while !handle.is_finished() {
        assert!(
            Instant::now() < deadline,
            "the thread joined at {caller}: did not end within {LIMIT:?}"
        );
        thread::sleep(Duration::from_millis(1));
    }
    handle
        .join()
        .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
}

/// Sends `signal` (`"TERM"`, `"INT"`) to this test process with the `kill` command.
#[cfg(unix)]
pub fn kill_self(signal: &str) {
    subprocess::send_signal(std::process::id(), signal);
}
