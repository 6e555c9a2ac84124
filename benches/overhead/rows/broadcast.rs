//! The shutdown signal: a trigger that 1,000 tasks wait on, and child scopes
//! made and dropped among many live siblings, against tokio-util's
//! `CancellationToken`.

use std::cell::Cell;
use std::future::Future;
use std::hint::black_box;
use std::rc::Rc;
use std::time::{Duration, Instant};

use smol::LocalExecutor;
use smol_graceful::Shutdown;
use tokio_util::sync::CancellationToken;

use super::{vs, Spec};
use crate::fixtures::Fixtures;
use crate::harness::{body, time, Body};

/// Tasks waiting on the signal in the `_1k` rows.
const WAITERS: usize = 1_000;

/// Live siblings kept while `child_drop_131k` makes and drops one more child.
const LIVE_CHILDREN: usize = 131_071;

pub static SHUTDOWN_TRIGGER_1K: Spec = Spec::new(
    "shutdown_trigger_1k",
    1,
    "one Shutdown::trigger, until all 1,000 tasks awaiting triggered() on one \
     LocalExecutor have run (setup not timed)",
    shutdown_trigger_1k,
)
.against(&[vs(&CT_CANCEL_1K)]);

static CT_CANCEL_1K: Spec = Spec::new(
    "ct_cancel_1k",
    1,
    "shutdown_trigger_1k with CancellationToken::cancel and cancelled()",
    ct_cancel_1k,
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

/// `WAITERS` tasks on a `LocalExecutor` each await `wait(signal)`; timed
/// from `fire(signal)` until all of them have run to completion.
fn broadcast<S: Clone + 'static, W: Future<Output = ()>>(
    iters: u64,
    ex: &LocalExecutor<'static>,
    new: impl Fn() -> S,
    wait: impl Fn(S) -> W + Copy + 'static,
    fire: impl Fn(&S),
) -> Duration {
    let mut total = Duration::ZERO;
    for _ in 0..iters {
        let signal = new();
        let woken = Rc::new(Cell::new(0usize));
        for _ in 0..WAITERS {
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
        assert_eq!(woken.get(), WAITERS, "a waiter did not wake");
    }
    total
}

fn shutdown_trigger_1k(_: &Fixtures) -> Body {
    let ex = LocalExecutor::new();
    body(move |n| {
        broadcast(
            n,
            &ex,
            Shutdown::new,
            |s: Shutdown| async move { s.triggered().await },
            |s| {
                s.trigger();
            },
        )
    })
}

fn ct_cancel_1k(_: &Fixtures) -> Body {
    let ex = LocalExecutor::new();
    body(move |n| {
        broadcast(
            n,
            &ex,
            CancellationToken::new,
            |t: CancellationToken| async move { t.cancelled().await },
            CancellationToken::cancel,
        )
    })
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
