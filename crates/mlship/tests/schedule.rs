//! `mlship schedule` and `mlship scheduler`: a schedule added to mlship.toml runs when its cron
//! time comes (on a clock the test starts a second before 03:00), is recorded with its exit code,
//! a run over its timeout is stopped, a failing one is retried, and SIGTERM stops the scheduler
//! cleanly. Bad schedules are refused naming the field.

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

mod common;

use common::stdout_ok as ok;

fn mlship(dir: &Path, home: &Path, args: &[&str]) -> Output {
    common::mlship_in(dir, args, &[("MLSHIP_HOME", home.as_os_str())])
}

fn history(dir: &Path, home: &Path, name: &str) -> Vec<serde_json::Value> {
    let text = ok(mlship(dir, home, &["schedule", "history", name, "--json"]));
    serde_json::from_str::<serde_json::Value>(&text)
        .unwrap()
        .as_array()
        .unwrap()
        .clone()
}

/// Runs `mlship scheduler` with its clock started at `clock` until `until` holds, then stops it
/// with SIGTERM; it must exit cleanly.
fn scheduler(dir: &Path, home: &Path, clock: &str, until: &dyn Fn() -> bool) {
    let mut s = Command::new(env!("CARGO_BIN_EXE_mlship"))
        .args(["scheduler", "--clock-start", clock])
        .current_dir(dir)
        .env("MLSHIP_HOME", home)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let started = Instant::now();
    while !until() {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the schedules never ran"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let _ = Command::new("kill")
        .args(["-TERM", &s.id().to_string()])
        .status();
    let status = s.wait().unwrap();
    assert!(
        status.success(),
        "the scheduler did not stop cleanly: {status}"
    );
}

#[test]
fn a_schedule_runs_on_time_is_recorded_and_the_scheduler_stops_on_sigterm() {
    let t = tempfile::tempdir().unwrap();
    let (dir, home) = (t.path().join("project"), t.path().join("home"));
    std::fs::create_dir_all(&dir).unwrap();
    ok(mlship(
        &dir,
        &home,
        &[
            "schedule",
            "add",
            "nightly",
            "--cron",
            "0 3 * * *",
            "--",
            "sh",
            "-c",
            "echo trained >> runs.txt",
        ],
    ));
    ok(mlship(
        &dir,
        &home,
        &[
            "schedule",
            "add",
            "slow",
            "--cron",
            "0 3 * * *",
            "--timeout-secs",
            "1",
            "--",
            "sleep",
            "30",
        ],
    ));
    ok(mlship(
        &dir,
        &home,
        &[
            "schedule",
            "add",
            "flaky",
            "--cron",
            "0 3 * * *",
            "--retries",
            "2",
            "--",
            "sh",
            "-c",
            "echo try >> tries.txt; exit 4",
        ],
    ));
    let listed = ok(mlship(&dir, &home, &["schedule", "list"]));
    assert!(
        listed.contains("nightly\t0 3 * * *\tUTC\tnext "),
        "{listed}"
    );
    scheduler(&dir, &home, "2026-01-01T02:59:58Z", &|| {
        !history(&dir, &home, "slow").is_empty() && !history(&dir, &home, "flaky").is_empty()
    });
    assert_eq!(
        std::fs::read_to_string(dir.join("runs.txt")).unwrap(),
        "trained\n",
        "one run, not two"
    );
    let nightly = history(&dir, &home, "nightly");
    assert_eq!(nightly.len(), 1, "{nightly:?}");
    assert_eq!(nightly[0]["scheduled_for"], "2026-01-01T03:00:00+00:00");
    assert_eq!(nightly[0]["status"], "ok");
    assert_eq!(nightly[0]["exit_code"], 0);
    let slow = history(&dir, &home, "slow");
    assert_eq!(slow[0]["status"], "timeout", "{slow:?}");
    let flaky = history(&dir, &home, "flaky");
    assert_eq!(
        (
            flaky[0]["status"].as_str(),
            flaky[0]["exit_code"].as_i64(),
            flaky[0]["attempts"].as_u64()
        ),
        (Some("failed"), Some(4), Some(3))
    );
    assert_eq!(
        std::fs::read_to_string(dir.join("tries.txt"))
            .unwrap()
            .lines()
            .count(),
        3
    );
    let table = ok(mlship(&dir, &home, &["schedule", "history", "nightly"]));
    assert!(
        table.contains("2026-01-01T03:00:00+00:00  ok  exit 0"),
        "{table}"
    );
}

#[test]
fn bad_schedules_are_refused_naming_the_field() {
    let t = tempfile::tempdir().unwrap();
    let (dir, home) = (t.path().to_path_buf(), t.path().join("home"));
    for (args, needle) in [
        (vec!["--cron", "every day"], "five"),
        (vec!["--cron", "61 * * * *"], "minute"),
        (
            vec!["--cron", "0 3 * * *", "--timezone", "Mars/Olympus"],
            "time zone",
        ),
    ] {
        let mut all = vec!["schedule", "add", "x"];
        all.extend(args);
        all.extend(["--", "true"]);
        let o = mlship(&dir, &home, &all);
        assert_eq!(o.status.code(), Some(1));
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.contains(needle) && err.contains("hint:"), "{err}");
    }
    ok(mlship(
        &dir,
        &home,
        &["schedule", "add", "x", "--cron", "0 3 * * *", "--", "true"],
    ));
    let o = mlship(
        &dir,
        &home,
        &["schedule", "add", "x", "--cron", "0 4 * * *", "--", "true"],
    );
    assert!(String::from_utf8_lossy(&o.stderr).contains("already"));
    std::fs::write(dir.join("empty.toml"), "").unwrap();
    let o = mlship(&dir, &home, &["scheduler", "--config", "empty.toml"]);
    assert!(String::from_utf8_lossy(&o.stderr).contains("no [[schedule]]"));
}

/// A run that fell due while the scheduler was down runs once at start with `missed = "run-once"`,
/// and waits for its next time with the default `skip`.
#[test]
fn a_missed_run_is_caught_up_once_or_skipped() {
    let t = tempfile::tempdir().unwrap();
    let (dir, home) = (t.path().join("project"), t.path().join("home"));
    std::fs::create_dir_all(&dir).unwrap();
    ok(mlship(
        &dir,
        &home,
        &[
            "schedule",
            "add",
            "catchup",
            "--cron",
            "0 3 * * *",
            "--missed",
            "run-once",
            "--",
            "true",
        ],
    ));
    ok(mlship(
        &dir,
        &home,
        &[
            "schedule",
            "add",
            "skipper",
            "--cron",
            "0 3 * * *",
            "--",
            "true",
        ],
    ));
    // Both run at 03:00 on the 1st.
    scheduler(&dir, &home, "2026-01-01T02:59:58Z", &|| {
        history(&dir, &home, "catchup").len() == 1 && history(&dir, &home, "skipper").len() == 1
    });
    // Down over the 2nd's 03:00: back at 05:00, only `catchup` runs at once, for that time.
    scheduler(&dir, &home, "2026-01-02T05:00:00Z", &|| {
        history(&dir, &home, "catchup").len() == 2
    });
    let caught = history(&dir, &home, "catchup");
    assert_eq!(caught[1]["scheduled_for"], "2026-01-02T03:00:00+00:00");
    assert_eq!(
        history(&dir, &home, "skipper").len(),
        1,
        "a skipped run ran"
    );
}
