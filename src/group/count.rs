//! The count of a [`Group`](super::Group): how many guards are alive, kept
//! as the strong count of one `Arc`, the group's *root token*.
//!
//! A guard *is* a strong reference to the root token (directly, or through
//! a named token that holds one), so making and dropping one takes no lock
//! and allocates nothing. While the group is open it holds one extra strong
//! reference of its own, in `open`; closing gives it up. When the last
//! reference goes, the root token's `Drop` finishes the group (`wait.rs`).
//!
//! The payoff of this encoding is a drop of one read-modify-write (the
//! `Arc`'s release decrement) and an `add` with no lock. Its cost: `add` is a
//! `Weak::upgrade` (a load and a compare-and-swap loop, which retries while
//! other threads change the count at the same moment) plus a load for the
//! overflow check, more than an `Arc` clone's one unconditional increment;
//! and a group is two allocations (the handle, and the root token).
//!
//! # Invariants
//!
//! 1. Live guards = `strong_count(root) - open.is_some()`, read under
//!    `open`'s lock: `close` takes the group's own reference out of `open`
//!    and out of the count in one critical section, so `len` is exact at
//!    every instant.
//! 2. `add` succeeds only through `Weak::upgrade`, which refuses a count of
//!    zero: an `Ok` guard always holds the count above zero, so no wait can
//!    finish while it lives, and a failed `add` never counted.
//! 3. Once the count reaches zero it stays zero (the root token is gone and
//!    cannot be upgraded): a group is one lifecycle.
//! 4. `closed` goes from `false` to `true` once, by the swap in
//!    `close_slow`; only the winner gives up the group's own reference.
//!    Between close and drain it is what refuses `add` cheaply; the upgrade
//!    (2) settles the race with a concurrent close.
//! 5. More than [`MAX_GUARDS`] live references abort the process.
//!
//! # Deadlock safety
//!
//! Lock order: the named-guard registry's lock, then `open` (a snapshot of
//! the stragglers reads the count under the registry's lock); a task set's
//! state lock, then `open`. No code holds `open` while taking another lock,
//! and the root token's `Drop` (which wakes waiters: executor code) runs
//! only after `open` is unlocked.

use super::Closed;
use super::Handle;
use crate::sync::{lock, Arc, AtomicBool, Mutex, Ordering, Weak};

/// The count of one group: see the module docs.
pub(super) struct Count {
    /// Set once by `close` (invariant 4): what refuses `add` between close
    /// and drain without touching the count.
    closed: AtomicBool,
    /// The group's own strong reference to the root token while it is open;
    /// `None` once closed (invariant 1).
    open: Mutex<Option<Arc<Token>>>,
    /// The root token, weakly: `add` upgrades it, which fails once the count
    /// has reached zero (invariants 2 and 3).
    root: Weak<Token>,
}

/// A strong reference target held by guards. The root token's strong count
/// is the group's count.
pub(super) enum Token {
    /// The group's counter. Its `Drop` runs when the count reaches zero.
    /// Weak, so that the handle (which owns the root token while the group is
    /// open) and the token do not keep each other alive.
    Root(Weak<Handle>),
    /// A named guard: one strong reference to the root, plus a slot in the
    /// group's registry of named guards. 16 bytes, so a named guard's own
    /// allocation is 32: the registry is reached through the root token's
    /// handle rather than through a handle of its own.
    Named {
        /// Keeps the count one higher for as long as this named guard lives.
        root: Arc<Token>,
        /// The registry slot of this guard, if it has one (it has none if
        /// it was cloned after every handle of its group was gone).
        slot: usize,
    },
}

impl Token {
    /// The group's handle, unless every handle of it is gone (and with it
    /// the registry: there is nobody left to ask for stragglers).
    pub(super) fn handle(&self) -> Option<Arc<Handle>> {
        match self {
            Token::Root(handle) => handle.upgrade(),
            Token::Named { root, .. } => root.handle(),
        }
    }
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
            // If the handle is gone, so is the registry: nothing to do. The
            // handle we hold meanwhile may be the last one; it drops after
            // the registry's lock is released, and while `root` still counts
            // this guard.
            Token::Named { root, slot } => {
                if let Some(handle) = root.handle() {
                    handle.shared.registry.remove(*slot);
                }
            }
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

impl Count {
    /// The count of a new, open group whose handle is `handle`.
    pub(super) fn new(handle: &Weak<Handle>) -> Count {
        let root = Arc::new(Token::Root(handle.clone()));
        Count {
            closed: AtomicBool::new(false),
            root: Arc::downgrade(&root),
            open: Mutex::new(Some(root)),
        }
    }

    /// One more strong reference to the root token, unless the group is
    /// closed (invariants 2 and 4).
    #[inline]
    pub(super) fn add(&self) -> Result<Arc<Token>, Closed> {
        // Relaxed: this flag carries no data, it only makes `add` after a
        // `close` that happened-before it fail (coherence guarantees that
        // much). The race with a concurrent close is settled by `upgrade`.
        if self.closed.load(Ordering::Relaxed) {
            return Err(Closed);
        }
        // `upgrade` increments the count only if it is not zero, atomically:
        // if a concurrent close already drained the group we get `Closed`,
        // otherwise our guard holds the count up and no waiter finishes.
        let root = self.root.upgrade().ok_or(Closed)?;
        check_count(&root);
        Ok(root)
    }

    /// The number of live guards, exact for the instant it reads
    /// (invariant 1).
    pub(super) fn len(&self) -> usize {
        let open = lock(&self.open);
        Weak::strong_count(&self.root) - usize::from(open.is_some())
    }

    /// Closes the group; `true` if this call closed it.
    #[inline]
    pub(super) fn close(&self) -> bool {
        // A load first, so that waiting on a closed group (every `wait` after
        // the first) costs no read-modify-write. Relaxed: the flag carries no
        // data; a stale `false` only sends us to the swap below.
        if self.closed.load(Ordering::Relaxed) {
            return false;
        }
        self.close_slow()
    }

    #[cold]
    fn close_slow(&self) -> bool {
        // Relaxed suffices: the flag carries no data, and exactly one caller
        // wins the swap (RMWs on one location are totally ordered).
        if self.closed.swap(true, Ordering::Relaxed) {
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
    pub(super) fn release_own_reference(&self) -> Option<impl Sized> {
        let mut open = lock(&self.open);
        open.take().and_then(Arc::into_inner)
    }

    /// True once closed.
    #[inline]
    pub(super) fn is_closed(&self) -> bool {
        // Relaxed: a snapshot of a flag that carries no data.
        self.closed.load(Ordering::Relaxed)
    }

    #[cfg(test)]
    pub(super) fn root(&self) -> &Weak<Token> {
        &self.root
    }

    #[cfg(test)]
    pub(super) fn mark_closed(&self, closed: bool) {
        // Relaxed: tests set the flag on the thread that then reads it.
        self.closed.store(closed, Ordering::Relaxed);
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
pub(super) fn check_count(root: &Arc<Token>) {
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

#[cfg(test)]
mod tests {
    //! The count's encoding and `close`'s two halves; behaviour is tested in
    //! `tests/group.rs`.

    use std::future::Future;
    use std::pin::Pin;
    use std::task::{Context, Waker};

    use super::super::Group;

    #[test]
    fn a_named_token_is_16_bytes() {
        // With the `Arc`'s two counts, a named guard allocates 32 bytes
        // besides its registry slot.
        assert_eq!(size_of::<super::Token>(), 16);
    }

    #[test]
    fn a_named_guard_outliving_every_handle_still_counts_and_clones() {
        let group = Group::new();
        let named = group.add_named(format!("n{}", 1)).unwrap();
        let root = group.handle.count.root().clone();
        drop(group);
        // Every handle is gone, and with it the registry; the guard still
        // counts, and so does a clone of it (unlisted: nobody can ask).
        assert_eq!(root.strong_count(), 1);
        let clone = named.clone();
        assert!(clone.is_named());
        assert_eq!(root.strong_count(), 2);
        drop(named);
        assert_eq!(root.strong_count(), 1);
        drop(clone);
        assert_eq!(root.strong_count(), 0, "nothing leaked");
    }

    #[test]
    fn count_is_the_root_strong_count_minus_the_groups_own_reference() {
        let group = Group::new();
        assert_eq!(group.handle.count.root().strong_count(), 1);
        let guard = group.add().unwrap();
        let named = group.add_named("n").unwrap();
        assert_eq!(group.handle.count.root().strong_count(), 3);
        assert_eq!(group.len(), 2);
        group.close();
        assert_eq!(group.handle.count.root().strong_count(), 2);
        assert_eq!(group.len(), 2);
        drop((guard, named));
        assert_eq!(group.handle.count.root().strong_count(), 0);
        assert!(group.handle.shared.is_done());
    }

    #[test]
    fn close_uncounts_its_own_reference_under_the_lock_and_finishes_after() {
        // The two halves of `close_slow`, with a look in between: the count
        // is already exact when the lock is released, before the root
        // token's `Drop` has finished the group.
        let group = Group::new();
        group.handle.count.mark_closed(true);
        let last = group.handle.count.release_own_reference();
        assert!(last.is_some(), "the group's own reference was the last");
        assert_eq!(group.len(), 0);
        assert_eq!(group.stragglers().count(), 0);
        assert_eq!(group.handle.count.root().strong_count(), 0);
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
        group.handle.count.mark_closed(true);
        assert!(group.handle.count.release_own_reference().is_none());
        assert_eq!(group.len(), 1);
        assert!(
            group.handle.count.release_own_reference().is_none(),
            "only once"
        );
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
            group.handle.count.mark_closed(true);
            let mut wait = group.wait();
            let mut cx = Context::from_waker(&waker);
            assert!(Pin::new(&mut wait).poll(&mut cx).is_pending());
            // The close that won the swap, from its start.
            group.handle.count.mark_closed(false);
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
    fn closing_an_empty_group_finishes_it_and_a_late_add_cannot_revive_it() {
        let group = Group::new();
        assert!(!group.handle.shared.is_done());
        group.close();
        assert!(group.handle.shared.is_done());
        // Even past the flag, the dead root cannot be upgraded.
        assert!(group.handle.count.root().upgrade().is_none());
    }

    #[test]
    fn dropping_the_last_handle_of_an_open_group_releases_its_reference() {
        let group = Group::new();
        let guard = group.add().unwrap();
        let root = group.handle.count.root().clone();
        drop(group);
        assert_eq!(root.strong_count(), 1, "the group's own reference is gone");
        drop(guard);
        assert_eq!(
            root.strong_count(),
            0,
            "the root token dropped: nothing leaked"
        );
    }
}
