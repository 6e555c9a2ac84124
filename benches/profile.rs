//! Instruction profiles for the targets `benches/overhead` reports as missed:
//! each of our paths and its baseline runs in a function of its own,
//! `profile::<section>::<row>`, so that valgrind's callgrind can count the
//! instructions of exactly that code, and what they are spent in.
//!
//! ```text
//! benches/callgrind.sh new_drop     # Ir per op of each row, and the top functions under each
//! benches/callgrind.sh              # every section
//! cargo bench --bench profile       # runs every section once, natively (a smoke run)
//! strace -f -c target/release/deps/profile-* wake_local::wait_timeout   # its system calls
//! ```
//!
//! Instruction counts do not depend on the load of the machine, which the
//! timings in `benches/overhead` do; they do not see what an instruction
//! costs either (an atomic read-modify-write counts as one), so each section
//! says in `benches/README.md` which of the two explains its gap.
//!
//! Everything runs on the calling thread (a `LocalExecutor`, or an
//! `Executor` driven by `block_on(ex.run(..))`): callgrind's collection is
//! switched on per thread, at the entry of the profiled function.

use std::cell::Cell;
use std::convert::Infallible;
use std::future::Future;
use std::hint::black_box;
use std::rc::Rc;
use std::sync::Arc;
use std::task::{Poll, Waker};
use std::time::Duration;

use futures_lite::future::{block_on, poll_fn};
use smol::{Executor, LocalExecutor, Task};
use smol_graceful::{Group, Guard, Shutdown, TaskSet};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Operations per profiled call: enough that setup and the first-call
/// effects (allocator warm-up, lazily made state) are noise.
const OPS: u64 = 10_000;

/// One row of a section: the name of its profiled function, what runs it
/// (the function itself, or a setup that calls it), and the ops per run.
type Row = (&'static str, fn(), u64);

const SECTIONS: &[(&str, &[Row])] = &[
    (
        "new_drop",
        &[
            ("new_drop::group", new_drop::group, OPS),
            ("new_drop::tt", new_drop::tt, OPS),
        ],
    ),
    (
        "lifecycle",
        &[
            ("lifecycle::group", lifecycle::group, OPS),
            ("lifecycle::tt", lifecycle::tt, OPS),
        ],
    ),
    (
        "wake_local",
        &[
            ("wake_local::wait", wake_local::wait, OPS),
            ("wake_local::wait_timeout", wake_local::wait_timeout, OPS),
        ],
    ),
    (
        "join_local",
        &[
            ("join_local::group", join_local::group, OPS),
            (
                "join_local::floor_countdown",
                join_local::floor_countdown,
                OPS,
            ),
            ("join_local::floor_arc", join_local::floor_arc, OPS),
        ],
    ),
    (
        "trigger",
        &[
            ("trigger::shutdown_fire", trigger::shutdown, OPS),
            ("trigger::ct_fire", trigger::ct, OPS),
        ],
    ),
    (
        "taskset_join",
        &[
            ("taskset_join::taskset", taskset_join::taskset, OPS),
            (
                "taskset_join::await_collect",
                taskset_join::await_collect,
                OPS,
            ),
        ],
    ),
];

fn main() {
    // `cargo bench` passes `--bench`; a section's or a row's name selects it.
    let wanted: Vec<String> = std::env::args()
        .skip(1)
        .filter(|arg| !arg.starts_with("--"))
        .collect();
    for (section, rows) in SECTIONS {
        for (name, run, ops) in *rows {
            if !wanted.is_empty() && !wanted.iter().any(|w| w == section || w == name) {
                continue;
            }
            // Twice: the first call warms the allocator and lazily made
            // state up; callgrind.sh divides the count of both by 2 * ops.
            run();
            run();
            println!("ops {name} {}", 2 * ops);
        }
    }
}

/// What `group_new_drop` and `tt_new_drop` time.
mod new_drop {
    use super::*;

    #[inline(never)]
    pub fn group() {
        for _ in 0..OPS {
            drop(black_box(Group::new()));
        }
    }

    #[inline(never)]
    pub fn tt() {
        for _ in 0..OPS {
            drop(black_box(TaskTracker::new()));
        }
    }
}

/// What `lifecycle` and `tt_lifecycle` time.
mod lifecycle {
    use super::*;

    #[inline(never)]
    pub fn group() {
        for _ in 0..OPS {
            let group = black_box(Group::new());
            let guard = black_box(group.add().unwrap());
            group.close();
            drop(guard);
            drop(group);
        }
    }

    #[inline(never)]
    pub fn tt() {
        for _ in 0..OPS {
            let tracker = black_box(TaskTracker::new());
            let token = black_box(tracker.token());
            tracker.close();
            drop(token);
            drop(tracker);
        }
    }
}

/// What `wake_rt_local` and `wake_rt_local_timeout` time: on one
/// `LocalExecutor`, a new group, its guard handed to another task, and
/// `wait()` (or `wait_timeout(1 h)`) until that task drops it; one call = OPS
/// round trips. `strace -f -c` of a run says which system calls each makes
/// (`wait_timeout` made a timer per round trip, whose insert could wake
/// async-io's reactor thread).
mod wake_local {
    use super::*;

    /// A one-item mailbox between the waiting task and the dropper.
    #[derive(Default)]
    struct Mailbox {
        guard: Cell<Option<Guard>>,
        dropper: Cell<Option<Waker>>,
    }

    #[inline(never)]
    pub fn wait() {
        round_trips(|group| async move { group.wait().await });
    }

    #[inline(never)]
    pub fn wait_timeout() {
        round_trips(|group| async move {
            group
                .wait_timeout(Duration::from_secs(3600))
                .await
                .expect("the guard was dropped long before an hour");
        });
    }

    fn round_trips<F: Future<Output = ()>>(wait: impl Fn(Rc<Group>) -> F) {
        let ex = LocalExecutor::new();
        let mailbox = Rc::new(Mailbox::default());
        let inbox = Rc::clone(&mailbox);
        ex.spawn(async move {
            loop {
                let guard = poll_fn(|cx| match inbox.guard.take() {
                    Some(guard) => Poll::Ready(guard),
                    None => {
                        inbox.dropper.set(Some(cx.waker().clone()));
                        Poll::Pending
                    }
                })
                .await;
                drop(guard);
            }
        })
        .detach();
        block_on(ex.run(async {
            for _ in 0..OPS {
                let group = Rc::new(Group::new());
                mailbox.guard.set(Some(group.add().unwrap()));
                if let Some(dropper) = mailbox.dropper.take() {
                    dropper.wake();
                }
                wait(group).await;
            }
        }));
    }
}

/// What `join_local_10k` and its floors time, one call = one
/// join of OPS tasks.
mod join_local {
    use super::*;

    async fn work() {
        black_box(());
    }

    /// A countdown and the waker of the task waiting for it to reach zero.
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

        fn wait(&self) -> impl Future<Output = ()> + '_ {
            poll_fn(|cx| {
                if self.left.get() == 0 {
                    Poll::Ready(())
                } else {
                    self.waiter.set(Some(cx.waker().clone()));
                    Poll::Pending
                }
            })
        }

        fn done(&self) {
            self.left.set(self.left.get() - 1);
            if self.left.get() == 0 {
                if let Some(waker) = self.waiter.take() {
                    waker.wake();
                }
            }
        }
    }

    /// The `Arc` of `join_local__floor_arc`: its `Drop`, at the last task,
    /// counts the countdown down to zero.
    struct ArcCountdown(Rc<LocalCountdown>);

    impl Drop for ArcCountdown {
        fn drop(&mut self) {
            self.0.done();
        }
    }

    #[inline(never)]
    pub fn group() {
        let ex = LocalExecutor::new();
        block_on(ex.run(async {
            let group = Group::new();
            for _ in 0..OPS {
                group.spawn_local(&ex, work()).unwrap().detach();
            }
            group.wait().await;
        }));
    }

    #[inline(never)]
    pub fn floor_countdown() {
        let ex = LocalExecutor::new();
        block_on(ex.run(async {
            let countdown = LocalCountdown::new(OPS);
            for _ in 0..OPS {
                let countdown = Rc::clone(&countdown);
                ex.spawn(async move {
                    work().await;
                    countdown.done();
                })
                .detach();
            }
            countdown.wait().await;
        }));
    }

    // An `Arc` on one thread on purpose: this floor is the atomic count a
    // `Send` design pays, on the same executor as the `Rc` one.
    #[allow(clippy::arc_with_non_send_sync)]
    #[inline(never)]
    pub fn floor_arc() {
        let ex = LocalExecutor::new();
        block_on(ex.run(async {
            let countdown = LocalCountdown::new(1);
            let count = Arc::new(ArcCountdown(Rc::clone(&countdown)));
            for _ in 0..OPS {
                let count = Arc::clone(&count);
                ex.spawn(async move {
                    work().await;
                    drop(count);
                })
                .detach();
            }
            drop(count);
            countdown.wait().await;
        }));
    }
}

/// What `shutdown_trigger_10k` and `ct_cancel_10k` time (the
/// trigger and the run of every waiter), the setup outside the profiled
/// function.
mod trigger {
    use super::*;

    /// Spawns OPS waiters made by `wait` on `ex` and runs them until they all
    /// wait; returns how many have finished.
    fn waiters<S: Clone + 'static, F: Future<Output = ()> + 'static>(
        ex: &LocalExecutor<'static>,
        signal: &S,
        wait: impl Fn(S) -> F,
    ) -> Rc<Cell<u64>> {
        let woken = Rc::new(Cell::new(0));
        for _ in 0..OPS {
            let (waiting, woken) = (wait(signal.clone()), Rc::clone(&woken));
            ex.spawn(async move {
                waiting.await;
                woken.set(woken.get() + 1);
            })
            .detach();
        }
        while ex.try_tick() {}
        assert_eq!(woken.get(), 0, "a waiter finished before the trigger");
        woken
    }

    pub fn shutdown() {
        let ex = LocalExecutor::new();
        let shutdown = Shutdown::new();
        let woken = waiters(&ex, &shutdown, |s| async move { s.triggered().await });
        shutdown_fire(&ex, &shutdown);
        assert_eq!(woken.get(), OPS, "a waiter did not wake");
    }

    #[inline(never)]
    pub fn shutdown_fire(ex: &LocalExecutor<'static>, shutdown: &Shutdown) {
        shutdown.trigger();
        while ex.try_tick() {}
    }

    pub fn ct() {
        let ex = LocalExecutor::new();
        let token = CancellationToken::new();
        let woken = waiters(&ex, &token, |t| async move { t.cancelled().await });
        ct_fire(&ex, &token);
        assert_eq!(woken.get(), OPS, "a waiter did not wake");
    }

    #[inline(never)]
    pub fn ct_fire(ex: &LocalExecutor<'static>, token: &CancellationToken) {
        token.cancel();
        while ex.try_tick() {}
    }
}

/// What `taskset_join_10k` and `task_await_collect_10k`
/// time, on an `Executor` driven by this thread alone (the bench uses a
/// 2-thread pool).
mod taskset_join {
    use super::*;

    async fn numbered(index: u64) -> u64 {
        black_box(index)
    }

    #[inline(never)]
    pub fn taskset() {
        let ex = Executor::new();
        let values = block_on(ex.run(async {
            let mut set = TaskSet::<u64, Infallible>::new();
            for i in 0..OPS {
                set.build_task()
                    .spawn_on(&ex, async move { Ok(numbered(i).await) })
                    .unwrap();
            }
            set.join().await.unwrap()
        }));
        assert_eq!(values.len() as u64, OPS);
    }

    #[inline(never)]
    pub fn await_collect() {
        let ex = Executor::new();
        let values = block_on(ex.run(async {
            let tasks: Vec<Task<u64>> = (0..OPS).map(|i| ex.spawn(numbered(i))).collect();
            let mut values = Vec::with_capacity(tasks.len());
            for task in tasks {
                values.push(task.await);
            }
            values
        }));
        assert_eq!(values.len() as u64, OPS);
    }
}
