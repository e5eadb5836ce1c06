//! `TreeEnsemble`: one IR and one scorer for every tree model (single trees, forests, boosting).

use crate::numeric::{argmax, expit, softmax_in_place};
use crate::{Error, Label, Matrix, Output, Predictions, Result, Scores};

/// A node of a tree. Leaves point into [`Tree::values`] through `left`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Node {
    pub feature: u32,
    pub threshold: f64,
    pub left: u32,
    pub right: u32,
    pub flags: u8,
    /// Categorical splits: index of the bitset of categories that go left.
    pub bitset: u32,
}

impl Node {
    pub const LEAF: u8 = 1;
    pub const MISSING_LEFT: u8 = 2;
    pub const CATEGORICAL: u8 = 4;

    /// A leaf whose values start at `value_offset` in the tree's value table.
    pub fn leaf(value_offset: u32) -> Node {
        Node {
            feature: 0,
            threshold: 0.0,
            left: value_offset,
            right: 0,
            flags: Node::LEAF,
            bitset: 0,
        }
    }

    pub fn is_leaf(&self) -> bool {
        self.flags & Node::LEAF != 0
    }
}

/// One tree: its nodes (root first) and the values of its leaves, `width` per leaf.
#[derive(Clone, Debug, PartialEq)]
pub struct Tree {
    pub nodes: Vec<Node>,
    pub values: Vec<f64>,
    /// How many accumulator slots a leaf adds to, starting at `output`.
    pub width: usize,
    pub output: usize,
    /// Bitsets (256 categories each) of categorical splits.
    pub cat_bitsets: Vec<[u32; 8]>,
}

/// How an ensemble turns its accumulated leaf values into an answer.
#[derive(Clone, Debug, PartialEq)]
pub enum TreeHead {
    /// The mean of the trees' values is the prediction; with `exp`, `exp` of it (log link).
    Regression { exp: bool },
    /// Boosting regressors: `base + scale * Σ leaves`, with an optional log link.
    BoostRegression { base: f64, scale: f64, exp: bool },
    /// Forests of classifiers: leaves hold class probabilities, averaged over the trees.
    ForestClassifier { classes: Vec<Label> },
    /// Boosting classifiers: `raw = base + scale * Σ leaves`, then the link.
    BoostClassifier {
        classes: Vec<Label>,
        base: Vec<f64>,
        scale: f64,
        link: BoostLink,
        /// Binary rule: `raw >= 0` (GradientBoosting) or `raw > 0` (HistGradientBoosting) is the positive class.
        positive_at_zero: bool,
    },
}

/// The inverse link of a boosting classifier.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BoostLink {
    /// `expit(raw)`.
    Logistic,
    /// `expit(2 raw)` (exponential loss).
    Exponential,
    /// Softmax over the classes.
    Softmax,
}

/// An ensemble of trees.
#[derive(Clone, Debug, PartialEq)]
pub struct TreeEnsemble {
    pub n_features: usize,
    /// Width of the accumulator: 1 for regression and binary boosting, the number of classes otherwise.
    pub n_outputs: usize,
    pub trees: Vec<Tree>,
    /// scikit-learn's trees compare `float32(x)`; histogram boosting compares the float64.
    pub cast_f32: bool,
    pub head: TreeHead,
    /// Known categories of categorical features (by feature index), for histogram boosting.
    pub known_categories: Vec<Option<[u32; 8]>>,
}

fn in_bitset(b: &[u32; 8], v: u32) -> bool {
    (b[(v / 32) as usize] >> (v % 32)) & 1 == 1
}

impl TreeEnsemble {
    /// Checks the invariants the scorer relies on, so that scoring never indexes out of bounds.
    pub fn validate(&self) -> Result<()> {
        if self.trees.is_empty() {
            return Err(Error::invalid("tree ensemble without trees"));
        }
        for (t, tree) in self.trees.iter().enumerate() {
            if tree.nodes.is_empty() {
                return Err(Error::invalid(format!("tree {t} has no nodes")));
            }
            if tree.output + tree.width > self.n_outputs {
                return Err(Error::invalid(format!(
                    "tree {t} writes past the ensemble's outputs"
                )));
            }
            let n = tree.nodes.len() as u32;
            for (i, node) in tree.nodes.iter().enumerate() {
                if node.is_leaf() {
                    let end = node.left as usize + tree.width;
                    if end > tree.values.len() {
                        return Err(Error::invalid(format!("tree {t} leaf {i} has no values")));
                    }
                } else {
                    // Children must come after their parent: no cycles, and walks end.
                    if node.left >= n
                        || node.right >= n
                        || node.left as usize <= i
                        || node.right as usize <= i
                    {
                        return Err(Error::invalid(format!(
                            "tree {t} node {i} has bad children"
                        )));
                    }
                    if node.feature as usize >= self.n_features {
                        return Err(Error::invalid(format!(
                            "tree {t} node {i} splits on feature {} of {}",
                            node.feature, self.n_features
                        )));
                    }
                    if node.flags & Node::CATEGORICAL != 0
                        && node.bitset as usize >= tree.cat_bitsets.len()
                    {
                        return Err(Error::invalid(format!(
                            "tree {t} node {i} has no category bitset"
                        )));
                    }
                }
            }
        }
        if !self.known_categories.is_empty() && self.known_categories.len() != self.n_features {
            return Err(Error::invalid("known categories do not cover the features"));
        }
        Ok(())
    }

    /// The leaf node that row `x` reaches in `tree`.
    #[inline]
    fn leaf<'t>(&self, tree: &'t Tree, x: &[f64]) -> &'t Node {
        let mut node = &tree.nodes[0];
        while !node.is_leaf() {
            let v = x[node.feature as usize];
            let go_left = if v.is_nan() {
                node.flags & Node::MISSING_LEFT != 0
            } else if node.flags & Node::CATEGORICAL != 0 {
                let missing_left = node.flags & Node::MISSING_LEFT != 0;
                if !(0.0..256.0).contains(&v) {
                    missing_left
                } else {
                    let c = v as u32;
                    if in_bitset(&tree.cat_bitsets[node.bitset as usize], c) {
                        true
                    } else if self
                        .known_categories
                        .get(node.feature as usize)
                        .and_then(Option::as_ref)
                        .is_some_and(|k| in_bitset(k, c))
                    {
                        false
                    } else {
                        missing_left
                    }
                }
            } else {
                v <= node.threshold
            };
            node = &tree.nodes[if go_left { node.left } else { node.right } as usize];
        }
        node
    }

    /// Accumulated leaf values of each row, before the head: `rows x n_outputs`.
    fn accumulate(&self, x: &Matrix, scale: f64, base: &[f64]) -> Matrix {
        let k = self.n_outputs;
        let mut acc = Matrix::zeros(x.rows(), k);
        let mut buf = vec![0.0; x.cols()];
        for i in 0..x.rows() {
            let row = x.row(i);
            let xs: &[f64] = if self.cast_f32 {
                for (b, v) in buf.iter_mut().zip(row) {
                    *b = f64::from(*v as f32);
                }
                &buf
            } else {
                row
            };
            let out = acc.row_mut(i);
            out.copy_from_slice(base);
            for tree in &self.trees {
                let leaf = self.leaf(tree, xs);
                let vals = &tree.values[leaf.left as usize..leaf.left as usize + tree.width];
                for (o, v) in out[tree.output..tree.output + tree.width]
                    .iter_mut()
                    .zip(vals)
                {
                    if scale == 1.0 {
                        *o += v;
                    } else {
                        *o += scale * v;
                    }
                }
            }
        }
        acc
    }

    pub(crate) fn score(&self, x: &Matrix) -> Result<Output> {
        let k = self.n_outputs;
        let n_trees = self.trees.len() as f64;
        match &self.head {
            TreeHead::Regression { exp } => {
                let mut acc = self.accumulate(x, 1.0, &vec![0.0; k]);
                let values = (0..acc.rows())
                    .map(|i| {
                        let r = acc.row_mut(i);
                        let v = r[0] / n_trees;
                        if *exp { v.exp() } else { v }
                    })
                    .collect();
                Ok(Output::new(Predictions::Values(values)))
            }
            TreeHead::BoostRegression { base, scale, exp } => {
                let acc = self.accumulate(x, *scale, &[*base]);
                let values = acc
                    .iter_rows()
                    .map(|r| if *exp { r[0].exp() } else { r[0] })
                    .collect();
                Ok(Output::new(Predictions::Values(values)))
            }
            TreeHead::ForestClassifier { classes } => {
                let mut acc = self.accumulate(x, 1.0, &vec![0.0; k]);
                for i in 0..acc.rows() {
                    for v in acc.row_mut(i) {
                        *v /= n_trees;
                    }
                }
                let labels = acc
                    .iter_rows()
                    .map(|r| classes[argmax(r)].clone())
                    .collect();
                let mut out = Output::new(Predictions::Labels(labels));
                out.probabilities = Some(acc);
                out.classes = Some(classes.clone());
                Ok(out)
            }
            TreeHead::BoostClassifier {
                classes,
                base,
                scale,
                link,
                positive_at_zero,
            } => {
                let raw = self.accumulate(x, *scale, base);
                let n = raw.rows();
                let mut out;
                if k == 1 {
                    let dec: Vec<f64> = raw.into_vec();
                    let labels = dec
                        .iter()
                        .map(|&v| {
                            let pos = if *positive_at_zero { v >= 0.0 } else { v > 0.0 };
                            classes[usize::from(pos)].clone()
                        })
                        .collect();
                    let mut p = Vec::with_capacity(2 * n);
                    for &v in &dec {
                        let p1 = match link {
                            BoostLink::Exponential => expit(2.0 * v),
                            _ => expit(v),
                        };
                        p.push(1.0 - p1);
                        p.push(p1);
                    }
                    out = Output::new(Predictions::Labels(labels));
                    out.probabilities = Some(Matrix::new(n, 2, p)?);
                    out.decision_function = Some(Scores::Vector(dec));
                } else {
                    let labels = raw
                        .iter_rows()
                        .map(|r| classes[argmax(r)].clone())
                        .collect();
                    let mut p = raw.clone();
                    for i in 0..n {
                        softmax_in_place(p.row_mut(i));
                    }
                    out = Output::new(Predictions::Labels(labels));
                    out.probabilities = Some(p);
                    out.decision_function = Some(Scores::Matrix(raw));
                }
                out.classes = Some(classes.clone());
                Ok(out)
            }
        }
    }
}
