//! `TaskSet::spawner`: recursive fan-out (a crawler) while `join` waits, with
//! and without a limit, every start method of a spawner, the limit, closing
//! (by a drained join, by dropping the set), a spawner kept alive after
//! `join`, panics.
//!
//! Every wait is bounded; tasks wait on channels the test controls.
#![cfg(feature = "smol")]

mod common;

use std::future::Future;
use std::pin::{pin, Pin};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use common::pool::Pool;
use common::{run_bounded, within};
use futures_lite::future::{block_on, poll_once};
use smol::{channel, Executor, LocalExecutor};
use smol_graceful::{Closed, Spawner, TaskError, TaskSet};

type Page = Pin<Box<dyn Future<Output = Result<u32, String>> + Send>>;

/// Page `n` links to `2n` and `2n + 1`, below `limit`; each page is spawned
/// on `ex` by the page that links to it.
fn crawl(ex: Arc<Executor<'static>>, spawner: Spawner<u32, String>, n: u32, limit: u32) -> Page {
    Box::pin(async move {
        for link in [2 * n, 2 * n + 1] {
            if link < limit {
                let child = crawl(ex.clone(), spawner.clone(), link, limit);
                spawner
                    .build_task()
                    .name(format!("page {link}"))
                    .spawn_on(&ex, child)
                    .map_err(|e| e.to_string())?;
            }
        }
        Ok(n)
    })
}

#[test]
fn a_crawler_fans_out_while_join_waits() {
    const PAGES: u32 = 2_000;
    let pool = Pool::start(2);
    let mut set = TaskSet::new();
    let root = crawl(pool.executor().clone(), set.spawner(), 1, PAGES);
    set.build_task()
        .name("page 1")
        .spawn_on(&pool, root)
        .unwrap();
    // The pages add their links while `join` waits; it waits for them all.
    let mut pages = run_bounded(set.join()).unwrap();
    pages.sort_unstable();
    assert_eq!(pages, (1..PAGES).collect::<Vec<_>>());
    pool.stop();
}

/// A page of a crawl under a limit: counts how many pages run at once.
fn limited_crawl(
    spawner: Spawner<u32, String>,
    running: Arc<(AtomicUsize, AtomicUsize)>,
    n: u32,
    limit: u32,
) -> Page {
    Box::pin(async move {
        let now = running.0.fetch_add(1, Ordering::SeqCst) + 1;
        running.1.fetch_max(now, Ordering::SeqCst);
        for link in [2 * n, 2 * n + 1] {
            if link < limit {
                let child = limited_crawl(spawner.clone(), Arc::clone(&running), link, limit);
                // Never waits, even with the set full: the child queues.
                spawner.spawn(child).map_err(|e| e.to_string())?;
            }
            smol::future::yield_now().await;
        }
        running.0.fetch_sub(1, Ordering::SeqCst);
        Ok(n)
    })
}

#[test]
fn a_crawler_under_a_limit_fans_out_without_deadlock_and_within_the_limit() {
    const PAGES: u32 = 1_000;
    let mut set = TaskSet::new().with_limit(2);
    // (running now, most running at once)
    let running = Arc::new((AtomicUsize::new(0), AtomicUsize::new(0)));
    set.spawn(limited_crawl(set.spawner(), Arc::clone(&running), 1, PAGES))
        .unwrap();
    let mut pages = run_bounded(set.join()).unwrap();
    pages.sort_unstable();
    assert_eq!(pages, (1..PAGES).collect::<Vec<_>>());
    let most = running.1.load(Ordering::SeqCst);
    assert!((1..=2).contains(&most), "{most} pages ran at once");
}

#[test]
fn a_spawner_starts_tasks_with_every_start_method() {
    let pool = Pool::start(2);
    let local = LocalExecutor::new();
    let mut set = TaskSet::<&str, String>::new();
    let spawner = set.spawner();
    spawner.spawn(async { Ok("global") }).unwrap();
    spawner
        .build_task()
        .name("on pool")
        .spawn_on(&pool, async { Ok("pool") })
        .unwrap();
    let not_send = std::rc::Rc::new("local");
    spawner
        .build_task()
        .spawn_local(&local, async move { Ok(*not_send) })
        .unwrap();
    spawner
        .build_task()
        .spawn_blocking(|| Ok("blocking"))
        .unwrap();
    let tracked = spawner.build_task().track(async { Ok("tracked") }).unwrap();
    let tracker = std::thread::spawn(move || block_on(tracked));
    assert_eq!(
        run_bounded(local.run(set.join())).unwrap(),
        ["global", "pool", "local", "blocking", "tracked"]
    );
    common::join_within(tracker);
    pool.stop();
}

#[test]
fn a_waiting_join_does_not_close_the_set_and_a_drained_one_does() {
    let mut set = TaskSet::<&str, String>::new();
    let spawner = set.spawner();
    let (go, wait) = channel::bounded::<()>(1);
    let (added_tx, added_rx) = channel::bounded::<()>(1);
    let adder = spawner.clone();
    set.build_task()
        .name("a")
        .spawn(async move {
            wait.recv().await.map_err(|e| e.to_string())?;
            // Still counted: this task may add work while `join` waits.
            adder
                .build_task()
                .name("b")
                .spawn(async { Ok("b") })
                .map_err(|e| e.to_string())?;
            added_tx.send(()).await.map_err(|e| e.to_string())?;
            Ok("a")
        })
        .unwrap();

    // A join polled while a task runs, then dropped, closed nothing.
    {
        let mut join = pin!(set.join());
        assert!(block_on(poll_once(join.as_mut())).is_none(), "a still runs");
    }
    assert!(!spawner.is_closed());
    set.build_task().name("c").spawn(async { Ok("c") }).unwrap();

    run_bounded(async {
        let mut join = pin!(set.join());
        assert!(poll_once(join.as_mut()).await.is_none(), "a still runs");
        go.send(()).await.unwrap();
        within("a to add b", added_rx.recv()).await.unwrap();
        // In spawn order: a, c (spawned by the set), b (spawned by a).
        assert_eq!(within("join", join).await.unwrap(), ["a", "c", "b"]);
    });

    // That join saw the set drained: now it is closed for good.
    assert!(spawner.is_closed());
    assert_eq!(set.spawn(async { Ok("late") }), Err(Closed));
    assert_eq!(spawner.spawn(async { Ok("late") }), Err(Closed));
    assert!(set.is_empty());
    assert_eq!(run_bounded(set.join()).unwrap(), Vec::<&str>::new());
}

#[test]
fn a_spawner_kept_alive_does_not_hold_up_join_and_is_closed_after() {
    let ex = Executor::new();
    let local = LocalExecutor::new();
    let mut set = TaskSet::<u8, String>::new();
    let spawner = set.spawner();
    let kept = spawner.clone();
    run_bounded(ex.run(async {
        spawner.build_task().spawn_on(&ex, async { Ok(1) }).unwrap();
        assert_eq!(set.join().await.unwrap(), [1]);
    }));
    assert!(kept.is_closed());
    assert_eq!(kept.spawn(async { Ok(2) }), Err(Closed));
    assert_eq!(kept.build_task().spawn(async { Ok(2) }), Err(Closed));
    assert_eq!(
        kept.build_task()
            .name("late")
            .spawn_on(&ex, async { Ok(2) }),
        Err(Closed)
    );
    assert_eq!(
        kept.build_task().spawn_local(&local, async { Ok(2) }),
        Err(Closed)
    );
    assert_eq!(kept.build_task().spawn_blocking(|| Ok(2)), Err(Closed));
    assert_eq!(
        kept.build_task().track(async { Ok(2) }).unwrap_err(),
        Closed
    );
    assert!(set.is_empty(), "a refused spawn counts nothing");
}

#[test]
fn dropping_the_set_closes_its_spawners_and_aborts_what_they_started() {
    let set = TaskSet::<(), String>::new();
    let spawner = set.spawner();
    let (started_tx, started_rx) = channel::bounded::<()>(1);
    // Dropped with the task's body: `recv` on the other end then fails.
    let (alive_tx, alive_rx) = channel::bounded::<()>(1);
    spawner
        .spawn(async move {
            let _alive = alive_tx;
            started_tx.send(()).await.map_err(|e| e.to_string())?;
            std::future::pending().await
        })
        .unwrap();
    run_bounded(started_rx.recv()).unwrap();
    assert!(!spawner.is_closed());
    drop(set);
    assert!(spawner.is_closed());
    assert_eq!(spawner.spawn(async { Ok(()) }), Err(Closed));
    assert!(
        run_bounded(alive_rx.recv()).is_err(),
        "the task's body was dropped"
    );
}

#[test]
fn a_spawner_obeys_the_limit() {
    let mut set = TaskSet::<u8, String>::new().with_limit(1);
    let spawner = set.spawner();
    let events = Arc::new(Mutex::new(Vec::new()));
    let (release_first, first_released) = channel::bounded::<()>(1);
    let (first_started_tx, first_started) = channel::bounded::<()>(1);
    let log = Arc::clone(&events);
    spawner
        .spawn(async move {
            log.lock().unwrap().push("first starts");
            first_started_tx.send(()).await.map_err(|e| e.to_string())?;
            first_released.recv().await.map_err(|e| e.to_string())?;
            log.lock().unwrap().push("first ends");
            Ok(1)
        })
        .unwrap();
    let log = Arc::clone(&events);
    spawner
        .spawn(async move {
            log.lock().unwrap().push("second starts");
            Ok(2)
        })
        .unwrap();
    // Both are listed at once; the second waits inside the set for the slot.
    assert_eq!(set.len(), 2);
    run_bounded(first_started.recv()).unwrap();
    {
        let mut ready = pin!(set.ready());
        assert!(block_on(poll_once(ready.as_mut())).is_none(), "full");
    }
    release_first.try_send(()).unwrap();
    assert_eq!(run_bounded(set.join()).unwrap(), [1, 2]);
    assert_eq!(
        *events.lock().unwrap(),
        ["first starts", "first ends", "second starts"]
    );
}

#[test]
#[should_panic(expected = "before TaskSet::spawner")]
fn with_limit_after_spawner_panics() {
    let set = TaskSet::<(), String>::new();
    let _spawner = set.spawner();
    let _ = set.with_limit(2);
}

#[test]
fn a_spawned_child_that_panics_fails_the_set_by_name() {
    let pool = Pool::start(2);
    let mut set = TaskSet::<(), String>::new();
    let spawner = set.spawner();
    let ex = pool.executor().clone();
    set.build_task()
        .spawn_on(&pool, async move {
            spawner
                .build_task()
                .name("child")
                .spawn_on(&ex, async { panic!("child exploded") })
                .map_err(|e| e.to_string())
        })
        .unwrap();
    let error = run_bounded(set.join()).unwrap_err();
    assert_eq!(error.to_string(), "child panicked: child exploded");
    assert!(matches!(&error, TaskError::Panicked { task, .. } if task == "child"));
    assert_eq!(
        error.into_panic().downcast_ref::<&str>(),
        Some(&"child exploded")
    );
    pool.stop();
}

#[test]
fn spawners_are_send_sync_static_and_clone() {
    fn check<S: Send + Sync + Clone + 'static>(_: &S) {}
    check(&TaskSet::<u32, std::io::Error>::new().spawner());
}
