//! Compaction: the plans the active datacoord assigned to this datanode
//! (`roles/datacoord/compaction.rs`). A plan's segments (one virtual channel and
//! partition) are read, merged, and written as one new segment without the rows no
//! reader can see: rows hidden by a delete in the channel's delta records, older
//! versions of a key whose newer version is among the merged rows, rows expired under
//! the collection's TTL. Then one etcd txn registers the new segment (Flushed, naming the
//! segments it replaces), marks the old ones Dropped and the plan Completed, only while
//! the plan is still this datanode's (its record unchanged since it was assigned), this
//! session lives, and every old segment's record is the one read. So the rows of the old
//! segments are replaced exactly once or not at all: a datanode that dies or loses the
//! plan before the txn registers nothing (its file is garbage the datacoord collects),
//! and the plan is assigned again.
//!
//! Why dropping those rows changes no answer: every delta record stays registered (a
//! querynode still hides, by key, whatever it would have hidden), a superseded version
//! stays hidden by the newer one that is kept, and an expired row stays expired.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use etcd_client::{Compare, CompareOp, Txn, TxnOp};
use prost::Message;

use super::Shared;
use crate::meta::data::insert_file;
use crate::meta::now_ms;
use crate::proto::datacoord::{
    CompactedSpan, CompactionKind, CompactionPlan, CompactionPlanState, DeltaRecord, SegmentRecord,
    SegmentState,
};
use crate::proto::schema::CollectionSchema;
use crate::roles::worker::{to_the_end, Owner, Task};
use crate::schema::{self, properties, Pks};
use crate::storage::segment::{self, SegmentBatch};
use crate::storage::WriteWindow;

/// How often the datanode looks for plans assigned to it.
const LOOK_EVERY: Duration = Duration::from_millis(200);
/// Attempts a plan gets for errors that may pass (storage, etcd, the rootcoord) before
/// it fails with the last one.
const TRANSIENT_ATTEMPTS: u32 = 10;

/// The largest delete timestamp per key.
#[derive(Debug, Default)]
pub struct DeleteMarks {
    ints: HashMap<i64, u64>,
    strs: HashMap<String, u64>,
}

impl DeleteMarks {
    /// Records deletes of `pks` at `timestamps`.
    pub fn add(&mut self, pks: &Pks, timestamps: &[u64]) {
        for (i, ts) in timestamps.iter().enumerate().take(pks.len()) {
            match pks {
                Pks::Int(v) => {
                    let e = self.ints.entry(v[i]).or_insert(*ts);
                    *e = (*e).max(*ts);
                }
                Pks::Str(v) => {
                    let e = self.strs.entry(v[i].clone()).or_insert(*ts);
                    *e = (*e).max(*ts);
                }
            }
        }
    }

    fn of(&self, pks: &Pks, i: usize) -> Option<u64> {
        match pks {
            Pks::Int(v) => self.ints.get(&v[i]).copied(),
            Pks::Str(v) => self.strs.get(&v[i]).copied(),
        }
    }
}

/// The rows of a merged batch a compaction keeps, in order: the newest version (timestamp,
/// then row ID) of each key among them, unless a delete after it hides it (a delete at
/// `t` hides rows written before `t`) or it was written before `expire_before`.
pub fn rows_to_keep(
    pks: &Pks,
    timestamps: &[u64],
    row_ids: &[i64],
    deletes: &DeleteMarks,
    expire_before: u64,
) -> Vec<usize> {
    let n = pks.len().min(timestamps.len()).min(row_ids.len());
    let version = |i: usize| (timestamps[i], row_ids[i]);
    let mut newest_int: HashMap<i64, usize> = HashMap::new();
    let mut newest_str: HashMap<&str, usize> = HashMap::new();
    for i in 0..n {
        let slot = match pks {
            Pks::Int(v) => newest_int.entry(v[i]).or_insert(i),
            Pks::Str(v) => newest_str.entry(v[i].as_str()).or_insert(i),
        };
        if version(i) > version(*slot) {
            *slot = i;
        }
    }
    (0..n)
        .filter(|&i| {
            let newest = match pks {
                Pks::Int(v) => newest_int[&v[i]],
                Pks::Str(v) => newest_str[v[i].as_str()],
            };
            newest == i
                && deletes.of(pks, i).is_none_or(|t| t <= timestamps[i])
                && timestamps[i] >= expire_before
        })
        .collect()
}

/// Runs every plan assigned to this session, one at a time (a plan holds its segments in
/// memory), each bound to the assignment (the plan record's revision) it started from.
pub(crate) async fn run(shared: Arc<Shared>, owner: Arc<Owner>) {
    let one_at_a_time = Arc::new(tokio::sync::Semaphore::new(1));
    let mut running: HashMap<(i64, i64), Task> = HashMap::new();
    loop {
        let wanted: Vec<(CompactionPlan, i64)> = shared
            .data
            .read()
            .expect("data meta lock")
            .compactions()
            .filter(|p| {
                p.plan.node_id == owner.node_id
                    && p.plan.state() == CompactionPlanState::CompactionExecuting
            })
            .map(|p| (p.plan.clone(), p.revision))
            .collect();
        running.retain(|(id, rev), _| wanted.iter().any(|(p, r)| p.id == *id && r == rev));
        for (plan, rev) in wanted {
            if running.contains_key(&(plan.id, rev)) {
                continue;
            }
            let id = plan.id;
            let task = tokio::spawn(execute(
                shared.clone(),
                owner.clone(),
                plan,
                rev,
                one_at_a_time.clone(),
            ));
            running.insert((id, rev), Task(task));
        }
        tokio::time::sleep(LOOK_EVERY).await;
    }
}

/// Why a plan could not be finished now.
#[derive(Debug, thiserror::Error)]
enum CompactError {
    /// The plan cannot be done as planned: it fails with this reason.
    #[error("{0}")]
    Bad(String),
    /// Something that may work on the next attempt.
    #[error("{0}")]
    Transient(String),
}

use CompactError::{Bad, Transient};

/// What a plan produced: the new segments' records (none when no row is left; several
/// for a clustering compaction), and the source records with the revisions they were
/// read at.
struct Output {
    segments: Vec<SegmentRecord>,
    sources: Vec<(SegmentRecord, i64)>,
}

/// One plan to its end (Completed, Failed, or no longer this datanode's).
async fn execute(
    shared: Arc<Shared>,
    owner: Arc<Owner>,
    plan: CompactionPlan,
    revision: i64,
    one_at_a_time: Arc<tokio::sync::Semaphore>,
) {
    let Ok(_turn) = one_at_a_time.acquire().await else {
        return;
    };
    log::info!(plan = plan.id, collection = plan.collection_id, channel = plan.vchannel.as_str(),
        segments:? = plan.segment_ids, attempt = plan.attempts; "datanode starts compaction");
    let started = std::time::Instant::now();
    let mut backoff = Duration::from_millis(200);
    let mut transient = 0;
    let still_mine = || {
        shared
            .data
            .read()
            .expect("data meta lock")
            .compaction(plan.id)
            .is_some_and(|p| p.revision == revision)
    };
    // Registration changes the plan's record, which makes this datanode drop this task: it
    // runs to its end (and logs) on a task of its own.
    let register = |outcome: Result<Output, String>| {
        let (shared, owner, plan) = (shared.clone(), owner.clone(), plan.clone());
        to_the_end(async move {
            let r = finish(&shared, &owner, &plan, revision, outcome).await;
            if matches!(r, Ok(Finished::Done)) {
                log::info!(plan = plan.id, took:? = started.elapsed(); "compaction finished");
            }
            r
        })
    };
    loop {
        let window = WriteWindow::open(shared.ctx.config.segment.gc_missing_tolerance);
        let outcome = match prepare(&shared, &owner, &plan).await {
            Ok(out) => {
                if let Some(hold) = crate::crash::compaction_hold() {
                    log::warn!(plan = plan.id, hold:? = hold;
                        "compaction output written, holding its registration (test fault)");
                    tokio::time::sleep(hold).await;
                }
                match window.check() {
                    Ok(()) => register(Ok(out)).await,
                    Err(e) => Err(e),
                }
            }
            Err(Bad(reason)) => register(Err(reason)).await,
            Err(Transient(e)) => {
                transient += 1;
                if transient >= TRANSIENT_ATTEMPTS {
                    let why = format!("gave up after {transient} attempts: {e}");
                    register(Err(why)).await
                } else {
                    Err(e)
                }
            }
        };
        match outcome {
            Ok(Finished::Done) => return,
            Ok(Finished::SourcesChanged) if still_mine() => {
                let why = "its segments changed while it ran (dropped, or their collection or partition was)";
                if let Err(e) = register(Err(why.into())).await {
                    log::warn!(plan = plan.id, error = e.as_str(); "cannot record the compaction's failure");
                }
                return;
            }
            Ok(Finished::SourcesChanged | Finished::NotMine) => {
                log::warn!(plan = plan.id; "compaction plan is no longer this datanode's: nothing registered");
                return;
            }
            Err(e) => {
                log::warn!(plan = plan.id, error = e.as_str(); "compaction attempt failed, retrying");
                if !still_mine() {
                    return;
                }
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(5));
            }
        }
    }
}

/// How a registration ended.
enum Finished {
    /// The txn happened.
    Done,
    /// The plan's record or this session changed: nothing registered.
    NotMine,
    /// A source segment's record changed: nothing registered.
    SourcesChanged,
}

/// Registers the outcome: the new segment, the old ones Dropped and the plan Completed;
/// or the plan Failed with the reason. Only while the plan is the one assigned, this
/// session lives, and (on success) the old segments' records are the ones read.
async fn finish(
    shared: &Shared,
    owner: &Owner,
    plan: &CompactionPlan,
    revision: i64,
    outcome: Result<Output, String>,
) -> Result<Finished, String> {
    let key = shared.keys.compaction(plan.id);
    let mut done = plan.clone();
    let now = now_ms();
    done.finished_ms = now;
    let mut ops = Vec::new();
    let mut when = vec![
        Compare::mod_revision(key.clone(), CompareOp::Equal, revision),
        owner.alive(),
    ];
    let sources = match outcome {
        Ok(out) => {
            done.state = CompactionPlanState::CompactionCompleted as i32;
            done.result_segment_id = out.segments.first().map_or(0, |s| s.id);
            done.result_segment_ids = out.segments.iter().map(|s| s.id).collect();
            done.result_rows = out.segments.iter().map(|s| s.num_rows).sum();
            for s in out.segments {
                ops.push(TxnOp::put(
                    shared.keys.segment(s.collection_id, s.partition_id, s.id),
                    s.encode_to_vec(),
                    None,
                ));
            }
            for (r, rev) in &out.sources {
                let k = shared.keys.segment(r.collection_id, r.partition_id, r.id);
                when.push(Compare::mod_revision(k.clone(), CompareOp::Equal, *rev));
                let mut r = r.clone();
                r.set_state(SegmentState::Dropped);
                r.dropped_at_ms = now;
                ops.push(TxnOp::put(k, r.encode_to_vec(), None));
            }
            out.sources.len()
        }
        Err(reason) => {
            log::warn!(plan = plan.id, reason = reason.as_str(); "compaction failed");
            done.state = CompactionPlanState::CompactionFailed as i32;
            done.reason = reason;
            0
        }
    };
    ops.push(TxnOp::put(key, done.encode_to_vec(), None));
    let resp = shared
        .ctx
        .etcd
        .call(|mut c| {
            let txn = Txn::new().when(when.clone()).and_then(ops.clone());
            async move { c.txn(txn).await }
        })
        .await
        .map_err(|e| e.to_string())?;
    Ok(if resp.succeeded() {
        Finished::Done
    } else if sources > 0 {
        Finished::SourcesChanged
    } else {
        Finished::NotMine
    })
}

/// Reads the plan's segments and its channel's deltas, writes the compacted segment.
async fn prepare(
    shared: &Shared,
    owner: &Owner,
    plan: &CompactionPlan,
) -> Result<Output, CompactError> {
    let (schema, expire_before) = shared
        .catalog
        .read()
        .expect("catalog lock")
        .collection_by_id(plan.collection_id)
        .and_then(|c| {
            let cut =
                properties::expire_before(properties::ttl(&c.properties), now_ms().max(0) as u64);
            Some((c.schema.clone()?, cut))
        })
        .ok_or_else(|| {
            Transient(format!(
                "collection {} is not in the catalog",
                plan.collection_id
            ))
        })?;
    let (sources, deltas) = {
        let meta = shared.data.read().expect("data meta lock");
        let mut sources = Vec::new();
        for id in &plan.segment_ids {
            match meta.segment(*id) {
                Some(s)
                    if s.record.state() == SegmentState::Flushed
                        && s.record.compaction_plan == plan.id =>
                {
                    sources.push((s.record.clone(), s.revision))
                }
                _ => return Err(Bad(format!("segment {id} is no longer this plan's"))),
            }
        }
        let deltas: Vec<DeltaRecord> = meta
            .deltas()
            .filter(|d| {
                d.collection_id == plan.collection_id
                    && d.vchannel == plan.vchannel
                    && d.dropped_at_ms == 0
            })
            .cloned()
            .collect();
        (sources, deltas)
    };
    // The deletes of the channel.
    let mut marks = DeleteMarks::default();
    let pk_schema = segment::delta_schema(&schema);
    for d in &deltas {
        let b = read(shared, &pk_schema, &d.path).await?;
        if let Some(pks) = schema::primary_keys(&pk_schema, &b.fields) {
            marks.add(&pks, &b.timestamps);
        }
    }
    // The rows of every source, in order: a merge reads their keys alone here (row ID,
    // timestamp, primary key) and each file's rows again when it writes the merged file
    // (`write_merged`), a clustering compaction every column (it sorts them). Each
    // source's (ID, first row, end row) and each file's (path, first row, end row) in them.
    // The columns are reserved for every source's rows once the first file is read: a
    // column grown by doubling is copied as it grows (512 MiB of vectors at 1,000,000
    // rows of dim 128).
    let clustering = plan.kind() == CompactionKind::CompactionClustering;
    let read_schema = if clustering {
        schema.clone()
    } else {
        segment::delta_schema(&schema)
    };
    let total: usize = sources
        .iter()
        .map(|(r, _)| r.num_rows.max(0) as usize)
        .sum();
    let mut all = None;
    let mut bounds = Vec::with_capacity(sources.len());
    let mut files = Vec::new();
    let rows = |all: &Option<SegmentBatch>| all.as_ref().map_or(0, SegmentBatch::rows);
    for (r, _) in &sources {
        let first = rows(&all);
        for path in &r.insert_files {
            let b = read(shared, &read_schema, path).await?;
            let at = rows(&all);
            files.push((path.clone(), at, at + b.rows()));
            SegmentBatch::append(&mut all, b, total);
        }
        bounds.push((r.id, first, rows(&all)));
    }
    let all = all.unwrap_or_default();
    let pks = schema::primary_keys(&read_schema, &all.fields)
        .ok_or_else(|| Bad("the segments hold no primary key column".into()))?;
    let keep = rows_to_keep(&pks, &all.timestamps, &all.row_ids, &marks, expire_before);
    let applied_delta_id = deltas
        .iter()
        .map(|d| d.id)
        .chain(sources.iter().map(|(r, _)| r.applied_delta_id))
        .max()
        .unwrap_or(0);
    log::info!(plan = plan.id, rows = all.rows(), kept = keep.len(), deltas = deltas.len();
        "compaction merged its segments");
    // The sources' bytes per row: how clustering cuts its segments, and each file's
    // size hint.
    let source_bytes: i64 = sources.iter().map(|(r, _)| r.size_bytes).sum();
    let per_row = (source_bytes.max(1) as f64 / all.rows().max(1) as f64).max(1.0);
    // Clustering: the rows in clustering-key order, cut into segments of at most
    // `maxSize x CLUSTERED_SEGMENT_RATIO` (each then holds one range of keys).
    let parts: Vec<Vec<usize>> = if clustering {
        let mut keep = keep;
        if let Some(col) = schema::clustering_key_field(&schema).and_then(|f| {
            all.fields
                .iter()
                .find(|c| c.field_id == f.field_id || c.field_name == f.name)
        }) {
            let keys = sort_keys(col);
            keep.sort_by(|a, b| keys[*a].cmp(&keys[*b]).then(a.cmp(b)));
        }
        let budget = shared.ctx.config.segment.max_size_mb as f64
            * 1024.0
            * 1024.0
            * CLUSTERED_SEGMENT_RATIO;
        let rows_per = ((budget / per_row) as usize).max(1);
        keep.chunks(rows_per).map(<[usize]>::to_vec).collect()
    } else if keep.is_empty() {
        Vec::new()
    } else {
        vec![keep]
    };
    // A merge keeps its rows in order: the sources it kept whole, and where.
    let spans = match parts.as_slice() {
        [one] if !clustering => whole_sources(&bounds, one),
        _ => Vec::new(),
    };
    if parts.is_empty() {
        return Ok(Output {
            segments: Vec::new(),
            sources,
        });
    }
    let first = shared
        .rootcoord
        .alloc_ids(parts.len() as u32)
        .await
        .map_err(|e| Transient(format!("cannot allocate segment IDs: {e}")))?;
    let positions: Vec<&SegmentRecord> = sources
        .iter()
        .map(|(r, _)| r)
        .filter(|r| r.end_sequence > 0)
        .collect();
    // Each new segment's file is written from the merged rows a row group at a time
    // (`segment::encode_rows`): the rows are never copied whole a second time.
    let all = Arc::new(all);
    let mut segments = Vec::new();
    for (n, part) in parts.into_iter().enumerate() {
        let id = first + n as i64;
        let (start_ts, end_ts) = (
            part.iter().map(|i| all.timestamps[*i]).min().unwrap_or(0),
            part.iter().map(|i| all.timestamps[*i]).max().unwrap_or(0),
        );
        let rows = part.len();
        let path = insert_file(plan.collection_id, plan.partition_id, id);
        let size = if clustering {
            let file = {
                let (schema, all) = (schema.clone(), all.clone());
                let hint = (per_row * rows as f64) as usize;
                tokio::task::spawn_blocking(move || {
                    segment::encode_rows(&schema, &all, &part, hint)
                })
                .await
                .map_err(internal)?
                .map_err(|e| Bad(e.to_string()))?
            };
            let size = file.len() as i64;
            shared
                .storage
                .put(&path, file)
                .await
                .map_err(|e| Transient(e.to_string()))?;
            size
        } else {
            write_merged(shared, &schema, &files, &part, &path).await? as i64
        };
        segments.push(SegmentRecord {
            id,
            collection_id: plan.collection_id,
            partition_id: plan.partition_id,
            vchannel: plan.vchannel.clone(),
            state: SegmentState::Flushed as i32,
            num_rows: rows as i64,
            insert_files: vec![path],
            size_bytes: size,
            start_sequence: positions
                .iter()
                .map(|r| r.start_sequence)
                .min()
                .unwrap_or(0),
            end_sequence: positions.iter().map(|r| r.end_sequence).max().unwrap_or(0),
            start_ts,
            end_ts,
            node_id: owner.node_id,
            compacted_from: plan.segment_ids.clone(),
            compacted_ms: now_ms(),
            applied_delta_id,
            compacted_spans: spans.clone(),
            ..Default::default()
        });
    }
    Ok(Output { segments, sources })
}

/// Rows a merge decodes at a time from a source file.
const DECODE_ROWS: usize = 8192;

fn internal(e: tokio::task::JoinError) -> CompactError {
    Bad(format!("the compaction stopped on an internal error: {e}"))
}

/// Writes the merged segment at `path`: the rows `keep` (ascending, numbered across
/// `files`, each file's (path, first row, end row)) of each file in turn, read again
/// [`DECODE_ROWS`] at a time and uploaded a part at a time as its row groups fill. So a
/// merge holds one source file, one row group and one part, not the merged rows (1,360
/// MiB of the datanode's at 738,000 rows of dim 128 when it held them). Returns the
/// file's size. Nothing is at `path` unless this returns `Ok`.
async fn write_merged(
    shared: &Shared,
    schema: &CollectionSchema,
    files: &[(String, usize, usize)],
    keep: &[usize],
    path: &str,
) -> Result<u64, CompactError> {
    let mut upload = shared.storage.upload(path);
    match write_pieces(shared, schema, files, keep, &mut upload).await {
        Ok(()) => upload.finish().await.map_err(|e| Transient(e.to_string())),
        Err(e) => {
            upload.abort().await;
            Err(e)
        }
    }
}

async fn write_pieces(
    shared: &Shared,
    schema: &CollectionSchema,
    files: &[(String, usize, usize)],
    keep: &[usize],
    upload: &mut crate::storage::Upload<'_>,
) -> Result<(), CompactError> {
    let mut writer = segment::FileWriter::new(schema).map_err(|e| Bad(e.to_string()))?;
    for (path, first, end) in files {
        let at = keep.partition_point(|&i| i < *first);
        let upto = keep.partition_point(|&i| i < *end);
        if at == upto {
            continue;
        }
        let rows: Vec<usize> = keep[at..upto].iter().map(|i| i - first).collect();
        let expected = end - first;
        let bytes = shared
            .storage
            .get(path)
            .await
            .map_err(|e| Transient(format!("{path}: {e}")))?;
        // The file is decoded and encoded on a blocking thread; its pieces come back
        // through the channel (one at a time: the encoder waits for the upload).
        let (tx, mut rx) = tokio::sync::mpsc::channel::<Bytes>(1);
        // An empty piece only asks whether the upload still takes them.
        let encode = tokio::task::spawn_blocking(move || {
            writer.write_file_rows(bytes, &rows, expected, DECODE_ROWS, |piece| {
                if piece.is_empty() {
                    !tx.is_closed()
                } else {
                    tx.blocking_send(piece).is_ok()
                }
            })?;
            Ok::<_, segment::SegmentError>(writer)
        });
        let mut failed = None;
        while let Some(piece) = rx.recv().await {
            if let Err(e) = upload.write(piece).await {
                failed = Some(e);
                break;
            }
        }
        // The encoder stops at its next batch once nobody takes its pieces; waited for,
        // so that its file and batch are gone before the merge is tried again.
        drop(rx);
        let encoded = encode.await.map_err(internal)?;
        if let Some(e) = failed {
            return Err(Transient(e.to_string()));
        }
        writer = encoded.map_err(|e| Bad(format!("{path}: {e}")))?;
    }
    // The last row group's pages and the footer are encoded off the async threads too.
    let tail = tokio::task::spawn_blocking(move || writer.finish())
        .await
        .map_err(internal)?
        .map_err(|e| Bad(e.to_string()))?;
    upload
        .write(tail)
        .await
        .map_err(|e| Transient(e.to_string()))
}

/// The sources of a merge whose every row `keep` (rows of the merged batch, ascending)
/// keeps, given each source's (ID, first row, end row) in that batch: where each one's
/// rows are in the compacted segment.
pub fn whole_sources(bounds: &[(i64, usize, usize)], keep: &[usize]) -> Vec<CompactedSpan> {
    bounds
        .iter()
        .filter_map(|&(segment_id, first, end)| {
            let at = keep.partition_point(|&i| i < first);
            let upto = keep.partition_point(|&i| i < end);
            (end > first && upto - at == end - first).then(|| CompactedSpan {
                segment_id,
                first_row: at as i64,
                num_rows: (end - first) as i64,
            })
        })
        .collect()
}

/// The share of `dataCoord.segment.maxSize` a clustering compaction fills each segment
/// to (Milvus's `clustering.preferSegmentSizeRatio`).
const CLUSTERED_SEGMENT_RATIO: f64 = 0.8;

/// A clustering key value, ordered: nulls first, then numbers or text.
#[derive(Debug, Clone)]
enum SortKey {
    Null,
    Num(f64),
    Text(String),
}

impl PartialEq for SortKey {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other).is_eq()
    }
}

impl Eq for SortKey {}

impl PartialOrd for SortKey {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for SortKey {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        use SortKey::*;
        match (self, other) {
            (Num(a), Num(b)) => a.total_cmp(b),
            (Text(a), Text(b)) => a.cmp(b),
            (Null, Null) => std::cmp::Ordering::Equal,
            (Null, _) => std::cmp::Ordering::Less,
            (_, Null) => std::cmp::Ordering::Greater,
            (Num(_), Text(_)) => std::cmp::Ordering::Less,
            (Text(_), Num(_)) => std::cmp::Ordering::Greater,
        }
    }
}

/// The sort key of every row of a scalar column (a vector column sorts as all equal).
fn sort_keys(col: &crate::proto::schema::FieldData) -> Vec<SortKey> {
    use crate::proto::schema::{field_data, scalar_field};
    let n = schema::field_len(col);
    let keys: Vec<SortKey> = match &col.field {
        Some(field_data::Field::Scalars(sc)) => match &sc.data {
            Some(scalar_field::Data::LongData(d)) => {
                d.data.iter().map(|v| SortKey::Num(*v as f64)).collect()
            }
            Some(scalar_field::Data::IntData(d)) => {
                d.data.iter().map(|v| SortKey::Num(*v as f64)).collect()
            }
            Some(scalar_field::Data::FloatData(d)) => {
                d.data.iter().map(|v| SortKey::Num(*v as f64)).collect()
            }
            Some(scalar_field::Data::DoubleData(d)) => {
                d.data.iter().map(|v| SortKey::Num(*v)).collect()
            }
            Some(scalar_field::Data::BoolData(d)) => d
                .data
                .iter()
                .map(|v| SortKey::Num(f64::from(u8::from(*v))))
                .collect(),
            Some(scalar_field::Data::StringData(d)) => {
                d.data.iter().map(|v| SortKey::Text(v.clone())).collect()
            }
            _ => Vec::new(),
        },
        _ => Vec::new(),
    };
    if keys.len() != n {
        return vec![SortKey::Null; n];
    }
    keys.into_iter()
        .enumerate()
        .map(|(i, k)| {
            if col.valid_data.get(i) == Some(&false) {
                SortKey::Null
            } else {
                k
            }
        })
        .collect()
}

/// Reads and decodes one file of `schema`'s columns.
async fn read(
    shared: &Shared,
    schema: &CollectionSchema,
    path: &str,
) -> Result<SegmentBatch, CompactError> {
    let bytes = shared
        .storage
        .get(path)
        .await
        .map_err(|e| Transient(format!("{path}: {e}")))?;
    let schema = schema.clone();
    let path = path.to_string();
    tokio::task::spawn_blocking(move || segment::decode(&schema, bytes))
        .await
        .map_err(|e| Bad(format!("the compaction stopped on an internal error: {e}")))?
        .map_err(|e| Bad(format!("{path}: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_newest_live_unexpired_version_of_each_key() {
        // Keys 1..=5; key 2 written twice (the later row wins); key 3 deleted after its
        // row; key 4 deleted before its row (a re-insert: kept); key 5 expired.
        let pks = Pks::Int(vec![1, 2, 3, 2, 4, 5]);
        let ts = vec![100, 100, 100, 200, 300, 50];
        let ids = vec![1, 2, 3, 4, 5, 6];
        let mut marks = DeleteMarks::default();
        marks.add(&Pks::Int(vec![3, 4]), &[150, 250]);
        assert_eq!(rows_to_keep(&pks, &ts, &ids, &marks, 60), vec![0, 3, 4]);
        // An upsert's delete shares its timestamp with the new row: the row stays.
        let mut marks = DeleteMarks::default();
        marks.add(&Pks::Int(vec![1]), &[100]);
        assert_eq!(
            rows_to_keep(&pks, &ts, &ids, &marks, 0),
            vec![0, 2, 3, 4, 5]
        );
        // VarChar keys; the same timestamp twice: the larger row ID is newer.
        let pks = Pks::Str(vec!["a".into(), "a".into(), "b".into()]);
        let none = DeleteMarks::default();
        assert_eq!(
            rows_to_keep(&pks, &[7, 7, 7], &[9, 8, 1], &none, 0),
            vec![0, 2]
        );
    }

    #[test]
    fn sources_kept_whole_are_found_with_their_place_in_the_merged_segment() {
        // Sources 10 (rows 0..3), 11 (3..7, row 4 dropped), 12 (7..9), 13 (empty).
        let bounds = [(10, 0, 3), (11, 3, 7), (12, 7, 9), (13, 9, 9)];
        let span = |segment_id, first_row, num_rows| CompactedSpan {
            segment_id,
            first_row,
            num_rows,
        };
        assert_eq!(
            whole_sources(&bounds, &[0, 1, 2, 3, 5, 6, 7, 8]),
            vec![span(10, 0, 3), span(12, 6, 2)]
        );
        // Nothing dropped: every source, back to back.
        let all: Vec<usize> = (0..9).collect();
        assert_eq!(
            whole_sources(&bounds, &all),
            vec![span(10, 0, 3), span(11, 3, 4), span(12, 7, 2)]
        );
        assert!(whole_sources(&bounds, &[]).is_empty());
    }
}
