//! The store's entities as MLflow's proto3 JSON: ids as strings, empty lists left out,
//! non-finite numbers as strings.

use std::collections::BTreeMap;

use mlship_registry::tracking::{Experiment, LoggedModel, Metric, Run, RunInfo};
use mlship_registry::{ModelSummary, Version};
use serde_json::{Map, Value as Json, json};

/// A double as proto3 JSON writes it.
pub fn number(v: f64) -> Json {
    if v.is_nan() {
        json!("NaN")
    } else if v == f64::INFINITY {
        json!("Infinity")
    } else if v == f64::NEG_INFINITY {
        json!("-Infinity")
    } else {
        json!(v)
    }
}

/// Reads a double as proto3 JSON allows: a number or one of the three strings.
pub fn read_number(v: &Json) -> Option<f64> {
    match v {
        Json::Number(n) => n.as_f64(),
        Json::String(s) => match s.as_str() {
            "NaN" | "nan" => Some(f64::NAN),
            "Infinity" | "inf" => Some(f64::INFINITY),
            "-Infinity" | "-inf" => Some(f64::NEG_INFINITY),
            other => other.trim().parse().ok(),
        },
        _ => None,
    }
}

/// Inserts a list unless it is empty (proto3 leaves empty repeated fields out).
/// A page of a metric's history as JSON, written straight from the points: the same document
/// [`metric`] and [`put_list`] would build, without the tree (25,000 points as `Json` values take
/// tens of megabytes, which the allocator then keeps).
pub fn history_json(points: &[Metric], next_page_token: Option<&str>) -> String {
    let text = |s: &str| Json::from(s).to_string();
    let mut out = String::with_capacity(points.len() * 72 + 64);
    out.push('{');
    if !points.is_empty() {
        out.push_str("\"metrics\":[");
        for (i, m) in points.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            out.push_str(&format!(
                "{{\"key\":{},\"value\":{},\"timestamp\":{},\"step\":{}",
                text(&m.key),
                number(m.value),
                m.timestamp,
                m.step
            ));
            for (key, v) in [
                ("model_id", &m.model_id),
                ("dataset_name", &m.dataset_name),
                ("dataset_digest", &m.dataset_digest),
                ("run_id", &m.run_id),
            ] {
                if let Some(v) = v {
                    out.push_str(&format!(",\"{key}\":{}", text(v)));
                }
            }
            out.push('}');
        }
        out.push(']');
    }
    if let Some(t) = next_page_token {
        if !points.is_empty() {
            out.push(',');
        }
        out.push_str(&format!("\"next_page_token\":{}", text(t)));
    }
    out.push('}');
    out
}

pub fn put_list(m: &mut Map<String, Json>, key: &str, items: Vec<Json>) {
    if !items.is_empty() {
        m.insert(key.to_string(), Json::Array(items));
    }
}

pub fn put_opt<T: Into<Json>>(m: &mut Map<String, Json>, key: &str, v: Option<T>) {
    if let Some(v) = v {
        m.insert(key.to_string(), v.into());
    }
}

pub fn tags<'a>(t: impl IntoIterator<Item = (&'a String, &'a String)>) -> Vec<Json> {
    t.into_iter()
        .map(|(k, v)| json!({"key": k, "value": v}))
        .collect()
}

pub fn experiment(e: &Experiment) -> Json {
    let mut m = Map::new();
    m.insert("experiment_id".into(), json!(e.id));
    m.insert("name".into(), json!(e.name));
    m.insert("artifact_location".into(), json!(e.artifact_location));
    m.insert("lifecycle_stage".into(), json!(e.lifecycle_stage));
    m.insert("creation_time".into(), json!(e.creation_time));
    m.insert("last_update_time".into(), json!(e.last_update_time));
    put_list(&mut m, "tags", tags(&e.tags));
    Json::Object(m)
}

pub fn run_info(i: &RunInfo) -> Json {
    let mut m = Map::new();
    m.insert("run_id".into(), json!(i.run_id));
    m.insert("run_uuid".into(), json!(i.run_id));
    m.insert("run_name".into(), json!(i.run_name));
    m.insert("experiment_id".into(), json!(i.experiment_id));
    m.insert("user_id".into(), json!(i.user_id));
    m.insert("status".into(), json!(i.status));
    m.insert("start_time".into(), json!(i.start_time));
    put_opt(&mut m, "end_time", i.end_time);
    m.insert("artifact_uri".into(), json!(i.artifact_uri));
    m.insert("lifecycle_stage".into(), json!(i.lifecycle_stage));
    Json::Object(m)
}

pub fn metric(x: &Metric) -> Json {
    let mut m = Map::new();
    m.insert("key".into(), json!(x.key));
    m.insert("value".into(), number(x.value));
    m.insert("timestamp".into(), json!(x.timestamp));
    m.insert("step".into(), json!(x.step));
    put_opt(&mut m, "model_id", x.model_id.clone());
    put_opt(&mut m, "dataset_name", x.dataset_name.clone());
    put_opt(&mut m, "dataset_digest", x.dataset_digest.clone());
    put_opt(&mut m, "run_id", x.run_id.clone());
    Json::Object(m)
}

pub fn run(r: &Run) -> Json {
    let mut data = Map::new();
    put_list(&mut data, "metrics", r.metrics.iter().map(metric).collect());
    put_list(&mut data, "params", tags(&r.params));
    put_list(&mut data, "tags", tags(&r.tags));
    let mut out = Map::new();
    out.insert("info".into(), run_info(&r.info));
    out.insert("data".into(), Json::Object(data));
    let inputs: Vec<Json> = r
        .inputs
        .iter()
        .map(|i| {
            let mut d = Map::new();
            d.insert("name".into(), json!(i.dataset.name));
            d.insert("digest".into(), json!(i.dataset.digest));
            d.insert("source_type".into(), json!(i.dataset.source_type));
            d.insert("source".into(), json!(i.dataset.source));
            put_opt(&mut d, "schema", i.dataset.schema.clone());
            put_opt(&mut d, "profile", i.dataset.profile.clone());
            let mut o = Map::new();
            put_list(
                &mut o,
                "tags",
                i.tags
                    .iter()
                    .map(|(k, v)| json!({"key": k, "value": v}))
                    .collect(),
            );
            o.insert("dataset".into(), Json::Object(d));
            Json::Object(o)
        })
        .collect();
    let mut ins = Map::new();
    put_list(&mut ins, "dataset_inputs", inputs);
    out.insert("inputs".into(), Json::Object(ins));
    let mut outs = Map::new();
    put_list(
        &mut outs,
        "model_outputs",
        r.outputs
            .iter()
            .map(|(id, step)| json!({"model_id": id, "step": step}))
            .collect(),
    );
    out.insert("outputs".into(), Json::Object(outs));
    Json::Object(out)
}

pub fn logged_model(x: &LoggedModel) -> Json {
    let mut info = Map::new();
    info.insert("model_id".into(), json!(x.model_id));
    info.insert("experiment_id".into(), json!(x.experiment_id));
    info.insert("name".into(), json!(x.name));
    info.insert("artifact_uri".into(), json!(x.artifact_uri));
    info.insert("status".into(), json!(x.status));
    info.insert("creation_timestamp_ms".into(), json!(x.creation_time));
    info.insert(
        "last_updated_timestamp_ms".into(),
        json!(x.last_updated_time),
    );
    put_opt(&mut info, "source_run_id", x.source_run_id.clone());
    put_opt(&mut info, "status_message", x.status_message.clone());
    put_opt(&mut info, "model_type", x.model_type.clone());
    put_list(&mut info, "tags", tags(&x.tags));
    let mut data = Map::new();
    put_list(&mut data, "params", tags(&x.params));
    put_list(&mut data, "metrics", x.metrics.iter().map(metric).collect());
    json!({"info": info, "data": data})
}

fn aliases_of(aliases: &BTreeMap<String, u32>) -> Vec<Json> {
    aliases
        .iter()
        .map(|(a, v)| json!({"alias": a, "version": v.to_string()}))
        .collect()
}

/// A model version with the aliases (of its model's `aliases`) that point at it.
pub fn model_version(v: &Version, aliases: &BTreeMap<String, u32>) -> Json {
    let mut m = Map::new();
    m.insert("name".into(), json!(v.meta.name));
    m.insert("version".into(), json!(v.version.to_string()));
    m.insert("creation_timestamp".into(), json!(v.created_at));
    m.insert(
        "last_updated_timestamp".into(),
        json!(v.updated_at.max(v.created_at)),
    );
    m.insert("current_stage".into(), json!(v.stage));
    m.insert(
        "description".into(),
        json!(v.meta.description.clone().unwrap_or_default()),
    );
    m.insert(
        "source".into(),
        json!(
            v.meta
                .source
                .clone()
                .unwrap_or_else(|| format!("models:/{}/{}", v.meta.name, v.version))
        ),
    );
    m.insert(
        "run_id".into(),
        json!(v.meta.run_id.clone().unwrap_or_default()),
    );
    m.insert("status".into(), json!("READY"));
    m.insert("user_id".into(), json!(v.meta.created_by));
    put_opt(&mut m, "model_id", v.meta.model_id.clone());
    if let Some(why) = &v.meta.not_servable {
        m.insert(
            "status_message".into(),
            json!(format!("registered; mlship cannot serve it: {why}")),
        );
    }
    let mut t: Vec<Json> = tags(&v.meta.tags);
    t.push(json!({"key": "mlship.servable", "value": if v.meta.not_servable.is_some() { "false" } else { "true" }}));
    if v.meta.not_servable.is_none() {
        t.push(json!({"key": "mlship.format", "value": v.meta.format}));
        t.push(json!({"key": "mlship.estimator", "value": v.meta.estimator}));
    }
    put_list(&mut m, "tags", t);
    put_list(
        &mut m,
        "aliases",
        aliases
            .iter()
            .filter(|(_, to)| **to == v.version)
            .map(|(a, _)| json!(a))
            .collect(),
    );
    Json::Object(m)
}

pub fn registered_model(info: &ModelSummary, latest: &[Version]) -> Json {
    let mut m = Map::new();
    m.insert("name".into(), json!(info.name));
    m.insert("creation_timestamp".into(), json!(info.created_at));
    m.insert("last_updated_timestamp".into(), json!(info.updated_at));
    put_opt(&mut m, "description", info.description.clone());
    put_list(
        &mut m,
        "latest_versions",
        latest
            .iter()
            .map(|v| model_version(v, &BTreeMap::new()))
            .collect(),
    );
    put_list(&mut m, "tags", tags(&info.tags));
    put_list(&mut m, "aliases", aliases_of(&info.aliases));
    Json::Object(m)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The history page written directly is the document the entity functions build.
    #[test]
    fn history_json_is_the_entity_document() {
        let mut with_model = Metric::new("loss \"x\"", f64::NAN, 5, 2);
        with_model.model_id = Some("m-1".into());
        let points = vec![Metric::new("loss \"x\"", 0.25, 1, 0), with_model];
        for next in [None, Some("tok")] {
            let mut m = Map::new();
            put_list(&mut m, "metrics", points.iter().map(metric).collect());
            put_opt(&mut m, "next_page_token", next);
            let direct: Json = serde_json::from_str(&history_json(&points, next)).unwrap();
            assert_eq!(direct, Json::Object(m));
        }
        assert_eq!(history_json(&[], None), "{}");
    }
}
