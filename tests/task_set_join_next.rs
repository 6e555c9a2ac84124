//! `TaskSet::join_next` and the set as a `Stream`: completion order, names,
//! `None` when nothing is left, mixing with `join`, wakes, cancel safety,
//! queued tasks, the slot freed with the outcome, 10^5 tasks, panicking
//! user code.
//!
//! Deterministic: tasks wait on channels the test controls, futures are
//! driven with `poll_once` or a `FlagWaker`, and every wait is bounded.
#![cfg(feature = "smol")]

mod common;

use std::pin::pin;

use common::run_bounded;
use common::waker::FlagWaker;
use futures_lite::future::{block_on, poll_once};
use futures_lite::StreamExt;
use smol::{channel, Executor};
use smol_graceful::{TaskError, TaskSet};

/// Spawns `n` tasks named `t{i}` on smol's global executor, each waiting for
/// its gate and returning `i`.
fn gated(set: &TaskSet<usize, String>, n: usize) -> Vec<channel::Sender<()>> {
    (0..n)
        .map(|i| {
            let (open, wait) = channel::bounded::<()>(1);
            set.build_task()
                .name(format!("t{i}"))
                .spawn(async move {
                    wait.recv().await.map_err(|e| e.to_string())?;
                    Ok(i)
                })
                .unwrap();
            open
        })
        .collect()
}

/// [`gated`] on `ex`, for tests that must know when the tasks have run.
fn gated_on(
    set: &TaskSet<usize, String>,
    ex: &Executor<'static>,
    n: usize,
) -> Vec<channel::Sender<()>> {
    (0..n)
        .map(|i| {
            let (open, wait) = channel::bounded::<()>(1);
            set.build_task()
                .name(format!("t{i}"))
                .spawn_on(ex, async move {
                    wait.recv().await.map_err(|e| e.to_string())?;
                    Ok(i)
                })
                .unwrap();
            open
        })
        .collect()
}

#[test]
fn yields_in_completion_order_with_names_then_none() {
    let mut set = TaskSet::new();
    let gates = gated(&set, 4);
    run_bounded(async {
        for i in [2, 0, 3, 1] {
            gates[i].send(()).await.unwrap();
            let (name, result) = set.join_next().await.unwrap();
            assert_eq!(
                (name.as_ref(), result.unwrap()),
                (format!("t{i}").as_str(), i)
            );
        }
        assert!(set.join_next().await.is_none());
    });
    assert!(
        !set.shutdown().is_triggered(),
        "join_next does not end the set"
    );
    assert_eq!(
        block_on(poll_once(set.ready())),
        Some(Ok(())),
        "join_next does not close the set"
    );
    set.spawn(async { Ok(4) })
        .expect("join_next does not close the set");
    assert_eq!(run_bounded(set.join()).unwrap(), [4]);
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
    let gates = gated_on(&set, &ex, 1);
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
    let gates = gated_on(&set, &ex, 1);
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
    let mut set = TaskSet::<usize, String>::new();
    set.build_task()
        .name("bad")
        .spawn(async { Err("first".to_owned()) })
        .unwrap();
    run_bounded(async {
        let (name, result) = set.join_next().await.unwrap();
        assert_eq!(name, "bad");
        assert!(
            matches!(&result, Err(TaskError::Failed { task, error }) if task == "bad" && error == "first"),
            "{result:?}"
        );
        set.spawn(async { Ok(7) }).unwrap();
        set.spawn(async { Ok(8) }).unwrap();
        // The failure was handed out: `join` returns the rest, in spawn order.
        assert_eq!(set.join().await.unwrap(), [7, 8]);
        assert!(
            set.join_next().await.is_none(),
            "after join, nothing is left"
        );
    });
}

#[test]
fn every_failure_is_handed_out_and_join_returns_the_first_left() {
    let ex = Executor::new();
    let mut set = TaskSet::<(), String>::new();
    let (done, finished) = channel::unbounded::<()>();
    for i in 0..3 {
        let done = done.clone();
        set.build_task()
            .spawn_on(&ex, async move {
                done.send(()).await.map_err(|e| e.to_string())?;
                Err(format!("e{i}"))
            })
            .unwrap();
    }
    // One thread, tasks in spawn order: they fail as e0, e1, e2.
    while ex.try_tick() {}
    assert_eq!(finished.len(), 3);
    let failed = |outcome: Result<(), TaskError<String>>| match outcome {
        Err(TaskError::Failed { error, .. }) => error,
        other => panic!("expected a failure, got {other:?}"),
    };
    let (_, first) = run_bounded(set.join_next()).unwrap();
    assert_eq!(failed(first), "e0");
    assert_eq!(failed(run_bounded(set.join()).map(drop)), "e1");
}

#[test]
fn join_next_hands_out_tasks_that_waited_for_a_slot_in_spawn_order() {
    let mut set = TaskSet::<usize, String>::new().with_limit(1);
    let gates = gated(&set, 3);
    assert_eq!(set.len(), 3, "two wait inside the set");
    for open in gates.iter().rev() {
        open.try_send(()).unwrap();
    }
    let names = run_bounded(async {
        let mut names = Vec::new();
        while let Some((name, result)) = set.join_next().await {
            assert_eq!(format!("t{}", result.unwrap()), name);
            names.push(name.into_owned());
        }
        names
    });
    assert_eq!(names, ["t0", "t1", "t2"], "one slot: they ran one by one");
}

#[test]
fn once_join_next_hands_out_the_only_task_its_slot_is_free() {
    let mut set = TaskSet::<u32, String>::new().with_limit(1);
    set.spawn(async { Ok(1) }).unwrap();
    let (_, result) = run_bounded(set.join_next()).unwrap();
    assert_eq!(result.unwrap(), 1);
    assert_eq!(set.len(), 0);
    assert!(set.is_empty());
    assert_eq!(set.stragglers().count(), 0);
    assert_eq!(
        block_on(poll_once(set.ready())),
        Some(Ok(())),
        "a task spawned now would run at once"
    );
}

#[test]
fn a_hundred_thousand_tasks_come_out_once_each() {
    const N: usize = 100_000;
    let mut set = TaskSet::<usize, String>::new();
    for i in 0..N {
        set.spawn(async move { Ok(i) }).unwrap();
    }
    run_bounded(async {
        let mut seen = vec![false; N];
        while let Some((_, result)) = set.join_next().await {
            let i = result.unwrap();
            assert!(!std::mem::replace(&mut seen[i], true), "task {i} twice");
        }
        assert!(seen.iter().all(|&s| s), "every task came out");
        assert_eq!(set.join().await.unwrap(), Vec::<usize>::new());
    });
}

#[test]
fn the_set_is_a_stream_of_the_same_items() {
    let mut set = TaskSet::<usize, String>::new();
    for i in 0..5 {
        set.build_task()
            .name(format!("s{i}"))
            .spawn(async move { Ok(i) })
            .unwrap();
    }
    let mut items: Vec<(String, usize)> = run_bounded(
        (&mut set)
            .map(|(name, result)| (name.into_owned(), result.unwrap()))
            .collect(),
    );
    items.sort_unstable();
    let expected: Vec<(String, usize)> = (0..5).map(|i| (format!("s{i}"), i)).collect();
    assert_eq!(items, expected);
    assert!(set.is_empty());
}

use common::user_code::BadDisplay;

#[test]
fn panics_and_panicking_displays_are_handed_out_as_errors() {
    let mut set = TaskSet::<(), BadDisplay>::new();
    set.build_task()
        .name("p")
        .spawn(async { panic!("boom") })
        .unwrap();
    run_bounded(async {
        let (name, result) = set.join_next().await.unwrap();
        assert_eq!(name, "p");
        let payload = result.unwrap_err().into_panic();
        assert_eq!(payload.downcast_ref::<&str>(), Some(&"boom"));
        set.build_task()
            .name("d")
            .spawn(async { Err(BadDisplay) })
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
    });
}

/// `len`, `is_empty`, the stragglers and `ready` agree with `join_next`:
/// once it has handed out the last task, none runs and its slot is free,
/// even while the worker that finished it is still inside the wake-up of the
/// pending `join_next` (a waker that reports, then waits for the test).
#[test]
fn len_and_ready_agree_with_join_next_while_the_last_task_still_settles() {
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
    let mut set = TaskSet::<u32, String>::new().with_limit(1);
    let (release, released) = channel::bounded::<()>(1);
    set.build_task()
        .spawn_on(&pool, async move {
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
    // its task has returned.
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
    assert_eq!(
        block_on(poll_once(set.ready())),
        Some(Ok(())),
        "the slot was freed with the outcome"
    );
    go.send(()).unwrap();
    pool.stop();
}
