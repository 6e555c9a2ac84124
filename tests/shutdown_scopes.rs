//! Child scopes: every live scope hears every ancestor's trigger, whoever
//! holds the scopes in between; deep chains trigger and drop without deep
//! recursion; many live children keep `child()` cheap.

mod common;

use std::pin::pin;
use std::sync::mpsc;
use std::task::Poll;
use std::time::Duration;

use common::waker::FlagWaker;
use smol_graceful::{Reason, Shutdown};

/// A pool scope made by a helper that returns only its workers' scopes: the
/// pool's own handle is dropped when the helper returns.
fn worker_scopes(service: &Shutdown, workers: usize) -> Vec<Shutdown> {
    let pool = service.child();
    (0..workers).map(|_| pool.child()).collect()
}

#[test]
fn a_grandchild_hears_the_root_through_a_dropped_middle_scope() {
    let root = Shutdown::new();
    let grandchild = root.child().child(); // the middle scope is a temporary
    let waker = FlagWaker::new();
    let mut triggered = pin!(grandchild.triggered());
    assert!(waker.poll(triggered.as_mut()).is_pending());
    root.trigger_with(Reason::Signal(15));
    assert!(grandchild.is_triggered());
    assert!(waker.take_woken(), "the grandchild's waiter was woken");
    assert!(waker.poll(triggered.as_mut()).is_ready());
    assert!(matches!(grandchild.reason(), Some(Reason::Signal(15))));
}

#[test]
fn every_worker_scope_returned_by_a_helper_hears_the_service() {
    let service = Shutdown::new();
    let workers = worker_scopes(&service, 4);
    let waker = FlagWaker::new();
    let mut waits: Vec<_> = workers.iter().map(|w| Box::pin(w.triggered())).collect();
    for wait in &mut waits {
        assert!(waker.poll(wait.as_mut()).is_pending());
    }
    service.trigger();
    assert!(waker.take_woken());
    let heard = waits
        .iter_mut()
        .map(|wait| waker.poll(wait.as_mut()))
        .filter(Poll::is_ready)
        .count();
    assert_eq!(heard, 4, "workers that saw the service's trigger");
}

#[test]
fn a_scope_hears_its_ancestors_whatever_order_the_others_are_dropped_in() {
    // A chain root -> a -> b -> c with a sibling d under a. Whichever of the
    // other handles is dropped first, each scope still alive when the root
    // triggers hears it.
    let orders = [
        [0, 1, 2],
        [0, 2, 1],
        [1, 0, 2],
        [1, 2, 0],
        [2, 0, 1],
        [2, 1, 0],
    ];
    for order in orders {
        for keep in 0..4 {
            let root = Shutdown::new();
            let a = root.child();
            let b = a.child();
            let c = b.child();
            let d = a.child();
            let mut scopes: Vec<Option<Shutdown>> = vec![Some(a), Some(b), Some(c), Some(d)];
            let kept = scopes[keep].take().unwrap();
            let others: Vec<usize> = (0..4).filter(|&i| i != keep).collect();
            for &i in &order {
                scopes[others[i]] = None;
            }
            root.trigger();
            assert!(kept.is_triggered(), "scope {keep} after drops {order:?}");
        }
    }
}

#[cfg(feature = "smol")]
#[test]
fn a_task_set_under_a_temporary_child_hears_the_service() {
    let service = Shutdown::new();
    let set = smol_graceful::TaskSet::<(), std::io::Error>::with_parent(&service.child());
    let mut stop = pin!(set.shutdown().triggered());
    let waker = FlagWaker::new();
    assert!(waker.poll(stop.as_mut()).is_pending());
    service.trigger();
    assert!(waker.take_woken());
    assert!(set.shutdown().is_triggered());
}

#[test]
fn a_child_of_a_triggered_scope_created_concurrently_with_the_trigger_hears_it() {
    for _ in 0..200 {
        let root = Shutdown::new();
        let middle = root.child();
        let (tx, rx) = mpsc::channel();
        let maker = std::thread::spawn({
            let middle = middle.clone();
            move || {
                let leaf = middle.child();
                drop(middle);
                tx.send(leaf).unwrap();
            }
        });
        drop(middle);
        root.trigger();
        let leaf = rx.recv_timeout(Duration::from_secs(5)).unwrap();
        maker.join().unwrap();
        assert!(leaf.is_triggered());
    }
}

/// Runs `f` on a thread with a 256 KiB stack; a stack overflow aborts the
/// test binary, which fails the run.
fn on_small_stack(f: impl FnOnce() + Send + 'static) {
    std::thread::Builder::new()
        .stack_size(256 * 1024)
        .spawn(f)
        .unwrap()
        .join()
        .unwrap();
}

const DEPTH: usize = 20_000;

#[test]
fn a_deep_chain_held_by_its_leaf_triggers_and_drops_on_a_small_stack() {
    on_small_stack(|| {
        let root = Shutdown::new();
        let mut leaf = root.child();
        for _ in 1..DEPTH {
            leaf = leaf.child(); // drops the previous handle
        }
        root.trigger();
        assert!(leaf.is_triggered());
        drop(leaf); // unlinks 20,000 scopes
        drop(root);
    });
}

#[test]
fn a_deep_chain_held_whole_triggers_from_the_root_and_drops_in_either_order() {
    for leaf_first in [false, true] {
        on_small_stack(move || {
            let root = Shutdown::new();
            let mut chain = vec![root.child()];
            for _ in 1..DEPTH {
                let next = chain.last().unwrap().child();
                chain.push(next);
            }
            let mut leaf_wait = pin!(chain[DEPTH - 1].triggered());
            let waker = FlagWaker::new();
            assert!(waker.poll(leaf_wait.as_mut()).is_pending());
            root.trigger();
            assert!(chain.iter().all(Shutdown::is_triggered));
            assert!(waker.take_woken());
            assert!(waker.poll(leaf_wait.as_mut()).is_ready());
            if leaf_first {
                chain.reverse();
            }
            drop(chain);
        });
    }
}

#[test]
fn a_deep_chain_triggered_from_its_middle_stops_at_nothing_below() {
    on_small_stack(|| {
        let root = Shutdown::new();
        let mut chain = vec![root.child()];
        for _ in 1..DEPTH {
            let next = chain.last().unwrap().child();
            chain.push(next);
        }
        chain[DEPTH / 2].trigger_with(Reason::error("middle"));
        assert!(!chain[DEPTH / 2 - 1].is_triggered(), "never upward");
        assert!(chain[DEPTH - 1].is_triggered());
        root.trigger();
        assert!(chain.iter().all(Shutdown::is_triggered));
        // The lower half keeps the middle's reason.
        assert!(matches!(chain[DEPTH - 1].reason(), Some(Reason::Error(_))));
        assert!(matches!(chain[0].reason(), Some(Reason::Requested)));
    });
}

#[test]
fn a_short_lived_child_reuses_a_slot_among_many_live_ones() {
    let root = Shutdown::new();
    let live: Vec<Shutdown> = (0..131_071).map(|_| root.child()).collect();
    for _ in 0..100_000 {
        let scope = root.child();
        assert!(!scope.is_triggered());
    }
    let waker = FlagWaker::new();
    let mut last = pin!(live[131_070].triggered());
    assert_eq!(waker.poll(last.as_mut()), Poll::Pending);
    root.trigger();
    assert!(live.iter().all(Shutdown::is_triggered));
    assert!(waker.take_woken());
}

#[test]
fn a_hundred_thousand_waiters_on_children_are_all_woken() {
    let root = Shutdown::new();
    let children: Vec<Shutdown> = (0..100_000).map(|_| root.child()).collect();
    let waker = FlagWaker::new();
    let mut waits: Vec<_> = children.iter().map(|c| Box::pin(c.triggered())).collect();
    for wait in &mut waits {
        assert!(waker.poll(wait.as_mut()).is_pending());
    }
    root.trigger();
    assert!(waker.take_woken());
    assert!(waits.iter_mut().all(|w| waker.poll(w.as_mut()).is_ready()));
}
