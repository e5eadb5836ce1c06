//! mlship's HTTP API: MLflow scoring, KServe V1 and the Open Inference Protocol (V2), on one port.
//!
//! - [`router`] builds the axum application over an [`AppState`] of loaded models;
//! - [`run`] serves it on a listener until a shutdown signal, letting requests in flight finish;
//! - [`input`] parses request bodies (MLflow's JSON shapes, CSV) into a typed `Frame`;
//! - `mlflow`, `kserve` and `v2` are the protocol adapters; each keeps its own error shape;
//! - [`observe`] gives both servers request ids, access logs and 500s for panics;
//! - [`otel`] exports a span per request to an OpenTelemetry collector, when given one.

mod api;
pub mod auth;
mod batch;
mod deploy;
#[cfg(feature = "fault-injection")]
mod fault;
mod form;
pub mod input;
mod kserve;
pub mod listen;
mod metrics;
mod mlflow;
pub mod observe;
mod openapi;
pub mod otel;
pub mod tls;
pub mod tracking;
pub mod ui;
mod v2;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::Router;
use axum::routing::{get, post};
use mlship_model::Model;

pub use api::ApiError;
pub use batch::BatchConfig;
pub use deploy::{Deployment, RollbackHook, RollbackPolicy};
pub use metrics::Metrics;

/// One model the server answers for.
#[derive(Debug)]
pub struct Served {
    /// The route name (`/models/{name}/…`).
    pub name: String,
    /// The registry version, when it came from the registry.
    pub version: Option<u32>,
    /// The alias it was loaded through (`models:/NAME@ALIAS`), if any.
    pub alias: Option<String>,
    pub model: Arc<Model>,
    /// Where it came from: a path or a `models:/` URI.
    pub source: String,
    /// The model's batcher, started on first use and again if its task ever stops.
    batcher: std::sync::Mutex<Option<tokio::sync::mpsc::UnboundedSender<batch::Job>>>,
    /// The version as metrics label it (`file` for a model not from the registry).
    version_label: String,
    /// Requests in flight allowed, when capped (set as the server installs the model).
    inflight: Option<Arc<tokio::sync::Semaphore>>,
}

impl Served {
    pub fn new(
        name: String,
        version: Option<u32>,
        alias: Option<String>,
        model: Arc<Model>,
        source: String,
    ) -> Served {
        let version_label = version.map_or_else(|| "file".to_string(), |v| v.to_string());
        #[cfg(feature = "fault-injection")]
        fault::mark(&name, &model);
        Served {
            name,
            version,
            alias,
            model,
            source,
            batcher: std::sync::Mutex::new(None),
            version_label,
            inflight: None,
        }
    }

    /// Caps the requests in flight to this model (0: no cap).
    fn capped(mut self, max: usize) -> Served {
        self.inflight = (max > 0).then(|| Arc::new(tokio::sync::Semaphore::new(max)));
        self
    }
}

/// Settings of the server.
#[derive(Clone, Debug)]
pub struct Config {
    /// Requests with a larger body get 413.
    pub body_limit: usize,
    /// How single-row requests are batched.
    pub batch: BatchConfig,
    /// Requests taking longer are answered 503 (`None`: no limit).
    pub request_timeout: Option<std::time::Duration>,
    /// Requests in flight per model; past it, 503 with `Retry-After` (0: no cap).
    pub max_concurrency: usize,
    /// Threads one large batch may take (`None`: the model's default, every core up to eight).
    pub scoring_threads: Option<usize>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            body_limit: 32 << 20,
            batch: BatchConfig::default(),
            request_timeout: None,
            max_concurrency: 0,
            scoring_threads: None,
        }
    }
}

/// What every handler sees.
#[derive(Debug)]
pub struct AppState {
    /// The served models; a reload replaces an entry, and requests keep the `Arc` they started with.
    models: std::sync::RwLock<Vec<Arc<Served>>>,
    pub config: Config,
    pub metrics: Arc<Metrics>,
    deployments: std::sync::RwLock<Vec<Arc<Deployment>>>,
    hook: Option<Arc<dyn RollbackHook>>,
    ready: AtomicBool,
    /// The tokens requests are checked against (`None`: authentication is off).
    auth: Option<Arc<auth::Tokens>>,
    /// Models that failed to load (name, reason), reported not ready while the others serve.
    failed: std::sync::RwLock<Vec<(String, String)>>,
}

impl std::fmt::Debug for dyn RollbackHook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RollbackHook")
    }
}

/// The model a request goes to, and the deployment route it took, if any.
pub struct Picked {
    pub served: Arc<Served>,
    pub route: Option<(Arc<Deployment>, usize)>,
}

impl AppState {
    pub fn new(models: Vec<Served>, config: Config) -> AppState {
        Self::with_deployments(models, Vec::new(), None, config)
    }

    /// A server with deployments (weighted routes over versions) besides plain models.
    pub fn with_deployments(
        models: Vec<Served>,
        deployments: Vec<Deployment>,
        hook: Option<Arc<dyn RollbackHook>>,
        config: Config,
    ) -> AppState {
        let cap = config.max_concurrency;
        let models = std::sync::RwLock::new(
            models
                .into_iter()
                .map(|m| Arc::new(m.capped(cap)))
                .collect(),
        );
        AppState {
            models,
            config,
            metrics: Arc::new(Metrics::default()),
            deployments: std::sync::RwLock::new(deployments.into_iter().map(Arc::new).collect()),
            hook,
            ready: AtomicBool::new(true),
            auth: None,
            failed: std::sync::RwLock::new(Vec::new()),
        }
    }

    /// Records the models that failed to load, with why: they are reported not ready (503 with
    /// the reason) while the others serve.
    pub fn set_failed(&self, failed: Vec<(String, String)>) {
        *self
            .failed
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = failed;
    }

    /// Why the model `name` failed to load, if it did.
    pub fn failure(&self, name: &str) -> Option<String> {
        self.failed
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, why)| why.clone())
    }

    /// The model a route names, or the answer for why there is none: 503 while loading or for
    /// a model that failed to load, 404 for a name not served.
    pub fn lookup(&self, spec: &str, style: api::Style) -> Result<Arc<Served>, ApiError> {
        if !self.is_ready() {
            return Err(ApiError::not_ready(style));
        }
        self.find(spec).ok_or_else(|| self.missing(spec, style))
    }

    /// The answer for a model spec that finds nothing.
    pub fn missing(&self, spec: &str, style: api::Style) -> ApiError {
        let name = spec.split(['@', '/']).next().unwrap_or(spec);
        if let Some(why) = self.failure(name) {
            return ApiError::new(
                axum::http::StatusCode::SERVICE_UNAVAILABLE,
                "TEMPORARILY_UNAVAILABLE",
                format!("the model `{name}` is not ready: it failed to load: {why}"),
                style,
            );
        }
        let names = self.names();
        let known: Vec<&str> = names.iter().map(String::as_str).collect();
        ApiError::unknown_model(spec, &known, style)
    }

    /// Turns authentication on: every route but the health probes needs a `read` token.
    pub fn with_auth(mut self, tokens: Arc<auth::Tokens>) -> AppState {
        self.auth = Some(tokens);
        self
    }

    pub fn deployments(&self) -> Vec<Arc<Deployment>> {
        self.deployments
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Serves a deployment, replacing the one of the same name if there is one (a rollout's next
    /// step): requests already routed finish on their route, new ones take the new weights.
    pub fn put_deployment(&self, d: Deployment) -> Arc<Deployment> {
        let d = Arc::new(d);
        let mut all = self
            .deployments
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match all.iter_mut().find(|x| x.name == d.name) {
            Some(slot) => *slot = d.clone(),
            None => all.push(d.clone()),
        }
        d
    }

    /// Stops serving a deployment: its name goes back to the model of that name, if any.
    pub fn drop_deployment(&self, name: &str) {
        self.deployments
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .retain(|d| d.name != name);
    }

    /// The model for one scoring request: a deployment picks a route (sticky by its header),
    /// anything else is looked up as in [`AppState::find`].
    pub fn pick(&self, spec: &str, headers: &axum::http::HeaderMap) -> Option<Picked> {
        if let Some(d) = self.deployments().into_iter().find(|d| d.name == spec) {
            let sticky = d
                .sticky_header
                .as_ref()
                .and_then(|h| headers.get(h.as_str()))
                .and_then(|v| v.to_str().ok());
            let i = d.pick(sticky);
            return Some(Picked {
                served: d.routes[i].0.clone(),
                route: Some((d.clone(), i)),
            });
        }
        self.find(spec).map(|served| Picked {
            served,
            route: None,
        })
    }

    /// Records a deployment route's outcome (and may roll it back).
    pub fn record(&self, picked: &Picked, ok: bool, started: std::time::Instant) {
        if let Some((d, i)) = &picked.route {
            d.record(
                *i,
                ok,
                started.elapsed().as_secs_f64() * 1e3,
                self.hook.as_deref(),
            );
        }
    }

    /// Installs the models and deployments of a server that started before loading them (so it
    /// could answer 503 meanwhile), and marks it ready.
    pub fn install(&self, models: Vec<Served>, deployments: Vec<Deployment>) {
        *self
            .models
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = models
            .into_iter()
            .map(|m| Arc::new(m.capped(self.config.max_concurrency)))
            .collect();
        *self
            .deployments
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) =
            deployments.into_iter().map(Arc::new).collect();
        self.set_ready(true);
    }

    /// The metrics, for tasks that outlive a request.
    pub fn metrics_handle(&self) -> Arc<Metrics> {
        self.metrics.clone()
    }

    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Acquire)
    }

    pub fn set_ready(&self, ready: bool) {
        self.ready.store(ready, Ordering::Release);
    }

    /// A snapshot of the served models.
    pub fn models(&self) -> Vec<Arc<Served>> {
        self.models
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Replaces the model served under `served.name` (a hot reload): requests already holding the
    /// old one finish with it, new requests get the new one, and none fails in between.
    pub fn replace(&self, served: Served) {
        let mut models = self
            .models
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(slot) = models.iter_mut().find(|m| m.name == served.name) {
            *slot = Arc::new(served.capped(self.config.max_concurrency));
        }
    }

    /// The model a route's `{name}` names: `NAME`, `NAME@ALIAS` or `NAME/VERSION`.
    pub fn find(&self, spec: &str) -> Option<Arc<Served>> {
        let models = self
            .models
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some((n, a)) = spec.split_once('@') {
            return models
                .iter()
                .find(|m| m.name == n && m.alias.as_deref() == Some(a))
                .cloned();
        }
        if let Some((n, v)) = spec.split_once('/') {
            let v: u32 = v.parse().ok()?;
            return models
                .iter()
                .find(|m| m.name == n && m.version == Some(v))
                .cloned();
        }
        if let Some(m) = models.iter().find(|m| m.name == spec) {
            return Some(m.clone());
        }
        // A deployment answers metadata with its production route.
        self.deployments()
            .into_iter()
            .find(|d| d.name == spec)
            .map(|d| d.routes[0].0.clone())
    }

    /// The model `/invocations` serves: the first given.
    pub fn default_model(&self) -> Option<Arc<Served>> {
        self.models
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .first()
            .cloned()
    }

    /// The names of the served models, for error messages.
    pub fn names(&self) -> Vec<String> {
        let mut n: Vec<String> = self.models().iter().map(|m| m.name.clone()).collect();
        n.extend(self.deployments().iter().map(|d| d.name.clone()));
        n
    }
}

/// The application: every route of every protocol.
pub fn router(state: Arc<AppState>) -> Router {
    let app = Router::new()
        .route("/ping", get(mlflow::ping))
        .route("/health", get(mlflow::ping))
        .route("/version", get(mlflow::version))
        .route("/invocations", post(mlflow::invocations_default))
        .route(
            "/models/{name}/invocations",
            post(mlflow::invocations_named),
        )
        .route(
            "/models/{name}/{version}/invocations",
            post(mlflow::invocations_versioned),
        )
        .route("/v1/models", get(kserve::list))
        .route(
            "/v1/models/{spec}",
            get(kserve::metadata)
                .post(kserve::predict)
                .fallback(kserve::other_method),
        )
        .route("/v2", get(v2::server_metadata))
        .route("/v2/health/live", get(v2::live))
        .route("/v2/health/ready", get(v2::ready))
        .route("/v2/models/{name}", get(v2::model_metadata))
        .route("/v2/models/{name}/ready", get(v2::model_ready))
        .route("/v2/models/{name}/infer", post(v2::infer))
        .route(
            "/v2/models/{name}/versions/{version}",
            get(v2::model_metadata_versioned),
        )
        .route(
            "/v2/models/{name}/versions/{version}/ready",
            get(v2::model_ready_versioned),
        )
        .route(
            "/v2/models/{name}/versions/{version}/infer",
            post(v2::infer_versioned),
        )
        .route("/metrics", get(metrics_route))
        .route("/openapi.json", get(openapi_route))
        .route("/docs", get(docs_route))
        .route("/models/{name}/form", get(form_route))
        .merge(ui::routes(ui::Mode::Serving))
        .fallback(api::not_found);
    let app = match &state.auth {
        Some(tokens) => app.layer(axum::middleware::from_fn_with_state(
            auth::Guard {
                tokens: tokens.clone(),
                policy: auth::serving_policy,
                style: serving_style,
            },
            auth::require,
        )),
        None => app,
    };
    let app = match state.config.request_timeout {
        Some(limit) => app.layer(axum::middleware::from_fn_with_state(
            observe::Deadline {
                limit,
                style: serving_style,
            },
            observe::deadline,
        )),
        None => app,
    };
    app.layer(observe::catch_panics(
        api::Style::Error,
        Some(state.metrics_handle()),
    ))
    .layer(axum::middleware::from_fn_with_state(
        state.clone(),
        count_requests,
    ))
    .layer(axum::middleware::from_fn(observe::access_log))
    .with_state(state)
}

/// The error shape of a model-server route: MLflow's on MLflow's routes.
fn serving_style(path: &str) -> api::Style {
    if path.starts_with("/invocations") || path.starts_with("/models/") {
        api::Style::Mlflow
    } else {
        api::Style::Error
    }
}

async fn metrics_route(
    axum::extract::State(s): axum::extract::State<Arc<AppState>>,
) -> impl axum::response::IntoResponse {
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4",
        )],
        s.metrics.render() + &deploy::render_metrics(&s.deployments()),
    )
}

async fn openapi_route(
    axum::extract::State(s): axum::extract::State<Arc<AppState>>,
) -> axum::Json<serde_json::Value> {
    axum::Json(openapi::document(&s))
}

async fn docs_route(
    axum::extract::State(s): axum::extract::State<Arc<AppState>>,
) -> axum::response::Html<String> {
    axum::response::Html(openapi::page(&s))
}

/// `GET /models/{name}/form`: the fields of the model's (or deployment's) "try it" form: types,
/// and the categories its encoders know.
async fn form_route(
    axum::extract::State(s): axum::extract::State<Arc<AppState>>,
    axum::extract::Path(name): axum::extract::Path<String>,
) -> Result<axum::Json<serde_json::Value>, ApiError> {
    // A deployment's versions take the same inputs: its production route's form serves.
    let m = match s.deployments().into_iter().find(|d| d.name == name) {
        Some(d) => d.routes[0].0.clone(),
        None => s.lookup(&name, api::Style::Mlflow)?,
    };
    Ok(axum::Json(form::describe(&m.model, None)))
}

/// Counts every request by its route template (not its raw path, which would explode the labels).
async fn count_requests(
    axum::extract::State(s): axum::extract::State<Arc<AppState>>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let started = std::time::Instant::now();
    let route = req
        .extensions()
        .get::<axum::extract::MatchedPath>()
        .cloned();
    let method = req.method().clone();
    let resp = next.run(req).await;
    let route = route.as_ref().map_or("unmatched", |p| p.as_str());
    s.metrics
        .request(route, method.as_str(), resp.status().as_u16(), started);
    resp
}

/// Serves `router(state)` on `listener` (plain TCP, or [`tls::TlsListener`]) until `shutdown`
/// completes; requests in flight finish.
pub async fn run<L>(
    listener: L,
    state: Arc<AppState>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()>
where
    L: axum::serve::Listener,
{
    listen::serve(listener, router(state), shutdown).await
}

/// Resolves on SIGTERM or Ctrl-C.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
}
