//! PMML documents read into their own shape: the data dictionary, transformations and the model
//! elements mlship evaluates. Anything else inside a model is refused by name, never skipped.

use std::collections::HashMap;

/// The maps a row's evaluation looks fields up in, many times per row: a fast hash.
pub type FastMap<K, V> = HashMap<K, V, foldhash::fast::RandomState>;

use roxmltree::Node;

use crate::error::{Error, Result};

/// A field's symbol, given when the document is read: the slot a row's evaluation keeps the
/// field's value in, so that evaluating never looks a field up by its name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Sym(pub u32);

impl Sym {
    pub fn index(self) -> usize {
        self.0 as usize
    }
}

/// A field name as the document writes it, with its symbol. It shows (`{:?}` too) as its text.
#[derive(Clone, PartialEq, Eq)]
pub struct Name {
    text: String,
    pub sym: Sym,
}

impl std::ops::Deref for Name {
    type Target = str;
    fn deref(&self) -> &str {
        &self.text
    }
}

impl std::fmt::Debug for Name {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(&self.text, f)
    }
}

impl std::fmt::Display for Name {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text)
    }
}

impl PartialEq<str> for Name {
    fn eq(&self, other: &str) -> bool {
        self.text == other
    }
}

impl PartialEq<String> for Name {
    fn eq(&self, other: &String) -> bool {
        self.text == *other
    }
}

/// What reading a document keeps from element to element: the symbols given so far, and the
/// functions the document defines (by name, their index in [`Document::functions`]).
#[derive(Default)]
struct Cx {
    names: Vec<String>,
    syms: FastMap<String, Sym>,
    functions: FastMap<String, usize>,
}

impl Cx {
    /// The name `text`, with the symbol every other mention of it has.
    fn name(&mut self, text: &str) -> Name {
        let sym = match self.syms.get(text) {
            Some(&s) => s,
            None => {
                let s = Sym(self.names.len() as u32);
                self.names.push(text.to_string());
                self.syms.insert(text.to_string(), s);
                s
            }
        };
        Name {
            text: text.to_string(),
            sym,
        }
    }

    /// The name in attribute `a` of `n`, which must have it.
    fn req_name(&mut self, n: &Node, a: &str) -> Result<Name> {
        Ok(self.name(req(n, a)?))
    }
}

/// The largest document mlship reads, in XML nodes (a forest of 500 deep trees fits easily).
const MAX_NODES: u32 = 20_000_000;
/// How deep expressions, predicates and trees may nest: the reader recurses, and a thread's stack
/// (2 MiB for tests and the server's workers) must hold it in a debug build too.
const MAX_DEPTH: usize = 200;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OpType {
    Continuous,
    Categorical,
    Ordinal,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DataType {
    Double,
    Float,
    Integer,
    String,
    Boolean,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Missing,
    Num(f64),
    Str(String),
    Bool(bool),
}

#[derive(Debug)]
pub struct DataField {
    pub name: Name,
    pub optype: OpType,
    pub dtype: DataType,
    /// The valid values of a categorical or ordinal field, in document order.
    pub values: Vec<String>,
}

#[derive(Debug)]
pub struct Derived {
    pub name: Name,
    pub dtype: DataType,
    pub expr: Expr,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
/// `outliers`: asIs, asMissingValues, asExtremeValues.
pub enum Outliers {
    Keep,
    Missing,
    Extreme,
}

#[derive(Debug)]
pub enum Expr {
    Constant(Value),
    FieldRef {
        field: Name,
        map_missing: Option<Value>,
    },
    NormContinuous {
        field: Name,
        points: Vec<(f64, f64)>,
        outliers: Outliers,
        map_missing: Option<f64>,
    },
    NormDiscrete {
        field: Name,
        value: String,
        map_missing: Option<f64>,
    },
    Discretize {
        field: Name,
        bins: Vec<(Interval, String)>,
        default: Option<String>,
        map_missing: Option<String>,
    },
    /// A table looked up by its input fields' values: each row holds, by position, the cell of
    /// each input's column and then the output column's (`None` where the row lacks one).
    MapValues {
        inputs: Vec<Name>,
        rows: Vec<Vec<Option<String>>>,
        default: Option<String>,
        map_missing: Option<String>,
    },
    Apply {
        call: crate::func::Call,
        args: Vec<Expr>,
        map_missing: Option<Value>,
        default: Option<Value>,
    },
}

#[derive(Clone, Copy, Debug)]
pub struct Interval {
    pub left: Option<f64>,
    pub right: Option<f64>,
    pub left_closed: bool,
    pub right_closed: bool,
}

impl Interval {
    pub fn contains(&self, x: f64) -> bool {
        let left = match self.left {
            None => true,
            Some(l) if self.left_closed => x >= l,
            Some(l) => x > l,
        };
        let right = match self.right {
            None => true,
            Some(r) if self.right_closed => x <= r,
            Some(r) => x < r,
        };
        left && right
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Usage {
    Active,
    Target,
    Other,
}

#[derive(Clone, Debug, PartialEq)]
/// `invalidValueTreatment`: returnInvalid, asIs, asMissing, asValue.
pub enum Invalid {
    Refuse,
    Keep,
    Missing,
    Replace(String),
}

#[derive(Debug)]
pub struct MiningField {
    pub name: Name,
    pub usage: Usage,
    pub replacement: Option<String>,
    pub invalid: Invalid,
    pub outliers: Outliers,
    pub low: Option<f64>,
    pub high: Option<f64>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Function {
    Classification,
    Regression,
    Clustering,
}

#[derive(Debug)]
pub enum Feature {
    PredictedValue,
    Probability(Option<String>),
    TransformedValue(Expr),
    EntityId,
    /// The reason code of this rank (1 is the first) of a scorecard.
    ReasonCode(usize),
}

#[derive(Debug)]
pub struct OutputField {
    pub name: Name,
    pub feature: Feature,
}

/// How a Target casts its value to an integer (`castInteger`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rounding {
    Round,
    Ceiling,
    Floor,
}

#[derive(Debug, Default)]
pub struct Target {
    pub factor: f64,
    pub constant: f64,
    pub min: Option<f64>,
    pub max: Option<f64>,
    pub cast: Option<Rounding>,
}

#[derive(Debug)]
pub struct ModelEl {
    pub element: &'static str,
    pub function: Function,
    pub fields: Vec<MiningField>,
    pub locals: Vec<Derived>,
    pub target: Option<Target>,
    pub outputs: Vec<OutputField>,
    pub kind: Kind,
}

#[derive(Debug)]
pub enum Kind {
    Regression(Regression),
    Tree(TreeModel),
    Mining(Segmentation),
    NaiveBayes(NaiveBayes),
    Clustering(Clustering),
    Neural(Neural),
    Svm(SvmModel),
    Scorecard(Scorecard),
    General(GeneralRegression),
}

#[derive(Debug)]
pub struct Attribute {
    pub predicate: Predicate,
    pub score: f64,
    /// Overrides its characteristic's reason code.
    pub reason: Option<String>,
}

#[derive(Debug)]
pub struct Characteristic {
    pub name: String,
    /// Its attributes in order: the first whose predicate holds scores.
    pub attributes: Vec<Attribute>,
    pub reason: Option<String>,
    /// The score reason codes measure from (the scorecard's when not given).
    pub baseline: Option<f64>,
}

#[derive(Debug)]
pub struct Scorecard {
    pub initial: f64,
    pub characteristics: Vec<Characteristic>,
    pub use_reason_codes: bool,
    /// `pointsAbove`: a characteristic's points are its score above the baseline; otherwise
    /// (`pointsBelow`, the default) below it.
    pub points_above: bool,
    pub baseline: Option<f64>,
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum GlmLink {
    Identity,
    Log,
    Logit,
    Probit,
    Cloglog,
    Loglog,
    Power(f64),
}

#[derive(Debug)]
pub struct GeneralRegression {
    /// `regression`, `generalLinear`, `generalizedLinear`, `multinomialLogistic` or
    /// `ordinalMultinomial`.
    pub model_type: String,
    /// A multinomial logistic model (`model_type`, decided once).
    pub multinomial: bool,
    /// The cumulative link of an ordinal model.
    pub cumulative: Option<Normalization>,
    /// A Cox regression's time variable, baseline hazards and reference points.
    pub cox: Option<Cox>,
    /// Per parameter, by index (the ParameterList's order): the cells whose product is its value (none: the intercept, 1).
    pub cells: Vec<Vec<Cell>>,
    /// (target category, parameter index, beta).
    pub betas: Vec<(Option<String>, usize, f64)>,
    pub link: GlmLink,
    pub offset: Option<f64>,
    pub offset_field: Option<Name>,
    pub target_reference: Option<String>,
}

/// A PPMatrix cell: a factor's level indicator, or a covariate to a power.
#[derive(Debug)]
pub enum Cell {
    Level { field: Name, level: String },
    Power { field: Name, exponent: f64 },
}

/// A baseline cumulative hazard table of a Cox model (one per stratum in a stratified model).
#[derive(Debug)]
pub struct Baseline {
    pub stratum: Option<String>,
    pub max_time: f64,
    /// (time, cumulative hazard), sorted by time.
    pub cells: Vec<(f64, f64)>,
}

/// A Cox proportional-hazards model's scoring data.
#[derive(Debug)]
pub struct Cox {
    pub end_time: Name,
    /// The field whose value picks the baseline stratum, if the model is stratified.
    pub strata: Option<Name>,
    pub baselines: Vec<Baseline>,
    /// Each parameter's reference point, by index (0 when not given).
    pub reference: Vec<f64>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Normalization {
    None,
    Softmax,
    Simplemax,
    Logit,
    Probit,
    Cloglog,
    Loglog,
    Cauchit,
    Exp,
}

#[derive(Debug)]
pub struct Regression {
    pub normalization: Normalization,
    pub tables: Vec<RegressionTable>,
}

#[derive(Debug)]
pub struct RegressionTable {
    pub intercept: f64,
    pub category: Option<String>,
    pub numeric: Vec<(Name, f64, i32)>,
    pub categorical: Vec<(Name, String, f64)>,
    pub terms: Vec<(Vec<Name>, f64)>,
}

/// A CompoundPredicate's operator.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BoolOp {
    And,
    Or,
    Xor,
    /// The first part that is not unknown.
    Surrogate,
}

#[derive(Debug)]
pub enum Predicate {
    True,
    False,
    Simple {
        field: Name,
        op: crate::func::SimpleOp,
        value: Option<String>,
        /// `value` as a number, parsed once.
        num: Option<f64>,
    },
    Set {
        field: Name,
        is_in: bool,
        values: Vec<String>,
    },
    Compound {
        op: BoolOp,
        parts: Vec<Predicate>,
    },
}

#[derive(Debug)]
pub struct TreeNode {
    pub id: Option<String>,
    pub score: Option<String>,
    pub predicate: Predicate,
    pub children: Vec<TreeNode>,
    /// `(category, probability)` from ScoreDistribution.
    pub distribution: Vec<(String, f64)>,
    /// `(category, record count)` from ScoreDistribution.
    pub counts: Vec<(String, f64)>,
    pub record_count: Option<f64>,
    pub default_child: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MissingStrategy {
    None,
    LastPrediction,
    NullPrediction,
    DefaultChild,
    /// Follow every child a missing value leaves open, weighted by its share of the records.
    WeightedConfidence,
    /// Follow every child a missing value leaves open, adding the leaves' record counts.
    AggregateNodes,
}

#[derive(Debug)]
pub struct TreeModel {
    pub root: TreeNode,
    pub missing: MissingStrategy,
    pub no_true_child_last: bool,
}

#[derive(Debug)]
pub struct Segment {
    pub predicate: Predicate,
    pub weight: f64,
    pub model: ModelEl,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SegmentationMethod {
    MajorityVote,
    WeightedMajorityVote,
    Average,
    WeightedAverage,
    Median,
    Max,
    Sum,
    WeightedSum,
    SelectFirst,
    ModelChain,
}

#[derive(Debug)]
pub struct Segmentation {
    pub method: SegmentationMethod,
    pub segments: Vec<Segment>,
    /// `returnMissing` (default) or `skipSegment`/`continue`.
    pub skip_missing: bool,
}

#[derive(Debug)]
pub enum BayesInput {
    Gaussian {
        field: Name,
        /// Per class, in the priors' order: mean and variance.
        stats: Vec<(f64, f64)>,
    },
    Discrete {
        field: Name,
        /// Per field value, in document order: its count for each class, in the priors' order.
        counts: Vec<(String, Vec<f64>)>,
        /// Per class: the counts of all the field's values, added.
        totals: Vec<f64>,
    },
}

#[derive(Debug)]
pub struct NaiveBayes {
    pub threshold: f64,
    pub inputs: Vec<BayesInput>,
    pub priors: Vec<(String, f64)>,
}

#[derive(Debug)]
pub struct Clustering {
    pub squared: bool,
    pub fields: Vec<Name>,
    pub centers: Vec<Vec<f64>>,
}

#[derive(Debug)]
pub struct Neuron {
    pub bias: f64,
    /// `(slot of the input or neuron it reads, weight)`.
    pub inputs: Vec<(usize, f64)>,
}

/// A neuron's activation function (`threshold` with its threshold).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Activation {
    Threshold(f64),
    Logistic,
    Tanh,
    Identity,
    Exponential,
    Reciprocal,
    Square,
    Gauss,
    Sine,
    Cosine,
    Elliott,
    Arctan,
    Rectifier,
}

/// How a layer's outputs are normalised.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LayerNorm {
    None,
    Softmax,
    Simplemax,
}

#[derive(Debug)]
pub struct NeuralLayer {
    pub activation: Activation,
    pub normalization: LayerNorm,
    pub neurons: Vec<Neuron>,
}

/// A network whose neurons were numbered when read: the inputs take slots `0..inputs.len()`,
/// then each layer's neurons in order, and connections name the slot they read.
#[derive(Debug)]
pub struct Neural {
    pub inputs: Vec<Expr>,
    pub layers: Vec<NeuralLayer>,
    /// `(slot of the output neuron, expression of the output)`.
    pub outputs: Vec<(usize, Expr)>,
    pub slots: usize,
}

#[derive(Debug)]
pub enum SvmKernel {
    Linear,
    Poly { gamma: f64, coef0: f64, degree: f64 },
    Rbf { gamma: f64 },
    Sigmoid { gamma: f64, coef0: f64 },
}

#[derive(Debug)]
pub struct Machine {
    pub target: Option<String>,
    pub alternate: Option<String>,
    pub threshold: Option<f64>,
    pub bias: f64,
    /// `(vector index, alpha)`.
    pub coefs: Vec<(usize, f64)>,
}

#[derive(Debug)]
pub struct SvmModel {
    pub kernel: SvmKernel,
    pub fields: Vec<Name>,
    pub vectors: Vec<Vec<f64>>,
    pub machines: Vec<Machine>,
    pub one_against_one: bool,
    pub threshold: f64,
}

/// A verification record set: input and expected output values by field name.
#[derive(Debug)]
pub struct Verification {
    pub fields: Vec<(String, f64, f64)>,
    pub rows: Vec<HashMap<String, String>>,
}

#[derive(Debug)]
pub struct Document {
    pub version: String,
    pub application: Option<String>,
    pub fields: Vec<DataField>,
    pub transforms: Vec<Derived>,
    /// DefineFunction: its name, parameters and body; calls name it by its index here.
    pub functions: Vec<(String, Vec<Name>, Expr)>,
    pub model: ModelEl,
    pub verification: Option<Verification>,
    /// Every field name the document mentions, by symbol.
    pub names: Vec<String>,
    /// By symbol: the field's index in `fields`, and its index in `transforms`.
    field_index: Vec<Option<usize>>,
    transform_index: Vec<Option<usize>>,
    /// By name, for callers outside the evaluator.
    syms: FastMap<String, Sym>,
}

impl Document {
    /// The data dictionary's field of this symbol.
    pub fn field(&self, sym: Sym) -> Option<&DataField> {
        self.field_index
            .get(sym.index())
            .copied()
            .flatten()
            .map(|i| &self.fields[i])
    }

    /// The transformation dictionary's derived field of this symbol.
    pub fn transform(&self, sym: Sym) -> Option<&Derived> {
        self.transform_index
            .get(sym.index())
            .copied()
            .flatten()
            .map(|i| &self.transforms[i])
    }

    /// The symbol of a field name the document mentions.
    pub fn sym(&self, name: &str) -> Option<Sym> {
        self.syms.get(name).copied()
    }

    /// The name of a symbol.
    pub fn name(&self, sym: Sym) -> &str {
        self.names.get(sym.index()).map_or("?", String::as_str)
    }
}

fn err(node: &Node, message: impl Into<String>) -> Error {
    Error::Malformed {
        format: "PMML",
        offset: node.range().start,
        message: message.into(),
    }
}

fn unsupported(node: &Node, what: impl std::fmt::Display) -> Error {
    Error::Unsupported(format!(
        "PMML {what} (element <{}> at byte {}) is not supported",
        node.tag_name().name(),
        node.range().start
    ))
}

fn name<'a>(n: &Node<'a, '_>) -> &'a str {
    n.tag_name().name()
}

fn kids<'a, 'i>(n: &Node<'a, 'i>) -> impl Iterator<Item = Node<'a, 'i>> {
    n.children()
        .filter(|c| c.is_element() && name(c) != "Extension")
}

fn child<'a, 'i>(n: &Node<'a, 'i>, tag: &str) -> Option<Node<'a, 'i>> {
    kids(n).find(|c| name(c) == tag)
}

fn attr<'a>(n: &Node<'a, '_>, a: &str) -> Option<&'a str> {
    n.attribute(a)
}

fn req<'a>(n: &Node<'a, '_>, a: &str) -> Result<&'a str> {
    attr(n, a).ok_or_else(|| err(n, format!("<{}> needs the attribute {a}", name(n))))
}

fn num(n: &Node, a: &str) -> Result<Option<f64>> {
    match attr(n, a) {
        None => Ok(None),
        Some(s) => parse_f64(s)
            .map(Some)
            .ok_or_else(|| err(n, format!("{a}={s:?} is not a number"))),
    }
}

fn num_or(n: &Node, a: &str, default: f64) -> Result<f64> {
    Ok(num(n, a)?.unwrap_or(default))
}

/// PMML numbers, with the spellings of infinity and NaN that writers use.
pub fn parse_f64(s: &str) -> Option<f64> {
    let t = s.trim();
    match t {
        "INF" | "Infinity" | "+INF" => Some(f64::INFINITY),
        "-INF" | "-Infinity" => Some(f64::NEG_INFINITY),
        "NaN" => Some(f64::NAN),
        _ => t.parse().ok(),
    }
}

/// Reads a document.
pub fn parse(text: &str) -> Result<Document> {
    let opts = roxmltree::ParsingOptions {
        allow_dtd: false,
        nodes_limit: MAX_NODES,
        ..roxmltree::ParsingOptions::default()
    };
    let doc =
        roxmltree::Document::parse_with_options(text, opts).map_err(|e| Error::Malformed {
            format: "PMML",
            offset: e.pos().row as usize,
            message: format!("malformed XML: {e}"),
        })?;
    let root = doc.root_element();
    if name(&root) != "PMML" {
        return Err(err(
            &root,
            format!("the root element is <{}>, not <PMML>", name(&root)),
        ));
    }
    let version = attr(&root, "version").unwrap_or("").to_string();
    if !version.starts_with("4.") && !version.starts_with("3.") {
        return Err(Error::Unsupported(format!(
            "PMML version {version:?} (mlship reads PMML 3.x and 4.x)"
        )));
    }
    let application = child(&root, "Header")
        .and_then(|h| child(&h, "Application"))
        .map(|a| {
            format!(
                "{} {}",
                attr(&a, "name").unwrap_or("?"),
                attr(&a, "version").unwrap_or("")
            )
            .trim()
            .to_string()
        });
    let dd = child(&root, "DataDictionary").ok_or_else(|| err(&root, "no <DataDictionary>"))?;
    let mut cx = Cx::default();
    let mut fields = Vec::new();
    for f in kids(&dd).filter(|c| name(c) == "DataField") {
        fields.push(data_field(&mut cx, &f)?);
    }
    // The functions a document defines are known before any expression calls one.
    let mut defines = Vec::new();
    if let Some(t) = child(&root, "TransformationDictionary") {
        defines.extend(kids(&t).filter(|c| name(c) == "DefineFunction"));
    }
    // Of two functions of one name, the last one counts.
    for (i, f) in defines.iter().enumerate() {
        cx.functions.insert(req(f, "name")?.to_string(), i);
    }
    check_calls(&root, &cx.functions, &defines)?;
    let transforms = match child(&root, "TransformationDictionary") {
        Some(t) => derived_fields(&mut cx, &t, 0)?,
        None => Vec::new(),
    };
    let mut functions = Vec::with_capacity(defines.len());
    for f in &defines {
        let params = kids(f)
            .filter(|c| name(c) == "ParameterField")
            .map(|c| cx.req_name(&c, "name"))
            .collect::<Result<Vec<_>>>()?;
        let body = kids(f)
            .find(|c| name(c) != "ParameterField")
            .ok_or_else(|| err(f, "a DefineFunction without a body"))?;
        functions.push((
            req(f, "name")?.to_string(),
            params,
            expr(&mut cx, &body, 1)?,
        ));
    }
    let mut models = kids(&root).filter(|c| is_model(name(c)));
    let m = models.next().ok_or_else(|| {
        err(
            &root,
            "no model element (RegressionModel, TreeModel, MiningModel, …)",
        )
    })?;
    let model = model(&mut cx, &m, 0)?;
    let verification = match child(&m, "ModelVerification") {
        Some(v) => Some(verification(&v)?),
        None => None,
    };
    // The first of two fields of one name wins, as a linear search would find it.
    let mut field_index = vec![None; cx.names.len()];
    for (i, f) in fields.iter().enumerate() {
        field_index[f.name.sym.index()].get_or_insert(i);
    }
    let mut transform_index = vec![None; cx.names.len()];
    for (i, d) in transforms.iter().enumerate() {
        transform_index[d.name.sym.index()].get_or_insert(i);
    }
    Ok(Document {
        version,
        application,
        fields,
        transforms,
        functions,
        model,
        verification,
        names: cx.names,
        field_index,
        transform_index,
        syms: cx.syms,
    })
}

const MODELS: &[&str] = &[
    "RegressionModel",
    "TreeModel",
    "MiningModel",
    "NaiveBayesModel",
    "ClusteringModel",
    "NeuralNetwork",
    "SupportVectorMachineModel",
    "GeneralRegressionModel",
    "Scorecard",
    "RuleSetModel",
    "AssociationModel",
    "SequenceModel",
    "TextModel",
    "TimeSeriesModel",
    "BaselineModel",
    "BayesianNetworkModel",
    "GaussianProcessModel",
    "NearestNeighborModel",
    "AnomalyDetectionModel",
];

fn is_model(tag: &str) -> bool {
    MODELS.contains(&tag)
}

fn data_type(n: &Node, s: Option<&str>) -> Result<DataType> {
    Ok(match s.unwrap_or("double") {
        "double" => DataType::Double,
        "float" => DataType::Float,
        "integer" => DataType::Integer,
        "string" => DataType::String,
        "boolean" => DataType::Boolean,
        other => return Err(unsupported(n, format!("dataType {other:?}"))),
    })
}

fn op_type(n: &Node, s: Option<&str>, dtype: DataType) -> Result<OpType> {
    Ok(match s {
        Some("continuous") => OpType::Continuous,
        Some("categorical") => OpType::Categorical,
        Some("ordinal") => OpType::Ordinal,
        None if matches!(dtype, DataType::String | DataType::Boolean) => OpType::Categorical,
        None => OpType::Continuous,
        Some(other) => return Err(err(n, format!("optype {other:?}"))),
    })
}

fn data_field(cx: &mut Cx, f: &Node) -> Result<DataField> {
    let dtype = data_type(f, attr(f, "dataType"))?;
    let optype = op_type(f, attr(f, "optype"), dtype)?;
    let mut values = Vec::new();
    for v in kids(f).filter(|c| name(c) == "Value") {
        let prop = attr(&v, "property").unwrap_or("valid");
        if prop == "valid" {
            values.push(req(&v, "value")?.to_string());
        }
    }
    Ok(DataField {
        name: cx.req_name(f, "name")?,
        optype,
        dtype,
        values,
    })
}

fn derived_fields(cx: &mut Cx, parent: &Node, depth: usize) -> Result<Vec<Derived>> {
    let mut out = Vec::new();
    for d in kids(parent) {
        match name(&d) {
            "DerivedField" => out.push(Derived {
                name: cx.req_name(&d, "name")?,
                dtype: data_type(&d, attr(&d, "dataType"))?,
                expr: expr_in(cx, &d, depth + 1)?,
            }),
            // Read by `functions`; only the TransformationDictionary may hold them.
            "DefineFunction" if depth == 0 && name(parent) == "TransformationDictionary" => {}
            other => return Err(unsupported(&d, format!("<{other}> in transformations"))),
        }
    }
    Ok(out)
}

/// The one expression inside an element (DerivedField, OutputField, NeuralInput's field).
fn expr_in(cx: &mut Cx, n: &Node, depth: usize) -> Result<Expr> {
    let e = kids(n)
        .find(|c| !matches!(name(c), "Value" | "Interval"))
        .ok_or_else(|| err(n, format!("<{}> holds no expression", name(n))))?;
    expr(cx, &e, depth)
}

fn value_of(s: &str) -> Value {
    match parse_f64(s) {
        Some(v) => Value::Num(v),
        None => Value::Str(s.to_string()),
    }
}

fn expr(cx: &mut Cx, e: &Node, depth: usize) -> Result<Expr> {
    if depth > MAX_DEPTH {
        return Err(Error::Limit(format!(
            "PMML expressions nested deeper than {MAX_DEPTH}"
        )));
    }
    let map_missing = attr(e, "mapMissingTo");
    Ok(match name(e) {
        "Constant" => {
            let text = e.text().unwrap_or("").trim();
            if attr(e, "missing") == Some("true") {
                Expr::Constant(Value::Missing)
            } else {
                match attr(e, "dataType") {
                    Some("string") => Expr::Constant(Value::Str(text.to_string())),
                    Some("boolean") => Expr::Constant(Value::Bool(text == "true")),
                    _ => Expr::Constant(value_of(text)),
                }
            }
        }
        "FieldRef" => Expr::FieldRef {
            field: cx.req_name(e, "field")?,
            map_missing: map_missing.map(value_of),
        },
        "NormContinuous" => {
            let mut points = Vec::new();
            for p in kids(e).filter(|c| name(c) == "LinearNorm") {
                points.push((
                    num(&p, "orig")?.ok_or_else(|| err(&p, "LinearNorm needs orig"))?,
                    num(&p, "norm")?.ok_or_else(|| err(&p, "LinearNorm needs norm"))?,
                ));
            }
            if points.len() < 2 {
                return Err(err(e, "NormContinuous needs two LinearNorm points"));
            }
            Expr::NormContinuous {
                field: cx.req_name(e, "field")?,
                points,
                outliers: outliers(e, attr(e, "outliers"))?,
                map_missing: num(e, "mapMissingTo")?,
            }
        }
        "NormDiscrete" => Expr::NormDiscrete {
            field: cx.req_name(e, "field")?,
            value: req(e, "value")?.to_string(),
            map_missing: num(e, "mapMissingTo")?,
        },
        "Discretize" => {
            let mut bins = Vec::new();
            for b in kids(e).filter(|c| name(c) == "DiscretizeBin") {
                let i = child(&b, "Interval")
                    .ok_or_else(|| err(&b, "DiscretizeBin needs an Interval"))?;
                bins.push((interval(&i)?, req(&b, "binValue")?.to_string()));
            }
            Expr::Discretize {
                field: cx.req_name(e, "field")?,
                bins,
                default: attr(e, "defaultValue").map(str::to_string),
                map_missing: map_missing.map(str::to_string),
            }
        }
        "MapValues" => {
            // Columns are InlineTable cells, named by their element's local name (a column
            // `data:input` is the cell `<data:input>`).
            let local = |c: &str| c.rsplit(':').next().unwrap_or(c).to_string();
            let mut inputs = Vec::new();
            let mut columns = Vec::new();
            for p in kids(e).filter(|c| name(c) == "FieldColumnPair") {
                inputs.push(cx.req_name(&p, "field")?);
                columns.push(local(req(&p, "column")?));
            }
            columns.push(local(req(e, "outputColumn")?));
            let table = child(e, "InlineTable")
                .ok_or_else(|| unsupported(e, "MapValues without an InlineTable"))?;
            let rows = inline_table(&table)
                .iter()
                .map(|r| columns.iter().map(|c| r.get(c).cloned()).collect())
                .collect();
            Expr::MapValues {
                inputs,
                rows,
                default: attr(e, "defaultValue").map(str::to_string),
                map_missing: map_missing.map(str::to_string),
            }
        }
        "Apply" => {
            let mut args = Vec::new();
            for a in kids(e) {
                args.push(expr(cx, &a, depth + 1)?);
            }
            if let Some(t) = attr(e, "invalidValueTreatment") {
                if t != "returnInvalid" {
                    return Err(unsupported(e, format!("Apply invalidValueTreatment={t:?}")));
                }
            }
            let function = req(e, "function")?;
            Expr::Apply {
                call: match (
                    crate::func::Builtin::parse(function),
                    cx.functions.get(function),
                ) {
                    (Some(b), _) => crate::func::Call::Builtin(b),
                    (None, Some(&i)) => crate::func::Call::Defined(i),
                    (None, None) => {
                        return Err(unsupported(e, format!("the function {function:?}")));
                    }
                },
                args,
                map_missing: map_missing.map(value_of),
                default: attr(e, "defaultValue").map(value_of),
            }
        }
        other => return Err(unsupported(e, format!("the expression <{other}>"))),
    })
}

/// Every `<Apply>` in the document calls a built-in function or one the document defines, with a
/// number of arguments it takes: a document that would fail on its first row is refused here.
fn check_calls(root: &Node, functions: &FastMap<String, usize>, defines: &[Node]) -> Result<()> {
    for a in root
        .descendants()
        .filter(|d| d.is_element() && name(d) == "Apply")
    {
        let f = req(&a, "function")?;
        let got = kids(&a).count();
        let (least, most) = match crate::func::Builtin::parse(f) {
            // A built-in is what its name calls; a document may not redefine one.
            Some(_) if functions.contains_key(f) => {
                return Err(unsupported(
                    &a,
                    format!("a DefineFunction named like the built-in function {f:?}"),
                ));
            }
            Some(b) => b.arity(),
            None => match functions.get(f) {
                Some(&i) => {
                    let n = kids(&defines[i])
                        .filter(|c| name(c) == "ParameterField")
                        .count();
                    (n, Some(n))
                }
                None => return Err(unsupported(&a, format!("the function {f:?}"))),
            },
        };
        if got < least || most.is_some_and(|m| got > m) {
            let takes = match most {
                Some(m) if m == least => format!("{least}"),
                Some(m) => format!("{least} to {m}"),
                None => format!("at least {least}"),
            };
            return Err(err(
                &a,
                format!("the function {f:?} takes {takes} arguments, this call gives {got}"),
            ));
        }
    }
    Ok(())
}

fn outliers(n: &Node, s: Option<&str>) -> Result<Outliers> {
    Ok(match s.unwrap_or("asIs") {
        "asIs" => Outliers::Keep,
        "asMissingValues" => Outliers::Missing,
        "asExtremeValues" => Outliers::Extreme,
        other => return Err(err(n, format!("outliers={other:?}"))),
    })
}

fn interval(i: &Node) -> Result<Interval> {
    let closure = attr(i, "closure").unwrap_or("closedClosed");
    let (left_closed, right_closed) = match closure {
        "openClosed" => (false, true),
        "openOpen" => (false, false),
        "closedOpen" => (true, false),
        "closedClosed" => (true, true),
        other => return Err(err(i, format!("closure={other:?}"))),
    };
    Ok(Interval {
        left: num(i, "leftMargin")?,
        right: num(i, "rightMargin")?,
        left_closed,
        right_closed,
    })
}

/// Rows of an InlineTable: column name (the element's local name) to text.
fn inline_table(t: &Node) -> Vec<HashMap<String, String>> {
    kids(t)
        .filter(|r| name(r) == "row")
        .map(|r| {
            kids(&r)
                .map(|c| {
                    (
                        name(&c).to_string(),
                        c.text().unwrap_or("").trim().to_string(),
                    )
                })
                .collect()
        })
        .collect()
}

fn function(n: &Node) -> Result<Function> {
    Ok(match req(n, "functionName")? {
        "classification" => Function::Classification,
        "regression" => Function::Regression,
        "clustering" => Function::Clustering,
        other => return Err(unsupported(n, format!("functionName={other:?}"))),
    })
}

fn model(cx: &mut Cx, m: &Node, depth: usize) -> Result<ModelEl> {
    if depth > 64 {
        return Err(Error::Limit("PMML segments nested deeper than 64".into()));
    }
    let element: &'static str = MODELS
        .iter()
        .find(|t| **t == name(m))
        .copied()
        .unwrap_or("model");
    if attr(m, "isScorable") == Some("false") {
        return Err(Error::Unsupported(format!(
            "the PMML {element} says it is not scorable (isScorable=\"false\")"
        )));
    }
    let function = function(m)?;
    let schema = child(m, "MiningSchema").ok_or_else(|| err(m, "no <MiningSchema>"))?;
    let mut fields = Vec::new();
    for f in kids(&schema).filter(|c| name(c) == "MiningField") {
        fields.push(mining_field(cx, &f)?);
    }
    let locals = match child(m, "LocalTransformations") {
        Some(t) => derived_fields(cx, &t, 0)?,
        None => Vec::new(),
    };
    let target = match child(m, "Targets") {
        Some(t) => target(&t)?,
        None => None,
    };
    let mut outputs = Vec::new();
    if let Some(o) = child(m, "Output") {
        for f in kids(&o).filter(|c| name(c) == "OutputField") {
            outputs.push(output_field(cx, &f)?);
        }
    }
    const COMMON: &[&str] = &[
        "MiningSchema",
        "Output",
        "ModelStats",
        "ModelExplanation",
        "Targets",
        "LocalTransformations",
        "ModelVerification",
    ];
    let own: &[&str] = match element {
        "RegressionModel" => &["RegressionTable"],
        "TreeModel" => &["Node"],
        "MiningModel" => &["Segmentation"],
        "NaiveBayesModel" => &["BayesInputs", "BayesOutput"],
        "ClusteringModel" => &[
            "ComparisonMeasure",
            "ClusteringField",
            "MissingValueWeights",
            "Cluster",
        ],
        "NeuralNetwork" => &["NeuralInputs", "NeuralLayer", "NeuralOutputs"],
        "Scorecard" => &["Characteristics"],
        "GeneralRegressionModel" => &[
            "ParameterList",
            "FactorList",
            "CovariateList",
            "PPMatrix",
            "PCovMatrix",
            "ParamMatrix",
            "EventValues",
            "BaseCumHazardTables",
        ],
        "SupportVectorMachineModel" => &[
            "LinearKernelType",
            "PolynomialKernelType",
            "RadialBasisKernelType",
            "SigmoidKernelType",
            "VectorDictionary",
            "SupportVectorMachine",
        ],
        _ => &[],
    };
    if let Some(c) = kids(m).find(|c| !COMMON.contains(&name(c)) && !own.contains(&name(c))) {
        return Err(unsupported(&c, format!("<{}> in a {element}", name(&c))));
    }
    let kind = match element {
        "RegressionModel" => Kind::Regression(regression(cx, m)?),
        "TreeModel" => Kind::Tree(tree_model(cx, m)?),
        "MiningModel" => Kind::Mining(segmentation(cx, m, depth)?),
        "NaiveBayesModel" => Kind::NaiveBayes(naive_bayes(cx, m)?),
        "ClusteringModel" => Kind::Clustering(clustering(cx, m)?),
        "NeuralNetwork" => Kind::Neural(neural(cx, m)?),
        "SupportVectorMachineModel" => Kind::Svm(svm(cx, m)?),
        "Scorecard" => Kind::Scorecard(scorecard(cx, m)?),
        "GeneralRegressionModel" => Kind::General(general_regression(cx, m)?),
        other => return Err(unsupported(m, format!("the model {other}"))),
    };
    Ok(ModelEl {
        element,
        function,
        fields,
        locals,
        target,
        outputs,
        kind,
    })
}

fn mining_field(cx: &mut Cx, f: &Node) -> Result<MiningField> {
    let usage = match attr(f, "usageType").unwrap_or("active") {
        "active" => Usage::Active,
        "target" | "predicted" => Usage::Target,
        _ => Usage::Other,
    };
    let invalid = match attr(f, "invalidValueTreatment").unwrap_or("returnInvalid") {
        "returnInvalid" => Invalid::Refuse,
        "asIs" => Invalid::Keep,
        "asMissing" => Invalid::Missing,
        "asValue" => Invalid::Replace(
            attr(f, "invalidValueReplacement")
                .ok_or_else(|| err(f, "asValue needs invalidValueReplacement"))?
                .to_string(),
        ),
        other => return Err(err(f, format!("invalidValueTreatment={other:?}"))),
    };
    Ok(MiningField {
        name: cx.req_name(f, "name")?,
        usage,
        replacement: attr(f, "missingValueReplacement").map(str::to_string),
        invalid,
        outliers: outliers(f, attr(f, "outliers"))?,
        low: num(f, "lowValue")?,
        high: num(f, "highValue")?,
    })
}

fn target(t: &Node) -> Result<Option<Target>> {
    let Some(x) = kids(t).find(|c| name(c) == "Target") else {
        return Ok(None);
    };
    Ok(Some(Target {
        factor: num_or(&x, "rescaleFactor", 1.0)?,
        constant: num_or(&x, "rescaleConstant", 0.0)?,
        min: num(&x, "min")?,
        max: num(&x, "max")?,
        cast: match attr(&x, "castInteger") {
            None => None,
            Some("round") => Some(Rounding::Round),
            Some("ceiling") => Some(Rounding::Ceiling),
            Some("floor") => Some(Rounding::Floor),
            Some(other) => return Err(unsupported(&x, format!("castInteger={other:?}"))),
        },
    }))
}

fn output_field(cx: &mut Cx, f: &Node) -> Result<OutputField> {
    let feature = match attr(f, "feature").unwrap_or("predictedValue") {
        "predictedValue" | "predictedDisplayValue" => Feature::PredictedValue,
        "probability" => Feature::Probability(attr(f, "value").map(str::to_string)),
        "transformedValue" => Feature::TransformedValue(expr_in(cx, f, 0)?),
        "entityId" => Feature::EntityId,
        "reasonCode" => Feature::ReasonCode(
            num_or(f, "rank", 1.0)?
                .to_string()
                .parse::<usize>()
                .ok()
                .filter(|r| *r >= 1)
                .ok_or_else(|| err(f, "a reason code's rank must be a whole number from 1"))?,
        ),
        // Other features (reason codes, rule values, …) are not read by any model we evaluate.
        _ => Feature::PredictedValue,
    };
    Ok(OutputField {
        name: cx.req_name(f, "name")?,
        feature,
    })
}

fn normalization(n: &Node) -> Result<Normalization> {
    Ok(match attr(n, "normalizationMethod").unwrap_or("none") {
        "none" => Normalization::None,
        "softmax" => Normalization::Softmax,
        "simplemax" => Normalization::Simplemax,
        "logit" => Normalization::Logit,
        "probit" => Normalization::Probit,
        "cloglog" => Normalization::Cloglog,
        "loglog" => Normalization::Loglog,
        "cauchit" => Normalization::Cauchit,
        "exp" => Normalization::Exp,
        other => return Err(unsupported(n, format!("normalizationMethod={other:?}"))),
    })
}

fn regression(cx: &mut Cx, m: &Node) -> Result<Regression> {
    let mut tables = Vec::new();
    for t in kids(m).filter(|c| name(c) == "RegressionTable") {
        let mut numeric = Vec::new();
        let mut categorical = Vec::new();
        let mut terms = Vec::new();
        for p in kids(&t) {
            match name(&p) {
                "NumericPredictor" => numeric.push((
                    cx.req_name(&p, "name")?,
                    num(&p, "coefficient")?.ok_or_else(|| err(&p, "no coefficient"))?,
                    num_or(&p, "exponent", 1.0)? as i32,
                )),
                "CategoricalPredictor" => categorical.push((
                    cx.req_name(&p, "name")?,
                    req(&p, "value")?.to_string(),
                    num(&p, "coefficient")?.ok_or_else(|| err(&p, "no coefficient"))?,
                )),
                "PredictorTerm" => {
                    let refs = kids(&p)
                        .filter(|c| name(c) == "FieldRef")
                        .map(|c| cx.req_name(&c, "field"))
                        .collect::<Result<Vec<_>>>()?;
                    terms.push((
                        refs,
                        num(&p, "coefficient")?.ok_or_else(|| err(&p, "no coefficient"))?,
                    ));
                }
                other => return Err(unsupported(&p, format!("<{other}> in a RegressionTable"))),
            }
        }
        tables.push(RegressionTable {
            intercept: num_or(&t, "intercept", 0.0)?,
            category: attr(&t, "targetCategory").map(str::to_string),
            numeric,
            categorical,
            terms,
        });
    }
    if tables.is_empty() {
        return Err(err(m, "a RegressionModel without a RegressionTable"));
    }
    Ok(Regression {
        normalization: normalization(m)?,
        tables,
    })
}

fn predicate(cx: &mut Cx, n: &Node, depth: usize) -> Result<Predicate> {
    if depth > MAX_DEPTH {
        return Err(Error::Limit(format!(
            "PMML predicates nested deeper than {MAX_DEPTH}"
        )));
    }
    Ok(match name(n) {
        "True" => Predicate::True,
        "False" => Predicate::False,
        "SimplePredicate" => Predicate::Simple {
            field: cx.req_name(n, "field")?,
            op: {
                let op = req(n, "operator")?;
                crate::func::SimpleOp::parse(op)
                    .ok_or_else(|| unsupported(n, format!("the SimplePredicate operator {op:?}")))?
            },
            value: attr(n, "value").map(str::to_string),
            num: attr(n, "value").and_then(parse_f64),
        },
        "SimpleSetPredicate" => {
            let arr =
                child(n, "Array").ok_or_else(|| err(n, "SimpleSetPredicate needs an Array"))?;
            Predicate::Set {
                field: cx.req_name(n, "field")?,
                is_in: match req(n, "booleanOperator")? {
                    "isIn" => true,
                    "isNotIn" => false,
                    other => return Err(err(n, format!("booleanOperator={other:?}"))),
                },
                values: array_strings(&arr),
            }
        }
        "CompoundPredicate" => {
            let op = match req(n, "booleanOperator")? {
                "and" => BoolOp::And,
                "or" => BoolOp::Or,
                "xor" => BoolOp::Xor,
                "surrogate" => BoolOp::Surrogate,
                other => return Err(err(n, format!("booleanOperator={other:?}"))),
            };
            let parts = kids(n)
                .map(|c| predicate(cx, &c, depth + 1))
                .collect::<Result<Vec<_>>>()?;
            Predicate::Compound { op, parts }
        }
        other => return Err(unsupported(n, format!("the predicate <{other}>"))),
    })
}

fn is_predicate(tag: &str) -> bool {
    matches!(
        tag,
        "True" | "False" | "SimplePredicate" | "SimpleSetPredicate" | "CompoundPredicate"
    )
}

fn first_predicate(cx: &mut Cx, n: &Node) -> Result<Predicate> {
    match kids(n).find(|c| is_predicate(name(c))) {
        Some(p) => predicate(cx, &p, 0),
        None => Err(err(n, format!("<{}> has no predicate", name(n)))),
    }
}

/// The items of an `<Array>`: space separated, with double quotes around items that hold spaces.
fn array_strings(a: &Node) -> Vec<String> {
    let text = a.text().unwrap_or("");
    let mut out = Vec::new();
    let mut chars = text.chars().peekable();
    while let Some(&c) = chars.peek() {
        if c.is_whitespace() {
            chars.next();
            continue;
        }
        let mut item = String::new();
        if c == '"' {
            chars.next();
            while let Some(c) = chars.next() {
                match c {
                    '\\' => {
                        if let Some(n) = chars.next() {
                            item.push(n);
                        }
                    }
                    '"' => break,
                    c => item.push(c),
                }
            }
        } else {
            while let Some(&c) = chars.peek() {
                if c.is_whitespace() {
                    break;
                }
                item.push(c);
                chars.next();
            }
        }
        out.push(item);
    }
    out
}

fn array_numbers(a: &Node) -> Result<Vec<f64>> {
    array_strings(a)
        .iter()
        .map(|s| parse_f64(s).ok_or_else(|| err(a, format!("{s:?} is not a number"))))
        .collect()
}

fn tree_node(cx: &mut Cx, n: &Node, depth: usize) -> Result<TreeNode> {
    if depth > MAX_DEPTH {
        return Err(Error::Limit(format!("PMML trees deeper than {MAX_DEPTH}")));
    }
    let mut children = Vec::new();
    let mut scores: Vec<(String, f64, Option<f64>)> = Vec::new();
    for c in kids(n) {
        match name(&c) {
            "Node" => children.push(tree_node(cx, &c, depth + 1)?),
            "ScoreDistribution" => {
                let value = req(&c, "value")?.to_string();
                let count = num(&c, "recordCount")?.ok_or_else(|| err(&c, "no recordCount"))?;
                scores.push((value, count, num(&c, "probability")?));
            }
            t if is_predicate(t) => {}
            other => return Err(unsupported(&c, format!("<{other}> in a tree node"))),
        }
    }
    // Probabilities as written, else record counts over their total.
    let total: f64 = scores.iter().map(|(_, c, _)| c).sum();
    let counts = scores.iter().map(|(v, c, _)| (v.clone(), *c)).collect();
    let distribution = scores
        .into_iter()
        .map(|(v, c, p)| {
            let p = p.unwrap_or(if total > 0.0 { c / total } else { 0.0 });
            (v, p)
        })
        .collect();
    Ok(TreeNode {
        id: attr(n, "id").map(str::to_string),
        score: attr(n, "score").map(str::to_string),
        predicate: first_predicate(cx, n)?,
        children,
        distribution,
        counts,
        record_count: num(n, "recordCount")?,
        default_child: attr(n, "defaultChild").map(str::to_string),
    })
}

fn tree_model(cx: &mut Cx, m: &Node) -> Result<TreeModel> {
    let missing = match attr(m, "missingValueStrategy").unwrap_or("none") {
        "none" => MissingStrategy::None,
        "lastPrediction" => MissingStrategy::LastPrediction,
        "nullPrediction" => MissingStrategy::NullPrediction,
        "defaultChild" => MissingStrategy::DefaultChild,
        "weightedConfidence" => MissingStrategy::WeightedConfidence,
        "aggregateNodes" => MissingStrategy::AggregateNodes,
        other => return Err(unsupported(m, format!("missingValueStrategy={other:?}"))),
    };
    let no_true_child_last = match attr(m, "noTrueChildStrategy").unwrap_or("returnNullPrediction")
    {
        "returnNullPrediction" => false,
        "returnLastPrediction" => true,
        other => return Err(err(m, format!("noTrueChildStrategy={other:?}"))),
    };
    let root = child(m, "Node").ok_or_else(|| err(m, "a TreeModel without a Node"))?;
    Ok(TreeModel {
        root: tree_node(cx, &root, 0)?,
        missing,
        no_true_child_last,
    })
}

fn segmentation(cx: &mut Cx, m: &Node, depth: usize) -> Result<Segmentation> {
    let s =
        child(m, "Segmentation").ok_or_else(|| err(m, "a MiningModel without a Segmentation"))?;
    use SegmentationMethod as S;
    let method = match req(&s, "multipleModelMethod")? {
        "majorityVote" => S::MajorityVote,
        "weightedMajorityVote" => S::WeightedMajorityVote,
        "average" => S::Average,
        "weightedAverage" => S::WeightedAverage,
        "median" => S::Median,
        "max" => S::Max,
        "sum" => S::Sum,
        "weightedSum" => S::WeightedSum,
        "selectFirst" => S::SelectFirst,
        "modelChain" => S::ModelChain,
        "selectAll" => {
            return Err(unsupported(
                &s,
                "multipleModelMethod=\"selectAll\", whose answer is a list of every segment's result for each row (mlship gives one prediction per row)",
            ));
        }
        other => return Err(unsupported(&s, format!("multipleModelMethod={other:?}"))),
    };
    let skip_missing = matches!(
        attr(&s, "missingPredictionTreatment"),
        Some("skipSegment" | "continue")
    );
    let mut segments = Vec::new();
    for seg in kids(&s).filter(|c| name(c) == "Segment") {
        let inner = kids(&seg)
            .find(|c| is_model(name(c)))
            .ok_or_else(|| err(&seg, "a Segment without a model"))?;
        segments.push(Segment {
            predicate: first_predicate(cx, &seg)?,
            weight: num_or(&seg, "weight", 1.0)?,
            model: model(cx, &inner, depth + 1)?,
        });
    }
    Ok(Segmentation {
        method,
        segments,
        skip_missing,
    })
}

fn naive_bayes(cx: &mut Cx, m: &Node) -> Result<NaiveBayes> {
    let threshold = num_or(m, "threshold", 0.0)?;
    let bo = child(m, "BayesOutput").ok_or_else(|| err(m, "no BayesOutput"))?;
    let tvc = child(&bo, "TargetValueCounts").ok_or_else(|| err(&bo, "no TargetValueCounts"))?;
    let mut priors = Vec::new();
    for c in kids(&tvc).filter(|c| name(c) == "TargetValueCount") {
        priors.push((
            req(&c, "value")?.to_string(),
            num(&c, "count")?.ok_or_else(|| err(&c, "no count"))?,
        ));
    }
    let mut inputs = Vec::new();
    let bi = child(m, "BayesInputs").ok_or_else(|| err(m, "no BayesInputs"))?;
    for b in kids(&bi).filter(|c| name(c) == "BayesInput") {
        let field = cx.req_name(&b, "fieldName")?;
        if let Some(stats) = child(&b, "TargetValueStats") {
            // Of two statistics for one class, the last counts.
            let mut by_class = HashMap::new();
            for s in kids(&stats).filter(|c| name(c) == "TargetValueStat") {
                let g = child(&s, "GaussianDistribution").ok_or_else(|| {
                    unsupported(&s, "a TargetValueStat other than GaussianDistribution")
                })?;
                by_class.insert(
                    req(&s, "value")?,
                    (
                        num(&g, "mean")?.ok_or_else(|| err(&g, "no mean"))?,
                        num(&g, "variance")?.ok_or_else(|| err(&g, "no variance"))?,
                    ),
                );
            }
            let stats = priors
                .iter()
                .map(|(cat, _)| {
                    by_class.get(cat.as_str()).copied().ok_or_else(|| {
                        err(&b, format!("no statistics of {field:?} for class {cat:?}"))
                    })
                })
                .collect::<Result<_>>()?;
            inputs.push(BayesInput::Gaussian { field, stats });
        } else {
            if child(&b, "DerivedField").is_some() {
                return Err(unsupported(&b, "a BayesInput with a DerivedField"));
            }
            // Of two counts for one value, the last counts.
            let mut counts: Vec<(String, Vec<f64>)> = Vec::new();
            for p in kids(&b).filter(|c| name(c) == "PairCounts") {
                let value = req(&p, "value")?.to_string();
                let row = target_counts(&p)?;
                let row = priors
                    .iter()
                    .map(|(cat, _)| row.get(cat).copied().unwrap_or(0.0))
                    .collect();
                match counts.iter_mut().find(|(v, _)| *v == value) {
                    Some(at) => at.1 = row,
                    None => counts.push((value, row)),
                }
            }
            let totals = (0..priors.len())
                .map(|k| counts.iter().map(|(_, row)| row[k]).sum())
                .collect();
            inputs.push(BayesInput::Discrete {
                field,
                counts,
                totals,
            });
        }
    }
    Ok(NaiveBayes {
        threshold,
        inputs,
        priors,
    })
}

fn target_counts(p: &Node) -> Result<HashMap<String, f64>> {
    let tvc = child(p, "TargetValueCounts").ok_or_else(|| err(p, "no TargetValueCounts"))?;
    let mut out = HashMap::new();
    for c in kids(&tvc).filter(|c| name(c) == "TargetValueCount") {
        out.insert(
            req(&c, "value")?.to_string(),
            num(&c, "count")?.ok_or_else(|| err(&c, "no count"))?,
        );
    }
    Ok(out)
}

fn clustering(cx: &mut Cx, m: &Node) -> Result<Clustering> {
    if attr(m, "modelClass") == Some("distributionBased") {
        return Err(unsupported(m, "a distribution-based ClusteringModel"));
    }
    let cm = child(m, "ComparisonMeasure").ok_or_else(|| err(m, "no ComparisonMeasure"))?;
    if attr(&cm, "kind") == Some("similarity") {
        return Err(unsupported(&cm, "a similarity ComparisonMeasure"));
    }
    let measure = kids(&cm).next().ok_or_else(|| err(&cm, "no measure"))?;
    let squared = match name(&measure) {
        "squaredEuclidean" => true,
        "euclidean" => false,
        other => return Err(unsupported(&measure, format!("the measure {other}"))),
    };
    let mut fields = Vec::new();
    for f in kids(m).filter(|c| name(c) == "ClusteringField") {
        if attr(&f, "isCenterField") == Some("false") {
            continue;
        }
        if num_or(&f, "fieldWeight", 1.0)? != 1.0
            || attr(&f, "compareFunction").is_some_and(|c| c != "absDiff")
        {
            return Err(unsupported(&f, "a weighted or non-absDiff ClusteringField"));
        }
        fields.push(cx.req_name(&f, "field")?);
    }
    let mut centers = Vec::new();
    for c in kids(m).filter(|c| name(c) == "Cluster") {
        let a = child(&c, "Array").ok_or_else(|| err(&c, "a Cluster without a center Array"))?;
        let v = array_numbers(&a)?;
        if v.len() != fields.len() {
            return Err(err(
                &c,
                format!("a center of {} values for {} fields", v.len(), fields.len()),
            ));
        }
        centers.push(v);
    }
    if centers.is_empty() {
        return Err(err(m, "no Cluster"));
    }
    Ok(Clustering {
        squared,
        fields,
        centers,
    })
}

fn activation(n: &Node, f: &str, threshold: f64) -> Result<Activation> {
    use Activation as A;
    Ok(match f {
        "threshold" => A::Threshold(threshold),
        "logistic" => A::Logistic,
        "tanh" => A::Tanh,
        "identity" => A::Identity,
        "exponential" => A::Exponential,
        "reciprocal" => A::Reciprocal,
        "square" => A::Square,
        "Gauss" => A::Gauss,
        "sine" => A::Sine,
        "cosine" => A::Cosine,
        "Elliott" => A::Elliott,
        "arctan" => A::Arctan,
        "rectifier" => A::Rectifier,
        other => return Err(unsupported(n, format!("the activation function {other:?}"))),
    })
}

fn layer_norm(n: &Node, s: &str) -> Result<LayerNorm> {
    Ok(match s {
        "none" => LayerNorm::None,
        "softmax" => LayerNorm::Softmax,
        "simplemax" => LayerNorm::Simplemax,
        other => return Err(unsupported(n, format!("normalizationMethod={other:?}"))),
    })
}

fn neural(cx: &mut Cx, m: &Node) -> Result<Neural> {
    let default_activation = attr(m, "activationFunction").unwrap_or("logistic");
    let default_threshold = num_or(m, "threshold", 0.0)?;
    let default_norm = attr(m, "normalizationMethod").unwrap_or("none");
    // Neuron ids to their slots; a later neuron of an id takes it over.
    let mut slot: HashMap<&str, usize> = HashMap::new();
    let ni = child(m, "NeuralInputs").ok_or_else(|| err(m, "no NeuralInputs"))?;
    let mut inputs = Vec::new();
    for i in kids(&ni).filter(|c| name(c) == "NeuralInput") {
        let d = child(&i, "DerivedField")
            .ok_or_else(|| err(&i, "a NeuralInput without a DerivedField"))?;
        slot.insert(req(&i, "id")?, inputs.len());
        inputs.push(expr_in(cx, &d, 0)?);
    }
    let mut slots = inputs.len();
    let mut layers = Vec::new();
    for l in kids(m).filter(|c| name(c) == "NeuralLayer") {
        let mut neurons = Vec::new();
        let mut ids = Vec::new();
        for n in kids(&l).filter(|c| name(c) == "Neuron") {
            let id = req(&n, "id")?;
            let mut ins = Vec::new();
            for c in kids(&n).filter(|c| name(c) == "Con") {
                // A neuron reads the inputs and the layers before its own.
                let from = req(&c, "from")?;
                let at = slot
                    .get(from)
                    .copied()
                    .ok_or_else(|| err(&c, format!("neuron {id:?} reads unknown {from:?}")))?;
                ins.push((at, num(&c, "weight")?.ok_or_else(|| err(&c, "no weight"))?));
            }
            if attr(&n, "width").is_some() || attr(&n, "altitude").is_some() {
                return Err(unsupported(&n, "radial-basis neurons"));
            }
            ids.push(id);
            neurons.push(Neuron {
                bias: num_or(&n, "bias", 0.0)?,
                inputs: ins,
            });
        }
        for id in ids {
            slot.insert(id, slots);
            slots += 1;
        }
        let threshold = num_or(&l, "threshold", default_threshold)?;
        layers.push(NeuralLayer {
            activation: activation(
                &l,
                attr(&l, "activationFunction").unwrap_or(default_activation),
                threshold,
            )?,
            normalization: layer_norm(&l, attr(&l, "normalizationMethod").unwrap_or(default_norm))?,
            neurons,
        });
    }
    let no = child(m, "NeuralOutputs").ok_or_else(|| err(m, "no NeuralOutputs"))?;
    let mut outputs = Vec::new();
    for o in kids(&no).filter(|c| name(c) == "NeuralOutput") {
        let d = child(&o, "DerivedField")
            .ok_or_else(|| err(&o, "a NeuralOutput without a DerivedField"))?;
        let id = req(&o, "outputNeuron")?;
        let at = slot
            .get(id)
            .copied()
            .ok_or_else(|| err(&o, format!("the output neuron {id:?} does not exist")))?;
        outputs.push((at, expr_in(cx, &d, 0)?));
    }
    Ok(Neural {
        inputs,
        layers,
        outputs,
        slots,
    })
}

fn svm(cx: &mut Cx, m: &Node) -> Result<SvmModel> {
    let kernel = if let Some(k) = child(m, "LinearKernelType") {
        let _ = k;
        SvmKernel::Linear
    } else if let Some(k) = child(m, "PolynomialKernelType") {
        SvmKernel::Poly {
            gamma: num_or(&k, "gamma", 1.0)?,
            coef0: num_or(&k, "coef0", 1.0)?,
            degree: num_or(&k, "degree", 1.0)?,
        }
    } else if let Some(k) = child(m, "RadialBasisKernelType") {
        SvmKernel::Rbf {
            gamma: num_or(&k, "gamma", 1.0)?,
        }
    } else if let Some(k) = child(m, "SigmoidKernelType") {
        SvmKernel::Sigmoid {
            gamma: num_or(&k, "gamma", 1.0)?,
            coef0: num_or(&k, "coef0", 1.0)?,
        }
    } else {
        return Err(err(m, "no kernel type"));
    };
    if attr(m, "svmRepresentation") == Some("Coefficients") {
        return Err(unsupported(m, "svmRepresentation=\"Coefficients\""));
    }
    let vd = child(m, "VectorDictionary").ok_or_else(|| err(m, "no VectorDictionary"))?;
    let vf = child(&vd, "VectorFields").ok_or_else(|| err(&vd, "no VectorFields"))?;
    let mut fields = Vec::new();
    for f in kids(&vf) {
        match name(&f) {
            "FieldRef" => fields.push(cx.req_name(&f, "field")?),
            other => return Err(unsupported(&f, format!("<{other}> in VectorFields"))),
        }
    }
    let mut ids = HashMap::new();
    let mut vectors = Vec::new();
    for v in kids(&vd).filter(|c| name(c) == "VectorInstance") {
        let values = if let Some(a) = child(&v, "Array") {
            array_numbers(&a)?
        } else if let Some(s) = child(&v, "REAL-SparseArray") {
            let n = num(&s, "n")?.map_or(fields.len(), |n| n as usize);
            if n != fields.len() {
                return Err(err(&s, "a sparse vector of the wrong size"));
            }
            let idx = child(&s, "Indices")
                .map(|i| array_numbers(&i))
                .transpose()?
                .unwrap_or_default();
            let ent = child(&s, "REAL-Entries")
                .map(|i| array_numbers(&i))
                .transpose()?
                .unwrap_or_default();
            if idx.len() != ent.len() {
                return Err(err(&s, "Indices and REAL-Entries differ in length"));
            }
            let mut dense = vec![0.0; n];
            for (i, e) in idx.iter().zip(ent) {
                let i = *i as usize;
                if i == 0 || i > n {
                    return Err(err(&s, format!("index {i} outside 1..={n}")));
                }
                dense[i - 1] = e;
            }
            dense
        } else {
            return Err(err(&v, "a VectorInstance without values"));
        };
        if values.len() != fields.len() {
            return Err(err(&v, "a support vector of the wrong size"));
        }
        ids.insert(req(&v, "id")?.to_string(), vectors.len());
        vectors.push(values);
    }
    let mut machines = Vec::new();
    for s in kids(m).filter(|c| name(c) == "SupportVectorMachine") {
        let svs: Vec<String> = match child(&s, "SupportVectors") {
            Some(sv) => kids(&sv)
                .filter(|c| name(c) == "SupportVector")
                .map(|c| req(&c, "vectorId").map(str::to_string))
                .collect::<Result<_>>()?,
            None => Vec::new(),
        };
        let co = child(&s, "Coefficients").ok_or_else(|| err(&s, "no Coefficients"))?;
        let alphas: Vec<f64> = kids(&co)
            .filter(|c| name(c) == "Coefficient")
            .map(|c| num_or(&c, "value", 0.0))
            .collect::<Result<_>>()?;
        if alphas.len() != svs.len() {
            return Err(err(&co, "one Coefficient per SupportVector"));
        }
        let mut coefs = Vec::new();
        for (id, a) in svs.iter().zip(alphas) {
            let i = *ids
                .get(id)
                .ok_or_else(|| err(&s, format!("unknown support vector {id:?}")))?;
            coefs.push((i, a));
        }
        machines.push(Machine {
            target: attr(&s, "targetCategory").map(str::to_string),
            alternate: attr(&s, "alternateTargetCategory").map(str::to_string),
            threshold: num(&s, "threshold")?,
            bias: num_or(&co, "absoluteValue", 0.0)?,
            coefs,
        });
    }
    if attr(m, "maxWins") == Some("true") {
        return Err(unsupported(m, "maxWins=\"true\""));
    }
    Ok(SvmModel {
        kernel,
        fields,
        vectors,
        machines,
        one_against_one: attr(m, "classificationMethod").unwrap_or("OneAgainstAll")
            == "OneAgainstOne",
        threshold: num_or(m, "threshold", 0.0)?,
    })
}

fn verification(v: &Node) -> Result<Verification> {
    let vf = child(v, "VerificationFields").ok_or_else(|| err(v, "no VerificationFields"))?;
    let mut fields = Vec::new();
    for f in kids(&vf).filter(|c| name(c) == "VerificationField") {
        let field = req(&f, "field")?.to_string();
        let column = attr(&f, "column").unwrap_or(&field).to_string();
        fields.push((
            format!("{field}\u{0}{column}"),
            num_or(&f, "precision", 1e-6)?,
            num_or(&f, "zeroThreshold", 1e-16)?,
        ));
    }
    let table = child(v, "InlineTable").ok_or_else(|| err(v, "no InlineTable"))?;
    Ok(Verification {
        fields,
        rows: inline_table(&table),
    })
}

fn scorecard(cx: &mut Cx, m: &Node) -> Result<Scorecard> {
    let cs =
        child(m, "Characteristics").ok_or_else(|| err(m, "a Scorecard without Characteristics"))?;
    let mut characteristics = Vec::new();
    for c in kids(&cs).filter(|c| name(c) == "Characteristic") {
        let mut attributes = Vec::new();
        for a in kids(&c).filter(|x| name(x) == "Attribute") {
            if child(&a, "ComplexPartialScore").is_some() {
                return Err(unsupported(&a, "ComplexPartialScore"));
            }
            attributes.push(Attribute {
                predicate: first_predicate(cx, &a)?,
                score: num(&a, "partialScore")?
                    .ok_or_else(|| err(&a, "an Attribute without partialScore"))?,
                reason: attr(&a, "reasonCode").map(str::to_string),
            });
        }
        characteristics.push(Characteristic {
            name: attr(&c, "name").unwrap_or("").to_string(),
            attributes,
            reason: attr(&c, "reasonCode").map(str::to_string),
            baseline: num(&c, "baselineScore")?,
        });
    }
    let points_above = match attr(m, "reasonCodeAlgorithm").unwrap_or("pointsBelow") {
        "pointsBelow" => false,
        "pointsAbove" => true,
        other => return Err(unsupported(m, format!("reasonCodeAlgorithm={other:?}"))),
    };
    Ok(Scorecard {
        initial: num_or(m, "initialScore", 0.0)?,
        characteristics,
        use_reason_codes: attr(m, "useReasonCodes") != Some("false"),
        points_above,
        baseline: num(m, "baselineScore")?,
    })
}

/// A Cox regression's baseline cumulative hazards (one table, or one per stratum) and the
/// parameters' reference points.
/// A Cox regression's time, strata and baselines; `parameter` maps the `count` parameters' names
/// to their index.
fn cox(cx: &mut Cx, m: &Node, parameter: &FastMap<&str, usize>, count: usize) -> Result<Cox> {
    let cells = |n: &Node| -> Result<Vec<(f64, f64)>> {
        let mut v = kids(n)
            .filter(|c| name(c) == "BaselineCell")
            .map(|c| {
                Ok((
                    num(&c, "time")?.ok_or_else(|| err(&c, "a BaselineCell without time"))?,
                    num(&c, "cumHazard")?
                        .ok_or_else(|| err(&c, "a BaselineCell without cumHazard"))?,
                ))
            })
            .collect::<Result<Vec<_>>>()?;
        v.sort_by(|a, b| a.0.total_cmp(&b.0));
        Ok(v)
    };
    let tables = child(m, "BaseCumHazardTables")
        .ok_or_else(|| err(m, "a CoxRegression without BaseCumHazardTables"))?;
    let strata = attr(m, "baselineStrataVariable").map(|v| cx.name(v));
    let mut baselines = Vec::new();
    if strata.is_some() {
        for st in kids(&tables).filter(|c| name(c) == "BaselineStratum") {
            baselines.push(Baseline {
                stratum: Some(req(&st, "value")?.to_string()),
                max_time: num(&st, "maxTime")?.unwrap_or(f64::INFINITY),
                cells: cells(&st)?,
            });
        }
    } else {
        baselines.push(Baseline {
            stratum: None,
            max_time: num(&tables, "maxTime")?.unwrap_or(f64::INFINITY),
            cells: cells(&tables)?,
        });
    }
    let mut reference = vec![0.0; count];
    if let Some(l) = child(m, "ParameterList") {
        for p in kids(&l).filter(|c| name(c) == "Parameter") {
            if let Some(&i) = parameter.get(req(&p, "name")?) {
                reference[i] = num_or(&p, "referencePoint", 0.0)?;
            }
        }
    }
    Ok(Cox {
        end_time: cx.req_name(m, "endTimeVariable")?,
        strata,
        baselines,
        reference,
    })
}

fn general_regression(cx: &mut Cx, m: &Node) -> Result<GeneralRegression> {
    let model_type = req(m, "modelType")?.to_string();
    if !matches!(
        model_type.as_str(),
        "regression"
            | "generalLinear"
            | "generalizedLinear"
            | "multinomialLogistic"
            | "ordinalMultinomial"
            | "CoxRegression"
    ) {
        return Err(unsupported(m, format!("modelType={model_type:?}")));
    }
    let names_in = |list: &str, item: &str| -> Result<Vec<String>> {
        match child(m, list) {
            None => Ok(Vec::new()),
            Some(l) => kids(&l)
                .filter(|c| name(c) == item)
                .map(|c| req(&c, "name").map(str::to_string))
                .collect(),
        }
    };
    let parameters = names_in("ParameterList", "Parameter")?;
    // Parameter names to their index; of two of one name, the last counts.
    let parameter: FastMap<&str, usize> = parameters
        .iter()
        .enumerate()
        .map(|(i, p)| (p.as_str(), i))
        .collect();
    let factors = names_in("FactorList", "Predictor")?;
    let covariates = names_in("CovariateList", "Predictor")?;
    let mut cells: Vec<Vec<Cell>> = parameters.iter().map(|_| Vec::new()).collect();
    if let Some(pp) = child(m, "PPMatrix") {
        for c in kids(&pp).filter(|c| name(c) == "PPCell") {
            let pred = req(&c, "predictorName")?;
            let value = req(&c, "value")?;
            let field = cx.name(pred);
            let cell = if factors.iter().any(|f| f == pred) {
                Cell::Level {
                    field,
                    level: value.to_string(),
                }
            } else if covariates.iter().any(|c| c == pred) {
                Cell::Power {
                    field,
                    exponent: parse_f64(value).unwrap_or(1.0),
                }
            } else {
                return Err(err(
                    &c,
                    format!("the predictor {pred:?} is neither a factor nor a covariate"),
                ));
            };
            // A cell of a parameter the list does not name is never read.
            if let Some(&i) = parameter.get(req(&c, "parameterName")?) {
                cells[i].push(cell);
            }
        }
    }
    let pm = child(m, "ParamMatrix").ok_or_else(|| err(m, "no ParamMatrix"))?;
    let mut betas = Vec::new();
    for c in kids(&pm).filter(|c| name(c) == "PCell") {
        let p = req(&c, "parameterName")?;
        let Some(&i) = parameter.get(p) else {
            return Err(err(
                &c,
                format!("the parameter {p:?} is not in the ParameterList"),
            ));
        };
        betas.push((
            attr(&c, "targetCategory").map(str::to_string),
            i,
            num(&c, "beta")?.ok_or_else(|| err(&c, "a PCell without beta"))?,
        ));
    }
    let link = match model_type.as_str() {
        "generalizedLinear" => match req(m, "linkFunction")? {
            "identity" => GlmLink::Identity,
            "log" => GlmLink::Log,
            "logit" => GlmLink::Logit,
            "probit" => GlmLink::Probit,
            "cloglog" => GlmLink::Cloglog,
            "loglog" => GlmLink::Loglog,
            "power" => GlmLink::Power(num_or(m, "linkParameter", 1.0)?),
            other => return Err(unsupported(m, format!("linkFunction={other:?}"))),
        },
        _ => GlmLink::Identity,
    };
    // Ordinal models: the inverse of this link turns each category's linear predictor into the
    // probability of that category or a lower one.
    let cumulative = match (model_type.as_str(), attr(m, "cumulativeLink")) {
        ("ordinalMultinomial", Some("logit")) => Some(Normalization::Logit),
        ("ordinalMultinomial", Some("probit")) => Some(Normalization::Probit),
        ("ordinalMultinomial", Some("cloglog")) => Some(Normalization::Cloglog),
        ("ordinalMultinomial", Some("loglog")) => Some(Normalization::Loglog),
        ("ordinalMultinomial", Some("cauchit")) => Some(Normalization::Cauchit),
        ("ordinalMultinomial", other) => {
            return Err(unsupported(m, format!("cumulativeLink={other:?}")));
        }
        _ => None,
    };
    let cox = if model_type == "CoxRegression" {
        Some(cox(cx, m, &parameter, cells.len())?)
    } else {
        None
    };
    Ok(GeneralRegression {
        cox,
        cumulative,
        multinomial: model_type == "multinomialLogistic",
        model_type,
        cells,
        betas,
        link,
        offset: num(m, "offsetValue")?,
        offset_field: attr(m, "offsetVariable").map(|v| cx.name(v)),
        target_reference: attr(m, "targetReferenceCategory").map(str::to_string),
    })
}
