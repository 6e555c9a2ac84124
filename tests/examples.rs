//! The `workers`, `any_executor` and `phased_shutdown` examples, run as subprocesses: their exit codes and
//! what they print. (`examples/http_server.rs` has its own tests.)
//!
//! Every run is bounded, and a child still running when a check fails is killed.

#![cfg(all(unix, feature = "smol", feature = "signal"))]

mod common;

use std::process::{Command, ExitStatus};
use std::time::Duration;

use common::subprocess::{broken_pipe, dev_full, Examples, Process};

/// How long an example may run (or a step may take) before the test gives up.
const LIMIT: Duration = Duration::from_secs(20);

static EXAMPLES: Examples = Examples::new(&["workers", "any_executor", "phased_shutdown"]);

/// The command that runs `example`.
fn example_command(example: &str) -> Command {
    Command::new(EXAMPLES.binary(example))
}

/// Starts `command`; a child still running when a check fails is killed.
fn start(command: &mut Command) -> Process {
    Process::spawn(command, LIMIT)
}

/// Runs `command` to the end (bounded) and returns its status, stdout lines and stderr.
fn run(command: &mut Command) -> (ExitStatus, Vec<String>, String) {
    start(command).finish(LIMIT)
}

/// The index of the first line of `stdout` starting with `prefix`.
fn line_index(stdout: &[String], prefix: &str) -> usize {
    stdout
        .iter()
        .position(|line| line.starts_with(prefix))
        .unwrap_or_else(|| panic!("no line starting with {prefix:?} in {stdout:#?}"))
}

/// The number in `line` right after `before` (`"stopped after "` in
/// `"worker 0: stopped after 7 jobs"`).
fn number_after(line: &str, before: &str) -> u64 {
    let start = line
        .find(before)
        .unwrap_or_else(|| panic!("{before:?} in {line:?}"));
    let digits: String = line[start + before.len()..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits
        .parse()
        .unwrap_or_else(|e| panic!("a number in {line:?}: {e}"))
}

/// The checks common to every clean `workers` run: each worker stopped, the final flush
/// came after all of them and accounts for every job they did, and the drain ended.
fn assert_workers_stopped_and_flushed(stdout: &[String]) {
    let position = |prefix: &str| line_index(stdout, prefix);
    let final_flush = position("flush (final):");
    let mut jobs = 0;
    for id in 0..4 {
        let stopped = position(&format!("worker {id}: stopped after "));
        assert!(stopped < final_flush, "{stdout:#?}");
        jobs += number_after(&stdout[stopped], "stopped after ");
    }
    assert!(jobs > 0, "no work was done: {stdout:#?}");
    // `flush (final): 3 jobs (66 ms busy), 32 in all; ...`
    let total = number_after(&stdout[final_flush], "busy), ");
    assert_eq!(total, jobs, "the final flush missed jobs: {stdout:#?}");
    assert!(position("drained in ") > final_flush, "{stdout:#?}");
}

#[test]
fn workers_example_stops_after_run_ms_drains_and_exits_0() {
    let (status, stdout, stderr) = run(example_command("workers")
        .env("RUN_MS", "200")
        .env_remove("GRACE_MS"));
    assert_eq!(
        status.code(),
        Some(0),
        "stdout {stdout:#?}, stderr: {stderr}"
    );
    assert!(stdout[0].starts_with("running 5 tasks"), "{stdout:#?}");
    let shutdown = stdout
        .iter()
        .find(|line| line.starts_with("shutdown:"))
        .expect("a shutdown line");
    assert!(shutdown.starts_with("shutdown: requested"), "{shutdown}");
    // The grace it prints is `serve::run`'s default, the one that bounds the drain.
    assert!(shutdown.ends_with("(grace 10000 ms)"), "{shutdown}");
    assert_workers_stopped_and_flushed(&stdout);
}

#[test]
fn workers_example_drains_on_sigint_and_exits_0() {
    let example = start(example_command("workers").env_remove("RUN_MS"));
    let running = example.expect_line("running ");
    assert!(running.contains("press Ctrl-C"), "{running}");
    example.signal("INT");
    let shutdown = example.expect_line("shutdown:");
    assert!(
        shutdown.starts_with("shutdown: signal SIGINT"),
        "{shutdown}"
    );
    let (status, rest, stderr) = example.finish(LIMIT);
    assert_eq!(status.code(), Some(0), "stdout {rest:#?}, stderr: {stderr}");
    assert!(
        stderr.contains("SIGINT") || stderr.contains("Int"),
        "{stderr}"
    );
    assert!(
        rest.iter().any(|l| l.starts_with("drained in ")),
        "{rest:#?}"
    );
}

#[test]
fn workers_example_names_a_stubborn_worker_and_exits_1() {
    let (status, stdout, stderr) = run(example_command("workers")
        .arg("--stubborn")
        .env("RUN_MS", "100")
        .env("GRACE_MS", "300"));
    assert_eq!(
        status.code(),
        Some(1),
        "stdout {stdout:#?}, stderr: {stderr}"
    );
    let gave_up = line_index(&stdout, "gave up after 300 ms");
    let report = stdout[gave_up..].join("\n");
    assert!(report.contains("1 task still running"), "{report}");
    assert!(report.contains("stubborn worker"), "{report}");
    // `serve::run` logged the same straggler on stderr.
    assert!(
        stderr.contains("gave up after 300 ms") && stderr.contains("stubborn worker"),
        "{stderr}"
    );
    // The well-behaved workers still stopped, and the flusher still flushed.
    assert!(
        stdout.iter().any(|l| l.starts_with("flush (final):")),
        "{stdout:#?}"
    );
    for id in 0..4 {
        let stopped = format!("worker {id}: stopped after ");
        assert!(
            stdout.iter().any(|l| l.starts_with(&stopped)),
            "{stdout:#?}"
        );
    }
}

#[test]
fn workers_example_exits_130_on_a_second_sigint_during_the_drain() {
    // The stubborn worker keeps the drain going (GRACE_MS 10 s) until the second signal.
    let mut example = start(
        example_command("workers")
            .arg("--stubborn")
            .env_remove("RUN_MS")
            .env("GRACE_MS", "10000"),
    );
    example.expect_line("running 6 tasks");
    example.signal("INT");
    // The drain has begun once the flusher has flushed a last time (its line and
    // the service's `shutdown:` line come from two tasks, in either order).
    example.expect_line("flush (final):");
    example.signal("INT");
    let status = example.wait_exit(LIMIT);
    assert_eq!(status.code(), Some(130), "{status}");
}

#[test]
fn workers_example_rejects_a_bad_run_ms_with_exit_2() {
    let (status, stdout, stderr) = run(example_command("workers").env("RUN_MS", "soon"));
    assert_eq!(
        status.code(),
        Some(2),
        "stdout {stdout:#?}, stderr: {stderr}"
    );
    assert!(stderr.contains("RUN_MS"), "{stderr}");
}

#[test]
fn any_executor_example_drains_tasks_from_every_runtime_and_exits_0() {
    let (status, stdout, stderr) = run(&mut example_command("any_executor"));
    assert_eq!(
        status.code(),
        Some(0),
        "stdout {stdout:#?}, stderr: {stderr}"
    );
    let line = |prefix: &str| line_index(&stdout, prefix);
    let counted = line("5 tasks running under 4 runtimes");
    assert!(
        stdout[counted].contains(r#"named: ["plain thread"]"#),
        "{stdout:#?}"
    );
    let all_done = line("all 5 tasks finished");
    for (task, thread) in [
        ("smol executor #0", "smol-executor-"),
        ("smol executor #1", "smol-executor-"),
        ("local executor", "local-executor"),
        ("plain thread", "plain"),
        ("tokio", "tokio-worker"),
    ] {
        let running = line(&format!("{task}: running on thread {thread}"));
        assert!(running < counted, "{stdout:#?}");
        // Each task stopped after the trigger, and before the single wait returned.
        let stopped = line(&format!("{task}: stopped after "));
        assert!(counted < stopped && stopped < all_done, "{stdout:#?}");
    }
}

#[test]
fn workers_example_drains_on_sigint_with_stderr_on_dev_full_or_a_broken_pipe() {
    for (what, stderr) in [("/dev/full", dev_full()), ("a broken pipe", broken_pipe())] {
        // Debug logging, so that the logger has something to write at every step.
        let mut command = example_command("workers");
        command.env_remove("RUN_MS").env("RUST_LOG", "debug");
        let example = Process::spawn_redirected(&mut command, None, Some(stderr), LIMIT);
        example.expect_line("running ");
        example.signal("INT");
        example.expect_line("shutdown: signal SIGINT");
        let (status, rest, _) = example.finish(LIMIT);
        assert_eq!(status.code(), Some(0), "{what}: {status}; stdout {rest:#?}");
        assert!(
            rest.iter().any(|l| l.starts_with("drained in ")),
            "{what}: {rest:#?}"
        );
    }
}

#[test]
fn workers_example_rejects_a_bad_run_ms_with_exit_2_even_with_stderr_on_dev_full() {
    let mut command = example_command("workers");
    command.env("RUN_MS", "soon");
    let mut example = Process::spawn_redirected(&mut command, None, Some(dev_full()), LIMIT);
    let status = example.wait_exit(LIMIT);
    assert_eq!(status.code(), Some(2), "{status}");
}

#[test]
fn examples_run_to_a_clean_exit_with_stdout_on_dev_full() {
    for example in ["workers", "any_executor", "phased_shutdown"] {
        let mut command = example_command(example);
        command.env("RUN_MS", "200").env_remove("GRACE_MS");
        let (status, _, stderr) =
            Process::spawn_redirected(&mut command, Some(dev_full()), None, LIMIT).finish(LIMIT);
        assert_eq!(
            status.code(),
            Some(0),
            "{example}: {status}; stderr: {stderr}"
        );
    }
}
