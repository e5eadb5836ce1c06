//! One conformance suite over both databases: every scenario runs on SQLite, and on PostgreSQL
//! when `MLSHIP_TEST_POSTGRES` names a server (CI always sets it).

use std::collections::BTreeMap;

use mlship_registry::tracking::{Dataset, DatasetInput, Metric, NewRun, RunSearch, ViewType};
use mlship_registry::{Error, MetadataStore, NewVersion, Selector, SqlStore};

/// A fresh PostgreSQL database on the test server, or `None` outside CI.
fn fresh_pg() -> Option<String> {
    let Ok(base) = std::env::var("MLSHIP_TEST_POSTGRES") else {
        assert!(
            std::env::var_os("CI").is_none(),
            "MLSHIP_TEST_POSTGRES must be set in CI (.ci/run starts the server)"
        );
        eprintln!("postgres: skipped (set MLSHIP_TEST_POSTGRES)");
        return None;
    };
    let db = format!("conf_{}", mlship_registry::tracking::new_id());
    let mut c = postgres::Client::connect(&base, postgres::NoTls).expect("connect");
    c.batch_execute(&format!("CREATE DATABASE {db}")).unwrap();
    let (prefix, _) = base.rsplit_once('/').unwrap();
    Some(format!("{prefix}/{db}"))
}

macro_rules! on_both {
    ($scenario:ident) => {
        mod $scenario {
            #[test]
            fn sqlite() {
                let d = tempfile::tempdir().unwrap();
                let s = mlship_registry::SqlStore::sqlite(d.path().join("m.db")).unwrap();
                super::$scenario(&s);
            }
            #[test]
            fn postgres() {
                if let Some(url) = super::fresh_pg() {
                    let s = mlship_registry::SqlStore::postgres(&url).unwrap();
                    super::$scenario(&s);
                }
            }
        }
    };
}

fn version(name: &str, sha: u32) -> NewVersion {
    NewVersion {
        name: name.into(),
        kind: "file".into(),
        format: "pickle".into(),
        estimator: "LogisticRegression".into(),
        signature: "{}".into(),
        sha256: format!("{sha:064x}"),
        size: 3,
        file_name: "m.pkl".into(),
        created_by: "test".into(),
        ..NewVersion::default()
    }
}

fn registry_rules(s: &SqlStore) {
    let mut m = s.clone();
    let v1 = m.create_version(&version("fraud", 1)).unwrap();
    let v2 = m.create_version(&version("fraud", 2)).unwrap();
    assert_eq!((v1.version, v2.version), (1, 2));
    m.set_alias("fraud", "production", 1, "ann", "first")
        .unwrap();
    m.set_alias("fraud", "production", 2, "bob", "better")
        .unwrap();
    let e = m.rollback("fraud", "production", "ann", "worse").unwrap();
    assert_eq!((e.from, e.to), (Some(2), Some(1)));
    assert_eq!(
        m.resolve("fraud", &Selector::Alias("production".into()))
            .unwrap()
            .version,
        1
    );
    assert_eq!(m.history("fraud").unwrap().len(), 3);
    assert!(matches!(
        m.delete_version("fraud", 1),
        Err(Error::VersionInUse { .. })
    ));
    assert!(matches!(
        m.resolve("fraud", &Selector::Version(9)),
        Err(Error::UnknownVersion { .. })
    ));
    assert!(matches!(
        m.resolve("nope", &Selector::Latest),
        Err(Error::UnknownModel { .. })
    ));
    // The MLflow side of the same rows.
    assert!(matches!(
        s.create_model("fraud", None, &BTreeMap::new()),
        Err(Error::AlreadyExists(_))
    ));
    s.set_model_description("fraud", "catches fraud").unwrap();
    s.set_model_tag("fraud", "team", Some("risk")).unwrap();
    s.set_version_tag("fraud", 2, "k", Some("v")).unwrap();
    s.set_version_tag("fraud", 2, "missing", None).unwrap();
    let v = s.transition_stage("fraud", 2, "Production", true).unwrap();
    assert_eq!(v.stage, "Production");
    let info = s.rename_model("fraud", "fraud2").unwrap();
    assert_eq!(info.description.as_deref(), Some("catches fraud"));
    assert_eq!(info.tags["team"], "risk");
    assert_eq!(info.aliases["production"], 1);
    assert_eq!(m.history("fraud2").unwrap().len(), 3);
    // Numbers are never reused, even after a delete.
    s.purge_version("fraud2", 2, "ann").unwrap();
    assert_eq!(m.create_version(&version("fraud2", 3)).unwrap().version, 3);
    let unused = s.purge_model("fraud2", "ann").unwrap();
    assert_eq!(unused.len(), 2);
    assert!(m.models().unwrap().is_empty());
    let created = s
        .create_model("empty", Some("d"), &BTreeMap::new())
        .unwrap();
    assert_eq!(created.latest, None);
}
on_both!(registry_rules);

/// A registration and its aliases are one transaction: all of it, or (a refused alias) nothing.
fn registration_with_aliases_is_whole(s: &SqlStore) {
    let mut m = s.clone();
    let aliases = ["staging".to_string(), "production".to_string()];
    let v = m
        .register(&version("whole", 1), &aliases, "ann", "set at registration")
        .unwrap();
    assert_eq!(v.version, 1);
    for a in &aliases {
        let at = m.resolve("whole", &Selector::Alias(a.clone())).unwrap();
        assert_eq!(at.version, 1, "{a}");
    }
    assert_eq!(m.history("whole").unwrap().len(), 2);
    let bad = ["canary".to_string(), "no spaces".to_string()];
    assert!(m.register(&version("whole", 2), &bad, "ann", "r").is_err());
    let versions = m.versions("whole").unwrap();
    assert_eq!(versions.len(), 1, "the refused registration left a version");
    assert!(
        m.resolve("whole", &Selector::Alias("canary".into()))
            .is_err()
    );
    // The alias moves to a later registration's version, in the history.
    let v2 = m
        .register(&version("whole", 3), &aliases[1..], "bob", "r")
        .unwrap();
    assert_eq!(v2.version, 2, "a refused registration uses up no number");
    assert_eq!(
        m.resolve("whole", &Selector::Alias("production".into()))
            .unwrap()
            .version,
        2
    );
}
on_both!(registration_with_aliases_is_whole);

fn concurrent_versions_get_distinct_numbers(s: &SqlStore) {
    let handles: Vec<_> = (0..4)
        .map(|t| {
            let s = s.clone();
            std::thread::spawn(move || {
                (0..10)
                    .map(|i| s.add_version(&version("c", t * 100 + i)).unwrap().version)
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let mut all: Vec<u32> = handles
        .into_iter()
        .flat_map(|h| h.join().unwrap())
        .collect();
    all.sort();
    assert_eq!(all, (1..=40).collect::<Vec<_>>());
}
on_both!(concurrent_versions_get_distinct_numbers);

fn experiments(s: &SqlStore) {
    let id = s
        .create_experiment("demo", None, &[("team".into(), "a".into())])
        .unwrap();
    let e = s.experiment(&id).unwrap();
    assert_eq!(e.artifact_location, format!("mlflow-artifacts:/{id}"));
    assert_eq!(e.tags["team"], "a");
    assert!(matches!(
        s.create_experiment("demo", None, &[]),
        Err(Error::AlreadyExists(_))
    ));
    // NUL in text is refused alike on both databases (PostgreSQL's text cannot hold it), as a
    // value, not a fault; nothing is written and a lookup by such a name is refused the same.
    for bad in [
        s.create_experiment("a\0b", None, &[]).map(|_| ()),
        s.experiment_by_name("a\0b").map(|_| ()),
    ] {
        assert!(matches!(bad, Err(Error::Invalid(_))), "{bad:?}");
    }
    assert!(matches!(s.experiment("999"), Err(Error::NotFound(_))));
    assert!(matches!(s.experiment("abc"), Err(Error::NotFound(_))));
    assert!(matches!(
        s.experiment_by_name("nope"),
        Err(Error::NotFound(_))
    ));
    assert_eq!(s.experiment("0").unwrap().name, "Default");
    s.rename_experiment(&id, "demo2").unwrap();
    assert_eq!(s.experiment_by_name("demo2").unwrap().id, id);
    let other = s.create_experiment("other", Some("s3://b/x"), &[]).unwrap();
    s.set_experiment_deleted(&other, true).unwrap();
    let (active, _) = s
        .search_experiments(ViewType::Active, "", &[], 100, None)
        .unwrap();
    assert_eq!(active.len(), 2);
    let (deleted, _) = s
        .search_experiments(ViewType::Deleted, "", &[], 100, None)
        .unwrap();
    assert_eq!(deleted[0].artifact_location, "s3://b/x");
    let (found, _) = s
        .search_experiments(ViewType::All, "name LIKE 'demo%'", &[], 100, None)
        .unwrap();
    assert_eq!(found.len(), 1);
    let (page, next) = s
        .search_experiments(ViewType::All, "", &["name ASC".into()], 2, None)
        .unwrap();
    assert_eq!(page[0].name, "Default");
    let (rest, end) = s
        .search_experiments(ViewType::All, "", &["name ASC".into()], 2, next.as_deref())
        .unwrap();
    assert_eq!((rest.len(), end), (1, None));
    s.set_experiment_deleted(&other, false).unwrap();
    s.set_experiment_tag(&id, "team", None).unwrap();
    // Several writers creating one name at once: one wins, the others are told it exists.
    let results: Vec<_> = (0..4)
        .map(|_| {
            let s = s.clone();
            std::thread::spawn(move || s.create_experiment("race", None, &[]))
        })
        .collect::<Vec<_>>()
        .into_iter()
        .map(|h| h.join().unwrap())
        .collect();
    assert_eq!(results.iter().filter(|r| r.is_ok()).count(), 1);
    assert!(
        results
            .iter()
            .all(|r| r.is_ok() || matches!(r, Err(Error::AlreadyExists(_))))
    );
    assert!(s.experiment(&id).unwrap().tags.is_empty());
}
on_both!(experiments);

fn runs_params_metrics(s: &SqlStore) {
    let exp = s.create_experiment("runs", None, &[]).unwrap();
    let run = s
        .create_run(&NewRun {
            experiment_id: exp.clone(),
            user_id: "ann".into(),
            run_name: Some("first".into()),
            start_time: Some(1000),
            tags: vec![("mlflow.source.name".into(), "train.py".into())],
        })
        .unwrap();
    let id = run.info.run_id.clone();
    assert_eq!(id.len(), 32);
    assert_eq!(
        run.info.artifact_uri,
        format!("mlflow-artifacts:/{exp}/{id}/artifacts")
    );
    assert_eq!(run.tags["mlflow.runName"], "first");
    let metrics = vec![
        Metric::new("loss", 0.5, 10, 0),
        Metric::new("loss", 0.3, 11, 1),
        Metric::new("loss", 0.9, 9, 0),
        Metric::new("nan", f64::NAN, 1, 0),
        Metric::new("inf", f64::INFINITY, 1, 0),
        Metric::new("ninf", f64::NEG_INFINITY, 1, 0),
    ];
    s.log_batch(
        &id,
        &metrics,
        &[("alpha".into(), "0.1".into())],
        &[("k".into(), "v".into())],
    )
    .unwrap();
    // The same param again is fine; a change conflicts with what is stored and writes nothing.
    s.log_batch(&id, &[], &[("alpha".into(), "0.1".into())], &[])
        .unwrap();
    let err = s
        .log_batch(
            &id,
            &[Metric::new("loss", 7.0, 99, 99)],
            &[("alpha".into(), "0.2".into())],
            &[],
        )
        .unwrap_err();
    assert!(matches!(err, Error::Conflict(_)), "{err}");
    let got = s.run(&id).unwrap();
    let latest: BTreeMap<_, _> = got
        .metrics
        .iter()
        .map(|m| (m.key.clone(), m.value))
        .collect();
    assert_eq!(latest["loss"], 0.3);
    assert!(latest["nan"].is_nan());
    assert_eq!(latest["inf"], f64::INFINITY);
    assert_eq!(latest["ninf"], f64::NEG_INFINITY);
    assert_eq!(got.params["alpha"], "0.1");
    let (h, next) = s.metric_history(&id, "loss", 2, None).unwrap();
    assert_eq!(
        h.iter().map(|m| m.value).collect::<Vec<_>>(),
        vec![0.9, 0.5],
        "ordered by step then time"
    );
    let (h2, end) = s.metric_history(&id, "loss", 2, next.as_deref()).unwrap();
    assert_eq!((h2.len(), end), (1, None));
    // Limits.
    let many: Vec<Metric> = (0..1001).map(|i| Metric::new("m", 1.0, i, i)).collect();
    assert!(matches!(
        s.log_batch(&id, &many, &[], &[]),
        Err(Error::Invalid(_))
    ));
    let long = "x".repeat(6001);
    assert!(matches!(
        s.log_batch(&id, &[], &[("p".into(), long)], &[]),
        Err(Error::Invalid(_))
    ));
    // Tags, names, status.
    s.log_batch(
        &id,
        &[],
        &[],
        &[("mlflow.runName".into(), "renamed".into())],
    )
    .unwrap();
    assert_eq!(s.run(&id).unwrap().info.run_name, "renamed");
    let info = s
        .update_run(&id, Some("FINISHED"), Some(2000), None)
        .unwrap();
    assert_eq!(
        (info.status.as_str(), info.end_time),
        ("FINISHED", Some(2000))
    );
    assert!(matches!(
        s.update_run(&id, Some("DONE"), None, None),
        Err(Error::Invalid(_))
    ));
    s.delete_run_tag(&id, "k").unwrap();
    assert!(matches!(
        s.delete_run_tag(&id, "k"),
        Err(Error::NotFound(_))
    ));
    // Datasets.
    s.log_inputs(
        &id,
        &[DatasetInput {
            dataset: Dataset {
                name: "train".into(),
                digest: "abcd1234".into(),
                source_type: "local".into(),
                source: "{\"uri\": \"train.csv\"}".into(),
                schema: None,
                profile: Some("{\"num_rows\": 3}".into()),
            },
            tags: vec![("mlflow.data.context".into(), "train".into())],
        }],
    )
    .unwrap();
    assert_eq!(s.run(&id).unwrap().inputs[0].dataset.digest, "abcd1234");
    // Delete and restore: a deleted run takes no writes.
    s.set_run_deleted(&id, true).unwrap();
    assert!(matches!(
        s.log_batch(&id, &[Metric::new("x", 1.0, 1, 1)], &[], &[]),
        Err(Error::Conflict(_))
    ));
    s.set_run_deleted(&id, false).unwrap();
    assert!(matches!(s.run("0123"), Err(Error::NotFound(_))));
}
on_both!(runs_params_metrics);

fn search(s: &SqlStore) {
    let exp = s.create_experiment("search", None, &[]).unwrap();
    let mut ids = Vec::new();
    for i in 0..30 {
        let r = s
            .create_run(&NewRun {
                experiment_id: exp.clone(),
                user_id: "u".into(),
                run_name: Some(format!("run-{i}")),
                start_time: Some(1000 + i),
                tags: vec![],
            })
            .unwrap();
        let id = r.info.run_id;
        let mut metrics = vec![Metric::new("rmse", i as f64 / 10.0, 1, 0)];
        if i == 5 {
            metrics = vec![Metric::new("rmse", f64::NAN, 1, 0)];
        }
        let params = vec![(
            "alpha".to_string(),
            if i % 2 == 0 { "0.1" } else { "0.2" }.to_string(),
        )];
        let tags = if i < 3 {
            vec![("mlflow.parentRunId".to_string(), "p".to_string())]
        } else {
            vec![]
        };
        s.log_batch(&id, &metrics, &params, &tags).unwrap();
        ids.push(id);
    }
    let q = |filter: &str, order: &[&str], max: usize| {
        s.search_runs(&RunSearch {
            experiment_ids: vec![exp.clone()],
            filter: filter.into(),
            max_results: max,
            order_by: order.iter().map(|o| o.to_string()).collect(),
            ..RunSearch::default()
        })
    };
    let (runs, _) = q(
        "metrics.rmse < 0.5 and params.alpha = '0.1'",
        &["metrics.rmse DESC"],
        100,
    )
    .unwrap();
    let names: Vec<_> = runs.iter().map(|r| r.info.run_name.as_str()).collect();
    assert_eq!(names, ["run-4", "run-2", "run-0"]);
    // Default order: newest first; NaN sorts after numbers; runs without the key last.
    let (runs, _) = q("", &[], 100).unwrap();
    assert_eq!(runs[0].info.run_name, "run-29");
    let (runs, _) = q("", &["metrics.rmse ASC"], 100).unwrap();
    assert_eq!(runs[29].info.run_name, "run-5");
    assert_eq!(runs[0].info.run_name, "run-0");
    let (runs, _) = q("tags.mlflow.parentRunId = 'p'", &[], 100).unwrap();
    assert_eq!(runs.len(), 3);
    let (runs, _) = q("tags.`mlflow.parentRunId` IS NULL", &[], 100).unwrap();
    assert_eq!(runs.len(), 27);
    let (runs, _) = q("attributes.run_name ILIKE 'RUN-1%'", &[], 100).unwrap();
    assert_eq!(runs.len(), 11);
    let (runs, _) = q("attributes.run_name LIKE 'RUN-1%'", &[], 100).unwrap();
    assert_eq!(runs.len(), 0, "LIKE is case-sensitive on both databases");
    let (runs, _) = q(
        "params.alpha IN ('0.2') and attributes.start_time >= 1020",
        &[],
        100,
    )
    .unwrap();
    assert_eq!(runs.len(), 5);
    let (runs, _) = q(&format!("attributes.run_id = '{}'", ids[7]), &[], 100).unwrap();
    assert_eq!(runs[0].info.run_name, "run-7");
    let (runs, _) = q("attributes.status != 'FINISHED'", &[], 100).unwrap();
    assert_eq!(runs.len(), 30);

    // Paging covers every run once.
    let mut seen = Vec::new();
    let mut token = None;
    loop {
        let (page, next) = s
            .search_runs(&RunSearch {
                experiment_ids: vec![exp.clone()],
                max_results: 7,
                order_by: vec!["params.alpha".into()],
                page_token: token.clone(),
                ..RunSearch::default()
            })
            .unwrap();
        seen.extend(page.into_iter().map(|r| r.info.run_id));
        match next {
            Some(t) => token = Some(t),
            None => break,
        }
    }
    seen.sort();
    let mut all = ids.clone();
    all.sort();
    assert_eq!(seen, all);
    // Runs without the ordering key come last, and paging through an order by a metric (read
    // in the key's order, then the runs without it) gives the unpaged order exactly.
    for i in 0..4 {
        s.create_run(&NewRun {
            experiment_id: exp.clone(),
            user_id: "u".into(),
            run_name: Some(format!("bare-{i}")),
            start_time: Some(2000 + i),
            tags: vec![],
        })
        .unwrap();
    }
    for order in ["metrics.rmse ASC", "metrics.rmse DESC", "params.alpha DESC"] {
        let (all, _) = q("", &[order], 1000).unwrap();
        assert_eq!(all.len(), 34);
        let last: Vec<_> = all[30..].iter().map(|r| r.info.run_name.as_str()).collect();
        assert_eq!(last, ["bare-3", "bare-2", "bare-1", "bare-0"], "{order}");
        for size in [1, 7, 30, 33] {
            let mut paged = Vec::new();
            let mut token = None;
            loop {
                let (page, next) = s
                    .search_runs(&RunSearch {
                        experiment_ids: vec![exp.clone()],
                        max_results: size,
                        order_by: vec![order.into()],
                        page_token: token.clone(),
                        ..RunSearch::default()
                    })
                    .unwrap();
                paged.extend(page.into_iter().map(|r| r.info.run_id));
                match next {
                    Some(t) => token = Some(t),
                    None => break,
                }
            }
            let want: Vec<_> = all.iter().map(|r| r.info.run_id.clone()).collect();
            assert_eq!(paged, want, "{order}, pages of {size}");
        }
    }
    let (runs, _) = q("metrics.rmse < 0.5", &["metrics.rmse DESC"], 2).unwrap();
    let names: Vec<_> = runs.iter().map(|r| r.info.run_name.as_str()).collect();
    assert_eq!(names, ["run-4", "run-3"]);
    // Bad filters are the client's mistake.
    for bad in ["metrics.rmse <", "attributes.nope = 'x'", "params.a > '1'"] {
        assert!(matches!(q(bad, &[], 10), Err(Error::Invalid(_))), "{bad}");
    }
    assert!(matches!(q("", &["metrics."], 10), Err(Error::Invalid(_))));
    // Views.
    s.set_run_deleted(&ids[0], true).unwrap();
    let (runs, _) = s
        .search_runs(&RunSearch {
            experiment_ids: vec![exp.clone()],
            view: ViewType::Deleted,
            ..RunSearch::default()
        })
        .unwrap();
    assert_eq!(runs.len(), 1);
}
on_both!(search);

fn logged_models(s: &SqlStore) {
    let exp = s.create_experiment("lm", None, &[]).unwrap();
    let run = s
        .create_run(&NewRun {
            experiment_id: exp.clone(),
            user_id: "u".into(),
            ..NewRun::default()
        })
        .unwrap();
    let id = run.info.run_id;
    let m = s
        .create_logged_model(
            &exp,
            Some("model"),
            Some(&id),
            None,
            &[("a".into(), "1".into())],
            &[],
        )
        .unwrap();
    assert!(m.model_id.starts_with("m-"));
    assert_eq!(m.status, "LOGGED_MODEL_PENDING");
    assert_eq!(
        m.artifact_uri,
        format!("mlflow-artifacts:/{exp}/models/{}/artifacts", m.model_id)
    );
    s.log_outputs(&id, &[(m.model_id.clone(), 0)]).unwrap();
    let mut linked = Metric::new("acc", 0.9, 5, 0);
    linked.model_id = Some(m.model_id.clone());
    s.log_batch(&id, &[linked], &[], &[]).unwrap();
    let m = s
        .finalize_logged_model(&m.model_id, "LOGGED_MODEL_READY")
        .unwrap();
    assert_eq!(m.status, "LOGGED_MODEL_READY");
    assert_eq!(m.metrics[0].run_id.as_deref(), Some(id.as_str()));
    s.set_logged_model_tags(
        &m.model_id,
        &[("mlflow.modelVersions".into(), Some("[]".into()))],
    )
    .unwrap();
    assert_eq!(
        s.logged_model(&m.model_id).unwrap().tags["mlflow.modelVersions"],
        "[]"
    );
    let (found, _) = s
        .search_logged_models(std::slice::from_ref(&exp), "name = 'model'", 100, None)
        .unwrap();
    assert_eq!(found.len(), 1);
    let (none, _) = s
        .search_logged_models(std::slice::from_ref(&exp), "name = 'other'", 100, None)
        .unwrap();
    assert!(none.is_empty());
    assert_eq!(s.run(&id).unwrap().outputs, vec![(m.model_id.clone(), 0)]);
    assert!(matches!(s.logged_model("m-x"), Err(Error::NotFound(_))));
    assert!(matches!(
        s.log_outputs(&id, &[("m-nope".into(), 0)]),
        Err(Error::NotFound(_))
    ));
}
on_both!(logged_models);

fn concurrent_writers_to_one_run_lose_nothing(s: &SqlStore) {
    let exp = s.create_experiment("conc", None, &[]).unwrap();
    let id = s
        .create_run(&NewRun {
            experiment_id: exp,
            user_id: "u".into(),
            ..NewRun::default()
        })
        .unwrap()
        .info
        .run_id;
    let handles: Vec<_> = (0..4)
        .map(|t| {
            let s = s.clone();
            let id = id.clone();
            std::thread::spawn(move || {
                for i in 0..25 {
                    s.log_batch(
                        &id,
                        &[Metric::new(
                            "m",
                            f64::from(t * 100 + i),
                            i64::from(i),
                            i64::from(t * 100 + i),
                        )],
                        &[
                            (format!("p{t}-{i}"), "v".into()),
                            ("shared".into(), "same".into()),
                        ],
                        &[],
                    )
                    .unwrap();
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    let (h, _) = s.metric_history(&id, "m", 0, None).unwrap();
    assert_eq!(h.len(), 100);
    let run = s.run(&id).unwrap();
    assert_eq!(run.params.len(), 101);
    assert_eq!(run.metrics[0].value, 324.0);
}
on_both!(concurrent_writers_to_one_run_lose_nothing);

#[test]
fn an_older_database_is_upgraded_in_place() {
    // A database as the first release wrote it: schema version 1 with a version in it.
    let d = tempfile::tempdir().unwrap();
    let path = d.path().join("old.db");
    {
        let c = rusqlite_free_sqlite(&path);
        drop(c);
    }
    let mut s = SqlStore::sqlite(&path).unwrap();
    assert_eq!(s.versions("old").unwrap()[0].meta.estimator, "Old");
    assert_eq!(s.versions("old").unwrap()[0].stage, "None");
    assert!(s.experiment("0").is_ok());
}

/// Writes schema version 1 with the `sqlite3`-free path: through the store's own driver layer.
fn rusqlite_free_sqlite(path: &std::path::Path) -> mlship_registry::db::Db {
    let db = mlship_registry::db::Db::sqlite(path).unwrap();
    db.migrate(&[FIRST]).unwrap();
    db.write(|tx| {
        tx.exec("INSERT INTO models (name, created_at, last_version) VALUES ('old', 1, 1)", &[])?;
        tx.exec("INSERT INTO versions (name, version, created_at, kind, format, estimator, signature, sha256, size, file_name, created_by, tags) VALUES ('old', 1, 1, 'file', 'pickle', 'Old', '{}', 'aa', 1, 'm.pkl', 'me', '{}')", &[])?;
        Ok(())
    })
    .unwrap();
    db
}

/// Migration 1 as it shipped.
const FIRST: &str = r#"
CREATE TABLE models (name TEXT PRIMARY KEY, created_at INTEGER NOT NULL, last_version INTEGER NOT NULL DEFAULT 0);
CREATE TABLE versions (name TEXT NOT NULL REFERENCES models(name), version INTEGER NOT NULL, created_at INTEGER NOT NULL, kind TEXT NOT NULL, format TEXT NOT NULL, estimator TEXT NOT NULL, signature TEXT NOT NULL, sha256 TEXT NOT NULL, size INTEGER NOT NULL, file_name TEXT NOT NULL, created_by TEXT NOT NULL, description TEXT, tags TEXT NOT NULL, git_commit TEXT, input_example TEXT, example_predictions TEXT, PRIMARY KEY (name, version));
CREATE INDEX versions_sha ON versions(sha256);
CREATE TABLE aliases (name TEXT NOT NULL REFERENCES models(name), alias TEXT NOT NULL, version INTEGER NOT NULL, PRIMARY KEY (name, alias));
CREATE TABLE alias_history (id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT NOT NULL, alias TEXT NOT NULL, from_version INTEGER, to_version INTEGER, at INTEGER NOT NULL, by TEXT NOT NULL, reason TEXT NOT NULL);
CREATE INDEX alias_history_name ON alias_history(name, id);
"#;

/// Tokens: found by the hash of their secret while live, names unique, revoked at once.
fn tokens(s: &SqlStore) {
    use mlship_registry::Role;
    let t = s.create_token("ci", Role::Write, &"a".repeat(64)).unwrap();
    assert_eq!((t.name.as_str(), t.role), ("ci", Role::Write));
    s.create_token("ops", Role::Admin, &"b".repeat(64)).unwrap();
    assert!(matches!(
        s.create_token("ci", Role::Read, &"c".repeat(64)),
        Err(Error::AlreadyExists(_))
    ));
    assert!(matches!(
        s.create_token("a:b", Role::Read, &"d".repeat(64)),
        Err(Error::Invalid(_))
    ));
    assert_eq!(
        s.token_by_hash(&"a".repeat(64)).unwrap().map(|t| t.name),
        Some("ci".into())
    );
    assert_eq!(s.token_by_hash(&"e".repeat(64)).unwrap(), None);
    let names: Vec<String> = s.tokens().unwrap().into_iter().map(|t| t.name).collect();
    assert_eq!(names, ["ci", "ops"]);
    let revoked = s.revoke_token("ci").unwrap();
    assert!(revoked.revoked_at.is_some());
    assert_eq!(s.token_by_hash(&"a".repeat(64)).unwrap(), None);
    assert!(matches!(s.revoke_token("nobody"), Err(Error::NotFound(_))));
    assert_eq!(Role::parse("admin").unwrap(), Role::Admin);
    assert!(Role::Read < Role::Write && Role::Write < Role::Admin);
    assert!(Role::parse("root").is_err());
}
on_both!(tokens);

on_both!(rollouts);

/// A rollout's whole life in the store: one running per model, steps taken once however many
/// replicas look, counts summed over replicas, promotion and rollback in the alias history.
fn rollouts(s: &SqlStore) {
    use mlship_registry::rollout::{Counts, RolloutPlan, RolloutState};
    let mut m = s.clone();
    for sha in 1..=3 {
        m.create_version(&version("fraud", sha)).unwrap();
    }
    let plan = |candidate| RolloutPlan {
        name: "fraud".into(),
        candidate,
        steps: vec![10, 50, 100],
        interval_ms: 0,
        min_requests: 4,
        max_error_rate: Some(0.25),
        max_p99_ms: None,
        sticky_header: None,
    };
    // No production to move traffic from.
    assert!(matches!(
        s.start_rollout(&plan(2), "ann"),
        Err(Error::Invalid(_))
    ));
    m.set_alias("fraud", "production", 1, "ann", "first")
        .unwrap();
    assert!(matches!(
        s.start_rollout(&plan(1), "ann"),
        Err(Error::Invalid(_))
    ));
    assert!(matches!(
        s.start_rollout(&plan(9), "ann"),
        Err(Error::UnknownVersion { .. })
    ));
    let r = s.start_rollout(&plan(2), "ann").unwrap();
    assert_eq!(
        (r.weight(), r.production, r.state),
        (10, 1, RolloutState::Running)
    );
    assert!(matches!(
        s.start_rollout(&plan(3), "bob"),
        Err(Error::AlreadyExists(_))
    ));
    // Too few requests: nothing moves.
    let good = |n: u64| {
        let mut c = Counts::default();
        for _ in 0..n {
            c.record(true, 2.0);
        }
        c
    };
    s.record_rollout_counts(r.id, 0, "a", &[(2, good(2)), (1, good(20))])
        .unwrap();
    assert_eq!(s.advance_rollout("fraud", "x").unwrap().unwrap().step, 0);
    // Two replicas' counts add up; the step is taken once, whoever looks.
    s.record_rollout_counts(r.id, 0, "b", &[(2, good(2))])
        .unwrap();
    let f = s.rollout_figures(&r).unwrap();
    assert_eq!((f.candidate.requests, f.production.requests), (4, 20));
    let r1 = s.advance_rollout("fraud", "x").unwrap().unwrap();
    assert_eq!((r1.step, r1.weight()), (1, 50));
    assert_eq!(s.advance_rollout("fraud", "y").unwrap().unwrap().step, 1);
    s.record_rollout_counts(r.id, 1, "a", &[(2, good(5))])
        .unwrap();
    assert_eq!(s.advance_rollout("fraud", "x").unwrap().unwrap().step, 2);
    s.record_rollout_counts(r.id, 2, "a", &[(2, good(5))])
        .unwrap();
    let done = s.advance_rollout("fraud", "x").unwrap().unwrap();
    assert_eq!((done.state, done.weight()), (RolloutState::Promoted, 0));
    assert_eq!(
        m.resolve("fraud", &Selector::Alias("production".into()))
            .unwrap()
            .version,
        2
    );
    let history = m.history("fraud").unwrap();
    let reasons: Vec<&str> = history.iter().map(|e| e.reason.as_str()).collect();
    assert!(
        reasons.iter().any(|r| r.starts_with("rollout started")),
        "{reasons:?}"
    );
    assert!(
        reasons.iter().any(|r| r.starts_with("rollout step 2/3")),
        "{reasons:?}"
    );
    assert!(
        history
            .iter()
            .any(|e| e.alias == "production" && e.to == Some(2))
    );
    assert!(!m.model("fraud").unwrap().aliases.contains_key("candidate"));
    // A failing candidate goes back at the first step that sees it.
    let r = s.start_rollout(&plan(3), "ann").unwrap();
    let mut bad = good(3);
    bad.record(false, 2.0);
    bad.record(false, 2.0);
    s.record_rollout_counts(r.id, 0, "a", &[(3, bad)]).unwrap();
    let back = s.advance_rollout("fraud", "x").unwrap().unwrap();
    assert_eq!(back.state, RolloutState::RolledBack);
    assert!(
        back.reason.contains("error rate 0.400 > 0.25"),
        "{}",
        back.reason
    );
    assert_eq!(
        m.resolve("fraud", &Selector::Alias("production".into()))
            .unwrap()
            .version,
        2
    );
    // Abort and promote need a running rollout.
    assert!(matches!(
        s.end_rollout("fraud", false, "ann", "why"),
        Err(Error::NotFound(_))
    ));
    let r = s.start_rollout(&plan(3), "ann").unwrap();
    let a = s.end_rollout("fraud", false, "ann", "bad news").unwrap();
    assert_eq!((a.id, a.state), (r.id, RolloutState::Aborted));
    assert!(
        m.history("fraud")
            .unwrap()
            .last()
            .unwrap()
            .reason
            .contains("bad news")
    );
}
