//! `mlship image build` and `mlship image push`: an image that serves one model, written without
//! a daemon, and its upload to a registry.

use std::collections::BTreeMap;
use std::io::{IsTerminal, Read};
use std::path::{Path, PathBuf};

use anyhow::Context;
use mlship_image::{Credentials, Healthcheck, ImageSpec, Layer, PushOptions, Target};
use serde_json::json;

use crate::cli::{ImageBuildArgs, ImageCommand, ImagePushArgs, InspectFormat};
use crate::config::ServeSection;
use crate::model_ref::{self, Packed};
use crate::settings::Settings;
use crate::user;

use mlship_deploy::layout::{BINARY, CONFIG, MODELS, PORT, UID};

const CA_BUNDLE: &str = "/etc/ssl/certs/ca-certificates.crt";

pub fn run(c: &ImageCommand, settings: &Settings) -> anyhow::Result<()> {
    match c {
        ImageCommand::Build(a) => build(a, settings),
        ImageCommand::Push(a) => push(a),
    }
}

/// The served name: the flag if given (checked), else the model's.
pub fn served_name(flag: Option<&str>, packed: &Packed) -> anyhow::Result<String> {
    match flag {
        None => Ok(packed.name.clone()),
        Some(n) => {
            let clean = model_ref::sanitize(n);
            if clean != n {
                return Err(user(
                    format!("{n:?} cannot name a served model and its container"),
                    format!("use lowercase letters, digits and '-', e.g. {clean}"),
                ));
            }
            Ok(clean)
        }
    }
}

/// The path `serve` is given inside the image.
pub fn model_path(name: &str, packed: &Packed) -> String {
    if packed.entry.is_empty() {
        format!("{MODELS}/{name}")
    } else {
        format!("{MODELS}/{name}/{}", packed.entry)
    }
}

/// The serve spec of a model baked into the image: `NAME=/models/NAME/…`.
pub fn baked_spec(name: &str, packed: &Packed) -> String {
    format!("{name}={}", model_path(name, packed))
}

/// An mlship.toml that serves `spec` (`NAME=MODEL`) on all interfaces, port 8080.
pub fn serve_toml(spec: &str) -> String {
    let section = ServeSection {
        host: Some("0.0.0.0".into()),
        port: Some(PORT),
        models: vec![spec.to_string()],
        ..ServeSection::default()
    };
    #[derive(serde::Serialize)]
    struct Doc {
        serve: ServeSection,
    }
    format!(
        "# Written by mlship: what this container serves.\n{}",
        toml::to_string(&Doc { serve: section }).expect("a serve section serializes")
    )
}

/// The executable to ship: the flag, else the running one.
pub fn binary(flag: Option<&PathBuf>) -> anyhow::Result<PathBuf> {
    match flag {
        Some(p) => Ok(p.clone()),
        None => std::env::current_exe().context("finding the mlship executable"),
    }
}

/// Fails early, naming the folder, when the output cannot be written there.
pub fn check_output_folder(out: &Path) -> anyhow::Result<()> {
    let dir = match out.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    if !dir.is_dir() {
        return Err(user(
            format!(
                "cannot write {}: no folder {}",
                out.display(),
                dir.display()
            ),
            "create the folder first, or pass another -o",
        ));
    }
    let probe = tempfile::NamedTempFile::new_in(dir).map_err(|e| {
        user(
            format!("cannot write into {}: {e}", dir.display()),
            "pick a folder you can write to with -o",
        )
    })?;
    drop(probe);
    Ok(())
}

fn build(a: &ImageBuildArgs, settings: &Settings) -> anyhow::Result<()> {
    check_output_folder(&a.output)?;
    let repo_tag = if a.tag.rsplit('/').next().is_some_and(|l| l.contains(':')) {
        a.tag.clone()
    } else {
        format!("{}:latest", a.tag)
    };
    Target::parse(&repo_tag).map_err(|e| {
        user(
            e.to_string(),
            "for example -t iris:1 or -t 123456789012.dkr.ecr.eu-west-1.amazonaws.com/iris:1",
        )
    })?;
    let packed = model_ref::pack(&a.model, settings)?;
    let name = served_name(a.name.as_deref(), &packed)?;
    let exe = binary(a.binary.as_ref())?;
    let started = std::time::Instant::now();

    let mut runtime = Layer::new();
    let exe_bytes = std::fs::read(&exe).with_context(|| format!("reading {}", exe.display()))?;
    runtime.file(BINARY, exe_bytes, 0o755);
    for (in_image, on_host) in mlship_image::linked_libraries(&exe)? {
        let bytes = std::fs::read(&on_host)
            .with_context(|| format!("reading the library {}", on_host.display()))?;
        runtime.file(&in_image, bytes, 0o755);
    }
    runtime.file(
        "/etc/passwd",
        format!(
            "root:x:0:0:root:/root:/sbin/nologin\nmlship:x:{UID}:{UID}:mlship:/tmp:/sbin/nologin\n"
        )
        .into_bytes(),
        0o644,
    );
    runtime.file(
        "/etc/group",
        format!("root:x:0:\nmlship:x:{UID}:\n").into_bytes(),
        0o644,
    );
    runtime.dir("/tmp", 0o1777);
    let mut env = vec![
        "PATH=/usr/local/bin".to_string(),
        "MLSHIP_HOME=/tmp/mlship".to_string(),
    ];
    // Serving from S3 or a TLS PostgreSQL needs the roots this machine trusts.
    if let Ok(ca) = std::fs::read(CA_BUNDLE) {
        runtime.file(CA_BUNDLE, ca, 0o644);
        env.push(format!("SSL_CERT_FILE={CA_BUNDLE}"));
    }

    let mut model = Layer::new();
    for (rel, bytes) in &packed.files {
        model.file(&format!("{MODELS}/{name}/{rel}"), bytes.clone(), 0o644);
    }
    model.file(
        CONFIG,
        serve_toml(&baked_spec(&name, &packed)).into_bytes(),
        0o644,
    );

    let version = packed
        .version
        .map_or_else(|| "file".to_string(), |v| v.to_string());
    let mut labels = BTreeMap::new();
    let mut label = |k: &str, v: &str| labels.insert(k.to_string(), v.to_string());
    label("org.opencontainers.image.title", &name);
    label(
        "org.opencontainers.image.description",
        &format!("mlship serving {name} ({})", packed.format),
    );
    label(
        "org.opencontainers.image.source",
        a.source.as_deref().unwrap_or(&packed.source),
    );
    label(
        "org.opencontainers.image.revision",
        a.revision
            .as_deref()
            .or(packed.git_commit.as_deref())
            .unwrap_or(&packed.sha256),
    );
    label("org.opencontainers.image.version", &version);
    label("org.opencontainers.image.base.name", "scratch");
    label("io.mlship.model.name", &name);
    label("io.mlship.model.version", &version);
    label("io.mlship.model.sha256", &packed.sha256);
    label("io.mlship.model.format", &packed.format);
    label("io.mlship.version", env!("CARGO_PKG_VERSION"));

    let spec = ImageSpec {
        repo_tag: repo_tag.clone(),
        layers: vec![
            (
                runtime,
                format!("mlship {} runtime", env!("CARGO_PKG_VERSION")),
            ),
            (model, format!("model {name} ({})", packed.source)),
        ],
        entrypoint: vec![BINARY.into(), "serve".into()],
        cmd: vec!["--config".into(), CONFIG.into()],
        env,
        user: format!("{UID}:{UID}"),
        port: PORT,
        labels,
        healthcheck: Some(Healthcheck {
            test: std::iter::once("CMD".to_string())
                .chain(mlship_deploy::layout::health_command())
                .collect(),
            interval_ns: 10_000_000_000,
            timeout_ns: 3_000_000_000,
            start_period_ns: 5_000_000_000,
            retries: 3,
        }),
    };
    let built = mlship_image::write_archive(&spec, &a.output)
        .with_context(|| format!("writing {}", a.output.display()))?;
    let secs = started.elapsed().as_secs_f64();
    match a.format {
        InspectFormat::Json => crate::outln!(
            "{}",
            serde_json::to_string_pretty(&json!({
                "archive": a.output.display().to_string(),
                "tag": repo_tag,
                "digest": built.digest,
                "config_digest": built.config_digest,
                "size": built.size,
                "layer_sizes": built.layer_sizes,
                "model": name,
                "seconds": secs,
            }))?
        ),
        InspectFormat::Table => {
            crate::outln!("wrote {} ({repo_tag})", a.output.display());
            crate::outln!("digest:  {}", built.digest);
            crate::outln!(
                "size:    {:.1} MiB (runtime layer {:.1} MiB, model layer {:.1} MiB)",
                mib(built.size),
                mib(built.layer_sizes[0]),
                mib(built.layer_sizes[1])
            );
            crate::outln!("serves:  {name} from {} on port {PORT}", packed.source);
            crate::outln!("load it: docker load -i {}", a.output.display());
        }
    }
    Ok(())
}

fn mib(b: u64) -> f64 {
    b as f64 / (1024.0 * 1024.0)
}

fn push(a: &ImagePushArgs) -> anyhow::Result<()> {
    let archive = mlship_image::read_archive(&a.archive).map_err(|e| {
        user(
            e.to_string(),
            "pass an archive written by `mlship image build`",
        )
    })?;
    let target = Target::parse(&a.target).map_err(|e| {
        user(
            e.to_string(),
            "for example localhost:5000/iris:1 or 123456789012.dkr.ecr.eu-west-1.amazonaws.com/iris:1",
        )
    })?;
    let credentials = credentials(a, &target.registry)?;
    let opts = PushOptions {
        credentials,
        plain_http: a.plain_http,
        chunk_size: a.chunk_size,
        progress: std::io::stderr().is_terminal(),
    };
    let report = mlship_image::push(&archive, &target, &opts)?;
    crate::outln!(
        "pushed {}/{}:{}@{}",
        target.registry,
        target.repository,
        target.tag,
        report.digest
    );
    crate::outln!(
        "blobs:  {} sent ({:.1} MiB), {} already there",
        report.uploaded.len(),
        mib(report.bytes),
        report.existing.len()
    );
    Ok(())
}

/// Credentials from the flags, the environment, or Docker's config file, in that order.
fn credentials(a: &ImagePushArgs, registry: &str) -> anyhow::Result<Option<Credentials>> {
    let username = a
        .username
        .clone()
        .or_else(|| std::env::var("MLSHIP_REGISTRY_USERNAME").ok());
    let password = if a.password_stdin {
        let mut p = String::new();
        std::io::stdin()
            .read_to_string(&mut p)
            .context("reading the password from standard input")?;
        Some(p.trim_end_matches(['\n', '\r']).to_string())
    } else {
        std::env::var("MLSHIP_REGISTRY_PASSWORD").ok()
    };
    match (username, password) {
        (Some(username), Some(password)) => Ok(Some(Credentials { username, password })),
        (Some(u), None) => Err(user(
            format!("a username ({u}) but no password"),
            "pipe the password in with --password-stdin, or set MLSHIP_REGISTRY_PASSWORD",
        )),
        (None, Some(_)) => Err(user(
            "a password but no username",
            "pass --username (for ECR: --username AWS)",
        )),
        (None, None) => Ok(docker_config(registry)),
    }
}

/// `auths.<registry>.auth` of `$DOCKER_CONFIG/config.json` or `~/.docker/config.json`, as
/// `docker login` leaves it.
fn docker_config(registry: &str) -> Option<Credentials> {
    use base64::Engine;
    let path = std::env::var_os("DOCKER_CONFIG")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".docker")))?
        .join("config.json");
    let doc: serde_json::Value = serde_json::from_slice(&std::fs::read(path).ok()?).ok()?;
    let auths = doc.get("auths")?.as_object()?;
    let entry = auths.iter().find_map(|(k, v)| {
        let host = k
            .trim_start_matches("https://")
            .trim_start_matches("http://")
            .split('/')
            .next()
            .unwrap_or("");
        let matches =
            host == registry || (registry == "registry-1.docker.io" && host == "index.docker.io");
        matches.then_some(v)
    })?;
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(entry.get("auth")?.as_str()?)
        .ok()?;
    let (u, p) = std::str::from_utf8(&decoded).ok()?.split_once(':')?;
    Some(Credentials {
        username: u.to_string(),
        password: p.to_string(),
    })
}
