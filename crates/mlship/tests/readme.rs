//! Every `curl` example in the README runs against a real `mlship serve` and succeeds.

mod common;

use std::path::Path;
use std::process::Command;

#[test]
fn every_curl_example_in_the_readme_runs() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    let examples: Vec<&str> = readme.lines().filter(|l| l.starts_with("curl ")).collect();
    assert!(examples.len() >= 5, "the README lost its curl examples");
    let home = std::env::temp_dir().join(format!("mlship-readme-{}", std::process::id()));
    let (mut child, addr) = common::start(
        Command::new(env!("CARGO_BIN_EXE_mlship"))
            .current_dir(&root)
            .args([
                "serve",
                "fraud=fixtures/corpus/random_forest_classifier/model.pkl",
                "onehot=fixtures/corpus/pipeline_onehot_logreg/model.joblib",
                "--port",
                "0",
            ])
            .env("MLSHIP_HOME", home),
    );
    let mut failures = Vec::new();
    for ex in &examples {
        let cmd = ex.replace("localhost:8080", &addr);
        let o = Command::new("sh")
            .arg("-c")
            .arg(&cmd)
            .current_dir(&root)
            .output()
            .unwrap();
        if !o.status.success() || o.stdout.is_empty() && !ex.contains("/ping") {
            failures.push(format!(
                "{ex}\n  -> {} {}",
                o.status,
                String::from_utf8_lossy(&o.stdout)
            ));
        }
    }
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let _ = child.wait();
    assert!(
        failures.is_empty(),
        "README examples failed:\n{}",
        failures.join("\n")
    );
}
