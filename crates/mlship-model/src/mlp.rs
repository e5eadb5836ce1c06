//! Multi-layer perceptrons: dense layers with scikit-learn's activations and output functions.

use crate::numeric::{argmax, expit, softmax_in_place};
use crate::{Error, Label, Matrix, Output, Predictions, Result};

/// A hidden or output activation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Activation {
    Identity,
    Logistic,
    Tanh,
    Relu,
    Softmax,
}

impl Activation {
    fn apply(self, row: &mut [f64]) {
        match self {
            Activation::Identity => {}
            Activation::Logistic => row.iter_mut().for_each(|v| *v = expit(*v)),
            Activation::Tanh => row.iter_mut().for_each(|v| *v = v.tanh()),
            Activation::Relu => row.iter_mut().for_each(|v| *v = v.max(0.0)),
            Activation::Softmax => softmax_in_place(row),
        }
    }
}

/// One dense layer: `weights` has one row per output unit (the transpose of `coefs_[i]`).
#[derive(Clone, Debug, PartialEq)]
pub struct Layer {
    pub weights: Matrix,
    pub bias: Vec<f64>,
}

/// What an MLP predicts.
#[derive(Clone, Debug, PartialEq)]
pub enum MlpTask {
    Regression,
    Classifier { classes: Vec<Label> },
}

/// A fitted MLPClassifier or MLPRegressor.
#[derive(Clone, Debug, PartialEq)]
pub struct Mlp {
    pub layers: Vec<Layer>,
    pub hidden: Activation,
    pub output: Activation,
    pub task: MlpTask,
}

impl Mlp {
    pub fn validate(&self) -> Result<()> {
        let mut width = None;
        for (i, l) in self.layers.iter().enumerate() {
            if l.bias.len() != l.weights.rows() || width.is_some_and(|w| w != l.weights.cols()) {
                return Err(Error::invalid(format!(
                    "layer {i} does not fit the previous one"
                )));
            }
            width = Some(l.weights.rows());
        }
        if self.layers.is_empty() {
            return Err(Error::invalid("network without layers"));
        }
        Ok(())
    }

    pub(crate) fn score(&self, x: &Matrix) -> Result<Output> {
        let mut a = x.clone();
        let last = self.layers.len() - 1;
        for (i, layer) in self.layers.iter().enumerate() {
            a = a.matmul_t(&layer.weights, Some(&layer.bias));
            let act = if i == last { self.output } else { self.hidden };
            for r in 0..a.rows() {
                act.apply(a.row_mut(r));
            }
        }
        match &self.task {
            MlpTask::Regression => Ok(Output::new(Predictions::Values(
                a.iter_rows().map(|r| r[0]).collect(),
            ))),
            MlpTask::Classifier { classes } => {
                let n = a.rows();
                let (labels, proba) = if a.cols() == 1 {
                    let mut p = Vec::with_capacity(2 * n);
                    let mut labels = Vec::with_capacity(n);
                    for r in a.iter_rows() {
                        labels.push(classes[usize::from(r[0] > 0.5)].clone());
                        p.push(1.0 - r[0]);
                        p.push(r[0]);
                    }
                    (labels, Matrix::new(n, 2, p)?)
                } else {
                    (
                        a.iter_rows().map(|r| classes[argmax(r)].clone()).collect(),
                        a,
                    )
                };
                let mut out = Output::new(Predictions::Labels(labels));
                out.probabilities = Some(proba);
                out.classes = Some(classes.clone());
                Ok(out)
            }
        }
    }
}
