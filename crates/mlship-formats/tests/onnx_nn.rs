//! Neural-network ONNX graphs (fixtures/nn): run by tract and scored as onnxruntime did in builds
//! with the `tract` feature; refused with the operator's name and the feature to turn on in others.

use std::path::{Path, PathBuf};

use mlship_model::{Column, ColumnData, Frame};

fn cases() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/nn");
    let mut v: Vec<PathBuf> = std::fs::read_dir(&root)
        .expect("fixtures/nn exists")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.join("model.onnx").exists())
        .collect();
    v.sort();
    assert!(v.len() >= 3, "the neural-network cases are missing");
    v
}

/// input.csv as float columns.
#[cfg_attr(not(feature = "tract"), allow(dead_code))]
fn frame(case: &Path) -> Frame {
    let text = std::fs::read_to_string(case.join("input.csv")).unwrap();
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let rows: Vec<Vec<f64>> = lines
        .map(|l| l.split(',').map(|c| c.parse().unwrap()).collect())
        .collect();
    let cols = header
        .iter()
        .enumerate()
        .map(|(j, h)| Column::new(*h, ColumnData::Float(rows.iter().map(|r| r[j]).collect())))
        .collect();
    Frame::new(cols).unwrap()
}

#[cfg(not(feature = "tract"))]
#[test]
fn neural_networks_are_refused_naming_the_operator_and_the_feature() {
    for case in cases() {
        let err = mlship_formats::load(&std::fs::read(case.join("model.onnx")).unwrap())
            .err()
            .unwrap_or_else(|| panic!("{} loaded without tract", case.display()))
            .to_string();
        assert!(err.contains("the ONNX operator"), "{err}");
        assert!(err.contains("--features tract"), "{err}");
    }
}

#[cfg(feature = "tract")]
#[test]
fn neural_networks_score_as_onnxruntime_did() {
    use mlship_model::{Label, Predictions};
    use serde_json::Value as Json;
    for case in cases() {
        let name = case.file_name().unwrap().to_string_lossy().into_owned();
        let exp: Json =
            serde_json::from_str(&std::fs::read_to_string(case.join("expected.json")).unwrap())
                .unwrap();
        let model = mlship_formats::load(&std::fs::read(case.join("model.onnx")).unwrap())
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(
            model.info.format.contains("tract"),
            "{name}: {}",
            model.info.format
        );
        let out = model.predict(&frame(&case)).unwrap();
        let want: Vec<Vec<f64>> = serde_json::from_value(exp["output"].clone()).unwrap();
        // float32 graphs: tract and onnxruntime may order their sums differently.
        let close = |a: f64, b: f64| (a - b).abs() <= 1e-5 + 1e-4 * b.abs();
        match (&out.predictions, exp["task"].as_str().unwrap()) {
            (Predictions::Values(v), "regression") => {
                assert_eq!(v.len(), want.len(), "{name}");
                for (i, (a, w)) in v.iter().zip(&want).enumerate() {
                    assert!(close(*a, w[0]), "{name} row {i}: {a} against {}", w[0]);
                }
            }
            (Predictions::Labels(labels), "classification") => {
                let scores = out
                    .probabilities
                    .clone()
                    .or_else(|| match &out.decision_function {
                        Some(mlship_model::Scores::Matrix(m)) => Some(m.clone()),
                        _ => None,
                    })
                    .unwrap_or_else(|| panic!("{name}: no scores"));
                // A Softmax output is probabilities; raw logits are decision values.
                let softmax = name.contains("conv1d");
                assert_eq!(out.probabilities.is_some(), softmax, "{name}");
                let predictions = exp["predictions"].as_array().unwrap();
                for (i, w) in want.iter().enumerate() {
                    for (j, v) in w.iter().enumerate() {
                        let a = scores.get(i, j);
                        assert!(close(a, *v), "{name} row {i} class {j}: {a} against {v}");
                    }
                    let label = Label::Int(predictions[i].as_i64().unwrap());
                    assert_eq!(labels[i], label, "{name} row {i}");
                }
            }
            (p, task) => panic!("{name}: {p:?} for a {task} case"),
        }
        // One row at a time gives the same answer as the batch.
        let one = Frame::new(
            frame(&case)
                .columns()
                .iter()
                .map(|c| match &c.data {
                    ColumnData::Float(v) => {
                        Column::new(&c.name, ColumnData::Float(v[..1].to_vec()))
                    }
                    _ => unreachable!(),
                })
                .collect(),
        )
        .unwrap();
        assert_eq!(model.predict(&one).unwrap().predictions.len(), 1, "{name}");
    }
}
