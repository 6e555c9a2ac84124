//! `TaskSet::spawner`: recursive fan-out (a crawler) while `join` waits,
//! the limit, closing, a spawner kept alive after `join`, panics.
//!
//! Every wait is bounded; tasks wait on channels the test controls.
#![cfg(feature = "smol")]

mod common;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use common::pool::Pool;
use common::run_bounded;
use smol::{channel, Executor};
use smol_graceful::{Spawner, TaskSet, TaskSetClosed, TrySpawnError};

type Page = Pin<Box<dyn Future<Output = Result<u32, String>> + Send>>;

/// Page `n` links to `2n` and `2n + 1`, below `limit`.
fn crawl(ex: Arc<Executor<'static>>, spawner: Spawner<u32, String>, n: u32, limit: u32) -> Page {
    Box::pin(async move {
        for link in [2 * n, 2 * n + 1] {
            if link < limit {
                let child = crawl(ex.clone(), spawner.clone(), link, limit);
                spawner
                    .spawn_named(format!("page {link}"), &ex, child)
                    .await
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
    // No limit: a task waiting for a slot to spawn its children holds its
    // own, so a limited recursive fan-out can deadlock (as in Go).
    let mut set = TaskSet::new();
    let root = crawl(pool.executor().clone(), set.spawner(), 1, PAGES);
    run_bounded(set.spawn_named("page 1", &pool, root)).unwrap();
    // `join` closes the set at once; the pages still add their links.
    let mut pages = run_bounded(set.join()).unwrap();
    pages.sort_unstable();
    assert_eq!(pages, (1..PAGES).collect::<Vec<_>>());
    pool.stop();
}

#[test]
fn the_sets_own_methods_stay_closed_once_join_was_called() {
    let ex = Executor::new();
    let mut set = TaskSet::<(), String>::new();
    let (_open, wait) = channel::bounded::<()>(1);
    set.try_spawn(&ex, async move {
        let _ = wait.recv().await;
        Ok(())
    })
    .unwrap();
    drop(set.join());
    // A task still runs: a spawner may add work, the set itself may not.
    assert_eq!(set.try_reserve().unwrap_err(), TrySpawnError::Closed);
    let spawner = set.spawner();
    assert!(!spawner.is_closed());
    spawner.try_spawn(&ex, async { Ok(()) }).unwrap();
    assert_eq!(set.len(), 2);
}

#[test]
fn a_spawner_kept_alive_does_not_hold_up_join_and_is_closed_after() {
    let ex = Executor::new();
    let mut set = TaskSet::<u8, String>::new();
    let spawner = set.spawner();
    let kept = spawner.clone();
    run_bounded(ex.run(async {
        spawner.spawn(&ex, async { Ok(1) }).await.unwrap();
        assert_eq!(set.join().await.unwrap(), [1]);
    }));
    assert!(kept.is_closed());
    assert_eq!(
        run_bounded(kept.spawn(&ex, async { Ok(2) })).unwrap_err(),
        TaskSetClosed
    );
    assert_eq!(
        kept.try_spawn(&ex, async { Ok(2) }),
        Err(TrySpawnError::Closed)
    );
    assert_eq!(
        run_bounded(kept.track(async { Ok(2) })).unwrap_err(),
        TaskSetClosed
    );
    assert_eq!(
        run_bounded(kept.spawn_blocking(|| Ok(2))).unwrap_err(),
        TaskSetClosed
    );
}

#[test]
fn a_spawner_obeys_the_limit() {
    let set = TaskSet::<(), String>::new().with_limit(1);
    let spawner = set.spawner();
    let held = spawner.try_reserve().unwrap();
    assert_eq!(spawner.try_reserve().unwrap_err(), TrySpawnError::Full);
    assert_eq!(set.try_reserve().unwrap_err(), TrySpawnError::Full);
    drop(held);
    assert!(spawner.try_reserve().is_ok());
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
    run_bounded(set.spawn(&pool, async move {
        spawner
            .spawn_named("child", &ex, async { panic!("child exploded") })
            .await
            .map_err(|e| e.to_string())
    }))
    .unwrap();
    let error = run_bounded(set.join()).unwrap_err();
    assert_eq!(
        (error.task(), error.panic_message()),
        ("child", Some("child exploded"))
    );
    pool.stop();
}

#[test]
fn spawners_are_send_sync_static_and_clone() {
    fn check<S: Send + Sync + Clone + 'static>(_: &S) {}
    check(&TaskSet::<u32, std::io::Error>::new().spawner());
}
