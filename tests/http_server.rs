//! Subprocess tests of `examples/http_server.rs`: run the built example, talk HTTP to it
//! over real sockets, send it real signals with `kill`, and check what it answers, prints
//! and exits with.
//!
//! Every wait is bounded (socket read timeouts, `recv_timeout`, a `try_wait` loop), and a
//! `Server` kills its child when dropped, so a hang fails fast and leaves no process.
//! Nothing sleeps and then asserts: the tests wait for the lines the server prints, or
//! for an answer that proves the server has a connection, before they signal it.

#![cfg(all(unix, feature = "smol", feature = "signal"))]

mod common;

use std::io;
use std::net::TcpListener;
use std::time::{Duration, Instant};

use common::http::{example_command, in_flight, Client, Server, STEP};
use common::subprocess::Process;

/// Waits (up to [`STEP`]) for `server` to exit, checks that it did within `limit` of
/// `signalled` and with exit code `code`, and returns its stderr.
fn assert_exits_soon(server: Server, signalled: Instant, limit: Duration, code: i32) -> String {
    let (status, _, stderr) = server.finish(STEP);
    assert!(signalled.elapsed() < limit, "{:?}", signalled.elapsed());
    assert_eq!(status.code(), Some(code), "stderr: {stderr}");
    stderr
}

#[test]
fn sigterm_drains_in_flight_requests_refuses_new_ones_and_exits_0() {
    let server = Server::start(None);
    let mut clients: Vec<Client> = (0..20)
        .map(|_| in_flight(&server, "/slow?ms=1500"))
        .collect();
    server.signal("TERM");
    let line = server.expect_line("shutdown:");
    assert!(line.contains("SIGTERM"), "{line}");
    assert!(line.contains("draining 20 connection(s)"), "{line}");

    // The listener is closed before the shutdown line is printed.
    match Client::connect(server.addr) {
        Err(e) => assert_eq!(e.kind(), io::ErrorKind::ConnectionRefused, "{e}"),
        Ok(mut late) => {
            // Connected to the kernel's backlog just before the listener closed.
            let _ = late.send("/");
            late.assert_closed_by_server();
        }
    }

    for client in &mut clients {
        let response = client.receive().expect("the in-flight request is answered");
        assert_eq!(response.status, 200, "{response:?}");
        assert_eq!(response.body, "slept 1500 ms\n");
        assert_eq!(response.header("connection"), Some("close"), "{response:?}");
        client.assert_closed_by_server();
    }
    server.expect_line("drained");
    let (status, _, stderr) = server.finish(STEP);
    assert_eq!(status.code(), Some(0), "stderr: {stderr}");
}

#[test]
fn stragglers_past_the_grace_period_are_named_and_exit_1() {
    let server = Server::start(Some(400));
    let clients: Vec<Client> = (0..2)
        .map(|_| in_flight(&server, "/slow?ms=20000"))
        .collect();
    server.signal("TERM");
    let signalled = Instant::now();
    let stderr = assert_exits_soon(server, signalled, Duration::from_secs(5), 1);
    assert!(stderr.contains("connection 127.0.0.1:"), "stderr: {stderr}");
    for client in &clients {
        let name = format!("connection {}", client.local_addr());
        assert!(stderr.contains(&name), "{name} not in stderr: {stderr}");
    }
}

#[test]
fn a_second_sigint_exits_at_once_with_130() {
    let server = Server::start(None);
    let _client = in_flight(&server, "/slow?ms=20000");
    server.signal("INT");
    let line = server.expect_line("shutdown:");
    assert!(line.contains("SIGINT"), "{line}");
    server.signal("INT");
    let signalled = Instant::now();
    assert_exits_soon(server, signalled, Duration::from_secs(3), 130);
}

#[test]
fn an_idle_server_exits_0_at_once_on_sigterm() {
    let server = Server::start(None);
    server.signal("TERM");
    let signalled = Instant::now();
    server.expect_line("shutdown: signal SIGTERM; draining 0 connection(s)");
    server.expect_line("drained");
    assert_exits_soon(server, signalled, Duration::from_secs(3), 0);
}

#[test]
fn an_idle_keep_alive_connection_is_closed_at_once_on_sigterm() {
    let server = Server::start(None);
    let mut client = server.connect();
    assert_eq!(client.get("/").header("connection"), Some("keep-alive"));
    server.signal("TERM");
    let signalled = Instant::now();
    client.assert_closed_by_server();
    server.expect_line("drained");
    assert_exits_soon(server, signalled, Duration::from_secs(3), 0);
}

#[test]
fn bad_requests_get_400_and_keep_alive_serves_several_requests() {
    let server = Server::start(None);
    let mut client = server.connect();
    assert_eq!(client.get("/slow").status, 400);
    assert_eq!(client.get("/slow?ms=abc").status, 400);
    let unknown = client.get("/no/such/path");
    assert_eq!(unknown.status, 200);
    assert_eq!(unknown.header("connection"), Some("keep-alive"));
    assert_eq!(client.get("/slow?ms=1").status, 200);

    // A malformed request is answered 400, and the connection closed.
    let mut garbage = server.connect();
    garbage.send_raw("garbage\r\n\r\n").expect("send");
    let response = garbage.receive().expect("a 400 response");
    assert_eq!(response.status, 400);
    assert_eq!(response.header("connection"), Some("close"));
    garbage.assert_closed_by_server();

    server.signal("TERM");
    let (status, _, stderr) = server.finish(STEP);
    assert_eq!(status.code(), Some(0), "stderr: {stderr}");
}

#[test]
fn a_bind_failure_exits_2_with_a_message() {
    let taken = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = taken.local_addr().expect("local_addr").to_string();
    let mut child = Process::spawn(&mut example_command(&addr, None), STEP);
    let status = child.wait_exit(STEP);
    let stderr = child.stderr();
    assert_eq!(status.code(), Some(2), "stderr: {stderr}");
    assert!(stderr.contains(&addr), "stderr: {stderr}");
}
