//! Input rows (CSV, JSON in MLflow's shapes, NDJSON) parsed into a `Frame` typed by the model's
//! signature: the request bodies of `/invocations` and the input files of `mlship predict`.

use mlship_model::{Column, ColumnData, DType, Frame, Signature};
use serde_json::Value as Json;

/// The shape of an input.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InputFormat {
    Csv,
    Json,
    Ndjson,
}

/// Input that does not fit: what is wrong (naming the column and row), and how to fix it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InputError {
    pub message: String,
    pub hint: String,
}

impl std::fmt::Display for InputError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for InputError {}

impl From<mlship_model::Error> for InputError {
    fn from(e: mlship_model::Error) -> Self {
        InputError {
            message: e.to_string(),
            hint: "check the input against the model's signature".into(),
        }
    }
}

fn user(message: impl Into<String>, hint: impl Into<String>) -> InputError {
    InputError {
        message: message.into(),
        hint: hint.into(),
    }
}

/// Parses JSON as Python's `json` module does for the values our users send: bare `NaN` (which
/// `json.dumps` writes for missing floats, as in MLflow's input examples) is read as null.
pub fn parse_json_text(text: &str) -> serde_json::Result<Json> {
    match serde_json::from_str(text) {
        Err(e) if text.contains("NaN") => serde_json::from_str(&nan_to_null(text)).map_err(|_| e),
        r => r,
    }
}

/// Replaces each `NaN` token outside strings with `null`.
fn nan_to_null(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let (mut in_str, mut escaped) = (false, false);
    let mut rest = text;
    while let Some(c) = rest.chars().next() {
        if !in_str && rest.starts_with("NaN") {
            out.push_str("null");
            rest = &rest[3..];
            continue;
        }
        if in_str {
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                in_str = false;
            }
        } else if c == '"' {
            in_str = true;
        }
        out.push(c);
        rest = &rest[c.len_utf8()..];
    }
    out
}

/// Parses `text` into a frame, typing each column by the signature (unknown columns are ignored).
pub fn parse(text: &str, format: InputFormat, sig: &Signature) -> Result<Frame, InputError> {
    let frame = match format {
        InputFormat::Csv => parse_csv(text, sig)?,
        InputFormat::Json => parse_json(text, sig)?,
        InputFormat::Ndjson => {
            let mut rows = Vec::new();
            for (i, line) in text
                .lines()
                .enumerate()
                .filter(|(_, l)| !l.trim().is_empty())
            {
                let v: Json = parse_json_text(line).map_err(|e| {
                    user(
                        format!("line {}: invalid JSON: {e}", i + 1),
                        "each line must be one JSON object",
                    )
                })?;
                rows.push(v);
            }
            records(&rows, sig)?
        }
    };
    if frame.n_rows() == 0 {
        return Err(user(
            "the input has no rows",
            "give at least one row of data after the header",
        ));
    }
    Ok(frame)
}

fn dtype_of(sig: &Signature, name: &str, position: usize) -> Option<DType> {
    if sig.named {
        sig.inputs.iter().find(|f| f.name == name).map(|f| f.dtype)
    } else {
        sig.inputs.get(position).map(|f| f.dtype)
    }
}

fn parse_number(s: &str) -> Option<f64> {
    let t = s.trim();
    match t {
        "" | "nan" | "NaN" | "NA" | "null" => Some(f64::NAN),
        _ => t.parse::<f64>().ok(),
    }
}

fn parse_csv(text: &str, sig: &Signature) -> Result<Frame, InputError> {
    let mut rdr = csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(false)
        .from_reader(text.as_bytes());
    let headers: Vec<String> = rdr
        .headers()
        .map_err(|e| {
            user(
                format!("cannot read the CSV header: {e}"),
                "the first line must name the columns",
            )
        })?
        .iter()
        .map(str::to_string)
        .collect();
    if headers.is_empty() || headers.iter().all(String::is_empty) {
        return Err(user(
            "the CSV has no header",
            "the first line must name the columns",
        ));
    }
    let mut cells: Vec<Vec<String>> = vec![Vec::new(); headers.len()];
    for (i, rec) in rdr.records().enumerate() {
        let rec = rec.map_err(|e| match e.kind() {
            csv::ErrorKind::UnequalLengths { expected_len, len, .. } => user(
                format!("row {i} (line {}) has {len} fields, the header has {expected_len}", i + 2),
                "every row needs one value per header column; leave a field empty for a missing value",
            ),
            _ => user(format!("row {i} (line {}): {e}", i + 2), "check the CSV quoting"),
        })?;
        for (j, f) in rec.iter().enumerate() {
            cells[j].push(f.to_string());
        }
    }
    let mut columns = Vec::with_capacity(headers.len());
    for (j, name) in headers.iter().enumerate() {
        let vals = std::mem::take(&mut cells[j]);
        let data = match dtype_of(sig, name, j) {
            Some(DType::Str) => ColumnData::Str(
                vals.into_iter()
                    .map(|s| if s.is_empty() { None } else { Some(s) })
                    .collect(),
            ),
            Some(_) => {
                let mut out = Vec::with_capacity(vals.len());
                for (i, s) in vals.iter().enumerate() {
                    out.push(parse_number(s).ok_or_else(|| {
                        user(
                            format!("column `{name}`, row {i} (line {}): expected a number, found {s:?}", i + 2),
                            "numeric columns take numbers; leave the field empty for a missing value",
                        )
                    })?);
                }
                ColumnData::Float(out)
            }
            None => ColumnData::Str(vals.into_iter().map(Some).collect()),
        };
        columns.push(Column::new(name.clone(), data));
    }
    Ok(Frame::new(columns)?)
}

fn parse_json(text: &str, sig: &Signature) -> Result<Frame, InputError> {
    let v: Json = parse_json_text(text).map_err(|e| {
        user(
            format!("invalid JSON: {e}"),
            "the input must be one JSON document",
        )
    })?;
    let frame = parse_value(&v, sig)?;
    if frame.n_rows() == 0 {
        return Err(user(
            "the input has no rows",
            "give at least one row of data",
        ));
    }
    Ok(frame)
}

/// A JSON document already parsed (a request body), in MLflow's shapes, typed by the signature.
pub fn parse_value(v: &Json, sig: &Signature) -> Result<Frame, InputError> {
    match v {
        Json::Array(rows) => records(rows, sig),
        Json::Object(o) => {
            // A key mlship does not read is a mistake to point at, not to ignore.
            const SHAPES: [&str; 4] = [
                "dataframe_split",
                "dataframe_records",
                "instances",
                "inputs",
            ];
            let bare_split = !SHAPES.iter().any(|k| o.contains_key(*k));
            if let Some(k) = o.keys().find(|k| {
                !(SHAPES.contains(&k.as_str())
                    || k.as_str() == "params"
                    || bare_split && ["columns", "data", "index"].contains(&k.as_str()))
            }) {
                return Err(user(
                    format!("the request has an unknown key `{k}`"),
                    "send exactly one of dataframe_split, dataframe_records, instances, inputs (and `params` beside it)",
                ));
            }
            let keys: Vec<&str> = [
                "dataframe_split",
                "dataframe_records",
                "instances",
                "inputs",
            ]
            .into_iter()
            .filter(|k| o.contains_key(*k))
            .collect();
            match keys.as_slice() {
                ["dataframe_split"] => split(&o["dataframe_split"], sig),
                ["dataframe_records"] => match &o["dataframe_records"] {
                    Json::Array(rows) => records(rows, sig),
                    _ => Err(user(
                        "`dataframe_records` must be a list of records",
                        "send [{\"column\": value, …}, …]",
                    )),
                },
                [k @ ("instances" | "inputs")] => match &o[*k] {
                    Json::Array(rows) => records(rows, sig),
                    Json::Object(cols) => columnar(cols, sig),
                    _ => Err(user(
                        format!("`{k}` must be a list"),
                        "send a list of records or of rows",
                    )),
                },
                [] if o.contains_key("columns") && o.contains_key("data") => split(v, sig),
                [] => Err(user(
                    "the JSON object has none of dataframe_split, dataframe_records, instances, inputs",
                    "use MLflow's request shapes, e.g. {\"dataframe_split\": {\"columns\": [...], \"data\": [[...]]}}",
                )),
                many => Err(user(
                    format!("the JSON object has several of {many:?}"),
                    "send exactly one of dataframe_split, dataframe_records, instances, inputs",
                )),
            }
        }
        _ => Err(user(
            "the JSON input must be an object or a list",
            "see the README for the accepted shapes",
        )),
    }
}

/// `{"columns": [...], "data": [[...], ...]}`.
fn split(v: &Json, sig: &Signature) -> Result<Frame, InputError> {
    if let Some(k) = v.as_object().and_then(|o| {
        o.keys()
            .find(|k| !["columns", "data", "index"].contains(&k.as_str()))
    }) {
        return Err(user(
            format!("`dataframe_split` has an unknown key `{k}`"),
            "send {\"columns\": [...], \"data\": [[...]]} (and `index`, which is ignored)",
        ));
    }
    let cols: Vec<String> = match v.get("columns") {
        Some(Json::Array(c)) => c
            .iter()
            .map(|x| {
                x.as_str()
                    .map(str::to_string)
                    .unwrap_or_else(|| x.to_string())
            })
            .collect(),
        None => sig.inputs.iter().map(|f| f.name.clone()).collect(),
        _ => {
            return Err(user(
                "`columns` must be a list of names",
                "send {\"columns\": [...], \"data\": [[...]]}",
            ));
        }
    };
    let Some(Json::Array(data)) = v.get("data") else {
        return Err(user(
            "`dataframe_split` needs a `data` list",
            "send {\"columns\": [...], \"data\": [[...]]}",
        ));
    };
    let mut values: Vec<Vec<&Json>> = vec![Vec::with_capacity(data.len()); cols.len()];
    for (i, row) in data.iter().enumerate() {
        let Json::Array(r) = row else {
            return Err(user(
                format!("data row {i} is not a list"),
                "each row is a list of values",
            ));
        };
        if r.len() != cols.len() {
            return Err(user(
                format!(
                    "data row {i} has {} values for {} columns",
                    r.len(),
                    cols.len()
                ),
                "give one value per column",
            ));
        }
        for (j, x) in r.iter().enumerate() {
            values[j].push(x);
        }
    }
    build(cols.into_iter().zip(values).collect(), sig)
}

fn columnar(cols: &serde_json::Map<String, Json>, sig: &Signature) -> Result<Frame, InputError> {
    let mut out = Vec::new();
    for (k, v) in cols {
        let Json::Array(a) = v else {
            return Err(user(
                format!("input `{k}` must be a list"),
                "send {\"column\": [values]}",
            ));
        };
        out.push((k.clone(), a.iter().collect()));
    }
    build(out, sig)
}

/// A list of records (objects) or of rows (lists, in the model's column order).
fn records(rows: &[Json], sig: &Signature) -> Result<Frame, InputError> {
    if rows.first().is_some_and(Json::is_array) {
        let cols: Vec<String> = sig.inputs.iter().map(|f| f.name.clone()).collect();
        let data = Json::Array(rows.to_vec());
        let v = serde_json::json!({ "columns": cols, "data": data });
        return split(&v, sig);
    }
    let mut names: Vec<String> = Vec::new();
    for (i, r) in rows.iter().enumerate() {
        let Json::Object(o) = r else {
            return Err(user(
                format!("record {i} is not an object"),
                "each record maps column names to values",
            ));
        };
        for k in o.keys() {
            if !names.contains(k) {
                names.push(k.clone());
            }
        }
    }
    // A column that takes missing values may be left out of every record: it is all missing.
    if sig.named {
        for f in &sig.inputs {
            if f.nullable && !names.contains(&f.name) {
                names.push(f.name.clone());
            }
        }
    }
    let null = Json::Null;
    let cols = names
        .into_iter()
        .map(|n| {
            let vals = rows.iter().map(|r| r.get(&n).unwrap_or(&null)).collect();
            (n, vals)
        })
        .collect();
    build(cols, sig)
}

fn build(cols: Vec<(String, Vec<&Json>)>, sig: &Signature) -> Result<Frame, InputError> {
    let mut out = Vec::with_capacity(cols.len());
    for (j, (name, vals)) in cols.into_iter().enumerate() {
        let bad = |i: usize, expected: &str, found: &Json| {
            user(
                format!("column `{name}`, row {i}: expected {expected}, found {found}"),
                "send values of the column's type (see `mlship inspect`)",
            )
        };
        let data = match dtype_of(sig, &name, j) {
            Some(DType::Str) => ColumnData::Str(
                vals.iter()
                    .enumerate()
                    .map(|(i, v)| match v {
                        Json::String(s) => Ok(Some(s.clone())),
                        Json::Null => Ok(None),
                        Json::Number(n) => Ok(Some(n.to_string())),
                        other => Err(bad(i, "a string", other)),
                    })
                    .collect::<Result<_, InputError>>()?,
            ),
            Some(_) => ColumnData::Float(
                vals.iter()
                    .enumerate()
                    .map(|(i, v)| match v {
                        Json::Number(n) => n.as_f64().ok_or_else(|| bad(i, "a number", v)),
                        Json::Null => Ok(f64::NAN),
                        other => Err(bad(i, "a number", other)),
                    })
                    .collect::<Result<_, InputError>>()?,
            ),
            None => continue,
        };
        out.push(Column::new(name, data));
    }
    Ok(Frame::new(out)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bare_nan_reads_as_null_outside_strings_only() {
        let v = parse_json_text(r#"{"data": [[1.5, NaN]], "s": "NaN \" NaN"}"#).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"data": [[1.5, null]], "s": "NaN \" NaN"})
        );
        assert!(parse_json_text("[Nope]").is_err());
        assert!(parse_json_text("[NaNa]").is_err());
    }
}
