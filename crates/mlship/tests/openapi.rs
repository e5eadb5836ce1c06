//! The servers against their own OpenAPI documents, checked by schemathesis (PyPI) with every check
//! on: no 5xx, every answer in the documented shape and status, schema-valid requests accepted and
//! schema-violating ones refused, `Allow` right on 405s.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

fn case(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fixtures/corpus")
        .join(name)
        .join("model.pkl")
}

/// The schemathesis executable (.ci/containers.sh installs it), or `None` outside CI.
fn schemathesis() -> Option<String> {
    common::peer("MLSHIP_TEST_SCHEMATHESIS", ".ci/containers.sh")
}

/// Runs schemathesis against a server's `/openapi.json` with a fixed seed; the test fails with
/// its report when it finds anything. `config` is a schemathesis.toml to use.
fn check(exe: &str, addr: &str, config: Option<&str>, extra: &[&str]) {
    // It writes its caches into the working folder.
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = Command::new(exe);
    if let Some(c) = config {
        let path = dir.path().join("schemathesis.toml");
        std::fs::write(&path, c).unwrap();
        cmd.arg("--config-file").arg(path);
    }
    let out = cmd
        .args(["run", &format!("http://{addr}/openapi.json")])
        .args([
            "--checks",
            "all",
            "-n",
            "60",
            "--seed",
            "1",
            "--workers",
            "1",
        ])
        .args(["--no-color"])
        .args(extra)
        // Values for the search grammars' formats.
        .env(
            "SCHEMATHESIS_HOOKS",
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/schemathesis/hooks.py"),
        )
        .current_dir(dir.path())
        .output()
        .unwrap();
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "schemathesis found problems:\n{report}{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `mlship serve` with a numeric forest and a pipeline with a categorical column: the document
/// states each model's request shapes exactly, and the server holds to them.
#[test]
fn the_model_server_keeps_to_its_openapi_document() {
    let Some(exe) = schemathesis() else {
        return;
    };
    let home = tempfile::tempdir().unwrap();
    let (server, addr) = common::start(
        Command::new(env!("CARGO_BIN_EXE_mlship"))
            .arg("serve")
            .arg(case("random_forest_classifier"))
            .arg(format!(
                "onehot={}",
                case("pipeline_onehot_logreg").display()
            ))
            .args(["--port", "0"])
            .env("MLSHIP_HOME", home.path()),
    );
    let _server = common::Reaped(server);
    check(&exe, &addr, None, &[]);
}

/// `mlship server`: every check on every route but the multipart-upload ones, which answer 501
/// as MLflow's server does when multipart uploads are off (server-info says so, and the client
/// never calls them). The store holds a registered forest with an alias, an experiment, a run
/// with a metric and a logged model, and schemathesis draws their names half of the time, so
/// its "schema-valid requests are accepted" check reaches past 404s into the handlers.
#[test]
fn the_tracking_server_keeps_to_its_openapi_document() {
    let Some(exe) = schemathesis() else {
        return;
    };
    let home = tempfile::tempdir().unwrap();
    let mlship = || {
        let mut c = Command::new(env!("CARGO_BIN_EXE_mlship"));
        c.env("MLSHIP_HOME", home.path())
            .env_remove("MLSHIP_STORE")
            .env_remove("MLSHIP_ARTIFACTS");
        c
    };
    common::ok(
        mlship()
            .args(["models", "register", "forest"])
            .arg(case("random_forest_classifier")),
    );
    common::ok(mlship().args(["models", "alias", "forest", "prod", "1"]));
    // The tracking server answers as soon as it prints its address.
    let (server, addr) = common::spawn(
        mlship()
            .args(["server", "--port", "0"])
            .stderr(std::process::Stdio::null()),
    );
    let _server = common::Reaped(server);
    let post = |path: &str, body: serde_json::Value| {
        let (status, answer) = common::post_json(&addr, &format!("/api/2.0/mlflow/{path}"), &body);
        assert_eq!(status, 200, "{path}: {answer}");
        answer
    };
    let exp = post("experiments/create", serde_json::json!({"name": "seeded"}))["experiment_id"]
        .as_str()
        .unwrap()
        .to_string();
    let run =
        post("runs/create", serde_json::json!({"experiment_id": exp}))["run"]["info"]["run_id"]
            .as_str()
            .unwrap()
            .to_string();
    post(
        "runs/log-metric",
        serde_json::json!({"run_id": run, "key": "m", "value": 1}),
    );
    let logged = post(
        "logged-models",
        serde_json::json!({"experiment_id": exp, "name": "lm"}),
    )["model"]["info"]["model_id"]
        .as_str()
        .unwrap()
        .to_string();
    // Each seeded value: its dictionary, and the parameters drawn from it half of the time.
    let seeds: [(&str, &str, &[&str]); 8] = [
        ("runs", &run, &["query.run_id", "body.run_id"]),
        (
            "experiments",
            &exp,
            &["query.experiment_id", "body.experiment_id"],
        ),
        ("experiment_names", "seeded", &["query.experiment_name"]),
        ("logged_models", &logged, &["path.model_id"]),
        ("models", "forest", &["query.name"]),
        ("versions", "1", &["query.version"]),
        ("aliases", "prod", &["query.alias"]),
        ("metrics", "m", &["query.metric_key"]),
    ];
    let bind = |param: &str, dict: &str| {
        format!("\"{param}\" = {{ dictionary = \"{dict}\", probability = 0.5 }}")
    };
    let mut config = String::new();
    for (dict, value, _) in &seeds {
        config.push_str(&format!("[dictionaries.{dict}]\nvalues = [\"{value}\"]\n"));
    }
    config.push_str("[parameters]\n");
    for (dict, _, params) in &seeds {
        for p in *params {
            config.push_str(&bind(p, dict));
            config.push('\n');
        }
    }
    // In bodies too, but for the deletes and renames (which would leave the rest nothing to
    // reach) and scoring, whose body must fit the model's signature (the document cannot say
    // which).
    let body: Vec<String> = [
        ("body.name", "models"),
        ("body.version", "versions"),
        ("body.alias", "aliases"),
    ]
    .iter()
    .map(|(p, d)| bind(p, d))
    .collect();
    config.push_str(&format!(
        "[[operations]]\nexclude-path-regex = \"predict|/delete$|/rename$\"\nparameters = {{ {} }}\n",
        body.join(", ")
    ));
    check(
        &exe,
        &addr,
        Some(&config),
        &["--exclude-path-regex", "mpu/"],
    );
}
