//! Phased shutdown with `TaskSet`s: stop accepting, drain requests, flush
//! logs, close storage, each phase with its own deadline and straggler report.
//!
//! Run it with `cargo run --example phased_shutdown`: it serves simulated
//! requests (at most four at a time) for a moment, then a simulated Ctrl-C
//! starts the shutdown, and it prints each phase with its outcome and exits 0.
//! With `cargo run --example phased_shutdown -- --stubborn`, one request
//! ignores the shutdown: the drain phase names it when its deadline passes,
//! the later phases still run, and the exit code is 1.

use std::fmt::Display;
use std::io::{self, Write as _};
use std::process::ExitCode;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use smol::channel::{self, Receiver, Sender};
use smol::Timer;
use smol_graceful::{Shutdown, TaskSet};

/// At most this many requests run at once.
const LIMIT: usize = 4;
/// How long the service runs before the simulated Ctrl-C.
const SERVE_FOR: Duration = Duration::from_millis(150);
/// The request that ignores shutdown with `--stubborn`.
const STUBBORN_REQUEST: u64 = 3;

fn main() -> ExitCode {
    // `RUST_LOG=debug` shows what the library logs (warnings only by default).
    let _ = env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn"))
        .try_init();
    let stubborn = std::env::args().skip(1).any(|arg| arg == "--stubborn");
    // Every task runs on smol's global executor, as `smol::spawn` would run it.
    smol::block_on(serve(stubborn))
}

async fn serve(stubborn: bool) -> ExitCode {
    // The service-wide shutdown. A real service also passes it to
    // `smol_graceful::signal::watch`, so that Ctrl-C and SIGTERM trigger it.
    let service = Shutdown::new();

    // Storage: a blocking writer on smol's thread pool, fed by the flusher.
    // Its set counts the thread, so "closed" is only said once it returned.
    let mut storage = TaskSet::<usize, io::Error>::new();
    let (to_storage, batches) = channel::bounded(4);
    storage
        .build_task()
        .name("storage writer")
        .spawn_blocking(move || write_batches(batches))
        .expect("a new set is open");

    // Flush: collects log lines and hands them to storage in batches.
    let mut flush = TaskSet::<usize, io::Error>::new();
    let (log, lines) = channel::unbounded();
    let stop = flush.shutdown().clone();
    flush
        .build_task()
        .name("log flusher")
        .spawn(flusher(lines, to_storage, stop))
        .expect("a new set is open");

    // Accept: a simulated listener. Its set is a child of the service, so
    // the service's shutdown stops it first.
    let mut accept = TaskSet::<u64, io::Error>::with_parent(&service);
    let (connections, incoming) = channel::bounded(1);
    let stop = accept.shutdown().clone();
    accept
        .build_task()
        .name("acceptor")
        .spawn(acceptor(connections, stop))
        .expect("a new set is open");

    // Requests: one task each, at most LIMIT at once.
    let mut requests = TaskSet::<(), io::Error>::new().with_limit(LIMIT);
    let load = Load::default();

    let ctrl_c = service.clone();
    smol::spawn(async move {
        Timer::after(SERVE_FOR).await;
        ctrl_c.trigger();
    })
    .detach();

    say(format_args!("serving, at most {LIMIT} requests at a time"));
    let started = Instant::now();
    loop {
        // Wait for a free slot *before* taking the next connection, so a busy
        // service pushes back on its listener instead of queueing requests.
        let Some(Ok(())) = service.run_until_triggered(requests.ready()).await else {
            break;
        };
        let Some(Ok(id)) = service.run_until_triggered(incoming.recv()).await else {
            break;
        };
        start_request(&requests, id, &log, &load, stubborn);
    }
    say(format_args!(
        "Ctrl-C (simulated) after {:.0?}: shutting down in four phases",
        started.elapsed()
    ));

    let mut clean = true;

    // 1. Stop accepting; connections already accepted are still served.
    clean &= phase("1/4 stop accepting", &mut accept, ms(100), |n| {
        format!("{} connections accepted", n[0])
    })
    .await;
    // A request past the limit waits inside the set for a slot.
    while let Ok(id) = incoming.try_recv() {
        start_request(&requests, id, &log, &load, stubborn);
    }

    // 2. Drain: in-flight requests finish (they do not watch the shutdown).
    clean &= phase("2/4 drain requests", &mut requests, ms(500), |done| {
        let peak = load.peak.load(Ordering::Relaxed);
        format!("{} requests answered, at most {peak} at once", done.len())
    })
    .await;
    drop(log);

    // 3. Flush: the flusher writes what it holds, then closes its side of
    //    the storage channel.
    clean &= phase("3/4 flush logs", &mut flush, ms(500), |n| {
        format!("{} log lines flushed", n[0])
    })
    .await;

    // 4. Close storage: the writer returns once its channel is closed and
    //    drained. If the flusher were stuck, this phase would name the
    //    writer's thread among its stragglers.
    clean &= phase("4/4 close storage", &mut storage, ms(500), |n| {
        format!("{} log lines written", n[0])
    })
    .await;

    if clean {
        say(format_args!("clean shutdown"));
        ExitCode::SUCCESS
    } else {
        say(format_args!("shutdown finished with stragglers or errors"));
        ExitCode::FAILURE
    }
}

/// Runs one phase: tells `set` to stop, waits up to `deadline`, and prints
/// the outcome (`describe` says what the results mean). True if every task
/// finished in time and none failed.
async fn phase<T, E: Display>(
    name: &str,
    set: &mut TaskSet<T, E>,
    deadline: Duration,
    describe: impl FnOnce(&[T]) -> String,
) -> bool {
    let started = Instant::now();
    set.shutdown().trigger();
    match set.join_timeout(deadline).await {
        Ok(Ok(results)) => {
            let took = started.elapsed();
            say(format_args!(
                "[{name}] done in {took:.1?}: {}",
                describe(&results)
            ));
            true
        }
        Ok(Err(error)) => {
            say(format_args!("[{name}] failed: {error}"));
            false
        }
        Err(stragglers) => {
            say(format_args!(
                "[{name}] deadline of {deadline:?} passed: {stragglers}"
            ));
            false
        }
    }
}

fn ms(ms: u64) -> Duration {
    Duration::from_millis(ms)
}

/// Requests in flight now, and the most at once.
#[derive(Clone, Default)]
struct Load {
    now: Arc<AtomicUsize>,
    peak: Arc<AtomicUsize>,
}

/// Starts request `id` in `requests`: at once if a slot is free, otherwise
/// it waits inside the set for one.
fn start_request(
    requests: &TaskSet<(), io::Error>,
    id: u64,
    log: &Sender<String>,
    load: &Load,
    stubborn: bool,
) {
    let (log, load) = (log.clone(), load.clone());
    let stubborn = stubborn && id == STUBBORN_REQUEST;
    let request = async move {
        // Relaxed: these counters only feed a printed statistic.
        let now = load.now.fetch_add(1, Ordering::Relaxed) + 1;
        load.peak.fetch_max(now, Ordering::Relaxed);
        // The work: 10 to 30 ms, or far too long for a stubborn request.
        let work = if stubborn {
            ms(10_000)
        } else {
            ms(10 + id % 3 * 10)
        };
        Timer::after(work).await;
        load.now.fetch_sub(1, Ordering::Relaxed);
        log.send(format!("request {id}: 200 OK"))
            .await
            .map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "log closed"))
    };
    requests
        .build_task()
        .name(format!("request {id}"))
        .spawn(request)
        .expect("requests are joined only after the last one is started");
}

/// Accepts a (simulated) connection every 3 ms until told to stop; returns
/// how many it accepted.
async fn acceptor(connections: Sender<u64>, stop: Shutdown) -> io::Result<u64> {
    let mut accepted = 0;
    while stop
        .run_until_triggered(Timer::after(ms(3)))
        .await
        .is_some()
    {
        match stop.run_until_triggered(connections.send(accepted)).await {
            Some(Ok(())) => accepted += 1,
            _ => break,
        }
    }
    Ok(accepted)
}

/// Hands the log lines to storage every 20 ms, and once more when told to
/// stop; returns how many lines it flushed.
async fn flusher(
    lines: Receiver<String>,
    storage: Sender<Vec<String>>,
    stop: Shutdown,
) -> io::Result<usize> {
    let mut flushed = 0;
    loop {
        let last = stop
            .run_until_triggered(Timer::after(ms(20)))
            .await
            .is_none();
        let mut batch = Vec::new();
        while let Ok(line) = lines.try_recv() {
            batch.push(line);
        }
        if !batch.is_empty() {
            flushed += batch.len();
            storage
                .send(batch)
                .await
                .map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "storage closed"))?;
        }
        if last {
            return Ok(flushed);
        }
    }
}

/// The blocking storage writer: writes each batch until the channel closes;
/// returns how many lines it wrote.
fn write_batches(batches: Receiver<Vec<String>>) -> io::Result<usize> {
    let mut file = Vec::new(); // stands in for a file
    let mut written = 0;
    while let Ok(batch) = batches.recv_blocking() {
        for line in &batch {
            writeln!(file, "{line}")?;
        }
        file.flush()?; // a real writer would `sync_data` here
        written += batch.len();
    }
    Ok(written)
}

/// Prints a progress line on stdout and flushes it. A write error is ignored: with
/// stdout gone (`>/dev/full`, a pipe whose reader died) the shutdown must still run
/// to the end, and `println!` would panic instead.
fn say(line: std::fmt::Arguments<'_>) {
    let mut stdout = io::stdout().lock();
    let _ = writeln!(stdout, "{line}").and_then(|()| stdout.flush());
}
