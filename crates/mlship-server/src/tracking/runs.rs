//! Experiments, runs, metrics, datasets and logged models over MLflow's REST API.

use axum::extract::{Path, State};
use mlship_registry::tracking::{Dataset, DatasetInput, Metric, NewRun, RunSearch, ViewType};
use serde_json::{Value as Json, json};

use super::entities::{self, put_list};
use super::{Answer, Req, Shared, bad, blocking, empty, ok};

fn view(r: &Req, name: &str) -> Result<ViewType, crate::ApiError> {
    ViewType::parse(&r.opt_str(name)?.unwrap_or_default()).map_err(|e| bad(e.to_string()))
}

fn max_results(r: &Req, default: usize) -> Result<usize, crate::ApiError> {
    match r.opt_i64("max_results")? {
        None => Ok(default),
        Some(n) if n <= 0 => Err(bad(format!(
            "Invalid value {n} for parameter 'max_results' supplied: it must be positive"
        ))),
        Some(n) => Ok(n as usize),
    }
}

pub async fn create_experiment(State(s): State<Shared>, r: Req) -> Answer {
    let name = r.str("name")?;
    let location = r.opt_str("artifact_location")?;
    let tags = r.key_values("tags")?;
    let id = blocking(move || s.store.create_experiment(&name, location.as_deref(), &tags)).await?;
    Ok(ok(json!({"experiment_id": id})))
}

pub async fn get_experiment(State(s): State<Shared>, r: Req) -> Answer {
    let id = r.str("experiment_id")?;
    let e = blocking(move || s.store.experiment(&id)).await?;
    Ok(ok(json!({"experiment": entities::experiment(&e)})))
}

pub async fn get_experiment_by_name(State(s): State<Shared>, r: Req) -> Answer {
    let name = r.str("experiment_name")?;
    let e = blocking(move || s.store.experiment_by_name(&name)).await?;
    Ok(ok(json!({"experiment": entities::experiment(&e)})))
}

pub async fn search_experiments(State(s): State<Shared>, r: Req) -> Answer {
    let view = view(&r, "view_type")?;
    let filter = r.opt_str("filter")?.unwrap_or_default();
    let order = r.strings("order_by")?;
    let max = max_results(&r, 1000)?;
    let token = r.opt_str("page_token")?;
    let (found, next) = blocking(move || {
        s.store
            .search_experiments(view, &filter, &order, max, token.as_deref())
    })
    .await?;
    let mut m = serde_json::Map::new();
    put_list(
        &mut m,
        "experiments",
        found.iter().map(entities::experiment).collect(),
    );
    entities::put_opt(&mut m, "next_page_token", next);
    Ok(ok(Json::Object(m)))
}

pub async fn update_experiment(State(s): State<Shared>, r: Req) -> Answer {
    let id = r.str("experiment_id")?;
    let name = r.str("new_name")?;
    blocking(move || s.store.rename_experiment(&id, &name)).await?;
    Ok(empty())
}

pub async fn delete_experiment(State(s): State<Shared>, r: Req) -> Answer {
    let id = r.str("experiment_id")?;
    blocking(move || s.store.set_experiment_deleted(&id, true)).await?;
    Ok(empty())
}

pub async fn restore_experiment(State(s): State<Shared>, r: Req) -> Answer {
    let id = r.str("experiment_id")?;
    blocking(move || s.store.set_experiment_deleted(&id, false)).await?;
    Ok(empty())
}

pub async fn set_experiment_tag(State(s): State<Shared>, r: Req) -> Answer {
    let id = r.str("experiment_id")?;
    let key = r.str("key")?;
    let value = r.opt_str("value")?.unwrap_or_default();
    blocking(move || s.store.set_experiment_tag(&id, &key, Some(&value))).await?;
    Ok(empty())
}

pub async fn delete_experiment_tag(State(s): State<Shared>, r: Req) -> Answer {
    let id = r.str("experiment_id")?;
    let key = r.str("key")?;
    blocking(move || s.store.set_experiment_tag(&id, &key, None)).await?;
    Ok(empty())
}

pub async fn create_run(
    State(s): State<Shared>,
    caller: Option<axum::Extension<crate::auth::Caller>>,
    r: Req,
) -> Answer {
    let new = NewRun {
        experiment_id: r.opt_str("experiment_id")?.unwrap_or_else(|| "0".into()),
        // With authentication on, a run belongs to the token that made it, as MLflow's own
        // authenticated server records it.
        user_id: match caller {
            Some(c) => c.name.clone(),
            None => r.opt_str("user_id")?.unwrap_or_default(),
        },
        run_name: r.opt_str("run_name")?,
        start_time: r.opt_i64("start_time")?,
        tags: r.key_values("tags")?,
    };
    let run = blocking(move || s.store.create_run(&new)).await?;
    Ok(ok(json!({"run": entities::run(&run)})))
}

pub async fn get_run(State(s): State<Shared>, r: Req) -> Answer {
    let id = r.run_id()?;
    let run = blocking(move || s.store.run(&id)).await?;
    Ok(ok(json!({"run": entities::run(&run)})))
}

pub async fn update_run(State(s): State<Shared>, r: Req) -> Answer {
    let id = r.run_id()?;
    let status = r.opt_str("status")?;
    let end = r.opt_i64("end_time")?;
    let name = r.opt_str("run_name")?;
    let info = blocking(move || {
        s.store
            .update_run(&id, status.as_deref(), end, name.as_deref())
    })
    .await?;
    Ok(ok(json!({"run_info": entities::run_info(&info)})))
}

pub async fn delete_run(State(s): State<Shared>, r: Req) -> Answer {
    let id = r.run_id()?;
    blocking(move || s.store.set_run_deleted(&id, true)).await?;
    Ok(empty())
}

pub async fn restore_run(State(s): State<Shared>, r: Req) -> Answer {
    let id = r.run_id()?;
    blocking(move || s.store.set_run_deleted(&id, false)).await?;
    Ok(empty())
}

pub async fn search_runs(State(s): State<Shared>, r: Req) -> Answer {
    let search = RunSearch {
        experiment_ids: r.strings("experiment_ids")?,
        filter: r.opt_str("filter")?.unwrap_or_default(),
        view: view(&r, "run_view_type")?,
        max_results: max_results(&r, 1000)?,
        order_by: r.strings("order_by")?,
        page_token: r.opt_str("page_token")?,
    };
    let (runs, next) = blocking(move || s.store.search_runs(&search)).await?;
    let mut m = serde_json::Map::new();
    put_list(&mut m, "runs", runs.iter().map(entities::run).collect());
    entities::put_opt(&mut m, "next_page_token", next);
    Ok(ok(Json::Object(m)))
}

fn read_metric(o: serde_json::Map<String, Json>, list: &str) -> Result<Metric, crate::ApiError> {
    let r = Req(o);
    let key = r
        .str("key")
        .map_err(|e| bad(format!("in '{list}': {}", e.message)))?;
    let value = match r.0.get("value") {
        Some(v) => entities::read_number(v).ok_or_else(|| {
            bad(format!(
                "Invalid value {v} for metric '{key}': expected a number, \"NaN\", \"Infinity\" or \"-Infinity\""
            ))
        })?,
        None => return Err(bad(format!("Missing value for required parameter 'value' of metric '{key}'."))),
    };
    let timestamp = r
        .opt_i64("timestamp")?
        .unwrap_or_else(mlship_registry::now_ms);
    let step = r.opt_i64("step")?.unwrap_or(0);
    Ok(Metric {
        key,
        value,
        timestamp,
        step,
        model_id: r.opt_str("model_id")?.filter(|s| !s.is_empty()),
        dataset_name: r.opt_str("dataset_name")?.filter(|s| !s.is_empty()),
        dataset_digest: r.opt_str("dataset_digest")?.filter(|s| !s.is_empty()),
        run_id: None,
    })
}

pub async fn log_batch(State(s): State<Shared>, r: Req) -> Answer {
    let id = r.run_id()?;
    let metrics = r
        .objects("metrics")?
        .into_iter()
        .map(|o| read_metric(o, "metrics"))
        .collect::<Result<Vec<_>, _>>()?;
    let params = r.key_values("params")?;
    let tags = r.key_values("tags")?;
    blocking(move || s.store.log_batch(&id, &metrics, &params, &tags)).await?;
    Ok(empty())
}

pub async fn log_metric(State(s): State<Shared>, r: Req) -> Answer {
    let id = r.run_id()?;
    let m = read_metric(r.0, "metric")?;
    blocking(move || s.store.log_batch(&id, &[m], &[], &[])).await?;
    Ok(empty())
}

pub async fn log_param(State(s): State<Shared>, r: Req) -> Answer {
    let id = r.run_id()?;
    let key = r.str("key")?;
    let value = r.opt_str("value")?.unwrap_or_default();
    blocking(move || s.store.log_batch(&id, &[], &[(key, value)], &[])).await?;
    Ok(empty())
}

pub async fn set_tag(State(s): State<Shared>, r: Req) -> Answer {
    let id = r.run_id()?;
    let key = r.str("key")?;
    let value = r.opt_str("value")?.unwrap_or_default();
    blocking(move || s.store.log_batch(&id, &[], &[], &[(key, value)])).await?;
    Ok(empty())
}

pub async fn delete_tag(State(s): State<Shared>, r: Req) -> Answer {
    let id = r.run_id()?;
    let key = r.str("key")?;
    blocking(move || s.store.delete_run_tag(&id, &key)).await?;
    Ok(empty())
}

pub async fn log_inputs(State(s): State<Shared>, r: Req) -> Answer {
    let id = r.run_id()?;
    let mut inputs = Vec::new();
    for o in r.objects("datasets")? {
        let item = Req(o);
        let tags = item.key_values("tags")?;
        let Some(Json::Object(d)) = item.0.get("dataset").cloned() else {
            return Err(bad("in 'datasets': each entry needs a 'dataset' object"));
        };
        let d = Req(d);
        inputs.push(DatasetInput {
            dataset: Dataset {
                name: d.str("name")?,
                digest: d.str("digest")?,
                source_type: d.opt_str("source_type")?.unwrap_or_default(),
                source: d.opt_str("source")?.unwrap_or_default(),
                schema: d.opt_str("schema")?,
                profile: d.opt_str("profile")?,
            },
            tags,
        });
    }
    blocking(move || s.store.log_inputs(&id, &inputs)).await?;
    Ok(empty())
}

pub async fn log_outputs(State(s): State<Shared>, r: Req) -> Answer {
    let id = r.run_id()?;
    let mut models = Vec::new();
    for o in r.objects("models")? {
        let m = Req(o);
        models.push((m.str("model_id")?, m.opt_i64("step")?.unwrap_or(0)));
    }
    blocking(move || s.store.log_outputs(&id, &models)).await?;
    Ok(empty())
}

pub async fn metric_history(State(s): State<Shared>, r: Req) -> Answer {
    let id = r.run_id()?;
    let key = r.str("metric_key")?;
    let max = max_results(&r, 25_000)?;
    let token = r.opt_str("page_token")?;
    let (h, next) =
        blocking(move || s.store.metric_history(&id, &key, max, token.as_deref())).await?;
    Ok(axum::response::IntoResponse::into_response((
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        entities::history_json(&h, next.as_deref()),
    )))
}

pub async fn create_logged_model(State(s): State<Shared>, r: Req) -> Answer {
    let exp = r.str("experiment_id")?;
    let name = r.opt_str("name")?;
    let run = r.opt_str("source_run_id")?.filter(|x| !x.is_empty());
    let kind = r.opt_str("model_type")?;
    let params = r.key_values("params")?;
    let tags = r.key_values("tags")?;
    let m = blocking(move || {
        s.store.create_logged_model(
            &exp,
            name.as_deref(),
            run.as_deref(),
            kind.as_deref(),
            &params,
            &tags,
        )
    })
    .await?;
    Ok(ok(json!({"model": entities::logged_model(&m)})))
}

pub async fn get_logged_model(State(s): State<Shared>, Path(id): Path<String>) -> Answer {
    let m = blocking(move || s.store.logged_model(&id)).await?;
    Ok(ok(json!({"model": entities::logged_model(&m)})))
}

pub async fn finalize_logged_model(
    State(s): State<Shared>,
    Path(id): Path<String>,
    r: Req,
) -> Answer {
    let status = r.str("status")?;
    let m = blocking(move || s.store.finalize_logged_model(&id, &status)).await?;
    Ok(ok(json!({"model": entities::logged_model(&m)})))
}

pub async fn delete_logged_model(State(s): State<Shared>, Path(id): Path<String>) -> Answer {
    blocking(move || s.store.delete_logged_model(&id)).await?;
    Ok(empty())
}

pub async fn set_logged_model_tags(
    State(s): State<Shared>,
    Path(id): Path<String>,
    r: Req,
) -> Answer {
    let tags: Vec<(String, Option<String>)> = r
        .key_values("tags")?
        .into_iter()
        .map(|(k, v)| (k, Some(v)))
        .collect();
    blocking(move || s.store.set_logged_model_tags(&id, &tags)).await?;
    Ok(empty())
}

pub async fn delete_logged_model_tag(
    State(s): State<Shared>,
    Path((id, key)): Path<(String, String)>,
) -> Answer {
    blocking(move || s.store.set_logged_model_tags(&id, &[(key, None)])).await?;
    Ok(empty())
}

pub async fn log_logged_model_params(
    State(s): State<Shared>,
    Path(id): Path<String>,
    r: Req,
) -> Answer {
    let params = r.key_values("params")?;
    blocking(move || s.store.log_logged_model_params(&id, &params)).await?;
    Ok(empty())
}

pub async fn search_logged_models(State(s): State<Shared>, r: Req) -> Answer {
    let exps = r.strings("experiment_ids")?;
    let filter = r.opt_str("filter")?.unwrap_or_default();
    let max = max_results(&r, 100)?;
    let token = r.opt_str("page_token")?;
    let (found, next) = blocking(move || {
        s.store
            .search_logged_models(&exps, &filter, max, token.as_deref())
    })
    .await?;
    let mut m = serde_json::Map::new();
    put_list(
        &mut m,
        "models",
        found.iter().map(entities::logged_model).collect(),
    );
    entities::put_opt(&mut m, "next_page_token", next);
    Ok(ok(Json::Object(m)))
}
