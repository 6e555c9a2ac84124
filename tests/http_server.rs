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

use std::io::{self, Write as _};
use std::net::TcpListener;
use std::os::unix::process::ExitStatusExt as _;
use std::process::Command;
use std::time::{Duration, Instant};

use common::http::{example_binary, example_command, in_flight, Client, Server, STEP};
use common::subprocess::{broken_pipe, dev_full, Process};

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
    // Grace, then force: the connections still open are dropped, and gone, before
    // the exit.
    server.expect_line("grace period over");
    server.expect_line("closed the 2 connection(s) still open");
    let stderr = assert_exits_soon(server, signalled, Duration::from_secs(5), 1);
    assert!(stderr.contains("connection 127.0.0.1:"), "stderr: {stderr}");
    assert!(!stderr.contains("still open after"), "stderr: {stderr}");
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
    // HTTP/1.1 keeps the connection alive unless a side says `Connection: close`.
    assert_eq!(client.get("/").header("connection"), None);
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
    // Kept alive: HTTP/1.1's default, which hyper does not repeat in a header.
    assert_eq!(unknown.header("connection"), None);
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

// A client that shuts down its write side once its request is sent (`shutdown(SHUT_WR)`,
// as `nc -N` and some scripts do) gets its answer, then the connection closes: the
// example turns on hyper's `half_close`, whose default (off) drops such a request
// unanswered.
#[test]
fn a_request_whose_client_shut_down_its_write_side_is_answered_then_closed() {
    let server = Server::start(None);
    for (path, body) in [("/", "hello\n"), ("/slow?ms=300", "slept 300 ms\n")] {
        let mut client = server.connect();
        client
            .send_raw(&format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n"))
            .expect("send");
        client
            .writer()
            .shutdown(std::net::Shutdown::Write)
            .expect("shut down the write side");
        // Every read is bounded by the client's read timeout.
        let response = client
            .receive()
            .unwrap_or_else(|e| panic!("GET {path} after shutting down the write side: {e}"));
        assert_eq!(response.status, 200, "GET {path}: {response:?}");
        assert_eq!(response.body, body, "GET {path}");
        client.assert_eof();
    }

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

/// The server on a free port with `HEADER_TIMEOUT_MS=300`.
fn start_with_header_timeout_300ms() -> Server {
    Server::start_command(example_command("127.0.0.1:0", None).env("HEADER_TIMEOUT_MS", "300"))
}

// hyper's `header_read_timeout` closes the connection without an answer: it sends no
// `408` (its automatic responses are for parse errors only).
#[test]
fn a_stalled_half_sent_head_is_closed_at_the_head_timeout() {
    let server = start_with_header_timeout_300ms();
    let mut client = server.connect();
    let sent = Instant::now();
    client.send_raw("GET / HTTP/1.1\r\nHost: te").expect("send");
    client.assert_eof();
    let waited = sent.elapsed();
    // The timer starts when the server starts waiting (at accept, just before the send).
    let expected = Duration::from_millis(200)..Duration::from_secs(5);
    assert!(expected.contains(&waited), "{waited:?}");

    // The timeout bounds the whole head, not each read: trickling does not extend it.
    let mut trickler = server.connect();
    let mut writer = trickler.writer();
    let sent = Instant::now();
    let trickle = std::thread::spawn(move || {
        // About 2.4 s of bytes, 20 ms apart: a timeout per read would never expire.
        let head = b"GET / HTTP/1.1\r\nHost: ".iter().chain(&[b'a'; 100]);
        for byte in head {
            // Pacing the sender, not waiting for a result.
            std::thread::sleep(Duration::from_millis(20));
            if writer.write_all(&[*byte]).is_err() {
                break;
            }
        }
    });
    trickler.assert_closed_by_server();
    assert!(
        sent.elapsed() < Duration::from_millis(800),
        "{:?}",
        sent.elapsed()
    );
    trickle.join().expect("the trickling thread");

    // A connection that sends nothing at all is closed at the same deadline, silently.
    let mut silent = server.connect();
    silent.assert_closed_by_server();
    // And one that keeps its requests coming is served as long as it likes.
    let mut busy = server.connect();
    for _ in 0..3 {
        assert_eq!(busy.get("/slow?ms=200").status, 200);
    }

    server.signal("TERM");
    let (status, _, stderr) = server.finish(STEP);
    assert_eq!(status.code(), Some(0), "stderr: {stderr}");
}

// hyper's graceful shutdown treats a connection with part of a head as idle: it closes
// it at once, without an answer (the hand-written server answered `503`).
#[test]
fn a_half_sent_head_at_shutdown_is_closed_at_once_and_does_not_hold_up_the_drain() {
    // The default head timeout (10 s) is longer than the grace period: only closing
    // the half-sent request at shutdown lets the drain end well before either.
    let server = Server::start(Some(5000));
    let mut client = server.connect();
    // In one write, so the server has read the half head with the first request.
    client
        .send_raw("GET / HTTP/1.1\r\nHost: test\r\n\r\nGET /slow?ms=1 HTTP/1.1\r\nHo")
        .expect("send");
    assert_eq!(client.receive().expect("the first response").status, 200);
    server.signal("TERM");
    let signalled = Instant::now();
    client.assert_eof();
    server.expect_line("drained");
    assert_exits_soon(server, signalled, Duration::from_secs(3), 0);
}

/// A connection the server has certainly accepted but that has sent nothing yet: a
/// connection opened after it got its answer, and the server accepts in order.
fn accepted_fresh_connection(server: &Server) -> Client {
    let fresh = server.connect();
    let mut probe = server.connect();
    probe
        .send_raw("GET / HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n")
        .expect("send");
    assert_eq!(probe.receive().expect("the probe's answer").status, 200);
    fresh
}

// A connection accepted just as the drain starts has its request on the way (on the
// internet, half a round trip behind the handshake): it is not idle. Closing it would
// drop that request unanswered, and a client does not retry a request on a new
// connection. (The restart test lost one every few runs this way.)
#[test]
fn a_connection_accepted_just_before_the_drain_has_its_first_request_answered() {
    let server = Server::start(None);
    let mut fresh = accepted_fresh_connection(&server);
    server.signal("TERM");
    // The listener is closed and the drain has begun.
    server.expect_line("shutdown:");
    let response = fresh.get("/slow?ms=1");
    assert_eq!(response.status, 200, "{response:?}");
    assert_eq!(response.header("connection"), Some("close"), "{response:?}");
    fresh.assert_eof();
    server.expect_line("drained");
    let (status, _, stderr) = server.finish(STEP);
    assert_eq!(status.code(), Some(0), "stderr: {stderr}");
}

// ...but only for a moment (a second from its accept): one that sends nothing does not
// hold the drain up to the head timeout.
#[test]
fn a_new_connection_that_sends_nothing_is_closed_within_a_second_of_the_drain() {
    let server = Server::start(None); // HEADER_TIMEOUT_MS: 10 s
    let mut silent = accepted_fresh_connection(&server);
    server.signal("TERM");
    let signalled = Instant::now();
    silent.assert_closed_by_server();
    server.expect_line("drained");
    assert_exits_soon(server, signalled, Duration::from_secs(3), 0);
}

#[test]
fn stalled_clients_under_ulimit_n_64_do_not_starve_a_well_behaved_one() {
    let mut command = Command::new("sh");
    command
        .args(["-c", r#"ulimit -n 64 && exec "$0" "$@""#])
        .arg(example_binary())
        .arg("127.0.0.1:0")
        .env_remove("GRACE_MS")
        .env("HEADER_TIMEOUT_MS", "300");
    let server = Server::start_command(&mut command);
    // More stalled clients than the server has descriptors: the kernel completes
    // every connection, and those the server cannot accept wait in its backlog.
    let stalled: Vec<Client> = (0..70)
        .map(|_| {
            let mut client = server.connect();
            client.send_raw("GET / HTTP/1.1\r\nHo").expect("send");
            client
        })
        .collect();
    let started = Instant::now();
    let mut good = server.connect();
    // Served once head timeouts have freed descriptors (the read timeout bounds it).
    let response = good.get("/");
    assert_eq!(response.status, 200, "{response:?}");
    assert!(started.elapsed() < STEP, "{:?}", started.elapsed());

    server.signal("TERM");
    let signalled = Instant::now();
    let stderr = assert_exits_soon(server, signalled, Duration::from_secs(5), 0);
    // The server did run out of descriptors: the test tested what it says.
    assert!(stderr.contains("accept failed"), "stderr: {stderr}");
    drop(stalled);
}

#[test]
fn an_oversized_head_gets_its_431_even_with_more_input_behind_it() {
    let server = Server::start(None);
    for _ in 0..5 {
        let mut client = server.connect();
        // More than the server reads (8 KiB of head), so input is left unread when it
        // closes: closing then, without care, sends RST instead of FIN. hyper answers
        // `431 Request Header Fields Too Large`, with no body.
        let mut head = b"GET / HTTP/1.1\r\nX-Big: ".to_vec();
        head.resize(9000 + 16 * 1024, b'a');
        client.send_bytes(&head).expect("send");
        let response = client.receive().expect("the 431");
        assert_eq!(response.status, 431, "{response:?}");
        assert_eq!(response.header("connection"), Some("close"), "{response:?}");
        client.assert_eof();
        // The server reads what still comes, until we close or it has had enough.
        let _ = client.send_raw("more of the same");
    }
    server.signal("TERM");
    let (status, _, stderr) = server.finish(STEP);
    assert_eq!(status.code(), Some(0), "stderr: {stderr}");
}

#[test]
fn a_request_pipelined_behind_the_last_one_at_shutdown_does_not_reset_its_response() {
    let server = Server::start(None);
    let mut client = in_flight(&server, "/slow?ms=1000");
    server.signal("TERM");
    server.expect_line("shutdown:");
    // Sent while the slow request runs; the server will not read it.
    client.send("/").expect("send");
    let response = client.receive().expect("the slow response");
    assert_eq!(response.status, 200, "{response:?}");
    assert_eq!(response.body, "slept 1000 ms\n");
    assert_eq!(response.header("connection"), Some("close"), "{response:?}");
    client.assert_eof();
    server.expect_line("drained");
    let (status, _, stderr) = server.finish(STEP);
    assert_eq!(status.code(), Some(0), "stderr: {stderr}");
}

#[test]
fn a_sigterm_as_soon_as_the_first_line_is_printed_drains_and_exits_0() {
    // The first line comes right after the handlers are installed, before the address
    // is bound: a signal from there on is handled, however early.
    for _ in 0..10 {
        let process = Process::spawn(&mut example_command("127.0.0.1:0", None), STEP);
        process.expect_line("starting (pid ");
        process.signal("TERM");
        let (status, stdout, stderr) = process.finish(STEP);
        assert_eq!(
            status.code(),
            Some(0),
            "{status}; stdout {stdout:#?}, stderr: {stderr}"
        );
    }
}

#[test]
fn a_sigterm_at_any_moment_of_start_up_never_hangs_the_server() {
    // Sent without waiting for anything: it may land before `main` runs (the default
    // action kills the process; no program can prevent that), never later than the
    // first line, and the server then always exits promptly.
    for _ in 0..20 {
        let mut process = Process::spawn(&mut example_command("127.0.0.1:0", None), STEP);
        process.signal("TERM");
        if process.try_wait_exit(Duration::from_secs(2)).is_none() {
            // signal-hook-registry (under async-signal) drops a signal that arrives
            // while it installs its handler, after `sigaction` and before the handler
            // can see its slot (the fallback it calls does nothing for `SIG_DFL`): the
            // server neither dies nor hears it. It must then be up and hear the next.
            process.expect_line("listening on http://");
            process.signal("TERM");
        }
        let (status, stdout, stderr) = process.finish(STEP);
        match status.signal() {
            Some(15) => assert!(stdout.is_empty(), "killed after {stdout:#?}"),
            _ => assert_eq!(
                status.code(),
                Some(0),
                "{status}; stdout {stdout:#?}, stderr: {stderr}"
            ),
        }
    }
}

#[test]
fn with_stderr_on_dev_full_or_a_broken_pipe_the_server_serves_drains_and_exits_0() {
    for (what, stderr) in [("/dev/full", dev_full()), ("a broken pipe", broken_pipe())] {
        // Debug logging, so that every connection logs something too.
        let mut command = example_command("127.0.0.1:0", None);
        command.env("RUST_LOG", "debug");
        let process = Process::spawn_redirected(&mut command, None, Some(stderr), STEP);
        let server = Server::listening(process);
        let mut garbage = server.connect();
        garbage.send_raw("garbage\r\n\r\n").expect("send");
        assert_eq!(garbage.receive().expect("a 400").status, 400, "{what}");
        let mut client = in_flight(&server, "/slow?ms=300");
        server.signal("TERM");
        let signalled = Instant::now();
        let response = client.receive().expect("the in-flight request is answered");
        assert_eq!(response.status, 200, "{what}: {response:?}");
        server.expect_line("drained");
        let (status, _, _) = server.finish(STEP);
        assert!(signalled.elapsed() < Duration::from_secs(5), "{what}");
        assert_eq!(status.code(), Some(0), "{what}: {status}");
    }
}

#[test]
fn a_bad_setting_exits_2_even_with_stderr_on_dev_full() {
    for name in ["GRACE_MS", "HEADER_TIMEOUT_MS", "DRAIN_DELAY_MS"] {
        let mut command = example_command("127.0.0.1:0", None);
        command.env(name, "soon");
        let mut child = Process::spawn_redirected(&mut command, None, Some(dev_full()), STEP);
        let status = child.wait_exit(STEP);
        assert_eq!(status.code(), Some(2), "{name}: {status}");
    }
}

/// The server on a free port with `DRAIN_DELAY_MS=ms`.
fn start_with_drain_delay(ms: u64) -> Server {
    Server::start_command(
        example_command("127.0.0.1:0", None).env("DRAIN_DELAY_MS", ms.to_string()),
    )
}

#[test]
fn during_the_drain_delay_new_connections_are_served_and_healthz_says_503_then_refused() {
    let server = start_with_drain_delay(1500);
    let mut before = server.connect();
    let healthy = before.get("/healthz");
    assert_eq!(
        (healthy.status, healthy.body.as_str()),
        (200, "ok\n"),
        "{healthy:?}"
    );

    server.signal("TERM");
    let signalled = Instant::now();
    let line = server.expect_line("signal SIGTERM: serving 1500 ms more");
    // Still accepting and serving, on new connections and old ones alike; /healthz
    // tells the load balancer to stop sending traffic.
    let mut during = server.connect();
    let unhealthy = during.get("/healthz");
    assert_eq!(unhealthy.status, 503, "{unhealthy:?}");
    assert_eq!(unhealthy.body, "draining\n");
    assert_eq!(during.get("/").status, 200);
    assert_eq!(during.get("/slow?ms=10").status, 200);
    assert_eq!(before.get("/healthz").status, 503);
    assert!(
        signalled.elapsed() < Duration::from_millis(1500),
        "{line}: too slow to test"
    );

    // After the delay: the listener is closed before this line, and the idle
    // keep-alive connections are closed.
    let line = server.expect_line("shutdown:");
    // (It counts the connections still open then: these two idle ones may be gone.)
    assert!(signalled.elapsed() >= Duration::from_millis(1400), "{line}");
    match Client::connect(server.addr) {
        Err(e) => assert_eq!(e.kind(), io::ErrorKind::ConnectionRefused, "{e}"),
        Ok(mut late) => {
            let _ = late.send("/");
            late.assert_closed_by_server();
        }
    }
    before.assert_eof();
    during.assert_eof();
    server.expect_line("drained");
    let (status, _, stderr) = server.finish(STEP);
    assert_eq!(status.code(), Some(0), "stderr: {stderr}");
}

#[test]
fn a_request_in_flight_when_the_delay_ends_finishes_and_the_grace_starts_after_the_delay() {
    // Delay 1000 ms, grace 1500 ms, a request of 2000 ms sent at the signal: longer
    // than the grace, so it is drained (exit 0) only if the grace starts after the delay.
    let mut command = example_command("127.0.0.1:0", Some(1500));
    command.env("DRAIN_DELAY_MS", "1000");
    let server = Server::start_command(&mut command);
    let mut client = in_flight(&server, "/slow?ms=2000");
    server.signal("TERM");
    server.expect_line("signal SIGTERM: serving 1000 ms more");
    let line = server.expect_line("shutdown:");
    assert!(line.contains("draining 1 connection(s)"), "{line}");
    let response = client.receive().expect("the in-flight request is answered");
    assert_eq!(response.status, 200, "{response:?}");
    assert_eq!(response.header("connection"), Some("close"), "{response:?}");
    client.assert_eof();
    drop(client); // the server's polite close ends at our FIN
    server.expect_line("drained");
    let (status, _, stderr) = server.finish(STEP);
    assert_eq!(status.code(), Some(0), "stderr: {stderr}");
}

#[test]
fn a_second_signal_during_the_drain_delay_exits_at_once_with_130() {
    let server = start_with_drain_delay(20_000);
    server.signal("INT");
    server.expect_line("signal SIGINT: serving 20000 ms more");
    server.signal("INT");
    let signalled = Instant::now();
    assert_exits_soon(server, signalled, Duration::from_secs(3), 130);
}
