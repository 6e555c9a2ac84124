//! The memory a live named guard costs, counted by a global allocator (its
//! own test binary, so no other test allocates while it counts; and only
//! the counting thread's allocations count, so the test harness's own
//! threads cannot disturb it).

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicIsize, Ordering};

use smol_graceful::{Group, Guard};

struct Counting;

/// Bytes allocated minus bytes freed by threads that count. Relaxed: only
/// the measuring thread counts, and it reads what it wrote itself.
static LIVE: AtomicIsize = AtomicIsize::new(0);

thread_local! {
    /// Set on the measuring thread: only its allocations count. A `const`
    /// `Cell<bool>`: reading it allocates nothing and needs no destructor.
    static COUNTING: Cell<bool> = const { Cell::new(false) };
}

fn counting() -> bool {
    COUNTING.try_with(Cell::get).unwrap_or(false)
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if counting() {
            LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        }
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if counting() {
            LIVE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        }
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

const GUARDS: usize = 10_000;

#[test]
fn a_live_named_guard_costs_its_token_and_one_slot_and_nothing_stays_after() {
    let group = Group::new();
    let mut guards: Vec<Guard> = Vec::with_capacity(GUARDS);
    COUNTING.with(|counting| counting.set(true));
    let before = LIVE.load(Ordering::Relaxed);
    guards.extend((0..GUARDS).map(|_| group.add_named("worker").unwrap()));
    let live = LIVE.load(Ordering::Relaxed) - before;
    guards.clear();
    let after = LIVE.load(Ordering::Relaxed) - before;
    // Counting stops before anything is printed: the test harness's output
    // capture allocates on this thread.
    COUNTING.with(|counting| counting.set(false));
    let per_guard = live as f64 / GUARDS as f64;
    eprintln!("{per_guard:.1} B per live named guard (static name)");
    eprintln!("{after} B left after every named guard dropped");
    // A 32-byte token and a 32-byte registry slot, plus the slab's chunk
    // list and the slack of its last chunk. It was 147.5 B with a
    // `BTreeMap` registry.
    assert!(per_guard <= 66.0, "{per_guard:.1} B per live named guard");
    // The registry shrinks back to its first chunk (at most 8 KiB) when the
    // last named guard goes.
    assert!(after <= 8 * 1024 + 256, "{after} B left");
    assert!(group.stragglers().named().is_empty());
}
