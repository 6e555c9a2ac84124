//! Drain hyper 1 connections on any executor (no feature, no dependency).
//!
//! [`watch`] wraps a served connection in a [`Watched`] future that holds a
//! named [`Guard`] of a [`Group`] until the connection ends, and calls the
//! connection's `graceful_shutdown()` once, when a [`Shutdown`] triggers. What
//! hyper then does: an HTTP/1 connection that is idle (between keep-alive
//! requests, or before its first) closes at once; a request in flight runs to
//! its end and its response says `Connection: close`; HTTP/2 sends `GOAWAY`
//! and finishes the streams it has. [`Group::wait_timeout`] then waits for
//! every connection, and names those still open when the grace runs out.
//!
//! hyper-util's `GracefulShutdown` does the same on tokio's `watch` channel.
//! This module needs neither tokio nor hyper: it takes the connection's
//! `graceful_shutdown` method as an argument, so one function serves
//! `http1::Connection`, `http2::Connection`, hyper-util's `auto::Connection`,
//! their upgradeable variants, and any other protocol with a graceful close,
//! whatever hyper version and features the application picked. (hyper itself
//! depends on tokio's `sync` module, without any runtime; this crate adds
//! nothing to that.)
//!
// Without `smol` there is no `Group::wait_timeout` to link to (a link reference
// definition must not continue a paragraph: hence the blank line above).
#![cfg_attr(not(feature = "smol"), doc = "[`Group::wait_timeout`]: crate#features")]

use std::borrow::Cow;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use pin_project_lite::pin_project;

use crate::futures::TriggeredOwned;
use crate::{Closed, Group, Guard, Shutdown};

/// Watches `conn`: it counts in `group` as `name` until it ends, and when
/// `shutdown` triggers, `graceful_shutdown(conn)` is called once.
///
/// `graceful_shutdown` is the connection's method of that name (pass the
/// path, e.g. `http1::Connection::graceful_shutdown`), or any closure that
/// starts a graceful close of `conn`. Poll (or spawn) the returned future in
/// place of `conn`: it resolves with the connection's own output.
///
/// The guard is taken here, so the connection counts from this call on, even
/// before the future is first polled; the group's [`Stragglers`] report lists
/// it under `name`, with this call's location. If `shutdown` has already
/// triggered, the first poll calls `graceful_shutdown` before anything else:
/// an HTTP/1 connection then closes without reading a request.
///
/// Costs one allocation for a non-`'static` name (the named guard's
/// record), on top of what hyper allocates per connection.
///
/// A connection accepted just before the trigger may not have sent its
/// first request yet: hyper treats it as idle and closes it unanswered, and
/// HTTP clients do not retry a request on a *new* connection that closed.
/// A server that wants to answer those (restarts under load) triggers each
/// connection's `shutdown` a little later than the listener's, once the
/// connection has started a request or had a moment to (the
/// `http_server` example gives each new connection a second, as Go's
/// `http.Server` gives five).
///
/// # Errors
///
/// [`Closed`] if `group` is closed (a drain has started: [`Group::wait`] and
/// its variants close the group). `conn` is then dropped, which closes the
/// connection without a response: what a server that is draining should do
/// with a connection accepted too late.
///
/// # Examples
///
/// An HTTP/1 server on smol that drains its connections: each accepted
/// connection is served through `watch`, and at shutdown the group is given
/// five seconds.
///
/// ```no_run
/// use std::convert::Infallible;
/// use std::time::Duration;
///
/// use http_body_util::Full;
/// use hyper::body::{Bytes, Incoming};
/// use hyper::server::conn::http1;
/// use hyper::service::service_fn;
/// use hyper::{Request, Response};
/// use smol::net::TcpListener;
/// use smol_graceful::{Group, Shutdown};
/// use smol_hyper::rt::FuturesIo;
///
/// async fn hello(_: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
///     Ok(Response::new(Full::new(Bytes::from("hello\n"))))
/// }
///
/// # fn main() -> std::io::Result<()> {
/// smol::block_on(async {
///     let shutdown = Shutdown::new();
///     let group = Group::new();
///     // Usually `smol_graceful::signal::watch(&shutdown)` triggers it.
///     let listener = TcpListener::bind("127.0.0.1:8080").await?;
///     while let Some(accepted) = shutdown.run_until_triggered(listener.accept()).await {
///         let (stream, peer) = accepted?;
///         let conn = http1::Builder::new()
///             .serve_connection(FuturesIo::new(stream), service_fn(hello));
///         let Ok(conn) = smol_graceful::hyper::watch(
///             conn,
///             http1::Connection::graceful_shutdown,
///             &shutdown,
///             &group,
///             format!("connection {peer}"),
///         ) else {
///             break; // draining already
///         };
///         smol::spawn(conn).detach();
///     }
///     drop(listener); // refuse new connections
///     if let Err(stragglers) = group.wait_timeout(Duration::from_secs(5)).await {
///         eprintln!("{stragglers}");
///     }
///     Ok(())
/// })
/// # }
/// ```
///
/// [`Stragglers`]: crate::Stragglers
#[track_caller]
pub fn watch<C, F>(
    conn: C,
    graceful_shutdown: F,
    shutdown: &Shutdown,
    group: &Group,
    name: impl Into<Cow<'static, str>>,
) -> Result<Watched<C, F>, Closed>
where
    C: Future,
    F: FnOnce(Pin<&mut C>),
{
    let guard = group.add_named(name)?;
    Ok(Watched {
        conn,
        triggered: shutdown.triggered_owned(),
        graceful_shutdown: Some(graceful_shutdown),
        guard: Some(guard),
    })
}

pin_project! {
    /// Future of [`watch`]: the connection, which calls its graceful
    /// shutdown once the shutdown triggers and holds its group guard until
    /// it ends.
    ///
    /// Resolves with the connection's output; the guard is released then.
    ///
    /// # Cancel safety
    ///
    /// Dropping it drops the connection (hyper then closes the socket,
    /// without answering a request in flight) and releases the guard: the
    /// connection stops counting in the group. Nothing else is lost, and
    /// no other state is left behind.
    #[must_use = "futures do nothing unless polled"]
    pub struct Watched<C, F> {
        #[pin]
        conn: C,
        #[pin]
        triggered: TriggeredOwned,
        // `Some` until the shutdown has triggered and it has been called.
        graceful_shutdown: Option<F>,
        // `Some` until `conn` has ended.
        guard: Option<Guard>,
    }
}

impl<C, F> Future for Watched<C, F>
where
    C: Future,
    F: FnOnce(Pin<&mut C>),
{
    type Output = C::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<C::Output> {
        let mut this = self.project();
        let triggered =
            this.graceful_shutdown.is_some() && this.triggered.as_mut().poll(cx).is_ready();
        // Taken before the call: it is made once, even if it panics.
        if let Some(graceful_shutdown) = this.graceful_shutdown.take_if(|_| triggered) {
            graceful_shutdown(this.conn.as_mut());
        }
        // Polled right after `graceful_shutdown`, so an idle connection
        // closes in this very poll.
        let output = ready!(this.conn.poll(cx));
        *this.guard = None;
        Poll::Ready(output)
    }
}

impl<C, F> fmt::Debug for Watched<C, F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Watched")
            .field("shutdown_called", &self.graceful_shutdown.is_none())
            .field("guard", &self.guard)
            .finish_non_exhaustive()
    }
}
