//! The ONNX operators mlship runs: the `ai.onnx.ml` operators classic exporters write
//! (TreeEnsemble*, Linear*, SVMClassifier, Scaler, Normalizer, OneHotEncoder, ZipMap,
//! ArrayFeatureExtractor) and the tensor operators their graphs use around them. Tensors are
//! float32, int64 or string, as onnxruntime computes them; trees compare in float32.

use std::collections::HashMap;

use crate::compile::{CastTo, Kernel, Norm, Post, SvmClassifier, SvmRegressor};
use crate::error::{Error, Result};
use crate::proto::{Attribute, BOOL, DOUBLE, FLOAT, INT32, INT64, NodeProto, STRING, TensorProto};

#[derive(Clone, Debug)]
pub enum Data {
    F(Vec<f32>),
    I(Vec<i64>),
    S(Vec<String>),
}

#[derive(Clone, Debug)]
pub struct Tensor {
    pub shape: Vec<usize>,
    pub data: Data,
}

pub(crate) fn fail(node: &NodeProto, message: impl std::fmt::Display) -> Error {
    Error::Malformed {
        format: "ONNX",
        offset: node.offset,
        message: format!("{} ({:?}): {message}", node.op_type, node.name),
    }
}

impl Tensor {
    pub fn len(&self) -> usize {
        self.shape.iter().product()
    }

    fn f(&self) -> Option<&[f32]> {
        match &self.data {
            Data::F(v) => Some(v),
            _ => None,
        }
    }

    fn i(&self) -> Option<&[i64]> {
        match &self.data {
            Data::I(v) => Some(v),
            _ => None,
        }
    }

    pub fn from_proto(t: &TensorProto) -> Result<Tensor> {
        if t.external {
            return Err(Error::Unsupported(format!(
                "ONNX tensor {:?} stored outside the file",
                t.name
            )));
        }
        let shape: Vec<usize> = t.dims.iter().map(|&d| d.max(0) as usize).collect();
        let n = shape
            .iter()
            .try_fold(1usize, |a, &d| a.checked_mul(d))
            .filter(|&n| n <= 1 << 28)
            .ok_or_else(|| Error::Limit(format!("ONNX tensor {:?} of shape {shape:?}", t.name)))?;
        let raw = |w: usize| -> Result<&[u8]> {
            if t.raw.len() != n * w {
                return Err(Error::Malformed {
                    format: "ONNX",
                    offset: 0,
                    message: format!(
                        "tensor {:?}: {} raw bytes for {n} values",
                        t.name,
                        t.raw.len()
                    ),
                });
            }
            Ok(&t.raw)
        };
        let data = match t.data_type {
            FLOAT => Data::F(if t.raw.is_empty() {
                t.floats.clone()
            } else {
                raw(4)?
                    .chunks_exact(4)
                    .map(|c| f32::from_le_bytes(c.try_into().expect("4")))
                    .collect()
            }),
            DOUBLE => Data::F(if t.raw.is_empty() {
                t.doubles.iter().map(|&x| x as f32).collect()
            } else {
                raw(8)?
                    .chunks_exact(8)
                    .map(|c| f64::from_le_bytes(c.try_into().expect("8")) as f32)
                    .collect()
            }),
            INT64 => Data::I(if t.raw.is_empty() {
                t.int64s.clone()
            } else {
                raw(8)?
                    .chunks_exact(8)
                    .map(|c| i64::from_le_bytes(c.try_into().expect("8")))
                    .collect()
            }),
            BOOL => Data::I(if t.raw.is_empty() {
                t.int32s.iter().map(|&b| i64::from(b != 0)).collect()
            } else {
                raw(1)?.iter().map(|&b| i64::from(b != 0)).collect()
            }),
            INT32 => Data::I(if t.raw.is_empty() {
                t.int32s.clone()
            } else {
                raw(4)?
                    .chunks_exact(4)
                    .map(|c| i64::from(i32::from_le_bytes(c.try_into().expect("4"))))
                    .collect()
            }),
            STRING => Data::S(
                t.strings
                    .iter()
                    .map(|s| String::from_utf8_lossy(s).into_owned())
                    .collect(),
            ),
            other => {
                return Err(Error::Unsupported(format!(
                    "ONNX tensor {:?} of element type {other}",
                    t.name
                )));
            }
        };
        let got = match &data {
            Data::F(v) => v.len(),
            Data::I(v) => v.len(),
            Data::S(v) => v.len(),
        };
        if got != n {
            return Err(Error::Malformed {
                format: "ONNX",
                offset: 0,
                message: format!("tensor {:?}: {got} values for shape {shape:?}", t.name),
            });
        }
        Ok(Tensor { shape, data })
    }
}

/// Attribute lookup for one node, by name: for compiling it (`compile.rs`) and reading its
/// graph, never while scoring.
pub struct Attrs<'a>(pub &'a NodeProto);

impl Attrs<'_> {
    pub(super) fn get(&self, name: &str) -> Option<&Attribute> {
        self.0.attributes.iter().find(|a| a.name == name)
    }
    pub(crate) fn i(&self, name: &str, default: i64) -> i64 {
        self.get(name).and_then(|a| a.i).unwrap_or(default)
    }
    pub(crate) fn f(&self, name: &str, default: f32) -> f32 {
        self.get(name).and_then(|a| a.f).unwrap_or(default)
    }
    pub(crate) fn s(&self, name: &str, default: &str) -> String {
        self.get(name).and_then(|a| a.s.as_ref()).map_or_else(
            || default.to_string(),
            |s| String::from_utf8_lossy(s).into_owned(),
        )
    }
    pub(crate) fn ints(&self, name: &str) -> Vec<i64> {
        self.get(name).map(|a| a.ints.clone()).unwrap_or_default()
    }
    pub(crate) fn floats(&self, name: &str) -> Vec<f32> {
        self.get(name).map(|a| a.floats.clone()).unwrap_or_default()
    }
    pub(crate) fn strings(&self, name: &str) -> Vec<String> {
        self.get(name)
            .map(|a| {
                a.strings
                    .iter()
                    .map(|s| String::from_utf8_lossy(s).into_owned())
                    .collect()
            })
            .unwrap_or_default()
    }
    /// Class labels: int64 or string.
    pub fn labels(&self) -> Option<Data> {
        let ints = self.ints("classlabels_int64s");
        let ints = if ints.is_empty() {
            self.ints("classlabels_ints")
        } else {
            ints
        };
        if !ints.is_empty() {
            return Some(Data::I(ints));
        }
        let strs = self.strings("classlabels_strings");
        (!strs.is_empty()).then_some(Data::S(strs))
    }
}

/// An operator mlship runs, resolved from its (domain, op type) when the graph is read: the
/// scorer dispatches on it, never on the op type's string.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    TreeEnsembleClassifier,
    TreeEnsembleRegressor,
    LinearClassifier,
    LinearRegressor,
    Scaler,
    Normalizer,
    ZipMap,
    ArrayFeatureExtractor,
    OneHotEncoder,
    SVMClassifier,
    SVMRegressor,
    Binarizer,
    Imputer,
    Cast,
    Identity,
    Reshape,
    Concat,
    Gather,
    Flatten,
    Add,
    Sub,
    Mul,
    Div,
    Pow,
    ReduceSum,
    ReduceSumSquare,
    ReduceLogSumExp,
    ArgMax,
    ArgMin,
    Exp,
    Sqrt,
    Relu,
    Sigmoid,
    Tanh,
    Abs,
    Log,
    Neg,
    Softmax,
    MatMul,
    Gemm,
    Less,
    LessOrEqual,
    Greater,
    GreaterOrEqual,
    Equal,
    Not,
    And,
    Or,
    Xor,
    Where,
    Sum,
    Mean,
    Min,
    Max,
    Sign,
    Floor,
    Ceil,
    Reciprocal,
    Clip,
    ReduceMean,
    ReduceMax,
    ReduceMin,
    ReduceProd,
    Squeeze,
    Unsqueeze,
    Transpose,
    Shape,
    ConstantOfShape,
    TopK,
    CumSum,
    GatherElements,
}

/// The `ai.onnx.ml` operators mlship runs.
const ML: &[(&str, Op)] = &[
    ("TreeEnsembleClassifier", Op::TreeEnsembleClassifier),
    ("TreeEnsembleRegressor", Op::TreeEnsembleRegressor),
    ("LinearClassifier", Op::LinearClassifier),
    ("LinearRegressor", Op::LinearRegressor),
    ("Scaler", Op::Scaler),
    ("Normalizer", Op::Normalizer),
    ("ZipMap", Op::ZipMap),
    ("ArrayFeatureExtractor", Op::ArrayFeatureExtractor),
    ("OneHotEncoder", Op::OneHotEncoder),
    ("SVMClassifier", Op::SVMClassifier),
    ("SVMRegressor", Op::SVMRegressor),
    ("Binarizer", Op::Binarizer),
    ("Imputer", Op::Imputer),
    ("Cast", Op::Cast),
];

/// The standard (`ai.onnx`) operators mlship runs: what classic converters build decisions and
/// votes from (skl2onnx's one-vs-rest SVMs, one-class SVMs, linear models' labels) among them.
const CORE: &[(&str, Op)] = &[
    ("Identity", Op::Identity),
    ("Cast", Op::Cast),
    ("Reshape", Op::Reshape),
    ("Concat", Op::Concat),
    ("Gather", Op::Gather),
    ("Flatten", Op::Flatten),
    ("Add", Op::Add),
    ("Sub", Op::Sub),
    ("Mul", Op::Mul),
    ("Div", Op::Div),
    ("Pow", Op::Pow),
    ("ReduceSum", Op::ReduceSum),
    ("ReduceSumSquare", Op::ReduceSumSquare),
    ("ReduceLogSumExp", Op::ReduceLogSumExp),
    ("ArgMax", Op::ArgMax),
    ("ArgMin", Op::ArgMin),
    ("Exp", Op::Exp),
    ("Sqrt", Op::Sqrt),
    ("Relu", Op::Relu),
    ("Sigmoid", Op::Sigmoid),
    ("Tanh", Op::Tanh),
    ("Abs", Op::Abs),
    ("Log", Op::Log),
    ("Neg", Op::Neg),
    ("Softmax", Op::Softmax),
    ("MatMul", Op::MatMul),
    ("Gemm", Op::Gemm),
    ("Less", Op::Less),
    ("LessOrEqual", Op::LessOrEqual),
    ("Greater", Op::Greater),
    ("GreaterOrEqual", Op::GreaterOrEqual),
    ("Equal", Op::Equal),
    ("Not", Op::Not),
    ("And", Op::And),
    ("Or", Op::Or),
    ("Xor", Op::Xor),
    ("Where", Op::Where),
    ("Sum", Op::Sum),
    ("Mean", Op::Mean),
    ("Min", Op::Min),
    ("Max", Op::Max),
    ("Sign", Op::Sign),
    ("Floor", Op::Floor),
    ("Ceil", Op::Ceil),
    ("Reciprocal", Op::Reciprocal),
    ("Clip", Op::Clip),
    ("ReduceMean", Op::ReduceMean),
    ("ReduceMax", Op::ReduceMax),
    ("ReduceMin", Op::ReduceMin),
    ("ReduceProd", Op::ReduceProd),
    ("Squeeze", Op::Squeeze),
    ("Unsqueeze", Op::Unsqueeze),
    ("Transpose", Op::Transpose),
    ("Shape", Op::Shape),
    ("ConstantOfShape", Op::ConstantOfShape),
    ("TopK", Op::TopK),
    ("CumSum", Op::CumSum),
    ("GatherElements", Op::GatherElements),
];

impl Op {
    /// The operator a node names, or `None` when mlship does not run it.
    pub fn parse(domain: &str, op: &str) -> Option<Op> {
        let table = match domain {
            "ai.onnx.ml" => ML,
            "" | "ai.onnx" => CORE,
            _ => return None,
        };
        table.iter().find(|(n, _)| *n == op).map(|(_, o)| *o)
    }
}

/// The operators mlship runs, by (domain, op type).
pub fn supported(domain: &str, op: &str) -> bool {
    Op::parse(domain, op).is_some()
}

pub(crate) fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + (-x).exp())
}

fn softmax_rows(v: &mut [f32], k: usize) {
    for row in v.chunks_mut(k.max(1)) {
        let m = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let mut s = 0.0f32;
        for x in row.iter_mut() {
            *x = (*x - m).exp();
            s += *x;
        }
        for x in row.iter_mut() {
            *x /= s;
        }
    }
}

/// Numpy broadcasting of two shapes.
fn broadcast(a: &[usize], b: &[usize]) -> Option<Vec<usize>> {
    let n = a.len().max(b.len());
    let mut out = vec![0; n];
    for i in 0..n {
        let da = if i + a.len() >= n {
            a[i + a.len() - n]
        } else {
            1
        };
        let db = if i + b.len() >= n {
            b[i + b.len() - n]
        } else {
            1
        };
        out[i] = if da == db || db == 1 {
            da
        } else if da == 1 {
            db
        } else {
            return None;
        };
    }
    Some(out)
}

/// The flat index into a tensor of `shape` for an index of the broadcast `out` shape.
fn source_index(out: &[usize], shape: &[usize], mut flat: usize) -> usize {
    let mut idx = 0;
    let mut stride = 1;
    let off = out.len() - shape.len();
    for d in (0..out.len()).rev() {
        let coord = flat % out[d];
        flat /= out[d];
        if d >= off {
            let sd = shape[d - off];
            idx += if sd == 1 { 0 } else { coord * stride };
            stride *= sd;
        }
    }
    idx
}

/// The most values one operator may produce: a hostile graph cannot broadcast its way to
/// exhausting memory.
const MAX_VALUES: usize = 1 << 26;

fn bounded(node: &NodeProto, shape: &[usize]) -> Result<usize> {
    shape
        .iter()
        .try_fold(1usize, |a, &d| a.checked_mul(d))
        .filter(|&n| n <= MAX_VALUES)
        .ok_or_else(|| {
            Error::Limit(format!(
                "ONNX {} ({:?}) would produce a tensor of shape {shape:?}",
                node.op_type, node.name
            ))
        })
}

fn binary(
    node: &NodeProto,
    a: &Tensor,
    b: &Tensor,
    f: fn(f32, f32) -> f32,
    fi: fn(i64, i64) -> i64,
) -> Result<Tensor> {
    let (shape, n) = broadcast_pair(node, a, b)?;
    let data = match (&a.data, &b.data) {
        (Data::F(x), Data::F(y)) => Data::F(
            (0..n)
                .map(|k| {
                    f(
                        x[source_index(&shape, &a.shape, k)],
                        y[source_index(&shape, &b.shape, k)],
                    )
                })
                .collect(),
        ),
        (Data::I(x), Data::I(y)) => Data::I(
            (0..n)
                .map(|k| {
                    fi(
                        x[source_index(&shape, &a.shape, k)],
                        y[source_index(&shape, &b.shape, k)],
                    )
                })
                .collect(),
        ),
        _ => return Err(fail(node, "operands of different or string types")),
    };
    Ok(Tensor { shape, data })
}

/// The axes of a reduction or a (un)squeeze: the second input since opset 13, the `axes`
/// attribute before.
fn axes_of<'t>(node: &NodeProto, attr: &'t [i64], ins: &[Option<&'t Tensor>]) -> Result<&'t [i64]> {
    match ins.get(1).copied().flatten() {
        Some(ax) => ax.i().ok_or_else(|| fail(node, "axes that are not int64")),
        None => Ok(attr),
    }
}

/// The shape two operands broadcast to, and its number of values (bounded).
fn broadcast_pair(node: &NodeProto, a: &Tensor, b: &Tensor) -> Result<(Vec<usize>, usize)> {
    let shape = broadcast(&a.shape, &b.shape).ok_or_else(|| {
        fail(
            node,
            format!("shapes {:?} and {:?} do not broadcast", a.shape, b.shape),
        )
    })?;
    let n = bounded(node, &shape)?;
    Ok((shape, n))
}

fn axis_of(node: &NodeProto, axis: i64, rank: usize) -> Result<usize> {
    let a = if axis < 0 { axis + rank as i64 } else { axis };
    if a < 0 || a as usize >= rank.max(1) {
        return Err(fail(
            node,
            format!("axis {axis} out of range for rank {rank}"),
        ));
    }
    Ok(a as usize)
}

/// Splits a shape around `axis`: (outer, len, inner).
fn around(shape: &[usize], axis: usize) -> (usize, usize, usize) {
    let outer: usize = shape[..axis].iter().product();
    let inner: usize = shape[axis + 1..].iter().product();
    (outer, shape[axis], inner)
}

fn reduce(
    node: &NodeProto,
    x: &Tensor,
    axes: &[i64],
    keep: bool,
    f: fn(&[f32]) -> f32,
) -> Result<Tensor> {
    let xs = x
        .f()
        .ok_or_else(|| fail(node, "a reduction of a non-float tensor"))?;
    let rank = x.shape.len();
    let mut axes: Vec<usize> = if axes.is_empty() {
        (0..rank).collect()
    } else {
        axes.iter()
            .map(|&a| axis_of(node, a, rank))
            .collect::<Result<_>>()?
    };
    axes.sort_unstable();
    axes.dedup();
    // Reduce one axis at a time, from the last.
    let mut shape = x.shape.clone();
    let mut data = xs.to_vec();
    for &a in axes.iter().rev() {
        let (outer, len, inner) = around(&shape, a);
        let mut out = Vec::with_capacity(outer * inner);
        let mut buf = Vec::with_capacity(len);
        for o in 0..outer {
            for i in 0..inner {
                buf.clear();
                buf.extend((0..len).map(|l| data[(o * len + l) * inner + i]));
                out.push(f(&buf));
            }
        }
        data = out;
        shape[a] = 1;
    }
    if !keep {
        let mut k = 0;
        shape.retain(|_| {
            let r = !axes.contains(&k);
            k += 1;
            r
        });
    }
    Ok(Tensor {
        shape,
        data: Data::F(data),
    })
}

fn argext(node: &NodeProto, x: &Tensor, axis: i64, keep: bool, max: bool) -> Result<Tensor> {
    let xs = x
        .f()
        .ok_or_else(|| fail(node, "ArgMax/ArgMin of a non-float tensor"))?;
    let a = axis_of(node, axis, x.shape.len())?;
    let (outer, len, inner) = around(&x.shape, a);
    let mut out = Vec::with_capacity(outer * inner);
    for o in 0..outer {
        for i in 0..inner {
            let mut best = 0;
            for l in 1..len {
                let (v, b) = (
                    xs[(o * len + l) * inner + i],
                    xs[(o * len + best) * inner + i],
                );
                if (max && v > b) || (!max && v < b) {
                    best = l;
                }
            }
            out.push(best as i64);
        }
    }
    let mut shape = x.shape.clone();
    if keep {
        shape[a] = 1;
    } else {
        shape.remove(a);
    }
    Ok(Tensor {
        shape,
        data: Data::I(out),
    })
}

fn matmul(
    node: &NodeProto,
    a: &Tensor,
    b: &Tensor,
    ta: bool,
    tb: bool,
) -> Result<(Vec<f32>, usize, usize)> {
    let (x, y) = (
        a.f().ok_or_else(|| fail(node, "a non-float matrix"))?,
        b.f().ok_or_else(|| fail(node, "a non-float matrix"))?,
    );
    if a.shape.len() != 2 || b.shape.len() != 2 {
        return Err(fail(
            node,
            "only two-dimensional matrix products are supported",
        ));
    }
    let (m, k) = if ta {
        (a.shape[1], a.shape[0])
    } else {
        (a.shape[0], a.shape[1])
    };
    let (k2, n) = if tb {
        (b.shape[1], b.shape[0])
    } else {
        (b.shape[0], b.shape[1])
    };
    if k != k2 {
        return Err(fail(node, format!("inner dimensions {k} and {k2} differ")));
    }
    bounded(node, &[m, n])?;
    let at = |i: usize, j: usize| if ta { x[j * m + i] } else { x[i * k + j] };
    let bt = |i: usize, j: usize| if tb { y[j * k + i] } else { y[i * n + j] };
    let mut out = vec![0.0f32; m * n];
    for i in 0..m {
        for j in 0..n {
            let mut s = 0.0f32;
            for l in 0..k {
                s += at(i, l) * bt(l, j);
            }
            out[i * n + j] = s;
        }
    }
    Ok((out, m, n))
}

/// Rows of a 2-D (or 1-D: one row) float input: (rows, columns, values).
fn rows_of<'t>(
    node: &NodeProto,
    x: &'t Tensor,
) -> Result<(usize, usize, std::borrow::Cow<'t, [f32]>)> {
    let xs: std::borrow::Cow<'t, [f32]> = match &x.data {
        Data::F(v) => std::borrow::Cow::Borrowed(v.as_slice()),
        Data::I(v) => std::borrow::Cow::Owned(v.iter().map(|&i| i as f32).collect()),
        Data::S(_) => return Err(fail(node, "a string input where numbers were expected")),
    };
    match x.shape.as_slice() {
        [n, c] => Ok((*n, *c, xs)),
        [c] => Ok((1, *c, xs)),
        s => Err(fail(
            node,
            format!("an input of shape {s:?} (expected [N, C])"),
        )),
    }
}

/// A tree ensemble, indexed for walking.
#[derive(Debug)]
pub struct Ensemble {
    /// Per tree, the index of its root node.
    roots: Vec<usize>,
    feature: Vec<usize>,
    mode: Vec<u8>,
    value: Vec<f32>,
    yes: Vec<usize>,
    no: Vec<usize>,
    missing_yes: Vec<bool>,
    /// Per node: (output slot, weight) of its leaf contributions.
    leaf: Vec<Vec<(usize, f32)>>,
}

const LEAF: u8 = 0;

fn ensemble(
    node: &NodeProto,
    a: &Attrs,
    prefix: &str,
    n_out: usize,
    n_features: usize,
) -> Result<Ensemble> {
    let tree = a.ints("nodes_treeids");
    let ids = a.ints("nodes_nodeids");
    let feats = a.ints("nodes_featureids");
    let modes = a.strings("nodes_modes");
    let values = a.floats("nodes_values");
    let yes = a.ints("nodes_truenodeids");
    let no = a.ints("nodes_falsenodeids");
    let miss = a.ints("nodes_missing_value_tracks_true");
    let n = tree.len();
    if [
        ids.len(),
        feats.len(),
        modes.len(),
        values.len(),
        yes.len(),
        no.len(),
    ]
    .iter()
    .any(|&l| l != n)
        || (!miss.is_empty() && miss.len() != n)
    {
        return Err(fail(node, "the nodes_* attributes differ in length"));
    }
    if a.get("nodes_values_as_tensor").is_some() || a.get("base_values_as_tensor").is_some() {
        return Err(fail(
            node,
            "double-precision tree attributes are not supported",
        ));
    }
    let mut index: HashMap<(i64, i64), usize> = HashMap::with_capacity(n);
    for i in 0..n {
        index.insert((tree[i], ids[i]), i);
    }
    // The root of each tree is its node 0 when it has one, else its first node.
    let mut roots = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for i in 0..n {
        if seen.insert(tree[i]) {
            roots.push(index.get(&(tree[i], 0)).copied().unwrap_or(i));
        }
    }
    let mut mode = Vec::with_capacity(n);
    for m in &modes {
        mode.push(match m.as_str() {
            "LEAF" => LEAF,
            "BRANCH_LEQ" => 1,
            "BRANCH_LT" => 2,
            "BRANCH_GTE" => 3,
            "BRANCH_GT" => 4,
            "BRANCH_EQ" => 5,
            "BRANCH_NEQ" => 6,
            other => return Err(fail(node, format!("node mode {other:?}"))),
        });
    }
    let child = |t: i64, id: i64, i: usize| -> Result<usize> {
        index
            .get(&(t, id))
            .copied()
            .filter(|&c| c != i)
            .ok_or_else(|| fail(node, format!("tree {t}: node {id} does not exist")))
    };
    let mut yes_i = vec![0; n];
    let mut no_i = vec![0; n];
    let mut feature = vec![0; n];
    for i in 0..n {
        if mode[i] == LEAF {
            continue;
        }
        yes_i[i] = child(tree[i], yes[i], i)?;
        no_i[i] = child(tree[i], no[i], i)?;
        let f = feats[i];
        if f < 0 || f as usize >= n_features {
            return Err(fail(
                node,
                format!("a split on feature {f} of {n_features}"),
            ));
        }
        feature[i] = f as usize;
    }
    let tt = a.ints(&format!("{prefix}_treeids"));
    let tn = a.ints(&format!("{prefix}_nodeids"));
    let ti = a.ints(&format!("{prefix}_ids"));
    let tw = a.floats(&format!("{prefix}_weights"));
    if [tn.len(), ti.len(), tw.len()]
        .iter()
        .any(|&l| l != tt.len())
    {
        return Err(fail(
            node,
            format!("the {prefix}_* attributes differ in length"),
        ));
    }
    let mut leaf = vec![Vec::new(); n];
    for k in 0..tt.len() {
        let i = *index.get(&(tt[k], tn[k])).ok_or_else(|| {
            fail(
                node,
                format!(
                    "a weight for a node that does not exist: tree {} node {}",
                    tt[k], tn[k]
                ),
            )
        })?;
        let slot = ti[k];
        if slot < 0 || slot as usize >= n_out {
            return Err(fail(node, format!("a weight for output {slot} of {n_out}")));
        }
        leaf[i].push((slot as usize, tw[k]));
    }
    // Children must be reachable without cycles: a walk longer than the node count is refused.
    Ok(Ensemble {
        roots,
        feature,
        mode,
        value: values,
        yes: yes_i,
        no: no_i,
        missing_yes: if miss.is_empty() {
            vec![false; n]
        } else {
            miss.iter().map(|&m| m != 0).collect()
        },
        leaf,
    })
}

/// A tree ensemble made ready at load: lowered to mlship's tree IR (whose scorer walks shallow
/// trees branch-free), or, for branch modes the IR has no test for (EQ, NEQ), indexed for the
/// node walk.
#[derive(Debug)]
pub enum Prepared {
    Ir(mlship_model::TreeEnsemble),
    Walk(Ensemble),
}

/// Prepares a tree ensemble node of `n_out` outputs, whose leaves are named by the attributes
/// starting with `prefix` (`target` or `class`).
pub(crate) fn prepare(node: &NodeProto, a: &Attrs, prefix: &str, n_out: usize) -> Result<Prepared> {
    if n_out == 0 {
        return Err(fail(node, "no class labels"));
    }
    let n_features = a
        .ints("nodes_featureids")
        .iter()
        .copied()
        .max()
        .map_or(1, |m| m.max(0) as usize + 1);
    let e = ensemble(node, a, prefix, n_out, n_features)?;
    Ok(match lower(&e, n_out, n_features)? {
        Some(ir) => Prepared::Ir(ir),
        None => Prepared::Walk(e),
    })
}

/// The ensemble as mlship's IR: `x <= t` splits in float32 (`<` becomes `<=` the float32 below
/// `t`; `>` and `>=` swap the children), NaN following the missing-value flag, leaves holding
/// every output slot.
fn lower(
    e: &Ensemble,
    n_out: usize,
    n_features: usize,
) -> Result<Option<mlship_model::TreeEnsemble>> {
    use mlship_model::{Node, Tree, TreeEnsemble, TreeHead};
    if e.mode.iter().any(|&m| m == 5 || m == 6) {
        return Ok(None);
    }
    let mut trees = Vec::with_capacity(e.roots.len());
    for &root in &e.roots {
        // Breadth-first from the root, so children come after their parents.
        let mut order = vec![root];
        let mut local = HashMap::new();
        local.insert(root, 0u32);
        let mut k = 0;
        while k < order.len() {
            let i = order[k];
            k += 1;
            if order.len() > e.mode.len() {
                return Ok(None);
            }
            if e.mode[i] != LEAF {
                for c in [e.yes[i], e.no[i]] {
                    if local.contains_key(&c) {
                        return Ok(None);
                    }
                    local.insert(c, order.len() as u32);
                    order.push(c);
                }
            }
        }
        let mut nodes = Vec::with_capacity(order.len());
        let mut values = Vec::new();
        for &i in &order {
            if e.mode[i] == LEAF {
                let off = values.len() as u32;
                let mut v = vec![0.0f64; n_out];
                for &(slot, w) in &e.leaf[i] {
                    v[slot] += f64::from(w);
                }
                values.extend(v);
                nodes.push(Node::leaf(off));
                continue;
            }
            let t = e.value[i];
            let (yes, no) = (local[&e.yes[i]], local[&e.no[i]]);
            let (threshold, left, right, nan_left) = match e.mode[i] {
                1 => (t, yes, no, e.missing_yes[i]),
                2 => (t.next_down(), yes, no, e.missing_yes[i]),
                3 => (t.next_down(), no, yes, !e.missing_yes[i]),
                _ => (t, no, yes, !e.missing_yes[i]),
            };
            nodes.push(Node {
                feature: e.feature[i] as u32,
                threshold: f64::from(threshold),
                left,
                right,
                flags: if nan_left { Node::MISSING_LEFT } else { 0 },
                bitset: 0,
            });
        }
        trees.push(Tree::new(nodes, values, n_out, 0, Vec::new()));
    }
    let head = TreeHead::sums_only(n_out);
    Ok(TreeEnsemble::new(n_features, n_out, trees, true, head, Vec::new()).ok())
}

impl Prepared {
    pub(crate) fn n_trees(&self) -> usize {
        match self {
            Prepared::Ir(ir) => ir.trees().len(),
            Prepared::Walk(e) => e.roots.len(),
        }
    }

    /// The sum of leaf weights per output slot, row by row, for `n` rows of `c` columns.
    fn sums(
        &self,
        node: &NodeProto,
        xs: &[f32],
        n: usize,
        c: usize,
        n_out: usize,
    ) -> Result<Vec<f64>> {
        match self {
            Prepared::Ir(ir) => {
                let f = ir.n_features();
                if c < f {
                    return Err(fail(
                        node,
                        format!("an input of {c} columns for trees reading {f}"),
                    ));
                }
                // The trees read columns: the first `f` of the row-major input, in f64.
                let cols: Vec<Vec<f64>> = (0..f)
                    .map(|j| (0..n).map(|r| f64::from(xs[r * c + j])).collect())
                    .collect();
                let cols: Vec<&[f64]> = cols.iter().map(Vec::as_slice).collect();
                Ok(ir.sums(&cols, n)?.into_vec())
            }
            Prepared::Walk(e) => {
                if e.feature.iter().any(|&f| f >= c) {
                    return Err(fail(
                        node,
                        format!("an input of {c} columns for trees reading more"),
                    ));
                }
                let mut out = vec![0.0f64; n * n_out];
                for r in 0..n {
                    e.score_row(
                        node,
                        &xs[r * c..(r + 1) * c],
                        &mut out[r * n_out..(r + 1) * n_out],
                    )?;
                }
                Ok(out)
            }
        }
    }
}

impl Ensemble {
    fn score_row(&self, node: &NodeProto, x: &[f32], out: &mut [f64]) -> Result<()> {
        for &r in &self.roots {
            let mut i = r;
            let mut steps = 0;
            while self.mode[i] != LEAF {
                steps += 1;
                if steps > self.mode.len() {
                    return Err(fail(node, "a tree that loops"));
                }
                let v = x[self.feature[i]];
                let t = self.value[i];
                let go = if v.is_nan() {
                    self.missing_yes[i]
                } else {
                    match self.mode[i] {
                        1 => v <= t,
                        2 => v < t,
                        3 => v >= t,
                        4 => v > t,
                        5 => v == t,
                        _ => v != t,
                    }
                };
                i = if go { self.yes[i] } else { self.no[i] };
            }
            for &(slot, w) in &self.leaf[i] {
                out[slot] += f64::from(w);
            }
        }
        Ok(())
    }
}

fn post(p: Post, v: &mut [f32], k: usize) {
    match p {
        Post::None => {}
        Post::Logistic => v.iter_mut().for_each(|x| *x = sigmoid(*x)),
        Post::Softmax => softmax_rows(v, k),
    }
}

fn label_tensor(labels: &Data, idx: &[usize]) -> Data {
    match labels {
        Data::I(l) => Data::I(idx.iter().map(|&i| l[i]).collect()),
        Data::S(l) => Data::S(idx.iter().map(|&i| l[i].clone()).collect()),
        Data::F(l) => Data::F(idx.iter().map(|&i| l[i]).collect()),
    }
}

pub(crate) fn labels_len(d: &Data) -> usize {
    match d {
        Data::I(v) => v.len(),
        Data::S(v) => v.len(),
        Data::F(v) => v.len(),
    }
}

fn argmax(row: &[f32]) -> usize {
    let mut b = 0;
    for (i, v) in row.iter().enumerate() {
        if *v > row[b] {
            b = i;
        }
    }
    b
}

/// Runs one compiled node on its inputs; returns its outputs.
pub fn run(node: &NodeProto, kernel: &Kernel, ins: &[Option<&Tensor>]) -> Result<Vec<Tensor>> {
    let arg = |i: usize| -> Result<&Tensor> {
        ins.get(i)
            .copied()
            .flatten()
            .ok_or_else(|| fail(node, format!("input {i} is missing")))
    };
    let float_map = |t: &Tensor, f: fn(f32) -> f32| -> Result<Tensor> {
        let v = t.f().ok_or_else(|| fail(node, "a non-float input"))?;
        Ok(Tensor {
            shape: t.shape.clone(),
            data: Data::F(v.iter().map(|&x| f(x)).collect()),
        })
    };
    let one = |t: Tensor| Ok(vec![t]);
    match kernel {
        Kernel::Identity => one(arg(0)?.clone()),
        &Kernel::Cast(to) => {
            let t = arg(0)?;
            let data = match (to, &t.data) {
                (CastTo::Float, Data::F(v)) => Data::F(v.clone()),
                (CastTo::Float, Data::I(v)) => Data::F(v.iter().map(|&x| x as f32).collect()),
                (CastTo::Float, Data::S(v)) => {
                    Data::F(v.iter().map(|s| s.parse().unwrap_or(f32::NAN)).collect())
                }
                (CastTo::Int, Data::F(v)) => Data::I(v.iter().map(|&x| x as i64).collect()),
                (CastTo::Int, Data::I(v)) => Data::I(v.clone()),
                (CastTo::Bool, Data::F(v)) => {
                    Data::I(v.iter().map(|&x| i64::from(x != 0.0)).collect())
                }
                (CastTo::Bool, Data::I(v)) => {
                    Data::I(v.iter().map(|&x| i64::from(x != 0)).collect())
                }
                (CastTo::String, Data::I(v)) => Data::S(v.iter().map(i64::to_string).collect()),
                (CastTo::String, Data::F(v)) => Data::S(v.iter().map(f32::to_string).collect()),
                (CastTo::String, Data::S(v)) => Data::S(v.clone()),
                (CastTo::Bool | CastTo::Int, Data::S(_)) => {
                    return Err(fail(node, "a cast of strings to integers"));
                }
            };
            one(Tensor {
                shape: t.shape.clone(),
                data,
            })
        }
        Kernel::Reshape => {
            let t = arg(0)?;
            let spec = arg(1)?
                .i()
                .ok_or_else(|| fail(node, "a shape that is not int64"))?;
            let n = t.len();
            let mut shape = Vec::with_capacity(spec.len());
            let mut infer = None;
            for (k, &d) in spec.iter().enumerate() {
                match d {
                    0 => shape.push(
                        *t.shape
                            .get(k)
                            .ok_or_else(|| fail(node, "a 0 beyond the input's rank"))?,
                    ),
                    -1 if infer.is_none() => {
                        infer = Some(k);
                        shape.push(1);
                    }
                    d if d > 0 => shape.push(d as usize),
                    _ => return Err(fail(node, format!("the shape {spec:?}"))),
                }
            }
            let known = shape
                .iter()
                .try_fold(1usize, |a, &d| a.checked_mul(d))
                .ok_or_else(|| fail(node, format!("the shape {spec:?} is too large")))?;
            if let Some(k) = infer {
                if known == 0 || n % known != 0 {
                    return Err(fail(node, format!("{n} values do not fit {spec:?}")));
                }
                shape[k] = n / known;
            }
            if shape.iter().try_fold(1usize, |a, &d| a.checked_mul(d)) != Some(n) {
                return Err(fail(node, format!("{n} values do not fit {spec:?}")));
            }
            one(Tensor {
                shape,
                data: t.data.clone(),
            })
        }
        &Kernel::Flatten { axis } => {
            let t = arg(0)?;
            let ax = axis_of(node, axis, t.shape.len() + 1)?;
            let outer: usize = t.shape[..ax].iter().product();
            one(Tensor {
                shape: vec![outer, t.len() / outer.max(1)],
                data: t.data.clone(),
            })
        }
        &Kernel::Concat { axis } => {
            let ts: Vec<&Tensor> = (0..ins.len()).map(arg).collect::<Result<_>>()?;
            let first = ts
                .first()
                .ok_or_else(|| fail(node, "nothing to concatenate"))?;
            let ax = axis_of(node, axis, first.shape.len())?;
            let mut shape = first.shape.clone();
            shape[ax] = 0;
            for t in &ts {
                if t.shape.len() != first.shape.len()
                    || t.shape
                        .iter()
                        .enumerate()
                        .any(|(d, &s)| d != ax && s != first.shape[d])
                {
                    return Err(fail(node, "inputs of different shapes"));
                }
                shape[ax] += t.shape[ax];
            }
            let outer: usize = first.shape[..ax].iter().product();
            let inner: usize = first.shape[ax + 1..].iter().product();
            macro_rules! cat {
                ($variant:ident) => {{
                    let mut out = Vec::new();
                    for o in 0..outer {
                        for t in &ts {
                            let Data::$variant(v) = &t.data else {
                                return Err(fail(node, "inputs of different types"));
                            };
                            let len = t.shape[ax] * inner;
                            out.extend_from_slice(&v[o * len..(o + 1) * len]);
                        }
                    }
                    Data::$variant(out)
                }};
            }
            let data = match &first.data {
                Data::F(_) => cat!(F),
                Data::I(_) => cat!(I),
                Data::S(_) => cat!(S),
            };
            one(Tensor { shape, data })
        }
        &Kernel::Gather { axis } => {
            let (t, idx) = (arg(0)?, arg(1)?);
            let ix = idx
                .i()
                .ok_or_else(|| fail(node, "indices that are not int64"))?;
            let ax = axis_of(node, axis, t.shape.len())?;
            let (outer, len, inner) = around(&t.shape, ax);
            let mut pick = Vec::with_capacity(ix.len());
            for &i in ix {
                let i = if i < 0 { i + len as i64 } else { i };
                if i < 0 || i as usize >= len {
                    return Err(fail(node, format!("index {i} out of range {len}")));
                }
                pick.push(i as usize);
            }
            let mut shape = t.shape[..ax].to_vec();
            shape.extend(&idx.shape);
            shape.extend(&t.shape[ax + 1..]);
            bounded(node, &shape)?;
            macro_rules! gather {
                ($v:expr, $variant:ident) => {{
                    let mut out = Vec::with_capacity(outer * pick.len() * inner);
                    for o in 0..outer {
                        for &p in &pick {
                            out.extend_from_slice(
                                &$v[(o * len + p) * inner..(o * len + p + 1) * inner],
                            );
                        }
                    }
                    Data::$variant(out)
                }};
            }
            let data = match &t.data {
                Data::F(v) => gather!(v, F),
                Data::I(v) => gather!(v, I),
                Data::S(v) => gather!(v, S),
            };
            one(Tensor { shape, data })
        }
        &Kernel::Arith(f, fi) => one(binary(node, arg(0)?, arg(1)?, f, fi)?),
        &Kernel::Map(f) => one(float_map(arg(0)?, f)?),
        Kernel::Reduce { f, keep, axes } => {
            let t = arg(0)?;
            let axes = axes_of(node, axes, ins)?;
            one(reduce(node, t, axes, *keep, *f)?)
        }
        &Kernel::ArgExt { axis, keep, max } => one(argext(node, arg(0)?, axis, keep, max)?),
        &Kernel::Softmax { axis } => {
            let t = arg(0)?;
            let ax = axis_of(node, axis, t.shape.len())?;
            if ax + 1 != t.shape.len() {
                return Err(fail(node, "Softmax over an axis other than the last"));
            }
            let mut v = t
                .f()
                .ok_or_else(|| fail(node, "a non-float input"))?
                .to_vec();
            softmax_rows(&mut v, t.shape[ax]);
            one(Tensor {
                shape: t.shape.clone(),
                data: Data::F(v),
            })
        }
        Kernel::MatMul => {
            let (v, m, n) = matmul(node, arg(0)?, arg(1)?, false, false)?;
            one(Tensor {
                shape: vec![m, n],
                data: Data::F(v),
            })
        }
        &Kernel::Gemm {
            trans_a,
            trans_b,
            alpha,
            beta,
        } => {
            let (v, m, n) = matmul(node, arg(0)?, arg(1)?, trans_a, trans_b)?;
            let mut out = Tensor {
                shape: vec![m, n],
                data: Data::F(v.iter().map(|x| alpha * x).collect()),
            };
            if let Some(c) = ins.get(2).copied().flatten() {
                let cs = Tensor {
                    shape: c.shape.clone(),
                    data: Data::F(
                        c.f()
                            .ok_or_else(|| fail(node, "a non-float C"))?
                            .iter()
                            .map(|x| beta * x)
                            .collect(),
                    ),
                };
                out = binary(node, &out, &cs, |x, y| x + y, i64::wrapping_add)?;
            }
            one(out)
        }
        Kernel::ArrayFeatureExtractor => {
            let (t, idx) = (arg(0)?, arg(1)?);
            let ix = idx
                .i()
                .ok_or_else(|| fail(node, "indices that are not int64"))?;
            let last = *t.shape.last().ok_or_else(|| fail(node, "a scalar input"))?;
            let outer = t.len() / last.max(1);
            for &i in ix {
                if i < 0 || i as usize >= last {
                    return Err(fail(node, format!("index {i} out of range {last}")));
                }
            }
            let mut shape = t.shape[..t.shape.len() - 1].to_vec();
            shape.push(ix.len());
            bounded(node, &shape)?;
            macro_rules! pick {
                ($v:expr, $variant:ident) => {{
                    let mut out = Vec::with_capacity(outer * ix.len());
                    for o in 0..outer {
                        for &i in ix {
                            out.push($v[o * last + i as usize].clone());
                        }
                    }
                    Data::$variant(out)
                }};
            }
            let data = match &t.data {
                Data::F(v) => pick!(v, F),
                Data::I(v) => pick!(v, I),
                Data::S(v) => pick!(v, S),
            };
            one(Tensor { shape, data })
        }
        Kernel::OneHotEncoder {
            zeros,
            ints,
            strings: strs,
        } => {
            let t = arg(0)?;
            let k = ints.len().max(strs.len());
            bounded(node, &[t.len(), k])?;
            let mut out = vec![0.0f32; t.len() * k];
            for r in 0..t.len() {
                let hit = match &t.data {
                    Data::S(v) => strs.iter().position(|s| *s == v[r]),
                    Data::I(v) => ints.iter().position(|s| *s == v[r]),
                    Data::F(v) => ints.iter().position(|s| *s as f32 == v[r]),
                };
                match hit {
                    Some(c) => out[r * k + c] = 1.0,
                    None if *zeros => {}
                    None => {
                        return Err(Error::Model(mlship_model::Error::Invalid(format!(
                            "row {r}: a category the ONNX OneHotEncoder does not know"
                        ))));
                    }
                }
            }
            let mut shape = t.shape.clone();
            shape.push(k);
            one(Tensor {
                shape,
                data: Data::F(out),
            })
        }
        Kernel::Scaler { offset, scale } => {
            let t = arg(0)?;
            let (n, c, xs) = rows_of(node, t)?;
            let get = |v: &[f32], j: usize, d: f32| match v.len() {
                0 => d,
                1 => v[0],
                _ => v.get(j).copied().unwrap_or(d),
            };
            let out = (0..n * c)
                .map(|k| (xs[k] - get(offset, k % c, 0.0)) * get(scale, k % c, 1.0))
                .collect();
            one(Tensor {
                shape: vec![n, c],
                data: Data::F(out),
            })
        }
        Kernel::Imputer { fill, marker } => {
            let t = arg(0)?;
            let (n, c, xs) = rows_of(node, t)?;
            let marker = *marker;
            let out = (0..n * c)
                .map(|k| {
                    let x = xs[k];
                    let missing = if marker.is_nan() {
                        x.is_nan()
                    } else {
                        x == marker
                    };
                    if missing {
                        if fill.len() == 1 {
                            fill[0]
                        } else {
                            fill.get(k % c).copied().unwrap_or(x)
                        }
                    } else {
                        x
                    }
                })
                .collect();
            one(Tensor {
                shape: vec![n, c],
                data: Data::F(out),
            })
        }
        &Kernel::Normalizer(norm) => {
            let t = arg(0)?;
            let (n, c, xs) = rows_of(node, t)?;
            let mut out = xs.to_vec();
            for row in out.chunks_mut(c.max(1)) {
                let d: f32 = match norm {
                    Norm::Max => row.iter().map(|x| x.abs()).fold(0.0, f32::max),
                    Norm::L1 => row.iter().map(|x| x.abs()).sum(),
                    Norm::L2 => row.iter().map(|x| x * x).sum::<f32>().sqrt(),
                };
                if d != 0.0 {
                    row.iter_mut().for_each(|x| *x /= d);
                }
            }
            one(Tensor {
                shape: vec![n, c],
                data: Data::F(out),
            })
        }
        Kernel::LinearRegressor {
            coefficients: coef,
            intercepts: icpt,
            targets,
            post: pt,
        } => {
            let (t, targets) = (arg(0)?, *targets);
            let (n, c, xs) = rows_of(node, t)?;
            if coef.len() != targets * c {
                return Err(fail(
                    node,
                    format!(
                        "{} coefficients for {targets} targets of {c} features",
                        coef.len()
                    ),
                ));
            }
            let mut out = vec![0.0f32; n * targets];
            for r in 0..n {
                for k in 0..targets {
                    let mut s = icpt.get(k).copied().unwrap_or(0.0);
                    for j in 0..c {
                        s += xs[r * c + j] * coef[k * c + j];
                    }
                    out[r * targets + k] = s;
                }
            }
            post(*pt, &mut out, targets);
            one(Tensor {
                shape: vec![n, targets],
                data: Data::F(out),
            })
        }
        Kernel::LinearClassifier {
            labels,
            coefficients: coef,
            intercepts: icpt,
            post: pt,
        } => {
            let t = arg(0)?;
            let (n, c, xs) = rows_of(node, t)?;
            let k = labels_len(labels);
            if c == 0 || coef.len() % c != 0 {
                return Err(fail(node, "coefficients that do not fit the features"));
            }
            let m = coef.len() / c;
            let mut sc = vec![0.0f32; n * m];
            for r in 0..n {
                for q in 0..m {
                    let mut s = icpt.get(q).copied().unwrap_or(0.0);
                    for j in 0..c {
                        s += xs[r * c + j] * coef[q * c + j];
                    }
                    sc[r * m + q] = s;
                }
            }
            let (probs, idx): (Vec<f32>, Vec<usize>) = if m == 1 && k == 2 {
                let idx = sc.iter().map(|&s| usize::from(s > 0.0)).collect();
                let mut p = Vec::with_capacity(2 * n);
                for &s in &sc {
                    match pt {
                        Post::Logistic => p.extend([1.0 - sigmoid(s), sigmoid(s)]),
                        _ => p.extend([-s, s]),
                    }
                }
                (p, idx)
            } else if m == k {
                let idx = sc.chunks(m).map(argmax).collect();
                let mut p = sc.clone();
                post(*pt, &mut p, m);
                (p, idx)
            } else {
                return Err(fail(node, format!("{m} score columns for {k} classes")));
            };
            Ok(vec![
                Tensor {
                    shape: vec![n],
                    data: label_tensor(labels, &idx),
                },
                Tensor {
                    shape: vec![n, k],
                    data: Data::F(probs),
                },
            ])
        }
        Kernel::TreeRegressor {
            trees,
            n_trees,
            targets,
            base,
            average,
            post: pt,
        } => {
            let (t, targets) = (arg(0)?, *targets);
            let (n, c, xs) = rows_of(node, t)?;
            let sums = trees.sums(node, &xs, n, c, targets)?;
            let mut out = vec![0.0f32; n * targets];
            for r in 0..n {
                let acc = &sums[r * targets..(r + 1) * targets];
                for k in 0..targets {
                    let v = if *average {
                        acc[k] / (*n_trees).max(1) as f64
                    } else {
                        acc[k]
                    };
                    out[r * targets + k] =
                        (v + f64::from(base.get(k).copied().unwrap_or(0.0))) as f32;
                }
            }
            post(*pt, &mut out, targets);
            one(Tensor {
                shape: vec![n, targets],
                data: Data::F(out),
            })
        }
        Kernel::TreeClassifier {
            trees,
            labels,
            base,
            binary,
            post: pt,
        } => {
            let t = arg(0)?;
            let (n, c, xs) = rows_of(node, t)?;
            let k = labels_len(labels);
            let sums = trees.sums(node, &xs, n, c, k)?;
            let mut probs = Vec::with_capacity(n * k);
            let mut idx = Vec::with_capacity(n);
            for r in 0..n {
                let acc = &sums[r * k..(r + 1) * k];
                if let Some(slot) = *binary {
                    let s = (acc[slot] + f64::from(base.first().copied().unwrap_or(0.0))) as f32;
                    // Compiling refused SOFTMAX for two classes.
                    let row = match pt {
                        Post::Logistic => [1.0 - sigmoid(s), sigmoid(s)],
                        _ => [1.0 - s, s],
                    };
                    idx.push(usize::from(row[1] > row[0]));
                    probs.extend(row);
                } else {
                    let mut row: Vec<f32> = (0..k)
                        .map(|j| (acc[j] + f64::from(base.get(j).copied().unwrap_or(0.0))) as f32)
                        .collect();
                    idx.push(argmax(&row));
                    post(*pt, &mut row, k);
                    probs.extend(row);
                }
            }
            Ok(vec![
                Tensor {
                    shape: vec![n],
                    data: label_tensor(labels, &idx),
                },
                Tensor {
                    shape: vec![n, k],
                    data: Data::F(probs),
                },
            ])
        }
        Kernel::SvmClassifier(m) => svm(node, m, arg(0)?),
        Kernel::SvmRegressor(m) => svm_regressor(node, m, arg(0)?),
        &Kernel::Compare(keep) => one(compare(node, arg(0)?, arg(1)?, keep)?),
        Kernel::Not => {
            let t = arg(0)?;
            let v = t.i().ok_or_else(|| fail(node, "a non-boolean input"))?;
            one(Tensor {
                shape: t.shape.clone(),
                data: Data::I(v.iter().map(|&x| i64::from(x == 0)).collect()),
            })
        }
        &Kernel::Logic(f) => {
            let (x, y) = (arg(0)?, arg(1)?);
            if x.i().is_none() || y.i().is_none() {
                return Err(fail(node, "non-boolean inputs"));
            }
            one(binary(node, x, y, |_, _| f32::NAN, f)?)
        }
        Kernel::Where => one(select(node, arg(0)?, arg(1)?, arg(2)?)?),
        &Kernel::Fold { f, fi, mean } => {
            let ts: Vec<&Tensor> = (0..ins.len()).map(arg).collect::<Result<_>>()?;
            let (first, rest) = ts.split_first().ok_or_else(|| fail(node, "no inputs"))?;
            let mut acc = (*first).clone();
            for t in rest {
                acc = binary(node, &acc, t, f, fi)?;
            }
            if mean {
                let k = ts.len() as f32;
                acc = float_map(&acc, |x| x)?;
                if let Data::F(v) = &mut acc.data {
                    v.iter_mut().for_each(|x| *x /= k);
                }
            }
            one(acc)
        }
        &Kernel::Clip { min, max } => {
            let t = arg(0)?;
            // Opset 11 and later give the bounds as inputs, earlier ones as attributes.
            let bound = |i: usize, attr: f32| -> Result<f32> {
                match ins.get(i).copied().flatten() {
                    Some(b) => b
                        .f()
                        .and_then(|v| v.first().copied())
                        .ok_or_else(|| fail(node, "a bound that is not one float")),
                    None => Ok(attr),
                }
            };
            let (lo, hi) = (bound(1, min)?, bound(2, max)?);
            one(float_map_with(node, t, |x| x.max(lo).min(hi))?)
        }
        Kernel::Squeeze { axes } | Kernel::Unsqueeze { axes } => {
            let t = arg(0)?;
            let axes = axes_of(node, axes, ins)?;
            let shape = if matches!(kernel, Kernel::Squeeze { .. }) {
                let ax: Vec<usize> = axes
                    .iter()
                    .map(|&x| axis_of(node, x, t.shape.len()))
                    .collect::<Result<_>>()?;
                if ax.iter().any(|&x| t.shape[x] != 1) {
                    return Err(fail(node, "a squeezed axis that is not 1 long"));
                }
                t.shape
                    .iter()
                    .enumerate()
                    .filter(|(d, s)| {
                        if ax.is_empty() {
                            **s != 1
                        } else {
                            !ax.contains(d)
                        }
                    })
                    .map(|(_, &s)| s)
                    .collect()
            } else {
                let rank = t.shape.len() + axes.len();
                let mut ax: Vec<usize> = axes
                    .iter()
                    .map(|&x| axis_of(node, x, rank))
                    .collect::<Result<_>>()?;
                ax.sort_unstable();
                let mut rest = t.shape.iter();
                (0..rank)
                    .map(|d| {
                        if ax.contains(&d) {
                            1
                        } else {
                            rest.next().copied().unwrap_or(1)
                        }
                    })
                    .collect()
            };
            one(Tensor {
                shape,
                data: t.data.clone(),
            })
        }
        Kernel::Transpose { perm } => one(transpose(node, arg(0)?, perm)?),
        &Kernel::TopK { axis, largest } => top_k(node, axis, largest, arg(0)?, arg(1)?),
        &Kernel::CumSum { exclusive, reverse } => {
            let t = arg(0)?;
            let axis = arg(1)?
                .i()
                .and_then(|v| v.first().copied())
                .ok_or_else(|| fail(node, "an axis that is not one int64"))?;
            let ax = axis_of(node, axis, t.shape.len())?;
            let (outer, len, inner) = around(&t.shape, ax);
            let v = t.f().ok_or_else(|| fail(node, "a non-float input"))?;
            let mut out = vec![0.0f32; v.len()];
            for o in 0..outer {
                for i in 0..inner {
                    let mut acc = 0.0f32;
                    for step in 0..len {
                        let l = if reverse { len - 1 - step } else { step };
                        let at = (o * len + l) * inner + i;
                        if exclusive {
                            out[at] = acc;
                            acc += v[at];
                        } else {
                            acc += v[at];
                            out[at] = acc;
                        }
                    }
                }
            }
            one(Tensor {
                shape: t.shape.clone(),
                data: Data::F(out),
            })
        }
        &Kernel::GatherElements { axis } => {
            let (t, idx) = (arg(0)?, arg(1)?);
            let ix = idx
                .i()
                .ok_or_else(|| fail(node, "indices that are not int64"))?;
            let rank = t.shape.len();
            if idx.shape.len() != rank {
                return Err(fail(node, "indices of another rank than the data"));
            }
            let ax = axis_of(node, axis, rank)?;
            let len = t.shape[ax];
            // Strides of the data; the output has the indices' shape.
            let mut strides = vec![1usize; rank];
            for d in (0..rank.saturating_sub(1)).rev() {
                strides[d] = strides[d + 1] * t.shape[d + 1];
            }
            let mut src = Vec::with_capacity(ix.len());
            for (k, &i) in ix.iter().enumerate() {
                let i = if i < 0 { i + len as i64 } else { i };
                if i < 0 || i as usize >= len {
                    return Err(fail(node, format!("index {i} out of range {len}")));
                }
                let mut rest = k;
                let mut at = 0;
                for d in (0..rank).rev() {
                    let coord = rest % idx.shape[d];
                    rest /= idx.shape[d];
                    let coord = if d == ax { i as usize } else { coord };
                    if coord >= t.shape[d] {
                        return Err(fail(node, "indices larger than the data"));
                    }
                    at += coord * strides[d];
                }
                src.push(at);
            }
            let data = match &t.data {
                Data::F(v) => Data::F(src.iter().map(|&k| v[k]).collect()),
                Data::I(v) => Data::I(src.iter().map(|&k| v[k]).collect()),
                Data::S(v) => Data::S(src.iter().map(|&k| v[k].clone()).collect()),
            };
            one(Tensor {
                shape: idx.shape.clone(),
                data,
            })
        }
        &Kernel::Shape { start, end } => {
            let t = arg(0)?;
            let rank = t.shape.len() as i64;
            let clamp = |x: i64| (if x < 0 { x + rank } else { x }).clamp(0, rank) as usize;
            let (start, end) = (clamp(start), clamp(end.unwrap_or(rank)));
            let dims: Vec<i64> = t.shape[start..end.max(start)]
                .iter()
                .map(|&d| d as i64)
                .collect();
            one(Tensor {
                shape: vec![dims.len()],
                data: Data::I(dims),
            })
        }
        Kernel::ConstantOfShape { value } => {
            let dims = arg(0)?
                .i()
                .ok_or_else(|| fail(node, "a shape that is not int64"))?;
            let shape: Vec<usize> = dims
                .iter()
                .map(|&d| usize::try_from(d).map_err(|_| fail(node, format!("the shape {dims:?}"))))
                .collect::<Result<_>>()?;
            let n = bounded(node, &shape)?;
            // Compiling checked the value is one number.
            let data = match value {
                Data::F(v) => Data::F(vec![v.first().copied().unwrap_or(0.0); n]),
                Data::I(v) => Data::I(vec![v.first().copied().unwrap_or(0); n]),
                Data::S(_) => return Err(fail(node, "a value that is not one number")),
            };
            one(Tensor { shape, data })
        }
        &Kernel::Binarizer { threshold } => one(float_map_with(node, arg(0)?, |x| {
            if x > threshold { 1.0 } else { 0.0 }
        })?),
    }
}

/// `TopK`: the `k` largest (or smallest) values along an axis and their indices, sorted, ties
/// to the lower index as onnxruntime breaks them.
fn top_k(
    node: &NodeProto,
    axis: i64,
    largest: bool,
    t: &Tensor,
    k: &Tensor,
) -> Result<Vec<Tensor>> {
    let k = k
        .i()
        .and_then(|v| v.first().copied())
        .filter(|&k| k >= 0)
        .ok_or_else(|| fail(node, "a k that is not one non-negative int64"))? as usize;
    let ax = axis_of(node, axis, t.shape.len())?;
    let (outer, len, inner) = around(&t.shape, ax);
    if k > len {
        return Err(fail(
            node,
            format!("k = {k} is larger than the axis ({len})"),
        ));
    }
    let v = t.f().ok_or_else(|| fail(node, "a non-float input"))?;
    let mut shape = t.shape.clone();
    shape[ax] = k;
    let n = bounded(node, &shape)?;
    let (mut values, mut indices) = (vec![0.0f32; n], vec![0i64; n]);
    let mut order: Vec<usize> = Vec::with_capacity(len);
    for o in 0..outer {
        for i in 0..inner {
            let at = |l: usize| v[(o * len + l) * inner + i];
            order.clear();
            order.extend(0..len);
            order.sort_by(|&p, &q| {
                let c = at(p).total_cmp(&at(q));
                (if largest { c.reverse() } else { c }).then(p.cmp(&q))
            });
            for (j, &l) in order.iter().take(k).enumerate() {
                let out = (o * k + j) * inner + i;
                values[out] = at(l);
                indices[out] = l as i64;
            }
        }
    }
    Ok(vec![
        Tensor {
            shape: shape.clone(),
            data: Data::F(values),
        },
        Tensor {
            shape,
            data: Data::I(indices),
        },
    ])
}

/// A float tensor mapped value by value with a closure (for maps that need a parameter).
fn float_map_with(node: &NodeProto, t: &Tensor, f: impl Fn(f32) -> f32) -> Result<Tensor> {
    let v = t.f().ok_or_else(|| fail(node, "a non-float input"))?;
    Ok(Tensor {
        shape: t.shape.clone(),
        data: Data::F(v.iter().map(|&x| f(x)).collect()),
    })
}

/// Elementwise comparison with broadcasting: 1 where `keep` holds for the pair's order, 0
/// elsewhere (NaN compares false, as in IEEE arithmetic).
fn compare(
    node: &NodeProto,
    a: &Tensor,
    b: &Tensor,
    keep: fn(std::cmp::Ordering) -> bool,
) -> Result<Tensor> {
    let (shape, n) = broadcast_pair(node, a, b)?;
    let pair = |k: usize| {
        (
            source_index(&shape, &a.shape, k),
            source_index(&shape, &b.shape, k),
        )
    };
    let out: Vec<i64> = match (&a.data, &b.data) {
        (Data::F(x), Data::F(y)) => (0..n)
            .map(|k| {
                let (i, j) = pair(k);
                x[i].partial_cmp(&y[j]).map_or(0, |o| i64::from(keep(o)))
            })
            .collect(),
        (Data::I(x), Data::I(y)) => (0..n)
            .map(|k| {
                let (i, j) = pair(k);
                i64::from(keep(x[i].cmp(&y[j])))
            })
            .collect(),
        (Data::S(x), Data::S(y)) => (0..n)
            .map(|k| {
                let (i, j) = pair(k);
                i64::from(keep(x[i].cmp(&y[j])))
            })
            .collect(),
        _ => return Err(fail(node, "operands of different types")),
    };
    Ok(Tensor {
        shape,
        data: Data::I(out),
    })
}

/// `Where`: `x` where the condition holds, else `y`, all three broadcast together.
fn select(node: &NodeProto, c: &Tensor, x: &Tensor, y: &Tensor) -> Result<Tensor> {
    let cond = c
        .i()
        .ok_or_else(|| fail(node, "a condition that is not boolean"))?;
    let shape = broadcast(&c.shape, &x.shape)
        .and_then(|s| broadcast(&s, &y.shape))
        .ok_or_else(|| fail(node, "shapes that do not broadcast"))?;
    let n = bounded(node, &shape)?;
    macro_rules! pick {
        ($variant:ident, $xs:expr, $ys:expr) => {
            Data::$variant(
                (0..n)
                    .map(|k| {
                        if cond[source_index(&shape, &c.shape, k)] != 0 {
                            $xs[source_index(&shape, &x.shape, k)].clone()
                        } else {
                            $ys[source_index(&shape, &y.shape, k)].clone()
                        }
                    })
                    .collect(),
            )
        };
    }
    let data = match (&x.data, &y.data) {
        (Data::F(p), Data::F(q)) => pick!(F, p, q),
        (Data::I(p), Data::I(q)) => pick!(I, p, q),
        (Data::S(p), Data::S(q)) => pick!(S, p, q),
        _ => return Err(fail(node, "branches of different types")),
    };
    Ok(Tensor { shape, data })
}

/// Permutes the axes (reversed when `perm` is empty, as ONNX says).
fn transpose(node: &NodeProto, t: &Tensor, perm: &[i64]) -> Result<Tensor> {
    let rank = t.shape.len();
    let perm: Vec<usize> = if perm.is_empty() {
        (0..rank).rev().collect()
    } else {
        perm.iter()
            .map(|&p| axis_of(node, p, rank))
            .collect::<Result<_>>()?
    };
    let mut seen = vec![false; rank];
    if perm.len() != rank || perm.iter().any(|&p| std::mem::replace(&mut seen[p], true)) {
        return Err(fail(node, format!("the permutation {perm:?}")));
    }
    let shape: Vec<usize> = perm.iter().map(|&p| t.shape[p]).collect();
    let n = t.len();
    // The input's strides, in the output's axis order.
    let mut strides = vec![1usize; rank];
    for d in (0..rank.saturating_sub(1)).rev() {
        strides[d] = strides[d + 1] * t.shape[d + 1];
    }
    let src = |mut k: usize| {
        let mut i = 0;
        for d in (0..rank).rev() {
            i += (k % shape[d]) * strides[perm[d]];
            k /= shape[d];
        }
        i
    };
    let data = match &t.data {
        Data::F(v) => Data::F((0..n).map(|k| v[src(k)]).collect()),
        Data::I(v) => Data::I((0..n).map(|k| v[src(k)]).collect()),
        Data::S(v) => Data::S((0..n).map(|k| v[src(k)].clone()).collect()),
    };
    Ok(Tensor { shape, data })
}

/// libsvm's regression and one-class models: the kernel expansion plus rho, as onnxruntime runs
/// it (`one_class` gives 1 or -1 by the sign).
fn svm_regressor(node: &NodeProto, m: &SvmRegressor, t: &Tensor) -> Result<Vec<Tensor>> {
    let (n, c, xs) = rows_of(node, t)?;
    let (sv, coef, n_sv) = (&m.support_vectors, &m.coefficients, m.n_supports);
    let linear_only = n_sv == 0;
    if (!linear_only && (sv.len() != n_sv * c || coef.len() != n_sv))
        || (linear_only && coef.len() != c)
    {
        return Err(fail(
            node,
            "support vectors, coefficients or rho do not fit",
        ));
    }
    let mut out = Vec::with_capacity(n);
    for r in 0..n {
        let x = &xs[r * c..(r + 1) * c];
        let mut s = if linear_only {
            // Without support vectors, the coefficients are a linear model's weights.
            x.iter().zip(coef).map(|(p, q)| p * q).sum::<f32>()
        } else {
            let mut s = 0.0f32;
            for (j, w) in coef.iter().enumerate() {
                s += w * m.kernel.eval(x, &sv[j * c..(j + 1) * c]);
            }
            s
        };
        s += m.rho;
        if m.one_class {
            s = if s > 0.0 { 1.0 } else { -1.0 };
        }
        out.push(s);
    }
    Ok(vec![Tensor {
        shape: vec![n, 1],
        data: Data::F(out),
    }])
}

/// libsvm's one-against-one classifier, as onnxruntime runs it (no probabilities).
fn svm(node: &NodeProto, m: &SvmClassifier, t: &Tensor) -> Result<Vec<Tensor>> {
    let (n, c, xs) = rows_of(node, t)?;
    let SvmClassifier {
        labels,
        k,
        prob_a,
        prob_b,
        per_class,
        starts,
        support_vectors: sv,
        coefficients: coef,
        rho,
        kernel,
    } = m;
    let (k, platt) = (*k, !prob_a.is_empty());
    let total: usize = per_class.iter().sum();
    if sv.len() != total * c {
        return Err(fail(node, "support vectors that do not fit the features"));
    }
    let mut idx = Vec::with_capacity(n);
    let mut scores = Vec::with_capacity(n * k);
    for r in 0..n {
        let x = &xs[r * c..(r + 1) * c];
        let kv: Vec<f32> = (0..total)
            .map(|s| kernel.eval(x, &sv[s * c..(s + 1) * c]))
            .collect();
        let mut votes = vec![0usize; k];
        let mut p = 0;
        let mut last = 0.0f32;
        let mut pairs = Vec::with_capacity(k * (k - 1) / 2);
        for i in 0..k {
            for j in i + 1..k {
                let mut s = 0.0f32;
                for l in 0..per_class[i] {
                    s += coef[(j - 1) * total + starts[i] + l] * kv[starts[i] + l];
                }
                for l in 0..per_class[j] {
                    s += coef[i * total + starts[j] + l] * kv[starts[j] + l];
                }
                // skl2onnx writes rho with the sign onnxruntime adds it with.
                s += rho[p];
                last = s;
                pairs.push(f64::from(s));
                votes[if s > 0.0 { i } else { j }] += 1;
                p += 1;
            }
        }
        let best = (0..k).fold(0, |b, i| if votes[i] > votes[b] { i } else { b });
        idx.push(best);
        if platt {
            // libsvm's pairwise coupling of the Platt-scaled pair decisions, as scikit-learn's
            // predict_proba and onnxruntime compute it.
            let p = mlship_model::pairwise_probability(&pairs, prob_a, prob_b, k);
            scores.extend(p.iter().map(|&x| x as f32));
        } else if k == 2 {
            scores.extend([-last, last]);
        } else {
            // The pairs' decision values, as onnxruntime gives them: skl2onnx builds scikit-learn's
            // one-vs-rest decision function from them with standard operators.
            scores.extend(pairs.iter().map(|&x| x as f32));
        }
    }
    let width = if platt || k == 2 { k } else { k * (k - 1) / 2 };
    Ok(vec![
        Tensor {
            shape: vec![n],
            data: label_tensor(labels, &idx),
        },
        Tensor {
            shape: vec![n, width],
            data: Data::F(scores),
        },
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs a node as the scorer does: its operator resolved from its domain and type, and
    /// compiled with its attributes, first.
    fn run_node(node: &NodeProto, ins: &[Option<&Tensor>]) -> Result<Vec<Tensor>> {
        let op = Op::parse(&node.domain, &node.op_type).expect("an operator mlship runs");
        run(node, &crate::compile::compile(node, op)?, ins)
    }

    fn node(op: &str, attributes: Vec<Attribute>) -> NodeProto {
        NodeProto {
            inputs: Vec::new(),
            outputs: Vec::new(),
            name: "n".into(),
            op_type: op.into(),
            domain: String::new(),
            attributes,
            offset: 0,
        }
    }

    fn ints_attr(name: &str, ints: Vec<i64>) -> Attribute {
        Attribute {
            name: name.into(),
            f: None,
            i: None,
            s: None,
            t: None,
            floats: Vec::new(),
            ints,
            strings: Vec::new(),
            has_graph: false,
        }
    }

    fn f(shape: &[usize], v: &[f32]) -> Tensor {
        Tensor {
            shape: shape.to_vec(),
            data: Data::F(v.to_vec()),
        }
    }

    fn i(shape: &[usize], v: &[i64]) -> Tensor {
        Tensor {
            shape: shape.to_vec(),
            data: Data::I(v.to_vec()),
        }
    }

    fn run1(op: &str, attrs: Vec<Attribute>, ins: &[&Tensor]) -> Tensor {
        let ins: Vec<Option<&Tensor>> = ins.iter().map(|t| Some(*t)).collect();
        run_node(&node(op, attrs), &ins).unwrap().remove(0)
    }

    fn floats(t: &Tensor) -> Vec<f32> {
        t.f().unwrap().to_vec()
    }

    fn int_values(t: &Tensor) -> Vec<i64> {
        t.i().unwrap().to_vec()
    }

    /// The standard operators that classic converters build decisions from, on small tensors
    /// worked out by hand (the corpus's skl2onnx graphs cover the rest).
    #[test]
    fn logic_and_selection_follow_the_onnx_definitions() {
        let x = f(&[2, 2], &[1.0, -2.0, f32::NAN, 4.0]);
        let zero = f(&[1], &[0.0]);
        let lt = run1("Less", vec![], &[&x, &zero]);
        assert_eq!(int_values(&lt), [0, 1, 0, 0]);
        assert_eq!(
            int_values(&run1("GreaterOrEqual", vec![], &[&x, &zero])),
            [1, 0, 0, 1]
        );
        let not = run1("Not", vec![], &[&lt]);
        assert_eq!(int_values(&not), [1, 0, 1, 1]);
        assert_eq!(int_values(&run1("And", vec![], &[&lt, &not])), [0, 0, 0, 0]);
        assert_eq!(int_values(&run1("Or", vec![], &[&lt, &not])), [1, 1, 1, 1]);
        assert_eq!(int_values(&run1("Xor", vec![], &[&lt, &lt])), [0, 0, 0, 0]);
        let picked = run1("Where", vec![], &[&lt, &f(&[1], &[9.0]), &x]);
        assert_eq!(floats(&picked)[..2], [1.0, 9.0]);
        assert!(floats(&picked)[2].is_nan());
        let y = f(&[2], &[3.0, -3.0]);
        assert_eq!(floats(&run1("Max", vec![], &[&x, &y]))[..2], [3.0, -2.0]);
        assert_eq!(floats(&run1("Mean", vec![], &[&y, &y, &y])), [3.0, -3.0]);
        assert_eq!(floats(&run1("Sum", vec![], &[&y, &y])), [6.0, -6.0]);
        assert_eq!(
            floats(&run1(
                "Clip",
                vec![],
                &[&y, &f(&[1], &[-1.0]), &f(&[1], &[2.0])]
            )),
            [2.0, -1.0]
        );
        assert_eq!(floats(&run1("Sign", vec![], &[&y])), [1.0, -1.0]);
        assert_eq!(
            floats(&run1("Floor", vec![], &[&f(&[2], &[1.5, -1.5])])),
            [1.0, -2.0]
        );
        let to_bool = Attribute {
            i: Some(BOOL),
            ..ints_attr("to", Vec::new())
        };
        assert_eq!(
            int_values(&run1("Cast", vec![to_bool], &[&f(&[2], &[0.0, 2.0])])),
            [0, 1]
        );
    }

    #[test]
    fn top_k_cumsum_and_gather_elements() {
        let x = f(&[2, 3], &[3.0, 1.0, 2.0, 5.0, 5.0, 4.0]);
        let out = run_node(&node("TopK", vec![]), &[Some(&x), Some(&i(&[1], &[2]))]).unwrap();
        assert_eq!(floats(&out[0]), [3.0, 2.0, 5.0, 5.0]);
        assert_eq!(int_values(&out[1]), [0, 2, 0, 1], "ties to the lower index");
        let c = run1("CumSum", vec![], &[&x, &i(&[], &[1])]);
        assert_eq!(floats(&c), [3.0, 4.0, 6.0, 5.0, 10.0, 14.0]);
        let reverse = Attribute {
            i: Some(1),
            ..ints_attr("reverse", Vec::new())
        };
        let c = run1("CumSum", vec![reverse], &[&x, &i(&[], &[1])]);
        assert_eq!(floats(&c), [6.0, 3.0, 2.0, 14.0, 9.0, 4.0]);
        let axis1 = Attribute {
            i: Some(1),
            ..ints_attr("axis", Vec::new())
        };
        let g = run1("GatherElements", vec![axis1], &[&x, &i(&[2, 1], &[2, 0])]);
        assert_eq!((g.shape.clone(), floats(&g)), (vec![2, 1], vec![2.0, 5.0]));
        let bad = run_node(
            &node("GatherElements", vec![]),
            &[Some(&x), Some(&i(&[1, 1], &[7]))],
        );
        assert!(bad.is_err(), "an index past the data");
    }

    #[test]
    fn shapes_move_as_onnx_says() {
        let x = f(&[2, 3], &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
        let t = run1("Transpose", vec![], &[&x]);
        assert_eq!(t.shape, [3, 2]);
        assert_eq!(floats(&t), [1.0, 4.0, 2.0, 5.0, 3.0, 6.0]);
        let u = run1("Unsqueeze", vec![], &[&x, &i(&[1], &[1])]);
        assert_eq!(u.shape, [2, 1, 3]);
        let s = run1("Squeeze", vec![ints_attr("axes", vec![1])], &[&u]);
        assert_eq!(s.shape, [2, 3]);
        let shape = run1("Shape", vec![], &[&x]);
        assert_eq!(int_values(&shape), [2, 3]);
        let c = run1("ConstantOfShape", vec![], &[&shape]);
        assert_eq!(c.shape, [2, 3]);
        assert_eq!(floats(&c), [0.0; 6]);
        let flat = Attribute {
            i: Some(0),
            ..ints_attr("keepdims", Vec::new())
        };
        let m = run1("ReduceMean", vec![ints_attr("axes", vec![1]), flat], &[&x]);
        assert_eq!((m.shape.as_slice(), floats(&m)), (&[2][..], vec![2.0, 5.0]));
        let bad = run_node(
            &node("Squeeze", vec![ints_attr("axes", vec![0])]),
            &[Some(&x)],
        );
        assert!(bad.is_err(), "an axis of length 2 cannot be squeezed");
        let perm = run_node(
            &node("Transpose", vec![ints_attr("perm", vec![0, 0])]),
            &[Some(&x)],
        );
        assert!(perm.is_err(), "a permutation repeats no axis");
    }
}
