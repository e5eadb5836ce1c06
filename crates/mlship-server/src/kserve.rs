//! KServe's V1 protocol: `GET /v1/models/{name}`, `POST /v1/models/{name}:predict`.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use serde_json::{Value as Json, json};

use crate::api::{self, ApiError, Style};
use crate::input::{self, InputFormat};
use crate::{AppState, Served};

fn lookup(s: &AppState, spec: &str) -> Result<Arc<Served>, ApiError> {
    s.lookup(spec, Style::Error)
}

pub async fn list(State(s): State<Arc<AppState>>) -> axum::Json<Json> {
    axum::Json(json!({"models": s.names()}))
}

/// The router sees `/v1/models/{name}` (GET) and `/v1/models/{name}:predict` (POST) as one
/// path template; each path turns the other's methods away with its own `Allow`.
fn wrong_method(spec: &str, method: &axum::http::Method) -> ApiError {
    match spec.strip_suffix(":predict") {
        Some(_) => ApiError::method_not_allowed(
            "POST",
            format!("{method} /v1/models/{spec}: this path takes POST"),
            Style::Error,
        ),
        None => ApiError::method_not_allowed(
            "GET,HEAD",
            format!(
                "{method} /v1/models/{spec}: this path takes GET; to score, POST to /v1/models/{spec}:predict"
            ),
            Style::Error,
        ),
    }
}

/// Any other method on `/v1/models/{name}[:predict]`.
pub async fn other_method(Path(spec): Path<String>, method: axum::http::Method) -> ApiError {
    wrong_method(&spec, &method)
}

pub async fn metadata(
    State(s): State<Arc<AppState>>,
    Path(spec): Path<String>,
    method: axum::http::Method,
) -> Result<axum::Json<Json>, ApiError> {
    if spec.ends_with(":predict") {
        return Err(wrong_method(&spec, &method));
    }
    let m = lookup(&s, &spec)?;
    Ok(axum::Json(json!({"name": m.name, "ready": s.is_ready()})))
}

pub async fn predict(
    State(s): State<Arc<AppState>>,
    Path(spec): Path<String>,
    h: HeaderMap,
    body: Body,
) -> Result<axum::Json<Json>, ApiError> {
    let Some(name) = spec.strip_suffix(":predict") else {
        return Err(wrong_method(&spec, &axum::http::Method::POST));
    };
    let picked = match s.pick(name, &h) {
        Some(p) => p,
        None => crate::Picked {
            served: lookup(&s, name)?,
            route: None,
        },
    };
    let m = picked.served.clone();
    if !s.is_ready() {
        return Err(ApiError::not_ready(Style::Error));
    }
    let ct = api::content_type(&h);
    if !(ct.is_empty() || ct == "application/json") {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "BAD_REQUEST",
            format!("content type {ct:?} is not supported; use application/json"),
            Style::Error,
        ));
    }
    let bytes = api::read_body(body, s.config.body_limit, Style::Error).await?;
    let text = std::str::from_utf8(&bytes)
        .map_err(|_| ApiError::bad_request("the body is not UTF-8", Style::Error))?;
    let v: Json = serde_json::from_str(text)
        .map_err(|e| ApiError::bad_request(format!("invalid JSON: {e}"), Style::Error))?;
    if let Some(k) = v
        .as_object()
        .and_then(|o| o.keys().find(|k| *k != "instances"))
    {
        return Err(ApiError::bad_request(
            format!("the request has an unknown key `{k}`; the body is {{\"instances\": [...]}}"),
            Style::Error,
        ));
    }
    if !v.get("instances").is_some_and(Json::is_array) {
        return Err(ApiError::bad_request(
            "the body must be {\"instances\": [...]}",
            Style::Error,
        ));
    }
    let frame = input::parse(text, InputFormat::Json, &m.model.signature)
        .map_err(|e| ApiError::bad_request(e.message, Style::Error))?;
    let out = api::score_picked(&s, &picked, frame, Style::Error).await?;
    let mut doc = serde_json::Map::new();
    doc.insert("predictions".into(), Json::Array(api::predictions(&out)));
    api::add_extra(&mut doc, &out);
    Ok(axum::Json(Json::Object(doc)))
}
