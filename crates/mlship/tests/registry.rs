//! The registry from the command line: lifecycle, JSON shapes, refusals, concurrent writers, and
//! writers killed at random moments (every listed version must still load and score).

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
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

fn cmd(home: &Path, args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_mlship"));
    c.args(args)
        .env("MLSHIP_HOME", home)
        .env_remove("MLSHIP_STORE")
        .env_remove("MLSHIP_ARTIFACTS")
        .env("USER", "tester");
    c.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    c
}

fn run(home: &Path, args: &[&str]) -> Output {
    cmd(home, args).output().unwrap()
}

fn json(home: &Path, args: &[&str]) -> Json {
    let mut a = args.to_vec();
    a.extend(["--output", "json"]);
    let o = run(home, &a);
    assert!(
        o.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    serde_json::from_slice(&o.stdout).unwrap()
}

fn fails(home: &Path, args: &[&str], fragments: &[&str]) {
    let o = run(home, args);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{args:?}: {err}");
    assert!(err.starts_with("error: "), "{err}");
    for f in fragments {
        assert!(err.contains(f), "missing {f:?} in {err}");
    }
}

fn expected(name: &str) -> Json {
    serde_json::from_str(&std::fs::read_to_string(case(name).join("expected.json")).unwrap())
        .unwrap()
}

fn predictions(home: &Path, reference: &str, input: &Path) -> Json {
    let o = run(home, &["predict", reference, "--input", s(input)]);
    assert!(
        o.status.success(),
        "{reference}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    serde_json::from_slice::<Json>(&o.stdout).unwrap()["predictions"].clone()
}

#[test]
fn lifecycle_register_alias_move_rollback_history_delete_predict() {
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
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

#[test]
fn unknown_names_and_bad_names_are_refused_with_what_exists() {
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
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

#[test]
fn hostile_or_unsupported_files_store_nothing() {
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    let dir = tempfile::tempdir().unwrap();
    let evil = dir.path().join("evil.pkl");
    std::fs::write(&evil, b"\x80\x02cposix\nsystem\nX\x02\x00\x00\x00id\x85R.").unwrap();
    fails(h, &["models", "register", "x", s(&evil)], &["posix.system"]);
    fails(
        h,
        &[
            "models",
            "register",
            "x",
            s(&case("xgb_classifier").join("model.pkl")),
        ],
        &["xgboost"],
    );
    assert_eq!(json(h, &["models", "list"]), Json::Array(vec![]));
    let artifacts = h.join("artifacts/sha256");
    assert!(
        !artifacts.exists() || std::fs::read_dir(&artifacts).unwrap().next().is_none(),
        "an artifact was stored"
    );
}

#[test]
fn the_fidelity_gate_refuses_predictions_that_differ() {
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
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
fn an_unreachable_or_unsupported_store_is_named() {
    let home = tempfile::tempdir().unwrap();
    let o = cmd(home.path(), &["models", "list"])
        .env("MLSHIP_STORE", "sqlite:///proc/no/such/dir/registry.db")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("sqlite:///proc/no/such/dir/registry.db"));
    let o = cmd(home.path(), &["models", "list"])
        .env("MLSHIP_STORE", "mysql://db/x")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("mysql://db/x"));
}

#[test]
fn concurrent_writers_get_distinct_versions() {
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
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

#[test]
fn writers_killed_at_random_moments_leave_only_whole_versions() {
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
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
