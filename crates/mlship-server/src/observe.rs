//! What both servers share around every request: the request id (`X-Request-Id`, honoured or
//! made, and echoed), one access-log line through `tracing`, and a 500 in the protocol's shape
//! for a handler that panics.

use std::sync::Arc;
use std::time::Instant;

use axum::body::HttpBody;
use axum::extract::{MatchedPath, Request};
use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::api::{ApiError, Style, panic_message};
use crate::metrics::Metrics;

pub static REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The id of the request being answered, as handlers and logs see it.
#[derive(Clone, Debug)]
pub struct RequestId(pub String);

tokio::task_local! {
    /// The model and version a scoring request went to, for its access-log line.
    static SERVED: std::cell::RefCell<Option<(String, String)>>;
}

/// Notes the model and version that answer the current request (a no-op outside a request).
pub fn note_served(model: &str, version: &str) {
    let _ = SERVED.try_with(|s| *s.borrow_mut() = Some((model.to_string(), version.to_string())));
}

/// A client's id is kept when it is short printable ASCII; otherwise one is made.
fn request_id(req: &Request) -> String {
    req.headers()
        .get(&REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty() && v.len() <= 128 && v.bytes().all(|b| b.is_ascii_graphic()))
        .map_or_else(new_id, str::to_string)
}

/// 128 random bits as hex, from the standard library's per-process random hasher keys.
fn new_id() -> String {
    use std::hash::{BuildHasher, Hasher};
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    let word = |salt: u64| {
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u64(n ^ salt);
        h.finish()
    };
    format!("{:016x}{:016x}", word(0), word(u64::MAX))
}

/// Middleware: gives the request its id (in its extensions and the answer's `X-Request-Id`) and
/// logs one line when it is answered: method, route template, model and version, status,
/// duration, bytes and the id. Server faults (5xx but 503) are logged at error level.
pub async fn access_log(mut req: Request, next: Next) -> Response {
    let started = Instant::now();
    let id = request_id(&req);
    req.extensions_mut().insert(RequestId(id.clone()));
    let method = req.method().clone();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_string(), |p| p.as_str().to_string());
    let request_bytes = req.body().size_hint().exact();
    let span = crate::otel::on()
        .then(|| crate::otel::request_span(method.as_str(), &route, &id, req.headers()));
    let answer = SERVED.scope(std::cell::RefCell::new(None), async move {
        let resp = next.run(req).await;
        (resp, SERVED.with(|s| s.borrow_mut().take()))
    });
    let (mut resp, served) = match &span {
        Some(span) => tracing::Instrument::instrument(answer, span.clone()).await,
        None => answer.await,
    };
    if let Ok(v) = HeaderValue::from_str(&id) {
        resp.headers_mut().insert(REQUEST_ID.clone(), v);
    }
    let status = resp.status().as_u16();
    let bytes = resp.body().size_hint().exact();
    let ms = started.elapsed().as_secs_f64() * 1e3;
    let (model, version) = served.unzip();
    if let Some(span) = &span {
        crate::otel::answered(span, status, model.as_deref(), version.as_deref());
    }
    macro_rules! line {
        ($level:ident) => {
            tracing::$level!(
                target: "mlship::access",
                method = %method,
                route = %route,
                model = model.as_deref(),
                version = version.as_deref(),
                status,
                duration_ms = ms,
                request_bytes,
                bytes,
                request_id = %id,
                "request"
            )
        };
    }
    // The server's own faults are errors; 503 (loading, over a limit, a store away) is expected
    // now and then and says so at warn.
    match status {
        503 => line!(warn),
        500.. => line!(error),
        _ => line!(info),
    }
    resp
}

/// A limit on how long a request may take, and the error shape of its routes.
#[derive(Clone, Copy)]
pub struct Deadline {
    pub limit: std::time::Duration,
    pub style: fn(&str) -> Style,
}

/// Middleware: a request not answered within the limit (a slow body, a slow model) is answered
/// 503 in its route's shape, and its work is dropped.
pub async fn deadline(
    axum::extract::State(d): axum::extract::State<Deadline>,
    req: Request,
    next: Next,
) -> Response {
    let style = (d.style)(req.uri().path());
    match tokio::time::timeout(d.limit, next.run(req)).await {
        Ok(r) => r,
        Err(_) => ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "TEMPORARILY_UNAVAILABLE",
            format!(
                "the request was not answered within {} s",
                d.limit.as_secs_f64()
            ),
            style,
        )
        .retry_after(1)
        .into_response(),
    }
}

/// The answer for a handler that panicked: 500 in the protocol's error shape, counted in
/// `/metrics`; the panic's message goes to the log, never to the client.
#[derive(Clone)]
pub struct PanicAnswer {
    pub style: Style,
    pub metrics: Option<Arc<Metrics>>,
}

impl tower_http::catch_panic::ResponseForPanic for PanicAnswer {
    type ResponseBody = axum::body::Body;

    fn response_for_panic(
        &mut self,
        err: Box<dyn std::any::Any + Send + 'static>,
    ) -> axum::http::Response<Self::ResponseBody> {
        if let Some(m) = &self.metrics {
            m.handler_panicked();
        }
        tracing::error!(panic = %panic_message(err.as_ref()), "a request's handler panicked");
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "INTERNAL_ERROR",
            "internal error; the server's log has the cause",
            self.style,
        )
        .into_response()
    }
}

/// The layer that turns a handler's panic into [`PanicAnswer`]'s 500.
pub fn catch_panics(
    style: Style,
    metrics: Option<Arc<Metrics>>,
) -> tower_http::catch_panic::CatchPanicLayer<PanicAnswer> {
    tower_http::catch_panic::CatchPanicLayer::custom(PanicAnswer { style, metrics })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_kept_when_printable_and_made_otherwise() {
        let with = |v: &str| {
            let mut r = Request::new(axum::body::Body::empty());
            r.headers_mut()
                .insert(&REQUEST_ID, HeaderValue::from_str(v).unwrap());
            request_id(&r)
        };
        assert_eq!(with("abc-123"), "abc-123");
        let made = with("has space");
        assert_eq!(made.len(), 32);
        assert!(made.bytes().all(|b| b.is_ascii_hexdigit()));
        assert_ne!(new_id(), new_id());
        assert_eq!(with(&"x".repeat(129)).len(), 32);
    }
}
