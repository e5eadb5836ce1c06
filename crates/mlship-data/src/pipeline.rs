//! Pipelines: `dvc.yaml` stages run in DAG order, skipped when their command, deps and params
//! match `dvc.lock`, restored from DVC's run cache when a combination was run before, and
//! recorded in `dvc.lock` and the run cache as `dvc repro` records them, so either tool finds the
//! other's work done.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use serde_yaml_ng::{Mapping, Value};
use sha2::Digest;

use crate::dvcfile::scalar;
use crate::error::{Error, Result, io};
use crate::repo::{Repo, write_atomic};

/// What a stage's output is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OutSpec {
    pub path: String,
    pub cache: bool,
    pub persist: bool,
    /// Listed under `metrics` (`mlship metrics show|diff` read it).
    pub metric: bool,
}

/// A parameter file and the keys a stage reads from it (`None`: the whole file).
#[derive(Clone, Debug, PartialEq)]
pub struct ParamSpec {
    pub file: String,
    pub keys: Option<Vec<String>>,
}

/// One stage of `dvc.yaml`.
#[derive(Clone, Debug, PartialEq)]
pub struct Stage {
    pub name: String,
    /// As written: a string or a list of strings.
    pub cmd: Value,
    /// Relative to the repository root ("" for the root).
    pub wdir: String,
    /// As written (relative to `wdir`).
    pub deps: Vec<String>,
    pub outs: Vec<OutSpec>,
    pub params: Vec<ParamSpec>,
    pub frozen: bool,
    pub always_changed: bool,
}

impl Stage {
    /// A path of the stage (relative to its `wdir`) relative to the root.
    pub fn rooted(&self, p: &str) -> String {
        if self.wdir.is_empty() {
            p.to_string()
        } else {
            format!("{}/{p}", self.wdir)
        }
    }

    fn commands(&self) -> Vec<String> {
        match &self.cmd {
            Value::String(s) => vec![s.clone()],
            Value::Sequence(v) => v
                .iter()
                .filter_map(|x| x.as_str().map(str::to_string))
                .collect(),
            _ => Vec::new(),
        }
    }

    /// Whether DVC's run cache applies: a command, a dep, an out, nothing persisted or always run.
    fn run_cacheable(&self) -> bool {
        !self.commands().is_empty()
            && !self.deps.is_empty()
            && !self.outs.is_empty()
            && !self.outs.iter().any(|o| o.persist)
            && !self.always_changed
    }
}

fn bad(field: String) -> Error {
    Error::Parse {
        path: PathBuf::from("dvc.yaml"),
        message: field,
    }
}

/// Reads `dvc.yaml` at the repository's root, in stage order.
pub fn load(repo: &Repo) -> Result<Vec<Stage>> {
    let p = repo.root.join("dvc.yaml");
    let text = std::fs::read_to_string(&p).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => {
            Error::Invalid("no dvc.yaml at the repository's root".into())
        }
        _ => Error::Io {
            path: p.clone(),
            source: e,
        },
    })?;
    // params.yaml is the templates' default context, as DVC makes it.
    let base = match std::fs::read_to_string(repo.root.join("params.yaml")) {
        Ok(t) => serde_yaml_ng::from_str::<Value>(&t)
            .ok()
            .and_then(|v| v.as_mapping().cloned())
            .unwrap_or_default(),
        Err(_) => Mapping::new(),
    };
    parse_in(&text, base, &repo.root)
}

/// Parses `dvc.yaml`'s text with no variables but its own `vars`.
pub fn parse(text: &str) -> Result<Vec<Stage>> {
    parse_in(text, Mapping::new(), Path::new("."))
}

/// A value of the template context at a dotted path (`item.a`, `models.small`, `list.0`).
fn lookup<'a>(ctx: &'a Mapping, path: &str) -> Option<&'a Value> {
    let mut parts = path.split('.');
    let mut v = ctx.get(parts.next()?)?;
    for p in parts {
        v = match v {
            Value::Mapping(m) => m.get(p)?,
            Value::Sequence(s) => s.get(p.parse::<usize>().ok()?)?,
            _ => return None,
        };
    }
    Some(v)
}

/// Fills `${…}` in every string of `v`: a string that is one whole `${x}` takes `x`'s value (with
/// its type), others get the values' text.
fn template(v: &Value, ctx: &Mapping, stage: &str) -> Result<Value> {
    Ok(match v {
        Value::String(s) if s.contains("${") => {
            let t = s.trim();
            if t.starts_with("${") && t.ends_with('}') && t.matches("${").count() == 1 {
                let key = t[2..t.len() - 1].trim();
                return lookup(ctx, key)
                    .cloned()
                    .ok_or_else(|| bad(format!("stage '{stage}': ${{{key}}} does not resolve")));
            }
            let mut out = String::new();
            let mut rest = s.as_str();
            while let Some(i) = rest.find("${") {
                out.push_str(&rest[..i]);
                let end = rest[i..]
                    .find('}')
                    .ok_or_else(|| bad(format!("stage '{stage}': an unclosed ${{ in {s:?}")))?
                    + i;
                let key = rest[i + 2..end].trim();
                let val = lookup(ctx, key)
                    .ok_or_else(|| bad(format!("stage '{stage}': ${{{key}}} does not resolve")))?;
                out.push_str(&plain_text(val));
                rest = &rest[end + 1..];
            }
            out.push_str(rest);
            Value::String(out)
        }
        Value::Sequence(items) => Value::Sequence(
            items
                .iter()
                .map(|x| template(x, ctx, stage))
                .collect::<Result<_>>()?,
        ),
        Value::Mapping(m) => Value::Mapping(
            m.iter()
                .map(|(k, x)| Ok((template(k, ctx, stage)?, template(x, ctx, stage)?)))
                .collect::<Result<_>>()?,
        ),
        other => other.clone(),
    })
}

/// A value's text as it reads: a string as it is, anything else as YAML writes it.
fn plain_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => scalar_text(other),
    }
}

/// A scalar's text as DVC puts it in a generated stage name.
fn name_part(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(_) | Value::Bool(_) => Some(scalar_text(v)),
        _ => None,
    }
}

/// The stages `dvc.yaml` defines, `foreach` and `matrix` expanded as DVC names them
/// (`name@item`, `name@key`, `name@index` for lists of collections, `name@a-b` for a matrix).
fn expand(name: &str, body: &Value, ctx: &Mapping) -> Result<Vec<(String, Value)>> {
    let with = |extra: &[(&str, Value)]| {
        let mut c = ctx.clone();
        for (k, v) in extra {
            c.insert(Value::String((*k).to_string()), v.clone());
        }
        c
    };
    if let Some(each) = body.get("foreach") {
        let each = template(each, ctx, name)?;
        let body = body
            .get("do")
            .ok_or_else(|| bad(format!("stage '{name}': foreach without `do`")))?;
        let mut out = Vec::new();
        match &each {
            Value::Sequence(items) => {
                for (i, item) in items.iter().enumerate() {
                    let suffix = name_part(item).unwrap_or_else(|| i.to_string());
                    let c = with(&[("item", item.clone())]);
                    out.push((format!("{name}@{suffix}"), template(body, &c, name)?));
                }
            }
            Value::Mapping(m) => {
                for (k, item) in m {
                    let key = name_part(k).unwrap_or_default();
                    let c = with(&[("key", k.clone()), ("item", item.clone())]);
                    out.push((format!("{name}@{key}"), template(body, &c, name)?));
                }
            }
            _ => {
                return Err(bad(format!(
                    "stage '{name}'.foreach: expected a list or a mapping"
                )));
            }
        }
        return Ok(out);
    }
    if let Some(matrix) = body.get("matrix").and_then(Value::as_mapping) {
        let mut combos: Vec<Vec<(Value, Value)>> = vec![Vec::new()];
        for (k, values) in matrix {
            let values = template(values, ctx, name)?;
            let values = values
                .as_sequence()
                .ok_or_else(|| bad(format!("stage '{name}'.matrix: each entry is a list")))?
                .clone();
            combos = combos
                .into_iter()
                .flat_map(|c| {
                    values.iter().map(move |v| {
                        let mut c2 = c.clone();
                        c2.push((k.clone(), v.clone()));
                        c2
                    })
                })
                .collect();
        }
        let mut rest = body.as_mapping().cloned().unwrap_or_default();
        rest.remove("matrix");
        let rest = Value::Mapping(rest);
        let mut out = Vec::new();
        for combo in combos {
            let parts: Vec<String> = combo
                .iter()
                .map(|(_, v)| name_part(v).unwrap_or_default())
                .collect();
            let item: Mapping = combo.into_iter().collect();
            let c = with(&[("item", Value::Mapping(item))]);
            out.push((
                format!("{name}@{}", parts.join("-")),
                template(&rest, &c, name)?,
            ));
        }
        return Ok(out);
    }
    Ok(vec![(name.to_string(), template(body, ctx, name)?)])
}

/// Parses `dvc.yaml`'s text with `base` (params.yaml) and its `vars` as the template context.
fn parse_in(text: &str, base: Mapping, dir: &Path) -> Result<Vec<Stage>> {
    let doc: Value = serde_yaml_ng::from_str(text).map_err(|e| bad(format!("not YAML: {e}")))?;
    let mut ctx = base;
    for v in doc
        .get("vars")
        .and_then(Value::as_sequence)
        .into_iter()
        .flatten()
    {
        let more = match v {
            Value::Mapping(m) => m.clone(),
            Value::String(file) => {
                let p = dir.join(file);
                let t = std::fs::read_to_string(&p).map_err(io(&p))?;
                serde_yaml_ng::from_str::<Value>(&t)
                    .ok()
                    .and_then(|x| x.as_mapping().cloned())
                    .ok_or_else(|| bad(format!("vars: {file} is not a YAML mapping")))?
            }
            _ => return Err(bad("vars: expected mappings or files".into())),
        };
        for (k, x) in more {
            ctx.insert(k, x);
        }
    }
    let stages = doc
        .get("stages")
        .and_then(Value::as_mapping)
        .ok_or_else(|| bad("no `stages` mapping".into()))?;
    let mut expanded = Vec::new();
    for (name, body) in stages {
        let name = name
            .as_str()
            .ok_or_else(|| bad("a stage name is not text".into()))?;
        expanded.extend(expand(name, body, &ctx)?);
    }
    let mut out = Vec::new();
    for (name, s) in &expanded {
        let name = name.clone();
        let field = |k: &str| s.get(k);
        let cmd = field("cmd")
            .cloned()
            .ok_or_else(|| bad(format!("stage '{name}': no `cmd`")))?;
        match &cmd {
            Value::String(_) => {}
            Value::Sequence(v) if v.iter().all(Value::is_string) && !v.is_empty() => {}
            _ => {
                return Err(bad(format!(
                    "stage '{name}'.cmd: expected a command or a list of commands"
                )));
            }
        }
        let wdir = match field("wdir") {
            None | Some(Value::Null) => String::new(),
            Some(Value::String(w)) => {
                let w = w.trim_end_matches('/').trim_start_matches("./");
                if w == "." {
                    String::new()
                } else {
                    w.to_string()
                }
            }
            Some(_) => return Err(bad(format!("stage '{name}'.wdir: expected a folder"))),
        };
        let paths = |k: &str| -> Result<Vec<(String, Option<Mapping>)>> {
            let Some(v) = field(k) else {
                return Ok(Vec::new());
            };
            let list = v
                .as_sequence()
                .ok_or_else(|| bad(format!("stage '{name}'.{k}: expected a list")))?;
            list.iter()
                .map(|e| match e {
                    Value::String(p) => Ok((p.clone(), None)),
                    Value::Mapping(m) if m.len() == 1 => {
                        let (k2, v2) = m.iter().next().expect("one entry");
                        let p = k2.as_str().ok_or_else(|| {
                            bad(format!("stage '{name}'.{k}: a path is not text"))
                        })?;
                        Ok((p.to_string(), v2.as_mapping().cloned()))
                    }
                    _ => Err(bad(format!("stage '{name}'.{k}: expected paths"))),
                })
                .collect()
        };
        let deps: Vec<String> = paths("deps")?.into_iter().map(|(p, _)| p).collect();
        let mut outs = Vec::new();
        for (kind, default_cache) in [("outs", true), ("metrics", true), ("plots", true)] {
            for (p, opts) in paths(kind)? {
                let flag = |k: &str, d: bool| {
                    opts.as_ref()
                        .and_then(|m| m.get(k))
                        .and_then(Value::as_bool)
                        .unwrap_or(d)
                };
                outs.push(OutSpec {
                    path: p,
                    cache: flag("cache", default_cache),
                    persist: flag("persist", false),
                    metric: kind == "metrics",
                });
            }
        }
        let mut params = Vec::new();
        if let Some(v) = field("params") {
            let list = v
                .as_sequence()
                .ok_or_else(|| bad(format!("stage '{name}'.params: expected a list")))?;
            let mut default = Vec::new();
            for e in list {
                match e {
                    Value::String(k) => default.push(k.clone()),
                    Value::Mapping(m) => {
                        for (f, keys) in m {
                            let f = f.as_str().ok_or_else(|| {
                                bad(format!("stage '{name}'.params: a file is not text"))
                            })?;
                            let keys = match keys {
                                Value::Null => None,
                                Value::Sequence(ks) if ks.is_empty() => None,
                                Value::Sequence(ks) => Some(
                                    ks.iter()
                                        .map(|k| {
                                            k.as_str().map(str::to_string).ok_or_else(|| {
                                                bad(format!(
                                                    "stage '{name}'.params.{f}: keys are text"
                                                ))
                                            })
                                        })
                                        .collect::<Result<Vec<_>>>()?,
                                ),
                                _ => {
                                    return Err(bad(format!(
                                        "stage '{name}'.params.{f}: expected a list of keys"
                                    )));
                                }
                            };
                            params.push(ParamSpec {
                                file: f.to_string(),
                                keys,
                            });
                        }
                    }
                    _ => {
                        return Err(bad(format!(
                            "stage '{name}'.params: expected keys or files"
                        )));
                    }
                }
            }
            if !default.is_empty() {
                params.insert(
                    0,
                    ParamSpec {
                        file: "params.yaml".into(),
                        keys: Some(default),
                    },
                );
            }
        }
        let flag = |k: &str| field(k).and_then(Value::as_bool).unwrap_or(false);
        out.push(Stage {
            name,
            cmd,
            wdir,
            deps,
            outs,
            params,
            frozen: flag("frozen"),
            always_changed: flag("always_changed"),
        });
    }
    check_graph(&out)?;
    Ok(out)
}

/// Whether one path is the other or inside it.
fn overlaps(a: &str, b: &str) -> bool {
    a == b || a.starts_with(&format!("{b}/")) || b.starts_with(&format!("{a}/"))
}

/// Refuses an output claimed by two stages, and cycles.
fn check_graph(stages: &[Stage]) -> Result<()> {
    for (i, a) in stages.iter().enumerate() {
        for b in &stages[i + 1..] {
            for oa in &a.outs {
                for ob in &b.outs {
                    if overlaps(&a.rooted(&oa.path), &b.rooted(&ob.path)) {
                        return Err(bad(format!(
                            "the output '{}' of stage '{}' overlaps the output '{}' of stage '{}'",
                            oa.path, a.name, ob.path, b.name
                        )));
                    }
                }
            }
        }
    }
    order(stages, None).map(|_| ())
}

/// The stages each stage needs (whose outputs its deps read).
fn upstream(stages: &[Stage]) -> Vec<Vec<usize>> {
    stages
        .iter()
        .map(|s| {
            stages
                .iter()
                .enumerate()
                .filter(|(_, t)| {
                    t.name != s.name
                        && s.deps.iter().any(|d| {
                            t.outs
                                .iter()
                                .any(|o| overlaps(&s.rooted(d), &t.rooted(&o.path)))
                        })
                })
                .map(|(j, _)| j)
                .collect()
        })
        .collect()
}

/// YAML values, as metrics and params files hold them.
pub use serde_yaml_ng::Value as Yaml;

/// The leaves of a metrics or params file's text (JSON or YAML).
pub fn parse_leaves(text: &str) -> std::result::Result<Vec<(String, Value)>, String> {
    let v: Value = serde_yaml_ng::from_str(text).map_err(|e| e.to_string())?;
    Ok(flatten(&v))
}

/// A number's difference as `metrics diff` prints it.
pub fn change(old: &Value, new: &Value) -> Option<String> {
    Some(scalar_text(&Value::from(new.as_f64()? - old.as_f64()?)))
}

/// A metrics or params document's leaves as dotted keys (`train.lr`), in file order; lists are
/// leaves.
pub fn flatten(v: &Value) -> Vec<(String, Value)> {
    fn walk(prefix: &str, v: &Value, out: &mut Vec<(String, Value)>) {
        match v {
            Value::Mapping(m) => {
                for (k, x) in m {
                    let k = match k {
                        Value::String(s) => s.clone(),
                        other => scalar_text(other),
                    };
                    let key = if prefix.is_empty() {
                        k
                    } else {
                        format!("{prefix}.{k}")
                    };
                    walk(&key, x, out);
                }
            }
            other => out.push((prefix.to_string(), other.clone())),
        }
    }
    let mut out = Vec::new();
    walk("", v, &mut out);
    out
}

/// A leaf as `metrics show` prints it.
pub fn show_value(v: &Value) -> String {
    scalar_text(v)
}

/// The metrics files of the pipeline and the params files its stages read (root-relative).
pub fn metric_and_param_files(stages: &[Stage]) -> (Vec<String>, Vec<String>) {
    let mut metrics = Vec::new();
    let mut params = Vec::new();
    for s in stages {
        for o in s.outs.iter().filter(|o| o.metric) {
            metrics.push(s.rooted(&o.path));
        }
        for p in &s.params {
            params.push(s.rooted(&p.file));
        }
    }
    metrics.sort();
    metrics.dedup();
    params.sort();
    params.dedup();
    (metrics, params)
}

/// What a tracking server is told about a stage that ran: its command, the params it read, the
/// md5 of each dep (from `dvc.lock`), and the numbers of its metrics files.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct StageRecord {
    pub cmd: String,
    pub params: Vec<(String, String)>,
    pub deps: Vec<(String, String)>,
    pub metrics: Vec<(String, f64)>,
}

/// A stage's record, from `dvc.lock` and its metrics files (`stages` as [`load`] gives them).
pub fn stage_record(repo: &Repo, stages: &[Stage], stage: &str) -> Result<StageRecord> {
    let lock = read_lock(&repo.root)?;
    let entry = lock
        .iter()
        .find(|(n, _)| n == stage)
        .map(|(_, e)| e.clone())
        .ok_or_else(|| Error::Invalid(format!("dvc.lock has no stage '{stage}'")))?;
    let cmd = match entry.get("cmd") {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Sequence(v)) => v
            .iter()
            .filter_map(Value::as_str)
            .collect::<Vec<_>>()
            .join(" && "),
        _ => String::new(),
    };
    let mut params = Vec::new();
    if let Some(files) = entry.get("params").and_then(Value::as_mapping) {
        for (_, keys) in files {
            for (k, v) in flatten(keys) {
                params.push((k, plain_text(&v)));
            }
        }
    }
    let deps = entry
        .get("deps")
        .and_then(Value::as_sequence)
        .into_iter()
        .flatten()
        .filter_map(|d| {
            Some((
                d.get("path")?.as_str()?.to_string(),
                d.get("md5")?.as_str()?.to_string(),
            ))
        })
        .collect();
    let mut metrics = Vec::new();
    if let Some(st) = stages.iter().find(|s| s.name == stage) {
        for o in st.outs.iter().filter(|o| o.metric) {
            let Ok(text) = std::fs::read_to_string(repo.root.join(st.rooted(&o.path))) else {
                continue;
            };
            for (k, v) in parse_leaves(&text).unwrap_or_default() {
                if let Some(x) = v.as_f64() {
                    metrics.push((k, x));
                }
            }
        }
    }
    Ok(StageRecord {
        cmd,
        params,
        deps,
        metrics,
    })
}

/// The names of the stages each stage needs, by stage index.
pub fn upstream_names(stages: &[Stage]) -> Vec<Vec<String>> {
    upstream(stages)
        .into_iter()
        .map(|ups| ups.into_iter().map(|j| stages[j].name.clone()).collect())
        .collect()
}

/// Run order: upstream first, `dvc.yaml` order among equals; only `target` and what it needs
/// when given. A cycle is refused, naming its stages.
pub fn order(stages: &[Stage], target: Option<&str>) -> Result<Vec<usize>> {
    let up = upstream(stages);
    let mut state = vec![0u8; stages.len()]; // 0 new, 1 visiting, 2 done
    let mut out = Vec::new();
    fn visit(
        i: usize,
        up: &[Vec<usize>],
        st: &mut [u8],
        out: &mut Vec<usize>,
        stages: &[Stage],
        path: &mut Vec<usize>,
    ) -> Result<()> {
        match st[i] {
            2 => return Ok(()),
            1 => {
                let names: Vec<&str> = path.iter().map(|&j| stages[j].name.as_str()).collect();
                return Err(bad(format!(
                    "a cycle: {} -> {}",
                    names.join(" -> "),
                    stages[i].name
                )));
            }
            _ => {}
        }
        st[i] = 1;
        path.push(i);
        for &j in &up[i] {
            visit(j, up, st, out, stages, path)?;
        }
        path.pop();
        st[i] = 2;
        out.push(i);
        Ok(())
    }
    let roots: Vec<usize> = match target {
        Some(t) => vec![
            stages
                .iter()
                .position(|s| s.name == t)
                .ok_or_else(|| Error::Invalid(format!("no stage named '{t}' in dvc.yaml")))?,
        ],
        None => (0..stages.len()).collect(),
    };
    for r in roots {
        visit(r, &up, &mut state, &mut out, stages, &mut Vec::new())?;
    }
    Ok(out)
}

/// The graph as Graphviz text (`dvc dag --dot`) or Mermaid.
pub fn dag(stages: &[Stage], mermaid: bool) -> String {
    let up = upstream(stages);
    let mut s = String::new();
    if mermaid {
        s.push_str("flowchart TD\n");
        for (i, st) in stages.iter().enumerate() {
            s.push_str(&format!("    node{i}[\"{}\"]\n", st.name.replace('"', "'")));
        }
        for (i, ups) in up.iter().enumerate() {
            for j in ups {
                s.push_str(&format!("    node{j} --> node{i}\n"));
            }
        }
    } else {
        s.push_str("strict digraph {\n");
        for st in stages {
            s.push_str(&format!("\"{}\";\n", st.name));
        }
        for (i, ups) in up.iter().enumerate() {
            for &j in ups {
                s.push_str(&format!(
                    "\"{}\" -> \"{}\";\n",
                    stages[j].name, stages[i].name
                ));
            }
        }
        s.push_str("}\n");
    }
    s
}

/// A parameter file read once per run.
struct ParamFiles {
    root: PathBuf,
    cache: HashMap<String, Value>,
}

impl ParamFiles {
    fn get(&mut self, file: &str) -> Result<&Value> {
        if !self.cache.contains_key(file) {
            let p = self.root.join(file);
            let text = std::fs::read_to_string(&p).map_err(io(&p))?;
            let v: Value = serde_yaml_ng::from_str(&text).map_err(|e| Error::Parse {
                path: p.clone(),
                message: format!("not YAML: {e}"),
            })?;
            self.cache.insert(file.to_string(), v);
        }
        Ok(&self.cache[file])
    }
}

/// The `params` of a lock entry: each file's keys with their current values.
fn param_values(stage: &Stage, files: &mut ParamFiles) -> Result<Mapping> {
    let mut specs = stage.params.clone();
    // params.yaml first, the others alphabetically, as DVC writes them.
    specs.sort_by(|a, b| {
        (a.file != "params.yaml", &a.file).cmp(&(b.file != "params.yaml", &b.file))
    });
    let mut out = Mapping::new();
    for spec in specs {
        let file = stage.rooted(&spec.file);
        let doc = files.get(&file)?.clone();
        let mut m = Mapping::new();
        match &spec.keys {
            None => {
                if let Some(all) = doc.as_mapping() {
                    m = all.clone();
                }
            }
            Some(keys) => {
                let mut sorted = keys.clone();
                sorted.sort();
                for k in sorted {
                    let mut v = &doc;
                    for part in k.split('.') {
                        v = v.get(part).ok_or_else(|| {
                            Error::Invalid(format!(
                                "stage '{}': the param '{k}' is not in {file}",
                                stage.name
                            ))
                        })?;
                    }
                    m.insert(Value::String(k.clone()), v.clone());
                }
            }
        }
        out.insert(Value::String(spec.file.clone()), Value::Mapping(m));
    }
    Ok(out)
}

fn path_entry(path: &str, h: &crate::repo::Hashed) -> Value {
    let mut m = Mapping::new();
    m.insert("path".into(), path.into());
    m.insert("hash".into(), "md5".into());
    m.insert("md5".into(), h.md5.clone().into());
    m.insert("size".into(), Value::Number(h.size.into()));
    if let Some(n) = h.nfiles {
        m.insert("nfiles".into(), Value::Number(n.into()));
    }
    if h.isexec {
        m.insert("isexec".into(), true.into());
    }
    Value::Mapping(m)
}

/// Drops `size` and `nfiles` at every depth, as DVC does before hashing an entry.
fn filtered(v: &Value) -> Value {
    match v {
        Value::Mapping(m) => Value::Mapping(
            m.iter()
                .filter(|(k, _)| !matches!(k.as_str(), Some("size" | "nfiles")))
                .map(|(k, x)| (k.clone(), filtered(x)))
                .collect(),
        ),
        Value::Sequence(s) => Value::Sequence(s.iter().map(filtered).collect()),
        other => other.clone(),
    }
}

fn sha256_hex(s: &str) -> String {
    hex::encode(sha2::Sha256::digest(s.as_bytes()))
}

/// DVC's run-cache key (the entry with outs as paths) and value (the whole entry).
fn run_cache_names(entry: &Value) -> (String, String) {
    let mut keyed = entry.clone();
    if let Some(m) = keyed.as_mapping_mut() {
        if let Some(Value::Sequence(outs)) = m.get("outs").cloned() {
            let paths: Vec<Value> = outs.iter().filter_map(|o| o.get("path").cloned()).collect();
            m.insert("outs".into(), Value::Sequence(paths));
        }
    }
    (
        sha256_hex(&crate::pyjson::dumps(&filtered(&keyed))),
        sha256_hex(&crate::pyjson::dumps(&filtered(entry))),
    )
}

/// An entry with its lists sorted by path, for comparing entries whatever order they were written in.
fn normalised(entry: &Value) -> String {
    let mut e = filtered(entry);
    if let Some(m) = e.as_mapping_mut() {
        for k in ["deps", "outs"] {
            if let Some(Value::Sequence(list)) = m.get_mut(k) {
                list.sort_by_key(|x| {
                    x.get("path")
                        .and_then(Value::as_str)
                        .unwrap_or("")
                        .to_string()
                });
                for x in list.iter_mut() {
                    if let Some(xm) = x.as_mapping_mut() {
                        xm.remove("isexec");
                    }
                }
            }
        }
    }
    crate::pyjson::dumps(&e)
}

/// The YAML text of a value in ruamel's block style at `indent` (mappings' values on the next
/// line when they are collections; sequences at their key's column).
fn emit(v: &Value, indent: usize, out: &mut String) {
    let pad = " ".repeat(indent);
    match v {
        Value::Mapping(m) => {
            for (k, x) in m {
                let key = match k {
                    Value::String(s) => scalar(s),
                    other => scalar_text(other),
                };
                match x {
                    Value::Mapping(xm) if !xm.is_empty() => {
                        out.push_str(&format!("{pad}{key}:\n"));
                        emit(x, indent + 2, out);
                    }
                    Value::Sequence(xs) if !xs.is_empty() => {
                        out.push_str(&format!("{pad}{key}:\n"));
                        emit(x, indent, out);
                    }
                    other => out.push_str(&format!("{pad}{key}: {}\n", scalar_text(other))),
                }
            }
        }
        Value::Sequence(items) => {
            for x in items {
                match x {
                    Value::Mapping(xm) if !xm.is_empty() => {
                        let mut inner = String::new();
                        emit(x, indent + 2, &mut inner);
                        let inner = inner.replacen(&format!("{pad}  "), &format!("{pad}- "), 1);
                        out.push_str(&inner);
                    }
                    Value::Sequence(xs) if !xs.is_empty() => {
                        out.push_str(&format!("{pad}-\n"));
                        emit(x, indent + 2, out);
                    }
                    other => out.push_str(&format!("{pad}- {}\n", scalar_text(other))),
                }
            }
        }
        other => out.push_str(&format!("{pad}{}\n", scalar_text(other))),
    }
}

fn scalar_text(v: &Value) -> String {
    match v {
        Value::Null => "null".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => match (n.as_i64(), n.as_u64()) {
            (Some(i), _) => i.to_string(),
            (_, Some(u)) => u.to_string(),
            _ => crate::pyjson::float_repr(n.as_f64().unwrap_or(f64::NAN)),
        },
        Value::String(s) => scalar(s),
        Value::Mapping(m) if m.is_empty() => "{}".into(),
        Value::Sequence(s) if s.is_empty() => "[]".into(),
        Value::Tagged(t) => scalar_text(&t.value),
        other => serde_yaml_ng::to_string(other)
            .unwrap_or_default()
            .trim()
            .to_string(),
    }
}

/// `dvc.lock`'s text for the entries of these stages, in this order.
pub fn render_lock(entries: &[(String, Value)]) -> String {
    let mut s = String::from("schema: '2.0'\nstages:\n");
    for (name, e) in entries {
        s.push_str(&format!("  {}:\n", scalar(name)));
        emit(e, 4, &mut s);
    }
    s
}

/// What happened to a stage.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    Unchanged,
    Frozen,
    Restored,
    Ran,
}

/// What `run` tells as it goes.
pub trait Reporter {
    fn stage(&mut self, name: &str, outcome: &Outcome);
    /// A stage is about to run its commands.
    fn running(&mut self, name: &str, commands: &[String]);
}

/// The outputs `dvc.lock` records, as tracked outputs (`dvc.lock` their file): push, pull,
/// checkout and gc treat them as DVC does. An output `dvc.yaml` marks `cache: false` is tracked
/// but never cached or pushed.
pub fn locked_outputs(repo: &Repo) -> Result<Vec<crate::Tracked>> {
    let lock = read_lock(&repo.root)?;
    if lock.is_empty() {
        return Ok(Vec::new());
    }
    let stages = load(repo).unwrap_or_default();
    let mut out = Vec::new();
    for (name, entry) in &lock {
        let stage = stages.iter().find(|s| &s.name == name);
        let wdir = stage.map(|s| s.wdir.clone()).unwrap_or_default();
        for o in entry
            .get("outs")
            .and_then(Value::as_sequence)
            .into_iter()
            .flatten()
        {
            let (Some(path), Some(md5)) = (
                o.get("path").and_then(Value::as_str),
                o.get("md5").and_then(Value::as_str),
            ) else {
                continue;
            };
            if !crate::objects::is_object_name(md5) {
                continue;
            }
            let cache = stage
                .and_then(|s| s.outs.iter().find(|x| x.path == path))
                .is_none_or(|x| x.cache);
            let rooted = if wdir.is_empty() {
                path.to_string()
            } else {
                format!("{wdir}/{path}")
            };
            out.push(crate::Tracked {
                dvcfile: "dvc.lock".into(),
                path: rooted,
                out: crate::dvcfile::Out {
                    path: path.to_string(),
                    md5: Some(md5.to_string()),
                    size: o.get("size").and_then(Value::as_u64),
                    nfiles: o.get("nfiles").and_then(Value::as_u64),
                    isexec: o.get("isexec").and_then(Value::as_bool).unwrap_or(false),
                    cache,
                    push: true,
                    remote: None,
                },
            });
        }
    }
    Ok(out)
}

/// Reads `dvc.lock` (no file: no entries).
fn read_lock(root: &Path) -> Result<Vec<(String, Value)>> {
    let p = root.join("dvc.lock");
    let text = match std::fs::read_to_string(&p) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(Error::Io { path: p, source: e }),
    };
    let doc: Value = serde_yaml_ng::from_str(&text).map_err(|e| Error::Parse {
        path: p.clone(),
        message: format!("not YAML: {e}"),
    })?;
    if doc.get("schema").and_then(Value::as_str) != Some("2.0") {
        return Err(Error::Parse {
            path: p,
            message: "schema must be '2.0' (a string)".into(),
        });
    }
    Ok(doc
        .get("stages")
        .and_then(Value::as_mapping)
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| k.as_str().map(|k| (k.to_string(), v.clone())))
                .collect()
        })
        .unwrap_or_default())
}

/// Runs the pipeline (or `target` and what it needs): each stage whose command, deps, params or
/// outputs differ from `dvc.lock` is restored from the run cache if that combination ran before,
/// else run; `dvc.lock` is rewritten only when an entry changed. A failing command stops the run
/// with its exit code; earlier stages' outputs and lock entries stay.
pub fn run(
    repo: &Repo,
    target: Option<&str>,
    force: bool,
    jobs: usize,
    report: &mut dyn Reporter,
) -> Result<()> {
    let stages = load(repo)?;
    let order = order(&stages, target)?;
    let mut lock: Vec<(String, Value)> = read_lock(&repo.root)?;
    let mut files = ParamFiles {
        root: repo.root.clone(),
        cache: HashMap::new(),
    };
    // Everything a stage reads must exist or come from an earlier stage, checked before any runs.
    let produced: HashSet<String> = stages
        .iter()
        .flat_map(|s| s.outs.iter().map(|o| s.rooted(&o.path)).collect::<Vec<_>>())
        .collect();
    for &i in &order {
        let s = &stages[i];
        for d in &s.deps {
            let p = s.rooted(d);
            if !repo.root.join(&p).exists() && !produced.iter().any(|o| overlaps(o, &p)) {
                return Err(Error::Invalid(format!(
                    "stage '{}': the dep '{d}' does not exist and no stage makes it",
                    s.name
                )));
            }
        }
        param_values(s, &mut files)?;
    }
    let mut changed_any = false;
    for &i in &order {
        let s = &stages[i];
        let old = lock
            .iter()
            .find(|(n, _)| *n == s.name)
            .map(|(_, e)| e.clone());
        if s.frozen {
            report.stage(&s.name, &Outcome::Frozen);
            continue;
        }
        let mut files = ParamFiles {
            root: repo.root.clone(),
            cache: HashMap::new(),
        };
        let params = param_values(s, &mut files)?;
        let mut deps = Vec::new();
        let mut sorted_deps = s.deps.clone();
        sorted_deps.sort();
        for d in &sorted_deps {
            let h = repo.hash_path(&s.rooted(d), false, jobs)?.ok_or_else(|| {
                Error::Invalid(format!("stage '{}': the dep '{d}' does not exist", s.name))
            })?;
            deps.push(path_entry(d, &h));
        }
        let head = |outs: Option<Vec<Value>>| {
            let mut e = Mapping::new();
            e.insert("cmd".into(), s.cmd.clone());
            if !deps.is_empty() {
                e.insert("deps".into(), Value::Sequence(deps.clone()));
            }
            if !params.is_empty() {
                e.insert("params".into(), Value::Mapping(params.clone()));
            }
            if let Some(o) = outs {
                e.insert("outs".into(), Value::Sequence(o));
            }
            Value::Mapping(e)
        };
        let mut sorted_outs = s.outs.clone();
        sorted_outs.sort_by(|a, b| a.path.cmp(&b.path));
        let current_outs = || -> Result<Option<Vec<Value>>> {
            let mut v = Vec::new();
            for o in &sorted_outs {
                match repo.hash_path(&s.rooted(&o.path), false, jobs)? {
                    Some(h) => v.push(path_entry(&o.path, &h)),
                    None => return Ok(None),
                }
            }
            Ok(Some(v))
        };
        if !force && !s.always_changed {
            if let (Some(old), Some(outs)) = (&old, current_outs()?) {
                if normalised(old) == normalised(&head(Some(outs))) {
                    report.stage(&s.name, &Outcome::Unchanged);
                    continue;
                }
            }
        }
        // The run cache: the same command, deps and params seen before.
        let (key, _) = run_cache_names(&head(Some(
            sorted_outs
                .iter()
                .map(|o| {
                    let mut m = Mapping::new();
                    m.insert("path".into(), o.path.clone().into());
                    Value::Mapping(m)
                })
                .collect(),
        )));
        let runs = repo.cache().root().join("runs").join(&key[..2]).join(&key);
        if !force && s.run_cacheable() {
            if let Some(entry) = newest_entry(&runs)? {
                let outs = entry
                    .get("outs")
                    .and_then(Value::as_sequence)
                    .cloned()
                    .unwrap_or_default();
                let whole = outs.iter().all(|o| {
                    o.get("md5")
                        .and_then(Value::as_str)
                        .is_some_and(|m| repo.cached(m).unwrap_or(false))
                });
                if whole && !outs.is_empty() {
                    for o in &outs {
                        let path = o.get("path").and_then(Value::as_str).unwrap_or("");
                        let md5 = o.get("md5").and_then(Value::as_str).unwrap_or("");
                        let exec = o.get("isexec").and_then(Value::as_bool).unwrap_or(false);
                        repo.restore(&s.rooted(path), md5, exec)?;
                    }
                    set_entry(&mut lock, &s.name, entry);
                    changed_any = true;
                    for o in s.outs.iter().filter(|o| o.cache) {
                        repo.ignore_in_git(&s.rooted(&o.path))?;
                    }
                    report.stage(&s.name, &Outcome::Restored);
                    continue;
                }
            }
        }
        // Run it: outputs go first (unless persisted), then each command in the stage's folder.
        for o in &s.outs {
            let p = repo.root.join(s.rooted(&o.path));
            if o.persist {
                continue;
            }
            if p.is_dir() {
                std::fs::remove_dir_all(&p).map_err(io(&p))?;
            } else if p.exists() {
                std::fs::remove_file(&p).map_err(io(&p))?;
            }
        }
        let wdir = repo.root.join(&s.wdir);
        let commands = s.commands();
        report.running(&s.name, &commands);
        for c in commands {
            let status = std::process::Command::new("sh")
                .args(["-c", &c])
                .current_dir(&wdir)
                .status()
                .map_err(io(&wdir))?;
            if !status.success() {
                // What finished before stays recorded.
                if changed_any {
                    write_lock(repo, &stages, &lock)?;
                }
                return Err(Error::StageFailed {
                    stage: s.name.clone(),
                    code: status.code(),
                });
            }
        }
        let mut outs = Vec::new();
        for o in &sorted_outs {
            // Every output is committed to the cache, `cache: false` ones too (the run cache
            // restores them, as DVC's does).
            let h = repo
                .hash_path(&s.rooted(&o.path), true, jobs)?
                .ok_or_else(|| {
                    Error::Invalid(format!(
                        "stage '{}' did not make its output '{}'",
                        s.name, o.path
                    ))
                })?;
            outs.push(path_entry(&o.path, &h));
        }
        let entry = head(Some(outs));
        if s.run_cacheable() {
            let (_, value) = run_cache_names(&entry);
            let mut text = String::new();
            emit(&entry, 0, &mut text);
            let dest = runs.join(&value);
            if !dest.exists() {
                write_atomic(&dest, text.as_bytes())?;
            }
        }
        for o in s.outs.iter().filter(|o| o.cache) {
            repo.ignore_in_git(&s.rooted(&o.path))?;
        }
        set_entry(&mut lock, &s.name, entry);
        changed_any = true;
        write_lock(repo, &stages, &lock)?;
        report.stage(&s.name, &Outcome::Ran);
    }
    if changed_any {
        write_lock(repo, &stages, &lock)?;
    }
    repo.lock_state().save()?;
    Ok(())
}

fn set_entry(lock: &mut Vec<(String, Value)>, name: &str, entry: Value) {
    match lock.iter_mut().find(|(n, _)| n == name) {
        Some(e) => e.1 = entry,
        None => lock.push((name.to_string(), entry)),
    }
}

/// Writes `dvc.lock` with the stages in `dvc.yaml`'s order (entries of stages no longer there
/// are dropped), only when its meaning changed.
fn write_lock(repo: &Repo, stages: &[Stage], lock: &[(String, Value)]) -> Result<()> {
    let ordered: Vec<(String, Value)> = stages
        .iter()
        .filter_map(|s| lock.iter().find(|(n, _)| *n == s.name).cloned())
        .collect();
    let old = read_lock(&repo.root).unwrap_or_default();
    let same = old.len() == ordered.len()
        && old.iter().all(|(n, e)| {
            ordered
                .iter()
                .any(|(m, f)| m == n && normalised(e) == normalised(f))
        });
    if same {
        return Ok(());
    }
    write_atomic(
        &repo.root.join("dvc.lock"),
        render_lock(&ordered).as_bytes(),
    )
}

/// The newest run-cache entry in a key's folder (DVC takes the newest by mtime).
fn newest_entry(dir: &Path) -> Result<Option<Value>> {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return Ok(None);
    };
    let mut best: Option<(std::time::SystemTime, PathBuf)> = None;
    for e in rd.flatten() {
        let name = e.file_name().to_string_lossy().to_string();
        if name.starts_with('.') {
            continue;
        }
        let t = e
            .metadata()
            .and_then(|m| m.modified())
            .unwrap_or(std::time::UNIX_EPOCH);
        if best.as_ref().is_none_or(|(b, _)| t > *b) {
            best = Some((t, e.path()));
        }
    }
    let Some((_, p)) = best else { return Ok(None) };
    let text = std::fs::read_to_string(&p).map_err(io(&p))?;
    Ok(serde_yaml_ng::from_str(&text).ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    const YAML: &str = "stages:\n  prepare:\n    cmd: python3 src/prepare.py\n    deps:\n    - src/prepare.py\n    - data/raw.csv\n    params:\n    - prepare.split\n    - prepare.seed\n    outs:\n    - data/prepared\n  train:\n    cmd: python3 src/train.py\n    deps:\n    - src/train.py\n    - data/prepared\n    params:\n    - train\n    outs:\n    - model.json\n  evaluate:\n    cmd: python3 src/evaluate.py\n    deps:\n    - src/evaluate.py\n    - model.json\n    - data/prepared/test.csv\n    params:\n    - evaluate.threshold\n    metrics:\n    - metrics.json:\n        cache: false\n    plots:\n    - plots/pred.csv:\n        x: x\n        y: pred\n";

    #[test]
    fn the_notes_pipeline_parses_and_orders() {
        let s = parse(YAML).unwrap();
        assert_eq!(s.len(), 3);
        assert_eq!(order(&s, None).unwrap(), [0, 1, 2]);
        assert_eq!(order(&s, Some("train")).unwrap(), [0, 1]);
        assert!(!s[2].outs[0].cache);
        assert!(dag(&s, false).contains("\"prepare\" -> \"evaluate\";"));
    }

    #[test]
    fn the_run_cache_key_of_the_notes_train_stage() {
        // The key material recorded from DVC in the notes.
        let entry: Value = serde_yaml_ng::from_str("cmd: python3 src/train.py\ndeps:\n- path: data/prepared\n  hash: md5\n  md5: aec23ef125a5d1b6932448fb474884f3.dir\n  size: 2208\n  nfiles: 2\n- path: src/train.py\n  hash: md5\n  md5: f1dd21e32d5355f69151ceb2d0ef8a00\n  size: 432\nparams:\n  params.yaml:\n    train:\n      lr: 0.1\n      epochs: 10\nouts:\n- path: model.json\n  hash: md5\n  md5: 4eff38ab4dfbbe28f13b998dda2ba4d7\n  size: 51\n").unwrap();
        let mut keyed = entry.clone();
        keyed
            .as_mapping_mut()
            .unwrap()
            .insert("outs".into(), Value::Sequence(vec!["model.json".into()]));
        assert_eq!(
            crate::pyjson::dumps(&filtered(&keyed)),
            r#"{"cmd": "python3 src/train.py", "deps": [{"hash": "md5", "md5": "aec23ef125a5d1b6932448fb474884f3.dir", "path": "data/prepared"}, {"hash": "md5", "md5": "f1dd21e32d5355f69151ceb2d0ef8a00", "path": "src/train.py"}], "outs": ["model.json"], "params": {"params.yaml": {"train": {"epochs": 10, "lr": 0.1}}}}"#
        );
        let mut text = String::new();
        emit(&entry, 0, &mut text);
        assert!(
            text.starts_with(
                "cmd: python3 src/train.py\ndeps:\n- path: data/prepared\n  hash: md5\n"
            ),
            "{text}"
        );
        assert!(
            text.contains("params:\n  params.yaml:\n    train:\n      lr: 0.1\n      epochs: 10\n"),
            "{text}"
        );
    }

    #[test]
    fn bad_pipelines_are_refused_naming_the_stage() {
        for (y, needle) in [
            ("stages:\n  a:\n    deps: [x]\n", "no `cmd`"),
            (
                "stages:\n  a:\n    cmd: x\n    outs: [o]\n  b:\n    cmd: y\n    outs: [o]\n",
                "overlaps",
            ),
            (
                "stages:\n  a:\n    cmd: x\n    deps: [b.out]\n    outs: [a.out]\n  b:\n    cmd: y\n    deps: [a.out]\n    outs: [b.out]\n",
                "cycle",
            ),
            (
                "stages:\n  a:\n    foreach: [1, 2]\n",
                "foreach without `do`",
            ),
            (
                "stages:\n  a:\n    cmd: echo ${nope}\n",
                "${nope} does not resolve",
            ),
            ("nope: 1\n", "stages"),
        ] {
            let e = parse(y).unwrap_err().to_string();
            assert!(e.contains(needle), "{y}: {e}");
        }
    }
}
