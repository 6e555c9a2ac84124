//! smol's multi-threaded `Executor`, run by a few threads of its own: for tests whose
//! tasks must run in parallel, or on other threads than the test's.

use std::ops::Deref;
use std::sync::Arc;
use std::thread::{self, JoinHandle};

use futures_lite::future::block_on;
use smol::channel::{self, Sender};
use smol::Executor;

use super::join_within;

/// An `Executor` run by `threads` threads until [`Pool::stop`] or drop; derefs to it.
///
/// A task's panic does not end a thread of the pool: async-executor hands it to the
/// task's handle (a detached task's is dropped), so only a bug in the pool itself could.
pub struct Pool {
    ex: Arc<Executor<'static>>,
    stop: Sender<()>,
    threads: Vec<JoinHandle<()>>,
}

impl Pool {
    /// Starts `threads` threads, named `pool-0`, `pool-1`, ..., that run the executor.
    pub fn start(threads: usize) -> Pool {
        let ex = Arc::new(Executor::new());
        let (stop, stopped) = channel::bounded::<()>(1);
        let threads = (0..threads)
            .map(|i| {
                let ex = Arc::clone(&ex);
                let stopped = stopped.clone();
                thread::Builder::new()
                    .name(format!("pool-{i}"))
                    // `recv` fails once `stop` is closed, and `run` returns.
                    .spawn(move || {
                        let _ = block_on(ex.run(stopped.recv()));
                    })
                    .expect("start a pool thread")
            })
            .collect();
        Pool { ex, stop, threads }
    }

    /// The executor, for tasks that need to own a handle to it.
    pub fn executor(&self) -> &Arc<Executor<'static>> {
        &self.ex
    }

    /// Stops the threads (tasks not finished stay in the executor, unrun) and joins them,
    /// failing the test if one does not end within [`super::LIMIT`].
    #[track_caller]
    pub fn stop(mut self) {
        self.stop.close();
        for handle in std::mem::take(&mut self.threads) {
            join_within(handle);
        }
    }
}

impl Deref for Pool {
    type Target = Executor<'static>;

    fn deref(&self) -> &Executor<'static> {
        &self.ex
    }
}

/// Stops the threads; joins them too, unless a failed assertion is unwinding (the threads
/// then end on their own, and the test reports its first failure, not a second one).
impl Drop for Pool {
    fn drop(&mut self) {
        self.stop.close();
        if !thread::panicking() {
            for handle in std::mem::take(&mut self.threads) {
                join_within(handle);
            }
        }
    }
}
