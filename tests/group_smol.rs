//! Group semantics that need the `smol` feature: spawning on smol's executors, and the
//! timed waits (`wait_timeout`, `wait_deadline`) on async-io's timers.

#![cfg(feature = "smol")]

mod common;

use std::pin::pin;
use std::task::Poll;
use std::time::{Duration, Instant};

use common::run_bounded;
use common::waker::FlagWaker;
use futures_lite::future::{block_on, poll_once};
use smol_graceful::{Closed, Group};

#[test]
fn spawn_spawn_on_and_spawn_local_fail_after_close() {
    let group = Group::new();
    group.close();
    assert_eq!(group.spawn(async {}).unwrap_err(), Closed);
    let ex = smol::Executor::new();
    assert_eq!(group.spawn_on(&ex, async {}).unwrap_err(), Closed);
    let local = smol::LocalExecutor::new();
    assert_eq!(group.spawn_local(&local, async {}).unwrap_err(), Closed);
}

#[test]
#[cfg_attr(
    miri,
    ignore = "smol's global executor starts async-io's reactor (timerfd)"
)]
fn spawn_runs_on_the_global_executor_and_counts_until_the_task_ends() {
    let group = Group::new();
    let (tx, rx) = async_channel::bounded::<u32>(1);
    // Nothing here runs an executor: smol's global one runs the task.
    let task = group
        .spawn(async move { rx.recv().await.unwrap() + 1 })
        .unwrap();
    assert_eq!(group.len(), 1);
    tx.try_send(41).unwrap();
    run_bounded(async {
        assert_eq!(task.await, 42);
        group.wait().await;
    });
    assert!(group.is_empty());
}

#[test]
fn tracked_future_that_panics_releases_its_guard() {
    let ex = smol::Executor::new();
    let group = Group::new();
    let task = group.spawn_on(&ex, async { panic!("boom") }).unwrap();
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| block_on(ex.run(task))));
    assert!(outcome.is_err());
    assert!(group.is_empty());
}

#[test]
#[cfg_attr(
    miri,
    ignore = "smol's global executor starts async-io's reactor (timerfd)"
)]
fn a_named_tracked_task_on_the_global_executor_is_a_straggler_until_it_ends() {
    let group = Group::new();
    let (tx, rx) = async_channel::bounded::<()>(1);
    let task = smol::spawn(
        group
            .add_named("flusher")
            .unwrap()
            .track(async move { rx.recv().await.ok() }),
    );
    let stragglers = run_bounded(group.wait_timeout(Duration::ZERO)).unwrap_err();
    assert_eq!(stragglers.names(), ["flusher"]);
    assert!(stragglers.named()[0]
        .location()
        .file()
        .ends_with("group_smol.rs"));
    tx.try_send(()).unwrap();
    run_bounded(async {
        assert_eq!(task.await, Some(()));
        group.wait().await;
    });
}

#[test]
#[cfg_attr(miri, ignore = "needs async-io's reactor (timerfd)")]
fn wait_timeout_is_ok_when_work_ends_in_time() {
    let group = Group::new();
    let guard = group.add_named("quick").unwrap();
    let dropper = std::thread::spawn(move || drop(guard));
    run_bounded(async {
        assert!(group.wait_timeout(Duration::from_secs(10)).await.is_ok());
    });
    dropper.join().unwrap();
}

#[test]
#[cfg_attr(miri, ignore = "needs async-io's reactor (timerfd)")]
fn wait_timeout_lists_named_stragglers_oldest_first_with_total_count() {
    let group = Group::new();
    let _first = group.add_named("first").unwrap();
    let _anonymous = group.add().unwrap();
    let second = group.add_named(String::from("second")).unwrap();
    let _second_clone = second.clone();
    let started = Instant::now();
    let err = run_bounded(group.wait_timeout(Duration::from_millis(20))).unwrap_err();
    assert!(started.elapsed() >= Duration::from_millis(20));
    assert_eq!(err.count(), 4);
    assert_eq!(err.names(), ["first", "second", "second"]);
    let ages: Vec<Duration> = err.named().iter().map(|s| s.age()).collect();
    assert!(
        ages.windows(2).all(|w| w[0] >= w[1]),
        "oldest first: {ages:?}"
    );
    assert!(ages[0] >= Duration::from_millis(20));
    assert!(err.named()[0].location().file().ends_with("group_smol.rs"));
    let report = err.to_string();
    assert!(
        report.starts_with("4 tasks still running (3 named, 1 unnamed)"),
        "{report}"
    );
    assert_eq!(report.lines().count(), 4, "{report}");
    assert!(report.contains("  - first (running for "), "{report}");
}

#[test]
fn wait_deadline_in_the_past_answers_at_once() {
    let group = Group::new();
    let _guard = group.add().unwrap();
    let past = Instant::now()
        .checked_sub(Duration::from_secs(1))
        .unwrap_or_else(Instant::now);
    let mut wait = pin!(group.wait_deadline(past));
    let err = block_on(poll_once(wait.as_mut()))
        .expect("ready at once")
        .unwrap_err();
    assert_eq!(err.count(), 1);
    assert!(err.names().is_empty());
}

#[test]
fn wait_timeout_prefers_success_when_already_drained() {
    let group = Group::new();
    let mut wait = pin!(group.wait_timeout(Duration::ZERO));
    assert!(matches!(block_on(poll_once(wait.as_mut())), Some(Ok(()))));
}

#[test]
fn wait_timeout_with_a_huge_duration_does_not_fire() {
    let group = Group::new();
    let guard = group.add().unwrap();
    let waker = FlagWaker::new();
    let mut wait = pin!(group.wait_timeout(Duration::MAX));
    assert!(waker.poll(wait.as_mut()).is_pending());
    drop(guard);
    assert!(waker.take_woken(), "the last guard did not wake the waiter");
    assert!(matches!(waker.poll(wait.as_mut()), Poll::Ready(Ok(()))));
}

#[test]
#[cfg_attr(miri, ignore = "needs async-io's reactor (timerfd)")]
fn spawned_tasks_are_counted_until_they_finish_or_are_cancelled() {
    let ex = smol::Executor::new();
    let group = Group::new();
    let (tx, rx) = async_channel::bounded::<()>(1);
    let task = group
        .spawn_on(&ex, async move { rx.recv().await.ok() })
        .unwrap();
    let cancelled = group.spawn_on(&ex, std::future::pending::<()>()).unwrap();
    assert_eq!(group.len(), 2);
    drop(cancelled);
    // async-task drops a cancelled, scheduled future when the executor next
    // runs it; run everything that is ready.
    while ex.try_tick() {}
    assert_eq!(group.len(), 1);
    tx.try_send(()).unwrap();
    run_bounded(ex.run(async {
        assert_eq!(task.await, Some(()));
        group.wait().await;
    }));
}

#[test]
fn wait_timeout_of_zero_with_live_guards_answers_at_once() {
    let group = Group::new();
    let _guard = group.add_named("busy").unwrap();
    let mut wait = pin!(group.wait_timeout(Duration::ZERO));
    let err = block_on(poll_once(wait.as_mut()))
        .expect("ready at once")
        .unwrap_err();
    assert_eq!(err.names(), ["busy"]);
}

#[test]
#[cfg_attr(miri, ignore = "needs async-io's reactor (timerfd)")]
fn wait_deadline_far_in_the_future_stays_pending_until_drained() {
    let group = Group::new();
    let guard = group.add().unwrap();
    let far = Instant::now() + Duration::from_secs(100 * 365 * 24 * 3600);
    let waker = FlagWaker::new();
    let mut wait = pin!(group.wait_deadline(far));
    assert!(waker.poll(wait.as_mut()).is_pending());
    drop(guard);
    assert!(waker.take_woken(), "the last guard did not wake the waiter");
    assert!(matches!(waker.poll(wait.as_mut()), Poll::Ready(Ok(()))));
}

/// A task that holds one of the group's guards and waits on that group waits for
/// itself (`group.rs` checks that `wait` never resolves): `wait_timeout` reports its own
/// guard.
#[test]
fn wait_timeout_from_a_guard_holder_reports_that_guard() {
    let group = Group::new();
    let own = group.add_named("waits on its own group").unwrap();
    let stragglers = run_bounded(async {
        let _own = &own;
        group.wait_timeout(Duration::from_millis(1)).await
    })
    .unwrap_err();
    assert_eq!(stragglers.count(), 1);
    assert_eq!(stragglers.names(), ["waits on its own group"]);
    drop(own);
    assert!(group.is_empty());

    // Blocking, the same.
    let group = Group::new();
    let own = group.add_named("blocks on its own group").unwrap();
    let stragglers = group
        .wait_blocking_timeout(Duration::from_millis(1))
        .unwrap_err();
    assert_eq!(stragglers.names(), ["blocks on its own group"]);
    drop(own);
}

#[test]
fn timed_wait_futures_are_send() {
    fn send<T: Send>(_: &T) {}
    let group = Group::new();
    send(&group.wait_timeout(Duration::ZERO));
    send(&group.wait_deadline(Instant::now()));
}
