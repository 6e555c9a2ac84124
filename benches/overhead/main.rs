//! What the crate costs next to its floors (an `Arc`, an atomic, a thread
//! park) and its peers (tokio-util's `TaskTracker` and `CancellationToken`),
//! measured in one run. `benches/README.md` says what each row measures and
//! shows a full run.
//!
//! ```text
//! cargo bench --bench overhead              # every row, 31 repetitions
//! cargo bench --profile bench-lto --bench overhead   # the same, fat LTO
//! cargo bench --bench overhead -- --quick   # 3 repetitions, short batches (< 60 s)
//! cargo bench --bench overhead -- wake      # only the rows whose id contains "wake"
//! cargo bench --bench overhead -- memory    # only the allocation counts
//! ```
//!
//! Each of our rows is measured together with its baselines, interleaved
//! (A B C, B C A, ...), so drift on a shared machine hits all of them alike.
//! A repetition is one batch of each row, sized to take about 10 ms (2 ms with
//! `--quick`); the table shows the median and p10-p90 of the per-op times,
//! and each of our rows once per baseline with the ratios of the two rows'
//! times repetition by repetition (median, p10-p90). Round-trip rows time
//! each round trip (p50/p99/p99.9/max). A legend says what one op is in each
//! row; a counting allocator then reports allocations and live bytes, and the
//! run ends with one line per target, judged on the spread of its ratios.
//!
//! - `rows.rs`: what a row is, its [`Spec`](rows::Spec) (id, legend line,
//!   ops per iteration, baselines, the target against each), and the order
//!   of the table; `rows/`: the rows by mechanism (`count`, `wait`, `join`,
//!   `broadcast`), each `Spec` next to its code.
//! - `harness.rs`: calibration, interleaved measurement, statistics,
//!   verdicts, and the table, legend and target lines printed from the
//!   `Spec`s.
//! - `fixtures.rs`: the threads, pools and tasks the rows share.
//! - `alloc.rs`: the counting allocator and the memory rows.

mod alloc;
mod fixtures;
mod harness;
mod rows;

use std::fmt::Arguments;
use std::io::Write as _;
use std::time::Instant;

use alloc::Memory;
use harness::{Config, Results, Set};
use rows::Kind;

fn main() {
    let cfg = Config::from_args();
    let started = Instant::now();
    let mut results = Results::default();
    for &ours in rows::SETS {
        // An `_xN` set runs with 2 threads, and with one per core if more.
        let threads: &[usize] = match ours.kind {
            Kind::Team if harness::cores() > 2 => &[2, harness::cores()],
            _ => &[2],
        };
        for &n in threads {
            if Set::wanted(&cfg, ours, n) {
                progress(format_args!("measuring {} ...", ours.name(n)));
                results.sets.push(Set::measure(&cfg, ours, n));
            }
        }
    }
    let memory = Memory::wanted(&cfg).then(Memory::measure);

    cfg.print_header();
    if !results.sets.is_empty() {
        results.print_table();
        results.print_legend();
    }
    if let Some(m) = &memory {
        m.print();
    }
    results.print_targets();
    if let Some(m) = &memory {
        m.print_targets();
    }
    progress(format_args!(
        "done in {:.1} s",
        started.elapsed().as_secs_f64()
    ));
}

/// A progress line on stderr. The results go to stdout: a run whose stderr
/// is gone (`2>/dev/full`) still reports them and exits 0.
fn progress(line: Arguments<'_>) {
    let _ = writeln!(std::io::stderr(), "{line}");
}
