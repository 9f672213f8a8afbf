//! Sessions in etcd, wire-compatible with Milvus 2.2.3, and the active-standby machinery
//! every coordinator shares.
//!
//! Layout under the meta root (`by-dev/meta`):
//! - `session/id`: the ServerID counter;
//! - `session/<role>-<ServerID>`: one per process (workers, HA coordinators);
//! - `session/<role>`: the exclusive / ACTIVE key of a coordinator.

pub mod clock;
pub mod discovery;
pub mod election;
pub mod fenced;
pub mod lease;
pub mod liveness;
pub mod reaper;
pub mod state;

use std::sync::Arc;
use std::time::Duration;

use etcd_client::{Compare, CompareOp, PutOptions, Txn, TxnOp};
use serde::{Deserialize, Serialize};
use tokio::task::JoinHandle;

use crate::etcd::{Etcd, EtcdError};
use crate::role::Role;
use lease::Lease;

/// The Milvus version a session advertises in `Version`: the release whose session
/// layout and protocol this binary follows.
pub const MILVUS_VERSION: &str = "2.2.16";

/// The JSON value of a session key (Milvus's field names).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SessionValue {
    /// Unique per process start.
    #[serde(rename = "ServerID")]
    pub server_id: i64,
    /// The role name.
    #[serde(rename = "ServerName")]
    pub server_name: String,
    /// `host:port` where the process serves.
    #[serde(rename = "Address")]
    pub address: String,
    /// True for coordinators.
    #[serde(rename = "Exclusive", default)]
    pub exclusive: bool,
    /// True while shutting down.
    #[serde(rename = "Stopping", default)]
    pub stopping: bool,
    /// Milvus's kill flag: true, as Milvus 2.2.16 registers every component.
    #[serde(rename = "TriggerKill", default)]
    pub trigger_kill: bool,
    /// The Milvus version whose protocol this binary speaks ([`MILVUS_VERSION`]).
    #[serde(rename = "Version", default)]
    pub version: String,
    /// This project's own version (Milvus ignores the field).
    #[serde(rename = "ProjectVersion", default)]
    pub project_version: String,
    /// The lease the keys are attached to.
    #[serde(rename = "LeaseID", default)]
    pub lease_id: Option<i64>,
    /// Host name of the machine.
    #[serde(rename = "HostName", default)]
    pub host_name: String,
    /// Process id on that host (0 when written by Milvus itself).
    #[serde(rename = "Pid", default)]
    pub pid: u32,
}

impl SessionValue {
    /// Parses a session value read from `key`.
    pub fn parse(key: &str, bytes: &[u8]) -> Result<Self, EtcdError> {
        serde_json::from_slice(bytes).map_err(|e| EtcdError::Data {
            key: key.to_string(),
            why: format!("not a session value: {e}"),
        })
    }

    /// The JSON text.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("session value serializes")
    }
}

/// Key names under a meta root.
#[derive(Debug, Clone)]
pub struct Keys {
    meta_root: String,
}

impl Keys {
    /// Keys under `meta_root` (e.g. `by-dev/meta`).
    pub fn new(meta_root: impl Into<String>) -> Self {
        Keys {
            meta_root: meta_root.into(),
        }
    }

    /// `<meta>/session/` (prefix of every session key).
    pub fn session_prefix(&self) -> String {
        format!("{}/session/", self.meta_root)
    }

    /// `<meta>/session/id`.
    pub fn server_id_counter(&self) -> String {
        format!("{}/session/id", self.meta_root)
    }

    /// `<meta>/session/<role>`: exclusive / ACTIVE key.
    pub fn active(&self, role: Role) -> String {
        format!("{}/session/{}", self.meta_root, role.name())
    }

    /// `<meta>/session/<role>-<id>`.
    pub fn per_server(&self, role: Role, server_id: i64) -> String {
        format!("{}/session/{}-{}", self.meta_root, role.name(), server_id)
    }
}

/// A registered process: a ServerID and a kept-alive lease.
pub struct Session {
    /// etcd handle.
    pub etcd: Etcd,
    /// Key names.
    pub keys: Keys,
    /// The role.
    pub role: Role,
    /// The session value this process publishes.
    pub value: SessionValue,
    /// The lease.
    pub lease: Arc<Lease>,
    tasks: [JoinHandle<()>; 2],
}

impl Drop for Session {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

impl Session {
    /// Allocates a ServerID, grants a lease of `ttl` and starts keeping it alive. No key
    /// is written yet: see [`Session::put_own_key`] and [`election`].
    pub async fn create(
        etcd: &Etcd,
        keys: &Keys,
        role: Role,
        address: &str,
        ttl: Duration,
    ) -> Result<Session, EtcdError> {
        let server_id = allocate_server_id(etcd, keys).await?;
        let sent = clock::BootInstant::now();
        let ttl_secs = ttl.as_secs() as i64;
        let grant = etcd
            .call(|mut c| async move { c.lease_grant(ttl_secs, None).await })
            .await?;
        let lease = Lease::new(grant.id(), ttl, sent);
        let tasks = lease.spawn_keepalive(etcd.clone());
        let value = SessionValue {
            server_id,
            server_name: role.name().to_string(),
            address: address.to_string(),
            exclusive: role.is_coordinator(),
            stopping: false,
            trigger_kill: true,
            version: MILVUS_VERSION.to_string(),
            project_version: env!("CARGO_PKG_VERSION").to_string(),
            lease_id: Some(grant.id()),
            host_name: host_name(),
            pid: std::process::id(),
        };
        Ok(Session {
            etcd: etcd.clone(),
            keys: keys.clone(),
            role,
            value,
            lease,
            tasks,
        })
    }

    /// The ServerID.
    pub fn server_id(&self) -> i64 {
        self.value.server_id
    }

    /// `<meta>/session/<role>-<ServerID>`.
    pub fn own_key(&self) -> String {
        self.keys.per_server(self.role, self.server_id())
    }

    /// Writes `<role>-<ServerID>` under the lease.
    pub async fn put_own_key(&self) -> Result<(), EtcdError> {
        let key = self.own_key();
        let value = self.value.to_json();
        let lease = self.lease.id();
        self.etcd
            .call(|mut c| async move {
                c.put(key, value, Some(PutOptions::new().with_lease(lease)))
                    .await
            })
            .await?;
        log::info!(key = self.own_key(), ServerID = self.server_id(); "service registered");
        Ok(())
    }

    /// Revokes the lease (bounded by one second), deleting every key attached to it.
    pub async fn revoke(&self) {
        revoke_lease(&self.etcd, &self.lease, "revoked by this process").await;
    }
}

/// Stops acting on `lease` first, then revokes it (bounded by one second), deleting
/// every key attached to it: a standby may win the moment etcd applies the revoke, so
/// this process must already have stopped serving by then.
pub async fn revoke_lease(etcd: &Etcd, lease: &Lease, why: &str) {
    lease.mark_lost(why);
    let id = lease.id();
    let r = etcd
        .call_within(Duration::from_secs(1), |mut c| async move {
            c.lease_revoke(id).await
        })
        .await;
    match r {
        Ok(_) => log::info!(LeaseID = id; "session lease revoked"),
        Err(e) => {
            log::warn!(LeaseID = id, error:% = e; "could not revoke the session lease; it expires after its TTL")
        }
    }
}

/// Allocates a ServerID from the `<meta>/session/id` counter (Milvus's algorithm):
/// create it as "1" if absent, then compare-and-swap v -> v+1 and return v.
pub async fn allocate_server_id(etcd: &Etcd, keys: &Keys) -> Result<i64, EtcdError> {
    let key = keys.server_id_counter();
    let mut backoff = Duration::from_millis(5);
    loop {
        let k = key.clone();
        // Create the counter as "1" if absent (also if someone deleted it meanwhile),
        // and read it, in one txn.
        let resp = etcd
            .call(|mut c| async move {
                c.txn(
                    Txn::new()
                        .when([Compare::version(k.clone(), CompareOp::Equal, 0)])
                        .and_then([
                            TxnOp::put(k.clone(), "1", None),
                            TxnOp::get(k.clone(), None),
                        ])
                        .or_else([TxnOp::get(k, None)]),
                )
                .await
            })
            .await?;
        let raw = resp
            .op_responses()
            .into_iter()
            .find_map(|op| match op {
                etcd_client::TxnOpResponse::Get(g) => g.kvs().first().map(|kv| kv.value().to_vec()),
                _ => None,
            })
            .unwrap_or_else(|| b"1".to_vec());
        let text = String::from_utf8_lossy(&raw).to_string();
        let v: i64 = text.trim().parse().map_err(|_| EtcdError::Data {
            key: key.clone(),
            why: format!("ServerID counter is {text:?}, expected a decimal number"),
        })?;
        let k = key.clone();
        let swapped = etcd
            .call(|mut c| async move {
                c.txn(
                    Txn::new()
                        .when([Compare::value(k.clone(), CompareOp::Equal, raw)])
                        .and_then([TxnOp::put(k, (v + 1).to_string(), None)]),
                )
                .await
            })
            .await?;
        if swapped.succeeded() {
            return Ok(v);
        }
        // Another process took v (or the counter vanished): try again shortly.
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_millis(100));
    }
}

/// This machine's host name.
pub fn host_name() -> String {
    nix::unistd::gethostname()
        .ok()
        .and_then(|h| h.into_string().ok())
        .unwrap_or_default()
}
