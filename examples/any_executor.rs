//! One `Group` and one `Shutdown` across smol's `Executor`, a `LocalExecutor`, plain
//! threads and a tokio runtime, drained by a single `wait`: `cargo run --example
//! any_executor`. It prints where each task runs, who is still running, and exits 0
//! once every task has stopped (1 if some did not within five seconds).
//!
//! Nothing in the group or the shutdown belongs to an executor: a guard is dropped
//! wherever its task ends, and a waiter is woken wherever it is polled. async-std's
//! `task::spawn` takes a `Group::track`ed future just as tokio's does.

use std::io::{self, Write as _};
use std::process::ExitCode;
use std::rc::Rc;
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use futures_lite::future;
use smol::channel::{self, Sender};
use smol::{Executor, LocalExecutor, Timer};
use smol_graceful::{Group, Shutdown};

fn main() -> ExitCode {
    // `RUST_LOG=debug` shows what the library logs (warnings only by default).
    let _ = env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn"))
        .try_init();
    let group = Group::new();
    let shutdown = Shutdown::new();
    // Each task says here when it has done some work, so `main` knows all of them run.
    let (started_tx, started) = channel::unbounded();
    let mut tasks = 0;

    // 1. smol's multi-threaded executor, run by two threads: `Group::spawn_on` tracks.
    let ex = Arc::new(Executor::new());
    let (stop_ex, ex_stopped) = channel::bounded::<()>(1);
    let ex_threads: Vec<_> = (0..2)
        .map(|i| {
            let (ex, stopped) = (Arc::clone(&ex), ex_stopped.clone());
            named_thread(format!("smol-executor-{i}"), move || {
                // Runs tasks until `stop_ex` is closed.
                let _ = future::block_on(ex.run(stopped.recv()));
            })
        })
        .collect();
    for i in 0..2 {
        let work = task(format!("smol executor #{i}"), &shutdown, &started_tx);
        group.spawn_on(&ex, work).expect("group is open").detach();
        tasks += 1;
    }

    // 2. A `LocalExecutor` on its own thread, with a `!Send` task: `Group::spawn_local`.
    //    The guard-taking happens on that thread, so it gets a clone of the group.
    let local_thread = {
        let (group, work) = (
            group.clone(),
            task("local executor".into(), &shutdown, &started_tx),
        );
        named_thread("local-executor".into(), move || {
            let local = LocalExecutor::new();
            let not_send = Rc::new("an Rc");
            let work = async move {
                work.await;
                drop(not_send);
            };
            let task = group.spawn_local(&local, work).expect("group is open");
            future::block_on(local.run(task));
        })
    };
    tasks += 1;

    // 3. A plain thread driving its future with `block_on`, counted by a named guard.
    let plain_thread = {
        let guard = group.add_named("plain thread").expect("group is open");
        let work = task("plain thread".into(), &shutdown, &started_tx);
        named_thread("plain".into(), move || {
            future::block_on(work);
            drop(guard); // done
        })
    };
    tasks += 1;

    // 4. tokio: `Group::track` wraps any future, here one that uses tokio's own timer.
    let tokio_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("tokio-worker")
        .enable_time()
        .build()
        .expect("a tokio runtime");
    let work = task("tokio".into(), &shutdown, &started_tx);
    tokio_rt.spawn(
        group
            .track(async move {
                tokio::time::sleep(Duration::from_millis(1)).await;
                work.await;
            })
            .expect("group is open"),
    );
    tasks += 1;

    // async-std (deprecated in favour of smol) takes the same wrapped future:
    // `async_std::task::spawn(group.track(work)?)`. tests/runtimes.rs runs `Group`,
    // `Shutdown` and `TaskSet::track` on it.

    // Everyone is at work: the group counts them all, the named one by name.
    future::block_on(async {
        for _ in 0..tasks {
            started.recv().await.expect("a task to start");
        }
    });
    let live = group.stragglers();
    say(format_args!(
        "{} tasks running under 4 runtimes; named: {:?}",
        live.count(),
        live.names()
    ));

    // Trigger from this plain thread; the tasks stop wherever they run, and one
    // `wait_timeout` (on smol's timer, polled by `block_on`) sees every guard go.
    shutdown.trigger();
    say(format_args!("shutdown triggered from main; waiting"));
    let drained = future::block_on(group.wait_timeout(Duration::from_secs(5)));
    let code = match drained {
        Ok(()) => {
            say(format_args!(
                "all {tasks} tasks finished; the group is empty"
            ));
            ExitCode::SUCCESS
        }
        Err(stragglers) => {
            say(format_args!("gave up waiting: {stragglers}"));
            ExitCode::from(1)
        }
    };

    stop_ex.close();
    for handle in ex_threads {
        handle.join().expect("executor thread");
    }
    local_thread.join().expect("local executor thread");
    plain_thread.join().expect("plain thread");
    drop(tokio_rt);
    code
}

/// A task: says where it runs, works until the shutdown, then says it stops.
fn task(
    name: String,
    shutdown: &Shutdown,
    started: &Sender<()>,
) -> impl std::future::Future<Output = ()> + Send + 'static {
    let (shutdown, started) = (shutdown.clone(), started.clone());
    async move {
        let thread = thread::current();
        let thread = thread.name().unwrap_or("unnamed");
        say(format_args!("{name}: running on thread {thread}"));
        let mut ticks = 0_u32;
        // async-io's timer works under every runtime here, tokio included.
        while shutdown
            .run_until_triggered(Timer::after(Duration::from_millis(5)))
            .await
            .is_some()
        {
            ticks += 1;
            if ticks == 3 {
                let _ = started.send(()).await; // three ticks of work done
            }
        }
        say(format_args!("{name}: stopped after {ticks} ticks"));
    }
}

/// Spawns a thread called `name`.
fn named_thread(name: String, f: impl FnOnce() + Send + 'static) -> thread::JoinHandle<()> {
    thread::Builder::new()
        .name(name)
        .spawn(f)
        .expect("spawn a thread")
}

/// Prints a line on stdout and flushes it.
fn say(line: std::fmt::Arguments<'_>) {
    let mut stdout = io::stdout().lock();
    let _ = writeln!(stdout, "{line}").and_then(|()| stdout.flush());
}
