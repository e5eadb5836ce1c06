//! MLflow's scoring protocol: `/ping`, `/health`, `/version`, `/invocations`, `/models/{name}/invocations`.
//!
//! Bodies are JSON with exactly one of `dataframe_split`, `dataframe_records`, `instances` or
//! `inputs` (plus optional `params`), or CSV. The answer is `{"predictions": …}`. Class
//! probabilities come with `params: {"predict_method": "predict_proba"}` (MLflow's spelling, which
//! answers the probabilities as `predictions`) or with `?probabilities=true` (which adds
//! `probabilities` and `classes` next to the labels).

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use serde_json::{Value as Json, json};

use crate::api::{self, ApiError, Style};
use crate::input::{self, InputFormat};
use crate::{AppState, Served};

pub async fn ping(State(s): State<Arc<AppState>>) -> impl IntoResponse {
    if s.is_ready() {
        (StatusCode::OK, "\n")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "loading\n")
    }
}

pub async fn version() -> impl IntoResponse {
    env!("CARGO_PKG_VERSION")
}

pub async fn invocations_default(
    State(s): State<Arc<AppState>>,
    q: Query<HashMap<String, String>>,
    h: HeaderMap,
    body: Body,
) -> Result<axum::Json<Json>, ApiError> {
    if !s.is_ready() {
        return Err(ApiError::not_ready(Style::Mlflow));
    }
    // With deployments, /invocations serves the first one; else the first model.
    let picked = match s.deployments().first() {
        Some(d) => s.pick(&d.name, &h),
        None => s.default_model().map(|served| crate::Picked {
            served,
            route: None,
        }),
    }
    .ok_or_else(|| ApiError::unknown_model("(default)", &[], Style::Mlflow))?;
    invoke(&s, picked, &q, &h, body).await
}

pub async fn invocations_named(
    State(s): State<Arc<AppState>>,
    Path(name): Path<String>,
    q: Query<HashMap<String, String>>,
    h: HeaderMap,
    body: Body,
) -> Result<axum::Json<Json>, ApiError> {
    let picked = match s.pick(&name, &h) {
        Some(p) => p,
        None => crate::Picked {
            served: lookup(&s, &name)?,
            route: None,
        },
    };
    invoke(&s, picked, &q, &h, body).await
}

pub async fn invocations_versioned(
    State(s): State<Arc<AppState>>,
    Path((name, version)): Path<(String, String)>,
    q: Query<HashMap<String, String>>,
    h: HeaderMap,
    body: Body,
) -> Result<axum::Json<Json>, ApiError> {
    let m = lookup(&s, &format!("{name}/{version}"))?;
    invoke(
        &s,
        crate::Picked {
            served: m,
            route: None,
        },
        &q,
        &h,
        body,
    )
    .await
}

fn lookup(s: &AppState, spec: &str) -> Result<Arc<Served>, ApiError> {
    s.lookup(spec, Style::Mlflow)
}

async fn invoke(
    s: &AppState,
    picked: crate::Picked,
    q: &HashMap<String, String>,
    h: &HeaderMap,
    body: Body,
) -> Result<axum::Json<Json>, ApiError> {
    let m = &picked.served;
    if !s.is_ready() {
        return Err(ApiError::not_ready(Style::Mlflow));
    }
    let probabilities = match q.get("probabilities").map(String::as_str) {
        None | Some("false" | "0") => false,
        Some("true" | "1") => true,
        Some(other) => {
            return Err(ApiError::bad_request(
                format!("the query parameter probabilities is {other:?}; use true or false"),
                Style::Mlflow,
            ));
        }
    };
    let format = match api::content_type(h).as_str() {
        "application/json" | "" => InputFormat::Json,
        "text/csv" => InputFormat::Csv,
        other => {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "BAD_REQUEST",
                format!(
                    "content type {other:?} is not supported; use application/json or text/csv"
                ),
                Style::Mlflow,
            ));
        }
    };
    let bytes = api::read_body(body, s.config.body_limit, Style::Mlflow).await?;
    let text = std::str::from_utf8(&bytes)
        .map_err(|_| ApiError::bad_request("the body is not UTF-8", Style::Mlflow))?;
    let mut predict_proba = false;
    let mut parsed = None;
    if format == InputFormat::Json {
        let v: Json = crate::input::parse_json_text(text)
            .map_err(|e| ApiError::bad_request(format!("invalid JSON: {e}"), Style::Mlflow))?;
        if let Some(o) = v.as_object() {
            let keys: Vec<&str> = [
                "dataframe_split",
                "dataframe_records",
                "instances",
                "inputs",
            ]
            .into_iter()
            .filter(|k| o.contains_key(*k))
            .collect();
            if keys.len() != 1 {
                return Err(ApiError::bad_request(
                    format!(
                        "the body must have exactly one of dataframe_split, dataframe_records, instances, inputs; found {}",
                        if keys.is_empty() {
                            "none".to_string()
                        } else {
                            keys.join(", ")
                        }
                    ),
                    Style::Mlflow,
                ));
            }
            if let Some(p) = o.get("params").filter(|p| !p.is_object()) {
                return Err(ApiError::bad_request(
                    format!("params must be an object, not {p}"),
                    Style::Mlflow,
                ));
            }
            let method = o.get("params").and_then(|p| p.get("predict_method"));
            match method.map(|m| m.as_str().ok_or(m)) {
                None | Some(Ok("predict")) => {}
                Some(Ok("predict_proba")) => predict_proba = true,
                Some(Err(not_text)) => {
                    return Err(ApiError::bad_request(
                        format!(
                            "params.predict_method is {not_text}: supported are \"predict\" and \"predict_proba\""
                        ),
                        Style::Mlflow,
                    ));
                }
                Some(Ok(other)) => {
                    return Err(ApiError::bad_request(
                        format!(
                            "params.predict_method {other:?}: supported are predict and predict_proba"
                        ),
                        Style::Mlflow,
                    ));
                }
            }
        }
        parsed = Some(v);
    }
    let frame = match &parsed {
        Some(v) => input::parse_value(v, &m.model.signature),
        None => input::parse(text, format, &m.model.signature),
    }
    .map_err(|e| ApiError::bad_request(format!("{} ({})", e.message, e.hint), Style::Mlflow))?;
    if frame.n_rows() == 0 {
        return Err(ApiError::bad_request(
            "the input has no rows",
            Style::Mlflow,
        ));
    }
    let out = api::score_picked(s, &picked, frame, Style::Mlflow).await?;
    if predict_proba {
        let p = out.probabilities.as_ref().ok_or_else(|| {
            ApiError::bad_request("this model has no predict_proba", Style::Mlflow)
        })?;
        return Ok(axum::Json(json!({"predictions": api::matrix(p)})));
    }
    Ok(axum::Json(api::predictions_doc(&out, probabilities)))
}
