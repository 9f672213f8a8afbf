//! Catalog operations of the active rootcoord: validate against the in-memory catalog,
//! write one fenced record, wait until the follower has applied it (read-your-writes).
//! Operations run one at a time (the DDL lock), so validation and write are atomic.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use etcd_client::{Compare, CompareOp, TxnOp};
use prost::Message;

use super::catalog::{collection_name, DEFAULT_DB, DEFAULT_PARTITION};
use super::tso::{physical_ms, TsoError};
use super::{validate, Active, RootCoord};
use crate::proto::common::Status;
use crate::proto::milvus as pb;
use crate::proto::rootcoord::{CollectionRecord, DatabaseRecord, PartitionRecord};
use crate::session::fenced::FenceError;
use crate::status::{code, error, ok, WithStatus};

fn db_name(n: &str) -> &str {
    if n.is_empty() {
        DEFAULT_DB
    } else {
        n
    }
}

fn db_not_found(name: &str) -> Status {
    error(
        code::DATABASE_NOT_FOUND,
        format!("database not found[database={name}]"),
    )
}

fn collection_not_found(db: &str, name: &str) -> Status {
    error(
        code::COLLECTION_NOT_FOUND,
        format!("can't find collection[database={db}][collection={name}]"),
    )
}

fn failed(e: impl std::fmt::Display) -> Status {
    error(code::UNEXPECTED, e.to_string())
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
    /// Allocates `count` timestamps; returns the first.
    pub async fn alloc_timestamp(&self, count: u32) -> Result<u64, Status> {
        let a = self.active()?;
        Ok(self.tso.alloc(&a.store, count).await?)
    }

    /// Allocates `count` IDs; returns the first.
    pub async fn alloc_id(&self, count: u32) -> Result<i64, Status> {
        let a = self.active()?;
        Ok(self.gid.alloc(&a.store, count).await? as i64)
    }

    /// Starts a catalog change: checks this process is active, takes the DDL lock, and
    /// if an earlier change's outcome or visibility is unknown, first brings the catalog
    /// up to date (a barrier write whose event proves every earlier write applied), so
    /// validation never runs against a stale catalog.
    async fn begin(&self) -> Result<(Arc<Active>, tokio::sync::MutexGuard<'_, ()>), Status> {
        let a = self.active()?;
        let one = self.ddl.lock().await;
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
                Ok(_) => return Err(failed("the catalog is catching up with etcd; retry")),
                Err(e) => return Err(failed(format!("cannot bring the catalog up to date: {e}"))),
            }
        }
        Ok((a, one))
    }

    /// Writes `ops` fenced and waits until the catalog reflects them.
    async fn commit(&self, a: &Active, ops: Vec<TxnOp>) -> Status {
        self.commit_if(a, vec![], ops).await
    }

    /// Replaces a collection record read from the catalog, only if nobody has written it
    /// since that read (its mod revision is unchanged).
    async fn rewrite_collection(&self, a: &Active, c: CollectionRecord) -> Status {
        let key = self.keys.collection(c.db_id, c.id);
        let seen = self.read().collection_revision(c.id);
        let unchanged = Compare::mod_revision(key.clone(), CompareOp::Equal, seen);
        self.commit_if(
            a,
            vec![unchanged],
            vec![TxnOp::put(key, c.encode_to_vec(), None)],
        )
        .await
    }

    /// Writes `ops` fenced if `when` holds, and waits until the catalog reflects them.
    /// When the outcome or its visibility is unknown, or `when` failed (the catalog was
    /// behind), the next change starts with a barrier.
    async fn commit_if(&self, a: &Active, when: Vec<Compare>, ops: Vec<TxnOp>) -> Status {
        if !self.write_delay.is_zero() {
            tokio::time::sleep(self.write_delay).await;
        }
        match a.store.write_if(when, ops).await {
            Ok(Some(rev)) => {
                if self
                    .follower()
                    .wait_applied(rev, Duration::from_secs(10))
                    .await
                {
                    ok()
                } else {
                    self.stale.store(true, Ordering::SeqCst);
                    error(
                        code::UNEXPECTED,
                        format!("written at revision {rev} but not yet visible; retry the read"),
                    )
                }
            }
            Ok(None) => {
                self.stale.store(true, Ordering::SeqCst);
                error(
                    code::UNEXPECTED,
                    "the record changed concurrently; nothing was written, retry",
                )
            }
            Err(FenceError::Etcd(e)) => {
                self.stale.store(true, Ordering::SeqCst);
                failed(format!("etcd write failed, its outcome is unknown: {e}"))
            }
            Err(e) => error(
                code::SERVICE_NOT_READY,
                format!("rootcoord lost its term: {e}"),
            ),
        }
    }

    /// `CreateDatabase`.
    pub async fn create_database(&self, req: pb::CreateDatabaseRequest) -> Status {
        let (a, _one) = match self.begin().await {
            Ok(x) => x,
            Err(s) => return s,
        };
        if let Err(s) = validate::name("database", &req.db_name) {
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
            self.gid.alloc(&a.store, 1).await,
            self.tso.alloc(&a.store, 1).await,
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
        self.commit(
            &a,
            vec![TxnOp::put(
                self.keys.database(id),
                record.encode_to_vec(),
                None,
            )],
        )
        .await
    }

    /// `DropDatabase`.
    pub async fn drop_database(&self, req: pb::DropDatabaseRequest) -> Status {
        let (a, _one) = match self.begin().await {
            Ok(x) => x,
            Err(s) => return s,
        };
        if req.db_name == DEFAULT_DB {
            return error(code::PARAMETER_INVALID, "can not drop default database");
        }
        let db = {
            let cat = self.read();
            let Some(db) = cat.database(&req.db_name) else {
                return db_not_found(&req.db_name);
            };
            let n = cat.collections_in(db.id).len();
            if n > 0 {
                return error(
                    code::PARAMETER_INVALID,
                    format!(
                        "database:{} not empty, must drop all {n} collections before drop database",
                        req.db_name
                    ),
                );
            }
            db
        };
        self.commit(&a, vec![TxnOp::delete(self.keys.database(db.id), None)])
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
    pub async fn create_collection(&self, req: pb::CreateCollectionRequest) -> Status {
        let (a, _one) = match self.begin().await {
            Ok(x) => x,
            Err(s) => return s,
        };
        let db = db_name(&req.db_name).to_string();
        if let Err(s) = validate::name("collection", &req.collection_name) {
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
        let partitions = if has_partition_key {
            let n = if req.num_partitions > 0 {
                req.num_partitions
            } else {
                16
            };
            if n > self.ctx.config.root_coord.max_partition_num as i64 {
                return error(
                    code::PARAMETER_INVALID,
                    format!("num_partitions {n} exceeds rootCoord.maxPartitionNum"),
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
            if cat.collection(d.id, &req.collection_name).is_some() {
                return error(
                    code::PARAMETER_INVALID,
                    format!(
                        "collection already exists: {} (database {db})",
                        req.collection_name
                    ),
                );
            }
            d.id
        };
        let count = 1 + partitions.len() as u32;
        let (first_id, ts) = match (
            self.gid.alloc(&a.store, count).await,
            self.tso.alloc(&a.store, 1).await,
        ) {
            (Ok(id), Ok(ts)) => (id as i64, ts),
            (Err(e), _) | (_, Err(e)) => return e.into(),
        };
        let mut schema = schema;
        schema.db_name = db.clone();
        let record = CollectionRecord {
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
        self.commit(&a, vec![TxnOp::put(key, record.encode_to_vec(), None)])
            .await
    }

    /// Finds a collection record (db name may be empty for `default`).
    fn find(&self, db: &str, name: &str) -> Result<CollectionRecord, Status> {
        let db = db_name(db);
        let cat = self.read();
        let d = cat.database(db).ok_or_else(|| db_not_found(db))?;
        cat.collection(d.id, name)
            .cloned()
            .ok_or_else(|| collection_not_found(db, name))
    }

    /// `DropCollection`.
    pub async fn drop_collection(&self, req: pb::DropCollectionRequest) -> Status {
        let (a, _one) = match self.begin().await {
            Ok(x) => x,
            Err(s) => return s,
        };
        match self.find(&req.db_name, &req.collection_name) {
            Ok(c) => {
                self.commit(
                    &a,
                    vec![TxnOp::delete(self.keys.collection(c.db_id, c.id), None)],
                )
                .await
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
    pub async fn create_partition(&self, req: pb::CreatePartitionRequest) -> Status {
        let (a, _one) = match self.begin().await {
            Ok(x) => x,
            Err(s) => return s,
        };
        if let Err(s) = validate::name("partition", &req.partition_name) {
            return s;
        }
        let mut c = match self.find(&req.db_name, &req.collection_name) {
            Ok(c) => c,
            Err(s) => return s,
        };
        if c.partitions.iter().any(|p| p.name == req.partition_name) {
            return error(
                code::PARAMETER_INVALID,
                format!(
                    "partition already exists: {} (collection {})",
                    req.partition_name, req.collection_name
                ),
            );
        }
        let max = self.ctx.config.root_coord.max_partition_num;
        if c.partitions.len() >= max {
            return error(
                code::PARAMETER_INVALID,
                format!("partition number ({max}) exceeds max configuration (rootCoord.maxPartitionNum), collection: {}", req.collection_name),
            );
        }
        let (id, ts) = match (
            self.gid.alloc(&a.store, 1).await,
            self.tso.alloc(&a.store, 1).await,
        ) {
            (Ok(id), Ok(ts)) => (id as i64, ts),
            (Err(e), _) | (_, Err(e)) => return e.into(),
        };
        c.partitions.push(PartitionRecord {
            id,
            name: req.partition_name,
            created_timestamp: ts,
        });
        self.rewrite_collection(&a, c).await
    }

    /// `DropPartition`.
    pub async fn drop_partition(&self, req: pb::DropPartitionRequest) -> Status {
        let (a, _one) = match self.begin().await {
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
        let before = c.partitions.len();
        c.partitions.retain(|p| p.name != req.partition_name);
        if c.partitions.len() == before {
            return error(
                code::PARTITION_NOT_FOUND,
                format!("partition not found[partition={}]", req.partition_name),
            );
        }
        self.rewrite_collection(&a, c).await
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
