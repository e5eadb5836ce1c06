//! A Dockerfile and its build context, for teams that build images with Docker: the mlship
//! binary, the model and its serve config, on a distroless base with glibc.

use crate::layout::{BINARY, CONFIG, MODELS, PORT, UID, health_command};
use crate::{File, ModelFacts};

/// The runtime base: glibc and libgcc, a nonroot user, nothing else.
pub const BASE: &str = "gcr.io/distroless/cc-debian12:nonroot";

/// Renders the Dockerfile for a context holding `mlship` (the binary),
/// `models/NAME/…` (the model's files), and `mlship.toml`; `model_path` is the path serve reads.
pub fn render(model: &ModelFacts, name: &str, model_path: &str) -> Vec<File> {
    let array = |v: &[String]| serde_json::to_string(v).expect("strings serialize");
    let health = array(&health_command());
    let inspect = array(&[BINARY.into(), "inspect".into(), model_path.into()]);
    let entrypoint = array(&[BINARY.into(), "serve".into()]);
    let cmd = array(&["--config".into(), CONFIG.into()]);
    let version = model
        .version
        .map_or_else(|| "file".to_string(), |v| v.to_string());
    let dockerfile = format!(
        r#"# syntax=docker/dockerfile:1
# Written by mlship dockerfile: serves {name} ({source}) on port {PORT}.
#   docker build -t {name}:{version} .
#   docker run --rm -p {PORT}:{PORT} {name}:{version}

# Stage 1 runs the binary on the runtime's own C library and loads the model with it, so a
# binary built against a newer glibc, or a model it cannot score, fails the build, not the deploy.
FROM {BASE} AS check
COPY --chmod=0755 mlship {BINARY}
COPY models/ {MODELS}/
RUN {inspect}

FROM {BASE}
LABEL org.opencontainers.image.title="{name}" \
      io.mlship.model.name="{name}" \
      io.mlship.model.version="{version}" \
      io.mlship.model.sha256="{sha}"
COPY --from=check {BINARY} {BINARY}
COPY --from=check {MODELS}/ {MODELS}/
COPY mlship.toml {CONFIG}
ENV MLSHIP_HOME=/tmp/mlship
USER {UID}:{UID}
EXPOSE {PORT}
HEALTHCHECK --interval=10s --timeout=3s --start-period=5s --retries=3 CMD {health}
ENTRYPOINT {entrypoint}
CMD {cmd}
"#,
        source = model.source,
        sha = model.sha256,
    );
    vec![("Dockerfile".into(), dockerfile)]
}
