//! What the crate costs next to its floors (an `Arc`, an atomic, a thread
//! park) and its peer (tokio-util's `TaskTracker`), measured in one run.
//!
//! ```text
//! cargo bench --bench overhead              # every row, 11 repetitions
//! cargo bench --bench overhead -- --quick   # 3 repetitions, short batches (< 60 s)
//! cargo bench --bench overhead -- wake      # only the rows whose id contains "wake"
//! cargo bench --bench overhead -- memory    # only the allocation counts
//! ```
//!
//! Each of our rows is measured together with its baselines, interleaved
//! (A B C, B C A, ...), so drift on a shared machine hits all of them alike.
//! A repetition is one batch of each row, sized to take about 10 ms (3 ms with
//! `--quick`); the table shows the median and the range of the per-op times,
//! and each of our rows once per baseline with the ratio of the medians. A
//! counting allocator then reports allocations, and the run ends with one
//! line per target from the benchmark issue.
//!
//! The sets, our row first (`SETS` builds them; the legend under the table
//! says what one op is):
//!
//! - `add_drop`, `add_drop_last`, `add_drop_x2`: one `Group::add` and its
//!   drop (with another guard held; as the last guard; on two threads at
//!   once), against an `Arc` clone, a `TaskTracker` token and an atomic pair.
//! - `wait_ready`: build and poll `wait()` on a drained group, against
//!   `TaskTracker::wait` and a bare acquire load.
//! - `wake_rt`, `wake_rt_local`: hand a guard to another thread (task) and
//!   wait until it drops, against a park/unpark round trip and `TaskTracker`.
//! - `join`, `join_local`: spawn 100,000 empty tasks through a group and wait
//!   for them, against awaiting each smol `Task` and `TaskTracker`, on a
//!   2-thread `Executor` pool or one `LocalExecutor`.
//! - `taskset_join`: spawn 100,000 tasks through a `TaskSet` on the same
//!   2-thread pool, each returning its index as a `u64`, and `join` them: a
//!   `Vec` of every value in spawn order. Its baselines spawn the same tasks
//!   on the same pool and collect the same values. `task_await_collect`
//!   awaits each `Task<u64>` in spawn order and pushes the value into a
//!   `Vec`: what a `TaskSet` does minus its error handling, names and
//!   straggler tracking, so the target (1.15x) is against it.
//!   `futures_unordered` puts the spawned `Task`s in a `FuturesUnordered`
//!   and collects the stream into a `Vec`, in completion order: the
//!   "JoinSet" way to gather results (no target). Both baselines spawn
//!   tasks, like the set; driving the futures inline in a `FuturesUnordered`
//!   instead would skip the executor and measure something else.
//! - `shutdown_trigger_1k`: trigger a shutdown that 1,000 tasks wait on,
//!   against `CancellationToken::cancel`.
//! - `child_drop_131k`: make a child scope and drop it while 131,071
//!   siblings are alive, against the same with none (`child_drop`) and
//!   against tokio-util's `child_token` with 131,071 live siblings. No
//!   target: it shows that a child costs the same at any number of live
//!   siblings.
//! - `stragglers_named`: `Group::add_named` and its drop, against `add`.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::convert::Infallible;
use std::future::Future;
use std::hint::black_box;
use std::pin::pin;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Barrier, Mutex};
use std::task::{Context, Poll, Waker};
use std::thread::{self, JoinHandle, Thread};
use std::time::{Duration, Instant};

use futures_lite::future::{self, block_on};
use futures_util::stream::{FuturesUnordered, StreamExt as _};
use smol::{Executor, LocalExecutor, Task};
use smol_graceful::{Group, Guard, Shutdown, TaskSet, Tracked, Wait};
use tokio_util::sync::CancellationToken;
use tokio_util::task::task_tracker::TaskTrackerToken;
use tokio_util::task::TaskTracker;

// ---------------------------------------------------------------------------
// A counting allocator, switched on only around the memory measurements.

/// Forwards to `System`, counting allocations while [`COUNTING`] is on.
struct CountingAlloc;

static COUNTING: AtomicBool = AtomicBool::new(false);
static ALLOCS: AtomicUsize = AtomicUsize::new(0);
static BYTES: AtomicUsize = AtomicUsize::new(0);

fn record(bytes: usize) {
    // Relaxed: statistics only, read after the measured code on the same
    // thread (the measurements run while no other thread allocates).
    if COUNTING.load(Ordering::Relaxed) {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        BYTES.fetch_add(bytes, Ordering::Relaxed);
    }
}

// SAFETY: every method passes its arguments unchanged to `System`, so the
// `GlobalAlloc` contract holds exactly as it does for `System`; the counting
// itself only touches static atomics and never allocates.
unsafe impl GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        record(layout.size());
        // SAFETY: forwarded unchanged; the caller upholds `alloc`'s contract.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        record(layout.size());
        // SAFETY: as in `alloc`.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        record(new_size);
        // SAFETY: as in `alloc`; `ptr` came from this allocator, i.e. `System`.
        unsafe { System.realloc(ptr, layout, new_size) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: as in `realloc`.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: CountingAlloc = CountingAlloc;

/// Runs `f` with counting on: (allocations, bytes) made meanwhile.
fn count_allocs(f: impl FnOnce()) -> (usize, usize) {
    ALLOCS.store(0, Ordering::Relaxed);
    BYTES.store(0, Ordering::Relaxed);
    COUNTING.store(true, Ordering::SeqCst);
    f();
    COUNTING.store(false, Ordering::SeqCst);
    (
        ALLOCS.load(Ordering::Relaxed),
        BYTES.load(Ordering::Relaxed),
    )
}

// ---------------------------------------------------------------------------
// Configuration and the measuring loop.

struct Config {
    quick: bool,
    reps: usize,
    /// Wanted duration of one batch.
    batch: Duration,
    /// Substrings; empty = everything.
    filters: Vec<String>,
}

impl Config {
    fn from_args() -> Config {
        let mut quick = false;
        let mut filters = Vec::new();
        for arg in std::env::args().skip(1) {
            if arg == "--quick" {
                quick = true;
            } else if !arg.starts_with('-') {
                filters.push(arg);
            }
            // Other flags (cargo passes `--bench`) are ignored.
        }
        Config {
            quick,
            reps: if quick { 3 } else { 11 },
            batch: Duration::from_millis(if quick { 3 } else { 10 }),
            filters,
        }
    }

    fn wants(&self, id: &str) -> bool {
        self.filters.is_empty() || self.filters.iter().any(|f| id.contains(f.as_str()))
    }
}

/// Runs `iters` operations and returns the time they took (setup excluded).
type Body = Box<dyn FnMut(u64) -> Duration>;

/// One row: its id, how many ops one iteration is, and the code.
struct Case {
    id: &'static str,
    /// Operations per iteration (`join` runs 100,000 tasks per iteration).
    ops_per_iter: u64,
    body: Body,
}

fn case(id: &'static str, ops_per_iter: u64, body: impl FnMut(u64) -> Duration + 'static) -> Case {
    Case {
        id,
        ops_per_iter,
        body: Box::new(body),
    }
}

struct Measured {
    id: &'static str,
    /// ns per op, one per repetition.
    samples: Vec<f64>,
}

impl Measured {
    fn median(&self) -> f64 {
        let mut s = self.samples.clone();
        s.sort_by(f64::total_cmp);
        let n = s.len();
        if n % 2 == 1 {
            s[n / 2]
        } else {
            (s[n / 2 - 1] + s[n / 2]) / 2.0
        }
    }

    fn min(&self) -> f64 {
        self.samples.iter().copied().fold(f64::INFINITY, f64::min)
    }

    fn max(&self) -> f64 {
        self.samples.iter().copied().fold(0.0, f64::max)
    }
}

/// Iterations per batch so that one batch takes about `target`; the
/// calibration runs double as warm-up.
fn calibrate(case: &mut Case, target: Duration) -> u64 {
    let mut iters = 1u64;
    loop {
        let took = (case.body)(iters);
        if took >= target / 2 || iters >= 1 << 40 {
            let scaled = iters as f64 * target.as_secs_f64() / took.as_secs_f64().max(1e-9);
            return (scaled.round() as u64).max(1);
        }
        let factor = if took.is_zero() {
            100.0
        } else {
            (target.as_secs_f64() / took.as_secs_f64()).min(100.0)
        };
        iters = ((iters as f64 * factor).ceil() as u64).max(iters * 2);
    }
}

/// Measures the cases of a set interleaved: each repetition runs one batch of
/// every case, starting from a different case each time.
fn measure(cfg: &Config, cases: &mut [Case]) -> Vec<Measured> {
    let iters: Vec<u64> = cases
        .iter_mut()
        .map(|c| {
            let n = calibrate(c, cfg.batch);
            (c.body)(n); // one more warm-up batch at the final size
            n
        })
        .collect();
    let mut out: Vec<Measured> = cases
        .iter()
        .map(|c| Measured {
            id: c.id,
            samples: Vec::with_capacity(cfg.reps),
        })
        .collect();
    let m = cases.len();
    for rep in 0..cfg.reps {
        for k in 0..m {
            let i = (rep + k) % m;
            let took = (cases[i].body)(iters[i]);
            let ops = iters[i] * cases[i].ops_per_iter;
            out[i].samples.push(took.as_nanos() as f64 / ops as f64);
        }
    }
    out
}

// ---------------------------------------------------------------------------
// Shared machinery for the rows.

/// A context whose waker does nothing, for polling futures that are ready.
fn noop_cx() -> Context<'static> {
    Context::from_waker(Waker::noop())
}

/// Times `iters` runs of `op`.
fn time(iters: u64, mut op: impl FnMut()) -> Duration {
    let start = Instant::now();
    for _ in 0..iters {
        op();
    }
    start.elapsed()
}

/// A batch for [`Twins`]: both threads run it once.
type Job = Arc<dyn Fn() + Send + Sync>;

/// Two persistent threads that run each batch together, released by a
/// barrier. Both `_x2` rows share one pair, so where the scheduler puts the
/// two threads (in parallel on both cores, or time-sliced) changes for both
/// rows alike, not for one row's threads only.
struct Twins {
    jobs: Vec<mpsc::Sender<Job>>,
    /// Each thread's (start, end) of its run of the job.
    done: mpsc::Receiver<(Instant, Instant)>,
    barrier: Arc<Barrier>,
    threads: Vec<JoinHandle<()>>,
}

impl Twins {
    fn new() -> Twins {
        let barrier = Arc::new(Barrier::new(3));
        let (done_tx, done) = mpsc::channel();
        let mut jobs = Vec::new();
        let mut threads = Vec::new();
        for _ in 0..2 {
            let (tx, rx) = mpsc::channel::<Job>();
            let (barrier, done_tx) = (Arc::clone(&barrier), done_tx.clone());
            threads.push(thread::spawn(move || {
                while let Ok(job) = rx.recv() {
                    barrier.wait();
                    let start = Instant::now();
                    job();
                    done_tx.send((start, Instant::now())).unwrap();
                }
            }));
            jobs.push(tx);
        }
        Twins {
            jobs,
            done,
            barrier,
            threads,
        }
    }

    /// Runs `job` on both threads at once: the wall time from the first
    /// start until both are done. The threads clock themselves: with two
    /// cores, this (third) thread may not run again until they are done.
    fn run(&self, job: Job) -> Duration {
        for tx in &self.jobs {
            tx.send(Arc::clone(&job)).unwrap();
        }
        self.barrier.wait();
        let (a, b) = (self.done.recv().unwrap(), self.done.recv().unwrap());
        a.1.max(b.1) - a.0.min(b.0)
    }
}

impl Drop for Twins {
    fn drop(&mut self) {
        self.jobs.clear(); // the threads' `recv` fails: they return
        for t in self.threads.drain(..) {
            t.join().unwrap();
        }
    }
}

/// A parked helper thread that drops whatever it is handed.
struct Dropper<T: Send + 'static> {
    slot: Arc<Mutex<Option<T>>>,
    stop: Arc<AtomicBool>,
    thread: Thread,
    join: Option<JoinHandle<()>>,
}

impl<T: Send + 'static> Dropper<T> {
    fn new() -> Dropper<T> {
        let slot = Arc::new(Mutex::new(None::<T>));
        let stop = Arc::new(AtomicBool::new(false));
        let join = thread::spawn({
            let (slot, stop) = (Arc::clone(&slot), Arc::clone(&stop));
            move || loop {
                let item = slot.lock().unwrap().take();
                match item {
                    // Dropped here, outside the lock.
                    Some(item) => drop(item),
                    None if stop.load(Ordering::Acquire) => break,
                    None => thread::park(),
                }
            }
        });
        Dropper {
            slot,
            stop,
            thread: join.thread().clone(),
            join: Some(join),
        }
    }

    /// Hands `item` to the helper, which drops it.
    fn hand(&self, item: T) {
        *self.slot.lock().unwrap() = Some(item);
        self.thread.unpark();
    }
}

impl<T: Send + 'static> Drop for Dropper<T> {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        self.thread.unpark();
        if let Some(join) = self.join.take() {
            join.join().unwrap();
        }
    }
}

/// For `park_unpark_rt`: dropping it sets the flag and unparks the thread.
struct Unpark {
    flag: Arc<AtomicBool>,
    thread: Thread,
}

impl Drop for Unpark {
    fn drop(&mut self) {
        self.flag.store(true, Ordering::Release);
        self.thread.unpark();
    }
}

enum Msg<T> {
    Item(T),
    Stop,
}

/// A one-slot mailbox between two tasks of one `LocalExecutor`.
struct Mailbox<T> {
    item: Cell<Option<Msg<T>>>,
    waker: Cell<Option<Waker>>,
}

impl<T> Mailbox<T> {
    fn new() -> Rc<Mailbox<T>> {
        Rc::new(Mailbox {
            item: Cell::new(None),
            waker: Cell::new(None),
        })
    }

    fn send(&self, msg: Msg<T>) {
        self.item.set(Some(msg));
        if let Some(waker) = self.waker.take() {
            waker.wake();
        }
    }

    fn recv(&self) -> impl Future<Output = Msg<T>> + '_ {
        future::poll_fn(|cx| match self.item.take() {
            Some(msg) => Poll::Ready(msg),
            None => {
                self.waker.set(Some(cx.waker().clone()));
                Poll::Pending
            }
        })
    }
}

/// The task of `wake_rt_local`: drops every item it receives.
async fn drop_items<T>(mailbox: Rc<Mailbox<T>>) {
    while let Msg::Item(item) = mailbox.recv().await {
        drop(item);
    }
}

/// Runs `round` `iters` times on a fresh `LocalExecutor`, next to a task
/// that drops what `round` sends it.
fn local_ping_pong<T: 'static, F: Future<Output = ()>>(
    iters: u64,
    mut round: impl FnMut(Rc<Mailbox<T>>) -> F,
) -> Duration {
    let ex = LocalExecutor::new();
    let mailbox = Mailbox::new();
    let dropper = ex.spawn(drop_items(Rc::clone(&mailbox)));
    block_on(ex.run(async {
        let start = Instant::now();
        for _ in 0..iters {
            round(Rc::clone(&mailbox)).await;
        }
        let took = start.elapsed();
        mailbox.send(Msg::Stop);
        dropper.await;
        took
    }))
}

/// Two threads running a smol `Executor` until dropped.
struct Pool {
    ex: Arc<Executor<'static>>,
    stop: Option<smol::channel::Sender<()>>,
    threads: Vec<JoinHandle<()>>,
}

impl Pool {
    fn new(threads: usize) -> Pool {
        let ex = Arc::new(Executor::new());
        let (stop, stopped) = smol::channel::bounded::<()>(1);
        let threads = (0..threads)
            .map(|_| {
                let (ex, stopped) = (Arc::clone(&ex), stopped.clone());
                thread::spawn(move || {
                    block_on(ex.run(async {
                        stopped.recv().await.ok();
                    }))
                })
            })
            .collect();
        Pool {
            ex,
            stop: Some(stop),
            threads,
        }
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        self.stop.take(); // closes the channel: every `run` returns
        for t in self.threads.drain(..) {
            t.join().unwrap();
        }
    }
}

/// The tasks the join rows spawn.
async fn work() {
    black_box(());
}

/// The tasks the task-set rows spawn: each returns its spawn index.
async fn numbered(index: u64) -> u64 {
    black_box(index)
}

/// Spawns the `JOIN_TASKS` tasks of a task-set baseline on `ex`, in order.
fn spawn_numbered<'a>(ex: &'a Executor<'static>) -> impl Iterator<Item = Task<u64>> + 'a {
    (0..JOIN_TASKS).map(|i| ex.spawn(numbered(i)))
}

const JOIN_TASKS: u64 = 100_000;
const WAITERS: usize = 1_000;

// ---------------------------------------------------------------------------
// The rows.

fn atomic_pair() -> Case {
    let count = AtomicUsize::new(1);
    case("atomic_pair", 1, move |n| {
        time(n, || {
            let c = black_box(&count);
            c.fetch_add(1, Ordering::Relaxed);
            c.fetch_sub(1, Ordering::Release);
        })
    })
}

fn arc_clone_drop() -> Case {
    let arc = Arc::new(0u64);
    case("arc_clone_drop", 1, move |n| {
        time(n, || drop(black_box(Arc::clone(black_box(&arc)))))
    })
}

fn load_acquire() -> Case {
    let flag = AtomicBool::new(true);
    case("load_acquire", 1, move |n| {
        time(n, || {
            black_box(black_box(&flag).load(Ordering::Acquire));
        })
    })
}

fn add_drop() -> Case {
    let group = Group::new();
    let held = group.add().unwrap();
    case("add_drop", 1, move |n| {
        let _held = &held;
        time(n, || drop(black_box(black_box(&group).add().unwrap())))
    })
}

fn add_drop_last() -> Case {
    let group = Group::new();
    case("add_drop_last", 1, move |n| {
        time(n, || drop(black_box(black_box(&group).add().unwrap())))
    })
}

fn tt_token_drop() -> Case {
    let tracker = TaskTracker::new();
    let held = tracker.token();
    case("tt_token_drop", 1, move |n| {
        let _held = &held;
        time(n, || drop(black_box(black_box(&tracker).token())))
    })
}

fn tt_token_drop_last() -> Case {
    let tracker = TaskTracker::new();
    case("tt_token_drop_last", 1, move |n| {
        time(n, || drop(black_box(black_box(&tracker).token())))
    })
}

fn add_drop_x2(twins: &Rc<Twins>) -> Case {
    let twins = Rc::clone(twins);
    let group = Group::new();
    let held = group.add().unwrap();
    case("add_drop_x2", 2, move |n| {
        let _held = &held;
        let group = group.clone();
        twins.run(Arc::new(move || {
            for _ in 0..n {
                drop(black_box(black_box(&group).add().unwrap()));
            }
        }))
    })
}

fn tt_token_drop_x2(twins: &Rc<Twins>) -> Case {
    let twins = Rc::clone(twins);
    let tracker = TaskTracker::new();
    let held = tracker.token();
    case("tt_token_drop_x2", 2, move |n| {
        let _held = &held;
        let tracker = tracker.clone();
        twins.run(Arc::new(move || {
            for _ in 0..n {
                drop(black_box(black_box(&tracker).token()));
            }
        }))
    })
}

fn arc_clone_drop_x2(twins: &Rc<Twins>) -> Case {
    let twins = Rc::clone(twins);
    let arc = Arc::new(0u64);
    case("arc_clone_drop_x2", 2, move |n| {
        let arc = Arc::clone(&arc);
        twins.run(Arc::new(move || {
            for _ in 0..n {
                drop(black_box(Arc::clone(black_box(&arc))));
            }
        }))
    })
}

fn wait_ready() -> Case {
    let group = Group::new();
    group.close();
    case("wait_ready", 1, move |n| {
        let mut cx = noop_cx();
        time(n, || {
            let wait = pin!(black_box(&group).wait());
            assert!(black_box(wait.poll(&mut cx)).is_ready());
        })
    })
}

fn tt_wait_ready() -> Case {
    let tracker = TaskTracker::new();
    tracker.close();
    case("tt_wait_ready", 1, move |n| {
        let mut cx = noop_cx();
        time(n, || {
            let wait = pin!(black_box(&tracker).wait());
            assert!(black_box(wait.poll(&mut cx)).is_ready());
        })
    })
}

/// What the thread round-trip rows hand to their shared helper thread, which
/// drops it. One helper for all three rows, so that where the scheduler puts
/// the two threads (same core or not) is the same for each row.
#[expect(dead_code, reason = "the values are only held, to be dropped")]
enum Handed {
    Guard(Guard),
    Token(TaskTrackerToken),
    Unpark(Unpark),
}

fn park_unpark_rt(helper: &Rc<Dropper<Handed>>) -> Case {
    let helper = Rc::clone(helper);
    let flag = Arc::new(AtomicBool::new(false));
    case("park_unpark_rt", 1, move |n| {
        let me = thread::current();
        time(n, || {
            flag.store(false, Ordering::Relaxed);
            helper.hand(Handed::Unpark(Unpark {
                flag: Arc::clone(&flag),
                thread: me.clone(),
            }));
            while !flag.load(Ordering::Acquire) {
                thread::park();
            }
        })
    })
}

fn wake_rt(helper: &Rc<Dropper<Handed>>) -> Case {
    let helper = Rc::clone(helper);
    case("wake_rt", 1, move |n| {
        time(n, || {
            let group = Group::new();
            helper.hand(Handed::Guard(group.add().unwrap()));
            block_on(group.wait());
        })
    })
}

fn tt_wake_rt(helper: &Rc<Dropper<Handed>>) -> Case {
    let helper = Rc::clone(helper);
    case("tt_wake_rt", 1, move |n| {
        time(n, || {
            let tracker = TaskTracker::new();
            helper.hand(Handed::Token(tracker.token()));
            tracker.close();
            block_on(tracker.wait());
        })
    })
}

fn wake_rt_local() -> Case {
    case("wake_rt_local", 1, |n| {
        local_ping_pong(n, |mailbox: Rc<Mailbox<Guard>>| async move {
            let group = Group::new();
            mailbox.send(Msg::Item(group.add().unwrap()));
            group.wait().await;
        })
    })
}

fn tt_wake_rt_local() -> Case {
    case("tt_wake_rt_local", 1, |n| {
        local_ping_pong(n, |mailbox: Rc<Mailbox<TaskTrackerToken>>| async move {
            let tracker = TaskTracker::new();
            mailbox.send(Msg::Item(tracker.token()));
            tracker.close();
            tracker.wait().await;
        })
    })
}

fn join(pool: &Rc<Pool>) -> Case {
    let pool = Rc::clone(pool);
    case("join", JOIN_TASKS, move |n| {
        time(n, || {
            let group = Group::new();
            for _ in 0..JOIN_TASKS {
                group.spawn(&pool.ex, work()).unwrap().detach();
            }
            block_on(group.wait());
        })
    })
}

fn task_await_join(pool: &Rc<Pool>) -> Case {
    let pool = Rc::clone(pool);
    case("task_await_join", JOIN_TASKS, move |n| {
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

fn tt_join(pool: &Rc<Pool>) -> Case {
    let pool = Rc::clone(pool);
    case("tt_join", JOIN_TASKS, move |n| {
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

fn taskset_join(pool: &Rc<Pool>) -> Case {
    let pool = Rc::clone(pool);
    case("taskset_join", JOIN_TASKS, move |n| {
        time(n, || {
            let mut set = TaskSet::<u64, Infallible>::new();
            let values = block_on(async {
                for i in 0..JOIN_TASKS {
                    let task = async move { Ok(numbered(i).await) };
                    set.spawn(&pool.ex, task).await.unwrap();
                }
                set.join().await.unwrap()
            });
            assert_eq!(values.len(), JOIN_TASKS as usize);
            black_box(values);
        })
    })
}

fn task_await_collect(pool: &Rc<Pool>) -> Case {
    let pool = Rc::clone(pool);
    case("task_await_collect", JOIN_TASKS, move |n| {
        time(n, || {
            let tasks: Vec<Task<u64>> = spawn_numbered(&pool.ex).collect();
            let values = block_on(async {
                let mut values = Vec::with_capacity(tasks.len());
                for task in tasks {
                    values.push(task.await);
                }
                values
            });
            assert_eq!(values.len(), JOIN_TASKS as usize);
            black_box(values);
        })
    })
}

fn futures_unordered(pool: &Rc<Pool>) -> Case {
    let pool = Rc::clone(pool);
    case("futures_unordered", JOIN_TASKS, move |n| {
        time(n, || {
            let tasks: FuturesUnordered<Task<u64>> = spawn_numbered(&pool.ex).collect();
            let values: Vec<u64> = block_on(tasks.collect());
            assert_eq!(values.len(), JOIN_TASKS as usize);
            black_box(values);
        })
    })
}

fn join_local() -> Case {
    let ex = Rc::new(LocalExecutor::new());
    case("join_local", JOIN_TASKS, move |n| {
        time(n, || {
            block_on(ex.run(async {
                let group = Group::new();
                for _ in 0..JOIN_TASKS {
                    group.spawn_local(&ex, work()).unwrap().detach();
                }
                group.wait().await;
            }));
        })
    })
}

fn task_await_join_local() -> Case {
    let ex = Rc::new(LocalExecutor::new());
    case("task_await_join_local", JOIN_TASKS, move |n| {
        time(n, || {
            block_on(ex.run(async {
                let tasks: Vec<Task<()>> = (0..JOIN_TASKS).map(|_| ex.spawn(work())).collect();
                for task in tasks {
                    task.await;
                }
            }));
        })
    })
}

fn tt_join_local() -> Case {
    let ex = Rc::new(LocalExecutor::new());
    case("tt_join_local", JOIN_TASKS, move |n| {
        time(n, || {
            block_on(ex.run(async {
                let tracker = TaskTracker::new();
                for _ in 0..JOIN_TASKS {
                    ex.spawn(tracker.track_future(work())).detach();
                }
                tracker.close();
                tracker.wait().await;
            }));
        })
    })
}

/// `WAITERS` tasks on a `LocalExecutor` each await `wait(signal)`; timed
/// from `fire(signal)` until all of them have run to completion.
fn broadcast<S: Clone + 'static, W: Future<Output = ()>>(
    iters: u64,
    ex: &LocalExecutor<'static>,
    new: impl Fn() -> S,
    wait: impl Fn(S) -> W + Copy + 'static,
    fire: impl Fn(&S),
) -> Duration {
    let mut total = Duration::ZERO;
    for _ in 0..iters {
        let signal = new();
        let woken = Rc::new(Cell::new(0usize));
        for _ in 0..WAITERS {
            let (signal, woken) = (signal.clone(), Rc::clone(&woken));
            ex.spawn(async move {
                wait(signal).await;
                woken.set(woken.get() + 1);
            })
            .detach();
        }
        while ex.try_tick() {}
        assert_eq!(woken.get(), 0, "a waiter finished before the trigger");
        let start = Instant::now();
        fire(&signal);
        while ex.try_tick() {}
        total += start.elapsed();
        assert_eq!(woken.get(), WAITERS, "a waiter did not wake");
    }
    total
}

fn shutdown_trigger_1k() -> Case {
    let ex = LocalExecutor::new();
    case("shutdown_trigger_1k", 1, move |n| {
        broadcast(
            n,
            &ex,
            Shutdown::new,
            |s: Shutdown| async move { s.triggered().await },
            |s| {
                s.trigger();
            },
        )
    })
}

fn ct_cancel_1k() -> Case {
    let ex = LocalExecutor::new();
    case("ct_cancel_1k", 1, move |n| {
        broadcast(
            n,
            &ex,
            CancellationToken::new,
            |t: CancellationToken| async move { t.cancelled().await },
            CancellationToken::cancel,
        )
    })
}

/// Live siblings kept while `child_drop_131k` makes and drops one more child.
const LIVE_CHILDREN: usize = 131_071;

fn child_drop() -> Case {
    let root = Shutdown::new();
    case("child_drop", 1, move |n| {
        time(n, || drop(black_box(black_box(&root).child())))
    })
}

fn child_drop_131k() -> Case {
    let root = Shutdown::new();
    let live: Vec<Shutdown> = (0..LIVE_CHILDREN).map(|_| root.child()).collect();
    case("child_drop_131k", 1, move |n| {
        let _live = &live;
        time(n, || drop(black_box(black_box(&root).child())))
    })
}

fn ct_child_drop_131k() -> Case {
    let root = CancellationToken::new();
    let live: Vec<CancellationToken> = (0..LIVE_CHILDREN).map(|_| root.child_token()).collect();
    case("ct_child_drop_131k", 1, move |n| {
        let _live = &live;
        time(n, || drop(black_box(black_box(&root).child_token())))
    })
}

fn stragglers_named() -> Case {
    let group = Group::new();
    let held = group.add().unwrap();
    case("stragglers_named", 1, move |n| {
        let _held = &held;
        time(n, || {
            drop(black_box(black_box(&group).add_named("worker").unwrap()));
        })
    })
}

/// One set as listed in [`SETS`]: the ids, and how to build its cases.
struct Spec {
    ours: &'static str,
    baselines: &'static [&'static str],
    build: fn() -> Vec<Case>,
}

/// Every set, in table order: our row, then its baselines. Built lazily, so
/// a filtered run starts only the threads it needs.
const SETS: &[Spec] = &[
    Spec {
        ours: "add_drop",
        baselines: &["arc_clone_drop", "tt_token_drop", "atomic_pair"],
        build: || vec![add_drop(), arc_clone_drop(), tt_token_drop(), atomic_pair()],
    },
    Spec {
        ours: "add_drop_last",
        baselines: &["arc_clone_drop", "tt_token_drop_last"],
        build: || vec![add_drop_last(), arc_clone_drop(), tt_token_drop_last()],
    },
    Spec {
        ours: "add_drop_x2",
        baselines: &["tt_token_drop_x2", "arc_clone_drop_x2"],
        build: || {
            let twins = Rc::new(Twins::new());
            vec![
                add_drop_x2(&twins),
                tt_token_drop_x2(&twins),
                arc_clone_drop_x2(&twins),
            ]
        },
    },
    Spec {
        ours: "wait_ready",
        baselines: &["tt_wait_ready", "load_acquire"],
        build: || vec![wait_ready(), tt_wait_ready(), load_acquire()],
    },
    Spec {
        ours: "wake_rt",
        baselines: &["park_unpark_rt", "tt_wake_rt"],
        build: || {
            let helper = Rc::new(Dropper::new());
            vec![
                wake_rt(&helper),
                park_unpark_rt(&helper),
                tt_wake_rt(&helper),
            ]
        },
    },
    Spec {
        ours: "wake_rt_local",
        baselines: &["tt_wake_rt_local"],
        build: || vec![wake_rt_local(), tt_wake_rt_local()],
    },
    Spec {
        ours: "join",
        baselines: &["task_await_join", "tt_join"],
        build: || {
            let pool = Rc::new(Pool::new(2));
            vec![join(&pool), task_await_join(&pool), tt_join(&pool)]
        },
    },
    Spec {
        ours: "taskset_join",
        baselines: &["task_await_collect", "futures_unordered"],
        build: || {
            let pool = Rc::new(Pool::new(2));
            vec![
                taskset_join(&pool),
                task_await_collect(&pool),
                futures_unordered(&pool),
            ]
        },
    },
    Spec {
        ours: "join_local",
        baselines: &["task_await_join_local", "tt_join_local"],
        build: || vec![join_local(), task_await_join_local(), tt_join_local()],
    },
    Spec {
        ours: "shutdown_trigger_1k",
        baselines: &["ct_cancel_1k"],
        build: || vec![shutdown_trigger_1k(), ct_cancel_1k()],
    },
    Spec {
        ours: "child_drop_131k",
        baselines: &["child_drop", "ct_child_drop_131k"],
        build: || vec![child_drop_131k(), child_drop(), ct_child_drop_131k()],
    },
    Spec {
        ours: "stragglers_named",
        baselines: &["add_drop"],
        build: || vec![stragglers_named(), add_drop()],
    },
];

// ---------------------------------------------------------------------------
// Output.

fn ns(x: f64) -> String {
    if x < 10.0 {
        format!("{x:.2}")
    } else if x < 1000.0 {
        format!("{x:.1}")
    } else {
        format!("{x:.0}")
    }
}

/// What one op is in each row, printed under the table.
const LEGEND: &[&str] = &[
    "one op is:",
    "- add_drop*, arc_clone_drop*, atomic_pair, tt_token_drop*: one add (clone) and its drop; \
     *_x2: wall time / ops of both threads",
    "- stragglers_named: one add_named and its drop",
    "- wait_ready, tt_wait_ready: build and poll one future on a drained group; \
     load_acquire: one load",
    "- *_rt, *_rt_local: one round trip (new group, hand a guard over, wait until it drops)",
    "- join*, task_await_join*, tt_join*: one task (100,000 per join)",
    "- taskset_join, task_await_collect, futures_unordered: one task returning a u64 \
     (100,000 per join, all values collected into a Vec)",
    "- *_1k: one trigger, until all 1,000 waiting tasks have run (setup not timed)",
    "- child_drop*, ct_child_drop*: make one child scope (token) and drop it; \
     *_131k: while 131,071 siblings are alive",
];

struct Results {
    /// (ours, the set's measurements: ours first, then its baselines).
    sets: Vec<(&'static str, Vec<Measured>)>,
}

impl Results {
    fn ratio(&self, ours: &str, base: &str) -> Option<f64> {
        let (_, m) = self.sets.iter().find(|(o, _)| *o == ours)?;
        let a = m.iter().find(|x| x.id == ours)?;
        let b = m.iter().find(|x| x.id == base)?;
        Some(a.median() / b.median())
    }

    fn print_table(&self) {
        println!("| id | ns/op median | min-max | baseline | ratio |");
        println!("|---|---|---|---|---|");
        for (ours, measured) in &self.sets {
            let me = measured.iter().find(|m| m.id == *ours);
            if let Some(me) = me {
                for m in measured.iter().filter(|m| m.id != *ours) {
                    println!(
                        "| {} | {} | {}-{} | {} {} | {:.2}x |",
                        me.id,
                        ns(me.median()),
                        ns(me.min()),
                        ns(me.max()),
                        m.id,
                        ns(m.median()),
                        me.median() / m.median()
                    );
                }
            }
            for m in measured.iter().filter(|m| m.id != *ours) {
                println!(
                    "| {} | {} | {}-{} | - | - |",
                    m.id,
                    ns(m.median()),
                    ns(m.min()),
                    ns(m.max())
                );
            }
        }
        println!();
        for line in LEGEND {
            println!("{line}");
        }
    }
}

// ---------------------------------------------------------------------------
// Memory.

struct Memory {
    add_drop: (f64, f64),
    tt_token: (f64, f64),
    named: (f64, f64),
    wait_slow: (f64, f64),
    tt_wait_slow: (f64, f64),
    bare_task: f64,
    tracked_task: f64,
    tt_task: f64,
}

/// (allocations, bytes) per op over `n` runs of `op`.
fn per_op(n: usize, mut op: impl FnMut()) -> (f64, f64) {
    op(); // warm: lazily built state is not what we measure
    let (allocs, bytes) = count_allocs(|| {
        for _ in 0..n {
            op();
        }
    });
    (allocs as f64 / n as f64, bytes as f64 / n as f64)
}

/// Bytes allocated per spawn of `n` tasks made by `spawn` on a fresh
/// `LocalExecutor` (not run: the tasks are dropped with the executor).
fn bytes_per_spawn(n: usize, spawn: impl Fn(&LocalExecutor<'static>) -> Task<()>) -> f64 {
    let ex = LocalExecutor::new();
    let mut tasks = Vec::with_capacity(n);
    spawn(&ex).detach(); // the executor's lazily built state
    let (_, bytes) = count_allocs(|| {
        for _ in 0..n {
            tasks.push(spawn(&ex));
        }
    });
    drop(tasks);
    bytes as f64 / n as f64
}

fn measure_memory() -> Memory {
    const N: usize = 10_000;
    let group = Group::new();
    let _held = group.add().unwrap();
    let tracker = TaskTracker::new();
    let mut cx = noop_cx();

    let add_drop = per_op(N, || drop(black_box(group.add().unwrap())));
    let tt_token = per_op(N, || drop(black_box(tracker.token())));
    let named = per_op(N, || drop(black_box(group.add_named("worker").unwrap())));
    // Slow path: the first poll finds a live guard and registers; the guard
    // drops; the second poll is ready. The group itself is made outside.
    let wait_slow = {
        let groups: Vec<(Group, Guard)> = (0..N + 1)
            .map(|_| {
                let g = Group::new();
                let guard = g.add().unwrap();
                (g, guard)
            })
            .collect();
        let mut it = groups.into_iter();
        per_op(N, || {
            let (group, guard) = it.next().unwrap();
            let mut wait = pin!(group.wait());
            assert!(wait.as_mut().poll(&mut cx).is_pending());
            drop(guard);
            assert!(wait.as_mut().poll(&mut cx).is_ready());
        })
    };
    let tt_wait_slow = {
        let trackers: Vec<(TaskTracker, TaskTrackerToken)> = (0..N + 1)
            .map(|_| {
                let t = TaskTracker::new();
                let token = t.token();
                (t, token)
            })
            .collect();
        let mut it = trackers.into_iter();
        per_op(N, || {
            let (tracker, token) = it.next().unwrap();
            tracker.close();
            let mut wait = pin!(tracker.wait());
            assert!(wait.as_mut().poll(&mut cx).is_pending());
            drop(token);
            assert!(wait.as_mut().poll(&mut cx).is_ready());
        })
    };
    let spawn_group = Group::new();
    let bare_task = bytes_per_spawn(N, |ex| ex.spawn(work()));
    let tracked_task = bytes_per_spawn(N, |ex| spawn_group.spawn_local(ex, work()).unwrap());
    let tt_task = bytes_per_spawn(N, |ex| ex.spawn(tracker.track_future(work())));
    Memory {
        add_drop,
        tt_token,
        named,
        wait_slow,
        tt_wait_slow,
        bare_task,
        tracked_task,
        tt_task,
    }
}

fn print_memory(m: &Memory) {
    let pair = |(a, b): (f64, f64)| format!("{a:.2} allocs, {b:.1} B");
    println!();
    println!("memory (counting allocator):");
    println!("- add/drop: {} per op", pair(m.add_drop));
    println!("- tt token/drop: {} per op", pair(m.tt_token));
    println!("- add_named/drop: {} per op", pair(m.named));
    println!("- wait, slow path: {} per wait", pair(m.wait_slow));
    println!("- tt wait, slow path: {} per wait", pair(m.tt_wait_slow));
    println!(
        "- spawn on LocalExecutor: bare {:.1} B, group.spawn_local {:.1} B (+{:.1}), \
         tt track_future {:.1} B (+{:.1}) per task",
        m.bare_task,
        m.tracked_task,
        m.tracked_task - m.bare_task,
        m.tt_task,
        m.tt_task - m.bare_task
    );
    println!(
        "- size_of: Guard {}, Option<Guard> {}, Group {}, Wait {}, Tracked<work> {} \
         (work {}), TaskTrackerToken {}",
        size_of::<Guard>(),
        size_of::<Option<Guard>>(),
        size_of::<Group>(),
        size_of::<Wait<'_>>(),
        size_of::<Tracked<std::future::Ready<()>>>(),
        size_of::<std::future::Ready<()>>(),
        size_of::<TaskTrackerToken>(),
    );
}

// ---------------------------------------------------------------------------
// Targets.

/// `ours <= max x base` (or `<` when `strict`).
const TARGETS: &[(&str, f64, &str, bool)] = &[
    ("add_drop", 1.3, "arc_clone_drop", false),
    ("add_drop", 1.0, "tt_token_drop", true),
    ("add_drop_last", 2.0, "arc_clone_drop", false),
    ("add_drop_last", 0.6, "tt_token_drop_last", false),
    ("wait_ready", 0.15, "tt_wait_ready", false),
    ("wake_rt", 1.1, "park_unpark_rt", false),
    ("wake_rt_local", 1.0, "tt_wake_rt_local", false),
    ("join", 1.10, "task_await_join", false),
    ("taskset_join", 1.15, "task_await_collect", false),
    ("join_local", 1.03, "task_await_join_local", false),
    ("add_drop_x2", 1.0, "tt_token_drop_x2", false),
];

fn met(ok: bool) -> &'static str {
    if ok {
        "met"
    } else {
        "NOT met"
    }
}

fn print_targets(results: &Results, memory: Option<&Memory>) {
    println!();
    for &(ours, max, base, strict) in TARGETS {
        if let Some(r) = results.ratio(ours, base) {
            let ok = if strict { r < max } else { r <= max };
            let op = if strict { "<" } else { "<=" };
            println!("target {ours} {op} {max:.2}x {base}: {} ({r:.2}x)", met(ok));
        }
    }
    if let Some(m) = memory {
        let (allocs, bytes) = m.add_drop;
        println!(
            "target add/drop allocates nothing: {} ({allocs} allocs, {bytes} B)",
            met(allocs == 0.0 && bytes == 0.0)
        );
        let extra = m.tracked_task - m.bare_task;
        println!(
            "target tracked task <= 8 B over a bare spawn: {} (+{extra:.1} B)",
            met(extra <= 8.0)
        );
        let guard = size_of::<Guard>();
        println!(
            "target size_of::<Guard>() == 8: {} ({guard})",
            met(guard == 8)
        );
    }
}

// ---------------------------------------------------------------------------

fn main() {
    let cfg = Config::from_args();
    let started = Instant::now();
    let mut results = Results { sets: Vec::new() };
    for spec in SETS {
        let ours = spec.ours;
        let ours_wanted = cfg.wants(ours);
        if !ours_wanted && !spec.baselines.iter().any(|b| cfg.wants(b)) {
            continue;
        }
        eprintln!("measuring {ours} ...");
        let built = (spec.build)();
        let ids: Vec<&str> = built.iter().map(|c| c.id).collect();
        assert_eq!(ids[0], ours, "SETS lists our row first");
        assert_eq!(&ids[1..], spec.baselines, "SETS ids out of date");
        let mut cases: Vec<Case> = built
            .into_iter()
            // Our row brings all its baselines; otherwise only the
            // baselines that match run.
            .filter(|c| ours_wanted || cfg.wants(c.id))
            .collect();
        let measured = measure(&cfg, &mut cases);
        drop(cases); // stops this set's threads before the next set
        results.sets.push((ours, measured));
    }
    let memory_wanted = ["memory", "alloc", "size_of"]
        .iter()
        .any(|id| cfg.wants(id));
    let memory = memory_wanted.then(measure_memory);

    println!(
        "overhead: {} repetitions{}, batches of ~{} ms, interleaved; {} cores",
        cfg.reps,
        if cfg.quick { " (--quick)" } else { "" },
        cfg.batch.as_millis(),
        thread::available_parallelism().map_or(1, |n| n.get()),
    );
    println!();
    results.print_table();
    if let Some(m) = &memory {
        print_memory(m);
    }
    print_targets(&results, memory.as_ref());
    eprintln!("done in {:.1} s", started.elapsed().as_secs_f64());
}
