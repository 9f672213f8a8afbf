//! The etcd client with a timeout on every call.
//!
//! A frozen etcd (SIGSTOP, a partition) makes gRPC calls hang forever; every call here
//! goes through [`Etcd::call`] or [`Etcd::call_within`], which bound it.

use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use etcd_client::{
    Certificate, Client, ConnectOptions, GetOptions, Identity, KeyValue, TlsOptions, WatchOptions,
    WatchStream,
};

use crate::config::{EtcdConfig, EtcdTls};

/// HTTP/2 ping interval on etcd connections (etcd's Go client uses 10 s too).
pub const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(10);
/// How long a ping may go unanswered before the connection is dropped.
pub const KEEPALIVE_TIMEOUT: Duration = Duration::from_secs(5);
/// Largest etcd response this client accepts (paged reads stay far below it; a watch
/// response after a long backlog may not).
pub const MAX_RESPONSE_BYTES: usize = 512 << 20;

/// An etcd failure: an error from the server or client, or no answer in time.
#[derive(Debug, thiserror::Error)]
pub enum EtcdError {
    /// No answer within the bound.
    #[error("etcd did not answer within {0:?}")]
    Timeout(Duration),
    /// The client or server reported an error.
    #[error("etcd error: {0}")]
    Client(#[from] etcd_client::Error),
    /// A setting the client cannot use (a certificate file of `etcd.ssl.*`).
    #[error("{key}: {why}")]
    Config {
        /// The key naming the setting.
        key: &'static str,
        /// What is wrong.
        why: String,
    },
    /// A value in etcd is not what this binary expects.
    #[error("unexpected data in etcd at {key}: {why}")]
    Data {
        /// The key.
        key: String,
        /// What is wrong.
        why: String,
    },
}

/// The TLS settings of `etcd.ssl.*`: etcd's CA and, when given, this client's
/// certificate. An unreadable or empty file is an error naming its key.
fn tls_options(tls: &EtcdTls) -> Result<TlsOptions, EtcdError> {
    let read = |key: &'static str, path: &std::path::Path| {
        let pem = std::fs::read(path).map_err(|e| EtcdError::Config {
            key,
            why: format!("cannot read {}: {e}", path.display()),
        })?;
        if !String::from_utf8_lossy(&pem).contains("-----BEGIN") {
            return Err(EtcdError::Config {
                key,
                why: format!("{} holds no PEM item", path.display()),
            });
        }
        Ok(pem)
    };
    let mut options = TlsOptions::new()
        .ca_certificate(Certificate::from_pem(read("etcd.ssl.tlsCACert", &tls.ca)?));
    if let Some((cert, key)) = &tls.identity {
        options = options.identity(Identity::from_pem(
            read("etcd.ssl.tlsCert", cert)?,
            read("etcd.ssl.tlsKey", key)?,
        ));
    }
    Ok(options)
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
    ///
    /// With `etcd.ssl.enabled` every endpoint is reached over TLS (`https://`), checked
    /// against `etcd.ssl.tlsCACert` and, when given, presenting `etcd.ssl.tlsCert`. With
    /// `etcd.auth.enabled` the client signs in as `etcd.auth.userName` when it connects
    /// (so that endpoint must answer then) and signs in again when etcd refuses its token
    /// (a restarted member, an expired token); an endpoint that cannot sign in at start is
    /// left out, as long as one can, until the process restarts.
    pub async fn connect(cfg: &EtcdConfig) -> Result<Self, EtcdError> {
        // HTTP/2 pings within etcd's server defaults: it answers pings more often than
        // `--grpc-keepalive-min-time` (5 s), or any ping on a connection without an open
        // stream, with GOAWAY `too_many_pings`, which breaks every watch on it. Dead
        // servers are found by the per-call timeouts; pings only catch idle dead streams.
        let mut options = ConnectOptions::new()
            .with_connect_timeout(cfg.request_timeout)
            .with_keep_alive(KEEPALIVE_INTERVAL, KEEPALIVE_TIMEOUT)
            .with_keep_alive_while_idle(false)
            .with_require_leader(true);
        let scheme = match &cfg.tls {
            Some(tls) => {
                options = options.with_tls(tls_options(tls)?);
                "https"
            }
            None => "http",
        };
        if let Some(auth) = &cfg.auth {
            // Sign in again when etcd says the token is no longer valid (simple tokens
            // die with the member that issued them; JWTs expire).
            options = options
                .with_user(auth.user.clone(), auth.password.clone())
                .with_auto_token_refresh(true);
        }
        let mut clients = Vec::with_capacity(cfg.endpoints.len());
        let mut endpoints = Vec::with_capacity(cfg.endpoints.len());
        let mut failure = None;
        for e in &cfg.endpoints {
            let url = format!("{scheme}://{e}");
            let client = tokio::time::timeout(
                cfg.request_timeout,
                Client::connect([url], Some(options.clone())),
            )
            .await
            .map_err(|_| EtcdError::Timeout(cfg.request_timeout))
            .and_then(|r| r.map_err(EtcdError::from));
            match client {
                Ok(c) => {
                    clients.push(c);
                    endpoints.push(e.clone());
                }
                // Signing in needs an answer; without auth the connection is lazy and
                // this is a bad address, which no other endpoint mends.
                Err(err) if cfg.auth.is_some() => {
                    log::warn!(endpoint = e.as_str(), error:% = err; "etcd endpoint left out: cannot sign in");
                    failure = Some(err);
                }
                Err(err) => return Err(err),
            }
        }
        if clients.is_empty() {
            return Err(failure.unwrap_or(EtcdError::Timeout(cfg.request_timeout)));
        }
        Ok(Etcd {
            clients: Arc::new(clients),
            current: Arc::new(AtomicUsize::new(0)),
            timeout: cfg.request_timeout,
            endpoints,
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
        self.call_noting_endpoint(limit, f).await.map(|(t, _)| t)
    }

    /// [`Etcd::call_within`], also giving the index of the endpoint that answered (for a
    /// stream opened by the call, which reports its own failure later).
    async fn call_noting_endpoint<T, F, Fut>(
        &self,
        limit: Duration,
        f: F,
    ) -> Result<(T, usize), EtcdError>
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
        result.map(|t| (t, used))
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

/// Keys per page of a prefix read, to start with (halved while a page is too large).
const PAGE_KEYS: i64 = 1024;
/// Largest page of a prefix read.
const PAGE_BYTES: usize = 64 << 20;

/// The end of the key range of every key that starts with `prefix`.
fn prefix_end(prefix: &str) -> Vec<u8> {
    let mut end = prefix.as_bytes().to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return end;
        }
    }
    vec![0] // every key
}

fn too_large(e: &EtcdError) -> bool {
    match e {
        EtcdError::Client(etcd_client::Error::GRpcStatus(s)) => {
            matches!(
                s.code(),
                tonic::Code::OutOfRange | tonic::Code::ResourceExhausted
            ) || s.message().contains("too large")
        }
        _ => false,
    }
}

impl Etcd {
    /// Reads every key under `prefix` as of one revision, in pages (each call bounded by
    /// the call timeout), so a prefix of any total size can be read; returns the keys and
    /// the revision. A page over the response limit is read again in halves.
    pub async fn get_prefix(&self, prefix: &str) -> Result<(Vec<KeyValue>, i64), EtcdError> {
        let end = prefix_end(prefix);
        let mut out = Vec::new();
        let mut from = prefix.as_bytes().to_vec();
        let mut revision = 0;
        let mut page = PAGE_KEYS;
        loop {
            let mut opts = GetOptions::new().with_range(end.clone()).with_limit(page);
            if revision > 0 {
                opts = opts.with_revision(revision);
            }
            let key = from.clone();
            let read = self
                .call(|c| async move {
                    c.kv_client()
                        .max_decoding_message_size(PAGE_BYTES)
                        .get(key, Some(opts))
                        .await
                })
                .await;
            let mut resp = match read {
                Ok(r) => r,
                Err(e) if too_large(&e) && page > 1 => {
                    page = (page / 2).max(1);
                    log::warn!(prefix = prefix, page_keys = page, error:% = e; "etcd page too large, reading smaller pages");
                    continue;
                }
                Err(e) => return Err(e),
            };
            if revision == 0 {
                revision = resp.header().map_or(0, |h| h.revision());
            }
            let more = resp.more();
            let kvs = resp.take_kvs();
            if let Some(last) = kvs.last() {
                from = last.key().to_vec();
                from.push(0);
            }
            out.extend(kvs);
            if !more {
                return Ok((out, revision));
            }
        }
    }

    /// Opens a watch on `key` (set-up bounded by the call timeout) that accepts
    /// responses up to [`MAX_RESPONSE_BYTES`]: after a backlog, etcd batches many events
    /// into one response.
    pub async fn watch(&self, key: &str, options: WatchOptions) -> Result<Watch, EtcdError> {
        let k = key.to_string();
        let (stream, used) = self
            .call_noting_endpoint(self.timeout, |c| async move {
                c.watch_client()
                    .max_decoding_message_size(MAX_RESPONSE_BYTES)
                    .watch(k, Some(options))
                    .await
            })
            .await?;
        Ok(Watch {
            stream,
            etcd: self.clone(),
            used,
        })
    }
}

/// A watch stream on one endpoint. A stream that fails (a restarted or unreachable
/// member) moves the handle's later calls to the next endpoint at once, so the call a
/// watcher makes next (re-reading the key, campaigning) does not wait out its timeout
/// on the member that just failed.
pub struct Watch {
    stream: WatchStream,
    etcd: Etcd,
    used: usize,
}

impl Watch {
    /// The next response: `Ok(None)` when the stream ended.
    pub async fn message(
        &mut self,
    ) -> Result<Option<etcd_client::WatchResponse>, etcd_client::Error> {
        let r = self.stream.message().await;
        if let Err(e) = &r {
            if client_endpoint_failure(e) {
                self.etcd.failed(self.used);
            }
        }
        r
    }
}

impl EtcdError {
    /// True for failures of the endpoint rather than answers about the request.
    pub fn is_endpoint_failure(&self) -> bool {
        match self {
            EtcdError::Timeout(_) => true,
            EtcdError::Data { .. } | EtcdError::Config { .. } => false,
            EtcdError::Client(e) => client_endpoint_failure(e),
        }
    }
}

/// True for a client error that points at the endpoint rather than the request.
fn client_endpoint_failure(e: &etcd_client::Error) -> bool {
    use etcd_client::Error as E;
    match e {
        E::GRpcStatus(s) => crate::grpc::is_transient(s.code()),
        E::LeaseKeepAliveError(m) => !m.contains("not found"),
        _ => true,
    }
}
