//! Authentication and authorization for both servers: bearer tokens and HTTP basic (the `mlflow`
//! client's `MLFLOW_TRACKING_TOKEN`, and `MLFLOW_TRACKING_USERNAME`/`PASSWORD` as a token's name
//! and secret), checked against the registry's hashed tokens; a policy gives each request the
//! role it needs, and health probes need none.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use mlship_registry::{Role, SqlStore};
use sha2::{Digest, Sha256};

use crate::api::{ApiError, Style};

/// Who is calling: a token's name and role. Handlers read it from the request's extensions to
/// record who made a write.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Caller {
    pub name: String,
    pub role: Role,
}

/// The role a request needs (`None`: open to anyone, as health probes are).
pub type Policy = fn(&Method, &str) -> Option<Role>;

/// How long a token lookup is trusted: a revoked token stops working within this.
const CACHE_FOR: Duration = Duration::from_secs(5);

/// The tokens of one store, looked up by the sha256 of a secret, with a short cache so scoring
/// does not meet the database on every request.
pub struct Tokens {
    store: SqlStore,
    cache: Mutex<HashMap<String, (Option<Caller>, Instant)>>,
    /// Requests per second each token may make (0: no limit), and each token's bucket.
    rate: f64,
    buckets: Mutex<HashMap<String, (f64, Instant)>>,
}

impl std::fmt::Debug for Tokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tokens")
            .field("store", &self.store.describe())
            .finish_non_exhaustive()
    }
}

impl Tokens {
    pub fn new(store: SqlStore) -> Tokens {
        Tokens {
            store,
            cache: Mutex::new(HashMap::new()),
            rate: 0.0,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Limits each token to `per_second` requests a second, in bursts of as many (0: no limit).
    pub fn rate_limited(mut self, per_second: u32) -> Tokens {
        self.rate = f64::from(per_second);
        self
    }

    /// Takes one request from the token's bucket: false when it is empty.
    fn admit(&self, name: &str) -> bool {
        if self.rate <= 0.0 {
            return true;
        }
        let mut buckets = self
            .buckets
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let now = Instant::now();
        let (level, at) = buckets.entry(name.to_string()).or_insert((self.rate, now));
        *level = (*level + now.duration_since(*at).as_secs_f64() * self.rate).min(self.rate);
        *at = now;
        if *level >= 1.0 {
            *level -= 1.0;
            true
        } else {
            false
        }
    }

    async fn caller(self: &Arc<Self>, secret: &str) -> Result<Option<Caller>, ApiError> {
        let hash = sha256_hex(secret);
        if let Some((c, at)) = self.lock().get(&hash) {
            if at.elapsed() < CACHE_FOR {
                return Ok(c.clone());
            }
        }
        let me = self.clone();
        let h = hash.clone();
        let found = tokio::task::spawn_blocking(move || me.store.token_by_hash(&h))
            .await
            .map_err(|_| unavailable())?
            .map_err(|e| {
                tracing::error!(cause = %e, "cannot read the tokens");
                unavailable()
            })?
            .map(|t| Caller {
                name: t.name,
                role: t.role,
            });
        let mut cache = self.lock();
        if cache.len() > 10_000 {
            cache.clear();
        }
        cache.insert(hash, (found.clone(), Instant::now()));
        Ok(found)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, (Option<Caller>, Instant)>> {
        self.cache
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

fn unavailable() -> ApiError {
    ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "TEMPORARILY_UNAVAILABLE",
        "cannot check the credentials now; try again",
        Style::Error,
    )
}

/// The hex sha256 of a token's secret, as the registry stores it.
pub fn sha256_hex(secret: &str) -> String {
    Sha256::digest(secret.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// What [`require`] checks requests with.
#[derive(Clone)]
pub struct Guard {
    pub tokens: Arc<Tokens>,
    pub policy: Policy,
    /// The error shape of a route, by its path.
    pub style: fn(&str) -> Style,
}

/// The credentials a request carries: a bearer secret, or basic's name and secret.
enum Credential {
    Bearer(String),
    Basic(String, String),
}

fn credential(req: &Request) -> Option<Credential> {
    let value = req.headers().get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, rest) = value.split_once(' ')?;
    let rest = rest.trim();
    if scheme.eq_ignore_ascii_case("bearer") {
        return Some(Credential::Bearer(rest.to_string()));
    }
    if scheme.eq_ignore_ascii_case("basic") {
        use base64::Engine;
        let raw = base64::engine::general_purpose::STANDARD
            .decode(rest)
            .ok()?;
        let text = String::from_utf8(raw).ok()?;
        let (name, secret) = text.split_once(':')?;
        return Some(Credential::Basic(name.to_string(), secret.to_string()));
    }
    None
}

/// Middleware: answers 401 (with `WWW-Authenticate`) without valid credentials and 403 when the
/// token's role is below what the policy asks; otherwise puts the [`Caller`] in the request's
/// extensions and goes on.
pub async fn require(State(g): State<Guard>, mut req: Request, next: Next) -> Response {
    let path = req.uri().path().to_string();
    let Some(needed) = (g.policy)(req.method(), &path) else {
        return next.run(req).await;
    };
    let style = (g.style)(&path);
    let deny = |status: StatusCode, code: &'static str, message: String| {
        let mut r = ApiError::new(status, code, message, style).into_response();
        if status == StatusCode::UNAUTHORIZED {
            r.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"mlship\", Basic realm=\"mlship\""),
            );
        }
        r
    };
    let unauthenticated = |why: &str| {
        deny(
            StatusCode::UNAUTHORIZED,
            "UNAUTHENTICATED",
            format!(
                "{why}: send `Authorization: Bearer TOKEN` (MLFLOW_TRACKING_TOKEN), or basic authentication with the token's name and secret"
            ),
        )
    };
    let (secret, name) = match credential(&req) {
        Some(Credential::Bearer(s)) => (s, None),
        Some(Credential::Basic(n, s)) => (s, Some(n)),
        None => return unauthenticated("this server needs a token"),
    };
    let caller = match g.tokens.caller(&secret).await {
        Ok(Some(c)) if name.as_ref().is_none_or(|n| *n == c.name) => c,
        Ok(_) => {
            return unauthenticated(
                "the token is not valid (unknown, revoked or under another name)",
            );
        }
        Err(e) => return ApiError { style, ..e }.into_response(),
    };
    if caller.role < needed {
        return deny(
            StatusCode::FORBIDDEN,
            "PERMISSION_DENIED",
            format!(
                "the token `{}` has the role {}; {} {path} needs {}",
                caller.name,
                caller.role.name(),
                req.method(),
                needed.name()
            ),
        );
    }
    if !g.tokens.admit(&caller.name) {
        return ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "REQUEST_LIMIT_EXCEEDED",
            format!(
                "the token `{}` is over its limit of {} requests a second",
                caller.name, g.tokens.rate
            ),
            style,
        )
        .retry_after(1)
        .into_response();
    }
    req.extensions_mut().insert(caller);
    next.run(req).await
}

/// The model server's policy: health probes are open, everything else (scoring, metadata,
/// metrics, the documentation) needs `read`.
pub fn serving_policy(_: &Method, path: &str) -> Option<Role> {
    if is_page(path) {
        return None;
    }
    match path {
        "/ping" | "/health" | "/v2/health/live" | "/v2/health/ready" => None,
        _ => Some(Role::Read),
    }
}

/// The web UI's shell and files: they hold no data (the script calls the API with the user's
/// token), so a browser can load them before it has one.
fn is_page(path: &str) -> bool {
    path == "/" || path.starts_with("/ui/")
}

/// The tracking server's policy: `/health` and `/version` are open; reads (GET, and the searches
/// MLflow sends as POST) need `read`; deletes, alias moves and stage transitions need `admin`;
/// every other write needs `write`.
pub fn tracking_policy(method: &Method, path: &str) -> Option<Role> {
    if path == "/health" || path == "/version" || is_page(path) {
        return None;
    }
    if method == Method::GET || method == Method::HEAD {
        return Some(Role::Read);
    }
    if path.ends_with("/search")
        || path.ends_with("/get-latest-versions")
        || path.ends_with("/mlship/model-versions/predict")
    {
        return Some(Role::Read);
    }
    let tag_edit = path.ends_with("-tag") || path.contains("/tags/") || path.ends_with("/tags");
    if path.ends_with("/delete")
        || path.ends_with("/alias")
        || path.ends_with("/rollback")
        || path.ends_with("/transition-stage")
        || (method == Method::DELETE && !tag_edit)
    {
        return Some(Role::Admin);
    }
    Some(Role::Write)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tracking_policy_gives_each_route_its_role() {
        let p = |m: Method, path: &str| tracking_policy(&m, path);
        assert_eq!(p(Method::GET, "/health"), None);
        assert_eq!(p(Method::GET, "/api/2.0/mlflow/runs/get"), Some(Role::Read));
        assert_eq!(
            p(Method::POST, "/api/2.0/mlflow/runs/search"),
            Some(Role::Read)
        );
        assert_eq!(
            p(Method::POST, "/api/2.0/mlflow/runs/log-batch"),
            Some(Role::Write)
        );
        assert_eq!(
            p(Method::POST, "/ajax-api/2.0/mlflow/runs/delete-tag"),
            Some(Role::Write)
        );
        assert_eq!(
            p(Method::POST, "/api/2.0/mlflow/runs/delete"),
            Some(Role::Admin)
        );
        assert_eq!(
            p(Method::POST, "/api/2.0/mlflow/registered-models/alias"),
            Some(Role::Admin)
        );
        assert_eq!(
            p(Method::DELETE, "/api/2.0/mlflow/registered-models/alias"),
            Some(Role::Admin)
        );
        assert_eq!(
            p(
                Method::DELETE,
                "/api/2.0/mlflow/registered-models/delete-tag"
            ),
            Some(Role::Write)
        );
        assert_eq!(
            p(Method::DELETE, "/api/2.0/mlflow/logged-models/m-1/tags/k"),
            Some(Role::Write)
        );
        assert_eq!(
            p(Method::DELETE, "/api/2.0/mlflow/logged-models/m-1"),
            Some(Role::Admin)
        );
        assert_eq!(
            p(Method::DELETE, "/api/2.0/mlflow-artifacts/artifacts/0/x"),
            Some(Role::Admin)
        );
        assert_eq!(
            p(Method::PUT, "/api/2.0/mlflow-artifacts/artifacts/0/x"),
            Some(Role::Write)
        );
        assert_eq!(serving_policy(&Method::GET, "/v2/health/ready"), None);
        assert_eq!(
            serving_policy(&Method::POST, "/invocations"),
            Some(Role::Read)
        );
    }

    #[test]
    fn basic_and_bearer_credentials_are_read() {
        let with = |v: &str| {
            let mut r = Request::new(axum::body::Body::empty());
            r.headers_mut()
                .insert(header::AUTHORIZATION, HeaderValue::from_str(v).unwrap());
            credential(&r)
        };
        assert!(matches!(with("Bearer abc"), Some(Credential::Bearer(s)) if s == "abc"));
        // "ci:s3cret:x" in base64: the secret may hold colons, the name may not.
        assert!(
            matches!(with("Basic Y2k6czNjcmV0Ong="), Some(Credential::Basic(n, s)) if n == "ci" && s == "s3cret:x")
        );
        assert!(with("Digest abc").is_none());
        assert!(with("Basic !!!").is_none());
    }
}
