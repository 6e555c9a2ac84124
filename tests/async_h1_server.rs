//! Subprocess tests of `examples/async_h1_server.rs` (async-h1 drained by
//! `serve::Connection`): run the built example, talk HTTP to it over real sockets, send it
//! real signals with `kill`, and check what it answers and exits with.
//!
//! Every wait is bounded (socket read timeouts, `recv_timeout`, a `try_wait` loop), and
//! nothing sleeps and then asserts: before signalling, a test waits for proof that the
//! server has its request (an answer on the same connection, or the kernel's word that
//! the server has read the bytes).

#![cfg(all(unix, feature = "smol", feature = "signal"))]

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::http::{in_flight, Client, Server, STEP};
use common::subprocess::Examples;

static EXAMPLES: Examples = Examples::new(&["async_h1_server"]);

/// The example on a free port, with `GRACE_MS` set to `grace_ms` (or unset).
fn start(grace_ms: Option<u64>) -> Server {
    let mut command = Command::new(EXAMPLES.binary("async_h1_server"));
    command.arg("127.0.0.1:0").env_remove("GRACE_MS");
    if let Some(ms) = grace_ms {
        command.env("GRACE_MS", ms.to_string());
    }
    Server::start_command(&mut command)
}

/// A client with `/slow?ms=MS` in flight: the server has read the request (so it is in
/// progress, not "not yet started"), and not answered it. Returns when it was sent.
fn slow_in_flight(server: &Server, ms: u64) -> (Client, Instant) {
    let sent = Instant::now();
    let client = in_flight(server, &format!("/slow?ms={ms}"));
    wait_until_read(server, &client);
    (client, sent)
}

/// Waits (bounded) until the server has read all that `client` sent: the kernel has
/// acknowledged every byte to the client, and the server's end of the connection has
/// nothing left to read (`tx_queue` and `rx_queue` in `/proc/net/tcp`).
#[cfg(target_os = "linux")]
fn wait_until_read(server: &Server, client: &Client) {
    // `/proc/net/tcp` prints an IPv4 address as its 32 bits in host order, in hex.
    let hex = |addr: std::net::SocketAddr| match addr {
        std::net::SocketAddr::V4(v4) => {
            let ip = u32::from_ne_bytes(v4.ip().octets());
            format!("{ip:08X}:{:04X}", v4.port())
        }
        std::net::SocketAddr::V6(_) => unreachable!("the server listens on 127.0.0.1"),
    };
    let (server_end, client_end) = (hex(server.addr), hex(client.local_addr()));
    // The `TX:RX` queue lengths (in hex) of the socket from `local` to `remote`.
    let queues = |table: &str, local: &str, remote: &str| {
        let mut rows = table
            .lines()
            .map(|line| line.split_whitespace().collect::<Vec<_>>());
        let row = rows.find(|row| row.len() > 4 && row[1] == local && row[2] == remote)?;
        let (tx, rx) = row[4].split_once(':')?;
        let number = |hex| u64::from_str_radix(hex, 16).ok();
        Some((number(tx)?, number(rx)?))
    };
    let deadline = Instant::now() + STEP;
    loop {
        let table = std::fs::read_to_string("/proc/net/tcp").expect("read /proc/net/tcp");
        let acked = queues(&table, &client_end, &server_end).is_some_and(|(tx, _)| tx == 0);
        let read = queues(&table, &server_end, &client_end).is_some_and(|(_, rx)| rx == 0);
        if acked && read {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the server did not read the request"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// Elsewhere there is no such proof: the request was written before the signal, which
/// is what the hyper example's tests rely on too.
#[cfg(not(target_os = "linux"))]
fn wait_until_read(_: &Server, _: &Client) {}

#[test]
fn sigterm_closes_an_idle_connection_at_once_and_answers_the_request_in_flight_with_close() {
    let server = start(None);
    let mut idle = server.connect();
    let response = idle.get("/");
    assert_eq!(response.status, 200);
    assert_eq!(response.body, "hello\n");
    // Kept alive: HTTP/1.1's default.
    assert_ne!(response.header("connection"), Some("close"), "{response:?}");
    let (mut slow, sent) = slow_in_flight(&server, 1500);

    server.signal("TERM");
    // The idle connection ends (a FIN, no answer) long before the slow request can be
    // answered, which is 1500 ms after it was sent at the earliest.
    idle.assert_eof();
    let closed = sent.elapsed();
    assert!(closed < Duration::from_millis(1000), "{closed:?}");

    let response = slow.receive().expect("the request in flight is answered");
    assert_eq!(response.status, 200, "{response:?}");
    assert_eq!(response.body, "slept 1500 ms\n");
    assert_eq!(response.header("connection"), Some("close"), "{response:?}");
    slow.assert_eof();

    let (status, _, stderr) = server.finish(STEP);
    assert_eq!(status.code(), Some(0), "stderr: {stderr}");
}

#[test]
fn a_request_past_the_grace_period_is_named_and_the_exit_is_1() {
    let server = start(Some(200));
    let (client, _) = slow_in_flight(&server, 10_000);
    server.signal("TERM");
    let signalled = Instant::now();
    let (status, _, stderr) = server.finish(STEP);
    let waited = signalled.elapsed();
    assert_eq!(status.code(), Some(1), "stderr: {stderr}");
    // The grace (200 ms), not the request (10 s), bounded the drain.
    assert!(waited < Duration::from_secs(5), "{waited:?}");
    let name = format!("connection {}", client.local_addr());
    assert!(stderr.contains(&name), "{name} not in stderr: {stderr}");
}
