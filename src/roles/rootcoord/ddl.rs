//! Catalog operations of the active rootcoord: validate against the in-memory catalog,
//! write one fenced record, wait until the follower has applied it (read-your-writes).
//! Operations run one at a time (the DDL lock), so validation and write are atomic.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use etcd_client::{Compare, CompareOp, DeleteOptions, PutOptions, TxnOp};
use prost::Message;

use super::tso::{physical_ms, TsoError};
use super::{requests, validate, Active, RootCoord};
use crate::meta::catalog::{collection_name, DEFAULT_DB, DEFAULT_PARTITION};
use crate::proto::common::Status;
use crate::proto::milvus as pb;
use crate::proto::rootcoord::{CollectionRecord, DatabaseRecord, PartitionRecord};
use crate::schema::names;
use crate::session::fenced::FenceError;
use crate::status::{code, error, ok, retriable, WithStatus};
use crate::wal;

pub(super) fn db_name(n: &str) -> &str {
    if n.is_empty() {
        DEFAULT_DB
    } else {
        n
    }
}

pub(super) fn db_not_found(name: &str) -> Status {
    error(
        code::DATABASE_NOT_FOUND,
        format!("database not found[database={name}]"),
    )
}

pub(super) fn collection_not_found(db: &str, name: &str) -> Status {
    error(
        code::COLLECTION_NOT_FOUND,
        format!("collection not found[database={db}][collection={name}]"),
    )
}

fn failed(e: impl std::fmt::Display) -> Status {
    error(code::UNEXPECTED, e.to_string())
}

/// The term's epoch if it still holds after an allocation: a process paused between its
/// check and its answer (SIGSTOP, a long GC-like stall) must not hand out values once a
/// successor may be serving.
fn still_active(a: &Active) -> Result<i64, Status> {
    let term = a.store.term();
    if term.is_valid() {
        Ok(term.epoch)
    } else {
        Err(error(
            code::SERVICE_NOT_READY,
            "rootcoord lost its term while allocating; retry on the active one",
        ))
    }
}

/// The most catalog changes that may wait for the DDL lock; more are refused with a
/// retriable [`code::RATE_LIMIT`] before they start.
pub const DDL_QUEUE_MAX: usize = 128;

/// One catalog change in progress: the term it runs in, the DDL lock, and the client's
/// request ID.
pub(super) struct Change<'a> {
    a: Arc<Active>,
    _one: tokio::sync::MutexGuard<'a, ()>,
    request: Option<String>,
    /// The etcd revision its write was applied at (0 before).
    pub(super) revision: std::sync::atomic::AtomicI64,
}

/// A place in the DDL queue, given back on drop.
struct QueueSlot<'a>(&'a AtomicUsize);

impl<'a> QueueSlot<'a> {
    fn take(waiting: &'a AtomicUsize) -> Option<Self> {
        let before = waiting.fetch_add(1, Ordering::SeqCst);
        let slot = QueueSlot(waiting);
        (before < DDL_QUEUE_MAX).then_some(slot)
    }
}

impl Drop for QueueSlot<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// The answer when a fenced write did not happen or its outcome is unknown.
fn lost_or_retry(e: FenceError, what: &str) -> Status {
    match e {
        FenceError::Etcd(e) => retriable(code::UNEXPECTED, format!("{what}: {e}")),
        e => error(
            code::SERVICE_NOT_READY,
            format!("rootcoord lost its term: {e}"),
        ),
    }
}

impl From<TsoError> for Status {
    fn from(e: TsoError) -> Status {
        match e {
            TsoError::NotActive
            | TsoError::Fence(FenceError::NotActive | FenceError::Fenced { .. }) => error(
                code::SERVICE_NOT_READY,
                format!("rootcoord lost its term: {e}"),
            ),
            TsoError::BadCount(_) => error(code::PARAMETER_INVALID, e.to_string()),
            other => failed(other),
        }
    }
}

impl RootCoord {
    /// Allocates `count` timestamps; returns the first and the epoch that handed them
    /// out.
    pub async fn alloc_timestamp(&self, count: u32) -> Result<(u64, i64), Status> {
        let a = self.active()?;
        let first = self.tso.alloc(&a.store, count).await?;
        Ok((first, still_active(&a)?))
    }

    /// Allocates `count` IDs; returns the first and the epoch that handed them out.
    pub async fn alloc_id(&self, count: u32) -> Result<(i64, i64), Status> {
        let a = self.active()?;
        let first = self.gid.alloc(&a.store, count).await? as i64;
        Ok((first, still_active(&a)?))
    }

    /// Starts a catalog change: checks this process is active, takes a place in the
    /// bounded DDL queue and then the DDL lock, and if an earlier change's outcome or
    /// visibility is unknown, first brings the catalog up to date (a barrier write whose
    /// event proves every earlier write applied), so validation never runs against a
    /// stale catalog. A request ID already recorded ends the change here with its
    /// recorded answer (`Err(ok)`): it was applied before.
    pub(super) async fn begin(&self, request: Option<String>) -> Result<Change<'_>, Status> {
        let a = self.active()?;
        if let Some(id) = &request {
            if !requests::valid_id(id) {
                return Err(error(
                    code::PARAMETER_INVALID,
                    format!("invalid request ID {id:?}: expected 1-{} characters of A-Z a-z 0-9 . _ : -", requests::MAX_ID_LEN),
                ));
            }
        }
        let _slot = QueueSlot::take(&self.ddl_waiting).ok_or_else(|| {
            error(
                code::RATE_LIMIT,
                format!("the rootcoord's DDL queue is full ({DDL_QUEUE_MAX} changes waiting); retry later"),
            )
        })?;
        let one = self.ddl.lock().await;
        drop(_slot);
        if self.stale.load(Ordering::SeqCst) {
            let marker = TxnOp::put(
                self.keys.epoch_marker(),
                a.store.term().epoch.to_string(),
                None,
            );
            match a.store.write(vec![marker]).await {
                Ok(rev)
                    if self
                        .follower()
                        .wait_applied(rev, Duration::from_secs(10))
                        .await =>
                {
                    self.stale.store(false, Ordering::SeqCst);
                }
                Ok(_) => {
                    return Err(retriable(
                        code::UNEXPECTED,
                        "the catalog is catching up with etcd; retry",
                    ))
                }
                Err(e) => return Err(lost_or_retry(e, "cannot bring the catalog up to date")),
            }
        }
        if let Some(id) = &request {
            match a.store.get(&self.requests.key(id)).await {
                Ok(Some(_)) => {
                    log::info!(request = id.as_str(); "request already applied, answering with its recorded result");
                    return Err(ok());
                }
                Ok(None) => {}
                Err(e) => {
                    return Err(retriable(
                        code::UNEXPECTED,
                        format!("cannot read the request record: {e}"),
                    ))
                }
            }
        }
        Ok(Change {
            a,
            _one: one,
            request,
            revision: std::sync::atomic::AtomicI64::new(0),
        })
    }

    /// Writes `ops` fenced and waits until the catalog reflects them.
    pub(super) async fn commit(&self, c: &Change<'_>, ops: Vec<TxnOp>) -> Status {
        self.commit_if(c, vec![], ops).await
    }

    /// Replaces a collection record read from the catalog, only if nobody has written it
    /// since that read (its mod revision is unchanged); `when` and `ops` go with it.
    pub(super) async fn rewrite_collection(
        &self,
        c: &Change<'_>,
        coll: CollectionRecord,
        mut when: Vec<Compare>,
        mut ops: Vec<TxnOp>,
    ) -> Status {
        let key = self.keys.collection(coll.db_id, coll.id);
        let seen = self.read().collection_revision(coll.id);
        when.push(Compare::mod_revision(key.clone(), CompareOp::Equal, seen));
        ops.push(TxnOp::put(key, coll.encode_to_vec(), None));
        self.commit_if(c, when, ops).await
    }

    /// Writes `ops` fenced if `when` holds (and the request ID is not yet recorded,
    /// recording it in the same txn), and waits until the catalog reflects them. When
    /// the outcome or its visibility is unknown, or `when` failed (the catalog was
    /// behind), the next change starts with a barrier, and the answer asks the caller
    /// to retry: with the same request ID a retry is applied at most once.
    pub(super) async fn commit_if(
        &self,
        c: &Change<'_>,
        mut when: Vec<Compare>,
        mut ops: Vec<TxnOp>,
    ) -> Status {
        if let Some(id) = &c.request {
            let lease = match self.requests.lease(&self.ctx.etcd).await {
                Ok(l) => l,
                Err(e) => {
                    return retriable(
                        code::UNEXPECTED,
                        format!("cannot grant the request record lease: {e}"),
                    )
                }
            };
            let key = self.requests.key(id);
            when.push(Compare::version(key.clone(), CompareOp::Equal, 0));
            ops.push(TxnOp::put(
                key,
                format!("epoch {}", c.a.store.term().epoch),
                Some(PutOptions::new().with_lease(lease)),
            ));
        }
        if !self.write_delay.is_zero() {
            log::info!(delay:? = self.write_delay; "test delay before a catalog write (MILVUS_TEST_DDL_DELAY_MS)");
            tokio::time::sleep(self.write_delay).await;
        }
        match c.a.store.write_if(when, ops).await {
            Ok(Some(rev)) => {
                if self
                    .follower()
                    .wait_applied(rev, Duration::from_secs(10))
                    .await
                {
                    c.revision.store(rev, Ordering::SeqCst);
                    ok()
                } else {
                    self.stale.store(true, Ordering::SeqCst);
                    retriable(
                        code::UNEXPECTED,
                        format!("written at revision {rev} but not yet visible; retry"),
                    )
                }
            }
            Ok(None) => {
                self.stale.store(true, Ordering::SeqCst);
                retriable(
                    code::UNEXPECTED,
                    "the catalog changed concurrently (a name, record or request ID was taken meanwhile); nothing was written, retry",
                )
            }
            Err(e) => {
                if matches!(e, FenceError::Etcd(_)) {
                    self.stale.store(true, Ordering::SeqCst);
                    self.requests.forget_lease().await;
                }
                lost_or_retry(e, "etcd write failed, its outcome is unknown")
            }
        }
    }

    /// `CreateDatabase`.
    pub async fn create_database(
        &self,
        req: pb::CreateDatabaseRequest,
        request: Option<String>,
    ) -> Status {
        let c = match self.begin(request).await {
            Ok(x) => x,
            Err(s) => return s,
        };
        if let Err(s) = names::database(&req.db_name) {
            return s;
        }
        {
            let cat = self.read();
            if cat.database(&req.db_name).is_some() {
                return error(
                    code::PARAMETER_INVALID,
                    format!("database already exist: {}", req.db_name),
                );
            }
            let max = self.ctx.config.root_coord.max_database_num;
            if cat.databases().len() >= max {
                return error(
                    code::PARAMETER_INVALID,
                    format!("database number ({max}) exceeds max configuration (rootCoord.maxDatabaseNum)"),
                );
            }
        }
        let (id, ts) = match (
            self.gid.alloc(&c.a.store, 1).await,
            self.tso.alloc(&c.a.store, 1).await,
        ) {
            (Ok(id), Ok(ts)) => (id as i64, ts),
            (Err(e), _) | (_, Err(e)) => return e.into(),
        };
        let record = DatabaseRecord {
            id,
            name: req.db_name,
            created_timestamp: ts,
            properties: req.properties,
        };
        let name_key = self.keys.database_name(&record.name);
        self.commit_if(
            &c,
            vec![Compare::version(name_key.clone(), CompareOp::Equal, 0)],
            vec![
                TxnOp::put(name_key, id.to_string(), None),
                TxnOp::put(self.keys.database(id), record.encode_to_vec(), None),
            ],
        )
        .await
    }

    /// `DropDatabase`.
    pub async fn drop_database(
        &self,
        req: pb::DropDatabaseRequest,
        request: Option<String>,
    ) -> Status {
        let c = match self.begin(request).await {
            Ok(x) => x,
            Err(s) => return s,
        };
        if let Err(s) = names::database(&req.db_name) {
            return s;
        }
        if req.db_name == DEFAULT_DB {
            return error(code::PARAMETER_INVALID, "can not drop default database");
        }
        let db = {
            let cat = self.read();
            // Dropping a database that does not exist succeeds, as in Milvus.
            let Some(db) = cat.database(&req.db_name) else {
                return ok();
            };
            if !cat.collections_in(db.id).is_empty() {
                return error(
                    code::UNEXPECTED,
                    format!(
                        "{} not empty, must drop all collections before drop database",
                        req.db_name
                    ),
                );
            }
            db
        };
        self.commit(
            &c,
            vec![
                TxnOp::delete(self.keys.database(db.id), None),
                TxnOp::delete(self.keys.database_name(&db.name), None),
            ],
        )
        .await
    }

    /// `ListDatabases`.
    pub fn list_databases(&self) -> Result<pb::ListDatabasesResponse, Status> {
        self.active()?;
        let dbs = self.read().databases();
        Ok(pb::ListDatabasesResponse {
            status: Some(ok()),
            db_names: dbs.iter().map(|d| d.name.clone()).collect(),
            created_timestamp: dbs.iter().map(|d| d.created_timestamp).collect(),
            db_ids: dbs.iter().map(|d| d.id).collect(),
        })
    }

    /// `DescribeDatabase`.
    pub fn describe_database(
        &self,
        req: pb::DescribeDatabaseRequest,
    ) -> Result<pb::DescribeDatabaseResponse, Status> {
        self.active()?;
        let name = db_name(&req.db_name);
        let db = self
            .read()
            .database(name)
            .ok_or_else(|| db_not_found(name))?;
        Ok(pb::DescribeDatabaseResponse {
            status: Some(ok()),
            db_name: db.name,
            db_id: db.id,
            created_timestamp: db.created_timestamp,
            properties: db.properties,
        })
    }

    /// `CreateCollection`.
    pub async fn create_collection(
        &self,
        req: pb::CreateCollectionRequest,
        request: Option<String>,
    ) -> Status {
        let c = match self.begin(request).await {
            Ok(x) => x,
            Err(s) => return s,
        };
        let db = db_name(&req.db_name).to_string();
        if let Err(s) = names::collection(&req.collection_name) {
            return s;
        }
        if let Err(s) = crate::schema::properties::check_properties(&req.properties) {
            return s;
        }
        let max_fields = self.ctx.config.proxy.max_field_num;
        let schema = match validate::schema(&req.collection_name, &req.schema, max_fields) {
            Ok(s) => s,
            Err(s) => return s,
        };
        let shards = match validate::shards(req.shards_num) {
            Ok(n) => n,
            Err(s) => return s,
        };
        let has_partition_key = schema.fields.iter().any(|f| f.is_partition_key);
        if req.num_partitions != 0 && !has_partition_key {
            return error(
                code::PARAMETER_INVALID,
                "num_partitions should only be specified with partition key field enabled"
                    .to_string(),
            );
        }
        let partitions = if has_partition_key {
            let n = if req.num_partitions > 0 {
                req.num_partitions
            } else if req.num_partitions < 0 {
                return error(
                    code::PARAMETER_INVALID,
                    "the specified partitions should be greater than 0 if partition key is used"
                        .to_string(),
                );
            } else {
                16
            };
            let max = self.ctx.config.root_coord.max_partition_num as i64;
            if n > max {
                return error(
                    code::PARAMETER_INVALID,
                    format!("partition number ({n}) exceeds max configuration ({max}), collection: {}: invalid parameter", req.collection_name),
                );
            }
            (0..n)
                .map(|i| format!("{DEFAULT_PARTITION}_{i}"))
                .collect::<Vec<_>>()
        } else {
            vec![DEFAULT_PARTITION.to_string()]
        };
        let db_id = {
            let cat = self.read();
            let Some(d) = cat.database(&db) else {
                return db_not_found(&db);
            };
            if cat.alias(d.id, &req.collection_name).is_some() {
                return error(
                    code::UNEXPECTED,
                    format!(
                        "collection name [{}] conflicts with an existing alias, please choose a unique name",
                        req.collection_name
                    ),
                );
            }
            if let Some(existing) = cat.named(d.id, &req.collection_name) {
                // Milvus's idempotent answer: the same collection again is a success.
                let mut wanted = schema.clone();
                wanted.db_name = db.clone();
                let same = existing.schema.as_ref() == Some(&wanted)
                    && existing.shards_num == shards
                    && existing.consistency_level == req.consistency_level
                    && existing.properties == req.properties;
                if same {
                    log::info!(collection = req.collection_name.as_str(), database = db.as_str();
                        "collection already exists with identical parameters");
                    return ok();
                }
                return error(
                    code::PARAMETER_INVALID,
                    format!(
                        "create duplicate collection with different parameters, collection: {} (database {db})",
                        req.collection_name
                    ),
                );
            }
            d.id
        };
        let count = 1 + partitions.len() as u32;
        let (first_id, ts) = match (
            self.gid.alloc(&c.a.store, count).await,
            self.tso.alloc(&c.a.store, 1).await,
        ) {
            (Ok(id), Ok(ts)) => (id as i64, ts),
            (Err(e), _) | (_, Err(e)) => return e.into(),
        };
        let mut schema = schema;
        schema.db_name = db.clone();
        let (virtual_channel_names, physical_channel_names) =
            self.assign_channels(first_id, shards);
        let record = CollectionRecord {
            virtual_channel_names,
            physical_channel_names,
            id: first_id,
            db_id,
            schema: Some(schema),
            shards_num: shards,
            consistency_level: req.consistency_level,
            properties: req.properties,
            created_timestamp: ts,
            partitions: partitions
                .into_iter()
                .enumerate()
                .map(|(i, name)| PartitionRecord {
                    id: first_id + 1 + i as i64,
                    name,
                    created_timestamp: ts,
                })
                .collect(),
        };
        let key = self.keys.collection(db_id, first_id);
        let names = self.keys.collection_name_keys(&record);
        // No name key of the collection, nor an alias of its name, may exist yet.
        let alias_key = self.keys.alias(db_id, &req.collection_name);
        let when = names
            .iter()
            .map(|(k, _)| k)
            .chain([&alias_key])
            .map(|k| Compare::version(k.clone(), CompareOp::Equal, 0))
            .collect();
        let mut ops: Vec<TxnOp> = names
            .into_iter()
            .map(|(k, v)| TxnOp::put(k, v, None))
            .collect();
        ops.push(TxnOp::put(key, record.encode_to_vec(), None));
        self.commit_if(&c, when, ops).await
    }

    /// Gives each of `shards` shards of a new collection a virtual channel on a physical
    /// channel, least used first (ties to the lowest number).
    fn assign_channels(&self, collection_id: i64, shards: i32) -> (Vec<String>, Vec<String>) {
        let log = &self.ctx.config.log;
        let pchannels: Vec<String> = (0..log.dml_channels.max(1))
            .map(|n| wal::pchannel_name(&log.cluster_prefix, &log.dml_prefix, n))
            .collect();
        let mut usage = self.read().pchannel_usage(&pchannels);
        let (mut v, mut p) = (Vec::new(), Vec::new());
        for shard in 0..shards.max(1) as usize {
            let (n, _) = usage
                .iter()
                .enumerate()
                .min_by_key(|(i, used)| (**used, *i))
                .expect("at least one physical channel");
            usage[n] += 1;
            v.push(wal::vchannel_name(&pchannels[n], collection_id, shard));
            p.push(pchannels[n].clone());
        }
        (v, p)
    }

    /// Finds a collection record (db name may be empty for `default`).
    pub(super) fn find(&self, db: &str, name: &str) -> Result<CollectionRecord, Status> {
        let db = db_name(db);
        let cat = self.read();
        let d = cat.database(db).ok_or_else(|| db_not_found(db))?;
        cat.collection(d.id, name)
            .cloned()
            .ok_or_else(|| collection_not_found(db, name))
    }

    /// `DropCollection`.
    pub async fn drop_collection(
        &self,
        req: pb::DropCollectionRequest,
        request: Option<String>,
    ) -> Status {
        let c = match self.begin(request).await {
            Ok(x) => x,
            Err(s) => return s,
        };
        let aliases = {
            let cat = self.read();
            match cat.database(db_name(&req.db_name)) {
                Some(d) if cat.alias(d.id, &req.collection_name).is_some() => {
                    return error(
                        code::UNEXPECTED,
                        format!(
                            "cannot drop the collection via alias = {}",
                            req.collection_name
                        ),
                    )
                }
                Some(d) => cat
                    .named(d.id, &req.collection_name)
                    .map(|c| cat.aliases_of(c.id))
                    .unwrap_or_default(),
                None => vec![],
            }
        };
        if !aliases.is_empty() {
            return error(
                code::UNEXPECTED,
                format!(
                    "unable to drop the collection [{}] because it has associated aliases [{}], please remove all aliases before dropping the collection",
                    req.collection_name,
                    aliases.join(" ")
                ),
            );
        }
        match self.find(&req.db_name, &req.collection_name) {
            Ok(coll) => {
                let name = collection_name(&coll).to_string();
                self.commit(
                    &c,
                    vec![
                        TxnOp::delete(self.keys.collection(coll.db_id, coll.id), None),
                        TxnOp::delete(self.keys.collection_name(coll.db_id, &name), None),
                        TxnOp::delete(
                            self.keys.partition_names(coll.id),
                            Some(DeleteOptions::new().with_prefix()),
                        ),
                    ],
                )
                .await
            }
            // Milvus's idempotent answer: dropping a missing collection succeeds.
            Err(s) if s.code == code::COLLECTION_NOT_FOUND => {
                log::info!(collection = req.collection_name.as_str(); "drop of a collection that does not exist");
                ok()
            }
            Err(s) => s,
        }
    }

    /// `HasCollection`.
    pub fn has_collection(
        &self,
        req: pb::HasCollectionRequest,
    ) -> Result<pb::BoolResponse, Status> {
        self.active()?;
        let found = match self.find(&req.db_name, &req.collection_name) {
            Ok(_) => true,
            Err(s) if s.code == code::COLLECTION_NOT_FOUND => false,
            Err(s) => return Err(s),
        };
        Ok(pb::BoolResponse {
            status: Some(ok()),
            value: found,
        })
    }

    /// `DescribeCollection` (the full stored schema; a proxy hides system fields).
    pub fn describe_collection(
        &self,
        req: pb::DescribeCollectionRequest,
    ) -> Result<pb::DescribeCollectionResponse, Status> {
        self.active()?;
        let c = if req.collection_name.is_empty() && req.collection_id != 0 {
            self.read()
                .collections_by_id(req.collection_id)
                .ok_or_else(|| {
                    collection_not_found(db_name(&req.db_name), &req.collection_id.to_string())
                })?
        } else {
            self.find(&req.db_name, &req.collection_name)?
        };
        let name = collection_name(&c).to_string();
        let db = c
            .schema
            .as_ref()
            .map(|s| s.db_name.clone())
            .unwrap_or_default();
        Ok(pb::DescribeCollectionResponse {
            status: Some(ok()),
            collection_id: c.id,
            created_timestamp: c.created_timestamp,
            created_utc_timestamp: physical_ms(c.created_timestamp),
            shards_num: c.shards_num,
            consistency_level: c.consistency_level,
            collection_name: name,
            properties: c.properties.clone(),
            db_name: db,
            num_partitions: c.partitions.len() as i64,
            db_id: c.db_id,
            update_timestamp: c.created_timestamp,
            virtual_channel_names: c.virtual_channel_names.clone(),
            physical_channel_names: c.physical_channel_names.clone(),
            aliases: self.read().aliases_of(c.id),
            schema: c.schema,
            ..Default::default()
        })
    }

    /// `ShowCollections`.
    pub fn show_collections(
        &self,
        req: pb::ShowCollectionsRequest,
    ) -> Result<pb::ShowCollectionsResponse, Status> {
        self.active()?;
        let db = db_name(&req.db_name);
        let cat = self.read();
        let d = cat.database(db).ok_or_else(|| db_not_found(db))?;
        let colls = cat.collections_in(d.id);
        Ok(pb::ShowCollectionsResponse {
            status: Some(ok()),
            collection_names: colls
                .iter()
                .map(|c| collection_name(c).to_string())
                .collect(),
            collection_ids: colls.iter().map(|c| c.id).collect(),
            created_timestamps: colls.iter().map(|c| c.created_timestamp).collect(),
            created_utc_timestamps: colls
                .iter()
                .map(|c| physical_ms(c.created_timestamp))
                .collect(),
            ..Default::default()
        })
    }

    /// `CreatePartition`.
    pub async fn create_partition(
        &self,
        req: pb::CreatePartitionRequest,
        request: Option<String>,
    ) -> Status {
        let ch = match self.begin(request).await {
            Ok(x) => x,
            Err(s) => return s,
        };
        if let Err(s) = names::partition(&req.partition_name, true) {
            return s;
        }
        let mut c = match self.find(&req.db_name, &req.collection_name) {
            Ok(c) => c,
            Err(s) => return s,
        };
        if let Err(s) = no_manual_partitions(&c, "create") {
            return s;
        }
        if c.partitions.iter().any(|p| p.name == req.partition_name) {
            // Milvus's idempotent answer: creating an existing partition succeeds.
            log::info!(partition = req.partition_name.as_str(), collection = req.collection_name.as_str();
                "partition already exists");
            return ok();
        }
        let max = self.ctx.config.root_coord.max_partition_num;
        if c.partitions.len() >= max {
            return error(
                code::PARAMETER_INVALID,
                format!("partition number ({max}) exceeds max configuration (rootCoord.maxPartitionNum), collection: {}", req.collection_name),
            );
        }
        let (id, ts) = match (
            self.gid.alloc(&ch.a.store, 1).await,
            self.tso.alloc(&ch.a.store, 1).await,
        ) {
            (Ok(id), Ok(ts)) => (id as i64, ts),
            (Err(e), _) | (_, Err(e)) => return e.into(),
        };
        let name_key = self.keys.partition_name(c.id, &req.partition_name);
        c.partitions.push(PartitionRecord {
            id,
            name: req.partition_name,
            created_timestamp: ts,
        });
        self.rewrite_collection(
            &ch,
            c,
            vec![Compare::version(name_key.clone(), CompareOp::Equal, 0)],
            vec![TxnOp::put(name_key, id.to_string(), None)],
        )
        .await
    }

    /// `DropPartition`.
    pub async fn drop_partition(
        &self,
        req: pb::DropPartitionRequest,
        request: Option<String>,
    ) -> Status {
        let ch = match self.begin(request).await {
            Ok(x) => x,
            Err(s) => return s,
        };
        if req.partition_name == DEFAULT_PARTITION {
            return error(
                code::PARAMETER_INVALID,
                "default partition cannot be deleted",
            );
        }
        let mut c = match self.find(&req.db_name, &req.collection_name) {
            Ok(c) => c,
            Err(s) => return s,
        };
        if let Err(s) = no_manual_partitions(&c, "drop") {
            return s;
        }
        let before = c.partitions.len();
        c.partitions.retain(|p| p.name != req.partition_name);
        if c.partitions.len() == before {
            // Milvus's idempotent answer: dropping a missing partition succeeds.
            log::info!(partition = req.partition_name.as_str(), collection = req.collection_name.as_str();
                "drop of a partition that does not exist");
            return ok();
        }
        let name_key = self.keys.partition_name(c.id, &req.partition_name);
        self.rewrite_collection(&ch, c, vec![], vec![TxnOp::delete(name_key, None)])
            .await
    }

    /// `HasPartition`.
    pub fn has_partition(&self, req: pb::HasPartitionRequest) -> Result<pb::BoolResponse, Status> {
        self.active()?;
        let c = self.find(&req.db_name, &req.collection_name)?;
        Ok(pb::BoolResponse {
            status: Some(ok()),
            value: c.partitions.iter().any(|p| p.name == req.partition_name),
        })
    }

    /// `ShowPartitions`.
    pub fn show_partitions(
        &self,
        req: pb::ShowPartitionsRequest,
    ) -> Result<pb::ShowPartitionsResponse, Status> {
        self.active()?;
        let c = self.find(&req.db_name, &req.collection_name)?;
        Ok(pb::ShowPartitionsResponse {
            status: Some(ok()),
            partition_names: c.partitions.iter().map(|p| p.name.clone()).collect(),
            partition_i_ds: c.partitions.iter().map(|p| p.id).collect(),
            created_timestamps: c.partitions.iter().map(|p| p.created_timestamp).collect(),
            created_utc_timestamps: c
                .partitions
                .iter()
                .map(|p| physical_ms(p.created_timestamp))
                .collect(),
            ..Default::default()
        })
    }
}

/// Turns a `Result` of a read into the response, errors in-band.
pub fn respond<T: WithStatus>(r: Result<T, Status>) -> T {
    r.unwrap_or_else(T::from_status)
}

/// A partition-key collection's partitions are its key's: Milvus refuses to create or
/// drop one by hand (`what`: "create", "drop").
fn no_manual_partitions(c: &CollectionRecord, what: &str) -> Result<(), Status> {
    if c.schema
        .as_ref()
        .is_some_and(|s| crate::schema::partition_key_field(s).is_some())
    {
        return Err(error(
            code::PARAMETER_INVALID,
            format!("disable {what} partition if partition key mode is used"),
        ));
    }
    Ok(())
}
