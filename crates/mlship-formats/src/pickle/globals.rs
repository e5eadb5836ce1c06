//! The allow-list: every `module.name` a model file may reference, and what it means to the VM.
//!
//! A global that is not listed here is refused when the opcode that names it is read, before any
//! object is built. Listed globals are never called: the VM emulates each one's effect on data.

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

/// XGBoost's scikit-learn wrappers and the booster they pickle (its model as raw bytes).
const XGBOOST_CLASSES: &[(&str, &[&str])] = &[
    (
        "xgboost.sklearn",
        &[
            "XGBClassifier",
            "XGBRegressor",
            "XGBRFClassifier",
            "XGBRFRegressor",
        ],
    ),
    ("xgboost.core", &["Booster"]),
];

/// LightGBM's scikit-learn wrappers and the Booster they hold (its state is the model's text).
const LIGHTGBM_CLASSES: &[(&str, &[&str])] = &[
    ("lightgbm.sklearn", &["LGBMClassifier", "LGBMRegressor"]),
    ("lightgbm.basic", &["Booster"]),
];

/// scikit-learn classes by module, over the module moves of scikit-learn 1.0 to 1.9.
const SKLEARN_CLASSES: &[(&str, &[&str])] = &[
    ("sklearn.linear_model._base", &["LinearRegression"]),
    (
        "sklearn.linear_model._ridge",
        &["Ridge", "RidgeCV", "RidgeClassifier", "RidgeClassifierCV"],
    ),
    (
        "sklearn.linear_model._coordinate_descent",
        &["Lasso", "ElasticNet", "LassoCV", "ElasticNetCV"],
    ),
    (
        "sklearn.linear_model._logistic",
        &["LogisticRegression", "LogisticRegressionCV"],
    ),
    (
        "sklearn.linear_model._stochastic_gradient",
        &["SGDClassifier", "SGDRegressor"],
    ),
    (
        "sklearn.linear_model._bayes",
        &["BayesianRidge", "ARDRegression"],
    ),
    ("sklearn.linear_model._huber", &["HuberRegressor"]),
    (
        "sklearn.svm._classes",
        &["LinearSVC", "LinearSVR", "SVC", "SVR", "NuSVC", "NuSVR"],
    ),
    (
        "sklearn.tree._classes",
        &[
            "DecisionTreeClassifier",
            "DecisionTreeRegressor",
            "ExtraTreeClassifier",
            "ExtraTreeRegressor",
        ],
    ),
    ("sklearn.tree._tree", &["Tree"]),
    (
        "sklearn.ensemble._forest",
        &[
            "RandomForestClassifier",
            "RandomForestRegressor",
            "ExtraTreesClassifier",
            "ExtraTreesRegressor",
        ],
    ),
    (
        "sklearn.ensemble._gb",
        &["GradientBoostingClassifier", "GradientBoostingRegressor"],
    ),
    (
        "sklearn.ensemble._gb_losses",
        &[
            "LeastSquaresError",
            "LeastAbsoluteError",
            "HuberLossFunction",
            "QuantileLossFunction",
            "BinomialDeviance",
            "MultinomialDeviance",
            "ExponentialLoss",
        ],
    ),
    (
        "sklearn.ensemble._hist_gradient_boosting.gradient_boosting",
        &[
            "HistGradientBoostingClassifier",
            "HistGradientBoostingRegressor",
        ],
    ),
    (
        "sklearn.ensemble._hist_gradient_boosting.predictor",
        &["TreePredictor"],
    ),
    (
        "sklearn.ensemble._hist_gradient_boosting.binning",
        &["_BinMapper"],
    ),
    (
        "sklearn.ensemble._hist_gradient_boosting.loss",
        &[
            "LeastSquares",
            "LeastAbsoluteDeviation",
            "Poisson",
            "BinaryCrossEntropy",
            "CategoricalCrossEntropy",
        ],
    ),
    (
        "sklearn._loss.loss",
        &[
            "HalfSquaredError",
            "AbsoluteError",
            "PinballLoss",
            "HuberLoss",
            "HalfPoissonLoss",
            "HalfGammaLoss",
            "HalfTweedieLoss",
            "HalfTweedieLossIdentity",
            "HalfBinomialLoss",
            "HalfMultinomialLoss",
            "ExponentialLoss",
        ],
    ),
    (
        "sklearn._loss.link",
        &[
            "IdentityLink",
            "LogLink",
            "LogitLink",
            "HalfLogitLink",
            "MultinomialLogit",
            "Interval",
        ],
    ),
    ("sklearn.dummy", &["DummyClassifier", "DummyRegressor"]),
    ("sklearn.naive_bayes", &["GaussianNB"]),
    ("sklearn.cluster._kmeans", &["KMeans", "MiniBatchKMeans"]),
    (
        "sklearn.neural_network._multilayer_perceptron",
        &["MLPClassifier", "MLPRegressor"],
    ),
    ("sklearn.pipeline", &["Pipeline"]),
    (
        "sklearn.compose._column_transformer",
        &[
            "ColumnTransformer",
            "_RemainderColsList",
            "make_column_selector",
        ],
    ),
    (
        "sklearn.preprocessing._data",
        &[
            "StandardScaler",
            "MinMaxScaler",
            "MaxAbsScaler",
            "RobustScaler",
            "Normalizer",
        ],
    ),
    ("sklearn.preprocessing._polynomial", &["PolynomialFeatures"]),
    (
        "sklearn.preprocessing._encoders",
        &["OneHotEncoder", "OrdinalEncoder"],
    ),
    (
        "sklearn.preprocessing._function_transformer",
        &["FunctionTransformer"],
    ),
    (
        "sklearn.preprocessing._label",
        &["LabelEncoder", "LabelBinarizer"],
    ),
    (
        "sklearn.impute._base",
        &["SimpleImputer", "MissingIndicator"],
    ),
    ("functools", &["partial"]),
];

/// Training-time objects that prediction does not need.
const OPAQUE: &[(&str, &[&str])] = &[
    (
        "sklearn.neural_network._stochastic_optimizers",
        &["AdamOptimizer", "SGDOptimizer"],
    ),
    (
        "sklearn._loss._loss",
        &[
            "CyHalfSquaredError",
            "CyAbsoluteError",
            "CyPinballLoss",
            "CyHuberLoss",
            "CyHalfPoissonLoss",
            "CyHalfGammaLoss",
            "CyHalfTweedieLoss",
            "CyHalfTweedieLossIdentity",
            "CyHalfBinomialLoss",
            "CyExponentialLoss",
            "CyHalfMultinomialLoss",
            "__pyx_unpickle_CyHalfSquaredError",
            "__pyx_unpickle_CyAbsoluteError",
            "__pyx_unpickle_CyPinballLoss",
            "__pyx_unpickle_CyHuberLoss",
            "__pyx_unpickle_CyHalfPoissonLoss",
            "__pyx_unpickle_CyHalfGammaLoss",
            "__pyx_unpickle_CyHalfTweedieLoss",
            "__pyx_unpickle_CyHalfTweedieLossIdentity",
            "__pyx_unpickle_CyHalfBinomialLoss",
            "__pyx_unpickle_CyExponentialLoss",
            "__pyx_unpickle_CyHalfMultinomialLoss",
        ],
    ),
    (
        "numpy.random._pickle",
        &[
            "__randomstate_ctor",
            "__bit_generator_ctor",
            "__generator_ctor",
        ],
    ),
    ("numpy.random._mt19937", &["MT19937"]),
    ("numpy.random._pcg64", &["PCG64", "PCG64DXSM"]),
    ("numpy.random._philox", &["Philox"]),
    ("numpy.random._sfc64", &["SFC64"]),
    (
        "numpy.random.bit_generator",
        &["SeedSequence", "__pyx_unpickle_SeedSequence"],
    ),
    (
        "numpy.random._bit_generator",
        &["SeedSequence", "__pyx_unpickle_SeedSequence"],
    ),
    ("numpy.random.mtrand", &["RandomState"]),
    ("numpy.random", &["__RandomState_ctor"]),
    ("sklearn.utils.validation", &["check_array"]),
    (
        "sklearn.linear_model._sgd_fast",
        &[
            "Hinge",
            "Log",
            "ModifiedHuber",
            "SquaredHinge",
            "SquaredLoss",
            "Huber",
            "EpsilonInsensitive",
            "SquaredEpsilonInsensitive",
        ],
    ),
];

const TYPE_VALUES: &[(&str, &[&str])] = &[
    (
        "numpy",
        &[
            "float64", "float32", "float16", "int64", "int32", "int16", "int8", "uint64", "uint32",
            "uint16", "uint8", "bool_", "object_", "str_", "bytes_",
        ],
    ),
    (
        "builtins",
        &[
            "object", "int", "float", "str", "bool", "bytes", "list", "tuple", "NoneType", "type",
        ],
    ),
    // Protocols 0 to 2 spell builtins the Python 2 way.
    (
        "__builtin__",
        &[
            "object", "int", "float", "str", "bool", "list", "tuple", "type",
        ],
    ),
];

/// Resolves `module.name` against the allow-list. `None` means refused.
pub fn resolve(module: &str, name: &str) -> Option<Global> {
    let kind = kind_of(module, name)?;
    Some(Global {
        module: module.to_string(),
        name: name.to_string(),
        kind,
    })
}

fn listed(table: &[(&str, &[&str])], module: &str, name: &str) -> bool {
    table
        .iter()
        .any(|(m, names)| *m == module && names.contains(&name))
}

fn kind_of(module: &str, name: &str) -> Option<Kind> {
    let k = match (module, name) {
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
        ("joblib.numpy_pickle" | "sklearn.externals.joblib.numpy_pickle", "NumpyArrayWrapper") => {
            Kind::JoblibArrayWrapper
        }
        _ if listed(SKLEARN_CLASSES, module, name) => Kind::Class,
        _ if listed(XGBOOST_CLASSES, module, name) => Kind::Class,
        _ if listed(LIGHTGBM_CLASSES, module, name) => Kind::Class,
        _ if listed(OPAQUE, module, name) => Kind::Opaque,
        _ if listed(TYPE_VALUES, module, name) => Kind::TypeValue,
        _ => return None,
    };
    Some(k)
}

/// The estimator classes mlship scores, for error messages.
pub fn supported_estimators() -> String {
    let mut names: Vec<&str> = SKLEARN_CLASSES
        .iter()
        .flat_map(|(_, n)| n.iter().copied())
        .filter(|n| crate::sklearn::is_scorable(n))
        .collect();
    names.sort_unstable();
    names.dedup();
    names.join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dangerous_globals_are_refused() {
        for (m, n) in [
            ("os", "system"),
            ("posix", "system"),
            ("builtins", "eval"),
            ("builtins", "exec"),
            ("builtins", "getattr"),
            ("builtins", "__import__"),
            ("subprocess", "Popen"),
            ("sklearn.utils", "_print_elapsed_time"),
            ("numpy", "load"),
            ("numpy.testing._private.utils", "runstring"),
            ("torch", "load"),
        ] {
            assert!(resolve(m, n).is_none(), "{m}.{n} must be refused");
        }
    }

    #[test]
    fn numpy_one_and_two_spellings_resolve() {
        assert_eq!(
            resolve("numpy.core.multiarray", "_reconstruct").map(|g| g.kind),
            Some(Kind::Reconstruct)
        );
        assert_eq!(
            resolve("numpy._core.multiarray", "_reconstruct").map(|g| g.kind),
            Some(Kind::Reconstruct)
        );
        assert_eq!(
            resolve("numpy.core.numeric", "_frombuffer").map(|g| g.kind),
            Some(Kind::FromBuffer)
        );
    }
}
