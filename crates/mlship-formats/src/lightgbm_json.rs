//! LightGBM's JSON dump (`booster.dump_model()`): the same trees as the text model, nested. It
//! is rewritten into the text model's arrays and read by the text reader, so both formats share
//! one lowering and one set of checks.

use std::fmt::Write;

use serde_json::Value;

use crate::error::malformed;
use crate::{Result, lightgbm};

const FORMAT: &str = "LightGBM JSON";
/// Nesting allowed in one tree (LightGBM's own limit on depth is far below).
const MAX_DEPTH: usize = 512;

/// Whether the bytes are a LightGBM JSON dump: `{"name": "tree", … "tree_info": …}`.
pub fn is_lightgbm_json(b: &[u8]) -> bool {
    let head = String::from_utf8_lossy(&b[..b.len().min(512)]);
    let t = head.trim_start();
    t.starts_with('{') && t.contains("\"name\": \"tree\"") || t.starts_with("{\"name\":\"tree\"")
}

struct Arrays {
    feature: Vec<String>,
    threshold: Vec<String>,
    decision: Vec<String>,
    left: Vec<i64>,
    right: Vec<i64>,
    leaf: Vec<(i64, String, Option<Linear>)>,
    /// The category lists of categorical splits (those that go left), in split order.
    cats: Vec<Vec<u32>>,
    internal: usize,
}

/// A linear leaf of the dump: its constant, features and coefficients, as text.
struct Linear {
    constant: String,
    features: Vec<String>,
    coeffs: Vec<String>,
}

/// Codes of a categorical split's list: below 2^20, so a bitset stays under 128 KiB.
const MAX_CODE: u64 = 1 << 20;
/// The most 32-bit words of categorical bitsets a dump may ask for (16 MiB).
const MAX_BITSET_WORDS: usize = 1 << 22;

/// The categories of a categorical threshold: `"1||3||5"`, or one number.
fn categories(v: &Value) -> Option<Vec<u32>> {
    let code = |s: &str| s.trim().parse::<u64>().ok().filter(|c| *c < MAX_CODE);
    match v {
        Value::String(s) => s.split("||").map(|c| code(c).map(|c| c as u32)).collect(),
        Value::Number(n) => n.as_u64().filter(|c| *c < MAX_CODE).map(|c| vec![c as u32]),
        _ => None,
    }
}

/// A dump leaf's linear model (`leaf_const`, `leaf_features`, `leaf_coeff`), if it has one.
fn linear(n: &Value) -> Result<Option<Linear>> {
    let Some(c) = n.get("leaf_const") else {
        return Ok(None);
    };
    let bad = |m: &str| malformed(FORMAT, 0, m.to_string());
    let list = |k: &str| -> Result<&Vec<Value>> {
        n.get(k)
            .and_then(Value::as_array)
            .ok_or_else(|| bad(&format!("a linear leaf without {k}")))
    };
    let features = list("leaf_features")?
        .iter()
        .map(|f| f.as_u64().map(|f| f.to_string()))
        .collect::<Option<Vec<_>>>()
        .ok_or_else(|| bad("a linear leaf's feature is not an index"))?;
    let coeffs = list("leaf_coeff")?
        .iter()
        .map(num_text)
        .collect::<Option<Vec<_>>>()
        .ok_or_else(|| bad("a linear leaf's coefficient is not a number"))?;
    if features.len() != coeffs.len() {
        return Err(bad(
            "a linear leaf's features and coefficients differ in length",
        ));
    }
    Ok(Some(Linear {
        constant: num_text(c).ok_or_else(|| bad("a leaf_const that is not a number"))?,
        features,
        coeffs,
    }))
}

fn num_text(v: &Value) -> Option<String> {
    match v {
        Value::Number(n) => Some(n.to_string()),
        // LightGBM writes non-finite thresholds as strings.
        Value::String(s) if matches!(s.as_str(), "inf" | "-inf" | "Infinity" | "-Infinity") => {
            Some(s.replace("Infinity", "inf"))
        }
        _ => None,
    }
}

/// Walks one node: returns its child reference (internal index, or `!leaf`).
fn walk(n: &Value, a: &mut Arrays, depth: usize) -> Result<i64> {
    if depth > MAX_DEPTH {
        return Err(crate::Error::Limit(format!(
            "a LightGBM tree deeper than {MAX_DEPTH}"
        )));
    }
    let bad = |m: &str| malformed(FORMAT, 0, m.to_string());
    if let Some(v) = n.get("leaf_value") {
        let idx = n.get("leaf_index").and_then(Value::as_i64).unwrap_or(0);
        let v = num_text(v).ok_or_else(|| bad("a leaf_value that is not a number"))?;
        a.leaf.push((idx, v, linear(n)?));
        return Ok(!idx);
    }
    let idx = n
        .get("split_index")
        .and_then(Value::as_i64)
        .ok_or_else(|| bad("a node that is neither a split nor a leaf"))?;
    if idx < 0 || idx as usize >= a.internal {
        return Err(bad("a split_index outside the tree"));
    }
    let i = idx as usize;
    a.feature[i] = n
        .get("split_feature")
        .and_then(Value::as_u64)
        .ok_or_else(|| bad("a split without split_feature"))?
        .to_string();
    let categorical = n.get("decision_type").and_then(Value::as_str) == Some("==");
    a.threshold[i] = if categorical {
        // The text model's threshold of a categorical split is the index of its bitset.
        let cats = n.get("threshold").and_then(categories).ok_or_else(|| {
            bad("a categorical split whose threshold is not a list of codes below 2^20")
        })?;
        a.cats.push(cats);
        (a.cats.len() - 1).to_string()
    } else {
        n.get("threshold")
            .and_then(num_text)
            .ok_or_else(|| bad("a split whose threshold is not a number"))?
    };
    let default_left = n
        .get("default_left")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let missing = match n
        .get("missing_type")
        .and_then(Value::as_str)
        .unwrap_or("None")
    {
        "None" => 0,
        "Zero" => 1,
        "NaN" => 2,
        other => return Err(bad(&format!("missing_type {other:?}"))),
    };
    a.decision[i] =
        (u8::from(categorical) | (u8::from(default_left) << 1) | (missing << 2)).to_string();
    let l = walk(
        n.get("left_child")
            .ok_or_else(|| bad("a split without left_child"))?,
        a,
        depth + 1,
    )?;
    let r = walk(
        n.get("right_child")
            .ok_or_else(|| bad("a split without right_child"))?,
        a,
        depth + 1,
    )?;
    a.left[i] = l;
    a.right[i] = r;
    Ok(idx)
}

fn join<T: ToString>(v: &[T]) -> String {
    v.iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(" ")
}

/// Reads a JSON dump through the text model's reader.
pub fn load(b: &[u8]) -> Result<mlship_model::Model> {
    let doc: Value =
        serde_json::from_slice(b).map_err(|e| malformed(FORMAT, e.column(), e.to_string()))?;
    let get = |k: &str| {
        doc.get(k)
            .ok_or_else(|| malformed(FORMAT, 0, format!("`{k}` is missing")))
    };
    let mut text = String::from("tree\nversion=v4\n");
    for key in [
        "num_class",
        "num_tree_per_iteration",
        "label_index",
        "max_feature_idx",
    ] {
        let v = get(key)?
            .as_u64()
            .ok_or_else(|| malformed(FORMAT, 0, format!("`{key}` is not a count")))?;
        let _ = writeln!(text, "{key}={v}");
    }
    let objective = get("objective")?
        .as_str()
        .ok_or_else(|| malformed(FORMAT, 0, "`objective` is not text"))?;
    let _ = writeln!(text, "objective={objective}");
    if doc.get("average_output").and_then(Value::as_bool) == Some(true) {
        text.push_str("average_output\n");
    }
    if let Some(names) = doc.get("feature_names").and_then(Value::as_array) {
        let names: Vec<&str> = names.iter().filter_map(Value::as_str).collect();
        let _ = writeln!(text, "feature_names={}", names.join(" "));
        // Which features are categorical (their codes listed), as the text model says it: the
        // pandas categories below are matched to them in order.
        if let Some(infos) = doc.get("feature_infos").and_then(Value::as_object) {
            let info = |name: &str| -> String {
                let Some(i) = infos.get(name) else {
                    return "none".into();
                };
                let codes: Vec<String> = i
                    .get("values")
                    .and_then(Value::as_array)
                    .map(|v| v.iter().filter_map(num_text).collect())
                    .unwrap_or_default();
                if !codes.is_empty() {
                    return codes.join(":");
                }
                match (i.get("min_value"), i.get("max_value")) {
                    (Some(lo), Some(hi)) => format!(
                        "[{}:{}]",
                        num_text(lo).unwrap_or_default(),
                        num_text(hi).unwrap_or_default()
                    ),
                    _ => "none".into(),
                }
            };
            let all: Vec<String> = names.iter().map(|n| info(n)).collect();
            let _ = writeln!(text, "feature_infos={}", all.join(" "));
        }
    }
    text.push('\n');
    let trees = get("tree_info")?
        .as_array()
        .ok_or_else(|| malformed(FORMAT, 0, "`tree_info` is not a list"))?;
    let mut bitset_words = 0usize;
    for (t, info) in trees.iter().enumerate() {
        let leaves = info
            .get("num_leaves")
            .and_then(Value::as_u64)
            .filter(|n| (1..1 << 20).contains(n))
            .ok_or_else(|| malformed(FORMAT, 0, format!("tree {t}: num_leaves")))?
            as usize;
        let internal = leaves - 1;
        let mut a = Arrays {
            feature: vec![String::new(); internal],
            threshold: vec![String::new(); internal],
            decision: vec![String::new(); internal],
            left: vec![0; internal],
            right: vec![0; internal],
            leaf: Vec::with_capacity(leaves),
            cats: Vec::new(),
            internal,
        };
        let root = info
            .get("tree_structure")
            .ok_or_else(|| malformed(FORMAT, 0, format!("tree {t}: no tree_structure")))?;
        walk(root, &mut a, 0)?;
        a.leaf.sort_by_key(|(i, _, _)| *i);
        if a.leaf.len() != leaves
            || a.leaf
                .iter()
                .enumerate()
                .any(|(k, (i, _, _))| *i != k as i64)
        {
            return Err(malformed(
                FORMAT,
                0,
                format!("tree {t}: leaves do not match num_leaves"),
            ));
        }
        if a.feature.iter().any(String::is_empty) {
            return Err(malformed(
                FORMAT,
                0,
                format!("tree {t}: a split index is missing"),
            ));
        }
        let shrinkage = info
            .get("shrinkage")
            .and_then(num_text)
            .unwrap_or_else(|| "1".into());
        let _ = writeln!(
            text,
            "Tree={t}\nnum_leaves={leaves}\nnum_cat={}",
            a.cats.len()
        );
        if !a.cats.is_empty() {
            // Each list as a bitset of 32-bit words, as the text model stores it.
            let (mut bounds, mut words) = (vec![0usize], Vec::new());
            for cats in &a.cats {
                let len = cats.iter().max().map_or(1, |&m| m as usize / 32 + 1);
                // A list of one large code is a few bytes of the dump and a long bitset: the
                // dump's bitsets are bounded, as the text reader bounds its own.
                bitset_words += len;
                if bitset_words > MAX_BITSET_WORDS {
                    return Err(crate::Error::Limit(
                        "LightGBM categorical bitsets over 16 MiB in all".into(),
                    ));
                }
                let mut w = vec![0u32; len];
                for &c in cats {
                    w[c as usize / 32] |= 1 << (c % 32);
                }
                words.extend(w);
                bounds.push(words.len());
            }
            let _ = writeln!(
                text,
                "cat_boundaries={}\ncat_threshold={}",
                join(&bounds),
                join(&words)
            );
        }
        if internal > 0 {
            let _ = writeln!(
                text,
                "split_feature={}\nthreshold={}\ndecision_type={}\nleft_child={}\nright_child={}",
                a.feature.join(" "),
                a.threshold.join(" "),
                a.decision.join(" "),
                join(&a.left),
                join(&a.right)
            );
        }
        let values: Vec<&str> = a.leaf.iter().map(|(_, v, _)| v.as_str()).collect();
        let _ = writeln!(text, "leaf_value={}", values.join(" "));
        let linear: Vec<&Linear> = a.leaf.iter().filter_map(|(_, _, l)| l.as_ref()).collect();
        if !linear.is_empty() {
            if linear.len() != leaves {
                return Err(malformed(
                    FORMAT,
                    0,
                    format!("tree {t}: some leaves are linear and some are not"),
                ));
            }
            let all = |f: fn(&Linear) -> Vec<String>| {
                linear
                    .iter()
                    .flat_map(|l| f(l))
                    .collect::<Vec<_>>()
                    .join(" ")
            };
            let _ = writeln!(
                text,
                "is_linear=1\nleaf_const={}\nnum_features={}\nleaf_features={}\nleaf_coeff={}",
                all(|l| vec![l.constant.clone()]),
                all(|l| vec![l.features.len().to_string()]),
                all(|l| l.features.clone()),
                all(|l| l.coeffs.clone())
            );
        }
        let _ = writeln!(text, "shrinkage={shrinkage}\n");
    }
    text.push_str("end of trees\n");
    // A model fitted on pandas categorical columns: their categories, which the text model keeps
    // on its last line (strings in, coded by position).
    if let Some(cats) = doc.get("pandas_categorical").filter(|v| !v.is_null()) {
        let _ = writeln!(text, "\npandas_categorical:{cats}");
    }
    let mut m = lightgbm::load(text.as_bytes())?;
    m.info.format = FORMAT.into();
    Ok(m)
}
