//! `mlship models list`: every registered model with its latest version and aliases.

use serde_json::Value as Json;

use super::{opt, print, summary_json};
use crate::cli::OutputArgs;
use crate::settings::Settings;

pub fn run(a: &OutputArgs, settings: &Settings) -> anyhow::Result<()> {
    let models = settings.metadata()?.models()?;
    let doc = Json::Array(models.iter().map(summary_json).collect());
    let rows = models
        .iter()
        .map(|m| {
            let aliases: Vec<String> = m.aliases.iter().map(|(a, v)| format!("{a}={v}")).collect();
            vec![
                m.name.clone(),
                opt(m.latest),
                m.versions.to_string(),
                aliases.join(" "),
            ]
        })
        .collect();
    print(
        a.output,
        &doc,
        &["NAME", "LATEST", "VERSIONS", "ALIASES"],
        rows,
    );
    Ok(())
}
