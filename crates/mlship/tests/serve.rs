//! `mlship serve` end to end: the real binary on port 0, every protocol, errors, graceful shutdown.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use common::{http, post_json};
use serde_json::{Value as Json, json};

fn case(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fixtures/corpus")
        .join(name)
}

/// A running server, stopped (SIGTERM) when dropped.
struct Server {
    child: Child,
    addr: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .stderr(Stdio::null())
            .status();
        let _ = self.child.wait();
    }
}

fn serve(models: &[String], extra: &[&str]) -> Server {
    let home = std::env::temp_dir().join(format!("mlship-serve-test-{}", std::process::id()));
    let (child, addr) = common::start(
        Command::new(env!("CARGO_BIN_EXE_mlship"))
            .arg("serve")
            .args(models)
            .args(["--port", "0"])
            .args(extra)
            .env("MLSHIP_HOME", home),
    );
    Server { child, addr }
}

fn expected(name: &str) -> Json {
    serde_json::from_str(&std::fs::read_to_string(case(name).join("expected.json")).unwrap())
        .unwrap()
}

/// input.csv's rows as JSON values (numbers, or strings for string columns).
fn rows(name: &str) -> (Vec<String>, Vec<Vec<Json>>) {
    let text = std::fs::read_to_string(case(name).join("input.csv")).unwrap();
    let mut lines = text.lines();
    let cols: Vec<String> = lines
        .next()
        .unwrap()
        .split(',')
        .map(str::to_string)
        .collect();
    let data = lines
        .map(|l| {
            l.split(',')
                .map(|c| {
                    c.parse::<f64>()
                        .map(Json::from)
                        .unwrap_or_else(|_| json!(c))
                })
                .collect()
        })
        .collect();
    (cols, data)
}

#[test]
fn mlflow_kserve_and_v2_answer_as_the_model_predicts() {
    let rf = case("random_forest_classifier");
    let oh = case("pipeline_onehot_logreg");
    let srv = serve(
        &[
            format!("fraud={}", rf.join("model.pkl").display()),
            format!("onehot={}", oh.join("model.joblib").display()),
        ],
        &[],
    );
    let a = &srv.addr;

    assert_eq!(http(a, "GET", "/ping", "", b"").0, 200);
    assert_eq!(http(a, "GET", "/health", "", b"").0, 200);

    let (cols, data) = rows("random_forest_classifier");
    let want = expected("random_forest_classifier");
    // MLflow: /invocations serves the first model; every request shape gives the same answer.
    let split = json!({"dataframe_split": {"columns": cols, "data": data}});
    let (st, body) = post_json(a, "/invocations", &split);
    assert_eq!(st, 200, "{body}");
    assert_eq!(body["predictions"], want["predictions"]);
    let records: Vec<Json> = data
        .iter()
        .map(|r| Json::Object(cols.iter().cloned().zip(r.iter().cloned()).collect()))
        .collect();
    assert_eq!(
        post_json(
            a,
            "/models/fraud/invocations",
            &json!({"dataframe_records": records})
        )
        .1["predictions"],
        want["predictions"]
    );
    assert_eq!(
        post_json(a, "/models/fraud/invocations", &json!({"instances": data})).1["predictions"],
        want["predictions"]
    );
    assert_eq!(
        post_json(a, "/models/fraud/invocations", &json!({"inputs": records})).1["predictions"],
        want["predictions"]
    );
    let csv = std::fs::read(rf.join("input.csv")).unwrap();
    assert_eq!(
        http(a, "POST", "/models/fraud/invocations", "text/csv", &csv).1["predictions"],
        want["predictions"]
    );
    let proba = post_json(
        a,
        "/models/fraud/invocations",
        &json!({"dataframe_split": {"columns": cols, "data": data}, "params": {"predict_method": "predict_proba"}}),
    );
    assert_eq!(proba.1["predictions"], want["probabilities"]);
    let with = post_json(a, "/models/fraud/invocations?probabilities=true", &split);
    assert_eq!(
        (with.1["probabilities"].clone(), with.1["classes"].clone()),
        (want["probabilities"].clone(), want["classes"].clone())
    );

    // KServe V1.
    assert_eq!(
        http(a, "GET", "/v1/models/onehot", "", b"").1,
        json!({"name": "onehot", "ready": true})
    );
    let (ocols, odata) = rows("pipeline_onehot_logreg");
    let orecords: Vec<Json> = odata
        .iter()
        .map(|r| Json::Object(ocols.iter().cloned().zip(r.iter().cloned()).collect()))
        .collect();
    let v1 = post_json(
        a,
        "/v1/models/onehot:predict",
        &json!({"instances": orecords}),
    );
    assert_eq!(
        v1.1["predictions"],
        expected("pipeline_onehot_logreg")["predictions"]
    );

    // Open Inference Protocol: one 2-D tensor, or one tensor per column.
    assert_eq!(http(a, "GET", "/v2/health/ready", "", b"").0, 200);
    assert_eq!(http(a, "GET", "/v2/health/live", "", b"").0, 200);
    let meta = http(a, "GET", "/v2/models/onehot", "", b"").1;
    assert_eq!(meta["inputs"].as_array().unwrap().len(), 4);
    assert_eq!(
        meta["inputs"][3],
        json!({"name": "color", "datatype": "BYTES", "shape": [-1]})
    );
    let flat: Vec<Json> = data.iter().flatten().cloned().collect();
    let v2 = post_json(
        a,
        "/v2/models/fraud/infer",
        &json!({"id": "r1", "inputs": [{"name": "x", "shape": [data.len(), cols.len()], "datatype": "FP32", "data": flat}]}),
    );
    assert_eq!(v2.0, 200, "{}", v2.1);
    assert_eq!(v2.1["id"], "r1");
    assert_eq!(v2.1["outputs"][0]["data"], want["predictions"]);
    let per_col: Vec<Json> = ocols
        .iter()
        .enumerate()
        .map(|(j, c)| {
            let vals: Vec<Json> = odata.iter().map(|r| r[j].clone()).collect();
            json!({"name": c, "shape": [vals.len()], "datatype": if c == "color" { "BYTES" } else { "FP64" }, "data": vals})
        })
        .collect();
    let v2c = post_json(
        a,
        "/v2/models/onehot/versions/1/infer",
        &json!({"inputs": per_col}),
    );
    assert_eq!(
        v2c.1["outputs"][0]["data"],
        expected("pipeline_onehot_logreg")["predictions"],
        "{}",
        v2c.1
    );
    assert_eq!(v2c.1["outputs"][1]["shape"], json!([50, 2]));
}

#[test]
fn errors_keep_each_protocols_shape_and_status() {
    let oh = case("pipeline_onehot_logreg");
    let srv = serve(
        &[format!("onehot={}", oh.join("model.pkl").display())],
        &["--body-limit", "2000"],
    );
    let a = &srv.addr;
    // Missing column: 400 naming it.
    let (st, b) = post_json(
        a,
        "/invocations",
        &json!({"dataframe_records": [{"num_a": 1, "num_b": 2, "color": "red"}]}),
    );
    assert_eq!(st, 400);
    assert_eq!(b["error_code"], "INVALID_PARAMETER_VALUE");
    assert!(b["message"].as_str().unwrap().contains("num_c"), "{b}");
    // Wrong type: 400 naming the column and row.
    let (st, b) = post_json(
        a,
        "/invocations",
        &json!({"dataframe_records": [{"num_a": 1, "num_b": 2, "num_c": 3, "color": "red"}, {"num_a": 1, "num_b": "two", "num_c": 3, "color": "red"}]}),
    );
    assert_eq!(st, 400);
    let m = b["message"].as_str().unwrap();
    assert!(m.contains("num_b") && m.contains("row 1"), "{m}");
    // Extra columns are ignored; integers are taken as floats.
    assert_eq!(post_json(a, "/invocations", &json!({"dataframe_records": [{"num_a": 1, "num_b": 2, "num_c": 3, "color": "red", "extra": "x"}]})).0, 200);
    // None or several of the input keys.
    assert_eq!(post_json(a, "/invocations", &json!({"rows": []})).0, 400);
    assert_eq!(
        post_json(a, "/invocations", &json!({"instances": [], "inputs": []})).0,
        400
    );
    // Unknown model: 404 in each shape.
    let (st, b) = post_json(a, "/models/nope/invocations", &json!({"instances": []}));
    assert_eq!(
        (st, b["error_code"].as_str()),
        (404, Some("RESOURCE_DOES_NOT_EXIST"))
    );
    let (st, b) = http(a, "GET", "/v2/models/nope", "", b"");
    assert_eq!(st, 404);
    assert!(b["error"].as_str().unwrap().contains("onehot"));
    assert_eq!(http(a, "GET", "/v1/models/nope", "", b"").0, 404);
    // Unsupported content type: 415; body over the limit: 413.
    assert_eq!(http(a, "POST", "/invocations", "text/plain", b"x").0, 415);
    let big = json!({"instances": vec![json!({"num_a": 1.0, "num_b": 2.0, "num_c": 3.0, "color": "red"}); 100]});
    let (st, b) = post_json(a, "/invocations", &big);
    assert_eq!(
        (st, b["error_code"].as_str()),
        (413, Some("REQUEST_LIMIT_EXCEEDED"))
    );
    // V2 shapes and datatypes.
    let (st, b) = post_json(
        a,
        "/v2/models/onehot/infer",
        &json!({"inputs": [{"name": "num_a", "shape": [1], "datatype": "FP64", "data": [1]}]}),
    );
    assert_eq!(st, 400);
    assert!(
        b["error"].as_str().unwrap().contains("missing input"),
        "{b}"
    );
    let (st, b) = post_json(
        a,
        "/v2/models/onehot/infer",
        &json!({"inputs": [{"name": "color", "shape": [1], "datatype": "FP64", "data": [1]}]}),
    );
    assert_eq!(st, 400);
    assert!(b["error"].as_str().unwrap().contains("BYTES"), "{b}");
    // Malformed JSON.
    assert_eq!(
        http(a, "POST", "/invocations", "application/json", b"{nope").0,
        400
    );
}

#[test]
fn sigterm_stops_the_server() {
    let srv = serve(
        &[case("kmeans").join("model.pkl").display().to_string()],
        &[],
    );
    assert_eq!(http(&srv.addr, "GET", "/ping", "", b"").0, 200);
    let mut srv = srv;
    Command::new("kill")
        .args(["-TERM", &srv.child.id().to_string()])
        .status()
        .unwrap();
    let status = srv.child.wait().unwrap();
    assert!(status.success(), "{status}");
}

#[test]
fn metrics_count_requests_errors_rows_and_latency() {
    let srv = serve(
        &[format!(
            "fraud={}",
            case("random_forest_classifier").join("model.pkl").display()
        )],
        &[],
    );
    let a = &srv.addr;
    let (cols, data) = rows("random_forest_classifier");
    assert_eq!(
        post_json(
            a,
            "/invocations",
            &json!({"dataframe_split": {"columns": cols, "data": data}})
        )
        .0,
        200
    );
    assert_eq!(
        post_json(
            a,
            "/invocations",
            &json!({"dataframe_split": {"columns": cols, "data": [data[0]]}})
        )
        .0,
        200
    );
    assert_eq!(
        post_json(
            a,
            "/invocations",
            &json!({"dataframe_records": [{"f0": "x"}]})
        )
        .0,
        400
    );
    let (st, text) = http(a, "GET", "/metrics", "", b"");
    assert_eq!(st, 200);
    let text = text.as_str().unwrap().to_string();
    for want in [
        "mlship_http_requests_total{route=\"/invocations\",method=\"POST\",status=\"200\"} 2",
        "mlship_http_requests_total{route=\"/invocations\",method=\"POST\",status=\"400\"} 1",
        "mlship_predictions_total{model=\"fraud\",version=\"file\"} 51",
        "mlship_batch_rows_bucket{model=\"fraud\",version=\"file\",le=\"1\"} 1",
        "mlship_scoring_duration_seconds_count{model=\"fraud\",version=\"file\"} 2",
        "mlship_http_request_duration_seconds_bucket{route=\"/invocations\",le=\"+Inf\"} 3",
        "process_resident_memory_bytes ",
    ] {
        assert!(text.contains(want), "missing {want:?} in\n{text}");
    }
}

#[test]
fn openapi_and_docs_describe_each_model_without_the_network() {
    let srv = serve(
        &[format!(
            "onehot={}",
            case("pipeline_onehot_logreg").join("model.pkl").display()
        )],
        &[],
    );
    let (st, doc) = http(&srv.addr, "GET", "/openapi.json", "", b"");
    assert_eq!(st, 200);
    assert_eq!(doc["openapi"], "3.1.0");
    let rec = &doc["components"]["schemas"]["onehotRecord"];
    assert_eq!(rec["properties"]["color"]["type"][0], "string");
    assert_eq!(rec["required"].as_array().unwrap().len(), 4);
    for p in [
        "/models/onehot/invocations",
        "/v1/models/onehot:predict",
        "/v2/models/onehot/infer",
        "/ping",
    ] {
        assert!(doc["paths"].get(p).is_some(), "no {p}");
    }
    // The example in the description is a request the server accepts.
    let example = &doc["paths"]["/models/onehot/invocations"]["post"]["requestBody"]["content"]["application/json"]
        ["example"];
    let ex =
        json!({"dataframe_records": [{"num_a": 0.0, "num_b": 0.0, "num_c": 0.0, "color": "red"}]});
    assert_eq!(
        example["dataframe_records"][0].as_object().unwrap().len(),
        4
    );
    assert_eq!(
        post_json(&srv.addr, "/models/onehot/invocations", &ex).0,
        200
    );
    let (st, page) = http(&srv.addr, "GET", "/docs", "", b"");
    assert_eq!(st, 200);
    let page = page.as_str().unwrap();
    assert!(page.contains("<code>onehot</code>") && page.contains("<code>color</code>"));
    assert!(
        !page.contains("<script") && !page.contains("https://"),
        "the page must not need the network"
    );
    // Nothing shows where the model lives on the host.
    let root = env!("CARGO_MANIFEST_DIR").trim_end_matches("crates/mlship");
    let text = doc.to_string();
    assert!(
        !page.contains("model.pkl") && !page.contains(root) && !text.contains(root),
        "{page}"
    );
}

#[test]
fn concurrent_single_rows_are_batched_and_each_gets_its_own_answer() {
    let srv = serve(
        &[format!(
            "fraud={}",
            case("random_forest_classifier").join("model.pkl").display()
        )],
        &["--max-batch-latency-us", "3000", "--max-batch-size", "32"],
    );
    let (cols, data) = rows("random_forest_classifier");
    let want = expected("random_forest_classifier");
    let addr = srv.addr.clone();
    let threads: Vec<_> = (0..24)
        .map(|t| {
            let (addr, cols, data, want) = (addr.clone(), cols.clone(), data.clone(), want.clone());
            std::thread::spawn(move || {
                for k in 0..10 {
                    let i = (t * 7 + k) % data.len();
                    let (st, b) = post_json(
                        &addr,
                        "/invocations?probabilities=true",
                        &json!({"dataframe_split": {"columns": cols, "data": [data[i]]}}),
                    );
                    assert_eq!(st, 200, "{b}");
                    assert_eq!(b["predictions"][0], want["predictions"][i], "row {i}");
                    assert_eq!(b["probabilities"][0], want["probabilities"][i], "row {i}");
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let text = http(&srv.addr, "GET", "/metrics", "", b"")
        .1
        .as_str()
        .unwrap()
        .to_string();
    let count = |key: &str| -> f64 {
        text.lines()
            .find(|l| l.starts_with(key))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0.0)
    };
    let calls = count("mlship_batch_requests_count{model=\"fraud\",version=\"file\"}");
    let singles = count("mlship_batch_requests_bucket{model=\"fraud\",version=\"file\",le=\"1\"}");
    assert_eq!(
        count("mlship_batch_requests_sum{model=\"fraud\",version=\"file\"}"),
        240.0,
        "{text}"
    );
    assert!(
        calls < 240.0 && singles < calls,
        "no batch formed: {calls} calls, {singles} of one request"
    );
}

/// A model's further named outputs (a PMML scorecard's reason codes) reach every protocol:
/// `outputs` next to MLflow's and KServe V1's predictions, one BYTES tensor each in V2.
#[test]
fn reason_codes_reach_every_protocol() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/pmml/scorecard_reasons");
    let srv = serve(&[format!("card={}", dir.join("model.pmml").display())], &[]);
    let a = &srv.addr;
    let want: Json =
        serde_json::from_str(&std::fs::read_to_string(dir.join("expected.json")).unwrap()).unwrap();
    let data = json!([
        [20.0, "a", 500.0],
        [45.0, "b", 2000.0],
        [70.0, "b", 100.0],
        [45.0, "a", 5000.0]
    ]);
    let (st, body) = post_json(
        a,
        "/invocations",
        &json!({"dataframe_split": {"columns": ["age", "job", "inc"], "data": data}}),
    );
    assert_eq!(st, 200, "{body}");
    assert_eq!(body["predictions"], want["score"]);
    for rc in ["rc1", "rc2", "rc3"] {
        assert_eq!(body["outputs"][rc], want[rc], "{rc}: {body}");
    }
    let records: Vec<Json> = data
        .as_array()
        .unwrap()
        .iter()
        .map(|r| json!({"age": r[0], "job": r[1], "inc": r[2]}))
        .collect();
    let (st, body) = post_json(a, "/v1/models/card:predict", &json!({"instances": records}));
    assert_eq!(st, 200, "{body}");
    assert_eq!(body["outputs"]["rc1"], want["rc1"], "{body}");
    let (st, body) = post_json(
        a,
        "/v2/models/card/infer",
        &json!({"inputs": [
            {"name": "age", "datatype": "FP64", "shape": [4], "data": [20.0, 45.0, 70.0, 45.0]},
            {"name": "job", "datatype": "BYTES", "shape": [4], "data": ["a", "b", "b", "a"]},
            {"name": "inc", "datatype": "FP64", "shape": [4], "data": [500.0, 2000.0, 100.0, 5000.0]}
        ]}),
    );
    assert_eq!(st, 200, "{body}");
    let rc3 = body["outputs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["name"] == "rc3")
        .unwrap_or_else(|| panic!("no rc3 tensor: {body}"));
    assert_eq!(rc3["datatype"], "BYTES");
    assert_eq!(rc3["data"], json!(["JOB", "", "INC", ""]));
}

/// A model that cannot be loaded stops the server, naming it; with `--exit-on-error=false` it is
/// reported not ready with the reason while the others serve.
#[test]
fn a_model_that_fails_to_load_stops_the_server_or_is_reported_not_ready() {
    let dir = tempfile::tempdir().unwrap();
    let broken = dir.path().join("broken.pkl");
    std::fs::write(&broken, b"\x80\x04not a pickle").unwrap();
    let good = format!(
        "good={}",
        case("random_forest_regressor").join("model.pkl").display()
    );
    let bad = format!("bad={}", broken.display());
    let o = Command::new(env!("CARGO_BIN_EXE_mlship"))
        .args(["serve", &good, &bad, "--port", "0"])
        .env("MLSHIP_HOME", dir.path())
        .stdout(Stdio::null())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains("cannot load the model `bad`"), "{err}");

    let srv = serve(&[good, bad], &["--exit-on-error=false"]);
    let (st, _) = http(&srv.addr, "GET", "/v2/models/good/ready", "", b"");
    assert_eq!(st, 200);
    for path in ["/v2/models/bad/ready", "/v2/models/bad"] {
        let (st, body) = http(&srv.addr, "GET", path, "", b"");
        assert_eq!(st, 503, "{path}: {body}");
        let msg = body["error"].as_str().unwrap();
        assert!(
            msg.contains("`bad` is not ready: it failed to load"),
            "{msg}"
        );
        assert!(
            !msg.contains(dir.path().to_str().unwrap()),
            "no host path: {msg}"
        );
    }
    let (st, body) = post_json(
        &srv.addr,
        "/models/bad/invocations",
        &json!({"instances": [[1.0]]}),
    );
    assert_eq!(st, 503);
    assert_eq!(body["error_code"], "TEMPORARILY_UNAVAILABLE");
    let (st, _) = http(&srv.addr, "GET", "/v2/models/nope/ready", "", b"");
    assert_eq!(st, 404);
}
