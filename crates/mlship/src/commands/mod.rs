//! One module per command; `run` dispatches the parsed command line.

mod inspect;
mod predict;

use crate::cli::{Cli, Command};

pub fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Predict(a) => predict::run(&a),
        Command::Inspect(a) => inspect::run(&a),
    }
}
