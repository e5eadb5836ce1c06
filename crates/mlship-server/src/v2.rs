//! The Open Inference Protocol (KServe V2, Triton's HTTP API): health, metadata and `infer`.
//!
//! A model takes either one 2-D tensor (`[rows, features]`, columns in the signature's order) or
//! one tensor per column, named after the column (`[rows]` or `[rows, 1]`). The answer has a
//! `predictions` output and, for classifiers, `probabilities` (`[rows, classes]`).

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use mlship_model::{Column, ColumnData, DType, Frame, Label, Predictions};
use serde_json::{Value as Json, json};

use crate::api::{self, ApiError, Style};
use crate::{AppState, Served};

const S: Style = Style::Error;

fn lookup(s: &AppState, name: &str, version: Option<&str>) -> Result<Arc<Served>, ApiError> {
    if !s.is_ready() {
        return Err(ApiError::not_ready(S));
    }
    let spec = match version {
        Some(v) => format!("{name}/{v}"),
        None => name.to_string(),
    };
    // A model served from a file has no registry version; version "1" names it too.
    let found = s.find(&spec).or_else(|| match version {
        Some("1") => s.find(name).filter(|m| m.version.is_none()),
        _ => None,
    });
    found.ok_or_else(|| s.missing(&spec, S))
}

pub async fn server_metadata() -> axum::Json<Json> {
    axum::Json(json!({"name": "mlship", "version": env!("CARGO_PKG_VERSION"), "extensions": []}))
}

pub async fn live() -> axum::Json<Json> {
    axum::Json(json!({"live": true}))
}

pub async fn ready(State(s): State<Arc<AppState>>) -> Result<axum::Json<Json>, ApiError> {
    if s.is_ready() {
        Ok(axum::Json(json!({"ready": true})))
    } else {
        Err(ApiError::not_ready(S))
    }
}

fn datatype(d: DType) -> &'static str {
    match d {
        DType::Float => "FP64",
        DType::Int => "INT64",
        DType::Str => "BYTES",
        DType::Bool => "BOOL",
    }
}

fn metadata_of(m: &Served) -> Json {
    let sig = &m.model.signature;
    let mut outputs =
        vec![json!({"name": "predictions", "datatype": prediction_type(m), "shape": [-1]})];
    if let Some(c) = &sig.classes {
        outputs.push(json!({"name": "probabilities", "datatype": "FP64", "shape": [-1, c.len()]}));
    }
    json!({
        "name": m.name,
        "versions": [m.version.unwrap_or(1).to_string()],
        "platform": "mlship",
        "inputs": sig.inputs.iter().map(|f| json!({"name": f.name, "datatype": datatype(f.dtype), "shape": [-1]})).collect::<Vec<_>>(),
        "outputs": outputs,
    })
}

fn prediction_type(m: &Served) -> &'static str {
    match m.model.signature.classes.as_ref().and_then(|c| c.first()) {
        Some(Label::Str(_)) => "BYTES",
        Some(Label::Int(_)) => "INT64",
        Some(Label::Bool(_)) => "BOOL",
        Some(Label::Float(_)) | None => {
            if m.model.signature.task == mlship_model::Task::Clustering {
                "INT64"
            } else {
                "FP64"
            }
        }
    }
}

pub async fn model_metadata(
    State(s): State<Arc<AppState>>,
    Path(name): Path<String>,
) -> Result<axum::Json<Json>, ApiError> {
    let m = lookup(&s, &name, None)?;
    Ok(axum::Json(metadata_of(&m)))
}

pub async fn model_metadata_versioned(
    State(s): State<Arc<AppState>>,
    Path((name, v)): Path<(String, String)>,
) -> Result<axum::Json<Json>, ApiError> {
    let m = lookup(&s, &name, Some(&v))?;
    Ok(axum::Json(metadata_of(&m)))
}

pub async fn model_ready(
    State(s): State<Arc<AppState>>,
    Path(name): Path<String>,
) -> Result<axum::Json<Json>, ApiError> {
    let m = lookup(&s, &name, None)?;
    if s.is_ready() {
        Ok(axum::Json(json!({"name": m.name, "ready": true})))
    } else {
        Err(ApiError::not_ready(S))
    }
}

pub async fn model_ready_versioned(
    State(s): State<Arc<AppState>>,
    Path((name, v)): Path<(String, String)>,
) -> Result<axum::Json<Json>, ApiError> {
    let m = lookup(&s, &name, Some(&v))?;
    if s.is_ready() {
        Ok(axum::Json(json!({"name": m.name, "ready": true})))
    } else {
        Err(ApiError::not_ready(S))
    }
}

pub async fn infer(
    State(s): State<Arc<AppState>>,
    Path(name): Path<String>,
    h: HeaderMap,
    body: Body,
) -> Result<axum::Json<Json>, ApiError> {
    let picked = match s.pick(&name, &h) {
        Some(p) => p,
        None => crate::Picked {
            served: lookup(&s, &name, None)?,
            route: None,
        },
    };
    run_infer(&s, picked, &h, body).await
}

pub async fn infer_versioned(
    State(s): State<Arc<AppState>>,
    Path((name, v)): Path<(String, String)>,
    h: HeaderMap,
    body: Body,
) -> Result<axum::Json<Json>, ApiError> {
    let m = lookup(&s, &name, Some(&v))?;
    run_infer(
        &s,
        crate::Picked {
            served: m,
            route: None,
        },
        &h,
        body,
    )
    .await
}

/// Flattens `data` (nested lists in row-major order, or flat) into scalars.
fn flatten<'a>(v: &'a Json, out: &mut Vec<&'a Json>, depth: usize) -> Result<(), ApiError> {
    if depth > 8 {
        return Err(ApiError::bad_request("tensor data nested too deeply", S));
    }
    match v {
        Json::Array(a) => {
            for x in a {
                flatten(x, out, depth + 1)?;
            }
        }
        other => out.push(other),
    }
    Ok(())
}

fn shape_of(t: &Json, name: &str) -> Result<Vec<usize>, ApiError> {
    t.get("shape")
        .and_then(Json::as_array)
        .ok_or_else(|| ApiError::bad_request(format!("input `{name}` has no shape"), S))?
        .iter()
        .map(|d| {
            d.as_u64().map(|d| d as usize).ok_or_else(|| {
                ApiError::bad_request(
                    format!("input `{name}`: shape must hold non-negative integers"),
                    S,
                )
            })
        })
        .collect()
}

/// A column from tensor values of the protocol's datatype, converted to what the model expects.
fn column(name: &str, datatype: &str, vals: &[&Json], want: DType) -> Result<ColumnData, ApiError> {
    let bad = |i: usize, what: &str| {
        ApiError::bad_request(format!("input `{name}`, row {i}: expected {what}"), S)
    };
    match (want, datatype) {
        (DType::Str, "BYTES") => vals
            .iter()
            .enumerate()
            .map(|(i, v)| match v {
                Json::String(s) => Ok(Some(s.clone())),
                Json::Null => Ok(None),
                _ => Err(bad(i, "a string")),
            })
            .collect::<Result<_, _>>()
            .map(ColumnData::Str),
        (DType::Str, other) => Err(ApiError::bad_request(
            format!("input `{name}` is a string column; got datatype {other}, expected BYTES"),
            S,
        )),
        (
            _,
            "FP16" | "FP32" | "FP64" | "INT8" | "INT16" | "INT32" | "INT64" | "UINT8" | "UINT16"
            | "UINT32" | "UINT64",
        ) => vals
            .iter()
            .enumerate()
            .map(|(i, v)| match v {
                Json::Number(n) => n.as_f64().ok_or_else(|| bad(i, "a number")),
                Json::Null => Ok(f64::NAN),
                _ => Err(bad(i, "a number")),
            })
            .collect::<Result<_, _>>()
            .map(ColumnData::Float),
        (_, "BOOL") => vals
            .iter()
            .enumerate()
            .map(|(i, v)| match v {
                Json::Bool(b) => Ok(Some(*b)),
                _ => Err(bad(i, "a boolean")),
            })
            .collect::<Result<_, _>>()
            .map(ColumnData::Bool),
        (_, other) => Err(ApiError::bad_request(
            format!("input `{name}`: datatype {other:?} does not fit a numeric column"),
            S,
        )),
    }
}

async fn run_infer(
    s: &AppState,
    picked: crate::Picked,
    h: &HeaderMap,
    body: Body,
) -> Result<axum::Json<Json>, ApiError> {
    let m = &picked.served;
    if !s.is_ready() {
        return Err(ApiError::not_ready(S));
    }
    let ct = api::content_type(h);
    if !(ct.is_empty() || ct == "application/json") {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "BAD_REQUEST",
            format!("content type {ct:?} is not supported; use application/json"),
            S,
        ));
    }
    let bytes = api::read_body(body, s.config.body_limit, S).await?;
    // The binary tensor extension: a JSON header of the given length, then raw tensor bytes.
    let (head, binary) = match h
        .get("inference-header-content-length")
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
    {
        Some(n) => {
            let n: usize = n.parse().map_err(|_| {
                ApiError::bad_request("Inference-Header-Content-Length is not a number", S)
            })?;
            if n > bytes.len() {
                return Err(ApiError::bad_request(
                    "Inference-Header-Content-Length is past the end of the body",
                    S,
                ));
            }
            (&bytes[..n], &bytes[n..])
        }
        None => (&bytes[..], &bytes[..0]),
    };
    let mut req: Json = serde_json::from_slice(head)
        .map_err(|e| ApiError::bad_request(format!("invalid JSON: {e}"), S))?;
    attach_binary(&mut req, binary)?;
    // The protocol's request keys, and its tensors' keys; anything else is a mistake to name.
    if let Some(k) = req.as_object().and_then(|o| {
        o.keys()
            .find(|k| !["id", "parameters", "inputs", "outputs"].contains(&k.as_str()))
    }) {
        return Err(ApiError::bad_request(
            format!(
                "the request has an unknown key `{k}` (the protocol's are id, parameters, inputs, outputs)"
            ),
            S,
        ));
    }
    if let Some(id) = req.get("id").filter(|id| !id.is_string()) {
        return Err(ApiError::bad_request(
            format!("the request's `id` must be a string, not {id}"),
            S,
        ));
    }
    let inputs = req
        .get("inputs")
        .and_then(Json::as_array)
        .ok_or_else(|| ApiError::bad_request("the request needs an `inputs` list", S))?;
    for t in inputs {
        let name = t.get("name").and_then(Json::as_str).unwrap_or("?");
        if !t.get("data").is_some_and(Json::is_array) {
            return Err(ApiError::bad_request(
                format!("input `{name}` needs its values as a `data` list"),
                S,
            ));
        }
        if let Some(k) = t.as_object().and_then(|o| {
            o.keys().find(|k| {
                !["name", "shape", "datatype", "data", "parameters"].contains(&k.as_str())
            })
        }) {
            return Err(ApiError::bad_request(
                format!(
                    "an input tensor has an unknown key `{k}` (a tensor's are name, shape, datatype, data, parameters)"
                ),
                S,
            ));
        }
    }
    let sig = &m.model.signature;
    let mut cols = Vec::new();
    let single_matrix = inputs.len() == 1
        && inputs[0]
            .get("shape")
            .and_then(Json::as_array)
            .is_some_and(|sh| {
                sh.len() == 2
                    && sh[1].as_u64().is_some_and(|c| {
                        c as usize == sig.inputs.len() && c != 1 || sig.inputs.len() == 1
                    })
            });
    if single_matrix {
        let t = &inputs[0];
        let name = t.get("name").and_then(Json::as_str).unwrap_or("input");
        let shape = shape_of(t, name)?;
        let dt = t.get("datatype").and_then(Json::as_str).unwrap_or("FP64");
        let mut vals = Vec::new();
        flatten(t.get("data").unwrap_or(&Json::Null), &mut vals, 0)?;
        let (rows, width) = (shape[0], shape[1]);
        if rows.checked_mul(width) != Some(vals.len()) {
            return Err(ApiError::bad_request(
                format!(
                    "input `{name}`: shape {shape:?} needs {} values, data has {}",
                    rows.saturating_mul(width),
                    vals.len()
                ),
                S,
            ));
        }
        for (j, f) in sig.inputs.iter().enumerate() {
            let colvals: Vec<&Json> = (0..rows).map(|i| vals[i * width + j]).collect();
            cols.push(Column::new(
                f.name.clone(),
                column(&f.name, dt, &colvals, f.dtype)?,
            ));
        }
    } else {
        for t in inputs {
            let name = t
                .get("name")
                .and_then(Json::as_str)
                .ok_or_else(|| ApiError::bad_request("every input needs a name", S))?;
            let Some(f) = sig.inputs.iter().find(|f| f.name == name) else {
                continue;
            };
            let shape = shape_of(t, name)?;
            let dt = t.get("datatype").and_then(Json::as_str).ok_or_else(|| {
                ApiError::bad_request(format!("input `{name}` has no datatype"), S)
            })?;
            let mut vals = Vec::new();
            flatten(t.get("data").unwrap_or(&Json::Null), &mut vals, 0)?;
            let n: usize = shape.iter().product();
            if n != vals.len() || shape.get(1).is_some_and(|w| *w != 1) || shape.len() > 2 {
                return Err(ApiError::bad_request(
                    format!(
                        "input `{name}`: expected shape [rows] or [rows, 1] matching its data, got {shape:?} with {} values",
                        vals.len()
                    ),
                    S,
                ));
            }
            cols.push(Column::new(name, column(name, dt, &vals, f.dtype)?));
        }
        if let Some(missing) = sig
            .inputs
            .iter()
            .find(|f| !cols.iter().any(|c| c.name == f.name))
        {
            return Err(ApiError::bad_request(
                format!(
                    "missing input `{}` ({})",
                    missing.name,
                    datatype(missing.dtype)
                ),
                S,
            ));
        }
    }
    let frame = Frame::new(cols).map_err(|e| ApiError::bad_request(e.to_string(), S))?;
    let out = api::score_picked(s, &picked, frame, S).await?;
    let n = out.predictions.len();
    let dt = match &out.predictions {
        Predictions::Labels(_) | Predictions::Classes(_) => match out.label(0) {
            Some(Label::Str(_)) => "BYTES",
            Some(Label::Bool(_)) => "BOOL",
            Some(Label::Float(_)) => "FP64",
            _ => "INT64",
        },
        Predictions::Values(_) => "FP64",
        Predictions::Clusters(_) => "INT64",
    };
    let mut outputs = vec![
        json!({"name": "predictions", "datatype": dt, "shape": [n], "data": api::predictions(&out)}),
    ];
    if let Some(p) = &out.probabilities {
        outputs.push(json!({"name": "probabilities", "datatype": "FP64", "shape": [p.rows(), p.cols()], "data": p.as_slice().iter().map(|x| api::num(*x)).collect::<Vec<_>>()}));
    }
    // Further named outputs (reason codes) as BYTES tensors; a row without a value gets "".
    for (name, v) in &out.extra {
        let data: Vec<&str> = v.iter().map(|s| s.as_deref().unwrap_or("")).collect();
        outputs.push(json!({"name": name, "datatype": "BYTES", "shape": [v.len()], "data": data}));
    }
    let mut doc = json!({"model_name": m.name, "model_version": m.version.unwrap_or(1).to_string(), "outputs": outputs});
    if let Some(id) = req.get("id") {
        doc["id"] = id.clone();
    }
    Ok(axum::Json(doc))
}

/// Moves binary tensor data (the extension's raw bytes, in input order) into each input's `data`.
fn attach_binary(req: &mut Json, binary: &[u8]) -> Result<(), ApiError> {
    let mut at = 0usize;
    let Some(inputs) = req.get_mut("inputs").and_then(Json::as_array_mut) else {
        return Ok(());
    };
    for t in inputs {
        let Some(size) = t
            .get("parameters")
            .and_then(|p| p.get("binary_data_size"))
            .and_then(Json::as_u64)
        else {
            continue;
        };
        let size = usize::try_from(size)
            .map_err(|_| ApiError::bad_request("binary_data_size too large", S))?;
        let chunk = binary.get(at..at.saturating_add(size)).ok_or_else(|| {
            ApiError::bad_request(
                "binary tensor data is shorter than binary_data_size says",
                S,
            )
        })?;
        at += size;
        let dt = t
            .get("datatype")
            .and_then(Json::as_str)
            .unwrap_or("")
            .to_string();
        t["data"] = Json::Array(decode(&dt, chunk)?);
    }
    Ok(())
}

/// Raw little-endian tensor bytes as JSON scalars; BYTES elements are 4-byte-length prefixed.
fn decode(datatype: &str, b: &[u8]) -> Result<Vec<Json>, ApiError> {
    let bad = || {
        ApiError::bad_request(
            format!("binary data does not divide into {datatype} elements"),
            S,
        )
    };
    let fixed = |n: usize| {
        if b.len().is_multiple_of(n) {
            Ok(b.chunks_exact(n))
        } else {
            Err(bad())
        }
    };
    let arr8 = |c: &[u8]| <[u8; 8]>::try_from(c).unwrap_or_default();
    let arr4 = |c: &[u8]| <[u8; 4]>::try_from(c).unwrap_or_default();
    let arr2 = |c: &[u8]| <[u8; 2]>::try_from(c).unwrap_or_default();
    Ok(match datatype {
        "FP64" => fixed(8)?
            .map(|c| api::num(f64::from_le_bytes(arr8(c))))
            .collect(),
        "FP32" => fixed(4)?
            .map(|c| api::num(f64::from(f32::from_le_bytes(arr4(c)))))
            .collect(),
        "INT64" => fixed(8)?
            .map(|c| json!(i64::from_le_bytes(arr8(c))))
            .collect(),
        "INT32" => fixed(4)?
            .map(|c| json!(i32::from_le_bytes(arr4(c))))
            .collect(),
        "INT16" => fixed(2)?
            .map(|c| json!(i16::from_le_bytes(arr2(c))))
            .collect(),
        "INT8" => b.iter().map(|&x| json!(x as i8)).collect(),
        "UINT64" => fixed(8)?
            .map(|c| json!(u64::from_le_bytes(arr8(c))))
            .collect(),
        "UINT32" => fixed(4)?
            .map(|c| json!(u32::from_le_bytes(arr4(c))))
            .collect(),
        "UINT16" => fixed(2)?
            .map(|c| json!(u16::from_le_bytes(arr2(c))))
            .collect(),
        "UINT8" => b.iter().map(|&x| json!(x)).collect(),
        "BOOL" => b.iter().map(|&x| json!(x != 0)).collect(),
        "BYTES" => {
            let mut out = Vec::new();
            let mut i = 0;
            while i < b.len() {
                let len = b
                    .get(i..i + 4)
                    .map(|l| u32::from_le_bytes(arr4(l)) as usize)
                    .ok_or_else(bad)?;
                let s = b.get(i + 4..i + 4 + len).ok_or_else(bad)?;
                out.push(json!(String::from_utf8_lossy(s)));
                i += 4 + len;
            }
            out
        }
        other => {
            return Err(ApiError::bad_request(
                format!("binary data of datatype {other:?} is not supported"),
                S,
            ));
        }
    })
}
