//! Content addresses as DVC 3 computes them: the md5 of a file's raw bytes (no newline
//! normalisation), and `.dir` manifests whose bytes are exactly Python's
//! `json.dumps(entries, sort_keys=True)` of the entries sorted by their whole relative path. Any
//! other serialisation of the same list names another object, and `dvc status` would report the
//! folder modified forever.

use std::io::Read;
use std::path::Path;

use md5::{Digest, Md5};

use crate::error::{Result, io};

/// Read size for hashing and copying (DVC reads 1 MiB chunks too).
pub const CHUNK: usize = 1 << 20;

/// Lowercase hex md5 of bytes.
pub fn md5_hex(b: &[u8]) -> String {
    hex::encode(Md5::digest(b))
}

/// The md5 and size of a file, streamed in constant memory.
pub fn md5_file(path: &Path) -> Result<(String, u64)> {
    let mut f = std::fs::File::open(path).map_err(io(path))?;
    let mut h = Md5::new();
    let mut buf = vec![0u8; CHUNK];
    let mut size = 0u64;
    loop {
        let n = f.read(&mut buf).map_err(io(path))?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
        size += n as u64;
    }
    Ok((hex::encode(h.finalize()), size))
}

/// Whether a string is an md5 as DVC names objects: 32 lowercase hex digits, `.dir` for a folder.
pub fn is_object_name(s: &str) -> bool {
    let hex = s.strip_suffix(".dir").unwrap_or(s);
    hex.len() == 32
        && hex
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// One file of a tracked folder.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DirEntry {
    /// `/`-separated, relative to the folder.
    pub relpath: String,
    pub md5: String,
}

/// The bytes of a folder's `.dir` object: the entries sorted by relative path as a plain string
/// (code point order, which is UTF-8 byte order), `{"md5": …, "relpath": …}` each, with Python's
/// `", "` and `": "` separators, ASCII-only escapes and no trailing newline.
pub fn manifest_bytes(entries: &mut [DirEntry]) -> Vec<u8> {
    entries.sort_by(|a, b| a.relpath.cmp(&b.relpath));
    let mut out = String::with_capacity(entries.len() * 80 + 2);
    out.push('[');
    for (i, e) in entries.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        out.push_str("{\"md5\": ");
        py_json_str(&e.md5, &mut out);
        out.push_str(", \"relpath\": ");
        py_json_str(&e.relpath, &mut out);
        out.push('}');
    }
    out.push(']');
    out.into_bytes()
}

/// A string as Python's `json.dumps` writes it with `ensure_ascii=True`: everything outside
/// printable ASCII escaped, `\uXXXX` in lowercase hex, astral characters as surrogate pairs.
pub(crate) fn py_json_str(s: &str, out: &mut String) {
    use std::fmt::Write;
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            ' '..='~' => out.push(c),
            _ => {
                let mut units = [0u16; 2];
                for u in c.encode_utf16(&mut units) {
                    let _ = write!(out, "\\u{u:04x}");
                }
            }
        }
    }
    out.push('"');
}

/// Reads a `.dir` object (extra keys per entry, as older writers add, are ignored).
pub fn parse_manifest(bytes: &[u8], what: &Path) -> Result<Vec<DirEntry>> {
    let bad = |m: String| crate::Error::Parse {
        path: what.to_path_buf(),
        message: m,
    };
    let v: serde_json::Value =
        serde_json::from_slice(bytes).map_err(|e| bad(format!("not a .dir manifest: {e}")))?;
    let list = v
        .as_array()
        .ok_or_else(|| bad("a .dir manifest is a JSON list".into()))?;
    list.iter()
        .map(|e| {
            let md5 = e.get("md5").and_then(|x| x.as_str());
            let rel = e.get("relpath").and_then(|x| x.as_str());
            match (md5, rel) {
                (Some(m), Some(r)) if is_object_name(m) && safe_relpath(r) => Ok(DirEntry {
                    relpath: r.to_string(),
                    md5: m.to_string(),
                }),
                _ => Err(bad(format!("a bad entry {e}"))),
            }
        })
        .collect()
}

/// A relative path that stays inside its folder: no empty, `.` or `..` component, not absolute.
pub fn safe_relpath(p: &str) -> bool {
    !p.is_empty()
        && !p.starts_with('/')
        && !p.contains('\0')
        && p.split('/').all(|c| !c.is_empty() && c != "." && c != "..")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manifests_are_pythons_json_of_the_sorted_entries() {
        // The ordering case of the DVC notes: whole-string order, not per path component.
        let mut e: Vec<DirEntry> = ["a/b", "a.txt", "_u", "A/z", "a-b/x", "é/f", "crlf.txt"]
            .iter()
            .map(|p| DirEntry {
                relpath: (*p).into(),
                md5: md5_hex(p.as_bytes()),
            })
            .collect();
        let b = String::from_utf8(manifest_bytes(&mut e)).unwrap();
        let order: Vec<&str> = e.iter().map(|x| x.relpath.as_str()).collect();
        assert_eq!(
            order,
            ["A/z", "_u", "a-b/x", "a.txt", "a/b", "crlf.txt", "é/f"]
        );
        assert!(b.starts_with(r#"[{"md5": ""#), "{b}");
        assert!(b.ends_with(r#", "relpath": "\u00e9/f"}]"#), "{b}");
        assert!(!b.contains('\n'));
    }

    #[test]
    fn escapes_follow_ensure_ascii() {
        let mut s = String::new();
        py_json_str("q\"\\\n\t\u{1}\u{7f}é😀/ ~", &mut s);
        assert_eq!(s, r#""q\"\\\n\t\u0001\u007f\u00e9\ud83d\ude00/ ~""#);
    }

    #[test]
    fn the_md5_of_the_notes_example_file() {
        // `hello\n`, as in DVC's own docs and tests.
        assert_eq!(md5_hex(b"hello\n"), "b1946ac92492d2347c6235b4d2611184");
        assert!(is_object_name("be061f6aaf7f1b9f2c0ce7ffa4c8d489.dir"));
        assert!(!is_object_name("BE061F6AAF7F1B9F2C0CE7FFA4C8D489"));
    }

    #[test]
    fn manifests_round_trip_and_bad_ones_are_errors() {
        let mut e = vec![DirEntry {
            relpath: "with space.txt".into(),
            md5: md5_hex(b"x"),
        }];
        let b = manifest_bytes(&mut e);
        assert_eq!(parse_manifest(&b, Path::new("m")).unwrap(), e);
        for bad in [
            &b"{}"[..],
            b"[{\"md5\": \"x\", \"relpath\": \"a\"}]",
            b"[{\"md5\": \"9dd4e461268c8034f5c8564e155c67a6\", \"relpath\": \"../a\"}]",
            b"not json",
        ] {
            assert!(parse_manifest(bad, Path::new("m")).is_err());
        }
    }

    proptest::proptest! {
        #[test]
        fn any_bytes_parse_or_fail_cleanly(b in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..200)) {
            let _ = parse_manifest(&b, Path::new("m"));
        }
    }
}
