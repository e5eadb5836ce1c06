//! The web UI: the routes its pages read (alias history, rollback, the "try it" form and
//! in-process scoring) on a registry holding a real pipeline with a categorical column, the
//! assets' budget and caching, and the pages themselves in Debian's Chromium through Playwright
//! with axe-core (tests/ui/ui.spec.js) over runs the stock mlflow client logged.

mod common;

use common::{get_json as get, post_json as post};

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use serde_json::{Value as Json, json};

const CASE: &str = "fixtures/corpus/pipeline_onehot_logreg";

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn mlship(home: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_mlship"));
    c.current_dir(root())
        .env("MLSHIP_HOME", home)
        .env("RUST_LOG", "warn")
        .stderr(Stdio::inherit());
    c
}

struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn register(home: &Path, args: &[&str]) {
    let o = mlship(home)
        .args(["models", "register", "credit"])
        .args(args)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}

#[test]
fn the_routes_the_pages_read() {
    let home = tempfile::tempdir().unwrap();
    let model = format!("{CASE}/model.pkl");
    let example = format!("{CASE}/input.csv");
    register(
        home.path(),
        &[&model, "--input-example", &example, "--alias", "production"],
    );
    register(home.path(), &[&format!("{CASE}/model.joblib")]);
    let (child, addr) = common::spawn(mlship(home.path()).args(["server", "--port", "0"]));
    let _server = Running(child);

    // The shell and its files: the tracking pages, compressed, named by digest, cacheable.
    let (st, head, page) = common::exchange(&addr, "GET", "/", &[], b"");
    assert_eq!(st, 200);
    assert!(page.contains(r#"data-mode="tracking""#), "{page}");
    assert!(head.contains("content-security-policy"), "{head}");
    let (st, head, _) = common::exchange(
        &addr,
        "GET",
        "/ui/app.js",
        &[("Accept-Encoding", "gzip, br")],
        b"",
    );
    assert_eq!(st, 200);
    assert!(head.contains("content-encoding: gzip"), "{head}");
    let etag = head
        .lines()
        .find_map(|l| l.strip_prefix("etag: "))
        .unwrap()
        .trim()
        .to_string();
    let (st, _, _) = common::exchange(&addr, "GET", "/ui/app.js", &[("If-None-Match", &etag)], b"");
    assert_eq!(st, 304);
    assert_eq!(get(&addr, "/ui/nothing.js").0, 404);

    // The form: typed fields, the encoder's categories for the string column, the example's values.
    let (st, form) = get(
        &addr,
        "/api/2.0/mlship/model-versions/form?name=credit&version=1",
    );
    assert_eq!(st, 200, "{form}");
    assert_eq!(form["task"], "classification");
    assert_eq!(form["classes"], json!(["no", "yes"]));
    let fields = form["fields"].as_array().unwrap();
    let names: Vec<&str> = fields.iter().map(|f| f["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["num_a", "num_b", "num_c", "color"]);
    let color = &fields[3];
    assert_eq!(color["type"], "string");
    let csv = std::fs::read_to_string(root().join(&example)).unwrap();
    let mut seen: Vec<String> = csv
        .lines()
        .skip(1)
        .map(|l| l.rsplit(',').next().unwrap().to_string())
        .collect();
    seen.sort();
    seen.dedup();
    let categories: Vec<String> = color["categories"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap().to_string())
        .collect();
    for c in &seen {
        assert!(categories.contains(c), "{c} not in {categories:?}");
    }
    let first: Vec<&str> = csv.lines().nth(1).unwrap().split(',').collect();
    assert_eq!(color["example"], first[3]);
    assert_eq!(
        fields[0]["example"].as_f64().unwrap(),
        first[0].parse::<f64>().unwrap()
    );
    // Without an example the fields have no values.
    let (_, form2) = get(
        &addr,
        "/api/2.0/mlship/model-versions/form?name=credit&version=2",
    );
    assert!(form2["fields"][0].get("example").is_none(), "{form2}");

    // Scoring in the server's process answers as the training library did, with probabilities.
    let expected: Json =
        serde_json::from_slice(&std::fs::read(root().join(CASE).join("expected.json")).unwrap())
            .unwrap();
    let rows: Vec<Json> = csv
        .lines()
        .skip(1)
        .take(5)
        .map(|l| {
            let v: Vec<&str> = l.split(',').collect();
            json!({"num_a": v[0].parse::<f64>().unwrap(), "num_b": v[1].parse::<f64>().unwrap(), "num_c": v[2].parse::<f64>().unwrap(), "color": v[3]})
        })
        .collect();
    let predict = "/api/2.0/mlship/model-versions/predict";
    let (st, out) = post(
        &addr,
        predict,
        &json!({"name": "credit", "version": "1", "dataframe_records": rows}),
    );
    assert_eq!(st, 200, "{out}");
    assert_eq!(
        out["predictions"],
        Json::Array(expected["predictions"].as_array().unwrap()[..5].to_vec())
    );
    assert_eq!(out["classes"], json!(["no", "yes"]));
    assert_eq!(out["probabilities"].as_array().unwrap().len(), 5);
    // Bad input names the field; a missing version is 404.
    let (st, err) = post(
        &addr,
        predict,
        &json!({"name": "credit", "version": "1", "dataframe_records": [{"num_a": 1}]}),
    );
    assert_eq!(st, 400, "{err}");
    assert_eq!(err["error_code"], "INVALID_PARAMETER_VALUE");
    assert!(err["message"].as_str().unwrap().contains("num_b"), "{err}");
    let (st, err) = post(
        &addr,
        predict,
        &json!({"name": "credit", "version": "x", "inputs": [[1]]}),
    );
    assert_eq!(st, 400, "{err}");
    assert!(err["message"].as_str().unwrap().contains("'version'"));
    let (st, _) = post(
        &addr,
        predict,
        &json!({"name": "credit", "version": "9", "inputs": [[1]]}),
    );
    assert_eq!(st, 404);

    // One version as mlship stores it.
    let (st, v) = get(
        &addr,
        "/api/2.0/mlship/model-versions/get?name=credit&version=1",
    );
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["servable"], true);
    assert_eq!(v["has_input_example"], true);
    assert_eq!(v["sha256"].as_str().unwrap().len(), 64);

    // Alias moves through the MLflow route keep their reason; rollback goes back; the history
    // is the registry's, as `mlship models history` shows it.
    let (st, _) = post(
        &addr,
        "/api/2.0/mlflow/registered-models/alias",
        &json!({"name": "credit", "alias": "production", "version": "2", "reason": "promote v2"}),
    );
    assert_eq!(st, 200);
    let rollback = "/api/2.0/mlship/registered-models/rollback";
    let (st, e) = post(
        &addr,
        rollback,
        &json!({"name": "credit", "alias": "production", "reason": "v2 is worse"}),
    );
    assert_eq!(st, 200, "{e}");
    assert_eq!(e["event"]["from_version"], "2");
    assert_eq!(e["event"]["to_version"], "1");
    let (st, h) = get(
        &addr,
        "/api/2.0/mlship/registered-models/alias-history?name=credit",
    );
    assert_eq!(st, 200);
    let reasons: Vec<&str> = h["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["reason"].as_str().unwrap())
        .collect();
    assert_eq!(reasons[1..], ["promote v2", "v2 is worse"]);
    let o = mlship(home.path())
        .args(["models", "history", "credit", "--output", "json"])
        .output()
        .unwrap();
    let cli = String::from_utf8_lossy(&o.stdout);
    assert!(
        cli.contains("promote v2") && cli.contains("v2 is worse"),
        "{cli}"
    );
    let (st, err) = post(
        &addr,
        rollback,
        &json!({"name": "credit", "alias": "staging"}),
    );
    assert_eq!(st, 404, "no such alias: {err}");
    let (st, _) = get(
        &addr,
        "/api/2.0/mlship/registered-models/alias-history?name=nope",
    );
    assert_eq!(st, 404);

    // Run counts per experiment (MLflow's search has none).
    let (_, e) = post(
        &addr,
        "/api/2.0/mlflow/experiments/create",
        &json!({"name": "counted"}),
    );
    let exp = e["experiment_id"].as_str().unwrap().to_string();
    for _ in 0..3 {
        post(
            &addr,
            "/api/2.0/mlflow/runs/create",
            &json!({"experiment_id": exp}),
        );
    }
    let (_, a) = get(&addr, "/api/2.0/mlship/experiments/activity");
    let counted = a["experiments"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["experiment_id"] == exp.as_str())
        .unwrap();
    assert_eq!(counted["runs"], 3);

    // The OpenAPI document lists mlship's routes beside MLflow's.
    let (_, doc) = get(&addr, "/openapi.json");
    for p in [
        "/api/2.0/mlship/model-versions/predict",
        "/api/2.0/mlship/registered-models/rollback",
    ] {
        assert!(doc["paths"].get(p).is_some(), "{p}");
    }
}

#[test]
fn the_model_server_has_its_page_and_form() {
    let (child, addr) = common::start(
        Command::new(env!("CARGO_BIN_EXE_mlship"))
            .current_dir(root())
            .args(["serve", &format!("credit={CASE}/model.pkl"), "--port", "0"]),
    );
    let _server = Running(child);
    let (st, _, page) = common::exchange(&addr, "GET", "/", &[], b"");
    assert_eq!(st, 200);
    assert!(page.contains(r#"data-mode="serving""#), "{page}");
    let (st, form) = get(&addr, "/models/credit/form");
    assert_eq!(st, 200, "{form}");
    assert!(form["fields"][3]["categories"].as_array().unwrap().len() >= 3);
    assert_eq!(get(&addr, "/models/nope/form").0, 404);
}

/// The Node folder with `@playwright/test` and `axe-core` (.ci/browser.sh installs it), or `None`
/// outside CI.
fn playwright() -> Option<(PathBuf, String)> {
    let (Ok(node), Ok(python)) = (
        std::env::var("MLSHIP_TEST_PLAYWRIGHT"),
        std::env::var("MLSHIP_TEST_MLFLOW_PYTHON"),
    ) else {
        assert!(
            std::env::var_os("CI").is_none(),
            "MLSHIP_TEST_PLAYWRIGHT and MLSHIP_TEST_MLFLOW_PYTHON must be set in CI (.ci/browser.sh, .ci/clients.sh)"
        );
        eprintln!(
            "skipped: set MLSHIP_TEST_PLAYWRIGHT (a folder with @playwright/test and axe-core) and MLSHIP_TEST_MLFLOW_PYTHON"
        );
        return None;
    };
    Some((PathBuf::from(node), python))
}

#[test]
fn the_pages_work_in_a_real_browser() {
    let Some((node, python)) = playwright() else {
        return;
    };
    let home = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    let (child, tracking) = common::spawn(mlship(home.path()).args(["server", "--port", "0"]));
    let _tracking = Running(child);
    let ids = work.path().join("ids.json");
    let o = Command::new(&python)
        .arg(root().join("crates/mlship/tests/ui/seed.py"))
        .arg(&ids)
        .env("MLFLOW_TRACKING_URI", format!("http://{tracking}"))
        .current_dir(work.path())
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "seeding with the mlflow client failed:\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
    // The model by its alias, and a 80/20 deployment of its two versions.
    let config = work.path().join("mlship.toml");
    std::fs::write(
        &config,
        r#"[serve]
models = ["credit=models:/credit@production"]

[[deployment]]
name = "credit-canary"
routes = [ { model = "models:/credit/1", weight = 80 },
           { model = "models:/credit/2", weight = 20 } ]
"#,
    )
    .unwrap();
    let (child, serving) = common::start(mlship(home.path()).args([
        "serve",
        "--config",
        config.to_str().unwrap(),
        "--port",
        "0",
    ]));
    let _serving = Running(child);
    let shots = Path::new(env!("CARGO_TARGET_TMPDIR")).join("ui-screenshots");
    std::fs::create_dir_all(&shots).unwrap();
    let out = work.path().join("out");
    std::fs::create_dir_all(&out).unwrap();
    let o = Command::new(node.join("node_modules/.bin/playwright"))
        .args(["test", "--config"])
        .arg(root().join("crates/mlship/tests/ui/playwright.config.js"))
        .current_dir(root().join("crates/mlship/tests/ui"))
        .env("NODE_PATH", node.join("node_modules"))
        .env("MLSHIP_URL", format!("http://{tracking}"))
        .env("MLSHIP_SERVE_URL", format!("http://{serving}"))
        .env("MLSHIP_IDS", &ids)
        .env("MLSHIP_SHOTS", &shots)
        .env("MLSHIP_UI_OUT", &out)
        .env("MLSHIP_HOME", home.path())
        .env("MLSHIP_BIN", env!("CARGO_BIN_EXE_mlship"))
        .env("RUST_LOG", "warn")
        .output()
        .unwrap();
    let report = format!(
        "{}\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(o.status.success(), "the browser tests failed:\n{report}");
    assert!(report.contains("9 passed"), "{report}");
    eprintln!("screenshots in {}", shots.display());
}

/// The chart library compiled into the binary is, byte for byte, the one npm publishes at the
/// version package-lock.json pins (so the committed copy cannot drift or be edited by hand).
#[test]
fn the_vendored_chart_library_is_the_published_one() {
    let Some((node, _)) = playwright() else {
        return;
    };
    for f in ["uPlot.iife.min.js", "uPlot.min.css"] {
        let published = std::fs::read(node.join("node_modules/uplot/dist").join(f)).unwrap();
        let ours = std::fs::read(root().join("crates/mlship-server/ui/vendor").join(f)).unwrap();
        assert!(published == ours, "{f} differs from npm's uplot");
    }
}
