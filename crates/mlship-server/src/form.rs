//! What a "try it" form is built from: a model's input fields with their types, the categories
//! its encoders know, and values from an input example. Both servers answer it in this shape.

use mlship_model::{ColumnData, DType, Frame, Model};
use serde_json::{Value as Json, json};

use crate::api;

/// The form of `model`, with each field's value taken from the first row of `example` when it has
/// the column.
pub fn describe(model: &Model, example: Option<&Frame>) -> Json {
    let sig = &model.signature;
    let categories = model.categories();
    let fields: Vec<Json> = sig
        .inputs
        .iter()
        .map(|f| {
            let mut o = json!({
                "name": f.name,
                "type": f.dtype.name(),
                "nullable": f.nullable,
            });
            if let Some((_, c)) = categories.iter().find(|(n, _)| *n == f.name) {
                o["categories"] = json!(c);
            }
            if let Some(v) = example.and_then(|e| first_value(e, &f.name, f.dtype)) {
                o["example"] = v;
            }
            o
        })
        .collect();
    let mut doc = json!({
        "task": sig.task.name(),
        "named": sig.named,
        "format": model.info.format,
        "estimator": model.info.estimator,
        "fields": fields,
    });
    if let Some(c) = &sig.classes {
        doc["classes"] = Json::Array(c.iter().map(api::label).collect());
    }
    doc
}

/// The first row's value of a column, as JSON (null for a missing value).
fn first_value(frame: &Frame, name: &str, dtype: DType) -> Option<Json> {
    if frame.n_rows() == 0 {
        return None;
    }
    let col = frame.column(name)?;
    Some(match &col.data {
        ColumnData::Float(v) if dtype == DType::Int && v[0].fract() == 0.0 => json!(v[0] as i64),
        ColumnData::Float(v) => api::num(v[0]),
        ColumnData::Int(v) => json!(v[0]),
        ColumnData::Str(v) => json!(v[0]),
        ColumnData::Bool(v) => json!(v[0]),
    })
}

/// Reads an input example as it was stored (MLflow's JSON shapes or CSV) into a frame.
pub fn read_example(bytes: &[u8], model: &Model) -> Option<Frame> {
    let text = std::str::from_utf8(bytes).ok()?;
    let format = if text.trim_start().starts_with(['{', '[']) {
        crate::input::InputFormat::Json
    } else {
        crate::input::InputFormat::Csv
    };
    crate::input::parse(text, format, &model.signature).ok()
}
