//! [`Group`], its RAII [`Guard`], the [`Closed`] error and the wait futures.
//!
//! # How the count is kept
//!
//! The number of live guards is the strong count of one `Arc`, the group's
//! *root token*. A guard *is* a strong reference to that token, so making and
//! dropping one takes no lock and allocates nothing. What each step costs:
//!
//! - [`Group::add`]: a relaxed load of the `closed` flag, then
//!   `Weak::upgrade` of the root token (a load and a compare-and-swap loop,
//!   which retries while other threads change the count at the same moment),
//!   then a relaxed load of the count for the overflow check. More than an
//!   `Arc` clone (one unconditional increment); the README's Performance
//!   section has the measured difference.
//! - Cloning a [`Guard`]: an `Arc` clone, plus that load of the count.
//! - Dropping a guard: an `Arc` drop, one release decrement (plus an acquire
//!   fence and the wake-up below when it is the last reference).
//!
//! While the group is open it holds one extra strong reference of its own;
//! [`Group::close`] gives it up. When the last reference goes, the token's
//! `Drop` marks the group done and wakes every waiter. `Arc`'s own orderings
//! (a release decrement, and an acquire fence before the last owner drops the
//! value) make everything a guard holder did before dropping its guard
//! visible to that `Drop`.
//!
//! `add` upgrades a `Weak` because the upgrade fails once the count has
//! reached zero: an `Ok` guard always holds the count above zero, so no
//! `wait` can finish while it lives, and a failed `add` never counted.
//!
//! [`Group::len`] is exact for the instant it reads: `close` takes the
//! group's own reference out of `open` and out of the count in one critical
//! section of `open`'s lock, under which `len` reads both, and runs the root
//! token's `Drop` (which wakes waiters: user code) only after unlocking.
//!
//! # How waiters are woken
//!
//! The first async waiter parks its [`Waker`] in a slot behind a small lock;
//! later async waiters and blocking waiters listen on an
//! [`event_listener::Event`], after marking under the same lock that someone
//! listens. `finish` sets `done`, then takes that lock: every waiter either
//! registered before (and is woken) or locks after and sees `done`. A group
//! with one waiter therefore allocates nothing to wait, and one nobody
//! listens to skips `Event::notify`.

use std::borrow::Cow;
use std::fmt;
use std::future::Future;
use std::panic::Location;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};
#[cfg(feature = "smol")]
use std::time::{Duration, Instant};

use event_listener::{Event, EventListener, Listener};
use pin_project_lite::pin_project;

use crate::stragglers::{Registry, Stragglers};
use crate::sync::{lock, Arc, AtomicBool, Mutex, MutexGuard, Ordering, Weak};

/// A wait group: counts running tasks with RAII [`Guard`]s and waits until
/// they are all gone.
///
/// Each task holds a [`Guard`] from [`add`](Self::add) (or runs inside
/// [`track`](Self::track) / [`spawn`](Self::spawn), which hold one for it).
/// Dropping the guard, normally or by a panic unwinding, tells the group the
/// task is done. [`wait`](Self::wait) *closes* the group, so no new work can
/// join, and resolves once every guard is gone.
///
/// A group is one lifecycle: once closed it stays closed and
/// [`add`](Self::add) returns [`Err(Closed)`](Closed). Make a new group for
/// the next lifecycle; it is cheap. Cloning a `Group` gives another handle to
/// the same group. Dropping every handle while guards still live is fine: the
/// guards keep counting and nothing leaks.
///
/// The group knows nothing about executors: guards are `Send + Sync`, and the
/// wait futures are woken through their [`Waker`]s (or [`event_listener`]), so
/// any executor, or a plain thread with [`wait_blocking`](Self::wait_blocking),
/// can wait.
///
/// # Examples
///
/// ```
/// use smol_graceful::Group;
///
/// # smol::block_on(async {
/// let group = Group::new();
/// for i in 0..3 {
///     let guard = group.add()?;
///     smol::spawn(async move {
///         let _guard = guard; // dropped when the task ends
///         println!("task {i} done");
///     })
///     .detach();
/// }
/// group.wait().await; // closes the group, then waits for the three tasks
/// assert!(group.is_empty());
/// assert!(group.add().is_err());
/// # Ok::<(), smol_graceful::Closed>(())
/// # }).unwrap();
/// ```
///
/// # Compared with its peers
///
/// - Go's `sync.WaitGroup`: `Add`/`Done` become an RAII guard, so `Done` can
///   be neither forgotten nor called twice; `Add` after `Wait` started is an
///   error instead of a race; a group is never reused across lifecycles; and
///   [`wait_timeout`](Self::wait_timeout) names the tasks that did not finish.
/// - crossbeam's `WaitGroup`: the same RAII idea for threads, but waiting
///   consumes a handle and blocks a thread; here waiting is a future (or
///   blocking, if you prefer), several waiters are fine, and the group can
///   be closed against new work.
/// - tokio-util's `TaskTracker`: the closest peer (close, then wait). It
///   needs tokio for spawning and timers; this group works with any executor,
///   and adds named guards and straggler reports.
#[derive(Clone)]
pub struct Group {
    handle: Arc<Handle>,
}

/// What every handle of one group shares. Dropping the last handle drops the
/// group's own reference to the root token, as closing does.
struct Handle {
    /// Set once by [`Group::close`]. Only guards the `add` fast path against
    /// adding after close; the count itself lives in `root`.
    closed: AtomicBool,
    /// The group's own strong reference to the root token while it is open;
    /// `None` once closed. Encoding: live guards = `strong_count(root) -
    /// (open.is_some() as usize)`, read under this lock.
    open: Mutex<Option<Arc<Token>>>,
    /// The root token, weakly: `add` upgrades it, which fails once the count
    /// has reached zero (the group is closed and drained).
    root: Weak<Token>,
    /// The state the waiters and named guards share with the root token
    /// (inline: one allocation fewer per group).
    shared: Shared,
}

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
    registry: Registry,
}

/// A strong reference target held by guards. The root token's strong count
/// is the group's count.
enum Token {
    /// The group's counter. Its `Drop` runs when the count reaches zero.
    /// Weak, so that the handle (which owns the root token while the group is
    /// open) and the token do not keep each other alive.
    Root(Weak<Handle>),
    /// A named guard: one strong reference to the root, plus a registry entry.
    Named {
        /// Keeps the count one higher for as long as this named guard lives.
        root: Arc<Token>,
        /// For the registry entry.
        handle: Arc<Handle>,
        id: u64,
    },
}

impl Token {
    /// Runs when the last strong reference to this token goes.
    fn last_ref(&self) {
        match self {
            // If every handle is gone, nobody can be waiting: there is no
            // one to tell.
            Token::Root(handle) => {
                if let Some(handle) = handle.upgrade() {
                    handle.shared.finish();
                }
            }
            // Unregister before `root` (a field) drops and uncounts this
            // guard, so a snapshot never lists a guard it does not count.
            Token::Named { handle, id, .. } => handle.shared.registry.remove(*id),
        }
    }
}

#[cfg(not(loom))]
impl Drop for Token {
    fn drop(&mut self) {
        self.last_ref();
    }
}

// Under loom, `sync::Arc` calls the hook itself (see `sync.rs`).
#[cfg(loom)]
impl crate::sync::LastRef for Token {
    fn last_ref(&self) {
        Token::last_ref(self);
    }
}
#[cfg(loom)]
impl crate::sync::LastRef for Handle {}

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

impl Default for Group {
    fn default() -> Group {
        let handle = Arc::new_cyclic(|handle| {
            let root = Arc::new(Token::Root(handle.clone()));
            Handle {
                closed: AtomicBool::new(false),
                root: Arc::downgrade(&root),
                open: Mutex::new(Some(root)),
                shared: Shared::default(),
            }
        });
        Group { handle }
    }
}

impl Shared {
    /// Called once, by the root token's `Drop`: every guard is gone.
    fn finish(&self) {
        // Release: a waiter that reads `done == true` with Acquire also sees
        // every write the guard holders made before dropping their guards
        // (those happen-before this `Drop` through `Arc`'s release decrement
        // and acquire fence).
        #[cfg(not(smol_graceful_bug = "relaxed_done"))]
        self.done.store(true, Ordering::Release);
        // Planted bug for tests/loom.rs to catch; never built otherwise.
        #[cfg(smol_graceful_bug = "relaxed_done")]
        self.done.store(true, Ordering::Relaxed);
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
    fn listen(&self) -> EventListener {
        self.listen_locked(lock(&self.waiters))
    }

    /// [`listen`](Self::listen), for a caller that already holds the lock.
    fn listen_locked(&self, mut waiters: MutexGuard<'_, Waiters>) -> EventListener {
        waiters.listening = true;
        drop(waiters);
        self.event.listen()
    }

    #[inline]
    fn is_done(&self) -> bool {
        // Acquire: pairs with the Release store in `finish` (see there).
        self.done.load(Ordering::Acquire)
    }
}

impl Group {
    /// Creates an open group with no guards.
    ///
    /// # Examples
    ///
    /// ```
    /// let group = smol_graceful::Group::new();
    /// assert!(group.is_empty());
    /// assert!(!group.is_closed());
    /// ```
    pub fn new() -> Group {
        Group::default()
    }

    /// Counts one more task: returns a [`Guard`] that counts it down when
    /// dropped.
    ///
    /// No lock and no allocation: a load of the closed flag, a
    /// `Weak::upgrade` (a load and a compare-and-swap loop, which retries
    /// while other threads change the count at the same moment) and a load
    /// of the count to guard against overflow. Uncontended, that costs about
    /// as much as an `Arc` clone; the crate's README has the measurements.
    ///
    /// # Errors
    ///
    /// [`Closed`] if the group has been closed ([`close`](Self::close),
    /// [`wait`](Self::wait) and friends close it).
    ///
    /// # Aborts
    ///
    /// More than `usize::MAX / 4` live guards abort the process, as `Arc`
    /// does on reference-count overflow (only leaked guards get there).
    ///
    /// # Examples
    ///
    /// ```
    /// let group = smol_graceful::Group::new();
    /// let guard = group.add().unwrap();
    /// assert_eq!(group.len(), 1);
    /// drop(guard);
    /// assert_eq!(group.len(), 0);
    /// ```
    #[inline]
    pub fn add(&self) -> Result<Guard, Closed> {
        self.root_ref().map(|token| Guard { token })
    }

    /// Counts one more task, like [`add`](Self::add), and lists it by name in
    /// [`Stragglers`] reports while it lives, with its age and the place
    /// `add_named` was called from.
    ///
    /// Named guards take a short lock and allocate a small record; anonymous
    /// ones do not pay for this.
    ///
    /// # Errors
    ///
    /// [`Closed`] if the group has been closed.
    ///
    /// # Examples
    ///
    /// ```
    /// let group = smol_graceful::Group::new();
    /// let _guard = group.add_named(format!("connection {}", 7)).unwrap();
    /// assert_eq!(group.stragglers().names(), ["connection 7"]);
    /// ```
    #[track_caller]
    pub fn add_named(&self, name: impl Into<Cow<'static, str>>) -> Result<Guard, Closed> {
        let location = Location::caller();
        let root = self.root_ref()?;
        let handle = Arc::clone(&self.handle);
        let id = handle.shared.registry.insert(name.into(), location);
        Ok(Guard {
            token: Arc::new(Token::Named { root, handle, id }),
        })
    }

    /// One more strong reference to the root token, unless the group is closed.
    #[inline]
    fn root_ref(&self) -> Result<Arc<Token>, Closed> {
        // Relaxed: this flag carries no data, it only makes `add` after a
        // `close` that happened-before it fail (coherence guarantees that
        // much). The race with a concurrent close is settled by `upgrade`.
        if self.handle.closed.load(Ordering::Relaxed) {
            return Err(Closed);
        }
        // `upgrade` increments the count only if it is not zero, atomically:
        // if a concurrent close already drained the group we get `Closed`,
        // otherwise our guard holds the count up and no waiter finishes.
        let root = self.handle.root.upgrade().ok_or(Closed)?;
        check_count(&root);
        Ok(root)
    }

    /// Wraps `future` so that it holds a guard until it completes or is
    /// dropped.
    ///
    /// The result is an ordinary future: spawn it on any executor, or poll it
    /// yourself.
    ///
    /// # Errors
    ///
    /// [`Closed`] if the group has been closed.
    ///
    /// # Examples
    ///
    /// ```
    /// use smol_graceful::Group;
    ///
    /// # smol::block_on(async {
    /// let group = Group::new();
    /// let task = smol::spawn(group.track(async { 1 + 1 })?);
    /// assert_eq!(group.len(), 1);
    /// assert_eq!(task.await, 2);
    /// group.wait().await;
    /// # Ok::<(), smol_graceful::Closed>(())
    /// # }).unwrap();
    /// ```
    pub fn track<F: Future>(&self, future: F) -> Result<Tracked<F>, Closed> {
        Ok(Tracked {
            future,
            guard: Some(self.add()?),
        })
    }

    /// The number of live guards.
    ///
    /// Exact at the instant it is read, also while another thread closes
    /// the group (a closed group with no guards is `0`, never `1`); guards
    /// added or dropped on other threads can change it right after.
    ///
    /// # Examples
    ///
    /// ```
    /// let group = smol_graceful::Group::new();
    /// let a = group.add().unwrap();
    /// let _b = a.clone();
    /// assert_eq!(group.len(), 2);
    /// ```
    pub fn len(&self) -> usize {
        let open = lock(&self.handle.open);
        // Under the lock the group's own reference cannot come or go: `close`
        // takes it out of `open` and out of the count in one critical section
        // (see `release_own_reference`), so the subtraction is exact for this
        // instant.
        Weak::strong_count(&self.handle.root) - usize::from(open.is_some())
    }

    /// True if no guard is alive.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Closes the group: from now on [`add`](Self::add) and friends return
    /// [`Err(Closed)`](Closed). Live guards are not affected (and can still be
    /// cloned).
    ///
    /// Returns `true` if this call closed the group, `false` if it already
    /// was closed.
    ///
    /// # Examples
    ///
    /// ```
    /// let group = smol_graceful::Group::new();
    /// assert!(group.close());
    /// assert!(!group.close());
    /// assert!(group.add().is_err());
    /// ```
    #[inline]
    pub fn close(&self) -> bool {
        // A load first, so that waiting on a closed group (every `wait` after
        // the first) costs no read-modify-write. Relaxed: the flag carries no
        // data; a stale `false` only sends us to the swap below.
        if self.handle.closed.load(Ordering::Relaxed) {
            return false;
        }
        self.close_slow()
    }

    #[cold]
    fn close_slow(&self) -> bool {
        // Relaxed suffices: the flag carries no data, and exactly one caller
        // wins the swap (RMWs on one location are totally ordered).
        if self.handle.closed.swap(true, Ordering::Relaxed) {
            return false;
        }
        let last = self.release_own_reference();
        // Outside the lock: if the group's own reference was the last one,
        // the root token's `Drop` (run here) wakes the waiters, and wakers
        // are user code.
        drop(last);
        true
    }

    /// Gives up the group's own reference to the root token: the first half
    /// of closing. Returns the root token if that reference was the last one
    /// (so the caller drops it, finishing the group, outside the lock).
    ///
    /// The reference leaves `open` and the count in one critical section, so
    /// [`len`](Self::len), which reads both under the same lock, is exact at
    /// every instant. `Arc::into_inner` decrements the count like `drop`
    /// (same orderings) but hands the value back instead of dropping it
    /// when it was the last reference: no `Drop`, waker or other user code
    /// runs under the lock.
    fn release_own_reference(&self) -> Option<impl Sized> {
        let mut open = lock(&self.handle.open);
        open.take().and_then(Arc::into_inner)
    }

    /// True once [`close`](Self::close) (or a wait) has been called.
    #[inline]
    pub fn is_closed(&self) -> bool {
        // Relaxed: a snapshot of a flag that carries no data.
        self.handle.closed.load(Ordering::Relaxed)
    }

    /// Closes the group and waits until every guard is gone.
    ///
    /// The group is closed at the call, not at the first poll. The future is
    /// ready at once if no guard is alive; otherwise it resolves when the
    /// last guard drops. Any number of tasks may wait at the same time.
    ///
    /// Do not wait on a group from a task that holds one of its guards
    /// (including a future made by [`track`](Self::track) or
    /// [`spawn`](Self::spawn) of the same group): that guard lives until the
    /// wait returns, so the wait never resolves. Drop the guard first, or
    /// wait from outside the group. [`wait_timeout`](Self::wait_timeout)
    /// gives up instead, and lists that guard among the stragglers.
    ///
    /// # Cancel safety
    ///
    /// Cancel-safe: dropping the future loses nothing, and calling `wait`
    /// again waits again (the group stays closed).
    ///
    /// # Examples
    ///
    /// ```
    /// use smol_graceful::Group;
    ///
    /// # smol::block_on(async {
    /// let group = Group::new();
    /// let guard = group.add().unwrap();
    /// let worker = smol::spawn(async move {
    ///     smol::Timer::after(std::time::Duration::from_millis(5)).await;
    ///     drop(guard);
    /// });
    /// group.wait().await;
    /// assert_eq!(group.len(), 0);
    /// # worker.await;
    /// # });
    /// ```
    #[inline]
    pub fn wait(&self) -> Wait<'_> {
        self.close();
        Wait {
            shared: &self.handle.shared,
            state: WaitState::Idle,
        }
    }

    /// Closes the group and blocks the current thread until every guard is
    /// gone: [`wait`](Self::wait) for plain threads.
    ///
    /// Do not call this on an executor thread that has to run the tasks you
    /// are waiting for, nor while this thread holds one of the group's
    /// guards: either way it never returns.
    ///
    /// # Examples
    ///
    /// ```
    /// let group = smol_graceful::Group::new();
    /// let guard = group.add().unwrap();
    /// std::thread::spawn(move || drop(guard));
    /// group.wait_blocking();
    /// assert!(group.is_empty());
    /// ```
    pub fn wait_blocking(&self) {
        self.close();
        let shared = &self.handle.shared;
        while !shared.is_done() {
            let listener = shared.listen();
            // No wakeup can be lost: `finish` sets `done` before notifying,
            // and this listener was registered before the re-check.
            if shared.is_done() {
                return;
            }
            listener.wait();
        }
    }

    /// Closes the group and blocks the current thread until every guard is
    /// gone or `timeout` has passed, whichever comes first.
    ///
    /// A guard the calling thread holds is still alive when the time runs
    /// out, so it is always among the stragglers (see [`wait`](Self::wait)).
    ///
    /// # Errors
    ///
    /// The [`Stragglers`] still alive when the time ran out.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// let group = smol_graceful::Group::new();
    /// let _stuck = group.add_named("stuck").unwrap();
    /// let err = group.wait_blocking_timeout(Duration::from_millis(1)).unwrap_err();
    /// assert_eq!(err.names(), ["stuck"]);
    /// ```
    pub fn wait_blocking_timeout(&self, timeout: std::time::Duration) -> Result<(), Stragglers> {
        let deadline = std::time::Instant::now().checked_add(timeout);
        self.close();
        let shared = &self.handle.shared;
        while !shared.is_done() {
            let listener = shared.listen();
            // No wakeup can be lost: see `wait_blocking`.
            if shared.is_done() {
                return Ok(());
            }
            match deadline {
                Some(deadline) => {
                    if listener.wait_deadline(deadline).is_none() && !shared.is_done() {
                        return Err(self.stragglers());
                    }
                }
                // A timeout too large to represent never runs out.
                None => listener.wait(),
            }
        }
        Ok(())
    }

    /// Closes the group and waits until every guard is gone or `timeout` has
    /// passed, whichever comes first. The clock starts at the call.
    ///
    /// Waiting from a task that holds one of the group's guards cannot
    /// succeed (see [`wait`](Self::wait)): that guard is still alive when the
    /// time runs out, and is reported among the stragglers.
    ///
    /// # Errors
    ///
    /// The [`Stragglers`] still alive when the time ran out: how many, and
    /// the names and ages of the named ones.
    ///
    /// # Cancel safety
    ///
    /// Cancel-safe, like [`wait`](Self::wait).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use smol_graceful::Group;
    ///
    /// # smol::block_on(async {
    /// let group = Group::new();
    /// let _flusher = group.add_named("flusher").unwrap();
    /// match group.wait_timeout(Duration::from_millis(20)).await {
    ///     Ok(()) => println!("all done"),
    ///     Err(stragglers) => eprintln!("gave up waiting: {stragglers}"),
    /// }
    /// # });
    /// ```
    #[cfg(feature = "smol")]
    pub fn wait_timeout(&self, timeout: Duration) -> WaitTimeout<'_> {
        let timer = smol::Timer::after(timeout);
        self.wait_with_timer(timer)
    }

    /// Closes the group and waits until every guard is gone or `deadline`
    /// has come, whichever is first. A deadline already past answers at once.
    ///
    /// As with [`wait_timeout`](Self::wait_timeout), a guard held by the
    /// waiting task itself is always among the stragglers.
    ///
    /// # Errors
    ///
    /// The [`Stragglers`] still alive at the deadline.
    ///
    /// # Cancel safety
    ///
    /// Cancel-safe, like [`wait`](Self::wait).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Instant;
    /// use smol_graceful::Group;
    ///
    /// # smol::block_on(async {
    /// let group = Group::new();
    /// let _guard = group.add().unwrap();
    /// let stragglers = group.wait_deadline(Instant::now()).await.unwrap_err();
    /// assert_eq!(stragglers.count(), 1);
    /// # });
    /// ```
    #[cfg(feature = "smol")]
    pub fn wait_deadline(&self, deadline: Instant) -> WaitTimeout<'_> {
        self.wait_with_timer(smol::Timer::at(deadline))
    }

    #[cfg(feature = "smol")]
    fn wait_with_timer(&self, timer: smol::Timer) -> WaitTimeout<'_> {
        WaitTimeout {
            wait: self.wait(),
            timer,
            group: self,
        }
    }

    /// A snapshot of the live guards: how many, and the named ones with
    /// their ages.
    ///
    /// # Examples
    ///
    /// ```
    /// let group = smol_graceful::Group::new();
    /// let _a = group.add_named("a").unwrap();
    /// let _b = group.add().unwrap();
    /// let report = group.stragglers();
    /// assert_eq!(report.count(), 2);
    /// assert_eq!(report.names(), ["a"]);
    /// ```
    pub fn stragglers(&self) -> Stragglers {
        self.handle.shared.registry.snapshot(|| self.len())
    }
}

impl fmt::Debug for Group {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Group")
            .field("len", &self.len())
            .field("closed", &self.is_closed())
            .finish_non_exhaustive()
    }
}

/// More live guards than this abort the process, as `Arc` and async-channel
/// do on reference-count overflow: a count that high means guards are being
/// leaked (`mem::forget`) in a loop, and a count that wrapped around would let
/// `wait` finish while work still runs. `tests/overflow.rs` checks the abort
/// with a small limit compiled in (`--cfg smol_graceful_small_limit`).
#[cfg(not(smol_graceful_small_limit))]
const MAX_GUARDS: usize = usize::MAX / 4;
#[cfg(smol_graceful_small_limit)]
const MAX_GUARDS: usize = 1024;

/// Aborts the process if `root` counts more than [`MAX_GUARDS`] references.
#[inline]
fn check_count(root: &Arc<Token>) {
    // `strong_count` is a Relaxed load of the count we just incremented: any
    // value at least as new as our increment will do for a bound this far
    // below the point where the count would wrap around.
    if Arc::strong_count(root) > MAX_GUARDS {
        too_many_guards();
    }
}

#[cold]
#[inline(never)]
fn too_many_guards() -> ! {
    log::error!("more than {MAX_GUARDS} live guards (leaked in a loop?): aborting");
    std::process::abort();
}

/// Proof that one task of a [`Group`] is still running; dropping it says the
/// task is done.
///
/// Made by [`Group::add`] and [`Group::add_named`]. Move it into the task it
/// counts. It is dropped when the task ends, also when it ends by panicking
/// and unwinding, or when its future is cancelled.
///
/// Cloning a guard counts one more task and works even after the group was
/// closed: a live guard proves the group is not done, so work derived from
/// tracked work stays tracked. The clone of a named guard is listed under the
/// same name, with its own age.
///
/// # Examples
///
/// ```
/// let group = smol_graceful::Group::new();
/// let guard = group.add().unwrap();
/// group.close();
/// let helper = guard.clone(); // fine after close
/// assert_eq!(group.len(), 2);
/// drop((guard, helper));
/// assert!(group.is_empty());
/// ```
#[must_use = "a guard counts a task only while it is alive; dropping it at once counts nothing"]
pub struct Guard {
    token: Arc<Token>,
}

impl Guard {
    /// True if the guard was made by [`Group::add_named`] (or cloned from
    /// such a guard), so it is listed by name in [`Stragglers`].
    pub fn is_named(&self) -> bool {
        matches!(*self.token, Token::Named { .. })
    }
}

impl Clone for Guard {
    fn clone(&self) -> Guard {
        match &*self.token {
            Token::Root(_) => {
                let token = Arc::clone(&self.token);
                check_count(&token);
                Guard { token }
            }
            Token::Named { root, handle, id } => {
                let root = Arc::clone(root);
                check_count(&root);
                let id = handle.shared.registry.duplicate(*id);
                let handle = Arc::clone(handle);
                Guard {
                    token: Arc::new(Token::Named { root, handle, id }),
                }
            }
        }
    }
}

impl fmt::Debug for Guard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Guard")
            .field("named", &self.is_named())
            .finish_non_exhaustive()
    }
}

/// The error of adding to a closed [`Group`].
///
/// # Examples
///
/// ```
/// use smol_graceful::{Closed, Group};
///
/// let group = Group::new();
/// group.close();
/// assert_eq!(group.add().unwrap_err(), Closed);
/// assert_eq!(Closed.to_string(), "group is closed");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Closed;

impl fmt::Display for Closed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("group is closed")
    }
}

impl std::error::Error for Closed {}

/// Future of [`Group::wait`]: ready once the group is closed and every guard
/// is gone.
#[must_use = "futures do nothing unless polled"]
pub struct Wait<'a> {
    shared: &'a Shared,
    /// How this future is registered for the wakeup. Nothing until the fast
    /// path fails, so building and polling a `Wait` on a drained group
    /// allocates nothing and takes no lock.
    state: WaitState,
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
        if self.shared.is_done() {
            return Poll::Ready(());
        }
        self.poll_registered(cx)
    }
}

impl Wait<'_> {
    /// The slow path of `poll`: register for the wakeup, then re-check.
    fn poll_registered(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        let shared = self.shared;
        loop {
            match &mut self.state {
                WaitState::Idle | WaitState::First => {
                    #[cfg(smol_graceful_bug = "no_recheck")]
                    let done_before_lock = shared.is_done();
                    let mut waiters = lock(&shared.waiters);
                    if matches!(self.state, WaitState::Idle) {
                        if waiters.first_taken {
                            // Listen instead. `done` is re-checked at the
                            // top of the loop, after registering.
                            self.state = WaitState::Listening(shared.listen_locked(waiters));
                            continue;
                        }
                        waiters.first_taken = true;
                        self.state = WaitState::First;
                    }
                    // No wakeup can be lost: `done` is re-checked under the
                    // slot's lock, which `finish` takes after setting it
                    // (see `Shared::finish`).
                    #[cfg(not(smol_graceful_bug = "no_recheck"))]
                    let done = shared.is_done();
                    // Planted bug for tests/loom.rs to catch: a check made
                    // before locking can miss a `finish` that runs between
                    // it and the waker's store.
                    #[cfg(smol_graceful_bug = "no_recheck")]
                    let done = done_before_lock;
                    if done {
                        return Poll::Ready(());
                    }
                    match &mut waiters.first {
                        Some(waker) if waker.will_wake(cx.waker()) => {}
                        waker => *waker = Some(cx.waker().clone()),
                    }
                    return Poll::Pending;
                }
                WaitState::Listening(listener) => {
                    // No wakeup can be lost: `finish` sets `done` before it
                    // notifies, and `done` is re-checked after registering.
                    if shared.is_done() {
                        return Poll::Ready(());
                    }
                    std::task::ready!(Pin::new(&mut *listener).poll(cx));
                    if shared.is_done() {
                        return Poll::Ready(());
                    }
                    *listener = shared.listen();
                }
            }
        }
    }

    /// Gives up the slot or the listener (out of line: only pending waits
    /// that are dropped get here).
    #[cold]
    #[inline(never)]
    fn unregister(&mut self) {
        let state = std::mem::replace(&mut self.state, WaitState::Idle);
        // Once done, nobody will use the slot again: skip the lock.
        if matches!(state, WaitState::First) && !self.shared.is_done() {
            let mut waiters = lock(&self.shared.waiters);
            waiters.first_taken = false;
            waiters.first = None;
        }
    }
}

impl Drop for Wait<'_> {
    #[inline]
    fn drop(&mut self) {
        if !matches!(self.state, WaitState::Idle) {
            self.unregister();
        }
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
#[cfg(feature = "smol")]
#[must_use = "futures do nothing unless polled"]
pub struct WaitTimeout<'a> {
    wait: Wait<'a>,
    timer: smol::Timer,
    group: &'a Group,
}

#[cfg(feature = "smol")]
impl Future for WaitTimeout<'_> {
    type Output = Result<(), Stragglers>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        // Finished work wins over an expired timer.
        if Pin::new(&mut self.wait).poll(cx).is_ready() {
            return Poll::Ready(Ok(()));
        }
        std::task::ready!(Pin::new(&mut self.timer).poll(cx));
        Poll::Ready(Err(self.group.stragglers()))
    }
}

#[cfg(feature = "smol")]
impl fmt::Debug for WaitTimeout<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WaitTimeout")
            .field("wait", &self.wait)
            .finish_non_exhaustive()
    }
}

pin_project! {
    /// A future that holds a [`Guard`] until it completes or is dropped.
    /// Made by [`Group::track`].
    #[must_use = "futures do nothing unless polled"]
    pub struct Tracked<F> {
        #[pin]
        future: F,
        guard: Option<Guard>,
    }
}

impl<F> Tracked<F> {
    /// Wraps `future` so it holds `guard` until it completes or is dropped.
    ///
    /// [`Group::track`] is the usual way; this one suits work derived from a
    /// task that already holds a guard, even after the group was closed.
    ///
    /// # Examples
    ///
    /// ```
    /// use smol_graceful::{Group, Tracked};
    ///
    /// let group = Group::new();
    /// let guard = group.add().unwrap();
    /// group.close();
    /// let follow_up = Tracked::new(guard.clone(), async {});
    /// assert_eq!(group.len(), 2);
    /// # drop((guard, follow_up));
    /// ```
    pub fn new(guard: Guard, future: F) -> Tracked<F> {
        Tracked {
            future,
            guard: Some(guard),
        }
    }
}

impl<F: Future> Future for Tracked<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.project();
        let output = std::task::ready!(this.future.poll(cx));
        // Done: uncount now rather than when the executor drops the future.
        this.guard.take();
        Poll::Ready(output)
    }
}

impl<F> fmt::Debug for Tracked<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Tracked")
            .field("guard", &self.guard)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    //! Internals, with no optional feature (CI runs these with
    //! `--no-default-features`); behaviour is tested in `tests/group.rs`.

    use super::*;
    use futures_lite::future::{block_on, poll_once};

    #[test]
    fn count_is_the_root_strong_count_minus_the_groups_own_reference() {
        let group = Group::new();
        assert_eq!(Weak::strong_count(&group.handle.root), 1);
        let guard = group.add().unwrap();
        let named = group.add_named("n").unwrap();
        assert_eq!(Weak::strong_count(&group.handle.root), 3);
        assert_eq!(group.len(), 2);
        group.close();
        assert_eq!(Weak::strong_count(&group.handle.root), 2);
        assert_eq!(group.len(), 2);
        drop((guard, named));
        assert_eq!(Weak::strong_count(&group.handle.root), 0);
        assert!(group.handle.shared.is_done());
    }

    #[test]
    fn close_uncounts_its_own_reference_under_the_lock_and_finishes_after() {
        // The two halves of `close_slow`, with a look in between: the count
        // is already exact when the lock is released, before the root
        // token's `Drop` has finished the group.
        let group = Group::new();
        group.handle.closed.store(true, Ordering::Relaxed);
        let last = group.release_own_reference();
        assert!(last.is_some(), "the group's own reference was the last");
        assert_eq!(group.len(), 0);
        assert_eq!(group.stragglers().count(), 0);
        assert_eq!(Weak::strong_count(&group.handle.root), 0);
        assert!(group.add().is_err());
        assert!(
            !group.handle.shared.is_done(),
            "not finished under the lock"
        );
        drop(last);
        assert!(group.handle.shared.is_done());

        // With a guard alive, giving up the own reference returns nothing and
        // the guard's drop finishes the group.
        let group = Group::new();
        let guard = group.add().unwrap();
        group.handle.closed.store(true, Ordering::Relaxed);
        assert!(group.release_own_reference().is_none());
        assert_eq!(group.len(), 1);
        assert!(group.release_own_reference().is_none(), "only once");
        assert_eq!(group.len(), 1);
        drop(guard);
        assert_eq!(group.len(), 0);
        assert!(group.handle.shared.is_done());
    }

    #[test]
    fn a_waker_woken_by_close_can_use_the_group() {
        // A waiter registers while a close is under way (its `close` call
        // lost the swap), then the winning close finishes the group and wakes
        // it. The waker re-enters the group: it would deadlock if the wake
        // ran under `open`'s lock.
        struct Reenter {
            group: Group,
            seen: std::sync::mpsc::Sender<(usize, usize, bool)>,
        }
        impl std::task::Wake for Reenter {
            fn wake(self: std::sync::Arc<Self>) {
                let group = &self.group;
                let _ =
                    self.seen
                        .send((group.len(), group.stragglers().count(), group.add().is_ok()));
            }
        }
        let (seen, woken) = std::sync::mpsc::channel();
        let closer = std::thread::spawn(move || {
            let group = Group::new();
            let waker = Waker::from(std::sync::Arc::new(Reenter {
                group: group.clone(),
                seen,
            }));
            group.handle.closed.store(true, Ordering::Relaxed);
            let mut wait = group.wait();
            let mut cx = Context::from_waker(&waker);
            assert!(Pin::new(&mut wait).poll(&mut cx).is_pending());
            // The close that won the swap, from its start.
            group.handle.closed.store(false, Ordering::Relaxed);
            assert!(group.close());
            assert!(Pin::new(&mut wait).poll(&mut cx).is_ready());
        });
        let seen = woken
            .recv_timeout(std::time::Duration::from_secs(5))
            .expect("woken, without a deadlock");
        assert_eq!(seen, (0, 0, false));
        closer.join().unwrap();
    }

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
    fn closing_an_empty_group_finishes_it_and_a_late_add_cannot_revive_it() {
        let group = Group::new();
        assert!(!group.handle.shared.is_done());
        group.close();
        assert!(group.handle.shared.is_done());
        // Even past the flag, the dead root cannot be upgraded.
        assert!(group.handle.root.upgrade().is_none());
    }

    #[test]
    fn dropping_the_last_handle_of_an_open_group_releases_its_reference() {
        let group = Group::new();
        let guard = group.add().unwrap();
        let root = group.handle.root.clone();
        drop(group);
        assert_eq!(root.strong_count(), 1, "the group's own reference is gone");
        drop(guard);
        assert_eq!(
            root.strong_count(),
            0,
            "the root token dropped: nothing leaked"
        );
    }

    #[test]
    fn named_guards_unregister_when_dropped_and_clones_register_anew() {
        let group = Group::new();
        let named = group.add_named("a").unwrap();
        let clone = named.clone();
        assert_eq!(group.stragglers().names(), ["a", "a"]);
        drop(named);
        assert_eq!(group.stragglers().names(), ["a"]);
        drop(clone);
        assert!(group.stragglers().named().is_empty());
    }

    #[test]
    fn the_first_waiter_takes_the_slot_and_later_ones_listen() {
        let group = Group::new();
        let guard = group.add().unwrap();
        let mut first = group.wait();
        assert!(matches!(first.state, WaitState::Idle));
        assert!(block_on(poll_once(&mut first)).is_none());
        assert!(matches!(first.state, WaitState::First));
        assert!(lock(&group.handle.shared.waiters).first.is_some());

        let mut second = group.wait();
        assert!(block_on(poll_once(&mut second)).is_none());
        assert!(matches!(second.state, WaitState::Listening(_)));

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
            matches!(wait.state, WaitState::Idle),
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
        assert!(matches!(next.state, WaitState::First));
        drop(guard);
        assert!(block_on(poll_once(&mut next)).is_some());
    }
}
