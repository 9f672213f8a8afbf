//! Process exit codes.

/// Clean stop.
pub const OK: i32 = 0;
/// Runtime error (etcd unreachable at start, port in use, exclusive key held, ...).
pub const RUNTIME: i32 = 1;
/// Bad command line or configuration.
pub const USAGE: i32 = 2;
/// The session lease was lost and `common.session.exitOnLeaseLoss` is set.
pub const LEASE_LOST: i32 = 80;
