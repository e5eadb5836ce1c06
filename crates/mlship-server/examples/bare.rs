//! The HTTP and JSON ceiling of a machine, for `bench/serve.sh`: an axum endpoint that parses the
//! same JSON body mlship's `/invocations` gets and answers a fixed JSON body, with no model.
//! `cargo run --release -p mlship-server --example bare -- PORT`

use axum::Router;
use axum::routing::post;

#[tokio::main]
async fn main() {
    let port: u16 = std::env::args()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(8090);
    let app = Router::new().route(
        "/invocations",
        post(|body: axum::body::Bytes| async move {
            let v: serde_json::Value =
                serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null);
            let n = v["dataframe_split"]["data"].as_array().map_or(0, Vec::len);
            axum::Json(serde_json::json!({"predictions": vec![0; n]}))
        }),
    );
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .expect("bind");
    println!(
        "listening on http://{}",
        listener.local_addr().expect("address")
    );
    axum::serve(listener, app).await.expect("serve");
}
