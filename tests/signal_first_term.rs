//! The first SIGTERM triggers the shutdown, and the tracked workers then drain: the
//! whole signal -> trigger -> drain path, in-process.
//!
//! Signal handlers are process-wide, so this binary holds this one scenario.

#![cfg(all(unix, feature = "smol", feature = "signal"))]

use std::future::Future;
use std::process::Command;
use std::time::Duration;

use smol::Timer;
use smol_graceful::{signal, Group, Reason, Shutdown};

/// Runs `future` to completion, failing the test if it takes longer than five seconds.
fn within_5s<T>(future: impl Future<Output = T>) -> T {
    smol::block_on(smol::future::or(future, async {
        Timer::after(Duration::from_secs(5)).await;
        panic!("timed out after 5 s");
    }))
}

/// Sends `signal` (`"TERM"`, `"INT"`) to this test process with the `kill` command.
fn kill_self(signal: &str) {
    let status = Command::new("kill")
        .args([format!("-{signal}"), std::process::id().to_string()])
        .status()
        .expect("run kill");
    assert!(status.success(), "kill -{signal}: {status}");
}

#[test]
fn first_sigterm_triggers_shutdown_and_the_group_drains() {
    let shutdown = Shutdown::new();
    // The handlers are installed here, before any signal is sent; the watcher then
    // lives (detached) for the rest of the process.
    let watcher = signal::watch(&shutdown).expect("install the signal handlers");
    smol::spawn(watcher).detach();

    let group = Group::new();
    let (ticked_tx, ticked_rx) = async_channel::unbounded();
    for id in 0..3 {
        let guard = group.add_named(format!("worker {id}")).unwrap();
        let shutdown = shutdown.clone();
        let ticked = ticked_tx.clone();
        smol::spawn(async move {
            let _guard = guard;
            // One unit of work per tick, until the shutdown cuts the wait short.
            while shutdown
                .run_until_triggered(Timer::after(Duration::from_millis(1)))
                .await
                .is_some()
            {
                let _ = ticked.try_send(id);
            }
        })
        .detach();
    }
    drop(ticked_tx);

    // Every worker is running and nothing has triggered the shutdown yet.
    let mut ran = [false; 3];
    while ran.contains(&false) {
        ran[within_5s(ticked_rx.recv()).unwrap()] = true;
    }
    assert!(!shutdown.is_triggered());
    assert!(shutdown.reason().is_none());
    assert_eq!(group.len(), 3);

    kill_self("TERM");
    within_5s(shutdown.triggered());
    let reason = shutdown.reason();
    assert!(
        matches!(reason, Some(Reason::Signal(15))),
        "reason: {reason:?}"
    );
    assert_eq!(reason.unwrap().to_string(), "signal SIGTERM");

    // The workers saw the trigger and stop: the group drains well within its grace.
    let drained = within_5s(group.wait_timeout(Duration::from_secs(4)));
    assert!(drained.is_ok(), "stragglers: {}", drained.unwrap_err());
    assert!(group.is_empty());
    assert!(group.is_closed());
    // This process was not terminated by the SIGTERM: the handler took it.
}
