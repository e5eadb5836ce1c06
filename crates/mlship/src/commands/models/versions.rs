//! `mlship models versions NAME`: every version of a model.

use serde_json::Value as Json;

use super::{aliases_at, print, version_json};
use crate::cli::NameArgs;
use crate::settings::Settings;
use crate::timefmt::rfc3339;

pub fn run(a: &NameArgs, settings: &Settings) -> anyhow::Result<()> {
    let mut meta = settings.metadata()?;
    let s = meta.model(&a.name)?;
    let versions = meta.versions(&a.name)?;
    let doc = Json::Array(
        versions
            .iter()
            .map(|v| version_json(v, &aliases_at(&s, v.version)))
            .collect(),
    );
    let rows = versions
        .iter()
        .map(|v| {
            vec![
                v.version.to_string(),
                aliases_at(&s, v.version).join(","),
                v.meta.format.clone(),
                v.meta.estimator.clone(),
                v.meta.size.to_string(),
                v.meta.sha256[..12].to_string(),
                v.meta.created_by.clone(),
                rfc3339(v.created_at),
            ]
        })
        .collect();
    print(
        a.out.output,
        &doc,
        &[
            "VERSION",
            "ALIASES",
            "FORMAT",
            "ESTIMATOR",
            "SIZE",
            "SHA256",
            "BY",
            "CREATED",
        ],
        rows,
    );
    Ok(())
}
