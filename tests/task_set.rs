//! `TaskSet` semantics: first failure wins, panics and cancellations become
//! errors, results keep spawn order, the limit holds, blocking work counts.
//!
//! Deterministic: tasks wait on channels the test controls, futures are
//! driven with `poll_once`, and every wait is bounded by `run_bounded`.
//! The test counters use `SeqCst`: one total order keeps the reasoning about
//! them trivial, and speed does not matter here.
#![cfg(feature = "smol")]

mod common;

use std::pin::pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::thread;
use std::time::Duration;

use common::pool::Pool;
use common::run_bounded;
use futures_lite::future::{block_on, poll_once};
use smol::channel;
use smol::{Executor, LocalExecutor};
use smol_graceful::{Reason, Shutdown, TaskError, TaskSet, TaskSetClosed, TrySpawnError};

/// A one-shot gate: the task awaits `wait`, the test calls `open`.
fn gate() -> (channel::Sender<()>, channel::Receiver<()>) {
    channel::bounded(1)
}

/// Spawns one task per item of `outputs` on `set`, in order: task `i` waits for its
/// gate, says `i` on `done`, and returns `Ok` with item `i`. Returns the gates' `open`
/// ends, in spawn order.
async fn spawn_gated<'a, T: Send + 'a>(
    set: &TaskSet<T, String>,
    ex: &Executor<'a>,
    outputs: impl IntoIterator<Item = T>,
    done: &channel::Sender<usize>,
) -> Vec<channel::Sender<()>> {
    let mut gates = Vec::new();
    for (i, output) in outputs.into_iter().enumerate() {
        let (open, wait) = gate();
        gates.push(open);
        let done = done.clone();
        set.spawn(ex, async move {
            wait.recv().await.unwrap();
            done.send(i).await.unwrap();
            Ok(output)
        })
        .await
        .unwrap();
    }
    gates
}

/// The message of a `Reason::Error`, or a panic.
fn error_message(reason: Option<Reason>) -> String {
    match reason {
        Some(Reason::Error(error)) => error.to_string(),
        other => panic!("expected Reason::Error, got {other:?}"),
    }
}

#[test]
fn results_keep_spawn_order_whatever_order_tasks_finish_in() {
    let ex = Executor::new();
    let mut set = TaskSet::<usize, String>::new();
    let (done_tx, done_rx) = channel::unbounded();
    run_bounded(ex.run(async {
        let gates = spawn_gated(&set, &ex, [0, 10, 20, 30, 40], &done_tx).await;
        // Finish them in reverse order, one at a time.
        let mut finished = Vec::new();
        for open in gates.iter().rev() {
            open.send(()).await.unwrap();
            finished.push(done_rx.recv().await.unwrap());
        }
        assert_eq!(finished, [4, 3, 2, 1, 0]);
        assert_eq!(set.join().await.unwrap(), [0, 10, 20, 30, 40]);
    }));
}

#[test]
fn first_error_wins_triggers_the_shutdown_and_siblings_stop() {
    let ex = Executor::new();
    let mut set = TaskSet::<u32, String>::new();
    let stopped = Arc::new(AtomicUsize::new(0));
    run_bounded(ex.run(async {
        for i in 0..3 {
            let shutdown = set.shutdown().clone();
            let stopped = Arc::clone(&stopped);
            set.spawn_named(format!("sibling {i}"), &ex, async move {
                shutdown.triggered().await;
                stopped.fetch_add(1, Ordering::SeqCst);
                // A later failure: it must not replace the first one.
                Err(format!("sibling {i} gave up"))
            })
            .await
            .unwrap();
        }
        let (open, wait) = gate();
        set.spawn_named("fetch", &ex, async move {
            wait.recv().await.unwrap();
            Err("connection refused".to_owned())
        })
        .await
        .unwrap();
        assert!(!set.shutdown().is_triggered());
        open.send(()).await.unwrap();

        let error = set.join().await.unwrap_err();
        assert_eq!(
            error,
            TaskError::Failed {
                task: "fetch".into(),
                error: "connection refused".to_owned()
            }
        );
        assert_eq!(error.to_string(), "fetch failed: connection refused");
        assert_eq!(stopped.load(Ordering::SeqCst), 3, "every sibling stopped");
        assert_eq!(
            error_message(set.shutdown().reason()),
            "fetch failed: connection refused"
        );
    }));
}

#[test]
fn a_success_after_the_first_error_is_discarded() {
    let ex = Executor::new();
    let mut set = TaskSet::<u32, &str>::new();
    run_bounded(ex.run(async {
        let shutdown = set.shutdown().clone();
        set.spawn(&ex, async move {
            shutdown.triggered().await;
            Ok(1)
        })
        .await
        .unwrap();
        set.spawn(&ex, async { Err("boom") }).await.unwrap();
        let error = set.join().await.unwrap_err();
        assert_eq!(error.task(), "task #1");
        assert_eq!(error.into_error(), Some("boom"));
    }));
}

#[test]
fn a_panic_becomes_an_error_that_names_the_task_and_stops_siblings() {
    let ex = Executor::new();
    let mut set = TaskSet::<(), String>::new();
    run_bounded(ex.run(async {
        let shutdown = set.shutdown().clone();
        set.spawn_named("watcher", &ex, async move {
            shutdown.triggered().await;
            Ok(())
        })
        .await
        .unwrap();
        set.spawn_named("parser", &ex, async {
            let byte = 7;
            panic!("bad byte {byte}");
        })
        .await
        .unwrap();
        let error = set.join().await.unwrap_err();
        assert_eq!(
            error,
            TaskError::Panicked {
                task: "parser".into(),
                message: "bad byte 7".to_owned()
            }
        );
        assert_eq!(error.to_string(), "parser panicked: bad byte 7");
        assert_eq!(error.into_error(), None);
        assert_eq!(
            error_message(set.shutdown().reason()),
            "parser panicked: bad byte 7"
        );
    }));
}

#[test]
fn panics_with_str_and_non_string_payloads_are_caught_too() {
    let ex = Executor::new();
    run_bounded(ex.run(async {
        let mut set = TaskSet::<(), String>::new();
        set.spawn(&ex, async { panic!("static message") })
            .await
            .unwrap();
        let error = set.join().await.unwrap_err();
        assert_eq!(error.to_string(), "task #0 panicked: static message");

        let mut set = TaskSet::<(), String>::new();
        set.spawn(&ex, async { std::panic::panic_any(42_u8) })
            .await
            .unwrap();
        let error = set.join().await.unwrap_err();
        assert_eq!(
            error.to_string(),
            "task #0 panicked: a panic payload that is not a string"
        );
    }));
}

#[test]
fn a_panic_in_blocking_work_becomes_an_error() {
    let mut set = TaskSet::<(), String>::new();
    run_bounded(async {
        set.spawn_blocking_named("compress", || panic!("out of memory"))
            .await
            .unwrap();
        let error = set.join().await.unwrap_err();
        assert_eq!(error.to_string(), "compress panicked: out of memory");
    });
}

#[test]
fn the_limit_is_never_exceeded_by_async_and_blocking_tasks() {
    const LIMIT: usize = 3;
    let ex = Pool::start(3);

    let running = Arc::new(AtomicUsize::new(0));
    let peak = Arc::new(AtomicUsize::new(0));
    let enter = {
        let (running, peak) = (Arc::clone(&running), Arc::clone(&peak));
        move || {
            let now = running.fetch_add(1, Ordering::SeqCst) + 1;
            peak.fetch_max(now, Ordering::SeqCst);
        }
    };
    let mut set = TaskSet::<(), String>::new().with_limit(LIMIT);
    run_bounded(ex.run(async {
        for i in 0..60 {
            let (enter, running) = (enter.clone(), Arc::clone(&running));
            if i % 4 == 0 {
                set.spawn_blocking_named(format!("blocking {i}"), move || {
                    enter();
                    for _ in 0..10 {
                        thread::yield_now();
                    }
                    running.fetch_sub(1, Ordering::SeqCst);
                    Ok(())
                })
                .await
                .unwrap();
            } else {
                set.spawn(&ex, async move {
                    enter();
                    for _ in 0..10 {
                        smol::future::yield_now().await;
                    }
                    running.fetch_sub(1, Ordering::SeqCst);
                    Ok(())
                })
                .await
                .unwrap();
            }
            assert!(set.len() <= LIMIT);
        }
        assert_eq!(set.join().await.unwrap().len(), 60);
    }));
    ex.stop();
    let peak = peak.load(Ordering::SeqCst);
    assert!(
        (1..=LIMIT).contains(&peak),
        "{peak} tasks ran at once, limit {LIMIT}"
    );
    assert_eq!(running.load(Ordering::SeqCst), 0);
}

#[test]
fn spawn_waits_for_a_free_slot() {
    let ex = Executor::new();
    let mut set = TaskSet::<u32, String>::new().with_limit(2);
    let (done_tx, done_rx) = channel::unbounded();
    run_bounded(ex.run(async {
        let gates = spawn_gated(&set, &ex, [0, 1], &done_tx).await;
        {
            let mut third = pin!(set.spawn(&ex, async { Ok(2) }));
            assert!(poll_once(third.as_mut()).await.is_none(), "set is full");
            assert!(poll_once(third.as_mut()).await.is_none(), "still full");
            gates[0].send(()).await.unwrap();
            assert_eq!(done_rx.recv().await.unwrap(), 0);
            // The slot frees when task 0 has ended; the spawn then goes on.
            third.await.unwrap();
        }
        gates[1].send(()).await.unwrap();
        assert_eq!(set.join().await.unwrap(), [0, 1, 2]);
    }));
}

#[test]
fn try_spawn_fails_when_full_and_succeeds_once_a_slot_frees() {
    let ex = Executor::new();
    let mut set = TaskSet::<u32, String>::new().with_limit(1);
    let (open, wait) = gate();
    let (done_tx, done_rx) = channel::unbounded();
    set.try_spawn(&ex, async move {
        wait.recv().await.unwrap();
        done_tx.send(()).await.unwrap();
        Ok(1)
    })
    .unwrap();
    assert_eq!(
        set.try_spawn(&ex, async { Ok(2) }),
        Err(TrySpawnError::Full)
    );
    assert_eq!(set.try_reserve().unwrap_err(), TrySpawnError::Full);
    assert_eq!(TrySpawnError::Full.to_string(), "task set is full");
    run_bounded(ex.run(async {
        open.send(()).await.unwrap();
        done_rx.recv().await.unwrap();
        // Wait for the slot without spinning, then give it back: on this
        // one-thread executor nothing else can take it before `try_spawn`.
        drop(set.reserve().await.unwrap());
        set.try_spawn(&ex, async { Ok(3) }).unwrap();
        assert_eq!(set.join().await.unwrap(), [1, 3]);
    }));
}

#[test]
fn a_full_set_counts_unused_permits_and_a_dropped_permit_leaves_no_hole() {
    let ex = Executor::new();
    let mut set = TaskSet::<&str, String>::new().with_limit(1);
    let permit = set.try_reserve().unwrap();
    assert_eq!(set.try_reserve().unwrap_err(), TrySpawnError::Full);
    drop(permit);
    set.try_reserve()
        .unwrap()
        .named("only")
        .spawn(&ex, async { Ok("only") });
    run_bounded(ex.run(async {
        assert_eq!(set.join().await.unwrap(), ["only"]);
    }));
}

#[test]
fn blocking_work_delays_join_and_is_named_in_stragglers() {
    let mut set = TaskSet::<u32, String>::new();
    let (started_tx, started_rx) = mpsc::channel();
    let (release_tx, release_rx) = mpsc::channel::<()>();
    run_bounded(async {
        set.spawn_blocking_named("close database", move || {
            started_tx.send(()).unwrap();
            release_rx.recv().unwrap();
            Ok(7)
        })
        .await
        .unwrap();
        started_rx
            .recv_timeout(Duration::from_secs(5))
            .expect("the blocking closure started");
        assert_eq!(set.len(), 1);

        // The thread still runs: the deadline passes and names it.
        let stragglers = set
            .join_timeout(Duration::from_millis(1))
            .await
            .unwrap_err();
        assert_eq!(stragglers.count(), 1);
        assert_eq!(stragglers.names(), ["close database"]);

        let mut join = pin!(set.join());
        assert!(poll_once(join.as_mut()).await.is_none());
        release_tx.send(()).unwrap();
        assert_eq!(join.await.unwrap(), [7]);
    });
}

#[test]
fn blocking_work_counts_until_it_returns_even_with_no_executor() {
    let mut set = TaskSet::<(), String>::new();
    let (release_tx, release_rx) = mpsc::channel::<()>();
    let permit = set.try_reserve().unwrap();
    permit.named("fsync").spawn_blocking(move || {
        release_rx.recv().unwrap();
        Ok(())
    });
    let (polled_tx, polled_rx) = mpsc::channel();
    let joiner = thread::spawn(move || {
        let mut join = pin!(set.join());
        let first = block_on(poll_once(join.as_mut()));
        polled_tx.send(first.is_none()).unwrap();
        block_on(join)
    });
    let pending = polled_rx
        .recv_timeout(Duration::from_secs(5))
        .expect("join polled");
    assert!(
        pending,
        "join cannot return while the blocking closure runs"
    );
    release_tx.send(()).unwrap();
    assert_eq!(joiner.join().unwrap().unwrap(), [()]);
}

#[test]
fn a_dropped_tracked_task_is_cancelled_and_fails_the_set() {
    let mut set = TaskSet::<(), String>::new();
    run_bounded(async {
        let task = set
            .track(std::future::pending::<Result<(), String>>())
            .await
            .unwrap();
        assert!(!set.shutdown().is_triggered());
        drop(task);
        assert_eq!(
            error_message(set.shutdown().reason()),
            "task #0 was cancelled before it finished"
        );
        assert_eq!(
            set.join().await.unwrap_err(),
            TaskError::Cancelled {
                task: "task #0".into()
            }
        );
    });
}

#[test]
fn tasks_dropped_with_their_executor_are_cancelled() {
    let mut set = TaskSet::<(), String>::new();
    let ex = Executor::new();
    set.try_spawn(&ex, std::future::pending()).unwrap();
    assert_eq!(set.len(), 1);
    drop(ex);
    assert!(set.is_empty());
    let error = run_bounded(set.join()).unwrap_err();
    assert_eq!(
        error.to_string(),
        "task #0 was cancelled before it finished"
    );
}

#[test]
fn unnamed_tasks_are_named_by_spawn_index_in_stragglers() {
    let set = TaskSet::<(), String>::new();
    let ok = || std::future::ready(Ok(()));
    let tasks = run_bounded(async {
        vec![
            set.track(ok()).await.unwrap(),
            set.reserve().await.unwrap().named("named").track(ok()),
            set.track(ok()).await.unwrap(),
        ]
    });
    assert_eq!(set.stragglers().names(), ["task #0", "named", "task #2"]);
    assert_eq!(set.len(), 3);
    drop(tasks);
}

#[test]
fn join_closes_the_set_so_later_spawns_fail() {
    let ex = Executor::new();
    let mut set = TaskSet::<(), String>::new();
    run_bounded(ex.run(async {
        assert_eq!(set.join().await.unwrap(), []);
        assert_eq!(set.spawn(&ex, async { Ok(()) }).await, Err(TaskSetClosed));
        assert_eq!(
            set.try_spawn(&ex, async { Ok(()) }),
            Err(TrySpawnError::Closed)
        );
        assert_eq!(set.reserve().await.unwrap_err(), TaskSetClosed);
        assert!(set.track(async { Ok(()) }).await.is_err());
        assert_eq!(
            set.spawn_blocking_named("late", || Ok(()))
                .await
                .unwrap_err(),
            TaskSetClosed
        );
    }));
}

#[test]
fn closed_errors_speak_of_the_task_set() {
    let ex = Executor::new();
    let mut set = TaskSet::<(), String>::new();
    run_bounded(ex.run(async {
        set.join().await.unwrap();
        let closed = "task set is closed: join was called";
        let spawn = set.spawn(&ex, async { Ok(()) }).await.unwrap_err();
        assert_eq!(spawn.to_string(), closed);
        let named = set.spawn_named("n", &ex, async { Ok(()) }).await;
        assert_eq!(named.unwrap_err().to_string(), closed);
        let track = set.track(async { Ok(()) }).await.unwrap_err();
        assert_eq!(track.to_string(), closed);
        let blocking = set.spawn_blocking_named("b", || Ok(())).await.unwrap_err();
        assert_eq!(blocking.to_string(), closed);
        assert_eq!(set.reserve().await.unwrap_err().to_string(), closed);
        let try_spawn = set.try_spawn(&ex, async { Ok(()) }).unwrap_err();
        assert_eq!(try_spawn.to_string(), closed);
        assert_eq!(set.try_reserve().unwrap_err().to_string(), closed);
    }));
}

#[test]
fn calling_join_closes_the_set_even_if_the_join_is_dropped() {
    let ex = Executor::new();
    let mut set = TaskSet::<(), String>::new();
    drop(set.join());
    let spawn = run_bounded(set.spawn(&ex, async { Ok(()) }));
    assert!(spawn.is_err(), "closed at the call");
    assert_eq!(set.try_reserve().unwrap_err(), TrySpawnError::Closed);

    let mut set = TaskSet::<(), String>::new();
    drop(set.join_timeout(Duration::from_secs(5)));
    assert!(run_bounded(set.track(async { Ok(()) })).is_err());
    // Nothing was returned: the set is closed but its shutdown untouched.
    assert!(!set.shutdown().is_triggered());
    assert_eq!(run_bounded(set.join()).unwrap(), []);
}

#[test]
fn join_triggers_the_sets_shutdown_when_it_returns() {
    let mut set = TaskSet::<u32, String>::new();
    // Something outside the set that lives as long as the set's work.
    let helper = set.shutdown().child();
    let (open, wait) = gate();
    let task = run_bounded(set.track(async move {
        wait.recv().await.unwrap();
        Ok(1)
    }))
    .unwrap();
    let runner = thread::spawn(move || block_on(task));
    {
        let mut join = pin!(set.join());
        assert!(block_on(poll_once(join.as_mut())).is_none());
        assert!(!helper.is_triggered(), "not while join waits");
        open.send_blocking(()).unwrap();
        assert_eq!(run_bounded(join).unwrap(), [1]);
    }
    runner.join().unwrap();
    assert!(matches!(set.shutdown().reason(), Some(Reason::Finished)));
    assert!(helper.is_triggered(), "the set's scopes hear it too");
    run_bounded(helper.triggered());
}

#[test]
fn join_keeps_the_reason_of_the_first_failure() {
    let mut set = TaskSet::<(), String>::new();
    let task = run_bounded(set.track(async { Err("bad".to_owned()) })).unwrap();
    run_bounded(task);
    run_bounded(set.join()).unwrap_err();
    assert_eq!(
        error_message(set.shutdown().reason()),
        "task #0 failed: bad"
    );
}

#[test]
fn join_timeout_triggers_the_shutdown_when_it_returns_the_outcome_only() {
    let mut set = TaskSet::<(), String>::new();
    let task = run_bounded(set.track(std::future::pending())).unwrap();
    // Timed out: the set is not over, its tasks are left to the caller.
    let stragglers = run_bounded(set.join_timeout(Duration::from_millis(1))).unwrap_err();
    assert_eq!(stragglers.names(), ["task #0"]);
    assert!(!set.shutdown().is_triggered());
    drop(task); // cancelled: the first failure triggers it with its reason
    let outcome = run_bounded(set.join_timeout(Duration::from_secs(5))).unwrap();
    assert_eq!(outcome.unwrap_err().task(), "task #0");

    let mut set = TaskSet::<u8, String>::new();
    let task = run_bounded(set.track(async { Ok(3) })).unwrap();
    run_bounded(task);
    let outcome = run_bounded(set.join_timeout(Duration::from_secs(5))).unwrap();
    assert_eq!(outcome.unwrap(), [3]);
    assert!(matches!(set.shutdown().reason(), Some(Reason::Finished)));
}

#[test]
fn join_timeout_prefers_finished_work_over_an_expired_timer() {
    let mut set = TaskSet::<u8, String>::new();
    let task = run_bounded(set.track(async { Ok(4) })).unwrap();
    run_bounded(task);
    // The time is out before the first poll, and the work is done: `Ok`.
    let outcome = run_bounded(set.join_timeout(Duration::ZERO)).unwrap();
    assert_eq!(outcome.unwrap(), [4]);
}

#[test]
fn join_is_cancel_safe() {
    let mut set = TaskSet::<u32, String>::new();
    let (open, wait) = gate();
    let task = run_bounded(set.track(async move {
        wait.recv().await.unwrap();
        Ok(5)
    }))
    .unwrap();
    let runner = thread::spawn(move || block_on(task));
    {
        let mut join = pin!(set.join());
        assert!(block_on(poll_once(join.as_mut())).is_none());
    } // dropped while pending
    open.send_blocking(()).unwrap();
    assert_eq!(run_bounded(set.join()).unwrap(), [5]);
    runner.join().unwrap();
}

#[test]
#[should_panic(expected = "after a join already returned")]
fn join_after_a_join_returned_panics() {
    let mut set = TaskSet::<(), String>::new();
    run_bounded(set.join()).unwrap();
    drop(set.join());
}

#[test]
fn join_timeout_returns_the_outcome_when_tasks_finish_in_time() {
    let ex = Executor::new();
    let mut set = TaskSet::<u32, String>::new();
    run_bounded(ex.run(async {
        set.spawn(&ex, async { Ok(1) }).await.unwrap();
        let outcome = set.join_timeout(Duration::from_secs(5)).await;
        assert_eq!(outcome.unwrap().unwrap(), [1]);
    }));
}

#[test]
fn a_parent_shutdown_reaches_the_tasks_but_a_failure_stays_in_the_set() {
    let ex = Executor::new();
    let service = Shutdown::new();
    run_bounded(ex.run(async {
        let mut failing = TaskSet::<(), String>::with_parent(&service);
        failing
            .spawn(&ex, async { Err("bad".to_owned()) })
            .await
            .unwrap();
        failing.join().await.unwrap_err();
        assert!(failing.shutdown().is_triggered());
        assert!(!service.is_triggered(), "never upward");

        let mut workers = TaskSet::<u32, String>::with_parent(&service);
        for i in 0..3 {
            let shutdown = workers.shutdown().clone();
            workers
                .spawn(&ex, async move {
                    shutdown.triggered().await;
                    Ok(i)
                })
                .await
                .unwrap();
        }
        service.trigger();
        assert_eq!(workers.join().await.unwrap(), [0, 1, 2]);
        assert!(matches!(
            workers.shutdown().reason(),
            Some(Reason::Requested)
        ));
    }));
}

#[test]
fn dropping_an_unjoined_set_triggers_its_shutdown() {
    let set = TaskSet::<(), String>::new();
    let shutdown = set.shutdown().clone();
    let task = run_bounded(set.track({
        let shutdown = shutdown.clone();
        async move {
            shutdown.triggered().await;
            Ok(())
        }
    }))
    .unwrap();
    drop(set);
    assert!(matches!(shutdown.reason(), Some(Reason::Requested)));
    run_bounded(task); // the orphan sees it and stops
}

#[test]
fn tracked_tasks_run_on_any_runtime() {
    let mut set = TaskSet::<&str, String>::new();
    run_bounded(async {
        let on_thread = set.track(async { Ok("thread") }).await.unwrap();
        let on_tokio = set.track(async { Ok("tokio") }).await.unwrap();
        let on_local = set.reserve().await.unwrap();
        let local = LocalExecutor::new();
        let rc = std::rc::Rc::new("local");
        on_local.spawn_local(&local, async move { Ok(*rc) });

        let thread = thread::spawn(move || block_on(on_thread));
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        runtime
            .block_on(async { tokio::spawn(on_tokio).await })
            .unwrap();
        while local.try_tick() {}
        thread.join().unwrap();
        assert_eq!(set.join().await.unwrap(), ["thread", "tokio", "local"]);
    });
}

#[test]
#[should_panic(expected = "the limit must be at least 1")]
fn a_limit_of_zero_panics() {
    let _ = TaskSet::<(), String>::new().with_limit(0);
}

#[test]
#[should_panic(expected = "before the first spawn")]
fn with_limit_after_a_spawn_panics() {
    let set = TaskSet::<(), String>::new();
    let task = set.try_reserve().unwrap().track(async { Ok(()) });
    let _ = set.with_limit(1);
    drop(task);
}

#[test]
fn the_spawn_futures_are_send() {
    fn assert_send<T: Send>(_: &T) {}
    let ex = Executor::new();
    let set = TaskSet::<u32, String>::new().with_limit(1);
    assert_send(&set.spawn(&ex, async { Ok(1) }));
    assert_send(&set.spawn_named("n", &ex, async { Ok(1) }));
    assert_send(&set.track(async { Ok(1) }));
    assert_send(&set.spawn_blocking_named("b", || Ok(1)));
    assert_send(&set.reserve());
    let mut set = set;
    assert_send(&set.join());
    assert_send(&set.join_timeout(Duration::from_secs(1)));
}
