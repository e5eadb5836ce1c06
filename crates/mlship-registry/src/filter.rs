//! MLflow's search grammar: `metrics.rmse < 0.5 and params.alpha = '0.1'`, order-by clauses,
//! and matching in memory for the registry's searches. Errors point at the token.

use std::collections::BTreeMap;

/// What a comparison reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Metric,
    Param,
    Tag,
    Attribute,
    Dataset,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    Like,
    ILike,
    In,
    NotIn,
    IsNull,
    IsNotNull,
}

impl Op {
    pub fn sql(self) -> &'static str {
        match self {
            Op::Eq => "=",
            Op::Ne => "<>",
            Op::Lt => "<",
            Op::Le => "<=",
            Op::Gt => ">",
            Op::Ge => ">=",
            Op::Like => "LIKE",
            Op::ILike => "LIKE",
            Op::In => "IN",
            Op::NotIn => "NOT IN",
            Op::IsNull => "IS NULL",
            Op::IsNotNull => "IS NOT NULL",
        }
    }
}

/// The right-hand side of a comparison.
#[derive(Clone, Debug, PartialEq)]
pub enum Lit {
    Str(String),
    Num(f64),
    List(Vec<String>),
    None,
}

/// One comparison; a filter is their conjunction.
#[derive(Clone, Debug, PartialEq)]
pub struct Cond {
    pub kind: Kind,
    pub key: String,
    pub op: Op,
    pub value: Lit,
}

/// A filter or order-by clause that does not parse, with where.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParseError {
    /// Character offset of the offending token in the input.
    pub at: usize,
    pub message: String,
}

impl std::fmt::Display for ParseError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} (at character {})", self.message, self.at)
    }
}

#[derive(Clone, Debug, PartialEq)]
enum Tok {
    Ident(String),
    Quoted(String),
    Str(String),
    Num(f64),
    Op(&'static str),
    LParen,
    RParen,
    Comma,
}

fn lex(s: &str) -> Result<Vec<(usize, Tok)>, ParseError> {
    let chars: Vec<(usize, char)> = s.char_indices().collect();
    let mut out = Vec::new();
    let mut i = 0;
    let err = |at: usize, m: String| ParseError { at, message: m };
    while i < chars.len() {
        let (at, c) = chars[i];
        if c.is_whitespace() {
            i += 1;
            continue;
        }
        match c {
            '(' => {
                out.push((at, Tok::LParen));
                i += 1;
            }
            ')' => {
                out.push((at, Tok::RParen));
                i += 1;
            }
            ',' => {
                out.push((at, Tok::Comma));
                i += 1;
            }
            '\'' | '"' | '`' => {
                let mut j = i + 1;
                let mut v = String::new();
                loop {
                    let Some(&(_, d)) = chars.get(j) else {
                        return Err(err(at, format!("unterminated {c}…{c} starting here")));
                    };
                    if d == c {
                        // A doubled quote stands for itself.
                        if chars.get(j + 1).map(|x| x.1) == Some(c) {
                            v.push(c);
                            j += 2;
                            continue;
                        }
                        break;
                    }
                    v.push(d);
                    j += 1;
                }
                out.push((
                    at,
                    match c {
                        '\'' => Tok::Str(v),
                        // A double-quoted word is a string value or a quoted key, by position.
                        '"' => Tok::Quoted(v),
                        _ => Tok::Ident(v),
                    },
                ));
                i = j + 1;
            }
            '=' => {
                out.push((at, Tok::Op("=")));
                i += 1;
            }
            '!' if chars.get(i + 1).map(|x| x.1) == Some('=') => {
                out.push((at, Tok::Op("!=")));
                i += 2;
            }
            '<' | '>' => {
                let next = chars.get(i + 1).map(|x| x.1);
                let op = match (c, next) {
                    ('<', Some('=')) => "<=",
                    ('>', Some('=')) => ">=",
                    ('<', Some('>')) => "!=",
                    ('<', _) => "<",
                    _ => ">",
                };
                i += if op.len() == 2 { 2 } else { 1 };
                out.push((at, Tok::Op(op)));
            }
            c if c.is_ascii_digit()
                || ((c == '-' || c == '+' || c == '.')
                    && chars
                        .get(i + 1)
                        .is_some_and(|x| x.1.is_ascii_digit() || x.1 == '.')) =>
            {
                let mut j = i + 1;
                while let Some(&(_, d)) = chars.get(j) {
                    let exp_sign = (d == '-' || d == '+')
                        && matches!(chars.get(j - 1).map(|x| x.1), Some('e' | 'E'));
                    if d.is_ascii_digit() || d == '.' || d == 'e' || d == 'E' || exp_sign {
                        j += 1;
                    } else {
                        break;
                    }
                }
                let end = chars.get(j).map_or(s.len(), |x| x.0);
                let text = &s[at..end];
                let v: f64 = text
                    .parse()
                    .map_err(|_| err(at, format!("{text:?} is not a number")))?;
                out.push((at, Tok::Num(v)));
                i = j;
            }
            c if c.is_alphanumeric() || c == '_' => {
                let mut j = i + 1;
                while let Some(&(_, d)) = chars.get(j) {
                    if d.is_alphanumeric() || matches!(d, '_' | '.' | '-' | '/' | ':') {
                        j += 1;
                    } else if d == '`' || d == '"' {
                        // `tags.`a b`` : a prefix followed by a quoted key.
                        let mut k = j + 1;
                        while chars.get(k).is_some_and(|x| x.1 != d) {
                            k += 1;
                        }
                        if k >= chars.len() {
                            return Err(err(chars[j].0, format!("unterminated {d}…{d}")));
                        }
                        j = k + 1;
                    } else {
                        break;
                    }
                }
                let end = chars.get(j).map_or(s.len(), |x| x.0);
                out.push((at, Tok::Ident(s[at..end].to_string())));
                i = j;
            }
            _ => return Err(err(at, format!("unexpected character {c:?}"))),
        }
    }
    Ok(out)
}

/// Splits `tags.`a.b`` / `metrics.rmse` / `status` into its kind and key.
fn identifier(raw: &str, at: usize, default: Kind) -> Result<(Kind, String), ParseError> {
    let unquote = |k: &str| -> String {
        let k = k.trim();
        if k.len() >= 2
            && ((k.starts_with('`') && k.ends_with('`'))
                || (k.starts_with('"') && k.ends_with('"')))
        {
            k[1..k.len() - 1].to_string()
        } else {
            k.to_string()
        }
    };
    if let Some((prefix, key)) = raw.split_once('.') {
        let kind = match prefix.to_ascii_lowercase().as_str() {
            "metric" | "metrics" => Some(Kind::Metric),
            "param" | "params" | "parameter" | "parameters" => Some(Kind::Param),
            "tag" | "tags" => Some(Kind::Tag),
            "attribute" | "attributes" | "attr" | "run" => Some(Kind::Attribute),
            "dataset" | "datasets" => Some(Kind::Dataset),
            _ => None,
        };
        if let Some(kind) = kind {
            let key = unquote(key);
            if key.is_empty() {
                return Err(ParseError {
                    at,
                    message: format!("{raw:?} names no key after {prefix:?}"),
                });
            }
            return Ok((kind, key));
        }
    }
    Ok((default, unquote(raw)))
}

/// Parses a filter: comparisons joined by `AND`. An empty filter is no condition.
pub fn parse(s: &str) -> Result<Vec<Cond>, ParseError> {
    parse_with(s, Kind::Attribute)
}

/// As [`parse`], with the kind an unprefixed key has (the registry's `name`).
pub fn parse_with(s: &str, default: Kind) -> Result<Vec<Cond>, ParseError> {
    let toks = lex(s)?;
    let mut out = Vec::new();
    let mut i = 0;
    let end = s.len();
    let at = |i: usize| toks.get(i).map_or(end, |t| t.0);
    let expected = |i: usize, what: &str| ParseError {
        at: at(i),
        message: match toks.get(i) {
            Some((_, t)) => format!("expected {what}, found {}", show(t)),
            None => format!("expected {what} at the end of the filter"),
        },
    };
    while i < toks.len() {
        let (kind, key) = match &toks[i].1 {
            Tok::Ident(raw) => identifier(raw, toks[i].0, default)?,
            Tok::Quoted(raw) => (default, raw.clone()),
            _ => return Err(expected(i, "a key such as metrics.rmse")),
        };
        i += 1;
        let word = |i: usize| match toks.get(i) {
            Some((_, Tok::Ident(w))) => Some(w.to_ascii_uppercase()),
            _ => None,
        };
        let op = match (&toks.get(i).map(|t| &t.1), word(i).as_deref()) {
            (Some(Tok::Op(o)), _) => {
                i += 1;
                match *o {
                    "=" => Op::Eq,
                    "!=" => Op::Ne,
                    "<" => Op::Lt,
                    "<=" => Op::Le,
                    ">" => Op::Gt,
                    _ => Op::Ge,
                }
            }
            (_, Some("LIKE")) => {
                i += 1;
                Op::Like
            }
            (_, Some("ILIKE")) => {
                i += 1;
                Op::ILike
            }
            (_, Some("IN")) => {
                i += 1;
                Op::In
            }
            (_, Some("NOT")) if word(i + 1).as_deref() == Some("IN") => {
                i += 2;
                Op::NotIn
            }
            (_, Some("IS")) => {
                if word(i + 1).as_deref() == Some("NULL") {
                    i += 2;
                    Op::IsNull
                } else if word(i + 1).as_deref() == Some("NOT")
                    && word(i + 2).as_deref() == Some("NULL")
                {
                    i += 3;
                    Op::IsNotNull
                } else {
                    return Err(expected(i + 1, "NULL or NOT NULL"));
                }
            }
            _ => {
                return Err(expected(
                    i,
                    "a comparison (=, !=, <, <=, >, >=, LIKE, ILIKE, IN, NOT IN, IS NULL)",
                ));
            }
        };
        let value = match op {
            Op::IsNull | Op::IsNotNull => Lit::None,
            Op::In | Op::NotIn => {
                if toks.get(i).map(|t| &t.1) != Some(&Tok::LParen) {
                    return Err(expected(i, "( after IN"));
                }
                i += 1;
                let mut items = Vec::new();
                loop {
                    match toks.get(i).map(|t| &t.1) {
                        Some(Tok::Str(v) | Tok::Quoted(v)) => items.push(v.clone()),
                        Some(Tok::Num(v)) => items.push(v.to_string()),
                        _ => return Err(expected(i, "a quoted value in the list")),
                    }
                    i += 1;
                    match toks.get(i).map(|t| &t.1) {
                        Some(Tok::Comma) => i += 1,
                        Some(Tok::RParen) => {
                            i += 1;
                            break;
                        }
                        _ => return Err(expected(i, ", or ) in the list")),
                    }
                }
                Lit::List(items)
            }
            _ => {
                let v = match toks.get(i).map(|t| &t.1) {
                    Some(Tok::Str(v) | Tok::Quoted(v)) => Lit::Str(v.clone()),
                    Some(Tok::Num(v)) => Lit::Num(*v),
                    _ => return Err(expected(i, "a value ('text' or a number)")),
                };
                i += 1;
                v
            }
        };
        check(kind, &key, op, &value, at(i.saturating_sub(1)))?;
        out.push(Cond {
            kind,
            key,
            op,
            value,
        });
        if i < toks.len() {
            if word(i).as_deref() == Some("AND") {
                i += 1;
                if i >= toks.len() {
                    return Err(expected(i, "a comparison after AND"));
                }
            } else if word(i).as_deref() == Some("OR") {
                return Err(ParseError {
                    at: at(i),
                    message: "OR is not supported; only AND joins comparisons".into(),
                });
            } else {
                return Err(expected(i, "AND"));
            }
        }
    }
    Ok(out)
}

fn check(kind: Kind, key: &str, op: Op, value: &Lit, at: usize) -> Result<(), ParseError> {
    let fail = |m: String| Err(ParseError { at, message: m });
    match kind {
        Kind::Metric => {
            if matches!(op, Op::Like | Op::ILike | Op::In | Op::NotIn) {
                return fail(format!(
                    "metrics.{key}: metrics compare with =, !=, <, <=, >, >= or IS NULL"
                ));
            }
            if !matches!(value, Lit::Num(_) | Lit::None) {
                return fail(format!("metrics.{key} is compared with a number"));
            }
        }
        Kind::Param | Kind::Tag | Kind::Dataset => {
            if matches!(op, Op::Lt | Op::Le | Op::Gt | Op::Ge) {
                return fail(format!(
                    "{key}: text compares with =, !=, LIKE, ILIKE, IN, NOT IN or IS NULL"
                ));
            }
            if matches!(value, Lit::Num(_)) {
                return fail(format!("{key} is text: quote the value, e.g. '0.1'"));
            }
        }
        Kind::Attribute => {}
    }
    Ok(())
}

fn show(t: &Tok) -> String {
    match t {
        Tok::Ident(s) => format!("{s:?}"),
        Tok::Quoted(s) => format!("\"{s}\""),
        Tok::Str(s) => format!("'{s}'"),
        Tok::Num(n) => n.to_string(),
        Tok::Op(o) => (*o).to_string(),
        Tok::LParen => "(".into(),
        Tok::RParen => ")".into(),
        Tok::Comma => ",".into(),
    }
}

/// One `order_by` clause: `metrics.rmse DESC`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Order {
    pub kind: Kind,
    pub key: String,
    pub ascending: bool,
}

pub fn parse_order(s: &str) -> Result<Order, ParseError> {
    let t = s.trim();
    let (body, ascending) = {
        let upper = t.to_ascii_uppercase();
        if upper.ends_with(" DESC") {
            (t[..t.len() - 5].trim_end(), false)
        } else if upper.ends_with(" ASC") {
            (t[..t.len() - 4].trim_end(), true)
        } else {
            (t, true)
        }
    };
    if body.is_empty() {
        return Err(ParseError {
            at: 0,
            message: format!("invalid order_by clause {s:?}: name a key such as metrics.rmse"),
        });
    }
    let (kind, key) = identifier(body, 0, Kind::Attribute)?;
    if key.contains(char::is_whitespace) && !body.contains('`') && !body.contains('"') {
        return Err(ParseError {
            at: 0,
            message: format!(
                "invalid order_by clause {s:?}: expected KEY [ASC|DESC] (quote keys with spaces in backticks)"
            ),
        });
    }
    Ok(Order {
        kind,
        key,
        ascending,
    })
}

/// Checks that order-by clauses name only these attributes (`what` names the things ordered).
pub fn only_attributes(orders: &[Order], keys: &[&str], what: &str) -> Result<(), ParseError> {
    match orders
        .iter()
        .find(|o| o.kind != Kind::Attribute || !keys.contains(&o.key.as_str()))
    {
        Some(o) => Err(ParseError {
            at: 0,
            message: format!(
                "invalid order_by key '{}': {what} are ordered by {}",
                o.key,
                keys.join(", ")
            ),
        }),
        None => Ok(()),
    }
}

/// SQL `LIKE` in memory: `%` any run of characters, `_` one character.
pub fn like(text: &str, pattern: &str, case_insensitive: bool) -> bool {
    let (t, p): (Vec<char>, Vec<char>) = if case_insensitive {
        (
            text.to_lowercase().chars().collect(),
            pattern.to_lowercase().chars().collect(),
        )
    } else {
        (text.chars().collect(), pattern.chars().collect())
    };
    let (mut ti, mut pi) = (0, 0);
    let (mut star, mut mark) = (None, 0);
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '_' || (p[pi] != '%' && p[pi] == t[ti])) {
            ti += 1;
            pi += 1;
        } else if pi < p.len() && p[pi] == '%' {
            star = Some(pi);
            mark = ti;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ti = mark;
        } else {
            return false;
        }
    }
    while pi < p.len() && p[pi] == '%' {
        pi += 1;
    }
    pi == p.len()
}

/// Whether a text value (or its absence) satisfies a comparison.
pub fn matches_text(value: Option<&str>, op: Op, lit: &Lit) -> bool {
    match (op, value) {
        (Op::IsNull, v) => v.is_none(),
        (Op::IsNotNull, v) => v.is_some(),
        (_, None) => false,
        (Op::In, Some(v)) => matches!(lit, Lit::List(l) if l.iter().any(|x| x == v)),
        (Op::NotIn, Some(v)) => matches!(lit, Lit::List(l) if !l.iter().any(|x| x == v)),
        (op, Some(v)) => {
            let want = match lit {
                Lit::Str(s) => s.clone(),
                Lit::Num(n) => n.to_string(),
                _ => return false,
            };
            match op {
                Op::Eq => v == want,
                Op::Ne => v != want,
                Op::Like => like(v, &want, false),
                Op::ILike => like(v, &want, true),
                Op::Lt | Op::Le | Op::Gt | Op::Ge => {
                    let ord = match (v.parse::<f64>(), want.parse::<f64>()) {
                        (Ok(a), Ok(b)) => a.partial_cmp(&b),
                        _ => Some(v.cmp(want.as_str())),
                    };
                    match ord {
                        Some(o) => match op {
                            Op::Lt => o.is_lt(),
                            Op::Le => o.is_le(),
                            Op::Gt => o.is_gt(),
                            _ => o.is_ge(),
                        },
                        None => false,
                    }
                }
                _ => false,
            }
        }
    }
}

/// Matches a registry object: `attribute(key)` gives its attributes, `tags` its tags. A tag the
/// object lacks is "not equal" to any value, as MLflow's registry reads it (the client appends
/// `` tag.`mlflow.prompt.is_prompt` != 'true' `` to every model search).
pub fn matches_object(
    conds: &[Cond],
    attribute: impl Fn(&str) -> Option<String>,
    tags: &BTreeMap<String, String>,
) -> bool {
    conds.iter().all(|c| match c.kind {
        Kind::Tag => match tags.get(&c.key) {
            None => matches!(c.op, Op::Ne | Op::NotIn | Op::IsNull),
            Some(v) => matches_text(Some(v), c.op, &c.value),
        },
        _ => matches_text(attribute(&c.key).as_deref(), c.op, &c.value),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_what_the_client_sends() {
        let f =
            parse("metrics.rmse < 0.5 and params.alpha = '0.1' AND tags.`mlflow.prompt.is_prompt` != 'true'")
                .unwrap();
        assert_eq!(f.len(), 3);
        assert_eq!(
            f[0],
            Cond {
                kind: Kind::Metric,
                key: "rmse".into(),
                op: Op::Lt,
                value: Lit::Num(0.5)
            }
        );
        assert_eq!(f[2].key, "mlflow.prompt.is_prompt");
        assert_eq!(f[2].kind, Kind::Tag);
        let f = parse("tags.mlflow.parentRunId = 'abc'").unwrap();
        assert_eq!(f[0].key, "mlflow.parentRunId");
        let f = parse("attributes.status IN ('FINISHED', 'RUNNING') and params.x IS NULL").unwrap();
        assert_eq!(
            f[0].value,
            Lit::List(vec!["FINISHED".into(), "RUNNING".into()])
        );
        assert_eq!(f[1].op, Op::IsNull);
        let f = parse("metrics.`my metric` >= -1e-3 and run_name ILIKE '%x%'").unwrap();
        assert_eq!(f[0].key, "my metric");
        assert_eq!(f[0].value, Lit::Num(-1e-3));
        assert_eq!(f[1].kind, Kind::Attribute);
        let f = parse("tag.\"a b\" = 'c'").unwrap();
        assert_eq!(f[0].key, "a b");
        assert!(parse("").unwrap().is_empty());
        let f = parse_with("name = 'x'", Kind::Attribute).unwrap();
        assert_eq!(f[0].key, "name");
    }

    #[test]
    fn errors_point_at_the_token() {
        let e = parse("metrics.rmse < 0.5 and params.alpha == '1'").unwrap_err();
        assert_eq!(e.at, 37, "{e}");
        let e = parse("metrics.rmse < 'abc'").unwrap_err();
        assert!(e.message.contains("number"), "{e}");
        let e = parse("metrics.rmse < 1 or metrics.x > 2").unwrap_err();
        assert!(e.message.contains("OR"), "{e}");
        assert_eq!(e.at, 17);
        let e = parse("params.a = 'unterminated").unwrap_err();
        assert_eq!(e.at, 11);
        assert!(parse("metrics.rmse <").is_err());
        assert!(parse("params.a IN ('x'").is_err());
        assert!(parse("params.a > '1'").is_err());
        assert!(parse("and").is_err());
        assert!(parse("metrics. = 1").is_err());
    }

    #[test]
    fn order_clauses() {
        assert_eq!(
            parse_order("metrics.rmse DESC").unwrap(),
            Order {
                kind: Kind::Metric,
                key: "rmse".into(),
                ascending: false
            }
        );
        assert_eq!(parse_order("start_time").unwrap().kind, Kind::Attribute);
        assert_eq!(parse_order("params.`a b` asc").unwrap().key, "a b");
        assert!(parse_order(" ").is_err());
    }

    #[test]
    fn like_matches_as_sql_does() {
        assert!(like("model-7", "model-%", false));
        assert!(like("abc", "a_c", false));
        assert!(!like("ABC", "abc", false));
        assert!(like("ABC", "abc", true));
        assert!(like("a%b", "a%b", false));
        assert!(!like("ab", "a_b", false));
        assert!(like("", "%", false));
    }

    proptest::proptest! {
        #[test]
        fn any_text_parses_or_errs_within_bounds(s in ".{0,60}") {
            match parse(&s) {
                Ok(_) => {}
                Err(e) => proptest::prop_assert!(e.at <= s.len()),
            }
            let _ = parse_order(&s);
        }
    }
}
