//! Follows the catalog records in etcd: a full read, then a watch from the next revision.
//! Both the standby (hot standby) and the active (read-your-writes) keep their in-memory
//! catalog current through it, so there is one code path that applies records.

use std::sync::{Arc, RwLock};
use std::time::Duration;

use etcd_client::{EventType, GetOptions, WatchOptions, WatchRequestSender};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::catalog::{Catalog, CatalogKeys};
use crate::etcd::Etcd;

/// A running follower.
pub struct Follower {
    catalog: Arc<RwLock<Catalog>>,
    applied: watch::Sender<i64>,
    progress: Arc<tokio::sync::Mutex<Option<WatchRequestSender>>>,
    task: JoinHandle<()>,
}

impl Drop for Follower {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Follower {
    /// Starts following into `catalog`.
    pub fn start(etcd: Etcd, keys: CatalogKeys, catalog: Arc<RwLock<Catalog>>) -> Arc<Follower> {
        let applied = watch::Sender::new(0);
        let progress = Arc::new(tokio::sync::Mutex::new(None));
        let task = tokio::spawn(follow(
            etcd,
            keys,
            catalog.clone(),
            applied.clone(),
            progress.clone(),
        ));
        Arc::new(Follower {
            catalog,
            applied,
            progress,
            task,
        })
    }

    /// The catalog it keeps current.
    pub fn catalog(&self) -> &Arc<RwLock<Catalog>> {
        &self.catalog
    }

    /// The etcd revision the catalog reflects.
    pub fn applied(&self) -> i64 {
        *self.applied.borrow()
    }

    /// Waits until every catalog change up to `revision` is applied, asking etcd for a
    /// progress notification while it waits. Returns false after `limit`.
    pub async fn wait_applied(&self, revision: i64, limit: Duration) -> bool {
        let deadline = Instant::now() + limit;
        let mut rx = self.applied.subscribe();
        loop {
            if *rx.borrow_and_update() >= revision {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            if let Some(sender) = self.progress.lock().await.as_mut() {
                let _ = sender.request_progress().await;
            }
            let _ = tokio::time::timeout(Duration::from_millis(20), rx.changed()).await;
        }
    }
}

async fn follow(
    etcd: Etcd,
    keys: CatalogKeys,
    catalog: Arc<RwLock<Catalog>>,
    applied: watch::Sender<i64>,
    progress: Arc<tokio::sync::Mutex<Option<WatchRequestSender>>>,
) {
    loop {
        let prefix = keys.prefix().to_string();
        let read = etcd
            .call(|mut c| async move { c.get(prefix, Some(GetOptions::new().with_prefix())).await })
            .await;
        let resp = match read {
            Ok(r) => r,
            Err(e) => {
                log::debug!(error:% = e; "catalog read failed, retrying");
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
            }
        };
        let revision = resp.header().map_or(0, |h| h.revision());
        let mut fresh = Catalog::default();
        for kv in resp.kvs() {
            let key = String::from_utf8_lossy(kv.key());
            if let Err(e) = fresh.apply_put(&keys, &key, kv.value()) {
                log::error!(error = e.as_str(); "skipping a catalog record that does not decode");
            }
        }
        *catalog.write().expect("catalog lock") = fresh;
        applied.send_modify(|a| *a = (*a).max(revision));
        let prefix = keys.prefix().to_string();
        let opts = WatchOptions::new()
            .with_prefix()
            .with_start_revision(revision + 1);
        let stream = etcd
            .call(|mut c| async move { c.watch(prefix, Some(opts)).await })
            .await;
        let Ok(stream) = stream else {
            tokio::time::sleep(Duration::from_millis(200)).await;
            continue;
        };
        let (sender, mut responses) = stream.split();
        *progress.lock().await = Some(sender);
        loop {
            match responses.message().await {
                Ok(Some(resp)) if !resp.canceled() => {
                    if resp.events().is_empty() {
                        // A progress notification: everything up to here has been sent.
                        if !resp.created() {
                            let rev = resp.header().map_or(0, |h| h.revision());
                            applied.send_modify(|a| *a = (*a).max(rev));
                        }
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
                                    if let Err(e) = cat.apply_put(&keys, &key, kv.value()) {
                                        log::error!(error = e.as_str(); "skipping a catalog record that does not decode");
                                    }
                                }
                                EventType::Delete => cat.apply_delete(&keys, &key),
                            }
                            last = last.max(kv.mod_revision());
                        }
                    }
                    applied.send_modify(|a| *a = (*a).max(last));
                }
                // Compacted, closed or failed: read everything again.
                _ => break,
            }
        }
        *progress.lock().await = None;
    }
}
