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
    /// `/metrics`: this process's counters.
    metrics: prometheus::Registry,
    auth_failures: prometheus::IntCounter,
    tls_failures: prometheus::IntCounter,
    /// Whether the port serves TLS (refused handshakes are then on `/status`).
    tls: std::sync::atomic::AtomicBool,
}

/// A counter registered in `registry`.
fn counter(registry: &prometheus::Registry, name: &str, help: &str) -> prometheus::IntCounter {
    let c = prometheus::IntCounter::new(name, help).expect("a valid metric name");
    registry
        .register(Box::new(c.clone()))
        .expect("each metric registered once");
    c
}

impl ComponentState {
    /// A new state, `Initializing`.
    pub fn new(role: Role, address: String) -> Arc<Self> {
        let labels = [("role".to_string(), role.name().to_string())].into();
        let metrics = prometheus::Registry::new_custom(Some("milvus".into()), Some(labels))
            .expect("a valid registry prefix");
        Arc::new(ComponentState {
            role,
            address,
            inner: Mutex::new(Inner::default()),
            auth_failures: counter(
                &metrics,
                "auth_failures_total",
                "Client calls refused for missing or wrong credentials",
            ),
            tls_failures: counter(
                &metrics,
                "tls_handshake_failures_total",
                "TLS handshakes refused on this process's port (no, untrusted or late certificate)",
            ),
            tls: std::sync::atomic::AtomicBool::new(false),
            metrics,
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

    /// Counts a failed client authentication (shown by `/status` and `/metrics`).
    pub fn count_auth_failure(&self) {
        self.auth_failures.inc();
    }

    /// The port serves TLS: `/status` reports refused handshakes from now on.
    pub fn serve_tls(&self) {
        self.tls.store(true, std::sync::atomic::Ordering::Relaxed);
    }

    /// Counts a refused TLS handshake (shown by `/status` and `/metrics`).
    pub fn count_tls_failure(&self) {
        self.tls_failures.inc();
    }

    /// `/metrics`: this process's counters in Prometheus's text format, each labelled
    /// with the role.
    pub fn metrics_text(&self) -> String {
        let mut out = String::new();
        if let Err(e) = prometheus::TextEncoder::new().encode_utf8(&self.metrics.gather(), &mut out)
        {
            log::warn!(error:% = e; "cannot encode /metrics");
        }
        out
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
            auth_failures: (self.role == Role::Proxy).then(|| self.auth_failures.get()),
            tls_failures: self
                .tls
                .load(std::sync::atomic::Ordering::Relaxed)
                .then(|| self.tls_failures.get()),
        })
    }
}
