//! A hostile user's review of `TaskSet`'s queue and its fresh start: 10^5 tasks queued
//! past a limit, a set emptied by `join_next` and used again, `ready` waiters that
//! give up, aborts of long queues, spawner chains 10^4 deep, and user code that panics.
#![cfg(feature = "smol")]

mod common;

use std::pin::pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_lite::future::block_on;
use smol_graceful::{Closed, TaskError, TaskSet};

use common::pool::Pool;
use common::waker::FlagWaker;
use common::{run_bounded, LIMIT};

/// "No spawn ever waits: a task that does not fit is listed at once and waits inside
/// the set for a slot (FIFO)". A crawler's shape: 10^5 tasks, at most 8 at once, each
/// of which yields once (as any I/O does). Queued tasks are polled while the running
/// ones wait, so each registers its waker: that must not cost a walk of the queue.
/// (On an executor of its own, so as not to starve the other tests.)
#[test]
fn a_hundred_thousand_tasks_past_a_limit_of_eight_join_within_the_limit() {
    const N: usize = 100_000;
    let pool = Pool::start(1);
    let started = Instant::now();
    let mut set = TaskSet::<usize, String>::new().with_limit(8);
    for i in 0..N {
        set.build_task()
            .spawn_on(pool.executor(), async move {
                smol::future::yield_now().await;
                Ok(i)
            })
            .unwrap();
    }
    let values = run_bounded(set.join()).unwrap();
    assert_eq!(values.len(), N);
    assert!(values.iter().enumerate().all(|(i, &v)| i == v));
    let elapsed = started.elapsed();
    assert!(elapsed < LIMIT, "{N} queued tasks took {elapsed:?}");
}

/// A set emptied by `join_next` starts afresh: numbering goes on, the limit still holds,
/// a queued task is handed the slot (and woken) as before, and `join` answers only the
/// tasks spawned since.
#[test]
fn a_set_emptied_by_join_next_starts_afresh_numbering_on_and_keeping_its_limit() {
    let mut set = TaskSet::<usize, String>::new().with_limit(1);
    // A queued task dropped before it ran leaves a stale place in the queue.
    let first = set.track(async { Ok(0) }).unwrap();
    let dropped = set.track(async { Ok(1) }).unwrap();
    let third = set.track(async { Ok(2) }).unwrap();
    drop(dropped);
    run_bounded(first);
    run_bounded(third);
    let mut names = Vec::new();
    while let Some((name, _)) = run_bounded(set.join_next()) {
        names.push(name.into_owned());
    }
    assert_eq!(names, ["task #1", "task #0", "task #2"]);
    assert!(set.is_empty());

    let running = set.track(async { Ok(10) }).unwrap();
    let queued = set.track(async { Ok(11) }).unwrap();
    assert_eq!(set.stragglers().names(), ["task #3", "task #4"]);
    assert_eq!(set.len(), 2);
    let waker = FlagWaker::new();
    let mut queued = pin!(queued);
    assert!(waker.poll(queued.as_mut()).is_pending(), "the limit holds");
    run_bounded(running);
    assert!(waker.take_woken(), "the slot goes to the queued task");
    assert!(waker.poll(queued.as_mut()).is_ready());
    assert_eq!(run_bounded(set.join()).unwrap(), [10, 11]);
}

/// The first failure handed out by `join_next` before the fresh start is not `join`'s
/// answer afterwards; the shutdown keeps its first reason.
#[test]
fn a_failure_handed_out_before_the_fresh_start_stays_out_of_join() {
    let mut set = TaskSet::<u32, &str>::new();
    set.spawn(async { Err("bad config") }).unwrap();
    let (_, outcome) = run_bounded(set.join_next()).unwrap();
    assert!(matches!(
        outcome,
        Err(TaskError::Failed {
            error: "bad config",
            ..
        })
    ));
    assert!(run_bounded(set.join_next()).is_none());
    set.spawn(async { Ok(5) }).unwrap();
    assert_eq!(run_bounded(set.join()).unwrap(), [5]);
    assert_eq!(
        set.shutdown().reason().unwrap().to_string(),
        "error: task #0 failed: bad config"
    );
}

/// `ready` is cancel-safe and reserves nothing: a producer woken for a free slot that
/// gives up without looking must not leave the other producer asleep.
#[test]
fn ready_wakes_the_next_waiter_when_the_woken_one_is_dropped() {
    let set = TaskSet::<(), String>::new().with_limit(1);
    let (gate, gated) = smol::channel::bounded::<()>(1);
    let task = set
        .track(async move {
            let _ = gated.recv().await;
            Ok(())
        })
        .unwrap();
    let (first_waker, second_waker) = (FlagWaker::new(), FlagWaker::new());
    let mut first = Box::pin(set.ready());
    let mut second = Box::pin(set.ready());
    assert!(first_waker.poll(first.as_mut()).is_pending());
    assert!(second_waker.poll(second.as_mut()).is_pending());
    drop(gate);
    run_bounded(task);
    let (woken, other, other_waker) = if first_waker.take_woken() {
        (first, second, second_waker)
    } else {
        assert!(second_waker.take_woken(), "a freed slot wakes a waiter");
        (second, first, first_waker)
    };
    drop(woken);
    assert!(
        other_waker.take_woken(),
        "the notification passes to the other waiter"
    );
    let mut other = other;
    assert!(matches!(
        other_waker.poll(other.as_mut()),
        std::task::Poll::Ready(Ok(()))
    ));
}

/// `abort` closes the set: a producer waiting in `ready` is woken and told `Closed`.
#[test]
fn abort_wakes_a_pending_ready_which_answers_closed() {
    let set = TaskSet::<(), String>::new().with_limit(1);
    let _stuck = set.track(std::future::pending()).unwrap();
    let waker = FlagWaker::new();
    let mut ready = Box::pin(set.ready());
    assert!(waker.poll(ready.as_mut()).is_pending());
    set.abort();
    assert!(waker.take_woken(), "abort must wake a waiting producer");
    assert!(matches!(
        waker.poll(ready.as_mut()),
        std::task::Poll::Ready(Err(Closed))
    ));
}

/// 10^4 tasks queued behind one that never ends: `abort` cuts them all, queued ones
/// included, each handed out once as cancelled.
#[test]
fn abort_cuts_ten_thousand_queued_tasks_each_once() {
    const N: usize = 10_000;
    let mut set = TaskSet::<(), String>::new().with_limit(1);
    set.spawn(std::future::pending()).unwrap();
    for _ in 0..N {
        set.spawn(async { Ok(()) }).unwrap();
    }
    assert_eq!(set.len(), N + 1);
    set.abort();
    let mut cancelled = 0;
    run_bounded(async {
        while let Some((_, outcome)) = set.join_next().await {
            assert!(outcome.unwrap_err().is_cancelled());
            cancelled += 1;
        }
    });
    assert_eq!(cancelled, N + 1);
    assert!(
        set.spawn(async { Ok(()) }).is_err(),
        "an aborted set is closed"
    );
}

/// Tasks that start tasks never deadlock on the limit, however deep: a chain of 10^4,
/// each spawning the next through a `Spawner` and returning, under a limit of one.
#[test]
fn a_spawner_chain_ten_thousand_deep_under_a_limit_of_one_joins_in_order() {
    const DEPTH: usize = 10_000;
    fn link(spawner: smol_graceful::Spawner<usize, String>, i: usize) {
        let next = spawner.clone();
        spawner
            .spawn(async move {
                if i + 1 < DEPTH {
                    link(next, i + 1);
                }
                Ok(i)
            })
            .unwrap();
    }
    let mut set = TaskSet::<usize, String>::new().with_limit(1);
    link(set.spawner(), 0);
    let values = run_bounded(set.join()).unwrap();
    assert_eq!(values.len(), DEPTH);
    assert!(values.iter().enumerate().all(|(i, &v)| i == v));
}

/// An error whose `Display` panics, under a limit: the failing task still frees its
/// slot, the queued sibling still runs, and `join` names the failure.
#[test]
fn a_failure_whose_display_panics_still_hands_its_slot_to_the_queue() {
    use common::user_code::BadDisplay;
    let mut set = TaskSet::<(), BadDisplay>::new().with_limit(1);
    let ran = Arc::new(AtomicBool::new(false));
    set.build_task()
        .name("loader")
        .spawn(async { Err(BadDisplay) })
        .unwrap();
    let flag = Arc::clone(&ran);
    set.spawn(async move {
        flag.store(true, Ordering::SeqCst);
        Ok(())
    })
    .unwrap();
    let error = run_bounded(set.join()).unwrap_err();
    assert_eq!(error.task(), "loader");
    assert!(ran.load(Ordering::SeqCst), "the queued sibling ran");
    assert_eq!(
        set.shutdown().reason().unwrap().to_string(),
        "error: loader failed (its error's Display panicked)"
    );
}

/// Finished work wins a tie, even with a zero timeout; a timeout too long to represent
/// is no panic.
#[test]
fn join_timeout_zero_on_finished_work_is_ok_and_a_huge_timeout_is_no_panic() {
    let mut set = TaskSet::<u8, String>::new();
    run_bounded(set.track(async { Ok(1) }).unwrap());
    assert_eq!(
        block_on(set.join_timeout(Duration::ZERO)).unwrap().unwrap(),
        [1]
    );
    let mut set = TaskSet::<u8, String>::new();
    set.spawn(async { Ok(2) }).unwrap();
    assert_eq!(
        run_bounded(set.join_timeout(Duration::MAX))
            .unwrap()
            .unwrap(),
        [2]
    );
}
