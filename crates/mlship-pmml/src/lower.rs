//! PMML trees and tree ensembles lowered to mlship's tree IR at load, where PMML's semantics
//! allow it: rows without a missing value then score in blocks like any other forest, and give
//! what the row evaluator (`eval`) gives, bit for bit. What this module does not lower, and every
//! row holding a missing value, stays with the evaluator.
//!
//! Lowered: a TreeModel, or a MiningModel whose segments are all TreeModels under `<True/>`,
//! combined by `average` or `weightedAverage` (classification), or `average`, `weightedAverage`,
//! `sum` or `weightedSum` (regression). A node's children are tried in order, as PMML does: each
//! numeric SimplePredicate becomes one `x <= t` split whose other side tries the next child; a
//! `<True/>` child, or one that is the exact complement of the child before it, ends the list;
//! past the last child the node's own score stands where `noTrueChildStrategy` says so. Every
//! field the models read is a continuous numeric input of the data dictionary with no outlier
//! bounds, so nothing in the mining schemas changes a value that is present.

use mlship_model::{Node, Tree, TreeEnsemble, TreeHead};

use crate::eval::{apply_target, first_max, same_category};
use crate::func::{Cmp, SimpleOp};
use crate::parse::{
    DataType, Document, Function, Kind, ModelEl, OpType, Predicate, SegmentationMethod, TreeModel,
    TreeNode, Usage,
};

/// A PMML model lowered to the tree IR.
#[derive(Debug)]
pub struct Lowered {
    ir: TreeEnsemble,
    /// The leaf sums are divided by this: the number of trees (`average`), their total weight
    /// (`weightedAverage`), or 1 (a sum, or one tree: exact either way).
    divide: f64,
    /// One classification tree: its leaves also hold their label's index, last.
    single: bool,
    /// Inputs of data type float: the evaluator rounds them to float32 before comparing (done
    /// by the IR itself when every input the trees read is a float).
    round: Vec<bool>,
    /// Classes (classification), in the data dictionary's order; empty for regression.
    k: usize,
}

/// One row's prediction from the lowered trees.
pub enum RowPred {
    Value(f64),
    /// The class index, and the class probabilities written to the caller's buffer.
    Class(usize),
}

impl Lowered {
    /// The leaf sums of every row (`width` values each, see [`Lowered::predict`]), from the
    /// input's columns in the scorer's input order.
    pub fn sums(&self, cols: &[&[f64]], n: usize) -> mlship_model::Result<Vec<f64>> {
        if !self.round.contains(&true) {
            return Ok(self.ir.sums(cols, n)?.into_vec());
        }
        let rounded: Vec<std::borrow::Cow<'_, [f64]>> = cols
            .iter()
            .zip(&self.round)
            .map(|(c, &round)| {
                if round {
                    c.iter()
                        .map(|&x| f64::from(x as f32))
                        .collect::<Vec<_>>()
                        .into()
                } else {
                    (*c).into()
                }
            })
            .collect();
        let refs: Vec<&[f64]> = rounded.iter().map(|c| &**c).collect();
        Ok(self.ir.sums(&refs, n)?.into_vec())
    }

    /// The number of sums per row.
    pub fn width(&self) -> usize {
        self.ir.n_outputs()
    }

    /// The prediction from one row's sums, as the evaluator combines the trees; a classifier's
    /// probabilities are appended to `probs`.
    pub fn predict(
        &self,
        s: &[f64],
        target: Option<&crate::parse::Target>,
        probs: &mut Vec<f64>,
    ) -> RowPred {
        if self.k == 0 {
            let y = s[0] / self.divide;
            return RowPred::Value(target.map_or(y, |t| apply_target(t, y)));
        }
        let start = probs.len();
        probs.extend(s[..self.k].iter().map(|v| v / self.divide));
        if self.single {
            RowPred::Class(s[self.k] as usize)
        } else {
            RowPred::Class(first_max(probs[start..].iter().copied()).unwrap_or(0))
        }
    }
}

/// What lowering needs of the document, gathered once.
struct Ctx<'a> {
    doc: &'a Document,
    /// The scorer's inputs, by name: their index.
    inputs: &'a [String],
    classes: &'a [String],
    classify: bool,
    /// The inputs the trees read, and whether each is a float.
    used: Vec<bool>,
    float: Vec<bool>,
}

/// Lowers the document's top model, or says why not (`None`: the evaluator scores it).
pub fn lower(doc: &Document, inputs: &[String], classes: &[String]) -> Option<Lowered> {
    lower_model(doc, &doc.model, inputs, classes)
}

/// The segments of a top model chain that are sums of trees (sklearn2pmml's boosting
/// classifiers, XGBoost's and LightGBM's): by segment index, each lowered. The evaluator still
/// runs the chain, taking these segments' values from the lowered trees for rows without a
/// missing value; the top model's own schema must leave present values as they are.
pub fn lower_chain(doc: &Document, inputs: &[String]) -> Vec<(usize, Lowered)> {
    let top = &doc.model;
    let Kind::Mining(s) = &top.kind else {
        return Vec::new();
    };
    let mut cx = Ctx {
        doc,
        inputs,
        classes: &[],
        classify: false,
        used: vec![false; inputs.len()],
        float: vec![false; inputs.len()],
    };
    if s.method != SegmentationMethod::ModelChain || !top.locals.is_empty() || !cx.schema(top) {
        return Vec::new();
    }
    s.segments
        .iter()
        .enumerate()
        .filter(|(_, seg)| seg.model.function == Function::Regression)
        .filter_map(|(i, seg)| Some((i, lower_model(doc, &seg.model, inputs, &[])?)))
        .collect()
}

/// Lowers one model element: a tree, or a segmentation of trees.
fn lower_model(
    doc: &Document,
    top: &ModelEl,
    inputs: &[String],
    classes: &[String],
) -> Option<Lowered> {
    if !top.locals.is_empty()
        || top.function == Function::Clustering
        || top.outputs.iter().any(|o| {
            !matches!(
                o.feature,
                crate::parse::Feature::PredictedValue | crate::parse::Feature::Probability(_)
            )
        })
    {
        return None;
    }
    let classify = top.function == Function::Classification;
    let mut cx = Ctx {
        doc,
        inputs,
        classes,
        classify,
        used: vec![false; inputs.len()],
        float: vec![false; inputs.len()],
    };
    let mut fields_ok = cx.schema(top);
    let k = if classify { classes.len() } else { 0 };
    // (tree, weight): a weighted method scales each tree's leaves by its segment's weight, as
    // the evaluator multiplies each segment's prediction.
    let (trees, divide): (Vec<(&TreeModel, Option<f64>)>, f64) = match &top.kind {
        Kind::Tree(t) => (vec![(t, None)], 1.0),
        Kind::Mining(s) => {
            use SegmentationMethod as S;
            let weighted = matches!(s.method, S::WeightedAverage | S::WeightedSum);
            let mut trees = Vec::with_capacity(s.segments.len());
            for seg in &s.segments {
                let Kind::Tree(t) = &seg.model.kind else {
                    return None;
                };
                if !matches!(seg.predicate, Predicate::True)
                    || seg.model.function != top.function
                    || !seg.model.locals.is_empty()
                    || seg.model.target.is_some()
                {
                    return None;
                }
                fields_ok &= cx.schema(&seg.model);
                trees.push((t, weighted.then_some(seg.weight)));
            }
            // The evaluator's totals: one per segment, or their weights, added in order.
            let total = |w: bool| -> f64 {
                if w {
                    s.segments.iter().map(|s| s.weight).sum()
                } else {
                    s.segments.iter().map(|_| 1.0).sum()
                }
            };
            let divide = match (s.method, classify) {
                (S::Average | S::WeightedAverage, _) => total(weighted),
                (S::Sum | S::WeightedSum, false) => 1.0,
                _ => return None,
            };
            (trees, divide)
        }
        _ => return None,
    };
    if !fields_ok || trees.is_empty() {
        return None;
    }
    let single = classify && matches!(top.kind, Kind::Tree(_));
    let width = if classify { k + usize::from(single) } else { 1 };
    let mut ir_trees = Vec::with_capacity(trees.len());
    for (t, w) in trees {
        ir_trees.push(cx.tree(t, w, width, single)?);
    }
    // Compare in float32 throughout when every input the trees read is a float.
    let cast = cx.used.iter().zip(&cx.float).all(|(&u, &f)| !u || f);
    let head = TreeHead::sums_only(width);
    let trees = ir_trees
        .into_iter()
        .map(|(nodes, values)| Tree::new(nodes, values, width, 0, Vec::new()))
        .collect();
    let ir = TreeEnsemble::new(inputs.len(), width, trees, cast, head, Vec::new()).ok()?;
    Some(Lowered {
        ir,
        divide,
        single,
        round: if cast {
            vec![false; inputs.len()]
        } else {
            cx.float
        },
        k,
    })
}

/// A step of the breadth-first lowering of one PMML tree: a node's subtree, or the rest of its
/// children list from the `j`th on.
enum Work<'a> {
    Subtree(&'a TreeNode),
    Chain(&'a TreeNode, usize),
}

impl Ctx<'_> {
    /// Whether a model's mining schema leaves every present value as it is: its active fields
    /// are continuous numeric inputs without outlier bounds.
    fn schema(&mut self, m: &ModelEl) -> bool {
        m.fields
            .iter()
            .filter(|f| f.usage == Usage::Active)
            .all(|f| f.low.is_none() && f.high.is_none() && self.input(&f.name).is_some())
    }

    /// The input index of a field the trees may compare as a number.
    fn input(&mut self, name: &crate::parse::Name) -> Option<usize> {
        let f = self.doc.field(name.sym)?;
        if f.optype != OpType::Continuous
            || !matches!(
                f.dtype,
                DataType::Float | DataType::Double | DataType::Integer
            )
            || self.doc.transform(name.sym).is_some()
        {
            return None;
        }
        let i = self.inputs.iter().position(|n| *n == **name)?;
        self.float[i] = f.dtype == DataType::Float;
        Some(i)
    }

    /// One PMML tree as IR nodes and leaf values, children after their parents.
    fn tree(
        &mut self,
        t: &TreeModel,
        weight: Option<f64>,
        width: usize,
        single: bool,
    ) -> Option<(Vec<Node>, Vec<f64>)> {
        if !matches!(t.root.predicate, Predicate::True) {
            return None;
        }
        let mut nodes = Vec::new();
        let mut values = Vec::new();
        let mut queue = std::collections::VecDeque::from([Work::Subtree(&t.root)]);
        // Each node index is given when its work is queued, and the queue is first in, first
        // out: nodes are pushed in index order, and children come after their parents.
        let mut next = 1u32;
        while let Some(mut w) = queue.pop_front() {
            let node = loop {
                match w {
                    Work::Subtree(n) if n.children.is_empty() => {
                        break self.leaf(n, weight, width, single, &mut values)?;
                    }
                    Work::Subtree(n) => w = Work::Chain(n, 0),
                    Work::Chain(n, j) if j == n.children.len() => {
                        if !t.no_true_child_last {
                            return None;
                        }
                        break self.leaf(n, weight, width, single, &mut values)?;
                    }
                    Work::Chain(n, j) => {
                        let c = &n.children[j];
                        if matches!(c.predicate, Predicate::True)
                            || j > 0 && complement(&n.children[j - 1].predicate, &c.predicate)
                        {
                            w = Work::Subtree(c);
                            continue;
                        }
                        let (feature, threshold, le_is_true) = self.split(&c.predicate)?;
                        let (yes, no) = (Work::Subtree(c), Work::Chain(n, j + 1));
                        let (first, second) = if le_is_true { (yes, no) } else { (no, yes) };
                        queue.push_back(first);
                        queue.push_back(second);
                        let node = Node {
                            feature,
                            threshold,
                            left: next,
                            right: next + 1,
                            flags: 0,
                            bitset: 0,
                        };
                        next = next.checked_add(2)?;
                        break node;
                    }
                }
            };
            nodes.push(node);
        }
        Some((nodes, values))
    }

    /// A numeric SimplePredicate as an IR split: `x <= threshold` is the predicate holding
    /// (`true`) or failing (`false`), with the threshold as the evaluator compares it.
    fn split(&mut self, p: &Predicate) -> Option<(u32, f64, bool)> {
        let Predicate::Simple {
            field,
            op: SimpleOp::Cmp(op),
            num: Some(y),
            ..
        } = p
        else {
            return None;
        };
        let i = self.input(field)?;
        self.used[i] = true;
        // `x < t` is `x <= t'` for the number t' just below t, in the comparison's precision.
        let (at, below) = if self.float[i] {
            let t = *y as f32;
            (f64::from(t), f64::from(t.next_down()))
        } else {
            (*y, y.next_down())
        };
        if !at.is_finite() || !below.is_finite() {
            return None;
        }
        let (threshold, le_is_true) = match op {
            Cmp::LessOrEqual => (at, true),
            Cmp::LessThan => (below, true),
            Cmp::GreaterThan => (at, false),
            Cmp::GreaterOrEqual => (below, false),
            Cmp::Equal | Cmp::NotEqual => return None,
        };
        Some((i as u32, threshold, le_is_true))
    }

    /// A node's prediction as a leaf: its score (regression) or its class distribution, in the
    /// data dictionary's order, with a single tree's label index after it.
    fn leaf(
        &self,
        n: &TreeNode,
        weight: Option<f64>,
        width: usize,
        single: bool,
        values: &mut Vec<f64>,
    ) -> Option<Node> {
        let at = u32::try_from(values.len()).ok()?;
        let w = |x: f64| weight.map_or(x, |w| x * w);
        if !self.classify {
            let v = n.score.as_deref().and_then(crate::parse::parse_f64)?;
            values.push(w(v));
            return Some(Node::leaf(at));
        }
        let d = &n.distribution;
        if d.len() != self.classes.len()
            || d.iter()
                .zip(self.classes)
                .any(|((c, _), k)| !same_category(c, k))
        {
            return None;
        }
        values.extend(d.iter().map(|(_, p)| w(*p)));
        if single {
            // The evaluator's label: the node's score when it has one, else the first most
            // probable class.
            let label = match &n.score {
                Some(s) => self.classes.iter().position(|k| same_category(k, s))?,
                None => first_max(d.iter().map(|(_, p)| *p))?,
            };
            values.push(label as f64);
        }
        debug_assert_eq!(values.len() - at as usize, width);
        Some(Node::leaf(at))
    }
}

/// Whether `b` holds exactly where `a` fails, for a present value: the same field and value
/// with the opposite comparison (KNIME and others write both sides of a split).
fn complement(a: &Predicate, b: &Predicate) -> bool {
    let (
        Predicate::Simple {
            field: fa,
            op: SimpleOp::Cmp(oa),
            value: va,
            num: Some(_),
        },
        Predicate::Simple {
            field: fb,
            op: SimpleOp::Cmp(ob),
            value: vb,
            num: Some(_),
        },
    ) = (a, b)
    else {
        return false;
    };
    use Cmp as C;
    fa == fb
        && va == vb
        && matches!(
            (oa, ob),
            (C::LessOrEqual, C::GreaterThan)
                | (C::GreaterThan, C::LessOrEqual)
                | (C::LessThan, C::GreaterOrEqual)
                | (C::GreaterOrEqual, C::LessThan)
        )
}

#[cfg(test)]
mod tests {
    use mlship_model::ExternalScorer;

    /// The fixtures' PMML documents, with their text.
    fn documents() -> Vec<(String, String)> {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures");
        let mut out = Vec::new();
        let mut dirs = vec![root];
        while let Some(d) = dirs.pop() {
            for e in std::fs::read_dir(&d).unwrap().flatten() {
                let p = e.path();
                if p.is_dir() {
                    dirs.push(p);
                } else if p.extension().is_some_and(|x| x == "pmml") {
                    out.push((
                        p.display().to_string(),
                        std::fs::read_to_string(&p).unwrap(),
                    ));
                }
            }
        }
        out.sort();
        out
    }

    /// Every number a document writes as a `value` attribute (its split thresholds among them),
    /// with its float32 and float64 neighbours: the values where a comparison's precision and
    /// strictness show.
    fn edges(text: &str) -> Vec<f64> {
        let mut out = Vec::new();
        for part in text.split("value=\"").skip(1) {
            let Some(v) = part.split('"').next().and_then(|v| v.parse::<f64>().ok()) else {
                continue;
            };
            let f = v as f32;
            out.extend([v, v.next_up(), v.next_down()]);
            out.extend([f, f.next_up(), f.next_down()].map(f64::from));
        }
        out.retain(|x| x.is_finite());
        out
    }

    /// The lowered trees score every row as the evaluator does, bit for bit: on values at and
    /// beside every threshold, on random values, and on missing and infinite ones.
    #[test]
    fn lowered_trees_score_as_the_evaluator() {
        let mut lowered = Vec::new();
        for (path, text) in documents() {
            let Ok(doc) = crate::parse::parse(&text) else {
                continue;
            };
            let Ok((mut s, _)) = crate::scorer(doc) else {
                continue;
            };
            if s.lowered.is_none() && s.chain.is_empty() {
                continue;
            }
            lowered.push(path.rsplit("fixtures/").next().unwrap().to_string());
            let edges = edges(&text);
            let n = 3000;
            let mut seed = 0x9e37_79b9_7f4a_7c15u64;
            let mut next = || {
                seed = seed
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                seed >> 33
            };
            let cols: Vec<Vec<f64>> = (0..s.inputs.len())
                .map(|_| {
                    (0..n)
                        .map(|_| match next() % 100 {
                            0 => f64::NAN,
                            1 => f64::INFINITY,
                            2 => f64::NEG_INFINITY,
                            3..40 => (next() % 2001) as f64 / 10.0 - 100.0,
                            _ if edges.is_empty() => 0.0,
                            _ => edges[next() as usize % edges.len()],
                        })
                        .collect()
                })
                .collect();
            let refs: Vec<&[f64]> = cols.iter().map(Vec::as_slice).collect();
            let fast = format!("{:?}", s.score_columns(&refs, n));
            s.lowered = None;
            s.chain.clear();
            let slow = format!("{:?}", s.score_columns(&refs, n));
            assert!(
                fast == slow,
                "{path}: the lowered trees and the evaluator differ"
            );
        }
        // The corpus's sklearn2pmml and nyoka trees and forests, XGBoost's and LightGBM's sums,
        // and the boosting classifiers' chains of sums.
        println!("lowered: {lowered:?}");
        assert!(lowered.len() >= 15, "only {lowered:?} were lowered");
    }
}
