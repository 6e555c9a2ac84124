//! `smol_graceful::upgrade` in process (feature `upgrade`): what its docs promise that
//! needs no successor. The upgrades themselves, with real successors, signals and load,
//! are in `tests/upgrade.rs`.
//!
//! `cargo test --features upgrade --test upgrade_api`.

#![cfg(all(target_os = "linux", feature = "upgrade", feature = "signal"))]

mod common;

use std::io;
use std::net::{TcpListener, TcpStream};
use std::os::unix::net::UnixDatagram;
use std::path::Path;
use std::thread;
use std::time::{Duration, Instant};

use common::subprocess::{child_role, rerun_self_command, Process};
use smol_graceful::upgrade::Upgrade;
use smol_graceful::{systemd, Shutdown};

const STEP: Duration = Duration::from_secs(10);

#[test]
fn listener_names_follow_systemds_rules() {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let long = "x".repeat(256);
    for bad in ["", "a:b", "with space", "tab\t", "é", long.as_str()] {
        let error = Upgrade::new(&Shutdown::new())
            .listener(bad, &listener)
            .expect_err(bad);
        assert_eq!(error.kind(), io::ErrorKind::InvalidInput, "{bad:?}");
        assert!(error.to_string().contains("FileDescriptorName"), "{error}");
    }
    let fine = "x".repeat(255);
    Upgrade::new(&Shutdown::new())
        .listener(fine, &listener)
        .expect("255 characters")
        .listener("https", &listener)
        .expect("a second listener");
}

#[test]
fn no_upgrade_starts_once_the_shutdown_has_triggered() {
    let shutdown = Shutdown::new();
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let upgrade = Upgrade::new(&shutdown)
        .listener("http", &listener)
        .expect("listener");
    shutdown.trigger();
    let error = smol::block_on(upgrade.start()).expect_err("refused");
    assert_eq!(error.kind(), io::ErrorKind::Interrupted, "{error}");
    assert!(
        error.to_string().contains("shutdown has triggered"),
        "{error}"
    );
}

#[test]
fn an_upgrade_without_a_listener_is_refused() {
    let error = smol::block_on(Upgrade::new(&Shutdown::new()).start()).expect_err("refused");
    assert_eq!(error.kind(), io::ErrorKind::InvalidInput, "{error}");
    assert!(error.to_string().contains("no listener"), "{error}");
}

#[test]
fn a_bound_socket_stops_listening_at_shutdown_though_an_upgrade_holds_it() {
    let shutdown = Shutdown::new();
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("local_addr");
    let upgrade = Upgrade::new(&shutdown)
        .listener("http", &listener)
        .expect("listener");
    // The service closes its own listener at shutdown; the upgrade's copy must go too,
    // or new connections would queue on a socket no one accepts on.
    drop(listener);
    TcpStream::connect(addr).expect("the upgrade's copy keeps it listening until then");
    shutdown.trigger();
    let deadline = Instant::now() + STEP;
    loop {
        match TcpStream::connect(addr) {
            Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => break,
            _ => assert!(
                Instant::now() < deadline,
                "still listening after the trigger"
            ),
        }
        thread::sleep(Duration::from_millis(5));
    }
    drop(upgrade);
}

/// In the child: `systemd::ready()`, twice, as a successor calls it.
fn ready_child() {
    say(&format!(
        "first: {:?}",
        systemd::ready().map_err(|e| e.to_string())
    ));
    say(&format!(
        "second: {:?}",
        systemd::ready().map_err(|e| e.to_string())
    ));
}

fn say(line: &str) {
    use std::io::Write as _;
    let mut stdout = io::stdout().lock();
    let _ = writeln!(stdout, "{line}").and_then(|()| stdout.flush());
}

/// This test binary re-run as a successor would be: only `test`, in the `ready` role,
/// with `SMOL_GRACEFUL_READY_SOCKET` set to `path` and no `NOTIFY_SOCKET`.
fn successor(test: &str, path: &Path) -> Process {
    Process::spawn(
        rerun_self_command(test, "ready")
            .env("SMOL_GRACEFUL_READY_SOCKET", path)
            .env_remove("NOTIFY_SOCKET"),
        STEP,
    )
}

#[test]
fn ready_tells_the_instance_that_started_this_one_once() {
    if child_role().is_some() {
        return ready_child();
    }
    let dir = std::env::temp_dir().join(format!("upgrade-api-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir(&dir).expect("mkdir");
    let path = dir.join("ready");
    let socket = UnixDatagram::bind(&path).expect("bind");
    socket.set_read_timeout(Some(STEP)).expect("timeout");

    let mut child = successor("ready_tells_the_instance_that_started_this_one_once", &path);
    // The harness may print `test NAME ...` on the same line first.
    child.expect_line_containing("first: Ok(())");
    child.expect_line_containing("second: Ok(())");
    let mut buffer = [0; 64];
    let n = socket.recv(&mut buffer).expect("READY=1");
    assert_eq!(&buffer[..n], b"READY=1");
    socket
        .set_read_timeout(Some(Duration::from_millis(200)))
        .expect("timeout");
    assert!(socket.recv(&mut buffer).is_err(), "a second READY=1");
    let status = child.wait_exit(STEP);
    assert!(status.success(), "{status}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn ready_says_when_the_previous_instance_is_gone() {
    if child_role().is_some() {
        return ready_child();
    }
    let gone = std::env::temp_dir().join(format!("upgrade-api-gone-{}/ready", std::process::id()));
    let mut child = successor("ready_says_when_the_previous_instance_is_gone", &gone);
    let first = child.expect_line_containing("first: ");
    assert!(
        first.contains("Err(\"upgrade: cannot report READY=1 to the previous instance at"),
        "{first}"
    );
    // Reported once, failed or not.
    child.expect_line_containing("second: Ok(())");
    let status = child.wait_exit(STEP);
    assert!(status.success(), "{status}");
}
