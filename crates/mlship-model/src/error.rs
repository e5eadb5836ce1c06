//! The one error type of the model crate: invalid IR and input that does not fit a model.

/// What can go wrong while building or scoring a model.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The input table lacks a column that the model needs.
    #[error("missing column `{column}`: the model needs {expected}")]
    MissingColumn { column: String, expected: String },
    /// A value has a type that the column cannot take.
    #[error("column `{column}`, row {row}: expected {expected}, found {found}")]
    BadValue {
        column: String,
        row: usize,
        expected: String,
        found: String,
    },
    /// The input has the wrong number of columns for a model without column names.
    #[error("the model takes {expected} columns, the input has {found}")]
    ColumnCount { expected: usize, found: usize },
    /// A category that the encoder did not see at fit time, with `handle_unknown='error'`.
    #[error("column `{column}`, row {row}: unknown category {value} (known: {known})")]
    UnknownCategory {
        column: String,
        row: usize,
        value: String,
        known: String,
    },
    /// Columns of different lengths were put in one frame.
    #[error("column `{column}` has {found} rows, the others have {expected}")]
    RaggedFrame {
        column: String,
        expected: usize,
        found: usize,
    },
    /// The IR is inconsistent (a loader bug or a corrupt file).
    #[error("invalid model: {0}")]
    Invalid(String),
}

impl Error {
    pub(crate) fn invalid(msg: impl Into<String>) -> Self {
        Error::Invalid(msg.into())
    }
}
