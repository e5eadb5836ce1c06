//! Lowering of scikit-learn objects (from pickle, joblib or skops) to mlship's IR.

mod ctx;
mod preprocess;
mod trees;

pub use ctx::{Ctx, Inst};

use mlship_model::{
    Activation, Estimator, Field, GaussianNb, KMeans, Kernel, Label, Layer, LinearModel,
    LinearProba, LinearTask, Matrix, Mlp, MlpTask, Model, Signature, Step, Svm, SvmTask, Task,
};

use crate::error::{Error, Result, unsupported};
use ctx::MAX_DEPTH;
use mlship_pickle::{Heap, Obj, Value};

/// A scikit-learn model lowered to the IR, with what `inspect` shows.
#[derive(Debug)]
pub struct Lowered {
    pub steps: Vec<Step>,
    pub estimator: Estimator,
    pub signature: Signature,
    pub summary: String,
    pub sklearn_version: Option<String>,
}

/// Whether mlship scores this class as a final estimator or a pipeline step.
pub fn is_scorable(class: &str) -> bool {
    is_estimator(class) || preprocess::is_transformer(class) || class == "Pipeline"
}

fn is_estimator(class: &str) -> bool {
    matches!(
        class,
        "LinearRegression"
            | "Ridge"
            | "RidgeCV"
            | "Lasso"
            | "LassoCV"
            | "ElasticNet"
            | "ElasticNetCV"
            | "SGDRegressor"
            | "LinearSVR"
            | "BayesianRidge"
            | "ARDRegression"
            | "HuberRegressor"
            | "LogisticRegression"
            | "LogisticRegressionCV"
            | "SGDClassifier"
            | "LinearSVC"
            | "RidgeClassifier"
            | "RidgeClassifierCV"
            | "SVC"
            | "NuSVC"
            | "SVR"
            | "NuSVR"
            | "GaussianNB"
            | "KMeans"
            | "MiniBatchKMeans"
            | "MLPClassifier"
            | "MLPRegressor"
    ) || trees::is_tree_model(class)
        || is_xgboost_wrapper(class)
        || is_lightgbm_wrapper(class)
}

/// Lowers the root object of an unpickled scikit-learn model.
pub fn lower(heap: &Heap, root: Value) -> Result<Lowered> {
    let ctx = Ctx { heap };
    let top = ctx.instance(root).ok_or_else(|| {
        unsupported(format!(
            "the file holds {}, not a scikit-learn estimator",
            heap.describe(root)
        ))
    })?;
    let sklearn_version = top.str("_sklearn_version").map(str::to_string);
    if is_xgboost_wrapper(top.class) || is_lightgbm_wrapper(top.class) {
        // The booster carries the feature names and the objective.
        let m = wrapped_booster(top)?;
        return Ok(Lowered {
            steps: m.steps,
            estimator: m.estimator,
            signature: m.signature,
            summary: format!("{} [{}]", top.class, m.info.estimator),
            sklearn_version,
        });
    }
    let (mut steps, final_est, mut names) = if top.class == "Pipeline" {
        let (steps, last, parts) = pipeline_parts(top, 0)?;
        let last = last.ok_or_else(|| unsupported("the pipeline ends in a transformer; mlship scores pipelines that end in an estimator"))?;
        (steps, last, parts)
    } else {
        (Vec::new(), top, Vec::new())
    };
    let (estimator, mut pre, est_name) = lower_estimator(final_est)?;
    // Estimators with their own preprocessing (histogram boosting's categorical encoder) put it last.
    steps.append(&mut pre);
    names.push(est_name);
    let summary = if top.class == "Pipeline" {
        format!("Pipeline[{}]", names.join(" -> "))
    } else {
        names.join(" -> ")
    };

    // Input columns: named by the first step's feature_names_in_, typed by what consumes them.
    let first = if top.class == "Pipeline" {
        first_step(top)?
    } else {
        top
    };
    let n_in = match first.get("n_features_in_").and_then(|v| ctx.i64(v)) {
        Some(n) => usize::try_from(n).map_err(|_| unsupported("negative n_features_in_"))?,
        None => estimator.n_features(),
    };
    let names_in = first.feature_names().or_else(|| top.feature_names());
    let named = names_in.as_ref().is_some_and(|n| n.len() == n_in);
    let kinds = preprocess::input_kinds(&steps, n_in, &estimator);
    let inputs = (0..n_in)
        .map(|j| Field {
            name: match (&names_in, named) {
                (Some(n), true) => n[j].clone(),
                _ => format!("x{j}"),
            },
            dtype: kinds[j].0,
            nullable: kinds[j].1,
        })
        .collect();
    let (task, classes) = task_of(&estimator);
    Ok(Lowered {
        steps,
        estimator,
        signature: Signature {
            inputs,
            named,
            task,
            classes,
        },
        summary,
        sklearn_version,
    })
}

fn task_of(e: &Estimator) -> (Task, Option<Vec<Label>>) {
    use mlship_model::TreeHead;
    match e {
        Estimator::Linear(m) => match &m.task {
            LinearTask::Regression => (Task::Regression, None),
            LinearTask::Classifier { classes, .. } => (Task::Classification, Some(classes.clone())),
        },
        Estimator::Trees(t) => match t.head() {
            TreeHead::Regression { .. } | TreeHead::BoostRegression { .. } => {
                (Task::Regression, None)
            }
            TreeHead::ForestClassifier { classes } | TreeHead::BoostClassifier { classes, .. } => {
                (Task::Classification, Some(classes.clone()))
            }
        },
        Estimator::Svm(s) => match &s.task {
            SvmTask::Regressor => (Task::Regression, None),
            SvmTask::Classifier { classes, .. } => (Task::Classification, Some(classes.clone())),
        },
        Estimator::GaussianNb(nb) => (Task::Classification, Some(nb.classes.clone())),
        Estimator::KMeans(_) => (Task::Clustering, None),
        Estimator::Mlp(m) => match &m.task {
            MlpTask::Regression => (Task::Regression, None),
            MlpTask::Classifier { classes } => (Task::Classification, Some(classes.clone())),
        },
        // The scikit-learn lowering never builds an external scorer.
        Estimator::External(_) => (Task::Regression, None),
    }
}

/// The steps of a pipeline (flattening nested pipelines), its final estimator if any, and step names.
fn pipeline_parts<'h>(
    p: Inst<'h>,
    depth: usize,
) -> Result<(Vec<Step>, Option<Inst<'h>>, Vec<String>)> {
    if depth > MAX_DEPTH {
        return Err(Error::Limit("pipelines nested too deeply".into()));
    }
    let items = p.items("steps")?;
    let mut steps = Vec::new();
    let mut names = Vec::new();
    let mut last = None;
    for (i, item) in items.iter().enumerate() {
        let pair = p
            .ctx
            .items(*item)
            .filter(|t| t.len() == 2)
            .ok_or_else(|| unsupported("pipeline steps must be (name, estimator) pairs"))?;
        let est = pair[1];
        if est == Value::None || p.ctx.str(est).is_some_and(|s| s == "passthrough") {
            continue;
        }
        let inst = p.ctx.instance(est).ok_or_else(|| {
            unsupported(format!("pipeline step {i} is {}", p.ctx.heap.describe(est)))
        })?;
        let is_last = i + 1 == items.len();
        if inst.class == "Pipeline" {
            let (s, l, n) = pipeline_parts(inst, depth + 1)?;
            steps.extend(s);
            names.extend(n);
            if let Some(l) = l {
                if !is_last {
                    return Err(unsupported(
                        "a nested pipeline ending in an estimator must be the last step",
                    ));
                }
                last = Some(l);
            }
        } else if is_last && is_estimator(inst.class) {
            last = Some(inst);
        } else {
            let (mut s, name) = preprocess::lower_transformer(inst, depth + 1)?;
            steps.append(&mut s);
            names.push(name);
        }
    }
    Ok((steps, last, names))
}

fn first_step(p: Inst<'_>) -> Result<Inst<'_>> {
    for item in p.items("steps")? {
        let Some(pair) = p.ctx.items(*item) else {
            continue;
        };
        if let Some(inst) = pair.get(1).and_then(|v| p.ctx.instance(*v)) {
            if inst.class == "Pipeline" {
                return first_step(inst);
            }
            return Ok(inst);
        }
    }
    Err(unsupported("empty pipeline"))
}

/// Lowers a final estimator; also returns steps the estimator applies to its own input.
/// XGBoost's scikit-learn wrappers, scored through the booster they hold.
fn is_xgboost_wrapper(class: &str) -> bool {
    matches!(
        class,
        "XGBClassifier" | "XGBRegressor" | "XGBRFClassifier" | "XGBRFRegressor"
    )
}

/// LightGBM's scikit-learn wrappers, scored through the booster they hold.
fn is_lightgbm_wrapper(class: &str) -> bool {
    matches!(class, "LGBMClassifier" | "LGBMRegressor")
}

/// The model inside a pickled XGBoost or LightGBM wrapper.
fn wrapped_booster(e: Inst<'_>) -> Result<Model> {
    if is_lightgbm_wrapper(e.class) {
        lightgbm_booster(e)
    } else {
        xgboost_booster(e)
    }
}

/// The model inside a pickled LightGBM wrapper: `_Booster`, whose `_handle` (`handle` before
/// LightGBM 4) is the model's text; the wrapper's own classes name the booster's outputs.
fn lightgbm_booster(e: Inst<'_>) -> Result<Model> {
    let booster = e
        .get("_Booster")
        .and_then(|v| e.ctx.instance(v))
        .ok_or_else(|| unsupported(format!("{} without a fitted _Booster", e.class)))?;
    let text = booster
        .str("_handle")
        .or_else(|| booster.str("handle"))
        .ok_or_else(|| unsupported("a pickled LightGBM Booster without its model text"))?;
    let mut m = crate::lightgbm::load(text.as_bytes())?;
    if e.class == "LGBMClassifier" {
        if let Ok(classes) = e.labels("_classes") {
            crate::boosting::relabel(&mut m, classes)?;
        }
    }
    Ok(m)
}

/// The model inside a pickled XGBoost wrapper: `_Booster`, whose `handle` is the raw booster.
fn xgboost_booster(e: Inst<'_>) -> Result<Model> {
    let booster = e
        .get("_Booster")
        .and_then(|v| e.ctx.instance(v))
        .ok_or_else(|| unsupported(format!("{} without a fitted _Booster", e.class)))?;
    let raw = booster
        .get("handle")
        .and_then(|v| match e.ctx.heap.obj(v) {
            Some(Obj::Bytes(b)) => Some(b.as_slice()),
            _ => None,
        })
        .ok_or_else(|| unsupported("a pickled XGBoost Booster without its model bytes"))?;
    crate::xgboost::load_raw(raw)
}

fn lower_estimator(e: Inst<'_>) -> Result<(Estimator, Vec<Step>, String)> {
    let name = e.class.to_string();
    if is_xgboost_wrapper(e.class) || is_lightgbm_wrapper(e.class) {
        return Ok((wrapped_booster(e)?.estimator, Vec::new(), name));
    }
    if trees::is_tree_model(e.class) {
        let (est, pre) = trees::lower(e)?;
        return Ok((est, pre, name));
    }
    let est = match e.class {
        "LinearRegression" | "Ridge" | "RidgeCV" | "Lasso" | "LassoCV" | "ElasticNet"
        | "ElasticNetCV" | "SGDRegressor" | "LinearSVR" | "BayesianRidge" | "ARDRegression"
        | "HuberRegressor" => linear(e, LinearTask::Regression)?,
        "LogisticRegression" | "LogisticRegressionCV" => {
            let classes = e.labels("classes_")?;
            let multi_ovr = match e.str("multi_class") {
                Some("ovr") => true,
                Some("multinomial") => false,
                _ => e.str("solver") == Some("liblinear"),
            };
            let proba = if classes.len() > 2 && !multi_ovr {
                LinearProba::Softmax
            } else {
                LinearProba::OneVsRest
            };
            linear(e, LinearTask::Classifier { classes, proba })?
        }
        "SGDClassifier" => {
            let proba = match e.str("loss") {
                Some("log_loss" | "log") => LinearProba::OneVsRest,
                Some("modified_huber") => LinearProba::ModifiedHuber,
                _ => LinearProba::None,
            };
            linear(
                e,
                LinearTask::Classifier {
                    classes: e.labels("classes_")?,
                    proba,
                },
            )?
        }
        "LinearSVC" => linear(
            e,
            LinearTask::Classifier {
                classes: e.labels("classes_")?,
                proba: LinearProba::None,
            },
        )?,
        "RidgeClassifier" | "RidgeClassifierCV" => {
            let lb = e
                .get("_label_binarizer")
                .and_then(|v| e.ctx.instance(v))
                .ok_or_else(|| unsupported("RidgeClassifier without its label binarizer"))?;
            linear(
                e,
                LinearTask::Classifier {
                    classes: lb.labels("classes_")?,
                    proba: LinearProba::None,
                },
            )?
        }
        "SVC" | "NuSVC" | "SVR" | "NuSVR" => svm(e)?,
        "GaussianNB" => {
            let var = if e.has("var_") {
                e.matrix("var_")?
            } else {
                e.matrix("sigma_")?
            };
            Estimator::GaussianNb(GaussianNb {
                classes: e.labels("classes_")?,
                theta: e.matrix("theta_")?,
                var,
                class_prior: e.f64s("class_prior_")?,
            })
        }
        "KMeans" | "MiniBatchKMeans" => Estimator::KMeans(KMeans {
            centers: e.matrix("cluster_centers_")?,
        }),
        "MLPClassifier" | "MLPRegressor" => mlp(e)?,
        other => {
            return Err(Error::UnsupportedEstimator {
                class: other.to_string(),
                supported: crate::classes::supported_estimators(),
            });
        }
    };
    check_shapes(&est)?;
    Ok((est, Vec::new(), name))
}

fn check_shapes(e: &Estimator) -> Result<()> {
    match e {
        Estimator::GaussianNb(nb) => {
            let k = nb.classes.len();
            if nb.theta.rows() != k
                || nb.var.rows() != k
                || nb.class_prior.len() != k
                || nb.theta.cols() != nb.var.cols()
            {
                return Err(unsupported(
                    "GaussianNB arrays do not agree with its classes",
                ));
            }
        }
        Estimator::Svm(s) => s.validate()?,
        Estimator::Mlp(m) => m.validate()?,
        Estimator::Linear(_)
        | Estimator::KMeans(_)
        | Estimator::Trees(_)
        | Estimator::External(_) => {}
    }
    Ok(())
}

fn linear(e: Inst<'_>, task: LinearTask) -> Result<Estimator> {
    let coef = e.matrix("coef_")?;
    if matches!(task, LinearTask::Regression) && coef.rows() != 1 {
        return Err(unsupported(format!(
            "{} with {} outputs: multi-output regression is not supported",
            e.class,
            coef.rows()
        )));
    }
    let mut intercept = match e.get("intercept_") {
        Some(Value::None) | None => vec![0.0],
        Some(_) => e.f64s("intercept_")?,
    };
    if intercept.len() == 1 && coef.rows() > 1 {
        intercept = vec![intercept[0]; coef.rows()];
    }
    if intercept.len() != coef.rows() {
        return Err(unsupported(format!(
            "{}: {} intercepts for {} coefficient rows",
            e.class,
            intercept.len(),
            coef.rows()
        )));
    }
    if let LinearTask::Classifier { classes, .. } = &task {
        let expect = if classes.len() == 2 { 1 } else { classes.len() };
        if coef.rows() != expect {
            return Err(unsupported(format!(
                "{}: {} coefficient rows for {} classes",
                e.class,
                coef.rows(),
                classes.len()
            )));
        }
    }
    Ok(Estimator::Linear(LinearModel {
        coef,
        intercept,
        task,
    }))
}

fn svm(e: Inst<'_>) -> Result<Estimator> {
    if e.bool("_sparse") == Some(true) {
        return Err(unsupported(format!("{} fitted on sparse data", e.class)));
    }
    let gamma = e.f64("_gamma").or_else(|_| e.f64("gamma"))?;
    let coef0 = e.f64("coef0").unwrap_or(0.0);
    let kernel = match e.str("kernel") {
        Some("linear") => Kernel::Linear,
        Some("poly") => Kernel::Poly {
            gamma,
            coef0,
            degree: i32::try_from(e.i64("degree")?).map_err(|_| unsupported("bad degree"))?,
        },
        Some("rbf") => Kernel::Rbf { gamma },
        Some("sigmoid") => Kernel::Sigmoid { gamma, coef0 },
        other => {
            return Err(unsupported(format!(
                "{} kernel {other:?}: supported kernels are linear, poly, rbf, sigmoid",
                e.class
            )));
        }
    };
    let support_vectors = e.matrix("support_vectors_")?;
    let dual_coef = e.matrix("_dual_coef_")?;
    let intercept = e.f64s("_intercept_")?;
    let task = if matches!(e.class, "SVC" | "NuSVC") {
        SvmTask::Classifier {
            classes: e.labels("classes_")?,
            ovr: e.str("decision_function_shape") != Some("ovo"),
            break_ties: e.bool("break_ties") == Some(true),
            platt: platt(e)?,
        }
    } else {
        SvmTask::Regressor
    };
    let n_support = match &task {
        SvmTask::Classifier { .. } => {
            let a = if e.has("_n_support") {
                e.array("_n_support")?
            } else {
                e.array("n_support_")?
            };
            a.to_i64()?
                .into_iter()
                .map(|n| usize::try_from(n).map_err(|_| unsupported("negative support count")))
                .collect::<Result<_>>()?
        }
        SvmTask::Regressor => vec![support_vectors.rows()],
    };
    Ok(Estimator::Svm(Svm {
        kernel,
        support_vectors,
        n_support,
        dual_coef,
        intercept,
        task,
    }))
}

/// Platt coefficients of an SVC fitted with `probability=True` (`_probA`/`_probB`, or `probA_`).
fn platt(e: Inst<'_>) -> Result<Option<(Vec<f64>, Vec<f64>)>> {
    if e.bool("probability") != Some(true) {
        return Ok(None);
    }
    let get = |names: [&str; 2]| -> Result<Vec<f64>> {
        let key = names
            .iter()
            .find(|k| e.has(k))
            .ok_or_else(|| unsupported("SVC(probability=True) without its Platt coefficients"))?;
        e.f64s(key)
    };
    let (a, b) = (get(["_probA", "probA_"])?, get(["_probB", "probB_"])?);
    if a.is_empty() {
        return Ok(None);
    }
    Ok(Some((a, b)))
}

fn activation(name: Option<&str>) -> Result<Activation> {
    Ok(match name {
        Some("identity") => Activation::Identity,
        Some("logistic") => Activation::Logistic,
        Some("tanh") => Activation::Tanh,
        Some("relu") => Activation::Relu,
        Some("softmax") => Activation::Softmax,
        other => return Err(unsupported(format!("MLP activation {other:?}"))),
    })
}

fn mlp(e: Inst<'_>) -> Result<Estimator> {
    let coefs = e.items("coefs_")?;
    let intercepts = e.items("intercepts_")?;
    if coefs.len() != intercepts.len() {
        return Err(unsupported(
            "MLP has different numbers of weight and bias arrays",
        ));
    }
    let mut layers = Vec::with_capacity(coefs.len());
    for (w, b) in coefs.iter().zip(intercepts) {
        let wa = e
            .ctx
            .array(*w)
            .ok_or_else(|| unsupported("MLP weights are not arrays"))?;
        let [n_in, n_out] = wa.shape[..] else {
            return Err(unsupported("MLP weights must be 2-D"));
        };
        let data = wa.to_f64()?;
        // coefs_[i] is (n_in, n_out); the IR keeps one row per output unit.
        let mut t = vec![0.0; data.len()];
        for i in 0..n_in {
            for o in 0..n_out {
                t[o * n_in + i] = data[i * n_out + o];
            }
        }
        let bias = e
            .ctx
            .array(*b)
            .ok_or_else(|| unsupported("MLP biases are not arrays"))?
            .to_f64()?;
        layers.push(Layer {
            weights: Matrix::new(n_out, n_in, t)?,
            bias,
        });
    }
    let hidden = activation(e.str("activation"))?;
    let output = activation(e.str("out_activation_"))?;
    let task = if e.class == "MLPClassifier" {
        let classes = e.labels("classes_")?;
        let width = layers.last().map_or(0, |l| l.bias.len());
        if !(width == classes.len() && output == Activation::Softmax
            || width == 1 && classes.len() == 2)
        {
            return Err(unsupported("multi-label MLPClassifier is not supported"));
        }
        MlpTask::Classifier { classes }
    } else {
        if layers.last().map_or(0, |l| l.bias.len()) != 1 {
            return Err(unsupported("multi-output MLPRegressor is not supported"));
        }
        MlpTask::Regression
    };
    Ok(Estimator::Mlp(Mlp {
        layers,
        hidden,
        output,
        task,
    }))
}
