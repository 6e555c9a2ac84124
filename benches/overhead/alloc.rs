//! A counting allocator, switched on only around the memory rows, and the
//! memory rows: each measures, prints one line, and carries its target.
//! Rows of the form "per op" count what an operation allocates; rows of the
//! form "per live ..." count the bytes still allocated (allocated minus
//! freed) while 10,000 of the thing are alive.

use std::alloc::{GlobalAlloc, Layout, System};
use std::convert::Infallible;
use std::future::Future;
use std::hint::black_box;
use std::pin::pin;
use std::sync::atomic::{AtomicBool, AtomicIsize, AtomicUsize, Ordering};

use futures_lite::future::block_on;
use smol::{Executor, LocalExecutor, Task};
use smol_graceful::futures::{Wait, WaitTimeout};
use smol_graceful::{Group, Guard, Shutdown, Stragglers, TaskSet, Tracked};
use tokio_util::sync::CancellationToken;
use tokio_util::task::task_tracker::TaskTrackerToken;
use tokio_util::task::TaskTracker;

use crate::fixtures::{noop_cx, work};
use crate::harness::{Config, Verdict};

/// Forwards to `System`, counting allocations while [`COUNTING`] is on.
struct CountingAlloc;

static COUNTING: AtomicBool = AtomicBool::new(false);
static ALLOCS: AtomicUsize = AtomicUsize::new(0);
static BYTES: AtomicUsize = AtomicUsize::new(0);
/// Bytes allocated minus bytes freed while counting.
static LIVE: AtomicIsize = AtomicIsize::new(0);

fn record(bytes: usize) {
    // Relaxed: statistics only, read after the measured code on the same
    // thread (the measurements run while no other thread allocates).
    if COUNTING.load(Ordering::Relaxed) {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        BYTES.fetch_add(bytes, Ordering::Relaxed);
        LIVE.fetch_add(bytes as isize, Ordering::Relaxed);
    }
}

fn record_free(bytes: usize) {
    // Relaxed: as in `record`.
    if COUNTING.load(Ordering::Relaxed) {
        LIVE.fetch_sub(bytes as isize, Ordering::Relaxed);
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
        record_free(layout.size());
        // SAFETY: as in `alloc`; `ptr` came from this allocator, i.e. `System`.
        unsafe { System.realloc(ptr, layout, new_size) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        record_free(layout.size());
        // SAFETY: as in `realloc`.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: CountingAlloc = CountingAlloc;

/// Runs `f` with counting on: (allocations, bytes) made meanwhile.
fn count_allocs(f: impl FnOnce()) -> (usize, usize) {
    // Relaxed for the counters: only this thread allocates while counting
    // is on. SeqCst on the switch: the simplest order that keeps `f`'s
    // allocations between the two stores.
    ALLOCS.store(0, Ordering::Relaxed);
    BYTES.store(0, Ordering::Relaxed);
    LIVE.store(0, Ordering::Relaxed);
    COUNTING.store(true, Ordering::SeqCst);
    f();
    COUNTING.store(false, Ordering::SeqCst);
    (
        ALLOCS.load(Ordering::Relaxed),
        BYTES.load(Ordering::Relaxed),
    )
}

// ---------------------------------------------------------------------------
// The memory rows.

/// Operations (or spawns) each memory row counts over.
const N: usize = 10_000;

/// Every memory row, in print order.
const ROWS: &[fn() -> Reading] = &[
    add_drop,
    tt_token_drop,
    add_named_drop,
    wait_slow,
    tt_wait_slow,
    spawn_local,
    named_live_static,
    named_live_formatted,
    child_live,
    ct_child_live,
    triggered_live,
    ct_cancelled_live,
    taskset_finished,
    sizes,
];

/// What a memory row found: its line, and the verdict on its target.
struct Reading {
    line: String,
    target: Option<MemTarget>,
}

struct MemTarget {
    /// What the target says, e.g. "add/drop allocates nothing".
    what: &'static str,
    verdict: Verdict,
    /// The measured figure, shown beside the verdict.
    figure: String,
}

impl Reading {
    fn line(line: String) -> Reading {
        Reading { line, target: None }
    }

    fn target(mut self, what: &'static str, ok: bool, figure: String) -> Reading {
        let verdict = Verdict::of(ok);
        self.target = Some(MemTarget {
            what,
            verdict,
            figure,
        });
        self
    }
}

/// Allocations and bytes per op.
struct PerOp {
    allocs: f64,
    bytes: f64,
}

impl std::fmt::Display for PerOp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:.2} allocs, {:.1} B", self.allocs, self.bytes)
    }
}

/// Allocations and bytes per op over `N` runs of `op`.
fn per_op(mut op: impl FnMut()) -> PerOp {
    op(); // warm: lazily built state is not what we measure
    let (allocs, bytes) = count_allocs(|| {
        for _ in 0..N {
            op();
        }
    });
    let (allocs, bytes) = (allocs as f64 / N as f64, bytes as f64 / N as f64);
    PerOp { allocs, bytes }
}

fn add_drop() -> Reading {
    let group = Group::new();
    let _held = group.add().unwrap();
    let m = per_op(|| drop(black_box(group.add().unwrap())));
    let ok = m.allocs == 0.0 && m.bytes == 0.0;
    let figure = format!("{} allocs, {} B", m.allocs, m.bytes);
    Reading::line(format!("add/drop: {m} per op")).target("add/drop allocates nothing", ok, figure)
}

fn tt_token_drop() -> Reading {
    let tracker = TaskTracker::new();
    let m = per_op(|| drop(black_box(tracker.token())));
    Reading::line(format!("tt token/drop: {m} per op"))
}

fn add_named_drop() -> Reading {
    let group = Group::new();
    let _held = group.add().unwrap();
    let m = per_op(|| drop(black_box(group.add_named("worker").unwrap())));
    Reading::line(format!("add_named/drop: {m} per op"))
}

/// The slow path of a wait: the first poll finds a live guard (token) and
/// registers; it drops; the second poll is ready. `make` builds one
/// waitable and its guard, outside the count; `wait_once` runs the path.
fn slow_wait<S>(make: impl Fn() -> S, mut wait_once: impl FnMut(S)) -> PerOp {
    let mut made = (0..N + 1).map(|_| make()).collect::<Vec<S>>().into_iter();
    per_op(|| wait_once(made.next().unwrap()))
}

fn wait_slow() -> Reading {
    let mut cx = noop_cx();
    let make = || {
        let group = Group::new();
        let guard = group.add().unwrap();
        (group, guard)
    };
    let m = slow_wait(make, |(group, guard): (Group, Guard)| {
        let mut wait = pin!(group.wait());
        assert!(wait.as_mut().poll(&mut cx).is_pending());
        drop(guard);
        assert!(wait.as_mut().poll(&mut cx).is_ready());
    });
    Reading::line(format!("wait, slow path: {m} per wait"))
}

fn tt_wait_slow() -> Reading {
    let mut cx = noop_cx();
    let make = || {
        let tracker = TaskTracker::new();
        let token = tracker.token();
        (tracker, token)
    };
    let m = slow_wait(make, |(tracker, token): (TaskTracker, TaskTrackerToken)| {
        tracker.close();
        let mut wait = pin!(tracker.wait());
        assert!(wait.as_mut().poll(&mut cx).is_pending());
        drop(token);
        assert!(wait.as_mut().poll(&mut cx).is_ready());
    });
    Reading::line(format!("tt wait, slow path: {m} per wait"))
}

/// Bytes allocated per spawn of `N` tasks made by `spawn` on a fresh
/// `LocalExecutor` (not run: the tasks are dropped with the executor).
fn bytes_per_spawn(spawn: impl Fn(&LocalExecutor<'static>) -> Task<()>) -> f64 {
    let ex = LocalExecutor::new();
    let mut tasks = Vec::with_capacity(N);
    spawn(&ex).detach(); // the executor's lazily built state
    let (_, bytes) = count_allocs(|| {
        for _ in 0..N {
            tasks.push(spawn(&ex));
        }
    });
    drop(tasks);
    bytes as f64 / N as f64
}

fn spawn_local() -> Reading {
    let (group, tracker) = (Group::new(), TaskTracker::new());
    let bare = bytes_per_spawn(|ex| ex.spawn(work()));
    let tracked = bytes_per_spawn(|ex| group.spawn_local(ex, work()).unwrap());
    let tt = bytes_per_spawn(|ex| ex.spawn(tracker.track_future(work())));
    let (extra, tt_extra) = (tracked - bare, tt - bare);
    let line = format!(
        "spawn on LocalExecutor: bare {bare:.1} B, group.spawn_local {tracked:.1} B \
         (+{extra:.1}), tt track_future {tt:.1} B (+{tt_extra:.1}) per task"
    );
    let what = "tracked task <= 8 B over a bare spawn";
    Reading::line(line).target(what, extra <= 8.0, format!("+{extra:.1} B"))
}

/// Bytes still allocated per item while the `N` items `make` made (with
/// `make`'s state warmed by one item made and dropped first) are alive.
fn live_per<T>(mut make: impl FnMut(usize) -> T) -> f64 {
    drop(make(N));
    let mut live = Vec::with_capacity(N);
    count_allocs(|| {
        for i in 0..N {
            live.push(make(i));
        }
    });
    // Relaxed: read on the thread that counted, after counting stopped.
    let bytes = LIVE.load(Ordering::Relaxed);
    drop(live);
    bytes as f64 / N as f64
}

fn named_live_static() -> Reading {
    let group = Group::new();
    let bytes = live_per(|_| group.add_named("worker").unwrap());
    let line = format!("per live named guard, static name (10,000 live): {bytes:.1} B");
    let what = "bytes per live named guard (static name) <= 64";
    Reading::line(line).target(what, bytes <= 64.0, format!("{bytes:.1} B"))
}

fn named_live_formatted() -> Reading {
    let group = Group::new();
    let bytes = live_per(|i| group.add_named(format!("worker-{i}")).unwrap());
    Reading::line(format!(
        "per live named guard, formatted name \"worker-{{i}}\" (10,000 live, the \
         String included): {bytes:.1} B"
    ))
}

fn child_live() -> Reading {
    let root = Shutdown::new();
    let bytes = live_per(|_| root.child());
    let line = format!("per live child scope (Shutdown::child, 10,000 live): {bytes:.1} B");
    let what = "bytes per live child scope <= 128";
    Reading::line(line).target(what, bytes <= 128.0, format!("{bytes:.1} B"))
}

fn ct_child_live() -> Reading {
    let root = CancellationToken::new();
    let bytes = live_per(|_| root.child_token());
    Reading::line(format!(
        "per live CancellationToken::child_token (10,000 live): {bytes:.1} B"
    ))
}

/// Bytes per pending waiter: a future made by `make`, boxed and polled once
/// (pending), 10,000 alive; and the size of the future itself.
fn waiters_live<F: Future<Output = ()>>(make: impl Fn() -> F) -> (f64, usize) {
    let mut cx = noop_cx();
    let bytes = live_per(|_| {
        let mut fut = Box::pin(make());
        assert!(fut.as_mut().poll(&mut cx).is_pending());
        fut
    });
    (bytes, size_of::<F>())
}

fn triggered_live() -> Reading {
    let shutdown = Shutdown::new();
    let (bytes, size) = waiters_live(|| shutdown.triggered());
    Reading::line(format!(
        "per pending triggered() waiter (boxed, polled once, 10,000 live): {bytes:.1} B \
         ({size} B the future itself, {:.1} B registered)",
        bytes - size as f64
    ))
}

fn ct_cancelled_live() -> Reading {
    let token = CancellationToken::new();
    let (bytes, size) = waiters_live(|| token.cancelled());
    Reading::line(format!(
        "per pending CancellationToken::cancelled() waiter (as triggered()): \
         {bytes:.1} B ({size} B the future itself, {:.1} B registered)",
        bytes - size as f64
    ))
}

/// A `TaskSet<(), _>` holding `N` finished tasks before `join`: the bytes it
/// (and the executor, run on this thread) still holds per task.
fn taskset_finished() -> Reading {
    let ex = Executor::new();
    // The executor's lazily built state, and its table of active tasks
    // grown to hold `N` at once (it keeps that capacity), outside the
    // count: the row spawns `N` tasks before running them, and what the
    // executor keeps for that is not the set's.
    for _ in 0..N {
        ex.spawn(async {}).detach();
    }
    while ex.try_tick() {}
    let mut set = TaskSet::<(), Infallible>::new();
    let spawn_all = |set: &TaskSet<(), Infallible>, n: usize| {
        for _ in 0..n {
            set.build_task().spawn_on(&ex, async { Ok(()) }).unwrap();
        }
        while ex.try_tick() {}
    };
    spawn_all(&set, 1); // the set's lazily built state
    count_allocs(|| spawn_all(&set, N));
    // Relaxed: read on the thread that counted, after counting stopped.
    let bytes = LIVE.load(Ordering::Relaxed) as f64 / N as f64;
    assert_eq!(set.len(), 0, "a task did not finish");
    block_on(ex.run(set.join())).unwrap();
    // The floor: as many detached tasks run to completion leave nothing.
    count_allocs(|| {
        for _ in 0..N {
            ex.spawn(async {}).detach();
        }
        while ex.try_tick() {}
    });
    // Relaxed: as above.
    let floor = LIVE.load(Ordering::Relaxed) as f64 / N as f64;
    let line = format!(
        "per finished TaskSet<(), _> task before join (10,000): {bytes:.1} B \
         (detached spawns run to completion on the same executor: {floor:.1} B)"
    );
    let what = "bytes per finished TaskSet task with T = () <= 24";
    Reading::line(line).target(what, bytes <= 24.0, format!("{bytes:.1} B"))
}

fn sizes() -> Reading {
    let guard = size_of::<Guard>();
    let line = format!(
        "size_of: Guard {guard}, Option<Guard> {}, Group {}, Wait {}, Tracked<work> {} \
         (work {}), TaskTrackerToken {}, WaitTimeout {}, Result<(), Stragglers> {}",
        size_of::<Option<Guard>>(),
        size_of::<Group>(),
        size_of::<Wait<'_>>(),
        size_of::<Tracked<std::future::Ready<()>>>(),
        size_of::<std::future::Ready<()>>(),
        size_of::<TaskTrackerToken>(),
        size_of::<WaitTimeout<'_>>(),
        size_of::<Result<(), Stragglers>>(),
    );
    Reading::line(line).target("size_of::<Guard>() == 8", guard == 8, guard.to_string())
}

// ---------------------------------------------------------------------------
// Running and printing.

/// The memory rows' results.
pub struct Memory {
    readings: Vec<Reading>,
}

impl Memory {
    /// Whether `cfg` selects the memory rows.
    pub fn wanted(cfg: &Config) -> bool {
        ["memory", "alloc", "size_of", "bytes", "live"]
            .iter()
            .any(|id| cfg.wants(id))
    }

    pub fn measure() -> Memory {
        let readings = ROWS.iter().map(|row| row()).collect();
        Memory { readings }
    }

    pub fn print(&self) {
        println!();
        println!("memory (counting allocator):");
        for r in &self.readings {
            println!("- {}", r.line);
        }
    }

    pub fn print_targets(&self) {
        for t in self.readings.iter().filter_map(|r| r.target.as_ref()) {
            let verdict = t.verdict.as_str();
            println!("target {}: {verdict} ({})", t.what, t.figure);
        }
    }
}
