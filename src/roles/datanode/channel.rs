//! One virtual channel's consumer: reads the shard's messages (its subject of the
//! physical channel's stream) from the checkpoint, keeps them in a [`Buffer`], and writes it out (sync) when a flush
//! marker arrives, when it is large enough, or when it is old enough.
//!
//! A sync writes one Parquet file per partition (a new segment each) and one delta file,
//! then registers them with the checkpoint in one txn conditioned on the channel's
//! assignment (unchanged since this consumer started) and this datanode's session key
//! (alive). A sync that fails for any other reason is retried with the same IDs and
//! paths, so a retry of a txn whose outcome was unknown writes the same records again.

use std::sync::Arc;
use std::time::Duration;

use etcd_client::{Compare, CompareOp, PutOptions, Txn, TxnOp};
use prost::Message;
use tokio::time::Instant;

use super::buffer::Buffer;
use super::Shared;
use crate::meta::data::{delta_file, insert_file};
use crate::proto::datacoord::{
    ChannelCheckpoint, DeltaRecord, SegmentRecord, SegmentState, SyncFailure,
};
use crate::proto::schema::CollectionSchema;
use crate::proto::wal::{wal_message, WalMessage};
use crate::roles::worker::Owner;
use crate::storage::{segment, WriteWindow};
use crate::wal::{self, Wal};

/// The assignment a consumer works under.
pub struct Assignment {
    /// The virtual channel.
    pub vchannel: String,
    /// Its collection.
    pub collection_id: i64,
    /// The revision of its channelwatch key when this consumer started.
    pub revision: i64,
}

/// Why a consumer stops or a sync did not happen.
#[derive(Debug, thiserror::Error)]
enum SyncError {
    /// The channel (or the session) is no longer this consumer's.
    #[error("the channel is no longer assigned to this datanode session")]
    Lost,
    /// Anything else: retried.
    #[error("{0}")]
    Failed(String),
}

fn failed(e: impl std::fmt::Display) -> SyncError {
    SyncError::Failed(e.to_string())
}

/// Failed attempts of one sync after which the failure is reported (the channel shows as
/// failing in `milvus status --channels`, and flushes of its collection answer why).
const REPORT_AFTER: u32 = 5;

/// How long one read waits before the consumer checks its timers.
const POLL: Duration = Duration::from_millis(200);

/// Consumes the channel until the task is aborted or the channel is lost.
pub async fn consume(shared: Arc<Shared>, owner: Arc<Owner>, a: Assignment) {
    let mut c = Consumer {
        shared,
        owner,
        a,
        buffer: Buffer::default(),
        next: 0,
        checkpoint_ts: 0,
        reading: false,
    };
    let mut backoff = Duration::from_millis(100);
    loop {
        match c.run().await {
            Err(SyncError::Lost) => {
                log::warn!(channel = c.a.vchannel.as_str(), buffered_rows = c.buffered_rows();
                    "channel lost: nothing more is registered for it; its unregistered files are garbage");
                return;
            }
            Err(SyncError::Failed(e)) => {
                // A run that got as far as reading starts the back-off afresh.
                if std::mem::take(&mut c.reading) {
                    backoff = Duration::from_millis(100);
                }
                log::warn!(channel = c.a.vchannel.as_str(), error = e.as_str(); "channel consumer failed, resuming");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(5));
            }
            Ok(()) => backoff = Duration::from_millis(100),
        }
    }
}

struct Consumer {
    shared: Arc<Shared>,
    owner: Arc<Owner>,
    a: Assignment,
    buffer: Buffer,
    /// The next sequence to read (0: start from the checkpoint).
    next: u64,
    /// The checkpoint's timestamp: a new checkpoint never goes below it (a sync of rows
    /// another proxy published late must not make an earlier flush look unfinished).
    checkpoint_ts: u64,
    /// Set once a run has a reader: the back-off of the next failure starts afresh.
    reading: bool,
}

impl Consumer {
    fn buffered_rows(&self) -> usize {
        self.buffer.partitions.values().map(|p| p.rows).sum()
    }

    fn still_owned(&self) -> bool {
        self.owner.lease.valid()
            && self
                .shared
                .channels
                .read()
                .expect("channels lock")
                .get(&self.a.vchannel)
                .is_none_or(|w| w.revision == self.a.revision)
    }

    async fn wal(&self) -> Result<&Wal, SyncError> {
        let log = &self.shared.ctx.config.log;
        self.shared
            .wal
            .get_or_try_init(|| {
                Wal::for_config(
                    log,
                    crate::wal::connection_name(self.shared.ctx.role.name()),
                )
            })
            .await
            .map_err(failed)
    }

    /// Reads from where it left off (the checkpoint at first) until an error.
    async fn run(&mut self) -> Result<(), SyncError> {
        if self.next == 0 {
            let cp = self.checkpoint().await?;
            self.next = cp.sequence + 1;
            self.checkpoint_ts = cp.timestamp;
        }
        let pchannel = wal::pchannel_of(&self.a.vchannel).to_string();
        let wal = self.wal().await?.clone();
        wal.ensure_channel(&pchannel).await.map_err(failed)?;
        let mut reader = wal
            .read_from(&self.a.vchannel, self.next)
            .await
            .map_err(failed)?;
        self.reading = true;
        let flush_bytes = self.shared.ctx.config.segment.flush_bytes();
        let period = self.shared.ctx.config.segment.sync_period;
        loop {
            if !self.still_owned() {
                return Err(SyncError::Lost);
            }
            if let Some(e) = reader.next(POLL).await.map_err(failed)? {
                // A message counts as read only once it is handled: a failure here
                // resumes at this same message, never after it.
                let msg = WalMessage::decode(e.payload.as_ref()).map_err(|err| {
                    failed(format!(
                        "log message {} cannot be decoded: {err}",
                        e.sequence
                    ))
                })?;
                let bytes = e.payload.len();
                match msg.body {
                    Some(wal_message::Body::Insert(m)) if m.vchannel == self.a.vchannel => {
                        self.buffer.insert(m, e.sequence, bytes);
                    }
                    Some(wal_message::Body::Delete(m)) if m.vchannel == self.a.vchannel => {
                        self.buffer.delete(m, bytes);
                    }
                    Some(wal_message::Body::Flush(m)) if m.vchannel == self.a.vchannel => {
                        self.buffer.mark(m.timestamp);
                        self.sync(e.sequence, "flush").await?;
                    }
                    _ => {}
                }
                self.next = e.sequence + 1;
            }
            let old = self.buffer.since.is_some_and(|t| t.elapsed() >= period);
            if self.buffer.bytes >= flush_bytes || old {
                let why = if old { "sync period" } else { "size" };
                self.sync(self.next - 1, why).await?;
            }
        }
    }

    /// The channel's checkpoint (sequence 0 when it has none yet).
    async fn checkpoint(&self) -> Result<ChannelCheckpoint, SyncError> {
        let key = self.shared.keys.checkpoint(&self.a.vchannel);
        let resp = self
            .shared
            .ctx
            .etcd
            .call(|mut c| {
                let key = key.clone();
                async move { c.get(key, None).await }
            })
            .await
            .map_err(failed)?;
        match resp.kvs().first() {
            Some(kv) => ChannelCheckpoint::decode(kv.value()).map_err(failed),
            None => Ok(ChannelCheckpoint {
                vchannel: self.a.vchannel.clone(),
                ..Default::default()
            }),
        }
    }

    fn schema(&self) -> Result<CollectionSchema, SyncError> {
        self.shared
            .catalog
            .read()
            .expect("catalog lock")
            .collection_by_id(self.a.collection_id)
            .and_then(|c| c.schema.clone())
            .ok_or_else(|| {
                failed(format!(
                    "collection {} is not in the catalog (dropped, or not seen yet)",
                    self.a.collection_id
                ))
            })
    }

    /// Writes out the buffer and moves the checkpoint to `sequence`, retrying until it
    /// is done or the channel is lost.
    async fn sync(&mut self, sequence: u64, why: &str) -> Result<(), SyncError> {
        let started = Instant::now();
        let mut ids: Option<i64> = None;
        let mut backoff = Duration::from_millis(100);
        let mut attempts = 0u32;
        let mut since_ms = 0i64;
        loop {
            if !self.still_owned() {
                return Err(SyncError::Lost);
            }
            match self.try_sync(sequence, &mut ids).await {
                Ok((segments, rows)) => {
                    let level = if why == "flush" || rows > 0 {
                        log::Level::Info
                    } else {
                        log::Level::Debug
                    };
                    log::log!(level, channel = self.a.vchannel.as_str(), reason = why, segments = segments,
                        rows = rows, deletes = self.buffer.deleted, checkpoint = sequence,
                        took:? = started.elapsed(); "datanode sync registered");
                    self.checkpoint_ts = self.checkpoint_ts.max(self.buffer.max_ts);
                    self.buffer = Buffer::default();
                    crate::memory::release_free_memory();
                    return Ok(());
                }
                Err(SyncError::Lost) => return Err(SyncError::Lost),
                Err(SyncError::Failed(e)) => {
                    attempts += 1;
                    if attempts == 1 {
                        since_ms = crate::meta::now_ms();
                    }
                    let segments = self.segment_ids(ids);
                    log::error!(channel = self.a.vchannel.as_str(), reason = why, segments:? = segments,
                        attempt = attempts, error = e.as_str();
                        "datanode sync failed: nothing registered, retrying");
                    if attempts >= REPORT_AFTER {
                        self.report_failure(&segments, &e, attempts, since_ms).await;
                    }
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                }
            }
        }
    }

    /// The segment IDs a sync writes (its block of IDs, once allocated).
    fn segment_ids(&self, first: Option<i64>) -> Vec<i64> {
        first.map_or_else(Vec::new, |f| {
            (0..self.buffer.partitions.len() as i64)
                .map(|i| f + i)
                .collect()
        })
    }

    /// Records in etcd, under this session's lease, that the channel's sync keeps
    /// failing and why (best effort: a failure to record it is only logged).
    async fn report_failure(&self, segments: &[i64], reason: &str, attempts: u32, since_ms: i64) {
        let f = SyncFailure {
            vchannel: self.a.vchannel.clone(),
            segment_ids: segments.to_vec(),
            reason: reason.to_string(),
            attempts,
            since_ms,
            node_id: self.owner.node_id,
            last_ms: crate::meta::now_ms(),
        };
        let key = self.shared.keys.sync_failure(&self.a.vchannel);
        let lease = self.owner.lease.id();
        let put = self
            .shared
            .ctx
            .etcd
            .call(|mut c| {
                let (key, value) = (key.clone(), f.encode_to_vec());
                async move {
                    c.put(key, value, Some(PutOptions::new().with_lease(lease)))
                        .await
                }
            })
            .await;
        if let Err(e) = put {
            log::warn!(channel = self.a.vchannel.as_str(), error:% = e; "cannot record the failing sync");
        }
    }

    /// One attempt: files, then the registering txn. `ids` keeps the first ID of the
    /// block allocated for this sync across attempts.
    async fn try_sync(
        &self,
        sequence: u64,
        ids: &mut Option<i64>,
    ) -> Result<(usize, usize), SyncError> {
        let b = &self.buffer;
        let coll = self.a.collection_id;
        let needed = b.partitions.len() as u32 + 1;
        let first = match *ids {
            Some(f) => f,
            None if b.is_empty() => 0,
            None => {
                let f = self.alloc_ids(needed).await?;
                *ids = Some(f);
                f
            }
        };
        let storage = &self.shared.storage;
        let window = WriteWindow::open(self.shared.ctx.config.segment.gc_missing_tolerance);
        let mut ops = Vec::new();
        let mut rows = 0;
        if !b.is_empty() {
            let schema = self.schema()?;
            for (i, (part, p)) in b.partitions.iter().enumerate() {
                let seg = first + i as i64;
                let file = segment::encode_all(&schema, &p.batches).map_err(failed)?;
                let path = insert_file(coll, *part, seg);
                let size = file.len() as i64;
                storage.put(&path, file).await.map_err(failed)?;
                let record = SegmentRecord {
                    id: seg,
                    collection_id: coll,
                    partition_id: *part,
                    vchannel: self.a.vchannel.clone(),
                    state: SegmentState::Flushed as i32,
                    num_rows: p.rows as i64,
                    insert_files: vec![path],
                    size_bytes: size,
                    start_sequence: p.start_sequence,
                    end_sequence: p.end_sequence,
                    start_ts: p.start_ts,
                    end_ts: p.end_ts,
                    node_id: self.owner.node_id,
                    ..Default::default()
                };
                rows += p.rows;
                let key = self.shared.keys.segment(coll, *part, seg);
                ops.push(TxnOp::put(key, record.encode_to_vec(), None));
            }
            if !b.deletes.is_empty() {
                let id = first + b.partitions.len() as i64;
                let (pk_schema, batches) = b.delete_batches(&schema);
                let file = segment::encode_all(&pk_schema, &batches).map_err(failed)?;
                let path = delta_file(coll, id);
                storage.put(&path, file).await.map_err(failed)?;
                let (start_ts, end_ts) = b.delete_range();
                let record = DeltaRecord {
                    id,
                    collection_id: coll,
                    vchannel: self.a.vchannel.clone(),
                    path,
                    num_rows: b.deleted as i64,
                    start_ts,
                    end_ts,
                    dropped_at_ms: 0,
                };
                ops.push(TxnOp::put(
                    self.shared.keys.delta(coll, id),
                    record.encode_to_vec(),
                    None,
                ));
            }
        }
        let cp = ChannelCheckpoint {
            vchannel: self.a.vchannel.clone(),
            sequence,
            timestamp: b.max_ts.max(self.checkpoint_ts),
        };
        ops.push(TxnOp::put(
            self.shared.keys.checkpoint(&self.a.vchannel),
            cp.encode_to_vec(),
            None,
        ));
        // A failure reported earlier is over once this registers.
        ops.push(TxnOp::delete(
            self.shared.keys.sync_failure(&self.a.vchannel),
            None,
        ));
        window.check().map_err(failed)?;
        self.register(ops).await?;
        Ok((b.partitions.len(), rows))
    }

    /// The registering txn: applies `ops` only while the assignment is unchanged and
    /// this session's key exists.
    async fn register(&self, ops: Vec<TxnOp>) -> Result<(), SyncError> {
        let when = vec![
            Compare::mod_revision(
                self.shared.keys.watch(&self.a.vchannel),
                CompareOp::Equal,
                self.a.revision,
            ),
            self.owner.alive(),
        ];
        let txn = Txn::new().when(when).and_then(ops);
        let resp = self
            .shared
            .ctx
            .etcd
            .call(|mut c| {
                let txn = txn.clone();
                async move { c.txn(txn).await }
            })
            .await
            .map_err(failed)?;
        if resp.succeeded() {
            Ok(())
        } else {
            Err(SyncError::Lost)
        }
    }

    async fn alloc_ids(&self, count: u32) -> Result<i64, SyncError> {
        self.shared
            .rootcoord
            .alloc_ids(count)
            .await
            .map_err(|e| failed(format!("cannot allocate segment IDs: {e}")))
    }
}
