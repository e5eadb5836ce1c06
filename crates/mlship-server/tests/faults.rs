//! A model that panics while scoring answers 500 in every protocol's shape, is counted in
//! `/metrics`, and leaves the model and the server working: the next request to it panics again
//! (and is answered again), and a good model beside it keeps answering, with and without the
//! batcher. A model that cannot score (an invalid model) is the server's fault too: 500, not 400.

mod common;

use std::io::{Read, Write};
use std::sync::Arc;

use common::http;

use mlship_model::{
    DType, Estimator, External, ExternalScorer, Field, Matrix, Model, ModelInfo, Output,
    Predictions, Signature, Task,
};
use mlship_server::{AppState, BatchConfig, Config, Served};

#[derive(Debug)]
enum Behaviour {
    Doubles,
    Panics,
    Invalid,
    /// Doubles, after a second.
    Slow,
}

#[derive(Debug)]
struct Scorer(Behaviour);

impl ExternalScorer for Scorer {
    fn n_features(&self) -> usize {
        1
    }

    fn score(&self, x: &Matrix) -> mlship_model::Result<Output> {
        match self.0 {
            Behaviour::Doubles => Ok(Output {
                predictions: Predictions::Values(x.iter_rows().map(|r| r[0] * 2.0).collect()),
                probabilities: None,
                classes: None,
                decision_function: None,
                distances: None,
                extra: Vec::new(),
            }),
            Behaviour::Slow => {
                std::thread::sleep(std::time::Duration::from_millis(1000));
                Scorer(Behaviour::Doubles).score(x)
            }
            Behaviour::Panics => panic!("index out of bounds in a test model"),
            Behaviour::Invalid => Err(mlship_model::Error::Invalid("a corrupt test model".into())),
        }
    }
}

fn served(name: &str, b: Behaviour) -> Served {
    let model = Model::new(
        Signature {
            inputs: vec![Field {
                name: "x".into(),
                dtype: DType::Float,
                nullable: false,
            }],
            named: true,
            task: Task::Regression,
            classes: None,
        },
        Vec::new(),
        Estimator::External(External(Arc::new(Scorer(b)))),
        ModelInfo {
            format: "test".into(),
            estimator: "test".into(),
            library: None,
            warnings: Vec::new(),
        },
    )
    .expect("a consistent test model");
    Served::new(name.into(), Some(1), None, Arc::new(model), name.into())
}

async fn with_server(batch: usize, checks: impl FnOnce(String) + Send + 'static) {
    let config = Config {
        batch: BatchConfig {
            max_batch_size: batch,
            ..BatchConfig::default()
        },
        ..Config::default()
    };
    with_config(config, checks).await;
}

async fn with_config(config: Config, checks: impl FnOnce(String) + Send + 'static) {
    let models = vec![
        served("good", Behaviour::Doubles),
        served("bad", Behaviour::Panics),
        served("corrupt", Behaviour::Invalid),
        served("slow", Behaviour::Slow),
    ];
    let state = Arc::new(AppState::new(models, config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(mlship_server::run(listener, state, async {
        let _ = rx.await;
    }));
    tokio::task::spawn_blocking(move || checks(addr))
        .await
        .unwrap();
    let _ = tx.send(());
    server.await.unwrap().unwrap();
}

fn every_protocol(addr: &str) {
    let mlflow = r#"{"dataframe_split": {"columns": ["x"], "data": [[1.5]]}}"#;
    let v1 = r#"{"instances": [{"x": 1.5}]}"#;
    let v2 = r#"{"inputs": [{"name": "x", "shape": [1], "datatype": "FP64", "data": [1.5]}]}"#;
    for round in 0..3 {
        let (st, _, body) = http(addr, "POST", "/models/bad/invocations", mlflow);
        assert_eq!(st, 500, "{body}");
        assert!(body.contains("\"error_code\":\"INTERNAL_ERROR\""), "{body}");
        assert!(
            !body.contains("index out of bounds"),
            "the cause stays in the log: {body}"
        );
        let (st, _, body) = http(addr, "POST", "/v1/models/bad:predict", v1);
        assert_eq!(st, 500, "{body}");
        assert!(body.contains("\"error\""), "{body}");
        let (st, _, body) = http(addr, "POST", "/v2/models/bad/infer", v2);
        assert_eq!(st, 500, "{body}");
        // The good model beside it answers, every round.
        let (st, _, body) = http(addr, "POST", "/models/good/invocations", mlflow);
        assert_eq!(st, 200, "round {round}: {body}");
        assert!(body.contains("3.0"), "{body}");
        let (st, _, body) = http(addr, "POST", "/v2/models/good/infer", v2);
        assert_eq!(st, 200, "{body}");
    }
    let (st, _, body) = http(addr, "POST", "/models/corrupt/invocations", mlflow);
    assert_eq!(st, 500, "an invalid model is the server's fault: {body}");
    // A client's mistake stays a 400.
    let (st, _, body) = http(
        addr,
        "POST",
        "/models/good/invocations",
        r#"{"dataframe_split": {"columns": ["y"], "data": [[1.5]]}}"#,
    );
    assert_eq!(st, 400, "{body}");
    let (_, _, metrics) = http(addr, "GET", "/metrics", "");
    assert!(
        metrics.contains("mlship_model_panics_total{model=\"bad\",version=\"1\"} 9"),
        "{metrics}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_model_answers_500_and_the_server_keeps_serving() {
    with_server(1, |addr| every_protocol(&addr)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_model_behind_the_batcher_does_not_stop_it() {
    with_server(8, |addr| every_protocol(&addr)).await;
}

/// A known route with a method it does not take is 405 with `Allow`; every answer carries a
/// request id, the client's own when it sent one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_methods_are_405_and_answers_carry_request_ids() {
    with_server(1, |addr| {
        let (st, head, _) = http(&addr, "DELETE", "/v2/models/good/infer", "");
        assert_eq!(st, 405, "{head}");
        assert!(head.to_ascii_lowercase().contains("allow: post"), "{head}");
        let (_, head, _) = http(&addr, "GET", "/v2/health/live", "");
        assert!(
            head.to_ascii_lowercase().contains("x-request-id: "),
            "{head}"
        );
        let mut c = std::net::TcpStream::connect(&addr).unwrap();
        c.write_all(
            b"GET /ping HTTP/1.1\r\nHost: x\r\nX-Request-Id: trace-42\r\nConnection: close\r\n\r\n",
        )
        .unwrap();
        let mut r = String::new();
        let _ = c.read_to_string(&mut r);
        assert!(
            r.to_ascii_lowercase().contains("x-request-id: trace-42"),
            "{r}"
        );
    })
    .await;
}

/// A body of `n` rows for the V2 route (512 rows and more are scored on the blocking pool).
fn rows(n: usize) -> String {
    let data = vec!["1.0"; n].join(",");
    format!(
        r#"{{"inputs": [{{"name": "x", "shape": [{n}], "datatype": "FP64", "data": [{data}]}}]}}"#
    )
}

/// Past the model's cap on requests in flight, the next request is answered 503 at once with
/// `Retry-After`; a request over the time limit is answered 503 too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn limits_answer_503_with_retry_after() {
    let config = Config {
        max_concurrency: 1,
        request_timeout: Some(std::time::Duration::from_millis(600)),
        ..Config::default()
    };
    with_config(config, |addr| {
        let body = rows(600);
        let slow = {
            let (addr, body) = (addr.clone(), body.clone());
            std::thread::spawn(move || http(&addr, "POST", "/v2/models/slow/infer", &body))
        };
        // Well inside the first request's second of scoring, well after it took the permit.
        std::thread::sleep(std::time::Duration::from_millis(250));
        let (st, head, body2) = http(&addr, "POST", "/v2/models/slow/infer", &body);
        assert_eq!(st, 503, "{body2}");
        assert!(
            head.to_ascii_lowercase().contains("retry-after: 1"),
            "{head}"
        );
        assert!(body2.contains("as many requests as it may"), "{body2}");
        let (st, head, body) = slow.join().unwrap();
        assert_eq!(st, 503, "the first one is over the time limit: {body}");
        assert!(body.contains("within 0.6 s"), "{body}");
        assert!(head.to_ascii_lowercase().contains("retry-after"), "{head}");
        // Other models are not held up by the slow one's cap.
        assert_eq!(
            http(&addr, "POST", "/v2/models/good/infer", &rows(3)).0,
            200
        );
    })
    .await;
}

/// A client that sends part of its headers and then nothing is disconnected after the header
/// timeout, while other clients are answered meanwhile.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_never_finishes_its_headers_is_disconnected() {
    with_server(1, |addr| {
        let started = std::time::Instant::now();
        let mut slow = std::net::TcpStream::connect(&addr).unwrap();
        slow.write_all(b"GET /ping HTTP/1.1\r\nHost: x\r\n")
            .unwrap();
        slow.set_read_timeout(Some(mlship_server::listen::HEADER_TIMEOUT * 2))
            .unwrap();
        assert_eq!(
            http(&addr, "GET", "/ping", "").0,
            200,
            "others are answered"
        );
        let mut rest = Vec::new();
        let read = slow.read_to_end(&mut rest);
        assert!(
            read.is_ok(),
            "closed by the server, not by our timeout: {read:?}"
        );
        let waited = started.elapsed();
        assert!(
            waited >= mlship_server::listen::HEADER_TIMEOUT
                && waited < mlship_server::listen::HEADER_TIMEOUT * 2,
            "{waited:?}"
        );
        let answer = String::from_utf8_lossy(&rest);
        assert!(
            answer.is_empty() || answer.starts_with("HTTP/1.1 408"),
            "{answer}"
        );
    })
    .await;
}

/// On shutdown the listener closes at once and a request in flight finishes with its answer;
/// the server returns only after it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_lets_requests_in_flight_finish() {
    let state = Arc::new(AppState::new(
        vec![served("slow", Behaviour::Slow)],
        Config::default(),
    ));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(mlship_server::run(listener, state, async {
        let _ = rx.await;
    }));
    let a = addr.clone();
    let in_flight =
        std::thread::spawn(move || http(&a, "POST", "/v2/models/slow/infer", &rows(600)));
    // Well after the request has reached the model, well before its second of scoring ends.
    tokio::time::sleep(std::time::Duration::from_millis(400)).await;
    let _ = tx.send(());
    let stopped = std::time::Instant::now();
    server.await.unwrap().unwrap();
    let (status, _, body) = in_flight.join().unwrap();
    assert_eq!(status, 200, "the request in flight is answered: {body}");
    assert!(
        stopped.elapsed() >= std::time::Duration::from_millis(200),
        "the server waited for it"
    );
    assert!(
        std::net::TcpStream::connect(&addr).is_err(),
        "the listener is closed"
    );
}
