//! The command line: `milvus run|stop|dry-run|status`.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::role::Role;

/// Control plane of a Milvus cluster with coordinator high availability.
///
/// Each component runs as its own process (`milvus run rootcoord`, `milvus run proxy`,
/// ...). Coordinators register in etcd; with `<role>.enableActiveStandby=true` two or more
/// of them form an active-standby group and a standby takes over when the active stops.
#[derive(Debug, Parser)]
#[command(name = "milvus", version, about, long_about)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run one component in the foreground until a signal stops it.
    Run {
        /// rootcoord, querycoord, datacoord, indexcoord, proxy, querynode, datanode or indexnode.
        #[arg(value_parser = parse_role)]
        role: Role,
        /// Configuration file (default: $MILVUSCONF/milvus.yaml, ./milvus.yaml, ./configs/milvus.yaml).
        #[arg(long, value_name = "PATH")]
        config: Option<PathBuf>,
        /// Name for this process's pid file, so `milvus stop <role> --alias NAME` stops only it.
        #[arg(long, value_name = "NAME", value_parser = parse_alias)]
        alias: Option<String>,
    },
    /// Stop the processes of a role on this host (SIGTERM, then wait).
    Stop {
        /// The role to stop.
        #[arg(value_parser = parse_role)]
        role: Role,
        /// Stop only the process started with this alias.
        #[arg(long, value_name = "NAME", value_parser = parse_alias)]
        alias: Option<String>,
        /// How long to wait for the processes to exit, in seconds.
        #[arg(long, default_value_t = 30, value_name = "SECONDS")]
        timeout: u64,
    },
    /// Validate the configuration a role would run with and print every effective value
    /// with where it came from.
    DryRun {
        /// The role.
        #[arg(value_parser = parse_role)]
        role: Role,
        /// Configuration file.
        #[arg(long, value_name = "PATH")]
        config: Option<PathBuf>,
    },
    /// List every process registered in etcd: role, ServerID, address, ACTIVE/STANDBY.
    Status {
        /// Configuration file (for etcd.endpoints and the root path).
        #[arg(long, value_name = "PATH")]
        config: Option<PathBuf>,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
        /// List the virtual channels instead: which datanode consumes each, and how far
        /// it is persisted (checkpoint).
        #[arg(long)]
        channels: bool,
    },
}

fn parse_role(s: &str) -> Result<Role, String> {
    s.parse::<Role>().map_err(|e| e.to_string())
}

fn parse_alias(s: &str) -> Result<String, String> {
    if !s.is_empty()
        && s.len() <= 64
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        Ok(s.to_string())
    } else {
        Err(format!(
            "alias {s:?} is not valid: expected 1-64 letters, digits, '-' or '_'"
        ))
    }
}
