//! Discovery: find a coordinator's active session and every live session, and follow
//! changes through a watch on the session prefix (re-reading after a compaction).

use std::collections::BTreeMap;
use std::time::Duration;

use etcd_client::{EventType, WatchOptions};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::{Keys, SessionValue};
use crate::etcd::{Etcd, EtcdError};
use crate::role::Role;

/// One session key and its value.
#[derive(Debug, Clone, PartialEq)]
pub struct Registered {
    /// Full etcd key.
    pub key: String,
    /// Parsed value.
    pub value: SessionValue,
    /// The lease the key is attached to (0 if none).
    pub lease: i64,
    /// Create revision of the key.
    pub create_revision: i64,
}

/// The active (or exclusive) session of a coordinator, if any.
pub async fn active(etcd: &Etcd, keys: &Keys, role: Role) -> Result<Option<Registered>, EtcdError> {
    let key = keys.active(role);
    let k = key.clone();
    let resp = etcd
        .call(|mut c| async move { c.get(k, None).await })
        .await?;
    resp.kvs()
        .first()
        .map(|kv| {
            Ok(Registered {
                key: key.clone(),
                value: SessionValue::parse(&key, kv.value())?,
                lease: kv.lease(),
                create_revision: kv.create_revision(),
            })
        })
        .transpose()
}

/// Every session key under the prefix (the ServerID counter excluded), and the revision
/// the read was made at.
pub async fn all(etcd: &Etcd, keys: &Keys) -> Result<(Vec<Registered>, i64), EtcdError> {
    let prefix = keys.session_prefix();
    let (kvs, revision) = etcd.get_prefix(&prefix).await?;
    let counter = keys.server_id_counter();
    let mut out = Vec::new();
    for kv in &kvs {
        let key = String::from_utf8_lossy(kv.key()).to_string();
        if key == counter {
            continue;
        }
        match SessionValue::parse(&key, kv.value()) {
            Ok(value) => out.push(Registered {
                key,
                value,
                lease: kv.lease(),
                create_revision: kv.create_revision(),
            }),
            Err(e) => log::warn!(error:% = e; "skipping a session key that is not a session"),
        }
    }
    Ok((out, revision))
}

/// A process's standing, read off its session keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Standing {
    /// A coordinator holding its role's active key.
    Active,
    /// A coordinator waiting to take over.
    Standby,
    /// A proxy or a node.
    Worker,
}

impl Standing {
    /// As `milvus status` prints it.
    pub fn as_str(self) -> &'static str {
        match self {
            Standing::Active => "ACTIVE",
            Standing::Standby => "STANDBY",
            Standing::Worker => "worker",
        }
    }
}

/// One entry per process of `sessions` with its standing: a coordinator's active key
/// is folded into its per-server key when both exist.
pub fn processes<'a>(sessions: &'a [Registered], keys: &Keys) -> Vec<(&'a Registered, Standing)> {
    let active_ids: Vec<(&str, i64)> = sessions
        .iter()
        .filter(|s| Role::from_name(&s.value.server_name).is_some_and(|r| s.key == keys.active(r)))
        .map(|s| (s.value.server_name.as_str(), s.value.server_id))
        .collect();
    let mut out = Vec::new();
    for s in sessions {
        let role = Role::from_name(&s.value.server_name);
        let is_active_key = role.is_some_and(|r| s.key == keys.active(r));
        let standing = match role {
            Some(r) if r.is_coordinator() => {
                let per_server_exists = sessions
                    .iter()
                    .any(|o| o.key == keys.per_server(r, s.value.server_id));
                if is_active_key && per_server_exists {
                    continue; // counted on its per-server key
                }
                if is_active_key
                    || active_ids.contains(&(s.value.server_name.as_str(), s.value.server_id))
                {
                    Standing::Active
                } else {
                    Standing::Standby
                }
            }
            _ => Standing::Worker,
        };
        out.push((s, standing));
    }
    out
}

/// A live view of every session, kept current by a watch on the session prefix.
pub struct SessionView {
    rx: watch::Receiver<BTreeMap<String, Registered>>,
    task: JoinHandle<()>,
    keys: Keys,
}

impl Drop for SessionView {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl SessionView {
    /// Starts following the sessions under `keys`.
    pub fn follow(etcd: Etcd, keys: Keys) -> SessionView {
        let (tx, rx) = watch::channel(BTreeMap::new());
        let k = keys.clone();
        let task = tokio::spawn(async move { follow_loop(etcd, k, tx).await });
        SessionView { rx, task, keys }
    }

    /// The current sessions by key.
    pub fn snapshot(&self) -> BTreeMap<String, Registered> {
        self.rx.borrow().clone()
    }

    /// A receiver of the view, to wait for its next change (`changed`).
    pub fn subscribe(&self) -> watch::Receiver<BTreeMap<String, Registered>> {
        self.rx.clone()
    }

    /// The active session of `role` in the current view.
    pub fn active(&self, role: Role) -> Option<Registered> {
        self.rx.borrow().get(&self.keys.active(role)).cloned()
    }

    /// Waits until `role`'s active session is one other than `from` (ServerID; `None`: no
    /// active), or `limit` passes. True when it is.
    pub async fn wait_active_other_than(
        &self,
        role: Role,
        from: Option<i64>,
        limit: Duration,
    ) -> bool {
        let key = self.keys.active(role);
        self.wait_for(limit, |m| {
            let now = m.get(&key).map(|r| r.value.server_id);
            now.is_some() && now != from
        })
        .await
    }

    /// Waits until `pred` holds for the view, or `limit` passes.
    pub async fn wait_for(
        &self,
        limit: Duration,
        mut pred: impl FnMut(&BTreeMap<String, Registered>) -> bool,
    ) -> bool {
        let mut rx = self.rx.clone();
        tokio::time::timeout(limit, rx.wait_for(|m| pred(m)))
            .await
            .is_ok_and(|r| r.is_ok())
    }
}

async fn follow_loop(etcd: Etcd, keys: Keys, tx: watch::Sender<BTreeMap<String, Registered>>) {
    loop {
        // (Re-)read everything, then watch from just after that read.
        let (list, revision) = match all(&etcd, &keys).await {
            Ok(r) => r,
            Err(e) => {
                log::debug!(error:% = e; "session view: read failed, retrying");
                tokio::time::sleep(Duration::from_millis(300)).await;
                continue;
            }
        };
        tx.send_replace(list.into_iter().map(|r| (r.key.clone(), r)).collect());
        let prefix = keys.session_prefix();
        let opts = WatchOptions::new()
            .with_prefix()
            .with_start_revision(revision + 1);
        let mut stream = match etcd.watch(&prefix, opts).await {
            Ok(s) => s,
            Err(e) => {
                log::warn!(error:% = e; "session view: cannot watch the sessions, reading again");
                tokio::time::sleep(Duration::from_millis(300)).await;
                continue;
            }
        };
        let counter = keys.server_id_counter();
        loop {
            match stream.message().await {
                Ok(Some(resp)) if !resp.canceled() => {
                    tx.send_modify(|m| {
                        for ev in resp.events() {
                            let Some(kv) = ev.kv() else { continue };
                            let key = String::from_utf8_lossy(kv.key()).to_string();
                            if key == counter {
                                continue;
                            }
                            match ev.event_type() {
                                EventType::Delete => {
                                    m.remove(&key);
                                }
                                EventType::Put => {
                                    if let Ok(value) = SessionValue::parse(&key, kv.value()) {
                                        m.insert(
                                            key.clone(),
                                            Registered {
                                                key,
                                                value,
                                                lease: kv.lease(),
                                                create_revision: kv.create_revision(),
                                            },
                                        );
                                    }
                                }
                            }
                        }
                    });
                }
                // Compacted, closed or failed: start over with a fresh read.
                other => {
                    log::info!(outcome = watch_outcome(&other).as_str(); "session watch ended, reading again");
                    break;
                }
            }
        }
    }
}

/// Why a watch stream ended, for the log.
pub fn watch_outcome(r: &Result<Option<etcd_client::WatchResponse>, etcd_client::Error>) -> String {
    match r {
        Ok(Some(resp)) if resp.canceled() => format!(
            "canceled (compacted at {}): {}",
            resp.compact_revision(),
            resp.cancel_reason()
        ),
        Ok(Some(_)) => "unexpected response".to_string(),
        Ok(None) => "stream closed by the server".to_string(),
        Err(e) => format!("stream failed: {e}"),
    }
}
