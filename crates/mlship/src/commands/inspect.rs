//! `mlship inspect`: format, estimator tree, signature, classes, checksum and warnings of a model.

use serde_json::json;

use crate::cli::{InspectArgs, InspectFormat};
use crate::settings::Settings;
use crate::{model_ref, output};

pub fn run(a: &InspectArgs, settings: &Settings) -> anyhow::Result<()> {
    let r = model_ref::load(&a.model, settings)?;
    let m = &r.model;
    let sig = &m.signature;
    match a.output {
        InspectFormat::Json => {
            let signature = output::signature(sig);
            let doc = json!({
                "source": r.source,
                "format": m.info.format,
                "estimator": m.info.estimator,
                "library": m.info.library,
                "task": sig.task.name(),
                "named_columns": sig.named,
                "inputs": signature["inputs"],
                "classes": signature["classes"],
                "sha256": r.sha256,
                "size": r.size,
                "warnings": m.info.warnings,
            });
            crate::outln!("{}", serde_json::to_string_pretty(&doc)?);
        }
        InspectFormat::Table => {
            crate::outln!("source:     {}", r.source);
            crate::outln!("format:     {}", m.info.format);
            crate::outln!("estimator:  {}", m.info.estimator);
            if let Some(l) = &m.info.library {
                crate::outln!("written by: {l}");
            }
            crate::outln!("task:       {}", sig.task.name());
            crate::outln!("sha256:     {}", r.sha256);
            crate::outln!("size:       {} bytes", r.size);
            if let Some(c) = &sig.classes {
                let names: Vec<String> = c.iter().map(ToString::to_string).collect();
                crate::outln!("classes:    {}", names.join(", "));
            }
            let how = if sig.named {
                "by name"
            } else {
                "by position (fitted without column names)"
            };
            crate::outln!("inputs ({}, {how}):", sig.inputs.len());
            for f in &sig.inputs {
                crate::outln!(
                    "  {:<24} {}{}",
                    f.name,
                    f.dtype.name(),
                    if f.nullable { ", nullable" } else { "" }
                );
            }
            for w in &m.info.warnings {
                crate::outln!("warning:    {w}");
            }
        }
    }
    Ok(())
}
