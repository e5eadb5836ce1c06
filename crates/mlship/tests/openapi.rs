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
/// its report when it finds anything.
fn check(exe: &str, addr: &str, extra: &[&str]) {
    // It writes its caches into the working folder.
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(exe)
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
    check(&exe, &addr, &[]);
}

/// `mlship server`: every check but one on every route but the multipart-upload ones. Left out,
/// and why: the multipart routes answer 501, as MLflow's server does when multipart uploads are
/// off (server-info says so, and the client never calls them); and "schema-valid requests are
/// accepted" needs each MLflow request's fields in the document, which lists the routes, their
/// methods and path parameters but not yet their bodies' fields.
#[test]
fn the_tracking_server_keeps_to_its_openapi_document() {
    let Some(exe) = schemathesis() else {
        return;
    };
    let home = tempfile::tempdir().unwrap();
    // The tracking server answers as soon as it prints its address.
    let (server, addr) = common::spawn(
        Command::new(env!("CARGO_BIN_EXE_mlship"))
            .args(["server", "--port", "0"])
            .env("MLSHIP_HOME", home.path())
            .env_remove("MLSHIP_STORE")
            .env_remove("MLSHIP_ARTIFACTS")
            .stderr(std::process::Stdio::null()),
    );
    let _server = common::Reaped(server);
    check(
        &exe,
        &addr,
        &[
            "--exclude-checks",
            "positive_data_acceptance",
            "--exclude-path-regex",
            "mpu/",
        ],
    );
}
