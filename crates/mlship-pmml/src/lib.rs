//! PMML 3.x and 4.x: the document is read into its own shape (`parse`) and evaluated as written
//! (`eval`), behind the IR's `ExternalScorer`. The model's signature comes from the top model's
//! mining schema and the data dictionary; string inputs reach the evaluator as the codes of an
//! ordinal step over the field's valid values. A document's own ModelVerification records are
//! scored when it is loaded, and a mismatch refuses the document.

mod error;
mod eval;
mod func;
mod lower;
mod parse;
mod write;
mod xml;

pub use write::write;

use std::sync::Arc;

use mlship_model::{
    DType, Estimator, External, ExternalScorer, Field, Label, Matrix, Model, ModelInfo, Output,
    Predictions, Signature, Task,
};

pub use error::{Error, Result};
use eval::{Ctx, Pred};
use parse::{DataType, Document, Function, Usage, Value};

/// Whether the bytes look like a PMML document.
pub fn is_pmml(b: &[u8]) -> bool {
    let head = String::from_utf8_lossy(&b[..b.len().min(2048)]);
    let t = head.trim_start_matches('\u{feff}').trim_start();
    t.starts_with('<') && head.contains("<PMML")
}

/// How a string input is coded on its way to the evaluator: its valid values, by index.
#[derive(Debug)]
struct InputField {
    name: String,
    sym: parse::Sym,
    dtype: DataType,
    codes: Option<Vec<String>>,
}

/// A PMML document ready to score.
#[derive(Debug)]
pub struct PmmlScorer {
    doc: Document,
    inputs: Vec<InputField>,
    function: Function,
    /// The target's valid values (classification), in the data dictionary's order.
    classes: Vec<String>,
    target: String,
    /// The top model lowered to the tree IR, when it is a tree or forest that can be: rows
    /// without a missing value score through it.
    lowered: Option<lower::Lowered>,
    /// Otherwise, a top model chain's segments that are sums of trees, lowered (by segment
    /// index): the evaluator takes their values from them for rows without a missing value.
    chain: Vec<(usize, lower::Lowered)>,
}

/// The code an ordinal step gives a string outside the field's valid values.
const INVALID_CODE: f64 = -1.0;

impl PmmlScorer {
    fn row_inputs(&self, row: &[f64]) -> eval::Row {
        let mut m = Ctx::row(&self.doc);
        for (f, &x) in self.inputs.iter().zip(row) {
            let v = if x.is_nan() {
                Value::Missing
            } else if let Some(codes) = &f.codes {
                if x == INVALID_CODE {
                    Value::Str("\u{0}".into())
                } else {
                    codes
                        .get(x as usize)
                        .map_or(Value::Missing, |s| Value::Str(s.clone()))
                }
            } else {
                match f.dtype {
                    DataType::Float => Value::Num(f64::from(x as f32)),
                    DataType::Boolean => Value::Bool(x != 0.0),
                    _ => Value::Num(x),
                }
            };
            m[f.sym.index()] = Some(v);
        }
        m
    }

    /// The top model's prediction for one row, and the values of its output fields `names` (the
    /// extra outputs, see [`PmmlScorer::extra_outputs`]).
    fn predict_row(
        &self,
        row: &[f64],
        names: &[&parse::Name],
        known: Vec<(&parse::ModelEl, f64)>,
    ) -> Result<(Pred, Vec<Option<String>>)> {
        let mut ctx = Ctx::new(&self.doc, self.row_inputs(row)).knowing(known);
        let p = ctx.model(&self.doc.model)?;
        if names.is_empty() {
            return Ok((p, Vec::new()));
        }
        ctx.publish(&self.doc.model, &p)?;
        let values = names
            .iter()
            .map(|n| ctx.get(n).map(|v| eval::text(&v)))
            .collect::<Result<_>>()?;
        Ok((p, values))
    }

    /// The top model's output fields that are neither the predicted value nor a probability
    /// (transformed values, entity ids, reason codes), in document order.
    fn extra_outputs(&self) -> Vec<&parse::Name> {
        self.doc
            .model
            .outputs
            .iter()
            .filter(|o| {
                !matches!(
                    o.feature,
                    parse::Feature::PredictedValue | parse::Feature::Probability(_)
                )
            })
            .map(|o| &o.name)
            .collect()
    }
}

fn bad_row(row: usize, e: Error) -> mlship_model::Error {
    match e {
        Error::Model(mlship_model::Error::BadValue {
            column,
            expected,
            found,
            ..
        }) => mlship_model::Error::BadValue {
            column,
            row,
            expected,
            found,
        },
        other => mlship_model::Error::Invalid(format!("row {row}: {other}")),
    }
}

impl ExternalScorer for PmmlScorer {
    fn n_features(&self) -> usize {
        self.inputs.len()
    }

    fn score(&self, x: &Matrix) -> mlship_model::Result<Output> {
        let owned = x.columns();
        let cols: Vec<&[f64]> = owned.iter().map(Vec::as_slice).collect();
        self.score_columns(&cols, x.rows())
    }

    fn score_columns(&self, cols: &[&[f64]], n: usize) -> mlship_model::Result<Output> {
        if cols.len() != self.inputs.len() || cols.iter().any(|c| c.len() != n) {
            return Err(mlship_model::Error::Invalid(format!(
                "the PMML model reads {} columns of {n} rows, the input has {}",
                self.inputs.len(),
                cols.len()
            )));
        }
        // Room for the answers of the model's kind only.
        let room = |f: Function| if self.function == f { n } else { 0 };
        let mut labels = Vec::with_capacity(room(Function::Classification));
        let mut values = Vec::with_capacity(room(Function::Regression));
        let mut clusters = Vec::with_capacity(room(Function::Clustering));
        let k = self.classes.len();
        let mut probs = Vec::with_capacity(room(Function::Classification) * k);
        let mut any_probs = false;
        let names = self.extra_outputs();
        let mut extra: Vec<(String, Vec<Option<String>>)> = names
            .iter()
            .map(|name| (name.to_string(), Vec::with_capacity(n)))
            .collect();
        // The lowered trees score every row at once; rows with a missing value are scored
        // again by the evaluator below, which decides what a missing value does.
        let lowered = match &self.lowered {
            Some(l) if names.is_empty() => Some((l, l.sums(cols, n)?, l.width())),
            _ => None,
        };
        let target = self.doc.model.target.as_ref();
        // The chain's lowered segments: their models, and their values for every row.
        let segments = match &self.doc.model.kind {
            parse::Kind::Mining(s) => s.segments.as_slice(),
            _ => &[],
        };
        let chain = self
            .chain
            .iter()
            .map(|(i, l)| {
                let m = &segments[*i].model;
                let sums = l.sums(cols, n)?;
                let values: Vec<f64> = sums
                    .chunks_exact(l.width())
                    .map(|s| match l.predict(s, m.target.as_ref(), &mut Vec::new()) {
                        lower::RowPred::Value(v) => v,
                        lower::RowPred::Class(c) => c as f64,
                    })
                    .collect();
                Ok((m, values))
            })
            .collect::<mlship_model::Result<Vec<_>>>()?;
        let mut row = vec![0.0; cols.len()];
        for r in 0..n {
            for (x, c) in row.iter_mut().zip(cols) {
                *x = c[r];
            }
            let row = row.as_slice();
            if let Some((l, sums, w)) = &lowered {
                if !row.iter().any(|v| v.is_nan()) {
                    match l.predict(&sums[r * w..(r + 1) * w], target, &mut probs) {
                        lower::RowPred::Value(v) => values.push(v),
                        lower::RowPred::Class(i) => {
                            labels.push(i as u32);
                            any_probs = true;
                        }
                    }
                    continue;
                }
            }
            let known = if row.iter().any(|v| v.is_nan()) {
                Vec::new()
            } else {
                chain.iter().map(|(m, v)| (*m, v[r])).collect()
            };
            let (p, outs) = self
                .predict_row(row, &names, known)
                .map_err(|e| bad_row(r, e))?;
            for ((_, column), v) in extra.iter_mut().zip(outs) {
                column.push(v);
            }
            match self.function {
                Function::Regression => values.push(match &p.value {
                    Some(Value::Num(v)) => *v,
                    Some(v) => eval::text(v)
                        .and_then(|t| parse::parse_f64(&t))
                        .unwrap_or(f64::NAN),
                    None => f64::NAN,
                }),
                Function::Clustering => clusters.push(match &p.value {
                    Some(Value::Num(v)) => *v as i64,
                    _ => -1,
                }),
                Function::Classification => {
                    let Some(cat) = p.value.as_ref().and_then(eval::text) else {
                        return Err(mlship_model::Error::BadValue {
                            column: self.target.clone(),
                            row: r,
                            expected: "a prediction".into(),
                            found: "none (the PMML model returned a missing prediction)".into(),
                        });
                    };
                    let idx = self
                        .classes
                        .iter()
                        .position(|c| c == &cat || parse::parse_f64(c).is_some_and(|a| Some(a) == parse::parse_f64(&cat)))
                        .ok_or_else(|| {
                            mlship_model::Error::Invalid(format!(
                                "row {r}: the PMML model predicted {cat:?}, which is not a value of {}",
                                self.target
                            ))
                        })?;
                    labels.push(idx as u32);
                    any_probs |= !p.probs.is_empty();
                    for c in &self.classes {
                        probs.push(
                            p.probs
                                .iter()
                                .find(|(pc, _)| {
                                    pc == c
                                        || parse::parse_f64(pc)
                                            .is_some_and(|a| Some(a) == parse::parse_f64(c))
                                })
                                .map_or(0.0, |(_, v)| *v),
                        );
                    }
                }
            }
        }
        let predictions = match self.function {
            Function::Regression => Predictions::Values(values),
            Function::Clustering => Predictions::Clusters(clusters),
            Function::Classification => Predictions::Classes(labels),
        };
        let classified = self.function == Function::Classification;
        Ok(Output {
            predictions,
            probabilities: if classified && any_probs {
                Some(Matrix::new(n, k, probs)?)
            } else {
                None
            },
            classes: classified.then(|| self.labels()),
            decision_function: None,
            distances: None,
            extra,
        })
    }
}

impl PmmlScorer {
    fn target_dtype(&self) -> DataType {
        self.doc
            .fields
            .iter()
            .find(|f| *f.name == *self.target)
            .map_or(DataType::String, |f| f.dtype)
    }

    fn labels(&self) -> Vec<Label> {
        let d = self.target_dtype();
        self.classes.iter().map(|c| label(c, d)).collect()
    }
}

fn label(s: &str, d: DataType) -> Label {
    match d {
        DataType::Integer => s
            .parse::<i64>()
            .map(Label::Int)
            .or_else(|_| s.parse::<f64>().map(|f| Label::Int(f as i64)))
            .unwrap_or_else(|_| Label::Str(s.to_string())),
        DataType::Double | DataType::Float => s
            .parse::<f64>()
            .map(Label::Float)
            .unwrap_or_else(|_| Label::Str(s.to_string())),
        DataType::Boolean => match s {
            "true" => Label::Bool(true),
            "false" => Label::Bool(false),
            _ => Label::Str(s.to_string()),
        },
        DataType::String => Label::Str(s.to_string()),
    }
}

fn describe(m: &parse::ModelEl) -> String {
    match &m.kind {
        parse::Kind::Mining(s) => {
            let inner: Vec<String> = s.segments.iter().map(|seg| describe(&seg.model)).collect();
            let mut parts: Vec<(String, usize)> = Vec::new();
            for i in inner {
                match parts.last_mut() {
                    Some((last, n)) if *last == i => *n += 1,
                    _ => parts.push((i, 1)),
                }
            }
            let list: Vec<String> = parts
                .into_iter()
                .map(|(p, n)| if n > 1 { format!("{n} x {p}") } else { p })
                .collect();
            format!("MiningModel[{:?}: {}]", s.method, list.join(", "))
        }
        _ => m.element.to_string(),
    }
}

/// Loads a PMML document into a model whose estimator evaluates the document.
pub fn load(b: &[u8]) -> Result<Model> {
    let text = std::str::from_utf8(b).map_err(|e| Error::Malformed {
        format: "PMML",
        offset: e.valid_up_to(),
        message: "not UTF-8".into(),
    })?;
    let (scorer, fields) = scorer(parse::parse(text)?)?;
    let coded: Vec<(String, Option<Vec<String>>)> = scorer
        .inputs
        .iter()
        .map(|f| (f.name.clone(), f.codes.clone()))
        .collect();
    // String inputs become the index of their value (missing: NaN; others: INVALID_CODE).
    let steps = mlship_model::coding::string_codes(&coded, INVALID_CODE);
    let function = scorer.function;
    let summary = describe(&scorer.doc.model);
    let task = match function {
        Function::Classification => Task::Classification,
        Function::Regression => Task::Regression,
        Function::Clustering => Task::Clustering,
    };
    let signature = Signature {
        inputs: fields,
        named: true,
        task,
        classes: (function == Function::Classification).then(|| scorer.labels()),
    };
    verify(&scorer)?;
    let info = ModelInfo {
        format: format!("PMML {}", scorer.doc.version),
        estimator: format!("PMML {summary}"),
        library: scorer.doc.application.clone(),
        warnings: Vec::new(),
    };
    Ok(Model::new(
        signature,
        steps,
        Estimator::External(External(Arc::new(scorer))),
        info,
    )?)
}

/// The scorer of a parsed document, and its input fields.
fn scorer(doc: Document) -> Result<(PmmlScorer, Vec<Field>)> {
    let top = &doc.model;
    let mut inputs = Vec::new();
    let mut fields = Vec::new();
    for f in top.fields.iter().filter(|f| f.usage == Usage::Active) {
        let df = doc
            .fields
            .iter()
            .find(|d| d.name == f.name)
            .ok_or_else(|| {
                Error::Unsupported(format!(
                    "the PMML model reads {:?}, which is not in its DataDictionary",
                    f.name
                ))
            })?;
        let (dtype, codes) = match df.dtype {
            DataType::String => {
                if df.values.is_empty() {
                    return Err(Error::Unsupported(format!(
                        "the PMML string field {:?} lists no valid values",
                        df.name
                    )));
                }
                (DType::Str, Some(df.values.clone()))
            }
            DataType::Boolean => (DType::Bool, None),
            _ => (DType::Float, None),
        };
        fields.push(Field {
            name: f.name.to_string(),
            dtype,
            nullable: true,
        });
        inputs.push(InputField {
            name: f.name.to_string(),
            sym: f.name.sym,
            dtype: df.dtype,
            codes,
        });
    }
    let target = top
        .fields
        .iter()
        .find(|f| f.usage == Usage::Target)
        .map(|f| f.name.to_string())
        .unwrap_or_default();
    let classes: Vec<String> = match top.function {
        Function::Classification => {
            let t = doc
                .fields
                .iter()
                .find(|d| d.name == target)
                .ok_or_else(|| {
                    Error::Unsupported("a PMML classifier without a target field".into())
                })?;
            if t.values.is_empty() {
                return Err(Error::Unsupported(format!(
                    "the PMML target {:?} lists no categories",
                    t.name
                )));
            }
            t.values.clone()
        }
        _ => Vec::new(),
    };
    let function = top.function;
    let names: Vec<String> = inputs.iter().map(|f| f.name.clone()).collect();
    let lowered = lower::lower(&doc, &names, &classes);
    let chain = if lowered.is_some() {
        Vec::new()
    } else {
        lower::lower_chain(&doc, &names)
    };
    let scorer = PmmlScorer {
        inputs,
        function,
        target,
        classes,
        doc,
        lowered,
        chain,
    };
    Ok((scorer, fields))
}

/// Scores the document's ModelVerification records and compares them with what it says.
fn verify(s: &PmmlScorer) -> Result<()> {
    let Some(v) = &s.doc.verification else {
        return Ok(());
    };
    for (i, row) in v.rows.iter().enumerate() {
        let mut inputs = Ctx::row(&s.doc);
        let mut expected = Vec::new();
        for (key, precision, zero) in &v.fields {
            let (field, column) = key.split_once('\u{0}').unwrap_or((key, key));
            let cell = row.get(column).cloned();
            if let Some(f) = s.inputs.iter().find(|f| f.name == field) {
                let value = match cell {
                    None => Value::Missing,
                    Some(t) if t.is_empty() => Value::Missing,
                    Some(t) => match f.dtype {
                        DataType::String => Value::Str(t),
                        DataType::Float => parse::parse_f64(&t)
                            .map_or(Value::Str(t), |x| Value::Num(f64::from(x as f32))),
                        _ => parse::parse_f64(&t).map_or(Value::Str(t), Value::Num),
                    },
                };
                inputs[f.sym.index()] = Some(value);
            } else if let Some(t) = cell {
                expected.push((field.to_string(), t, *precision, *zero));
            }
        }
        let mut ctx = Ctx::new(&s.doc, inputs);
        let p = ctx.model(&s.doc.model)?;
        ctx.publish(&s.doc.model, &p)?;
        for (field, want, precision, zero) in expected {
            let got = if field == s.target {
                p.value.clone().unwrap_or(Value::Missing)
            } else {
                ctx.get_named(&field)?
            };
            let ok = match (parse::parse_f64(&want), &got) {
                (Some(w), Value::Num(g)) => {
                    (w.abs() < zero && g.abs() < zero)
                        || (w - g).abs() <= precision * w.abs().max(zero)
                }
                _ => eval::text(&got).is_some_and(|g| {
                    g == want
                        || parse::parse_f64(&g) == parse::parse_f64(&want)
                            && parse::parse_f64(&g).is_some()
                }),
            };
            if !ok {
                return Err(Error::Unsupported(format!(
                    "the PMML document's ModelVerification record {} expects {field} = {want}, mlship computes {}",
                    i + 1,
                    eval::text(&got).unwrap_or_else(|| "a missing value".into())
                )));
            }
        }
    }
    Ok(())
}
