//! Joining: 100,000 empty tasks spawned through a group and waited for (on
//! a 2-thread `Executor` pool, or one `LocalExecutor`), and 100,000 tasks
//! spawned through a `TaskSet` and joined into a `Vec` of their values,
//! against awaiting each smol `Task`, `TaskTracker`, and `FuturesUnordered`.
//!
//! `task_await_collect` awaits each `Task<u64>` in spawn order and pushes the
//! value into a `Vec`: what a `TaskSet` does minus its error handling, names
//! and straggler tracking, so the target is against it. `futures_unordered`
//! collects the spawned `Task`s from a `FuturesUnordered`, in completion
//! order: the "JoinSet" way to gather results (no target). Both spawn tasks,
//! like the set; driving the futures inline in a `FuturesUnordered` instead
//! would skip the executor and measure something else.

use std::convert::Infallible;
use std::hint::black_box;
use std::rc::Rc;

use futures_lite::future::block_on;
use futures_util::stream::{FuturesUnordered, StreamExt as _};
use smol::{LocalExecutor, Task};
use smol_graceful::{Group, TaskSet};
use tokio_util::task::TaskTracker;

use super::{at_most, vs, Spec};
use crate::fixtures::{numbered, work, Fixtures, JOIN_TASKS};
use crate::harness::{body, time, Body};

pub static JOIN: Spec = Spec::new(
    "join",
    JOIN_TASKS,
    "one of 100,000 empty tasks, each Group::spawn-ed on a 2-thread Executor pool, \
     then block_on(wait())",
    join,
)
.against(&[at_most(1.10, &TASK_AWAIT_JOIN), vs(&TT_JOIN)]);

static TASK_AWAIT_JOIN: Spec = Spec::new(
    "task_await_join",
    JOIN_TASKS,
    "one of 100,000 empty tasks spawned on the same pool, each Task awaited",
    task_await_join,
);

static TT_JOIN: Spec = Spec::new(
    "tt_join",
    JOIN_TASKS,
    "one of 100,000 empty tasks spawned on the same pool through \
     TaskTracker::track_future, then close and wait",
    tt_join,
);

pub static TASKSET_JOIN: Spec = Spec::new(
    "taskset_join",
    JOIN_TASKS,
    "one of 100,000 tasks returning their index as a u64, spawned through a \
     TaskSet on a 2-thread Executor pool; join collects every value in spawn order",
    taskset_join,
)
.against(&[at_most(1.15, &TASK_AWAIT_COLLECT), vs(&FUTURES_UNORDERED)]);

static TASK_AWAIT_COLLECT: Spec = Spec::new(
    "task_await_collect",
    JOIN_TASKS,
    "the same 100,000 tasks on the same pool, each Task<u64> awaited in spawn \
     order and its value pushed into a Vec",
    task_await_collect,
);

static FUTURES_UNORDERED: Spec = Spec::new(
    "futures_unordered",
    JOIN_TASKS,
    "the same 100,000 tasks on the same pool, their Tasks collected from a \
     FuturesUnordered into a Vec, in completion order",
    futures_unordered,
);

pub static JOIN_LOCAL: Spec = Spec::new(
    "join_local",
    JOIN_TASKS,
    "join on one LocalExecutor (Group::spawn_local, then wait().await)",
    join_local,
)
.against(&[at_most(1.03, &TASK_AWAIT_JOIN_LOCAL), vs(&TT_JOIN_LOCAL)]);

static TASK_AWAIT_JOIN_LOCAL: Spec = Spec::new(
    "task_await_join_local",
    JOIN_TASKS,
    "task_await_join on one LocalExecutor",
    task_await_join_local,
);

static TT_JOIN_LOCAL: Spec = Spec::new(
    "tt_join_local",
    JOIN_TASKS,
    "tt_join on one LocalExecutor",
    tt_join_local,
);

fn join(fx: &Fixtures) -> Body {
    let pool = fx.pool();
    body(move |n| {
        time(n, || {
            let group = Group::new();
            for _ in 0..JOIN_TASKS {
                group.spawn(&pool.ex, work()).unwrap().detach();
            }
            block_on(group.wait());
        })
    })
}

fn task_await_join(fx: &Fixtures) -> Body {
    let pool = fx.pool();
    body(move |n| {
        time(n, || {
            let tasks: Vec<Task<()>> = (0..JOIN_TASKS).map(|_| pool.ex.spawn(work())).collect();
            block_on(async {
                for task in tasks {
                    task.await;
                }
            });
        })
    })
}

fn tt_join(fx: &Fixtures) -> Body {
    let pool = fx.pool();
    body(move |n| {
        time(n, || {
            let tracker = TaskTracker::new();
            for _ in 0..JOIN_TASKS {
                pool.ex.spawn(tracker.track_future(work())).detach();
            }
            tracker.close();
            block_on(tracker.wait());
        })
    })
}

/// Checks that all `JOIN_TASKS` values arrived, and keeps them opaque.
fn collected(values: Vec<u64>) {
    assert_eq!(values.len(), JOIN_TASKS as usize);
    black_box(values);
}

fn taskset_join(fx: &Fixtures) -> Body {
    let pool = fx.pool();
    body(move |n| {
        time(n, || {
            let mut set = TaskSet::<u64, Infallible>::new();
            collected(block_on(async {
                for i in 0..JOIN_TASKS {
                    let task = async move { Ok(numbered(i).await) };
                    set.spawn(&pool.ex, task).await.unwrap();
                }
                set.join().await.unwrap()
            }));
        })
    })
}

fn task_await_collect(fx: &Fixtures) -> Body {
    let pool = fx.pool();
    body(move |n| {
        time(n, || {
            let tasks: Vec<Task<u64>> = pool.spawn_numbered().collect();
            collected(block_on(async {
                let mut values = Vec::with_capacity(tasks.len());
                for task in tasks {
                    values.push(task.await);
                }
                values
            }));
        })
    })
}

fn futures_unordered(fx: &Fixtures) -> Body {
    let pool = fx.pool();
    body(move |n| {
        time(n, || {
            let tasks: FuturesUnordered<Task<u64>> = pool.spawn_numbered().collect();
            collected(block_on(tasks.collect()));
        })
    })
}

/// Times `n` runs of `join` on a `LocalExecutor` kept across batches.
fn on_local<F: std::future::Future<Output = ()>>(
    join: impl Fn(Rc<LocalExecutor<'static>>) -> F + 'static,
) -> Body {
    let ex = Rc::new(LocalExecutor::new());
    body(move |n| time(n, || block_on(ex.run(join(Rc::clone(&ex))))))
}

fn join_local(_: &Fixtures) -> Body {
    on_local(|ex| async move {
        let group = Group::new();
        for _ in 0..JOIN_TASKS {
            group.spawn_local(&ex, work()).unwrap().detach();
        }
        group.wait().await;
    })
}

fn task_await_join_local(_: &Fixtures) -> Body {
    on_local(|ex| async move {
        let tasks: Vec<Task<()>> = (0..JOIN_TASKS).map(|_| ex.spawn(work())).collect();
        for task in tasks {
            task.await;
        }
    })
}

fn tt_join_local(_: &Fixtures) -> Body {
    on_local(|ex| async move {
        let tracker = TaskTracker::new();
        for _ in 0..JOIN_TASKS {
            ex.spawn(tracker.track_future(work())).detach();
        }
        tracker.close();
        tracker.wait().await;
    })
}
