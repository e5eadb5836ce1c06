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
    /// Seconds after which a retry may succeed (`Retry-After`), for 429 and 503 answers.
    pub retry_after: Option<u64>,
    /// The methods the path takes (`Allow`), for 405 answers.
    pub allow: Option<&'static str>,
}

impl ApiError {
    /// 405: the path exists but does not take this method; `allow` lists the ones it takes.
    pub fn method_not_allowed(
        allow: &'static str,
        message: impl Into<String>,
        style: Style,
    ) -> Self {
        ApiError {
            allow: Some(allow),
            ..ApiError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "METHOD_NOT_ALLOWED",
                message,
                style,
            )
        }
    }

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
            retry_after: None,
            allow: None,
        }
    }

    /// The same answer, telling the client when to try again.
    pub fn retry_after(mut self, seconds: u64) -> Self {
        self.retry_after = Some(seconds);
        self
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
        let mut r = (self.status, axum::Json(body)).into_response();
        if let Some(s) = self.retry_after {
            r.headers_mut()
                .insert(header::RETRY_AFTER, axum::http::HeaderValue::from(s));
        }
        if let Some(a) = self.allow {
            r.headers_mut()
                .insert(header::ALLOW, axum::http::HeaderValue::from_static(a));
        }
        r
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
/// MLflow's answer to a scoring request: `predictions`, with a classifier's `probabilities` and
/// `classes` when asked for, and a model's further named outputs.
pub fn predictions_doc(out: &Output, probabilities: bool) -> Json {
    let mut doc = serde_json::Map::new();
    doc.insert("predictions".into(), Json::Array(predictions(out)));
    if probabilities {
        if let (Some(p), Some(c)) = (&out.probabilities, &out.classes) {
            doc.insert("probabilities".into(), matrix(p));
            doc.insert("classes".into(), Json::Array(c.iter().map(label).collect()));
        }
    }
    add_extra(&mut doc, out);
    Json::Object(doc)
}

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

/// Why a scoring call failed.
#[derive(Debug)]
pub enum Failure {
    /// The model refused the input, or (`Invalid`) could not score at all.
    Model(mlship_model::Error),
    /// The model panicked; the panic's message.
    Panic(String),
    /// The model's batcher stopped before answering (it is started again on the next request).
    Stopped,
}

/// The one table from scoring failures to answers: the status, the stable code, and whether the
/// failure is the client's (its message is the answer) or the server's (the answer is generic and
/// the cause goes to the log).
fn answer(f: &Failure) -> (StatusCode, &'static str, bool) {
    use mlship_model::Error as E;
    match f {
        Failure::Model(
            E::MissingColumn { .. }
            | E::BadValue { .. }
            | E::ColumnCount { .. }
            | E::UnknownCategory { .. }
            | E::RaggedFrame { .. },
        ) => (StatusCode::BAD_REQUEST, "INVALID_PARAMETER_VALUE", true),
        Failure::Model(E::Invalid(_)) | Failure::Panic(_) | Failure::Stopped => {
            (StatusCode::INTERNAL_SERVER_ERROR, "INTERNAL_ERROR", false)
        }
    }
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::Model(e) => write!(f, "{e}"),
            Failure::Panic(m) => write!(f, "the model panicked: {m}"),
            Failure::Stopped => f.write_str("the model's batcher stopped"),
        }
    }
}

/// The text of a panic's payload.
pub fn panic_message(p: &(dyn std::any::Any + Send)) -> String {
    p.downcast_ref::<&str>()
        .map(|s| (*s).to_string())
        .or_else(|| p.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".into())
}

/// Scores, turning a panic anywhere in the model into a [`Failure`]: the model stays loaded and
/// the thread goes on serving.
pub fn predict_guarded(
    model: &mlship_model::Model,
    frame: &mlship_model::Frame,
) -> Result<Output, Failure> {
    let guarded = || {
        #[cfg(feature = "fault-injection")]
        crate::fault::check(model);
        model.predict(frame)
    };
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(guarded)) {
        Ok(r) => r.map_err(Failure::Model),
        Err(p) => Err(Failure::Panic(panic_message(p.as_ref()))),
    }
}

/// Scores a frame and records it in the metrics; large batches run on the blocking pool so the
/// event loop stays responsive. A failure becomes its answer from [`answer`]'s table.
pub async fn score(
    state: &crate::AppState,
    served: &crate::Served,
    frame: mlship_model::Frame,
    style: Style,
) -> Result<Output, ApiError> {
    let started = std::time::Instant::now();
    let rows = frame.n_rows();
    crate::observe::note_served(&served.name, &served.version_label);
    // Past the model's cap on requests in flight, the answer is at once: try again shortly.
    let _permit = match &served.inflight {
        Some(sem) => Some(sem.clone().try_acquire_owned().map_err(|_| {
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "TEMPORARILY_UNAVAILABLE",
                format!(
                    "the model `{}` is answering as many requests as it may ({}); try again",
                    served.name, state.config.max_concurrency
                ),
                style,
            )
            .retry_after(1)
        })?),
        None => None,
    };
    let res = if rows == 1 && state.config.batch.max_batch_size > 1 {
        // Single rows go through the model's batcher, which scores concurrent ones together.
        let tx = batcher(state, served);
        crate::batch::submit(&tx, frame).await
    } else {
        score_frame(served.model.clone(), frame, state.config.scoring_threads).await
    };
    state.metrics.scored(
        &served.name,
        &served.version_label,
        rows,
        started.elapsed().as_secs_f64(),
        res.is_ok(),
    );
    res.map_err(|f| {
        if matches!(f, Failure::Panic(_)) {
            state.metrics.panicked(&served.name, &served.version_label);
        }
        failed(&f, &served.name, &served.version_label, style)
    })
}

/// The answer to a scoring failure, from [`answer`]'s table: the client's mistake is told as it
/// is, the server's own fault is logged with its cause and answered with a generic message.
pub fn failed(f: &Failure, model: &str, version: &str, style: Style) -> ApiError {
    let (status, code, client) = answer(f);
    if client {
        ApiError::new(status, code, f.to_string(), style)
    } else {
        tracing::error!(model = %model, version = %version, cause = %f, "scoring failed");
        ApiError::new(
            status,
            code,
            format!(
                "the model `{model}` failed to score this request; the server's log has the cause"
            ),
            style,
        )
    }
}

/// The model's batcher: the running one, or a new one if there is none or it stopped.
fn batcher(
    state: &crate::AppState,
    served: &crate::Served,
) -> tokio::sync::mpsc::UnboundedSender<crate::batch::Job> {
    let mut slot = served
        .batcher
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    match slot.as_ref() {
        Some(tx) if !tx.is_closed() => tx.clone(),
        _ => {
            if slot.is_some() {
                tracing::warn!(model = %served.name, "restarting the model's batcher");
            }
            let (st, name, version) = (state.metrics_handle(), served.name.clone(), served.version);
            let tx = crate::batch::spawn(
                served.model.clone(),
                state.config.batch,
                std::sync::Arc::new(move |n| st.batch(&name, version, n)),
            );
            *slot = Some(tx.clone());
            tx
        }
    }
}

/// Scores a frame; a large one on the blocking pool, with at most `threads` threads when the
/// server caps them (`--scoring-threads`).
async fn score_frame(
    model: std::sync::Arc<mlship_model::Model>,
    frame: mlship_model::Frame,
    threads: Option<usize>,
) -> Result<Output, Failure> {
    if frame.n_rows() >= 512 {
        tokio::task::spawn_blocking(move || match threads {
            Some(n) => mlship_model::threads::with_threads(n, || predict_guarded(&model, &frame)),
            None => predict_guarded(&model, &frame),
        })
        .await
        .unwrap_or_else(|e| Err(Failure::Panic(e.to_string())))
    } else {
        predict_guarded(&model, &frame)
    }
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
