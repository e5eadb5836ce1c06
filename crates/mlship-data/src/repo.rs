//! A DVC repository: `init`, `add`, `status`, `checkout`, `push`, `fetch`, `gc` and the remotes in
//! its config, over the workspace, the cache and a remote. What it writes is what `dvc` writes, so
//! either tool can take over in the middle of a project.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::cache::{Link, ObjectDir};
use crate::config::{Config, remote_section};
use crate::dvcfile::{self, Out};
use crate::error::{Error, Result, io};
use crate::ignore::Ignore;
use crate::objects::{DirEntry, manifest_bytes, md5_hex, parse_manifest};
use crate::remote::{LocalRemote, ObjectRemote, Remote};
use crate::state::{Stamp, State};

/// A workspace file (relative to the root) and its stamp.
type Stamped = (String, Stamp);
/// A folder's files, and the md5 and size of each.
type StoredDir = (Vec<String>, Vec<(String, u64)>);

/// Told how far a long operation has got.
pub trait Progress: Sync {
    /// The total (objects or files) is now known.
    fn start(&self, _total: u64) {}
    fn advance(&self, _n: u64) {}
}

/// No progress shown.
pub struct Quiet;
impl Progress for Quiet {}

/// An open repository.
pub struct Repo {
    pub root: PathBuf,
    dvc_dir: PathBuf,
    cache: ObjectDir,
    /// `cache.type`: how checkouts place cache objects in the workspace.
    links: Vec<Link>,
    state: Mutex<State>,
    ignore: Ignore,
}

/// A tracked output: the `.dvc` file that names it and its entry.
#[derive(Clone, Debug)]
pub struct Tracked {
    /// The `.dvc` file, relative to the root.
    pub dvcfile: String,
    pub out: Out,
    /// The output's path, relative to the root.
    pub path: String,
}

/// How a tracked output differs from its `.dvc` file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Change {
    Modified,
    Deleted,
    NotInCache,
}

impl Change {
    pub fn label(self) -> &'static str {
        match self {
            Change::Modified => "modified",
            Change::Deleted => "deleted",
            Change::NotInCache => "not in cache",
        }
    }
}

/// Where an object is, comparing the cache with a remote.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CloudChange {
    /// In the cache, not on the remote.
    New,
    /// On the remote, not in the cache.
    Deleted,
    /// In neither.
    Missing,
}

impl CloudChange {
    pub fn label(self) -> &'static str {
        match self {
            CloudChange::New => "new",
            CloudChange::Deleted => "deleted",
            CloudChange::Missing => "missing",
        }
    }
}

/// A path's content as a stage records it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Hashed {
    pub md5: String,
    pub size: u64,
    pub nfiles: Option<u64>,
    pub isexec: bool,
}

/// What one added path became.
#[derive(Clone, Debug)]
pub struct Added {
    pub dvcfile: String,
    pub out: Out,
}

/// What a checkout did to one output: `A` added, `M` modified.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckedOut {
    pub mark: char,
    pub path: String,
}

const DVCIGNORE: &str = "# Add patterns of files dvc should ignore, which could improve\n# the performance. Learn more at\n# https://dvc.org/doc/user-guide/dvcignore\n";

fn rel_string(p: &Path) -> Result<String> {
    let mut parts = Vec::new();
    for c in p.components() {
        match c {
            std::path::Component::Normal(s) => parts
                .push(s.to_str().ok_or_else(|| {
                    Error::Invalid(format!("{} is not valid UTF-8", p.display()))
                })?),
            std::path::Component::CurDir => {}
            _ => {
                return Err(Error::Invalid(format!(
                    "{} is not a plain relative path",
                    p.display()
                )));
            }
        }
    }
    Ok(parts.join("/"))
}

/// Normalises `a/b/../c` lexically.
fn normalise(p: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            std::path::Component::ParentDir => {
                out.pop();
            }
            std::path::Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}

/// Runs `f` over `items` on `jobs` threads, results in order; the first error wins and stops the
/// others from taking new items.
pub fn parallel<T: Sync, R: Send>(
    items: &[T],
    jobs: usize,
    f: impl Fn(&T) -> Result<R> + Sync,
) -> Result<Vec<R>> {
    let jobs = jobs.clamp(1, items.len().max(1));
    let next = AtomicUsize::new(0);
    let failed = std::sync::atomic::AtomicBool::new(false);
    let slots: Vec<Mutex<Option<Result<R>>>> = items.iter().map(|_| Mutex::new(None)).collect();
    std::thread::scope(|s| {
        for _ in 0..jobs {
            s.spawn(|| {
                loop {
                    if failed.load(Ordering::Relaxed) {
                        return;
                    }
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(item) = items.get(i) else {
                        return;
                    };
                    let r = f(item);
                    if r.is_err() {
                        failed.store(true, Ordering::Relaxed);
                    }
                    *slots[i].lock().unwrap_or_else(|e| e.into_inner()) = Some(r);
                }
            });
        }
    });
    let mut out = Vec::with_capacity(items.len());
    let mut first_err = None;
    for s in slots {
        match s.into_inner().unwrap_or_else(|e| e.into_inner()) {
            Some(Ok(r)) => out.push(r),
            Some(Err(e)) if first_err.is_none() => first_err = Some(e),
            Some(Err(_)) | None => {}
        }
    }
    match first_err {
        Some(e) => Err(e),
        None => Ok(out),
    }
}

/// Orders objects so that neighbours live in different folders (`XX/`) of the cache: threads
/// taking the next object then rarely wait on one another's folder lock to create a file there,
/// as they do when taking md5s in sorted order.
fn spread(md5s: &mut [String]) {
    md5s.sort_unstable_by(|a, b| a.get(2..).cmp(&b.get(2..)));
}

/// Orders workspace writes round-robin over their folders (the first file of each folder, then
/// the second of each…), for the reason [`spread`] gives.
fn interleave_folders(writes: &mut Vec<(String, String, bool)>) {
    let mut seen: HashMap<&str, usize> = HashMap::new();
    let rank: Vec<usize> = writes
        .iter()
        .map(|(rel, _, _)| {
            let n = seen
                .entry(rel.rsplit_once('/').map_or("", |(d, _)| d))
                .or_default();
            *n += 1;
            *n
        })
        .collect();
    let mut ranked: Vec<(usize, (String, String, bool))> =
        rank.into_iter().zip(writes.drain(..)).collect();
    ranked.sort_by_key(|(r, _)| *r);
    writes.extend(ranked.into_iter().map(|(_, w)| w));
}

/// The default number of threads for hashing and transfers.
pub fn default_jobs() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get()) * 4
}

impl Repo {
    /// Creates `.dvc/` (`.gitignore`, an empty `config`, `tmp/`) and `.dvcignore` in `dir`, as
    /// `dvc init` does. Refuses a folder that already has `.dvc`.
    pub fn init(dir: &Path, no_scm: bool) -> Result<Repo> {
        let dvc = dir.join(".dvc");
        if dvc.exists() {
            return Err(Error::Invalid(format!(
                "{} is already a DVC repository",
                dir.display()
            )));
        }
        if !no_scm && !dir.join(".git").exists() {
            return Err(Error::Invalid(format!(
                "{} is not the top of a git repository",
                dir.display()
            )));
        }
        std::fs::create_dir_all(dvc.join("tmp")).map_err(io(&dvc))?;
        write_atomic(&dvc.join(".gitignore"), b"/config.local\n/tmp\n/cache\n")?;
        let config = if no_scm {
            "[core]\n    no_scm = True\n"
        } else {
            ""
        };
        write_atomic(&dvc.join("config"), config.as_bytes())?;
        write_atomic(&dir.join(".dvcignore"), DVCIGNORE.as_bytes())?;
        Repo::open(dir)
    }

    /// Opens the repository holding `from` (a `.dvc` folder here or above).
    pub fn open(from: &Path) -> Result<Repo> {
        let start = std::fs::canonicalize(from).map_err(io(from))?;
        let mut at = start.as_path();
        loop {
            if at.join(".dvc").is_dir() {
                let root = at.to_path_buf();
                let dvc_dir = root.join(".dvc");
                let config = Config::read(&dvc_dir.join("config"))?;
                let cache_root = match config.get("cache", "dir") {
                    Some(d) => normalise(&dvc_dir.join(d)),
                    None => dvc_dir.join("cache"),
                };
                let local = Config::read(&dvc_dir.join("config.local"))?;
                let links = match config.merged(&local).get("cache", "type") {
                    None => Link::DEFAULT.to_vec(),
                    Some(t) => Link::parse_list(t).map_err(|message| Error::Parse {
                        path: dvc_dir.join("config"),
                        message,
                    })?,
                };
                return Ok(Repo {
                    links,
                    state: Mutex::new(State::load(&dvc_dir)),
                    ignore: Ignore::load(&root),
                    cache: ObjectDir::new(cache_root),
                    dvc_dir,
                    root,
                });
            }
            match at.parent() {
                Some(p) => at = p,
                None => return Err(Error::NoRepo(start)),
            }
        }
    }

    pub fn cache(&self) -> &ObjectDir {
        &self.cache
    }

    /// Takes the repository lock `dvc` takes (see [`crate::lock`]) for as long as the guard lives.
    pub fn lock(&self) -> Result<crate::lock::RepoLock> {
        crate::lock::RepoLock::take(&self.dvc_dir)
    }

    /// The config with `config.local` over it.
    pub fn config(&self) -> Result<Config> {
        Ok(Config::read(&self.dvc_dir.join("config"))?
            .merged(&Config::read(&self.dvc_dir.join("config.local"))?))
    }

    /// A path the user gave (relative to `cwd`), as a path relative to the root; refused when it
    /// is outside the repository or inside `.dvc`/`.git`.
    pub fn relative(&self, cwd: &Path, p: &Path) -> Result<String> {
        let abs = normalise(&if p.is_absolute() {
            p.to_path_buf()
        } else {
            std::fs::canonicalize(cwd).map_err(io(cwd))?.join(p)
        });
        let rel = abs.strip_prefix(&self.root).map_err(|_| {
            Error::Invalid(format!(
                "{} is outside the repository {}",
                p.display(),
                self.root.display()
            ))
        })?;
        let rel = rel_string(rel)?;
        if rel.is_empty() {
            return Err(Error::Invalid(
                "the repository's root cannot be tracked".into(),
            ));
        }
        let first = rel.split('/').next().unwrap_or("");
        if first == ".dvc" || first == ".git" {
            return Err(Error::Invalid(format!("{rel} is inside {first}/")));
        }
        Ok(rel)
    }

    /// The md5 of a workspace file, from the state cache when its stamp is unchanged.
    fn file_md5(&self, rel: &str) -> Result<(String, u64)> {
        let p = self.root.join(rel);
        let meta = std::fs::metadata(&p).map_err(io(&p))?;
        let stamp = Stamp::of(&meta);
        if let Some(m) = self.lock_state().get(rel, stamp) {
            return Ok((m.to_string(), meta.len()));
        }
        let (md5, size) = crate::objects::md5_file(&p)?;
        self.lock_state().put(rel, stamp, &md5);
        Ok((md5, size))
    }

    pub(crate) fn lock_state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The files of a folder (relative to the root), `.dvcignore` applied, empty folders dropped.
    fn walk_files(&self, rel: &str) -> Result<Vec<String>> {
        Ok(self
            .walk_stamped(rel)?
            .into_iter()
            .map(|(f, _)| f)
            .collect())
    }

    /// The files of a folder with their stamps: each level's folders are read on several
    /// threads (a file's stamp is one `stat`, the walk's whole cost on an unchanged tree).
    fn walk_stamped(&self, rel: &str) -> Result<Vec<Stamped>> {
        let mut out = Vec::new();
        let mut level = vec![rel.to_string()];
        while !level.is_empty() {
            let read = parallel(&level, default_jobs(), |d| self.read_level(d))?;
            level = Vec::new();
            for (files, dirs) in read {
                out.extend(files);
                level.extend(dirs);
            }
        }
        Ok(out)
    }

    /// One folder: its files with their stamps, and its sub-folders (`.dvcignore` applied; links
    /// are followed, as DVC follows them).
    fn read_level(&self, d: &str) -> Result<(Vec<Stamped>, Vec<String>)> {
        let abs = self.root.join(d);
        let (mut files, mut dirs) = (Vec::new(), Vec::new());
        for e in std::fs::read_dir(&abs).map_err(io(&abs))? {
            let e = e.map_err(io(&abs))?;
            let name = e.file_name();
            let name = name.to_str().ok_or_else(|| {
                Error::Invalid(format!("{} is not valid UTF-8", e.path().display()))
            })?;
            let child = format!("{d}/{name}");
            let kind = e.file_type().map_err(io(e.path()))?;
            let dir = if kind.is_symlink() {
                std::fs::metadata(e.path()).map_err(io(e.path()))?.is_dir()
            } else {
                kind.is_dir()
            };
            if dir {
                if name == ".git" || name == ".dvc" || self.ignore.ignored(&child, true) {
                    continue;
                }
                dirs.push(child);
            } else if !self.ignore.ignored(&child, false) {
                let meta = std::fs::metadata(e.path()).map_err(io(e.path()))?;
                files.push((child, Stamp::of(&meta)));
            }
        }
        Ok((files, dirs))
    }

    /// A folder's manifest entries (hashing what changed, on `jobs` threads). The walk's stamps
    /// answer from the state cache without a second look at each file.
    fn dir_entries(&self, rel: &str, jobs: usize) -> Result<(Vec<DirEntry>, u64)> {
        let files = self.walk_stamped(rel)?;
        let mut hashed: Vec<Option<(String, u64)>> = {
            let st = self.lock_state();
            files
                .iter()
                .map(|(f, stamp)| st.get(f, *stamp).map(|m| (m.to_string(), stamp.size)))
                .collect()
        };
        let todo: Vec<usize> = (0..files.len()).filter(|&i| hashed[i].is_none()).collect();
        let fresh = parallel(&todo, jobs, |&i| self.file_md5(&files[i].0))?;
        for (i, r) in todo.into_iter().zip(fresh) {
            hashed[i] = Some(r);
        }
        let files: Vec<String> = files.into_iter().map(|(f, _)| f).collect();
        Ok(entries_of(rel, &files, hashed.into_iter().flatten()))
    }

    /// Tracks files and folders: each goes into the cache (read once, hashed as it is copied),
    /// gets a `.dvc` file beside it and a line in its folder's `.gitignore`.
    pub fn add(&self, rels: &[String], jobs: usize, progress: &dyn Progress) -> Result<Vec<Added>> {
        let mut added = Vec::new();
        for rel in rels {
            let abs = self.root.join(rel);
            let meta = std::fs::metadata(&abs).map_err(io(&abs))?;
            let name = rel.rsplit('/').next().unwrap_or(rel).to_string();
            let out = if meta.is_dir() {
                let (files, stored) = self.store_dir(rel, jobs, progress)?;
                let (mut entries, size) = entries_of(rel, &files, stored);
                let bytes = manifest_bytes(&mut entries);
                let md5 = format!("{}.dir", md5_hex(&bytes));
                self.cache.add_bytes(&md5, &bytes)?;
                Out {
                    path: name.clone(),
                    md5: Some(md5),
                    size: Some(size),
                    nfiles: Some(entries.len() as u64),
                    cache: true,
                    push: true,
                    ..Out::default()
                }
            } else {
                progress.start(1);
                let (md5, size) = self.store_file(rel)?;
                self.relink(rel, &md5, is_exec(&meta))?;
                progress.advance(1);
                Out {
                    path: name.clone(),
                    md5: Some(md5),
                    size: Some(size),
                    isexec: is_exec(&meta),
                    cache: true,
                    push: true,
                    ..Out::default()
                }
            };
            let dvcfile = format!("{rel}.dvc");
            write_atomic(
                &self.root.join(&dvcfile),
                dvcfile::render(std::slice::from_ref(&out)).as_bytes(),
            )?;
            self.ignore_in_git(rel)?;
            added.push(Added { dvcfile, out });
        }
        self.lock_state().save()?;
        Ok(added)
    }

    /// With a `cache.type` whose files share the cache's bytes (hardlink, symlink), replaces a
    /// file just stored by a link to its object, as `dvc add` does; with copies, nothing.
    fn relink(&self, rel: &str, md5: &str, exec: bool) -> Result<()> {
        if !Link::shares(&self.links) {
            return Ok(());
        }
        let meta = self
            .cache
            .link_out(md5, &self.root.join(rel), exec, &self.links)?;
        self.lock_state().put(rel, Stamp::of(&meta), md5);
        Ok(())
    }

    /// Copies a folder's files into the cache (see [`Repo::store_file`]) on `jobs` threads,
    /// with the stamps its walk took; returns the files and their md5s and sizes.
    fn store_dir(&self, rel: &str, jobs: usize, progress: &dyn Progress) -> Result<StoredDir> {
        let files = self.walk_stamped(rel)?;
        progress.start(files.len() as u64);
        let stored = parallel(&files, jobs, |(f, stamp)| {
            let r = self.store_stamped(f, *stamp)?;
            self.relink(f, &r.0, false)?;
            progress.advance(1);
            Ok(r)
        })?;
        Ok((files.into_iter().map(|(f, _)| f).collect(), stored))
    }

    /// Copies a workspace file into the cache unless the state says its object is there already.
    fn store_file(&self, rel: &str) -> Result<(String, u64)> {
        let p = self.root.join(rel);
        let meta = std::fs::metadata(&p).map_err(io(&p))?;
        self.store_stamped(rel, Stamp::of(&meta))
    }

    /// [`Repo::store_file`] with the file's stamp taken already (before its bytes are read).
    fn store_stamped(&self, rel: &str, stamp: Stamp) -> Result<(String, u64)> {
        let known = self.lock_state().get(rel, stamp).map(str::to_string);
        if let Some(m) = known {
            if self.cache.has(&m) {
                return Ok((m, stamp.size));
            }
        }
        let p = self.root.join(rel);
        let (md5, size) = self.cache.add_file(&p, stamp.size)?;
        self.lock_state().put(rel, stamp, &md5);
        Ok((md5, size))
    }

    /// Appends `/NAME` to the `.gitignore` of the output's folder, as DVC does.
    pub(crate) fn ignore_in_git(&self, rel: &str) -> Result<()> {
        let (dir, name) = match rel.rsplit_once('/') {
            Some((d, n)) => (self.root.join(d), n),
            None => (self.root.clone(), rel),
        };
        let mut escaped = String::from("/");
        for c in name.chars() {
            if matches!(c, '[' | ']' | '!' | '*' | '#' | '?' | '\\') {
                escaped.push('\\');
            }
            escaped.push(c);
        }
        let path = dir.join(".gitignore");
        let mut text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(e) => return Err(Error::Io { path, source: e }),
        };
        if text.lines().any(|l| l == escaped) {
            return Ok(());
        }
        if !text.is_empty() && !text.ends_with('\n') {
            text.push('\n');
        }
        text.push_str(&escaped);
        text.push('\n');
        write_atomic(&path, text.as_bytes())
    }

    /// Every `.dvc` file of the workspace and its outputs. Folders that are tracked outputs
    /// (a sibling `NAME.dvc`) are not descended into.
    pub fn tracked(&self) -> Result<Vec<Tracked>> {
        let mut found = Vec::new();
        let mut stack = vec![String::new()];
        while let Some(d) = stack.pop() {
            let abs = if d.is_empty() {
                self.root.clone()
            } else {
                self.root.join(&d)
            };
            let Ok(rd) = std::fs::read_dir(&abs) else {
                continue;
            };
            let mut names: Vec<(String, bool)> = Vec::new();
            for e in rd {
                let e = e.map_err(io(&abs))?;
                let Some(name) = e.file_name().to_str().map(str::to_string) else {
                    continue;
                };
                let is_dir = e.file_type().map(|t| t.is_dir()).unwrap_or(false);
                names.push((name, is_dir));
            }
            let set: HashSet<&str> = names.iter().map(|(n, _)| n.as_str()).collect();
            for (name, is_dir) in &names {
                let rel = if d.is_empty() {
                    name.clone()
                } else {
                    format!("{d}/{name}")
                };
                if *is_dir {
                    if name == ".git"
                        || name == ".dvc"
                        || set.contains(format!("{name}.dvc").as_str())
                    {
                        continue;
                    }
                    if self.ignore.ignored(&rel, true) {
                        continue;
                    }
                    stack.push(rel);
                } else if name.ends_with(".dvc") && name != ".dvc" {
                    let p = self.root.join(&rel);
                    let text = std::fs::read_to_string(&p).map_err(io(&p))?;
                    for out in dvcfile::parse(&text, Path::new(&rel))? {
                        let base = Path::new(&rel).parent().unwrap_or(Path::new(""));
                        let path = rel_string(&normalise(&base.join(&out.path))).map_err(|_| {
                            Error::Parse {
                                path: PathBuf::from(&rel),
                                message: format!(
                                    "the output {} is outside the repository",
                                    out.path
                                ),
                            }
                        })?;
                        if path.is_empty() || path.starts_with("..") {
                            return Err(Error::Parse {
                                path: PathBuf::from(&rel),
                                message: format!(
                                    "the output {} is outside the repository",
                                    out.path
                                ),
                            });
                        }
                        found.push(Tracked {
                            dvcfile: rel.clone(),
                            out,
                            path,
                        });
                    }
                }
            }
        }
        found.extend(crate::pipeline::locked_outputs(self)?);
        found.sort_by(|a, b| a.dvcfile.cmp(&b.dvcfile));
        Ok(found)
    }

    /// A workspace path's hash as a stage's dep or out records it (`None` when it does not exist);
    /// with `commit`, its content goes into the cache too.
    pub(crate) fn hash_path(&self, rel: &str, commit: bool, jobs: usize) -> Result<Option<Hashed>> {
        let abs = self.root.join(rel);
        let Ok(meta) = std::fs::metadata(&abs) else {
            return Ok(None);
        };
        if meta.is_dir() {
            let (mut entries, size) = if commit {
                let (files, stored) = self.store_dir(rel, jobs, &Quiet)?;
                entries_of(rel, &files, stored)
            } else {
                self.dir_entries(rel, jobs)?
            };
            let bytes = manifest_bytes(&mut entries);
            let md5 = format!("{}.dir", md5_hex(&bytes));
            if commit {
                self.cache.add_bytes(&md5, &bytes)?;
            }
            Ok(Some(Hashed {
                md5,
                size,
                nfiles: Some(entries.len() as u64),
                isexec: false,
            }))
        } else {
            let (md5, size) = if commit {
                self.store_file(rel)?
            } else {
                self.file_md5(rel)?
            };
            Ok(Some(Hashed {
                md5,
                size,
                nfiles: None,
                isexec: is_exec(&meta),
            }))
        }
    }

    /// Puts one output back from the cache (a file, or a folder made to match its manifest),
    /// replacing what is there.
    pub(crate) fn restore(&self, rel: &str, md5: &str, isexec: bool) -> Result<()> {
        let abs = self.root.join(rel);
        if md5.ends_with(".dir") {
            let entries = self.manifest(md5)?;
            if abs.is_file() {
                std::fs::remove_file(&abs).map_err(io(&abs))?;
            }
            if abs.is_dir() {
                std::fs::remove_dir_all(&abs).map_err(io(&abs))?;
            }
            for e in &entries {
                self.cache
                    .link_out(&e.md5, &abs.join(&e.relpath), false, &self.links)?;
            }
            std::fs::create_dir_all(&abs).map_err(io(&abs))?;
            Ok(())
        } else {
            self.cache
                .link_out(md5, &abs, isexec, &self.links)
                .map(|_| ())
        }
    }

    /// Whether the cache holds an output whole (its object, and a folder's every file).
    pub(crate) fn cached(&self, md5: &str) -> Result<bool> {
        if !self.cache.has(md5) {
            return Ok(false);
        }
        if md5.ends_with(".dir") {
            let m: Vec<String> = self.manifest(md5)?.into_iter().map(|e| e.md5).collect();
            return self.cache.has_all(&m);
        }
        Ok(true)
    }

    /// The md5 of a workspace output as it is now (`None` when it does not exist), and for a
    /// folder its manifest (stored in the cache when `commit`).
    fn current(&self, t: &Tracked, jobs: usize) -> Result<Option<String>> {
        let abs = self.root.join(&t.path);
        let Ok(meta) = std::fs::metadata(&abs) else {
            return Ok(None);
        };
        if meta.is_dir() {
            let (mut entries, _) = self.dir_entries(&t.path, jobs)?;
            let bytes = manifest_bytes(&mut entries);
            Ok(Some(format!("{}.dir", md5_hex(&bytes))))
        } else {
            Ok(Some(self.file_md5(&t.path)?.0))
        }
    }

    /// The objects an output needs: its own, and for a folder every file's (from the manifest in
    /// the cache, if there).
    fn objects_of(&self, out: &Out) -> Result<Vec<String>> {
        let Some(md5) = &out.md5 else {
            return Ok(Vec::new());
        };
        let mut v = vec![md5.clone()];
        if out.is_dir() && self.cache.has(md5) {
            let m = self.manifest(md5)?;
            v.extend(m.into_iter().map(|e| e.md5));
        }
        Ok(v)
    }

    fn manifest(&self, md5: &str) -> Result<Vec<DirEntry>> {
        let bytes = self.cache.read_verified(md5)?;
        parse_manifest(&bytes, &self.cache.path_of(md5))
    }

    /// How each tracked output differs from its `.dvc` file; empty when all is up to date.
    pub fn status(&self, jobs: usize) -> Result<Vec<(Tracked, Change)>> {
        let tracked = self.tracked()?;
        let mut out = Vec::new();
        for t in tracked {
            let Some(want) = t.out.md5.clone() else {
                continue;
            };
            match self.current(&t, jobs)? {
                // As DVC says it: a missing output whose data is not cached either is "not in cache".
                None if t.out.cache && !self.cache.has(&want) => out.push((t, Change::NotInCache)),
                None => out.push((t, Change::Deleted)),
                Some(got) if got != want => out.push((t, Change::Modified)),
                Some(_) if t.out.cache => {
                    // A folder found whole in the cache before is not checked again (gc forgets).
                    let known = self.lock_state().complete(&want);
                    if known {
                        continue;
                    }
                    if !self.cache.has(&want) || !self.cache.has_all(&self.objects_of(&t.out)?)? {
                        out.push((t, Change::NotInCache));
                    } else if t.out.is_dir() {
                        self.lock_state().set_complete(&want);
                    }
                }
                Some(_) => {}
            }
        }
        self.lock_state().save()?;
        Ok(out)
    }

    /// Opens a remote by name, or the default one (`core.remote`).
    pub fn remote(&self, name: Option<&str>) -> Result<Box<dyn Remote>> {
        let config = self.config()?;
        let name = match name {
            Some(n) => n.to_string(),
            None => config.get("core", "remote").map(str::to_string).ok_or_else(|| {
                Error::Invalid(
                    "no remote is given and no default is set (`mlship data remote add -d NAME URL`)"
                        .into(),
                )
            })?,
        };
        let settings = config.section(&remote_section(&name));
        let url = settings.get("url").ok_or_else(|| {
            Error::Invalid(format!(
                "no remote named '{name}' (known: {})",
                config.remotes().join(", ")
            ))
        })?;
        if url.starts_with("s3://") {
            return Ok(Box::new(ObjectRemote::open(&name, url, &settings)?));
        }
        if url.starts_with("http://") || url.starts_with("https://") {
            return Ok(Box::new(ObjectRemote::http(&name, url)?));
        }
        if url.contains("://") {
            return Err(Error::Invalid(format!(
                "remote '{name}': {url} is not supported (folders, s3:// and http(s):// are)"
            )));
        }
        // A relative URL is relative to the config file's folder, `.dvc/`.
        let path = if Path::new(url).is_absolute() {
            PathBuf::from(url)
        } else {
            normalise(&self.dvc_dir.join(url))
        };
        Ok(Box::new(LocalRemote::new(&name, path)))
    }

    /// Adds (or replaces) a remote in `config` (or `config.local`), optionally as the default.
    pub fn remote_add(
        &self,
        name: &str,
        url: &str,
        default: bool,
        local: bool,
        cwd: &Path,
    ) -> Result<()> {
        crate::config::check_remote_name(name)?;
        let file = self
            .dvc_dir
            .join(if local { "config.local" } else { "config" });
        let mut c = Config::read(&file)?;
        // A relative folder is stored relative to the config's folder, as DVC stores it.
        let stored = if !url.contains("://") && !Path::new(url).is_absolute() {
            let abs = normalise(&std::fs::canonicalize(cwd).map_err(io(cwd))?.join(url));
            relative_to(&abs, &self.dvc_dir)
        } else {
            url.to_string()
        };
        c.set(&remote_section(name), "url", &stored);
        if default {
            // DVC keeps `[core]` first.
            if !c.sections.iter().any(|(n, _)| n == "core") {
                c.sections.insert(0, ("core".into(), Vec::new()));
            }
            c.set("core", "remote", name);
        }
        write_atomic(&file, c.render().as_bytes())
    }

    /// Sets one setting of a remote (`endpointurl`, `access_key_id`…).
    pub fn remote_modify(&self, name: &str, key: &str, value: &str, local: bool) -> Result<()> {
        if !self.config()?.remotes().iter().any(|r| r == name) {
            return Err(Error::Invalid(format!("no remote named '{name}'")));
        }
        let file = self
            .dvc_dir
            .join(if local { "config.local" } else { "config" });
        let mut c = Config::read(&file)?;
        c.set(&remote_section(name), key, value);
        write_atomic(&file, c.render().as_bytes())
    }

    /// The objects the workspace's `.dvc` files name (pushable ones only when `for_push`), with
    /// the `.dir` manifests fetched from `remote` first when they are not in the cache.
    fn wanted(
        &self,
        remote: Option<&dyn Remote>,
        for_push: bool,
    ) -> Result<(Vec<String>, Vec<String>)> {
        let mut files = Vec::new();
        let mut dirs = Vec::new();
        for t in self.tracked()? {
            let Some(md5) = &t.out.md5 else { continue };
            if !t.out.cache || (for_push && !t.out.push) {
                continue;
            }
            if t.out.is_dir() {
                if !self.cache.has(md5) {
                    if let Some(r) = remote {
                        self.download_into_cache(r, md5)?;
                    }
                }
                if self.cache.has(md5) {
                    files.extend(self.manifest(md5)?.into_iter().map(|e| e.md5));
                }
                dirs.push(md5.clone());
            } else {
                files.push(md5.clone());
            }
        }
        files.sort();
        files.dedup();
        dirs.sort();
        dirs.dedup();
        Ok((files, dirs))
    }

    /// Downloads one object into the cache: to a temporary file, checked, then renamed.
    fn download_into_cache(&self, remote: &dyn Remote, md5: &str) -> Result<()> {
        if let Some((bytes, got)) = remote.get_small(md5)? {
            let what = || format!("{md5} from remote '{}'", remote.name());
            crate::cache::check(md5, &got, what, Path::new(""))?;
            return self.cache.add_new_kept(md5, &bytes);
        }
        let dest = self.cache.path_of(md5);
        let parent = dest.parent().unwrap_or(self.cache.root());
        std::fs::create_dir_all(parent).map_err(io(parent))?;
        let tmp = crate::cache::temp_beside(&dest);
        let r = remote.download(md5, &tmp).and_then(|got| {
            crate::cache::check(
                md5,
                &got,
                || format!("{md5} from remote '{}'", remote.name()),
                &tmp,
            )?;
            self.cache.place(&tmp, md5)
        });
        if r.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        r
    }

    /// Uploads the objects the remote lacks (files before the manifests that list them). Returns
    /// how many went up, and the objects missing from the cache.
    pub fn push(
        &self,
        remote: &dyn Remote,
        jobs: usize,
        progress: &dyn Progress,
    ) -> Result<(usize, Vec<String>)> {
        remote.writable()?;
        let (files, dirs) = self.wanted(None, true)?;
        let mut all = files;
        all.extend(dirs.iter().cloned());
        let here = self.cache.present(&all)?;
        let (have, missing): (Vec<String>, Vec<String>) =
            all.into_iter().partition(|m| here.contains(m));
        let there = remote.existing(&have)?;
        let todo: Vec<String> = have.into_iter().filter(|m| !there.contains(m)).collect();
        let (mut files, dirs): (Vec<String>, Vec<String>) =
            todo.into_iter().partition(|m| !m.ends_with(".dir"));
        spread(&mut files);
        progress.start((files.len() + dirs.len()) as u64);
        for batch in [&files, &dirs] {
            parallel(batch, jobs, |m| {
                // The remote checks the bytes as it reads them: a corrupted object is never sent.
                remote.upload(m, &self.cache.path_of(m))?;
                progress.advance(1);
                Ok(())
            })?;
        }
        Ok((files.len() + dirs.len(), missing))
    }

    /// Downloads the objects the cache lacks. Returns how many came down (manifests not
    /// counted, as DVC counts), and the objects the remote does not have.
    pub fn fetch(
        &self,
        remote: &dyn Remote,
        jobs: usize,
        progress: &dyn Progress,
    ) -> Result<(usize, Vec<String>)> {
        let (files, dirs) = self.wanted(Some(remote), false)?;
        let here = self.cache.present(&files)?;
        let todo: Vec<String> = files.into_iter().filter(|m| !here.contains(m)).collect();
        let missing_dirs: Vec<String> = dirs.into_iter().filter(|m| !self.cache.has(m)).collect();
        let there = remote.existing(&todo)?;
        let (mut get, mut missing): (Vec<String>, Vec<String>) =
            todo.into_iter().partition(|m| there.contains(m));
        spread(&mut get);
        missing.extend(missing_dirs);
        progress.start(get.len() as u64);
        parallel(&get, jobs, |m| {
            self.download_into_cache(remote, m)?;
            progress.advance(1);
            Ok(())
        })?;
        Ok((get.len(), missing))
    }

    /// Compares the cache with a remote over the objects the workspace names.
    pub fn cloud_status(&self, remote: &dyn Remote) -> Result<Vec<(String, CloudChange)>> {
        let tracked = self.tracked()?;
        let mut named: Vec<(String, String)> = Vec::new();
        for t in &tracked {
            let Some(md5) = &t.out.md5 else { continue };
            if !t.out.cache || !t.out.push {
                continue;
            }
            named.push((t.path.clone(), md5.clone()));
            if t.out.is_dir() && self.cache.has(md5) {
                for e in self.manifest(md5)? {
                    named.push((format!("{}/{}", t.path, e.relpath), e.md5));
                }
            }
        }
        let md5s: Vec<String> = named.iter().map(|(_, m)| m.clone()).collect();
        let there = remote.existing(&md5s)?;
        let here = self.cache.present(&md5s)?;
        let mut out = Vec::new();
        for (path, m) in named {
            let (local, remote) = (here.contains(&m), there.contains(&m));
            match (local, remote) {
                (true, false) => out.push((path, CloudChange::New)),
                (false, true) => out.push((path, CloudChange::Deleted)),
                (false, false) => out.push((path, CloudChange::Missing)),
                (true, true) => {}
            }
        }
        Ok(out)
    }

    /// Makes the workspace match the `.dvc` files from the cache. Workspace changes whose content
    /// is not in the cache are refused (nothing is touched) unless `force`.
    pub fn checkout(
        &self,
        force: bool,
        jobs: usize,
        progress: &dyn Progress,
    ) -> Result<(Vec<CheckedOut>, Vec<String>)> {
        let tracked = self.tracked()?;
        // Plan first: what to write, what to remove, what would be lost.
        let mut writes: Vec<(String, String, bool)> = Vec::new();
        let mut removals: Vec<String> = Vec::new();
        let mut unsaved = Vec::new();
        let mut done = Vec::new();
        let mut failed = Vec::new();
        for t in &tracked {
            let Some(md5) = &t.out.md5 else { continue };
            if !t.out.cache {
                continue;
            }
            let abs = self.root.join(&t.path);
            let existed = abs.exists();
            let mut changed = false;
            if t.out.is_dir() {
                let entries = match self.manifest(md5) {
                    Ok(e) => e,
                    Err(e) => {
                        failed.push(format!("{}: {e}", t.path));
                        continue;
                    }
                };
                let md5s: Vec<String> = entries.iter().map(|e| e.md5.clone()).collect();
                let cached = self.cache.present(&md5s)?;
                let want: HashMap<String, &str> = entries
                    .iter()
                    .map(|e| (format!("{}/{}", t.path, e.relpath), e.md5.as_str()))
                    .collect();
                if abs.is_file() {
                    removals.push(t.path.clone());
                }
                let present = if abs.is_dir() {
                    self.walk_files(&t.path)?
                } else {
                    Vec::new()
                };
                for f in &present {
                    match want.get(f) {
                        Some(_) => {}
                        None => {
                            let (m, _) = self.file_md5(f)?;
                            if !self.cache.has(&m) && !force {
                                unsaved.push(f.clone());
                            }
                            removals.push(f.clone());
                            changed = true;
                        }
                    }
                }
                let present: HashSet<&String> = present.iter().collect();
                for e in &entries {
                    let f = format!("{}/{}", t.path, e.relpath);
                    if present.contains(&f) {
                        let (m, _) = self.file_md5(&f)?;
                        if m == e.md5 {
                            continue;
                        }
                        if !self.cache.has(&m) && !force {
                            unsaved.push(f.clone());
                        }
                    }
                    if !cached.contains(&e.md5) {
                        failed.push(format!("{f}: not in the cache ({})", e.md5));
                        continue;
                    }
                    writes.push((f, e.md5.clone(), false));
                    changed = true;
                }
                if changed || !existed {
                    done.push(CheckedOut {
                        mark: if existed { 'M' } else { 'A' },
                        path: format!("{}/", t.path),
                    });
                }
            } else {
                if abs.is_file() {
                    let (m, _) = self.file_md5(&t.path)?;
                    if &m == md5 {
                        continue;
                    }
                    if !self.cache.has(&m) && !force {
                        unsaved.push(t.path.clone());
                    }
                } else if abs.is_dir() && !force {
                    unsaved.push(t.path.clone());
                }
                if !self.cache.has(md5) {
                    failed.push(format!("{}: not in the cache ({md5})", t.path));
                    continue;
                }
                writes.push((t.path.clone(), md5.clone(), t.out.isexec));
                done.push(CheckedOut {
                    mark: if existed { 'M' } else { 'A' },
                    path: t.path.clone(),
                });
            }
        }
        if !unsaved.is_empty() {
            return Err(Error::Unsaved(unsaved));
        }
        for r in &removals {
            let p = self.root.join(r);
            if p.is_file() {
                std::fs::remove_file(&p).map_err(io(&p))?;
            }
        }
        interleave_folders(&mut writes);
        progress.start(writes.len() as u64);
        let results = parallel(&writes, jobs, |(rel, md5, exec)| {
            let dest = self.root.join(rel);
            let r = self
                .cache
                .link_out(md5, &dest, *exec, &self.links)
                .map(|meta| {
                    self.lock_state().put(rel, Stamp::of(&meta), md5);
                });
            progress.advance(1);
            // A corrupted object is reported with the others; the rest still check out.
            Ok(r.err().map(|e| format!("{rel}: {e}")))
        })?;
        failed.extend(results.into_iter().flatten());
        self.lock_state().save()?;
        Ok((done, failed))
    }

    /// Removes cache objects (and, with a remote, remote objects) that no `.dvc` file of the
    /// workspace names. Returns how many went from each.
    pub fn gc(&self, remote: Option<&dyn Remote>) -> Result<(usize, usize)> {
        if let Some(r) = remote {
            r.writable()?;
        }
        let mut keep: HashSet<String> = HashSet::new();
        for t in self.tracked()? {
            keep.extend(self.objects_of(&t.out)?);
        }
        self.lock_state().forget_complete();
        self.lock_state().save()?;
        let mut local = 0;
        for m in self.cache.list()? {
            if !keep.contains(&m) {
                self.cache.remove(&m)?;
                local += 1;
            }
        }
        let mut far = 0;
        if let Some(r) = remote {
            for m in r.list()? {
                if !keep.contains(&m) {
                    r.remove(&m)?;
                    far += 1;
                }
            }
        }
        Ok((local, far))
    }

    /// Every tracked output with its hash, size and file count (for `ls` and lineage).
    pub fn outputs(&self) -> Result<BTreeMap<String, Out>> {
        Ok(self
            .tracked()?
            .into_iter()
            .map(|t| (t.path, t.out))
            .collect())
    }
}

/// A folder's manifest entries from its files (relative to the root) and their md5s and sizes,
/// with the total size.
fn entries_of(
    dir: &str,
    files: &[String],
    hashed: impl IntoIterator<Item = (String, u64)>,
) -> (Vec<DirEntry>, u64) {
    let prefix = format!("{dir}/");
    let mut size = 0;
    let entries = files
        .iter()
        .zip(hashed)
        .map(|(f, (md5, n))| {
            size += n;
            DirEntry {
                relpath: f.strip_prefix(&prefix).unwrap_or(f).to_string(),
                md5,
            }
        })
        .collect();
    (entries, size)
}

fn is_exec(meta: &std::fs::Metadata) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        meta.permissions().mode() & 0o111 != 0
    }
    #[cfg(not(unix))]
    {
        let _ = meta;
        false
    }
}

/// `path` relative to `base` (both absolute, normalised), with `..` as needed.
fn relative_to(path: &Path, base: &Path) -> String {
    let p: Vec<_> = path.components().collect();
    let b: Vec<_> = base.components().collect();
    let common = p.iter().zip(&b).take_while(|(x, y)| x == y).count();
    let mut out: Vec<String> = std::iter::repeat_n("..".to_string(), b.len() - common).collect();
    out.extend(
        p[common..]
            .iter()
            .map(|c| c.as_os_str().to_string_lossy().to_string()),
    );
    if out.is_empty() {
        ".".into()
    } else {
        out.join("/")
    }
}

/// Writes a small file atomically: a temporary file beside it, synced, renamed over it.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    use std::io::Write;
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(io(parent))?;
    }
    let tmp = crate::cache::temp_beside(path);
    let mut f = std::fs::File::create(&tmp).map_err(io(&tmp))?;
    f.write_all(bytes).map_err(io(&tmp))?;
    f.sync_all().map_err(io(&tmp))?;
    drop(f);
    std::fs::rename(&tmp, path).map_err(io(path))
}
