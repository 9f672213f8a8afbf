//! The root coordinator: timestamps, IDs and the catalog (databases, collections,
//! partitions), all written through the fenced store, with a hot standby that follows
//! the catalog and takes over without reloading it.

mod alias;
mod alter;
mod ddl;
pub mod rbac;
mod rename;
pub mod requests;
pub mod service;
pub mod tso;
pub mod validate;

use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::context::Context;
use crate::meta::catalog::{self, Catalog, CatalogKeys};
use crate::meta::follower::Follower;
use crate::proto::common::Status;
use crate::roles::coordinator::Coordinator;
use crate::session::election::Term;
use crate::session::fenced::FencedStore;
use tso::Tso;

/// What exists only while this process is the active rootcoord.
pub struct Active {
    store: FencedStore,
    renewer: JoinHandle<()>,
}

impl Drop for Active {
    fn drop(&mut self) {
        self.renewer.abort();
    }
}

/// The root coordinator of this process.
pub struct RootCoord {
    ctx: Arc<Context>,
    keys: CatalogKeys,
    catalog: Arc<RwLock<Catalog>>,
    follower: Mutex<Option<Arc<Follower<Catalog>>>>,
    active: RwLock<Option<Arc<Active>>>,
    tso: Arc<Tso>,
    gid: Arc<Tso>,
    ddl: tokio::sync::Mutex<()>,
    /// Changes waiting for the DDL lock (bounded by `ddl::DDL_QUEUE_MAX`).
    ddl_waiting: std::sync::atomic::AtomicUsize,
    requests: requests::RequestLog,
    /// An earlier catalog change's outcome or visibility is unknown.
    stale: std::sync::atomic::AtomicBool,
    write_delay: Duration,
}

/// Test-only pause before each catalog write, in milliseconds:
/// `MILVUS_TEST_DDL_DELAY_MS`. It lets a test freeze an active while a write is pending;
/// never set it in production.
fn test_write_delay() -> Duration {
    std::env::var("MILVUS_TEST_DDL_DELAY_MS")
        .ok()
        .and_then(|v| v.parse().ok())
        .map_or(Duration::ZERO, Duration::from_millis)
}

/// Test-only clock shift for the allocators, in milliseconds (may be negative):
/// `MILVUS_TEST_CLOCK_OFFSET_MS`. It exists so tests can run a standby whose clock is
/// behind the active's; never set it in production.
fn clock_offset_ms() -> i64 {
    std::env::var("MILVUS_TEST_CLOCK_OFFSET_MS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

impl RootCoord {
    /// A rootcoord for this process (not yet active).
    pub fn new(ctx: Arc<Context>) -> Arc<Self> {
        let kv = ctx.config.etcd.kv_root();
        let offset = clock_offset_ms();
        if offset != 0 {
            log::warn!(offset_ms = offset; "MILVUS_TEST_CLOCK_OFFSET_MS is set: the allocator clock is shifted (tests only)");
        }
        Arc::new(RootCoord {
            keys: CatalogKeys::new(&ctx.config.etcd.meta_root()),
            catalog: Arc::new(RwLock::new(Catalog::default())),
            follower: Mutex::new(None),
            active: RwLock::new(None),
            tso: Arc::new(Tso::new(format!("{kv}/tso/timestamp"), offset)),
            gid: Arc::new(Tso::new(format!("{kv}/gid/idTimestamp"), offset)),
            ddl: tokio::sync::Mutex::new(()),
            ddl_waiting: std::sync::atomic::AtomicUsize::new(0),
            requests: requests::RequestLog::new(&ctx.config.etcd.meta_root()),
            stale: std::sync::atomic::AtomicBool::new(false),
            write_delay: test_write_delay(),
            ctx,
        })
    }

    fn follower(&self) -> Arc<Follower<Catalog>> {
        let mut f = self.follower.lock().expect("follower lock");
        f.get_or_insert_with(|| {
            Follower::start(
                self.ctx.etcd.clone(),
                self.keys.clone(),
                self.catalog.clone(),
            )
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

    /// A read-only view of the catalog.
    fn read(&self) -> std::sync::RwLockReadGuard<'_, Catalog> {
        self.catalog.read().expect("catalog lock")
    }
}

impl RootCoord {
    /// Writes the name keys that stored records imply but etcd lacks (a catalog written
    /// by an earlier version), in fenced batches, before this term serves.
    async fn write_missing_name_keys(
        &self,
        store: &FencedStore,
        follower: &Follower<Catalog>,
    ) -> Result<(), String> {
        let missing = self.read().missing_name_keys(&self.keys);
        if missing.is_empty() {
            return Ok(());
        }
        log::info!(keys = missing.len(); "writing the name keys of an older catalog");
        for batch in missing.chunks(64) {
            let ops = batch
                .iter()
                .map(|(k, v)| etcd_client::TxnOp::put(k.clone(), v.clone(), None))
                .collect();
            let rev = store.write(ops).await.map_err(|e| e.to_string())?;
            follower.wait_applied(rev, Duration::from_secs(10)).await;
        }
        Ok(())
    }
}

impl Coordinator for Arc<RootCoord> {
    async fn on_standby(&self) {
        if self.ctx.config.root_coord.hot_standby {
            let follower = self.follower();
            // Say (without holding up the election) when the catalog is in memory: what
            // a takeover then skips.
            let rc = self.clone();
            tokio::spawn(async move {
                if follower.wait_applied(1, Duration::from_secs(60)).await {
                    log::info!(collections = rc.read().collection_count(); "hot standby follows the catalog");
                }
            });
        }
    }

    async fn activate(&self, term: Arc<Term>) -> Result<(), String> {
        let started = Instant::now();
        let store = FencedStore::new(self.ctx.etcd.clone(), term.clone());
        let hot = self.follower.lock().expect("follower lock").is_some();
        let follower = self.follower();
        // Mark the start of this term in the catalog; once the follower has applied the
        // marker's own event, it has applied every earlier catalog write.
        let marker =
            etcd_client::TxnOp::put(self.keys.epoch_marker(), term.epoch.to_string(), None);
        let rev = store.write(vec![marker]).await.map_err(|e| e.to_string())?;
        if !follower.wait_applied(rev, Duration::from_secs(30)).await {
            return Err(format!("the catalog did not catch up with revision {rev}"));
        }
        let caught_up = started.elapsed();
        self.tso.activate(&store).await.map_err(|e| e.to_string())?;
        self.gid.activate(&store).await.map_err(|e| e.to_string())?;
        let allocators = started.elapsed() - caught_up;
        if !self.read().default_db_stored() {
            let record = crate::proto::rootcoord::DatabaseRecord {
                id: catalog::DEFAULT_DB_ID,
                name: catalog::DEFAULT_DB.to_string(),
                created_timestamp: self.tso.alloc(&store, 1).await.map_err(|e| e.to_string())?,
                properties: vec![],
            };
            let op = etcd_client::TxnOp::put(
                self.keys.database(record.id),
                prost::Message::encode_to_vec(&record),
                None,
            );
            let rev = store.write(vec![op]).await.map_err(|e| e.to_string())?;
            follower.wait_applied(rev, Duration::from_secs(5)).await;
        }
        self.write_missing_name_keys(&store, &follower).await?;
        self.create_root_user(&store, &follower).await?;
        let renewer = {
            let (tso, gid, store) = (self.tso.clone(), self.gid.clone(), store.clone());
            tokio::spawn(async move {
                loop {
                    tokio::time::sleep(tso::RENEW_EVERY).await;
                    for a in [&tso, &gid] {
                        if let Err(e) = a.renew(&store).await {
                            log::warn!(error:% = e; "cannot renew the allocator bound");
                        }
                    }
                }
            })
        };
        *self.active.write().expect("active lock") = Some(Arc::new(Active { store, renewer }));
        log::info!(epoch = term.epoch, hot_standby = hot, collections = self.read().collection_count(),
            catch_up:? = caught_up, allocators:? = allocators, total:? = started.elapsed();
            "rootcoord activation stages");
        Ok(())
    }

    async fn deactivate(&self) {
        self.tso.deactivate();
        self.gid.deactivate();
        self.active.write().expect("active lock").take();
        if !self.ctx.config.root_coord.hot_standby {
            self.follower.lock().expect("follower lock").take();
        }
    }
}
