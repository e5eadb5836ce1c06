//! The content-addressed cache, `.dvc/cache/files/md5/XX/REST`, and the same layout under a local
//! remote. Objects are read-only (0444), written to a temporary name in their folder and renamed
//! into place, and verified against their name whenever they are read, so a torn or corrupted
//! object is reported, never checked out or pushed.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use md5::{Digest, Md5};

use crate::error::{Error, Result, io};
use crate::objects::CHUNK;

/// An object store laid out as DVC's cache: `ROOT/files/md5/XX/REST`.
#[derive(Clone, Debug)]
pub struct ObjectDir {
    root: PathBuf,
    /// Objects this process wrote after checking their bytes: a checkout right after a fetch
    /// copies them without hashing them again.
    verified: std::sync::Arc<std::sync::Mutex<std::collections::HashSet<String>>>,
}

static TMP: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// A temporary name beside `dest`, unique in this process.
pub(crate) fn temp_beside(dest: &Path) -> PathBuf {
    let n = TMP.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let name = dest
        .file_name()
        .map(|f| f.to_string_lossy().to_string())
        .unwrap_or_default();
    static PID: std::sync::OnceLock<u32> = std::sync::OnceLock::new();
    let pid = *PID.get_or_init(std::process::id);
    dest.with_file_name(format!(".{name}.{pid}.{n}.tmp"))
}

/// Files at least this large are copied by the kernel while another thread hashes them.
const BIG: u64 = 8 << 20;

/// Copies `src` to a new file `dest` and returns the md5 and size of the bytes. Small files are
/// read once, hashed as they are written; a large one is copied by the kernel (`copy_file_range`,
/// a reflink where the file system has them) while a second thread hashes it, so the time is the
/// slower of the two, not their sum. A source that changes during the copy is refused. On failure
/// `dest` is removed.
pub(crate) fn copy_hashing(src: &Path, dest: &Path, mode: u32) -> Result<(String, u64)> {
    let before = std::fs::metadata(src).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => Error::Missing(format!("{} does not exist", src.display())),
        _ => Error::Io {
            path: src.to_path_buf(),
            source: e,
        },
    })?;
    if before.len() < BIG {
        return copy_hashing_inline(src, dest, mode);
    }
    let (hashed, copied) = std::thread::scope(|s| {
        let h = s.spawn(|| crate::objects::md5_file(src));
        let c = std::fs::copy(src, dest).map_err(io(dest));
        (h.join(), c)
    });
    let cleanup = |e: Error| {
        let _ = std::fs::remove_file(dest);
        e
    };
    let (md5, size) = match hashed {
        Ok(r) => r.map_err(cleanup)?,
        Err(_) => return Err(cleanup(Error::Invalid("the hashing thread failed".into()))),
    };
    let copied = copied.map_err(cleanup)?;
    let after = std::fs::metadata(src).map_err(io(src)).map_err(cleanup)?;
    let stamp = crate::state::Stamp::of;
    if copied != size || stamp(&before) != stamp(&after) {
        return Err(cleanup(Error::Invalid(format!(
            "{} changed while it was being copied; try again",
            src.display()
        ))));
    }
    set_mode(dest, mode).map_err(cleanup)?;
    Ok((md5, size))
}

/// One read: each chunk is hashed and written.
fn copy_hashing_inline(src: &Path, dest: &Path, mode: u32) -> Result<(String, u64)> {
    let mut f = std::fs::File::open(src).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => Error::Missing(format!("{} does not exist", src.display())),
        _ => Error::Io {
            path: src.to_path_buf(),
            source: e,
        },
    })?;
    let mut out = create_with_mode(dest, mode).map_err(io(dest))?;
    let mut h = Md5::new();
    let mut buf = vec![0u8; CHUNK];
    let mut size = 0u64;
    let copied: Result<()> = (|| {
        loop {
            let n = f.read(&mut buf).map_err(io(src))?;
            if n == 0 {
                return Ok(());
            }
            h.update(&buf[..n]);
            out.write_all(&buf[..n]).map_err(io(dest))?;
            size += n as u64;
        }
    })();
    drop(out);
    match copied {
        Ok(()) => Ok((hex::encode(h.finalize()), size)),
        Err(e) => {
            let _ = std::fs::remove_file(dest);
            Err(e)
        }
    }
}

/// An object's expected md5 (a `.dir` object's name without its suffix) checked against what was
/// read; `tmp` is removed when they differ.
pub(crate) fn check(md5: &str, got: &str, what: impl Fn() -> String, tmp: &Path) -> Result<()> {
    let want = md5.trim_end_matches(".dir");
    if got == want {
        return Ok(());
    }
    let _ = std::fs::remove_file(tmp);
    Err(Error::Corrupt {
        what: what(),
        want: want.into(),
        got: got.into(),
    })
}

/// Creates a new file (truncating one left over) with the given permission bits.
pub(crate) fn create_with_mode(path: &Path, mode: u32) -> std::io::Result<std::fs::File> {
    let mut o = std::fs::OpenOptions::new();
    o.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut o, mode);
    let _ = mode;
    o.open(path)
}

/// Sets a file's permission bits (no-op where there are none).
pub(crate) fn set_mode(path: &Path, mode: u32) -> Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).map_err(io(path))?;
    }
    let _ = (path, mode);
    Ok(())
}

impl ObjectDir {
    pub fn new(root: impl Into<PathBuf>) -> ObjectDir {
        ObjectDir {
            root: root.into(),
            verified: Default::default(),
        }
    }

    fn mark_verified(&self, md5: &str) {
        self.verified
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(md5.to_string());
    }

    fn is_verified(&self, md5: &str) -> bool {
        self.verified
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .contains(md5)
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Where an object lives.
    pub fn path_of(&self, md5: &str) -> PathBuf {
        let (a, b) = md5.split_at(2.min(md5.len()));
        self.root.join("files").join("md5").join(a).join(b)
    }

    pub fn has(&self, md5: &str) -> bool {
        self.path_of(md5).is_file()
    }

    /// Copies a file into the store while hashing it (one read of the source), and returns its md5
    /// and size. An object already there is kept.
    pub fn add_file(&self, src: &Path) -> Result<(String, u64)> {
        let meta = std::fs::metadata(src).map_err(io(src))?;
        if meta.len() < BIG {
            // Small: read, hash, and write the object straight into its own folder (creates spread
            // over 256 folders instead of queueing on one), skipped when it is there already.
            let bytes = std::fs::read(src).map_err(io(src))?;
            let md5 = crate::objects::md5_hex(&bytes);
            self.add_bytes(&md5, &bytes)?;
            return Ok((md5, bytes.len() as u64));
        }
        let dir = self.root.join("files").join("md5");
        std::fs::create_dir_all(&dir).map_err(io(&dir))?;
        let tmp = temp_beside(&dir.join("incoming"));
        let (md5, size) = copy_hashing(src, &tmp, 0o444)?;
        self.place(&tmp, &md5)?;
        Ok((md5, size))
    }

    /// Stores bytes under the name given (already known to be their md5): a read-only temporary
    /// file in the object's folder, renamed into place.
    pub fn add_bytes(&self, md5: &str, bytes: &[u8]) -> Result<()> {
        let dest = self.path_of(md5);
        if dest.is_file() {
            return Ok(());
        }
        let tmp = temp_beside(&dest);
        let write = |tmp: &Path| -> std::io::Result<()> {
            let mut o = std::fs::OpenOptions::new();
            o.write(true).create_new(true);
            #[cfg(unix)]
            std::os::unix::fs::OpenOptionsExt::mode(&mut o, 0o444);
            o.open(tmp)?.write_all(bytes)
        };
        if let Err(e) = write(&tmp) {
            if e.kind() != std::io::ErrorKind::NotFound {
                let _ = std::fs::remove_file(&tmp);
                return Err(Error::Io {
                    path: tmp,
                    source: e,
                });
            }
            let parent = dest.parent().unwrap_or(&self.root);
            std::fs::create_dir_all(parent).map_err(io(parent))?;
            write(&tmp).map_err(|e| {
                let _ = std::fs::remove_file(&tmp);
                Error::Io {
                    path: tmp.clone(),
                    source: e,
                }
            })?;
        }
        std::fs::rename(&tmp, &dest).map_err(io(&dest))?;
        self.mark_verified(md5);
        Ok(())
    }

    /// Moves a finished temporary file (created read-only) into place as object `md5`; an object
    /// already there wins and the temporary file goes.
    pub fn place(&self, tmp: &Path, md5: &str) -> Result<()> {
        let dest = self.path_of(md5);
        if dest.is_file() {
            let _ = std::fs::remove_file(tmp);
            return Ok(());
        }
        let parent = dest.parent().unwrap_or(&self.root);
        std::fs::create_dir_all(parent).map_err(io(parent))?;
        std::fs::rename(tmp, &dest).map_err(io(&dest))?;
        self.mark_verified(md5);
        Ok(())
    }

    /// An object's bytes, checked against its name (for `.dir` manifests).
    pub fn read_verified(&self, md5: &str) -> Result<Vec<u8>> {
        let p = self.path_of(md5);
        let b = std::fs::read(&p).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => Error::Missing(format!("{md5} is not in the cache")),
            _ => Error::Io {
                path: p.clone(),
                source: e,
            },
        })?;
        let got = crate::objects::md5_hex(&b);
        let want = md5.trim_end_matches(".dir");
        if got != want {
            return Err(Error::Corrupt {
                what: p.display().to_string(),
                want: want.into(),
                got,
            });
        }
        Ok(b)
    }

    /// Writes object `md5` to `dest` (through a temporary file beside it, renamed over it),
    /// checking its bytes on the way: a corrupted object is refused and `dest` is left as it was.
    pub fn copy_out(&self, md5: &str, dest: &Path, exec: bool) -> Result<u64> {
        let src = self.path_of(md5);
        if !src.is_file() {
            return Err(Error::Missing(format!(
                "{} is not in the cache ({md5}); run `mlship data pull` or `fetch`",
                dest.display()
            )));
        }
        if let Some(parent) = dest.parent() {
            std::fs::create_dir_all(parent).map_err(io(parent))?;
        }
        let tmp = temp_beside(dest);
        // DVC gives a tracked executable file the owner's execute bit.
        let mode = if exec { 0o744 } else { 0o644 };
        let size = if self.is_verified(md5) {
            // Written and checked by this process a moment ago (a pull's fetch): copied as is.
            let n = std::fs::copy(&src, &tmp).map_err(io(&tmp))?;
            set_mode(&tmp, mode)?;
            n
        } else {
            let (got, size) = copy_hashing(&src, &tmp, mode)?;
            check(md5, &got, || src.display().to_string(), &tmp)?;
            size
        };
        if let Err(e) = std::fs::rename(&tmp, dest) {
            // A folder where the file goes: replaced (the checkout checked nothing unsaved is in it).
            if !dest.is_dir() {
                let _ = std::fs::remove_file(&tmp);
                return Err(Error::Io {
                    path: dest.to_path_buf(),
                    source: e,
                });
            }
            std::fs::remove_dir_all(dest).map_err(io(dest))?;
            std::fs::rename(&tmp, dest).map_err(io(dest))?;
        }
        Ok(size)
    }

    /// Whether the store holds every one of `md5s`: one look per object for a few, one listing
    /// of the store for many.
    pub fn has_all(&self, md5s: &[String]) -> Result<bool> {
        if md5s.len() < 512 {
            return Ok(md5s.iter().all(|m| self.has(m)));
        }
        let all: std::collections::HashSet<String> = self.list()?.into_iter().collect();
        Ok(md5s.iter().all(|m| all.contains(m)))
    }

    /// Every object name in the store.
    pub fn list(&self) -> Result<Vec<String>> {
        let base = self.root.join("files").join("md5");
        let mut out = Vec::new();
        let Ok(rd) = std::fs::read_dir(&base) else {
            return Ok(out);
        };
        for d in rd {
            let d = d.map_err(io(&base))?;
            let prefix = d.file_name().to_string_lossy().to_string();
            if prefix.len() != 2 || !d.path().is_dir() {
                continue;
            }
            for f in std::fs::read_dir(d.path()).map_err(io(d.path()))? {
                let f = f.map_err(io(d.path()))?;
                let name = format!("{prefix}{}", f.file_name().to_string_lossy());
                if crate::objects::is_object_name(&name) {
                    out.push(name);
                }
            }
        }
        Ok(out)
    }

    /// Removes an object (write permission on the folder is what counts).
    pub fn remove(&self, md5: &str) -> Result<()> {
        let p = self.path_of(md5);
        match std::fs::remove_file(&p) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(Error::Io { path: p, source: e }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn objects_are_read_only_named_by_md5_and_verified() {
        let d = tempfile::tempdir().unwrap();
        let store = ObjectDir::new(d.path().join("cache"));
        let src = d.path().join("a.txt");
        std::fs::write(&src, b"hello\n").unwrap();
        let (md5, size) = store.add_file(&src).unwrap();
        assert_eq!(
            (md5.as_str(), size),
            ("b1946ac92492d2347c6235b4d2611184", 6)
        );
        let p = store.path_of(&md5);
        assert!(p.ends_with("files/md5/b1/946ac92492d2347c6235b4d2611184"));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(
                std::fs::metadata(&p).unwrap().permissions().mode() & 0o777,
                0o444
            );
        }
        let out = d.path().join("out/x.txt");
        store.copy_out(&md5, &out, false).unwrap();
        assert_eq!(std::fs::read(&out).unwrap(), b"hello\n");
        // Corrupt the object: a checkout (by another process, which did not write it) refuses it
        // and leaves the workspace file as it was.
        let store = ObjectDir::new(store.root());
        set_mode(&p, 0o644).unwrap();
        std::fs::write(&p, b"evil\n").unwrap();
        std::fs::write(&out, b"mine").unwrap();
        let e = store.copy_out(&md5, &out, false).unwrap_err();
        assert!(matches!(e, Error::Corrupt { .. }), "{e}");
        assert_eq!(std::fs::read(&out).unwrap(), b"mine");
        assert_eq!(store.list().unwrap(), [md5]);
    }
}
