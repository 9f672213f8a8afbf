//! The proxy's write path: `Insert`, `Upsert` and `Delete` (by primary key) validated
//! against the collection's schema, given row IDs and one timestamp by the rootcoord,
//! routed to shards by primary key, and published to each shard's channel in the log.
//! The answer comes only after the log has acknowledged every message; each message
//! has an ID derived from the request, so a retried publish is stored once.

use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use prost::Message;
use tokio::time::Instant;

use super::Proxy;
use crate::proto::common::Status;
use crate::proto::milvus as pb;
use crate::proto::rootcoord::AllocRequest;
use crate::proto::schema::{i_ds as ids, FieldData, IDs, LongArray, StringArray};
use crate::proto::wal::{wal_message, DeleteMsg, InsertMsg, WalMessage};
use crate::schema::{self, Pks};
use crate::status::{code, error, is_ok, retriable};
use crate::wal::{self, Wal};

/// How long one publish attempt may wait for its acknowledgement before it is sent again.
const PUBLISH_ATTEMPT: Duration = Duration::from_secs(1);

/// The log connection and the channels known to exist.
pub struct WriteState {
    wal: tokio::sync::OnceCell<Wal>,
    ready: tokio::sync::Mutex<HashSet<String>>,
    nonce: String,
    requests: AtomicU64,
}

impl WriteState {
    /// Not connected yet: the proxy connects to the log on its first write.
    pub fn new() -> Self {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        WriteState {
            wal: tokio::sync::OnceCell::new(),
            ready: tokio::sync::Mutex::new(HashSet::new()),
            nonce: format!("{:x}{:x}", std::process::id(), nanos),
            requests: AtomicU64::new(0),
        }
    }
}

impl Default for WriteState {
    fn default() -> Self {
        WriteState::new()
    }
}

fn failed(s: Status) -> pb::MutationResult {
    pb::MutationResult {
        status: Some(s),
        ..Default::default()
    }
}

/// What the collection looks like to a write.
pub(super) struct Target {
    pub(super) collection: pb::DescribeCollectionResponse,
    pub(super) partition_id: i64,
    /// A partition-key collection's partitions in key order (empty otherwise): a row
    /// goes to the one its key hashes to.
    pub(super) key_partitions: Vec<i64>,
}

/// Milvus's refusal of a partition name on a partition-key collection.
pub(super) fn no_partition_names_with_key() -> Status {
    error(
        code::PARAMETER_INVALID,
        "not support manually specifying the partition names if partition key mode is used",
    )
}

impl Proxy {
    /// The log, connected on first use.
    async fn wal(&self) -> Result<&Wal, Status> {
        let log = &self.ctx.config.log;
        self.writes
            .wal
            .get_or_try_init(|| {
                Wal::for_config(log, crate::wal::connection_name(self.ctx.role.name()))
            })
            .await
            .map_err(|e| retriable(code::UNEXPECTED, format!("{e} (natsmq.address)")))
    }

    /// Describes the collection (every write: a dropped and re-created collection never
    /// receives another's rows) and finds the partition.
    pub(super) async fn target(
        &self,
        db: &str,
        collection: &str,
        partition: &str,
    ) -> Result<Target, Status> {
        self.find_target(db, collection, partition, false).await
    }

    async fn find_target(
        &self,
        db: &str,
        collection: &str,
        partition: &str,
        write: bool,
    ) -> Result<Target, Status> {
        let rc = &self.rootcoord;
        let req = pb::DescribeCollectionRequest {
            db_name: db.to_string(),
            collection_name: collection.to_string(),
            ..Default::default()
        };
        let d = rc
            .call(
                req,
                |mut c, r| async move { c.describe_collection(r).await },
            )
            .await
            .map_err(|e| retriable(code::SERVICE_UNAVAILABLE, e.to_string()))?;
        if let Some(s) = d.status.as_ref().filter(|s| !is_ok(s)) {
            return Err(s.clone());
        }
        let key_mode = d
            .schema
            .as_ref()
            .is_some_and(|s| crate::schema::partition_key_field(s).is_some());
        if write && key_mode && !partition.is_empty() {
            return Err(no_partition_names_with_key());
        }
        if !partition.is_empty() {
            crate::schema::names::partition(partition, true)?;
        }
        let req = pb::ShowPartitionsRequest {
            db_name: db.to_string(),
            collection_name: collection.to_string(),
            ..Default::default()
        };
        let parts = rc
            .call(req, |mut c, r| async move { c.show_partitions(r).await })
            .await
            .map_err(|e| retriable(code::SERVICE_UNAVAILABLE, e.to_string()))?;
        let wanted = if partition.is_empty() {
            "_default"
        } else {
            partition
        };
        let partition_id = parts
            .partition_names
            .iter()
            .position(|p| p == wanted)
            .map(|i| parts.partition_i_ds[i])
            .or_else(|| {
                partition
                    .is_empty()
                    .then(|| parts.partition_i_ds.first().copied())
                    .flatten()
            })
            .ok_or_else(|| {
                error(
                    code::PARTITION_NOT_FOUND,
                    format!("partition not found[partition={wanted}]"),
                )
            })?;
        if d.virtual_channel_names.is_empty() {
            return Err(error(
                code::UNEXPECTED,
                format!("collection {collection} has no channels (created by an older version); recreate it to write to it"),
            ));
        }
        let key_partitions = if key_mode {
            let named: Vec<(String, i64)> = parts
                .partition_names
                .iter()
                .cloned()
                .zip(parts.partition_i_ds.iter().copied())
                .collect();
            crate::schema::partition_key_partitions(&named)
        } else {
            vec![]
        };
        Ok(Target {
            collection: d,
            partition_id,
            key_partitions,
        })
    }

    /// [`Self::target`] for a write (insert, upsert, delete, import): a partition-key
    /// collection's rows go where their keys say, never to a partition named.
    pub(super) async fn write_target(
        &self,
        db: &str,
        collection: &str,
        partition: &str,
    ) -> Result<Target, Status> {
        self.find_target(db, collection, partition, true).await
    }

    pub(super) async fn alloc(&self, ids: u32) -> Result<(i64, u64), Status> {
        let rc = &self.rootcoord;
        let ts = rc
            .call(AllocRequest { count: 1 }, |mut c, r| async move {
                c.alloc_timestamp(r).await
            })
            .await
            .map_err(|e| retriable(code::SERVICE_UNAVAILABLE, e.to_string()))?;
        if let Some(s) = ts.status.as_ref().filter(|s| !is_ok(s)) {
            return Err(s.clone());
        }
        let id = rc
            .call(AllocRequest { count: ids.max(1) }, |mut c, r| async move {
                c.alloc_id(r).await
            })
            .await
            .map_err(|e| retriable(code::SERVICE_UNAVAILABLE, e.to_string()))?;
        if let Some(s) = id.status.as_ref().filter(|s| !is_ok(s)) {
            return Err(s.clone());
        }
        Ok((id.id, ts.timestamp))
    }

    /// Publishes `messages` (physical channel, message ID, body) concurrently, retrying
    /// each on a failure until the coordinator retry limit: the same message ID is
    /// stored once. Returns once every message is acknowledged. The messages of one
    /// request share its timestamp, so their order in a channel does not matter.
    pub(super) async fn publish_all(
        &self,
        messages: Vec<(String, String, WalMessage)>,
    ) -> Result<(), Status> {
        let wal = self.wal().await?;
        let deadline = Instant::now() + self.ctx.config.proxy.coord_retry_timeout;
        {
            let mut ready = self.writes.ready.lock().await;
            for (pchannel, _, _) in &messages {
                if !ready.contains(pchannel) {
                    wal.ensure_channel(pchannel)
                        .await
                        .map_err(|e| retriable(code::UNEXPECTED, e.to_string()))?;
                    ready.insert(pchannel.clone());
                }
            }
        }
        let sends = messages.into_iter().map(|(pchannel, id, body)| async move {
            let payload = Bytes::from(body.encode_to_vec());
            let vchannel = vchannel_of(&body).unwrap_or(&pchannel).to_string();
            loop {
                // Each attempt is short: a publish sent just before the server died may
                // never be acknowledged, and the retry (same message ID, stored once) is
                // what gets through once the client has reconnected.
                let left = deadline.saturating_duration_since(Instant::now());
                let attempt = PUBLISH_ATTEMPT.min(left.max(Duration::from_millis(100)));
                let sent = tokio::time::timeout(attempt, wal.publish(&vchannel, &id, payload.clone()))
                    .await
                    .unwrap_or_else(|_| {
                        Err(wal::WalError::Timeout {
                            what: format!("a publish to {vchannel}"),
                            limit: attempt,
                        })
                    });
                match sent {
                    Ok(_) => return Ok(()),
                    Err(e) if Instant::now() < deadline => {
                        log::warn!(channel = pchannel.as_str(), error:% = e; "publish to the log failed, retrying");
                        tokio::time::sleep(Duration::from_millis(200)).await;
                    }
                    Err(e) => {
                        log::warn!(channel = pchannel.as_str(), error:% = e;
                            "publish to the log failed, giving up: the write is not acknowledged");
                        return Err(retriable(
                            code::UNEXPECTED,
                            format!("{e}; the write was not acknowledged, retry it"),
                        ));
                    }
                }
            }
        });
        futures::future::join_all(sends)
            .await
            .into_iter()
            .collect::<Result<Vec<()>, Status>>()
            .map(|_| ())
    }

    /// How many rows of `fields` fit in one log message (at most half the server's
    /// `max_payload` of encoded columns, leaving room for framing and skew).
    async fn rows_per_message(&self, fields: &[FieldData], rows: usize) -> Result<usize, Status> {
        let limit = self.wal().await?.max_payload() / 2;
        let bytes: usize = fields.iter().map(Message::encoded_len).sum::<usize>() + rows * 10;
        let per_row = bytes.div_ceil(rows.max(1)).max(1);
        Ok((limit / per_row).max(1))
    }

    pub(super) fn request_id(&self) -> String {
        let n = self.writes.requests.fetch_add(1, Ordering::Relaxed);
        format!("{}-{n}", self.writes.nonce)
    }

    /// `Insert` (or `Upsert`, which deletes the keys and inserts the rows at one
    /// timestamp).
    pub async fn insert(
        &self,
        db: &str,
        req: pb::InsertRequest,
        upsert: bool,
    ) -> pb::MutationResult {
        match self.try_insert(db, req, upsert).await {
            Ok(r) => r,
            Err(s) => failed(s),
        }
    }

    async fn try_insert(
        &self,
        db: &str,
        req: pb::InsertRequest,
        upsert: bool,
    ) -> Result<pb::MutationResult, Status> {
        let t = self
            .write_target(db, &req.collection_name, &req.partition_name)
            .await?;
        let c = &t.collection;
        if req.schema_timestamp != 0 && req.schema_timestamp != c.update_timestamp {
            return Err(error(
                code::SCHEMA_MISMATCH,
                format!("collection {} schema mismatch: the client's schema is out of date, describe the collection again", req.collection_name),
            ));
        }
        let schema = c.schema.clone().unwrap_or_default();
        let mut v = schema::validate_rows(&schema, req.fields_data, req.num_rows, upsert)?;
        // An upsert replaces rows by key: one batch naming a key twice is ambiguous, and
        // Milvus (2.6) refuses it.
        if let Some(k) = v
            .pks
            .as_ref()
            .filter(|_| upsert)
            .and_then(Pks::first_repeated)
        {
            return Err(error(
                code::PARAMETER_INVALID,
                format!("duplicate primary keys are not allowed in the same batch: {k} appears more than once"),
            ));
        }
        let (first_id, ts) = self.alloc(v.rows as u32).await?;
        let row_ids: Vec<i64> = (first_id..first_id + v.rows as i64).collect();
        // autoID: the row IDs are the keys. An upsert on an autoID collection deletes
        // the keys it was given and inserts the rows under new keys, as Milvus does.
        let replaced = schema::fill_auto_ids(&schema, &mut v, &row_ids);
        let pks = v.pks.take().expect("validated rows have keys");
        // The keys an upsert deletes: the given ones (also with autoID).
        let old = replaced.as_ref().unwrap_or(&pks);
        let shards = c.virtual_channel_names.len();
        let by_shard = |keys: &Pks| {
            let mut by_shard: Vec<Vec<usize>> = vec![Vec::new(); shards];
            for i in 0..keys.len() {
                by_shard[keys.shard(i, shards)].push(i);
            }
            by_shard
        };
        let rid = self.request_id();
        let chunk = self.rows_per_message(&v.fields, v.rows).await?;
        let mut messages = Vec::new();
        if upsert {
            for (shard, rows) in by_shard(old)
                .iter()
                .enumerate()
                .filter(|(_, r)| !r.is_empty())
            {
                let vchannel = &c.virtual_channel_names[shard];
                let del = DeleteMsg {
                    collection_id: c.collection_id,
                    partition_id: 0,
                    vchannel: vchannel.clone(),
                    timestamp: ts,
                    pks: Some(ids_of(old, rows)),
                    num_rows: rows.len() as i64,
                };
                messages.push((
                    wal::pchannel_of(vchannel).to_string(),
                    format!("{rid}-d{shard}"),
                    body(wal_message::Body::Delete(del)),
                ));
            }
        }
        // Partition-key mode: each row to the partition its key hashes to.
        let slots = schema::partition_key_slots(&schema, &v.fields, t.key_partitions.len())
            .filter(|_| !t.key_partitions.is_empty());
        let mut groups: Vec<(usize, i64, Vec<usize>)> = Vec::new();
        for (shard, rows) in by_shard(&pks).into_iter().enumerate() {
            match &slots {
                None => groups.push((shard, t.partition_id, rows)),
                Some(slots) => {
                    let mut by_part: std::collections::BTreeMap<usize, Vec<usize>> =
                        Default::default();
                    for r in rows {
                        by_part.entry(slots[r]).or_default().push(r);
                    }
                    for (slot, rows) in by_part {
                        groups.push((shard, t.key_partitions[slot], rows));
                    }
                }
            }
        }
        for (g, (shard, partition_id, rows)) in groups
            .iter()
            .enumerate()
            .filter(|(_, (_, _, r))| !r.is_empty())
        {
            let (shard, partition_id) = (*shard, *partition_id);
            let vchannel = &c.virtual_channel_names[shard];
            let pchannel = wal::pchannel_of(vchannel).to_string();
            // One message per chunk of rows that fits the log's message size limit.
            for (k, part) in rows.chunks(chunk).enumerate() {
                let ins = InsertMsg {
                    collection_id: c.collection_id,
                    partition_id,
                    vchannel: vchannel.clone(),
                    timestamp: ts,
                    row_ids: part.iter().map(|i| row_ids[*i]).collect(),
                    fields: schema::take_rows(&v.fields, part),
                    num_rows: part.len() as u32,
                };
                messages.push((
                    pchannel.clone(),
                    format!("{rid}-i{g}-{k}"),
                    body(wal_message::Body::Insert(ins)),
                ));
            }
        }
        self.publish_all(messages).await?;
        let n = v.rows as i64;
        Ok(pb::MutationResult {
            status: Some(Status::default()),
            i_ds: Some(ids_of(&pks, &(0..v.rows).collect::<Vec<_>>())),
            succ_index: (0..v.rows as u32).collect(),
            insert_cnt: n,
            upsert_cnt: if upsert { n } else { 0 },
            timestamp: ts,
            ..Default::default()
        })
    }

    /// `Delete` by primary key (`pk in [...]` or `pk == value`).
    pub async fn delete(&self, db: &str, req: pb::DeleteRequest) -> pb::MutationResult {
        match self.try_delete(db, req).await {
            Ok(r) => r,
            Err(s) => failed(s),
        }
    }

    async fn try_delete(
        &self,
        db: &str,
        req: pb::DeleteRequest,
    ) -> Result<pb::MutationResult, Status> {
        let t = self
            .write_target(db, &req.collection_name, &req.partition_name)
            .await?;
        let c = &t.collection;
        let schema = c.schema.clone().unwrap_or_default();
        let partition = (!req.partition_name.is_empty()).then_some(t.partition_id);
        let pks = self
            .delete_keys(
                db,
                &req.collection_name,
                &req.expr,
                &req.expr_template_values,
                &schema,
                partition,
            )
            .await?;
        if pks.is_empty() {
            return Ok(pb::MutationResult {
                status: Some(Status::default()),
                ..Default::default()
            });
        }
        let (_, ts) = self.alloc(1).await?;
        let shards = c.virtual_channel_names.len();
        let mut by_shard: Vec<Vec<usize>> = vec![Vec::new(); shards];
        for i in 0..pks.len() {
            by_shard[pks.shard(i, shards)].push(i);
        }
        let partition_id = if req.partition_name.is_empty() {
            0
        } else {
            t.partition_id
        };
        let rid = self.request_id();
        let mut messages = Vec::new();
        for (shard, rows) in by_shard.iter().enumerate().filter(|(_, r)| !r.is_empty()) {
            let vchannel = &c.virtual_channel_names[shard];
            let del = DeleteMsg {
                collection_id: c.collection_id,
                partition_id,
                vchannel: vchannel.clone(),
                timestamp: ts,
                pks: Some(ids_of(&pks, rows)),
                num_rows: rows.len() as i64,
            };
            messages.push((
                wal::pchannel_of(vchannel).to_string(),
                format!("{rid}-d{shard}"),
                body(wal_message::Body::Delete(del)),
            ));
        }
        self.publish_all(messages).await?;
        // Milvus >= 2.3.2 leaves IDs empty on deletes (pymilvus then returns a dict).
        Ok(pb::MutationResult {
            status: Some(Status::default()),
            delete_cnt: pks.len() as i64,
            timestamp: ts,
            ..Default::default()
        })
    }
}

/// The shard a log message is for.
fn vchannel_of(m: &WalMessage) -> Option<&str> {
    match m.body.as_ref()? {
        wal_message::Body::Insert(i) => Some(&i.vchannel),
        wal_message::Body::Delete(d) => Some(&d.vchannel),
        wal_message::Body::Flush(f) => Some(&f.vchannel),
    }
}

pub(super) fn body(b: wal_message::Body) -> WalMessage {
    WalMessage { body: Some(b) }
}

/// The keys of rows `idx` as Milvus's `IDs`.
fn ids_of(pks: &Pks, idx: &[usize]) -> IDs {
    IDs {
        id_field: Some(match pks {
            Pks::Int(v) => ids::IdField::IntId(LongArray {
                data: idx.iter().map(|i| v[*i]).collect(),
            }),
            Pks::Str(v) => ids::IdField::StrId(StringArray {
                data: idx.iter().map(|i| v[*i].clone()).collect(),
            }),
        }),
    }
}
