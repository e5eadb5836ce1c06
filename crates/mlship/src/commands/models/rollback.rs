//! `mlship models rollback NAME ALIAS`: move the alias back to the version it held before.

use super::{EVENT_HEADER, event_json, event_row, print};
use crate::cli::RollbackArgs;
use crate::settings::Settings;

pub fn run(a: &RollbackArgs, settings: &Settings) -> anyhow::Result<()> {
    let e = settings.metadata()?.rollback(
        &a.name,
        &a.alias,
        &Settings::who(),
        a.reason.as_deref().unwrap_or("rollback"),
    )?;
    print(
        a.out.output,
        &event_json(&e),
        &EVENT_HEADER,
        vec![event_row(&e)],
    );
    Ok(())
}
