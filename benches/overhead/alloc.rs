//! A counting allocator, switched on only around the memory rows, and the
//! memory rows: each measures, prints one line, and carries its target.

use std::alloc::{GlobalAlloc, Layout, System};
use std::future::Future;
use std::hint::black_box;
use std::pin::pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use smol::{LocalExecutor, Task};
use smol_graceful::futures::Wait;
use smol_graceful::{Group, Guard, Tracked};
use tokio_util::task::task_tracker::TaskTrackerToken;
use tokio_util::task::TaskTracker;

use crate::fixtures::{noop_cx, work};
use crate::harness::{Config, Verdict};

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
    // Relaxed for the counters: only this thread allocates while counting
    // is on. SeqCst on the switch: the simplest order that keeps `f`'s
    // allocations between the two stores.
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

fn sizes() -> Reading {
    let guard = size_of::<Guard>();
    let line = format!(
        "size_of: Guard {guard}, Option<Guard> {}, Group {}, Wait {}, Tracked<work> {} \
         (work {}), TaskTrackerToken {}",
        size_of::<Option<Guard>>(),
        size_of::<Group>(),
        size_of::<Wait<'_>>(),
        size_of::<Tracked<std::future::Ready<()>>>(),
        size_of::<std::future::Ready<()>>(),
        size_of::<TaskTrackerToken>(),
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
        ["memory", "alloc", "size_of"]
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
