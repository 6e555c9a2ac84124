//! Restarts that lose nothing: `examples/http_server.rs` under socket activation.
//!
//! The test plays the service manager (systemd with a `.socket` unit, or `systemfd`): it
//! owns the listening socket and starts each instance of the example with it as fd 3
//! (`LISTEN_FDS=1`, `LISTEN_PID` = the instance's pid). An instance stops accepting and
//! closes only its own descriptor at shutdown, so the socket never stops listening:
//! connections that arrive between two instances wait in the kernel's queue for the
//! next one.
//!
//! [`restarts_under_load_lose_no_request`] restarts the server five times, a SIGTERM a
//! second, under eight clients that never pause, and counts every request. It reports
//! what it measured on stderr (uncaptured, so `cargo test` shows it). The other tests
//! check the example's side of the contract one piece at a time.
//!
//! Loopback only; every wait is bounded, the load is bounded in time and count, and a
//! `Server` kills its child when dropped.

#![cfg(all(unix, feature = "smol", feature = "signal"))]

mod common;

use std::fs::File;
use std::io::{self, Write};
use std::net::{TcpListener, TcpStream, UdpSocket};
use std::process::{Command, ExitStatus};
use std::thread;
use std::time::{Duration, Instant};

use common::http::{activated_command, example_binary, in_flight, with_fd_3, Client, Server, STEP};
use common::load::{ms, percentile, Load, CLOSING_CLIENTS, KEEP_ALIVE_CLIENTS};
use common::subprocess::Process;

/// An address the example cannot bind (TEST-NET-1, on no interface here): given as its
/// argument, it shows that a socket-activated instance does not bind its argument.
const UNBINDABLE: &str = "192.0.2.1:80";

/// Starts the example on `listener`, as a service manager does, and waits for it to say
/// it listens; checks that it names the socket's own address.
fn start_activated(listener: &TcpListener) -> Server {
    let server = Server::start_command(&mut activated_command(
        &example_binary(),
        listener,
        &[UNBINDABLE],
    ));
    assert_eq!(server.addr, listener.local_addr().expect("local_addr"));
    server
}

/// Accepts one connection on `listener` (which an instance made non-blocking: the flag
/// belongs to the socket, shared with every process that holds it), within [`STEP`].
fn accept_within(listener: &TcpListener) -> io::Result<TcpStream> {
    listener.set_nonblocking(true)?;
    let deadline = Instant::now() + STEP;
    loop {
        match listener.accept() {
            Ok((stream, _)) => return Ok(stream),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock && Instant::now() < deadline => {
                // The handshake is done by the kernel; accept sees it a moment later.
                thread::sleep(Duration::from_millis(1));
            }
            Err(e) => return Err(e),
        }
    }
}

#[test]
fn an_inherited_socket_is_served_drained_and_left_listening_for_the_next_instance() {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("local_addr");

    // The whole contract on the inherited socket: served, idle keep-alive connections
    // closed at once at SIGTERM, a request in flight finished with `Connection: close`.
    let server = start_activated(&listener);
    let mut idle = server.connect();
    assert_eq!(idle.get("/").status, 200);
    let mut slow = in_flight(&server, "/slow?ms=500");
    server.signal("TERM");
    idle.assert_eof();
    let response = slow.receive().expect("the in-flight request is answered");
    assert_eq!(response.status, 200, "{response:?}");
    assert_eq!(response.header("connection"), Some("close"), "{response:?}");
    slow.assert_eof();
    server.expect_line("drained");
    let (status, _, stderr) = server.finish(STEP);
    assert_eq!(status.code(), Some(0), "stderr: {stderr}");
    assert!(stderr.contains("LISTEN_FDS"), "stderr: {stderr}");

    // No instance runs: the socket still listens (an instance that called `shutdown(2)`
    // on it would have stopped that), and a request sent now waits in its queue...
    let mut queued = Client::connect(addr).expect("connect while no instance runs");
    queued.send("/slow?ms=1").expect("send");
    // ...until the next instance answers it.
    let server = start_activated(&listener);
    let response = queued.receive().expect("the queued request is answered");
    assert_eq!(response.status, 200, "{response:?}");
    assert_eq!(response.body, "slept 1 ms\n");
    server.signal("TERM");
    let (status, _, stderr) = server.finish(STEP);
    assert_eq!(status.code(), Some(0), "stderr: {stderr}");

    // And after that one too: the manager can still accept on it.
    let _late = Client::connect(addr).expect("connect after the last instance");
    accept_within(&listener).expect("the socket still listens in the manager");
}

#[test]
fn a_listen_pid_naming_another_process_leaves_fd_3_alone_and_binds_the_address() {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let mut command = Command::new(example_binary());
    command
        .arg("127.0.0.1:0")
        .env("LISTEN_FDS", "1")
        .env("LISTEN_PID", "1") // systemd's, not ours
        .env_remove("GRACE_MS")
        .env_remove("DRAIN_DELAY_MS")
        .env_remove("HEADER_TIMEOUT_MS");
    with_fd_3(
        &mut command,
        std::os::unix::io::AsRawFd::as_raw_fd(&listener),
    );
    let server = Server::start_command(&mut command);
    assert_ne!(server.addr, listener.local_addr().expect("local_addr"));
    assert_eq!(server.connect().get("/").status, 200);
    server.signal("TERM");
    let (status, _, stderr) = server.finish(STEP);
    assert_eq!(status.code(), Some(0), "stderr: {stderr}");
}

#[test]
fn a_listen_fds_that_is_not_a_tcp_socket_exits_2_with_a_message() {
    let udp = UdpSocket::bind("127.0.0.1:0").expect("bind a UDP socket");
    let file = File::open("/dev/null").expect("open /dev/null");
    let fds: [(&str, &dyn std::os::unix::io::AsRawFd); 2] =
        [("a UDP socket", &udp), ("a file", &file)];
    for (what, fd) in fds {
        let mut command = Command::new("sh");
        command
            .arg("-c")
            .arg(r#"LISTEN_PID=$$ exec "$0" "$@""#)
            .arg(example_binary())
            .arg("127.0.0.1:0")
            .env("LISTEN_FDS", "1");
        with_fd_3(&mut command, fd.as_raw_fd());
        let mut child = Process::spawn(&mut command, STEP);
        let status = child.wait_exit(STEP);
        let stderr = child.stderr();
        assert_eq!(status.code(), Some(2), "{what}: stderr: {stderr}");
        assert!(stderr.contains("LISTEN_FDS"), "{what}: stderr: {stderr}");
    }
}

// ---------------------------------------------------------------------------------
// Restarts under load.

/// How many times the server is restarted, and how long each instance serves first.
const RESTARTS: usize = 5;
const LIFETIME: Duration = Duration::from_secs(1);

/// One restart: from the SIGTERM to the old instance's exit, and from there to the new
/// instance's `listening` line. New connections wait in the queue for the sum.
struct Gap {
    stopping: Duration,
    starting: Duration,
}

#[test]
fn restarts_under_load_lose_no_request() {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("local_addr");
    let mut server = start_activated(&listener);
    let mut started = Instant::now();

    let load = Load::start(addr);

    let mut exits: Vec<(ExitStatus, String)> = Vec::new();
    let mut gaps = Vec::new();
    for _ in 0..RESTARTS {
        // Pacing the restarts, not waiting for a result.
        thread::sleep(LIFETIME.saturating_sub(started.elapsed()));
        let signalled = Instant::now();
        server.signal("TERM");
        let (status, _, stderr) = server.finish(STEP);
        let exited = Instant::now();
        exits.push((status, stderr));
        server = start_activated(&listener);
        started = Instant::now();
        gaps.push(Gap {
            stopping: exited - signalled,
            starting: started - exited,
        });
    }
    thread::sleep(LIFETIME.saturating_sub(started.elapsed()));
    let tallies = load.stop();
    server.signal("TERM");
    let (status, _, stderr) = server.finish(STEP);
    exits.push((status, stderr));

    let served: usize = tallies.iter().map(|t| t.served).sum();
    let retries: usize = tallies.iter().map(|t| t.retries).sum();
    let lost: Vec<&String> = tallies.iter().flat_map(|t| &t.lost).collect();
    let mut latencies: Vec<Duration> = tallies
        .iter()
        .flat_map(|t| t.latencies.iter().map(|&(_, latency)| latency))
        .collect();
    latencies.sort_unstable();
    let gap_text: Vec<String> = gaps
        .iter()
        .map(|g| {
            format!(
                "{} ({} + {})",
                ms(g.stopping + g.starting),
                ms(g.stopping),
                ms(g.starting)
            )
        })
        .collect();
    let max_gap = gaps
        .iter()
        .map(|g| g.stopping + g.starting)
        .max()
        .unwrap_or_default();
    let report = format!(
        "restart test: {} instances, {RESTARTS} restarts (SIGTERM every {LIFETIME:?}), \
         {CLOSING_CLIENTS} Connection: close + {KEEP_ALIVE_CLIENTS} keep-alive clients\n\
         restart test: {served} requests served, {} lost, {retries} retried on a new connection\n\
         restart test: restart gaps, SIGTERM to the next instance listening (old exits + new starts): {}; max {}\n\
         restart test: client latency p50 {}, p99 {}, max {}\n",
        exits.len(),
        lost.len(),
        gap_text.join(", "),
        ms(max_gap),
        ms(percentile(&latencies, 50.0)),
        ms(percentile(&latencies, 99.0)),
        ms(latencies.last().copied().unwrap_or_default()),
    );
    // Straight to the process's stderr, past the test harness's capture: the numbers
    // are the point of the test.
    let _ = io::stderr().write_all(report.as_bytes());

    for (n, (status, stderr)) in exits.iter().enumerate() {
        assert_eq!(
            status.code(),
            Some(0),
            "instance {n}: {status}; stderr: {stderr}"
        );
    }
    assert!(lost.is_empty(), "{} lost: {lost:#?}\n{report}", lost.len());
    for (client, tally) in tallies.iter().enumerate() {
        assert!(tally.served > 0, "client {client} served nothing\n{report}");
    }
}
