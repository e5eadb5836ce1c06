//! CI/CD pipelines that take a model to production: GitHub Actions, GitLab CI and a declarative
//! Jenkinsfile, rendered from one list of jobs and shell commands so the three run the same steps.
//!
//! The jobs: `gate` (run the pipeline or take the file, then register it through the fidelity
//! gate under the `staging` alias), `package` (build and push the serving image), `deploy` (render
//! and apply the deployment files, then start a rollout and wait for its end), and a manual
//! `rollback`. Jobs hand the model on through the shared registry, never through artifacts.
//! Secrets come from the CI system's store by name; actions and images are pinned.

use serde_json::{Value as Json, json};

use crate::{Error, File, Result};

/// actions/checkout v5.0.0, pinned by its commit.
const CHECKOUT: &str = "actions/checkout@08c6903cd8c0fde910a37f88322edcfb5dd907a8";
const CHECKOUT_TAG: &str = "v5.0.0";
/// The alias the gate gives the checked version; the rollout takes its candidate from it.
pub const STAGING_ALIAS: &str = "staging";

/// Where the deploy job sends the service.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CiDeploy {
    /// `kubectl apply -k` with the kubeconfig in the `KUBE_CONFIG` secret.
    Kubernetes,
    /// A new task definition, then the service updated to it.
    Ecs { cluster: String },
}

/// `mlship rollout start` as the deploy job runs it.
#[derive(Clone, Debug, PartialEq)]
pub struct CiRollout {
    pub steps: Vec<u32>,
    pub interval: String,
    pub max_error_rate: Option<f64>,
    pub max_p99_ms: Option<f64>,
    pub min_requests: Option<u64>,
    pub sticky_header: Option<String>,
    /// How long the deploy job waits for the rollout's end.
    pub timeout: String,
}

/// A project's path to production.
#[derive(Clone, Debug, PartialEq)]
pub struct CiPlan {
    /// The registered model (and the service's name).
    pub model: String,
    /// The jobs' container image, with mlship (and kubectl or aws) on its PATH, pinned by digest.
    pub image: String,
    /// Pushes to this branch run the pipeline.
    pub branch: String,
    /// Run the project's dvc.yaml (`mlship run --pull`) before registering.
    pub pipeline: bool,
    /// The model file to register, relative to the repository.
    pub model_file: String,
    pub input_example: String,
    pub expected: Option<String>,
    /// `REGISTRY/REPOSITORY` the serving image is pushed to.
    pub image_repository: String,
    /// The mlship.toml the deployment files are rendered from, relative to the repository.
    pub config: String,
    pub region: String,
    pub deploy: CiDeploy,
    pub rollout: CiRollout,
}

/// Which CI system.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CiTarget {
    Github,
    Gitlab,
    Jenkins,
}

/// One job: its id, its title, the job it follows, whether a person starts it, the secrets it
/// reads, and its commands in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Job {
    pub id: &'static str,
    pub title: &'static str,
    pub needs: Option<&'static str>,
    pub manual: bool,
    pub checkout: bool,
    pub secrets: Vec<&'static str>,
    pub commands: Vec<String>,
}

impl CiPlan {
    pub fn check(&self) -> Result<()> {
        crate::check_name(&self.model).map_err(|_| Error::Invalid {
            field: "model",
            why: format!(
                "{:?} must be 1-50 lowercase letters, digits or '-', starting with a letter (it names the service)",
                self.model
            ),
        })?;
        let pinned = self.image.rsplit_once("@sha256:").is_some_and(|(_, d)| {
            d.len() == 64
                && d.bytes()
                    .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
        });
        if !pinned {
            return Err(Error::Invalid {
                field: "image",
                why: format!(
                    "{:?} is not pinned by digest: write it as NAME@sha256:<64 hex digits> so every run uses the same tools",
                    self.image
                ),
            });
        }
        if self.branch.is_empty() || self.branch.contains(char::is_whitespace) {
            return Err(Error::Invalid {
                field: "branch",
                why: format!("{:?} is not a branch name", self.branch),
            });
        }
        if self.image_repository.is_empty()
            || self.image_repository.contains(['@', ' '])
            || !self.image_repository.contains('/')
        {
            return Err(Error::Invalid {
                field: "image_repository",
                why: format!(
                    "{:?} is not REGISTRY/REPOSITORY (no tag: each commit's image is tagged with it)",
                    self.image_repository
                ),
            });
        }
        if let CiDeploy::Ecs { cluster } = &self.deploy {
            if cluster.is_empty() {
                return Err(Error::Invalid {
                    field: "ecs_cluster",
                    why: "an ECS deploy needs the cluster's name".into(),
                });
            }
        }
        Ok(())
    }

    fn ecr(&self) -> bool {
        self.image_repository.contains(".dkr.ecr.")
    }

    /// The jobs in order, with their commands: what every target renders.
    pub fn jobs(&self) -> Vec<Job> {
        let m = sh(&self.model);
        let store = vec![
            "MLSHIP_STORE",
            "MLSHIP_ARTIFACTS",
            "AWS_ACCESS_KEY_ID",
            "AWS_SECRET_ACCESS_KEY",
        ];
        let staging = format!("models:/{}@{STAGING_ALIAS}", self.model);
        let image = format!("{}:\"$MLSHIP_COMMIT\"", sh(&self.image_repository));
        let mut gate = Vec::new();
        if self.pipeline {
            gate.push("mlship run --pull".to_string());
        }
        let mut register = format!(
            "mlship models register {m} {} --input-example {}",
            sh(&self.model_file),
            sh(&self.input_example)
        );
        if let Some(e) = &self.expected {
            register.push_str(&format!(" --expected {}", sh(e)));
        }
        register.push_str(&format!(
            " --alias {STAGING_ALIAS} --tag ci.commit=\"$MLSHIP_COMMIT\""
        ));
        gate.push(register);
        let mut image_secrets = store.clone();
        let push = if self.ecr() {
            format!(
                "aws ecr get-login-password --region {} | mlship image push image.tar {image} --username AWS --password-stdin",
                sh(&self.region)
            )
        } else {
            image_secrets.extend(["MLSHIP_REGISTRY_USERNAME", "MLSHIP_REGISTRY_PASSWORD"]);
            format!("mlship image push image.tar {image}")
        };
        let image_cmds = vec![
            format!(
                "mlship image build {} --name {m} --tag {m}:\"$MLSHIP_COMMIT\" --output image.tar",
                sh(&staging)
            ),
            push,
        ];
        let mut deploy_secrets = store.clone();
        let (target, apply): (&str, Vec<String>) = match &self.deploy {
            CiDeploy::Kubernetes => {
                deploy_secrets.push("KUBE_CONFIG");
                (
                    "kubernetes",
                    vec![
                        "KUBECONFIG=\"$(mktemp)\" && export KUBECONFIG && printf '%s\\n' \"$KUBE_CONFIG\" > \"$KUBECONFIG\" && kubectl apply -k deploy".into(),
                    ],
                )
            }
            CiDeploy::Ecs { cluster } => (
                "ecs",
                vec![
                    format!(
                        "aws ecs register-task-definition --region {} --cli-input-json file://deploy/task-definition.json",
                        sh(&self.region)
                    ),
                    format!(
                        "aws ecs update-service --region {} --cluster {} --service {m} --task-definition {m}",
                        sh(&self.region),
                        sh(cluster)
                    ),
                ],
            ),
        };
        let r = &self.rollout;
        let steps: Vec<String> = r.steps.iter().map(u32::to_string).collect();
        let mut start = format!(
            "mlship rollout start {m} --candidate {} --steps {} --interval {}",
            sh(&staging),
            steps.join(","),
            sh(&r.interval)
        );
        if let Some(x) = r.max_error_rate {
            start.push_str(&format!(" --max-error-rate {x}"));
        }
        if let Some(x) = r.max_p99_ms {
            start.push_str(&format!(" --max-p99-ms {x}"));
        }
        if let Some(x) = r.min_requests {
            start.push_str(&format!(" --min-requests {x}"));
        }
        if let Some(x) = &r.sticky_header {
            start.push_str(&format!(" --sticky-header {}", sh(x)));
        }
        let mut deploy = vec![format!(
            "mlship deploy render --target {target} models:/{}@production --config {} --image {image} --output deploy",
            self.model,
            sh(&self.config)
        )];
        deploy.extend(apply);
        deploy.push(start);
        deploy.push(format!(
            "mlship rollout watch {m} --timeout {}",
            sh(&r.timeout)
        ));
        let why = "'manual rollback from CI'";
        vec![
            Job {
                id: "gate",
                title: "Check the model",
                needs: None,
                manual: false,
                checkout: true,
                secrets: store.clone(),
                commands: gate,
            },
            Job {
                id: "package",
                title: "Build and push the image",
                needs: Some("gate"),
                manual: false,
                checkout: false,
                secrets: image_secrets,
                commands: image_cmds,
            },
            Job {
                id: "deploy",
                title: "Deploy and roll out",
                needs: Some("package"),
                manual: false,
                checkout: true,
                secrets: deploy_secrets,
                commands: deploy,
            },
            Job {
                id: "rollback",
                title: "Roll back",
                needs: None,
                manual: true,
                checkout: false,
                secrets: store,
                commands: vec![format!(
                    "mlship rollout abort {m} --reason {why} || mlship models rollback {m} production --reason {why}"
                )],
            },
        ]
    }
}

/// A word for the shell: as is when it is plainly safe, else in single quotes.
fn sh(s: &str) -> String {
    let plain = !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./:@%+=,".contains(c));
    if plain {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
    }
}

fn header(target: &str, comment: &str) -> String {
    format!(
        "{comment} Written by `mlship ci render --target {target}` from mlship.toml's [ci]; render again after\n{comment} changing it. Secrets come from the CI system's own store, by name.\n"
    )
}

/// Renders the pipeline for one CI system, as the file it reads at the repository's root.
pub fn render(plan: &CiPlan, target: CiTarget) -> Result<Vec<File>> {
    plan.check()?;
    let jobs = plan.jobs();
    Ok(match target {
        CiTarget::Github => vec![(".github/workflows/mlship.yml".into(), github(plan, &jobs))],
        CiTarget::Gitlab => vec![(".gitlab-ci.yml".into(), gitlab(plan, &jobs))],
        CiTarget::Jenkins => vec![("Jenkinsfile".into(), jenkins(plan, &jobs))],
    })
}

fn yaml(v: &Json) -> String {
    serde_yaml_ng::to_string(v).unwrap_or_default()
}

fn github(plan: &CiPlan, jobs: &[Job]) -> String {
    let mut out = serde_json::Map::new();
    for j in jobs {
        let mut env = serde_json::Map::new();
        for s in &j.secrets {
            env.insert((*s).into(), json!(format!("${{{{ secrets.{s} }}}}")));
        }
        env.insert("AWS_REGION".into(), json!(plan.region));
        env.insert("MLSHIP_COMMIT".into(), json!("${{ github.sha }}"));
        let mut steps = Vec::new();
        if j.checkout {
            steps.push(json!({
                "name": "Check out",
                "uses": CHECKOUT,
                "with": {"persist-credentials": false},
            }));
        }
        for c in &j.commands {
            steps.push(json!({"run": c}));
        }
        let mut job = serde_json::Map::new();
        job.insert("name".into(), json!(j.title));
        if let Some(n) = j.needs {
            job.insert("needs".into(), json!(n));
        }
        job.insert(
            "if".into(),
            json!(if j.manual {
                "${{ github.event_name == 'workflow_dispatch' && inputs.rollback }}"
            } else {
                "${{ github.event_name == 'push' }}"
            }),
        );
        job.insert("runs-on".into(), json!("ubuntu-24.04"));
        job.insert("timeout-minutes".into(), json!(180));
        if j.id == "deploy" || j.manual {
            job.insert("environment".into(), json!("production"));
        }
        job.insert("container".into(), json!({"image": plan.image}));
        job.insert("permissions".into(), json!({"contents": "read"}));
        job.insert("env".into(), Json::Object(env));
        job.insert("steps".into(), Json::Array(steps));
        out.insert(j.id.into(), Json::Object(job));
    }
    let doc = json!({
        "name": format!("mlship {}", plan.model),
        "on": {
            "push": {"branches": [plan.branch]},
            "workflow_dispatch": {"inputs": {"rollback": {
                "description": "Roll production back (abort a running rollout, else move production to its previous version)",
                "type": "boolean",
                "default": false,
            }}},
        },
        "permissions": {},
        "concurrency": {"group": format!("mlship-{}", plan.model), "cancel-in-progress": false},
        "jobs": out,
    });
    // The tag the commit stands for, as a comment after it (YAML has no other place for it).
    let text = yaml(&doc).replace(
        &format!("uses: {CHECKOUT}\n"),
        &format!("uses: {CHECKOUT} # {CHECKOUT_TAG}\n"),
    );
    header("github", "#") + &text
}

fn gitlab(plan: &CiPlan, jobs: &[Job]) -> String {
    let branch = format!("$CI_COMMIT_BRANCH == \"{}\"", plan.branch);
    let mut doc = serde_json::Map::new();
    doc.insert(
        "workflow".into(),
        json!({"rules": [{"if": branch}, {"when": "never"}]}),
    );
    doc.insert("stages".into(), json!(["gate", "package", "deploy"]));
    doc.insert(
        "default".into(),
        json!({"image": plan.image, "interruptible": false}),
    );
    doc.insert(
        "variables".into(),
        json!({"MLSHIP_COMMIT": "$CI_COMMIT_SHA", "AWS_REGION": plan.region, "GIT_DEPTH": "1"}),
    );
    for j in jobs {
        let mut job = serde_json::Map::new();
        job.insert(
            "stage".into(),
            json!(if j.manual { "deploy" } else { j.id }),
        );
        match j.needs {
            Some(n) => job.insert("needs".into(), json!([n])),
            None => job.insert("needs".into(), json!([])),
        };
        if !j.checkout {
            job.insert("variables".into(), json!({"GIT_STRATEGY": "none"}));
        }
        if j.manual {
            job.insert(
                "rules".into(),
                json!([{"if": branch, "when": "manual", "allow_failure": true}]),
            );
        }
        if j.id == "deploy" || j.manual {
            job.insert("environment".into(), json!({"name": "production"}));
            job.insert(
                "resource_group".into(),
                json!(format!("mlship-{}", plan.model)),
            );
        }
        job.insert("timeout".into(), json!("3h"));
        job.insert("script".into(), json!(j.commands));
        doc.insert(j.id.into(), Json::Object(job));
    }
    header("gitlab", "#")
        + "# Set the secrets as masked, protected CI/CD variables: MLSHIP_STORE, MLSHIP_ARTIFACTS, AWS_ACCESS_KEY_ID,\n# AWS_SECRET_ACCESS_KEY"
        + if plan.ecr() {
            ""
        } else {
            ", MLSHIP_REGISTRY_USERNAME, MLSHIP_REGISTRY_PASSWORD"
        }
        + if plan.deploy == CiDeploy::Kubernetes {
            ", KUBE_CONFIG"
        } else {
            ""
        }
        + ".\n"
        + &yaml(&Json::Object(doc))
}

/// A Groovy single-quoted string (no interpolation: the shell expands the variables).
fn groovy(s: &str) -> String {
    let body = s.replace('\\', "\\\\").replace('\'', "\\'");
    if s.contains('\n') {
        format!("'''{body}'''")
    } else {
        format!("'{body}'")
    }
}

/// The Jenkins credential id of a secret: `MLSHIP_STORE` -> `mlship-store`.
fn credential_id(secret: &str) -> String {
    secret.to_ascii_lowercase().replace('_', "-")
}

fn jenkins(plan: &CiPlan, jobs: &[Job]) -> String {
    let mut o = header("jenkins", "//");
    o.push_str("// Each secret is a \"secret text\" credential whose id is its name in lower case with '-': MLSHIP_STORE\n// is `mlship-store`.\n");
    o.push_str("pipeline {\n    agent {\n        docker {\n");
    o.push_str(&format!("            image {}\n", groovy(&plan.image)));
    o.push_str("        }\n    }\n");
    o.push_str("    options {\n        disableConcurrentBuilds()\n        timeout(time: 3, unit: 'HOURS')\n    }\n");
    o.push_str("    parameters {\n        booleanParam(name: 'ROLLBACK', defaultValue: false, description: 'Roll production back (abort a running rollout, else move production to its previous version)')\n    }\n");
    o.push_str(&format!(
        "    environment {{\n        AWS_REGION = {}\n    }}\n",
        groovy(&plan.region)
    ));
    o.push_str("    stages {\n");
    for j in jobs {
        o.push_str(&format!("        stage({}) {{\n", groovy(j.title)));
        if j.manual {
            o.push_str("            when {\n                expression { params.ROLLBACK }\n            }\n");
        } else {
            o.push_str(&format!(
                "            when {{\n                allOf {{\n                    branch {}\n                    not {{ expression {{ params.ROLLBACK }} }}\n                }}\n            }}\n",
                groovy(&plan.branch)
            ));
        }
        o.push_str("            environment {\n");
        for s in &j.secrets {
            o.push_str(&format!(
                "                {s} = credentials({})\n",
                groovy(&credential_id(s))
            ));
        }
        o.push_str("            }\n            steps {\n");
        if j.checkout {
            o.push_str("                checkout scm\n");
        }
        for c in &j.commands {
            // GIT_COMMIT is Jenkins's name for the commit being built.
            o.push_str(&format!(
                "                sh {}\n",
                groovy(&format!("MLSHIP_COMMIT=\"$GIT_COMMIT\"; {c}"))
            ));
        }
        o.push_str("            }\n        }\n");
    }
    o.push_str("    }\n}\n");
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn plan() -> CiPlan {
        CiPlan {
            model: "fraud".into(),
            image: format!("ghcr.io/acme/mlship-ci@sha256:{}", "a".repeat(64)),
            branch: "main".into(),
            pipeline: true,
            model_file: "models/model.pkl".into(),
            input_example: "data/example.csv".into(),
            expected: Some("data/expected.json".into()),
            image_repository: "123456789012.dkr.ecr.eu-west-1.amazonaws.com/fraud".into(),
            config: "mlship.toml".into(),
            region: "eu-west-1".into(),
            deploy: CiDeploy::Kubernetes,
            rollout: CiRollout {
                steps: vec![5, 25, 50, 100],
                interval: "10m".into(),
                max_error_rate: Some(0.02),
                max_p99_ms: Some(50.0),
                min_requests: None,
                sticky_header: Some("X-Device-Id".into()),
                timeout: "2h".into(),
            },
        }
    }

    #[test]
    fn images_must_be_pinned_and_ecs_needs_its_cluster() {
        let mut p = plan();
        p.image = "ghcr.io/acme/mlship-ci:latest".into();
        assert!(
            render(&p, CiTarget::Github)
                .unwrap_err()
                .to_string()
                .contains("digest")
        );
        let mut p = plan();
        p.deploy = CiDeploy::Ecs {
            cluster: String::new(),
        };
        assert!(
            render(&p, CiTarget::Gitlab)
                .unwrap_err()
                .to_string()
                .contains("cluster")
        );
        let mut p = plan();
        p.image_repository = "fraud:1".into();
        assert!(p.check().is_err());
    }

    #[test]
    fn every_target_runs_the_same_commands() {
        let p = plan();
        for t in [CiTarget::Github, CiTarget::Gitlab, CiTarget::Jenkins] {
            let text = &render(&p, t).unwrap()[0].1;
            for j in p.jobs() {
                for c in &j.commands {
                    let shown = match t {
                        CiTarget::Jenkins => groovy(&format!("MLSHIP_COMMIT=\"$GIT_COMMIT\"; {c}")),
                        _ => c.clone(),
                    };
                    let found = text.contains(&shown)
                        || serde_yaml_ng::from_str::<Json>(text).is_ok_and(|d| {
                            d.to_string().contains(&Json::from(c.as_str()).to_string())
                        });
                    assert!(found, "{t:?} lacks {c}");
                }
            }
        }
    }

    #[test]
    fn words_are_quoted_for_the_shell() {
        assert_eq!(sh("models/model.pkl"), "models/model.pkl");
        assert_eq!(sh("my model's.pkl"), "'my model'\\''s.pkl'");
        assert_eq!(sh(""), "''");
    }
}
