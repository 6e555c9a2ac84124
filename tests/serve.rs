//! `serve::Connection`: an idle connection ends at the trigger, a request in
//! progress finishes; the connection counts in its group by name. Real
//! sockets (a Unix socket pair), driven with `poll_once` and a flag waker.
#![cfg(all(unix, feature = "smol"))]

mod common;

use std::pin::pin;

use futures_lite::future::poll_once;
use futures_lite::{AsyncReadExt, AsyncWriteExt};
use smol::net::unix::UnixStream;
use smol_graceful::serve::Connection;
use smol_graceful::{Closed, Group, Shutdown};

use common::run_bounded;
use common::waker::FlagWaker;

fn pair(group: &Group, shutdown: &Shutdown) -> (Connection<UnixStream>, UnixStream) {
    let (server, client) = UnixStream::pair().unwrap();
    (
        Connection::new(server, group, shutdown, "connection A").unwrap(),
        client,
    )
}

#[test]
fn an_idle_connection_waiting_to_read_is_woken_by_the_trigger_and_reads_end_of_stream() {
    let (group, shutdown) = (Group::new(), Shutdown::new());
    let (mut conn, _client) = pair(&group, &shutdown);
    let mut buf = [0; 16];
    let waker = FlagWaker::new();
    {
        let mut read = pin!(conn.read(&mut buf));
        assert!(waker.poll(read.as_mut()).is_pending());
        shutdown.trigger();
        assert!(waker.take_woken(), "the trigger must wake an idle read");
        assert_eq!(run_bounded(read).unwrap(), 0);
    }
    assert!(conn.closing());
}

#[test]
fn a_request_in_progress_is_served_then_the_next_read_ends() {
    let (group, shutdown) = (Group::new(), Shutdown::new());
    let (mut conn, mut client) = pair(&group, &shutdown);
    run_bounded(async {
        client.write_all(b"GET").await.unwrap();
        let mut buf = [0; 3];
        conn.read_exact(&mut buf).await.unwrap(); // busy from here
        shutdown.trigger();
        assert!(conn.closing());
        // The rest of the request is still read...
        client.write_all(b" /\n").await.unwrap();
        let mut rest = [0; 3];
        conn.read_exact(&mut rest).await.unwrap();
        assert_eq!(&rest, b" /\n");
        // ...and answered; then the connection reads end of stream.
        conn.write_all(b"200 close\n").await.unwrap();
        let mut answer = [0; 10];
        client.read_exact(&mut answer).await.unwrap();
        assert_eq!(&answer, b"200 close\n");
        assert_eq!(conn.read(&mut rest).await.unwrap(), 0);
    });
}

#[test]
fn a_request_not_started_at_the_trigger_is_not_started() {
    let (group, shutdown) = (Group::new(), Shutdown::new());
    let (mut conn, mut client) = pair(&group, &shutdown);
    run_bounded(async {
        // One request answered: the connection is idle again.
        client.write_all(b"one\n").await.unwrap();
        let mut buf = [0; 4];
        conn.read_exact(&mut buf).await.unwrap();
        conn.write_all(b"ok\n").await.unwrap();
        assert!(
            poll_once(conn.read(&mut buf)).await.is_none(),
            "idle: waits"
        );
        // The next request arrives as the shutdown triggers: not started.
        client.write_all(b"two\n").await.unwrap();
        shutdown.trigger();
        assert_eq!(conn.read(&mut buf).await.unwrap(), 0);
    });
}

#[test]
fn a_connection_counts_by_name_until_it_and_its_clones_are_dropped() {
    let (group, shutdown) = (Group::new(), Shutdown::new());
    let (conn, _client) = pair(&group, &shutdown);
    let clone = conn.clone();
    assert_eq!(group.stragglers().names(), ["connection A"]);
    drop(conn);
    assert_eq!(group.len(), 1);
    drop(clone);
    assert!(group.is_empty());
    group.close();
    let (server, _client) = UnixStream::pair().unwrap();
    assert_eq!(
        Connection::new(server, &group, &shutdown, "late").unwrap_err(),
        Closed
    );
}

#[test]
fn a_half_closed_client_is_answered_then_the_connection_ends() {
    let (group, shutdown) = (Group::new(), Shutdown::new());
    let (mut conn, mut client) = pair(&group, &shutdown);
    run_bounded(async {
        client.write_all(b"PING\n").await.unwrap();
        client.shutdown(std::net::Shutdown::Write).unwrap();
        let mut request = [0; 5];
        conn.read_exact(&mut request).await.unwrap();
        conn.write_all(b"PONG\n").await.unwrap();
        let mut answer = String::new();
        assert_eq!(
            conn.read(&mut request).await.unwrap(),
            0,
            "the client's end"
        );
        drop(conn);
        client.read_to_string(&mut answer).await.unwrap();
        assert_eq!(answer, "PONG\n");
    });
    assert!(group.is_empty());
}

/// A handler that reads after it has written (an HTTP body after `100
/// Continue`) holds `busy`: the wait for the body is not taken for idle.
#[test]
fn a_request_held_busy_reads_its_body_after_an_interim_answer() {
    let (group, shutdown) = (Group::new(), Shutdown::new());
    let (mut conn, mut client) = pair(&group, &shutdown);
    run_bounded(async {
        client.write_all(b"POST\n").await.unwrap();
        let mut head = [0; 5];
        conn.read_exact(&mut head).await.unwrap();
        let busy = conn.busy();
        conn.write_all(b"100 continue\n").await.unwrap();
        let mut body = [0; 5];
        let mut read = pin!(conn.read_exact(&mut body));
        assert!(
            poll_once(read.as_mut()).await.is_none(),
            "waits for the body"
        );
        shutdown.trigger();
        client.write_all(b"body\n").await.unwrap();
        read.await.unwrap();
        assert_eq!(&body, b"body\n");
        conn.write_all(b"200 close\n").await.unwrap();
        drop(busy);
        assert_eq!(conn.read(&mut body).await.unwrap(), 0, "then it ends");
    });
}
