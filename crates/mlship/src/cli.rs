//! The command line: clap definitions, turned into settings once and never read again.

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

#[derive(Debug, Parser)]
#[command(
    name = "mlship",
    version,
    about = "Take a model trained anywhere to a production API",
    propagate_version = true
)]
pub struct Cli {
    /// The registry's home folder (default: $MLSHIP_HOME, else ~/.mlship).
    #[arg(long, global = true)]
    pub home: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Score rows with a model and print the predictions.
    Predict(PredictArgs),
    /// Show a model's format, estimator, signature, classes and checksum.
    Inspect(InspectArgs),
    /// The model registry: versions, aliases, history, rollback.
    #[command(subcommand)]
    Models(ModelsCommand),
    /// Serve models over HTTP: MLflow /invocations, KServe V1 and the Open Inference Protocol.
    Serve(ServeArgs),
    /// Convert a model to another format; the copy is written only if it scores as the source.
    Convert(ConvertArgs),
    /// Container images: build one without a Docker daemon, push it to a registry.
    #[command(subcommand)]
    Image(ImageCommand),
    /// Write a Dockerfile and its build context, for teams that build with Docker.
    Dockerfile(DockerfileArgs),
    /// Deployment files: Kubernetes manifests, ECS task definition and service, Terraform.
    #[command(subcommand)]
    Deploy(DeployCommand),
    /// Ask a running server whether it is healthy (exit 0) or not (exit 1): the image's health check.
    Health(HealthArgs),
    /// The tracking server: MLflow's REST API (experiments, runs, artifacts, registry) for the
    /// stock `mlflow` client, on the registry's store.
    Server(ServerArgs),
    /// Tracking experiments: list, create, delete, restore.
    #[command(subcommand)]
    Experiments(ExperimentsCommand),
    /// Tracking runs: list, show, search with MLflow's filter grammar, compare, delete, restore.
    #[command(subcommand)]
    Runs(RunsCommand),
    /// Progressive delivery: a candidate version meets a rising share of traffic in steps, judged
    /// on the servers' own counts, then becomes production or is rolled back.
    #[command(subcommand)]
    Rollout(RolloutCommand),
    /// CI/CD: write a pipeline (GitHub Actions, GitLab, Jenkins) that checks, packages, deploys
    /// and rolls out the model, from mlship.toml's [ci].
    #[command(subcommand)]
    Ci(CiCommand),
    /// API tokens for `serve --auth` and `server --auth`: create, list, revoke.
    #[command(subcommand)]
    Tokens(TokensCommand),
    /// Data versioning that reads and writes DVC's files: add, status, push, pull, checkout, gc.
    #[command(subcommand)]
    Data(DataCommand),
    /// Run the pipeline of dvc.yaml as `dvc repro` does: stages whose command, deps or params
    /// changed, in DAG order, restored from the run cache when seen before.
    Run {
        /// One stage (and what it needs); default: every stage.
        stage: Option<String>,
        /// Run even the stages that did not change.
        #[arg(short, long)]
        force: bool,
        /// Fetch and check out the tracked data first (`mlship data pull`).
        #[arg(long)]
        pull: bool,
        /// Push the data and the pipeline's outputs to the remote afterwards (`mlship data push`).
        #[arg(long)]
        push: bool,
        /// Log each stage that ran as an MLflow run on this tracking server (default:
        /// $MLFLOW_TRACKING_URI): params, metrics, command, commit, deps as datasets by md5.
        #[arg(long, num_args = 0..=1, default_missing_value = "")]
        track: Option<String>,
        #[command(flatten)]
        jobs: JobsArg,
    },
    /// Hand the pipeline to a scheduler teams already run: Airflow, Argo Workflows, Kubernetes.
    #[command(subcommand)]
    Pipeline(PipelineCommand),
    /// The pipeline's metrics files: show them, or compare them with a git revision.
    #[command(subcommand)]
    Metrics(MetricsCommand),
    /// The pipeline's params: compare them with a git revision.
    #[command(subcommand)]
    Params(ParamsCommand),
    /// Schedules kept in mlship.toml: add, list, history.
    #[command(subcommand)]
    Schedule(ScheduleCommand),
    /// Run the schedules of mlship.toml until SIGTERM: on time, never overlapping themselves,
    /// each run recorded.
    Scheduler {
        #[arg(long, default_value = "mlship.toml")]
        config: PathBuf,
        /// Start the clock at this time (RFC 3339) instead of now; it then runs at the wall
        /// clock's speed (for trying a schedule out).
        #[arg(long)]
        clock_start: Option<String>,
    },
    /// The pipeline's graph: Graphviz (--dot, the default) or Mermaid.
    Dag {
        #[arg(long, conflicts_with = "dot")]
        mermaid: bool,
        #[arg(long)]
        dot: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum DataCommand {
    /// Make this git repository a DVC repository (`.dvc/`, `.dvcignore`), as `dvc init` does.
    Init {
        /// For a folder that is not a git repository.
        #[arg(long)]
        no_scm: bool,
    },
    /// Track files and folders: cache them, write `PATH.dvc`, ignore them in git.
    Add {
        #[arg(required = true)]
        paths: Vec<PathBuf>,
        #[command(flatten)]
        jobs: JobsArg,
    },
    /// What changed in the workspace, or (with -c) what the remote lacks.
    Status {
        /// Compare the cache with the remote instead.
        #[arg(short = 'c', long)]
        cloud: bool,
        /// The remote (default: the config's).
        #[arg(short, long)]
        remote: Option<String>,
        #[arg(long)]
        json: bool,
        /// Exit 1 when something changed, printing nothing.
        #[arg(short, long)]
        quiet: bool,
        #[command(flatten)]
        jobs: JobsArg,
    },
    /// Upload to the remote the objects it lacks.
    Push {
        #[arg(short, long)]
        remote: Option<String>,
        #[command(flatten)]
        jobs: JobsArg,
    },
    /// Download into the cache the objects it lacks.
    Fetch {
        #[arg(short, long)]
        remote: Option<String>,
        #[command(flatten)]
        jobs: JobsArg,
    },
    /// Fetch, then check out.
    Pull {
        #[arg(short, long)]
        remote: Option<String>,
        /// Overwrite workspace changes that are not in the cache.
        #[arg(short, long)]
        force: bool,
        #[command(flatten)]
        jobs: JobsArg,
    },
    /// Make the workspace match the `.dvc` files, from the cache.
    Checkout {
        /// Overwrite workspace changes that are not in the cache.
        #[arg(short, long)]
        force: bool,
        #[command(flatten)]
        jobs: JobsArg,
    },
    /// Remove cache objects that no `.dvc` file of the workspace names.
    Gc {
        /// Keep what the workspace uses (the only scope; required, as DVC requires a scope).
        #[arg(short, long)]
        workspace: bool,
        /// Remove from the remote too.
        #[arg(short, long)]
        cloud: bool,
        #[arg(short, long)]
        remote: Option<String>,
        /// Do not ask (required when not on a terminal).
        #[arg(short, long)]
        force: bool,
    },
    /// The tracked outputs with their md5, size and file count.
    Ls {
        #[arg(long)]
        json: bool,
    },
    /// Remotes in `.dvc/config`.
    #[command(subcommand)]
    Remote(DataRemoteCommand),
}

#[derive(Debug, Subcommand)]
pub enum MetricsCommand {
    /// Every metric of the metrics files dvc.yaml lists.
    Show {
        #[arg(long)]
        json: bool,
    },
    /// Metrics that differ between a git revision and the workspace, with the change.
    Diff {
        /// The revision to compare with.
        #[arg(default_value = "HEAD")]
        rev: String,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum ParamsCommand {
    /// Params that differ between a git revision and the workspace.
    Diff {
        #[arg(default_value = "HEAD")]
        rev: String,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum ScheduleCommand {
    /// Add a schedule: `mlship schedule add retrain --cron "0 3 * * *" -- mlship run`.
    Add {
        name: String,
        /// Five cron fields: minute hour day-of-month month day-of-week.
        #[arg(long)]
        cron: String,
        /// An IANA time zone.
        #[arg(long, default_value = "UTC")]
        timezone: String,
        /// A run that fell due while the scheduler was down: skip it, or run it once at start.
        #[arg(long, value_enum, default_value = "skip")]
        missed: crate::config::Missed,
        /// Stop a run that takes longer.
        #[arg(long)]
        timeout_secs: Option<u64>,
        /// Try a failed run again this many times.
        #[arg(long, default_value_t = 0)]
        retries: u32,
        #[arg(long, default_value = "mlship.toml")]
        config: PathBuf,
        /// The program and its arguments.
        #[arg(last = true, required = true)]
        command: Vec<String>,
    },
    /// The schedules and when each runs next.
    List {
        #[arg(long, default_value = "mlship.toml")]
        config: PathBuf,
    },
    /// A schedule's recorded runs: when, how long, exit code, attempts.
    History {
        name: String,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum PipelineCommand {
    /// Write the pipeline (one task per stage, the DAG's edges, the schedule) for an engine.
    Export {
        #[arg(long, value_enum)]
        target: PipelineTarget,
        /// The folder to write to.
        #[arg(short, long)]
        output: PathBuf,
        /// When to run, five cron fields (required for Argo and Kubernetes, unless mlship.toml
        /// has the schedule: see --schedule).
        #[arg(long)]
        cron: Option<String>,
        /// The schedule's time zone.
        #[arg(long, default_value = "UTC")]
        timezone: String,
        /// Take the cron and time zone of this `[[schedule]]` of mlship.toml (default, without
        /// --cron: the one schedule whose command is `mlship run …`, if there is exactly one).
        #[arg(long, conflicts_with = "cron")]
        schedule: Option<String>,
        /// The image with mlship and the project (Argo, Kubernetes; else `[deploy] image`).
        #[arg(long)]
        image: Option<String>,
        /// The pipeline's name (default: the repository folder's).
        #[arg(long)]
        name: Option<String>,
        #[arg(long)]
        namespace: Option<String>,
        /// Where the project is on Airflow's workers or in the image (default: here for Airflow,
        /// /project in an image).
        #[arg(long)]
        workdir: Option<String>,
        /// A Kubernetes Secret with the remote's credentials, for the pods.
        #[arg(long)]
        secret: Option<String>,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum PipelineTarget {
    Airflow,
    Argo,
    Kubernetes,
}

#[derive(Debug, Subcommand)]
pub enum DataRemoteCommand {
    /// Add a remote: a folder or s3://bucket/prefix.
    Add {
        name: String,
        url: String,
        /// Make it the default remote.
        #[arg(short, long)]
        default: bool,
        /// Write to `.dvc/config.local` (git-ignored), for credentials.
        #[arg(long)]
        local: bool,
    },
    /// Set one of a remote's settings (endpointurl, access_key_id, secret_access_key, region…).
    Modify {
        name: String,
        key: String,
        value: String,
        #[arg(long)]
        local: bool,
    },
    /// List the remotes.
    List,
}

#[derive(Debug, clap::Args)]
pub struct JobsArg {
    /// Threads for hashing and transfers (default: four per core, as DVC).
    #[arg(short, long)]
    pub jobs: Option<usize>,
}

#[derive(Debug, clap::Args)]
pub struct ServerArgs {
    /// The address to listen on.
    #[arg(long, default_value = "127.0.0.1")]
    pub host: String,
    /// 0 picks a free port, whose address is printed.
    #[arg(long, default_value_t = 5000)]
    pub port: u16,
    /// JSON request bodies larger than this get 413 (artifact uploads are streamed, not limited).
    #[arg(long, default_value_t = 16 << 20)]
    pub body_limit: usize,
    /// Require a token (`mlship tokens create`) on every route but /health and /version: `read`
    /// to read, `write` to log and register, `admin` to delete and move aliases.
    #[arg(long)]
    pub auth: bool,
    #[command(flatten)]
    pub tls: TlsArgs,
    #[command(flatten)]
    pub limits: LimitArgs,
    #[command(flatten)]
    pub trace: TraceArgs,
}

/// What a server gives one request and one client.
#[derive(Clone, Debug, clap::Args)]
pub struct LimitArgs {
    /// A request not answered within this many seconds gets 503 with `Retry-After` (default 60;
    /// 0: no limit; artifact transfers on the tracking server are not limited).
    #[arg(long)]
    pub request_timeout_secs: Option<u64>,
    /// With --auth: requests a second each token may make, in bursts of as many; past it 429
    /// with `Retry-After` (default 0: no limit).
    #[arg(long, requires = "auth")]
    pub rate_limit: Option<u32>,
}

impl LimitArgs {
    /// The time limit: the flag, else the config's, else 60 seconds (0: none).
    pub fn timeout(&self, configured: Option<u64>) -> Option<std::time::Duration> {
        let secs = self.request_timeout_secs.or(configured).unwrap_or(60);
        (secs > 0).then(|| std::time::Duration::from_secs(secs))
    }

    /// Requests a second per token: the flag, else the config's, else none.
    pub fn rate(&self, configured: Option<u32>) -> u32 {
        self.rate_limit.or(configured).unwrap_or(0)
    }
}

/// OpenTelemetry export.
#[derive(Clone, Debug, Default, clap::Args)]
pub struct TraceArgs {
    /// Send a span per request to this OpenTelemetry collector over OTLP/HTTP (JSON), such as
    /// http://localhost:4318; a request's `traceparent` header puts its span in the caller's trace.
    #[arg(long, env = "OTEL_EXPORTER_OTLP_ENDPOINT")]
    pub otlp_endpoint: Option<String>,
}

/// HTTPS: both files or neither.
#[derive(Clone, Debug, Default, clap::Args)]
pub struct TlsArgs {
    /// Serve HTTPS with this certificate chain (PEM); reloaded on SIGHUP or when the file changes.
    #[arg(long, requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// The certificate's private key (PEM).
    #[arg(long, requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum TokensCommand {
    /// Create a token; its secret is printed once and never stored.
    Create(TokenCreateArgs),
    /// List tokens (names, roles, when made and revoked; never secrets).
    List(OutputArgs),
    /// Revoke a token: servers refuse it within seconds.
    Revoke(TokenRevokeArgs),
}

#[derive(Debug, Subcommand)]
pub enum CiCommand {
    /// Write the pipeline file for one CI system.
    Render {
        #[arg(long)]
        target: CiTargetArg,
        /// The mlship.toml holding [ci] (and [deploy], which the deploy job renders).
        #[arg(long, default_value = "mlship.toml")]
        config: PathBuf,
        /// The repository's root: the file goes where the CI system reads it.
        #[arg(long, short = 'o', default_value = ".")]
        output: PathBuf,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum CiTargetArg {
    Github,
    Gitlab,
    Jenkins,
}

#[derive(Debug, Subcommand)]
pub enum RolloutCommand {
    /// Start a rollout: every `mlship serve` following models:/NAME@production moves with it.
    Start(RolloutStartArgs),
    /// Where the rollout is: its step, the weights, both versions' figures at this step.
    Status(NameArgs),
    /// End the rollout now with the candidate as production.
    Promote(RolloutEndArgs),
    /// End the rollout now: all traffic back to production.
    Abort(RolloutEndArgs),
    /// Wait until the rollout ends: exit 0 when promoted, 1 when rolled back or aborted.
    Watch(RolloutWatchArgs),
}

#[derive(Debug, clap::Args)]
pub struct RolloutStartArgs {
    /// The registered model.
    pub name: String,
    /// The version to roll out: models:/NAME/VERSION, models:/NAME@ALIAS, or a version number.
    #[arg(long)]
    pub candidate: String,
    /// The candidate's share of traffic at each step, in percent, rising to 100.
    #[arg(long, value_delimiter = ',', default_value = "5,25,50,100")]
    pub steps: Vec<u32>,
    /// How long each step lasts at least (10m, 30s, 1h).
    #[arg(long, default_value = "10m")]
    pub interval: String,
    /// Roll back when the candidate's error rate at a step is above this fraction.
    #[arg(long)]
    pub max_error_rate: Option<f64>,
    /// Roll back when the candidate's p99 latency at a step is above this many milliseconds.
    #[arg(long)]
    pub max_p99_ms: Option<f64>,
    /// The candidate's requests a step needs before it is judged and may advance.
    #[arg(long, default_value_t = 100)]
    pub min_requests: u64,
    /// Requests with the same value of this header meet the same version (one device, one
    /// version; a device on the candidate stays on it as the weight rises).
    #[arg(long)]
    pub sticky_header: Option<String>,
    #[command(flatten)]
    pub out: OutputArgs,
}

#[derive(Debug, clap::Args)]
pub struct RolloutEndArgs {
    pub name: String,
    /// Why, for the alias history.
    #[arg(long)]
    pub reason: Option<String>,
    #[command(flatten)]
    pub out: OutputArgs,
}

#[derive(Debug, clap::Args)]
pub struct RolloutWatchArgs {
    pub name: String,
    /// How often to look, in milliseconds.
    #[arg(long, default_value_t = 1000)]
    pub poll_ms: u64,
    /// Give up (exit 1) after this long (10m, 2h); default: wait for the end.
    #[arg(long)]
    pub timeout: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum RoleArg {
    Read,
    Write,
    Admin,
}

#[derive(Debug, clap::Args)]
pub struct TokenCreateArgs {
    /// The token's name: it is recorded as the author of what the token writes, and is the
    /// user name in HTTP basic authentication.
    pub name: String,
    #[arg(long, default_value = "read")]
    pub role: RoleArg,
    #[command(flatten)]
    pub out: OutputArgs,
}

#[derive(Debug, clap::Args)]
pub struct TokenRevokeArgs {
    pub name: String,
}

#[derive(Debug, Subcommand)]
pub enum ExperimentsCommand {
    /// List experiments with their run counts and last activity.
    List(ExperimentListArgs),
    /// Create an experiment.
    Create(ExperimentCreateArgs),
    /// Delete an experiment and its runs (they can be restored).
    Delete(ExperimentArgs),
    /// Restore a deleted experiment and its runs.
    Restore(ExperimentArgs),
}

#[derive(Debug, clap::Args)]
pub struct ExperimentListArgs {
    /// Which experiments: active (default), deleted or all.
    #[arg(long, default_value = "active")]
    pub view: ViewArg,
    #[command(flatten)]
    pub out: OutputArgs,
}

#[derive(Debug, clap::Args)]
pub struct ExperimentCreateArgs {
    pub name: String,
    /// Where its artifacts go (default: the server's artifact store).
    #[arg(long)]
    pub artifact_location: Option<String>,
    #[command(flatten)]
    pub out: OutputArgs,
}

#[derive(Debug, clap::Args)]
pub struct ExperimentArgs {
    /// The experiment's name or id.
    pub experiment: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ViewArg {
    Active,
    Deleted,
    All,
}

#[derive(Debug, Subcommand)]
pub enum RunsCommand {
    /// List the runs of an experiment, newest first.
    List(RunSearchArgs),
    /// Search runs with MLflow's filter grammar and order them.
    Search(RunSearchArgs),
    /// Show one run: info, params, latest metrics, tags, datasets, logged models.
    Show(RunShowArgs),
    /// Params and metrics of several runs side by side.
    Compare(RunCompareArgs),
    /// Delete a run (it can be restored).
    Delete(RunArgs),
    /// Restore a deleted run.
    Restore(RunArgs),
}

#[derive(Debug, clap::Args)]
pub struct RunSearchArgs {
    /// The experiment's name or id (repeat for several).
    #[arg(long, required = true)]
    pub experiment: Vec<String>,
    /// MLflow's filter, e.g. "metrics.rmse < 0.5 and params.alpha = '0.1'".
    #[arg(long, default_value = "")]
    pub filter: String,
    /// Order, e.g. "metrics.rmse" or "attributes.start_time DESC" (repeat for ties).
    #[arg(long)]
    pub order_by: Vec<String>,
    /// At most this many runs.
    #[arg(long, default_value_t = 100)]
    pub max_results: usize,
    /// Which runs: active (default), deleted or all.
    #[arg(long, default_value = "active")]
    pub view: ViewArg,
    #[command(flatten)]
    pub out: OutputArgs,
}

#[derive(Debug, clap::Args)]
pub struct RunShowArgs {
    pub run_id: String,
    #[command(flatten)]
    pub out: OutputArgs,
}

#[derive(Debug, clap::Args)]
pub struct RunCompareArgs {
    #[arg(required = true, num_args = 2..)]
    pub run_ids: Vec<String>,
    #[command(flatten)]
    pub out: OutputArgs,
}

#[derive(Debug, clap::Args)]
pub struct RunArgs {
    pub run_id: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ConvertTarget {
    /// mlship JSON (docs/mlship-json.md): lossless, readable with any JSON parser.
    Json,
    /// PMML 4.4.
    Pmml,
}

#[derive(Debug, clap::Args)]
pub struct ConvertArgs {
    /// A model file, an MLflow model directory or a models:/ URI.
    pub model: String,
    #[arg(long)]
    pub to: ConvertTarget,
    /// The file to write.
    #[arg(long, short = 'o')]
    pub output: PathBuf,
    /// Rows (CSV or JSON) to compare the copy with the source on (default: rows generated from
    /// the model's signature and encoders).
    #[arg(long)]
    pub input: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum ImageCommand {
    /// Write an OCI image (also a `docker load` archive) that serves MODEL on port 8080.
    Build(ImageBuildArgs),
    /// Push an image archive to a registry over the OCI distribution API.
    Push(ImagePushArgs),
}

#[derive(Debug, clap::Args)]
pub struct ImageBuildArgs {
    /// A model file, an MLflow model directory or a models:/ URI.
    pub model: String,
    /// The image's name and tag, `NAME[:TAG]` (TAG defaults to latest).
    #[arg(long, short = 't')]
    pub tag: String,
    /// The archive to write.
    #[arg(long, short = 'o')]
    pub output: PathBuf,
    /// The name the model is served under (default: its registered name, else the file's stem).
    #[arg(long)]
    pub name: Option<String>,
    /// The mlship executable to put in the image (default: this one).
    #[arg(long)]
    pub binary: Option<PathBuf>,
    /// The `org.opencontainers.image.source` label (default: the model reference).
    #[arg(long)]
    pub source: Option<String>,
    /// The `org.opencontainers.image.revision` label (default: the version's git commit, else the
    /// model's sha256).
    #[arg(long)]
    pub revision: Option<String>,
    /// Output: a table for people, or JSON for scripts.
    #[arg(long, default_value = "table")]
    pub format: InspectFormat,
}

#[derive(Debug, clap::Args)]
pub struct ImagePushArgs {
    /// An archive written by `mlship image build`.
    pub archive: PathBuf,
    /// `REGISTRY/REPO[:TAG]`, e.g. 123456789012.dkr.ecr.eu-west-1.amazonaws.com/iris:1.
    pub target: String,
    /// The registry user (else $MLSHIP_REGISTRY_USERNAME, else ~/.docker/config.json). ECR: AWS.
    #[arg(long)]
    pub username: Option<String>,
    /// Read the password from standard input (ECR: `aws ecr get-login-password | …`); else
    /// $MLSHIP_REGISTRY_PASSWORD.
    #[arg(long)]
    pub password_stdin: bool,
    /// Speak plain HTTP to the registry (loopback registries always are).
    #[arg(long)]
    pub plain_http: bool,
    /// Blobs larger than this many bytes are uploaded in chunks of this size.
    #[arg(long, default_value_t = 16 << 20)]
    pub chunk_size: usize,
}

#[derive(Debug, clap::Args)]
pub struct DockerfileArgs {
    /// A model file, an MLflow model directory or a models:/ URI.
    pub model: String,
    /// The folder to write the Dockerfile and its context into.
    #[arg(long, short = 'o')]
    pub output: PathBuf,
    /// The name the model is served under (default: its registered name, else the file's stem).
    #[arg(long)]
    pub name: Option<String>,
    /// The mlship executable to copy into the context (default: this one).
    #[arg(long)]
    pub binary: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum DeployCommand {
    /// Write deployment files to review, commit and apply.
    Render(DeployRenderArgs),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum DeployTarget {
    Kubernetes,
    Ecs,
    Terraform,
}

#[derive(Debug, clap::Args)]
pub struct DeployRenderArgs {
    #[arg(long)]
    pub target: DeployTarget,
    /// The model: a file or directory (served from the image) or a models:/ URI.
    #[arg(required_unless_present = "tracking_server")]
    pub model: Option<String>,
    /// Render the tracking server (`mlship server`, on the PostgreSQL and S3 its Secret names)
    /// instead of a model's service (Kubernetes only).
    #[arg(long, conflicts_with = "model")]
    pub tracking_server: bool,
    /// The image to run (default: the config's `[deploy] image`); Terraform uses its ECR repository.
    #[arg(long)]
    pub image: Option<String>,
    /// A mlship.toml: `[deploy]` sizes and wires the service; `[[deployment]]` goes along.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// The folder to write into.
    #[arg(long, short = 'o')]
    pub output: PathBuf,
    /// The name of the service (default: the model's name; `mlship-server` for the tracking server).
    #[arg(long)]
    pub name: Option<String>,
}

#[derive(Debug, clap::Args)]
pub struct HealthArgs {
    #[arg(long, default_value = "http://127.0.0.1:8080/health")]
    pub url: String,
    /// Seconds to wait for the answer.
    #[arg(long, default_value_t = 3)]
    pub timeout: u64,
}

#[derive(Clone, Debug, clap::Args)]
pub struct ServeArgs {
    /// `[NAME=]MODEL`: files, MLflow directories or models:/ URIs. None: every registered model
    /// (its `production` alias if set, else its latest version).
    pub models: Vec<String>,
    /// The address to listen on (default: the config's `[serve] host`, else 127.0.0.1).
    #[arg(long)]
    pub host: Option<String>,
    /// 0 picks a free port, whose address is printed (default: the config's `[serve] port`, else 8080).
    #[arg(long)]
    pub port: Option<u16>,
    /// Requests with a larger body get 413.
    #[arg(long, default_value_t = 32 << 20)]
    pub body_limit: usize,
    /// Single-row requests that arrive together are scored in one call of at most this many
    /// (1, the default: no batching; worth it for models slower to score than a request's overhead).
    #[arg(long, default_value_t = 1)]
    pub max_batch_size: usize,
    /// How long a batch may wait for more requests, in microseconds (0: only what is already queued).
    #[arg(long, default_value_t = 0)]
    pub max_batch_latency_us: u64,
    /// A mlship.toml: what to serve (`[serve]`) and deployments (weighted routes, sticky header,
    /// shadow, automatic rollback).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// How often to check the registry for moved aliases (0: never).
    #[arg(long, default_value_t = 1000)]
    pub reload_interval_ms: u64,
    /// Require a `read` token (`mlship tokens create`) on every route but the health probes.
    #[arg(long)]
    pub auth: bool,
    #[command(flatten)]
    pub tls: TlsArgs,
    #[command(flatten)]
    pub limits: LimitArgs,
    #[command(flatten)]
    pub trace: TraceArgs,
    /// Requests in flight per model; past it 503 with `Retry-After` at once (default 256; 0: no
    /// cap).
    #[arg(long)]
    pub max_concurrency_per_model: Option<usize>,
    /// Threads one large batch (4,096 rows or more) may take (default: every core, up to eight);
    /// 1 keeps each request on one core, leaving the others to concurrent requests.
    #[arg(long, value_parser = clap::builder::TypedValueParser::map(clap::value_parser!(u16).range(1..=256), usize::from))]
    pub scoring_threads: Option<usize>,
    /// `--exit-on-error=false`: a model that cannot be loaded is reported not ready (503 with the
    /// reason) while the others serve, instead of stopping the server.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    pub exit_on_error: bool,
}

#[derive(Debug, Subcommand)]
pub enum ModelsCommand {
    /// Register a model file or MLflow model directory as the next version of NAME.
    Register(RegisterArgs),
    /// List registered models.
    List(OutputArgs),
    /// Show a model: its aliases and versions.
    Show(NameArgs),
    /// List the versions of a model.
    Versions(NameArgs),
    /// Show the history of a model's aliases.
    History(NameArgs),
    /// Set or move an alias (or delete it with --delete).
    Alias(AliasArgs),
    /// Move an alias back to the version it held before its last move.
    Rollback(RollbackArgs),
    /// Delete a version (NAME/VERSION) or a whole model (NAME).
    Delete(DeleteArgs),
}

#[derive(Debug, clap::Args)]
pub struct OutputArgs {
    /// A table for people, or JSON for scripts.
    #[arg(long, default_value = "table")]
    pub output: InspectFormat,
}

#[derive(Debug, clap::Args)]
pub struct NameArgs {
    pub name: String,
    #[command(flatten)]
    pub out: OutputArgs,
}

#[derive(Debug, clap::Args)]
pub struct RegisterArgs {
    pub name: String,
    #[arg(help = mlship_formats::MODEL_ARG_HELP)]
    pub path: PathBuf,
    /// Point these aliases at the new version.
    #[arg(long)]
    pub alias: Vec<String>,
    /// key=value tags.
    #[arg(long, value_parser = parse_tag)]
    pub tag: Vec<(String, String)>,
    #[arg(long)]
    pub description: Option<String>,
    /// Rows (CSV or JSON) to store with the version, with their predictions.
    #[arg(long)]
    pub input_example: Option<PathBuf>,
    /// The predictions the example must give (`{"predictions": [...]}`, as `mlship predict` prints);
    /// registration is refused when they differ.
    #[arg(long, requires = "input_example")]
    pub expected: Option<PathBuf>,
    #[command(flatten)]
    pub out: OutputArgs,
}

fn parse_tag(s: &str) -> Result<(String, String), String> {
    s.split_once('=')
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .filter(|(k, _)| !k.is_empty())
        .ok_or_else(|| format!("{s:?} is not key=value"))
}

#[derive(Debug, clap::Args)]
pub struct AliasArgs {
    pub name: String,
    pub alias: String,
    /// The version to point the alias at.
    #[arg(value_name = "VERSION", required_unless_present = "delete")]
    pub to: Option<u32>,
    /// Delete the alias instead.
    #[arg(long, conflicts_with = "to")]
    pub delete: bool,
    /// Why, for the history.
    #[arg(long)]
    pub reason: Option<String>,
    #[command(flatten)]
    pub out: OutputArgs,
}

#[derive(Debug, clap::Args)]
pub struct RollbackArgs {
    pub name: String,
    pub alias: String,
    #[arg(long)]
    pub reason: Option<String>,
    #[command(flatten)]
    pub out: OutputArgs,
}

#[derive(Debug, clap::Args)]
pub struct DeleteArgs {
    /// NAME/VERSION, or NAME for the whole model.
    pub target: String,
    #[command(flatten)]
    pub out: OutputArgs,
}

pub use mlship_server::input::InputFormat;

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    Json,
    Csv,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum InspectFormat {
    Table,
    Json,
}

#[derive(Debug, clap::Args)]
pub struct PredictArgs {
    #[arg(help = mlship_formats::MODEL_ARG_HELP)]
    pub model: String,
    /// The rows to score: a file, or `-` for standard input.
    #[arg(long, short, default_value = "-")]
    pub input: String,
    /// The input's format: csv, json or ndjson (default: from the file extension, else CSV).
    #[arg(long, value_parser = parse_input_format)]
    pub input_format: Option<InputFormat>,
    /// How to print the predictions.
    #[arg(long, default_value = "json")]
    pub output: OutputFormat,
}

#[derive(Debug, clap::Args)]
pub struct InspectArgs {
    #[arg(help = mlship_formats::MODEL_ARG_HELP)]
    pub model: String,
    /// How to print the description.
    #[arg(long, default_value = "table")]
    pub output: InspectFormat,
}

fn parse_input_format(s: &str) -> Result<InputFormat, String> {
    match s {
        "csv" => Ok(InputFormat::Csv),
        "json" => Ok(InputFormat::Json),
        "ndjson" | "jsonl" => Ok(InputFormat::Ndjson),
        other => Err(format!("{other:?} is not one of csv, json, ndjson")),
    }
}

impl PredictArgs {
    /// The input format: the flag, else the file extension, else CSV.
    pub fn input_format(&self) -> InputFormat {
        if let Some(f) = self.input_format {
            return f;
        }
        match PathBuf::from(&self.input)
            .extension()
            .and_then(|e| e.to_str())
        {
            Some("json") => InputFormat::Json,
            Some("ndjson" | "jsonl") => InputFormat::Ndjson,
            _ => InputFormat::Csv,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A limit comes from the flag, else from mlship.toml, else the default.
    #[test]
    fn limits_take_the_flag_then_the_config_then_the_default() {
        let none = LimitArgs {
            request_timeout_secs: None,
            rate_limit: None,
        };
        let secs = |d: Option<std::time::Duration>| d.map(|d| d.as_secs());
        assert_eq!(secs(none.timeout(None)), Some(60));
        assert_eq!(secs(none.timeout(Some(5))), Some(5));
        assert_eq!(secs(none.timeout(Some(0))), None);
        let flag = LimitArgs {
            request_timeout_secs: Some(7),
            rate_limit: Some(3),
        };
        assert_eq!(secs(flag.timeout(Some(5))), Some(7));
        assert_eq!(
            (none.rate(Some(9)), flag.rate(Some(9)), none.rate(None)),
            (9, 3, 0)
        );
    }
}
