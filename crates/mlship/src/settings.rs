//! Settings: where the registry lives, from flags and the environment, resolved once.
//!
//! Every environment variable mlship reads is declared here (a test holds the code to it):
//! - `MLSHIP_HOME` (else `HOME`'s `.mlship`), `MLSHIP_STORE`, `MLSHIP_ARTIFACTS`: resolved below;
//!   `USER` names the author of registry changes;
//! - `RUST_LOG` filters the servers' logs (`main::init_logs`);
//! - `AWS_REGION`, `AWS_ENDPOINT_URL` (or `AWS_ENDPOINT`, for S3-compatible stores) and the AWS
//!   SDK's credential variables: the S3 stores (`mlship-registry`'s `s3.rs`) and `deploy render`;
//! - `MLSHIP_REGISTRY_USERNAME`, `MLSHIP_REGISTRY_PASSWORD`, `DOCKER_CONFIG` (else `HOME`'s
//!   `.docker`): `image push` credentials (`commands/image.rs`);
//! - `AWS_PROFILE` and `AWS_SHARED_CREDENTIALS_FILE` (else `HOME`'s `.aws/credentials`): the
//!   profile of an S3 remote of `mlship data` that sets no keys (`mlship-data`'s `remote.rs`);
//! - `MLFLOW_TRACKING_URI`: the server `mlship run --track` logs to when given no URL
//!   (`commands/data.rs`);
//! - `OTEL_EXPORTER_OTLP_ENDPOINT`: the servers' `--otlp-endpoint` (`cli.rs`); the
//!   OpenTelemetry SDK reads its own `OTEL_*` settings (`mlship-server`'s `otel.rs`);
//! - `MLSHIP_ISA` caps the tree scorer's vector instructions, for benchmarks (`mlship-model`);
//! - `MLSHIP_FAULT_PANIC_MODEL`, only in builds with the `fault-injection` feature: the served
//!   model that panics, for the soak benchmark (`mlship-server`'s `fault.rs`).

use std::path::PathBuf;

use mlship_registry::{
    ArtifactStore, FileStore, LocalArtifacts, LocalFiles, MetadataStore, S3Artifacts, S3Files,
    SqlStore,
};

use crate::user;

/// Where the registry's metadata and artifacts are.
#[derive(Clone, Debug)]
pub struct Settings {
    pub store: String,
    pub artifacts: String,
    /// The home folder (the schedules' history lives under it).
    pub home: PathBuf,
}

impl Settings {
    /// Resolves `--home`, then `MLSHIP_HOME`, then `~/.mlship`; `MLSHIP_STORE` and
    /// `MLSHIP_ARTIFACTS` override the SQLite file and the artifact folder under it.
    pub fn resolve(home_flag: Option<PathBuf>) -> Settings {
        let home = home_flag
            .or_else(|| std::env::var_os("MLSHIP_HOME").map(PathBuf::from))
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".mlship")))
            .unwrap_or_else(|| PathBuf::from(".mlship"));
        let store = std::env::var("MLSHIP_STORE")
            .unwrap_or_else(|_| format!("sqlite://{}", home.join("registry.db").display()));
        let artifacts = std::env::var("MLSHIP_ARTIFACTS")
            .unwrap_or_else(|_| home.join("artifacts").display().to_string());
        Settings {
            store,
            artifacts,
            home,
        }
    }

    /// Opens the metadata store.
    pub fn metadata(&self) -> anyhow::Result<Box<dyn MetadataStore>> {
        Ok(Box::new(self.sql()?))
    }

    /// Opens the metadata store as its concrete type (tracking and the MLflow API use it).
    pub fn sql(&self) -> anyhow::Result<SqlStore> {
        if let Some(path) = self.store.strip_prefix("sqlite://") {
            let s = SqlStore::sqlite(path).map_err(|e| {
                // SQLite needs room for its WAL side files to open a database: on a full disk
                // opening fails with a bare I/O error.
                let hint = if e.is_disk_full() || e.to_string().contains("disk I/O error") {
                    "check MLSHIP_STORE or --home, and that the disk holding it is not full"
                } else {
                    "check MLSHIP_STORE or --home"
                };
                user(
                    format!("cannot open the metadata store {}: {e}", self.store),
                    hint,
                )
            })?;
            return Ok(s);
        }
        if self.store.starts_with("postgres://") || self.store.starts_with("postgresql://") {
            let s = SqlStore::postgres(&self.store).map_err(|e| {
                user(
                    format!("cannot reach the metadata store: {e}"),
                    "check MLSHIP_STORE and that PostgreSQL is up",
                )
            })?;
            return Ok(s);
        }
        Err(user(
            format!("unsupported metadata store {:?}", self.store),
            "use sqlite://PATH or postgres://USER@HOST:PORT/DB",
        ))
    }

    /// Opens the artifact store.
    pub fn artifacts(&self) -> anyhow::Result<Box<dyn ArtifactStore>> {
        if self.artifacts.starts_with("s3://") {
            let s = S3Artifacts::open(&self.artifacts).map_err(|e| {
                user(
                    format!("cannot open the artifact store: {e}"),
                    "check MLSHIP_ARTIFACTS and the AWS variables",
                )
            })?;
            return Ok(Box::new(s));
        }
        if self.artifacts.contains("://") && !self.artifacts.starts_with("file://") {
            return Err(user(
                format!("unsupported artifact store {:?}", self.artifacts),
                "use a folder or s3://BUCKET/PREFIX",
            ));
        }
        let path = self.artifacts.trim_start_matches("file://");
        let s = LocalArtifacts::open(path).map_err(|e| {
            user(
                format!("cannot open the artifact store {path}: {e}"),
                "check MLSHIP_ARTIFACTS or --home",
            )
        })?;
        Ok(Box::new(s))
    }

    /// The tracking server's artifacts, by path: `mlflow-artifacts/` beside the registry's
    /// objects, in the same folder or bucket.
    pub fn tracking_files(&self) -> anyhow::Result<std::sync::Arc<dyn FileStore>> {
        if self.artifacts.starts_with("s3://") {
            let url = format!("{}/mlflow-artifacts", self.artifacts.trim_end_matches('/'));
            let s = S3Files::open(&url).map_err(|e| {
                user(
                    format!("cannot open the artifact store: {e}"),
                    "check MLSHIP_ARTIFACTS and the AWS variables",
                )
            })?;
            return Ok(std::sync::Arc::new(s));
        }
        let path = std::path::Path::new(self.artifacts.trim_start_matches("file://"))
            .join("mlflow-artifacts");
        let s = LocalFiles::open(&path).map_err(|e| {
            user(
                format!("cannot open the artifact store {}: {e}", path.display()),
                "check MLSHIP_ARTIFACTS or --home",
            )
        })?;
        Ok(std::sync::Arc::new(s))
    }

    /// Who makes a change, for the registry's records.
    pub fn who() -> String {
        std::env::var("USER")
            .ok()
            .filter(|u| !u.is_empty())
            .unwrap_or_else(|| "unknown".into())
    }
}
