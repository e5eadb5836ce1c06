//! `mlship ci render`: the three pipelines pass their systems' checkers (actionlint, zizmor and
//! GitHub's schema; GitLab's schema; Groovy with a declarative-structure check for Jenkins), run
//! the same commands in the same order, and those commands work: the test runs them for real
//! against a local registry, image registry and server, with `kubectl` and `aws` stand-ins that
//! check the files they are given. Bad settings are refused before anything is written.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value as Json;

fn case(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../fixtures/corpus")
        .join(name)
}

const IMAGE: &str = "ghcr.io/acme/mlship-ci@sha256:5f1e2d3c4b5a69788796a5b4c3d2e1f05f1e2d3c4b5a69788796a5b4c3d2e1f0";

/// A repository with a model file, its input example and expected predictions, and an mlship.toml.
fn project(repository: &str, extra_ci: &str) -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    let c = case("pipeline_scaler_logreg");
    std::fs::create_dir_all(d.path().join("data")).unwrap();
    std::fs::copy(c.join("model.pkl"), d.path().join("model.pkl")).unwrap();
    std::fs::copy(c.join("input.csv"), d.path().join("data/example.csv")).unwrap();
    let exp: Json =
        serde_json::from_str(&std::fs::read_to_string(c.join("expected.json")).unwrap()).unwrap();
    std::fs::write(
        d.path().join("data/expected.json"),
        serde_json::json!({"predictions": exp["predictions"], "probabilities": exp["probabilities"]})
            .to_string(),
    )
    .unwrap();
    std::fs::write(
        d.path().join("mlship.toml"),
        format!(
            r#"[deploy]
registry_secret = "mlship-store"
region = "eu-west-1"

[ci]
model = "fraud"
image = "{IMAGE}"
model_file = "model.pkl"
input_example = "data/example.csv"
expected = "data/expected.json"
image_repository = "{repository}"
{extra_ci}
[ci.rollout]
steps = [50, 100]
interval = "200ms"
min_requests = 5
max_error_rate = 0.5
timeout = "60s"
"#
        ),
    )
    .unwrap();
    d
}

fn render(dir: &Path, target: &str) -> std::process::Output {
    common::mlship_in(dir, &["ci", "render", "--target", target], &[])
}

/// The checkers' folder (.ci/containers.sh puts them in its venv) and Groovy, or `None` outside CI.
fn tools() -> Option<(PathBuf, String)> {
    let bin = common::peer("MLSHIP_TEST_CI_TOOLS", ".ci/containers.sh")?;
    let groovy = common::peer("MLSHIP_TEST_GROOVY", ".ci/containers.sh")?;
    Some((PathBuf::from(bin), groovy))
}

fn checked(c: &mut Command, what: &str) -> String {
    common::combined_ok(c.output().unwrap(), what)
}

/// The commands of each job, in order, as GitHub Actions would run them.
fn github_jobs(dir: &Path) -> Vec<(String, Vec<String>)> {
    let doc: Json = serde_yaml_ng::from_str(
        &std::fs::read_to_string(dir.join(".github/workflows/mlship.yml")).unwrap(),
    )
    .unwrap();
    doc["jobs"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(id, job)| {
            let runs = job["steps"]
                .as_array()
                .unwrap()
                .iter()
                .filter_map(|s| s["run"].as_str().map(str::to_string))
                .collect();
            (id.clone(), runs)
        })
        .collect()
}

fn gitlab_commands(dir: &Path) -> Vec<String> {
    let doc: Json =
        serde_yaml_ng::from_str(&std::fs::read_to_string(dir.join(".gitlab-ci.yml")).unwrap())
            .unwrap();
    ["gate", "package", "deploy", "rollback"]
        .iter()
        .flat_map(|j| doc[j]["script"].as_array().unwrap().clone())
        .map(|c| c.as_str().unwrap().to_string())
        .collect()
}

#[test]
fn the_pipelines_pass_their_checkers_and_their_steps_run() {
    let Some((bin, groovy)) = tools() else {
        return;
    };
    if std::env::var_os("MLSHIP_TEST_CONTAINERS").is_none() {
        assert!(
            std::env::var_os("CI").is_none(),
            "MLSHIP_TEST_CONTAINERS must be set in CI"
        );
        return;
    }
    let images = common::registry();
    let repository = format!("{}/acme/fraud", images.addr);
    let p = project(&repository, "");
    let dir = p.path();
    for t in ["github", "gitlab", "jenkins"] {
        common::combined_ok(render(dir, t), t);
    }
    // GitHub: actionlint, zizmor (offline) and the workflow schema.
    let workflow = dir.join(".github/workflows/mlship.yml");
    checked(
        Command::new(bin.join("actionlint"))
            .arg("-no-color")
            .arg(&workflow),
        "actionlint",
    );
    checked(
        Command::new(bin.join("zizmor"))
            .args(["--offline", "--no-progress"])
            .arg(dir.join(".github/workflows")),
        "zizmor",
    );
    let schema = |name: &str, file: &Path, transform: &[&str]| {
        checked(
            Command::new(bin.join("check-jsonschema"))
                .args(["--builtin-schema", name])
                .args(transform)
                .arg(file),
            name,
        )
    };
    schema("vendor.github-workflows", &workflow, &[]);
    schema(
        "vendor.gitlab-ci",
        &dir.join(".gitlab-ci.yml"),
        &["--data-transform", "gitlab-ci"],
    );
    // Jenkins: Groovy syntax and the declarative structure; the checker prints each `sh` step.
    let java = std::fs::canonicalize("/usr/bin/java").unwrap();
    let java_home = java.parent().unwrap().parent().unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/ci/check_jenkinsfile.groovy");
    let out = Command::new(&groovy)
        .arg(&script)
        .arg(dir.join("Jenkinsfile"))
        .env("JAVA_HOME", java_home)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let jenkins: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str::<String>(l).unwrap())
        .map(|s| {
            s.strip_prefix("MLSHIP_COMMIT=\"$GIT_COMMIT\"; ")
                .unwrap()
                .to_string()
        })
        .collect();
    // The checkers catch what they claim to: a misplaced section fails the Jenkins check.
    let broken = dir.join("Jenkinsfile.broken");
    std::fs::write(
        &broken,
        std::fs::read_to_string(dir.join("Jenkinsfile"))
            .unwrap()
            .replace("steps {", "stepz {"),
    )
    .unwrap();
    let out = Command::new(&groovy)
        .arg(&script)
        .arg(&broken)
        .env("JAVA_HOME", java_home)
        .output()
        .unwrap();
    assert!(
        !out.status.success()
            && String::from_utf8_lossy(&out.stderr).contains("'stepz' is not allowed"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // One plan, three systems: the same commands in the same order.
    let jobs = github_jobs(dir);
    let github: Vec<String> = jobs.iter().flat_map(|(_, c)| c.clone()).collect();
    assert_eq!(github, gitlab_commands(dir));
    assert_eq!(github, jenkins);

    // The steps for real: production is version 1 of `fraud`, served and under load.
    let home = tempfile::tempdir().unwrap();
    let stubs = tempfile::tempdir().unwrap();
    let log = stubs.path().join("calls.log");
    std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_mlship"), stubs.path().join("mlship")).unwrap();
    // kubectl: `apply -k DIR` with a kubeconfig file, and DIR must hold a kustomization.
    write_stub(
        stubs.path(),
        "kubectl",
        &format!(
            "[ \"$1 $2\" = 'apply -k' ] && [ -f \"$3/kustomization.yaml\" ] && [ -s \"$KUBECONFIG\" ] || {{ echo \"kubectl: bad call: $*\" >&2; exit 1; }}\necho \"kubectl $*\" >> {}",
            log.display()
        ),
    );
    let env = |c: &mut Command| {
        c.env("MLSHIP_HOME", home.path())
            .env(
                "MLSHIP_STORE",
                format!("sqlite://{}", home.path().join("r.db").display()),
            )
            .env_remove("MLSHIP_ARTIFACTS")
            .env("MLSHIP_COMMIT", "0123456789abcdef0123456789abcdef01234567")
            .env("MLSHIP_REGISTRY_USERNAME", "mlship")
            .env("MLSHIP_REGISTRY_PASSWORD", common::PASSWORD)
            .env("KUBE_CONFIG", "apiVersion: v1\nkind: Config\n")
            .env("RUST_LOG", "warn")
            .env("PATH", path_with(stubs.path()))
            .current_dir(dir);
    };
    let mut register = Command::new(env!("CARGO_BIN_EXE_mlship"));
    env(&mut register);
    let forest = case("random_forest_classifier").join("model.pkl");
    checked(
        register
            .args(["models", "register", "fraud"])
            .arg(&forest)
            .args(["--alias", "production"]),
        "register production",
    );
    let mut serve = Command::new(env!("CARGO_BIN_EXE_mlship"));
    env(&mut serve);
    let (server, addr) = common::start(serve.args(common::SERVE_FRAUD_PRODUCTION));
    let _server = common::Reaped(server);
    let load = common::ScoringLoad::start(&addr);
    let run_job = |id: &str| {
        let (_, commands) = jobs.iter().find(|(j, _)| j == id).unwrap();
        for c in commands {
            let mut sh = Command::new("bash");
            env(&mut sh);
            checked(sh.args(["-e", "-c", c]), c);
        }
    };
    for id in ["gate", "package", "deploy"] {
        run_job(id);
    }
    assert_eq!(load.finish().1, 0, "requests failed during the rollout");
    let production = || {
        let mut show = Command::new(env!("CARGO_BIN_EXE_mlship"));
        env(&mut show);
        let model: Json = serde_json::from_str(&checked(
            show.args(["models", "show", "fraud", "--output", "json"]),
            "show",
        ))
        .unwrap();
        model["aliases"]["production"].clone()
    };
    assert_eq!(production(), 2);
    assert!(
        std::fs::read_to_string(&log)
            .unwrap()
            .contains("kubectl apply -k deploy")
    );
    let deployment = std::fs::read_to_string(dir.join("deploy/deployment.yaml")).unwrap();
    assert!(
        deployment.contains(&format!("{repository}:0123456789abcdef")),
        "{deployment}"
    );
    // The manual job: no rollout running, so production moves back to version 1.
    run_job("rollback");
    assert_eq!(production(), 1);
}

/// PATH with the stand-ins' folder first.
fn path_with(stubs: &Path) -> String {
    format!("{}:{}", stubs.display(), std::env::var("PATH").unwrap())
}

fn write_stub(dir: &Path, name: &str, body: &str) {
    use std::os::unix::fs::PermissionsExt;
    let p = dir.join(name);
    std::fs::write(&p, format!("#!/usr/bin/env bash\nset -eu\n{body}\n")).unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
}

/// ECS: the task definition is registered from the file the render step wrote, then the service
/// moves to it; the `aws` stand-in checks both calls.
#[test]
fn the_ecs_deploy_steps_name_the_files_they_use() {
    let p = project(
        "123456789012.dkr.ecr.eu-west-1.amazonaws.com/fraud",
        "deploy = \"ecs\"\necs_cluster = \"prod\"\n",
    );
    let dir = p.path();
    common::combined_ok(render(dir, "gitlab"), "render");
    let commands = gitlab_commands(dir);
    assert!(
        commands.iter().any(|c| c.starts_with(
            "aws ecr get-login-password --region eu-west-1 | mlship image push image.tar"
        )),
        "{commands:#?}"
    );
    let stubs = tempfile::tempdir().unwrap();
    let log = stubs.path().join("calls.log");
    write_stub(
        stubs.path(),
        "aws",
        &format!(
            "case \"$*\" in\n  *register-task-definition*) for a in \"$@\"; do case $a in file://*) f=${{a#file://}} ;; esac; done; python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert d[\"family\"] == \"fraud\"' \"$f\" ;;\n  *update-service*) [[ \"$*\" == *'--cluster prod --service fraud --task-definition fraud'* ]] ;;\n  *) exit 1 ;;\nesac\necho \"aws $*\" >> {}",
            log.display()
        ),
    );
    std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_mlship"), stubs.path().join("mlship")).unwrap();
    let home = dir.join(".home");
    let forest = case("random_forest_classifier").join("model.pkl");
    common::combined_ok(
        common::mlship_in(
            dir,
            &[
                "models",
                "register",
                "fraud",
                forest.to_str().unwrap(),
                "--alias",
                "production",
            ],
            &[("MLSHIP_HOME", home.as_os_str())],
        ),
        "register",
    );
    let deploy: Vec<&String> = commands
        .iter()
        .filter(|c| c.starts_with("mlship deploy render") || c.starts_with("aws ecs"))
        .collect();
    assert_eq!(deploy.len(), 3, "{deploy:#?}");
    for c in deploy {
        let out = Command::new("bash")
            .args(["-e", "-c", c])
            .current_dir(dir)
            .env("MLSHIP_COMMIT", "abc")
            .env("MLSHIP_HOME", &home)
            .env("RUST_LOG", "warn")
            .env("PATH", path_with(stubs.path()))
            .output()
            .unwrap();
        common::combined_ok(out, c);
    }
    let calls = std::fs::read_to_string(&log).unwrap();
    assert_eq!(calls.lines().count(), 2, "{calls}");
}

/// Settings a pipeline needs are checked before anything is written.
#[test]
fn bad_settings_are_refused_before_anything_is_written() {
    let pinned = format!("image = \"{IMAGE}\"");
    let cases: &[(&str, &str, &str)] = &[
        (
            &pinned,
            "image = \"ghcr.io/acme/ci:latest\"",
            "not pinned by digest",
        ),
        (
            "[ci.rollout]\nsteps = [50, 100]",
            "[ci.rollout]\nsteps = [50, 40]",
            "must rise",
        ),
        (
            "interval = \"200ms\"",
            "interval = \"soon\"",
            "not a duration",
        ),
        (
            "input_example = \"data/example.csv\"",
            "input_example = \"data/nope.csv\"",
            "not a file",
        ),
        (
            "registry_secret = \"mlship-store\"\n",
            "",
            "registry_secret",
        ),
        ("model = \"fraud\"", "model = \"Fraud Model\"", "lowercase"),
        ("[ci]\n", "[ci]\ndeploy = \"ecs\"\n", "needs ecs_cluster"),
        (
            "[ci]\n",
            "[ci]\nbranchz = \"x\"\n",
            "unknown field `branchz`",
        ),
    ];
    for (from, to, says) in cases {
        let p = project("registry.example.com/acme/fraud", "");
        let path = p.path().join("mlship.toml");
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains(from), "{from}");
        std::fs::write(&path, text.replacen(from, to, 1)).unwrap();
        let out = render(p.path(), "github");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{to}: {err}");
        assert!(
            err.starts_with("error: ") && err.contains(says),
            "{to}: {err}"
        );
        assert!(!p.path().join(".github").exists());
    }
    let empty = tempfile::tempdir().unwrap();
    std::fs::write(empty.path().join("mlship.toml"), "").unwrap();
    let out = render(empty.path(), "jenkins");
    assert!(String::from_utf8_lossy(&out.stderr).contains("has no [ci] section"));
}
