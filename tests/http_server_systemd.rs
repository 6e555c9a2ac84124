//! `examples/http_server.rs` built with `--features systemd`, run as systemd runs a
//! `Type=notify` service: its `NOTIFY_SOCKET` names a Unix datagram socket that the test
//! reads, and the test checks the messages, exactly and in order, across a SIGTERM drain.
//!
//! The test binary itself needs no `systemd` feature: it builds the example with it (see
//! `common::http`). Every wait is bounded, and a child still running when a check fails
//! is killed.

#![cfg(all(unix, feature = "smol", feature = "signal"))]

mod common;

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::Command;

use common::http::{activated_command, example_binary_with_features, in_flight, Server, STEP};
use common::notify::Manager;

fn binary() -> PathBuf {
    example_binary_with_features("systemd")
}

/// The example on a free port, notifying `notify_socket`.
fn command(notify_socket: &std::path::Path) -> Command {
    let mut command = Command::new(binary());
    command
        .arg("127.0.0.1:0")
        .env("NOTIFY_SOCKET", notify_socket)
        .env_remove("GRACE_MS")
        .env_remove("HEADER_TIMEOUT_MS")
        .env_remove("DRAIN_DELAY_MS")
        .env_remove("WATCHDOG_USEC")
        .env_remove("WATCHDOG_PID")
        .env_remove("LISTEN_FDS")
        .env_remove("LISTEN_PID");
    command
}

/// What the example asks for while it drains: 10 s more, every 5 s.
const EXTENSION: &str = "EXTEND_TIMEOUT_USEC=10000000";

#[test]
fn ready_when_listening_then_stopping_and_extensions_across_a_sigterm_drain_in_order() {
    let manager = Manager::bind("http-drain");
    // A drain delay and a request in flight: the extension covers both.
    let server = Server::start_command(command(&manager.path).env("DRAIN_DELAY_MS", "300"));
    manager.expect("READY=1");
    let mut client = in_flight(&server, "/slow?ms=800");
    // Nothing else while it serves (no watchdog asked for).
    assert_eq!(manager.queued(), Vec::<String>::new());

    server.signal("TERM");
    manager.expect("STOPPING=1");
    manager.expect(EXTENSION);
    server.expect_line("signal SIGTERM: serving 300 ms more");
    server.expect_line("shutdown:");
    let response = client.receive().expect("the in-flight request is answered");
    assert_eq!(response.status, 200, "{response:?}");
    server.expect_line("drained");
    let (status, _, stderr) = server.finish(STEP);
    assert_eq!(status.code(), Some(0), "stderr: {stderr}");
    // The drain took about 1 s: one extension, and nothing after it.
    assert_eq!(manager.queued(), Vec::<String>::new());
    assert!(!stderr.contains("WARN"), "stderr: {stderr}");
}

#[test]
fn an_idle_server_sends_stopping_and_at_most_one_extension() {
    let manager = Manager::bind("http-idle");
    let server = Server::start_command(&mut command(&manager.path));
    manager.expect("READY=1");
    server.signal("TERM");
    manager.expect("STOPPING=1");
    let (status, _, stderr) = server.finish(STEP);
    assert_eq!(status.code(), Some(0), "stderr: {stderr}");
    // The first extension goes out as soon as the stop has to wait (for the acceptor
    // to let go of the listener); the next would be 5 s later.
    let rest = manager.queued();
    assert!(
        rest.len() <= 1 && rest.iter().all(|m| m == EXTENSION),
        "{rest:#?}"
    );
}

#[test]
fn a_notify_socket_nobody_listens_on_is_logged_and_the_server_serves_and_drains() {
    let missing = std::env::temp_dir().join(format!("nobody-http-{}.sock", std::process::id()));
    let server = Server::start_command(command(&missing).env("DRAIN_DELAY_MS", "100"));
    let mut client = in_flight(&server, "/slow?ms=300");
    server.signal("TERM");
    let response = client.receive().expect("the in-flight request is answered");
    assert_eq!(response.status, 200, "{response:?}");
    server.expect_line("drained");
    let (status, _, stderr) = server.finish(STEP);
    assert_eq!(status.code(), Some(0), "stderr: {stderr}");
    for message in ["READY=1", "STOPPING=1", "EXTEND_TIMEOUT_USEC"] {
        assert!(
            stderr.contains(message) && stderr.contains("WARN"),
            "{message} not warned about: {stderr}"
        );
    }
}

#[test]
fn socket_activated_with_a_watchdog_it_pings_after_ready_and_drains() {
    // A `.socket` unit with a `Type=notify`, `WatchdogSec=` service. (No WATCHDOG_PID:
    // the watchdog is then meant for whoever reads WATCHDOG_USEC.)
    let manager = Manager::bind("http-watchdog");
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let mut command = activated_command(&binary(), &listener, &["192.0.2.1:80"]);
    command
        .env("NOTIFY_SOCKET", &manager.path)
        .env("WATCHDOG_USEC", "200000")
        .env_remove("WATCHDOG_PID");
    let server = Server::start_command(&mut command);
    assert_eq!(server.addr, listener.local_addr().expect("local_addr"));
    manager.expect("READY=1");
    for _ in 0..3 {
        manager.expect("WATCHDOG=1");
    }
    assert_eq!(server.connect().get("/").status, 200);
    server.signal("TERM");
    // The pings go on until the exit; STOPPING=1 comes among them, then at most the
    // one extension that starts the (instant) drain.
    loop {
        match manager.receive_within(STEP) {
            Some((message, _)) if message == "STOPPING=1" => break,
            Some((message, _)) => assert_eq!(message, "WATCHDOG=1"),
            None => panic!("no STOPPING=1 within {STEP:?}"),
        }
    }
    let (status, _, stderr) = server.finish(STEP);
    assert_eq!(status.code(), Some(0), "stderr: {stderr}");
    let after = manager.queued();
    let extensions = after
        .iter()
        .filter(|m| m.starts_with("EXTEND_TIMEOUT_USEC="))
        .count();
    assert!(extensions <= 1, "{after:#?}");
    assert!(
        after
            .iter()
            .all(|m| m == "WATCHDOG=1" || m == "EXTEND_TIMEOUT_USEC=10000000"),
        "{after:#?}"
    );
}

/// A drain you can watch: two 3.5 s requests in flight at the signal; the log
/// says what is left once a second, naming a connection by its peer address, and
/// systemd gets the same line as `STATUS=` (what `systemctl status` shows).
#[test]
fn a_long_drain_reports_its_progress_in_the_log_and_to_systemd() {
    let manager = Manager::bind("http-progress");
    let server = Server::start_command(&mut command(&manager.path));
    manager.expect("READY=1");
    let mut clients = [
        in_flight(&server, "/slow?ms=3500"),
        in_flight(&server, "/slow?ms=3500"),
    ];
    let peers: Vec<String> = clients
        .iter()
        .map(|c| format!("connection {}", c.local_addr()))
        .collect();
    server.signal("TERM");
    manager.expect("STOPPING=1");
    for client in &mut clients {
        let response = client.receive().expect("the in-flight request is answered");
        assert_eq!(response.status, 200, "{response:?}");
    }
    let (status, _, stderr) = server.finish(STEP);
    assert_eq!(status.code(), Some(0), "stderr: {stderr}");
    assert!(
        stderr.contains("shutting down: 2 left, oldest"),
        "the drain's first line says what was running (both requests are busy): {stderr}"
    );
    let progress: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains("draining: 2 left"))
        .collect();
    assert!(
        progress.len() >= 2,
        "fewer than two progress lines: {stderr}"
    );
    assert!(
        progress
            .iter()
            .any(|l| peers.iter().any(|p| l.contains(p.as_str()))),
        "no progress line names a connection by its peer {peers:?}: {stderr}"
    );
    let statuses: Vec<String> = manager
        .queued()
        .into_iter()
        .filter(|m| m.starts_with("STATUS=draining: 2 left"))
        .collect();
    assert!(!statuses.is_empty(), "no STATUS= while draining");
    assert!(
        statuses
            .iter()
            .any(|s| peers.iter().any(|p| s.contains(p.as_str()))),
        "{statuses:#?}"
    );
}
