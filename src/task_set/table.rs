//! The bookkeeping of a set, in one place: the table of its tasks, the
//! slots of its limit, and the [`Slot`] each task owns until it settles.
//!
//! # How it is built
//!
//! One mutex-protected [`State`] per set: an entry per task in spawn order
//! (`Queued` or `Running` with its birth and call site while it is counted,
//! then its outcome, linked in completion order for `join_next`: see
//! `entries.rs`), the names given to tasks beside their indices, the
//! number of tasks that hold a slot (`running`) and that wait for one
//! (`queued`, FIFO in `waiting`), and the waker of the pending join. When
//! every task has ended and been handed out, the entries are dropped and
//! numbering goes on from `base`, so a set used for a server's lifetime
//! with `join_next` does not grow.
//! A task registers in one critical section: it takes a slot if one is free
//! and no task waits, otherwise it queues. It settles in one more (a
//! failure takes one before, to learn whether it is the first and take its
//! name): it gives its slot to the oldest queued task or frees it, and
//! records its outcome, in the same critical section. Nothing else counts
//! tasks: `len`, `join`, `join_next`, `ready` and the stragglers report all
//! read this table.
//!
//! # Invariants
//!
//! 1. `running` is the number of `Running` entries and `queued` the number
//!    of `Queued` ones; `running <= limit`, and `queued > 0` only while
//!    `running == limit`. A task's slot is freed (or handed to a queued
//!    task) in the critical section that records its outcome: once an
//!    outcome can be seen, its slot is free, and `len() == running +
//!    queued` agrees with `join_next` at every moment.
//! 2. Every `Done` and `Failed` entry is on the finished list exactly
//!    once, in the order they were recorded; `Taken` entries are not. `waiting` holds the index of every `Queued` entry, oldest
//!    first, and may hold stale indices of entries that settled while
//!    queued: they are skipped when a slot is handed on.
//! 3. A slot settles exactly once: `Slot::index` is not `NONE` until its outcome
//!    is recorded, and a slot dropped unsettled records a cancellation.
//! 4. `closed` becomes true when the set is dropped or aborted, or when a
//!    join returns (it found no task counted, `running + queued == 0`, in
//!    the same critical section), and stays true: a set that a join drained
//!    takes no new task, while a task still counted may add more (like Go's
//!    `WaitGroup.Add` while the counter is above zero), and the join waits
//!    for it too. A join dropped before it returned closes nothing.
//! 5. The first failure sets `first_failure` to its index and triggers the
//!    shutdown before its outcome is recorded, so `join` returns the failure
//!    that triggered the shutdown even if a sibling that heard it recorded
//!    its own failure first; user code (the error's `Display`, any `Drop` of
//!    a result, error or payload, the logger) runs under
//!    [`isolate`](crate::panic::isolate), outside the lock.
//!
//! # Deadlock safety
//!
//! The table's lock is the only lock of this module and no other lock is
//! taken under it; wakers are woken, the shutdown triggered and the `room`
//! event notified after it is released. The abort flag (`abort.rs`) is an
//! atomic read under the lock only as a re-check (see [`Slot::poll_start`]).

use std::borrow::Cow;
use std::collections::VecDeque;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use event_listener::Event;

use super::abort::AbortFlag;
use super::entries::{CallSite, Entries, Entry, NONE};
use super::error::TaskError;
use crate::group::Closed;
use crate::panic::{drop_quietly, isolate};
use crate::shutdown::{Reason, Shutdown};
use crate::stragglers::{Straggler, Stragglers};
use crate::sync::{get_mut, lock, Mutex};

/// What `join_next` yields: a finished task's name and outcome.
pub(super) type Next<T, E> = (Cow<'static, str>, Result<T, TaskError<E>>);

/// What a set shares with its spawners and tasks. Aligned to 128 bytes
/// (two cache lines, as crossbeam's `CachePadded` on x86-64), and so is the
/// table's lock inside it: the `Arc`'s counts (written by every spawn and
/// every finished task), the fields every poll reads (the abort flag, the
/// limit) and the lock (taken by spawner and finishing threads) each sit on
/// lines of their own instead of bouncing one line between the threads.
#[repr(align(128))]
pub(super) struct Shared<T, E> {
    pub(super) shutdown: Shutdown,
    pub(super) abort: AbortFlag,
    /// At most this many tasks run; `usize::MAX` without a limit.
    pub(super) limit: usize,
    /// Notified when a slot is freed with no queued task to take it.
    pub(super) room: Event,
    state: Padded<Mutex<State<T, E>>>,
}

/// See [`Shared`].
#[repr(align(128))]
struct Padded<T>(T);

struct State<T, E> {
    entries: Entries<T, E>,
    /// The number of the first entry: tasks are numbered `base + index`.
    base: usize,
    /// Names given to tasks, sorted by index; a name leaves when its task's
    /// name is handed out.
    names: Vec<(usize, Cow<'static, str>)>,
    running: usize,
    queued: usize,
    /// Queued tasks, oldest first, each with its waker once it has one.
    waiting: VecDeque<(usize, Option<Waker>)>,
    /// The index of the first failure (invariant 5).
    first_failure: Option<usize>,
    closed: bool,
    /// The pending join's waker, and whether it wants every outcome
    /// (`join_next`) or only the end (`join`).
    joiner: Option<(Waker, bool)>,
}

impl<T, E> Drop for State<T, E> {
    /// Drops what was never handed out one value at a time, so a panicking
    /// `Drop` leaves the others dropped (invariant 5).
    fn drop(&mut self) {
        self.entries.take().for_each(drop_quietly);
    }
}

impl<T, E> State<T, E> {
    fn len(&self) -> usize {
        self.running + self.queued
    }

    /// The name of task `index`, or `task #i`.
    fn name(&self, index: usize) -> Cow<'static, str> {
        match self.names.binary_search_by_key(&index, |(i, _)| *i) {
            Ok(at) => self.names[at].1.clone(),
            Err(_) => self.default_name(index),
        }
    }

    fn take_name(&mut self, index: usize) -> Cow<'static, str> {
        match self.names.binary_search_by_key(&index, |(i, _)| *i) {
            Ok(at) => self.names.remove(at).1,
            Err(_) => self.default_name(index),
        }
    }

    fn default_name(&self, index: usize) -> Cow<'static, str> {
        Cow::Owned(format!("task #{}", self.base + index))
    }

    /// Frees the slot of a task that held one: hands it to the oldest
    /// queued task (invariant 2), or frees it. Returns the waker to wake and
    /// whether a slot became free.
    fn release(&mut self) -> (Option<Waker>, bool) {
        while let Some((index, waker)) = self.waiting.pop_front() {
            if let Some(entry) = self.entries.get_mut(index) {
                if let Entry::Queued { millis, location } = *entry {
                    *entry = Entry::Running { millis, location };
                    self.queued -= 1;
                    return (waker, false);
                }
            }
        }
        self.running -= 1;
        (None, true)
    }
}

impl<T, E> Shared<T, E> {
    pub(super) fn new(shutdown: Shutdown, limit: usize) -> Shared<T, E> {
        Shared {
            shutdown,
            abort: AbortFlag::new(),
            limit,
            room: Event::new(),
            state: Padded(Mutex::new(State {
                entries: Entries::new(),
                base: 0,
                names: Vec::new(),
                running: 0,
                queued: 0,
                waiting: VecDeque::new(),
                first_failure: None,
                closed: false,
                joiner: None,
            })),
        }
    }

    /// Sets the limit of a set that has never had a task (`false` if it
    /// has).
    pub(super) fn set_limit(&mut self, limit: usize) -> bool {
        let state = get_mut(&mut self.state.0);
        let fresh = state.entries.len() + state.base == 0;
        self.limit = if fresh { limit } else { self.limit };
        fresh
    }

    pub(super) fn len(&self) -> usize {
        lock(&self.state.0).len()
    }

    pub(super) fn is_closed(&self) -> bool {
        lock(&self.state.0).closed
    }

    /// True if a task spawned now would run at once (or the set is closed:
    /// then `Err`).
    pub(super) fn has_room(&self) -> Result<bool, Closed> {
        let state = lock(&self.state.0);
        if state.closed {
            return Err(Closed);
        }
        Ok(state.running < self.limit && state.queued == 0)
    }

    /// `TaskSet::abort`: closes the set for good and wakes every `ready`
    /// (which answers `Closed`), triggers the shutdown, sets the abort flag,
    /// then wakes every queued task: each sees the flag at its next poll
    /// (running tasks listen on the flag's event).
    pub(super) fn abort_tasks(&self) {
        lock(&self.state.0).closed = true;
        self.room.notify(usize::MAX);
        self.shutdown.trigger();
        self.abort.abort();
        let wakers: Vec<Waker> = lock(&self.state.0)
            .waiting
            .iter_mut()
            .filter_map(|(_, waker)| waker.take())
            .collect();
        wakers.into_iter().for_each(Waker::wake);
    }

    pub(super) fn stragglers(&self) -> Stragglers {
        let now = now_millis();
        let state = lock(&self.state.0);
        let mut named = Vec::with_capacity(state.len());
        for (index, entry) in state.entries.iter() {
            if let Entry::Queued { millis, location } | Entry::Running { millis, location } = *entry
            {
                // Wrapping: right for tasks younger than 49 days.
                let age = Duration::from_millis(now.wrapping_sub(millis).into());
                named.push(Straggler::new(state.name(index), age, location));
            }
        }
        Stragglers::new(state.len(), named)
    }

    /// `join_next`: the next finished task, `None` once none is counted.
    pub(super) fn poll_next(&self, cx: &mut Context<'_>) -> Poll<Option<Next<T, E>>> {
        let mut state = lock(&self.state.0);
        let Some((index, entry)) = state.entries.pop_finished() else {
            if state.len() == 0 {
                return Poll::Ready(None);
            }
            state.joiner = Some((cx.waker().clone(), true));
            return Poll::Pending;
        };
        let next = match entry {
            Entry::Done { value, .. } => (state.take_name(index), Ok(value)),
            Entry::Failed { error, .. } => (error.task_name().clone(), Err(*error)),
            // Invariant 2 rules these out; should it ever break, the task
            // is reported as cancelled rather than lost.
            _ => {
                let task = state.take_name(index);
                (task.clone(), Err(TaskError::Cancelled { task }))
            }
        };
        if state.len() == 0 && state.entries.finished().next().is_none() {
            // Every task ended and was handed out: start afresh. Every entry
            // is `Taken` (invariants 1 and 2), so dropping them runs no user
            // code.
            state.base += state.entries.len();
            state.first_failure = None;
            state.entries = Entries::new();
        }
        Poll::Ready(Some(next))
    }

    /// `join`: once no task is counted, closes the set and takes every
    /// outcome not handed out yet.
    pub(super) fn poll_join(&self, cx: &mut Context<'_>) -> Poll<Result<Vec<T>, TaskError<E>>> {
        let mut state = lock(&self.state.0);
        if state.len() > 0 {
            state.joiner = Some((cx.waker().clone(), false));
            return Poll::Pending;
        }
        state.closed = true; // invariant 4
        let failed = |(index, entry): (usize, &Entry<T, E>)| {
            matches!(entry, Entry::Failed { .. }).then_some(index)
        };
        // The failure that triggered the shutdown, unless `join_next` handed
        // it out: then the first one recorded after it.
        let first = (state.first_failure)
            .and_then(|index| failed((index, state.entries.get(index)?)))
            .or_else(|| state.entries.finished().find_map(failed));
        let mut values = Vec::with_capacity(state.entries.len());
        let spent = state.entries.take();
        state.names.clear();
        drop(state);
        // With a failure, the values are dropped (user code) with the rest.
        let mut failure = None;
        for (index, entry) in spent.enumerate() {
            match entry {
                Entry::Done { value, .. } if first.is_none() => values.push(value),
                Entry::Failed { error, .. } if Some(index) == first => failure = Some(*error),
                other => drop_quietly(other),
            }
        }
        Poll::Ready(failure.map_or(Ok(values), Err))
    }
}

/// A task's place in its set, from its registration until its outcome is
/// recorded (invariant 3).
pub(super) struct Slot<T, E> {
    pub(super) shared: Arc<Shared<T, E>>,
    /// `NONE` once the outcome is recorded (a `u32`, as the entries' links,
    /// so that a slot and `queued` fit in two words of the task's future).
    index: u32,
    /// True while the task waits for a slot of the limit.
    pub(super) queued: bool,
}

impl<T, E> Slot<T, E> {
    /// Lists a new task: it runs at once if a slot is free and no task
    /// waits, otherwise it queues (and `queued` says so).
    pub(super) fn register(
        shared: &Arc<Shared<T, E>>,
        name: Option<Cow<'static, str>>,
        location: CallSite,
    ) -> Result<Slot<T, E>, Closed> {
        let millis = now_millis();
        let mut state = lock(&shared.state.0);
        if state.closed {
            return Err(Closed);
        }
        let started = state.running < shared.limit && state.queued == 0;
        let index = if started {
            state.running += 1;
            state.entries.push(Entry::Running { millis, location })
        } else {
            state.queued += 1;
            let index = state.entries.push(Entry::Queued { millis, location });
            state.waiting.push_back((index, None));
            index
        };
        // Indices grow under this lock: `names` stays sorted.
        state.names.extend(name.map(|name| (index, name)));
        drop(state);
        Ok(Slot {
            shared: Arc::clone(shared),
            // `Entries::push` keeps indices below `NONE`.
            index: index as u32,
            queued: !started,
        })
    }

    /// This slot's index, until its outcome is recorded.
    fn index(&self) -> Option<usize> {
        (self.index != NONE).then_some(self.index as usize)
    }

    /// A queued task: `Ready(true)` once it holds a slot, `Ready(false)` if
    /// the set was aborted first, else `Pending` with `cx`'s waker kept.
    pub(super) fn poll_start(&self, cx: &mut Context<'_>) -> Poll<bool> {
        let mut state = lock(&self.shared.state.0);
        // Re-checked under the lock: `abort` stores the flag before it
        // takes this lock to wake the queued tasks, so either this load sees
        // the flag or that wake-up sees the waker stored below.
        let (Some(index), false) = (self.index(), self.shared.abort.is_aborted()) else {
            return Poll::Ready(false);
        };
        if !matches!(state.entries.get(index), Some(Entry::Queued { .. })) {
            return Poll::Ready(true);
        }
        // `waiting` is sorted: indices join at the back in increasing order
        // and leave only from the front (invariant 2).
        let at = state.waiting.binary_search_by_key(&index, |(i, _)| *i);
        if let Some((_, waker)) = at.ok().and_then(|at| state.waiting.get_mut(at)) {
            if !waker.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
                *waker = Some(cx.waker().clone());
            }
        }
        Poll::Pending
    }

    /// Records a finished body's outcome: its value, its error or its
    /// panic.
    pub(super) fn finish(mut self, caught: std::thread::Result<Result<T, E>>)
    where
        E: std::fmt::Display,
    {
        let Some(index) = self.index() else { return };
        let describe = TaskError::describe;
        match caught.map_err(std::sync::Mutex::new) {
            Ok(Ok(value)) => self.settle(index, Entry::Done { next: NONE, value }),
            Ok(Err(error)) => self.fail(|task| TaskError::Failed { task, error }, describe),
            Err(payload) => self.fail(|task| TaskError::Panicked { task, payload }, describe),
        }
    }

    /// Builds a failure, triggers the shutdown with its description if it
    /// is the first (invariant 5), then records it.
    fn fail(
        &mut self,
        error: impl FnOnce(Cow<'static, str>) -> TaskError<E>,
        describe: impl Fn(&TaskError<E>) -> String,
    ) {
        let Some(index) = self.index() else { return };
        let mut state = lock(&self.shared.state.0);
        let first = state.first_failure.is_none();
        state.first_failure.get_or_insert(index);
        let task = state.take_name(index);
        drop(state);
        let error = Box::new(error(task));
        if first {
            // Takes effect before it logs, and isolates its own logging.
            let reason = Reason::error(describe(&error));
            self.shared.shutdown.trigger_with(reason);
        } else if log::log_enabled!(log::Level::Debug) {
            isolate(|| log::debug!("{} (after the first failure)", describe(&error)));
        }
        self.settle(index, Entry::Failed { next: NONE, error });
    }

    /// Records the outcome of task `index`, this slot's (invariant 3).
    fn settle(&mut self, index: usize, outcome: Entry<T, E>) {
        self.index = NONE;
        let mut state = lock(&self.shared.state.0);
        let (handed, freed) = match state.entries.get(index) {
            Some(Entry::Running { .. }) => state.release(),
            Some(Entry::Queued { .. }) => {
                state.queued -= 1;
                (None, false)
            }
            // `join` took the table: it only does so once no task is
            // counted, so this task is not counted any more.
            _ => {
                drop(state);
                drop_quietly(outcome);
                return;
            }
        };
        state.entries.finish(index, outcome);
        let drained = state.len() == 0;
        let joiner = state.joiner.take_if(|(_, any)| *any || drained);
        drop(state);
        let joiner = joiner.map(|(waker, _)| waker);
        if freed && self.shared.limit != usize::MAX {
            // Additional: a `ready` woken for an earlier slot and not polled
            // yet does not take this one's notification.
            self.shared.room.notify_additional(1);
        }
        handed.into_iter().chain(joiner).for_each(Waker::wake);
    }
}

impl<T, E> Drop for Slot<T, E> {
    /// A task ended by `abort`, or dropped unfinished: a cancellation.
    fn drop(&mut self) {
        let describe = TaskError::describe_without_error;
        self.fail(|task| TaskError::Cancelled { task }, describe);
    }
}

/// Now, for births: milliseconds on a monotonic clock, truncated to 32 bits
/// (see `entries.rs`). On Linux the coarse clock (`CLOCK_MONOTONIC_COARSE`:
/// the monotonic clock at tick resolution, 1 to 4 ms, which a straggler's
/// age shown in tenths of a second does not need more than), read in about
/// 3 ns where `Instant::now` takes about 25, once per spawn.
#[cfg(target_os = "linux")]
fn now_millis() -> u32 {
    use rustix::time::{clock_gettime, ClockId};
    let now = clock_gettime(ClockId::MonotonicCoarse);
    let millis = (now.tv_sec as u64).wrapping_mul(1000);
    millis.wrapping_add(now.tv_nsec as u64 / 1_000_000) as u32
}

/// Now, for births: milliseconds since the first call, truncated to 32 bits
/// (see `entries.rs`).
#[cfg(not(target_os = "linux"))]
fn now_millis() -> u32 {
    use std::{sync::OnceLock, time::Instant};
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    EPOCH.get_or_init(Instant::now).elapsed().as_millis() as u32
}
