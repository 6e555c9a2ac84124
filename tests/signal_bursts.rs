//! Bursts and mixes of real signals against `examples/http_server.rs`: the server is run
//! as a subprocess and signalled with `kill`, as in `tests/http_server.rs` (with the same
//! helpers, from `tests/common/http.rs`).
//!
//! Signals of one kind may coalesce in the kernel, so a burst of SIGTERMs is seen as one
//! or as several: the outcome must be exit 0 (one seen, the drain finished) or 143
//! (128 + SIGTERM: a second one forced the exit), and never a hang. Every wait is
//! bounded, and a `Server` kills its child when dropped.

#![cfg(all(unix, feature = "smol", feature = "signal"))]

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::http::{in_flight, Server};

/// How fast a burst must end the server, from the first `kill`.
const BURST_LIMIT: Duration = Duration::from_secs(5);

/// Sends `count` SIGTERMs to `server` as fast as a shell can: `count` separate `kill`
/// calls (the shell's builtin), so `count` separate deliveries, not one `kill` with many
/// arguments. The child is not reaped before the caller waits for it, so its pid stays
/// valid (at worst a zombie) for every call.
fn burst_of_sigterms(server: &Server, count: u32) {
    let script = format!(
        "for i in $(seq {count}); do kill -TERM {}; done",
        server.pid()
    );
    let status = Command::new("sh")
        .args(["-c", &script])
        .status()
        .expect("run sh");
    assert!(status.success(), "{script}: {status}");
}

/// Checks the outcome of a burst of SIGTERMs: exit 0 after a finished drain, or 143
/// forced by a second SIGTERM, within [`BURST_LIMIT`] of the first `kill`.
fn assert_burst_outcome(server: Server, burst_started: Instant) -> Option<i32> {
    let (status, stdout, stderr) = server.finish(BURST_LIMIT);
    let elapsed = burst_started.elapsed();
    assert!(elapsed < BURST_LIMIT, "exit took {elapsed:?}");
    let code = status.code();
    match code {
        Some(0) => {
            assert!(
                stdout.iter().any(|l| l.starts_with("drained")),
                "exit 0 without `drained`: stdout {stdout:?}, stderr: {stderr}"
            );
        }
        Some(143) => {
            assert!(
                stderr.contains("143"),
                "exit 143 without the library's warning: stderr: {stderr}"
            );
        }
        _ => panic!("exit {status} after a burst of SIGTERMs; stdout {stdout:?}, stderr: {stderr}"),
    }
    // Whatever was printed about the shutdown names the signal that started it.
    if let Some(line) = stdout.iter().find(|l| l.starts_with("shutdown:")) {
        assert!(line.contains("SIGTERM"), "{line}");
    }
    code
}

#[test]
fn a_burst_of_50_sigterms_ends_in_exit_0_or_143_never_a_hang() {
    let server = Server::start(None);
    let mut slow = in_flight(&server, "/slow?ms=1000");
    let burst_started = Instant::now();
    burst_of_sigterms(&server, 50);
    let code = assert_burst_outcome(server, burst_started);
    // The process has exited: the slow request was either answered before the drain
    // ended (exit 0), or cut by the forced exit (143).
    match slow.receive_unless_closed() {
        Some(response) => {
            assert_eq!(response.status, 200, "{response:?}");
            assert_eq!(response.body, "slept 1000 ms\n");
            assert!(
                response
                    .header("connection")
                    .is_some_and(|value| value.eq_ignore_ascii_case("close")),
                "{response:?}"
            );
        }
        None => assert_eq!(code, Some(143), "a drained server dropped a request"),
    }
}

#[test]
fn a_burst_of_50_sigterms_on_an_idle_server_ends_in_exit_0_or_143() {
    let server = Server::start(None);
    let burst_started = Instant::now();
    burst_of_sigterms(&server, 50);
    assert_burst_outcome(server, burst_started);
}

#[test]
fn sigterm_then_sigint_forces_exit_130() {
    let server = Server::start(None);
    let _slow = in_flight(&server, "/slow?ms=20000");
    server.signal("TERM");
    let line = server.expect_line("shutdown:");
    assert!(line.contains("SIGTERM"), "{line}");
    assert!(line.contains("draining 1 connection(s)"), "{line}");
    let signalled = Instant::now();
    server.signal("INT");
    let (status, _, stderr) = server.finish(Duration::from_secs(3));
    assert!(
        signalled.elapsed() < Duration::from_secs(3),
        "{:?}",
        signalled.elapsed()
    );
    assert_eq!(status.code(), Some(130), "stderr: {stderr}");
    assert!(stderr.contains("130"), "stderr: {stderr}");
}
