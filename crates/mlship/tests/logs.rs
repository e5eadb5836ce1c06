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

/// A stand-in OpenTelemetry collector: answers every OTLP/HTTP request 200 and hands over each
/// (path, body).
fn collector() -> (String, std::sync::mpsc::Receiver<(String, Json)>) {
    use std::io::{BufRead, BufReader, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(conn) = conn else { return };
            let tx = tx.clone();
            std::thread::spawn(move || {
                let mut reader = BufReader::new(conn.try_clone().unwrap());
                let mut writer = conn;
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 {
                        return;
                    }
                    let path = line.split(' ').nth(1).unwrap_or("").to_string();
                    let mut length = 0;
                    loop {
                        let mut h = String::new();
                        reader.read_line(&mut h).unwrap();
                        if h.trim().is_empty() {
                            break;
                        }
                        if let Some((k, v)) = h.split_once(':') {
                            if k.eq_ignore_ascii_case("content-length") {
                                length = v.trim().parse().unwrap();
                            }
                        }
                    }
                    let mut body = vec![0; length];
                    reader.read_exact(&mut body).unwrap();
                    let body = serde_json::from_slice(&body).unwrap_or(Json::Null);
                    let _ = tx.send((path, body));
                    let ok = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}";
                    writer.write_all(ok.as_bytes()).unwrap();
                }
            });
        }
    });
    (addr, rx)
}

/// The value of a span attribute in OTLP's JSON encoding (`intValue` is a string there).
fn attribute(span: &Json, key: &str) -> Json {
    let a = span["attributes"]
        .as_array()
        .and_then(|a| a.iter().find(|a| a["key"] == key))
        .unwrap_or_else(|| panic!("no attribute {key} in {span:#}"));
    let v = &a["value"];
    v.get("stringValue")
        .or_else(|| v.get("intValue"))
        .cloned()
        .unwrap_or_else(|| v.clone())
}

/// With --otlp-endpoint, each request becomes a server span sent to the collector (flushed when
/// the server stops on SIGTERM), in the caller's trace when it sends a `traceparent`.
#[cfg(unix)]
#[test]
fn request_spans_go_to_an_opentelemetry_collector() {
    let (collector, received) = collector();
    let home = tempfile::tempdir().unwrap();
    let (mut child, addr) = common::spawn(mlship(home.path()).args([
        "serve",
        &format!("rf={MODEL}"),
        "--port",
        "0",
        "--otlp-endpoint",
        &format!("http://{collector}"),
    ]));
    common::wait_ready(&addr);
    let (trace, parent) = ("4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7");
    let traceparent = format!("00-{trace}-{parent}-01");
    let headers = [
        ("X-Request-Id", "traced-1"),
        ("Content-Type", "application/json"),
        ("traceparent", traceparent.as_str()),
    ];
    let (status, _, _) = common::exchange(
        &addr,
        "POST",
        "/models/rf/invocations",
        &headers,
        common::forest_row().as_bytes(),
    );
    assert_eq!(status, 200);
    request(&addr, "POST", "/models/rf/invocations", "untraced-bad", "{");
    std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(child.wait().unwrap().success());
    let mut spans = Vec::new();
    while let Ok((path, body)) = received.recv_timeout(std::time::Duration::from_secs(10)) {
        assert_eq!(path, "/v1/traces");
        for rs in body["resourceSpans"].as_array().unwrap() {
            for ss in rs["scopeSpans"].as_array().unwrap() {
                spans.extend(ss["spans"].as_array().unwrap().iter().cloned());
            }
        }
        if spans.len() >= 2 {
            break;
        }
    }
    let by_id = |id: &str| {
        spans
            .iter()
            .find(|s| attribute(s, "mlship.request_id") == id)
            .unwrap_or_else(|| panic!("no span for {id} in {spans:#?}"))
            .clone()
    };
    let traced = by_id("traced-1");
    assert_eq!(traced["name"], "POST /models/{name}/invocations");
    assert_eq!(traced["traceId"], trace, "{traced:#}");
    assert_eq!(traced["parentSpanId"], parent, "{traced:#}");
    assert_eq!(traced["kind"], 2, "a server span: {traced:#}");
    assert_eq!(attribute(&traced, "http.response.status_code"), "200");
    assert_eq!(attribute(&traced, "mlship.model"), "rf");
    let bad = by_id("untraced-bad");
    assert_eq!(attribute(&bad, "http.response.status_code"), "400");
    assert_ne!(bad["traceId"], trace);
}

#[test]
fn a_bad_collector_address_is_refused_at_start() {
    let home = tempfile::tempdir().unwrap();
    let o = mlship(home.path())
        .args([
            "serve",
            &format!("rf={MODEL}"),
            "--otlp-endpoint",
            "collector:4318",
        ])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(
        err.contains("--otlp-endpoint") && err.contains("hint:"),
        "{err}"
    );
}
