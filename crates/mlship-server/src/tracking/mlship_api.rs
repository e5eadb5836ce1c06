//! mlship's routes beside MLflow's (under `/api/2.0/mlship/`): a model's alias history, rollback,
//! one version as mlship stores it, and the "try it" form and in-process scoring the web UI uses.
//! The UI reads only these and MLflow's routes, so a script can do all it does.

use std::sync::{Arc, Mutex};

use axum::extract::State;
use mlship_model::{Frame, Model};
use mlship_registry::{AliasEvent, Error as StoreError, MetadataStore, Selector, Version};
use serde_json::{Value as Json, json};

use super::{Answer, Req, Shared, Who, bad, blocking, ok};
use crate::api::{self, ApiError, Style};

/// What the binary's loaders give for a version: the model, and its input example's bytes.
pub struct Loaded {
    pub model: Model,
    pub input_example: Option<Vec<u8>>,
}

/// A loaded version: its artifact's digest, the model, and its input example read as a frame.
type Kept = (String, Arc<Model>, Option<Arc<Frame>>);

/// Versions loaded for scoring, by artifact: a few are kept, the oldest dropped first.
#[derive(Default)]
pub struct Scoring {
    loaded: Mutex<Vec<Kept>>,
}

const KEPT: usize = 8;

impl Scoring {
    fn get(&self, sha256: &str) -> Option<(Arc<Model>, Option<Arc<Frame>>)> {
        let g = self.loaded.lock().unwrap_or_else(|e| e.into_inner());
        g.iter()
            .find(|(s, ..)| s == sha256)
            .map(|(_, m, e)| (m.clone(), e.clone()))
    }

    fn put(&self, sha256: String, model: Arc<Model>, example: Option<Arc<Frame>>) {
        let mut g = self.loaded.lock().unwrap_or_else(|e| e.into_inner());
        g.retain(|(s, ..)| *s != sha256);
        if g.len() >= KEPT {
            g.remove(0);
        }
        g.push((sha256, model, example));
    }
}

fn event(e: &AliasEvent) -> Json {
    json!({
        "alias": e.alias,
        "from_version": e.from.map(|v| v.to_string()),
        "to_version": e.to.map(|v| v.to_string()),
        "timestamp": e.at,
        "by": e.by,
        "reason": e.reason,
    })
}

/// `GET mlship/registered-models/alias-history?name=`: every move of the model's aliases, oldest
/// first.
pub async fn alias_history(State(s): State<Shared>, r: Req) -> Answer {
    let name = r.str("name")?;
    let events = blocking(move || s.store.clone().history(&name)).await?;
    Ok(ok(
        json!({"events": events.iter().map(event).collect::<Vec<_>>()}),
    ))
}

/// `POST mlship/registered-models/rollback {name, alias, reason}`: the alias goes back to the
/// version it held before its last move.
pub async fn rollback(State(s): State<Shared>, Who(by): Who, r: Req) -> Answer {
    let name = r.str("name")?;
    let alias = r.str("alias")?;
    let reason = reason(&r, "rolled back through the API")?;
    let e = blocking(move || s.store.clone().rollback(&name, &alias, &by, &reason)).await?;
    Ok(ok(json!({"event": event(&e)})))
}

/// `GET mlship/experiments/activity`: how many active runs each experiment holds and when the
/// last one started (MLflow's experiment search has no counts).
pub async fn experiment_activity(State(s): State<Shared>) -> Answer {
    let a = blocking(move || s.store.experiment_activity()).await?;
    let list: Vec<Json> = a
        .into_iter()
        .map(
            |(id, (runs, last))| json!({"experiment_id": id, "runs": runs, "last_run_start": last}),
        )
        .collect();
    Ok(ok(json!({"experiments": list})))
}

/// The `reason` field, or what to record when there is none.
pub(crate) fn reason(r: &Req, default: &str) -> Result<String, ApiError> {
    Ok(r.opt_str("reason")?
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| default.to_string()))
}

async fn version_of(s: &Shared, r: &Req) -> Result<Version, ApiError> {
    let name = r.str("name")?;
    let n = super::models::version_number(r)?;
    let s = s.clone();
    blocking(move || s.store.clone().resolve(&name, &Selector::Version(n))).await
}

/// `GET mlship/model-versions/get?name=&version=`: a version as mlship stores it (signature,
/// artifact digest, whether it can be served and why not).
pub async fn get_version(State(s): State<Shared>, r: Req) -> Answer {
    let v = version_of(&s, &r).await?;
    let signature: Json = serde_json::from_str(&v.meta.signature).unwrap_or(Json::Null);
    Ok(ok(json!({
        "name": v.meta.name,
        "version": v.version.to_string(),
        "created_at": v.created_at,
        "created_by": v.meta.created_by,
        "kind": v.meta.kind,
        "format": v.meta.format,
        "estimator": v.meta.estimator,
        "signature": signature,
        "sha256": v.meta.sha256,
        "size": v.meta.size,
        "git_commit": v.meta.git_commit,
        "run_id": v.meta.run_id,
        "source": v.meta.source,
        "has_input_example": v.meta.input_example.is_some(),
        "servable": v.meta.not_servable.is_none(),
        "not_servable_reason": v.meta.not_servable,
    })))
}

/// The version's model, loaded once and kept; a version mlship cannot serve is refused with why.
async fn model_of(s: &Shared, v: Version) -> Result<(Arc<Model>, Option<Arc<Frame>>), ApiError> {
    if let Some(why) = &v.meta.not_servable {
        return Err(super::store_error(StoreError::Conflict(format!(
            "version {} of `{}` cannot be scored by mlship: {why}",
            v.version, v.meta.name
        ))));
    }
    if let Some(hit) = s.scoring.get(&v.meta.sha256) {
        return Ok(hit);
    }
    let s2 = s.clone();
    let sha = v.meta.sha256.clone();
    let loaded = blocking(move || s2.registrar.load(&v)).await?;
    let example = loaded
        .input_example
        .as_deref()
        .and_then(|b| crate::form::read_example(b, &loaded.model))
        .map(Arc::new);
    let model = Arc::new(loaded.model);
    s.scoring.put(sha, model.clone(), example.clone());
    Ok((model, example))
}

/// `GET mlship/model-versions/form?name=&version=`: the fields of the version's "try it" form.
pub async fn form(State(s): State<Shared>, r: Req) -> Answer {
    let v = version_of(&s, &r).await?;
    let (model, example) = model_of(&s, v).await?;
    Ok(ok(crate::form::describe(&model, example.as_deref())))
}

/// `POST mlship/model-versions/predict {name, version, <an MLflow scoring body>}`: scores in the
/// server's process, with the probabilities of a classifier.
pub async fn predict(State(s): State<Shared>, r: Req) -> Answer {
    let v = version_of(&s, &r).await?;
    let (name, version) = (v.meta.name.clone(), v.version.to_string());
    let (model, _) = model_of(&s, v).await?;
    let mut body = r.0;
    body.remove("name");
    body.remove("version");
    let frame = crate::input::parse_value(&Json::Object(body), &model.signature)
        .map_err(|e| bad(format!("{} ({})", e.message, e.hint)))?;
    if frame.n_rows() == 0 {
        return Err(bad("the input has no rows"));
    }
    let out = tokio::task::spawn_blocking(move || api::predict_guarded(&model, &frame))
        .await
        .unwrap_or_else(|e| Err(api::Failure::Panic(e.to_string())));
    let out = out.map_err(|f| api::failed(&f, &name, &version, Style::Mlflow))?;
    Ok(ok(api::predictions_doc(&out, true)))
}
