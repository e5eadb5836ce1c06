//! One tar that is two image formats at once: an OCI image layout (`oci-layout`, `index.json`,
//! `blobs/sha256/…`) and a `docker load` archive (`manifest.json` pointing at the same blobs,
//! as `docker save` writes since Docker 25). Written atomically; read back with every blob
//! checked against its digest.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::Path;

use crate::error::{Error, Result};
use crate::layer::Layer;
use crate::oci::{
    Descriptor, DockerManifestEntry, Healthcheck, History, ImageConfig, Index, MEDIA_CONFIG,
    MEDIA_INDEX, MEDIA_LAYER_GZIP, MEDIA_MANIFEST, Manifest, RootFs, RunConfig, sha256_digest,
};

/// Every date in the image: the epoch, so that rebuilding gives the same digest.
const EPOCH: &str = "1970-01-01T00:00:00Z";

/// What goes into an image.
#[derive(Debug)]
pub struct ImageSpec {
    /// `NAME:TAG`, as `docker load` will tag it.
    pub repo_tag: String,
    /// Layers, bottom first, each with the line its history records.
    pub layers: Vec<(Layer, String)>,
    pub entrypoint: Vec<String>,
    pub cmd: Vec<String>,
    pub env: Vec<String>,
    /// `UID:GID`.
    pub user: String,
    pub port: u16,
    pub labels: BTreeMap<String, String>,
    pub healthcheck: Option<Healthcheck>,
}

/// What was written.
#[derive(Debug)]
pub struct BuiltImage {
    /// The manifest's digest: the image's identity in a registry.
    pub digest: String,
    pub config_digest: String,
    /// The archive's size in bytes.
    pub size: u64,
    /// Compressed layer sizes, bottom first.
    pub layer_sizes: Vec<u64>,
}

/// An image read back from an archive.
#[derive(Debug)]
pub struct Archive {
    /// The tag recorded in the index (`org.opencontainers.image.ref.name`).
    pub tag: Option<String>,
    pub manifest: Vec<u8>,
    pub manifest_digest: String,
    pub config: Descriptor,
    pub layers: Vec<Descriptor>,
    /// Every blob by digest, verified.
    pub blobs: BTreeMap<String, Vec<u8>>,
}

fn arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "arm" => "arm",
        "powerpc64" => "ppc64le",
        "s390x" => "s390x",
        "riscv64" => "riscv64",
        other => other,
    }
}

fn tag_of(repo_tag: &str) -> &str {
    let last = repo_tag.rsplit('/').next().unwrap_or(repo_tag);
    last.rsplit_once(':').map_or("latest", |(_, t)| t)
}

/// Writes the image to `out` (a temporary file beside it, synced, then renamed).
pub fn write_archive(spec: &ImageSpec, out: &Path) -> Result<BuiltImage> {
    let mut blobs: Vec<(String, Vec<u8>)> = Vec::new();
    let mut layer_descs = Vec::new();
    let mut diff_ids = Vec::new();
    let mut history = Vec::new();
    for (layer, created_by) in &spec.layers {
        let sealed = layer.seal()?;
        layer_descs.push(Descriptor {
            media_type: MEDIA_LAYER_GZIP.into(),
            digest: sealed.digest.clone(),
            size: sealed.gzip.len() as u64,
            annotations: BTreeMap::new(),
        });
        diff_ids.push(sealed.diff_id);
        history.push(History {
            created: EPOCH.into(),
            created_by: created_by.clone(),
        });
        blobs.push((sealed.digest, sealed.gzip));
    }
    let mut ports = BTreeMap::new();
    ports.insert(format!("{}/tcp", spec.port), serde_json::Map::new());
    let config = ImageConfig {
        created: EPOCH.into(),
        architecture: arch().into(),
        os: "linux".into(),
        config: RunConfig {
            user: spec.user.clone(),
            exposed_ports: ports,
            env: spec.env.clone(),
            entrypoint: spec.entrypoint.clone(),
            cmd: spec.cmd.clone(),
            working_dir: "/".into(),
            labels: spec.labels.clone(),
            stop_signal: "SIGTERM".into(),
            healthcheck: spec.healthcheck.clone(),
        },
        rootfs: RootFs {
            kind: "layers".into(),
            diff_ids,
        },
        history,
    };
    let config_bytes = json(&config);
    let config_desc = Descriptor {
        media_type: MEDIA_CONFIG.into(),
        digest: sha256_digest(&config_bytes),
        size: config_bytes.len() as u64,
        annotations: BTreeMap::new(),
    };
    blobs.push((config_desc.digest.clone(), config_bytes));
    let manifest = Manifest {
        schema_version: 2,
        media_type: MEDIA_MANIFEST.into(),
        config: config_desc.clone(),
        layers: layer_descs.clone(),
        annotations: BTreeMap::new(),
    };
    let manifest_bytes = json(&manifest);
    let manifest_digest = sha256_digest(&manifest_bytes);
    let mut annotations = BTreeMap::new();
    annotations.insert(
        "org.opencontainers.image.ref.name".to_string(),
        tag_of(&spec.repo_tag).to_string(),
    );
    annotations.insert(
        "io.containerd.image.name".to_string(),
        spec.repo_tag.clone(),
    );
    let index = Index {
        schema_version: 2,
        media_type: Some(MEDIA_INDEX.into()),
        manifests: vec![Descriptor {
            media_type: MEDIA_MANIFEST.into(),
            digest: manifest_digest.clone(),
            size: manifest_bytes.len() as u64,
            annotations,
        }],
    };
    blobs.push((manifest_digest.clone(), manifest_bytes));
    let docker = vec![DockerManifestEntry {
        config: blob_path(&config_desc.digest),
        repo_tags: vec![spec.repo_tag.clone()],
        layers: layer_descs.iter().map(|d| blob_path(&d.digest)).collect(),
    }];

    blobs.sort_by(|a, b| a.0.cmp(&b.0));
    blobs.dedup_by(|a, b| a.0 == b.0);
    let mut files: Vec<(String, Vec<u8>)> = vec![
        (
            "oci-layout".into(),
            br#"{"imageLayoutVersion":"1.0.0"}"#.to_vec(),
        ),
        ("index.json".into(), json(&index)),
        ("manifest.json".into(), json(&docker)),
    ];
    files.extend(blobs.into_iter().map(|(d, b)| (blob_path(&d), b)));

    let dir = match out.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let tmp = tempfile::NamedTempFile::new_in(dir).map_err(|e| Error::io(dir.display(), e))?;
    let mut w = std::io::BufWriter::new(tmp.as_file());
    {
        let mut b = tar::Builder::new(&mut w);
        for dir_name in ["blobs/", "blobs/sha256/"] {
            let mut h = header(0, tar::EntryType::Directory, 0o755);
            b.append_data(&mut h, dir_name, std::io::empty())
                .map_err(|e| Error::io(out.display(), e))?;
        }
        for (name, data) in &files {
            let mut h = header(data.len() as u64, tar::EntryType::Regular, 0o644);
            b.append_data(&mut h, name, data.as_slice())
                .map_err(|e| Error::io(out.display(), e))?;
        }
        b.finish().map_err(|e| Error::io(out.display(), e))?;
    }
    w.flush().map_err(|e| Error::io(out.display(), e))?;
    drop(w);
    tmp.as_file()
        .sync_all()
        .map_err(|e| Error::io(out.display(), e))?;
    let size = tmp
        .as_file()
        .metadata()
        .map_err(|e| Error::io(out.display(), e))?
        .len();
    tmp.persist(out)
        .map_err(|e| Error::io(out.display(), e.error))?;
    Ok(BuiltImage {
        digest: manifest_digest,
        config_digest: config_desc.digest,
        size,
        layer_sizes: layer_descs.iter().map(|d| d.size).collect(),
    })
}

fn header(size: u64, kind: tar::EntryType, mode: u32) -> tar::Header {
    let mut h = tar::Header::new_ustar();
    h.set_size(size);
    h.set_entry_type(kind);
    h.set_mode(mode);
    h.set_mtime(0);
    h.set_uid(0);
    h.set_gid(0);
    h
}

fn blob_path(digest: &str) -> String {
    format!("blobs/{}", digest.replacen(':', "/", 1))
}

fn json<T: serde::Serialize>(v: &T) -> Vec<u8> {
    serde_json::to_vec(v).expect("image documents serialize")
}

/// Reads an archive written by [`write_archive`] (or any OCI layout tar with one image).
pub fn read_archive(path: &Path) -> Result<Archive> {
    let file = std::fs::File::open(path).map_err(|e| Error::io(path.display(), e))?;
    let mut files: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    let mut a = tar::Archive::new(std::io::BufReader::new(file));
    let bad = |why: String| Error::BadArchive(format!("{}: {why}", path.display()));
    for e in a.entries().map_err(|e| bad(e.to_string()))? {
        let mut e = e.map_err(|e| bad(e.to_string()))?;
        if e.header().entry_type() != tar::EntryType::Regular {
            continue;
        }
        let name = e
            .path()
            .map_err(|e| bad(e.to_string()))?
            .to_string_lossy()
            .trim_start_matches("./")
            .to_string();
        let mut data = Vec::new();
        e.read_to_end(&mut data).map_err(|e| bad(e.to_string()))?;
        files.insert(name, data);
    }
    let index: Index = serde_json::from_slice(
        files
            .get("index.json")
            .ok_or_else(|| bad("no index.json (is it an OCI image archive?)".into()))?,
    )
    .map_err(|e| bad(format!("index.json: {e}")))?;
    let desc = match index.manifests.as_slice() {
        [one] => one,
        [] => return Err(bad("index.json lists no image".into())),
        _ => {
            return Err(bad(
                "index.json lists several images; push one at a time".into()
            ));
        }
    };
    let mut blobs = BTreeMap::new();
    let take = |d: &str| -> Result<Vec<u8>> {
        let bytes = files
            .get(&blob_path(d))
            .ok_or_else(|| bad(format!("blob {d} is missing")))?;
        if sha256_digest(bytes) != d {
            return Err(bad(format!("blob {d} does not match its digest")));
        }
        Ok(bytes.clone())
    };
    let manifest_bytes = take(&desc.digest)?;
    let manifest: Manifest = serde_json::from_slice(&manifest_bytes)
        .map_err(|e| bad(format!("manifest {}: {e}", desc.digest)))?;
    for d in std::iter::once(&manifest.config).chain(&manifest.layers) {
        blobs.insert(d.digest.clone(), take(&d.digest)?);
    }
    Ok(Archive {
        tag: desc
            .annotations
            .get("org.opencontainers.image.ref.name")
            .cloned(),
        manifest_digest: desc.digest.clone(),
        manifest: manifest_bytes,
        config: manifest.config,
        layers: manifest.layers,
        blobs,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(super) fn sample() -> ImageSpec {
        spec()
    }

    fn spec() -> ImageSpec {
        let mut l = Layer::new();
        l.file("/models/m/model.json", b"{}".to_vec(), 0o644);
        ImageSpec {
            repo_tag: "localhost:5000/team/iris:1".into(),
            layers: vec![(l, "model".into())],
            entrypoint: vec!["/usr/local/bin/mlship".into(), "serve".into()],
            cmd: vec![],
            env: vec![],
            user: "65532:65532".into(),
            port: 8080,
            labels: BTreeMap::new(),
            healthcheck: None,
        }
    }

    #[test]
    fn writes_then_reads_the_same_image_twice_over() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("a.tar"), dir.path().join("b.tar"));
        let built_a = write_archive(&spec(), &a).unwrap();
        let built_b = write_archive(&spec(), &b).unwrap();
        assert_eq!(built_a.digest, built_b.digest);
        assert_eq!(std::fs::read(&a).unwrap(), std::fs::read(&b).unwrap());
        let read = read_archive(&a).unwrap();
        assert_eq!(read.manifest_digest, built_a.digest);
        assert_eq!(read.tag.as_deref(), Some("1"));
        assert_eq!(read.layers.len(), 1);
        assert_eq!(read.blobs.len(), 2);
    }

    #[test]
    fn a_tampered_blob_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a.tar");
        write_archive(&spec(), &a).unwrap();
        let mut bytes = std::fs::read(&a).unwrap();
        // The model layer's gzip body sits after the headers; flip a byte inside the last blob.
        let at = bytes.windows(2).rposition(|w| w == [0x1f, 0x8b]).unwrap() + 12;
        bytes[at] ^= 0xff;
        std::fs::write(&a, &bytes).unwrap();
        let e = read_archive(&a).unwrap_err().to_string();
        assert!(e.contains("does not match its digest"), "{e}");
    }

    #[test]
    fn tags_default_to_latest() {
        assert_eq!(tag_of("iris"), "latest");
        assert_eq!(tag_of("localhost:5000/iris"), "latest");
        assert_eq!(tag_of("localhost:5000/iris:v2"), "v2");
    }
}

#[cfg(test)]
mod props {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        /// Any bytes, and a real archive with bytes flipped: an image or an error, never a panic.
        #[test]
        fn any_bytes_give_an_archive_or_an_error(
            junk in proptest::collection::vec(any::<u8>(), 0..2048),
            flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..6),
        ) {
            let dir = tempfile::tempdir().unwrap();
            let p = dir.path().join("x.tar");
            std::fs::write(&p, &junk).unwrap();
            let _ = read_archive(&p);
            let good = dir.path().join("good.tar");
            write_archive(&tests::sample(), &good).unwrap();
            let mut b = std::fs::read(&good).unwrap();
            for (i, v) in flips {
                let i = i.index(b.len());
                b[i] = v;
            }
            std::fs::write(&p, &b).unwrap();
            let _ = read_archive(&p);
        }
    }
}
