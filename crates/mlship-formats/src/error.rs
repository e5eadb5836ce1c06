//! The one error type of the formats crate: what was found, where, and what is supported.

/// Why a file could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A global that is not on the allow-list: nothing was built, nothing ran.
    #[error(
        "refused global `{module}.{name}`: it is not on mlship's allow-list, so the file is not loaded (nothing in it was run)"
    )]
    ForbiddenGlobal { module: String, name: String },
    /// A class the unpickler knows but mlship cannot score.
    #[error("unsupported estimator `{class}`; supported: {supported}")]
    UnsupportedEstimator { class: String, supported: String },
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
    /// A resource limit protects the loader from hostile input.
    #[error("limit exceeded: {0}")]
    Limit(String),
    /// The file is well formed but its content does not make a model we can score.
    #[error("{0}")]
    Unsupported(String),
    /// The file's type was not recognised.
    #[error("unrecognised model file: {0}")]
    UnknownFormat(String),
    /// The model's IR failed its checks.
    #[error(transparent)]
    Model(#[from] mlship_model::Error),
}

/// The unpickler's errors keep their meaning here (a refused global is still refused by name).
impl From<mlship_pickle::Error> for Error {
    fn from(e: mlship_pickle::Error) -> Error {
        use mlship_pickle::Error as P;
        match e {
            P::ForbiddenGlobal { module, name } => Error::ForbiddenGlobal { module, name },
            P::Malformed {
                format,
                offset,
                message,
            } => Error::Malformed {
                format,
                offset,
                message,
            },
            P::Truncated {
                format,
                offset,
                needed,
            } => Error::Truncated {
                format,
                offset,
                needed,
            },
            P::Limit(m) => Error::Limit(m),
            P::Unsupported(m) => Error::Unsupported(m),
        }
    }
}

/// The PMML front end's errors keep their meaning here.
impl From<mlship_pmml::Error> for Error {
    fn from(e: mlship_pmml::Error) -> Error {
        use mlship_pmml::Error as P;
        match e {
            P::Malformed {
                format,
                offset,
                message,
            } => Error::Malformed {
                format,
                offset,
                message,
            },
            P::Limit(m) => Error::Limit(m),
            P::Unsupported(m) => Error::Unsupported(m),
            P::Model(m) => Error::Model(m),
        }
    }
}

/// The ONNX front end's errors keep their meaning here.
impl From<mlship_onnx::Error> for Error {
    fn from(e: mlship_onnx::Error) -> Error {
        use mlship_onnx::Error as O;
        match e {
            O::Malformed {
                format,
                offset,
                message,
            } => Error::Malformed {
                format,
                offset,
                message,
            },
            O::Truncated {
                format,
                offset,
                needed,
            } => Error::Truncated {
                format,
                offset,
                needed,
            },
            O::Limit(m) => Error::Limit(m),
            O::Unsupported(m) => Error::Unsupported(m),
            O::Model(m) => Error::Model(m),
        }
    }
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
