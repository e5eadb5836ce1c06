//! Remotes: a local folder, S3 (any endpoint) or HTTP (read-only) through object_store, all laid
//! out as the cache (`files/md5/XX/REST`). Downloads land in a temporary file that is checked against its name
//! before it becomes a cache object, so an interrupted or corrupted transfer never leaves a
//! partial object where a whole one is expected.

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use object_store::aws::AmazonS3Builder;
use object_store::path::Path as ObjPath;
use object_store::{ClientOptions, ObjectStore, ObjectStoreExt, RetryConfig};

use crate::cache::ObjectDir;
use crate::error::{Error, Result, io};

/// Where objects go and come from.
pub trait Remote: Send + Sync {
    /// The remote's name, for messages.
    fn name(&self) -> &str;
    /// Which of `md5s` the remote holds.
    fn existing(&self, md5s: &[String]) -> Result<HashSet<String>>;
    /// Uploads the cache object at `src` as `md5`, checking its bytes on the way: a corrupted
    /// object is refused, never sent.
    fn upload(&self, md5: &str, src: &Path) -> Result<()>;
    /// Downloads `md5` into the new file `dest`; returns the md5 of what was written.
    fn download(&self, md5: &str, dest: &Path) -> Result<String>;
    /// The bytes of `md5` and their md5 when the remote can hand a small object over whole
    /// (unchecked against the name; `None` for a large one, or where the remote streams every
    /// object through [`Remote::download`]).
    fn get_small(&self, md5: &str) -> Result<Option<(Vec<u8>, String)>> {
        let _ = md5;
        Ok(None)
    }
    /// Every object name on the remote.
    fn list(&self) -> Result<Vec<String>>;
    fn remove(&self, md5: &str) -> Result<()>;
    /// Refuses (before anything is sent) a remote that cannot be written.
    fn writable(&self) -> Result<()> {
        Ok(())
    }
}

/// A folder (on this machine or a mount) laid out as the cache.
pub struct LocalRemote {
    name: String,
    dir: ObjectDir,
}

impl LocalRemote {
    pub fn new(name: &str, root: PathBuf) -> LocalRemote {
        LocalRemote {
            name: name.to_string(),
            dir: ObjectDir::new(root),
        }
    }
}

impl Remote for LocalRemote {
    fn name(&self) -> &str {
        &self.name
    }

    fn existing(&self, md5s: &[String]) -> Result<HashSet<String>> {
        self.dir.present(md5s)
    }

    fn upload(&self, md5: &str, src: &Path) -> Result<()> {
        if let Some((bytes, got)) = crate::cache::read_small_named(src, md5).map_err(io(src))? {
            crate::cache::check(md5, &got, || src.display().to_string(), Path::new(""))?;
            // Only objects the remote lacks are sent: no look before writing.
            return self.dir.add_new(md5, &bytes);
        }
        let dest = self.dir.path_of(md5);
        let parent = dest.parent().unwrap_or(self.dir.root());
        std::fs::create_dir_all(parent).map_err(io(parent))?;
        let tmp = crate::cache::temp_beside(&dest);
        let (got, _) = crate::cache::copy_hashing(src, &tmp, 0o444)?;
        crate::cache::check(md5, &got, || src.display().to_string(), &tmp)?;
        self.dir.place(&tmp, md5)
    }

    fn download(&self, md5: &str, dest: &Path) -> Result<String> {
        let src = self.dir.path_of(md5);
        if !src.is_file() {
            return Err(Error::Missing(format!(
                "{md5} is not on remote '{}'",
                self.name
            )));
        }
        Ok(crate::cache::copy_hashing(&src, dest, 0o444)?.0)
    }

    fn get_small(&self, md5: &str) -> Result<Option<(Vec<u8>, String)>> {
        let src = self.dir.path_of(md5);
        crate::cache::read_small_named(&src, md5).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => {
                Error::Missing(format!("{md5} is not on remote '{}'", self.name))
            }
            _ => Error::Io {
                path: src.clone(),
                source: e,
            },
        })
    }

    fn list(&self) -> Result<Vec<String>> {
        self.dir.list()
    }

    fn remove(&self, md5: &str) -> Result<()> {
        self.dir.remove(md5)
    }
}

/// An object store under a prefix: an S3 bucket (or any S3-compatible endpoint), or an HTTP
/// server (read-only, as DVC's HTTP remotes are).
pub struct ObjectRemote {
    name: String,
    url: String,
    store: Arc<dyn ObjectStore>,
    prefix: String,
    rt: tokio::runtime::Runtime,
    /// False for HTTP: no uploads, no deletes, no listing (existence is asked object by object).
    writable: bool,
}

/// Timeouts for every remote: a refused or unreachable endpoint fails in seconds, a large
/// transfer has minutes.
fn client() -> ClientOptions {
    ClientOptions::new()
        .with_connect_timeout(Duration::from_secs(5))
        .with_timeout(Duration::from_secs(300))
}

fn retry() -> RetryConfig {
    RetryConfig {
        max_retries: 3,
        retry_timeout: Duration::from_secs(30),
        ..RetryConfig::default()
    }
}

fn runtime(name: &str) -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| Error::Remote {
            remote: name.to_string(),
            message: e.to_string(),
        })
}

/// Objects at or above this size are uploaded in parts.
const MULTIPART: u64 = 64 << 20;

impl ObjectRemote {
    /// Opens `s3://bucket/prefix` with the remote's settings from DVC's config (`endpointurl`,
    /// `access_key_id`, `secret_access_key`, `session_token`, `region`), then the usual AWS
    /// variables. Nothing is contacted until the first call.
    pub fn open(
        name: &str,
        url: &str,
        settings: &BTreeMap<String, String>,
    ) -> Result<ObjectRemote> {
        let bad = |m: String| Error::Remote {
            remote: name.to_string(),
            message: m,
        };
        let rest = url
            .strip_prefix("s3://")
            .ok_or_else(|| bad(format!("{url} is not an s3:// URL")))?;
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        if bucket.is_empty() {
            return Err(bad(format!("{url} names no bucket")));
        }
        let mut b = AmazonS3Builder::from_env()
            .with_bucket_name(bucket)
            .with_client_options(client())
            .with_retry(retry());
        let endpoint = settings
            .get("endpointurl")
            .cloned()
            .or_else(|| std::env::var("AWS_ENDPOINT_URL").ok());
        if let Some(e) = endpoint {
            b = b
                .with_endpoint(&e)
                .with_allow_http(e.starts_with("http://"))
                .with_virtual_hosted_style_request(false);
        }
        // A profile (DVC's `profile`, else AWS_PROFILE when no keys are set) is read from the
        // shared credentials file (`credentialpath`, else ~/.aws/credentials).
        let profile = settings.get("profile").cloned().or_else(|| {
            (!settings.contains_key("access_key_id"))
                .then(|| std::env::var("AWS_PROFILE").ok())
                .flatten()
        });
        if let Some(p) = profile {
            let file = settings
                .get("credentialpath")
                .map(PathBuf::from)
                .or_else(|| std::env::var_os("AWS_SHARED_CREDENTIALS_FILE").map(PathBuf::from))
                .or_else(|| {
                    std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".aws/credentials"))
                })
                .ok_or_else(|| bad("no credentials file for the profile".into()))?;
            let c = crate::config::Config::read(&file)?;
            let keys = c.section(&p);
            let (Some(id), Some(secret)) = (
                keys.get("aws_access_key_id"),
                keys.get("aws_secret_access_key"),
            ) else {
                return Err(bad(format!(
                    "profile '{p}' has no keys in {}",
                    file.display()
                )));
            };
            b = b.with_access_key_id(id).with_secret_access_key(secret);
            if let Some(t) = keys.get("aws_session_token") {
                b = b.with_token(t);
            }
        }
        if let Some(v) = settings.get("access_key_id") {
            b = b.with_access_key_id(v);
        }
        if let Some(v) = settings.get("secret_access_key") {
            b = b.with_secret_access_key(v);
        }
        if let Some(v) = settings.get("session_token") {
            b = b.with_token(v);
        }
        if let Some(v) = settings.get("region") {
            b = b.with_region(v);
        }
        let store = b.build().map_err(|e| bad(e.to_string()))?;
        Ok(ObjectRemote {
            name: name.to_string(),
            url: url.to_string(),
            store: Arc::new(store),
            prefix: prefix.trim_matches('/').to_string(),
            rt: runtime(name)?,
            writable: true,
        })
    }

    /// Opens an `http://` or `https://` remote, read-only.
    pub fn http(name: &str, url: &str) -> Result<ObjectRemote> {
        let store = object_store::http::HttpBuilder::new()
            .with_url(url)
            .with_client_options(client().with_allow_http(true))
            .with_retry(retry())
            .build()
            .map_err(|e| Error::Remote {
                remote: name.to_string(),
                message: e.to_string(),
            })?;
        Ok(ObjectRemote {
            name: name.to_string(),
            url: url.to_string(),
            store: Arc::new(store),
            prefix: String::new(),
            rt: runtime(name)?,
            writable: false,
        })
    }

    fn read_only(&self) -> Result<()> {
        if self.writable {
            return Ok(());
        }
        Err(Error::Remote {
            remote: format!("{} ({})", self.name, self.url),
            message: "an HTTP remote is read-only: push to the folder or bucket it serves".into(),
        })
    }

    fn key(&self, md5: &str) -> ObjPath {
        let (a, b) = md5.split_at(2.min(md5.len()));
        if self.prefix.is_empty() {
            ObjPath::from(format!("files/md5/{a}/{b}"))
        } else {
            ObjPath::from(format!("{}/files/md5/{a}/{b}", self.prefix))
        }
    }

    fn err(&self, e: impl std::fmt::Display) -> Error {
        Error::Remote {
            remote: format!("{} ({})", self.name, self.url),
            message: e.to_string(),
        }
    }
}

impl Remote for ObjectRemote {
    fn name(&self) -> &str {
        &self.name
    }

    fn existing(&self, md5s: &[String]) -> Result<HashSet<String>> {
        // Few objects: one HEAD each; many: one listing of the remote (HTTP cannot list).
        if md5s.len() > 64 && self.writable {
            let all: HashSet<String> = self.list()?.into_iter().collect();
            return Ok(md5s.iter().filter(|m| all.contains(*m)).cloned().collect());
        }
        let mut found = HashSet::new();
        for m in md5s {
            match self.rt.block_on(self.store.head(&self.key(m))) {
                Ok(_) => {
                    found.insert(m.clone());
                }
                Err(object_store::Error::NotFound { .. }) => {}
                Err(e) => return Err(self.err(e)),
            }
        }
        Ok(found)
    }

    fn upload(&self, md5: &str, src: &Path) -> Result<()> {
        self.read_only()?;
        let size = std::fs::metadata(src).map_err(io(src))?.len();
        let key = self.key(md5);
        let corrupt =
            |got: &str| crate::cache::check(md5, got, || src.display().to_string(), Path::new(""));
        if size < MULTIPART {
            let bytes = std::fs::read(src).map_err(io(src))?;
            corrupt(&crate::objects::md5_hex(&bytes))?;
            self.rt
                .block_on(self.store.put(&key, bytes.into()))
                .map_err(|e| self.err(e))?;
            return Ok(());
        }
        use std::io::Read;
        let mut f = std::fs::File::open(src).map_err(io(src))?;
        self.rt.block_on(async {
            let upload = self
                .store
                .put_multipart(&key)
                .await
                .map_err(|e| self.err(e))?;
            let mut w = object_store::WriteMultipart::new_with_chunk_size(upload, 16 << 20);
            let mut buf = vec![0u8; 8 << 20];
            let mut h = <md5::Md5 as md5::Digest>::new();
            loop {
                let n = match f.read(&mut buf) {
                    Ok(n) => n,
                    Err(e) => {
                        let _ = w.abort().await;
                        return Err(Error::Io {
                            path: src.to_path_buf(),
                            source: e,
                        });
                    }
                };
                if n == 0 {
                    break;
                }
                md5::Digest::update(&mut h, &buf[..n]);
                w.wait_for_capacity(4).await.map_err(|e| self.err(e))?;
                w.write(&buf[..n]);
            }
            // A corrupted object never completes its upload.
            let got = hex::encode(md5::Digest::finalize(h));
            if got != md5 {
                let _ = w.abort().await;
                return corrupt(&got);
            }
            w.finish().await.map_err(|e| self.err(e))?;
            Ok(())
        })
    }

    fn download(&self, md5: &str, dest: &Path) -> Result<String> {
        use futures_util::StreamExt;
        use std::io::Write;
        let key = self.key(md5);
        let mut h = <md5::Md5 as md5::Digest>::new();
        self.rt.block_on(async {
            let r = match self.store.get(&key).await {
                Ok(r) => r,
                Err(object_store::Error::NotFound { .. }) => {
                    return Err(Error::Missing(format!(
                        "{md5} is not on remote '{}'",
                        self.name
                    )));
                }
                Err(e) => return Err(self.err(e)),
            };
            let mut f = crate::cache::create_with_mode(dest, 0o444).map_err(io(dest))?;
            let mut s = r.into_stream();
            while let Some(chunk) = s.next().await {
                let chunk = chunk.map_err(|e| self.err(e))?;
                md5::Digest::update(&mut h, &chunk);
                f.write_all(&chunk).map_err(io(dest))?;
            }
            Ok(hex::encode(md5::Digest::finalize(h)))
        })
    }

    fn list(&self) -> Result<Vec<String>> {
        self.read_only()?;
        use futures_util::TryStreamExt;
        let base = if self.prefix.is_empty() {
            ObjPath::from("files/md5")
        } else {
            ObjPath::from(format!("{}/files/md5", self.prefix))
        };
        let metas: Vec<object_store::ObjectMeta> = self
            .rt
            .block_on(self.store.list(Some(&base)).try_collect())
            .map_err(|e| self.err(e))?;
        Ok(metas
            .iter()
            .filter_map(|m| {
                let parts: Vec<&str> = m.location.as_ref().rsplitn(3, '/').collect();
                match parts.as_slice() {
                    [rest, xx, _] => {
                        let name = format!("{xx}{rest}");
                        crate::objects::is_object_name(&name).then_some(name)
                    }
                    _ => None,
                }
            })
            .collect())
    }

    fn writable(&self) -> Result<()> {
        self.read_only()
    }

    fn remove(&self, md5: &str) -> Result<()> {
        self.read_only()?;
        match self.rt.block_on(self.store.delete(&self.key(md5))) {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(self.err(e)),
        }
    }
}
