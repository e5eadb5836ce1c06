//! XGBoost's model files (`save_model` to `.json` or `.ubj`), lowered to the tree IR.
//!
//! XGBoost scores in float32 and sends a row left when `x < split_condition` (missing values
//! follow `default_left`). The IR goes left on `x <= threshold` over float32 inputs, so each
//! split condition becomes the largest float32 below it: the same test for every float32 `x`.
//! `base_score` is kept in the objective's output space and moved to margin space here.

use mlship_model::{BoostLink, Model, ModelInfo, Node, Tree, TreeEnsemble};
use std::collections::HashMap;

use serde_json::Value as Json;

use crate::boosting::{self, Link};
use crate::error::{Result, malformed, unsupported};

/// Upper bounds that keep a hostile file from asking for absurd allocations.
const MAX_CLASSES: usize = 10_000;
const MAX_FEATURES: usize = 1_000_000;

/// How an XGBoost model file is encoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Encoding {
    Json,
    Ubjson,
}

/// Recognises an XGBoost model: a JSON or UBJSON object with a `learner` member near its start.
pub fn detect(b: &[u8]) -> Option<Encoding> {
    let t = b.trim_ascii_start();
    let head = &t[..t.len().min(4096)];
    let has = |needle: &[u8]| head.windows(needle.len()).any(|w| w == needle);
    match (t.first(), t.get(1)) {
        (Some(b'{'), Some(b'i' | b'U' | b'I' | b'l' | b'L' | b'$' | b'#')) if has(b"learner") => {
            Some(Encoding::Ubjson)
        }
        (Some(b'{'), _) if has(b"\"learner\"") => Some(Encoding::Json),
        _ => None,
    }
}

fn bad(message: impl Into<String>) -> crate::Error {
    malformed("XGBoost JSON", 0, message)
}

fn get<'a>(v: &'a Json, key: &str, path: &str) -> Result<&'a Json> {
    v.get(key)
        .ok_or_else(|| bad(format!("`{path}.{key}` is missing")))
}

/// A number that XGBoost may write as a JSON number or as a string such as `"[5.1E-1]"`.
fn number(v: &Json, what: &str) -> Result<f64> {
    match v {
        Json::Number(n) => n.as_f64(),
        Json::String(s) => s
            .trim()
            .trim_start_matches('[')
            .trim_end_matches(']')
            .split(',')
            .next()
            .and_then(|x| x.trim().parse().ok()),
        _ => None,
    }
    .ok_or_else(|| bad(format!("`{what}` is not a number: {v}")))
}

/// Every number of a parameter that may be a vector (`"[0.2,0.3,0.5]"`) or one scalar.
fn numbers(v: &Json, what: &str) -> Result<Vec<f64>> {
    match v {
        Json::String(s) => s
            .trim()
            .trim_start_matches('[')
            .trim_end_matches(']')
            .split(',')
            .map(|x| {
                x.trim()
                    .parse()
                    .map_err(|_| bad(format!("`{what}` is not a number: {v}")))
            })
            .collect(),
        _ => Ok(vec![number(v, what)?]),
    }
}

fn count(v: &Json, what: &str, max: usize) -> Result<usize> {
    let x = number(v, what)?;
    if !(0.0..=max as f64).contains(&x) || x.fract() != 0.0 {
        return Err(bad(format!(
            "`{what}` is {x}, expected a count up to {max}"
        )));
    }
    Ok(x as usize)
}

fn array<'a>(tree: &'a Json, key: &str, t: usize) -> Result<&'a Vec<Json>> {
    get(tree, key, &format!("trees[{t}]"))?
        .as_array()
        .ok_or_else(|| bad(format!("`trees[{t}].{key}` is not an array")))
}

/// The link between XGBoost's margin and its answer, by objective.
enum Objective {
    Identity,
    Exp,
    Logistic,
    Softmax,
}

fn objective(name: &str) -> Result<Objective> {
    Ok(match name {
        "reg:squarederror"
        | "reg:squaredlogerror"
        | "reg:pseudohubererror"
        | "reg:absoluteerror"
        | "reg:quantileerror"
        | "reg:linear" => Objective::Identity,
        "count:poisson" | "reg:gamma" | "reg:tweedie" => Objective::Exp,
        "binary:logistic" => Objective::Logistic,
        "multi:softprob" | "multi:softmax" => Objective::Softmax,
        other => {
            return Err(unsupported(format!(
                "XGBoost objective `{other}` is not supported; supported: reg:squarederror, \
                 reg:squaredlogerror, reg:pseudohubererror, reg:absoluteerror, reg:quantileerror, \
                 count:poisson, reg:gamma, reg:tweedie, binary:logistic, multi:softprob, multi:softmax"
            )));
        }
    })
}

fn parse(b: &[u8], encoding: Encoding) -> Result<Json> {
    match encoding {
        Encoding::Json => serde_json::from_slice(b).map_err(|e| {
            malformed(
                "XGBoost JSON",
                0,
                format!("line {} column {}: {e}", e.line(), e.column()),
            )
        }),
        Encoding::Ubjson => crate::ubjson::parse(b),
    }
}

/// Loads an XGBoost model file in either encoding.
pub fn load(b: &[u8], encoding: Encoding) -> Result<Model> {
    let format = match encoding {
        Encoding::Json => "XGBoost JSON",
        Encoding::Ubjson => "XGBoost UBJSON",
    };
    lower(&parse(b, encoding)?, format)
}

/// Loads the raw booster that a pickled `xgboost.core.Booster` holds as its `handle`: the
/// `{"Config": …, "Model": …}` document of `save_raw`, in UBJSON (or JSON from older versions).
pub fn load_raw(b: &[u8]) -> Result<Model> {
    let t = b.trim_ascii_start();
    let encoding = if t
        .get(1)
        .is_some_and(|c| c.is_ascii_whitespace() || *c == b'"')
    {
        Encoding::Json
    } else {
        Encoding::Ubjson
    };
    let doc = parse(b, encoding)?;
    lower(doc.get("Model").unwrap_or(&doc), "pickled XGBoost booster")
}

/// Lowers a parsed model document (`{"learner": …, "version": …}`).
fn lower(doc: &Json, format: &str) -> Result<Model> {
    let learner = get(doc, "learner", "")?;
    let params = get(learner, "learner_model_param", "learner")?;
    let n_features = count(
        get(params, "num_feature", "learner.learner_model_param")?,
        "num_feature",
        MAX_FEATURES,
    )?;
    let num_class = match params.get("num_class") {
        Some(v) => count(v, "num_class", MAX_CLASSES)?,
        None => 0,
    };
    if let Some(t) = params.get("num_target")
        && count(t, "num_target", MAX_CLASSES)? > 1
    {
        return Err(unsupported(
            "XGBoost models with several targets are not supported",
        ));
    }
    let base_scores = numbers(
        get(params, "base_score", "learner.learner_model_param")?,
        "base_score",
    )?;
    let obj_name = get(
        get(learner, "objective", "learner")?,
        "name",
        "learner.objective",
    )?
    .as_str()
    .ok_or_else(|| bad("`learner.objective.name` is not a string"))?;
    let obj = objective(obj_name)?;
    let booster = get(learner, "gradient_booster", "learner")?;
    let booster_name = booster.get("name").and_then(Json::as_str).unwrap_or("");
    if booster_name != "gbtree" {
        return Err(unsupported(format!(
            "XGBoost booster `{booster_name}` is not supported; supported: gbtree"
        )));
    }
    let model = get(booster, "model", "learner.gradient_booster")?;
    let trees_json = get(model, "trees", "model")?
        .as_array()
        .ok_or_else(|| bad("`model.trees` is not an array"))?;
    let tree_info = get(model, "tree_info", "model")?
        .as_array()
        .ok_or_else(|| bad("`model.tree_info` is not an array"))?;
    if tree_info.len() != trees_json.len() {
        return Err(bad(format!(
            "{} trees but {} tree_info entries",
            trees_json.len(),
            tree_info.len()
        )));
    }

    let n_outputs = match obj {
        Objective::Softmax if num_class < 2 => {
            return Err(bad("a multi-class objective with fewer than two classes"));
        }
        Objective::Softmax => num_class,
        _ => 1,
    };
    let mut trees = Vec::with_capacity(trees_json.len());
    let mut bitset_words = 0usize;
    for (t, (tree, info)) in trees_json.iter().zip(tree_info).enumerate() {
        let group = count(info, "tree_info", MAX_CLASSES)?;
        if group >= n_outputs {
            return Err(bad(format!(
                "tree {t} adds to output {group} of {n_outputs}"
            )));
        }
        let tree = lower_tree(tree, t, group)?;
        // A split listing one large code costs a few bytes of the file and a long bitset: the
        // model's bitsets are bounded (16 MiB) so that no file asks for much more memory than it
        // holds.
        bitset_words += tree.cat_bitsets().iter().map(Vec::len).sum::<usize>();
        if bitset_words > MAX_BITSET_WORDS {
            return Err(unsupported(
                "XGBoost categorical splits whose bitsets exceed 16 MiB in all",
            ));
        }
        trees.push(tree);
    }

    // base_score is in the objective's output space; the trees add to the margin.
    let base_margin = |p: f64| -> Result<f64> {
        Ok(match obj {
            Objective::Identity | Objective::Softmax => p,
            Objective::Exp if p > 0.0 => p.ln(),
            Objective::Logistic if p > 0.0 && p < 1.0 => (p / (1.0 - p)).ln(),
            _ => {
                return Err(bad(format!(
                    "base_score {p} is outside the objective's range"
                )));
            }
        })
    };
    let base: Vec<f64> = match base_scores.as_slice() {
        [p] => vec![base_margin(*p)?; n_outputs],
        v if v.len() == n_outputs => v.iter().map(|p| base_margin(*p)).collect::<Result<_>>()?,
        v => {
            return Err(bad(format!(
                "{} base scores for {n_outputs} outputs",
                v.len()
            )));
        }
    };
    let link = match obj {
        Objective::Identity => Link::Identity,
        Objective::Exp => Link::Exp,
        Objective::Logistic => Link::Classifier(BoostLink::Logistic),
        Objective::Softmax => Link::Classifier(BoostLink::Softmax),
    };
    let (task, classes, head) = boosting::head(link, n_outputs, base, 1.0);
    let n_trees = trees.len();
    let ensemble = TreeEnsemble::new(n_features, n_outputs, trees, true, head, Vec::new())?;

    let names: Vec<String> = learner
        .get("feature_names")
        .and_then(Json::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|n| n.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default();
    let version = doc.get("version").and_then(Json::as_array).map(|v| {
        v.iter()
            .map(|x| x.as_u64().map_or("?".into(), |x| x.to_string()))
            .collect::<Vec<_>>()
            .join(".")
    });
    let info = ModelInfo {
        format: format.into(),
        estimator: format!("XGBoost gbtree ({obj_name}, {n_trees} trees)"),
        library: version.map(|v| format!("xgboost {v}")),
        warnings: Vec::new(),
    };
    boosting::model(ensemble, names, "f", task, classes, info)
}

/// One XGBoost tree, renumbered breadth-first so that children come after their parents.
/// The most 32-bit words of categorical bitsets a model may hold (16 MiB).
const MAX_BITSET_WORDS: usize = 1 << 22;

fn lower_tree(tree: &Json, t: usize, group: usize) -> Result<Tree> {
    let left = array(tree, "left_children", t)?;
    let right = array(tree, "right_children", t)?;
    let feature = array(tree, "split_indices", t)?;
    let cond = array(tree, "split_conditions", t)?;
    let default_left = array(tree, "default_left", t)?;
    let n = left.len();
    if n == 0
        || [right.len(), feature.len(), cond.len(), default_left.len()]
            .iter()
            .any(|&l| l != n)
    {
        return Err(bad(format!("tree {t}'s node arrays differ in length")));
    }
    let categorical = categorical_splits(tree, t, n)?;
    if let Some(p) = tree.get("tree_param")
        && let Some(s) = p.get("size_leaf_vector")
        && count(s, "size_leaf_vector", MAX_CLASSES)? > 1
    {
        return Err(unsupported("XGBoost vector leaves are not supported"));
    }
    let child = |v: &Json, i: usize| -> Result<Option<usize>> {
        match v.as_i64() {
            Some(-1) => Ok(None),
            Some(c) if c >= 0 && (c as usize) < n => Ok(Some(c as usize)),
            _ => Err(bad(format!("tree {t} node {i} has child {v}"))),
        }
    };
    // Breadth-first renumbering; a node reached twice would make a cycle or a DAG.
    let mut order = vec![0usize];
    let mut new_id = vec![u32::MAX; n];
    new_id[0] = 0;
    let mut k = 0;
    while k < order.len() {
        let i = order[k];
        k += 1;
        if let (Some(l), Some(r)) = (child(&left[i], i)?, child(&right[i], i)?) {
            for c in [l, r] {
                if new_id[c] != u32::MAX {
                    return Err(bad(format!("tree {t} node {c} has two parents")));
                }
                new_id[c] = order.len() as u32;
                order.push(c);
            }
        } else if child(&left[i], i)?.is_some() || child(&right[i], i)?.is_some() {
            return Err(bad(format!("tree {t} node {i} has one child")));
        }
    }
    let mut nodes = Vec::with_capacity(order.len());
    let mut values = Vec::new();
    let mut bitsets = Vec::new();
    for &i in &order {
        let c = number(&cond[i], "split_conditions")?;
        if let (Some(cats), Some(l), Some(r)) = (
            categorical.get(&i),
            child(&left[i], i)?,
            child(&right[i], i)?,
        ) {
            // XGBoost sends the listed categories right and every other category left.
            let f = feature[i]
                .as_u64()
                .filter(|f| *f <= u64::from(u32::MAX))
                .ok_or_else(|| bad(format!("tree {t} node {i} splits on {}", feature[i])))?;
            let mut b = vec![0u32; cats.iter().max().map_or(0, |&m| m as usize / 32 + 1)];
            for &c in cats {
                b[(c / 32) as usize] |= 1 << (c % 32);
            }
            let dl = match &default_left[i] {
                Json::Bool(b) => *b,
                v => v.as_u64().is_some_and(|x| x != 0),
            };
            nodes.push(Node {
                feature: f as u32,
                threshold: 0.0,
                left: new_id[l],
                right: new_id[r],
                flags: Node::CATEGORICAL
                    | Node::CATEGORIES_RIGHT
                    | if dl { Node::MISSING_LEFT } else { 0 },
                bitset: bitsets.len() as u32,
            });
            bitsets.push(b);
            continue;
        }
        match (child(&left[i], i)?, child(&right[i], i)?) {
            (Some(l), Some(r)) => {
                let f = feature[i]
                    .as_u64()
                    .filter(|f| *f <= u64::from(u32::MAX))
                    .ok_or_else(|| bad(format!("tree {t} node {i} splits on {}", feature[i])))?;
                // `x < c` over float32 is `x <= next_down(c)`.
                let c32 = c as f32;
                if c32.is_nan() {
                    return Err(bad(format!("tree {t} node {i} has a NaN split")));
                }
                let dl = match &default_left[i] {
                    Json::Bool(b) => *b,
                    v => v.as_u64().is_some_and(|x| x != 0),
                };
                nodes.push(Node {
                    feature: f as u32,
                    threshold: f64::from(c32.next_down()),
                    left: new_id[l],
                    right: new_id[r],
                    flags: if dl { Node::MISSING_LEFT } else { 0 },
                    bitset: 0,
                });
            }
            _ => {
                nodes.push(Node::leaf(values.len() as u32));
                values.push(c);
            }
        }
    }
    Ok(Tree::new(nodes, values, 1, group, bitsets))
}

/// The categories each categorical split lists, by node: from `categories_nodes`,
/// `categories_segments` and `categories_sizes` over the flat `categories`.
fn categorical_splits(tree: &Json, t: usize, n: usize) -> Result<HashMap<usize, Vec<u32>>> {
    let mut out = HashMap::new();
    let Some(types) = tree.get("split_type").and_then(Json::as_array) else {
        return Ok(out);
    };
    if types.len() != n {
        return Err(bad(format!(
            "tree {t}'s split_type has {} entries",
            types.len()
        )));
    }
    if types.iter().all(|s| s.as_u64() == Some(0)) {
        return Ok(out);
    }
    let cats = array(tree, "categories", t)?;
    let nodes = array(tree, "categories_nodes", t)?;
    let segs = array(tree, "categories_segments", t)?;
    let sizes = array(tree, "categories_sizes", t)?;
    if segs.len() != nodes.len() || sizes.len() != nodes.len() {
        return Err(bad(format!(
            "tree {t}'s categories_* arrays differ in length"
        )));
    }
    for k in 0..nodes.len() {
        let at = |v: &Json| v.as_u64().map(|x| x as usize);
        let (Some(node), Some(seg), Some(size)) = (at(&nodes[k]), at(&segs[k]), at(&sizes[k]))
        else {
            return Err(bad(format!("tree {t} has a bad categories entry")));
        };
        if node >= n || types[node].as_u64() != Some(1) {
            return Err(bad(format!("tree {t} lists categories for node {node}")));
        }
        let list = cats.get(seg..seg.saturating_add(size)).ok_or_else(|| {
            bad(format!(
                "tree {t}'s categories of node {node} are out of range"
            ))
        })?;
        let mut v = Vec::with_capacity(size);
        for c in list {
            match c.as_u64() {
                // Codes up to 2^20: a split's bitset is at most 128 KiB.
                Some(c) if c < 1 << 20 => v.push(c as u32),
                _ => {
                    return Err(unsupported(format!(
                        "XGBoost categorical split on category {c} (mlship takes codes below 2^20)"
                    )));
                }
            }
        }
        out.insert(node, v);
    }
    for (i, ty) in types.iter().enumerate() {
        match ty.as_u64() {
            Some(0) => {}
            Some(1) if out.contains_key(&i) => {}
            _ => return Err(bad(format!("tree {t} node {i} has split type {ty}"))),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use mlship_model::{Column, ColumnData, Frame, Predictions};

    /// One stump on `f0 < 0.5` (missing goes left), leaves -1 and +2, base score 10.
    fn stump(default_left: u8) -> Vec<u8> {
        format!(
            r#"{{"learner": {{
                "feature_names": ["f0"],
                "learner_model_param": {{"base_score": "[1E1]", "num_class": "0", "num_feature": "1"}},
                "objective": {{"name": "reg:squarederror"}},
                "gradient_booster": {{"name": "gbtree", "model": {{
                    "tree_info": [0],
                    "trees": [{{"left_children": [1, -1, -1], "right_children": [2, -1, -1],
                                "split_indices": [0, 0, 0], "split_conditions": [0.5, -1.0, 2.0],
                                "default_left": [{default_left}, 0, 0], "split_type": [0, 0, 0]}}]
                }}}}
            }}, "version": [3, 2, 0]}}"#
        )
        .into_bytes()
    }

    fn score(b: &[u8], xs: Vec<f64>) -> Vec<f64> {
        let m = super::load(b, super::Encoding::Json).unwrap();
        let f = Frame::new(vec![Column::new("f0", ColumnData::Float(xs))]).unwrap();
        match m.predict(&f).unwrap().predictions {
            Predictions::Values(v) => v,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn rows_go_left_strictly_below_the_split_as_in_xgboost() {
        let below = f64::from(0.5f32.next_down());
        assert_eq!(
            score(&stump(1), vec![below, 0.5, 0.7, f64::NAN]),
            [9.0, 12.0, 12.0, 9.0]
        );
        assert_eq!(score(&stump(0), vec![f64::NAN]), [12.0]);
    }
}
