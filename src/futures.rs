//! The named futures this crate's methods return.
//!
//! Each is `#[must_use]` (futures do nothing unless polled), `Send` when
//! what it holds is, and documented on the method that makes it; the crate
//! root keeps the types people name ([`Group`](crate::Group),
//! [`Shutdown`](crate::Shutdown), ...), and [`Tracked`] too.
//!
//! | future | made by |
//! |---|---|
//! | [`Wait`] | [`Group::wait`](crate::Group::wait) |
//! | [`WaitOwned`] | [`Group::wait_owned`](crate::Group::wait_owned) |
//! | [`Tracked`] | [`Group::track`](crate::Group::track), [`Guard::track`](crate::Guard::track) |
//! | [`Triggered`] | [`Shutdown::triggered`](crate::Shutdown::triggered) |
//! | [`TriggeredOwned`] | [`Shutdown::triggered_owned`](crate::Shutdown::triggered_owned) |
//! | [`RunUntilTriggered`] | [`Shutdown::run_until_triggered`](crate::Shutdown::run_until_triggered) |
#![cfg_attr(
    feature = "smol",
    doc = "| [`WaitTimeout`] | [`Group::wait_timeout`](crate::Group::wait_timeout), [`Group::wait_deadline`](crate::Group::wait_deadline) |",
    doc = "| [`Progress`] (a stream) | [`Group::progress`](crate::Group::progress) |",
    doc = "| [`Join`], [`JoinNext`], [`JoinTimeout`], [`Ready`] | [`TaskSet::join`](crate::TaskSet::join), [`TaskSet::join_next`](crate::TaskSet::join_next), [`TaskSet::join_timeout`](crate::TaskSet::join_timeout), [`TaskSet::ready`](crate::TaskSet::ready) |",
    doc = "| [`TrackedTask`] | [`TaskSet::track`](crate::TaskSet::track), [`TaskBuilder::track`](crate::TaskBuilder::track) |"
)]

#[cfg(feature = "smol")]
pub use crate::group::{Progress, WaitTimeout};
pub use crate::group::{Tracked, Wait, WaitOwned};
pub use crate::shutdown::{RunUntilTriggered, Triggered, TriggeredOwned};
#[cfg(feature = "smol")]
pub use crate::task_set::{Join, JoinNext, JoinTimeout, Ready, TrackedTask};
