//! Waiting: `wait()` and `wait_timeout()` on a drained group, and round
//! trips that hand a guard to another thread (task) and wait until it drops
//! (with and without a timeout), against a bare load, a park/unpark round
//! trip, `TaskTracker::wait` and tokio's `timeout`.

use std::future::Future;
use std::hint::black_box;
use std::pin::pin;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::Poll;
use std::thread;
use std::time::Duration;

use futures_lite::future::block_on;
use smol_graceful::{Group, Guard};
use tokio_util::task::task_tracker::TaskTrackerToken;
use tokio_util::task::TaskTracker;

use super::{at_most, at_most_p50_p99, vs, Spec};
use crate::fixtures::{
    local_ping_pong, noop_cx, tokio_ping_pong, Fixtures, Handed, Mailbox, Msg, Unpark,
};
use crate::harness::{batches, body, laps, time, Body};

/// The timeout of the `_timeout` rows: long enough never to fire.
const TIMEOUT: Duration = Duration::from_secs(3600);

pub static WAIT_READY: Spec = Spec::new(
    "wait_ready",
    1,
    "build and poll one Group::wait on a drained group",
    wait_ready,
)
.against(&[at_most(0.15, &TT_WAIT_READY), vs(&LOAD_ACQUIRE)]);

static TT_WAIT_READY: Spec = Spec::new(
    "tt_wait_ready",
    1,
    "build and poll one TaskTracker::wait on a closed, empty tracker",
    tt_wait_ready,
);

static LOAD_ACQUIRE: Spec = Spec::new(
    "load_acquire",
    1,
    "one acquire load of an AtomicBool",
    load_acquire,
);

pub static WAIT_TIMEOUT_READY: Spec = Spec::new(
    "wait_timeout_ready",
    1,
    "build and poll one Group::wait_timeout(1 h) on a drained group (ready at \
     the first poll)",
    wait_timeout_ready,
)
.against(&[at_most(2.0, &WAIT_READY)]);

pub static WAKE_RT: Spec = Spec::new(
    "wake_rt",
    1,
    "one round trip: new group, hand a guard to a helper thread, block_on(wait()) \
     until it drops",
    wake_rt,
)
.latency()
.against(&[at_most(1.1, &PARK_UNPARK_RT), vs(&TT_WAKE_RT)]);

static PARK_UNPARK_RT: Spec = Spec::new(
    "park_unpark_rt",
    1,
    "one round trip: hand a flag to the same helper thread, park until it sets the \
     flag and unparks",
    park_unpark_rt,
)
.latency();

static TT_WAKE_RT: Spec = Spec::new(
    "tt_wake_rt",
    1,
    "wake_rt with a new TaskTracker and its token",
    tt_wake_rt,
)
.latency();

pub static WAKE_RT_LOCAL: Spec = Spec::new(
    "wake_rt_local",
    1,
    "one round trip on one LocalExecutor: new group, send a guard to another task, \
     await wait() until that task drops it",
    wake_rt_local,
)
.latency()
.against(&[at_most(1.0, &TT_WAKE_RT_LOCAL)]);

static TT_WAKE_RT_LOCAL: Spec = Spec::new(
    "tt_wake_rt_local",
    1,
    "wake_rt_local with a new TaskTracker and its token",
    tt_wake_rt_local,
)
.latency();

pub static WAKE_RT_LOCAL_TIMEOUT: Spec = Spec::new(
    "wake_rt_local_timeout",
    1,
    "wake_rt_local awaiting wait_timeout(1 h) instead of wait()",
    wake_rt_local_timeout,
)
.latency()
.against(&[
    at_most_p50_p99(1.3, &WAKE_RT_LOCAL),
    at_most(1.0, &TT_WAKE_RT_LOCAL_TIMEOUT),
]);

static TT_WAKE_RT_LOCAL_TIMEOUT: Spec = Spec::new(
    "tt_wake_rt_local_timeout",
    1,
    "tt_wake_rt_local awaiting tokio::time::timeout(1 h, tracker.wait()), on a \
     current-thread tokio runtime with its timer (a LocalSet)",
    tt_wake_rt_local_timeout,
)
.latency();

fn load_acquire(_: &Fixtures) -> Body {
    let flag = AtomicBool::new(true);
    body(move |n| {
        time(n, || {
            // Acquire: the load `wait_ready`'s fast path makes.
            black_box(black_box(&flag).load(Ordering::Acquire));
        })
    })
}

fn wait_ready(_: &Fixtures) -> Body {
    let group = Group::new();
    group.close();
    body(move |n| {
        let mut cx = noop_cx();
        time(n, || {
            let wait = pin!(black_box(&group).wait());
            assert!(black_box(wait.poll(&mut cx)).is_ready());
        })
    })
}

fn wait_timeout_ready(_: &Fixtures) -> Body {
    let group = Group::new();
    group.close();
    body(move |n| {
        let mut cx = noop_cx();
        time(n, || {
            let wait = pin!(black_box(&group).wait_timeout(TIMEOUT));
            assert!(matches!(black_box(wait.poll(&mut cx)), Poll::Ready(Ok(()))));
        })
    })
}

fn tt_wait_ready(_: &Fixtures) -> Body {
    let tracker = TaskTracker::new();
    tracker.close();
    body(move |n| {
        let mut cx = noop_cx();
        time(n, || {
            let wait = pin!(black_box(&tracker).wait());
            assert!(black_box(wait.poll(&mut cx)).is_ready());
        })
    })
}

fn park_unpark_rt(fx: &Fixtures) -> Body {
    let helper = fx.helper();
    let flag = Arc::new(AtomicBool::new(false));
    batches(move |n| {
        let me = thread::current();
        laps(n, || {
            // Relaxed: nobody reads the flag until the helper gets it
            // through the slot's lock.
            flag.store(false, Ordering::Relaxed);
            helper.hand(Handed::Unpark(Unpark {
                flag: Arc::clone(&flag),
                thread: me.clone(),
            }));
            // Acquire: pairs with the Release store in `Unpark::drop`.
            while !flag.load(Ordering::Acquire) {
                thread::park();
            }
        })
    })
}

fn wake_rt(fx: &Fixtures) -> Body {
    let helper = fx.helper();
    batches(move |n| {
        laps(n, || {
            let group = Group::new();
            helper.hand(Handed::Guard(group.add().unwrap()));
            block_on(group.wait());
        })
    })
}

fn tt_wake_rt(fx: &Fixtures) -> Body {
    let helper = fx.helper();
    batches(move |n| {
        laps(n, || {
            let tracker = TaskTracker::new();
            helper.hand(Handed::Token(tracker.token()));
            tracker.close();
            block_on(tracker.wait());
        })
    })
}

fn wake_rt_local(_: &Fixtures) -> Body {
    batches(|n| {
        local_ping_pong(n, |mailbox: Rc<Mailbox<Guard>>| async move {
            let group = Group::new();
            mailbox.send(Msg::Item(group.add().unwrap()));
            group.wait().await;
        })
    })
}

fn tt_wake_rt_local(_: &Fixtures) -> Body {
    batches(|n| {
        local_ping_pong(n, |mailbox: Rc<Mailbox<TaskTrackerToken>>| async move {
            let tracker = TaskTracker::new();
            mailbox.send(Msg::Item(tracker.token()));
            tracker.close();
            tracker.wait().await;
        })
    })
}

fn wake_rt_local_timeout(_: &Fixtures) -> Body {
    batches(|n| {
        local_ping_pong(n, |mailbox: Rc<Mailbox<Guard>>| async move {
            let group = Group::new();
            mailbox.send(Msg::Item(group.add().unwrap()));
            group.wait_timeout(TIMEOUT).await.unwrap();
        })
    })
}

fn tt_wake_rt_local_timeout(_: &Fixtures) -> Body {
    batches(|n| {
        tokio_ping_pong(n, |mailbox: Rc<Mailbox<TaskTrackerToken>>| async move {
            let tracker = TaskTracker::new();
            mailbox.send(Msg::Item(tracker.token()));
            tracker.close();
            tokio::time::timeout(TIMEOUT, tracker.wait()).await.unwrap();
        })
    })
}
