//! Both servers log one JSON object per line on stderr when it is not a terminal: startup events,
//! then one access line per request with its method, route template, model and version, status,
//! duration, bytes and request id (the client's own `X-Request-Id`, echoed in the answer).

mod common;

use std::io::Read;
use std::process::{Command, Stdio};

use serde_json::Value as Json;

const MODEL: &str = "fixtures/corpus/random_forest_regressor/model.pkl";

fn mlship(home: &std::path::Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_mlship"));
    c.current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
        .env("MLSHIP_HOME", home)
        .env_remove("RUST_LOG")
        .stderr(Stdio::piped());
    c
}

/// Sends one request with a request id; returns the answer's head.
fn request(addr: &str, method: &str, path: &str, id: &str, body: &str) -> String {
    let headers = [("X-Request-Id", id), ("Content-Type", "application/json")];
    common::exchange(addr, method, path, &headers, body.as_bytes()).1
}

/// Stops the server and returns its log lines, each parsed (a line that is not JSON fails).
fn logs(mut child: std::process::Child) -> Vec<Json> {
    let _ = child.kill();
    let mut text = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut text)
        .unwrap();
    let _ = child.wait();
    text.lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect()
}

fn access<'a>(lines: &'a [Json], id: &str) -> &'a Json {
    let found: Vec<&Json> = lines
        .iter()
        .filter(|l| l["target"] == "mlship::access" && l["request_id"] == id)
        .collect();
    assert_eq!(found.len(), 1, "one access line for {id} in {lines:#?}");
    found[0]
}

#[test]
fn the_model_server_logs_one_json_line_per_request() {
    let home = tempfile::tempdir().unwrap();
    let (child, addr) =
        common::spawn(mlship(home.path()).args(["serve", &format!("rf={MODEL}"), "--port", "0"]));
    common::wait_ready(&addr);
    let body = common::forest_row();
    let head = request(&addr, "POST", "/models/rf/invocations", "req-ok", &body);
    assert!(
        head.to_ascii_lowercase().contains("x-request-id: req-ok"),
        "{head}"
    );
    request(&addr, "POST", "/models/rf/invocations", "req-bad", "{");
    request(&addr, "GET", "/no/such/route", "req-404", "");
    let lines = logs(child);
    let serving = lines.iter().find(|l| l["message"] == "serving").unwrap();
    assert_eq!(serving["model"], "rf");
    let ok = access(&lines, "req-ok");
    assert_eq!(ok["method"], "POST");
    assert_eq!(ok["route"], "/models/{name}/invocations");
    assert_eq!(
        (ok["model"].as_str(), ok["version"].as_str()),
        (Some("rf"), Some("file"))
    );
    assert_eq!(ok["status"], 200);
    assert!(ok["duration_ms"].as_f64().unwrap() >= 0.0);
    assert!(ok["bytes"].as_u64().unwrap() > 0, "{ok}");
    assert_eq!(ok["level"], "INFO");
    assert_eq!(access(&lines, "req-bad")["status"], 400);
    assert_eq!(access(&lines, "req-404")["route"], "unmatched");
}

#[test]
fn the_tracking_server_logs_one_json_line_per_request() {
    let home = tempfile::tempdir().unwrap();
    let (child, addr) = common::spawn(mlship(home.path()).args(["server", "--port", "0"]));
    request(
        &addr,
        "POST",
        "/api/2.0/mlflow/experiments/create",
        "exp-1",
        r#"{"name": "logged"}"#,
    );
    request(
        &addr,
        "GET",
        "/api/2.0/mlflow/experiments/get?experiment_id=999",
        "exp-404",
        "",
    );
    let lines = logs(child);
    assert!(
        lines
            .iter()
            .any(|l| l["message"] == "tracking server ready")
    );
    let created = access(&lines, "exp-1");
    assert_eq!(created["route"], "/api/2.0/mlflow/experiments/create");
    assert_eq!(created["status"], 200);
    assert_eq!(access(&lines, "exp-404")["status"], 404);
}
