//! The measuring machinery: how the rows of a set are calibrated and
//! measured interleaved, their statistics, the verdicts on their targets,
//! and the results table, legend and target lines, all printed from the
//! rows' [`Spec`]s.

use std::time::{Duration, Instant};

use crate::fixtures::Fixtures;
use crate::rows::{Spec, Target};

/// Runs `iters` operations and returns the time they took (setup excluded).
pub type Body = Box<dyn FnMut(u64) -> Duration>;

// ---------------------------------------------------------------------------
// Verdicts.

/// Whether a target holds.
#[derive(Clone, Copy)]
pub enum Verdict {
    Met,
    NotMet,
}

impl Verdict {
    pub fn of(ok: bool) -> Verdict {
        if ok {
            Verdict::Met
        } else {
            Verdict::NotMet
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Met => "met",
            Verdict::NotMet => "NOT met",
        }
    }
}

impl Target {
    /// The verdict on our row against its baseline, and the ratio shown
    /// beside it: the ratio of the medians.
    fn judge(self, ours: &Measured, base: &Measured) -> (Verdict, f64) {
        let ratio = ours.median() / base.median();
        let ok = match self {
            Target::AtMost(limit) => ratio <= limit,
            Target::Below(limit) => ratio < limit,
        };
        (Verdict::of(ok), ratio)
    }

    fn describe(self) -> (&'static str, f64) {
        match self {
            Target::AtMost(limit) => ("<=", limit),
            Target::Below(limit) => ("<", limit),
        }
    }
}

// ---------------------------------------------------------------------------
// Configuration.

pub struct Config {
    pub quick: bool,
    pub reps: usize,
    /// Wanted duration of one batch.
    pub batch: Duration,
    /// Substrings; empty = everything.
    filters: Vec<String>,
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
            reps: if quick { 3 } else { 11 },
            batch: Duration::from_millis(if quick { 3 } else { 10 }),
            filters,
        }
    }

    pub fn wants(&self, id: &str) -> bool {
        self.filters.is_empty() || self.filters.iter().any(|f| id.contains(f.as_str()))
    }

    pub fn print_header(&self) {
        println!(
            "overhead: {} repetitions{}, batches of ~{} ms, interleaved; {} cores",
            self.reps,
            if self.quick { " (--quick)" } else { "" },
            self.batch.as_millis(),
            std::thread::available_parallelism().map_or(1, |n| n.get()),
        );
        println!();
    }
}

// ---------------------------------------------------------------------------
// Measuring.

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

/// A body from a closure.
pub fn body(f: impl FnMut(u64) -> Duration + 'static) -> Body {
    Box::new(f)
}

struct Case {
    spec: &'static Spec,
    body: Body,
}

/// One row's measurements.
pub struct Measured {
    pub spec: &'static Spec,
    /// ns per op, one per repetition, in repetition order: the rows of a set
    /// ran their `i`th batches next to each other.
    samples: Vec<f64>,
}

impl Measured {
    fn median(&self) -> f64 {
        let mut s = self.samples.clone();
        s.sort_by(f64::total_cmp);
        let n = s.len();
        if n % 2 == 1 {
            s[n / 2]
        } else {
            (s[n / 2 - 1] + s[n / 2]) / 2.0
        }
    }

    fn min(&self) -> f64 {
        self.samples.iter().copied().fold(f64::INFINITY, f64::min)
    }

    fn max(&self) -> f64 {
        self.samples.iter().copied().fold(0.0, f64::max)
    }
}

/// Iterations per batch so that one batch takes about `target`; the
/// calibration runs double as warm-up.
fn calibrate(body: &mut Body, target: Duration) -> u64 {
    let mut iters = 1u64;
    loop {
        let took = body(iters);
        if took >= target / 2 || iters >= 1 << 40 {
            let scaled = iters as f64 * target.as_secs_f64() / took.as_secs_f64().max(1e-9);
            return (scaled.round() as u64).max(1);
        }
        let factor = if took.is_zero() {
            100.0
        } else {
            (target.as_secs_f64() / took.as_secs_f64()).min(100.0)
        };
        iters = ((iters as f64 * factor).ceil() as u64).max(iters * 2);
    }
}

/// Measures the cases of a set interleaved: each repetition runs one batch of
/// every case, starting from a different case each time.
fn measure(cfg: &Config, cases: &mut [Case]) -> Vec<Measured> {
    let iters: Vec<u64> = cases
        .iter_mut()
        .map(|c| {
            let n = calibrate(&mut c.body, cfg.batch);
            (c.body)(n); // one more warm-up batch at the final size
            n
        })
        .collect();
    let mut out: Vec<Measured> = cases
        .iter()
        .map(|c| Measured {
            spec: c.spec,
            samples: Vec::with_capacity(cfg.reps),
        })
        .collect();
    let m = cases.len();
    for rep in 0..cfg.reps {
        for k in 0..m {
            let i = (rep + k) % m;
            let took = (cases[i].body)(iters[i]);
            let ops = iters[i] * cases[i].spec.ops_per_iter;
            out[i].samples.push(took.as_nanos() as f64 / ops as f64);
        }
    }
    out
}

/// The measurements of one set: our row first (unless filtered out), then
/// its baselines.
pub struct Set {
    ours: &'static Spec,
    measured: Vec<Measured>,
}

impl Set {
    /// Whether `cfg` selects this set: our row or any of its baselines.
    pub fn wanted(cfg: &Config, ours: &'static Spec) -> bool {
        ours.set().any(|s| cfg.wants(s.id))
    }

    /// Builds and measures the set headed by `ours`. Our row brings all its
    /// baselines; otherwise only the baselines that match run. The set's
    /// fixtures (threads) stop before this returns.
    pub fn measure(cfg: &Config, ours: &'static Spec) -> Set {
        let fixtures = Fixtures::default();
        let ours_wanted = cfg.wants(ours.id);
        let mut cases: Vec<Case> = ours
            .set()
            .filter(|s| ours_wanted || cfg.wants(s.id))
            .map(|spec| Case {
                spec,
                body: (spec.build)(&fixtures),
            })
            .collect();
        let measured = measure(cfg, &mut cases);
        drop(cases);
        drop(fixtures);
        Set { ours, measured }
    }

    fn get(&self, id: &str) -> Option<&Measured> {
        self.measured.iter().find(|m| m.spec.id == id)
    }

    fn others(&self) -> impl Iterator<Item = &Measured> {
        self.measured.iter().filter(|m| m.spec.id != self.ours.id)
    }
}

// ---------------------------------------------------------------------------
// Output.

fn ns(x: f64) -> String {
    if x < 10.0 {
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
    /// The table: our row once per baseline, with the ratio of the medians,
    /// then each baseline's own row.
    pub fn print_table(&self) {
        println!("| id | ns/op median | min-max | baseline | ratio |");
        println!("|---|---|---|---|---|");
        for set in &self.sets {
            if let Some(me) = set.get(set.ours.id) {
                for m in set.others() {
                    println!(
                        "| {} | {} | {}-{} | {} {} | {:.2}x |",
                        me.spec.id,
                        ns(me.median()),
                        ns(me.min()),
                        ns(me.max()),
                        m.spec.id,
                        ns(m.median()),
                        me.median() / m.median()
                    );
                }
            }
            for m in set.others() {
                println!(
                    "| {} | {} | {}-{} | - | - |",
                    m.spec.id,
                    ns(m.median()),
                    ns(m.min()),
                    ns(m.max())
                );
            }
        }
    }

    /// What one op is, once per row id in the table.
    pub fn print_legend(&self) {
        println!();
        println!("one op is:");
        let mut seen: Vec<&str> = Vec::new();
        for m in self.sets.iter().flat_map(|s| &s.measured) {
            if !seen.contains(&m.spec.id) {
                seen.push(m.spec.id);
                println!("- {}: {}", m.spec.id, m.spec.op);
            }
        }
    }

    /// One line per target whose row and baseline were both measured.
    pub fn print_targets(&self) {
        println!();
        for set in &self.sets {
            for baseline in set.ours.baselines {
                let Some(target) = baseline.target else {
                    continue;
                };
                let ours = set.get(set.ours.id);
                let Some((ours, base)) = ours.zip(set.get(baseline.spec.id)) else {
                    continue;
                };
                let (verdict, ratio) = target.judge(ours, base);
                let (op, limit) = target.describe();
                println!(
                    "target {} {op} {limit:.2}x {}: {} ({ratio:.2}x)",
                    set.ours.id,
                    baseline.spec.id,
                    verdict.as_str()
                );
            }
        }
    }
}
