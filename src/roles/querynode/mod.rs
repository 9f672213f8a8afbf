//! The querynode: serves the shards the querycoord assigned to it. For each one it loads
//! the channel's flushed segments (Parquet + vector index) from object storage, consumes
//! the channel's growing rows from the log after the checkpoint, hands segments over as
//! they flush and get indexed (`shard`), and answers shard searches and queries from
//! proxies (`search`, `service`). Once a shard is loaded and caught up with the log, it
//! says so in a serving record bound to its session lease, which is how the querycoord
//! and proxies learn it is ready (and forget it when the session ends).

mod chunk;
mod search;
pub mod service;
mod shard;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use etcd_client::PutOptions;
use prost::Message;

use crate::context::Context;
use crate::meta::catalog::{Catalog, CatalogKeys};
use crate::meta::data::{DataKeys, DataMeta};
use crate::meta::follower::Follower;
use crate::meta::index::{Builds, IndexDefs, IndexKeys};
use crate::meta::query::{Assignments, QueryKeys};
use crate::proto::querycoord::ServingRecord;
use crate::roles::worker::{Owner, Task, Worker};
use crate::session::Session;
use crate::storage::Storage;
use crate::wal::Wal;

pub use shard::Shard;

/// How often the querynode compares its shards with its assignments.
const MANAGE_EVERY: Duration = Duration::from_millis(200);

/// A shard's name: collection, replica, virtual channel.
pub type ShardKey = (i64, i32, String);

/// What the shards and the service share.
pub struct Shared {
    ctx: Arc<Context>,
    keys: QueryKeys,
    assignments: Arc<RwLock<Assignments>>,
    data_meta: Arc<RwLock<DataMeta>>,
    index_defs: Arc<RwLock<IndexDefs>>,
    builds: Arc<RwLock<Builds>>,
    catalog: Arc<RwLock<Catalog>>,
    storage: Storage,
    wal: tokio::sync::OnceCell<Wal>,
    /// The shards served now (ready or loading).
    shards: RwLock<HashMap<ShardKey, Arc<Shard>>>,
}

impl Shared {
    /// The log, connected on first use.
    async fn wal(&self) -> Result<&Wal, String> {
        let log = &self.ctx.config.log;
        self.wal
            .get_or_try_init(|| {
                Wal::for_config(log, crate::wal::connection_name(self.ctx.role.name()))
            })
            .await
            .map_err(|e| e.to_string())
    }

    /// The shard `key`, when served here.
    pub fn shard(&self, key: &ShardKey) -> Option<Arc<Shard>> {
        self.shards.read().expect("shards lock").get(key).cloned()
    }
}

/// The followers a querynode keeps running.
struct Followers {
    _assignments: Arc<Follower<Assignments>>,
    _data: Arc<Follower<DataMeta>>,
    _defs: Arc<Follower<IndexDefs>>,
    _builds: Arc<Follower<Builds>>,
    _catalog: Arc<Follower<Catalog>>,
}

/// A querynode process.
pub struct QueryNode {
    shared: Arc<Shared>,
    followers: Mutex<Option<Followers>>,
    manager: Mutex<Option<Task>>,
}

impl QueryNode {
    /// A querynode for this process; an error when its object storage is not usable.
    pub fn new(ctx: Arc<Context>) -> Result<Arc<Self>, String> {
        let storage = Storage::from_config(&ctx.config.storage)
            .map_err(|e| format!("object storage is not usable: {e}"))?;
        Ok(Arc::new(QueryNode {
            shared: Arc::new(Shared {
                keys: QueryKeys::new(&ctx.config.etcd.meta_root()),
                assignments: Arc::default(),
                data_meta: Arc::default(),
                index_defs: Arc::default(),
                builds: Arc::default(),
                catalog: Arc::default(),
                storage,
                wal: tokio::sync::OnceCell::new(),
                shards: RwLock::new(HashMap::new()),
                ctx,
            }),
            followers: Mutex::new(None),
            manager: Mutex::new(None),
        }))
    }

    /// What the service reads.
    pub fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }

    fn start_followers(&self) {
        let mut f = self.followers.lock().expect("followers lock");
        if f.is_none() {
            let s = &self.shared;
            let root = s.ctx.config.etcd.meta_root();
            let etcd = &s.ctx.etcd;
            *f = Some(Followers {
                _assignments: Follower::start(
                    etcd.clone(),
                    s.keys.assignments.clone(),
                    s.assignments.clone(),
                ),
                _data: Follower::start(etcd.clone(), DataKeys::new(&root), s.data_meta.clone()),
                _defs: Follower::start(etcd.clone(), IndexKeys::new(&root), s.index_defs.clone()),
                _builds: Follower::start(etcd.clone(), IndexKeys::new(&root), s.builds.clone()),
                _catalog: Follower::start(etcd.clone(), CatalogKeys::new(&root), s.catalog.clone()),
            });
        }
    }
}

impl Worker for Arc<QueryNode> {
    async fn on_session(&self, session: &Session) {
        self.start_followers();
        let owner = Owner::of(session);
        let address = session.value.address.clone();
        let task = tokio::spawn(manage(self.shared.clone(), owner, address));
        *self.manager.lock().expect("manager lock") = Some(Task(task));
    }

    async fn on_session_end(&self) {
        self.manager.lock().expect("manager lock").take();
        self.shared.shards.write().expect("shards lock").clear();
        log::warn!("querynode session ended: its shards are released (the querycoord gives them to other querynodes)");
    }
}

/// Puts the serving record of a shard (bound to the session lease), retrying.
async fn announce(
    shared: Arc<Shared>,
    owner: Arc<Owner>,
    address: String,
    shard: Arc<Shard>,
    revision: i64,
) {
    let (sealed, growing) = shard.rows();
    let record = ServingRecord {
        collection_id: shard.collection_id,
        replica: shard.replica,
        vchannel: shard.vchannel.clone(),
        node_id: owner.node_id,
        address,
        assignment_revision: revision,
        sealed_segments: shard.data.read().expect("shard lock").sealed.len() as i64,
        rows: (sealed + growing) as i64,
    };
    let key = shared.keys.serving(
        shard.collection_id,
        shard.replica,
        &shard.vchannel,
        owner.node_id,
    );
    let lease = owner.lease.id();
    loop {
        let r = shared
            .ctx
            .etcd
            .call(|mut c| {
                let (key, value) = (key.clone(), record.encode_to_vec());
                async move {
                    c.put(key, value, Some(PutOptions::new().with_lease(lease)))
                        .await
                }
            })
            .await;
        match r {
            Ok(_) => return,
            Err(e) => {
                log::warn!(channel = shard.vchannel.as_str(), error:% = e; "cannot record that the shard is served, retrying");
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        }
    }
}

async fn withdraw(shared: &Shared, key: &ShardKey, node: i64) {
    let k = shared.keys.serving(key.0, key.1, &key.2, node);
    let _ = shared
        .ctx
        .etcd
        .call(|mut c| {
            let k = k.clone();
            async move { c.delete(k, None).await }
        })
        .await;
}

/// Keeps one serving task per shard assigned to this session, each bound to the
/// assignment (its revision) it started from.
async fn manage(shared: Arc<Shared>, owner: Owner, address: String) {
    let owner = Arc::new(owner);
    let mut running: HashMap<ShardKey, (i64, Task)> = HashMap::new();
    loop {
        let wanted: HashMap<ShardKey, i64> = shared
            .assignments
            .read()
            .expect("assignments lock")
            .all()
            .filter(|(_, a)| a.value.node_id == owner.node_id)
            .map(|(_, a)| {
                let v = &a.value;
                ((v.collection_id, v.replica, v.vchannel.clone()), a.revision)
            })
            .collect();
        let mut stopped = Vec::new();
        running.retain(|key, (rev, _)| {
            let keep = wanted.get(key) == Some(rev);
            if !keep {
                stopped.push(key.clone());
            }
            keep
        });
        for key in stopped {
            shared.shards.write().expect("shards lock").remove(&key);
            withdraw(&shared, &key, owner.node_id).await;
            log::info!(collection = key.0, replica = key.1, channel = key.2.as_str(); "querynode released shard");
        }
        for (key, rev) in wanted {
            if running.contains_key(&key) {
                continue;
            }
            let schema = shared
                .catalog
                .read()
                .expect("catalog lock")
                .collection_by_id(key.0)
                .and_then(|c| c.schema.clone());
            let Some(schema) = schema else {
                continue;
            };
            log::info!(collection = key.0, replica = key.1, channel = key.2.as_str(), revision = rev;
                "querynode loads shard");
            let shard = Arc::new(Shard::new(key.0, key.1, key.2.clone(), schema));
            shared
                .shards
                .write()
                .expect("shards lock")
                .insert(key.clone(), shard.clone());
            let ready = announce(
                shared.clone(),
                owner.clone(),
                address.clone(),
                shard.clone(),
                rev,
            );
            let task = tokio::spawn(shard::serve(shared.clone(), shard, ready));
            running.insert(key, (rev, Task(task)));
        }
        tokio::time::sleep(MANAGE_EVERY).await;
    }
}

#[cfg(test)]
mod tests;
