//! The one error type of the unpickler.

/// Why a stream could not be decoded.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A global on neither this crate's list nor the caller's: nothing was built, nothing ran.
    #[error(
        "refused global `{module}.{name}`: it is not on mlship's allow-list, so the file is not loaded (nothing in it was run)"
    )]
    ForbiddenGlobal { module: String, name: String },
    /// The bytes break the format's rules.
    #[error("malformed {format} at byte {offset}: {message}")]
    Malformed {
        format: &'static str,
        offset: usize,
        message: String,
    },
    /// The input ended early.
    #[error("truncated {format}: needed {needed} more bytes at byte {offset}")]
    Truncated {
        format: &'static str,
        offset: usize,
        needed: usize,
    },
    /// A resource limit protects the decoder from hostile input.
    #[error("limit exceeded: {0}")]
    Limit(String),
    /// Well formed, but not something the decoder handles.
    #[error("{0}")]
    Unsupported(String),
}

/// Result type of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

pub(crate) fn malformed(format: &'static str, offset: usize, message: impl Into<String>) -> Error {
    Error::Malformed {
        format,
        offset,
        message: message.into(),
    }
}

pub(crate) fn unsupported(message: impl Into<String>) -> Error {
    Error::Unsupported(message.into())
}
