//! `mlship experiments …` and `mlship runs …`: the tracking store from the terminal, with the
//! same filter grammar and messages as the MLflow API.

use std::collections::BTreeSet;

use mlship_registry::SqlStore;
use mlship_registry::tracking::{Experiment, Run, RunSearch, ViewType};
use serde_json::{Value as Json, json};

use super::models::print;
use crate::cli::{ExperimentsCommand, RunSearchArgs, RunsCommand, ViewArg};
use crate::settings::Settings;
use crate::timefmt::rfc3339;
use crate::user;

fn view(v: ViewArg) -> ViewType {
    match v {
        ViewArg::Active => ViewType::Active,
        ViewArg::Deleted => ViewType::Deleted,
        ViewArg::All => ViewType::All,
    }
}

/// An experiment by name, else by id.
fn experiment(s: &SqlStore, which: &str) -> anyhow::Result<Experiment> {
    if let Ok(e) = s.experiment_by_name(which) {
        return Ok(e);
    }
    s.experiment(which).map_err(|_| {
        user(
            format!("no experiment named or numbered `{which}`"),
            "`mlship experiments list --view all` shows them",
        )
    })
}

fn filter_error(e: mlship_registry::Error) -> anyhow::Error {
    match e {
        mlship_registry::Error::Invalid(m) => user(
            m,
            "filters look like: metrics.rmse < 0.5 and params.alpha = '0.1' and tags.`mlflow.user` = 'ann'",
        ),
        other => other.into(),
    }
}

pub fn experiments(c: ExperimentsCommand, settings: &Settings) -> anyhow::Result<()> {
    let s = settings.sql()?;
    match c {
        ExperimentsCommand::List(a) => {
            let (all, _) = s.search_experiments(view(a.view), "", &[], 50_000, None)?;
            let activity = s.experiment_activity()?;
            let mut docs = Vec::new();
            let mut rows = Vec::new();
            for e in &all {
                let (runs, last) = activity.get(&e.id).copied().unwrap_or((0, None));
                docs.push(json!({"experiment_id": e.id, "name": e.name, "lifecycle_stage": e.lifecycle_stage, "runs": runs, "last_run_start": last.map(rfc3339), "artifact_location": e.artifact_location}));
                rows.push(vec![
                    e.id.clone(),
                    e.name.clone(),
                    runs.to_string(),
                    last.map_or_else(|| "-".into(), rfc3339),
                    e.lifecycle_stage.clone(),
                ]);
            }
            print(
                a.out.output,
                &Json::Array(docs),
                &["ID", "NAME", "RUNS", "LAST RUN", "STAGE"],
                rows,
            );
        }
        ExperimentsCommand::Create(a) => {
            let id = s.create_experiment(&a.name, a.artifact_location.as_deref(), &[])?;
            print(
                a.out.output,
                &json!({"experiment_id": id, "name": a.name}),
                &["ID", "NAME"],
                vec![vec![id, a.name]],
            );
        }
        ExperimentsCommand::Delete(a) => {
            let e = experiment(&s, &a.experiment)?;
            s.set_experiment_deleted(&e.id, true)?;
            crate::outln!("deleted experiment {} ({})", e.name, e.id);
        }
        ExperimentsCommand::Restore(a) => {
            let e = experiment(&s, &a.experiment)?;
            s.set_experiment_deleted(&e.id, false)?;
            crate::outln!("restored experiment {} ({})", e.name, e.id);
        }
    }
    Ok(())
}

fn metric_text(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else {
        format!("{v}")
    }
}

fn run_json(r: &Run) -> Json {
    json!({
        "run_id": r.info.run_id,
        "run_name": r.info.run_name,
        "experiment_id": r.info.experiment_id,
        "status": r.info.status,
        "user_id": r.info.user_id,
        "start_time": rfc3339(r.info.start_time),
        "end_time": r.info.end_time.map(rfc3339),
        "lifecycle_stage": r.info.lifecycle_stage,
        "artifact_uri": r.info.artifact_uri,
        "params": r.params,
        "metrics": r.metrics.iter().map(|m| (m.key.clone(), if m.value.is_finite() { json!(m.value) } else { json!(metric_text(m.value)) })).collect::<serde_json::Map<_, _>>(),
        "tags": r.tags,
        "datasets": r.inputs.iter().map(|i| json!({"name": i.dataset.name, "digest": i.dataset.digest, "source": i.dataset.source})).collect::<Vec<_>>(),
        "logged_models": r.outputs.iter().map(|(m, _)| m).collect::<Vec<_>>(),
    })
}

fn search(s: &SqlStore, a: &RunSearchArgs) -> anyhow::Result<Vec<Run>> {
    let ids = a
        .experiment
        .iter()
        .map(|e| experiment(s, e).map(|e| e.id))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let (runs, _) = s
        .search_runs(&RunSearch {
            experiment_ids: ids,
            filter: a.filter.clone(),
            view: view(a.view),
            max_results: a.max_results.max(1),
            order_by: a.order_by.clone(),
            page_token: None,
        })
        .map_err(filter_error)?;
    Ok(runs)
}

pub fn runs(c: RunsCommand, settings: &Settings) -> anyhow::Result<()> {
    let s = settings.sql()?;
    match c {
        RunsCommand::List(a) | RunsCommand::Search(a) => {
            let runs = search(&s, &a)?;
            // The table shows the keys the filter and order name, then the first few others.
            let mut keys: Vec<String> = Vec::new();
            for r in &runs {
                for m in &r.metrics {
                    if !keys.contains(&m.key) && keys.len() < 4 {
                        keys.push(m.key.clone());
                    }
                }
            }
            let mut header = vec!["RUN ID", "NAME", "STATUS", "START"];
            header.extend(keys.iter().map(String::as_str));
            let rows = runs
                .iter()
                .map(|r| {
                    let mut row = vec![
                        r.info.run_id.clone(),
                        r.info.run_name.clone(),
                        r.info.status.clone(),
                        rfc3339(r.info.start_time),
                    ];
                    for k in &keys {
                        row.push(
                            r.metrics
                                .iter()
                                .find(|m| &m.key == k)
                                .map_or_else(|| "-".into(), |m| metric_text(m.value)),
                        );
                    }
                    row
                })
                .collect();
            print(
                a.out.output,
                &Json::Array(runs.iter().map(run_json).collect()),
                &header,
                rows,
            );
        }
        RunsCommand::Show(a) => {
            let r = s.run(&a.run_id).map_err(|e| {
                user(
                    e.to_string(),
                    "`mlship runs list --experiment NAME` shows run ids",
                )
            })?;
            let mut rows = vec![
                vec!["run_id".into(), r.info.run_id.clone()],
                vec!["name".into(), r.info.run_name.clone()],
                vec!["status".into(), r.info.status.clone()],
                vec!["user".into(), r.info.user_id.clone()],
                vec!["start".into(), rfc3339(r.info.start_time)],
                vec!["artifacts".into(), r.info.artifact_uri.clone()],
            ];
            rows.extend(
                r.params
                    .iter()
                    .map(|(k, v)| vec![format!("params.{k}"), v.clone()]),
            );
            rows.extend(
                r.metrics
                    .iter()
                    .map(|m| vec![format!("metrics.{}", m.key), metric_text(m.value)]),
            );
            rows.extend(
                r.tags
                    .iter()
                    .map(|(k, v)| vec![format!("tags.{k}"), v.clone()]),
            );
            print(a.out.output, &run_json(&r), &["FIELD", "VALUE"], rows);
        }
        RunsCommand::Compare(a) => {
            let runs = a
                .run_ids
                .iter()
                .map(|id| {
                    s.run(id).map_err(|e| {
                        user(
                            e.to_string(),
                            "`mlship runs list --experiment NAME` shows run ids",
                        )
                    })
                })
                .collect::<anyhow::Result<Vec<_>>>()?;
            let params: BTreeSet<&String> = runs.iter().flat_map(|r| r.params.keys()).collect();
            let metrics: BTreeSet<&String> = runs
                .iter()
                .flat_map(|r| r.metrics.iter().map(|m| &m.key))
                .collect();
            let mut rows = Vec::new();
            for k in &params {
                let mut row = vec![format!("params.{k}")];
                row.extend(
                    runs.iter()
                        .map(|r| r.params.get(*k).cloned().unwrap_or_else(|| "-".into())),
                );
                rows.push(row);
            }
            for k in &metrics {
                let mut row = vec![format!("metrics.{k}")];
                row.extend(runs.iter().map(|r| {
                    r.metrics
                        .iter()
                        .find(|m| &&m.key == k)
                        .map_or_else(|| "-".into(), |m| metric_text(m.value))
                }));
                rows.push(row);
            }
            let names: Vec<String> = runs
                .iter()
                .map(|r| {
                    format!(
                        "{} ({})",
                        r.info.run_name,
                        &r.info.run_id[..8.min(r.info.run_id.len())]
                    )
                })
                .collect();
            let mut header = vec!["KEY"];
            header.extend(names.iter().map(String::as_str));
            print(
                a.out.output,
                &Json::Array(runs.iter().map(run_json).collect()),
                &header,
                rows,
            );
        }
        RunsCommand::Delete(a) => {
            s.set_run_deleted(&a.run_id, true)?;
            crate::outln!("deleted run {}", a.run_id);
        }
        RunsCommand::Restore(a) => {
            s.set_run_deleted(&a.run_id, false)?;
            crate::outln!("restored run {}", a.run_id);
        }
    }
    Ok(())
}
