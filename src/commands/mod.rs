//! The subcommands other than `run`: `stop`, `status` and `dry-run`.

pub mod dry_run;
pub mod status;
pub mod stop;
