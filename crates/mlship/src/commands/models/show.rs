//! `mlship models show NAME`: a model, its aliases and its versions.

use super::{aliases_at, print, summary_json, version_json};
use crate::cli::NameArgs;
use crate::settings::Settings;

pub fn run(a: &NameArgs, settings: &Settings) -> anyhow::Result<()> {
    let mut meta = settings.metadata()?;
    let s = meta.model(&a.name)?;
    let versions = meta.versions(&a.name)?;
    let mut doc = summary_json(&s);
    doc["versions"] = versions
        .iter()
        .map(|v| version_json(v, &aliases_at(&s, v.version)))
        .collect();
    let rows = versions
        .iter()
        .map(|v| {
            vec![
                v.version.to_string(),
                aliases_at(&s, v.version).join(","),
                v.meta.estimator.clone(),
                v.meta.sha256[..12].to_string(),
                crate::timefmt::rfc3339(v.created_at),
            ]
        })
        .collect();
    print(
        a.out.output,
        &doc,
        &["VERSION", "ALIASES", "ESTIMATOR", "SHA256", "CREATED"],
        rows,
    );
    if a.out.output == crate::cli::InspectFormat::Table {
        // Where each version came from: the commit and the data (DVC md5s) it was made with.
        for v in &versions {
            let data: Vec<String> = v
                .meta
                .tags
                .iter()
                .filter_map(|(k, m)| {
                    k.strip_prefix(super::register::LINEAGE)
                        .map(|p| format!("{p} {m}"))
                })
                .collect();
            if v.meta.git_commit.is_none() && data.is_empty() {
                continue;
            }
            crate::outln!("\nversion {}:", v.version);
            if let Some(c) = &v.meta.git_commit {
                crate::outln!("  git commit  {c}");
            }
            for d in data {
                crate::outln!("  data        {d}");
            }
        }
    }
    Ok(())
}
