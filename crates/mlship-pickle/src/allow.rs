//! What a stream may name: the globals every pickle of data needs (numpy's array machinery,
//! Python's builtins and containers, joblib's array frames), known here, and the caller's
//! [`AllowList`] for everything else. Listed globals are never called: the VM emulates each one's
//! effect on data.

use std::fmt;

/// What an allow-listed global does when the VM meets it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// A class whose instances are rebuilt from a state dict (`__new__` then `__setstate__`).
    Class,
    /// `numpy.core.multiarray._reconstruct(ndarray, (0,), b'b')`: an empty array awaiting BUILD.
    Reconstruct,
    /// `numpy.ndarray` (argument of `_reconstruct` and joblib's wrapper).
    NdArrayClass,
    /// `numpy.dtype(name, align, copy)` then BUILD with its state.
    DtypeCtor,
    /// `numpy.core.multiarray.scalar(dtype, bytes)`: a numpy scalar.
    Scalar,
    /// `numpy.core.numeric._frombuffer(buffer, dtype, shape, order)` (protocol 5 arrays).
    FromBuffer,
    /// `_codecs.encode(str, 'latin1')`: how protocols 0 to 2 write bytes.
    CodecsEncode,
    Bytearray,
    Slice,
    /// `dict`, `collections.OrderedDict`, `collections.defaultdict`.
    DictCtor,
    /// `set` and `frozenset`.
    SetCtor,
    /// `copyreg._reconstructor(cls, object, state)`: protocols 0 and 1 objects.
    CopyregReconstructor,
    /// `joblib.numpy_pickle.NumpyArrayWrapper`: an array whose bytes follow in the stream.
    JoblibArrayWrapper,
    /// A type or function used only as a value (`numpy.float64` as OneHotEncoder's dtype).
    TypeValue,
    /// Training-time state that prediction ignores (random generators, optimizers, Cython losses).
    Opaque,
}

/// A resolved, allow-listed global.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Global {
    pub module: String,
    pub name: String,
    pub kind: Kind,
}

impl fmt::Display for Global {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.module, self.name)
    }
}

const NUMPY_CORE: [&str; 2] = ["numpy.core.multiarray", "numpy._core.multiarray"];
const NUMPY_NUMERIC: [&str; 2] = ["numpy.core.numeric", "numpy._core.numeric"];

/// The caller's part of the allow-list: the classes (and the values and training-time objects)
/// a file may name beyond what decoding data needs, and what the VM does with each.
pub trait AllowList {
    /// What `module.name` is, or `None` to refuse it.
    fn kind(&self, module: &str, name: &str) -> Option<Kind>;
}

/// Resolves `module.name`: first the globals that decoding data needs, then the caller's list.
/// `None` means refused.
pub fn resolve(module: &str, name: &str, list: &dyn AllowList) -> Option<Global> {
    let kind = builtin(module, name).or_else(|| list.kind(module, name))?;
    Some(Global {
        module: module.to_string(),
        name: name.to_string(),
        kind,
    })
}

/// The globals of data itself: numpy arrays, dtypes and scalars, the builtin containers,
/// protocols 0 to 2's spellings, and joblib's array frames.
fn builtin(module: &str, name: &str) -> Option<Kind> {
    Some(match (module, name) {
        (m, "_reconstruct") if NUMPY_CORE.contains(&m) => Kind::Reconstruct,
        (m, "scalar") if NUMPY_CORE.contains(&m) => Kind::Scalar,
        (m, "_frombuffer") if NUMPY_NUMERIC.contains(&m) => Kind::FromBuffer,
        ("numpy", "ndarray") => Kind::NdArrayClass,
        ("numpy", "dtype") => Kind::DtypeCtor,
        ("_codecs", "encode") => Kind::CodecsEncode,
        ("builtins" | "__builtin__", "bytearray" | "bytes") => Kind::Bytearray,
        ("builtins" | "__builtin__", "slice") => Kind::Slice,
        ("builtins" | "__builtin__", "dict") | ("collections", "OrderedDict" | "defaultdict") => {
            Kind::DictCtor
        }
        ("builtins" | "__builtin__", "set" | "frozenset") => Kind::SetCtor,
        ("copyreg" | "copy_reg", "_reconstructor") => Kind::CopyregReconstructor,
        ("joblib.numpy_pickle", "NumpyArrayWrapper") => Kind::JoblibArrayWrapper,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A caller that allows nothing of its own.
    struct Nothing;

    impl AllowList for Nothing {
        fn kind(&self, _: &str, _: &str) -> Option<Kind> {
            None
        }
    }

    #[test]
    fn code_is_refused_and_data_is_known() {
        for (m, n) in [
            ("os", "system"),
            ("builtins", "eval"),
            ("builtins", "getattr"),
            ("subprocess", "Popen"),
            ("numpy", "load"),
        ] {
            assert!(resolve(m, n, &Nothing).is_none(), "{m}.{n} must be refused");
        }
        for (m, n, k) in [
            ("numpy.core.multiarray", "_reconstruct", Kind::Reconstruct),
            ("numpy._core.multiarray", "_reconstruct", Kind::Reconstruct),
            ("numpy.core.numeric", "_frombuffer", Kind::FromBuffer),
            ("copy_reg", "_reconstructor", Kind::CopyregReconstructor),
        ] {
            assert_eq!(resolve(m, n, &Nothing).map(|g| g.kind), Some(k), "{m}.{n}");
        }
    }
}
