//! OpenTelemetry export, off unless a server is given a collector: one span per request
//! (`METHOD /route/{template}`, kind server) carrying the request id, the status, and the model
//! and version that answered, sent over OTLP/HTTP (JSON) in batches. A request with a W3C
//! `traceparent` header gets a span in the caller's trace.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use axum::http::HeaderMap;
use opentelemetry::propagation::{Extractor, TextMapPropagator};
use opentelemetry::trace::TracerProvider;
use opentelemetry_otlp::{Protocol, SpanExporter, WithExportConfig};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::Layer;
use tracing_subscriber::filter::Targets;
use tracing_subscriber::registry::LookupSpan;

/// The target of request spans (the only spans exported).
pub(crate) const TARGET: &str = "mlship::request";

static ON: AtomicBool = AtomicBool::new(false);

/// Whether requests get spans: only while exporting (a span costs a little on every request).
pub(crate) fn on() -> bool {
    ON.load(Ordering::Relaxed)
}

/// The running export; dropping it sends what is still queued and stops it.
pub struct Export {
    provider: SdkTracerProvider,
}

impl Drop for Export {
    fn drop(&mut self) {
        ON.store(false, Ordering::Relaxed);
        let _ = self.provider.shutdown_with_timeout(Duration::from_secs(5));
    }
}

/// A `tracing` layer that exports request spans to the collector at `endpoint` (its base URL,
/// such as `http://collector:4318`; `/v1/traces` is added), and the guard that flushes it.
pub fn export<S>(endpoint: &str) -> Result<(Box<dyn Layer<S> + Send + Sync>, Export), String>
where
    S: tracing::Subscriber + for<'a> LookupSpan<'a> + Send + Sync,
{
    let base = endpoint.trim_end_matches('/');
    if !(base.starts_with("http://") || base.starts_with("https://")) || base.len() < 10 {
        return Err(format!(
            "{endpoint} is not an http:// or https:// URL (a collector's OTLP/HTTP address, such as http://collector:4318)"
        ));
    }
    let exporter = SpanExporter::builder()
        .with_http()
        .with_protocol(Protocol::HttpJson)
        .with_endpoint(format!("{base}/v1/traces"))
        .with_timeout(Duration::from_secs(5))
        .build()
        .map_err(|e| format!("{endpoint}: {e}"))?;
    let provider = SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(Resource::builder().with_service_name("mlship").build())
        .build();
    let layer = tracing_opentelemetry::layer()
        .with_tracer(provider.tracer("mlship"))
        // The span says what was asked and answered, not where in mlship's code it was made.
        .with_location(false)
        .with_threads(false)
        .with_target(false)
        .with_tracked_inactivity(false)
        .with_filter(Targets::new().with_target(TARGET, tracing::Level::INFO));
    ON.store(true, Ordering::Relaxed);
    Ok((Box::new(layer), Export { provider }))
}

/// A request's span, in the caller's trace when its headers carry one.
pub(crate) fn request_span(
    method: &str,
    route: &str,
    id: &str,
    headers: &HeaderMap,
) -> tracing::Span {
    let span = tracing::info_span!(
        target: TARGET,
        "request",
        otel.name = %format!("{method} {route}"),
        otel.kind = "server",
        otel.status_code = tracing::field::Empty,
        http.request.method = %method,
        http.route = %route,
        http.response.status_code = tracing::field::Empty,
        mlship.request_id = %id,
        mlship.model = tracing::field::Empty,
        mlship.version = tracing::field::Empty,
    );
    let parent = TraceContextPropagator::new().extract(&Headers(headers));
    let _ = span.set_parent(parent);
    span
}

/// Records how the request was answered on its span.
pub(crate) fn answered(
    span: &tracing::Span,
    status: u16,
    model: Option<&str>,
    version: Option<&str>,
) {
    span.record("http.response.status_code", status);
    if let Some(m) = model {
        span.record("mlship.model", m);
    }
    if let Some(v) = version {
        span.record("mlship.version", v);
    }
    // OpenTelemetry's convention for server spans: only the server's own faults are errors.
    if status >= 500 {
        span.record("otel.status_code", "ERROR");
    }
}

struct Headers<'a>(&'a HeaderMap);

impl Extractor for Headers<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(|k| k.as_str()).collect()
    }
}
