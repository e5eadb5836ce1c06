//! A registry for a test on SQLite and a folder, or on PostgreSQL and S3, and the real binary
//! run against it.

use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

use serde_json::Value as Json;

/// Where a test's registry lives: a home folder, and the metadata store's URL.
pub struct Reg {
    pub _home: tempfile::TempDir,
    pub home: PathBuf,
    pub store: String,
    /// `MLSHIP_ARTIFACTS`; `None` for the folder under the home.
    pub artifacts: Option<String>,
}

/// A fresh registry on SQLite and a local folder (the defaults under the home folder).
pub fn sqlite() -> Reg {
    let d = tempfile::tempdir().unwrap();
    let store = format!("sqlite://{}", d.path().join("registry.db").display());
    Reg {
        home: d.path().to_path_buf(),
        _home: d,
        store,
        artifacts: None,
    }
}

/// A fresh registry for scale-out on PostgreSQL and S3 (`common::scale_out`).
pub fn postgres() -> Option<Reg> {
    let (store, artifacts) = super::scale_out()?;
    let d = tempfile::tempdir().unwrap();
    Some(Reg {
        home: d.path().to_path_buf(),
        _home: d,
        store,
        artifacts: Some(artifacts),
    })
}

/// Runs a scenario on SQLite and a folder, and on PostgreSQL and S3 when servers are configured.
#[macro_export]
macro_rules! on_both {
    ($scenario:ident, $sqlite:ident, $pg:ident) => {
        #[test]
        fn $sqlite() {
            $scenario(&common::reg::sqlite());
        }
        #[test]
        fn $pg() {
            if let Some(r) = common::reg::postgres() {
                $scenario(&r);
            }
        }
    };
}

pub fn cmd(reg: &Reg, args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_mlship"));
    c.args(args)
        .env("MLSHIP_HOME", &reg.home)
        .env("MLSHIP_STORE", &reg.store)
        .env("USER", "tester");
    match &reg.artifacts {
        Some(a) => c.env("MLSHIP_ARTIFACTS", a),
        None => c.env_remove("MLSHIP_ARTIFACTS"),
    };
    c.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    c
}

pub fn run(home: &Reg, args: &[&str]) -> Output {
    cmd(home, args).output().unwrap()
}

pub fn json(home: &Reg, args: &[&str]) -> Json {
    let mut a = args.to_vec();
    a.extend(["--output", "json"]);
    let o = run(home, &a);
    assert!(
        o.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    serde_json::from_slice(&o.stdout).unwrap()
}

pub fn fails(home: &Reg, args: &[&str], fragments: &[&str]) {
    let o = run(home, args);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{args:?}: {err}");
    assert!(err.starts_with("error: "), "{err}");
    for f in fragments {
        assert!(err.contains(f), "missing {f:?} in {err}");
    }
}
