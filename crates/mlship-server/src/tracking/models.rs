//! The MLflow registry API over mlship's registry: the same models, versions, aliases and alias
//! history that `mlship models` shows.

use std::collections::BTreeMap;

use axum::extract::State;
use mlship_registry::{
    Error as StoreError, MetadataStore, ModelSummary, Selector, SqlStore, Version,
};
use serde_json::{Value as Json, json};

use super::entities::{self, put_list};
use super::{Answer, Registration, Req, Shared, Who, bad, blocking, empty, ok};

/// The version a request names: digits (the field table checks that); a number no version can
/// have (0, or past `u32`) is a version that does not exist.
pub(crate) fn version_number(r: &Req) -> Result<u32, crate::ApiError> {
    let name = r.str("name")?;
    let v = r.str("version")?;
    v.parse::<u32>().ok().filter(|n| *n > 0).ok_or_else(|| {
        super::store_error(StoreError::NotFound(format!(
            "Model Version (name={name}, version={v}) not found"
        )))
    })
}

/// The latest version of each stage, as `latest_versions` lists them.
fn latest_per_stage(versions: &[Version]) -> Vec<Version> {
    let mut by: BTreeMap<&str, &Version> = BTreeMap::new();
    for v in versions {
        by.entry(v.stage.as_str())
            .and_modify(|x| {
                if v.version > x.version {
                    *x = v;
                }
            })
            .or_insert(v);
    }
    let mut out: Vec<Version> = by.into_values().cloned().collect();
    out.sort_by_key(|v| v.version);
    out
}

fn model_json(s: &SqlStore, info: &ModelSummary) -> Result<Json, StoreError> {
    let versions = s.clone().versions(&info.name)?;
    Ok(entities::registered_model(
        info,
        &latest_per_stage(&versions),
    ))
}

/// A version with the aliases that point at it.
fn version_json(s: &SqlStore, v: &Version) -> Result<Json, StoreError> {
    let aliases = s.summary(&v.meta.name)?.aliases;
    Ok(entities::model_version(v, &aliases))
}

pub async fn create_model(State(s): State<Shared>, r: Req) -> Answer {
    let name = r.str("name")?;
    let description = r.opt_str("description")?;
    let tags: BTreeMap<String, String> = r.key_values("tags")?.into_iter().collect();
    let m = blocking(move || {
        let info = s.store.create_model(&name, description.as_deref(), &tags)?;
        model_json(&s.store, &info)
    })
    .await?;
    Ok(ok(json!({"registered_model": m})))
}

pub async fn get_model(State(s): State<Shared>, r: Req) -> Answer {
    let name = r.str("name")?;
    let m = blocking(move || {
        let info = s.store.summary(&name)?;
        model_json(&s.store, &info)
    })
    .await?;
    Ok(ok(json!({"registered_model": m})))
}

pub async fn search_models(State(s): State<Shared>, r: Req) -> Answer {
    let filter = r.opt_str("filter")?.unwrap_or_default();
    let order = r.strings("order_by")?;
    let max = r.opt_i64("max_results")?.unwrap_or(100).clamp(1, 1000) as usize;
    let token = r.opt_str("page_token")?;
    let (items, next) = blocking(move || {
        let (found, next) = s
            .store
            .search_models(&filter, &order, max, token.as_deref())?;
        let items = found
            .iter()
            .map(|m| model_json(&s.store, m))
            .collect::<Result<Vec<_>, _>>()?;
        Ok((items, next))
    })
    .await?;
    let mut m = serde_json::Map::new();
    put_list(&mut m, "registered_models", items);
    entities::put_opt(&mut m, "next_page_token", next);
    Ok(ok(Json::Object(m)))
}

pub async fn update_model(State(s): State<Shared>, r: Req) -> Answer {
    let name = r.str("name")?;
    let description = r.opt_str("description")?.unwrap_or_default();
    let m = blocking(move || {
        let info = s.store.set_model_description(&name, &description)?;
        model_json(&s.store, &info)
    })
    .await?;
    Ok(ok(json!({"registered_model": m})))
}

pub async fn rename_model(State(s): State<Shared>, r: Req) -> Answer {
    let name = r.str("name")?;
    let new_name = r.str("new_name")?;
    let m = blocking(move || {
        let info = s.store.rename_model(&name, &new_name)?;
        model_json(&s.store, &info)
    })
    .await?;
    Ok(ok(json!({"registered_model": m})))
}

pub async fn delete_model(State(s): State<Shared>, Who(by): Who, r: Req) -> Answer {
    let name = r.str("name")?;
    blocking(move || {
        // The rows go first: an artifact is removed only once nothing lists it.
        for sha in s.store.purge_model(&name, &by)? {
            s.registrar.release(&sha)?;
        }
        Ok(())
    })
    .await?;
    Ok(empty())
}

pub async fn set_model_tag(State(s): State<Shared>, r: Req) -> Answer {
    let name = r.str("name")?;
    let key = r.str("key")?;
    let value = r.opt_str("value")?.unwrap_or_default();
    blocking(move || s.store.set_model_tag(&name, &key, Some(&value))).await?;
    Ok(empty())
}

pub async fn delete_model_tag(State(s): State<Shared>, r: Req) -> Answer {
    let name = r.str("name")?;
    let key = r.str("key")?;
    blocking(move || s.store.set_model_tag(&name, &key, None)).await?;
    Ok(empty())
}

pub async fn set_alias(State(s): State<Shared>, Who(by): Who, r: Req) -> Answer {
    let name = r.str("name")?;
    let alias = r.str("alias")?;
    let version = version_number(&r)?;
    let reason = super::mlship_api::reason(&r, "set through the MLflow API")?;
    blocking(move || {
        s.store
            .clone()
            .set_alias(&name, &alias, version, &by, &reason)
    })
    .await?;
    Ok(empty())
}

pub async fn delete_alias(State(s): State<Shared>, Who(by): Who, r: Req) -> Answer {
    let name = r.str("name")?;
    let alias = r.str("alias")?;
    blocking(move || {
        s.store
            .clone()
            .delete_alias(&name, &alias, &by, "deleted through the MLflow API")
    })
    .await?;
    Ok(empty())
}

pub async fn get_alias(State(s): State<Shared>, r: Req) -> Answer {
    let name = r.str("name")?;
    let alias = r.str("alias")?;
    let v = blocking(move || {
        let mut store = s.store.clone();
        let v = store.resolve(&name, &Selector::Alias(alias))?;
        version_json(&s.store, &v)
    })
    .await?;
    Ok(ok(json!({"model_version": v})))
}

pub async fn latest_versions(State(s): State<Shared>, r: Req) -> Answer {
    let name = r.str("name")?;
    let stages = r.strings("stages")?;
    let items = blocking(move || {
        let info = s.store.summary(&name)?;
        let versions = s.store.clone().versions(&name)?;
        Ok(latest_per_stage(&versions)
            .into_iter()
            .filter(|v| {
                stages.is_empty() || stages.iter().any(|st| st.eq_ignore_ascii_case(&v.stage))
            })
            .map(|v| entities::model_version(&v, &info.aliases))
            .collect::<Vec<_>>())
    })
    .await?;
    let mut m = serde_json::Map::new();
    put_list(&mut m, "model_versions", items);
    Ok(ok(Json::Object(m)))
}

/// Where a version's source lives in this server's artifact store, if it does.
fn source_path(
    s: &mlship_registry::SqlStore,
    source: &str,
    model_id: Option<&str>,
) -> Result<Result<String, String>, StoreError> {
    let from_uri = |uri: &str| -> Result<String, String> {
        uri.strip_prefix("mlflow-artifacts:/")
            .map(|p| p.trim_start_matches('/').to_string())
            .ok_or_else(|| {
                format!("its artifacts are at {uri}, outside this server's artifact store")
            })
    };
    if let Some(id) = source.strip_prefix("models:/m-").map(|x| format!("m-{x}")) {
        let m = s.logged_model(id.trim_end_matches('/'))?;
        return Ok(from_uri(&m.artifact_uri));
    }
    if let Some(rest) = source.strip_prefix("runs:/") {
        let (run, path) = rest.split_once('/').unwrap_or((rest, ""));
        let r = s.run(run)?;
        let base = from_uri(&r.info.artifact_uri);
        return Ok(base.map(|b| {
            if path.is_empty() {
                b
            } else {
                format!("{b}/{}", path.trim_matches('/'))
            }
        }));
    }
    if source.starts_with("mlflow-artifacts:/") {
        return Ok(from_uri(source));
    }
    if let Some(id) = model_id {
        let m = s.logged_model(id)?;
        return Ok(from_uri(&m.artifact_uri));
    }
    Ok(Err(format!(
        "its source {source} is not in this server's artifact store"
    )))
}

pub async fn create_version(State(s): State<Shared>, Who(by): Who, r: Req) -> Answer {
    let name = r.str("name")?;
    let source = r.str("source")?;
    let mut run_id = r.opt_str("run_id")?.filter(|x| !x.is_empty());
    let model_id = r.opt_str("model_id")?.filter(|x| !x.is_empty());
    let description = r.opt_str("description")?;
    let tags = r.key_values("tags")?;
    let v = blocking(move || {
        s.store.summary(&name)?;
        if run_id.is_none() {
            if let Some(id) = &model_id {
                run_id = s.store.logged_model(id)?.source_run_id;
            }
        }
        let (files, missing) = match source_path(&s.store, &source, model_id.as_deref())? {
            Ok(path) => {
                let files = s.files.read_tree(&path)?;
                if files.is_empty() {
                    (
                        files,
                        Some(format!("no files were found at its source {source}")),
                    )
                } else {
                    (files, None)
                }
            }
            Err(why) => (Vec::new(), Some(why)),
        };
        let v = s.registrar.register(Registration {
            name: name.clone(),
            files,
            source,
            run_id,
            model_id,
            description,
            tags,
            by,
            missing,
        })?;
        version_json(&s.store, &v)
    })
    .await?;
    Ok(ok(json!({"model_version": v})))
}

pub async fn get_version(State(s): State<Shared>, r: Req) -> Answer {
    let name = r.str("name")?;
    let version = version_number(&r)?;
    let v = blocking(move || {
        let v = s
            .store
            .clone()
            .resolve(&name, &Selector::Version(version))?;
        version_json(&s.store, &v)
    })
    .await?;
    Ok(ok(json!({"model_version": v})))
}

pub async fn search_versions(State(s): State<Shared>, r: Req) -> Answer {
    let filter = r.opt_str("filter")?.unwrap_or_default();
    let max = r
        .opt_i64("max_results")?
        .unwrap_or(10_000)
        .clamp(1, 200_000) as usize;
    let token = r.opt_str("page_token")?;
    let (found, next) =
        blocking(move || s.store.search_versions(&filter, max, token.as_deref())).await?;
    let mut m = serde_json::Map::new();
    // As MLflow answers a version search: tags, no aliases.
    put_list(
        &mut m,
        "model_versions",
        found
            .iter()
            .map(|v| entities::model_version(v, &BTreeMap::new()))
            .collect(),
    );
    entities::put_opt(&mut m, "next_page_token", next);
    Ok(ok(Json::Object(m)))
}

pub async fn update_version(State(s): State<Shared>, r: Req) -> Answer {
    let name = r.str("name")?;
    let version = version_number(&r)?;
    let description = r.opt_str("description")?.unwrap_or_default();
    let v = blocking(move || {
        let v = s
            .store
            .set_version_description(&name, version, &description)?;
        version_json(&s.store, &v)
    })
    .await?;
    Ok(ok(json!({"model_version": v})))
}

pub async fn delete_version(State(s): State<Shared>, Who(by): Who, r: Req) -> Answer {
    let name = r.str("name")?;
    let version = version_number(&r)?;
    blocking(move || {
        let (deleted, shared) = s.store.purge_version(&name, version, &by)?;
        if !shared {
            s.registrar.release(&deleted.meta.sha256)?;
        }
        Ok(())
    })
    .await?;
    Ok(empty())
}

pub async fn set_version_tag(State(s): State<Shared>, r: Req) -> Answer {
    let name = r.str("name")?;
    let version = version_number(&r)?;
    let key = r.str("key")?;
    let value = r.opt_str("value")?.unwrap_or_default();
    blocking(move || s.store.set_version_tag(&name, version, &key, Some(&value))).await?;
    Ok(empty())
}

pub async fn delete_version_tag(State(s): State<Shared>, r: Req) -> Answer {
    let name = r.str("name")?;
    let version = version_number(&r)?;
    let key = r.str("key")?;
    blocking(move || s.store.set_version_tag(&name, version, &key, None)).await?;
    Ok(empty())
}

pub async fn download_uri(State(s): State<Shared>, r: Req) -> Answer {
    let name = r.str("name")?;
    let version = version_number(&r)?;
    let uri = blocking(move || {
        let v = s
            .store
            .clone()
            .resolve(&name, &Selector::Version(version))?;
        let source = v.meta.source.clone().unwrap_or_default();
        if let Ok(path) = source_path(&s.store, &source, v.meta.model_id.as_deref())? {
            return Ok(format!("mlflow-artifacts:/{path}"));
        }
        // Registered outside the MLflow API: its files are written once as an MLflow model
        // directory, so the client's `load_model("models:/NAME/V")` can download them.
        let dir = format!("registry/{name}/{version}");
        if s.files.open(&format!("{dir}/MLmodel")).is_err() {
            for (rel, data) in s.registrar.mlflow_files(&v)? {
                s.files.put(&format!("{dir}/{rel}"), &mut data.as_slice())?;
            }
        }
        Ok(format!("mlflow-artifacts:/{dir}"))
    })
    .await?;
    Ok(ok(json!({"artifact_uri": uri})))
}

pub async fn transition_stage(State(s): State<Shared>, r: Req) -> Answer {
    let name = r.str("name")?;
    let version = version_number(&r)?;
    let stage = r.str("stage")?;
    let stage = ["None", "Staging", "Production", "Archived"]
        .into_iter()
        .find(|x| x.eq_ignore_ascii_case(&stage))
        .ok_or_else(|| {
            bad(format!(
                "Invalid Model Version stage: {stage}. Value must be one of None, Staging, Production, Archived."
            ))
        })?;
    let archive = r.opt_bool("archive_existing_versions")?.unwrap_or(false);
    let v = blocking(move || {
        let v = s.store.transition_stage(&name, version, stage, archive)?;
        version_json(&s.store, &v)
    })
    .await?;
    Ok(ok(json!({"model_version": v})))
}
