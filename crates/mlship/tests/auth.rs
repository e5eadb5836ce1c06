//! `--auth` on both servers: tokens made by `mlship tokens`, bearer and basic credentials, the
//! roles each route needs, open health probes, the caller recorded as the author of its writes,
//! and the stock `mlflow` client authenticating with its usual variables.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};

use base64::Engine;
use serde_json::Value as Json;

const MODEL: &str = "fixtures/corpus/random_forest_regressor/model.pkl";

fn mlship(home: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_mlship"));
    c.current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
        .env("MLSHIP_HOME", home)
        .env("RUST_LOG", "warn")
        .stderr(Stdio::null());
    c
}

/// Makes a token and returns its secret.
fn token(home: &Path, name: &str, role: &str) -> String {
    let o = mlship(home)
        .args(["tokens", "create", name, "--role", role, "--output", "json"])
        .output()
        .unwrap();
    assert!(o.status.success());
    let doc: Json = serde_json::from_slice(&o.stdout).unwrap();
    let secret = doc["token"].as_str().unwrap().to_string();
    assert!(secret.starts_with("mls_") && secret.len() == 68, "{secret}");
    secret
}

fn call(
    addr: &str,
    method: &str,
    path: &str,
    auth: Option<&str>,
    body: &str,
) -> (u16, String, Json) {
    let mut headers = vec![("Content-Type", "application/json")];
    if let Some(a) = auth {
        headers.push(("Authorization", a));
    }
    let (status, head, body) = common::exchange(addr, method, path, &headers, body.as_bytes());
    (
        status,
        head,
        serde_json::from_str(&body).unwrap_or(Json::String(body)),
    )
}

fn bearer(secret: &str) -> String {
    format!("Bearer {secret}")
}

fn basic(name: &str, secret: &str) -> String {
    let pair = format!("{name}:{secret}");
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(pair)
    )
}

#[test]
fn the_tracking_server_checks_tokens_and_roles() {
    let home = tempfile::tempdir().unwrap();
    let reader = token(home.path(), "reader", "read");
    let writer = token(home.path(), "writer", "write");
    let boss = token(home.path(), "boss", "admin");
    let gone = token(home.path(), "gone", "admin");
    assert!(
        mlship(home.path())
            .args(["tokens", "revoke", "gone"])
            .status()
            .unwrap()
            .success()
    );
    let listed = mlship(home.path())
        .args(["tokens", "list", "--output", "json"])
        .output()
        .unwrap();
    let listed: Json = serde_json::from_slice(&listed.stdout).unwrap();
    assert_eq!(listed.as_array().unwrap().len(), 4);
    assert!(
        !listed.to_string().contains(&reader),
        "secrets are never listed"
    );

    let (mut child, addr) =
        common::spawn(mlship(home.path()).args(["server", "--auth", "--port", "0"]));
    let create = "/api/2.0/mlflow/experiments/create";
    assert_eq!(call(&addr, "GET", "/health", None, "").0, 200);
    let (st, head, body) = call(&addr, "POST", create, None, r#"{"name": "e"}"#);
    assert_eq!(st, 401, "{body}");
    assert_eq!(body["error_code"], "UNAUTHENTICATED");
    assert!(head.contains("www-authenticate: bearer"), "{head}");
    let (st, _, body) = call(
        &addr,
        "POST",
        create,
        Some(&bearer(&reader)),
        r#"{"name": "e"}"#,
    );
    assert_eq!(st, 403, "{body}");
    assert_eq!(body["error_code"], "PERMISSION_DENIED");
    let (st, _, body) = call(
        &addr,
        "POST",
        create,
        Some(&bearer(&writer)),
        r#"{"name": "e"}"#,
    );
    assert_eq!(st, 200, "{body}");
    let exp = body["experiment_id"].as_str().unwrap().to_string();
    // Searches are reads, even sent as POST.
    let (st, _, _) = call(
        &addr,
        "POST",
        "/api/2.0/mlflow/runs/search",
        Some(&bearer(&reader)),
        &format!(r#"{{"experiment_ids": ["{exp}"]}}"#),
    );
    assert_eq!(st, 200);
    // Basic authentication: the token's name and secret; the run is the token's.
    let (st, _, body) = call(
        &addr,
        "POST",
        "/api/2.0/mlflow/runs/create",
        Some(&basic("writer", &writer)),
        &format!(r#"{{"experiment_id": "{exp}", "user_id": "someone-else"}}"#),
    );
    assert_eq!(st, 200, "{body}");
    assert_eq!(body["run"]["info"]["user_id"], "writer");
    let run = body["run"]["info"]["run_id"].as_str().unwrap().to_string();
    let (st, _, _) = call(
        &addr,
        "POST",
        create,
        Some(&basic("boss", &writer)),
        r#"{"name": "f"}"#,
    );
    assert_eq!(st, 401, "a secret under another token's name");
    let delete = format!(r#"{{"run_id": "{run}"}}"#);
    let (st, _, _) = call(
        &addr,
        "POST",
        "/api/2.0/mlflow/runs/delete",
        Some(&bearer(&writer)),
        &delete,
    );
    assert_eq!(st, 403, "deleting needs admin");
    let (st, _, _) = call(
        &addr,
        "POST",
        "/api/2.0/mlflow/runs/delete",
        Some(&bearer(&boss)),
        &delete,
    );
    assert_eq!(st, 200);
    let (st, _, _) = call(
        &addr,
        "GET",
        "/api/2.0/mlflow/experiments/search",
        Some(&bearer(&gone)),
        "",
    );
    assert_eq!(st, 401, "a revoked token");
    let (st, _, _) = call(
        &addr,
        "GET",
        "/api/2.0/mlflow/experiments/search",
        Some("Bearer mls_nonsense"),
        "",
    );
    assert_eq!(st, 401);

    // The web UI's pages hold no data: open. What they call is the API, with its roles.
    for page in ["/", "/ui/app.js", "/ui/uPlot.iife.min.js"] {
        assert_eq!(call(&addr, "GET", page, None, "").0, 200, "{page}");
    }
    let history = "/api/2.0/mlship/registered-models/alias-history?name=m";
    assert_eq!(call(&addr, "GET", history, None, "").0, 401);
    assert_eq!(
        call(&addr, "GET", history, Some(&bearer(&reader)), "").0,
        404,
        "a reader may read (the model does not exist)"
    );
    let rollback = "/api/2.0/mlship/registered-models/rollback";
    let body = r#"{"name": "m", "alias": "a"}"#;
    assert_eq!(
        call(&addr, "POST", rollback, Some(&bearer(&writer)), body).0,
        403,
        "rolling back needs admin"
    );
    assert_eq!(
        call(&addr, "POST", rollback, Some(&bearer(&boss)), body).0,
        404
    );
    let predict = "/api/2.0/mlship/model-versions/predict";
    let body = r#"{"name": "m", "version": "1", "inputs": [[1]]}"#;
    assert_eq!(
        call(&addr, "POST", predict, Some(&bearer(&reader)), body).0,
        404,
        "scoring is a read"
    );

    // The stock client, with its usual variables.
    if let Ok(python) = std::env::var("MLSHIP_TEST_MLFLOW_PYTHON") {
        let script = r#"
import mlflow
from mlflow import MlflowClient
mlflow.set_tracking_uri(__import__("os").environ["URI"])
mlflow.set_experiment("with-auth")
with mlflow.start_run() as run:
    mlflow.log_param("alpha", "0.1")
    mlflow.log_metric("rmse", 0.5, step=1)
got = MlflowClient().get_run(run.info.run_id)
assert got.data.params["alpha"] == "0.1", got
print(got.info.user_id)
"#;
        for (vars, who) in [
            (vec![("MLFLOW_TRACKING_TOKEN", writer.clone())], "writer"),
            (
                vec![
                    ("MLFLOW_TRACKING_USERNAME", "boss".to_string()),
                    ("MLFLOW_TRACKING_PASSWORD", boss.clone()),
                ],
                "boss",
            ),
        ] {
            let o = Command::new(&python)
                .args(["-c", script])
                .env("URI", format!("http://{addr}"))
                .envs(vars)
                .output()
                .unwrap();
            assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
            let out = String::from_utf8_lossy(&o.stdout);
            assert_eq!(out.lines().last(), Some(who), "{out}");
        }
        let o = Command::new(&python)
            .args(["-c", script])
            .env("URI", format!("http://{addr}"))
            .env("MLFLOW_TRACKING_TOKEN", &reader)
            .output()
            .unwrap();
        assert!(!o.status.success(), "a read token cannot log a run");
        assert!(
            String::from_utf8_lossy(&o.stderr).contains("PERMISSION_DENIED"),
            "{}",
            String::from_utf8_lossy(&o.stderr)
        );
    } else {
        assert!(
            std::env::var_os("CI").is_none(),
            "MLSHIP_TEST_MLFLOW_PYTHON must be set in CI (.ci/clients.sh)"
        );
    }
    let _ = child.kill();
    let _ = child.wait();
}

#[test]
fn the_model_server_needs_a_read_token_except_for_probes() {
    let home = tempfile::tempdir().unwrap();
    let reader = token(home.path(), "scorer", "read");
    let (mut child, addr) = common::spawn(mlship(home.path()).args([
        "serve",
        &format!("rf={MODEL}"),
        "--auth",
        "--rate-limit",
        "3",
        "--port",
        "0",
    ]));
    common::wait_ready(&addr);
    let body = common::forest_row();
    for probe in [
        "/ping",
        "/v2/health/live",
        "/v2/health/ready",
        "/",
        "/ui/app.css",
    ] {
        assert_eq!(call(&addr, "GET", probe, None, "").0, 200, "{probe}");
    }
    assert_eq!(call(&addr, "GET", "/models/rf/form", None, "").0, 401);
    let (st, _, err) = call(&addr, "POST", "/models/rf/invocations", None, &body);
    assert_eq!(st, 401);
    assert_eq!(
        err["error_code"], "UNAUTHENTICATED",
        "MLflow's shape on MLflow routes"
    );
    let (st, _, err) = call(&addr, "GET", "/v2/models/rf", None, "");
    assert_eq!(st, 401);
    assert!(err["error"].is_string(), "{err}");
    let (st, _, out) = call(
        &addr,
        "POST",
        "/models/rf/invocations",
        Some(&bearer(&reader)),
        &body,
    );
    assert_eq!(st, 200, "{out}");
    assert!(out["predictions"].is_array());
    assert_eq!(
        call(&addr, "GET", "/metrics", Some(&bearer(&reader)), "").0,
        200
    );
    // Three requests a second, in bursts of three: a quick run of them meets the limit.
    let limited: Vec<(u16, String, Json)> = (0..8)
        .map(|_| {
            call(
                &addr,
                "POST",
                "/models/rf/invocations",
                Some(&bearer(&reader)),
                &body,
            )
        })
        .filter(|(st, _, _)| *st == 429)
        .collect();
    let (_, head, err) = limited.first().expect("some requests over the rate limit");
    assert!(head.contains("retry-after: 1"), "{head}");
    assert_eq!(err["error_code"], "REQUEST_LIMIT_EXCEEDED");
    let _ = child.kill();
    let _ = child.wait();
}
