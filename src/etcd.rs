//! The etcd client with a timeout on every call.
//!
//! A frozen etcd (SIGSTOP, a partition) makes gRPC calls hang forever; every call here
//! goes through [`Etcd::call`] or [`Etcd::call_within`], which bound it.

use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use etcd_client::{Client, ConnectOptions};

use crate::config::EtcdConfig;

/// An etcd failure: an error from the server or client, or no answer in time.
#[derive(Debug, thiserror::Error)]
pub enum EtcdError {
    /// No answer within the bound.
    #[error("etcd did not answer within {0:?}")]
    Timeout(Duration),
    /// The client or server reported an error.
    #[error("etcd error: {0}")]
    Client(#[from] etcd_client::Error),
    /// A value in etcd is not what this binary expects.
    #[error("unexpected data in etcd at {key}: {why}")]
    Data {
        /// The key.
        key: String,
        /// What is wrong.
        why: String,
    },
}

/// A cheap-to-clone etcd handle whose calls all have a timeout.
///
/// It keeps one client per endpoint and pins one of them, moving to the next after a
/// transport failure or a timeout, as etcd's Go client does. (etcd-client's balanced
/// channel keeps routing to a dead member: etcdv3/etcd-client#39.)
#[derive(Clone)]
pub struct Etcd {
    clients: Arc<Vec<Client>>,
    current: Arc<AtomicUsize>,
    timeout: Duration,
    endpoints: Vec<String>,
}

impl Etcd {
    /// Connects lazily to each endpoint; the first call fails (in time) if none answers.
    pub async fn connect(cfg: &EtcdConfig) -> Result<Self, EtcdError> {
        let options = ConnectOptions::new()
            .with_connect_timeout(cfg.request_timeout)
            .with_keep_alive(Duration::from_secs(2), Duration::from_secs(2))
            .with_keep_alive_while_idle(true)
            .with_require_leader(true);
        let mut clients = Vec::with_capacity(cfg.endpoints.len());
        for e in &cfg.endpoints {
            let url = format!("http://{e}");
            let client = tokio::time::timeout(
                cfg.request_timeout,
                Client::connect([url], Some(options.clone())),
            )
            .await
            .map_err(|_| EtcdError::Timeout(cfg.request_timeout))??;
            clients.push(client);
        }
        Ok(Etcd {
            clients: Arc::new(clients),
            current: Arc::new(AtomicUsize::new(0)),
            timeout: cfg.request_timeout,
            endpoints: cfg.endpoints.clone(),
        })
    }

    /// The default per-call bound (`etcd.requestTimeout`).
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// The endpoints, for messages.
    pub fn endpoints(&self) -> &[String] {
        &self.endpoints
    }

    /// Runs one call with the default bound.
    pub async fn call<T, F, Fut>(&self, f: F) -> Result<T, EtcdError>
    where
        F: FnOnce(Client) -> Fut,
        Fut: Future<Output = Result<T, etcd_client::Error>>,
    {
        self.call_within(self.timeout, f).await
    }

    /// Runs one call on the pinned endpoint, bounded by `limit`. After a failure that
    /// points at the endpoint, the next call goes to the next one.
    pub async fn call_within<T, F, Fut>(&self, limit: Duration, f: F) -> Result<T, EtcdError>
    where
        F: FnOnce(Client) -> Fut,
        Fut: Future<Output = Result<T, etcd_client::Error>>,
    {
        let (client, used) = self.stream_client();
        let result = match tokio::time::timeout(limit, f(client)).await {
            Ok(r) => r.map_err(EtcdError::from),
            Err(_) => Err(EtcdError::Timeout(limit)),
        };
        if let Err(e) = &result {
            if e.is_endpoint_failure() {
                self.failed(used);
            }
        }
        result
    }

    /// The pinned endpoint's client, for long-lived streams (watch, keep-alive) whose
    /// set-up the caller bounds, and its index for [`Etcd::failed`].
    pub fn stream_client(&self) -> (Client, usize) {
        let i = self.current.load(Ordering::SeqCst) % self.clients.len();
        (self.clients[i].clone(), i)
    }

    /// Moves off endpoint `used` after it failed (if no other caller already has).
    pub fn failed(&self, used: usize) {
        if self.clients.len() > 1 {
            let next = (used + 1) % self.clients.len();
            if self
                .current
                .compare_exchange(used, next, Ordering::SeqCst, Ordering::SeqCst)
                .is_ok()
            {
                log::info!(from = self.endpoints[used].as_str(), to = self.endpoints[next].as_str();
                    "etcd endpoint failed, switching");
            }
        }
    }
}

impl EtcdError {
    /// True for failures of the endpoint rather than answers about the request.
    pub fn is_endpoint_failure(&self) -> bool {
        use etcd_client::Error as E;
        match self {
            EtcdError::Timeout(_) => true,
            EtcdError::Data { .. } => false,
            EtcdError::Client(E::GRpcStatus(s)) => crate::status::is_transient(s.code()),
            EtcdError::Client(E::LeaseKeepAliveError(m)) => !m.contains("not found"),
            EtcdError::Client(_) => true,
        }
    }
}
