//! `mlship server`: the tracking server and model registry over MLflow's REST API, on the
//! registry's own store; versions registered through it are validated as `mlship models
//! register` validates files, so `mlship serve` can serve them.

use std::sync::Arc;

use anyhow::Context;
use mlship_registry::{ArtifactStore, Error as StoreError, NewVersion, SqlStore, Version};
use mlship_server::tracking::{Loaded, Registrar, Registration, TrackingState};

use crate::cli::ServerArgs;
use crate::model_ref;
use crate::settings::Settings;

pub fn run(a: &ServerArgs, settings: &Settings) -> anyhow::Result<()> {
    crate::log_panics();
    let store = settings.sql()?;
    let files = settings.tracking_files()?;
    let registrar = Arc::new(Register {
        store: store.clone(),
        artifacts: Arc::from(settings.artifacts()?),
    });
    let auth = if a.auth {
        Some(Arc::new(
            mlship_server::auth::Tokens::new(store.clone()).rate_limited(a.limits.rate(None)),
        ))
    } else {
        crate::warn_if_open(&a.host);
        None
    };
    let state = Arc::new(TrackingState {
        store,
        files,
        registrar,
        body_limit: a.body_limit,
        auth,
        request_timeout: a.limits.timeout(None),
        scoring: Default::default(),
    });
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the runtime")?;
    rt.block_on(async {
        let (listener, addr) = crate::net::bind(&a.host, a.port, &a.tls).await?;
        crate::outln!("listening on {}://{addr}", listener.scheme());
        tracing::info!(
            address = %addr,
            store = %state.store.describe(),
            artifacts = %state.files.describe(),
            "tracking server ready"
        );
        let shutdown = mlship_server::shutdown_signal();
        match listener {
            crate::net::Bound::Plain(l) => mlship_server::tracking::run(l, state, shutdown).await,
            crate::net::Bound::Tls(l) => mlship_server::tracking::run(l, state, shutdown).await,
        }
        .context("serving")?;
        anyhow::Ok(())
    })
}

/// Validates an MLflow model's files with the loaders and stores them as a registry version.
struct Register {
    store: SqlStore,
    artifacts: Arc<dyn ArtifactStore>,
}

fn internal(e: impl std::fmt::Display) -> StoreError {
    StoreError::Store {
        store: "registration".into(),
        message: e.to_string(),
    }
}

impl Registrar for Register {
    fn register(&self, r: Registration) -> Result<Version, StoreError> {
        let mut new = NewVersion {
            name: r.name.clone(),
            created_by: r.by.clone(),
            description: r.description.clone().filter(|d| !d.is_empty()),
            tags: r.tags.iter().cloned().collect(),
            source: Some(r.source.clone()),
            run_id: r.run_id.clone(),
            model_id: r.model_id.clone(),
            signature: "{}".into(),
            ..NewVersion::default()
        };
        if let Some(why) = &r.missing {
            // Nothing to validate or store: the version is recorded as MLflow records it.
            new.kind = "none".into();
            new.format = "unknown".into();
            new.not_servable = Some(why.clone());
            new.sha256 = mlship_registry::sha256_hex(b"");
            return self.store.add_version(&new);
        }
        let dir = tempfile::tempdir().map_err(internal)?;
        for (rel, data) in &r.files {
            let p = dir.path().join(rel);
            if let Some(parent) = p.parent() {
                std::fs::create_dir_all(parent).map_err(internal)?;
            }
            std::fs::write(&p, data).map_err(internal)?;
        }
        match model_ref::read_local(dir.path()) {
            Ok(local) => {
                let model_ref::Payload::Bytes(tar) = &local.payload else {
                    return Err(internal("an MLflow directory packs to bytes"));
                };
                let stored = self.artifacts.put(&mut tar.as_slice(), &mut |_| {})?;
                let example = match &local.input_example {
                    Some(b) => Some(self.artifacts.put(&mut b.as_slice(), &mut |_| {})?.sha256),
                    None => None,
                };
                new.kind = local.kind.into();
                new.format = local.model.info.format.clone();
                new.estimator = local.model.info.estimator.clone();
                new.signature = crate::output::signature(&local.model.signature).to_string();
                new.sha256 = stored.sha256;
                new.size = stored.size;
                new.file_name = "model".into();
                new.input_example = example;
            }
            Err(e) => {
                // A flavor mlship does not load: kept whole, marked not servable with the reason.
                let tar = model_ref::tar_files(&r.files).map_err(internal)?;
                let stored = self.artifacts.put(&mut tar.as_slice(), &mut |_| {})?;
                new.kind = "mlflow".into();
                new.format = "unknown".into();
                // The reason names files by their place in the model, not the server's disk.
                let prefix = format!("{}/", dir.path().display());
                new.not_servable = Some(format!("{e:#}").replace(&prefix, ""));
                new.sha256 = stored.sha256;
                new.size = stored.size;
                new.file_name = "model".into();
            }
        }
        self.store.add_version(&new)
    }

    fn release(&self, sha256: &str) -> Result<(), StoreError> {
        self.artifacts.delete(sha256)
    }

    fn load(&self, v: &Version) -> Result<Loaded, StoreError> {
        let bytes = self.artifacts.get(&v.meta.sha256)?;
        let model = model_ref::stored_model(v, &bytes).map_err(|e| {
            StoreError::Invalid(format!(
                "version {} of `{}` does not load: {e:#}",
                v.version, v.meta.name
            ))
        })?;
        let input_example = match &v.meta.input_example {
            Some(sha) => Some(self.artifacts.get(sha)?),
            None => None,
        };
        Ok(Loaded {
            model,
            input_example,
        })
    }

    fn mlflow_files(&self, v: &Version) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        let refuse = |why: String| {
            StoreError::Conflict(format!("version {} of `{}` {why}", v.version, v.meta.name))
        };
        if v.meta.kind == "none" {
            return Err(refuse("has no files".into()));
        }
        let bytes = self.artifacts.get(&v.meta.sha256)?;
        if v.meta.kind == "mlflow" {
            let mut files: Vec<(String, Vec<u8>)> = model_ref::untar(&bytes)
                .map_err(internal)?
                .into_iter()
                .collect();
            // MLmodel last: a directory with it is complete.
            files.sort_by_key(|(rel, _)| rel == "MLmodel");
            return Ok(files);
        }
        let (data, flavor) = mlflow_flavor(&v.meta.format, &bytes).ok_or_else(|| {
            refuse(format!(
                "was registered from a {} file, which no MLflow flavor loads; serve it with mlship",
                v.meta.format
            ))
        })?;
        let mlmodel = format!(
            "artifact_path: model\nflavors:\n{flavor}mlflow_version: 3.17.2\nmodel_uuid: {}\n",
            v.meta.sha256
        );
        Ok(vec![
            (data.into(), bytes),
            ("MLmodel".into(), mlmodel.into_bytes()),
        ])
    }
}

/// The data file name and the `flavors:` entries (indented YAML) that let MLflow's own loaders
/// read a model file: scikit-learn pickles, XGBoost JSON and UBJSON, LightGBM text, ONNX.
fn mlflow_flavor(format: &str, bytes: &[u8]) -> Option<(&'static str, String)> {
    let pyfunc = |module: &str, data_key: &str, data: &str| {
        format!(
            "  python_function:\n    loader_module: {module}\n    {data_key}: {data}\n    predict_fn: predict\n"
        )
    };
    if format.starts_with("pickle") {
        let data = "model.pkl";
        return Some((
            data,
            format!(
                "{}  sklearn:\n    pickled_model: {data}\n    serialization_format: pickle\n    code: null\n",
                pyfunc("mlflow.sklearn", "model_path", data)
            ),
        ));
    }
    if let Some(enc) = mlship_formats::xgboost::detect(bytes) {
        let (data, fmt) = match enc {
            mlship_formats::xgboost::Encoding::Json => ("model.json", "json"),
            mlship_formats::xgboost::Encoding::Ubjson => ("model.ubj", "ubj"),
        };
        return Some((
            data,
            format!(
                "{}  xgboost:\n    data: {data}\n    model_class: xgboost.core.Booster\n    model_format: {fmt}\n    code: null\n",
                pyfunc("mlflow.xgboost", "data", data)
            ),
        ));
    }
    if mlship_formats::lightgbm::is_lightgbm_text(bytes) {
        let data = "model.lgb";
        return Some((
            data,
            format!(
                "{}  lightgbm:\n    data: {data}\n    model_class: lightgbm.basic.Booster\n    code: null\n",
                pyfunc("mlflow.lightgbm", "data", data)
            ),
        ));
    }
    if mlship_formats::onnx::is_onnx(bytes) {
        let data = "model.onnx";
        return Some((
            data,
            format!(
                "{}  onnx:\n    data: {data}\n    providers:\n    - CPUExecutionProvider\n    code: null\n",
                pyfunc("mlflow.onnx", "data", data)
            ),
        ));
    }
    None
}
