//! `TaskSet::abort`: pending tasks are woken and cut at their next poll
//! (their futures dropped) and end as `TaskError::Cancelled`, tasks waiting
//! for a slot included; the set closes (spawners and `ready` say `Closed`)
//! and its shutdown is triggered; blocking tasks already running run on;
//! panicking drops, races with completion and 10^4 tasks.
//!
//! Tasks wait on channels the test controls, futures are driven with a
//! `FlagWaker` or `poll_once`, and every wait is bounded.
#![cfg(feature = "smol")]

mod common;

use std::pin::pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::task::Poll;

use common::pool::Pool;
use common::waker::FlagWaker;
use common::{run_bounded, LIMIT};
use futures_lite::future::{block_on, poll_once};
use smol::{channel, Executor};
use smol_graceful::{Closed, Reason, TaskSet};

/// Sets its flag when dropped (SeqCst: tests read it with no other sync).
struct DropFlag(Arc<AtomicBool>);

impl Drop for DropFlag {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

#[test]
fn abort_wakes_a_pending_task_and_drops_its_future_at_the_next_poll() {
    let mut set = TaskSet::<(), String>::new();
    let dropped = Arc::new(AtomicBool::new(false));
    let flag = DropFlag(dropped.clone());
    let task = set
        .track(async move {
            let _flag = flag;
            std::future::pending::<()>().await;
            Ok(())
        })
        .unwrap();
    let mut task = pin!(task);
    let waker = FlagWaker::new();
    assert!(waker.poll(task.as_mut()).is_pending());
    set.abort();
    assert!(waker.take_woken(), "abort woke the task");
    assert!(
        !dropped.load(Ordering::SeqCst),
        "cut at the next poll, not before"
    );
    assert!(waker.poll(task.as_mut()).is_ready());
    assert!(dropped.load(Ordering::SeqCst), "the body was dropped");
    let error = run_bounded(set.join()).unwrap_err();
    assert!(error.is_cancelled(), "{error:?}");
    assert_eq!(error.task(), "task #0");
}

#[test]
fn abort_closes_the_set_and_triggers_its_shutdown() {
    let ex = Executor::new();
    let set = TaskSet::<(), String>::new();
    let spawner = set.spawner();
    set.abort();
    assert!(matches!(set.shutdown().reason(), Some(Reason::Requested)));
    assert_eq!(set.spawn(async { Ok(()) }), Err(Closed));
    assert_eq!(
        set.build_task().spawn_on(&ex, async { Ok(()) }),
        Err(Closed)
    );
    assert!(matches!(set.track(async { Ok(()) }), Err(Closed)));
    assert_eq!(block_on(poll_once(set.ready())), Some(Err(Closed)));
    assert!(spawner.is_closed());
    assert_eq!(spawner.spawn(async { Ok(()) }), Err(Closed));
    assert!(ex.is_empty(), "nothing was started");
}

#[test]
fn a_task_never_polled_before_abort_is_cut_at_its_first_poll() {
    let ran = Arc::new(AtomicBool::new(false));
    let mut set = TaskSet::<(), String>::new();
    let ran2 = ran.clone();
    let task = set
        .track(async move {
            ran2.store(true, Ordering::SeqCst);
            Ok(())
        })
        .unwrap();
    set.abort();
    run_bounded(task);
    assert!(!ran.load(Ordering::SeqCst), "the body never ran");
    assert!(run_bounded(set.join()).unwrap_err().is_cancelled());
}

#[test]
fn abort_cuts_tasks_waiting_for_a_slot_before_they_start() {
    let mut set = TaskSet::<(), String>::new().with_limit(1);
    let (started_tx, started) = channel::bounded(1);
    set.build_task()
        .name("running")
        .spawn(async move {
            started_tx.send(()).await.map_err(|e| e.to_string())?;
            std::future::pending().await
        })
        .unwrap();
    run_bounded(started.recv()).unwrap();
    let ran = Arc::new(AtomicUsize::new(0));
    let ran_async = Arc::clone(&ran);
    set.build_task()
        .name("queued")
        .spawn(async move {
            ran_async.fetch_add(1, Ordering::SeqCst);
            Ok(())
        })
        .unwrap();
    let ran_blocking = Arc::clone(&ran);
    set.build_task()
        .name("queued blocking")
        .spawn_blocking(move || {
            ran_blocking.fetch_add(1, Ordering::SeqCst);
            Ok(())
        })
        .unwrap();
    assert_eq!(set.len(), 3);
    set.abort();
    let mut names = run_bounded(async {
        let mut names = Vec::new();
        while let Some((name, outcome)) = set.join_next().await {
            assert!(outcome.unwrap_err().is_cancelled(), "{name}");
            names.push(name.into_owned());
        }
        names
    });
    names.sort();
    assert_eq!(names, ["queued", "queued blocking", "running"]);
    assert_eq!(ran.load(Ordering::SeqCst), 0, "no queued task started");
    assert!(set.is_empty());
}

#[test]
fn finished_tasks_keep_their_results_and_blocking_tasks_run_on() {
    let mut set = TaskSet::<u32, String>::new();
    let (release, released) = mpsc::channel::<()>();
    set.spawn(async { Ok(1) }).unwrap();
    set.build_task()
        .name("disk")
        .spawn_blocking(move || {
            released.recv_timeout(LIMIT).map_err(|e| e.to_string())?;
            Ok(2)
        })
        .unwrap();
    run_bounded(async {
        let (_, first) = set.join_next().await.unwrap();
        assert_eq!(first.unwrap(), 1);
        set.abort();
        assert_eq!(set.stragglers().names(), ["disk"], "not cut: still running");
        release.send(()).unwrap();
        assert_eq!(set.join().await.unwrap(), [2]);
    });
}

#[test]
fn a_panicking_drop_in_an_aborted_body_is_contained() {
    struct Bomb;
    impl Drop for Bomb {
        fn drop(&mut self) {
            panic!("drop of an aborted body panicked");
        }
    }
    let ex = Executor::new();
    let mut set = TaskSet::<(), String>::new();
    set.build_task()
        .name("bomb")
        .spawn_on(&ex, async {
            let _bomb = Bomb;
            std::future::pending::<()>().await;
            Ok(())
        })
        .unwrap();
    // The body runs up to its `pending`: the bomb is live.
    while ex.try_tick() {}
    set.abort();
    run_bounded(ex.run(async {
        let error = set.join().await.unwrap_err();
        assert!(error.is_cancelled(), "{error:?}");
        assert_eq!(error.task(), "bomb");
    }));
}

/// Two producers wait for room in a full set; `abort` closes it, so each
/// must learn `Closed` (however many slots the cut tasks free).
#[test]
fn abort_wakes_every_pending_ready_with_closed() {
    let ex = Executor::new();
    let mut set = TaskSet::<(), String>::new().with_limit(1);
    set.build_task()
        .spawn_on(&ex, std::future::pending())
        .unwrap();
    while ex.try_tick() {}
    let (first, second) = (FlagWaker::new(), FlagWaker::new());
    {
        let mut ready_1 = pin!(set.ready());
        let mut ready_2 = pin!(set.ready());
        assert!(first.poll(ready_1.as_mut()).is_pending());
        assert!(second.poll(ready_2.as_mut()).is_pending());
        set.abort();
        // The cut task settles at its next poll.
        while ex.try_tick() {}
        assert!(set.is_empty());
        assert!(first.take_woken(), "the first waiting ready was woken");
        assert!(second.take_woken(), "the second waiting ready was woken");
        assert_eq!(first.poll(ready_1.as_mut()), Poll::Ready(Err(Closed)));
        assert_eq!(second.poll(ready_2.as_mut()), Poll::Ready(Err(Closed)));
    }
    assert!(run_bounded(set.join()).unwrap_err().is_cancelled());
}

#[test]
fn abort_of_ten_thousand_pending_tasks() {
    /// Counts its drops.
    struct Count(Arc<AtomicUsize>);
    impl Drop for Count {
        fn drop(&mut self) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }
    const N: usize = 10_000;
    let mut set = TaskSet::<(), String>::new();
    let dropped = Arc::new(AtomicUsize::new(0));
    let (started, ready) = channel::unbounded::<()>();
    for _ in 0..N {
        let count = Count(Arc::clone(&dropped));
        let started = started.clone();
        set.spawn(async move {
            let _count = count;
            started.send(()).await.map_err(|e| e.to_string())?;
            std::future::pending::<()>().await;
            Ok(())
        })
        .unwrap();
    }
    run_bounded(async {
        for _ in 0..N {
            ready.recv().await.unwrap();
        }
    });
    set.abort();
    let mut cancelled = 0;
    run_bounded(async {
        while let Some((_, result)) = set.join_next().await {
            assert!(result.unwrap_err().is_cancelled());
            cancelled += 1;
        }
    });
    assert_eq!(cancelled, N);
    assert_eq!(dropped.load(Ordering::SeqCst), N);
    assert!(set.is_empty());
}

#[test]
fn abort_racing_completion_answers_every_task_once() {
    let pool = Pool::start(2);
    for round in 0..200 {
        let mut set = TaskSet::<usize, String>::new();
        let (go, gate) = channel::unbounded::<()>();
        for i in 0..8 {
            let gate = gate.clone();
            set.build_task()
                .spawn_on(&pool, async move {
                    gate.recv().await.map_err(|e| e.to_string())?;
                    Ok(i)
                })
                .unwrap();
        }
        // Release half of them and abort at the same time.
        for _ in 0..4 {
            go.try_send(()).unwrap();
        }
        set.abort();
        let mut answered = 0;
        run_bounded(async {
            while let Some((_, result)) = set.join_next().await {
                match result {
                    Ok(_) => {}
                    Err(error) => assert!(error.is_cancelled(), "round {round}: {error:?}"),
                }
                answered += 1;
            }
        });
        assert_eq!(answered, 8, "round {round}");
        assert_eq!(run_bounded(set.join()).unwrap(), Vec::<usize>::new());
    }
    pool.stop();
}

#[test]
fn abort_twice_and_abort_after_join_are_harmless() {
    let mut set = TaskSet::<(), String>::new();
    set.abort();
    set.abort();
    assert_eq!(run_bounded(set.join()).unwrap(), Vec::<()>::new());
    set.abort();
    assert!(block_on(poll_once(set.join_next())).unwrap().is_none());
    assert!(matches!(set.shutdown().reason(), Some(Reason::Requested)));
}
