//! `TaskSet::abort`: pending tasks are woken and cut at their next poll
//! (their futures dropped) and end as `TaskError::Cancelled`; the set closes
//! and its shutdown is triggered; blocking tasks run on; panicking drops,
//! races with completion and 10^4 tasks.
//!
//! Tasks wait on channels the test controls, futures are driven with a
//! `FlagWaker` or `poll_once`, and every wait is bounded.
#![cfg(feature = "smol")]

mod common;

use std::pin::pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::time::Duration;

use common::pool::Pool;
use common::run_bounded;
use common::waker::FlagWaker;
use futures_lite::future::{block_on, poll_once};
use smol::{channel, Executor};
use smol_graceful::{Reason, TaskSet, TaskSetClosed};

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
    let task = run_bounded(set.track(async move {
        let _flag = flag;
        std::future::pending::<()>().await;
        Ok(())
    }))
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
    assert_eq!(
        run_bounded(set.spawn(&ex, async { Ok(()) })).unwrap_err(),
        TaskSetClosed
    );
    assert!(spawner.is_closed());
    assert!(spawner.try_spawn(&ex, async { Ok(()) }).is_err());
}

#[test]
fn a_task_never_polled_before_abort_is_cut_at_its_first_poll() {
    let ran = Arc::new(AtomicBool::new(false));
    let mut set = TaskSet::<(), String>::new();
    let ran2 = ran.clone();
    let task = run_bounded(set.track(async move {
        ran2.store(true, Ordering::SeqCst);
        Ok(())
    }))
    .unwrap();
    set.abort();
    block_on(task);
    assert!(!ran.load(Ordering::SeqCst), "the body never ran");
    assert!(run_bounded(set.join()).unwrap_err().is_cancelled());
}

#[test]
fn finished_tasks_keep_their_results_and_blocking_tasks_run_on() {
    let ex = Executor::new();
    let mut set = TaskSet::<u32, String>::new();
    let (release, released) = mpsc::channel::<()>();
    run_bounded(ex.run(async {
        set.spawn(&ex, async { Ok(1) }).await.unwrap();
        set.spawn_blocking_named("disk", move || {
            released
                .recv_timeout(Duration::from_secs(5))
                .map_err(|e| e.to_string())?;
            Ok(2)
        })
        .await
        .unwrap();
        let (_, first) = set.join_next().await.unwrap();
        assert_eq!(first.unwrap(), 1);
        set.abort();
        assert_eq!(set.stragglers().names(), ["disk"], "not cut: still running");
        release.send(()).unwrap();
        assert_eq!(set.join().await.unwrap(), [2]);
    }));
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
    run_bounded(ex.run(async {
        set.spawn_named("bomb", &ex, async {
            let _bomb = Bomb;
            std::future::pending::<()>().await;
            Ok(())
        })
        .await
        .unwrap();
        while ex.try_tick() {}
        set.abort();
        let error = set.join().await.unwrap_err();
        assert!(error.is_cancelled());
        assert_eq!(error.task(), "bomb");
    }));
}

#[test]
fn abort_of_ten_thousand_pending_tasks() {
    const N: usize = 10_000;
    let pool = Pool::start(2);
    let mut set = TaskSet::<(), String>::new();
    let dropped = Arc::new(AtomicUsize::new(0));
    let (started, ready) = channel::unbounded::<()>();
    for _ in 0..N {
        let dropped = dropped.clone();
        let started = started.clone();
        set.try_spawn(&pool, async move {
            struct Count(Arc<AtomicUsize>);
            impl Drop for Count {
                fn drop(&mut self) {
                    self.0.fetch_add(1, Ordering::SeqCst);
                }
            }
            let _count = Count(dropped);
            started.send(()).await.unwrap();
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
    pool.stop();
}

#[test]
fn abort_racing_completion_answers_every_task_once() {
    let pool = Pool::start(2);
    for round in 0..200 {
        let mut set = TaskSet::<usize, String>::new();
        let (go, gate) = channel::unbounded::<()>();
        for i in 0..8 {
            let gate = gate.clone();
            set.try_spawn(&pool, async move {
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
        run_bounded(set.join()).unwrap();
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
}
