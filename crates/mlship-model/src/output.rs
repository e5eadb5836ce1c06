//! `Output`: what scoring returns: predictions, and for classifiers probabilities and classes.

use std::borrow::Cow;

use crate::{Label, Matrix};

/// The prediction of each row.
#[derive(Clone, Debug, PartialEq)]
pub enum Predictions {
    /// Class labels (classifiers that name each row's class, such as ONNX graphs).
    Labels(Vec<Label>),
    /// The index in [`Output::classes`] of each row's class (the IR's classifiers: four bytes a
    /// row, where a label takes 32). [`Output::label`] and [`Output::labels`] read either form.
    Classes(Vec<u32>),
    /// Numbers (regressors).
    Values(Vec<f64>),
    /// Cluster indices (clustering).
    Clusters(Vec<i64>),
}

impl Predictions {
    pub fn len(&self) -> usize {
        match self {
            Predictions::Labels(v) => v.len(),
            Predictions::Classes(v) => v.len(),
            Predictions::Values(v) => v.len(),
            Predictions::Clusters(v) => v.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Scores that are a vector for binary problems and a matrix otherwise, as scikit-learn returns them.
#[derive(Clone, Debug, PartialEq)]
pub enum Scores {
    Vector(Vec<f64>),
    Matrix(Matrix),
}

/// Everything a model says about a batch of rows.
#[derive(Clone, Debug, PartialEq)]
pub struct Output {
    pub predictions: Predictions,
    /// Class probabilities, columns in `classes` order (classifiers that have them).
    pub probabilities: Option<Matrix>,
    /// The class labels (classifiers).
    pub classes: Option<Vec<Label>>,
    /// `decision_function`, where the estimator has one.
    pub decision_function: Option<Scores>,
    /// Distances to the cluster centres (k-means `transform`).
    pub distances: Option<Matrix>,
    /// Further named outputs the model declares (a PMML scorecard's reason codes), one value per
    /// row, `None` where the model gives none for that row.
    pub extra: Vec<(String, Vec<Option<String>>)>,
}

impl Output {
    pub(crate) fn new(predictions: Predictions) -> Output {
        Output {
            predictions,
            probabilities: None,
            classes: None,
            decision_function: None,
            distances: None,
            extra: Vec::new(),
        }
    }
}

impl Output {
    /// The class label of row `row`, for classifiers (`None` for other outputs or past the rows).
    pub fn label(&self, row: usize) -> Option<&Label> {
        match &self.predictions {
            Predictions::Labels(v) => v.get(row),
            Predictions::Classes(v) => self.classes.as_ref()?.get(*v.get(row)? as usize),
            Predictions::Values(_) | Predictions::Clusters(_) => None,
        }
    }

    /// The class label of every row, for classifiers.
    pub fn labels(&self) -> Option<Cow<'_, [Label]>> {
        match &self.predictions {
            Predictions::Labels(v) => Some(Cow::Borrowed(v)),
            Predictions::Classes(v) => (0..v.len())
                .map(|i| self.label(i).cloned())
                .collect::<Option<Vec<_>>>()
                .map(Cow::Owned),
            Predictions::Values(_) | Predictions::Clusters(_) => None,
        }
    }
}

/// Labels of the first maximum of each row.
pub(crate) fn argmax_labels(m: &Matrix, classes: &[Label]) -> Vec<Label> {
    m.iter_rows()
        .map(|r| classes[crate::numeric::argmax(r)].clone())
        .collect()
}
