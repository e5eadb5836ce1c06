//! End-to-end tests of the real `mlship` binary: predictions, input shapes, and user errors.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use serde_json::Value as Json;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn case(name: &str) -> PathBuf {
    root().join("fixtures/corpus").join(name)
}

fn mlship(args: &[&str], stdin: Option<&str>) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_mlship"));
    c.args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = c.spawn().unwrap();
    if let Some(s) = stdin {
        use std::io::Write;
        // The binary may exit before reading (a model that fails to load): a broken pipe is fine.
        let _ = child.stdin.take().unwrap().write_all(s.as_bytes());
    } else {
        drop(child.stdin.take());
    }
    child.wait_with_output().unwrap()
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn stdout_json(o: &Output) -> Json {
    assert!(
        o.status.success(),
        "stderr: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    serde_json::from_slice(&o.stdout).unwrap()
}

/// Asserts exit code 1 and an `error:` line containing every fragment.
fn assert_user_error(o: &Output, fragments: &[&str]) {
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "stderr: {err}");
    assert!(err.starts_with("error: "), "{err}");
    for f in fragments {
        assert!(err.contains(f), "missing {f:?} in: {err}");
    }
    assert!(err.contains("hint: "), "no hint in: {err}");
}

#[test]
fn predict_prints_scikit_learns_predictions_and_probabilities() {
    let c = case("random_forest_classifier");
    let o = mlship(
        &[
            "predict",
            s(&c.join("model.pkl")),
            "--input",
            s(&c.join("input.csv")),
        ],
        None,
    );
    let got = stdout_json(&o);
    let exp: Json =
        serde_json::from_str(&std::fs::read_to_string(c.join("expected.json")).unwrap()).unwrap();
    assert_eq!(got["predictions"], exp["predictions"]);
    assert_eq!(got["classes"], exp["classes"]);
    assert_eq!(got["probabilities"], exp["probabilities"]);
}

#[test]
fn mlflow_directories_load_with_their_signature() {
    for dir in ["mlflow_model", "mlflow_model_cloudpickle"] {
        let c = case("pipeline_onehot_logreg");
        let o = mlship(
            &[
                "predict",
                s(&c.join(dir)),
                "--input",
                s(&c.join("input.csv")),
            ],
            None,
        );
        let exp: Json =
            serde_json::from_str(&std::fs::read_to_string(c.join("expected.json")).unwrap())
                .unwrap();
        assert_eq!(stdout_json(&o)["predictions"], exp["predictions"], "{dir}");
    }
}

#[test]
fn json_and_ndjson_inputs_in_mlflow_shapes() {
    let m = case("pipeline_onehot_logreg").join("model.pkl");
    let split = r#"{"dataframe_split": {"columns": ["num_a", "num_b", "num_c", "color"], "data": [[0.1, 5.0, 2.0, "red"], [1.5, 1.0, -3.0, "blue"]]}}"#;
    let a = stdout_json(&mlship(
        &["predict", s(&m), "--input-format", "json"],
        Some(split),
    ));
    let records = r#"{"dataframe_records": [{"color": "red", "num_a": 0.1, "num_b": 5.0, "num_c": 2.0, "extra": 1}, {"num_a": 1.5, "num_b": 1.0, "num_c": -3.0, "color": "blue"}]}"#;
    let b = stdout_json(&mlship(
        &["predict", s(&m), "--input-format", "json"],
        Some(records),
    ));
    let nd = "{\"num_a\": 0.1, \"num_b\": 5.0, \"num_c\": 2.0, \"color\": \"red\"}\n{\"num_a\": 1.5, \"num_b\": 1.0, \"num_c\": -3.0, \"color\": \"blue\"}\n";
    let c = stdout_json(&mlship(
        &["predict", s(&m), "--input-format", "ndjson"],
        Some(nd),
    ));
    assert_eq!(a, b);
    assert_eq!(a, c);
    assert_eq!(a["predictions"].as_array().unwrap().len(), 2);
}

#[test]
fn csv_output_has_a_prediction_and_a_probability_per_class() {
    let c = case("logistic_multinomial");
    let o = mlship(
        &[
            "predict",
            s(&c.join("model.pkl")),
            "--input",
            s(&c.join("input.csv")),
            "--output",
            "csv",
        ],
        None,
    );
    assert!(o.status.success());
    let text = String::from_utf8(o.stdout).unwrap();
    let mut lines = text.lines();
    assert_eq!(
        lines.next().unwrap(),
        "prediction,probability(setosa),probability(versicolor),probability(virginica)"
    );
    assert_eq!(lines.count(), 50);
}

#[test]
fn inspect_shows_format_estimator_columns_and_checksum() {
    let c = case("pipeline_scaler_logreg");
    let o = mlship(&["inspect", s(&c.join("model.zlib3.joblib"))], None);
    let text = String::from_utf8(o.stdout).unwrap();
    assert!(o.status.success());
    for want in [
        "joblib (zlib)",
        "Pipeline[StandardScaler -> LogisticRegression]",
        "scikit-learn 1.9.0",
        "f7",
        "sha256:",
    ] {
        assert!(text.contains(want), "missing {want} in {text}");
    }
    let j = stdout_json(&mlship(
        &["inspect", s(&c.join("model.pkl")), "--output", "json"],
        None,
    ));
    assert_eq!(j["sha256"].as_str().unwrap().len(), 64);
    assert_eq!(j["inputs"].as_array().unwrap().len(), 8);
}

fn model() -> PathBuf {
    case("pipeline_onehot_logreg").join("model.pkl")
}

#[test]
fn a_missing_column_is_named() {
    let o = mlship(
        &["predict", s(&model())],
        Some("num_a,num_b,color\n1,2,red\n"),
    );
    assert_user_error(&o, &["num_c"]);
}

#[test]
fn a_string_in_a_numeric_column_names_the_column_and_row() {
    let o = mlship(
        &["predict", s(&model())],
        Some("num_a,num_b,num_c,color\n1,2,3,red\n1,abc,3,red\n"),
    );
    assert_user_error(&o, &["num_b", "row 1 (line 3)", "abc"]);
}

#[test]
fn a_ragged_row_is_refused() {
    let o = mlship(
        &["predict", s(&model())],
        Some("num_a,num_b,num_c,color\n1,2,3,red\n1,2\n"),
    );
    assert_user_error(&o, &["row 1 (line 3)", "2 fields"]);
}

#[test]
fn a_missing_value_where_the_model_takes_none_is_named() {
    let o = mlship(
        &["predict", s(&model())],
        Some("num_a,num_b,num_c,color\n0.5,,2.0,red\n"),
    );
    assert_user_error(&o, &["num_b", "row 0", "missing value"]);
}

#[test]
fn no_rows_is_refused() {
    let o = mlship(&["predict", s(&model())], Some("num_a,num_b,num_c,color\n"));
    assert_user_error(&o, &["no rows"]);
}

#[test]
fn an_unknown_category_is_named() {
    let o = mlship(
        &["predict", s(&model())],
        Some("num_a,num_b,num_c,color\n1,2,3,purple\n"),
    );
    assert_user_error(&o, &["color", "purple", "red"]);
}

#[test]
fn a_file_that_is_not_a_model_is_refused() {
    let c = case("kmeans");
    let o = mlship(
        &[
            "predict",
            s(&c.join("input.csv")),
            "--input",
            s(&c.join("input.csv")),
        ],
        None,
    );
    assert_user_error(&o, &["unrecognised model file", "supported"]);
}

#[test]
fn a_truncated_pickle_is_refused() {
    let bytes = std::fs::read(case("kmeans").join("model.pkl")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("cut.pkl");
    std::fs::write(&p, &bytes[..bytes.len() / 2]).unwrap();
    let o = mlship(&["predict", s(&p)], Some("f0,f1,f2,f3\n1,2,3,4\n"));
    assert_user_error(&o, &["truncated pickle"]);
}

#[test]
fn an_unsupported_estimator_is_named() {
    // A pickle of an estimator mlship does not score: GLOBAL, NEWOBJ with no arguments, BUILD.
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("bagging.pkl");
    std::fs::write(
        &p,
        b"\x80\x02csklearn.ensemble._bagging\nBaggingClassifier\n)\x81}b.",
    )
    .unwrap();
    let c = case("random_forest_classifier");
    let o = mlship(
        &["predict", s(&p), "--input", s(&c.join("input.csv"))],
        None,
    );
    assert_user_error(&o, &["BaggingClassifier"]);
}

#[test]
fn a_hostile_pickle_is_refused_by_name_and_nothing_runs() {
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("pwned");
    let cmd = format!("touch {}", marker.display());
    let mut b = vec![0x80, 2];
    b.extend(b"cposix\nsystem\n");
    b.push(b'X');
    b.extend((cmd.len() as u32).to_le_bytes());
    b.extend(cmd.as_bytes());
    b.extend([0x85, b'R', b'.']);
    let p = dir.path().join("evil.pkl");
    std::fs::write(&p, b).unwrap();
    let o = mlship(&["inspect", s(&p)], None);
    assert_user_error(&o, &["posix.system", "allow-list"]);
    assert!(!marker.exists());
}

#[test]
fn a_models_uri_for_an_unknown_model_is_a_user_error() {
    let home = tempfile::tempdir().unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_mlship"))
        .args(["inspect", "models:/fraud@production"])
        .env("MLSHIP_HOME", home.path())
        .env_remove("MLSHIP_STORE")
        .env_remove("MLSHIP_ARTIFACTS")
        .output()
        .unwrap();
    assert_user_error(&o, &["no model named `fraud`"]);
}

#[test]
fn convert_writes_a_pmml_copy_that_predicts_the_same() {
    let dir = tempfile::tempdir().unwrap();
    for name in [
        "pipeline_onehot_logreg",
        "gradient_boosting_classifier",
        "random_forest_regressor",
    ] {
        let c = case(name);
        let src = c.join("model.pkl");
        let out = dir.path().join(format!("{name}.pmml"));
        let o = mlship(&["convert", s(&src), "--to", "pmml", "-o", s(&out)], None);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let input = c.join("input.csv");
        let a = stdout_json(&mlship(&["predict", s(&src), "--input", s(&input)], None));
        let b = stdout_json(&mlship(&["predict", s(&out), "--input", s(&input)], None));
        assert_eq!(a["predictions"].as_array().unwrap().len(), 50);
        for (x, y) in a["predictions"]
            .as_array()
            .unwrap()
            .iter()
            .zip(b["predictions"].as_array().unwrap())
        {
            match (x.as_f64(), y.as_f64()) {
                (Some(p), Some(q)) if x.is_f64() => {
                    assert!((p - q).abs() <= 1e-9 * p.abs().max(1.0), "{name}")
                }
                _ => assert_eq!(x, y, "{name}"),
            }
        }
    }
}

#[test]
fn convert_writes_an_mlship_json_copy_that_predicts_the_same() {
    let dir = tempfile::tempdir().unwrap();
    for name in [
        "pipeline_onehot_logreg",
        "gradient_boosting_classifier",
        "svc",
    ] {
        let c = case(name);
        let src = c.join("model.pkl");
        let out = dir.path().join(format!("{name}.json"));
        let o = mlship(&["convert", s(&src), "--to", "json", "-o", s(&out)], None);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        assert!(String::from_utf8_lossy(&o.stdout).contains("scores as"));
        let input = c.join("input.csv");
        let a = stdout_json(&mlship(&["predict", s(&src), "--input", s(&input)], None));
        let b = stdout_json(&mlship(&["predict", s(&out), "--input", s(&input)], None));
        assert_eq!(a, b, "{name}");
        let info = stdout_json(&mlship(&["inspect", s(&out), "--output", "json"], None));
        assert_eq!(info["format"], "mlship JSON 1");
    }
    // With the case's own rows instead of generated ones.
    let c = case("random_forest_classifier");
    let out = dir.path().join("rf.json");
    let o = mlship(
        &[
            "convert",
            s(&c.join("model.pkl")),
            "--to",
            "json",
            "-o",
            s(&out),
            "--input",
            s(&c.join("input.csv")),
        ],
        None,
    );
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("on 50 rows"),
        "{o:?}"
    );
}

#[test]
fn convert_refuses_what_it_cannot_do_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    // PMML cannot say SVC's pairwise Platt probabilities: refused, with the reason, and nothing
    // written.
    let svc = root().join("fixtures/extra/svc_proba_binary/model.pkl");
    let out = dir.path().join("svc.pmml");
    assert_user_error(
        &mlship(&["convert", s(&svc), "--to", "pmml", "-o", s(&out)], None),
        &["cannot be written as PMML", "Platt"],
    );
    assert!(!out.exists());
    let src = case("ridge").join("model.pkl");
    assert_user_error(
        &mlship(
            &[
                "convert",
                s(&src),
                "--to",
                "json",
                "-o",
                "/no/such/folder/x.json",
            ],
            None,
        ),
        &["/no/such/folder"],
    );
    // A document with a field this version does not know is refused by name.
    let copy = dir.path().join("ridge.json");
    let o = mlship(&["convert", s(&src), "--to", "json", "-o", s(&copy)], None);
    assert!(o.status.success());
    let mut doc: Json = serde_json::from_slice(&std::fs::read(&copy).unwrap()).unwrap();
    doc["signature"]["colour"] = "red".into();
    std::fs::write(&copy, serde_json::to_vec(&doc).unwrap()).unwrap();
    assert_user_error(
        &mlship(&["inspect", s(&copy)], None),
        &["mlship JSON", "colour"],
    );
}

#[test]
fn pmml_documents_predict_and_inspect_like_any_model() {
    let c = case("pipeline_onehot_logreg");
    let pmml = c.join("model.pmml");
    let input = c.join("input.csv");
    let got = stdout_json(&mlship(&["predict", s(&pmml), "--input", s(&input)], None));
    let want = stdout_json(&mlship(
        &["predict", s(&c.join("model.pkl")), "--input", s(&input)],
        None,
    ));
    assert_eq!(got["predictions"], want["predictions"]);
    let info = stdout_json(&mlship(&["inspect", s(&pmml), "--output", "json"], None));
    assert_eq!(info["format"], "PMML 4.4");
    assert_eq!(info["inputs"].as_array().unwrap().len(), 4);
    // An unknown category is refused with its column named (the field's valid values are listed).
    let o = mlship(
        &[
            "predict",
            s(&pmml),
            "--input",
            "-",
            "--input-format",
            "json",
        ],
        Some(
            r#"{"dataframe_records": [{"num_a": 0.5, "num_b": 4.0, "num_c": 2.0, "color": "purple"}]}"#,
        ),
    );
    assert_user_error(&o, &["color"]);
    // A PMML model is evaluated as written: there is no lossless mlship JSON copy of it.
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("x.json");
    assert_user_error(
        &mlship(&["convert", s(&pmml), "--to", "json", "-o", s(&out)], None),
        &["losslessly", "PMML"],
    );
    assert!(!out.exists());
}

#[test]
fn onnx_models_predict_and_refuse_by_operator() {
    let c = case("pipeline_onehot_logreg");
    let onnx = c.join("model.onnx");
    let input = c.join("input.csv");
    let got = stdout_json(&mlship(&["predict", s(&onnx), "--input", s(&input)], None));
    let want = stdout_json(&mlship(
        &["predict", s(&c.join("model.pkl")), "--input", s(&input)],
        None,
    ));
    assert_eq!(got["predictions"], want["predictions"]);
    let info = stdout_json(&mlship(&["inspect", s(&onnx), "--output", "json"], None));
    assert!(info["format"].as_str().unwrap().starts_with("ONNX"));
    let dir = tempfile::tempdir().unwrap();
    let mut bytes = std::fs::read(case("mlp_classifier").join("model.onnx")).unwrap();
    let at = bytes.windows(6).position(|w| w == b"\x22\x04Relu").unwrap() + 2;
    bytes[at..at + 4].copy_from_slice(b"Gelu");
    let bad = dir.path().join("bad.onnx");
    std::fs::write(&bad, bytes).unwrap();
    assert_user_error(
        &mlship(&["inspect", s(&bad)], None),
        &["ONNX operator Gelu"],
    );
}

#[test]
fn mlflow_directories_of_the_onnx_flavor_load() {
    let dir = tempfile::tempdir().unwrap();
    let c = case("random_forest_classifier");
    std::fs::copy(c.join("model.onnx"), dir.path().join("model.onnx")).unwrap();
    std::fs::write(
        dir.path().join("MLmodel"),
        "flavors:\n  onnx:\n    data: model.onnx\n    onnx_version: 1.17.0\n  python_function:\n    data: model.onnx\n    loader_module: mlflow.onnx\nmlflow_version: 3.17.2\nsignature:\n  inputs: '[{\"type\": \"tensor\", \"tensor-spec\": {\"dtype\": \"float32\", \"shape\": [-1, 8]}}]'\n",
    )
    .unwrap();
    let got = stdout_json(&mlship(
        &["predict", s(dir.path()), "--input", s(&c.join("input.csv"))],
        None,
    ));
    let want = stdout_json(&mlship(
        &[
            "predict",
            s(&c.join("model.pkl")),
            "--input",
            s(&c.join("input.csv")),
        ],
        None,
    ));
    let (g, w) = (
        got["predictions"].as_array().unwrap(),
        want["predictions"].as_array().unwrap(),
    );
    // Row 42 is an exact probability tie that float32 breaks the other way (the corpus README).
    let differ: Vec<usize> = (0..g.len()).filter(|&i| g[i] != w[i]).collect();
    assert!(differ.iter().all(|&i| i == 42), "{differ:?}");
    let info = stdout_json(&mlship(
        &["inspect", s(dir.path()), "--output", "json"],
        None,
    ));
    assert!(
        info["format"].as_str().unwrap().contains("onnx flavor"),
        "{info}"
    );
}

#[test]
fn broken_pmml_onnx_and_booster_files_are_named_with_where() {
    let dir = tempfile::tempdir().unwrap();
    let pmml =
        std::fs::read_to_string(case("decision_tree_classifier").join("model.pmml")).unwrap();
    let cases: Vec<(&str, Vec<u8>, &[&str])> = vec![
        (
            "cut.pmml",
            pmml.as_bytes()[..pmml.len() / 3].to_vec(),
            &["malformed PMML", "XML"],
        ),
        (
            "odd.pmml",
            pmml.replacen("<True/>", "<Maybe/>", 1).into_bytes(),
            &["<Maybe>", "byte"],
        ),
        (
            "cut.json",
            std::fs::read(case("xgb_classifier").join("model.json")).unwrap()[..4000].to_vec(),
            &["XGBoost"],
        ),
        (
            "cut.onnx",
            std::fs::read(case("svc").join("model.onnx")).unwrap()[..3000].to_vec(),
            &["truncated ONNX", "at byte"],
        ),
    ];
    for (name, bytes, fragments) in cases {
        let p = dir.path().join(name);
        std::fs::write(&p, bytes).unwrap();
        assert_user_error(&mlship(&["inspect", s(&p)], None), fragments);
    }
}
