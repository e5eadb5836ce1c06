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
    /// copies them without hashing them again, and writes the small ones it still holds without
    /// reading them back.
    verified: std::sync::Arc<std::sync::Mutex<Verified>>,
    /// Link kinds this file system refused (reflink, hardlink, symlink): tried once, as DVC
    /// tests its cache types once, and not again for every file.
    refused: std::sync::Arc<[std::sync::atomic::AtomicBool; 3]>,
}

/// What [`ObjectDir`] remembers of the objects it wrote.
#[derive(Debug, Default)]
struct Verified {
    names: std::collections::HashSet<String>,
    /// The bytes of small objects, up to [`KEPT`] in all.
    kept: std::collections::HashMap<String, std::sync::Arc<[u8]>>,
    kept_bytes: usize,
}

/// How many bytes of freshly written objects an [`ObjectDir`] keeps for a checkout.
const KEPT: usize = 64 << 20;

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

/// Objects up to this size are read whole into memory and written with one call.
const SMALL: u64 = 1 << 20;

/// A file's bytes if it holds at most [`SMALL`] of them (`None` when it is larger), read without
/// asking the file system for its size first.
pub(crate) fn read_small(path: &Path) -> std::io::Result<Option<Vec<u8>>> {
    let mut f = std::fs::File::open(path)?;
    read_rest(&mut f, Vec::with_capacity(8 << 10))
}

/// [`read_small`] of object `md5` (a `.dir` object's name with its suffix), with the md5 of what
/// was read: one read when the object fits the first buffer, its name telling that nothing is
/// missing (no second read to see the end); otherwise, or when the bytes do not match their
/// name, read on to the end (the caller checks the md5 again).
pub(crate) fn read_small_named(
    path: &Path,
    md5: &str,
) -> std::io::Result<Option<(Vec<u8>, String)>> {
    let mut f = std::fs::File::open(path)?;
    let bytes = read_once(&mut f, 8 << 10)?;
    if bytes.len() < 8 << 10 {
        let got = crate::objects::md5_hex(&bytes);
        if got == md5.trim_end_matches(".dir") {
            return Ok(Some((bytes, got)));
        }
    }
    let Some(bytes) = read_rest(&mut f, bytes)? else {
        return Ok(None);
    };
    let got = crate::objects::md5_hex(&bytes);
    Ok(Some((bytes, got)))
}

/// One `read` of at most `len` bytes from the start of `f`.
fn read_once(f: &mut std::fs::File, len: usize) -> std::io::Result<Vec<u8>> {
    let mut bytes = vec![0u8; len];
    let n = loop {
        match f.read(&mut bytes) {
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            r => break r?,
        }
    };
    bytes.truncate(n);
    Ok(bytes)
}

/// `bytes` (read from `f` so far) and the rest of `f`, or `None` past [`SMALL`] bytes.
fn read_rest(f: &mut std::fs::File, mut bytes: Vec<u8>) -> std::io::Result<Option<Vec<u8>>> {
    f.take((SMALL + 1).saturating_sub(bytes.len() as u64))
        .read_to_end(&mut bytes)?;
    Ok((bytes.len() as u64 <= SMALL).then_some(bytes))
}

/// [`read_small`] of a file a `stat` just found `size` bytes long: one read asking for a byte
/// more, which comes back short exactly when the file still ends there (a file that changed is
/// read to its end, as `read_small` reads it). `None` when it holds more than [`SMALL`] bytes.
pub(crate) fn read_sized(path: &Path, size: u64) -> std::io::Result<Option<Vec<u8>>> {
    if size > SMALL {
        return Ok(None);
    }
    let mut f = std::fs::File::open(path)?;
    let bytes = read_once(&mut f, size as usize + 1)?;
    if bytes.len() as u64 == size {
        return Ok(Some(bytes));
    }
    // Longer or shorter than the stat said: read on to the end, within the limit.
    read_rest(&mut f, bytes)
}

/// Creates `path` (which must not exist) with `mode` and `bytes`, making its folder when it is
/// missing; returns the new file, still open. A failed write removes the file.
pub(crate) fn write_new(path: &Path, bytes: &[u8], mode: u32) -> Result<std::fs::File> {
    let write = || -> std::io::Result<std::fs::File> {
        let mut o = std::fs::OpenOptions::new();
        o.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut o, mode);
        let mut f = o.open(path)?;
        f.write_all(bytes)?;
        Ok(f)
    };
    let mut r = write();
    if matches!(&r, Err(e) if e.kind() == std::io::ErrorKind::NotFound) {
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(io(parent))?;
        }
        r = write();
    }
    r.map_err(|e| {
        let _ = std::fs::remove_file(path);
        Error::Io {
            path: path.to_path_buf(),
            source: e,
        }
    })
}

/// How [`link_new`] went.
#[cfg(target_os = "linux")]
enum Linked {
    /// The new file has the name; it is still open.
    Placed(std::fs::File),
    /// Something had the name already; it stays, and the new file is gone.
    Taken,
    /// The file system or the system cannot (no `O_TMPFILE`, no `/proc`): use a temporary name.
    Unsupported,
}

/// On Linux, writes `bytes` to a file without a name in `dest`'s folder (`O_TMPFILE`, the
/// folder made when missing) and links it in as `dest` once it is whole, unless something has
/// that name already: no partial file ever has the name, as with a temporary name, and no name
/// is made and renamed.
#[cfg(target_os = "linux")]
fn link_new(dest: &Path, bytes: &[u8], mode: u32) -> Result<Linked> {
    use rustix::fs::{AtFlags, CWD, Mode, OFlags};
    use rustix::io::Errno;
    let Some(dir) = dest.parent() else {
        return Ok(Linked::Unsupported);
    };
    let flags = OFlags::WRONLY | OFlags::TMPFILE | OFlags::CLOEXEC;
    let open = || rustix::fs::open(dir, flags, Mode::from_raw_mode(mode));
    let fd = match open() {
        Err(Errno::NOENT) => {
            std::fs::create_dir_all(dir).map_err(io(dir))?;
            open()
        }
        r => r,
    };
    // Kernels before 3.11 say EISDIR, file systems without unnamed files EOPNOTSUPP, sandboxes
    // other things: whatever the reason, the temporary name's way is tried, and reports a
    // real failure (a folder that cannot be written, a full disk) with its own error.
    let Ok(fd) = fd else {
        return Ok(Linked::Unsupported);
    };
    let mut file = std::fs::File::from(fd);
    file.write_all(bytes).map_err(io(dest))?;
    let at = format!("/proc/self/fd/{}", std::os::fd::AsRawFd::as_raw_fd(&file));
    match rustix::fs::linkat(CWD, at.as_str(), CWD, dest, AtFlags::SYMLINK_FOLLOW) {
        Ok(()) => Ok(Linked::Placed(file)),
        Err(Errno::EXIST) => Ok(Linked::Taken),
        // No `/proc`, or a system that will not link an open file: as above.
        Err(_) => Ok(Linked::Unsupported),
    }
}

/// Moves a finished temporary object to its name unless an object is there already (then the
/// temporary file goes): an object in place is never replaced, so workspace files hard-linked to
/// it stay linked when two threads store the same bytes at once. On Linux one `renameat2` with
/// `RENAME_NOREPLACE` decides; elsewhere (or on a file system without it) a look, then a rename.
/// Returns whether the temporary file became the object.
fn install(tmp: &Path, dest: &Path) -> Result<bool> {
    let failed = |e: std::io::Error| {
        let _ = std::fs::remove_file(tmp);
        Error::Io {
            path: dest.to_path_buf(),
            source: e,
        }
    };
    #[cfg(target_os = "linux")]
    {
        use rustix::fs::{CWD, RenameFlags, renameat_with};
        use rustix::io::Errno;
        match renameat_with(CWD, tmp, CWD, dest, RenameFlags::NOREPLACE) {
            Ok(()) => return Ok(true),
            Err(Errno::EXIST) => {
                let _ = std::fs::remove_file(tmp);
                return Ok(false);
            }
            Err(Errno::INVAL | Errno::NOSYS | Errno::NOTSUP) => {}
            Err(e) => return Err(failed(e.into())),
        }
    }
    if dest.is_file() {
        let _ = std::fs::remove_file(tmp);
        return Ok(false);
    }
    std::fs::rename(tmp, dest).map_err(failed)?;
    Ok(true)
}

/// Renames a finished temporary file over `dest`; a folder where the file goes is replaced
/// (a checkout has made sure nothing unsaved is in it). On failure the temporary file goes.
fn replace(tmp: &Path, dest: &Path) -> Result<()> {
    if let Err(e) = std::fs::rename(tmp, dest) {
        if !dest.is_dir() {
            let _ = std::fs::remove_file(tmp);
            return Err(Error::Io {
                path: dest.to_path_buf(),
                source: e,
            });
        }
        std::fs::remove_dir_all(dest).map_err(io(dest))?;
        std::fs::rename(tmp, dest).map_err(io(dest))?;
    }
    Ok(())
}

fn missing(md5: &str, dest: &Path) -> Error {
    Error::Missing(format!(
        "{} is not in the cache ({md5}); run `mlship data pull` or `fetch`",
        dest.display()
    ))
}

/// How a checkout puts a cache object in the workspace: DVC's `cache.type`, a list tried in
/// order (`reflink,copy` unless the config says otherwise).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Link {
    Reflink,
    Hardlink,
    Symlink,
    Copy,
}

impl Link {
    /// DVC's default: a reflink where the file system has them, else a copy.
    pub const DEFAULT: [Link; 2] = [Link::Reflink, Link::Copy];

    fn name(self) -> &'static str {
        match self {
            Link::Reflink => "reflink",
            Link::Hardlink => "hardlink",
            Link::Symlink => "symlink",
            Link::Copy => "copy",
        }
    }

    /// `cache.type`'s value: kinds separated by commas.
    pub fn parse_list(text: &str) -> std::result::Result<Vec<Link>, String> {
        let all = [Link::Reflink, Link::Hardlink, Link::Symlink, Link::Copy];
        let list = text
            .split(',')
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .map(|t| {
                all.into_iter().find(|l| l.name() == t).ok_or_else(|| {
                    format!("cache.type: unknown link type '{t}' (expected reflink, hardlink, symlink or copy)")
                })
            })
            .collect::<std::result::Result<Vec<_>, _>>()?;
        if list.is_empty() {
            return Err("cache.type is empty (expected reflink, hardlink, symlink or copy)".into());
        }
        Ok(list)
    }

    /// The list as `cache.type` writes it.
    pub fn render(list: &[Link]) -> String {
        list.iter().map(|l| l.name()).collect::<Vec<_>>().join(",")
    }

    /// Whether a workspace file placed this way shares the cache object's bytes (so `add`
    /// replaces the files it stored by links, as DVC does).
    pub fn shares(list: &[Link]) -> bool {
        list.iter()
            .take_while(|l| **l != Link::Copy)
            .any(|l| matches!(l, Link::Hardlink | Link::Symlink))
    }
}

impl ObjectDir {
    pub fn new(root: impl Into<PathBuf>) -> ObjectDir {
        ObjectDir {
            root: root.into(),
            verified: Default::default(),
            refused: Default::default(),
        }
    }

    fn verified(&self) -> std::sync::MutexGuard<'_, Verified> {
        self.verified.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn mark_verified(&self, md5: &str) {
        self.verified().names.insert(md5.to_string());
    }

    fn is_verified(&self, md5: &str) -> bool {
        self.verified().names.contains(md5)
    }

    /// Remembers a small object's bytes (while the budget lasts) for a checkout to come.
    fn keep(&self, md5: &str, bytes: &[u8]) {
        let mut v = self.verified();
        if v.kept_bytes + bytes.len() <= KEPT {
            v.kept_bytes += bytes.len();
            v.kept.insert(md5.to_string(), bytes.into());
        }
    }

    fn kept(&self, md5: &str) -> Option<std::sync::Arc<[u8]>> {
        self.verified().kept.get(md5).cloned()
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
    /// and size; `size` is what a `stat` of it said just before. An object already there is kept.
    pub fn add_file(&self, src: &Path, size: u64) -> Result<(String, u64)> {
        if let Some(bytes) = read_sized(src, size).map_err(io(src))? {
            // Small: read, hash, and write the object straight into its own folder (creates
            // spread over 256 folders instead of queueing on one). No look first: an object
            // already there stays, and the new copy goes (see `install`).
            let md5 = crate::objects::md5_hex(&bytes);
            self.add_new(&md5, &bytes)?;
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
    /// file in the object's folder, renamed into place. An object already there is kept.
    pub fn add_bytes(&self, md5: &str, bytes: &[u8]) -> Result<()> {
        if self.has(md5) {
            return Ok(());
        }
        self.add_new(md5, bytes)
    }

    /// As [`ObjectDir::add_bytes`] without a look first, for an object the caller expects to be
    /// missing (one already there stays, and the new copy goes). The object's folder is made
    /// only when the file cannot be created without it.
    pub fn add_new(&self, md5: &str, bytes: &[u8]) -> Result<()> {
        let dest = self.path_of(md5);
        #[cfg(target_os = "linux")]
        match link_new(&dest, bytes, 0o444)? {
            Linked::Placed(_) => {
                self.mark_verified(md5);
                return Ok(());
            }
            Linked::Taken => return Ok(()),
            Linked::Unsupported => {}
        }
        self.add_renamed(md5, bytes)
    }

    /// [`ObjectDir::add_new`] by a temporary name and a rename, where a file without a name
    /// cannot be made.
    fn add_renamed(&self, md5: &str, bytes: &[u8]) -> Result<()> {
        let dest = self.path_of(md5);
        let tmp = temp_beside(&dest);
        write_new(&tmp, bytes, 0o444)?;
        // An object found in place is not vouched for: only the bytes just written are.
        if install(&tmp, &dest)? {
            self.mark_verified(md5);
        }
        Ok(())
    }

    /// As [`ObjectDir::add_new`], keeping the bytes for a checkout that follows (a pull).
    pub fn add_new_kept(&self, md5: &str, bytes: &[u8]) -> Result<()> {
        self.add_new(md5, bytes)?;
        self.keep(md5, bytes);
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
        if install(tmp, &dest)? {
            self.mark_verified(md5);
        }
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

    /// Puts object `md5` at `dest` with the first of `links` that works here (DVC's
    /// `cache.type`: a reflink fails on file systems without them, a hardlink across devices).
    /// The object's bytes are checked first (unless this process wrote them), so a corrupted
    /// object is never linked or copied into the workspace; `dest` is replaced in one rename.
    /// Returns the placed file's metadata (for the state cache).
    pub fn link_out(
        &self,
        md5: &str,
        dest: &Path,
        exec: bool,
        links: &[Link],
    ) -> Result<std::fs::Metadata> {
        use std::sync::atomic::Ordering::Relaxed;
        for &link in links {
            let refused = match link {
                Link::Copy => return self.copy_out(md5, dest, exec),
                Link::Reflink => &self.refused[0],
                Link::Hardlink => &self.refused[1],
                Link::Symlink => &self.refused[2],
            };
            if refused.load(Relaxed) {
                continue;
            }
            match self.try_link(link, md5, dest, exec)? {
                Some(meta) => return Ok(meta),
                None => refused.store(true, Relaxed),
            }
        }
        Err(Error::Invalid(format!(
            "{}: none of the cache types {} works on this file system; add `copy` to cache.type",
            dest.display(),
            Link::render(links)
        )))
    }

    /// One link of [`ObjectDir::link_out`]; `None` when the file system refuses that kind.
    fn try_link(
        &self,
        link: Link,
        md5: &str,
        dest: &Path,
        exec: bool,
    ) -> Result<Option<std::fs::Metadata>> {
        let src = self.path_of(md5);
        if !self.is_verified(md5) {
            let (got, _) = crate::objects::md5_file(&src).map_err(|e| match e {
                Error::Io { source, .. } if source.kind() == std::io::ErrorKind::NotFound => {
                    missing(md5, dest)
                }
                other => other,
            })?;
            check(md5, &got, || src.display().to_string(), Path::new(""))?;
            self.mark_verified(md5);
        }
        let tmp = temp_beside(dest);
        let make = |tmp: &Path| -> std::io::Result<()> {
            match link {
                Link::Hardlink => std::fs::hard_link(&src, tmp),
                #[cfg(unix)]
                Link::Symlink => std::os::unix::fs::symlink(&src, tmp),
                #[cfg(target_os = "linux")]
                Link::Reflink => {
                    let from = std::fs::File::open(&src)?;
                    let to = create_with_mode(tmp, if exec { 0o744 } else { 0o644 })?;
                    rustix::fs::ioctl_ficlone(&to, &from).map_err(|e| {
                        let _ = std::fs::remove_file(tmp);
                        std::io::Error::from(e)
                    })
                }
                _ => Err(std::io::ErrorKind::Unsupported.into()),
            }
        };
        let mut made = make(&tmp);
        if matches!(&made, Err(e) if e.kind() == std::io::ErrorKind::NotFound) {
            if let Some(parent) = dest.parent() {
                std::fs::create_dir_all(parent).map_err(io(parent))?;
            }
            made = make(&tmp);
        }
        if made.is_err() {
            // Not on this file system (no reflinks, another device, no links): the next kind.
            return Ok(None);
        }
        replace(&tmp, dest)?;
        std::fs::metadata(dest).map_err(io(dest)).map(Some)
    }

    /// Writes object `md5` to `dest` (through a temporary file beside it, renamed over it),
    /// checking its bytes on the way: a corrupted object is refused and `dest` is left as it was.
    /// Returns the written file's metadata (for the state cache).
    pub fn copy_out(&self, md5: &str, dest: &Path, exec: bool) -> Result<std::fs::Metadata> {
        let src = self.path_of(md5);
        let tmp = temp_beside(dest);
        // DVC gives a tracked executable file the owner's execute bit.
        let mode = if exec { 0o744 } else { 0o644 };
        let small = match self.kept(md5) {
            Some(bytes) => Ok(Some(bytes.to_vec())),
            None => read_small(&src),
        };
        let meta = match small {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(missing(md5, dest)),
            Err(e) => {
                return Err(Error::Io {
                    path: src,
                    source: e,
                });
            }
            // Small (most objects of a folder): one read, one write, no copy machinery.
            Ok(Some(bytes)) => {
                if !self.is_verified(md5) {
                    let got = crate::objects::md5_hex(&bytes);
                    check(md5, &got, || src.display().to_string(), Path::new(""))?;
                }
                // A new name (a fresh clone's checkout) takes the file whole, no rename; a name
                // in use (a changed file replaced) is written again below, to be renamed over it.
                #[cfg(target_os = "linux")]
                if let Linked::Placed(f) = link_new(dest, &bytes, mode)? {
                    return f.metadata().map_err(io(dest));
                }
                let f = write_new(&tmp, &bytes, mode)?;
                f.metadata().map_err(io(&tmp))?
            }
            Ok(None) => {
                if let Some(parent) = dest.parent() {
                    std::fs::create_dir_all(parent).map_err(io(parent))?;
                }
                if self.is_verified(md5) {
                    // Written and checked by this process a moment ago (a pull's fetch).
                    std::fs::copy(&src, &tmp).map_err(io(&tmp))?;
                    set_mode(&tmp, mode)?;
                } else {
                    let (got, _) = copy_hashing(&src, &tmp, mode)?;
                    check(md5, &got, || src.display().to_string(), &tmp)?;
                }
                std::fs::metadata(&tmp).map_err(io(&tmp))?
            }
        };
        replace(&tmp, dest)?;
        Ok(meta)
    }

    /// Which of `md5s` the store holds: one look per object for a few, one listing of the store
    /// for many.
    pub fn present(&self, md5s: &[String]) -> Result<std::collections::HashSet<String>> {
        if md5s.len() < 512 {
            return Ok(md5s.iter().filter(|m| self.has(m)).cloned().collect());
        }
        let all: std::collections::HashSet<String> = self.list()?.into_iter().collect();
        Ok(md5s.iter().filter(|m| all.contains(*m)).cloned().collect())
    }

    /// Whether the store holds every one of `md5s`.
    pub fn has_all(&self, md5s: &[String]) -> Result<bool> {
        let present = self.present(md5s)?;
        Ok(md5s.iter().all(|m| present.contains(m)))
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
        let size = std::fs::metadata(&src).unwrap().len();
        let (md5, size) = store.add_file(&src, size).unwrap();
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
        assert_eq!(store.list().unwrap(), std::slice::from_ref(&md5));
        // Adding the same bytes again keeps the object there without vouching for it: the
        // checkout still finds it corrupt.
        store.add_file(&src, 6).unwrap();
        assert!(matches!(
            store.copy_out(&md5, &out, false),
            Err(Error::Corrupt { .. })
        ));
        assert_eq!(std::fs::read(&p).unwrap(), b"evil\n");
        // No temporary file is left beside it.
        let left = std::fs::read_dir(p.parent().unwrap()).unwrap().count();
        assert_eq!(left, 1);
    }

    #[test]
    fn the_temporary_name_way_keeps_an_object_in_place_unvouched() {
        let d = tempfile::tempdir().unwrap();
        let store = ObjectDir::new(d.path().join("cache"));
        let md5 = crate::objects::md5_hex(b"hello\n");
        store.add_renamed(&md5, b"hello\n").unwrap();
        let p = store.path_of(&md5);
        assert_eq!(std::fs::read(&p).unwrap(), b"hello\n");
        set_mode(&p, 0o644).unwrap();
        std::fs::write(&p, b"evil\n").unwrap();
        // Another process stores the same bytes: the object stays, and is still refused.
        let store = ObjectDir::new(store.root());
        store.add_renamed(&md5, b"hello\n").unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"evil\n");
        let out = d.path().join("out");
        assert!(matches!(
            store.copy_out(&md5, &out, false),
            Err(Error::Corrupt { .. })
        ));
        assert_eq!(std::fs::read_dir(p.parent().unwrap()).unwrap().count(), 1);
    }

    #[test]
    fn sized_and_named_reads_return_the_whole_file_whatever_they_were_told() {
        let d = tempfile::tempdir().unwrap();
        let f = d.path().join("f");
        for len in [0usize, 1, 1000, 8191, 8192, 8193, 100_000] {
            let bytes: Vec<u8> = (0..len).map(|i| (i * 7 % 251) as u8).collect();
            std::fs::write(&f, &bytes).unwrap();
            let md5 = crate::objects::md5_hex(&bytes);
            // The size a stat gave, or a stale one (the file changed since).
            for told in [
                len as u64,
                0,
                len as u64 + 3,
                (len as u64).saturating_sub(1),
            ] {
                assert_eq!(
                    read_sized(&f, told).unwrap().unwrap(),
                    bytes,
                    "{len} told {told}"
                );
            }
            let (got, sum) = read_small_named(&f, &md5).unwrap().unwrap();
            assert_eq!(
                (got.as_slice(), sum.as_str()),
                (bytes.as_slice(), md5.as_str())
            );
            // Under another name: the bytes with their own md5, for the caller to refuse.
            let other = crate::objects::md5_hex(b"other");
            let (got, sum) = read_small_named(&f, &other).unwrap().unwrap();
            assert_eq!(
                (got.as_slice(), sum.as_str()),
                (bytes.as_slice(), md5.as_str())
            );
        }
        std::fs::write(&f, vec![1u8; SMALL as usize + 1]).unwrap();
        assert!(read_sized(&f, 10).unwrap().is_none());
        assert!(read_small_named(&f, "x").unwrap().is_none());
    }
}
