//! The watcher's log thread: how a signal's record reaches the logger without
//! the logger ever reaching the watcher.
//!
//! A [`Report`] is started with each watcher and holds the sending end of a
//! bounded queue; a thread of its own takes records off the queue in order
//! and hands each to the logger inside `catch_unwind`. A process-wide count
//! of records queued but not yet written lets [`flush_log`] wait for them.
//! If the thread cannot be started, records are logged in place.
//!
//! # Invariants
//!
//! 1. `UNWRITTEN` counts the records queued for a log thread and not yet
//!    handed to the logger: a record is counted before it is sent (so the log
//!    thread never uncounts a record that was not counted yet), uncounted at
//!    once if the send fails, and uncounted by the log thread once written.
//! 2. The watcher never blocks on the queue: it only `try_send`s. A record
//!    that does not fit is dropped and counted, and the next record that fits
//!    says how many were dropped.
//! 3. Records reach the logger in the order the watcher made them: one
//!    queue, one thread.
//! 4. The log thread ends only when its queue is closed (the watcher
//!    dropped): every panic of the logger, and of a panic payload's `Drop`,
//!    is caught.
//! 5. [`Report::log_before_exit`] waits at most [`EXIT_LOG_WAIT`] and never
//!    logs in place, so no logger can hold back the exit for longer.
//!
//! # Deadlock safety
//!
//! One lock, `UNWRITTEN`'s, taken by `unwritten` and [`flush_log`]; while it
//! is held, no other lock is taken and no user code runs (no logger, no
//! waker): only the count changes and `WRITTEN` is notified.

use std::sync::mpsc::{self, Receiver, SyncSender, TrySendError};
use std::sync::{Condvar, Mutex, PoisonError};
use std::thread;
use std::time::Duration;

use crate::panic::isolate;

/// How long the exit on a second signal waits for the logger to write why.
const EXIT_LOG_WAIT: Duration = Duration::from_millis(100);

/// How many records all watchers have queued for their log threads and
/// not yet handed to the logger; `flush_log` waits for it to reach zero.
static UNWRITTEN: Mutex<u64> = Mutex::new(0);
/// Notified each time a log thread has handed a record to the logger.
static WRITTEN: Condvar = Condvar::new();

/// Adds `queued` to, and takes `written` from, the count of unwritten
/// records. No user code runs under the lock (see "Deadlock safety").
fn unwritten(queued: u64, written: u64) {
    let mut count = UNWRITTEN.lock().unwrap_or_else(PoisonError::into_inner);
    *count = (*count + queued).saturating_sub(written);
    if written > 0 {
        WRITTEN.notify_all();
    }
}

/// Waits until every record the signal watchers have queued has been handed
/// to the logger, or until `timeout` has passed; returns `true` if nothing
/// is left unwritten.
///
/// The watcher logs on a thread of its own (see the
/// [module docs](crate::signal#what-holds)), after acting on the signal: a
/// program that drains at once and returns from `main` can exit before that
/// thread has logged "received SIGTERM". Call this last thing before exiting. It never
/// calls the logger itself, so a stuck logger costs at most `timeout`; flush
/// a buffering logger afterwards (`log::logger().flush()`) if it needs it.
///
/// # Examples
///
/// ```no_run
/// use std::time::Duration;
/// use smol_graceful::{signal, Shutdown};
///
/// fn main() -> std::io::Result<()> {
///     let shutdown = Shutdown::new();
///     smol::spawn(signal::watch(&shutdown)?).detach();
///     smol::block_on(shutdown.triggered());
///     // ... drain ...
///     signal::flush_log(Duration::from_millis(100));
///     Ok(())
/// }
/// ```
pub fn flush_log(timeout: Duration) -> bool {
    let count = UNWRITTEN.lock().unwrap_or_else(PoisonError::into_inner);
    let (count, _) = WRITTEN
        .wait_timeout_while(count, timeout, |count| *count > 0)
        .unwrap_or_else(PoisonError::into_inner);
    *count == 0
}

/// The watcher's log records, written by a thread of its own so that nothing
/// the logger does (panic, block) reaches the watcher.
pub(super) struct Report {
    thread: LogThread,
    /// Records dropped because the log thread's queue was full.
    dropped: u64,
}

enum LogThread {
    /// Started with the watcher, so that a signal's record is only a
    /// channel send away from the logger.
    Running(SyncSender<Record>),
    /// It could not be started (or is gone): log in place.
    Unavailable,
}

/// One log record of the watcher.
struct Record {
    level: log::Level,
    text: String,
    /// Told once the record is logged and the logger flushed.
    done: Option<SyncSender<()>>,
}

/// How many records wait for a stuck logger before more are dropped.
const QUEUE: usize = 64;

impl Report {
    pub(super) fn start() -> Report {
        Report {
            thread: start_log_thread(),
            dropped: 0,
        }
    }

    /// Logs `text` at `level`, on the log thread if there is one.
    pub(super) fn log(&mut self, level: log::Level, text: String) {
        let record = Record {
            level,
            text,
            done: None,
        };
        if let Err(record) = self.send(record) {
            write(&record);
        }
    }

    /// Logs `text` as a warning and waits (at most [`EXIT_LOG_WAIT`]) until
    /// it is written and the logger flushed. Does not log in place: that
    /// could block the exit.
    pub(super) fn log_before_exit(&mut self, text: String) {
        let (done, written) = mpsc::sync_channel(1);
        let record = Record {
            level: log::Level::Warn,
            text,
            done: Some(done),
        };
        if self.send(record).is_ok() {
            let _ = written.recv_timeout(EXIT_LOG_WAIT);
        }
    }

    /// Queues `record` for the log thread; gives it back if there is no log
    /// thread. A record that does not fit is dropped and counted.
    fn send(&mut self, mut record: Record) -> Result<(), Record> {
        let LogThread::Running(queue) = &self.thread else {
            return Err(record);
        };
        if self.dropped > 0 {
            record.text = format!(
                "{} ({} earlier records dropped: the logger was stuck)",
                record.text, self.dropped
            );
        }
        // Counted before the send, so the log thread never uncounts a
        // record that was not counted yet (invariant 1).
        unwritten(1, 0);
        match queue.try_send(record) {
            Ok(()) => {
                self.dropped = 0;
                Ok(())
            }
            Err(TrySendError::Full(_)) => {
                unwritten(0, 1);
                self.dropped = self.dropped.saturating_add(1);
                Ok(())
            }
            // The thread catches every panic it can meet, so it cannot end
            // while its queue is open (invariant 4); should it still, log in
            // place.
            Err(TrySendError::Disconnected(record)) => {
                unwritten(0, 1);
                self.thread = LogThread::Unavailable;
                Err(record)
            }
        }
    }
}

/// Starts the log thread, which logs each queued record and ends when the
/// queue is closed (the watcher dropped).
fn start_log_thread() -> LogThread {
    let (queue, records) = mpsc::sync_channel(QUEUE);
    let started = thread::Builder::new()
        .name("smol-graceful-signal-log".into())
        .spawn(move || run_log_thread(records));
    match started {
        Ok(_) => LogThread::Running(queue),
        Err(_) => LogThread::Unavailable,
    }
}

fn run_log_thread(records: Receiver<Record>) {
    for record in records {
        write(&record);
        unwritten(0, 1);
        if let Some(done) = record.done {
            // Capacity 1, one send: never blocks.
            let _ = done.try_send(());
        }
    }
}

/// Hands `record` to the logger (and flushes it if someone waits for it); a
/// panic in the logger loses the record and nothing else.
fn write(record: &Record) {
    isolate(|| {
        log::log!(record.level, "{}", record.text);
        if record.done.is_some() {
            log::logger().flush();
        }
    });
}
