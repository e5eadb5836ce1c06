//! mlship's data versioning: DVC 3's files (`.dvc`, `.dir` manifests, `.dvc/config`), its
//! content-addressed cache and its remotes (a folder, S3), read and written exactly as the real
//! `dvc` does, so a team can switch tools either way mid-project.
//!
//! - [`objects`]: md5 addresses and the `.dir` manifest's exact bytes;
//! - [`dvcfile`]: `.dvc` files; [`config`]: the INI config; [`ignore`]: `.dvcignore`;
//! - [`lock`]: the repository lock shared with `dvc`;
//! - [`cache`]: the object folders; [`remote`]: remotes; [`state`]: the hash cache by stamp;
//! - [`repo`]: the operations (`init`, `add`, `status`, `push`, `fetch`, `checkout`, `gc`);
//! - [`pipeline`]: `dvc.yaml` stages, `dvc.lock` and the run cache (`pyjson`: the run cache's names).

pub mod cache;
pub mod config;
pub mod dvcfile;
mod error;
pub mod ignore;
pub mod lock;
pub mod objects;
pub mod pipeline;
mod pyjson;
pub mod remote;
pub mod repo;
pub mod state;

pub use error::{Error, Result};
pub use lock::RepoLock;
pub use repo::{Added, Change, CheckedOut, CloudChange, Progress, Quiet, Repo, Tracked};
