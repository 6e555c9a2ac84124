//! The first SIGTERM triggers the shutdown, and the tracked workers then drain: the
//! whole signal -> trigger -> drain path, in-process.
//!
//! Signal handlers are process-wide, so this binary holds this one scenario.

#![cfg(all(unix, feature = "smol", feature = "signal"))]

mod common;

use std::time::Duration;

use common::{kill_self, run_bounded};
use smol::Timer;
use smol_graceful::{signal, Group, Reason, Shutdown};

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
        ran[run_bounded(ticked_rx.recv()).unwrap()] = true;
    }
    assert!(!shutdown.is_triggered());
    assert!(shutdown.reason().is_none());
    assert_eq!(group.len(), 3);

    kill_self("TERM");
    run_bounded(shutdown.triggered());
    let reason = shutdown.reason();
    assert!(
        matches!(reason, Some(Reason::Signal(15))),
        "reason: {reason:?}"
    );
    assert_eq!(reason.unwrap().to_string(), "signal SIGTERM");

    // The workers saw the trigger and stop: the group drains well within its grace.
    let drained = run_bounded(group.wait_timeout(Duration::from_secs(4)));
    assert!(drained.is_ok(), "stragglers: {}", drained.unwrap_err());
    assert!(group.is_empty());
    assert!(group.is_closed());
    // This process was not terminated by the SIGTERM: the handler took it.
}
