//! Kernel support vector machines, scored as libsvm does (one-vs-one votes, `decision_function`).

use crate::numeric::powi;
use crate::{Error, Label, Matrix, Output, Predictions, Result, Scores};

/// A libsvm kernel.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Kernel {
    Linear,
    Poly { gamma: f64, coef0: f64, degree: i32 },
    Rbf { gamma: f64 },
    Sigmoid { gamma: f64, coef0: f64 },
}

impl Kernel {
    fn eval(&self, x: &[f64], y: &[f64]) -> f64 {
        match *self {
            Kernel::Linear => blas_dot(x, y),
            Kernel::Poly {
                gamma,
                coef0,
                degree,
            } => powi(gamma * blas_dot(x, y) + coef0, degree),
            Kernel::Rbf { gamma } => {
                let mut sum = 0.0;
                for (a, b) in x.iter().zip(y) {
                    let d = a - b;
                    sum += d * d;
                }
                (-gamma * sum).exp()
            }
            Kernel::Sigmoid { gamma, coef0 } => (gamma * blas_dot(x, y) + coef0).tanh(),
        }
    }
}

/// scikit-learn's libsvm calls BLAS `ddot`; OpenBLAS sums short vectors left to right with fused
/// multiply-adds.
fn blas_dot(x: &[f64], y: &[f64]) -> f64 {
    let mut s = 0.0f64;
    for (a, b) in x.iter().zip(y) {
        s = b.mul_add(*a, s);
    }
    s
}

/// What an SVM predicts.
#[derive(Clone, Debug, PartialEq)]
pub enum SvmTask {
    /// SVC / NuSVC. `ovr`: `decision_function_shape='ovr'`; `break_ties`: predict by the ovr argmax.
    Classifier {
        classes: Vec<Label>,
        ovr: bool,
        break_ties: bool,
    },
    /// SVR / NuSVR.
    Regressor,
}

/// A fitted libsvm model, with scikit-learn's internal (`_dual_coef_`, `_intercept_`) signs.
#[derive(Clone, Debug, PartialEq)]
pub struct Svm {
    pub kernel: Kernel,
    pub support_vectors: Matrix,
    /// Support vectors per class, in class order (classifiers).
    pub n_support: Vec<usize>,
    /// `(n_classes - 1) x n_sv` for classifiers, `1 x n_sv` for regressors.
    pub dual_coef: Matrix,
    /// `_intercept_` (= -rho) per class pair.
    pub intercept: Vec<f64>,
    pub task: SvmTask,
}

impl Svm {
    pub fn validate(&self) -> Result<()> {
        let l = self.support_vectors.rows();
        if self.dual_coef.cols() != l {
            return Err(Error::invalid(
                "dual coefficients do not match the support vectors",
            ));
        }
        if let SvmTask::Classifier { classes, .. } = &self.task {
            let k = classes.len();
            if k < 2
                || self.n_support.len() != k
                || self.n_support.iter().sum::<usize>() != l
                || self.dual_coef.rows() != k - 1
                || self.intercept.len() != k * (k - 1) / 2
            {
                return Err(Error::invalid(
                    "support vector counts do not match the classes",
                ));
            }
        } else if self.dual_coef.rows() != 1 || self.intercept.len() != 1 {
            return Err(Error::invalid(
                "a regressor has one row of dual coefficients",
            ));
        }
        Ok(())
    }

    pub(crate) fn score(&self, x: &Matrix) -> Result<Output> {
        let l = self.support_vectors.rows();
        let mut kvalue = vec![0.0; l];
        match &self.task {
            SvmTask::Regressor => {
                let mut values = Vec::with_capacity(x.rows());
                for row in x.iter_rows() {
                    let mut sum = 0.0;
                    for i in 0..l {
                        sum += self.dual_coef.get(0, i)
                            * self.kernel.eval(row, self.support_vectors.row(i));
                    }
                    values.push(sum + self.intercept[0]);
                }
                Ok(Output::new(Predictions::Values(values)))
            }
            SvmTask::Classifier {
                classes,
                ovr,
                break_ties,
            } => {
                let k = classes.len();
                let n_pairs = k * (k - 1) / 2;
                let mut start = vec![0usize; k];
                for c in 1..k {
                    start[c] = start[c - 1] + self.n_support[c - 1];
                }
                let mut labels = Vec::with_capacity(x.rows());
                let mut dec = Matrix::zeros(x.rows(), n_pairs);
                let mut votes = vec![0usize; k];
                for (r, row) in x.iter_rows().enumerate() {
                    for (i, kv) in kvalue.iter_mut().enumerate() {
                        *kv = self.kernel.eval(row, self.support_vectors.row(i));
                    }
                    votes.iter_mut().for_each(|v| *v = 0);
                    let mut p = 0;
                    let d = dec.row_mut(r);
                    for i in 0..k {
                        for j in i + 1..k {
                            let mut sum = 0.0;
                            let (si, sj) = (start[i], start[j]);
                            for t in 0..self.n_support[i] {
                                sum += self.dual_coef.get(j - 1, si + t) * kvalue[si + t];
                            }
                            for t in 0..self.n_support[j] {
                                sum += self.dual_coef.get(i, sj + t) * kvalue[sj + t];
                            }
                            // libsvm subtracts rho; scikit-learn stores -rho as _intercept_.
                            sum -= -self.intercept[p];
                            d[p] = sum;
                            if sum > 0.0 {
                                votes[i] += 1;
                            } else {
                                votes[j] += 1;
                            }
                            p += 1;
                        }
                    }
                    let mut best = 0;
                    for c in 1..k {
                        if votes[c] > votes[best] {
                            best = c;
                        }
                    }
                    labels.push(best);
                }
                let decision = if k == 2 {
                    // scikit-learn flips the sign of the binary decision function.
                    Scores::Vector(dec.iter_rows().map(|r| -r[0]).collect())
                } else if *ovr {
                    Scores::Matrix(ovr_decision(&dec, k)?)
                } else {
                    Scores::Matrix(dec.clone())
                };
                if let (true, true, Scores::Matrix(m)) = (*break_ties && *ovr, k > 2, &decision) {
                    labels = m.iter_rows().map(crate::numeric::argmax).collect();
                }
                let mut out = Output::new(Predictions::Labels(
                    labels.into_iter().map(|c| classes[c].clone()).collect(),
                ));
                out.classes = Some(classes.clone());
                out.decision_function = Some(decision);
                Ok(out)
            }
        }
    }
}

/// scikit-learn's `_ovr_decision_function(dec < 0, -dec, k)`: votes plus scaled confidences.
fn ovr_decision(dec: &Matrix, k: usize) -> Result<Matrix> {
    let mut out = Matrix::zeros(dec.rows(), k);
    for r in 0..dec.rows() {
        let d = dec.row(r);
        let mut votes = vec![0.0; k];
        let mut conf = vec![0.0; k];
        let mut p = 0;
        for i in 0..k {
            for j in i + 1..k {
                let c = -d[p];
                conf[i] -= c;
                conf[j] += c;
                if d[p] < 0.0 {
                    votes[j] += 1.0;
                } else {
                    votes[i] += 1.0;
                }
                p += 1;
            }
        }
        let o = out.row_mut(r);
        for c in 0..k {
            o[c] = votes[c] + conf[c] / (3.0 * (conf[c].abs() + 1.0));
        }
    }
    Ok(out)
}
