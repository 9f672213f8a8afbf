//! Winning and holding a coordinator's ACTIVE (or exclusive) key.
//!
//! HA: register `<role>-<id>`, stand by, compete for `<role>` with a txn under the same
//! lease, watch the exact key from the txn's revision + 1, retry on its DELETE. Without HA:
//! claim `<role>` directly, waiting at most TTL + 1 s for a lingering holder. Either way the
//! result is a [`Term`] whose epoch is the key's create revision.

use std::sync::Arc;
use std::time::Duration;

use etcd_client::{
    Compare, CompareOp, EventType, PutOptions, Txn, TxnOp, TxnOpResponse, WatchOptions,
};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::discovery::watch_outcome;
use super::lease::Lease;
use super::{Session, SessionValue};
use crate::etcd::{Etcd, EtcdError};

/// Why an attempt to become active ended without a term.
#[derive(Debug, thiserror::Error)]
pub enum ElectionError {
    /// The session's lease was lost while waiting.
    #[error("the session lease was lost")]
    LeaseLost,
    /// Without HA: another live process holds the exclusive key.
    #[error(
        "another {role} is running: ServerID={holder_id}, address={holder_address} holds {key} \
         (waited {waited:?} for it to go away). To run this one as its standby, set \
         {section}.enableActiveStandby=true (env {env}=true) on both"
    )]
    ExclusiveHeld {
        /// Role name.
        role: String,
        /// The key.
        key: String,
        /// Holder's ServerID.
        holder_id: i64,
        /// Holder's address.
        holder_address: String,
        /// How long this process waited.
        waited: Duration,
        /// yaml section of the role.
        section: String,
        /// Environment variable of the HA switch.
        env: String,
    },
}

/// How an active term ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TermEnd {
    /// The lease could not be renewed before the fencing deadline, or expired.
    LeaseLost,
    /// The ACTIVE key was deleted or now belongs to another session.
    Deposed(String),
    /// A fenced write was refused: another process's term has begun.
    Fenced,
}

/// One term as the active coordinator. Its epoch is the ACTIVE key's create revision;
/// fenced writes are conditioned on it.
pub struct Term {
    /// Create revision of the ACTIVE key.
    pub epoch: i64,
    /// The ACTIVE key.
    pub active_key: String,
    /// This process's ServerID.
    pub server_id: i64,
    lease: Arc<Lease>,
    end: watch::Sender<Option<TermEnd>>,
    watcher: Option<JoinHandle<()>>,
}

impl Drop for Term {
    fn drop(&mut self) {
        if let Some(w) = self.watcher.take() {
            w.abort();
        }
    }
}

impl Term {
    /// True while this term may act: lease within its deadline and not ended.
    pub fn is_valid(&self) -> bool {
        self.lease.valid() && self.end.borrow().is_none()
    }

    /// Ends the term (first reason wins).
    pub fn end(&self, why: TermEnd) {
        self.end.send_if_modified(|e| {
            if e.is_none() {
                *e = Some(why);
                true
            } else {
                false
            }
        });
    }

    /// Waits until the term ends and says why.
    pub async fn ended(&self) -> TermEnd {
        let mut rx = self.end.subscribe();
        tokio::select! {
            r = rx.wait_for(|e| e.is_some()) => r.map(|e| e.clone().expect("set")).unwrap_or(TermEnd::LeaseLost),
            _ = self.lease.lost() => TermEnd::LeaseLost,
        }
    }

    fn start(etcd: &Etcd, session: &Session, key: String, epoch: i64) -> Term {
        let end = watch::Sender::new(None);
        let mut term = Term {
            epoch,
            active_key: key.clone(),
            server_id: session.server_id(),
            lease: session.lease.clone(),
            end: end.clone(),
            watcher: None,
        };
        let etcd = etcd.clone();
        term.watcher = Some(tokio::spawn(async move {
            let why = watch_term(&etcd, &key, epoch).await;
            end.send_if_modified(|e| {
                if e.is_none() {
                    *e = Some(TermEnd::Deposed(why));
                    true
                } else {
                    false
                }
            });
        }));
        term
    }
}

/// Follows the ACTIVE key from the epoch on; returns when it is deleted or replaced.
async fn watch_term(etcd: &Etcd, key: &str, epoch: i64) -> String {
    let mut from = epoch + 1;
    loop {
        match watch_key(etcd, key, from).await {
            Ok(mut stream) => loop {
                let msg = stream.message().await;
                let resp = match msg {
                    Ok(Some(resp)) if !resp.canceled() => resp,
                    // Compacted, closed or failed: re-check the key itself, then watch
                    // from there.
                    other => {
                        log::info!(outcome = watch_outcome(&other).as_str(); "ACTIVE key watch ended, checking the key");
                        break;
                    }
                };
                for ev in resp.events() {
                    let Some(kv) = ev.kv() else { continue };
                    from = kv.mod_revision() + 1;
                    if ev.event_type() == EventType::Delete {
                        return format!("ACTIVE key {key} was deleted");
                    }
                    if kv.create_revision() != epoch {
                        return format!("ACTIVE key {key} was re-created by another session");
                    }
                }
            },
            Err(e) => log::warn!(error:% = e; "cannot watch the ACTIVE key, retrying"),
        }
        let k = key.to_string();
        match etcd.call(|mut c| async move { c.get(k, None).await }).await {
            Ok(resp) => match resp.kvs().first() {
                None => return format!("ACTIVE key {key} is gone"),
                Some(kv) if kv.create_revision() != epoch => {
                    return format!("ACTIVE key {key} belongs to another session")
                }
                Some(_) => {
                    if let Some(h) = resp.header() {
                        from = from.max(h.revision() + 1);
                    }
                }
            },
            Err(e) => log::debug!(error:% = e; "cannot read the ACTIVE key, retrying"),
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn watch_key(etcd: &Etcd, key: &str, from: i64) -> Result<crate::etcd::Watch, EtcdError> {
    etcd.watch(key, WatchOptions::new().with_start_revision(from))
        .await
}

/// Aborts a task when dropped, so a task tied to a future does not outlive it.
struct AbortOnDrop(JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// The outcome of one txn on the ACTIVE key.
enum Attempt {
    /// This session holds the key (freshly won, or a retried txn that had gone through).
    Won,
    /// Another session holds it; watch from this revision.
    Held { holder: SessionValue, revision: i64 },
    /// The holder's key vanished between the compare and the read.
    Retry,
}

/// How long one campaign call (the claim, the phantom-win check) may take before it is
/// sent again, to the next endpoint: a third of the TTL, from 0.5 s up to
/// `etcd.requestTimeout`. Both calls are safe to repeat (a claim that did apply is seen
/// as this session's own on the next try), and a member that lost its leader and has not
/// noticed yet drops proposals without answering: a full request timeout spent on it is
/// most of a short lease.
fn campaign_call_limit(session: &Session) -> Duration {
    (session.lease.ttl() / 3)
        .max(Duration::from_millis(500))
        .min(session.etcd.timeout())
}

async fn try_claim(session: &Session, key: &str) -> Result<Attempt, EtcdError> {
    let k = key.to_string();
    let value = session.value.to_json();
    let lease = session.lease.id();
    let resp = session
        .etcd
        .call_within(campaign_call_limit(session), |mut c| async move {
            c.txn(
                Txn::new()
                    .when([Compare::version(k.clone(), CompareOp::Equal, 0)])
                    .and_then([TxnOp::put(
                        k.clone(),
                        value,
                        Some(PutOptions::new().with_lease(lease)),
                    )])
                    .or_else([TxnOp::get(k, None)]),
            )
            .await
        })
        .await?;
    if resp.succeeded() {
        return Ok(Attempt::Won);
    }
    let revision = resp.header().map_or(0, |h| h.revision());
    for op in resp.op_responses() {
        if let TxnOpResponse::Get(g) = op {
            if let Some(kv) = g.kvs().first() {
                let holder = SessionValue::parse(key, kv.value())?;
                if holder.server_id == session.server_id() && kv.lease() == lease {
                    return Ok(Attempt::Won);
                }
                return Ok(Attempt::Held { holder, revision });
            }
        }
    }
    Ok(Attempt::Retry)
}

/// Phantom-win guard: the key must hold this session's value and lease. Returns the epoch.
async fn confirm(session: &Session, key: &str) -> Result<Option<i64>, EtcdError> {
    let k = key.to_string();
    let resp = session
        .etcd
        .call_within(campaign_call_limit(session), |mut c| async move {
            c.get(k, None).await
        })
        .await?;
    Ok(resp.kvs().first().and_then(|kv| {
        let v = SessionValue::parse(key, kv.value()).ok()?;
        (v.server_id == session.server_id() && kv.lease() == session.lease.id())
            .then_some(kv.create_revision())
    }))
}

/// Waits for a DELETE of `key` from `from` on; logs each seen as the seed does. Returns
/// on a DELETE, on a broken watch (the caller retries its txn), or after `limit`.
async fn wait_for_delete(etcd: &Etcd, key: &str, from: i64, limit: Option<Duration>) {
    let work = async {
        let mut stream = match watch_key(etcd, key, from).await {
            Ok(s) => s,
            Err(e) => {
                log::warn!(error:% = e; "cannot watch the ACTIVE key, trying again");
                tokio::time::sleep(Duration::from_millis(200)).await;
                return;
            }
        };
        loop {
            match stream.message().await {
                Ok(Some(resp)) if !resp.canceled() => {
                    let mut deleted = false;
                    for ev in resp.events() {
                        if ev.event_type() == EventType::Delete {
                            let (k, rev) = ev
                                .kv()
                                .map(|kv| {
                                    (
                                        String::from_utf8_lossy(kv.key()).to_string(),
                                        kv.mod_revision(),
                                    )
                                })
                                .unwrap_or_default();
                            log::debug!(DELETE = format!("key:\"{k}\" mod_revision:{rev} "); "watch the ACTIVE key");
                            deleted = true;
                        }
                    }
                    if deleted {
                        return;
                    }
                }
                other => {
                    log::info!(outcome = watch_outcome(&other).as_str(); "ACTIVE key watch ended, trying again");
                    return;
                }
            }
        }
    };
    match limit {
        Some(l) => {
            let _ = tokio::time::timeout(l, work).await;
        }
        None => work.await,
    }
}

/// Retries an etcd step while the lease is valid, backing off briefly between failures.
async fn retry_while_valid<T, F, Fut>(
    lease: &Lease,
    what: &str,
    mut f: F,
) -> Result<T, ElectionError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, EtcdError>>,
{
    let mut backoff = Duration::from_millis(50);
    loop {
        if !lease.valid() {
            return Err(ElectionError::LeaseLost);
        }
        match f().await {
            Ok(v) => return Ok(v),
            Err(e) => {
                log::warn!(error:% = e, step = what; "etcd call failed, retrying");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_millis(500));
            }
        }
    }
}

/// Revokes `holder`'s session lease (never this session's own), which deletes every key
/// attached to it. `Ok(Some(lease))` when revoked, `Ok(None)` when there was nothing to
/// revoke (no lease recorded, or it has already ended).
async fn revoke_lease_of(
    session: &Session,
    holder: &SessionValue,
) -> Result<Option<i64>, EtcdError> {
    let Some(lease) = holder.lease_id.filter(|l| *l != session.lease.id()) else {
        return Ok(None);
    };
    match session
        .etcd
        .call(|mut c| async move { c.lease_revoke(lease).await })
        .await
    {
        Ok(_) => Ok(Some(lease)),
        Err(e) if e.to_string().contains("not found") => Ok(None),
        Err(e) => Err(e),
    }
}

/// After winning: if the previous holder's lease is still alive (its ACTIVE key was
/// deleted by hand, say), revoke it, so that process stops acting and re-registers
/// instead of serving beside the new active.
async fn revoke_previous(session: &Session, prev: &SessionValue) {
    match revoke_lease_of(session, prev).await {
        Ok(Some(lease)) => log::warn!(ServerID = prev.server_id, LeaseID = lease;
            "the previous ACTIVE's lease was still alive; revoked it"),
        Ok(None) => {}
        Err(e) => log::warn!(ServerID = prev.server_id, LeaseID = prev.lease_id, error:% = e;
            "cannot revoke the previous ACTIVE's lease; it expires after its TTL"),
    }
}

/// The ACTIVE holder is provably gone ([`super::liveness`]): revokes its lease, which
/// deletes its ACTIVE key at once, so the election proceeds without waiting out the TTL.
/// Revoking that lease is safe even if the evidence were wrong: its fenced writes are
/// refused from then on and it stops at its next renewal.
async fn revoke_dead(session: &Session, holder: &SessionValue, evidence: &str) {
    match revoke_lease_of(session, holder).await {
        Ok(Some(lease)) => {
            log::warn!(ServerID = holder.server_id, address = holder.address.as_str(),
            LeaseID = lease, evidence = evidence;
            "the ACTIVE {} is gone; revoked its session lease instead of waiting for its TTL",
            session.role.name())
        }
        Ok(None) => {}
        Err(e) => log::warn!(ServerID = holder.server_id, LeaseID = holder.lease_id, error:% = e;
            "cannot revoke the gone ACTIVE's lease; it expires after its TTL"),
    }
}

/// HA: stands by until this session wins the ACTIVE key. The per-server key must already
/// be registered.
pub async fn stand_by_until_active(session: &Session) -> Result<Term, ElectionError> {
    let role = session.role.name();
    let key = session.keys.active(session.role);
    log::info!("serverName: {role} enter STANDBY mode");
    let _heartbeat = AbortOnDrop(tokio::spawn(async move {
        let mut tick = tokio::time::interval_at(
            Instant::now() + Duration::from_secs(10),
            Duration::from_secs(10),
        );
        loop {
            tick.tick().await;
            log::info!("serverName: {role} is in STANDBY ...");
        }
    }));
    let mut previous: Option<SessionValue> = None;
    let result = async {
        loop {
            let attempt = retry_while_valid(&session.lease, "register ACTIVE", || try_claim(session, &key)).await?;
            match attempt {
                Attempt::Won => {
                    log::info!(ServerID = session.server_id(); "register ACTIVE service successfully");
                    let confirmed = retry_while_valid(&session.lease, "confirm ACTIVE", || confirm(session, &key)).await?;
                    if let Some(epoch) = confirmed {
                        if let Some(prev) = previous.take() {
                            revoke_previous(session, &prev).await;
                        }
                        log::info!("quit STANDBY mode, this node will become ACTIVE");
                        return Ok(Term::start(&session.etcd, session, key.clone(), epoch));
                    }
                    log::warn!(key = key.as_str(); "ACTIVE key does not hold this session after winning it, standing by again");
                }
                Attempt::Held { holder, revision } => {
                    log::debug!(ServerID = holder.server_id, address = holder.address.as_str(); "ACTIVE key is held, watching it");
                    let gone = super::liveness::gone(session.role, &session.value.host_name, &holder);
                    tokio::select! {
                        _ = wait_for_delete(&session.etcd, &key, revision + 1, None) => {}
                        evidence = gone => revoke_dead(session, &holder, &evidence).await,
                        _ = session.lease.lost() => return Err(ElectionError::LeaseLost),
                    }
                    previous = Some(holder);
                    log::info!("stop watching ACTIVE key");
                    log::info!("start retrying to register as ACTIVE service...");
                }
                Attempt::Retry => {}
            }
        }
    }
    .await;
    result
}

/// True when `holder`, which advertises this process's own address, is provably not
/// running: it registered from this host (same HostName) and its pid is this process
/// (an earlier session of its own) or no longer a `milvus run <role>` process. Two live
/// processes that share an advertised address (a service name) on different hosts are
/// never taken for each other's dead predecessor.
fn provably_gone(session: &Session, holder: &SessionValue) -> bool {
    if holder.host_name != session.value.host_name || holder.pid == 0 {
        return false;
    }
    holder.pid == std::process::id()
        || !crate::pidfile::is_milvus_role(holder.pid as i32, session.role)
}

/// Without HA: claims the exclusive key, waiting at most TTL + 1 s for another holder
/// to go away. A holder at this process's own address that is provably gone (see
/// [`provably_gone`]) is a dead predecessor: its lease is revoked at once.
pub async fn claim_exclusive(session: &Session, env_switch: &str) -> Result<Term, ElectionError> {
    let key = session.keys.active(session.role);
    let started = Instant::now();
    let limit = session.lease.ttl() + Duration::from_secs(1);
    loop {
        let attempt = retry_while_valid(&session.lease, "register exclusive", || {
            try_claim(session, &key)
        })
        .await?;
        match attempt {
            Attempt::Won => {
                let confirmed = retry_while_valid(&session.lease, "confirm exclusive", || {
                    confirm(session, &key)
                })
                .await?;
                if let Some(epoch) = confirmed {
                    log::info!(key = key.as_str(), ServerID = session.server_id(); "service registered");
                    return Ok(Term::start(&session.etcd, session, key.clone(), epoch));
                }
            }
            Attempt::Held { holder, revision } => {
                if holder.address == session.value.address && provably_gone(session, &holder) {
                    log::warn!(ServerID = holder.server_id, address = holder.address.as_str();
                        "the exclusive key is held by an earlier process at this address, which is gone; removing its session");
                    let _ = revoke_lease_of(session, &holder).await;
                    let k = key.clone();
                    let _ = session
                        .etcd
                        .call(|mut c| async move {
                            c.txn(
                                Txn::new()
                                    .when([Compare::mod_revision(
                                        k.clone(),
                                        CompareOp::Less,
                                        revision + 1,
                                    )])
                                    .and_then([TxnOp::delete(k, None)]),
                            )
                            .await
                        })
                        .await;
                    continue;
                }
                let waited = started.elapsed();
                if waited >= limit {
                    return Err(ElectionError::ExclusiveHeld {
                        role: session.role.name().to_string(),
                        key: key.clone(),
                        holder_id: holder.server_id,
                        holder_address: holder.address,
                        waited,
                        section: session.role.section().to_string(),
                        env: env_switch.to_string(),
                    });
                }
                log::warn!(key = key.as_str(), ServerID = holder.server_id, address = holder.address.as_str(),
                    wait_left:? = limit - waited;
                    "exclusive key is held by another process, waiting for its session to expire");
                tokio::select! {
                    _ = wait_for_delete(&session.etcd, &key, revision + 1, Some(limit - waited)) => {}
                    _ = session.lease.lost() => return Err(ElectionError::LeaseLost),
                }
            }
            Attempt::Retry => {}
        }
    }
}
