//! Hostile and broken files: every reach outside the allow-list is refused by name, nothing runs,
//! and no input makes the loader panic, hang or allocate without bound.

use std::io::Write;
use std::path::Path;

use mlship_formats::{Error, load};
use proptest::prelude::*;

/// Protocol 2: `GLOBAL module name`, a one-string tuple, REDUCE.
fn reduce_p2(module: &str, name: &str, arg: &str) -> Vec<u8> {
    let mut b = vec![0x80, 2];
    b.extend(format!("c{module}\n{name}\n").as_bytes());
    b.push(b'X');
    b.extend((arg.len() as u32).to_le_bytes());
    b.extend(arg.as_bytes());
    b.extend([0x85, b'R', b'.']);
    b
}

/// Protocol 4: STACK_GLOBAL from two strings, then REDUCE.
fn reduce_p4(module: &str, name: &str, arg: &str) -> Vec<u8> {
    let mut b = vec![0x80, 4];
    for (i, s) in [module, name, arg].into_iter().enumerate() {
        b.push(0x8c);
        b.push(s.len() as u8);
        b.extend(s.as_bytes());
        if i == 1 {
            b.push(0x93);
        }
    }
    b.extend([0x85, b'R', b'.']);
    b
}

/// Protocol 0: INST opcode, which names the class inline and calls it.
fn inst_p0(module: &str, name: &str, arg: &str) -> Vec<u8> {
    format!("(S'{arg}'\ni{module}\n{name}\n.").into_bytes()
}

fn marker() -> std::path::PathBuf {
    std::env::temp_dir().join(format!("mlship-hostile-{}", std::process::id()))
}

fn assert_refused(bytes: &[u8], module: &str, name: &str) {
    match load(bytes) {
        Err(Error::ForbiddenGlobal { module: m, name: n }) => {
            assert_eq!((m.as_str(), n.as_str()), (module, name));
            let msg = Error::ForbiddenGlobal { module: m, name: n }.to_string();
            assert!(msg.contains(&format!("{module}.{name}")), "{msg}");
        }
        other => panic!("{module}.{name}: expected a refusal, got {other:?}"),
    }
    assert!(!marker().exists(), "something ran");
}

/// The known ways to run code from a pickle, including the bypasses of deny-list scanners.
const DANGEROUS: &[(&str, &str)] = &[
    ("os", "system"),
    ("posix", "system"),
    ("nt", "system"),
    ("subprocess", "Popen"),
    ("subprocess", "check_output"),
    ("builtins", "eval"),
    ("builtins", "exec"),
    ("builtins", "getattr"),
    ("builtins", "__import__"),
    ("builtins", "open"),
    ("builtins", "compile"),
    ("__builtin__", "eval"),
    ("operator", "attrgetter"),
    ("operator", "methodcaller"),
    ("functools", "reduce"),
    ("importlib", "import_module"),
    ("pickle", "loads"),
    ("_pickle", "loads"),
    ("runpy", "_run_code"),
    ("code", "InteractiveInterpreter"),
    ("pdb", "run"),
    ("timeit", "timeit"),
    ("cProfile", "run"),
    ("profile", "Profile"),
    ("ctypes", "CDLL"),
    ("shutil", "rmtree"),
    ("webbrowser", "open"),
    ("asyncio.unix_events", "_UnixSelectorEventLoop"),
    ("numpy", "load"),
    ("numpy.testing._private.utils", "runstring"),
    ("numpy.lib.npyio", "load"),
    ("joblib", "load"),
    ("torch", "load"),
    (
        "sklearn.utils._testing",
        "assert_run_python_script_without_output",
    ),
    ("sklearn.pipeline", "make_pipeline"),
    ("copyreg", "_reconstructor_"),
];

#[test]
fn dangerous_globals_are_refused_in_every_protocol() {
    let cmd = format!("touch {}", marker().display());
    for (m, n) in DANGEROUS {
        assert_refused(&reduce_p2(m, n, &cmd), m, n);
        assert_refused(&reduce_p4(m, n, &cmd), m, n);
        assert_refused(&inst_p0(m, n, &cmd), m, n);
    }
}

#[test]
fn a_dangerous_global_inside_a_real_estimator_is_refused_before_anything_is_built() {
    // A real LinearRegression pickle with one attribute replaced by a call to os.system.
    let mut b = vec![0x80, 2];
    b.extend(b"csklearn.linear_model._base\nLinearRegression\n)\x81}(X\x05\x00\x00\x00coef_");
    b.extend(
        &reduce_p2("os", "system", "touch /tmp/x")
            [2..reduce_p2("os", "system", "touch /tmp/x").len() - 1],
    );
    b.extend(b"ub.");
    assert_refused(&b, "os", "system");
}

#[test]
fn getattr_chain_is_refused_at_its_first_global() {
    // getattr(__import__('os'), 'system')('id'): the first global met is builtins.getattr.
    let mut b = vec![0x80, 4];
    b.extend(b"\x8c\x08builtins\x8c\x07getattr\x93\x8c\x08builtins\x8c\n__import__\x93\x8c\x02os\x85R\x8c\x06system\x86R\x8c\x02id\x85R.");
    assert_refused(&b, "builtins", "getattr");
}

#[test]
fn persistent_ids_and_the_extension_registry_are_refused() {
    assert!(matches!(
        load(b"\x80\x02X\x01\x00\x00\x00aQ."),
        Err(Error::Malformed { .. })
    ));
    assert!(matches!(
        load(b"\x80\x02\x82\x01)R."),
        Err(Error::Malformed { .. })
    ));
}

#[test]
fn compressed_hostile_pickles_are_refused_too() {
    let p = reduce_p4("os", "system", "id");
    let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
    z.write_all(&p).unwrap();
    assert_refused(&z.finish().unwrap(), "os", "system");
    let mut g = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    g.write_all(&p).unwrap();
    assert_refused(&g.finish().unwrap(), "os", "system");
}

#[test]
fn skops_files_with_functions_or_unknown_classes_are_refused() {
    let schema = r#"{"__class__": "system", "__module__": "os", "__loader__": "FunctionNode", "content": {"module_path": "os", "function": "system"}, "__id__": 1, "protocol": 2, "_skops_version": "0.16.0"}"#;
    let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    w.start_file("schema.json", zip::write::SimpleFileOptions::default())
        .unwrap();
    w.write_all(schema.as_bytes()).unwrap();
    let bytes = w.finish().unwrap().into_inner();
    assert_refused(&bytes, "os", "system");
}

#[test]
fn a_lying_length_fails_fast() {
    // BINBYTES claiming 4 GiB, BINUNICODE8 claiming 2^63, FRAME past the end.
    for b in [
        &b"\x80\x04B\xff\xff\xff\xff."[..],
        b"\x80\x04\x8d\xff\xff\xff\xff\xff\xff\xff\x7f.",
        b"\x80\x04\x95\x00\x00\x00\x00\x01\x00\x00\x00.",
    ] {
        let t = std::time::Instant::now();
        assert!(load(b).is_err());
        assert!(t.elapsed().as_secs() < 1);
    }
}

#[test]
fn a_million_marks_or_nested_lists_are_refused_in_bounded_memory() {
    let mut marks = vec![0x80, 4];
    marks.extend(std::iter::repeat_n(b'(', 1_000_000));
    marks.push(b'.');
    assert!(load(&marks).is_err());
    let mut nested = vec![0x80, 4];
    nested.extend(std::iter::repeat_n(b'(', 1_000_000));
    nested.extend(std::iter::repeat_n(b'l', 1_000_000));
    nested.push(b'.');
    let err = load(&nested).unwrap_err();
    assert!(
        err.to_string().contains("not a scikit-learn estimator"),
        "{err}"
    );
}

#[test]
fn deeply_nested_pipelines_hit_the_depth_limit() {
    // Pipeline(steps=[('p', Pipeline(steps=[('p', ...)]))]) nested 200 deep, built with the memo.
    let mut b = vec![0x80, 4];
    b.extend(b"\x8c\x10sklearn.pipeline\x8c\x08Pipeline\x93\x94");
    let depth = 200;
    for _ in 0..depth {
        // Pipeline.__new__, then the state dict {'steps': [('p', <next>)]} opened with marks.
        b.extend(b"h\x00)\x81}(\x8c\x05steps](\x8c\x01p");
    }
    b.extend(b"N");
    for _ in 0..depth {
        b.extend(b"\x86eub");
    }
    b.push(b'.');
    let err = load(&b).unwrap_err();
    assert!(
        matches!(err, Error::Limit(_)) || err.to_string().contains("nested"),
        "{err}"
    );
}

#[test]
fn truncated_model_files_return_errors() {
    let file = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fixtures/corpus/random_forest_classifier/model.pkl");
    let bytes = std::fs::read(file).unwrap();
    for cut in [0, 1, 2, 11, 100, 1000, bytes.len() / 2, bytes.len() - 1] {
        assert!(load(&bytes[..cut]).is_err(), "cut at {cut}");
    }
}

/// Real model files of every format, read once.
fn corpus_bytes() -> &'static [Vec<u8>] {
    static FILES: std::sync::OnceLock<Vec<Vec<u8>>> = std::sync::OnceLock::new();
    FILES.get_or_init(read_corpus)
}

fn read_corpus() -> Vec<Vec<u8>> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/corpus");
    [
        "pipeline_onehot_logreg/model.pkl",
        "decision_tree_classifier/model.protocol2.pkl",
        "linear_regression/model.joblib",
        "decision_tree_classifier/model.zlib3.joblib",
        "kmeans/model.pkl",
        "xgb_classifier/model.json",
        "xgb_regressor/model.ubj",
        "xgb_classifier/model.pkl",
        "lgbm_classifier/model.txt",
        "logistic_binary/model.pmml",
        "decision_tree_classifier/model.pmml",
        "mlp_classifier/model.nyoka.pmml",
        "pipeline_onehot_logreg/model.pmml",
        "logistic_binary/model.onnx",
        "svc/model.onnx",
        "decision_tree_regressor/model.onnx",
        "pipeline_onehot_logreg/mlflow_model/model.skops",
    ]
    .iter()
    .map(|f| std::fs::read(root.join(f)).unwrap())
    .collect()
}

fn xgboost_doc() -> serde_json::Value {
    let file = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fixtures/corpus/xgb_classifier/model.json");
    serde_json::from_slice(&std::fs::read(file).unwrap()).unwrap()
}

/// Sets `trees[0].<key>[index]` of an XGBoost JSON model and loads it.
fn xgboost_with(key: &str, index: usize, value: serde_json::Value) -> mlship_formats::Result<()> {
    let mut doc = xgboost_doc();
    doc["learner"]["gradient_booster"]["model"]["trees"][0][key][index] = value;
    load(&serde_json::to_vec(&doc).unwrap()).map(|_| ())
}

#[test]
fn xgboost_trees_that_loop_or_reach_outside_are_refused() {
    // Node 1 pointing back at the root would loop forever.
    let e = xgboost_with("left_children", 1, 0.into()).unwrap_err();
    assert!(e.to_string().contains("two parents"), "{e}");
    let e = xgboost_with("right_children", 0, 100_000.into()).unwrap_err();
    assert!(e.to_string().contains("has child"), "{e}");
    let e = xgboost_with("split_indices", 0, 99.into()).unwrap_err();
    assert!(e.to_string().contains("splits on feature 99"), "{e}");
    let e = xgboost_with("split_conditions", 0, "x".into()).unwrap_err();
    assert!(e.to_string().contains("not a number"), "{e}");
    let mut doc = xgboost_doc();
    doc["learner"]["objective"]["name"] = "rank:pairwise".into();
    let e = load(&serde_json::to_vec(&doc).unwrap()).unwrap_err();
    assert!(
        e.to_string().contains("`rank:pairwise` is not supported"),
        "{e}"
    );
    let json = serde_json::to_vec(&xgboost_doc()).unwrap();
    for cut in [1, 10, json.len() / 2, json.len() - 1] {
        assert!(load(&json[..cut]).is_err(), "cut at {cut}");
    }
}

fn lightgbm_text() -> String {
    let file = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fixtures/corpus/lgbm_classifier/model.txt");
    std::fs::read_to_string(file).unwrap()
}

#[test]
fn lightgbm_trees_that_loop_or_reach_outside_are_refused() {
    let text = lightgbm_text();
    let first = |key: &str| {
        let start = text.find(&format!("\n{key}=")).unwrap() + 1;
        let end = start + text[start..].find('\n').unwrap();
        (start, end)
    };
    let with = |key: &str, value: &str| {
        let (start, end) = first(key);
        let t = format!("{}{key}={value}{}", &text[..start], &text[end..]);
        load(t.as_bytes()).map(|_| ())
    };
    // Node 1 pointing back at the root would loop forever.
    let e = with("left_child", "2 0 8 4 -3 10 -7 -6 9 11 13 12 -1 -2").unwrap_err();
    assert!(e.to_string().contains("two parents"), "{e}");
    let e = with("right_child", "1 3 -4 -5 7 6 -8 -9 -10 -11 -12 -13 -14 -99").unwrap_err();
    assert!(e.to_string().contains("out of range"), "{e}");
    let e = with("split_feature", "99 1 6 6 5 3 2 6 5 7 2 5 6 0").unwrap_err();
    assert!(e.to_string().contains("feature 99"), "{e}");
    let e = with("threshold", "1 2 3").unwrap_err();
    assert!(e.to_string().contains("expected 14"), "{e}");
    let e = with("num_leaves", "99999999999").unwrap_err();
    assert!(e.to_string().contains("num_leaves"), "{e}");
    let e = with("objective", "lambdarank").unwrap_err();
    assert!(
        e.to_string().contains("`lambdarank` is not supported"),
        "{e}"
    );
    for cut in [5, 100, text.len() / 2] {
        assert!(load(&text.as_bytes()[..cut]).is_err(), "cut at {cut}");
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn any_lightgbm_lines_give_a_model_or_an_error(lines in proptest::collection::vec(prop_oneof![
        Just("Tree=0".to_string()), Just("num_leaves=3".to_string()), Just("num_leaves=1".to_string()),
        Just("max_feature_idx=1".to_string()), Just("num_class=1".to_string()),
        Just("num_tree_per_iteration=1".to_string()), Just("objective=binary sigmoid:1".to_string()),
        Just("split_feature=0 1".to_string()), Just("threshold=0.5 -1".to_string()),
        Just("decision_type=2 8".to_string()), Just("left_child=1 -1".to_string()),
        Just("right_child=-2 -3".to_string()), Just("leaf_value=1 2 3".to_string()),
        Just("average_output".to_string()), "[a-z_]{1,12}=[-0-9 .e]{0,12}",
    ], 0..24)) {
        let text = format!("tree\n{}\nend of trees\n", lines.join("\n"));
        if let Ok(m) = load(text.as_bytes()) {
            let cols = (0..2)
                .map(|j| mlship_model::Column::new(format!("Column_{j}"), mlship_model::ColumnData::Float(vec![f64::NAN, 0.0, 0.7])))
                .collect();
            let _ = m.predict(&mlship_model::Frame::new(cols).unwrap());
        }
    }

    #[test]
    fn mutated_xgboost_trees_load_and_score_or_give_an_error(
        edits in proptest::collection::vec((0usize..4, 0usize..25, -3i64..40), 1..6),
    ) {
        let mut doc = xgboost_doc();
        let keys = ["left_children", "right_children", "split_indices", "default_left"];
        for (k, i, v) in edits {
            doc["learner"]["gradient_booster"]["model"]["trees"][0][keys[k]][i] = v.into();
        }
        if let Ok(m) = load(&serde_json::to_vec(&doc).unwrap()) {
            let cols = (0..8)
                .map(|j| mlship_model::Column::new(format!("f{j}"), mlship_model::ColumnData::Float(vec![f64::NAN, -30.0, 0.5])))
                .collect();
            let _ = m.predict(&mlship_model::Frame::new(cols).unwrap());
        }
    }

    #[test]
    fn any_bytes_give_ubjson_or_an_error(bytes in proptest::collection::vec(prop_oneof![
        Just(b'['), Just(b'{'), Just(b']'), Just(b'}'), Just(b'$'), Just(b'#'), Just(b'i'), Just(b'U'),
        Just(b'L'), Just(b'd'), Just(b'D'), Just(b'S'), Just(b'H'), Just(b'N'), Just(b'Z'), any::<u8>(),
    ], 0..256)) {
        let _ = mlship_formats::ubjson::parse(&bytes);
    }

    #[test]
    fn any_bytes_give_a_model_or_an_error(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = load(&bytes);
    }

    #[test]
    fn any_pickle_opcodes_give_a_model_or_an_error(body in proptest::collection::vec(prop_oneof![
        Just(b'('), Just(b'.'), Just(b'0'), Just(b'1'), Just(b'2'), Just(b'N'), Just(b'R'), Just(b'b'), Just(b'a'),
        Just(b'e'), Just(b'l'), Just(b'd'), Just(b's'), Just(b'u'), Just(b't'), Just(b')'), Just(b']'), Just(b'}'),
        Just(0x85u8), Just(0x86), Just(0x87), Just(0x88), Just(0x89), Just(0x81), Just(0x93), Just(0x94), Just(b'h'),
        Just(b'K'), any::<u8>(),
    ], 0..256)) {
        let mut b = vec![0x80, 4];
        b.extend(body);
        let _ = load(&b);
    }

    #[test]
    fn mutated_real_models_give_a_model_or_an_error(which in any::<prop::sample::Index>(), flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8), cut in any::<prop::sample::Index>()) {
        let all = corpus_bytes();
        let mut b = all[which.index(all.len())].clone();
        for (i, v) in flips {
            let i = i.index(b.len());
            b[i] = v;
        }
        let c = cut.index(b.len() + 1);
        // What loads scores (or refuses the rows) without panicking.
        for m in [load(&b[..c]), load(&b)].into_iter().flatten() {
            let _ = m.predict(&awkward_rows(&m));
        }
    }
}

/// Five rows for a model's inputs, of the awkward kinds: a missing value, a negative number, a
/// fraction, zero, a huge number; for string inputs categories the mlship JSON documents below
/// know ("red", "blue"), a missing one, an unknown one and a number's text.
fn awkward_rows(m: &mlship_model::Model) -> mlship_model::Frame {
    use mlship_model::{ColumnData, DType};
    m.signature
        .frame(|f| match f.dtype {
            DType::Str => ColumnData::Str(vec![
                Some("red".into()),
                None,
                Some("blue".into()),
                Some("\u{0}unknown".into()),
                Some("1".into()),
            ]),
            DType::Bool => {
                ColumnData::Bool(vec![Some(true), None, Some(false), Some(true), Some(false)])
            }
            DType::Int => ColumnData::Int(vec![None, Some(-30), Some(1), Some(0), Some(i64::MAX)]),
            DType::Float => ColumnData::Float(vec![f64::NAN, -30.0, 0.5, 0.0, 1e300]),
        })
        .unwrap()
}

/// mlship JSON copies of real models: a pipeline, a tree, k-means, an MLP, an SVM.
fn mlship_json_docs() -> Vec<serde_json::Value> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/corpus");
    [
        "pipeline_onehot_logreg/model.pkl",
        "decision_tree_classifier/model.pkl",
        "kmeans/model.pkl",
        "mlp_classifier/model.pkl",
        "svc/model.pkl",
    ]
    .iter()
    .map(|f| {
        let m = load(&std::fs::read(root.join(f)).unwrap()).unwrap();
        serde_json::from_slice(&mlship_formats::mlship_json::write(&m).unwrap()).unwrap()
    })
    .collect()
}

/// Every place in a JSON value that holds a number or an array, by JSON pointer.
fn editable(v: &serde_json::Value, at: String, out: &mut Vec<String>) {
    match v {
        serde_json::Value::Number(_) => out.push(at),
        serde_json::Value::Array(items) => {
            out.push(at.clone());
            for (i, x) in items.iter().enumerate() {
                editable(x, format!("{at}/{i}"), out);
            }
        }
        serde_json::Value::Object(map) => {
            for (k, x) in map {
                editable(x, format!("{at}/{k}"), out);
            }
        }
        _ => {}
    }
}

#[test]
fn mlship_json_refuses_unknown_fields_and_versions_by_name() {
    let mut doc = mlship_json_docs().swap_remove(0);
    doc["estimator"]["surprise"] = 1.into();
    let e = load(&serde_json::to_vec(&doc).unwrap())
        .unwrap_err()
        .to_string();
    assert!(e.contains("surprise"), "{e}");
    let mut doc = mlship_json_docs().swap_remove(0);
    doc["version"] = 2.into();
    let e = load(&serde_json::to_vec(&doc).unwrap())
        .unwrap_err()
        .to_string();
    assert!(e.contains("version 2"), "{e}");
    let mut doc = mlship_json_docs().swap_remove(1);
    doc["estimator"]["trees"][0]["left"][0] = 0.into();
    let e = load(&serde_json::to_vec(&doc).unwrap())
        .unwrap_err()
        .to_string();
    assert!(e.contains("invalid model"), "{e}");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn mutated_mlship_json_loads_and_scores_or_gives_an_error(
        which in 0usize..5,
        edits in proptest::collection::vec((any::<prop::sample::Index>(), -3i64..12, any::<bool>()), 1..5),
    ) {
        let mut doc = mlship_json_docs().swap_remove(which);
        for (at, v, shorten) in edits {
            let mut paths = Vec::new();
            editable(&doc, String::new(), &mut paths);
            let path = at.get(&paths).clone();
            let target = doc.pointer_mut(&path).unwrap();
            match target {
                serde_json::Value::Array(items) if shorten => { items.pop(); }
                serde_json::Value::Array(_) => {}
                n => *n = v.into(),
            }
        }
        if let Ok(m) = load(&serde_json::to_vec(&doc).unwrap()) {
            let _ = m.predict(&awkward_rows(&m));
        }
    }
}

fn pmml_text() -> String {
    let file = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fixtures/corpus/decision_tree_classifier/model.pmml");
    std::fs::read_to_string(file).unwrap()
}

#[test]
fn broken_or_hostile_pmml_is_refused_by_name() {
    let good = pmml_text();
    let cases: Vec<(String, &str)> = vec![
        (good[..good.len() / 2].to_string(), "malformed XML"),
        (
            good.replace("<TreeModel", "<TreeModelX")
                .replace("</TreeModel>", "</TreeModelX>"),
            "no model element",
        ),
        (good.replace("<True/>", "<Sometimes/>"), "Sometimes"),
        (
            good.replace("operator=\"lessOrEqual\"", "operator=\"approximately\""),
            "approximately",
        ),
        (
            good.replace(
                "<MiningSchema>",
                "<MiningSchema><MiningField name=\"nope\"/>",
            ),
            "nope",
        ),
        (
            // An entity expansion bomb: DTDs are refused outright.
            format!(
                "<?xml version=\"1.0\"?><!DOCTYPE lolz [<!ENTITY lol \"lol\"><!ENTITY lol2 \"&lol;&lol;&lol;&lol;\">]>{}",
                good.split_once("?>").unwrap().1
            ),
            "DTD",
        ),
        (
            good.replace("version=\"4.4\"", "version=\"9.9\""),
            "version",
        ),
    ];
    for (text, needle) in cases {
        let e = match load(text.as_bytes()) {
            Ok(m) => {
                // Some breakage only shows when a row is scored.
                let cols = (0..8)
                    .map(|j| {
                        mlship_model::Column::new(
                            format!("f{j}"),
                            mlship_model::ColumnData::Float(vec![0.5]),
                        )
                    })
                    .collect();
                match m.predict(&mlship_model::Frame::new(cols).unwrap()) {
                    Ok(_) => panic!("accepted a document with {needle}"),
                    Err(e) => e.to_string(),
                }
            }
            Err(e) => e.to_string(),
        };
        assert!(e.contains(needle), "{needle}: {e}");
    }
}

#[test]
fn deeply_nested_pmml_hits_a_limit() {
    let mut s = String::from(
        "<PMML version=\"4.4\"><DataDictionary><DataField name=\"x\" optype=\"continuous\" dataType=\"double\"/><DataField name=\"y\" optype=\"continuous\" dataType=\"double\"/></DataDictionary><TreeModel functionName=\"regression\"><MiningSchema><MiningField name=\"x\"/><MiningField name=\"y\" usageType=\"target\"/></MiningSchema>",
    );
    for _ in 0..2000 {
        s.push_str("<Node score=\"1\"><True/>");
    }
    for _ in 0..2000 {
        s.push_str("</Node>");
    }
    s.push_str("</TreeModel></PMML>");
    let e = load(s.as_bytes()).unwrap_err().to_string();
    assert!(e.contains("deeper"), "{e}");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn mutated_pmml_loads_and_scores_or_gives_an_error(
        edits in proptest::collection::vec((any::<prop::sample::Index>(), prop_oneof![
            Just("<"), Just(">"), Just("\""), Just("/"), Just("NaN"), Just("-1e308"), Just("</Node>"),
            Just("<True/>"), Just("<Node>"), Just("x"), Just(""),
        ]), 1..6),
    ) {
        let mut text = pmml_text();
        for (at, s) in edits {
            let mut i = at.index(text.len());
            while !text.is_char_boundary(i) {
                i -= 1;
            }
            text.replace_range(i..(i + 1).min(text.len()), s);
        }
        if let Ok(m) = load(text.as_bytes()) {
            let cols = (0..8)
                .map(|j| mlship_model::Column::new(format!("f{j}"), mlship_model::ColumnData::Float(vec![f64::NAN, -30.0, 0.5])))
                .collect();
            let _ = m.predict(&mlship_model::Frame::new(cols).unwrap());
        }
    }
}

fn onnx_bytes(case: &str) -> Vec<u8> {
    std::fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../fixtures/corpus")
            .join(case)
            .join("model.onnx"),
    )
    .unwrap()
}

#[test]
fn onnx_operators_mlship_does_not_run_are_refused_by_name() {
    let mut b = onnx_bytes("mlp_classifier");
    // The op_type field (4, length-delimited) of the first Relu node.
    let at = b.windows(6).position(|w| w == b"\x22\x04Relu").unwrap() + 2;
    b[at..at + 4].copy_from_slice(b"Relx");
    let e = load(&b).unwrap_err().to_string();
    assert!(e.contains("ONNX operator Relx"), "{e}");
    let good = onnx_bytes("random_forest_classifier");
    let e = load(&good[..good.len() / 2]).unwrap_err().to_string();
    assert!(
        e.contains("truncated") || e.contains("malformed") || e.contains("unrecognised"),
        "{e}"
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn mutated_onnx_loads_and_scores_or_gives_an_error(
        which in 0usize..4,
        flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
    ) {
        let mut b = onnx_bytes(["decision_tree_classifier", "pipeline_onehot_logreg", "gaussian_nb", "svc"][which]);
        for (i, v) in flips {
            let i = i.index(b.len());
            b[i] = v;
        }
        if let Ok(m) = mlship_formats::onnx::load(&b) {
            let frame = m.signature.frame(|f| match f.dtype {
                mlship_model::DType::Str => mlship_model::ColumnData::Str(vec![Some("red".into()), None]),
                _ => mlship_model::ColumnData::Float(vec![f64::NAN, 0.5]),
            });
            let _ = m.predict(&frame.unwrap());
        }
    }
}

fn lightgbm_dump() -> serde_json::Value {
    let file = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fixtures/corpus/lgbm_classifier/model.json");
    serde_json::from_slice(&std::fs::read(file).unwrap()).unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn mutated_lightgbm_dumps_load_and_score_or_give_an_error(
        edits in proptest::collection::vec((any::<prop::sample::Index>(), -3i64..40, any::<bool>()), 1..5),
    ) {
        let mut doc = lightgbm_dump();
        for (at, v, shorten) in edits {
            let mut paths = Vec::new();
            editable(&doc, String::new(), &mut paths);
            let path = at.get(&paths).clone();
            match doc.pointer_mut(&path).unwrap() {
                serde_json::Value::Array(items) if shorten => { items.pop(); }
                serde_json::Value::Array(_) => {}
                n => *n = v.into(),
            }
        }
        if let Ok(m) = load(&serde_json::to_vec(&doc).unwrap()) {
            let cols = (0..8)
                .map(|j| mlship_model::Column::new(format!("f{j}"), mlship_model::ColumnData::Float(vec![f64::NAN, -30.0, 0.5])))
                .collect();
            let _ = m.predict(&mlship_model::Frame::new(cols).unwrap());
        }
    }
}

/// A categorical split's codes are bounded: one listing a code of 2^20 or more is refused before
/// a bitset for it is built.
#[test]
fn xgboost_category_codes_past_the_bound_are_refused() {
    let file = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fixtures/extra/xgb_many_categories/model.json");
    let mut doc: serde_json::Value = serde_json::from_slice(&std::fs::read(file).unwrap()).unwrap();
    doc["learner"]["gradient_booster"]["model"]["trees"][0]["categories"][0] = (1u64 << 20).into();
    let e = load(&serde_json::to_vec(&doc).unwrap()).unwrap_err();
    assert!(e.to_string().contains("below 2^20"), "{e}");
}

/// A file that is no model says what it looks like, and lists the formats that are read.
#[test]
fn unknown_files_are_described_by_what_they_look_like() {
    for (bytes, needle) in [
        (
            &b"<?xml version=\"1.0\"?><catalog/>"[..],
            "an XML document that is not PMML",
        ),
        (&b"{\"hello\": 1}"[..], "none of the JSON model formats"),
        (&b""[..], "the file is empty"),
    ] {
        let e = mlship_formats::load(bytes).unwrap_err().to_string();
        assert!(e.contains(needle) && e.contains("PMML, ONNX"), "{e}");
    }
}
