//! Every way to start a `TaskSet` task records the *caller's* line in
//! `Straggler::location`, not a line inside the crate.
//!
//! Each test starts one task on the line where it reads `line!()`, then
//! checks the set's only straggler. Executors are never run, so async tasks
//! stay listed until the test drops them; blocking closures wait on a channel
//! the test controls. Every wait is bounded.
#![cfg(feature = "smol")]

mod common;

use std::pin::pin;
use std::sync::mpsc;
use std::time::Duration;

use common::run_bounded;
use futures_lite::future::{block_on, poll_once};
use smol::{Executor, LocalExecutor};
use smol_graceful::TaskSet;

/// A task that never finishes on its own.
fn forever() -> std::future::Pending<Result<(), String>> {
    std::future::pending()
}

/// Asserts that the set's only straggler was started at `line` of this file.
fn assert_started_at<T, E>(set: &TaskSet<T, E>, line: u32) {
    let stragglers = set.stragglers();
    assert_eq!(stragglers.named().len(), 1, "{stragglers}");
    let location = stragglers.named()[0].location();
    assert_eq!(
        (location.file(), location.line()),
        (file!(), line),
        "straggler reported at {location}"
    );
}

/// A blocking closure that waits until the returned sender says go (or 5 s).
fn blocking_until_released() -> (
    mpsc::Sender<()>,
    impl FnOnce() -> Result<(), String> + Send + 'static,
) {
    let (release, released) = mpsc::channel::<()>();
    let f = move || {
        released
            .recv_timeout(Duration::from_secs(5))
            .map_err(|_| "never released".to_owned())
    };
    (release, f)
}

#[test]
fn spawn_records_the_callers_line() {
    let ex = Executor::new();
    let set = TaskSet::<(), String>::new();
    let (line, spawned) = (line!(), set.spawn(&ex, forever()));
    run_bounded(spawned).unwrap();
    assert_started_at(&set, line);
}

#[test]
fn spawn_named_records_the_callers_line() {
    let ex = Executor::new();
    let set = TaskSet::<(), String>::new();
    let (line, spawned) = (line!(), set.spawn_named("n", &ex, forever()));
    run_bounded(spawned).unwrap();
    assert_started_at(&set, line);
}

#[test]
fn track_records_the_callers_line() {
    let set = TaskSet::<(), String>::new();
    let (line, tracked) = (line!(), set.track(forever()));
    let _task = run_bounded(tracked).unwrap();
    assert_started_at(&set, line);
}

#[test]
fn spawn_blocking_named_records_the_callers_line() {
    let mut set = TaskSet::<(), String>::new();
    let (release, f) = blocking_until_released();
    let (line, spawned) = (line!(), set.spawn_blocking_named("b", f));
    run_bounded(spawned).unwrap();
    assert_started_at(&set, line);
    release.send(()).unwrap();
    run_bounded(set.join()).unwrap();
}

#[test]
fn try_spawn_records_the_callers_line() {
    let ex = Executor::new();
    let set = TaskSet::<(), String>::new();
    let (line, spawned) = (line!(), set.try_spawn(&ex, forever()));
    spawned.unwrap();
    assert_started_at(&set, line);
}

#[test]
fn permit_spawn_records_the_callers_line() {
    let ex = Executor::new();
    let set = TaskSet::<(), String>::new();
    let permit = set.try_reserve().unwrap();
    let (line, ()) = (line!(), permit.spawn(&ex, forever()));
    assert_started_at(&set, line);
}

#[test]
fn permit_spawn_local_records_the_callers_line() {
    let ex = LocalExecutor::new();
    let set = TaskSet::<(), String>::new();
    let permit = set.try_reserve().unwrap();
    let (line, ()) = (line!(), permit.spawn_local(&ex, forever()));
    assert_started_at(&set, line);
}

#[test]
fn permit_track_records_the_callers_line() {
    let set = TaskSet::<(), String>::new();
    let permit = set.try_reserve().unwrap();
    let (line, _task) = (line!(), permit.track(forever()));
    assert_started_at(&set, line);
}

#[test]
fn permit_spawn_blocking_records_the_callers_line() {
    let mut set = TaskSet::<(), String>::new();
    let (release, f) = blocking_until_released();
    let permit = set.try_reserve().unwrap();
    let (line, ()) = (line!(), permit.spawn_blocking(f));
    assert_started_at(&set, line);
    release.send(()).unwrap();
    run_bounded(set.join()).unwrap();
}

#[test]
fn a_spawn_that_waited_for_a_slot_records_the_callers_line() {
    let ex = Executor::new();
    let set = TaskSet::<(), String>::new().with_limit(1);
    let held = set.try_reserve().unwrap();
    let (line, spawned) = (line!(), set.spawn(&ex, forever()));
    let mut spawned = pin!(spawned);
    assert!(
        block_on(poll_once(spawned.as_mut())).is_none(),
        "full: waits"
    );
    drop(held);
    run_bounded(spawned).unwrap();
    assert_started_at(&set, line);
}

#[test]
fn spawn_blocking_records_the_callers_line() {
    let mut set = TaskSet::<(), String>::new();
    let (release, f) = blocking_until_released();
    let (line, spawned) = (line!(), set.spawn_blocking(f));
    run_bounded(spawned).unwrap();
    assert_started_at(&set, line);
    release.send(()).unwrap();
    run_bounded(set.join()).unwrap();
}

#[test]
fn try_spawn_named_records_the_callers_line() {
    let ex = Executor::new();
    let set = TaskSet::<(), String>::new();
    let (line, spawned) = (line!(), set.try_spawn_named("n", &ex, forever()));
    spawned.unwrap();
    assert_started_at(&set, line);
}

#[test]
fn spawn_local_records_the_callers_line() {
    let ex = LocalExecutor::new();
    let set = TaskSet::<(), String>::new();
    let (line, spawned) = (line!(), set.spawn_local(&ex, forever()));
    run_bounded(spawned).unwrap();
    assert_started_at(&set, line);
}

#[test]
fn spawn_with_records_the_callers_line() {
    let ex = Executor::new();
    let set = TaskSet::<(), String>::new();
    let (line, spawned) = (line!(), set.spawn_with(&ex, |_shutdown| forever()));
    run_bounded(spawned).unwrap();
    assert_started_at(&set, line);
}

#[test]
fn spawner_spawn_records_the_callers_line() {
    let ex = Executor::new();
    let set = TaskSet::<(), String>::new();
    let spawner = set.spawner();
    let (line, spawned) = (line!(), spawner.spawn(&ex, forever()));
    run_bounded(spawned).unwrap();
    assert_started_at(&set, line);
}

#[test]
fn spawner_spawn_local_records_the_callers_line() {
    let ex = LocalExecutor::new();
    let set = TaskSet::<(), String>::new();
    let spawner = set.spawner();
    let (line, spawned) = (line!(), spawner.spawn_local(&ex, forever()));
    run_bounded(spawned).unwrap();
    assert_started_at(&set, line);
}

#[test]
fn spawner_track_records_the_callers_line() {
    let set = TaskSet::<(), String>::new();
    let spawner = set.spawner();
    let (line, tracked) = (line!(), spawner.track(forever()));
    let _task = run_bounded(tracked).unwrap();
    assert_started_at(&set, line);
}

#[test]
fn spawner_try_spawn_records_the_callers_line() {
    let ex = Executor::new();
    let set = TaskSet::<(), String>::new();
    let spawner = set.spawner();
    let (line, spawned) = (line!(), spawner.try_spawn_named("n", &ex, forever()));
    spawned.unwrap();
    assert_started_at(&set, line);
}

#[test]
fn spawner_spawn_blocking_records_the_callers_line() {
    let mut set = TaskSet::<(), String>::new();
    let spawner = set.spawner();
    let (release, f) = blocking_until_released();
    let (line, spawned) = (line!(), spawner.spawn_blocking(f));
    run_bounded(spawned).unwrap();
    assert_started_at(&set, line);
    release.send(()).unwrap();
    run_bounded(set.join()).unwrap();
}
