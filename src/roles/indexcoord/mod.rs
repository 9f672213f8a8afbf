//! The index coordinator: keeps index definitions (`field-index/`), gives every flushed
//! segment of at least `indexCoord.segment.minSegmentNumRowsToEnableIndex` rows a build
//! task (`segment-index/`), assigns tasks to live indexnodes (again when a node's session
//! vanished or a build failed), and reports progress. Active-standby with fenced writes;
//! the standby follows the records (hot standby).

mod ddl;
mod gc;
mod reconcile;
pub mod service;

use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::context::Context;
use crate::coord_client::ActiveRootCoord;
use crate::meta::data::{DataKeys, DataMeta};
use crate::meta::follower::Follower;
use crate::meta::index::{Builds, IndexDefs, IndexKeys};
use crate::proto::common::Status;
use crate::roles::coordinator::Coordinator;
use crate::session::discovery::SessionView;
use crate::session::election::Term;
use crate::session::fenced::FencedStore;
use crate::storage::Storage;

struct Followers {
    defs: Arc<Follower<IndexDefs>>,
    builds: Arc<Follower<Builds>>,
    segments: Arc<Follower<DataMeta>>,
}

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

/// The index coordinator of this process.
pub struct IndexCoord {
    ctx: Arc<Context>,
    keys: IndexKeys,
    defs: Arc<RwLock<IndexDefs>>,
    builds: Arc<RwLock<Builds>>,
    segments: Arc<RwLock<DataMeta>>,
    followers: Mutex<Option<Arc<Followers>>>,
    active: RwLock<Option<Arc<Active>>>,
    sessions: SessionView,
    storage: Storage,
    rootcoord: ActiveRootCoord,
    /// Index definition changes run one at a time.
    ddl: tokio::sync::Mutex<()>,
}

impl IndexCoord {
    /// An indexcoord for this process; an error when object storage is not usable.
    pub fn new(ctx: Arc<Context>) -> Result<Arc<Self>, String> {
        let storage = Storage::from_config(&ctx.config.storage)
            .map_err(|e| format!("object storage is not usable: {e}"))?;
        let rootcoord =
            ActiveRootCoord::for_process(ctx.etcd.clone(), ctx.keys.clone(), &ctx.config, ctx.role);
        Ok(Arc::new(IndexCoord {
            keys: IndexKeys::new(&ctx.config.etcd.meta_root()),
            defs: Arc::default(),
            builds: Arc::default(),
            segments: Arc::default(),
            followers: Mutex::new(None),
            active: RwLock::new(None),
            sessions: SessionView::follow(ctx.etcd.clone(), ctx.keys.clone()),
            storage,
            rootcoord,
            ddl: tokio::sync::Mutex::new(()),
            ctx,
        }))
    }

    fn followers(&self) -> Arc<Followers> {
        let mut f = self.followers.lock().expect("followers lock");
        f.get_or_insert_with(|| {
            let etcd = &self.ctx.etcd;
            Arc::new(Followers {
                defs: Follower::start(etcd.clone(), self.keys.clone(), self.defs.clone()),
                builds: Follower::start(etcd.clone(), self.keys.clone(), self.builds.clone()),
                segments: Follower::start(
                    etcd.clone(),
                    DataKeys::new(&self.ctx.config.etcd.meta_root()),
                    self.segments.clone(),
                ),
            })
        })
        .clone()
    }

    fn active(&self) -> Result<Arc<Active>, Status> {
        let a = self.active.read().expect("active lock").clone();
        match a {
            Some(a) if a.store.term().is_valid() => Ok(a),
            _ => Err(crate::roles::coordinator::not_active(&self.ctx)),
        }
    }

    /// `count` fresh IDs from the rootcoord's allocator.
    async fn alloc_ids(&self, count: u32) -> Result<i64, String> {
        self.rootcoord.alloc_ids(count).await
    }
}

impl Coordinator for Arc<IndexCoord> {
    async fn on_standby(&self) {
        self.followers();
    }

    async fn activate(&self, term: Arc<Term>) -> Result<(), String> {
        let started = Instant::now();
        let store = FencedStore::new(self.ctx.etcd.clone(), term.clone());
        let f = self.followers();
        let ops = self
            .keys
            .epoch_markers()
            .into_iter()
            .map(|k| etcd_client::TxnOp::put(k, term.epoch.to_string(), None))
            .collect();
        let rev = store.write(ops).await.map_err(|e| e.to_string())?;
        for caught_up in [
            f.defs.wait_applied(rev, Duration::from_secs(30)).await,
            f.builds.wait_applied(rev, Duration::from_secs(30)).await,
            f.segments.wait_applied(1, Duration::from_secs(30)).await,
        ] {
            if !caught_up {
                return Err(format!("the metadata did not catch up with revision {rev}"));
            }
        }
        let tasks = vec![
            tokio::spawn(reconcile::run(self.clone(), store.clone())),
            tokio::spawn(gc::run(self.clone(), store.clone())),
        ];
        *self.active.write().expect("active lock") = Some(Arc::new(Active { store, tasks }));
        log::info!(epoch = term.epoch, indexes = self.defs.read().expect("defs lock").all().count(),
            builds = self.builds.read().expect("builds lock").all().count(), total:? = started.elapsed();
            "indexcoord activation stages");
        Ok(())
    }

    async fn deactivate(&self) {
        self.active.write().expect("active lock").take();
    }
}
