//! Deterministic image layers: a sorted tar (mtime 0, owner root) compressed with gzip (no name,
//! mtime 0), so the same files always give the same digests.

use std::collections::BTreeMap;
use std::io::Write;

use flate2::{Compression, GzBuilder};

use crate::error::{Error, Result};
use crate::oci::sha256_digest;

#[derive(Clone, Debug)]
enum Entry {
    Dir { mode: u32 },
    File { data: Vec<u8>, mode: u32 },
}

/// The files of one layer, by absolute path in the image. Parent folders are added for you.
#[derive(Clone, Debug, Default)]
pub struct Layer {
    entries: BTreeMap<String, Entry>,
}

/// A layer as stored: its gzip bytes, their digest, and the digest of the plain tar (`diff_id`).
#[derive(Clone, Debug)]
pub struct SealedLayer {
    pub gzip: Vec<u8>,
    pub digest: String,
    pub diff_id: String,
}

impl Layer {
    pub fn new() -> Layer {
        Layer::default()
    }

    /// Adds a file at `path` (absolute, `/` separated) with `mode` (e.g. 0o755).
    pub fn file(&mut self, path: &str, data: Vec<u8>, mode: u32) -> &mut Layer {
        let rel = clean(path);
        self.parents(&rel);
        self.entries.insert(rel, Entry::File { data, mode });
        self
    }

    /// Adds a folder at `path` with `mode` (e.g. 0o1777 for /tmp).
    pub fn dir(&mut self, path: &str, mode: u32) -> &mut Layer {
        let rel = clean(path);
        self.parents(&rel);
        self.entries.insert(rel, Entry::Dir { mode });
        self
    }

    fn parents(&mut self, rel: &str) {
        let mut at = String::new();
        let parts: Vec<&str> = rel.split('/').collect();
        for p in &parts[..parts.len().saturating_sub(1)] {
            if !at.is_empty() {
                at.push('/');
            }
            at.push_str(p);
            self.entries
                .entry(at.clone())
                .or_insert(Entry::Dir { mode: 0o755 });
        }
    }

    /// The paths this layer holds, sorted, without a leading slash.
    pub fn paths(&self) -> impl Iterator<Item = &str> {
        self.entries.keys().map(String::as_str)
    }

    /// Writes the tar, compresses it and computes both digests.
    pub fn seal(&self) -> Result<SealedLayer> {
        let mut b = tar::Builder::new(Vec::new());
        for (path, e) in &self.entries {
            let mut h = tar::Header::new_ustar();
            h.set_mtime(0);
            h.set_uid(0);
            h.set_gid(0);
            let io = |e| Error::io(format!("layer entry {path}"), e);
            match e {
                Entry::Dir { mode } => {
                    h.set_entry_type(tar::EntryType::Directory);
                    h.set_mode(*mode);
                    h.set_size(0);
                    b.append_data(&mut h, format!("{path}/"), std::io::empty())
                        .map_err(io)?;
                }
                Entry::File { data, mode } => {
                    h.set_entry_type(tar::EntryType::Regular);
                    h.set_mode(*mode);
                    h.set_size(data.len() as u64);
                    b.append_data(&mut h, path, data.as_slice()).map_err(io)?;
                }
            }
        }
        let tar = b.into_inner().map_err(|e| Error::io("layer", e))?;
        let diff_id = sha256_digest(&tar);
        let mut gz = GzBuilder::new()
            .mtime(0)
            .write(Vec::with_capacity(tar.len() / 2), Compression::default());
        gz.write_all(&tar).map_err(|e| Error::io("layer", e))?;
        let gzip = gz.finish().map_err(|e| Error::io("layer", e))?;
        Ok(SealedLayer {
            digest: sha256_digest(&gzip),
            diff_id,
            gzip,
        })
    }
}

fn clean(path: &str) -> String {
    path.trim_start_matches('/')
        .trim_end_matches('/')
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_files_same_digest_whatever_the_order() {
        let mut a = Layer::new();
        a.file("/usr/local/bin/x", b"x".to_vec(), 0o755)
            .file("/etc/y", b"y".to_vec(), 0o644);
        let mut b = Layer::new();
        b.file("/etc/y", b"y".to_vec(), 0o644)
            .file("/usr/local/bin/x", b"x".to_vec(), 0o755);
        let (sa, sb) = (a.seal().unwrap(), b.seal().unwrap());
        assert_eq!(sa.digest, sb.digest);
        assert_eq!(sa.diff_id, sb.diff_id);
        assert_ne!(sa.digest, sa.diff_id);
        let paths: Vec<&str> = a.paths().collect();
        assert_eq!(
            paths,
            [
                "etc",
                "etc/y",
                "usr",
                "usr/local",
                "usr/local/bin",
                "usr/local/bin/x"
            ]
        );
    }

    #[test]
    fn content_changes_the_digest() {
        let mut a = Layer::new();
        a.file("/m", b"1".to_vec(), 0o644);
        let mut b = Layer::new();
        b.file("/m", b"2".to_vec(), 0o644);
        assert_ne!(a.seal().unwrap().digest, b.seal().unwrap().digest);
    }
}
