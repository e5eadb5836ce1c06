//! Preprocessing steps (scalers, imputers, encoders, column transformers) and the table they work on.

use crate::{Error, Matrix, Result};

/// A working column between steps: numbers (NaN is missing) or strings (`None` is missing).
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Col {
    Num(Vec<f64>),
    Str(Vec<Option<String>>),
}

/// The table that flows through a pipeline.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Table {
    pub n_rows: usize,
    pub cols: Vec<Col>,
}

impl Table {
    /// The numeric matrix the final estimator takes; a string column left here is an error.
    /// The table's columns, which must all be numbers by now.
    pub fn into_columns(self) -> Result<Vec<Vec<f64>>> {
        self.cols
            .into_iter()
            .enumerate()
            .map(|(j, col)| match col {
                Col::Num(v) => Ok(v),
                Col::Str(v) => Err(Error::BadValue {
                    column: format!("feature {j} after preprocessing"),
                    row: v.iter().position(Option::is_some).unwrap_or(0),
                    expected: "a number".into(),
                    found: "a string".into(),
                }),
            })
            .collect()
    }

    pub fn into_matrix(self) -> Result<Matrix> {
        let n = self.n_rows;
        let cols = self.into_columns()?;
        Matrix::from_columns(n, &cols.iter().map(Vec::as_slice).collect::<Vec<_>>())
    }

    fn num(&self, j: usize) -> Result<&[f64]> {
        match self.cols.get(j) {
            Some(Col::Num(v)) => Ok(v),
            Some(Col::Str(_)) => Err(Error::BadValue {
                column: format!("feature {j}"),
                row: 0,
                expected: "a number".into(),
                found: "a string".into(),
            }),
            None => Err(Error::invalid(format!(
                "step reads feature {j}, which does not exist"
            ))),
        }
    }
}

/// A category of an encoder.
#[derive(Clone, Debug, PartialEq)]
pub enum Category {
    Num(f64),
    Str(String),
    /// NaN or None: the missing value seen at fit time (sorted last by scikit-learn).
    Missing,
}

impl Category {
    fn matches_num(&self, x: f64) -> bool {
        match self {
            Category::Num(c) => *c == x,
            Category::Missing => x.is_nan(),
            Category::Str(_) => false,
        }
    }

    fn matches_str(&self, x: Option<&str>) -> bool {
        match (self, x) {
            (Category::Str(c), Some(s)) => c == s,
            (Category::Missing, None) => true,
            _ => false,
        }
    }

    fn describe(&self) -> String {
        match self {
            Category::Num(v) => format!("{v}"),
            Category::Str(s) => format!("{s:?}"),
            Category::Missing => "missing".into(),
        }
    }
}

/// What an encoder does with a category it did not see at fit time.
#[derive(Clone, Debug, PartialEq)]
pub enum Unknown {
    Error,
    /// One-hot: all zeros.
    Ignore,
}

/// OneHotEncoder: one output column per category, minus the dropped one.
#[derive(Clone, Debug, PartialEq)]
pub struct OneHot {
    /// Names of the input columns, for error messages.
    pub columns: Vec<String>,
    pub categories: Vec<Vec<Category>>,
    /// Per input column, the index of the dropped category.
    pub drop: Vec<Option<usize>>,
    pub unknown: Unknown,
}

/// OrdinalEncoder: each category becomes its index.
#[derive(Clone, Debug, PartialEq)]
pub struct Ordinal {
    pub columns: Vec<String>,
    pub categories: Vec<Vec<Category>>,
    /// `unknown_value` when `handle_unknown='use_encoded_value'`, else unknown is an error.
    pub unknown_value: Option<f64>,
    /// `encoded_missing_value`: what a missing value becomes when missing was seen at fit.
    pub missing_value: f64,
}

/// What SimpleImputer treats as missing.
#[derive(Clone, Debug, PartialEq)]
pub enum MissingMarker {
    /// NaN in numbers, null in strings.
    NaN,
    Num(f64),
    Str(String),
}

/// A SimpleImputer statistic.
#[derive(Clone, Debug, PartialEq)]
pub enum ImputeFill {
    Num(f64),
    Str(String),
    /// No statistic (all values were missing at fit): the column is dropped.
    Drop,
}

/// Row normalisation of Normalizer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Norm {
    L1,
    L2,
    Max,
}

/// One preprocessing step.
#[derive(Clone, Debug, PartialEq)]
pub enum Step {
    /// `(x - offset) / scale` per column (StandardScaler, RobustScaler, MaxAbsScaler).
    Standardize {
        offset: Option<Vec<f64>>,
        scale: Option<Vec<f64>>,
    },
    /// `x * scale + min`, then clipped to the range (MinMaxScaler).
    MinMax {
        scale: Vec<f64>,
        min: Vec<f64>,
        clip: Option<(f64, f64)>,
    },
    /// Divide each row by its norm (Normalizer).
    Normalize(Norm),
    /// Replace missing values by a statistic (SimpleImputer), with an optional missing indicator.
    Impute {
        missing: MissingMarker,
        fill: Vec<ImputeFill>,
        indicator: Option<Vec<usize>>,
    },
    OneHot(OneHot),
    Ordinal(Ordinal),
    /// Products of the inputs, one column per row of `powers` (PolynomialFeatures).
    Polynomial {
        powers: Vec<Vec<u32>>,
    },
    /// ColumnTransformer: each part takes some input columns through its steps; outputs are concatenated.
    Columns {
        parts: Vec<(Vec<usize>, Vec<Step>)>,
    },
}

impl Step {
    /// A short name for summaries.
    pub fn name(&self) -> String {
        match self {
            Step::Standardize { .. } => "Scaler".into(),
            Step::MinMax { .. } => "MinMaxScaler".into(),
            Step::Normalize(_) => "Normalizer".into(),
            Step::Impute { .. } => "SimpleImputer".into(),
            Step::OneHot(_) => "OneHotEncoder".into(),
            Step::Ordinal(_) => "OrdinalEncoder".into(),
            Step::Polynomial { .. } => "PolynomialFeatures".into(),
            Step::Columns { parts } => {
                let inner: Vec<String> = parts
                    .iter()
                    .map(|(_, s)| {
                        if s.is_empty() {
                            "passthrough".to_string()
                        } else {
                            s.iter().map(Step::name).collect::<Vec<_>>().join(" -> ")
                        }
                    })
                    .collect();
                format!("ColumnTransformer[{}]", inner.join(", "))
            }
        }
    }

    pub(crate) fn apply(&self, t: Table) -> Result<Table> {
        match self {
            Step::Standardize { offset, scale } => map_num(t, |j, x| {
                let mut v = x;
                if let Some(o) = offset {
                    v -= o[j];
                }
                if let Some(s) = scale {
                    v /= s[j];
                }
                v
            }),
            Step::MinMax { scale, min, clip } => map_num(t, |j, x| {
                let mut v = x * scale[j];
                v += min[j];
                if let Some((lo, hi)) = clip {
                    // np.clip keeps NaN.
                    v = if v < *lo {
                        *lo
                    } else if v > *hi {
                        *hi
                    } else {
                        v
                    };
                }
                v
            }),
            Step::Normalize(norm) => normalize(t, *norm),
            Step::Impute {
                missing,
                fill,
                indicator,
            } => impute(t, missing, fill, indicator.as_deref()),
            Step::OneHot(oh) => one_hot(t, oh),
            Step::Ordinal(o) => ordinal(t, o),
            Step::Polynomial { powers } => polynomial(t, powers),
            Step::Columns { parts } => {
                let mut cols = Vec::new();
                for (sel, steps) in parts {
                    let mut sub = Table {
                        n_rows: t.n_rows,
                        cols: Vec::with_capacity(sel.len()),
                    };
                    for &j in sel {
                        let c = t.cols.get(j).ok_or_else(|| {
                            Error::invalid(format!(
                                "column transformer selects column {j} of {}",
                                t.cols.len()
                            ))
                        })?;
                        sub.cols.push(c.clone());
                    }
                    for s in steps {
                        sub = s.apply(sub)?;
                    }
                    cols.extend(sub.cols);
                }
                Ok(Table {
                    n_rows: t.n_rows,
                    cols,
                })
            }
        }
    }
}

fn map_num(mut t: Table, f: impl Fn(usize, f64) -> f64) -> Result<Table> {
    for j in 0..t.cols.len() {
        t.num(j)?;
        if let Col::Num(v) = &mut t.cols[j] {
            for x in v.iter_mut() {
                *x = f(j, *x);
            }
        }
    }
    Ok(t)
}

fn normalize(t: Table, norm: Norm) -> Result<Table> {
    let m = t.into_matrix()?;
    let mut cols: Vec<Vec<f64>> = vec![Vec::with_capacity(m.rows()); m.cols()];
    for row in m.iter_rows() {
        let mut n = match norm {
            Norm::L1 => crate::numeric::np_sum(&row.iter().map(|x| x.abs()).collect::<Vec<_>>()),
            Norm::L2 => crate::numeric::dot(row, row).sqrt(),
            Norm::Max => row.iter().fold(f64::NEG_INFINITY, |a, x| a.max(x.abs())),
        };
        if n == 0.0 {
            n = 1.0;
        }
        for (j, x) in row.iter().enumerate() {
            cols[j].push(x / n);
        }
    }
    Ok(Table {
        n_rows: m.rows(),
        cols: cols.into_iter().map(Col::Num).collect(),
    })
}

fn is_missing_num(m: &MissingMarker, x: f64) -> bool {
    match m {
        MissingMarker::NaN => x.is_nan(),
        MissingMarker::Num(v) => x == *v,
        MissingMarker::Str(_) => false,
    }
}

fn is_missing_str(m: &MissingMarker, x: Option<&str>) -> bool {
    match (m, x) {
        (MissingMarker::NaN, None) => true,
        (MissingMarker::Str(s), Some(v)) => s == v,
        _ => false,
    }
}

fn impute(
    t: Table,
    missing: &MissingMarker,
    fill: &[ImputeFill],
    indicator: Option<&[usize]>,
) -> Result<Table> {
    if fill.len() != t.cols.len() {
        return Err(Error::invalid(format!(
            "imputer has {} statistics for {} columns",
            fill.len(),
            t.cols.len()
        )));
    }
    let mut masks: Vec<Vec<bool>> = Vec::new();
    if let Some(features) = indicator {
        for &j in features {
            let mask = match t.cols.get(j) {
                Some(Col::Num(v)) => v.iter().map(|x| is_missing_num(missing, *x)).collect(),
                Some(Col::Str(v)) => v
                    .iter()
                    .map(|x| is_missing_str(missing, x.as_deref()))
                    .collect(),
                None => return Err(Error::invalid("missing indicator column out of range")),
            };
            masks.push(mask);
        }
    }
    let mut cols = Vec::with_capacity(t.cols.len() + masks.len());
    for (col, f) in t.cols.into_iter().zip(fill) {
        match (col, f) {
            (_, ImputeFill::Drop) => {}
            (Col::Num(mut v), ImputeFill::Num(s)) => {
                for x in v.iter_mut() {
                    if is_missing_num(missing, *x) {
                        *x = *s;
                    }
                }
                cols.push(Col::Num(v));
            }
            (Col::Str(mut v), ImputeFill::Str(s)) => {
                for x in v.iter_mut() {
                    if is_missing_str(missing, x.as_deref()) {
                        *x = Some(s.clone());
                    }
                }
                cols.push(Col::Str(v));
            }
            (Col::Str(v), ImputeFill::Num(s)) => {
                // A numeric statistic over an object column: missing become the number.
                let mut out = Vec::with_capacity(v.len());
                for (row, x) in v.into_iter().enumerate() {
                    match x {
                        None => out.push(*s),
                        Some(text) => {
                            out.push(text.trim().parse::<f64>().map_err(|_| Error::BadValue {
                                column: "imputed column".into(),
                                row,
                                expected: "a number".into(),
                                found: format!("{text:?}"),
                            })?)
                        }
                    }
                }
                cols.push(Col::Num(out));
            }
            (Col::Num(v), ImputeFill::Str(s)) => {
                let out = v
                    .into_iter()
                    .map(|x| {
                        if is_missing_num(missing, x) {
                            Some(s.clone())
                        } else {
                            Some(format_num(x))
                        }
                    })
                    .collect();
                cols.push(Col::Str(out));
            }
        }
    }
    for m in masks {
        cols.push(Col::Num(
            m.into_iter().map(|b| if b { 1.0 } else { 0.0 }).collect(),
        ));
    }
    Ok(Table {
        n_rows: t.n_rows,
        cols,
    })
}

fn format_num(x: f64) -> String {
    format!("{x}")
}

/// Finds the category index of row `i` of column `col`.
fn find_category(col: &Col, i: usize, cats: &[Category]) -> Option<usize> {
    match col {
        Col::Num(v) => cats.iter().position(|c| c.matches_num(v[i])),
        Col::Str(v) => cats.iter().position(|c| c.matches_str(v[i].as_deref())),
    }
}

fn describe_value(col: &Col, i: usize) -> String {
    match col {
        Col::Num(v) if v[i].is_nan() => "missing (NaN)".into(),
        Col::Num(v) => format!("{}", v[i]),
        Col::Str(v) => match &v[i] {
            Some(s) => format!("{s:?}"),
            None => "missing (null)".into(),
        },
    }
}

fn known_list(cats: &[Category]) -> String {
    let shown: Vec<String> = cats.iter().take(20).map(Category::describe).collect();
    let more = if cats.len() > 20 {
        format!(", … {} more", cats.len() - 20)
    } else {
        String::new()
    };
    format!("{}{more}", shown.join(", "))
}

fn column_name(names: &[String], j: usize) -> String {
    names.get(j).cloned().unwrap_or_else(|| format!("x{j}"))
}

fn one_hot(t: Table, oh: &OneHot) -> Result<Table> {
    if oh.categories.len() != t.cols.len() {
        return Err(Error::invalid(format!(
            "one-hot encoder has categories for {} columns, got {}",
            oh.categories.len(),
            t.cols.len()
        )));
    }
    let mut out = Vec::new();
    for (j, (col, cats)) in t.cols.iter().zip(&oh.categories).enumerate() {
        let drop = oh.drop.get(j).copied().flatten();
        let width = cats.len() - usize::from(drop.is_some());
        let mut block: Vec<Vec<f64>> = vec![vec![0.0; t.n_rows]; width];
        for i in 0..t.n_rows {
            match find_category(col, i, cats) {
                Some(k) => {
                    if Some(k) == drop {
                        continue;
                    }
                    let pos = match drop {
                        Some(d) if k > d => k - 1,
                        _ => k,
                    };
                    block[pos][i] = 1.0;
                }
                None => match oh.unknown {
                    Unknown::Ignore => {}
                    Unknown::Error => {
                        return Err(Error::UnknownCategory {
                            column: column_name(&oh.columns, j),
                            row: i,
                            value: describe_value(col, i),
                            known: known_list(cats),
                        });
                    }
                },
            }
        }
        out.extend(block.into_iter().map(Col::Num));
    }
    Ok(Table {
        n_rows: t.n_rows,
        cols: out,
    })
}

fn ordinal(t: Table, o: &Ordinal) -> Result<Table> {
    if o.categories.len() != t.cols.len() {
        return Err(Error::invalid(
            "ordinal encoder column count differs from its input",
        ));
    }
    let mut out = Vec::new();
    for (j, (col, cats)) in t.cols.iter().zip(&o.categories).enumerate() {
        let has_missing = cats.contains(&Category::Missing);
        let mut v = Vec::with_capacity(t.n_rows);
        for i in 0..t.n_rows {
            let is_missing = match col {
                Col::Num(x) => x[i].is_nan(),
                Col::Str(x) => x[i].is_none(),
            };
            if is_missing && has_missing {
                v.push(o.missing_value);
                continue;
            }
            match find_category(col, i, cats) {
                Some(k) => v.push(k as f64),
                None => match o.unknown_value {
                    Some(u) => v.push(u),
                    None => {
                        return Err(Error::UnknownCategory {
                            column: column_name(&o.columns, j),
                            row: i,
                            value: describe_value(col, i),
                            known: known_list(cats),
                        });
                    }
                },
            }
        }
        out.push(Col::Num(v));
    }
    Ok(Table {
        n_rows: t.n_rows,
        cols: out,
    })
}

fn polynomial(t: Table, powers: &[Vec<u32>]) -> Result<Table> {
    let m = t.into_matrix()?;
    let mut cols = Vec::with_capacity(powers.len());
    for p in powers {
        if p.len() != m.cols() {
            return Err(Error::invalid(
                "polynomial powers do not match the input width",
            ));
        }
        let mut v = Vec::with_capacity(m.rows());
        for row in m.iter_rows() {
            // Products in ascending feature order, as scikit-learn builds each degree from the last.
            let mut acc: Option<f64> = None;
            for (j, &e) in p.iter().enumerate() {
                for _ in 0..e {
                    acc = Some(match acc {
                        None => row[j],
                        Some(a) => a * row[j],
                    });
                }
            }
            v.push(acc.unwrap_or(1.0));
        }
        cols.push(Col::Num(v));
    }
    Ok(Table {
        n_rows: m.rows(),
        cols,
    })
}
