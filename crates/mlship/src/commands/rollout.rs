//! `mlship rollout start|status|promote|abort|watch`, and the part of `mlship serve` that moves
//! with a rollout: the replicas send their counts, advance the rollout, and route by its weights.

use std::collections::HashMap;
use std::sync::Arc;

use anyhow::Context;
use mlship_registry::rollout::{
    CANDIDATE_ALIAS, PRODUCTION_ALIAS, Rollout, RolloutPlan, RolloutState, StepFigures,
};
use mlship_registry::{MetadataStore, Reference, Selector, SqlStore};
use mlship_server::{AppState, Deployment, RollbackPolicy, Served};
use serde_json::{Value as Json, json};

use crate::cli::{InspectFormat, RolloutCommand, RolloutStartArgs};
use crate::commands::models::print;
use crate::settings::Settings;
use crate::timefmt::rfc3339;
use crate::user;

pub fn run(c: RolloutCommand, settings: &Settings) -> anyhow::Result<()> {
    let store = settings.sql()?;
    match c {
        RolloutCommand::Start(a) => start(&a, &store, settings),
        RolloutCommand::Status(a) => {
            let r = store
                .advance_rollout(&a.name, "mlship rollout status")?
                .ok_or_else(|| never_rolled_out(&a.name))?;
            show(&store, &r, a.out.output)
        }
        RolloutCommand::Promote(a) => end(&store, &a, true),
        RolloutCommand::Abort(a) => end(&store, &a, false),
        RolloutCommand::Watch(a) => {
            let limit = a.timeout.as_deref().map(duration).transpose()?;
            watch(
                &store,
                &a.name,
                std::time::Duration::from_millis(a.poll_ms.max(10)),
                limit,
            )
        }
    }
}

fn end(store: &SqlStore, a: &crate::cli::RolloutEndArgs, promote: bool) -> anyhow::Result<()> {
    let why = a.reason.as_deref().unwrap_or("no reason given");
    let r = store.end_rollout(&a.name, promote, &Settings::who(), why)?;
    show(store, &r, a.out.output)
}

fn never_rolled_out(name: &str) -> anyhow::Error {
    user(
        format!("`{name}` has no rollout"),
        format!("start one: mlship rollout start {name} --candidate models:/{name}/VERSION"),
    )
}

/// `10m`, `30s`, `1h 30m`, `500ms`.
fn duration(s: &str) -> anyhow::Result<std::time::Duration> {
    humantime::parse_duration(s).map_err(|e| {
        user(
            format!("{s:?} is not a duration: {e}"),
            "write it as 30s, 10m, 1h or 500ms",
        )
    })
}

fn start(a: &RolloutStartArgs, store: &SqlStore, settings: &Settings) -> anyhow::Result<()> {
    let mut meta = store.clone();
    let version = match a.candidate.parse::<u32>() {
        Ok(v) => v,
        Err(_) => {
            let rf = Reference::parse(&a.candidate)
                .and_then(Result::ok)
                .ok_or_else(|| {
                    user(
                        format!("the candidate {:?} is not a model reference", a.candidate),
                        format!("for example --candidate models:/{}/8", a.name),
                    )
                })?;
            if rf.name != a.name {
                return Err(user(
                    format!(
                        "the candidate is a version of `{}`, not of `{}`",
                        rf.name, a.name
                    ),
                    "a rollout moves one model's traffic between its versions",
                ));
            }
            meta.resolve(&rf.name, &rf.selector)?.version
        }
    };
    let plan = RolloutPlan {
        name: a.name.clone(),
        candidate: version,
        steps: a.steps.clone(),
        interval_ms: duration(&a.interval)?.as_millis() as i64,
        min_requests: a.min_requests,
        max_error_rate: a.max_error_rate,
        max_p99_ms: a.max_p99_ms,
        sticky_header: a.sticky_header.clone(),
    };
    plan.check()
        .map_err(|e| user(e.to_string(), "see `mlship rollout start --help`"))?;
    // The servers must be able to load it: prove it here, before any traffic moves.
    crate::model_ref::load(&format!("models:/{}/{version}", a.name), settings)
        .with_context(|| format!("version {version} of `{}` cannot be served", a.name))?;
    let r = store.start_rollout(&plan, &Settings::who())?;
    show(store, &r, a.out.output)
}

fn figures_json(version: u32, c: &mlship_registry::rollout::Counts) -> Json {
    json!({
        "version": version,
        "requests": c.requests,
        "errors": c.errors,
        "error_rate": c.error_rate(),
        "p99_ms": c.p99_ms(),
    })
}

fn rollout_json(r: &Rollout, f: &StepFigures) -> Json {
    json!({
        "name": r.plan.name,
        "id": r.id,
        "state": r.state.name(),
        "candidate": r.plan.candidate,
        "production": r.production,
        "step": r.step + 1,
        "steps": r.plan.steps,
        "weight": r.weight(),
        "interval_ms": r.plan.interval_ms,
        "min_requests": r.plan.min_requests,
        "max_error_rate": r.plan.max_error_rate,
        "max_p99_ms": r.plan.max_p99_ms,
        "sticky_header": r.plan.sticky_header,
        "reason": r.reason,
        "started_at": rfc3339(r.started_at),
        "started_by": r.started_by,
        "step_started_at": rfc3339(r.step_started_at),
        "ended_at": r.ended_at.map(rfc3339),
        "figures": {
            "production": figures_json(r.production, &f.production),
            "candidate": figures_json(r.plan.candidate, &f.candidate),
        },
    })
}

fn show(store: &SqlStore, r: &Rollout, format: InspectFormat) -> anyhow::Result<()> {
    let f = store.rollout_figures(r)?;
    let doc = rollout_json(r, &f);
    if format == InspectFormat::Json {
        print(format, &doc, &[], Vec::new());
        return Ok(());
    }
    crate::outln!(
        "rollout of `{}`: {} at {}, started {} by {}",
        r.plan.name,
        r.state.name().replace('_', " "),
        r.step_label(),
        rfc3339(r.started_at),
        r.started_by
    );
    if r.state != RolloutState::Running {
        crate::outln!("{}", r.reason);
    }
    let row = |role: &str, v: u32, w: u32, c: &mlship_registry::rollout::Counts| {
        vec![
            role.to_string(),
            v.to_string(),
            format!("{w}%"),
            c.requests.to_string(),
            c.error_rate().map_or("-".into(), |e| format!("{e:.3}")),
            c.p99_ms().map_or("-".into(), |p| format!("{p:.1}")),
        ]
    };
    let w = r.weight();
    print(
        format,
        &doc,
        &[
            "ROLE",
            "VERSION",
            "WEIGHT",
            "REQUESTS",
            "ERROR RATE",
            "P99 MS",
        ],
        vec![
            row("production", r.production, 100 - w, &f.production),
            row("candidate", r.plan.candidate, w, &f.candidate),
        ],
    );
    Ok(())
}

fn watch(
    store: &SqlStore,
    name: &str,
    poll: std::time::Duration,
    limit: Option<std::time::Duration>,
) -> anyhow::Result<()> {
    let began = std::time::Instant::now();
    let mut seen: Option<(i64, usize)> = None;
    loop {
        let r = store
            .advance_rollout(name, "mlship rollout watch")?
            .ok_or_else(|| never_rolled_out(name))?;
        if seen != Some((r.id, r.step)) && r.state == RolloutState::Running {
            crate::outln!(
                "{}: {}% of traffic to version {}",
                r.step_label(),
                r.weight(),
                r.plan.candidate
            );
            seen = Some((r.id, r.step));
        }
        match r.state {
            RolloutState::Running => {}
            RolloutState::Promoted => {
                crate::outln!("promoted: {}", r.reason);
                return Ok(());
            }
            RolloutState::RolledBack | RolloutState::Aborted => {
                return Err(user(
                    format!(
                        "the rollout of `{name}` ended without promotion: {}",
                        r.reason
                    ),
                    format!(
                        "see `mlship rollout status {name}` and `mlship models history {name}`"
                    ),
                ));
            }
        }
        if limit.is_some_and(|l| began.elapsed() >= l) {
            return Err(user(
                format!(
                    "the rollout of `{name}` is still running at {}",
                    r.step_label()
                ),
                "wait longer (--timeout), or promote or abort it",
            ));
        }
        std::thread::sleep(poll);
    }
}

/// What a rollout's split replaces under a name, and what comes back when it ends.
#[derive(Clone)]
enum Base {
    /// A model served at `production` (`NAME=models:/M@production`).
    Model,
    /// A `[[deployment]]` whose first route is `models:/M@production`: the split takes its place
    /// (keeping its shadow), and it comes back afterwards, its first route promoted if the
    /// candidate was.
    Deployment(Arc<Deployment>),
}

/// A rollout a server is taking part in, for one served name.
struct Joined {
    id: i64,
    step: usize,
    deployment: Arc<Deployment>,
    candidate: Arc<Served>,
    base: Base,
}

/// The server's side of rollouts: for each model it follows at `production` (on its own, or as a
/// deployment's first route), it sends its counts, advances the rollout, and routes by the
/// current step's weights (all of it off the request path, in the server's registry poll).
pub(crate) struct Rollouts {
    /// Names this process's counts apart from other replicas'.
    replica: String,
    joined: HashMap<String, Joined>,
}

/// The deployments of a config that can join rollouts: (deployment name, registered model) for
/// each whose first route is `models:/M@production`.
pub(crate) fn following_deployments(
    ds: &[crate::config::DeploymentConfig],
) -> Vec<(String, String)> {
    ds.iter()
        .filter_map(|d| {
            let rf = Reference::parse(&d.routes.first()?.model)?.ok()?;
            (rf.selector == Selector::Alias(PRODUCTION_ALIAS.into()))
                .then(|| (d.name.clone(), rf.name))
        })
        .collect()
}

impl Rollouts {
    pub(crate) fn new() -> Rollouts {
        let mut nonce = [0u8; 8];
        let _ = getrandom::fill(&mut nonce);
        Rollouts {
            replica: format!(
                "{}-{}",
                std::process::id(),
                nonce.iter().map(|b| format!("{b:02x}")).collect::<String>()
            ),
            joined: HashMap::new(),
        }
    }

    pub(crate) fn poll(
        &mut self,
        state: &AppState,
        store: &SqlStore,
        settings: &Settings,
        followed: &[(String, Reference)],
        deployments: &[(String, String)],
    ) {
        let models = followed
            .iter()
            .filter(|(_, rf)| rf.selector == Selector::Alias(PRODUCTION_ALIAS.into()))
            .map(|(name, rf)| (name.as_str(), rf.name.as_str(), true));
        let deps = deployments
            .iter()
            .map(|(name, model)| (name.as_str(), model.as_str(), false));
        for (name, model, is_model) in models.chain(deps) {
            // Where the split goes back to: what was joined, else what is served now.
            let base = match self.joined.get(name) {
                Some(j) => j.base.clone(),
                None if is_model => Base::Model,
                None => match state.deployments().into_iter().find(|d| d.name == name) {
                    Some(d) => Base::Deployment(d),
                    None => continue,
                },
            };
            if let Err(e) = self.poll_one(state, store, settings, name, model, base) {
                tracing::error!(model = %name, cause = %format!("{e:#}"), "cannot follow the rollout");
            }
        }
    }

    fn poll_one(
        &mut self,
        state: &AppState,
        store: &SqlStore,
        settings: &Settings,
        name: &str,
        model: &str,
        base: Base,
    ) -> anyhow::Result<()> {
        if let Some(j) = self.joined.get(name) {
            let counts = j.deployment.counts();
            let sent: Vec<(u32, mlship_registry::rollout::Counts)> = j
                .deployment
                .routes
                .iter()
                .zip(counts)
                .filter_map(|((s, _), c)| Some((s.version?, c)))
                .collect();
            store.record_rollout_counts(j.id, j.step, &self.replica, &sent)?;
        }
        // A read first: with no rollout running (nearly always), a poll writes nothing.
        let latest = match store.rollout(model)? {
            Some(r) if r.state == RolloutState::Running => {
                store.advance_rollout(model, "mlship serve")?
            }
            other => other,
        };
        let Some(r) = latest.filter(|r| r.state == RolloutState::Running) else {
            if let Some(j) = self.joined.remove(name) {
                let ended = store.rollout(model)?.filter(|r| r.id == j.id);
                let promoted = ended
                    .as_ref()
                    .is_some_and(|r| r.state == RolloutState::Promoted);
                // The candidate holds production now: serve it as such before the split goes.
                let as_production = || {
                    Served::new(
                        name.to_string(),
                        j.candidate.version,
                        Some(PRODUCTION_ALIAS.into()),
                        j.candidate.model.clone(),
                        j.candidate.source.clone(),
                    )
                };
                match &j.base {
                    Base::Model => {
                        if promoted {
                            state.replace(as_production());
                        }
                        state.drop_deployment(name);
                    }
                    Base::Deployment(d) => {
                        let mut routes = d.routes.clone();
                        if promoted {
                            routes[0].0 = Arc::new(as_production());
                        }
                        state.put_deployment(Deployment::new(
                            name.to_string(),
                            routes,
                            d.sticky_header.clone(),
                            d.shadow.clone(),
                            d.rollback.clone(),
                        ));
                    }
                }
                if let Some(r) = &ended {
                    tracing::info!(model = %name, state = r.state.name(), reason = %r.reason, "rollout ended");
                }
            }
            return Ok(());
        };
        if self
            .joined
            .get(name)
            .is_some_and(|j| (j.id, j.step) == (r.id, r.step))
        {
            return Ok(());
        }
        // Production: the plain model under this name, or the deployment's first route.
        let production = match &base {
            Base::Model => state.models().into_iter().find(|m| m.name == name),
            Base::Deployment(d) => d.routes.first().map(|(s, _)| s.clone()),
        };
        let Some(production) = production else {
            return Ok(());
        };
        let candidate = match self.joined.get(name).filter(|j| j.id == r.id) {
            Some(j) => j.candidate.clone(),
            None => {
                let uri = format!("models:/{model}/{}", r.plan.candidate);
                let loaded = crate::model_ref::load(&uri, settings)?;
                Arc::new(Served::new(
                    name.to_string(),
                    loaded.version,
                    Some(CANDIDATE_ALIAS.into()),
                    Arc::new(loaded.model),
                    loaded.source,
                ))
            }
        };
        let (sticky, shadow) = match &base {
            Base::Model => (r.plan.sticky_header.clone(), None),
            Base::Deployment(d) => (
                r.plan
                    .sticky_header
                    .clone()
                    .or_else(|| d.sticky_header.clone()),
                d.shadow.clone(),
            ),
        };
        let w = r.weight();
        let deployment = state.put_deployment(Deployment::new(
            name.to_string(),
            vec![(production, 100 - w), (candidate.clone(), w)],
            sticky,
            shadow,
            // The same thresholds on this replica's own counts take the candidate's traffic away
            // at once; the registry then rolls the rollout back for every replica.
            Some(RollbackPolicy {
                max_error_rate: r.plan.max_error_rate,
                max_p99_ms: r.plan.max_p99_ms,
                min_requests: r.plan.min_requests.max(1),
                notify: false,
            }),
        ));
        tracing::info!(model = %name, step = %r.step_label(), candidate = r.plan.candidate, weight = w, "rollout");
        self.joined.insert(
            name.to_string(),
            Joined {
                id: r.id,
                step: r.step,
                deployment,
                candidate,
                base,
            },
        );
        Ok(())
    }
}
