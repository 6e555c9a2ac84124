//! The back-off after read errors: how long the watcher waits before
//! reading the signal notifications again, and how it waits without a timer.
//!
//! [`Backoff`] counts the read errors in a row and turns each one into a
//! [`Step`]: the delay before the next read and whether to log the error.
//! [`Retry`] waits the delay out: a short-lived thread sleeps it, then wakes
//! the watcher with the waker it last saw. The watcher does not read while a
//! `Retry` is pending.
//!
//! # Invariants
//!
//! 1. The delay is 1 ms after the first error in a row, doubles with each
//!    further one, and stays at 1 s from the 11th on: it never exceeds
//!    [`Backoff::MAX`], never overflows, and the back-off never gives up.
//! 2. A good read starts it again at 1 ms.
//! 3. The 1st, 2nd, 4th, 8th, ... error in a row is logged, no other.
//! 4. No wakeup is lost: when [`Retry::pending`] returns `true`, the waker
//!    it was given (or that of a later call) is woken once the delay is
//!    over. The sleeper takes the latest waker under the lock; `pending`
//!    stores its waker, then checks the clock again.
//!
//! # Deadlock safety
//!
//! One lock, the `Retry`'s waker slot, and no other lock is taken while it
//! is held. It is held only to take out a waker or store a clone of one (so
//! the executor's waker clone and drop run under it); the sleeper wakes the
//! waker after releasing it.

use std::mem;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::Waker;
use std::thread;
use std::time::{Duration, Instant};

/// The delays between reads after read errors in a row: 1 ms, doubling up to
/// 1 s, and never a point where it gives up.
#[derive(Debug, Default)]
pub(super) struct Backoff {
    /// Read errors in a row (saturating).
    pub(super) failures: u32,
}

/// What to do after one more read error.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct Step {
    /// Wait this long before the next read.
    pub(super) delay: Duration,
    /// Read errors in a row, this one included.
    pub(super) failures: u32,
    /// Log this error: the 1st, 2nd, 4th, 8th, ... in a row.
    pub(super) log: bool,
}

impl Backoff {
    const FIRST: Duration = Duration::from_millis(1);
    const MAX: Duration = Duration::from_secs(1);

    /// Counts one more read error.
    pub(super) fn fail(&mut self) -> Step {
        self.failures = self.failures.saturating_add(1);
        // 2^10 ms is past `MAX` already; a smaller shift keeps it from
        // overflowing (invariant 1).
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
    pub(super) fn succeed(&mut self) -> u32 {
        mem::take(&mut self.failures)
    }
}

/// A back-off delay being waited out: a thread sleeps it, then wakes the
/// watcher with the waker it last saw.
#[derive(Debug)]
pub(super) struct Retry {
    at: Instant,
    /// The waker for the sleeping thread to wake; `None` once it woke it.
    waker: Arc<Mutex<Option<Waker>>>,
}

impl Retry {
    /// Starts waiting out `delay`: returns the wait, or `None` if the delay
    /// is already over (no thread could be started, so it was slept here).
    pub(super) fn start(delay: Duration, waker: &Waker) -> Option<Retry> {
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
    pub(super) fn pending(&self, waker: &Waker) -> bool {
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
        // `at` has passed and the caller reads at once. No wakeup is lost
        // (invariant 4).
        Instant::now() < self.at
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use std::sync::mpsc::{self, Sender};
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
