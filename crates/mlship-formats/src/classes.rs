//! The class table: every class, value and training-time object a model file may name beyond
//! plain data, the one list the unpickler's allow-list, skops's and the error messages'
//! "supported" lists are derived from. Listed classes are never called: the unpickler rebuilds
//! their state and the scikit-learn lowering reads it.

use mlship_pickle::{AllowList, Kind};

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
    ("numpy.random._generator", &["Generator"]),
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

/// The model libraries' classes, for the unpickler and skops (see [`mlship_pickle::allow`]).
pub struct Classes;

impl AllowList for Classes {
    fn kind(&self, module: &str, name: &str) -> Option<Kind> {
        Some(match (module, name) {
            // Old scikit-learn vendored joblib, and pickled its array frames under its own name.
            ("sklearn.externals.joblib.numpy_pickle", "NumpyArrayWrapper") => {
                Kind::JoblibArrayWrapper
            }
            _ if listed(SKLEARN_CLASSES, module, name) => Kind::Class,
            _ if listed(XGBOOST_CLASSES, module, name) => Kind::Class,
            _ if listed(LIGHTGBM_CLASSES, module, name) => Kind::Class,
            _ if listed(OPAQUE, module, name) => Kind::Opaque,
            _ if listed(TYPE_VALUES, module, name) => Kind::TypeValue,
            _ => return None,
        })
    }
}

fn listed(table: &[(&str, &[&str])], module: &str, name: &str) -> bool {
    table
        .iter()
        .any(|(m, names)| *m == module && names.contains(&name))
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
    use mlship_pickle::allow::resolve;

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
            assert!(resolve(m, n, &Classes).is_none(), "{m}.{n} must be refused");
        }
    }

    #[test]
    fn numpy_one_and_two_spellings_resolve() {
        assert_eq!(
            resolve("numpy.core.multiarray", "_reconstruct", &Classes).map(|g| g.kind),
            Some(Kind::Reconstruct)
        );
        assert_eq!(
            resolve("numpy._core.multiarray", "_reconstruct", &Classes).map(|g| g.kind),
            Some(Kind::Reconstruct)
        );
        assert_eq!(
            resolve("numpy.core.numeric", "_frombuffer", &Classes).map(|g| g.kind),
            Some(Kind::FromBuffer)
        );
    }
}
