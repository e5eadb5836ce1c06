//! `mlship data`: data versioning over DVC's files (mlship-data does the work), with DVC's
//! messages, a progress bar on a terminal, and errors that name the file and say what to do.

use mlship_data::pipeline::Yaml;
use mlship_data::{Progress, Repo};
use serde_json::json;
use std::io::IsTerminal;
use std::path::Path;

use crate::cli::{DataCommand, DataRemoteCommand, JobsArg};
use crate::user;

/// A progress bar on stderr when it is a terminal, nothing otherwise.
struct Bar(Option<indicatif::ProgressBar>);

impl Bar {
    fn new(what: &'static str) -> Bar {
        if !std::io::stderr().is_terminal() {
            return Bar(None);
        }
        let b = indicatif::ProgressBar::hidden();
        if let Ok(style) = indicatif::ProgressStyle::with_template(&format!(
            "{what} {{bar:40}} {{pos}}/{{len}} {{per_sec}}"
        )) {
            b.set_style(style);
        }
        Bar(Some(b))
    }
}

impl Progress for Bar {
    fn start(&self, total: u64) {
        if let Some(b) = &self.0 {
            b.set_length(total);
            if total > 20 {
                b.set_draw_target(indicatif::ProgressDrawTarget::stderr());
            }
        }
    }

    fn advance(&self, n: u64) {
        if let Some(b) = &self.0 {
            b.inc(n);
        }
    }
}

impl Drop for Bar {
    fn drop(&mut self) {
        if let Some(b) = &self.0 {
            b.finish_and_clear();
        }
    }
}

fn jobs(j: &JobsArg) -> anyhow::Result<usize> {
    match j.jobs {
        Some(0) => Err(user("--jobs 0", "pass at least 1")),
        Some(n) => Ok(n),
        None => Ok(mlship_data::repo::default_jobs()),
    }
}

/// A data error as the user should see it: what, and what to do.
fn explain(e: mlship_data::Error) -> anyhow::Error {
    use mlship_data::Error as E;
    let hint = match &e {
        E::NoRepo(_) => "run `mlship data init` at the top of the git repository first",
        E::Parse { .. } => "fix the file by hand, or restore it from git",
        E::Invalid(_) => "the message says which value was refused",
        E::Corrupt { .. } => {
            "the object was changed behind mlship's back: delete it, then `mlship data fetch` (or `add` the file again)"
        }
        E::Missing(_) => {
            "`mlship data fetch` gets it from the remote; `mlship data status -c` shows what the remote has"
        }
        E::Unsaved(_) => "commit them with `mlship data add`, or pass --force to overwrite them",
        E::Remote { .. } => {
            "check the remote's URL and credentials (`mlship data remote modify NAME endpointurl|access_key_id|secret_access_key …`) and that it is reachable"
        }
        E::Io { .. } => "check the path, its permissions and the free space",
        E::Locked(..) => {
            "a `dvc` or mlship command is working in this repository; run this again when it has finished"
        }
        E::StageFailed { .. } => {
            "the command's output above says why; the stages before it are recorded in dvc.lock"
        }
    };
    user(e.to_string(), hint)
}

fn open() -> anyhow::Result<(Repo, std::path::PathBuf)> {
    let cwd = std::env::current_dir()?;
    Ok((Repo::open(&cwd).map_err(explain)?, cwd))
}

pub fn run(c: DataCommand) -> anyhow::Result<()> {
    match c {
        DataCommand::Init { no_scm } => {
            let cwd = std::env::current_dir()?;
            Repo::init(&cwd, no_scm).map_err(|e| match e {
                mlship_data::Error::Invalid(m) if m.contains("git") => user(
                    m,
                    "run `git init` first, or pass --no-scm for a folder outside git",
                ),
                other => explain(other),
            })?;
            crate::outln!("Initialized DVC repository.");
            if !no_scm {
                crate::outln!("You can now commit the changes to git.");
            }
            Ok(())
        }
        DataCommand::Add { paths, jobs: j } => {
            let (repo, cwd) = open()?;
            let _lock = repo.lock().map_err(explain)?;
            let rels = paths
                .iter()
                .map(|p| {
                    if !cwd.join(p).exists() {
                        return Err(user(
                            format!("{}: no such file or folder", p.display()),
                            "check the path",
                        ));
                    }
                    repo.relative(&cwd, p).map_err(explain)
                })
                .collect::<anyhow::Result<Vec<_>>>()?;
            let bar = Bar::new("adding");
            let added = repo.add(&rels, jobs(&j)?, &bar).map_err(explain)?;
            drop(bar);
            for a in &added {
                let rel = a.dvcfile.trim_end_matches(".dvc");
                let gitignore = match rel.rsplit_once('/') {
                    Some((d, _)) => format!("{d}/.gitignore"),
                    None => ".gitignore".into(),
                };
                crate::outln!(
                    "added {rel} ({}){}",
                    a.out.md5.as_deref().unwrap_or(""),
                    a.out
                        .nfiles
                        .map(|n| format!(", {n} files"))
                        .unwrap_or_default()
                );
                crate::outln!(
                    "To track the changes with git, run:\n\n\tgit add {} {gitignore}\n",
                    a.dvcfile
                );
            }
            Ok(())
        }
        DataCommand::Status {
            cloud,
            remote,
            json: as_json,
            quiet,
            jobs: j,
        } => {
            let (repo, _) = open()?;
            let _lock = repo.lock().map_err(explain)?;
            if cloud {
                let r = repo.remote(remote.as_deref()).map_err(explain)?;
                let changes = repo.cloud_status(r.as_ref()).map_err(explain)?;
                if quiet {
                    return quietly(changes.is_empty());
                }
                if as_json {
                    let mut m = serde_json::Map::new();
                    for (p, c) in &changes {
                        m.insert(p.clone(), json!(c.label()));
                    }
                    crate::outln!("{}", serde_json::Value::Object(m));
                } else if changes.is_empty() {
                    crate::outln!("Cache and remote '{}' are in sync.", r.name());
                } else {
                    for (p, c) in &changes {
                        crate::outln!("\t{:20}{p}", format!("{}:", c.label()));
                    }
                }
                return Ok(());
            }
            let changes = repo.status(jobs(&j)?).map_err(explain)?;
            if quiet {
                return quietly(changes.is_empty());
            }
            if as_json {
                let mut m: serde_json::Map<String, serde_json::Value> = serde_json::Map::new();
                for (t, c) in &changes {
                    let list = m
                        .entry(t.dvcfile.clone())
                        .or_insert_with(|| json!([{"changed outs": {}}]));
                    list[0]["changed outs"][&t.path] = json!(c.label());
                }
                crate::outln!("{}", serde_json::Value::Object(m));
            } else if changes.is_empty() {
                crate::outln!("Data and pipelines are up to date.");
            } else {
                let mut last = "";
                for (t, c) in &changes {
                    if t.dvcfile != last {
                        crate::outln!("{}:\n\tchanged outs:", t.dvcfile);
                        last = &t.dvcfile;
                    }
                    crate::outln!("\t\t{:20}{}", format!("{}:", c.label()), t.path);
                }
            }
            Ok(())
        }
        DataCommand::Push { remote, jobs: j } => {
            let (repo, _) = open()?;
            let _lock = repo.lock().map_err(explain)?;
            let r = repo.remote(remote.as_deref()).map_err(explain)?;
            let bar = Bar::new("pushing");
            let (n, missing) = repo.push(r.as_ref(), jobs(&j)?, &bar).map_err(explain)?;
            drop(bar);
            for m in &missing {
                eprintln!("warning: {m} is not in the cache and was not pushed");
            }
            if n == 0 {
                crate::outln!("Everything is up to date.");
            } else {
                crate::outln!("{n} file{} pushed", if n == 1 { "" } else { "s" });
            }
            if missing.is_empty() {
                Ok(())
            } else {
                Err(user(
                    format!("{} objects are missing from the cache", missing.len()),
                    "`mlship data status` shows the outputs not in the cache; `mlship data add` them again",
                ))
            }
        }
        DataCommand::Fetch { remote, jobs: j } => {
            let (repo, _) = open()?;
            let _lock = repo.lock().map_err(explain)?;
            fetch(&repo, remote.as_deref(), jobs(&j)?)
        }
        DataCommand::Pull {
            remote,
            force,
            jobs: j,
        } => {
            let (repo, _) = open()?;
            let _lock = repo.lock().map_err(explain)?;
            let n = jobs(&j)?;
            let fetched = fetch(&repo, remote.as_deref(), n);
            checkout(&repo, force, n)?;
            fetched
        }
        DataCommand::Checkout { force, jobs: j } => {
            let (repo, _) = open()?;
            let _lock = repo.lock().map_err(explain)?;
            checkout(&repo, force, jobs(&j)?)
        }
        DataCommand::Gc {
            workspace,
            cloud,
            remote,
            force,
        } => {
            if !workspace {
                return Err(user(
                    "gc needs a scope: what to keep",
                    "pass -w to keep what the workspace's .dvc files use",
                ));
            }
            if !force {
                return Err(user(
                    "gc removes data from the cache for good",
                    "pass -f to confirm",
                ));
            }
            let (repo, _) = open()?;
            let _lock = repo.lock().map_err(explain)?;
            let r = if cloud {
                Some(repo.remote(remote.as_deref()).map_err(explain)?)
            } else {
                None
            };
            let (local, far) = repo.gc(r.as_deref()).map_err(explain)?;
            crate::outln!("Removed {local} objects from repo cache.");
            if cloud {
                crate::outln!("Removed {far} objects from remote.");
            }
            Ok(())
        }
        DataCommand::Ls { json: as_json } => {
            let (repo, _) = open()?;
            let outs = repo.outputs().map_err(explain)?;
            if as_json {
                let list: Vec<_> = outs
                    .iter()
                    .map(|(p, o)| json!({"path": p, "md5": o.md5, "size": o.size, "nfiles": o.nfiles, "cache": o.cache}))
                    .collect();
                crate::outln!("{}", serde_json::Value::Array(list));
            } else {
                for (p, o) in &outs {
                    crate::outln!(
                        "{}  {:>12}  {}{}",
                        o.md5.as_deref().unwrap_or("-"),
                        o.size.map(|s| s.to_string()).unwrap_or_default(),
                        p,
                        o.nfiles
                            .map(|n| format!("/ ({n} files)"))
                            .unwrap_or_default()
                    );
                }
            }
            Ok(())
        }
        DataCommand::Remote(r) => remote_cmd(r),
    }
}

/// `status --quiet`: exit 0 when nothing changed, 1 (printing nothing) otherwise.
fn quietly(clean: bool) -> anyhow::Result<()> {
    if clean {
        Ok(())
    } else {
        Err(crate::quiet_exit())
    }
}

fn fetch(repo: &Repo, remote: Option<&str>, jobs: usize) -> anyhow::Result<()> {
    let r = repo.remote(remote).map_err(explain)?;
    let bar = Bar::new("fetching");
    let (n, missing) = repo.fetch(r.as_ref(), jobs, &bar).map_err(explain)?;
    drop(bar);
    for m in &missing {
        eprintln!(
            "warning: {m} is on neither the cache nor remote '{}'",
            r.name()
        );
    }
    crate::outln!("{n} file{} fetched", if n == 1 { "" } else { "s" });
    if missing.is_empty() {
        Ok(())
    } else {
        Err(user(
            format!(
                "{} objects are missing from remote '{}'",
                missing.len(),
                r.name()
            ),
            "push them from a machine that has them (`mlship data push`)",
        ))
    }
}

fn checkout(repo: &Repo, force: bool, jobs: usize) -> anyhow::Result<()> {
    let bar = Bar::new("checking out");
    let (done, failed) = repo.checkout(force, jobs, &bar).map_err(explain)?;
    drop(bar);
    for d in &done {
        crate::outln!("{}       {}", d.mark, d.path);
    }
    if failed.is_empty() {
        return Ok(());
    }
    for f in &failed {
        eprintln!("error: {f}");
    }
    Err(user(
        format!("checkout failed for {} file(s)", failed.len()),
        "`mlship data fetch` gets missing objects; a corrupted one must be deleted from the cache first",
    ))
}

fn remote_cmd(c: DataRemoteCommand) -> anyhow::Result<()> {
    let (repo, cwd) = open()?;
    match c {
        DataRemoteCommand::Add {
            name,
            url,
            default,
            local,
        } => repo
            .remote_add(&name, &url, default, local, &cwd)
            .map_err(explain),
        DataRemoteCommand::Modify {
            name,
            key,
            value,
            local,
        } => repo
            .remote_modify(&name, &key, &value, local)
            .map_err(explain),
        DataRemoteCommand::List => {
            let c = repo.config().map_err(explain)?;
            for name in c.remotes() {
                let url = c
                    .get(&mlship_data::config::remote_section(&name), "url")
                    .unwrap_or("");
                crate::outln!("{name}\t{url}");
            }
            Ok(())
        }
    }
}

/// Prints what the pipeline does, as `dvc repro` words it, and keeps which stages ran.
struct Said {
    ran: usize,
    /// Stages that ran or came from the run cache (true), in order.
    done: Vec<(String, bool)>,
}

impl mlship_data::pipeline::Reporter for Said {
    fn stage(&mut self, name: &str, outcome: &mlship_data::pipeline::Outcome) {
        use mlship_data::pipeline::Outcome as O;
        match outcome {
            O::Unchanged => crate::outln!("Stage '{name}' didn't change, skipping"),
            O::Frozen => crate::outln!("Stage '{name}' is frozen, skipping"),
            O::Restored => {
                self.ran += 1;
                self.done.push((name.to_string(), true));
                crate::outln!("Stage '{name}' is cached - skipping run, checking out outputs")
            }
            O::Ran => {
                self.ran += 1;
                self.done.push((name.to_string(), false));
            }
        }
    }

    fn running(&mut self, name: &str, commands: &[String]) {
        crate::outln!("Running stage '{name}':");
        for c in commands {
            crate::outln!("> {c}");
        }
    }
}

/// `mlship run`.
pub fn repro(
    stage: Option<&str>,
    force: bool,
    pull: bool,
    push: bool,
    track: Option<&str>,
    j: &JobsArg,
) -> anyhow::Result<()> {
    let (repo, _) = open()?;
    let _lock = repo.lock().map_err(explain)?;
    let n = jobs(j)?;
    // The tracking server is reached before anything runs, so a wrong URL costs nothing.
    let tracker = match track {
        None => None,
        Some(url) => {
            let url = if url.is_empty() {
                std::env::var("MLFLOW_TRACKING_URI").map_err(|_| {
                    user(
                        "--track without a URL, and MLFLOW_TRACKING_URI is not set",
                        "pass --track http://HOST:5000 (an `mlship server`)",
                    )
                })?
            } else {
                url.to_string()
            };
            let name = format!(
                "pipeline {}",
                repo.root
                    .file_name()
                    .map(|f| f.to_string_lossy().to_string())
                    .unwrap_or_default()
            );
            Some(super::track::Tracker::open(&url, &name)?)
        }
    };
    if pull {
        fetch(&repo, None, n)?;
        checkout(&repo, false, n)?;
    }
    let mut said = Said {
        ran: 0,
        done: Vec::new(),
    };
    let result = mlship_data::pipeline::run(&repo, stage, force, n, &mut said);
    // Stages that finished are logged even when a later one failed.
    if let Some(t) = &tracker {
        let commit = super::models::register::git_commit();
        let stages = mlship_data::pipeline::load(&repo).map_err(explain)?;
        for (name, restored) in &said.done {
            let rec = mlship_data::pipeline::stage_record(&repo, &stages, name).map_err(explain)?;
            let id = t.stage(name, *restored, &rec, commit.as_deref())?;
            crate::outln!("Logged stage '{name}' as run {id}");
        }
    }
    result.map_err(explain)?;
    if push {
        let r = repo.remote(None).map_err(explain)?;
        let (pushed, _) = repo
            .push(r.as_ref(), n, &mlship_data::Quiet)
            .map_err(explain)?;
        crate::outln!("{pushed} files pushed");
    }
    if said.ran == 0 {
        crate::outln!("Data and pipelines are up to date.");
    } else {
        crate::outln!("Updated dvc.lock");
    }
    Ok(())
}

/// `mlship dag`.
pub fn dag(mermaid: bool) -> anyhow::Result<()> {
    let (repo, _) = open()?;
    let stages = mlship_data::pipeline::load(&repo).map_err(explain)?;
    crate::outln!(
        "{}",
        mlship_data::pipeline::dag(&stages, mermaid).trim_end()
    );
    Ok(())
}

/// `mlship pipeline export`.
/// The `[[schedule]]` an export takes its cron from: the one named, or else the only one whose
/// command is `mlship run …`.
fn export_schedule(
    config: &Path,
    name: Option<&str>,
) -> anyhow::Result<Option<crate::config::ScheduleConfig>> {
    let schedules = if config.exists() {
        crate::config::read(config)?.schedule
    } else {
        Vec::new()
    };
    if let Some(n) = name {
        return schedules
            .into_iter()
            .find(|s| s.name == n)
            .map(Some)
            .ok_or_else(|| {
                user(
                    format!("{} has no [[schedule]] named `{n}`", config.display()),
                    "see `mlship schedule list`, or pass --cron",
                )
            });
    }
    let runs = |s: &crate::config::ScheduleConfig| {
        s.command
            .first()
            .is_some_and(|c| Path::new(c).file_name().and_then(|f| f.to_str()) == Some("mlship"))
            && s.command.get(1).map(String::as_str) == Some("run")
    };
    let mut pipeline_runs = schedules.into_iter().filter(runs);
    Ok(match (pipeline_runs.next(), pipeline_runs.next()) {
        (Some(s), None) => Some(s),
        _ => None,
    })
}

pub fn pipeline(c: crate::cli::PipelineCommand) -> anyhow::Result<()> {
    use crate::cli::{PipelineCommand, PipelineTarget};
    let PipelineCommand::Export {
        target,
        output,
        cron,
        timezone,
        schedule,
        image,
        name,
        namespace,
        workdir,
        secret,
    } = c;
    let (repo, _) = open()?;
    let (cron, timezone) = match cron {
        Some(c) => (Some(c), timezone),
        None => match export_schedule(&repo.root.join("mlship.toml"), schedule.as_deref())? {
            Some(s) => {
                crate::outln!(
                    "schedule: [[schedule]] {} ({} {})",
                    s.name,
                    s.cron,
                    s.timezone
                );
                (Some(s.cron), s.timezone)
            }
            None => (None, timezone),
        },
    };
    let stages = mlship_data::pipeline::load(&repo).map_err(explain)?;
    let order = mlship_data::pipeline::order(&stages, None).map_err(explain)?;
    let ups = mlship_data::pipeline::upstream_names(&stages);
    let image = image.or_else(|| {
        let p = repo.root.join("mlship.toml");
        p.exists()
            .then(|| crate::config::read(&p).ok())
            .flatten()
            .and_then(|c| c.deploy.and_then(|d| d.image))
    });
    let name = name.unwrap_or_else(|| {
        let base = repo
            .root
            .file_name()
            .map(|f| f.to_string_lossy().to_ascii_lowercase())
            .unwrap_or_else(|| "pipeline".into());
        base.chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
            .collect::<String>()
            .trim_matches('-')
            .to_string()
    });
    let sync_data = repo
        .config()
        .map_err(explain)?
        .get("core", "remote")
        .is_some();
    let plan = mlship_deploy::PipelinePlan {
        name,
        stages: order
            .iter()
            .map(|&i| (stages[i].name.clone(), ups[i].clone()))
            .collect(),
        cron,
        timezone,
        image,
        namespace,
        workdir: workdir.unwrap_or_else(|| match target {
            PipelineTarget::Airflow => repo.root.display().to_string(),
            _ => "/project".into(),
        }),
        sync_data,
        secret,
    };
    let files = match target {
        PipelineTarget::Airflow => mlship_deploy::pipeline_airflow(&plan),
        PipelineTarget::Argo => mlship_deploy::pipeline_argo(&plan),
        PipelineTarget::Kubernetes => mlship_deploy::pipeline_kubernetes(&plan),
    }
    .map_err(|e| user(e.to_string(), "see `mlship pipeline export --help`"))?;
    let files: Vec<(String, Vec<u8>)> = files
        .into_iter()
        .map(|(n, t)| (n, t.into_bytes()))
        .collect();
    super::deploy::write_files(&output, &files)?;
    for (rel, _) in &files {
        crate::outln!("wrote {}", output.join(rel).display());
    }
    Ok(())
}

/// A YAML or JSON document's leaves, from the workspace or (with `rev`) from git.
fn leaves(repo: &Repo, path: &str, rev: Option<&str>) -> anyhow::Result<Vec<(String, Yaml)>> {
    let text = match rev {
        None => match std::fs::read_to_string(repo.root.join(path)) {
            Ok(t) => t,
            Err(_) => return Ok(Vec::new()),
        },
        Some(r) => {
            let o = std::process::Command::new("git")
                .args(["show", &format!("{r}:{path}")])
                .current_dir(&repo.root)
                .stderr(std::process::Stdio::null())
                .output()
                .map_err(|e| user(format!("cannot run git: {e}"), "install git"))?;
            if !o.status.success() {
                return Ok(Vec::new());
            }
            String::from_utf8_lossy(&o.stdout).to_string()
        }
    };
    // JSON is YAML too.
    mlship_data::pipeline::parse_leaves(&text).map_err(|e| {
        user(
            format!(
                "{path}{}: not JSON or YAML: {e}",
                rev.map(|r| format!(" at {r}")).unwrap_or_default()
            ),
            "metrics and params files are JSON or YAML mappings",
        )
    })
}

/// A leaf that differs: its file, its key, the revision's value and the workspace's.
type Differs = (String, String, Option<Yaml>, Option<Yaml>);

/// Rows that differ between `rev` and the workspace, over `files`: (file, key, old, new).
fn diff_rows(repo: &Repo, files: &[String], rev: &str) -> anyhow::Result<Vec<Differs>> {
    let mut rows = Vec::new();
    for f in files {
        let old: std::collections::BTreeMap<String, Yaml> =
            leaves(repo, f, Some(rev))?.into_iter().collect();
        let new: std::collections::BTreeMap<String, Yaml> =
            leaves(repo, f, None)?.into_iter().collect();
        let keys: std::collections::BTreeSet<&String> = old.keys().chain(new.keys()).collect();
        for k in keys {
            let (a, b) = (old.get(k), new.get(k));
            if a != b {
                rows.push((f.clone(), k.clone(), a.cloned(), b.cloned()));
            }
        }
    }
    Ok(rows)
}

fn shown(v: &Option<Yaml>) -> String {
    v.as_ref()
        .map(mlship_data::pipeline::show_value)
        .unwrap_or_else(|| "-".into())
}

fn to_json(v: &Option<Yaml>) -> serde_json::Value {
    v.as_ref()
        .and_then(|x| serde_json::to_value(x).ok())
        .unwrap_or(serde_json::Value::Null)
}

/// `mlship metrics show|diff`.
pub fn metrics(c: crate::cli::MetricsCommand) -> anyhow::Result<()> {
    use crate::cli::MetricsCommand as M;
    let (repo, _) = open()?;
    let stages = mlship_data::pipeline::load(&repo).map_err(explain)?;
    let (files, _) = mlship_data::pipeline::metric_and_param_files(&stages);
    match c {
        M::Show { json: as_json } => {
            let mut doc = serde_json::Map::new();
            for f in &files {
                let l = leaves(&repo, f, None)?;
                if as_json {
                    let m: serde_json::Map<String, serde_json::Value> = l
                        .iter()
                        .map(|(k, v)| (k.clone(), to_json(&Some(v.clone()))))
                        .collect();
                    doc.insert(f.clone(), serde_json::Value::Object(m));
                } else {
                    for (k, v) in l {
                        crate::outln!("{f}\t{k}\t{}", mlship_data::pipeline::show_value(&v));
                    }
                }
            }
            if as_json {
                crate::outln!("{}", serde_json::Value::Object(doc));
            }
        }
        M::Diff { rev, json: as_json } => {
            let rows = diff_rows(&repo, &files, &rev)?;
            if as_json {
                let list: Vec<_> = rows.iter().map(|(f, k, a, b)| json!({"path": f, "metric": k, "old": to_json(a), "new": to_json(b)})).collect();
                crate::outln!("{}", serde_json::Value::Array(list));
                return Ok(());
            }
            crate::outln!("Path\tMetric\t{rev}\tworkspace\tChange");
            for (f, k, a, b) in &rows {
                let change = match (a, b) {
                    (Some(x), Some(y)) => mlship_data::pipeline::change(x, y),
                    _ => None,
                }
                .unwrap_or_else(|| "-".into());
                crate::outln!("{f}\t{k}\t{}\t{}\t{change}", shown(a), shown(b));
            }
        }
    }
    Ok(())
}

/// `mlship params diff`.
pub fn params(c: crate::cli::ParamsCommand) -> anyhow::Result<()> {
    let crate::cli::ParamsCommand::Diff { rev, json: as_json } = c;
    let (repo, _) = open()?;
    let stages = mlship_data::pipeline::load(&repo).map_err(explain)?;
    let (_, files) = mlship_data::pipeline::metric_and_param_files(&stages);
    let rows = diff_rows(&repo, &files, &rev)?;
    if as_json {
        let list: Vec<_> = rows
            .iter()
            .map(
                |(f, k, a, b)| json!({"path": f, "param": k, "old": to_json(a), "new": to_json(b)}),
            )
            .collect();
        crate::outln!("{}", serde_json::Value::Array(list));
        return Ok(());
    }
    crate::outln!("Path\tParam\t{rev}\tworkspace");
    for (f, k, a, b) in &rows {
        crate::outln!("{f}\t{k}\t{}\t{}", shown(a), shown(b));
    }
    Ok(())
}
