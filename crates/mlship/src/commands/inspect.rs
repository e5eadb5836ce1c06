//! `mlship inspect`: format, estimator tree, signature, classes, checksum and warnings of a model.

use serde_json::json;

use crate::cli::{InspectArgs, InspectFormat};
use crate::{model_ref, output};

pub fn run(a: &InspectArgs) -> anyhow::Result<()> {
    let r = model_ref::load(&a.model)?;
    let m = &r.model;
    let sig = &m.signature;
    match a.output {
        InspectFormat::Json => {
            let doc = json!({
                "path": r.path.display().to_string(),
                "format": m.info.format,
                "estimator": m.info.estimator,
                "library": m.info.library,
                "task": sig.task.name(),
                "named_columns": sig.named,
                "inputs": sig.inputs.iter().map(|f| json!({"name": f.name, "type": f.dtype.name(), "nullable": f.nullable})).collect::<Vec<_>>(),
                "classes": sig.classes.as_ref().map(|c| c.iter().map(output::label).collect::<Vec<_>>()),
                "sha256": r.sha256,
                "size": r.size,
                "warnings": m.info.warnings,
            });
            println!("{}", serde_json::to_string_pretty(&doc)?);
        }
        InspectFormat::Table => {
            println!("path:       {}", r.path.display());
            println!("format:     {}", m.info.format);
            println!("estimator:  {}", m.info.estimator);
            if let Some(l) = &m.info.library {
                println!("written by: {l}");
            }
            println!("task:       {}", sig.task.name());
            println!("sha256:     {}", r.sha256);
            println!("size:       {} bytes", r.size);
            if let Some(c) = &sig.classes {
                let names: Vec<String> = c.iter().map(ToString::to_string).collect();
                println!("classes:    {}", names.join(", "));
            }
            let how = if sig.named {
                "by name"
            } else {
                "by position (fitted without column names)"
            };
            println!("inputs ({}, {how}):", sig.inputs.len());
            for f in &sig.inputs {
                println!(
                    "  {:<24} {}{}",
                    f.name,
                    f.dtype.name(),
                    if f.nullable { ", nullable" } else { "" }
                );
            }
            for w in &m.info.warnings {
                println!("warning:    {w}");
            }
        }
    }
    Ok(())
}
