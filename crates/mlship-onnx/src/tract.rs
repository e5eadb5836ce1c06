//! Neural-network ONNX graphs (standard operators mlship's own interpreter does not run, such as
//! Conv, BatchNormalization or pooling) run through tract, behind the `tract` cargo feature.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;

use mlship_model::{
    DType, Estimator, External, ExternalScorer, Field, Label, Matrix, Model, ModelInfo, Output,
    Predictions, Scores, Signature, Task,
};
use tract_onnx::prelude::{
    Framework, InferenceModelExt, IntoRunnable, IntoTValue, Tensor, TractResult,
    TypedRunnableModel, tvec,
};

use crate::error::{Error, Result};
use crate::proto::{self, GraphProto, ModelProto};

/// A graph tract runs: rows of `width` floats are fed as `[N, shape...]`.
pub struct TractScorer {
    plan: Arc<TypedRunnableModel>,
    /// The input's dimensions after the batch.
    shape: Vec<usize>,
    width: usize,
    /// The graph's batch dimension is fixed at 1: rows run one at a time.
    one_row: bool,
    /// Values per row of the first output: 1 for a regressor, the class count otherwise.
    out_width: usize,
    /// The first output comes out of a Softmax: it holds probabilities, not scores.
    softmax: bool,
}

impl std::fmt::Debug for TractScorer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TractScorer")
            .field("shape", &self.shape)
            .field("out_width", &self.out_width)
            .field("softmax", &self.softmax)
            .finish_non_exhaustive()
    }
}

fn tract_error(what: &str, e: impl std::fmt::Display) -> Error {
    Error::Unsupported(format!("{what}: {e}"))
}

/// Runs `f`, turning a panic inside tract into an error.
fn guarded<T>(what: &str, f: impl FnOnce() -> TractResult<T>) -> Result<T> {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(tract_error(what, format!("{e:#}"))),
        Err(_) => Err(tract_error(what, "tract panicked")),
    }
}

/// Loads a graph of standard ONNX operators into tract. `m` is the graph mlship decoded itself,
/// which gives the input's shape, the output's width and the operator behind the output.
pub fn load(b: &[u8], m: ModelProto) -> Result<Model> {
    let g: &GraphProto = &m.graph;
    let inits: Vec<&str> = g.initializers.iter().map(|t| t.name.as_str()).collect();
    let inputs: Vec<&proto::ValueInfo> = g
        .inputs
        .iter()
        .filter(|i| !inits.contains(&i.name.as_str()))
        .collect();
    let [input] = inputs.as_slice() else {
        return Err(Error::Unsupported(format!(
            "a neural-network ONNX graph with {} inputs (mlship feeds one float tensor)",
            inputs.len()
        )));
    };
    if input.elem_type != proto::FLOAT {
        return Err(Error::Unsupported(format!(
            "the ONNX input {:?} of element type {} (mlship feeds float32)",
            input.name, input.elem_type
        )));
    }
    let one_row = match input.shape.first() {
        Some(None) => false,
        Some(Some(1)) => true,
        _ => {
            return Err(Error::Unsupported(format!(
                "the ONNX input {:?} of shape {:?}: the first dimension must be the batch",
                input.name, input.shape
            )));
        }
    };
    let shape = input.shape[1..]
        .iter()
        .map(|d| match d {
            Some(d) if *d > 0 => Ok(*d as usize),
            _ => Err(Error::Unsupported(format!(
                "the ONNX input {:?} of shape {:?}: every dimension but the batch must be fixed",
                input.name, input.shape
            ))),
        })
        .collect::<Result<Vec<usize>>>()?;
    let width = shape.iter().product::<usize>();
    if width == 0 || width > 1 << 20 {
        return Err(Error::Unsupported(format!(
            "the ONNX input {:?} of {width} values per row",
            input.name
        )));
    }
    let output = g
        .outputs
        .first()
        .ok_or_else(|| Error::Unsupported("an ONNX graph without outputs".into()))?;
    let out_width = match output.shape.as_slice() {
        [_] => 1,
        [_, Some(w)] if *w > 0 => *w as usize,
        other => {
            return Err(Error::Unsupported(format!(
                "the ONNX output {:?} of shape {other:?} (mlship reads [N] or [N, K])",
                output.name
            )));
        }
    };
    let softmax = g
        .nodes
        .iter()
        .any(|n| n.op_type == "Softmax" && n.outputs.first() == Some(&output.name));
    let plan = guarded("tract could not load the ONNX graph", || {
        tract_onnx::onnx()
            .model_for_read(&mut &b[..])?
            .into_optimized()?
            .into_runnable()
    })?;
    let task = if out_width == 1 {
        Task::Regression
    } else {
        Task::Classification
    };
    let classes = (task == Task::Classification)
        .then(|| (0..out_width as i64).map(Label::Int).collect::<Vec<_>>());
    let ops: Vec<&str> = g.nodes.iter().map(|n| n.op_type.as_str()).collect();
    let scorer = TractScorer {
        plan,
        shape,
        width,
        one_row,
        out_width,
        softmax,
    };
    Ok(Model::new(
        Signature {
            inputs: (0..width)
                .map(|j| Field {
                    name: format!("x{j}"),
                    dtype: DType::Float,
                    nullable: false,
                })
                .collect(),
            named: false,
            task,
            classes,
        },
        Vec::new(),
        Estimator::External(External(Arc::new(scorer))),
        ModelInfo {
            format: format!("ONNX (IR version {}), run by tract", m.ir_version),
            estimator: format!("ONNX[{}]", ops.join(" -> ")),
            library: (!m.producer.is_empty()).then(|| m.producer.clone()),
            warnings: Vec::new(),
        },
    )?)
}

impl TractScorer {
    /// The first output's values for `rows` rows of `data`, row-major.
    fn run(&self, data: &[f32], rows: usize) -> Result<Vec<f32>> {
        guarded("tract could not run the ONNX graph", || {
            let mut dims = vec![rows];
            dims.extend_from_slice(&self.shape);
            let input = Tensor::from_shape(&dims, data)?;
            let out = self.plan.run(tvec!(input.into_tvalue()))?;
            let first = out[0].cast_to::<f32>()?;
            Ok(first
                .to_plain_array_view::<f32>()?
                .iter()
                .copied()
                .collect())
        })
    }
}

impl ExternalScorer for TractScorer {
    fn n_features(&self) -> usize {
        self.width
    }

    fn score(&self, x: &Matrix) -> mlship_model::Result<Output> {
        let n = x.rows();
        let data: Vec<f32> = x.as_slice().iter().map(|&v| v as f32).collect();
        let fail = |e: Error| mlship_model::Error::Invalid(e.to_string());
        let out = if self.one_row {
            let mut out = Vec::with_capacity(n * self.out_width);
            for row in data.chunks(self.width) {
                out.extend(self.run(row, 1).map_err(fail)?);
            }
            out
        } else if n == 0 {
            Vec::new()
        } else {
            self.run(&data, n).map_err(fail)?
        };
        if out.len() != n * self.out_width {
            return Err(mlship_model::Error::Invalid(format!(
                "the ONNX graph gave {} values for {n} rows of {} outputs",
                out.len(),
                self.out_width
            )));
        }
        let values: Vec<f64> = out.iter().map(|&v| f64::from(v)).collect();
        if self.out_width == 1 {
            return Ok(Output {
                predictions: Predictions::Values(values),
                probabilities: None,
                classes: None,
                decision_function: None,
                distances: None,
                extra: Vec::new(),
            });
        }
        let m = Matrix::new(n, self.out_width, values)?;
        let classes: Vec<Label> = (0..self.out_width as i64).map(Label::Int).collect();
        let labels = m
            .iter_rows()
            .map(|r| classes[mlship_model::numeric::argmax(r)].clone())
            .collect();
        let (probabilities, decision_function) = if self.softmax {
            (Some(m), None)
        } else {
            (None, Some(Scores::Matrix(m)))
        };
        Ok(Output {
            predictions: Predictions::Labels(labels),
            probabilities,
            classes: Some(classes),
            decision_function,
            distances: None,
            extra: Vec::new(),
        })
    }
}
