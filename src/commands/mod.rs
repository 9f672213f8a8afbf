//! The subcommands other than `run`: `stop`, `status` (and `status --channels`) and
//! `dry-run`.

pub mod channels;
pub mod dry_run;
pub mod status;
pub mod stop;
