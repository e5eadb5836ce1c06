//! The registry from the command line: lifecycle, JSON shapes, refusals, concurrent writers, and
//! writers killed at random moments (every listed version must still load and score).

mod common;

use common::reg::{Reg, cmd, fails, json, run, sqlite};

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde_json::Value as Json;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn case(name: &str) -> PathBuf {
    root().join("fixtures/corpus").join(name)
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn expected(name: &str) -> Json {
    serde_json::from_str(&std::fs::read_to_string(case(name).join("expected.json")).unwrap())
        .unwrap()
}

fn predictions(home: &Reg, reference: &str, input: &Path) -> Json {
    let o = run(home, &["predict", reference, "--input", s(input)]);
    assert!(
        o.status.success(),
        "{reference}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    serde_json::from_slice::<Json>(&o.stdout).unwrap()["predictions"].clone()
}

on_both!(lifecycle, lifecycle_on_sqlite, lifecycle_on_postgres_and_s3);

fn lifecycle(h: &Reg) {
    let rf = case("random_forest_classifier");
    let reg1 = json(
        h,
        &[
            "models",
            "register",
            "fraud",
            s(&rf.join("model.pkl")),
            "--tag",
            "team=risk",
            "--description",
            "first",
        ],
    );
    assert_eq!(reg1["name"], "fraud");
    assert_eq!(reg1["version"], 1);
    assert_eq!(reg1["sha256"].as_str().unwrap().len(), 64);
    let reg2 = json(
        h,
        &[
            "models",
            "register",
            "fraud",
            s(&rf.join("mlflow_model")),
            "--alias",
            "staging",
        ],
    );
    assert_eq!(reg2["version"], 2);

    json(h, &["models", "alias", "fraud", "production", "1"]);
    json(
        h,
        &[
            "models",
            "alias",
            "fraud",
            "production",
            "2",
            "--reason",
            "better recall",
        ],
    );
    let back = json(h, &["models", "rollback", "fraud", "production"]);
    assert_eq!(
        (back["from"].as_u64(), back["to"].as_u64()),
        (Some(2), Some(1))
    );

    let show = json(h, &["models", "show", "fraud"]);
    assert_eq!(show["aliases"]["production"], 1);
    assert_eq!(show["aliases"]["staging"], 2);
    assert_eq!(show["versions"].as_array().unwrap().len(), 2);
    let versions = json(h, &["models", "versions", "fraud"]);
    assert_eq!(versions[0]["version"], 1);
    assert_eq!(versions[0]["tags"]["team"], "risk");
    assert_eq!(versions[0]["created_by"], "tester");
    assert_eq!(versions[1]["kind"], "mlflow");
    let history = json(h, &["models", "history", "fraud"]);
    let moves: Vec<(Json, Json, Json)> = history
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["alias"].clone(), e["from"].clone(), e["to"].clone()))
        .collect();
    assert_eq!(moves.len(), 4);
    assert_eq!(
        moves[3],
        (Json::from("production"), Json::from(2), Json::from(1))
    );
    for e in history.as_array().unwrap() {
        for k in ["alias", "from", "to", "at", "by", "reason"] {
            assert!(e.get(k).is_some(), "history entry lacks {k}");
        }
    }

    let want = expected("random_forest_classifier")["predictions"].clone();
    let input = rf.join("input.csv");
    for r in [
        "models:/fraud/1",
        "models:/fraud/2",
        "models:/fraud@production",
        "models:/fraud@staging",
        "models:/fraud",
    ] {
        assert_eq!(predictions(h, r, &input), want, "{r}");
    }

    fails(
        h,
        &["models", "delete", "fraud/1"],
        &["held by alias production"],
    );
    json(h, &["models", "alias", "fraud", "production", "--delete"]);
    json(h, &["models", "delete", "fraud/1"]);
    fails(
        h,
        &["predict", "models:/fraud/1", "--input", s(&input)],
        &["no version 1", "known: 2"],
    );
    let list = json(h, &["models", "list"]);
    assert_eq!(list[0]["latest_version"], 2);
    // Version numbers are never reused.
    assert_eq!(
        json(
            h,
            &["models", "register", "fraud", s(&rf.join("model.pkl"))]
        )["version"],
        3
    );
}

on_both!(refusals, refusals_on_sqlite, refusals_on_postgres_and_s3);

fn refusals(h: &Reg) {
    json(
        h,
        &[
            "models",
            "register",
            "churn",
            s(&case("logistic_binary").join("model.pkl")),
            "--alias",
            "production",
        ],
    );
    fails(
        h,
        &["models", "show", "chrun"],
        &["no model named `chrun`", "churn"],
    );
    fails(
        h,
        &["predict", "models:/churn@prod", "--input", "x.csv"],
        &["no alias `prod`", "production"],
    );
    fails(
        h,
        &["models", "rollback", "churn", "production"],
        &["no earlier version"],
    );
    for bad in ["a/b", "", "with space", "tab\tname"] {
        fails(
            h,
            &[
                "models",
                "register",
                bad,
                s(&case("logistic_binary").join("model.pkl")),
            ],
            &["invalid model name"],
        );
    }
    fails(
        h,
        &["models", "alias", "churn", "12", "1"],
        &["invalid alias"],
    );
    fails(h, &["inspect", "models:/"], &["invalid model reference"]);
}

on_both!(
    mlflow_xgboost,
    an_mlflow_xgboost_directory_registers_and_predicts_on_sqlite,
    an_mlflow_xgboost_directory_registers_and_predicts_on_postgres_and_s3
);

/// MLflow's xgboost flavor, whose input example holds `NaN` as Python's `json` writes it.
fn mlflow_xgboost(h: &Reg) {
    let c = root().join("fixtures/extra/xgb_multiclass_missing");
    let reg = json(
        h,
        &[
            "models",
            "register",
            "xgb",
            s(&c.join("mlflow_model")),
            "--alias",
            "production",
        ],
    );
    assert_eq!(reg["version"], 1);
    let exp: Json =
        serde_json::from_str(&std::fs::read_to_string(c.join("expected.json")).unwrap()).unwrap();
    assert_eq!(
        predictions(h, "models:/xgb@production", &c.join("input.csv")),
        exp["predictions"]
    );
}

on_both!(
    hostile_files,
    hostile_files_store_nothing_on_sqlite,
    hostile_files_store_nothing_on_postgres_and_s3
);

fn hostile_files(h: &Reg) {
    let dir = tempfile::tempdir().unwrap();
    let evil = dir.path().join("evil.pkl");
    std::fs::write(&evil, b"\x80\x02cposix\nsystem\nX\x02\x00\x00\x00id\x85R.").unwrap();
    fails(h, &["models", "register", "x", s(&evil)], &["posix.system"]);
    // An estimator mlship does not score: refused by name, nothing stored.
    let bagging = dir.path().join("bagging.pkl");
    std::fs::write(
        &bagging,
        b"\x80\x02csklearn.ensemble._bagging\nBaggingClassifier\n)\x81}b.",
    )
    .unwrap();
    fails(
        h,
        &["models", "register", "x", s(&bagging)],
        &["BaggingClassifier"],
    );
    assert_eq!(json(h, &["models", "list"]), Json::Array(vec![]));
    // On the local folder, check the bytes too: not one artifact was written.
    let artifacts = h.home.join("artifacts/sha256");
    assert!(
        !artifacts.exists() || std::fs::read_dir(&artifacts).unwrap().next().is_none(),
        "an artifact was stored"
    );
}

on_both!(
    fidelity_gate,
    fidelity_gate_on_sqlite,
    fidelity_gate_on_postgres_and_s3
);

fn fidelity_gate(h: &Reg) {
    let c = case("pipeline_scaler_logreg");
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.json");
    let exp = expected("pipeline_scaler_logreg");
    std::fs::write(&good, serde_json::json!({"predictions": exp["predictions"], "probabilities": exp["probabilities"]}).to_string()).unwrap();
    let ok = json(
        h,
        &[
            "models",
            "register",
            "m",
            s(&c.join("model.pkl")),
            "--input-example",
            s(&c.join("input.csv")),
            "--expected",
            s(&good),
        ],
    );
    assert_eq!(ok["version"], 1);
    let v = json(h, &["models", "versions", "m"]);
    assert!(v[0]["input_example"].is_string() && v[0]["example_predictions"].is_string());
    let mut wrong = exp.clone();
    wrong["predictions"][3] = Json::from(1 - wrong["predictions"][3].as_i64().unwrap());
    let bad = dir.path().join("bad.json");
    std::fs::write(&bad, wrong.to_string()).unwrap();
    fails(
        h,
        &[
            "models",
            "register",
            "m",
            s(&c.join("model.pkl")),
            "--input-example",
            s(&c.join("input.csv")),
            "--expected",
            s(&bad),
        ],
        &["row 3", "nothing was registered"],
    );
    assert_eq!(
        json(h, &["models", "versions", "m"])
            .as_array()
            .unwrap()
            .len(),
        1
    );
}

#[test]
fn an_unreachable_or_unsupported_store_is_named_quickly() {
    let reg = sqlite();
    for store in [
        "sqlite:///proc/no/such/dir/registry.db",
        "mysql://db/x",
        "postgres://nobody@127.0.0.1:9/none",
    ] {
        let t = std::time::Instant::now();
        let o = cmd(&reg, &["models", "list"])
            .env("MLSHIP_STORE", store)
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(1), "{store}");
        let err = String::from_utf8_lossy(&o.stderr);
        let host = store.split('@').next_back().unwrap();
        assert!(err.contains(host), "{store}: {err}");
        assert!(t.elapsed() < Duration::from_secs(15), "{store} hung");
    }
    // An S3 endpoint that refuses connections: the registration fails, naming the bucket.
    let model = case("kmeans").join("model.pkl");
    let t = std::time::Instant::now();
    let o = cmd(&reg, &["models", "register", "k", s(&model)])
        .env("MLSHIP_ARTIFACTS", "s3://nowhere/x")
        .env("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
        .env("AWS_ACCESS_KEY_ID", "x")
        .env("AWS_SECRET_ACCESS_KEY", "x")
        .env("AWS_REGION", "us-east-1")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("s3://nowhere/x"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(t.elapsed() < Duration::from_secs(60), "the S3 failure hung");
}

on_both!(
    concurrent_writers,
    concurrent_writers_on_sqlite,
    concurrent_writers_on_postgres_and_s3
);

fn concurrent_writers(h: &Reg) {
    let model = case("kmeans").join("model.pkl");
    let children: Vec<_> = (0..8)
        .map(|_| {
            cmd(
                h,
                &["models", "register", "k", s(&model), "--output", "json"],
            )
            .spawn()
            .unwrap()
        })
        .collect();
    let mut got: Vec<u64> = children
        .into_iter()
        .map(|c| {
            let o = c.wait_with_output().unwrap();
            assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
            serde_json::from_slice::<Json>(&o.stdout).unwrap()["version"]
                .as_u64()
                .unwrap()
        })
        .collect();
    got.sort_unstable();
    assert_eq!(got, (1..=8).collect::<Vec<u64>>());
}

on_both!(
    killed_writers,
    killed_writers_leave_whole_versions_on_sqlite,
    killed_writers_leave_whole_versions_on_postgres_and_s3
);

fn killed_writers(h: &Reg) {
    // Two models of different sizes, so kills land in different phases of a registration.
    let models = [
        case("random_forest_regressor").join("model.pkl"),
        case("gaussian_nb").join("model.joblib"),
    ];
    let mut seed: u64 = 0x5eed;
    let mut next = || {
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        seed >> 33
    };
    for round in 0..12 {
        let mut children = Vec::new();
        for w in 0..3 {
            let m = &models[(round + w) % 2];
            children.push(
                cmd(h, &["models", "register", "kill", s(m)])
                    .spawn()
                    .unwrap(),
            );
        }
        std::thread::sleep(Duration::from_millis(next() % 60));
        for mut c in children {
            if next() % 3 != 0 {
                let _ = c.kill();
            }
            let _ = c.wait();
        }
    }
    let versions = json(h, &["models", "versions", "kill"]);
    let versions = versions.as_array().unwrap();
    assert!(!versions.is_empty(), "no writer finished in 12 rounds");
    let rfr = expected("random_forest_regressor")["predictions"].clone();
    let nb = expected("gaussian_nb")["predictions"].clone();
    for v in versions {
        let n = v["version"].as_u64().unwrap();
        let file = v["file_name"].as_str().unwrap();
        let (want, input) = if file == "model.pkl" {
            (&rfr, case("random_forest_regressor").join("input.csv"))
        } else {
            (&nb, case("gaussian_nb").join("input.csv"))
        };
        assert_eq!(
            &predictions(h, &format!("models:/kill/{n}"), &input),
            want,
            "version {n}"
        );
    }
}

on_both!(
    hot_reload,
    alias_moves_while_serving_on_sqlite,
    alias_moves_while_serving_on_postgres_and_s3
);

/// Moves an alias every 100 ms while requests flow: no request fails, and the answers follow.
fn hot_reload(h: &Reg) {
    use std::io::{Read, Write};
    let rf = case("random_forest_classifier");
    json(
        h,
        &[
            "models",
            "register",
            "m",
            s(&rf.join("model.pkl")),
            "--alias",
            "production",
        ],
    );
    json(
        h,
        &[
            "models",
            "register",
            "m",
            s(&case("pipeline_scaler_logreg").join("model.pkl")),
        ],
    );
    let (mut child, addr) = common::start(&mut cmd(
        h,
        &[
            "serve",
            "models:/m@production",
            "--port",
            "0",
            "--reload-interval-ms",
            "20",
        ],
    ));
    let body = serde_json::json!({"dataframe_split": {"columns": ["f0","f1","f2","f3","f4","f5","f6","f7"], "data": [[0.5, -1.0, 2.0, 0.3, -0.7, 1.5, 0.0, 4.0]]}}).to_string();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let load = {
        let (addr, body, stop) = (addr.clone(), body.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut answers = std::collections::BTreeSet::new();
            let (mut ok, mut failed) = (0, 0);
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let mut c = std::net::TcpStream::connect(&addr).unwrap();
                let req = format!(
                    "POST /invocations?probabilities=true HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                c.write_all(req.as_bytes()).unwrap();
                let mut resp = String::new();
                let _ = c.read_to_string(&mut resp);
                if resp.starts_with("HTTP/1.1 200") {
                    ok += 1;
                    let p = resp
                        .split("\"probabilities\":")
                        .nth(1)
                        .unwrap_or("")
                        .split(']')
                        .next()
                        .unwrap_or("")
                        .to_string();
                    answers.insert(p);
                } else {
                    failed += 1;
                }
            }
            (ok, failed, answers)
        })
    };
    for i in 0..20 {
        std::thread::sleep(Duration::from_millis(100));
        json(
            h,
            &[
                "models",
                "alias",
                "m",
                "production",
                if i % 2 == 0 { "2" } else { "1" },
                "--reason",
                "flip",
            ],
        );
    }
    std::thread::sleep(Duration::from_millis(100));
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let (ok, failed, answers) = load.join().unwrap();
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let _ = child.wait();
    assert_eq!(
        failed,
        0,
        "{failed} of {} requests failed during the alias moves",
        ok + failed
    );
    assert!(ok > 20, "only {ok} requests went through");
    assert_eq!(
        answers.len(),
        2,
        "the answers did not follow the alias: {answers:?}"
    );
    let history = json(h, &["models", "history", "m"]);
    assert_eq!(history.as_array().unwrap().len(), 21);
}

on_both!(
    canary,
    canary_weights_sticky_devices_and_automatic_rollback_on_sqlite,
    canary_weights_sticky_devices_and_automatic_rollback_on_postgres_and_s3
);

/// A 90/10 deployment: about 10% of requests meet the candidate, one device always meets one
/// version, and a failing candidate is rolled back automatically, in the registry's history.
fn canary(h: &Reg) {
    use std::io::{Read, Write};
    let rf = case("random_forest_classifier");
    json(
        h,
        &[
            "models",
            "register",
            "fraud",
            s(&rf.join("model.pkl")),
            "--alias",
            "production",
        ],
    );
    // The candidate is a logistic regression: it refuses missing values, which the forest takes.
    json(
        h,
        &[
            "models",
            "register",
            "fraud",
            s(&case("pipeline_scaler_logreg").join("model.pkl")),
            "--alias",
            "candidate",
        ],
    );
    let config = h.home.join("mlship.toml");
    std::fs::write(
        &config,
        r#"[[deployment]]
name = "fraud"
routes = [ { model = "models:/fraud@production", weight = 90 },
           { model = "models:/fraud@candidate",  weight = 10 } ]
sticky_header = "X-Device-Id"
shadow = "models:/fraud/1"
[deployment.rollback]
max_error_rate = 0.02
max_p99_ms = 5000
min_requests = 20
"#,
    )
    .unwrap();
    let (mut child, addr) = common::start(&mut cmd(
        h,
        &["serve", "--config", s(&config), "--port", "0"],
    ));
    let post = |row: &str, device: Option<&str>| -> (u16, String) {
        let body = format!(
            "{{\"dataframe_split\": {{\"columns\": [\"f0\",\"f1\",\"f2\",\"f3\",\"f4\",\"f5\",\"f6\",\"f7\"], \"data\": [{row}]}}}}"
        );
        let mut c = std::net::TcpStream::connect(&addr).unwrap();
        let dev = device
            .map(|d| format!("X-Device-Id: {d}\r\n"))
            .unwrap_or_default();
        let req = format!(
            "POST /models/fraud/invocations?probabilities=true HTTP/1.1\r\nHost: x\r\n{dev}Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        c.write_all(req.as_bytes()).unwrap();
        let mut resp = String::new();
        let _ = c.read_to_string(&mut resp);
        let status = resp
            .split_whitespace()
            .nth(1)
            .and_then(|x| x.parse().ok())
            .unwrap_or(0);
        (
            status,
            resp.split("\r\n\r\n").nth(1).unwrap_or("").to_string(),
        )
    };
    let weights = |addr: &str| {
        let (_, _, text) = common::exchange(addr, "GET", "/metrics", &[], b"");
        text.lines()
            .filter(|l| l.starts_with("mlship_deployment_"))
            .map(str::to_string)
            .collect::<Vec<_>>()
    };
    assert_eq!(
        weights(&addr),
        [
            r#"mlship_deployment_weight{deployment="fraud",version="1",role="production"} 0.9"#,
            r#"mlship_deployment_weight{deployment="fraud",version="2",role="candidate"} 0.1"#,
            r#"mlship_deployment_rolled_back{deployment="fraud"} 0"#,
        ]
    );
    let row = "[0.5, -1.0, 2.0, 0.3, -0.7, 1.5, 0.0, 4.0]";
    let production = post(row, Some("device-for-production-check")).1;
    // Find the candidate's answer from a few devices, then count.
    let mut answers = std::collections::BTreeMap::new();
    for _ in 0..1000 {
        let (st, b) = post(row, None);
        assert_eq!(st, 200, "{b}");
        *answers.entry(b).or_insert(0u32) += 1;
    }
    assert_eq!(
        answers.len(),
        2,
        "expected two versions' answers: {answers:?}"
    );
    let candidate_share = answers
        .iter()
        .filter(|(b, _)| **b != production)
        .map(|(_, n)| *n)
        .sum::<u32>();
    let (prod_count, cand_count) = (
        answers.values().max().copied().unwrap(),
        answers.values().min().copied().unwrap(),
    );
    assert!(
        (60..=140).contains(&cand_count) && prod_count + cand_count == 1000,
        "candidate got {cand_count} of 1000 ({candidate_share})"
    );
    // A device always meets the same version.
    for d in ["alice", "bob", "carol", "dave"] {
        let first = post(row, Some(d)).1;
        for _ in 0..30 {
            assert_eq!(post(row, Some(d)).1, first, "device {d} switched versions");
        }
    }
    // Rows with a missing value: the forest answers, the candidate fails; the deployment rolls back.
    let nan_row = "[null, -1.0, 2.0, 0.3, -0.7, 1.5, 0.0, 4.0]";
    let mut failures = 0;
    for _ in 0..600 {
        if post(nan_row, None).0 != 200 {
            failures += 1;
        }
    }
    assert!(
        failures > 0 && failures < 60,
        "{failures} failures: the rollback should stop them early"
    );
    for _ in 0..200 {
        assert_eq!(
            post(nan_row, None).0,
            200,
            "a request met the candidate after the rollback"
        );
    }
    let after = weights(&addr);
    assert!(
        after.contains(
            &r#"mlship_deployment_weight{deployment="fraud",version="2",role="candidate"} 0"#
                .to_string()
        ) && after.contains(&r#"mlship_deployment_rolled_back{deployment="fraud"} 1"#.to_string()),
        "{after:?}"
    );
    // The server writes the rollback to the registry off the request path, and waits for that
    // write when it stops: once it has exited, the row is there.
    let _ = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let _ = child.wait();
    let history = json(h, &["models", "history", "fraud"]);
    let last = history.as_array().unwrap().last().unwrap().clone();
    assert_eq!(last["alias"], "candidate");
    assert_eq!(
        (last["from"].as_u64(), last["to"].as_u64()),
        (Some(2), Some(1))
    );
    assert_eq!(last["by"], "mlship serve");
    assert!(
        last["reason"]
            .as_str()
            .unwrap()
            .contains("automatic rollback: error rate"),
        "{last}"
    );
}

#[test]
fn a_config_with_an_unknown_key_is_refused_naming_it() {
    let reg = sqlite();
    let config = reg.home.join("mlship.toml");
    std::fs::write(
        &config,
        "[[deployment]]\nname = \"x\"\nroutes = []\nstickyheader = \"X\"\n",
    )
    .unwrap();
    let o = cmd(&reg, &["serve", "--config", s(&config), "--port", "0"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("stickyheader"), "{err}");
}
