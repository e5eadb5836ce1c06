//! Artifact stores: content addressed by sha256, written atomically, verified on every read.

use std::fs::{self, File};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::error::{Error, Result, io};

/// What a completed upload stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Stored {
    pub sha256: String,
    pub size: u64,
}

/// Where artifacts live. Implementations store each artifact under its sha256, never overwrite a
/// different content, and verify the hash on read.
pub trait ArtifactStore: Send + Sync {
    /// A name for messages, such as the folder or bucket.
    fn describe(&self) -> String;
    /// Streams `reader` into the store in constant memory; `progress` is told the bytes so far.
    fn put(&self, reader: &mut dyn Read, progress: &mut dyn FnMut(u64)) -> Result<Stored>;
    /// The whole artifact, verified against its hash.
    fn get(&self, sha256: &str) -> Result<Vec<u8>>;
    fn exists(&self, sha256: &str) -> Result<bool>;
    /// Removes an artifact (absent is fine).
    fn delete(&self, sha256: &str) -> Result<()>;
}

/// Hex of a sha256 digest.
pub fn hex(d: &[u8]) -> String {
    d.iter().map(|b| format!("{b:02x}")).collect()
}

/// Returns `b` if it hashes to `sha256`, else `Error::Corrupt`: every read goes through here.
pub(crate) fn verified(sha256: &str, b: Vec<u8>) -> Result<Vec<u8>> {
    let actual = sha256_hex(&b);
    if actual != sha256 {
        return Err(Error::Corrupt {
            sha256: sha256.to_string(),
            actual,
        });
    }
    Ok(b)
}

/// Hashes bytes as the stores do.
pub fn sha256_hex(b: &[u8]) -> String {
    hex(&Sha256::digest(b))
}

/// Checks that `s` is a lowercase sha256 in hex, the only keys the stores accept.
pub(crate) fn check_sha(s: &str) -> Result<()> {
    if s.len() == 64
        && s.bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
    {
        Ok(())
    } else {
        Err(Error::Store {
            store: "artifacts".into(),
            message: format!("{s:?} is not a sha256"),
        })
    }
}

/// A local folder: `ROOT/sha256/ab/cdef…`, written through `ROOT/tmp` with fsync and rename.
#[derive(Debug)]
pub struct LocalArtifacts {
    root: PathBuf,
}

impl LocalArtifacts {
    pub fn open(root: impl Into<PathBuf>) -> Result<LocalArtifacts> {
        let root = root.into();
        for d in [root.join("sha256"), root.join("tmp")] {
            fs::create_dir_all(&d).map_err(io(format!("creating {}", d.display())))?;
        }
        // Uploads cut short by a crash leave `.part` files; a day later nobody is writing them.
        if let Ok(entries) = fs::read_dir(root.join("tmp")) {
            let day = std::time::Duration::from_secs(86_400);
            for e in entries.flatten() {
                let old = e
                    .metadata()
                    .and_then(|m| m.modified())
                    .ok()
                    .and_then(|t| t.elapsed().ok())
                    .is_some_and(|age| age > day);
                if old {
                    let _ = fs::remove_file(e.path());
                }
            }
        }
        Ok(LocalArtifacts { root })
    }

    fn path(&self, sha: &str) -> PathBuf {
        self.root.join("sha256").join(&sha[..2]).join(&sha[2..])
    }
}

fn sync_dir(p: &Path) -> Result<()> {
    File::open(p)
        .and_then(|f| f.sync_all())
        .map_err(io(format!("syncing {}", p.display())))
}

impl ArtifactStore for LocalArtifacts {
    fn describe(&self) -> String {
        self.root.display().to_string()
    }

    fn put(&self, reader: &mut dyn Read, progress: &mut dyn FnMut(u64)) -> Result<Stored> {
        let tmp_dir = self.root.join("tmp");
        let tmp = Partial(tempfile_in(&tmp_dir)?);
        let mut f = File::create(&tmp.0).map_err(io(format!("creating {}", tmp.0.display())))?;
        let mut h = Sha256::new();
        let mut buf = vec![0u8; 1 << 20];
        let mut size = 0u64;
        loop {
            let n = reader.read(&mut buf).map_err(io("reading the artifact"))?;
            if n == 0 {
                break;
            }
            h.update(&buf[..n]);
            f.write_all(&buf[..n]).map_err(io(format!(
                "writing the artifact into {}",
                self.root.display()
            )))?;
            size += n as u64;
            progress(size);
        }
        f.sync_all()
            .map_err(io(format!("syncing {}", tmp.0.display())))?;
        drop(f);
        let sha = hex(&h.finalize());
        let dest = self.path(&sha);
        let dir = dest.parent().expect("artifact paths have a parent");
        fs::create_dir_all(dir).map_err(io(format!("creating {}", dir.display())))?;
        // Same content already stored: the temporary copy goes (as it does on any failure).
        if !dest.exists() {
            fs::rename(&tmp.0, &dest)
                .map_err(io(format!("moving the artifact to {}", dest.display())))?;
            sync_dir(dir)?;
        }
        Ok(Stored { sha256: sha, size })
    }

    fn get(&self, sha256: &str) -> Result<Vec<u8>> {
        check_sha(sha256)?;
        let p = self.path(sha256);
        let b = match fs::read(&p) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(Error::MissingArtifact(sha256.to_string()));
            }
            Err(e) => {
                return Err(Error::Io {
                    context: format!("reading {}", p.display()),
                    source: e,
                });
            }
        };
        verified(sha256, b)
    }

    fn exists(&self, sha256: &str) -> Result<bool> {
        check_sha(sha256)?;
        Ok(self.path(sha256).exists())
    }

    fn delete(&self, sha256: &str) -> Result<()> {
        check_sha(sha256)?;
        match fs::remove_file(self.path(sha256)) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(Error::Io {
                context: format!("deleting artifact {sha256}"),
                source: e,
            }),
        }
    }
}

/// A temporary file being written, removed when dropped: a write that fails (a full disk, a
/// reader that errs) leaves nothing behind, and one renamed into place has nothing to remove.
pub(crate) struct Partial(pub(crate) PathBuf);

impl Drop for Partial {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.0);
    }
}

/// A fresh temporary path in `dir` (unique per process and call).
fn tempfile_in(dir: &Path) -> Result<PathBuf> {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let name = format!(
        "{}-{}-{}.part",
        std::process::id(),
        nanos,
        N.fetch_add(1, Ordering::Relaxed)
    );
    Ok(dir.join(name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn put_get_verify_and_dedupe() {
        let d = tempfile::tempdir().unwrap();
        let s = LocalArtifacts::open(d.path()).unwrap();
        let a = s.put(&mut &b"hello"[..], &mut |_| {}).unwrap();
        assert_eq!(a.sha256, sha256_hex(b"hello"));
        assert_eq!(s.get(&a.sha256).unwrap(), b"hello");
        assert_eq!(s.put(&mut &b"hello"[..], &mut |_| {}).unwrap(), a);
        // Corruption on disk is caught on read.
        fs::write(s.path(&a.sha256), b"jello").unwrap();
        assert!(matches!(s.get(&a.sha256), Err(Error::Corrupt { .. })));
        s.delete(&a.sha256).unwrap();
        assert!(matches!(s.get(&a.sha256), Err(Error::MissingArtifact(_))));
        assert!(s.get("../../etc/passwd").is_err());
    }
}
