//! A client of the active rootcoord: finds it through discovery, names the ServerID it
//! expects on every call, and rides through a failover by re-resolving and retrying with
//! backoff (up to a time limit) when the process it reached is not the active one.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;
use tonic::metadata::MetadataValue;
use tonic::transport::{Channel, Endpoint};
use tonic::{Code, Request, Response};

use crate::etcd::Etcd;
use crate::proto::rootcoord::root_coord_client::RootCoordClient;
use crate::roles::rootcoord::service::SERVER_ID_HEADER;
use crate::roles::Role;
use crate::session::discovery::SessionView;
use crate::session::Keys;
use crate::status::{code, WithStatus};

/// Why a call found no active rootcoord to answer it.
#[derive(Debug, thiserror::Error)]
pub enum CoordError {
    /// No active rootcoord answered within the retry limit.
    #[error("no active rootcoord answered within {0:?}")]
    Unavailable(Duration),
    /// The rootcoord answered with a gRPC error that is not about availability.
    #[error("rootcoord call failed: {0}")]
    Rpc(#[from] tonic::Status),
}

/// A handle on whichever rootcoord is active.
pub struct ActiveRootCoord {
    view: SessionView,
    channels: Mutex<HashMap<String, Channel>>,
    retry_for: Duration,
    per_call: Duration,
}

impl ActiveRootCoord {
    /// Follows the sessions under `keys`; calls retry for up to `retry_for` in all, each
    /// attempt bounded by `per_call`.
    pub fn new(etcd: Etcd, keys: Keys, retry_for: Duration, per_call: Duration) -> Self {
        ActiveRootCoord {
            view: SessionView::follow(etcd, keys),
            channels: Mutex::new(HashMap::new()),
            retry_for,
            per_call,
        }
    }

    /// Whether an active rootcoord is registered right now.
    pub fn has_active(&self) -> bool {
        self.view.active(Role::RootCoord).is_some()
    }

    fn channel(&self, address: &str) -> Option<Channel> {
        let mut map = self.channels.lock().expect("channel map lock");
        if let Some(c) = map.get(address) {
            return Some(c.clone());
        }
        let endpoint = Endpoint::from_shared(format!("http://{address}"))
            .ok()?
            .connect_timeout(self.per_call)
            .tcp_nodelay(true);
        let c = endpoint.connect_lazy();
        map.insert(address.to_string(), c.clone());
        Some(c)
    }

    /// Calls the active rootcoord for a read: `f` gets a client and a request carrying
    /// the expected ServerID. Not-serving and mismatch answers, transport failures and
    /// timeouts are retried against the (re-resolved) active until the retry limit.
    pub async fn call<M, T, F, Fut>(&self, message: M, f: F) -> Result<T, CoordError>
    where
        M: Clone,
        T: WithStatus,
        F: Fn(RootCoordClient<Channel>, Request<M>) -> Fut,
        Fut: Future<Output = Result<Response<T>, tonic::Status>>,
    {
        self.call_with(message, f, Attempts::Read).await
    }

    /// Calls the active rootcoord for a change. It is retried only when the answer proves
    /// nothing ran (a not-serving or mismatch status, which a rootcoord gives before any
    /// write, or no connection); a timeout or an unclear failure is returned, since the
    /// change may have happened. Each attempt may take up to [`WRITE_ATTEMPT`].
    pub async fn call_write<M, T, F, Fut>(&self, message: M, f: F) -> Result<T, CoordError>
    where
        M: Clone,
        T: WithStatus,
        F: Fn(RootCoordClient<Channel>, Request<M>) -> Fut,
        Fut: Future<Output = Result<Response<T>, tonic::Status>>,
    {
        self.call_with(message, f, Attempts::Write).await
    }

    async fn call_with<M, T, F, Fut>(
        &self,
        message: M,
        f: F,
        kind: Attempts,
    ) -> Result<T, CoordError>
    where
        M: Clone,
        T: WithStatus,
        F: Fn(RootCoordClient<Channel>, Request<M>) -> Fut,
        Fut: Future<Output = Result<Response<T>, tonic::Status>>,
    {
        let deadline = Instant::now() + self.retry_for;
        let per_call = match kind {
            Attempts::Read => self.per_call,
            Attempts::Write => self.per_call.max(WRITE_ATTEMPT),
        };
        let mut backoff = Duration::from_millis(5);
        loop {
            if let Some(active) = self.view.active(Role::RootCoord) {
                if let Some(channel) = self.channel(&active.value.address) {
                    let mut req = Request::new(message.clone());
                    if let Ok(v) = MetadataValue::try_from(active.value.server_id.to_string()) {
                        req.metadata_mut().insert(SERVER_ID_HEADER, v);
                    }
                    match tokio::time::timeout(per_call, f(RootCoordClient::new(channel), req)).await {
                        Ok(Ok(resp)) => {
                            let resp = resp.into_inner();
                            let st = resp.status();
                            if !matches!(st.code, code::SERVICE_NOT_READY | code::SERVICE_UNAVAILABLE) {
                                return Ok(resp);
                            }
                            log::debug!(reason = st.reason.as_str(); "rootcoord not serving, re-resolving");
                        }
                        Ok(Err(s)) if s.code() == Code::Unavailable || (kind == Attempts::Read && crate::status::is_transient(s.code())) => {
                            log::debug!(error:% = s; "rootcoord unreachable, re-resolving");
                        }
                        Ok(Err(s)) => return Err(CoordError::Rpc(s)),
                        Err(_) if kind == Attempts::Write => {
                            return Err(CoordError::Rpc(tonic::Status::deadline_exceeded(format!(
                                "the rootcoord did not answer within {per_call:?}; the change may or may not have been applied"
                            ))))
                        }
                        Err(_) => log::debug!("rootcoord call timed out, re-resolving"),
                    }
                }
            }
            if Instant::now() >= deadline {
                return Err(CoordError::Unavailable(self.retry_for));
            }
            tokio::time::sleep(backoff.min(deadline.saturating_duration_since(Instant::now())))
                .await;
            backoff = (backoff * 2).min(Duration::from_millis(100));
        }
    }
}

/// How long one attempt of a change may take: a rootcoord bounds its own etcd write
/// and catalog update well below this.
pub const WRITE_ATTEMPT: Duration = Duration::from_secs(30);

#[derive(Clone, Copy, PartialEq, Eq)]
enum Attempts {
    Read,
    Write,
}
