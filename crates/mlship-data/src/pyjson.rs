//! Python's `json.dumps(value, sort_keys=True)` of YAML values, byte for byte: DVC names run-cache
//! entries by the sha256 of that text, so mlship's keys match DVC's only if the text does (`", "`
//! and `": "` separators, ASCII-only escapes, floats in Python's `repr`: `0.1`, `1e-05`, `1e+20`,
//! `100.0`).

use serde_yaml_ng::Value;

/// The JSON text Python would write for `v` with `sort_keys=True`.
pub fn dumps(v: &Value) -> String {
    let mut out = String::new();
    write(v, &mut out);
    out
}

fn write(v: &Value, out: &mut String) {
    match v {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                out.push_str(&i.to_string());
            } else if let Some(u) = n.as_u64() {
                out.push_str(&u.to_string());
            } else {
                out.push_str(&float_repr(n.as_f64().unwrap_or(f64::NAN)));
            }
        }
        Value::String(s) => crate::objects::py_json_str(s, out),
        Value::Sequence(items) => {
            out.push('[');
            for (i, x) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write(x, out);
            }
            out.push(']');
        }
        Value::Mapping(m) => {
            let mut entries: Vec<(String, &Value)> =
                m.iter().map(|(k, v)| (key_text(k), v)).collect();
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            out.push('{');
            for (i, (k, x)) in entries.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                crate::objects::py_json_str(k, out);
                out.push_str(": ");
                write(x, out);
            }
            out.push('}');
        }
        Value::Tagged(t) => write(&t.value, out),
    }
}

/// A mapping key as JSON makes it: text as is, anything else as its JSON text.
fn key_text(k: &Value) -> String {
    match k {
        Value::String(s) => s.clone(),
        Value::Bool(b) => b.to_string(),
        Value::Null => "null".into(),
        other => dumps(other),
    }
}

/// Python's `repr` of a float: the shortest digits that round-trip, fixed notation for exponents
/// from -4 to 15 (always with a fractional part), scientific beyond (`1e-05`, `1.5e+16`).
pub fn float_repr(x: f64) -> String {
    if x.is_nan() {
        return "NaN".into();
    }
    if x.is_infinite() {
        return if x > 0.0 { "Infinity" } else { "-Infinity" }.into();
    }
    if x == 0.0 {
        return if x.is_sign_negative() { "-0.0" } else { "0.0" }.into();
    }
    // Rust's `{:e}` gives the shortest round-trip digits: `d.ddde±X`.
    let sci = format!("{x:e}");
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let (sign, mantissa) = match mantissa.strip_prefix('-') {
        Some(m) => ("-", m),
        None => ("", mantissa),
    };
    let digits: String = mantissa.chars().filter(|c| *c != '.').collect();
    if (-4..16).contains(&exp) {
        let point = exp + 1; // digits before the decimal point
        let s = if point <= 0 {
            format!("0.{}{digits}", "0".repeat((-point) as usize))
        } else if (point as usize) >= digits.len() {
            format!("{digits}{}.0", "0".repeat(point as usize - digits.len()))
        } else {
            format!(
                "{}.{}",
                &digits[..point as usize],
                &digits[point as usize..]
            )
        };
        format!("{sign}{s}")
    } else {
        let m = if digits.len() > 1 {
            format!("{}.{}", &digits[..1], &digits[1..])
        } else {
            digits
        };
        let e = if exp < 0 {
            format!("-{:02}", -exp)
        } else {
            format!("+{exp:02}")
        };
        format!("{sign}{m}e{e}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floats_are_pythons_repr() {
        for (x, want) in [
            (0.1, "0.1"),
            (1e-05, "1e-05"),
            (1e20, "1e+20"),
            (100.0, "100.0"),
            (1.5e16, "1.5e+16"),
            (1e16, "1e+16"),
            (123456789012345.6, "123456789012345.6"),
            (0.0001, "0.0001"),
            (0.00012, "0.00012"),
            (-0.0, "-0.0"),
            (2.5, "2.5"),
            (1e15, "1000000000000000.0"),
            (-3.25e-7, "-3.25e-07"),
            (0.8, "0.8"),
        ] {
            assert_eq!(float_repr(x), want, "{x}");
        }
    }

    #[test]
    fn mappings_are_sorted_with_pythons_separators() {
        let v: Value = serde_yaml_ng::from_str(
            "cmd: python3 src/train.py\nouts: [model.json]\nparams: {params.yaml: {train: {lr: 0.1, epochs: 10}}}\n",
        )
        .unwrap();
        assert_eq!(
            dumps(&v),
            r#"{"cmd": "python3 src/train.py", "outs": ["model.json"], "params": {"params.yaml": {"train": {"epochs": 10, "lr": 0.1}}}}"#
        );
    }
}
