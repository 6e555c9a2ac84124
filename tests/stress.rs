//! Stress: many tasks, panics while holding guards, many waiters of both
//! kinds, and a group dropped under load. Bounded in time: a hang fails.
//!
//! CI runs the 100,000-task version; the full size runs with
//! `cargo test --release --test stress -- --ignored`.

#![cfg(feature = "smol")]

mod common;

use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use common::join_within;
use common::pool::Pool;
use smol_graceful::Group;

const PLANNED: &str = "planned panic while holding a guard";

/// Silences the planned panics (there are thousands), keeps the others.
fn quiet_planned_panics() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let planned = info
            .payload()
            .downcast_ref::<&str>()
            .is_some_and(|m| *m == PLANNED);
        if !planned {
            default(info);
        }
    }));
}

fn tasks_with_panics_and_many_waiters(tasks: usize) {
    quiet_planned_panics();
    let ex = Pool::start(2);
    let group = Group::new();

    for i in 0..tasks {
        group
            .spawn_on(&ex, async move {
                smol::future::yield_now().await;
                if i % 100 == 0 {
                    std::panic::panic_any(PLANNED);
                }
                smol::future::yield_now().await;
            })
            .expect("the group is open while spawning")
            .detach();
    }

    // 1,000 waiters: 900 async on the executor, 100 blocking threads.
    let (done_tx, done_rx) = mpsc::channel::<&str>();
    for _ in 0..900 {
        let group = group.clone();
        let done_tx = done_tx.clone();
        ex.spawn(async move {
            group.wait().await;
            done_tx.send("async").unwrap();
        })
        .detach();
    }
    let blocking: Vec<_> = (0..100)
        .map(|_| {
            let group = group.clone();
            let done_tx = done_tx.clone();
            thread::spawn(move || {
                group.wait_blocking();
                done_tx.send("blocking").unwrap();
            })
        })
        .collect();

    let deadline = Instant::now() + Duration::from_secs(10);
    let (mut async_done, mut blocking_done) = (0, 0);
    while async_done + blocking_done < 1000 {
        let left = deadline.saturating_duration_since(Instant::now());
        match done_rx.recv_timeout(left) {
            Ok("async") => async_done += 1,
            Ok(_) => blocking_done += 1,
            Err(_) => panic!(
                "only {async_done} async and {blocking_done} blocking waiters finished within 10 s; {} guards left",
                group.len()
            ),
        }
    }
    assert_eq!((async_done, blocking_done), (900, 100));
    assert_eq!(group.len(), 0);
    assert!(group.add().is_err());

    ex.stop();
    for t in blocking {
        join_within(t);
    }
}

#[test]
fn hundred_thousand_tasks_one_percent_panicking_drain_and_wake_every_waiter() {
    tasks_with_panics_and_many_waiters(100_000);
}

#[test]
#[ignore = "full size: run with --ignored (about 1 s in release, 5 s in debug)"]
fn million_tasks_one_percent_panicking_drain_and_wake_every_waiter() {
    tasks_with_panics_and_many_waiters(1_000_000);
}

#[test]
fn group_dropped_with_ten_thousand_live_guards() {
    let group = Group::new();
    let mut guards: Vec<_> = (0..10_000)
        .map(|i| {
            if i % 10 == 0 {
                group.add_named(format!("task {i}"))
            } else {
                group.add()
            }
            .unwrap()
        })
        .collect();
    let observer = group.clone();
    drop(group);
    assert_eq!(observer.len(), 10_000);
    assert_eq!(observer.stragglers().names().len(), 1_000);
    drop(observer);

    // The guards outlive every handle; drop them from four threads at once.
    let chunks: Vec<Vec<_>> = (0..4)
        .map(|_| guards.split_off(guards.len() - 2_500))
        .collect();
    let droppers: Vec<_> = chunks
        .into_iter()
        .map(|chunk| thread::spawn(move || drop(chunk)))
        .collect();
    for d in droppers {
        d.join().unwrap();
    }
    assert!(guards.is_empty());
}
