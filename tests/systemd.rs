//! The `systemd` module against a real service-manager socket.
//!
//! Each test binds a Unix datagram socket, the way systemd does, and re-runs this test
//! binary as a child (`--exact` the same test, with [`CHILD`] set) whose `NOTIFY_SOCKET`
//! names it; the parent then reads the datagrams the child sends and checks them, in
//! order, exactly. The environment a notification reads is per process, so every
//! scenario runs in a child of its own, and the parent's environment is never changed.
//! Every wait is bounded, and a child still running when a check fails is killed.

#![cfg(all(unix, feature = "systemd", feature = "signal"))]

mod common;

use std::io::{self, Write as _};
use std::process::Command;
use std::time::{Duration, Instant};

use common::notify::Manager;
use common::subprocess::Process;
use smol::Timer;
use smol_graceful::{signal, systemd, Group, Shutdown};

/// Set in the child's environment: run the child side of the test.
const CHILD: &str = "SMOL_GRACEFUL_SYSTEMD_CHILD";
/// How long any step of the parent may take before the test gives up.
const STEP: Duration = Duration::from_secs(10);

// ---------------------------------------------------------------------------------
// The parent's side: a service manager's socket, and the child.

/// This test binary, to run `test` alone as a child.
fn child_command(test: &str) -> Command {
    let mut command = Command::new(std::env::current_exe().expect("current_exe"));
    command
        .args(["--exact", test, "--nocapture", "--test-threads=1"])
        .env(CHILD, "1")
        .env_remove("NOTIFY_SOCKET")
        .env_remove("WATCHDOG_USEC")
        .env_remove("WATCHDOG_PID");
    command
}

/// The same, through `sh` so that `WATCHDOG_PID` is the child's own pid (`exec` keeps it).
fn child_command_with_own_watchdog_pid(test: &str) -> Command {
    let plain = child_command(test);
    let mut command = Command::new("sh");
    command
        .arg("-c")
        .arg(r#"WATCHDOG_PID=$$ exec "$0" "$@""#)
        .arg(plain.get_program())
        .args(plain.get_args());
    for (key, value) in plain.get_envs() {
        match value {
            Some(value) => command.env(key, value),
            None => command.env_remove(key),
        };
    }
    command
}

/// True in the child.
fn is_child() -> bool {
    std::env::var_os(CHILD).is_some()
}

/// The child's logger: everything from debug up, on stderr (the parent reads it).
fn child_logger() {
    let _ = env_logger::Builder::new()
        .filter_level(log::LevelFilter::Debug)
        .try_init();
}

/// Prints `line` on stdout and flushes it, so the parent sees it at once.
fn say(line: &str) {
    let mut stdout = io::stdout().lock();
    let _ = writeln!(stdout, "{line}").and_then(|()| stdout.flush());
}

/// Runs `future` on the current thread, failing past 30 s (the parent gives up sooner).
fn block_on_bounded<T>(future: impl std::future::Future<Output = T>) -> T {
    smol::block_on(smol::future::or(future, async {
        Timer::after(Duration::from_secs(30)).await;
        panic!("child: timed out after 30 s");
    }))
}

/// Waits for the child to exit (bounded) and checks it passed; returns its stdout
/// lines not read yet, and its stderr.
fn assert_child_passed(child: Process) -> (Vec<String>, String) {
    let (status, stdout, stderr) = child.finish(STEP);
    assert!(
        status.success(),
        "child: {status}; stdout {stdout:#?}; stderr: {stderr}"
    );
    (stdout, stderr)
}

// ---------------------------------------------------------------------------------
// A SIGTERM drain, message by message.

/// The extension the child asks for while it drains: one message every 100 ms.
const EXTEND_BY: Duration = Duration::from_millis(200);

#[test]
fn ready_stopping_then_extensions_across_a_sigterm_drain_in_order() {
    const TEST: &str = "ready_stopping_then_extensions_across_a_sigterm_drain_in_order";
    if is_child() {
        return sigterm_drain_child();
    }
    let manager = Manager::bind("drain");
    let child = Process::spawn(
        child_command(TEST).env("NOTIFY_SOCKET", &manager.path),
        STEP,
    );
    // READY=1 comes after the signal handlers are in.
    manager.expect("READY=1");
    child.expect_line_containing("child: serving");

    child.signal("TERM");
    manager.expect("STOPPING=1");
    // Then an extension at once and every half of it while the drain runs (the drain
    // lasts until the second SIGTERM releases the job that holds it).
    let extension = format!("EXTEND_TIMEOUT_USEC={}", EXTEND_BY.as_micros());
    let mut times = Vec::new();
    for _ in 0..4 {
        times.push(manager.expect(&extension));
    }
    for pair in times.windows(2) {
        let gap = pair[1] - pair[0];
        // Every 100 ms: never much sooner (the receiving thread's own delays can
        // shorten one gap), and well before the 200 ms extension ran out, but for a
        // loaded machine.
        assert!(
            gap >= EXTEND_BY / 4 && gap < EXTEND_BY * 5,
            "extensions {:?} apart",
            gap
        );
    }

    child.signal("TERM");
    let (stdout, stderr) = assert_child_passed(child);
    assert!(
        stdout.iter().any(|line| line.contains("child: drained")),
        "{stdout:#?}; stderr: {stderr}"
    );
    // After the drain, nothing but the extensions already on their way; nothing at all
    // once the child is gone.
    let rest = manager.queued();
    assert!(
        rest.len() <= 10 && rest.iter().all(|m| *m == extension),
        "{rest:#?}"
    );
    assert_eq!(manager.receive_within(Duration::from_millis(50)), None);
}

/// The child: READY=1 when serving; on SIGTERM, STOPPING=1, then a drain with
/// extensions, which ends when a second SIGTERM releases the one job it waits for.
fn sigterm_drain_child() {
    child_logger();
    let shutdown = Shutdown::new();
    // The second SIGTERM ends the job the drain waits for (instead of exiting).
    let release = Shutdown::new();
    let release_on_second = release.clone();
    let watcher = signal::Builder::new()
        .on_second_signal(move |_| {
            release_on_second.trigger();
        })
        .watch(&shutdown)
        .expect("install the signal handlers");
    smol::spawn(watcher).detach();

    let group = Group::new();
    let job = group.add_named("a job").expect("open group");
    smol::spawn(async move {
        release.triggered().await;
        drop(job);
    })
    .detach();

    systemd::ready().expect("READY=1");
    say("child: serving");
    block_on_bounded(async {
        systemd::notify_on_shutdown(&shutdown)
            .await
            .expect("STOPPING=1");
        let drain = group.wait_timeout(Duration::from_secs(20));
        match systemd::extend_timeout_while(EXTEND_BY, drain).await {
            Ok(()) => say("child: drained"),
            Err(stragglers) => panic!("child: {stragglers}"),
        }
    });
}

// ---------------------------------------------------------------------------------
// The watchdog.

/// The watchdog timeout the child is given: it pings every 100 ms.
const WATCHDOG: Duration = Duration::from_millis(200);

#[test]
fn watchdog_pings_every_half_of_watchdog_usec() {
    const TEST: &str = "watchdog_pings_every_half_of_watchdog_usec";
    if is_child() {
        return watchdog_child();
    }
    let manager = Manager::bind("watchdog");
    // WATCHDOG_PID is the child's own: the watchdog is meant for it.
    let child = Process::spawn(
        child_command_with_own_watchdog_pid(TEST)
            .env("NOTIFY_SOCKET", &manager.path)
            .env("WATCHDOG_USEC", WATCHDOG.as_micros().to_string()),
        STEP,
    );
    child.expect_line_containing("child: pinging every 100ms (timeout 200ms)");
    let mut times = Vec::new();
    for _ in 0..6 {
        times.push(manager.expect("WATCHDOG=1"));
    }
    for pair in times.windows(2) {
        let gap = pair[1] - pair[0];
        assert!(
            gap >= WATCHDOG / 4 && gap < WATCHDOG * 5,
            "pings {gap:?} apart"
        );
    }
    // Five intervals of 100 ms take at least about that long: not a burst.
    let span = times[5] - times[0];
    assert!(span >= WATCHDOG * 2, "6 pings in {span:?}");
    drop(child); // killed: it pings forever
}

/// The child: pings the watchdog until killed (30 s at most).
fn watchdog_child() {
    child_logger();
    let watchdog = systemd::watchdog().expect("a watchdog for this process");
    say(&format!(
        "child: pinging every {:?} (timeout {:?})",
        watchdog.interval(),
        watchdog.timeout()
    ));
    block_on_bounded(watchdog);
}

#[test]
fn no_watchdog_for_another_pid_a_zero_or_a_malformed_watchdog_usec() {
    const TEST: &str = "no_watchdog_for_another_pid_a_zero_or_a_malformed_watchdog_usec";
    if is_child() {
        child_logger();
        assert!(systemd::watchdog().is_none(), "child: a watchdog");
        return say("child: no watchdog");
    }
    let manager = Manager::bind("no-watchdog");
    for (usec, pid) in [
        ("200000", Some("1")), // systemd's watchdog is meant for pid 1, not us
        ("0", None),
        ("soon", None),
        ("", None),
    ] {
        let mut command = child_command(TEST);
        command
            .env("NOTIFY_SOCKET", &manager.path)
            .env("WATCHDOG_USEC", usec);
        if let Some(pid) = pid {
            command.env("WATCHDOG_PID", pid);
        }
        let (stdout, stderr) = assert_child_passed(Process::spawn(&mut command, STEP));
        assert!(
            stdout.iter().any(|l| l.contains("child: no watchdog")),
            "WATCHDOG_USEC={usec:?}: {stdout:#?}; stderr: {stderr}"
        );
    }
    assert_eq!(manager.queued(), Vec::<String>::new());
}

// ---------------------------------------------------------------------------------
// Outside systemd, and a manager that is gone or stalled.

#[test]
fn without_notify_socket_everything_is_a_quiet_no_op() {
    const TEST: &str = "without_notify_socket_everything_is_a_quiet_no_op";
    if is_child() {
        child_logger();
        assert!(!systemd::is_enabled());
        systemd::ready().expect("ready");
        systemd::stopping().expect("stopping");
        systemd::extend_timeout(Duration::from_secs(1)).expect("extend_timeout");
        // A watchdog asked for, but nowhere to send its pings.
        assert!(systemd::watchdog().is_none());
        let shutdown = Shutdown::new();
        shutdown.trigger();
        let answer = block_on_bounded(async {
            systemd::notify_on_shutdown(&shutdown)
                .await
                .expect("notify_on_shutdown");
            systemd::extend_timeout_while(Duration::from_millis(2), async {
                Timer::after(Duration::from_millis(20)).await;
                42
            })
            .await
        });
        assert_eq!(answer, 42);
        return say("child: no-ops done");
    }
    let (stdout, stderr) = assert_child_passed(Process::spawn(
        child_command(TEST).env("WATCHDOG_USEC", "200000"),
        STEP,
    ));
    assert!(
        stdout.iter().any(|l| l.contains("child: no-ops done")),
        "{stdout:#?}"
    );
    // Debug lines at most.
    for level in ["ERROR", "WARN", "INFO"] {
        assert!(!stderr.contains(level), "{level} in stderr: {stderr}");
    }
    assert!(stderr.contains("NOTIFY_SOCKET is not set"), "{stderr}");
}

#[test]
fn a_notify_socket_nobody_listens_on_gives_errors_never_a_panic_or_a_stuck_drain() {
    const TEST: &str =
        "a_notify_socket_nobody_listens_on_gives_errors_never_a_panic_or_a_stuck_drain";
    if is_child() {
        child_logger();
        let error = systemd::ready().expect_err("READY=1 to nowhere");
        let text = error.to_string();
        assert!(
            text.contains("READY=1") && text.contains("nobody-"),
            "{text}"
        );
        systemd::stopping().expect_err("STOPPING=1 to nowhere");
        let watchdog = systemd::watchdog().expect("a watchdog asked for");
        let answer = block_on_bounded(async {
            // Sends fail from the start; the future still completes, and so does the
            // watchdog's polling.
            smol::spawn(watchdog).detach();
            systemd::extend_timeout_while(Duration::from_millis(2), async {
                Timer::after(Duration::from_millis(50)).await;
                7
            })
            .await
        });
        assert_eq!(answer, 7);
        return say("child: still standing");
    }
    let missing = std::env::temp_dir().join(format!("nobody-{}.sock", std::process::id()));
    let (stdout, stderr) = assert_child_passed(Process::spawn(
        child_command(TEST)
            .env("NOTIFY_SOCKET", &missing)
            .env("WATCHDOG_USEC", "4000"),
        STEP,
    ));
    assert!(
        stdout.iter().any(|l| l.contains("child: still standing")),
        "{stdout:#?}"
    );
    // One warning per failing future, not one per failed send (25+ of them).
    let warnings = stderr.matches("WARN").count();
    assert!((1..=2).contains(&warnings), "{warnings} warnings: {stderr}");
}

#[test]
fn a_stalled_manager_does_not_block_the_executor() {
    const TEST: &str = "a_stalled_manager_does_not_block_the_executor";
    if is_child() {
        child_logger();
        let started = Instant::now();
        // 2 ms extensions: a message a millisecond, which fills the manager's queue
        // (`net.unix.max_dgram_qlen`, 10 by default) long before 300 ms are up. The
        // sends then wait for room, on the blocking pool, not on this thread.
        let answer = block_on_bounded(systemd::extend_timeout_while(
            Duration::from_millis(2),
            async {
                Timer::after(Duration::from_millis(300)).await;
                "done"
            },
        ));
        assert_eq!(answer, "done");
        return say(&format!("child: done in {:?}", started.elapsed()));
    }
    // The manager never reads.
    let manager = Manager::bind("stalled");
    let (stdout, _) = assert_child_passed(Process::spawn(
        child_command(TEST).env("NOTIFY_SOCKET", &manager.path),
        STEP,
    ));
    assert!(
        stdout.iter().any(|l| l.contains("child: done in")),
        "{stdout:#?}"
    );
    // The queue did fill: the child sent more than it could hold (about 300 messages
    // in 300 ms), so its sends did wait for room while its drain went on.
    let queued = manager.queued();
    let limit: Option<usize> = std::fs::read_to_string("/proc/sys/net/unix/max_dgram_qlen")
        .ok()
        .and_then(|n| n.trim().parse().ok());
    if let Some(limit) = limit.filter(|&limit| limit < 100) {
        assert!(
            queued.len() >= limit,
            "{} queued: {queued:#?}",
            queued.len()
        );
    }
    assert!(
        queued.iter().all(|m| m == "EXTEND_TIMEOUT_USEC=2000"),
        "{queued:#?}"
    );
}
