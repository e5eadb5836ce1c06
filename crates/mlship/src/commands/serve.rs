//! `mlship serve [NAME=]MODEL …`: load the models, bind, print the address, serve until SIGTERM.

use std::sync::Arc;

use anyhow::Context;
use mlship_registry::{MetadataStore, Reference, Selector};
use mlship_server::{
    AppState, BatchConfig, Config, Deployment, RollbackHook, RollbackPolicy, Served,
};

use crate::cli::ServeArgs;
use crate::model_ref;
use crate::settings::Settings;
use crate::user;

pub fn run(a: &ServeArgs, settings: &Settings) -> anyhow::Result<()> {
    crate::log_panics();
    let file = match &a.config {
        Some(p) => Some(crate::config::read(p)?),
        None => None,
    };
    // Flags win over the config's [serve] section, which wins over the defaults.
    let mut section = file
        .as_ref()
        .and_then(|f| f.serve.clone())
        .unwrap_or_default();
    let mut a = a.clone();
    if a.models.is_empty() {
        a.models = std::mem::take(&mut section.models);
    }
    let host = a
        .host
        .clone()
        .or(section.host.clone())
        .unwrap_or_else(|| "127.0.0.1".into());
    let port = a.port.or(section.port).unwrap_or(8080);
    let a = &a;
    let batch = BatchConfig {
        max_batch_size: a.max_batch_size.max(1),
        max_latency: std::time::Duration::from_micros(a.max_batch_latency_us),
    };
    let registry_hook = Arc::new(RegistryHook {
        settings: settings.clone(),
        writes: std::sync::Mutex::new(Vec::new()),
    });
    let hook: Arc<dyn RollbackHook> = registry_hook.clone();
    let config = Config {
        body_limit: a.body_limit,
        batch,
        request_timeout: a.limits.timeout(section.request_timeout_secs),
        max_concurrency: a
            .max_concurrency_per_model
            .or(section.max_concurrency_per_model)
            .unwrap_or(256),
        scoring_threads: a.scoring_threads.or(section.scoring_threads),
    };
    let mut state = AppState::with_deployments(Vec::new(), Vec::new(), Some(hook), config);
    if a.auth {
        state = state.with_auth(Arc::new(
            mlship_server::auth::Tokens::new(settings.sql()?)
                .rate_limited(a.limits.rate(section.rate_limit)),
        ));
    } else {
        crate::warn_if_open(&host);
    }
    let state = Arc::new(state);
    // Until the models are loaded every route answers 503; liveness says yes, readiness no.
    state.set_ready(false);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the runtime")?;
    rt.block_on(async {
        let (listener, addr) = crate::net::bind(&host, port, &a.tls).await?;
        crate::outln!("listening on {}://{addr}", listener.scheme());
        let (st, args, settings) = (state.clone(), a.clone(), settings.clone());
        tokio::task::spawn_blocking(move || match load(&args, &settings, file) {
            Ok((served, deployments, followed, failed, joining)) => {
                st.set_failed(failed);
                for m in &served {
                    tracing::info!(model = %m.name, version = m.version, source = %m.source, "serving");
                }
                for d in &deployments {
                    let routes: Vec<String> = d
                        .routes
                        .iter()
                        .map(|(m, w)| format!("{} ({w})", m.source))
                        .collect();
                    tracing::info!(deployment = %d.name, routes = %routes.join(", "), "serving a deployment");
                }
                st.install(served, deployments);
                if !(followed.is_empty() && joining.is_empty()) && args.reload_interval_ms > 0 {
                    let every = std::time::Duration::from_millis(args.reload_interval_ms);
                    std::thread::spawn(move || follow(&st, &settings, &followed, &joining, every));
                }
            }
            Err(e) => {
                crate::report(&e);
                std::process::exit(1);
            }
        });
        let shutdown = mlship_server::shutdown_signal();
        match listener {
            crate::net::Bound::Plain(l) => mlship_server::run(l, state, shutdown).await,
            crate::net::Bound::Tls(l) => mlship_server::run(l, state, shutdown).await,
        }
        .context("serving")?;
        anyhow::Ok(())
    })?;
    // A rollback being written to the registry completes before the process exits.
    registry_hook.finish();
    Ok(())
}

/// The models, the deployments, the references to follow, the models that failed to load, and
/// the deployments that join rollouts (name, registered model).
type Loaded = (
    Vec<Served>,
    Vec<Deployment>,
    Vec<(String, Reference)>,
    Vec<(String, String)>,
    Vec<(String, String)>,
);

/// Loads every model and deployment the command line and the config name.
fn load(
    a: &ServeArgs,
    settings: &Settings,
    file: Option<crate::config::FileConfig>,
) -> anyhow::Result<Loaded> {
    let has_deployments = file.as_ref().is_some_and(|f| !f.deployment.is_empty());
    let specs: Vec<String> = if a.models.is_empty() && !has_deployments {
        registered(settings)?
    } else {
        a.models.clone()
    };
    let mut served = Vec::new();
    let mut failed: Vec<(String, String)> = Vec::new();
    let mut followed: Vec<(String, Reference)> = Vec::new();
    for spec in &specs {
        let (name, reference) = match spec.split_once('=') {
            Some((n, r)) if !n.contains('/') && !n.is_empty() => {
                (Some(n.to_string()), r.to_string())
            }
            _ => (None, spec.clone()),
        };
        let parsed = Reference::parse(&reference).and_then(Result::ok);
        let (default_name, alias) = match &parsed {
            Some(rf) => (
                rf.name.clone(),
                if let Selector::Alias(a) = &rf.selector {
                    Some(a.clone())
                } else {
                    None
                },
            ),
            None => {
                let p = std::path::Path::new(&reference);
                let stem = if p.is_dir() {
                    p.file_name()
                } else {
                    p.file_stem()
                };
                (
                    stem.map_or_else(|| "model".into(), |s| s.to_string_lossy().to_string()),
                    None,
                )
            }
        };
        let name = name.unwrap_or(default_name);
        if served.iter().any(|s: &Served| s.name == name) || failed.iter().any(|(n, _)| *n == name)
        {
            return Err(user(
                format!("two models are named `{name}`"),
                "name them: mlship serve a=FILE b=FILE",
            ));
        }
        let r = match model_ref::load(&reference, settings) {
            Ok(r) => r,
            Err(e) if !a.exit_on_error => {
                // Reported not ready with the reason; the others serve.
                tracing::error!(model = %name, cause = %format!("{e:#}"), "cannot load the model");
                failed.push((name, e.root_cause().to_string()));
                continue;
            }
            Err(e) => return Err(e.context(format!("cannot load the model `{name}`"))),
        };
        // An alias or "latest" can move: the server follows it.
        if let Some(rf) = parsed.filter(|rf| !matches!(rf.selector, Selector::Version(_))) {
            followed.push((name.clone(), rf));
        }
        served.push(Served::new(
            name,
            r.version,
            alias,
            Arc::new(r.model),
            r.source,
        ));
    }
    let mut deployments = Vec::new();
    for d in file.iter().flat_map(|f| &f.deployment) {
        let mut routes = Vec::new();
        for r in &d.routes {
            routes.push((Arc::new(load_served(&r.model, settings)?), r.weight));
        }
        let shadow = match &d.shadow {
            Some(m) => Some(Arc::new(load_served(m, settings)?)),
            None => None,
        };
        let rollback = d.rollback.as_ref().map(|r| RollbackPolicy {
            max_error_rate: r.max_error_rate,
            max_p99_ms: r.max_p99_ms,
            min_requests: r.min_requests.unwrap_or(100),
            notify: true,
        });
        deployments.push(Deployment::new(
            d.name.clone(),
            routes,
            d.sticky_header.clone(),
            shadow,
            rollback,
        ));
    }
    if served.is_empty() && deployments.is_empty() && failed.is_empty() {
        return Err(user(
            "no model to serve",
            "pass model files or models:/ URIs, or register models first",
        ));
    }
    let joining = file
        .as_ref()
        .map(|f| super::rollout::following_deployments(&f.deployment))
        .unwrap_or_default();
    Ok((served, deployments, followed, failed, joining))
}

/// Every registered model, at its `production` alias if it has one, else its latest version.
fn registered(settings: &Settings) -> anyhow::Result<Vec<String>> {
    let models = settings.metadata()?.models()?;
    Ok(models
        .into_iter()
        .filter(|m| m.latest.is_some())
        .map(|m| {
            if m.aliases.contains_key("production") {
                format!("models:/{}@production", m.name)
            } else {
                format!("models:/{}", m.name)
            }
        })
        .collect())
}

/// Polls the registry and swaps in the version an alias (or "latest") now points to. Loading
/// happens here, off the request path; the swap is one pointer under a lock.
fn follow(
    state: &AppState,
    settings: &Settings,
    followed: &[(String, Reference)],
    joining: &[(String, String)],
    every: std::time::Duration,
) {
    let mut meta: Option<mlship_registry::SqlStore> = None;
    let mut rollouts = super::rollout::Rollouts::new();
    loop {
        std::thread::sleep(every);
        if meta.is_none() {
            meta = settings.sql().ok();
        }
        let Some(store) = meta.as_mut() else { continue };
        for (name, rf) in followed {
            let Ok(v) = store.resolve(&rf.name, &rf.selector) else {
                continue;
            };
            let current = state.find(name).and_then(|m| m.version);
            if current == Some(v.version) {
                continue;
            }
            match model_ref::load(&format!("models:/{}/{}", rf.name, v.version), settings) {
                Ok(r) => {
                    let alias = if let Selector::Alias(a) = &rf.selector {
                        Some(a.clone())
                    } else {
                        None
                    };
                    state.replace(Served::new(
                        name.clone(),
                        r.version,
                        alias,
                        Arc::new(r.model),
                        r.source,
                    ));
                    tracing::info!(
                        model = %name,
                        from = current,
                        to = v.version,
                        "reloaded"
                    );
                }
                Err(e) => tracing::error!(
                    model = %name,
                    version = v.version,
                    cause = %format!("{e:#}"),
                    "cannot reload; the previous version keeps serving"
                ),
            }
        }
        rollouts.poll(state, store, settings, followed, joining);
    }
}

/// Loads a deployment's route or shadow: a `models:/` URI or a path, named after the model.
fn load_served(reference: &str, settings: &Settings) -> anyhow::Result<Served> {
    let r = model_ref::load(reference, settings)?;
    let (name, alias) = match Reference::parse(reference).and_then(Result::ok) {
        Some(rf) => (
            rf.name.clone(),
            if let Selector::Alias(a) = rf.selector {
                Some(a)
            } else {
                None
            },
        ),
        None => (reference.to_string(), None),
    };
    Ok(Served::new(
        name,
        r.version,
        alias,
        Arc::new(r.model),
        r.source,
    ))
}

/// Writes an automatic rollback to the registry: the candidate's alias moves to the production
/// version, with the reason, so the history shows who (this server), when and why.
struct RegistryHook {
    settings: Settings,
    /// The threads writing rollbacks, joined at shutdown so that none is cut off.
    writes: std::sync::Mutex<Vec<std::thread::JoinHandle<()>>>,
}

impl RegistryHook {
    /// Waits for every rollback write started so far.
    fn finish(&self) {
        let writes = std::mem::take(&mut *self.writes.lock().unwrap_or_else(|e| e.into_inner()));
        for w in writes {
            let _ = w.join();
        }
    }
}

impl RollbackHook for RegistryHook {
    fn rolled_back(&self, deployment: &str, candidate: &Served, production: &Served, reason: &str) {
        tracing::warn!(
            deployment,
            reason,
            production = %production.source,
            "rolled back; all traffic goes to production"
        );
        let (Some(alias), Some(to)) = (candidate.alias.clone(), production.version) else {
            return;
        };
        // The registry clients block; this runs on the request path of an async server.
        let (settings, name, reason) = (
            self.settings.clone(),
            candidate.name.clone(),
            reason.to_string(),
        );
        let write = std::thread::spawn(move || match settings.metadata() {
            Ok(mut meta) => {
                if let Err(e) = meta.set_alias(&name, &alias, to, "mlship serve", &reason) {
                    tracing::error!(cause = %e, "cannot record the rollback in the registry");
                }
            }
            Err(e) => tracing::error!(
                cause = %format!("{e:#}"),
                "cannot record the rollback in the registry"
            ),
        });
        self.writes
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(write);
    }
}
