//! What every role's code gets from its process ([`Context`]): below both `process`
//! (which makes it) and `roles` (which use it), so neither imports the other's internals
//! through it.

use std::sync::Arc;

use crate::config::Config;
use crate::etcd::Etcd;
use crate::role::Role;
use crate::session::state::ComponentState;
use crate::session::Keys;

/// What every role's code gets: its configuration, etcd, key names and shared state.
pub struct Context {
    /// The role.
    pub role: Role,
    /// The configuration.
    pub config: Config,
    /// etcd.
    pub etcd: Etcd,
    /// Session key names.
    pub keys: Keys,
    /// State shown on `/status`.
    pub state: Arc<ComponentState>,
    /// Advertised `host:port`.
    pub address: String,
}
