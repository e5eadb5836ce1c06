//! `.dvc/config` and `.dvc/config.local`: configobj INI as DVC writes it (`[core]`,
//! `['remote "name"']` headers, keys indented four spaces). `config.local` (git-ignored) is
//! read over `config`, key by key, as DVC merges them.

use std::collections::BTreeMap;
use std::path::Path;

use crate::error::{Error, Result};

/// The sections of one config file, in file order, each with its keys in file order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Config {
    pub sections: Vec<(String, Vec<(String, String)>)>,
}

impl Config {
    /// Parses configobj INI. Comments (`#`, `;`) and blank lines are dropped.
    pub fn parse(text: &str, what: &Path) -> Result<Config> {
        let mut c = Config::default();
        for (n, raw) in text.lines().enumerate() {
            let line = raw.trim();
            if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
                continue;
            }
            if let Some(h) = line.strip_prefix('[') {
                let h = h.strip_suffix(']').ok_or_else(|| Error::Parse {
                    path: what.to_path_buf(),
                    message: format!("line {}: a section header without `]`", n + 1),
                })?;
                let name = unquote(h.trim());
                c.sections.push((name, Vec::new()));
                continue;
            }
            let (k, v) = line.split_once('=').ok_or_else(|| Error::Parse {
                path: what.to_path_buf(),
                message: format!("line {}: expected `key = value`", n + 1),
            })?;
            let Some((_, keys)) = c.sections.last_mut() else {
                return Err(Error::Parse {
                    path: what.to_path_buf(),
                    message: format!("line {}: a key before any section", n + 1),
                });
            };
            keys.push((k.trim().to_string(), unquote(v.trim())));
        }
        Ok(c)
    }

    /// Reads a config file; a missing file is an empty config.
    pub fn read(path: &Path) -> Result<Config> {
        match std::fs::read_to_string(path) {
            Ok(t) => Config::parse(&t, path),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Config::default()),
            Err(e) => Err(Error::Io {
                path: path.to_path_buf(),
                source: e,
            }),
        }
    }

    /// The text DVC would write.
    pub fn render(&self) -> String {
        let mut s = String::new();
        for (name, keys) in &self.sections {
            if name.contains(' ') || name.contains('"') {
                s.push_str(&format!("['{name}']\n"));
            } else {
                s.push_str(&format!("[{name}]\n"));
            }
            for (k, v) in keys {
                s.push_str(&format!("    {k} = {v}\n"));
            }
        }
        s
    }

    pub fn get(&self, section: &str, key: &str) -> Option<&str> {
        self.sections
            .iter()
            .filter(|(n, _)| n == section)
            .flat_map(|(_, keys)| keys.iter())
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// Sets a key, adding the section at the end if it is new.
    pub fn set(&mut self, section: &str, key: &str, value: &str) {
        let i = match self.sections.iter().position(|(n, _)| n == section) {
            Some(i) => i,
            None => {
                self.sections.push((section.to_string(), Vec::new()));
                self.sections.len() - 1
            }
        };
        let keys = &mut self.sections[i].1;
        match keys.iter_mut().find(|(k, _)| k == key) {
            Some(kv) => kv.1 = value.to_string(),
            None => keys.push((key.to_string(), value.to_string())),
        }
    }

    /// The keys of a section, later files' values over earlier ones'.
    pub fn section(&self, section: &str) -> BTreeMap<String, String> {
        self.sections
            .iter()
            .filter(|(n, _)| n == section)
            .flat_map(|(_, keys)| keys.iter().cloned())
            .collect()
    }

    /// `config` with `local` over it.
    pub fn merged(mut self, local: &Config) -> Config {
        for (name, keys) in &local.sections {
            for (k, v) in keys {
                self.set(name, k, v);
            }
        }
        self
    }

    /// The remotes' names, in file order.
    pub fn remotes(&self) -> Vec<String> {
        let mut v: Vec<String> = Vec::new();
        for (n, _) in &self.sections {
            if let Some(r) = remote_name(n) {
                if !v.iter().any(|x| x == r) {
                    v.push(r.to_string());
                }
            }
        }
        v
    }
}

/// `remote "name"` → `name`.
pub fn remote_name(section: &str) -> Option<&str> {
    section
        .strip_prefix("remote \"")
        .and_then(|r| r.strip_suffix('"'))
}

/// A remote's name: letters, digits, `-`, `_` and `.`.
pub fn check_remote_name(name: &str) -> Result<()> {
    if name.is_empty()
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    {
        return Err(Error::Invalid(format!(
            "remote name {name:?}: use letters, digits, '-', '_' and '.'"
        )));
    }
    Ok(())
}

/// The section header of a remote.
pub fn remote_section(name: &str) -> String {
    format!("remote \"{name}\"")
}

fn unquote(s: &str) -> String {
    let b = s.as_bytes();
    if b.len() >= 2 && (b[0] == b'\'' || b[0] == b'"') && b[b.len() - 1] == b[0] {
        s[1..s.len() - 1].to_string()
    } else {
        s.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_and_writes_what_dvc_remote_add_writes() {
        let text =
            "[core]\n    remote = myremote\n['remote \"myremote\"']\n    url = /path/to/remote\n";
        let c = Config::parse(text, Path::new("config")).unwrap();
        assert_eq!(c.get("core", "remote"), Some("myremote"));
        assert_eq!(c.get("remote \"myremote\"", "url"), Some("/path/to/remote"));
        assert_eq!(c.remotes(), ["myremote"]);
        assert_eq!(c.render(), text);
        let local = Config::parse(
            "['remote \"myremote\"']\n    access_key_id = testing\n",
            Path::new("config.local"),
        )
        .unwrap();
        let m = c.merged(&local);
        assert_eq!(
            m.get("remote \"myremote\"", "access_key_id"),
            Some("testing")
        );
        assert_eq!(m.get("remote \"myremote\"", "url"), Some("/path/to/remote"));
    }

    #[test]
    fn bad_files_are_errors() {
        for bad in ["key = value\n", "[core\n", "[core]\nnovalue\n"] {
            assert!(Config::parse(bad, Path::new("c")).is_err(), "{bad}");
        }
    }
}
