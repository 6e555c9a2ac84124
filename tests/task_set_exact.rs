//! The bookkeeping of a `TaskSet` tells one story at every moment (issue 18's
//! points 1-5), and tasks that spawn tasks under a limit never deadlock.
//!
//! Each test here failed on the set before the rewrite (`len` and `is_empty`
//! disagreed with `join_next` while a slot was still held, a dropped set's
//! spawner still admitted tasks, `into_panic` returned a `String`), or
//! could not be written (a spawn past the limit waited for a slot, so a
//! task that spawned its children under `with_limit` could deadlock).
#![cfg(feature = "smol")]

mod common;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use futures_lite::future::poll_once;
use smol_graceful::{Closed, Reason, Spawner, TaskError, TaskSet};

use common::pool::Pool;
use common::run_bounded;

/// Point 1: `with_limit(1)`, the task on a thread pool: once `join_next` has
/// handed out the only task, its slot is free (`len` is 0 and `ready` is
/// ready at once), every time.
#[test]
fn a_slot_is_free_once_join_next_has_handed_out_its_task() {
    let pool = Pool::start(2);
    let mut set = TaskSet::<usize, String>::new().with_limit(1);
    run_bounded(async {
        for i in 0..2_000 {
            set.build_task()
                .spawn_on(&pool, async move { Ok(i) })
                .unwrap();
            let (_, outcome) = set.join_next().await.unwrap();
            assert_eq!(outcome.unwrap(), i);
            assert_eq!(set.len(), 0, "round {i}");
            assert!(set.is_empty(), "round {i}");
            assert!(
                poll_once(set.ready()).await.is_some(),
                "round {i}: the slot was still held after the outcome was seen"
            );
        }
    });
}

/// Point 1 with blocking work: the slot is free when the outcome is seen.
#[test]
fn a_blocking_tasks_slot_is_free_once_its_outcome_is_seen() {
    let mut set = TaskSet::<usize, String>::new().with_limit(1);
    run_bounded(async {
        for i in 0..200 {
            set.build_task().spawn_blocking(move || Ok(i)).unwrap();
            set.join_next().await.unwrap().1.unwrap();
            assert!(poll_once(set.ready()).await.is_some(), "round {i}");
        }
    });
}

/// Point 2: a spawner kept alive does not count: once `join_next` says no
/// task is left, the set is empty.
#[test]
fn join_next_none_means_empty_whatever_spawners_are_alive() {
    let mut set = TaskSet::<(), String>::new().with_limit(1);
    let spawner = set.spawner();
    let _clone = spawner.clone();
    run_bounded(async {
        spawner.spawn(async { Ok(()) }).unwrap();
        assert!(set.join_next().await.unwrap().1.is_ok());
        assert!(set.join_next().await.is_none());
        assert_eq!(set.len(), 0);
        assert!(set.is_empty());
        assert!(set.stragglers().is_empty());
    });
}

/// Point 3: a set dropped unjoined closes: its spawners refuse, and its
/// tasks are aborted (their bodies dropped), as tokio's `JoinSet` does.
#[test]
fn a_dropped_sets_spawners_refuse_and_its_tasks_are_aborted() {
    struct SetOnDrop(Arc<AtomicBool>);
    impl Drop for SetOnDrop {
        fn drop(&mut self) {
            self.0.store(true, Ordering::SeqCst);
        }
    }
    let dropped = Arc::new(AtomicBool::new(false));
    let set = TaskSet::<(), String>::new();
    let spawner = set.spawner();
    let body = SetOnDrop(Arc::clone(&dropped));
    let mut task = Box::pin(
        set.track(async move {
            let _body = body;
            std::future::pending().await
        })
        .unwrap(),
    );
    assert!(run_bounded(poll_once(&mut task)).is_none());
    assert!(!spawner.is_closed());
    drop(set);
    assert!(spawner.is_closed());
    assert_eq!(spawner.spawn(async { Ok(()) }), Err(Closed));
    // The abort cuts the task at its next poll: its body is dropped.
    assert!(run_bounded(poll_once(&mut task)).is_some());
    assert!(dropped.load(Ordering::SeqCst));
}

/// Point 4: `into_panic` gives back the original payload, to resume.
#[test]
fn into_panic_returns_the_payload_to_resume_unwind() {
    #[derive(Debug, PartialEq)]
    struct Custom(u32);
    let mut set = TaskSet::<(), String>::new();
    set.spawn(async { std::panic::panic_any(Custom(7)) })
        .unwrap();
    let error = run_bounded(set.join()).unwrap_err();
    assert!(error.is_panic());
    assert_eq!(
        error.to_string(),
        "task #0 panicked: a panic payload that is not a string"
    );
    let resumed = std::panic::catch_unwind(|| std::panic::resume_unwind(error.into_panic()));
    assert_eq!(
        resumed.unwrap_err().downcast_ref::<Custom>(),
        Some(&Custom(7))
    );
}

/// Point 4: a string panic stays readable.
#[test]
fn a_panics_message_stays_readable() {
    let mut set = TaskSet::<(), String>::new();
    set.build_task()
        .name("parser")
        .spawn(async { panic!("bad input at {}", 3) })
        .unwrap();
    let error = run_bounded(set.join()).unwrap_err();
    assert_eq!(error.to_string(), "parser panicked: bad input at 3");
    assert!(format!("{error:?}").contains("bad input at 3"));
}

/// Point 5: what a failed set's listeners get is what the docs say: the
/// failure's text, while `join` returns the value.
#[test]
fn a_failed_sets_reason_carries_the_failures_text() {
    let mut set = TaskSet::<(), std::io::Error>::new();
    set.build_task()
        .name("loader")
        .spawn(async { Err(std::io::Error::other("bad config")) })
        .unwrap();
    let error = run_bounded(set.join()).unwrap_err();
    let Some(Reason::Error(reason)) = set.shutdown().reason() else {
        panic!("not an error reason: {:?}", set.shutdown().reason());
    };
    assert_eq!(reason.to_string(), "loader failed: bad config");
    match error {
        TaskError::Failed { task, error } => {
            assert_eq!(task, "loader");
            assert_eq!(error.to_string(), "bad config");
        }
        other => panic!("unexpected {other:?}"),
    }
}

/// Tasks that spawn tasks under a limit: a binary tree of 2^12 - 1 pages,
/// at most 3 running at once, every page joined, nothing deadlocks.
#[test]
fn fan_out_under_a_limit_never_exceeds_it_and_joins_everything() {
    struct Load {
        now: AtomicUsize,
        max: AtomicUsize,
    }
    fn visit(spawner: &Spawner<u32, String>, load: &Arc<Load>, page: u32) {
        let (next, load) = (spawner.clone(), Arc::clone(load));
        spawner
            .spawn(async move {
                // SeqCst: a test counter, read once at the end.
                let now = load.now.fetch_add(1, Ordering::SeqCst) + 1;
                load.max.fetch_max(now, Ordering::SeqCst);
                smol::future::yield_now().await;
                for link in [page * 2 + 1, page * 2 + 2] {
                    if link < (1 << 12) - 1 {
                        visit(&next, &load, link);
                    }
                }
                load.now.fetch_sub(1, Ordering::SeqCst);
                Ok(page)
            })
            .unwrap();
    }
    let load = Arc::new(Load {
        now: AtomicUsize::new(0),
        max: AtomicUsize::new(0),
    });
    let mut set = TaskSet::new().with_limit(3);
    visit(&set.spawner(), &load, 0);
    let mut pages = run_bounded(set.join()).unwrap();
    pages.sort_unstable();
    assert_eq!(pages, (0..(1 << 12) - 1).collect::<Vec<u32>>());
    assert!(load.max.load(Ordering::SeqCst) <= 3);
    assert!(set.spawner().is_closed());
}

/// A chain 10^4 deep under `with_limit(1)`: each task spawns the next and
/// returns, the next waits inside the set for its parent's slot.
#[test]
fn a_chain_ten_thousand_deep_under_limit_one_completes() {
    fn link(spawner: Spawner<u32, String>, depth: u32) -> Result<(), Closed> {
        let next = spawner.clone();
        spawner.spawn(async move {
            if depth + 1 < 10_000 {
                link(next, depth + 1).map_err(|e| e.to_string())?;
            }
            Ok(depth)
        })
    }
    let mut set = TaskSet::new().with_limit(1);
    link(set.spawner(), 0).unwrap();
    let depths = run_bounded(set.join()).unwrap();
    assert_eq!(depths, (0..10_000).collect::<Vec<_>>());
}

/// 10^5 tasks queued behind a limit of 1: all counted, all reported, and
/// an abort cuts them all (in well under the bounded wait).
#[test]
fn a_hundred_thousand_queued_tasks_are_counted_and_aborted() {
    let mut set = TaskSet::<(), String>::new().with_limit(1);
    for _ in 0..100_000 {
        set.spawn(std::future::pending()).unwrap();
    }
    assert_eq!(set.len(), 100_000);
    assert_eq!(set.stragglers().count(), 100_000);
    assert!(run_bounded(poll_once(set.ready())).is_none());
    set.abort();
    assert!(run_bounded(set.join()).unwrap_err().is_cancelled());
    assert!(set.is_empty());
    assert_eq!(set.spawn(async { Ok(()) }), Err(Closed));
}

/// While a join waits, a task may add work; once the join has seen the set
/// drained, the set is closed.
#[test]
fn a_task_may_add_work_while_a_join_waits_and_not_after() {
    let mut set = TaskSet::<u32, String>::new();
    let spawner = set.spawner();
    let (go, gate) = smol::channel::bounded::<()>(1);
    let inner = spawner.clone();
    set.spawn(async move {
        gate.recv().await.map_err(|e| e.to_string())?;
        inner.spawn(async { Ok(2) }).map_err(|e| e.to_string())?;
        Ok(1)
    })
    .unwrap();
    run_bounded(async {
        let mut join = set.join();
        assert!(poll_once(&mut join).await.is_none());
        go.send(()).await.unwrap();
        assert_eq!(join.await.unwrap(), [1, 2]);
    });
    assert!(spawner.is_closed());
    assert_eq!(spawner.spawn(async { Ok(3) }), Err(Closed));
    assert_eq!(run_bounded(set.join()).unwrap(), Vec::<u32>::new());
}

/// `ready` is back-pressure: pending while the set is full, woken when a
/// slot frees.
#[test]
fn ready_waits_for_a_free_slot_and_is_woken_by_it() {
    let mut set = TaskSet::<(), String>::new().with_limit(1);
    let (go, gate) = smol::channel::bounded::<()>(1);
    set.spawn(async move { gate.recv().await.map_err(|e| e.to_string()) })
        .unwrap();
    run_bounded(async {
        let mut ready = set.ready();
        assert!(poll_once(&mut ready).await.is_none());
        go.send(()).await.unwrap();
        assert_eq!(ready.await, Ok(()));
    });
    assert!(run_bounded(set.join()).is_ok());
}

/// A set used with `join_next` for as long as a server runs starts afresh
/// whenever every task has ended and been handed out: numbering goes on,
/// and nothing of the handed-out tasks is kept.
#[test]
fn a_set_emptied_by_join_next_goes_on_numbering_its_tasks() {
    let mut set = TaskSet::<u32, String>::new();
    run_bounded(async {
        for round in 0..3 {
            set.spawn(async move { Ok(round) }).unwrap();
            let (name, outcome) = set.join_next().await.unwrap();
            assert_eq!(name, format!("task #{round}"));
            assert_eq!(outcome.unwrap(), round);
            assert!(set.join_next().await.is_none());
        }
        let _pending = set.track(std::future::pending()).unwrap();
        assert_eq!(set.stragglers().names(), ["task #3"]);
    });
}
