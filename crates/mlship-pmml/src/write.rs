//! The PMML writer: a model of mlship's IR written as a PMML 4.4 document that JPMML-Evaluator
//! (and mlship's own evaluator) score as the source does. What PMML cannot say exactly is
//! refused with the reason, never approximated.
//!
//! The document is built as elements (`xml.rs`) and rendered once, every value escaped there.
//! Preprocessing steps become derived fields of the top model's LocalTransformations; trees
//! compare in float32 through `float` derived fields, with each threshold written as the largest
//! float32 not above it, so `float32(x) <= threshold` holds exactly when the IR's test does.

use mlship_model::{
    Activation, BoostLink, Category, DType, Estimator, GaussianNb, ImputeFill, KMeans, Kernel,
    Label, LinearModel, LinearProba, LinearTask, MissingMarker, Mlp, MlpTask, Model, Node, Norm,
    Step, Svm, SvmTask, Task, Tree, TreeEnsemble, TreeHead, Unknown,
};

use crate::error::{Error, Result};
use crate::xml::El;

fn refuse(why: impl Into<String>) -> Error {
    Error::Unsupported(format!("cannot be written as PMML: {}", why.into()))
}

/// A double as the shortest text that reads back to it.
fn d(x: f64) -> String {
    if x.is_nan() {
        "NaN".into()
    } else if x.is_infinite() {
        if x > 0.0 { "INF".into() } else { "-INF".into() }
    } else {
        format!("{x:?}")
    }
}

/// The largest float32 not above `t`, as the shortest text that reads back to that float32.
fn f32_floor_text(t: f64) -> String {
    let mut f = t as f32;
    if f64::from(f) > t {
        f = f.next_down();
    }
    if f.is_infinite() {
        return if f > 0.0 { "INF".into() } else { "-INF".into() };
    }
    format!("{f:?}")
}

fn label_text(l: &Label) -> String {
    match l {
        Label::Int(i) => i.to_string(),
        Label::Float(f) => d(*f),
        Label::Str(s) => s.clone(),
        Label::Bool(b) => b.to_string(),
    }
}

fn field_ref(field: &str) -> El {
    El::new("FieldRef").attr("field", field)
}

fn constant(x: f64) -> El {
    El::new("Constant").attr("dataType", "double").text(d(x))
}

fn apply(function: &str, args: impl IntoIterator<Item = El>) -> El {
    El::new("Apply").attr("function", function).children(args)
}

/// `<True/>`, the predicate of a segment or node that always holds.
fn always() -> El {
    El::new("True")
}

/// A segment of a segmentation: its id (from 1), always taken, holding `model`.
fn segment(id: usize, model: El) -> El {
    El::new("Segment")
        .attr("id", id.to_string())
        .child(always())
        .child(model)
}

/// A column of the table between steps: the field that holds it, and whether it is a string.
#[derive(Clone, Debug)]
struct Col {
    field: String,
    string: bool,
}

impl Col {
    fn field_ref(&self) -> El {
        field_ref(&self.field)
    }
}

struct Writer {
    derived: Vec<El>,
    n: usize,
    /// Input fields that accept values outside their listed categories (one-hot `ignore`).
    lenient: Vec<String>,
    /// Valid values found for string inputs, from the encoders that read them.
    values: Vec<(String, Vec<String>)>,
    /// The input a derived string column comes from (an imputed copy of it).
    origin: Vec<(String, String)>,
}

impl Writer {
    fn fresh(&mut self, stem: &str) -> String {
        self.n += 1;
        format!("{stem}{}", self.n)
    }

    fn derive(
        &mut self,
        stem: &str,
        dtype: &'static str,
        optype: &'static str,
        expr: El,
    ) -> String {
        let name = self.fresh(stem);
        self.derived.push(
            El::new("DerivedField")
                .attr("name", name.clone())
                .attr("optype", optype)
                .attr("dataType", dtype)
                .child(expr),
        );
        name
    }

    fn num(&mut self, stem: &str, expr: El) -> Col {
        Col {
            field: self.derive(stem, "double", "continuous", expr),
            string: false,
        }
    }

    fn steps(&mut self, steps: &[Step], mut cols: Vec<Col>, inputs: &[String]) -> Result<Vec<Col>> {
        for s in steps {
            cols = self.step(s, cols, inputs)?;
        }
        Ok(cols)
    }

    fn step(&mut self, s: &Step, cols: Vec<Col>, inputs: &[String]) -> Result<Vec<Col>> {
        let numeric = |cols: &[Col], what: &str| -> Result<()> {
            if cols.iter().any(|c| c.string) {
                Err(refuse(format!("{what} over a string column")))
            } else {
                Ok(())
            }
        };
        let missing_flag = |c: &Col| {
            apply(
                "if",
                [
                    apply("isMissing", [c.field_ref()]),
                    constant(1.0),
                    constant(0.0),
                ],
            )
        };
        Ok(match s {
            Step::Standardize { offset, scale } => {
                numeric(&cols, "a scaler")?;
                let mut out = Vec::with_capacity(cols.len());
                for (j, c) in cols.iter().enumerate() {
                    let mut e = c.field_ref();
                    if let Some(o) = offset {
                        e = apply("-", [e, constant(o[j])]);
                    }
                    if let Some(sc) = scale {
                        e = apply("/", [e, constant(sc[j])]);
                    }
                    out.push(self.num("scaled", e));
                }
                out
            }
            Step::MinMax { scale, min, clip } => {
                numeric(&cols, "a min-max scaler")?;
                let mut out = Vec::with_capacity(cols.len());
                for (j, c) in cols.iter().enumerate() {
                    let mut e = apply(
                        "+",
                        [
                            apply("*", [c.field_ref(), constant(scale[j])]),
                            constant(min[j]),
                        ],
                    );
                    if let Some((lo, hi)) = clip {
                        e = apply("min", [apply("max", [e, constant(*lo)]), constant(*hi)]);
                    }
                    out.push(self.num("minmax", e));
                }
                out
            }
            Step::Normalize(norm) => {
                numeric(&cols, "a normalizer")?;
                let parts: Vec<El> = cols
                    .iter()
                    .map(|c| match norm {
                        Norm::L2 => apply("*", [c.field_ref(), c.field_ref()]),
                        Norm::L1 | Norm::Max => apply("abs", [c.field_ref()]),
                    })
                    .collect();
                let total = match norm {
                    Norm::L2 => apply("sqrt", [apply("sum", parts)]),
                    Norm::L1 => apply("sum", parts),
                    Norm::Max => apply("max", parts),
                };
                let n = self.num("norm", total);
                cols.iter()
                    .map(|c| {
                        let e = apply(
                            "if",
                            [
                                apply("equal", [n.field_ref(), constant(0.0)]),
                                c.field_ref(),
                                apply("/", [c.field_ref(), n.field_ref()]),
                            ],
                        );
                        self.num("normalized", e)
                    })
                    .collect()
            }
            Step::Impute {
                missing,
                fill,
                indicator,
            } => {
                let mut out = Vec::new();
                for (c, f) in cols.iter().zip(fill) {
                    let (text, string) = match f {
                        ImputeFill::Drop => continue,
                        ImputeFill::Num(x) if !c.string => (d(*x), false),
                        ImputeFill::Str(s) if c.string => (s.clone(), true),
                        _ => {
                            return Err(refuse(
                                "an imputer whose statistic's type differs from its column's",
                            ));
                        }
                    };
                    let e = match missing {
                        MissingMarker::NaN => c.field_ref().attr("mapMissingTo", text),
                        MissingMarker::Num(v) if !c.string => apply(
                            "if",
                            [
                                apply("equal", [c.field_ref(), constant(*v)]),
                                constant(text.parse().unwrap_or(f64::NAN)),
                                c.field_ref(),
                            ],
                        ),
                        _ => return Err(refuse("an imputer of a string marker")),
                    };
                    out.push(if string {
                        let field = self.derive("imputed", "string", "categorical", e);
                        self.origin.push((field.clone(), c.field.clone()));
                        Col {
                            field,
                            string: true,
                        }
                    } else {
                        self.num("imputed", e)
                    });
                }
                for &j in indicator.iter().flatten() {
                    out.push(self.num("indicator", missing_flag(&cols[j])));
                }
                out
            }
            Step::OneHot(o) => {
                let mut out = Vec::new();
                for (j, c) in cols.iter().enumerate() {
                    let cats = &o.categories[j];
                    self.note_values(c, cats, inputs);
                    if o.unknown == Unknown::Ignore {
                        let f = self.input_of(&c.field);
                        self.lenient.push(f);
                    }
                    for (k, cat) in cats.iter().enumerate() {
                        if o.drop[j] == Some(k) {
                            continue;
                        }
                        let discrete = |value: String| {
                            El::new("NormDiscrete")
                                .attr("field", c.field.clone())
                                .attr("value", value)
                        };
                        let e = match cat {
                            Category::Missing => missing_flag(c),
                            Category::Num(v) => discrete(d(*v)),
                            Category::Str(s) => discrete(s.clone()),
                        };
                        out.push(self.num("onehot", e));
                    }
                }
                out
            }
            Step::Ordinal(o) => {
                let mut out = Vec::new();
                for (j, c) in cols.iter().enumerate() {
                    let cats = &o.categories[j];
                    self.note_values(c, cats, inputs);
                    if o.unknown_value.is_some() {
                        let f = self.input_of(&c.field);
                        self.lenient.push(f);
                    }
                    let mut table = El::new("InlineTable");
                    let mut missing_code = None;
                    for (k, cat) in cats.iter().enumerate() {
                        let key = match cat {
                            Category::Missing => {
                                missing_code = Some(o.missing_value);
                                continue;
                            }
                            Category::Num(v) => d(*v),
                            Category::Str(s) => s.clone(),
                        };
                        table.push(
                            El::new("row")
                                .child(El::new("data:input").text(key))
                                .child(El::new("data:output").text(k.to_string())),
                        );
                    }
                    let e = El::new("MapValues")
                        .attr("outputColumn", "data:output")
                        .attr("dataType", "double")
                        .attr_opt("mapMissingTo", missing_code.map(d))
                        .attr_opt("defaultValue", o.unknown_value.map(d))
                        .child(
                            El::new("FieldColumnPair")
                                .attr("field", c.field.clone())
                                .attr("column", "data:input"),
                        )
                        .child(table);
                    out.push(self.num("ordinal", e));
                }
                out
            }
            Step::Polynomial { powers } => {
                numeric(&cols, "polynomial features")?;
                let mut out = Vec::with_capacity(powers.len());
                for p in powers {
                    let mut factors = Vec::new();
                    for (j, &k) in p.iter().enumerate() {
                        for _ in 0..k {
                            factors.push(cols[j].field_ref());
                        }
                    }
                    // The product of the factors, left to right.
                    let mut factors = factors.into_iter();
                    let e = match factors.next() {
                        None => constant(1.0),
                        Some(first) => factors.fold(first, |e, f| apply("*", [e, f])),
                    };
                    out.push(self.num("poly", e));
                }
                out
            }
            Step::Columns { parts } => {
                let mut out = Vec::new();
                for (idx, steps) in parts {
                    let sub: Vec<Col> = idx.iter().map(|&j| cols[j].clone()).collect();
                    out.extend(self.steps(steps, sub, inputs)?);
                }
                out
            }
        })
    }

    /// The input field a column was derived from by imputation (or the column itself).
    fn input_of(&self, field: &str) -> String {
        let mut f = field.to_string();
        while let Some((_, from)) = self.origin.iter().find(|(d, _)| *d == f) {
            f = from.clone();
        }
        f
    }

    /// Records the categories an encoder knows as the valid values of the string input it reads.
    fn note_values(&mut self, c: &Col, cats: &[Category], inputs: &[String]) {
        let field = self.input_of(&c.field);
        if !c.string || !inputs.contains(&field) {
            return;
        }
        let vals = cats
            .iter()
            .filter_map(|k| match k {
                Category::Str(s) => Some(s.clone()),
                _ => None,
            })
            .collect();
        self.values.push((field, vals));
    }
}

/// The float32 view of each numeric column, for trees that compare in float32.
fn float_views(w: &mut Writer, cols: &[Col]) -> Vec<String> {
    cols.iter()
        .map(|c| w.derive("float", "float", "continuous", c.field_ref()))
        .collect()
}

fn schema(fields: &[String], target: Option<&str>) -> El {
    let mut s = El::new("MiningSchema");
    if let Some(t) = target {
        s.push(
            El::new("MiningField")
                .attr("name", t)
                .attr("usageType", "target"),
        );
    }
    s.children(
        fields
            .iter()
            .map(|f| El::new("MiningField").attr("name", f.clone())),
    )
}

/// What every split of an ensemble shares: the categories each feature knows (histogram
/// boosting's categorical features), and whether thresholds compare in float32.
type Known<'a> = (&'a [Option<[u32; 8]>], bool);

/// The codes of a bitset, as a PMML array of reals.
fn codes(b: &[u32]) -> El {
    let list: Vec<String> = (0..b.len() as u32 * 32)
        .filter(|c| (b[(c / 32) as usize] >> (c % 32)) & 1 == 1)
        .map(|c| c.to_string())
        .collect();
    El::new("Array").attr("type", "real").text(list.join(" "))
}

fn set_predicate(field: &str, operator: &str, values: El) -> El {
    El::new("SimpleSetPredicate")
        .attr("field", field)
        .attr("booleanOperator", operator)
        .child(values)
}

fn simple_predicate(field: &str, operator: &str) -> El {
    El::new("SimplePredicate")
        .attr("field", field)
        .attr("operator", operator)
}

fn either(parts: Vec<El>) -> El {
    El::new("CompoundPredicate")
        .attr("booleanOperator", "or")
        .children(parts)
}

/// A tree being written: the ensemble's shared facts, the tree, and the fields its splits read.
struct Writing<'a> {
    known: Known<'a>,
    t: &'a Tree,
    names: &'a [String],
    classes: Option<&'a [Label]>,
}

/// Node `i` of the tree and its subtree, reached when `predicate` holds.
fn tree_node(w: &Writing, i: usize, predicate: El, depth: usize) -> Result<El> {
    let (known, t, names, classes) = (w.known, w.t, w.names, w.classes);
    if depth > 150 {
        return Err(refuse("a tree deeper than 150 levels"));
    }
    let n: &Node = t
        .nodes()
        .get(i)
        .ok_or_else(|| refuse("a tree node out of range"))?;
    if n.is_leaf() {
        let at = n.left as usize;
        let vals = t
            .values()
            .get(at..at + t.width())
            .ok_or_else(|| refuse("a leaf out of range"))?;
        return Ok(match classes {
            None => El::new("Node").attr("score", d(vals[0])).child(predicate),
            Some(cls) => {
                let best = vals
                    .iter()
                    .enumerate()
                    .fold(
                        (0, f64::NEG_INFINITY),
                        |b, (k, v)| if *v > b.1 { (k, *v) } else { b },
                    )
                    .0;
                El::new("Node")
                    .attr("score", label_text(&cls[best]))
                    .child(predicate)
                    .children(vals.iter().enumerate().map(|(k, v)| {
                        El::new("ScoreDistribution")
                            .attr("value", label_text(&cls[k]))
                            .attr("recordCount", d(*v))
                            .attr("probability", d(*v))
                    }))
            }
        });
    }
    if n.flags & Node::MISSING_ZERO != 0 {
        return Err(refuse("LightGBM's zero_as_missing splits"));
    }
    let field = names
        .get(n.feature as usize)
        .ok_or_else(|| refuse("a split on a feature out of range"))?;
    if n.flags & Node::CATEGORIES_RIGHT != 0 {
        return Err(refuse(
            "XGBoost's categorical splits (a code PMML cannot name, a negative one, goes another way than in XGBoost)",
        ));
    }
    let left = if n.flags & Node::CATEGORICAL != 0 {
        // Left: the bitset's codes; a missing value, or a code the feature does not know, goes
        // the missing way.
        let bits = t
            .cat_bitsets()
            .get(n.bitset as usize)
            .ok_or_else(|| refuse("a categorical split without its bitset"))?;
        let is_in = set_predicate(field, "isIn", codes(bits));
        if n.flags & Node::MISSING_LEFT != 0 {
            let unknown = match known.0.get(n.feature as usize).copied().flatten() {
                Some(k) => set_predicate(field, "isNotIn", codes(&k)),
                None => always(),
            };
            either(vec![is_in, simple_predicate(field, "isMissing"), unknown])
        } else {
            is_in
        }
    } else {
        let threshold = if known.1 {
            f32_floor_text(n.threshold)
        } else {
            d(n.threshold)
        };
        let le = simple_predicate(field, "lessOrEqual").attr("value", threshold);
        if n.flags & Node::MISSING_LEFT != 0 {
            either(vec![le, simple_predicate(field, "isMissing")])
        } else {
            le
        }
    };
    Ok(El::new("Node")
        .child(predicate)
        .child(tree_node(w, n.left as usize, left, depth + 1)?)
        .child(tree_node(w, n.right as usize, always(), depth + 1)?))
}

fn tree_model(
    known: Known,
    t: &Tree,
    names: &[String],
    classes: Option<&[Label]>,
    output: Option<El>,
) -> Result<El> {
    let function = if classes.is_some() {
        "classification"
    } else {
        "regression"
    };
    let w = Writing {
        known,
        t,
        names,
        classes,
    };
    Ok(El::new("TreeModel")
        .attr("functionName", function)
        .attr("missingValueStrategy", "none")
        .attr("noTrueChildStrategy", "returnNullPrediction")
        .attr("splitCharacteristic", "binarySplit")
        .child(schema(names, None))
        .children(output)
        .child(tree_node(&w, 0, always(), 0)?))
}

fn regression_table(cols: &[Col], coef: &[f64], intercept: f64, category: Option<&str>) -> El {
    El::new("RegressionTable")
        .attr("intercept", d(intercept))
        .attr_opt("targetCategory", category)
        .children(cols.iter().zip(coef).map(|(c, w)| {
            El::new("NumericPredictor")
                .attr("name", c.field.clone())
                .attr("coefficient", d(*w))
        }))
}

/// A table of one predictor with coefficient `coefficient`, for `category`.
fn one_predictor(name: &str, coefficient: f64, category: Option<&str>) -> El {
    El::new("RegressionTable")
        .attr("intercept", "0.0")
        .attr_opt("targetCategory", category)
        .child(
            El::new("NumericPredictor")
                .attr("name", name)
                .attr("coefficient", d(coefficient)),
        )
}

/// An Output naming a model's predicted value `name`, for the models after it in a chain.
fn output_field(name: &str) -> El {
    El::new("Output").child(
        El::new("OutputField")
            .attr("name", name)
            .attr("optype", "continuous")
            .attr("dataType", "double")
            .attr("feature", "predictedValue")
            .attr("isFinalResult", "false"),
    )
}

fn names(cols: &[Col]) -> Vec<String> {
    cols.iter().map(|c| c.field.clone()).collect()
}

fn regression_model(function: &str, normalization: Option<&str>) -> El {
    El::new("RegressionModel")
        .attr("functionName", function)
        .attr_opt("normalizationMethod", normalization)
}

fn mining_model(function: &str, schema: El, method: &str, segments: Vec<El>) -> El {
    El::new("MiningModel")
        .attr("functionName", function)
        .child(schema)
        .child(
            El::new("Segmentation")
                .attr("multipleModelMethod", method)
                .children(segments),
        )
}

fn linear(m: &LinearModel, cols: &[Col], target: &str) -> Result<El> {
    let fields = names(cols);
    let coef = |k: usize| m.coef.row(k).to_vec();
    let top = || schema(&fields, Some(target));
    Ok(match &m.task {
        LinearTask::Regression => regression_model("regression", None)
            .child(top())
            .child(regression_table(cols, &coef(0), m.intercept[0], None)),
        LinearTask::Classifier { classes, proba } => {
            let cls: Vec<String> = classes.iter().map(label_text).collect();
            match (m.coef.rows(), proba) {
                (_, LinearProba::ModifiedHuber) => {
                    return Err(refuse("SGD's modified Huber probabilities"));
                }
                (1, LinearProba::None) => regression_model("classification", Some("softmax"))
                    .child(top())
                    .child(regression_table(cols, &[], 0.0, Some(&cls[0])))
                    .child(regression_table(
                        cols,
                        &coef(0),
                        m.intercept[0],
                        Some(&cls[1]),
                    )),
                (1, _) => regression_model("classification", Some("logit"))
                    .child(top())
                    .child(regression_table(
                        cols,
                        &coef(0),
                        m.intercept[0],
                        Some(&cls[1]),
                    ))
                    .child(regression_table(cols, &[], 0.0, Some(&cls[0]))),
                (k, LinearProba::Softmax | LinearProba::None) => {
                    regression_model("classification", Some("softmax"))
                        .child(top())
                        .children((0..k).map(|j| {
                            regression_table(cols, &coef(j), m.intercept[j], Some(&cls[j]))
                        }))
                }
                (k, LinearProba::OneVsRest) => {
                    // One logistic model per class, then their outputs normalised to sum to one.
                    let mut segments = Vec::with_capacity(k + 1);
                    let mut outs = Vec::new();
                    for j in 0..k {
                        let out = format!("ovr({})", cls[j]);
                        segments.push(segment(
                            j + 1,
                            regression_model("regression", Some("logit"))
                                .child(schema(&fields, None))
                                .child(output_field(&out))
                                .child(regression_table(cols, &coef(j), m.intercept[j], None)),
                        ));
                        outs.push(out);
                    }
                    segments.push(segment(
                        k + 1,
                        chain_classifier("simplemax", &outs, &cls, target),
                    ));
                    mining_model("classification", top(), "modelChain", segments)
                }
            }
        }
    })
}

/// The last model of a classifier chain: one table per class, reading that class's output of
/// the models before it, normalised by `normalization`.
fn chain_classifier(normalization: &str, outs: &[String], cls: &[String], target: &str) -> El {
    regression_model("classification", Some(normalization))
        .child(schema(outs, Some(target)))
        .children(
            cls.iter()
                .zip(outs)
                .map(|(c, o)| one_predictor(o, 1.0, Some(c))),
        )
}

/// `base + scale × Σ trees`; `target` names the target field when this is the top model
/// (JPMML applies a Target to the field it names).
fn sum_of_trees(
    known: Known,
    trees: &[&Tree],
    names: &[String],
    base: f64,
    scale: f64,
    output: Option<El>,
    target: Option<&str>,
) -> Result<El> {
    let segments = trees
        .iter()
        .enumerate()
        .map(|(i, t)| Ok(segment(i + 1, tree_model(known, t, names, None, None)?)))
        .collect::<Result<Vec<_>>>()?;
    Ok(El::new("MiningModel")
        .attr("functionName", "regression")
        .child(schema(names, target))
        .children(output)
        .child(
            El::new("Targets").child(
                El::new("Target")
                    .attr_opt("field", target)
                    .attr("rescaleFactor", d(scale))
                    .attr("rescaleConstant", d(base)),
            ),
        )
        .child(
            El::new("Segmentation")
                .attr("multipleModelMethod", "sum")
                .children(segments),
        ))
}

fn trees(w: &mut Writer, e: &TreeEnsemble, cols: &[Col], target: &str) -> Result<El> {
    if cols.iter().any(|c| c.string) {
        return Err(refuse("trees over string columns"));
    }
    if e.trees().iter().any(|t| !t.linear().is_empty()) {
        return Err(refuse(
            "linear trees (a PMML tree's leaves hold a score, not a linear model with its NaN fallback)",
        ));
    }
    let known = (e.known_categories(), e.cast_f32());
    let names = if e.cast_f32() {
        float_views(w, cols)
    } else {
        names(cols)
    };
    let all: Vec<&Tree> = e.trees().iter().collect();
    let top = || schema(&names, Some(target));
    let averaged = |classes: Option<&[Label]>| -> Result<Vec<El>> {
        all.iter()
            .enumerate()
            .map(|(i, t)| Ok(segment(i + 1, tree_model(known, t, &names, classes, None)?)))
            .collect()
    };
    Ok(match e.head() {
        TreeHead::Regression { exp: true } => {
            return Err(refuse("a log-link forest regressor"));
        }
        TreeHead::BoostRegression {
            base,
            scale,
            exp: true,
        } => {
            // The raw sum, then exp() by a regression model's normalization.
            let raw = "raw".to_string();
            let sum = sum_of_trees(
                known,
                &all,
                &names,
                *base,
                *scale,
                Some(output_field(&raw)),
                None,
            )?;
            let exp = regression_model("regression", Some("exp"))
                .child(schema(std::slice::from_ref(&raw), Some(target)))
                .child(one_predictor(&raw, 1.0, None));
            mining_model(
                "regression",
                top(),
                "modelChain",
                vec![segment(1, sum), segment(2, exp)],
            )
        }
        TreeHead::Regression { exp: false } => {
            mining_model("regression", top(), "average", averaged(None)?)
        }
        TreeHead::BoostRegression { base, scale, .. } => {
            sum_of_trees(known, &all, &names, *base, *scale, None, Some(target))?
        }
        TreeHead::ForestClassifier { classes } => {
            mining_model("classification", top(), "average", averaged(Some(classes))?)
        }
        TreeHead::BoostClassifier {
            classes,
            base,
            scale,
            link,
            ..
        } => {
            let cls: Vec<String> = classes.iter().map(label_text).collect();
            let k = e.n_outputs();
            let mut segments = Vec::with_capacity(k + 1);
            let mut outs = Vec::new();
            for j in 0..k {
                let mine: Vec<&Tree> = all.iter().copied().filter(|t| t.output() == j).collect();
                let out = format!("decision({j})");
                segments.push(segment(
                    j + 1,
                    sum_of_trees(
                        known,
                        &mine,
                        &names,
                        base[j],
                        *scale,
                        Some(output_field(&out)),
                        None,
                    )?,
                ));
                outs.push(out);
            }
            let final_model = match (k, link) {
                (1, BoostLink::Logistic | BoostLink::Exponential) => {
                    let c = if *link == BoostLink::Exponential {
                        2.0
                    } else {
                        1.0
                    };
                    regression_model("classification", Some("logit"))
                        .child(schema(&outs, Some(target)))
                        .child(one_predictor(&outs[0], c, Some(&cls[1])))
                        .child(
                            El::new("RegressionTable")
                                .attr("intercept", "0.0")
                                .attr("targetCategory", cls[0].clone()),
                        )
                }
                (_, BoostLink::Softmax) => chain_classifier("softmax", &outs, &cls, target),
                _ => return Err(refuse("a boosting link PMML cannot express")),
            };
            segments.push(segment(k + 1, final_model));
            mining_model("classification", top(), "modelChain", segments)
        }
    })
}

fn naive_bayes(nb: &GaussianNb, cols: &[Col], target: &str) -> El {
    let cls: Vec<String> = nb.classes.iter().map(label_text).collect();
    let inputs = cols.iter().enumerate().map(|(j, c)| {
        El::new("BayesInput")
            .attr("fieldName", c.field.clone())
            .child(
                El::new("TargetValueStats").children(cls.iter().enumerate().map(|(k, cl)| {
                    El::new("TargetValueStat").attr("value", cl.clone()).child(
                        El::new("GaussianDistribution")
                            .attr("mean", d(nb.theta.get(k, j)))
                            .attr("variance", d(nb.var.get(k, j))),
                    )
                })),
            )
    });
    let counts = cls.iter().enumerate().map(|(k, cl)| {
        El::new("TargetValueCount")
            .attr("value", cl.clone())
            .attr("count", d(nb.class_prior[k]))
    });
    El::new("NaiveBayesModel")
        .attr("functionName", "classification")
        .attr("threshold", "0")
        .child(schema(&names(cols), Some(target)))
        .child(El::new("BayesInputs").children(inputs))
        .child(
            El::new("BayesOutput")
                .attr("fieldName", target)
                .child(El::new("TargetValueCounts").children(counts)),
        )
}

/// A row of numbers as a PMML array of reals.
fn reals(row: &[f64]) -> El {
    let vals: Vec<String> = row.iter().map(|x| d(*x)).collect();
    El::new("Array")
        .attr("type", "real")
        .attr("n", row.len().to_string())
        .text(vals.join(" "))
}

fn kmeans(k: &KMeans, cols: &[Col]) -> El {
    El::new("ClusteringModel")
        .attr("functionName", "clustering")
        .attr("modelClass", "centerBased")
        .attr("numberOfClusters", k.centers.rows().to_string())
        .child(schema(&names(cols), None))
        .child(
            El::new("ComparisonMeasure")
                .attr("kind", "distance")
                .child(El::new("squaredEuclidean")),
        )
        .children(
            cols.iter()
                .map(|c| El::new("ClusteringField").attr("field", c.field.clone())),
        )
        .children(k.centers.iter_rows().enumerate().map(|(i, row)| {
            El::new("Cluster")
                .attr("id", i.to_string())
                .attr("name", i.to_string())
                .child(reals(row))
        }))
}

/// One machine of an SVM: its support vectors with their coefficients, and the intercept.
fn machine(svs: &[(usize, f64)], b: f64, cats: Option<(&str, &str)>) -> El {
    El::new("SupportVectorMachine")
        .attr_opt("targetCategory", cats.map(|c| c.0))
        .attr_opt("alternateTargetCategory", cats.map(|c| c.1))
        .child(
            El::new("SupportVectors")
                .attr("numberOfSupportVectors", svs.len().to_string())
                .children(
                    svs.iter()
                        .map(|(i, _)| El::new("SupportVector").attr("vectorId", i.to_string())),
                ),
        )
        .child(
            El::new("Coefficients")
                .attr("numberOfCoefficients", svs.len().to_string())
                .attr("absoluteValue", d(b))
                .children(
                    svs.iter()
                        .map(|(_, a)| El::new("Coefficient").attr("value", d(*a))),
                ),
        )
}

/// libsvm's model as PMML: one machine per class pair, voting one against one (`f < 0` votes
/// for the second class of the pair, as libsvm's `f > 0` votes for the first).
fn svm(v: &Svm, cols: &[Col], target: &str) -> Result<El> {
    let kernel = match v.kernel {
        Kernel::Linear => El::new("LinearKernelType"),
        Kernel::Poly {
            gamma,
            coef0,
            degree,
        } => El::new("PolynomialKernelType")
            .attr("gamma", d(gamma))
            .attr("coef0", d(coef0))
            .attr("degree", degree.to_string()),
        Kernel::Rbf { gamma } => El::new("RadialBasisKernelType").attr("gamma", d(gamma)),
        Kernel::Sigmoid { gamma, coef0 } => El::new("SigmoidKernelType")
            .attr("gamma", d(gamma))
            .attr("coef0", d(coef0)),
    };
    let l = v.support_vectors.rows();
    let dict = El::new("VectorDictionary")
        .attr("numberOfVectors", l.to_string())
        .child(
            El::new("VectorFields")
                .attr("numberOfFields", cols.len().to_string())
                .children(cols.iter().map(Col::field_ref)),
        )
        .children(v.support_vectors.iter_rows().enumerate().map(|(i, row)| {
            El::new("VectorInstance")
                .attr("id", i.to_string())
                .child(reals(row))
        }));
    let model =
        |function: &str| El::new("SupportVectorMachineModel").attr("functionName", function);
    Ok(match &v.task {
        SvmTask::Regressor => {
            let svs: Vec<(usize, f64)> = (0..l).map(|i| (i, v.dual_coef.get(0, i))).collect();
            model("regression")
                .child(schema(&names(cols), Some(target)))
                .child(kernel)
                .child(dict)
                .child(machine(&svs, v.intercept[0], None))
        }
        SvmTask::Classifier {
            classes,
            ovr,
            break_ties,
            platt,
        } => {
            if platt.is_some() {
                return Err(refuse(
                    "SVC probability estimates (pairwise Platt coupling)",
                ));
            }
            let k = classes.len();
            if *break_ties && *ovr && k > 2 {
                return Err(refuse("SVC with break_ties"));
            }
            let cls: Vec<String> = classes.iter().map(label_text).collect();
            let mut start = vec![0usize; k];
            for c in 1..k {
                start[c] = start[c - 1] + v.n_support[c - 1];
            }
            let mut s = model("classification")
                .attr("classificationMethod", "OneAgainstOne")
                .attr("threshold", "0")
                .child(schema(&names(cols), Some(target)))
                .child(kernel)
                .child(dict);
            let mut p = 0;
            for i in 0..k {
                for j in i + 1..k {
                    let mut svs = Vec::new();
                    for t in 0..v.n_support[i] {
                        svs.push((start[i] + t, v.dual_coef.get(j - 1, start[i] + t)));
                    }
                    for t in 0..v.n_support[j] {
                        svs.push((start[j] + t, v.dual_coef.get(i, start[j] + t)));
                    }
                    s.push(machine(&svs, v.intercept[p], Some((&cls[j], &cls[i]))));
                    p += 1;
                }
            }
            s
        }
    })
}

fn activation(a: Activation) -> &'static str {
    match a {
        Activation::Identity | Activation::Softmax => "identity",
        Activation::Logistic => "logistic",
        Activation::Tanh => "tanh",
        Activation::Relu => "rectifier",
    }
}

fn neuron(id: String, bias: f64, cons: impl IntoIterator<Item = (String, f64)>) -> El {
    El::new("Neuron")
        .attr("id", id)
        .attr("bias", d(bias))
        .children(
            cons.into_iter()
                .map(|(from, w)| El::new("Con").attr("from", from).attr("weight", d(w))),
        )
}

/// A NeuralOutput of neuron `neuron` whose derived field is `expr`.
fn neural_output(neuron: String, optype: &'static str, dtype: &'static str, expr: El) -> El {
    El::new("NeuralOutput").attr("outputNeuron", neuron).child(
        El::new("DerivedField")
            .attr("optype", optype)
            .attr("dataType", dtype)
            .child(expr),
    )
}

fn mlp(m: &Mlp, cols: &[Col], target: &str) -> Result<El> {
    let classes = match &m.task {
        MlpTask::Classifier { classes } => Some(classes),
        MlpTask::Regression => None,
    };
    let function = if classes.is_some() {
        "classification"
    } else {
        "regression"
    };
    let mut s = El::new("NeuralNetwork")
        .attr("functionName", function)
        .attr("activationFunction", activation(m.hidden))
        .child(schema(&names(cols), Some(target)))
        .child(
            El::new("NeuralInputs").children(cols.iter().enumerate().map(|(j, c)| {
                El::new("NeuralInput").attr("id", format!("0/{j}")).child(
                    El::new("DerivedField")
                        .attr("optype", "continuous")
                        .attr("dataType", "double")
                        .child(c.field_ref()),
                )
            })),
        );
    let last = m.layers.len();
    for (l, layer) in m.layers.iter().enumerate() {
        let is_last = l + 1 == last;
        let act = if is_last { m.output } else { m.hidden };
        let softmax = is_last && act == Activation::Softmax;
        s.push(
            El::new("NeuralLayer")
                .attr("activationFunction", activation(act))
                .attr_opt("normalizationMethod", softmax.then_some("softmax"))
                .children((0..layer.weights.rows()).map(|i| {
                    neuron(
                        format!("{}/{i}", l + 1),
                        layer.bias[i],
                        layer
                            .weights
                            .row(i)
                            .iter()
                            .enumerate()
                            .map(|(j, w)| (format!("{l}/{j}"), *w)),
                    )
                })),
        );
    }
    let out_width = m.layers.last().map_or(0, |l| l.weights.rows());
    let class_output = |layer: usize, k: usize, c: &Label| {
        neural_output(
            format!("{layer}/{k}"),
            "categorical",
            "string",
            El::new("NormDiscrete")
                .attr("field", target)
                .attr("value", label_text(c)),
        )
    };
    let outputs: Vec<El> = match classes {
        Some(cls) if out_width == 1 && cls.len() == 2 => {
            // One logistic output: a last layer gives both classes, 1 - p and p.
            let from = format!("{last}/0");
            s.push(
                El::new("NeuralLayer")
                    .attr("activationFunction", "identity")
                    .child(neuron(
                        format!("{}/0", last + 1),
                        1.0,
                        [(from.clone(), -1.0)],
                    ))
                    .child(neuron(format!("{}/1", last + 1), 0.0, [(from, 1.0)])),
            );
            cls.iter()
                .enumerate()
                .map(|(k, c)| class_output(last + 1, k, c))
                .collect()
        }
        Some(cls) => {
            if cls.len() != out_width {
                return Err(refuse("an MLP whose outputs do not match its classes"));
            }
            cls.iter()
                .enumerate()
                .map(|(k, c)| class_output(last, k, c))
                .collect()
        }
        None => {
            if out_width != 1 {
                return Err(refuse("an MLP regressor with several outputs"));
            }
            vec![neural_output(
                format!("{last}/0"),
                "continuous",
                "double",
                field_ref(target),
            )]
        }
    };
    Ok(s.child(El::new("NeuralOutputs").children(outputs)))
}

/// Writes a model as a PMML 4.4 document.
pub fn write(m: &Model) -> Result<String> {
    let sig = &m.signature;
    let inputs: Vec<String> = sig.inputs.iter().map(|f| f.name.clone()).collect();
    let mut target = "y".to_string();
    while inputs.contains(&target) {
        target.push('_');
    }
    let mut w = Writer {
        derived: Vec::new(),
        n: 0,
        lenient: Vec::new(),
        values: Vec::new(),
        origin: Vec::new(),
    };
    let cols: Vec<Col> = sig
        .inputs
        .iter()
        .map(|f| {
            if f.dtype == DType::Bool {
                return Err(refuse("boolean inputs"));
            }
            Ok(Col {
                field: f.name.clone(),
                string: f.dtype == DType::Str,
            })
        })
        .collect::<Result<_>>()?;
    let cols = w.steps(&m.steps, cols, &inputs)?;
    let mut model = match &m.estimator {
        Estimator::Linear(l) => linear(l, &cols, &target)?,
        Estimator::Trees(t) => trees(&mut w, t, &cols, &target)?,
        Estimator::GaussianNb(nb) => naive_bayes(nb, &cols, &target),
        Estimator::KMeans(k) => kmeans(k, &cols),
        Estimator::Mlp(p) => mlp(p, &cols, &target)?,
        Estimator::Svm(v) => svm(v, &cols, &target)?,
        Estimator::External(_) => {
            return Err(refuse(
                "a model already evaluated from PMML; keep the original document",
            ));
        }
    };
    // The data dictionary: inputs (strings with the values their encoders know), then the target.
    let mut dd = El::new("DataDictionary");
    let data_field = |name: &str, optype: &'static str, dtype: &'static str| {
        El::new("DataField")
            .attr("name", name)
            .attr("optype", optype)
            .attr("dataType", dtype)
    };
    let values = |vals: Vec<String>| vals.into_iter().map(|v| El::new("Value").attr("value", v));
    for f in &sig.inputs {
        dd.push(match f.dtype {
            DType::Str => {
                let vals = w
                    .values
                    .iter()
                    .find(|(n, _)| *n == f.name)
                    .map(|(_, v)| v.clone())
                    .ok_or_else(|| {
                        refuse(format!(
                            "the string input {:?} is read by no encoder that lists its categories",
                            f.name
                        ))
                    })?;
                data_field(&f.name, "categorical", "string").children(values(vals))
            }
            _ => data_field(&f.name, "continuous", "double"),
        });
    }
    match (sig.task, &sig.classes) {
        (Task::Classification, Some(classes)) => {
            let dtype = match classes.first() {
                Some(Label::Int(_)) => "integer",
                Some(Label::Float(_)) => "double",
                Some(Label::Bool(_)) => "boolean",
                _ => "string",
            };
            dd.push(
                data_field(&target, "categorical", dtype)
                    .children(values(classes.iter().map(label_text).collect())),
            );
        }
        (Task::Regression, _) => dd.push(data_field(&target, "continuous", "double")),
        (Task::Clustering, _) => {}
        (Task::Classification, None) => return Err(refuse("a classifier without classes")),
    }
    // The top model reads the inputs, with the invalid-value treatment the encoders asked for.
    let mut top_schema = El::new("MiningSchema");
    if sig.task != Task::Clustering {
        top_schema.push(
            El::new("MiningField")
                .attr("name", target.clone())
                .attr("usageType", "target"),
        );
    }
    for f in &inputs {
        top_schema.push(El::new("MiningField").attr("name", f.clone()).attr_opt(
            "invalidValueTreatment",
            w.lenient.contains(f).then_some("asIs"),
        ));
    }
    // Classifiers name their probabilities, so that other engines return them too.
    let outputs = match (&sig.classes, sig.task) {
        (Some(classes), Task::Classification) => {
            Some(El::new("Output").children(classes.iter().map(|c| {
                let t = label_text(c);
                El::new("OutputField")
                    .attr("name", format!("probability({t})"))
                    .attr("optype", "continuous")
                    .attr("dataType", "double")
                    .attr("feature", "probability")
                    .attr("value", t)
            })))
        }
        _ => None,
    };
    // A model chain's result is its last segment's: that model names the probabilities.
    let chain = model
        .kids()
        .iter()
        .any(|k| k.name() == "Segmentation" && k.get("multipleModelMethod") == Some("modelChain"));
    let top_outputs = match outputs {
        Some(o) if chain => {
            in_last_segment(&mut model, o)?;
            None
        }
        other => other,
    };
    // The steps are the top model's local transformations: JPMML resolves the fields nested
    // models read through their parents' scopes, not through the TransformationDictionary.
    let locals =
        (!w.derived.is_empty()).then(|| El::new("LocalTransformations").children(w.derived));
    replace_top_schema(&mut model, top_schema, top_outputs, locals)?;
    let doc = El::new("PMML")
        .attr("xmlns", "http://www.dmg.org/PMML-4_4")
        .attr("xmlns:data", "http://jpmml.org/jpmml-model/InlineTable")
        .attr("version", "4.4")
        .child(
            El::new("Header")
                .attr("description", m.info.estimator.clone())
                .child(
                    El::new("Application")
                        .attr("name", "mlship")
                        .attr("version", env!("CARGO_PKG_VERSION")),
                ),
        )
        .child(dd)
        .child(model);
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    doc.render(&mut out, 0);
    Ok(out)
}

/// Inserts `outputs` after the mining schema of the model of the chain's last segment.
fn in_last_segment(model: &mut El, outputs: El) -> Result<()> {
    let seg = model
        .kids_mut()
        .iter_mut()
        .find(|k| k.name() == "Segmentation")
        .and_then(|s| s.kids_mut().last_mut())
        .ok_or_else(|| refuse("a chain without segments"))?;
    let last = seg
        .kids_mut()
        .last_mut()
        .ok_or_else(|| refuse("a segment without a model"))?;
    let at = last
        .position("MiningSchema")
        .ok_or_else(|| refuse("a segment without a schema"))?;
    last.kids_mut().insert(at + 1, outputs);
    Ok(())
}

/// The top model element reads the raw inputs (`schema`), names its `outputs`, and holds the
/// steps as `locals`, after its own Output and Targets, where PMML's element order puts them.
fn replace_top_schema(
    model: &mut El,
    schema: El,
    outputs: Option<El>,
    locals: Option<El>,
) -> Result<()> {
    let at = model
        .position("MiningSchema")
        .ok_or_else(|| refuse("a model without a schema"))?;
    let kids = model.kids_mut();
    kids[at] = schema;
    let mut end = at + 1;
    if let Some(o) = outputs {
        kids.insert(end, o);
        end += 1;
    }
    for name in ["Output", "Targets"] {
        if kids.get(end).is_some_and(|k| k.name() == name) {
            end += 1;
        }
    }
    if let Some(l) = locals {
        kids.insert(end, l);
    }
    Ok(())
}
