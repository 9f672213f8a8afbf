//! A client of an active coordinator (rootcoord, datacoord, ...): finds it through
//! discovery, names the ServerID it expects on every call, and rides through a failover by
//! re-resolving and retrying (up to a time limit) when the process it reached is not the
//! active one: at once when discovery shows a new active, else after a short backoff.

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;
use tonic::metadata::MetadataValue;
use tonic::transport::{Channel, ClientTlsConfig};
use tonic::{Request, Response};

use crate::config::Config;
use crate::etcd::Etcd;
use crate::grpc::GrpcLimits;
use crate::proto::datacoord::data_coord_client::DataCoordClient;
use crate::proto::indexcoord::index_coord_client::IndexCoordClient;
use crate::proto::querycoord::query_coord_client::QueryCoordClient;
use crate::proto::rootcoord::root_coord_client::RootCoordClient;
use crate::role::Role;
use crate::session::discovery::SessionView;
use crate::session::Keys;
use crate::status::{code, WithStatus};

/// Metadata key naming the ServerID a caller expects to reach.
pub const SERVER_ID_HEADER: &str = "serverid";
/// Metadata key carrying a change's request ID; a repeated ID is applied once.
pub const REQUEST_ID_HEADER: &str = "requestid";

/// Why a call found no active coordinator to answer it.
#[derive(Debug, thiserror::Error)]
pub enum CoordError {
    /// No active coordinator answered within the retry limit.
    #[error("no active {0} answered within {1:?}")]
    Unavailable(&'static str, Duration),
    /// The coordinator answered with a gRPC error that is not about availability.
    #[error("{0} call failed: {1}")]
    Rpc(&'static str, tonic::Status),
}

/// HTTP/2 ping interval on channels to coordinators: a peer that vanished without a
/// reset (a frozen host, a cut link) is found within interval + timeout.
const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(10);
const KEEPALIVE_TIMEOUT: Duration = Duration::from_secs(5);

/// A nonce that makes this client's request IDs unique: pid and start time.
fn nonce() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!("{:x}{:x}", std::process::id(), nanos)
}

/// A handle on whichever rootcoord is active.
pub type ActiveRootCoord = ActiveCoord<RootCoordClient<Channel>>;

/// A handle on whichever datacoord is active.
pub type ActiveDataCoord = ActiveCoord<DataCoordClient<Channel>>;

/// A handle on whichever indexcoord is active.
pub type ActiveIndexCoord = ActiveCoord<IndexCoordClient<Channel>>;

/// A handle on whichever querycoord is active.
pub type ActiveQueryCoord = ActiveCoord<QueryCoordClient<Channel>>;

/// A gRPC client type that can be made from a channel.
pub trait FromChannel {
    /// The coordinator role this client talks to.
    const ROLE: Role;
    /// A client on `channel` with the client side of `limits`.
    fn from_channel(channel: Channel, limits: &GrpcLimits) -> Self;
}

impl FromChannel for RootCoordClient<Channel> {
    const ROLE: Role = Role::RootCoord;
    fn from_channel(channel: Channel, limits: &GrpcLimits) -> Self {
        crate::limit_client!(RootCoordClient::new(channel), limits)
    }
}

impl FromChannel for IndexCoordClient<Channel> {
    const ROLE: Role = Role::IndexCoord;
    fn from_channel(channel: Channel, limits: &GrpcLimits) -> Self {
        crate::limit_client!(IndexCoordClient::new(channel), limits)
    }
}

impl FromChannel for QueryCoordClient<Channel> {
    const ROLE: Role = Role::QueryCoord;
    fn from_channel(channel: Channel, limits: &GrpcLimits) -> Self {
        crate::limit_client!(QueryCoordClient::new(channel), limits)
    }
}

impl FromChannel for DataCoordClient<Channel> {
    const ROLE: Role = Role::DataCoord;
    fn from_channel(channel: Channel, limits: &GrpcLimits) -> Self {
        crate::limit_client!(DataCoordClient::new(channel), limits)
    }
}

/// A handle on whichever coordinator of `C::ROLE` is active.
pub struct ActiveCoord<C> {
    client: std::marker::PhantomData<fn() -> C>,
    view: SessionView,
    channels: Mutex<HashMap<String, Channel>>,
    retry_for: Duration,
    per_call: Duration,
    nonce: String,
    requests: AtomicU64,
    limits: GrpcLimits,
    /// Internal TLS (`internaltls.*`): None calls in the clear.
    tls: Option<ClientTlsConfig>,
}

impl<C: FromChannel> ActiveCoord<C> {
    /// Follows the sessions under `keys`; calls retry for up to `retry_for` in all, each
    /// attempt bounded by `per_call`.
    pub fn new(etcd: Etcd, keys: Keys, retry_for: Duration, per_call: Duration) -> Self {
        ActiveCoord {
            client: std::marker::PhantomData,
            view: SessionView::follow(etcd, keys),
            channels: Mutex::new(HashMap::new()),
            retry_for,
            per_call,
            nonce: nonce(),
            requests: AtomicU64::new(0),
            limits: GrpcLimits::default(),
            tls: None,
        }
    }

    /// The handle a process of `role` uses: retries for `proxy.coordRetryTimeout`, each
    /// attempt bounded by `etcd.requestTimeout` (at most 5 s), with the client side of
    /// the role's gRPC limits.
    pub fn for_process(etcd: Etcd, keys: Keys, config: &Config, role: Role) -> Self {
        let per_call = config.etcd.request_timeout.min(Duration::from_secs(5));
        let mut c = Self::new(etcd, keys, config.proxy.coord_retry_timeout, per_call)
            .with_limits(config.role(role).grpc);
        c.tls = crate::tls::internal_client_or_refuse(&config.security.internal_tls);
        c
    }

    /// The same, with the client side of `limits` (the calling role's `grpc.*` keys)
    /// instead of Milvus's defaults.
    pub fn with_limits(mut self, limits: GrpcLimits) -> Self {
        self.limits = limits;
        self
    }

    /// Whether an active coordinator is registered right now.
    pub fn has_active(&self) -> bool {
        self.view.active(C::ROLE).is_some()
    }

    /// The channel to `address`; channels to addresses no session of the role holds any
    /// more are dropped first.
    fn channel(&self, address: &str) -> Option<Channel> {
        let mut map = self.channels.lock().expect("channel map lock");
        if let Some(c) = map.get(address) {
            return Some(c.clone());
        }
        let live: Vec<String> = self
            .view
            .snapshot()
            .into_values()
            .filter(|s| s.value.server_name == C::ROLE.name())
            .map(|s| s.value.address)
            .collect();
        map.retain(|a, _| live.contains(a));
        let endpoint = match crate::tls::endpoint(address, self.tls.as_ref()) {
            Ok(e) => e,
            Err(e) => {
                log::warn!(address = address, error = e.as_str(); "cannot dial a coordinator");
                return None;
            }
        };
        let endpoint = endpoint
            .connect_timeout(self.per_call)
            .http2_keep_alive_interval(KEEPALIVE_INTERVAL)
            .keep_alive_timeout(KEEPALIVE_TIMEOUT)
            .keep_alive_while_idle(false)
            .tcp_nodelay(true);
        let c = endpoint.connect_lazy();
        map.insert(address.to_string(), c.clone());
        Some(c)
    }

    /// Calls the active coordinator for a read: `f` gets a client and a request carrying
    /// the expected ServerID. Not-serving and mismatch answers, transport failures and
    /// timeouts are retried against the (re-resolved) active until the retry limit.
    pub async fn call<M, T, F, Fut>(&self, message: M, f: F) -> Result<T, CoordError>
    where
        M: Clone,
        T: WithStatus,
        F: Fn(C, Request<M>) -> Fut,
        Fut: Future<Output = Result<Response<T>, tonic::Status>>,
    {
        self.call_with(message, f, None).await
    }

    /// Calls the active coordinator for a change. The change gets one request ID, sent
    /// with every attempt, which the coordinator records with the change: a repeated ID is
    /// answered with the recorded result and applied once. So the change is retried like
    /// a read, on any transient failure (transport errors, timeouts, not-serving and
    /// mismatch answers, retriable statuses), until the retry limit.
    pub async fn call_write<M, T, F, Fut>(&self, message: M, f: F) -> Result<T, CoordError>
    where
        M: Clone,
        T: WithStatus,
        F: Fn(C, Request<M>) -> Fut,
        Fut: Future<Output = Result<Response<T>, tonic::Status>>,
    {
        let id = self.next_request_id();
        self.call_with(message, f, Some(&id)).await
    }

    /// A request ID unique across processes: this client's nonce and a counter.
    fn next_request_id(&self) -> String {
        let n = self.requests.fetch_add(1, Ordering::Relaxed);
        format!("{}-{n}", self.nonce)
    }

    async fn call_with<M, T, F, Fut>(
        &self,
        message: M,
        f: F,
        request_id: Option<&str>,
    ) -> Result<T, CoordError>
    where
        M: Clone,
        T: WithStatus,
        F: Fn(C, Request<M>) -> Fut,
        Fut: Future<Output = Result<Response<T>, tonic::Status>>,
    {
        let deadline = Instant::now() + self.retry_for;
        let mut backoff = Duration::from_millis(5);
        // The last retriable answer, returned if the retry limit passes.
        let mut last: Option<T> = None;
        loop {
            let tried = self.view.active(C::ROLE).map(|a| a.value.server_id);
            if let Some(active) = self.view.active(C::ROLE) {
                if let Some(channel) = self.channel(&active.value.address) {
                    let mut req = Request::new(message.clone());
                    if let Ok(v) = MetadataValue::try_from(active.value.server_id.to_string()) {
                        req.metadata_mut().insert(SERVER_ID_HEADER, v);
                    }
                    if let Some(Ok(v)) = request_id.map(MetadataValue::try_from) {
                        req.metadata_mut().insert(REQUEST_ID_HEADER, v);
                    }
                    let left = deadline.saturating_duration_since(Instant::now());
                    let attempt = self.per_call.min(left.max(Duration::from_millis(100)));
                    // A call in flight to a holder that was replaced (paused, cut off:
                    // no answer will come) is abandoned for the new active at once; a
                    // change is safe to resend, its request ID makes it apply once.
                    let call = tokio::time::timeout(
                        attempt,
                        f(C::from_channel(channel, &self.limits), req),
                    );
                    let replaced = self.view.wait_active_other_than(C::ROLE, tried, attempt);
                    let outcome = tokio::select! {
                        r = call => Some(r),
                        true = replaced => None,
                    };
                    match outcome {
                        None => {
                            log::debug!(role = C::ROLE.name(); "another coordinator became active during the call, trying it")
                        }
                        Some(Ok(Ok(resp))) => {
                            let resp = resp.into_inner();
                            let st = resp.status();
                            let again = st.retriable || is_refusal(&st);
                            if !again {
                                return Ok(resp);
                            }
                            log::debug!(role = C::ROLE.name(), reason = st.reason.as_str(), code = st.code; "coordinator asks to retry");
                            last = Some(resp);
                        }
                        Some(Ok(Err(s))) if crate::grpc::is_transient(s.code()) => {
                            log::debug!(role = C::ROLE.name(), error:% = s; "coordinator unreachable, re-resolving");
                        }
                        Some(Ok(Err(s))) => return Err(CoordError::Rpc(C::ROLE.name(), s)),
                        Some(Err(_)) => {
                            log::debug!(role = C::ROLE.name(), timeout:? = attempt; "coordinator call timed out, re-resolving")
                        }
                    }
                }
            }
            if Instant::now() >= deadline {
                // A refusal (a standby, a wrong ServerID) says nothing of the call's
                // outcome: the caller hears that no active answered, as when none was
                // reachable (clients retry UNAVAILABLE). Any other retriable answer (an
                // outcome unknown, a rate limit) is the caller's to see.
                return match last {
                    Some(resp) if !is_refusal(&resp.status()) => Ok(resp),
                    _ => Err(CoordError::Unavailable(C::ROLE.name(), self.retry_for)),
                };
            }
            // A new active (a takeover) is tried at once; the same one after a backoff.
            let wait = backoff.min(deadline.saturating_duration_since(Instant::now()));
            if !self.view.wait_active_other_than(C::ROLE, tried, wait).await {
                backoff = (backoff * 2).min(Duration::from_millis(100));
            }
        }
    }
}

/// Whether `st` is a coordinator's refusal to act (not the active one, or not the
/// ServerID the call named): nothing was done.
fn is_refusal(st: &crate::proto::common::Status) -> bool {
    matches!(st.code, code::SERVICE_NOT_READY | code::SERVICE_UNAVAILABLE)
}

impl ActiveRootCoord {
    /// The first of `count` consecutive fresh IDs from the rootcoord's allocator; the
    /// error says why none were given (unreachable, or the rootcoord's refusal).
    pub async fn alloc_ids(&self, count: u32) -> Result<i64, String> {
        let r = self
            .call(
                crate::proto::rootcoord::AllocRequest { count },
                |mut c, r| async move { c.alloc_id(r).await },
            )
            .await
            .map_err(|e| e.to_string())?;
        match r.status {
            Some(s) if !crate::status::is_ok(&s) => Err(s.reason),
            _ => Ok(r.id),
        }
    }
}
