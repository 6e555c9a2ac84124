//! Keeping the count: `Group::add` and its drop (with another guard held,
//! with none, on two threads at once) and `add_named`, against an `Arc`
//! clone, an atomic pair and a `TaskTracker` token.

use std::hint::black_box;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use smol_graceful::Group;
use tokio_util::task::TaskTracker;

use super::{at_most, below, vs, Spec};
use crate::fixtures::Fixtures;
use crate::harness::{body, time, Body};

pub static ADD_DROP: Spec = Spec::new(
    "add_drop",
    1,
    "one Group::add and its drop, with another guard held",
    add_drop,
)
.against(&[
    at_most(1.3, &ARC_CLONE_DROP),
    below(1.0, &TT_TOKEN_DROP),
    vs(&ATOMIC_PAIR),
]);

static ARC_CLONE_DROP: Spec = Spec::new(
    "arc_clone_drop",
    1,
    "one Arc::clone and its drop",
    arc_clone_drop,
);

static TT_TOKEN_DROP: Spec = Spec::new(
    "tt_token_drop",
    1,
    "one TaskTracker::token and its drop, with another token held",
    tt_token_drop,
);

static ATOMIC_PAIR: Spec = Spec::new(
    "atomic_pair",
    1,
    "one relaxed fetch_add and one release fetch_sub on an AtomicUsize",
    atomic_pair,
);

pub static ADD_DROP_LAST: Spec = Spec::new(
    "add_drop_last",
    1,
    "one Group::add and its drop, no other guard held (the open group's own \
     reference keeps the count above one: the last-guard path is not taken)",
    add_drop_last,
)
.against(&[
    at_most(2.0, &ARC_CLONE_DROP),
    at_most(0.6, &TT_TOKEN_DROP_LAST),
]);

static TT_TOKEN_DROP_LAST: Spec = Spec::new(
    "tt_token_drop_last",
    1,
    "one TaskTracker::token and its drop, no other token held",
    tt_token_drop_last,
);

pub static ADD_DROP_X2: Spec = Spec::new(
    "add_drop_x2",
    2,
    "one Group::add and its drop on each of two threads at once: wall time / ops \
     of both threads",
    add_drop_x2,
)
.against(&[at_most(1.0, &TT_TOKEN_DROP_X2), vs(&ARC_CLONE_DROP_X2)]);

static TT_TOKEN_DROP_X2: Spec = Spec::new(
    "tt_token_drop_x2",
    2,
    "tt_token_drop on each of two threads at once: wall time / ops of both threads",
    tt_token_drop_x2,
);

static ARC_CLONE_DROP_X2: Spec = Spec::new(
    "arc_clone_drop_x2",
    2,
    "arc_clone_drop on each of two threads at once: wall time / ops of both threads",
    arc_clone_drop_x2,
);

pub static STRAGGLERS_NAMED: Spec = Spec::new(
    "stragglers_named",
    1,
    "one Group::add_named and its drop, with another guard held",
    stragglers_named,
)
.against(&[vs(&ADD_DROP)]);

fn atomic_pair(_: &Fixtures) -> Body {
    let count = AtomicUsize::new(1);
    body(move |n| {
        time(n, || {
            let c = black_box(&count);
            // The orderings a reference count uses: what this row stands for.
            c.fetch_add(1, Ordering::Relaxed);
            c.fetch_sub(1, Ordering::Release);
        })
    })
}

fn arc_clone_drop(_: &Fixtures) -> Body {
    let arc = Arc::new(0u64);
    body(move |n| time(n, || drop(black_box(Arc::clone(black_box(&arc))))))
}

fn add_drop(_: &Fixtures) -> Body {
    let group = Group::new();
    let held = group.add().unwrap();
    body(move |n| {
        let _held = &held;
        time(n, || drop(black_box(black_box(&group).add().unwrap())))
    })
}

fn add_drop_last(_: &Fixtures) -> Body {
    let group = Group::new();
    body(move |n| time(n, || drop(black_box(black_box(&group).add().unwrap()))))
}

fn tt_token_drop(_: &Fixtures) -> Body {
    let tracker = TaskTracker::new();
    let held = tracker.token();
    body(move |n| {
        let _held = &held;
        time(n, || drop(black_box(black_box(&tracker).token())))
    })
}

fn tt_token_drop_last(_: &Fixtures) -> Body {
    let tracker = TaskTracker::new();
    body(move |n| time(n, || drop(black_box(black_box(&tracker).token()))))
}

fn add_drop_x2(fx: &Fixtures) -> Body {
    let twins = fx.twins();
    let group = Group::new();
    let held = group.add().unwrap();
    body(move |n| {
        let _held = &held;
        let group = group.clone();
        twins.run(Arc::new(move || {
            for _ in 0..n {
                drop(black_box(black_box(&group).add().unwrap()));
            }
        }))
    })
}

fn tt_token_drop_x2(fx: &Fixtures) -> Body {
    let twins = fx.twins();
    let tracker = TaskTracker::new();
    let held = tracker.token();
    body(move |n| {
        let _held = &held;
        let tracker = tracker.clone();
        twins.run(Arc::new(move || {
            for _ in 0..n {
                drop(black_box(black_box(&tracker).token()));
            }
        }))
    })
}

fn arc_clone_drop_x2(fx: &Fixtures) -> Body {
    let twins = fx.twins();
    let arc = Arc::new(0u64);
    body(move |n| {
        let arc = Arc::clone(&arc);
        twins.run(Arc::new(move || {
            for _ in 0..n {
                drop(black_box(Arc::clone(black_box(&arc))));
            }
        }))
    })
}

fn stragglers_named(_: &Fixtures) -> Body {
    let group = Group::new();
    let held = group.add().unwrap();
    body(move |n| {
        let _held = &held;
        time(n, || {
            drop(black_box(black_box(&group).add_named("worker").unwrap()));
        })
    })
}
