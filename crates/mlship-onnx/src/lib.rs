//! ONNX models of classic estimators (what skl2onnx and onnxmltools write): the protobuf is
//! decoded by hand (`proto`), every operator is checked against the ones mlship runs (`ops`), and
//! the graph runs as written, in float32 like onnxruntime, behind the IR's `ExternalScorer`.
//! Graphs with other standard operators (neural networks) run through tract in builds with the
//! `tract` feature (`tract.rs`), and are refused by name in the others.

mod compile;
mod error;
mod ops;
mod proto;
#[cfg(feature = "tract")]
mod tract;

use std::collections::HashMap;
use std::sync::Arc;

use mlship_model::{
    DType, Estimator, External, ExternalScorer, Field, Label, Matrix, Model, ModelInfo, Output,
    Predictions, Signature, Task,
};

pub use error::{Error, Result};
use ops::{Attrs, Data, Tensor};
use proto::{GraphProto, NodeProto};

/// Whether the bytes look like an ONNX model: a ModelProto starts with its IR version (field 1,
/// varint) and names its producer or graph soon after.
pub fn is_onnx(b: &[u8]) -> bool {
    let head = &b[..b.len().min(256)];
    b.len() > 16
        && b[0] == 0x08
        && b[1] < 32
        && (head.windows(4).any(|w| w == b"onnx") || proto::model(b).is_ok())
}

#[derive(Debug)]
enum InputKind {
    /// One `[N, F]` float tensor: the model's columns in order.
    Matrix { name: String, width: usize },
    /// One `[N, 1]` tensor per column.
    Columns(Vec<(String, i64)>),
}

#[derive(Debug)]
pub struct OnnxScorer {
    nodes: Vec<NodeProto>,
    /// Each node's operator with its attributes decoded, compiled at load.
    kernels: Vec<compile::Kernel>,
    initializers: HashMap<String, Tensor>,
    input: InputKind,
    outputs: Vec<String>,
    task: Task,
    /// The categories string inputs are coded with (from the graph's one-hot encoders).
    codes: Vec<String>,
    n_features: usize,
}

const INVALID_CODE: f64 = -1.0;

impl OnnxScorer {
    fn feeds(&self, x: &Matrix) -> HashMap<String, Tensor> {
        let n = x.rows();
        let mut m = HashMap::new();
        match &self.input {
            InputKind::Matrix { name, width } => {
                let data = x.as_slice().iter().map(|&v| v as f32).collect();
                m.insert(
                    name.clone(),
                    Tensor {
                        shape: vec![n, *width],
                        data: Data::F(data),
                    },
                );
            }
            InputKind::Columns(cols) => {
                for (j, (name, elem)) in cols.iter().enumerate() {
                    let col = (0..n).map(|r| x.get(r, j));
                    let data = match *elem {
                        proto::STRING => Data::S(
                            col.map(|c| {
                                if c.is_nan() || c == INVALID_CODE {
                                    String::new()
                                } else {
                                    self.codes.get(c as usize).cloned().unwrap_or_default()
                                }
                            })
                            .collect(),
                        ),
                        proto::INT64 | proto::INT32 => Data::I(col.map(|c| c as i64).collect()),
                        _ => Data::F(col.map(|c| c as f32).collect()),
                    };
                    m.insert(
                        name.clone(),
                        Tensor {
                            shape: vec![n, 1],
                            data,
                        },
                    );
                }
            }
        }
        m
    }

    fn run(&self, x: &Matrix) -> Result<Vec<Tensor>> {
        let mut values = self.feeds(x);
        for (node, kernel) in self.nodes.iter().zip(&self.kernels) {
            let ins: Vec<Option<&Tensor>> = node
                .inputs
                .iter()
                .map(|i| {
                    if i.is_empty() {
                        None
                    } else {
                        values.get(i).or_else(|| self.initializers.get(i))
                    }
                })
                .collect();
            if let Some((k, _)) = node
                .inputs
                .iter()
                .enumerate()
                .find(|(k, i)| !i.is_empty() && ins[*k].is_none())
            {
                return Err(Error::Malformed {
                    format: "ONNX",
                    offset: node.offset,
                    message: format!(
                        "{} reads {:?}, which nothing computed before it",
                        node.op_type, node.inputs[k]
                    ),
                });
            }
            let outs = ops::run(node, kernel, &ins)?;
            for (name, t) in node.outputs.iter().zip(outs) {
                values.insert(name.clone(), t);
            }
        }
        self.outputs
            .iter()
            .map(|o| {
                values.remove(o).ok_or_else(|| {
                    Error::Unsupported(format!("the ONNX output {o:?} is computed by no node"))
                })
            })
            .collect()
    }
}

fn label_of(d: &Data, i: usize) -> Label {
    match d {
        Data::I(v) => Label::Int(v[i]),
        Data::S(v) => Label::Str(v[i].clone()),
        Data::F(v) => Label::Float(f64::from(v[i])),
    }
}

impl ExternalScorer for OnnxScorer {
    fn n_features(&self) -> usize {
        self.n_features
    }

    fn score(&self, x: &Matrix) -> mlship_model::Result<Output> {
        let n = x.rows();
        let outs = self.run(x).map_err(|e| match e {
            Error::Model(m) => m,
            other => mlship_model::Error::Invalid(other.to_string()),
        })?;
        let bad = |what: &str| mlship_model::Error::Invalid(format!("the ONNX graph's {what}"));
        let first = outs.first().ok_or_else(|| bad("outputs are missing"))?;
        if first.len() != n {
            return Err(bad(&format!(
                "first output has {} values for {n} rows",
                first.len()
            )));
        }
        Ok(match self.task {
            Task::Regression => {
                let v = match &first.data {
                    Data::F(v) => v.iter().map(|&x| f64::from(x)).collect(),
                    _ => return Err(bad("regression output is not float")),
                };
                Output {
                    predictions: Predictions::Values(v),
                    probabilities: None,
                    classes: None,
                    decision_function: None,
                    distances: None,
                    extra: Vec::new(),
                }
            }
            Task::Clustering => {
                let v = match &first.data {
                    Data::I(v) => v.clone(),
                    _ => return Err(bad("cluster output is not int64")),
                };
                Output {
                    predictions: Predictions::Clusters(v),
                    probabilities: None,
                    classes: None,
                    decision_function: None,
                    distances: None,
                    extra: Vec::new(),
                }
            }
            Task::Classification => {
                let labels = (0..n).map(|i| label_of(&first.data, i)).collect();
                let probabilities = match outs.get(1) {
                    Some(Tensor {
                        shape,
                        data: Data::F(p),
                    }) if shape.len() == 2 && shape[0] == n => Some(Matrix::new(
                        n,
                        shape[1],
                        p.iter().map(|&x| f64::from(x)).collect(),
                    )?),
                    _ => None,
                };
                Output {
                    predictions: Predictions::Labels(labels),
                    probabilities,
                    classes: None,
                    decision_function: None,
                    distances: None,
                    extra: Vec::new(),
                }
            }
        })
    }
}

/// The classes of a classifier graph: its classifier's labels, a ZipMap's, or the array an
/// ArrayFeatureExtractor picks labels from.
fn classes(g: &GraphProto, inits: &HashMap<String, Tensor>) -> Option<Vec<Label>> {
    for node in &g.nodes {
        if matches!(
            node.op_type.as_str(),
            "TreeEnsembleClassifier" | "LinearClassifier" | "SVMClassifier" | "ZipMap"
        ) {
            if let Some(d) = Attrs(node).labels() {
                let n = match &d {
                    Data::I(v) => v.len(),
                    Data::S(v) => v.len(),
                    Data::F(v) => v.len(),
                };
                return Some((0..n).map(|i| label_of(&d, i)).collect());
            }
        }
    }
    // The labels output picked from a constant array: walk back from the first output through
    // operators that only reshape or retype (an ArrayFeatureExtractor elsewhere, such as
    // AdaBoostRegressor's pick of its median tree, holds no labels).
    let mut current = g.outputs.first()?.name.as_str();
    for _ in 0..g.nodes.len() {
        let node = g
            .nodes
            .iter()
            .find(|n| n.outputs.iter().any(|o| o == current))?;
        match node.op_type.as_str() {
            "ArrayFeatureExtractor" => {
                let t = inits.get(node.inputs.first()?)?;
                return Some((0..t.len()).map(|i| label_of(&t.data, i)).collect());
            }
            "Cast" | "Reshape" | "Identity" | "Flatten" | "Squeeze" | "Unsqueeze" => {
                current = node.inputs.first()?.as_str();
            }
            _ => return None,
        }
    }
    None
}

/// Loads an ONNX model of a classic estimator.
pub fn load(b: &[u8]) -> Result<Model> {
    let m = proto::model(b)?;
    for (domain, version) in &m.opsets {
        let ok = match domain.as_str() {
            // Opsets 22 and 23 (skl2onnx 1.20's default) add element types to operators, not
            // meanings.
            "" | "ai.onnx" => (1..=23).contains(version),
            "ai.onnx.ml" => (1..=3).contains(version),
            other => {
                return Err(Error::Unsupported(format!(
                    "the ONNX operator set {other:?}"
                )));
            }
        };
        if !ok {
            return Err(Error::Unsupported(format!(
                "ONNX operator set {domain:?} version {version}"
            )));
        }
    }
    // A graph with a standard operator mlship does not run is a neural network: tract runs it
    // in builds with the `tract` feature. Classic ML operators are mlship's alone.
    if let Some(node) = m
        .graph
        .nodes
        .iter()
        .find(|n| !ops::supported(&n.domain, &n.op_type))
    {
        let standard = |d: &str| d.is_empty() || d == "ai.onnx";
        let neural = m.graph.nodes.iter().all(|n| standard(&n.domain));
        #[cfg(feature = "tract")]
        if neural {
            return tract::load(b, m);
        }
        let hint = if neural && cfg!(not(feature = "tract")) {
            "; neural networks run through tract in builds with the `tract` feature (cargo build --release --features tract)"
        } else {
            "; mlship runs the ai.onnx.ml operators classic exporters write"
        };
        return Err(Error::Unsupported(format!(
            "the ONNX operator {}{} (node {:?} at byte {}){hint}",
            if node.domain.is_empty() {
                String::new()
            } else {
                format!("{}.", node.domain)
            },
            node.op_type,
            node.name,
            node.offset
        )));
    }
    let g = m.graph;
    for node in &g.nodes {
        if node.attributes.iter().any(|a| a.has_graph) {
            return Err(Error::Unsupported(format!(
                "ONNX subgraphs (in {})",
                node.op_type
            )));
        }
    }
    let mut initializers = HashMap::new();
    for t in &g.initializers {
        initializers.insert(t.name.clone(), Tensor::from_proto(t)?);
    }
    let inputs: Vec<&proto::ValueInfo> = g
        .inputs
        .iter()
        .filter(|i| !initializers.contains_key(&i.name))
        .collect();
    let (input, fields, named) = match inputs.as_slice() {
        [one] if one.shape.len() == 2 && one.shape[1].is_some() => {
            let width = one.shape[1].unwrap_or(0).max(0) as usize;
            if one.elem_type != proto::FLOAT && one.elem_type != proto::DOUBLE {
                return Err(Error::Unsupported(
                    "an ONNX matrix input that is not float".into(),
                ));
            }
            let fields = (0..width)
                .map(|j| Field {
                    name: format!("x{j}"),
                    dtype: DType::Float,
                    nullable: true,
                })
                .collect();
            (
                InputKind::Matrix {
                    name: one.name.clone(),
                    width,
                },
                fields,
                false,
            )
        }
        [] => return Err(Error::Unsupported("an ONNX graph without inputs".into())),
        many => {
            let mut cols = Vec::new();
            let mut fields = Vec::new();
            for i in many {
                if i.shape.len() != 2 || i.shape[1] != Some(1) {
                    return Err(Error::Unsupported(format!(
                        "the ONNX input {:?} of shape {:?} (mlship takes one [N, F] matrix or [N, 1] columns)",
                        i.name, i.shape
                    )));
                }
                let dtype = match i.elem_type {
                    proto::STRING => DType::Str,
                    proto::FLOAT | proto::DOUBLE | proto::INT64 | proto::INT32 => DType::Float,
                    other => {
                        return Err(Error::Unsupported(format!(
                            "ONNX input element type {other}"
                        )));
                    }
                };
                cols.push((i.name.clone(), i.elem_type));
                fields.push(Field {
                    name: i.name.clone(),
                    dtype,
                    nullable: true,
                });
            }
            (InputKind::Columns(cols), fields, true)
        }
    };
    let class_list = classes(&g, &initializers);
    let first_type = g.outputs.first().map_or(0, |o| o.elem_type);
    let task = match (&class_list, first_type) {
        (Some(_), _) => Task::Classification,
        (None, proto::INT64) => Task::Clustering,
        _ => Task::Regression,
    };
    // String inputs are coded by the categories the graph's one-hot encoders know.
    let mut codes: Vec<String> = Vec::new();
    for node in g.nodes.iter().filter(|n| n.op_type == "OneHotEncoder") {
        for a in node.attributes.iter().filter(|a| a.name == "cats_strings") {
            for s in &a.strings {
                let s = String::from_utf8_lossy(s).into_owned();
                if !codes.contains(&s) {
                    codes.push(s);
                }
            }
        }
    }
    let coded: Vec<(String, Option<Vec<String>>)> = fields
        .iter()
        .map(|f| {
            (
                f.name.clone(),
                (f.dtype == DType::Str).then(|| codes.clone()),
            )
        })
        .collect();
    let steps = mlship_model::coding::string_codes(&coded, INVALID_CODE);
    let ops_summary: Vec<String> = g.nodes.iter().map(|n| n.op_type.clone()).collect();
    // Every node's operator was found supported above.
    let kernels = g
        .nodes
        .iter()
        .map(|n| {
            let op = ops::Op::parse(&n.domain, &n.op_type)
                .ok_or_else(|| Error::Unsupported(format!("the ONNX operator {}", n.op_type)))?;
            compile::compile(n, op)
        })
        .collect::<Result<Vec<_>>>()?;
    let scorer = OnnxScorer {
        kernels,
        n_features: fields.len(),
        nodes: g.nodes,
        initializers,
        input,
        outputs: g.outputs.iter().map(|o| o.name.clone()).collect(),
        task,
        codes,
    };
    let summary = format!("ONNX[{}]", ops_summary.join(" -> "));
    Ok(Model::new(
        Signature {
            inputs: fields,
            named,
            task,
            classes: class_list,
        },
        steps,
        Estimator::External(External(Arc::new(scorer))),
        ModelInfo {
            format: format!("ONNX (IR version {})", m.ir_version),
            estimator: summary,
            library: (!m.producer.is_empty()).then_some(m.producer),
            warnings: Vec::new(),
        },
    )?)
}
