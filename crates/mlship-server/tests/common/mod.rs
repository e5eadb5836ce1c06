//! What the server's tests share: one HTTP/1.1 exchange over a plain socket.

use std::io::{Read, Write};

/// Sends one request (JSON body) and returns the status, the answer's head and its body.
pub fn http(addr: &str, method: &str, path: &str, body: &str) -> (u16, String, String) {
    let mut c = std::net::TcpStream::connect(addr).unwrap();
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    c.write_all(req.as_bytes()).unwrap();
    let mut r = String::new();
    let _ = c.read_to_string(&mut r);
    let (head, body) = r.split_once("\r\n\r\n").unwrap_or((&r, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, head.to_string(), body.to_string())
}
