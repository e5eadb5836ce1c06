//! `mlship server`: MLflow's tracking and registry REST API over mlship's store, so the stock
//! `mlflow` client works unchanged.
//!
//! Every route is mounted under `/api/` and `/ajax-api/`. GET requests carry their fields as
//! query parameters (repeated keys for lists), the other methods as a JSON body (DELETE too).
//! Answers are proto3 JSON: empty lists are left out, ids are strings, non-finite metric values
//! are the strings `"NaN"`, `"Infinity"`, `"-Infinity"`. Errors are MLflow's
//! `{"error_code", "message"}` with the status the client expects; one match
//! ([`store_error`]) maps every store error to its status and code.

mod artifacts;
mod entities;
mod mlship_api;
mod models;
mod runs;

pub use mlship_api::{Loaded, Scoring};

use std::sync::Arc;

use axum::Router;
use axum::extract::{FromRequest, Query, Request, State};
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, get};
use mlship_registry::{Error as StoreError, FileStore, SqlStore, Version};
use serde_json::{Map, Value as Json, json};

use crate::api::{ApiError, Style};

/// What the MLflow API's `model-versions/create` hands the binary: the files of an MLflow model
/// (from the tracking artifact store) to validate and store as a registry version.
#[derive(Clone, Debug, Default)]
pub struct Registration {
    pub name: String,
    /// Relative paths and contents; empty when the source is not in this server's store.
    pub files: Vec<(String, Vec<u8>)>,
    pub source: String,
    pub run_id: Option<String>,
    pub model_id: Option<String>,
    pub description: Option<String>,
    pub tags: Vec<(String, String)>,
    pub by: String,
    /// Why the files could not be found, when they could not.
    pub missing: Option<String>,
}

/// Registers versions: validation with the loaders and the artifact store are the binary's.
pub trait Registrar: Send + Sync {
    /// Creates the version (marked not servable, with the reason, when mlship cannot load it).
    fn register(&self, r: Registration) -> Result<Version, StoreError>;
    /// Removes an artifact that no version lists any more (after a delete).
    fn release(&self, sha256: &str) -> Result<(), StoreError>;
    /// The files of an MLflow model directory holding a version that did not come through the
    /// MLflow API (registered with `mlship models register`), `MLmodel` last; refused for a
    /// format no MLflow flavor loads.
    fn mlflow_files(&self, version: &Version) -> Result<Vec<(String, Vec<u8>)>, StoreError>;
    /// Loads a servable version for scoring in the server's process (the web UI's "try it").
    fn load(&self, version: &Version) -> Result<Loaded, StoreError>;
}

/// What the tracking routes share.
pub struct TrackingState {
    pub store: SqlStore,
    pub files: Arc<dyn FileStore>,
    pub registrar: Arc<dyn Registrar>,
    /// The largest JSON body accepted (artifact uploads are not limited by it).
    pub body_limit: usize,
    /// The tokens requests are checked against (`None`: authentication is off).
    pub auth: Option<Arc<crate::auth::Tokens>>,
    /// API requests (not artifact transfers) taking longer are answered 503 (`None`: no limit).
    pub request_timeout: Option<std::time::Duration>,
    /// Versions loaded for "try it".
    pub scoring: Scoring,
}

impl std::fmt::Debug for TrackingState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TrackingState")
            .field("store", &self.store.describe())
            .field("files", &self.files.describe())
            .finish()
    }
}

pub type Shared = Arc<TrackingState>;

/// The error answer for a store error: the client's mistakes are 4xx, an unreachable store 503,
/// the server's own faults 500 with the detail kept out of the answer.
pub fn store_error(e: StoreError) -> ApiError {
    use StoreError as E;
    let (status, code) = match &e {
        E::NotFound(_) | E::UnknownModel { .. } | E::UnknownVersion { .. } => {
            (StatusCode::NOT_FOUND, "RESOURCE_DOES_NOT_EXIST")
        }
        E::AlreadyExists(_) => (StatusCode::BAD_REQUEST, "RESOURCE_ALREADY_EXISTS"),
        E::UnknownAlias { .. }
        | E::Invalid(_)
        | E::InvalidName { .. }
        | E::BadReference(_)
        | E::VersionInUse { .. }
        | E::NothingToRollBack { .. } => (StatusCode::BAD_REQUEST, "INVALID_PARAMETER_VALUE"),
        E::Unavailable(_) => (StatusCode::SERVICE_UNAVAILABLE, "TEMPORARILY_UNAVAILABLE"),
        E::Corrupt { .. } | E::MissingArtifact(_) | E::Store { .. } | E::Io { .. } | E::Sql(_) => {
            tracing::error!(cause = %e, "internal error");
            return ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "INTERNAL_ERROR",
                "the server failed to complete the request; its log has the cause",
                Style::Mlflow,
            );
        }
    };
    let message = match &e {
        E::UnknownModel { name, .. } => format!("Registered Model with name={name} not found"),
        E::UnknownVersion { name, version, .. } => {
            format!("Model Version (name={name}, version={version}) not found")
        }
        E::UnknownAlias { name, alias, .. } => {
            format!("Registered model alias {alias} not found for model {name}.")
        }
        other => other.to_string(),
    };
    ApiError::new(status, code, message, Style::Mlflow)
}

fn bad(message: impl Into<String>) -> ApiError {
    ApiError::bad_request(message, Style::Mlflow)
}

/// Runs store work on the blocking pool (the drivers are synchronous).
pub(crate) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, StoreError> + Send + 'static,
) -> Result<T, ApiError> {
    match tokio::task::spawn_blocking(f).await {
        Ok(r) => r.map_err(store_error),
        Err(e) => {
            tracing::error!(cause = %e, "a request's task failed");
            Err(ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "INTERNAL_ERROR",
                "the server failed to complete the request; its log has the cause",
                Style::Mlflow,
            ))
        }
    }
}

/// A request's fields: the query string of a GET, the JSON body of anything else.
pub(crate) struct Req(pub Map<String, Json>);

impl<S: Send + Sync> FromRequest<S> for Req {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        if req.method() == Method::GET {
            let Query(pairs): Query<Vec<(String, String)>> = Query::try_from_uri(req.uri())
                .map_err(|e| bad(format!("invalid query string: {e}")))?;
            let mut m = Map::new();
            for (k, v) in pairs {
                match m.get_mut(&k) {
                    Some(Json::Array(a)) => a.push(Json::String(v)),
                    Some(old) => {
                        let first = old.take();
                        *old = Json::Array(vec![first, Json::String(v)]);
                    }
                    None => {
                        m.insert(k, Json::String(v));
                    }
                }
            }
            return Ok(Req(m));
        }
        let bytes = axum::body::Bytes::from_request(req, state)
            .await
            .map_err(|e| {
                // 413 past the body limit, 400 for a body that breaks off.
                ApiError::new(
                    e.status(),
                    "INVALID_PARAMETER_VALUE",
                    format!("cannot read the request body: {}", e.body_text()),
                    Style::Mlflow,
                )
            })?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(Req(Map::new()));
        }
        match serde_json::from_slice::<Json>(&bytes) {
            Ok(Json::Object(m)) => Ok(Req(m)),
            Ok(_) => Err(bad("the request body must be a JSON object")),
            Err(e) => Err(bad(format!("malformed JSON in the request body: {e}"))),
        }
    }
}

impl Req {
    fn field(&self, name: &str) -> Option<&Json> {
        self.0.get(name).filter(|v| !v.is_null())
    }

    /// A required string field.
    pub fn str(&self, name: &str) -> Result<String, ApiError> {
        self.opt_str(name)?
            .ok_or_else(|| bad(format!("Missing value for required parameter '{name}'.")))
    }

    pub fn opt_str(&self, name: &str) -> Result<Option<String>, ApiError> {
        match self.field(name) {
            None => Ok(None),
            Some(Json::String(s)) => Ok(Some(s.clone())),
            Some(Json::Number(n)) => Ok(Some(n.to_string())),
            Some(Json::Bool(b)) => Ok(Some(b.to_string())),
            Some(Json::Array(a)) if a.len() == 1 && a[0].is_string() => {
                Ok(a[0].as_str().map(str::to_string))
            }
            Some(other) => Err(bad(format!(
                "Invalid value {other} for parameter '{name}' supplied: expected a string"
            ))),
        }
    }

    pub fn opt_i64(&self, name: &str) -> Result<Option<i64>, ApiError> {
        let wrong = |v: &Json| {
            bad(format!(
                "Invalid value {v} for parameter '{name}' supplied: expected an integer"
            ))
        };
        match self.field(name) {
            None => Ok(None),
            Some(v @ Json::Number(n)) => n
                .as_i64()
                .or_else(|| n.as_f64().filter(|f| f.fract() == 0.0).map(|f| f as i64))
                .map(Some)
                .ok_or_else(|| wrong(v)),
            Some(v @ Json::String(s)) => s.trim().parse().map(Some).map_err(|_| wrong(v)),
            Some(v) => Err(wrong(v)),
        }
    }

    pub fn opt_bool(&self, name: &str) -> Result<Option<bool>, ApiError> {
        match self.field(name) {
            None => Ok(None),
            Some(Json::Bool(b)) => Ok(Some(*b)),
            Some(Json::String(s)) if s.eq_ignore_ascii_case("true") => Ok(Some(true)),
            Some(Json::String(s)) if s.eq_ignore_ascii_case("false") => Ok(Some(false)),
            Some(v) => Err(bad(format!(
                "Invalid value {v} for parameter '{name}' supplied: expected true or false"
            ))),
        }
    }

    /// A list of strings (a JSON array, a repeated query key, or one value).
    pub fn strings(&self, name: &str) -> Result<Vec<String>, ApiError> {
        match self.field(name) {
            None => Ok(Vec::new()),
            Some(Json::Array(a)) => a
                .iter()
                .map(|v| match v {
                    Json::String(s) => Ok(s.clone()),
                    Json::Number(n) => Ok(n.to_string()),
                    other => Err(bad(format!(
                        "Invalid value {other} in '{name}': expected strings"
                    ))),
                })
                .collect(),
            Some(Json::String(s)) => Ok(vec![s.clone()]),
            Some(Json::Number(n)) => Ok(vec![n.to_string()]),
            Some(v) => Err(bad(format!(
                "Invalid value {v} for parameter '{name}' supplied: expected a list of strings"
            ))),
        }
    }

    /// A list of objects (`tags`, `params`, `metrics`, `datasets`).
    pub fn objects(&self, name: &str) -> Result<Vec<Map<String, Json>>, ApiError> {
        match self.field(name) {
            None => Ok(Vec::new()),
            Some(Json::Array(a)) => a
                .iter()
                .map(|v| match v {
                    Json::Object(o) => Ok(o.clone()),
                    other => Err(bad(format!(
                        "Invalid value {other} in '{name}': expected objects"
                    ))),
                })
                .collect(),
            Some(v) => Err(bad(format!(
                "Invalid value {v} for parameter '{name}' supplied: expected a list of objects"
            ))),
        }
    }

    /// A list of `{key, value}` objects.
    pub fn key_values(&self, name: &str) -> Result<Vec<(String, String)>, ApiError> {
        self.objects(name)?
            .into_iter()
            .map(|o| {
                let sub = Req(o);
                Ok((
                    sub.str("key").map_err(|e| within(name, e))?,
                    sub.opt_str("value")
                        .map_err(|e| within(name, e))?
                        .unwrap_or_default(),
                ))
            })
            .collect()
    }

    /// The run a request names: `run_id`, or the older `run_uuid`.
    pub fn run_id(&self) -> Result<String, ApiError> {
        match self.opt_str("run_id")? {
            Some(r) if !r.is_empty() => Ok(r),
            _ => self
                .opt_str("run_uuid")?
                .filter(|r| !r.is_empty())
                .ok_or_else(|| bad("Missing value for required parameter 'run_id'.")),
        }
    }
}

fn within(list: &str, e: ApiError) -> ApiError {
    bad(format!("in '{list}': {}", e.message))
}

/// An answer of `{}` or an object, as the client expects.
pub(crate) fn ok(v: Json) -> Response {
    (StatusCode::OK, axum::Json(v)).into_response()
}

pub(crate) fn empty() -> Response {
    ok(json!({}))
}

pub(crate) type Answer = Result<Response, ApiError>;

/// Every tracking and registry route, under `/api/` and `/ajax-api/`, plus `/health`,
/// `/version` and the server-info route.
pub fn router(state: Shared) -> Router {
    let mut api: Router<Shared> = Router::new();
    for (path, _, route) in routes() {
        api = api.route(path, route);
    }
    let mut api = api.layer(axum::extract::DefaultBodyLimit::max(state.body_limit));
    if let Some(limit) = state.request_timeout {
        api = api.layer(axum::middleware::from_fn_with_state(
            crate::observe::Deadline {
                limit,
                style: |_| Style::Mlflow,
            },
            crate::observe::deadline,
        ));
    }
    let files = artifacts::routes();
    let app = Router::new()
        .nest("/api", api.clone().merge(files.clone()))
        .nest("/ajax-api", api.merge(files))
        .route("/health", get(|| async { "OK" }))
        .route("/version", get(|| async { env!("CARGO_PKG_VERSION") }))
        .route("/openapi.json", get(|| async { axum::Json(openapi()) }))
        .merge(crate::ui::routes(crate::ui::Mode::Tracking))
        .fallback(not_found);
    let app = match &state.auth {
        Some(tokens) => app.layer(axum::middleware::from_fn_with_state(
            crate::auth::Guard {
                tokens: tokens.clone(),
                policy: crate::auth::tracking_policy,
                style: |_| Style::Mlflow,
            },
            crate::auth::require,
        )),
        None => app,
    };
    app.layer(crate::observe::catch_panics(Style::Mlflow, None))
        .layer(axum::middleware::from_fn(crate::observe::access_log))
        .with_state(state)
}

/// Serves the tracking API on `listener` until `shutdown` completes; requests in flight finish.
pub async fn run<L>(
    listener: L,
    state: Shared,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()>
where
    L: axum::serve::Listener,
{
    crate::listen::serve(listener, router(state), shutdown).await
}

/// The OpenAPI description of the tracking server: every route under `/api` (the same answer
/// under `/ajax-api`) with its methods, MLflow's error shape and the health routes. Request and
/// answer bodies are JSON objects as MLflow's REST API documents them.
pub fn openapi() -> Json {
    let error = json!({"description": "the client's mistake (INVALID_PARAMETER_VALUE, RESOURCE_ALREADY_EXISTS) or an unknown thing (RESOURCE_DOES_NOT_EXIST)", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/MlflowError"}}}});
    let mut paths = serde_json::Map::new();
    let all = routes()
        .into_iter()
        .map(|(p, m, _)| (p, m))
        .chain(artifacts::documented().iter().copied());
    for (path, methods) in all {
        let mut ops = serde_json::Map::new();
        let params: Vec<Json> = path
            .split('/')
            .filter_map(|seg| seg.strip_prefix('{').and_then(|x| x.strip_suffix('}')))
            .map(|name| {
                json!({"name": name.trim_start_matches('*'), "in": "path", "required": true, "schema": {"type": "string"}})
            })
            .collect();
        for method in methods {
            let m = method.to_ascii_lowercase();
            let mut op = json!({
                "operationId": format!("{m}{}", path.replace(['/', '-', '.', '{', '}', '*'], "_")),
                "summary": path.trim_start_matches("/2.0/").trim_start_matches("/3.0/"),
                "responses": {
                    "200": {"description": "done", "content": {"application/json": {"schema": {"type": "object"}}}},
                    "400": error,
                    "404": error,
                },
            });
            if !params.is_empty() {
                op["parameters"] = Json::Array(params.clone());
            }
            if path.starts_with("/2.0/mlflow-artifacts/artifacts/") {
                // An artifact's bytes, as they are, both ways.
                let bytes = json!({"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}});
                if m == "get" {
                    op["responses"]["200"] = json!({"description": "the file", "content": bytes});
                } else if m == "put" {
                    // An empty file is a file: the body may be empty.
                    op["requestBody"] = json!({"required": false, "content": bytes});
                    op["responses"]["200"] =
                        json!({"description": "stored (an empty body, as MLflow's)"});
                }
            } else if m != "get" && m != "delete" || path.ends_with("/alias") {
                op["requestBody"] =
                    json!({"content": {"application/json": {"schema": {"type": "object"}}}});
            }
            ops.insert(m, op);
        }
        // OpenAPI writes a catch-all segment as a plain parameter.
        paths.insert(
            format!("/api{}", path.replace("{*", "{")),
            Json::Object(ops),
        );
    }
    for p in ["/health", "/version"] {
        paths.insert(
            p.into(),
            json!({"get": {"operationId": p.trim_start_matches('/'), "responses": {"200": {"description": "up", "content": {"text/plain": {"schema": {"type": "string"}}}}}}}),
        );
    }
    json!({
        "openapi": "3.1.0",
        "info": {"title": "mlship server: MLflow's tracking and registry REST API", "version": env!("CARGO_PKG_VERSION")},
        "paths": paths,
        "components": {"schemas": {"MlflowError": {"type": "object", "properties": {"error_code": {"type": "string"}, "message": {"type": "string"}}, "required": ["error_code", "message"]}}},
    })
}

async fn not_found(method: Method, uri: axum::http::Uri) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "ENDPOINT_NOT_FOUND",
        format!("no endpoint {method} {}", uri.path()),
        Style::Mlflow,
    )
}

async fn server_info(State(s): State<Shared>) -> Response {
    ok(json!({
        "store_type": "SqlStore",
        "tracking_store": if s.store.db().dialect() == mlship_registry::db::Dialect::Postgres { "postgresql" } else { "sqlite" },
        "multipart_uploads_enabled": false,
        "multipart_downloads_enabled": false,
        "workspaces_enabled": false,
        "server": "mlship",
        "version": env!("CARGO_PKG_VERSION"),
    }))
}

/// Every JSON route: its path under `/api` and `/ajax-api`, the methods it takes (for
/// `/openapi.json`; a test sends each and checks the router takes it), and its handlers.
fn routes() -> Vec<(&'static str, &'static [&'static str], MethodRouter<Shared>)> {
    use axum::routing::{delete, patch, post};
    vec![
        ("/3.0/mlflow/server-info", &["GET"], get(server_info)),
        // experiments
        (
            "/2.0/mlflow/experiments/create",
            &["POST"],
            post(runs::create_experiment),
        ),
        (
            "/2.0/mlflow/experiments/get",
            &["GET"],
            get(runs::get_experiment),
        ),
        (
            "/2.0/mlflow/experiments/get-by-name",
            &["GET"],
            get(runs::get_experiment_by_name),
        ),
        (
            "/2.0/mlflow/experiments/search",
            &["GET", "POST"],
            get(runs::search_experiments).post(runs::search_experiments),
        ),
        (
            "/2.0/mlflow/experiments/update",
            &["POST"],
            post(runs::update_experiment),
        ),
        (
            "/2.0/mlflow/experiments/delete",
            &["POST"],
            post(runs::delete_experiment),
        ),
        (
            "/2.0/mlflow/experiments/restore",
            &["POST"],
            post(runs::restore_experiment),
        ),
        (
            "/2.0/mlflow/experiments/set-experiment-tag",
            &["POST"],
            post(runs::set_experiment_tag),
        ),
        (
            "/2.0/mlflow/experiments/delete-experiment-tag",
            &["POST"],
            post(runs::delete_experiment_tag),
        ),
        // runs
        ("/2.0/mlflow/runs/create", &["POST"], post(runs::create_run)),
        ("/2.0/mlflow/runs/get", &["GET"], get(runs::get_run)),
        ("/2.0/mlflow/runs/update", &["POST"], post(runs::update_run)),
        ("/2.0/mlflow/runs/delete", &["POST"], post(runs::delete_run)),
        (
            "/2.0/mlflow/runs/restore",
            &["POST"],
            post(runs::restore_run),
        ),
        (
            "/2.0/mlflow/runs/search",
            &["POST", "GET"],
            post(runs::search_runs).get(runs::search_runs),
        ),
        (
            "/2.0/mlflow/runs/log-batch",
            &["POST"],
            post(runs::log_batch),
        ),
        (
            "/2.0/mlflow/runs/log-metric",
            &["POST"],
            post(runs::log_metric),
        ),
        (
            "/2.0/mlflow/runs/log-parameter",
            &["POST"],
            post(runs::log_param),
        ),
        ("/2.0/mlflow/runs/set-tag", &["POST"], post(runs::set_tag)),
        (
            "/2.0/mlflow/runs/delete-tag",
            &["POST"],
            post(runs::delete_tag),
        ),
        (
            "/2.0/mlflow/runs/log-inputs",
            &["POST"],
            post(runs::log_inputs),
        ),
        (
            "/2.0/mlflow/runs/outputs",
            &["POST"],
            post(runs::log_outputs),
        ),
        (
            "/2.0/mlflow/metrics/get-history",
            &["GET"],
            get(runs::metric_history),
        ),
        (
            "/2.0/mlflow/artifacts/list",
            &["GET"],
            get(artifacts::list_run_artifacts),
        ),
        // logged models
        (
            "/2.0/mlflow/logged-models",
            &["POST"],
            post(runs::create_logged_model),
        ),
        (
            "/2.0/mlflow/logged-models/search",
            &["POST"],
            post(runs::search_logged_models),
        ),
        (
            "/2.0/mlflow/logged-models/{model_id}",
            &["GET", "PATCH", "DELETE"],
            get(runs::get_logged_model)
                .patch(runs::finalize_logged_model)
                .delete(runs::delete_logged_model),
        ),
        (
            "/2.0/mlflow/logged-models/{model_id}/tags",
            &["PATCH"],
            patch(runs::set_logged_model_tags),
        ),
        (
            "/2.0/mlflow/logged-models/{model_id}/tags/{key}",
            &["DELETE"],
            delete(runs::delete_logged_model_tag),
        ),
        (
            "/2.0/mlflow/logged-models/{model_id}/params",
            &["POST"],
            post(runs::log_logged_model_params),
        ),
        // registry
        (
            "/2.0/mlflow/registered-models/create",
            &["POST"],
            post(models::create_model),
        ),
        (
            "/2.0/mlflow/registered-models/get",
            &["GET"],
            get(models::get_model),
        ),
        (
            "/2.0/mlflow/registered-models/search",
            &["GET", "POST"],
            get(models::search_models).post(models::search_models),
        ),
        (
            "/2.0/mlflow/registered-models/list",
            &["GET"],
            get(models::search_models),
        ),
        (
            "/2.0/mlflow/registered-models/update",
            &["PATCH"],
            patch(models::update_model),
        ),
        (
            "/2.0/mlflow/registered-models/rename",
            &["POST"],
            post(models::rename_model),
        ),
        (
            "/2.0/mlflow/registered-models/delete",
            &["DELETE"],
            delete(models::delete_model),
        ),
        (
            "/2.0/mlflow/registered-models/set-tag",
            &["POST"],
            post(models::set_model_tag),
        ),
        (
            "/2.0/mlflow/registered-models/delete-tag",
            &["DELETE"],
            delete(models::delete_model_tag),
        ),
        (
            "/2.0/mlflow/registered-models/alias",
            &["GET", "POST", "DELETE"],
            get(models::get_alias)
                .post(models::set_alias)
                .delete(models::delete_alias),
        ),
        (
            "/2.0/mlflow/registered-models/get-latest-versions",
            &["GET", "POST"],
            get(models::latest_versions).post(models::latest_versions),
        ),
        (
            "/2.0/mlflow/model-versions/create",
            &["POST"],
            post(models::create_version),
        ),
        (
            "/2.0/mlflow/model-versions/get",
            &["GET"],
            get(models::get_version),
        ),
        (
            "/2.0/mlflow/model-versions/search",
            &["GET", "POST"],
            get(models::search_versions).post(models::search_versions),
        ),
        (
            "/2.0/mlflow/model-versions/update",
            &["PATCH"],
            patch(models::update_version),
        ),
        (
            "/2.0/mlflow/model-versions/delete",
            &["DELETE"],
            delete(models::delete_version),
        ),
        (
            "/2.0/mlflow/model-versions/set-tag",
            &["POST"],
            post(models::set_version_tag),
        ),
        (
            "/2.0/mlflow/model-versions/delete-tag",
            &["DELETE"],
            delete(models::delete_version_tag),
        ),
        (
            "/2.0/mlflow/model-versions/get-download-uri",
            &["GET"],
            get(models::download_uri),
        ),
        (
            "/2.0/mlflow/model-versions/transition-stage",
            &["POST"],
            post(models::transition_stage),
        ),
        // mlship's own
        (
            "/2.0/mlship/experiments/activity",
            &["GET"],
            get(mlship_api::experiment_activity),
        ),
        (
            "/2.0/mlship/registered-models/alias-history",
            &["GET"],
            get(mlship_api::alias_history),
        ),
        (
            "/2.0/mlship/registered-models/rollback",
            &["POST"],
            post(mlship_api::rollback),
        ),
        (
            "/2.0/mlship/model-versions/get",
            &["GET"],
            get(mlship_api::get_version),
        ),
        (
            "/2.0/mlship/model-versions/form",
            &["GET"],
            get(mlship_api::form),
        ),
        (
            "/2.0/mlship/model-versions/predict",
            &["POST"],
            post(mlship_api::predict),
        ),
    ]
}

/// Who made a registry write through the MLflow API, for the alias history: the token's name
/// when authentication is on, else the web UI (it says so in a header) or the API and the client
/// that called it.
pub(crate) struct Who(pub String);

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for Who {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        _: &S,
    ) -> Result<Self, Self::Rejection> {
        if let Some(c) = parts.extensions.get::<crate::auth::Caller>() {
            return Ok(Who(c.name.clone()));
        }
        if parts
            .headers
            .get("x-mlship-client")
            .is_some_and(|v| v == "web-ui")
        {
            return Ok(Who("web UI".into()));
        }
        let agent = parts
            .headers
            .get(axum::http::header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("unknown client");
        Ok(Who(format!(
            "mlflow-api ({})",
            agent.chars().take(80).collect::<String>()
        )))
    }
}
