//! The PMML evaluator: one row at a time, the document's models as the specification defines
//! them (three-valued predicates, missing-value strategies, segmentations, output fields feeding
//! model chains), with float fields compared in float32 as the writers meant.

use crate::error::{Error, Result};
use crate::func::{Builtin, Call, Cmp, SimpleOp};
use crate::parse::{
    BayesInput, DataType, Derived, Document, Expr, Feature, Function, Invalid, Kind, ModelEl, Name,
    Normalization, Outliers, Predicate, SegmentationMethod, SvmKernel, Sym, TreeModel, TreeNode,
    Usage, Value,
};

/// What a model predicts for one row.
#[derive(Clone, Debug, Default)]
pub struct Pred {
    /// The predicted value; `None` is PMML's missing (null) prediction.
    pub value: Option<Value>,
    /// Class probabilities by category, for classifiers that give them.
    pub probs: Vec<(String, f64)>,
    /// The winning cluster's index (clustering) or node id.
    pub entity: Option<String>,
    /// A scorecard's reason codes, the first rank first.
    pub reasons: Vec<String>,
}

impl Pred {
    fn null() -> Pred {
        Pred::default()
    }

    fn prob(&self, cat: &str) -> Option<f64> {
        self.probs.iter().find(|(c, _)| c == cat).map(|(_, p)| *p)
    }
}

fn fail(message: impl Into<String>) -> Error {
    Error::Unsupported(format!("PMML evaluation: {}", message.into()))
}

/// The text of a value, as PMML compares categories.
pub fn text(v: &Value) -> Option<String> {
    match v {
        Value::Missing => None,
        Value::Num(x) => Some(num_text(*x)),
        Value::Str(s) => Some(s.clone()),
        Value::Bool(b) => Some(b.to_string()),
    }
}

/// `1` for integral numbers, else the shortest round-trip text.
pub fn num_text(x: f64) -> String {
    if x.fract() == 0.0 && x.abs() < 1e15 {
        format!("{}", x as i64)
    } else {
        format!("{x}")
    }
}

fn as_num(v: &Value) -> Option<f64> {
    match v {
        Value::Num(x) if x.is_nan() => None,
        Value::Num(x) => Some(*x),
        Value::Bool(b) => Some(f64::from(u8::from(*b))),
        Value::Str(s) => crate::parse::parse_f64(s),
        Value::Missing => None,
    }
}

fn is_missing(v: &Value) -> bool {
    matches!(v, Value::Missing) || matches!(v, Value::Num(x) if x.is_nan())
}

/// Two category texts name the same category: equal text, or equal numbers ("1" and "1.0").
pub(crate) fn same_category(a: &str, b: &str) -> bool {
    a == b
        || matches!((crate::parse::parse_f64(a), crate::parse::parse_f64(b)), (Some(x), Some(y)) if x == y)
}

struct Scope<'d> {
    locals: &'d [Derived],
    /// Values this scope gives fields (its mining schema's treatments, its local fields once
    /// derived, a function's parameters), by symbol; the last one given counts.
    values: Vec<(Sym, Value)>,
    /// Fields whose invalid value this model's mining schema let through as it is
    /// (`invalidValueTreatment="asIs"`): the models nested in it take the value without asking
    /// again, as JPMML-Evaluator does.
    kept_invalid: Vec<Sym>,
}

impl Scope<'_> {
    fn value(&self, sym: Sym) -> Option<&Value> {
        self.values
            .iter()
            .rev()
            .find(|(s, _)| *s == sym)
            .map(|(_, v)| v)
    }
}

/// A row's values by field symbol (unset: `None`).
pub type Row = Vec<Option<Value>>;

/// The values one row has: inputs, derived fields as they are needed, chained outputs.
pub struct Ctx<'d> {
    doc: &'d Document,
    fields: Row,
    scopes: Vec<Scope<'d>>,
    depth: usize,
    /// Models whose value for this row is already known (segments scored by lowered trees).
    known: Vec<(&'d ModelEl, f64)>,
}

impl<'d> Ctx<'d> {
    /// A row's evaluation, from its inputs by symbol (see [`Ctx::row`]).
    pub fn new(doc: &'d Document, mut inputs: Row) -> Ctx<'d> {
        inputs.resize(doc.names.len(), None);
        Ctx {
            doc,
            fields: inputs,
            scopes: Vec::new(),
            depth: 0,
            known: Vec::new(),
        }
    }

    /// The row's evaluation, taking these models' values as given instead of scoring them.
    pub fn knowing(mut self, known: Vec<(&'d ModelEl, f64)>) -> Ctx<'d> {
        self.known = known;
        self
    }

    /// An empty row of values for `doc`'s fields.
    pub fn row(doc: &Document) -> Row {
        vec![None; doc.names.len()]
    }

    /// The declared type of a field (data dictionary or derived field), if it has one.
    fn dtype(&self, sym: Sym) -> Option<DataType> {
        for s in self.scopes.iter().rev() {
            if let Some(d) = s.locals.iter().find(|d| d.name.sym == sym) {
                return Some(d.dtype);
            }
        }
        if let Some(f) = self.doc.field(sym) {
            return Some(f.dtype);
        }
        self.doc.transform(sym).map(|d| d.dtype)
    }

    pub fn get(&mut self, name: &Name) -> Result<Value> {
        self.get_sym(name.sym)
    }

    /// The value of a field given by its name (a verification record's expected output).
    pub fn get_named(&mut self, name: &str) -> Result<Value> {
        match self.doc.sym(name) {
            Some(sym) => self.get_sym(sym),
            None => Err(fail(format!("the field {name:?} is not defined"))),
        }
    }

    /// The value of the field `sym`, deriving it (once per scope) where it is a derived field.
    pub fn get_sym(&mut self, sym: Sym) -> Result<Value> {
        for i in (0..self.scopes.len()).rev() {
            if let Some(v) = self.scopes[i].value(sym) {
                return Ok(v.clone());
            }
            let locals = self.scopes[i].locals;
            if let Some(d) = locals.iter().find(|d| d.name.sym == sym) {
                let v = self.derive(d)?;
                self.scopes[i].values.push((sym, v.clone()));
                return Ok(v);
            }
        }
        if let Some(Some(v)) = self.fields.get(sym.index()) {
            return Ok(v.clone());
        }
        let doc = self.doc;
        if let Some(d) = doc.transform(sym) {
            let v = self.derive(d)?;
            self.set(sym, v.clone());
            return Ok(v);
        }
        Err(fail(format!(
            "the field {:?} is not defined",
            self.doc.name(sym)
        )))
    }

    fn set(&mut self, sym: Sym, v: Value) {
        if let Some(slot) = self.fields.get_mut(sym.index()) {
            *slot = Some(v);
        }
    }

    fn derive(&mut self, d: &'d Derived) -> Result<Value> {
        self.depth += 1;
        if self.depth > 256 {
            return Err(Error::Limit(
                "PMML derived fields refer to each other in a cycle".into(),
            ));
        }
        let v = self.eval(&d.expr);
        self.depth -= 1;
        let v = v?;
        Ok(match (d.dtype, v) {
            (DataType::Float, Value::Num(x)) => Value::Num(f64::from(x as f32)),
            (DataType::Integer, Value::Num(x)) if x.fract() != 0.0 => Value::Num(x.trunc()),
            (_, v) => v,
        })
    }

    pub fn eval(&mut self, e: &'d Expr) -> Result<Value> {
        Ok(match e {
            Expr::Constant(v) => v.clone(),
            Expr::FieldRef { field, map_missing } => {
                let v = self.get(field)?;
                match (is_missing(&v), map_missing) {
                    (true, Some(m)) => m.clone(),
                    _ => v,
                }
            }
            Expr::NormContinuous {
                field,
                points,
                outliers,
                map_missing,
            } => {
                let v = self.get(field)?;
                let Some(x) = as_num(&v) else {
                    return Ok(map_missing.map_or(Value::Missing, Value::Num));
                };
                norm_continuous(x, points, *outliers)
            }
            Expr::NormDiscrete {
                field,
                value,
                map_missing,
            } => {
                let v = self.get(field)?;
                match text(&v).filter(|_| !is_missing(&v)) {
                    None => map_missing.map_or(Value::Missing, Value::Num),
                    Some(t) => Value::Num(if same_category(&t, value) { 1.0 } else { 0.0 }),
                }
            }
            Expr::Discretize {
                field,
                bins,
                default,
                map_missing,
            } => {
                let v = self.get(field)?;
                match as_num(&v) {
                    None => map_missing.clone().map_or(Value::Missing, Value::Str),
                    Some(x) => bins
                        .iter()
                        .find(|(i, _)| i.contains(x))
                        .map(|(_, b)| Value::Str(b.clone()))
                        .or_else(|| default.clone().map(Value::Str))
                        .unwrap_or(Value::Missing),
                }
            }
            Expr::MapValues {
                inputs,
                rows,
                default,
                map_missing,
            } => {
                let mut keys = Vec::with_capacity(inputs.len());
                for f in inputs {
                    let v = self.get(f)?;
                    match text(&v).filter(|_| !is_missing(&v)) {
                        None => return Ok(map_missing.clone().map_or(Value::Missing, Value::Str)),
                        Some(t) => keys.push(t),
                    }
                }
                rows.iter()
                    .find(|r| {
                        keys.iter()
                            .zip(r.iter())
                            .all(|(t, x)| x.as_deref().is_some_and(|x| same_category(x, t)))
                    })
                    .and_then(|r| r.get(keys.len()).cloned().flatten())
                    .map(Value::Str)
                    .or_else(|| default.clone().map(Value::Str))
                    .unwrap_or(Value::Missing)
            }
            Expr::Apply {
                call,
                args,
                map_missing,
                default,
            } => {
                self.depth += 1;
                if self.depth > 512 {
                    return Err(Error::Limit("PMML expressions nested too deep".into()));
                }
                let mut vals = Vec::with_capacity(args.len());
                let mut r = Ok(());
                for a in args {
                    match self.eval(a) {
                        Ok(v) => vals.push(v),
                        Err(e) => {
                            r = Err(e);
                            break;
                        }
                    }
                }
                self.depth -= 1;
                r?;
                let doc = self.doc;
                let builtin = match call {
                    Call::Builtin(b) => *b,
                    Call::Defined(i) => {
                        let (function, params, body) = doc
                            .functions
                            .get(*i)
                            .ok_or_else(|| fail(format!("the function number {i}")))?;
                        // A user function: its parameters are the arguments, in a scope of their own.
                        if params.len() != vals.len() {
                            return Err(fail(format!(
                                "{function} takes {} arguments, got {}",
                                params.len(),
                                vals.len()
                            )));
                        }
                        if self.depth > 64 {
                            return Err(Error::Limit(
                                "PMML functions call each other too deep".into(),
                            ));
                        }
                        let scope = Scope {
                            locals: &[],
                            values: params.iter().map(|p| p.sym).zip(vals).collect(),
                            kept_invalid: Vec::new(),
                        };
                        self.scopes.push(scope);
                        self.depth += 1;
                        let r = self.eval(body);
                        self.depth -= 1;
                        self.scopes.pop();
                        let out = r?;
                        return Ok(if is_missing(&out) {
                            map_missing.clone().unwrap_or(out)
                        } else {
                            out
                        });
                    }
                };
                let any_missing = vals.iter().any(is_missing);
                if any_missing && !builtin.missing_aware() {
                    return Ok(map_missing.clone().unwrap_or(Value::Missing));
                }
                let out = apply(builtin, &vals)?;
                if is_missing(&out) {
                    default.clone().unwrap_or(out)
                } else {
                    out
                }
            }
        })
    }

    fn pred_value(&mut self, p: &'d Predicate) -> Result<Option<bool>> {
        Ok(match p {
            Predicate::True => Some(true),
            Predicate::False => Some(false),
            Predicate::Simple {
                field,
                op,
                value,
                num,
            } => {
                let v = self.get(field)?;
                match op {
                    SimpleOp::IsMissing => Some(is_missing(&v)),
                    SimpleOp::IsNotMissing => Some(!is_missing(&v)),
                    SimpleOp::Cmp(_) if is_missing(&v) => None,
                    SimpleOp::Cmp(op) => {
                        let c = value.as_deref().ok_or_else(|| {
                            fail(format!("a SimplePredicate on {field:?} has no value"))
                        })?;
                        let float = num.is_some() && self.dtype(field.sym) == Some(DataType::Float);
                        Some(compare(&v, c, *num, *op, float))
                    }
                }
            }
            Predicate::Set {
                field,
                is_in,
                values,
            } => {
                let v = self.get(field)?;
                text(&v)
                    .filter(|_| !is_missing(&v))
                    .map(|t| values.iter().any(|x| same_category(x, &t)) == *is_in)
            }
            Predicate::Compound { op, parts } => {
                use crate::parse::BoolOp;
                let mut results = Vec::with_capacity(parts.len());
                for part in parts {
                    let r = self.pred_value(part)?;
                    if *op == BoolOp::Surrogate && r.is_some() {
                        return Ok(r);
                    }
                    results.push(r);
                }
                match op {
                    BoolOp::And => {
                        if results.contains(&Some(false)) {
                            Some(false)
                        } else if results.iter().all(|r| *r == Some(true)) {
                            Some(true)
                        } else {
                            None
                        }
                    }
                    BoolOp::Or => {
                        if results.contains(&Some(true)) {
                            Some(true)
                        } else if results.iter().all(|r| *r == Some(false)) {
                            Some(false)
                        } else {
                            None
                        }
                    }
                    BoolOp::Xor => results.iter().try_fold(false, |acc, r| r.map(|b| acc ^ b)),
                    // No part was known.
                    BoolOp::Surrogate => None,
                }
            }
        })
    }

    /// Evaluates a model element with its schema, local transformations and targets.
    pub fn model(&mut self, m: &'d ModelEl) -> Result<Pred> {
        if let Some(&(_, v)) = self.known.iter().find(|(k, _)| std::ptr::eq(*k, m)) {
            return Ok(Pred {
                value: Some(Value::Num(v)),
                ..Pred::default()
            });
        }
        if self.scopes.len() > 64 {
            return Err(Error::Limit("PMML segments nested too deep".into()));
        }
        let mut scope = Scope {
            locals: &m.locals,
            values: Vec::new(),
            kept_invalid: Vec::new(),
        };
        // The mining schema: missing value replacement, invalid values, outliers.
        for f in m.fields.iter().filter(|f| f.usage == Usage::Active) {
            let given = self.get(&f.name)?;
            let mut v = given.clone();
            if is_missing(&v) {
                if let Some(r) = &f.replacement {
                    v = match self.dtype(f.name.sym) {
                        Some(DataType::String) => Value::Str(r.clone()),
                        _ => crate::parse::parse_f64(r).map_or(Value::Str(r.clone()), Value::Num),
                    };
                    if self.dtype(f.name.sym) == Some(DataType::Float) {
                        if let Value::Num(x) = v {
                            v = Value::Num(f64::from(x as f32));
                        }
                    }
                }
            } else if !self.valid(f.name.sym, &v) && !self.kept_by_outer(f.name.sym) {
                v = match &f.invalid {
                    Invalid::Refuse => {
                        return Err(Error::Model(mlship_model::Error::BadValue {
                            column: f.name.to_string(),
                            row: 0,
                            expected: "a value the PMML model lists as valid".into(),
                            found: text(&v)
                                .unwrap_or_default()
                                .replace('\u{0}', "an unknown category"),
                        }));
                    }
                    Invalid::Keep => {
                        scope.kept_invalid.push(f.name.sym);
                        v
                    }
                    Invalid::Missing => Value::Missing,
                    Invalid::Replace(s) => Value::Str(s.clone()),
                };
            } else if let (Some(x), true) = (as_num(&v), f.low.is_some() || f.high.is_some()) {
                let (lo, hi) = (
                    f.low.unwrap_or(f64::NEG_INFINITY),
                    f.high.unwrap_or(f64::INFINITY),
                );
                if x < lo || x > hi {
                    v = match f.outliers {
                        Outliers::Keep => v,
                        Outliers::Missing => Value::Missing,
                        Outliers::Extreme => Value::Num(x.clamp(lo, hi)),
                    };
                }
            }
            // An unchanged value is found in the outer scope as it is.
            if v != given {
                scope.values.push((f.name.sym, v));
            }
        }
        self.scopes.push(scope);
        let r = self.model_kind(m);
        self.scopes.pop();
        let mut p = r?;
        if let (Some(t), Some(Value::Num(x))) = (&m.target, &p.value) {
            if m.function == Function::Regression {
                p.value = Some(Value::Num(apply_target(t, *x)));
            }
        }
        Ok(p)
    }

    /// Whether an enclosing model already let this field's invalid value through as it is.
    fn kept_by_outer(&self, sym: Sym) -> bool {
        self.scopes.iter().any(|s| s.kept_invalid.contains(&sym))
    }

    /// The valid values of the top model's target, in the data dictionary's order.
    fn target_values(&self) -> Vec<String> {
        self.doc
            .model
            .fields
            .iter()
            .find(|f| f.usage == Usage::Target)
            .and_then(|t| self.doc.field(t.name.sym))
            .map(|f| f.values.clone())
            .unwrap_or_default()
    }

    /// Whether a value is valid for a field with listed values (others take anything).
    fn valid(&self, sym: Sym, v: &Value) -> bool {
        let Some(f) = self.doc.field(sym) else {
            return true;
        };
        if f.values.is_empty() || f.optype == crate::parse::OpType::Continuous {
            return !matches!(v, Value::Str(s) if s == "\u{0}");
        }
        text(v).is_some_and(|t| f.values.iter().any(|x| same_category(x, &t)))
    }

    fn model_kind(&mut self, m: &'d ModelEl) -> Result<Pred> {
        match &m.kind {
            Kind::Regression(r) => self.regression(m.function, r),
            Kind::Tree(t) => self.tree(m.function, t),
            Kind::Mining(s) => self.mining(m.function, s),
            Kind::NaiveBayes(nb) => self.naive_bayes(nb),
            Kind::Clustering(c) => self.clustering(c),
            Kind::Neural(n) => self.neural(m.function, n),
            Kind::Svm(s) => self.svm(m.function, s),
            Kind::Scorecard(sc) => self.scorecard(sc),
            Kind::General(g) => self.general(m.function, g),
        }
    }

    /// Makes a model's output fields available by name, for the next models of a chain.
    pub fn publish(&mut self, m: &'d ModelEl, p: &Pred) -> Result<()> {
        for o in &m.outputs {
            let v = match &o.feature {
                Feature::PredictedValue => p.value.clone().unwrap_or(Value::Missing),
                Feature::Probability(cat) => {
                    let cat = cat.clone().or_else(|| p.value.as_ref().and_then(text));
                    cat.and_then(|c| p.prob(&c))
                        .map_or(Value::Missing, Value::Num)
                }
                Feature::TransformedValue(e) => self.eval(e)?,
                Feature::EntityId => p.entity.clone().map_or(Value::Missing, Value::Str),
                Feature::ReasonCode(rank) => p
                    .reasons
                    .get(rank - 1)
                    .cloned()
                    .map_or(Value::Missing, Value::Str),
            };
            self.set(o.name.sym, v);
        }
        Ok(())
    }

    fn regression(&mut self, function: Function, r: &'d crate::parse::Regression) -> Result<Pred> {
        let mut ys = Vec::with_capacity(r.tables.len());
        for t in &r.tables {
            let mut y = t.intercept;
            for (name, coef, exp) in &t.numeric {
                let Some(x) = as_num(&self.get(name)?) else {
                    return Ok(Pred::null());
                };
                y += coef * if *exp == 1 { x } else { x.powi(*exp) };
            }
            for (name, value, coef) in &t.categorical {
                let v = self.get(name)?;
                let Some(tx) = text(&v).filter(|_| !is_missing(&v)) else {
                    return Ok(Pred::null());
                };
                if same_category(&tx, value) {
                    y += coef;
                }
            }
            for (refs, coef) in &t.terms {
                let mut prod = *coef;
                for f in refs {
                    let Some(x) = as_num(&self.get(f)?) else {
                        return Ok(Pred::null());
                    };
                    prod *= x;
                }
                y += prod;
            }
            ys.push(y);
        }
        if function != Function::Classification {
            return Ok(Pred {
                value: Some(Value::Num(link(r.normalization, ys[0]))),
                ..Pred::default()
            });
        }
        let cats: Vec<String> = r
            .tables
            .iter()
            .map(|t| t.category.clone().unwrap_or_default())
            .collect();
        let k = ys.len();
        let probs: Vec<f64> = match r.normalization {
            Normalization::Softmax => softmax(&ys),
            Normalization::Simplemax => {
                let s: f64 = ys.iter().sum();
                ys.iter().map(|y| y / s).collect()
            }
            n if k == 2 => {
                let p0 = if n == Normalization::None {
                    ys[0]
                } else {
                    link(n, ys[0])
                };
                vec![p0, 1.0 - p0]
            }
            Normalization::None => {
                let mut p = ys.clone();
                let rest: f64 = p[..k - 1].iter().sum();
                p[k - 1] = 1.0 - rest;
                p
            }
            n => {
                let p: Vec<f64> = ys.iter().map(|y| link(n, *y)).collect();
                let s: f64 = p.iter().sum();
                p.iter().map(|x| x / s).collect()
            }
        };
        Ok(classified(cats.into_iter().zip(probs).collect()))
    }

    fn tree(&mut self, function: Function, t: &'d TreeModel) -> Result<Pred> {
        use crate::parse::MissingStrategy as M;
        if self.pred_value(&t.root.predicate)? != Some(true) {
            return Ok(Pred::null());
        }
        if matches!(t.missing, M::WeightedConfidence | M::AggregateNodes) {
            return self.tree_spread(function, t);
        }
        let mut node: &'d TreeNode = &t.root;
        let chosen = 'walk: loop {
            if node.children.is_empty() {
                break Some(node);
            }
            let mut next = None;
            for c in &node.children {
                match self.pred_value(&c.predicate)? {
                    Some(true) => {
                        next = Some(c);
                        break;
                    }
                    Some(false) => {}
                    None => match t.missing {
                        // Handled by tree_spread before the walk starts.
                        M::None | M::WeightedConfidence | M::AggregateNodes => {}
                        M::LastPrediction => break 'walk Some(node),
                        M::NullPrediction => break 'walk None,
                        M::DefaultChild => {
                            next = node
                                .children
                                .iter()
                                .find(|k| k.id.is_some() && k.id == node.default_child);
                            if next.is_none() {
                                break 'walk Some(node);
                            }
                            break;
                        }
                    },
                }
            }
            match next {
                Some(c) => node = c,
                None if t.no_true_child_last => break Some(node),
                None => break None,
            }
        };
        let Some(n) = chosen else {
            return Ok(Pred::null());
        };
        let entity = n.id.clone();
        match function {
            Function::Classification => {
                let mut p = if n.distribution.is_empty() {
                    match &n.score {
                        Some(s) => classified(vec![(s.clone(), 1.0)]),
                        None => Pred::null(),
                    }
                } else {
                    classified(n.distribution.clone())
                };
                // The node's score, when given, is the prediction (ties in the distribution aside).
                if let Some(s) = &n.score {
                    p.value = Some(Value::Str(s.clone()));
                }
                p.entity = entity;
                Ok(p)
            }
            _ => {
                let v = n.score.as_deref().and_then(crate::parse::parse_f64);
                Ok(Pred {
                    value: v.map(Value::Num),
                    entity,
                    ..Pred::default()
                })
            }
        }
    }

    /// The weightedConfidence and aggregateNodes strategies: where a missing value leaves a
    /// split open, every child it does not rule out is followed; the leaves reached are combined
    /// by their share of the records (weightedConfidence) or by adding their record counts
    /// (aggregateNodes).
    fn tree_spread(&mut self, function: Function, t: &'d TreeModel) -> Result<Pred> {
        let mut leaves: Vec<(&'d TreeNode, f64)> = Vec::new();
        let mut stack: Vec<(&'d TreeNode, f64)> = vec![(&t.root, 1.0)];
        while let Some((node, w)) = stack.pop() {
            if node.children.is_empty() {
                leaves.push((node, w));
                continue;
            }
            let mut open: Vec<&'d TreeNode> = Vec::new();
            let mut chosen = None;
            for c in &node.children {
                match self.pred_value(&c.predicate)? {
                    Some(true) if open.is_empty() => {
                        chosen = Some(c);
                        break;
                    }
                    Some(true) | None => open.push(c),
                    Some(false) => {}
                }
            }
            match (chosen, open.is_empty()) {
                (Some(c), _) => stack.push((c, w)),
                (None, false) => {
                    let total: f64 = open.iter().map(|c| c.record_count.unwrap_or(0.0)).sum();
                    for c in open {
                        let share = if total > 0.0 {
                            c.record_count.unwrap_or(0.0) / total
                        } else {
                            1.0
                        };
                        stack.push((c, w * share));
                    }
                }
                (None, true) if t.no_true_child_last => leaves.push((node, w)),
                (None, true) => {}
            }
        }
        if leaves.is_empty() {
            return Ok(Pred::null());
        }
        let aggregate = t.missing == crate::parse::MissingStrategy::AggregateNodes;
        // aggregateNodes weighs each leaf by its record count; weightedConfidence by its share.
        let weight = |(n, w): &(&TreeNode, f64)| {
            if aggregate {
                n.record_count
                    .unwrap_or_else(|| n.counts.iter().map(|(_, c)| c).sum())
            } else {
                *w
            }
        };
        let total: f64 = leaves.iter().map(weight).sum();
        if function == Function::Classification {
            let mut acc: Vec<(String, f64)> = Vec::new();
            for leaf in &leaves {
                let share = if total > 0.0 {
                    weight(leaf) / total
                } else {
                    0.0
                };
                for (c, p) in &leaf.0.distribution {
                    match acc.iter_mut().find(|(k, _)| k == c) {
                        Some((_, v)) => *v += share * p,
                        None => acc.push((c.clone(), share * p)),
                    }
                }
            }
            return Ok(classified(acc));
        }
        let mut y = 0.0;
        for leaf in &leaves {
            let Some(v) = leaf.0.score.as_deref().and_then(crate::parse::parse_f64) else {
                return Ok(Pred::null());
            };
            y += if total > 0.0 {
                weight(leaf) / total
            } else {
                0.0
            } * v;
        }
        Ok(Pred {
            value: Some(Value::Num(y)),
            ..Pred::default()
        })
    }

    fn mining(&mut self, function: Function, s: &'d crate::parse::Segmentation) -> Result<Pred> {
        use SegmentationMethod as S;
        let method = s.method;
        if method == S::ModelChain || method == S::SelectFirst {
            let mut last = Pred::null();
            for seg in &s.segments {
                if self.pred_value(&seg.predicate)? != Some(true) {
                    continue;
                }
                let p = self.model(&seg.model)?;
                if method == S::SelectFirst {
                    return Ok(p);
                }
                self.publish(&seg.model, &p)?;
                last = p;
            }
            return Ok(last);
        }
        let mut preds: Vec<(f64, Pred)> = Vec::new();
        for seg in &s.segments {
            if self.pred_value(&seg.predicate)? != Some(true) {
                continue;
            }
            let p = self.model(&seg.model)?;
            if p.value.is_none() {
                if s.skip_missing {
                    continue;
                }
                return Ok(Pred::null());
            }
            preds.push((seg.weight, p));
        }
        if preds.is_empty() {
            return Ok(Pred::null());
        }
        if function == Function::Classification {
            return self.vote(method, &preds);
        }
        let xs: Vec<(f64, f64)> = preds
            .iter()
            .map(|(w, p)| (*w, p.value.as_ref().and_then(as_num).unwrap_or(f64::NAN)))
            .collect();
        let n = xs.len() as f64;
        let y = match method {
            S::Sum => xs.iter().map(|(_, x)| x).sum(),
            S::WeightedSum => xs.iter().map(|(w, x)| w * x).sum(),
            S::Average => xs.iter().map(|(_, x)| x).sum::<f64>() / n,
            S::WeightedAverage => {
                xs.iter().map(|(w, x)| w * x).sum::<f64>() / xs.iter().map(|(w, _)| w).sum::<f64>()
            }
            S::Max => xs.iter().map(|(_, x)| *x).fold(f64::NEG_INFINITY, f64::max),
            S::Median => {
                let mut v: Vec<f64> = xs.iter().map(|(_, x)| *x).collect();
                v.sort_by(|a, b| a.total_cmp(b));
                let m = v.len() / 2;
                if v.len() % 2 == 1 {
                    v[m]
                } else {
                    (v[m - 1] + v[m]) / 2.0
                }
            }
            other => return Err(fail(format!("{other:?} for a regression segmentation"))),
        };
        Ok(Pred {
            value: Some(Value::Num(y)),
            ..Pred::default()
        })
    }

    fn vote(&self, method: SegmentationMethod, preds: &[(f64, Pred)]) -> Result<Pred> {
        use SegmentationMethod as S;
        let mut acc: Vec<(String, f64)> = Vec::new();
        let mut add = |cat: &str, x: f64| match acc.iter_mut().find(|(c, _)| same_category(c, cat))
        {
            Some((_, v)) => *v += x,
            None => acc.push((cat.to_string(), x)),
        };
        match method {
            S::MajorityVote | S::WeightedMajorityVote => {
                let total: f64 = preds
                    .iter()
                    .map(|(w, _)| if method == S::MajorityVote { 1.0 } else { *w })
                    .sum();
                for (w, p) in preds {
                    let w = if method == S::MajorityVote { 1.0 } else { *w };
                    if let Some(c) = p.value.as_ref().and_then(text) {
                        add(&c, w / total);
                    }
                }
            }
            S::Average | S::WeightedAverage => {
                let total: f64 = preds
                    .iter()
                    .map(|(w, _)| if method == S::Average { 1.0 } else { *w })
                    .sum();
                for (w, p) in preds {
                    let w = if method == S::Average { 1.0 } else { *w };
                    for (c, x) in &p.probs {
                        add(c, x * w);
                    }
                }
                for (_, v) in &mut acc {
                    *v /= total;
                }
            }
            S::Max => {
                let best = preds
                    .iter()
                    .map(|(_, p)| p)
                    .max_by(|a, b| {
                        let top = |p: &Pred| {
                            p.probs
                                .iter()
                                .map(|(_, x)| *x)
                                .fold(f64::NEG_INFINITY, f64::max)
                        };
                        top(a).total_cmp(&top(b))
                    })
                    .cloned()
                    .unwrap_or_default();
                return Ok(best);
            }
            other => return Err(fail(format!("{other:?} for a classification segmentation"))),
        }
        Ok(classified(acc))
    }

    fn naive_bayes(&mut self, nb: &'d crate::parse::NaiveBayes) -> Result<Pred> {
        let total: f64 = nb.priors.iter().map(|(_, c)| c).sum();
        let mut lp: Vec<f64> = nb.priors.iter().map(|(_, c)| (c / total).ln()).collect();
        for input in &nb.inputs {
            match input {
                BayesInput::Gaussian { field, stats } => {
                    let Some(x) = as_num(&self.get(field)?) else {
                        continue;
                    };
                    for (k, &(mean, var)) in stats.iter().enumerate() {
                        lp[k] += -0.5 * (2.0 * std::f64::consts::PI * var).ln()
                            - (x - mean) * (x - mean) / (2.0 * var);
                    }
                }
                BayesInput::Discrete {
                    field,
                    counts,
                    totals,
                } => {
                    let v = self.get(field)?;
                    let Some(t) = text(&v).filter(|_| !is_missing(&v)) else {
                        continue;
                    };
                    let Some(row) = counts
                        .iter()
                        .find(|(k, _)| same_category(k, &t))
                        .map(|(_, r)| r)
                    else {
                        continue;
                    };
                    for (k, (&c, &class_total)) in row.iter().zip(totals).enumerate() {
                        let p = if c == 0.0 || class_total == 0.0 {
                            nb.threshold
                        } else {
                            c / class_total
                        };
                        lp[k] += p.ln();
                    }
                }
            }
        }
        let probs = softmax(&lp);
        Ok(classified(
            nb.priors
                .iter()
                .map(|(c, _)| c.clone())
                .zip(probs)
                .collect(),
        ))
    }

    fn clustering(&mut self, c: &'d crate::parse::Clustering) -> Result<Pred> {
        let mut x = Vec::with_capacity(c.fields.len());
        for f in &c.fields {
            x.push(as_num(&self.get(f)?));
        }
        let mut best = (0usize, f64::INFINITY);
        for (k, center) in c.centers.iter().enumerate() {
            let mut d = 0.0;
            for (xi, ci) in x.iter().zip(center) {
                if let Some(xi) = xi {
                    d += (xi - ci) * (xi - ci);
                }
            }
            if !c.squared {
                d = d.sqrt();
            }
            if d < best.1 {
                best = (k, d);
            }
        }
        Ok(Pred {
            value: Some(Value::Num(best.0 as f64)),
            entity: Some(best.0.to_string()),
            ..Pred::default()
        })
    }

    fn neural(&mut self, function: Function, n: &'d crate::parse::Neural) -> Result<Pred> {
        use crate::parse::LayerNorm;
        // Every input's and neuron's value by slot, as the parser numbered them.
        let mut values = Vec::with_capacity(n.slots);
        for e in &n.inputs {
            let Some(x) = as_num(&self.eval(e)?) else {
                return Ok(Pred::null());
            };
            values.push(x);
        }
        for layer in &n.layers {
            let mut zs = Vec::with_capacity(layer.neurons.len());
            for neuron in &layer.neurons {
                let mut z = neuron.bias;
                for &(from, w) in &neuron.inputs {
                    z += w * values[from];
                }
                zs.push(activation(layer.activation, z));
            }
            match layer.normalization {
                LayerNorm::Softmax => zs = softmax(&zs),
                LayerNorm::Simplemax => {
                    let s: f64 = zs.iter().sum();
                    zs.iter_mut().for_each(|z| *z /= s);
                }
                LayerNorm::None => {}
            }
            values.extend(zs);
        }
        let out = |at: usize| {
            values
                .get(at)
                .copied()
                .ok_or_else(|| fail("an output neuron past the network"))
        };
        if function == Function::Classification {
            let mut probs = Vec::new();
            for (id, e) in &n.outputs {
                match e {
                    Expr::NormDiscrete { value, .. } => probs.push((value.clone(), out(*id)?)),
                    _ => return Err(fail("a classifier's NeuralOutput is not a NormDiscrete")),
                }
            }
            return Ok(classified(probs));
        }
        let (id, e) = n
            .outputs
            .first()
            .ok_or_else(|| fail("a network without outputs"))?;
        let z = out(*id)?;
        let y = match e {
            Expr::FieldRef { .. } => z,
            Expr::NormContinuous { points, .. } => denorm(z, points),
            _ => {
                return Err(fail(
                    "a regression NeuralOutput other than FieldRef or NormContinuous",
                ));
            }
        };
        Ok(Pred {
            value: Some(Value::Num(y)),
            ..Pred::default()
        })
    }

    /// A scorecard: the initial score plus each characteristic's first matching attribute's
    /// partial score. With reason codes, each characteristic's points (its baseline minus its
    /// score, or the score minus the baseline with `pointsAbove`) add up under the reason code
    /// of the attribute (or of the characteristic); the codes whose points are not negative,
    /// most points first (ties in document order), are the ranked reasons.
    fn scorecard(&mut self, sc: &'d crate::parse::Scorecard) -> Result<Pred> {
        let mut score = sc.initial;
        let mut points: Vec<(&'d str, f64)> = Vec::new();
        for c in &sc.characteristics {
            let mut hit = None;
            for a in &c.attributes {
                if self.pred_value(&a.predicate)? == Some(true) {
                    hit = Some(a);
                    break;
                }
            }
            let Some(a) = hit else {
                return Err(fail(format!(
                    "no attribute of the characteristic {:?} holds for this row",
                    c.name
                )));
            };
            score += a.score;
            if !sc.use_reason_codes {
                continue;
            }
            let code = a.reason.as_deref().or(c.reason.as_deref()).ok_or_else(|| {
                fail(format!(
                    "the characteristic {:?} has no reason code",
                    c.name
                ))
            })?;
            let baseline = c.baseline.or(sc.baseline).ok_or_else(|| {
                fail(format!(
                    "the characteristic {:?} has no baseline score",
                    c.name
                ))
            })?;
            let diff = if sc.points_above {
                a.score - baseline
            } else {
                baseline - a.score
            };
            match points.iter_mut().find(|(k, _)| *k == code) {
                Some((_, p)) => *p += diff,
                None => points.push((code, diff)),
            }
        }
        points.retain(|(_, p)| *p >= 0.0);
        // A stable sort keeps equal points in document order.
        points.sort_by(|a, b| b.1.total_cmp(&a.1));
        Ok(Pred {
            value: Some(Value::Num(score)),
            reasons: points.into_iter().map(|(k, _)| k.to_string()).collect(),
            ..Pred::default()
        })
    }

    fn general(
        &mut self,
        function: Function,
        g: &'d crate::parse::GeneralRegression,
    ) -> Result<Pred> {
        // Each parameter's value: the product of its cells (a factor's level indicator, a
        // covariate to its exponent); a parameter without cells is the intercept, 1.
        use crate::parse::Cell;
        let mut x = Vec::with_capacity(g.cells.len());
        for cells in &g.cells {
            let mut v = 1.0;
            for cell in cells {
                let (Cell::Level { field: pred, .. } | Cell::Power { field: pred, .. }) = cell;
                let field = self.get(pred)?;
                if is_missing(&field) {
                    return Ok(Pred::null());
                }
                match cell {
                    Cell::Level { level, .. } => {
                        let t = text(&field).unwrap_or_default();
                        v *= if same_category(&t, level) { 1.0 } else { 0.0 };
                    }
                    Cell::Power { exponent, .. } => {
                        let xv = as_num(&field)
                            .ok_or_else(|| fail(format!("{pred:?} is not a number")))?;
                        v *= xv.powf(*exponent);
                    }
                }
            }
            x.push(v);
        }
        let offset = match &g.offset_field {
            Some(f) => as_num(&self.get(f)?).unwrap_or(0.0),
            None => g.offset.unwrap_or(0.0),
        };
        if let Some(cox) = &g.cox {
            return self.cox(g, cox, &x);
        }
        let eta = |cat: Option<&str>| -> f64 {
            offset
                + g.betas
                    .iter()
                    .filter(|(c, _, _)| c.as_deref() == cat || cat.is_none())
                    .map(|&(_, p, b)| b * x[p])
                    .sum::<f64>()
        };
        if function != Function::Classification {
            let e = eta(None);
            let y = match g.link {
                crate::parse::GlmLink::Identity => e,
                crate::parse::GlmLink::Log => e.exp(),
                crate::parse::GlmLink::Logit => 1.0 / (1.0 + (-e).exp()),
                crate::parse::GlmLink::Probit => link(Normalization::Probit, e),
                crate::parse::GlmLink::Cloglog => link(Normalization::Cloglog, e),
                crate::parse::GlmLink::Loglog => link(Normalization::Loglog, e),
                crate::parse::GlmLink::Power(0.0) => e.exp(),
                crate::parse::GlmLink::Power(a) => e.powf(1.0 / a),
            };
            return Ok(Pred {
                value: Some(Value::Num(y)),
                ..Pred::default()
            });
        }
        if let Some(cum) = g.cumulative {
            return self.ordinal(g, cum, &x, offset);
        }
        if !g.multinomial {
            return Err(fail(format!(
                "a {} GeneralRegressionModel that classifies",
                g.model_type
            )));
        }
        // One linear predictor per category; the reference category's is 0.
        let mut cats: Vec<String> = self.target_values();
        if cats.is_empty() {
            for (c, _, _) in &g.betas {
                if let Some(c) = c {
                    if !cats.contains(c) {
                        cats.push(c.clone());
                    }
                }
            }
        }
        let etas: Vec<f64> = cats
            .iter()
            .map(|c| {
                if g.target_reference.as_deref() == Some(c.as_str())
                    || !g
                        .betas
                        .iter()
                        .any(|(k, _, _)| k.as_deref() == Some(c.as_str()))
                {
                    0.0
                } else {
                    offset
                        + g.betas
                            .iter()
                            .filter(|(k, _, _)| k.as_deref() == Some(c.as_str()))
                            .map(|&(_, p, b)| b * x[p])
                            .sum::<f64>()
                }
            })
            .collect();
        Ok(classified(cats.into_iter().zip(softmax(&etas)).collect()))
    }

    /// A Cox regression's cumulative hazard at the row's end time: the baseline's (its stratum's,
    /// in a stratified model) at the last time not after it (0 before the first), times
    /// `exp(Σ beta (x - reference point))`; missing past the baseline's maximum time.
    fn cox(
        &mut self,
        g: &crate::parse::GeneralRegression,
        cox: &'d crate::parse::Cox,
        x: &[f64],
    ) -> Result<Pred> {
        let Some(t) = as_num(&self.get(&cox.end_time)?) else {
            return Ok(Pred::null());
        };
        let baseline = match &cox.strata {
            None => cox.baselines.first(),
            Some(f) => {
                let v = self.get(f)?;
                let Some(v) = text(&v).filter(|_| !is_missing(&v)) else {
                    return Ok(Pred::null());
                };
                cox.baselines
                    .iter()
                    .find(|b| b.stratum.as_deref().is_some_and(|s| same_category(s, &v)))
            }
        };
        let Some(baseline) = baseline else {
            return Ok(Pred::null());
        };
        if t > baseline.max_time {
            return Ok(Pred::null());
        }
        let hazard = baseline
            .cells
            .iter()
            .take_while(|(time, _)| *time <= t)
            .last()
            .map_or(0.0, |(_, h)| *h);
        let r: f64 = g
            .betas
            .iter()
            .map(|&(_, p, b)| b * (x[p] - cox.reference[p]))
            .sum();
        Ok(Pred {
            value: Some(Value::Num(hazard * r.exp())),
            ..Pred::default()
        })
    }

    /// An ordinal model: for each target category but the last, in the data dictionary's order,
    /// the inverse cumulative link of its linear predictor (its own intercept, the parameters
    /// every category shares, the offset) is the probability of that category or a lower one;
    /// a category's probability is the step from the one below.
    fn ordinal(
        &self,
        g: &crate::parse::GeneralRegression,
        cum: Normalization,
        x: &[f64],
        offset: f64,
    ) -> Result<Pred> {
        let cats = self.target_values();
        if cats.len() < 2 {
            return Err(fail(
                "an ordinal GeneralRegressionModel whose target lists fewer than two values",
            ));
        }
        let mut probs = Vec::with_capacity(cats.len());
        let mut below = 0.0;
        for (j, c) in cats.iter().enumerate() {
            let at_most = if j + 1 == cats.len() {
                1.0
            } else {
                let eta = offset
                    + g.betas
                        .iter()
                        .filter(|(k, _, _)| k.as_deref().is_none_or(|k| k == c))
                        .map(|&(_, p, b)| b * x[p])
                        .sum::<f64>();
                link(cum, eta)
            };
            probs.push((c.clone(), at_most - below));
            below = at_most;
        }
        Ok(classified(probs))
    }

    fn svm(&mut self, function: Function, s: &'d crate::parse::SvmModel) -> Result<Pred> {
        let mut x = Vec::with_capacity(s.fields.len());
        for f in &s.fields {
            let Some(v) = as_num(&self.get(f)?) else {
                return Ok(Pred::null());
            };
            x.push(v);
        }
        let kernel = |v: &[f64]| -> f64 {
            match s.kernel {
                SvmKernel::Linear => dot(&x, v),
                SvmKernel::Poly {
                    gamma,
                    coef0,
                    degree,
                } => (gamma * dot(&x, v) + coef0).powf(degree),
                SvmKernel::Rbf { gamma } => {
                    let d: f64 = x.iter().zip(v).map(|(a, b)| (a - b) * (a - b)).sum();
                    (-gamma * d).exp()
                }
                SvmKernel::Sigmoid { gamma, coef0 } => (gamma * dot(&x, v) + coef0).tanh(),
            }
        };
        let mut fs = Vec::with_capacity(s.machines.len());
        for m in &s.machines {
            let mut f = m.bias;
            for (i, a) in &m.coefs {
                f += a * kernel(&s.vectors[*i]);
            }
            fs.push(f);
        }
        if function != Function::Classification {
            let f = *fs.first().ok_or_else(|| fail("an SVM without machines"))?;
            return Ok(Pred {
                value: Some(Value::Num(f)),
                ..Pred::default()
            });
        }
        if s.one_against_one {
            let mut votes: Vec<(String, usize)> = Vec::new();
            for (m, f) in s.machines.iter().zip(&fs) {
                let threshold = m.threshold.unwrap_or(s.threshold);
                let winner = if *f < threshold {
                    &m.target
                } else {
                    &m.alternate
                };
                let w = winner
                    .clone()
                    .ok_or_else(|| fail("a one-against-one machine without both categories"))?;
                match votes.iter_mut().find(|(c, _)| *c == w) {
                    Some((_, n)) => *n += 1,
                    None => votes.push((w, 1)),
                }
            }
            let top = votes.iter().map(|(_, n)| *n).max().unwrap_or(0);
            let mut winners: Vec<String> = votes
                .iter()
                .filter(|(_, n)| *n == top)
                .map(|(c, _)| c.clone())
                .collect();
            // Ties go to the category listed first for the target, as libsvm's lowest index.
            let order = self.target_values();
            winners.sort_by_key(|w| {
                order
                    .iter()
                    .position(|v| same_category(v, w))
                    .unwrap_or(usize::MAX)
            });
            return Ok(Pred {
                value: winners.first().map(|w| Value::Str(w.clone())),
                ..Pred::default()
            });
        }
        // One against all: the machine with the smallest value wins.
        let (k, _) =
            fs.iter().enumerate().fold(
                (0, f64::INFINITY),
                |b, (k, f)| if *f < b.1 { (k, *f) } else { b },
            );
        let cat = s.machines.get(k).and_then(|m| m.target.clone());
        Ok(Pred {
            value: cat.map(Value::Str),
            ..Pred::default()
        })
    }
}

/// A classifier's answer from category probabilities: the most probable (the first on ties).
fn classified(probs: Vec<(String, f64)>) -> Pred {
    Pred {
        value: first_max(probs.iter().map(|(_, p)| *p)).map(|i| Value::Str(probs[i].0.clone())),
        probs,
        ..Pred::default()
    }
}

/// The index of the first greatest value (none for no values): a classifier's predicted class.
pub(crate) fn first_max(xs: impl IntoIterator<Item = f64>) -> Option<usize> {
    let mut best: Option<(usize, f64)> = None;
    for (i, p) in xs.into_iter().enumerate() {
        if best.is_none_or(|(_, b)| p > b) {
            best = Some((i, p));
        }
    }
    best.map(|(i, _)| i)
}

/// A regression target's rescaling, bounds and cast, applied to a model's prediction.
pub(crate) fn apply_target(t: &crate::parse::Target, x: f64) -> f64 {
    let mut y = x * t.factor + t.constant;
    if let Some(lo) = t.min {
        y = y.max(lo);
    }
    if let Some(hi) = t.max {
        y = y.min(hi);
    }
    use crate::parse::Rounding;
    match t.cast {
        Some(Rounding::Round) => y.round(),
        Some(Rounding::Ceiling) => y.ceil(),
        Some(Rounding::Floor) => y.floor(),
        None => y,
    }
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

fn softmax(ys: &[f64]) -> Vec<f64> {
    let max = ys.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let e: Vec<f64> = ys.iter().map(|y| (y - max).exp()).collect();
    let s: f64 = e.iter().sum();
    e.iter().map(|x| x / s).collect()
}

fn link(n: Normalization, y: f64) -> f64 {
    match n {
        Normalization::None | Normalization::Softmax | Normalization::Simplemax => y,
        Normalization::Logit => 1.0 / (1.0 + (-y).exp()),
        Normalization::Exp => y.exp(),
        Normalization::Probit => 0.5 * (1.0 + erf(y / std::f64::consts::SQRT_2)),
        Normalization::Cloglog => 1.0 - (-(y.exp())).exp(),
        Normalization::Loglog => (-((-y).exp())).exp(),
        Normalization::Cauchit => 0.5 + y.atan() / std::f64::consts::PI,
    }
}

/// The error function, to within an ulp (musl's, through the `libm` crate): probit links and
/// `stdNormalCDF` must match other engines to 1e-12.
fn erf(x: f64) -> f64 {
    libm::erf(x)
}

fn activation(f: crate::parse::Activation, z: f64) -> f64 {
    use crate::parse::Activation as A;
    match f {
        A::Threshold(t) => {
            if z > t {
                1.0
            } else {
                0.0
            }
        }
        A::Logistic => 1.0 / (1.0 + (-z).exp()),
        A::Tanh => z.tanh(),
        A::Identity => z,
        A::Exponential => z.exp(),
        A::Reciprocal => 1.0 / z,
        A::Square => z * z,
        A::Gauss => (-(z * z)).exp(),
        A::Sine => z.sin(),
        A::Cosine => z.cos(),
        A::Elliott => z / (1.0 + z.abs()),
        A::Arctan => 2.0 * z.atan() / std::f64::consts::PI,
        A::Rectifier => z.max(0.0),
    }
}

fn norm_continuous(x: f64, points: &[(f64, f64)], outliers: Outliers) -> Value {
    let (first, last) = (points[0], points[points.len() - 1]);
    if x < first.0 || x > last.0 {
        match outliers {
            Outliers::Missing => return Value::Missing,
            Outliers::Extreme => return Value::Num(if x < first.0 { first.1 } else { last.1 }),
            Outliers::Keep => {}
        }
    }
    let seg = points
        .windows(2)
        .find(|w| x <= w[1].0)
        .unwrap_or(&points[points.len() - 2..]);
    let (a, b) = (seg[0], seg[1]);
    Value::Num(a.1 + (x - a.0) / (b.0 - a.0) * (b.1 - a.1))
}

fn denorm(z: f64, points: &[(f64, f64)]) -> f64 {
    let seg = points
        .windows(2)
        .find(|w| z <= w[1].1)
        .unwrap_or(&points[points.len() - 2..]);
    let (a, b) = (seg[0], seg[1]);
    a.0 + (z - a.1) / (b.1 - a.1) * (b.0 - a.0)
}

/// `v op c`, where `num` is `c` as a number (if it is one) and `float` compares in float32.
fn compare(v: &Value, c: &str, num: Option<f64>, op: Cmp, float: bool) -> bool {
    let ord = match (as_num(v), num) {
        (Some(x), Some(y))
            if !matches!(v, Value::Str(_))
                || crate::parse::parse_f64(&text(v).unwrap_or_default()).is_some() =>
        {
            if float {
                (x as f32).partial_cmp(&(y as f32))
            } else {
                x.partial_cmp(&y)
            }
        }
        _ => text(v).map(|t| t.as_str().cmp(c)),
    };
    ord.is_some_and(|o| op.holds(o))
}

fn bool_of(v: &Value) -> Option<bool> {
    match v {
        Value::Bool(b) => Some(*b),
        Value::Num(x) if !x.is_nan() => Some(*x != 0.0),
        Value::Str(s) => match s.as_str() {
            "true" => Some(true),
            "false" => Some(false),
            _ => None,
        },
        _ => None,
    }
}

/// PMML's built-in functions (and the `x-` ones JPMML writers use).
fn apply(f: Builtin, a: &[Value]) -> Result<Value> {
    use Builtin as B;
    let n = |i: usize| -> Result<f64> {
        a.get(i)
            .and_then(as_num)
            .ok_or_else(|| fail(format!("{}: argument {} is not a number", f.name(), i + 1)))
    };
    // The parser checked every call; this keeps a document built another way from panicking.
    let (least, most) = f.arity();
    if a.len() < least || most.is_some_and(|m| a.len() > m) {
        return Err(fail(format!("{} with {} arguments", f.name(), a.len())));
    }
    let num = Value::Num;
    Ok(match f {
        B::Add => num(n(0)? + n(1)?),
        B::Sub => num(n(0)? - n(1)?),
        B::Mul => num(n(0)? * n(1)?),
        B::Div => num(n(0)? / n(1)?),
        B::Min | B::Max | B::Sum | B::Avg | B::Product | B::Median => {
            let xs: Vec<f64> = (0..a.len()).map(n).collect::<Result<_>>()?;
            num(match f {
                B::Min => xs.iter().copied().fold(f64::INFINITY, f64::min),
                B::Max => xs.iter().copied().fold(f64::NEG_INFINITY, f64::max),
                B::Sum => xs.iter().sum(),
                B::Avg => xs.iter().sum::<f64>() / xs.len() as f64,
                B::Product => xs.iter().product(),
                _ => {
                    let mut v = xs.clone();
                    v.sort_by(|p, q| p.total_cmp(q));
                    let m = v.len() / 2;
                    if v.len() % 2 == 1 {
                        v[m]
                    } else {
                        (v[m - 1] + v[m]) / 2.0
                    }
                }
            })
        }
        B::Log10 => num(n(0)?.log10()),
        B::Ln => num(n(0)?.ln()),
        B::Sqrt => num(n(0)?.sqrt()),
        B::Abs => num(n(0)?.abs()),
        B::Exp => num(n(0)?.exp()),
        B::Pow => num(n(0)?.powf(n(1)?)),
        B::Threshold => num(if n(0)? > n(1)? { 1.0 } else { 0.0 }),
        B::Floor => num(n(0)?.floor()),
        B::Ceil => num(n(0)?.ceil()),
        B::Round => num(n(0)?.round_ties_even()),
        B::Expm1 => num(n(0)?.exp_m1()),
        B::Ln1p => num(n(0)?.ln_1p()),
        B::Atan => num(n(0)?.atan()),
        B::Tanh => num(n(0)?.tanh()),
        B::Sin => num(n(0)?.sin()),
        B::Cos => num(n(0)?.cos()),
        B::StdNormalCdf => num(0.5 * (1.0 + erf(n(0)? / std::f64::consts::SQRT_2))),
        B::Erf => num(erf(n(0)?)),
        B::IsMissing => Value::Bool(a.first().is_none_or(is_missing)),
        B::IsNotMissing => Value::Bool(!a.first().is_none_or(is_missing)),
        B::Compare(op) => {
            let c = text(&a[1]).unwrap_or_default();
            Value::Bool(compare(&a[0], &c, crate::parse::parse_f64(&c), op, false))
        }
        B::And | B::Or => {
            let bs: Vec<Option<bool>> = a.iter().map(bool_of).collect();
            let r = if f == B::And {
                if bs.contains(&Some(false)) {
                    Some(false)
                } else if bs.iter().all(Option::is_some) {
                    Some(true)
                } else {
                    None
                }
            } else if bs.contains(&Some(true)) {
                Some(true)
            } else if bs.iter().all(Option::is_some) {
                Some(false)
            } else {
                None
            };
            r.map_or(Value::Missing, Value::Bool)
        }
        B::Not => bool_of(&a[0]).map_or(Value::Missing, |b| Value::Bool(!b)),
        B::If => match bool_of(&a[0]) {
            Some(true) => a[1].clone(),
            Some(false) => a.get(2).cloned().unwrap_or(Value::Missing),
            None => Value::Missing,
        },
        B::IsIn | B::IsNotIn => {
            let t = text(&a[0]).unwrap_or_default();
            let found = a[1..]
                .iter()
                .any(|x| text(x).is_some_and(|s| same_category(&s, &t)));
            Value::Bool(found == (f == B::IsIn))
        }
        B::Lowercase => Value::Str(text(&a[0]).unwrap_or_default().to_lowercase()),
        B::Uppercase => Value::Str(text(&a[0]).unwrap_or_default().to_uppercase()),
        B::TrimBlanks => Value::Str(text(&a[0]).unwrap_or_default().trim().to_string()),
        B::Concat => Value::Str(a.iter().filter_map(text).collect()),
    })
}
