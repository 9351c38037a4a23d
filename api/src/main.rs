//! The `gatehouse` binary: configuration, start-up and the HTTP server.

#![forbid(unsafe_code)]

/// Prints a line to standard output for the CLI commands. A reader that went away (`| head`)
/// ends the command quietly instead of a panic.
macro_rules! out {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        if let Err(error) = writeln!(std::io::stdout(), $($arg)*) {
            if error.kind() == std::io::ErrorKind::BrokenPipe {
                std::process::exit(0);
            }
            eprintln!("cannot write to standard output: {error}");
            std::process::exit(1);
        }
    }};
}

mod audit_cli;
mod auth;
mod config;
mod credentials_cli;
mod dto;
mod error;
mod metrics;
mod openapi;
mod outbound;
mod pages;
mod plugins_cli;
mod routes;
mod server;
mod state;

use clap::Parser;

use crate::config::{Cli, Command, Config, PluginsCommand, ProjectionsCommand};

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Openapi => {
            out!("{}", openapi::document().to_pretty_json()?);
            Ok(())
        }
        Command::Keygen => {
            out!("{}", gatehouse_core::crypto::SecretKey::generate().to_base64().as_str());
            Ok(())
        }
        Command::Serve(options) => {
            let config = Config::resolve(options, cli.config.as_deref())?;
            server::init_logging(&config);
            let runtime = runtime()?;
            let result = runtime.block_on(server::serve(config));
            // A plugin call that never returned still holds a blocking thread; do not wait
            // for it forever on the way out.
            runtime.shutdown_timeout(std::time::Duration::from_secs(5));
            result
        }
        Command::Plugins {
            command: PluginsCommand::Check(options),
        } => {
            let runtime = runtime()?;
            let outcome = runtime.block_on(plugins_cli::check(options));
            // A hanging plugin call keeps its thread: leave it behind.
            runtime.shutdown_timeout(std::time::Duration::ZERO);
            match outcome {
                Ok(line) => {
                    out!("ok: {line}");
                    Ok(())
                }
                Err(reason) => {
                    out!("refused: {reason}");
                    std::process::exit(1)
                }
            }
        }
        Command::Audit { command } => audit_cli::run(command, cli.config.as_deref()),
        Command::Credentials { command } => {
            runtime()?.block_on(credentials_cli::run(command, cli.config.as_deref()))
        }
        Command::Projections {
            command: ProjectionsCommand::Rebuild,
            options,
        } => {
            let config = Config::resolve(options, cli.config.as_deref())?;
            server::init_logging(&config);
            runtime()?.block_on(server::rebuild_projections(config))
        }
    }
}

/// A multi-threaded runtime: plugin calls block one of its blocking threads (given a 16 MiB
/// stack, see the plugin host) while their HTTP requests run on its workers.
fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_stack_size(16 * 1024 * 1024)
        .build()
}
