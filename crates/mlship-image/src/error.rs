//! The one error type of mlship-image.

/// What can go wrong building, reading or pushing an image.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("not an mlship image archive: {0}")]
    BadArchive(String),
    #[error("invalid image reference {reference:?}: {why}")]
    BadReference { reference: String, why: String },
    #[error("cannot list the libraries {binary} links: {why}")]
    Libraries { binary: String, why: String },
    #[error("cannot reach the registry {registry}: {why}")]
    Unreachable { registry: String, why: String },
    #[error("the registry {registry} refused the credentials ({status})")]
    Unauthorized { registry: String, status: u16 },
    #[error("the registry {registry} answered {status} to {what}: {body}")]
    Registry {
        registry: String,
        what: String,
        status: u16,
        body: String,
    },
}

pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    pub(crate) fn io(path: impl std::fmt::Display, source: std::io::Error) -> Error {
        Error::Io {
            path: path.to_string(),
            source,
        }
    }
}
