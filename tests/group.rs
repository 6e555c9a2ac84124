//! Group semantics, driven deterministically with `poll_once` (or a flag waker, where a
//! test's name promises a wake). The tests that need smol's executors or async-io's
//! timers are in `group_smol.rs`.

mod common;

use std::pin::pin;
use std::sync::mpsc;
use std::time::Duration;

use common::waker::FlagWaker;
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
    let waker = FlagWaker::new();
    let mut wait = pin!(group.wait());
    assert!(waker.poll(wait.as_mut()).is_pending());
    drop(a);
    assert!(waker.poll(wait.as_mut()).is_pending());
    drop(b);
    assert!(waker.take_woken(), "the last guard did not wake the waiter");
    assert!(waker.poll(wait.as_mut()).is_ready());
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

#[test]
fn guard_clone_works_after_close_and_keeps_wait_pending() {
    let group = Group::new();
    let guard = group.add().unwrap();
    let waker = FlagWaker::new();
    let mut wait = pin!(group.wait());
    let clone = guard.clone();
    assert_eq!(group.len(), 2);
    drop(guard);
    assert!(waker.poll(wait.as_mut()).is_pending());
    drop(clone);
    assert!(waker.take_woken(), "the last clone did not wake the waiter");
    assert!(waker.poll(wait.as_mut()).is_ready());
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

#[test]
fn dropping_the_group_handle_while_guards_live_is_fine() {
    let group = Group::new();
    let observer = group.clone();
    let guard = group.add_named("orphan").unwrap();
    drop(group);
    assert_eq!(observer.len(), 1);
    let waker = FlagWaker::new();
    let mut wait = pin!(observer.wait());
    assert!(waker.poll(wait.as_mut()).is_pending());
    drop(guard);
    assert!(
        waker.take_woken(),
        "the orphan guard did not wake the waiter"
    );
    assert!(waker.poll(wait.as_mut()).is_ready());

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
    let waker = FlagWaker::new();
    let mut second = pin!(group.wait());
    assert!(waker.poll(second.as_mut()).is_pending());
    drop(guard);
    // The cancelled waiter did not take the wake-up with it.
    assert!(
        waker.take_woken(),
        "the waiter after a cancelled one was not woken"
    );
    assert!(waker.poll(second.as_mut()).is_ready());
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
fn guard_track_uses_an_existing_guard_after_close() {
    let group = Group::new();
    let guard = group.add().unwrap();
    group.close();
    let follow_up: Tracked<_> = guard.clone().track(async { 5 });
    drop(guard);
    let waker = FlagWaker::new();
    let mut wait = pin!(group.wait());
    assert!(waker.poll(wait.as_mut()).is_pending());
    assert_eq!(block_on(follow_up), 5);
    assert!(
        waker.take_woken(),
        "the follow-up's guard did not wake the waiter"
    );
    assert!(waker.poll(wait.as_mut()).is_ready());
}

#[test]
fn a_named_guard_track_is_listed_by_name_until_the_future_completes() {
    let group = Group::new();
    let (tx, rx) = mpsc::channel::<()>();
    let mut flusher = pin!(group.add_named("flusher").unwrap().track(async move {
        // Pending until the test sends, then done.
        futures_lite::future::poll_fn(|_| match rx.try_recv() {
            Ok(()) => std::task::Poll::Ready(7),
            Err(_) => std::task::Poll::Pending,
        })
        .await
    }));
    assert_eq!(group.stragglers().names(), ["flusher"]);
    assert!(block_on(poll_once(flusher.as_mut())).is_none());
    assert_eq!(group.len(), 1, "a pending tracked future still counts");
    tx.send(()).unwrap();
    assert_eq!(block_on(poll_once(flusher.as_mut())), Some(7));
    assert!(
        group.is_empty(),
        "the guard is released when the future completes"
    );
    assert!(group.stragglers().names().is_empty());
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

#[test]
fn wait_owned_closes_at_the_call_and_wakes_after_the_last_guard() {
    fn is_static<T: 'static + Send>(_: &T) {}
    let group = Group::new();
    let guard = group.add().unwrap();
    let mut wait = Box::pin(group.wait_owned());
    is_static(&wait);
    assert!(group.is_closed(), "closed at the call");
    assert_eq!(group.add().unwrap_err(), Closed);
    let waker = FlagWaker::new();
    assert!(waker.poll(wait.as_mut()).is_pending());
    drop(group); // the owned wait keeps the group alive
    drop(guard);
    assert!(waker.take_woken());
    assert!(waker.poll(wait.as_mut()).is_ready());
}

#[test]
fn wait_owned_is_cancel_safe_and_many_can_wait() {
    let group = Group::new();
    let guard = group.add().unwrap();
    let waker = FlagWaker::new();
    let mut waits: Vec<_> = (0..100).map(|_| Box::pin(group.wait_owned())).collect();
    for wait in &mut waits {
        assert!(waker.poll(wait.as_mut()).is_pending());
    }
    waits.truncate(10); // dropped pending waits give up their registration
    drop(guard);
    assert!(waker.take_woken());
    assert!(waits.iter_mut().all(|w| waker.poll(w.as_mut()).is_ready()));
    let mut late = pin!(group.wait_owned());
    assert!(block_on(poll_once(late.as_mut())).is_some());
}

#[test]
fn a_hundred_thousand_named_guards_are_listed_oldest_first_and_forgotten_when_dropped() {
    let group = Group::new();
    let n = if cfg!(miri) { 100 } else { 100_000 };
    let mut guards: Vec<Option<Guard>> = (0..n)
        .map(|i| Some(group.add_named(format!("task {i}")).unwrap()))
        .collect();
    let report = group.stragglers();
    assert_eq!(report.count(), n);
    let names = report.names();
    assert_eq!(names.len(), n);
    assert_eq!(names[0], "task 0");
    assert_eq!(names[n - 1], format!("task {}", n - 1));
    // Drop every other one, then the rest from the back.
    for guard in guards.iter_mut().step_by(2) {
        guard.take();
    }
    assert_eq!(group.stragglers().names().len(), n / 2);
    let waker = FlagWaker::new();
    let mut wait = pin!(group.wait());
    assert!(waker.poll(wait.as_mut()).is_pending());
    while let Some(guard) = guards.pop() {
        drop(guard);
    }
    assert!(waker.take_woken());
    assert!(waker.poll(wait.as_mut()).is_ready());
    assert!(group.stragglers().named().is_empty());
}
