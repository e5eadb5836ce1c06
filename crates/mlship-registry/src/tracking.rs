//! Experiment tracking as MLflow keeps it: experiments, runs, params (immutable), metrics
//! (append-only history, latest value per key), tags, dataset inputs, logged models; and runs
//! searched with MLflow's filter grammar compiled to SQL, so search scales with the indexes.

use std::collections::BTreeMap;

use crate::db::{Row, Tx, Value};
use crate::error::{Error, Result};
use crate::filter::{self, Cond, Kind, Lit, Op};
use crate::registry::{SqlStore, now_ms};
use crate::vals;

/// MLflow's limits on one log-batch request and on keys and values.
pub mod limits {
    pub const BATCH_METRICS: usize = 1000;
    pub const BATCH_PARAMS_TAGS: usize = 100;
    pub const BATCH_ENTITIES: usize = 1000;
    pub const KEY: usize = 250;
    pub const PARAM_VALUE: usize = 6000;
    pub const TAG_VALUE: usize = 8000;
    pub const RUNS_PAGE: usize = 50_000;
    pub const HISTORY_PAGE: usize = 25_000;
}

#[derive(Clone, Debug, PartialEq)]
pub struct Experiment {
    pub id: String,
    pub name: String,
    pub artifact_location: String,
    pub lifecycle_stage: String,
    pub creation_time: i64,
    pub last_update_time: i64,
    pub tags: BTreeMap<String, String>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct RunInfo {
    pub run_id: String,
    pub experiment_id: String,
    pub run_name: String,
    pub user_id: String,
    pub status: String,
    pub start_time: i64,
    pub end_time: Option<i64>,
    pub artifact_uri: String,
    pub lifecycle_stage: String,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Metric {
    pub key: String,
    pub value: f64,
    pub timestamp: i64,
    pub step: i64,
    pub model_id: Option<String>,
    pub dataset_name: Option<String>,
    pub dataset_digest: Option<String>,
    pub run_id: Option<String>,
}

impl Metric {
    pub fn new(key: &str, value: f64, timestamp: i64, step: i64) -> Metric {
        Metric {
            key: key.to_string(),
            value,
            timestamp,
            step,
            model_id: None,
            dataset_name: None,
            dataset_digest: None,
            run_id: None,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Dataset {
    pub name: String,
    pub digest: String,
    pub source_type: String,
    pub source: String,
    pub schema: Option<String>,
    pub profile: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DatasetInput {
    pub dataset: Dataset,
    pub tags: Vec<(String, String)>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Run {
    pub info: RunInfo,
    /// The latest value of each metric.
    pub metrics: Vec<Metric>,
    pub params: BTreeMap<String, String>,
    pub tags: BTreeMap<String, String>,
    pub inputs: Vec<DatasetInput>,
    /// Logged models this run produced, with the step.
    pub outputs: Vec<(String, i64)>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct LoggedModel {
    pub model_id: String,
    pub experiment_id: String,
    pub name: String,
    pub source_run_id: Option<String>,
    pub status: String,
    pub status_message: Option<String>,
    pub model_type: Option<String>,
    pub artifact_uri: String,
    pub creation_time: i64,
    pub last_updated_time: i64,
    pub params: BTreeMap<String, String>,
    pub tags: BTreeMap<String, String>,
    pub metrics: Vec<Metric>,
}

/// Which runs or experiments a listing shows.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ViewType {
    #[default]
    Active,
    Deleted,
    All,
}

impl ViewType {
    pub fn parse(s: &str) -> Result<ViewType> {
        match s {
            "" | "ACTIVE_ONLY" | "1" => Ok(ViewType::Active),
            "DELETED_ONLY" | "2" => Ok(ViewType::Deleted),
            "ALL" | "3" => Ok(ViewType::All),
            _ => Err(Error::Invalid(format!(
                "invalid view type {s:?}: expected ACTIVE_ONLY, DELETED_ONLY or ALL"
            ))),
        }
    }
    fn sql(self, column: &str) -> String {
        match self {
            ViewType::Active => format!(" AND {column} = 'active'"),
            ViewType::Deleted => format!(" AND {column} = 'deleted'"),
            ViewType::All => String::new(),
        }
    }
}

/// What `search_runs` is asked.
#[derive(Clone, Debug, Default)]
pub struct RunSearch {
    pub experiment_ids: Vec<String>,
    pub filter: String,
    pub view: ViewType,
    pub max_results: usize,
    pub order_by: Vec<String>,
    pub page_token: Option<String>,
}

/// What `create_run` is given.
#[derive(Clone, Debug, Default)]
pub struct NewRun {
    pub experiment_id: String,
    pub user_id: String,
    pub run_name: Option<String>,
    pub start_time: Option<i64>,
    pub tags: Vec<(String, String)>,
}

/// A fresh id: 32 lowercase hex digits, unique across processes and machines.
pub fn new_id() -> String {
    use sha2::{Digest, Sha256};
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    let mut h = Sha256::new();
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    h.update(nanos.to_le_bytes());
    h.update(std::process::id().to_le_bytes());
    h.update(N.fetch_add(1, Ordering::Relaxed).to_le_bytes());
    // 122 random bits from the kernel; time, process and counter keep ids apart without it.
    if let Ok(random) = std::fs::read("/proc/sys/kernel/random/uuid") {
        h.update(random);
    }
    crate::artifacts::hex(&h.finalize()[..16])
}

fn run_name_for(id: &str) -> String {
    const A: &[&str] = &[
        "amber", "bold", "calm", "clever", "brisk", "eager", "gentle", "keen", "lucky", "merry",
        "nimble", "quiet", "rapid", "shy", "sunny", "tidy", "vivid", "wise", "witty", "zesty",
    ];
    const B: &[&str] = &[
        "otter", "falcon", "lynx", "heron", "panda", "koala", "owl", "fox", "wren", "seal",
        "crane", "bison", "moth", "newt", "robin", "swan", "tapir", "yak", "zebra", "finch",
    ];
    let n = u64::from_str_radix(&id[..12], 16).unwrap_or(0);
    format!(
        "{}-{}-{}",
        A[(n % 20) as usize],
        B[((n / 20) % 20) as usize],
        (n / 400) % 1000
    )
}

fn not_found(what: &str) -> Error {
    Error::NotFound(what.to_string())
}

fn parse_exp_id(id: &str) -> Result<i64> {
    id.parse::<i64>()
        .map_err(|_| not_found(&format!("No Experiment with id={id} exists")))
}

fn check_key(kind: &str, key: &str) -> Result<()> {
    if key.is_empty() {
        return Err(Error::Invalid(format!("{kind} key must not be empty")));
    }
    let chars = key.chars().count();
    if chars > limits::KEY {
        return Err(Error::Invalid(format!(
            "{kind} key '{}…' is {chars} characters long, over the limit of {}",
            &key[..key.floor_char_boundary(40)],
            limits::KEY
        )));
    }
    if key.starts_with('/') || key.split('/').any(|s| s == "..") {
        return Err(Error::Invalid(format!(
            "invalid {kind} key {key:?}: it must not start with '/' or contain '..'"
        )));
    }
    Ok(())
}

fn check_value(kind: &str, key: &str, value: &str, limit: usize) -> Result<()> {
    let chars = value.chars().count();
    if chars > limit {
        return Err(Error::Invalid(format!(
            "{kind} '{key}' has a value of {chars} characters, over the limit of {limit}"
        )));
    }
    Ok(())
}

const EXP_COLS: &str =
    "id, name, artifact_location, lifecycle_stage, creation_time, last_update_time";

fn experiment_row(tx: &mut dyn Tx, r: &Row) -> Result<Experiment> {
    let id = r.int(0)?;
    let tags = tx
        .query(
            "SELECT key, value FROM experiment_tags WHERE experiment_id = $1",
            &vals![id],
        )?
        .iter()
        .map(|t| Ok((t.text(0)?, t.text(1)?)))
        .collect::<Result<_>>()?;
    Ok(Experiment {
        id: id.to_string(),
        name: r.text(1)?,
        artifact_location: r.text(2)?,
        lifecycle_stage: r.text(3)?,
        creation_time: r.int(4)?,
        last_update_time: r.int(5)?,
        tags,
    })
}

fn get_experiment(tx: &mut dyn Tx, id: &str) -> Result<Experiment> {
    let n = parse_exp_id(id)?;
    match tx.query_opt(
        &format!("SELECT {EXP_COLS} FROM experiments WHERE id = $1"),
        &vals![n],
    )? {
        Some(r) => experiment_row(tx, &r),
        None => Err(not_found(&format!("No Experiment with id={id} exists"))),
    }
}

const RUN_COLS: &str = "run_id, experiment_id, name, user_id, status, start_time, end_time, artifact_uri, lifecycle_stage";

fn run_info_row(r: &Row) -> Result<RunInfo> {
    Ok(RunInfo {
        run_id: r.text(0)?,
        experiment_id: r.int(1)?.to_string(),
        run_name: r.text(2)?,
        user_id: r.text(3)?,
        status: r.text(4)?,
        start_time: r.int(5)?,
        end_time: r.opt_int(6)?,
        artifact_uri: r.text(7)?,
        lifecycle_stage: r.text(8)?,
    })
}

fn run_info(tx: &mut dyn Tx, run_id: &str) -> Result<RunInfo> {
    match tx.query_opt(
        &format!("SELECT {RUN_COLS} FROM runs WHERE run_id = $1"),
        &vals![run_id],
    )? {
        Some(r) => run_info_row(&r),
        None => Err(not_found(&format!("Run '{run_id}' not found"))),
    }
}

/// The run, which must exist and not be deleted, locked for the rest of the transaction.
fn active_run(tx: &mut dyn Tx, run_id: &str) -> Result<RunInfo> {
    tx.lock("runs", "run_id", run_id.into())?;
    let info = run_info(tx, run_id)?;
    if info.lifecycle_stage != "active" {
        return Err(Error::Conflict(format!(
            "The run {run_id} must be in the 'active' state. Current state is {}.",
            info.lifecycle_stage
        )));
    }
    Ok(info)
}

fn value_of(value: f64) -> (f64, i64) {
    if value.is_nan() { (0.0, 1) } else { (value, 0) }
}

fn metric_row(r: &Row, base: usize) -> Result<Metric> {
    let value = if r.int(base + 2)? != 0 {
        f64::NAN
    } else {
        r.real(base + 1)?
    };
    Ok(Metric {
        key: r.text(base)?,
        value,
        timestamp: r.int(base + 3)?,
        step: r.int(base + 4)?,
        model_id: r.opt_text(base + 5)?,
        dataset_name: r.opt_text(base + 6)?,
        dataset_digest: r.opt_text(base + 7)?,
        run_id: None,
    })
}

/// `(step, timestamp, value)` order, NaN above every number, as MLflow picks the latest value.
fn newer(a: &Metric, step: i64, timestamp: i64, value: f64) -> bool {
    (a.step, a.timestamp)
        .cmp(&(step, timestamp))
        .then_with(|| match (a.value.is_nan(), value.is_nan()) {
            (true, true) => std::cmp::Ordering::Equal,
            (true, false) => std::cmp::Ordering::Greater,
            (false, true) => std::cmp::Ordering::Less,
            _ => a.value.total_cmp(&value),
        })
        .is_ge()
}

/// Appends the points to a run's histories (a point logged again is one point, now linked to
/// the model that re-logged it) and moves each key's latest value once, to the newest point of
/// the batch if it is newer than the stored one.
fn insert_metrics(tx: &mut dyn Tx, run_id: &str, metrics: &[Metric]) -> Result<()> {
    let mut newest: Vec<&Metric> = Vec::new();
    for m in metrics {
        insert_point(tx, run_id, m)?;
        match newest.iter_mut().find(|n| n.key == m.key) {
            Some(n) if !newer(n, m.step, m.timestamp, m.value) => *n = m,
            Some(_) => {}
            None => newest.push(m),
        }
    }
    for m in newest {
        let current = tx.query_opt(
            "SELECT key, value, is_nan, timestamp, step, NULL, NULL, NULL FROM latest_metrics WHERE run_id = $1 AND key = $2",
            &vals![run_id, m.key.as_str()],
        )?;
        let replace = match current {
            Some(r) => !newer(&metric_row(&r, 0)?, m.step, m.timestamp, m.value),
            None => true,
        };
        if replace {
            let (v, nan) = value_of(m.value);
            tx.exec(
                "INSERT INTO latest_metrics (run_id, key, value, is_nan, timestamp, step) VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (run_id, key) DO UPDATE SET value = excluded.value, is_nan = excluded.is_nan, timestamp = excluded.timestamp, step = excluded.step",
                &vals![run_id, m.key.as_str(), v, nan, m.timestamp, m.step],
            )?;
        }
    }
    Ok(())
}

fn insert_point(tx: &mut dyn Tx, run_id: &str, m: &Metric) -> Result<()> {
    let (v, nan) = value_of(m.value);
    // The same point again (MLflow's log_model re-logs a run's metrics with the model's id to
    // link them) is one point of the history, now linked to the model.
    let same = tx.query_opt(
        "SELECT id FROM metrics WHERE run_id = $1 AND key = $2 AND step = $3 AND timestamp = $4 AND value = $5 AND is_nan = $6",
        &vals![run_id, m.key.as_str(), m.step, m.timestamp, v, nan],
    )?;
    if let Some(row) = same {
        if m.model_id.is_some() {
            tx.exec(
                "UPDATE metrics SET model_id = $2, dataset_name = $3, dataset_digest = $4 WHERE id = $1",
                &vals![row.int(0)?, m.model_id.clone(), m.dataset_name.clone(), m.dataset_digest.clone()],
            )?;
        }
        return Ok(());
    }
    tx.exec(
        "INSERT INTO metrics (run_id, key, value, is_nan, timestamp, step, model_id, dataset_name, dataset_digest) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        &vals![run_id, m.key.as_str(), v, nan, m.timestamp, m.step, m.model_id.clone(), m.dataset_name.clone(), m.dataset_digest.clone()],
    )?;
    Ok(())
}

fn insert_param(tx: &mut dyn Tx, run_id: &str, key: &str, value: &str) -> Result<()> {
    let inserted = tx.exec(
        "INSERT INTO params (run_id, key, value) VALUES ($1, $2, $3) ON CONFLICT (run_id, key) DO NOTHING",
        &vals![run_id, key, value],
    )?;
    if inserted == 0 {
        let old = tx
            .query_one(
                "SELECT value FROM params WHERE run_id = $1 AND key = $2",
                &vals![run_id, key],
            )?
            .text(0)?;
        if old != value {
            return Err(Error::Conflict(format!(
                "Changing param values is not allowed. Param with key='{key}' was already logged with value='{old}' for run ID='{run_id}'. Attempted logging new value '{value}'."
            )));
        }
    }
    Ok(())
}

fn insert_tag(tx: &mut dyn Tx, run_id: &str, key: &str, value: &str) -> Result<()> {
    tx.exec(
        "INSERT INTO run_tags (run_id, key, value) VALUES ($1, $2, $3) ON CONFLICT (run_id, key) DO UPDATE SET value = excluded.value",
        &vals![run_id, key, value],
    )?;
    if key == "mlflow.runName" {
        tx.exec(
            "UPDATE runs SET name = $2 WHERE run_id = $1",
            &vals![run_id, value],
        )?;
    }
    Ok(())
}

/// Loads whole runs for a list of ids, in that order.
fn load_runs(tx: &mut dyn Tx, ids: &[String]) -> Result<Vec<Run>> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let mut runs: Vec<Run> = Vec::with_capacity(ids.len());
    let mut index = std::collections::HashMap::with_capacity(ids.len());
    for chunk in ids.chunks(500) {
        let marks = (1..=chunk.len())
            .map(|i| format!("${i}"))
            .collect::<Vec<_>>()
            .join(", ");
        let params: Vec<Value> = chunk.iter().map(Value::from).collect();
        for r in tx.query(
            &format!("SELECT {RUN_COLS} FROM runs WHERE run_id IN ({marks})"),
            &params,
        )? {
            let info = run_info_row(&r)?;
            index.insert(info.run_id.clone(), runs.len());
            runs.push(Run {
                info,
                metrics: Vec::new(),
                params: BTreeMap::new(),
                tags: BTreeMap::new(),
                inputs: Vec::new(),
                outputs: Vec::new(),
            });
        }
        for r in tx.query(
            &format!("SELECT run_id, key, value FROM params WHERE run_id IN ({marks})"),
            &params,
        )? {
            if let Some(&i) = index.get(&r.text(0)?) {
                runs[i].params.insert(r.text(1)?, r.text(2)?);
            }
        }
        for r in tx.query(
            &format!("SELECT run_id, key, value FROM run_tags WHERE run_id IN ({marks})"),
            &params,
        )? {
            if let Some(&i) = index.get(&r.text(0)?) {
                runs[i].tags.insert(r.text(1)?, r.text(2)?);
            }
        }
        for r in tx.query(
            &format!("SELECT run_id, key, value, is_nan, timestamp, step, NULL, NULL, NULL FROM latest_metrics WHERE run_id IN ({marks}) ORDER BY key"),
            &params,
        )? {
            if let Some(&i) = index.get(&r.text(0)?) {
                runs[i].metrics.push(metric_row(&r, 1)?);
            }
        }
        for r in tx.query(
            &format!("SELECT i.run_id, i.tags, d.name, d.digest, d.source_type, d.source, d.schema_json, d.profile FROM run_inputs i JOIN datasets d ON d.experiment_id = i.experiment_id AND d.name = i.name AND d.digest = i.digest WHERE i.run_id IN ({marks}) ORDER BY i.name, i.digest"),
            &params,
        )? {
            if let Some(&i) = index.get(&r.text(0)?) {
                let tags: Vec<(String, String)> =
                    serde_json::from_str(&r.text(1)?).unwrap_or_default();
                runs[i].inputs.push(DatasetInput {
                    dataset: Dataset {
                        name: r.text(2)?,
                        digest: r.text(3)?,
                        source_type: r.text(4)?,
                        source: r.text(5)?,
                        schema: r.opt_text(6)?,
                        profile: r.opt_text(7)?,
                    },
                    tags,
                });
            }
        }
        for r in tx.query(
            &format!("SELECT run_id, model_id, step FROM run_outputs WHERE run_id IN ({marks}) ORDER BY model_id"),
            &params,
        )? {
            if let Some(&i) = index.get(&r.text(0)?) {
                runs[i].outputs.push((r.text(1)?, r.int(2)?));
            }
        }
    }
    let mut by_id: std::collections::HashMap<String, Run> = runs
        .into_iter()
        .map(|r| (r.info.run_id.clone(), r))
        .collect();
    Ok(ids.iter().filter_map(|id| by_id.remove(id)).collect())
}

/// One page of `all`, and the token of the next page if there is one.
pub(crate) fn page<T>(
    all: Vec<T>,
    max_results: usize,
    token: Option<&str>,
) -> Result<(Vec<T>, Option<String>)> {
    let offset = page_offset(token)?;
    let max = max_results.max(1);
    let next = (all.len() > offset + max).then(|| next_token(offset + max));
    Ok((all.into_iter().skip(offset).take(max).collect(), next))
}

fn page_offset(token: Option<&str>) -> Result<usize> {
    match token {
        None | Some("") => Ok(0),
        Some(t) => t
            .strip_prefix("o")
            .and_then(|n| n.parse().ok())
            .ok_or_else(|| Error::Invalid(format!("invalid page_token {t:?}"))),
    }
}

fn next_token(offset: usize) -> String {
    format!("o{offset}")
}

/// The SQL column of a run attribute in a filter or order.
fn run_attribute(key: &str) -> Result<(&'static str, bool)> {
    Ok(match key {
        "run_id" | "run_uuid" | "id" => ("r.run_id", false),
        "run_name" | "name" => ("r.name", false),
        "status" => ("r.status", false),
        "user_id" | "user" => ("r.user_id", false),
        "start_time" | "created" | "Created" => ("r.start_time", true),
        "end_time" => ("r.end_time", true),
        "artifact_uri" => ("r.artifact_uri", false),
        "lifecycle_stage" => ("r.lifecycle_stage", false),
        "experiment_id" => ("r.experiment_id", true),
        _ => {
            return Err(Error::Invalid(format!(
                "invalid attribute key '{key}': expected one of run_id, run_name, status, user_id, start_time, end_time, artifact_uri, lifecycle_stage"
            )));
        }
    })
}

/// Appends `value`'s placeholders to `params` and returns the SQL for the comparison.
fn compare_sql(column: &str, c: &Cond, params: &mut Vec<Value>, numeric: bool) -> Result<String> {
    let mut bind = |v: Value| {
        params.push(v);
        format!("${}", params.len())
    };
    let lit = |l: &Lit| -> Result<Value> {
        Ok(match l {
            Lit::Str(s) if numeric => Value::Real(s.parse().map_err(|_| {
                Error::Invalid(format!("'{}' is compared with a number, not '{s}'", c.key))
            })?),
            Lit::Str(s) => Value::Text(s.clone()),
            Lit::Num(n) if numeric => Value::Real(*n),
            Lit::Num(n) => Value::Text(n.to_string()),
            _ => Value::Null,
        })
    };
    Ok(match c.op {
        Op::IsNull => format!("{column} IS NULL"),
        Op::IsNotNull => format!("{column} IS NOT NULL"),
        Op::In | Op::NotIn => {
            let Lit::List(items) = &c.value else {
                return Err(Error::Invalid("IN takes a list".into()));
            };
            let marks: Vec<String> = items
                .iter()
                .map(|s| bind(lit(&Lit::Str(s.clone())).unwrap_or(Value::Null)))
                .collect();
            format!("{column} {} ({})", c.op.sql(), marks.join(", "))
        }
        Op::ILike => {
            let m = bind(lit(&c.value)?);
            format!("LOWER({column}) LIKE LOWER({m})")
        }
        op => {
            let m = bind(lit(&c.value)?);
            format!("{column} {} {m}", op.sql())
        }
    })
}

fn condition_sql(c: &Cond, params: &mut Vec<Value>) -> Result<String> {
    let exists = |table: &str, extra: &str, c: &Cond, params: &mut Vec<Value>| -> Result<String> {
        params.push(Value::Text(c.key.clone()));
        let k = format!("${}", params.len());
        let head = format!("SELECT 1 FROM {table} x WHERE x.run_id = r.run_id AND x.key = {k}");
        Ok(match c.op {
            Op::IsNull => format!("NOT EXISTS ({head})"),
            Op::IsNotNull => format!("EXISTS ({head})"),
            _ => {
                let numeric = table == "latest_metrics";
                let cmp = compare_sql("x.value", c, params, numeric)?;
                format!("EXISTS ({head}{extra} AND {cmp})")
            }
        })
    };
    match c.kind {
        Kind::Metric => exists("latest_metrics", " AND x.is_nan = 0", c, params),
        Kind::Param => exists("params", "", c, params),
        Kind::Tag => exists("run_tags", "", c, params),
        Kind::Attribute => {
            let (col, numeric) = run_attribute(&c.key)?;
            compare_sql(col, c, params, numeric)
        }
        Kind::Dataset => {
            let col = match c.key.as_str() {
                "name" => "x.name",
                "digest" => "x.digest",
                "context" => "x.context",
                _ => {
                    return Err(Error::Invalid(format!(
                        "invalid dataset key '{}': expected name, digest or context",
                        c.key
                    )));
                }
            };
            let cmp = compare_sql(col, c, params, false)?;
            Ok(format!(
                "EXISTS (SELECT 1 FROM run_inputs x WHERE x.run_id = r.run_id AND {cmp})"
            ))
        }
    }
}

/// Which runs one statement of a runs search reads.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Part {
    All,
    /// Runs that have the first order key, driven by that key's index in order.
    HavingFirstKey,
    /// Runs that lack it (they sort last).
    MissingFirstKey,
}

fn run_ids(tx: &mut dyn Tx, sql: &str, params: &[Value]) -> Result<Vec<String>> {
    tx.query(sql, params)?.iter().map(|r| r.text(0)).collect()
}

/// One statement of a runs search: the filter compiled to `EXISTS` subqueries, the orders
/// (metrics by value with NaN after numbers, missing keys last, then newest first and by id);
/// `limit` 0 means no limit.
fn run_search_sql(
    exp_ids: &[i64],
    view: ViewType,
    conds: &[Cond],
    orders: &[filter::Order],
    part: Part,
    limit: usize,
    offset: usize,
) -> Result<(String, Vec<Value>)> {
    let mut params: Vec<Value> = Vec::new();
    let table_of = |k: Kind| match k {
        Kind::Metric => "latest_metrics",
        Kind::Param => "params",
        _ => "run_tags",
    };
    let mut from = "runs r".to_string();
    let mut filters = Vec::new();
    let mut order_sql = Vec::new();
    let mut joins = String::new();
    for (i, o) in orders.iter().enumerate() {
        let dir = if o.ascending { "ASC" } else { "DESC" };
        if o.kind == Kind::Attribute {
            let (col, _) = run_attribute(&o.key)?;
            // Nulls last; only `end_time` can be null, and naming the others' null test would
            // keep the runs index from giving the order (a sort of every run before the page).
            if col == "r.end_time" {
                order_sql.push(format!("({col} IS NULL) ASC, {col} {dir}"));
            } else {
                order_sql.push(format!("{col} {dir}"));
            }
            continue;
        }
        let table = table_of(o.kind);
        params.push(Value::Text(o.key.clone()));
        let k = params.len();
        let value_order = if o.kind == Kind::Metric {
            format!("o{i}.is_nan {dir}, o{i}.value {dir}")
        } else {
            format!("o{i}.value {dir}")
        };
        match (i, part) {
            (0, Part::HavingFirstKey) => {
                // CROSS JOIN keeps SQLite's planner on the key's index as the outer loop (without
                // statistics it would scan the experiment's runs and sort them all); PostgreSQL
                // plans it as the inner join it is.
                from = format!("{table} o0 CROSS JOIN runs r");
                filters.push(format!("r.run_id = o0.run_id AND o0.key = ${k}"));
                order_sql.push(value_order);
            }
            (0, Part::MissingFirstKey) => filters.push(format!(
                "NOT EXISTS (SELECT 1 FROM {table} m WHERE m.run_id = r.run_id AND m.key = ${k})"
            )),
            _ => {
                joins.push_str(&format!(
                    " LEFT JOIN {table} o{i} ON o{i}.run_id = r.run_id AND o{i}.key = ${k}"
                ));
                order_sql.push(format!("(o{i}.run_id IS NULL) ASC, {value_order}"));
            }
        }
    }
    let marks: Vec<String> = exp_ids
        .iter()
        .map(|&e| {
            params.push(Value::Int(e));
            format!("${}", params.len())
        })
        .collect();
    filters.push(format!(
        "r.experiment_id IN ({}){}",
        marks.join(", "),
        view.sql("r.lifecycle_stage")
    ));
    for c in conds {
        filters.push(condition_sql(c, &mut params)?);
    }
    if !orders.iter().any(|o| {
        o.kind == Kind::Attribute && run_attribute(&o.key).ok().map(|c| c.0) == Some("r.start_time")
    }) {
        order_sql.push("r.start_time DESC".into());
    }
    order_sql.push("r.run_id ASC".into());
    let mut sql = format!(
        "SELECT r.run_id FROM {from}{joins} WHERE {} ORDER BY {}",
        filters.join(" AND "),
        order_sql.join(", ")
    );
    if limit > 0 {
        params.push(Value::Int(limit as i64));
        params.push(Value::Int(offset as i64));
        sql.push_str(&format!(
            " LIMIT ${} OFFSET ${}",
            params.len() - 1,
            params.len()
        ));
    }
    Ok((sql, params))
}

impl SqlStore {
    // ----- experiments -----

    pub fn create_experiment(
        &self,
        name: &str,
        artifact_location: Option<&str>,
        tags: &[(String, String)],
    ) -> Result<String> {
        if name.trim().is_empty() {
            return Err(Error::Invalid(
                "Invalid experiment name: ''. The experiment name must be a non-empty string."
                    .into(),
            ));
        }
        for (k, v) in tags {
            check_key("tag", k)?;
            check_value("tag", k, v, limits::TAG_VALUE)?;
        }
        self.db.write(|tx| {
            let at = now_ms();
            // The unique name decides, also between two servers creating it at once.
            let Some(row) = tx.query_opt(
                "INSERT INTO experiments (name, artifact_location, lifecycle_stage, creation_time, last_update_time) VALUES ($1, '', 'active', $2, $2) ON CONFLICT (name) DO NOTHING RETURNING id",
                &vals![name, at],
            )?
            else {
                return Err(Error::AlreadyExists(format!(
                    "Experiment '{name}' already exists."
                )));
            };
            let id = row
                .int(0)?;
            let location = artifact_location
                .filter(|l| !l.is_empty())
                .map_or_else(|| format!("mlflow-artifacts:/{id}"), str::to_string);
            tx.exec(
                "UPDATE experiments SET artifact_location = $2 WHERE id = $1",
                &vals![id, location],
            )?;
            for (k, v) in tags {
                tx.exec(
                    "INSERT INTO experiment_tags (experiment_id, key, value) VALUES ($1, $2, $3) ON CONFLICT (experiment_id, key) DO UPDATE SET value = excluded.value",
                    &vals![id, k, v],
                )?;
            }
            Ok(id.to_string())
        })
    }

    pub fn experiment(&self, id: &str) -> Result<Experiment> {
        self.db.read(|tx| get_experiment(tx, id))
    }

    pub fn experiment_by_name(&self, name: &str) -> Result<Experiment> {
        self.db.read(|tx| {
            match tx.query_opt(
                &format!("SELECT {EXP_COLS} FROM experiments WHERE name = $1"),
                &vals![name],
            )? {
                Some(r) => experiment_row(tx, &r),
                None => Err(not_found(&format!(
                    "Could not find experiment with name '{name}'"
                ))),
            }
        })
    }

    /// Experiments by view, filter (`name`, `creation_time`, `last_update_time`, `tags.`) and
    /// order, a page at a time.
    pub fn search_experiments(
        &self,
        view: ViewType,
        filter_text: &str,
        order_by: &[String],
        max_results: usize,
        page_token: Option<&str>,
    ) -> Result<(Vec<Experiment>, Option<String>)> {
        let conds = filter::parse(filter_text).map_err(|e| Error::Invalid(e.to_string()))?;
        let orders = order_by
            .iter()
            .map(|o| filter::parse_order(o).map_err(|e| Error::Invalid(e.to_string())))
            .collect::<Result<Vec<_>>>()?;
        filter::only_attributes(
            &orders,
            &["name", "creation_time", "last_update_time", "experiment_id"],
            "experiments",
        )
        .map_err(|e| Error::Invalid(e.message))?;
        let mut all = self.db.read(|tx| {
            let rows = tx.query(
                &format!(
                    "SELECT {EXP_COLS} FROM experiments r WHERE 1 = 1{}",
                    view.sql("r.lifecycle_stage")
                ),
                &[],
            )?;
            rows.iter()
                .map(|r| experiment_row(tx, r))
                .collect::<Result<Vec<_>>>()
        })?;
        let attr = |e: &Experiment, k: &str| -> Option<String> {
            match k {
                "name" => Some(e.name.clone()),
                "creation_time" => Some(e.creation_time.to_string()),
                "last_update_time" => Some(e.last_update_time.to_string()),
                "experiment_id" | "id" => Some(e.id.clone()),
                "lifecycle_stage" => Some(e.lifecycle_stage.clone()),
                _ => None,
            }
        };
        all.retain(|e| filter::matches_object(&conds, |k| attr(e, k), &e.tags));
        all.sort_by(|a, b| {
            for o in &orders {
                let key = |e: &Experiment| match o.kind {
                    Kind::Tag => e.tags.get(&o.key).cloned(),
                    _ => attr(e, &o.key),
                };
                let (x, y) = (key(a), key(b));
                let ord = match (
                    x.as_deref().and_then(|s| s.parse::<i64>().ok()),
                    y.as_deref().and_then(|s| s.parse::<i64>().ok()),
                ) {
                    (Some(p), Some(q)) => p.cmp(&q),
                    _ => x.cmp(&y),
                };
                let ord = if o.ascending { ord } else { ord.reverse() };
                if ord.is_ne() {
                    return ord;
                }
            }
            if orders.is_empty() {
                b.creation_time.cmp(&a.creation_time).then_with(|| {
                    b.id.parse::<i64>()
                        .unwrap_or(0)
                        .cmp(&a.id.parse::<i64>().unwrap_or(0))
                })
            } else {
                a.id.cmp(&b.id)
            }
        });
        page(all, max_results.min(50_000), page_token)
    }

    pub fn rename_experiment(&self, id: &str, new_name: &str) -> Result<()> {
        if new_name.trim().is_empty() {
            return Err(Error::Invalid(
                "The experiment name must be a non-empty string.".into(),
            ));
        }
        self.db.write(|tx| {
            let e = get_experiment(tx, id)?;
            if e.lifecycle_stage != "active" {
                return Err(Error::Conflict(format!(
                    "Cannot rename a non-active experiment {id}."
                )));
            }
            if let Some(r) = tx.query_opt(
                "SELECT id FROM experiments WHERE name = $1",
                &vals![new_name],
            )? {
                if r.int(0)?.to_string() != id {
                    return Err(Error::AlreadyExists(format!(
                        "Experiment '{new_name}' already exists."
                    )));
                }
            }
            tx.exec(
                "UPDATE experiments SET name = $2, last_update_time = $3 WHERE id = $1",
                &vals![parse_exp_id(id)?, new_name, now_ms()],
            )?;
            Ok(())
        })
    }

    /// Soft-deletes (or restores) an experiment and its runs.
    pub fn set_experiment_deleted(&self, id: &str, deleted: bool) -> Result<()> {
        self.db.write(|tx| {
            let e = get_experiment(tx, id)?;
            let (from, to) = if deleted {
                ("active", "deleted")
            } else {
                ("deleted", "active")
            };
            if id == "0" && deleted {
                return Err(Error::Conflict("Cannot delete the default experiment '0'.".into()));
            }
            if e.lifecycle_stage != from {
                return Err(Error::Conflict(format!(
                    "Cannot {} experiment {id}: it is {}.",
                    if deleted { "delete" } else { "restore" },
                    e.lifecycle_stage
                )));
            }
            let n = parse_exp_id(id)?;
            let at = now_ms();
            tx.exec(
                "UPDATE experiments SET lifecycle_stage = $2, last_update_time = $3 WHERE id = $1",
                &vals![n, to, at],
            )?;
            tx.exec(
                "UPDATE runs SET lifecycle_stage = $2, deleted_time = $3 WHERE experiment_id = $1 AND lifecycle_stage = $4",
                &vals![n, to, if deleted { Some(at) } else { None }, from],
            )?;
            Ok(())
        })
    }

    /// Sets (`Some`) or deletes (`None`) an experiment tag.
    pub fn set_experiment_tag(&self, id: &str, key: &str, value: Option<&str>) -> Result<()> {
        check_key("tag", key)?;
        if let Some(v) = value {
            check_value("tag", key, v, limits::TAG_VALUE)?;
        }
        self.db.write(|tx| {
            let e = get_experiment(tx, id)?;
            if e.lifecycle_stage != "active" {
                return Err(Error::Conflict(format!(
                    "The experiment {id} must be in the 'active' state."
                )));
            }
            let n = parse_exp_id(id)?;
            match value {
                Some(v) => tx.exec(
                    "INSERT INTO experiment_tags (experiment_id, key, value) VALUES ($1, $2, $3) ON CONFLICT (experiment_id, key) DO UPDATE SET value = excluded.value",
                    &vals![n, key, v],
                )?,
                None => tx.exec(
                    "DELETE FROM experiment_tags WHERE experiment_id = $1 AND key = $2",
                    &vals![n, key],
                )?,
            };
            Ok(())
        })
    }

    // ----- runs -----

    pub fn create_run(&self, new: &NewRun) -> Result<Run> {
        for (k, v) in &new.tags {
            check_key("tag", k)?;
            check_value("tag", k, v, limits::TAG_VALUE)?;
        }
        let run_id = new_id();
        let id = run_id.clone();
        self.db.write(|tx| {
            let exp = get_experiment(tx, &new.experiment_id)?;
            if exp.lifecycle_stage != "active" {
                return Err(Error::Conflict(format!(
                    "The experiment {} must be in the 'active' state. Current state is {}.",
                    exp.id, exp.lifecycle_stage
                )));
            }
            let tag_name = new
                .tags
                .iter()
                .find(|(k, _)| k == "mlflow.runName")
                .map(|(_, v)| v.clone());
            let name = new
                .run_name
                .clone()
                .filter(|n| !n.is_empty())
                .or(tag_name)
                .unwrap_or_else(|| run_name_for(&id));
            let start = new.start_time.unwrap_or_else(now_ms);
            let artifact_uri = format!(
                "{}/{id}/artifacts",
                exp.artifact_location.trim_end_matches('/')
            );
            tx.exec(
                "INSERT INTO runs (run_id, experiment_id, name, user_id, status, start_time, end_time, lifecycle_stage, artifact_uri) VALUES ($1, $2, $3, $4, 'RUNNING', $5, NULL, 'active', $6)",
                &vals![id.as_str(), parse_exp_id(&exp.id)?, name.as_str(), new.user_id.as_str(), start, artifact_uri],
            )?;
            for (k, v) in &new.tags {
                insert_tag(tx, &id, k, v)?;
            }
            insert_tag(tx, &id, "mlflow.runName", &name)?;
            if !new.user_id.is_empty() && !new.tags.iter().any(|(k, _)| k == "mlflow.user") {
                insert_tag(tx, &id, "mlflow.user", &new.user_id)?;
            }
            Ok(())
        })?;
        self.run(&run_id)
    }

    pub fn run(&self, run_id: &str) -> Result<Run> {
        self.db.read(|tx| {
            let mut runs = load_runs(tx, &[run_id.to_string()])?;
            runs.pop()
                .ok_or_else(|| not_found(&format!("Run '{run_id}' not found")))
        })
    }

    pub fn update_run(
        &self,
        run_id: &str,
        status: Option<&str>,
        end_time: Option<i64>,
        run_name: Option<&str>,
    ) -> Result<RunInfo> {
        if let Some(s) = status {
            if !matches!(
                s,
                "RUNNING" | "SCHEDULED" | "FINISHED" | "FAILED" | "KILLED"
            ) {
                return Err(Error::Invalid(format!(
                    "invalid run status {s:?}: expected RUNNING, SCHEDULED, FINISHED, FAILED or KILLED"
                )));
            }
        }
        self.db.write(|tx| {
            active_run(tx, run_id)?;
            if let Some(s) = status {
                tx.exec(
                    "UPDATE runs SET status = $2 WHERE run_id = $1",
                    &vals![run_id, s],
                )?;
            }
            if let Some(t) = end_time {
                tx.exec(
                    "UPDATE runs SET end_time = $2 WHERE run_id = $1",
                    &vals![run_id, t],
                )?;
            }
            if let Some(n) = run_name.filter(|n| !n.is_empty()) {
                insert_tag(tx, run_id, "mlflow.runName", n)?;
            }
            run_info(tx, run_id)
        })
    }

    pub fn set_run_deleted(&self, run_id: &str, deleted: bool) -> Result<()> {
        self.db.write(|tx| {
            let info = run_info(tx, run_id)?;
            let at = deleted.then(now_ms);
            if !deleted && info.lifecycle_stage == "deleted" {
                let exp = get_experiment(tx, &info.experiment_id)?;
                if exp.lifecycle_stage != "active" {
                    return Err(Error::Conflict(format!(
                        "Cannot restore run {run_id}: its experiment {} is deleted.",
                        exp.id
                    )));
                }
            }
            tx.exec(
                "UPDATE runs SET lifecycle_stage = $2, deleted_time = $3 WHERE run_id = $1",
                &vals![run_id, if deleted { "deleted" } else { "active" }, at],
            )?;
            Ok(())
        })
    }

    /// Params, metrics and tags in one transaction, checked first against MLflow's limits.
    pub fn log_batch(
        &self,
        run_id: &str,
        metrics: &[Metric],
        params: &[(String, String)],
        tags: &[(String, String)],
    ) -> Result<()> {
        if metrics.len() > limits::BATCH_METRICS {
            return Err(Error::Invalid(format!(
                "A batch logging request can contain at most {} metrics. Got {} metrics.",
                limits::BATCH_METRICS,
                metrics.len()
            )));
        }
        for (what, n) in [("params", params.len()), ("tags", tags.len())] {
            if n > limits::BATCH_PARAMS_TAGS {
                return Err(Error::Invalid(format!(
                    "A batch logging request can contain at most {} {what}. Got {n} {what}.",
                    limits::BATCH_PARAMS_TAGS,
                )));
            }
        }
        if metrics.len() + params.len() + tags.len() > limits::BATCH_ENTITIES {
            return Err(Error::Invalid(format!(
                "A batch logging request can contain at most {} entities.",
                limits::BATCH_ENTITIES
            )));
        }
        for m in metrics {
            check_key("metric", &m.key)?;
        }
        let mut seen = BTreeMap::new();
        for (k, v) in params {
            check_key("param", k)?;
            check_value("param", k, v, limits::PARAM_VALUE)?;
            if let Some(old) = seen.insert(k.as_str(), v.as_str()) {
                if old != v {
                    return Err(Error::Conflict(format!(
                        "Duplicate parameter keys have been submitted: '{k}' with different values"
                    )));
                }
            }
        }
        for (k, v) in tags {
            check_key("tag", k)?;
            check_value("tag", k, v, limits::TAG_VALUE)?;
        }
        self.db.write(|tx| {
            active_run(tx, run_id)?;
            for (k, v) in params {
                insert_param(tx, run_id, k, v)?;
            }
            for (k, v) in tags {
                insert_tag(tx, run_id, k, v)?;
            }
            insert_metrics(tx, run_id, metrics)?;
            Ok(())
        })
    }

    pub fn delete_run_tag(&self, run_id: &str, key: &str) -> Result<()> {
        self.db.write(|tx| {
            active_run(tx, run_id)?;
            let n = tx.exec(
                "DELETE FROM run_tags WHERE run_id = $1 AND key = $2",
                &vals![run_id, key],
            )?;
            if n == 0 {
                return Err(not_found(&format!(
                    "No tag with name: {key} in run with id {run_id}"
                )));
            }
            Ok(())
        })
    }

    pub fn log_inputs(&self, run_id: &str, inputs: &[DatasetInput]) -> Result<()> {
        for i in inputs {
            if i.dataset.name.is_empty() || i.dataset.digest.is_empty() {
                return Err(Error::Invalid("a dataset needs a name and a digest".into()));
            }
        }
        self.db.write(|tx| {
            let info = active_run(tx, run_id)?;
            let exp = parse_exp_id(&info.experiment_id)?;
            for i in inputs {
                let d = &i.dataset;
                tx.exec(
                    "INSERT INTO datasets (experiment_id, name, digest, source_type, source, schema_json, profile) VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (experiment_id, name, digest) DO NOTHING",
                    &vals![exp, d.name.as_str(), d.digest.as_str(), d.source_type.as_str(), d.source.as_str(), d.schema.clone(), d.profile.clone()],
                )?;
                let context = i
                    .tags
                    .iter()
                    .find(|(k, _)| k == "mlflow.data.context")
                    .map(|(_, v)| v.clone());
                let tags = serde_json::to_string(&i.tags).unwrap_or_else(|_| "[]".into());
                tx.exec(
                    "INSERT INTO run_inputs (run_id, name, digest, context, tags, experiment_id) VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (run_id, name, digest) DO UPDATE SET context = excluded.context, tags = excluded.tags",
                    &vals![run_id, d.name.as_str(), d.digest.as_str(), context, tags, exp],
                )?;
            }
            Ok(())
        })
    }

    pub fn log_outputs(&self, run_id: &str, models: &[(String, i64)]) -> Result<()> {
        self.db.write(|tx| {
            active_run(tx, run_id)?;
            for (model_id, step) in models {
                logged_model_row(tx, model_id)?;
                tx.exec(
                    "INSERT INTO run_outputs (run_id, model_id, step) VALUES ($1, $2, $3) ON CONFLICT (run_id, model_id) DO UPDATE SET step = excluded.step",
                    &vals![run_id, model_id.as_str(), *step],
                )?;
            }
            Ok(())
        })
    }

    /// A metric's history ordered by step then time, a page at a time.
    pub fn metric_history(
        &self,
        run_id: &str,
        key: &str,
        max_results: usize,
        page_token: Option<&str>,
    ) -> Result<(Vec<Metric>, Option<String>)> {
        let offset = page_offset(page_token)?;
        let max = if max_results == 0 {
            limits::HISTORY_PAGE
        } else {
            max_results.min(limits::HISTORY_PAGE)
        };
        self.db.read(|tx| {
            run_info(tx, run_id)?;
            let rows = tx.query(
                "SELECT key, value, is_nan, timestamp, step, model_id, dataset_name, dataset_digest FROM metrics WHERE run_id = $1 AND key = $2 ORDER BY step, timestamp, id LIMIT $3 OFFSET $4",
                &vals![run_id, key, (max + 1) as i64, offset as i64],
            )?;
            let mut out = rows
                .iter()
                .map(|r| metric_row(r, 0))
                .collect::<Result<Vec<_>>>()?;
            let next = (out.len() > max).then(|| next_token(offset + max));
            out.truncate(max);
            for m in &mut out {
                m.run_id = Some(run_id.to_string());
            }
            Ok((out, next))
        })
    }

    /// Runs of some experiments by filter and order, a page at a time.
    pub fn search_runs(&self, s: &RunSearch) -> Result<(Vec<Run>, Option<String>)> {
        let conds = filter::parse(&s.filter).map_err(|e| Error::Invalid(e.to_string()))?;
        let orders = s
            .order_by
            .iter()
            .map(|o| filter::parse_order(o).map_err(|e| Error::Invalid(e.to_string())))
            .collect::<Result<Vec<_>>>()?;
        let offset = page_offset(s.page_token.as_deref())?;
        let max = if s.max_results == 0 {
            1000
        } else if s.max_results > limits::RUNS_PAGE {
            return Err(Error::Invalid(format!(
                "Invalid value {} for parameter 'max_results' supplied. It must be at most {}.",
                s.max_results,
                limits::RUNS_PAGE
            )));
        } else {
            s.max_results
        };
        for o in &orders {
            if o.kind == Kind::Dataset {
                return Err(Error::Invalid("runs cannot be ordered by datasets".into()));
            }
            if o.kind == Kind::Attribute {
                run_attribute(&o.key)?;
            }
        }
        let mut exp_ids = Vec::new();
        for e in &s.experiment_ids {
            let Ok(n) = e.parse::<i64>() else {
                return Ok((Vec::new(), None));
            };
            exp_ids.push(n);
        }
        if exp_ids.is_empty() {
            return Ok((Vec::new(), None));
        }
        // Ordered first by a metric, param or tag, the runs that have it are read in the order of
        // that key's index and the scan stops at the page (a search over 100,000 runs reads a few
        // hundred rows, not every run); those without it follow, as they sort last.
        let keyed = orders
            .first()
            .is_some_and(|o| matches!(o.kind, Kind::Metric | Kind::Param | Kind::Tag));
        let query = |part: Part, limit: usize, offset: usize| -> Result<(String, Vec<Value>)> {
            run_search_sql(&exp_ids, s.view, &conds, &orders, part, limit, offset)
        };
        self.db.read(|tx| {
            let want = max + 1;
            let ids: Vec<String> = if keyed {
                let (sql, params) = query(Part::HavingFirstKey, want, offset)?;
                let mut ids = run_ids(tx, &sql, &params)?;
                if ids.len() < want {
                    // Past the runs that have the key: how many there are decides where the page
                    // starts among the others.
                    let before = if !ids.is_empty() || offset == 0 {
                        offset + ids.len()
                    } else {
                        let (sql, params) = query(Part::HavingFirstKey, 0, 0)?;
                        let counted = format!("SELECT COUNT(*) FROM ({sql}) counted");
                        tx.query_one(&counted, &params)?.int(0)? as usize
                    };
                    let (sql, params) = query(
                        Part::MissingFirstKey,
                        want - ids.len(),
                        offset.saturating_sub(before),
                    )?;
                    ids.extend(run_ids(tx, &sql, &params)?);
                }
                ids
            } else {
                let (sql, params) = query(Part::All, want, offset)?;
                run_ids(tx, &sql, &params)?
            };
            let mut ids = ids;
            let next = (ids.len() > max).then(|| next_token(offset + max));
            ids.truncate(max);
            Ok((load_runs(tx, &ids)?, next))
        })
    }

    // ----- logged models -----

    pub fn create_logged_model(
        &self,
        experiment_id: &str,
        name: Option<&str>,
        source_run_id: Option<&str>,
        model_type: Option<&str>,
        params: &[(String, String)],
        tags: &[(String, String)],
    ) -> Result<LoggedModel> {
        let model_id = format!("m-{}", new_id());
        let name = name
            .filter(|n| !n.is_empty())
            .map_or_else(|| run_name_for(&model_id[2..]), str::to_string);
        self.db.write(|tx| {
            let exp = get_experiment(tx, experiment_id)?;
            if let Some(r) = source_run_id {
                run_info(tx, r)?;
            }
            let at = now_ms();
            let uri = format!(
                "{}/models/{model_id}/artifacts",
                exp.artifact_location.trim_end_matches('/')
            );
            tx.exec(
                "INSERT INTO logged_models (model_id, experiment_id, name, source_run_id, status, status_message, model_type, artifact_uri, creation_time, last_updated_time, lifecycle_stage) VALUES ($1, $2, $3, $4, 'LOGGED_MODEL_PENDING', NULL, $5, $6, $7, $7, 'active')",
                &vals![model_id.as_str(), parse_exp_id(experiment_id)?, name.as_str(), source_run_id, model_type, uri, at],
            )?;
            for (k, v) in params {
                tx.exec(
                    "INSERT INTO logged_model_params (model_id, key, value) VALUES ($1, $2, $3) ON CONFLICT (model_id, key) DO UPDATE SET value = excluded.value",
                    &vals![model_id.as_str(), k, v],
                )?;
            }
            for (k, v) in tags {
                tx.exec(
                    "INSERT INTO logged_model_tags (model_id, key, value) VALUES ($1, $2, $3) ON CONFLICT (model_id, key) DO UPDATE SET value = excluded.value",
                    &vals![model_id.as_str(), k, v],
                )?;
            }
            load_logged_model(tx, &model_id)
        })
    }

    pub fn logged_model(&self, model_id: &str) -> Result<LoggedModel> {
        self.db.read(|tx| load_logged_model(tx, model_id))
    }

    pub fn finalize_logged_model(&self, model_id: &str, status: &str) -> Result<LoggedModel> {
        if !matches!(
            status,
            "LOGGED_MODEL_READY" | "LOGGED_MODEL_UPLOAD_FAILED" | "LOGGED_MODEL_PENDING"
        ) {
            return Err(Error::Invalid(format!(
                "invalid logged model status {status:?}: expected LOGGED_MODEL_READY or LOGGED_MODEL_UPLOAD_FAILED"
            )));
        }
        self.db.write(|tx| {
            logged_model_row(tx, model_id)?;
            tx.exec(
                "UPDATE logged_models SET status = $2, last_updated_time = $3 WHERE model_id = $1",
                &vals![model_id, status, now_ms()],
            )?;
            load_logged_model(tx, model_id)
        })
    }

    /// Sets tags (`Some`) or deletes one (`None`) on a logged model.
    pub fn set_logged_model_tags(
        &self,
        model_id: &str,
        tags: &[(String, Option<String>)],
    ) -> Result<()> {
        for (k, v) in tags {
            check_key("tag", k)?;
            if let Some(v) = v {
                check_value("tag", k, v, limits::TAG_VALUE)?;
            }
        }
        self.db.write(|tx| {
            logged_model_row(tx, model_id)?;
            for (k, v) in tags {
                match v {
                    Some(v) => tx.exec(
                        "INSERT INTO logged_model_tags (model_id, key, value) VALUES ($1, $2, $3) ON CONFLICT (model_id, key) DO UPDATE SET value = excluded.value",
                        &vals![model_id, k, v],
                    )?,
                    None => tx.exec(
                        "DELETE FROM logged_model_tags WHERE model_id = $1 AND key = $2",
                        &vals![model_id, k],
                    )?,
                };
            }
            tx.exec(
                "UPDATE logged_models SET last_updated_time = $2 WHERE model_id = $1",
                &vals![model_id, now_ms()],
            )?;
            Ok(())
        })
    }

    pub fn log_logged_model_params(
        &self,
        model_id: &str,
        params: &[(String, String)],
    ) -> Result<()> {
        self.db.write(|tx| {
            logged_model_row(tx, model_id)?;
            for (k, v) in params {
                tx.exec(
                    "INSERT INTO logged_model_params (model_id, key, value) VALUES ($1, $2, $3) ON CONFLICT (model_id, key) DO UPDATE SET value = excluded.value",
                    &vals![model_id, k, v],
                )?;
            }
            Ok(())
        })
    }

    pub fn delete_logged_model(&self, model_id: &str) -> Result<()> {
        self.db.write(|tx| {
            logged_model_row(tx, model_id)?;
            tx.exec(
                "UPDATE logged_models SET lifecycle_stage = 'deleted', last_updated_time = $2 WHERE model_id = $1",
                &vals![model_id, now_ms()],
            )?;
            Ok(())
        })
    }

    /// Logged models of some experiments; the filter reads `name`, `model_id`, `status`,
    /// `source_run_id`, `creation_time`, `tags.…`, `params.…`.
    pub fn search_logged_models(
        &self,
        experiment_ids: &[String],
        filter_text: &str,
        max_results: usize,
        page_token: Option<&str>,
    ) -> Result<(Vec<LoggedModel>, Option<String>)> {
        let conds = filter::parse(filter_text).map_err(|e| Error::Invalid(e.to_string()))?;
        let max = if max_results == 0 {
            100
        } else {
            max_results.min(10_000)
        };
        let test = |m: &LoggedModel, c: &Cond| {
            let v = match c.kind {
                Kind::Tag => m.tags.get(&c.key).cloned(),
                Kind::Param => m.params.get(&c.key).cloned(),
                Kind::Metric => m
                    .metrics
                    .iter()
                    .find(|x| x.key == c.key)
                    .map(|x| x.value.to_string()),
                _ => match c.key.as_str() {
                    "name" => Some(m.name.clone()),
                    "model_id" => Some(m.model_id.clone()),
                    "status" => Some(m.status.clone()),
                    "source_run_id" => m.source_run_id.clone(),
                    "creation_time" | "creation_timestamp" => Some(m.creation_time.to_string()),
                    "model_type" => m.model_type.clone(),
                    _ => None,
                },
            };
            filter::matches_text(v.as_deref(), c.op, &c.value)
        };
        let (on_row, on_data): (Vec<&Cond>, Vec<&Cond>) = conds
            .iter()
            .partition(|c| matches!(c.kind, Kind::Attribute | Kind::Dataset));
        let found = self.db.read(|tx| {
            let mut out = Vec::new();
            for e in experiment_ids {
                let Ok(n) = e.parse::<i64>() else { continue };
                let rows = tx.query(
                    &format!("SELECT {LOGGED_MODEL_COLS} FROM logged_models WHERE experiment_id = $1 AND lifecycle_stage = 'active' ORDER BY creation_time DESC, model_id"),
                    &vals![n],
                )?;
                // The row's own fields decide first (`name = 'model'`, what the client sends);
                // params, tags and metrics are read only for the models that pass.
                for r in &rows {
                    let mut m = logged_model_row_of(r)?;
                    if !on_row.iter().all(|c| test(&m, c)) {
                        continue;
                    }
                    logged_model_data(tx, &mut m)?;
                    if on_data.iter().all(|c| test(&m, c)) {
                        out.push(m);
                    }
                }
            }
            Ok(out)
        })?;
        page(found, max, page_token)
    }

    /// How many runs each experiment holds, and when the last one started (for listings).
    pub fn experiment_activity(&self) -> Result<BTreeMap<String, (u64, Option<i64>)>> {
        self.db.read(|tx| {
            tx.query(
                "SELECT experiment_id, COUNT(*), MAX(start_time) FROM runs WHERE lifecycle_stage = 'active' GROUP BY experiment_id",
                &[],
            )?
            .iter()
            .map(|r| Ok((r.int(0)?.to_string(), (r.int(1)? as u64, r.opt_int(2)?))))
            .collect()
        })
    }
}

fn logged_model_row(tx: &mut dyn Tx, model_id: &str) -> Result<()> {
    if tx.lock("logged_models", "model_id", model_id.into())? {
        Ok(())
    } else {
        Err(not_found(&format!(
            "Logged model with ID '{model_id}' not found."
        )))
    }
}

const LOGGED_MODEL_COLS: &str = "model_id, experiment_id, name, source_run_id, status, status_message, model_type, artifact_uri, creation_time, last_updated_time";

/// A logged model's own row, without its params, tags and metrics.
fn logged_model_row_of(r: &Row) -> Result<LoggedModel> {
    Ok(LoggedModel {
        model_id: r.text(0)?,
        experiment_id: r.int(1)?.to_string(),
        name: r.text(2)?,
        source_run_id: r.opt_text(3)?,
        status: r.text(4)?,
        status_message: r.opt_text(5)?,
        model_type: r.opt_text(6)?,
        artifact_uri: r.text(7)?,
        creation_time: r.int(8)?,
        last_updated_time: r.int(9)?,
        params: BTreeMap::new(),
        tags: BTreeMap::new(),
        metrics: Vec::new(),
    })
}

/// Reads a logged model's params, tags and linked metrics.
fn logged_model_data(tx: &mut dyn Tx, m: &mut LoggedModel) -> Result<()> {
    let id = m.model_id.clone();
    let mut kv = |table: &str| -> Result<BTreeMap<String, String>> {
        tx.query(
            &format!("SELECT key, value FROM {table} WHERE model_id = $1"),
            &vals![id.as_str()],
        )?
        .iter()
        .map(|r| Ok((r.text(0)?, r.text(1)?)))
        .collect()
    };
    m.params = kv("logged_model_params")?;
    m.tags = kv("logged_model_tags")?;
    m.metrics = tx
        .query(
            "SELECT key, value, is_nan, timestamp, step, model_id, dataset_name, dataset_digest, run_id FROM metrics WHERE model_id = $1 ORDER BY key, step, timestamp",
            &vals![id.as_str()],
        )?
        .iter()
        .map(|r| {
            let mut x = metric_row(r, 0)?;
            x.run_id = r.opt_text(8)?;
            Ok(x)
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(())
}

fn load_logged_model(tx: &mut dyn Tx, model_id: &str) -> Result<LoggedModel> {
    let Some(r) = tx.query_opt(
        &format!("SELECT {LOGGED_MODEL_COLS} FROM logged_models WHERE model_id = $1"),
        &vals![model_id],
    )?
    else {
        return Err(not_found(&format!(
            "Logged model with ID '{model_id}' not found."
        )));
    };
    let mut m = logged_model_row_of(&r)?;
    logged_model_data(tx, &mut m)?;
    Ok(m)
}
