//! Follows the records under one etcd prefix into an in-memory [`Mirror`]: a full read,
//! then a watch from the next revision. A coordinator's standby (hot standby) and its
//! active (read-your-writes) keep their state current through it, so there is one code
//! path that applies records; other roles follow a coordinator's records read-only.
//!
//! "Applied up to revision R" only ever comes from the read's revision or from events
//! themselves: to know it has everything up to a point, a writer waits for the event of
//! its own write (watch events arrive in revision order). etcd's progress notifications
//! are not used: before etcd 3.4.24 / 3.5.8 one can overtake queued events.

use std::sync::{Arc, RwLock};
use std::time::Duration;

use etcd_client::{EventType, WatchOptions};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::etcd::Etcd;
use crate::session::discovery::watch_outcome;

/// State rebuilt from the records under one prefix.
pub trait Mirror: Default + Send + Sync + 'static {
    /// What names the records (the prefix and key layout).
    type Keys: Clone + Send + Sync + 'static;

    /// The prefix of every record.
    fn prefix(keys: &Self::Keys) -> &str;

    /// Applies a put of `key` at `revision` (keys that are not records are ignored).
    fn apply_put(
        &mut self,
        keys: &Self::Keys,
        key: &str,
        value: &[u8],
        revision: i64,
    ) -> Result<(), String>;

    /// Applies a delete of `key`.
    fn apply_delete(&mut self, keys: &Self::Keys, key: &str);
}

/// A running follower.
pub struct Follower<M: Mirror> {
    catalog: Arc<RwLock<M>>,
    applied: watch::Sender<i64>,
    task: JoinHandle<()>,
}

impl<M: Mirror> Drop for Follower<M> {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl<M: Mirror> Follower<M> {
    /// Starts following into `catalog`.
    pub fn start(etcd: Etcd, keys: M::Keys, catalog: Arc<RwLock<M>>) -> Arc<Follower<M>> {
        let applied = watch::Sender::new(0);
        let task = tokio::spawn(follow(etcd, keys, catalog.clone(), applied.clone()));
        Arc::new(Follower {
            catalog,
            applied,
            task,
        })
    }

    /// The state it keeps current.
    pub fn catalog(&self) -> &Arc<RwLock<M>> {
        &self.catalog
    }

    /// The etcd revision the catalog reflects.
    pub fn applied(&self) -> i64 {
        *self.applied.borrow()
    }

    /// Waits until the state has applied everything up to `revision` (the revision of
    /// a write under the prefix, whose own event marks the point). False after
    /// `limit`.
    pub async fn wait_applied(&self, revision: i64, limit: Duration) -> bool {
        let mut rx = self.applied.subscribe();
        tokio::time::timeout(limit, rx.wait_for(|a| *a >= revision))
            .await
            .is_ok_and(|r| r.is_ok())
    }
}

async fn follow<M: Mirror>(
    etcd: Etcd,
    keys: M::Keys,
    catalog: Arc<RwLock<M>>,
    applied: watch::Sender<i64>,
) {
    let prefix = M::prefix(&keys).to_string();
    loop {
        let (kvs, revision) = match etcd.get_prefix(&prefix).await {
            Ok(r) => r,
            Err(e) => {
                log::warn!(prefix = prefix.as_str(), error:% = e; "metadata read failed, retrying");
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
            }
        };
        let mut fresh = M::default();
        for kv in &kvs {
            let key = String::from_utf8_lossy(kv.key());
            if let Err(e) = fresh.apply_put(&keys, &key, kv.value(), kv.mod_revision()) {
                log::error!(error = e.as_str(); "skipping a metadata record that does not decode");
            }
        }
        let bytes: usize = kvs.iter().map(|kv| kv.value().len()).sum();
        log::debug!(prefix = prefix.as_str(), revision = revision, records = kvs.len(), bytes = bytes; "metadata read");
        drop(kvs);
        *catalog.write().expect("catalog lock") = fresh;
        applied.send_modify(|a| *a = (*a).max(revision));
        let opts = WatchOptions::new()
            .with_prefix()
            .with_start_revision(revision + 1);
        let mut stream = match etcd.watch(&prefix, opts).await {
            Ok(s) => s,
            Err(e) => {
                log::warn!(prefix = prefix.as_str(), error:% = e; "cannot watch metadata, reading it again");
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
            }
        };
        loop {
            match stream.message().await {
                Ok(Some(resp)) if !resp.canceled() => {
                    if resp.events().is_empty() {
                        continue;
                    }
                    let mut last = 0;
                    {
                        let mut cat = catalog.write().expect("catalog lock");
                        for ev in resp.events() {
                            let Some(kv) = ev.kv() else { continue };
                            let key = String::from_utf8_lossy(kv.key());
                            match ev.event_type() {
                                EventType::Put => {
                                    if let Err(e) =
                                        cat.apply_put(&keys, &key, kv.value(), kv.mod_revision())
                                    {
                                        log::error!(error = e.as_str(); "skipping a metadata record that does not decode");
                                    }
                                }
                                EventType::Delete => cat.apply_delete(&keys, &key),
                            }
                            last = last.max(kv.mod_revision());
                        }
                    }
                    log::debug!(prefix = prefix.as_str(), events = resp.events().len(), revision = last; "metadata events applied");
                    applied.send_modify(|a| *a = (*a).max(last));
                }
                // Compacted, closed or failed: read everything again.
                other => {
                    log::info!(prefix = prefix.as_str(), outcome = watch_outcome(&other).as_str(); "metadata watch ended, reading again");
                    break;
                }
            }
        }
    }
}
