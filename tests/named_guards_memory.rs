//! The memory a live named guard costs, counted by a global allocator (its
//! own test binary; only this test's thread is counted).

mod common;

use common::counting_alloc::{count, live, Counting};
use smol_graceful::{Group, Guard};

#[global_allocator]
static ALLOC: Counting = Counting;

const GUARDS: usize = 10_000;

#[test]
fn a_live_named_guard_costs_its_token_and_one_slot_and_nothing_stays_after() {
    let group = Group::new();
    let mut guards: Vec<Guard> = Vec::with_capacity(GUARDS);
    count(true);
    let before = live();
    guards.extend((0..GUARDS).map(|_| group.add_named("worker").unwrap()));
    let live_guards = live() - before;
    guards.clear();
    let after = live() - before;
    // Counting stops before anything is printed: the test harness's output
    // capture allocates on this thread.
    count(false);
    let per_guard = live_guards as f64 / GUARDS as f64;
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
