//! What the end-to-end tests share: starting the real `mlship serve` on port 0, and a minimal
//! HTTP client to talk to it.
#![allow(dead_code)] // each test binary uses its own part

pub mod reg;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;

use serde_json::Value as Json;
use std::process::{Child, Command, Stdio};

/// Spawns `serve` (an `mlship serve … --port 0` command), reads the address it prints first, and
/// waits until it has loaded its models. Returns the child and `host:port`.
pub fn start(serve: &mut Command) -> (Child, String) {
    let (child, addr) = spawn(serve.stderr(Stdio::null()));
    wait_ready(&addr);
    (child, addr)
}

/// A child process killed (and reaped) when dropped, so a failing test leaves no server behind.
pub struct Reaped(pub Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Spawns a server command that listens on port 0 and returns it with the address it printed
/// first (`listening on http://…` or `https://…`), without waiting for anything more.
pub fn spawn(server: &mut Command) -> (Child, String) {
    let mut child = server.stdout(Stdio::piped()).spawn().unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let addr = line
        .trim()
        .strip_prefix("listening on http://")
        .or_else(|| line.trim().strip_prefix("listening on https://"))
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .to_string();
    (child, addr)
}

/// `mlship serve` of `fraud` at its `production` alias, on port 0, following the registry every
/// 100 ms (aliases and rollouts).
pub const SERVE_FRAUD_PRODUCTION: [&str; 6] = [
    "serve",
    "fraud=models:/fraud@production",
    "--port",
    "0",
    "--reload-interval-ms",
    "100",
];

/// One-row scoring requests for `fraud` (the corpus forest's columns) sent one after another
/// until stopped: the count of answers that were 200 and of those that were not.
pub struct ScoringLoad {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: std::thread::JoinHandle<(usize, usize)>,
}

impl ScoringLoad {
    pub fn start(addr: &str) -> ScoringLoad {
        use std::sync::atomic::{AtomicBool, Ordering};
        let stop = std::sync::Arc::new(AtomicBool::new(false));
        let (flag, addr) = (stop.clone(), addr.to_string());
        let thread = std::thread::spawn(move || {
            let (mut ok, mut failed) = (0, 0);
            while !flag.load(Ordering::Relaxed) {
                let (st, _) = http(
                    &addr,
                    "POST",
                    "/models/fraud/invocations",
                    "application/json",
                    forest_row().as_bytes(),
                );
                if st == 200 {
                    ok += 1;
                } else {
                    failed += 1;
                }
            }
            (ok, failed)
        });
        ScoringLoad { stop, thread }
    }

    /// Stops the load: (succeeded, failed).
    pub fn finish(self) -> (usize, usize) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        self.thread.join().unwrap()
    }
}

/// A one-row MLflow request for the corpus regression forest (eight float columns f0..f7).
pub fn forest_row() -> String {
    let cols: Vec<String> = (0..8).map(|i| format!("\"f{i}\"")).collect();
    format!(
        "{{\"dataframe_split\": {{\"columns\": [{}], \"data\": [[{}]]}}}}",
        cols.join(","),
        ["0.5"; 8].join(",")
    )
}

/// A fresh metadata store and artifact prefix for scale-out: a new database on the PostgreSQL
/// server `MLSHIP_TEST_POSTGRES` names and a new prefix in the bucket `MLSHIP_TEST_S3` names
/// (`.ci/run` starts both). Without them the caller skips, except in CI, where they must be set.
pub fn scale_out() -> Option<(String, String)> {
    let (Ok(base), Ok(bucket)) = (
        std::env::var("MLSHIP_TEST_POSTGRES"),
        std::env::var("MLSHIP_TEST_S3"),
    ) else {
        assert!(
            std::env::var_os("CI").is_none(),
            "MLSHIP_TEST_POSTGRES and MLSHIP_TEST_S3 must be set in CI (.ci/run starts the servers)"
        );
        eprintln!(
            "skipped: set MLSHIP_TEST_POSTGRES and MLSHIP_TEST_S3 to run the PostgreSQL and S3 variant"
        );
        return None;
    };
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    let db = format!(
        "mlship_t_{}_{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    );
    let mut c =
        postgres::Client::connect(&base, postgres::NoTls).expect("connect to MLSHIP_TEST_POSTGRES");
    c.batch_execute(&format!("CREATE DATABASE {db}")).unwrap();
    let (prefix, _) = base.rsplit_once('/').unwrap();
    Some((format!("{prefix}/{db}"), format!("{bucket}/{db}")))
}

/// Waits until the server has loaded its models (it answers 503 until then).
pub fn wait_ready(addr: &str) {
    for _ in 0..400 {
        if let Ok(mut c) = std::net::TcpStream::connect(addr) {
            let _ = c.write_all(
                b"GET /v2/health/ready HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
            );
            let mut r = String::new();
            let _ = c.read_to_string(&mut r);
            if r.starts_with("HTTP/1.1 200") {
                return;
            }
        }
        std::thread::sleep(std::time::Duration::from_millis(25));
    }
    panic!("the server at {addr} never became ready");
}

/// A minimal HTTP/1.1 exchange: status, and the body parsed as JSON (or as a string).
pub fn http(addr: &str, method: &str, path: &str, content_type: &str, body: &[u8]) -> (u16, Json) {
    let (status, _, body) = exchange(addr, method, path, &[("Content-Type", content_type)], body);
    (
        status,
        serde_json::from_str(&body).unwrap_or(Json::String(body)),
    )
}

/// Runs the real binary in `dir` (logs quiet), with extra environment variables.
pub fn mlship_in(
    dir: &std::path::Path,
    args: &[&str],
    envs: &[(&str, &std::ffi::OsStr)],
) -> std::process::Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_mlship"));
    c.args(args).current_dir(dir).env("RUST_LOG", "warn");
    for (k, v) in envs {
        c.env(k, v);
    }
    c.output().unwrap()
}

/// A finished command's stdout; the test fails, showing both streams, when it did not succeed.
pub fn stdout_ok(o: std::process::Output) -> String {
    String::from_utf8_lossy(&checked(o, "the command").stdout).to_string()
}

/// The output of a command that must have succeeded.
fn checked(out: std::process::Output, what: &str) -> std::process::Output {
    assert!(
        out.status.success(),
        "{what} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// A real peer's executable or folder named by the variable `var`, which `installer` (a `.ci`
/// script) sets; `None` outside CI, where the test then skips. In CI a missing one fails the test.
pub fn peer(var: &str, installer: &str) -> Option<String> {
    match std::env::var(var) {
        Ok(v) => Some(v),
        Err(_) => {
            assert!(
                std::env::var_os("CI").is_none(),
                "{var} must be set in CI ({installer} installs it)"
            );
            eprintln!("skipped: set {var} (see {installer})");
            None
        }
    }
}

/// The real `dvc` (`MLSHIP_TEST_DVC`, which .ci/dvc.sh installs), or `None` outside CI.
pub fn dvc_exe() -> Option<String> {
    peer("MLSHIP_TEST_DVC", ".ci/dvc.sh")
}

/// Runs the real `dvc` in `dir`; its stdout and stderr together, the test failing when it fails.
pub fn dvc(exe: &str, dir: &std::path::Path, args: &[&str]) -> String {
    let o = Command::new(exe)
        .args(args)
        .current_dir(dir)
        .env("DVC_NO_ANALYTICS", "1")
        .env("DVC_NO_UPDATER", "1")
        .output()
        .unwrap();
    combined_ok(o, &format!("dvc {args:?}"))
}

/// A finished command's stdout and stderr together; the test fails, showing them, when it failed.
pub fn combined_ok(o: std::process::Output, what: &str) -> String {
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(o.status.success(), "{what}: {text}");
    text
}

/// POSTs a JSON body: status and the answer as JSON.
pub fn post_json(addr: &str, path: &str, body: &Json) -> (u16, Json) {
    http(
        addr,
        "POST",
        path,
        "application/json",
        body.to_string().as_bytes(),
    )
}

/// GETs a path: status and the answer as JSON.
pub fn get_json(addr: &str, path: &str) -> (u16, Json) {
    http(addr, "GET", path, "application/json", b"")
}

/// One HTTP/1.1 exchange with the given headers: status, the answer's head (lower-cased) and body.
pub fn exchange(
    addr: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> (u16, String, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\n");
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str(&format!(
        "Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    ));
    s.write_all(head.as_bytes()).unwrap();
    let _ = s.write_all(body);
    let mut resp = Vec::new();
    let _ = s.read_to_end(&mut resp);
    let text = String::from_utf8_lossy(&resp).to_string();
    let status: u16 = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let (headers, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let headers = headers.to_ascii_lowercase();
    let body = if headers.contains("transfer-encoding: chunked") {
        dechunk(body)
    } else {
        body.to_string()
    };
    (status, headers, body)
}

fn dechunk(b: &str) -> String {
    let mut out = String::new();
    let mut rest = b;
    while let Some((size, tail)) = rest.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 {
            break;
        }
        out.push_str(&tail[..n]);
        rest = &tail[n + 2..];
    }
    out
}

/// A port free a moment ago.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The password of the users `mlship` and `AWS` in `tests/deploy/htpasswd`.
pub const PASSWORD: &str = "mlship-test-password";

/// Debian's docker-registry on a free loopback port, with htpasswd authentication.
pub struct Registry {
    child: Child,
    pub addr: String,
    _dir: tempfile::TempDir,
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn registry() -> Registry {
    let dir = tempfile::tempdir().unwrap();
    let addr = format!("127.0.0.1:{}", free_port());
    let htpasswd = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/deploy/htpasswd");
    let config = format!(
        "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: {addr}\nauth:\n  htpasswd:\n    realm: mlship-test\n    path: {}\n",
        dir.path().join("data").display(),
        htpasswd.display()
    );
    let config_path = dir.path().join("config.yml");
    std::fs::write(&config_path, config).unwrap();
    let child = Command::new("docker-registry")
        .arg("serve")
        .arg(&config_path)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    for _ in 0..200 {
        if std::net::TcpStream::connect(&addr).is_ok() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(25));
    }
    Registry {
        child,
        addr,
        _dir: dir,
    }
}

/// Runs a command that must succeed; its output, or a panic showing what it printed.
pub fn ok(c: &mut Command) -> std::process::Output {
    let out = c.output().unwrap();
    checked(out, &format!("{c:?}"))
}
