//! `Signature`: what a model takes (named, typed columns) and what it predicts.

use std::fmt;

/// The type of an input column.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DType {
    Float,
    Int,
    Str,
    Bool,
}

impl DType {
    pub fn name(self) -> &'static str {
        match self {
            DType::Float => "float",
            DType::Int => "integer",
            DType::Str => "string",
            DType::Bool => "boolean",
        }
    }
}

/// One input column of a model.
#[derive(Clone, Debug, PartialEq)]
pub struct Field {
    pub name: String,
    pub dtype: DType,
    /// Whether a null (NaN for floats) is a value the model handles itself.
    pub nullable: bool,
}

/// What a model predicts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Task {
    Classification,
    Regression,
    Clustering,
}

impl Task {
    pub fn name(self) -> &'static str {
        match self {
            Task::Classification => "classification",
            Task::Regression => "regression",
            Task::Clustering => "clustering",
        }
    }
}

/// A class label, kept in the type it had at training time.
#[derive(Clone, Debug, PartialEq)]
pub enum Label {
    Int(i64),
    Float(f64),
    Str(String),
    Bool(bool),
}

impl fmt::Display for Label {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Label::Int(v) => write!(f, "{v}"),
            Label::Float(v) => write!(f, "{v}"),
            Label::Str(v) => write!(f, "{v}"),
            Label::Bool(v) => write!(f, "{v}"),
        }
    }
}

/// The inputs and outputs of a model.
#[derive(Clone, Debug, PartialEq)]
pub struct Signature {
    /// The input columns, in the order the model was fitted on.
    pub inputs: Vec<Field>,
    /// False when the model was fitted without column names: columns are then taken by position.
    pub named: bool,
    pub task: Task,
    /// Class labels in the order of the probability columns (classifiers only).
    pub classes: Option<Vec<Label>>,
}

impl Signature {
    /// A frame of the model's inputs, each named as the model reads it, its values made by
    /// `column` (sample and test rows); an error when the columns differ in length.
    pub fn frame(
        &self,
        mut column: impl FnMut(&Field) -> crate::ColumnData,
    ) -> crate::Result<crate::Frame> {
        let columns = self
            .inputs
            .iter()
            .map(|f| crate::Column::new(f.name.clone(), column(f)))
            .collect();
        crate::Frame::new(columns)
    }
}
