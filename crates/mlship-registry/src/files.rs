//! The tracking server's artifacts, addressed by path (`<exp>/<run>/artifacts/…`), in a local
//! folder or an S3 bucket beside the registry's content-addressed store.
//!
//! Paths are checked before anything touches the store: relative, no `..`, no empty or `.`
//! segments, no backslashes or NUL, so nothing escapes the root. Writes are atomic: a local file
//! is written to a temporary name, synced and renamed; an S3 object is uploaded under a temporary
//! key and renamed, so a reader never sees half a file.

use std::fs::{self, File};
use std::io::{Read, Write};
use std::path::PathBuf;
use std::sync::Arc;

use object_store::path::Path as ObjPath;
use object_store::{ObjectStore, ObjectStoreExt, WriteMultipart};

use crate::error::{Error, Result, io};

/// One entry of a listing, relative to the folder listed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileEntry {
    pub path: String,
    pub is_dir: bool,
    /// Files only.
    pub size: Option<u64>,
}

/// Artifacts by path.
pub trait FileStore: Send + Sync {
    fn describe(&self) -> String;
    /// Writes a whole file atomically; returns its size.
    fn put(&self, path: &str, reader: &mut dyn Read) -> Result<u64>;
    /// Opens a file for reading, with its size; `Error::NotFound` when there is none.
    fn open(&self, path: &str) -> Result<(Box<dyn Read + Send>, u64)>;
    /// The entries directly under a folder (`""` is the root), sorted by path; empty for a file
    /// or a folder that does not exist.
    fn list(&self, dir: &str) -> Result<Vec<FileEntry>>;
    /// Deletes a file or a whole folder; deleting nothing is not an error.
    fn delete(&self, path: &str) -> Result<()>;

    /// Every file under a folder, with paths relative to it, sorted.
    fn read_tree(&self, dir: &str) -> Result<Vec<(String, Vec<u8>)>> {
        let mut out = Vec::new();
        let mut todo = vec![String::new()];
        while let Some(rel) = todo.pop() {
            let full = join(dir, &rel);
            for e in self.list(&full)? {
                let child = join(&rel, &e.path);
                if e.is_dir {
                    todo.push(child);
                } else {
                    let (mut r, _) = self.open(&join(dir, &child))?;
                    let mut b = Vec::new();
                    r.read_to_end(&mut b)
                        .map_err(io(format!("reading {child}")))?;
                    out.push((child, b));
                }
            }
        }
        out.sort();
        Ok(out)
    }
}

fn join(a: &str, b: &str) -> String {
    match (a.is_empty(), b.is_empty()) {
        (true, _) => b.to_string(),
        (_, true) => a.to_string(),
        _ => format!("{a}/{b}"),
    }
}

/// Checks an artifact path and returns it without leading or trailing slashes.
pub fn safe_path(p: &str) -> Result<String> {
    let bad = |why: &str| {
        Err(Error::Invalid(format!(
            "invalid artifact path {p:?}: {why}"
        )))
    };
    if p.starts_with('/') {
        return bad("it must be relative");
    }
    if p.contains('\\') || p.contains('\0') {
        return bad("backslashes and NUL are not allowed");
    }
    let trimmed = p.trim_end_matches('/');
    if trimmed.is_empty() {
        return Ok(String::new());
    }
    for seg in trimmed.split('/') {
        if seg == ".." {
            return bad("it must not climb with '..'");
        }
        if seg.is_empty() || seg == "." {
            return bad("it has an empty or '.' segment");
        }
    }
    Ok(trimmed.to_string())
}

/// A local folder.
#[derive(Debug)]
pub struct LocalFiles {
    root: PathBuf,
}

impl LocalFiles {
    pub fn open(root: impl Into<PathBuf>) -> Result<LocalFiles> {
        let root = root.into();
        fs::create_dir_all(root.join(".tmp"))
            .map_err(io(format!("creating {}", root.display())))?;
        Ok(LocalFiles { root })
    }

    fn path(&self, p: &str) -> Result<PathBuf> {
        let p = safe_path(p)?;
        if p == ".tmp" || p.starts_with(".tmp/") {
            return Err(Error::Invalid(format!("invalid artifact path {p:?}")));
        }
        Ok(if p.is_empty() {
            self.root.clone()
        } else {
            self.root.join(p)
        })
    }
}

impl FileStore for LocalFiles {
    fn describe(&self) -> String {
        self.root.display().to_string()
    }

    fn put(&self, path: &str, reader: &mut dyn Read) -> Result<u64> {
        let dest = self.path(path)?;
        if path.trim_end_matches('/').is_empty() {
            return Err(Error::Invalid("an artifact path is required".into()));
        }
        let dir = dest.parent().expect("below the root").to_path_buf();
        if dir.is_file() {
            return Err(Error::Conflict(format!(
                "invalid artifact path {path:?}: a parent is a file"
            )));
        }
        fs::create_dir_all(&dir).map_err(|e| match e.kind() {
            // A file where a folder of the path should be.
            std::io::ErrorKind::NotADirectory | std::io::ErrorKind::AlreadyExists => {
                Error::Conflict(format!(
                    "invalid artifact path {path:?}: a parent is a file"
                ))
            }
            _ => io(format!("creating {}", dir.display()))(e),
        })?;
        let tmp = crate::artifacts::Partial(self.root.join(".tmp").join(unique()));
        let mut f = File::create(&tmp.0).map_err(io(format!("creating {}", tmp.0.display())))?;
        let size = std::io::copy(reader, &mut f).map_err(io(format!("writing {path}")))?;
        f.flush().map_err(io(format!("writing {path}")))?;
        f.sync_all().map_err(io(format!("syncing {path}")))?;
        drop(f);
        if dest.is_dir() {
            return Err(Error::Conflict(format!(
                "invalid artifact path {path:?}: it is a folder"
            )));
        }
        fs::rename(&tmp.0, &dest).map_err(io(format!("moving {path} into place")))?;
        if let Ok(d) = File::open(&dir) {
            let _ = d.sync_all();
        }
        Ok(size)
    }

    fn open(&self, path: &str) -> Result<(Box<dyn Read + Send>, u64)> {
        let p = self.path(path)?;
        match File::open(&p) {
            Ok(f) => {
                let meta = f.metadata().map_err(io(format!("reading {path}")))?;
                if meta.is_dir() {
                    return Err(Error::NotFound(format!("no artifact file at {path}")));
                }
                Ok((Box::new(f), meta.len()))
            }
            // A path through a file names nothing.
            Err(e) if absent(&e) => Err(Error::NotFound(format!("no artifact at {path}"))),
            Err(e) => Err(Error::Io {
                context: format!("reading {path}"),
                source: e,
            }),
        }
    }

    fn list(&self, dir: &str) -> Result<Vec<FileEntry>> {
        let p = self.path(dir)?;
        let top = p == self.root;
        let Ok(rd) = fs::read_dir(&p) else {
            return Ok(Vec::new());
        };
        let mut out = Vec::new();
        for e in rd.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if top && name == ".tmp" {
                continue;
            }
            let Ok(meta) = e.metadata() else { continue };
            out.push(FileEntry {
                path: name,
                is_dir: meta.is_dir(),
                size: (!meta.is_dir()).then_some(meta.len()),
            });
        }
        out.sort_by(|a, b| a.path.cmp(&b.path));
        Ok(out)
    }

    fn delete(&self, path: &str) -> Result<()> {
        let p = self.path(path)?;
        if p == self.root {
            return Err(Error::Invalid("refusing to delete every artifact".into()));
        }
        let r = if p.is_dir() {
            fs::remove_dir_all(&p)
        } else {
            fs::remove_file(&p)
        };
        match r {
            Ok(()) => Ok(()),
            Err(e) if absent(&e) => Ok(()),
            Err(e) => Err(Error::Io {
                context: format!("deleting {path}"),
                source: e,
            }),
        }
    }
}

/// Whether an error says the path names nothing: missing, or through a file.
fn absent(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::NotFound | std::io::ErrorKind::NotADirectory
    )
}

fn unique() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!(
        "{}-{nanos}-{}.part",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// An S3 bucket (or S3-compatible store), under `PREFIX/`.
pub struct S3Files {
    store: Arc<dyn ObjectStore>,
    url: String,
    prefix: String,
    rt: tokio::runtime::Runtime,
}

impl std::fmt::Debug for S3Files {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Files").field("url", &self.url).finish()
    }
}

impl S3Files {
    /// Opens `s3://bucket/prefix`; nothing is contacted until the first call.
    pub fn open(url: &str) -> Result<S3Files> {
        let (store, prefix, rt) = crate::s3::connect(url)?;
        Ok(S3Files {
            store,
            url: url.to_string(),
            prefix,
            rt,
        })
    }

    fn key(&self, rest: &str) -> ObjPath {
        ObjPath::from(join(&self.prefix, rest))
    }

    fn err(&self, e: object_store::Error) -> Error {
        Error::Unavailable(format!("{}: {e}", self.url))
    }
}

impl FileStore for S3Files {
    fn describe(&self) -> String {
        self.url.clone()
    }

    fn put(&self, path: &str, reader: &mut dyn Read) -> Result<u64> {
        let path = safe_path(path)?;
        if path.is_empty() {
            return Err(Error::Invalid("an artifact path is required".into()));
        }
        let tmp = self.key(&format!(".tmp/{}", unique()));
        let dest = self.key(&path);
        // The reader may block (a request body arriving), so it is read outside `block_on`;
        // the guard lets the multipart writer spawn its part uploads on this store's runtime.
        let _guard = self.rt.enter();
        let upload = self
            .rt
            .block_on(self.store.put_multipart(&tmp))
            .map_err(|e| self.err(e))?;
        let mut w = WriteMultipart::new_with_chunk_size(upload, 8 << 20);
        let mut buf = vec![0u8; 1 << 20];
        let mut size = 0u64;
        loop {
            let n = match reader.read(&mut buf) {
                Ok(n) => n,
                Err(e) => {
                    let _ = self.rt.block_on(w.abort());
                    return Err(Error::Io {
                        context: format!("reading {path}"),
                        source: e,
                    });
                }
            };
            if n == 0 {
                break;
            }
            self.rt
                .block_on(w.wait_for_capacity(2))
                .map_err(|e| self.err(e))?;
            w.write(&buf[..n]);
            size += n as u64;
        }
        self.rt.block_on(w.finish()).map_err(|e| self.err(e))?;
        self.rt
            .block_on(self.store.rename(&tmp, &dest))
            .map_err(|e| self.err(e))?;
        Ok(size)
    }

    fn open(&self, path: &str) -> Result<(Box<dyn Read + Send>, u64)> {
        let path = safe_path(path)?;
        let key = self.key(&path);
        let b = self.rt.block_on(async {
            match self.store.get(&key).await {
                Ok(r) => r.bytes().await.map_err(|e| self.err(e)),
                Err(object_store::Error::NotFound { .. }) => {
                    Err(Error::NotFound(format!("no artifact at {path}")))
                }
                Err(e) => Err(self.err(e)),
            }
        })?;
        let n = b.len() as u64;
        Ok((Box::new(std::io::Cursor::new(b)), n))
    }

    fn list(&self, dir: &str) -> Result<Vec<FileEntry>> {
        let dir = safe_path(dir)?;
        let key = self.key(&dir);
        let base = if key.as_ref().is_empty() {
            None
        } else {
            Some(key)
        };
        let listing = self
            .rt
            .block_on(self.store.list_with_delimiter(base.as_ref()))
            .map_err(|e| self.err(e))?;
        let mut out = Vec::new();
        for p in listing.common_prefixes {
            if let Some(name) = p.filename() {
                if dir.is_empty() && self.prefix.is_empty() && name == ".tmp" {
                    continue;
                }
                out.push(FileEntry {
                    path: name.to_string(),
                    is_dir: true,
                    size: None,
                });
            }
        }
        for o in listing.objects {
            if let Some(name) = o.location.filename() {
                out.push(FileEntry {
                    path: name.to_string(),
                    is_dir: false,
                    size: Some(o.size),
                });
            }
        }
        out.retain(|e| !(dir.is_empty() && e.path == ".tmp"));
        out.sort_by(|a, b| a.path.cmp(&b.path));
        Ok(out)
    }

    fn delete(&self, path: &str) -> Result<()> {
        let path = safe_path(path)?;
        if path.is_empty() {
            return Err(Error::Invalid("refusing to delete every artifact".into()));
        }
        let key = self.key(&path);
        self.rt.block_on(async {
            match self.store.delete(&key).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                Err(e) => return Err(self.err(e)),
            }
            // A folder: every object below it.
            use futures_util::StreamExt;
            let mut below = self.store.list(Some(&key));
            let mut keys = Vec::new();
            while let Some(o) = below.next().await {
                keys.push(o.map_err(|e| self.err(e))?.location);
            }
            for k in keys {
                match self.store.delete(&k).await {
                    Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                    Err(e) => return Err(self.err(e)),
                }
            }
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_cannot_escape() {
        for bad in ["/etc/passwd", "../x", "a/../../x", "a//b", "a/./b", "a\\b"] {
            assert!(safe_path(bad).is_err(), "{bad}");
        }
        assert_eq!(safe_path("a/b/").unwrap(), "a/b");
        assert_eq!(safe_path("").unwrap(), "");
        assert_eq!(safe_path("..a/b..").unwrap(), "..a/b..");
    }

    #[test]
    fn local_put_list_open_delete() {
        let d = tempfile::tempdir().unwrap();
        let s = LocalFiles::open(d.path()).unwrap();
        s.put("1/r/artifacts/a.txt", &mut &b"hello"[..]).unwrap();
        s.put("1/r/artifacts/sub/b.txt", &mut &b"hi"[..]).unwrap();
        let l = s.list("1/r/artifacts").unwrap();
        assert_eq!(
            l,
            vec![
                FileEntry {
                    path: "a.txt".into(),
                    is_dir: false,
                    size: Some(5)
                },
                FileEntry {
                    path: "sub".into(),
                    is_dir: true,
                    size: None
                },
            ]
        );
        assert!(s.list("").unwrap().iter().all(|e| e.path != ".tmp"));
        let tree = s.read_tree("1/r/artifacts").unwrap();
        assert_eq!(tree[1], ("sub/b.txt".to_string(), b"hi".to_vec()));
        assert!(matches!(s.open("1/r/nope"), Err(Error::NotFound(_))));
        assert!(s.list("1/r/artifacts/a.txt").unwrap().is_empty());
        s.delete("1/r/artifacts/sub").unwrap();
        assert_eq!(s.list("1/r/artifacts").unwrap().len(), 1);
        assert!(s.put("../escape", &mut &b""[..]).is_err());
        assert!(s.put(".tmp/x", &mut &b""[..]).is_err());
    }
}
