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

use std::os::unix::process::ExitStatusExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use smol_graceful::Group;

const CHILD: &str = "SMOL_GRACEFUL_OVERFLOW_CHILD";

/// Runs `test` of this binary in a child process and returns its status,
/// killing it if it has not finished within 30 s.
fn run_child(test: &str) -> std::process::ExitStatus {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", test, "--nocapture", "--test-threads=1"])
        .env(CHILD, "1")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if Instant::now() > deadline {
            child.kill().ok();
            panic!("the child did not finish within 30 s");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn adding_past_the_limit_aborts() {
    if std::env::var_os(CHILD).is_some() {
        let group = Group::new();
        for _ in 0..2_000 {
            std::mem::forget(group.add().unwrap());
        }
        unreachable!("2,000 guards passed a 1,024-guard limit");
    }
    let status = run_child("adding_past_the_limit_aborts");
    assert_eq!(status.signal(), Some(6), "expected SIGABRT, got {status:?}");
}

#[test]
fn cloning_past_the_limit_aborts() {
    if std::env::var_os(CHILD).is_some() {
        let group = Group::new();
        let guard = group.add_named("leaky").unwrap();
        for _ in 0..2_000 {
            std::mem::forget(guard.clone());
        }
        unreachable!("2,000 clones passed a 1,024-guard limit");
    }
    let status = run_child("cloning_past_the_limit_aborts");
    assert_eq!(status.signal(), Some(6), "expected SIGABRT, got {status:?}");
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
