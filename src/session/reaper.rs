//! Workers' deaths on evidence: an active coordinator watches the sessions of the workers
//! it acts on (datanodes, querynodes, indexnodes) and, when one is provably gone
//! ([`super::liveness::gone`]), revokes that session's lease, so its channels, shards or
//! builds move in milliseconds instead of after the session TTL.
//!
//! Revoking deletes the worker's session key; the coordinator's own passes then see the
//! worker gone exactly as after a lease expiry and move its work (nothing else changes).
//! A lease ID names one session only (a restarted worker has a new lease), so a revoke
//! can never hit the worker's next life. The evidence rules are those of the standby
//! watching an ACTIVE key (docs/architecture.md §2.8): a paused or partitioned worker is
//! never reported and is replaced at lease expiry; a worker on another host is judged only
//! after one successful connection to its address (a refusal before any contact may be a
//! wrong advertised address). A wrong report would leave a live worker acting on a stale
//! view until its next keep-alive (at most TTL/3), and nothing it does then is recorded:
//! a datanode's and an indexnode's registrations are txns conditioned on its session key,
//! and a querynode's serving records are bound to the revoked lease, so proxies stop
//! routing to it at once.

use std::collections::HashMap;
use std::time::Duration;

use super::discovery::{Registered, SessionView};
use super::Keys;
use crate::etcd::Etcd;
use crate::role::Role;

/// How long the revoke of a gone worker's lease may take.
const REVOKE_TIMEOUT: Duration = Duration::from_secs(5);

/// A task aborted when dropped.
struct Watcher(tokio::task::JoinHandle<()>);

impl Drop for Watcher {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Watches every session of `workers` for death and revokes the lease of each that is
/// provably gone. Runs until dropped (the caller's term ends); `own_host` is this
/// process's host name.
pub async fn reap(etcd: Etcd, keys: Keys, workers: &'static [Role], own_host: String) {
    if workers.is_empty() {
        return std::future::pending().await;
    }
    let view = SessionView::follow(etcd.clone(), keys);
    let mut changes = view.subscribe();
    // Session key -> (its lease, the task watching that holder).
    let mut watched: HashMap<String, (i64, Watcher)> = HashMap::new();
    loop {
        let sessions = changes.borrow_and_update().clone();
        watched.retain(|key, (lease, _)| sessions.get(key).is_some_and(|r| r.lease == *lease));
        for (key, r) in &sessions {
            let Some(role) = Role::from_name(&r.value.server_name) else {
                continue;
            };
            if !workers.contains(&role) || r.lease == 0 || watched.contains_key(key) {
                continue;
            }
            let task = tokio::spawn(watch_one(etcd.clone(), role, own_host.clone(), r.clone()));
            watched.insert(key.clone(), (r.lease, Watcher(task)));
        }
        if changes.changed().await.is_err() {
            return std::future::pending().await;
        }
    }
}

/// How long a revoke is retried while etcd does not answer (the lease expires by then).
const REVOKE_RETRY_FOR: Duration = Duration::from_secs(60);

/// Waits for evidence that `worker` is gone, then revokes its lease. The revoke runs in
/// a task of its own: the revoke deletes the session key, and the key's deletion aborts
/// this watcher (it may arrive before the revoke's answer), which must not cut the revoke
/// or its report short.
async fn watch_one(etcd: Etcd, role: Role, own_host: String, worker: Registered) {
    // Another host's worker is judged only after one successful connection to it.
    let evidence = super::liveness::gone_after(role, &own_host, &worker.value, true).await;
    tokio::spawn(revoke(etcd, role, worker, evidence));
}

/// Revokes the gone `worker`'s lease, retrying while etcd does not answer.
async fn revoke(etcd: Etcd, role: Role, worker: Registered, evidence: String) {
    let lease = worker.lease;
    let started = tokio::time::Instant::now();
    let mut backoff = Duration::from_millis(100);
    loop {
        let revoked = etcd
            .call_within(REVOKE_TIMEOUT, |mut c| async move {
                c.lease_revoke(lease).await
            })
            .await;
        match revoked {
            Ok(_) => {
                log::warn!(ServerID = worker.value.server_id,
                    address = worker.value.address.as_str(), LeaseID = lease,
                    evidence = evidence.as_str();
                    "the {} is gone; revoked its session lease instead of waiting for its TTL",
                    role.name());
                return;
            }
            Err(e) if e.to_string().contains("not found") => return,
            Err(e) if started.elapsed() > REVOKE_RETRY_FOR => {
                log::warn!(ServerID = worker.value.server_id, LeaseID = lease, error:% = e;
                    "gave up revoking the gone {}'s lease; it expires with its TTL", role.name());
                return;
            }
            Err(e) => {
                log::warn!(ServerID = worker.value.server_id, LeaseID = lease, error:% = e;
                    "cannot revoke the gone {}'s lease yet, retrying", role.name());
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(2));
            }
        }
    }
}
