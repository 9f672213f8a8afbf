//! The data coordinator: assigns virtual channels to datanodes, keeps the segment
//! records the datanodes register (and marks a dropped collection's segments Dropped),
//! answers flush state and statistics, and collects garbage files. Active-standby: every
//! write goes through the fenced store; the standby follows the records (hot standby),
//! so taking over reads nothing.

mod compaction;
mod gc;
mod reconcile;
mod retention;
pub mod service;

use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::context::Context;
use crate::meta::catalog::{Catalog, CatalogKeys};
use crate::meta::data::{ChannelMap, DataKeys, DataMeta};
use crate::meta::follower::Follower;
use crate::meta::index::{Builds, IndexDefs, IndexKeys};
use crate::proto::common::Status;
use crate::roles::coordinator::Coordinator;
use crate::session::discovery::SessionView;
use crate::session::election::Term;
use crate::session::fenced::FencedStore;
use crate::storage::Storage;

/// The followers of everything the datacoord reads.
struct Followers {
    meta: Arc<Follower<DataMeta>>,
    channels: Arc<Follower<ChannelMap>>,
    catalog: Arc<Follower<Catalog>>,
    _defs: Arc<Follower<IndexDefs>>,
    _builds: Arc<Follower<Builds>>,
}

/// What exists only while this process is the active datacoord.
struct Active {
    store: FencedStore,
    tasks: Vec<JoinHandle<()>>,
}

impl Drop for Active {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

/// The data coordinator of this process.
pub struct DataCoord {
    ctx: Arc<Context>,
    keys: DataKeys,
    meta: Arc<RwLock<DataMeta>>,
    channels: Arc<RwLock<ChannelMap>>,
    catalog: Arc<RwLock<Catalog>>,
    /// Index definitions and builds: automatic compaction waits for a segment's index.
    index_defs: Arc<RwLock<IndexDefs>>,
    builds: Arc<RwLock<Builds>>,
    followers: Mutex<Option<Arc<Followers>>>,
    active: RwLock<Option<Arc<Active>>>,
    sessions: SessionView,
    storage: Storage,
    /// For compaction plan IDs.
    rootcoord: crate::coord_client::ActiveRootCoord,
}

impl DataCoord {
    /// A datacoord for this process (not yet active); an error when its object storage
    /// (which it collects garbage in) is not usable.
    pub fn new(ctx: Arc<Context>) -> Result<Arc<Self>, String> {
        let storage = Storage::from_config(&ctx.config.storage)
            .map_err(|e| format!("object storage is not usable: {e}"))?;
        Ok(Arc::new(DataCoord {
            keys: DataKeys::new(&ctx.config.etcd.meta_root()),
            meta: Arc::default(),
            channels: Arc::default(),
            catalog: Arc::default(),
            index_defs: Arc::default(),
            builds: Arc::default(),
            followers: Mutex::new(None),
            active: RwLock::new(None),
            sessions: SessionView::follow(ctx.etcd.clone(), ctx.keys.clone()),
            storage,
            rootcoord: crate::coord_client::ActiveRootCoord::for_process(
                ctx.etcd.clone(),
                ctx.keys.clone(),
                &ctx.config,
                ctx.role,
            ),
            ctx,
        }))
    }

    fn followers(&self) -> Arc<Followers> {
        let mut f = self.followers.lock().expect("followers lock");
        f.get_or_insert_with(|| {
            let etcd = &self.ctx.etcd;
            Arc::new(Followers {
                meta: Follower::start(etcd.clone(), self.keys.clone(), self.meta.clone()),
                channels: Follower::start(etcd.clone(), self.keys.clone(), self.channels.clone()),
                catalog: Follower::start(
                    etcd.clone(),
                    CatalogKeys::new(&self.ctx.config.etcd.meta_root()),
                    self.catalog.clone(),
                ),
                _defs: Follower::start(
                    etcd.clone(),
                    IndexKeys::new(&self.ctx.config.etcd.meta_root()),
                    self.index_defs.clone(),
                ),
                _builds: Follower::start(
                    etcd.clone(),
                    IndexKeys::new(&self.ctx.config.etcd.meta_root()),
                    self.builds.clone(),
                ),
            })
        })
        .clone()
    }

    /// The active state, or the status a standby answers with.
    fn active(&self) -> Result<Arc<Active>, Status> {
        let a = self.active.read().expect("active lock").clone();
        match a {
            Some(a) if a.store.term().is_valid() => Ok(a),
            _ => Err(crate::roles::coordinator::not_active(&self.ctx)),
        }
    }
}

/// Plans compactions every `dataCoord.compaction.mix.triggerInterval` while the term
/// lasts (when compaction and automatic compaction are enabled).
async fn auto_compaction(dc: Arc<DataCoord>, store: FencedStore) {
    let c = dc.ctx.config.segment.compaction.clone();
    if !(c.enabled && c.auto) {
        return;
    }
    while store.term().is_valid() {
        tokio::time::sleep(c.trigger_interval).await;
        match compaction::plan(&dc, &store, None, 0, false).await {
            Ok(_) => {}
            Err(compaction::PlanError::Fence(
                crate::session::fenced::FenceError::NotActive
                | crate::session::fenced::FenceError::Fenced { .. },
            )) => return,
            Err(e) => log::warn!(error:% = e; "automatic compaction planning failed, trying again"),
        }
    }
}

impl Coordinator for Arc<DataCoord> {
    async fn on_standby(&self) {
        self.followers();
    }

    async fn activate(&self, term: Arc<Term>) -> Result<(), String> {
        let started = Instant::now();
        let store = FencedStore::new(self.ctx.etcd.clone(), term.clone());
        let f = self.followers();
        // Mark the term in both followed prefixes in one write: once both followers have
        // applied its events, they hold every earlier record.
        let ops = self
            .keys
            .epoch_markers()
            .into_iter()
            .map(|k| etcd_client::TxnOp::put(k, term.epoch.to_string(), None))
            .collect();
        let rev = store.write(ops).await.map_err(|e| e.to_string())?;
        for caught_up in [
            f.meta.wait_applied(rev, Duration::from_secs(30)).await,
            f.channels.wait_applied(rev, Duration::from_secs(30)).await,
            // The catalog prefix has no marker: its first full read is what counts.
            f.catalog.wait_applied(1, Duration::from_secs(30)).await,
        ] {
            if !caught_up {
                return Err(format!("the metadata did not catch up with revision {rev}"));
            }
        }
        let tasks = vec![
            tokio::spawn(reconcile::run(self.clone(), store.clone())),
            tokio::spawn(gc::run(self.clone(), store.clone(), self.storage.clone())),
            tokio::spawn(retention::run(self.clone(), store.clone())),
            tokio::spawn(auto_compaction(self.clone(), store.clone())),
        ];
        *self.active.write().expect("active lock") = Some(Arc::new(Active { store, tasks }));
        let (segments, channels) = (
            self.meta.read().expect("meta lock").segments().count(),
            self.channels.read().expect("channels lock").all().count(),
        );
        log::info!(epoch = term.epoch, segments = segments, channels = channels, total:? = started.elapsed();
            "datacoord activation stages");
        Ok(())
    }

    async fn deactivate(&self) {
        self.active.write().expect("active lock").take();
    }
}
