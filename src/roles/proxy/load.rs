//! `LoadCollection`, `LoadPartitions`, `ReleaseCollection`, `ReleasePartitions`,
//! `GetLoadingProgress` and `GetLoadState`: the proxy resolves names and checks that
//! every vector field has an index; the active querycoord stores the load and reports it.

use super::Proxy;
use crate::coord_client::CoordError;
use crate::proto::common::{LoadState, Status};
use crate::proto::indexcoord as ic;
use crate::proto::milvus as pb;
use crate::proto::querycoord as qc;
use crate::roles::querycoord::service::COLLECTION_NOT_LOADED;
use crate::status::{code, error, is_ok, retriable};

fn querycoord_down(e: CoordError) -> Status {
    retriable(code::SERVICE_UNAVAILABLE, e.to_string())
}

impl Proxy {
    /// The collection and the IDs of `names` among its partitions.
    async fn with_partitions(
        &self,
        db: &str,
        collection: &str,
        names: &[String],
    ) -> Result<(pb::DescribeCollectionResponse, Vec<i64>), Status> {
        let c = self.target(db, collection, "").await?.collection;
        if names.is_empty() {
            return Ok((c, vec![]));
        }
        let req = pb::ShowPartitionsRequest {
            db_name: db.to_string(),
            collection_name: collection.to_string(),
            ..Default::default()
        };
        let parts = self
            .rootcoord
            .call(req, |mut c, r| async move { c.show_partitions(r).await })
            .await
            .map_err(|e| retriable(code::SERVICE_UNAVAILABLE, e.to_string()))?;
        let mut ids = Vec::new();
        for n in names {
            let i = parts
                .partition_names
                .iter()
                .position(|p| p == n)
                .ok_or_else(|| {
                    error(
                        code::PARTITION_NOT_FOUND,
                        format!("partition name {n} not found"),
                    )
                })?;
            ids.push(parts.partition_i_ds[i]);
        }
        Ok((c, ids))
    }

    /// Refuses a load when a vector field has no index (Milvus's rule).
    async fn check_indexed(&self, c: &pb::DescribeCollectionResponse) -> Result<(), Status> {
        let m = ic::DescribeIndexRequest {
            collection_id: c.collection_id,
            index_name: String::new(),
            collection_name: c.collection_name.clone(),
        };
        let d = self
            .indexcoord
            .call(m, |mut c, r| async move { c.describe_index(r).await })
            .await
            .map_err(|e| retriable(code::SERVICE_UNAVAILABLE, e.to_string()))?;
        let indexed: Vec<String> = match d.status.as_ref() {
            // No index at all: Milvus 2.5 answers DescribeIndex's 700 "index not
            // found[collection=...]"; only a collection with some index but none on a
            // vector field gets the 1100 below.
            Some(s) if s.code == code::INDEX_NOT_FOUND => return Err(s.clone()),
            Some(s) if !is_ok(s) => return Err(s.clone()),
            _ => d
                .index_descriptions
                .iter()
                .map(|i| i.field_name.clone())
                .collect(),
        };
        let schema = c.schema.clone().unwrap_or_default();
        let missing: Vec<String> = schema
            .fields
            .iter()
            .filter(|f| crate::schema::is_vector(f.data_type()) && !indexed.contains(&f.name))
            .map(|f| f.name.clone())
            .collect();
        if missing.is_empty() {
            Ok(())
        } else {
            Err(error(
                code::PARAMETER_INVALID,
                format!(
                    "there is no vector index on field: [{}], please create index firstly",
                    missing.join(", ")
                ),
            ))
        }
    }

    async fn load(
        &self,
        db: &str,
        collection: &str,
        partitions: &[String],
        replicas: i32,
    ) -> Status {
        let answer = async {
            let (c, ids) = self.with_partitions(db, collection, partitions).await?;
            self.check_indexed(&c).await?;
            let m = qc::LoadRequest {
                collection_id: c.collection_id,
                partition_ids: ids,
                replica_number: replicas,
                vchannels: c.virtual_channel_names.clone(),
                collection_name: collection.to_string(),
            };
            self.querycoord
                .call_write(m, |mut c, r| async move { c.load(r).await })
                .await
                .map_err(querycoord_down)
        };
        answer.await.unwrap_or_else(|s| s)
    }

    /// `LoadCollection`.
    pub async fn load_collection(&self, db: &str, req: pb::LoadCollectionRequest) -> Status {
        self.load(db, &req.collection_name, &[], req.replica_number)
            .await
    }

    /// `LoadPartitions`.
    pub async fn load_partitions(&self, db: &str, req: pb::LoadPartitionsRequest) -> Status {
        if req.partition_names.is_empty() {
            return error(code::PARAMETER_INVALID, "no partition to load");
        }
        if let Err(s) = self
            .no_partitions_in_key_mode(db, &req.collection_name, "load")
            .await
        {
            return s;
        }
        self.load(
            db,
            &req.collection_name,
            &req.partition_names,
            req.replica_number,
        )
        .await
    }

    async fn release(&self, db: &str, collection: &str, partitions: &[String]) -> Status {
        let answer = async {
            let (c, ids) = self.with_partitions(db, collection, partitions).await?;
            let m = qc::ReleaseRequest {
                collection_id: c.collection_id,
                partition_ids: ids,
            };
            self.querycoord
                .call_write(m, |mut c, r| async move { c.release(r).await })
                .await
                .map_err(querycoord_down)
        };
        answer.await.unwrap_or_else(|s| s)
    }

    /// Milvus's refusal to load or release (`what`) partitions of a partition-key
    /// collection by name.
    async fn no_partitions_in_key_mode(
        &self,
        db: &str,
        collection: &str,
        what: &str,
    ) -> Result<(), Status> {
        let record = self.collection_record(db, collection).await?;
        if record
            .schema
            .as_ref()
            .is_some_and(|s| crate::schema::partition_key_field(s).is_some())
        {
            return Err(error(
                code::PARAMETER_INVALID,
                format!("disable {what} partitions if partition key mode is used"),
            ));
        }
        Ok(())
    }

    /// `ReleaseCollection`.
    pub async fn release_collection(&self, db: &str, req: pb::ReleaseCollectionRequest) -> Status {
        self.release(db, &req.collection_name, &[]).await
    }

    /// `ReleasePartitions`.
    pub async fn release_partitions(&self, db: &str, req: pb::ReleasePartitionsRequest) -> Status {
        if req.partition_names.is_empty() {
            return error(code::PARAMETER_INVALID, "no partition to release");
        }
        if let Err(s) = self
            .no_partitions_in_key_mode(db, &req.collection_name, "release")
            .await
        {
            return s;
        }
        self.release(db, &req.collection_name, &req.partition_names)
            .await
    }

    /// The querycoord's view of a load.
    pub(super) async fn load_state(
        &self,
        db: &str,
        collection: &str,
        partitions: &[String],
    ) -> Result<qc::LoadStateResponse, Status> {
        let (c, ids) = self.with_partitions(db, collection, partitions).await?;
        let m = qc::LoadStateRequest {
            collection_id: c.collection_id,
            partition_ids: ids,
        };
        let r = self
            .querycoord
            .call(m, |mut c, r| async move { c.get_load_state(r).await })
            .await
            .map_err(querycoord_down)?;
        match r.status.as_ref() {
            Some(s) if !is_ok(s) => Err(s.clone()),
            _ => Ok(r),
        }
    }

    /// `GetLoadingProgress` (code 101 when not loaded).
    pub async fn get_loading_progress(
        &self,
        db: &str,
        req: pb::GetLoadingProgressRequest,
    ) -> pb::GetLoadingProgressResponse {
        let db = if req.db_name.is_empty() {
            db
        } else {
            &req.db_name
        };
        match self
            .load_state(db, &req.collection_name, &req.partition_names)
            .await
        {
            Ok(r) if r.state == LoadState::NotLoad as i32 => pb::GetLoadingProgressResponse {
                status: Some(error(COLLECTION_NOT_LOADED, "collection not loaded")),
                ..Default::default()
            },
            Ok(r) => pb::GetLoadingProgressResponse {
                status: Some(Status::default()),
                progress: r.progress,
                refresh_progress: r.progress,
            },
            Err(s) => pb::GetLoadingProgressResponse {
                status: Some(s),
                ..Default::default()
            },
        }
    }

    /// `GetLoadState`.
    pub async fn get_load_state(
        &self,
        db: &str,
        req: pb::GetLoadStateRequest,
    ) -> pb::GetLoadStateResponse {
        let db = if req.db_name.is_empty() {
            db
        } else {
            &req.db_name
        };
        match self
            .load_state(db, &req.collection_name, &req.partition_names)
            .await
        {
            Ok(r) => pb::GetLoadStateResponse {
                status: Some(Status::default()),
                state: r.state,
            },
            Err(s) => pb::GetLoadStateResponse {
                status: Some(s),
                ..Default::default()
            },
        }
    }

    /// Whether a collection is loaded, read from its load info in etcd (current, unlike
    /// the followed records; the querycoord need not be up).
    pub(super) async fn is_loaded(&self, coll: i64) -> Result<bool, Status> {
        let key = crate::meta::query::QueryKeys::new(&self.ctx.config.etcd.meta_root()).load(coll);
        let r = self
            .ctx
            .etcd
            .call(|mut c| {
                let key = key.clone();
                async move { c.get(key, None).await }
            })
            .await
            .map_err(|e| retriable(code::UNEXPECTED, format!("cannot read the load state: {e}")))?;
        Ok(!r.kvs().is_empty())
    }

    /// Whether the collection named is loaded now (see [`Proxy::is_loaded`]); false when
    /// it cannot be found (the call then fails on that where it looks the name up).
    pub(super) async fn loaded_now(&self, db: &str, name: &str) -> Result<bool, Status> {
        match self.collection_record(db, name).await {
            Ok(c) => self.is_loaded(c.id).await,
            Err(_) => Ok(false),
        }
    }

    /// Milvus's 104 when the collection named is loaded now: `<what>: collection already
    /// loaded[collection=<name>]` (changes that must wait for a release).
    pub(super) async fn refuse_while_loaded(
        &self,
        db: &str,
        name: &str,
        what: &str,
    ) -> Result<(), Status> {
        if self.loaded_now(db, name).await? {
            return Err(collection_loaded(name, what));
        }
        Ok(())
    }

    /// Refuses to drop the index of a loaded collection (Milvus's rule).
    pub(super) async fn refuse_if_loaded(&self, coll: i64) -> Result<(), Status> {
        if self.is_loaded(coll).await? {
            Err(error(
                code::PARAMETER_INVALID,
                "index cannot be dropped, collection is loaded, please release it first",
            ))
        } else {
            Ok(())
        }
    }
}

/// Milvus's 104 for a change refused while the collection is loaded.
pub(super) fn collection_loaded(name: &str, what: &str) -> Status {
    error(
        code::COLLECTION_LOADED,
        format!("{what}: collection already loaded[collection={name}]"),
    )
}
