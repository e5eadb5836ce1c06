//! Proxied artifacts (`/api/2.0/mlflow-artifacts/artifacts/…`): one PUT per file streamed to the
//! store, downloads streamed back, listings, deletes. Paths that are absolute or climb with `..`
//! are refused before the store is touched.

use std::io::Read;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use futures_util::StreamExt;
use mlship_registry::FileEntry;
use mlship_registry::files::safe_path;
use serde_json::{Value as Json, json};

use super::entities::put_list;
use super::{Answer, Req, Shared, bad, blocking, empty, ok, store_error};
use crate::api::{ApiError, Style};

/// The artifact routes, their methods and fields, for `/openapi.json` and the check before each
/// handler (a test sends each method).
pub(crate) fn documented() -> &'static [(&'static str, &'static [super::Op])] {
    use super::fields::{ARTIFACT_DIR, Ty, opt};
    &[
        (
            "/2.0/mlflow-artifacts/artifacts",
            &[("GET", &[opt!("path", Ty::Pat(&ARTIFACT_DIR))])],
        ),
        (
            "/2.0/mlflow-artifacts/artifacts/{*path}",
            &[("GET", &[]), ("PUT", &[]), ("DELETE", &[])],
        ),
        ("/2.0/mlflow-artifacts/mpu/create/{*path}", &[("POST", &[])]),
        (
            "/2.0/mlflow-artifacts/mpu/complete/{*path}",
            &[("POST", &[])],
        ),
        ("/2.0/mlflow-artifacts/mpu/abort/{*path}", &[("POST", &[])]),
    ]
}

pub fn routes() -> Router<Shared> {
    Router::new()
        .route("/2.0/mlflow-artifacts/artifacts", get(list))
        .route(
            "/2.0/mlflow-artifacts/artifacts/{*path}",
            get(download).put(upload).delete(remove),
        )
        .route(
            "/2.0/mlflow-artifacts/mpu/create/{*path}",
            post(multipart_off),
        )
        .route(
            "/2.0/mlflow-artifacts/mpu/complete/{*path}",
            post(multipart_off),
        )
        .route(
            "/2.0/mlflow-artifacts/mpu/abort/{*path}",
            post(multipart_off),
        )
        // Uploads are as large as the store allows; they are streamed, never held in memory.
        .layer(axum::extract::DefaultBodyLimit::disable())
}

fn checked(p: &str) -> Result<String, ApiError> {
    safe_path(p).map_err(store_error)
}

fn listing(entries: Vec<FileEntry>) -> Vec<Json> {
    entries
        .into_iter()
        .map(|e| {
            let mut m = serde_json::Map::new();
            m.insert("path".into(), json!(e.path));
            m.insert("is_dir".into(), json!(e.is_dir));
            if let Some(n) = e.size {
                m.insert("file_size".into(), json!(n));
            }
            Json::Object(m)
        })
        .collect()
}

async fn list(State(s): State<Shared>, r: Req) -> Answer {
    let dir = checked(&r.opt_str("path")?.unwrap_or_default())?;
    let entries = blocking(move || s.files.list(&dir)).await?;
    let mut m = serde_json::Map::new();
    put_list(&mut m, "files", listing(entries));
    Ok(ok(Json::Object(m)))
}

/// `artifacts/list` for a run (`run_id` + `path`), as stores without the proxy answer it.
pub async fn list_run_artifacts(State(s): State<Shared>, r: Req) -> Answer {
    let id = r.run_id()?;
    let sub = checked(&r.opt_str("path")?.unwrap_or_default())?;
    let (root, entries) = blocking(move || {
        let run = s.store.run(&id)?;
        let Some(base) = run.info.artifact_uri.strip_prefix("mlflow-artifacts:/") else {
            return Ok((run.info.artifact_uri, Vec::new()));
        };
        let base = base.trim_start_matches('/').to_string();
        let dir = if sub.is_empty() {
            base
        } else {
            format!("{base}/{sub}")
        };
        let entries = s
            .files
            .list(&dir)?
            .into_iter()
            .map(|mut e| {
                if !sub.is_empty() {
                    e.path = format!("{sub}/{}", e.path);
                }
                e
            })
            .collect();
        Ok((run.info.artifact_uri, entries))
    })
    .await?;
    let mut m = serde_json::Map::new();
    m.insert("root_uri".into(), json!(root));
    put_list(&mut m, "files", listing(entries));
    Ok(ok(Json::Object(m)))
}

async fn download(State(s): State<Shared>, Path(path): Path<String>) -> Result<Response, ApiError> {
    let path = checked(&path)?;
    let p = path.clone();
    let (reader, size) = blocking(move || s.files.open(&p)).await?;
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(4);
    tokio::task::spawn_blocking(move || {
        let mut reader = reader;
        let mut buf = vec![0u8; 256 << 10];
        loop {
            match reader.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    if tx
                        .blocking_send(Ok(Bytes::copy_from_slice(&buf[..n])))
                        .is_err()
                    {
                        break;
                    }
                }
                Err(e) => {
                    let _ = tx.blocking_send(Err(e));
                    break;
                }
            }
        }
    });
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    });
    let name = path.rsplit('/').next().unwrap_or("artifact");
    Ok((
        [
            (header::CONTENT_TYPE, content_type(name).to_string()),
            (header::CONTENT_LENGTH, size.to_string()),
        ],
        Body::from_stream(stream),
    )
        .into_response())
}

fn content_type(name: &str) -> &'static str {
    let ext = name.rsplit_once('.').map_or("", |(_, e)| e);
    match ext.to_ascii_lowercase().as_str() {
        "txt" | "log" | "yaml" | "yml" | "csv" | "py" | "md" => "text/plain; charset=utf-8",
        "json" => "application/json",
        "html" | "htm" => "text/html; charset=utf-8",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "webp" => "image/webp",
        "svg" => "image/svg+xml",
        _ if name == "MLmodel" => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}

/// A blocking reader over the chunks of a request body.
struct BodyReader {
    rx: tokio::sync::mpsc::Receiver<Result<Bytes, String>>,
    chunk: Bytes,
}

impl Read for BodyReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.chunk.is_empty() {
            match self.rx.blocking_recv() {
                None => return Ok(0),
                Some(Ok(c)) => self.chunk = c,
                Some(Err(e)) => return Err(std::io::Error::other(e)),
            }
        }
        let n = buf.len().min(self.chunk.len());
        buf[..n].copy_from_slice(&self.chunk.split_to(n));
        Ok(n)
    }
}

async fn upload(State(s): State<Shared>, Path(path): Path<String>, body: Body) -> Answer {
    let path = checked(&path)?;
    if path.is_empty() {
        return Err(bad("an artifact path is required"));
    }
    let (tx, rx) = tokio::sync::mpsc::channel(4);
    let writer = blocking(move || {
        let mut r = BodyReader {
            rx,
            chunk: Bytes::new(),
        };
        s.files.put(&path, &mut r)
    });
    let feed = async move {
        let mut stream = body.into_data_stream();
        while let Some(chunk) = stream.next().await {
            let item = chunk.map_err(|e| e.to_string());
            let failed = item.is_err();
            if tx.send(item).await.is_err() || failed {
                break;
            }
        }
    };
    let (written, ()) = tokio::join!(writer, feed);
    written?;
    // MLflow's server answers an upload with 200 and an empty body.
    Ok(StatusCode::OK.into_response())
}

async fn remove(State(s): State<Shared>, Path(path): Path<String>) -> Answer {
    let path = checked(&path)?;
    blocking(move || s.files.delete(&path)).await?;
    Ok(empty())
}

async fn multipart_off() -> ApiError {
    ApiError::new(
        StatusCode::NOT_IMPLEMENTED,
        "NOT_IMPLEMENTED",
        "multipart uploads are off on this server (server-info says so); upload each file with one PUT",
        Style::Mlflow,
    )
}
