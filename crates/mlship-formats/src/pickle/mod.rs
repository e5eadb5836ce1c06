//! The safe unpickler: an allow-list VM for pickle protocols 0 to 5 and joblib's array frames.

pub mod globals;
pub mod numpy;
pub mod value;
pub mod vm;

pub use value::{Heap, Id, Obj, Value};
pub use vm::{Unpickled, unpickle};
