//! `mlship deploy render` and `mlship dockerfile` checked by validators no one here wrote: the
//! Kubernetes OpenAPI schemas (`kubernetes-validate --strict`), the ECS API model (botocore's
//! parameter validator), `terraform fmt -check` and an HCL parser (hcl-rs). The config a
//! Kubernetes ConfigMap carries is served by the real binary. `.ci/containers.sh` installs the
//! validators; in CI these tests refuse to be skipped.

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value as Json;

const MODEL: &str = "fixtures/corpus/random_forest_classifier/model.pkl";

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn tool(var: &str) -> Option<String> {
    match std::env::var(var) {
        Ok(v) => Some(v),
        Err(_) => {
            assert!(
                std::env::var_os("CI").is_none() || var == "MLSHIP_TEST_TERRAFORM",
                "{var} must be set in CI (.ci/containers.sh installs the validators)"
            );
            eprintln!("skipped: set {var} (see .ci/containers.sh)");
            None
        }
    }
}

fn mlship(home: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_mlship"));
    c.current_dir(root()).env("MLSHIP_HOME", home);
    c
}

use common::ok;

fn render(home: &Path, target: &str, model: &str, out: &Path, extra: &[&str]) -> Output {
    mlship(home)
        .args(["deploy", "render", "--target", target, model, "-o"])
        .arg(out)
        .args(extra)
        .output()
        .unwrap()
}

/// Checks manifests against Kubernetes' own schemas (`kubernetes-validate --strict`).
fn kubernetes_validate(dir: &Path, files: &[&str]) {
    let Some(validate) = tool("MLSHIP_TEST_KUBERNETES_VALIDATE") else {
        return;
    };
    let o = Command::new(&validate)
        .args(["-k", "1.33.0", "--strict"])
        .args(files)
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
}

const CONFIG: &str = r#"
[deploy]
namespace = "models"
replicas = 3
max_replicas = 6
cpu_millis = 1024
memory_mib = 2048
region = "eu-west-1"
registry_secret = "mlship-registry"

[[deployment]]
name = "fraud"
routes = [{ model = "models:/fraud@production", weight = 100 }]
"#;

#[test]
fn kubernetes_manifests_pass_the_schemas_and_their_config_serves() {
    let home = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    ok(mlship(home.path()).args([
        "models",
        "register",
        "fraud",
        MODEL,
        "--alias",
        "production",
    ]));
    let config = dir.path().join("mlship.toml");
    std::fs::write(&config, CONFIG).unwrap();

    // Baked into the image (a file), and served from the shared registry (models:/ + secret).
    let baked = dir.path().join("baked");
    let shared = dir.path().join("shared");
    let o = render(
        home.path(),
        "kubernetes",
        MODEL,
        &baked,
        &["--image", "localhost:5000/rf:1"],
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let o = render(
        home.path(),
        "kubernetes",
        "models:/fraud@production",
        &shared,
        &[
            "--image",
            "localhost:5000/rf:1",
            "--config",
            config.to_str().unwrap(),
        ],
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let files = [
        "configmap.yaml",
        "deployment.yaml",
        "service.yaml",
        "hpa.yaml",
        "pdb.yaml",
    ];
    kubernetes_validate(&baked, &files);
    kubernetes_validate(&shared, &files);
    let read = |d: &Path, f: &str| -> serde_yaml_ng::Value {
        serde_yaml_ng::from_str(&std::fs::read_to_string(d.join(f)).unwrap()).unwrap()
    };
    let dep = read(&shared, "deployment.yaml");
    assert_eq!(dep["metadata"]["namespace"], "models");
    assert_eq!(dep["spec"]["replicas"], 3);
    let c = &dep["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(c["envFrom"][0]["secretRef"]["name"], "mlship-registry");
    assert_eq!(c["resources"]["requests"]["cpu"], "1024m");
    assert_eq!(read(&shared, "hpa.yaml")["spec"]["maxReplicas"], 6);
    let kustomization = std::fs::read_to_string(shared.join("kustomization.yaml")).unwrap();
    for f in files {
        assert!(kustomization.contains(f), "{kustomization}");
    }
    let baked_toml = read(&baked, "configmap.yaml")["data"]["mlship.toml"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        baked_toml.contains("model=/models/model/model.pkl"),
        "{baked_toml}"
    );

    // The shared deployment's config, as the ConfigMap mounts it, serves from the registry.
    let served = dir.path().join("served.toml");
    let toml = read(&shared, "configmap.yaml")["data"]["mlship.toml"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(toml.contains("fraud=models:/fraud@production") && toml.contains("[[deployment]]"));
    std::fs::write(&served, toml).unwrap();
    let (mut child, addr) = common::start(
        mlship(home.path())
            .args(["serve", "--host", "127.0.0.1", "--port", "0", "--config"])
            .arg(&served),
    );
    let (status, _) = common::http(&addr, "GET", "/v2/models/fraud/ready", "", b"");
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(status, 200);
}

/// The tracking server's manifests pass the schemas, and the command its Deployment runs is one
/// `mlship server` accepts: run with the manifest's own arguments (on a free port), it answers its
/// probe.
#[test]
fn the_tracking_server_renders_for_kubernetes_and_its_command_serves() {
    let home = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("mlship.toml");
    std::fs::write(&config, CONFIG).unwrap();
    let out = dir.path().join("tracking");
    // The helper's model argument is the flag here: the server takes the model's place.
    let config_s = config.to_str().unwrap();
    let image = ["--image", "localhost:5000/mlship:1", "--config", config_s];
    let o = render(home.path(), "kubernetes", "--tracking-server", &out, &image);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let files = [
        "deployment.yaml",
        "service.yaml",
        "pdb.yaml",
        "secret.example.yaml",
    ];
    kubernetes_validate(&out, &files);
    let read = |f: &str| -> serde_yaml_ng::Value {
        serde_yaml_ng::from_str(&std::fs::read_to_string(out.join(f)).unwrap()).unwrap()
    };
    let dep = read("deployment.yaml");
    assert_eq!(dep["metadata"]["name"], "mlship-server");
    assert_eq!(dep["metadata"]["namespace"], "models");
    let c = &dep["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(c["envFrom"][0]["secretRef"]["name"], "mlship-registry");
    assert_eq!(
        read("secret.example.yaml")["metadata"]["name"],
        "mlship-registry"
    );
    assert_eq!(read("service.yaml")["spec"]["ports"][0]["port"], 5000);
    let strings = |v: &serde_yaml_ng::Value| -> Vec<String> {
        v.as_sequence()
            .unwrap()
            .iter()
            .map(|s| s.as_str().unwrap().to_string())
            .collect()
    };
    let command = strings(&c["command"]);
    assert_eq!(command[0], "/usr/local/bin/mlship");
    let mut args: Vec<String> = command[1..].to_vec();
    args.extend(strings(&c["args"]));
    let port = args.iter().position(|a| a == "--port").unwrap() + 1;
    args[port] = "0".into();
    let host = args.iter().position(|a| a == "--host").unwrap() + 1;
    args[host] = "127.0.0.1".into();
    let (mut child, addr) = common::spawn(mlship(home.path()).args(&args));
    let probe = c["readinessProbe"]["httpGet"]["path"].as_str().unwrap();
    let (status, _) = common::http(&addr, "GET", probe, "", b"");
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(status, 200);

    // Only Kubernetes, and a model or the server, not both.
    let o = render(
        home.path(),
        "ecs",
        "--tracking-server",
        &out,
        &["--image", "x:1"],
    );
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(
        err.contains("Kubernetes only") && err.contains("hint:"),
        "{err}"
    );
    let o = render(
        home.path(),
        "kubernetes",
        MODEL,
        &out,
        &["--tracking-server"],
    );
    assert!(!o.status.success());
}

#[test]
fn ecs_files_are_valid_requests_of_the_ecs_api() {
    let home = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("ecs");
    let o = render(
        home.path(),
        "ecs",
        MODEL,
        &out,
        &[
            "--image",
            "123456789012.dkr.ecr.eu-west-1.amazonaws.com/rf:1",
            "--name",
            "rf",
        ],
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let task: Json =
        serde_json::from_slice(&std::fs::read(out.join("task-definition.json")).unwrap()).unwrap();
    let c = &task["containerDefinitions"][0];
    assert_eq!(c["healthCheck"]["command"][2], "health");
    assert_eq!(c["logConfiguration"]["options"]["awslogs-group"], "/ecs/rf");
    let service: Json =
        serde_json::from_slice(&std::fs::read(out.join("service.json")).unwrap()).unwrap();
    assert_eq!(
        service["deploymentConfiguration"]["deploymentCircuitBreaker"]["enable"],
        true
    );
    if let Some(python) = tool("MLSHIP_TEST_DEPLOY_PYTHON") {
        let o = Command::new(python)
            .arg(root().join("crates/mlship/tests/deploy/validate_ecs.py"))
            .arg(out.join("task-definition.json"))
            .arg(out.join("service.json"))
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stdout));
    }
}

/// The names of `kind` blocks (resource, variable, output) of an HCL body, with their labels.
fn blocks(body: &hcl::Body, kind: &str) -> BTreeSet<String> {
    body.blocks()
        .filter(|b| b.identifier() == kind)
        .map(|b| {
            b.labels()
                .iter()
                .map(|l| l.as_str().to_string())
                .collect::<Vec<_>>()
                .join(".")
        })
        .collect()
}

#[test]
fn terraform_is_formatted_parses_and_declares_what_aws_needs() {
    let home = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("tf");
    let o = render(
        home.path(),
        "terraform",
        MODEL,
        &out,
        &["--name", "rf", "--image", "x/rf:7"],
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    if let Some(terraform) = tool("MLSHIP_TEST_TERRAFORM") {
        let o = Command::new(terraform)
            .args(["fmt", "-check", "-recursive"])
            .current_dir(&out)
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "not terraform fmt clean: {}",
            String::from_utf8_lossy(&o.stdout)
        );
    }
    let parse = |f: &str| -> hcl::Body {
        hcl::parse(&std::fs::read_to_string(out.join(f)).unwrap())
            .unwrap_or_else(|e| panic!("{f}: {e}"))
    };
    let main = parse("main.tf");
    let resources = blocks(&main, "resource");
    for r in [
        "aws_ecr_repository.this",
        "aws_ecr_lifecycle_policy.this",
        "aws_ecs_cluster.this",
        "aws_ecs_task_definition.this",
        "aws_ecs_service.this",
        "aws_lb.this",
        "aws_lb_target_group.this",
        "aws_lb_listener.http",
        "aws_iam_role.execution",
        "aws_cloudwatch_log_group.this",
        "aws_security_group.lb",
        "aws_security_group.service",
    ] {
        assert!(resources.contains(r), "{r} missing from {resources:?}");
    }
    let variables = parse("variables.tf");
    let declared = blocks(&variables, "variable");
    let required: BTreeSet<String> = variables
        .blocks()
        .filter(|b| b.identifier() == "variable")
        .filter(|b| !b.body().attributes().any(|a| a.key() == "default"))
        .map(|b| b.labels()[0].as_str().to_string())
        .collect();
    let tfvars = parse("terraform.tfvars");
    let set: BTreeSet<String> = tfvars.attributes().map(|a| a.key().to_string()).collect();
    assert!(
        set.is_subset(&declared),
        "undeclared: {:?}",
        set.difference(&declared)
    );
    assert!(
        required.is_subset(&set),
        "unset: {:?}",
        required.difference(&set)
    );
    let tag = tfvars
        .attributes()
        .find(|a| a.key() == "image_tag")
        .unwrap();
    assert_eq!(tag.expr().to_string(), "\"7\"");
    assert!(blocks(&parse("outputs.tf"), "output").contains("repository_url"));
}

#[test]
fn the_dockerfile_context_holds_what_the_dockerfile_copies() {
    let home = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("ctx");
    ok(mlship(home.path())
        .args(["dockerfile", MODEL, "--name", "rf", "-o"])
        .arg(&out));
    let text = std::fs::read_to_string(out.join("Dockerfile")).unwrap();
    let mut froms = 0;
    for line in text.lines() {
        let mut words = line.split_whitespace();
        match words.next() {
            Some("FROM") => froms += 1,
            Some("COPY") => {
                let args: Vec<&str> = words.filter(|w| !w.starts_with("--chmod")).collect();
                if !args[0].starts_with("--from") {
                    assert!(
                        out.join(args[0]).exists(),
                        "COPY {} is not in the context",
                        args[0]
                    );
                }
            }
            Some(word @ ("ENTRYPOINT" | "CMD" | "RUN")) => {
                let json = line.split_once(' ').unwrap().1;
                let v: Vec<String> = serde_json::from_str(json).unwrap();
                assert!(word == "CMD" || v[0].starts_with('/'), "{line}");
            }
            Some("HEALTHCHECK") => {
                let json = line.split_once("CMD ").unwrap().1;
                let _: Vec<String> = serde_json::from_str(json).unwrap();
            }
            _ => {}
        }
    }
    assert_eq!(froms, 2, "multi-stage");
    // What stage 1 runs, run here on the context's own files.
    let o = ok(Command::new(out.join("mlship"))
        .args(["inspect", "--output", "json"])
        .arg(out.join("models/rf/model.pkl")));
    let v: Json = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["task"], "classification");
    let toml = std::fs::read_to_string(out.join("mlship.toml")).unwrap();
    assert!(toml.contains("rf=/models/rf/model.pkl"), "{toml}");
}

#[test]
fn bad_input_exits_1_naming_the_problem() {
    let home = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let bad_config = dir.path().join("bad.toml");
    std::fs::write(&bad_config, "[deploy]\nreplicaz = 2\n").unwrap();
    let bad_cpu = dir.path().join("cpu.toml");
    std::fs::write(&bad_cpu, "[deploy]\ncpu_millis = 300\n").unwrap();
    let a_file = dir.path().join("file");
    std::fs::write(&a_file, "x").unwrap();
    let out = dir.path().join("out").display().to_string();
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (
            vec![
                "kubernetes",
                "models:/nope@production",
                "--image",
                "x:1",
                "-o",
                &out,
            ],
            "nope",
        ),
        (vec!["kubernetes", MODEL, "-o", &out], "--image"),
        (
            vec![
                "kubernetes",
                MODEL,
                "--image",
                "x:1",
                "--config",
                bad_config.to_str().unwrap(),
                "-o",
                &out,
            ],
            "replicaz",
        ),
        (
            vec![
                "ecs",
                MODEL,
                "--image",
                "x:1",
                "--config",
                bad_cpu.to_str().unwrap(),
                "-o",
                &out,
            ],
            "Fargate",
        ),
        (
            vec![
                "terraform",
                MODEL,
                "--name",
                "a-very-long-service-name-indeed",
                "-o",
                &out,
            ],
            "25 characters",
        ),
        (
            vec![
                "kubernetes",
                MODEL,
                "--image",
                "x:1",
                "--name",
                "Bad_Name",
                "-o",
                &out,
            ],
            "Bad_Name",
        ),
    ];
    for (args, needle) in cases {
        let o = mlship(home.path())
            .args(["deploy", "render", "--target"])
            .args(&args)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(1), "{args:?}: {err}");
        assert!(
            err.contains(needle) && err.contains("hint:"),
            "{args:?}: {err}"
        );
    }
    let o = mlship(home.path())
        .args([
            "deploy", "render", "--target", "ecs", MODEL, "--image", "x:1", "-o",
        ])
        .arg(a_file.join("sub"))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains("cannot write into"), "{err}");
}
