//! What the end-to-end tests share: starting the real `mlship serve` on port 0.

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, Command, Stdio};

/// Spawns `serve` (an `mlship serve … --port 0` command), reads the address it prints first, and
/// waits until it has loaded its models. Returns the child and `host:port`.
pub fn start(serve: &mut Command) -> (Child, String) {
    let mut child = serve
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let addr = line
        .trim()
        .strip_prefix("listening on http://")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .to_string();
    wait_ready(&addr);
    (child, addr)
}

/// Waits until the server has loaded its models (it answers 503 until then).
fn wait_ready(addr: &str) {
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
