//! What the XGBoost and LightGBM front ends share: the head of a boosted ensemble and the model
//! around it (float inputs named by the booster, integer class labels).

use mlship_model::{
    BoostLink, DType, Estimator, Field, Label, Model, ModelInfo, Signature, Task, TreeEnsemble,
    TreeHead,
};

/// How a booster's margin becomes its answer.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Link {
    Identity,
    Exp,
    Classifier(BoostLink),
}

/// The task, class labels (`0..k`, as the libraries' scikit-learn wrappers encode them) and head
/// of a boosted ensemble with `n_outputs` accumulators starting at `base`.
pub(crate) fn head(
    link: Link,
    n_outputs: usize,
    base: Vec<f64>,
    scale: f64,
) -> (Task, Option<Vec<Label>>, TreeHead) {
    match link {
        Link::Identity | Link::Exp => (
            Task::Regression,
            None,
            TreeHead::BoostRegression {
                base: base.first().copied().unwrap_or(0.0),
                scale,
                exp: link == Link::Exp,
            },
        ),
        Link::Classifier(link) => {
            let classes: Vec<Label> = (0..n_outputs.max(2) as i64).map(Label::Int).collect();
            (
                Task::Classification,
                Some(classes.clone()),
                TreeHead::BoostClassifier {
                    classes,
                    base,
                    scale,
                    link,
                    // Both wrappers pick the positive class when its probability is above 0.5.
                    positive_at_zero: false,
                },
            )
        }
    }
}

/// The model of a booster: float inputs, nullable (both libraries route missing values), named
/// by the booster when it has one name per feature, else `{prefix}{j}`.
pub(crate) fn model(
    ensemble: TreeEnsemble,
    names: Vec<String>,
    prefix: &str,
    task: Task,
    classes: Option<Vec<Label>>,
    info: ModelInfo,
) -> crate::Result<Model> {
    let n = ensemble.n_features();
    let named = names.len() == n && n > 0;
    let inputs = (0..n)
        .map(|j| Field {
            name: if named {
                names[j].clone()
            } else {
                format!("{prefix}{j}")
            },
            dtype: DType::Float,
            nullable: true,
        })
        .collect();
    let signature = Signature {
        inputs,
        named,
        task,
        classes,
    };
    Ok(Model::new(
        signature,
        Vec::new(),
        Estimator::Trees(ensemble),
        info,
    )?)
}

/// Gives a boosted classifier the class labels its scikit-learn wrapper knows (the booster
/// itself numbers them 0..k).
pub fn relabel(m: &mut Model, classes: Vec<Label>) -> crate::Result<()> {
    use mlship_model::{Estimator, TreeEnsemble, TreeHead};
    let Estimator::Trees(t) = &m.estimator else {
        return Ok(());
    };
    let head = match t.head().clone() {
        TreeHead::BoostClassifier {
            classes: old,
            base,
            scale,
            link,
            positive_at_zero,
        } if old.len() == classes.len() => TreeHead::BoostClassifier {
            classes: classes.clone(),
            base,
            scale,
            link,
            positive_at_zero,
        },
        TreeHead::ForestClassifier { classes: old } if old.len() == classes.len() => {
            TreeHead::ForestClassifier {
                classes: classes.clone(),
            }
        }
        _ => {
            return Err(crate::Error::Unsupported(format!(
                "the wrapper names {} classes the booster does not have",
                classes.len()
            )));
        }
    };
    let rebuilt = TreeEnsemble::new(
        t.n_features(),
        t.n_outputs(),
        t.trees().to_vec(),
        t.cast_f32(),
        head,
        t.known_categories().to_vec(),
    )?;
    m.estimator = Estimator::Trees(rebuilt);
    m.signature.classes = Some(classes);
    Ok(())
}
