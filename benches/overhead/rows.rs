//! What a row is ([`Spec`]), the rows by the mechanism they measure, and
//! [`SETS`], the order of the table. Each row's `Spec` stands next to the
//! code it runs; a row with baselines heads a set, measured interleaved with
//! them.

mod broadcast;
mod count;
mod join;
mod task_set;
mod wait;

use crate::fixtures::Fixtures;
use crate::harness::Body;

/// Every set, in table order, by the row that heads it. Built lazily, so a
/// filtered run starts only the threads it needs. A set headed by an `_xN`
/// row runs with 2 threads, and again with one per core when there are more.
pub const SETS: &[&Spec] = &[
    &count::ADD_DROP,
    &count::GROUP_NEW_DROP,
    &count::LIFECYCLE,
    &count::ADD_NAMED,
    &count::ADD_DROP_XN,
    &count::ADD_NAMED_XN,
    &wait::WAIT_READY,
    &wait::WAIT_TIMEOUT_READY,
    &wait::WAKE_RT,
    &wait::WAKE_RT_LOCAL,
    &wait::WAKE_RT_LOCAL_TIMEOUT,
    &join::JOIN_1K,
    &join::JOIN_10K,
    &join::JOIN_100K,
    &join::JOIN_1M,
    &join::JOIN_LOCAL_1K,
    &join::JOIN_LOCAL_10K,
    &join::JOIN_LOCAL_100K,
    &join::JOIN_LOCAL_1M,
    &join::TASKSET_JOIN_1K,
    &join::TASKSET_JOIN_10K,
    &join::TASKSET_JOIN_100K,
    &join::TASKSET_JOIN_1M,
    &task_set::JOIN_NEXT_10K,
    &task_set::ABORT_10K,
    &broadcast::SHUTDOWN_TRIGGER_1K,
    &broadcast::SHUTDOWN_TRIGGER_AFTER_1K,
    &broadcast::SHUTDOWN_TRIGGER_10K,
    &broadcast::SHUTDOWN_TRIGGER_100K,
    &broadcast::SUBSCRIBE_1K,
    &broadcast::CHILD_DROP_131K,
];

/// How a row's batches are measured and reported.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// ns per op: batch time / ops.
    Mean,
    /// Round trips, each timed: p50/p99/p99.9/max; targets on the p50.
    Latency,
    /// `_xN`: the same loop on N threads at once; ns per op per thread, only
    /// batches whose threads overlap (see `harness::MIN_OVERLAP`).
    Team,
}

/// Which statistic of a repetition a ratio compares.
#[derive(Clone, Copy)]
pub enum Stat {
    /// ns/op; the median round trip of latency rows.
    Typical,
    /// The 99th percentile round trip (latency rows).
    P99,
}

/// One row: everything the table, the legend and the target lines say about
/// it, and how to build it. A row with baselines is "ours" and heads a set:
/// it is measured interleaved with them.
pub struct Spec {
    /// The id; in `_xN` rows, `xN` stands for the thread count.
    pub id: &'static str,
    /// What one op is, printed in the legend.
    pub op: &'static str,
    /// Operations per iteration of the body (`join_1m` runs 1,000,000 tasks
    /// per iteration).
    pub ops_per_iter: u64,
    pub kind: Kind,
    /// Repetitions this row needs in a full run (the run's default if less).
    pub min_reps: usize,
    /// The rows this one is compared with, each with its target if any.
    pub baselines: &'static [Baseline],
    /// Targets checked between two of the baselines (see [`Reach`]).
    pub reach: &'static [Reach],
    /// Builds the body; the rows of one set share one [`Fixtures`].
    pub build: fn(&Fixtures) -> Body,
}

impl Spec {
    /// A row with no baselines of its own (as a baseline of others, say).
    pub const fn new(
        id: &'static str,
        ops_per_iter: u64,
        op: &'static str,
        build: fn(&Fixtures) -> Body,
    ) -> Spec {
        Spec {
            id,
            op,
            ops_per_iter,
            kind: Kind::Mean,
            min_reps: 0,
            baselines: &[],
            reach: &[],
            build,
        }
    }

    /// This row, measured with `baselines` and held to their targets.
    pub const fn against(self, baselines: &'static [Baseline]) -> Spec {
        Spec { baselines, ..self }
    }

    /// Checks whether one baseline meets one of this row's targets against
    /// another (see [`Reach`]); both must be among `baselines`.
    pub const fn reach(self, reach: &'static [Reach]) -> Spec {
        Spec { reach, ..self }
    }

    /// A latency row: each round trip timed.
    pub const fn latency(self) -> Spec {
        let kind = Kind::Latency;
        Spec { kind, ..self }
    }

    /// An `_xN` row.
    pub const fn team(self) -> Spec {
        let kind = Kind::Team;
        Spec { kind, ..self }
    }

    /// At least `reps` repetitions in a full run.
    pub const fn reps(self, min_reps: usize) -> Spec {
        Spec { min_reps, ..self }
    }

    /// This row and then its baselines: the rows of its set, in table order.
    pub fn set(&'static self) -> impl Iterator<Item = &'static Spec> {
        std::iter::once(self).chain(self.baselines.iter().map(|b| b.spec))
    }

    /// The id as printed: `xN` replaced by the thread count in `_xN` rows.
    pub fn name(&self, threads: usize) -> String {
        match self.kind {
            Kind::Team => self.id.replace("_xN", &format!("_x{threads}")),
            _ => self.id.to_owned(),
        }
    }
}

/// A baseline of a row, and the target the row has against it.
pub struct Baseline {
    pub spec: &'static Spec,
    /// The limit on the ratio row / baseline, if any.
    pub target: Option<f64>,
    /// Latency rows: the limit holds for the p99 round trip too.
    pub p99: bool,
}

/// Whether a target is within reach: a floor of the row (what any design
/// of it pays) held to the row's limit against another baseline. A floor
/// that misses the limit shows the target asks for less than the floor.
/// Printed as `reach <floor> <= <limit>x <baseline>: <verdict>`, judged
/// like a target, and not a target of ours.
pub struct Reach {
    pub floor: &'static Spec,
    pub limit: f64,
    pub baseline: &'static Spec,
}

/// A baseline with no target.
pub const fn vs(spec: &'static Spec) -> Baseline {
    let (target, p99) = (None, false);
    Baseline { spec, target, p99 }
}

/// A baseline the row must stay within `limit` times of.
pub const fn at_most(limit: f64, spec: &'static Spec) -> Baseline {
    let (target, p99) = (Some(limit), false);
    Baseline { spec, target, p99 }
}

/// A baseline the row's median and p99 round trips must both stay within
/// `limit` times of.
pub const fn at_most_p50_p99(limit: f64, spec: &'static Spec) -> Baseline {
    let (target, p99) = (Some(limit), true);
    Baseline { spec, target, p99 }
}
