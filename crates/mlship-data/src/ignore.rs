//! `.dvcignore`: gitignore patterns for what a tracked folder leaves out. Supported: comments,
//! blank lines, `*`, `?`, `**`, a leading `/` (anchored at the repository root), a `/` inside
//! (anchored too), a trailing `/` (folders only) and `!` (re-include).

use std::path::Path;

#[derive(Debug, Default, Clone)]
pub struct Ignore {
    rules: Vec<Rule>,
}

#[derive(Debug, Clone)]
struct Rule {
    pattern: String,
    anchored: bool,
    dir_only: bool,
    negate: bool,
}

impl Ignore {
    pub fn load(root: &Path) -> Ignore {
        let text = std::fs::read_to_string(root.join(".dvcignore")).unwrap_or_default();
        Ignore::parse(&text)
    }

    pub fn parse(text: &str) -> Ignore {
        let rules = text
            .lines()
            .filter_map(|l| {
                let l = l.trim_end();
                if l.is_empty() || l.starts_with('#') {
                    return None;
                }
                let (negate, l) = match l.strip_prefix('!') {
                    Some(r) => (true, r),
                    None => (false, l),
                };
                let (dir_only, l) = match l.strip_suffix('/') {
                    Some(r) => (true, r),
                    None => (false, l),
                };
                let anchored = l.starts_with('/') || l.trim_start_matches('/').contains('/');
                Some(Rule {
                    pattern: l.trim_start_matches('/').to_string(),
                    anchored,
                    dir_only,
                    negate,
                })
            })
            .collect();
        Ignore { rules }
    }

    /// Whether a path (relative to the repository root, `/`-separated) is ignored.
    pub fn ignored(&self, rel: &str, is_dir: bool) -> bool {
        let name = rel.rsplit('/').next().unwrap_or(rel);
        let mut out = false;
        for r in &self.rules {
            if r.dir_only && !is_dir {
                continue;
            }
            let hit = if r.anchored {
                glob(&r.pattern, rel)
            } else {
                glob(&r.pattern, name)
            };
            if hit {
                out = !r.negate;
            }
        }
        out
    }
}

/// Glob matching: `*` and `?` never match `/`; `**` matches across folders.
fn glob(p: &str, s: &str) -> bool {
    let (p, s) = (p.as_bytes(), s.as_bytes());
    fn m(p: &[u8], s: &[u8]) -> bool {
        match p.first() {
            None => s.is_empty(),
            Some(b'*') if p.get(1) == Some(&b'*') => {
                let rest = p[2..].strip_prefix(b"/").unwrap_or(&p[2..]);
                (0..=s.len()).any(|i| m(rest, &s[i..]))
            }
            Some(b'*') => (0..=s.len())
                .take_while(|&i| i == 0 || s[i - 1] != b'/')
                .any(|i| m(&p[1..], &s[i..])),
            Some(b'?') => !s.is_empty() && s[0] != b'/' && m(&p[1..], &s[1..]),
            Some(c) => !s.is_empty() && s[0] == *c && m(&p[1..], &s[1..]),
        }
    }
    m(p, s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gitignore_patterns() {
        let i = Ignore::parse("# c\n*.tmp\n/build\nlogs/\ndata/**/cache\n!keep.tmp\n");
        assert!(i.ignored("d/skip.tmp", false));
        assert!(!i.ignored("d/keep.tmp", false));
        assert!(i.ignored("build", true));
        assert!(!i.ignored("x/build", true));
        assert!(i.ignored("x/logs", true));
        assert!(!i.ignored("x/logs", false));
        assert!(i.ignored("data/a/b/cache", true));
        assert!(!i.ignored("a.txt", false));
    }
}
