//! Progressive rollouts: a candidate version meets a rising share of a model's traffic step by
//! step, judged at each step on the serving replicas' own counts; after the last step it becomes
//! `production`, or at the first failing step all traffic goes back with the reason recorded.
//!
//! The state lives in the metadata store, so every replica serving the model moves with it and a
//! restarted one resumes at the current step. Whoever looks (a replica's poll, `rollout watch`,
//! `rollout status`) advances it with [`SqlStore::advance_rollout`]: one transaction on the
//! rollout's locked row, so two replicas never take one step twice. Every start, step, promotion
//! and abort is an entry of the alias history (the `candidate` alias, then `production`).

use std::collections::BTreeMap;

use crate::db::{Row, Tx, Value};
use crate::error::{Error, Result};
use crate::registry::{
    SqlStore, alias_target, get_version, move_alias, now_ms, record, remove_alias, require_model,
};
use crate::vals;

/// The alias the candidate holds while its rollout runs.
pub const CANDIDATE_ALIAS: &str = "candidate";
/// The alias a rollout moves traffic from, and moves to the candidate at the end.
pub const PRODUCTION_ALIAS: &str = "production";

/// Bucket `i` of a [`Latencies`] holds the latencies in (FIRST·RATIO^(i-1), FIRST·RATIO^i] ms.
const FIRST_MS: f64 = 0.01;
const RATIO: f64 = 1.1;
/// 0.01 ms · 1.1^240 is about a day: the last bucket takes anything slower.
const LAST_BUCKET: u16 = 240;

/// A latency histogram with buckets 10% wide, which replicas can add up (a p99 cannot be).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Latencies(BTreeMap<u16, u64>);

impl Latencies {
    pub fn record(&mut self, ms: f64) {
        let i = if ms > FIRST_MS {
            ((ms / FIRST_MS).ln() / RATIO.ln())
                .ceil()
                .min(f64::from(LAST_BUCKET)) as u16
        } else {
            0
        };
        *self.0.entry(i).or_default() += 1;
    }

    pub fn count(&self) -> u64 {
        self.0.values().sum()
    }

    pub fn merge(&mut self, other: &Latencies) {
        for (i, n) in &other.0 {
            *self.0.entry(*i).or_default() += n;
        }
    }

    /// The `q` quantile as the upper bound of its bucket: never below the true value and at most
    /// 10% above it. `None` without any latency.
    pub fn quantile(&self, q: f64) -> Option<f64> {
        let n = self.count();
        if n == 0 {
            return None;
        }
        let rank = ((q * n as f64).ceil() as u64).clamp(1, n);
        let mut seen = 0;
        for (i, c) in &self.0 {
            seen += c;
            if seen >= rank {
                return Some(FIRST_MS * RATIO.powi(i32::from(*i)));
            }
        }
        None
    }

    fn to_json(&self) -> String {
        serde_json::to_string(&self.0).unwrap_or_else(|_| "{}".into())
    }

    fn from_json(s: &str) -> Result<Latencies> {
        serde_json::from_str(s)
            .map(Latencies)
            .map_err(|e| Error::Store {
                store: "database".into(),
                message: format!("a rollout's latencies are not a histogram: {e}"),
            })
    }
}

/// One version's requests at one step, on one replica or summed over all of them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    pub requests: u64,
    /// Requests that did not get a successful answer.
    pub errors: u64,
    pub latencies: Latencies,
}

impl Counts {
    pub fn record(&mut self, ok: bool, ms: f64) {
        self.requests += 1;
        if !ok {
            self.errors += 1;
        }
        self.latencies.record(ms);
    }

    pub fn merge(&mut self, other: &Counts) {
        self.requests += other.requests;
        self.errors += other.errors;
        self.latencies.merge(&other.latencies);
    }

    pub fn error_rate(&self) -> Option<f64> {
        (self.requests > 0).then(|| self.errors as f64 / self.requests as f64)
    }

    pub fn p99_ms(&self) -> Option<f64> {
        self.latencies.quantile(0.99)
    }

    /// "N requests, error rate E, p99 P ms", for reasons and status lines.
    pub fn summary(&self) -> String {
        match (self.error_rate(), self.p99_ms()) {
            (Some(e), Some(p)) => format!(
                "{} requests, error rate {e:.3}, p99 {p:.1} ms",
                self.requests
            ),
            _ => "no requests".into(),
        }
    }
}

/// Where a rollout is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RolloutState {
    Running,
    /// The candidate passed every step and holds `production`.
    Promoted,
    /// A step's figures broke a threshold; all traffic went back to production.
    RolledBack,
    /// Stopped by hand; all traffic went back to production.
    Aborted,
}

impl RolloutState {
    pub fn name(self) -> &'static str {
        match self {
            RolloutState::Running => "running",
            RolloutState::Promoted => "promoted",
            RolloutState::RolledBack => "rolled_back",
            RolloutState::Aborted => "aborted",
        }
    }

    fn parse(s: &str) -> Result<RolloutState> {
        Ok(match s {
            "running" => RolloutState::Running,
            "promoted" => RolloutState::Promoted,
            "rolled_back" => RolloutState::RolledBack,
            "aborted" => RolloutState::Aborted,
            other => {
                return Err(Error::Store {
                    store: "database".into(),
                    message: format!("unknown rollout state {other:?}"),
                });
            }
        })
    }
}

/// What a rollout is asked to do.
#[derive(Clone, Debug, PartialEq)]
pub struct RolloutPlan {
    /// The registered model.
    pub name: String,
    pub candidate: u32,
    /// The candidate's share of traffic at each step, in percent, rising to 100.
    pub steps: Vec<u32>,
    /// How long each step lasts at least.
    pub interval_ms: i64,
    /// The candidate's requests a step needs before it is judged.
    pub min_requests: u64,
    pub max_error_rate: Option<f64>,
    pub max_p99_ms: Option<f64>,
    /// Requests with the same value of this header meet the same version.
    pub sticky_header: Option<String>,
}

impl RolloutPlan {
    /// Refuses steps that do not rise to 100, thresholds out of range, a bad header name.
    pub fn check(&self) -> Result<()> {
        let bad = |m: String| Err(Error::Invalid(m));
        if self.steps.is_empty() {
            return bad("a rollout needs steps, such as 5,25,50,100".into());
        }
        for w in &self.steps {
            if !(1..=100).contains(w) {
                return bad(format!(
                    "step {w} is not a share of traffic from 1 to 100 (percent)"
                ));
            }
        }
        if let Some(p) = self.steps.windows(2).find(|p| p[1] <= p[0]) {
            return bad(format!(
                "steps must rise: {} follows {} (as in 5,25,50,100)",
                p[1], p[0]
            ));
        }
        if self.steps.last() != Some(&100) {
            return bad(format!(
                "the last step is {}, not 100: a rollout ends with every request on the candidate",
                self.steps.last().copied().unwrap_or(0)
            ));
        }
        if self.interval_ms < 0 {
            return bad("the interval between steps cannot be negative".into());
        }
        if let Some(e) = self.max_error_rate {
            if !(0.0..=1.0).contains(&e) {
                return bad(format!(
                    "the maximum error rate {e} is not a fraction from 0 to 1"
                ));
            }
        }
        if let Some(p) = self.max_p99_ms {
            if !(p.is_finite() && p > 0.0) {
                return bad(format!(
                    "the maximum p99 {p} ms is not a positive number of milliseconds"
                ));
            }
        }
        if let Some(h) = &self.sticky_header {
            let token = |c: char| c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c);
            if h.is_empty() || !h.chars().all(token) {
                return bad(format!("{h:?} is not an HTTP header name"));
            }
        }
        Ok(())
    }

    /// Why the candidate's figures at a step fail the thresholds, once it has enough requests.
    fn verdict(&self, c: &Counts) -> Option<String> {
        if c.requests < self.min_requests.max(1) {
            return None;
        }
        if let (Some(max), Some(rate)) = (self.max_error_rate, c.error_rate()) {
            if rate > max {
                return Some(format!(
                    "error rate {rate:.3} > {max} over {} requests",
                    c.requests
                ));
            }
        }
        if let (Some(max), Some(p99)) = (self.max_p99_ms, c.p99_ms()) {
            if p99 > max {
                return Some(format!(
                    "p99 {p99:.1} ms > {max} ms over {} requests",
                    c.requests
                ));
            }
        }
        None
    }
}

/// A rollout as the store keeps it.
#[derive(Clone, Debug, PartialEq)]
pub struct Rollout {
    pub id: i64,
    pub plan: RolloutPlan,
    /// The version `production` held when the rollout started.
    pub production: u32,
    /// The index of the current step in `plan.steps`.
    pub step: usize,
    pub state: RolloutState,
    /// Why it ended (or how it started, while running).
    pub reason: String,
    pub started_at: i64,
    pub step_started_at: i64,
    pub ended_at: Option<i64>,
    pub started_by: String,
}

impl Rollout {
    /// The candidate's share of traffic now, in percent: 0 unless running.
    pub fn weight(&self) -> u32 {
        match self.state {
            RolloutState::Running => self.plan.steps.get(self.step).copied().unwrap_or(0),
            _ => 0,
        }
    }

    /// "step 2/4 (25%)".
    pub fn step_label(&self) -> String {
        format!(
            "step {}/{} ({}%)",
            self.step + 1,
            self.plan.steps.len(),
            self.plan.steps.get(self.step).copied().unwrap_or(0)
        )
    }
}

/// The two versions' figures at a rollout's current step, summed over the replicas.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StepFigures {
    pub production: Counts,
    pub candidate: Counts,
}

const COLUMNS: &str = "id, name, candidate, production, steps, step, interval_ms, min_requests, max_error_rate, max_p99_ms, sticky_header, state, reason, started_at, step_started_at, ended_at, started_by";

fn opt_real(r: &Row, i: usize) -> Result<Option<f64>> {
    match r.0.get(i) {
        Some(Value::Null) | None => Ok(None),
        _ => r.real(i).map(Some),
    }
}

fn rollout_row(r: &Row) -> Result<Rollout> {
    let steps = r
        .text(4)?
        .split(',')
        .map(|s| {
            s.parse().map_err(|_| Error::Store {
                store: "database".into(),
                message: format!("a rollout's steps are not numbers: {s:?}"),
            })
        })
        .collect::<Result<Vec<u32>>>()?;
    Ok(Rollout {
        id: r.int(0)?,
        plan: RolloutPlan {
            name: r.text(1)?,
            candidate: r.int(2)? as u32,
            steps,
            interval_ms: r.int(6)?,
            min_requests: r.int(7)? as u64,
            max_error_rate: opt_real(r, 8)?,
            max_p99_ms: opt_real(r, 9)?,
            sticky_header: r.opt_text(10)?,
        },
        production: r.int(3)? as u32,
        step: r.int(5)? as usize,
        state: RolloutState::parse(&r.text(11)?)?,
        reason: r.text(12)?,
        started_at: r.int(13)?,
        step_started_at: r.int(14)?,
        ended_at: r.opt_int(15)?,
        started_by: r.text(16)?,
    })
}

/// The model's latest rollout, running or not.
fn latest(tx: &mut dyn Tx, name: &str) -> Result<Option<Rollout>> {
    tx.query_opt(
        &format!("SELECT {COLUMNS} FROM rollouts WHERE name = $1 ORDER BY id DESC LIMIT 1"),
        &vals![name],
    )?
    .as_ref()
    .map(rollout_row)
    .transpose()
}

fn by_id(tx: &mut dyn Tx, id: i64) -> Result<Rollout> {
    rollout_row(&tx.query_one(
        &format!("SELECT {COLUMNS} FROM rollouts WHERE id = $1"),
        &vals![id],
    )?)
}

/// The model's running rollout, its row locked until the transaction ends.
fn running(tx: &mut dyn Tx, name: &str) -> Result<Option<Rollout>> {
    let Some(r) = latest(tx, name)? else {
        return Ok(None);
    };
    if r.state != RolloutState::Running {
        return Ok(None);
    }
    tx.lock("rollouts", "id", r.id.into())?;
    // Read again under the lock: another replica may have moved it meanwhile.
    let r = by_id(tx, r.id)?;
    Ok((r.state == RolloutState::Running).then_some(r))
}

fn figures(tx: &mut dyn Tx, r: &Rollout) -> Result<StepFigures> {
    let mut f = StepFigures::default();
    for row in tx.query(
        "SELECT version, requests, errors, latencies FROM rollout_counts WHERE rollout_id = $1 AND step = $2",
        &vals![r.id, r.step as i64],
    )? {
        let c = Counts {
            requests: row.int(1)? as u64,
            errors: row.int(2)? as u64,
            latencies: Latencies::from_json(&row.text(3)?)?,
        };
        match row.int(0)? as u32 {
            v if v == r.plan.candidate => f.candidate.merge(&c),
            _ => f.production.merge(&c),
        }
    }
    Ok(f)
}

/// Ends a running rollout: promoted (the candidate takes `production`), rolled back or aborted.
/// The `candidate` alias goes; the history says why either way.
fn finish(
    tx: &mut dyn Tx,
    r: &Rollout,
    state: RolloutState,
    reason: &str,
    by: &str,
) -> Result<Rollout> {
    let name = &r.plan.name;
    tx.exec(
        "UPDATE rollouts SET state = $2, reason = $3, ended_at = $4 WHERE id = $1",
        &vals![r.id, state.name(), reason, now_ms()],
    )?;
    if state == RolloutState::Promoted {
        move_alias(tx, name, PRODUCTION_ALIAS, r.plan.candidate, by, reason)?;
    }
    match alias_target(tx, name, CANDIDATE_ALIAS)? {
        Some(v) if v == r.plan.candidate => {
            remove_alias(tx, name, CANDIDATE_ALIAS, by, reason)?;
        }
        // Someone moved the alias meanwhile: leave it, but write the end down.
        other => {
            record(tx, name, CANDIDATE_ALIAS, other, other, by, reason)?;
        }
    }
    by_id(tx, r.id)
}

fn no_rollout(name: &str) -> Error {
    Error::NotFound(format!("no rollout of `{name}` is running"))
}

impl SqlStore {
    /// Starts a rollout of `plan.candidate` against the version `production` holds now; the
    /// candidate takes the `candidate` alias. Refused before anything changes when the plan is
    /// bad, the candidate is production already or cannot be served, or a rollout of the model
    /// is running.
    pub fn start_rollout(&self, plan: &RolloutPlan, by: &str) -> Result<Rollout> {
        plan.check()?;
        let name = &plan.name;
        self.db.write(|tx| {
            require_model(tx, name)?;
            let candidate = get_version(tx, name, plan.candidate)?;
            if let Some(why) = &candidate.meta.not_servable {
                return Err(Error::Invalid(format!(
                    "version {} of `{name}` cannot be served: {why}",
                    plan.candidate
                )));
            }
            let Some(production) = alias_target(tx, name, PRODUCTION_ALIAS)? else {
                return Err(Error::Invalid(format!(
                    "`{name}` has no `{PRODUCTION_ALIAS}` alias: a rollout moves traffic from production to the candidate (set it with `mlship models alias {name} {PRODUCTION_ALIAS} VERSION`)"
                )));
            };
            if production == plan.candidate {
                return Err(Error::Invalid(format!(
                    "version {production} of `{name}` is production already"
                )));
            }
            if let Some(r) = running(tx, name)? {
                return Err(Error::AlreadyExists(format!(
                    "a rollout of `{name}` is running already (version {} at {}); promote or abort it first",
                    r.plan.candidate,
                    r.step_label()
                )));
            }
            let at = now_ms();
            let steps: Vec<String> = plan.steps.iter().map(u32::to_string).collect();
            let reason = format!(
                "rollout started: {}% of traffic to version {} (production: version {production}; steps {})",
                plan.steps[0],
                plan.candidate,
                steps.join(",")
            );
            let row = tx.query_one(
                "INSERT INTO rollouts (name, candidate, production, steps, step, interval_ms, min_requests, max_error_rate, max_p99_ms, sticky_header, state, reason, started_at, step_started_at, started_by) VALUES ($1, $2, $3, $4, 0, $5, $6, $7, $8, $9, 'running', $10, $11, $11, $12) RETURNING id",
                &vals![
                    name.as_str(),
                    plan.candidate,
                    production,
                    steps.join(","),
                    plan.interval_ms,
                    plan.min_requests,
                    plan.max_error_rate,
                    plan.max_p99_ms,
                    plan.sticky_header.clone(),
                    reason.as_str(),
                    at,
                    by,
                ],
            )?;
            move_alias(tx, name, CANDIDATE_ALIAS, plan.candidate, by, &reason)?;
            by_id(tx, row.int(0)?)
        })
    }

    /// The model's latest rollout, running or ended.
    pub fn rollout(&self, name: &str) -> Result<Option<Rollout>> {
        self.db.read(|tx| latest(tx, name))
    }

    /// The two versions' figures at the rollout's current step, over every replica.
    pub fn rollout_figures(&self, r: &Rollout) -> Result<StepFigures> {
        self.db.read(|tx| figures(tx, r))
    }

    /// A replica's counts at one step of a rollout, per version (replacing what it sent before:
    /// the counts are totals since the step began).
    pub fn record_rollout_counts(
        &self,
        rollout: i64,
        step: usize,
        replica: &str,
        counts: &[(u32, Counts)],
    ) -> Result<()> {
        self.db.write(|tx| {
            for (version, c) in counts {
                tx.exec(
                    "INSERT INTO rollout_counts (rollout_id, step, replica, version, requests, errors, latencies, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (rollout_id, step, replica, version) DO UPDATE SET requests = excluded.requests, errors = excluded.errors, latencies = excluded.latencies, updated_at = excluded.updated_at",
                    &vals![
                        rollout,
                        step as i64,
                        replica,
                        *version,
                        c.requests,
                        c.errors,
                        c.latencies.to_json(),
                        now_ms()
                    ],
                )?;
            }
            Ok(())
        })
    }

    /// Moves the running rollout on if it is due: back to production when the candidate's
    /// figures at this step break a threshold; to the next step (or to production, after the
    /// last) when the step has lasted its interval with enough requests. Returns the model's
    /// latest rollout afterwards.
    pub fn advance_rollout(&self, name: &str, by: &str) -> Result<Option<Rollout>> {
        self.db.write(|tx| {
            let Some(r) = running(tx, name)? else {
                return latest(tx, name);
            };
            let f = figures(tx, &r)?;
            let (n, c) = (r.plan.steps.len(), r.plan.candidate);
            if let Some(why) = r.plan.verdict(&f.candidate) {
                let reason = format!("rolled back at {}: {why}", r.step_label());
                return finish(tx, &r, RolloutState::RolledBack, &reason, by).map(Some);
            }
            let due = now_ms() - r.step_started_at >= r.plan.interval_ms
                && f.candidate.requests >= r.plan.min_requests;
            if !due {
                return Ok(Some(r));
            }
            if r.step + 1 == n {
                let reason = format!(
                    "rollout promoted version {c} after {} ({})",
                    r.step_label(),
                    f.candidate.summary()
                );
                return finish(tx, &r, RolloutState::Promoted, &reason, by).map(Some);
            }
            tx.exec(
                "UPDATE rollouts SET step = $2, step_started_at = $3 WHERE id = $1",
                &vals![r.id, (r.step + 1) as i64, now_ms()],
            )?;
            let next = by_id(tx, r.id)?;
            let at = alias_target(tx, name, CANDIDATE_ALIAS)?;
            record(
                tx,
                name,
                CANDIDATE_ALIAS,
                at,
                at,
                by,
                &format!(
                    "rollout {}: {}% of traffic to version {c} ({} passed: {})",
                    next.step_label(),
                    next.weight(),
                    r.step_label(),
                    f.candidate.summary()
                ),
            )?;
            Ok(Some(next))
        })
    }

    /// Ends the running rollout by hand: promoted now, or aborted (all traffic to production).
    pub fn end_rollout(&self, name: &str, promote: bool, by: &str, why: &str) -> Result<Rollout> {
        self.db.write(|tx| {
            let r = running(tx, name)?.ok_or_else(|| no_rollout(name))?;
            let (state, verb) = if promote {
                (RolloutState::Promoted, "promoted by hand")
            } else {
                (RolloutState::Aborted, "aborted")
            };
            let reason = format!(
                "rollout of version {} {verb} at {}: {why}",
                r.plan.candidate,
                r.step_label()
            );
            finish(tx, &r, state, &reason, by)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(steps: &[u32]) -> RolloutPlan {
        RolloutPlan {
            name: "m".into(),
            candidate: 2,
            steps: steps.to_vec(),
            interval_ms: 0,
            min_requests: 10,
            max_error_rate: Some(0.1),
            max_p99_ms: Some(50.0),
            sticky_header: Some("X-Device-Id".into()),
        }
    }

    #[test]
    fn plans_that_do_not_rise_to_100_are_refused() {
        assert!(plan(&[5, 25, 50, 100]).check().is_ok());
        assert!(plan(&[100]).check().is_ok());
        for (steps, says) in [
            (&[][..], "needs steps"),
            (&[5, 5, 100][..], "rise"),
            (&[50, 25, 100][..], "rise"),
            (&[5, 50][..], "not 100"),
            (&[0, 100][..], "from 1 to 100"),
            (&[5, 150][..], "from 1 to 100"),
        ] {
            let e = plan(steps).check().unwrap_err().to_string();
            assert!(e.contains(says), "{steps:?}: {e}");
        }
        let mut p = plan(&[100]);
        p.max_error_rate = Some(1.5);
        assert!(p.check().is_err());
        p.max_error_rate = Some(f64::NAN);
        assert!(p.check().is_err());
        let mut p = plan(&[100]);
        p.max_p99_ms = Some(0.0);
        assert!(p.check().is_err());
        let mut p = plan(&[100]);
        p.sticky_header = Some("X Device".into());
        assert!(p.check().is_err());
    }

    #[test]
    fn quantiles_are_at_most_ten_percent_high_and_never_low() {
        let mut l = Latencies::default();
        for i in 1..=1000 {
            l.record(f64::from(i) * 0.1);
        }
        let p99 = l.quantile(0.99).unwrap();
        assert!((99.0..=99.0 * 1.1).contains(&p99), "{p99}");
        assert_eq!(Latencies::default().quantile(0.99), None);
        // Halves recorded apart add up to the whole.
        let (mut a, mut b) = (Latencies::default(), Latencies::default());
        for i in 1..=1000 {
            if i % 2 == 0 { &mut a } else { &mut b }.record(f64::from(i) * 0.1);
        }
        a.merge(&b);
        assert_eq!(a, l);
        assert_eq!(Latencies::from_json(&l.to_json()).unwrap(), l);
        let mut z = Latencies::default();
        z.record(f64::NAN);
        z.record(-1.0);
        z.record(1e30);
        assert_eq!(z.count(), 3);
    }

    #[test]
    fn a_step_is_judged_only_after_its_minimum_requests() {
        let p = plan(&[100]);
        let mut c = Counts::default();
        for _ in 0..9 {
            c.record(false, 1.0);
        }
        assert_eq!(p.verdict(&c), None);
        c.record(false, 1.0);
        assert!(p.verdict(&c).unwrap().contains("error rate 1.000 > 0.1"));
        let mut slow = Counts::default();
        for _ in 0..10 {
            slow.record(true, 80.0);
        }
        assert!(p.verdict(&slow).unwrap().contains("ms > 50 ms"));
    }
}
