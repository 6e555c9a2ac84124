//! The runtime-agnostic claim: one `Group`, one `TaskSet` and one `Shutdown` work the
//! same under smol's `Executor` (on several threads), its global executor, its
//! `LocalExecutor`, its blocking pool, `block_on` on plain threads, tokio
//! (current-thread and multi-thread) and async-std, and across them: guards dropped on
//! one runtime wake a `wait` polled on another, tasks of one set on every runtime are
//! joined by one `join`, an `abort` cuts them wherever they run, and a trigger on one
//! wakes waiters on all. On the runtimes smol does not own, a set's tasks run through
//! `TaskSet::track`.
//!
//! Every group scenario goes through [`counts_while_running_then_drains`], every set
//! scenario through [`set_counts_while_running_then_joins`]: tasks report that they run
//! and then block on a release channel; while they do, the group (or set) counts them
//! and `wait` (or `join`) stays pending (checked with `poll_once`); once released, it
//! resolves and every task has finished. Every wait is bounded.

#![cfg(all(not(loom), feature = "smol"))]

mod common;

use std::future::Future;
use std::pin::pin;
use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::thread;

use async_channel::{Receiver, Sender};
use common::pool::Pool;
use common::{join_within, within, LIMIT};
use futures_lite::future::{block_on, poll_once};
use smol::LocalExecutor;
use smol_graceful::{Group, Reason, Shutdown, TaskError, TaskSet};

/// How many tasks each scenario runs.
const TASKS: usize = 4;

/// What the tasks of one scenario share: a channel on which each says it is running,
/// one that releases them all when closed, and a count of the tasks that finished.
#[derive(Clone)]
struct Gate {
    started_tx: Sender<()>,
    started_rx: Receiver<()>,
    release_tx: Sender<()>,
    release_rx: Receiver<()>,
    finished: Arc<AtomicUsize>,
}

impl Gate {
    fn new() -> Gate {
        let (started_tx, started_rx) = async_channel::unbounded();
        let (release_tx, release_rx) = async_channel::unbounded();
        Gate {
            started_tx,
            started_rx,
            release_tx,
            release_rx,
            finished: Arc::new(AtomicUsize::new(0)),
        }
    }

    /// A task body: say it runs, block until released, count itself finished.
    fn task(&self) -> impl Future<Output = ()> + Send + 'static {
        let started = self.started_tx.clone();
        let release = self.release_rx.clone();
        let finished = Arc::clone(&self.finished);
        async move {
            started.send(()).await.unwrap();
            // Closed by `release_all`: `recv` then fails, and the task ends.
            let _ = release.recv().await;
            finished.fetch_add(1, Ordering::SeqCst);
        }
    }

    /// A task body for a set: [`task`](Self::task), then `Ok(id)`.
    fn fallible(&self, id: usize) -> impl Future<Output = Result<usize, String>> + Send + 'static {
        let task = self.task();
        async move {
            task.await;
            Ok(id)
        }
    }

    fn finished(&self) -> usize {
        self.finished.load(Ordering::SeqCst)
    }
}

/// The shared scenario, awaited on whichever runtime the caller picks: `tasks` tasks of
/// `gate` are spawned (tracked by `group`) somewhere; checks that the group counts them
/// while they run and `wait` stays pending, then releases them and checks that `wait`
/// resolves only after every task finished.
async fn counts_while_running_then_drains(group: &Group, gate: &Gate, tasks: usize) {
    for _ in 0..tasks {
        within("a task to start", gate.started_rx.recv())
            .await
            .unwrap();
    }
    assert_eq!(group.len(), tasks);
    assert_eq!(group.stragglers().count(), tasks);

    let mut wait = pin!(group.wait());
    assert!(poll_once(wait.as_mut()).await.is_none(), "wait ready early");
    // `wait` closed the group: no new work can slip in behind it.
    assert!(group.is_closed());
    assert!(group.add().is_err());
    assert_eq!(gate.finished(), 0);
    assert!(poll_once(wait.as_mut()).await.is_none(), "wait ready early");

    gate.release_tx.close();
    within("wait after release", wait).await;
    assert_eq!(
        gate.finished(),
        tasks,
        "wait resolved before every task finished"
    );
    assert!(group.is_empty());
}

/// The set's scenario, awaited on whichever runtime the caller picks: `tasks` tasks of
/// `gate` were started in `set` somewhere, the task of id `i` the `i`-th. Checks that the
/// set counts them while they run and that `join` stays pending without closing the set,
/// then releases them and checks that `join` returns every id in spawn order only after
/// every task finished, and that the drained set is closed.
async fn set_counts_while_running_then_joins(
    set: &mut TaskSet<usize, String>,
    gate: &Gate,
    tasks: usize,
) {
    for _ in 0..tasks {
        within("a task to start", gate.started_rx.recv())
            .await
            .unwrap();
    }
    assert_eq!(set.len(), tasks);
    assert_eq!(set.stragglers().count(), tasks);

    let spawner = set.spawner();
    let mut join = pin!(set.join());
    assert!(poll_once(join.as_mut()).await.is_none(), "join ready early");
    // A waiting join does not close the set: its tasks could still add tasks.
    assert!(!spawner.is_closed());
    assert_eq!(gate.finished(), 0);
    assert!(poll_once(join.as_mut()).await.is_none(), "join ready early");

    gate.release_tx.close();
    let results = within("join after release", join).await;
    assert_eq!(results.unwrap(), (0..tasks).collect::<Vec<_>>());
    assert_eq!(
        gate.finished(),
        tasks,
        "join resolved before every task finished"
    );
    assert!(set.is_empty());
    assert!(spawner.is_closed(), "a drained join closes the set");
    assert!(set.spawn(async { Ok(0) }).is_err());
}

fn tokio_current_thread() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap()
}

fn tokio_multi_thread() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_time()
        .build()
        .unwrap()
}

#[test]
fn smol_executor_on_two_threads_counts_tasks_and_wait_resolves_after_them() {
    let smol = Pool::start(2);
    let group = Group::new();
    let gate = Gate::new();
    for _ in 0..TASKS {
        group.spawn_on(&smol, gate.task()).unwrap().detach();
    }
    block_on(counts_while_running_then_drains(&group, &gate, TASKS));
    smol.stop();
}

#[test]
fn local_executor_counts_non_send_tasks_and_wait_resolves_after_them() {
    let ex = LocalExecutor::new();
    let group = Group::new();
    let gate = Gate::new();
    let local = Rc::new(()); // the tasks are `!Send`
    for _ in 0..TASKS {
        let local = Rc::clone(&local);
        let task = gate.task();
        group
            .spawn_local(&ex, async move {
                let _local = local;
                task.await;
            })
            .unwrap()
            .detach();
    }
    // The tasks and the checks share this one thread.
    block_on(ex.run(counts_while_running_then_drains(&group, &gate, TASKS)));
    assert_eq!(Rc::strong_count(&local), 1, "the tasks were not dropped");
}

#[test]
fn block_on_on_plain_threads_counts_tasks_and_wait_resolves_after_them() {
    let group = Group::new();
    let gate = Gate::new();
    let threads: Vec<_> = (0..TASKS)
        .map(|_| {
            let tracked = group.track(gate.task()).unwrap();
            thread::spawn(move || block_on(tracked))
        })
        .collect();
    block_on(counts_while_running_then_drains(&group, &gate, TASKS));
    for thread in threads {
        join_within(thread);
    }
}

#[test]
fn wait_blocking_on_a_plain_thread_resolves_after_tasks_on_plain_threads() {
    let group = Group::new();
    let gate = Gate::new();
    let threads: Vec<_> = (0..TASKS)
        .map(|_| {
            let guard = group.add_named("plain thread").unwrap();
            let task = gate.task();
            thread::spawn(move || {
                block_on(task);
                drop(guard);
            })
        })
        .collect();
    block_on(async {
        for _ in 0..TASKS {
            within("a task to start", gate.started_rx.recv())
                .await
                .unwrap();
        }
    });
    assert_eq!(group.stragglers().names(), ["plain thread"; TASKS]);
    gate.release_tx.close();
    let drained = group.wait_blocking_timeout(LIMIT);
    assert!(drained.is_ok(), "stragglers: {}", drained.unwrap_err());
    assert_eq!(gate.finished(), TASKS);
    for thread in threads {
        join_within(thread);
    }
}

#[test]
fn tokio_current_thread_counts_tasks_and_wait_resolves_after_them() {
    let rt = tokio_current_thread();
    let group = Group::new();
    let gate = Gate::new();
    rt.block_on(async {
        for _ in 0..TASKS {
            tokio::spawn(group.track(gate.task()).unwrap());
        }
        // The tasks run only while this future yields, on this same thread.
        counts_while_running_then_drains(&group, &gate, TASKS).await;
    });
}

#[test]
fn tokio_multi_thread_counts_tasks_and_wait_resolves_after_them() {
    let rt = tokio_multi_thread();
    let group = Group::new();
    let gate = Gate::new();
    let handles: Vec<_> = (0..TASKS)
        .map(|_| rt.spawn(group.track(gate.task()).unwrap()))
        .collect();
    rt.block_on(async {
        counts_while_running_then_drains(&group, &gate, TASKS).await;
        for handle in handles {
            within("a tokio task to join", handle).await.unwrap();
        }
    });
}

#[test]
fn wait_on_tokio_resolves_when_guards_drop_on_smol_threads() {
    let smol = Pool::start(2);
    let rt = tokio_current_thread();
    let group = Group::new();
    let gate = Gate::new();
    for _ in 0..TASKS {
        group.spawn_on(&smol, gate.task()).unwrap().detach();
    }
    rt.block_on(counts_while_running_then_drains(&group, &gate, TASKS));
    smol.stop();
}

#[test]
fn wait_on_smol_resolves_when_guards_drop_on_tokio() {
    let rt = tokio_multi_thread();
    let group = Group::new();
    let gate = Gate::new();
    for _ in 0..TASKS {
        rt.spawn(group.track(gate.task()).unwrap());
    }
    // The waiter is itself a task on a smol executor.
    let ex = LocalExecutor::new();
    let waiter = ex.spawn(counts_while_running_then_drains(&group, &gate, TASKS));
    block_on(ex.run(waiter));
}

#[test]
fn one_group_drains_tasks_from_every_runtime_at_once() {
    let smol = Pool::start(2);
    let tokio_rt = tokio_multi_thread();
    let group = Group::new();
    let gate = Gate::new();
    // Two on smol's executor, two on tokio, two on async-std, two on plain threads; the
    // local executor's two run with the checks below.
    for _ in 0..2 {
        group.spawn_on(&smol, gate.task()).unwrap().detach();
        tokio_rt.spawn(group.track(gate.task()).unwrap());
        async_std::task::spawn(group.track(gate.task()).unwrap());
    }
    let threads: Vec<_> = (0..2)
        .map(|_| {
            let tracked = group.track(gate.task()).unwrap();
            thread::spawn(move || block_on(tracked))
        })
        .collect();
    let local = LocalExecutor::new();
    for _ in 0..2 {
        group.spawn_local(&local, gate.task()).unwrap().detach();
    }
    block_on(local.run(counts_while_running_then_drains(&group, &gate, 10)));
    for thread in threads {
        join_within(thread);
    }
    smol.stop();
}

#[test]
fn shutdown_triggered_on_tokio_wakes_waiters_on_every_runtime() {
    let shutdown = Shutdown::new();
    let (waiting_tx, waiting_rx) = mpsc::channel::<&'static str>();
    let (woke_tx, woke_rx) = mpsc::channel::<(&'static str, String)>();

    // Each waiter polls `triggered()` once (pending), says so, then awaits it and
    // reports the reason it sees.
    let waiter = |name: &'static str| {
        let shutdown = shutdown.clone();
        let waiting = waiting_tx.clone();
        let woke = woke_tx.clone();
        async move {
            let mut triggered = pin!(shutdown.triggered());
            assert!(
                poll_once(triggered.as_mut()).await.is_none(),
                "{name}: early"
            );
            waiting.send(name).unwrap();
            within(name, triggered).await;
            let reason = shutdown.reason().map(|r| r.to_string()).unwrap_or_default();
            woke.send((name, reason)).unwrap();
        }
    };

    let smol = Pool::start(2);
    smol.spawn(waiter("smol executor")).detach();
    let local = {
        let waiter = waiter("local executor");
        thread::spawn(move || {
            let ex = LocalExecutor::new();
            block_on(ex.run(waiter));
        })
    };
    let plain = {
        let waiter = waiter("plain thread");
        thread::spawn(move || block_on(waiter))
    };
    let current = {
        let waiter = waiter("tokio current-thread");
        thread::spawn(move || tokio_current_thread().block_on(waiter))
    };
    let multi = tokio_multi_thread();
    let multi_waiter = multi.spawn(waiter("tokio multi-thread"));
    let async_std_waiter = async_std::task::spawn(waiter("async-std"));

    let mut names = Vec::new();
    for _ in 0..6 {
        names.push(waiting_rx.recv_timeout(LIMIT).expect("a waiter to start"));
    }
    names.sort_unstable();
    assert!(
        woke_rx.try_recv().is_err(),
        "a waiter woke before the trigger"
    );

    // The trigger comes from a task on the tokio multi-thread runtime.
    let triggered = multi.block_on(async {
        let shutdown = shutdown.clone();
        tokio::spawn(async move { shutdown.trigger_with(Reason::error("stop from tokio")) })
            .await
            .unwrap()
    });
    assert!(triggered);

    let mut woke = Vec::new();
    for _ in 0..6 {
        let (name, reason) = woke_rx.recv_timeout(LIMIT).expect("a waiter to wake");
        assert_eq!(reason, "error: stop from tokio", "{name}");
        woke.push(name);
    }
    woke.sort_unstable();
    assert_eq!(woke, names);
    assert_eq!(woke.len(), 6);

    multi.block_on(async { within("tokio waiter", multi_waiter).await.unwrap() });
    async_std::task::block_on(within("async-std waiter", async_std_waiter));
    join_within(local);
    join_within(plain);
    join_within(current);
    smol.stop();
}

// ---------------------------------------------------------------------------------
// async-std: deprecated in favour of smol, and its users are this crate's audience.
// Its executor (async-global-executor) runs on threads of its own; `block_on` drives
// the checks.

#[test]
fn async_std_spawn_counts_tasks_and_wait_resolves_after_them() {
    let group = Group::new();
    let gate = Gate::new();
    let handles: Vec<_> = (0..TASKS)
        .map(|_| async_std::task::spawn(group.track(gate.task()).unwrap()))
        .collect();
    async_std::task::block_on(async {
        counts_while_running_then_drains(&group, &gate, TASKS).await;
        for handle in handles {
            within("an async-std task to join", handle).await;
        }
    });
}

#[test]
fn shutdown_triggered_on_async_std_stops_its_tasks_and_wakes_block_on() {
    let shutdown = Shutdown::new();
    let group = Group::new();
    let gate = Gate::new();
    // Each task works until the shutdown, then says it stopped.
    for _ in 0..TASKS {
        let (shutdown, started) = (shutdown.clone(), gate.started_tx.clone());
        let finished = Arc::clone(&gate.finished);
        async_std::task::spawn(
            group
                .track(async move {
                    started.send(()).await.unwrap();
                    shutdown.triggered().await;
                    finished.fetch_add(1, Ordering::SeqCst);
                })
                .unwrap(),
        );
    }
    async_std::task::block_on(async {
        for _ in 0..TASKS {
            within("a task to start", gate.started_rx.recv())
                .await
                .unwrap();
        }
        assert_eq!(group.len(), TASKS);
        let mut waiter = pin!(shutdown.triggered());
        assert!(
            poll_once(waiter.as_mut()).await.is_none(),
            "triggered early"
        );
        // Triggered from an async-std task; this `block_on` and the tasks wake.
        let trigger = shutdown.clone();
        let triggered = async_std::task::spawn(async move {
            trigger.trigger_with(Reason::error("stop from async-std"))
        });
        assert!(within("the trigger task", triggered).await);
        within("the waiter on block_on", waiter).await;
        within("the group", group.wait()).await;
    });
    assert_eq!(gate.finished(), TASKS);
    assert_eq!(
        shutdown.reason().map(|r| r.to_string()).as_deref(),
        Some("error: stop from async-std")
    );
}

#[test]
fn task_set_track_on_async_std_joins_results_and_the_first_error_stops_the_rest() {
    // All succeed: the results, in spawn order.
    let mut set = TaskSet::<usize, String>::new();
    async_std::task::block_on(async {
        for i in 0..TASKS {
            let task = set.track(async move { Ok(i) }).unwrap();
            async_std::task::spawn(task);
        }
        let results = within("join", set.join()).await;
        assert_eq!(results.unwrap(), (0..TASKS).collect::<Vec<_>>());
    });

    // One fails: the set's shutdown stops the others, and `join` names the failure.
    let mut set = TaskSet::<usize, String>::new();
    let stopped = Arc::new(AtomicUsize::new(0));
    async_std::task::block_on(async {
        for i in 0..TASKS {
            let (shutdown, stopped) = (set.shutdown().clone(), Arc::clone(&stopped));
            let task = set
                .track(async move {
                    shutdown.triggered().await;
                    stopped.fetch_add(1, Ordering::SeqCst);
                    Ok(i)
                })
                .unwrap();
            async_std::task::spawn(task);
        }
        let failing = set
            .build_task()
            .name("writer")
            .track(async { Err("disk full".to_owned()) })
            .unwrap();
        async_std::task::spawn(failing);
        match within("join", set.join()).await {
            Err(TaskError::Failed { task, error }) => {
                assert_eq!((&*task, &*error), ("writer", "disk full"));
            }
            other => panic!("unexpected {other:?}"),
        }
    });
    assert_eq!(stopped.load(Ordering::SeqCst), TASKS);
}

// ---------------------------------------------------------------------------------
// TaskSet: the same scenario on each runtime, one set across all of them, and an abort
// that reaches its tasks wherever they run.

#[test]
fn task_set_on_smols_global_executor_counts_tasks_and_join_resolves_after_them() {
    let mut set = TaskSet::new();
    let gate = Gate::new();
    for i in 0..TASKS {
        set.spawn(gate.fallible(i)).unwrap();
    }
    block_on(set_counts_while_running_then_joins(&mut set, &gate, TASKS));
}

#[test]
fn task_set_on_a_smol_executor_on_two_threads_counts_tasks_and_join_resolves_after_them() {
    let smol = Pool::start(2);
    let mut set = TaskSet::new();
    let gate = Gate::new();
    for i in 0..TASKS {
        set.build_task().spawn_on(&smol, gate.fallible(i)).unwrap();
    }
    block_on(set_counts_while_running_then_joins(&mut set, &gate, TASKS));
    smol.stop();
}

#[test]
fn task_set_on_a_local_executor_counts_non_send_tasks_and_join_resolves_after_them() {
    let ex = LocalExecutor::new();
    let mut set = TaskSet::new();
    let gate = Gate::new();
    let local = Rc::new(()); // the tasks are `!Send`
    for i in 0..TASKS {
        let local = Rc::clone(&local);
        let task = gate.fallible(i);
        set.build_task()
            .spawn_local(&ex, async move {
                let _local = local;
                task.await
            })
            .unwrap();
    }
    // The tasks and the checks share this one thread.
    block_on(ex.run(set_counts_while_running_then_joins(&mut set, &gate, TASKS)));
    assert_eq!(Rc::strong_count(&local), 1, "the tasks were not dropped");
}

#[test]
fn task_set_on_smols_blocking_pool_counts_tasks_and_join_resolves_after_them() {
    let mut set = TaskSet::new();
    let gate = Gate::new();
    for i in 0..TASKS {
        let task = gate.fallible(i);
        set.build_task()
            .spawn_blocking(move || block_on(task))
            .unwrap();
    }
    block_on(set_counts_while_running_then_joins(&mut set, &gate, TASKS));
}

#[test]
fn task_set_tracked_on_plain_threads_counts_tasks_and_join_resolves_after_them() {
    let mut set = TaskSet::new();
    let gate = Gate::new();
    let threads: Vec<_> = (0..TASKS)
        .map(|i| {
            let tracked = set.track(gate.fallible(i)).unwrap();
            thread::spawn(move || block_on(tracked))
        })
        .collect();
    block_on(set_counts_while_running_then_joins(&mut set, &gate, TASKS));
    for thread in threads {
        join_within(thread);
    }
}

#[test]
fn task_set_tracked_on_tokio_current_thread_counts_tasks_and_join_resolves_after_them() {
    let rt = tokio_current_thread();
    let mut set = TaskSet::new();
    let gate = Gate::new();
    rt.block_on(async {
        for i in 0..TASKS {
            tokio::spawn(set.track(gate.fallible(i)).unwrap());
        }
        // The tasks run only while this future yields, on this same thread.
        set_counts_while_running_then_joins(&mut set, &gate, TASKS).await;
    });
}

#[test]
fn task_set_tracked_on_tokio_multi_thread_counts_tasks_and_join_resolves_after_them() {
    let rt = tokio_multi_thread();
    let mut set = TaskSet::new();
    let gate = Gate::new();
    let handles: Vec<_> = (0..TASKS)
        .map(|i| rt.spawn(set.track(gate.fallible(i)).unwrap()))
        .collect();
    rt.block_on(async {
        set_counts_while_running_then_joins(&mut set, &gate, TASKS).await;
        for handle in handles {
            within("a tokio task to join", handle).await.unwrap();
        }
    });
}

#[test]
fn task_set_tracked_on_async_std_counts_tasks_and_join_resolves_after_them() {
    let mut set = TaskSet::new();
    let gate = Gate::new();
    let handles: Vec<_> = (0..TASKS)
        .map(|i| async_std::task::spawn(set.track(gate.fallible(i)).unwrap()))
        .collect();
    async_std::task::block_on(async {
        set_counts_while_running_then_joins(&mut set, &gate, TASKS).await;
        for handle in handles {
            within("an async-std task to join", handle).await;
        }
    });
}

#[test]
fn one_task_set_joins_tasks_from_every_runtime_at_once() {
    let smol = Pool::start(2);
    let tokio_rt = tokio_multi_thread();
    let mut set = TaskSet::new();
    let gate = Gate::new();
    let local = LocalExecutor::new();
    // In spawn order, two of each: smol's global executor, a smol executor, tokio,
    // async-std, plain threads, smol's blocking pool, and the local executor (which
    // runs with the checks below).
    let mut id = 0..;
    let mut threads = Vec::new();
    for _ in 0..2 {
        set.spawn(gate.fallible(id.next().unwrap())).unwrap();
        set.build_task()
            .spawn_on(&smol, gate.fallible(id.next().unwrap()))
            .unwrap();
        tokio_rt.spawn(set.track(gate.fallible(id.next().unwrap())).unwrap());
        async_std::task::spawn(set.track(gate.fallible(id.next().unwrap())).unwrap());
        let tracked = set.track(gate.fallible(id.next().unwrap())).unwrap();
        threads.push(thread::spawn(move || block_on(tracked)));
        let blocking = gate.fallible(id.next().unwrap());
        set.build_task()
            .spawn_blocking(move || block_on(blocking))
            .unwrap();
        set.build_task()
            .spawn_local(&local, gate.fallible(id.next().unwrap()))
            .unwrap();
    }
    let tasks = id.next().unwrap();
    assert_eq!(tasks, 14);
    block_on(local.run(set_counts_while_running_then_joins(&mut set, &gate, tasks)));
    for thread in threads {
        join_within(thread);
    }
    smol.stop();
}

#[test]
fn abort_cuts_a_sets_tasks_on_every_runtime() {
    let smol = Pool::start(2);
    let tokio_rt = tokio_multi_thread();
    let mut set = TaskSet::<usize, String>::new();
    let gate = Gate::new();
    // Each task says it runs, then waits for a release that never comes.
    let body = || {
        let started = gate.started_tx.clone();
        let finished = Arc::clone(&gate.finished);
        async move {
            started.send(()).await.unwrap();
            std::future::pending::<()>().await;
            finished.fetch_add(1, Ordering::SeqCst);
            Ok(0)
        }
    };
    let forever = |name: &'static str| set.build_task().name(name).track(body());
    set.build_task().name("smol global").spawn(body()).unwrap();
    smol.spawn(forever("smol executor").unwrap()).detach();
    let on_tokio = tokio_rt.spawn(forever("tokio").unwrap());
    let on_async_std = async_std::task::spawn(forever("async-std").unwrap());
    let tracked = forever("plain thread").unwrap();
    let on_thread = thread::spawn(move || block_on(tracked));
    let tasks = 5;

    let outcomes = block_on(async {
        for _ in 0..tasks {
            within("a task to start", gate.started_rx.recv())
                .await
                .unwrap();
        }
        assert_eq!(set.len(), tasks);
        set.abort();
        let mut outcomes = Vec::new();
        while let Some((name, outcome)) = within("the next cut task", set.join_next()).await {
            let cancelled = matches!(outcome, Err(TaskError::Cancelled { .. }));
            outcomes.push((name.into_owned(), cancelled));
        }
        outcomes
    });
    let mut names: Vec<&str> = outcomes.iter().map(|(name, _)| name.as_str()).collect();
    names.sort_unstable();
    assert_eq!(
        names,
        [
            "async-std",
            "plain thread",
            "smol executor",
            "smol global",
            "tokio"
        ]
    );
    assert!(
        outcomes.iter().all(|(_, cancelled)| *cancelled),
        "{outcomes:?}"
    );
    assert_eq!(gate.finished(), 0, "a cut task ran past its await");
    // Each runtime saw its task complete.
    tokio_rt.block_on(async { within("the tokio task", on_tokio).await.unwrap() });
    async_std::task::block_on(within("the async-std task", on_async_std));
    join_within(on_thread);
    smol.stop();
}
