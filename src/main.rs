//! `milvus`: parse the command line, load the configuration, start logging, dispatch.

use std::time::Duration;

use clap::Parser;

use milvus::cli::{Cli, Command};
use milvus::config::{self, Loaded};
use milvus::{commands, exit, logging, process};

fn main() {
    let cli = Cli::parse();
    let code = match cli.command {
        Command::Run {
            role,
            config,
            alias,
        } => {
            let loaded = load_or_exit(config.as_deref());
            logging::init(loaded.config.log_level);
            log::info!(role = role.name(), pid = std::process::id(), version = env!("CARGO_PKG_VERSION");
                "starting {}", role.display_name());
            match &loaded.file {
                Some(p) => log::info!(path:% = p.display(); "loaded config file"),
                None => log::info!("no config file found, using built-in defaults and environment"),
            }
            if let Some(p) = &loaded.overlay {
                log::info!(path:% = p.display(); "loaded config file over it");
            }
            for key in &loaded.ignored {
                log::debug!(key = key.as_str(); "config key not used by this binary");
            }
            process::run(role, loaded, alias)
        }
        Command::Stop {
            role,
            alias,
            timeout,
        } => commands::stop::run(role, alias.as_deref(), Duration::from_secs(timeout)),
        Command::DryRun { role, config } => {
            let loaded = load_or_exit(config.as_deref());
            match commands::dry_run::print(role, &loaded, &mut std::io::stdout()) {
                Ok(()) => exit::OK,
                Err(_) => exit::RUNTIME,
            }
        }
        Command::Status {
            config,
            json,
            channels,
        } => {
            let loaded = load_or_exit(config.as_deref());
            if channels {
                commands::channels::run(&loaded.config, json)
            } else {
                commands::status::run(&loaded.config, json)
            }
        }
    };
    std::process::exit(code);
}

fn load_or_exit(path: Option<&std::path::Path>) -> Loaded {
    config::load_for_process(path).unwrap_or_else(|e| {
        eprintln!("milvus: config error: {e}");
        std::process::exit(exit::USAGE);
    })
}
