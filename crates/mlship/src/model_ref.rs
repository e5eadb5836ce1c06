//! Model references: a model file or an MLflow model directory, read from disk and loaded.

use std::path::{Path, PathBuf};

use anyhow::Context;
use mlship_model::Model;
use sha2::{Digest, Sha256};

use crate::user;

/// A loaded model and facts about its source.
pub struct Resolved {
    pub model: Model,
    /// The artifact that was loaded.
    pub path: PathBuf,
    pub sha256: String,
    pub size: u64,
}

/// Loads the model a reference names.
pub fn load(reference: &str) -> anyhow::Result<Resolved> {
    if reference.starts_with("models:/") {
        return Err(user(
            format!("cannot resolve {reference}: this build of mlship has no model registry yet"),
            "pass the path of a model file or an MLflow model directory",
        ));
    }
    let path = Path::new(reference);
    if !path.exists() {
        return Err(user(
            format!("no such model file or directory: {reference}"),
            "check the path",
        ));
    }
    if path.is_dir() {
        let mlmodel_path = path.join("MLmodel");
        let text = std::fs::read_to_string(&mlmodel_path).map_err(|_| {
            user(
                format!("{reference} is a directory without an MLmodel file"),
                "pass a model file, or an MLflow model directory (one with an MLmodel file)",
            )
        })?;
        let ml = mlship_formats::mlflow::parse_mlmodel(&text)
            .with_context(|| format!("reading {}", mlmodel_path.display()))?;
        let artifact = path.join(&ml.artifact);
        let bytes = std::fs::read(&artifact)
            .with_context(|| format!("reading the model artifact {}", artifact.display()))?;
        let model = mlship_formats::load_mlflow(&ml, &bytes)
            .with_context(|| format!("loading {}", artifact.display()))?;
        return Ok(Resolved {
            model,
            sha256: sha256(&bytes),
            size: bytes.len() as u64,
            path: artifact,
        });
    }
    let bytes = std::fs::read(path).with_context(|| format!("reading {reference}"))?;
    let model = mlship_formats::load(&bytes).with_context(|| format!("loading {reference}"))?;
    Ok(Resolved {
        model,
        sha256: sha256(&bytes),
        size: bytes.len() as u64,
        path: path.to_path_buf(),
    })
}

pub fn sha256(b: &[u8]) -> String {
    let d = Sha256::digest(b);
    d.iter().map(|x| format!("{x:02x}")).collect()
}
