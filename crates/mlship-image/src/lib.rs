//! mlship's container images: an OCI image written straight to an archive (no daemon), read back,
//! and pushed to any registry that speaks the OCI distribution API.
//!
//! [`Layer`] builds deterministic tar layers; [`write_archive`] assembles layers and a config into
//! one tar that is both an OCI image layout and a `docker load` archive; [`read_archive`] opens
//! one again; [`push`] uploads it. Same inputs, same bytes, same digests: every timestamp is
//! fixed, every entry sorted, every owner root.

mod archive;
mod error;
mod layer;
mod oci;
mod push;
mod runtime;

pub use archive::{Archive, BuiltImage, ImageSpec, read_archive, write_archive};
pub use error::{Error, Result};
pub use layer::Layer;
pub use oci::{Healthcheck, MEDIA_CONFIG, MEDIA_LAYER_GZIP, MEDIA_MANIFEST, sha256_digest};
pub use push::{Credentials, PushOptions, PushReport, Target, push};
pub use runtime::linked_libraries;
