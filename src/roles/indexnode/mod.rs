//! The indexnode: builds the index of each segment the indexcoord assigned to it (reads
//! the vectors from the segment's Parquet file, builds on `indexNode.buildParallel`
//! threads, writes `index_files/<buildID>/index`), then registers the result in one etcd
//! txn that holds only while the build record is the one it was given and its own
//! session lives: a build taken away (node paused, task reassigned) is never recorded
//! twice.

mod build;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use crate::context::Context;
use crate::meta::follower::Follower;
use crate::meta::index::{Builds, IndexDefs, IndexKeys};
use crate::proto::common::IndexState;
use crate::roles::worker::{Owner, Task, Worker};
use crate::session::Session;
use crate::storage::Storage;

const MANAGE_EVERY: Duration = Duration::from_millis(200);

/// What a build needs from its indexnode.
pub(crate) struct Shared {
    ctx: Arc<Context>,
    keys: IndexKeys,
    defs: Arc<RwLock<IndexDefs>>,
    builds: Arc<RwLock<Builds>>,
    storage: Storage,
}

struct Followers {
    _defs: Arc<Follower<IndexDefs>>,
    builds: Arc<Follower<Builds>>,
}

/// An indexnode process.
pub struct IndexNode {
    shared: Arc<Shared>,
    followers: Mutex<Option<Followers>>,
    manager: Mutex<Option<Task>>,
}

impl IndexNode {
    /// An indexnode for this process; an error when object storage is not usable.
    pub fn new(ctx: Arc<Context>) -> Result<Arc<Self>, String> {
        let storage = Storage::from_config(&ctx.config.storage)
            .map_err(|e| format!("object storage is not usable: {e}"))?;
        Ok(Arc::new(IndexNode {
            shared: Arc::new(Shared {
                keys: IndexKeys::new(&ctx.config.etcd.meta_root()),
                defs: Arc::default(),
                builds: Arc::default(),
                storage,
                ctx,
            }),
            followers: Mutex::new(None),
            manager: Mutex::new(None),
        }))
    }

    /// Starts following the index records once; returns the build records' follower.
    fn start_followers(&self) -> Arc<Follower<Builds>> {
        let mut f = self.followers.lock().expect("followers lock");
        let s = &self.shared;
        let etcd = &s.ctx.etcd;
        f.get_or_insert_with(|| Followers {
            _defs: Follower::start(etcd.clone(), s.keys.clone(), s.defs.clone()),
            builds: Follower::start(etcd.clone(), s.keys.clone(), s.builds.clone()),
        })
        .builds
        .clone()
    }
}

impl Worker for Arc<IndexNode> {
    async fn on_session(&self, session: &Session) {
        let builds = self.start_followers();
        let owner = Arc::new(Owner::of(session));
        let task = tokio::spawn(manage(self.shared.clone(), owner, builds));
        *self.manager.lock().expect("manager lock") = Some(Task(task));
    }

    async fn on_session_end(&self) {
        self.manager.lock().expect("manager lock").take();
        log::warn!("indexnode session ended: its builds stopped unrecorded (the indexcoord gives them to others)");
    }
}

/// Runs one build task per build assigned to this session (by the record's revision), as
/// soon as a build record changes (at least every [`MANAGE_EVERY`]).
async fn manage(shared: Arc<Shared>, owner: Arc<Owner>, follower: Arc<Follower<Builds>>) {
    let mut running: HashMap<i64, (i64, Task)> = HashMap::new();
    loop {
        let seen = follower.applied();
        let wanted: Vec<(i64, i64)> = shared
            .builds
            .read()
            .expect("builds lock")
            .all()
            .filter(|b| {
                b.record.node_id == owner.node_id && b.record.state() == IndexState::InProgress
            })
            .map(|b| (b.record.build_id, b.revision))
            .collect();
        // A build no longer assigned as it was (reassigned, dropped, done) stops.
        running.retain(|id, (rev, _)| wanted.contains(&(*id, *rev)));
        for (id, rev) in wanted {
            if running.contains_key(&id) {
                continue;
            }
            let task = tokio::spawn(build::run(shared.clone(), owner.clone(), id, rev));
            running.insert(id, (rev, Task(task)));
        }
        follower.wait_applied(seen + 1, MANAGE_EVERY).await;
    }
}
