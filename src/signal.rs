//! OS signals trigger a [`Shutdown`] (feature `signal`).
//!
//! [`watch`] listens for SIGINT and SIGTERM (Ctrl-C on Windows). The first
//! signal triggers the shutdown with [`Reason::Signal`], and is then logged
//! with `log::info!`; a second one exits the process at once with status
//! `128 + signo` (130 for SIGINT), because a user who presses Ctrl-C twice
//! wants out now. [`Builder`] changes the signal set and what the second
//! signal does.
//!
//! Listening is a future, [`Watch`]: spawn it on the executor of your choice
//! and keep it running for the life of the process. It never finishes on its
//! own, on purpose: while it lives it keeps the OS handlers installed. (Once
//! async-signal's `Signals` is dropped, SIGINT stays *ignored* for the rest
//! of the process instead of going back to its default action, so a watcher
//! that stopped listening would make Ctrl-C do nothing at all.)
//!
//! # What holds
//!
//! - **Act, then log.** Each signal is acted on (the trigger, the exit, the
//!   second-signal action) before anything about it is logged. The log
//!   thread is started with the watcher, so a record is written a channel
//!   send after the action; a process that exits within microseconds of the
//!   first signal (nothing to drain) may still lose that line, unless it
//!   calls [`flush_log`] before exiting.
//! - **The logger cannot stop the watcher.** The watcher does not call the
//!   logger itself: it hands its records, in order, to a thread of its own
//!   (started with the watcher), which calls the logger inside
//!   `catch_unwind`. A logger that panics loses that record and nothing
//!   else; one that blocks (a log pipe whose reader stalled) holds back only
//!   later records (64 wait, further ones are dropped and counted), never a
//!   signal. If that thread cannot be started, records are logged in place,
//!   still inside `catch_unwind` (a blocking logger then does block the
//!   watcher).
//! - **The exit waits at most 100 ms for its record.** Before exiting, the
//!   watcher hands its warning ("exiting now with status 143") to the log
//!   thread and waits until the logger has written and flushed it, or 100 ms,
//!   whichever comes first. A working logger takes microseconds, so the exit
//!   still comes at once and says why; a stuck or panicking logger delays it
//!   by at most 100 ms and cannot prevent it. (Without the log thread the
//!   exit is not logged at all.)
//! - **A panicking action is caught.** A panic in the
//!   [`on_second_signal`](Builder::on_second_signal) action is caught and
//!   logged; the watcher keeps running and calls the action again on the next
//!   signal. The action runs on the watcher's task, so it must not block.
//!   (The panic hook still runs, on that task, as for any panic.)
//! - **Read errors are retried, never abandoned.** If reading the signal
//!   notifications fails, the watcher retries after 1 ms, doubling the delay
//!   up to 1 s, for as long as the errors last, and starts again at 1 ms
//!   after a good read; it logs the 1st, 2nd, 4th, 8th, ... error in a row
//!   and the recovery. The handlers stay installed throughout, so a signal
//!   that arrives meanwhile is read on the next try. The delay is kept by a
//!   short-lived sleeping thread, so no timer (and no `smol` feature) is
//!   needed; if no thread can be started, the watcher sleeps the delay on
//!   its own task instead.
//! - Under `panic = "abort"` nothing can be caught: a panicking logger or
//!   action aborts the process.
//! - **Install early.** A signal that arrives before [`watch`] has installed
//!   the handlers gets the default action (the process dies): call it first
//!   thing in `main`, before binding sockets or loading configuration. A
//!   signal that lands *while* the handlers are being installed can be lost
//!   in signal-hook-registry (the registry async-signal uses), whose
//!   fallback for that window does nothing when the previous disposition
//!   was the default: the process neither dies nor hears it (seen once in
//!   about 250 start-ups under load). Send it again.
//!
//! # Examples
//!
//! ```no_run
//! use smol_graceful::{signal, Shutdown};
//!
//! fn main() -> std::io::Result<()> {
//!     let shutdown = Shutdown::new();
//!     smol::spawn(signal::watch(&shutdown)?).detach();
//!     smol::block_on(async {
//!         shutdown.triggered().await;
//!         println!("stopping: {}", shutdown.reason().unwrap());
//!     });
//!     Ok(())
//! }
//! ```

use std::any::Any;
use std::fmt;
use std::future::Future;
use std::io;
use std::mem;
use std::panic::{self, AssertUnwindSafe};
use std::pin::Pin;
use std::sync::mpsc::{self, Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::task::{Context, Poll, Waker};
use std::thread;
use std::time::{Duration, Instant};

use async_signal::Signals;
use futures_core::Stream;

pub use async_signal::Signal;

use crate::shutdown::{Reason, Shutdown};

/// Listens for SIGINT and SIGTERM (Ctrl-C on Windows) with the default
/// behaviour: the first signal triggers `shutdown`, the second exits with
/// `128 + signo`. Same as `Builder::new().watch(shutdown)`.
///
/// The handlers are installed by this call; the returned future must be
/// polled (spawned) for signals to reach `shutdown`.
///
/// # Errors
///
/// Any error from installing the signal handlers.
///
/// # Examples
///
/// ```no_run
/// # smol::block_on(async {
/// let shutdown = smol_graceful::Shutdown::new();
/// smol::spawn(smol_graceful::signal::watch(&shutdown)?).detach();
/// shutdown.triggered().await;
/// # std::io::Result::Ok(())
/// # }).unwrap();
/// ```
pub fn watch(shutdown: &Shutdown) -> io::Result<Watch> {
    Builder::new().watch(shutdown)
}

/// What a signal after the first one does.
enum Second {
    /// Exit the process with `128 + signo`.
    Exit,
    /// Log it and do nothing else.
    Ignore,
    /// Call the user's function.
    Call(Box<dyn FnMut(Signal) + Send + 'static>),
}

/// Configures signal watching: which signals, and what a second signal does.
///
/// # Examples
///
/// ```no_run
/// use smol_graceful::signal::{Builder, Signal};
/// use smol_graceful::Shutdown;
///
/// # fn main() -> std::io::Result<()> {
/// let shutdown = Shutdown::new();
/// let watcher = Builder::new()
///     .signals([Signal::Int, Signal::Term, Signal::Hup])
///     .on_second_signal(|signal| eprintln!("{signal:?} again: still draining, please wait"))
///     .watch(&shutdown)?;
/// smol::spawn(watcher).detach();
/// # Ok(())
/// # }
/// ```
pub struct Builder {
    signals: Vec<Signal>,
    second: Second,
}

impl Default for Builder {
    fn default() -> Self {
        Builder::new()
    }
}

impl Builder {
    /// The default: SIGINT and SIGTERM (Ctrl-C on Windows); a second signal
    /// exits with `128 + signo`.
    pub fn new() -> Builder {
        #[cfg(unix)]
        let signals = vec![Signal::Int, Signal::Term];
        #[cfg(not(unix))]
        let signals = vec![Signal::Int];
        Builder {
            signals,
            second: Second::Exit,
        }
    }

    /// Replaces the set of signals to listen for.
    pub fn signals(mut self, signals: impl IntoIterator<Item = Signal>) -> Builder {
        self.signals = signals.into_iter().collect();
        self
    }

    /// Whether a second signal exits the process at once (the default) or
    /// is only logged.
    ///
    /// The exit waits at most 100 ms for the logger to write why (see the
    /// [module docs](self#what-holds)).
    pub fn exit_on_second_signal(mut self, exit: bool) -> Builder {
        self.second = if exit { Second::Exit } else { Second::Ignore };
        self
    }

    /// Calls `action` for every signal after the first, instead of exiting.
    ///
    /// `action` runs on the watcher's task, before the signal is logged, so
    /// it must not block. If it panics, the panic is caught and logged, and
    /// the watcher keeps running: the next signal calls `action` again.
    pub fn on_second_signal(mut self, action: impl FnMut(Signal) + Send + 'static) -> Builder {
        self.second = Second::Call(Box::new(action));
        self
    }

    /// Installs the handlers and returns the future that forwards signals to
    /// `shutdown`.
    ///
    /// # Errors
    ///
    /// [`io::ErrorKind::InvalidInput`] if the signal set is empty or holds a
    /// signal that cannot or must not be caught (`SIGKILL`, `SIGSTOP`, and the
    /// fault signals `SIGILL`, `SIGFPE`, `SIGSEGV`), and any error from
    /// installing the handlers.
    pub fn watch(self, shutdown: &Shutdown) -> io::Result<Watch> {
        if self.signals.is_empty() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "no signals to watch: the signal set is empty",
            ));
        }
        // signal-hook-registry (under async-signal) panics for these instead
        // of returning an error, so refuse them here.
        #[cfg(unix)]
        if let Some(signal) = self.signals.iter().copied().find(|s| {
            matches!(
                s,
                Signal::Kill | Signal::Stop | Signal::Ill | Signal::Fpe | Signal::Segv
            )
        }) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "cannot watch {signal:?} (signal {}): it cannot or must not be caught",
                    signal as i32
                ),
            ));
        }
        let signals = Signals::new(&self.signals)?;
        Ok(Watch {
            signals,
            shutdown: shutdown.clone(),
            seen: 0,
            second: self.second,
            report: Report::start(),
            backoff: Backoff::default(),
            retry: None,
        })
    }
}

impl fmt::Debug for Builder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let second = match self.second {
            Second::Exit => "exit",
            Second::Ignore => "ignore",
            Second::Call(_) => "call",
        };
        f.debug_struct("Builder")
            .field("signals", &self.signals)
            .field("second", &second)
            .finish()
    }
}

/// The signal watcher: a future that forwards OS signals to a [`Shutdown`].
///
/// It never completes. Spawn it and let it run for the life of the process;
/// dropping it uninstalls the handlers (and leaves SIGINT ignored, see the
/// [module docs](self)), and ends its log thread once that thread has
/// logged what it was given.
#[must_use = "signals reach the shutdown only while the watcher is polled"]
pub struct Watch {
    signals: Signals,
    shutdown: Shutdown,
    /// Signals seen so far (saturating).
    seen: usize,
    second: Second,
    report: Report,
    /// The read errors in a row, and the delay before the next read.
    backoff: Backoff,
    /// Set while waiting out a back-off delay: no read until then.
    retry: Option<Retry>,
}

/// How long the exit on a second signal waits for the logger to write why.
const EXIT_LOG_WAIT: Duration = Duration::from_millis(100);

impl Watch {
    /// Acts on `signal`, then logs it.
    fn on_signal(&mut self, signal: Signal) {
        let signo = signal as i32;
        self.seen = self.seen.saturating_add(1);
        let name = SignalName(signal);
        if self.seen == 1 {
            // Quietly: `trigger_with` would log in place, where a stuck
            // logger would hold the watcher. The record then goes to the log
            // thread, which is already waiting for it.
            let text = if self.shutdown.trigger_quietly(Reason::Signal(signo)) {
                format!("received {name}: shutting down; send it again to exit at once")
            } else {
                format!("received {name}: shutdown was already in progress; send it again to exit at once")
            };
            self.report.log(log::Level::Info, text);
            return;
        }
        match &mut self.second {
            Second::Exit => {
                let status = 128 + signo;
                self.report.log_before_exit(format!(
                    "received {name} again: exiting now with status {status}"
                ));
                std::process::exit(status);
            }
            Second::Ignore => self.report.log(
                log::Level::Warn,
                format!("received {name} again: still shutting down"),
            ),
            Second::Call(action) => {
                match panic::catch_unwind(AssertUnwindSafe(|| action(signal))) {
                    Ok(()) => self.report.log(
                        log::Level::Warn,
                        format!("received {name} again: called the second-signal action"),
                    ),
                    Err(payload) => {
                        let text = format!(
                            "received {name} again: the second-signal action panicked: {}; \
                         it will be called again on the next signal",
                            panic_message(&*payload)
                        );
                        drop_payload(payload);
                        self.report.log(log::Level::Error, text);
                    }
                }
            }
        }
    }

    /// Records a failed read (`what`), and arranges the next read after the
    /// back-off delay.
    fn on_read_error(&mut self, what: &dyn fmt::Display, cx: &mut Context<'_>) {
        let step = self.backoff.fail();
        if step.log {
            self.report.log(
                log::Level::Error,
                format!(
                    "reading signals failed ({} in a row): {what}; retrying in {:?} (the handlers stay installed)",
                    step.failures, step.delay
                ),
            );
        }
        self.retry = Retry::start(step.delay, cx.waker());
    }
}

impl Future for Watch {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        loop {
            if let Some(retry) = &self.retry {
                if retry.pending(cx.waker()) {
                    return Poll::Pending;
                }
                self.retry = None;
            }
            match Pin::new(&mut self.signals).poll_next(cx) {
                Poll::Ready(Some(Ok(signal))) => {
                    let failures = self.backoff.succeed();
                    if failures > 0 {
                        self.report.log(
                            log::Level::Info,
                            format!("reading signals works again after {failures} failed reads"),
                        );
                    }
                    self.on_signal(signal);
                }
                Poll::Ready(Some(Err(error))) => self.on_read_error(&error, cx),
                // `Signals` is documented never to end; if it did, keep the
                // handlers and try again later like after an error, rather
                // than finish (which would drop them) or go deaf.
                Poll::Ready(None) => self.on_read_error(&"the signal stream ended", cx),
                Poll::Pending => return Poll::Pending,
            }
        }
    }
}

impl fmt::Debug for Watch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Watch")
            .field("signals", &self.signals)
            .field("seen", &self.seen)
            .field("read_errors_in_a_row", &self.backoff.failures)
            .finish_non_exhaustive()
    }
}

/// The text of a panic payload, if it is a string.
fn panic_message(payload: &(dyn Any + Send)) -> &str {
    payload
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("(not a string)")
}

/// Drops a panic payload whose `Drop` may itself panic; such a second
/// payload is leaked rather than dropped.
fn drop_payload(payload: Box<dyn Any + Send>) {
    if let Err(again) = panic::catch_unwind(AssertUnwindSafe(|| drop(payload))) {
        mem::forget(again);
    }
}

/// The delays between reads after read errors in a row: 1 ms, doubling up to
/// 1 s, and never a point where it gives up.
#[derive(Debug, Default)]
struct Backoff {
    /// Read errors in a row (saturating).
    failures: u32,
}

/// What to do after one more read error.
#[derive(Debug, PartialEq, Eq)]
struct Step {
    /// Wait this long before the next read.
    delay: Duration,
    /// Read errors in a row, this one included.
    failures: u32,
    /// Log this error: the 1st, 2nd, 4th, 8th, ... in a row.
    log: bool,
}

impl Backoff {
    const FIRST: Duration = Duration::from_millis(1);
    const MAX: Duration = Duration::from_secs(1);

    /// Counts one more read error.
    fn fail(&mut self) -> Step {
        self.failures = self.failures.saturating_add(1);
        // 2^10 ms is past `MAX` already; a smaller shift keeps it from overflowing.
        let doublings = (self.failures - 1).min(10);
        Step {
            delay: Backoff::FIRST
                .saturating_mul(1 << doublings)
                .min(Backoff::MAX),
            failures: self.failures,
            log: self.failures.is_power_of_two(),
        }
    }

    /// Counts a good read; returns the read errors in a row before it.
    fn succeed(&mut self) -> u32 {
        mem::take(&mut self.failures)
    }
}

/// A back-off delay being waited out: a thread sleeps it, then wakes the
/// watcher with the waker it last saw.
#[derive(Debug)]
struct Retry {
    at: Instant,
    /// The waker for the sleeping thread to wake; `None` once it woke it.
    waker: Arc<Mutex<Option<Waker>>>,
}

impl Retry {
    /// Starts waiting out `delay`: returns the wait, or `None` if the delay
    /// is already over (no thread could be started, so it was slept here).
    fn start(delay: Duration, waker: &Waker) -> Option<Retry> {
        let at = Instant::now() + delay;
        let slot = Arc::new(Mutex::new(Some(waker.clone())));
        let theirs = Arc::clone(&slot);
        let sleeper = thread::Builder::new()
            .name("smol-graceful-signal-retry".into())
            .spawn(move || {
                // `sleep` sleeps at least `delay`, so the watcher, once
                // woken, finds `at` passed (`Instant` is monotonic).
                thread::sleep(delay);
                let waker = theirs.lock().unwrap_or_else(PoisonError::into_inner).take();
                if let Some(waker) = waker {
                    waker.wake();
                }
            });
        match sleeper {
            Ok(_) => Some(Retry { at, waker: slot }),
            Err(_) => {
                // Sleeping on the executor's thread (at most `Backoff::MAX`)
                // is bad; going deaf or spinning would be worse.
                thread::sleep(delay);
                None
            }
        }
    }

    /// Whether the delay is still running; if so, `waker` will be woken when
    /// it ends.
    fn pending(&self, waker: &Waker) -> bool {
        if Instant::now() >= self.at {
            return false;
        }
        {
            let mut slot = self.waker.lock().unwrap_or_else(PoisonError::into_inner);
            match &mut *slot {
                Some(current) => current.clone_from(waker),
                None => *slot = Some(waker.clone()),
            }
        }
        // Check again: if the sleeper woke (and took the old waker) between
        // the check above and the store, nobody would wake `waker`; then
        // `at` has passed and the caller reads at once. No wakeup is lost.
        Instant::now() < self.at
    }
}

/// How many records all watchers have queued for their log threads and
/// not yet handed to the logger; `flush_log` waits for it to reach zero.
static UNWRITTEN: Mutex<u64> = Mutex::new(0);
/// Notified each time a log thread has handed a record to the logger.
static WRITTEN: Condvar = Condvar::new();

/// Adds `queued` to, and takes `written` from, the count of unwritten
/// records. No user code runs under the lock.
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
/// The watcher logs on a thread of its own (see the [module
/// docs](self#what-holds)), after acting on the signal: a program that
/// drains at once and returns from `main` can exit before that thread has
/// logged "received SIGTERM". Call this last thing before exiting. It never
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

/// A signal as people write it: `SIGINT`, `SIGTERM`, ...
struct SignalName(Signal);

impl fmt::Display for SignalName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let debug = format!("{:?}", self.0); // `Int`, `Term`, `Hup`, ...
        write!(f, "SIG{} (signal {})", debug.to_uppercase(), self.0 as i32)
    }
}

/// The watcher's log records, written by a thread of its own so that nothing
/// the logger does (panic, block) reaches the watcher.
struct Report {
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
    fn start() -> Report {
        Report {
            thread: start_log_thread(),
            dropped: 0,
        }
    }

    /// Logs `text` at `level`, on the log thread if there is one.
    fn log(&mut self, level: log::Level, text: String) {
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
    fn log_before_exit(&mut self, text: String) {
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
        // record that was not counted yet.
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
            // while its queue is open; should it still, log in place.
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
    let logged = panic::catch_unwind(AssertUnwindSafe(|| {
        log::log!(record.level, "{}", record.text);
        if record.done.is_some() {
            log::logger().flush();
        }
    }));
    if let Err(payload) = logged {
        drop_payload(payload);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use std::sync::mpsc::Sender;
    use std::task::Wake;

    /// A waker that says on a channel each time it is woken, and which one it is.
    struct Named(&'static str, Mutex<Sender<&'static str>>);

    impl Wake for Named {
        fn wake(self: Arc<Self>) {
            let _ = self.1.lock().unwrap().send(self.0);
        }
    }

    fn waker(name: &'static str, woken: &Sender<&'static str>) -> Waker {
        Waker::from(Arc::new(Named(name, Mutex::new(woken.clone()))))
    }

    #[test]
    fn a_retry_wakes_the_latest_waker_once_its_delay_is_over() {
        let (woken_tx, woken) = mpsc::channel();
        let delay = Duration::from_millis(200);
        let retry = Retry::start(delay, &waker("first", &woken_tx)).expect("a sleeper thread");
        // A poll during the delay swaps in its own waker (unless this thread was
        // descheduled past the delay: then the caller would read at once).
        let swapped = retry.pending(&waker("second", &woken_tx));
        let name = woken
            .recv_timeout(Duration::from_secs(5))
            .expect("the sleeper wakes a waker within 5 s");
        assert_eq!(name, if swapped { "second" } else { "first" });
        // Once woken, the delay is over: the watcher reads.
        assert!(!retry.pending(&waker("third", &woken_tx)));
        assert!(woken.try_recv().is_err(), "woken only once");
    }

    #[test]
    fn a_retry_whose_delay_is_over_is_not_pending() {
        let (woken_tx, _woken) = mpsc::channel();
        let retry = Retry::start(Duration::ZERO, &waker("first", &woken_tx)).unwrap();
        assert!(!retry.pending(&waker("second", &woken_tx)));
    }

    #[test]
    fn backoff_doubles_from_1_ms_to_at_most_1_s_and_never_stops() {
        let mut backoff = Backoff::default();
        let delays: Vec<u64> = (0..12)
            .map(|_| backoff.fail().delay.as_millis() as u64)
            .collect();
        assert_eq!(delays, [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1000, 1000]);
        // However long the errors last, the next read is always at most 1 s away.
        backoff.failures = u32::MAX - 2;
        for _ in 0..5 {
            let step = backoff.fail();
            assert_eq!(step.delay, Backoff::MAX);
        }
        assert_eq!(backoff.failures, u32::MAX);
    }

    #[test]
    fn backoff_logs_the_first_and_every_power_of_two_failure() {
        let mut backoff = Backoff::default();
        let logged: Vec<u32> = (0..100)
            .map(|_| backoff.fail())
            .filter(|step| step.log)
            .map(|step| step.failures)
            .collect();
        assert_eq!(logged, [1, 2, 4, 8, 16, 32, 64]);
    }

    #[test]
    fn a_good_read_starts_the_backoff_again_at_1_ms() {
        let mut backoff = Backoff::default();
        for _ in 0..20 {
            backoff.fail();
        }
        assert_eq!(backoff.succeed(), 20);
        assert_eq!(backoff.succeed(), 0);
        let step = backoff.fail();
        assert_eq!(
            step,
            Step {
                delay: Backoff::FIRST,
                failures: 1,
                log: true
            }
        );
    }
}
