//! The memory a live named guard costs, counted by a global allocator (its
//! own test binary, so no other test allocates while it counts).

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

use smol_graceful::{Group, Guard};

struct Counting;

/// Bytes currently allocated. Relaxed: only this thread allocates while a
/// test measures (one test in this binary).
static LIVE: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size(), Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
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
    let before = LIVE.load(Ordering::Relaxed);
    guards.extend((0..GUARDS).map(|_| group.add_named("worker").unwrap()));
    let per_guard = (LIVE.load(Ordering::Relaxed) - before) as f64 / GUARDS as f64;
    eprintln!("{per_guard:.1} B per live named guard (static name)");
    // A 32-byte token and a 32-byte registry slot, plus the slab's chunk
    // list and the slack of its last chunk. It was 147.5 B with a
    // `BTreeMap` registry.
    assert!(per_guard <= 66.0, "{per_guard:.1} B per live named guard");
    guards.clear();
    // The registry shrinks back to its first chunk (at most 8 KiB) when the
    // last named guard goes.
    let after = LIVE.load(Ordering::Relaxed) - before;
    eprintln!("{after} B left after every named guard dropped");
    assert!(after <= 8 * 1024 + 256, "{after} B left");
    assert!(group.stragglers().named().is_empty());
}
