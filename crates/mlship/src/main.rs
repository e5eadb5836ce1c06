//! The `mlship` binary: parses the command line once into settings, then runs one command.

mod cli;
mod commands;
mod config;
mod cron;
mod model_ref;
mod net;
mod output;
mod settings;
mod timefmt;

use std::process::ExitCode;

use clap::Parser;

/// Writes to standard output; a closed pipe (`mlship … | head`) ends the output quietly.
pub fn emit(s: &str) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    if let Err(e) = out.write_all(s.as_bytes()).and_then(|()| out.flush()) {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            std::process::exit(0);
        }
    }
}

/// `print!` through [`emit`].
#[macro_export]
macro_rules! out {
    ($($t:tt)*) => { $crate::emit(&format!($($t)*)) };
}

/// `println!` through [`emit`].
#[macro_export]
macro_rules! outln {
    ($($t:tt)*) => { $crate::emit(&format!("{}\n", format!($($t)*))) };
}

/// An error the user can fix (bad input, unsupported model): exit code 1 with a hint.
#[derive(Debug)]
pub struct UserError {
    pub message: String,
    pub hint: Option<String>,
}

impl std::fmt::Display for UserError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for UserError {}

/// Exit 1 with nothing printed (`status --quiet` when something changed).
#[derive(Debug)]
pub struct QuietExit;

impl std::fmt::Display for QuietExit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("changes found")
    }
}

impl std::error::Error for QuietExit {}

pub fn quiet_exit() -> anyhow::Error {
    anyhow::Error::new(QuietExit)
}

/// Builds a user error with a hint.
pub fn user(message: impl Into<String>, hint: impl Into<String>) -> anyhow::Error {
    anyhow::Error::new(UserError {
        message: message.into(),
        hint: Some(hint.into()),
    })
}

fn main() -> ExitCode {
    tune_allocator();
    let cli = cli::Cli::parse();
    let otlp = match &cli.command {
        cli::Command::Serve(a) => a.trace.otlp_endpoint.clone(),
        cli::Command::Server(a) => a.trace.otlp_endpoint.clone(),
        _ => None,
    };
    // Held until the command ends: dropping it sends the spans still queued.
    let _export = match init_logs(otlp.as_deref()) {
        Ok(export) => export,
        Err(e) => {
            report(&e);
            return ExitCode::from(1);
        }
    };
    std::panic::set_hook(Box::new(|info| {
        eprintln!("error: internal error: {info}");
        eprintln!("hint: this is a bug in mlship; please report it with the command you ran");
    }));
    let result = std::panic::catch_unwind(|| commands::run(cli));
    match result {
        Ok(Ok(())) => ExitCode::SUCCESS,
        Ok(Err(e)) if is_internal(&e) => {
            eprintln!("error: internal error: {e:#}");
            eprintln!("hint: this is a bug in mlship; please report it with the command you ran");
            ExitCode::from(2)
        }
        Ok(Err(e)) => {
            report(&e);
            ExitCode::from(1)
        }
        Err(_) => ExitCode::from(2),
    }
}

/// Whether an error is mlship's own fault rather than the user's or the environment's: a model
/// the loader accepted (its checks passed) that then proves inconsistent while scoring. The same
/// error met while loading is the file's fault.
fn is_internal(e: &anyhow::Error) -> bool {
    let loading = e
        .chain()
        .any(|c| c.downcast_ref::<mlship_formats::Error>().is_some());
    !loading
        && e.chain().any(|c| {
            matches!(
                c.downcast_ref::<mlship_model::Error>(),
                Some(mlship_model::Error::Invalid(_))
            )
        })
}

/// glibc's allocator keeps what a thread freed in that thread's arena, up to eight per core, and
/// after a large free raises the size it hands to mmap: a server that once answered a big page
/// from several threads kept tens of megabytes it no longer used. Two arenas and a fixed mmap
/// threshold (large buffers go back to the system when freed) keep the resident set near the
/// working set.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(unsafe_code)]
fn tune_allocator() {
    // SAFETY: mallopt only sets two of the allocator's parameters; it is called first thing in
    // main, before any other thread exists, as glibc's manual asks.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 2);
        libc::mallopt(libc::M_MMAP_THRESHOLD, 256 * 1024);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn tune_allocator() {}

/// Logs go to stderr, filtered by `RUST_LOG` (default `info`): one JSON object per line when
/// stderr is not a terminal (a container's log collector), compact text when it is. With a
/// collector's endpoint, request spans also go to it over OTLP (whatever `RUST_LOG` says).
fn init_logs(otlp: Option<&str>) -> anyhow::Result<Option<mlship_server::otel::Export>> {
    use std::io::IsTerminal;
    use tracing_subscriber::prelude::*;
    type Registry = tracing_subscriber::Registry;
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let logs = tracing_subscriber::fmt::layer().with_writer(std::io::stderr);
    let logs: Box<dyn tracing_subscriber::Layer<Registry> + Send + Sync> =
        if std::io::stderr().is_terminal() {
            logs.compact().boxed()
        } else {
            logs.json()
                .flatten_event(true)
                .with_current_span(false)
                .with_span_list(false)
                .boxed()
        };
    let (spans, export) = match otlp {
        None => (None, None),
        Some(endpoint) => {
            let (layer, export) = mlship_server::otel::export(endpoint).map_err(|e| {
                user(
                    format!("--otlp-endpoint: {e}"),
                    "give the collector's OTLP/HTTP base URL, such as http://localhost:4318",
                )
            })?;
            (Some(layer), Some(export))
        }
    };
    tracing_subscriber::registry()
        .with(logs.with_filter(filter))
        .with(spans)
        .init();
    Ok(export)
}

/// A server listening beyond this machine without `--auth` lets anyone who reaches it score,
/// and on the tracking server, write: say so.
pub fn warn_if_open(host: &str) {
    let loopback = host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    if !loopback {
        tracing::warn!(
            host,
            "listening beyond this machine without --auth: anyone who reaches the port can use every route"
        );
    }
}

/// For the servers, which answer a panic in a request with a 500 and go on: the panic is a log
/// event, not the command's last words.
pub fn log_panics() {
    std::panic::set_hook(Box::new(|info| {
        tracing::error!(panic = %info, "panic");
    }));
}

/// Prints an error and its hint, as every command does on failure.
pub fn report(e: &anyhow::Error) {
    if e.downcast_ref::<QuietExit>().is_some() {
        return;
    }
    let mut msg = format!("{e}");
    for cause in e.chain().skip(1) {
        // An error that prints its source already is not followed by it again.
        let cause = cause.to_string();
        if !msg.ends_with(&cause) {
            msg.push_str(&format!(": {cause}"));
        }
    }
    eprintln!("error: {msg}");
    let hint = e
        .chain()
        .find_map(|c| {
            c.downcast_ref::<UserError>()
                .and_then(|u| u.hint.clone())
                .or_else(|| {
                    c.downcast_ref::<mlship_server::input::InputError>()
                        .map(|i| i.hint.clone())
                })
        })
        .or_else(|| default_hint(e));
    if let Some(h) = hint {
        eprintln!("hint: {h}");
    }
}

fn default_hint(e: &anyhow::Error) -> Option<String> {
    use mlship_formats::Error as F;
    let full = e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::StorageFull)
            || c.downcast_ref::<mlship_registry::Error>()
                .is_some_and(mlship_registry::Error::is_disk_full)
    });
    if full {
        return Some("free some space on that disk, then run the command again".into());
    }
    for c in e.chain() {
        if let Some(f) = c.downcast_ref::<F>() {
            return Some(match f {
                F::ForbiddenGlobal { .. } => "mlship loads only scikit-learn estimators and the numpy data they hold; a file that references other code may be malicious".into(),
                F::UnsupportedEstimator { .. } | F::Unsupported(_) => "see `mlship inspect --help` and the README's list of supported estimators".into(),
                F::UnknownFormat(_) => format!("pass a file of one of these formats: {}; or an MLflow model directory", mlship_formats::READ),
                F::Malformed { .. } | F::Truncated { .. } => "the file is damaged or not a model; re-save it from Python".into(),
                F::Limit(_) => "the file exceeds a safety limit of the loader".into(),
                F::Model(_) => "the model file is inconsistent; re-save it from Python".into(),
            });
        }
        if let Some(r) = c.downcast_ref::<mlship_registry::Error>() {
            use mlship_registry::Error as R;
            return Some(match r {
                R::UnknownModel { .. } => "`mlship models list` shows the registered models".into(),
                R::UnknownVersion { .. } | R::UnknownAlias { .. } => "`mlship models show NAME` shows its versions and aliases".into(),
                R::VersionInUse { .. } => "`mlship models alias NAME ALIAS VERSION` moves an alias; `--delete` removes it".into(),
                R::NothingToRollBack { .. } => "`mlship models history NAME` shows where the alias has been".into(),
                R::InvalidName { .. } | R::BadReference(_) => "names are 1-128 characters without slashes, @, spaces or control characters".into(),
                R::Corrupt { .. } | R::MissingArtifact(_) => "the artifact store was changed behind mlship's back; register the model again".into(),
                R::NotFound(_) => "`mlship experiments list` and `mlship runs list` show what exists".into(),
                R::AlreadyExists(_) => "pick another name, or use the existing one".into(),
                R::Invalid(_) => "the message says which value was refused and why".into(),
                R::Conflict(_) => "the message says what is in the way".into(),
                R::Store { .. } | R::Io { .. } | R::Sql(_) | R::Unavailable(_) => "check MLSHIP_STORE, MLSHIP_ARTIFACTS or --home, and that the store is reachable".into(),
            });
        }
        if let Some(i) = c.downcast_ref::<mlship_image::Error>() {
            use mlship_image::Error as I;
            return Some(match i {
                I::Unauthorized { .. } => "pass --username and --password-stdin (ECR: `aws ecr get-login-password | mlship image push --username AWS --password-stdin …`), or `docker login` first".into(),
                I::Unreachable { .. } => "check the registry's address and that it is up; --plain-http for a registry without TLS".into(),
                I::Registry { .. } => "the registry's message says why it refused".into(),
                I::BadArchive(_) => "pass an archive written by `mlship image build`".into(),
                I::BadReference { .. } => "for example localhost:5000/iris:1 or 123456789012.dkr.ecr.eu-west-1.amazonaws.com/iris:1".into(),
                I::Libraries { .. } => "image build lists the libraries mlship links with ldd; pass --binary with a static build otherwise".into(),
                I::Io { .. } => "check the path and that its folder is writable".into(),
            });
        }
        if let Some(m) = c.downcast_ref::<mlship_model::Error>() {
            return Some(match m {
                mlship_model::Error::MissingColumn { .. }
                | mlship_model::Error::ColumnCount { .. } => {
                    "run `mlship inspect MODEL` to see the columns the model takes".into()
                }
                _ => "check the input against `mlship inspect MODEL`".into(),
            });
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_inconsistent_model_is_the_file_fault_at_load_and_ours_when_scoring() {
        let invalid = || mlship_model::Error::Invalid("a step is 3 wide, the next reads 4".into());
        let scoring = anyhow::Error::new(invalid()).context("scoring");
        assert!(is_internal(&scoring));
        let loading =
            anyhow::Error::new(mlship_formats::Error::Model(invalid())).context("loading");
        assert!(!is_internal(&loading));
        let user = anyhow::Error::new(mlship_model::Error::ColumnCount {
            expected: 3,
            found: 2,
        });
        assert!(!is_internal(&user));
    }
}
