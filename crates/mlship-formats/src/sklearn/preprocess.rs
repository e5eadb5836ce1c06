//! scikit-learn transformers (scalers, imputers, encoders, column transformers) lowered to IR steps.

use mlship_model::{
    Category, DType, Estimator, ImputeFill, MissingMarker, Norm, OneHot, Ordinal, Step, Unknown,
};

use super::ctx::{Inst, MAX_DEPTH};
use crate::error::{Error, Result, unsupported};
use mlship_pickle::numpy::ArrayData;
use mlship_pickle::{Obj, Value};

pub fn is_transformer(class: &str) -> bool {
    matches!(
        class,
        "StandardScaler"
            | "MinMaxScaler"
            | "MaxAbsScaler"
            | "RobustScaler"
            | "Normalizer"
            | "SimpleImputer"
            | "OneHotEncoder"
            | "OrdinalEncoder"
            | "PolynomialFeatures"
            | "FunctionTransformer"
            | "ColumnTransformer"
    )
}

/// Lowers a transformer (or a pipeline of transformers) to steps, with a name for summaries.
pub fn lower_transformer(t: Inst<'_>, depth: usize) -> Result<(Vec<Step>, String)> {
    if depth > MAX_DEPTH {
        return Err(Error::Limit("transformers nested too deeply".into()));
    }
    let name = t.class.to_string();
    let step = match t.class {
        "StandardScaler" => Step::Standardize {
            offset: if t.bool("with_mean") != Some(false) && t.has("mean_") {
                Some(t.f64s("mean_")?)
            } else {
                None
            },
            scale: if t.bool("with_std") != Some(false) && t.has("scale_") {
                Some(t.f64s("scale_")?)
            } else {
                None
            },
        },
        "RobustScaler" => Step::Standardize {
            offset: if t.bool("with_centering") != Some(false) && t.has("center_") {
                Some(t.f64s("center_")?)
            } else {
                None
            },
            scale: if t.bool("with_scaling") != Some(false) && t.has("scale_") {
                Some(t.f64s("scale_")?)
            } else {
                None
            },
        },
        "MaxAbsScaler" => Step::Standardize {
            offset: None,
            scale: Some(t.f64s("scale_")?),
        },
        "MinMaxScaler" => {
            let clip = if t.bool("clip") == Some(true) {
                let r = t.items("feature_range")?;
                let lo = r
                    .first()
                    .and_then(|v| t.ctx.f64(*v))
                    .ok_or_else(|| unsupported("bad feature_range"))?;
                let hi = r
                    .get(1)
                    .and_then(|v| t.ctx.f64(*v))
                    .ok_or_else(|| unsupported("bad feature_range"))?;
                Some((lo, hi))
            } else {
                None
            };
            Step::MinMax {
                scale: t.f64s("scale_")?,
                min: t.f64s("min_")?,
                clip,
            }
        }
        "Normalizer" => Step::Normalize(match t.str("norm") {
            Some("l1") => Norm::L1,
            Some("max") => Norm::Max,
            _ => Norm::L2,
        }),
        "SimpleImputer" => imputer(t)?,
        "OneHotEncoder" => {
            check_infrequent(t)?;
            let categories = categories(t)?;
            let drop = match t.get("drop_idx_") {
                None | Some(Value::None) => vec![None; categories.len()],
                Some(v) => {
                    let a = t
                        .ctx
                        .array(v)
                        .ok_or_else(|| unsupported("drop_idx_ is not an array"))?;
                    match &a.data {
                        ArrayData::Objects(items) => items
                            .iter()
                            .map(|x| t.ctx.i64(*x).and_then(|i| usize::try_from(i).ok()))
                            .collect(),
                        _ => a
                            .to_i64()?
                            .into_iter()
                            .map(|i| usize::try_from(i).ok())
                            .collect(),
                    }
                }
            };
            let unknown = match t.str("handle_unknown") {
                Some("ignore" | "infrequent_if_exist" | "warn") => Unknown::Ignore,
                _ => Unknown::Error,
            };
            Step::OneHot(OneHot {
                columns: column_names(t, categories.len()),
                categories,
                drop,
                unknown,
            })
        }
        "OrdinalEncoder" => {
            check_infrequent(t)?;
            let categories = categories(t)?;
            let unknown_value = if t.str("handle_unknown") == Some("use_encoded_value") {
                Some(t.f64("unknown_value").unwrap_or(f64::NAN))
            } else {
                None
            };
            let missing_value = t
                .get("encoded_missing_value")
                .and_then(|v| t.ctx.f64(v))
                .unwrap_or(f64::NAN);
            Step::Ordinal(Ordinal {
                columns: column_names(t, categories.len()),
                categories,
                unknown_value,
                missing_value,
            })
        }
        "PolynomialFeatures" => polynomial(t)?,
        "FunctionTransformer" => {
            identity_function(t)?;
            return Ok((Vec::new(), "FunctionTransformer(identity)".into()));
        }
        "ColumnTransformer" => return column_transformer(t, depth),
        "Pipeline" => {
            let (steps, last, names) = super::pipeline_parts(t, depth)?;
            if let Some(l) = last {
                return Err(unsupported(format!(
                    "a pipeline used as a transformer ends in the estimator {}",
                    l.class
                )));
            }
            return Ok((steps, format!("Pipeline[{}]", names.join(" -> "))));
        }
        other => {
            return Err(Error::UnsupportedEstimator {
                class: other.to_string(),
                supported: crate::classes::supported_estimators(),
            });
        }
    };
    Ok((vec![step], name))
}

fn column_names(t: Inst<'_>, n: usize) -> Vec<String> {
    t.feature_names()
        .filter(|v| v.len() == n)
        .unwrap_or_else(|| (0..n).map(|j| format!("x{j}")).collect())
}

fn check_infrequent(t: Inst<'_>) -> Result<()> {
    if t.bool("_infrequent_enabled") == Some(true) {
        return Err(unsupported(format!(
            "{} with infrequent categories (min_frequency / max_categories) is not supported",
            t.class
        )));
    }
    Ok(())
}

/// FunctionTransformer is scored only when it is the identity (no function, or check_array).
fn identity_function(t: Inst<'_>) -> Result<()> {
    match t.get("func") {
        None | Some(Value::None) => Ok(()),
        Some(f) => {
            // functools.partial(check_array, ...) as histogram boosting writes it.
            if let Some(p) = t.ctx.instance(f) {
                if p.class == "partial" {
                    let func = match t
                        .ctx
                        .heap
                        .obj(p.args.first().copied().unwrap_or(Value::None))
                    {
                        Some(Obj::Instance { class, .. }) | Some(Obj::Global(class)) => {
                            class.name.clone()
                        }
                        _ => String::new(),
                    };
                    if func == "check_array" {
                        return Ok(());
                    }
                }
            }
            Err(unsupported(
                "FunctionTransformer with a function is not supported (only the identity)",
            ))
        }
    }
}

fn category_list(t: Inst<'_>, v: Value) -> Result<Vec<Category>> {
    let a = t
        .ctx
        .array(v)
        .ok_or_else(|| unsupported("categories_ entries must be arrays"))?;
    match &a.data {
        ArrayData::Objects(items) => items
            .iter()
            .map(|x| match *x {
                Value::None => Ok(Category::Missing),
                Value::Float(f) if f.is_nan() => Ok(Category::Missing),
                Value::Float(f) => Ok(Category::Num(f)),
                Value::Int(i) => Ok(Category::Num(i as f64)),
                Value::Bool(b) => Ok(Category::Num(f64::from(b))),
                other => t
                    .ctx
                    .str(other)
                    .map(|s| Category::Str(s.to_string()))
                    .ok_or_else(|| unsupported("a category is neither a number nor a string")),
            })
            .collect(),
        _ if a.dtype.kind == b'U' => Ok(a.to_unicode()?.into_iter().map(Category::Str).collect()),
        _ => Ok(a
            .to_f64()?
            .into_iter()
            .map(|f| {
                if f.is_nan() {
                    Category::Missing
                } else {
                    Category::Num(f)
                }
            })
            .collect()),
    }
}

fn categories(t: Inst<'_>) -> Result<Vec<Vec<Category>>> {
    t.items("categories_")?
        .iter()
        .map(|v| category_list(t, *v))
        .collect()
}

fn imputer(t: Inst<'_>) -> Result<Step> {
    let missing = match t.get("missing_values") {
        None | Some(Value::None) => MissingMarker::NaN,
        Some(Value::Float(f)) if f.is_nan() => MissingMarker::NaN,
        Some(v) => match (t.ctx.f64(v), t.ctx.str(v)) {
            (Some(f), _) => MissingMarker::Num(f),
            (None, Some(s)) => MissingMarker::Str(s.to_string()),
            _ => {
                return Err(unsupported(
                    "SimpleImputer missing_values of an unknown type",
                ));
            }
        },
    };
    let keep_empty = t.bool("keep_empty_features") == Some(true);
    let stats = t.array("statistics_")?;
    let fill: Vec<ImputeFill> = match &stats.data {
        ArrayData::Objects(items) => items
            .iter()
            .map(|x| match *x {
                Value::Float(f) if f.is_nan() => ImputeFill::Drop,
                Value::None => ImputeFill::Drop,
                other => match (t.ctx.f64(other), t.ctx.str(other)) {
                    (Some(f), _) => ImputeFill::Num(f),
                    (None, Some(s)) => ImputeFill::Str(s.to_string()),
                    _ => ImputeFill::Drop,
                },
            })
            .collect(),
        _ => stats
            .to_f64()?
            .into_iter()
            .map(|f| {
                if f.is_nan() {
                    if keep_empty {
                        ImputeFill::Num(0.0)
                    } else {
                        ImputeFill::Drop
                    }
                } else {
                    ImputeFill::Num(f)
                }
            })
            .collect(),
    };
    let indicator = match t.get("indicator_").and_then(|v| t.ctx.instance(v)) {
        Some(ind) if t.bool("add_indicator") == Some(true) => {
            let f = ind.array("features_")?.to_i64()?;
            Some(
                f.into_iter()
                    .map(|x| usize::try_from(x).map_err(|_| unsupported("bad indicator feature")))
                    .collect::<Result<Vec<_>>>()?,
            )
        }
        _ => None,
    };
    Ok(Step::Impute {
        missing,
        fill,
        indicator,
    })
}

fn polynomial(t: Inst<'_>) -> Result<Step> {
    let n =
        usize::try_from(t.i64("n_features_in_")?).map_err(|_| unsupported("bad n_features_in_"))?;
    let (min_d, max_d) = match (
        t.get("_min_degree").and_then(|v| t.ctx.i64(v)),
        t.get("_max_degree").and_then(|v| t.ctx.i64(v)),
    ) {
        (Some(a), Some(b)) => (a, b),
        _ => (0, t.i64("degree")?),
    };
    let interaction_only = t.bool("interaction_only") == Some(true);
    let include_bias = t.bool("include_bias") != Some(false);
    let max_d = usize::try_from(max_d).map_err(|_| unsupported("bad degree"))?;
    let min_d = usize::try_from(min_d).map_err(|_| unsupported("bad degree"))?;
    let mut powers = Vec::new();
    if include_bias {
        powers.push(vec![0u32; n]);
    }
    for d in min_d.max(1)..=max_d {
        let mut combo = Vec::new();
        combos(n, d, 0, interaction_only, &mut combo, &mut powers)?;
    }
    Ok(Step::Polynomial { powers })
}

/// Enumerates combinations (with replacement unless `interaction_only`) in itertools order.
fn combos(
    n: usize,
    d: usize,
    start: usize,
    interaction_only: bool,
    cur: &mut Vec<usize>,
    out: &mut Vec<Vec<u32>>,
) -> Result<()> {
    if out.len() > 1_000_000 {
        return Err(Error::Limit(
            "PolynomialFeatures would make over a million columns".into(),
        ));
    }
    if cur.len() == d {
        let mut p = vec![0u32; n];
        for &j in cur.iter() {
            p[j] += 1;
        }
        out.push(p);
        return Ok(());
    }
    for j in start..n {
        cur.push(j);
        combos(
            n,
            d,
            if interaction_only { j + 1 } else { j },
            interaction_only,
            cur,
            out,
        )?;
        cur.pop();
    }
    Ok(())
}

fn column_transformer(t: Inst<'_>, depth: usize) -> Result<(Vec<Step>, String)> {
    let names = t.feature_names();
    let n_in = t
        .get("n_features_in_")
        .and_then(|v| t.ctx.i64(v))
        .and_then(|n| usize::try_from(n).ok());
    let mut parts = Vec::new();
    let mut descr = Vec::new();
    for item in t.items("transformers_")? {
        let tr = t.ctx.items(*item).filter(|x| x.len() >= 3).ok_or_else(|| {
            unsupported("ColumnTransformer parts must be (name, transformer, columns)")
        })?;
        let cols = select_columns(t, tr[2], names.as_deref(), n_in)?;
        let (steps, name) = match t.ctx.str(tr[1]) {
            Some("drop") => continue,
            Some("passthrough") => (Vec::new(), "passthrough".to_string()),
            Some(other) => return Err(unsupported(format!("ColumnTransformer part {other:?}"))),
            None => {
                let inst = t
                    .ctx
                    .instance(tr[1])
                    .ok_or_else(|| unsupported("ColumnTransformer part is not a transformer"))?;
                lower_transformer(inst, depth + 1)?
            }
        };
        if cols.is_empty() {
            continue;
        }
        descr.push(name);
        parts.push((cols, steps));
    }
    Ok((
        vec![Step::Columns { parts }],
        format!("ColumnTransformer[{}]", descr.join(", ")),
    ))
}

fn select_columns(
    t: Inst<'_>,
    sel: Value,
    names: Option<&[String]>,
    n_in: Option<usize>,
) -> Result<Vec<usize>> {
    let by_name = |s: &str| -> Result<usize> {
        names
            .and_then(|n| n.iter().position(|x| x == s))
            .ok_or_else(|| {
                unsupported(format!(
                    "ColumnTransformer selects column {s:?}, which it was not fitted with"
                ))
            })
    };
    let idx = |i: i64| -> Result<usize> {
        let n = n_in.unwrap_or(usize::MAX);
        let j = if i < 0 {
            n.checked_sub(i.unsigned_abs() as usize)
        } else {
            usize::try_from(i).ok()
        };
        j.filter(|&j| j < n)
            .ok_or_else(|| unsupported(format!("ColumnTransformer column index {i} out of range")))
    };
    if let Some(s) = t.ctx.str(sel) {
        return Ok(vec![by_name(s)?]);
    }
    if let Value::Int(i) = sel {
        return Ok(vec![idx(i)?]);
    }
    if let Some(Obj::Slice([a, b, c])) = t.ctx.heap.obj(sel) {
        let n = n_in.ok_or_else(|| unsupported("a slice selection needs n_features_in_"))? as i64;
        let norm = |v: Value, default: i64| -> Result<i64> {
            match v {
                Value::None => Ok(default),
                Value::Int(i) => Ok(if i < 0 { (n + i).max(0) } else { i.min(n) }),
                _ => t
                    .ctx
                    .str(v)
                    .map(|s| by_name(s).map(|j| j as i64))
                    .unwrap_or_else(|| Err(unsupported("bad slice bound"))),
            }
        };
        let step = match c {
            Value::None => 1,
            Value::Int(s) if *s > 0 => *s,
            _ => return Err(unsupported("slices with a non-positive step")),
        };
        let start = norm(*a, 0)?;
        let stop = if t.ctx.str(*b).is_some() {
            norm(*b, n)? + 1
        } else {
            norm(*b, n)?
        };
        return Ok((start..stop)
            .step_by(step as usize)
            .map(|j| j as usize)
            .collect());
    }
    if let Some(a) = t.ctx.array(sel) {
        if a.dtype.kind == b'b' {
            return Ok(a
                .to_i64()?
                .iter()
                .enumerate()
                .filter(|(_, b)| **b != 0)
                .map(|(j, _)| j)
                .collect());
        }
        if matches!(a.dtype.kind, b'i' | b'u') {
            return a.to_i64()?.into_iter().map(idx).collect();
        }
    }
    let items = t.ctx.items(sel).ok_or_else(|| {
        unsupported(format!(
            "ColumnTransformer column selection {}",
            t.ctx.heap.describe(sel)
        ))
    })?;
    if !items.is_empty() && items.iter().all(|v| matches!(v, Value::Bool(_))) {
        return Ok(items
            .iter()
            .enumerate()
            .filter(|(_, b)| **b == Value::Bool(true))
            .map(|(j, _)| j)
            .collect());
    }
    items
        .iter()
        .map(|v| match *v {
            Value::Int(i) => idx(i),
            other => t.ctx.str(other).map(by_name).unwrap_or_else(|| {
                Err(unsupported(
                    "column selections must be names, indices, slices or masks",
                ))
            }),
        })
        .collect()
}

/// The type of each input column, and whether it may be missing, from what the first steps do
/// with it: encoders over strings make string columns, imputers make columns nullable, and trees
/// take missing values themselves.
pub fn input_kinds(steps: &[Step], n: usize, est: &Estimator) -> Vec<(DType, bool)> {
    let trees = matches!(est, Estimator::Trees(_));
    let mut kinds = vec![(DType::Float, trees); n];
    if let Some(first) = steps.first() {
        mark(first, &(0..n).collect::<Vec<_>>(), &mut kinds);
    }
    kinds
}

/// Applies `f` to the kind of the input column that step column `j` reads.
fn set(cols: &[usize], kinds: &mut [(DType, bool)], j: usize, f: &dyn Fn(&mut (DType, bool))) {
    if let Some(k) = cols.get(j).and_then(|&c| kinds.get_mut(c)) {
        f(k);
    }
}

fn mark(step: &Step, cols: &[usize], kinds: &mut [(DType, bool)]) {
    let stringy = |c: &[Category]| c.iter().any(|x| matches!(x, Category::Str(_)));
    match step {
        Step::OneHot(OneHot { categories, .. }) | Step::Ordinal(Ordinal { categories, .. }) => {
            for (j, c) in categories.iter().enumerate() {
                if stringy(c) {
                    set(cols, kinds, j, &|k| *k = (DType::Str, true));
                }
                if c.contains(&Category::Missing) {
                    set(cols, kinds, j, &|k| k.1 = true);
                }
            }
        }
        Step::Impute { fill, .. } => {
            for (j, f) in fill.iter().enumerate() {
                let s = matches!(f, ImputeFill::Str(_));
                set(cols, kinds, j, &|k| {
                    *k = (if s { DType::Str } else { k.0 }, true)
                });
            }
        }
        Step::Columns { parts } => {
            let mut used = vec![false; cols.len()];
            for (sel, steps) in parts {
                let mapped: Vec<usize> = sel.iter().filter_map(|&j| cols.get(j).copied()).collect();
                for &j in sel {
                    if let Some(u) = used.get_mut(j) {
                        *u = true;
                    }
                }
                if let Some(s) = steps.first() {
                    mark(s, &mapped, kinds);
                }
            }
            // A column the transformer drops is read as text: any value is accepted and ignored.
            for (j, u) in used.iter().enumerate() {
                if !u {
                    set(cols, kinds, j, &|k| *k = (DType::Str, true));
                }
            }
        }
        _ => {}
    }
}
