//! `mlship server` end to end: the stock `mlflow` client runs a training script against it (on
//! SQLite with a folder, and on PostgreSQL with S3), then `mlship serve` serves the version the
//! script registered and answers as the Python model did; and the API's answers to bad input.

mod common;

use common::{get_json as get, post_json as post};

use std::process::{Child, Command, Stdio};

use serde_json::{Value as Json, json};

struct Server {
    child: Child,
    addr: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `mlship ARGS --port 0` (`server` or `serve`) with the given environment.
fn start(args: &[&str], env: &[(&str, String)]) -> Server {
    let mut c = Command::new(env!("CARGO_BIN_EXE_mlship"));
    // Failures show in the test's output; the access log (one line per request) does not.
    c.args(args)
        .args(["--port", "0"])
        .env("RUST_LOG", "warn")
        .stderr(Stdio::inherit());
    for (k, v) in env {
        c.env(k, v);
    }
    let (child, addr) = common::spawn(&mut c);
    Server { child, addr }
}

/// The Python with `mlflow` installed, or `None` outside CI.
fn mlflow_python() -> Option<String> {
    match std::env::var("MLSHIP_TEST_MLFLOW_PYTHON") {
        Ok(p) => Some(p),
        Err(_) => {
            assert!(
                std::env::var_os("CI").is_none(),
                "MLSHIP_TEST_MLFLOW_PYTHON must be set in CI (.ci/clients.sh installs mlflow)"
            );
            eprintln!("skipped: set MLSHIP_TEST_MLFLOW_PYTHON to a python with mlflow 3.17");
            None
        }
    }
}

/// Runs the client script against `server`, then serves `models:/fraud@production` from the
/// same store and compares its answers with the Python model's.
fn python_client_then_serve(env: &[(&str, String)], home: &std::path::Path) {
    let Some(python) = mlflow_python() else {
        return;
    };
    let home_s = home.display().to_string();
    let server = start(&["--home", &home_s, "server"], env);
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/clients/mlflow_tracking.py");
    let out = home.join("python.json");
    let work = tempfile::tempdir().unwrap();
    let o = Command::new(&python)
        .arg(&script)
        .arg(&out)
        .current_dir(work.path())
        .env("MLFLOW_TRACKING_URI", format!("http://{}", server.addr))
        .env("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
        .env("GIT_PYTHON_REFRESH", "quiet")
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "the mlflow client script failed:\n{}\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    let want: Json = serde_json::from_slice(&std::fs::read(&out).unwrap()).unwrap();

    // The CLI sees what Python wrote.
    let cli = |args: &[&str]| {
        let o = Command::new(env!("CARGO_BIN_EXE_mlship"))
            .args(["--home", &home_s])
            .args(args)
            .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        serde_json::from_slice::<Json>(&o.stdout).unwrap()
    };
    let runs = cli(&[
        "runs",
        "search",
        "--experiment",
        "demo",
        "--filter",
        "metrics.rmse < 0.45 and params.alpha = '0.1'",
        "--order-by",
        "metrics.rmse",
        "--output",
        "json",
    ]);
    assert_eq!(runs[0]["run_id"], want["run_id"]);
    let history = cli(&["models", "history", "fraud", "--output", "json"]);
    assert!(
        history.to_string().contains("set through the MLflow API"),
        "{history}"
    );

    // `mlship serve` serves the version Python registered, with Python's predictions.
    let serve = start(
        &["--home", &home_s, "serve", "models:/fraud@production"],
        env,
    );
    common::wait_ready(&serve.addr);
    let rows = &want["rows"];
    let (status, got) = post(
        &serve.addr,
        "/invocations",
        &json!({"dataframe_split": {"columns": rows["columns"], "data": rows["data"]}}),
    );
    assert_eq!(status, 200, "{got}");
    assert_eq!(got["predictions"], want["predictions"]);
    let (status, v1) = post(
        &serve.addr,
        "/v1/models/fraud:predict",
        &json!({"instances": rows["data"]}),
    );
    assert_eq!(status, 200, "{v1}");
    assert_eq!(v1["predictions"], want["predictions"]);
    drop(serve);

    // Deleting a version through the MLflow API removes its artifact once nothing lists it.
    let versions = cli(&["models", "versions", "fraud", "--output", "json"]);
    let sha = versions[1]["sha256"].as_str().unwrap().to_string();
    let (status, e) = common::http(
        &server.addr,
        "DELETE",
        "/api/2.0/mlflow/model-versions/delete",
        "application/json",
        json!({"name": "fraud", "version": "2"})
            .to_string()
            .as_bytes(),
    );
    assert_eq!(status, 200, "{e}");
    assert_eq!(
        cli(&["models", "versions", "fraud", "--output", "json"])
            .as_array()
            .unwrap()
            .len(),
        1
    );
    if env.is_empty() {
        let object = home
            .join("artifacts/sha256")
            .join(&sha[..2])
            .join(&sha[2..]);
        assert!(!object.exists(), "{} is still stored", object.display());
    }

    // The other front door: a pickle registered with the CLI loads in Python through
    // `models:/` and predicts as scikit-learn did; a PMML version is refused with the reason.
    let corpus = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fixtures/corpus/random_forest_classifier");
    let model = corpus.join("model.pkl");
    let pmml = corpus.join("model.pmml");
    cli(&[
        "models",
        "register",
        "cli-rf",
        model.to_str().unwrap(),
        "--output",
        "json",
    ]);
    cli(&[
        "models",
        "register",
        "cli-pmml",
        pmml.to_str().unwrap(),
        "--output",
        "json",
    ]);
    let script = r#"
import json, sys
import mlflow, pandas as pd
from mlflow.exceptions import MlflowException
m = mlflow.pyfunc.load_model("models:/cli-rf/1")
print(json.dumps([int(p) for p in m.predict(pd.read_csv(sys.argv[1]))]))
try:
    mlflow.pyfunc.load_model("models:/cli-pmml/1")
    print("loaded")
except MlflowException as e:
    print("refused:", e.message.splitlines()[0])
"#;
    let o = Command::new(&python)
        .args(["-c", script])
        .arg(corpus.join("input.csv"))
        .env("MLFLOW_TRACKING_URI", format!("http://{}", server.addr))
        .env("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let mut lines = text
        .lines()
        .filter(|l| l.starts_with('[') || l.starts_with("refused") || l == &"loaded");
    let predicted: Json = serde_json::from_str(lines.next().unwrap()).unwrap();
    let expected: Json =
        serde_json::from_slice(&std::fs::read(corpus.join("expected.json")).unwrap()).unwrap();
    assert_eq!(predicted, expected["predictions"]);
    let refused = lines.next().unwrap();
    assert!(refused.contains("no MLflow flavor loads"), "{refused}");
    drop(server);
}

#[test]
fn mlflow_client_on_sqlite_and_a_folder() {
    let home = tempfile::tempdir().unwrap();
    python_client_then_serve(&[], home.path());
}

#[test]
fn mlflow_client_on_postgres_and_s3_with_two_servers() {
    let Some((store, artifacts)) = common::scale_out() else {
        return;
    };
    let env = vec![("MLSHIP_STORE", store), ("MLSHIP_ARTIFACTS", artifacts)];
    let home = tempfile::tempdir().unwrap();
    let home_s = home.path().display().to_string();
    // Two stateless servers on one database and bucket: a write through one is read through the other.
    let a = start(&["--home", &home_s, "server"], &env);
    let b = start(&["--home", &home_s, "server"], &env);
    let (s, created) = post(
        &a.addr,
        "/api/2.0/mlflow/experiments/create",
        &json!({"name": "shared"}),
    );
    assert_eq!(s, 200, "{created}");
    let (s, got) = get(
        &b.addr,
        "/api/2.0/mlflow/experiments/get-by-name?experiment_name=shared",
    );
    assert_eq!(s, 200, "{got}");
    assert_eq!(got["experiment"]["experiment_id"], created["experiment_id"]);
    let (s, _) = common::http(
        &a.addr,
        "PUT",
        "/api/2.0/mlflow-artifacts/artifacts/9/x/artifacts/hello.txt",
        "text/plain",
        b"hello",
    );
    assert_eq!(s, 200);
    let (s, body) = get(
        &b.addr,
        "/api/2.0/mlflow-artifacts/artifacts/9/x/artifacts/hello.txt",
    );
    assert_eq!((s, body), (200, Json::String("hello".into())));
    drop((a, b));
    python_client_then_serve(&env, home.path());
}

#[test]
fn bad_input_is_the_clients_mistake_and_writes_nothing() {
    let home = tempfile::tempdir().unwrap();
    let home_s = home.path().display().to_string();
    let s = start(&["--home", &home_s, "server"], &[]);
    let addr = &s.addr;
    let (st, e) = common::http(
        addr,
        "POST",
        "/api/2.0/mlflow/experiments/create",
        "application/json",
        b"{not json",
    );
    assert_eq!(st, 400);
    assert_eq!(e["error_code"], "INVALID_PARAMETER_VALUE");
    let (st, e) = post(
        addr,
        "/api/2.0/mlflow/experiments/create",
        &json!({"name": 5}),
    );
    // As protobuf's JSON parser (MLflow's server) refuses a number where a string belongs.
    assert_eq!(st, 400, "{e}");
    assert!(e["message"].as_str().unwrap().contains("'name'"), "{e}");
    let (st, e) = post(
        addr,
        "/api/2.0/mlflow/experiments/create",
        &json!({"name": ["a", "b"]}),
    );
    assert_eq!(st, 400, "{e}");
    assert!(e["message"].as_str().unwrap().contains("'name'"), "{e}");
    let (st, e) = post(addr, "/api/2.0/mlflow/experiments/create", &json!({}));
    assert_eq!(
        (st, e["error_code"].as_str()),
        (400, Some("INVALID_PARAMETER_VALUE"))
    );
    let create = || {
        post(
            addr,
            "/api/2.0/mlflow/experiments/create",
            &json!({"name": "5"}),
        )
    };
    assert_eq!(create().0, 200);
    let (st, e) = create();
    assert_eq!(
        (st, e["error_code"].as_str()),
        (409, Some("RESOURCE_ALREADY_EXISTS"))
    );
    let (st, e) = get(
        addr,
        "/api/2.0/mlflow/experiments/get-by-name?experiment_name=nope",
    );
    assert_eq!(
        (st, e["error_code"].as_str()),
        (404, Some("RESOURCE_DOES_NOT_EXIST"))
    );
    let (st, _) = get(addr, "/ajax-api/2.0/mlflow/experiments/get?experiment_id=0");
    assert_eq!(st, 200, "the same routes under /ajax-api");
    let (_, run) = post(
        addr,
        "/api/2.0/mlflow/runs/create",
        &json!({"experiment_id": "0"}),
    );
    let id = run["run"]["info"]["run_id"].as_str().unwrap().to_string();
    let (st, _) = post(
        addr,
        "/api/2.0/mlflow/runs/log-parameter",
        &json!({"run_id": id, "key": "a", "value": "1"}),
    );
    assert_eq!(st, 200);
    // A changed param in a batch refuses the whole batch.
    let (st, e) = post(
        addr,
        "/api/2.0/mlflow/runs/log-batch",
        &json!({"run_id": id, "params": [{"key": "a", "value": "2"}], "metrics": [{"key": "m", "value": 1, "timestamp": 1, "step": 0}]}),
    );
    // 409: it is what is stored that refuses; the code is MLflow's.
    assert_eq!(
        (st, e["error_code"].as_str()),
        (409, Some("INVALID_PARAMETER_VALUE")),
        "{e}"
    );
    assert!(
        e["message"]
            .as_str()
            .unwrap()
            .contains("Changing param values is not allowed")
    );
    let (_, got) = get(addr, &format!("/api/2.0/mlflow/runs/get?run_id={id}"));
    assert!(
        got["run"]["data"].get("metrics").is_none(),
        "nothing written: {got}"
    );
    // Non-finite metric values as proto3 strings, kept and given back.
    let (st, _) = post(
        addr,
        "/api/2.0/mlflow/runs/log-batch",
        &json!({"run_id": id, "metrics": [{"key": "n", "value": "NaN", "timestamp": 1, "step": 0}, {"key": "i", "value": "-Infinity", "timestamp": 1, "step": 0}]}),
    );
    assert_eq!(st, 200);
    let (_, got) = get(
        addr,
        &format!("/api/2.0/mlflow/metrics/get-history?run_id={id}&metric_key=i"),
    );
    assert_eq!(got["metrics"][0]["value"], "-Infinity");
    let (st, e) = post(
        addr,
        "/api/2.0/mlflow/runs/log-metric",
        &json!({"run_id": id, "key": "x", "value": "abc"}),
    );
    assert_eq!(st, 400, "{e}");
    // A filter that does not parse points at the token.
    let (st, e) = post(
        addr,
        "/api/2.0/mlflow/runs/search",
        &json!({"experiment_ids": ["0"], "filter": "metrics.m < 1 and params.a == '1'"}),
    );
    assert_eq!(st, 400);
    assert!(
        e["message"].as_str().unwrap().contains("at character 28"),
        "{e}"
    );
    // Over the batch limits.
    let metrics: Vec<Json> = (0..1001)
        .map(|i| json!({"key": "m", "value": 1, "timestamp": i, "step": i}))
        .collect();
    let (st, _) = post(
        addr,
        "/api/2.0/mlflow/runs/log-batch",
        &json!({"run_id": id, "metrics": metrics}),
    );
    assert_eq!(st, 400);
    // Artifact paths cannot escape the root.
    for bad in [
        "/api/2.0/mlflow-artifacts/artifacts/0/../../etc/passwd",
        "/api/2.0/mlflow-artifacts/artifacts/0/%2e%2e/x",
        "/api/2.0/mlflow-artifacts/artifacts?path=../x",
        "/api/2.0/mlflow-artifacts/artifacts?path=/etc",
    ] {
        let (st, e) = common::http(
            addr,
            if bad.contains('?') { "GET" } else { "PUT" },
            bad,
            "text/plain",
            b"x",
        );
        assert_eq!(st, 400, "{bad}: {e}");
    }
    assert!(!home.path().join("artifacts/etc").exists());
    // Unknown things are 404 (an alias with MLflow's code for it), never 5xx.
    let (st, _) = get(addr, "/api/2.0/mlflow/runs/get?run_id=0123456789abcdef");
    assert_eq!(st, 404);
    let (st, _) = get(
        addr,
        "/api/2.0/mlflow/registered-models/alias?name=nope&alias=x",
    );
    assert_eq!(st, 404);
    let (st, _) = post(
        addr,
        "/api/2.0/mlflow/registered-models/create",
        &json!({"name": "m"}),
    );
    assert_eq!(st, 200);
    let (st, e) = get(
        addr,
        "/api/2.0/mlflow/registered-models/alias?name=m&alias=x",
    );
    assert_eq!(
        (st, e["error_code"].as_str()),
        (404, Some("INVALID_PARAMETER_VALUE"))
    );
    let (st, _) = get(addr, "/api/2.0/mlflow-artifacts/artifacts/0/none.txt");
    assert_eq!(st, 404);
    let (st, info) = get(addr, "/api/3.0/mlflow/server-info");
    assert_eq!(
        (st, &info["multipart_uploads_enabled"]),
        (200, &json!(false))
    );
    // A version whose source is not in this store is created, as MLflow creates it, and marked.
    let (st, v) = post(
        addr,
        "/api/2.0/mlflow/model-versions/create",
        &json!({"name": "m", "source": "s3://elsewhere/model"}),
    );
    assert_eq!(st, 200, "{v}");
    assert!(
        v["model_version"]["status_message"]
            .as_str()
            .unwrap()
            .contains("cannot serve")
    );
    let o = Command::new(env!("CARGO_BIN_EXE_mlship"))
        .args(["--home", &home_s, "predict", "models:/m/1"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("cannot be served by mlship"));
}

/// `/openapi.json` lists every route with the methods it takes: each listed method reaches a
/// handler (no 405, no unknown endpoint), each other method is 405.
#[test]
fn the_openapi_document_lists_every_route_and_method() {
    let home = tempfile::tempdir().unwrap();
    let home_s = home.path().display().to_string();
    let server = start(&["--home", &home_s, "server"], &[]);
    let (status, doc) = get(&server.addr, "/openapi.json");
    assert_eq!(status, 200);
    assert_eq!(doc["openapi"], "3.1.0");
    let paths = doc["paths"].as_object().unwrap();
    let mut operations = 0;
    for (path, ops) in paths {
        let concrete: String = path
            .split('/')
            .map(|seg| if seg.starts_with('{') { "x" } else { seg })
            .collect::<Vec<_>>()
            .join("/");
        for method in ["get", "post", "patch", "delete", "put"] {
            let upper = method.to_ascii_uppercase();
            let (status, body) = common::http(
                &server.addr,
                &upper,
                &concrete,
                "application/json",
                if method == "get" { b"" } else { b"{}" },
            );
            if ops.get(method).is_some() {
                operations += 1;
                assert_ne!(status, 405, "{upper} {concrete}: {body}");
                assert_ne!(
                    body["error_code"], "ENDPOINT_NOT_FOUND",
                    "{upper} {concrete}"
                );
            } else {
                assert_eq!(status, 405, "{upper} {concrete} is not listed: {body}");
            }
        }
    }
    assert!(operations >= 60, "only {operations} operations");
}
