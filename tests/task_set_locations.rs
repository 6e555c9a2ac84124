//! Every way to start a `TaskSet` task records the *caller's* line in
//! `Straggler::location`, not a line inside the crate: `TaskSet::spawn`,
//! `TaskSet::track`, each start method of `TaskBuilder` (from the set and
//! from a `Spawner`), `Spawner::spawn`, and a task that waits inside the set
//! for a slot of its limit.
//!
//! Each test starts its tasks on the lines where it reads `line!()`, then
//! checks the set's stragglers, in spawn order. Tasks wait forever (the set's
//! drop at the end of the test aborts them) or, on the executors the tests
//! never run, are never polled; blocking closures wait on a channel the test
//! controls. Every wait is bounded.
#![cfg(feature = "smol")]

mod common;

use std::sync::mpsc;

use common::{run_bounded, LIMIT};
use smol::{Executor, LocalExecutor};
use smol_graceful::TaskSet;

/// A task that never finishes on its own.
fn forever() -> std::future::Pending<Result<(), String>> {
    std::future::pending()
}

/// Asserts that the set's stragglers, in spawn order, are `expected`: each
/// task's name and the line of this file that started it.
#[track_caller]
fn assert_started_at<T, E>(set: &TaskSet<T, E>, expected: &[(&str, u32)]) {
    let stragglers = set.stragglers();
    assert_eq!(stragglers.count(), expected.len(), "{stragglers}");
    let found: Vec<(String, &str, u32)> = stragglers
        .named()
        .iter()
        .map(|s| {
            (
                s.name().to_owned(),
                s.location().file(),
                s.location().line(),
            )
        })
        .collect();
    let expected: Vec<(String, &str, u32)> = expected
        .iter()
        .map(|&(name, line)| (name.to_owned(), file!(), line))
        .collect();
    assert_eq!(found, expected, "{stragglers}");
}

/// A blocking closure that waits until the returned sender says go (or 5 s).
fn blocking_until_released() -> (
    mpsc::Sender<()>,
    impl FnOnce() -> Result<(), String> + Send + 'static,
) {
    let (release, released) = mpsc::channel::<()>();
    let f = move || {
        released
            .recv_timeout(LIMIT)
            .map_err(|_| "never released".to_owned())
    };
    (release, f)
}

#[test]
fn spawn_records_the_callers_line() {
    let set = TaskSet::<(), String>::new();
    let (line, spawned) = (line!(), set.spawn(forever()));
    spawned.unwrap();
    assert_started_at(&set, &[("task #0", line)]);
}

#[test]
fn track_records_the_callers_line() {
    let set = TaskSet::<(), String>::new();
    let (line, tracked) = (line!(), set.track(forever()));
    let _task = tracked.unwrap();
    assert_started_at(&set, &[("task #0", line)]);
}

#[test]
fn build_task_spawn_records_the_callers_line() {
    let set = TaskSet::<(), String>::new();
    let (unnamed, spawned) = (line!(), set.build_task().spawn(forever()));
    spawned.unwrap();
    let (named, spawned) = (line!(), set.build_task().name("n").spawn(forever()));
    spawned.unwrap();
    assert_started_at(&set, &[("task #0", unnamed), ("n", named)]);
}

#[test]
fn build_task_spawn_on_records_the_callers_line() {
    let ex = Executor::new();
    let set = TaskSet::<(), String>::new();
    let (unnamed, spawned) = (line!(), set.build_task().spawn_on(&ex, forever()));
    spawned.unwrap();
    let (named, spawned) = (line!(), set.build_task().name("n").spawn_on(&ex, forever()));
    spawned.unwrap();
    assert_started_at(&set, &[("task #0", unnamed), ("n", named)]);
}

#[test]
fn build_task_spawn_local_records_the_callers_line() {
    let ex = LocalExecutor::new();
    let set = TaskSet::<(), String>::new();
    let (unnamed, spawned) = (line!(), set.build_task().spawn_local(&ex, forever()));
    spawned.unwrap();
    // The line of the start method counts, not that of `build_task`.
    let builder = set.build_task().name("n");
    let (named, spawned) = (line!(), builder.spawn_local(&ex, forever()));
    spawned.unwrap();
    assert_started_at(&set, &[("task #0", unnamed), ("n", named)]);
}

#[test]
fn build_task_spawn_blocking_records_the_callers_line() {
    let mut set = TaskSet::<(), String>::new();
    let (release_a, a) = blocking_until_released();
    let (release_b, b) = blocking_until_released();
    let (unnamed, spawned) = (line!(), set.build_task().spawn_blocking(a));
    spawned.unwrap();
    let (named, spawned) = (line!(), set.build_task().name("b").spawn_blocking(b));
    spawned.unwrap();
    assert_started_at(&set, &[("task #0", unnamed), ("b", named)]);
    release_a.send(()).unwrap();
    release_b.send(()).unwrap();
    assert_eq!(run_bounded(set.join()).unwrap(), [(), ()]);
}

#[test]
fn build_task_track_records_the_callers_line() {
    let set = TaskSet::<(), String>::new();
    let (unnamed, tracked) = (line!(), set.build_task().track(forever()));
    let _a = tracked.unwrap();
    let (named, tracked) = (line!(), set.build_task().name("n").track(forever()));
    let _b = tracked.unwrap();
    assert_started_at(&set, &[("task #0", unnamed), ("n", named)]);
}

#[test]
fn spawner_spawn_records_the_callers_line() {
    let set = TaskSet::<(), String>::new();
    let spawner = set.spawner();
    let (line, spawned) = (line!(), spawner.spawn(forever()));
    spawned.unwrap();
    assert_started_at(&set, &[("task #0", line)]);
}

#[test]
fn spawner_build_task_records_the_callers_line_for_every_start_method() {
    let ex = Executor::new();
    let local = LocalExecutor::new();
    let mut set = TaskSet::<(), String>::new();
    let spawner = set.spawner();
    let (release, f) = blocking_until_released();
    let (spawn, spawned) = (line!(), spawner.build_task().name("a").spawn(forever()));
    spawned.unwrap();
    let (spawn_on, spawned) = (line!(), spawner.build_task().spawn_on(&ex, forever()));
    spawned.unwrap();
    let builder = spawner.build_task().name("c");
    let (spawn_local, spawned) = (line!(), builder.spawn_local(&local, forever()));
    spawned.unwrap();
    let (spawn_blocking, spawned) = (line!(), spawner.build_task().spawn_blocking(f));
    spawned.unwrap();
    let (track, tracked) = (line!(), spawner.build_task().name("e").track(forever()));
    let tracked = tracked.unwrap();
    assert_started_at(
        &set,
        &[
            ("a", spawn),
            ("task #1", spawn_on),
            ("c", spawn_local),
            ("task #3", spawn_blocking),
            ("e", track),
        ],
    );
    // End them all: the blocking one by its channel, the others by abort
    // (the ones on executors that never ran, by dropping those executors).
    release.send(()).unwrap();
    drop(tracked);
    set.abort();
    drop((ex, local));
    let error = run_bounded(set.join()).unwrap_err();
    assert!(error.is_cancelled(), "{error}");
}

#[test]
fn a_spawner_called_inside_a_task_records_the_line_of_that_call() {
    let set = TaskSet::<(), String>::new();
    let spawner = set.spawner();
    let (line_tx, line_rx) = mpsc::channel::<u32>();
    let body = async move {
        let (line, spawned) = (line!(), spawner.build_task().name("child").spawn(forever()));
        line_tx.send(line).unwrap();
        spawned.map_err(|e| e.to_string())?;
        forever().await
    };
    let (parent, spawned) = (line!(), set.build_task().name("parent").spawn(body));
    spawned.unwrap();
    let child = line_rx
        .recv_timeout(LIMIT)
        .expect("the parent to spawn its child");
    assert_started_at(&set, &[("parent", parent), ("child", child)]);
}

#[test]
fn a_task_queued_past_the_limit_records_the_callers_line() {
    let ex = Executor::new();
    let mut set = TaskSet::<(), String>::new().with_limit(1);
    let (running, spawned) = (line!(), set.build_task().spawn_on(&ex, forever()));
    spawned.unwrap();
    // The set is full: each of these is listed at once and waits inside it.
    let (queued, spawned) = (line!(), set.build_task().name("q").spawn_on(&ex, forever()));
    spawned.unwrap();
    let (release, f) = blocking_until_released();
    let (queued_blocking, spawned) = (line!(), set.build_task().spawn_blocking(f));
    spawned.unwrap();
    let (queued_tracked, tracked) = (line!(), set.track(forever()));
    let tracked = tracked.unwrap();
    assert_eq!(set.len(), 4);
    assert_started_at(
        &set,
        &[
            ("task #0", running),
            ("q", queued),
            ("task #2", queued_blocking),
            ("task #3", queued_tracked),
        ],
    );
    // The blocking closure never got a slot: abort cuts it while it waits,
    // and dropping `ex` (never run) drops its two tasks.
    set.abort();
    drop((release, tracked, ex));
    assert!(run_bounded(set.join()).unwrap_err().is_cancelled());
}
