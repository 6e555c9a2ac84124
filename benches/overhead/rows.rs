//! What a row is ([`Spec`]), the rows by the mechanism they measure, and
//! [`SETS`], the order of the table. Each row's `Spec` stands next to the
//! code it runs; a row with baselines heads a set, measured interleaved with
//! them.

mod broadcast;
mod count;
mod join;
mod wait;

use crate::fixtures::Fixtures;
use crate::harness::Body;

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

/// One row: everything the table, the legend and the target lines say about
/// it, and how to build it. A row with baselines is "ours" and heads a set:
/// it is measured interleaved with them.
pub struct Spec {
    pub id: &'static str,
    /// What one op is, printed in the legend.
    pub op: &'static str,
    /// Operations per iteration of the body (`join` runs 100,000 tasks per
    /// iteration).
    pub ops_per_iter: u64,
    /// The rows this one is compared with, each with its target if any.
    pub baselines: &'static [Baseline],
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
        let baselines = &[];
        Spec {
            id,
            op,
            ops_per_iter,
            baselines,
            build,
        }
    }

    /// This row, measured with `baselines` and held to their targets.
    pub const fn against(self, baselines: &'static [Baseline]) -> Spec {
        Spec { baselines, ..self }
    }

    /// This row and then its baselines: the rows of its set, in table order.
    pub fn set(&'static self) -> impl Iterator<Item = &'static Spec> {
        std::iter::once(self).chain(self.baselines.iter().map(|b| b.spec))
    }
}

/// A baseline of a row, and the target the row has against it.
pub struct Baseline {
    pub spec: &'static Spec,
    pub target: Option<Target>,
}

/// A limit on the ratio row / baseline.
#[derive(Clone, Copy)]
pub enum Target {
    AtMost(f64),
    Below(f64),
}

/// A baseline with no target.
pub const fn vs(spec: &'static Spec) -> Baseline {
    Baseline { spec, target: None }
}

/// A baseline the row must stay within `limit` times of.
pub const fn at_most(limit: f64, spec: &'static Spec) -> Baseline {
    let target = Some(Target::AtMost(limit));
    Baseline { spec, target }
}

/// A baseline the row must stay strictly under `limit` times of.
pub const fn below(limit: f64, spec: &'static Spec) -> Baseline {
    let target = Some(Target::Below(limit));
    Baseline { spec, target }
}
