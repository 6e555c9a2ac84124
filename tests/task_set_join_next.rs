//! `TaskSet::join_next` and the set as a `Stream`: completion order, names,
//! `None` when nothing is left, mixing with `join`, wakes, cancel safety,
//! 10^5 tasks, panicking user code.
//!
//! Deterministic: tasks wait on channels the test controls, futures are
//! driven with `poll_once` or a `FlagWaker`, and every wait is bounded.
#![cfg(feature = "smol")]

mod common;

use std::fmt;
use std::pin::pin;

use common::run_bounded;
use common::waker::FlagWaker;
use futures_lite::future::{block_on, poll_once};
use futures_lite::StreamExt;
use smol::{channel, Executor};
use smol_graceful::{TaskError, TaskSet};

/// Spawns `n` tasks named `t{i}`, each waiting for its gate and returning `i`.
async fn gated(
    set: &TaskSet<usize, String>,
    ex: &Executor<'_>,
    n: usize,
) -> Vec<channel::Sender<()>> {
    let mut gates = Vec::new();
    for i in 0..n {
        let (open, wait) = channel::bounded::<()>(1);
        gates.push(open);
        set.spawn_named(format!("t{i}"), ex, async move {
            wait.recv().await.map_err(|e| e.to_string())?;
            Ok(i)
        })
        .await
        .unwrap();
    }
    gates
}

#[test]
fn yields_in_completion_order_with_names_then_none() {
    let ex = Executor::new();
    let mut set = TaskSet::new();
    run_bounded(ex.run(async {
        let gates = gated(&set, &ex, 4).await;
        for i in [2, 0, 3, 1] {
            gates[i].send(()).await.unwrap();
            let (name, result) = set.join_next().await.unwrap();
            assert_eq!(
                (name.as_ref(), result.unwrap()),
                (format!("t{i}").as_str(), i)
            );
        }
        assert!(set.join_next().await.is_none());
        assert!(
            !set.shutdown().is_triggered(),
            "join_next does not end the set"
        );
        assert!(
            set.try_reserve().is_ok(),
            "join_next does not close the set"
        );
    }));
}

#[test]
fn an_empty_open_set_yields_none_at_once() {
    let mut set = TaskSet::<(), String>::new();
    assert!(matches!(block_on(poll_once(set.join_next())), Some(None)));
}

#[test]
fn a_pending_join_next_is_woken_by_a_completion() {
    let ex = Executor::new();
    let mut set = TaskSet::<usize, String>::new();
    let gates = run_bounded(gated(&set, &ex, 1));
    let waker = FlagWaker::new();
    {
        let mut next = pin!(set.join_next());
        assert!(waker.poll(next.as_mut()).is_pending());
        gates[0].try_send(()).unwrap();
        while ex.try_tick() {}
        assert!(waker.take_woken(), "the completion woke join_next");
        let (name, result) = run_bounded(next).unwrap();
        assert_eq!((name.as_ref(), result.unwrap()), ("t0", 0));
    }
}

#[test]
fn join_next_is_cancel_safe() {
    let ex = Executor::new();
    let mut set = TaskSet::<usize, String>::new();
    let gates = run_bounded(gated(&set, &ex, 1));
    assert!(
        block_on(poll_once(set.join_next())).is_none(),
        "pending, then dropped"
    );
    gates[0].try_send(()).unwrap();
    while ex.try_tick() {}
    let (_, result) = run_bounded(set.join_next()).unwrap();
    assert_eq!(result.unwrap(), 0);
}

#[test]
fn join_returns_what_join_next_did_not_hand_out() {
    let ex = Executor::new();
    let mut set = TaskSet::<usize, String>::new();
    run_bounded(ex.run(async {
        set.spawn_named("bad", &ex, async { Err("first".to_owned()) })
            .await
            .unwrap();
        let (name, result) = set.join_next().await.unwrap();
        assert_eq!(name, "bad");
        assert_eq!(result.unwrap_err().into_error().unwrap(), "first");
        set.spawn(&ex, async { Ok(7) }).await.unwrap();
        set.spawn(&ex, async { Ok(8) }).await.unwrap();
        // The failure was handed out: `join` returns the rest, in spawn order.
        assert_eq!(set.join().await.unwrap(), [7, 8]);
        assert!(
            set.join_next().await.is_none(),
            "after join, nothing is left"
        );
    }));
}

#[test]
fn every_failure_is_handed_out_and_join_returns_the_first_left() {
    let ex = Executor::new();
    let mut set = TaskSet::<(), String>::new();
    run_bounded(ex.run(async {
        let (done, finished) = channel::unbounded::<()>();
        for i in 0..3 {
            let done = done.clone();
            set.spawn(&ex, async move {
                done.send(()).await.unwrap();
                Err(format!("e{i}"))
            })
            .await
            .unwrap();
        }
        for _ in 0..3 {
            finished.recv().await.unwrap();
        }
        let (_, first) = set.join_next().await.unwrap();
        assert_eq!(first.unwrap_err().into_error().unwrap(), "e0");
        let error = set.join().await.unwrap_err();
        assert_eq!(error.into_error().unwrap(), "e1");
    }));
}

#[test]
fn a_hundred_thousand_tasks_come_out_once_each() {
    const N: usize = 100_000;
    let ex = Executor::new();
    let mut set = TaskSet::<usize, String>::new();
    run_bounded(ex.run(async {
        for i in 0..N {
            set.try_spawn(&ex, async move { Ok(i) }).unwrap();
        }
        let mut seen = vec![false; N];
        while let Some((_, result)) = set.join_next().await {
            let i = result.unwrap();
            assert!(!std::mem::replace(&mut seen[i], true), "task {i} twice");
        }
        assert!(seen.iter().all(|&s| s), "every task came out");
        assert_eq!(set.join().await.unwrap(), Vec::<usize>::new());
    }));
}

#[test]
fn the_set_is_a_stream_of_the_same_items() {
    let ex = Executor::new();
    let mut set = TaskSet::<usize, String>::new();
    run_bounded(ex.run(async {
        for i in 0..5 {
            set.spawn(&ex, async move { Ok(i) }).await.unwrap();
        }
        let mut values: Vec<usize> = (&mut set).map(|(_, r)| r.unwrap()).collect().await;
        values.sort_unstable();
        assert_eq!(values, [0, 1, 2, 3, 4]);
    }));
}

/// An error whose `Display` panics.
#[derive(Debug)]
struct BadDisplay;

impl fmt::Display for BadDisplay {
    fn fmt(&self, _: &mut fmt::Formatter<'_>) -> fmt::Result {
        panic!("Display panicked")
    }
}

#[test]
fn panics_and_panicking_displays_are_handed_out_as_errors() {
    let ex = Executor::new();
    let mut set = TaskSet::<(), BadDisplay>::new();
    run_bounded(ex.run(async {
        set.spawn_named("p", &ex, async { panic!("boom") })
            .await
            .unwrap();
        let (name, result) = set.join_next().await.unwrap();
        assert_eq!(name, "p");
        assert_eq!(result.unwrap_err().into_panic(), "boom");
        set.spawn_named("d", &ex, async { Err(BadDisplay) })
            .await
            .unwrap();
        let (name, result) = set.join_next().await.unwrap();
        assert_eq!(name, "d");
        assert!(matches!(
            result,
            Err(TaskError::Failed {
                error: BadDisplay,
                ..
            })
        ));
        assert!(set.join_next().await.is_none());
    }));
}

/// `len`, `is_empty` and the stragglers agree with `join_next`: once it says
/// no task is left, they say none runs, even while the last task is still
/// dropping its count in the set's group. The worker is held there
/// deterministically: inside the wake-up of the pending `join_next` (a waker
/// that reports, then waits for the test).
#[test]
fn len_agrees_with_join_next_while_the_last_task_still_settles() {
    use std::future::Future;
    use std::sync::mpsc;
    use std::sync::{Arc, Mutex};
    use std::task::{Context, Wake, Waker};

    struct Stall {
        woken: Mutex<mpsc::Sender<()>>,
        go: Mutex<mpsc::Receiver<()>>,
    }
    impl Wake for Stall {
        fn wake(self: Arc<Self>) {
            self.wake_by_ref();
        }
        fn wake_by_ref(self: &Arc<Self>) {
            let _ = self.woken.lock().unwrap().send(());
            let _ = self.go.lock().unwrap().recv_timeout(common::LIMIT);
        }
    }

    let pool = common::pool::Pool::start(1);
    let mut set = TaskSet::<u32, String>::new();
    let (release, released) = channel::bounded::<()>(1);
    set.try_spawn(&pool, async move {
        released.recv().await.map_err(|e| e.to_string())?;
        Ok(7)
    })
    .unwrap();
    let (woken_tx, woken) = mpsc::channel();
    let (go, go_rx) = mpsc::channel();
    let stall = Waker::from(Arc::new(Stall {
        woken: Mutex::new(woken_tx),
        go: Mutex::new(go_rx),
    }));
    {
        let mut next = pin!(set.join_next());
        assert!(next
            .as_mut()
            .poll(&mut Context::from_waker(&stall))
            .is_pending());
    }
    release.send_blocking(()).unwrap();
    // The worker recorded the outcome and is now inside our waker, before
    // it drops the task's guard.
    woken
        .recv_timeout(common::LIMIT)
        .expect("the finished task did not wake join_next");
    let (name, result) = block_on(poll_once(set.join_next()))
        .expect("join_next was pending after its wake-up")
        .expect("join_next ended before the task's outcome");
    assert_eq!((name.as_ref(), result.unwrap()), ("task #0", 7));
    assert!(matches!(block_on(poll_once(set.join_next())), Some(None)));
    assert_eq!(set.len(), 0, "join_next says no task is left");
    assert!(set.is_empty(), "join_next says no task is left");
    assert_eq!(set.stragglers().count(), 0);
    go.send(()).unwrap();
    pool.stop();
}
