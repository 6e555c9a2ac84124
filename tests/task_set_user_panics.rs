//! User code that a `TaskSet` runs may panic: the `Display` of the error
//! type, the `Drop` of results, errors and panic payloads, the logger. The
//! set must still stop the siblings, and `join` must still answer with an
//! error that names the failing task: never hang, never "entered unreachable
//! code".
//!
//! This binary installs a logger (process-wide) that accepts everything, so
//! the set's debug logs run their formatting; it panics on the threads that
//! ask it to. Every wait is bounded by `run_bounded`.
#![cfg(feature = "smol")]

mod common;

use std::cell::Cell;
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Once};

use common::pool::Pool;
use common::run_bounded;
use futures_lite::future::{block_on, poll_once};
use smol::Executor;
use smol_graceful::{Reason, TaskError, TaskSet};

/// An error whose `Display` panics, and whose `Drop` can be made to.
#[derive(Debug)]
struct Bad {
    panic_on_drop: bool,
}

impl fmt::Display for Bad {
    fn fmt(&self, _: &mut fmt::Formatter<'_>) -> fmt::Result {
        panic!("Display of Bad panicked");
    }
}

impl Drop for Bad {
    fn drop(&mut self) {
        if self.panic_on_drop && !std::thread::panicking() {
            panic!("Drop of Bad panicked");
        }
    }
}

const BAD: Bad = Bad {
    panic_on_drop: false,
};

/// A result whose `Drop` panics.
#[derive(Debug)]
struct Bomb;

impl Drop for Bomb {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            panic!("Drop of Bomb panicked");
        }
    }
}

thread_local! {
    /// Makes the logger panic on this thread.
    static LOGGER_PANICS: Cell<bool> = const { Cell::new(false) };
}

/// Formats every record (so a panicking `Display` in the arguments runs),
/// and panics on threads that set `LOGGER_PANICS`.
struct Logger;

impl log::Log for Logger {
    fn enabled(&self, _: &log::Metadata<'_>) -> bool {
        true
    }

    fn log(&self, record: &log::Record<'_>) {
        let text = record.args().to_string();
        if LOGGER_PANICS.with(Cell::get) {
            panic!("the logger is broken (was logging {text:?})");
        }
    }

    fn flush(&self) {}
}

fn install_logger() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        log::set_logger(&Logger).unwrap();
        log::set_max_level(log::LevelFilter::Trace);
    });
}

/// The message of a `Reason::Error`, or a panic.
fn error_message(reason: Option<Reason>) -> String {
    match reason {
        Some(Reason::Error(error)) => error.to_string(),
        other => panic!("expected Reason::Error, got {other:?}"),
    }
}

#[test]
fn a_panicking_display_alone_still_fails_the_set_with_the_tasks_name() {
    install_logger();
    let ex = Executor::new();
    let mut set = TaskSet::<(), Bad>::new();
    run_bounded(ex.run(async {
        set.build_task()
            .name("loader")
            .spawn_on(&ex, async { Err(BAD) })
            .unwrap();
        let error = set.join().await.unwrap_err();
        assert_eq!(error.task(), "loader");
        assert!(matches!(error, TaskError::Failed { .. }), "{error:?}");
    }));
    assert_eq!(
        error_message(set.shutdown().reason()),
        "loader failed (its error's Display panicked)"
    );
}

#[test]
fn join_next_hands_out_a_failure_whose_display_panics() {
    install_logger();
    let mut set = TaskSet::<(), Bad>::new();
    set.build_task()
        .name("loader")
        .spawn(async { Err(BAD) })
        .unwrap();
    let (name, outcome) = run_bounded(set.join_next()).expect("one task");
    assert_eq!(name, "loader");
    assert!(
        matches!(outcome, Err(TaskError::Failed { ref task, .. }) if task == "loader"),
        "{outcome:?}"
    );
    assert!(run_bounded(set.join_next()).is_none());
    assert_eq!(
        error_message(set.shutdown().reason()),
        "loader failed (its error's Display panicked)"
    );
}

#[test]
fn a_panicking_display_still_stops_the_siblings() {
    install_logger();
    let ex = Executor::new();
    let mut set = TaskSet::<u32, Bad>::new();
    let stopped = Arc::new(AtomicUsize::new(0));
    run_bounded(ex.run(async {
        for _ in 0..3 {
            let shutdown = set.shutdown().clone();
            let stopped = Arc::clone(&stopped);
            set.build_task()
                .spawn_on(&ex, async move {
                    shutdown.triggered().await;
                    stopped.fetch_add(1, Ordering::SeqCst);
                    // Later failures, with the same bad `Display`, logged at debug level.
                    Err(BAD)
                })
                .unwrap();
        }
        set.build_task()
            .name("parser")
            .spawn_on(&ex, async { Err(BAD) })
            .unwrap();
        let error = set.join().await.unwrap_err();
        assert_eq!(error.task(), "parser");
    }));
    assert_eq!(stopped.load(Ordering::SeqCst), 3, "every sibling stopped");
}

#[test]
fn a_panicking_display_in_blocking_work_still_fails_the_set() {
    install_logger();
    let mut set = TaskSet::<(), Bad>::new();
    set.build_task()
        .name("fsync")
        .spawn_blocking(|| Err(BAD))
        .unwrap();
    let error = run_bounded(set.join()).unwrap_err();
    assert_eq!(error.task(), "fsync");
    assert_eq!(
        error_message(set.shutdown().reason()),
        "fsync failed (its error's Display panicked)"
    );
}

#[test]
fn a_blocking_closure_whose_panic_payload_panics_on_drop_still_fails_the_set() {
    install_logger();
    let mut set = TaskSet::<(), String>::new();
    set.build_task()
        .name("fsync")
        .spawn_blocking(|| std::panic::panic_any(Bomb))
        .unwrap();
    set.build_task()
        .name("later")
        .spawn_blocking(|| std::panic::panic_any(Bomb))
        .unwrap();
    let error = run_bounded(set.join()).unwrap_err();
    assert!(error.is_panic(), "{error:?}");
    assert!(["fsync", "later"].contains(&error.task()), "{error:?}");
    // The other payload was dropped quietly by `join`; this one is defused.
    std::mem::forget(error.into_panic());
}

#[test]
fn a_result_whose_drop_panics_does_not_break_join() {
    install_logger();
    let ex = Executor::new();
    let mut set = TaskSet::<Bomb, String>::new();
    run_bounded(ex.run(async {
        set.build_task().spawn_on(&ex, async { Ok(Bomb) }).unwrap();
        set.build_task()
            .name("fetch")
            .spawn_on(&ex, async { Err("refused".to_owned()) })
            .unwrap();
        // The results are dropped when `join` returns the error.
        let error = set.join().await.unwrap_err();
        assert_eq!(error.to_string(), "fetch failed: refused");
    }));
}

#[test]
fn a_later_error_whose_drop_panics_does_not_break_its_task() {
    install_logger();
    let mut set = TaskSet::<(), Bad>::new();
    let first = set.track(async { Err(BAD) }).unwrap();
    let later = set
        .track(async {
            Err(Bad {
                panic_on_drop: true,
            })
        })
        .unwrap();
    block_on(first);
    block_on(later);
    // Kept as a later failure, then dropped by `join`: must not panic out of it.
    assert_eq!(run_bounded(set.join()).unwrap_err().task(), "task #0");
}

#[test]
fn a_panic_payload_whose_drop_panics_is_still_reported_as_a_panic() {
    install_logger();
    let mut set = TaskSet::<(), String>::new();
    let task = set
        .track(async {
            std::panic::panic_any(Bomb);
        })
        .unwrap();
    block_on(task);
    let error = run_bounded(set.join()).unwrap_err();
    assert!(error.is_panic(), "{error:?}");
    assert_eq!(error.task(), "task #0");
    assert_eq!(
        error.to_string(),
        "task #0 panicked: a panic payload that is not a string"
    );
    assert!(
        format!("{error:?}").contains("a panic payload that is not a string"),
        "{error:?}"
    );
    assert_eq!(
        error_message(set.shutdown().reason()),
        "task #0 panicked: a panic payload that is not a string"
    );
    // The error keeps the original payload; the test defuses it.
    let payload = error.into_panic();
    assert!(payload.is::<Bomb>());
    std::mem::forget(payload);
}

#[test]
fn a_later_panic_whose_payload_panics_on_drop_is_dropped_quietly_by_join() {
    install_logger();
    let mut set = TaskSet::<(), String>::new();
    let first = set.track(async { Err("first".to_owned()) }).unwrap();
    let later = set
        .track(async {
            std::panic::panic_any(Bomb);
        })
        .unwrap();
    block_on(first);
    block_on(later);
    let error = run_bounded(set.join()).unwrap_err();
    assert_eq!(error.to_string(), "task #0 failed: first");
}

#[test]
fn a_panicking_logger_does_not_break_the_set() {
    install_logger();
    let ex = Executor::new();
    let mut set = TaskSet::<(), String>::new();
    LOGGER_PANICS.with(|p| p.set(true));
    // The tasks run on this thread, so the set logs (and the logger panics) here.
    let error = run_bounded(ex.run(async {
        for i in 0..3 {
            let shutdown = set.shutdown().clone();
            set.build_task()
                .spawn_on(&ex, async move {
                    shutdown.triggered().await;
                    Err(format!("sibling {i} gave up"))
                })
                .unwrap();
        }
        set.build_task()
            .name("fetch")
            .spawn_on(&ex, async { Err("refused".to_owned()) })
            .unwrap();
        set.join().await.unwrap_err()
    }));
    LOGGER_PANICS.with(|p| p.set(false));
    assert_eq!(error.to_string(), "fetch failed: refused");
    assert_eq!(
        error_message(set.shutdown().reason()),
        "fetch failed: refused"
    );
}

#[test]
fn aborting_tasks_under_a_panicking_logger_still_cancels_every_one() {
    install_logger();
    let ex = Executor::new();
    let mut set = TaskSet::<(), String>::new();
    let (started_tx, started_rx) = smol::channel::bounded::<()>(3);
    for _ in 0..3 {
        let started = started_tx.clone();
        set.build_task()
            .spawn_on(&ex, async move {
                started.send(()).await.map_err(|e| e.to_string())?;
                std::future::pending().await
            })
            .unwrap();
    }
    LOGGER_PANICS.with(|p| p.set(true));
    let outcomes = run_bounded(ex.run(async {
        // Every task waits at its pending point; then cut them all.
        for _ in 0..3 {
            started_rx.recv().await.unwrap();
        }
        set.abort();
        let mut outcomes = Vec::new();
        while let Some((name, outcome)) = set.join_next().await {
            outcomes.push((name.into_owned(), outcome.unwrap_err().is_cancelled()));
        }
        outcomes
    }));
    LOGGER_PANICS.with(|p| p.set(false));
    assert_eq!(outcomes.len(), 3, "{outcomes:?}");
    assert!(
        outcomes.iter().all(|(_, cancelled)| *cancelled),
        "{outcomes:?}"
    );
    assert!(set.is_empty());
}

#[test]
fn many_failures_with_a_panicking_display_still_join() {
    install_logger();
    let ex = Executor::new();
    let mut set = TaskSet::<(), Bad>::new().with_limit(64);
    run_bounded(ex.run(async {
        for _ in 0..2_000 {
            // Past the limit, each task waits inside the set for a slot.
            set.build_task().spawn_on(&ex, async { Err(BAD) }).unwrap();
        }
        assert_eq!(set.join().await.unwrap_err().task(), "task #0");
    }));
}

#[test]
fn dropping_an_unjoined_set_whose_values_panic_on_drop_does_not_panic() {
    install_logger();
    let set = TaskSet::<Bomb, Bad>::new();
    let ok = set.track(async { Ok(Bomb) }).unwrap();
    let failed = set
        .track(async {
            Err(Bad {
                panic_on_drop: true,
            })
        })
        .unwrap();
    let panicked = set
        .track(async {
            std::panic::panic_any(Bomb);
        })
        .unwrap();
    block_on(ok);
    block_on(failed);
    block_on(panicked);
    // Holds a `Bomb` result, a first error and a panic payload whose drops panic.
    drop(set);
}

/// Sets its flag, then panics, when dropped (unless already unwinding).
struct LoudBomb(Arc<AtomicBool>);

impl Drop for LoudBomb {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
        if !std::thread::panicking() {
            panic!("Drop of LoudBomb panicked");
        }
    }
}

/// A task body that holds a bomb across an await: dropping it unfinished
/// (by an abort) runs the bomb's panicking `Drop`, which sets the returned
/// flag first.
fn holds_a_bomb() -> (
    Arc<AtomicBool>,
    impl std::future::Future<Output = Result<(), String>>,
) {
    let went_off = Arc::new(AtomicBool::new(false));
    let bomb = LoudBomb(Arc::clone(&went_off));
    let body = async move {
        let _bomb = bomb;
        std::future::pending::<()>().await;
        Ok(())
    };
    (went_off, body)
}

#[test]
fn abort_cuts_a_task_whose_body_panics_on_drop() {
    install_logger();
    let mut set = TaskSet::<(), String>::new();
    let (went_off, body) = holds_a_bomb();
    let mut task = Box::pin(set.build_task().name("bomb").track(body).unwrap());
    assert!(block_on(poll_once(task.as_mut())).is_none(), "pending");
    set.abort();
    // Its next poll drops the body, whose panic stays inside the set.
    assert_eq!(block_on(poll_once(task.as_mut())), Some(()));
    assert!(went_off.load(Ordering::SeqCst), "the body was dropped");
    let error = run_bounded(set.join()).unwrap_err();
    assert!(error.is_cancelled(), "{error:?}");
    assert_eq!(error.task(), "bomb");
}

#[test]
fn dropping_an_unjoined_set_cuts_a_task_whose_body_panics_on_drop() {
    install_logger();
    let set = TaskSet::<(), String>::new();
    let spawner = set.spawner();
    let (went_off, body) = holds_a_bomb();
    let mut task = Box::pin(set.track(body).unwrap());
    assert!(block_on(poll_once(task.as_mut())).is_none(), "pending");
    drop(set);
    assert!(spawner.is_closed());
    // The drop aborted the task: its next poll drops the body, whose panic
    // stays inside the set.
    assert_eq!(block_on(poll_once(task.as_mut())), Some(()));
    assert!(went_off.load(Ordering::SeqCst), "the body was dropped");
}

#[test]
fn a_tracked_task_dropped_unfinished_whose_body_panics_on_drop_still_ends_as_cancelled() {
    install_logger();
    let mut set = TaskSet::<(), String>::new();
    let (went_off, body) = holds_a_bomb();
    let mut task = Box::pin(set.build_task().name("bomb").track(body).unwrap());
    assert!(block_on(poll_once(task.as_mut())).is_none(), "pending");
    // The caller's own drop runs the body's `Drop`: its panic is the
    // caller's, but the set still hears that the task ended.
    let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || drop(task)));
    assert!(went_off.load(Ordering::SeqCst), "the body was dropped");
    let error = run_bounded(set.join()).unwrap_err();
    assert!(error.is_cancelled(), "{error:?}");
    assert_eq!(error.task(), "bomb");
}

#[test]
fn concurrent_failures_with_a_panicking_display_on_many_threads_still_join() {
    install_logger();
    // Dropped at the end, or while a failed assertion unwinds: either way the
    // executor threads stop, so a failure cannot hang the test.
    let ex = Pool::start(3);
    let mut set = TaskSet::<u32, Bad>::new();
    for i in 0..1_000 {
        let shutdown = set.shutdown().clone();
        set.build_task()
            .spawn_on(&ex, async move {
                if i % 2 == 0 {
                    Err(BAD)
                } else {
                    shutdown.triggered().await;
                    Ok(i)
                }
            })
            .unwrap();
    }
    let error = run_bounded(set.join()).unwrap_err();
    assert!(error.task().starts_with("task #"), "{error:?}");
    ex.stop();
}

#[test]
fn dropping_an_unjoined_set_with_a_panicking_logger_does_not_panic() {
    install_logger();
    let set = TaskSet::<(), String>::new();
    let shutdown = set.shutdown().clone();
    LOGGER_PANICS.with(|p| p.set(true));
    drop(set);
    LOGGER_PANICS.with(|p| p.set(false));
    assert!(shutdown.is_triggered());
}

/// A hand-written body that is done at its first poll, and whose `Drop` panics.
struct DoneThenBomb(Option<u32>);

impl std::future::Future for DoneThenBomb {
    type Output = Result<u32, String>;

    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Self::Output> {
        std::task::Poll::Ready(self.0.take().ok_or_else(|| "polled again".to_owned()))
    }
}

impl Drop for DoneThenBomb {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            panic!("Drop of a finished body panicked");
        }
    }
}

#[test]
fn a_finished_body_whose_drop_panics_still_hands_its_value_to_join() {
    install_logger();
    let mut set = TaskSet::<u32, String>::new();
    let task = set.track(DoneThenBomb(Some(7))).unwrap();
    // The body's drop runs inside the task's poll, isolated: the poll returns.
    assert!(block_on(poll_once(task)).is_some());
    assert_eq!(run_bounded(set.join()).unwrap(), [7]);
}
