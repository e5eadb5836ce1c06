//! `mlship models alias NAME ALIAS VERSION`: set or move an alias; `--delete` removes it.

use super::{EVENT_HEADER, event_json, event_row, print};
use crate::cli::AliasArgs;
use crate::settings::Settings;

pub fn run(a: &AliasArgs, settings: &Settings) -> anyhow::Result<()> {
    let mut meta = settings.metadata()?;
    let who = Settings::who();
    let e = match (a.delete, a.to) {
        (true, _) => meta.delete_alias(
            &a.name,
            &a.alias,
            &who,
            a.reason.as_deref().unwrap_or("deleted"),
        )?,
        (false, Some(v)) => meta.set_alias(
            &a.name,
            &a.alias,
            v,
            &who,
            a.reason.as_deref().unwrap_or("set by hand"),
        )?,
        (false, None) => unreachable!("clap requires a version unless --delete"),
    };
    print(
        a.out.output,
        &event_json(&e),
        &EVENT_HEADER,
        vec![event_row(&e)],
    );
    Ok(())
}
