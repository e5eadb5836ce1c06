//! The tracking API's request fields, one table: `/openapi.json` documents each route's fields
//! from it, and every request is checked against it before its handler runs, so the document and
//! the server cannot disagree (schemathesis holds them to it both ways).
//!
//! A field's type is what proto3 JSON and the `mlflow` client send: int64s as numbers (or, from
//! clients that print them so, strings of digits), doubles as numbers or `"NaN"`, `"Infinity"`,
//! `"-Infinity"`, optional fields as `null` too. GET requests carry the same fields as query
//! parameters. Grammars no JSON Schema states (search filters, order-by clauses) are strings with
//! a named `format`; their parsers answer for them.

use std::collections::HashMap;
use std::sync::OnceLock;

use serde_json::{Map, Value as Json, json};

use crate::api::ApiError;

/// A string rule written once as a regular expression in the syntax Rust, ECMA-262 and Python
/// read alike, checked here with `regex` and published as JSON Schema's `pattern`. Rules are
/// stated positively (no `not`): schemathesis's boundary cases do not all honour `not`.
#[derive(Debug)]
pub(crate) struct Pattern {
    /// What a valid value is, for error messages.
    pub what: &'static str,
    pub pattern: &'static str,
    /// The most characters (Unicode scalar values, as JSON Schema counts them).
    pub max: Option<usize>,
}

/// Characters a registered model's name or alias cannot hold: slashes, `@`, and what Rust calls
/// whitespace or control characters (`mlship_registry::validate_name`), as the inside of a
/// negated class.
macro_rules! not_name {
    () => {
        r"/\\@\x00-\x20\x7f-\x9f\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"
    };
}
/// An artifact path's segment: not empty, `.` or `..`; no slash, backslash or NUL.
macro_rules! artifact_segment {
    () => {
        r"[^/\\\x00.][^/\\\x00]*|\.[^/\\\x00.][^/\\\x00]*|\.\.[^/\\\x00]+"
    };
}
/// The first segment, which is also not `.tmp` (the store's own folder).
macro_rules! artifact_first {
    () => {
        r"[^/\\\x00.][^/\\\x00]*|\.[^/\\\x00.t][^/\\\x00]*|\.t|\.t[^/\\\x00m][^/\\\x00]*|\.tm|\.tm[^/\\\x00p][^/\\\x00]*|\.tmp[^/\\\x00]+|\.\.[^/\\\x00]+"
    };
}
/// A key's segment that is not `..` (it may be empty or `.`).
macro_rules! key_segment {
    () => {
        r"[^/.\x00][^/\x00]*|\.|\.[^/.\x00][^/\x00]*|\.\.[^/\x00]+"
    };
}

pub(crate) const MODEL_NAME: Pattern = Pattern {
    what: "a name of 1 to 128 characters without slashes, @, whitespace or control characters",
    pattern: concat!("^[^", not_name!(), "]+$"),
    max: Some(128),
};
/// An alias: a name with a character that is not a digit (a number would read as a version).
pub(crate) const ALIAS: Pattern = Pattern {
    what: "an alias of 1 to 128 characters without slashes, @, whitespace or control characters, and not a number",
    pattern: concat!(
        "^[^",
        not_name!(),
        "]*[^0-9",
        not_name!(),
        "][^",
        not_name!(),
        "]*$"
    ),
    max: Some(128),
};
/// Experiment names: anything with a character that is not whitespace.
pub(crate) const EXPERIMENT_NAME: Pattern = Pattern {
    what: "a name with at least one character that is not whitespace, and no NUL",
    pattern: r"^[^\x00]*[^\x00\x09-\x0d\x20\x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000][^\x00]*$",
    max: None,
};
/// Metric, param and tag keys (`tracking::check_key`): not empty, no leading `/`, no `..`
/// segment.
pub(crate) const KEY: Pattern = Pattern {
    what: "a key of 1 to 250 characters that does not start with '/' or hold a '..' segment",
    pattern: concat!("^(", key_segment!(), ")(/(|", key_segment!(), "))*$"),
    max: Some(250),
};
/// A model version number.
pub(crate) const VERSION: Pattern = Pattern {
    what: "a version number",
    pattern: "^[0-9]+$",
    max: None,
};
/// A registry stage, in any case.
pub(crate) const STAGE: Pattern = Pattern {
    what: "one of None, Staging, Production, Archived",
    pattern: "^([Nn][Oo][Nn][Ee]|[Ss][Tt][Aa][Gg][Ii][Nn][Gg]|[Pp][Rr][Oo][Dd][Uu][Cc][Tt][Ii][Oo][Nn]|[Aa][Rr][Cc][Hh][Ii][Vv][Ee][Dd])$",
    max: None,
};
/// The tokens searches hand out (`o` and an offset), or empty for the first page.
pub(crate) const PAGE_TOKEN: Pattern = Pattern {
    what: "a page token from an earlier answer",
    pattern: "^(o[0-9]{1,15})?$",
    max: None,
};
/// A file's path in the artifact store (`files::safe_path`): relative, '/'-separated, no empty,
/// `.` or `..` segment, no backslash or NUL, not in the store's `.tmp` folder.
macro_rules! artifact_path {
    () => {
        concat!("(", artifact_first!(), ")(/(", artifact_segment!(), "))*/*")
    };
}
pub(crate) const ARTIFACT_PATH: Pattern = Pattern {
    what: "a relative path without empty, '.' or '..' segments, backslashes or NUL",
    pattern: concat!("^", artifact_path!(), "$"),
    max: None,
};
/// A folder to list: a path as above, or empty for the top.
pub(crate) const ARTIFACT_DIR: Pattern = Pattern {
    what: "a relative folder path without empty, '.' or '..' segments, backslashes or NUL",
    pattern: concat!("^(", artifact_path!(), ")?$"),
    max: None,
};

/// What a field holds.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Ty {
    /// Any string.
    Text,
    /// A string of at most this many characters (param and tag values).
    Short(usize),
    /// A string matching a pattern.
    Pat(&'static Pattern),
    /// A string in a grammar its handler parses, named by `format`, or blank (a search filter).
    Format(&'static str),
    /// A string in a grammar its handler parses, named by `format` (an order-by clause).
    Clause(&'static str),
    /// One of these strings.
    OneOf(&'static [&'static str]),
    /// A whole number between the bounds (a number in a body, digits in a query).
    Count(i64, i64),
    /// An int64 (a timestamp, a step): a number, or a string of up to 18 digits.
    Long,
    /// A double: a number, a decimal string, or `"NaN"`, `"Infinity"`, `"-Infinity"`.
    Double,
    Bool,
    List(&'static Ty),
    Object(&'static [Field]),
    /// A list of objects with these fields.
    Objects(&'static [Field], Option<usize>),
}

#[derive(Clone, Copy, Debug)]
pub(crate) struct Field {
    pub name: &'static str,
    pub ty: Ty,
    pub required: bool,
}

/// A required field (a macro, not a function, so that tables of fields are constants).
macro_rules! req {
    ($name:expr, $ty:expr $(,)?) => {
        $crate::tracking::fields::Field {
            name: $name,
            ty: $ty,
            required: true,
        }
    };
}
/// An optional field.
macro_rules! opt {
    ($name:expr, $ty:expr $(,)?) => {
        $crate::tracking::fields::Field {
            name: $name,
            ty: $ty,
            required: false,
        }
    };
}
pub(crate) use {opt, req};

/// Any string but the empty one.
pub(crate) const NON_EMPTY: Pattern = Pattern {
    what: "a string that is not empty and holds no NUL",
    pattern: r"^[^\x00]+$",
    max: None,
};
/// Any string without NUL, which PostgreSQL's text cannot hold (refused on every store, so the
/// API is the same on all).
pub(crate) const TEXT: Pattern = Pattern {
    what: "a string without NUL characters",
    pattern: r"^[^\x00]*$",
    max: None,
};

/// `{key, value}` list entries: a tag's value holds up to 8,000 characters, a param's 6,000.
pub(crate) const TAG: &[Field] = &[req!("key", Ty::Pat(&KEY)), opt!("value", Ty::Short(8000))];
pub(crate) const PARAM: &[Field] = &[req!("key", Ty::Pat(&KEY)), opt!("value", Ty::Short(6000))];
/// A registry tag (models and versions).
const REGISTRY_TAG: &[Field] = &[req!("key", Ty::Pat(&KEY)), opt!("value", Ty::Short(8000))];

pub(crate) const TAGS: Field = opt!("tags", Ty::Objects(TAG, None));
pub(crate) const PARAMS: Field = opt!("params", Ty::Objects(PARAM, None));
pub(crate) const REGISTRY_TAGS: Field = opt!("tags", Ty::Objects(REGISTRY_TAG, None));
pub(crate) const METRIC: &[Field] = &[
    req!("key", Ty::Pat(&KEY)),
    req!("value", Ty::Double),
    opt!("timestamp", Ty::Long),
    opt!("step", Ty::Long),
    opt!("model_id", Ty::Text),
    opt!("dataset_name", Ty::Text),
    opt!("dataset_digest", Ty::Text),
];
/// `runs/log-metric`: the run, and a metric's fields at the top level.
pub(crate) const LOG_METRIC: &[Field] = &join::<9>(&[RUN_ID, RUN_UUID], METRIC);

/// Two lists of fields as one (`N` is their total length).
const fn join<const N: usize>(a: &[Field], b: &[Field]) -> [Field; N] {
    assert!(a.len() + b.len() == N, "N is the fields' total");
    let mut out = [RUN_UUID; N];
    let mut i = 0;
    while i < N {
        out[i] = if i < a.len() { a[i] } else { b[i - a.len()] };
        i += 1;
    }
    out
}
/// The run a request names (`run_uuid` is the older spelling, read when `run_id` is absent).
pub(crate) const RUN_ID: Field = req!("run_id", Ty::Pat(&NON_EMPTY));
pub(crate) const RUN_UUID: Field = opt!("run_uuid", Ty::Text);
pub(crate) const NAME: Field = req!("name", Ty::Pat(&MODEL_NAME));
pub(crate) const VERSION_FIELD: Field = req!("version", Ty::Pat(&VERSION));
pub(crate) const PAGE: Field = opt!("page_token", Ty::Pat(&PAGE_TOKEN));
pub(crate) const VIEW: &[&str] = &["ACTIVE_ONLY", "DELETED_ONLY", "ALL"];

/// The compiled form of every pattern, made once (read-locked on every later use).
fn compiled(p: &Pattern) -> &'static regex::Regex {
    type Cache = std::sync::RwLock<HashMap<&'static str, &'static regex::Regex>>;
    static CACHE: OnceLock<Cache> = OnceLock::new();
    let cache = CACHE.get_or_init(Default::default);
    if let Some(re) = cache
        .read()
        .unwrap_or_else(|e| e.into_inner())
        .get(p.pattern)
    {
        return re;
    }
    let mut map = cache.write().unwrap_or_else(|e| e.into_inner());
    map.entry(p.pattern).or_insert_with(|| {
        Box::leak(Box::new(
            regex::Regex::new(p.pattern).expect("the table's patterns compile"),
        ))
    })
}

impl Pattern {
    pub fn matches(&self, s: &str) -> bool {
        compiled(self).is_match(s) && self.max.is_none_or(|m| s.chars().count() <= m)
    }

    fn schema(&self) -> Json {
        let mut s = json!({"type": "string", "pattern": self.pattern});
        if let Some(m) = self.max {
            s["maxLength"] = json!(m);
        }
        s
    }
}

/// Only whitespace (as Rust's `char::is_whitespace`, which the search parsers skip), or nothing.
const BLANK: &str = r"^[\x09-\x0d\x20\x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*$";
const LONG_DIGITS: &str = "^-?[0-9]{1,18}$";
const DECIMAL: &str = r"^-?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][-+]?[0-9]+)?$";

fn decimal() -> &'static regex::Regex {
    static RE: OnceLock<regex::Regex> = OnceLock::new();
    RE.get_or_init(|| regex::Regex::new(DECIMAL).expect("compiles"))
}

impl Ty {
    /// The JSON Schema of a value in a body (`query`: of a query parameter).
    pub fn schema(&self, query: bool) -> Json {
        match self {
            Ty::Text => TEXT.schema(),
            Ty::Short(n) => json!({"type": "string", "pattern": TEXT.pattern, "maxLength": n}),
            Ty::Pat(p) => p.schema(),
            // A blank filter or clause is none.
            Ty::Format(f) => json!({"anyOf": [
                {"type": "string", "pattern": BLANK},
                {"type": "string", "format": f},
            ]}),
            // The format is the grammar the parser takes (which holds no NUL).
            Ty::Clause(f) => json!({"type": "string", "format": f}),
            Ty::OneOf(v) => json!({"type": "string", "enum": v}),
            Ty::Count(lo, hi) => json!({"type": "integer", "minimum": lo, "maximum": hi}),
            Ty::Long if query => json!({"type": "string", "pattern": LONG_DIGITS}),
            Ty::Long => json!({"anyOf": [
                {"type": "integer", "minimum": i64::MIN, "maximum": i64::MAX},
                {"type": "string", "pattern": LONG_DIGITS},
            ]}),
            Ty::Double => json!({"anyOf": [
                {"type": "number"},
                {"type": "string", "enum": ["NaN", "Infinity", "-Infinity"]},
                {"type": "string", "pattern": DECIMAL},
            ]}),
            Ty::Bool => json!({"type": "boolean"}),
            Ty::List(t) => json!({"type": "array", "items": t.schema(query)}),
            Ty::Object(fields) => object_schema(fields),
            Ty::Objects(fields, max) => {
                let mut s = json!({"type": "array", "items": object_schema(fields)});
                if let Some(m) = max {
                    s["maxItems"] = json!(m);
                }
                s
            }
        }
    }

    /// Checks a body value; the error says what was expected.
    fn check(&self, v: &Json) -> Result<(), String> {
        let expected = |what: &str| Err(format!("expected {what}"));
        match (self, v) {
            (Ty::Format(_) | Ty::Clause(_), Json::String(_)) => Ok(()),
            (Ty::Text, Json::String(s)) if TEXT.matches(s) => Ok(()),
            (Ty::Short(n), Json::String(s)) if TEXT.matches(s) && s.chars().count() <= *n => Ok(()),
            (Ty::Short(n), _) => {
                expected(&format!("a string of at most {n} characters without NUL"))
            }
            (Ty::Pat(p), Json::String(s)) if p.matches(s) => Ok(()),
            (Ty::Pat(p), _) => expected(p.what),
            (Ty::OneOf(vs), Json::String(s)) if vs.contains(&s.as_str()) => Ok(()),
            (Ty::OneOf(vs), _) => expected(&format!("one of {}", vs.join(", "))),
            (Ty::Count(lo, hi), Json::Number(n))
                if integral(n).is_some_and(|x| (*lo..=*hi).contains(&x)) =>
            {
                Ok(())
            }
            (Ty::Count(lo, hi), _) => expected(&format!("a whole number from {lo} to {hi}")),
            (Ty::Long, Json::Number(n)) if integral(n).is_some() => Ok(()),
            (Ty::Long, Json::String(s)) if long_digits(s) => Ok(()),
            (Ty::Long, _) => expected("a whole number (or a string of at most 18 digits)"),
            (Ty::Double, Json::Number(_)) => Ok(()),
            (Ty::Double, Json::String(s))
                if matches!(s.as_str(), "NaN" | "Infinity" | "-Infinity")
                    || decimal().is_match(s) =>
            {
                Ok(())
            }
            (Ty::Double, _) => expected("a number, \"NaN\", \"Infinity\" or \"-Infinity\""),
            (Ty::Bool, Json::Bool(_)) => Ok(()),
            (Ty::List(t), Json::Array(items)) => items
                .iter()
                .enumerate()
                .try_for_each(|(i, x)| t.check(x).map_err(|e| format!("item {i}: {e}"))),
            (Ty::Object(fields), Json::Object(m)) => check_object(fields, m),
            (Ty::Objects(fields, max), Json::Array(items)) => {
                if let Some(m) = max
                    && items.len() > *m
                {
                    return Err(format!("at most {m} entries, not {}", items.len()));
                }
                items.iter().enumerate().try_for_each(|(i, x)| match x {
                    Json::Object(m) => {
                        check_object(fields, m).map_err(|e| format!("item {i}: {e}"))
                    }
                    _ => Err(format!("item {i}: expected an object")),
                })
            }
            (Ty::Text, _) => expected(TEXT.what),
            (Ty::Format(_) | Ty::Clause(_), _) => expected("a string"),
            (Ty::Bool, _) => expected("true or false"),
            (Ty::List(_) | Ty::Objects(..), _) => expected("a list"),
            (Ty::Object(_), _) => expected("an object"),
        }
    }

    /// Checks a query parameter's values (a repeated key gives several), turning them into the
    /// JSON the handler reads.
    fn read_query(&self, values: Vec<String>) -> Result<Json, String> {
        if let Ty::List(t) = self {
            return values
                .into_iter()
                .map(|v| t.read_query(vec![v]))
                .collect::<Result<Vec<_>, _>>()
                .map(Json::Array);
        }
        let [v] =
            <[String; 1]>::try_from(values).map_err(|_| "given more than once".to_string())?;
        match self {
            Ty::Count(lo, hi) => match v.parse::<i64>() {
                Ok(n) if (*lo..=*hi).contains(&n) && !v.starts_with('+') => Ok(json!(n)),
                _ => Err(format!("expected a whole number from {lo} to {hi}")),
            },
            Ty::Bool => match v.as_str() {
                "true" => Ok(Json::Bool(true)),
                "false" => Ok(Json::Bool(false)),
                _ => Err("expected true or false".into()),
            },
            _ => {
                let s = Json::String(v);
                self.check(&s)?;
                Ok(s)
            }
        }
    }
}

fn integral(n: &serde_json::Number) -> Option<i64> {
    n.as_i64().or_else(|| {
        n.as_f64()
            // Strictly inside: a number just past i64's range rounds to its ends.
            .filter(|f| f.fract() == 0.0 && *f > i64::MIN as f64 && *f < i64::MAX as f64)
            .map(|f| f as i64)
    })
}

fn long_digits(s: &str) -> bool {
    let digits = s.strip_prefix('-').unwrap_or(s);
    (1..=18).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit())
}

fn object_schema(fields: &[Field]) -> Json {
    let mut props = Map::new();
    for f in fields {
        props.insert(f.name.into(), body_schema(f));
    }
    let required: Vec<&str> = fields
        .iter()
        .filter(|f| f.required)
        .map(|f| f.name)
        .collect();
    let mut s = json!({"type": "object", "properties": props});
    if !required.is_empty() {
        s["required"] = json!(required);
    }
    s
}

/// A body field's schema: an optional one may be `null` (proto3 JSON's "not set").
fn body_schema(f: &Field) -> Json {
    let s = f.ty.schema(false);
    if f.required {
        s
    } else {
        json!({"anyOf": [s, {"type": "null"}]})
    }
}

/// The first field of an object that breaks its rule: missing (or null) where required, or a
/// value of the wrong kind with why.
enum Wrong<'m> {
    Missing(&'static str),
    Invalid(&'static str, &'m Json, String),
}

fn first_wrong<'m>(fields: &[Field], m: &'m Map<String, Json>) -> Option<Wrong<'m>> {
    fields.iter().find_map(|f| match m.get(f.name) {
        None | Some(Json::Null) if f.required => Some(Wrong::Missing(f.name)),
        None | Some(Json::Null) => None,
        Some(v) => f.ty.check(v).err().map(|e| Wrong::Invalid(f.name, v, e)),
    })
}

/// A nested object's check, its failure said within the enclosing field's message.
fn check_object(fields: &[Field], m: &Map<String, Json>) -> Result<(), String> {
    match first_wrong(fields, m) {
        None => Ok(()),
        Some(Wrong::Missing(name)) => Err(format!("missing '{name}'")),
        Some(Wrong::Invalid(name, _, e)) => Err(format!("'{name}': {e}")),
    }
}

fn bad(message: String) -> ApiError {
    ApiError::bad_request(message, crate::api::Style::Mlflow)
}

fn missing(name: &str) -> ApiError {
    bad(format!("Missing value for required parameter '{name}'."))
}

/// Checks a JSON body against its fields.
pub(crate) fn check_body(fields: &[Field], m: &Map<String, Json>) -> Result<(), ApiError> {
    match first_wrong(fields, m) {
        None => Ok(()),
        Some(Wrong::Missing(name)) => Err(missing(name)),
        Some(Wrong::Invalid(name, v, e)) => Err(bad(format!(
            "Invalid value {} for parameter '{name}' supplied: {e}",
            shown(v)
        ))),
    }
}

/// Checks a query string's pairs against the fields and gathers them as the handlers read them
/// (keys the route does not know are kept as strings, as a body keeps unknown fields).
pub(crate) fn check_query(
    fields: &[Field],
    pairs: Vec<(String, String)>,
) -> Result<Map<String, Json>, ApiError> {
    let mut grouped: Vec<(String, Vec<String>)> = Vec::new();
    for (k, v) in pairs {
        match grouped.iter_mut().find(|(key, _)| *key == k) {
            Some((_, vs)) => vs.push(v),
            None => grouped.push((k, vec![v])),
        }
    }
    let mut out = Map::new();
    for (k, vs) in grouped {
        let value = match fields.iter().find(|f| f.name == k) {
            Some(f) => f.ty.read_query(vs.clone()).map_err(|e| {
                bad(format!(
                    "Invalid value {} for parameter '{k}' supplied: {e}",
                    shown(&json!(vs.join(",")))
                ))
            })?,
            None if vs.len() == 1 => Json::String(vs.into_iter().next().unwrap_or_default()),
            None => Json::Array(vs.into_iter().map(Json::String).collect()),
        };
        out.insert(k, value);
    }
    if let Some(f) = fields
        .iter()
        .find(|f| f.required && !out.contains_key(f.name))
    {
        return Err(missing(f.name));
    }
    Ok(out)
}

/// A value as an error message shows it: at most 80 characters.
fn shown(v: &Json) -> String {
    let s = v.to_string();
    match s.char_indices().nth(80) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s,
    }
}

/// An operation's request in OpenAPI: query parameters for GET, a JSON body otherwise.
pub(crate) fn document(op: &mut Json, method: &str, fields: &[Field]) {
    if method == "GET" {
        let params = op
            .as_object_mut()
            .expect("an operation is an object")
            .entry("parameters")
            .or_insert_with(|| json!([]));
        for f in fields {
            let mut p = json!({"name": f.name, "in": "query", "required": f.required, "schema": f.ty.schema(true)});
            if matches!(f.ty, Ty::List(_)) {
                p["style"] = json!("form");
                p["explode"] = json!(true);
            }
            params.as_array_mut().expect("a list").push(p);
        }
    } else {
        let mut schema = object_schema(fields);
        if fields.is_empty() {
            schema = json!({"type": "object"});
        }
        op["requestBody"] = json!({
            "required": fields.iter().any(|f| f.required),
            "content": {"application/json": {"schema": schema}},
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_agree_with_the_stores_rules() {
        for s in ["a", "fraud-model", "naïve", "x".repeat(128).as_str()] {
            assert!(MODEL_NAME.matches(s), "{s:?}");
            assert!(mlship_registry::validate_name("model name", s).is_ok());
        }
        for s in [
            "",
            "a b",
            "a/b",
            "a@b",
            "a\u{85}",
            "a\u{3000}",
            "a\\b",
            &"x".repeat(129),
        ] {
            assert!(!MODEL_NAME.matches(s), "{s:?}");
            assert!(mlship_registry::validate_name("model name", s).is_err());
        }
        assert!(!ALIAS.matches("12") && ALIAS.matches("v12"));
        for (p, ok) in [
            ("a", true),
            ("a/b/", true),
            ("..a/.b/c..", true),
            ("", false),
            ("/a", false),
            ("a//b", false),
            ("a/./b", false),
            ("a/../b", false),
            (".tmp", false),
            (".tmp/x", false),
            (".tmpx", true),
            ("a\\b", false),
        ] {
            assert_eq!(ARTIFACT_PATH.matches(p), ok, "{p:?}");
            if !p.is_empty() {
                let store = mlship_registry::files::safe_path(p)
                    .is_ok_and(|s| s != ".tmp" && !s.starts_with(".tmp/"));
                assert_eq!(store, ok, "{p:?}");
            }
        }
        assert!(ARTIFACT_DIR.matches(""));
        for (k, ok) in [
            ("a", true),
            ("a/b", true),
            ("a..b", true),
            ("/a", false),
            ("a/..", false),
            ("", false),
        ] {
            assert_eq!(KEY.matches(k), ok, "{k:?}");
        }
        assert!(EXPERIMENT_NAME.matches(" a ") && !EXPERIMENT_NAME.matches(" \u{2003}\t"));
        assert!(STAGE.matches("production") && !STAGE.matches("prod"));
    }

    /// Every string of up to five characters over an alphabet of the rules' edge characters.
    fn strings() -> Vec<String> {
        let alphabet = [
            'a', '.', '/', '0', 't', 'm', 'p', '\\', '\0', ' ', '@', '\u{3000}',
        ];
        let mut all = vec![String::new()];
        let mut last = vec![String::new()];
        for _ in 0..5 {
            last = last
                .iter()
                .flat_map(|s| alphabet.iter().map(move |c| format!("{s}{c}")))
                .collect();
            all.extend(last.iter().cloned());
        }
        all
    }

    #[test]
    fn patterns_are_the_stores_rules_on_every_short_string() {
        use mlship_registry::{files::safe_path, validate_name};
        for s in strings() {
            assert_eq!(
                MODEL_NAME.matches(&s),
                validate_name("model name", &s).is_ok(),
                "{s:?}"
            );
            assert_eq!(
                ALIAS.matches(&s),
                validate_name("alias", &s).is_ok(),
                "{s:?}"
            );
            let stored =
                |p: &str| safe_path(p).is_ok_and(|p| p != ".tmp" && !p.starts_with(".tmp/"));
            assert_eq!(ARTIFACT_DIR.matches(&s), stored(&s), "{s:?}");
            assert_eq!(
                ARTIFACT_PATH.matches(&s),
                !s.is_empty() && stored(&s) && !s.chars().all(|c| c == '/'),
                "{s:?}"
            );
            // tracking::check_key's rule, and no NUL (the table refuses it in every string).
            let key = !s.is_empty()
                && !s.starts_with('/')
                && !s.split('/').any(|x| x == "..")
                && !s.contains('\0');
            assert_eq!(KEY.matches(&s), key, "{s:?}");
        }
    }

    #[test]
    fn queries_are_read_as_their_types() {
        const F: &[Field] = &[
            req!("name", Ty::Pat(&MODEL_NAME)),
            opt!("max_results", Ty::Count(1, 10)),
            opt!("stages", Ty::List(&Ty::Pat(&STAGE))),
        ];
        let q = |pairs: &[(&str, &str)]| {
            check_query(
                F,
                pairs
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
            )
        };
        let m = q(&[("name", "m"), ("max_results", "3"), ("stages", "None")]).unwrap();
        assert_eq!(m["max_results"], json!(3));
        assert_eq!(m["stages"], json!(["None"]));
        assert!(q(&[("max_results", "3")]).is_err());
        assert!(q(&[("name", "m"), ("max_results", "11")]).is_err());
        assert!(q(&[("name", "m"), ("name", "n")]).is_err());
        assert!(q(&[("name", "m"), ("stages", "x")]).is_err());
    }
}
