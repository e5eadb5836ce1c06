//! The rules ARCHITECTURE.md states about the code, checked on the source tree: every Rust file
//! opens with a `//!` line; only the server crate knows HTTP (axum), only the registry knows
//! databases, only the binary uses anyhow and clap; every environment variable the code reads is
//! declared in `settings.rs`.

use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        let name = e.file_name().to_string_lossy().to_string();
        if p.is_dir() {
            if name != "target" && !name.starts_with('.') {
                rust_files(&p, out);
            }
        } else if name.ends_with(".rs") {
            out.push(p);
        }
    }
}

fn sources() -> Vec<PathBuf> {
    let mut files = Vec::new();
    // The fuzz targets live in their crates' `fuzz/` folders.
    rust_files(&root().join("crates"), &mut files);
    assert!(files.len() > 50, "found only {} source files", files.len());
    files
}

#[test]
fn every_source_file_opens_with_a_doc_line() {
    let missing: Vec<String> = sources()
        .into_iter()
        .filter(|p| {
            !std::fs::read_to_string(p)
                .unwrap()
                .trim_start()
                .starts_with("//!")
        })
        .map(|p| p.display().to_string())
        .collect();
    assert!(missing.is_empty(), "no `//!` line first: {missing:?}");
}

/// The normal (not dev) dependencies of each crate, by crate directory name.
fn dependencies() -> Vec<(String, Vec<String>)> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(root().join("crates")).unwrap().flatten() {
        let manifest = e.path().join("Cargo.toml");
        let Ok(text) = std::fs::read_to_string(&manifest) else {
            continue;
        };
        let doc: toml::Table = text.parse().unwrap();
        let deps = doc
            .get("dependencies")
            .and_then(|d| d.as_table())
            .map(|t| t.keys().cloned().collect())
            .unwrap_or_default();
        out.push((e.file_name().to_string_lossy().to_string(), deps));
    }
    assert!(out.len() >= 7);
    out
}

#[test]
fn each_outside_concern_lives_in_one_crate() {
    let rules: [(&str, &[&str]); 6] = [
        ("axum", &["mlship-server"]),
        ("tower-http", &["mlship-server"]),
        ("rusqlite", &["mlship-registry"]),
        ("postgres", &["mlship-registry"]),
        ("anyhow", &["mlship"]),
        ("clap", &["mlship"]),
    ];
    let mut broken = Vec::new();
    for (krate, deps) in dependencies() {
        for (dep, allowed) in rules {
            if deps.iter().any(|d| d == dep) && !allowed.contains(&krate.as_str()) {
                broken.push(format!("{krate} depends on {dep} (only {allowed:?} may)"));
            }
        }
    }
    assert!(broken.is_empty(), "{broken:#?}");
}

/// The unpickler knows no model library: the classes a file may name are its caller's table
/// (`mlship-formats`'s `classes.rs`), and it depends on no mlship crate.
#[test]
fn the_unpickler_names_no_model_library() {
    let mut files = Vec::new();
    rust_files(&root().join("crates/mlship-pickle/src"), &mut files);
    assert!(files.len() >= 5);
    let mut named = Vec::new();
    for p in files {
        let text = std::fs::read_to_string(&p).unwrap().to_lowercase();
        for word in ["sklearn", "scikit", "xgboost", "lightgbm", "mlship_"] {
            if text.contains(word) {
                named.push(format!("{} names {word}", p.display()));
            }
        }
    }
    assert!(named.is_empty(), "{named:#?}");
    let (_, deps) = dependencies()
        .into_iter()
        .find(|(k, _)| k == "mlship-pickle")
        .unwrap();
    let ours: Vec<&String> = deps.iter().filter(|d| d.starts_with("mlship")).collect();
    assert!(ours.is_empty(), "mlship-pickle depends on {ours:?}");
}

/// The formats mlship reads are listed once, in `mlship-formats`'s format table (`FORMATS`, and
/// the `READ` and `MODEL_ARG_HELP` texts made from it): no message or help writes its own list.
#[test]
fn the_formats_are_listed_once() {
    let mut lists = Vec::new();
    for p in sources() {
        if p.components().any(|c| c.as_os_str() == "tests") {
            continue;
        }
        let text = std::fs::read_to_string(&p).unwrap().to_lowercase();
        // What users read is in string literals (messages, help): the odd pieces between quotes.
        for line in text.lines() {
            for literal in line.split('"').skip(1).step_by(2) {
                for list in [
                    "pickle, joblib",
                    "joblib, skops",
                    "skops, xgboost",
                    "onnx, pmml",
                ] {
                    if literal.contains(list) {
                        lists.push(format!("{} lists formats: {literal}", p.display()));
                    }
                }
            }
        }
    }
    assert!(lists.is_empty(), "{lists:#?}");
}

#[test]
fn every_environment_variable_is_declared_in_settings() {
    let settings = std::fs::read_to_string(root().join("crates/mlship/src/settings.rs")).unwrap();
    let mut undeclared = Vec::new();
    for p in sources() {
        let text = std::fs::read_to_string(&p).unwrap();
        // Tests and benches read their own variables; the rule is about what mlship reads.
        if p.components()
            .any(|c| c.as_os_str() == "tests" || c.as_os_str() == "benches")
        {
            continue;
        }
        for call in ["env::var(\"", "env::var_os(\""] {
            for (i, _) in text.match_indices(call) {
                let rest = &text[i + call.len()..];
                let name = &rest[..rest.find('"').unwrap_or(0)];
                if !name.is_empty() && !settings.contains(&format!("`{name}`")) {
                    undeclared.push(format!("{name} (read in {})", p.display()));
                }
            }
        }
    }
    assert!(
        undeclared.is_empty(),
        "declare these in settings.rs's opening comment: {undeclared:#?}"
    );
}
