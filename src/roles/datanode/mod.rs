//! The datanode: consumes the virtual channels the datacoord assigned to it (from each
//! channel's checkpoint), buffers rows per partition, and writes them out as Parquet
//! segments (and deleted keys as delta files) on Flush, at `maxSize * sealProportion`,
//! or after `dataNode.segment.syncPeriod`. Files are registered together with the new
//! checkpoint in one etcd txn that holds only while this datanode's session lives and
//! the channel's assignment is the one it started from: a datanode that lost its channel
//! (paused past its TTL, cut off) never registers anything; what it wrote is garbage.
//! It also runs the bulk import jobs (`import`) and compaction plans (`compact`)
//! assigned to it, under the same rule.

mod buffer;
mod channel;
mod compact;
mod import;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use crate::context::Context;
use crate::coord_client::ActiveRootCoord;
use crate::meta::catalog::{Catalog, CatalogKeys};
use crate::meta::data::{ChannelMap, DataKeys, DataMeta};
use crate::meta::follower::Follower;
use crate::roles::worker::{Owner, Task, Worker};
use crate::session::Session;
use crate::storage::Storage;
use crate::wal::Wal;

/// How often the datanode compares its consumers with its assignments.
const MANAGE_EVERY: Duration = Duration::from_millis(200);

/// What a channel consumer needs from its datanode.
pub(crate) struct Shared {
    ctx: Arc<Context>,
    keys: DataKeys,
    channels: Arc<RwLock<ChannelMap>>,
    catalog: Arc<RwLock<Catalog>>,
    /// The datacoord's records (import jobs).
    data: Arc<RwLock<DataMeta>>,
    rootcoord: ActiveRootCoord,
    storage: Storage,
    wal: tokio::sync::OnceCell<Wal>,
}

/// The followers a datanode keeps running.
struct Followers {
    _channels: Arc<Follower<ChannelMap>>,
    _catalog: Arc<Follower<Catalog>>,
    _data: Arc<Follower<DataMeta>>,
}

/// A datanode process.
pub struct DataNode {
    shared: Arc<Shared>,
    followers: Mutex<Option<Followers>>,
    manager: Mutex<Vec<Task>>,
}

impl DataNode {
    /// A datanode for this process; an error when its object storage is not usable.
    pub fn new(ctx: Arc<Context>) -> Result<Arc<Self>, String> {
        let storage = Storage::from_config(&ctx.config.storage)
            .map_err(|e| format!("object storage is not usable: {e}"))?;
        let rootcoord =
            ActiveRootCoord::for_process(ctx.etcd.clone(), ctx.keys.clone(), &ctx.config, ctx.role);
        Ok(Arc::new(DataNode {
            shared: Arc::new(Shared {
                keys: DataKeys::new(&ctx.config.etcd.meta_root()),
                channels: Arc::default(),
                catalog: Arc::default(),
                data: Arc::default(),
                rootcoord,
                storage,
                wal: tokio::sync::OnceCell::new(),
                ctx,
            }),
            followers: Mutex::new(None),
            manager: Mutex::new(Vec::new()),
        }))
    }

    fn start_followers(&self) {
        let mut f = self.followers.lock().expect("followers lock");
        if f.is_none() {
            let s = &self.shared;
            *f = Some(Followers {
                _channels: Follower::start(s.ctx.etcd.clone(), s.keys.clone(), s.channels.clone()),
                _catalog: Follower::start(
                    s.ctx.etcd.clone(),
                    CatalogKeys::new(&s.ctx.config.etcd.meta_root()),
                    s.catalog.clone(),
                ),
                _data: Follower::start(s.ctx.etcd.clone(), s.keys.clone(), s.data.clone()),
            });
        }
    }
}

impl Worker for Arc<DataNode> {
    async fn on_session(&self, session: &Session) {
        self.start_followers();
        let owner = Arc::new(Owner::of(session));
        let channels = tokio::spawn(manage(self.shared.clone(), owner.clone()));
        let imports = tokio::spawn(import::run(self.shared.clone(), owner.clone()));
        let compactions = tokio::spawn(compact::run(self.shared.clone(), owner));
        *self.manager.lock().expect("manager lock") =
            vec![Task(channels), Task(imports), Task(compactions)];
    }

    async fn on_session_end(&self) {
        // Dropping the managers drops (aborts) every consumer and import with them.
        self.manager.lock().expect("manager lock").clear();
        log::warn!("datanode session ended: its channels stopped, buffered rows dropped unregistered (the channels' new owners replay them)");
    }
}

/// Keeps one consumer per channel assigned to this session, each bound to the
/// assignment (its revision) it started from.
async fn manage(shared: Arc<Shared>, owner: Arc<Owner>) {
    let mut running: HashMap<String, (i64, Task)> = HashMap::new();
    loop {
        let wanted: HashMap<String, (i64, i64)> = shared
            .channels
            .read()
            .expect("channels lock")
            .of_node(owner.node_id)
            .into_iter()
            .map(|w| {
                (
                    w.record.vchannel.clone(),
                    (w.revision, w.record.collection_id),
                )
            })
            .collect();
        let before = running.len();
        running.retain(|vch, (rev, task)| {
            let keep = wanted.get(vch).is_some_and(|(r, _)| r == rev) && !task.0.is_finished();
            if !keep {
                log::info!(channel = vch.as_str(); "datanode stops consuming channel");
            }
            keep
        });
        if running.len() < before {
            // A stopped consumer's buffer (a dropped collection's rows) is freed now.
            crate::memory::release_free_memory();
        }
        for (vch, (rev, coll)) in wanted {
            if running.contains_key(&vch) {
                continue;
            }
            log::info!(channel = vch.as_str(), collection = coll, revision = rev; "datanode starts consuming channel");
            let task = tokio::spawn(channel::consume(
                shared.clone(),
                owner.clone(),
                channel::Assignment {
                    vchannel: vch.clone(),
                    collection_id: coll,
                    revision: rev,
                },
            ));
            running.insert(vch, (rev, Task(task)));
        }
        tokio::time::sleep(MANAGE_EVERY).await;
    }
}
