//! The etcd client with a timeout on every call.
//!
//! A frozen etcd (SIGSTOP, a partition) makes gRPC calls hang forever; every call here
//! goes through [`Etcd::call`] or [`Etcd::call_within`], which bound it.

use std::future::Future;
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
#[derive(Clone)]
pub struct Etcd {
    client: Client,
    timeout: Duration,
    endpoints: Vec<String>,
}

impl Etcd {
    /// Connects lazily to the endpoints; the first call fails (in time) if none answers.
    pub async fn connect(cfg: &EtcdConfig) -> Result<Self, EtcdError> {
        let options = ConnectOptions::new()
            .with_connect_timeout(cfg.request_timeout)
            .with_keep_alive(Duration::from_secs(2), Duration::from_secs(2))
            .with_keep_alive_while_idle(true);
        let endpoints: Vec<String> = cfg
            .endpoints
            .iter()
            .map(|e| format!("http://{e}"))
            .collect();
        let client = tokio::time::timeout(
            cfg.request_timeout,
            Client::connect(endpoints, Some(options)),
        )
        .await
        .map_err(|_| EtcdError::Timeout(cfg.request_timeout))??;
        Ok(Etcd {
            client,
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

    /// Runs one call bounded by `limit`.
    pub async fn call_within<T, F, Fut>(&self, limit: Duration, f: F) -> Result<T, EtcdError>
    where
        F: FnOnce(Client) -> Fut,
        Fut: Future<Output = Result<T, etcd_client::Error>>,
    {
        match tokio::time::timeout(limit, f(self.client.clone())).await {
            Ok(r) => r.map_err(EtcdError::from),
            Err(_) => Err(EtcdError::Timeout(limit)),
        }
    }

    /// A client for long-lived streams (watch, keep-alive), whose set-up the caller bounds.
    pub fn stream_client(&self) -> Client {
        self.client.clone()
    }
}
