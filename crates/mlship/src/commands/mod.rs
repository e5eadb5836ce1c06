//! One module per command; `run` dispatches the parsed command line.

mod ci;
mod convert;
mod data;
mod deploy;
mod health;
mod image;
mod inspect;
pub(crate) mod models;
mod predict;
pub(crate) mod rollout;
mod schedule;
mod serve;
mod server;
mod tokens;
mod track;
mod tracking;

use crate::cli::{Cli, Command};
use crate::settings::Settings;

pub fn run(cli: Cli) -> anyhow::Result<()> {
    let settings = Settings::resolve(cli.home);
    match cli.command {
        Command::Predict(a) => predict::run(&a, &settings),
        Command::Inspect(a) => inspect::run(&a, &settings),
        Command::Models(m) => models::run(m, &settings),
        Command::Serve(a) => serve::run(&a, &settings),
        Command::Convert(a) => convert::run(&a, &settings),
        Command::Image(c) => image::run(&c, &settings),
        Command::Health(a) => health::run(&a),
        Command::Dockerfile(a) => deploy::dockerfile(&a, &settings),
        Command::Deploy(c) => deploy::run(&c, &settings),
        Command::Server(a) => server::run(&a, &settings),
        Command::Experiments(c) => tracking::experiments(c, &settings),
        Command::Runs(c) => tracking::runs(c, &settings),
        Command::Tokens(c) => tokens::run(c, &settings),
        Command::Rollout(c) => rollout::run(c, &settings),
        Command::Ci(c) => ci::run(c),
        Command::Data(c) => data::run(c),
        Command::Run {
            stage,
            force,
            pull,
            push,
            track,
            jobs,
        } => data::repro(stage.as_deref(), force, pull, push, track.as_deref(), &jobs),
        Command::Pipeline(c) => data::pipeline(c),
        Command::Metrics(c) => data::metrics(c),
        Command::Params(c) => data::params(c),
        Command::Schedule(c) => match c {
            crate::cli::ScheduleCommand::Add {
                name,
                cron,
                timezone,
                missed,
                timeout_secs,
                retries,
                config,
                command,
            } => schedule::add(
                &config,
                &name,
                &cron,
                &timezone,
                missed,
                timeout_secs,
                retries,
                &command,
            ),
            crate::cli::ScheduleCommand::List { config } => schedule::list(&config),
            crate::cli::ScheduleCommand::History { name, json } => {
                schedule::history(&settings, &name, json)
            }
        },
        Command::Scheduler {
            config,
            clock_start,
        } => schedule::scheduler(&settings, &config, clock_start.as_deref()),
        Command::Dag { mermaid, .. } => data::dag(mermaid),
    }
}
