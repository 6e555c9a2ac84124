//! Upgrades that neither refuse nor queue a connection: `examples/http_server.rs`, built
//! with `--features upgrade`, hands its listening socket to a successor on SIGHUP.
//!
//! The test installs the example as a file of its own (`Install`), so that it can
//! replace it, as a deployment replaces a binary, with a successor that fails. It makes
//! itself a child subreaper, so that an old instance's successor, orphaned when the old
//! one exits, becomes its child: then it can wait for every instance's exit status.
//!
//! [`five_upgrades_under_load_lose_nothing_and_wait_for_no_drain`] upgrades five times
//! under continuous load, a long request in flight at every upgrade, then restarts the
//! socket-activated way (`tests/restart.rs`) five times under the same load and long
//! request, and prints the latency of the requests made while an old instance drained
//! in each (on stderr, uncaptured). The other tests check the failures: a successor that
//! exits at start or never says ready, two upgrades at once, a SIGHUP storm, SIGTERM
//! during an upgrade.
//!
//! Linux only (the subreaper, `/proc`); every wait is bounded, and every instance is
//! killed when a test ends early.

#![cfg(all(target_os = "linux", feature = "smol", feature = "signal"))]

mod common;

use std::io::{self, Write as _};
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, Once};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use common::http::{
    activated_command, example_binary, example_binary_with_features, listening_addr, Server, STEP,
};
use common::load::{connect, ms, percentile, request, Load, Tally};
use common::notify::Manager;
use common::subprocess::{send_signal, Process};

/// The long request in flight at every upgrade and restart.
const LONG_MS: u64 = 3000;
/// How many upgrades (and restarts) in a row, and how long each instance serves first.
const ROUNDS: usize = 5;
const LIFETIME: Duration = Duration::from_millis(500);

/// Makes this process the reaper of its orphaned descendants (`PR_SET_CHILD_SUBREAPER`).
fn become_subreaper() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // SAFETY: `prctl(PR_SET_CHILD_SUBREAPER, 1)` takes integers only and changes only
        // which process adopts this one's orphans.
        let result = unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) };
        assert_eq!(result, 0, "prctl: {}", io::Error::last_os_error());
    });
}

/// Waits for process `pid` (a child of this one, adopted or not) to exit within `limit`
/// and reaps it; returns its exit code, or 128 + the signal that killed it. Kills it and
/// panics past `limit`.
fn wait_pid(pid: u32, limit: Duration) -> i32 {
    let deadline = Instant::now() + limit;
    let pid = i32::try_from(pid).expect("pid");
    loop {
        let mut status = 0;
        // SAFETY: `waitpid` writes only to `status`, a local.
        let reaped = unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) };
        assert!(
            reaped != -1,
            "waitpid({pid}): {}",
            io::Error::last_os_error()
        );
        if reaped == pid {
            if libc::WIFEXITED(status) {
                return libc::WEXITSTATUS(status);
            }
            return 128 + libc::WTERMSIG(status);
        }
        if Instant::now() >= deadline {
            send_signal(pid as u32, "KILL");
            panic!("process {pid} did not exit within {limit:?}");
        }
        thread::sleep(Duration::from_millis(5));
    }
}

/// True while process `pid` exists (a zombie counts).
fn exists(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

/// Instances to kill (SIGKILL) when the test ends, passed or failed.
#[derive(Default)]
struct Instances(Mutex<Vec<u32>>);

impl Instances {
    fn add(&self, pid: u32) {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).push(pid);
    }
}

impl Drop for Instances {
    fn drop(&mut self) {
        for &pid in self.0.lock().unwrap_or_else(|e| e.into_inner()).iter() {
            if exists(pid) {
                let _ = Command::new("kill")
                    .args(["-KILL", &pid.to_string()])
                    .status();
            }
        }
    }
}

/// The example, built with `--features upgrade`, copied to a file of its own that the
/// test may replace; and the instances started from it, killed when the test ends.
struct Install {
    dir: PathBuf,
    path: PathBuf,
    /// Every instance started and successor seen: `start` adds the ones it starts.
    instances: Instances,
}

impl Install {
    fn new(test: &str) -> Install {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("upgrade-{test}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create the install directory");
        let install = Install {
            path: dir.join("server"),
            dir,
            instances: Instances::default(),
        };
        install.put_example();
        install
    }

    /// Puts the example at the path.
    fn put_example(&self) {
        let example = example_binary_with_features("upgrade");
        self.put(r#"cp "$1" "$2""#, example.as_os_str());
    }

    /// Puts a shell script at the path, as a broken build would be.
    fn put_script(&self, script: &str) {
        self.put(r#"printf '%s' "$1" > "$2""#, script.as_ref());
    }

    /// Writes a staged file with `sh -c write <arg> <staged>`, makes it executable and
    /// renames it to the path. The writing is done by a child process: a file this
    /// process opened for writing could be held open, between fork and exec, by a
    /// command another test thread starts, and executing it would then fail with
    /// "Text file busy".
    fn put(&self, write: &str, arg: &std::ffi::OsStr) {
        let staged = self.dir.join(".staged");
        let status = Command::new("sh")
            .args(["-c", &format!(r#"{write} && chmod 755 "$2""#), "sh"])
            .arg(arg)
            .arg(&staged)
            .status()
            .expect("run sh");
        assert!(status.success(), "writing {}: {status}", staged.display());
        std::fs::rename(&staged, &self.path).expect("install");
    }

    /// Starts what is installed on a free port, with `READY_TIMEOUT_MS` and a 10 s
    /// grace, and adds it to `instances`; returns it with the address it listens on.
    fn start(&self, ready_timeout_ms: u64) -> (Process, SocketAddr) {
        let mut command = Command::new(&self.path);
        self.start_command(command.env_remove("NOTIFY_SOCKET"), ready_timeout_ms)
    }

    /// [`Install::start`] with `command`, a command for the path with settings of its
    /// own.
    fn start_command(&self, command: &mut Command, ready_timeout_ms: u64) -> (Process, SocketAddr) {
        become_subreaper();
        command
            .arg("127.0.0.1:0")
            .env("GRACE_MS", "10000")
            .env("READY_TIMEOUT_MS", ready_timeout_ms.to_string())
            .env_remove("DRAIN_DELAY_MS")
            .env_remove("HEADER_TIMEOUT_MS")
            .env_remove("LISTEN_FDS");
        let process = Process::spawn(command, STEP);
        self.instances.add(process.pid());
        let addr = listening_addr(&process);
        (process, addr)
    }
}

impl Drop for Install {
    fn drop(&mut self) {
        // `instances` is dropped after this: the instances are killed once their
        // directory is gone, as when each test kept its own list.
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A `GET /slow?ms=LONG_MS` that the instance serving `addr` alone has accepted (it
/// answered a `GET /` on the same connection first), answered on the returned thread.
fn long_request(addr: SocketAddr) -> JoinHandle<Result<(u16, String), String>> {
    let mut conn = connect(addr).unwrap_or_else(|f| panic!("connect: {}", f.error));
    let answer = request(&mut conn, "/", false).unwrap_or_else(|f| panic!("GET /: {}", f.error));
    assert_eq!(answer.status, 200);
    thread::spawn(move || {
        let answer =
            request(&mut conn, &format!("/slow?ms={LONG_MS}"), false).map_err(|f| f.error)?;
        Ok((answer.status, answer.body))
    })
}

/// Checks that a [`long_request`] was answered in full.
fn assert_answered(long: JoinHandle<Result<(u16, String), String>>, what: &str) {
    let deadline = Instant::now() + STEP + Duration::from_millis(LONG_MS);
    while !long.is_finished() {
        assert!(Instant::now() < deadline, "{what}: the long request hangs");
        thread::sleep(Duration::from_millis(5));
    }
    let answer = long.join().expect("the long request's thread");
    assert_eq!(
        answer,
        Ok((200, format!("slept {LONG_MS} ms\n"))),
        "{what}: the long request"
    );
}

/// The pid in an `upgraded: pid N serves now` line.
fn upgraded_pid(line: &str) -> u32 {
    let rest = line
        .strip_prefix("upgraded: pid ")
        .expect("an upgraded line");
    rest.split(' ')
        .next()
        .and_then(|pid| pid.parse().ok())
        .expect("a pid")
}

/// The pid in a message that names `(pid N)`.
fn named_pid(line: &str) -> u32 {
    let (_, rest) = line
        .split_once("(pid ")
        .unwrap_or_else(|| panic!("no pid in {line:?}"));
    rest.split(')')
        .next()
        .and_then(|pid| pid.parse().ok())
        .expect("a pid")
}

/// What the load saw, in total and while an old instance drained (requests started
/// within one of `windows`).
struct Figures {
    served: usize,
    retries: usize,
    lost: Vec<String>,
    during: Vec<Duration>,
}

impl Figures {
    fn new(tallies: &[Tally], windows: &[(Instant, Instant)]) -> Figures {
        let mut during: Vec<Duration> = tallies
            .iter()
            .flat_map(|t| &t.latencies)
            .filter(|(started, _)| {
                windows
                    .iter()
                    .any(|(from, to)| from <= started && started <= to)
            })
            .map(|&(_, latency)| latency)
            .collect();
        during.sort_unstable();
        Figures {
            served: tallies.iter().map(|t| t.served).sum(),
            retries: tallies.iter().map(|t| t.retries).sum(),
            lost: tallies
                .iter()
                .flat_map(|t| t.lost.iter().cloned())
                .collect(),
            during,
        }
    }

    fn line(&self, what: &str) -> String {
        format!(
            "upgrade test: {what}: {} served, {} lost, {} retried; {} made while an old \
             instance drained: p50 {}, p99 {}, max {}\n",
            self.served,
            self.lost.len(),
            self.retries,
            self.during.len(),
            ms(percentile(&self.during, 50.0)),
            ms(percentile(&self.during, 99.0)),
            ms(self.during.last().copied().unwrap_or_default()),
        )
    }
}

#[test]
fn five_upgrades_under_load_lose_nothing_and_wait_for_no_drain() {
    let install = Install::new("five");
    let (mut first, addr) = install.start(30_000);

    // Five upgrades: each old instance has a long request in flight, exits 0 once it is
    // answered, and meanwhile its successor serves everything new.
    let load = Load::start(addr);
    let (mut current, mut windows) = (first.pid(), Vec::new());
    for round in 0..ROUNDS {
        // Pacing the upgrades, not waiting for a result.
        thread::sleep(LIFETIME);
        let long = long_request(addr);
        send_signal(current, "HUP");
        let next = upgraded_pid(&first.expect_line("upgraded: pid "));
        install.instances.add(next);
        let ready = Instant::now();
        let code = if round == 0 {
            first
                .wait_exit(STEP + Duration::from_millis(LONG_MS))
                .code()
                .unwrap_or(-1)
        } else {
            wait_pid(current, STEP + Duration::from_millis(LONG_MS))
        };
        windows.push((ready, Instant::now()));
        assert_eq!(
            code, 0,
            "upgrade {round}: the old instance {current} exited {code}"
        );
        assert_answered(long, &format!("upgrade {round}"));
        current = next;
    }
    thread::sleep(LIFETIME);
    let upgrades = Figures::new(&load.stop(), &windows);
    send_signal(current, "TERM");
    assert_eq!(wait_pid(current, STEP), 0, "the last instance");

    // The same, restarted the socket-activated way: the test holds the socket, and each
    // new instance starts once the old one has exited.
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("local_addr");
    let activated = |listener: &TcpListener| {
        let mut command = activated_command(&example_binary(), listener, &["192.0.2.1:80"]);
        Server::start_command(command.env("GRACE_MS", "10000"))
    };
    let mut server = activated(&listener);
    let load = Load::start(addr);
    let mut windows = Vec::new();
    for round in 0..ROUNDS {
        thread::sleep(LIFETIME);
        let long = long_request(addr);
        let signalled = Instant::now();
        server.signal("TERM");
        let (status, _, stderr) = server.finish(STEP + Duration::from_millis(LONG_MS));
        assert_eq!(
            status.code(),
            Some(0),
            "restart {round}: {status}; stderr: {stderr}"
        );
        server = activated(&listener);
        windows.push((signalled, Instant::now()));
        assert_answered(long, &format!("restart {round}"));
    }
    thread::sleep(LIFETIME);
    let restarts = Figures::new(&load.stop(), &windows);
    server.signal("TERM");
    let (status, _, stderr) = server.finish(STEP);
    assert_eq!(
        status.code(),
        Some(0),
        "the last instance: {status}; stderr: {stderr}"
    );

    let report = format!(
        "upgrade test: {ROUNDS} upgrades and {ROUNDS} restarts, a {LONG_MS} ms request in \
         flight at each, under {} + {} clients\n{}{}",
        common::load::CLOSING_CLIENTS,
        common::load::KEEP_ALIVE_CLIENTS,
        upgrades.line("upgrades (SIGHUP, successor handed the socket)"),
        restarts.line("restarts (SIGTERM, socket activation)"),
    );
    // Straight to the process's stderr, past the test harness's capture: the numbers
    // are the point of the test.
    let _ = io::stderr().write_all(report.as_bytes());

    assert!(
        upgrades.lost.is_empty(),
        "upgrades lost: {:#?}\n{report}",
        upgrades.lost
    );
    assert!(
        restarts.lost.is_empty(),
        "restarts lost: {:#?}\n{report}",
        restarts.lost
    );
    assert!(
        !upgrades.during.is_empty(),
        "no request made during a drain\n{report}"
    );
    // Not a timing target: a request that had waited for a drain would have taken most
    // of the long request's time; one served by the successor takes milliseconds.
    let slowest = upgrades.during.last().copied().unwrap_or_default();
    assert!(
        slowest < Duration::from_millis(LONG_MS / 2),
        "a request made during an upgrade's drain waited for it\n{report}"
    );
}

#[test]
fn a_successor_that_exits_or_is_never_ready_leaves_the_old_instance_serving() {
    let install = Install::new("failing");
    let (mut old, addr) = install.start(1000);
    let load = Load::start(addr);

    // What a successor inherits: fd 3, a socket, announced the systemd way.
    install.put_script(
        "#!/bin/sh\n\
         echo \"inherited: pid $$ LISTEN_PID=$LISTEN_PID LISTEN_FDS=$LISTEN_FDS \
         LISTEN_FDNAMES=$LISTEN_FDNAMES fd3=$(readlink /proc/$$/fd/3) \
         ready=${SMOL_GRACEFUL_READY_SOCKET:+set}\"\n\
         exit 3\n",
    );
    old.signal("HUP");
    let inherited = old.expect_line("inherited: ");
    let pid = inherited["inherited: pid ".len()..]
        .split(' ')
        .next()
        .unwrap_or_default();
    assert!(
        inherited.contains(&format!(
            "LISTEN_PID={pid} LISTEN_FDS=1 LISTEN_FDNAMES=http fd3=socket:["
        )),
        "{inherited}"
    );
    assert!(inherited.ends_with("ready=set"), "{inherited}");
    let failed = old.expect_line("upgrade failed: ");
    assert!(
        failed.contains("exited before it was ready: exit status: 3"),
        "{failed}"
    );

    // A successor that never says ready, and a second SIGHUP while it starts: one of
    // the two upgrades is refused, the other stops its successor after 1 s.
    install.put_script("#!/bin/sh\nexec sleep 60\n");
    old.signal("HUP");
    old.expect_line("SIGHUP: upgrading");
    old.signal("HUP");
    let outcomes = [
        old.expect_line("upgrade failed: "),
        old.expect_line("upgrade failed: "),
    ];
    let refused = outcomes
        .iter()
        .filter(|l| l.contains("an upgrade is under way already"));
    assert_eq!(refused.count(), 1, "{outcomes:#?}");
    let late = outcomes
        .iter()
        .find(|l| l.contains("was not ready within 1s; stopped it"))
        .unwrap_or_else(|| panic!("{outcomes:#?}"));
    assert!(
        !exists(named_pid(late)),
        "the late successor is still there: {late}"
    );

    // One that ignores SIGTERM too: killed 5 s after it.
    install.put_script("#!/bin/sh\ntrap '' TERM\nexec sleep 60\n");
    old.signal("HUP");
    let late = old.expect_line("upgrade failed: ");
    assert!(
        late.contains("was not ready within 1s; stopped it"),
        "{late}"
    );
    assert!(
        !exists(named_pid(&late)),
        "the stubborn successor is still there: {late}"
    );

    // Still serving, and a good build upgrades.
    install.put_example();
    old.signal("HUP");
    let next = upgraded_pid(&old.expect_line("upgraded: pid "));
    install.instances.add(next);
    let status = old.wait_exit(STEP);
    assert_eq!(status.code(), Some(0), "the old instance: {status}");
    let figures = Figures::new(&load.stop(), &[]);
    assert!(figures.lost.is_empty(), "lost: {:#?}", figures.lost);
    assert!(figures.served > 0);
    send_signal(next, "TERM");
    assert_eq!(wait_pid(next, STEP), 0, "the successor");
}

#[test]
fn under_systemd_the_old_instance_names_the_new_main_pid_after_its_ready() {
    let install = Install::new("systemd");
    let manager = Manager::bind("upgrade-systemd");
    let mut command = Command::new(&install.path);
    command.env("NOTIFY_SOCKET", &manager.path);
    let (mut old, _) = install.start_command(&mut command, 30_000);
    manager.expect("READY=1");
    old.signal("HUP");
    let next = upgraded_pid(&old.expect_line("upgraded: pid "));
    install.instances.add(next);
    let status = old.wait_exit(STEP);
    assert_eq!(status.code(), Some(0), "the old instance: {status}");
    // The successor's READY=1 (NotifyAccess=all), then the old instance's MAINPID=,
    // then its own drain (STOPPING=1 and what follows).
    let messages = manager.queued();
    let ready = messages.iter().position(|m| m == "READY=1");
    let main_pid = messages
        .iter()
        .position(|m| *m == format!("MAINPID={next}"));
    let stopping = messages.iter().position(|m| m == "STOPPING=1");
    match (ready, main_pid, stopping) {
        (Some(ready), Some(main_pid), Some(stopping)) => {
            assert!(ready < main_pid && main_pid < stopping, "{messages:#?}");
        }
        _ => panic!("READY=1, MAINPID={next} and STOPPING=1 expected: {messages:#?}"),
    }
    send_signal(next, "TERM");
    assert_eq!(wait_pid(next, STEP), 0, "the successor");
}

#[test]
fn a_sighup_storm_upgrades_once() {
    let install = Install::new("storm");
    let (mut old, addr) = install.start(30_000);
    let load = Load::start(addr);
    for _ in 0..50 {
        old.signal("HUP");
    }
    let next = upgraded_pid(&old.expect_line("upgraded: pid "));
    install.instances.add(next);
    let status = old.wait_exit(STEP);
    assert_eq!(status.code(), Some(0), "the old instance: {status}");
    let figures = Figures::new(&load.stop(), &[]);
    assert!(figures.lost.is_empty(), "lost: {:#?}", figures.lost);
    send_signal(next, "TERM");
    assert_eq!(wait_pid(next, STEP), 0, "the successor");
    // The successor shared the old instance's stderr: it is closed now.
    let stderr = old.stderr();
    assert_eq!(
        stderr.matches("started the successor").count(),
        1,
        "{stderr}"
    );
}

/// Sends SIGHUP to `old` with `script` installed (a successor that never says ready
/// and ends in `exec sleep`), and waits until the successor sleeps (so that what the
/// script set up before, such as a trap, is in place); adds it to the instances and
/// returns its pid.
fn start_a_successor(install: &Install, old: &Process, script: &str) -> u32 {
    install.put_script(script);
    old.signal("HUP");
    old.expect_line("SIGHUP: upgrading");
    // The successor is the old instance's only child (of whichever of its threads
    // started it).
    let deadline = Instant::now() + STEP;
    loop {
        let tasks = std::fs::read_dir(format!("/proc/{}/task", old.pid())).expect("tasks");
        let children: String = tasks
            .filter_map(|task| std::fs::read_to_string(task.ok()?.path().join("children")).ok())
            .collect();
        if let Some(pid) = children.split_whitespace().next() {
            let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
            if comm == "sleep\n" {
                let pid = pid.parse().expect("a pid");
                install.instances.add(pid);
                return pid;
            }
        }
        assert!(Instant::now() < deadline, "no successor started");
        thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn a_second_sigterm_during_an_upgrade_exits_at_once_and_kills_the_successor() {
    let install = Install::new("second-sigterm");
    let (mut old, addr) = install.start(30_000);
    let _long = long_request(addr);
    // It ignores SIGTERM: the first signal's stop of the upgrade does not end it.
    let successor = start_a_successor(&install, &old, "#!/bin/sh\ntrap '' TERM\nexec sleep 60\n");
    old.signal("TERM");
    old.expect_line("shutdown: ");
    old.signal("TERM");
    let status = old.wait_exit(STEP);
    assert_eq!(status.code(), Some(143), "the old instance: {status}");
    // Orphaned by the exit, the successor is this process's child now: SIGKILL ended it.
    assert_eq!(wait_pid(successor, STEP), 128 + 9, "the successor");
}

#[test]
fn sigterm_during_an_upgrade_drains_the_old_instance_and_stops_the_successor() {
    let install = Install::new("sigterm");
    let (mut old, addr) = install.start(30_000);
    let long = long_request(addr);
    let successor = start_a_successor(&install, &old, "#!/bin/sh\nexec sleep 60\n");
    old.signal("TERM");
    let failed = old.expect_line("upgrade failed: ");
    assert!(
        failed.contains(&format!(
            "the shutdown triggered while the successor (pid {successor}) started"
        )),
        "{failed}"
    );
    assert_answered(long, "the request in flight");
    let status = old.wait_exit(STEP);
    assert_eq!(status.code(), Some(0), "the old instance: {status}");
    assert!(!exists(successor), "the successor outlived the upgrade");
}
