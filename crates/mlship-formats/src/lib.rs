//! mlship's format front ends: each parses bytes into its format's own shape, then lowers to the IR.
//!
//! - [`classes`]: the class table the unpickler (`mlship-pickle`, for pickle, joblib and skops
//!   files) takes as its allow-list;
//! - [`sklearn`]: the lowering of scikit-learn objects to [`mlship_model::Model`];
//! - [`mlflow`]: MLflow model directories' `MLmodel` file;
//! - [`xgboost`]: XGBoost's JSON and UBJSON model files ([`ubjson`] decodes the latter);
//! - [`lightgbm`]: LightGBM's text model files.
//!
//! Everything here takes bytes, never paths, and returns `Err` (never panics) on any input.

mod boosting;
pub mod classes;
mod error;
pub mod lightgbm;
pub mod lightgbm_json;
pub mod mlflow;
pub mod mlship_json;
pub mod sklearn;
pub mod ubjson;
pub mod xgboost;

pub use error::{Error, Result};

use mlship_model::{Model, ModelInfo};
use mlship_pickle::{joblib, skops};
pub use {mlship_onnx as onnx, mlship_pmml as pmml};

/// The container a model file was recognised as.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Container {
    Pickle,
    Joblib(joblib::Compression),
    Skops,
}

/// Recognises a model file from its first bytes.
pub fn detect(b: &[u8]) -> Option<Container> {
    if skops::is_skops(b) {
        return Some(Container::Skops);
    }
    match joblib::detect(b) {
        Some(joblib::Compression::None) => Some(Container::Pickle),
        Some(c) => Some(Container::Joblib(c)),
        // Protocol 0 and 1 pickles have no PROTO opcode; they start with a MARK or a GLOBAL.
        None if matches!(b.first(), Some(b'(' | b'c' | b']' | b'}')) => Some(Container::Pickle),
        None => None,
    }
}

/// One format mlship reads: its name in messages, how a file of it is recognised, how it loads.
pub struct Format {
    pub name: &'static str,
    pub detect: fn(&[u8]) -> bool,
    pub load: fn(&[u8]) -> Result<Model>,
}

/// Writes the format table and the texts derived from it, so the list a user reads in an error or
/// in `--help` is the list the loader tries.
macro_rules! formats {
    ($($name:literal: $detect:expr => $load:expr),+ $(,)?) => {
        /// Every format mlship reads, in the order a file is tried against them.
        pub const FORMATS: &[Format] = &[$(Format { name: $name, detect: $detect, load: $load }),+];
        /// The formats mlship reads, as a list for messages.
        pub const READ: &str = formats!(@list $($name),+);
        /// The help of a model argument (`predict`, `inspect`, `models register`…).
        pub const MODEL_ARG_HELP: &str = concat!(
            "A model file (",
            formats!(@list $($name),+),
            ") or an MLflow model directory."
        );
    };
    (@list $first:literal $(, $rest:literal)*) => { concat!($first $(, ", ", $rest)*) };
}

formats! {
    "mlship JSON": mlship_json::detect => mlship_json::read,
    "PMML": pmml::is_pmml => |b| Ok(pmml::load(b)?),
    "ONNX": onnx::is_onnx => |b| Ok(onnx::load(b)?),
    "LightGBM JSON dump": lightgbm_json::is_lightgbm_json => lightgbm_json::load,
    "XGBoost JSON or UBJSON": |b| xgboost::detect(b).is_some() => load_xgboost,
    "LightGBM text": lightgbm::is_lightgbm_text => lightgbm::load,
    "skops": skops::is_skops => load_sklearn,
    "joblib (any compression)": |b| matches!(detect(b), Some(Container::Joblib(_))) => load_sklearn,
    "pickle (protocols 0 to 5)": |b| detect(b) == Some(Container::Pickle) => load_sklearn,
}

/// Loads a model file of any of [`FORMATS`] into the IR.
///
/// Every loader's model is checked the same way before it is returned: the steps' widths chain
/// from the signature to what the estimator reads, so an inconsistent file is refused here and
/// never scored.
pub fn load(b: &[u8]) -> Result<Model> {
    let format = FORMATS.iter().find(|f| (f.detect)(b)).ok_or_else(|| {
        Error::UnknownFormat(format!("{} (supported: {READ})", describe_magic(b)))
    })?;
    let m = (format.load)(b)?;
    m.check()?;
    Ok(m)
}

fn load_xgboost(b: &[u8]) -> Result<Model> {
    let encoding =
        xgboost::detect(b).ok_or_else(|| Error::UnknownFormat("not an XGBoost model".into()))?;
    xgboost::load(b, encoding)
}

/// A pickle, a joblib file or a skops file, lowered from the scikit-learn objects it holds.
fn load_sklearn(b: &[u8]) -> Result<Model> {
    let container = detect(b).ok_or_else(|| {
        Error::UnknownFormat(format!("{} (supported: {READ})", describe_magic(b)))
    })?;
    let (heap, root, format) = match container {
        Container::Skops => {
            let (heap, root, v) = skops::load(b, &classes::Classes)?;
            (
                heap,
                root,
                format!("skops{}", v.map(|v| format!(" {v}")).unwrap_or_default()),
            )
        }
        Container::Pickle => {
            let u = mlship_pickle::unpickle(b, true, &classes::Classes)?;
            let f = if u.joblib_arrays > 0 {
                "joblib (uncompressed)".to_string()
            } else {
                format!("pickle (protocol {})", u.protocol)
            };
            (u.heap, u.root, f)
        }
        Container::Joblib(c) => {
            let raw = joblib::decompress(b, c, joblib::default_budget(b.len()))?;
            let u = mlship_pickle::unpickle(&raw, true, &classes::Classes)?;
            (u.heap, u.root, format!("joblib ({})", c.name()))
        }
    };
    let low = sklearn::lower(&heap, root)?;
    let mut warnings = Vec::new();
    if let Some(v) = &low.sklearn_version {
        let major_minor: Vec<u32> = v
            .split('.')
            .take(2)
            .filter_map(|x| x.parse().ok())
            .collect();
        if major_minor.first() != Some(&1) || major_minor.get(1).is_some_and(|m| *m > 9) {
            warnings.push(format!(
                "written by scikit-learn {v}; mlship is tested with 1.0 to 1.9"
            ));
        }
    }
    let info = ModelInfo {
        format,
        estimator: low.summary,
        library: low.sklearn_version.map(|v| format!("scikit-learn {v}")),
        warnings,
    };
    Ok(Model::new(low.signature, low.steps, low.estimator, info)?)
}

/// Loads the artifact of an MLflow model directory, taking the directory's signature.
pub fn load_mlflow(mlmodel: &mlflow::MlModel, artifact: &[u8]) -> Result<Model> {
    let mut m = load(artifact)?;
    m.info.format = format!(
        "MLflow model ({} flavor, {})",
        mlmodel.flavor, m.info.format
    );
    if let Some(inputs) = &mlmodel.inputs {
        if inputs.len() == m.signature.inputs.len() {
            for (f, mf) in m.signature.inputs.iter_mut().zip(inputs) {
                f.name = mf.name.clone();
                // The model's own view of strings wins: MLflow infers types from one example.
                if f.dtype != mlship_model::DType::Str {
                    f.dtype = mf.dtype;
                }
            }
            m.signature.named = true;
        } else {
            m.info.warnings.push(format!(
                "the MLmodel signature has {} inputs, the model {}; the model's own is used",
                inputs.len(),
                m.signature.inputs.len()
            ));
        }
    }
    Ok(m)
}

fn describe_magic(b: &[u8]) -> String {
    if b.is_empty() {
        return "the file is empty".into();
    }
    if b.starts_with(b"<?xml") || b.starts_with(b"<PMML") {
        return "an XML document that is not PMML (no <PMML> root element)".into();
    }
    if b.starts_with(b"{") {
        return "a JSON document that is none of the JSON model formats (XGBoost, a LightGBM dump, mlship JSON)".into();
    }
    let head: Vec<String> = b.iter().take(8).map(|x| format!("{x:02x}")).collect();
    format!("the file starts with bytes {}", head.join(" "))
}
