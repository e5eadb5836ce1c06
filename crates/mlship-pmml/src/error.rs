//! The one error type of the PMML front end.

/// Why a PMML document could not be loaded, written or scored.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The bytes break XML's or PMML's rules.
    #[error("malformed {format} at byte {offset}: {message}")]
    Malformed {
        format: &'static str,
        offset: usize,
        message: String,
    },
    /// A resource limit protects the reader from hostile input.
    #[error("limit exceeded: {0}")]
    Limit(String),
    /// Well formed, but something mlship does not evaluate (or cannot write exactly).
    #[error("{0}")]
    Unsupported(String),
    /// The model's IR failed its checks, or scoring failed.
    #[error(transparent)]
    Model(#[from] mlship_model::Error),
}

/// Result type of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
