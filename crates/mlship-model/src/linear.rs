//! Linear models: `x · coef + intercept`, with the heads of regressors and linear classifiers.

use crate::numeric::{expit, softmax_in_place};
use crate::output::argmax_labels;
use crate::{Label, Matrix, Output, Predictions, Result, Scores};

/// How a linear classifier turns decision values into probabilities.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LinearProba {
    /// No `predict_proba` (LinearSVC, SGD with hinge loss, RidgeClassifier).
    None,
    /// Logistic per class; with more than two classes normalised over classes (one-vs-rest).
    OneVsRest,
    /// Softmax over the classes (multinomial logistic regression).
    Softmax,
    /// SGD's modified Huber: `(clip(d, -1, 1) + 1) / 2`, normalised one-vs-rest.
    ModifiedHuber,
}

/// What a linear model predicts.
#[derive(Clone, Debug, PartialEq)]
pub enum LinearTask {
    Regression,
    Classifier {
        classes: Vec<Label>,
        proba: LinearProba,
    },
}

/// `coef` has one row per output (one row for regressors and binary classifiers).
#[derive(Clone, Debug, PartialEq)]
pub struct LinearModel {
    pub coef: Matrix,
    pub intercept: Vec<f64>,
    pub task: LinearTask,
}

impl LinearModel {
    pub fn n_features(&self) -> usize {
        self.coef.cols()
    }

    pub(crate) fn score(&self, x: &Matrix) -> Result<Output> {
        let d = x.matmul_t(&self.coef, Some(&self.intercept));
        match &self.task {
            LinearTask::Regression => Ok(Output::new(Predictions::Values(d.into_vec()))),
            LinearTask::Classifier { classes, proba } => {
                let n = d.rows();
                if d.cols() == 1 {
                    let dec: Vec<f64> = d.into_vec();
                    let labels = dec
                        .iter()
                        .map(|&v| classes[usize::from(v > 0.0)].clone())
                        .collect();
                    let probabilities = match proba {
                        LinearProba::None => None,
                        LinearProba::OneVsRest | LinearProba::Softmax => {
                            let mut p = Vec::with_capacity(2 * n);
                            for &v in &dec {
                                let p1 = expit(v);
                                p.push(1.0 - p1);
                                p.push(p1);
                            }
                            Some(Matrix::new(n, 2, p)?)
                        }
                        LinearProba::ModifiedHuber => {
                            let mut p = Vec::with_capacity(2 * n);
                            for &v in &dec {
                                let p1 = (v.clamp(-1.0, 1.0) + 1.0) / 2.0;
                                p.push(1.0 - p1);
                                p.push(p1);
                            }
                            Some(Matrix::new(n, 2, p)?)
                        }
                    };
                    let mut out = Output::new(Predictions::Labels(labels));
                    out.probabilities = probabilities;
                    out.classes = Some(classes.clone());
                    out.decision_function = Some(Scores::Vector(dec));
                    Ok(out)
                } else {
                    let labels = argmax_labels(&d, classes);
                    let probabilities = match proba {
                        LinearProba::None => None,
                        LinearProba::Softmax => {
                            let mut p = d.clone();
                            for i in 0..n {
                                softmax_in_place(p.row_mut(i));
                            }
                            Some(p)
                        }
                        LinearProba::OneVsRest => {
                            let mut p = d.clone();
                            for i in 0..n {
                                let r = p.row_mut(i);
                                for v in r.iter_mut() {
                                    *v = expit(*v);
                                }
                                normalize_ovr(r);
                            }
                            Some(p)
                        }
                        LinearProba::ModifiedHuber => {
                            let mut p = d.clone();
                            for i in 0..n {
                                let r = p.row_mut(i);
                                for v in r.iter_mut() {
                                    *v = (v.clamp(-1.0, 1.0) + 1.0) / 2.0;
                                }
                                normalize_ovr(r);
                            }
                            Some(p)
                        }
                    };
                    let mut out = Output::new(Predictions::Labels(labels));
                    out.probabilities = probabilities;
                    out.classes = Some(classes.clone());
                    out.decision_function = Some(Scores::Matrix(d));
                    Ok(out)
                }
            }
        }
    }
}

/// One-vs-rest normalisation; a row of zeros becomes uniform, as scikit-learn does.
fn normalize_ovr(r: &mut [f64]) {
    let sum = crate::numeric::np_sum(r);
    if sum == 0.0 {
        let k = r.len() as f64;
        for v in r.iter_mut() {
            *v = 1.0 / k;
        }
    } else {
        for v in r.iter_mut() {
            *v /= sum;
        }
    }
}
