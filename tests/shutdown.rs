//! Shutdown semantics, driven deterministically with `poll_once`.

mod common;

use std::pin::pin;
use std::sync::mpsc;
use std::sync::{Arc, Barrier};
use std::time::Duration;

use futures_lite::future::{block_on, poll_once};
use smol_graceful::{Reason, Shutdown};

#[test]
fn trigger_returns_true_exactly_once() {
    let shutdown = Shutdown::new();
    assert!(!shutdown.is_triggered());
    assert!(shutdown.reason().is_none());
    assert!(shutdown.trigger());
    assert!(!shutdown.trigger());
    assert!(!shutdown.clone().trigger_with(Reason::error("late")));
    assert!(
        matches!(shutdown.reason(), Some(Reason::Requested)),
        "the first reason stays"
    );
}

#[test]
fn concurrent_triggers_have_exactly_one_winner() {
    // Miri runs this about a thousand times slower; a few rounds still
    // exercise its data-race detector.
    let rounds = if cfg!(miri) { 3 } else { 50 };
    for _ in 0..rounds {
        let shutdown = Shutdown::new();
        let barrier = Arc::new(Barrier::new(4));
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let shutdown = shutdown.clone();
                let barrier = Arc::clone(&barrier);
                std::thread::spawn(move || {
                    barrier.wait();
                    let won = shutdown.trigger();
                    // Whatever the outcome, it is visible once trigger returns.
                    assert!(shutdown.is_triggered());
                    won
                })
            })
            .collect();
        let winners = threads
            .into_iter()
            .map(|t| t.join().unwrap())
            .filter(|&won| won)
            .count();
        assert_eq!(winners, 1);
    }
}

#[test]
fn every_clone_sees_the_trigger() {
    let shutdown = Shutdown::new();
    let clones: Vec<Shutdown> = (0..10).map(|_| shutdown.clone()).collect();
    let mut waits: Vec<_> = clones.iter().map(|s| Box::pin(s.triggered())).collect();
    for wait in &mut waits {
        assert!(block_on(poll_once(wait.as_mut())).is_none());
    }
    clones[3].trigger();
    for (clone, wait) in clones.iter().zip(&mut waits) {
        assert!(clone.is_triggered());
        assert!(block_on(poll_once(wait.as_mut())).is_some());
    }
    assert!(shutdown.is_triggered());
}

#[test]
fn triggered_wakes_waiters_on_other_threads() {
    let shutdown = Shutdown::new();
    let (ready_tx, ready_rx) = mpsc::channel();
    let (done_tx, done_rx) = mpsc::channel();
    let waiters: Vec<_> = (0..8)
        .map(|_| {
            let shutdown = shutdown.clone();
            let ready_tx = ready_tx.clone();
            let done_tx = done_tx.clone();
            std::thread::spawn(move || {
                let mut triggered = pin!(shutdown.triggered());
                assert!(block_on(poll_once(triggered.as_mut())).is_none());
                ready_tx.send(()).unwrap();
                block_on(triggered);
                done_tx.send(()).unwrap();
            })
        })
        .collect();
    for _ in 0..8 {
        ready_rx.recv_timeout(Duration::from_secs(5)).unwrap();
    }
    assert!(done_rx.try_recv().is_err());
    shutdown.trigger();
    for _ in 0..8 {
        done_rx
            .recv_timeout(Duration::from_secs(5))
            .expect("waiter woken");
    }
    for waiter in waiters {
        waiter.join().unwrap();
    }
}

#[test]
fn triggered_is_cancel_safe_and_ready_at_once_after_the_trigger() {
    let shutdown = Shutdown::new();
    for _ in 0..3 {
        let mut triggered = pin!(shutdown.triggered());
        assert!(block_on(poll_once(triggered.as_mut())).is_none());
    } // each dropped while registered
    shutdown.trigger();
    for _ in 0..3 {
        let mut triggered = pin!(shutdown.triggered());
        assert!(block_on(poll_once(triggered.as_mut())).is_some());
    }
}

#[test]
fn children_see_the_parent_trigger_with_its_reason() {
    let root = Shutdown::new();
    let child = root.child();
    let grandchild = child.child();
    let mut waiting = pin!(grandchild.triggered());
    assert!(block_on(poll_once(waiting.as_mut())).is_none());
    root.trigger_with(Reason::Signal(15));
    assert!(child.is_triggered());
    assert!(grandchild.is_triggered());
    assert!(block_on(poll_once(waiting.as_mut())).is_some());
    assert!(matches!(grandchild.reason(), Some(Reason::Signal(15))));
}

#[test]
fn children_never_trigger_their_parent() {
    let root = Shutdown::new();
    let child = root.child();
    let sibling = root.child();
    let grandchild = child.child();
    assert!(child.trigger());
    assert!(grandchild.is_triggered());
    assert!(!root.is_triggered());
    assert!(!sibling.is_triggered());
}

#[test]
fn a_child_triggered_on_its_own_keeps_its_reason() {
    let root = Shutdown::new();
    let child = root.child();
    child.trigger_with(Reason::error("connection reset"));
    root.trigger();
    assert!(matches!(child.reason(), Some(Reason::Error(_))));
}

#[test]
fn a_child_made_after_the_trigger_starts_triggered() {
    let root = Shutdown::new();
    root.trigger_with(Reason::Signal(2));
    let late = root.child();
    assert!(late.is_triggered());
    assert!(matches!(late.reason(), Some(Reason::Signal(2))));
    let mut triggered = pin!(late.triggered());
    assert!(block_on(poll_once(triggered.as_mut())).is_some());
}

#[test]
fn dropped_children_are_forgotten() {
    let root = Shutdown::new();
    for _ in 0..if cfg!(miri) { 100 } else { 10_000 } {
        drop(root.child());
    }
    let kept = root.child();
    root.trigger();
    assert!(kept.is_triggered());
}

#[test]
fn run_until_triggered_returns_the_output_when_the_future_wins() {
    let shutdown = Shutdown::new();
    assert_eq!(block_on(shutdown.run_until_triggered(async { 3 })), Some(3));
}

#[test]
fn run_until_triggered_returns_none_when_shutdown_wins() {
    let shutdown = Shutdown::new();
    let mut run = pin!(shutdown.run_until_triggered(std::future::pending::<()>()));
    assert!(block_on(poll_once(run.as_mut())).is_none());
    shutdown.trigger();
    assert_eq!(block_on(poll_once(run.as_mut())), Some(None));
}

#[test]
fn run_until_triggered_never_polls_the_future_after_the_trigger() {
    let shutdown = Shutdown::new();
    shutdown.trigger();
    let mut polled = false;
    let out = block_on(shutdown.run_until_triggered(async {
        polled = true;
    }));
    assert_eq!(out, None);
    assert!(!polled);
}

#[test]
fn reasons_display_readably() {
    assert_eq!(Reason::Signal(2).to_string(), "signal SIGINT");
    assert_eq!(Reason::Signal(15).to_string(), "signal SIGTERM");
    assert_eq!(Reason::Signal(1).to_string(), "signal 1");
    assert_eq!(Reason::Requested.to_string(), "requested");
    assert_eq!(Reason::Finished.to_string(), "finished");
    let io = std::io::Error::other("disk full");
    assert_eq!(Reason::error(io).to_string(), "error: disk full");
    let shutdown = Shutdown::new();
    assert_eq!(format!("{shutdown:?}"), "Shutdown { reason: None, .. }");
}

#[test]
fn shutdown_and_its_futures_are_send_sync() {
    fn send_sync<T: Send + Sync>() {}
    fn send<T: Send>(_: &T) {}
    send_sync::<Shutdown>();
    send_sync::<Reason>();
    let shutdown = Shutdown::new();
    send(&shutdown.triggered());
    send(&shutdown.run_until_triggered(async {}));
}

mod owned_and_guards {
    use super::*;

    use crate::common::waker::FlagWaker;

    use smol_graceful::DropGuard;

    #[test]
    fn triggered_owned_is_static_and_wakes_on_the_trigger() {
        fn is_static<T: 'static + Send>(_: &T) {}
        let shutdown = Shutdown::new();
        let mut owned = Box::pin(shutdown.child().triggered_owned()); // the child handle is gone
        is_static(&owned);
        let waker = FlagWaker::new();
        assert!(waker.poll(owned.as_mut()).is_pending());
        shutdown.trigger();
        assert!(waker.take_woken());
        assert!(waker.poll(owned.as_mut()).is_ready());
        let mut late = pin!(shutdown.triggered_owned());
        assert!(
            block_on(poll_once(late.as_mut())).is_some(),
            "ready at once"
        );
    }

    #[test]
    fn triggered_owned_is_cancel_safe() {
        let shutdown = Shutdown::new();
        for _ in 0..3 {
            let mut owned = pin!(shutdown.triggered_owned());
            assert!(block_on(poll_once(owned.as_mut())).is_none());
        }
        shutdown.trigger();
        assert!(block_on(poll_once(pin!(shutdown.triggered_owned()))).is_some());
    }

    #[test]
    fn a_drop_guard_triggers_when_dropped_and_not_when_disarmed() {
        let shutdown = Shutdown::new();
        let guard: DropGuard = shutdown.clone().drop_guard();
        assert!(!shutdown.is_triggered());
        drop(guard);
        assert!(matches!(
            shutdown.reason(),
            Some(Reason::GuardDropped { panicking: false })
        ));
        assert_eq!(shutdown.reason().unwrap().to_string(), "drop guard dropped");

        let other = Shutdown::new();
        let handle = other.clone().drop_guard().disarm();
        drop(handle);
        assert!(!other.is_triggered());
    }

    #[test]
    fn a_drop_guard_dropped_by_a_panic_says_so() {
        let shutdown = Shutdown::new();
        let guard = shutdown.clone().drop_guard();
        let hook = std::panic::take_hook();
        std::panic::set_hook(Box::new(|_| {}));
        let unwound = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || {
            let _guard = guard;
            panic!("the supervisor failed");
        }));
        std::panic::set_hook(hook);
        assert!(unwound.is_err());
        assert!(matches!(
            shutdown.reason(),
            Some(Reason::GuardDropped { panicking: true })
        ));
    }

    #[test]
    fn an_error_reason_keeps_the_error_for_downcasting_and_as_a_source() {
        use std::error::Error as _;
        let io = std::io::Error::new(std::io::ErrorKind::StorageFull, "disk full");
        let shutdown = Shutdown::new();
        shutdown.trigger_with(Reason::error(io));
        let reason = shutdown.reason().unwrap();
        assert_eq!(reason.to_string(), "error: disk full");
        let kind = reason
            .as_error()
            .and_then(|e| e.downcast_ref::<std::io::Error>())
            .map(std::io::Error::kind);
        assert_eq!(kind, Some(std::io::ErrorKind::StorageFull));
        let source = reason.source().expect("the task's error is the source");
        assert_eq!(source.to_string(), "disk full");
        assert!(Reason::Requested.source().is_none());
        // A child triggered by its parent carries the same error.
        let child = Shutdown::new().child();
        child.trigger_with(reason.clone());
        assert!(child.reason().unwrap().as_error().is_some());
    }
}

/// Go's `AfterFunc`: a callback runs once, on a thread of its own, when the
/// scope triggers; at once if it has.
#[test]
#[cfg_attr(
    miri,
    ignore = "callbacks run on smol's blocking pool, whose threads outlive the test (a leak to miri)"
)]
fn after_trigger_runs_once_at_the_trigger_or_at_once_if_triggered() {
    let shutdown = Shutdown::new();
    let (ran, runs) = mpsc::channel();
    let ran_too = ran.clone();
    let first = shutdown.after_trigger(move || ran.send("first").unwrap());
    assert!(runs.try_recv().is_err(), "not before the trigger");
    assert!(shutdown.trigger());
    assert_eq!(runs.recv_timeout(common::LIMIT).unwrap(), "first");
    assert!(!first.stop(), "it ran");
    let late = shutdown.after_trigger(move || ran_too.send("late").unwrap());
    assert_eq!(runs.recv_timeout(common::LIMIT).unwrap(), "late");
    assert!(!late.stop());
    shutdown.trigger();
    assert!(
        runs.recv_timeout(Duration::from_millis(50)).is_err(),
        "once each"
    );
}

#[test]
#[cfg_attr(
    miri,
    ignore = "callbacks run on smol's blocking pool, whose threads outlive the test (a leak to miri)"
)]
fn a_stopped_callback_never_runs_and_an_ancestors_trigger_runs_the_others() {
    let root = Shutdown::new();
    let scope = root.child().child();
    let (ran, runs) = mpsc::channel();
    let stopped = scope.after_trigger(|| panic!("a stopped callback ran"));
    let kept = scope.after_trigger(move || ran.send(()).unwrap());
    assert!(stopped.stop());
    assert!(!stopped.stop(), "only the first stop stops it");
    root.trigger();
    runs.recv_timeout(common::LIMIT).unwrap();
    assert!(!kept.stop());
}

/// A callback that panics or blocks holds up neither the trigger nor the
/// other callbacks.
#[test]
#[cfg_attr(
    miri,
    ignore = "callbacks run on smol's blocking pool, whose threads outlive the test (a leak to miri)"
)]
fn a_panicking_or_blocking_callback_holds_up_nothing() {
    let shutdown = Shutdown::new();
    let (release, blocked) = mpsc::channel::<()>();
    let (ran, runs) = mpsc::channel();
    shutdown.after_trigger(|| panic!("a callback that panics"));
    shutdown.after_trigger(move || {
        let _ = blocked.recv();
    });
    shutdown.after_trigger(move || ran.send(()).unwrap());
    assert!(shutdown.trigger(), "the trigger returns while one blocks");
    runs.recv_timeout(common::LIMIT).unwrap();
    drop(release);
}

/// 10^5 registrations stopped before a trigger: none runs, the scope keeps
/// working.
#[test]
#[cfg_attr(
    miri,
    ignore = "callbacks run on smol's blocking pool, whose threads outlive the test (a leak to miri)"
)]
fn a_hundred_thousand_stopped_callbacks_leave_nothing_to_run() {
    let shutdown = Shutdown::new();
    // Miri interprets: fewer there, the same paths.
    let count = if cfg!(miri) { 100 } else { 100_000 };
    for _ in 0..count {
        assert!(shutdown.after_trigger(|| panic!("stopped")).stop());
    }
    let (ran, runs) = mpsc::channel();
    shutdown.after_trigger(move || ran.send(()).unwrap());
    shutdown.trigger();
    runs.recv_timeout(common::LIMIT).unwrap();
}

/// `child_with_deadline`: Go's `WithDeadline`. It triggers itself with its
/// own reason, never upward; an earlier trigger wins.
#[cfg(feature = "smol")]
#[test]
#[cfg_attr(miri, ignore = "the deadline's timer is async-io's (timerfd)")]
fn a_deadline_scope_triggers_itself_and_never_its_parent() {
    use std::time::Instant;
    let server = Shutdown::new();
    let request = server.child_with_deadline(Instant::now() + Duration::from_millis(20));
    let inner = request.child();
    common::run_bounded(inner.triggered());
    assert!(matches!(request.reason(), Some(Reason::DeadlineExceeded)));
    assert!(matches!(inner.reason(), Some(Reason::DeadlineExceeded)));
    assert_eq!(request.reason().unwrap().to_string(), "deadline exceeded");
    assert!(!server.is_triggered());

    // The parent first: its reason, and the deadline changes nothing after.
    let early = server.child_with_deadline(Instant::now() + Duration::from_millis(20));
    server.trigger();
    assert!(matches!(early.reason(), Some(Reason::Requested)));
    common::run_bounded(smol::Timer::after(Duration::from_millis(40)));
    assert!(matches!(early.reason(), Some(Reason::Requested)));

    // A deadline already past triggers at once (at the timer's first turn).
    let past = Shutdown::new().child_with_deadline(Instant::now());
    common::run_bounded(past.triggered());
}

/// A scope dropped untriggered drops its callbacks (and so a deadline scope's
/// timer) with it: nothing runs, and a callback whose handle is gone too is
/// dropped at once.
#[test]
fn a_dropped_scope_drops_its_callbacks_unrun() {
    struct DropFlag(mpsc::Sender<&'static str>);
    impl Drop for DropFlag {
        fn drop(&mut self) {
            let _ = self.0.send("dropped");
        }
    }
    let root = Shutdown::new();
    let scope = root.child();
    let (events, seen) = mpsc::channel();
    let flag = DropFlag(events.clone());
    // The handle is dropped at once, as `child_with_deadline` drops its
    // timer's: then the scope alone holds the callback.
    drop(scope.after_trigger(move || {
        let _flag = &flag;
        events.send("ran").unwrap();
    }));
    let kept = scope.after_trigger(|| unreachable!("its scope was dropped"));
    drop(scope);
    assert_eq!(seen.recv_timeout(common::LIMIT).unwrap(), "dropped");
    root.trigger();
    assert!(
        seen.recv_timeout(Duration::from_millis(50)).is_err(),
        "it never runs"
    );
    assert!(
        kept.stop(),
        "a callback whose scope died never ran: stop says so"
    );
}
