//! `serve::run`'s exit codes, without a signal (the signal paths are run as
//! subprocesses in tests/tcp_server.rs). One test: `GRACE_MS` and the signal
//! handlers are process-wide.
#![cfg(all(unix, feature = "smol", feature = "signal"))]

mod common;

use std::process::ExitCode;
use std::sync::{Arc, Mutex};

use smol_graceful::serve;

use common::run_bounded;

#[test]
fn run_answers_0_drained_1_stragglers_2_failed() {
    // No other thread of this test binary reads the environment.
    std::env::remove_var("GRACE_MS");

    // The service returns: its shutdown is triggered, nothing is left.
    let seen = Arc::new(Mutex::new(None));
    let code = run_bounded(serve::run(|shutdown, group| {
        let seen = Arc::clone(&seen);
        async move {
            let worker = group.spawn({
                let shutdown = shutdown.clone();
                async move { shutdown.triggered().await }
            })?;
            worker.detach();
            *seen.lock().unwrap() = Some(shutdown);
            Ok(())
        }
    }));
    assert_eq!(code, ExitCode::SUCCESS);
    assert!(seen.lock().unwrap().as_ref().unwrap().is_triggered());

    // A guard that outlives the grace: 1, after GRACE_MS.
    std::env::set_var("GRACE_MS", "50");
    let kept = Arc::new(Mutex::new(None));
    let code = run_bounded(serve::run(|_, group| {
        let kept = Arc::clone(&kept);
        async move {
            *kept.lock().unwrap() = Some(group.add_named("stuck worker")?);
            Ok(())
        }
    }));
    assert_eq!(code, ExitCode::from(1));
    drop(kept);

    // The service fails: 2, after the drain.
    let code = run_bounded(serve::run(|_, _| async {
        Err(std::io::Error::other("cannot bind"))
    }));
    assert_eq!(code, ExitCode::from(2));

    // GRACE_MS that is not a number: 2, and the service never runs.
    std::env::set_var("GRACE_MS", "soon");
    let code = run_bounded(serve::run(|_, _| async {
        panic!("the service must not run with a bad GRACE_MS")
    }));
    assert_eq!(code, ExitCode::from(2));
}
