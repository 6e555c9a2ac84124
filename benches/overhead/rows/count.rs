//! Keeping the count: `Group::add` and its drop (with another guard held,
//! on N threads at once, named), a group's whole life, and `Group::new`,
//! against their floors (an `Arc` clone, a `Weak` upgrade, an atomic pair)
//! and a `TaskTracker`.

use std::future::Future;
use std::hint::black_box;
use std::pin::pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};

use smol_graceful::Group;
use tokio_util::task::TaskTracker;

use super::{at_most, vs, Spec};
use crate::fixtures::{noop_cx, Fixtures};
use crate::harness::{batches, body, time, Body};

pub static ADD_DROP: Spec = Spec::new(
    "add_drop",
    1,
    "one Group::add and its drop, with another guard held",
    add_drop,
)
.against(&[
    at_most(1.1, &WEAK_UPGRADE_DROP),
    at_most(0.6, &TT_TOKEN_DROP),
    vs(&ARC_CLONE_DROP),
    vs(&ATOMIC_PAIR),
]);

static WEAK_UPGRADE_DROP: Spec = Spec::new(
    "weak_upgrade_drop",
    1,
    "one Weak::upgrade and the drop of the Arc it returns, another Arc held (the \
     floor of add: a guard is a strong reference that fails once the group is \
     done)",
    weak_upgrade_drop,
);

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

pub static GROUP_NEW_DROP: Spec = Spec::new(
    "group_new_drop",
    1,
    "one Group::new and its drop",
    group_new_drop,
)
.against(&[
    at_most(1.5, &TT_NEW_DROP),
    vs(&TWO_ARC_FLOOR_NEW_DROP),
    vs(&SELF_ARC_NEW_DROP),
]);

static TT_NEW_DROP: Spec = Spec::new(
    "tt_new_drop",
    1,
    "one TaskTracker::new and its drop",
    tt_new_drop,
);

pub static LIFECYCLE: Spec = Spec::new(
    "lifecycle",
    1,
    "one group's life: Group::new, add, close, drop of that last guard (which \
     finishes the group), drop of the group",
    lifecycle,
)
.against(&[at_most(1.2, &TT_LIFECYCLE), vs(&TWO_ARC_FLOOR_LIFECYCLE)]);

static TT_LIFECYCLE: Spec = Spec::new(
    "tt_lifecycle",
    1,
    "lifecycle with TaskTracker::new, token, close, drop of the token, drop",
    tt_lifecycle,
);

static TWO_ARC_FLOOR_NEW_DROP: Spec = Spec::new(
    "two_arc_floor_new_drop",
    1,
    "this design's floor, no group logic: a handle made with Arc::new_cyclic \
     holding a token Arc in a Mutex<Option<_>> and a Weak to it, the token \
     holding a Weak to the handle; made and dropped",
    two_arc_floor_new_drop,
);

static SELF_ARC_NEW_DROP: Spec = Spec::new(
    "self_arc_new_drop",
    1,
    "the one-allocation layout possible without unsafe, no group logic: one \
     Arc holding a strong reference to itself (the open group's own \
     reference) and a handle count, the handle a Weak; made and dropped",
    self_arc_new_drop,
);

static TWO_ARC_FLOOR_LIFECYCLE: Spec = Spec::new(
    "two_arc_floor_lifecycle",
    1,
    "two_arc_floor_new_drop's layout through a group's life: made, an upgrade \
     of the token (add), the Mutex's Arc taken and dropped (close), the \
     upgraded Arc dropped (its Drop upgrades the handle's Weak and stores a \
     flag: finish), dropped",
    two_arc_floor_lifecycle,
);

pub static ADD_NAMED: Spec = Spec::new(
    "add_named",
    1,
    "one Group::add_named(\"worker\") and its drop, with another guard held",
    add_named,
)
.against(&[vs(&ADD_DROP)]);

pub static ADD_DROP_XN: Spec = Spec::new(
    "add_drop_xN",
    1,
    "add_drop on each of N threads at once, one group: ns per op per thread, only \
     repetitions whose threads overlapped >= 90 % of their span",
    add_drop_xn,
)
.team()
.against(&[
    at_most(1.2, &ARC_CLONE_DROP_XN),
    at_most(0.8, &TT_TOKEN_DROP_XN),
    vs(&WEAK_UPGRADE_DROP_XN),
]);

static ARC_CLONE_DROP_XN: Spec = Spec::new(
    "arc_clone_drop_xN",
    1,
    "arc_clone_drop on each of N threads at once, one Arc (as add_drop_xN)",
    arc_clone_drop_xn,
)
.team();

static TT_TOKEN_DROP_XN: Spec = Spec::new(
    "tt_token_drop_xN",
    1,
    "tt_token_drop on each of N threads at once, one tracker (as add_drop_xN)",
    tt_token_drop_xn,
)
.team();

static WEAK_UPGRADE_DROP_XN: Spec = Spec::new(
    "weak_upgrade_drop_xN",
    1,
    "weak_upgrade_drop on each of N threads at once, one Weak (as add_drop_xN)",
    weak_upgrade_drop_xn,
)
.team();

pub static ADD_NAMED_XN: Spec = Spec::new(
    "add_named_xN",
    1,
    "add_named on each of N threads at once, one group (as add_drop_xN)",
    add_named_xn,
)
.team()
.against(&[vs(&ADD_DROP_XN)]);

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

fn weak_upgrade_drop(_: &Fixtures) -> Body {
    let arc = Arc::new(0u64);
    let weak = Arc::downgrade(&arc);
    body(move |n| {
        let _held = &arc;
        time(n, || drop(black_box(black_box(&weak).upgrade().unwrap())))
    })
}

fn add_drop(_: &Fixtures) -> Body {
    let group = Group::new();
    let held = group.add().unwrap();
    body(move |n| {
        let _held = &held;
        time(n, || drop(black_box(black_box(&group).add().unwrap())))
    })
}

fn tt_token_drop(_: &Fixtures) -> Body {
    let tracker = TaskTracker::new();
    let held = tracker.token();
    body(move |n| {
        let _held = &held;
        time(n, || drop(black_box(black_box(&tracker).token())))
    })
}

fn group_new_drop(_: &Fixtures) -> Body {
    body(|n| time(n, || drop(black_box(Group::new()))))
}

fn tt_new_drop(_: &Fixtures) -> Body {
    body(|n| time(n, || drop(black_box(TaskTracker::new()))))
}

fn lifecycle(_: &Fixtures) -> Body {
    check_lifecycle();
    body(|n| {
        time(n, || {
            let group = black_box(Group::new());
            let guard = black_box(group.add().unwrap());
            group.close();
            drop(guard);
            drop(group);
        })
    })
}

/// The path `lifecycle` names, checked once: after `close`, the group is
/// not done until the guard's drop, and that drop finishes it (a waiter
/// registered before it is woken and ready after it).
fn check_lifecycle() {
    let group = Group::new();
    let guard = group.add().unwrap();
    group.close();
    let mut wait = pin!(group.wait());
    let mut cx = noop_cx();
    assert!(
        wait.as_mut().poll(&mut cx).is_pending(),
        "done before the last drop"
    );
    drop(guard);
    assert!(
        group.is_empty(),
        "the last drop did not bring the count to zero"
    );
    assert!(
        wait.as_mut().poll(&mut cx).is_ready(),
        "the last drop did not finish"
    );
}

/// The handle of the two-allocation floor: what a `Group` is made of
/// (`src/group.rs`, `src/group/count.rs`) without its logic.
struct FloorHandle {
    open: Mutex<Option<Arc<FloorToken>>>,
    root: Weak<FloorToken>,
    done: AtomicBool,
}

/// The root token of the floor: its strong count is the count, and its
/// `Drop` reaches the handle through a `Weak`, as `Token::Root` does.
struct FloorToken(Weak<FloorHandle>);

impl Drop for FloorToken {
    fn drop(&mut self) {
        if let Some(handle) = self.0.upgrade() {
            // Release: the store `finish` makes.
            handle.done.store(true, Ordering::Release);
        }
    }
}

fn floor_new() -> Arc<FloorHandle> {
    Arc::new_cyclic(|handle| {
        let token = Arc::new(FloorToken(handle.clone()));
        FloorHandle {
            root: Arc::downgrade(&token),
            open: Mutex::new(Some(token)),
            done: AtomicBool::new(false),
        }
    })
}

fn two_arc_floor_new_drop(_: &Fixtures) -> Body {
    body(|n| time(n, || drop(black_box(floor_new()))))
}

fn two_arc_floor_lifecycle(_: &Fixtures) -> Body {
    body(|n| {
        time(n, || {
            let handle = black_box(floor_new());
            let guard = black_box(handle.root.upgrade().unwrap());
            let own = handle.open.lock().unwrap().take();
            drop(own);
            drop(guard);
            drop(handle);
        })
    })
}

/// The one-allocation layout: the open group's own reference is a strong
/// reference the allocation holds to itself, handles are `Weak`s with a
/// count, and the last handle (or a close) takes the self-reference out.
struct SelfArc {
    open: Mutex<Option<Arc<SelfArc>>>,
    handles: AtomicUsize,
}

struct SelfArcHandle(Weak<SelfArc>);

impl Drop for SelfArcHandle {
    fn drop(&mut self) {
        if let Some(inner) = self.0.upgrade() {
            // AcqRel: the last handle's drop must see every other handle's
            // drop, as a reference count's does.
            if inner.handles.fetch_sub(1, Ordering::AcqRel) == 1 {
                let own = inner.open.lock().unwrap().take();
                drop(own);
            }
        }
    }
}

fn self_arc_new() -> SelfArcHandle {
    let inner = Arc::new(SelfArc {
        open: Mutex::new(None),
        handles: AtomicUsize::new(1),
    });
    let handle = SelfArcHandle(Arc::downgrade(&inner));
    *inner.open.lock().unwrap() = Some(Arc::clone(&inner));
    handle
}

fn self_arc_new_drop(_: &Fixtures) -> Body {
    body(|n| time(n, || drop(black_box(self_arc_new()))))
}

fn tt_lifecycle(_: &Fixtures) -> Body {
    body(|n| {
        time(n, || {
            let tracker = black_box(TaskTracker::new());
            let token = black_box(tracker.token());
            tracker.close();
            drop(token);
            drop(tracker);
        })
    })
}

fn add_named(_: &Fixtures) -> Body {
    let group = Group::new();
    let held = group.add().unwrap();
    body(move |n| {
        let _held = &held;
        time(n, || {
            drop(black_box(black_box(&group).add_named("worker").unwrap()));
        })
    })
}

fn add_drop_xn(fx: &Fixtures) -> Body {
    let team = fx.team();
    let group = Group::new();
    let held = group.add().unwrap();
    batches(move |n| {
        let _held = &held;
        let group = group.clone();
        team.run(Arc::new(move || {
            for _ in 0..n {
                drop(black_box(black_box(&group).add().unwrap()));
            }
        }))
    })
}

fn add_named_xn(fx: &Fixtures) -> Body {
    let team = fx.team();
    let group = Group::new();
    let held = group.add().unwrap();
    batches(move |n| {
        let _held = &held;
        let group = group.clone();
        team.run(Arc::new(move || {
            for _ in 0..n {
                drop(black_box(black_box(&group).add_named("worker").unwrap()));
            }
        }))
    })
}

fn tt_token_drop_xn(fx: &Fixtures) -> Body {
    let team = fx.team();
    let tracker = TaskTracker::new();
    let held = tracker.token();
    batches(move |n| {
        let _held = &held;
        let tracker = tracker.clone();
        team.run(Arc::new(move || {
            for _ in 0..n {
                drop(black_box(black_box(&tracker).token()));
            }
        }))
    })
}

fn arc_clone_drop_xn(fx: &Fixtures) -> Body {
    let team = fx.team();
    let arc = Arc::new(0u64);
    batches(move |n| {
        let arc = Arc::clone(&arc);
        team.run(Arc::new(move || {
            for _ in 0..n {
                drop(black_box(Arc::clone(black_box(&arc))));
            }
        }))
    })
}

fn weak_upgrade_drop_xn(fx: &Fixtures) -> Body {
    let team = fx.team();
    let arc = Arc::new(0u64);
    let weak: Weak<u64> = Arc::downgrade(&arc);
    batches(move |n| {
        let _held = &arc;
        let weak = weak.clone();
        team.run(Arc::new(move || {
            for _ in 0..n {
                drop(black_box(black_box(&weak).upgrade().unwrap()));
            }
        }))
    })
}
