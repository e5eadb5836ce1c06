//! The command line: clap definitions, turned into settings once and never read again.

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

#[derive(Debug, Parser)]
#[command(
    name = "mlship",
    version,
    about = "Take a model trained anywhere to a production API",
    propagate_version = true
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Score rows with a model and print the predictions.
    Predict(PredictArgs),
    /// Show a model's format, estimator, signature, classes and checksum.
    Inspect(InspectArgs),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum InputFormat {
    Csv,
    Json,
    Ndjson,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    Json,
    Csv,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum InspectFormat {
    Table,
    Json,
}

#[derive(Debug, clap::Args)]
pub struct PredictArgs {
    /// A model file (pickle, joblib, skops) or an MLflow model directory.
    pub model: String,
    /// The rows to score: a file, or `-` for standard input.
    #[arg(long, short, default_value = "-")]
    pub input: String,
    /// The input's format (default: from the file extension, else CSV).
    #[arg(long)]
    pub input_format: Option<InputFormat>,
    /// How to print the predictions.
    #[arg(long, default_value = "json")]
    pub output: OutputFormat,
}

#[derive(Debug, clap::Args)]
pub struct InspectArgs {
    /// A model file (pickle, joblib, skops) or an MLflow model directory.
    pub model: String,
    /// How to print the description.
    #[arg(long, default_value = "table")]
    pub output: InspectFormat,
}

impl PredictArgs {
    /// The input format: the flag, else the file extension, else CSV.
    pub fn input_format(&self) -> InputFormat {
        if let Some(f) = self.input_format {
            return f;
        }
        match PathBuf::from(&self.input)
            .extension()
            .and_then(|e| e.to_str())
        {
            Some("json") => InputFormat::Json,
            Some("ndjson" | "jsonl") => InputFormat::Ndjson,
            _ => InputFormat::Csv,
        }
    }
}
