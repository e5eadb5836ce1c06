//! Schedules: `[[schedule]]` entries of `mlship.toml` (`mlship schedule add|list|history`) and
//! `mlship scheduler`, the long-running process that runs them: each schedule on its own task,
//! never overlapping itself, with a timeout and retries, every run recorded (start, end, exit
//! code, the output's tail) in `HOME/schedules/NAME.jsonl`, and a clean stop on SIGTERM.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde_json::{Value as Json, json};

use crate::config::{Missed, ScheduleConfig};
use crate::settings::Settings;
use crate::user;

/// The time: the wall clock, or one the caller started elsewhere (`--clock-start`), which then
/// runs at the wall clock's speed.
#[derive(Clone, Copy)]
struct Clock {
    offset: chrono::Duration,
}

impl Clock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now() + self.offset
    }
}

fn history_file(settings: &Settings, name: &str) -> PathBuf {
    settings
        .home
        .join("schedules")
        .join(format!("{name}.jsonl"))
}

fn read_config(path: &Path) -> anyhow::Result<Vec<ScheduleConfig>> {
    if !path.exists() {
        return Ok(Vec::new());
    }
    Ok(crate::config::read(path)?.schedule)
}

/// `mlship schedule add`: appends a `[[schedule]]` block to the config (kept as written).
#[allow(clippy::too_many_arguments)]
pub fn add(
    config: &Path,
    name: &str,
    cron: &str,
    timezone: &str,
    missed: Missed,
    timeout_secs: Option<u64>,
    retries: u32,
    command: &[String],
) -> anyhow::Result<()> {
    let s = ScheduleConfig {
        name: name.into(),
        cron: cron.into(),
        timezone: timezone.into(),
        command: command.to_vec(),
        missed,
        timeout_secs,
        retries,
    };
    s.check()?;
    if read_config(config)?.iter().any(|x| x.name == name) {
        return Err(user(
            format!(
                "a schedule named `{name}` is in {} already",
                config.display()
            ),
            "edit its [[schedule]] block, or pick another name",
        ));
    }
    let q = |v: &str| toml::Value::String(v.into()).to_string();
    let mut block = format!(
        "\n[[schedule]]\nname = {}\ncron = {}\ntimezone = {}\ncommand = [{}]\n",
        q(name),
        q(cron),
        q(timezone),
        command.iter().map(|c| q(c)).collect::<Vec<_>>().join(", ")
    );
    if missed == Missed::RunOnce {
        block.push_str("missed = \"run-once\"\n");
    }
    if let Some(t) = timeout_secs {
        block.push_str(&format!("timeout_secs = {t}\n"));
    }
    if retries > 0 {
        block.push_str(&format!("retries = {retries}\n"));
    }
    let mut text = std::fs::read_to_string(config).unwrap_or_default();
    text.push_str(&block);
    // Checked whole before it replaces the file.
    toml::from_str::<toml::Table>(&text)
        .map_err(|e| user(format!("the new config does not parse: {e}"), "report this"))?;
    mlship_data::repo::write_atomic(config, text.as_bytes())
        .map_err(|e| user(e.to_string(), "check that the folder is writable"))?;
    crate::outln!("added schedule `{name}` to {}", config.display());
    Ok(())
}

/// `mlship schedule list`: each schedule and when it next runs.
pub fn list(config: &Path) -> anyhow::Result<()> {
    let now = Utc::now();
    for s in read_config(config)? {
        let (cron, tz) = s.check()?;
        let next = cron
            .next_after(now, tz)
            .map(|t| t.with_timezone(&tz).to_rfc3339())
            .unwrap_or_else(|| "never".into());
        crate::outln!(
            "{}\t{}\t{}\tnext {next}\t{}",
            s.name,
            s.cron,
            s.timezone,
            s.command.join(" ")
        );
    }
    Ok(())
}

/// `mlship schedule history NAME`: the recorded runs, oldest first.
pub fn history(settings: &Settings, name: &str, json_out: bool) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(history_file(settings, name)).unwrap_or_default();
    let runs: Vec<Json> = text
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    if json_out {
        crate::outln!("{}", Json::Array(runs));
        return Ok(());
    }
    if runs.is_empty() {
        crate::outln!("no runs of `{name}` recorded");
    }
    for r in runs {
        crate::outln!(
            "{}  {}  exit {}  attempts {}  ({} to {})",
            r["scheduled_for"].as_str().unwrap_or(""),
            r["status"].as_str().unwrap_or(""),
            r["exit_code"],
            r["attempts"],
            r["started"].as_str().unwrap_or(""),
            r["ended"].as_str().unwrap_or("")
        );
    }
    Ok(())
}

/// Appends one run to the schedule's history (one JSON line, one write).
fn record(settings: &Settings, name: &str, run: &Json) -> anyhow::Result<()> {
    use std::io::Write;
    let p = history_file(settings, name);
    if let Some(d) = p.parent() {
        std::fs::create_dir_all(d)?;
    }
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&p)?;
    f.write_all(format!("{run}\n").as_bytes())?;
    Ok(())
}

/// The last time a schedule was due, from its history.
fn last_due(settings: &Settings, name: &str) -> Option<DateTime<Utc>> {
    let text = std::fs::read_to_string(history_file(settings, name)).ok()?;
    text.lines()
        .rev()
        .filter_map(|l| serde_json::from_str::<Json>(l).ok())
        .find_map(|r| {
            r["scheduled_for"]
                .as_str()
                .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
                .map(|t| t.with_timezone(&Utc))
        })
}

/// The last bytes of a command's output, for the history.
fn tail(b: &[u8]) -> String {
    let s = String::from_utf8_lossy(b);
    let cut = s.len().saturating_sub(4096);
    let cut = (cut..s.len())
        .find(|&i| s.is_char_boundary(i))
        .unwrap_or(s.len());
    s[cut..].to_string()
}

/// One due run: tried up to `retries + 1` times, each stopped at the timeout.
async fn run_once(
    settings: &Settings,
    s: &ScheduleConfig,
    due: DateTime<Utc>,
    clock: Clock,
    stop: &tokio::sync::watch::Receiver<bool>,
) -> anyhow::Result<()> {
    let started = clock.now();
    let mut attempts = 0;
    let (mut status, mut code, mut output) = ("failed", None, String::new());
    while attempts <= s.retries {
        attempts += 1;
        tracing::info!(schedule = %s.name, due = %due.to_rfc3339(), attempt = attempts, "schedule run starting");
        let child = tokio::process::Command::new(&s.command[0])
            .args(&s.command[1..])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn();
        let child = match child {
            Ok(c) => c,
            Err(e) => {
                output = format!("cannot start {}: {e}", s.command[0]);
                break;
            }
        };
        let waited = child.wait_with_output();
        let limit = s
            .timeout_secs
            .map_or(std::time::Duration::MAX, std::time::Duration::from_secs);
        let mut stop = stop.clone();
        tokio::select! {
            r = tokio::time::timeout(limit, waited) => match r {
                Ok(Ok(out)) => {
                    code = out.status.code();
                    let mut all = out.stdout;
                    all.extend_from_slice(&out.stderr);
                    output = tail(&all);
                    status = if out.status.success() { "ok" } else { "failed" };
                }
                Ok(Err(e)) => output = e.to_string(),
                Err(_) => {
                    status = "timeout";
                    code = None;
                    output = format!("stopped after {} s", s.timeout_secs.unwrap_or(0));
                }
            },
            _ = stop.wait_for(|v| *v) => {
                status = "terminated";
                code = None;
                output = "the scheduler was stopped".into();
                attempts = s.retries + 1;
            }
        }
        if status == "ok" || status == "terminated" {
            break;
        }
    }
    let run = json!({
        "schedule": s.name,
        "scheduled_for": due.to_rfc3339(),
        "started": started.to_rfc3339(),
        "ended": clock.now().to_rfc3339(),
        "status": status,
        "exit_code": code,
        "attempts": attempts,
        "output": output,
    });
    tracing::info!(schedule = %s.name, status, exit_code = ?code, attempts, "schedule run finished");
    record(settings, &s.name, &run)
}

/// `mlship scheduler`: runs every schedule of the config until SIGTERM or Ctrl-C.
pub fn scheduler(
    settings: &Settings,
    config: &Path,
    clock_start: Option<&str>,
) -> anyhow::Result<()> {
    let schedules = read_config(config)?;
    if schedules.is_empty() {
        return Err(user(
            format!("{} has no [[schedule]]", config.display()),
            "`mlship schedule add NAME --cron \"0 3 * * *\" -- mlship run` adds one",
        ));
    }
    let clock = Clock {
        offset: match clock_start {
            Some(t) => {
                let t = DateTime::parse_from_rfc3339(t).map_err(|e| {
                    user(
                        format!("--clock-start {t}: {e}"),
                        "an RFC 3339 time, such as 2026-01-01T02:59:58Z",
                    )
                })?;
                t.with_timezone(&Utc) - Utc::now()
            }
            None => chrono::Duration::zero(),
        },
    };
    let checked = schedules
        .iter()
        .map(|s| s.check().map(|(c, tz)| (s.clone(), c, tz)))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let settings = Arc::new(settings.clone());
    rt.block_on(async move {
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        let mut tasks = Vec::new();
        for (s, cron, tz) in checked {
            let settings = settings.clone();
            let mut stop = stop_rx.clone();
            tasks.push(tokio::spawn(async move {
                let mut after = clock.now();
                if s.missed == Missed::RunOnce {
                    if let Some(last) = last_due(&settings, &s.name) {
                        if let Some(due) = cron.next_after(last, tz).filter(|d| *d <= after) {
                            let _ = run_once(&settings, &s, due, clock, &stop).await;
                        }
                    }
                }
                loop {
                    let Some(due) = cron.next_after(after, tz) else {
                        tracing::warn!(schedule = %s.name, "the cron expression never matches");
                        return;
                    };
                    let wait = (due - clock.now()).to_std().unwrap_or_default();
                    tokio::select! {
                        _ = tokio::time::sleep(wait) => {}
                        _ = stop.wait_for(|v| *v) => return,
                    }
                    if let Err(e) = run_once(&settings, &s, due, clock, &stop).await {
                        tracing::error!(schedule = %s.name, cause = %e, "cannot record the run");
                    }
                    if *stop.borrow() {
                        return;
                    }
                    // A run that overran its next times skips them: never two at once.
                    after = clock.now().max(due);
                }
            }));
        }
        tracing::info!(schedules = tasks.len(), "scheduler started");
        crate::outln!("scheduler running {} schedule(s)", tasks.len());
        mlship_server::shutdown_signal().await;
        tracing::info!("scheduler stopping");
        let _ = stop_tx.send(true);
        for t in tasks {
            let _ = t.await;
        }
        anyhow::Ok(())
    })
}
