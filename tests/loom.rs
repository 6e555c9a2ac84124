//! Loom models: every interleaving of the group's count, close and wake-up,
//! of the shutdown broadcast, and of a task set's abort flag, explored
//! exhaustively (up to the preemption bound).
//!
//! The task set needs the `smol` feature, which loom builds leave off, so
//! its abort flag is modelled through its own file: `src/task_set/abort.rs`
//! is compiled into this test as `mod abort`, unchanged, with the `mod sync`
//! below standing in for the crate's (loom's atomics).
//!
//! Run (as `.ci/run` does):
//!
//! ```sh
//! LOOM_MAX_PREEMPTIONS=2 RUSTFLAGS="--cfg loom" CARGO_TARGET_DIR=target/loom \
//!     cargo test --release --no-default-features --test loom
//! ```
//!
//! Each model can fail. Build with a planted bug and the models that guard
//! against it fail (`.ci/run` checks that each planted bug is caught, adding
//! `--cfg smol_graceful_bug="..."` to the `RUSTFLAGS` above):
//!
//! - `--cfg smol_graceful_bug="relaxed_decrement"`: the count's decrement is
//!   Relaxed and the last owner skips its acquire fence, so a waiter may miss
//!   a task's writes (`waiter_sees_the_writes_of_every_task_*`).
//! - `--cfg smol_graceful_bug="relaxed_done"`: `done` is published Relaxed
//!   (same models).
//! - `--cfg smol_graceful_bug="no_recheck"`: the first async waiter checks
//!   `done` before it takes the lock under which it parks its waker, instead
//!   of re-checking under the lock: a lost wakeup, seen as a deadlock.
//! - `--cfg smol_graceful_bug="relaxed_triggered"`: a scope's `triggered`
//!   flag is stored and loaded Relaxed, so a thread that sees
//!   `is_triggered()` may miss what the triggering thread wrote before
//!   `trigger()` (`is_triggered_sees_the_writes_before_the_trigger`).
//! - `--cfg smol_graceful_bug="stop_load_then_store"`: an after-trigger
//!   callback's `stop` checks that it is pending, then marks it stopped, in
//!   two steps instead of one compare-and-swap: the trigger can run it in
//!   between, and both happen (`after_trigger_runs_or_stops_exactly_once`).
//! - `--cfg smol_graceful_bug="load_before_listen"`: a task's abort watch
//!   loads the abort flag before it listens, so an abort between the two is
//!   neither seen nor heard (`abort_reaches_a_task_that_registered` fails its
//!   assertion, `abort_wakes_a_pending_task` deadlocks). Weakening the abort
//!   flag's two SeqCst orderings to Relaxed is not planted: event-listener's
//!   mutex over its list of listeners orders the two sides by itself today,
//!   and these models pass with both Relaxed, also without a preemption
//!   bound (see `AbortFlag::abort`).
#![cfg(loom)]

use std::future::Future;
use std::pin::pin;
use std::task::{Poll, Waker};

use loom::future::block_on;
use loom::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use loom::sync::Arc;
use loom::thread;
use smol_graceful::{Closed, Group, Shutdown};

/// A task set's abort flag and a task's watch on it: the library's own file.
#[path = "../src/task_set/abort.rs"]
mod abort;

/// What `abort.rs` takes from `crate::sync`, as the crate's `sync` module
/// gives it under loom.
mod sync {
    pub(crate) use loom::sync::atomic::{AtomicBool, Ordering};
}

#[path = "common/waker.rs"]
mod waker;

use abort::{AbortFlag, AbortWatch};
use waker::FlagWaker;

/// Two tasks write, then drop their guards on two threads; the waiter must
/// see both writes once `wait` resolves.
fn waiter_sees_the_writes_of_every_task(wait: fn(&Group)) {
    loom::model(move || {
        let group = Group::new();
        let data = Arc::new([AtomicUsize::new(0), AtomicUsize::new(0)]);
        let threads: Vec<_> = (0..2)
            .map(|i| {
                let guard = group.add().unwrap();
                let data = Arc::clone(&data);
                thread::spawn(move || {
                    data[i].store(1, Ordering::Relaxed);
                    drop(guard);
                })
            })
            .collect();
        wait(&group);
        assert_eq!(data[0].load(Ordering::Relaxed), 1);
        assert_eq!(data[1].load(Ordering::Relaxed), 1);
        for t in threads {
            t.join().unwrap();
        }
    });
}

#[test]
fn waiter_sees_the_writes_of_every_task_async() {
    waiter_sees_the_writes_of_every_task(|group| block_on(group.wait()));
}

#[test]
fn waiter_sees_the_writes_of_every_task_blocking() {
    waiter_sees_the_writes_of_every_task(Group::wait_blocking);
}

/// One dropper, two waiters (one async, one blocking): both wake.
#[test]
fn one_dropper_wakes_two_waiters() {
    loom::model(|| {
        let group = Group::new();
        let guard = group.add().unwrap();
        let written = Arc::new(AtomicBool::new(false));
        let dropper = {
            let written = Arc::clone(&written);
            thread::spawn(move || {
                written.store(true, Ordering::Relaxed);
                drop(guard);
            })
        };
        let blocking = {
            let group = group.clone();
            let written = Arc::clone(&written);
            thread::spawn(move || {
                group.wait_blocking();
                assert!(written.load(Ordering::Relaxed));
            })
        };
        block_on(group.wait());
        assert!(written.load(Ordering::Relaxed));
        dropper.join().unwrap();
        blocking.join().unwrap();
    });
}

/// Two async waiters: the first takes the single-waiter slot, the second
/// listens on the event. One dropper must wake both, whichever order the
/// three threads run in (a lost wakeup is a loom deadlock).
#[test]
fn one_dropper_wakes_the_slot_waiter_and_a_listener() {
    loom::model(|| {
        let group = Group::new();
        let guard = group.add().unwrap();
        let dropper = thread::spawn(move || drop(guard));
        let second = {
            let group = group.clone();
            thread::spawn(move || block_on(group.wait()))
        };
        block_on(group.wait());
        assert!(group.is_empty());
        dropper.join().unwrap();
        second.join().unwrap();
    });
}

/// A waiter that took the slot and is then cancelled (dropped while pending)
/// gives the slot back, racing the last guard drop; the next waiter still
/// wakes.
#[test]
fn a_cancelled_slot_waiter_hands_the_slot_on() {
    loom::model(|| {
        let group = Group::new();
        let guard = group.add().unwrap();
        {
            let mut first = group.wait();
            // Pending, or already done if nothing else ran yet: both fine.
            let _ = block_on(futures_lite::future::poll_once(&mut first));
        }
        let dropper = thread::spawn(move || drop(guard));
        let cancelled = {
            let group = group.clone();
            thread::spawn(move || {
                let mut wait = group.wait();
                let _ = block_on(futures_lite::future::poll_once(&mut wait));
            })
        };
        block_on(group.wait());
        dropper.join().unwrap();
        cancelled.join().unwrap();
    });
}

/// Every `Group` handle but the waiter's is dropped before the last guard;
/// and with no handle left at all, the last guard drop still cleans up
/// (loom fails a model that leaks one of its `Arc`s).
#[test]
fn group_handle_dropped_before_the_last_guard() {
    loom::model(|| {
        let group = Group::new();
        let guard = group.add().unwrap();
        let waiter_group = group.clone();
        let waiter = thread::spawn(move || block_on(waiter_group.wait()));
        let dropper = thread::spawn(move || drop(guard));
        drop(group);
        dropper.join().unwrap();
        waiter.join().unwrap();
    });
    loom::model(|| {
        let group = Group::new();
        let guard = group.add().unwrap();
        let dropper = thread::spawn(move || drop(guard));
        drop(group);
        dropper.join().unwrap();
    });
}

/// `add` racing `wait`: an `Ok` guard always keeps `wait` pending until it
/// drops, and an `Err(Closed)` never counted.
#[test]
fn add_racing_wait_either_counts_or_is_closed() {
    loom::model(|| {
        let group = Group::new();
        let released = Arc::new(AtomicBool::new(false));
        let adder = {
            let group = group.clone();
            let released = Arc::clone(&released);
            thread::spawn(move || match group.add() {
                Ok(guard) => {
                    released.store(true, Ordering::Relaxed);
                    drop(guard);
                    true
                }
                Err(Closed) => false,
            })
        };
        block_on(group.wait());
        // `wait` resolved: no guard can be alive, and one that was handed
        // out must have finished its work first.
        assert!(group.is_empty());
        let added = adder.join().unwrap();
        if added {
            assert!(released.load(Ordering::Relaxed));
        }
        assert!(group.add().is_err());
    });
}

/// `add` racing `close` with another guard alive: the outcome is either
/// counted or `Closed`, and the count is exact afterwards.
#[test]
fn add_racing_close_keeps_the_count_exact() {
    loom::model(|| {
        let group = Group::new();
        let held = group.add().unwrap();
        let adder = {
            let group = group.clone();
            thread::spawn(move || group.add().ok())
        };
        let closed_here = group.close();
        assert!(closed_here);
        let added = adder.join().unwrap();
        assert_eq!(group.len(), 1 + usize::from(added.is_some()));
        drop((held, added));
        assert!(group.is_empty());
        block_on(group.wait());
    });
}

/// A guard cloned (on another thread) after the group was closed keeps the
/// waiter pending until the clone drops too.
#[test]
fn guard_cloned_after_close_keeps_the_waiter_pending() {
    loom::model(|| {
        let group = Group::new();
        let guard = group.add().unwrap();
        let clone_done = Arc::new(AtomicBool::new(false));
        let worker = {
            let clone_done = Arc::clone(&clone_done);
            thread::spawn(move || {
                let clone = guard.clone();
                drop(guard);
                clone_done.store(true, Ordering::Relaxed);
                drop(clone);
            })
        };
        block_on(group.wait());
        assert!(clone_done.load(Ordering::Relaxed));
        worker.join().unwrap();
    });
}

/// `trigger` wakes two receivers waiting on other threads.
#[test]
fn trigger_wakes_two_receivers() {
    loom::model(|| {
        let shutdown = Shutdown::new();
        let receivers: Vec<_> = (0..2)
            .map(|_| {
                let shutdown = shutdown.clone();
                thread::spawn(move || {
                    block_on(shutdown.triggered());
                    assert!(shutdown.is_triggered());
                })
            })
            .collect();
        assert!(shutdown.trigger());
        for r in receivers {
            r.join().unwrap();
        }
    });
}

/// A child sees its parent's trigger, also when it is created concurrently
/// with the trigger.
#[test]
fn child_sees_the_parent_trigger() {
    loom::model(|| {
        let parent = Shutdown::new();
        let child = parent.child();
        let waiter = thread::spawn(move || {
            block_on(child.triggered());
            assert!(child.reason().is_some());
        });
        let late = {
            let parent = parent.clone();
            thread::spawn(move || {
                let late_child = parent.child();
                block_on(late_child.triggered());
            })
        };
        parent.trigger();
        waiter.join().unwrap();
        late.join().unwrap();
    });
}

/// A scope hears its ancestor's trigger while the scope between them is
/// dropped on another thread (the middle scope's node must outlive its last
/// handle for as long as the leaf lives), and the nodes are freed whichever
/// thread lets go of them last.
#[test]
fn a_dropped_middle_scope_still_relays_the_trigger() {
    loom::model(|| {
        let root = Shutdown::new();
        let middle = root.child();
        let leaf = middle.child();
        let dropper = thread::spawn(move || drop(middle));
        let waiter = thread::spawn(move || {
            block_on(leaf.triggered());
            assert!(leaf.is_triggered());
        });
        root.trigger();
        dropper.join().unwrap();
        waiter.join().unwrap();
    });
}

/// `len` racing `close`: on an empty group it is 0 at every instant, and
/// with one guard alive it is 1 (the group's own reference leaves `open` and
/// the count in one critical section); a waiter still wakes.
#[test]
fn len_racing_close_is_exact() {
    for guards in 0..2 {
        loom::model(move || {
            let group = Group::new();
            let held: Vec<_> = (0..guards).map(|_| group.add().unwrap()).collect();
            let reader = {
                let group = group.clone();
                thread::spawn(move || (group.len(), group.stragglers().count()))
            };
            assert!(group.close());
            assert_eq!(reader.join().unwrap(), (guards, guards));
            assert_eq!(group.len(), guards);
            drop(held);
            block_on(group.wait());
            assert!(group.is_empty());
        });
    }
}

/// A writer stores to a plain data atomic, Relaxed, then triggers; a reader
/// that sees the trigger, through `is_triggered()` or `triggered().await`,
/// on the scope or on a child, then reads the data Relaxed and must see the
/// write: the trigger publishes it (the promise of `Shutdown::is_triggered`
/// and `Shutdown::triggered`).
#[test]
fn is_triggered_sees_the_writes_before_the_trigger() {
    for (through_child, by_await) in [(false, false), (true, false), (false, true), (true, true)] {
        loom::model(move || {
            let root = Shutdown::new();
            let watched = if through_child {
                root.child()
            } else {
                root.clone()
            };
            let data = Arc::new(AtomicUsize::new(0));
            let writer = {
                let data = Arc::clone(&data);
                thread::spawn(move || {
                    data.store(1, Ordering::Relaxed);
                    root.trigger();
                })
            };
            if by_await {
                block_on(watched.triggered());
            } else {
                while !watched.is_triggered() {
                    thread::yield_now();
                }
            }
            assert_eq!(
                data.load(Ordering::Relaxed),
                1,
                "saw the trigger but not the write before it \
                 (through_child: {through_child}, by_await: {by_await})"
            );
            writer.join().unwrap();
        });
    }
}

/// A task of a task set as `TrackedTask::poll` drives it, around a body that
/// never finishes: check the flag, poll the body (`Pending`), register the
/// watch. Ready once it has learnt of the abort.
fn aborted_task<'a>(
    flag: &'a AbortFlag,
    watch: &'a mut AbortWatch,
) -> impl Future<Output = ()> + 'a {
    std::future::poll_fn(move |cx| {
        if flag.is_aborted() || watch.register(flag, cx) {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    })
}

/// One thread aborts while a task registers its watch (one poll, with a flag
/// waker): the task sees the flag at that poll, or the abort wakes it.
#[test]
fn abort_reaches_a_task_that_registered() {
    loom::model(|| {
        let flag = Arc::new(AbortFlag::new());
        let aborter = {
            let flag = Arc::clone(&flag);
            thread::spawn(move || assert!(flag.abort(), "the first abort sets the flag"))
        };
        let waker = FlagWaker::new();
        let mut watch = AbortWatch::default();
        let seen = waker.poll(pin!(aborted_task(&flag, &mut watch))).is_ready();
        aborter.join().unwrap();
        assert!(
            seen || waker.take_woken(),
            "the abort was neither seen at the poll nor woke the task"
        );
        assert!(flag.is_aborted());
        assert!(!flag.abort(), "a second abort reports it was not the first");
    });
}

/// One thread aborts while a task runs under loom's `block_on` (a lost
/// wakeup is a loom deadlock); in the second model the task registered
/// first with another waker, so `block_on`'s poll re-registers the watch
/// with its own.
#[test]
fn abort_wakes_a_pending_task() {
    for moved in [false, true] {
        loom::model(move || {
            let flag = Arc::new(AbortFlag::new());
            let aborter = {
                let flag = Arc::clone(&flag);
                thread::spawn(move || {
                    flag.abort();
                })
            };
            let mut watch = AbortWatch::default();
            let mut task = pin!(aborted_task(&flag, &mut watch));
            if moved {
                let _ = task
                    .as_mut()
                    .poll(&mut std::task::Context::from_waker(Waker::noop()));
            }
            block_on(task);
            aborter.join().unwrap();
        });
    }
}

/// `after_trigger`'s `stop` races the trigger: for every registration
/// exactly one of "the callback ran" and "`stop` returned true" happens
/// (under loom the callback runs inline on the triggering thread).
#[test]
fn after_trigger_runs_or_stops_exactly_once() {
    for on_child in [false, true] {
        loom::model(move || {
            let root = Shutdown::new();
            let scope = if on_child { root.child() } else { root.clone() };
            let ran = Arc::new(AtomicUsize::new(0));
            let callback = {
                let ran = Arc::clone(&ran);
                // Relaxed: read after joining the triggering thread.
                scope.after_trigger(move || {
                    ran.fetch_add(1, Ordering::Relaxed);
                })
            };
            let trigger = thread::spawn(move || {
                root.trigger();
            });
            let stopped = callback.stop();
            trigger.join().unwrap();
            // Relaxed: the join orders the callback's increment before this.
            let ran = ran.load(Ordering::Relaxed);
            assert_eq!(
                usize::from(stopped) + ran,
                1,
                "stopped: {stopped}, ran {ran} times"
            );
            assert!(!callback.stop(), "a second stop never succeeds");
        });
    }
}
