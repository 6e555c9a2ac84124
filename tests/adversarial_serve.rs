//! A hostile user's review of `serve::Connection` and `serve::run`: zero-length reads,
//! reads left pending across the answer or across a `busy` guard, clones that outlive
//! the original, a client that sends one byte and stalls, two thousand connections
//! drained at once, and `serve::run` in a child process of its own (`GRACE_MS` and the
//! signal handlers are process-wide) with odd `GRACE_MS` values, a panicking logger and
//! a failing service.
#![cfg(all(unix, feature = "smol", feature = "signal"))]

mod common;

use std::io;
use std::pin::pin;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use futures_lite::future::poll_once;
use futures_lite::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, StreamExt};
use smol::net::unix::UnixStream;
use smol_graceful::serve::{self, Connection};
use smol_graceful::{Group, Shutdown};

use common::subprocess::{child_role, rerun_self};
use common::waker::FlagWaker;
use common::{run_bounded, LIMIT};

fn pair(group: &Group, shutdown: &Shutdown) -> (Connection<UnixStream>, UnixStream) {
    let (server, client) = UnixStream::pair().unwrap();
    (
        Connection::new(server, group, shutdown, "connection A").unwrap(),
        client,
    )
}

/// A read with an empty buffer: the stream answers `Ok(0)` when data is waiting (a
/// Unix socket with nothing to read waits instead). The wrapper must neither take it
/// for a request (busy) nor for the end of one, and a zero-length read that waits on an
/// idle connection is woken by the trigger like any other.
#[test]
fn a_zero_length_read_is_neither_a_request_nor_the_end_of_one() {
    // Nothing to read: it waits, and the trigger ends the wait.
    let (group, shutdown) = (Group::new(), Shutdown::new());
    let (mut conn, _client) = pair(&group, &shutdown);
    let waker = FlagWaker::new();
    {
        let mut zero = pin!(conn.read(&mut []));
        assert!(waker.poll(zero.as_mut()).is_pending());
        shutdown.trigger();
        assert!(waker.take_woken(), "the trigger must wake an idle read");
        assert_eq!(run_bounded(zero).unwrap(), 0);
    }

    // A request waiting: `Ok(0)` at once, and no request started.
    let (group, shutdown) = (Group::new(), Shutdown::new());
    let (mut conn, mut client) = pair(&group, &shutdown);
    run_bounded(async {
        client.write_all(b"PING\n").await.unwrap();
        assert_eq!(conn.read(&mut []).await.unwrap(), 0);
        shutdown.trigger();
        let mut buf = [0; 8];
        assert_eq!(
            conn.read(&mut buf).await.unwrap(),
            0,
            "a request not started at the trigger is not started"
        );
    });

    // Busy: a zero-length read in the middle of a request (the rest of it waiting)
    // does not end it.
    let (group, shutdown) = (Group::new(), Shutdown::new());
    let (mut conn, mut client) = pair(&group, &shutdown);
    run_bounded(async {
        client.write_all(b"PING\n").await.unwrap();
        let mut head = [0; 2];
        conn.read_exact(&mut head).await.unwrap();
        assert_eq!(conn.read(&mut []).await.unwrap(), 0);
        shutdown.trigger();
        let mut rest = [0; 3];
        conn.read_exact(&mut rest).await.unwrap();
        assert_eq!(&rest, b"NG\n", "the request in progress is read to its end");
    });
}

/// A reader and a writer on two clones, as a server with a reading task and a writing
/// task has them (or `smol::io::split`): the reader is already waiting for the next
/// request when the writer sends the answer. Once answered, the connection is idle,
/// and the trigger must end that wait.
#[test]
fn a_read_waiting_since_before_the_answer_is_woken_by_the_trigger() {
    let (group, shutdown) = (Group::new(), Shutdown::new());
    let (conn, mut client) = pair(&group, &shutdown);
    let (mut reader, mut writer) = (conn.clone(), conn);
    run_bounded(async {
        client.write_all(b"PING\n").await.unwrap();
        let mut request = [0; 5];
        reader.read_exact(&mut request).await.unwrap();
    });
    let waker = FlagWaker::new();
    let mut buf = [0; 8];
    let mut next = pin!(reader.read(&mut buf));
    assert!(
        waker.poll(next.as_mut()).is_pending(),
        "the reading task waits for the next request"
    );
    run_bounded(writer.write_all(b"PONG\n")).unwrap();
    shutdown.trigger();
    assert!(
        waker.take_woken(),
        "the trigger must wake a read waiting on an answered (idle) connection"
    );
    assert_eq!(run_bounded(next).unwrap(), 0);
}

/// The same at the level of a whole server: a reading task and a writing task on the
/// halves of `futures_lite::io::split`, a common shape for line protocols. After one
/// request answered, the connection is idle; at the trigger it must drain.
#[test]
fn a_server_with_a_reading_task_and_a_writing_task_drains_at_the_trigger() {
    let (group, shutdown) = (Group::new(), Shutdown::new());
    let (conn, mut client) = pair(&group, &shutdown);
    let (reader, mut writer) = futures_lite::io::split(conn);
    let (requests, received) = smol::channel::unbounded::<String>();
    let reading = smol::spawn(async move {
        let mut lines = futures_lite::io::BufReader::new(reader).lines();
        while let Some(Ok(line)) = lines.next().await {
            if requests.send(line).await.is_err() {
                break;
            }
        }
    });
    let writing = smol::spawn(async move {
        while let Ok(line) = received.recv().await {
            let answer = format!("{line}: OK\n");
            if writer.write_all(answer.as_bytes()).await.is_err() {
                break;
            }
        }
    });
    run_bounded(async {
        client.write_all(b"PING\n").await.unwrap();
        let mut answer = [0; 9];
        client.read_exact(&mut answer).await.unwrap();
        assert_eq!(&answer, b"PING: OK\n");
        shutdown.trigger();
        reading.await; // the reading task ends at the trigger, so does the writing one
        writing.await;
    });
    assert!(group.is_empty());
}

/// A read that started while `busy` was held, still waiting when the guard is dropped:
/// the connection is idle from the drop, and the trigger must end that wait too.
#[test]
fn a_read_waiting_under_busy_is_woken_by_the_trigger_once_busy_is_dropped() {
    let (group, shutdown) = (Group::new(), Shutdown::new());
    let (conn, _client) = pair(&group, &shutdown);
    let mut reader = conn.clone();
    let busy = conn.busy();
    let waker = FlagWaker::new();
    let mut buf = [0; 8];
    let mut read = pin!(reader.read(&mut buf));
    assert!(waker.poll(read.as_mut()).is_pending());
    drop(busy);
    shutdown.trigger();
    assert!(
        waker.take_woken(),
        "the trigger must wake a read once no request is in progress"
    );
    assert_eq!(run_bounded(read).unwrap(), 0);
}

/// A client that sends one byte of a request and stalls: the request is in progress,
/// so the drain does not end it; it is a straggler named by the group, not a hang.
#[test]
fn a_client_that_sends_one_byte_and_stalls_is_a_named_straggler() {
    let (group, shutdown) = (Group::new(), Shutdown::new());
    let (mut conn, mut client) = pair(&group, &shutdown);
    run_bounded(async {
        client.write_all(b"P").await.unwrap();
        let mut byte = [0; 1];
        conn.read_exact(&mut byte).await.unwrap();
        shutdown.trigger();
        let mut rest = [0; 4];
        let mut read = pin!(conn.read(&mut rest));
        assert!(poll_once(read.as_mut()).await.is_none(), "busy: waits on");
        let stragglers = group
            .wait_timeout(Duration::from_millis(50))
            .await
            .unwrap_err();
        assert_eq!(stragglers.names(), ["connection A"]);
    });
}

/// Clones share the count: the original dropped first, a clone still counts, still
/// drains at the trigger, and its drop ends the count.
#[test]
fn a_clone_outliving_the_original_counts_and_drains() {
    let (group, shutdown) = (Group::new(), Shutdown::new());
    let (conn, _client) = pair(&group, &shutdown);
    let mut clone = conn.clone();
    drop(conn);
    assert_eq!(group.stragglers().names(), ["connection A"]);
    let waker = FlagWaker::new();
    let mut buf = [0; 8];
    {
        let mut read = pin!(clone.read(&mut buf));
        assert!(waker.poll(read.as_mut()).is_pending());
        shutdown.trigger();
        assert!(waker.take_woken(), "the trigger must wake the clone's read");
        assert_eq!(run_bounded(read).unwrap(), 0);
    }
    assert_eq!(group.len(), 1, "the clone still counts");
    drop(clone);
    run_bounded(group.wait());
}

/// The module docs: each connection counts "until the connection and its clones are
/// dropped". A `Busy` guard kept past that (stored in a struct, leaked by a handler
/// that forgot it) must not keep a closed connection in the drain.
#[test]
fn a_connection_stops_counting_when_it_and_its_clones_are_dropped_even_with_a_busy_guard_alive() {
    let (group, shutdown) = (Group::new(), Shutdown::new());
    let (conn, _client) = pair(&group, &shutdown);
    let busy = conn.busy();
    drop(conn);
    assert!(
        group.is_empty(),
        "the connection and its clones are gone, yet it still counts: {}",
        group.stragglers()
    );
    drop(busy);
}

/// A half-closed client in the middle of a request during the drain: its end of stream
/// ends the request, and the connection is done.
#[test]
fn a_client_half_closing_mid_request_during_the_drain_ends_the_connection() {
    let (group, shutdown) = (Group::new(), Shutdown::new());
    let (mut conn, mut client) = pair(&group, &shutdown);
    run_bounded(async {
        client.write_all(b"PI").await.unwrap();
        let mut head = [0; 2];
        conn.read_exact(&mut head).await.unwrap();
        shutdown.trigger();
        client.shutdown(std::net::Shutdown::Write).unwrap();
        assert_eq!(conn.read(&mut head).await.unwrap(), 0, "the client's end");
        drop(conn);
        group.wait().await;
    });
}

/// A line server's connection loop: each line is answered `OK` (`BYE` once closing).
/// Reports each read on `reads`.
async fn answer_lines(conn: Connection<UnixStream>, reads: smol::channel::Sender<()>) {
    let (mut reader, mut writer) = (conn.clone(), conn);
    let mut pending = Vec::new();
    let mut buf = [0; 64];
    loop {
        let n = match reader.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        let _ = reads.send(()).await;
        pending.extend_from_slice(&buf[..n]);
        while let Some(end) = pending.iter().position(|&b| b == b'\n') {
            pending.drain(..=end);
            let answer: &[u8] = if writer.closing() { b"BYE\n" } else { b"OK\n" };
            if writer.write_all(answer).await.is_err() {
                return;
            }
        }
    }
}

/// Two thousand connections (Unix socket pairs): half answered and idle, a quarter in
/// the middle of a request, a quarter silent. At the trigger the idle and silent ones
/// end at once, the requests in progress are answered `BYE`, and the group drains.
#[test]
fn two_thousand_connections_drain_idle_ones_at_once_and_finish_the_busy_ones() {
    const N: usize = 2_000;
    let (group, shutdown) = (Group::new(), Shutdown::new());
    let (reads_tx, reads) = smol::channel::unbounded();
    let mut clients = Vec::with_capacity(N);
    for i in 0..N {
        let (server, client) = UnixStream::pair().unwrap();
        let conn = Connection::new(server, &group, &shutdown, format!("connection {i}")).unwrap();
        smol::spawn(answer_lines(conn, reads_tx.clone())).detach();
        clients.push(client);
    }
    let started = Instant::now();
    run_bounded(async {
        let (answered, rest) = clients.split_at_mut(N / 2);
        let (busy, silent) = rest.split_at_mut(N / 4);
        for client in answered.iter_mut() {
            client.write_all(b"PING\n").await.unwrap();
            let mut answer = [0; 3];
            client.read_exact(&mut answer).await.unwrap();
            assert_eq!(&answer, b"OK\n");
        }
        for client in busy.iter_mut() {
            client.write_all(b"PI").await.unwrap();
        }
        // Every read so far seen by the servers: the busy ones have started.
        for _ in 0..N / 2 + N / 4 {
            reads.recv().await.unwrap();
        }
        shutdown.trigger();
        for client in answered.iter_mut().chain(silent.iter_mut()) {
            let mut rest = Vec::new();
            client.read_to_end(&mut rest).await.unwrap();
            assert!(rest.is_empty(), "an idle connection ends without a word");
        }
        for client in busy.iter_mut() {
            client.write_all(b"NG\n").await.unwrap();
            let mut rest = Vec::new();
            client.read_to_end(&mut rest).await.unwrap();
            assert_eq!(rest, b"BYE\n");
        }
        group.wait().await;
    });
    assert!(started.elapsed() < LIMIT);
}

// ---------------------------------------------------------------------------------
// `serve::run` in a child process: one scenario per child, its exit code checked.

/// A logger that writes each line on stderr (where the parent reads it), or panics on
/// each line, as a logger writing to a dead pipe with `println!` does.
struct StderrLogger {
    panics: AtomicBool,
}

impl log::Log for StderrLogger {
    fn enabled(&self, _: &log::Metadata<'_>) -> bool {
        true
    }
    fn log(&self, record: &log::Record<'_>) {
        let line = format!("{} {}", record.level(), record.args());
        if self.panics.load(Ordering::SeqCst) {
            // Said first, so that the parent sees which line it was.
            eprintln!("the logger fails on {line:?}");
            panic!("the logger fails on {line:?}");
        }
        eprintln!("{line}");
    }
    fn flush(&self) {}
}

static LOGGER: StderrLogger = StderrLogger {
    panics: AtomicBool::new(false),
};

use common::user_code::BadDisplay;

/// A connection whose client sent one byte of a request and stalls, with the handler's
/// first read done (so the connection is busy). The client is leaked: it never closes.
async fn stalled_connection(shutdown: &Shutdown, group: &Group) -> io::Result<()> {
    let (server, mut client) = UnixStream::pair()?;
    let mut conn = Connection::new(server, group, shutdown, "stalled client")?;
    let (read_tx, read) = smol::channel::bounded(1);
    smol::spawn(async move {
        let mut buf = [0; 16];
        while let Ok(1..) = conn.read(&mut buf).await {
            let _ = read_tx.try_send(());
        }
    })
    .detach();
    client.write_all(b"P").await?;
    read.recv().await.map_err(io::Error::other)?;
    std::mem::forget(client);
    Ok(())
}

/// A named guard released by a thread after `after`.
fn guard_released_after(group: &Group, after: Duration) -> io::Result<()> {
    let guard = group.add_named("slow worker")?;
    std::thread::spawn(move || {
        std::thread::sleep(after);
        drop(guard);
    });
    Ok(())
}

/// The child's side: `role` is `GRACE_MS|scenario` (`-` for `GRACE_MS` unset). Exits
/// with `run`'s code.
fn run_child(role: &str) -> ! {
    let (grace, scenario) = role.split_once('|').expect("GRACE_MS|scenario");
    // The child runs this one test on one thread: nothing else reads the environment.
    match grace {
        "-" => std::env::remove_var("GRACE_MS"),
        grace => std::env::set_var("GRACE_MS", grace),
    }
    log::set_logger(&LOGGER).unwrap();
    log::set_max_level(log::LevelFilter::Info);
    if scenario == "panicking-logger" {
        std::panic::set_hook(Box::new(|_| {}));
        LOGGER.panics.store(true, Ordering::SeqCst);
    }
    let scenario = scenario.to_owned();
    let code = smol::block_on(serve::run(move |shutdown, group| async move {
        match &*scenario {
            "stall" => stalled_connection(&shutdown, &group).await,
            "empty" => Ok(()),
            "panicking-logger" | "progress" => {
                guard_released_after(&group, Duration::from_millis(2_300))
            }
            "bad-display" => Err(io::Error::other(BadDisplay)),
            "failed-with-straggler" => {
                stalled_connection(&shutdown, &group).await?;
                Err(io::Error::other("accept failed"))
            }
            other => panic!("no scenario {other:?}"),
        }
    }));
    let number = (0..=u8::MAX)
        .find(|n| ExitCode::from(*n) == code)
        .expect("an exit code");
    eprintln!("run returned {number}");
    std::process::exit(number.into());
}

/// Runs `test` (the calling test's name) as a child with `role`; returns its exit code
/// and stderr.
fn run_in_child(test: &str, role: &str) -> (Option<i32>, String) {
    let child = rerun_self(test, role, 2 * LIMIT);
    let (status, _, stderr) = child.finish(2 * LIMIT);
    (status.code(), stderr)
}

/// The stalled request is in progress, so the drain cannot end it: with `GRACE_MS`
/// (also 0, also with spaces around it) `run` gives up, names it and exits 1.
#[test]
fn a_stalled_request_ends_the_drain_at_grace_ms_with_exit_1() {
    const TEST: &str = "a_stalled_request_ends_the_drain_at_grace_ms_with_exit_1";
    if let Some(role) = child_role() {
        run_child(&role);
    }
    for grace in ["200", "0", " 200 "] {
        let started = Instant::now();
        let (code, stderr) = run_in_child(TEST, &format!("{grace}|stall"));
        assert_eq!(code, Some(1), "GRACE_MS={grace:?}; stderr:\n{stderr}");
        assert!(
            stderr.contains("gave up after") && stderr.contains("stalled client"),
            "GRACE_MS={grace:?}: the straggler is named; stderr:\n{stderr}"
        );
        assert!(started.elapsed() < LIMIT, "GRACE_MS={grace:?}");
    }
}

/// `GRACE_MS` at `u64::MAX` is a deadline too far to represent: a drained service
/// still exits 0 at once. Not a number (empty, negative, a unit): 2.
#[test]
fn grace_ms_huge_drains_at_once_and_grace_ms_not_a_number_exits_2() {
    const TEST: &str = "grace_ms_huge_drains_at_once_and_grace_ms_not_a_number_exits_2";
    if let Some(role) = child_role() {
        run_child(&role);
    }
    let (code, stderr) = run_in_child(TEST, &format!("{}|empty", u64::MAX));
    assert_eq!(code, Some(0), "stderr:\n{stderr}");
    for grace in ["", "-1", "10ms", "1 000"] {
        let (code, stderr) = run_in_child(TEST, &format!("{grace}|empty"));
        assert_eq!(code, Some(2), "GRACE_MS={grace:?}; stderr:\n{stderr}");
        assert!(stderr.contains("GRACE_MS"), "stderr:\n{stderr}");
    }
}

/// The drain is reported once a second while it lasts (after the `draining:` line said
/// when the service returned).
#[test]
fn a_drain_of_two_seconds_logs_its_progress_each_second_and_exits_0() {
    const TEST: &str = "a_drain_of_two_seconds_logs_its_progress_each_second_and_exits_0";
    if let Some(role) = child_role() {
        run_child(&role);
    }
    let (code, stderr) = run_in_child(TEST, "-|progress");
    assert_eq!(code, Some(0), "stderr:\n{stderr}");
    let lines = stderr
        .lines()
        .filter(|line| {
            line.starts_with("INFO draining: 1 left, oldest") && line.contains("slow worker")
        })
        .count();
    assert!(
        lines >= 3,
        "the first line and one a second; stderr:\n{stderr}"
    );
}

/// The crate promises elsewhere (`trigger_with`, the signal watcher, `TaskSet`) that a
/// panicking logger is caught: `run`'s own lines (`draining: ...` and the progress each
/// second) must not turn a drain that succeeds into a panic (exit 101, no drain).
#[test]
fn a_panicking_logger_during_the_drain_does_not_break_run() {
    const TEST: &str = "a_panicking_logger_during_the_drain_does_not_break_run";
    if let Some(role) = child_role() {
        run_child(&role);
    }
    let (code, stderr) = run_in_child(TEST, "-|panicking-logger");
    assert_eq!(code, Some(0), "stderr:\n{stderr}");
}

/// A service error whose `Display` panics: `run` logs it, and `trigger_with` promises to
/// survive such an error; `run` must still answer 2.
#[test]
fn a_service_error_whose_display_panics_still_exits_2() {
    const TEST: &str = "a_service_error_whose_display_panics_still_exits_2";
    if let Some(role) = child_role() {
        run_child(&role);
    }
    let (code, stderr) = run_in_child(TEST, "-|bad-display");
    assert_eq!(code, Some(2), "stderr:\n{stderr}");
}

/// The docs: 2 when "`service` returned an error". A service that failed while a
/// request was stuck still failed: the code must say so, not "stragglers" (1).
#[test]
fn a_failed_service_with_a_straggler_exits_2() {
    const TEST: &str = "a_failed_service_with_a_straggler_exits_2";
    if let Some(role) = child_role() {
        run_child(&role);
    }
    let (code, stderr) = run_in_child(TEST, "100|failed-with-straggler");
    assert_eq!(code, Some(2), "stderr:\n{stderr}");
}
