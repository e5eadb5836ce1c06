//! What the protocols share: errors in each protocol's shape, body reading, output encoding.

use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use mlship_model::{Label, Matrix, Output, Predictions};
use serde_json::{Value as Json, json};

/// Which protocol's error shape to answer with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Style {
    /// `{"error_code": "...", "message": "..."}`.
    Mlflow,
    /// `{"error": "..."}` (KServe V1 and the Open Inference Protocol).
    Error,
}

/// An error answer: the status says what kind, the body says what exactly.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    pub style: Style,
}

impl ApiError {
    pub fn new(
        status: StatusCode,
        code: &'static str,
        message: impl Into<String>,
        style: Style,
    ) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
            style,
        }
    }

    pub fn bad_request(message: impl Into<String>, style: Style) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "INVALID_PARAMETER_VALUE",
            message,
            style,
        )
    }

    pub fn unknown_model(spec: &str, known: &[&str], style: Style) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "RESOURCE_DOES_NOT_EXIST",
            format!(
                "no model named `{spec}` is served here (served: {})",
                known.join(", ")
            ),
            style,
        )
    }

    pub fn not_ready(style: Style) -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "TEMPORARILY_UNAVAILABLE",
            "the server is loading its models",
            style,
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = match self.style {
            Style::Mlflow => json!({"error_code": self.code, "message": self.message}),
            Style::Error => json!({"error": self.message}),
        };
        (self.status, axum::Json(body)).into_response()
    }
}

/// Reads a body up to the limit: a larger one is 413, in the protocol's shape.
pub async fn read_body(body: Body, limit: usize, style: Style) -> Result<Bytes, ApiError> {
    axum::body::to_bytes(body, limit).await.map_err(|_| {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "REQUEST_LIMIT_EXCEEDED",
            format!("the request body is over the limit of {limit} bytes"),
            style,
        )
    })
}

/// The media type of a request, lower-cased without parameters.
pub fn content_type(headers: &HeaderMap) -> String {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| {
            v.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase()
        })
        .unwrap_or_default()
}

pub async fn not_found() -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "ENDPOINT_NOT_FOUND",
        "no such route; see /v2, /ping, /invocations, /v1/models",
        Style::Error,
    )
}

pub fn num(x: f64) -> Json {
    serde_json::Number::from_f64(x).map_or(Json::Null, Json::Number)
}

pub fn label(l: &Label) -> Json {
    match l {
        Label::Int(i) => json!(i),
        Label::Float(f) => num(*f),
        Label::Str(s) => json!(s),
        Label::Bool(b) => json!(b),
    }
}

pub fn matrix(m: &Matrix) -> Json {
    Json::Array(
        m.iter_rows()
            .map(|r| Json::Array(r.iter().map(|x| num(*x)).collect()))
            .collect(),
    )
}

/// The model's further named outputs (a PMML scorecard's reason codes): `{name: [value|null]}`,
/// added to a response as `outputs` when the model has any.
pub fn add_extra(doc: &mut serde_json::Map<String, Json>, o: &Output) {
    if !o.extra.is_empty() {
        let outputs = o
            .extra
            .iter()
            .map(|(name, v)| (name.clone(), serde_json::json!(v)))
            .collect();
        doc.insert("outputs".into(), Json::Object(outputs));
    }
}

pub fn predictions(o: &Output) -> Vec<Json> {
    match &o.predictions {
        Predictions::Labels(v) => v.iter().map(label).collect(),
        Predictions::Classes(v) => (0..v.len())
            .map(|i| o.label(i).map_or(Json::Null, label))
            .collect(),
        Predictions::Values(v) => v.iter().map(|x| num(*x)).collect(),
        Predictions::Clusters(v) => v.iter().map(|x| json!(x)).collect(),
    }
}

/// Scores a frame and records it in the metrics; large batches run on the blocking pool so the
/// event loop stays responsive.
pub async fn score(
    state: &crate::AppState,
    served: &crate::Served,
    frame: mlship_model::Frame,
    style: Style,
) -> Result<Output, ApiError> {
    let started = std::time::Instant::now();
    let rows = frame.n_rows();
    let res = if rows == 1 && state.config.batch.max_batch_size > 1 {
        // Single rows go through the model's batcher, which scores concurrent ones together.
        let tx = served.batcher.get_or_init(|| {
            let (st, name, version) = (state.metrics_handle(), served.name.clone(), served.version);
            crate::batch::spawn(
                served.model.clone(),
                state.config.batch,
                std::sync::Arc::new(move |n| st.batch(&name, version, n)),
            )
        });
        crate::batch::submit(tx, frame)
            .await
            .map_err(|e| ApiError::bad_request(e, style))
    } else {
        score_frame(served.model.clone(), frame, style).await
    };
    state.metrics.scored(
        &served.name,
        &served.version_label,
        rows,
        started.elapsed().as_secs_f64(),
        res.is_ok(),
    );
    res
}

async fn score_frame(
    model: std::sync::Arc<mlship_model::Model>,
    frame: mlship_model::Frame,
    style: Style,
) -> Result<Output, ApiError> {
    let big = frame.n_rows() >= 512;
    let res = if big {
        tokio::task::spawn_blocking(move || model.predict(&frame))
            .await
            .map_err(|_| {
                ApiError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "INTERNAL_ERROR",
                    "internal error",
                    style,
                )
            })?
    } else {
        model.predict(&frame)
    };
    res.map_err(|e| ApiError::bad_request(e.to_string(), style))
}

/// Scores for a picked model: records the deployment route's outcome, and scores the deployment's
/// shadow model in the background (its answer is counted in the metrics, never returned).
pub async fn score_picked(
    state: &crate::AppState,
    picked: &crate::Picked,
    frame: mlship_model::Frame,
    style: Style,
) -> Result<Output, ApiError> {
    let started = std::time::Instant::now();
    let shadow = picked
        .route
        .as_ref()
        .and_then(|(d, _)| d.shadow.clone())
        .map(|sh| (sh, frame.clone()));
    let res = score(state, &picked.served, frame, style).await;
    state.record(picked, res.is_ok(), started);
    if let Some((sh, f)) = shadow {
        let metrics = state.metrics_handle();
        tokio::task::spawn_blocking(move || {
            let t = std::time::Instant::now();
            let rows = f.n_rows();
            let ok = sh.model.predict(&f).is_ok();
            let version = sh
                .version
                .map_or_else(|| "file".to_string(), |v| v.to_string());
            metrics.scored(
                &format!("{} (shadow)", sh.name),
                &version,
                rows,
                t.elapsed().as_secs_f64(),
                ok,
            );
        });
    }
    res
}
