//! `mlship health`: one HTTP GET to a running server's health route; exit 0 on 200, else 1.
//! It is the container image's health check, since an empty image has no curl.

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

use crate::cli::HealthArgs;
use crate::user;

pub fn run(a: &HealthArgs) -> anyhow::Result<()> {
    let rest = a.url.strip_prefix("http://").ok_or_else(|| {
        user(
            format!("{:?} is not an http:// URL", a.url),
            "for example http://127.0.0.1:8080/health",
        )
    })?;
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let with_port = if authority
        .rsplit_once(':')
        .is_some_and(|(_, p)| !p.contains(']'))
    {
        authority.to_string()
    } else {
        format!("{authority}:80")
    };
    let timeout = Duration::from_secs(a.timeout.max(1));
    let unhealthy = |why: String| {
        user(
            format!("{} is not healthy: {why}", a.url),
            "is the server up? `mlship serve` prints its address",
        )
    };
    let addr = with_port
        .to_socket_addrs()
        .map_err(|e| unhealthy(e.to_string()))?
        .next()
        .ok_or_else(|| unhealthy("no address".into()))?;
    let mut s = TcpStream::connect_timeout(&addr, timeout).map_err(|e| unhealthy(e.to_string()))?;
    s.set_read_timeout(Some(timeout))?;
    s.set_write_timeout(Some(timeout))?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {authority}\r\nConnection: close\r\n\r\n"
    )
    .map_err(|e| unhealthy(e.to_string()))?;
    let mut head = [0u8; 64];
    let n = s.read(&mut head).map_err(|e| unhealthy(e.to_string()))?;
    let line = String::from_utf8_lossy(&head[..n]);
    let status = line.split_whitespace().nth(1).unwrap_or("");
    if status == "200" {
        crate::outln!("healthy");
        Ok(())
    } else {
        Err(unhealthy(format!("status {status:?}")))
    }
}
