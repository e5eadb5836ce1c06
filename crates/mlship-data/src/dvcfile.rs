//! `.dvc` files: what `dvc add` writes beside a tracked file or folder. Read with a YAML 1.2
//! parser (key order, style and `size` are not significant to DVC); written in DVC's own layout
//! and key order (`md5, size, [nfiles], [isexec], hash, path`) so a `git diff` against a file DVC
//! wrote is empty. `hash: md5` is required: without it DVC 3 reads the entry as a 2.x hash.

use std::path::Path;

use serde_yaml_ng::Value;

use crate::error::{Error, Result};
use crate::objects::is_object_name;

/// One output of a `.dvc` file.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Out {
    /// Relative to the `.dvc` file's folder, `/`-separated.
    pub path: String,
    /// `None` for an output added with `--no-commit`-like tools before hashing.
    pub md5: Option<String>,
    pub size: Option<u64>,
    pub nfiles: Option<u64>,
    pub isexec: bool,
    /// `cache: false`: tracked, never cached or pushed.
    pub cache: bool,
    /// `push: false`: cached, never pushed.
    pub push: bool,
    /// The remote this output goes to, when not the default one.
    pub remote: Option<String>,
}

impl Out {
    pub fn is_dir(&self) -> bool {
        self.md5.as_deref().is_some_and(|m| m.ends_with(".dir"))
    }
}

/// Parses a `.dvc` file's text. `what` names it in errors.
pub fn parse(text: &str, what: &Path) -> Result<Vec<Out>> {
    let bad = |m: String| Error::Parse {
        path: what.to_path_buf(),
        message: m,
    };
    let doc: Value = serde_yaml_ng::from_str(text).map_err(|e| bad(format!("not YAML: {e}")))?;
    let outs = doc
        .get("outs")
        .and_then(Value::as_sequence)
        .ok_or_else(|| bad("no `outs` list".into()))?;
    outs.iter()
        .enumerate()
        .map(|(i, o)| {
            let field = |k: &str| o.get(k);
            let text_of = |k: &str| -> Result<Option<String>> {
                match field(k) {
                    None | Some(Value::Null) => Ok(None),
                    Some(Value::String(s)) => Ok(Some(s.clone())),
                    Some(other) => Err(bad(format!(
                        "outs[{i}].{k}: expected text, found {other:?}"
                    ))),
                }
            };
            let num = |k: &str| -> Result<Option<u64>> {
                match field(k) {
                    None | Some(Value::Null) => Ok(None),
                    Some(v) => v
                        .as_u64()
                        .map(Some)
                        .ok_or_else(|| bad(format!("outs[{i}].{k}: expected a count"))),
                }
            };
            let flag = |k: &str, default: bool| -> Result<bool> {
                match field(k) {
                    None | Some(Value::Null) => Ok(default),
                    Some(Value::Bool(b)) => Ok(*b),
                    Some(_) => Err(bad(format!("outs[{i}].{k}: expected true or false"))),
                }
            };
            let path = text_of("path")?.ok_or_else(|| bad(format!("outs[{i}] has no path")))?;
            if !crate::objects::safe_relpath(&path) && !path.starts_with("../") {
                return Err(bad(format!("outs[{i}].path {path:?} is not a relative path")));
            }
            let md5 = text_of("md5")?;
            if let Some(m) = &md5 {
                if !is_object_name(m) {
                    return Err(bad(format!(
                        "outs[{i}].md5 {m:?} is not an md5 (32 lowercase hex digits)"
                    )));
                }
                match text_of("hash")?.as_deref() {
                    Some("md5") => {}
                    None => {
                        return Err(bad(format!(
                            "outs[{i}] ({path}) has no `hash: md5`: it was written by DVC 2, whose hashes mlship does not read; run `dvc cache migrate --dvc-files` once"
                        )));
                    }
                    Some(other) => {
                        return Err(bad(format!("outs[{i}].hash {other:?}: only md5 is supported")));
                    }
                }
            }
            Ok(Out {
                path,
                md5,
                size: num("size")?,
                nfiles: num("nfiles")?,
                isexec: flag("isexec", false)?,
                cache: flag("cache", true)?,
                push: flag("push", true)?,
                remote: text_of("remote")?,
            })
        })
        .collect()
}

/// A `.dvc` file's text, as `dvc add` writes it.
pub fn render(outs: &[Out]) -> String {
    let mut s = String::from("outs:\n");
    for o in outs {
        let mut first = true;
        let mut line = |k: &str, v: String| {
            s.push_str(if first { "- " } else { "  " });
            first = false;
            s.push_str(k);
            s.push_str(": ");
            s.push_str(&v);
            s.push('\n');
        };
        if let Some(m) = &o.md5 {
            line("md5", m.clone());
        }
        if let Some(n) = o.size {
            line("size", n.to_string());
        }
        if let Some(n) = o.nfiles {
            line("nfiles", n.to_string());
        }
        if o.isexec {
            line("isexec", "true".into());
        }
        if o.md5.is_some() {
            line("hash", "md5".into());
        }
        line("path", scalar(&o.path));
        if !o.cache {
            line("cache", "false".into());
        }
        if !o.push {
            line("push", "false".into());
        }
        if let Some(r) = &o.remote {
            line("remote", scalar(r));
        }
    }
    s
}

/// A YAML scalar for a string: plain when YAML 1.2 reads it back as the same string, else single
/// quoted.
pub fn scalar(v: &str) -> String {
    let plain = !v.is_empty()
        && !v.starts_with([
            ' ', '-', '?', ':', ',', '[', ']', '{', '}', '#', '&', '*', '!', '|', '>', '\'', '"',
            '%', '@', '`', '~',
        ])
        && !v.ends_with([' ', ':'])
        && !v.contains(": ")
        && !v.contains(" #")
        && v.chars().all(|c| !c.is_control() && c != '\u{feff}')
        && !matches!(
            v.to_ascii_lowercase().as_str(),
            "true" | "false" | "null" | "yes" | "no" | "on" | "off" | "y" | "n"
        )
        && v.parse::<f64>().is_err()
        && !v.starts_with("0x")
        && !v.starts_with("0o");
    if plain {
        v.to_string()
    } else {
        format!("'{}'", v.replace('\'', "''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_are_written_as_dvc_add_writes_them() {
        let file = Out {
            path: "train.csv".into(),
            md5: Some("c3c6bc2ae8ece4bd2510dca21225c041".into()),
            size: Some(12),
            cache: true,
            push: true,
            ..Out::default()
        };
        assert_eq!(
            render(std::slice::from_ref(&file)),
            "outs:\n- md5: c3c6bc2ae8ece4bd2510dca21225c041\n  size: 12\n  hash: md5\n  path: train.csv\n"
        );
        let dir = Out {
            path: "images".into(),
            md5: Some("be061f6aaf7f1b9f2c0ce7ffa4c8d489.dir".into()),
            size: Some(19),
            nfiles: Some(5),
            cache: true,
            push: true,
            ..Out::default()
        };
        assert_eq!(
            render(std::slice::from_ref(&dir)),
            "outs:\n- md5: be061f6aaf7f1b9f2c0ce7ffa4c8d489.dir\n  size: 19\n  nfiles: 5\n  hash: md5\n  path: images\n"
        );
        let exec = Out {
            path: "run.sh".into(),
            md5: Some("46bbbe8aa98cc0714426e948474eaaf4".into()),
            size: Some(18),
            isexec: true,
            cache: true,
            push: true,
            ..Out::default()
        };
        let text = render(std::slice::from_ref(&exec));
        assert!(text.contains("  isexec: true\n  hash: md5\n"), "{text}");
        for o in [file, dir, exec] {
            assert_eq!(
                parse(&render(std::slice::from_ref(&o)), Path::new("x")).unwrap(),
                [o]
            );
        }
    }

    #[test]
    fn awkward_paths_are_quoted_and_read_back() {
        for p in [
            "with space.txt",
            "é.csv",
            "yes",
            "1.0",
            "a: b",
            "#x",
            "it's",
            "-x",
            "null",
        ] {
            let o = Out {
                path: p.into(),
                md5: Some("c3c6bc2ae8ece4bd2510dca21225c041".into()),
                cache: true,
                push: true,
                ..Out::default()
            };
            let back = parse(&render(std::slice::from_ref(&o)), Path::new("x")).unwrap();
            assert_eq!(back[0].path, p, "{}", render(&[o]));
        }
    }

    #[test]
    fn dvc2_entries_and_bad_files_are_refused_with_the_reason() {
        let e = parse(
            "outs:\n- md5: c3c6bc2ae8ece4bd2510dca21225c041\n  path: a\n",
            Path::new("a.dvc"),
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("dvc cache migrate"), "{e}");
        for bad in [
            "",
            "outs: 3",
            "outs:\n- md5: nothex\n  hash: md5\n  path: a\n",
            "outs:\n- md5: c3c6bc2ae8ece4bd2510dca21225c041\n  hash: md5\n",
            "outs:\n- path: /etc/passwd\n",
            ": : :",
        ] {
            assert!(parse(bad, Path::new("a.dvc")).is_err(), "{bad}");
        }
    }

    proptest::proptest! {
        #[test]
        fn any_text_parses_or_fails_cleanly(s in ".{0,200}") {
            let _ = parse(&s, Path::new("x.dvc"));
        }
    }
}
