//! Where the servers listen: a TCP port, with TLS when `--tls-cert` and `--tls-key` are given.

use crate::cli::TlsArgs;
use crate::user;

/// A bound listener, plain or TLS.
pub enum Bound {
    Plain(tokio::net::TcpListener),
    Tls(mlship_server::tls::TlsListener),
}

impl Bound {
    pub fn scheme(&self) -> &'static str {
        match self {
            Bound::Plain(_) => "http",
            Bound::Tls(_) => "https",
        }
    }
}

/// Binds `host:port` (0: any free port) and returns the listener with the address it got.
pub async fn bind(
    host: &str,
    port: u16,
    tls: &TlsArgs,
) -> anyhow::Result<(Bound, std::net::SocketAddr)> {
    let tcp = tokio::net::TcpListener::bind((host, port))
        .await
        .map_err(|e| {
            user(
                format!("cannot listen on {host}:{port}: {e}"),
                "pick another --port, or 0 for any free port",
            )
        })?;
    let addr = tcp.local_addr()?;
    let bound = match (&tls.tls_cert, &tls.tls_key) {
        (Some(cert), Some(key)) => {
            let files = mlship_server::tls::TlsFiles {
                cert: cert.clone(),
                key: key.clone(),
            };
            Bound::Tls(mlship_server::tls::listen(tcp, files).map_err(|e| {
                user(
                    e,
                    "give --tls-cert a PEM certificate chain and --tls-key its PEM private key",
                )
            })?)
        }
        _ => Bound::Plain(tcp),
    };
    Ok((bound, addr))
}
