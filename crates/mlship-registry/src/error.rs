//! The one error type of the registry: unknown names (with the names that exist), refusals, storage failures.

/// What can go wrong in the registry.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("invalid {what} {value:?}: {why}")]
    InvalidName {
        what: &'static str,
        value: String,
        why: &'static str,
    },
    #[error("no model named `{name}`{}", nearby(.known))]
    UnknownModel { name: String, known: Vec<String> },
    #[error("model `{name}` has no version {version}{}", nearby(.known))]
    UnknownVersion {
        name: String,
        version: u32,
        known: Vec<String>,
    },
    #[error("model `{name}` has no alias `{alias}`{}", nearby(.known))]
    UnknownAlias {
        name: String,
        alias: String,
        known: Vec<String>,
    },
    #[error("version {version} of `{name}` is held by alias{} {}; move or delete {} first", if .aliases.len() > 1 { "es" } else { "" }, .aliases.join(", "), if .aliases.len() > 1 { "them" } else { "it" })]
    VersionInUse {
        name: String,
        version: u32,
        aliases: Vec<String>,
    },
    #[error("alias `{alias}` of `{name}` has no earlier version to roll back to")]
    NothingToRollBack { name: String, alias: String },
    #[error(
        "invalid model reference {0:?}: use models:/NAME/VERSION, models:/NAME@ALIAS or models:/NAME"
    )]
    BadReference(String),
    #[error("artifact {sha256} is corrupt: its content hashes to {actual}")]
    Corrupt { sha256: String, actual: String },
    #[error("artifact {0} is missing from the artifact store")]
    MissingArtifact(String),
    #[error("store {store}: {message}")]
    Store { store: String, message: String },
    #[error("{context}: {source}")]
    Io {
        context: String,
        source: std::io::Error,
    },
    /// A tracking or registry object that does not exist (MLflow's `RESOURCE_DOES_NOT_EXIST`).
    #[error("{0}")]
    NotFound(String),
    /// A create that names an existing object (MLflow's `RESOURCE_ALREADY_EXISTS`).
    #[error("{0}")]
    AlreadyExists(String),
    /// A request that conflicts with what is stored: an object in the wrong state (a deleted
    /// experiment, a finished run), a param already logged with another value (MLflow's
    /// `RESOURCE_CONFLICT`, HTTP 409).
    #[error("{0}")]
    Conflict(String),
    /// A request the rules refuse (MLflow's `INVALID_PARAMETER_VALUE`).
    #[error("{0}")]
    Invalid(String),
    /// The database or object store cannot be reached now; the same call may succeed later.
    #[error("store unavailable: {0}")]
    Unavailable(String),
    #[error("metadata store: {0}")]
    Sql(#[from] rusqlite::Error),
}

impl Error {
    /// Whether the store's disk is full (a file that could not be written, SQLite's
    /// `SQLITE_FULL`, PostgreSQL's `disk_full`): the caller should free space, not fix a setting.
    pub fn is_disk_full(&self) -> bool {
        match self {
            Error::Io { source, .. } => source.kind() == std::io::ErrorKind::StorageFull,
            Error::Sql(rusqlite::Error::SqliteFailure(e, _)) => {
                e.code == rusqlite::ErrorCode::DiskFull
            }
            Error::Store { message, .. } => message.contains("No space left on device"),
            _ => false,
        }
    }
}

fn nearby(known: &[String]) -> String {
    if known.is_empty() {
        String::new()
    } else {
        let shown: Vec<&str> = known.iter().take(10).map(String::as_str).collect();
        format!(" (known: {})", shown.join(", "))
    }
}

/// Result type of the registry.
pub type Result<T, E = Error> = std::result::Result<T, E>;

pub(crate) fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> Error {
    let context = context.into();
    move |source| Error::Io { context, source }
}
