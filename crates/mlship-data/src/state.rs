//! The state cache: what a file hashed to when it had this inode, size and modification time, so
//! an unchanged tree is never hashed again (`status` on 10,000 files is a walk and a lookup). Kept
//! in `.dvc/tmp/mlship-state` (git-ignored with the rest of `.dvc/tmp`), one line per file.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use crate::error::{Result, io};

/// Keys of folders known whole in the cache start with `/`, which no relative path does.
const COMPLETE: &str = "/complete/";

fn complete_key(dir_md5: &str) -> String {
    format!("{COMPLETE}{dir_md5}")
}

/// What identifies a file's content without reading it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Stamp {
    pub inode: u64,
    pub size: u64,
    pub mtime_ns: i128,
}

impl Stamp {
    pub fn of(meta: &std::fs::Metadata) -> Stamp {
        #[cfg(unix)]
        let inode = std::os::unix::fs::MetadataExt::ino(meta);
        #[cfg(not(unix))]
        let inode = 0;
        let mtime_ns = meta
            .modified()
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_nanos() as i128);
        Stamp {
            inode,
            size: meta.len(),
            mtime_ns,
        }
    }
}

/// Paths (relative to the repository) to their last known stamp and md5.
#[derive(Debug, Default)]
pub struct State {
    file: PathBuf,
    map: HashMap<String, (Stamp, String)>,
    dirty: bool,
}

impl State {
    /// Loads the state of a repository; an unreadable or missing file is an empty state.
    pub fn load(dvc_dir: &Path) -> State {
        let file = dvc_dir.join("tmp").join("mlship-state");
        let mut map = HashMap::new();
        if let Ok(text) = std::fs::read_to_string(&file) {
            for line in text.lines() {
                let mut f = line.splitn(5, '\t');
                let (Some(md5), Some(size), Some(mtime), Some(ino), Some(path)) =
                    (f.next(), f.next(), f.next(), f.next(), f.next())
                else {
                    continue;
                };
                let (Ok(size), Ok(mtime_ns), Ok(inode)) =
                    (size.parse(), mtime.parse(), ino.parse())
                else {
                    continue;
                };
                map.insert(
                    path.to_string(),
                    (
                        Stamp {
                            inode,
                            size,
                            mtime_ns,
                        },
                        md5.to_string(),
                    ),
                );
            }
        }
        State {
            file,
            map,
            dirty: false,
        }
    }

    /// The md5 recorded for a path, if its stamp is unchanged.
    pub fn get(&self, rel: &str, stamp: Stamp) -> Option<&str> {
        self.map
            .get(rel)
            .filter(|(s, _)| *s == stamp)
            .map(|(_, m)| m.as_str())
    }

    pub fn put(&mut self, rel: &str, stamp: Stamp, md5: &str) {
        if self.get(rel, stamp) != Some(md5) {
            self.map.insert(rel.to_string(), (stamp, md5.to_string()));
            self.dirty = true;
        }
    }

    /// Whether a folder's objects (`.dir` and every file) were all found in the cache before.
    pub fn complete(&self, dir_md5: &str) -> bool {
        self.map.contains_key(&complete_key(dir_md5))
    }

    pub fn set_complete(&mut self, dir_md5: &str) {
        let zero = Stamp {
            inode: 0,
            size: 0,
            mtime_ns: 0,
        };
        self.put(&complete_key(dir_md5), zero, dir_md5);
    }

    /// Forgets every folder found whole (after objects leave the cache).
    pub fn forget_complete(&mut self) {
        let before = self.map.len();
        self.map.retain(|k, _| !k.starts_with(COMPLETE));
        self.dirty |= self.map.len() != before;
    }

    /// Writes the state if it changed (a temporary file renamed over the old one).
    pub fn save(&mut self) -> Result<()> {
        if !self.dirty {
            return Ok(());
        }
        let mut out = String::with_capacity(self.map.len() * 100);
        for (path, (s, md5)) in &self.map {
            if path.contains(['\n', '\t']) {
                continue;
            }
            out.push_str(&format!(
                "{md5}\t{}\t{}\t{}\t{path}\n",
                s.size, s.mtime_ns, s.inode
            ));
        }
        if let Some(parent) = self.file.parent() {
            std::fs::create_dir_all(parent).map_err(io(parent))?;
        }
        let tmp = crate::cache::temp_beside(&self.file);
        std::fs::write(&tmp, out).map_err(io(&tmp))?;
        std::fs::rename(&tmp, &self.file).map_err(io(&self.file))?;
        self.dirty = false;
        Ok(())
    }
}
