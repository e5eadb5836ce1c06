//! mlship's model registry and tracking store: immutable, checksummed versions; aliases with
//! history and rollback; experiments, runs, metrics and logged models as MLflow keeps them.
//!
//! Two traits separate what is stored from where: [`MetadataStore`] (SQLite by default,
//! PostgreSQL for many replicas, both through one implementation, [`SqlStore`]) keeps models,
//! versions, aliases and the alias history, each change one transaction; [`ArtifactStore`]
//! (a local folder by default, S3 for many replicas) keeps model files under their sha256, written
//! atomically and verified on read. A version row is written only after its artifact is durable,
//! so a crash leaves either no version or a whole one. [`FileStore`] keeps the tracking server's
//! artifacts by path, in the same folder or bucket.

mod artifacts;
pub mod db;
mod error;
pub mod files;
pub mod filter;
mod reference;
mod registry;
pub mod rollout;
mod s3;
mod schema;
mod store;
mod tokens;
pub mod tracking;

pub use artifacts::{ArtifactStore, LocalArtifacts, Stored, sha256_hex};
pub use error::{Error, Result};
pub use files::{FileEntry, FileStore, LocalFiles, S3Files};
pub use reference::{Reference, Selector, validate_name};
pub use registry::{SqlStore, now_ms};
pub use s3::S3Artifacts;
pub use store::{AliasEvent, MetadataStore, ModelSummary, NewVersion, Version};
pub use tokens::{Role, Token};
