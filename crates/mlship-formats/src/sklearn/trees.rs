//! scikit-learn's trees, forests, gradient boosting and histogram gradient boosting, lowered to `TreeEnsemble`.

use mlship_model::numeric::{logit, np_sum};
use mlship_model::{BoostLink, Estimator, Label, Node, Step, Tree, TreeEnsemble, TreeHead};

use super::ctx::Inst;
use crate::error::{Result, unsupported};
use mlship_pickle::Value;

pub fn is_tree_model(class: &str) -> bool {
    matches!(
        class,
        "DecisionTreeClassifier"
            | "DecisionTreeRegressor"
            | "ExtraTreeClassifier"
            | "ExtraTreeRegressor"
            | "RandomForestClassifier"
            | "RandomForestRegressor"
            | "ExtraTreesClassifier"
            | "ExtraTreesRegressor"
            | "GradientBoostingClassifier"
            | "GradientBoostingRegressor"
            | "HistGradientBoostingClassifier"
            | "HistGradientBoostingRegressor"
    )
}

/// What a tree's leaves hold in the IR.
#[derive(Clone, Copy)]
enum Leaves {
    /// Class fractions, normalised as `predict_proba` does.
    Proba,
    /// The regression value, written to accumulator `output`.
    Value { output: usize },
}

pub fn lower(e: Inst<'_>) -> Result<(Estimator, Vec<Step>)> {
    let n_features =
        usize::try_from(e.i64("n_features_in_")?).map_err(|_| unsupported("bad n_features_in_"))?;
    let mut pre = Vec::new();
    let ens = match e.class {
        "DecisionTreeClassifier" | "ExtraTreeClassifier" => {
            let classes = e.labels("classes_")?;
            let tree = sk_tree(e, Leaves::Proba, classes.len())?;
            ensemble(
                n_features,
                classes.len(),
                vec![tree],
                true,
                TreeHead::ForestClassifier { classes },
            )?
        }
        "DecisionTreeRegressor" | "ExtraTreeRegressor" => {
            let tree = sk_tree(e, Leaves::Value { output: 0 }, 1)?;
            ensemble(
                n_features,
                1,
                vec![tree],
                true,
                TreeHead::Regression { exp: false },
            )?
        }
        "RandomForestClassifier" | "ExtraTreesClassifier" => {
            let classes = e.labels("classes_")?;
            let trees = members(e)?
                .into_iter()
                .map(|t| sk_tree(t, Leaves::Proba, classes.len()))
                .collect::<Result<_>>()?;
            ensemble(
                n_features,
                classes.len(),
                trees,
                true,
                TreeHead::ForestClassifier { classes },
            )?
        }
        "RandomForestRegressor" | "ExtraTreesRegressor" => {
            let trees = members(e)?
                .into_iter()
                .map(|t| sk_tree(t, Leaves::Value { output: 0 }, 1))
                .collect::<Result<_>>()?;
            ensemble(
                n_features,
                1,
                trees,
                true,
                TreeHead::Regression { exp: false },
            )?
        }
        "GradientBoostingClassifier" | "GradientBoostingRegressor" => {
            gradient_boosting(e, n_features)?
        }
        _ => {
            let (ens, p) = hist_gradient_boosting(e)?;
            pre = p;
            ens
        }
    };
    Ok((Estimator::Trees(ens), pre))
}

fn ensemble(
    n_features: usize,
    n_outputs: usize,
    trees: Vec<Tree>,
    cast_f32: bool,
    head: TreeHead,
) -> Result<TreeEnsemble> {
    Ok(TreeEnsemble::new(
        n_features,
        n_outputs,
        trees,
        cast_f32,
        head,
        Vec::new(),
    )?)
}

/// The fitted sub-estimators of a forest.
fn members<'h>(e: Inst<'h>) -> Result<Vec<Inst<'h>>> {
    e.items("estimators_")?
        .iter()
        .map(|v| {
            e.ctx.instance(*v).ok_or_else(|| {
                unsupported(format!("{}.estimators_ holds a non-estimator", e.class))
            })
        })
        .collect()
}

/// Lowers the `tree_` of a fitted DecisionTree* to the IR.
fn sk_tree(est: Inst<'_>, leaves: Leaves, n_classes: usize) -> Result<Tree> {
    let t = est
        .get("tree_")
        .and_then(|v| est.ctx.instance(v))
        .ok_or_else(|| unsupported(format!("{} has no tree_", est.class)))?;
    if t.class != "Tree" {
        return Err(unsupported(format!("expected a Tree, found {}", t.class)));
    }
    if let Some(n_outputs) = t.args.get(2).and_then(|v| est.ctx.i64(*v)) {
        if n_outputs != 1 {
            return Err(unsupported("multi-output trees are not supported"));
        }
    }
    let nodes = t.array("nodes")?;
    let values = t.array("values")?;
    let left = nodes.field_i64("left_child")?;
    let right = nodes.field_i64("right_child")?;
    let feature = nodes.field_i64("feature")?;
    let threshold = nodes.field_f64("threshold")?;
    let missing_left = if nodes.has_field("missing_go_to_left") {
        Some(nodes.field_i64("missing_go_to_left")?)
    } else {
        None
    };
    let n = left.len();
    let vals = values.to_f64()?;
    let width = *values.shape.last().unwrap_or(&0);
    if values.shape.len() != 3
        || values.shape[0] != n
        || values.shape[1] != 1
        || vals.len() != n * width
    {
        return Err(unsupported(format!(
            "tree values of shape {:?} do not match {n} nodes",
            values.shape
        )));
    }
    let mut out_nodes = Vec::with_capacity(n);
    let mut leaf_values = Vec::new();
    let (tree_width, output) = match leaves {
        Leaves::Proba => {
            if width < n_classes {
                return Err(unsupported(
                    "tree has fewer class values than the classifier has classes",
                ));
            }
            (n_classes, 0)
        }
        Leaves::Value { output } => (1, output),
    };
    for i in 0..n {
        if left[i] == -1 {
            let offset =
                u32::try_from(leaf_values.len()).map_err(|_| unsupported("tree too large"))?;
            let row = &vals[i * width..(i + 1) * width];
            match leaves {
                Leaves::Proba => {
                    let p = &row[..n_classes];
                    let mut norm = np_sum(p);
                    if norm == 0.0 {
                        norm = 1.0;
                    }
                    leaf_values.extend(p.iter().map(|v| v / norm));
                }
                Leaves::Value { .. } => leaf_values.push(row[0]),
            }
            out_nodes.push(Node::leaf(offset));
        } else {
            let conv = |x: i64| {
                u32::try_from(x)
                    .map_err(|_| unsupported(format!("tree node {i} has a bad child or feature")))
            };
            let mut flags = 0;
            if missing_left.as_ref().is_some_and(|m| m[i] != 0) {
                flags |= Node::MISSING_LEFT;
            }
            out_nodes.push(Node {
                feature: conv(feature[i])?,
                threshold: threshold[i],
                left: conv(left[i])?,
                right: conv(right[i])?,
                flags,
                bitset: 0,
            });
        }
    }
    Ok(Tree::new(
        out_nodes,
        leaf_values,
        tree_width,
        output,
        Vec::new(),
    ))
}

fn gradient_boosting(e: Inst<'_>, n_features: usize) -> Result<TreeEnsemble> {
    let est = e.array("estimators_")?;
    let items = e.items("estimators_")?;
    let [n_stages, k] = est.shape[..] else {
        return Err(unsupported("GradientBoosting estimators_ must be 2-D"));
    };
    let lr = e.f64("learning_rate")?;
    let mut trees = Vec::with_capacity(items.len());
    for s in 0..n_stages {
        for c in 0..k {
            let t = e
                .ctx
                .instance(items[s * k + c])
                .ok_or_else(|| unsupported("GradientBoosting stage is not a tree"))?;
            trees.push(sk_tree(t, Leaves::Value { output: c }, 1)?);
        }
    }
    let init = e.get("init_");
    let zero_init = init.is_some_and(|v| e.ctx.str(v) == Some("zero"));
    if e.class == "GradientBoostingRegressor" {
        let base = if zero_init {
            0.0
        } else {
            dummy_constant(e, init)?
        };
        return ensemble(
            n_features,
            1,
            trees,
            true,
            TreeHead::BoostRegression {
                base,
                scale: lr,
                exp: false,
            },
        );
    }
    let classes = e.labels("classes_")?;
    let link = match e.str("loss") {
        Some("exponential") => BoostLink::Exponential,
        _ if k > 1 => BoostLink::Softmax,
        _ => BoostLink::Logistic,
    };
    let base = if zero_init {
        vec![0.0; k]
    } else {
        let d = init
            .and_then(|v| e.ctx.instance(v))
            .ok_or_else(|| unsupported("GradientBoostingClassifier without init_"))?;
        if d.class != "DummyClassifier" || d.str("strategy").is_some_and(|s| s != "prior") {
            return Err(unsupported(format!(
                "GradientBoosting init estimator {}: only the default prior is supported",
                d.class
            )));
        }
        let prior = d.f64s("class_prior_")?;
        let eps = f64::from(f32::EPSILON);
        let clip = |p: f64| p.clamp(eps, 1.0 - eps);
        if k == 1 {
            let p1 = clip(
                *prior
                    .get(1)
                    .ok_or_else(|| unsupported("binary prior without two classes"))?,
            );
            vec![match link {
                BoostLink::Exponential => 0.5 * logit(p1),
                _ => logit(p1),
            }]
        } else {
            // The symmetric multinomial logit: log(p / gmean(p)).
            let p: Vec<f64> = prior.iter().map(|&x| clip(x)).collect();
            let logs: Vec<f64> = p.iter().map(|x| x.ln()).collect();
            let gm = (np_sum(&logs) / p.len() as f64).exp();
            p.iter().map(|x| (x / gm).ln()).collect()
        }
    };
    ensemble(
        n_features,
        k,
        trees,
        true,
        TreeHead::BoostClassifier {
            classes,
            base,
            scale: lr,
            link,
            positive_at_zero: true,
        },
    )
}

/// The constant a DummyRegressor init estimator predicts.
fn dummy_constant(e: Inst<'_>, init: Option<Value>) -> Result<f64> {
    let d = init
        .and_then(|v| e.ctx.instance(v))
        .ok_or_else(|| unsupported("GradientBoostingRegressor without init_"))?;
    if d.class != "DummyRegressor" {
        return Err(unsupported(format!(
            "GradientBoosting init estimator {}: only DummyRegressor is supported",
            d.class
        )));
    }
    let c = d.f64s("constant_")?;
    c.first()
        .copied()
        .ok_or_else(|| unsupported("DummyRegressor without a constant"))
}

/// A split's bitset as the tree IR holds it: histogram boosting's eight words (its categories
/// are below 256), each stored as an i64.
fn split_bitset(words: &[i64]) -> Vec<u32> {
    let mut b = vec![0u32; 8];
    for (i, w) in words.iter().take(8).enumerate() {
        b[i] = *w as u32;
    }
    b
}

fn hist_gradient_boosting(e: Inst<'_>) -> Result<(TreeEnsemble, Vec<Step>)> {
    let ctx = e.ctx;
    let predictors = e.items("_predictors")?;
    let k = usize::try_from(e.i64("n_trees_per_iteration_").unwrap_or(1))
        .map_err(|_| unsupported("bad n_trees_per_iteration_"))?;
    let baseline = e.f64s("_baseline_prediction")?;
    if baseline.len() != k {
        return Err(unsupported(
            "histogram boosting baseline does not match its outputs",
        ));
    }
    let mut trees = Vec::new();
    for it in predictors {
        let per_class = ctx
            .items(*it)
            .ok_or_else(|| unsupported("_predictors must be lists"))?;
        for (c, p) in per_class.iter().enumerate() {
            let p = ctx
                .instance(*p)
                .ok_or_else(|| unsupported("_predictors must hold TreePredictor objects"))?;
            trees.push(hgb_tree(p, c)?);
        }
    }
    // Known categories per feature, from the bin mapper.
    let mut n_features =
        usize::try_from(e.i64("n_features_in_")?).map_err(|_| unsupported("bad n_features_in_"))?;
    let mut known = Vec::new();
    let mut pre = Vec::new();
    if let Some(bm) = e.get("_bin_mapper").and_then(|v| ctx.instance(v)) {
        if let Some(isc) = bm.get("is_categorical_").and_then(|v| ctx.array(v)) {
            let flags = isc.to_i64()?;
            n_features = flags.len();
            if flags.iter().any(|&f| f != 0) {
                let thresholds = bm.items("bin_thresholds_")?;
                for (f, &is_cat) in flags.iter().enumerate() {
                    if is_cat == 0 {
                        known.push(None);
                        continue;
                    }
                    let cats = thresholds
                        .get(f)
                        .and_then(|v| ctx.array(*v))
                        .ok_or_else(|| unsupported("categorical feature without known categories"))?
                        .to_f64()?;
                    let mut b = [0u32; 8];
                    for c in cats {
                        if (0.0..256.0).contains(&c) {
                            let c = c as u32;
                            b[(c / 32) as usize] |= 1 << (c % 32);
                        }
                    }
                    known.push(Some(b));
                }
            }
        }
    }
    if let Some(p) = e.get("_preprocessor").and_then(|v| ctx.instance(v)) {
        let (steps, _) = super::preprocess::lower_transformer(p, 1)?;
        pre = steps;
    }
    let exp = e
        .get("_loss")
        .and_then(|v| ctx.instance(v))
        .is_some_and(|l| {
            matches!(
                l.class,
                "HalfPoissonLoss" | "HalfGammaLoss" | "HalfTweedieLoss" | "Poisson"
            )
        });
    let head = if e.class == "HistGradientBoostingClassifier" {
        let classes: Vec<Label> = e.labels("classes_")?;
        let link = if k > 1 {
            BoostLink::Softmax
        } else {
            BoostLink::Logistic
        };
        TreeHead::BoostClassifier {
            classes,
            base: baseline,
            scale: 1.0,
            link,
            positive_at_zero: false,
        }
    } else {
        TreeHead::BoostRegression {
            base: baseline[0],
            scale: 1.0,
            exp,
        }
    };
    let ens = TreeEnsemble::new(n_features, k, trees, false, head, known)?;
    Ok((ens, pre))
}

fn hgb_tree(p: Inst<'_>, output: usize) -> Result<Tree> {
    let nodes = p.array("nodes")?;
    let value = nodes.field_f64("value")?;
    let feature = nodes.field_i64("feature_idx")?;
    let threshold = nodes.field_f64("num_threshold")?;
    let missing_left = nodes.field_i64("missing_go_to_left")?;
    let left = nodes.field_i64("left")?;
    let right = nodes.field_i64("right")?;
    let is_leaf = nodes.field_i64("is_leaf")?;
    let is_cat = if nodes.has_field("is_categorical") {
        Some(nodes.field_i64("is_categorical")?)
    } else {
        None
    };
    let bitset_idx = if nodes.has_field("bitset_idx") {
        Some(nodes.field_i64("bitset_idx")?)
    } else {
        None
    };
    let mut cat_bitsets = Vec::new();
    if let Some(raw) = p.get("raw_left_cat_bitsets").and_then(|v| p.ctx.array(v)) {
        let words = raw.to_i64()?;
        for chunk in words.chunks(8) {
            cat_bitsets.push(split_bitset(chunk));
        }
    }
    let mut out = Vec::with_capacity(value.len());
    let mut values = Vec::new();
    for i in 0..value.len() {
        if is_leaf[i] != 0 {
            out.push(Node::leaf(
                u32::try_from(values.len()).map_err(|_| unsupported("tree too large"))?,
            ));
            values.push(value[i]);
            continue;
        }
        let conv = |x: i64| {
            u32::try_from(x).map_err(|_| unsupported(format!("predictor node {i} has a bad index")))
        };
        let mut flags = 0;
        if missing_left[i] != 0 {
            flags |= Node::MISSING_LEFT;
        }
        let mut bitset = 0;
        if is_cat.as_ref().is_some_and(|c| c[i] != 0) {
            flags |= Node::CATEGORICAL;
            bitset = conv(bitset_idx.as_ref().map_or(0, |b| b[i]))?;
        }
        out.push(Node {
            feature: conv(feature[i])?,
            threshold: threshold[i],
            left: conv(left[i])?,
            right: conv(right[i])?,
            flags,
            bitset,
        });
    }
    Ok(Tree::new(out, values, 1, output, cat_bitsets))
}
