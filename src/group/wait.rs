//! How the waiters of a [`Group`](super::Group) are woken, and the wait
//! futures.
//!
//! The first async waiter parks its [`Waker`] in a slot behind a small lock;
//! later async waiters and blocking waiters listen on an
//! [`event_listener::Event`], after marking under the same lock that someone
//! listens. `finish` sets `done`, then takes that lock: every waiter either
//! registered before (and is woken) or locks after and sees `done`. A group
//! with one waiter therefore allocates nothing to wait, and one nobody
//! listens to skips `Event::notify`.
//!
//! Waiting is always: check `done`, register (the slot or a listener),
//! check again, then sleep; the comments at each step say why no wakeup can
//! be lost.

use std::fmt;
use std::future::Future;
use std::mem::ManuallyDrop;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};
#[cfg(feature = "smol")]
use std::time::Instant;

use event_listener::{Event, EventListener, Listener};

use super::Group;
use crate::stragglers::Registry;
#[cfg(feature = "smol")]
use crate::stragglers::Stragglers;
use crate::sync::{lock, AtomicBool, Mutex, MutexGuard, Ordering};

/// Shared between the handles, the root token and named guards.
#[derive(Default)]
pub(crate) struct Shared {
    /// True once the root token has dropped: closed, and every guard gone.
    done: AtomicBool,
    /// Who waits, and how to wake them: see [`Waiters`].
    waiters: Mutex<Waiters>,
    /// Notified once, when `done` becomes true, if anyone listens: blocking
    /// waiters, and async waiters that found the first-waiter slot taken.
    event: Event,
    /// The live named guards.
    pub(super) registry: Registry,
}

/// The waiters of a group, as `finish` needs to know them.
///
/// Most groups have one waiter. The first async waiter parks its waker here,
/// which spares it the allocations of an event listener, and a group nobody
/// listens to skips `Event::notify` (and its full fence) when it finishes.
#[derive(Default)]
struct Waiters {
    /// A [`Wait`] owns the first-waiter slot (until it is dropped).
    first_taken: bool,
    /// The slot owner's waker, once it has polled and found the group not
    /// done. Taken once, by `finish`.
    first: Option<Waker>,
    /// Someone has listened (or is about to listen) on `Shared::event`.
    listening: bool,
}

impl Shared {
    /// Called once, by the root token's `Drop`: every guard is gone.
    pub(super) fn finish(&self) {
        // Release: a waiter that reads `done == true` with Acquire also sees
        // every write the guard holders made before dropping their guards
        // (those happen-before this `Drop` through `Arc`'s release decrement
        // and acquire fence).
        // (Planted bug for tests/loom.rs: Relaxed, which loom must catch.)
        let order = if cfg!(smol_graceful_bug = "relaxed_done") {
            Ordering::Relaxed
        } else {
            Ordering::Release
        };
        self.done.store(true, order);
        // Waiters register under this lock, after which they read `done`,
        // so one of the two sides sees the other: either the waiter locked
        // first (and we see its waker or its `listening` mark here), or it
        // locks after our unlock and then reads `done == true` (our store is
        // sequenced before our lock, which happens-before its lock).
        let (first, listening) = {
            let mut waiters = lock(&self.waiters);
            (waiters.first.take(), waiters.listening)
        };
        if listening {
            // `notify` starts with a full fence, so a waiter that registered
            // its listener before this point is woken, and one that registers
            // after it sees `done == true` on its re-check.
            self.event.notify(usize::MAX);
        }
        // Last: a waker is executor code and may panic; the listeners have
        // been notified by then, so the panic costs no other waiter its
        // wakeup.
        if let Some(waker) = first {
            waker.wake();
        }
    }

    /// Registers a listener on `event`, after marking that someone listens
    /// (so that `finish` notifies). The caller re-checks `done` afterwards.
    pub(super) fn listen(&self) -> EventListener {
        self.listen_locked(lock(&self.waiters))
    }

    /// [`listen`](Self::listen), for a caller that already holds the lock.
    fn listen_locked(&self, mut waiters: MutexGuard<'_, Waiters>) -> EventListener {
        waiters.listening = true;
        drop(waiters);
        self.event.listen()
    }

    #[inline]
    pub(super) fn is_done(&self) -> bool {
        // Acquire: pairs with the Release store in `finish` (see there).
        self.done.load(Ordering::Acquire)
    }

    /// Blocks the thread until the group is done.
    pub(super) fn wait_blocking(&self) {
        while !self.is_done() {
            let listener = self.listen();
            // No wakeup can be lost: `finish` sets `done` before notifying,
            // and this listener was registered before the re-check.
            if self.is_done() {
                return;
            }
            listener.wait();
        }
    }

    /// Blocks the thread until the group is done (`true`) or `deadline` has
    /// come (`false`); `None` never comes.
    pub(super) fn wait_blocking_until(&self, deadline: Option<std::time::Instant>) -> bool {
        while !self.is_done() {
            let listener = self.listen();
            // No wakeup can be lost: see `wait_blocking`.
            if self.is_done() {
                return true;
            }
            match deadline {
                Some(deadline) => {
                    if listener.wait_deadline(deadline).is_none() {
                        return self.is_done();
                    }
                }
                // A timeout too large to represent never runs out.
                None => listener.wait(),
            }
        }
        true
    }
}

/// Future of [`Group::wait`](crate::Group::wait): ready once the group is closed and every guard
/// is gone.
#[must_use = "futures do nothing unless polled"]
pub struct Wait<'a> {
    shared: &'a Shared,
    /// How this future is registered for the wakeup. Nothing until the fast
    /// path fails, so building and polling a `Wait` on a drained group
    /// allocates nothing and takes no lock.
    ///
    /// `ManuallyDrop` because `Drop for Wait` empties it itself (out of
    /// line, leaving `Idle`, which owns nothing): the drop glue of a `Wait`
    /// is then one test of the tag. Without it, the listener's drop inlined
    /// into that glue made it too large to inline under fat LTO, and every
    /// `Wait`, even one that never registered, paid an out-of-line call.
    state: ManuallyDrop<WaitState>,
}

/// How a pending [`Wait`] will be woken.
enum WaitState {
    /// Not registered yet.
    Idle,
    /// Owns the group's single-waiter slot (no allocation).
    First,
    /// The slot was taken: listens on the group's event.
    Listening(EventListener),
}

impl Future for Wait<'_> {
    type Output = ();

    #[inline]
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let shared = self.shared;
        self.state.poll(shared, cx)
    }
}

impl<'a> Wait<'a> {
    /// A wait on the group whose shared state is `shared` (already closed).
    #[inline]
    pub(super) fn new(shared: &'a Shared) -> Wait<'a> {
        Wait {
            shared,
            state: ManuallyDrop::new(WaitState::Idle),
        }
    }
}

impl Drop for Wait<'_> {
    #[inline]
    fn drop(&mut self) {
        self.state.unregister(self.shared);
    }
}

impl WaitState {
    /// Polls a wait on `shared`: the fast path (a load), then registering.
    #[inline]
    fn poll(&mut self, shared: &Shared, cx: &mut Context<'_>) -> Poll<()> {
        if shared.is_done() {
            return Poll::Ready(());
        }
        self.poll_registered(shared, cx)
    }

    /// The slow path of `poll`: register for the wakeup, then re-check.
    fn poll_registered(&mut self, shared: &Shared, cx: &mut Context<'_>) -> Poll<()> {
        loop {
            let poll = match self {
                WaitState::Idle | WaitState::First => self.poll_slot(shared, cx),
                WaitState::Listening(listener) => poll_listener(shared, listener, cx),
            };
            if let Some(poll) = poll {
                return poll;
            }
        }
    }

    /// Takes the first-waiter slot (or keeps it) and parks the waker there;
    /// `None` if the slot was taken and this wait now listens instead (the
    /// caller polls again).
    fn poll_slot(&mut self, shared: &Shared, cx: &mut Context<'_>) -> Option<Poll<()>> {
        // Planted bug for tests/loom.rs: a check made before locking can
        // miss a `finish` that runs between it and the waker's store.
        let early_check = cfg!(smol_graceful_bug = "no_recheck").then(|| shared.is_done());
        let mut waiters = lock(&shared.waiters);
        if matches!(self, WaitState::Idle) {
            if waiters.first_taken {
                // Listen instead. `done` is re-checked by the caller's next
                // turn, after registering.
                *self = WaitState::Listening(shared.listen_locked(waiters));
                return None;
            }
            waiters.first_taken = true;
            *self = WaitState::First;
        }
        // No wakeup can be lost: `done` is re-checked under the slot's lock,
        // which `finish` takes after setting it (see `Shared::finish`).
        if early_check.unwrap_or_else(|| shared.is_done()) {
            return Some(Poll::Ready(()));
        }
        match &mut waiters.first {
            Some(waker) if waker.will_wake(cx.waker()) => {}
            waker => *waker = Some(cx.waker().clone()),
        }
        Some(Poll::Pending)
    }

    /// Gives up the slot or the listener, if any.
    #[inline]
    fn unregister(&mut self, shared: &Shared) {
        if !matches!(self, WaitState::Idle) {
            self.unregister_slow(shared);
        }
    }

    /// Out of line: only pending waits that are dropped get here. Leaves
    /// `Idle`, which owns nothing (the owners keep the state in
    /// `ManuallyDrop` and rely on this).
    #[cold]
    #[inline(never)]
    fn unregister_slow(&mut self, shared: &Shared) {
        let state = std::mem::replace(self, WaitState::Idle);
        // Once done, nobody will use the slot again: skip the lock.
        if matches!(state, WaitState::First) && !shared.is_done() {
            let mut waiters = lock(&shared.waiters);
            waiters.first_taken = false;
            waiters.first = None;
        }
    }
}

/// Polls a wait that listens on the group's event; `None` if it was woken
/// without the group being done (the caller polls again, re-registered).
fn poll_listener(
    shared: &Shared,
    listener: &mut EventListener,
    cx: &mut Context<'_>,
) -> Option<Poll<()>> {
    // No wakeup can be lost: `finish` sets `done` before it notifies, and
    // `done` is re-checked after registering.
    if shared.is_done() {
        return Some(Poll::Ready(()));
    }
    if Pin::new(&mut *listener).poll(cx).is_pending() {
        return Some(Poll::Pending);
    }
    if shared.is_done() {
        return Some(Poll::Ready(()));
    }
    *listener = shared.listen();
    None
}

/// Future of [`Group::wait_owned`](crate::Group::wait_owned): [`Wait`] that
/// holds its own handle to the group, so it is `'static`.
#[must_use = "futures do nothing unless polled"]
pub struct WaitOwned {
    group: Group,
    /// `ManuallyDrop`: see [`Wait`]'s field.
    state: ManuallyDrop<WaitState>,
}

impl WaitOwned {
    /// A wait on `group` (already closed).
    pub(super) fn new(group: Group) -> WaitOwned {
        WaitOwned {
            group,
            state: ManuallyDrop::new(WaitState::Idle),
        }
    }
}

impl Future for WaitOwned {
    type Output = ();

    #[inline]
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = &mut *self;
        this.state.poll(&this.group.handle.shared, cx)
    }
}

impl Drop for WaitOwned {
    fn drop(&mut self) {
        self.state.unregister(&self.group.handle.shared);
    }
}

impl fmt::Debug for WaitOwned {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WaitOwned")
            .field("done", &self.group.handle.shared.is_done())
            .finish_non_exhaustive()
    }
}

impl fmt::Debug for Wait<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Wait")
            .field("done", &self.shared.is_done())
            .finish_non_exhaustive()
    }
}

/// Future of [`Group::wait_timeout`] and [`Group::wait_deadline`].
///
/// The first poll that finds guards still alive yields (wakes its own task
/// and returns `Pending`) instead of registering a timer with async-io's
/// reactor, which can cost a wakeup of the reactor's thread; a group
/// finished by then, as by work that ends within the executor's current
/// turn, never touches the reactor. The deadline is fixed at the call
/// either way.
#[cfg(feature = "smol")]
#[must_use = "futures do nothing unless polled"]
pub struct WaitTimeout<'a> {
    /// `ManuallyDrop` for the reason given on [`Wait`]'s field: `Drop for
    /// WaitTimeout` empties a `Waiting` state itself, out of line, leaving
    /// `Done` (which owns nothing), so a wait that was done at the call is
    /// dropped with one test of the tag instead of a call into the drop
    /// glue of the wait and the timer.
    state: ManuallyDrop<TimeoutState<'a>>,
}

/// What a [`WaitTimeout`] still has to do.
#[cfg(feature = "smol")]
enum TimeoutState<'a> {
    /// The group was done at the call: no clock was read, nothing waits.
    Done,
    Waiting {
        wait: Wait<'a>,
        group: &'a Group,
        /// When to give up; `None` for a deadline too far to represent.
        deadline: Option<Instant>,
        /// Made at the second poll that finds the group not done (see
        /// `poll`), so a wait that is ready by then never registers a timer
        /// with the reactor.
        timer: Option<smol::Timer>,
        /// The first poll that found the group not done yielded instead of
        /// making the timer.
        yielded: bool,
    },
}

#[cfg(feature = "smol")]
impl<'a> WaitTimeout<'a> {
    /// Closes `group` and waits for it until `deadline()`, which is called
    /// at once (the clock starts at the call) unless the group is already
    /// done.
    #[inline]
    pub(super) fn new(
        group: &'a Group,
        deadline: impl FnOnce() -> Option<Instant>,
    ) -> WaitTimeout<'a> {
        // What `group.wait()` does, with the check first: a group done at
        // the call builds no `Wait` (nor drops one).
        group.close();
        let shared = &group.handle.shared;
        let state = if shared.is_done() {
            TimeoutState::Done
        } else {
            TimeoutState::Waiting {
                wait: Wait::new(shared),
                group,
                deadline: deadline(),
                timer: None,
                yielded: false,
            }
        };
        WaitTimeout {
            state: ManuallyDrop::new(state),
        }
    }

    /// Drops the wait and the timer of a `Waiting` state, leaving `Done`.
    /// Out of line, so that `Drop` stays one test of the tag.
    #[inline(never)]
    fn drop_waiting(&mut self) {
        drop(std::mem::replace(&mut *self.state, TimeoutState::Done));
    }
}

#[cfg(feature = "smol")]
impl Drop for WaitTimeout<'_> {
    #[inline]
    fn drop(&mut self) {
        if !matches!(*self.state, TimeoutState::Done) {
            self.drop_waiting();
        }
    }
}

#[cfg(feature = "smol")]
impl Future for WaitTimeout<'_> {
    type Output = Result<(), Stragglers>;

    #[inline]
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match &mut *self.state {
            TimeoutState::Done => Poll::Ready(Ok(())),
            TimeoutState::Waiting {
                wait,
                group,
                deadline,
                timer,
                yielded,
            } => {
                // Finished work wins over an expired timer.
                if Pin::new(wait).poll(cx).is_ready() {
                    return Poll::Ready(Ok(()));
                }
                let timer = match (timer, *deadline) {
                    (Some(timer), _) => timer,
                    // A deadline that never comes needs no timer: the wait
                    // above has registered for the group's wakeup.
                    (None, None) => return Poll::Pending,
                    (timer @ None, Some(deadline)) => {
                        if !*yielded {
                            // Making the timer inserts it into async-io's
                            // reactor, which notifies the reactor's thread
                            // (a write to its eventfd, and a wakeup of that
                            // thread) unless a notification is already
                            // pending: on about one wait in five in a round
                            // trip on one executor. Work that ends within
                            // the executor's current turn (tasks already
                            // scheduled, such as those woken by the same
                            // shutdown) finishes the group before our next
                            // poll, so yield once first. The deadline was
                            // fixed at the call; one that has already come
                            // answers now, as the timer would.
                            if Instant::now() >= deadline {
                                return Poll::Ready(Err(group.stragglers()));
                            }
                            *yielded = true;
                            cx.waker().wake_by_ref();
                            return Poll::Pending;
                        }
                        timer.insert(smol::Timer::at(deadline))
                    }
                };
                std::task::ready!(Pin::new(timer).poll(cx));
                Poll::Ready(Err(group.stragglers()))
            }
        }
    }
}

#[cfg(feature = "smol")]
impl fmt::Debug for WaitTimeout<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let done = match &*self.state {
            TimeoutState::Done => true,
            TimeoutState::Waiting { wait, .. } => wait.shared.is_done(),
        };
        f.debug_struct("WaitTimeout")
            .field("done", &done)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    //! The first-waiter slot and the order of wake-ups; behaviour is tested
    //! in `tests/group.rs`.

    use super::*;
    use futures_lite::future::{block_on, poll_once};

    #[test]
    fn a_panicking_first_waker_does_not_stop_the_other_waiters_waking() {
        // The first async waiter's waker panics when woken (a broken
        // executor); the last guard's drop unwinds, but a blocking waiter
        // listening on the event must still return.
        struct Panics;
        impl std::task::Wake for Panics {
            fn wake(self: std::sync::Arc<Self>) {
                panic!("waker panics");
            }
        }
        let group = Group::new();
        let guard = group.add().unwrap();
        let mut first = group.wait();
        let waker = Waker::from(std::sync::Arc::new(Panics));
        assert!(Pin::new(&mut first)
            .poll(&mut Context::from_waker(&waker))
            .is_pending());
        let (returned, blocking_returned) = std::sync::mpsc::channel();
        let blocking = {
            let group = group.clone();
            std::thread::spawn(move || {
                group.wait_blocking();
                returned.send(()).unwrap();
            })
        };
        // The blocking waiter marks `listening` before it blocks.
        let give_up = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while !lock(&group.handle.shared.waiters).listening {
            assert!(std::time::Instant::now() < give_up, "never listened");
            std::thread::yield_now();
        }
        let dropped = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| drop(guard)));
        assert!(dropped.is_err(), "the waker's panic reaches the dropper");
        blocking_returned
            .recv_timeout(std::time::Duration::from_secs(5))
            .expect("the blocking waiter was woken");
        blocking.join().unwrap();
        assert!(group.is_empty());
    }

    #[test]
    fn the_first_waiter_takes_the_slot_and_later_ones_listen() {
        let group = Group::new();
        let guard = group.add().unwrap();
        let mut first = group.wait();
        assert!(matches!(*first.state, WaitState::Idle));
        assert!(block_on(poll_once(&mut first)).is_none());
        assert!(matches!(*first.state, WaitState::First));
        assert!(lock(&group.handle.shared.waiters).first.is_some());

        let mut second = group.wait();
        assert!(block_on(poll_once(&mut second)).is_none());
        assert!(matches!(*second.state, WaitState::Listening(_)));

        drop(guard);
        assert!(
            lock(&group.handle.shared.waiters).first.is_none(),
            "taken by finish"
        );
        assert!(block_on(poll_once(&mut first)).is_some());
        assert!(block_on(poll_once(&mut second)).is_some());

        let empty = Group::new();
        let mut wait = empty.wait();
        assert!(block_on(poll_once(&mut wait)).is_some());
        assert!(
            matches!(*wait.state, WaitState::Idle),
            "the fast path registers nothing"
        );
    }

    #[test]
    fn a_dropped_first_waiter_frees_the_slot_for_the_next() {
        let group = Group::new();
        let guard = group.add().unwrap();
        let mut first = group.wait();
        assert!(block_on(poll_once(&mut first)).is_none());
        drop(first);
        let waiters = lock(&group.handle.shared.waiters);
        assert!(!waiters.first_taken && waiters.first.is_none());
        drop(waiters);

        let mut next = group.wait();
        assert!(block_on(poll_once(&mut next)).is_none());
        assert!(matches!(*next.state, WaitState::First));
        drop(guard);
        assert!(block_on(poll_once(&mut next)).is_some());
    }

    #[cfg(feature = "smol")]
    #[test]
    fn a_wait_timeout_on_a_done_group_reads_no_clock_and_makes_no_timer() {
        let group = Group::new();
        let mut wait = group.wait_timeout(std::time::Duration::from_secs(60));
        assert!(
            matches!(*wait.state, TimeoutState::Done),
            "done at the call"
        );
        assert!(matches!(block_on(poll_once(&mut wait)), Some(Ok(()))));
    }

    /// Whether `wait` has made its timer.
    #[cfg(feature = "smol")]
    fn timer_made(wait: &WaitTimeout<'_>) -> bool {
        match &*wait.state {
            TimeoutState::Waiting { timer, .. } => timer.is_some(),
            TimeoutState::Done => panic!("not done at the call"),
        }
    }

    #[cfg(feature = "smol")]
    #[test]
    fn a_pending_wait_timeout_yields_once_before_making_its_timer() {
        struct Flag(std::sync::atomic::AtomicBool);
        impl std::task::Wake for Flag {
            fn wake(self: std::sync::Arc<Self>) {
                // Relaxed: read on this thread only.
                self.0.store(true, std::sync::atomic::Ordering::Relaxed);
            }
        }
        let flag = std::sync::Arc::new(Flag(std::sync::atomic::AtomicBool::new(false)));
        let waker = Waker::from(std::sync::Arc::clone(&flag));
        let mut cx = Context::from_waker(&waker);
        // Relaxed: written on this thread only.
        let woken = || flag.0.swap(false, std::sync::atomic::Ordering::Relaxed);

        let group = Group::new();
        let guard = group.add().unwrap();
        let mut wait = group.wait_timeout(std::time::Duration::from_secs(60));
        assert!(!timer_made(&wait), "not before the first poll");
        assert!(Pin::new(&mut wait).poll(&mut cx).is_pending());
        assert!(!timer_made(&wait), "not at the first pending poll");
        assert!(woken(), "the first pending poll wakes itself");
        assert!(Pin::new(&mut wait).poll(&mut cx).is_pending());
        assert!(timer_made(&wait), "at the second");
        assert!(!woken());
        drop(guard);
        assert!(woken(), "the last guard wakes the waiter");
        assert!(matches!(
            Pin::new(&mut wait).poll(&mut cx),
            Poll::Ready(Ok(()))
        ));

        // Work that ends before the second poll: no timer at all.
        let group = Group::new();
        let guard = group.add().unwrap();
        let mut wait = group.wait_timeout(std::time::Duration::from_secs(60));
        assert!(Pin::new(&mut wait).poll(&mut cx).is_pending());
        drop(guard);
        assert!(matches!(
            Pin::new(&mut wait).poll(&mut cx),
            Poll::Ready(Ok(()))
        ));
        assert!(!timer_made(&wait));

        // A deadline too far to represent never comes: no timer, no yield.
        let group = Group::new();
        let guard = group.add().unwrap();
        let mut wait = group.wait_timeout(std::time::Duration::MAX);
        woken();
        for _ in 0..2 {
            assert!(Pin::new(&mut wait).poll(&mut cx).is_pending());
            assert!(!timer_made(&wait));
        }
        assert!(!woken());
        drop(guard);
        assert!(woken());
        assert!(matches!(
            Pin::new(&mut wait).poll(&mut cx),
            Poll::Ready(Ok(()))
        ));
    }

    #[cfg(feature = "smol")]
    #[test]
    fn a_dropped_pending_wait_timeout_frees_the_first_waiter_slot() {
        // The state sits in `ManuallyDrop`: `Drop` must still drop the wait,
        // which gives up the first-waiter slot.
        let group = Group::new();
        let guard = group.add().unwrap();
        let mut wait = group.wait_timeout(std::time::Duration::from_secs(60));
        assert!(block_on(poll_once(&mut wait)).is_none());
        assert!(lock(&group.handle.shared.waiters).first_taken);
        drop(wait);
        let waiters = lock(&group.handle.shared.waiters);
        assert!(!waiters.first_taken && waiters.first.is_none());
        drop(waiters);
        drop(guard);
        assert!(group.is_empty());
    }
}
