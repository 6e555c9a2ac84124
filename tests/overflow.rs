//! More than the guard limit aborts the process (documented on `Group::add`).
//!
//! The real limit is `usize::MAX / 4`, which only leaked guards reach and no
//! test can (at a nanosecond per guard that is 146 years). The abort itself is
//! checked with a 1,024-guard limit compiled in; `.ci/run` runs:
//!
//! ```sh
//! RUSTFLAGS="--cfg smol_graceful_small_limit" CARGO_TARGET_DIR=target/small-limit \
//!     cargo test --no-default-features --test overflow
//! ```
#![cfg(all(unix, smol_graceful_small_limit))]

mod common;

use std::os::unix::process::ExitStatusExt;
use std::time::Duration;

use common::subprocess::{child_role, rerun_self};
use smol_graceful::Group;

/// Runs `test` of this binary in a child process and checks that it aborts (SIGABRT),
/// killing it if it has not ended within 30 s.
fn expect_abort_in_child(test: &str) {
    let (status, _, stderr) =
        rerun_self(test, "overflow", Duration::from_secs(30)).finish(Duration::from_secs(30));
    assert_eq!(
        status.signal(),
        Some(6),
        "expected SIGABRT, got {status:?}; stderr: {stderr}"
    );
}

#[test]
fn adding_past_the_limit_aborts() {
    if child_role().is_some() {
        let group = Group::new();
        for _ in 0..2_000 {
            std::mem::forget(group.add().unwrap());
        }
        unreachable!("2,000 guards passed a 1,024-guard limit");
    }
    expect_abort_in_child("adding_past_the_limit_aborts");
}

#[test]
fn cloning_past_the_limit_aborts() {
    if child_role().is_some() {
        let group = Group::new();
        let guard = group.add_named("leaky").unwrap();
        for _ in 0..2_000 {
            std::mem::forget(guard.clone());
        }
        unreachable!("2,000 clones passed a 1,024-guard limit");
    }
    expect_abort_in_child("cloning_past_the_limit_aborts");
}

#[test]
fn up_to_the_limit_is_fine() {
    let group = Group::new();
    // The group's own reference counts too while it is open.
    let guards: Vec<_> = (0..1_023).map(|_| group.add().unwrap()).collect();
    assert_eq!(group.len(), 1_023);
    drop(guards);
    assert!(group.is_empty());
}
