//! Scoring speed of the corpus forest and gradient-boosting models: 10,000 rows and one row.
//!
//! `cargo bench -p mlship-formats --bench score` prints one line per model: medians in
//! microseconds. `bench/score_vs_sklearn.sh` runs it next to scikit-learn and prints the ratios.

use std::path::Path;
use std::time::Instant;

use mlship_model::{Column, ColumnData, Frame};

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// input.csv's 50 rows repeated to `n` rows (all corpus forest/boosting inputs are numeric).
fn rows(case: &Path, n: usize) -> Frame {
    let text = std::fs::read_to_string(case.join("input.csv")).unwrap();
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let data: Vec<Vec<f64>> = lines
        .map(|l| {
            l.split(',')
                .map(|c| c.parse().unwrap_or(f64::NAN))
                .collect()
        })
        .collect();
    let cols = header
        .iter()
        .enumerate()
        .map(|(j, h)| {
            Column::new(
                *h,
                ColumnData::Float((0..n).map(|i| data[i % data.len()][j]).collect()),
            )
        })
        .collect();
    Frame::new(cols).unwrap()
}

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/corpus");
    let n: usize = std::env::var("ROWS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000);
    let only = std::env::var("CASE").ok();
    // MODELS="case/file …" scores other files of the corpus (XGBoost, LightGBM, ONNX, PMML);
    // by default, the scikit-learn forests and boosting models.
    let files: Vec<String> = match std::env::var("MODELS") {
        Ok(list) => list.split_whitespace().map(str::to_string).collect(),
        Err(_) => [
            "random_forest_classifier",
            "random_forest_regressor",
            "gradient_boosting_classifier",
            "gradient_boosting_regressor",
        ]
        .iter()
        .map(|c| format!("{c}/model.pkl"))
        .collect(),
    };
    for file in &files {
        let (case, _) = file.split_once('/').unwrap();
        if only.as_deref().is_some_and(|o| o != case) {
            continue;
        }
        let dir = root.join(case);
        let model = mlship_formats::load(&std::fs::read(root.join(file)).unwrap()).unwrap();
        let case = if std::env::var("MODELS").is_ok() {
            file.as_str()
        } else {
            case
        };
        let big = rows(&dir, n);
        let one = rows(&dir, 1);
        let mut batch = Vec::new();
        let reps: usize = std::env::var("REPS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(15);
        for _ in 0..reps {
            let t = Instant::now();
            std::hint::black_box(model.predict(&big).unwrap());
            batch.push(t.elapsed().as_secs_f64() * 1e6);
        }
        let mut single = Vec::new();
        for _ in 0..reps * 100 {
            let t = Instant::now();
            std::hint::black_box(model.predict(&one).unwrap());
            single.push(t.elapsed().as_secs_f64() * 1e6);
        }
        println!(
            "mlship {case} rows={n} batch_us={:.1} one_row_us={:.2}",
            median(batch),
            median(single)
        );
    }
}
