//! A client of the OCI distribution API, enough to push one image: the `/v2/` probe, basic and
//! token (Bearer) authentication as registries challenge for it (ECR answers with Basic, Docker Hub
//! and most private registries with a token realm), blob existence checks, monolithic and chunked
//! blob uploads, and the manifest put.

use std::time::Duration;

use base64::Engine;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use reqwest::header::{AUTHORIZATION, CONTENT_LENGTH, CONTENT_RANGE, CONTENT_TYPE, LOCATION};
use reqwest::{Method, StatusCode};

use crate::archive::Archive;
use crate::error::{Error, Result};
use crate::oci::MEDIA_MANIFEST;

/// Where to push: `REGISTRY/REPO:TAG`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    /// `host[:port]`.
    pub registry: String,
    pub repository: String,
    pub tag: String,
}

impl Target {
    /// Parses `REGISTRY/REPO[:TAG]`. A first component without a dot or a port (and not
    /// `localhost`) means Docker Hub, as `docker push` reads it.
    pub fn parse(reference: &str) -> Result<Target> {
        let bad = |why: &str| Error::BadReference {
            reference: reference.to_string(),
            why: why.to_string(),
        };
        if reference.contains("://") {
            return Err(bad("give REGISTRY/REPO:TAG without a scheme"));
        }
        let (name, tag) = match reference.rsplit_once(':') {
            Some((n, t)) if !t.contains('/') => (n, t.to_string()),
            _ => (reference, "latest".to_string()),
        };
        if tag.is_empty()
            || tag.len() > 128
            || !tag
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c))
        {
            return Err(bad("a tag is 1-128 letters, digits, '.', '_' or '-'"));
        }
        let (registry, repository) = match name.split_once('/') {
            Some((first, rest))
                if first.contains('.') || first.contains(':') || first == "localhost" =>
            {
                (first.to_string(), rest.to_string())
            }
            Some(_) => ("registry-1.docker.io".to_string(), name.to_string()),
            None => (
                "registry-1.docker.io".to_string(),
                format!("library/{name}"),
            ),
        };
        let repo_ok = !repository.is_empty()
            && repository.split('/').all(|part| {
                !part.is_empty()
                    && part
                        .chars()
                        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "._-".contains(c))
            });
        if !repo_ok {
            return Err(bad(
                "a repository is lowercase letters, digits, '.', '_', '-' and '/'",
            ));
        }
        Ok(Target {
            registry,
            repository,
            tag,
        })
    }
}

#[derive(Clone, Debug)]
pub struct Credentials {
    pub username: String,
    pub password: String,
}

#[derive(Clone, Debug)]
pub struct PushOptions {
    pub credentials: Option<Credentials>,
    /// Speak plain HTTP (loopback registries are always spoken to this way).
    pub plain_http: bool,
    /// Blobs larger than this go up in chunks of this size (ECR needs at least 5 MiB).
    pub chunk_size: usize,
    /// Draw a progress bar on standard error.
    pub progress: bool,
}

impl Default for PushOptions {
    fn default() -> PushOptions {
        PushOptions {
            credentials: None,
            plain_http: false,
            chunk_size: 16 << 20,
            progress: false,
        }
    }
}

/// What a push did.
#[derive(Debug)]
pub struct PushReport {
    pub digest: String,
    /// Blobs sent, and blobs the registry already had.
    pub uploaded: Vec<String>,
    pub existing: Vec<String>,
    pub bytes: u64,
}

/// Pushes the image of `archive` to `target`.
pub fn push(archive: &Archive, target: &Target, opts: &PushOptions) -> Result<PushReport> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::io("tokio runtime", e))?;
    rt.block_on(push_async(archive, target, opts))
}

struct Session {
    client: reqwest::Client,
    base: String,
    target: Target,
    auth: Option<String>,
}

fn loopback(registry: &str) -> bool {
    let host =
        registry.rsplit_once(':').map_or(
            registry,
            |(h, p)| if p.contains(']') { registry } else { h },
        );
    matches!(host, "localhost" | "127.0.0.1" | "[::1]")
}

async fn push_async(archive: &Archive, target: &Target, opts: &PushOptions) -> Result<PushReport> {
    let scheme = if opts.plain_http || loopback(&target.registry) {
        "http"
    } else {
        "https"
    };
    let client = reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(10))
        .user_agent(concat!("mlship/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| unreachable(target, e))?;
    let mut s = Session {
        client,
        base: format!("{scheme}://{}", target.registry),
        target: target.clone(),
        auth: None,
    };
    s.authenticate(opts.credentials.as_ref()).await?;

    let total: u64 = archive
        .layers
        .iter()
        .chain(std::iter::once(&archive.config))
        .map(|d| d.size)
        .sum();
    let bar = if opts.progress {
        let b = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
        b.set_style(
            ProgressStyle::with_template(
                "{msg:20} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec}",
            )
            .expect("a valid template")
            .progress_chars("=> "),
        );
        b
    } else {
        ProgressBar::hidden()
    };
    let mut report = PushReport {
        digest: archive.manifest_digest.clone(),
        uploaded: Vec::new(),
        existing: Vec::new(),
        bytes: 0,
    };
    for d in archive
        .layers
        .iter()
        .chain(std::iter::once(&archive.config))
    {
        bar.set_message(short(&d.digest));
        if s.has_blob(&d.digest).await? {
            report.existing.push(d.digest.clone());
            bar.inc(d.size);
            continue;
        }
        let bytes = &archive.blobs[&d.digest];
        s.upload(&d.digest, bytes, opts.chunk_size, &bar).await?;
        report.uploaded.push(d.digest.clone());
        report.bytes += bytes.len() as u64;
    }
    bar.set_message("manifest");
    s.put_manifest(&archive.manifest, &archive.manifest_digest)
        .await?;
    bar.finish_and_clear();
    Ok(report)
}

fn short(digest: &str) -> String {
    digest.chars().take(19).collect()
}

fn unreachable(t: &Target, e: impl std::fmt::Display) -> Error {
    Error::Unreachable {
        registry: t.registry.clone(),
        why: e.to_string(),
    }
}

/// A `WWW-Authenticate` challenge.
#[derive(Debug, PartialEq)]
enum Challenge {
    Basic,
    Bearer {
        realm: String,
        service: Option<String>,
    },
}

fn parse_challenge(header: &str) -> Option<Challenge> {
    let (scheme, params) = header.trim().split_once(' ').unwrap_or((header.trim(), ""));
    if scheme.eq_ignore_ascii_case("basic") {
        return Some(Challenge::Basic);
    }
    if !scheme.eq_ignore_ascii_case("bearer") {
        return None;
    }
    let mut realm = None;
    let mut service = None;
    // key="value" pairs; values may hold commas (scope="repository:x:pull,push").
    let mut rest = params.trim();
    while !rest.is_empty() {
        let (key, after) = rest.split_once('=')?;
        let after = after.trim_start();
        let (value, tail) = if let Some(q) = after.strip_prefix('"') {
            let end = q.find('"')?;
            (&q[..end], &q[end + 1..])
        } else {
            after.split_once(',').unwrap_or((after, ""))
        };
        match key.trim().to_ascii_lowercase().as_str() {
            "realm" => realm = Some(value.to_string()),
            "service" => service = Some(value.to_string()),
            _ => {}
        }
        rest = tail.trim_start_matches([',', ' ']);
    }
    Some(Challenge::Bearer {
        realm: realm?,
        service,
    })
}

impl Session {
    fn url(&self, path: &str) -> String {
        format!("{}/v2/{}/{path}", self.base, self.target.repository)
    }

    fn absolute(&self, location: &str) -> String {
        if location.starts_with("http://") || location.starts_with("https://") {
            location.to_string()
        } else {
            format!("{}{location}", self.base)
        }
    }

    async fn send(&self, method: Method, url: &str) -> Result<reqwest::Response> {
        self.send_body(method, url, Vec::new(), &[]).await
    }

    async fn send_body(
        &self,
        method: Method,
        url: &str,
        body: Vec<u8>,
        headers: &[(reqwest::header::HeaderName, String)],
    ) -> Result<reqwest::Response> {
        let mut req = self
            .client
            .request(method, url)
            .header(CONTENT_LENGTH, body.len());
        if let Some(a) = &self.auth {
            req = req.header(AUTHORIZATION, a);
        }
        for (k, v) in headers {
            req = req.header(k, v);
        }
        let resp = req
            .body(body)
            .send()
            .await
            .map_err(|e| unreachable(&self.target, e))?;
        let status = resp.status();
        if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
            return Err(Error::Unauthorized {
                registry: self.target.registry.clone(),
                status: status.as_u16(),
            });
        }
        Ok(resp)
    }

    async fn fail(&self, resp: reqwest::Response, what: &str) -> Error {
        let status = resp.status().as_u16();
        let mut body = resp.text().await.unwrap_or_default();
        body.truncate(300);
        Error::Registry {
            registry: self.target.registry.clone(),
            what: what.to_string(),
            status,
            body: body.trim().to_string(),
        }
    }

    /// Probes `/v2/` and answers the challenge, if any, once for the whole push.
    async fn authenticate(&mut self, creds: Option<&Credentials>) -> Result<()> {
        let probe = format!("{}/v2/", self.base);
        let resp = self
            .client
            .get(&probe)
            .send()
            .await
            .map_err(|e| unreachable(&self.target, e))?;
        if resp.status() != StatusCode::UNAUTHORIZED {
            if resp.status().is_success() {
                return Ok(());
            }
            return Err(self.fail(resp, "GET /v2/").await);
        }
        let challenge = resp
            .headers()
            .get(reqwest::header::WWW_AUTHENTICATE)
            .and_then(|h| h.to_str().ok())
            .and_then(parse_challenge);
        let basic = creds.map(|c| {
            format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD
                    .encode(format!("{}:{}", c.username, c.password))
            )
        });
        match challenge {
            Some(Challenge::Basic) | None => {
                let Some(b) = basic else {
                    return Err(Error::Unauthorized {
                        registry: self.target.registry.clone(),
                        status: 401,
                    });
                };
                self.auth = Some(b);
                // Check now, so a wrong password fails before any upload.
                self.send(Method::GET, &probe).await?;
                Ok(())
            }
            Some(Challenge::Bearer { realm, service }) => {
                let scope = format!("repository:{}:pull,push", self.target.repository);
                let mut req = self.client.get(&realm).query(&[("scope", scope.as_str())]);
                if let Some(s) = &service {
                    req = req.query(&[("service", s.as_str())]);
                }
                if let Some(b) = &basic {
                    req = req.header(AUTHORIZATION, b);
                }
                let resp = req.send().await.map_err(|e| unreachable(&self.target, e))?;
                if !resp.status().is_success() {
                    return Err(Error::Unauthorized {
                        registry: self.target.registry.clone(),
                        status: resp.status().as_u16(),
                    });
                }
                let body: serde_json::Value = resp
                    .json()
                    .await
                    .map_err(|e| unreachable(&self.target, format!("token answer: {e}")))?;
                let token = body
                    .get("token")
                    .or_else(|| body.get("access_token"))
                    .and_then(|t| t.as_str())
                    .ok_or_else(|| unreachable(&self.target, "the token answer holds no token"))?;
                self.auth = Some(format!("Bearer {token}"));
                Ok(())
            }
        }
    }

    async fn has_blob(&self, digest: &str) -> Result<bool> {
        let url = self.url(&format!("blobs/{digest}"));
        let resp = self.send(Method::HEAD, &url).await?;
        match resp.status() {
            StatusCode::OK => Ok(true),
            StatusCode::NOT_FOUND => Ok(false),
            _ => Err(self.fail(resp, &format!("HEAD blob {digest}")).await),
        }
    }

    fn location(&self, resp: &reqwest::Response) -> Option<String> {
        resp.headers()
            .get(LOCATION)
            .and_then(|h| h.to_str().ok())
            .map(|l| self.absolute(l))
    }

    async fn upload(
        &self,
        digest: &str,
        bytes: &[u8],
        chunk_size: usize,
        bar: &ProgressBar,
    ) -> Result<()> {
        let what = format!("the upload of {digest}");
        let start = self.url("blobs/uploads/");
        let resp = self.send(Method::POST, &start).await?;
        if resp.status() != StatusCode::ACCEPTED {
            return Err(self.fail(resp, &what).await);
        }
        let mut loc = self
            .location(&resp)
            .ok_or_else(|| unreachable(&self.target, "an upload answer without a Location"))?;
        let octet = (CONTENT_TYPE, "application/octet-stream".to_string());
        let with_digest = |loc: &str| {
            let sep = if loc.contains('?') { '&' } else { '?' };
            format!("{loc}{sep}digest={}", digest.replace(':', "%3A"))
        };
        let chunk_size = chunk_size.max(1);
        if bytes.len() <= chunk_size {
            let resp = self
                .send_body(Method::PUT, &with_digest(&loc), bytes.to_vec(), &[octet])
                .await?;
            if resp.status() != StatusCode::CREATED {
                return Err(self.fail(resp, &what).await);
            }
            bar.inc(bytes.len() as u64);
            return Ok(());
        }
        for (i, chunk) in bytes.chunks(chunk_size).enumerate() {
            let from = i * chunk_size;
            let range = format!("{from}-{}", from + chunk.len() - 1);
            let resp = self
                .send_body(
                    Method::PATCH,
                    &loc,
                    chunk.to_vec(),
                    &[octet.clone(), (CONTENT_RANGE, range)],
                )
                .await?;
            if resp.status() != StatusCode::ACCEPTED {
                return Err(self.fail(resp, &what).await);
            }
            loc = self.location(&resp).unwrap_or(loc);
            bar.inc(chunk.len() as u64);
        }
        let resp = self
            .send_body(Method::PUT, &with_digest(&loc), Vec::new(), &[])
            .await?;
        if resp.status() != StatusCode::CREATED {
            return Err(self.fail(resp, &what).await);
        }
        Ok(())
    }

    async fn put_manifest(&self, manifest: &[u8], digest: &str) -> Result<()> {
        let url = self.url(&format!("manifests/{}", self.target.tag));
        let what = format!("the manifest {}", self.target.tag);
        let resp = self
            .send_body(
                Method::PUT,
                &url,
                manifest.to_vec(),
                &[(CONTENT_TYPE, MEDIA_MANIFEST.to_string())],
            )
            .await?;
        if resp.status() != StatusCode::CREATED {
            return Err(self.fail(resp, &what).await);
        }
        if let Some(d) = resp
            .headers()
            .get("docker-content-digest")
            .and_then(|h| h.to_str().ok())
        {
            if d != digest {
                return Err(Error::Registry {
                    registry: self.target.registry.clone(),
                    what: what.clone(),
                    status: 201,
                    body: format!("stored the manifest as {d}, not {digest}"),
                });
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_targets_as_docker_does() {
        let t = Target::parse("localhost:5000/team/iris:v1").unwrap();
        assert_eq!(
            (t.registry.as_str(), t.repository.as_str(), t.tag.as_str()),
            ("localhost:5000", "team/iris", "v1")
        );
        let t = Target::parse("123456789012.dkr.ecr.eu-west-1.amazonaws.com/iris").unwrap();
        assert_eq!(t.registry, "123456789012.dkr.ecr.eu-west-1.amazonaws.com");
        assert_eq!(t.tag, "latest");
        let t = Target::parse("iris:2").unwrap();
        assert_eq!(
            (t.registry.as_str(), t.repository.as_str()),
            ("registry-1.docker.io", "library/iris")
        );
        let t = Target::parse("acme/iris").unwrap();
        assert_eq!(t.repository, "acme/iris");
        for bad in [
            "http://x/y",
            "localhost:5000/Iris",
            "x/y:",
            "x//y",
            "x/y:a b",
        ] {
            assert!(Target::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn reads_challenges() {
        assert_eq!(
            parse_challenge("Basic realm=\"https://x.dkr.ecr.amazonaws.com/\""),
            Some(Challenge::Basic)
        );
        assert_eq!(
            parse_challenge(
                "Bearer realm=\"https://auth.docker.io/token\",service=\"registry.docker.io\",scope=\"repository:a/b:pull,push\""
            ),
            Some(Challenge::Bearer {
                realm: "https://auth.docker.io/token".into(),
                service: Some("registry.docker.io".into())
            })
        );
        assert_eq!(parse_challenge("Bearer service=\"x\""), None);
        assert_eq!(parse_challenge("Negotiate"), None);
    }

    #[test]
    fn loopback_registries_speak_http() {
        assert!(loopback("localhost:5000"));
        assert!(loopback("127.0.0.1:5000"));
        assert!(loopback("[::1]:5000"));
        assert!(!loopback("registry.example.com"));
    }
}

#[cfg(test)]
mod props {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn any_challenge_or_reference_parses_or_is_refused(s in ".{0,80}") {
            let _ = parse_challenge(&s);
            let _ = Target::parse(&s);
        }
    }
}
