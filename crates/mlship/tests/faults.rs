//! The shared registry going away and coming back under traffic: a TCP proxy stands between the
//! servers and PostgreSQL (or S3), and the test cuts it. Scoring of loaded models never fails; the
//! tracking server's writes answer 503 with a clear message while the database is away, its
//! health probe stays up, and everything works again once the database is back. And a disk that
//! fills during a registration: nothing half-written, the registry as it was.

mod common;

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::reg::{Reg, cmd, json};
use serde_json::{Value as Json, json};

/// A TCP proxy to `upstream` that can be cut (every open connection closed, new ones closed at
/// once) and restored.
struct Proxy {
    addr: String,
    up: Arc<AtomicBool>,
    open: Arc<Mutex<Vec<TcpStream>>>,
}

impl Proxy {
    fn start(upstream: String) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let up = Arc::new(AtomicBool::new(true));
        let open: Arc<Mutex<Vec<TcpStream>>> = Arc::new(Mutex::new(Vec::new()));
        let (up2, open2) = (up.clone(), open.clone());
        std::thread::spawn(move || {
            for client in listener.incoming().flatten() {
                if !up2.load(Ordering::SeqCst) {
                    let _ = client.shutdown(Shutdown::Both);
                    continue;
                }
                let Ok(server) = TcpStream::connect(&upstream) else {
                    continue;
                };
                let mut list = open2.lock().unwrap();
                list.push(client.try_clone().unwrap());
                list.push(server.try_clone().unwrap());
                for (mut from, mut to) in [
                    (client.try_clone().unwrap(), server.try_clone().unwrap()),
                    (server, client),
                ] {
                    std::thread::spawn(move || {
                        let mut buf = [0u8; 16 << 10];
                        while let Ok(n) = from.read(&mut buf) {
                            if n == 0 || to.write_all(&buf[..n]).is_err() {
                                break;
                            }
                        }
                        let _ = to.shutdown(Shutdown::Both);
                    });
                }
            }
        });
        Proxy { addr, up, open }
    }

    /// The database goes away: open connections are cut, new ones are closed at once.
    fn cut(&self) {
        self.up.store(false, Ordering::SeqCst);
        for s in self.open.lock().unwrap().drain(..) {
            let _ = s.shutdown(Shutdown::Both);
        }
    }

    fn restore(&self) {
        self.up.store(true, Ordering::SeqCst);
    }
}

fn create_experiment(addr: &str, name: &str) -> (u16, Json) {
    common::post_json(
        addr,
        "/api/2.0/mlflow/experiments/create",
        &json!({ "name": name }),
    )
}

#[test]
fn postgres_going_away_and_coming_back_under_traffic() {
    let Some(h) = common::reg::postgres() else {
        return;
    };
    // The same registry, reached through the proxy.
    let (prefix, rest) = h.store.split_once('@').unwrap();
    let (hostport, db) = rest.split_once('/').unwrap();
    let proxy = Proxy::start(hostport.to_string());
    let through = Reg {
        _home: tempfile::tempdir().unwrap(),
        home: h.home.clone(),
        store: format!("{prefix}@{}/{db}", proxy.addr),
        artifacts: h.artifacts.clone(),
    };
    let forest = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fixtures/corpus/random_forest_classifier/model.pkl");
    json(
        &through,
        &[
            "models",
            "register",
            "fraud",
            forest.to_str().unwrap(),
            "--alias",
            "production",
        ],
    );
    let (serve, serve_addr) = common::start(&mut cmd(&through, &common::SERVE_FRAUD_PRODUCTION));
    let _serve = common::Reaped(serve);
    let (tracking, tracking_addr) = common::spawn(
        cmd(&through, &["server", "--port", "0"]).stderr(std::process::Stdio::null()),
    );
    let _tracking = common::Reaped(tracking);
    assert_eq!(create_experiment(&tracking_addr, "before").0, 200);

    // Scoring under load the whole time.
    let load = common::ScoringLoad::start(&serve_addr);
    std::thread::sleep(Duration::from_millis(300));
    proxy.cut();
    std::thread::sleep(Duration::from_millis(500));
    let (st, body) = create_experiment(&tracking_addr, "during");
    assert_eq!(st, 503, "{body}");
    assert_eq!(body["error_code"], "TEMPORARILY_UNAVAILABLE", "{body}");
    assert!(
        body["message"]
            .as_str()
            .unwrap_or("")
            .contains("unavailable"),
        "{body}"
    );
    let (st, _, _) = common::exchange(&tracking_addr, "GET", "/health", &[], b"");
    assert_eq!(st, 200, "the probe stays up");
    std::thread::sleep(Duration::from_millis(700));
    proxy.restore();
    // Writes work again once the database is back (the pool drops the dead connections).
    let mut back = false;
    for _ in 0..50 {
        if create_experiment(&tracking_addr, "after").0 == 200 {
            back = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(back, "writes never came back");
    std::thread::sleep(Duration::from_millis(300));
    let (ok, failed) = load.finish();
    assert_eq!(
        failed, 0,
        "{failed} scoring requests failed ({ok} succeeded)"
    );
    assert!(ok > 50, "only {ok} requests");
}

/// The same with the artifact store: S3 (moto) cut and restored through a proxy. Loaded models
/// keep scoring; an artifact upload answers 503 naming the store once its retries give up, and
/// succeeds again after.
#[test]
fn s3_going_away_and_coming_back_under_traffic() {
    let Some(h) = common::reg::postgres() else {
        return;
    };
    let endpoint = std::env::var("AWS_ENDPOINT_URL").expect("the S3 test server's endpoint");
    let proxy = Proxy::start(
        endpoint
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .to_string(),
    );
    let through = format!("http://{}", proxy.addr);
    let forest = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fixtures/corpus/random_forest_classifier/model.pkl");
    json(
        &h,
        &[
            "models",
            "register",
            "fraud",
            forest.to_str().unwrap(),
            "--alias",
            "production",
        ],
    );
    let (serve, serve_addr) =
        common::start(cmd(&h, &common::SERVE_FRAUD_PRODUCTION).env("AWS_ENDPOINT_URL", &through));
    let _serve = common::Reaped(serve);
    let (tracking, tracking_addr) = common::spawn(
        cmd(&h, &["server", "--port", "0"])
            .env("AWS_ENDPOINT_URL", &through)
            .stderr(std::process::Stdio::null()),
    );
    let _tracking = common::Reaped(tracking);
    let put = || {
        common::http(
            &tracking_addr,
            "PUT",
            "/api/2.0/mlflow-artifacts/artifacts/0/r/artifacts/notes.txt",
            "text/plain",
            b"hello",
        )
    };
    assert_eq!(put().0, 200);
    let load = common::ScoringLoad::start(&serve_addr);
    proxy.cut();
    let (st, body) = put();
    assert_eq!(st, 503, "{body}");
    assert_eq!(body["error_code"], "TEMPORARILY_UNAVAILABLE", "{body}");
    proxy.restore();
    let mut back = false;
    for _ in 0..50 {
        if put().0 == 200 {
            back = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(back, "uploads never came back");
    let (ok, failed) = load.finish();
    assert_eq!(
        failed, 0,
        "{failed} scoring requests failed ({ok} succeeded)"
    );
    assert!(ok > 50, "only {ok} requests");
}

/// Runs `script` with `sh` in a user and mount namespace of its own, where it may mount a small
/// tmpfs: a disk that fills, without touching the machine's. `None` where namespaces are not
/// allowed (CI has them: runc runs there).
#[cfg(target_os = "linux")]
fn in_namespace(script: &str, env: &[(&str, &std::path::Path)]) -> Option<std::process::Output> {
    let works = std::process::Command::new("unshare")
        .args(["-Urm", "true"])
        .status()
        .is_ok_and(|s| s.success());
    if !works {
        assert!(
            std::env::var_os("CI").is_none(),
            "`unshare -Urm` must work in CI (the full-disk test mounts a tmpfs in a namespace)"
        );
        return None;
    }
    let mut c = std::process::Command::new("unshare");
    c.args(["-Urm", "sh", "-c", script]);
    for (k, v) in env {
        c.env(k, v);
    }
    Some(c.output().unwrap())
}

/// A registration meeting a full disk, whether the model's file or the database's write is what
/// does not fit: exit 1 with the reason and the hint to free space; no partial file anywhere, no
/// new version and the aliases where they were; once there is room, the same command works.
#[cfg(target_os = "linux")]
#[test]
fn a_full_disk_during_a_registration_leaves_the_registry_as_it_was() {
    let root = std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."));
    let small = root.join("fixtures/corpus/pipeline_scaler_logreg/model.pkl");
    let big = root.join("fixtures/corpus/random_forest_regressor/model.pkl");
    // Free space left: less than the model (its file fails), then room for the file but not
    // for the database's write (found by trying on a 2 MiB tmpfs; either failure must be clean).
    for free_kib in [100, 440] {
        let d = tempfile::tempdir().unwrap();
        let (home, out) = (d.path().join("home"), d.path().join("out"));
        std::fs::create_dir_all(&home).unwrap();
        std::fs::create_dir_all(&out).unwrap();
        let script = format!(
            r#"
set -u
mount -t tmpfs -o size=2m tmpfs "$H" || exit 90
export MLSHIP_HOME="$H"
"$M" models register fraud "$SMALL" --alias production >/dev/null || exit 91
dd if=/dev/zero of="$H/filler" bs=4k 2>/dev/null
truncate -s -{free_kib}K "$H/filler"
"$M" models register fraud "$BIG" --alias production --alias candidate 2>"$OUT/err"
echo $? >"$OUT/code"
find "$H" -type f ! -name filler ! -name 'registry.db*' ! -path '*/sha256/*' >"$OUT/stray"
"$M" models versions fraud --output json >"$OUT/versions" 2>&1
"$M" models show fraud --output json >"$OUT/model" 2>&1
rm "$H/filler"
"$M" models register fraud "$BIG" --alias production --alias candidate >/dev/null 2>"$OUT/err2"
echo $? >"$OUT/code2"
"$M" models show fraud --output json >"$OUT/model2" 2>&1
"#
        );
        let mlship = std::path::PathBuf::from(env!("CARGO_BIN_EXE_mlship"));
        let Some(o) = in_namespace(
            &script,
            &[
                ("H", &home),
                ("OUT", &out),
                ("M", &mlship),
                ("SMALL", &small),
                ("BIG", &big),
            ],
        ) else {
            return;
        };
        let read = |f: &str| std::fs::read_to_string(out.join(f)).unwrap_or_default();
        assert!(
            o.status.success(),
            "{free_kib} KiB: the script failed ({:?}): {}",
            o.status.code(),
            String::from_utf8_lossy(&o.stderr)
        );
        let err = read("err");
        assert_eq!(read("code").trim(), "1", "{free_kib} KiB: {err}");
        assert!(
            err.starts_with("error: ") && (err.contains("full") || err.contains("No space left")),
            "{free_kib} KiB: {err}"
        );
        assert!(
            err.contains("hint: free some space"),
            "{free_kib} KiB: {err}"
        );
        assert_eq!(read("stray"), "", "{free_kib} KiB: files left behind");
        let versions: Json = serde_json::from_str(&read("versions")).unwrap_or_else(|e| {
            panic!("{free_kib} KiB: {e}: {}", read("versions"));
        });
        assert_eq!(versions.as_array().unwrap().len(), 1, "{versions}");
        let model: Json = serde_json::from_str(&read("model")).unwrap();
        assert_eq!(model["aliases"], json!({"production": 1}), "{model}");
        assert_eq!(read("code2").trim(), "0", "{}", read("err2"));
        let model: Json = serde_json::from_str(&read("model2")).unwrap();
        assert_eq!(
            model["aliases"],
            json!({"production": 2, "candidate": 2}),
            "{model}"
        );
    }
}
