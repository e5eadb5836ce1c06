//! `Frame`: the typed input table that every model scores.

use crate::{Error, Result};

/// One column's values. Float nulls are NaN, as in pandas; the other types use `None`.
#[derive(Clone, Debug, PartialEq)]
pub enum ColumnData {
    Float(Vec<f64>),
    Int(Vec<Option<i64>>),
    Str(Vec<Option<String>>),
    Bool(Vec<Option<bool>>),
}

impl ColumnData {
    /// Number of rows in the column.
    pub fn len(&self) -> usize {
        match self {
            ColumnData::Float(v) => v.len(),
            ColumnData::Int(v) => v.len(),
            ColumnData::Str(v) => v.len(),
            ColumnData::Bool(v) => v.len(),
        }
    }

    /// True when the column has no rows.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The name of the column's type, for error messages.
    pub fn type_name(&self) -> &'static str {
        match self {
            ColumnData::Float(_) => "float",
            ColumnData::Int(_) => "integer",
            ColumnData::Str(_) => "string",
            ColumnData::Bool(_) => "boolean",
        }
    }
}

/// A named column.
#[derive(Clone, Debug, PartialEq)]
pub struct Column {
    pub name: String,
    pub data: ColumnData,
}

impl Column {
    pub fn new(name: impl Into<String>, data: ColumnData) -> Self {
        Column {
            name: name.into(),
            data,
        }
    }
}

/// A table of named, typed columns of equal length.
#[derive(Clone, Debug, PartialEq)]
pub struct Frame {
    columns: Vec<Column>,
    n_rows: usize,
}

impl Frame {
    /// Builds a frame; every column must have the same number of rows.
    pub fn new(columns: Vec<Column>) -> Result<Frame> {
        let n_rows = columns.first().map_or(0, |c| c.data.len());
        for c in &columns {
            if c.data.len() != n_rows {
                return Err(Error::RaggedFrame {
                    column: c.name.clone(),
                    expected: n_rows,
                    found: c.data.len(),
                });
            }
        }
        Ok(Frame { columns, n_rows })
    }

    pub fn n_rows(&self) -> usize {
        self.n_rows
    }

    pub fn columns(&self) -> &[Column] {
        &self.columns
    }

    /// The column with this name, if any.
    pub fn column(&self, name: &str) -> Option<&Column> {
        self.columns.iter().find(|c| c.name == name)
    }
}
