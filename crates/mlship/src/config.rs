//! `mlship.toml`: deployments (weighted routes over model versions, a sticky header, a shadow
//! model, automatic rollback). Unknown keys are refused, naming them.

use std::path::Path;

use serde::Deserialize;

use crate::user;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    #[serde(default)]
    pub deployment: Vec<DeploymentConfig>,
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
    let text = std::fs::read_to_string(path).map_err(|e| {
        user(
            format!("cannot read {}: {e}", path.display()),
            "pass the path of a mlship.toml",
        )
    })?;
    let c: FileConfig = toml::from_str(&text).map_err(|e| {
        user(
            format!("{}: {}", path.display(), e.message()),
            "see the README's mlship.toml example for the known keys",
        )
    })?;
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
