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

/// The shell lines of the README's "Deploy to AWS" and "Deploy to Kubernetes" sections.
fn deploy_lines(readme: &str) -> Vec<String> {
    let start = readme
        .find("### Deploy to AWS")
        .expect("the README lost Deploy to AWS");
    let end = start + readme[start..].find("\n## ").unwrap();
    let mut lines = Vec::new();
    let mut in_sh = false;
    for line in readme[start..end].lines() {
        match line {
            "```sh" => in_sh = true,
            "```" => in_sh = false,
            l if in_sh && !l.trim().is_empty() => lines.push(l.to_string()),
            _ => {}
        }
    }
    lines
}

/// Every `mlship` line of the deploy sections runs (the pushes go to a local registry standing in
/// for ECR and the team's registry); the cloud's lines are checked for the files they name.
#[test]
fn the_deploy_sections_run_up_to_the_cloud() {
    if std::env::var_os("MLSHIP_TEST_CONTAINERS").is_none() {
        assert!(
            std::env::var_os("CI").is_none(),
            "MLSHIP_TEST_CONTAINERS must be set in CI"
        );
        eprintln!("skipped: run .ci/containers.sh and set MLSHIP_TEST_CONTAINERS");
        return;
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    let lines = deploy_lines(&readme);
    let reg = common::registry();
    let work = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink(root.join("fixtures"), work.path().join("fixtures")).unwrap();
    let bin = work.path().join("bin");
    std::fs::create_dir(&bin).unwrap();
    std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_mlship"), bin.join("mlship")).unwrap();
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let (mut ran, mut checked) = (0, 0);
    for line in &lines {
        let cmd = line
            .replace("123456789012.dkr.ecr.eu-west-1.amazonaws.com", &reg.addr)
            .replace("registry.example.com", &reg.addr)
            .replace(
                "aws ecr get-login-password --region eu-west-1",
                "printf %s \"$REGISTRY_PASSWORD\"",
            );
        if cmd.starts_with("mlship ") || cmd.contains("| mlship ") {
            let o = Command::new("sh")
                .arg("-c")
                .arg(&cmd)
                .current_dir(work.path())
                .env("PATH", &path)
                .env("MLSHIP_HOME", work.path().join("home"))
                .env("REGISTRY_USER", "mlship")
                .env("REGISTRY_PASSWORD", common::PASSWORD)
                .output()
                .unwrap();
            assert!(
                o.status.success(),
                "{line}\n{}{}",
                String::from_utf8_lossy(&o.stdout),
                String::from_utf8_lossy(&o.stderr)
            );
            ran += 1;
            continue;
        }
        // A cloud command: what it reads must be there.
        let words: Vec<&str> = line.split_whitespace().collect();
        for (i, w) in words.iter().enumerate() {
            let needs = if let Some(f) = w.strip_prefix("file://") {
                Some(work.path().join(f))
            } else if let Some(d) = w.strip_prefix("-chdir=") {
                Some(work.path().join(d).join("main.tf"))
            } else if *w == "-k" {
                Some(work.path().join(words[i + 1]).join("kustomization.yaml"))
            } else {
                None
            };
            if let Some(p) = needs {
                assert!(p.exists(), "{line}: {} is missing", p.display());
                checked += 1;
            }
        }
    }
    assert!(ran >= 7, "ran only {ran} mlship lines of {lines:?}");
    assert!(checked >= 5, "checked only {checked} files");
}
