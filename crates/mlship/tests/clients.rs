//! The server against clients no one here wrote: NVIDIA's `tritonclient` (Open Inference Protocol)
//! and Postman's `newman` running the collection in `tests/clients/`. `.ci/clients.sh` installs
//! both and names them in `MLSHIP_TEST_TRITON_PYTHON` and `MLSHIP_TEST_NEWMAN`; in CI the tests
//! refuse to be skipped.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

struct Server(Child, String);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.0.id().to_string()])
            .stderr(Stdio::null())
            .status();
        let _ = self.0.wait();
    }
}

fn serve() -> Server {
    let home = std::env::temp_dir().join(format!("mlship-clients-{}", std::process::id()));
    let (child, addr) = common::start(
        Command::new(env!("CARGO_BIN_EXE_mlship"))
            .current_dir(root())
            .args([
                "serve",
                "fraud=fixtures/corpus/random_forest_classifier/model.pkl",
                "onehot=fixtures/corpus/pipeline_onehot_logreg/model.joblib",
                "--port",
                "0",
            ])
            .env("MLSHIP_HOME", home),
    );
    Server(child, addr)
}

fn tool(var: &str) -> Option<String> {
    match std::env::var(var) {
        Ok(v) => Some(v),
        Err(_) => {
            assert!(
                std::env::var_os("CI").is_none(),
                "{var} must be set in CI (.ci/clients.sh installs the clients)"
            );
            eprintln!("skipped: set {var} (see .ci/clients.sh)");
            None
        }
    }
}

#[test]
fn tritonclient_speaks_the_open_inference_protocol_with_us() {
    let Some(python) = tool("MLSHIP_TEST_TRITON_PYTHON") else {
        return;
    };
    let srv = serve();
    let o = Command::new(python)
        .arg(root().join("tests/clients/triton_v2.py"))
        .arg(&srv.1)
        .arg(root().join("fixtures/corpus"))
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "tritonclient failed:\n{}\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
}

#[test]
fn the_postman_collection_passes_under_newman() {
    let Some(newman) = tool("MLSHIP_TEST_NEWMAN") else {
        return;
    };
    let srv = serve();
    let o = Command::new(newman)
        .arg("run")
        .arg(root().join("tests/clients/mlship.postman_collection.json"))
        .args([
            "--env-var",
            &format!("baseUrl=http://{}", srv.1),
            "--bail",
            "--disable-unicode",
            "--color",
            "off",
        ])
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "newman failed:\n{}\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
}

#[test]
fn jpmml_evaluator_scores_the_pmml_we_write_as_scikit_learn_did() {
    let Some(python) = tool("MLSHIP_TEST_JPMML_PYTHON") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let mut jobs = Vec::new();
    let mut cases: Vec<PathBuf> = ["fixtures/corpus", "fixtures/extra"]
        .iter()
        .flat_map(|d| std::fs::read_dir(root().join(d)).unwrap())
        .map(|e| e.unwrap().path())
        .filter(|p| p.join("case.json").exists())
        .collect();
    cases.sort();
    for case in cases {
        let info: serde_json::Value =
            serde_json::from_slice(&std::fs::read(case.join("case.json")).unwrap()).unwrap();
        if info.get("library").is_some_and(|l| l != "sklearn") {
            continue;
        }
        let Some(model) = ["model.pkl", "model.joblib"]
            .iter()
            .map(|f| case.join(f))
            .find(|p| p.exists())
        else {
            continue;
        };
        let out = dir.path().join(format!(
            "{}.pmml",
            case.file_name().unwrap().to_string_lossy()
        ));
        let o = Command::new(env!("CARGO_BIN_EXE_mlship"))
            .args(["convert", "--to", "pmml", "--input"])
            .arg(case.join("input.csv"))
            .arg("-o")
            .arg(&out)
            .arg(&model)
            .output()
            .unwrap();
        if o.status.success() {
            jobs.push(serde_json::json!({"pmml": out, "case": case}));
        } else {
            // A refusal says why, and writes nothing.
            let err = String::from_utf8_lossy(&o.stderr);
            assert!(
                err.contains("cannot be written as PMML"),
                "{}: {err}",
                model.display()
            );
            assert!(!out.exists());
        }
    }
    assert!(jobs.len() >= 54, "only {} models converted", jobs.len());
    let list = dir.path().join("jobs.json");
    std::fs::write(&list, serde_json::to_vec(&jobs).unwrap()).unwrap();
    let o = Command::new(python)
        .arg(root().join("tests/clients/jpmml_check.py"))
        .arg(&list)
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
}
