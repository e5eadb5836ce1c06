//! `mlship ci render --target github|gitlab|jenkins`: the project's path to production as a CI/CD
//! pipeline, from mlship.toml's `[ci]`, refused with the reason when a setting it needs is missing.

use std::path::Path;

use mlship_deploy::{CiDeploy, CiPlan, CiRollout, CiTarget};
use mlship_registry::rollout::RolloutPlan;

use crate::cli::{CiCommand, CiTargetArg};
use crate::config::CiDeployKind;
use crate::user;

pub fn run(c: CiCommand) -> anyhow::Result<()> {
    match c {
        CiCommand::Render {
            target,
            config,
            output,
        } => render(target, &config, &output),
    }
}

fn render(target: CiTargetArg, config: &Path, output: &Path) -> anyhow::Result<()> {
    let file = crate::config::read(config)?;
    let Some(ci) = file.ci.clone() else {
        return Err(user(
            format!("{} has no [ci] section", config.display()),
            "add [ci] with model, image, model_file, input_example and image_repository (see the README's CI/CD section)",
        ));
    };
    let deploy = file.deploy.clone().unwrap_or_default();
    // The replicas move with a rollout only when they serve through the shared registry.
    if deploy.registry_secret.is_none() {
        return Err(user(
            format!(
                "{}: the deploy job's rollout needs the replicas to serve from the shared registry, and [deploy] has no registry_secret",
                config.display()
            ),
            "set registry_secret under [deploy]: the Secret (Kubernetes) or Secrets Manager ARN (ECS) holding MLSHIP_STORE and MLSHIP_ARTIFACTS",
        ));
    }
    let rollout = &ci.rollout;
    for (what, d) in [
        ("interval", &rollout.interval),
        ("timeout", &rollout.timeout),
    ] {
        humantime::parse_duration(d).map_err(|e| {
            user(
                format!("[ci.rollout] {what} {d:?} is not a duration: {e}"),
                "write it as 30s, 10m or 2h",
            )
        })?;
    }
    RolloutPlan {
        name: ci.model.clone(),
        candidate: 0,
        steps: rollout.steps.clone(),
        interval_ms: 0,
        min_requests: rollout.min_requests.unwrap_or(100),
        max_error_rate: rollout.max_error_rate,
        max_p99_ms: rollout.max_p99_ms,
        sticky_header: rollout.sticky_header.clone(),
    }
    .check()
    .map_err(|e| user(format!("[ci.rollout]: {e}"), "fix it in mlship.toml"))?;
    // The files the gate reads must be in the repository (the model may come from the pipeline).
    let root = config.parent().unwrap_or(Path::new("."));
    let mut needed = vec![("input_example", &ci.input_example)];
    if let Some(e) = &ci.expected {
        needed.push(("expected", e));
    }
    if !ci.pipeline {
        needed.push(("model_file", &ci.model_file));
    }
    for (key, p) in needed {
        if !root.join(p).is_file() {
            return Err(user(
                format!("[ci] {key} {p:?} is not a file under {}", root.display()),
                "paths in [ci] are relative to the folder of mlship.toml (the repository's root)",
            ));
        }
    }
    let deploy_target = match (ci.deploy, &ci.ecs_cluster) {
        (CiDeployKind::Kubernetes, _) => CiDeploy::Kubernetes,
        (CiDeployKind::Ecs, Some(c)) => CiDeploy::Ecs { cluster: c.clone() },
        (CiDeployKind::Ecs, None) => {
            return Err(user(
                "[ci] deploy = \"ecs\" needs ecs_cluster",
                "set ecs_cluster under [ci] to the cluster's name",
            ));
        }
    };
    let plan = CiPlan {
        model: ci.model.clone(),
        image: ci.image.clone(),
        branch: ci.branch.clone(),
        pipeline: ci.pipeline,
        model_file: ci.model_file.clone(),
        input_example: ci.input_example.clone(),
        expected: ci.expected.clone(),
        image_repository: ci.image_repository.clone(),
        config: config
            .file_name()
            .map_or_else(|| "mlship.toml".into(), |n| n.to_string_lossy().to_string()),
        region: deploy.region.clone().unwrap_or_else(|| "us-east-1".into()),
        deploy: deploy_target,
        rollout: CiRollout {
            steps: rollout.steps.clone(),
            interval: rollout.interval.clone(),
            max_error_rate: rollout.max_error_rate,
            max_p99_ms: rollout.max_p99_ms,
            min_requests: rollout.min_requests,
            sticky_header: rollout.sticky_header.clone(),
            timeout: rollout.timeout.clone(),
        },
    };
    let target = match target {
        CiTargetArg::Github => CiTarget::Github,
        CiTargetArg::Gitlab => CiTarget::Gitlab,
        CiTargetArg::Jenkins => CiTarget::Jenkins,
    };
    let files = mlship_deploy::ci(&plan, target).map_err(|e| {
        user(
            format!("[ci] {e}"),
            "fix the value under [ci] in mlship.toml",
        )
    })?;
    super::deploy::write_rendered(output, files)
}
