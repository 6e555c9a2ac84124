//! Joining: 1k to 1M empty tasks spawned through a group and waited for (on
//! a 2-thread `Executor` pool, or one `LocalExecutor`), and as many tasks
//! spawned through a `TaskSet` and joined into a `Vec` of their values.
//!
//! The floors (`floor_countdown_N`, `floor_countdown_local_N`) are what a
//! join costs with nothing of ours: detached spawns, each task holding a
//! shared countdown and decrementing it when done, the last one waking the
//! waiter. `tt_join_N` is tokio-util's `TaskTracker` on the same executor.
//!
//! `task_await_collect_N` awaits each `Task<u64>` in spawn order and pushes
//! the value into a `Vec`: what a `TaskSet` does minus its error handling,
//! names and straggler tracking. `futures_unordered_N` collects the spawned
//! `Task`s from a `FuturesUnordered`, in completion order: the "JoinSet" way
//! to gather results. Both spawn tasks, like the set; driving the futures
//! inline would skip the executor and measure something else.

use std::cell::Cell;
use std::convert::Infallible;
use std::future::Future;
use std::hint::black_box;
use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Poll, Waker};
use std::thread::{self, Thread};

use futures_lite::future::{block_on, poll_fn};
use futures_util::stream::{FuturesUnordered, StreamExt as _};
use smol::{LocalExecutor, Task};
use smol_graceful::{Group, TaskSet};
use tokio_util::task::TaskTracker;

use super::{at_most, vs, Reach, Spec};
use crate::fixtures::{numbered, work, Fixtures};
use crate::harness::{body, time, Body, JOIN_REPS};

/// The sets of one size: `join_N`, `join_local_N`, `taskset_join_N` and
/// their baselines.
macro_rules! join_rows {
    ($n:literal, $label:literal, $text:literal,
     $join:ident, $floor:ident, $tt:ident,
     $join_local:ident, $floor_local:ident, $arc_local:ident, $tt_local:ident,
     $taskset:ident, $collect:ident, $unordered:ident) => {
        pub static $join: Spec = Spec::new(
            concat!("join_", $label),
            $n,
            concat!(
                "one of ",
                $text,
                " empty tasks, each Group::spawn_on-ed on a 2-thread Executor pool \
                 and detached, then block_on(wait())"
            ),
            join::<$n>,
        )
        .reps(JOIN_REPS)
        .against(&[at_most(1.05, &$floor), at_most(1.0, &$tt)]);

        static $floor: Spec = Spec::new(
            concat!("floor_countdown_", $label),
            $n,
            concat!(
                "one of ",
                $text,
                " empty tasks spawned on the same pool and detached, each \
                 decrementing a shared atomic countdown; the last unparks the \
                 waiting thread"
            ),
            floor_countdown::<$n>,
        );

        static $tt: Spec = Spec::new(
            concat!("tt_join_", $label),
            $n,
            concat!(
                "one of ",
                $text,
                " empty tasks spawned on the same pool through \
                 TaskTracker::track_future and detached, then close and \
                 block_on(wait())"
            ),
            tt_join::<$n>,
        );

        pub static $join_local: Spec = Spec::new(
            concat!("join_local_", $label),
            $n,
            concat!(
                "one of ",
                $text,
                " empty tasks, each Group::spawn_local-ed on one LocalExecutor \
                 and detached, then wait().await"
            ),
            join_local::<$n>,
        )
        .reps(JOIN_REPS)
        .against(&[
            at_most(1.03, &$floor_local),
            vs(&$arc_local),
            vs(&$tt_local),
        ]);

        static $floor_local: Spec = Spec::new(
            concat!("floor_countdown_local_", $label),
            $n,
            concat!(
                "one of ",
                $text,
                " empty tasks spawned on the same LocalExecutor and detached, \
                 each decrementing a shared Cell countdown; the last wakes the \
                 waiting task"
            ),
            floor_countdown_local::<$n>,
        );

        static $arc_local: Spec = Spec::new(
            concat!("floor_arc_local_", $label),
            $n,
            concat!(
                "one of ",
                $text,
                " empty tasks spawned on the same LocalExecutor and detached, \
                 each holding a clone of one Arc (a count other threads could \
                 share: an atomic increment and decrement per task); the \
                 Arc's Drop, at the last task, wakes the waiting task"
            ),
            floor_arc_local::<$n>,
        );

        static $tt_local: Spec = Spec::new(
            concat!("tt_join_local_", $label),
            $n,
            concat!("tt_join_", $label, " on one LocalExecutor"),
            tt_join_local::<$n>,
        );

        pub static $taskset: Spec = Spec::new(
            concat!("taskset_join_", $label),
            $n,
            concat!(
                "one of ",
                $text,
                " tasks returning their index as a u64, spawned through a \
                 TaskSet on the 2-thread pool; join collects every value in \
                 spawn order"
            ),
            taskset_join::<$n>,
        )
        .reps(JOIN_REPS)
        .against(&[
            at_most(1.15, &$collect),
            at_most(1.0, &$unordered),
            // No target: how far the set is above the join of counted, detached
            // tasks (a set frees each finished task's allocation, so it detaches
            // them; `task_await_collect` keeps every task until it is awaited).
            vs(&$floor),
        ])
        // The floor frees each task where it finishes, as a set must to keep
        // a finished task in 24 bytes: does it meet the set's targets?
        .reach(&[
            Reach {
                floor: &$floor,
                limit: 1.15,
                baseline: &$collect,
            },
            Reach {
                floor: &$floor,
                limit: 1.0,
                baseline: &$unordered,
            },
        ]);

        static $collect: Spec = Spec::new(
            concat!("task_await_collect_", $label),
            $n,
            concat!(
                "the same ",
                $text,
                " tasks on the same pool, each Task<u64> awaited in spawn order \
                 and its value pushed into a Vec"
            ),
            task_await_collect::<$n>,
        );

        static $unordered: Spec = Spec::new(
            concat!("futures_unordered_", $label),
            $n,
            concat!(
                "the same ",
                $text,
                " tasks on the same pool, their Tasks collected from a \
                 FuturesUnordered into a Vec, in completion order"
            ),
            futures_unordered::<$n>,
        );
    };
}

join_rows!(
    1_000,
    "1k",
    "1,000",
    JOIN_1K,
    FLOOR_COUNTDOWN_1K,
    TT_JOIN_1K,
    JOIN_LOCAL_1K,
    FLOOR_COUNTDOWN_LOCAL_1K,
    FLOOR_ARC_LOCAL_1K,
    TT_JOIN_LOCAL_1K,
    TASKSET_JOIN_1K,
    TASK_AWAIT_COLLECT_1K,
    FUTURES_UNORDERED_1K
);
join_rows!(
    10_000,
    "10k",
    "10,000",
    JOIN_10K,
    FLOOR_COUNTDOWN_10K,
    TT_JOIN_10K,
    JOIN_LOCAL_10K,
    FLOOR_COUNTDOWN_LOCAL_10K,
    FLOOR_ARC_LOCAL_10K,
    TT_JOIN_LOCAL_10K,
    TASKSET_JOIN_10K,
    TASK_AWAIT_COLLECT_10K,
    FUTURES_UNORDERED_10K
);
join_rows!(
    100_000,
    "100k",
    "100,000",
    JOIN_100K,
    FLOOR_COUNTDOWN_100K,
    TT_JOIN_100K,
    JOIN_LOCAL_100K,
    FLOOR_COUNTDOWN_LOCAL_100K,
    FLOOR_ARC_LOCAL_100K,
    TT_JOIN_LOCAL_100K,
    TASKSET_JOIN_100K,
    TASK_AWAIT_COLLECT_100K,
    FUTURES_UNORDERED_100K
);
join_rows!(
    1_000_000,
    "1m",
    "1,000,000",
    JOIN_1M,
    FLOOR_COUNTDOWN_1M,
    TT_JOIN_1M,
    JOIN_LOCAL_1M,
    FLOOR_COUNTDOWN_LOCAL_1M,
    FLOOR_ARC_LOCAL_1M,
    TT_JOIN_LOCAL_1M,
    TASKSET_JOIN_1M,
    TASK_AWAIT_COLLECT_1M,
    FUTURES_UNORDERED_1M
);

fn join<const N: u64>(fx: &Fixtures) -> Body {
    let pool = fx.pool();
    body(move |n| {
        time(n, || {
            let group = Group::new();
            for _ in 0..N {
                group.spawn_on(&pool.ex, work()).unwrap().detach();
            }
            block_on(group.wait());
        })
    })
}

/// The floor of a join on a thread pool: a count of the tasks still to
/// finish, and the thread waiting for it to reach zero.
struct Countdown {
    left: AtomicUsize,
    waiter: Thread,
}

impl Countdown {
    #[inline]
    fn done(&self) {
        // AcqRel: the last decrement sees every task's work (Acquire of the
        // others' Release) before it unparks the waiter.
        if self.left.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.waiter.unpark();
        }
    }

    #[inline]
    fn wait(&self) {
        // Acquire: pairs with the tasks' Release decrements.
        while self.left.load(Ordering::Acquire) != 0 {
            thread::park();
        }
    }
}

fn floor_countdown<const N: u64>(fx: &Fixtures) -> Body {
    let pool = fx.pool();
    body(move |n| {
        time(n, || {
            let countdown = Arc::new(Countdown {
                left: AtomicUsize::new(N as usize),
                waiter: thread::current(),
            });
            for _ in 0..N {
                let countdown = Arc::clone(&countdown);
                let task = async move {
                    work().await;
                    countdown.done();
                };
                pool.ex.spawn(task).detach();
            }
            countdown.wait();
        })
    })
}

fn tt_join<const N: u64>(fx: &Fixtures) -> Body {
    let pool = fx.pool();
    body(move |n| {
        time(n, || {
            let tracker = TaskTracker::new();
            for _ in 0..N {
                pool.ex.spawn(tracker.track_future(work())).detach();
            }
            tracker.close();
            block_on(tracker.wait());
        })
    })
}

/// Times `n` runs of `join` on a `LocalExecutor` kept across batches.
fn on_local<F: Future<Output = ()>>(
    join: impl Fn(Rc<LocalExecutor<'static>>) -> F + 'static,
) -> Body {
    let ex = Rc::new(LocalExecutor::new());
    body(move |n| time(n, || block_on(ex.run(join(Rc::clone(&ex))))))
}

fn join_local<const N: u64>(_: &Fixtures) -> Body {
    on_local(|ex| async move {
        let group = Group::new();
        for _ in 0..N {
            group.spawn_local(&ex, work()).unwrap().detach();
        }
        group.wait().await;
    })
}

/// The floor of a join on one thread: a count of the tasks still to finish,
/// and the waker of the task waiting for it to reach zero.
struct LocalCountdown {
    left: Cell<u64>,
    waiter: Cell<Option<Waker>>,
}

impl LocalCountdown {
    fn new(left: u64) -> Rc<LocalCountdown> {
        Rc::new(LocalCountdown {
            left: Cell::new(left),
            waiter: Cell::new(None),
        })
    }

    /// One task done: the last one wakes the waiter.
    #[inline]
    fn done(&self) {
        self.left.set(self.left.get() - 1);
        if self.left.get() == 0 {
            if let Some(waker) = self.waiter.take() {
                waker.wake();
            }
        }
    }

    /// Ready once every task is done.
    async fn wait(&self) {
        poll_fn(|cx| {
            if self.left.get() == 0 {
                Poll::Ready(())
            } else {
                self.waiter.set(Some(cx.waker().clone()));
                Poll::Pending
            }
        })
        .await;
    }
}

fn floor_countdown_local<const N: u64>(_: &Fixtures) -> Body {
    on_local(|ex| async move {
        let countdown = LocalCountdown::new(N);
        for _ in 0..N {
            let countdown = Rc::clone(&countdown);
            let task = async move {
                work().await;
                countdown.done();
            };
            ex.spawn(task).detach();
        }
        countdown.wait().await;
    })
}

/// The count of `floor_arc_local`: its strong count is the number of tasks
/// still running, and its `Drop`, at the last one, counts the countdown
/// down to zero.
struct ArcCountdown(Rc<LocalCountdown>);

impl Drop for ArcCountdown {
    fn drop(&mut self) {
        self.0.done();
    }
}

// An `Arc` on one thread on purpose: this floor is the atomic count a `Send`
// design pays, on the same executor as the `Rc` one.
#[allow(clippy::arc_with_non_send_sync)]
fn floor_arc_local<const N: u64>(_: &Fixtures) -> Body {
    on_local(|ex| async move {
        let countdown = LocalCountdown::new(1);
        let count = Arc::new(ArcCountdown(Rc::clone(&countdown)));
        for _ in 0..N {
            let count = Arc::clone(&count);
            let task = async move {
                work().await;
                drop(count);
            };
            ex.spawn(task).detach();
        }
        drop(count);
        countdown.wait().await;
    })
}

fn tt_join_local<const N: u64>(_: &Fixtures) -> Body {
    on_local(|ex| async move {
        let tracker = TaskTracker::new();
        for _ in 0..N {
            ex.spawn(tracker.track_future(work())).detach();
        }
        tracker.close();
        tracker.wait().await;
    })
}

/// Checks that all `n` values arrived, and keeps them opaque.
fn collected(values: Vec<u64>, n: u64) {
    assert_eq!(values.len(), n as usize);
    black_box(values);
}

fn taskset_join<const N: u64>(fx: &Fixtures) -> Body {
    let pool = fx.pool();
    body(move |n| {
        time(n, || {
            let mut set = TaskSet::<u64, Infallible>::new();
            let values = block_on(async {
                for i in 0..N {
                    let task = async move { Ok(numbered(i).await) };
                    set.build_task().spawn_on(&pool.ex, task).unwrap();
                }
                set.join().await.unwrap()
            });
            collected(values, N);
        })
    })
}

fn task_await_collect<const N: u64>(fx: &Fixtures) -> Body {
    let pool = fx.pool();
    body(move |n| {
        time(n, || {
            let tasks: Vec<Task<u64>> = pool.spawn_numbered(N).collect();
            let values = block_on(async {
                let mut values = Vec::with_capacity(tasks.len());
                for task in tasks {
                    values.push(task.await);
                }
                values
            });
            collected(values, N);
        })
    })
}

fn futures_unordered<const N: u64>(fx: &Fixtures) -> Body {
    let pool = fx.pool();
    body(move |n| {
        time(n, || {
            let tasks: FuturesUnordered<Task<u64>> = pool.spawn_numbered(N).collect();
            collected(block_on(tasks.collect()), N);
        })
    })
}
