//! `mlship models …`: the registry commands, one per file, with shared JSON and table shapes.

mod alias;
mod delete;
mod history;
mod list;
pub(crate) mod register;
mod rollback;
mod show;
mod versions;

use mlship_registry::{AliasEvent, ModelSummary, Version};
use serde_json::{Value as Json, json};

use crate::cli::{InspectFormat, ModelsCommand};
use crate::settings::Settings;
use crate::timefmt::rfc3339;

pub fn run(cmd: ModelsCommand, settings: &Settings) -> anyhow::Result<()> {
    match cmd {
        ModelsCommand::Register(a) => register::run(&a, settings),
        ModelsCommand::List(a) => list::run(&a, settings),
        ModelsCommand::Show(a) => show::run(&a, settings),
        ModelsCommand::Versions(a) => versions::run(&a, settings),
        ModelsCommand::History(a) => history::run(&a, settings),
        ModelsCommand::Alias(a) => alias::run(&a, settings),
        ModelsCommand::Rollback(a) => rollback::run(&a, settings),
        ModelsCommand::Delete(a) => delete::run(&a, settings),
    }
}

/// The JSON shape of a version (`versions`, `show`).
fn version_json(v: &Version, aliases: &[&str]) -> Json {
    let m = &v.meta;
    json!({
        "name": m.name,
        "version": v.version,
        "created_at": rfc3339(v.created_at),
        "created_by": m.created_by,
        "kind": m.kind,
        "format": m.format,
        "estimator": m.estimator,
        "signature": serde_json::from_str::<Json>(&m.signature).unwrap_or(Json::Null),
        "sha256": m.sha256,
        "size": m.size,
        "file_name": m.file_name,
        "description": m.description,
        "tags": m.tags,
        "git_commit": m.git_commit,
        "data": m.tags.iter().filter_map(|(k, v)| k.strip_prefix(register::LINEAGE).map(|p| (p.to_string(), Json::String(v.clone())))).collect::<serde_json::Map<String, Json>>(),
        "input_example": m.input_example,
        "example_predictions": m.example_predictions,
        "aliases": aliases,
    })
}

fn event_json(e: &AliasEvent) -> Json {
    json!({"alias": e.alias, "from": e.from, "to": e.to, "at": rfc3339(e.at), "by": e.by, "reason": e.reason})
}

fn summary_json(s: &ModelSummary) -> Json {
    json!({"name": s.name, "created_at": rfc3339(s.created_at), "latest_version": s.latest, "versions": s.versions, "aliases": s.aliases})
}

/// Aliases pointing at `version`.
fn aliases_at(s: &ModelSummary, version: u32) -> Vec<&str> {
    s.aliases
        .iter()
        .filter(|(_, v)| **v == version)
        .map(|(a, _)| a.as_str())
        .collect()
}

/// Prints JSON, or a table with a header row.
pub(crate) fn print(format: InspectFormat, doc: &Json, header: &[&str], rows: Vec<Vec<String>>) {
    match format {
        InspectFormat::Json => {
            crate::outln!("{}", serde_json::to_string_pretty(doc).unwrap_or_default())
        }
        InspectFormat::Table => {
            let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
            for r in &rows {
                for (w, c) in widths.iter_mut().zip(r) {
                    *w = (*w).max(c.chars().count());
                }
            }
            let line = |cells: Vec<String>| {
                let parts: Vec<String> = cells
                    .iter()
                    .zip(&widths)
                    .map(|(c, w)| format!("{c:<w$}"))
                    .collect();
                crate::outln!("{}", parts.join("  ").trim_end());
            };
            line(header.iter().map(|h| h.to_string()).collect());
            for r in rows {
                line(r);
            }
        }
    }
}

fn opt<T: ToString>(v: Option<T>) -> String {
    v.map_or_else(|| "-".into(), |x| x.to_string())
}

fn event_row(e: &AliasEvent) -> Vec<String> {
    vec![
        rfc3339(e.at),
        e.alias.clone(),
        opt(e.from),
        opt(e.to),
        e.by.clone(),
        e.reason.clone(),
    ]
}

const EVENT_HEADER: [&str; 6] = ["AT", "ALIAS", "FROM", "TO", "BY", "REASON"];
