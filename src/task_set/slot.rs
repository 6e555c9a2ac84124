//! The bookkeeping of a set, in one place: the table of outcomes, and the
//! `Slot` each running task owns, which records the task's outcome, then
//! drops its guard of the group, then releases its permit.
//!
//! # How it is built
//!
//! A set is a [`Group`] (who is still running), a [`Shutdown`] (tells the
//! siblings to stop), an optional semaphore (the limit, see `permit.rs`)
//! and one mutex-protected table of outcomes indexed by spawn order (the
//! `State` in [`Shared`]). Each running task owns a [`Slot`]: its index, an
//! anonymous guard of the group (taking one is a `Weak::upgrade`, a
//! compare-and-swap loop, plus a load; no lock and no allocation) and, in a
//! limited set, a semaphore permit. While the task runs, its table entry
//! holds its name, birth time and spawn site, which is what
//! [`Shared::stragglers`] reports; names are only formatted (`task #i`) when
//! a report or an error needs them. When the task ends, the slot records the
//! outcome *first*, then drops the guard, then releases the permit: once the
//! group is drained every outcome is in the table, and the group never
//! counts more tasks than the limit allows. A slot dropped before its task
//! ended (the future was dropped, its executor went away) records a
//! cancellation in the same way. [`Shared::take_outcomes`] hands the
//! complete table to `join`.
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
//! 4. `State::failed` is set and `State::first_error` stored by the same
//!    [`Shared::fail`] call, before the failing task's guard drops, with
//!    nothing in between that can panic: user code there (the error's
//!    `Display`) runs under `user_code`. So once the group is drained, a
//!    table entry that is not `Succeeded` implies a stored first error.
//! 5. User code the set runs on its own (the `Display` and `Drop` of the
//!    error type, the `Drop` of results and panic payloads, the logger) runs
//!    under `user_code` (see `user_code.rs`), outside the table's lock, so a
//!    panic there cannot stop the set from recording an outcome, triggering
//!    its shutdown or answering `join`.
//!
//! # Deadlock safety
//!
//! The table's lock is the only lock of this module. Lock order: table ->
//! the group's `open`. Only [`Shared::stragglers`] holds two locks at once,
//! reading [`Group::len`] under the table's lock, and the group never takes
//! the table's lock. Nothing else runs under it: the guard is taken before
//! it ([`Slot::register`]); the guard dropped, the permit released and the
//! shutdown triggered after it ([`Slot::settle`], [`Shared::fail`]); `join`
//! polls the group's wait before it takes the table; user code never runs
//! under it (invariant 5).
//!
//! There are no atomics in this module: the table is behind a mutex, and the
//! group's own orderings (see `group.rs`) make every recorded outcome
//! visible to the `join` that sees the group drained. Task sets need the
//! `smol` feature, which loom builds leave off, so they never run under
//! loom, and their `Arc`s are `std::sync::Arc`.

use std::borrow::Cow;
use std::panic::Location;
use std::sync::Arc;
use std::time::Instant;

use smol::lock::SemaphoreGuardArc;

use super::error::TaskError;
use super::user_code::{drop_payload, drop_quietly, panic_message, user_code};
use crate::group::{Group, Guard};
use crate::shutdown::{Reason, Shutdown};
use crate::stragglers::{Straggler, Stragglers};
use crate::sync::{lock, Mutex};

/// What a set shares with its running tasks.
pub(super) struct Shared<T, E> {
    /// The set's shutdown, triggered by the first failure.
    pub(super) shutdown: Shutdown,
    state: Mutex<State<T, E>>,
}

struct State<T, E> {
    /// One entry per spawned task, indexed by spawn order. Taken by `join`.
    outcomes: Vec<Outcome<T>>,
    /// Set by the first failure. Later failures see it and are dropped.
    failed: bool,
    /// The first failure, stored just after `failed` is set (its message is
    /// written in between, outside the lock, because that runs user code)
    /// and before the failing task's guard drops. Taken by `join`.
    first_error: Option<TaskError<E>>,
}

impl<T, E> Drop for State<T, E> {
    /// Drops what a set that was never joined still holds, one value at a
    /// time, so that a panicking `Drop` of one leaves the others dropped and
    /// the panic inside (invariant 5).
    fn drop(&mut self) {
        for outcome in self.outcomes.drain(..) {
            drop_quietly(outcome);
        }
        drop_quietly(self.first_error.take());
    }
}

/// One task's entry in a set's table.
pub(super) enum Outcome<T> {
    /// Still running: what a straggler report says about it.
    Running {
        /// The name given to its [`Permit`](super::Permit), if any.
        name: Option<Cow<'static, str>>,
        born: Instant,
        location: &'static Location<'static>,
    },
    /// Returned `Ok(value)`.
    Succeeded(T),
    /// Failed, panicked or was cancelled (the first failure of the set is
    /// kept in `State::first_error`).
    Ended,
}

/// The name of task `index`: the one it was given, or `task #index`.
fn task_name(name: Option<Cow<'static, str>>, index: usize) -> Cow<'static, str> {
    name.unwrap_or_else(|| Cow::Owned(format!("task #{index}")))
}

impl<T, E> Shared<T, E> {
    /// An empty table, for a set whose shutdown is `shutdown`.
    pub(super) fn new(shutdown: Shutdown) -> Shared<T, E> {
        Shared {
            shutdown,
            state: Mutex::new(State {
                outcomes: Vec::new(),
                failed: false,
                first_error: None,
            }),
        }
    }

    /// True if no task was ever listed.
    pub(super) fn never_spawned(&self) -> bool {
        lock(&self.state).outcomes.is_empty()
    }

    /// The running tasks, each by its name, oldest first, and the count of
    /// `group` (which the tasks' guards count in).
    pub(super) fn stragglers(&self, group: &Group) -> Stragglers {
        let state = lock(&self.state);
        let now = Instant::now();
        // Read under the table's lock: a task counts before it is listed
        // (`register`) and is unlisted before it stops counting (`settle`),
        // both under this lock, so `count >= named.len()` (invariant 1).
        let count = group.len();
        let named = state
            .outcomes
            .iter()
            .enumerate()
            .filter_map(|(index, outcome)| match outcome {
                Outcome::Running {
                    name,
                    born,
                    location,
                } => Some(Straggler::new(
                    task_name(name.clone(), index),
                    now.saturating_duration_since(*born),
                    location,
                )),
                _ => None,
            })
            .collect();
        Stragglers::new(count, named)
    }

    /// Records a failure; the first one triggers the shutdown.
    fn fail(&self, error: TaskError<E>, describe: fn(&TaskError<E>) -> String) {
        let first = !std::mem::replace(&mut lock(&self.state).failed, true);
        if first {
            // `describe` may run the user's `Display`: not under the lock,
            // and caught, so the error is stored whatever it does (invariant 4).
            let message = user_code(|| describe(&error)).unwrap_or_else(|| {
                format!(
                    "{} (its error's Display panicked)",
                    error.describe_without_error()
                )
            });
            lock(&self.state).first_error = Some(error);
            // The trigger takes effect before it logs: a panicking logger
            // cannot keep the siblings from hearing it.
            user_code(|| self.shutdown.trigger_with(Reason::error(message)));
        } else {
            user_code(|| {
                if log::log_enabled!(log::Level::Debug) {
                    log::debug!("{} (after the first failure; dropped)", describe(&error));
                }
            });
            drop_quietly(error);
        }
    }

    /// Takes the table for `join`, once the group is drained: every task's
    /// slot recorded its outcome before its guard dropped (invariant 1), so
    /// the table is complete.
    pub(super) fn take_outcomes(&self) -> Outcomes<T, E> {
        let mut state = lock(&self.state);
        Outcomes {
            outcomes: std::mem::take(&mut state.outcomes),
            first_error: state.first_error.take(),
        }
    }
}

/// A complete table, taken by `join`.
pub(super) struct Outcomes<T, E> {
    outcomes: Vec<Outcome<T>>,
    first_error: Option<TaskError<E>>,
}

impl<T, E> Outcomes<T, E> {
    /// What `join` returns: the first failure, or every result in spawn
    /// order. Results it does not return are dropped one by one, quietly
    /// (invariant 5).
    pub(super) fn into_results(self) -> Result<Vec<T>, TaskError<E>> {
        let Outcomes {
            outcomes,
            first_error,
        } = self;
        let mut error = first_error;
        let mut values = Vec::with_capacity(if error.is_none() { outcomes.len() } else { 0 });
        for (index, outcome) in outcomes.into_iter().enumerate() {
            match outcome {
                Outcome::Succeeded(value) if error.is_none() => values.push(value),
                Outcome::Succeeded(value) => drop_quietly(value),
                // Invariant 4 rules these out without a stored error; should
                // it ever break, `join` still answers, and names the task.
                Outcome::Running { name, .. } => {
                    error.get_or_insert_with(|| TaskError::Cancelled {
                        task: task_name(name, index),
                    });
                }
                Outcome::Ended => {
                    error.get_or_insert_with(|| TaskError::Cancelled {
                        task: task_name(None, index),
                    });
                }
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
        guard: Guard,
        permit: Option<SemaphoreGuardArc>,
        name: Option<Cow<'static, str>>,
        location: &'static Location<'static>,
    ) -> Slot<T, E> {
        let index = {
            let mut state = lock(&shared.state);
            let index = state.outcomes.len();
            // The clock is read under the lock, so spawn order and birth
            // times agree (stragglers are listed oldest first).
            state.outcomes.push(Outcome::Running {
                name,
                born: Instant::now(),
                location,
            });
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

    /// Records the task's outcome, then drops the guard, then releases the
    /// permit. Recording first: once the group is drained, every outcome is
    /// in (invariant 1). Releasing last: a new task can only count once this
    /// one stopped (invariant 2).
    fn settle(&mut self, outcome: Result<T, Ending<E>>, describe: fn(&TaskError<E>) -> String) {
        let Some(guard) = self.guard.take() else {
            return;
        };
        let (failure, unrecorded) = self.record(outcome);
        // Not under the lock: user code (invariant 5).
        drop_quietly(unrecorded);
        if let Some(error) = failure {
            self.shared.fail(error, describe);
        }
        drop(guard);
        drop(self.permit.take());
    }

    /// Writes `outcome` into the task's entry, under the table's lock:
    /// returns the failure to report, if any, and a value that found no
    /// entry, to be dropped outside the lock.
    fn record(&self, outcome: Result<T, Ending<E>>) -> (Option<TaskError<E>>, Option<T>) {
        let mut state = lock(&self.shared.state);
        // Always present: `join` takes the table only once the group is
        // drained, that is after this guard dropped (invariant 3).
        let entry = state.outcomes.get_mut(self.index);
        match (outcome, entry) {
            (Ok(value), Some(entry)) => {
                *entry = Outcome::Succeeded(value);
                (None, None)
            }
            (Ok(value), None) => (None, Some(value)),
            (Err(ending), entry) => {
                let name = match entry.map(|entry| std::mem::replace(entry, Outcome::Ended)) {
                    Some(Outcome::Running { name, .. }) => name,
                    _ => None,
                };
                (Some(ending.into_error(task_name(name, self.index))), None)
            }
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
                let message = panic_message(&*payload);
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
