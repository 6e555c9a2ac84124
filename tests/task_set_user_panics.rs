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
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Once};

use common::pool::Pool;
use common::run_bounded;
use futures_lite::future::block_on;
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
        set.spawn_named("loader", &ex, async { Err(BAD) })
            .await
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
fn a_panicking_display_still_stops_the_siblings() {
    install_logger();
    let ex = Executor::new();
    let mut set = TaskSet::<u32, Bad>::new();
    let stopped = Arc::new(AtomicUsize::new(0));
    run_bounded(ex.run(async {
        for _ in 0..3 {
            let shutdown = set.shutdown().clone();
            let stopped = Arc::clone(&stopped);
            set.spawn(&ex, async move {
                shutdown.triggered().await;
                stopped.fetch_add(1, Ordering::SeqCst);
                // Later failures, with the same bad `Display`, logged at debug level.
                Err(BAD)
            })
            .await
            .unwrap();
        }
        set.spawn_named("parser", &ex, async { Err(BAD) })
            .await
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
    run_bounded(async {
        set.spawn_blocking_named("fsync", || Err(BAD))
            .await
            .unwrap();
        let error = set.join().await.unwrap_err();
        assert_eq!(error.task(), "fsync");
    });
    assert!(set.shutdown().is_triggered());
}

#[test]
fn a_result_whose_drop_panics_does_not_break_join() {
    install_logger();
    let ex = Executor::new();
    let mut set = TaskSet::<Bomb, String>::new();
    run_bounded(ex.run(async {
        set.spawn(&ex, async { Ok(Bomb) }).await.unwrap();
        set.spawn_named("fetch", &ex, async { Err("refused".to_owned()) })
            .await
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
    let first = run_bounded(set.track(async { Err(BAD) })).unwrap();
    let later = run_bounded(set.track(async {
        Err(Bad {
            panic_on_drop: true,
        })
    }))
    .unwrap();
    block_on(first);
    // Dropped by the set as a later failure: must not panic out of the task.
    block_on(later);
    assert_eq!(run_bounded(set.join()).unwrap_err().task(), "task #0");
}

#[test]
fn a_panic_payload_whose_drop_panics_is_still_reported_as_a_panic() {
    install_logger();
    let mut set = TaskSet::<(), String>::new();
    let task = run_bounded(set.track(async {
        std::panic::panic_any(Bomb);
    }))
    .unwrap();
    block_on(task);
    let error = run_bounded(set.join()).unwrap_err();
    assert_eq!(
        error,
        TaskError::Panicked {
            task: "task #0".into(),
            message: "a panic payload that is not a string".to_owned()
        }
    );
}

#[test]
fn a_panicking_logger_does_not_break_the_set() {
    install_logger();
    let ex = Executor::new();
    let mut set = TaskSet::<(), String>::new();
    LOGGER_PANICS.with(|p| p.set(true));
    let error = run_bounded(ex.run(async {
        for i in 0..3 {
            let shutdown = set.shutdown().clone();
            set.spawn(&ex, async move {
                shutdown.triggered().await;
                Err(format!("sibling {i} gave up"))
            })
            .await
            .unwrap();
        }
        set.spawn_named("fetch", &ex, async { Err("refused".to_owned()) })
            .await
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
fn many_failures_with_a_panicking_display_still_join() {
    install_logger();
    let ex = Executor::new();
    let mut set = TaskSet::<(), Bad>::new().with_limit(64);
    run_bounded(ex.run(async {
        for _ in 0..2_000 {
            set.spawn(&ex, async { Err(BAD) }).await.unwrap();
        }
        assert_eq!(set.join().await.unwrap_err().task(), "task #0");
    }));
}

#[test]
fn dropping_an_unjoined_set_whose_values_panic_on_drop_does_not_panic() {
    install_logger();
    let set = TaskSet::<Bomb, Bad>::new();
    let ok = run_bounded(set.track(async { Ok(Bomb) })).unwrap();
    let failed = run_bounded(set.track(async {
        Err(Bad {
            panic_on_drop: true,
        })
    }))
    .unwrap();
    block_on(ok);
    block_on(failed);
    drop(set); // holds a `Bomb` result and a first error whose drop panics
}

#[test]
fn concurrent_failures_with_a_panicking_display_on_many_threads_still_join() {
    install_logger();
    // Dropped at the end, or while a failed assertion unwinds: either way the
    // executor threads stop, so a failure cannot hang the test.
    let ex = Pool::start(3);
    let mut set = TaskSet::<u32, Bad>::new();
    run_bounded(async {
        for i in 0..1_000 {
            let shutdown = set.shutdown().clone();
            set.spawn(&ex, async move {
                if i % 2 == 0 {
                    Err(BAD)
                } else {
                    shutdown.triggered().await;
                    Ok(i)
                }
            })
            .await
            .unwrap();
        }
        let error = set.join().await.unwrap_err();
        assert!(error.task().starts_with("task #"), "{error:?}");
    });
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
