//! LightGBM's text model files (`booster.save_model("model.txt")`), lowered to the tree IR.
//!
//! LightGBM compares in float64 and sends a row left when `x <= threshold`. Missing values follow
//! each node's missing type: `NaN` nodes send NaN the default way; `None` nodes read NaN as 0.0,
//! which the IR encodes as "NaN goes left exactly when 0.0 <= threshold". Leaf values already
//! hold the learning rate and the initial score, so the ensemble has no base.

use std::collections::HashMap;

use mlship_model::{BoostLink, DType, LinearLeaf, Model, ModelInfo, Node, Tree, TreeEnsemble};

use crate::boosting::{self, Link};
use crate::error::{Result, malformed, unsupported};

const FORMAT: &str = "LightGBM text model";
const MAX_CLASSES: usize = 10_000;
const MAX_FEATURES: usize = 1_000_000;

/// Whether `b` looks like a LightGBM text model.
pub fn is_lightgbm_text(b: &[u8]) -> bool {
    b.starts_with(b"tree\n") || b.starts_with(b"tree\r\n")
}

/// The `key=value` lines of one section, with the byte offset of each line for errors.
struct Section<'a> {
    values: HashMap<&'a str, (&'a str, usize)>,
    offset: usize,
}

impl<'a> Section<'a> {
    fn get(&self, key: &str) -> Option<&'a str> {
        self.values.get(key).map(|(v, _)| *v)
    }

    fn req(&self, key: &str) -> Result<&'a str> {
        self.get(key)
            .ok_or_else(|| malformed(FORMAT, self.offset, format!("`{key}` is missing")))
    }

    fn at(&self, key: &str) -> usize {
        self.values.get(key).map_or(self.offset, |(_, o)| *o)
    }

    fn count(&self, key: &str, max: usize) -> Result<usize> {
        let v = self.req(key)?;
        v.trim()
            .parse::<usize>()
            .ok()
            .filter(|n| *n <= max)
            .ok_or_else(|| {
                malformed(
                    FORMAT,
                    self.at(key),
                    format!("`{key}` is {v:?}, expected a count up to {max}"),
                )
            })
    }

    fn list<T: std::str::FromStr>(&self, key: &str, len: usize) -> Result<Vec<T>> {
        let v = self.req(key)?;
        let items: Vec<T> = v
            .split_ascii_whitespace()
            .map(|x| x.parse())
            .collect::<std::result::Result<_, _>>()
            .map_err(|_| malformed(FORMAT, self.at(key), format!("`{key}` holds a bad value")))?;
        if items.len() != len {
            return Err(malformed(
                FORMAT,
                self.at(key),
                format!("`{key}` has {} values, expected {len}", items.len()),
            ));
        }
        Ok(items)
    }
}

/// Splits the file into its header and tree sections, up to `end of trees`; `None` when that
/// line is missing (a truncated file would otherwise lose its last trees silently).
fn sections(text: &str) -> Option<(Section<'_>, Vec<Section<'_>>)> {
    let mut header = Section {
        values: HashMap::new(),
        offset: 0,
    };
    let mut trees: Vec<Section<'_>> = Vec::new();
    let mut offset = 0;
    for line in text.split_inclusive('\n') {
        let here = offset;
        offset += line.len();
        let line = line.trim_end_matches(['\n', '\r']);
        if line == "end of trees" {
            return Some((header, trees));
        }
        if line.starts_with("Tree=") {
            trees.push(Section {
                values: HashMap::new(),
                offset: here,
            });
            continue;
        }
        // `key=value` lines, and flags such as `average_output` alone on their line.
        let (k, v) = line.split_once('=').unwrap_or((line, ""));
        if !k.is_empty() {
            let target = trees.last_mut().unwrap_or(&mut header);
            target.values.insert(k, (v, here));
        }
    }
    None
}

/// How the raw score becomes the answer, by objective.
enum Objective {
    Identity,
    Exp,
    /// Binary logistic with LightGBM's `sigmoid` parameter of 1 (the default) or 2.
    Binary(BoostLink),
    Softmax,
}

fn objective(line: &str) -> Result<(Objective, String)> {
    let mut parts = line.split_ascii_whitespace();
    let name = parts.next().unwrap_or("").to_string();
    let param = |key: &str| {
        line.split_ascii_whitespace()
            .find_map(|p| p.strip_prefix(key)?.strip_prefix(':'))
    };
    let obj = match name.as_str() {
        "regression" | "regression_l1" | "huber" | "fair" | "quantile" | "mape" => {
            Objective::Identity
        }
        "poisson" | "gamma" | "tweedie" => Objective::Exp,
        "binary" => match param("sigmoid").map(str::parse::<f64>) {
            None | Some(Ok(1.0)) => Objective::Binary(BoostLink::Logistic),
            Some(Ok(2.0)) => Objective::Binary(BoostLink::Exponential),
            Some(_) => {
                return Err(unsupported(format!(
                    "LightGBM binary objective with {line:?}: mlship supports sigmoid 1 and 2"
                )));
            }
        },
        "multiclass" | "softmax" => Objective::Softmax,
        _ => {
            return Err(unsupported(format!(
                "LightGBM objective `{name}` is not supported; supported: regression, \
                 regression_l1, huber, fair, quantile, mape, poisson, gamma, tweedie, binary, \
                 multiclass"
            )));
        }
    };
    Ok((obj, name))
}

/// Loads a LightGBM text model.
pub fn load(b: &[u8]) -> Result<Model> {
    let text = std::str::from_utf8(b)
        .map_err(|e| malformed(FORMAT, e.valid_up_to(), "the file is not UTF-8 text"))?;
    let (header, tree_sections) = sections(text).ok_or(crate::Error::Truncated {
        format: FORMAT,
        offset: text.len(),
        needed: 1,
    })?;
    if let Some(sizes) = header.get("tree_sizes")
        && sizes.split_ascii_whitespace().count() != tree_sections.len()
    {
        return Err(malformed(
            FORMAT,
            header.at("tree_sizes"),
            format!(
                "tree_sizes lists {} trees, the file holds {}",
                sizes.split_ascii_whitespace().count(),
                tree_sections.len()
            ),
        ));
    }
    let n_outputs = header.count("num_tree_per_iteration", MAX_CLASSES)?.max(1);
    let num_class = header.count("num_class", MAX_CLASSES)?.max(1);
    let n_features = header.count("max_feature_idx", MAX_FEATURES)? + 1;
    let (obj, obj_name) = objective(header.req("objective")?)?;
    match obj {
        Objective::Softmax if n_outputs != num_class || num_class < 2 => {
            return Err(malformed(
                FORMAT,
                header.at("num_class"),
                "a multi-class model needs one tree per class and iteration",
            ));
        }
        Objective::Softmax => {}
        _ if n_outputs != 1 => {
            return Err(unsupported(format!(
                "LightGBM objective `{obj_name}` with {n_outputs} trees per iteration"
            )));
        }
        _ => {}
    }
    if tree_sections.is_empty() {
        return Err(malformed(FORMAT, text.len(), "the model has no trees"));
    }
    let trees = tree_sections
        .iter()
        .enumerate()
        .map(|(t, s)| lower_tree(s, t, t % n_outputs, n_features))
        .collect::<Result<Vec<_>>>()?;
    let iterations = trees.len().div_ceil(n_outputs);
    // Random-forest mode averages the iterations instead of adding them.
    let scale = if header.values.contains_key("average_output") {
        1.0 / iterations as f64
    } else {
        1.0
    };
    let link = match obj {
        Objective::Identity => Link::Identity,
        Objective::Exp => Link::Exp,
        Objective::Binary(l) => Link::Classifier(l),
        Objective::Softmax => Link::Classifier(BoostLink::Softmax),
    };
    let (task, classes, head) = boosting::head(link, n_outputs, vec![0.0; n_outputs], scale);
    let n_trees = trees.len();
    // Features split on categories know every code: one outside a bitset goes right.
    let mut known: Vec<Option<[u32; 8]>> = vec![None; n_features];
    for tree in &trees {
        for node in tree
            .nodes()
            .iter()
            .filter(|n| n.flags & Node::CATEGORICAL != 0)
        {
            known[node.feature as usize] = Some([u32::MAX; 8]);
        }
    }
    if known.iter().all(Option::is_none) {
        known.clear();
    }
    let ensemble = TreeEnsemble::new(n_features, n_outputs, trees, false, head, known)?;
    let names: Vec<String> = header
        .get("feature_names")
        .map(|v| v.split_ascii_whitespace().map(String::from).collect())
        .unwrap_or_default();
    let info = ModelInfo {
        format: FORMAT.into(),
        estimator: format!("LightGBM ({obj_name}, {n_trees} trees)"),
        library: header.get("version").map(|v| format!("lightgbm model {v}")),
        warnings: Vec::new(),
    };
    let mut model = boosting::model(ensemble, names, "Column_", task, classes, info)?;
    pandas_categories(text, &header, &mut model)?;
    Ok(model)
}

/// A model fitted on pandas categorical columns lists each one's categories on its last line
/// (`pandas_categorical:[[…], …]`), in the order of the categorical features (those whose
/// `feature_infos` entry is a list of codes). String categories become an input column of
/// strings, coded by their position; unseen and missing ones become NaN, as LightGBM's pandas
/// reader makes them.
fn pandas_categories(text: &str, header: &Section<'_>, model: &mut Model) -> Result<()> {
    let Some(line) = text
        .lines()
        .rev()
        .find(|l| l.starts_with("pandas_categorical:"))
    else {
        return Ok(());
    };
    let json = &line["pandas_categorical:".len()..];
    if json.trim() == "null" {
        return Ok(());
    }
    let lists: Vec<Vec<serde_json::Value>> = serde_json::from_str(json).map_err(|e| {
        malformed(
            FORMAT,
            text.len() - line.len(),
            format!("pandas_categorical: {e}"),
        )
    })?;
    // Categorical features fitted from integer columns (not pandas categories) take their codes.
    if lists.is_empty() {
        return Ok(());
    }
    let infos: Vec<&str> = header
        .get("feature_infos")
        .map(|v| v.split_ascii_whitespace().collect())
        .unwrap_or_default();
    let categorical: Vec<usize> = infos
        .iter()
        .enumerate()
        .filter(|(_, i)| !i.starts_with('[') && **i != "none")
        .map(|(j, _)| j)
        .collect();
    if categorical.len() != lists.len() {
        return Err(malformed(
            FORMAT,
            text.len() - line.len(),
            format!(
                "pandas_categorical lists {} columns, feature_infos {}",
                lists.len(),
                categorical.len()
            ),
        ));
    }
    let mut coded: Vec<(String, Option<Vec<String>>)> = model
        .signature
        .inputs
        .iter()
        .map(|f| (f.name.clone(), None))
        .collect();
    for (&j, cats) in categorical.iter().zip(&lists) {
        if cats.iter().all(serde_json::Value::is_string) && j < coded.len() {
            coded[j].1 = Some(
                cats.iter()
                    .filter_map(|v| v.as_str().map(str::to_string))
                    .collect(),
            );
            model.signature.inputs[j].dtype = DType::Str;
            model.signature.inputs[j].nullable = true;
        }
    }
    model
        .steps
        .extend(mlship_model::coding::string_codes(&coded, f64::NAN));
    Ok(())
}

/// One tree: internal nodes 0..num_leaves-1, children `>= 0` internal and `< 0` the leaf `!c`;
/// renumbered breadth-first so that children come after their parents.
fn lower_tree(s: &Section<'_>, t: usize, output: usize, n_features: usize) -> Result<Tree> {
    let n_leaves = s.count("num_leaves", 1 << 24)?;
    if n_leaves == 0 {
        return Err(malformed(
            FORMAT,
            s.offset,
            format!("tree {t} has no leaves"),
        ));
    }
    let leaf_value: Vec<f64> = s.list("leaf_value", n_leaves)?;
    let linear = linear_leaves(s, t, n_leaves, n_features)?;
    if n_leaves == 1 {
        return Ok(
            Tree::new(vec![Node::leaf(0)], leaf_value, 1, output, Vec::new()).with_linear(linear),
        );
    }
    // Categorical splits: each one's threshold indexes a bitset of codes that go left.
    let num_cat = match s.get("num_cat") {
        Some(_) => s.count("num_cat", 1 << 20)?,
        None => 0,
    };
    let (boundaries, words): (Vec<usize>, Vec<u32>) = if num_cat > 0 {
        let b: Vec<usize> = s.list("cat_boundaries", num_cat + 1)?;
        let total = *b.last().unwrap_or(&0);
        if b.windows(2).any(|w| w[0] > w[1]) || b.first() != Some(&0) || total > 1 << 24 {
            return Err(malformed(
                FORMAT,
                s.at("cat_boundaries"),
                format!("tree {t}: cat_boundaries are not increasing"),
            ));
        }
        (b, s.list("cat_threshold", total)?)
    } else {
        (Vec::new(), Vec::new())
    };
    let mut bitsets: Vec<Vec<u32>> = Vec::new();
    let n = n_leaves - 1;
    let feature: Vec<usize> = s.list("split_feature", n)?;
    let threshold: Vec<f64> = s.list("threshold", n)?;
    let decision: Vec<u8> = s.list("decision_type", n)?;
    let left: Vec<i64> = s.list("left_child", n)?;
    let right: Vec<i64> = s.list("right_child", n)?;
    let bad = |m: String| malformed(FORMAT, s.offset, format!("tree {t}: {m}"));
    // A child is an internal node (index) or a leaf (!index).
    #[derive(Clone, Copy, PartialEq)]
    enum Child {
        Inner(usize),
        Leaf(usize),
    }
    let child = |c: i64| -> Result<Child> {
        if c >= 0 && (c as usize) < n {
            Ok(Child::Inner(c as usize))
        } else if c < 0 && ((!c) as usize) < n_leaves {
            Ok(Child::Leaf((!c) as usize))
        } else {
            Err(bad(format!("child {c} is out of range")))
        }
    };
    let mut order = vec![Child::Inner(0)];
    let mut seen_inner = vec![false; n];
    let mut seen_leaf = vec![false; n_leaves];
    seen_inner[0] = true;
    let mut k = 0;
    while k < order.len() {
        if let Child::Inner(i) = order[k] {
            for c in [child(left[i])?, child(right[i])?] {
                let seen = match c {
                    Child::Inner(j) => &mut seen_inner[j],
                    Child::Leaf(j) => &mut seen_leaf[j],
                };
                if *seen {
                    return Err(bad("a node has two parents".into()));
                }
                *seen = true;
                order.push(c);
            }
        }
        k += 1;
    }
    let new_id: HashMap<(bool, usize), u32> = order
        .iter()
        .enumerate()
        .map(|(id, c)| match c {
            Child::Inner(i) => ((true, *i), id as u32),
            Child::Leaf(j) => ((false, *j), id as u32),
        })
        .collect();
    let id_of = |c: Child| match c {
        Child::Inner(i) => new_id[&(true, i)],
        Child::Leaf(j) => new_id[&(false, j)],
    };
    let mut nodes = Vec::with_capacity(order.len());
    for c in &order {
        match *c {
            Child::Leaf(j) => nodes.push(Node::leaf(j as u32)),
            Child::Inner(i) => {
                let d = decision[i];
                if feature[i] >= n_features {
                    return Err(bad(format!("node {i} splits on feature {}", feature[i])));
                }
                if d & 1 != 0 {
                    // In the bitset: left; anything else, NaN and negative codes included: right
                    // (the feature's known categories are every code, so "unknown" never applies).
                    let idx = threshold[i];
                    if !(idx >= 0.0 && (idx as usize) < num_cat && idx.fract() == 0.0) {
                        return Err(bad(format!("node {i} names bitset {idx} of {num_cat}")));
                    }
                    let b = words[boundaries[idx as usize]..boundaries[idx as usize + 1]].to_vec();
                    nodes.push(Node {
                        feature: feature[i] as u32,
                        threshold: 0.0,
                        left: id_of(child(left[i])?),
                        right: id_of(child(right[i])?),
                        flags: Node::CATEGORICAL,
                        bitset: bitsets.len() as u32,
                    });
                    bitsets.push(b);
                    continue;
                }
                let th = threshold[i];
                if th.is_nan() {
                    return Err(bad(format!("node {i} has a NaN threshold")));
                }
                let (missing_left, zero) = match (d >> 2) & 3 {
                    // None: NaN is read as 0.0.
                    0 => (0.0 <= th, false),
                    // Zero: NaN and zero (|x| <= 1e-35) go the default way.
                    1 => (d & 2 != 0, true),
                    // NaN: the default direction.
                    2 => (d & 2 != 0, false),
                    _ => return Err(bad(format!("node {i} has missing type 3"))),
                };
                nodes.push(Node {
                    feature: feature[i] as u32,
                    threshold: th,
                    left: id_of(child(left[i])?),
                    right: id_of(child(right[i])?),
                    flags: if missing_left { Node::MISSING_LEFT } else { 0 }
                        | if zero { Node::MISSING_ZERO } else { 0 },
                    bitset: 0,
                });
            }
        }
    }
    Ok(Tree::new(nodes, leaf_value, 1, output, bitsets).with_linear(linear))
}

/// A linear tree's leaf models (`is_linear=1`): per leaf a constant, a count of features, and
/// that many feature indices and coefficients; none for other trees.
fn linear_leaves(
    s: &Section<'_>,
    t: usize,
    n_leaves: usize,
    n_features: usize,
) -> Result<Vec<LinearLeaf>> {
    if s.get("is_linear").is_none_or(|c| c.trim() == "0") {
        return Ok(Vec::new());
    }
    let constant: Vec<f64> = s.list("leaf_const", n_leaves)?;
    let counts: Vec<usize> = s.list("num_features", n_leaves)?;
    let total: usize = counts.iter().sum();
    if counts.iter().any(|&c| c > n_features) {
        return Err(malformed(
            FORMAT,
            s.at("num_features"),
            format!("tree {t}: a linear leaf has more features than the model"),
        ));
    }
    let features: Vec<usize> = s.list("leaf_features", total)?;
    let coeffs: Vec<f64> = s.list("leaf_coeff", total)?;
    if let Some(f) = features.iter().find(|&&f| f >= n_features) {
        return Err(malformed(
            FORMAT,
            s.at("leaf_features"),
            format!("tree {t}: a linear leaf reads feature {f} of {n_features}"),
        ));
    }
    let mut at = 0;
    Ok(constant
        .into_iter()
        .zip(counts)
        .map(|(constant, c)| {
            let terms = (at..at + c)
                .map(|k| (features[k] as u32, coeffs[k]))
                .collect();
            at += c;
            LinearLeaf { constant, terms }
        })
        .collect())
}
