//! Model references: a model file, an MLflow model directory, or a `models:/` registry URI.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use anyhow::Context;
use mlship_model::Model;
use mlship_registry::{Reference, sha256_hex};

use crate::settings::Settings;
use crate::user;

/// A loaded model and facts about its source.
pub struct Resolved {
    pub model: Model,
    /// What was loaded: a path, or `models:/NAME/VERSION`.
    pub source: String,
    pub sha256: String,
    pub size: u64,
    /// The registry version, for `models:/` references.
    pub version: Option<u32>,
}

/// Loads the model a reference names.
pub fn load(reference: &str, settings: &Settings) -> anyhow::Result<Resolved> {
    if let Some(r) = Reference::parse(reference) {
        let r = r.map_err(|e| {
            user(
                e.to_string(),
                "for example models:/fraud/3, models:/fraud@production or models:/fraud",
            )
        })?;
        return load_registered(&r, settings);
    }
    let path = Path::new(reference);
    if !path.exists() {
        return Err(user(
            format!("no such model file or directory: {reference}"),
            "check the path, or use models:/NAME for a registered model",
        ));
    }
    let local = read_local(path)?;
    Ok(Resolved {
        model: local.model,
        source: local.artifact_path.display().to_string(),
        sha256: local.sha256,
        size: local.size,
        version: None,
    })
}

/// A model file or MLflow directory read from disk, as registration stores it.
pub struct Local {
    pub model: Model,
    /// `file` or `mlflow`.
    pub kind: &'static str,
    /// The bytes to store: the file, or a tar of the MLflow directory.
    pub payload: Payload,
    pub file_name: String,
    /// The file that holds the model (the artifact inside an MLflow directory).
    pub artifact_path: PathBuf,
    pub sha256: String,
    pub size: u64,
    /// An MLflow directory's input example, if it saved one.
    pub input_example: Option<Vec<u8>>,
}

/// What registration uploads.
pub enum Payload {
    File(PathBuf),
    Bytes(Vec<u8>),
}

pub fn read_local(path: &Path) -> anyhow::Result<Local> {
    if path.is_dir() {
        let mlmodel_path = path.join("MLmodel");
        let text = std::fs::read_to_string(&mlmodel_path).map_err(|_| {
            user(
                format!("{} is a directory without an MLmodel file", path.display()),
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
        let input_example = ml
            .input_example
            .as_ref()
            .and_then(|f| std::fs::read(path.join(f)).ok());
        let tar = tar_directory(path)?;
        let name = path
            .file_name()
            .map_or_else(|| "model".into(), |n| n.to_string_lossy().to_string());
        return Ok(Local {
            model,
            kind: "mlflow",
            sha256: sha256_hex(&bytes),
            size: bytes.len() as u64,
            payload: Payload::Bytes(tar),
            file_name: name,
            artifact_path: artifact,
            input_example,
        });
    }
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let model =
        mlship_formats::load(&bytes).with_context(|| format!("loading {}", path.display()))?;
    Ok(Local {
        model,
        kind: "file",
        sha256: sha256_hex(&bytes),
        size: bytes.len() as u64,
        payload: Payload::File(path.to_path_buf()),
        file_name: path
            .file_name()
            .map_or_else(|| "model".into(), |n| n.to_string_lossy().to_string()),
        artifact_path: path.to_path_buf(),
        input_example: None,
    })
}

/// A deterministic tar of a directory's regular files (sorted, mtime 0), as the registry stores
/// MLflow model directories.
fn tar_directory(dir: &Path) -> anyhow::Result<Vec<u8>> {
    let mut rels = Vec::new();
    collect(dir, dir, &mut rels)?;
    let mut files = Vec::with_capacity(rels.len());
    for rel in rels {
        let data =
            std::fs::read(dir.join(&rel)).with_context(|| format!("reading {}", rel.display()))?;
        files.push((rel.to_string_lossy().replace('\\', "/"), data));
    }
    tar_files(&files)
}

/// The same deterministic tar from files in memory (relative paths, any order).
pub fn tar_files(files: &[(String, Vec<u8>)]) -> anyhow::Result<Vec<u8>> {
    let mut sorted: Vec<&(String, Vec<u8>)> = files.iter().collect();
    sorted.sort_by(|a, b| a.0.cmp(&b.0));
    let mut b = tar::Builder::new(Vec::new());
    for (rel, data) in sorted {
        let mut h = tar::Header::new_ustar();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_mtime(0);
        h.set_entry_type(tar::EntryType::Regular);
        b.append_data(&mut h, rel, data.as_slice())
            .with_context(|| format!("packing {rel}"))?;
    }
    Ok(b.into_inner()?)
}

/// Refuses a version registered through the MLflow API that mlship cannot load, with the reason.
fn servable(name: &str, v: &mlship_registry::Version) -> anyhow::Result<()> {
    match &v.meta.not_servable {
        Some(why) => Err(user(
            format!(
                "version {} of `{name}` cannot be served by mlship: {why}",
                v.version
            ),
            "it was registered through the MLflow API from a flavor mlship does not load; serve a scikit-learn, XGBoost, LightGBM or ONNX model",
        )),
        None => Ok(()),
    }
}

fn collect(root: &Path, dir: &Path, out: &mut Vec<PathBuf>) -> anyhow::Result<()> {
    for e in std::fs::read_dir(dir).with_context(|| format!("listing {}", dir.display()))? {
        let e = e?;
        let t = e.file_type()?;
        if t.is_dir() {
            collect(root, &e.path(), out)?;
        } else if t.is_file() {
            out.push(
                e.path()
                    .strip_prefix(root)
                    .expect("below the root")
                    .to_path_buf(),
            );
        }
    }
    Ok(())
}

/// The files of a tar made by `tar_directory`.
pub fn untar(b: &[u8]) -> anyhow::Result<BTreeMap<String, Vec<u8>>> {
    let mut out = BTreeMap::new();
    let mut a = tar::Archive::new(b);
    for e in a.entries()? {
        let mut e = e?;
        let name = e.path()?.to_string_lossy().to_string();
        let mut data = Vec::new();
        e.read_to_end(&mut data)?;
        out.insert(name, data);
    }
    Ok(out)
}

fn load_registered(r: &Reference, settings: &Settings) -> anyhow::Result<Resolved> {
    let mut meta = settings.metadata()?;
    let v = meta.resolve(&r.name, &r.selector)?;
    servable(&r.name, &v)?;
    let store = settings.artifacts()?;
    let bytes = store
        .get(&v.meta.sha256)
        .with_context(|| format!("fetching the artifact of {}/{}", r.name, v.version))?;
    let source = format!("models:/{}/{}", r.name, v.version);
    let model = stored_model(&v, &bytes).with_context(|| format!("loading {source}"))?;
    Ok(Resolved {
        model,
        source,
        sha256: v.meta.sha256.clone(),
        size: v.meta.size,
        version: Some(v.version),
    })
}

/// Loads a registry version from its artifact's bytes (a model file, or a tar of an MLflow
/// directory).
pub fn stored_model(v: &mlship_registry::Version, bytes: &[u8]) -> anyhow::Result<Model> {
    if v.meta.kind != "mlflow" {
        return Ok(mlship_formats::load(bytes)?);
    }
    let files = untar(bytes)?;
    let text = files
        .get("MLmodel")
        .ok_or_else(|| anyhow::anyhow!("stored MLflow model without an MLmodel file"))?;
    let ml = mlship_formats::mlflow::parse_mlmodel(&String::from_utf8_lossy(text))?;
    let art = files
        .get(&ml.artifact)
        .ok_or_else(|| anyhow::anyhow!("stored MLflow model without {}", ml.artifact))?;
    Ok(mlship_formats::load_mlflow(&ml, art)?)
}

/// A model's files as they go into an image or a build context, with what describes it.
pub struct Packed {
    /// The name to serve it under: the registered name, else the file's stem.
    pub name: String,
    pub version: Option<u32>,
    pub sha256: String,
    pub format: String,
    /// What the reference named (a path or `models:/NAME/VERSION`).
    pub source: String,
    pub git_commit: Option<String>,
    /// Relative paths and contents; an MLflow directory gives all its files.
    pub files: Vec<(String, Vec<u8>)>,
    /// What `serve` is given, relative to where the files go: the file, or `""` for a directory.
    pub entry: String,
}

/// Reads a model's files (a file, an MLflow directory, or a registered version) and checks that
/// they load, so an image never carries a model it cannot serve.
pub fn pack(reference: &str, settings: &Settings) -> anyhow::Result<Packed> {
    let resolved = load(reference, settings)?;
    let format = resolved.model.info.format.to_string();
    if let Some(r) = Reference::parse(reference) {
        let r = r.map_err(|e| user(e.to_string(), "for example models:/fraud@production"))?;
        let v = settings.metadata()?.resolve(&r.name, &r.selector)?;
        servable(&r.name, &v)?;
        let bytes = settings
            .artifacts()?
            .get(&v.meta.sha256)
            .with_context(|| format!("fetching the artifact of {}/{}", r.name, v.version))?;
        let (files, entry) = if v.meta.kind == "mlflow" {
            (untar(&bytes)?.into_iter().collect(), String::new())
        } else {
            (
                vec![(v.meta.file_name.clone(), bytes)],
                v.meta.file_name.clone(),
            )
        };
        return Ok(Packed {
            name: r.name.clone(),
            version: Some(v.version),
            sha256: v.meta.sha256.clone(),
            format,
            source: resolved.source,
            git_commit: v.meta.git_commit.clone(),
            files,
            entry,
        });
    }
    let path = Path::new(reference);
    let stem = path
        .file_stem()
        .map_or_else(|| "model".into(), |s| s.to_string_lossy().to_string());
    let (files, entry) = if path.is_dir() {
        let mut rels = Vec::new();
        collect(path, path, &mut rels)?;
        rels.sort();
        let mut files = Vec::new();
        for rel in rels {
            let data = std::fs::read(path.join(&rel))
                .with_context(|| format!("reading {}", rel.display()))?;
            files.push((rel.to_string_lossy().replace('\\', "/"), data));
        }
        (files, String::new())
    } else {
        let file_name = path
            .file_name()
            .map_or_else(|| "model".into(), |n| n.to_string_lossy().to_string());
        let data = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
        (vec![(file_name.clone(), data)], file_name)
    };
    Ok(Packed {
        name: sanitize(&stem),
        version: resolved.version,
        sha256: resolved.sha256,
        format,
        source: resolved.source,
        git_commit: None,
        files,
        entry,
    })
}

/// A name usable for a served model, a container and a Kubernetes object: lowercase letters,
/// digits and '-', starting with a letter.
pub fn sanitize(s: &str) -> String {
    let mut out: String = s
        .to_ascii_lowercase()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    out = out.trim_matches('-').to_string();
    while out.contains("--") {
        out = out.replace("--", "-");
    }
    if !out.starts_with(|c: char| c.is_ascii_lowercase()) {
        out = format!("m-{out}");
    }
    out.truncate(50);
    out.trim_end_matches('-').to_string()
}
