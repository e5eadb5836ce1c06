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
