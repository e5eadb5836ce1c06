//! `mlship convert MODEL --to json|pmml -o OUT`: writes the copy only after it has been read back
//! and has scored exactly as the source on the given or generated rows.

use std::io::Write;

use anyhow::Context;
use mlship_model::{Category, Column, ColumnData, DType, Model, Output, Step};

use crate::cli::{ConvertArgs, ConvertTarget};
use crate::settings::Settings;
use crate::{model_ref, user};

pub fn run(a: &ConvertArgs, settings: &Settings) -> anyhow::Result<()> {
    crate::commands::image::check_output_folder(&a.output)?;
    let source = model_ref::load(&a.model, settings)?;
    let bytes = match a.to {
        ConvertTarget::Json => mlship_formats::mlship_json::write(&source.model).map_err(|e| {
            user(
                format!("cannot convert {} losslessly: {e}", source.source),
                "keep serving the source file; it loads as it is",
            )
        })?,
        ConvertTarget::Pmml => mlship_formats::pmml::write(&source.model)
            .map_err(|e| {
                user(
                    format!("{} {e}", source.source),
                    "convert --to json keeps every model exactly; PMML cannot say this one",
                )
            })?
            .into_bytes(),
    };
    let copy = mlship_formats::load(&bytes).context("reading the converted copy back")?;
    let same = |m: &Model| format!("{:?}{:?}{:?}", m.signature, m.steps, m.estimator);
    if a.to == ConvertTarget::Json && same(&copy) != same(&source.model) {
        return Err(user(
            "the converted copy is not the same model; nothing was written",
            "this is a bug in mlship's writer; please report it with the model",
        ));
    }
    let frame = match &a.input {
        Some(p) => {
            let text = std::fs::read_to_string(p).map_err(|e| {
                user(
                    format!("cannot read {}: {e}", p.display()),
                    "pass a CSV or JSON file",
                )
            })?;
            let format = match p.extension().and_then(|e| e.to_str()) {
                Some("json") => mlship_server::input::InputFormat::Json,
                Some("ndjson" | "jsonl") => mlship_server::input::InputFormat::Ndjson,
                _ => mlship_server::input::InputFormat::Csv,
            };
            mlship_server::input::parse(&text, format, &source.model.signature)?
        }
        None => generated_rows(&source.model),
    };
    // A model fitted without column names takes columns by position; its copy has names.
    let copy_frame = if source.model.signature.named {
        frame.clone()
    } else {
        let cols = frame
            .columns()
            .iter()
            .zip(&copy.signature.inputs)
            .map(|(c, f)| Column::new(f.name.clone(), c.data.clone()))
            .collect();
        mlship_model::Frame::new(cols)?
    };
    let (want, got) = (source.model.predict(&frame), copy.predict(&copy_frame));
    let verdict = match (a.to, &want, &got) {
        (ConvertTarget::Json, _, _) if format!("{want:?}") == format!("{got:?}") => Ok(()),
        (ConvertTarget::Json, _, _) => Err("it scores differently".to_string()),
        (ConvertTarget::Pmml, Ok(w), Ok(g)) => same_scores(w, g, 1e-9),
        // Both refuse the same rows (an unknown category, say): compare on rows that score.
        (ConvertTarget::Pmml, Err(_), Err(_)) => Ok(()),
        (ConvertTarget::Pmml, w, g) => Err(format!(
            "the source {} and the copy {}",
            w.as_ref()
                .map_or_else(|e| format!("fails ({e})"), |_| "scores".into()),
            g.as_ref()
                .map_or_else(|e| format!("fails ({e})"), |_| "scores".into())
        )),
    };
    if let Err(why) = verdict {
        return Err(user(
            format!("the converted copy does not score as the source: {why}; nothing was written"),
            "this is a bug in mlship's writer; please report it with the model",
        ));
    }
    let dir = match a.output.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => std::path::PathBuf::from("."),
    };
    let mut tmp = tempfile::NamedTempFile::new_in(&dir)
        .with_context(|| format!("writing into {}", dir.display()))?;
    tmp.write_all(&bytes)?;
    tmp.as_file().sync_all()?;
    tmp.persist(&a.output)
        .map_err(|e| e.error)
        .with_context(|| format!("writing {}", a.output.display()))?;
    let rows = frame.n_rows();
    let format = match a.to {
        ConvertTarget::Json => "mlship JSON",
        ConvertTarget::Pmml => "PMML 4.4",
    };
    crate::outln!(
        "wrote {} ({format}, {} bytes); it scores as {} on {rows} rows",
        a.output.display(),
        bytes.len(),
        source.source
    );
    Ok(())
}

/// Labels and clusters equal; values within `tol` (relative, or absolute below 1); the source's
/// probabilities within `tol` (absolute).
fn same_scores(w: &Output, g: &Output, tol: f64) -> Result<(), String> {
    use mlship_model::Predictions as P;
    let close =
        |a: f64, b: f64| (a.is_nan() && b.is_nan()) || (a - b).abs() <= tol * b.abs().max(1.0);
    match (&w.predictions, &g.predictions) {
        (P::Labels(_) | P::Classes(_), P::Labels(_) | P::Classes(_))
            if w.labels() == g.labels() => {}
        (P::Clusters(a), P::Clusters(b)) if a == b => {}
        (P::Values(a), P::Values(b))
            if a.len() == b.len() && a.iter().zip(b).all(|(x, y)| close(*y, *x)) => {}
        _ => return Err("its predictions differ".into()),
    }
    if let Some(pw) = &w.probabilities {
        let Some(pg) = &g.probabilities else {
            return Err("it gives no probabilities".into());
        };
        let (a, b) = (pw.as_slice(), pg.as_slice());
        if a.len() != b.len() || a.iter().zip(b).any(|(x, y)| (x - y).abs() > tol) {
            return Err("its probabilities differ".into());
        }
    }
    Ok(())
}

/// Rows that exercise the model: for numbers a spread from -1e3 to 1e3 with 0, halves and (when
/// nullable) missing values; for strings every category the encoders know, then missing.
fn generated_rows(m: &Model) -> mlship_model::Frame {
    const N: usize = 64;
    let mut known: Vec<(String, Vec<String>)> = Vec::new();
    collect_categories(&m.steps, &mut known);
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        (seed >> 11) as f64 / (1u64 << 53) as f64
    };
    m.signature
        .frame(|f| match f.dtype {
            DType::Str => {
                let cats = known
                    .iter()
                    .find(|(name, _)| *name == f.name)
                    .map(|(_, c)| c.clone())
                    .unwrap_or_default();
                ColumnData::Str(
                    (0..N)
                        .map(|i| {
                            if cats.is_empty() || (f.nullable && i % 9 == 8) {
                                None
                            } else {
                                Some(cats[i % cats.len()].clone())
                            }
                        })
                        .collect(),
                )
            }
            _ => ColumnData::Float(
                (0..N)
                    .map(|i| match i % 8 {
                        0 => 0.0,
                        1 if f.nullable => f64::NAN,
                        2 => 0.5,
                        3 => -(next() * 1e3),
                        4 => next() * 1e3,
                        _ => (next() - 0.5) * 20.0,
                    })
                    .map(|x| {
                        if f.dtype == DType::Float {
                            x
                        } else {
                            x.round()
                        }
                    })
                    .collect(),
            ),
        })
        .expect("generated columns have equal lengths")
}

fn collect_categories(steps: &[Step], out: &mut Vec<(String, Vec<String>)>) {
    for s in steps {
        let (columns, categories) = match s {
            Step::OneHot(o) => (&o.columns, &o.categories),
            Step::Ordinal(o) => (&o.columns, &o.categories),
            Step::Columns { parts } => {
                for (_, inner) in parts {
                    collect_categories(inner, out);
                }
                continue;
            }
            _ => continue,
        };
        for (c, cats) in columns.iter().zip(categories) {
            let strs = cats
                .iter()
                .filter_map(|c| match c {
                    Category::Str(s) => Some(s.clone()),
                    _ => None,
                })
                .collect();
            out.push((c.clone(), strs));
        }
    }
}
