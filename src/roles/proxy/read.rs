//! What the proxy's reads share: the records it follows from etcd (catalog, index
//! definitions, loads, and which querynodes serve which shard), so no coordinator is on
//! the search path; resolving a loaded collection; fanning a request out to one
//! querynode per shard, trying the other replicas when one fails; the consistency
//! level a request reads at; and output columns.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use tonic::transport::Channel;

use super::Proxy;
use crate::expr::{Filter, Value};
use crate::meta::catalog::{Catalog, CatalogKeys};
use crate::meta::follower::Follower;
use crate::meta::index::{IndexDefs, IndexKeys};
use crate::meta::query::{LoadInfos, QueryKeys, Serving};
use crate::proto::common::{ConsistencyLevel, Status};
use crate::proto::querycoord::LoadInfo;
use crate::proto::querynode::query_node_client::QueryNodeClient;
use crate::proto::querynode::Freshness;
use crate::proto::rootcoord::CollectionRecord;
use crate::proto::schema::{
    field_data, scalar_field, vector_field, ArrayArray, BoolArray, CollectionSchema, DataType,
    DoubleArray, FieldData, FieldSchema, FloatArray, IntArray, JsonArray, LongArray, ScalarField,
    StringArray, VectorField,
};
use crate::roles::querycoord::service::COLLECTION_NOT_LOADED;
use crate::roles::querynode::service::mode;
use crate::status::{code, error, is_ok, retriable};

/// The followers of the records reads use.
struct Followers {
    catalog: Arc<Follower<Catalog>>,
    defs: Arc<Follower<IndexDefs>>,
    loads: Arc<Follower<LoadInfos>>,
    serving: Arc<Follower<Serving>>,
}

/// The proxy's read-side state.
#[derive(Default)]
pub struct ReadState {
    followers: Mutex<Option<Arc<Followers>>>,
    catalog: Arc<RwLock<Catalog>>,
    defs: Arc<RwLock<IndexDefs>>,
    loads: Arc<RwLock<LoadInfos>>,
    serving: Arc<RwLock<Serving>>,
    nodes: Mutex<HashMap<String, QueryNodeClient<Channel>>>,
    /// Per shard (vchannel), how many requests it has sent: one counter per shard, so
    /// successive requests go to each replica in turn (a shared counter, advanced once
    /// per shard of a request, would send a 2-shard request's shards to fixed replicas).
    turns: Mutex<HashMap<String, usize>>,
    /// Per search iterator (v2 token): the last bound it was given and the keys of the
    /// hits it was given at exactly that score (`search::iterator_ties`).
    pub(super) iter_ties: Mutex<HashMap<String, (f32, Vec<super::search::Key>)>>,
}

/// A loaded collection, as a read sees it.
pub struct Loaded {
    /// Its catalog record.
    pub record: CollectionRecord,
    /// Its load.
    pub info: LoadInfo,
}

impl Loaded {
    /// Rows written before this hybrid timestamp have expired (its `collection.ttl.seconds`
    /// by this host's clock); 0 when none expire.
    pub fn expire_before(&self) -> u64 {
        let now_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        crate::schema::properties::expire_before(
            crate::schema::properties::ttl(&self.record.properties),
            now_ms,
        )
    }

    /// Its schema.
    pub fn schema(&self) -> &CollectionSchema {
        self.record
            .schema
            .as_ref()
            .expect("a collection record has a schema")
    }

    /// The partitions to read: `names` (all loaded ones when empty), each known and loaded.
    pub fn partitions(&self, names: &[String]) -> Result<Vec<i64>, Status> {
        if names.is_empty() {
            return Ok(self.info.partition_ids.clone());
        }
        if crate::schema::partition_key_field(self.schema()).is_some() {
            return Err(super::write::no_partition_names_with_key());
        }
        let mut ids = Vec::new();
        for n in names {
            let p = self
                .record
                .partitions
                .iter()
                .find(|p| &p.name == n)
                .ok_or_else(|| error(code::UNEXPECTED, format!("partition name {n} not found")))?;
            if !self.info.partition_ids.is_empty() && !self.info.partition_ids.contains(&p.id) {
                return Err(error(
                    COLLECTION_NOT_LOADED,
                    format!("partition not loaded[partition={n}]"),
                ));
            }
            ids.push(p.id);
        }
        Ok(ids)
    }
}

impl Loaded {
    /// `partitions` narrowed, in a partition-key collection, to those the filter's values
    /// of the key hash to (as Milvus prunes them): a row with another key value cannot
    /// match, and every row is stored in the partition its key hashes to (the write
    /// path's `partition_key_slots`). Unchanged when the filter does not bound the key
    /// to a list of integers or strings, or when nothing would remain.
    pub fn key_partitions(&self, partitions: Vec<i64>, filter: Option<&Filter>) -> Vec<i64> {
        let schema = self.schema();
        let (Some(key), Some(filter)) = (crate::schema::partition_key_field(schema), filter) else {
            return partitions;
        };
        let Some(values) = filter.key_values(key.field_id) else {
            return partitions;
        };
        let named: Vec<(String, i64)> = self
            .record
            .partitions
            .iter()
            .map(|p| (p.name.clone(), p.id))
            .collect();
        let ordered = crate::schema::partition_key_partitions(&named);
        if ordered.is_empty() {
            return partitions;
        }
        let n = ordered.len();
        let mut ids = Vec::new();
        for v in &values {
            let slot = match (key.data_type(), v) {
                (DataType::Int64, Value::Int(i)) => crate::schema::hash::hash_int64(*i),
                (DataType::VarChar, Value::Str(s)) => crate::schema::hash::hash_varchar(s),
                // A string never equals an integer key, nor an integer a string key.
                (DataType::Int64, Value::Str(_)) | (DataType::VarChar, Value::Int(_)) => continue,
                _ => return partitions,
            };
            ids.push(ordered[slot as usize % n]);
        }
        ids.sort_unstable();
        ids.dedup();
        if !partitions.is_empty() {
            ids.retain(|id| partitions.contains(id));
        }
        if ids.is_empty() {
            partitions
        } else {
            ids
        }
    }
}

/// How long a querynode may wait for a shard to catch up with the log before it answers
/// an error (rather than stale rows).
const FRESHNESS_WAIT: Duration = Duration::from_secs(10);

/// Errors of a fan-out.
fn unreachable_shard(vchannel: &str, last: &str) -> Status {
    retriable(
        code::SERVICE_UNAVAILABLE,
        format!("no querynode serves shard {vchannel} now (last error: {last})"),
    )
}

impl Proxy {
    fn read_followers(&self) -> Arc<Followers> {
        let r = &self.reads;
        let mut f = r.followers.lock().expect("followers lock");
        f.get_or_insert_with(|| {
            let etcd = &self.ctx.etcd;
            let root = self.ctx.config.etcd.meta_root();
            let q = QueryKeys::new(&root);
            Arc::new(Followers {
                catalog: Follower::start(etcd.clone(), CatalogKeys::new(&root), r.catalog.clone()),
                defs: Follower::start(etcd.clone(), IndexKeys::new(&root), r.defs.clone()),
                loads: Follower::start(etcd.clone(), q.loads.clone(), r.loads.clone()),
                serving: Follower::start(etcd.clone(), q.serving.clone(), r.serving.clone()),
            })
        })
        .clone()
    }

    /// Waits until every read follower has read its records once.
    async fn reads_ready(&self) -> Result<(), Status> {
        let f = self.read_followers();
        let limit = Duration::from_secs(10);
        for ok in [
            f.catalog.wait_applied(1, limit).await,
            f.defs.wait_applied(1, limit).await,
            f.loads.wait_applied(1, limit).await,
            f.serving.wait_applied(1, limit).await,
        ] {
            if !ok {
                return Err(retriable(
                    code::SERVICE_UNAVAILABLE,
                    "the proxy cannot read the cluster metadata from etcd",
                ));
            }
        }
        Ok(())
    }

    /// The collections of database `db` (every database when empty) that exist now.
    pub(super) async fn collections_of(&self, db: &str) -> Result<Vec<CollectionRecord>, Status> {
        self.reads_ready().await?;
        let catalog = self.reads.catalog.read().expect("catalog lock");
        let dbs = if db.is_empty() {
            catalog.databases()
        } else {
            vec![catalog.database(db).ok_or_else(|| {
                error(
                    code::DATABASE_NOT_FOUND,
                    format!("database not found[database={db}]"),
                )
            })?]
        };
        Ok(dbs
            .iter()
            .flat_map(|d| catalog.collections_in(d.id))
            .cloned()
            .collect())
    }

    fn find_collection(&self, db: &str, name: &str) -> Option<CollectionRecord> {
        let c = self.reads.catalog.read().expect("catalog lock");
        let db = c.database(if db.is_empty() { "default" } else { db })?;
        c.collection(db.id, name).cloned()
    }

    /// A collection by name: from the followed catalog, or (when the follower has not
    /// seen it yet) as the rootcoord describes it.
    pub(super) async fn collection_record(
        &self,
        db: &str,
        name: &str,
    ) -> Result<CollectionRecord, Status> {
        self.reads_ready().await?;
        if let Some(c) = self.find_collection(db, name) {
            return Ok(c);
        }
        // Not followed yet (or no such collection): the rootcoord knows.
        let d = self.target(db, name, "").await?.collection;
        let limit = tokio::time::Instant::now() + Duration::from_secs(5);
        while tokio::time::Instant::now() < limit {
            if let Some(c) = self
                .find_collection(db, name)
                .filter(|c| c.id == d.collection_id)
            {
                return Ok(c);
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Err(retriable(
            code::SERVICE_UNAVAILABLE,
            format!("collection {name} is not in the proxy's view of the catalog yet"),
        ))
    }

    /// The load of a collection, if loaded.
    pub(super) fn load_info(&self, coll: i64) -> Option<LoadInfo> {
        self.reads
            .loads
            .read()
            .expect("loads lock")
            .get(&coll.to_string())
            .map(|r| r.value.clone())
    }

    /// Every loaded collection's ID and load.
    pub(super) fn load_infos(&self) -> Vec<(i64, LoadInfo)> {
        let loads = self.reads.loads.read().expect("loads lock");
        loads
            .all()
            .filter_map(|(id, r)| Some((id.parse().ok()?, r.value.clone())))
            .collect()
    }

    /// A loaded collection by name (code 101 when it is not loaded).
    pub(super) async fn loaded(&self, db: &str, name: &str) -> Result<Loaded, Status> {
        let record = self.collection_record(db, name).await?;
        let info = self.load_info(record.id).ok_or_else(|| {
            error(
                COLLECTION_NOT_LOADED,
                format!("collection not loaded[collection={}]", record.id),
            )
        })?;
        Ok(Loaded { record, info })
    }

    /// The live index definition of a field.
    pub(super) fn index_params(
        &self,
        coll: i64,
        field: i64,
    ) -> Option<crate::proto::indexcoord::IndexRecord> {
        self.index_defs(coll)
            .into_iter()
            .find(|d| d.field_id == field)
    }

    /// Every live index definition of a collection.
    pub(super) fn index_defs(&self, coll: i64) -> Vec<crate::proto::indexcoord::IndexRecord> {
        self.reads
            .defs
            .read()
            .expect("defs lock")
            .of_collection(coll)
            .into_iter()
            .filter(|d| d.dropped_at_ms == 0)
            .cloned()
            .collect()
    }

    /// A collection's record by ID, from the followed catalog.
    pub(super) async fn collection_by_id(&self, id: i64) -> Result<CollectionRecord, Status> {
        self.reads_ready().await?;
        self.reads
            .catalog
            .read()
            .expect("catalog lock")
            .collection_by_id(id)
            .cloned()
            .ok_or_else(|| {
                error(
                    code::COLLECTION_NOT_FOUND,
                    format!("collection not found[collection={id}]"),
                )
            })
    }

    /// The serving records of a collection: which querynode serves each shard of each
    /// replica now.
    pub(super) fn serving_of(&self, coll: i64) -> Vec<crate::proto::querycoord::ServingRecord> {
        let serving = self.reads.serving.read().expect("serving lock");
        let start = format!("{coll}/");
        serving
            .under(&start)
            .map(|(_, r)| r.value.clone())
            .collect()
    }

    /// Asks the querynode at `address` for the sealed segments of one served shard.
    pub(super) async fn shard_segments(
        &self,
        address: &str,
        req: crate::proto::querynode::ShardSegmentsRequest,
    ) -> Result<crate::proto::querynode::ShardSegments, Status> {
        let mut client = self
            .node(address)
            .map_err(|e| retriable(code::SERVICE_UNAVAILABLE, e))?;
        match client.list_segments(req).await {
            Ok(r) => {
                let r = r.into_inner();
                match r.status.clone() {
                    Some(s) if !is_ok(&s) => Err(s),
                    _ => Ok(r),
                }
            }
            Err(e) => {
                self.forget_node(address);
                Err(retriable(
                    code::SERVICE_UNAVAILABLE,
                    format!("querynode {address}: {}", e.message()),
                ))
            }
        }
    }

    /// The querynodes serving a shard now: (replica, address), rotated so successive
    /// requests spread over the replicas.
    fn leaders(&self, coll: i64, vchannel: &str) -> Vec<(i32, String)> {
        let serving = self.reads.serving.read().expect("serving lock");
        let start = format!("{coll}/");
        let mut out: Vec<(i32, String)> = serving
            .under(&start)
            .filter(|(_, r)| r.value.vchannel == vchannel)
            .map(|(_, r)| (r.value.replica, r.value.address.clone()))
            .collect();
        if !out.is_empty() {
            let mut turns = self.reads.turns.lock().expect("turns lock");
            if turns.len() > 4096 {
                turns.clear(); // dropped collections' shards: forget them, stay bounded
            }
            let turn = turns.entry(vchannel.to_string()).or_default();
            let n = *turn % out.len();
            *turn = turn.wrapping_add(1);
            out.rotate_left(n);
        }
        out
    }

    fn node(&self, address: &str) -> Result<QueryNodeClient<Channel>, String> {
        let mut nodes = self.reads.nodes.lock().expect("nodes lock");
        if let Some(c) = nodes.get(address) {
            return Ok(c.clone());
        }
        // Read once per querynode address (channels are kept).
        let tls = crate::tls::internal_client_or_refuse(&self.ctx.config.security.internal_tls);
        let endpoint = crate::tls::endpoint(address, tls.as_ref())?
            .connect_timeout(Duration::from_secs(2))
            .timeout(Duration::from_secs(30))
            .http2_keep_alive_interval(Duration::from_secs(10))
            .keep_alive_timeout(Duration::from_secs(5));
        let c = crate::limit_client!(
            QueryNodeClient::new(endpoint.connect_lazy()),
            self.ctx.config.role(self.ctx.role).grpc
        );
        nodes.insert(address.to_string(), c.clone());
        Ok(c)
    }

    fn forget_node(&self, address: &str) {
        self.reads.nodes.lock().expect("nodes lock").remove(address);
    }

    /// Runs `call` for every shard of `loaded` (concurrently), on one querynode each;
    /// a querynode that cannot answer is replaced by another replica's, until one
    /// answers or `patience` runs out.
    pub(super) async fn each_shard<T, F, Fut>(
        &self,
        loaded: &Loaded,
        patience: Duration,
        call: F,
    ) -> Result<Vec<T>, Status>
    where
        F: Fn(QueryNodeClient<Channel>, i32, String) -> Fut + Clone,
        Fut: std::future::Future<Output = Result<(Status, T), tonic::Status>>,
    {
        let coll = loaded.record.id;
        let shards = loaded.info.vchannels.iter().map(|vch| {
            let call = call.clone();
            async move {
                let deadline = tokio::time::Instant::now() + patience;
                let mut last = String::from("no querynode has loaded it");
                loop {
                    for (replica, address) in self.leaders(coll, vch) {
                        let client = match self.node(&address) {
                            Ok(c) => c,
                            Err(e) => {
                                last = e;
                                continue;
                            }
                        };
                        match call(client, replica, vch.clone()).await {
                            Ok((s, v)) if is_ok(&s) => return Ok(v),
                            Ok((s, _)) if s.retriable => last = s.reason,
                            Ok((s, _)) => return Err(s),
                            Err(e) => {
                                last = format!("{address}: {}", e.message());
                                self.forget_node(&address);
                            }
                        }
                    }
                    if tokio::time::Instant::now() >= deadline {
                        return Err(unreachable_shard(vch, &last));
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        });
        futures::future::join_all(shards)
            .await
            .into_iter()
            .collect()
    }

    /// How fresh a read must be, from the request's consistency fields and the
    /// collection's level (Milvus's rules, reference section 7).
    pub(super) fn freshness(
        &self,
        record: &CollectionRecord,
        level: i32,
        use_default: bool,
        guarantee_ts: u64,
    ) -> Freshness {
        let graceful = self.ctx.config.graceful_time;
        let level = if use_default {
            // The collection's level; a Session client's own writes.
            match ConsistencyLevel::try_from(record.consistency_level) {
                Ok(ConsistencyLevel::Session) if guarantee_ts <= 1 => ConsistencyLevel::Eventually,
                Ok(l) => l,
                Err(_) => ConsistencyLevel::Bounded,
            }
        } else {
            match ConsistencyLevel::try_from(level) {
                Ok(ConsistencyLevel::Strong) if guarantee_ts == 2 => ConsistencyLevel::Bounded,
                Ok(ConsistencyLevel::Strong) if guarantee_ts > 2 => ConsistencyLevel::Customized,
                Ok(ConsistencyLevel::Session) if guarantee_ts <= 1 => ConsistencyLevel::Eventually,
                Ok(l) => l,
                Err(_) => ConsistencyLevel::Bounded,
            }
        };
        let timeout_ms = FRESHNESS_WAIT.as_millis() as i64;
        match level {
            ConsistencyLevel::Eventually => Freshness {
                mode: mode::EVENTUALLY,
                staleness_ms: 0,
                timeout_ms,
            },
            ConsistencyLevel::Bounded => Freshness {
                mode: mode::BOUNDED,
                staleness_ms: graceful.as_millis() as i64,
                timeout_ms,
            },
            // Strong, Session with the client's writes, Customized: everything
            // acknowledged before the request.
            _ => Freshness {
                mode: mode::STRONG,
                staleness_ms: 0,
                timeout_ms,
            },
        }
    }
}

/// Output fields a user asked for: the field IDs to read and the names to report.
pub struct Output {
    /// Field IDs, in column order.
    pub ids: Vec<i64>,
    /// The names reported in `output_fields`.
    pub names: Vec<String>,
}

/// Resolves `output_fields` (`*`, field names, dynamic keys) against `schema`; the
/// primary key first when `with_pk`.
pub fn output_fields(
    schema: &CollectionSchema,
    asked: &[String],
    with_pk: bool,
) -> Result<Output, Status> {
    let mut out = Output {
        ids: Vec::new(),
        names: Vec::new(),
    };
    let dynamic = schema.fields.iter().find(|f| f.is_dynamic);
    let add = |out: &mut Output, f: &FieldSchema, listed: bool| {
        if !out.ids.contains(&f.field_id) {
            out.ids.push(f.field_id);
        }
        if listed && !out.names.contains(&f.name) {
            out.names.push(f.name.clone());
        }
    };
    if with_pk {
        if let Some(pk) = schema.fields.iter().find(|f| f.is_primary_key) {
            add(&mut out, pk, true);
        }
    }
    for name in asked {
        let name = name.trim();
        if name == "*" {
            // A function's output is no raw data: `*` leaves it out (Milvus 2.5).
            for f in schema.fields.iter().filter(|f| !f.is_function_output) {
                add(&mut out, f, !f.is_dynamic);
            }
            continue;
        }
        if let Some(f) = schema.fields.iter().find(|f| f.name == name) {
            if f.is_function_output {
                return Err(error(
                    code::PARAMETER_INVALID,
                    format!("not allowed to retrieve raw data of field {name}"),
                ));
            }
            add(&mut out, f, !f.is_dynamic);
            continue;
        }
        match dynamic {
            Some(d) if !name.is_empty() => {
                add(&mut out, d, false);
                if !out.names.iter().any(|n| n == name) {
                    out.names.push(name.to_string());
                }
            }
            _ => {
                return Err(error(
                    code::PARAMETER_INVALID,
                    format!("field {name} not exist"),
                ))
            }
        }
    }
    Ok(out)
}

/// A refused parameter (code 1100).
/// A read's filter compiled against the schema (None when empty), refused as Milvus
/// refuses a plan it cannot make.
pub fn plan_filter(
    expr: &str,
    schema: &CollectionSchema,
    templates: &HashMap<String, crate::proto::schema::TemplateValue>,
) -> Result<Option<Filter>, Status> {
    if expr.trim().is_empty() {
        return Ok(None);
    }
    Filter::compile(expr, schema, templates)
        .map(Some)
        .map_err(|e| {
            invalid(format!(
                "failed to create query plan: {e}: invalid parameter"
            ))
        })
}

pub fn invalid(why: impl Into<String>) -> Status {
    error(code::PARAMETER_INVALID, why)
}

/// Empty, typed output columns for the fields `ids` of `schema`.
pub fn output_columns(schema: &CollectionSchema, ids: &[i64]) -> Vec<FieldData> {
    ids.iter()
        .filter_map(|id| schema.fields.iter().find(|f| f.field_id == *id))
        .map(empty_column)
        .collect()
}

/// Appends row `row` of a shard's columns `src` (same fields, same order) to `columns`.
pub fn append_row(columns: &mut [FieldData], src: &[FieldData], row: usize) {
    for (col, s) in columns.iter_mut().zip(src) {
        crate::schema::extend_field(col, crate::schema::take_row(s, row));
    }
}

/// An empty column of `f`, typed as pymilvus needs it even with no rows.
pub fn empty_column(f: &FieldSchema) -> FieldData {
    use scalar_field::Data as S;
    let t = f.data_type();
    let scalars = |d: S| Some(field_data::Field::Scalars(ScalarField { data: Some(d) }));
    let dim = crate::schema::dim(f);
    let vectors = |d: vector_field::Data| {
        Some(field_data::Field::Vectors(VectorField {
            dim,
            data: Some(d),
        }))
    };
    let field = match t {
        DataType::Bool => scalars(S::BoolData(BoolArray::default())),
        DataType::Int8 | DataType::Int16 | DataType::Int32 => {
            scalars(S::IntData(IntArray::default()))
        }
        DataType::Int64 => scalars(S::LongData(LongArray::default())),
        DataType::Float => scalars(S::FloatData(FloatArray::default())),
        DataType::Double => scalars(S::DoubleData(DoubleArray::default())),
        DataType::Json => scalars(S::JsonData(JsonArray::default())),
        DataType::Geometry => scalars(S::GeometryWktData(Default::default())),
        DataType::Array => scalars(S::ArrayData(ArrayArray {
            data: vec![],
            element_type: f.element_type,
        })),
        DataType::FloatVector => vectors(vector_field::Data::FloatVector(FloatArray::default())),
        DataType::BinaryVector => vectors(vector_field::Data::BinaryVector(vec![])),
        DataType::Float16Vector => vectors(vector_field::Data::Float16Vector(vec![])),
        DataType::BFloat16Vector => vectors(vector_field::Data::Bfloat16Vector(vec![])),
        _ => scalars(S::StringData(StringArray::default())),
    };
    FieldData {
        r#type: t as i32,
        field_name: f.name.clone(),
        field,
        field_id: f.field_id,
        is_dynamic: f.is_dynamic,
        valid_data: vec![],
    }
}
