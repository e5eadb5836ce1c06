//! `mlship run` against the real `dvc` (3.67): after `mlship run`, `dvc status` is clean and
//! `dvc repro` runs nothing, and the other way round; a changed param makes both rerun the same
//! stages; changing it back restores from the run cache in both, each from the other's entries.
//! Then bad pipelines are refused before anything runs, and a failing stage stops the run.

use std::path::Path;
use std::process::{Command, Output};

mod common;

use common::{dvc, stdout_ok as ok};

fn mlship(dir: &Path, args: &[&str]) -> Output {
    common::mlship_in(dir, args, &[])
}

const PIPELINE: &str = r#"stages:
  prepare:
    cmd: mkdir -p data/prepared && head -n 4 data/raw.csv > data/prepared/train.csv && tail -n 2 data/raw.csv > data/prepared/test.csv
    deps:
    - data/raw.csv
    params:
    - prepare.split
    - prepare.seed
    outs:
    - data/prepared
  train:
    cmd: grep lr params.yaml > model.json && cat data/prepared/train.csv >> model.json
    deps:
    - data/prepared
    params:
    - train
    outs:
    - model.json
  evaluate:
    cmd:
    - wc -l < data/prepared/test.csv > metrics.json
    - mkdir -p plots && cp model.json plots/pred.csv
    deps:
    - model.json
    - data/prepared/test.csv
    params:
    - evaluate.threshold
    metrics:
    - metrics.json:
        cache: false
    plots:
    - plots/pred.csv
"#;

fn project(root: &Path) {
    std::fs::create_dir_all(root.join("data")).unwrap();
    let o = Command::new("git")
        .args(["init", "-q"])
        .current_dir(root)
        .output()
        .unwrap();
    assert!(o.status.success());
    std::fs::write(root.join("data/raw.csv"), "x,y\n1,2\n3,4\n5,6\n7,8\n9,10\n").unwrap();
    std::fs::write(
        root.join("params.yaml"),
        "prepare:\n  split: 0.8\n  seed: 42\ntrain:\n  lr: 0.1\n  epochs: 10\nevaluate:\n  threshold: 1e-05\n",
    )
    .unwrap();
    std::fs::write(root.join("dvc.yaml"), PIPELINE).unwrap();
}

fn set_lr(root: &Path, lr: &str) {
    let p = root.join("params.yaml");
    let text = std::fs::read_to_string(&p).unwrap();
    let line = text
        .lines()
        .find(|l| l.trim_start().starts_with("lr:"))
        .unwrap()
        .to_string();
    std::fs::write(&p, text.replace(&line, &format!("  lr: {lr}"))).unwrap();
}

fn ran(out: &str) -> Vec<&str> {
    out.lines()
        .filter_map(|l| l.strip_prefix("Running stage '"))
        .map(|l| l.trim_end_matches("':"))
        .collect()
}

fn restored(out: &str) -> Vec<&str> {
    out.lines()
        .filter_map(|l| l.strip_prefix("Stage '"))
        .filter_map(|l| l.strip_suffix("' is cached - skipping run, checking out outputs"))
        .collect()
}

#[test]
fn mlship_run_and_dvc_repro_agree_both_ways() {
    let Some(exe) = common::dvc_exe() else {
        return;
    };
    let t = tempfile::tempdir().unwrap();
    let a = t.path().join("a");
    project(&a);
    ok(mlship(&a, &["data", "init"]));
    let first = ok(mlship(&a, &["run"]));
    assert_eq!(ran(&first), ["prepare", "train", "evaluate"], "{first}");
    let lock = std::fs::read_to_string(a.join("dvc.lock")).unwrap();
    assert!(
        lock.starts_with("schema: '2.0'\nstages:\n  prepare:\n"),
        "{lock}"
    );
    assert!(lock.contains("evaluate.threshold: 1e-05"), "{lock}");
    assert!(dvc(&exe, &a, &["status"]).contains("Data and pipelines are up to date."));
    let again = dvc(&exe, &a, &["repro"]);
    assert!(!again.contains("Running stage"), "{again}");
    let unchanged = ok(mlship(&a, &["run"]));
    assert!(
        ran(&unchanged).is_empty() && unchanged.contains("up to date"),
        "{unchanged}"
    );
    let before = std::fs::metadata(a.join("dvc.lock"))
        .unwrap()
        .modified()
        .unwrap();
    ok(mlship(&a, &["run"]));
    assert_eq!(
        std::fs::metadata(a.join("dvc.lock"))
            .unwrap()
            .modified()
            .unwrap(),
        before,
        "dvc.lock was rewritten with nothing changed"
    );

    // A changed param: both tools rerun train and evaluate.
    set_lr(&a, "0.05");
    let st = dvc(&exe, &a, &["status"]);
    assert!(st.contains("train") && !st.contains("prepare:"), "{st}");
    assert_eq!(ran(&ok(mlship(&a, &["run"]))), ["train", "evaluate"]);
    assert!(dvc(&exe, &a, &["status"]).contains("up to date"));
    // Back: dvc restores from the entries mlship wrote.
    set_lr(&a, "0.1");
    let back = dvc(&exe, &a, &["repro"]);
    assert_eq!(restored(&back), ["train", "evaluate"], "{back}");
    assert!(ran(&back).is_empty(), "{back}");
    assert!(ran(&ok(mlship(&a, &["run"]))).is_empty());
    // dvc runs a new value; mlship finds it in dvc's run cache later.
    set_lr(&a, "0.2");
    assert_eq!(ran(&dvc(&exe, &a, &["repro"])), ["train", "evaluate"]);
    let model_02 = std::fs::read(a.join("model.json")).unwrap();
    set_lr(&a, "0.1");
    assert_eq!(restored(&ok(mlship(&a, &["run"]))), ["train", "evaluate"]);
    set_lr(&a, "0.2");
    let from_dvc = ok(mlship(&a, &["run"]));
    assert_eq!(restored(&from_dvc), ["train", "evaluate"], "{from_dvc}");
    assert_eq!(std::fs::read(a.join("model.json")).unwrap(), model_02);
    assert!(dvc(&exe, &a, &["status"]).contains("up to date"));

    // A pipeline dvc ran first: mlship finds nothing to do.
    let b = t.path().join("b");
    project(&b);
    dvc(&exe, &b, &["init", "-q"]);
    dvc(&exe, &b, &["repro"]);
    let nothing = ok(mlship(&b, &["run"]));
    assert!(
        ran(&nothing).is_empty() && restored(&nothing).is_empty(),
        "{nothing}"
    );
    // Outputs and lock gone: mlship restores every stage from dvc's run cache, running nothing.
    std::fs::remove_file(b.join("dvc.lock")).unwrap();
    std::fs::remove_dir_all(b.join("data/prepared")).unwrap();
    std::fs::remove_file(b.join("model.json")).unwrap();
    let all = ok(mlship(&b, &["run"]));
    assert_eq!(restored(&all), ["prepare", "train", "evaluate"], "{all}");
    assert!(dvc(&exe, &b, &["status"]).contains("up to date"));
    let dot = ok(mlship(&b, &["dag", "--dot"]));
    assert!(dot.contains("\"prepare\" -> \"train\";"), "{dot}");
}

fn fails(dir: &Path, args: &[&str], needles: &[&str]) {
    let o = mlship(dir, args);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{args:?}: {err}");
    for n in needles {
        assert!(err.contains(n), "{args:?}: {err} lacks {n}");
    }
}

#[test]
fn bad_pipelines_are_refused_before_anything_runs_and_a_failing_stage_stops() {
    let t = tempfile::tempdir().unwrap();
    let a = t.path().join("a");
    project(&a);
    ok(mlship(&a, &["data", "init"]));
    let good = std::fs::read_to_string(a.join("dvc.yaml")).unwrap();
    std::fs::write(
        a.join("dvc.yaml"),
        good.replace("- data/raw.csv", "- data/missing.csv"),
    )
    .unwrap();
    fails(&a, &["run"], &["prepare", "data/missing.csv"]);
    assert!(
        !a.join("data/prepared").exists(),
        "a stage ran before the check"
    );
    std::fs::write(
        a.join("dvc.yaml"),
        good.replace("- prepare.seed", "- prepare.nope"),
    )
    .unwrap();
    fails(&a, &["run"], &["prepare", "prepare.nope"]);
    std::fs::write(
        a.join("dvc.yaml"),
        good.replace("- data/raw.csv", "- model.json"),
    )
    .unwrap();
    fails(&a, &["run"], &["cycle"]);
    std::fs::write(
        a.join("dvc.yaml"),
        good.replace("grep lr params.yaml", "exit 3; grep lr params.yaml"),
    )
    .unwrap();
    fails(&a, &["run"], &["train", "exit code 3"]);
    assert!(
        a.join("data/prepared/train.csv").exists(),
        "the earlier stage's output stays"
    );
    let lock = std::fs::read_to_string(a.join("dvc.lock")).unwrap();
    assert!(
        lock.contains("prepare:") && !lock.contains("train:"),
        "{lock}"
    );
    fails(&a, &["run", "nope"], &["no stage named 'nope'"]);
}

/// The exports pass their engines' checks: Airflow imports the DAG and `airflow dags test` runs
/// the pipeline through `mlship run STAGE`; the Argo CronWorkflow validates against Argo's models
/// with no unknown key; the CronJob passes `kubernetes-validate --strict`. Without an image or a
/// schedule, the export says what is missing.
#[test]
fn the_exports_pass_their_engines_checks() {
    let (Ok(python), Ok(kv)) = (
        std::env::var("MLSHIP_TEST_AIRFLOW_PYTHON"),
        std::env::var("MLSHIP_TEST_KUBERNETES_VALIDATE"),
    ) else {
        assert!(
            std::env::var_os("CI").is_none(),
            "MLSHIP_TEST_AIRFLOW_PYTHON and MLSHIP_TEST_KUBERNETES_VALIDATE must be set in CI (.ci/pipeline-tools.sh, .ci/containers.sh)"
        );
        eprintln!(
            "skipped: set MLSHIP_TEST_AIRFLOW_PYTHON (Airflow 3 and Hera) and MLSHIP_TEST_KUBERNETES_VALIDATE"
        );
        return;
    };
    let t = tempfile::tempdir().unwrap();
    let a = t.path().join("retrain");
    project(&a);
    ok(mlship(&a, &["data", "init"]));
    let out = t.path().join("out");
    let o = out.to_str().unwrap();
    let cron = "0 3 * * *";
    for target in ["argo", "kubernetes"] {
        let refused = mlship(
            &a,
            &[
                "pipeline", "export", "--target", target, "-o", o, "--cron", cron,
            ],
        );
        assert_eq!(refused.status.code(), Some(1));
        assert!(String::from_utf8_lossy(&refused.stderr).contains("--image"));
        let refused = mlship(
            &a,
            &[
                "pipeline", "export", "--target", target, "-o", o, "--image", "x:1",
            ],
        );
        assert!(String::from_utf8_lossy(&refused.stderr).contains("--cron"));
    }
    ok(mlship(
        &a,
        &[
            "pipeline", "export", "--target", "airflow", "-o", o, "--cron", cron,
        ],
    ));
    ok(mlship(
        &a,
        &[
            "pipeline",
            "export",
            "--target",
            "argo",
            "-o",
            o,
            "--cron",
            cron,
            "--image",
            "registry.example/retrain:1",
            "--timezone",
            "Europe/Lisbon",
        ],
    ));
    ok(mlship(
        &a,
        &[
            "pipeline",
            "export",
            "--target",
            "kubernetes",
            "-o",
            o,
            "--cron",
            cron,
            "--image",
            "registry.example/retrain:1",
        ],
    ));

    let scripts = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/pipeline");
    let home = t.path().join("airflow");
    std::fs::create_dir_all(&home).unwrap();
    // Airflow's Python and its `airflow` command, both with a scratch home and the exported DAG.
    let airflow_bin = Path::new(&python).parent().unwrap().join("airflow");
    let with_airflow = |program: &Path, args: &[&str]| {
        let o = Command::new(program)
            .args(args)
            .env("AIRFLOW_HOME", &home)
            .env("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
            .env("AIRFLOW__CORE__DAGS_FOLDER", out.join("dags"))
            .env("MLSHIP_BIN", env!("CARGO_BIN_EXE_mlship"))
            .env("MLSHIP_PROJECT", &a)
            .output()
            .unwrap();
        common::combined_ok(o, &format!("{} {args:?}", program.display()))
    };
    let airflow = |args: &[&str]| with_airflow(Path::new(&python), args);
    let run = |args: &[&str]| with_airflow(&airflow_bin, args);
    let dags = airflow(&[
        scripts.join("check_dags.py").to_str().unwrap(),
        out.join("dags").to_str().unwrap(),
    ]);
    assert!(
        dags.contains("retrain ['evaluate', 'prepare', 'train']"),
        "{dags}"
    );
    assert!(
        dags.contains("evaluate after ['prepare', 'train']"),
        "{dags}"
    );
    run(&["db", "migrate"]);
    let test = run(&["dags", "test", "retrain", "2026-01-02"]);
    assert!(
        test.contains("Running stage 'prepare'") && test.contains("Running stage 'evaluate'"),
        "{test}"
    );
    let lock = std::fs::read_to_string(a.join("dvc.lock")).unwrap();
    assert!(
        lock.contains("  evaluate:"),
        "Airflow's run left no lock: {lock}"
    );
    assert!(ok(mlship(&a, &["run"])).contains("up to date"));

    let argo = Command::new(&python)
        .arg(scripts.join("check_argo.py"))
        .arg(out.join("cronworkflow.yaml"))
        .output()
        .unwrap();
    assert!(
        argo.status.success(),
        "{}",
        String::from_utf8_lossy(&argo.stdout)
    );
    // The check is strict: a misspelt key fails it.
    let text = std::fs::read_to_string(out.join("cronworkflow.yaml")).unwrap();
    std::fs::write(
        out.join("typo.yaml"),
        text.replacen("template: stage", "templat: stage", 1),
    )
    .unwrap();
    let typo = Command::new(&python)
        .arg(scripts.join("check_argo.py"))
        .arg(out.join("typo.yaml"))
        .output()
        .unwrap();
    assert!(!typo.status.success(), "the Argo check let a typo through");
    let k = Command::new(&kv)
        .args(["--strict"])
        .arg(out.join("cronjob.yaml"))
        .output()
        .unwrap();
    assert!(
        k.status.success(),
        "{}{}",
        String::from_utf8_lossy(&k.stdout),
        String::from_utf8_lossy(&k.stderr)
    );
}

/// `metrics show`, `metrics diff` and `params diff` against the last commit.
#[test]
fn metrics_and_params_compare_with_a_git_revision() {
    let t = tempfile::tempdir().unwrap();
    let a = t.path().join("a");
    std::fs::create_dir_all(&a).unwrap();
    let git = |args: &[&str]| {
        let o = Command::new("git")
            .args(["-c", "user.email=t@example.com", "-c", "user.name=t"])
            .args(args)
            .current_dir(&a)
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    };
    git(&["init", "-q"]);
    std::fs::write(a.join("params.yaml"), "train:\n  lr: 0.1\n  epochs: 10\n").unwrap();
    std::fs::write(
        a.join("dvc.yaml"),
        "stages:\n  train:\n    cmd: 'grep ''lr:'' params.yaml | sed ''s/.*lr: /{\"acc\": /; s/$/, \"n\": 3}/'' > metrics.json'\n    params:\n    - train.lr\n    metrics:\n    - metrics.json:\n        cache: false\n",
    )
    .unwrap();
    ok(mlship(&a, &["data", "init", "--no-scm"]));
    ok(mlship(&a, &["run"]));
    let shown = ok(mlship(&a, &["metrics", "show"]));
    assert!(
        shown.contains("metrics.json\tacc\t0.1") && shown.contains("metrics.json\tn\t3"),
        "{shown}"
    );
    git(&["add", "-A"]);
    git(&["commit", "-qm", "first"]);
    set_lr(&a, "0.25");
    ok(mlship(&a, &["run"]));
    let params = ok(mlship(&a, &["params", "diff"]));
    assert!(
        params.contains("params.yaml\ttrain.lr\t0.1\t0.25"),
        "{params}"
    );
    assert!(
        !params.contains("epochs"),
        "an unchanged param is listed: {params}"
    );
    let metrics = ok(mlship(&a, &["metrics", "diff", "HEAD"]));
    assert!(
        metrics.contains("metrics.json\tacc\t0.1\t0.25\t0.15"),
        "{metrics}"
    );
    let as_json: serde_json::Value =
        serde_json::from_str(&ok(mlship(&a, &["metrics", "diff", "--json"]))).unwrap();
    assert_eq!(as_json[0]["new"], 0.25);
}

/// `mlship run --track`: every stage that ran is an MLflow run on the tracking server, with the
/// params it read, its metrics, its command and its deps as datasets whose digest is the DVC md5.
#[test]
fn stage_runs_are_logged_to_the_tracking_server() {
    let t = tempfile::tempdir().unwrap();
    let (child, addr) = common::spawn(
        Command::new(env!("CARGO_BIN_EXE_mlship"))
            .args(["server", "--port", "0"])
            .env("MLSHIP_HOME", t.path().join("home"))
            .env("RUST_LOG", "warn"),
    );
    struct Kill(std::process::Child);
    impl Drop for Kill {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let _server = Kill(child);
    let a = t.path().join("shop");
    project(&a);
    std::fs::write(
        a.join("dvc.yaml"),
        PIPELINE.replace(
            "wc -l < data/prepared/test.csv > metrics.json",
            "'printf ''{\"rows\": %s}'' $(wc -l < data/prepared/test.csv) > metrics.json'",
        ),
    )
    .unwrap();
    ok(mlship(&a, &["data", "init"]));
    let out = ok(mlship(&a, &["run", "--track", &format!("http://{addr}")]));
    assert_eq!(out.matches("Logged stage").count(), 3, "{out}");
    let (_, exp) = common::get_json(
        &addr,
        "/api/2.0/mlflow/experiments/get-by-name?experiment_name=pipeline%20shop",
    );
    let id = exp["experiment"]["experiment_id"]
        .as_str()
        .unwrap()
        .to_string();
    let (_, found) = common::post_json(
        &addr,
        "/api/2.0/mlflow/runs/search",
        &serde_json::json!({"experiment_ids": [id]}),
    );
    let runs = found["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 3);
    let by_name = |n: &str| {
        runs.iter()
            .find(|r| r["info"]["run_name"] == n)
            .unwrap_or_else(|| panic!("no run {n}"))
            .clone()
    };
    let train = by_name("train");
    let params = train["data"]["params"].to_string();
    assert!(
        params.contains(r#"{"key":"train.lr","value":"0.1"}"#),
        "{params}"
    );
    assert_eq!(train["info"]["status"], "FINISHED");
    let evaluate = by_name("evaluate");
    assert_eq!(evaluate["data"]["metrics"][0]["key"], "rows");
    assert_eq!(evaluate["data"]["metrics"][0]["value"], 2.0);
    let prepare = by_name("prepare");
    let raw_md5 = mlship_data::objects::md5_hex(&std::fs::read(a.join("data/raw.csv")).unwrap());
    let input = &prepare["inputs"]["dataset_inputs"][0]["dataset"];
    assert_eq!(
        (input["name"].as_str(), input["digest"].as_str()),
        (Some("data/raw.csv"), Some(raw_md5.as_str()))
    );
    assert_eq!(input["source_type"], "dvc");
    // A server that cannot be reached stops the run before any stage runs.
    let refused = mlship(&a, &["run", "--force", "--track", "http://127.0.0.1:9"]);
    assert_eq!(refused.status.code(), Some(1));
}

const GENERATED: &str = r#"vars:
  - prefix: out
stages:
  build:
    foreach: [us, uk]
    do:
      cmd: echo ${item} > ${prefix}-${item}.txt
      deps: [params.yaml]
      outs:
      - ${prefix}-${item}.txt
  train:
    foreach: ${models}
    do:
      cmd: echo ${key} ${item} ${lr} > model-${key}.txt
      deps: [params.yaml]
      params:
      - lr
      outs:
      - model-${key}.txt
  grid:
    matrix:
      a: [1, 2]
      b: [x, y]
    cmd: echo ${item.a} ${item.b} > grid-${item.a}-${item.b}.txt
    outs:
    - grid-${item.a}-${item.b}.txt
  list:
    foreach:
    - {n: 1}
    - {n: 2}
    do:
      cmd: echo ${item.n} > list-${item.n}.txt
      outs:
      - list-${item.n}.txt
"#;

/// `foreach` (lists, mappings, lists of mappings), `matrix`, `vars` and params.yaml in `${…}`:
/// the stages DVC generates, under DVC's names, both ways.
#[test]
fn generated_stages_match_dvcs() {
    let Some(exe) = common::dvc_exe() else {
        return;
    };
    let t = tempfile::tempdir().unwrap();
    for (first_dvc, dir) in [(false, t.path().join("m")), (true, t.path().join("d"))] {
        std::fs::create_dir_all(&dir).unwrap();
        let o = Command::new("git")
            .args(["init", "-q"])
            .current_dir(&dir)
            .output()
            .unwrap();
        assert!(o.status.success());
        std::fs::write(
            dir.join("params.yaml"),
            "models:\n  small: 1\n  large: 2\nlr: 0.1\n",
        )
        .unwrap();
        std::fs::write(dir.join("dvc.yaml"), GENERATED).unwrap();
        if first_dvc {
            dvc(&exe, &dir, &["init", "-q"]);
            dvc(&exe, &dir, &["repro"]);
            let ours = ok(mlship(&dir, &["run"]));
            assert!(ran(&ours).is_empty(), "{ours}");
        } else {
            ok(mlship(&dir, &["data", "init"]));
            let ours = ok(mlship(&dir, &["run"]));
            assert_eq!(ran(&ours).len(), 10, "{ours}");
            assert!(
                ours.contains("Running stage 'grid@2-x'")
                    && ours.contains("Running stage 'train@large'")
                    && ours.contains("Running stage 'list@1'"),
                "{ours}"
            );
            assert!(dvc(&exe, &dir, &["status"]).contains("up to date"));
            assert!(!dvc(&exe, &dir, &["repro"]).contains("Running stage"));
        }
        assert_eq!(
            std::fs::read_to_string(dir.join("model-large.txt")).unwrap(),
            "large 2 0.1\n"
        );
        let p = dir.join("params.yaml");
        let text = std::fs::read_to_string(&p).unwrap();
        std::fs::write(&p, text.replace("lr: 0.1", "lr: 0.2")).unwrap();
        let rerun = ok(mlship(&dir, &["run"]));
        assert_eq!(
            ran(&rerun),
            ["build@us", "build@uk", "train@small", "train@large"],
            "{rerun}"
        );
        assert!(dvc(&exe, &dir, &["status"]).contains("up to date"));
    }
    // A template that does not resolve is refused, naming the stage.
    let bad = t.path().join("bad");
    std::fs::create_dir_all(&bad).unwrap();
    std::fs::write(
        bad.join("dvc.yaml"),
        "stages:\n  x:\n    cmd: echo ${nope}\n",
    )
    .unwrap();
    ok(mlship(&bad, &["data", "init", "--no-scm"]));
    let o = mlship(&bad, &["run"]);
    assert!(String::from_utf8_lossy(&o.stderr).contains("stage 'x': ${nope} does not resolve"));
}

/// An export takes its schedule from mlship.toml: the `[[schedule]]` named with --schedule, or
/// else the one that runs the pipeline; --cron still wins, and an unknown name is refused.
#[test]
fn exports_take_their_schedule_from_mlship_toml() {
    let t = tempfile::tempdir().unwrap();
    let a = t.path().join("retrain");
    project(&a);
    ok(mlship(&a, &["data", "init"]));
    std::fs::write(
        a.join("mlship.toml"),
        "[[schedule]]\nname = \"retrain\"\ncron = \"15 4 * * *\"\ntimezone = \"Europe/Lisbon\"\ncommand = [\"mlship\", \"run\"]\n\n[[schedule]]\nname = \"report\"\ncron = \"0 9 * * 1\"\ncommand = [\"make\", \"report\"]\n",
    )
    .unwrap();
    let out = t.path().join("out");
    let o = out.to_str().unwrap();
    let export = |args: &[&str]| {
        let mut all = vec![
            "pipeline",
            "export",
            "--target",
            "kubernetes",
            "-o",
            o,
            "--image",
            "x:1",
        ];
        all.extend(args);
        mlship(&a, &all)
    };
    let cronjob = |args: &[&str]| {
        ok(export(args));
        std::fs::read_to_string(out.join("cronjob.yaml")).unwrap()
    };
    let text = cronjob(&[]);
    assert!(
        text.contains("schedule: 15 4 * * *") && text.contains("timeZone: Europe/Lisbon"),
        "{text}"
    );
    let text = cronjob(&["--schedule", "report"]);
    assert!(text.contains("schedule: 0 9 * * 1"), "{text}");
    let text = cronjob(&["--cron", "5 5 * * *"]);
    assert!(text.contains("schedule: 5 5 * * *"), "{text}");
    let refused = export(&["--schedule", "nope"]);
    assert_eq!(refused.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("no [[schedule]] named `nope`"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );
}

/// A stage that registers the model it trained goes through the fidelity gate, and the version
/// records the pipeline's data (the md5 of the tracked input and of the stage's output, from
/// dvc.lock) and the commit; a model that fails the gate stops the run and registers nothing.
#[test]
fn a_registration_stage_records_the_pipelines_data_and_commit() {
    let t = tempfile::tempdir().unwrap();
    let root = t.path().join("repo");
    std::fs::create_dir_all(root.join("data")).unwrap();
    let case =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/corpus/pipeline_scaler_logreg");
    std::fs::copy(case.join("model.pkl"), root.join("data/source.pkl")).unwrap();
    std::fs::copy(case.join("input.csv"), root.join("input.csv")).unwrap();
    let exp: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(case.join("expected.json")).unwrap())
            .unwrap();
    let mut wrong = serde_json::json!({"predictions": exp["predictions"]});
    wrong["predictions"][0] = serde_json::json!(1 - exp["predictions"][0].as_i64().unwrap());
    std::fs::write(root.join("wrong.json"), wrong.to_string()).unwrap();
    let git = |args: &[&str]| {
        common::ok(
            Command::new("git")
                .args(["-c", "user.email=t@example.com", "-c", "user.name=t"])
                .args(args)
                .current_dir(&root),
        );
    };
    git(&["init", "-q"]);
    let home = t.path().join("home");
    let bin = Path::new(env!("CARGO_BIN_EXE_mlship"));
    let env = [
        ("MLSHIP_HOME", home.as_os_str()),
        (
            "PATH",
            &std::ffi::OsString::from(format!(
                "{}:{}",
                bin.parent().unwrap().display(),
                std::env::var("PATH").unwrap()
            )),
        ),
    ];
    let run = |args: &[&str]| common::mlship_in(&root, args, &env);
    common::stdout_ok(run(&["data", "init"]));
    common::stdout_ok(run(&["data", "add", "data/source.pkl"]));
    let stages = |expected: &str| {
        format!(
            "stages:\n  train:\n    cmd: cp data/source.pkl model.pkl\n    deps:\n    - data/source.pkl\n    outs:\n    - model.pkl\n  register:\n    cmd: mlship models register fraud model.pkl --input-example input.csv{expected}\n    deps:\n    - model.pkl\n    - input.csv\n"
        )
    };
    std::fs::write(root.join("dvc.yaml"), stages(" --expected wrong.json")).unwrap();
    git(&["add", "-A"]);
    git(&["commit", "-qm", "a model that fails the gate"]);
    let failed = run(&["run"]);
    assert_eq!(
        failed.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&failed.stderr)
    );
    assert_eq!(
        run(&["models", "show", "fraud"]).status.code(),
        Some(1),
        "nothing registered"
    );
    std::fs::write(root.join("dvc.yaml"), stages("")).unwrap();
    git(&["commit", "-qam", "the gate without expectations"]);
    common::stdout_ok(run(&["run"]));
    let shown: serde_json::Value = serde_json::from_str(&common::stdout_ok(run(&[
        "models", "show", "fraud", "--output", "json",
    ])))
    .unwrap();
    let v = &shown["versions"][0];
    let head = String::from_utf8(
        Command::new("git")
            .args(["rev-parse", "HEAD"])
            .current_dir(&root)
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
    assert_eq!(v["git_commit"], head.trim(), "{shown}");
    let md5 = |p: &str| {
        let text = std::fs::read_to_string(root.join(p)).unwrap();
        text.lines()
            .find_map(|l| {
                l.trim()
                    .strip_prefix("- md5: ")
                    .or_else(|| l.trim().strip_prefix("md5: "))
            })
            .unwrap()
            .to_string()
    };
    assert_eq!(
        v["data"]["data/source.pkl"],
        md5("data/source.pkl.dvc"),
        "{shown}"
    );
    assert_eq!(
        v["data"]["model.pkl"], v["data"]["data/source.pkl"],
        "{shown}"
    );
}
