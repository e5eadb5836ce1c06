//! Data-driven conformance: every scikit-learn model file of the fixture corpus scores as
//! scikit-learn did (`expected.json`), within the corpus README's tolerances.
//!
//! `MLSHIP_CORPUS=DIR` points the test at another corpus made by the same generator.

use std::path::{Path, PathBuf};

use mlship_model::{
    Column, ColumnData, DType, Frame, Label, Matrix, Model, Output, Predictions, Scores,
};
use serde_json::Value as Json;

/// The corpora to check: `MLSHIP_CORPUS` (one folder), else the shared corpus and our extra cases.
fn corpus_dirs() -> Vec<PathBuf> {
    match std::env::var_os("MLSHIP_CORPUS") {
        Some(d) => vec![std::fs::canonicalize(PathBuf::from(d)).expect("MLSHIP_CORPUS exists")],
        None => {
            let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures");
            vec![root.join("corpus"), root.join("extra")]
        }
    }
}

fn cases() -> Vec<PathBuf> {
    let mut v = Vec::new();
    for dir in corpus_dirs() {
        let mut found: Vec<PathBuf> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("the fixture corpus {} exists: {e}", dir.display()))
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.join("expected.json").exists())
            .collect();
        assert!(!found.is_empty(), "no cases in {}", dir.display());
        found.sort();
        v.extend(found);
    }
    v
}

fn read_json(p: &Path) -> Json {
    serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()
}

/// input.csv, typed by the model's signature (an empty field is a missing value).
fn frame(case: &Path, model: &Model) -> Frame {
    let text = std::fs::read_to_string(case.join("input.csv")).unwrap();
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let rows: Vec<Vec<&str>> = lines.map(|l| l.split(',').collect()).collect();
    let sig = &model.signature;
    let cols = header
        .iter()
        .enumerate()
        .map(|(j, name)| {
            let dtype = if sig.named {
                sig.inputs
                    .iter()
                    .find(|f| f.name == *name)
                    .map_or(DType::Float, |f| f.dtype)
            } else {
                sig.inputs.get(j).map_or(DType::Float, |f| f.dtype)
            };
            let cells = rows.iter().map(|r| r[j]);
            let data = if dtype == DType::Str {
                ColumnData::Str(
                    cells
                        .map(|c| {
                            if c.is_empty() {
                                None
                            } else {
                                Some(c.to_string())
                            }
                        })
                        .collect(),
                )
            } else {
                ColumnData::Float(
                    cells
                        .map(|c| {
                            if c.is_empty() {
                                f64::NAN
                            } else {
                                c.parse().unwrap()
                            }
                        })
                        .collect(),
                )
            };
            Column::new(*name, data)
        })
        .collect();
    Frame::new(cols).unwrap()
}

fn label_eq(l: &Label, e: &Json) -> bool {
    match (l, e) {
        (Label::Int(i), Json::Number(n)) => n.as_i64() == Some(*i),
        (Label::Float(f), Json::Number(n)) => n.as_f64() == Some(*f),
        (Label::Str(s), Json::String(t)) => s == t,
        (Label::Bool(b), Json::Bool(c)) => b == c,
        _ => false,
    }
}

fn nums(v: &Json) -> Vec<f64> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap())
        .collect()
}

fn close_abs(what: &str, got: &[f64], want: &[f64], tol: f64) -> Result<(), String> {
    if got.len() != want.len() {
        return Err(format!(
            "{what}: {} values, expected {}",
            got.len(),
            want.len()
        ));
    }
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        let within = (g - w).abs() <= tol;
        if !within {
            return Err(format!(
                "{what}[{i}]: got {g}, expected {w} (abs diff {:e} > {tol:e})",
                (g - w).abs()
            ));
        }
    }
    Ok(())
}

fn close_rel(what: &str, got: &[f64], want: &[f64], tol: f64) -> Result<(), String> {
    if got.len() != want.len() {
        return Err(format!(
            "{what}: {} values, expected {}",
            got.len(),
            want.len()
        ));
    }
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        let d = (g - w).abs();
        let ok = if w.abs() < 1.0 {
            d <= tol
        } else {
            d <= tol * w.abs()
        };
        if !ok {
            return Err(format!("{what}[{i}]: got {g}, expected {w} (diff {d:e})"));
        }
    }
    Ok(())
}

fn matrix_rows(m: &Matrix) -> Vec<f64> {
    m.as_slice().to_vec()
}

fn flat(v: &Json) -> Vec<f64> {
    match v {
        Json::Array(a) if a.first().is_some_and(Json::is_array) => {
            a.iter().flat_map(nums).collect()
        }
        _ => nums(v),
    }
}

/// Compares an output with expected.json at scikit-learn's float64 tolerance.
fn check(out: &Output, exp: &Json) -> Result<(), String> {
    check_at(out, exp, 1e-9, 1e-9)
}

/// Compares an output with expected.json: probabilities within `prob_tol` (absolute),
/// predictions within `pred_tol` (absolute or relative), labels exactly.
fn check_at(out: &Output, exp: &Json, prob_tol: f64, pred_tol: f64) -> Result<(), String> {
    let preds = &exp["predictions"];
    match &out.predictions {
        Predictions::Labels(_) | Predictions::Classes(_) => {
            let l = out.labels().ok_or("class indices past the classes")?;
            let e = preds.as_array().unwrap();
            for (i, (g, w)) in l.iter().zip(e).enumerate() {
                if !label_eq(g, w) {
                    return Err(format!("label of row {i}: got {g}, expected {w}"));
                }
            }
            if l.len() != e.len() {
                return Err("wrong number of labels".into());
            }
        }
        Predictions::Values(v) => close_rel("prediction", v, &nums(preds), pred_tol)?,
        Predictions::Clusters(c) => {
            let want: Vec<i64> = preds
                .as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_i64().unwrap())
                .collect();
            if *c != want {
                return Err(format!("clusters differ: got {c:?}"));
            }
        }
    }
    if let Some(classes) = exp.get("classes") {
        let got = out.classes.as_ref().ok_or("no classes")?;
        let want = classes.as_array().unwrap();
        if got.len() != want.len() || !got.iter().zip(want).all(|(g, w)| label_eq(g, w)) {
            return Err(format!("classes differ: got {got:?}"));
        }
    }
    match exp.get("probabilities") {
        Some(Json::Null) | None => {}
        Some(p) => close_abs(
            "probabilities",
            &matrix_rows(out.probabilities.as_ref().ok_or("no probabilities")?),
            &flat(p),
            prob_tol,
        )?,
    }
    if let Some(d) = exp.get("decision_function") {
        let got = match out
            .decision_function
            .as_ref()
            .ok_or("no decision_function")?
        {
            Scores::Vector(v) => v.clone(),
            Scores::Matrix(m) => matrix_rows(m),
        };
        close_abs("decision_function", &got, &flat(d), prob_tol)?;
    }
    if let Some(d) = exp.get("distances") {
        close_rel(
            "distances",
            &matrix_rows(out.distances.as_ref().ok_or("no distances")?),
            &flat(d),
            pred_tol,
        )?;
    }
    Ok(())
}

fn model_files(case: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(case)
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            let n = p.file_name().unwrap().to_string_lossy().to_string();
            n.starts_with("model")
                && (n.ends_with(".pkl") || n.ends_with(".joblib") || n.ends_with(".skops"))
        })
        .collect();
    v.sort();
    v
}

fn mlflow_dirs(case: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(case)
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.join("MLmodel").exists())
        .collect();
    v.sort();
    v
}

#[test]
fn every_sklearn_model_file_scores_as_sklearn_did() {
    let mut checked = 0;
    let mut failures = Vec::new();
    for case in cases() {
        let info = read_json(&case.join("case.json"));
        let exp = read_json(&case.join("expected.json"));
        let library = info["library"].as_str().unwrap_or("sklearn");
        for file in model_files(&case) {
            let name = format!(
                "{}/{}",
                case.file_name().unwrap().to_string_lossy(),
                file.file_name().unwrap().to_string_lossy()
            );
            let bytes = std::fs::read(&file).unwrap();
            let loaded = mlship_formats::load(&bytes);
            if library == "xgboost" {
                continue; // checked at XGBoost's float32 tolerances below
            }
            if library != "sklearn" && library != "lightgbm" {
                failures.push(format!(
                    "{name}: a pickle of an unexpected library {library}"
                ));
                continue;
            }
            // LightGBM's scikit-learn wrappers score through the model text their Booster holds,
            // at LightGBM's float64 tolerance (the same 1e-9).
            let result = loaded
                .map_err(|e| format!("load: {e}"))
                .and_then(|m| {
                    m.predict(&frame(&case, &m))
                        .map_err(|e| format!("predict: {e}"))
                })
                .and_then(|out| check(&out, &exp));
            checked += 1;
            if let Err(e) = result {
                failures.push(format!("{name}: {e}"));
            }
        }
        // Other libraries' MLflow directories are checked at their own tolerance.
        for dir in mlflow_dirs(&case)
            .into_iter()
            .filter(|_| library == "sklearn")
        {
            let name = format!(
                "{}/{}",
                case.file_name().unwrap().to_string_lossy(),
                dir.file_name().unwrap().to_string_lossy()
            );
            let result = (|| {
                let ml = mlship_formats::mlflow::parse_mlmodel(
                    &std::fs::read_to_string(dir.join("MLmodel")).unwrap(),
                )
                .map_err(|e| e.to_string())?;
                let bytes = std::fs::read(dir.join(&ml.artifact)).unwrap();
                let m =
                    mlship_formats::load_mlflow(&ml, &bytes).map_err(|e| format!("load: {e}"))?;
                let out = m
                    .predict(&frame(&case, &m))
                    .map_err(|e| format!("predict: {e}"))?;
                check(&out, &exp)
            })();
            checked += 1;
            if let Err(e) = result {
                failures.push(format!("{name}: {e}"));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {checked} files differ from scikit-learn:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert!(checked > 0);
    eprintln!("{checked} model files score as scikit-learn did");
}

fn load_file_or_mlflow_dir(path: &Path) -> mlship_formats::Result<Model> {
    if path.is_dir() {
        let ml = mlship_formats::mlflow::parse_mlmodel(
            &std::fs::read_to_string(path.join("MLmodel")).unwrap(),
        )?;
        mlship_formats::load_mlflow(&ml, &std::fs::read(path.join(&ml.artifact)).unwrap())
    } else {
        mlship_formats::load(&std::fs::read(path).unwrap())
    }
}

/// XGBoost's own JSON and UBJSON files, its pickled scikit-learn wrappers, and MLflow's xgboost
/// flavor score as XGBoost did, at the corpus README's float32 tolerances (XGBoost predicts in
/// float32): probabilities 1e-5, predictions and margins 1e-4.
#[test]
fn xgboost_files_score_as_xgboost_did() {
    let checked = score_library_files(
        "xgboost",
        |case| {
            let native = ["model.json", "model.ubj"].map(|f| case.join(f));
            let mut v: Vec<PathBuf> = native.into_iter().filter(|f| f.exists()).collect();
            v.extend(model_files(case));
            v.extend(mlflow_dirs(case));
            v
        },
        |out, exp, _| {
            check_at(out, exp, 1e-5, 1e-4)?;
            // Regressors' margins are their predictions (checked above) or their log.
            match margin(out) {
                Some(m) => close_rel("raw_scores", &m, &flat(&exp["raw_scores"]), 1e-4),
                None => Ok(()),
            }
        },
    );
    eprintln!("{checked} XGBoost files score as XGBoost did");
}

/// LightGBM's text files and MLflow's lightgbm flavor score as LightGBM did. LightGBM scores
/// in float64 and adds its trees in order, as the IR does, so the float64 tolerance holds
/// (margins included).
#[test]
fn lightgbm_files_score_as_lightgbm_did() {
    let checked = score_library_files(
        "lightgbm",
        |case| {
            let text = case.join("model.txt");
            if !text.exists() {
                return Vec::new();
            }
            // The JSON dump (`dump_model()`), where the case has one, scores the same.
            let dump = Some(case.join("model.json")).filter(|p| p.exists());
            std::iter::once(text)
                .chain(dump)
                .chain(mlflow_dirs(case))
                .collect()
        },
        |out, exp, case| {
            check(out, exp)?;
            // In random-forest mode LightGBM's raw_score is the sum of the trees, while the
            // probabilities come from their mean (our margin): only the probabilities compare.
            let averaged = std::fs::read_to_string(case.join("model.txt"))
                .unwrap()
                .contains("\naverage_output\n");
            match margin(out) {
                Some(m) if !averaged => {
                    close_abs("raw_scores", &m, &flat(&exp["raw_scores"]), 1e-9)
                }
                _ => Ok(()),
            }
        },
    );
    eprintln!("{checked} LightGBM files score as LightGBM did");
}

/// The margin a classifier reports (`decision_function`), flattened row-major.
fn margin(out: &Output) -> Option<Vec<f64>> {
    match out.decision_function.as_ref()? {
        Scores::Vector(v) => Some(v.clone()),
        Scores::Matrix(m) => Some(matrix_rows(m)),
    }
}

/// Loads and scores every file that `files` lists for the cases of `library`, checks each
/// output with `check_out(output, expected, case)`, and fails with every difference at once.
/// Returns how many files were checked (at least one).
fn score_library_files(
    library: &str,
    files: impl Fn(&Path) -> Vec<PathBuf>,
    check_out: impl Fn(&Output, &Json, &Path) -> Result<(), String>,
) -> usize {
    let mut checked = 0;
    let mut failures = Vec::new();
    for case in cases() {
        if read_json(&case.join("case.json"))["library"] != library {
            continue;
        }
        let exp = read_json(&case.join("expected.json"));
        for file in files(&case) {
            let name = format!(
                "{}/{}",
                case.file_name().unwrap().to_string_lossy(),
                file.file_name().unwrap().to_string_lossy()
            );
            let result = load_file_or_mlflow_dir(&file)
                .map_err(|e| format!("load: {e}"))
                .and_then(|m| {
                    m.predict(&frame(&case, &m))
                        .map_err(|e| format!("predict: {e}"))
                })
                .and_then(|out| check_out(&out, &exp, &case));
            checked += 1;
            if let Err(e) = result {
                failures.push(format!("{name}: {e}"));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert!(checked > 0, "no {library} files in the corpus");
    checked
}

/// Every model of both corpora that loads, written as mlship JSON and read back, is the same IR
/// and scores the same, bit for bit (so the copy scores as the training library did wherever
/// the source does).
#[test]
fn every_model_round_trips_through_mlship_json() {
    let mut checked = 0;
    let mut failures = Vec::new();
    for case in cases() {
        let mut sources = model_files(&case);
        sources.extend(mlflow_dirs(&case));
        // The boosters' own files lower to the IR too.
        sources.extend(
            ["model.json", "model.ubj", "model.txt"]
                .iter()
                .map(|f| case.join(f))
                .filter(|p| p.exists()),
        );
        for file in sources {
            let name = format!(
                "{}/{}",
                case.file_name().unwrap().to_string_lossy(),
                file.file_name().unwrap().to_string_lossy()
            );
            let Ok(m) = load_file_or_mlflow_dir(&file) else {
                continue; // refusals are checked above
            };
            let text = mlship_formats::mlship_json::write(&m).unwrap();
            let back = match mlship_formats::load(&text) {
                Ok(b) => b,
                Err(e) => {
                    failures.push(format!("{name}: reading the JSON copy: {e}"));
                    continue;
                }
            };
            checked += 1;
            // Debug text, not ==, so that NaN parameters (missing-value codes) compare equal.
            let same = |a: &Model, b: &Model| {
                format!("{:?}{:?}{:?}", a.signature, a.steps, a.estimator)
                    == format!("{:?}{:?}{:?}", b.signature, b.steps, b.estimator)
            };
            if !same(&back, &m) {
                failures.push(format!("{name}: the JSON copy is a different model"));
                continue;
            }
            let again = mlship_formats::mlship_json::write(&back).unwrap();
            let twice = mlship_formats::load(&again)
                .map(|m| mlship_formats::mlship_json::write(&m).unwrap());
            if twice.as_ref().ok() != Some(&again) {
                failures.push(format!("{name}: the JSON copy is not a fixed point"));
            }
            let f = frame(&case, &m);
            let (a, b) = (m.predict(&f), back.predict(&f));
            if format!("{a:?}") != format!("{b:?}") {
                failures.push(format!("{name}: {a:?} vs {b:?}"));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert!(checked > 200, "only {checked} models round-tripped");
    eprintln!("{checked} models round-trip through mlship JSON");
}

/// Every PMML file of the corpus (sklearn2pmml's and nyoka's) scores as the training library did,
/// on the rows where the reference engine (JPMML-Evaluator) agreed with it, within the corpus
/// README's tolerance or ten times the reference engine's own difference, whichever is larger.
#[test]
fn every_pmml_file_scores_as_its_reference_engine_agreed() {
    let mut checked = 0;
    let mut failures = Vec::new();
    let mut skipped = Vec::new();
    for case in cases() {
        let info = read_json(&case.join("case.json"));
        let exp = read_json(&case.join("expected.json"));
        let xgb = info["library"] == "xgboost";
        for (file, reference) in [
            ("model.pmml", "pmml_jpmml_evaluator"),
            ("model.nyoka.pmml", "nyoka_pmml_jpmml_evaluator"),
        ] {
            let path = case.join(file);
            if !path.exists() {
                continue;
            }
            let name = format!("{}/{file}", case.file_name().unwrap().to_string_lossy());
            let agrees = &info["formats"][file]["agrees_with_expected"];
            let rows = if agrees["all_rows"] == true {
                usize::MAX
            } else if agrees["rows_0_43"] == true {
                44
            } else {
                skipped.push(name);
                continue;
            };
            let diffs = &info["reference_scorer_diffs"][reference];
            let suffix = if rows == 44 { "_rows_0_43" } else { "" };
            let floor = |key: &str, table: f64| {
                diffs[format!("{key}{suffix}")]
                    .as_f64()
                    .map_or(table, |d| table.max(10.0 * d))
            };
            let prob_tol = floor("max_abs_diff_probabilities", if xgb { 1e-6 } else { 1e-9 });
            let pred_tol = floor("max_rel_diff_predictions", if xgb { 1e-5 } else { 1e-9 }).max(
                floor("max_abs_diff_predictions", if xgb { 1e-6 } else { 1e-9 }),
            );
            let mut allowed: Vec<u64> = Vec::new();
            for key in ["label_mismatch_rows", "probability_tie_rows"] {
                let src = if key == "probability_tie_rows" {
                    &info[key]
                } else {
                    &diffs[key]
                };
                allowed.extend(
                    src.as_array()
                        .into_iter()
                        .flatten()
                        .filter_map(|v| v.as_u64()),
                );
            }
            checked += 1;
            let result = load_file_or_mlflow_dir(&path)
                .map_err(|e| format!("load: {e}"))
                .and_then(|m| {
                    m.predict(&frame(&case, &m))
                        .map_err(|e| format!("predict: {e}"))
                })
                .and_then(|out| check_rows(&out, &exp, rows, prob_tol, pred_tol, &allowed));
            if let Err(e) = result {
                failures.push(format!("{name}: {e}"));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert!(checked >= 30, "only {checked} PMML files checked");
    eprintln!(
        "{checked} PMML files score as their training library did; not compared (the reference engine disagreed too): {skipped:?}"
    );
}

/// Labels (except the allowed rows), regression values and, where the document gives them,
/// probabilities, on the first `rows` rows.
fn check_rows(
    out: &Output,
    exp: &Json,
    rows: usize,
    prob_tol: f64,
    pred_tol: f64,
    allowed: &[u64],
) -> Result<(), String> {
    let preds = exp["predictions"].as_array().unwrap();
    let n = preds.len().min(rows);
    match &out.predictions {
        Predictions::Labels(_) | Predictions::Classes(_) => {
            let l = out.labels().ok_or("class indices past the classes")?;
            for (i, (g, w)) in l.iter().zip(preds).take(n).enumerate() {
                if !label_eq(g, w) && !allowed.contains(&(i as u64)) {
                    return Err(format!("label of row {i}: got {g}, expected {w}"));
                }
            }
        }
        Predictions::Values(v) => close_rel(
            "prediction",
            &v[..n],
            &nums(&exp["predictions"])[..n],
            pred_tol,
        )?,
        Predictions::Clusters(c) => {
            for (i, (g, w)) in c.iter().zip(preds).take(n).enumerate() {
                if Some(*g) != w.as_i64() {
                    return Err(format!("cluster of row {i}: got {g}, expected {w}"));
                }
            }
        }
    }
    if let (Some(p), Some(Json::Array(want))) = (&out.probabilities, exp.get("probabilities")) {
        let k = p.cols();
        for i in 0..n {
            if allowed.contains(&(i as u64)) {
                continue;
            }
            let w = nums(&want[i]);
            close_abs(&format!("probabilities of row {i}"), p.row(i), &w, prob_tol)?;
            let _ = k;
        }
    }
    Ok(())
}

/// Renames a frame's columns, by position, to a copy's input names (for models fitted without
/// column names, whose PMML copies need names).
fn renamed(f: &Frame, sig: &mlship_model::Signature) -> Frame {
    let cols = f
        .columns()
        .iter()
        .zip(&sig.inputs)
        .map(|(c, field)| Column::new(field.name.clone(), c.data.clone()))
        .collect();
    Frame::new(cols).unwrap()
}

/// Every scikit-learn model of both corpora that the PMML writer takes, written as PMML and read
/// back by mlship's evaluator, scores as scikit-learn did (labels exactly, numbers to 1e-9).
/// What the writer refuses is refused with its reason.
#[test]
fn every_sklearn_model_written_as_pmml_scores_as_scikit_learn_did() {
    let mut written = 0;
    let mut refused = std::collections::BTreeMap::<String, usize>::new();
    let mut failures = Vec::new();
    for case in cases() {
        let info = read_json(&case.join("case.json"));
        if info["library"] != "sklearn" {
            continue;
        }
        let exp = read_json(&case.join("expected.json"));
        let allowed: Vec<u64> = info["probability_tie_rows"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|v| v.as_u64())
            .collect();
        let Some(file) = model_files(&case).into_iter().next() else {
            continue;
        };
        let name = case.file_name().unwrap().to_string_lossy().to_string();
        let m = mlship_formats::load(&std::fs::read(&file).unwrap()).unwrap();
        let text = match mlship_formats::pmml::write(&m) {
            Ok(t) => t,
            Err(e) => {
                *refused.entry(e.to_string()).or_default() += 1;
                continue;
            }
        };
        written += 1;
        let result = mlship_formats::load(text.as_bytes())
            .map_err(|e| format!("reading the copy: {e}"))
            .and_then(|copy| {
                let f = frame(&case, &m);
                let f = if m.signature.named {
                    f
                } else {
                    renamed(&f, &copy.signature)
                };
                copy.predict(&f).map_err(|e| format!("predict: {e}"))
            })
            .and_then(|out| check_rows(&out, &exp, usize::MAX, 1e-9, 1e-9, &allowed));
        if let Err(e) = result {
            failures.push(format!("{name}: {e}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    eprintln!("{written} written; refused: {refused:#?}");
    assert!(written >= 54, "only {written} models written as PMML");
    eprintln!("{written} models written as PMML score as scikit-learn did; refused: {refused:#?}");
}

/// Every ONNX file of the corpus scores as the training library did on rows 0-43 (the float32
/// rows the corpus README compares ONNX on), at float32 tolerances or ten times onnxruntime's own
/// difference; labels may differ only where onnxruntime's did, or at exact probability ties.
#[test]
fn every_onnx_file_scores_as_onnxruntime_agreed() {
    let mut checked = 0;
    let mut failures = Vec::new();
    for case in cases() {
        let path = case.join("model.onnx");
        if !path.exists() {
            continue;
        }
        let info = read_json(&case.join("case.json"));
        let exp = read_json(&case.join("expected.json"));
        let name = format!("{}/model.onnx", case.file_name().unwrap().to_string_lossy());
        if info["formats"]["model.onnx"]["agrees_with_expected"]["rows_0_43"] != true {
            continue;
        }
        let diffs = &info["reference_scorer_diffs"]["onnx_onnxruntime"];
        let floor = |key: &str, table: f64| {
            diffs[format!("{key}_rows_0_43")]
                .as_f64()
                .map_or(table, |d| table.max(10.0 * d))
        };
        let prob_tol = floor("max_abs_diff_probabilities", 1e-5);
        let pred_tol =
            floor("max_rel_diff_predictions", 1e-4).max(floor("max_abs_diff_predictions", 1e-4));
        let mut allowed: Vec<u64> = Vec::new();
        allowed.extend(
            diffs["label_mismatch_rows"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|v| v.as_u64()),
        );
        allowed.extend(
            info["probability_tie_rows"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|v| v.as_u64()),
        );
        // Probabilities are compared where onnxruntime's were (an SVM without Platt scaling
        // gives decision values there).
        let mut exp = exp.clone();
        if diffs.get("max_abs_diff_probabilities").is_none() {
            exp.as_object_mut().unwrap().remove("probabilities");
        }
        checked += 1;
        let result = load_file_or_mlflow_dir(&path)
            .map_err(|e| format!("load: {e}"))
            .and_then(|m| {
                m.predict(&frame(&case, &m))
                    .map_err(|e| format!("predict: {e}"))
            })
            .and_then(|out| check_rows(&out, &exp, 44, prob_tol, pred_tol, &allowed));
        if let Err(e) = result {
            failures.push(format!("{name}: {e}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert!(checked >= 20, "only {checked} ONNX files checked");
    eprintln!("{checked} ONNX files score as onnxruntime did");
}
