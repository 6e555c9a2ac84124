//! `TaskSet` semantics: first failure wins, panics and cancellations become
//! errors (a panic keeps its payload), results keep spawn order, the limit
//! holds (tasks past it wait inside the set, in spawn order, and `ready` is
//! the back-pressure for producers), blocking work counts, the set closes
//! when a join finds it drained, and dropping an unjoined set aborts it.
//!
//! Deterministic: tasks wait on channels the test controls, futures are
//! driven with `poll_once` or a `FlagWaker`, an explicit `Executor` is run
//! with `try_tick` where a test must know what has run, and every wait is
//! bounded (`run_bounded`, `within`, `join_within`, `recv_timeout`).
//! The test counters use `SeqCst`: one total order keeps the reasoning about
//! them trivial, and speed does not matter here.
#![cfg(feature = "smol")]

mod common;

use std::pin::pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::task::Poll;
use std::thread;
use std::time::Duration;

use common::pool::Pool;
use common::waker::FlagWaker;
use common::{join_within, run_bounded, within, LIMIT};
use futures_lite::future::{block_on, poll_once};
use smol::channel;
use smol::{Executor, LocalExecutor};
use smol_graceful::{Closed, Reason, Shutdown, TaskError, TaskSet};

/// A one-shot gate: the task awaits `wait`, the test calls `open`.
fn gate() -> (channel::Sender<()>, channel::Receiver<()>) {
    channel::bounded(1)
}

/// Spawns one task per item of `outputs` on `set` (smol's global executor),
/// in order: task `i` waits for its gate, says `i` on `done`, and returns
/// `Ok` with item `i`. Returns the gates' `open` ends, in spawn order.
fn spawn_gated<T: Send + 'static>(
    set: &TaskSet<T, String>,
    outputs: impl IntoIterator<Item = T>,
    done: &channel::Sender<usize>,
) -> Vec<channel::Sender<()>> {
    let mut gates = Vec::new();
    for (i, output) in outputs.into_iter().enumerate() {
        let (open, wait) = gate();
        gates.push(open);
        let done = done.clone();
        set.spawn(async move {
            wait.recv().await.map_err(|e| e.to_string())?;
            done.send(i).await.map_err(|e| e.to_string())?;
            Ok(output)
        })
        .unwrap();
    }
    gates
}

/// The message of a `Reason::Error`, or a panic.
fn error_message(reason: Option<Reason>) -> String {
    match reason {
        Some(Reason::Error(error)) => error.to_string(),
        other => panic!("expected Reason::Error, got {other:?}"),
    }
}

/// Sets its flag when dropped (SeqCst: tests read it with no other sync).
struct DropFlag(Arc<AtomicBool>);

impl Drop for DropFlag {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

#[test]
fn results_keep_spawn_order_whatever_order_tasks_finish_in() {
    let mut set = TaskSet::<usize, String>::new();
    let (done_tx, done_rx) = channel::unbounded();
    let gates = spawn_gated(&set, [0, 10, 20, 30, 40], &done_tx);
    run_bounded(async {
        // Finish them in reverse order, one at a time.
        let mut finished = Vec::new();
        for open in gates.iter().rev() {
            open.send(()).await.unwrap();
            finished.push(done_rx.recv().await.unwrap());
        }
        assert_eq!(finished, [4, 3, 2, 1, 0]);
        assert_eq!(set.join().await.unwrap(), [0, 10, 20, 30, 40]);
    });
}

#[test]
fn join_returns_the_first_error_which_triggers_the_shutdown_and_stops_the_siblings() {
    let mut set = TaskSet::<u32, String>::new();
    let stopped = Arc::new(AtomicUsize::new(0));
    for i in 0..3 {
        let shutdown = set.shutdown().clone();
        let stopped = Arc::clone(&stopped);
        set.build_task()
            .name(format!("sibling {i}"))
            .spawn(async move {
                shutdown.triggered().await;
                stopped.fetch_add(1, Ordering::SeqCst);
                // A later failure: it must not replace the first one.
                Err(format!("sibling {i} gave up"))
            })
            .unwrap();
    }
    let (open, wait) = gate();
    set.build_task()
        .name("fetch")
        .spawn(async move {
            wait.recv().await.map_err(|e| e.to_string())?;
            Err("connection refused".to_owned())
        })
        .unwrap();
    // Nothing can fail before the gate opens.
    assert!(!set.shutdown().is_triggered());
    run_bounded(async {
        open.send(()).await.unwrap();
        let error = set.join().await.unwrap_err();
        assert_eq!(error.to_string(), "fetch failed: connection refused");
        match error {
            TaskError::Failed { task, error } => {
                assert_eq!(task, "fetch");
                assert_eq!(error, "connection refused");
            }
            other => panic!("expected fetch's failure, got {other:?}"),
        }
    });
    assert_eq!(stopped.load(Ordering::SeqCst), 3, "every sibling stopped");
    assert_eq!(
        error_message(set.shutdown().reason()),
        "fetch failed: connection refused",
        "the reason holds the first failure's text"
    );
}

/// The first failure triggers the shutdown; a sibling that hears it may end
/// (with its own error) before the first failure's outcome is recorded.
/// `join` must still return the first failure, the one the reason names.
/// The sibling is run to its end deterministically inside the trigger: by
/// the waker of a listener on the set's shutdown.
#[test]
fn join_returns_the_failure_that_triggered_the_shutdown_though_a_sibling_settled_first() {
    use std::future::Future;
    use std::pin::Pin;
    use std::sync::Mutex;
    use std::task::{Context, Wake, Waker};

    type Task = Pin<Box<dyn Future<Output = ()> + Send>>;

    /// Runs its task to its end when woken; `ran` says it ended.
    struct RunOnWake {
        task: Mutex<Option<Task>>,
        ran: AtomicBool,
    }
    impl Wake for RunOnWake {
        fn wake(self: Arc<Self>) {
            self.wake_by_ref();
        }
        fn wake_by_ref(self: &Arc<Self>) {
            let task = self.task.lock().unwrap().take();
            if let Some(mut task) = task {
                let polled = task.as_mut().poll(&mut Context::from_waker(Waker::noop()));
                self.ran.store(polled.is_ready(), Ordering::SeqCst);
            }
        }
    }

    let mut set = TaskSet::<(), String>::new();
    let shutdown = set.shutdown().clone();
    let sibling = set
        .build_task()
        .name("sibling")
        .track(std::future::poll_fn(move |_| {
            if shutdown.is_triggered() {
                Poll::Ready(Err("sibling gave up".to_owned()))
            } else {
                Poll::Pending
            }
        }))
        .unwrap();
    let mut sibling: Task = Box::pin(sibling);
    let noop = &mut Context::from_waker(Waker::noop());
    assert!(sibling.as_mut().poll(noop).is_pending());
    let hook = Arc::new(RunOnWake {
        task: Mutex::new(Some(sibling)),
        ran: AtomicBool::new(false),
    });
    let listener = set.shutdown().clone();
    let mut triggered = pin!(listener.triggered());
    let hook_waker = Waker::from(Arc::clone(&hook));
    assert!(triggered
        .as_mut()
        .poll(&mut Context::from_waker(&hook_waker))
        .is_pending());

    let fetch = set
        .build_task()
        .name("fetch")
        .track(async { Err("connection refused".to_owned()) })
        .unwrap();
    run_bounded(fetch);
    assert!(
        hook.ran.load(Ordering::SeqCst),
        "the sibling ended inside the trigger's wake-up"
    );
    assert_eq!(
        error_message(set.shutdown().reason()),
        "fetch failed: connection refused"
    );
    let error = run_bounded(set.join()).unwrap_err();
    assert_eq!(
        error.to_string(),
        "fetch failed: connection refused",
        "join returns the first failure, the one the shutdown's reason names"
    );
}

#[test]
fn a_success_after_the_first_error_is_discarded() {
    let mut set = TaskSet::<u32, &str>::new();
    let shutdown = set.shutdown().clone();
    set.spawn(async move {
        shutdown.triggered().await;
        Ok(1)
    })
    .unwrap();
    set.spawn(async { Err("boom") }).unwrap();
    let error = run_bounded(set.join()).unwrap_err();
    assert_eq!(error.task(), "task #1");
    assert!(
        matches!(error, TaskError::Failed { error: "boom", .. }),
        "{error:?}"
    );
}

#[test]
fn a_panic_becomes_an_error_that_names_the_task_keeps_the_payload_and_stops_siblings() {
    let mut set = TaskSet::<(), String>::new();
    let shutdown = set.shutdown().clone();
    set.build_task()
        .name("watcher")
        .spawn(async move {
            shutdown.triggered().await;
            Ok(())
        })
        .unwrap();
    set.build_task()
        .name("parser")
        .spawn(async {
            let byte = 7;
            panic!("bad byte {byte}");
        })
        .unwrap();
    let error = run_bounded(set.join()).unwrap_err();
    assert!(error.is_panic(), "{error:?}");
    assert!(!error.is_cancelled());
    assert_eq!(error.task(), "parser");
    assert_eq!(error.to_string(), "parser panicked: bad byte 7");
    let debug = format!("{error:?}");
    assert!(
        debug.starts_with("Panicked") && debug.contains("bad byte 7"),
        "Debug shows the panic's message: {debug}"
    );
    assert_eq!(
        error_message(set.shutdown().reason()),
        "parser panicked: bad byte 7"
    );
    let payload = error.into_panic();
    assert_eq!(
        payload.downcast_ref::<String>().map(String::as_str),
        Some("bad byte 7"),
        "the original payload"
    );
}

#[test]
fn panics_with_str_and_non_string_payloads_are_caught_and_kept() {
    let mut set = TaskSet::<(), String>::new();
    set.spawn(async { panic!("static message") }).unwrap();
    let error = run_bounded(set.join()).unwrap_err();
    assert_eq!(error.to_string(), "task #0 panicked: static message");
    let payload = error.into_panic();
    assert_eq!(payload.downcast_ref::<&str>(), Some(&"static message"));

    let mut set = TaskSet::<(), String>::new();
    set.spawn(async { std::panic::panic_any(42_u8) }).unwrap();
    let error = run_bounded(set.join()).unwrap_err();
    assert_eq!(
        error.to_string(),
        "task #0 panicked: a panic payload that is not a string"
    );
    let payload = error.try_into_panic().unwrap();
    assert_eq!(payload.downcast_ref::<u8>(), Some(&42));
}

#[test]
fn try_into_panic_gives_back_an_error_that_is_not_a_panic() {
    let mut set = TaskSet::<(), String>::new();
    set.build_task()
        .name("load")
        .spawn(async { Err("bad".to_owned()) })
        .unwrap();
    let error = run_bounded(set.join()).unwrap_err();
    let error = error.try_into_panic().unwrap_err();
    assert!(
        matches!(&error, TaskError::Failed { task, error } if task == "load" && error == "bad"),
        "{error:?}"
    );
}

#[test]
#[should_panic(expected = "task #0 did not panic")]
fn into_panic_of_a_cancellation_panics_naming_the_task() {
    let mut set = TaskSet::<(), String>::new();
    drop(set.track(std::future::pending()).unwrap());
    let error = run_bounded(set.join()).unwrap_err();
    assert!(error.is_cancelled(), "{error:?}");
    let _ = error.into_panic();
}

#[test]
fn a_panic_in_blocking_work_becomes_an_error() {
    let mut set = TaskSet::<(), String>::new();
    set.build_task()
        .name("compress")
        .spawn_blocking(|| panic!("out of memory"))
        .unwrap();
    let error = run_bounded(set.join()).unwrap_err();
    assert_eq!(error.to_string(), "compress panicked: out of memory");
    assert_eq!(
        error.into_panic().downcast_ref::<&str>(),
        Some(&"out of memory")
    );
}

#[test]
fn the_limit_is_never_exceeded_by_async_and_blocking_tasks() {
    const SLOTS: usize = 3;
    const TASKS: usize = 60;
    let ex = Pool::start(3);

    let running = Arc::new(AtomicUsize::new(0));
    let peak = Arc::new(AtomicUsize::new(0));
    let (entered_tx, entered_rx) = channel::unbounded::<()>();
    let enter = {
        let (running, peak) = (Arc::clone(&running), Arc::clone(&peak));
        move || {
            let now = running.fetch_add(1, Ordering::SeqCst) + 1;
            peak.fetch_max(now, Ordering::SeqCst);
            entered_tx.try_send(()).unwrap();
        }
    };
    // Every task waits for `go` once it runs: until it closes, no task ends.
    let (go_tx, go) = channel::bounded::<()>(1);
    let mut set = TaskSet::<(), String>::new().with_limit(SLOTS);
    for i in 0..TASKS {
        let (enter, running, go) = (enter.clone(), Arc::clone(&running), go.clone());
        if i % 4 == 0 {
            set.build_task()
                .name(format!("blocking {i}"))
                .spawn_blocking(move || {
                    enter();
                    let _ = go.recv_blocking();
                    for _ in 0..10 {
                        thread::yield_now();
                    }
                    running.fetch_sub(1, Ordering::SeqCst);
                    Ok(())
                })
                .unwrap();
        } else {
            set.build_task()
                .spawn_on(&ex, async move {
                    enter();
                    let _ = go.recv().await;
                    for _ in 0..10 {
                        smol::future::yield_now().await;
                    }
                    running.fetch_sub(1, Ordering::SeqCst);
                    Ok(())
                })
                .unwrap();
        }
    }
    // No spawn waited: the tasks past the limit are listed, counted and
    // reported, waiting inside the set.
    assert_eq!(set.len(), TASKS);
    assert_eq!(set.stragglers().count(), TASKS);
    run_bounded(async {
        // The first SLOTS tasks run at once.
        for _ in 0..SLOTS {
            entered_rx.recv().await.unwrap();
        }
        go_tx.close();
        assert_eq!(set.join().await.unwrap().len(), TASKS);
    });
    ex.stop();
    assert_eq!(
        peak.load(Ordering::SeqCst),
        SLOTS,
        "SLOTS tasks ran together before `go`, and never more"
    );
    assert_eq!(running.load(Ordering::SeqCst), 0);
    assert_eq!(entered_rx.len(), TASKS - SLOTS, "every task ran once");
}

#[test]
fn tasks_past_the_limit_wait_inside_the_set_and_start_in_spawn_order() {
    let ex = Executor::new();
    let mut set = TaskSet::<usize, String>::new().with_limit(1);
    let (started_tx, started_rx) = channel::unbounded();
    let mut gates = Vec::new();
    for i in 0..4 {
        let (open, wait) = gate();
        gates.push(open);
        let started = started_tx.clone();
        set.build_task()
            .name(format!("t{i}"))
            .spawn_on(&ex, async move {
                started.send(i).await.map_err(|e| e.to_string())?;
                wait.recv().await.map_err(|e| e.to_string())?;
                Ok(i)
            })
            .unwrap();
    }
    assert_eq!(set.len(), 4, "queued tasks count");
    assert_eq!(set.stragglers().names(), ["t0", "t1", "t2", "t3"]);
    while ex.try_tick() {}
    assert_eq!(started_rx.try_recv(), Ok(0));
    assert!(
        started_rx.is_empty(),
        "one slot: the others wait, though the executor ran them all"
    );
    // Open the gates in reverse order: the queue, not the gates, decides
    // who starts next.
    for open in gates.iter().rev() {
        open.try_send(()).unwrap();
    }
    run_bounded(ex.run(async {
        assert_eq!(set.join().await.unwrap(), [0, 1, 2, 3]);
    }));
    let order: Vec<usize> = std::iter::from_fn(|| started_rx.try_recv().ok()).collect();
    assert_eq!(order, [1, 2, 3]);
}

#[test]
fn ready_is_ready_at_once_without_a_limit() {
    let set = TaskSet::<(), String>::new();
    let tasks: Vec<_> = (0..3)
        .map(|_| set.track(std::future::pending()).unwrap())
        .collect();
    assert_eq!(block_on(poll_once(set.ready())), Some(Ok(())));
    drop(tasks);
}

#[test]
fn ready_waits_for_a_free_slot_and_is_woken_when_one_frees() {
    let ex = Executor::new();
    let mut set = TaskSet::<u32, String>::new().with_limit(1);
    let (open, wait) = gate();
    set.build_task()
        .spawn_on(&ex, async move {
            wait.recv().await.map_err(|e| e.to_string())?;
            Ok(1)
        })
        .unwrap();
    let waker = FlagWaker::new();
    {
        let mut ready = pin!(set.ready());
        assert!(waker.poll(ready.as_mut()).is_pending(), "the slot is taken");
        while ex.try_tick() {}
        assert!(waker.poll(ready.as_mut()).is_pending(), "still taken");
        open.try_send(()).unwrap();
        while ex.try_tick() {}
        assert!(waker.take_woken(), "the freed slot woke ready");
        assert_eq!(waker.poll(ready.as_mut()), Poll::Ready(Ok(())));
    }
    // Room: this one runs at once (the executor is not even running).
    set.build_task().spawn_on(&ex, async { Ok(2) }).unwrap();
    assert_eq!(set.stragglers().count(), 1);
    assert!(block_on(poll_once(set.ready())).is_none(), "taken again");
    run_bounded(ex.run(async {
        assert_eq!(set.join().await.unwrap(), [1, 2]);
    }));
}

#[test]
fn ready_reserves_nothing() {
    let set = TaskSet::<(), String>::new().with_limit(1);
    // Two ready futures resolved and dropped: the one slot is still free.
    assert_eq!(block_on(poll_once(set.ready())), Some(Ok(())));
    assert_eq!(block_on(poll_once(set.ready())), Some(Ok(())));
    let task = set.track(std::future::pending()).unwrap();
    assert!(
        block_on(poll_once(set.ready())).is_none(),
        "a spawn took the slot"
    );
    drop(task);
    assert_eq!(block_on(poll_once(set.ready())), Some(Ok(())));
}

#[test]
fn ready_waits_until_no_task_is_queued() {
    let ex = Executor::new();
    let mut set = TaskSet::<u32, String>::new().with_limit(1);
    let (done_tx, done_rx) = channel::unbounded();
    let mut gates = Vec::new();
    for i in 0..2 {
        let (open, wait) = gate();
        gates.push(open);
        let done = done_tx.clone();
        set.build_task()
            .spawn_on(&ex, async move {
                wait.recv().await.map_err(|e| e.to_string())?;
                done.send(i).await.map_err(|e| e.to_string())?;
                Ok(i)
            })
            .unwrap();
    }
    while ex.try_tick() {}
    let waker = FlagWaker::new();
    {
        let mut ready = pin!(set.ready());
        assert!(waker.poll(ready.as_mut()).is_pending());
        // Task 0 ends: its slot goes to the queued task 1, not to a new one.
        gates[0].try_send(()).unwrap();
        while ex.try_tick() {}
        assert_eq!(done_rx.try_recv(), Ok(0));
        assert!(
            waker.poll(ready.as_mut()).is_pending(),
            "the freed slot went to the queued task"
        );
        assert_eq!(set.len(), 1);
        gates[1].try_send(()).unwrap();
        while ex.try_tick() {}
        assert_eq!(done_rx.try_recv(), Ok(1));
        assert!(waker.take_woken(), "the last task's end woke ready");
        assert_eq!(waker.poll(ready.as_mut()), Poll::Ready(Ok(())));
    }
    assert_eq!(run_bounded(set.join()).unwrap(), [0, 1]);
}

/// Two producers wait for room; two slots free before either runs again:
/// a spawn now would run at once for each of them, so each must be woken.
#[test]
fn every_pending_ready_is_woken_when_as_many_slots_free() {
    let ex = Executor::new();
    let mut set = TaskSet::<u32, String>::new().with_limit(2);
    let mut gates = Vec::new();
    for i in 0..2 {
        let (open, wait) = gate();
        gates.push(open);
        set.build_task()
            .spawn_on(&ex, async move {
                wait.recv().await.map_err(|e| e.to_string())?;
                Ok(i)
            })
            .unwrap();
    }
    let (first, second) = (FlagWaker::new(), FlagWaker::new());
    {
        let mut ready_1 = pin!(set.ready());
        let mut ready_2 = pin!(set.ready());
        assert!(first.poll(ready_1.as_mut()).is_pending());
        assert!(second.poll(ready_2.as_mut()).is_pending());
        for open in &gates {
            open.try_send(()).unwrap();
        }
        while ex.try_tick() {}
        assert!(set.is_empty(), "both slots are free");
        assert!(first.take_woken(), "the first waiting ready was woken");
        assert!(second.take_woken(), "the second waiting ready was woken");
        assert_eq!(first.poll(ready_1.as_mut()), Poll::Ready(Ok(())));
        assert_eq!(second.poll(ready_2.as_mut()), Poll::Ready(Ok(())));
    }
    assert_eq!(run_bounded(set.join()).unwrap(), [0, 1]);
}

#[test]
fn blocking_work_delays_join_and_is_named_in_stragglers() {
    let mut set = TaskSet::<u32, String>::new();
    let (started_tx, started_rx) = mpsc::channel();
    let (release_tx, release_rx) = mpsc::channel::<()>();
    set.build_task()
        .name("close database")
        .spawn_blocking(move || {
            started_tx.send(()).map_err(|e| e.to_string())?;
            release_rx.recv_timeout(LIMIT).map_err(|e| e.to_string())?;
            Ok(7)
        })
        .unwrap();
    started_rx
        .recv_timeout(LIMIT)
        .expect("the blocking closure started");
    assert_eq!(set.len(), 1);
    run_bounded(async {
        // The thread still runs: the deadline passes and names it.
        let stragglers = set
            .join_timeout(Duration::from_millis(1))
            .await
            .unwrap_err();
        assert_eq!(stragglers.count(), 1);
        assert_eq!(stragglers.names(), ["close database"]);

        let mut join = pin!(set.join());
        assert!(poll_once(join.as_mut()).await.is_none());
        release_tx.send(()).unwrap();
        assert_eq!(join.await.unwrap(), [7]);
    });
}

#[test]
fn blocking_work_counts_until_it_returns_even_with_no_executor() {
    let mut set = TaskSet::<(), String>::new();
    let (release_tx, release_rx) = mpsc::channel::<()>();
    set.build_task()
        .name("fsync")
        .spawn_blocking(move || release_rx.recv_timeout(LIMIT).map_err(|e| e.to_string()))
        .unwrap();
    let (polled_tx, polled_rx) = mpsc::channel();
    let joiner = thread::spawn(move || {
        let mut join = pin!(set.join());
        let first = block_on(poll_once(join.as_mut()));
        polled_tx.send(first.is_none()).unwrap();
        run_bounded(join)
    });
    let pending = polled_rx.recv_timeout(LIMIT).expect("join polled");
    assert!(
        pending,
        "join cannot return while the blocking closure runs"
    );
    release_tx.send(()).unwrap();
    assert_eq!(join_within(joiner).unwrap(), [()]);
}

#[test]
fn a_dropped_tracked_task_is_cancelled_and_fails_the_set() {
    let mut set = TaskSet::<(), String>::new();
    let task = set
        .track(std::future::pending::<Result<(), String>>())
        .unwrap();
    assert_eq!(set.len(), 1, "a tracked task counts from its creation");
    assert!(!set.shutdown().is_triggered());
    drop(task);
    assert!(set.is_empty());
    assert_eq!(
        error_message(set.shutdown().reason()),
        "task #0 was cancelled before it finished"
    );
    let error = run_bounded(set.join()).unwrap_err();
    assert!(
        matches!(&error, TaskError::Cancelled { task } if task == "task #0"),
        "{error:?}"
    );
    assert_eq!(
        error.to_string(),
        "task #0 was cancelled before it finished"
    );
}

#[test]
fn tasks_dropped_with_their_executor_are_cancelled() {
    let mut set = TaskSet::<(), String>::new();
    let ex = Executor::new();
    set.build_task()
        .spawn_on(&ex, std::future::pending())
        .unwrap();
    assert_eq!(set.len(), 1);
    drop(ex);
    assert!(set.is_empty());
    let error = run_bounded(set.join()).unwrap_err();
    assert!(error.is_cancelled(), "{error:?}");
    assert_eq!(
        error.to_string(),
        "task #0 was cancelled before it finished"
    );
}

#[test]
fn unnamed_tasks_are_named_by_spawn_index_in_stragglers() {
    let set = TaskSet::<(), String>::new();
    let ok = || std::future::ready(Ok(()));
    let tasks = vec![
        set.track(ok()).unwrap(),
        set.build_task().name("named").track(ok()).unwrap(),
        set.track(ok()).unwrap(),
    ];
    assert_eq!(set.stragglers().names(), ["task #0", "named", "task #2"]);
    assert_eq!(set.len(), 3);
    drop(tasks);
}

#[test]
fn a_join_that_finds_the_set_drained_closes_it_to_every_way_of_spawning() {
    let ex = Executor::new();
    let local = LocalExecutor::new();
    let mut set = TaskSet::<(), String>::new();
    let spawner = set.spawner();
    set.spawn(async { Ok(()) }).unwrap();
    assert_eq!(run_bounded(set.join()).unwrap(), [()]);
    assert!(spawner.is_closed());
    assert_eq!(set.spawn(async { Ok(()) }), Err(Closed));
    assert_eq!(
        set.build_task().name("late").spawn(async { Ok(()) }),
        Err(Closed)
    );
    assert_eq!(
        set.build_task().spawn_on(&ex, async { Ok(()) }),
        Err(Closed)
    );
    assert_eq!(
        set.build_task().spawn_local(&local, async { Ok(()) }),
        Err(Closed)
    );
    assert_eq!(set.build_task().spawn_blocking(|| Ok(())), Err(Closed));
    assert!(matches!(set.track(async { Ok(()) }), Err(Closed)));
    assert_eq!(spawner.spawn(async { Ok(()) }), Err(Closed));
    assert_eq!(block_on(poll_once(set.ready())), Some(Err(Closed)));
    assert!(ex.is_empty() && local.is_empty(), "nothing was started");
    assert!(set.is_empty());
}

#[test]
fn a_join_dropped_while_tasks_run_leaves_the_set_open() {
    let mut set = TaskSet::<u32, String>::new();
    // Joins made and dropped without a poll change nothing.
    drop(set.join());
    drop(set.join_timeout(Duration::from_secs(5)));
    let (open, wait) = gate();
    set.spawn(async move {
        wait.recv().await.map_err(|e| e.to_string())?;
        Ok(1)
    })
    .unwrap();
    {
        let mut join = pin!(set.join());
        assert!(block_on(poll_once(join.as_mut())).is_none());
    } // dropped while a task runs
    set.spawn(async { Ok(2) })
        .expect("a join that has not seen the set drained leaves it open");
    assert!(!set.shutdown().is_triggered(), "nothing was returned");
    open.try_send(()).unwrap();
    assert_eq!(run_bounded(set.join()).unwrap(), [1, 2]);
}

#[test]
fn a_join_dropped_before_it_returned_leaves_a_set_that_drains_later_open() {
    let mut set = TaskSet::<u32, String>::new();
    let (open, wait) = gate();
    set.spawn(async move {
        wait.recv().await.map_err(|e| e.to_string())?;
        Ok(1)
    })
    .unwrap();
    {
        let mut join = pin!(set.join_timeout(Duration::ZERO));
        // The zero timeout gives up at once: the task still runs.
        assert!(block_on(poll_once(join.as_mut())).unwrap().is_err());
    }
    open.try_send(()).unwrap();
    assert_eq!(run_bounded(set.join_next()).unwrap().1.unwrap(), 1);
    assert!(set.is_empty());
    // Drained with no join waiting: still open.
    set.spawn(async { Ok(2) })
        .expect("no join saw the set drained");
    assert_eq!(run_bounded(set.join()).unwrap(), [2]);
    assert!(set.spawn(async { Ok(3) }).is_err(), "this join did");
}

#[test]
fn while_a_join_waits_tasks_can_still_be_added() {
    let mut set = TaskSet::<u32, String>::new();
    let spawner = set.spawner();
    let (open, wait) = gate();
    set.spawn(async move {
        wait.recv().await.map_err(|e| e.to_string())?;
        Ok(1)
    })
    .unwrap();
    {
        let mut join = pin!(set.join());
        assert!(block_on(poll_once(join.as_mut())).is_none());
        assert!(!spawner.is_closed(), "a task is still counted");
        spawner.spawn(async { Ok(2) }).unwrap();
        open.try_send(()).unwrap();
        assert_eq!(run_bounded(join).unwrap(), [1, 2], "join waited for both");
    }
    assert!(spawner.is_closed(), "the join found the set drained");
    assert_eq!(spawner.spawn(async { Ok(3) }), Err(Closed));
}

#[test]
fn a_second_join_returns_no_values() {
    let mut set = TaskSet::<u32, String>::new();
    set.spawn(async { Ok(1) }).unwrap();
    assert_eq!(run_bounded(set.join()).unwrap(), [1]);
    assert_eq!(run_bounded(set.join()).unwrap(), []);
    let outcome = run_bounded(set.join_timeout(Duration::ZERO)).unwrap();
    assert_eq!(outcome.unwrap(), []);

    // The first failure is returned once.
    let mut set = TaskSet::<u32, String>::new();
    set.spawn(async { Err("bad".to_owned()) }).unwrap();
    assert_eq!(run_bounded(set.join()).unwrap_err().task(), "task #0");
    assert_eq!(run_bounded(set.join()).unwrap(), []);
}

#[test]
fn join_triggers_the_sets_shutdown_when_it_returns() {
    let mut set = TaskSet::<u32, String>::new();
    // Something outside the set that lives as long as the set's work.
    let helper = set.shutdown().child();
    let (open, wait) = gate();
    let task = set
        .track(async move {
            wait.recv().await.map_err(|e| e.to_string())?;
            Ok(1)
        })
        .unwrap();
    let runner = thread::spawn(move || run_bounded(task));
    {
        let mut join = pin!(set.join());
        assert!(block_on(poll_once(join.as_mut())).is_none());
        assert!(!helper.is_triggered(), "not while join waits");
        open.send_blocking(()).unwrap();
        assert_eq!(run_bounded(join).unwrap(), [1]);
    }
    join_within(runner);
    assert!(matches!(set.shutdown().reason(), Some(Reason::Finished)));
    assert!(helper.is_triggered(), "the set's scopes hear it too");
    run_bounded(helper.triggered());
}

#[test]
fn join_keeps_the_reason_of_the_first_failure() {
    let mut set = TaskSet::<(), String>::new();
    let task = set.track(async { Err("bad".to_owned()) }).unwrap();
    run_bounded(task);
    run_bounded(set.join()).unwrap_err();
    assert_eq!(
        error_message(set.shutdown().reason()),
        "task #0 failed: bad"
    );
}

#[test]
fn join_timeout_triggers_the_shutdown_when_it_returns_the_outcome_only() {
    let mut set = TaskSet::<(), String>::new();
    let task = set.track(std::future::pending()).unwrap();
    // Timed out: the set is not over, its tasks are left to the caller.
    let stragglers = run_bounded(set.join_timeout(Duration::from_millis(1))).unwrap_err();
    assert_eq!(stragglers.names(), ["task #0"]);
    assert!(!set.shutdown().is_triggered());
    drop(task); // cancelled: the first failure triggers it with its reason
    let outcome = run_bounded(set.join_timeout(LIMIT)).unwrap();
    assert_eq!(outcome.unwrap_err().task(), "task #0");
    assert_eq!(
        error_message(set.shutdown().reason()),
        "task #0 was cancelled before it finished"
    );

    let mut set = TaskSet::<u8, String>::new();
    let task = set.track(async { Ok(3) }).unwrap();
    run_bounded(task);
    let outcome = run_bounded(set.join_timeout(LIMIT)).unwrap();
    assert_eq!(outcome.unwrap(), [3]);
    assert!(matches!(set.shutdown().reason(), Some(Reason::Finished)));
}

#[test]
fn join_timeout_prefers_finished_work_over_an_expired_timer() {
    let mut set = TaskSet::<u8, String>::new();
    let task = set.track(async { Ok(4) }).unwrap();
    run_bounded(task);
    // The time is out before the first poll, and the work is done: `Ok`.
    let outcome = run_bounded(set.join_timeout(Duration::ZERO)).unwrap();
    assert_eq!(outcome.unwrap(), [4]);
}

#[test]
fn join_timeout_returns_the_outcome_when_tasks_finish_in_time() {
    let mut set = TaskSet::<u32, String>::new();
    set.spawn(async { Ok(1) }).unwrap();
    let outcome = run_bounded(set.join_timeout(LIMIT));
    assert_eq!(outcome.unwrap().unwrap(), [1]);
}

#[test]
fn join_is_cancel_safe() {
    let mut set = TaskSet::<u32, String>::new();
    let (open, wait) = gate();
    let task = set
        .track(async move {
            wait.recv().await.map_err(|e| e.to_string())?;
            Ok(5)
        })
        .unwrap();
    let runner = thread::spawn(move || run_bounded(task));
    {
        let mut join = pin!(set.join());
        assert!(block_on(poll_once(join.as_mut())).is_none());
    } // dropped while pending
    open.send_blocking(()).unwrap();
    assert_eq!(run_bounded(set.join()).unwrap(), [5]);
    join_within(runner);
}

#[test]
fn a_parent_shutdown_reaches_the_tasks_but_a_failure_stays_in_the_set() {
    let service = Shutdown::new();
    let mut failing = TaskSet::<(), String>::with_parent(&service);
    failing.spawn(async { Err("bad".to_owned()) }).unwrap();
    run_bounded(failing.join()).unwrap_err();
    assert!(failing.shutdown().is_triggered());
    assert!(!service.is_triggered(), "never upward");

    let mut workers = TaskSet::<u32, String>::with_parent(&service);
    for i in 0..3 {
        let shutdown = workers.shutdown().clone();
        workers
            .spawn(async move {
                shutdown.triggered().await;
                Ok(i)
            })
            .unwrap();
    }
    service.trigger();
    assert_eq!(run_bounded(workers.join()).unwrap(), [0, 1, 2]);
    assert!(matches!(
        workers.shutdown().reason(),
        Some(Reason::Requested)
    ));
}

#[test]
fn dropping_an_unjoined_set_aborts_its_tasks_and_triggers_its_shutdown() {
    let set = TaskSet::<(), String>::new();
    let shutdown = set.shutdown().clone();
    let dropped = Arc::new(AtomicBool::new(false));
    let flag = DropFlag(Arc::clone(&dropped));
    let task = set
        .track(async move {
            let _flag = flag;
            std::future::pending::<()>().await;
            Ok(())
        })
        .unwrap();
    let mut task = pin!(task);
    let waker = FlagWaker::new();
    assert!(waker.poll(task.as_mut()).is_pending());
    drop(set);
    assert!(matches!(shutdown.reason(), Some(Reason::Requested)));
    assert!(waker.take_woken(), "the drop woke the task");
    assert!(
        waker.poll(task.as_mut()).is_ready(),
        "the task is cut at its next poll"
    );
    assert!(dropped.load(Ordering::SeqCst), "its body was dropped");
}

#[test]
fn dropping_an_unjoined_set_cuts_its_tasks_on_the_global_executor() {
    /// Says so on its channel when dropped.
    struct SayDropped(channel::Sender<()>);
    impl Drop for SayDropped {
        fn drop(&mut self) {
            let _ = self.0.try_send(());
        }
    }
    let set = TaskSet::<(), String>::new();
    let (started_tx, started) = channel::bounded(1);
    let (dropped_tx, dropped) = channel::bounded(1);
    set.spawn(async move {
        let _say = SayDropped(dropped_tx);
        started_tx.send(()).await.map_err(|e| e.to_string())?;
        std::future::pending::<()>().await;
        Ok(())
    })
    .unwrap();
    run_bounded(started.recv()).unwrap();
    drop(set);
    run_bounded(dropped.recv()).expect("the body was dropped, not leaked");
}

#[test]
fn dropping_an_unjoined_set_closes_its_spawners() {
    let set = TaskSet::<(), String>::new();
    let spawner = set.spawner();
    let running = set.track(std::future::pending()).unwrap();
    assert!(!spawner.is_closed());
    drop(set);
    assert!(spawner.is_closed());
    assert_eq!(spawner.spawn(async { Ok(()) }), Err(Closed));
    assert_eq!(spawner.build_task().spawn_blocking(|| Ok(())), Err(Closed));
    drop(running);
}

#[test]
fn blocking_work_runs_to_its_end_after_the_set_is_dropped() {
    let set = TaskSet::<u32, String>::new();
    let (started_tx, started_rx) = mpsc::channel();
    let (release_tx, release_rx) = mpsc::channel::<()>();
    let (done_tx, done_rx) = mpsc::channel();
    set.build_task()
        .name("flush")
        .spawn_blocking(move || {
            started_tx.send(()).map_err(|e| e.to_string())?;
            release_rx.recv_timeout(LIMIT).map_err(|e| e.to_string())?;
            done_tx.send(()).map_err(|e| e.to_string())?;
            Ok(1)
        })
        .unwrap();
    started_rx.recv_timeout(LIMIT).expect("the closure started");
    drop(set);
    release_tx.send(()).unwrap();
    done_rx
        .recv_timeout(LIMIT)
        .expect("the closure ran to its end after the drop");
}

#[test]
fn tracked_tasks_run_on_any_runtime() {
    let mut set = TaskSet::<&str, String>::new();
    let on_thread = set.track(async { Ok("thread") }).unwrap();
    let on_tokio = set.track(async { Ok("tokio") }).unwrap();
    let local = LocalExecutor::new();
    let rc = std::rc::Rc::new("local");
    set.build_task()
        .spawn_local(&local, async move { Ok(*rc) })
        .unwrap();

    let thread = thread::spawn(move || run_bounded(on_thread));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    runtime
        .block_on(within("the task on tokio", async {
            tokio::spawn(on_tokio).await
        }))
        .unwrap();
    while local.try_tick() {}
    join_within(thread);
    assert_eq!(
        run_bounded(set.join()).unwrap(),
        ["thread", "tokio", "local"]
    );
}

#[test]
#[should_panic(expected = "the limit must be at least 1")]
fn a_limit_of_zero_panics() {
    let _ = TaskSet::<(), String>::new().with_limit(0);
}

#[test]
#[should_panic(expected = "before the first spawn")]
fn with_limit_after_a_spawn_panics() {
    let set = TaskSet::<(), String>::new();
    let task = set.track(async { Ok(()) }).unwrap();
    let _ = set.with_limit(1);
    drop(task);
}

#[test]
#[should_panic(expected = "before TaskSet::spawner")]
fn with_limit_after_a_spawner_panics() {
    let set = TaskSet::<(), String>::new();
    let spawner = set.spawner();
    let _ = set.with_limit(1);
    drop(spawner);
}

#[test]
fn the_set_its_futures_and_errors_are_send() {
    fn assert_send<T: Send>(_: &T) {}
    fn assert_send_sync<T: Send + Sync>() {}
    let set = TaskSet::<u32, String>::new().with_limit(1);
    assert_send(&set);
    assert_send(&set.spawner());
    assert_send(&set.build_task());
    assert_send(&set.ready());
    let task = set.track(async { Ok(1) }).unwrap();
    assert_send(&task);
    drop(task);
    let mut set = set;
    assert_send(&set.join());
    assert_send(&set.join_timeout(Duration::from_secs(1)));
    assert_send(&set.join_next());
    // `anyhow` and `Box<dyn Error + Send + Sync>` need both.
    assert_send_sync::<TaskError<String>>();
    assert_send_sync::<TaskSet<u32, String>>();
}
