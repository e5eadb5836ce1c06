//! `mlship.toml`: what `serve` serves (`[serve]`), deployments (weighted routes over model
//! versions, a sticky header, a shadow model, automatic rollback), and how `deploy render` sizes
//! and wires the service (`[deploy]`), schedules (`[[schedule]]`) and the CI/CD pipeline (`[ci]`).
//! Unknown keys are refused, naming them.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::user;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    pub serve: Option<ServeSection>,
    #[serde(default)]
    pub deployment: Vec<DeploymentConfig>,
    pub deploy: Option<DeploySection>,
    #[serde(default)]
    pub schedule: Vec<ScheduleConfig>,
    pub ci: Option<CiSection>,
}

/// `[ci]`: what `mlship ci render` writes a CI/CD pipeline from.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CiSection {
    /// The registered model, and the service's name.
    pub model: String,
    /// The jobs' container image (mlship, and kubectl or aws, on its PATH), pinned by digest.
    pub image: String,
    #[serde(default = "main_branch")]
    pub branch: String,
    /// Run the project's dvc.yaml (`mlship run --pull`) before registering.
    #[serde(default)]
    pub pipeline: bool,
    /// The model file to register (the pipeline's output, or a file in the repository).
    pub model_file: String,
    /// Rows the fidelity gate scores, and (optionally) the predictions they must give.
    pub input_example: String,
    pub expected: Option<String>,
    /// `REGISTRY/REPOSITORY` the serving image is pushed to.
    pub image_repository: String,
    #[serde(default)]
    pub deploy: CiDeployKind,
    /// The ECS cluster, with `deploy = "ecs"`.
    pub ecs_cluster: Option<String>,
    #[serde(default)]
    pub rollout: CiRolloutSection,
}

fn main_branch() -> String {
    "main".into()
}

#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum CiDeployKind {
    #[default]
    Kubernetes,
    Ecs,
}

/// `[ci.rollout]`: the rollout the deploy job starts and waits for.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CiRolloutSection {
    #[serde(default = "default_steps")]
    pub steps: Vec<u32>,
    #[serde(default = "default_interval")]
    pub interval: String,
    pub max_error_rate: Option<f64>,
    pub max_p99_ms: Option<f64>,
    pub min_requests: Option<u64>,
    pub sticky_header: Option<String>,
    #[serde(default = "default_timeout")]
    pub timeout: String,
}

impl Default for CiRolloutSection {
    fn default() -> Self {
        CiRolloutSection {
            steps: default_steps(),
            interval: default_interval(),
            max_error_rate: None,
            max_p99_ms: None,
            min_requests: None,
            sticky_header: None,
            timeout: default_timeout(),
        }
    }
}

fn default_steps() -> Vec<u32> {
    vec![5, 25, 50, 100]
}

fn default_interval() -> String {
    "10m".into()
}

fn default_timeout() -> String {
    "2h".into()
}

/// `[[schedule]]`: a command `mlship scheduler` runs on a cron schedule.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScheduleConfig {
    pub name: String,
    /// Five cron fields.
    pub cron: String,
    /// An IANA time zone (default UTC).
    #[serde(default = "utc")]
    pub timezone: String,
    /// The program and its arguments (no shell).
    pub command: Vec<String>,
    /// What to do at start with a run that fell due while the scheduler was down.
    #[serde(default)]
    pub missed: Missed,
    /// A run taking longer is stopped and recorded as timed out.
    pub timeout_secs: Option<u64>,
    /// How many times a failed run is tried again.
    #[serde(default)]
    pub retries: u32,
}

fn utc() -> String {
    "UTC".into()
}

#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Missed {
    /// Wait for the next time.
    #[default]
    Skip,
    /// Run once at start, then keep the schedule.
    RunOnce,
}

impl ScheduleConfig {
    /// Checks the cron expression, the time zone and the command.
    pub fn check(&self) -> anyhow::Result<(crate::cron::Cron, chrono_tz::Tz)> {
        let cron = crate::cron::Cron::parse(&self.cron).map_err(|e| {
            user(
                format!("schedule `{}`: cron {e}", self.name),
                "for example \"0 3 * * *\" (03:00 every day) or \"*/15 * * * *\"",
            )
        })?;
        let tz: chrono_tz::Tz = self.timezone.parse().map_err(|_| {
            user(
                format!(
                    "schedule `{}`: unknown time zone {:?}",
                    self.name, self.timezone
                ),
                "use an IANA name such as UTC or Europe/Lisbon",
            )
        })?;
        if self.command.is_empty() || self.command[0].is_empty() {
            return Err(user(
                format!("schedule `{}` has no command", self.name),
                "command = [\"mlship\", \"run\"]",
            ));
        }
        if self.name.is_empty()
            || !self
                .name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            return Err(user(
                format!("schedule name {:?}", self.name),
                "use letters, digits, '-' and '_'",
            ));
        }
        Ok((cron, tz))
    }
}

/// `[serve]`: the defaults of `mlship serve`'s flags.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ServeSection {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    /// `[NAME=]MODEL` specs, as on the command line.
    #[serde(default)]
    pub models: Vec<String>,
    /// Limits, as the flags of the same names (which win over these).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_timeout_secs: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_concurrency_per_model: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scoring_threads: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rate_limit: Option<u32>,
}

/// `[deploy]`: how `mlship deploy render` sizes and wires the service.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeploySection {
    pub image: Option<String>,
    pub namespace: Option<String>,
    pub replicas: Option<u32>,
    pub min_replicas: Option<u32>,
    pub max_replicas: Option<u32>,
    pub target_cpu_percent: Option<u32>,
    /// CPU in millicores (ECS units are millicores too: 1024 = one vCPU).
    pub cpu_millis: Option<u32>,
    pub memory_mib: Option<u32>,
    pub region: Option<String>,
    /// A secret holding MLSHIP_STORE and MLSHIP_ARTIFACTS (and the AWS keys, if any) for serving
    /// from a shared registry: a Kubernetes Secret's name, or a Secrets Manager ARN on ECS.
    pub registry_secret: Option<String>,
    /// The canary's share of traffic, 0-100, for the Terraform load balancer.
    pub canary_weight: Option<u32>,
    /// ECS: the tasks' subnets and security groups.
    pub subnets: Option<Vec<String>>,
    pub security_groups: Option<Vec<String>>,
}
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeploymentConfig {
    pub name: String,
    pub routes: Vec<RouteConfig>,
    pub sticky_header: Option<String>,
    pub shadow: Option<String>,
    pub rollback: Option<RollbackConfig>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteConfig {
    pub model: String,
    pub weight: u32,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RollbackConfig {
    pub max_error_rate: Option<f64>,
    pub max_p99_ms: Option<f64>,
    pub min_requests: Option<u64>,
}

/// Reads and checks a config file.
pub fn read(path: &Path) -> anyhow::Result<FileConfig> {
    let text = read_text(path)?;
    let c: FileConfig = toml::from_str(&text).map_err(|e| {
        user(
            format!("{}: {}", path.display(), e.message()),
            "see the README's mlship.toml example for the known keys",
        )
    })?;
    let mut seen = std::collections::HashSet::new();
    for s in &c.schedule {
        s.check()?;
        if !seen.insert(s.name.clone()) {
            return Err(user(
                format!("two schedules are named `{}`", s.name),
                "give each [[schedule]] its own name",
            ));
        }
    }
    for d in &c.deployment {
        if d.routes.is_empty() {
            return Err(user(
                format!("deployment `{}` has no routes", d.name),
                "give routes = [{ model = \"models:/NAME@production\", weight = 100 }]",
            ));
        }
        if d.routes.iter().all(|r| r.weight == 0) {
            return Err(user(
                format!("deployment `{}`: every weight is 0", d.name),
                "give the production route a positive weight",
            ));
        }
    }
    Ok(c)
}

fn read_text(path: &Path) -> anyhow::Result<String> {
    std::fs::read_to_string(path).map_err(|e| {
        user(
            format!("cannot read {}: {e}", path.display()),
            "pass the path of a mlship.toml",
        )
    })
}

/// The `[[deployment]]` tables of a config, as TOML text to carry into another config.
pub fn deployments_text(path: &Path) -> anyhow::Result<String> {
    let doc: toml::Table = toml::from_str(&read_text(path)?)?;
    let mut out = toml::Table::new();
    if let Some(d) = doc.get("deployment") {
        out.insert("deployment".into(), d.clone());
    }
    Ok(toml::to_string(&out)?)
}
