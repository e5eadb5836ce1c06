//! mlship's deployment files: Kubernetes manifests (typed, from `k8s-openapi`), an ECS task
//! definition and service, Terraform for AWS, a Dockerfile with its build context, pipelines
//! exported to Airflow, Argo Workflows and Kubernetes CronJobs, and CI/CD pipelines for GitHub
//! Actions, GitLab and Jenkins.
//!
//! Pure: a [`Plan`] in, `(file name, contents)` out; the binary writes them. Every renderer
//! agrees with the image `mlship image build` writes, whose layout is in [`layout`].

mod ci;
mod dockerfile;
mod ecs;
mod kubernetes;
mod pipeline;
mod terraform;

pub use ci::{CiDeploy, CiPlan, CiRollout, CiTarget, Job, STAGING_ALIAS, render as ci};
pub use dockerfile::render as dockerfile;
pub use ecs::render as ecs;
pub use kubernetes::render as kubernetes;
pub use kubernetes::render_server as kubernetes_server;
pub use pipeline::{
    PipelinePlan, airflow as pipeline_airflow, argo as pipeline_argo,
    kubernetes as pipeline_kubernetes,
};
pub use terraform::render as terraform;

/// Where things are in an mlship image, and how it is probed.
pub mod layout {
    pub const BINARY: &str = "/usr/local/bin/mlship";
    /// The config the image serves by default.
    pub const CONFIG: &str = "/etc/mlship/mlship.toml";
    /// Where a deployment mounts its own config (a Kubernetes ConfigMap).
    pub const DEPLOY_CONFIG_DIR: &str = "/etc/mlship/deploy";
    pub const MODELS: &str = "/models";
    pub const PORT: u16 = 8080;
    /// Where `mlship server` listens in a deployment (MLflow's port, which clients expect).
    pub const TRACKING_PORT: u16 = 5000;
    /// The unprivileged user the server runs as (the distroless `nonroot` numbers).
    pub const UID: u32 = 65532;
    pub const LIVE: &str = "/v2/health/live";
    pub const READY: &str = "/v2/health/ready";
    /// The health check command, for runtimes that run one in the container (Docker, ECS).
    pub fn health_command() -> Vec<String> {
        vec![
            BINARY.into(),
            "health".into(),
            "--url".into(),
            format!("http://127.0.0.1:{PORT}/health"),
        ]
    }
}

/// The one error type of mlship-deploy: a plan that cannot be rendered.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{field}: {why}")]
    Invalid { field: &'static str, why: String },
}

pub type Result<T> = std::result::Result<T, Error>;

/// The model a deployment serves.
#[derive(Clone, Debug)]
pub struct ModelFacts {
    pub name: String,
    pub version: Option<u32>,
    pub sha256: String,
    /// What it was read from: a path or `models:/NAME/VERSION`.
    pub source: String,
}

/// Everything the renderers need, with defaults filled in by the caller.
#[derive(Clone, Debug)]
pub struct Plan {
    /// The service's name: a DNS label (lowercase letters, digits, '-').
    pub name: String,
    /// The image to run; Terraform builds its own reference from its ECR repository.
    pub image: Option<String>,
    pub namespace: Option<String>,
    pub replicas: u32,
    pub min_replicas: u32,
    pub max_replicas: u32,
    pub target_cpu_percent: u32,
    pub cpu_millis: u32,
    pub memory_mib: u32,
    pub region: String,
    /// A Kubernetes Secret name, or a Secrets Manager ARN on AWS, holding MLSHIP_STORE and
    /// MLSHIP_ARTIFACTS: the replicas then serve from the shared registry.
    pub registry_secret: Option<String>,
    /// The canary target group's share of traffic (0-100) in Terraform's load balancer.
    pub canary_weight: u32,
    /// The mlship.toml a Kubernetes ConfigMap carries (`[serve]`, deployments).
    pub serve_toml: String,
    /// `mlship serve` arguments for runtimes without a config file (ECS, Terraform); empty means
    /// the image's own command.
    pub serve_args: Vec<String>,
    pub subnets: Vec<String>,
    pub security_groups: Vec<String>,
    pub model: ModelFacts,
}

/// The tracking server (`mlship server`) as a deployment: replicas on one shared store.
#[derive(Clone, Debug)]
pub struct ServerPlan {
    /// The service's name: a DNS label.
    pub name: String,
    /// Any mlship image: the server is the binary's `server` command.
    pub image: Option<String>,
    pub namespace: Option<String>,
    pub replicas: u32,
    pub cpu_millis: u32,
    pub memory_mib: u32,
    /// Written into the Secret to fill in, beside the store's placeholders.
    pub region: String,
    /// The Kubernetes Secret holding MLSHIP_STORE (PostgreSQL) and MLSHIP_ARTIFACTS (S3).
    pub secret: String,
}

impl ServerPlan {
    pub fn check(&self) -> Result<()> {
        check_name(&self.name)?;
        check_name(&self.secret).map_err(|_| Error::Invalid {
            field: "registry_secret",
            why: format!(
                "{:?} must be 1-50 lowercase letters, digits or '-', starting with a letter",
                self.secret
            ),
        })?;
        if self.replicas == 0 {
            return Err(Error::Invalid {
                field: "replicas",
                why: "the tracking server needs at least 1 replica".into(),
            });
        }
        if self.cpu_millis == 0 || self.memory_mib == 0 {
            return Err(Error::Invalid {
                field: "cpu_millis",
                why: "cpu_millis and memory_mib must be positive".into(),
            });
        }
        Ok(())
    }
}

/// A Kubernetes object name that is also a DNS label short enough for derived names.
fn check_name(name: &str) -> Result<()> {
    let dns = !name.is_empty()
        && name.len() <= 50
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && !name.ends_with('-')
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if dns {
        Ok(())
    } else {
        Err(Error::Invalid {
            field: "name",
            why: format!(
                "{name:?} must be 1-50 lowercase letters, digits or '-', starting with a letter"
            ),
        })
    }
}

/// A rendered file: a name relative to the output folder, and its contents.
pub type File = (String, String);

impl Plan {
    /// Checks what every target needs.
    pub fn check(&self) -> Result<()> {
        check_name(&self.name)?;
        if self.min_replicas == 0 || self.min_replicas > self.max_replicas {
            return Err(Error::Invalid {
                field: "min_replicas",
                why: format!(
                    "{} must be at least 1 and at most max_replicas ({})",
                    self.min_replicas, self.max_replicas
                ),
            });
        }
        if !(1..=100).contains(&self.target_cpu_percent) {
            return Err(Error::Invalid {
                field: "target_cpu_percent",
                why: format!("{} is not within 1-100", self.target_cpu_percent),
            });
        }
        if self.canary_weight > 100 {
            return Err(Error::Invalid {
                field: "canary_weight",
                why: format!("{} is not within 0-100", self.canary_weight),
            });
        }
        if self.cpu_millis == 0 || self.memory_mib == 0 {
            return Err(Error::Invalid {
                field: "cpu_millis",
                why: "cpu_millis and memory_mib must be positive".into(),
            });
        }
        Ok(())
    }

    /// Fargate accepts only some CPU and memory pairs.
    pub fn check_fargate(&self) -> Result<()> {
        let (cpu, mem) = (self.cpu_millis, self.memory_mib);
        let ok = match cpu {
            256 => [512, 1024, 2048].contains(&mem),
            512 => (1024..=4096).contains(&mem) && mem % 1024 == 0,
            1024 => (2048..=8192).contains(&mem) && mem % 1024 == 0,
            2048 => (4096..=16384).contains(&mem) && mem % 1024 == 0,
            4096 => (8192..=30720).contains(&mem) && mem % 1024 == 0,
            8192 => (16384..=61440).contains(&mem) && mem % 4096 == 0,
            16384 => (32768..=122880).contains(&mem) && mem % 8192 == 0,
            _ => false,
        };
        if ok {
            Ok(())
        } else {
            Err(Error::Invalid {
                field: "cpu_millis",
                why: format!(
                    "Fargate has no task size of {cpu} CPU units with {mem} MiB (e.g. 256/512, 512/1024, 1024/2048, 2048/4096, 4096/8192)"
                ),
            })
        }
    }
}

#[cfg(test)]
pub(crate) fn sample() -> Plan {
    Plan {
        name: "iris".into(),
        image: Some("registry.example.com/iris:1".into()),
        namespace: None,
        replicas: 2,
        min_replicas: 2,
        max_replicas: 10,
        target_cpu_percent: 70,
        cpu_millis: 512,
        memory_mib: 1024,
        region: "eu-west-1".into(),
        registry_secret: None,
        canary_weight: 0,
        serve_toml:
            "[serve]\nhost = \"0.0.0.0\"\nport = 8080\nmodels = [\"iris=/models/iris/model.pkl\"]\n"
                .into(),
        serve_args: Vec::new(),
        subnets: Vec::new(),
        security_groups: Vec::new(),
        model: ModelFacts {
            name: "iris".into(),
            version: Some(3),
            sha256: "ab".repeat(32),
            source: "models:/iris/3".into(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plans_are_checked() {
        sample().check().unwrap();
        sample().check_fargate().unwrap();
        let mut p = sample();
        p.name = "Iris_1".into();
        assert!(p.check().unwrap_err().to_string().starts_with("name:"));
        let mut p = sample();
        p.min_replicas = 11;
        assert!(p.check().is_err());
        let mut p = sample();
        p.memory_mib = 700;
        assert!(
            p.check_fargate()
                .unwrap_err()
                .to_string()
                .contains("Fargate")
        );
    }
}
