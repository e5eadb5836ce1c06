//! `mlship deploy render` and `mlship dockerfile`: files a user reviews, commits and applies.

use std::path::Path;

use mlship_deploy::layout::PORT;
use mlship_deploy::{ModelFacts, Plan};

use crate::cli::{DeployCommand, DeployRenderArgs, DeployTarget, DockerfileArgs};
use crate::commands::image::{self, baked_spec, model_path, serve_toml, served_name};
use crate::config::DeploySection;
use crate::model_ref::{self, Packed};
use crate::settings::Settings;
use crate::user;

pub fn run(c: &DeployCommand, settings: &Settings) -> anyhow::Result<()> {
    match c {
        DeployCommand::Render(a) => render(a, settings),
    }
}

fn facts(packed: &Packed) -> ModelFacts {
    ModelFacts {
        name: packed.name.clone(),
        version: packed.version,
        sha256: packed.sha256.clone(),
        source: packed.source.clone(),
    }
}

fn render(a: &DeployRenderArgs, settings: &Settings) -> anyhow::Result<()> {
    let (deploy, deployments) = match &a.config {
        Some(p) => (
            crate::config::read(p)?.deploy.unwrap_or_default(),
            crate::config::deployments_text(p)?,
        ),
        None => (DeploySection::default(), String::new()),
    };
    let Some(model) = &a.model else {
        return render_server(a, &deploy);
    };
    let packed = model_ref::pack(model, settings)?;
    let name = served_name(a.name.as_deref(), &packed)?;
    // With a registry secret and a models:/ reference, replicas load from the shared registry and
    // follow its aliases; otherwise they serve the model baked into the image.
    let shared = deploy.registry_secret.is_some() && model.starts_with("models:/");
    let spec = if shared {
        format!("{name}={model}")
    } else {
        baked_spec(&name, &packed)
    };
    let mut toml_text = serve_toml(&spec);
    if !deployments.trim().is_empty() {
        toml_text.push('\n');
        toml_text.push_str(&deployments);
    }
    let replicas = deploy.replicas.unwrap_or(2);
    let min_replicas = deploy.min_replicas.unwrap_or(replicas);
    let plan = Plan {
        name: name.clone(),
        image: a.image.clone().or(deploy.image.clone()),
        namespace: deploy.namespace.clone(),
        replicas,
        min_replicas,
        max_replicas: deploy.max_replicas.unwrap_or(min_replicas.max(10)),
        target_cpu_percent: deploy.target_cpu_percent.unwrap_or(70),
        cpu_millis: deploy.cpu_millis.unwrap_or(512),
        memory_mib: deploy.memory_mib.unwrap_or(1024),
        region: region(&deploy),
        registry_secret: deploy.registry_secret.clone(),
        canary_weight: deploy.canary_weight.unwrap_or(0),
        serve_toml: toml_text,
        serve_args: if shared {
            vec![
                "--host".into(),
                "0.0.0.0".into(),
                "--port".into(),
                PORT.to_string(),
                spec,
            ]
        } else {
            Vec::new()
        },
        subnets: deploy.subnets.clone().unwrap_or_default(),
        security_groups: deploy.security_groups.clone().unwrap_or_default(),
        model: facts(&packed),
    };
    let files = match a.target {
        DeployTarget::Kubernetes => mlship_deploy::kubernetes(&plan),
        DeployTarget::Ecs => mlship_deploy::ecs(&plan),
        DeployTarget::Terraform => mlship_deploy::terraform(&plan),
    }
    .map_err(refused)?;
    write_rendered(&a.output, files)
}

/// The tracking server's manifests: `[deploy]` sizes it and names its Secret.
fn render_server(a: &DeployRenderArgs, deploy: &DeploySection) -> anyhow::Result<()> {
    if a.target != DeployTarget::Kubernetes {
        return Err(user(
            "the tracking server renders for Kubernetes only",
            "pass --target kubernetes, or run `mlship server` on PostgreSQL and S3 yourself",
        ));
    }
    let plan = mlship_deploy::ServerPlan {
        name: a.name.clone().unwrap_or_else(|| "mlship-server".into()),
        image: a.image.clone().or(deploy.image.clone()),
        namespace: deploy.namespace.clone(),
        replicas: deploy.replicas.unwrap_or(2),
        cpu_millis: deploy.cpu_millis.unwrap_or(500),
        memory_mib: deploy.memory_mib.unwrap_or(256),
        region: region(deploy),
        secret: deploy
            .registry_secret
            .clone()
            .unwrap_or_else(|| "mlship-store".into()),
    };
    let files = mlship_deploy::kubernetes_server(&plan).map_err(refused)?;
    write_rendered(&a.output, files)
}

fn region(deploy: &DeploySection) -> String {
    deploy
        .region
        .clone()
        .or_else(|| std::env::var("AWS_REGION").ok())
        .unwrap_or_else(|| "us-east-1".into())
}

/// A plan the renderers refuse, with what to change.
fn refused(e: mlship_deploy::Error) -> anyhow::Error {
    let hint = match &e {
        mlship_deploy::Error::Invalid { field: "image", .. } => {
            "pass --image REGISTRY/REPO:TAG (what `mlship image push` pushed), or set image under [deploy]"
        }
        mlship_deploy::Error::Invalid { field: "name", .. } => "pass a shorter --name",
        mlship_deploy::Error::Invalid { .. } => "fix the value under [deploy] in mlship.toml",
    };
    user(e.to_string(), hint)
}

pub(crate) fn write_rendered(dir: &Path, files: Vec<mlship_deploy::File>) -> anyhow::Result<()> {
    let texts: Vec<(String, Vec<u8>)> = files
        .into_iter()
        .map(|(n, t)| (n, t.into_bytes()))
        .collect();
    write_files(dir, &texts)?;
    for (n, _) in &texts {
        crate::outln!("wrote {}", dir.join(n).display());
    }
    Ok(())
}

pub fn dockerfile(a: &DockerfileArgs, settings: &Settings) -> anyhow::Result<()> {
    let packed = model_ref::pack(&a.model, settings)?;
    let name = served_name(a.name.as_deref(), &packed)?;
    let exe = image::binary(a.binary.as_ref())?;
    let exe_bytes = std::fs::read(&exe).map_err(|e| {
        user(
            format!("cannot read {}: {e}", exe.display()),
            "pass --binary PATH to the mlship executable to ship",
        )
    })?;
    let mut files = vec![
        ("mlship".to_string(), exe_bytes),
        (
            "mlship.toml".to_string(),
            serve_toml(&baked_spec(&name, &packed)).into_bytes(),
        ),
    ];
    for (rel, bytes) in &packed.files {
        files.push((format!("models/{name}/{rel}"), bytes.clone()));
    }
    for (n, t) in mlship_deploy::dockerfile(&facts(&packed), &name, &model_path(&name, &packed)) {
        files.push((n, t.into_bytes()));
    }
    write_files(&a.output, &files)?;
    crate::outln!(
        "wrote {} and its context ({} files)",
        a.output.join("Dockerfile").display(),
        files.len() - 1
    );
    crate::outln!(
        "build:   docker build -t {name}:latest {}",
        a.output.display()
    );
    Ok(())
}

/// Writes each file atomically (temporary file, fsync, rename) under `dir`, creating folders.
pub(crate) fn write_files(dir: &Path, files: &[(String, Vec<u8>)]) -> anyhow::Result<()> {
    let unwritable = |e: std::io::Error, at: &Path| {
        user(
            format!("cannot write into {}: {e}", at.display()),
            "pick a folder you can write to with -o",
        )
    };
    std::fs::create_dir_all(dir).map_err(|e| unwritable(e, dir))?;
    for (name, bytes) in files {
        let path = dir.join(name);
        let parent = path.parent().unwrap_or(dir);
        std::fs::create_dir_all(parent).map_err(|e| unwritable(e, parent))?;
        let mut tmp = tempfile::NamedTempFile::new_in(parent).map_err(|e| unwritable(e, parent))?;
        std::io::Write::write_all(&mut tmp, bytes).map_err(|e| unwritable(e, parent))?;
        tmp.as_file()
            .sync_all()
            .map_err(|e| unwritable(e, parent))?;
        // Temporary files are private; these are for everyone to read (and the binary to run).
        let mode = if name == "mlship" { 0o755 } else { 0o644 };
        {
            use std::os::unix::fs::PermissionsExt;
            tmp.as_file()
                .set_permissions(std::fs::Permissions::from_mode(mode))
                .map_err(|e| unwritable(e, parent))?;
        }
        tmp.persist(&path)
            .map_err(|e| unwritable(e.error, parent))?;
    }
    Ok(())
}
