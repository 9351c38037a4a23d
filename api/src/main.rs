//! The `gatehouse` binary: configuration, start-up and the HTTP server.

#![forbid(unsafe_code)]

mod auth;
mod config;
mod dto;
mod error;
mod metrics;
mod openapi;
mod outbound;
mod pages;
mod routes;
mod server;
mod state;

use clap::Parser;

use crate::config::{Cli, Command, Config, ProjectionsCommand};

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Openapi => {
            println!("{}", openapi::document().to_pretty_json()?);
            Ok(())
        }
        Command::Keygen => {
            println!("{}", gatehouse_core::crypto::SecretKey::generate().to_base64().as_str());
            Ok(())
        }
        Command::Serve(options) => {
            let config = Config::resolve(options, cli.config.as_deref())?;
            server::init_logging(&config);
            runtime()?.block_on(server::serve(config))
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
