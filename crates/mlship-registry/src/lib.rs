//! mlship's model registry: immutable, checksummed versions; aliases with history and rollback.
//!
//! Two traits separate what is stored from where: [`MetadataStore`] (SQLite by default,
//! PostgreSQL for many replicas) keeps
//! models, versions, aliases and the alias history, each change one transaction; [`ArtifactStore`]
//! (a local folder by default, S3 for many replicas) keeps model files under their sha256, written atomically and
//! verified on read. A version row is written only after its artifact is durable, so a crash
//! leaves either no version or a whole one.

mod artifacts;
mod error;
mod pg;
mod reference;
mod s3;
mod sqlite;
mod store;

pub use artifacts::{ArtifactStore, LocalArtifacts, Stored, sha256_hex};
pub use error::{Error, Result};
pub use pg::PgStore;
pub use reference::{Reference, Selector, validate_name};
pub use s3::S3Artifacts;
pub use sqlite::SqliteStore;
pub use store::{AliasEvent, MetadataStore, ModelSummary, NewVersion, Version};
