//! The metadata store: models, immutable versions, aliases and their history, behind one trait.

use std::collections::BTreeMap;

use crate::error::Result;
use crate::reference::Selector;

/// What a registration records about a new version (the store assigns the number and time).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct NewVersion {
    pub name: String,
    /// `file` (a model file) or `mlflow` (a tar of an MLflow model directory).
    pub kind: String,
    pub format: String,
    pub estimator: String,
    /// The signature as JSON.
    pub signature: String,
    pub sha256: String,
    pub size: u64,
    pub file_name: String,
    pub created_by: String,
    pub description: Option<String>,
    pub tags: BTreeMap<String, String>,
    pub git_commit: Option<String>,
    /// The artifact holding the input example, and the one holding its predictions.
    pub input_example: Option<String>,
    pub example_predictions: Option<String>,
    /// Where the MLflow API said the version came from (`models:/m-…`, `runs:/…`), if it did.
    pub source: Option<String>,
    /// The tracking run that produced it.
    pub run_id: Option<String>,
    /// The MLflow logged model it was registered from.
    pub model_id: Option<String>,
    /// Why mlship cannot serve this version (a flavor it does not load), when it cannot.
    pub not_servable: Option<String>,
}

/// A stored, immutable version.
#[derive(Clone, Debug, PartialEq)]
pub struct Version {
    pub version: u32,
    /// Milliseconds since the Unix epoch.
    pub created_at: i64,
    pub meta: NewVersion,
    /// MLflow's deprecated stage: `None`, `Staging`, `Production` or `Archived`.
    pub stage: String,
    /// Milliseconds since the Unix epoch of the last change to its description, tags or stage.
    pub updated_at: i64,
}

/// One move of an alias.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AliasEvent {
    pub alias: String,
    pub from: Option<u32>,
    pub to: Option<u32>,
    pub at: i64,
    pub by: String,
    pub reason: String,
}

/// A model, its current aliases, and what the MLflow registry shows of it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ModelSummary {
    pub name: String,
    pub created_at: i64,
    /// The last change to the model or its versions (never before `created_at`).
    pub updated_at: i64,
    pub latest: Option<u32>,
    pub versions: u32,
    pub aliases: BTreeMap<String, u32>,
    pub description: Option<String>,
    pub tags: BTreeMap<String, String>,
}

/// Metadata storage. Every method is one transaction: it happens whole or not at all.
pub trait MetadataStore: Send {
    /// A name for messages (the SQLite file, the PostgreSQL host).
    fn describe(&self) -> String;
    /// Records a new version with the next number of its model (creating the model if needed).
    fn create_version(&mut self, v: &NewVersion) -> Result<Version>;
    /// As [`MetadataStore::create_version`], the version taking `aliases` in the same
    /// transaction (each move in the alias history, by `by`, for `reason`).
    fn register(
        &mut self,
        v: &NewVersion,
        aliases: &[String],
        by: &str,
        reason: &str,
    ) -> Result<Version>;
    fn models(&mut self) -> Result<Vec<ModelSummary>>;
    fn model(&mut self, name: &str) -> Result<ModelSummary>;
    fn versions(&mut self, name: &str) -> Result<Vec<Version>>;
    /// The version a selector names.
    fn resolve(&mut self, name: &str, selector: &Selector) -> Result<Version>;
    /// Points `alias` at `version` (which must exist) and writes the move to the history.
    fn set_alias(
        &mut self,
        name: &str,
        alias: &str,
        version: u32,
        by: &str,
        reason: &str,
    ) -> Result<AliasEvent>;
    fn delete_alias(
        &mut self,
        name: &str,
        alias: &str,
        by: &str,
        reason: &str,
    ) -> Result<AliasEvent>;
    /// Moves `alias` back to the version it held before its last move.
    fn rollback(&mut self, name: &str, alias: &str, by: &str, reason: &str) -> Result<AliasEvent>;
    /// The alias history of a model, oldest first.
    fn history(&mut self, name: &str) -> Result<Vec<AliasEvent>>;
    /// Deletes a version no alias points to; returns it, and whether another version still uses its artifact.
    fn delete_version(&mut self, name: &str, version: u32) -> Result<(Version, bool)>;
    /// Deletes a model whose versions hold no alias; returns the artifacts no longer used.
    fn delete_model(&mut self, name: &str) -> Result<Vec<String>>;
}
