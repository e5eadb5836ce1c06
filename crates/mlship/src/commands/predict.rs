//! `mlship predict`: score rows from a file or standard input and print the predictions.

use std::io::Read;

use anyhow::Context;

use crate::cli::{OutputFormat, PredictArgs};
use crate::settings::Settings;
use crate::{model_ref, output, user};
use mlship_server::input;

pub fn run(a: &PredictArgs, settings: &Settings) -> anyhow::Result<()> {
    let resolved = model_ref::load(&a.model, settings)?;
    let text = if a.input == "-" {
        let mut s = String::new();
        std::io::stdin()
            .read_to_string(&mut s)
            .context("reading standard input")?;
        s
    } else {
        std::fs::read_to_string(&a.input).map_err(|e| {
            user(
                format!("cannot read the input {}: {e}", a.input),
                "pass a CSV or JSON file, or - for standard input",
            )
        })?
    };
    let frame = input::parse(&text, a.input_format(), &resolved.model.signature)?;
    let out = resolved.model.predict(&frame).context("scoring")?;
    match a.output {
        OutputFormat::Json => crate::outln!("{}", output::to_json(&out)),
        OutputFormat::Csv => crate::out!("{}", output::to_csv(&out)?),
    }
    Ok(())
}
