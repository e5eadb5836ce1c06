//! S3 and S3-compatible artifact stores, through `object_store`.
//!
//! Objects live at `PREFIX/sha256/<sha>`. An upload streams to `PREFIX/tmp/<unique>` in 8 MiB
//! multipart parts while hashing, then is renamed to its content address, so readers never see a
//! partial object under a sha. Credentials and the endpoint come from the usual AWS variables
//! (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_REGION`, `AWS_ENDPOINT_URL`).

use std::io::Read;
use std::sync::Arc;
use std::time::Duration;

use object_store::aws::AmazonS3Builder;
use object_store::path::Path as ObjPath;
use object_store::{ClientOptions, ObjectStore, ObjectStoreExt, RetryConfig, WriteMultipart};
use sha2::{Digest, Sha256};

use crate::artifacts::{ArtifactStore, Stored, check_sha, hex, verified};
use crate::error::{Error, Result};

const PART: usize = 8 << 20;

/// Artifacts in an S3 bucket.
pub struct S3Artifacts {
    store: Arc<dyn ObjectStore>,
    url: String,
    prefix: String,
    rt: tokio::runtime::Runtime,
}

impl std::fmt::Debug for S3Artifacts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Artifacts")
            .field("url", &self.url)
            .finish()
    }
}

impl S3Artifacts {
    /// Opens `s3://bucket/prefix`. Nothing is contacted until the first call.
    pub fn open(url: &str) -> Result<S3Artifacts> {
        let (store, prefix, rt) = connect(url)?;
        Ok(S3Artifacts {
            store,
            url: url.to_string(),
            prefix,
            rt,
        })
    }

    fn key(&self, rest: &str) -> ObjPath {
        if self.prefix.is_empty() {
            ObjPath::from(rest)
        } else {
            ObjPath::from(format!("{}/{rest}", self.prefix))
        }
    }

    fn err(&self, e: object_store::Error) -> Error {
        Error::Store {
            store: self.url.clone(),
            message: e.to_string(),
        }
    }
}

/// The object store, key prefix and runtime for `s3://bucket/prefix`, from the AWS variables.
pub(crate) fn connect(
    url: &str,
) -> Result<(Arc<dyn ObjectStore>, String, tokio::runtime::Runtime)> {
    let bad = |m: &str| Error::Store {
        store: url.to_string(),
        message: m.to_string(),
    };
    let rest = url
        .strip_prefix("s3://")
        .ok_or_else(|| bad("not an s3:// URL"))?;
    let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
    if bucket.is_empty() {
        return Err(bad("no bucket"));
    }
    let mut b = AmazonS3Builder::from_env()
        .with_bucket_name(bucket)
        .with_client_options(
            ClientOptions::new()
                .with_connect_timeout(Duration::from_secs(5))
                .with_timeout(Duration::from_secs(60)),
        )
        .with_retry(RetryConfig {
            max_retries: 2,
            retry_timeout: Duration::from_secs(15),
            ..RetryConfig::default()
        });
    if let Ok(endpoint) =
        std::env::var("AWS_ENDPOINT_URL").or_else(|_| std::env::var("AWS_ENDPOINT"))
    {
        b = b
            .with_endpoint(&endpoint)
            .with_allow_http(endpoint.starts_with("http://"))
            .with_virtual_hosted_style_request(false);
    }
    let store = b.build().map_err(|e| bad(&e.to_string()))?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| bad(&e.to_string()))?;
    Ok((Arc::new(store), prefix.trim_matches('/').to_string(), rt))
}

impl ArtifactStore for S3Artifacts {
    fn describe(&self) -> String {
        self.url.clone()
    }

    fn put(&self, reader: &mut dyn Read, progress: &mut dyn FnMut(u64)) -> Result<Stored> {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let tmp = self.key(&format!("tmp/{}-{nanos}", std::process::id()));
        self.rt.block_on(async {
            let upload = self
                .store
                .put_multipart(&tmp)
                .await
                .map_err(|e| self.err(e))?;
            let mut w = WriteMultipart::new_with_chunk_size(upload, PART);
            let mut h = Sha256::new();
            let mut buf = vec![0u8; 1 << 20];
            let mut size = 0u64;
            loop {
                let n = reader
                    .read(&mut buf)
                    .map_err(crate::error::io("reading the artifact"))?;
                if n == 0 {
                    break;
                }
                h.update(&buf[..n]);
                w.wait_for_capacity(2).await.map_err(|e| self.err(e))?;
                w.write(&buf[..n]);
                size += n as u64;
                progress(size);
            }
            w.finish().await.map_err(|e| self.err(e))?;
            let sha = hex(&h.finalize());
            let dest = self.key(&format!("sha256/{sha}"));
            self.store
                .rename(&tmp, &dest)
                .await
                .map_err(|e| self.err(e))?;
            Ok(Stored { sha256: sha, size })
        })
    }

    fn get(&self, sha256: &str) -> Result<Vec<u8>> {
        check_sha(sha256)?;
        let key = self.key(&format!("sha256/{sha256}"));
        let b = self.rt.block_on(async {
            match self.store.get(&key).await {
                Ok(r) => r.bytes().await.map(|b| b.to_vec()).map_err(|e| self.err(e)),
                Err(object_store::Error::NotFound { .. }) => {
                    Err(Error::MissingArtifact(sha256.to_string()))
                }
                Err(e) => Err(self.err(e)),
            }
        })?;
        verified(sha256, b)
    }

    fn exists(&self, sha256: &str) -> Result<bool> {
        check_sha(sha256)?;
        let key = self.key(&format!("sha256/{sha256}"));
        self.rt.block_on(async {
            match self.store.head(&key).await {
                Ok(_) => Ok(true),
                Err(object_store::Error::NotFound { .. }) => Ok(false),
                Err(e) => Err(self.err(e)),
            }
        })
    }

    fn delete(&self, sha256: &str) -> Result<()> {
        check_sha(sha256)?;
        let key = self.key(&format!("sha256/{sha256}"));
        self.rt.block_on(async {
            match self.store.delete(&key).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
                Err(e) => Err(self.err(e)),
            }
        })
    }
}
