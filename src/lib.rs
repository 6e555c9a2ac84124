//! Graceful shutdown for smol and other non-tokio runtimes: a wait group that
//! knows who is still running, a broadcast shutdown signal, and OS-signal
//! handling.
//!
//! [`Group`] is Go's `sync.WaitGroup`; [`TaskSet`] is Go's `errgroup`;
//! [`Shutdown`] is its `context` cancellation (tokio's `CancellationToken`).
//!
//! A service that starts background work must, at shutdown, (1) tell that
//! work to stop and (2) know when it has stopped, before the process exits.
//! This crate gives each step a type:
//!
//! - [`Shutdown`] says *stop*: a broadcast signal, with child scopes, that
//!   every task can await ([`Shutdown::triggered`]).
//! - [`Group`] knows *who is still running*: a wait group of RAII
//!   [`Guard`]s. [`Group::wait`] closes it and resolves when every guard is
//!   gone; [`Group::wait_timeout`] names the [`Stragglers`] when some never
//!   finish.
//! - [`signal::watch`] turns SIGINT/SIGTERM into a trigger, and a second
//!   signal into an immediate exit.
//! - [`TaskSet`] (feature `smol`) is Go's `errgroup` built from the two:
//!   the first failing task stops its siblings, with an optional
//!   concurrency limit and tracked blocking work.
//! - [`serve`] puts them to work for a server: [`serve::Connection`] drains
//!   a connection of any protocol as Go's `Server.Shutdown` does, and
//!   `serve::run` (features `signal` and `smol`) is a `main` from the signal
//!   to the exit code in one call.
//! - Scopes can bound themselves and act at the trigger, as Go's `context`
//!   does: `Shutdown::child_with_deadline` (feature `smol`) and
//!   [`Shutdown::after_trigger`].
//!
//! Start with `examples/tcp_server.rs`.
//!
//! None of it depends on an executor: guards and futures work under smol,
//! async-executor, tokio, or plain threads.
//!
//! # Examples
//!
//! Workers that loop until shutdown, then a bounded drain:
//!
//! ```
//! use std::time::Duration;
//! use smol_graceful::{Group, Shutdown};
//!
//! # smol::block_on(async {
//! let shutdown = Shutdown::new();
//! let group = Group::new();
//!
//! for id in 0..4 {
//!     let shutdown = shutdown.clone();
//!     let guard = group.add_named(format!("worker {id}"))?;
//!     smol::spawn(async move {
//!         let _guard = guard;
//!         while shutdown
//!             .run_until_triggered(smol::Timer::after(Duration::from_millis(1)))
//!             .await
//!             .is_some()
//!         {
//!             // one unit of work per tick
//!         }
//!     })
//!     .detach();
//! }
//!
//! // Usually `smol_graceful::signal::watch(&shutdown)` triggers this.
//! shutdown.trigger();
//! match group.wait_timeout(Duration::from_secs(5)).await {
//!     Ok(()) => println!("all workers stopped"),
//!     Err(stragglers) => eprintln!("{stragglers}"),
//! }
//! # Ok::<(), smol_graceful::Closed>(())
//! # }).unwrap();
//! ```
//!
//! # Features
//!
//! - `smol` (default): [`Group::spawn`] (smol's global executor),
//!   [`Group::spawn_on`] / [`Group::spawn_local`] (an executor of yours), the timers behind [`Group::wait_timeout`] /
//!   [`Group::wait_deadline`], and [`TaskSet`].
//! - `signal` (default): the [`signal`] module.
//! - `systemd`: the [`systemd`] module, which tells systemd (or any service
//!   manager that speaks sd_notify) that the service is ready, stopping,
//!   still draining and alive. Turns on `smol` for its timers; a no-op
//!   outside systemd and on targets other than Unix.
//! - `upgrade` (Unix): the [`upgrade`] module, which hands the listening
//!   sockets to a new instance of the program and drains this one once the
//!   new one is ready: a deploy that neither refuses nor queues a
//!   connection. Turns on `systemd`.
//!
//! The [`hyper`] module (drain hyper 1 connections, HTTP/1 and HTTP/2, on any
//! executor, each counted in a [`Group`] under a name) needs no feature: it
//! adds no dependency (and no tokio).
//!
//! With `default-features = false`, [`Group`] (without the timed waits) and
//! [`Shutdown`] need only `event-listener` and `async-channel`.
//!
// An item behind a feature that is off cannot be linked to: its links lead to the
// list of features above instead, so that every feature set documents cleanly.
#![cfg_attr(
    not(feature = "smol"),
    doc = "[`Group::spawn`]: crate#features",
    doc = "[`Group::spawn_on`]: crate#features",
    doc = "[`Group::spawn_local`]: crate#features",
    doc = "[`Group::wait_timeout`]: crate#features",
    doc = "[`Group::wait_deadline`]: crate#features",
    doc = "[`TaskSet`]: crate#features"
)]
#![cfg_attr(
    not(feature = "signal"),
    doc = "[`signal`]: crate#features",
    doc = "[`signal::watch`]: crate#features"
)]
#![cfg_attr(not(feature = "systemd"), doc = "[`systemd`]: crate#features")]
#![cfg_attr(
    not(all(unix, feature = "upgrade")),
    doc = "[`upgrade`]: crate#features"
)]
#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]
#![warn(missing_docs, missing_debug_implementations, rust_2018_idioms)]

pub mod futures;
mod group;
pub mod hyper;
mod panic;
pub mod serve;
mod shutdown;
#[cfg(feature = "signal")]
pub mod signal;
mod stragglers;
mod sync;
#[cfg(feature = "systemd")]
#[cfg_attr(docsrs, doc(cfg(feature = "systemd")))]
pub mod systemd;
#[cfg(feature = "smol")]
mod task_set;
#[cfg(all(unix, feature = "upgrade"))]
#[cfg_attr(docsrs, doc(cfg(all(unix, feature = "upgrade"))))]
pub mod upgrade;

pub use group::{Closed, Group, Guard, Tracked};
pub use shutdown::{AfterTrigger, DropGuard, Reason, Shutdown};
pub use stragglers::{Straggler, Stragglers};
#[cfg(feature = "smol")]
pub use task_set::{Spawner, TaskBuilder, TaskError, TaskSet};

#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
