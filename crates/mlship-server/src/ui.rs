//! The web UI's files, compiled into the binary (no network, no Node at build time): one HTML
//! shell, its script and style, and uPlot for charts. Served gzip-compressed to browsers that
//! take it, with an ETag; the shell names its files with a digest so they can be cached for good.
//!
//! The pages hold no data: the script reads the same REST API as every client, with the user's
//! token when authentication is on, so these routes are open.

use std::io::Write;
use std::sync::OnceLock;

use axum::Router;
use axum::extract::Path;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use sha2::Digest;

/// Which server the shell is for; the script shows that server's pages.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// `mlship server`: experiments, runs, the registry.
    Tracking,
    /// `mlship serve`: the served models and their traffic.
    Serving,
}

struct Asset {
    name: &'static str,
    mime: &'static str,
    body: &'static [u8],
}

const fn file(name: &'static str, mime: &'static str, body: &'static [u8]) -> Asset {
    Asset { name, mime, body }
}

const JS: &str = "text/javascript; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";

const ASSETS: &[Asset] = &[
    file("app.js", JS, include_bytes!("../ui/app.js")),
    file("app.css", CSS, include_bytes!("../ui/app.css")),
    file(
        "uPlot.iife.min.js",
        JS,
        include_bytes!("../ui/vendor/uPlot.iife.min.js"),
    ),
    file(
        "uPlot.min.css",
        CSS,
        include_bytes!("../ui/vendor/uPlot.min.css"),
    ),
    file(
        "favicon.svg",
        "image/svg+xml",
        include_bytes!("../ui/favicon.svg"),
    ),
];

const SHELL: &str = include_str!("../ui/index.html");

/// The digest of every asset, which names this build's files in the shell.
fn digest() -> &'static str {
    static D: OnceLock<String> = OnceLock::new();
    D.get_or_init(|| {
        let mut h = sha2::Sha256::new();
        for a in ASSETS {
            h.update(a.body);
        }
        h.finalize()[..6]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    })
}

/// Each asset compressed once, on first use.
fn gzipped(i: usize) -> &'static [u8] {
    static Z: OnceLock<Vec<Vec<u8>>> = OnceLock::new();
    &Z.get_or_init(|| ASSETS.iter().map(|a| gzip(a.body)).collect())[i]
}

fn gzip(b: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    // Writing to a Vec cannot fail.
    let _ = e.write_all(b);
    e.finish().unwrap_or_default()
}

/// The shell for a server.
pub fn shell(mode: Mode) -> String {
    let m = match mode {
        Mode::Tracking => "tracking",
        Mode::Serving => "serving",
    };
    SHELL.replace("{{mode}}", m).replace("{{digest}}", digest())
}

/// `/` and `/ui/{file}`.
pub fn routes<S: Clone + Send + Sync + 'static>(mode: Mode) -> Router<S> {
    Router::new()
        .route(
            "/",
            get(move || async move {
                (
                    [
                        (header::CACHE_CONTROL, "no-cache"),
                        (
                            header::CONTENT_SECURITY_POLICY,
                            "default-src 'self'; img-src 'self' data: blob:; style-src 'self' 'unsafe-inline'; frame-ancestors 'none'",
                        ),
                    ],
                    axum::response::Html(shell(mode)),
                )
            }),
        )
        .route("/ui/{file}", get(asset))
}

async fn asset(Path(file): Path<String>, headers: HeaderMap) -> Response {
    let Some(i) = ASSETS.iter().position(|a| a.name == file) else {
        return (StatusCode::NOT_FOUND, "no such file").into_response();
    };
    let a = &ASSETS[i];
    let etag = format!("\"{}\"", digest());
    if headers
        .get(header::IF_NONE_MATCH)
        .is_some_and(|v| v.as_bytes() == etag.as_bytes())
    {
        return StatusCode::NOT_MODIFIED.into_response();
    }
    let takes_gzip = headers
        .get(header::ACCEPT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|e| e.trim().starts_with("gzip")));
    let mut r = if takes_gzip {
        let mut r = gzipped(i).into_response();
        r.headers_mut()
            .insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
        r
    } else {
        a.body.into_response()
    };
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(a.mime));
    h.insert(header::VARY, HeaderValue::from_static("accept-encoding"));
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=86400"),
    );
    if let Ok(v) = HeaderValue::from_str(&etag) {
        h.insert(header::ETAG, v);
    }
    r
}

/// The size of the whole UI, gzip-compressed (a test holds it under its budget).
pub fn compressed_size() -> usize {
    (0..ASSETS.len()).map(|i| gzipped(i).len()).sum::<usize>() + gzip(SHELL.as_bytes()).len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_whole_ui_stays_under_its_budget() {
        let size = compressed_size();
        assert!(size < 300 * 1024, "the UI is {size} bytes compressed");
    }

    #[test]
    fn the_shell_loads_nothing_from_elsewhere() {
        for mode in [Mode::Tracking, Mode::Serving] {
            let s = shell(mode);
            assert!(!s.contains("{{"), "an unfilled placeholder: {s}");
            for attr in ["src=\"", "href=\""] {
                for (i, _) in s.match_indices(attr) {
                    let target = &s[i + attr.len()..];
                    assert!(
                        target.starts_with('/') || target.starts_with('#'),
                        "{}",
                        &target[..40.min(target.len())]
                    );
                }
            }
            // Every file the shell names is one the server has.
            for (i, _) in s.match_indices("/ui/") {
                let name = s[i + 4..].split(['?', '"']).next().unwrap_or("");
                assert!(ASSETS.iter().any(|a| a.name == name), "{name}");
            }
        }
    }
}
