//! `mlship image build | push` checked by tools no one here wrote: skopeo reads the archive both as
//! an OCI archive and as a docker archive, umoci unpacks it (checking every digest), runc runs it
//! and the container answers `/health` and `/invocations` with the model's predictions; a push goes
//! to a real registry (Debian's docker-registry, with htpasswd authentication) and skopeo pulls it
//! back byte for byte. `.ci/containers.sh` installs the tools and sets MLSHIP_TEST_CONTAINERS; in
//! CI these tests refuse to be skipped.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::OnceLock;

use serde_json::Value as Json;

const MODEL: &str = "fixtures/corpus/random_forest_classifier/model.pkl";
use common::PASSWORD;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn tools() -> bool {
    if std::env::var_os("MLSHIP_TEST_CONTAINERS").is_some() {
        return true;
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "MLSHIP_TEST_CONTAINERS must be set in CI (.ci/containers.sh installs the tools)"
    );
    eprintln!("skipped: run .ci/containers.sh and set MLSHIP_TEST_CONTAINERS");
    false
}

fn mlship() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_mlship"));
    c.current_dir(root()).env(
        "MLSHIP_HOME",
        std::env::temp_dir().join("mlship-image-test-home"),
    );
    c
}

use common::ok as run;

/// Unpacks an archive's OCI layout into `dir/layout`.
fn layout(archive: &Path, dir: &Path) -> PathBuf {
    let layout = dir.join("layout");
    std::fs::create_dir(&layout).unwrap();
    run(Command::new("tar")
        .arg("-xf")
        .arg(archive)
        .arg("-C")
        .arg(&layout));
    layout
}

/// The mlship under test without its debug info (a test build is ~170 MiB of it): what ships.
fn shipped_binary() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("mlship-image-bin-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let out = dir.join("mlship");
        let stripped = Command::new("strip")
            .arg("-o")
            .arg(&out)
            .arg(env!("CARGO_BIN_EXE_mlship"))
            .status()
            .is_ok_and(|s| s.success());
        if !stripped {
            std::fs::copy(env!("CARGO_BIN_EXE_mlship"), &out).unwrap();
        }
        out
    })
}

/// Builds the corpus forest into `out` as `rf:1`; returns the build's JSON report.
fn build(out: &Path) -> Json {
    let o = run(mlship()
        .args([
            "image", "build", MODEL, "-t", "rf:1", "--name", "rf", "--format", "json",
        ])
        .arg("-o")
        .arg(out)
        .arg("--binary")
        .arg(shipped_binary()));
    serde_json::from_slice(&o.stdout).unwrap()
}

fn skopeo_json(args: &[&str]) -> Json {
    let o = run(Command::new("skopeo").args(args));
    serde_json::from_slice(&o.stdout).unwrap()
}

fn sha256_hex(b: &[u8]) -> String {
    use sha2::Digest;
    hex(&sha2::Sha256::digest(b))
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

#[test]
fn the_archive_is_reproducible_and_read_by_skopeo_as_oci_and_docker() {
    if !tools() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a.tar"), dir.path().join("b.tar"));
    let built = build(&a);
    let again = build(&b);
    assert_eq!(built["digest"], again["digest"], "same inputs, same digest");
    assert_eq!(std::fs::read(&a).unwrap(), std::fs::read(&b).unwrap());

    let oci = format!("oci-archive:{}", a.display());
    let info = skopeo_json(&["inspect", &oci]);
    assert_eq!(info["Digest"], built["digest"]);
    assert_eq!(info["Os"], "linux");
    assert_eq!(info["Layers"].as_array().unwrap().len(), 2);
    let labels = &info["Labels"];
    let model_sha = sha256_hex(&std::fs::read(root().join(MODEL)).unwrap());
    assert_eq!(labels["io.mlship.model.sha256"], model_sha.as_str());
    assert_eq!(labels["io.mlship.model.name"], "rf");
    for key in [
        "org.opencontainers.image.source",
        "org.opencontainers.image.revision",
        "org.opencontainers.image.version",
    ] {
        assert!(labels[key].is_string(), "{key} missing: {labels}");
    }
    let config = skopeo_json(&["inspect", "--config", "--raw", &oci]);
    let c = &config["config"];
    assert_eq!(c["User"], "65532:65532");
    assert!(c["ExposedPorts"]["8080/tcp"].is_object());
    assert_eq!(c["Entrypoint"][1], "serve");
    assert_eq!(c["Healthcheck"]["Test"][2], "health");

    let docker = skopeo_json(&["inspect", &format!("docker-archive:{}", a.display())]);
    assert_eq!(docker["Layers"].as_array().unwrap().len(), 2);
    assert!(built["size"].as_u64().unwrap() < 30 << 20, "{built}");
}

/// A container run by runc, removed when dropped.
struct Container {
    id: String,
    child: Child,
}

impl Drop for Container {
    fn drop(&mut self) {
        let _ = Command::new("runc")
            .args(["kill", &self.id, "KILL"])
            .status();
        let _ = self.child.wait();
        let _ = Command::new("runc")
            .args(["delete", "-f", &self.id])
            .stderr(Stdio::null())
            .status();
    }
}

#[test]
fn umoci_unpacks_it_and_the_container_serves_the_model_under_runc() {
    if !tools() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join("rf.tar");
    build(&archive);
    let layout = layout(&archive, dir.path());
    let bundle = dir.path().join("bundle");
    run(Command::new("umoci")
        .arg("unpack")
        .arg("--image")
        .arg(format!("{}:1", layout.display()))
        .arg(&bundle));
    for file in [
        "usr/local/bin/mlship",
        "etc/mlship/mlship.toml",
        "models/rf/model.pkl",
    ] {
        assert!(bundle.join("rootfs").join(file).is_file(), "{file}");
    }

    // The runtime spec umoci derived from the image: keep it, but share the host's network so
    // the test can reach the server, drop rlimits a sandbox may refuse, and pick a free port.
    let spec_path = bundle.join("config.json");
    let mut spec: Json = serde_json::from_slice(&std::fs::read(&spec_path).unwrap()).unwrap();
    assert_eq!(spec["process"]["user"]["uid"], 65532);
    assert_eq!(spec["process"]["args"][1], "serve");
    let port = common::free_port();
    spec["process"]["terminal"] = false.into();
    spec["process"].as_object_mut().unwrap().remove("rlimits");
    spec["process"]["args"]
        .as_array_mut()
        .unwrap()
        .extend(["--port".into(), port.to_string().into()]);
    spec["linux"]["namespaces"]
        .as_array_mut()
        .unwrap()
        .retain(|n| n["type"] != "network");
    std::fs::write(&spec_path, serde_json::to_vec(&spec).unwrap()).unwrap();

    let id = format!("mlship-test-{}", std::process::id());
    let child = Command::new("runc")
        .arg("run")
        .arg("-b")
        .arg(&bundle)
        .arg(&id)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let container = Container { id, child };
    let addr = format!("127.0.0.1:{port}");
    common::wait_ready(&addr);
    assert_eq!(common::http(&addr, "GET", "/health", "", b"").0, 200);
    let csv =
        std::fs::read(root().join("fixtures/corpus/random_forest_classifier/input.csv")).unwrap();
    let (status, body) = common::http(&addr, "POST", "/invocations", "text/csv", &csv);
    assert_eq!(status, 200, "{body}");
    let expected: Json = serde_json::from_slice(
        &std::fs::read(root().join("fixtures/corpus/random_forest_classifier/expected.json"))
            .unwrap(),
    )
    .unwrap();
    assert_eq!(body["predictions"], expected["predictions"]);
    // The image's health check runs inside the container, as Docker and ECS run it.
    run(Command::new("runc").args([
        "exec",
        &container.id,
        "/usr/local/bin/mlship",
        "health",
        "--url",
        &format!("http://127.0.0.1:{port}/health"),
    ]));
}

fn push(archive: &Path, target: &str, password: Option<&str>, extra: &[&str]) -> Output {
    use std::io::Write;
    let mut c = mlship();
    c.args(["image", "push"])
        .arg(archive)
        .arg(target)
        .args(extra);
    if password.is_some() {
        c.args(["--username", "mlship", "--password-stdin"]);
    }
    let mut child = c
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    if let Some(p) = password {
        stdin.write_all(p.as_bytes()).unwrap();
    }
    drop(stdin);
    child.wait_with_output().unwrap()
}

#[test]
fn push_then_pull_through_a_real_registry_gives_the_same_bytes() {
    if !tools() {
        return;
    }
    let reg = common::registry();
    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join("rf.tar");
    let built = build(&archive);
    let digest = built["digest"].as_str().unwrap();
    let target = format!("{}/team/rf:1", reg.addr);

    for (password, why) in [
        (None, "no credentials"),
        (Some("wrong"), "a wrong password"),
    ] {
        let o = push(&archive, &target, password, &[]);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(1), "{why}: {err}");
        assert!(err.contains("refused the credentials"), "{why}: {err}");
        assert!(err.contains("hint:"), "{why}: {err}");
    }

    // Chunks of 1 MiB: the runtime layer goes up in many PATCH requests, the rest in one PUT each.
    let o = push(
        &archive,
        &target,
        Some(PASSWORD),
        &["--chunk-size", "1048576"],
    );
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success(),
        "{out}{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(out.contains(digest), "{out}");
    assert!(out.contains("3 sent"), "{out}");
    let o = push(&archive, &target, Some(PASSWORD), &[]);
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        out.contains("0 sent") && out.contains("3 already there"),
        "{out}"
    );

    let creds = format!("mlship:{PASSWORD}");
    let remote = format!("docker://{target}");
    let raw = run(Command::new("skopeo").args([
        "inspect",
        "--raw",
        "--tls-verify=false",
        "--creds",
        &creds,
        &remote,
    ]));
    assert_eq!(format!("sha256:{}", sha256_hex(&raw.stdout)), digest);
    let pulled = dir.path().join("pulled");
    run(Command::new("skopeo").args([
        "copy",
        "--quiet",
        "--src-tls-verify=false",
        "--src-creds",
        &creds,
        &remote,
        &format!("oci:{}:1", pulled.display()),
    ]));
    let layout = layout(&archive, dir.path());
    let blobs = pulled.join("blobs/sha256");
    let mut n = 0;
    for e in std::fs::read_dir(&blobs).unwrap() {
        let e = e.unwrap();
        let ours = std::fs::read(layout.join("blobs/sha256").join(e.file_name())).unwrap();
        assert_eq!(
            std::fs::read(e.path()).unwrap(),
            ours,
            "{:?}",
            e.file_name()
        );
        n += 1;
    }
    assert_eq!(n, 4, "manifest, config and two layers");
}

#[test]
fn bad_references_folders_and_registries_fail_with_a_hint() {
    let dir = tempfile::tempdir().unwrap();
    let cases: Vec<(Vec<String>, &str)> = vec![
        (
            vec![
                "image".into(),
                "build".into(),
                "models:/no-such-model@production".into(),
                "-t".into(),
                "x:1".into(),
                "-o".into(),
                dir.path().join("x.tar").display().to_string(),
            ],
            "no-such-model",
        ),
        (
            vec![
                "image".into(),
                "build".into(),
                MODEL.into(),
                "-t".into(),
                "x:1".into(),
                "-o".into(),
                "/no/such/folder/x.tar".into(),
            ],
            "/no/such/folder",
        ),
        (
            vec![
                "image".into(),
                "build".into(),
                MODEL.into(),
                "-t".into(),
                "Bad Tag".into(),
                "-o".into(),
                dir.path().join("x.tar").display().to_string(),
            ],
            "invalid image reference",
        ),
        (
            vec![
                "image".into(),
                "push".into(),
                root().join(MODEL).display().to_string(),
                "localhost:1/x:1".into(),
            ],
            "not an mlship image archive",
        ),
    ];
    for (args, needle) in cases {
        let o = mlship().args(&args).output().unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(1), "{args:?}: {err}");
        assert!(
            err.contains(needle) && err.contains("hint:"),
            "{args:?}: {err}"
        );
    }
    // A registry that is not there.
    let archive = dir.path().join("rf.tar");
    run(mlship()
        .args(["image", "build", MODEL, "-t", "rf:1", "-o"])
        .arg(&archive)
        .arg("--binary")
        .arg(root().join(MODEL)));
    let port = common::free_port();
    let o = push(&archive, &format!("127.0.0.1:{port}/rf:1"), None, &[]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains("cannot reach the registry"), "{err}");
}
