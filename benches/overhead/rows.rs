//! The rows, by the mechanism they measure, and [`SETS`], the order of the
//! table. Each row is a [`Spec`](crate::harness::Spec) next to the code it
//! runs; a row with baselines heads a set, measured interleaved with them.

mod broadcast;
mod count;
mod join;
mod wait;

use crate::harness::Spec;

/// Every set, in table order, by the row that heads it. Built lazily, so a
/// filtered run starts only the threads it needs.
pub const SETS: &[&Spec] = &[
    &count::ADD_DROP,
    &count::ADD_DROP_LAST,
    &count::ADD_DROP_X2,
    &wait::WAIT_READY,
    &wait::WAKE_RT,
    &wait::WAKE_RT_LOCAL,
    &join::JOIN,
    &join::TASKSET_JOIN,
    &join::JOIN_LOCAL,
    &broadcast::SHUTDOWN_TRIGGER_1K,
    &broadcast::CHILD_DROP_131K,
    &count::STRAGGLERS_NAMED,
];
