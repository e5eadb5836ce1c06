//! The PMML writer: a model of mlship's IR written as a PMML 4.4 document that JPMML-Evaluator
//! (and mlship's own evaluator) score as the source does. What PMML cannot say exactly is
//! refused with the reason, never approximated.
//!
//! Preprocessing steps become derived fields of the TransformationDictionary; trees compare in
//! float32 through `float` derived fields, with each threshold written as the largest float32 not
//! above it, so `float32(x) <= threshold` holds exactly when the IR's test does.

use std::fmt::Write;

use mlship_model::{
    Activation, BoostLink, Category, DType, Estimator, GaussianNb, ImputeFill, KMeans, Kernel,
    Label, LinearModel, LinearProba, LinearTask, MissingMarker, Mlp, MlpTask, Model, Node, Norm,
    Step, Svm, SvmTask, Task, Tree, TreeEnsemble, TreeHead, Unknown,
};

use crate::error::{Error, Result};

fn refuse(why: impl Into<String>) -> Error {
    Error::Unsupported(format!("cannot be written as PMML: {}", why.into()))
}

/// XML-escapes an attribute value or text.
fn esc(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&apos;"),
            c => o.push(c),
        }
    }
    o
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

/// A column of the table between steps: the field that holds it, and whether it is a string.
#[derive(Clone, Debug)]
struct Col {
    field: String,
    string: bool,
}

struct Writer {
    derived: String,
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

    fn derive(&mut self, stem: &str, dtype: &str, optype: &str, expr: &str) -> String {
        let name = self.fresh(stem);
        let _ = writeln!(
            self.derived,
            "\t\t<DerivedField name=\"{}\" optype=\"{optype}\" dataType=\"{dtype}\">{expr}</DerivedField>",
            esc(&name)
        );
        name
    }

    fn num(&mut self, stem: &str, expr: &str) -> Col {
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
        let fref = |c: &Col| format!("<FieldRef field=\"{}\"/>", esc(&c.field));
        let konst = |x: f64| format!("<Constant dataType=\"double\">{}</Constant>", d(x));
        let apply = |f: &str, args: &[String]| {
            format!("<Apply function=\"{}\">{}</Apply>", esc(f), args.concat())
        };
        let numeric = |cols: &[Col], what: &str| -> Result<()> {
            if cols.iter().any(|c| c.string) {
                Err(refuse(format!("{what} over a string column")))
            } else {
                Ok(())
            }
        };
        Ok(match s {
            Step::Standardize { offset, scale } => {
                numeric(&cols, "a scaler")?;
                let mut out = Vec::with_capacity(cols.len());
                for (j, c) in cols.iter().enumerate() {
                    let mut e = fref(c);
                    if let Some(o) = offset {
                        e = apply("-", &[e, konst(o[j])]);
                    }
                    if let Some(sc) = scale {
                        e = apply("/", &[e, konst(sc[j])]);
                    }
                    out.push(self.num("scaled", &e));
                }
                out
            }
            Step::MinMax { scale, min, clip } => {
                numeric(&cols, "a min-max scaler")?;
                let mut out = Vec::with_capacity(cols.len());
                for (j, c) in cols.iter().enumerate() {
                    let mut e = apply(
                        "+",
                        &[apply("*", &[fref(c), konst(scale[j])]), konst(min[j])],
                    );
                    if let Some((lo, hi)) = clip {
                        e = apply("min", &[apply("max", &[e, konst(*lo)]), konst(*hi)]);
                    }
                    out.push(self.num("minmax", &e));
                }
                out
            }
            Step::Normalize(norm) => {
                numeric(&cols, "a normalizer")?;
                let parts: Vec<String> = cols
                    .iter()
                    .map(|c| match norm {
                        Norm::L2 => apply("*", &[fref(c), fref(c)]),
                        Norm::L1 | Norm::Max => apply("abs", &[fref(c)]),
                    })
                    .collect();
                let total = match norm {
                    Norm::L2 => apply("sqrt", &[apply("sum", &parts)]),
                    Norm::L1 => apply("sum", &parts),
                    Norm::Max => apply("max", &parts),
                };
                let n = self.num("norm", &total);
                cols.iter()
                    .map(|c| {
                        let e = apply(
                            "if",
                            &[
                                apply("equal", &[fref(&n), konst(0.0)]),
                                fref(c),
                                apply("/", &[fref(c), fref(&n)]),
                            ],
                        );
                        self.num("normalized", &e)
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
                        MissingMarker::NaN => format!(
                            "<FieldRef field=\"{}\" mapMissingTo=\"{}\"/>",
                            esc(&c.field),
                            esc(&text)
                        ),
                        MissingMarker::Num(v) if !c.string => apply(
                            "if",
                            &[
                                apply("equal", &[fref(c), konst(*v)]),
                                konst(text.parse().unwrap_or(f64::NAN)),
                                fref(c),
                            ],
                        ),
                        _ => return Err(refuse("an imputer of a string marker")),
                    };
                    out.push(if string {
                        let field = self.derive("imputed", "string", "categorical", &e);
                        self.origin.push((field.clone(), c.field.clone()));
                        Col {
                            field,
                            string: true,
                        }
                    } else {
                        self.num("imputed", &e)
                    });
                }
                for &j in indicator.iter().flatten() {
                    let c = &cols[j];
                    let e = apply(
                        "if",
                        &[apply("isMissing", &[fref(c)]), konst(1.0), konst(0.0)],
                    );
                    out.push(self.num("indicator", &e));
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
                        let e = match cat {
                            Category::Missing => apply(
                                "if",
                                &[apply("isMissing", &[fref(c)]), konst(1.0), konst(0.0)],
                            ),
                            Category::Num(v) => format!(
                                "<NormDiscrete field=\"{}\" value=\"{}\"/>",
                                esc(&c.field),
                                d(*v)
                            ),
                            Category::Str(s) => format!(
                                "<NormDiscrete field=\"{}\" value=\"{}\"/>",
                                esc(&c.field),
                                esc(s)
                            ),
                        };
                        out.push(self.num("onehot", &e));
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
                    let mut rows = String::new();
                    let mut missing_code = None;
                    for (k, cat) in cats.iter().enumerate() {
                        let key = match cat {
                            Category::Missing => {
                                missing_code = Some(o.missing_value);
                                continue;
                            }
                            Category::Num(v) => d(*v),
                            Category::Str(s) => esc(s),
                        };
                        let _ = write!(
                            rows,
                            "<row><data:input>{key}</data:input><data:output>{k}</data:output></row>"
                        );
                    }
                    let mut attrs = String::new();
                    if let Some(m) = missing_code {
                        let _ = write!(attrs, " mapMissingTo=\"{}\"", d(m));
                    }
                    if let Some(u) = o.unknown_value {
                        let _ = write!(attrs, " defaultValue=\"{}\"", d(u));
                    }
                    let e = format!(
                        "<MapValues outputColumn=\"data:output\" dataType=\"double\"{attrs}><FieldColumnPair field=\"{}\" column=\"data:input\"/><InlineTable>{rows}</InlineTable></MapValues>",
                        esc(&c.field)
                    );
                    out.push(self.num("ordinal", &e));
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
                            factors.push(fref(&cols[j]));
                        }
                    }
                    let e = match factors.len() {
                        0 => konst(1.0),
                        1 => factors.pop().unwrap_or_default(),
                        _ => {
                            let mut e = apply("*", &[factors[0].clone(), factors[1].clone()]);
                            for f in &factors[2..] {
                                e = apply("*", &[e, f.clone()]);
                            }
                            e
                        }
                    };
                    out.push(self.num("poly", &e));
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

    /// Records the categories an encoder knows as the valid values of the string input it reads.
    /// The input field a column was derived from by imputation (or the column itself).
    fn input_of(&self, field: &str) -> String {
        let mut f = field.to_string();
        while let Some((_, from)) = self.origin.iter().find(|(d, _)| *d == f) {
            f = from.clone();
        }
        f
    }

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
        .map(|c| {
            w.derive(
                "float",
                "float",
                "continuous",
                &format!("<FieldRef field=\"{}\"/>", esc(&c.field)),
            )
        })
        .collect()
}

fn schema(fields: &[String], target: Option<&str>) -> String {
    let mut s = String::from("<MiningSchema>");
    if let Some(t) = target {
        let _ = write!(s, "<MiningField name=\"{}\" usageType=\"target\"/>", esc(t));
    }
    for f in fields {
        let _ = write!(s, "<MiningField name=\"{}\"/>", esc(f));
    }
    s.push_str("</MiningSchema>");
    s
}

/// What every split of an ensemble shares: the categories each feature knows (histogram
/// boosting's categorical features), and whether thresholds compare in float32.
type Known<'a> = (&'a [Option<[u32; 8]>], bool);

fn codes(b: &[u32]) -> Vec<String> {
    (0..b.len() as u32 * 32)
        .filter(|c| (b[(c / 32) as usize] >> (c % 32)) & 1 == 1)
        .map(|c| c.to_string())
        .collect()
}

/// A tree being written: the ensemble's shared facts, the tree, and the fields its splits read.
struct Writing<'a> {
    known: Known<'a>,
    t: &'a Tree,
    names: &'a [String],
    classes: Option<&'a [Label]>,
}

fn tree_nodes(
    w: &Writing,
    out: &mut String,
    i: usize,
    predicate: &str,
    depth: usize,
) -> Result<()> {
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
        match classes {
            None => {
                let _ = write!(out, "<Node score=\"{}\">{predicate}</Node>", d(vals[0]));
            }
            Some(cls) => {
                let best = vals
                    .iter()
                    .enumerate()
                    .fold(
                        (0, f64::NEG_INFINITY),
                        |b, (k, v)| if *v > b.1 { (k, *v) } else { b },
                    )
                    .0;
                let _ = write!(
                    out,
                    "<Node score=\"{}\">{predicate}",
                    esc(&label_text(&cls[best]))
                );
                for (k, v) in vals.iter().enumerate() {
                    let _ = write!(
                        out,
                        "<ScoreDistribution value=\"{}\" recordCount=\"{}\" probability=\"{}\"/>",
                        esc(&label_text(&cls[k])),
                        d(*v),
                        d(*v)
                    );
                }
                out.push_str("</Node>");
            }
        }
        return Ok(());
    }
    if n.flags & Node::MISSING_ZERO != 0 {
        return Err(refuse("LightGBM's zero_as_missing splits"));
    }
    let field = esc(names
        .get(n.feature as usize)
        .ok_or_else(|| refuse("a split on a feature out of range"))?);
    let _ = write!(out, "<Node>{predicate}");
    if n.flags & Node::CATEGORIES_RIGHT != 0 {
        return Err(refuse(
            "XGBoost's categorical splits (a code PMML cannot name, a negative one, goes another way than in XGBoost)",
        ));
    }
    if n.flags & Node::CATEGORICAL != 0 {
        // Left: the bitset's codes; a missing value, or a code the feature does not know, goes
        // the missing way.
        let bits = t
            .cat_bitsets()
            .get(n.bitset as usize)
            .ok_or_else(|| refuse("a categorical split without its bitset"))?;
        let mut parts = vec![format!(
            "<SimpleSetPredicate field=\"{field}\" booleanOperator=\"isIn\"><Array type=\"real\">{}</Array></SimpleSetPredicate>",
            codes(bits).join(" ")
        )];
        if n.flags & Node::MISSING_LEFT != 0 {
            parts.push(format!(
                "<SimplePredicate field=\"{field}\" operator=\"isMissing\"/>"
            ));
            match known.0.get(n.feature as usize).copied().flatten() {
                Some(k) => parts.push(format!(
                    "<SimpleSetPredicate field=\"{field}\" booleanOperator=\"isNotIn\"><Array type=\"real\">{}</Array></SimpleSetPredicate>",
                    codes(&k).join(" ")
                )),
                None => parts.push("<True/>".into()),
            }
        }
        let left = if parts.len() == 1 {
            parts.remove(0)
        } else {
            format!(
                "<CompoundPredicate booleanOperator=\"or\">{}</CompoundPredicate>",
                parts.concat()
            )
        };
        tree_nodes(w, out, n.left as usize, &left, depth + 1)?;
        tree_nodes(w, out, n.right as usize, "<True/>", depth + 1)?;
        out.push_str("</Node>");
        return Ok(());
    }
    let threshold = if known.1 {
        f32_floor_text(n.threshold)
    } else {
        d(n.threshold)
    };
    let le = format!(
        "<SimplePredicate field=\"{field}\" operator=\"lessOrEqual\" value=\"{threshold}\"/>"
    );
    let left = if n.flags & Node::MISSING_LEFT != 0 {
        format!(
            "<CompoundPredicate booleanOperator=\"or\">{le}<SimplePredicate field=\"{field}\" operator=\"isMissing\"/></CompoundPredicate>"
        )
    } else {
        le
    };
    tree_nodes(w, out, n.left as usize, &left, depth + 1)?;
    tree_nodes(w, out, n.right as usize, "<True/>", depth + 1)?;
    out.push_str("</Node>");
    Ok(())
}

fn tree_model(
    known: Known,
    t: &Tree,
    names: &[String],
    classes: Option<&[Label]>,
    output: &str,
) -> Result<String> {
    let function = if classes.is_some() {
        "classification"
    } else {
        "regression"
    };
    let mut s = format!(
        "<TreeModel functionName=\"{function}\" missingValueStrategy=\"none\" noTrueChildStrategy=\"returnNullPrediction\" splitCharacteristic=\"binarySplit\">{}{output}",
        schema(names, None)
    );
    let w = Writing {
        known,
        t,
        names,
        classes,
    };
    tree_nodes(&w, &mut s, 0, "<True/>", 0)?;
    s.push_str("</TreeModel>");
    Ok(s)
}

fn regression_table(cols: &[Col], coef: &[f64], intercept: f64, category: Option<&str>) -> String {
    let mut s = format!("<RegressionTable intercept=\"{}\"", d(intercept));
    if let Some(c) = category {
        let _ = write!(s, " targetCategory=\"{}\"", esc(c));
    }
    s.push('>');
    for (c, w) in cols.iter().zip(coef) {
        let _ = write!(
            s,
            "<NumericPredictor name=\"{}\" coefficient=\"{}\"/>",
            esc(&c.field),
            d(*w)
        );
    }
    s.push_str("</RegressionTable>");
    s
}

fn output_field(name: &str) -> String {
    format!(
        "<Output><OutputField name=\"{}\" optype=\"continuous\" dataType=\"double\" feature=\"predictedValue\" isFinalResult=\"false\"/></Output>",
        esc(name)
    )
}

fn names(cols: &[Col]) -> Vec<String> {
    cols.iter().map(|c| c.field.clone()).collect()
}

fn linear(m: &LinearModel, cols: &[Col], target: &str) -> Result<String> {
    let fields = names(cols);
    let coef = |k: usize| m.coef.row(k).to_vec();
    Ok(match &m.task {
        LinearTask::Regression => format!(
            "<RegressionModel functionName=\"regression\">{}{}</RegressionModel>",
            schema(&fields, Some(target)),
            regression_table(cols, &coef(0), m.intercept[0], None)
        ),
        LinearTask::Classifier { classes, proba } => {
            let cls: Vec<String> = classes.iter().map(label_text).collect();
            match (m.coef.rows(), proba) {
                (_, LinearProba::ModifiedHuber) => {
                    return Err(refuse("SGD's modified Huber probabilities"));
                }
                (1, LinearProba::None) => format!(
                    "<RegressionModel functionName=\"classification\" normalizationMethod=\"softmax\">{}{}{}</RegressionModel>",
                    schema(&fields, Some(target)),
                    regression_table(cols, &[], 0.0, Some(&cls[0])),
                    regression_table(cols, &coef(0), m.intercept[0], Some(&cls[1]))
                ),
                (1, _) => format!(
                    "<RegressionModel functionName=\"classification\" normalizationMethod=\"logit\">{}{}{}</RegressionModel>",
                    schema(&fields, Some(target)),
                    regression_table(cols, &coef(0), m.intercept[0], Some(&cls[1])),
                    regression_table(cols, &[], 0.0, Some(&cls[0]))
                ),
                (k, LinearProba::Softmax | LinearProba::None) => {
                    let mut s = format!(
                        "<RegressionModel functionName=\"classification\" normalizationMethod=\"softmax\">{}",
                        schema(&fields, Some(target))
                    );
                    for j in 0..k {
                        s.push_str(&regression_table(
                            cols,
                            &coef(j),
                            m.intercept[j],
                            Some(&cls[j]),
                        ));
                    }
                    s.push_str("</RegressionModel>");
                    s
                }
                (k, LinearProba::OneVsRest) => {
                    // One logistic model per class, then their outputs normalised to sum to one.
                    let mut s = format!(
                        "<MiningModel functionName=\"classification\">{}<Segmentation multipleModelMethod=\"modelChain\">",
                        schema(&fields, Some(target))
                    );
                    let mut outs = Vec::new();
                    for j in 0..k {
                        let out = format!("ovr({})", cls[j]);
                        let _ = write!(
                            s,
                            "<Segment id=\"{}\"><True/><RegressionModel functionName=\"regression\" normalizationMethod=\"logit\">{}{}{}</RegressionModel></Segment>",
                            j + 1,
                            schema(&fields, None),
                            output_field(&out),
                            regression_table(cols, &coef(j), m.intercept[j], None)
                        );
                        outs.push(out);
                    }
                    let _ = write!(
                        s,
                        "<Segment id=\"{}\"><True/>{}</Segment></Segmentation></MiningModel>",
                        k + 1,
                        chain_classifier("simplemax", &outs, &cls, target)
                    );
                    s
                }
            }
        }
    })
}

/// `base + scale × Σ trees`; `target` names the target field when this is the top model
/// (JPMML applies a Target to the field it names).
/// The last model of a classifier chain: one table per class, reading that class's output of
/// the models before it, normalised by `normalization`.
fn chain_classifier(normalization: &str, outs: &[String], cls: &[String], target: &str) -> String {
    let mut r = format!(
        "<RegressionModel functionName=\"classification\" normalizationMethod=\"{normalization}\">{}",
        schema(outs, Some(target))
    );
    for (c, o) in cls.iter().zip(outs) {
        let _ = write!(
            r,
            "<RegressionTable intercept=\"0.0\" targetCategory=\"{}\"><NumericPredictor name=\"{}\" coefficient=\"1.0\"/></RegressionTable>",
            esc(c),
            esc(o)
        );
    }
    r.push_str("</RegressionModel>");
    r
}

fn sum_of_trees(
    known: Known,
    trees: &[&Tree],
    names: &[String],
    base: f64,
    scale: f64,
    output: &str,
    target: Option<&str>,
) -> Result<String> {
    let field = target.map_or_else(String::new, |t| format!(" field=\"{}\"", esc(t)));
    let mut s = format!(
        "<MiningModel functionName=\"regression\">{}{output}<Targets><Target{field} rescaleFactor=\"{}\" rescaleConstant=\"{}\"/></Targets><Segmentation multipleModelMethod=\"sum\">",
        schema(names, target),
        d(scale),
        d(base)
    );
    for (i, t) in trees.iter().enumerate() {
        let _ = write!(
            s,
            "<Segment id=\"{}\"><True/>{}</Segment>",
            i + 1,
            tree_model(known, t, names, None, "")?
        );
    }
    s.push_str("</Segmentation></MiningModel>");
    Ok(s)
}

fn trees(w: &mut Writer, e: &TreeEnsemble, cols: &[Col], target: &str) -> Result<String> {
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
            format!(
                "<MiningModel functionName=\"regression\">{}<Segmentation multipleModelMethod=\"modelChain\"><Segment id=\"1\"><True/>{}</Segment><Segment id=\"2\"><True/><RegressionModel functionName=\"regression\" normalizationMethod=\"exp\">{}<RegressionTable intercept=\"0.0\"><NumericPredictor name=\"{raw}\" coefficient=\"1.0\"/></RegressionTable></RegressionModel></Segment></Segmentation></MiningModel>",
                schema(&names, Some(target)),
                sum_of_trees(
                    known,
                    &all,
                    &names,
                    *base,
                    *scale,
                    &output_field(&raw),
                    None
                )?,
                schema(std::slice::from_ref(&raw), Some(target))
            )
        }
        TreeHead::Regression { exp: false } => {
            let mut s = format!(
                "<MiningModel functionName=\"regression\">{}<Segmentation multipleModelMethod=\"average\">",
                schema(&names, Some(target))
            );
            for (i, t) in all.iter().enumerate() {
                let _ = write!(
                    s,
                    "<Segment id=\"{}\"><True/>{}</Segment>",
                    i + 1,
                    tree_model(known, t, &names, None, "")?
                );
            }
            s.push_str("</Segmentation></MiningModel>");
            s
        }
        TreeHead::BoostRegression { base, scale, .. } => {
            sum_of_trees(known, &all, &names, *base, *scale, "", Some(target))?
        }
        TreeHead::ForestClassifier { classes } => {
            let mut s = format!(
                "<MiningModel functionName=\"classification\">{}<Segmentation multipleModelMethod=\"average\">",
                schema(&names, Some(target))
            );
            for (i, t) in all.iter().enumerate() {
                let _ = write!(
                    s,
                    "<Segment id=\"{}\"><True/>{}</Segment>",
                    i + 1,
                    tree_model(known, t, &names, Some(classes), "")?
                );
            }
            s.push_str("</Segmentation></MiningModel>");
            s
        }
        TreeHead::BoostClassifier {
            classes,
            base,
            scale,
            link,
            ..
        } => {
            let cls: Vec<String> = classes.iter().map(label_text).collect();
            let mut s = format!(
                "<MiningModel functionName=\"classification\">{}<Segmentation multipleModelMethod=\"modelChain\">",
                schema(&names, Some(target))
            );
            let k = e.n_outputs();
            let mut outs = Vec::new();
            for j in 0..k {
                let mine: Vec<&Tree> = all.iter().copied().filter(|t| t.output() == j).collect();
                let out = format!("decision({j})");
                let _ = write!(
                    s,
                    "<Segment id=\"{}\"><True/>{}</Segment>",
                    j + 1,
                    sum_of_trees(
                        known,
                        &mine,
                        &names,
                        base[j],
                        *scale,
                        &output_field(&out),
                        None
                    )?
                );
                outs.push(out);
            }
            let final_model = match (k, link) {
                (1, BoostLink::Logistic | BoostLink::Exponential) => {
                    let c = if *link == BoostLink::Exponential {
                        2.0
                    } else {
                        1.0
                    };
                    format!(
                        "<RegressionModel functionName=\"classification\" normalizationMethod=\"logit\">{}<RegressionTable intercept=\"0.0\" targetCategory=\"{}\"><NumericPredictor name=\"{}\" coefficient=\"{}\"/></RegressionTable><RegressionTable intercept=\"0.0\" targetCategory=\"{}\"/></RegressionModel>",
                        schema(&outs, Some(target)),
                        esc(&cls[1]),
                        esc(&outs[0]),
                        d(c),
                        esc(&cls[0])
                    )
                }
                (_, BoostLink::Softmax) => chain_classifier("softmax", &outs, &cls, target),
                _ => return Err(refuse("a boosting link PMML cannot express")),
            };
            let _ = write!(
                s,
                "<Segment id=\"{}\"><True/>{final_model}</Segment>",
                k + 1
            );
            s.push_str("</Segmentation></MiningModel>");
            s
        }
    })
}

fn naive_bayes(nb: &GaussianNb, cols: &[Col], target: &str) -> Result<String> {
    let cls: Vec<String> = nb.classes.iter().map(label_text).collect();
    let mut s = format!(
        "<NaiveBayesModel functionName=\"classification\" threshold=\"0\">{}<BayesInputs>",
        schema(&names(cols), Some(target))
    );
    for (j, c) in cols.iter().enumerate() {
        let _ = write!(
            s,
            "<BayesInput fieldName=\"{}\"><TargetValueStats>",
            esc(&c.field)
        );
        for (k, cl) in cls.iter().enumerate() {
            let _ = write!(
                s,
                "<TargetValueStat value=\"{}\"><GaussianDistribution mean=\"{}\" variance=\"{}\"/></TargetValueStat>",
                esc(cl),
                d(nb.theta.get(k, j)),
                d(nb.var.get(k, j))
            );
        }
        s.push_str("</TargetValueStats></BayesInput>");
    }
    let _ = write!(
        s,
        "</BayesInputs><BayesOutput fieldName=\"{}\"><TargetValueCounts>",
        esc(target)
    );
    for (k, cl) in cls.iter().enumerate() {
        let _ = write!(
            s,
            "<TargetValueCount value=\"{}\" count=\"{}\"/>",
            esc(cl),
            d(nb.class_prior[k])
        );
    }
    s.push_str("</TargetValueCounts></BayesOutput></NaiveBayesModel>");
    Ok(s)
}

fn kmeans(k: &KMeans, cols: &[Col]) -> String {
    let mut s = format!(
        "<ClusteringModel functionName=\"clustering\" modelClass=\"centerBased\" numberOfClusters=\"{}\">{}<ComparisonMeasure kind=\"distance\"><squaredEuclidean/></ComparisonMeasure>",
        k.centers.rows(),
        schema(&names(cols), None)
    );
    for c in cols {
        let _ = write!(s, "<ClusteringField field=\"{}\"/>", esc(&c.field));
    }
    for (i, row) in k.centers.iter_rows().enumerate() {
        let vals: Vec<String> = row.iter().map(|x| d(*x)).collect();
        let _ = write!(
            s,
            "<Cluster id=\"{i}\" name=\"{i}\"><Array type=\"real\" n=\"{}\">{}</Array></Cluster>",
            row.len(),
            vals.join(" ")
        );
    }
    s.push_str("</ClusteringModel>");
    s
}

/// libsvm's model as PMML: one machine per class pair, voting one against one (`f < 0` votes
/// for the second class of the pair, as libsvm's `f > 0` votes for the first).
fn svm(v: &Svm, cols: &[Col], target: &str) -> Result<String> {
    let kernel = match v.kernel {
        Kernel::Linear => "<LinearKernelType/>".to_string(),
        Kernel::Poly {
            gamma,
            coef0,
            degree,
        } => format!(
            "<PolynomialKernelType gamma=\"{}\" coef0=\"{}\" degree=\"{degree}\"/>",
            d(gamma),
            d(coef0)
        ),
        Kernel::Rbf { gamma } => format!("<RadialBasisKernelType gamma=\"{}\"/>", d(gamma)),
        Kernel::Sigmoid { gamma, coef0 } => format!(
            "<SigmoidKernelType gamma=\"{}\" coef0=\"{}\"/>",
            d(gamma),
            d(coef0)
        ),
    };
    let l = v.support_vectors.rows();
    let mut dict = format!(
        "<VectorDictionary numberOfVectors=\"{l}\"><VectorFields numberOfFields=\"{}\">",
        cols.len()
    );
    for c in cols {
        let _ = write!(dict, "<FieldRef field=\"{}\"/>", esc(&c.field));
    }
    dict.push_str("</VectorFields>");
    for (i, row) in v.support_vectors.iter_rows().enumerate() {
        let vals: Vec<String> = row.iter().map(|x| d(*x)).collect();
        let _ = write!(
            dict,
            "<VectorInstance id=\"{i}\"><Array type=\"real\" n=\"{}\">{}</Array></VectorInstance>",
            row.len(),
            vals.join(" ")
        );
    }
    dict.push_str("</VectorDictionary>");
    let machine = |svs: &[(usize, f64)], b: f64, cats: Option<(&str, &str)>| {
        let mut m = String::from("<SupportVectorMachine");
        if let Some((t, a)) = cats {
            let _ = write!(
                m,
                " targetCategory=\"{}\" alternateTargetCategory=\"{}\"",
                esc(t),
                esc(a)
            );
        }
        let _ = write!(
            m,
            "><SupportVectors numberOfSupportVectors=\"{}\">",
            svs.len()
        );
        for (i, _) in svs {
            let _ = write!(m, "<SupportVector vectorId=\"{i}\"/>");
        }
        let _ = write!(
            m,
            "</SupportVectors><Coefficients numberOfCoefficients=\"{}\" absoluteValue=\"{}\">",
            svs.len(),
            d(b)
        );
        for (_, a) in svs {
            let _ = write!(m, "<Coefficient value=\"{}\"/>", d(*a));
        }
        m.push_str("</Coefficients></SupportVectorMachine>");
        m
    };
    Ok(match &v.task {
        SvmTask::Regressor => {
            let svs: Vec<(usize, f64)> = (0..l).map(|i| (i, v.dual_coef.get(0, i))).collect();
            format!(
                "<SupportVectorMachineModel functionName=\"regression\">{}{kernel}{dict}{}</SupportVectorMachineModel>",
                schema(&names(cols), Some(target)),
                machine(&svs, v.intercept[0], None)
            )
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
            let mut s = format!(
                "<SupportVectorMachineModel functionName=\"classification\" classificationMethod=\"OneAgainstOne\" threshold=\"0\">{}{kernel}{dict}",
                schema(&names(cols), Some(target))
            );
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
                    s.push_str(&machine(&svs, v.intercept[p], Some((&cls[j], &cls[i]))));
                    p += 1;
                }
            }
            s.push_str("</SupportVectorMachineModel>");
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

fn mlp(m: &Mlp, cols: &[Col], target: &str) -> Result<String> {
    let classes = match &m.task {
        MlpTask::Classifier { classes } => Some(classes),
        MlpTask::Regression => None,
    };
    let function = if classes.is_some() {
        "classification"
    } else {
        "regression"
    };
    let mut s = format!(
        "<NeuralNetwork functionName=\"{function}\" activationFunction=\"{}\">{}<NeuralInputs>",
        activation(m.hidden),
        schema(&names(cols), Some(target))
    );
    for (j, c) in cols.iter().enumerate() {
        let _ = write!(
            s,
            "<NeuralInput id=\"0/{j}\"><DerivedField optype=\"continuous\" dataType=\"double\"><FieldRef field=\"{}\"/></DerivedField></NeuralInput>",
            esc(&c.field)
        );
    }
    s.push_str("</NeuralInputs>");
    let last = m.layers.len();
    for (l, layer) in m.layers.iter().enumerate() {
        let is_last = l + 1 == last;
        let act = if is_last { m.output } else { m.hidden };
        let norm = if is_last && act == Activation::Softmax {
            " normalizationMethod=\"softmax\""
        } else {
            ""
        };
        let _ = write!(
            s,
            "<NeuralLayer activationFunction=\"{}\"{norm}>",
            activation(act)
        );
        for i in 0..layer.weights.rows() {
            let _ = write!(
                s,
                "<Neuron id=\"{}/{i}\" bias=\"{}\">",
                l + 1,
                d(layer.bias[i])
            );
            for (j, w) in layer.weights.row(i).iter().enumerate() {
                let _ = write!(s, "<Con from=\"{l}/{j}\" weight=\"{}\"/>", d(*w));
            }
            s.push_str("</Neuron>");
        }
        s.push_str("</NeuralLayer>");
    }
    let out_width = m.layers.last().map_or(0, |l| l.weights.rows());
    let mut outputs = String::from("<NeuralOutputs>");
    match classes {
        Some(cls) if out_width == 1 && cls.len() == 2 => {
            // One logistic output: a last layer gives both classes, 1 - p and p.
            let _ = write!(
                s,
                "<NeuralLayer activationFunction=\"identity\"><Neuron id=\"{n}/0\" bias=\"1.0\"><Con from=\"{l}/0\" weight=\"-1.0\"/></Neuron><Neuron id=\"{n}/1\" bias=\"0.0\"><Con from=\"{l}/0\" weight=\"1.0\"/></Neuron></NeuralLayer>",
                n = last + 1,
                l = last
            );
            for (k, c) in cls.iter().enumerate() {
                let _ = write!(
                    outputs,
                    "<NeuralOutput outputNeuron=\"{}/{k}\"><DerivedField optype=\"categorical\" dataType=\"string\"><NormDiscrete field=\"{}\" value=\"{}\"/></DerivedField></NeuralOutput>",
                    last + 1,
                    esc(target),
                    esc(&label_text(c))
                );
            }
        }
        Some(cls) => {
            if cls.len() != out_width {
                return Err(refuse("an MLP whose outputs do not match its classes"));
            }
            for (k, c) in cls.iter().enumerate() {
                let _ = write!(
                    outputs,
                    "<NeuralOutput outputNeuron=\"{last}/{k}\"><DerivedField optype=\"categorical\" dataType=\"string\"><NormDiscrete field=\"{}\" value=\"{}\"/></DerivedField></NeuralOutput>",
                    esc(target),
                    esc(&label_text(c))
                );
            }
        }
        None => {
            if out_width != 1 {
                return Err(refuse("an MLP regressor with several outputs"));
            }
            let _ = write!(
                outputs,
                "<NeuralOutput outputNeuron=\"{last}/0\"><DerivedField optype=\"continuous\" dataType=\"double\"><FieldRef field=\"{}\"/></DerivedField></NeuralOutput>",
                esc(target)
            );
        }
    }
    outputs.push_str("</NeuralOutputs>");
    s.push_str(&outputs);
    s.push_str("</NeuralNetwork>");
    Ok(s)
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
        derived: String::new(),
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
    let model = match &m.estimator {
        Estimator::Linear(l) => linear(l, &cols, &target)?,
        Estimator::Trees(t) => trees(&mut w, t, &cols, &target)?,
        Estimator::GaussianNb(nb) => naive_bayes(nb, &cols, &target)?,
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
    let mut dd = String::new();
    for f in &sig.inputs {
        match f.dtype {
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
                let _ = write!(
                    dd,
                    "<DataField name=\"{}\" optype=\"categorical\" dataType=\"string\">",
                    esc(&f.name)
                );
                for v in vals {
                    let _ = write!(dd, "<Value value=\"{}\"/>", esc(&v));
                }
                dd.push_str("</DataField>");
            }
            _ => {
                let _ = write!(
                    dd,
                    "<DataField name=\"{}\" optype=\"continuous\" dataType=\"double\"/>",
                    esc(&f.name)
                );
            }
        }
    }
    match (sig.task, &sig.classes) {
        (Task::Classification, Some(classes)) => {
            let dtype = match classes.first() {
                Some(Label::Int(_)) => "integer",
                Some(Label::Float(_)) => "double",
                Some(Label::Bool(_)) => "boolean",
                _ => "string",
            };
            let _ = write!(
                dd,
                "<DataField name=\"{}\" optype=\"categorical\" dataType=\"{dtype}\">",
                esc(&target)
            );
            for c in classes {
                let _ = write!(dd, "<Value value=\"{}\"/>", esc(&label_text(c)));
            }
            dd.push_str("</DataField>");
        }
        (Task::Regression, _) => {
            let _ = write!(
                dd,
                "<DataField name=\"{}\" optype=\"continuous\" dataType=\"double\"/>",
                esc(&target)
            );
        }
        (Task::Clustering, _) => {}
        (Task::Classification, None) => return Err(refuse("a classifier without classes")),
    }
    // The top model reads the inputs, with the invalid-value treatment the encoders asked for.
    let top_schema = {
        let mut s = String::from("<MiningSchema>");
        if sig.task != Task::Clustering {
            let _ = write!(
                s,
                "<MiningField name=\"{}\" usageType=\"target\"/>",
                esc(&target)
            );
        }
        for f in &inputs {
            let treat = if w.lenient.contains(f) {
                " invalidValueTreatment=\"asIs\""
            } else {
                ""
            };
            let _ = write!(s, "<MiningField name=\"{}\"{treat}/>", esc(f));
        }
        s.push_str("</MiningSchema>");
        s
    };
    // The steps are the top model's local transformations: JPMML resolves the fields nested
    // models read through their parents' scopes, not through the TransformationDictionary.
    let locals = if w.derived.is_empty() {
        String::new()
    } else {
        format!(
            "\n<LocalTransformations>\n{}</LocalTransformations>\n",
            w.derived
        )
    };
    // Classifiers name their probabilities, so that other engines return them too.
    let outputs = match (&sig.classes, sig.task) {
        (Some(classes), Task::Classification) => {
            let mut o = String::from("<Output>");
            for c in classes {
                let t = esc(&label_text(c));
                let _ = write!(
                    o,
                    "<OutputField name=\"probability({t})\" optype=\"continuous\" dataType=\"double\" feature=\"probability\" value=\"{t}\"/>"
                );
            }
            o.push_str("</Output>");
            o
        }
        _ => String::new(),
    };
    // A model chain's result is its last segment's: that model names the probabilities.
    let (model, outputs) = if model.contains("multipleModelMethod=\"modelChain\"") {
        (in_last_segment(&model, &outputs)?, String::new())
    } else {
        (model, outputs)
    };
    let model = replace_top_schema(&model, &format!("{top_schema}{outputs}"), &locals)?;
    Ok(format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<PMML xmlns=\"http://www.dmg.org/PMML-4_4\" xmlns:data=\"http://jpmml.org/jpmml-model/InlineTable\" version=\"4.4\">\n\t<Header description=\"{}\">\n\t\t<Application name=\"mlship\" version=\"{}\"/>\n\t</Header>\n\t<DataDictionary>{dd}</DataDictionary>\n\t{model}\n</PMML>\n",
        esc(&m.info.estimator),
        env!("CARGO_PKG_VERSION"),
    ))
}

/// Inserts `outputs` after the mining schema of the last segment's model.
fn in_last_segment(model: &str, outputs: &str) -> Result<String> {
    let seg = model
        .rfind("<Segment ")
        .ok_or_else(|| refuse("a chain without segments"))?;
    let at = seg
        + model[seg..]
            .find("</MiningSchema>")
            .ok_or_else(|| refuse("a segment without a schema"))?
        + "</MiningSchema>".len();
    Ok(format!("{}{outputs}{}", &model[..at], &model[at..]))
}

/// The top model element reads the raw inputs; its local transformations go after its schema,
/// output and targets, where PMML's element order puts them.
fn replace_top_schema(model: &str, schema: &str, locals: &str) -> Result<String> {
    let start = model
        .find("<MiningSchema>")
        .ok_or_else(|| refuse("a model without a schema"))?;
    let mut end = start
        + model[start..]
            .find("</MiningSchema>")
            .ok_or_else(|| refuse("a model without a schema"))?
        + "</MiningSchema>".len();
    for (open, close) in [("<Output>", "</Output>"), ("<Targets>", "</Targets>")] {
        if model[end..].starts_with(open) {
            end += model[end..].find(close).unwrap_or(0) + close.len();
        }
    }
    let kept = &model[start
        + model[start..].find("</MiningSchema>").unwrap_or(0)
        + "</MiningSchema>".len()..end];
    Ok(format!(
        "{}{schema}{kept}{locals}{}",
        &model[..start],
        &model[end..]
    ))
}
