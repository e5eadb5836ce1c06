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

/// The front ends' errors keep their meaning here (a refused global is still refused by name):
/// each of their variants becomes this enum's variant of the same name and fields. The match is
/// exhaustive, so a variant added to a front end must be mapped here.
macro_rules! same_variants {
    ($krate:ident: $($variant:ident { $($field:ident),* }),* ; $($tuple:ident),*) => {
        impl From<$krate::Error> for Error {
            fn from(e: $krate::Error) -> Error {
                match e {
                    $($krate::Error::$variant { $($field),* } => Error::$variant { $($field),* },)*
                    $($krate::Error::$tuple(x) => Error::$tuple(x),)*
                }
            }
        }
    };
}

same_variants!(mlship_pickle:
    ForbiddenGlobal { module, name },
    Malformed { format, offset, message },
    Truncated { format, offset, needed };
    Limit, Unsupported
);
same_variants!(mlship_pmml:
    Malformed { format, offset, message };
    Limit, Unsupported, Model
);
same_variants!(mlship_onnx:
    Malformed { format, offset, message },
    Truncated { format, offset, needed };
    Limit, Unsupported, Model
);

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
