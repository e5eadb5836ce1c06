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
    ///
    /// `platt`: the pairwise sigmoid coefficients (`probA_`, `probB_`) of `probability=True`.
    Classifier {
        classes: Vec<Label>,
        ovr: bool,
        break_ties: bool,
        platt: Option<(Vec<f64>, Vec<f64>)>,
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
                platt,
            } => {
                let k = classes.len();
                let n_pairs = k * (k - 1) / 2;
                let mut start = vec![0usize; k];
                for c in 1..k {
                    start[c] = start[c - 1] + self.n_support[c - 1];
                }
                let mut labels = Vec::with_capacity(x.rows());
                let mut probabilities: Option<Matrix> = None;
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
                if let Some((a, b)) = platt {
                    if a.len() != n_pairs || b.len() != n_pairs {
                        return Err(Error::invalid(
                            "Platt coefficients do not match the class pairs",
                        ));
                    }
                    let mut p = Matrix::zeros(dec.rows(), k);
                    for r in 0..dec.rows() {
                        p.row_mut(r)
                            .copy_from_slice(&pairwise_probability(dec.row(r), a, b, k));
                    }
                    probabilities = Some(p);
                }
                let mut out = Output::new(Predictions::Labels(
                    labels.into_iter().map(|c| classes[c].clone()).collect(),
                ));
                out.probabilities = probabilities;
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

/// libsvm's `sigmoid_predict`: Platt's sigmoid, written to avoid cancellation.
fn sigmoid_predict(dec: f64, a: f64, b: f64) -> f64 {
    let f = dec * a + b;
    if f >= 0.0 {
        (-f).exp() / (1.0 + (-f).exp())
    } else {
        1.0 / (1.0 + f.exp())
    }
}

/// libsvm's `svm_predict_probability`: pairwise Platt probabilities coupled by Wu, Lin and Weng's
/// second method (`multiclass_probability`), iterated exactly as libsvm does.
pub fn pairwise_probability(dec: &[f64], a: &[f64], b: &[f64], k: usize) -> Vec<f64> {
    let min_prob = 1e-7;
    let mut r = vec![vec![0.0; k]; k];
    let mut p = 0;
    for i in 0..k {
        for j in i + 1..k {
            let v = sigmoid_predict(dec[p], a[p], b[p])
                .max(min_prob)
                .min(1.0 - min_prob);
            r[i][j] = v;
            r[j][i] = 1.0 - v;
            p += 1;
        }
    }
    let max_iter = 100.max(k);
    let eps = 0.005 / k as f64;
    let mut q = vec![vec![0.0; k]; k];
    let mut prob = vec![1.0 / k as f64; k];
    for t in 0..k {
        for j in 0..t {
            q[t][t] += r[j][t] * r[j][t];
            q[t][j] = q[j][t];
        }
        for j in t + 1..k {
            q[t][t] += r[j][t] * r[j][t];
            q[t][j] = -r[j][t] * r[t][j];
        }
    }
    let mut qp = vec![0.0; k];
    for _ in 0..max_iter {
        let mut pqp = 0.0;
        for t in 0..k {
            qp[t] = 0.0;
            for j in 0..k {
                qp[t] += q[t][j] * prob[j];
            }
            pqp += prob[t] * qp[t];
        }
        let max_error = qp.iter().map(|v| (v - pqp).abs()).fold(0.0, f64::max);
        if max_error < eps {
            break;
        }
        for t in 0..k {
            let diff = (-qp[t] + pqp) / q[t][t];
            prob[t] += diff;
            pqp = (pqp + diff * (diff * q[t][t] + 2.0 * qp[t])) / (1.0 + diff) / (1.0 + diff);
            for j in 0..k {
                qp[j] = (qp[j] + diff * q[t][j]) / (1.0 + diff);
                prob[j] /= 1.0 + diff;
            }
        }
    }
    prob
}
