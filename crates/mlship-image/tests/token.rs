//! The token (Bearer) flow of the distribution API, as Docker Hub, GHCR and Harbor run it: the
//! registry challenges with a realm, the client fetches a token there with its basic credentials
//! and the repository scope, then sends the token. Debian's registry only speaks htpasswd (the
//! binary's tests push to it), so this registry is an in-process stand-in that checks each step.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use mlship_image::{Credentials, ImageSpec, Layer, PushOptions, Target};

#[derive(Default)]
struct Registry {
    addr: String,
    blobs: HashMap<String, Vec<u8>>,
    uploads: HashMap<String, Vec<u8>>,
    manifests: HashMap<String, Vec<u8>>,
    scopes: Vec<String>,
    patches: usize,
}

type Shared = Arc<Mutex<Registry>>;

fn challenge(reg: &Registry) -> Response {
    (
        StatusCode::UNAUTHORIZED,
        [(
            "www-authenticate",
            format!(
                "Bearer realm=\"http://{}/token\",service=\"test-registry\",scope=\"repository:team/rf:pull,push\"",
                reg.addr
            ),
        )],
    )
        .into_response()
}

async fn token(
    State(s): State<Shared>,
    Query(q): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    let good = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode("robot:s3cret")
    );
    if headers.get("authorization").and_then(|h| h.to_str().ok()) != Some(good.as_str()) {
        return StatusCode::UNAUTHORIZED.into_response();
    }
    assert_eq!(q.get("service").map(String::as_str), Some("test-registry"));
    s.lock()
        .unwrap()
        .scopes
        .push(q.get("scope").cloned().unwrap_or_default());
    axum::Json(serde_json::json!({"token": "t0k3n"})).into_response()
}

fn last(path: &str) -> String {
    path.rsplit('/').next().unwrap_or_default().to_string()
}

async fn v2(
    State(s): State<Shared>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let mut reg = s.lock().unwrap();
    if headers.get("authorization").and_then(|h| h.to_str().ok()) != Some("Bearer t0k3n") {
        return challenge(&reg);
    }
    let path = uri.path().to_string();
    let query: HashMap<String, String> = uri
        .query()
        .map(|q| {
            q.split('&')
                .filter_map(|kv| kv.split_once('='))
                .map(|(k, v)| (k.to_string(), v.replace("%3A", ":")))
                .collect()
        })
        .unwrap_or_default();
    let addr = reg.addr.clone();
    let uploads = "/v2/team/rf/blobs/uploads/";
    match (method, path.as_str()) {
        (Method::GET, "/v2/") => StatusCode::OK.into_response(),
        (Method::HEAD, p) if p.starts_with("/v2/team/rf/blobs/sha256:") => {
            if reg.blobs.contains_key(&last(p)) {
                StatusCode::OK.into_response()
            } else {
                StatusCode::NOT_FOUND.into_response()
            }
        }
        (Method::POST, p) if p == uploads => {
            let id = format!("u{}", reg.uploads.len());
            reg.uploads.insert(id.clone(), Vec::new());
            // An absolute Location with a query, as some registries answer.
            let location = format!("http://{addr}{uploads}{id}?state=x");
            (StatusCode::ACCEPTED, [("location", location)]).into_response()
        }
        (Method::PATCH, p) if p.starts_with(uploads) => {
            let id = last(p);
            let range = headers["content-range"].to_str().unwrap().to_string();
            let start: usize = range.split('-').next().unwrap().parse().unwrap();
            let up = reg.uploads.get_mut(&id).unwrap();
            assert_eq!(start, up.len(), "chunks arrive in order");
            up.extend_from_slice(&body);
            reg.patches += 1;
            (
                StatusCode::ACCEPTED,
                [("location", format!("{uploads}{id}"))],
            )
                .into_response()
        }
        (Method::PUT, p) if p.starts_with(uploads) => {
            let mut data = reg.uploads.remove(&last(p)).unwrap();
            data.extend_from_slice(&body);
            let digest = query["digest"].clone();
            if mlship_image::sha256_digest(&data) != digest {
                return (StatusCode::BAD_REQUEST, "DIGEST_INVALID").into_response();
            }
            reg.blobs.insert(digest, data);
            StatusCode::CREATED.into_response()
        }
        (Method::PUT, "/v2/team/rf/manifests/1") => {
            let digest = mlship_image::sha256_digest(&body);
            reg.manifests.insert("1".into(), body.to_vec());
            (StatusCode::CREATED, [("docker-content-digest", digest)]).into_response()
        }
        other => panic!("unexpected {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_token_registry_gets_every_blob_and_the_manifest() {
    let state: Shared = Arc::default();
    let app = Router::new()
        .route("/token", axum::routing::get(token))
        .fallback(v2)
        .with_state(state.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    state.lock().unwrap().addr = addr.clone();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let dir = tempfile::tempdir().unwrap();
    let mut big = Layer::new();
    big.file(
        "/data",
        (0..300_000u32).flat_map(|i| i.to_le_bytes()).collect(),
        0o644,
    );
    let spec = ImageSpec {
        repo_tag: "rf:1".into(),
        layers: vec![(big, "data".into())],
        entrypoint: vec!["/x".into()],
        cmd: vec![],
        env: vec![],
        user: "1:1".into(),
        port: 8080,
        labels: Default::default(),
        healthcheck: None,
    };
    let path = dir.path().join("rf.tar");
    let built = mlship_image::write_archive(&spec, &path).unwrap();
    let archive = mlship_image::read_archive(&path).unwrap();
    let target = Target::parse(&format!("{addr}/team/rf:1")).unwrap();

    // `push` runs its own runtime, so it goes on a thread of its own.
    let push = |password: &str| {
        let opts = PushOptions {
            credentials: Some(Credentials {
                username: "robot".into(),
                password: password.into(),
            }),
            chunk_size: 64 << 10,
            ..PushOptions::default()
        };
        let (archive, target) = (&archive, &target);
        std::thread::scope(|s| {
            s.spawn(move || mlship_image::push(archive, target, &opts))
                .join()
                .unwrap()
        })
    };
    let wrong = push("nope").unwrap_err().to_string();
    assert!(wrong.contains("refused the credentials"), "{wrong}");

    let report = push("s3cret").unwrap();
    assert_eq!(report.digest, built.digest);
    assert_eq!(report.uploaded.len(), 2);
    let reg = state.lock().unwrap();
    assert!(reg.patches > 1, "the layer went up in chunks");
    assert_eq!(reg.scopes.last().unwrap(), "repository:team/rf:pull,push");
    assert_eq!(
        mlship_image::sha256_digest(&reg.manifests["1"]),
        built.digest
    );
    for d in &archive.layers {
        assert_eq!(reg.blobs[&d.digest], archive.blobs[&d.digest]);
    }
}
