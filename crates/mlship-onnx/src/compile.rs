//! Each node compiled when the graph is read: its operator (from the one table of `ops::Op`)
//! and its attributes decoded into a typed [`Kernel`], so that scoring neither looks an
//! attribute up by name nor matches a string, and an attribute value mlship cannot run (a
//! `post_transform`, a kernel type, a cast's element type) is refused at load, naming it.

use std::cmp::Ordering;

use crate::error::Result;
use crate::ops::{self, Attrs, Data, Op, Prepared, Tensor, fail};
use crate::proto::{BOOL, DOUBLE, FLOAT, INT32, INT64, NodeProto, STRING};

/// What a classifier's or regressor's scores become (`post_transform`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Post {
    None,
    Logistic,
    Softmax,
}

/// A Normalizer's norm.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Norm {
    Max,
    L1,
    L2,
}

/// The element type a Cast produces.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CastTo {
    /// float or double (mlship computes in float32).
    Float,
    /// int64 or int32.
    Int,
    Bool,
    String,
}

/// An SVM's kernel, with its parameters (gamma, coef0, degree).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum SvmKernel {
    Linear,
    Poly { gamma: f32, coef0: f32, degree: f32 },
    Rbf { gamma: f32 },
    Sigmoid { gamma: f32, coef0: f32 },
}

impl SvmKernel {
    /// The kernel of `x` and the support vector `v`.
    pub fn eval(self, x: &[f32], v: &[f32]) -> f32 {
        let dot = || x.iter().zip(v).map(|(a, b)| a * b).sum::<f32>();
        match self {
            SvmKernel::Linear => dot(),
            SvmKernel::Poly {
                gamma,
                coef0,
                degree,
            } => (gamma * dot() + coef0).powf(degree),
            SvmKernel::Rbf { gamma } => {
                (-gamma * x.iter().zip(v).map(|(a, b)| (a - b) * (a - b)).sum::<f32>()).exp()
            }
            SvmKernel::Sigmoid { gamma, coef0 } => (gamma * dot() + coef0).tanh(),
        }
    }
}

/// libsvm's one-against-one classifier, decoded.
#[derive(Debug)]
pub struct SvmClassifier {
    pub labels: Data,
    pub k: usize,
    /// Platt scaling per class pair, when the model has it.
    pub prob_a: Vec<f64>,
    pub prob_b: Vec<f64>,
    pub per_class: Vec<usize>,
    /// Where each class's support vectors start.
    pub starts: Vec<usize>,
    pub support_vectors: Vec<f32>,
    pub coefficients: Vec<f32>,
    pub rho: Vec<f32>,
    pub kernel: SvmKernel,
}

/// libsvm's regression or one-class model, decoded.
#[derive(Debug)]
pub struct SvmRegressor {
    /// 0: the coefficients are a linear model's weights.
    pub n_supports: usize,
    pub support_vectors: Vec<f32>,
    pub coefficients: Vec<f32>,
    pub rho: f32,
    pub kernel: SvmKernel,
    pub one_class: bool,
}

/// A node ready to run: its operator with its attributes decoded.
#[derive(Debug)]
pub enum Kernel {
    /// Identity, and ZipMap (whose maps mlship returns as the probability matrix).
    Identity,
    Cast(CastTo),
    Reshape,
    Flatten {
        axis: i64,
    },
    Concat {
        axis: i64,
    },
    Gather {
        axis: i64,
    },
    /// Elementwise arithmetic with broadcasting: the float and the integer operation.
    Arith(fn(f32, f32) -> f32, fn(i64, i64) -> i64),
    /// A float function applied value by value.
    Map(fn(f32) -> f32),
    /// A reduction; `axes` from the attribute (opset 18 gives them as an input instead).
    Reduce {
        f: fn(&[f32]) -> f32,
        keep: bool,
        axes: Vec<i64>,
    },
    ArgExt {
        axis: i64,
        keep: bool,
        max: bool,
    },
    Softmax {
        axis: i64,
    },
    MatMul,
    Gemm {
        trans_a: bool,
        trans_b: bool,
        alpha: f32,
        beta: f32,
    },
    ArrayFeatureExtractor,
    OneHotEncoder {
        zeros: bool,
        ints: Vec<i64>,
        strings: Vec<String>,
    },
    Scaler {
        offset: Vec<f32>,
        scale: Vec<f32>,
    },
    Imputer {
        fill: Vec<f32>,
        marker: f32,
    },
    Normalizer(Norm),
    LinearRegressor {
        coefficients: Vec<f32>,
        intercepts: Vec<f32>,
        targets: usize,
        post: Post,
    },
    LinearClassifier {
        labels: Data,
        coefficients: Vec<f32>,
        intercepts: Vec<f32>,
        post: Post,
    },
    TreeRegressor {
        trees: Prepared,
        n_trees: usize,
        targets: usize,
        base: Vec<f32>,
        average: bool,
        post: Post,
    },
    TreeClassifier {
        trees: Prepared,
        labels: Data,
        base: Vec<f32>,
        /// Two classes scored by one output: its slot.
        binary: Option<usize>,
        post: Post,
    },
    SvmClassifier(Box<SvmClassifier>),
    SvmRegressor(Box<SvmRegressor>),
    /// An elementwise comparison: which orders give 1.
    Compare(fn(Ordering) -> bool),
    Not,
    /// An elementwise boolean operation on 0/1 integers.
    Logic(fn(i64, i64) -> i64),
    Where,
    /// Sum, Mean, Min or Max of any number of inputs.
    Fold {
        f: fn(f32, f32) -> f32,
        fi: fn(i64, i64) -> i64,
        mean: bool,
    },
    /// Bounds from the attributes (before opset 11); inputs, when given, take their place.
    Clip {
        min: f32,
        max: f32,
    },
    Squeeze {
        axes: Vec<i64>,
    },
    Unsqueeze {
        axes: Vec<i64>,
    },
    Transpose {
        perm: Vec<i64>,
    },
    Shape {
        start: i64,
        end: Option<i64>,
    },
    ConstantOfShape {
        value: Data,
    },
    TopK {
        axis: i64,
        largest: bool,
    },
    CumSum {
        exclusive: bool,
        reverse: bool,
    },
    GatherElements {
        axis: i64,
    },
    Binarizer {
        threshold: f32,
    },
}

fn post_of(node: &NodeProto, a: &Attrs) -> Result<Post> {
    Ok(match a.s("post_transform", "NONE").as_str() {
        "NONE" => Post::None,
        "LOGISTIC" => Post::Logistic,
        "SOFTMAX" => Post::Softmax,
        other => return Err(fail(node, format!("post_transform {other:?}"))),
    })
}

fn labels_of(node: &NodeProto, a: &Attrs) -> Result<Data> {
    a.labels().ok_or_else(|| fail(node, "no class labels"))
}

fn kernel_of(node: &NodeProto, a: &Attrs) -> Result<SvmKernel> {
    let kp = a.floats("kernel_params");
    let gamma = kp.first().copied().unwrap_or(0.0);
    let coef0 = kp.get(1).copied().unwrap_or(0.0);
    let degree = kp.get(2).copied().unwrap_or(3.0);
    Ok(match a.s("kernel_type", "LINEAR").as_str() {
        "LINEAR" => SvmKernel::Linear,
        "POLY" => SvmKernel::Poly {
            gamma,
            coef0,
            degree,
        },
        "RBF" => SvmKernel::Rbf { gamma },
        "SIGMOID" => SvmKernel::Sigmoid { gamma, coef0 },
        other => return Err(fail(node, format!("kernel {other:?}"))),
    })
}

fn reduction(op: Op) -> fn(&[f32]) -> f32 {
    match op {
        Op::ReduceSum => |v| v.iter().sum(),
        Op::ReduceSumSquare => |v| v.iter().map(|x| x * x).sum(),
        Op::ReduceMean => |v| v.iter().sum::<f32>() / v.len() as f32,
        Op::ReduceMax => |v| v.iter().copied().fold(f32::NEG_INFINITY, f32::max),
        Op::ReduceMin => |v| v.iter().copied().fold(f32::INFINITY, f32::min),
        Op::ReduceProd => |v| v.iter().product(),
        // ReduceLogSumExp.
        _ => |v| {
            let m = v.iter().copied().fold(f32::NEG_INFINITY, f32::max);
            if m.is_infinite() {
                return m;
            }
            m + v.iter().map(|x| (x - m).exp()).sum::<f32>().ln()
        },
    }
}

fn sign(x: f32) -> f32 {
    if x > 0.0 {
        1.0
    } else if x < 0.0 {
        -1.0
    } else {
        x
    }
}

/// Compiles one node: its operator `op` (resolved from its domain and type) and its attributes.
pub fn compile(node: &NodeProto, op: Op) -> Result<Kernel> {
    use std::cmp::Ordering::{Equal, Greater, Less};
    let a = Attrs(node);
    let flag = |name: &str, default: i64| a.i(name, default) != 0;
    Ok(match op {
        Op::Identity | Op::ZipMap => Kernel::Identity,
        Op::Cast => Kernel::Cast(match a.i("to", FLOAT) {
            FLOAT | DOUBLE => CastTo::Float,
            INT64 | INT32 => CastTo::Int,
            BOOL => CastTo::Bool,
            STRING => CastTo::String,
            other => return Err(fail(node, format!("a cast to element type {other}"))),
        }),
        Op::Reshape => Kernel::Reshape,
        Op::Flatten => Kernel::Flatten {
            axis: a.i("axis", 1),
        },
        Op::Concat => Kernel::Concat {
            axis: a.i("axis", 0),
        },
        Op::Gather => Kernel::Gather {
            axis: a.i("axis", 0),
        },
        Op::Add => Kernel::Arith(|x, y| x + y, i64::wrapping_add),
        Op::Sub => Kernel::Arith(|x, y| x - y, i64::wrapping_sub),
        Op::Mul => Kernel::Arith(|x, y| x * y, i64::wrapping_mul),
        Op::Div => Kernel::Arith(|x, y| x / y, |x, y| if y == 0 { 0 } else { x / y }),
        Op::Pow => Kernel::Arith(f32::powf, |x, y| x.wrapping_pow(y.clamp(0, 64) as u32)),
        Op::Exp => Kernel::Map(f32::exp),
        Op::Sqrt => Kernel::Map(f32::sqrt),
        Op::Relu => Kernel::Map(|x| x.max(0.0)),
        Op::Sigmoid => Kernel::Map(ops::sigmoid),
        Op::Tanh => Kernel::Map(f32::tanh),
        Op::Abs => Kernel::Map(f32::abs),
        Op::Log => Kernel::Map(f32::ln),
        Op::Neg => Kernel::Map(|x| -x),
        Op::Sign => Kernel::Map(sign),
        Op::Floor => Kernel::Map(f32::floor),
        Op::Ceil => Kernel::Map(f32::ceil),
        Op::Reciprocal => Kernel::Map(f32::recip),
        Op::ReduceSum
        | Op::ReduceSumSquare
        | Op::ReduceLogSumExp
        | Op::ReduceMean
        | Op::ReduceMax
        | Op::ReduceMin
        | Op::ReduceProd => Kernel::Reduce {
            f: reduction(op),
            keep: flag("keepdims", 1),
            axes: a.ints("axes"),
        },
        Op::ArgMax | Op::ArgMin => {
            if flag("select_last_index", 0) {
                return Err(fail(node, "select_last_index"));
            }
            Kernel::ArgExt {
                axis: a.i("axis", 0),
                keep: flag("keepdims", 1),
                max: op == Op::ArgMax,
            }
        }
        Op::Softmax => Kernel::Softmax {
            axis: a.i("axis", -1),
        },
        Op::MatMul => Kernel::MatMul,
        Op::Gemm => Kernel::Gemm {
            trans_a: flag("transA", 0),
            trans_b: flag("transB", 0),
            alpha: a.f("alpha", 1.0),
            beta: a.f("beta", 1.0),
        },
        Op::ArrayFeatureExtractor => Kernel::ArrayFeatureExtractor,
        Op::OneHotEncoder => Kernel::OneHotEncoder {
            zeros: flag("zeros", 1),
            ints: a.ints("cats_int64s"),
            strings: a.strings("cats_strings"),
        },
        Op::Scaler => Kernel::Scaler {
            offset: a.floats("offset"),
            scale: a.floats("scale"),
        },
        Op::Imputer => Kernel::Imputer {
            fill: a.floats("imputed_value_floats"),
            marker: a.f("replaced_value_float", f32::NAN),
        },
        Op::Normalizer => Kernel::Normalizer(match a.s("norm", "MAX").as_str() {
            "MAX" => Norm::Max,
            "L1" => Norm::L1,
            "L2" => Norm::L2,
            other => return Err(fail(node, format!("norm {other:?}"))),
        }),
        Op::LinearRegressor => Kernel::LinearRegressor {
            coefficients: a.floats("coefficients"),
            intercepts: a.floats("intercepts"),
            targets: a.i("targets", 1).max(1) as usize,
            post: post_of(node, &a)?,
        },
        Op::LinearClassifier => Kernel::LinearClassifier {
            labels: labels_of(node, &a)?,
            coefficients: a.floats("coefficients"),
            intercepts: a.floats("intercepts"),
            post: post_of(node, &a)?,
        },
        Op::TreeEnsembleRegressor => {
            let targets = a.i("n_targets", 1).max(1) as usize;
            let trees = ops::prepare(node, &a, "target", targets)?;
            Kernel::TreeRegressor {
                n_trees: trees.n_trees(),
                trees,
                targets,
                base: a.floats("base_values"),
                average: match a.s("aggregate_function", "SUM").as_str() {
                    "SUM" => false,
                    "AVERAGE" => true,
                    other => return Err(fail(node, format!("aggregate_function {other:?}"))),
                },
                post: post_of(node, &a)?,
            }
        }
        Op::TreeEnsembleClassifier => {
            let labels = labels_of(node, &a)?;
            let k = ops::labels_len(&labels);
            let trees = ops::prepare(node, &a, "class", k)?;
            let ids = a.ints("class_ids");
            let binary =
                (k == 2 && !ids.is_empty() && ids.iter().all(|&i| i == ids[0])).then_some(ids[0]);
            let post = post_of(node, &a)?;
            if binary.is_some() && post == Post::Softmax {
                return Err(fail(node, "post_transform \"SOFTMAX\" for two classes"));
            }
            Kernel::TreeClassifier {
                trees,
                labels,
                base: a.floats("base_values"),
                // The ensemble's leaves were checked to name outputs below `k`.
                binary: binary.map(|i| i as usize),
                post,
            }
        }
        Op::SVMClassifier => Kernel::SvmClassifier(Box::new(svm_classifier(node, &a)?)),
        Op::SVMRegressor => {
            if post_of(node, &a)? != Post::None {
                return Err(fail(node, "an SVMRegressor post_transform other than NONE"));
            }
            let rho = a.floats("rho");
            if rho.len() != 1 {
                return Err(fail(node, "an SVMRegressor without one rho"));
            }
            Kernel::SvmRegressor(Box::new(SvmRegressor {
                n_supports: a.i("n_supports", 0).max(0) as usize,
                support_vectors: a.floats("support_vectors"),
                coefficients: a.floats("coefficients"),
                rho: rho[0],
                kernel: kernel_of(node, &a)?,
                one_class: flag("one_class", 0),
            }))
        }
        Op::Less => Kernel::Compare(|o| o == Less),
        Op::LessOrEqual => Kernel::Compare(|o| o != Greater),
        Op::Greater => Kernel::Compare(|o| o == Greater),
        Op::GreaterOrEqual => Kernel::Compare(|o| o != Less),
        Op::Equal => Kernel::Compare(|o| o == Equal),
        Op::Not => Kernel::Not,
        Op::And => Kernel::Logic(|p, q| i64::from(p != 0 && q != 0)),
        Op::Or => Kernel::Logic(|p, q| i64::from(p != 0 || q != 0)),
        Op::Xor => Kernel::Logic(|p, q| i64::from((p != 0) != (q != 0))),
        Op::Where => Kernel::Where,
        Op::Sum | Op::Mean => Kernel::Fold {
            f: |x, y| x + y,
            fi: i64::wrapping_add,
            mean: op == Op::Mean,
        },
        Op::Min => Kernel::Fold {
            f: f32::min,
            fi: i64::min,
            mean: false,
        },
        Op::Max => Kernel::Fold {
            f: f32::max,
            fi: i64::max,
            mean: false,
        },
        Op::Clip => Kernel::Clip {
            min: a.f("min", f32::NEG_INFINITY),
            max: a.f("max", f32::INFINITY),
        },
        Op::Squeeze => Kernel::Squeeze {
            axes: a.ints("axes"),
        },
        Op::Unsqueeze => Kernel::Unsqueeze {
            axes: a.ints("axes"),
        },
        Op::Transpose => Kernel::Transpose {
            perm: a.ints("perm"),
        },
        Op::Shape => Kernel::Shape {
            start: a.i("start", 0),
            end: a.get("end").and_then(|e| e.i),
        },
        Op::ConstantOfShape => Kernel::ConstantOfShape {
            value: match a.get("value").and_then(|v| v.t.as_ref()) {
                Some(t) => match Tensor::from_proto(t)?.data {
                    Data::F(v) if v.len() == 1 => Data::F(v),
                    Data::I(v) if v.len() == 1 => Data::I(v),
                    _ => return Err(fail(node, "a value that is not one number")),
                },
                None => Data::F(vec![0.0]),
            },
        },
        Op::TopK => Kernel::TopK {
            axis: a.i("axis", -1),
            largest: flag("largest", 1),
        },
        Op::CumSum => Kernel::CumSum {
            exclusive: flag("exclusive", 0),
            reverse: flag("reverse", 0),
        },
        Op::GatherElements => Kernel::GatherElements {
            axis: a.i("axis", 0),
        },
        Op::Binarizer => Kernel::Binarizer {
            threshold: a.f("threshold", 0.0),
        },
    })
}

/// An SVMClassifier's attributes, checked against each other (the features are checked when
/// the input arrives).
fn svm_classifier(node: &NodeProto, a: &Attrs) -> Result<SvmClassifier> {
    let labels = labels_of(node, a)?;
    let k = ops::labels_len(&labels);
    let (prob_a, prob_b) = (a.floats("prob_a"), a.floats("prob_b"));
    if !prob_a.is_empty()
        && (prob_a.len() != k * k.saturating_sub(1) / 2 || prob_b.len() != prob_a.len())
    {
        return Err(fail(
            node,
            "prob_a and prob_b need one value per class pair",
        ));
    }
    let per_class: Vec<usize> = a
        .ints("vectors_per_class")
        .iter()
        .map(|&v| v.max(0) as usize)
        .collect();
    let total: usize = per_class.iter().sum();
    let coefficients = a.floats("coefficients");
    let rho = a.floats("rho");
    if k == 0
        || per_class.len() != k
        || coefficients.len() != total * (k - 1).max(1)
        || rho.len() != k * (k - 1) / 2
    {
        return Err(fail(
            node,
            "support vectors, coefficients or rho do not fit the classes",
        ));
    }
    let starts = per_class
        .iter()
        .scan(0, |s, &v| {
            let r = *s;
            *s += v;
            Some(r)
        })
        .collect();
    Ok(SvmClassifier {
        labels,
        k,
        prob_a: prob_a.iter().map(|&x| f64::from(x)).collect(),
        prob_b: prob_b.iter().map(|&x| f64::from(x)).collect(),
        per_class,
        starts,
        support_vectors: a.floats("support_vectors"),
        coefficients,
        rho,
        kernel: kernel_of(node, a)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::Attribute;

    fn attr(name: &str) -> Attribute {
        Attribute {
            name: name.into(),
            ..Attribute::default()
        }
    }

    fn text(name: &str, v: &str) -> Attribute {
        Attribute {
            s: Some(v.as_bytes().to_vec()),
            ..attr(name)
        }
    }

    fn int(name: &str, v: i64) -> Attribute {
        Attribute {
            i: Some(v),
            ..attr(name)
        }
    }

    fn ints(name: &str, v: &[i64]) -> Attribute {
        Attribute {
            ints: v.to_vec(),
            ..attr(name)
        }
    }

    fn floats(name: &str, v: &[f32]) -> Attribute {
        Attribute {
            floats: v.to_vec(),
            ..attr(name)
        }
    }

    /// A one-leaf regression tree, and `extra`.
    fn one_leaf(extra: Attribute) -> Vec<Attribute> {
        let mut a: Vec<Attribute> = [
            "nodes_treeids",
            "nodes_nodeids",
            "nodes_featureids",
            "nodes_truenodeids",
            "nodes_falsenodeids",
            "target_treeids",
            "target_nodeids",
            "target_ids",
        ]
        .iter()
        .map(|n| ints(n, &[0]))
        .collect();
        a.push(Attribute {
            strings: vec![b"LEAF".to_vec()],
            ..attr("nodes_modes")
        });
        a.push(floats("nodes_values", &[0.0]));
        a.push(floats("target_weights", &[1.0]));
        a.push(extra);
        a
    }

    fn compiled(op: &str, attributes: Vec<Attribute>) -> Result<Kernel> {
        let ml = !matches!(op, "Cast" | "ArgMax");
        let node = NodeProto {
            inputs: Vec::new(),
            outputs: Vec::new(),
            name: "n".into(),
            op_type: op.into(),
            domain: if ml {
                "ai.onnx.ml".into()
            } else {
                String::new()
            },
            attributes,
            offset: 0,
        };
        let op = Op::parse(&node.domain, &node.op_type).expect("an operator mlship runs");
        compile(&node, op)
    }

    /// An attribute value mlship cannot run is refused when the graph is read, naming it; the
    /// same node with a value it runs compiles.
    #[test]
    fn attribute_values_mlship_cannot_run_are_refused_at_load() {
        let cases: Vec<(&str, Vec<Attribute>, Vec<Attribute>, &str)> = vec![
            (
                "Normalizer",
                vec![text("norm", "L3")],
                vec![text("norm", "L2")],
                "norm \"L3\"",
            ),
            (
                "LinearRegressor",
                vec![text("post_transform", "PROBIT")],
                vec![text("post_transform", "SOFTMAX")],
                "post_transform \"PROBIT\"",
            ),
            (
                "SVMRegressor",
                vec![text("kernel_type", "CHI2"), floats("rho", &[0.0])],
                vec![text("kernel_type", "RBF"), floats("rho", &[0.0])],
                "kernel \"CHI2\"",
            ),
            (
                "Cast",
                vec![int("to", 16)],
                vec![int("to", 7)],
                "element type 16",
            ),
            (
                "ArgMax",
                vec![int("select_last_index", 1)],
                vec![int("select_last_index", 0)],
                "select_last_index",
            ),
            (
                "TreeEnsembleRegressor",
                one_leaf(text("aggregate_function", "MIN")),
                one_leaf(text("aggregate_function", "AVERAGE")),
                "aggregate_function \"MIN\"",
            ),
        ];
        for (op, bad, good, named) in cases {
            let e = compiled(op, bad).expect_err(op).to_string();
            assert!(e.contains(named), "{op}: {e}");
            compiled(op, good).unwrap_or_else(|e| panic!("{op}: {e}"));
        }
    }
}
