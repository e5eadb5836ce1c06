//! `mlship models register NAME PATH`: validate, store the artifact, then record the version.
//!
//! The order is what makes a crash harmless: the model is loaded first (an unsupported or hostile
//! file stores nothing), the artifact is made durable next, and the version row comes last, in
//! one transaction. A crash before the row leaves at most an unlisted artifact.

use std::io::IsTerminal;

use anyhow::Context;
use mlship_registry::{NewVersion, validate_name};
use serde_json::{Value as Json, json};

use super::print;
use crate::cli::{InputFormat, RegisterArgs};
use crate::model_ref::{self, Payload};
use crate::settings::Settings;
use crate::{output, user};
use mlship_server::input;

pub fn run(a: &RegisterArgs, settings: &Settings) -> anyhow::Result<()> {
    validate_name("model name", &a.name)?;
    for alias in &a.alias {
        validate_name("alias", alias)?;
    }
    let local = model_ref::read_local(&a.path)?;
    let model = &local.model;

    // The example: the one given, else the one an MLflow directory saved.
    let example: Option<(Vec<u8>, InputFormat)> = match &a.input_example {
        Some(p) => {
            let b = std::fs::read(p).map_err(|e| {
                user(
                    format!("cannot read the input example {}: {e}", p.display()),
                    "pass a CSV or JSON file",
                )
            })?;
            let f = if p.extension().is_some_and(|e| e == "json") {
                InputFormat::Json
            } else {
                InputFormat::Csv
            };
            Some((b, f))
        }
        None => local.input_example.clone().map(|b| (b, InputFormat::Json)),
    };
    let mut predictions = None;
    if let Some((bytes, format)) = &example {
        let text = String::from_utf8_lossy(bytes);
        let frame =
            input::parse(&text, *format, &model.signature).context("reading the input example")?;
        let out = model.predict(&frame).context("scoring the input example")?;
        let got = output::to_json(&out);
        if let Some(exp) = &a.expected {
            let want: Json = serde_json::from_slice(
                &std::fs::read(exp).with_context(|| format!("reading {}", exp.display()))?,
            )
            .map_err(|e| {
                user(
                    format!("{} is not JSON: {e}", exp.display()),
                    "pass {\"predictions\": [...]} as `mlship predict` prints it",
                )
            })?;
            if let Err(why) = same_predictions(&got, &want) {
                return Err(user(
                    format!(
                        "the model's predictions on the example differ from {}: {why}; nothing was registered",
                        exp.display()
                    ),
                    "check that the file is the model you trained, or update the expected predictions",
                ));
            }
        }
        predictions = Some(got);
    }

    // Opened before uploading (an unreachable store fails early) and kept: a SQLite store in
    // WAL mode needs room for its side files when opened, which a full disk may no longer have.
    let mut meta = settings.metadata()?;
    let store = settings.artifacts()?;
    let mut progress = progress_printer();
    let stored = match &local.payload {
        Payload::File(p) => {
            let mut f =
                std::fs::File::open(p).with_context(|| format!("opening {}", p.display()))?;
            store.put(&mut f, &mut progress)?
        }
        Payload::Bytes(b) => store.put(&mut b.as_slice(), &mut progress)?,
    };
    let example_sha = match &example {
        Some((b, _)) => Some(store.put(&mut b.as_slice(), &mut |_| {})?.sha256),
        None => None,
    };
    let predictions_sha = match &predictions {
        Some(p) => Some(
            store
                .put(&mut p.to_string().as_bytes(), &mut |_| {})?
                .sha256,
        ),
        None => None,
    };

    let mut tags: std::collections::BTreeMap<String, String> = a.tag.iter().cloned().collect();
    tags.extend(data_lineage()?);
    let signature = output::signature(&model.signature);
    let new = NewVersion {
        name: a.name.clone(),
        kind: local.kind.into(),
        format: model.info.format.clone(),
        estimator: model.info.estimator.clone(),
        signature: signature.to_string(),
        sha256: stored.sha256.clone(),
        size: stored.size,
        file_name: local.file_name.clone(),
        created_by: Settings::who(),
        description: a.description.clone(),
        tags,
        git_commit: git_commit(),
        input_example: example_sha,
        example_predictions: predictions_sha,
        ..NewVersion::default()
    };
    // The version and its aliases are one transaction. What failed after the upload leaves at
    // most whole, unreferenced objects (content-addressed: registering the file again reuses
    // them); never a partial file, a version without its aliases or a half-written row.
    let v = meta.register(&new, &a.alias, &Settings::who(), "set at registration")?;
    let doc = json!({
        "name": a.name,
        "version": v.version,
        "sha256": stored.sha256,
        "size": stored.size,
        "format": new.format,
        "estimator": new.estimator,
        "aliases": a.alias,
        "uri": format!("models:/{}/{}", a.name, v.version),
    });
    let row = vec![
        a.name.clone(),
        v.version.to_string(),
        stored.sha256[..12].to_string(),
        new.estimator.clone(),
        a.alias.join(","),
    ];
    print(
        a.out.output,
        &doc,
        &["NAME", "VERSION", "SHA256", "ESTIMATOR", "ALIASES"],
        vec![row],
    );
    Ok(())
}

/// Prints upload progress on a terminal only, for artifacts over 8 MiB.
fn progress_printer() -> impl FnMut(u64) {
    let tty = std::io::stderr().is_terminal();
    let mut last = 0u64;
    move |bytes| {
        if tty && bytes >= 8 << 20 && bytes - last >= 4 << 20 {
            last = bytes;
            eprint!("\ruploaded {} MiB", bytes >> 20);
        }
    }
}

/// The data the model was made from: in a DVC repository (`mlship data`), the md5 of every
/// tracked output as `.dvc` files record it, as tags `mlship.data.PATH`. A `.dvc` file that does
/// not parse stops the registration: lineage that silently goes missing is worse than none.
pub(crate) fn data_lineage() -> anyhow::Result<Vec<(String, String)>> {
    let Ok(cwd) = std::env::current_dir() else {
        return Ok(Vec::new());
    };
    let Ok(repo) = mlship_data::Repo::open(&cwd) else {
        return Ok(Vec::new());
    };
    let outs = repo
        .outputs()
        .context("reading the DVC repository's .dvc files")?;
    Ok(outs
        .into_iter()
        .filter_map(|(path, o)| o.md5.map(|m| (format!("{LINEAGE}{path}"), m)))
        .collect())
}

/// The tag prefix of a version's data lineage.
pub(crate) const LINEAGE: &str = "mlship.data.";

/// The commit of the working folder, when it is a git checkout.
pub(crate) fn git_commit() -> Option<String> {
    let out = std::process::Command::new("git")
        .args(["rev-parse", "HEAD"])
        .stderr(std::process::Stdio::null())
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
        .filter(|s| s.len() == 40)
}

/// Compares predictions (labels exactly, numbers to 1e-9) and probabilities (1e-9) when both have them.
fn same_predictions(got: &Json, want: &Json) -> Result<(), String> {
    let (Some(g), Some(w)) = (
        got["predictions"].as_array(),
        want["predictions"].as_array(),
    ) else {
        return Err("the expected file has no `predictions` list".into());
    };
    if g.len() != w.len() {
        return Err(format!("{} predictions, expected {}", g.len(), w.len()));
    }
    let close = |a: &Json, b: &Json| match (a.as_f64(), b.as_f64()) {
        (Some(x), Some(y)) if !(a.is_i64() && b.is_i64()) => {
            (x - y).abs() <= 1e-9 * y.abs().max(1.0)
        }
        _ => a == b,
    };
    for (i, (a, b)) in g.iter().zip(w).enumerate() {
        if !close(a, b) {
            return Err(format!("row {i}: predicted {a}, expected {b}"));
        }
    }
    if let (Some(gp), Some(wp)) = (
        got["probabilities"].as_array(),
        want["probabilities"].as_array(),
    ) {
        for (i, (a, b)) in gp.iter().zip(wp).enumerate() {
            let (Some(a), Some(b)) = (a.as_array(), b.as_array()) else {
                continue;
            };
            for (x, y) in a.iter().zip(b) {
                if (x.as_f64().unwrap_or(f64::NAN) - y.as_f64().unwrap_or(f64::NAN)).abs() > 1e-9 {
                    return Err(format!("row {i}: probabilities {x} and {y} differ"));
                }
            }
        }
    }
    Ok(())
}
