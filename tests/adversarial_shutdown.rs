//! A hostile user's review of `Shutdown::after_trigger` and `child_with_deadline`:
//! temporaries dropped mid-chain, 10^5 registrations and deadline scopes, chains 10^4
//! deep, races between `stop` and the trigger, callbacks that trigger, register, stop
//! or panic, and captured state whose `Drop` panics.
#![cfg(all(unix, feature = "smol"))]

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Barrier, OnceLock};
use std::thread;
use std::time::{Duration, Instant};

use smol_graceful::{AfterTrigger, Reason, Shutdown};

use common::subprocess::{child_role, rerun_self};
use common::{run_bounded, LIMIT};

/// An hour from now: a deadline that never comes during a test.
fn far() -> Instant {
    Instant::now() + Duration::from_secs(3_600)
}

/// Runs `f` on a thread with a 256 KiB stack, and joins it (bounded).
fn on_small_stack(f: impl FnOnce() + Send + 'static) {
    let handle = thread::Builder::new()
        .stack_size(256 * 1024)
        .spawn(f)
        .unwrap();
    common::join_within(handle);
}

/// A helper that returns only the child of a deadline scope: the deadline scope's own
/// handle is a dropped temporary, and its deadline must still reach the child.
#[test]
fn a_helper_returning_only_a_deadline_scopes_child_still_hears_the_deadline() {
    fn request_scope(server: &Shutdown) -> Shutdown {
        server
            .child_with_deadline(Instant::now() + Duration::from_millis(20))
            .child()
    }
    let server = Shutdown::new();
    let scope = request_scope(&server);
    run_bounded(scope.triggered());
    assert!(matches!(scope.reason(), Some(Reason::DeadlineExceeded)));
    assert!(!server.is_triggered(), "never upward");
}

/// A deadline child of a scope that already triggered starts triggered with the
/// parent's reason, whatever its deadline (past or far).
#[test]
fn a_deadline_child_of_a_triggered_scope_starts_triggered_with_the_parents_reason() {
    let server = Shutdown::new();
    server.trigger();
    for deadline in [Instant::now(), far()] {
        let child = server.child_with_deadline(deadline);
        assert!(child.is_triggered());
        assert!(matches!(child.reason(), Some(Reason::Requested)));
    }
}

/// A chain of 10^4 deadline scopes, each a `child_with_deadline` of the last, held by
/// its leaf: the root's trigger reaches the leaf, and the drop unlinks it, both on a
/// small stack.
#[test]
fn a_deadline_chain_ten_thousand_deep_triggers_from_the_root_and_drops_on_a_small_stack() {
    on_small_stack(|| {
        let root = Shutdown::new();
        let mut leaf = root.clone();
        for _ in 0..10_000 {
            leaf = leaf.child_with_deadline(far());
        }
        let started = Instant::now();
        assert!(root.trigger());
        assert!(leaf.is_triggered());
        assert!(matches!(leaf.reason(), Some(Reason::Requested)));
        drop(leaf);
        assert!(started.elapsed() < LIMIT);
    });
    // Untriggered, the chain drops just as well.
    on_small_stack(|| {
        let root = Shutdown::new();
        let mut leaf = root.clone();
        for _ in 0..10_000 {
            leaf = leaf.child_with_deadline(far());
        }
        drop(leaf);
        assert!(!root.is_triggered());
    });
}

/// The deadline of a scope in the middle of a deep chain fires for everything below it,
/// and nothing above.
#[test]
fn a_deadline_in_the_middle_of_a_deep_chain_reaches_the_leaf() {
    on_small_stack(|| {
        let root = Shutdown::new();
        let mut leaf = root.clone();
        for _ in 0..5_000 {
            leaf = leaf.child_with_deadline(far());
        }
        let middle = leaf.child_with_deadline(Instant::now() + Duration::from_millis(10));
        leaf = middle.clone();
        for _ in 0..5_000 {
            leaf = leaf.child_with_deadline(far());
        }
        drop(middle);
        run_bounded(leaf.triggered());
        assert!(matches!(leaf.reason(), Some(Reason::DeadlineExceeded)));
        assert!(!root.is_triggered());
    });
}

#[cfg(target_os = "linux")]
fn rss_bytes() -> usize {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap();
    let pages: usize = statm.split_whitespace().nth(1).unwrap().parse().unwrap();
    pages * 4096
}

/// "The task and its timer are released as soon as the scope ... is dropped": rounds
/// of 10^5 deadline scopes made and dropped leave the memory where the first round
/// left it. In a child process, so that no other test's allocations blur the count.
#[test]
#[cfg(target_os = "linux")]
fn a_hundred_thousand_dropped_deadline_scopes_give_their_memory_back() {
    const TEST: &str = "a_hundred_thousand_dropped_deadline_scopes_give_their_memory_back";
    if child_role().is_some() {
        let root = Shutdown::new();
        let round = || {
            let scopes: Vec<Shutdown> = (0..100_000)
                .map(|_| root.child_with_deadline(far()))
                .collect();
            drop(scopes);
            // The cancelled timer tasks are dropped by the executor's threads: let
            // them get through the queue.
            run_bounded(async {
                for _ in 0..16 {
                    smol::spawn(async {}).await;
                }
            });
        };
        let started = Instant::now();
        round();
        round();
        let after_two = rss_bytes();
        for _ in 0..6 {
            round();
        }
        let grown = rss_bytes().saturating_sub(after_two);
        println!("rounds took {:?}; grew {grown} bytes", started.elapsed());
        assert!(
            grown < 40 << 20,
            "six more rounds grew the memory by {grown} bytes"
        );
        assert!(!root.is_triggered());
        return;
    }
    let child = rerun_self(TEST, "rss", 6 * LIMIT);
    let (status, lines, stderr) = child.finish(6 * LIMIT);
    assert!(
        status.success(),
        "{status}; stdout: {lines:?}; stderr:\n{stderr}"
    );
}

/// 10^5 callbacks on one scope: the trigger returns within the limit (it only hands
/// them on; about 1 s in a debug build, linear in the count), and every one runs, once,
/// within the limit.
#[test]
fn a_hundred_thousand_callbacks_on_one_scope_all_run_once_promptly() {
    const N: usize = 100_000;
    let shutdown = Shutdown::new();
    let runs = Arc::new(AtomicUsize::new(0));
    let (done, all_done) = mpsc::channel();
    let handles: Vec<AfterTrigger> = (0..N)
        .map(|_| {
            let (runs, done) = (Arc::clone(&runs), done.clone());
            shutdown.after_trigger(move || {
                if runs.fetch_add(1, Ordering::SeqCst) + 1 == N {
                    done.send(()).unwrap();
                }
            })
        })
        .collect();
    let started = Instant::now();
    assert!(shutdown.trigger());
    let trigger_took = started.elapsed();
    all_done.recv_timeout(LIMIT).expect("every callback ran");
    let all_took = started.elapsed();
    assert!(trigger_took < LIMIT, "trigger took {trigger_took:?}");
    assert!(all_took < LIMIT, "the callbacks took {all_took:?}");
    assert!(handles.iter().all(|handle| !handle.stop()), "each ran");
    assert_eq!(runs.load(Ordering::SeqCst), N, "once each");
}

/// `stop` on several threads at once, racing the trigger on another: exactly one of
/// "it ran" and "a `stop` returned `true`" each time.
#[test]
fn stop_on_many_threads_against_a_trigger_has_exactly_one_winner() {
    const ROUNDS: usize = 500;
    const STOPPERS: usize = 3;
    let (ran_tx, ran) = mpsc::channel::<usize>();
    let mut stopped_rounds = 0;
    for round in 0..ROUNDS {
        let shutdown = Shutdown::new();
        let ran_tx = ran_tx.clone();
        let handle = Arc::new(shutdown.after_trigger(move || ran_tx.send(round).unwrap()));
        let barrier = Arc::new(Barrier::new(STOPPERS + 1));
        let stoppers: Vec<_> = (0..STOPPERS)
            .map(|_| {
                let (handle, barrier) = (Arc::clone(&handle), Arc::clone(&barrier));
                thread::spawn(move || {
                    barrier.wait();
                    handle.stop()
                })
            })
            .collect();
        barrier.wait();
        shutdown.trigger();
        let stops = stoppers
            .into_iter()
            .map(common::join_within)
            .filter(|&stopped| stopped)
            .count();
        assert!(stops <= 1, "round {round}: {stops} stops returned true");
        if stops == 1 {
            stopped_rounds += 1;
        } else {
            assert_eq!(
                ran.recv_timeout(LIMIT),
                Ok(round),
                "round {round}: no stop won, so it must run"
            );
        }
    }
    // A stopped callback that ran anyway would have arrived by now or soon after.
    let straggler = Shutdown::new();
    let (last_tx, last) = mpsc::channel();
    straggler.after_trigger(move || last_tx.send(()).unwrap());
    straggler.trigger();
    last.recv_timeout(LIMIT).unwrap();
    assert!(
        ran.try_recv().is_err(),
        "a stopped callback ran ({stopped_rounds} rounds were stopped)"
    );
}

/// Callbacks that use their own scope: one triggers it again (no effect, no deadlock),
/// one registers another callback on it (which runs at once), one stops its own handle
/// (too late: `false`), and one stops a sibling (exactly one of the two happens).
#[test]
fn callbacks_that_trigger_register_and_stop_on_their_own_scope() {
    let shutdown = Shutdown::new();
    let (events, seen) = mpsc::channel::<&'static str>();

    let (scope, tx) = (shutdown.clone(), events.clone());
    shutdown.after_trigger(move || {
        tx.send(if scope.trigger() {
            "retriggered"
        } else {
            "trigger is false"
        })
        .unwrap()
    });

    let (scope, tx) = (shutdown.clone(), events.clone());
    shutdown.after_trigger(move || {
        let inner = tx.clone();
        let late = scope.after_trigger(move || inner.send("registered inside ran").unwrap());
        tx.send(if late.stop() {
            "inner stopped"
        } else {
            "inner registered"
        })
        .unwrap();
    });

    let own: Arc<OnceLock<AfterTrigger>> = Arc::default();
    let (cell, tx) = (Arc::clone(&own), events.clone());
    let handle = shutdown.after_trigger(move || {
        let stopped = cell.get().expect("set before the trigger").stop();
        tx.send(if stopped {
            "stopped itself"
        } else {
            "own stop is false"
        })
        .unwrap();
    });
    own.set(handle).map_err(|_| ()).unwrap();

    let sibling: Arc<OnceLock<AfterTrigger>> = Arc::default();
    let (cell, tx) = (Arc::clone(&sibling), events.clone());
    shutdown.after_trigger(move || {
        let stopped = cell.get().expect("set before the trigger").stop();
        tx.send(if stopped {
            "sibling stopped"
        } else {
            "sibling not stopped"
        })
        .unwrap();
    });
    let tx = events.clone();
    let handle = shutdown.after_trigger(move || tx.send("sibling ran").unwrap());
    sibling.set(handle).map_err(|_| ()).unwrap();

    assert!(shutdown.trigger());
    // Five reports always; a sixth, "sibling ran", unless the sibling was stopped.
    let complete =
        |got: &[&str]| got.len() == 6 || (got.len() == 5 && got.contains(&"sibling stopped"));
    let mut got = Vec::new();
    while !complete(&got) {
        got.push(
            seen.recv_timeout(LIMIT)
                .unwrap_or_else(|e| panic!("after {got:?}: {e}")),
        );
    }
    assert!(
        seen.recv_timeout(Duration::from_millis(50)).is_err(),
        "{got:?}"
    );
    for expected in [
        "trigger is false",
        "inner registered",
        "registered inside ran",
        "own stop is false",
    ] {
        assert!(got.contains(&expected), "{expected:?} missing: {got:?}");
    }
    let sibling_ran = got.contains(&"sibling ran");
    let sibling_stopped = got.contains(&"sibling stopped");
    assert!(sibling_ran != sibling_stopped, "exactly one: {got:?}");
}

/// A deadline scope dropped just as its deadline comes (a deadline already past):
/// nothing panics, nothing reaches the parent, and a scope below it that is still
/// alive hears the deadline.
#[test]
fn deadline_scopes_dropped_just_as_they_fire() {
    let root = Shutdown::new();
    for _ in 0..2_000 {
        drop(root.child_with_deadline(Instant::now()));
    }
    for _ in 0..200 {
        let scope = root.child_with_deadline(Instant::now());
        let below = scope.child();
        let dropper = thread::spawn(move || drop(scope));
        run_bounded(below.triggered());
        assert!(matches!(below.reason(), Some(Reason::DeadlineExceeded)));
        common::join_within(dropper);
    }
    assert!(!root.is_triggered());
}

/// A callback that panics runs isolated: the others still run.
#[test]
fn a_panicking_callback_spoils_nothing_for_the_others() {
    let shutdown = Shutdown::new();
    let (ran, runs) = mpsc::channel();
    for i in 0..100 {
        let ran = ran.clone();
        shutdown.after_trigger(move || {
            if i % 2 == 0 {
                panic!("callback {i} fails");
            }
            ran.send(i).unwrap();
        });
    }
    shutdown.trigger();
    let mut got: Vec<i32> = (0..50).map(|_| runs.recv_timeout(LIMIT).unwrap()).collect();
    got.sort_unstable();
    assert_eq!(got, (0..100).filter(|i| i % 2 == 1).collect::<Vec<_>>());
}

/// Captured state whose `Drop` panics.
struct Bomb;

impl Drop for Bomb {
    fn drop(&mut self) {
        if !thread::panicking() {
            panic!("Bomb dropped");
        }
    }
}

/// The crate's rule (src/panic.rs): a `Drop` of user state the crate drops on its own
/// may panic, and the crate carries on. `stop` drops the callback it stopped: a panic
/// there must not escape `stop`, and the callback stays stopped.
#[test]
fn stop_survives_a_callback_whose_captured_state_panics_on_drop() {
    let shutdown = Shutdown::new();
    let bomb = Bomb;
    let handle = shutdown.after_trigger(move || {
        let _bomb = &bomb;
        unreachable!("stopped");
    });
    let stopped = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| handle.stop()));
    assert!(
        matches!(stopped, Ok(true)),
        "stop must return true, not panic"
    );
    assert!(!handle.stop());
    shutdown.trigger();
}

/// A scope dropped with two unrun callbacks whose captured state panics on drop: the
/// drop of the scope must not abort the process (a second panic while the first
/// unwinds). In a child process, since an abort would end the test runner.
#[test]
fn dropping_a_scope_with_two_callbacks_whose_state_panics_on_drop_does_not_abort() {
    const TEST: &str =
        "dropping_a_scope_with_two_callbacks_whose_state_panics_on_drop_does_not_abort";
    struct AlwaysBomb;
    impl Drop for AlwaysBomb {
        fn drop(&mut self) {
            panic!("AlwaysBomb dropped");
        }
    }
    if child_role().is_some() {
        let root = Shutdown::new();
        let scope = root.child();
        for _ in 0..2 {
            let bomb = AlwaysBomb;
            drop(scope.after_trigger(move || drop(bomb)));
        }
        let _ = std::panic::catch_unwind(move || drop(scope));
        root.trigger();
        println!("survived");
        return;
    }
    let child = rerun_self(TEST, "bombs", LIMIT);
    let (status, lines, stderr) = child.finish(LIMIT);
    assert!(
        status.success() && lines.iter().any(|line| line.contains("survived")),
        "{status}; stdout: {lines:?}; stderr:\n{stderr}"
    );
}
