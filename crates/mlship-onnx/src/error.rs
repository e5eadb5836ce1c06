//! The one error type of the ONNX front end.

/// Why an ONNX model could not be loaded or scored.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The bytes break protobuf's or ONNX's rules.
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
    /// Well formed, but an operator or type mlship does not run.
    #[error("{0}")]
    Unsupported(String),
    /// The model's IR failed its checks, or scoring failed.
    #[error(transparent)]
    Model(#[from] mlship_model::Error),
}

/// Result type of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
