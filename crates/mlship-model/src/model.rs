//! `Model`: a signature, preprocessing steps and one estimator; `predict` runs them on a `Frame`.

use std::borrow::Cow;

use crate::transform::{Col, Table};
use crate::{
    Column, ColumnData, DType, Error, Field, Frame, GaussianNb, KMeans, LinearModel, Matrix, Mlp,
    Output, Result, Signature, Step, Svm, TreeEnsemble,
};

/// A scorer defined outside the IR: a document evaluated as written (a PMML model), for what the
/// IR cannot express exactly. It reads the input table as numbers (string columns arrive as the
/// codes of the encoding steps before it) and handles missing values itself.
pub trait ExternalScorer: Send + Sync + std::fmt::Debug {
    fn n_features(&self) -> usize;
    fn score(&self, x: &Matrix) -> Result<Output>;

    /// Scores `n` rows given as columns (`n_features` of them, `n` values each): what
    /// [`Model::predict`] calls. By default, the rows are gathered into a matrix for `score`.
    fn score_columns(&self, cols: &[&[f64]], n: usize) -> Result<Output> {
        self.score(&Matrix::from_columns(n, cols)?)
    }
}

/// An external scorer, shared; two are equal when they are the same scorer.
#[derive(Clone, Debug)]
pub struct External(pub std::sync::Arc<dyn ExternalScorer>);

impl PartialEq for External {
    fn eq(&self, other: &External) -> bool {
        std::sync::Arc::ptr_eq(&self.0, &other.0)
    }
}

/// The final estimator of a model.
#[derive(Clone, Debug, PartialEq)]
pub enum Estimator {
    Linear(LinearModel),
    Trees(TreeEnsemble),
    Svm(Svm),
    GaussianNb(GaussianNb),
    KMeans(KMeans),
    Mlp(Mlp),
    External(External),
}

impl Estimator {
    fn score(&self, x: &Matrix) -> Result<Output> {
        match self {
            Estimator::Linear(m) => m.score(x),
            Estimator::Trees(m) => m.score(x),
            Estimator::Svm(m) => m.score(x),
            Estimator::GaussianNb(m) => m.score(x),
            Estimator::KMeans(m) => m.score(x),
            Estimator::Mlp(m) => m.score(x),
            Estimator::External(m) => m.0.score(x),
        }
    }

    /// The number of features the estimator reads.
    pub fn n_features(&self) -> usize {
        match self {
            Estimator::Linear(m) => m.n_features(),
            Estimator::Trees(m) => m.n_features(),
            Estimator::Svm(m) => m.support_vectors.cols(),
            Estimator::GaussianNb(m) => m.theta.cols(),
            Estimator::KMeans(m) => m.centers.cols(),
            Estimator::Mlp(m) => m.layers.first().map_or(0, |l| l.weights.cols()),
            Estimator::External(m) => m.0.n_features(),
        }
    }
}

/// Facts about where a model came from, for `inspect` and the registry.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ModelInfo {
    /// The file format, such as `pickle (protocol 4)` or `joblib (zlib)`.
    pub format: String,
    /// The estimator tree, such as `Pipeline[StandardScaler -> LogisticRegression]`.
    pub estimator: String,
    /// The library and version that wrote the file, such as `scikit-learn 1.9.0`.
    pub library: Option<String>,
    /// Things a user should know (version mismatches, ignored parameters).
    pub warnings: Vec<String>,
}

/// A loaded model, ready to score. Other crates build one only through [`Model::new`], which
/// checks it (`#[non_exhaustive]` forbids their struct literals).
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct Model {
    pub signature: Signature,
    pub steps: Vec<Step>,
    pub estimator: Estimator,
    pub info: ModelInfo,
}

impl Model {
    /// A model whose parts fit together ([`Model::check`]): every loader builds its model here,
    /// so an inconsistent file is refused when it is read, never when a row is scored.
    pub fn new(
        signature: Signature,
        steps: Vec<Step>,
        estimator: Estimator,
        info: ModelInfo,
    ) -> Result<Model> {
        let m = Model {
            signature,
            steps,
            estimator,
            info,
        };
        m.check()?;
        Ok(m)
    }

    /// Checks that the steps produce as many columns as the estimator reads, and that column
    /// indices exist, by walking the widths from the signature.
    pub fn check(&self) -> Result<()> {
        let m = self;
        let width = steps_width(&m.steps, m.signature.inputs.len())?;
        if width != m.estimator.n_features() {
            return Err(Error::invalid(format!(
                "the steps give {width} columns but the estimator reads {}",
                m.estimator.n_features()
            )));
        }
        if let Some(classes) = &m.signature.classes {
            if classes.is_empty() {
                return Err(Error::invalid("the signature lists no classes"));
            }
        }
        Ok(())
    }

    /// The categories the encoders know for each input column they read straight from the
    /// input (before any step that changes the columns), in the signature's order: what a form
    /// offers as a list. Missing-value categories are left out.
    pub fn categories(&self) -> Vec<(String, Vec<String>)> {
        let names: Vec<&str> = self
            .signature
            .inputs
            .iter()
            .map(|f| f.name.as_str())
            .collect();
        let mut found: Vec<Option<Vec<String>>> = vec![None; names.len()];
        let identity: Vec<usize> = (0..names.len()).collect();
        encoded_inputs(&self.steps, &identity, &mut found);
        names
            .iter()
            .zip(found)
            .filter_map(|(n, c)| c.map(|c| ((*n).to_string(), c)))
            .collect()
    }

    /// Scores every row of `frame`. Columns are matched by name (extra columns are ignored);
    /// a model fitted without names takes the columns by position.
    pub fn predict(&self, frame: &Frame) -> Result<Output> {
        let n = frame.n_rows();
        let cols: Vec<Cow<'_, [f64]>> = if self.steps.is_empty()
            && self.signature.inputs.iter().all(|f| f.dtype != DType::Str)
        {
            // No preprocessing: the frame's float columns go straight to the estimator.
            self.numeric_columns(frame)?
        } else {
            let mut t = self.input_table(frame)?;
            for s in &self.steps {
                t = s.apply(t)?;
            }
            t.into_columns()?.into_iter().map(Cow::Owned).collect()
        };
        if cols.len() != self.estimator.n_features() {
            return Err(Error::invalid(format!(
                "the estimator reads {} features, preprocessing produced {}",
                self.estimator.n_features(),
                cols.len()
            )));
        }
        let cols: Vec<&[f64]> = cols.iter().map(|c| &**c).collect();
        match &self.estimator {
            // Trees read the columns themselves, and take missing values.
            Estimator::Trees(m) => return m.score_columns(&cols, n),
            // External scorers follow their own rules for missing values.
            Estimator::External(m) => return m.0.score_columns(&cols, n),
            // scikit-learn refuses NaN everywhere else: the first one, in row order, is named.
            _ => {
                let first = cols
                    .iter()
                    .enumerate()
                    .filter_map(|(j, c)| Some((c.iter().position(|v| v.is_nan())?, j)))
                    .min();
                if let Some((row, j)) = first {
                    let column = match (self.steps.is_empty(), self.signature.inputs.get(j)) {
                        (true, Some(f)) => f.name.clone(),
                        _ => format!("feature {j} after preprocessing"),
                    };
                    return Err(Error::BadValue {
                        column,
                        row,
                        expected: "a number (this estimator does not take missing values)".into(),
                        found: "a missing value".into(),
                    });
                }
            }
        }
        self.estimator.score(&Matrix::from_columns(n, &cols)?)
    }

    /// The frame's column for each input field, by name (or by position for a model fitted
    /// without names).
    fn input_columns<'f>(&self, frame: &'f Frame) -> Result<Vec<(&'f Column, &Field)>> {
        let fields = &self.signature.inputs;
        if self.signature.named {
            fields
                .iter()
                .map(|f| {
                    let c = frame.column(&f.name).ok_or_else(|| Error::MissingColumn {
                        column: f.name.clone(),
                        expected: format!("{} values", f.dtype.name()),
                    })?;
                    Ok((c, f))
                })
                .collect()
        } else {
            if frame.columns().len() < fields.len() {
                return Err(Error::ColumnCount {
                    expected: fields.len(),
                    found: frame.columns().len(),
                });
            }
            Ok(frame.columns().iter().zip(fields).collect())
        }
    }

    fn input_table(&self, frame: &Frame) -> Result<Table> {
        let cols = self
            .input_columns(frame)?
            .into_iter()
            .map(|(c, f)| convert(&c.name, f, &c.data))
            .collect::<Result<_>>()?;
        Ok(Table {
            n_rows: frame.n_rows(),
            cols,
        })
    }

    /// The frame's input columns as numbers, checked as `input_table` checks them: float
    /// columns are borrowed, others converted.
    fn numeric_columns<'f>(&self, frame: &'f Frame) -> Result<Vec<Cow<'f, [f64]>>> {
        self.input_columns(frame)?
            .into_iter()
            .map(|(c, f)| match &c.data {
                ColumnData::Float(v) => {
                    check_missing(&c.name, f, v)?;
                    Ok(Cow::Borrowed(v.as_slice()))
                }
                data => match convert(&c.name, f, data)? {
                    Col::Num(v) => Ok(Cow::Owned(v)),
                    Col::Str(_) => Err(Error::invalid("a string column reached the matrix")),
                },
            })
            .collect()
    }
}

/// Converts a frame column to what the model expects, with only safe casts; a missing value in
/// a column that cannot take one is refused here, where the column and row can be named.
fn convert(name: &str, field: &Field, data: &ColumnData) -> Result<Col> {
    let col = convert_type(name, field.dtype, data)?;
    if let Col::Num(v) = &col {
        check_missing(name, field, v)?;
    }
    Ok(col)
}

/// Refuses a missing value in a column whose field cannot take one, naming the column and row.
fn check_missing(name: &str, field: &Field, v: &[f64]) -> Result<()> {
    if field.nullable {
        return Ok(());
    }
    match v.iter().position(|x| x.is_nan()) {
        Some(row) => Err(Error::BadValue {
            column: name.to_string(),
            row,
            expected: "a number (the model does not take missing values here)".into(),
            found: "a missing value".into(),
        }),
        _ => Ok(()),
    }
}

fn convert_type(name: &str, dtype: DType, data: &ColumnData) -> Result<Col> {
    match (dtype, data) {
        (DType::Str, ColumnData::Str(v)) => Ok(Col::Str(v.clone())),
        (DType::Str, other) => Err(Error::BadValue {
            column: name.to_string(),
            row: 0,
            expected: "a string".into(),
            found: format!("a column of {} values", other.type_name()),
        }),
        (_, ColumnData::Float(v)) => Ok(Col::Num(v.clone())),
        (_, ColumnData::Int(v)) => Ok(Col::Num(
            v.iter().map(|x| x.map_or(f64::NAN, |i| i as f64)).collect(),
        )),
        (_, ColumnData::Bool(v)) => Ok(Col::Num(
            v.iter()
                .map(|x| x.map_or(f64::NAN, |b| if b { 1.0 } else { 0.0 }))
                .collect(),
        )),
        (_, ColumnData::Str(v)) => {
            let row = v.iter().position(Option::is_some).unwrap_or(0);
            Err(Error::BadValue {
                column: name.to_string(),
                row,
                expected: "a number".into(),
                found: format!("{:?}", v[row].as_deref().unwrap_or("")),
            })
        }
    }
}

fn steps_width(steps: &[Step], mut width: usize) -> Result<usize> {
    for s in steps {
        width = step_width(s, width)?;
    }
    Ok(width)
}

/// Records the categories of encoders whose column `j` is input `inputs[j]`, walking `steps`
/// until one changes what the columns are.
fn encoded_inputs(steps: &[Step], inputs: &[usize], found: &mut [Option<Vec<String>>]) {
    for s in steps {
        match s {
            Step::OneHot(o) => return record(&o.categories, inputs, found),
            Step::Ordinal(o) => record(&o.categories, inputs, found),
            Step::Columns { parts } => {
                for (cols, sub) in parts {
                    let mapped: Vec<usize> = cols
                        .iter()
                        .filter_map(|&c| inputs.get(c).copied())
                        .collect();
                    if mapped.len() == cols.len() {
                        encoded_inputs(sub, &mapped, found);
                    }
                }
                return;
            }
            Step::Impute {
                fill, indicator, ..
            } if indicator.is_some()
                || fill.iter().any(|f| matches!(f, crate::ImputeFill::Drop)) =>
            {
                return;
            }
            Step::Polynomial { .. } => return,
            _ => {}
        }
    }
}

fn record(
    cats: &[Vec<crate::transform::Category>],
    inputs: &[usize],
    found: &mut [Option<Vec<String>>],
) {
    use crate::transform::Category;
    for (j, cs) in cats.iter().enumerate() {
        if let Some(slot) = inputs.get(j).and_then(|&i| found.get_mut(i)) {
            let listed = cs
                .iter()
                .filter_map(|c| match c {
                    Category::Num(v) => Some(format!("{v}")),
                    Category::Str(s) => Some(s.clone()),
                    Category::Missing => None,
                })
                .collect();
            *slot = Some(listed);
        }
    }
}

fn step_width(s: &Step, width: usize) -> Result<usize> {
    let need = |n: usize, what: &str| {
        if n == width {
            Ok(())
        } else {
            Err(Error::invalid(format!(
                "{what} takes {n} columns but receives {width}"
            )))
        }
    };
    Ok(match s {
        Step::Standardize { offset, scale } => {
            if let Some(v) = offset.as_ref().or(scale.as_ref()) {
                need(v.len(), "standardize")?;
            }
            width
        }
        Step::MinMax { scale, .. } => {
            need(scale.len(), "min_max")?;
            width
        }
        Step::Normalize(_) => width,
        Step::Impute {
            fill, indicator, ..
        } => {
            need(fill.len(), "impute")?;
            fill.iter()
                .filter(|f| !matches!(f, crate::ImputeFill::Drop))
                .count()
                + indicator.as_ref().map_or(0, Vec::len)
        }
        Step::OneHot(o) => {
            need(o.columns.len(), "one_hot")?;
            o.categories
                .iter()
                .zip(&o.drop)
                .map(|(c, d)| c.len() - usize::from(d.is_some()))
                .sum()
        }
        Step::Ordinal(o) => {
            need(o.columns.len(), "ordinal")?;
            width
        }
        Step::Polynomial { powers } => {
            if !powers.is_empty() {
                need(powers[0].len(), "polynomial")?;
            }
            powers.len()
        }
        Step::Columns { parts } => {
            let mut out = 0;
            for (cols, steps) in parts {
                if let Some(&c) = cols.iter().find(|&&c| c >= width) {
                    return Err(Error::invalid(format!(
                        "a column transformer part reads column {c} of {width}"
                    )));
                }
                out += steps_width(steps, cols.len())?;
            }
            out
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Field, Signature, Task};

    #[derive(Debug)]
    struct Reads(usize);

    impl ExternalScorer for Reads {
        fn n_features(&self) -> usize {
            self.0
        }
        fn score(&self, _: &Matrix) -> Result<Output> {
            Err(Error::invalid("not scored in this test"))
        }
    }

    fn model(inputs: usize, steps: Vec<Step>, reads: usize) -> Model {
        Model {
            signature: Signature {
                inputs: (0..inputs)
                    .map(|i| Field {
                        name: format!("f{i}"),
                        dtype: DType::Float,
                        nullable: false,
                    })
                    .collect(),
                named: true,
                task: Task::Regression,
                classes: None,
            },
            steps,
            estimator: Estimator::External(External(std::sync::Arc::new(Reads(reads)))),
            info: ModelInfo {
                format: "test".into(),
                estimator: "test".into(),
                library: None,
                warnings: Vec::new(),
            },
        }
    }

    /// Every loader's model passes this before it is scored: widths chain from the signature
    /// through the steps to the estimator.
    #[test]
    fn widths_must_chain_from_the_inputs_to_the_estimator() {
        assert!(model(2, Vec::new(), 2).check().is_ok());
        assert!(model(3, Vec::new(), 2).check().is_err());
        let scale = |n: usize| Step::Standardize {
            offset: Some(vec![0.0; n]),
            scale: None,
        };
        assert!(model(2, vec![scale(2)], 2).check().is_ok());
        let e = model(2, vec![scale(3)], 2).check().unwrap_err();
        assert!(
            e.to_string().contains("takes 3 columns but receives 2"),
            "{e}"
        );
    }
}
