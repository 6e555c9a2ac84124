//! The shutdown signal: a trigger that 1k to 100k tasks wait on, the cost
//! of subscribing (a polled `triggered()` future), and child scopes made and
//! dropped among many live siblings, against tokio-util's
//! `CancellationToken`.

use std::cell::Cell;
use std::future::Future;
use std::hint::black_box;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use smol::LocalExecutor;
use smol_graceful::Shutdown;
use tokio_util::sync::CancellationToken;

use super::{at_most, vs, Spec};
use crate::fixtures::{noop_cx, Fixtures};
use crate::harness::{body, time, Body};

/// Live siblings kept while `child_drop_131k` makes and drops one more child.
const LIVE_CHILDREN: usize = 131_071;

/// Futures made and polled per iteration of the subscribe rows.
const SUBSCRIBERS: u64 = 1_000;

/// A trigger and the cancel it is held to, for one number of waiters.
macro_rules! trigger_rows {
    ($n:literal, $label:literal, $text:literal, $ours:ident, $ct:ident) => {
        pub static $ours: Spec = Spec::new(
            concat!("shutdown_trigger_", $label),
            1,
            concat!(
                "one Shutdown::trigger, until all ",
                $text,
                " tasks awaiting triggered() on one LocalExecutor have run \
                 (setup not timed)"
            ),
            shutdown_trigger::<$n>,
        )
        .against(&[at_most(1.0, &$ct)]);

        static $ct: Spec = Spec::new(
            concat!("ct_cancel_", $label),
            1,
            concat!(
                "shutdown_trigger_",
                $label,
                " with CancellationToken::cancel and cancelled()"
            ),
            ct_cancel::<$n>,
        );
    };
}

trigger_rows!(1_000, "1k", "1,000", SHUTDOWN_TRIGGER_1K, CT_CANCEL_1K);
trigger_rows!(10_000, "10k", "10,000", SHUTDOWN_TRIGGER_10K, CT_CANCEL_10K);
trigger_rows!(
    100_000,
    "100k",
    "100,000",
    SHUTDOWN_TRIGGER_100K,
    CT_CANCEL_100K
);

pub static SHUTDOWN_TRIGGER_AFTER_1K: Spec = Spec::new(
    "shutdown_trigger_after_1k",
    1,
    "one Shutdown::trigger, until all 1,000 callbacks registered with \
     after_trigger have run (each on smol's blocking pool, as the API promises; \
     the last one unparks the timing thread; registering is not timed). No \
     target: tokio-util has no AfterFunc; shutdown_trigger_1k is the same \
     trigger reaching 1,000 waiting tasks instead",
    shutdown_trigger_after::<1_000>,
)
.against(&[vs(&SHUTDOWN_TRIGGER_1K)]);

pub static SUBSCRIBE_1K: Spec = Spec::new(
    "subscribe_1k",
    SUBSCRIBERS,
    "one of 1,000 Shutdown::triggered() futures on one untriggered shutdown: \
     boxed, pinned and polled once (pending, so subscribed); dropping them is not \
     timed",
    subscribe_1k,
)
.against(&[vs(&CT_SUBSCRIBE_1K)]);

static CT_SUBSCRIBE_1K: Spec = Spec::new(
    "ct_subscribe_1k",
    SUBSCRIBERS,
    "subscribe_1k with CancellationToken::cancelled()",
    ct_subscribe_1k,
);

pub static CHILD_DROP_131K: Spec = Spec::new(
    "child_drop_131k",
    1,
    "make one child scope (Shutdown::child) and drop it, while 131,071 siblings \
     are alive (no target: a child costs the same at any number of siblings)",
    child_drop_131k,
)
.against(&[vs(&CHILD_DROP), vs(&CT_CHILD_DROP_131K)]);

static CHILD_DROP: Spec = Spec::new(
    "child_drop",
    1,
    "make one child scope and drop it, no sibling alive",
    child_drop,
);

static CT_CHILD_DROP_131K: Spec = Spec::new(
    "ct_child_drop_131k",
    1,
    "make one CancellationToken::child_token and drop it, while 131,071 siblings \
     are alive",
    ct_child_drop_131k,
);

/// `waiters` tasks on a `LocalExecutor` each await `wait(signal)`; timed
/// from `fire(signal)` until all of them have run to completion.
fn broadcast<S: Clone + 'static, W: Future<Output = ()>>(
    iters: u64,
    waiters: usize,
    ex: &LocalExecutor<'static>,
    new: impl Fn() -> S,
    wait: impl Fn(S) -> W + Copy + 'static,
    fire: impl Fn(&S),
) -> Duration {
    let mut total = Duration::ZERO;
    for _ in 0..iters {
        let signal = new();
        let woken = Rc::new(Cell::new(0usize));
        for _ in 0..waiters {
            let (signal, woken) = (signal.clone(), Rc::clone(&woken));
            ex.spawn(async move {
                wait(signal).await;
                woken.set(woken.get() + 1);
            })
            .detach();
        }
        while ex.try_tick() {}
        assert_eq!(woken.get(), 0, "a waiter finished before the trigger");
        let start = Instant::now();
        fire(&signal);
        while ex.try_tick() {}
        total += start.elapsed();
        assert_eq!(woken.get(), waiters, "a waiter did not wake");
    }
    total
}

fn shutdown_trigger<const N: usize>(_: &Fixtures) -> Body {
    let ex = LocalExecutor::new();
    body(move |n| {
        broadcast(
            n,
            N,
            &ex,
            Shutdown::new,
            |s: Shutdown| async move { s.triggered().await },
            |s| {
                s.trigger();
            },
        )
    })
}

fn shutdown_trigger_after<const N: usize>(_: &Fixtures) -> Body {
    body(move |n| {
        let mut total = Duration::ZERO;
        for _ in 0..n {
            let shutdown = Shutdown::new();
            let left = Arc::new(AtomicUsize::new(N));
            let me = std::thread::current();
            for _ in 0..N {
                let (left, me) = (Arc::clone(&left), me.clone());
                shutdown.after_trigger(move || {
                    // AcqRel: the last callback's decrement is seen by the
                    // timing thread's Acquire load after it unparks.
                    if left.fetch_sub(1, Ordering::AcqRel) == 1 {
                        me.unpark();
                    }
                });
            }
            let start = Instant::now();
            shutdown.trigger();
            // Acquire: pairs with the callbacks' AcqRel decrements.
            while left.load(Ordering::Acquire) != 0 {
                std::thread::park();
            }
            total += start.elapsed();
        }
        total
    })
}

fn ct_cancel<const N: usize>(_: &Fixtures) -> Body {
    let ex = LocalExecutor::new();
    body(move |n| {
        broadcast(
            n,
            N,
            &ex,
            CancellationToken::new,
            |t: CancellationToken| async move { t.cancelled().await },
            CancellationToken::cancel,
        )
    })
}

/// Times making `SUBSCRIBERS` futures with `make`, each boxed (they are
/// `!Unpin`; both rows box alike) and polled once, which must find it
/// pending: the subscription. The futures are dropped after the clock stops.
#[inline]
fn subscribe<'s, S, F: Future<Output = ()>>(
    iters: u64,
    signal: &'s S,
    make: impl Fn(&'s S) -> F,
) -> Duration {
    let mut cx = noop_cx();
    let mut held: Vec<Pin<Box<F>>> = Vec::with_capacity(SUBSCRIBERS as usize);
    let mut total = Duration::ZERO;
    for _ in 0..iters {
        let start = Instant::now();
        for _ in 0..SUBSCRIBERS {
            let mut fut = Box::pin(make(black_box(signal)));
            let pending = fut.as_mut().poll(&mut cx).is_pending();
            assert!(black_box(pending), "subscribed to a triggered signal");
            held.push(fut);
        }
        total += start.elapsed();
        held.clear();
    }
    total
}

fn subscribe_1k(_: &Fixtures) -> Body {
    let shutdown = Shutdown::new();
    body(move |n| subscribe(n, &shutdown, Shutdown::triggered))
}

fn ct_subscribe_1k(_: &Fixtures) -> Body {
    let token = CancellationToken::new();
    body(move |n| subscribe(n, &token, CancellationToken::cancelled))
}

/// Times `n` makes and drops of one child of `root`, `siblings` of them
/// alive meanwhile. `child` is a function item, not a pointer: the call is
/// direct and inlined, as in a hand-written loop.
fn churn<T: 'static>(root: T, siblings: usize, child: impl Fn(&T) -> T + 'static) -> Body {
    let live: Vec<T> = (0..siblings).map(|_| child(&root)).collect();
    body(move |n| {
        let _live = &live;
        time(n, || drop(black_box(child(black_box(&root)))))
    })
}

fn child_drop(_: &Fixtures) -> Body {
    churn(Shutdown::new(), 0, Shutdown::child)
}

fn child_drop_131k(_: &Fixtures) -> Body {
    churn(Shutdown::new(), LIVE_CHILDREN, Shutdown::child)
}

fn ct_child_drop_131k(_: &Fixtures) -> Body {
    let child_token = CancellationToken::child_token;
    churn(CancellationToken::new(), LIVE_CHILDREN, child_token)
}
