//! Gaussian naive Bayes, with scikit-learn's joint log-likelihood and log-sum-exp normalisation.

use crate::numeric::{argmax, logsumexp, np_sum};
use crate::{Label, Matrix, Output, Predictions, Result};

/// A fitted GaussianNB: per-class means (`theta`), variances (`var`) and priors.
#[derive(Clone, Debug, PartialEq)]
pub struct GaussianNb {
    pub classes: Vec<Label>,
    pub theta: Matrix,
    pub var: Matrix,
    pub class_prior: Vec<f64>,
}

impl GaussianNb {
    pub(crate) fn score(&self, x: &Matrix) -> Result<Output> {
        let k = self.classes.len();
        // The per-class constant term: -0.5 * sum(log(2 pi var)).
        let consts: Vec<f64> = (0..k)
            .map(|c| {
                let logs: Vec<f64> = self
                    .var
                    .row(c)
                    .iter()
                    .map(|v| (2.0 * std::f64::consts::PI * v).ln())
                    .collect();
                -0.5 * np_sum(&logs)
            })
            .collect();
        let mut proba = Matrix::zeros(x.rows(), k);
        let mut labels = Vec::with_capacity(x.rows());
        let mut terms = vec![0.0; x.cols()];
        let mut jll = vec![0.0; k];
        for (r, row) in x.iter_rows().enumerate() {
            for c in 0..k {
                let theta = self.theta.row(c);
                let var = self.var.row(c);
                for j in 0..row.len() {
                    let d = row[j] - theta[j];
                    terms[j] = (d * d) / var[j];
                }
                let mut n_ij = consts[c];
                n_ij -= 0.5 * np_sum(&terms);
                jll[c] = self.class_prior[c].ln() + n_ij;
            }
            labels.push(self.classes[argmax(&jll)].clone());
            let lse = logsumexp(&jll);
            let p = proba.row_mut(r);
            for c in 0..k {
                p[c] = (jll[c] - lse).exp();
            }
        }
        let mut out = Output::new(Predictions::Labels(labels));
        out.probabilities = Some(proba);
        out.classes = Some(self.classes.clone());
        Ok(out)
    }
}
