//! Background workers that loop until shutdown, a metrics flusher that flushes once
//! more on the way out, and a bounded drain, all in `serve::run`: `cargo run --example
//! workers`, then press Ctrl-C.
//!
//! `RUN_MS=500 cargo run --example workers` stops on its own after 500 ms, as if Ctrl-C
//! had been pressed. Waiting for a job is cut short by the shutdown; a job once started
//! runs to completion. When the workers have stopped, the flusher records their last
//! jobs and flushes a final time. The drain is bounded by `GRACE_MS` (default 10000,
//! `serve::run`'s): the exit code is 0 when everything stopped, 1 when some task did
//! not (the report names it). Add `--stubborn` for a worker that ignores the shutdown,
//! to see that report. A second Ctrl-C exits at once with 130.

use std::cell::OnceCell;
use std::io::{self, Write as _};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use smol::channel::{self, Receiver, Sender};
use smol::stream::StreamExt as _;
use smol::Timer;
use smol_graceful::{serve, Group, Shutdown};

/// How many workers take jobs.
const WORKERS: u64 = 4;
/// How often the flusher reports the jobs done since its last flush.
const FLUSH_EVERY: Duration = Duration::from_millis(100);

/// One finished job, as reported to the metrics flusher.
struct Done {
    worker: u64,
    took: Duration,
}

fn main() -> ExitCode {
    // The library logs the signals it receives and the stragglers; `RUST_LOG` picks the
    // level (`info` by default). env_logger ignores write errors, so a dead stderr
    // cannot stop the drain.
    let _ = env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info"))
        .try_init();
    // `serve::run` reads `GRACE_MS` itself; it is read here too, to be printed.
    let (run_for, grace) = match (env_ms("RUN_MS"), env_ms("GRACE_MS")) {
        (Ok(run_for), Ok(grace)) => (run_for, grace.unwrap_or(Duration::from_secs(10))),
        (Err(name), _) | (_, Err(name)) => {
            complain(format_args!(
                "workers: {name} must be a number of milliseconds"
            ));
            return ExitCode::from(2);
        }
    };
    let stubborn = std::env::args().skip(1).any(|arg| arg == "--stubborn");
    // Set by the service as it returns: the group, and when its drain started.
    let draining = &OnceCell::<(Group, Instant)>::new();

    // `run` watches SIGINT/SIGTERM (a second one exits with 128 + signo), runs this
    // service, triggers the shutdown when it returns, drains `group` within `GRACE_MS`
    // and returns the exit code. Every task holds a named guard of `group`, so the
    // drain can name a task that does not stop.
    let code = smol::block_on(serve::run(|shutdown, group| async move {
        let (done_tx, done_rx) = channel::unbounded();
        for id in 0..WORKERS {
            let worker = worker(id, shutdown.clone(), done_tx.clone());
            smol::spawn(group.add_named(format!("worker {id}"))?.track(worker)).detach();
        }
        if stubborn {
            let never_stops = async {
                loop {
                    // Never looks at the shutdown.
                    Timer::after(Duration::from_millis(10)).await;
                }
            };
            smol::spawn(group.add_named("stubborn worker")?.track(never_stops)).detach();
        }
        // Only the workers hold senders now: the flusher's channel closes when they stop.
        drop(done_tx);
        let flusher = flusher(done_rx);
        smol::spawn(group.add_named("metrics flusher")?.track(flusher)).detach();

        let tasks = group.len();
        match run_for {
            Some(run_for) => {
                say(format_args!(
                    "running {tasks} tasks; stopping by itself after {} ms (or on Ctrl-C)",
                    run_for.as_millis()
                ));
                // Stands in for the Ctrl-C (if none came first), so the example can
                // run unattended.
                let _ = shutdown.run_until_triggered(Timer::after(run_for)).await;
                shutdown.trigger();
            }
            None => say(format_args!("running {tasks} tasks; press Ctrl-C to stop")),
        }
        shutdown.triggered().await;
        let reason = shutdown.reason().expect("triggered");
        say(format_args!(
            "shutdown: {reason}; draining {} tasks (grace {} ms)",
            group.len(),
            grace.as_millis()
        ));
        let _ = draining.set((group, Instant::now()));
        Ok(()) // `run` drains the group.
    }));

    // `run` logged the stragglers, if any, on stderr; the outcome is printed here too.
    if let Some((group, started)) = draining.get() {
        if code == ExitCode::SUCCESS {
            let took = started.elapsed().as_millis();
            say(format_args!("drained in {took} ms: every task stopped"));
        } else if code == ExitCode::from(1) {
            let stragglers = group.stragglers();
            say(format_args!(
                "gave up after {} ms: {stragglers}",
                grace.as_millis()
            ));
        }
    }
    code
}

/// Takes jobs until the shutdown, and reports each finished one to the flusher.
async fn worker(id: u64, shutdown: Shutdown, done: Sender<Done>) {
    let mut jobs = 0;
    // Waiting for the next job is abandoned when the shutdown comes; a job that has
    // started is finished first.
    while let Some(job) = shutdown.run_until_triggered(next_job(id, jobs)).await {
        let started = Instant::now();
        Timer::after(job).await; // the work itself
        jobs += 1;
        let _ = done
            .send(Done {
                worker: id,
                took: started.elapsed(),
            })
            .await;
    }
    say(format_args!("worker {id}: stopped after {jobs} jobs"));
}

/// Waits for a job to arrive (simulated) and returns how long it will take.
async fn next_job(id: u64, n: u64) -> Duration {
    Timer::after(Duration::from_millis(5 + (id * 7 + n * 3) % 20)).await;
    Duration::from_millis(10 + (id * 5 + n * 11) % 30)
}

/// Counts finished jobs and flushes the counts every [`FLUSH_EVERY`]; when every
/// worker has stopped (its channel closes), flushes what is left one last time.
async fn flusher(done: Receiver<Done>) {
    let mut ticks = Timer::interval(FLUSH_EVERY);
    let (mut batch, mut busy, mut total) = (0_u64, Duration::ZERO, 0_u64);
    let mut last_worker = None;
    loop {
        let event = smol::future::or(async { Some(done.recv().await) }, async {
            ticks.next().await;
            None
        })
        .await;
        match event {
            Some(Ok(job)) => {
                batch += 1;
                busy += job.took;
                last_worker = Some(job.worker);
            }
            // Every worker has stopped: nothing more will come.
            Some(Err(_closed)) => break,
            None if batch > 0 => {
                total += batch;
                say(format_args!(
                    "flush: {batch} jobs ({} ms busy), {total} in all",
                    busy.as_millis()
                ));
                (batch, busy) = (0, Duration::ZERO);
            }
            None => {}
        }
    }
    total += batch;
    say(format_args!(
        "flush (final): {batch} jobs ({} ms busy), {total} in all{}",
        busy.as_millis(),
        last_worker.map_or_else(String::new, |w| format!("; last from worker {w}"))
    ));
}

/// Reads `name` as milliseconds, as `serve::run` reads `GRACE_MS`: `Ok(None)` if
/// unset, `Err(name)` if not a number.
fn env_ms(name: &'static str) -> Result<Option<Duration>, &'static str> {
    match std::env::var(name) {
        Err(std::env::VarError::NotPresent) => Ok(None),
        Err(std::env::VarError::NotUnicode(_)) => Err(name),
        Ok(ms) => ms
            .trim()
            .parse()
            .map(|ms| Some(Duration::from_millis(ms)))
            .map_err(|_| name),
    }
}

/// Prints a progress line on stdout and flushes it, so a supervisor sees it at once.
fn say(line: std::fmt::Arguments<'_>) {
    let mut stdout = io::stdout().lock();
    let _ = writeln!(stdout, "{line}").and_then(|()| stdout.flush());
}

/// Prints a line on stderr. A write error is ignored: with stderr gone (`2>/dev/full`,
/// a log pipe whose reader died) the workers must keep working and draining, and
/// `eprintln!` would panic instead.
fn complain(line: std::fmt::Arguments<'_>) {
    let _ = writeln!(io::stderr(), "{line}");
}
