//! `mlship models history NAME`: every alias move, manual or automatic, oldest first.

use serde_json::Value as Json;

use super::{EVENT_HEADER, event_json, event_row, print};
use crate::cli::NameArgs;
use crate::settings::Settings;

pub fn run(a: &NameArgs, settings: &Settings) -> anyhow::Result<()> {
    let h = settings.metadata()?.history(&a.name)?;
    let doc = Json::Array(h.iter().map(event_json).collect());
    print(
        a.out.output,
        &doc,
        &EVENT_HEADER,
        h.iter().map(event_row).collect(),
    );
    Ok(())
}
