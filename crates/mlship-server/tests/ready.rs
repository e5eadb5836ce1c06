//! A server that is still loading answers 503 on every model route, in each protocol's shape,
//! while saying it is alive; once its models are installed it answers.

mod common;

use std::sync::Arc;

use mlship_server::{AppState, Config};

fn get(addr: &str, method: &str, path: &str, body: &str) -> (u16, String) {
    let (status, _, body) = common::http(addr, method, path, body);
    (status, body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn not_ready_is_503_then_ready_after_install() {
    let state = Arc::new(AppState::new(Vec::new(), Config::default()));
    state.set_ready(false);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(mlship_server::run(listener, state.clone(), async {
        let _ = rx.await;
    }));
    let a = addr.clone();
    let checks = tokio::task::spawn_blocking(move || {
        assert_eq!(get(&a, "GET", "/v2/health/live", "").0, 200);
        assert_eq!(get(&a, "GET", "/v2/health/ready", "").0, 503);
        assert_eq!(get(&a, "GET", "/ping", "").0, 503);
        let (st, body) = get(&a, "POST", "/invocations", "{\"instances\": []}");
        assert_eq!(st, 503, "{body}");
        assert!(body.contains("TEMPORARILY_UNAVAILABLE"), "{body}");
    });
    checks.await.unwrap();
    state.install(Vec::new(), Vec::new());
    let a = addr.clone();
    tokio::task::spawn_blocking(move || assert_eq!(get(&a, "GET", "/v2/health/ready", "").0, 200))
        .await
        .unwrap();
    let _ = tx.send(());
    server.await.unwrap().unwrap();
}
