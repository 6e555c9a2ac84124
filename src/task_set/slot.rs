//! The bookkeeping of a set, in one place: the table of outcomes, and the
//! `Slot` each running task owns, which records the task's outcome, then
//! drops its guard of the group, then releases its permit.
//!
//! # How it is built
//!
//! A set is a [`Group`] (who is still running), a [`Shutdown`] (tells the
//! siblings to stop), an optional semaphore (the limit, see `permit.rs`),
//! an abort flag (see `abort.rs`) and one mutex-protected table of outcomes
//! indexed by spawn order (the `State` in [`Shared`]), with the queue of
//! finished tasks in completion order that `join_next` pops. A permit takes
//! an anonymous guard of the group when it is reserved (a `Weak::upgrade`,
//! a compare-and-swap loop, plus a load; no lock and no allocation), so a
//! reservation that succeeded before `join` closed the group is waited
//! for. When the permit starts its task, the task owns a [`Slot`]: its
//! index, that guard and, in a limited set, a semaphore permit. While the
//! task runs, its table entry holds its birth time and spawn site, and a
//! name given to it sits beside its index in a list of its own (an unnamed
//! task's entry is three words): that is what [`Shared::stragglers`]
//! reports; names are only formatted (`task #i`) when a report, an error
//! or `join_next` needs them. When the task ends, the slot records the
//! outcome *first* (and queues its index; a success in one lock, a failure
//! in two, its message written between them),
//! then drops the guard, then releases the permit: once the group is
//! drained every outcome is in the table, and the group never counts more
//! tasks than the limit allows. A slot dropped before its task ended (the
//! future was dropped, aborted, or its executor went away) records a
//! cancellation in the same way. [`Shared::take_outcomes`] hands what is
//! left of the table to `join`; [`Shared::poll_next`] hands out one
//! finished task at a time to `join_next`.
//!
//! # Invariants
//!
//! 1. A task counts in the group before it is listed in the table, and its
//!    outcome is recorded before it stops counting: [`Slot::register`]
//!    takes the guard as an argument, and [`Slot::settle`] records, then
//!    drops the guard. So once the group is drained every outcome is in the
//!    table, and under the table's lock the group counts at least as many
//!    tasks as the table lists as running.
//! 2. A slot releases its permit last, after its guard: a new task can only
//!    count once this one stopped, so the group never counts more tasks than
//!    the limit allows.
//! 3. A slot settles exactly once: its guard is `Some` until the outcome is
//!    recorded, and a slot dropped unsettled records a cancellation. `join`
//!    takes the table only once the group is drained, that is after every
//!    guard dropped, so `settle` always finds its entry.
//! 4. `State::running` is the number of entries that are `Running` or
//!    `Settling`; every entry that is `Succeeded` or `Failed` has its index
//!    in `State::completed` exactly once, in the order they were recorded,
//!    and `Taken` entries are in neither. The first failure sets
//!    `State::failed` and triggers the shutdown before its entry is stored,
//!    with nothing in between that can panic: user code there (the error's
//!    `Display`) runs under `user_code`.
//! 5. User code the set runs on its own (the `Display` and `Drop` of the
//!    error type, the `Drop` of results, panic payloads and aborted task
//!    bodies, the logger) runs under `user_code` (see `user_code.rs`),
//!    outside the table's lock, so a panic there cannot stop the set from
//!    recording an outcome, triggering its shutdown or answering `join`.
//! 6. `State::anchor` is `Some` exactly while `running > 0` (set by the
//!    `register` that makes `running` 1, taken by the `settle` that makes it
//!    0, under the lock), so it never keeps the group from draining once no
//!    task runs.
//! 7. `len` and reports count from the table, not the group: `running`
//!    plus [`Shared::reserved`], the permits not used yet. A permit leaves
//!    `reserved` in the critical section of `register` that adds its task
//!    to `running`, and a task leaves `running` in the one that records its
//!    outcome, so `len` is 0 exactly when `join_next` says nothing is left,
//!    even while the last task is still dropping its guard. A spawner whose `add` fails
//!    because `join` closed the group clones it: like Go's `WaitGroup.Add`
//!    while the counter is above zero, a task may add work while the set
//!    is being joined, and a set that drained (or was aborted) takes none.
//!
//! # Deadlock safety
//!
//! The table's lock is the only lock of this module, and no other lock is
//! taken under it (the group never takes it either). Nothing else runs
//! under it: the guard is taken before
//! it ([`Slot::register`]); the guard dropped, the permit released, the
//! shutdown triggered and `join_next`'s waker woken after it
//! ([`Slot::settle`]); `join` polls the group's wait before it takes the
//! table; user code never runs under it (invariant 5).
//!
//! The atomics of this module are the abort flag (see `abort.rs` for its
//! orderings) and `reserved` (relaxed: read and, when it matters, written
//! under the table's lock): the table is behind a mutex, and the group's own orderings
//! (see `group.rs`) make every recorded outcome visible to the `join` that
//! sees the group drained. Task sets need the `smol` feature, which loom
//! builds leave off, so they never run under loom, and their `Arc`s are
//! `std::sync::Arc`.

use std::borrow::Cow;
use std::collections::VecDeque;
use std::panic::Location;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::Instant;

use smol::lock::SemaphoreGuardArc;

use super::abort::AbortFlag;
use super::error::TaskError;
use super::permit::Limit;
use super::user_code::{drop_payload, drop_quietly, user_code};
use crate::group::Guard;
use crate::panic::message as panic_message;
use crate::shutdown::{Reason, Shutdown};
use crate::stragglers::{Straggler, Stragglers};
use crate::sync::{lock, Mutex};

/// What `join_next` yields: a finished task's name and outcome.
pub(super) type Next<T, E> = (Cow<'static, str>, Result<T, TaskError<E>>);

/// What a set shares with its spawners and running tasks.
pub(super) struct Shared<T, E> {
    /// The set's shutdown, triggered by the first failure.
    pub(super) shutdown: Shutdown,
    /// The concurrency limit, if any.
    pub(super) limit: Option<Limit>,
    /// Set by `abort`; every task watches it.
    pub(super) abort: AbortFlag,
    /// Permits taken and not yet used or dropped: each counts as a task
    /// (see [`len`](Self::len)) from its reservation until `register` lists
    /// its task, which takes it out of here under the table's lock.
    reserved: AtomicUsize,
    state: Mutex<State<T, E>>,
}

/// A permit's place in [`Shared::reserved`], from the reservation until its
/// task is listed or the permit is dropped unused.
pub(super) struct Reservation<'s>(&'s AtomicUsize);

impl<'s> Reservation<'s> {
    /// Counts one more reserved permit of `shared`'s set.
    pub(super) fn new<T, E>(shared: &'s Shared<T, E>) -> Reservation<'s> {
        // Relaxed: a count read under the table's lock by `len`, as a
        // snapshot; the decrement that matters for consistency (in
        // `register`) happens under that lock.
        shared.reserved.fetch_add(1, Ordering::Relaxed);
        Reservation(&shared.reserved)
    }
}

impl Drop for Reservation<'_> {
    fn drop(&mut self) {
        // Relaxed: see `new`.
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

struct State<T, E> {
    /// One entry per spawned task, indexed by spawn order. Taken by `join`.
    outcomes: Vec<Outcome<T, E>>,
    /// The names given to tasks, each beside its task's index, in spawn
    /// order (so sorted by index); unnamed tasks have none. A name is taken
    /// (`None`) when an error or `join_next` hands it out. Kept apart from
    /// `outcomes` so that an unnamed task's entry is two words.
    names: Vec<(usize, Option<Cow<'static, str>>)>,
    /// The latest birth recorded, so that births follow spawn order.
    last_born: Option<Instant>,
    /// How many entries are `Running` or `Settling` (invariant 4).
    running: usize,
    /// The indices of `Succeeded` and `Failed` entries, in the order they
    /// were recorded (invariant 4). Popped by `join_next`.
    completed: VecDeque<usize>,
    /// Set by the first failure, before its entry is stored.
    failed: bool,
    /// The waker of a pending `join_next`, woken when an outcome is queued.
    next_waker: Option<Waker>,
    /// A guard held while `running > 0`, that a [`Spawner`](super::Spawner)
    /// clones to add a task after `join` closed the group: a running task
    /// proves the set is not done (invariant 6).
    anchor: Option<Guard>,
}

impl<T, E> Drop for State<T, E> {
    /// Drops what a set that was never joined still holds, one value at a
    /// time, so that a panicking `Drop` of one leaves the others dropped and
    /// the panic inside (invariant 5).
    fn drop(&mut self) {
        for outcome in self.outcomes.drain(..) {
            drop_quietly(outcome);
        }
    }
}

/// One task's entry in a set's table: three words when `T` is at most two
/// (its name, if any, is in `State::names`; a failure is boxed).
enum Outcome<T, E> {
    /// Still running: what a straggler report says about it.
    Running {
        born: Instant,
        location: &'static Location<'static>,
    },
    /// A failure whose message is being written (outside the lock).
    Settling,
    /// Returned `Ok(value)`.
    Succeeded(T),
    /// Failed, panicked or was cancelled. Boxed: failures are rare, and an
    /// unboxed error would make every entry as large as a `TaskError`.
    Failed(Box<TaskError<E>>),
    /// Handed out by `join_next`.
    Taken,
}

/// The name of task `index`: the one it was given, or `task #index`.
fn task_name(name: Option<Cow<'static, str>>, index: usize) -> Cow<'static, str> {
    name.unwrap_or_else(|| Cow::Owned(format!("task #{index}")))
}

/// Where task `index` is in `names` (sorted by index), if it was named.
fn name_slot(names: &[(usize, Option<Cow<'static, str>>)], index: usize) -> Option<usize> {
    names.binary_search_by_key(&index, |&(i, _)| i).ok()
}

/// Takes task `index`'s name out of `names`: it is handed out once.
fn take_name(
    names: &mut [(usize, Option<Cow<'static, str>>)],
    index: usize,
) -> Option<Cow<'static, str>> {
    let at = name_slot(names, index)?;
    names.get_mut(at)?.1.take()
}

impl<T, E> State<T, E> {
    /// The birth of a task that starts `now` (read before the lock, to keep
    /// the clock out of it): never before the previous task's, so that
    /// spawn order and births agree (stragglers are listed oldest first)
    /// even if two threads read the clock in one order and take the lock in
    /// the other.
    fn born(&mut self, now: Instant) -> Instant {
        let born = match self.last_born {
            Some(last) if last > now => last,
            _ => now,
        };
        self.last_born = Some(born);
        born
    }
}

impl<T, E> Shared<T, E> {
    /// An empty table, for a set whose shutdown is `shutdown`.
    pub(super) fn new(shutdown: Shutdown) -> Shared<T, E> {
        Shared {
            shutdown,
            limit: None,
            abort: AbortFlag::new(),
            reserved: AtomicUsize::new(0),
            state: Mutex::new(State {
                outcomes: Vec::new(),
                names: Vec::new(),
                last_born: None,
                running: 0,
                completed: VecDeque::new(),
                failed: false,
                next_waker: None,
                anchor: None,
            }),
        }
    }

    /// True if no task was ever listed.
    pub(super) fn never_spawned(&self) -> bool {
        lock(&self.state).outcomes.is_empty()
    }

    /// The running tasks, each by its name, oldest first, and their count
    /// (with the permits not used yet, as [`len`](Self::len)).
    pub(super) fn stragglers(&self) -> Stragglers {
        let state = lock(&self.state);
        let now = Instant::now();
        // Read under the table's lock, with the list: `running` counts every
        // `Running` entry (invariant 4), so `count >= named.len()`. Relaxed:
        // see `Reservation::new`.
        let count = state.running + self.reserved.load(Ordering::Relaxed);
        let named = state
            .outcomes
            .iter()
            .enumerate()
            .filter_map(|(index, outcome)| match outcome {
                Outcome::Running { born, location } => {
                    let name = name_slot(&state.names, index)
                        .and_then(|at| state.names.get(at))
                        .and_then(|(_, name)| name.clone());
                    Some(Straggler::new(
                        task_name(name, index),
                        now.saturating_duration_since(*born),
                        location,
                    ))
                }
                _ => None,
            })
            .collect();
        Stragglers::new(count, named)
    }

    /// How many tasks run, and how many permits wait to be used.
    pub(super) fn len(&self) -> usize {
        let state = lock(&self.state);
        // The table's running tasks and the permits not used yet: a task
        // leaves `reserved` and joins `running` in one critical section
        // (`register`), and leaves `running` when its outcome is recorded,
        // so `len` is 0 exactly when `join_next` says no task is left, even
        // while the last task is still dropping its guard. Relaxed: see
        // `Reservation::new`.
        state.running + self.reserved.load(Ordering::Relaxed)
    }

    /// A new guard while a task still runs and the set was not aborted:
    /// how a spawner adds a task after `join` closed the group (invariant 6).
    pub(super) fn anchor_guard(&self) -> Option<Guard> {
        if self.abort.is_aborted() {
            return None;
        }
        lock(&self.state).anchor.clone()
    }

    /// The next finished task in completion order, for `join_next`:
    /// `None` once no task is running or waiting to be handed out, pending
    /// (with `cx`'s waker kept) while tasks run but none has finished.
    pub(super) fn poll_next(&self, cx: &mut Context<'_>) -> Poll<Option<Next<T, E>>> {
        let outcome = {
            let mut state = lock(&self.state);
            loop {
                let Some(index) = state.completed.pop_front() else {
                    if state.running == 0 {
                        return Poll::Ready(None);
                    }
                    match &mut state.next_waker {
                        Some(waker) if waker.will_wake(cx.waker()) => {}
                        slot => *slot = Some(cx.waker().clone()),
                    }
                    return Poll::Pending;
                };
                // Always present: `completed` and `outcomes` are taken
                // together by `join` (invariant 4).
                if let Some(entry) = state.outcomes.get_mut(index) {
                    let outcome = std::mem::replace(entry, Outcome::Taken);
                    break (index, outcome, take_name(&mut state.names, index));
                }
            }
        };
        let (index, outcome, name) = outcome;
        Poll::Ready(match outcome {
            Outcome::Succeeded(value) => Some((task_name(name, index), Ok(value))),
            Outcome::Failed(error) => Some((error.task_name().clone(), Err(*error))),
            // Invariant 4 rules these out; should it ever break, the task is
            // reported rather than lost.
            Outcome::Running { .. } | Outcome::Settling | Outcome::Taken => {
                let task = task_name(name, index);
                Some((task.clone(), Err(TaskError::Cancelled { task })))
            }
        })
    }

    /// Takes what is left of the table for `join`, once the group is
    /// drained: every task's slot recorded its outcome before its guard
    /// dropped (invariant 1), so the table is complete.
    pub(super) fn take_outcomes(&self) -> Outcomes<T, E> {
        let mut state = lock(&self.state);
        Outcomes {
            outcomes: std::mem::take(&mut state.outcomes),
            names: std::mem::take(&mut state.names),
            completed: std::mem::take(&mut state.completed),
            failed: state.failed,
        }
    }
}

/// A complete table, taken by `join`.
pub(super) struct Outcomes<T, E> {
    outcomes: Vec<Outcome<T, E>>,
    names: Vec<(usize, Option<Cow<'static, str>>)>,
    completed: VecDeque<usize>,
    /// `State::failed`: false if no task ever failed, so that no entry is
    /// `Failed` and there is no first failure to look for.
    failed: bool,
}

impl<T, E> Outcomes<T, E> {
    /// What `join` returns: the first failure (in completion order) that
    /// `join_next` did not hand out, or every result it did not hand out,
    /// in spawn order. Results and errors it does not return are dropped
    /// one by one, quietly (invariant 5).
    pub(super) fn into_results(self) -> Result<Vec<T>, TaskError<E>> {
        let Outcomes {
            mut outcomes,
            mut names,
            completed,
            failed,
        } = self;
        // No task ever failed: no entry is `Failed`, nothing to look for.
        let first_failure = if failed {
            completed
                .iter()
                .find(|&&index| matches!(outcomes.get(index), Some(Outcome::Failed(_))))
        } else {
            None
        };
        let mut error = match first_failure.and_then(|&index| outcomes.get_mut(index)) {
            Some(entry) => match std::mem::replace(entry, Outcome::Taken) {
                Outcome::Failed(error) => Some(*error),
                other => {
                    drop_quietly(other);
                    None
                }
            },
            None => None,
        };
        let mut values = Vec::with_capacity(if error.is_none() { outcomes.len() } else { 0 });
        for (index, outcome) in outcomes.into_iter().enumerate() {
            match outcome {
                Outcome::Succeeded(value) if error.is_none() => values.push(value),
                Outcome::Taken => {}
                // Invariant 1 rules these out; should it ever break, `join`
                // still answers, and names the task.
                Outcome::Running { .. } | Outcome::Settling => {
                    error.get_or_insert_with(|| TaskError::Cancelled {
                        task: task_name(take_name(&mut names, index), index),
                    });
                }
                other => drop_quietly(other),
            }
        }
        match error {
            None => Ok(values),
            Some(error) => {
                values.into_iter().for_each(drop_quietly);
                Err(error)
            }
        }
    }
}

/// One running task's place in its set: records the outcome, then stops
/// counting in the group, then frees the limit's slot.
pub(super) struct Slot<T, E> {
    shared: Arc<Shared<T, E>>,
    index: usize,
    /// Released after the guard drops (invariant 2).
    permit: Option<SemaphoreGuardArc>,
    /// `Some` until the outcome is recorded (invariant 3).
    guard: Option<Guard>,
}

impl<T, E> Slot<T, E> {
    /// Lists a task that `guard` already counts (invariant 1), started at
    /// `location`, holding the limit's `permit` in a limited set.
    pub(super) fn register(
        shared: &Arc<Shared<T, E>>,
        reservation: Reservation<'_>,
        guard: Guard,
        permit: Option<SemaphoreGuardArc>,
        name: Option<Cow<'static, str>>,
        location: &'static Location<'static>,
    ) -> Slot<T, E> {
        let now = Instant::now();
        let index = {
            let mut state = lock(&shared.state);
            let index = state.outcomes.len();
            let born = state.born(now);
            state.outcomes.push(Outcome::Running { born, location });
            if let Some(name) = name {
                // Indices grow under this lock: `names` stays sorted.
                state.names.push((index, Some(name)));
            }
            if state.running == 0 {
                state.anchor = Some(guard.clone());
            }
            state.running += 1;
            // Under the lock: the task leaves `reserved` as it joins
            // `running` (see `Shared::len`).
            drop(reservation);
            index
        };
        Slot {
            shared: Arc::clone(shared),
            index,
            permit,
            guard: Some(guard),
        }
    }

    /// The task's spawn index.
    pub(super) fn index(&self) -> usize {
        self.index
    }

    /// The set this slot belongs to.
    pub(super) fn shared(&self) -> &Shared<T, E> {
        &self.shared
    }

    /// Records the task's outcome, then drops the guard, then releases the
    /// permit. Recording first: once the group is drained, every outcome is
    /// in (invariant 1). Releasing last: a new task can only count once this
    /// one stopped (invariant 2).
    fn settle(&mut self, outcome: Result<T, Ending<E>>, describe: fn(&TaskError<E>) -> String) {
        let Some(guard) = self.guard.take() else {
            return;
        };
        let entry = match outcome {
            // A success takes the lock once, below: its entry goes straight
            // from `Running` to `Succeeded`, its name stays in `names`.
            Ok(value) => Outcome::Succeeded(value),
            Err(ending) => {
                let (name, first) = self.unlist();
                let error = ending.into_error(task_name(name, self.index));
                // Not under the lock: user code (invariant 5).
                self.report(&error, first, describe);
                Outcome::Failed(Box::new(error))
            }
        };
        let waker = {
            let mut state = lock(&self.shared.state);
            // Always present: `join` takes the table only once the group
            // is drained, after this guard dropped (invariant 3).
            let unrecorded = match state.outcomes.get_mut(self.index) {
                Some(slot) => {
                    *slot = entry;
                    state.completed.push_back(self.index);
                    None
                }
                None => Some(entry),
            };
            state.running = state.running.saturating_sub(1);
            let anchor = if state.running == 0 {
                state.anchor.take()
            } else {
                None
            };
            (state.next_waker.take(), unrecorded, anchor)
        };
        let (waker, unrecorded, anchor) = waker;
        // Not under the lock: user code (invariant 5), and a guard's drop
        // may finish the group and wake its waiters.
        drop_quietly(unrecorded);
        drop(anchor);
        if let Some(waker) = waker {
            waker.wake();
        }
        drop(guard);
        drop(self.permit.take());
    }

    /// For a failure: marks the task's `Running` entry `Settling`, takes
    /// its name for the error, and says whether it is the set's first.
    fn unlist(&self) -> (Option<Cow<'static, str>>, bool) {
        let mut state = lock(&self.shared.state);
        let first = !std::mem::replace(&mut state.failed, true);
        if let Some(entry) = state.outcomes.get_mut(self.index) {
            *entry = Outcome::Settling;
        }
        let name = take_name(&mut state.names, self.index);
        (name, first)
    }

    /// Tells the siblings about the set's first failure (the shutdown's
    /// reason is its message); logs later ones at debug level.
    fn report(&self, error: &TaskError<E>, first: bool, describe: fn(&TaskError<E>) -> String) {
        if first {
            // `describe` may run the user's `Display`: caught, so the
            // shutdown is triggered whatever it does (invariant 4).
            let message = user_code(|| describe(error)).unwrap_or_else(|| {
                format!(
                    "{} (its error's Display panicked)",
                    error.describe_without_error()
                )
            });
            // The trigger takes effect before it logs: a panicking logger
            // cannot keep the siblings from hearing it.
            user_code(|| self.shared.shutdown.trigger_with(Reason::error(message)));
        } else {
            user_code(|| {
                if log::log_enabled!(log::Level::Debug) {
                    log::debug!("{} (after the first failure)", describe(error));
                }
            });
        }
    }
}

/// How a task ended, short of success, before its name is looked up.
enum Ending<E> {
    Failed(E),
    Panicked(String),
    Cancelled,
}

impl<E> Ending<E> {
    fn into_error(self, task: Cow<'static, str>) -> TaskError<E> {
        match self {
            Ending::Failed(error) => TaskError::Failed { task, error },
            Ending::Panicked(message) => TaskError::Panicked { task, message },
            Ending::Cancelled => TaskError::Cancelled { task },
        }
    }
}

impl<T, E: std::fmt::Display> Slot<T, E> {
    /// Records what the task's body returned or how it panicked.
    pub(super) fn finish(mut self, caught: std::thread::Result<Result<T, E>>) {
        let outcome = match caught {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(error)) => Err(Ending::Failed(error)),
            Err(payload) => {
                let message = panic_message(&*payload).to_owned();
                drop_payload(payload);
                Err(Ending::Panicked(message))
            }
        };
        self.settle(outcome, |error| error.to_string());
    }
}

impl<T, E> Drop for Slot<T, E> {
    /// A slot dropped before its task ended: the task was cancelled
    /// (invariant 3).
    fn drop(&mut self) {
        if self.guard.is_some() {
            self.settle(Err(Ending::Cancelled), TaskError::describe_without_error);
        }
    }
}
