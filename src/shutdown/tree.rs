//! The scope tree behind [`Shutdown`](super::Shutdown): which scopes hear
//! whose trigger.
//!
//! Every scope is a [`Node`]. A child holds its parent strongly; a parent
//! holds its children weakly, each in a numbered slot of a free-list slab.
//! A trigger walks the subtree below the node with an explicit stack,
//! recording the reason in each node and closing each node's channel (made
//! only once somebody waits). A node that dies frees its slot in its parent,
//! and unlinks the ancestors that die with it, in a loop.
//!
//! # Invariants
//!
//! 1. Strong references point only upward (child to parent). No cycle can
//!    keep a node alive, and a live node keeps its whole ancestry alive: a
//!    scope whose handles were all dropped still relays its ancestors'
//!    triggers to its live descendants.
//! 2. A node's slot in its parent's `children` holds its `Weak` from the
//!    node's creation (under the parent's lock, until the `Arc` is complete)
//!    until the node's `Drop` frees it (under the parent's lock). Slots are
//!    reused through a free list, so making a child and dropping one are
//!    O(1) amortized however many children are alive.
//! 3. `reason` goes from `None` to `Some` once, under the node's lock, and
//!    `triggered` is set in the same critical section. A channel is made
//!    only under the lock and only while `reason` is `None`, and the trigger
//!    that sets `reason` closes the channel that exists at that moment.
//! 4. Neither a trigger nor a drop recurses per level: the trigger walks with
//!    a `Vec` as its stack, and a drop unlinks dying ancestors in a loop.
//! 5. A walk also descends below nodes that were already triggered, so when
//!    the `trigger` call that won returns, every live descendant of its node
//!    is triggered.
//! 6. A callback registered on a node is in its `callbacks` from
//!    `register` until the trigger takes it (in the critical section that
//!    sets `reason`) or `unregister` removes it; callbacks fire after the
//!    walk, with no lock held.
//!
//! # Deadlock safety
//!
//! At most one node's lock is held at any time: `child` holds the parent's
//! lock while it builds the child (whose lock it does not take), a walk
//! locks one node at a time, and a drop locks only the parent whose slot it
//! frees. No user code runs under a lock: channels are closed, wakers woken,
//! and `Arc`s (whose last drop runs `Node::drop`) released after unlocking.

use std::convert::Infallible;
use std::sync::OnceLock;

use async_channel::{Receiver, Sender};

use super::callbacks::Callback;
use super::Reason;
use crate::panic::drop_quietly;
use crate::sync::{get_mut, lock, Arc, AtomicBool, Mutex, Ordering, Weak};

/// One scope: what a `Shutdown` handle points to.
///
/// Laid out for a small live child (see `tests/shutdown_memory.rs`): what
/// only some scopes need (children, a channel, a reason) sits behind one
/// pointer each, made on first need.
pub(crate) struct Node {
    /// The parent; `None` for a root, and for a child made after its parent
    /// had triggered (it starts triggered and needs no link). Taken only by
    /// `drop`.
    parent: Option<Arc<Node>>,
    /// This node's slot in its parent's children (meaningless without a
    /// parent).
    slot: u32,
    /// Set (in the critical section that sets `state.reason`) once
    /// triggered: the lock-free answer of `is_triggered`.
    triggered: AtomicBool,
    state: Mutex<State>,
    /// The channel that waiters watch; it never carries a message, and the
    /// trigger closes it. Made on first need, under `state`'s lock
    /// (invariant 3), so a scope nobody waits on costs no channel.
    channel: OnceLock<Box<(Sender<Infallible>, Receiver<Infallible>)>>,
}

/// A parent link taken out of a dying node.
struct Link {
    node: Arc<Node>,
    slot: u32,
}

#[derive(Default)]
struct State {
    /// Shared by every node one trigger reached (one allocation per
    /// trigger, not per node).
    reason: Option<std::sync::Arc<Reason>>,
    /// Made at the first child.
    children: Option<Box<Slab<Weak<Node>>>>,
    /// The callbacks to run when this node triggers (see `callbacks.rs`);
    /// made at the first one, taken by the trigger.
    callbacks: Option<Box<Slab<std::sync::Arc<Callback>>>>,
}

/// Children's weak references, or callbacks, in slots reused through a free
/// list.
struct Slab<T> {
    slots: Vec<Option<T>>,
    /// The free slots, reused last-freed first.
    free: Vec<u32>,
    live: usize,
}

impl<T> Default for Slab<T> {
    fn default() -> Slab<T> {
        Slab {
            slots: Vec::new(),
            free: Vec::new(),
            live: 0,
        }
    }
}

impl<T> Slab<T> {
    fn insert(&mut self, child: T) -> u32 {
        self.live += 1;
        match self.free.pop() {
            Some(slot) => {
                debug_assert!(self.slots[slot as usize].is_none());
                self.slots[slot as usize] = Some(child);
                slot
            }
            None => {
                let slot = u32::try_from(self.slots.len())
                    .expect("more than u32::MAX live child scopes of one scope");
                self.slots.push(Some(child));
                slot
            }
        }
    }

    /// Frees `slot`, returning what it held so that the caller drops it
    /// after unlocking.
    fn remove(&mut self, slot: u32) -> Option<T> {
        // `None` for a slot already freed: a stopped callback that the
        // trigger took first.
        let old = self.slots.get_mut(slot as usize)?.take()?;
        self.free.push(slot);
        self.live -= 1;
        if self.live == 0 {
            // Forget the free list (O(slots), paid for by the pushes that
            // made them), and give back the memory of a burst of children
            // that is over; a few slots stay for the next child.
            if self.slots.capacity() > 16 {
                *self = Slab::default();
            } else {
                self.slots.clear();
                self.free.clear();
            }
        }
        Some(old)
    }
}

impl Slab<Weak<Node>> {
    fn upgrade_into(&self, out: &mut Vec<Arc<Node>>) {
        out.extend(self.slots.iter().flatten().filter_map(Weak::upgrade));
    }
}

// Under loom, `sync::Arc` is a model that needs this (see `sync.rs`); the
// unlinking is in `Drop`, which runs in both builds.
#[cfg(loom)]
impl crate::sync::LastRef for Node {}

impl Default for Node {
    fn default() -> Node {
        Node::new(None)
    }
}

impl Node {
    fn new(parent: Option<Link>) -> Node {
        let (parent, slot) = match parent {
            Some(Link { node, slot }) => (Some(node), slot),
            None => (None, 0),
        };
        Node {
            parent,
            slot,
            triggered: AtomicBool::new(false),
            state: Mutex::new(State::default()),
            channel: OnceLock::new(),
        }
    }

    /// A new child of `parent`; triggered at once if `parent` already is.
    pub(crate) fn child(parent: &Arc<Node>) -> Arc<Node> {
        let mut state = lock(&parent.state);
        if let Some(reason) = state.reason.clone() {
            drop(state);
            let child = Arc::new(Node::default());
            child.trigger_one(&reason, &mut Vec::new(), &mut Vec::new());
            return child;
        }
        // The lock is held until `new_cyclic` has returned, so no walk can
        // find the slot before its `Weak` can be upgraded (invariant 2).
        Arc::new_cyclic(|weak| {
            let children = state.children.get_or_insert_with(Box::default);
            let slot = children.insert(weak.clone());
            Node::new(Some(Link {
                node: Arc::clone(parent),
                slot,
            }))
        })
    }

    /// Triggers this node and every live descendant with `reason`.
    ///
    /// Returns `true` if this call triggered this node. If it already was,
    /// its descendants were triggered by the call that did (or are being
    /// triggered by it), and nothing is walked.
    pub(crate) fn trigger(&self, reason: Reason) -> bool {
        let reason = std::sync::Arc::new(reason);
        let (mut stack, mut callbacks) = (Vec::new(), Vec::new());
        if !self.trigger_one(&reason, &mut stack, &mut callbacks) {
            return false;
        }
        // Invariant 4: a loop, not recursion. Each `Arc` popped here is
        // dropped after its node's lock is released.
        while let Some(node) = stack.pop() {
            node.trigger_one(&reason, &mut stack, &mut callbacks);
        }
        // Invariant 6: after every lock is released.
        callbacks.into_iter().for_each(Callback::fire);
        true
    }

    /// Triggers this node alone and pushes its live children on `stack`
    /// (invariant 5: even when it was already triggered). Returns `true` if
    /// this call triggered it.
    fn trigger_one(
        &self,
        reason: &std::sync::Arc<Reason>,
        stack: &mut Vec<Arc<Node>>,
        callbacks: &mut Vec<std::sync::Arc<Callback>>,
    ) -> bool {
        let channel = {
            let mut state = lock(&self.state);
            if let Some(children) = &state.children {
                children.upgrade_into(stack);
            }
            if state.reason.is_some() {
                return false;
            }
            state.reason = Some(std::sync::Arc::clone(reason));
            if let Some(registered) = state.callbacks.take() {
                callbacks.extend(registered.slots.into_iter().flatten());
            }
            // Relaxed would do for the flag alone; Release pairs with the
            // Acquire in `is_triggered`, so a thread that sees `true` and then
            // reads anything this thread wrote before the trigger sees it
            // (the promise of `Shutdown::is_triggered`, modelled in
            // tests/loom.rs).
            // (Planted bug for tests/loom.rs: Relaxed, which loom must catch.)
            let order = if cfg!(smol_graceful_bug = "relaxed_triggered") {
                Ordering::Relaxed
            } else {
                Ordering::Release
            };
            self.triggered.store(true, order);
            // No channel can be made from here on (invariant 3), so the one
            // read here is the only one that can have waiters.
            self.channel.get()
        };
        if let Some(channel) = channel {
            let (_, receiver) = &**channel;
            // Outside the lock: this wakes the waiters' wakers.
            receiver.close();
        }
        true
    }

    pub(crate) fn is_triggered(&self) -> bool {
        // Acquire pairs with the Release store in `trigger_one`.
        // (Planted bug for tests/loom.rs: Relaxed, which loom must catch.)
        let order = if cfg!(smol_graceful_bug = "relaxed_triggered") {
            Ordering::Relaxed
        } else {
            Ordering::Acquire
        };
        self.triggered.load(order)
    }

    /// Registers `callback` to fire when this node triggers: `Some(slot)`,
    /// or `None` if it already has (the caller fires it).
    pub(crate) fn register(&self, callback: &std::sync::Arc<Callback>) -> Option<u32> {
        let mut state = lock(&self.state);
        if state.reason.is_some() {
            return None;
        }
        let slab = state.callbacks.get_or_insert_with(Box::default);
        Some(slab.insert(std::sync::Arc::clone(callback)))
    }

    /// Forgets the callback in `slot` (it was stopped), if the trigger has
    /// not taken it; it is dropped after unlocking.
    pub(crate) fn unregister(&self, slot: u32) {
        let removed = lock(&self.state)
            .callbacks
            .as_mut()
            .and_then(|callbacks| callbacks.remove(slot));
        drop(removed);
    }

    pub(crate) fn reason(&self) -> Option<Reason> {
        lock(&self.state).reason.as_deref().cloned()
    }

    /// The channel to wait on, made if needed; `None` once triggered.
    ///
    /// No wakeup can be lost: the channel is made (or found) under the lock
    /// while `reason` is `None`, so the trigger that sets `reason` later
    /// finds it and closes it (invariant 3).
    pub(crate) fn receiver(&self) -> Option<&Receiver<Infallible>> {
        let state = lock(&self.state);
        if state.reason.is_some() {
            return None;
        }
        let (_, receiver) = &**self
            .channel
            .get_or_init(|| Box::new(async_channel::bounded(1)));
        drop(state);
        Some(receiver)
    }

    #[cfg(test)]
    pub(crate) fn live_children(&self) -> (usize, usize) {
        let state = lock(&self.state);
        state
            .children
            .as_ref()
            .map_or((0, 0), |c| (c.live, c.slots.len()))
    }

    #[cfg(test)]
    pub(crate) fn has_channel(&self) -> bool {
        self.channel.get().is_some()
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        // Callbacks never fired: their captured state is user code, dropped
        // one at a time so that a panicking `Drop` leaves the others dropped
        // (and cannot abort the process by panicking during another's).
        // `&mut self`: no other reference, so no lock (a drop is a hot path).
        let callbacks = get_mut(&mut self.state).callbacks.take();
        if let Some(callbacks) = callbacks {
            callbacks.slots.into_iter().flatten().for_each(drop_quietly);
        }
        // Invariant 4: free this node's slot, and if this node held the
        // last reference to its parent, free the parent's slot in the same
        // loop instead of recursing through the parent's `Drop`.
        let mut link = self.parent.take().map(|node| Link {
            node,
            slot: self.slot,
        });
        while let Some(Link { node: parent, slot }) = link {
            let freed = lock(&parent.state)
                .children
                .as_mut()
                .map(|children| children.remove(slot));
            drop(freed);
            link = parent_link_if_last(parent);
        }
    }
}

/// The parent's own link, if `node` was the last reference to it: the
/// caller unlinks it in its loop, and the parent is dropped without it (no
/// recursion through `Node::drop`).
#[cfg(not(loom))]
fn parent_link_if_last(node: Arc<Node>) -> Option<Link> {
    let mut node = Arc::into_inner(node)?;
    let slot = node.slot;
    node.parent.take().map(|node| Link { node, slot })
}

/// Under loom the model's `Arc` frees a node through std's `Arc` (which
/// runs `Node::drop`, recursing once per level); model chains are short.
#[cfg(loom)]
fn parent_link_if_last(node: Arc<Node>) -> Option<Link> {
    drop(node);
    None
}
