//! mlship JSON: our documented, versioned, lossless format for the scoring IR (`docs/mlship-json.md`).
//!
//! The document has its own types (the `J*` structs below), converted by hand to and from the
//! IR, so the IR can change without changing the format. Reading goes through the IR's
//! constructors and checks, so a document that reads is a model that scores without panicking.
//! Floats are written as JSON numbers with the shortest text that reads back to the same f64;
//! the few non-finite values the IR holds are written as the strings "NaN", "Infinity", "-Infinity".

use serde::{Deserialize, Serialize};

use mlship_model::{
    Activation, BoostLink, Category, DType, Estimator, Field, GaussianNb, ImputeFill, KMeans,
    Kernel, Label, Layer, LinearLeaf, LinearModel, LinearProba, LinearTask, Matrix, MissingMarker,
    Mlp, MlpTask, Model, ModelInfo, Node, Norm, OneHot, Ordinal, Signature, Step, Svm, SvmTask,
    Task, Tree, TreeEnsemble, TreeHead, Unknown,
};

use crate::{Error, Result};

/// The `format` field of every document.
pub const FORMAT: &str = "mlship-json";
/// The version this reader reads and this writer writes.
pub const VERSION: u32 = 1;

/// Whether the bytes look like an mlship JSON document.
pub fn detect(b: &[u8]) -> bool {
    let head = &b[..b.len().min(256)];
    let text = String::from_utf8_lossy(head);
    text.trim_start().starts_with('{') && text.contains("\"mlship-json\"")
}

/// Writes a model as an mlship JSON document. A model evaluated as written (PMML) has no IR
/// to write, and is refused.
pub fn write(m: &Model) -> Result<Vec<u8>> {
    let doc = JModel {
        format: FORMAT.into(),
        version: VERSION,
        info: JInfo {
            format: m.info.format.clone(),
            estimator: m.info.estimator.clone(),
            library: m.info.library.clone(),
            warnings: m.info.warnings.clone(),
        },
        signature: sig_to(&m.signature),
        steps: m.steps.iter().map(step_to).collect(),
        estimator: est_to(&m.estimator)?,
    };
    let mut out = serde_json::to_vec_pretty(&doc).expect("documents serialize");
    out.push(b'\n');
    Ok(out)
}

/// Reads an mlship JSON document into a checked model.
pub fn read(b: &[u8]) -> Result<Model> {
    let bad = |e: serde_json::Error| {
        // serde_json counts lines and columns; the offset is approximate but points at the line.
        let offset = b
            .split(|c| *c == b'\n')
            .take(e.line().saturating_sub(1))
            .map(|l| l.len() + 1)
            .sum::<usize>()
            + e.column().saturating_sub(1);
        Error::Malformed {
            format: "mlship JSON",
            offset,
            message: e.to_string(),
        }
    };
    let head: JHead = serde_json::from_slice(b).map_err(bad)?;
    if head.format != FORMAT {
        return Err(Error::UnknownFormat(format!(
            "a JSON document whose format is {:?}, not {FORMAT:?}",
            head.format
        )));
    }
    if head.version != VERSION {
        return Err(Error::Unsupported(format!(
            "mlship JSON version {} (this mlship reads version {VERSION})",
            head.version
        )));
    }
    let doc: JModel = serde_json::from_slice(b).map_err(bad)?;
    let signature = sig_from(doc.signature)?;
    let steps = doc
        .steps
        .into_iter()
        .map(step_from)
        .collect::<Result<Vec<_>>>()?;
    let estimator = est_from(doc.estimator)?;
    let info = ModelInfo {
        format: format!("mlship JSON {VERSION}"),
        estimator: doc.info.estimator,
        library: doc.info.library,
        warnings: doc.info.warnings,
    };
    Ok(Model::new(signature, steps, estimator, info)?)
}

fn invalid(message: impl Into<String>) -> Error {
    Error::Model(mlship_model::Error::Invalid(message.into()))
}

// ---------------------------------------------------------------------------------------------
// The document.

#[derive(Deserialize)]
struct JHead {
    format: String,
    version: u32,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct JModel {
    format: String,
    version: u32,
    info: JInfo,
    signature: JSignature,
    steps: Vec<JStep>,
    estimator: JEstimator,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct JInfo {
    /// The format the model was read from before it became this document.
    format: String,
    estimator: String,
    library: Option<String>,
    #[serde(default)]
    warnings: Vec<String>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct JSignature {
    inputs: Vec<JField>,
    named: bool,
    task: JTask,
    classes: Option<Vec<JLabel>>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct JField {
    name: String,
    #[serde(rename = "type")]
    dtype: JDType,
    nullable: bool,
}

#[derive(Clone, Copy, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
enum JDType {
    Float,
    Int,
    Str,
    Bool,
}

#[derive(Clone, Copy, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
enum JTask {
    Classification,
    Regression,
    Clustering,
}

/// A class label: `{"int": 3}`, `{"float": 0.5}`, `{"str": "cat"}`, `{"bool": true}`.
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "lowercase", deny_unknown_fields)]
enum JLabel {
    Int(i64),
    Float(F),
    Str(String),
    Bool(bool),
}

/// An f64 that may be non-finite.
#[derive(Clone, Copy)]
struct F(f64);

impl Serialize for F {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        if self.0.is_finite() {
            s.serialize_f64(self.0)
        } else if self.0.is_nan() {
            s.serialize_str("NaN")
        } else if self.0 > 0.0 {
            s.serialize_str("Infinity")
        } else {
            s.serialize_str("-Infinity")
        }
    }
}

impl<'de> Deserialize<'de> for F {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<F, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Num {
            N(f64),
            S(String),
        }
        match Num::deserialize(d)? {
            Num::N(v) => Ok(F(v)),
            Num::S(s) => match s.as_str() {
                "NaN" => Ok(F(f64::NAN)),
                "Infinity" => Ok(F(f64::INFINITY)),
                "-Infinity" => Ok(F(f64::NEG_INFINITY)),
                other => Err(serde::de::Error::custom(format!(
                    "{other:?} is not a number (nor NaN, Infinity, -Infinity)"
                ))),
            },
        }
    }
}

fn fs(v: &[f64]) -> Vec<F> {
    v.iter().map(|&x| F(x)).collect()
}

fn unf(v: Vec<F>) -> Vec<f64> {
    v.into_iter().map(|F(x)| x).collect()
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct JMatrix {
    rows: usize,
    cols: usize,
    /// Row-major.
    data: Vec<F>,
}

#[derive(Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
enum JStep {
    Standardize {
        offset: Option<Vec<F>>,
        scale: Option<Vec<F>>,
    },
    MinMax {
        scale: Vec<F>,
        min: Vec<F>,
        clip: Option<[F; 2]>,
    },
    Normalize {
        norm: JNorm,
    },
    Impute {
        missing: JMissing,
        fill: Vec<JFill>,
        indicator: Option<Vec<usize>>,
    },
    OneHot {
        columns: Vec<String>,
        categories: Vec<Vec<JCategory>>,
        drop: Vec<Option<usize>>,
        unknown: JUnknown,
    },
    Ordinal {
        columns: Vec<String>,
        categories: Vec<Vec<JCategory>>,
        unknown_value: Option<F>,
        missing_value: F,
    },
    Polynomial {
        powers: Vec<Vec<u32>>,
    },
    Columns {
        parts: Vec<JPart>,
    },
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct JPart {
    columns: Vec<usize>,
    steps: Vec<JStep>,
}

#[derive(Clone, Copy, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
enum JNorm {
    L1,
    L2,
    Max,
}

#[derive(Clone, Copy, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
enum JUnknown {
    Error,
    Ignore,
}

/// `"missing"`, or `{"num": x}`, or `{"str": s}`.
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "lowercase", deny_unknown_fields)]
enum JCategory {
    Num(F),
    Str(String),
    Missing,
}

/// `"nan"` (NaN in numbers, null in strings), or `{"num": x}`, or `{"str": s}`.
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "lowercase", deny_unknown_fields)]
enum JMissing {
    Nan,
    Num(F),
    Str(String),
}

/// `{"num": x}`, `{"str": s}`, or `"drop"`.
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "lowercase", deny_unknown_fields)]
enum JFill {
    Num(F),
    Str(String),
    Drop,
}

#[derive(Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
enum JEstimator {
    Linear {
        coef: JMatrix,
        intercept: Vec<F>,
        task: JLinearTask,
    },
    Trees {
        n_features: usize,
        n_outputs: usize,
        cast_f32: bool,
        head: JTreeHead,
        known_categories: Vec<Option<[u32; 8]>>,
        trees: Vec<JTree>,
    },
    Svm {
        kernel: JKernel,
        support_vectors: JMatrix,
        n_support: Vec<usize>,
        dual_coef: JMatrix,
        intercept: Vec<F>,
        task: JSvmTask,
    },
    GaussianNb {
        classes: Vec<JLabel>,
        theta: JMatrix,
        var: JMatrix,
        class_prior: Vec<F>,
    },
    KMeans {
        centers: JMatrix,
    },
    Mlp {
        layers: Vec<JLayer>,
        hidden: JActivation,
        output: JActivation,
        classes: Option<Vec<JLabel>>,
    },
}

#[derive(Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
enum JLinearTask {
    Regression,
    Classifier {
        classes: Vec<JLabel>,
        proba: JLinearProba,
    },
}

#[derive(Clone, Copy, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum JLinearProba {
    None,
    OneVsRest,
    Softmax,
    ModifiedHuber,
}

#[derive(Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
enum JTreeHead {
    Regression {
        exp: bool,
    },
    BoostRegression {
        base: F,
        scale: F,
        exp: bool,
    },
    ForestClassifier {
        classes: Vec<JLabel>,
    },
    BoostClassifier {
        classes: Vec<JLabel>,
        base: Vec<F>,
        scale: F,
        link: JBoostLink,
        positive_at_zero: bool,
    },
}

#[derive(Clone, Copy, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum JBoostLink {
    Logistic,
    Exponential,
    Softmax,
}

/// A tree, column by column: node `i` is `feature[i]`, `threshold[i]`, … .
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct JTree {
    feature: Vec<u32>,
    threshold: Vec<F>,
    left: Vec<u32>,
    right: Vec<u32>,
    flags: Vec<u8>,
    bitset: Vec<u32>,
    values: Vec<F>,
    width: usize,
    output: usize,
    #[serde(default)]
    cat_bitsets: Vec<Vec<u32>>,
    /// Linear leaves, one per value, when the tree has them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    linear: Vec<JLinearLeaf>,
}

/// A linear leaf: `constant + Σ coefficients[j] * x[features[j]]`.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct JLinearLeaf {
    constant: F,
    features: Vec<u32>,
    coefficients: Vec<F>,
}

#[derive(Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
enum JKernel {
    Linear,
    Poly { gamma: F, coef0: F, degree: i32 },
    Rbf { gamma: F },
    Sigmoid { gamma: F, coef0: F },
}

#[derive(Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
enum JSvmTask {
    Classifier {
        classes: Vec<JLabel>,
        ovr: bool,
        break_ties: bool,
        platt: Option<[Vec<F>; 2]>,
    },
    Regressor,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct JLayer {
    weights: JMatrix,
    bias: Vec<F>,
}

#[derive(Clone, Copy, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum JActivation {
    Identity,
    Logistic,
    Tanh,
    Relu,
    Softmax,
}

// ---------------------------------------------------------------------------------------------
// IR to document.

fn sig_to(s: &Signature) -> JSignature {
    JSignature {
        inputs: s
            .inputs
            .iter()
            .map(|f| JField {
                name: f.name.clone(),
                dtype: match f.dtype {
                    DType::Float => JDType::Float,
                    DType::Int => JDType::Int,
                    DType::Str => JDType::Str,
                    DType::Bool => JDType::Bool,
                },
                nullable: f.nullable,
            })
            .collect(),
        named: s.named,
        task: match s.task {
            Task::Classification => JTask::Classification,
            Task::Regression => JTask::Regression,
            Task::Clustering => JTask::Clustering,
        },
        classes: s.classes.as_ref().map(|c| labels_to(c)),
    }
}

fn labels_to(c: &[Label]) -> Vec<JLabel> {
    c.iter()
        .map(|l| match l {
            Label::Int(v) => JLabel::Int(*v),
            Label::Float(v) => JLabel::Float(F(*v)),
            Label::Str(v) => JLabel::Str(v.clone()),
            Label::Bool(v) => JLabel::Bool(*v),
        })
        .collect()
}

fn matrix_to(m: &Matrix) -> JMatrix {
    JMatrix {
        rows: m.rows(),
        cols: m.cols(),
        data: fs(m.as_slice()),
    }
}

fn cats_to(c: &[Vec<Category>]) -> Vec<Vec<JCategory>> {
    c.iter()
        .map(|col| {
            col.iter()
                .map(|c| match c {
                    Category::Num(v) => JCategory::Num(F(*v)),
                    Category::Str(s) => JCategory::Str(s.clone()),
                    Category::Missing => JCategory::Missing,
                })
                .collect()
        })
        .collect()
}

fn step_to(s: &Step) -> JStep {
    match s {
        Step::Standardize { offset, scale } => JStep::Standardize {
            offset: offset.as_deref().map(fs),
            scale: scale.as_deref().map(fs),
        },
        Step::MinMax { scale, min, clip } => JStep::MinMax {
            scale: fs(scale),
            min: fs(min),
            clip: clip.map(|(a, b)| [F(a), F(b)]),
        },
        Step::Normalize(n) => JStep::Normalize {
            norm: match n {
                Norm::L1 => JNorm::L1,
                Norm::L2 => JNorm::L2,
                Norm::Max => JNorm::Max,
            },
        },
        Step::Impute {
            missing,
            fill,
            indicator,
        } => JStep::Impute {
            missing: match missing {
                MissingMarker::NaN => JMissing::Nan,
                MissingMarker::Num(v) => JMissing::Num(F(*v)),
                MissingMarker::Str(s) => JMissing::Str(s.clone()),
            },
            fill: fill
                .iter()
                .map(|f| match f {
                    ImputeFill::Num(v) => JFill::Num(F(*v)),
                    ImputeFill::Str(s) => JFill::Str(s.clone()),
                    ImputeFill::Drop => JFill::Drop,
                })
                .collect(),
            indicator: indicator.clone(),
        },
        Step::OneHot(o) => JStep::OneHot {
            columns: o.columns.clone(),
            categories: cats_to(&o.categories),
            drop: o.drop.clone(),
            unknown: match o.unknown {
                Unknown::Error => JUnknown::Error,
                Unknown::Ignore => JUnknown::Ignore,
            },
        },
        Step::Ordinal(o) => JStep::Ordinal {
            columns: o.columns.clone(),
            categories: cats_to(&o.categories),
            unknown_value: o.unknown_value.map(F),
            missing_value: F(o.missing_value),
        },
        Step::Polynomial { powers } => JStep::Polynomial {
            powers: powers.clone(),
        },
        Step::Columns { parts } => JStep::Columns {
            parts: parts
                .iter()
                .map(|(cols, steps)| JPart {
                    columns: cols.clone(),
                    steps: steps.iter().map(step_to).collect(),
                })
                .collect(),
        },
    }
}

fn activation_to(a: Activation) -> JActivation {
    match a {
        Activation::Identity => JActivation::Identity,
        Activation::Logistic => JActivation::Logistic,
        Activation::Tanh => JActivation::Tanh,
        Activation::Relu => JActivation::Relu,
        Activation::Softmax => JActivation::Softmax,
    }
}

fn est_to(e: &Estimator) -> Result<JEstimator> {
    Ok(match e {
        Estimator::Linear(m) => JEstimator::Linear {
            coef: matrix_to(&m.coef),
            intercept: fs(&m.intercept),
            task: match &m.task {
                LinearTask::Regression => JLinearTask::Regression,
                LinearTask::Classifier { classes, proba } => JLinearTask::Classifier {
                    classes: labels_to(classes),
                    proba: match proba {
                        LinearProba::None => JLinearProba::None,
                        LinearProba::OneVsRest => JLinearProba::OneVsRest,
                        LinearProba::Softmax => JLinearProba::Softmax,
                        LinearProba::ModifiedHuber => JLinearProba::ModifiedHuber,
                    },
                },
            },
        },
        Estimator::Trees(t) => JEstimator::Trees {
            n_features: t.n_features(),
            n_outputs: t.n_outputs(),
            cast_f32: t.cast_f32(),
            head: match t.head() {
                TreeHead::Regression { exp } => JTreeHead::Regression { exp: *exp },
                TreeHead::BoostRegression { base, scale, exp } => JTreeHead::BoostRegression {
                    base: F(*base),
                    scale: F(*scale),
                    exp: *exp,
                },
                TreeHead::ForestClassifier { classes } => JTreeHead::ForestClassifier {
                    classes: labels_to(classes),
                },
                TreeHead::BoostClassifier {
                    classes,
                    base,
                    scale,
                    link,
                    positive_at_zero,
                } => JTreeHead::BoostClassifier {
                    classes: labels_to(classes),
                    base: fs(base),
                    scale: F(*scale),
                    link: match link {
                        BoostLink::Logistic => JBoostLink::Logistic,
                        BoostLink::Exponential => JBoostLink::Exponential,
                        BoostLink::Softmax => JBoostLink::Softmax,
                    },
                    positive_at_zero: *positive_at_zero,
                },
            },
            known_categories: t.known_categories().to_vec(),
            trees: t
                .trees()
                .iter()
                .map(|tree| JTree {
                    feature: tree.nodes().iter().map(|n| n.feature).collect(),
                    threshold: tree.nodes().iter().map(|n| F(n.threshold)).collect(),
                    left: tree.nodes().iter().map(|n| n.left).collect(),
                    right: tree.nodes().iter().map(|n| n.right).collect(),
                    flags: tree.nodes().iter().map(|n| n.flags).collect(),
                    bitset: tree.nodes().iter().map(|n| n.bitset).collect(),
                    values: fs(tree.values()),
                    width: tree.width(),
                    output: tree.output(),
                    cat_bitsets: tree.cat_bitsets().to_vec(),
                    linear: tree
                        .linear()
                        .iter()
                        .map(|l| JLinearLeaf {
                            constant: F(l.constant),
                            features: l.terms.iter().map(|t| t.0).collect(),
                            coefficients: l.terms.iter().map(|t| F(t.1)).collect(),
                        })
                        .collect(),
                })
                .collect(),
        },
        Estimator::Svm(s) => JEstimator::Svm {
            kernel: match s.kernel {
                Kernel::Linear => JKernel::Linear,
                Kernel::Poly {
                    gamma,
                    coef0,
                    degree,
                } => JKernel::Poly {
                    gamma: F(gamma),
                    coef0: F(coef0),
                    degree,
                },
                Kernel::Rbf { gamma } => JKernel::Rbf { gamma: F(gamma) },
                Kernel::Sigmoid { gamma, coef0 } => JKernel::Sigmoid {
                    gamma: F(gamma),
                    coef0: F(coef0),
                },
            },
            support_vectors: matrix_to(&s.support_vectors),
            n_support: s.n_support.clone(),
            dual_coef: matrix_to(&s.dual_coef),
            intercept: fs(&s.intercept),
            task: match &s.task {
                SvmTask::Classifier {
                    classes,
                    ovr,
                    break_ties,
                    platt,
                } => JSvmTask::Classifier {
                    classes: labels_to(classes),
                    ovr: *ovr,
                    break_ties: *break_ties,
                    platt: platt.as_ref().map(|(a, b)| [fs(a), fs(b)]),
                },
                SvmTask::Regressor => JSvmTask::Regressor,
            },
        },
        Estimator::GaussianNb(g) => JEstimator::GaussianNb {
            classes: labels_to(&g.classes),
            theta: matrix_to(&g.theta),
            var: matrix_to(&g.var),
            class_prior: fs(&g.class_prior),
        },
        Estimator::KMeans(k) => JEstimator::KMeans {
            centers: matrix_to(&k.centers),
        },
        Estimator::Mlp(m) => JEstimator::Mlp {
            layers: m
                .layers
                .iter()
                .map(|l| JLayer {
                    weights: matrix_to(&l.weights),
                    bias: fs(&l.bias),
                })
                .collect(),
            hidden: activation_to(m.hidden),
            output: activation_to(m.output),
            classes: match &m.task {
                MlpTask::Regression => None,
                MlpTask::Classifier { classes } => Some(labels_to(classes)),
            },
        },
        Estimator::External(_) => {
            return Err(Error::Unsupported(
                "this model is evaluated as its PMML document is written and has no mlship JSON form (only models lowered to mlship's IR do)".into(),
            ));
        }
    })
}

// ---------------------------------------------------------------------------------------------
// Document to IR, with the checks the IR's constructors leave to their callers.

fn labels_from(c: Vec<JLabel>) -> Vec<Label> {
    c.into_iter()
        .map(|l| match l {
            JLabel::Int(v) => Label::Int(v),
            JLabel::Float(F(v)) => Label::Float(v),
            JLabel::Str(v) => Label::Str(v),
            JLabel::Bool(v) => Label::Bool(v),
        })
        .collect()
}

fn sig_from(s: JSignature) -> Result<Signature> {
    Ok(Signature {
        inputs: s
            .inputs
            .into_iter()
            .map(|f| Field {
                name: f.name,
                dtype: match f.dtype {
                    JDType::Float => DType::Float,
                    JDType::Int => DType::Int,
                    JDType::Str => DType::Str,
                    JDType::Bool => DType::Bool,
                },
                nullable: f.nullable,
            })
            .collect(),
        named: s.named,
        task: match s.task {
            JTask::Classification => Task::Classification,
            JTask::Regression => Task::Regression,
            JTask::Clustering => Task::Clustering,
        },
        classes: s.classes.map(labels_from),
    })
}

fn matrix_from(m: JMatrix, what: &str) -> Result<Matrix> {
    Matrix::new(m.rows, m.cols, unf(m.data)).map_err(|e| invalid(format!("{what}: {e}")))
}

fn cats_from(c: Vec<Vec<JCategory>>) -> Vec<Vec<Category>> {
    c.into_iter()
        .map(|col| {
            col.into_iter()
                .map(|c| match c {
                    JCategory::Num(F(v)) => Category::Num(v),
                    JCategory::Str(s) => Category::Str(s),
                    JCategory::Missing => Category::Missing,
                })
                .collect()
        })
        .collect()
}

fn step_from(s: JStep) -> Result<Step> {
    Ok(match s {
        JStep::Standardize { offset, scale } => {
            if let (Some(o), Some(s)) = (&offset, &scale) {
                if o.len() != s.len() {
                    return Err(invalid("standardize: offset and scale differ in length"));
                }
            }
            Step::Standardize {
                offset: offset.map(unf),
                scale: scale.map(unf),
            }
        }
        JStep::MinMax { scale, min, clip } => {
            if scale.len() != min.len() {
                return Err(invalid("min_max: scale and min differ in length"));
            }
            Step::MinMax {
                scale: unf(scale),
                min: unf(min),
                clip: clip.map(|[a, b]| (a.0, b.0)),
            }
        }
        JStep::Normalize { norm } => Step::Normalize(match norm {
            JNorm::L1 => Norm::L1,
            JNorm::L2 => Norm::L2,
            JNorm::Max => Norm::Max,
        }),
        JStep::Impute {
            missing,
            fill,
            indicator,
        } => {
            if indicator
                .as_ref()
                .is_some_and(|ind| ind.iter().any(|&i| i >= fill.len()))
            {
                return Err(invalid("impute: an indicator column is out of range"));
            }
            Step::Impute {
                missing: match missing {
                    JMissing::Nan => MissingMarker::NaN,
                    JMissing::Num(F(v)) => MissingMarker::Num(v),
                    JMissing::Str(s) => MissingMarker::Str(s),
                },
                fill: fill
                    .into_iter()
                    .map(|f| match f {
                        JFill::Num(F(v)) => ImputeFill::Num(v),
                        JFill::Str(s) => ImputeFill::Str(s),
                        JFill::Drop => ImputeFill::Drop,
                    })
                    .collect(),
                indicator,
            }
        }
        JStep::OneHot {
            columns,
            categories,
            drop,
            unknown,
        } => {
            if categories.len() != columns.len() || drop.len() != columns.len() {
                return Err(invalid(
                    "one_hot: columns, categories and drop differ in length",
                ));
            }
            if drop
                .iter()
                .zip(&categories)
                .any(|(d, c)| d.is_some_and(|d| d >= c.len()))
            {
                return Err(invalid("one_hot: a dropped category is out of range"));
            }
            Step::OneHot(OneHot {
                columns,
                categories: cats_from(categories),
                drop,
                unknown: match unknown {
                    JUnknown::Error => Unknown::Error,
                    JUnknown::Ignore => Unknown::Ignore,
                },
            })
        }
        JStep::Ordinal {
            columns,
            categories,
            unknown_value,
            missing_value,
        } => {
            if categories.len() != columns.len() {
                return Err(invalid("ordinal: columns and categories differ in length"));
            }
            Step::Ordinal(Ordinal {
                columns,
                categories: cats_from(categories),
                unknown_value: unknown_value.map(|F(v)| v),
                missing_value: missing_value.0,
            })
        }
        JStep::Polynomial { powers } => {
            let width = powers.first().map_or(0, Vec::len);
            if powers.iter().any(|p| p.len() != width) || powers.iter().flatten().any(|&p| p > 64) {
                return Err(invalid(
                    "polynomial: every row of powers has one power (at most 64) per input",
                ));
            }
            Step::Polynomial { powers }
        }
        JStep::Columns { parts } => Step::Columns {
            parts: parts
                .into_iter()
                .map(|p| {
                    Ok((
                        p.columns,
                        p.steps.into_iter().map(step_from).collect::<Result<_>>()?,
                    ))
                })
                .collect::<Result<_>>()?,
        },
    })
}

fn activation_from(a: JActivation) -> Activation {
    match a {
        JActivation::Identity => Activation::Identity,
        JActivation::Logistic => Activation::Logistic,
        JActivation::Tanh => Activation::Tanh,
        JActivation::Relu => Activation::Relu,
        JActivation::Softmax => Activation::Softmax,
    }
}

/// Checks that a classifier's classes fit its outputs (`rows` outputs; binary models have one).
fn check_classes(what: &str, classes: &[Label], rows: usize) -> Result<()> {
    let ok = rows == classes.len() || rows == 1 && classes.len() == 2;
    if ok && !classes.is_empty() {
        Ok(())
    } else {
        Err(invalid(format!(
            "{what}: {} classes do not fit {rows} outputs",
            classes.len()
        )))
    }
}

fn est_from(e: JEstimator) -> Result<Estimator> {
    Ok(match e {
        JEstimator::Linear {
            coef,
            intercept,
            task,
        } => {
            let coef = matrix_from(coef, "linear coef")?;
            if intercept.len() != coef.rows() {
                return Err(invalid("linear: one intercept per row of coef"));
            }
            let task = match task {
                JLinearTask::Regression => {
                    if coef.rows() != 1 {
                        return Err(invalid("linear regression: coef has one row"));
                    }
                    LinearTask::Regression
                }
                JLinearTask::Classifier { classes, proba } => {
                    let classes = labels_from(classes);
                    check_classes("linear", &classes, coef.rows())?;
                    LinearTask::Classifier {
                        classes,
                        proba: match proba {
                            JLinearProba::None => LinearProba::None,
                            JLinearProba::OneVsRest => LinearProba::OneVsRest,
                            JLinearProba::Softmax => LinearProba::Softmax,
                            JLinearProba::ModifiedHuber => LinearProba::ModifiedHuber,
                        },
                    }
                }
            };
            Estimator::Linear(LinearModel {
                coef,
                intercept: unf(intercept),
                task,
            })
        }
        JEstimator::Trees {
            n_features,
            n_outputs,
            cast_f32,
            head,
            known_categories,
            trees,
        } => {
            let head = match head {
                JTreeHead::Regression { exp } => TreeHead::Regression { exp },
                JTreeHead::BoostRegression { base, scale, exp } => TreeHead::BoostRegression {
                    base: base.0,
                    scale: scale.0,
                    exp,
                },
                JTreeHead::ForestClassifier { classes } => TreeHead::ForestClassifier {
                    classes: labels_from(classes),
                },
                JTreeHead::BoostClassifier {
                    classes,
                    base,
                    scale,
                    link,
                    positive_at_zero,
                } => TreeHead::BoostClassifier {
                    classes: labels_from(classes),
                    base: unf(base),
                    scale: scale.0,
                    link: match link {
                        JBoostLink::Logistic => BoostLink::Logistic,
                        JBoostLink::Exponential => BoostLink::Exponential,
                        JBoostLink::Softmax => BoostLink::Softmax,
                    },
                    positive_at_zero,
                },
            };
            let mut built = Vec::with_capacity(trees.len());
            for (i, t) in trees.into_iter().enumerate() {
                let n = t.feature.len();
                if [
                    t.threshold.len(),
                    t.left.len(),
                    t.right.len(),
                    t.flags.len(),
                    t.bitset.len(),
                ]
                .iter()
                .any(|&l| l != n)
                {
                    return Err(invalid(format!(
                        "tree {i}: feature, threshold, left, right, flags and bitset differ in length"
                    )));
                }
                let nodes = (0..n)
                    .map(|j| Node {
                        feature: t.feature[j],
                        threshold: t.threshold[j].0,
                        left: t.left[j],
                        right: t.right[j],
                        flags: t.flags[j],
                        bitset: t.bitset[j],
                    })
                    .collect();
                let mut linear = Vec::with_capacity(t.linear.len());
                for l in t.linear {
                    if l.features.len() != l.coefficients.len() {
                        return Err(invalid(format!(
                            "tree {i}: a linear leaf's features and coefficients differ in length"
                        )));
                    }
                    linear.push(LinearLeaf {
                        constant: l.constant.0,
                        terms: l
                            .features
                            .into_iter()
                            .zip(l.coefficients.into_iter().map(|c| c.0))
                            .collect(),
                    });
                }
                built.push(
                    Tree::new(nodes, unf(t.values), t.width, t.output, t.cat_bitsets)
                        .with_linear(linear),
                );
            }
            Estimator::Trees(TreeEnsemble::new(
                n_features,
                n_outputs,
                built,
                cast_f32,
                head,
                known_categories,
            )?)
        }
        JEstimator::Svm {
            kernel,
            support_vectors,
            n_support,
            dual_coef,
            intercept,
            task,
        } => {
            let svm = Svm {
                kernel: match kernel {
                    JKernel::Linear => Kernel::Linear,
                    JKernel::Poly {
                        gamma,
                        coef0,
                        degree,
                    } => Kernel::Poly {
                        gamma: gamma.0,
                        coef0: coef0.0,
                        degree,
                    },
                    JKernel::Rbf { gamma } => Kernel::Rbf { gamma: gamma.0 },
                    JKernel::Sigmoid { gamma, coef0 } => Kernel::Sigmoid {
                        gamma: gamma.0,
                        coef0: coef0.0,
                    },
                },
                support_vectors: matrix_from(support_vectors, "svm support_vectors")?,
                n_support,
                dual_coef: matrix_from(dual_coef, "svm dual_coef")?,
                intercept: unf(intercept),
                task: match task {
                    JSvmTask::Classifier {
                        classes,
                        ovr,
                        break_ties,
                        platt,
                    } => SvmTask::Classifier {
                        classes: labels_from(classes),
                        ovr,
                        break_ties,
                        platt: platt.map(|[a, b]| (unf(a), unf(b))),
                    },
                    JSvmTask::Regressor => SvmTask::Regressor,
                },
            };
            svm.validate()?;
            Estimator::Svm(svm)
        }
        JEstimator::GaussianNb {
            classes,
            theta,
            var,
            class_prior,
        } => {
            let g = GaussianNb {
                classes: labels_from(classes),
                theta: matrix_from(theta, "gaussian_nb theta")?,
                var: matrix_from(var, "gaussian_nb var")?,
                class_prior: unf(class_prior),
            };
            if g.classes.is_empty()
                || g.theta.rows() != g.classes.len()
                || g.var.rows() != g.theta.rows()
                || g.var.cols() != g.theta.cols()
                || g.class_prior.len() != g.classes.len()
            {
                return Err(invalid(
                    "gaussian_nb: theta, var and class_prior need one row per class",
                ));
            }
            Estimator::GaussianNb(g)
        }
        JEstimator::KMeans { centers } => {
            let centers = matrix_from(centers, "k_means centers")?;
            if centers.rows() == 0 {
                return Err(invalid("k_means: no centers"));
            }
            Estimator::KMeans(KMeans { centers })
        }
        JEstimator::Mlp {
            layers,
            hidden,
            output,
            classes,
        } => {
            let layers = layers
                .into_iter()
                .enumerate()
                .map(|(i, l)| {
                    Ok(Layer {
                        weights: matrix_from(l.weights, &format!("mlp layer {i}"))?,
                        bias: unf(l.bias),
                    })
                })
                .collect::<Result<Vec<_>>>()?;
            let out_rows = layers.last().map_or(0, |l| l.weights.rows());
            let task = match classes {
                None => MlpTask::Regression,
                Some(c) => {
                    let classes = labels_from(c);
                    check_classes("mlp", &classes, out_rows)?;
                    MlpTask::Classifier { classes }
                }
            };
            let m = Mlp {
                layers,
                hidden: activation_from(hidden),
                output: activation_from(output),
                task,
            };
            m.validate()?;
            Estimator::Mlp(m)
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn non_finite_floats_round_trip_as_strings() {
        let v = vec![F(1.5), F(f64::NAN), F(f64::INFINITY), F(f64::NEG_INFINITY)];
        let text = serde_json::to_string(&v).unwrap();
        assert_eq!(text, r#"[1.5,"NaN","Infinity","-Infinity"]"#);
        let back: Vec<F> = serde_json::from_str(&text).unwrap();
        assert!(back[1].0.is_nan() && back[2].0 == f64::INFINITY && back[3].0 < 0.0);
        assert!(serde_json::from_str::<Vec<F>>(r#"["nan"]"#).is_err());
    }

    #[test]
    fn shortest_float_text_reads_back_exactly() {
        for x in [
            0.1,
            1.0 / 3.0,
            1e-300,
            2.5e300,
            -0.0,
            123_456_789.123_456_79,
            f64::MIN_POSITIVE,
        ] {
            let s = serde_json::to_string(&F(x)).unwrap();
            let F(y) = serde_json::from_str(&s).unwrap();
            assert_eq!(x.to_bits(), y.to_bits(), "{s}");
        }
    }
}
