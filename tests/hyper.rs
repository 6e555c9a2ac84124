//! `smol_graceful::hyper::watch`: hyper 1 connections on smol, over real loopback
//! sockets, drained when a `Shutdown` triggers and counted in a `Group` under their
//! names until they end. And the `Watched` future alone, polled by hand.
//!
//! Every wait is bounded: the client's socket timeouts, `recv_timeout`, the group's timed
//! waits. Nothing sleeps and then asserts: the tests learn that a request is in flight
//! from the service itself (it reports on a channel) before they trigger.

#![cfg(all(unix, feature = "smol", feature = "signal"))]

mod common;

use std::cell::Cell;
use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::{pin, Pin};
use std::sync::mpsc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use smol_graceful::hyper::watch;
use smol_graceful::{Closed, Group, Shutdown};
use smol_hyper::rt::FuturesIo;

use common::http::{Client, STEP};
use common::waker::FlagWaker;

/// What became of a connection the server accepted.
#[derive(Debug)]
enum Served {
    /// Watched, and served to its end with this result.
    Ended(Result<(), String>),
    /// `watch` refused it.
    Refused(Closed),
}

/// A hyper HTTP/1 server on smol's global executor, on a free loopback port, whose
/// connections are watched with `shutdown` and `group` under `connection PEER`.
///
/// `GET /hold` reports on `started` once it runs, then answers only when the test
/// sends on `release`; any other path answers at once.
struct Server {
    addr: SocketAddr,
    shutdown: Shutdown,
    group: Group,
    served: mpsc::Receiver<Served>,
    started: async_channel::Receiver<()>,
    release: async_channel::Sender<()>,
}

impl Server {
    fn start() -> Server {
        let shutdown = Shutdown::new();
        let group = Group::new();
        let (served_tx, served) = mpsc::channel();
        let (started_tx, started) = async_channel::unbounded();
        let (release, release_rx) = async_channel::unbounded();
        let listener = smol::block_on(smol::net::TcpListener::bind("127.0.0.1:0")).expect("bind");
        let addr = listener.local_addr().expect("local_addr");
        let (accept_shutdown, accept_group) = (shutdown.clone(), group.clone());
        // Accepts until the test ends (the listener goes with the process): unlike a real
        // server, it keeps accepting after the trigger, to test what `watch` does then.
        smol::spawn(async move {
            loop {
                let Ok((stream, peer)) = listener.accept().await else {
                    continue;
                };
                let (started, release) = (started_tx.clone(), release_rx.clone());
                let service = service_fn(move |request: Request<Incoming>| {
                    let (started, release) = (started.clone(), release.clone());
                    async move {
                        if request.uri().path() == "/hold" {
                            let _ = started.send(()).await;
                            let _ = release.recv().await;
                        }
                        Ok::<_, Infallible>(Response::new(Full::new(Bytes::from("done\n"))))
                    }
                });
                let conn = http1::Builder::new().serve_connection(FuturesIo::new(stream), service);
                let served = served_tx.clone();
                match watch(
                    conn,
                    http1::Connection::graceful_shutdown,
                    &accept_shutdown,
                    &accept_group,
                    format!("connection {peer}"),
                ) {
                    Ok(watched) => {
                        smol::spawn(async move {
                            let result = watched.await.map_err(|e| e.to_string());
                            let _ = served.send(Served::Ended(result));
                        })
                        .detach();
                    }
                    Err(closed) => {
                        let _ = served.send(Served::Refused(closed));
                    }
                }
            }
        })
        .detach();
        Server {
            addr,
            shutdown,
            group,
            served,
            started,
            release,
        }
    }

    fn connect(&self) -> Client {
        Client::connect(self.addr).expect("connect")
    }

    /// Waits (bounded) until a `/hold` request runs in the service.
    fn wait_started(&self) {
        let started = smol::future::or(async { self.started.recv().await.is_ok() }, async {
            smol::Timer::after(STEP).await;
            false
        });
        assert!(smol::block_on(started), "no /hold request started");
    }

    /// Lets one `/hold` request answer.
    fn release_one(&self) {
        self.release.try_send(()).expect("release");
    }

    /// Waits (bounded) for what became of the next connection.
    fn served(&self) -> Served {
        self.served.recv_timeout(STEP).expect("a connection's end")
    }
}

#[test]
fn an_idle_keep_alive_connection_closes_at_once_on_trigger() {
    let server = Server::start();
    let mut client = server.connect();
    let response = client.get("/");
    assert_eq!(response.status, 200);
    assert_ne!(response.header("connection"), Some("close"), "{response:?}");
    assert_eq!(server.group.len(), 1);

    let triggered = Instant::now();
    server.shutdown.trigger();
    client.assert_eof();
    assert!(
        triggered.elapsed() < Duration::from_secs(2),
        "{:?}",
        triggered.elapsed()
    );
    assert!(matches!(server.served(), Served::Ended(Ok(()))));
    assert_eq!(server.group.len(), 0);
    server
        .group
        .wait_blocking_timeout(STEP)
        .expect("the group drains");
}

#[test]
fn an_in_flight_request_finishes_says_connection_close_and_counts_until_then() {
    let server = Server::start();
    let mut client = server.connect();
    let name = format!("connection {}", client.local_addr());
    client.send("/hold").expect("send");
    server.wait_started();
    server.shutdown.trigger();

    // The request holds its connection open, under its name, however long it runs.
    let stragglers = server
        .group
        .wait_blocking_timeout(Duration::from_millis(100))
        .expect_err("the connection is still open");
    assert_eq!(stragglers.count(), 1, "{stragglers}");
    assert_eq!(stragglers.names(), [name.as_str()], "{stragglers}");

    server.release_one();
    let response = client.receive().expect("the held request is answered");
    assert_eq!(response.status, 200, "{response:?}");
    assert_eq!(response.body, "done\n");
    assert_eq!(response.header("connection"), Some("close"), "{response:?}");
    client.assert_eof();
    assert!(matches!(server.served(), Served::Ended(Ok(()))));
    server
        .group
        .wait_blocking_timeout(STEP)
        .expect("the group drains");
}

#[test]
fn connections_still_open_past_the_grace_are_named_in_the_stragglers() {
    let server = Server::start();
    let mut idle = server.connect();
    assert_eq!(idle.get("/").status, 200);
    let mut held: Vec<Client> = (0..3).map(|_| server.connect()).collect();
    for client in &mut held {
        client.send("/hold").expect("send");
        server.wait_started();
    }
    server.shutdown.trigger();
    idle.assert_eof();
    let stragglers = server
        .group
        .wait_blocking_timeout(Duration::from_millis(200))
        .expect_err("the held requests are still running");
    assert_eq!(stragglers.count(), 3, "{stragglers}");
    let mut names = stragglers.names();
    names.sort_unstable();
    let mut expected: Vec<String> = held
        .iter()
        .map(|client| format!("connection {}", client.local_addr()))
        .collect();
    expected.sort_unstable();
    assert_eq!(names, expected, "{stragglers}");
    // Where the guard was taken: the `watch` call in this file.
    let location = stragglers.named()[0].location();
    assert!(location.file().ends_with("hyper.rs"), "{location}");
    assert!(location.file().starts_with("tests"), "{location}");

    // Any held request may take any release: release them all, then read.
    for _ in &held {
        server.release_one();
    }
    for client in &mut held {
        assert_eq!(client.receive().expect("answered").status, 200);
    }
}

#[test]
fn a_connection_watched_after_the_trigger_closes_without_an_answer() {
    let server = Server::start();
    server.shutdown.trigger();
    let mut client = server.connect();
    let _ = client.send("/");
    assert!(client.receive_unless_closed().is_none());
    assert!(matches!(server.served(), Served::Ended(Ok(()))));
    assert_eq!(server.group.len(), 0);
}

#[test]
fn watch_on_a_closed_group_refuses_and_closes_the_connection() {
    let server = Server::start();
    server.group.close();
    let mut client = server.connect();
    let _ = client.send("/");
    assert!(client.receive_unless_closed().is_none());
    assert!(matches!(server.served(), Served::Refused(Closed)));
}

/// A connection stand-in: pending until `graceful_shutdown` closes it.
struct Conn {
    closing: bool,
}

impl Future for Conn {
    type Output = &'static str;

    fn poll(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<&'static str> {
        if self.closing {
            Poll::Ready("closed")
        } else {
            Poll::Pending
        }
    }
}

#[test]
fn the_trigger_wakes_the_task_and_graceful_shutdown_is_called_once() {
    let shutdown = Shutdown::new();
    let group = Group::new();
    let calls = Cell::new(0);
    let shut = |conn: Pin<&mut Conn>| {
        calls.set(calls.get() + 1);
        conn.get_mut().closing = true;
    };
    let mut watched = pin!(watch(Conn { closing: false }, shut, &shutdown, &group, "c").unwrap());
    let waker = FlagWaker::new();
    assert!(waker.poll(watched.as_mut()).is_pending());
    assert!(waker.poll(watched.as_mut()).is_pending());
    assert_eq!((calls.get(), group.len()), (0, 1));

    shutdown.trigger();
    assert!(
        waker.take_woken(),
        "the trigger wakes the connection's task"
    );
    assert_eq!(waker.poll(watched.as_mut()), Poll::Ready("closed"));
    assert_eq!((calls.get(), group.len()), (1, 0));
}

#[test]
fn already_triggered_the_first_poll_calls_graceful_shutdown() {
    let shutdown = Shutdown::new();
    shutdown.trigger();
    let group = Group::new();
    let shut = |conn: Pin<&mut Conn>| conn.get_mut().closing = true;
    let watched = watch(Conn { closing: false }, shut, &shutdown, &group, "c").unwrap();
    assert_eq!(group.len(), 1, "counted before the first poll");
    assert_eq!(common::run_bounded(watched), "closed");
    assert!(group.is_empty());
}

#[test]
fn a_panicking_graceful_shutdown_is_not_called_again_and_the_guard_goes_with_the_future() {
    let shutdown = Shutdown::new();
    let group = Group::new();
    let calls = Cell::new(0);
    let shut = |_: Pin<&mut Conn>| {
        calls.set(calls.get() + 1);
        panic!("graceful_shutdown panicked");
    };
    let mut watched =
        Box::pin(watch(Conn { closing: false }, shut, &shutdown, &group, "c").unwrap());
    shutdown.trigger();
    let waker = FlagWaker::new();
    let polled = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        waker.poll(watched.as_mut())
    }));
    assert!(polled.is_err());
    assert!(waker.poll(watched.as_mut()).is_pending());
    assert_eq!((calls.get(), group.len()), (1, 1));
    drop(watched);
    assert!(group.is_empty());
}

#[test]
fn dropping_the_future_releases_its_guard() {
    let shutdown = Shutdown::new();
    let group = Group::new();
    let watched = watch(Conn { closing: false }, |_| {}, &shutdown, &group, "c").unwrap();
    assert_eq!(group.stragglers().names(), ["c"]);
    drop(watched);
    assert!(group.is_empty());
    assert!(watch(Conn { closing: false }, |_| {}, &shutdown, &group, "late").is_ok());
}
