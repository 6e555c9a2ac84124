//! A task set's completion-order join and its abort, against tokio's
//! `JoinSet` (the closest peer: its `join_next` and `abort_all`), each on a
//! 2-thread pool (smol's `Executor` for ours, a 2-worker tokio runtime for
//! `JoinSet`). No targets: the executors differ, so the rows show the order
//! of magnitude, not a floor.

use std::convert::Infallible;
use std::time::{Duration, Instant};

use futures_lite::future::block_on;
use smol_graceful::{TaskError, TaskSet};
use tokio::task::JoinSet;

use super::{vs, Spec};
use crate::fixtures::{numbered, Fixtures};
use crate::harness::{body, Body, JOIN_REPS};

const TASKS: u64 = 10_000;

pub static JOIN_NEXT_10K: Spec = Spec::new(
    "join_next_10k",
    TASKS,
    "one of 10,000 tasks returning their index, spawned through a TaskSet on the \
     2-thread pool and taken back one by one with join_next, in completion order",
    join_next,
)
.reps(JOIN_REPS)
.against(&[vs(&JOINSET_JOIN_NEXT_10K)]);

static JOINSET_JOIN_NEXT_10K: Spec = Spec::new(
    "joinset_join_next_10k",
    TASKS,
    "the same with tokio's JoinSet::spawn and join_next on a 2-worker tokio runtime",
    joinset_join_next,
);

pub static ABORT_10K: Spec = Spec::new(
    "abort_10k",
    TASKS,
    "one of 10,000 pending tasks of a TaskSet on the 2-thread pool: abort, then join \
     until every task has ended as Cancelled (spawning not timed)",
    abort,
)
.reps(JOIN_REPS)
.against(&[vs(&JOINSET_ABORT_10K)]);

static JOINSET_ABORT_10K: Spec = Spec::new(
    "joinset_abort_10k",
    TASKS,
    "the same with tokio's JoinSet::abort_all, then join_next until empty",
    joinset_abort,
);

fn tokio_pool() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .build()
        .expect("a tokio runtime")
}

fn join_next(fx: &Fixtures) -> Body {
    let pool = fx.pool();
    body(move |n| {
        let start = Instant::now();
        for _ in 0..n {
            let mut set = TaskSet::<u64, Infallible>::new();
            let taken = block_on(async {
                for i in 0..TASKS {
                    set.build_task()
                        .spawn_on(&pool.ex, async move { Ok(numbered(i).await) })
                        .unwrap();
                }
                let mut taken = 0;
                while let Some((_, result)) = set.join_next().await {
                    std::hint::black_box(result.unwrap());
                    taken += 1;
                }
                taken
            });
            assert_eq!(taken, TASKS);
        }
        start.elapsed()
    })
}

fn joinset_join_next(_: &Fixtures) -> Body {
    let rt = tokio_pool();
    body(move |n| {
        let start = Instant::now();
        for _ in 0..n {
            let taken = rt.block_on(async {
                let mut set = JoinSet::new();
                for i in 0..TASKS {
                    set.spawn(numbered(i));
                }
                let mut taken = 0;
                while let Some(result) = set.join_next().await {
                    std::hint::black_box(result.unwrap());
                    taken += 1;
                }
                taken
            });
            assert_eq!(taken, TASKS);
        }
        start.elapsed()
    })
}

fn abort(fx: &Fixtures) -> Body {
    let pool = fx.pool();
    body(move |n| {
        let mut took = Duration::ZERO;
        for _ in 0..n {
            let mut set = TaskSet::<(), Infallible>::new();
            for _ in 0..TASKS {
                set.build_task()
                    .spawn_on(&pool.ex, std::future::pending())
                    .unwrap();
            }
            let start = Instant::now();
            set.abort();
            let outcome = block_on(set.join());
            took += start.elapsed();
            assert!(matches!(outcome, Err(TaskError::Cancelled { .. })));
        }
        took
    })
}

fn joinset_abort(_: &Fixtures) -> Body {
    let rt = tokio_pool();
    body(move |n| {
        let mut took = Duration::ZERO;
        for _ in 0..n {
            rt.block_on(async {
                let mut set = JoinSet::new();
                for _ in 0..TASKS {
                    set.spawn(std::future::pending::<()>());
                }
                tokio::task::yield_now().await;
                let start = Instant::now();
                set.abort_all();
                let mut cancelled = 0;
                while let Some(result) = set.join_next().await {
                    cancelled += u64::from(result.is_err_and(|e| e.is_cancelled()));
                }
                took += start.elapsed();
                assert_eq!(cancelled, TASKS);
            });
        }
        took
    })
}
