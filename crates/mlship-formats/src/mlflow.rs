//! MLflow model directories: the `MLmodel` file's flavor, artifact path and signature.

use mlship_model::{DType, Field};
use serde_json::Value as Json;

use crate::error::{Result, unsupported};

/// What an `MLmodel` file says about the model.
#[derive(Clone, Debug, PartialEq)]
pub struct MlModel {
    /// The flavor that names the artifact (`sklearn`, `xgboost`, `lightgbm`, `onnx`).
    pub flavor: String,
    /// The artifact's path, relative to the directory.
    pub artifact: String,
    /// The sklearn flavor's `serialization_format` (`skops`, `cloudpickle`, `pickle`), or the
    /// xgboost flavor's `model_format` (`xgb`, `json`, `ubj`).
    pub serialization: Option<String>,
    /// The input columns of the signature, when there is one (column-based signatures only).
    pub inputs: Option<Vec<Field>>,
    /// The input example's file, when one was saved.
    pub input_example: Option<String>,
    pub mlflow_version: Option<String>,
}

/// Parses an `MLmodel` file (YAML).
pub fn parse_mlmodel(text: &str) -> Result<MlModel> {
    let y: serde_yaml_ng::Value = serde_yaml_ng::from_str(text)
        .map_err(|e| unsupported(format!("MLmodel is not valid YAML: {e}")))?;
    let j: Json = serde_json::to_value(&y).map_err(|e| unsupported(format!("MLmodel: {e}")))?;
    let flavors = j
        .get("flavors")
        .and_then(Json::as_object)
        .ok_or_else(|| unsupported("MLmodel has no flavors"))?;
    let (flavor, artifact, serialization) = if let Some(f) = flavors.get("sklearn") {
        let a = f
            .get("pickled_model")
            .and_then(Json::as_str)
            .ok_or_else(|| unsupported("sklearn flavor without pickled_model"))?;
        (
            String::from("sklearn"),
            a.to_string(),
            f.get("serialization_format")
                .and_then(Json::as_str)
                .map(str::to_string),
        )
    } else if let Some(f) = flavors.get("xgboost") {
        // `data` names the booster file (`model.xgb`, `model.json` or `model.ubj`).
        let a = f
            .get("data")
            .and_then(Json::as_str)
            .ok_or_else(|| unsupported("xgboost flavor without data"))?;
        (
            String::from("xgboost"),
            a.to_string(),
            f.get("model_format")
                .and_then(Json::as_str)
                .map(str::to_string),
        )
    } else if let Some(f) = flavors.get("lightgbm") {
        // `data` names a LightGBM text model (`model.lgb`) or, for the scikit-learn API, a
        // pickle of the wrapper (read through the allow-list like any pickle).
        let a = f
            .get("data")
            .and_then(Json::as_str)
            .ok_or_else(|| unsupported("lightgbm flavor without data"))?;
        (String::from("lightgbm"), a.to_string(), None)
    } else if let Some(f) = flavors.get("onnx") {
        let a = f
            .get("data")
            .and_then(Json::as_str)
            .ok_or_else(|| unsupported("onnx flavor without data"))?;
        (String::from("onnx"), a.to_string(), None)
    } else {
        let names: Vec<&String> = flavors.keys().collect();
        return Err(unsupported(format!(
            "MLmodel flavors {names:?}: this version of mlship loads the sklearn, xgboost, lightgbm and onnx flavors"
        )));
    };
    if artifact.contains("..") || artifact.starts_with('/') {
        return Err(unsupported(format!(
            "MLmodel artifact path {artifact:?} leaves the model directory"
        )));
    }
    let inputs = match j
        .get("signature")
        .and_then(|s| s.get("inputs"))
        .and_then(Json::as_str)
    {
        // A tensor signature (the onnx flavor's) describes one array, not columns: the model's
        // own inputs are used.
        Some(text) if text.contains("\"tensor\"") => None,
        Some(text) => Some(signature_inputs(text)?),
        None => None,
    };
    let input_example = j
        .get("saved_input_example_info")
        .and_then(|i| i.get("artifact_path"))
        .and_then(Json::as_str)
        .map(str::to_string);
    let mlflow_version = j
        .get("mlflow_version")
        .and_then(Json::as_str)
        .map(str::to_string);
    Ok(MlModel {
        flavor,
        artifact,
        serialization,
        inputs,
        input_example,
        mlflow_version,
    })
}

fn signature_inputs(text: &str) -> Result<Vec<Field>> {
    let cols: Vec<Json> = serde_json::from_str(text)
        .map_err(|e| unsupported(format!("MLmodel signature inputs: {e}")))?;
    cols.iter()
        .enumerate()
        .map(|(i, c)| {
            let ty = c.get("type").and_then(Json::as_str).unwrap_or("");
            let dtype = match ty {
                "double" | "float" => DType::Float,
                "long" | "integer" => DType::Int,
                "string" => DType::Str,
                "boolean" => DType::Bool,
                "tensor" => {
                    return Err(unsupported(
                        "tensor-based MLflow signatures are not supported",
                    ));
                }
                other => {
                    return Err(unsupported(format!(
                        "MLflow signature column type {other:?}"
                    )));
                }
            };
            let name = c
                .get("name")
                .and_then(Json::as_str)
                .map_or_else(|| format!("x{i}"), str::to_string);
            let required = c.get("required").and_then(Json::as_bool).unwrap_or(true);
            Ok(Field {
                name,
                dtype,
                nullable: !required,
            })
        })
        .collect()
}
