//! What the rows share: helper threads, an executor pool, a local mailbox,
//! the tasks they spawn, and [`Fixtures`], which makes each of them once per
//! set, so that a set's rows and baselines run on the same threads.

use std::cell::{Cell, OnceCell};
use std::future::Future;
use std::hint::black_box;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Barrier, Mutex};
use std::task::{Context, Poll, Waker};
use std::thread::{self, JoinHandle, Thread};
use std::time::{Duration, Instant};

use futures_lite::future::{self, block_on};
use smol::{Executor, LocalExecutor, Task};
use smol_graceful::Guard;
use tokio_util::task::task_tracker::TaskTrackerToken;

use crate::harness::{Batch, MIN_OVERLAP};

/// The threads a set's rows share, each made on first use. Dropped after
/// the set is measured, which stops them before the next set starts.
pub struct Fixtures {
    /// Threads of the `_xN` rows of this set.
    threads: usize,
    team: OnceCell<Rc<Team>>,
    helper: OnceCell<Rc<Dropper<Handed>>>,
    pool: OnceCell<Rc<Pool>>,
}

impl Fixtures {
    /// Fixtures whose team (for `_xN` rows) has `threads` threads.
    pub fn new(threads: usize) -> Fixtures {
        Fixtures {
            threads,
            team: OnceCell::new(),
            helper: OnceCell::new(),
            pool: OnceCell::new(),
        }
    }

    /// The `_xN` rows' threads.
    pub fn team(&self) -> Rc<Team> {
        Rc::clone(self.team.get_or_init(|| Rc::new(Team::new(self.threads))))
    }

    /// The thread round-trip rows' helper thread.
    pub fn helper(&self) -> Rc<Dropper<Handed>> {
        Rc::clone(self.helper.get_or_init(|| Rc::new(Dropper::new())))
    }

    /// The join rows' 2-thread executor pool.
    pub fn pool(&self) -> Rc<Pool> {
        Rc::clone(self.pool.get_or_init(|| Rc::new(Pool::new(2))))
    }
}

/// A context whose waker does nothing, for polling futures that are ready.
pub fn noop_cx() -> Context<'static> {
    Context::from_waker(Waker::noop())
}

/// The tasks the join rows spawn.
pub async fn work() {
    black_box(());
}

/// The tasks the task-set rows spawn: each returns its spawn index.
pub async fn numbered(index: u64) -> u64 {
    black_box(index)
}

// ---------------------------------------------------------------------------
// Team.

/// A batch for [`Team`]: every thread runs it once.
pub type Job = Arc<dyn Fn() + Send + Sync>;

/// Persistent threads that run each batch together, released by a barrier.
/// All `_xN` rows of a set share one team, so where the scheduler puts the
/// threads changes for every row alike.
pub struct Team {
    jobs: Vec<mpsc::Sender<Job>>,
    /// Each thread's (start, end) of its run of the job.
    done: mpsc::Receiver<(Instant, Instant)>,
    barrier: Arc<Barrier>,
    threads: Vec<JoinHandle<()>>,
}

impl Team {
    fn new(n: usize) -> Team {
        let barrier = Arc::new(Barrier::new(n + 1));
        let (done_tx, done) = mpsc::channel();
        let mut jobs = Vec::new();
        let mut threads = Vec::new();
        for _ in 0..n {
            let (tx, rx) = mpsc::channel::<Job>();
            let (barrier, done_tx) = (Arc::clone(&barrier), done_tx.clone());
            threads.push(thread::spawn(move || {
                while let Ok(job) = rx.recv() {
                    barrier.wait();
                    let start = Instant::now();
                    job();
                    done_tx.send((start, Instant::now())).unwrap();
                }
            }));
            jobs.push(tx);
        }
        Team {
            jobs,
            done,
            barrier,
            threads,
        }
    }

    /// Runs `job` on every thread at once. The batch's time is the mean of
    /// the threads' own times (each ran `iters` ops); it is kept only if the
    /// threads overlapped for at least `MIN_OVERLAP` of the span from the
    /// first start to the last end, so that time-sliced batches (one core
    /// for all threads) do not count. The threads clock themselves: with
    /// few cores, this thread may not run again until they are done.
    pub fn run(&self, job: Job) -> Batch {
        for tx in &self.jobs {
            tx.send(Arc::clone(&job)).unwrap();
        }
        self.barrier.wait();
        let spans: Vec<(Instant, Instant)> = self
            .jobs
            .iter()
            .map(|_| self.done.recv().unwrap())
            .collect();
        let first_start = spans.iter().map(|s| s.0).min().unwrap();
        let last_start = spans.iter().map(|s| s.0).max().unwrap();
        let first_end = spans.iter().map(|s| s.1).min().unwrap();
        let last_end = spans.iter().map(|s| s.1).max().unwrap();
        let span = (last_end - first_start).as_secs_f64();
        let overlap = first_end
            .saturating_duration_since(last_start)
            .as_secs_f64();
        let each: Duration = spans.iter().map(|s| s.1 - s.0).sum();
        Batch {
            took: each / spans.len() as u32,
            kept: span > 0.0 && overlap / span >= MIN_OVERLAP,
            laps: Vec::new(),
        }
    }
}

impl Drop for Team {
    fn drop(&mut self) {
        self.jobs.clear(); // the threads' `recv` fails: they return
        for t in self.threads.drain(..) {
            t.join().unwrap();
        }
    }
}

// ---------------------------------------------------------------------------
// Dropper.

/// A parked helper thread that drops whatever it is handed.
pub struct Dropper<T: Send + 'static> {
    slot: Arc<Mutex<Option<T>>>,
    stop: Arc<AtomicBool>,
    thread: Thread,
    join: Option<JoinHandle<()>>,
}

impl<T: Send + 'static> Dropper<T> {
    fn new() -> Dropper<T> {
        let slot = Arc::new(Mutex::new(None::<T>));
        let stop = Arc::new(AtomicBool::new(false));
        let join = thread::spawn({
            let (slot, stop) = (Arc::clone(&slot), Arc::clone(&stop));
            move || loop {
                let item = slot.lock().unwrap().take();
                match item {
                    // Dropped here, outside the lock.
                    Some(item) => drop(item),
                    // Acquire: pairs with the Release store in `drop`; the
                    // slot itself is read under its lock.
                    None if stop.load(Ordering::Acquire) => break,
                    None => thread::park(),
                }
            }
        });
        Dropper {
            slot,
            stop,
            thread: join.thread().clone(),
            join: Some(join),
        }
    }

    /// Hands `item` to the helper, which drops it.
    pub fn hand(&self, item: T) {
        *self.slot.lock().unwrap() = Some(item);
        self.thread.unpark();
    }
}

impl<T: Send + 'static> Drop for Dropper<T> {
    fn drop(&mut self) {
        // Release: the helper sees the flag set after every handed item.
        self.stop.store(true, Ordering::Release);
        self.thread.unpark();
        if let Some(join) = self.join.take() {
            join.join().unwrap();
        }
    }
}

/// What the thread round-trip rows hand to their shared helper thread, which
/// drops it. One helper for all of a set's rows, so that where the scheduler
/// puts the two threads (same core or not) is the same for each row.
#[expect(dead_code, reason = "the values are only held, to be dropped")]
pub enum Handed {
    Guard(Guard),
    Token(TaskTrackerToken),
    Unpark(Unpark),
}

/// For `park_unpark_rt`: dropping it sets the flag and unparks the thread.
pub struct Unpark {
    pub flag: Arc<AtomicBool>,
    pub thread: Thread,
}

impl Drop for Unpark {
    fn drop(&mut self) {
        // Release: the parked thread's Acquire load sees the drop done.
        self.flag.store(true, Ordering::Release);
        self.thread.unpark();
    }
}

// ---------------------------------------------------------------------------
// Mailbox.

pub enum Msg<T> {
    Item(T),
    Stop,
}

/// A one-slot mailbox between two tasks of one `LocalExecutor`.
pub struct Mailbox<T> {
    item: Cell<Option<Msg<T>>>,
    waker: Cell<Option<Waker>>,
}

impl<T> Mailbox<T> {
    fn new() -> Rc<Mailbox<T>> {
        Rc::new(Mailbox {
            item: Cell::new(None),
            waker: Cell::new(None),
        })
    }

    #[inline]
    pub fn send(&self, msg: Msg<T>) {
        self.item.set(Some(msg));
        if let Some(waker) = self.waker.take() {
            waker.wake();
        }
    }

    #[inline]
    fn recv(&self) -> impl Future<Output = Msg<T>> + '_ {
        future::poll_fn(|cx| match self.item.take() {
            Some(msg) => Poll::Ready(msg),
            None => {
                self.waker.set(Some(cx.waker().clone()));
                Poll::Pending
            }
        })
    }
}

/// The task of the local round trips: drops every item it receives.
async fn drop_items<T>(mailbox: Rc<Mailbox<T>>) {
    while let Msg::Item(item) = mailbox.recv().await {
        drop(item);
    }
}

/// Runs `round` `iters` times on a fresh `LocalExecutor`, next to a task
/// that drops what `round` sends it, timing each round trip.
/// `#[inline]`, like the other helpers on a row's measured path, so that it
/// is compiled in the row's own codegen unit (see `harness::time`).
#[inline]
pub fn local_ping_pong<T: 'static, F: Future<Output = ()>>(
    iters: u64,
    round: impl FnMut(Rc<Mailbox<T>>) -> F,
) -> Batch {
    let ex = LocalExecutor::new();
    let mailbox = Mailbox::new();
    let dropper = ex.spawn(drop_items(Rc::clone(&mailbox)));
    block_on(ex.run(async {
        let batch = lapped(iters, &mailbox, round).await;
        mailbox.send(Msg::Stop);
        dropper.await;
        batch
    }))
}

/// [`local_ping_pong`] on a tokio current-thread runtime with its timer
/// enabled (a `LocalSet`, for the `!Send` mailbox).
#[inline]
pub fn tokio_ping_pong<T: 'static, F: Future<Output = ()>>(
    iters: u64,
    round: impl FnMut(Rc<Mailbox<T>>) -> F,
) -> Batch {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    let local = tokio::task::LocalSet::new();
    let mailbox = Mailbox::new();
    let dropper = local.spawn_local(drop_items(Rc::clone(&mailbox)));
    rt.block_on(local.run_until(async {
        let batch = lapped(iters, &mailbox, round).await;
        mailbox.send(Msg::Stop);
        dropper.await.unwrap();
        batch
    }))
}

/// `iters` round trips, each timed.
#[inline]
async fn lapped<T, F: Future<Output = ()>>(
    iters: u64,
    mailbox: &Rc<Mailbox<T>>,
    mut round: impl FnMut(Rc<Mailbox<T>>) -> F,
) -> Batch {
    let mut laps = Vec::with_capacity(iters as usize);
    let start = Instant::now();
    for _ in 0..iters {
        let t = Instant::now();
        round(Rc::clone(mailbox)).await;
        laps.push(t.elapsed().as_nanos() as u64);
    }
    Batch {
        took: start.elapsed(),
        kept: true,
        laps,
    }
}

// ---------------------------------------------------------------------------
// Pool.

/// Threads running a smol `Executor` until dropped.
pub struct Pool {
    pub ex: Arc<Executor<'static>>,
    stop: Option<smol::channel::Sender<()>>,
    threads: Vec<JoinHandle<()>>,
}

impl Pool {
    fn new(threads: usize) -> Pool {
        let ex = Arc::new(Executor::new());
        let (stop, stopped) = smol::channel::bounded::<()>(1);
        let threads = (0..threads)
            .map(|_| {
                let (ex, stopped) = (Arc::clone(&ex), stopped.clone());
                thread::spawn(move || {
                    block_on(ex.run(async {
                        stopped.recv().await.ok();
                    }))
                })
            })
            .collect();
        Pool {
            ex,
            stop: Some(stop),
            threads,
        }
    }

    /// Spawns the `n` tasks of a task-set baseline, in order.
    #[inline]
    pub fn spawn_numbered(&self, n: u64) -> impl Iterator<Item = Task<u64>> + '_ {
        (0..n).map(|i| self.ex.spawn(numbered(i)))
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        self.stop.take(); // closes the channel: every `run` returns
        for t in self.threads.drain(..) {
            t.join().unwrap();
        }
    }
}
