//! mlship's vocabulary and scoring IR: every format lowers to the types here.
//!
//! The crate is pure: no IO, no async, no knowledge of any file format.
//! - [`Frame`] is the typed input table (float, integer, string and boolean columns, with nulls).
//! - [`Signature`] says which columns a model needs, of which types, and what it predicts.
//! - [`Model`] is the scoring IR: a chain of preprocessing [`Step`]s and one [`Estimator`].
//! - [`Model::predict`] turns a `Frame` into an [`Output`] with the arithmetic of the library
//!   that trained the model (float32 casts in trees, numpy's order of operations, first-class ties).

pub mod coding;
mod error;
mod frame;
mod kmeans;
mod linear;
mod matrix;
mod mlp;
mod model;
mod naive_bayes;
pub mod numeric;
mod output;
mod signature;
mod svm;
pub mod threads;
mod transform;
mod tree;

pub use error::Error;
pub use frame::{Column, ColumnData, Frame};
pub use kmeans::KMeans;
pub use linear::{LinearModel, LinearProba, LinearTask};
pub use matrix::Matrix;
pub use mlp::{Activation, Layer, Mlp, MlpTask};
pub use model::{Estimator, External, ExternalScorer, Model, ModelInfo};
pub use naive_bayes::GaussianNb;
pub use output::{Output, Predictions, Scores};
pub use signature::{DType, Field, Label, Signature, Task};
pub use svm::{Kernel, Svm, SvmTask, pairwise_probability};
pub use transform::{Category, ImputeFill, MissingMarker, Norm, OneHot, Ordinal, Step, Unknown};
pub use tree::{BoostLink, LinearLeaf, Node, Tree, TreeEnsemble, TreeHead};

/// Result type of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
