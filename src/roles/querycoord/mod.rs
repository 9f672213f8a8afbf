//! The query coordinator: persists which collections (or partitions) are loaded and with
//! how many replicas, gives every virtual channel of every replica a shard leader
//! querynode (which consumes the channel and loads the channel's flushed segments), moves
//! a vanished querynode's shards to the others, and reports load progress and shard
//! leaders from what querynodes say they serve. Active-standby: every write goes through
//! the fenced store; the standby follows the records (hot standby).

mod reconcile;
pub mod service;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::context::Context;
use crate::meta::catalog::{Catalog, CatalogKeys};
use crate::meta::follower::Follower;
use crate::meta::query::{assignment_rest, Assignments, LoadInfos, QueryKeys, Serving};
use crate::proto::common::Status;
use crate::proto::querycoord::LoadInfo;
use crate::role::Role;
use crate::roles::coordinator::Coordinator;
use crate::session::discovery::SessionView;
use crate::session::election::Term;
use crate::session::fenced::FencedStore;

/// The followers of everything the querycoord reads.
struct Followers {
    loads: Arc<Follower<LoadInfos>>,
    assignments: Arc<Follower<Assignments>>,
    _serving: Arc<Follower<Serving>>,
    catalog: Arc<Follower<Catalog>>,
}

/// What exists only while this process is the active querycoord.
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

/// The query coordinator of this process.
pub struct QueryCoord {
    ctx: Arc<Context>,
    keys: QueryKeys,
    loads: Arc<RwLock<LoadInfos>>,
    assignments: Arc<RwLock<Assignments>>,
    serving: Arc<RwLock<Serving>>,
    catalog: Arc<RwLock<Catalog>>,
    followers: Mutex<Option<Arc<Followers>>>,
    active: RwLock<Option<Arc<Active>>>,
    sessions: SessionView,
}

/// How a loaded collection's shards stand.
pub struct Progress {
    /// Shards (replica x channel) whose assigned querynode serves them.
    pub served: usize,
    /// Shards in all.
    pub total: usize,
}

impl Progress {
    /// Percent served.
    pub fn percent(&self) -> i64 {
        (self.served * 100)
            .checked_div(self.total)
            .map_or(100, |p| p as i64)
    }
}

impl QueryCoord {
    /// A querycoord for this process (not yet active).
    pub fn new(ctx: Arc<Context>) -> Arc<Self> {
        Arc::new(QueryCoord {
            keys: QueryKeys::new(&ctx.config.etcd.meta_root()),
            loads: Arc::default(),
            assignments: Arc::default(),
            serving: Arc::default(),
            catalog: Arc::default(),
            followers: Mutex::new(None),
            active: RwLock::new(None),
            sessions: SessionView::follow(ctx.etcd.clone(), ctx.keys.clone()),
            ctx,
        })
    }

    fn followers(&self) -> Arc<Followers> {
        let mut f = self.followers.lock().expect("followers lock");
        f.get_or_insert_with(|| {
            let etcd = &self.ctx.etcd;
            Arc::new(Followers {
                loads: Follower::start(etcd.clone(), self.keys.loads.clone(), self.loads.clone()),
                assignments: Follower::start(
                    etcd.clone(),
                    self.keys.assignments.clone(),
                    self.assignments.clone(),
                ),
                _serving: Follower::start(
                    etcd.clone(),
                    self.keys.serving.clone(),
                    self.serving.clone(),
                ),
                catalog: Follower::start(
                    etcd.clone(),
                    CatalogKeys::new(&self.ctx.config.etcd.meta_root()),
                    self.catalog.clone(),
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

    /// Live querynodes: ServerID -> address.
    fn live_querynodes(&self) -> BTreeMap<i64, String> {
        self.sessions
            .snapshot()
            .values()
            .filter(|s| s.value.server_name == Role::QueryNode.name() && !s.value.stopping)
            .map(|s| (s.value.server_id, s.value.address.clone()))
            .collect()
    }

    /// The load info of a collection.
    fn load_info(&self, coll: i64) -> Option<LoadInfo> {
        self.loads
            .read()
            .expect("loads lock")
            .get(&coll.to_string())
            .map(|r| r.value.clone())
    }

    /// How many of a loaded collection's shards are served by their assigned querynode.
    fn progress(&self, info: &LoadInfo) -> Progress {
        let assignments = self.assignments.read().expect("assignments lock");
        let serving = self.serving.read().expect("serving lock");
        let mut p = Progress {
            served: 0,
            total: 0,
        };
        for replica in 0..info.replica_number.max(1) {
            for vch in &info.vchannels {
                p.total += 1;
                let rest = assignment_rest(info.collection_id, replica, vch);
                let Some(a) = assignments.get(&rest) else {
                    continue;
                };
                let node = a.value.node_id;
                let served = serving
                    .get(&format!("{rest}/{node}"))
                    .is_some_and(|s| s.value.assignment_revision == a.revision);
                if node != 0 && served {
                    p.served += 1;
                }
            }
        }
        p
    }
}

impl Coordinator for Arc<QueryCoord> {
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
            f.loads.wait_applied(rev, Duration::from_secs(30)).await,
            f.assignments
                .wait_applied(rev, Duration::from_secs(30))
                .await,
            f.catalog.wait_applied(1, Duration::from_secs(30)).await,
        ] {
            if !caught_up {
                return Err(format!("the metadata did not catch up with revision {rev}"));
            }
        }
        let tasks = vec![tokio::spawn(reconcile::run(self.clone(), store.clone()))];
        *self.active.write().expect("active lock") = Some(Arc::new(Active { store, tasks }));
        let loaded = self.loads.read().expect("loads lock").all().count();
        log::info!(epoch = term.epoch, loaded_collections = loaded, total:? = started.elapsed();
            "querycoord activation stages");
        Ok(())
    }

    async fn deactivate(&self) {
        self.active.write().expect("active lock").take();
    }
}
