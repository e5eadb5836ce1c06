//! HTTPS with `--tls-cert` and `--tls-key`: a generated certificate is served, a client that
//! trusts only it connects, and a new certificate put in place of the files is served to new
//! connections after SIGHUP while a connection opened before keeps working. Bad files stop the
//! server before it starts, with a hint.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls::pki_types::CertificateDer;

const MODEL: &str = "fixtures/corpus/random_forest_regressor/model.pkl";

/// A self-signed certificate for localhost: (certificate PEM, key PEM, certificate DER).
fn certificate() -> (String, String, Vec<u8>) {
    let c =
        rcgen::generate_simple_self_signed(vec!["localhost".into(), "127.0.0.1".into()]).unwrap();
    (
        c.cert.pem(),
        c.signing_key.serialize_pem(),
        c.cert.der().to_vec(),
    )
}

/// Writes a file by renaming a complete temporary one over it, as certificate tools do.
fn put(path: &Path, text: &str) {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

/// A TLS connection that trusts only `der`.
fn connect(
    addr: &str,
    der: &[u8],
) -> std::io::Result<rustls::StreamOwned<rustls::ClientConnection, TcpStream>> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(CertificateDer::from(der.to_vec())).unwrap();
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let conn =
        rustls::ClientConnection::new(Arc::new(config), "localhost".try_into().unwrap()).unwrap();
    let mut s = rustls::StreamOwned::new(conn, TcpStream::connect(addr)?);
    s.flush()?;
    // Complete the handshake now, so a certificate the client refuses fails here.
    while s.conn.is_handshaking() {
        s.conn.complete_io(&mut s.sock)?;
    }
    Ok(s)
}

/// One GET on a kept-alive connection: the status.
fn get(s: &mut impl ReadWrite, path: &str) -> std::io::Result<u16> {
    write!(s, "GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n")?;
    s.flush()?;
    let mut r = BufReader::new(s);
    let mut status = String::new();
    r.read_line(&mut status)?;
    let mut length = 0usize;
    loop {
        let mut line = String::new();
        r.read_line(&mut line)?;
        if line == "\r\n" || line.is_empty() {
            break;
        }
        if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
            length = v.trim().parse().unwrap_or(0);
        }
    }
    let mut body = vec![0; length];
    r.read_exact(&mut body)?;
    Ok(status
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0))
}

trait ReadWrite: Read + Write {}
impl<T: Read + Write> ReadWrite for T {}

#[test]
fn https_serves_the_certificate_and_reloads_it_on_sighup() {
    let home = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (cert_path, key_path) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    let (cert, key, first) = certificate();
    put(&cert_path, &cert);
    put(&key_path, &key);
    let (mut child, addr) = common::spawn(
        Command::new(env!("CARGO_BIN_EXE_mlship"))
            .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
            .env("MLSHIP_HOME", home.path())
            .args(["serve", &format!("rf={MODEL}"), "--port", "0", "--tls-cert"])
            .arg(&cert_path)
            .arg("--tls-key")
            .arg(&key_path)
            .stderr(Stdio::null()),
    );

    let deadline = Instant::now() + Duration::from_secs(20);
    let mut kept = loop {
        let mut s = connect(&addr, &first).unwrap();
        if get(&mut s, "/v2/health/ready").unwrap() == 200 {
            break s;
        }
        assert!(Instant::now() < deadline, "never ready");
        std::thread::sleep(Duration::from_millis(50));
    };
    // Plain HTTP on the TLS port gets no answer.
    let mut plain = TcpStream::connect(&addr).unwrap();
    plain
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    assert!(get(&mut plain, "/ping").map_or(true, |s| s != 200));

    // A new certificate, then SIGHUP: new connections get it, the open one keeps working.
    let (cert2, key2, second) = certificate();
    put(&cert_path, &cert2);
    put(&key_path, &key2);
    assert!(
        Command::new("kill")
            .args(["-HUP", &child.id().to_string()])
            .status()
            .unwrap()
            .success()
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while connect(&addr, &second).is_err() {
        assert!(
            Instant::now() < deadline,
            "the new certificate was never served"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        connect(&addr, &first).is_err(),
        "the old certificate is gone"
    );
    assert_eq!(
        get(&mut kept, "/ping").unwrap(),
        200,
        "the open connection survives"
    );
    let _ = child.kill();
    let _ = child.wait();
}

#[test]
fn bad_certificate_files_stop_the_server_with_a_hint() {
    let home = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let junk = dir.path().join("junk.pem");
    std::fs::write(&junk, "not a certificate").unwrap();
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_mlship"))
            .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
            .env("MLSHIP_HOME", home.path())
            .args(["server", "--port", "0"])
            .args(args)
            .stdout(Stdio::null())
            .output()
            .unwrap()
    };
    let j = junk.to_str().unwrap();
    let o = run(&["--tls-cert", j, "--tls-key", j]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(
        err.contains("certificate") && err.contains("hint:"),
        "{err}"
    );
    let o = run(&["--tls-cert", j]);
    assert_eq!(o.status.code(), Some(2), "--tls-cert needs --tls-key");
}
