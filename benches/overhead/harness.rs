//! The measuring machinery: how the rows of a set are calibrated and
//! measured interleaved, their statistics (per-repetition paired ratios,
//! percentiles, tail latencies), the verdicts on their targets, and the
//! tables, legend and target lines, all printed from the rows' [`Spec`]s.

use std::time::{Duration, Instant};

use crate::fixtures::Fixtures;
use crate::rows::{Kind, Spec, Stat};

/// Runs `iters` iterations of a row and reports them (setup excluded).
pub type Body = Box<dyn FnMut(u64) -> Batch>;

/// What one batch of a row measured.
pub struct Batch {
    /// Time per thread for the batch's `iters` iterations (for one-thread
    /// rows simply the time they took).
    pub took: Duration,
    /// False when the batch does not count: an `_xN` batch whose threads did
    /// not overlap for at least [`MIN_OVERLAP`] of their span.
    pub kept: bool,
    /// Latency rows: the time of each round trip, in ns.
    pub laps: Vec<u64>,
}

/// An `_xN` batch counts only if its threads ran at the same time for at
/// least this share of the span from the first start to the last end.
pub const MIN_OVERLAP: f64 = 0.9;

/// Times `iters` runs of `op`. `#[inline]`, so that each row's loop is
/// compiled in its own module's codegen unit, with the code it measures:
/// otherwise drop glue the loop calls can sit in another unit, out of the
/// inliner's reach, and the row measures a call it does not make.
#[inline]
pub fn time(iters: u64, mut op: impl FnMut()) -> Duration {
    let start = Instant::now();
    for _ in 0..iters {
        op();
    }
    start.elapsed()
}

/// A body from a closure that returns the time of its batch.
pub fn body(mut f: impl FnMut(u64) -> Duration + 'static) -> Body {
    Box::new(move |n| Batch {
        took: f(n),
        kept: true,
        laps: Vec::new(),
    })
}

/// A body that reports its batches itself (latency and `_xN` rows).
pub fn batches(f: impl FnMut(u64) -> Batch + 'static) -> Body {
    Box::new(f)
}

/// Times each of `iters` round trips made by `round`: a latency batch.
#[inline]
pub fn laps(iters: u64, mut round: impl FnMut()) -> Batch {
    let mut laps = Vec::with_capacity(iters as usize);
    let start = Instant::now();
    for _ in 0..iters {
        let t = Instant::now();
        round();
        laps.push(t.elapsed().as_nanos() as u64);
    }
    let took = start.elapsed();
    Batch {
        took,
        kept: true,
        laps,
    }
}

// ---------------------------------------------------------------------------
// Verdicts.

/// Whether a target holds, judged on the spread of its paired ratios.
#[derive(Clone, Copy)]
pub enum Verdict {
    Met,
    NotMet,
    Inconclusive,
}

impl Verdict {
    /// For a figure that is exact (a byte count, a size).
    pub fn of(ok: bool) -> Verdict {
        if ok {
            Verdict::Met
        } else {
            Verdict::NotMet
        }
    }

    /// `met` only when even p90 is within `limit`, `NOT met` when even p10
    /// is above it: a spread that straddles the limit decides nothing.
    fn of_spread(p10: f64, p90: f64, limit: f64) -> Verdict {
        if p90 <= limit {
            Verdict::Met
        } else if p10 > limit {
            Verdict::NotMet
        } else {
            Verdict::Inconclusive
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Met => "met",
            Verdict::NotMet => "NOT met",
            Verdict::Inconclusive => "inconclusive",
        }
    }
}

// ---------------------------------------------------------------------------
// Configuration and the machine.

pub struct Config {
    pub quick: bool,
    /// Repetitions per set (join rows ask for more, see [`Spec::min_reps`]).
    pub reps: usize,
    /// Wanted duration of one batch.
    pub batch: Duration,
    /// Substrings; empty = everything.
    filters: Vec<String>,
    /// The machine, read at the start of the run.
    machine: Machine,
}

/// The machine the run is on: what the header prints.
struct Machine {
    cpu: String,
    cores: usize,
    load_before: String,
    profile: &'static str,
}

/// The 1-, 5- and 15-minute load averages and the rest of `/proc/loadavg`.
fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.trim().to_owned())
        .unwrap_or_else(|_| "unknown".to_owned())
}

fn load1(loadavg: &str) -> Option<f64> {
    loadavg.split_whitespace().next()?.parse().ok()
}

/// The number of cores this process may run on.
pub fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

impl Machine {
    fn read() -> Machine {
        let cpu = std::fs::read_to_string("/proc/cpuinfo")
            .ok()
            .and_then(|s| {
                s.lines()
                    .find(|l| l.starts_with("model name"))
                    .and_then(|l| l.split(':').nth(1))
                    .map(|m| m.trim().to_owned())
            })
            .unwrap_or_else(|| "unknown CPU".to_owned());
        // Cargo puts each profile's binaries in a directory of its own
        // (`bench` in `release`, any other profile under its name).
        let exe = std::env::current_exe().unwrap_or_default();
        let profile = if exe.components().any(|c| c.as_os_str() == "bench-lto") {
            "bench-lto"
        } else {
            "bench"
        };
        Machine {
            cpu,
            cores: cores(),
            load_before: loadavg(),
            profile,
        }
    }
}

impl Config {
    pub fn from_args() -> Config {
        let mut quick = false;
        let mut filters = Vec::new();
        for arg in std::env::args().skip(1) {
            if arg == "--quick" {
                quick = true;
            } else if !arg.starts_with('-') {
                filters.push(arg);
            }
            // Other flags (cargo passes `--bench`) are ignored.
        }
        Config {
            quick,
            reps: if quick { 3 } else { 31 },
            batch: Duration::from_millis(if quick { 2 } else { 10 }),
            filters,
            machine: Machine::read(),
        }
    }

    pub fn wants(&self, id: &str) -> bool {
        self.filters.is_empty() || self.filters.iter().any(|f| id.contains(f.as_str()))
    }

    /// Repetitions for a set headed by `ours`.
    fn reps_for(&self, ours: &'static Spec) -> usize {
        if self.quick {
            self.reps
        } else {
            ours.set().map(|s| s.min_reps).fold(self.reps, usize::max)
        }
    }

    pub fn print_header(&self) {
        let m = &self.machine;
        println!(
            "overhead: profile {}, {} repetitions ({} for join rows){}, batches of ~{} ms, \
             interleaved",
            m.profile,
            self.reps,
            if self.quick { self.reps } else { JOIN_REPS },
            if self.quick { " (--quick)" } else { "" },
            self.batch.as_millis(),
        );
        println!("cpu: {}, {} cores", m.cpu, m.cores);
        let after = loadavg();
        println!(
            "load average (/proc/loadavg): before {}, after {after}",
            m.load_before
        );
        let busiest = [&m.load_before, &after]
            .iter()
            .filter_map(|l| load1(l))
            .fold(0.0, f64::max);
        if busiest > m.cores as f64 {
            println!(
                "WARNING: load {busiest:.2} > {} cores: other work shared the cores, \
                 absolute times are inflated and spreads wide",
                m.cores
            );
        }
        println!();
    }
}

/// Fewer paired repetitions than this (or than the run's repetitions, if
/// fewer) give no verdict: `inconclusive`.
const MIN_PAIRS: usize = 5;

/// Repetitions of the join rows in a full run.
pub const JOIN_REPS: usize = 31;

// ---------------------------------------------------------------------------
// Statistics.

/// The `q` quantile (0..=1) of `sorted`, interpolated between ranks.
fn quantile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let pos = q * (sorted.len() - 1) as f64;
    let (lo, hi) = (pos.floor() as usize, pos.ceil() as usize);
    sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo as f64)
}

fn sorted(mut v: Vec<f64>) -> Vec<f64> {
    v.sort_by(f64::total_cmp);
    v
}

/// Median and p10-p90 of some values.
#[derive(Clone, Copy)]
struct Spread {
    p10: f64,
    median: f64,
    p90: f64,
    n: usize,
}

impl Spread {
    fn of(values: Vec<f64>) -> Spread {
        let s = sorted(values);
        Spread {
            p10: quantile(&s, 0.1),
            median: quantile(&s, 0.5),
            p90: quantile(&s, 0.9),
            n: s.len(),
        }
    }
}

/// One repetition of one row.
#[derive(Clone, Copy)]
struct Sample {
    /// ns per op (per thread, in `_xN` rows).
    mean: f64,
    /// Latency rows: this batch's median and p99 round trip, in ns.
    p50: f64,
    p99: f64,
}

impl Sample {
    fn stat(&self, stat: Stat) -> f64 {
        match stat {
            Stat::Typical if self.p50.is_nan() => self.mean,
            Stat::Typical => self.p50,
            Stat::P99 => self.p99,
        }
    }
}

/// One row's measurements.
pub struct Measured {
    pub spec: &'static Spec,
    /// The id as printed (`_xN` resolved).
    pub name: String,
    /// One per repetition, in repetition order (`None`: not kept): the rows
    /// of a set ran their `i`th batches next to each other.
    samples: Vec<Option<Sample>>,
    /// Latency rows: every round trip of every repetition, in ns.
    laps: Vec<f64>,
}

impl Measured {
    fn kept(&self) -> Vec<f64> {
        self.samples.iter().flatten().map(|s| s.mean).collect()
    }

    /// Median and p10-p90 of the per-op times of the kept repetitions.
    fn spread(&self) -> Spread {
        Spread::of(self.kept())
    }

    /// The per-repetition ratios of `stat` of this row to `base`, over the
    /// repetitions both kept.
    fn ratios(&self, base: &Measured, stat: Stat) -> Spread {
        let pairs = self.samples.iter().zip(&base.samples);
        let r = pairs
            .filter_map(|(a, b)| Some(a.as_ref()?.stat(stat) / b.as_ref()?.stat(stat)))
            .collect();
        Spread::of(r)
    }
}

/// Iterations per batch so that one batch takes about `target`, and whether
/// the calibration's last run already took that long (no separate warm-up
/// needed); the calibration runs double as warm-up.
fn calibrate(body: &mut Body, target: Duration) -> (u64, bool) {
    let mut iters = 1u64;
    loop {
        let took = body(iters).took;
        if took >= target / 2 || iters >= 1 << 40 {
            let scaled = iters as f64 * target.as_secs_f64() / took.as_secs_f64().max(1e-9);
            let n = (scaled.round() as u64).max(1);
            return (n, n == iters);
        }
        let factor = if took.is_zero() {
            100.0
        } else {
            (target.as_secs_f64() / took.as_secs_f64()).min(100.0)
        };
        iters = ((iters as f64 * factor).ceil() as u64).max(iters * 2);
    }
}

struct Case {
    spec: &'static Spec,
    body: Body,
}

fn sample_of(batch: &Batch, iters: u64, spec: &Spec) -> Sample {
    let ops = iters * spec.ops_per_iter;
    let mean = batch.took.as_nanos() as f64 / ops as f64;
    let (p50, p99) = if batch.laps.is_empty() {
        (f64::NAN, f64::NAN)
    } else {
        let s = sorted(batch.laps.iter().map(|&l| l as f64).collect());
        (quantile(&s, 0.5), quantile(&s, 0.99))
    };
    Sample { mean, p50, p99 }
}

/// Measures the cases of a set interleaved: each repetition runs one batch of
/// every case, starting from a different case each time. Runs until `reps`
/// repetitions were kept by every case (at most `4 * reps` repetitions).
fn measure(cfg: &Config, reps: usize, cases: &mut [Case], names: &[String]) -> Vec<Measured> {
    let iters: Vec<u64> = cases
        .iter_mut()
        .map(|c| {
            let (n, warm) = calibrate(&mut c.body, cfg.batch);
            if !warm {
                (c.body)(n); // one more warm-up batch at the final size
            }
            n
        })
        .collect();
    let mut out: Vec<Measured> = cases
        .iter()
        .zip(names)
        .map(|(c, name)| Measured {
            spec: c.spec,
            name: name.clone(),
            samples: Vec::with_capacity(reps),
            laps: Vec::new(),
        })
        .collect();
    let m = cases.len();
    let mut all_kept = 0;
    let mut rep = 0;
    while all_kept < reps && rep < 4 * reps {
        let mut kept_by_all = true;
        for k in 0..m {
            let i = (rep + k) % m;
            let batch = (cases[i].body)(iters[i]);
            kept_by_all &= batch.kept;
            let sample = batch
                .kept
                .then(|| sample_of(&batch, iters[i], cases[i].spec));
            out[i].samples.push(sample);
            if batch.kept {
                out[i].laps.extend(batch.laps.iter().map(|&l| l as f64));
            }
        }
        all_kept += usize::from(kept_by_all);
        rep += 1;
    }
    out
}

/// The measurements of one set: our row first (unless filtered out), then
/// its baselines.
pub struct Set {
    ours: &'static Spec,
    /// Our row's id as printed.
    ours_name: String,
    measured: Vec<Measured>,
    /// Repetitions run.
    reps: usize,
    /// Repetitions wanted (kept by every row).
    wanted: usize,
}

impl Set {
    /// Whether `cfg` selects this set (with `threads` for `_xN` rows): our
    /// row or any of its baselines.
    pub fn wanted(cfg: &Config, ours: &'static Spec, threads: usize) -> bool {
        ours.set().any(|s| cfg.wants(&s.name(threads)))
    }

    /// Builds and measures the set headed by `ours`. Our row brings all its
    /// baselines; otherwise only the baselines that match run. The set's
    /// fixtures (threads) stop before this returns.
    pub fn measure(cfg: &Config, ours: &'static Spec, threads: usize) -> Set {
        let fixtures = Fixtures::new(threads);
        let ours_name = ours.name(threads);
        let ours_wanted = cfg.wants(&ours_name);
        let specs: Vec<&'static Spec> = ours
            .set()
            .filter(|s| ours_wanted || cfg.wants(&s.name(threads)))
            .collect();
        let names: Vec<String> = specs.iter().map(|s| s.name(threads)).collect();
        let mut cases: Vec<Case> = specs
            .iter()
            .map(|&spec| Case {
                spec,
                body: (spec.build)(&fixtures),
            })
            .collect();
        let wanted = cfg.reps_for(ours);
        let measured = measure(cfg, wanted, &mut cases, &names);
        drop(cases);
        drop(fixtures);
        let reps = measured.first().map_or(0, |m| m.samples.len());
        Set {
            ours,
            ours_name,
            measured,
            reps,
            wanted,
        }
    }

    fn get(&self, spec: &Spec) -> Option<&Measured> {
        self.measured.iter().find(|m| std::ptr::eq(m.spec, spec))
    }

    fn others(&self) -> impl Iterator<Item = &Measured> {
        self.measured
            .iter()
            .filter(|m| !std::ptr::eq(m.spec, self.ours))
    }
}

// ---------------------------------------------------------------------------
// Output.

fn ns(x: f64) -> String {
    if x.is_nan() {
        "-".to_owned()
    } else if x < 10.0 {
        format!("{x:.2}")
    } else if x < 1000.0 {
        format!("{x:.1}")
    } else {
        format!("{x:.0}")
    }
}

/// Every set measured, in table order.
#[derive(Default)]
pub struct Results {
    pub sets: Vec<Set>,
}

impl Results {
    /// The table: each row's per-op time, then each of our rows once per
    /// baseline with the paired ratios; then the latency rows' tails.
    pub fn print_table(&self) {
        println!("| id | ns/op median | p10-p90 | kept reps | baseline | ratio median | p10-p90 |");
        println!("|---|---|---|---|---|---|---|");
        for set in &self.sets {
            let row = |m: &Measured| {
                let s = m.spread();
                format!(
                    "| {} | {} | {}-{} | {}/{} |",
                    m.name,
                    ns(s.median),
                    ns(s.p10),
                    ns(s.p90),
                    s.n,
                    set.reps
                )
            };
            if let Some(me) = set.get(set.ours) {
                let mine = row(me);
                for m in set.others() {
                    let r = me.ratios(m, Stat::Typical);
                    let ratio = if r.n == 0 {
                        "- | - |".to_owned()
                    } else {
                        format!("{:.2}x | {:.2}-{:.2}x |", r.median, r.p10, r.p90)
                    };
                    println!("{mine} {} {} {ratio}", m.name, ns(m.spread().median));
                }
                if set.measured.len() == 1 {
                    println!("{mine} - | - | - |");
                }
            }
            for m in set.others() {
                println!("{} - | - | - |", row(m));
            }
        }
        let latency: Vec<&Measured> = self
            .sets
            .iter()
            .flat_map(|s| &s.measured)
            .filter(|m| !m.laps.is_empty())
            .collect();
        if latency.is_empty() {
            return;
        }
        println!();
        println!("round trips (ns each, every round trip of the kept repetitions):");
        println!();
        println!("| id | p50 | p99 | p99.9 | max | round trips |");
        println!("|---|---|---|---|---|---|");
        for m in latency {
            let s = sorted(m.laps.clone());
            println!(
                "| {} | {} | {} | {} | {} | {} |",
                m.name,
                ns(quantile(&s, 0.5)),
                ns(quantile(&s, 0.99)),
                ns(quantile(&s, 0.999)),
                ns(s[s.len() - 1]),
                s.len()
            );
        }
    }

    /// What one op is, once per row id in the table.
    pub fn print_legend(&self) {
        println!();
        println!("one op is:");
        let mut seen: Vec<&str> = Vec::new();
        for m in self.sets.iter().flat_map(|s| &s.measured) {
            if !seen.contains(&m.name.as_str()) {
                seen.push(&m.name);
                println!("- {}: {}", m.name, m.spec.op);
            }
        }
    }

    /// One line per target whose row and baseline were both measured.
    pub fn print_targets(&self) {
        println!();
        for set in &self.sets {
            let Some(ours) = set.get(set.ours) else {
                continue;
            };
            for baseline in set.ours.baselines {
                let Some(limit) = baseline.target else {
                    continue;
                };
                let Some(base) = set.get(baseline.spec) else {
                    continue;
                };
                let stats: &[Stat] = match (ours.spec.kind, baseline.p99) {
                    (Kind::Latency, true) => &[Stat::Typical, Stat::P99],
                    _ => &[Stat::Typical],
                };
                for &stat in stats {
                    let suffix = match stat {
                        Stat::P99 => " p99",
                        Stat::Typical if baseline.p99 => " p50",
                        Stat::Typical => "",
                    };
                    let head = format!(
                        "target {}{suffix} <= {limit:.2}x {}{suffix}",
                        set.ours_name, base.name
                    );
                    set.print_verdict(&head, ours, base, stat, limit);
                }
            }
            for reach in set.ours.reach {
                let (Some(floor), Some(base)) = (set.get(reach.floor), set.get(reach.baseline))
                else {
                    continue;
                };
                let limit = reach.limit;
                let head = format!("reach {} <= {limit:.2}x {}", floor.name, base.name);
                set.print_verdict(&head, floor, base, Stat::Typical, limit);
            }
        }
    }
}

impl Set {
    /// `head: verdict (median, p10-p90)` for the ratio `row / base` against
    /// `limit`.
    fn print_verdict(&self, head: &str, row: &Measured, base: &Measured, stat: Stat, limit: f64) {
        let r = row.ratios(base, stat);
        // A verdict needs a spread: a handful of pairs at least.
        if r.n < self.wanted.min(MIN_PAIRS) {
            println!(
                "{head}: inconclusive (only {} of {} repetitions kept by both \
                 rows: their threads did not overlap)",
                r.n, self.reps
            );
            return;
        }
        let verdict = Verdict::of_spread(r.p10, r.p90, limit);
        println!(
            "{head}: {} ({:.3}x, p10-p90 {:.3}-{:.3}x)",
            verdict.as_str(),
            r.median,
            r.p10,
            r.p90
        );
    }
}
