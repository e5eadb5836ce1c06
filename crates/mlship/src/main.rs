//! The `mlship` binary: parses the command line once into settings, then runs one command.

mod cli;
mod commands;
mod input;
mod model_ref;
mod output;

use std::process::ExitCode;

use clap::Parser;

/// An error the user can fix (bad input, unsupported model): exit code 1 with a hint.
#[derive(Debug)]
pub struct UserError {
    pub message: String,
    pub hint: Option<String>,
}

impl std::fmt::Display for UserError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for UserError {}

/// Builds a user error with a hint.
pub fn user(message: impl Into<String>, hint: impl Into<String>) -> anyhow::Error {
    anyhow::Error::new(UserError {
        message: message.into(),
        hint: Some(hint.into()),
    })
}

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    std::panic::set_hook(Box::new(|info| {
        eprintln!("error: internal error: {info}");
        eprintln!("hint: this is a bug in mlship; please report it with the command you ran");
    }));
    let result = std::panic::catch_unwind(|| commands::run(cli));
    match result {
        Ok(Ok(())) => ExitCode::SUCCESS,
        Ok(Err(e)) => {
            report(&e);
            ExitCode::from(1)
        }
        Err(_) => ExitCode::from(2),
    }
}

fn report(e: &anyhow::Error) {
    let mut msg = format!("{e}");
    for cause in e.chain().skip(1) {
        msg.push_str(&format!(": {cause}"));
    }
    eprintln!("error: {msg}");
    let hint = e
        .chain()
        .find_map(|c| c.downcast_ref::<UserError>())
        .and_then(|u| u.hint.clone())
        .or_else(|| default_hint(e));
    if let Some(h) = hint {
        eprintln!("hint: {h}");
    }
}

fn default_hint(e: &anyhow::Error) -> Option<String> {
    use mlship_formats::Error as F;
    for c in e.chain() {
        if let Some(f) = c.downcast_ref::<F>() {
            return Some(match f {
                F::ForbiddenGlobal { .. } => "mlship loads only scikit-learn estimators and the numpy data they hold; a file that references other code may be malicious".into(),
                F::UnsupportedEstimator { .. } | F::Unsupported(_) => "see `mlship inspect --help` and the README's list of supported estimators".into(),
                F::UnknownFormat(_) => "pass a pickle, joblib or skops file, or an MLflow model directory".into(),
                F::Malformed { .. } | F::Truncated { .. } => "the file is damaged or not a model; re-save it from Python".into(),
                F::Limit(_) => "the file exceeds a safety limit of the loader".into(),
                F::Model(_) => "the model file is inconsistent; re-save it from Python".into(),
            });
        }
        if let Some(m) = c.downcast_ref::<mlship_model::Error>() {
            return Some(match m {
                mlship_model::Error::MissingColumn { .. }
                | mlship_model::Error::ColumnCount { .. } => {
                    "run `mlship inspect MODEL` to see the columns the model takes".into()
                }
                _ => "check the input against `mlship inspect MODEL`".into(),
            });
        }
    }
    None
}
