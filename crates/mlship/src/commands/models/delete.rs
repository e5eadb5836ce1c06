//! `mlship models delete NAME[/VERSION]`: delete a version no alias holds, or a whole model.

use serde_json::json;

use super::print;
use crate::cli::DeleteArgs;
use crate::settings::Settings;
use crate::user;

pub fn run(a: &DeleteArgs, settings: &Settings) -> anyhow::Result<()> {
    let mut meta = settings.metadata()?;
    let store = settings.artifacts()?;
    let (doc, row) = match a.target.split_once('/') {
        Some((name, v)) => {
            let version: u32 = v.parse().map_err(|_| {
                user(
                    format!("{v:?} is not a version number"),
                    "use NAME/VERSION, such as fraud/3",
                )
            })?;
            let (deleted, shared) = meta.delete_version(name, version)?;
            // The row is gone first: an artifact is removed only once nothing lists it.
            if !shared {
                store.delete(&deleted.meta.sha256)?;
            }
            (
                json!({"name": name, "version": version, "deleted": true}),
                vec![name.to_string(), version.to_string(), "deleted".into()],
            )
        }
        None => {
            let unused = meta.delete_model(&a.target)?;
            for sha in &unused {
                store.delete(sha)?;
            }
            (
                json!({"name": a.target, "deleted": true}),
                vec![a.target.clone(), "all".into(), "deleted".into()],
            )
        }
    };
    print(
        a.out.output,
        &doc,
        &["NAME", "VERSION", "STATUS"],
        vec![row],
    );
    Ok(())
}
