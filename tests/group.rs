//! Group semantics, driven deterministically with `poll_once`.

mod common;

use std::pin::pin;
use std::sync::mpsc;
use std::time::Duration;
#[cfg(feature = "smol")]
use std::time::Instant;

#[cfg(feature = "smol")]
use common::run_bounded;
use futures_lite::future::{block_on, poll_once};
use smol_graceful::{Closed, Group, Guard, Tracked};

#[test]
fn wait_is_ready_at_once_on_an_empty_group() {
    let group = Group::new();
    let mut wait = pin!(group.wait());
    assert!(block_on(poll_once(wait.as_mut())).is_some());
}

#[test]
fn wait_closes_the_group_at_the_call_not_at_the_first_poll() {
    let group = Group::new();
    let _wait = group.wait();
    assert!(group.is_closed());
    assert_eq!(group.add().unwrap_err(), Closed);
}

#[test]
fn wait_stays_pending_while_a_guard_lives_and_wakes_after_last_guard() {
    let group = Group::new();
    let a = group.add().unwrap();
    let b = group.add().unwrap();
    let mut wait = pin!(group.wait());
    assert!(block_on(poll_once(wait.as_mut())).is_none());
    drop(a);
    assert!(block_on(poll_once(wait.as_mut())).is_none());
    drop(b);
    assert!(block_on(poll_once(wait.as_mut())).is_some());
}

#[test]
fn last_guard_wakes_every_waiter() {
    let group = Group::new();
    let guard = group.add().unwrap();
    let (done_tx, done_rx) = mpsc::channel();
    let (ready_tx, ready_rx) = mpsc::channel();
    let waiters: Vec<_> = (0..16)
        .map(|i| {
            let group = group.clone();
            let done_tx = done_tx.clone();
            let ready_tx = ready_tx.clone();
            std::thread::spawn(move || {
                let mut wait = pin!(group.wait());
                // Registered (and pending) before the guard drops.
                assert!(block_on(poll_once(wait.as_mut())).is_none());
                ready_tx.send(()).unwrap();
                block_on(wait);
                done_tx.send(i).unwrap();
            })
        })
        .collect();
    for _ in 0..16 {
        ready_rx
            .recv_timeout(Duration::from_secs(5))
            .expect("waiter registered");
    }
    assert!(
        done_rx.try_recv().is_err(),
        "no waiter may finish while the guard lives"
    );
    drop(guard);
    let mut woken: Vec<i32> = (0..16)
        .map(|_| {
            done_rx
                .recv_timeout(Duration::from_secs(5))
                .expect("waiter woken")
        })
        .collect();
    woken.sort();
    assert_eq!(woken, (0..16).collect::<Vec<_>>());
    for waiter in waiters {
        waiter.join().unwrap();
    }
}

#[test]
fn add_named_and_track_fail_after_close() {
    let group = Group::new();
    assert!(group.close());
    assert!(!group.close());
    assert_eq!(group.add().unwrap_err(), Closed);
    assert_eq!(group.add_named("late").unwrap_err(), Closed);
    assert!(group.track(async {}).is_err());
    assert!(group.stragglers().is_empty());
}

#[cfg(feature = "smol")]
#[test]
fn spawn_and_spawn_local_fail_after_close() {
    let group = Group::new();
    group.close();
    let ex = smol::Executor::new();
    assert_eq!(group.spawn(&ex, async {}).unwrap_err(), Closed);
    let local = smol::LocalExecutor::new();
    assert_eq!(group.spawn_local(&local, async {}).unwrap_err(), Closed);
}

#[test]
fn guard_clone_works_after_close_and_keeps_wait_pending() {
    let group = Group::new();
    let guard = group.add().unwrap();
    let mut wait = pin!(group.wait());
    let clone = guard.clone();
    assert_eq!(group.len(), 2);
    drop(guard);
    assert!(block_on(poll_once(wait.as_mut())).is_none());
    drop(clone);
    assert!(block_on(poll_once(wait.as_mut())).is_some());
}

#[test]
fn guard_dropped_by_panic_unwinding_counts_down() {
    let group = Group::new();
    let guard = group.add().unwrap();
    let result = std::thread::spawn(move || {
        let _guard = guard;
        panic!("task failed");
    })
    .join();
    assert!(result.is_err());
    assert!(group.is_empty());
    let mut wait = pin!(group.wait());
    assert!(block_on(poll_once(wait.as_mut())).is_some());
}

#[cfg(feature = "smol")]
#[test]
fn tracked_future_that_panics_releases_its_guard() {
    let ex = smol::Executor::new();
    let group = Group::new();
    let task = group.spawn(&ex, async { panic!("boom") }).unwrap();
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| block_on(ex.run(task))));
    assert!(outcome.is_err());
    assert!(group.is_empty());
}

#[test]
fn dropping_the_group_handle_while_guards_live_is_fine() {
    let group = Group::new();
    let observer = group.clone();
    let guard = group.add_named("orphan").unwrap();
    drop(group);
    assert_eq!(observer.len(), 1);
    let mut wait = pin!(observer.wait());
    assert!(block_on(poll_once(wait.as_mut())).is_none());
    drop(guard);
    assert!(block_on(poll_once(wait.as_mut())).is_some());

    // And with no handle left at all.
    let group = Group::new();
    let guard = group.add().unwrap();
    drop(group);
    let clone = guard.clone();
    drop((guard, clone));
}

#[test]
fn wait_blocking_works_from_plain_threads() {
    let group = Group::new();
    let (tx, rx) = mpsc::channel::<Guard>();
    tx.send(group.add().unwrap()).unwrap();
    let dropper = std::thread::spawn(move || drop(rx.recv().unwrap()));
    let (done_tx, done_rx) = mpsc::channel();
    let waiter = {
        let group = group.clone();
        std::thread::spawn(move || {
            group.wait_blocking();
            done_tx.send(group.len()).unwrap();
        })
    };
    assert_eq!(done_rx.recv_timeout(Duration::from_secs(5)), Ok(0));
    dropper.join().unwrap();
    waiter.join().unwrap();
}

#[test]
fn wait_blocking_timeout_reports_stragglers_and_succeeds_when_drained() {
    let group = Group::new();
    let guard = group.add_named("slow").unwrap();
    let err = group.wait_blocking_timeout(Duration::ZERO).unwrap_err();
    assert_eq!(err.names(), ["slow"]);
    drop(guard);
    assert!(group.wait_blocking_timeout(Duration::from_secs(5)).is_ok());
    // A timeout too large to represent as a deadline waits like `wait_blocking`.
    assert!(group.wait_blocking_timeout(Duration::MAX).is_ok());
}

#[test]
fn wait_is_cancel_safe() {
    let group = Group::new();
    let guard = group.add().unwrap();
    {
        let mut first = pin!(group.wait());
        assert!(block_on(poll_once(first.as_mut())).is_none());
    } // cancelled while registered
    let mut second = pin!(group.wait());
    assert!(block_on(poll_once(second.as_mut())).is_none());
    drop(guard);
    assert!(block_on(poll_once(second.as_mut())).is_some());
}

#[cfg(feature = "smol")]
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

#[cfg(feature = "smol")]
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
    assert!(err.named()[0].location().file().ends_with("group.rs"));
    let report = err.to_string();
    assert!(
        report.starts_with("4 tasks still running (3 named, 1 unnamed)"),
        "{report}"
    );
    assert_eq!(report.lines().count(), 4, "{report}");
    assert!(report.contains("  - first (running for "), "{report}");
}

#[cfg(feature = "smol")]
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

#[cfg(feature = "smol")]
#[test]
fn wait_timeout_prefers_success_when_already_drained() {
    let group = Group::new();
    let mut wait = pin!(group.wait_timeout(Duration::ZERO));
    assert!(matches!(block_on(poll_once(wait.as_mut())), Some(Ok(()))));
}

#[cfg(feature = "smol")]
#[test]
fn wait_timeout_with_a_huge_duration_does_not_fire() {
    let group = Group::new();
    let guard = group.add().unwrap();
    let mut wait = pin!(group.wait_timeout(Duration::MAX));
    assert!(block_on(poll_once(wait.as_mut())).is_none());
    drop(guard);
    assert!(matches!(block_on(poll_once(wait.as_mut())), Some(Ok(()))));
}

#[test]
fn stragglers_snapshot_counts_every_guard_and_names_only_named_ones() {
    let group = Group::new();
    assert!(group.stragglers().is_empty());
    let a = group.add_named("a").unwrap();
    let _b = group.add().unwrap();
    let s = group.stragglers();
    assert_eq!((s.count(), s.names()), (2, vec!["a"]));
    drop(a);
    let s = group.stragglers();
    assert_eq!((s.count(), s.names().len()), (1, 0));
    assert_eq!(s.to_string(), "1 task still running");
}

#[test]
fn empty_and_very_long_names_are_kept_as_given() {
    let group = Group::new();
    let long = "x".repeat(100_000);
    let _empty = group.add_named("").unwrap();
    let _long = group.add_named(long.clone()).unwrap();
    assert_eq!(group.stragglers().names(), ["", long.as_str()]);
}

#[test]
fn len_close_and_is_closed_report_state() {
    let group = Group::new();
    assert!(group.is_empty() && !group.is_closed());
    let guards: Vec<Guard> = (0..10).map(|_| group.add().unwrap()).collect();
    assert_eq!(group.len(), 10);
    assert!(group.close());
    assert!(group.is_closed());
    assert_eq!(group.len(), 10);
    drop(guards);
    assert!(group.is_empty());
}

#[test]
fn tracked_future_holds_its_guard_until_it_completes() {
    let group = Group::new();
    let (tx, rx) = async_channel::bounded::<u32>(1);
    let mut tracked = pin!(group
        .track(async move { rx.recv().await.unwrap() })
        .unwrap());
    assert_eq!(group.len(), 1);
    assert!(block_on(poll_once(tracked.as_mut())).is_none());
    assert_eq!(group.len(), 1);
    tx.try_send(9).unwrap();
    assert_eq!(block_on(poll_once(tracked.as_mut())), Some(9));
    assert_eq!(
        group.len(),
        0,
        "released on completion, before the future is dropped"
    );
}

#[test]
fn dropping_a_tracked_future_releases_its_guard() {
    let group = Group::new();
    let tracked = group.track(std::future::pending::<()>()).unwrap();
    assert_eq!(group.len(), 1);
    drop(tracked);
    assert!(group.is_empty());
}

#[test]
fn tracked_new_uses_an_existing_guard_after_close() {
    let group = Group::new();
    let guard = group.add().unwrap();
    group.close();
    let follow_up = Tracked::new(guard.clone(), async { 5 });
    drop(guard);
    let mut wait = pin!(group.wait());
    assert!(block_on(poll_once(wait.as_mut())).is_none());
    assert_eq!(block_on(follow_up), 5);
    assert!(block_on(poll_once(wait.as_mut())).is_some());
}

#[cfg(feature = "smol")]
#[test]
#[cfg_attr(miri, ignore = "needs async-io's reactor (timerfd)")]
fn spawned_tasks_are_counted_until_they_finish_or_are_cancelled() {
    let ex = smol::Executor::new();
    let group = Group::new();
    let (tx, rx) = async_channel::bounded::<()>(1);
    let task = group
        .spawn(&ex, async move { rx.recv().await.ok() })
        .unwrap();
    let cancelled = group.spawn(&ex, std::future::pending::<()>()).unwrap();
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
fn public_types_are_send_sync_and_small() {
    fn send_sync<T: Send + Sync>() {}
    fn send<T: Send>(_: &T) {}
    send_sync::<Group>();
    send_sync::<Guard>();
    send_sync::<Closed>();
    send_sync::<smol_graceful::Stragglers>();
    assert_eq!(std::mem::size_of::<Guard>(), std::mem::size_of::<usize>());
    let group = Group::new();
    send(&group.wait());
    #[cfg(feature = "smol")]
    send(&group.wait_timeout(Duration::ZERO));
    send(&group.track(async {}));
}

#[test]
fn debug_output_is_informative() {
    let group = Group::new();
    let guard = group.add_named("x").unwrap();
    assert_eq!(format!("{group:?}"), "Group { len: 1, closed: false, .. }");
    assert_eq!(format!("{guard:?}"), "Guard { named: true, .. }");
    assert!(guard.is_named());
    assert!(!group.add().unwrap().is_named());
}

#[cfg(feature = "smol")]
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

#[cfg(feature = "smol")]
#[test]
#[cfg_attr(miri, ignore = "needs async-io's reactor (timerfd)")]
fn wait_deadline_far_in_the_future_stays_pending_until_drained() {
    let group = Group::new();
    let guard = group.add().unwrap();
    let far = Instant::now() + Duration::from_secs(100 * 365 * 24 * 3600);
    let mut wait = pin!(group.wait_deadline(far));
    assert!(block_on(poll_once(wait.as_mut())).is_none());
    drop(guard);
    assert!(matches!(block_on(poll_once(wait.as_mut())), Some(Ok(()))));
}

/// `close` racing `len` on another thread: an empty group never reports a
/// guard, before, during or after the close (it used to report the group's
/// own reference for a moment after `close` unlocked and before it dropped
/// that reference). Each round races one close against a thread that reads
/// `len` until the close has returned.
#[test]
fn len_of_an_empty_group_is_zero_while_another_thread_closes_it() {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::{Arc, Barrier};

    // Miri runs this file too, a few thousand times slower.
    const ROUNDS: usize = if cfg!(miri) { 20 } else { 20_000 };
    let barrier = Arc::new(Barrier::new(2));
    let (groups_tx, groups_rx) = mpsc::channel::<(Group, Arc<AtomicBool>)>();
    let reader = {
        let barrier = Arc::clone(&barrier);
        std::thread::spawn(move || {
            let mut wrong = Vec::new();
            for (group, closed) in groups_rx {
                barrier.wait();
                // Acquire: pairs with the Release store after `close` returned,
                // so the last reads below come after the whole close.
                loop {
                    let done = closed.load(Ordering::Acquire);
                    for len in [group.len(), group.stragglers().count()] {
                        if len != 0 {
                            wrong.push(len);
                        }
                    }
                    if done {
                        break;
                    }
                }
            }
            wrong
        })
    };
    for _ in 0..ROUNDS {
        let group = Group::new();
        let closed = Arc::new(AtomicBool::new(false));
        groups_tx
            .send((group.clone(), Arc::clone(&closed)))
            .unwrap();
        barrier.wait();
        assert!(group.close());
        // Release: see the reader.
        closed.store(true, Ordering::Release);
    }
    drop(groups_tx);
    let wrong = reader.join().unwrap();
    assert!(
        wrong.is_empty(),
        "an empty group reported live guards {} times, e.g. {:?}",
        wrong.len(),
        &wrong[..wrong.len().min(5)]
    );
}

/// A task that holds one of the group's guards and waits on that group
/// waits for itself: `wait` stays pending for as long as the task lives.
#[test]
fn waiting_on_its_own_group_from_a_tracked_task_never_resolves() {
    let group = Group::new();
    let mut task = pin!(group
        .track({
            let group = group.clone();
            async move { group.wait().await }
        })
        .unwrap());
    for _ in 0..3 {
        assert!(block_on(poll_once(task.as_mut())).is_none());
    }
    assert!(group.is_closed());
    assert_eq!(group.len(), 1, "the task's own guard");
}

/// ... and `wait_timeout` from such a task reports its own guard.
#[cfg(feature = "smol")]
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
