//! Serving until told to stop, for any server: [`Connection`] drains one
//! connection of any protocol with Go's `Server.Shutdown` semantics, and
//! [`run`] (features `signal` and `smol`, on by default) is a service's
//! `main` in one call.
//!
//! # How a connection drains
//!
//! A [`Connection`] wraps a stream and watches its I/O to tell a request in
//! progress from an idle connection, with no knowledge of the protocol: it
//! is *busy* from the first byte read while idle, and *idle* again once the
//! server has written and then waits to read (for request-response
//! protocols, HTTP/1 included: the answer is out, the next request has not
//! come). Once the shutdown triggers:
//! - an idle connection reads end-of-stream at once, even a read already
//!   waiting, so the server's connection loop ends and closes it, and a
//!   request that had not started is not started;
//! - a busy one runs to completion, and [`closing`](Connection::closing)
//!   tells the handler to answer "close" (HTTP's `Connection: close`); the
//!   next read, after the answer, is end-of-stream.
//!
//! Watching I/O cannot tell an interim answer from the final one: an HTTP
//! server that writes `100 Continue` and then reads the body would look
//! idle while it waits for the body. A handler that reads after it has
//! written holds [`busy`](Connection::busy) for the request, and the
//! connection passes reads through, untouched, while it is held.
//!
//! Each connection counts in a [`Group`] under its name until it is dropped
//! (clones share the count), so the drain is the group's `wait`.
//!
// Without the features, `run` does not exist: its links lead to the list of
// features instead.
#![cfg_attr(
    not(all(feature = "signal", feature = "smol")),
    doc = "[`run`]: crate#features"
)]

use std::borrow::Cow;
use std::fmt;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use futures_io::{AsyncRead, AsyncWrite};
use pin_project_lite::pin_project;

use crate::futures::TriggeredOwned;
use crate::group::{Closed, Group, Guard};
use crate::shutdown::Shutdown;
use crate::sync::{lock, Mutex};

#[cfg(all(feature = "signal", feature = "smol"))]
mod run;
#[cfg(all(feature = "signal", feature = "smol"))]
pub use run::run;

/// No request in progress: the first byte read starts one.
const IDLE: u8 = 0;
/// A request is in progress (bytes were read, nothing written since).
const BUSY: u8 = 1;
/// The answer is being written: a read that has to wait makes it idle.
const ANSWERED: u8 = 2;

pin_project! {
    /// A stream that drains with Go's `Server.Shutdown` semantics: an idle
    /// connection ends at the shutdown, a request in progress finishes (see
    /// the [module docs](self)).
    ///
    /// Reads and writes pass through. A read on an idle connection once the
    /// shutdown has triggered returns `Ok(0)` (end of stream), and a read
    /// waiting on an idle connection is woken by the trigger to return it.
    /// Clones (for protocols that read and write through two handles, as
    /// async-h1 does) share the state and the count.
    ///
    /// # Examples
    ///
    /// A line protocol: each line is a request, answered with one line.
    ///
    /// ```no_run
    /// use smol::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
    /// use smol::net::TcpStream;
    /// use smol_graceful::serve::Connection;
    /// use smol_graceful::{Group, Shutdown};
    ///
    /// async fn serve(stream: TcpStream, group: &Group, shutdown: &Shutdown) -> std::io::Result<()> {
    ///     let name = format!("connection {}", stream.peer_addr()?);
    ///     let conn = Connection::new(stream, group, shutdown, name)?;
    ///     let mut reader = BufReader::new(conn.clone());
    ///     let mut writer = conn.clone();
    ///     let mut line = String::new();
    ///     // Ends at the client's end of stream, or at the shutdown when idle.
    ///     while reader.read_line(&mut line).await? > 0 {
    ///         let bye = if conn.closing() { " (closing)" } else { "" };
    ///         writer.write_all(format!("echo: {}{bye}\n", line.trim_end()).as_bytes()).await?;
    ///         line.clear();
    ///     }
    ///     Ok(())
    /// }
    /// ```
    #[derive(Debug)]
    pub struct Connection<S> {
        #[pin]
        stream: S,
        state: Arc<State>,
        // The connection's count in the group, shared by its clones only
        // (not by `Busy` guards, which may outlive every handle).
        _guard: Arc<Guard>,
        // Made when a read first has to wait (boxed, so that the connection
        // is `Unpin` when its stream is).
        triggered: Option<Pin<Box<TriggeredOwned>>>,
    }
}

/// What the clones of a connection share.
struct State {
    /// How many [`Busy`] guards are alive: while any is, the connection is
    /// busy whatever its I/O. Relaxed, for the reason given on `phase`.
    held: AtomicUsize,
    /// `IDLE`, `BUSY` or `ANSWERED`. Every access is Relaxed: the phase
    /// only says where this connection's own reads and writes stand, made by
    /// the tasks that use it, and publishes no other data; the trigger has
    /// its own orderings.
    phase: AtomicU8,
    shutdown: Shutdown,
    /// The waker of a read that waits, woken when a request ends (an
    /// answer written, a `Busy` dropped) so that it looks again: idle now,
    /// it ends if the shutdown has triggered. The read parks its waker
    /// here, then reads the phase; an end stores the phase, then takes the
    /// waker: the mutex orders the two, so either the read sees the new
    /// phase or the end finds the waker (no lost wakeup).
    reader: Mutex<Option<Waker>>,
}

impl State {
    /// A request in progress: a `Busy` guard held, or bytes read and no
    /// answer written yet.
    fn is_busy(&self) -> bool {
        // Relaxed: see `phase` and `held`.
        self.held.load(Ordering::Relaxed) > 0 || self.phase.load(Ordering::Relaxed) == BUSY
    }

    /// A request ended: the phase becomes `ANSWERED`, and a waiting read
    /// looks again.
    fn end_request(&self) {
        // Relaxed: see `phase`; ordered with the read's check by `reader`.
        self.phase.store(ANSWERED, Ordering::Relaxed);
        let reader = lock(&self.reader).take();
        if let Some(reader) = reader {
            reader.wake();
        }
    }
}

impl<S> Connection<S> {
    /// Wraps `stream`, counted in `group` as `name` (say `connection
    /// PEER_ADDR`) until the connection and its clones are dropped, draining
    /// when `shutdown` triggers.
    ///
    /// # Errors
    ///
    /// [`Closed`] if `group` is closed (the server is draining already):
    /// drop the stream.
    #[track_caller]
    pub fn new(
        stream: S,
        group: &Group,
        shutdown: &Shutdown,
        name: impl Into<Cow<'static, str>>,
    ) -> Result<Connection<S>, Closed> {
        let state = State {
            phase: AtomicU8::new(IDLE),
            held: AtomicUsize::new(0),
            shutdown: shutdown.clone(),
            reader: Mutex::new(None),
        };
        Ok(Connection {
            stream,
            state: Arc::new(state),
            _guard: Arc::new(group.add_named(name)?),
            triggered: None,
        })
    }

    /// Marks a request in progress until the guard is dropped, whatever the
    /// connection's I/O: for a handler that reads after it has written (an
    /// HTTP body after `100 Continue`, a protocol with interim replies).
    /// Without it, a connection is busy from a request's first byte to its
    /// answer.
    pub fn busy(&self) -> Busy {
        // Relaxed: see `State::held`.
        self.state.held.fetch_add(1, Ordering::Relaxed);
        Busy {
            state: Arc::clone(&self.state),
        }
    }

    /// True once the shutdown has triggered: a handler answering now should
    /// say it closes the connection (HTTP's `Connection: close`), since no
    /// further request will be read.
    pub fn closing(&self) -> bool {
        self.state.shutdown.is_triggered()
    }
}

impl<S: Clone> Clone for Connection<S> {
    fn clone(&self) -> Connection<S> {
        Connection {
            stream: self.stream.clone(),
            state: Arc::clone(&self.state),
            _guard: Arc::clone(&self._guard),
            triggered: None,
        }
    }
}

impl<S: AsyncRead> AsyncRead for Connection<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.project();
        let state = &**this.state;
        if !state.is_busy() && state.shutdown.is_triggered() {
            // Between requests: no new request is started.
            return Poll::Ready(Ok(0));
        }
        match this.stream.poll_read(cx, buf) {
            Poll::Ready(Ok(read)) if read > 0 => {
                // A request's first byte, or more of it. Relaxed: see
                // `State::phase`.
                state.phase.store(BUSY, Ordering::Relaxed);
                Poll::Ready(Ok(read))
            }
            Poll::Pending => {
                // Park first, then look (see `State::reader`).
                match &mut *lock(&state.reader) {
                    Some(waker) if waker.will_wake(cx.waker()) => {}
                    parked => *parked = Some(cx.waker().clone()),
                }
                let busy = state.is_busy();
                if !busy {
                    // Answered and waiting: idle. Relaxed: see `State::phase`.
                    state.phase.store(IDLE, Ordering::Relaxed);
                }
                // Every wait watches the trigger too: an idle one ends at it.
                let shutdown = &state.shutdown;
                let triggered = this
                    .triggered
                    .get_or_insert_with(|| Box::pin(shutdown.triggered_owned()));
                match triggered.as_mut().poll(cx) {
                    Poll::Ready(()) if !busy => Poll::Ready(Ok(0)),
                    _ => Poll::Pending,
                }
            }
            other => other,
        }
    }
}

impl<S: AsyncWrite> AsyncWrite for Connection<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.project();
        let written = this.stream.poll_write(cx, buf);
        if let Poll::Ready(Ok(n)) = written {
            // An answer goes out: a read that waits after it is idle.
            // Relaxed: see `State::phase`.
            if n > 0 && this.state.phase.load(Ordering::Relaxed) == BUSY {
                this.state.end_request();
            }
        }
        written
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.project().stream.poll_flush(cx)
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.project().stream.poll_close(cx)
    }
}

/// A request in progress on a [`Connection`]: made by
/// [`Connection::busy`], ended by its drop.
#[derive(Debug)]
#[must_use = "a request counts as in progress only while the guard is alive"]
pub struct Busy {
    state: Arc<State>,
}

impl Drop for Busy {
    fn drop(&mut self) {
        // Relaxed: see `State::held`. The request is answered (or
        // abandoned): a read that waits now is idle, and looks again.
        self.state.held.fetch_sub(1, Ordering::Relaxed);
        self.state.end_request();
    }
}

impl fmt::Debug for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let phase = match self.phase.load(Ordering::Relaxed) {
            IDLE => "idle",
            BUSY => "busy",
            _ => "answered",
        };
        f.debug_struct("State")
            .field("phase", &phase)
            .field("closing", &self.shutdown.is_triggered())
            .finish_non_exhaustive()
    }
}
