//! mlship's safe unpickler: an allow-list VM for pickle protocols 0 to 5, the numpy arrays and
//! joblib frames inside them, joblib's compressed containers and skops's zip of JSON.
//!
//! Nothing in a file is ever run. Every global a stream names is looked up before any object is
//! built: the builtins and numpy internals needed to decode data are known here ([`allow`]);
//! every other class comes from the caller's [`AllowList`], and anything else is refused with an
//! error naming it. This crate knows no model library: which classes a model may hold, and what
//! they mean, is the caller's table.
//!
//! - [`vm`]: the pickle VM ([`unpickle`]); [`value`]: the object graph it builds;
//! - [`numpy`]: dtypes, arrays, `.npy` files and numpy's literal reprs;
//! - [`joblib`]: joblib's containers (zlib, gzip, bz2, xz, lzma, lz4);
//! - [`skops`]: skops files, by the same allow-list.
//!
//! Every function takes bytes and returns `Err`, never panics, on any input.

pub mod allow;
mod error;
pub mod joblib;
pub mod numpy;
pub mod skops;
pub mod value;
pub mod vm;

pub use allow::{AllowList, Global, Kind};
pub use error::{Error, Result};
pub use value::{Heap, Id, Obj, Value};
pub use vm::{Unpickled, unpickle};
