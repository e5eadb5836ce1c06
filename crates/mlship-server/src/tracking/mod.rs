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
mod fields;
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
use fields::Field;

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
        // MLflow's code for an unknown alias, which the client raises and code may match on;
        // the status says it is not there.
        E::UnknownAlias { .. } => (StatusCode::NOT_FOUND, "INVALID_PARAMETER_VALUE"),
        // MLflow answers 400 for a name that is taken; 409 says what happened, and the client
        // reads the code, not the status.
        E::AlreadyExists(_) => (StatusCode::CONFLICT, "RESOURCE_ALREADY_EXISTS"),
        // MLflow codes these INVALID_PARAMETER_VALUE (and code that catches them reads the
        // code); the status says it is the stored state, not the request's shape, that refuses.
        E::Conflict(_) | E::VersionInUse { .. } | E::NothingToRollBack { .. } => {
            (StatusCode::CONFLICT, "INVALID_PARAMETER_VALUE")
        }
        E::Invalid(_) | E::InvalidName { .. } | E::BadReference(_) => {
            (StatusCode::BAD_REQUEST, "INVALID_PARAMETER_VALUE")
        }
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
        let fields = route_fields(&req);
        if req.method() == Method::GET {
            let Query(pairs): Query<Vec<(String, String)>> = Query::try_from_uri(req.uri())
                .map_err(|e| bad(format!("invalid query string: {e}")))?;
            return fields::check_query(fields, pairs).map(Req);
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
        let m = if bytes.iter().all(u8::is_ascii_whitespace) {
            Map::new()
        } else {
            match serde_json::from_slice::<Json>(&bytes) {
                Ok(Json::Object(m)) => m,
                Ok(_) => return Err(bad("the request body must be a JSON object")),
                Err(e) => return Err(bad(format!("malformed JSON in the request body: {e}"))),
            }
        };
        fields::check_body(fields, &m)?;
        Ok(Req(m))
    }
}

/// The fields of the route and method a request was routed to (none for a route the table
/// does not list).
fn route_fields(req: &Request) -> &'static [Field] {
    type Table = std::collections::HashMap<(&'static str, &'static str), &'static [Field]>;
    static TABLE: std::sync::OnceLock<Table> = std::sync::OnceLock::new();
    let table = TABLE.get_or_init(|| {
        routes()
            .into_iter()
            .flat_map(|(path, ops, _)| ops.iter().map(move |(m, f)| ((path, *m), *f)))
            .chain(
                artifacts::documented()
                    .iter()
                    .flat_map(|(path, ops)| ops.iter().map(move |(m, f)| ((*path, *m), *f))),
            )
            .collect()
    });
    let Some(matched) = req.extensions().get::<axum::extract::MatchedPath>() else {
        return &[];
    };
    let path = matched.as_str();
    let path = path
        .strip_prefix("/api")
        .or_else(|| path.strip_prefix("/ajax-api"))
        .unwrap_or(path);
    table
        .get(&(path, req.method().as_str()))
        .copied()
        .unwrap_or(&[])
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
                    other => Err(bad(format!(
                        "Invalid value {other} in '{name}': expected strings"
                    ))),
                })
                .collect(),
            Some(Json::String(s)) => Ok(vec![s.clone()]),
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
    let error = |what: &str| json!({"description": what, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/MlflowError"}}}});
    let mut paths = serde_json::Map::new();
    let all = routes()
        .into_iter()
        .map(|(p, ops, _)| (p, ops))
        .chain(artifacts::documented().iter().copied());
    for (path, methods) in all {
        let mut ops = serde_json::Map::new();
        let params: Vec<Json> = path
            .split('/')
            .filter_map(|seg| seg.strip_prefix('{').and_then(|x| x.strip_suffix('}')))
            .map(|name| match name.strip_prefix('*') {
                // A catch-all is an artifact's path.
                Some(name) => json!({"name": name, "in": "path", "required": true, "example": "1/0123abcd/artifacts/model/MLmodel", "schema": fields::Ty::Pat(&fields::ARTIFACT_PATH).schema(true)}),
                None => json!({"name": name, "in": "path", "required": true, "schema": {"type": "string"}}),
            })
            .collect();
        for (method, request) in methods.iter() {
            let m = method.to_ascii_lowercase();
            let mut op = json!({
                "operationId": format!("{m}{}", path.replace(['/', '-', '.', '{', '}', '*'], "_")),
                "summary": path.trim_start_matches("/2.0/").trim_start_matches("/3.0/"),
                "responses": {
                    "200": {"description": "done", "content": {"application/json": {"schema": {"type": "object"}}}},
                    "400": error("the client's mistake (INVALID_PARAMETER_VALUE): the message names the field"),
                    "404": error("an unknown experiment, run, model, version or file (RESOURCE_DOES_NOT_EXIST)"),
                    "409": error("the request conflicts with what is stored: a name taken (RESOURCE_ALREADY_EXISTS), a param already logged with another value or an object in the wrong state (INVALID_PARAMETER_VALUE, as MLflow codes it)"),
                },
            });
            if !params.is_empty() {
                op["parameters"] = Json::Array(params.clone());
            }
            if path.starts_with("/2.0/mlflow-artifacts/artifacts/") {
                // An artifact's bytes, as they are, both ways.
                let bytes = json!({"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}});
                if m == "get" {
                    // Typed by the file's extension, as MLflow's server types it.
                    op["responses"]["200"] = json!({"description": "the file", "content": {"*/*": {"schema": {"type": "string", "format": "binary"}}}});
                } else if m == "put" {
                    // An empty file is a file: the body may be empty.
                    op["requestBody"] = json!({"required": false, "content": bytes});
                    op["responses"]["200"] =
                        json!({"description": "stored (an empty body, as MLflow's)"});
                }
            } else if m != "delete" || !request.is_empty() {
                fields::document(&mut op, method, request);
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

/// One method of a route and its request's fields.
pub(crate) type Op = (&'static str, &'static [Field]);

/// Every JSON route: its path under `/api` and `/ajax-api`, its methods with their fields (for
/// `/openapi.json` and the check before each handler; a test sends each method and checks the
/// router takes it), and its handlers.
#[allow(clippy::type_complexity)]
fn routes() -> Vec<(&'static str, &'static [Op], MethodRouter<Shared>)> {
    use axum::routing::{delete, patch, post};
    use fields::{
        ALIAS, EXPERIMENT_NAME, METRIC, NAME, PAGE, PARAMS, REGISTRY_TAGS, RUN_ID, RUN_UUID, STAGE,
        TAGS, Ty, VERSION_FIELD, VIEW, opt, req,
    };
    const EXP: Field = req!("experiment_id", Ty::Text);
    const RUN: &[Field] = &[RUN_ID, RUN_UUID];
    const RUN_KEY: &[Field] = &[RUN_ID, RUN_UUID, req!("key", Ty::Pat(&fields::KEY))];
    const RUN_TAG: &[Field] = &[
        RUN_ID,
        RUN_UUID,
        req!("key", Ty::Pat(&fields::KEY)),
        opt!("value", Ty::Short(8000)),
    ];
    const EXPERIMENTS_SEARCH: &[Field] = &[
        opt!("max_results", Ty::Count(1, 50_000)),
        PAGE,
        opt!("filter", Ty::Format("mlflow-experiment-filter")),
        opt!("order_by", Ty::List(&Ty::Clause("mlflow-experiment-order"))),
        opt!("view_type", Ty::OneOf(VIEW)),
    ];
    const RUNS_SEARCH: &[Field] = &[
        opt!("experiment_ids", Ty::List(&Ty::Text)),
        opt!("filter", Ty::Format("mlflow-run-filter")),
        opt!("run_view_type", Ty::OneOf(VIEW)),
        opt!("max_results", Ty::Count(1, 50_000)),
        opt!("order_by", Ty::List(&Ty::Clause("mlflow-run-order"))),
        PAGE,
    ];
    const MODELS_SEARCH: &[Field] = &[
        opt!("filter", Ty::Format("mlflow-registered-model-filter")),
        opt!("max_results", Ty::Count(1, 1000)),
        opt!(
            "order_by",
            Ty::List(&Ty::Clause("mlflow-registered-model-order")),
        ),
        PAGE,
    ];
    const VERSIONS_SEARCH: &[Field] = &[
        opt!("filter", Ty::Format("mlflow-model-version-filter")),
        opt!("max_results", Ty::Count(1, 200_000)),
        opt!("order_by", Ty::List(&Ty::Text)),
        PAGE,
    ];
    const MODEL: &[Field] = &[NAME];
    const VERSION: &[Field] = &[NAME, VERSION_FIELD];
    const MODEL_TAG: &[Field] = &[NAME, req!("key", Ty::Pat(&fields::KEY))];
    const VERSION_TAG: &[Field] = &[NAME, VERSION_FIELD, req!("key", Ty::Pat(&fields::KEY))];
    const ALIAS_OF: &[Field] = &[NAME, req!("alias", Ty::Pat(&ALIAS))];
    const LATEST: &[Field] = &[NAME, opt!("stages", Ty::List(&Ty::Pat(&STAGE)))];
    const DATASET: &[Field] = &[
        req!("name", Ty::Pat(&fields::NON_EMPTY)),
        req!("digest", Ty::Pat(&fields::NON_EMPTY)),
        opt!("source_type", Ty::Text),
        opt!("source", Ty::Text),
        opt!("schema", Ty::Text),
        opt!("profile", Ty::Text),
    ];
    const DATASET_INPUT: &[Field] = &[TAGS, req!("dataset", Ty::Object(DATASET))];
    const MODEL_OUTPUT: &[Field] = &[req!("model_id", Ty::Text), opt!("step", Ty::Long)];
    const NONE: &[Field] = &[];
    vec![
        (
            "/3.0/mlflow/server-info",
            &[("GET", NONE)],
            get(server_info),
        ),
        // experiments
        (
            "/2.0/mlflow/experiments/create",
            &[(
                "POST",
                &[
                    req!("name", Ty::Pat(&EXPERIMENT_NAME)),
                    opt!("artifact_location", Ty::Text),
                    TAGS,
                ],
            )],
            post(runs::create_experiment),
        ),
        (
            "/2.0/mlflow/experiments/get",
            &[("GET", &[EXP])],
            get(runs::get_experiment),
        ),
        (
            "/2.0/mlflow/experiments/get-by-name",
            &[("GET", &[req!("experiment_name", Ty::Text)])],
            get(runs::get_experiment_by_name),
        ),
        (
            "/2.0/mlflow/experiments/search",
            &[("GET", EXPERIMENTS_SEARCH), ("POST", EXPERIMENTS_SEARCH)],
            get(runs::search_experiments).post(runs::search_experiments),
        ),
        (
            "/2.0/mlflow/experiments/update",
            &[("POST", &[EXP, req!("new_name", Ty::Pat(&EXPERIMENT_NAME))])],
            post(runs::update_experiment),
        ),
        (
            "/2.0/mlflow/experiments/delete",
            &[("POST", &[EXP])],
            post(runs::delete_experiment),
        ),
        (
            "/2.0/mlflow/experiments/restore",
            &[("POST", &[EXP])],
            post(runs::restore_experiment),
        ),
        (
            "/2.0/mlflow/experiments/set-experiment-tag",
            &[(
                "POST",
                &[
                    EXP,
                    req!("key", Ty::Pat(&fields::KEY)),
                    opt!("value", Ty::Short(8000)),
                ],
            )],
            post(runs::set_experiment_tag),
        ),
        (
            "/2.0/mlflow/experiments/delete-experiment-tag",
            &[("POST", &[EXP, req!("key", Ty::Pat(&fields::KEY))])],
            post(runs::delete_experiment_tag),
        ),
        // runs
        (
            "/2.0/mlflow/runs/create",
            &[(
                "POST",
                &[
                    opt!("experiment_id", Ty::Text),
                    opt!("user_id", Ty::Text),
                    opt!("run_name", Ty::Short(8000)),
                    opt!("start_time", Ty::Long),
                    TAGS,
                ],
            )],
            post(runs::create_run),
        ),
        ("/2.0/mlflow/runs/get", &[("GET", RUN)], get(runs::get_run)),
        (
            "/2.0/mlflow/runs/update",
            &[(
                "POST",
                &[
                    RUN_ID,
                    RUN_UUID,
                    opt!(
                        "status",
                        Ty::OneOf(&["RUNNING", "SCHEDULED", "FINISHED", "FAILED", "KILLED"]),
                    ),
                    opt!("end_time", Ty::Long),
                    opt!("run_name", Ty::Short(8000)),
                ],
            )],
            post(runs::update_run),
        ),
        (
            "/2.0/mlflow/runs/delete",
            &[("POST", RUN)],
            post(runs::delete_run),
        ),
        (
            "/2.0/mlflow/runs/restore",
            &[("POST", RUN)],
            post(runs::restore_run),
        ),
        (
            "/2.0/mlflow/runs/search",
            &[("POST", RUNS_SEARCH), ("GET", RUNS_SEARCH)],
            post(runs::search_runs).get(runs::search_runs),
        ),
        (
            "/2.0/mlflow/runs/log-batch",
            &[(
                "POST",
                &[
                    RUN_ID,
                    RUN_UUID,
                    opt!("metrics", Ty::Objects(METRIC, Some(1000))),
                    opt!("params", Ty::Objects(fields::PARAM, Some(100))),
                    opt!("tags", Ty::Objects(fields::TAG, Some(100))),
                ],
            )],
            post(runs::log_batch),
        ),
        (
            "/2.0/mlflow/runs/log-metric",
            &[("POST", fields::LOG_METRIC)],
            post(runs::log_metric),
        ),
        (
            "/2.0/mlflow/runs/log-parameter",
            &[(
                "POST",
                &[
                    RUN_ID,
                    RUN_UUID,
                    req!("key", Ty::Pat(&fields::KEY)),
                    opt!("value", Ty::Short(6000)),
                ],
            )],
            post(runs::log_param),
        ),
        (
            "/2.0/mlflow/runs/set-tag",
            &[("POST", RUN_TAG)],
            post(runs::set_tag),
        ),
        (
            "/2.0/mlflow/runs/delete-tag",
            &[("POST", RUN_KEY)],
            post(runs::delete_tag),
        ),
        (
            "/2.0/mlflow/runs/log-inputs",
            &[(
                "POST",
                &[
                    RUN_ID,
                    RUN_UUID,
                    opt!("datasets", Ty::Objects(DATASET_INPUT, None)),
                ],
            )],
            post(runs::log_inputs),
        ),
        (
            "/2.0/mlflow/runs/outputs",
            &[(
                "POST",
                &[
                    RUN_ID,
                    RUN_UUID,
                    opt!("models", Ty::Objects(MODEL_OUTPUT, None)),
                ],
            )],
            post(runs::log_outputs),
        ),
        (
            "/2.0/mlflow/metrics/get-history",
            &[(
                "GET",
                &[
                    RUN_ID,
                    RUN_UUID,
                    req!("metric_key", Ty::Text),
                    // Pages hold at most 25,000 points, however many are asked for.
                    opt!("max_results", Ty::Count(1, i32::MAX as i64)),
                    PAGE,
                ],
            )],
            get(runs::metric_history),
        ),
        (
            "/2.0/mlflow/artifacts/list",
            &[(
                "GET",
                &[
                    RUN_ID,
                    RUN_UUID,
                    opt!("path", Ty::Pat(&fields::ARTIFACT_DIR)),
                    PAGE,
                ],
            )],
            get(artifacts::list_run_artifacts),
        ),
        // logged models
        (
            "/2.0/mlflow/logged-models",
            &[(
                "POST",
                &[
                    EXP,
                    opt!("name", Ty::Text),
                    opt!("model_type", Ty::Text),
                    opt!("source_run_id", Ty::Text),
                    PARAMS,
                    TAGS,
                ],
            )],
            post(runs::create_logged_model),
        ),
        (
            "/2.0/mlflow/logged-models/search",
            &[(
                "POST",
                &[
                    opt!("experiment_ids", Ty::List(&Ty::Text)),
                    opt!("filter", Ty::Format("mlflow-logged-model-filter")),
                    opt!("max_results", Ty::Count(1, 10_000)),
                    PAGE,
                ],
            )],
            post(runs::search_logged_models),
        ),
        (
            "/2.0/mlflow/logged-models/{model_id}",
            &[
                ("GET", NONE),
                (
                    "PATCH",
                    &[req!(
                        "status",
                        Ty::OneOf(&[
                            "LOGGED_MODEL_READY",
                            "LOGGED_MODEL_UPLOAD_FAILED",
                            "LOGGED_MODEL_PENDING",
                        ]),
                    )],
                ),
                ("DELETE", NONE),
            ],
            get(runs::get_logged_model)
                .patch(runs::finalize_logged_model)
                .delete(runs::delete_logged_model),
        ),
        (
            "/2.0/mlflow/logged-models/{model_id}/tags",
            &[("PATCH", &[TAGS])],
            patch(runs::set_logged_model_tags),
        ),
        (
            "/2.0/mlflow/logged-models/{model_id}/tags/{key}",
            &[("DELETE", NONE)],
            delete(runs::delete_logged_model_tag),
        ),
        (
            "/2.0/mlflow/logged-models/{model_id}/params",
            &[("POST", &[PARAMS])],
            post(runs::log_logged_model_params),
        ),
        // registry
        (
            "/2.0/mlflow/registered-models/create",
            &[(
                "POST",
                &[NAME, opt!("description", Ty::Text), REGISTRY_TAGS],
            )],
            post(models::create_model),
        ),
        (
            "/2.0/mlflow/registered-models/get",
            &[("GET", MODEL)],
            get(models::get_model),
        ),
        (
            "/2.0/mlflow/registered-models/search",
            &[("GET", MODELS_SEARCH), ("POST", MODELS_SEARCH)],
            get(models::search_models).post(models::search_models),
        ),
        (
            "/2.0/mlflow/registered-models/list",
            &[("GET", MODELS_SEARCH)],
            get(models::search_models),
        ),
        (
            "/2.0/mlflow/registered-models/update",
            &[("PATCH", &[NAME, opt!("description", Ty::Text)])],
            patch(models::update_model),
        ),
        (
            "/2.0/mlflow/registered-models/rename",
            &[(
                "POST",
                &[NAME, req!("new_name", Ty::Pat(&fields::MODEL_NAME))],
            )],
            post(models::rename_model),
        ),
        (
            "/2.0/mlflow/registered-models/delete",
            &[("DELETE", MODEL)],
            delete(models::delete_model),
        ),
        (
            "/2.0/mlflow/registered-models/set-tag",
            &[(
                "POST",
                &[
                    NAME,
                    req!("key", Ty::Pat(&fields::KEY)),
                    opt!("value", Ty::Short(8000)),
                ],
            )],
            post(models::set_model_tag),
        ),
        (
            "/2.0/mlflow/registered-models/delete-tag",
            &[("DELETE", MODEL_TAG)],
            delete(models::delete_model_tag),
        ),
        (
            "/2.0/mlflow/registered-models/alias",
            &[
                ("GET", ALIAS_OF),
                (
                    "POST",
                    &[NAME, req!("alias", Ty::Pat(&ALIAS)), VERSION_FIELD],
                ),
                ("DELETE", ALIAS_OF),
            ],
            get(models::get_alias)
                .post(models::set_alias)
                .delete(models::delete_alias),
        ),
        (
            "/2.0/mlflow/registered-models/get-latest-versions",
            &[("GET", LATEST), ("POST", LATEST)],
            get(models::latest_versions).post(models::latest_versions),
        ),
        (
            "/2.0/mlflow/model-versions/create",
            &[(
                "POST",
                &[
                    NAME,
                    req!("source", Ty::Text),
                    opt!("run_id", Ty::Text),
                    opt!("model_id", Ty::Text),
                    opt!("run_link", Ty::Text),
                    opt!("description", Ty::Text),
                    REGISTRY_TAGS,
                ],
            )],
            post(models::create_version),
        ),
        (
            "/2.0/mlflow/model-versions/get",
            &[("GET", VERSION)],
            get(models::get_version),
        ),
        (
            "/2.0/mlflow/model-versions/search",
            &[("GET", VERSIONS_SEARCH), ("POST", VERSIONS_SEARCH)],
            get(models::search_versions).post(models::search_versions),
        ),
        (
            "/2.0/mlflow/model-versions/update",
            &[(
                "PATCH",
                &[NAME, VERSION_FIELD, opt!("description", Ty::Text)],
            )],
            patch(models::update_version),
        ),
        (
            "/2.0/mlflow/model-versions/delete",
            &[("DELETE", VERSION)],
            delete(models::delete_version),
        ),
        (
            "/2.0/mlflow/model-versions/set-tag",
            &[(
                "POST",
                &[
                    NAME,
                    VERSION_FIELD,
                    req!("key", Ty::Pat(&fields::KEY)),
                    opt!("value", Ty::Short(8000)),
                ],
            )],
            post(models::set_version_tag),
        ),
        (
            "/2.0/mlflow/model-versions/delete-tag",
            &[("DELETE", VERSION_TAG)],
            delete(models::delete_version_tag),
        ),
        (
            "/2.0/mlflow/model-versions/get-download-uri",
            &[("GET", VERSION)],
            get(models::download_uri),
        ),
        (
            "/2.0/mlflow/model-versions/transition-stage",
            &[(
                "POST",
                &[
                    NAME,
                    VERSION_FIELD,
                    req!("stage", Ty::Pat(&STAGE)),
                    opt!("archive_existing_versions", Ty::Bool),
                ],
            )],
            post(models::transition_stage),
        ),
        // mlship's own
        (
            "/2.0/mlship/experiments/activity",
            &[("GET", NONE)],
            get(mlship_api::experiment_activity),
        ),
        (
            "/2.0/mlship/registered-models/alias-history",
            &[("GET", MODEL)],
            get(mlship_api::alias_history),
        ),
        (
            "/2.0/mlship/registered-models/rollback",
            &[(
                "POST",
                &[
                    NAME,
                    req!("alias", Ty::Pat(&ALIAS)),
                    opt!("reason", Ty::Text),
                ],
            )],
            post(mlship_api::rollback),
        ),
        (
            "/2.0/mlship/model-versions/get",
            &[("GET", VERSION)],
            get(mlship_api::get_version),
        ),
        (
            "/2.0/mlship/model-versions/form",
            &[("GET", VERSION)],
            get(mlship_api::form),
        ),
        (
            "/2.0/mlship/model-versions/predict",
            &[("POST", VERSION)],
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
