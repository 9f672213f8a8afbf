//! A process's component state, shared between the session machinery and `/status`.

use std::sync::{Arc, Mutex};

use serde::Serialize;

use super::lease::Lease;
use crate::role::Role;

/// Milvus's component state codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum StateCode {
    /// Starting, not yet registered.
    Initializing = 0,
    /// Serving.
    Healthy = 1,
    /// Not serving: lease lost, deposed, or etcd unreachable.
    Abnormal = 2,
    /// A coordinator waiting to become active.
    StandBy = 3,
    /// Shutting down.
    Stopping = 4,
}

#[derive(Clone, Default)]
struct Inner {
    state: Option<StateCode>,
    server_id: i64,
    epoch: i64,
    lease: Option<Arc<Lease>>,
}

/// What `/status` reports.
#[derive(Debug, Clone, Serialize)]
pub struct StatusReport {
    /// Role name.
    pub role: &'static str,
    /// State name (`Healthy`, `StandBy`, ...).
    pub state: StateCode,
    /// Numeric state code.
    pub state_code: u8,
    /// Current session's ServerID (0 before registration).
    #[serde(rename = "ServerID")]
    pub server_id: i64,
    /// Advertised address.
    pub address: String,
    /// Create revision of the ACTIVE key in this term (0 when not active).
    pub epoch: i64,
    /// Current lease ID (0 when none).
    pub lease_id: i64,
    /// Milliseconds before etcd could expire the lease.
    pub lease_ttl_left_ms: u64,
    /// Process id.
    pub pid: u32,
    /// Failed client authentications since the process started (the proxy only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub auth_failures: Option<u64>,
    /// Refused TLS handshakes since the process started (when its port has TLS).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls_failures: Option<u64>,
}

/// The state of this process's component.
pub struct ComponentState {
    role: Role,
    address: String,
    inner: Mutex<Inner>,
    auth_failures: std::sync::atomic::AtomicU64,
    /// Refused handshakes; `u64::MAX` while the port has no TLS.
    tls_failures: std::sync::atomic::AtomicU64,
}

impl ComponentState {
    /// A new state, `Initializing`.
    pub fn new(role: Role, address: String) -> Arc<Self> {
        Arc::new(ComponentState {
            role,
            address,
            inner: Mutex::new(Inner::default()),
            auth_failures: std::sync::atomic::AtomicU64::new(0),
            tls_failures: std::sync::atomic::AtomicU64::new(u64::MAX),
        })
    }

    /// The role.
    pub fn role(&self) -> Role {
        self.role
    }

    /// The advertised address.
    pub fn address(&self) -> &str {
        &self.address
    }

    fn with<R>(&self, f: impl FnOnce(&mut Inner) -> R) -> R {
        f(&mut self.inner.lock().expect("component state lock"))
    }

    /// Counts a failed client authentication (shown by `/status`).
    pub fn count_auth_failure(&self) {
        self.auth_failures
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }

    /// The port serves TLS: `/status` reports refused handshakes from now on.
    pub fn serve_tls(&self) {
        let _ = self.tls_failures.compare_exchange(
            u64::MAX,
            0,
            std::sync::atomic::Ordering::Relaxed,
            std::sync::atomic::Ordering::Relaxed,
        );
    }

    /// Counts a refused TLS handshake (shown by `/status`).
    pub fn count_tls_failure(&self) {
        self.tls_failures
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }

    /// Sets the state code.
    pub fn set(&self, state: StateCode) {
        self.with(|i| i.state = Some(state));
    }

    /// Records a new session (ServerID, lease); the epoch is reset.
    pub fn set_session(&self, server_id: i64, lease: Arc<Lease>) {
        self.with(|i| {
            i.server_id = server_id;
            i.lease = Some(lease);
            i.epoch = 0;
        });
    }

    /// Records the epoch of the current active term (0 when not active).
    pub fn set_epoch(&self, epoch: i64) {
        self.with(|i| i.epoch = epoch);
    }

    /// The current lease, if registered.
    pub fn lease(&self) -> Option<Arc<Lease>> {
        self.with(|i| i.lease.clone())
    }

    /// The effective state: a `Healthy` or `StandBy` process whose lease is no longer
    /// valid reports `Abnormal` at once, before the watchdog has even run.
    pub fn state(&self) -> StateCode {
        self.with(|i| {
            let s = i.state.unwrap_or(StateCode::Initializing);
            let lease_ok = i.lease.as_ref().is_some_and(|l| l.valid());
            match s {
                StateCode::Healthy | StateCode::StandBy if !lease_ok => StateCode::Abnormal,
                other => other,
            }
        })
    }

    /// A snapshot for `/status`.
    pub fn report(&self) -> StatusReport {
        let state = self.state();
        self.with(|i| StatusReport {
            role: self.role.name(),
            state,
            state_code: state as u8,
            server_id: i.server_id,
            address: self.address.clone(),
            epoch: i.epoch,
            lease_id: i.lease.as_ref().map_or(0, |l| l.id()),
            lease_ttl_left_ms: i
                .lease
                .as_ref()
                .map_or(0, |l| l.ttl_left().as_millis() as u64),
            pid: std::process::id(),
            auth_failures: (self.role == Role::Proxy).then(|| {
                self.auth_failures
                    .load(std::sync::atomic::Ordering::Relaxed)
            }),
            tls_failures: Some(self.tls_failures.load(std::sync::atomic::Ordering::Relaxed))
                .filter(|n| *n != u64::MAX),
        })
    }
}
