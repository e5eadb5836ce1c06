//! The one error type of `mlship-data`.

use std::path::PathBuf;

/// What can go wrong reading or writing a DVC repository, its cache or a remote.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// Not inside a DVC repository (no `.dvc` folder up the tree).
    #[error("no DVC repository here or above {0}")]
    NoRepo(PathBuf),
    /// A `.dvc`, `.dir` or config file that does not parse.
    #[error("{path}: {message}")]
    Parse { path: PathBuf, message: String },
    /// The user asked for something that cannot be done (a path outside the repository…).
    #[error("{0}")]
    Invalid(String),
    /// A cache or remote object whose bytes do not hash to its name.
    #[error("{what}: corrupted: its md5 is {got}, expected {want}")]
    Corrupt {
        what: String,
        want: String,
        got: String,
    },
    /// An object neither in the cache nor (when asked) on the remote.
    #[error("{0}")]
    Missing(String),
    /// Workspace changes a checkout would overwrite.
    #[error("can't remove the following unsaved files without confirmation: {}", .0.join(", "))]
    Unsaved(Vec<String>),
    /// A pipeline stage's command failed.
    #[error("stage '{stage}' failed{}", .code.map(|c| format!(" with exit code {c}")).unwrap_or_else(|| " (killed by a signal)".into()))]
    StageFailed { stage: String, code: Option<i32> },
    /// Another process (`dvc` or mlship) holds the repository's lock.
    #[error("{0} is locked by another process (pid {1})")]
    Locked(PathBuf, String),
    /// A remote that cannot be reached or refuses the request.
    #[error("remote {remote}: {message}")]
    Remote { remote: String, message: String },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Wraps an IO error with the path it concerns.
pub(crate) fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> Error {
    let path = path.into();
    move |source| Error::Io { path, source }
}
