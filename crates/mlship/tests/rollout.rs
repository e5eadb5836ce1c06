//! `mlship rollout` end to end, under load on loopback: a good candidate advances through every
//! step to production with no failed request, a failing or slow one goes back at the first step
//! that sees it, replicas on one PostgreSQL registry move together, a restarted one resumes, and
//! bad plans are refused before anything changes.

mod common;

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use common::reg::{Reg, cmd, fails, json, run, sqlite};
use serde_json::Value as Json;

fn case(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../fixtures/corpus")
        .join(name)
}

/// `fraud`: version 1 a forest (production; it takes missing values), version 2 a logistic
/// regression on the same eight columns (it refuses them).
fn two_versions(h: &Reg) {
    for (file, alias) in [
        ("random_forest_classifier", Some("production")),
        ("pipeline_scaler_logreg", None),
    ] {
        let path = case(file).join("model.pkl");
        let mut args = vec!["models", "register", "fraud", path.to_str().unwrap()];
        if let Some(a) = alias {
            args.extend(["--alias", a]);
        }
        json(h, &args);
    }
}

fn serve(h: &Reg) -> (common::Reaped, String) {
    let (child, addr) = common::start(&mut cmd(h, &common::SERVE_FRAUD_PRODUCTION));
    (common::Reaped(child), addr)
}

/// One scoring request with a device header: status and body (probabilities, so the two
/// versions answer differently).
fn post(addr: &str, row: &str, device: &str) -> (u16, String) {
    let body = format!(
        "{{\"dataframe_split\": {{\"columns\": [\"f0\",\"f1\",\"f2\",\"f3\",\"f4\",\"f5\",\"f6\",\"f7\"], \"data\": [{row}]}}}}"
    );
    let (status, _, body) = common::exchange(
        addr,
        "POST",
        "/models/fraud/invocations?probabilities=true",
        &[
            ("Content-Type", "application/json"),
            ("X-Device-Id", device),
        ],
        body.as_bytes(),
    );
    (status, body)
}

const ROW: &str = "[0.5, -1.0, 2.0, 0.3, -0.7, 1.5, 0.0, 4.0]";
const NAN_ROW: &str = "[null, -1.0, 2.0, 0.3, -0.7, 1.5, 0.0, 4.0]";

/// Requests from two threads over two hundred devices until stopped: every (device, status, body).
struct Load {
    stop: Arc<AtomicBool>,
    threads: Vec<std::thread::JoinHandle<Vec<(String, u16, String)>>>,
}

impl Load {
    fn start(addrs: &[String], row: &'static str) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let threads = (0..2)
            .map(|t| {
                let (stop, addrs) = (stop.clone(), addrs.to_vec());
                std::thread::spawn(move || {
                    let mut seen = Vec::new();
                    let mut i = 0usize;
                    while !stop.load(Ordering::Relaxed) {
                        let device = format!("device-{}", (i * 2 + t) % 200);
                        let (st, body) = post(&addrs[i % addrs.len()], row, &device);
                        seen.push((device, st, body));
                        i += 1;
                    }
                    seen
                })
            })
            .collect();
        Load { stop, threads }
    }

    fn finish(self) -> Vec<(String, u16, String)> {
        self.stop.store(true, Ordering::Relaxed);
        self.threads
            .into_iter()
            .flat_map(|t| t.join().unwrap())
            .collect()
    }
}

/// `mlship rollout start fraud` of version 2 with these steps, interval and least requests per
/// step, and any further flags; the rollout as JSON.
fn start(h: &Reg, steps: &str, interval: &str, min_requests: &str, extra: &[&str]) -> Json {
    let mut args = vec![
        "rollout",
        "start",
        "fraud",
        "--candidate",
        "models:/fraud/2",
        "--steps",
        steps,
        "--interval",
        interval,
        "--min-requests",
        min_requests,
    ];
    args.extend(extra);
    json(h, &args)
}

/// `mlship rollout watch fraud`, looking every 100 ms for at most a minute.
fn watch(h: &Reg) -> std::process::Output {
    run(
        h,
        &[
            "rollout",
            "watch",
            "fraud",
            "--poll-ms",
            "100",
            "--timeout",
            "60s",
        ],
    )
}

fn status(h: &Reg) -> Json {
    json(h, &["rollout", "status", "fraud"])
}

fn candidate_weight(addr: &str) -> Option<String> {
    let (_, _, text) = common::exchange(addr, "GET", "/metrics", &[], b"");
    text.lines()
        .find(|l| l.starts_with("mlship_deployment_weight") && l.contains("role=\"candidate\""))
        .map(|l| l.rsplit(' ').next().unwrap_or("").to_string())
}

fn wait_for(what: &str, mut f: impl FnMut() -> bool) {
    for _ in 0..600 {
        if f() {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    panic!("timed out waiting for {what}");
}

on_both!(
    good,
    a_good_candidate_advances_to_production_with_no_failed_request_on_sqlite,
    a_good_candidate_advances_to_production_with_no_failed_request_on_postgres_and_s3
);

fn good(h: &Reg) {
    two_versions(h);
    let (_server, addr) = serve(h);
    let production = post(&addr, ROW, "probe").1;
    let load = Load::start(std::slice::from_ref(&addr), ROW);
    let started = start(
        h,
        "10,50,100",
        "300ms",
        "20",
        &[
            "--max-error-rate",
            "0.01",
            "--max-p99-ms",
            "5000",
            "--sticky-header",
            "X-Device-Id",
        ],
    );
    assert_eq!(
        (
            &started["state"],
            &started["weight"],
            &started["production"]
        ),
        (&Json::from("running"), &Json::from(10), &Json::from(1))
    );
    let watched = watch(h);
    let out = String::from_utf8_lossy(&watched.stdout).to_string();
    assert!(
        watched.status.success(),
        "{out}{}",
        String::from_utf8_lossy(&watched.stderr)
    );
    // `watch` prints the step it finds and each one after it: with steps of 300 ms, a busy
    // machine may start it after the first.
    for line in ["% of traffic to version 2", "promoted"] {
        assert!(out.contains(line), "{line:?} not in {out}");
    }
    // Production answers from the candidate now, and the split is gone.
    wait_for("the split to go", || candidate_weight(&addr).is_none());
    let seen = load.finish();
    let failed: Vec<_> = seen.iter().filter(|(_, st, _)| *st != 200).collect();
    assert!(
        failed.is_empty(),
        "{} failed requests: {:?}",
        failed.len(),
        &failed[..1]
    );
    let promoted = post(&addr, ROW, "probe").1;
    assert_ne!(promoted, production);
    assert!(seen.iter().any(|(_, _, b)| *b == production));
    // A device moved to the candidate once at most, and never back.
    for d in 0..200 {
        let device = format!("device-{d}");
        let answers: Vec<bool> = seen
            .iter()
            .filter(|(dv, _, _)| *dv == device)
            .map(|(_, _, b)| *b == promoted)
            .collect();
        let moves = answers.windows(2).filter(|w| w[0] != w[1]).count();
        assert!(
            moves <= 1 && answers.windows(2).all(|w| w[0] <= w[1]),
            "{device} switched versions {moves} times"
        );
    }
    let s = status(h);
    assert_eq!(s["state"], "promoted", "{s}");
    let history = json(h, &["models", "history", "fraud"]);
    let reasons: Vec<&str> = history
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["reason"].as_str().unwrap())
        .collect();
    for r in [
        "rollout started",
        "rollout step 2/3",
        "rollout step 3/3",
        "rollout promoted",
    ] {
        assert!(
            reasons.iter().any(|x| x.starts_with(r)),
            "{r:?} not in {reasons:?}"
        );
    }
    let last_production = history
        .as_array()
        .unwrap()
        .iter()
        .rfind(|e| e["alias"] == "production")
        .unwrap();
    assert_eq!(last_production["to"], 2);
}

/// A candidate that fails rows production takes, then one that is slow: each goes back at the
/// first step, production's requests never fail, and the history says why.
#[test]
fn a_failing_or_slow_candidate_goes_back_at_the_first_step() {
    let h = sqlite();
    two_versions(&h);
    let (_server, addr) = serve(&h);
    for (row, thresholds, why) in [
        (
            NAN_ROW,
            ["--max-error-rate", "0.05"],
            "error rate 1.000 > 0.05",
        ),
        (ROW, ["--max-p99-ms", "0.001"], "ms > 0.001 ms"),
    ] {
        start(&h, "20,100", "1h", "10", &thresholds);
        let load = Load::start(std::slice::from_ref(&addr), row);
        let watched = watch(&h);
        let err = String::from_utf8_lossy(&watched.stderr).to_string();
        assert_eq!(watched.status.code(), Some(1), "{err}");
        assert!(
            err.contains("ended without promotion") && err.contains(why),
            "{err}"
        );
        wait_for("the split to go", || candidate_weight(&addr).is_none());
        let seen = load.finish();
        let s = status(&h);
        assert_eq!(s["state"], "rolled_back", "{s}");
        assert!(
            s["reason"]
                .as_str()
                .unwrap()
                .contains("rolled back at step 1/2 (20%)"),
            "{s}"
        );
        assert_eq!(s["figures"]["production"]["errors"], 0, "{s}");
        assert!(
            s["figures"]["production"]["requests"].as_u64().unwrap() > 0,
            "{s}"
        );
        // Every failure was the candidate's, and few got through before it went back.
        let failed = seen.iter().filter(|(_, st, _)| *st != 200).count() as u64;
        assert!(
            failed <= s["figures"]["candidate"]["errors"].as_u64().unwrap(),
            "{s}"
        );
        for _ in 0..50 {
            assert_eq!(post(&addr, row, "after").0, 200);
        }
    }
    let history = json(&h, &["models", "history", "fraud"]);
    let last = history.as_array().unwrap().last().unwrap();
    assert_eq!(
        (&last["alias"], &last["to"]),
        (&Json::from("candidate"), &Json::Null)
    );
    assert!(
        last["reason"].as_str().unwrap().contains("ms > 0.001 ms"),
        "{last}"
    );
    let production = json(&h, &["models", "show", "fraud"]);
    assert_eq!(production["aliases"]["production"], 1, "{production}");
}

/// Two replicas on one PostgreSQL registry take each step together; a replica restarted mid-way
/// comes back at the current step; an abort sends both back to production.
#[test]
fn replicas_on_postgres_move_together_and_a_restarted_one_resumes() {
    let Some(h) = common::reg::postgres() else {
        return;
    };
    two_versions(&h);
    let (a, addr_a) = serve(&h);
    let (_b, addr_b) = serve(&h);
    start(&h, "20,60,100", "500ms", "10", &[]);
    let both = |w: &str| {
        let w = w.to_string();
        let (a, b) = (addr_a.clone(), addr_b.clone());
        move || {
            candidate_weight(&a).as_deref() == Some(&w)
                && candidate_weight(&b).as_deref() == Some(&w)
        }
    };
    wait_for("both replicas at 20%", both("0.2"));
    // Traffic to both: the step is judged on their counts together, then both move.
    let load = Load::start(&[addr_a.clone(), addr_b.clone()], ROW);
    wait_for("both replicas at 60%", both("0.6"));
    let seen = load.finish();
    assert!(seen.iter().all(|(_, st, _)| *st == 200));
    let s = status(&h);
    assert_eq!(
        (&s["state"], &s["step"]),
        (&Json::from("running"), &Json::from(2)),
        "{s}"
    );
    drop(a);
    let (_a, addr_a2) = serve(&h);
    wait_for("the restarted replica back at 60%", || {
        candidate_weight(&addr_a2).as_deref() == Some("0.6")
    });
    json(&h, &["rollout", "abort", "fraud", "--reason", "test over"]);
    wait_for("both back on production", || {
        candidate_weight(&addr_a2).is_none() && candidate_weight(&addr_b).is_none()
    });
}

/// Plans the rollout cannot carry out are refused with the reason, and nothing changes.
#[test]
fn bad_rollouts_are_refused_before_anything_changes() {
    let h = sqlite();
    let path = case("random_forest_classifier").join("model.pkl");
    json(&h, &["models", "register", "fraud", path.to_str().unwrap()]);
    json(&h, &["models", "register", "fraud", path.to_str().unwrap()]);
    json(&h, &["models", "register", "other", path.to_str().unwrap()]);
    fn start_args<'a>(extra: &[&'a str]) -> Vec<&'a str> {
        let mut a = vec!["rollout", "start", "fraud"];
        a.extend(extra);
        a
    }
    fails(
        &h,
        &start_args(&["--candidate", "2"]),
        &["no `production` alias"],
    );
    json(&h, &["models", "alias", "fraud", "production", "1"]);
    let before = json(&h, &["models", "history", "fraud"]);
    for (args, says) in [
        (&["--candidate", "models:/fraud/9"][..], "no version 9"),
        (
            &["--candidate", "models:/fraud@nope"][..],
            "no alias `nope`",
        ),
        (&["--candidate", "models:/other/1"][..], "not of `fraud`"),
        (&["--candidate", "1"][..], "production already"),
        (&["--candidate", "2", "--steps", "5,50"][..], "not 100"),
        (
            &["--candidate", "2", "--steps", "50,25,100"][..],
            "must rise",
        ),
        (
            &["--candidate", "2", "--max-error-rate", "2"][..],
            "fraction from 0 to 1",
        ),
        (
            &["--candidate", "2", "--max-p99-ms=-1"][..],
            "positive number",
        ),
        (
            &["--candidate", "2", "--interval", "soon"][..],
            "not a duration",
        ),
        (
            &["--candidate", "2", "--sticky-header", "X Device"][..],
            "header name",
        ),
    ] {
        fails(&h, &start_args(args), &[says]);
    }
    assert_eq!(json(&h, &["models", "history", "fraud"]), before);
    fails(&h, &["rollout", "status", "fraud"], &["has no rollout"]);
    fails(
        &h,
        &["rollout", "abort", "fraud"],
        &["no rollout of `fraud` is running"],
    );
    json(&h, &start_args(&["--candidate", "2"]));
    fails(
        &h,
        &start_args(&["--candidate", "2"]),
        &["is running already"],
    );
}

/// A `[[deployment]]` whose first route follows `production` joins the rollout in its place,
/// and comes back afterwards with the promoted version as its first route.
#[test]
fn a_deployment_following_production_joins_the_rollout() {
    let h = sqlite();
    two_versions(&h);
    let config = h.home.join("mlship.toml");
    std::fs::write(
        &config,
        "[[deployment]]\nname = \"fraud\"\nroutes = [ { model = \"models:/fraud@production\", weight = 100 } ]\n",
    )
    .unwrap();
    let (child, addr) = common::start(&mut cmd(
        &h,
        &[
            "serve",
            "--config",
            config.to_str().unwrap(),
            "--port",
            "0",
            "--reload-interval-ms",
            "100",
        ],
    ));
    let _server = common::Reaped(child);
    let lines = |addr: &str| {
        let (_, _, text) = common::exchange(addr, "GET", "/metrics", &[], b"");
        text.lines()
            .filter(|l| l.starts_with("mlship_deployment_weight"))
            .map(str::to_string)
            .collect::<Vec<_>>()
    };
    assert_eq!(
        lines(&addr),
        [r#"mlship_deployment_weight{deployment="fraud",version="1",role="production"} 1"#]
    );
    start(&h, "50,100", "300ms", "5", &[]);
    wait_for("the deployment to split", || {
        candidate_weight(&addr).as_deref() == Some("0.5")
    });
    let load = Load::start(std::slice::from_ref(&addr), ROW);
    let watched = watch(&h);
    assert!(
        watched.status.success(),
        "{}",
        String::from_utf8_lossy(&watched.stderr)
    );
    wait_for("the deployment back with version 2 first", || {
        lines(&addr)
            == [r#"mlship_deployment_weight{deployment="fraud",version="2",role="production"} 1"#]
    });
    assert!(load.finish().iter().all(|(_, st, _)| *st == 200));
}
