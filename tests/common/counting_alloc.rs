//! A global allocator that counts the bytes the current thread allocates and frees while
//! it counts, for the memory tests (each in its own test binary, which declares it with
//! `#[global_allocator] static ALLOC: Counting = Counting;`).
//!
//! Only threads that called [`count`] are counted, so the test harness's own threads (and
//! its output capture, once counting stops) cannot disturb a measurement.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicIsize, Ordering};

/// The counting allocator: [`System`], plus the count.
pub struct Counting;

/// Bytes allocated minus bytes freed by counting threads. Relaxed: the thread that counts
/// reads what it wrote itself.
static LIVE: AtomicIsize = AtomicIsize::new(0);

thread_local! {
    /// Set on a thread while it counts. A `const` `Cell<bool>`: reading it allocates
    /// nothing and needs no destructor, so the allocator can read it.
    static COUNTING: Cell<bool> = const { Cell::new(false) };
}

fn counting() -> bool {
    COUNTING.try_with(Cell::get).unwrap_or(false)
}

/// Starts (`true`) or stops (`false`) counting this thread's allocations.
pub fn count(on: bool) {
    COUNTING.with(|counting| counting.set(on));
}

/// Bytes allocated minus bytes freed while counting, since the process started.
pub fn live() -> isize {
    LIVE.load(Ordering::Relaxed)
}

// SAFETY: every call is forwarded unchanged to `System`; counting touches no memory the
// caller owns.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if counting() {
            LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        }
        // SAFETY: forwarded unchanged; the caller upholds `alloc`'s contract.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if counting() {
            LIVE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        }
        // SAFETY: `ptr` came from this allocator, that is from `System`, with `layout`.
        unsafe { System.dealloc(ptr, layout) }
    }
}
