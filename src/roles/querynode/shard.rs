//! One shard a querynode serves (a virtual channel of one replica of a loaded
//! collection): the channel's flushed segments, loaded from object storage with their
//! vector indexes, and its growing rows, consumed from the log after the channel's
//! checkpoint.
//!
//! Handoff without a gap and without counting a row twice: the datanode registers new
//! segments together with the channel checkpoint in one etcd txn, so at any revision the
//! registered segments hold exactly the log messages up to the checkpoint. When the
//! checkpoint moves to C, the shard loads the new segments first, then (under one lock)
//! adds them and drops the growing rows of messages up to C; the consumer skips messages
//! up to C from then on. Deletes are kept by key with their timestamps, so applying one
//! from the log and again from a delta file changes nothing; a key written again hides
//! its older rows the same way (only its newest version is served).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use prost::Message;
use tokio::sync::watch;

use super::chunk::{Chunk, Deletes, News, PkColumn};
use super::Shared;
use crate::index::rtree::RTreeIndex;
use crate::index::scalar::ScalarIndex;
use crate::index::{params, VectorIndex};
use crate::meta::data::{sole_output, sources_may_stand_in};
use crate::meta::now_ms;
use crate::proto::common::IndexState;
use crate::proto::datacoord::{DeltaRecord, SegmentRecord, SegmentState};
use crate::proto::schema::CollectionSchema;
use crate::proto::wal::{wal_message, WalMessage};
use crate::storage::segment::{self, SegmentBatch};
use crate::wal::{self, Wal};

/// How many rows of a new segment [`Deletes::news`] looks at per read lock: a piece
/// takes a few milliseconds, so a log message waiting for the write lock (and the
/// searches behind it) waits no longer.
const NEWS_PIECE: usize = 65_536;

/// A sealed segment and its vector indexes (by field ID), once built (its scalar indexes
/// are attached to its chunk, where filters read them).
pub struct Sealed {
    /// Its rows.
    pub chunk: Chunk,
    /// Its vector indexes.
    pub indexes: HashMap<i64, Arc<VectorIndex>>,
    /// The builds loaded (or found not to fit, and so left out).
    builds: HashSet<i64>,
}

impl Sealed {
    /// Adds a loaded build of `field` (a scalar one only when it fits the chunk's column;
    /// a check O(rows), which callers holding the shard's lock make first with
    /// [`Loaded::fits`]).
    fn add(&mut self, field: i64, build: i64, index: Loaded) {
        self.builds.insert(build);
        match index {
            Loaded::Vector(mut v) => {
                if v.needs_vectors() {
                    // A FLAT index takes the column's vectors (checked to fit by
                    // `Loaded::fits`; checked again, as the column is moved, not copied).
                    let fit = self
                        .chunk
                        .vectors(field)
                        .is_some_and(|(data, words)| v.fits_column(data.len(), words));
                    let taken = if fit {
                        self.chunk.take_vectors(field)
                    } else {
                        None
                    };
                    if let Some(Err(e)) = taken.map(|t| v.adopt_vectors(t)) {
                        // Unreachable after the check above; the segment is then searched
                        // exactly without the index (its vectors are gone, so say so).
                        log::error!(segment = self.chunk.id, field = field, build = build, error:% = e;
                            "FLAT index could not take the segment's vectors");
                        return;
                    }
                    if v.needs_vectors() {
                        log::warn!(segment = self.chunk.id, field = field, build = build;
                            "FLAT index does not fit the segment's vectors: searched without it");
                        return;
                    }
                }
                self.indexes.insert(field, Arc::from(v));
                self.share_vectors();
            }
            Loaded::Scalar(keys, x) => self.chunk.attach_scalar_index(field, keys, x),
            Loaded::RTree(x) => self.chunk.attach_rtree(field, x),
            Loaded::Unfit => {}
        }
    }

    /// Keeps one copy of the vectors an index also holds: the column's is freed and
    /// outputs read them from the index.
    fn share_vectors(&mut self) {
        for (field, index) in &self.indexes {
            if index.keeps_raw_vectors() && index.rows() == self.chunk.rows {
                self.chunk.drop_vectors(*field);
            }
        }
    }
}

/// What a shard holds.
#[derive(Default)]
pub struct ShardData {
    /// Flushed segments by ID.
    pub sealed: BTreeMap<i64, Sealed>,
    /// Growing rows, one chunk per insert message, in log order.
    pub growing: Vec<Chunk>,
    /// Deleted keys.
    pub deletes: Deletes,
    /// The log sequence the sealed segments cover.
    pub checkpoint: u64,
    deltas: HashSet<i64>,
}

impl ShardData {
    /// Scalar indexes attached to sealed segments' columns.
    pub fn scalar_indexes(&self) -> usize {
        self.sealed.values().map(|s| s.chunk.scalar_indexes()).sum()
    }

    /// Sealed segments searched through an index (not exactly).
    pub fn indexed_segments(&self) -> usize {
        self.sealed
            .values()
            .filter(|s| !s.indexes.is_empty())
            .count()
    }
}

/// A served shard.
pub struct Shard {
    /// Its collection.
    pub collection_id: i64,
    /// Its replica.
    pub replica: i32,
    /// Its virtual channel.
    pub vchannel: String,
    /// The collection's schema.
    pub schema: CollectionSchema,
    /// Its rows.
    pub data: RwLock<ShardData>,
    /// The log sequence of the last message of this shard applied (sequences are those of
    /// the physical channel; a reader of an older build's bare-subject messages also
    /// counts the other shards' messages it skips).
    consumed: watch::Sender<u64>,
    /// Unix ms at which the consumer last found nothing more in the log.
    caught_up_ms: AtomicI64,
    /// Loaded and caught up with the log once.
    pub ready: AtomicBool,
}

/// Why a read could not be served fresh enough.
#[derive(Debug, thiserror::Error)]
pub enum FreshnessError {
    /// The log could not be asked how far it goes.
    #[error("cannot read the log position of {0}: {1}")]
    Log(String, String),
    /// The shard did not catch up in time.
    #[error("shard {vchannel} is behind the log: applied up to {applied}, needs {needed} (waited {waited_ms} ms)")]
    Behind {
        vchannel: String,
        applied: u64,
        needed: u64,
        waited_ms: u64,
    },
}

impl Shard {
    /// A shard with nothing loaded yet.
    pub fn new(
        collection_id: i64,
        replica: i32,
        vchannel: String,
        schema: CollectionSchema,
    ) -> Shard {
        Shard {
            collection_id,
            replica,
            vchannel,
            schema,
            data: RwLock::new(ShardData::default()),
            consumed: watch::Sender::new(0),
            caught_up_ms: AtomicI64::new(0),
            ready: AtomicBool::new(false),
        }
    }

    /// Waits until the shard holds every write acknowledged before the call (`strong`),
    /// or every write acknowledged more than `staleness` ago.
    pub async fn wait_fresh(
        &self,
        wal: &Wal,
        strong: bool,
        staleness: Duration,
        timeout: Duration,
    ) -> Result<(), FreshnessError> {
        let asked = now_ms();
        if !strong
            && self.caught_up_ms.load(Ordering::Acquire) >= asked - staleness.as_millis() as i64
        {
            return Ok(());
        }
        let needed = wal
            .last_sequence_of(&self.vchannel)
            .await
            .map_err(|e| FreshnessError::Log(self.vchannel.clone(), e.to_string()))?;
        let mut rx = self.consumed.subscribe();
        let started = tokio::time::Instant::now();
        let ok = tokio::time::timeout(timeout, rx.wait_for(|c| *c >= needed)).await;
        if matches!(ok, Ok(Ok(_))) {
            return Ok(());
        }
        Err(FreshnessError::Behind {
            vchannel: self.vchannel.clone(),
            applied: *self.consumed.borrow(),
            needed,
            waited_ms: started.elapsed().as_millis() as u64,
        })
    }

    /// Rows held (sealed, growing).
    pub fn rows(&self) -> (usize, usize) {
        let d = self.data.read().expect("shard lock");
        (
            d.sealed.values().map(|s| s.chunk.rows).sum(),
            d.growing.iter().map(|c| c.rows).sum(),
        )
    }
}

/// What the data coordinator's records say about a channel now.
struct ChannelView {
    checkpoint: u64,
    segments: Vec<SegmentRecord>,
    dropped: HashSet<i64>,
    deltas: Vec<DeltaRecord>,
}

fn view(shared: &Shared, vchannel: &str) -> ChannelView {
    let meta = shared.data_meta.read().expect("data meta lock");
    let mut v = ChannelView {
        checkpoint: meta.checkpoint(vchannel).map_or(0, |c| c.sequence),
        segments: Vec::new(),
        dropped: HashSet::new(),
        deltas: Vec::new(),
    };
    for s in meta.segments() {
        let r = &s.record;
        if r.vchannel != vchannel {
            continue;
        }
        match r.state() {
            SegmentState::Flushed => v.segments.push(r.clone()),
            SegmentState::Dropped => {
                v.dropped.insert(r.id);
            }
            _ => {}
        }
    }
    v.deltas = meta
        .deltas()
        .filter(|d| d.vchannel == vchannel && d.dropped_at_ms == 0)
        .cloned()
        .collect();
    v
}

/// Reads a sealed segment's file.
async fn load_segment(
    shared: &Shared,
    schema: &CollectionSchema,
    r: &SegmentRecord,
) -> Result<Chunk, String> {
    // File by file into the first file's columns, reserved for the segment's rows.
    let mut all: Option<SegmentBatch> = None;
    for path in &r.insert_files {
        let bytes = shared
            .storage
            .get(path)
            .await
            .map_err(|e| format!("segment {}: {e}", r.id))?;
        let schema = schema.clone();
        let b = tokio::task::spawn_blocking(move || segment::decode(&schema, bytes))
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| format!("segment {}: {e}", r.id))?;
        SegmentBatch::append(&mut all, b, r.num_rows.max(0) as usize);
    }
    let all = all.unwrap_or_else(|| SegmentBatch {
        row_ids: vec![],
        timestamps: vec![],
        fields: vec![],
    });
    Ok(Chunk::new(schema, r.id, r.partition_id, all))
}

/// What builds of an index are: vector indexes of a spec, or scalar indexes of a
/// field (keys empty) or of a JSON path (its object keys).
#[derive(Debug, Clone)]
enum Built {
    Vector(params::IndexSpec),
    Scalar(Arc<[String]>),
}

/// A build read from its file.
enum Loaded {
    /// A vector index (a FLAT one may still need its segment's vectors: `Sealed::add`).
    Vector(Box<VectorIndex>),
    Scalar(Vec<String>, Arc<ScalarIndex>),
    /// The RTREE of a GEOMETRY column.
    RTree(Arc<RTreeIndex>),
    /// A scalar index that does not fit its segment's column (not used: filters scan).
    Unfit,
}

impl Loaded {
    /// Itself, or [`Loaded::Unfit`] when it is a scalar index that is not one of `chunk`'s
    /// column `field`, or a FLAT index without vectors whose row count or dimension is
    /// not the column's (logged). A FLAT index that normalizes its vectors (COSINE) takes
    /// its copy of the column here, under the caller's read lock.
    fn fits(self, chunk: &Chunk, field: i64, build: i64) -> Loaded {
        match self {
            Loaded::Vector(mut v) if v.needs_vectors() => {
                let column = chunk
                    .vectors(field)
                    .filter(|(data, words)| v.fits_column(data.len(), *words));
                match column {
                    None => {
                        log::warn!(segment = chunk.id, field = field, build = build;
                            "FLAT index does not fit the segment's vectors: searched without it");
                        Loaded::Unfit
                    }
                    Some((data, _)) if v.transforms_vectors() => {
                        match v.adopt_vectors(data.to_vec()) {
                            Ok(()) => Loaded::Vector(v),
                            Err(_) => Loaded::Unfit,
                        }
                    }
                    Some(_) => Loaded::Vector(v),
                }
            }
            Loaded::RTree(x) if !chunk.rtree_fits(field, &x) => {
                log::warn!(segment = chunk.id, field = field, build = build;
                    "RTREE index build does not fit the segment's column: filters scan it");
                Loaded::Unfit
            }
            Loaded::Scalar(keys, x) if !chunk.scalar_index_fits(field, &keys, &x) => {
                log::warn!(segment = chunk.id, field = field, build = build;
                    "scalar index build does not fit the segment's column: filters scan it");
                Loaded::Unfit
            }
            l => l,
        }
    }
}

/// The live index definitions of a collection whose builds are loaded: index ID ->
/// (field, what it builds).
type LiveIndexes = HashMap<i64, (i64, Built)>;

fn live_indexes(shared: &Shared, coll: i64) -> LiveIndexes {
    shared
        .index_defs
        .read()
        .expect("index defs lock")
        .with_builds(coll)
        .into_iter()
        .filter_map(|d| {
            if d.scalar {
                let keys = crate::index::scalar::pointer_keys(&d.json_path);
                return Some((d.id, (d.field_id, Built::Scalar(keys.into()))));
            }
            let spec = params::flatten(&d.params)
                .and_then(|p| params::parse(&p, d.vector_type()))
                .ok()?;
            Some((d.id, (d.field_id, Built::Vector(spec))))
        })
        .collect()
}

/// The finished builds of a segment's indexed fields: (field, build, kind, file).
fn finished_builds(
    shared: &Shared,
    live: &LiveIndexes,
    seg: i64,
) -> Vec<(i64, i64, Built, String)> {
    let builds = shared.builds.read().expect("builds lock");
    builds
        .all()
        .map(|b| &b.record)
        .filter(|b| b.segment_id == seg && b.state() == IndexState::Finished)
        .filter_map(|b| {
            let (field, spec) = live.get(&b.index_id)?;
            Some((
                *field,
                b.build_id,
                spec.clone(),
                b.index_files.first()?.clone(),
            ))
        })
        .collect()
}

async fn load_index(shared: &Shared, built: Built, path: &str) -> Result<Loaded, String> {
    let keys = match built {
        // In pieces: the file is not held beside the index made of it.
        Built::Vector(spec) => {
            return crate::storage::index_file::read_vector_index(&shared.storage, path, spec)
                .await
                .map(|v| Loaded::Vector(Box::new(v)))
                .map_err(|e| format!("index {e}"));
        }
        Built::Scalar(keys) => keys,
    };
    let bytes = shared
        .storage
        .get(path)
        .await
        .map_err(|e| format!("index {path}: {e}"))?;
    tokio::task::spawn_blocking(move || {
        // An RTREE is a scalar index whose file says what it is.
        if RTreeIndex::is_file(&bytes) {
            RTreeIndex::from_bytes(&bytes).map(|x| Loaded::RTree(Arc::new(x)))
        } else {
            ScalarIndex::from_bytes(&bytes).map(|x| Loaded::Scalar(keys.to_vec(), Arc::new(x)))
        }
    })
    .await
    .map_err(|e| e.to_string())?
    .map_err(|e| format!("index {path}: {e}"))
}

async fn load_delta(
    shared: &Shared,
    schema: &CollectionSchema,
    d: &DeltaRecord,
) -> Result<(PkColumn, Vec<u64>), String> {
    let bytes = shared
        .storage
        .get(&d.path)
        .await
        .map_err(|e| format!("delta {}: {e}", d.id))?;
    let pk_schema = segment::delta_schema(schema);
    let b = tokio::task::spawn_blocking(move || segment::decode(&pk_schema, bytes))
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| format!("delta {}: {e}", d.id))?;
    let chunk = Chunk::new(&segment::delta_schema(schema), d.id, 0, b);
    Ok((chunk.pks, chunk.timestamps))
}

/// Whether every live index of segment `seg` has a finished or failed build (`finished`
/// false), or a finished one (`finished` true).
fn builds_done(shared: &Shared, live: &LiveIndexes, seg: i64, finished: bool) -> bool {
    shared
        .builds
        .read()
        .expect("builds lock")
        .done(seg, live.keys(), finished)
}

/// Whether `r` was written by a compaction of segments this shard all serves, and a live
/// vector index of it has neither finished nor failed yet, while its sources may stand in
/// for it ([`sources_may_stand_in`]; the caller checks it is the compaction's
/// [`sole_output`]).
fn awaiting_index(
    shared: &Shared,
    live: &LiveIndexes,
    have: &HashSet<i64>,
    r: &SegmentRecord,
) -> bool {
    r.compacted_from.iter().all(|s| have.contains(s))
        && sources_may_stand_in(r, now_ms(), shared.ctx.config.segment.gc_drop_tolerance)
        && (r.num_rows as u64) >= shared.ctx.config.segment.min_rows_to_index
        && !builds_done(shared, live, r.id, false)
}

/// The segments to load in place of `r`, a compaction's new segment whose index is being
/// built, when this shard serves none or only some of them: the replaced segments, when
/// they may still stand in for it ([`sources_may_stand_in`]: their files and the deltas
/// they need are kept) and every live index of each is built (segments too small to index
/// are scanned either way). Once loaded they are held as [`awaiting_index`] says, as
/// Milvus's querycoord loads a compaction's indexed sources instead of its unindexed
/// result.
fn stand_ins(shared: &Shared, live: &LiveIndexes, r: &SegmentRecord) -> Option<Vec<SegmentRecord>> {
    let cfg = &shared.ctx.config.segment;
    if !sources_may_stand_in(r, now_ms(), cfg.gc_drop_tolerance)
        || (r.num_rows as u64) < cfg.min_rows_to_index
        || builds_done(shared, live, r.id, false)
    {
        return None;
    }
    let meta = shared.data_meta.read().expect("data meta lock");
    let sources = meta.sources_of(r)?;
    let ready = sources.iter().all(|s| {
        s.vchannel == r.vchannel
            && ((s.num_rows as u64) < cfg.min_rows_to_index
                || builds_done(shared, live, s.id, true))
    });
    ready.then(|| sources.into_iter().cloned().collect())
}

/// Brings the sealed part up to the data coordinator's records: loads new segments,
/// indexes and deltas, drops dropped segments, and hands growing rows over.
///
/// A compaction replaces segments by a new one in one registration: the shard swaps them
/// under one lock (never both, never neither). While the new segment's index is being
/// built ([`awaiting_index`]) the shard keeps serving the replaced segments instead (it
/// serves all of them, or the swap is not held), so searches keep using their indexes;
/// the replaced and the new segment hold the same visible rows (docs/architecture.md
/// §6.2, C2), and everything else (other segments, deltas, indexes, the checkpoint)
/// moves on as usual.
pub async fn refresh(shared: &Shared, shard: &Shard) -> Result<(), String> {
    let mut v = view(shared, &shard.vchannel);
    let live = live_indexes(shared, shard.collection_id);
    let (have, have_deltas, checkpoint): (HashSet<i64>, HashSet<i64>, u64) = {
        let d = shard.data.read().expect("shard lock");
        (
            d.sealed.keys().copied().collect(),
            d.deltas.clone(),
            d.checkpoint,
        )
    };
    let records: Vec<&SegmentRecord> = v.segments.iter().collect();
    let held: Vec<&SegmentRecord> = v
        .segments
        .iter()
        .filter(|r| {
            !have.contains(&r.id)
                && awaiting_index(shared, &live, &have, r)
                && sole_output(r, &records)
        })
        .collect();
    if !held.is_empty() {
        let new: HashSet<i64> = held.iter().map(|r| r.id).collect();
        let kept: HashSet<i64> = held
            .iter()
            .flat_map(|r| r.compacted_from.iter().copied())
            .collect();
        v.segments.retain(|r| !new.contains(&r.id));
        v.dropped.retain(|id| !kept.contains(id));
    }
    // A compaction's new segment this shard does not serve the sources of (it is loading):
    // its indexed sources instead, while its index is built.
    let records: Vec<&SegmentRecord> = v.segments.iter().collect();
    let mut replaced = HashSet::new();
    let mut sources: Vec<SegmentRecord> = Vec::new();
    for r in &v.segments {
        if have.contains(&r.id)
            || r.compacted_from.iter().all(|s| have.contains(s))
            || !sole_output(r, &records)
        {
            continue;
        }
        if let Some(s) = stand_ins(shared, &live, r) {
            replaced.insert(r.id);
            sources.extend(s);
        }
    }
    if !replaced.is_empty() {
        // Every source stays (also those this shard serves already); those it does not
        // serve are loaded.
        for s in &sources {
            v.dropped.remove(&s.id);
        }
        sources.retain(|s| !have.contains(&s.id));
        log::info!(channel = shard.vchannel.as_str(), replica = shard.replica,
            compacted = format!("{replaced:?}").as_str(),
            sources = format!("{:?}", sources.iter().map(|s| s.id).collect::<Vec<_>>()).as_str();
            "querynode loads the indexed segments a compaction replaced while the new segment's index is built");
        v.segments.retain(|r| !replaced.contains(&r.id));
        v.segments.extend(sources);
    }
    let mut new_segments = Vec::new();
    for r in &v.segments {
        if !have.contains(&r.id) {
            let mut sealed = Sealed {
                chunk: load_segment(shared, &shard.schema, r).await?,
                indexes: HashMap::new(),
                builds: HashSet::new(),
            };
            for (field, build, built, path) in finished_builds(shared, &live, r.id) {
                let index = load_index(shared, built, &path).await?;
                let index = index.fits(&sealed.chunk, field, build);
                sealed.add(field, build, index);
            }
            new_segments.push(sealed);
        }
    }
    let mut new_deltas = Vec::new();
    for d in &v.deltas {
        if !have_deltas.contains(&d.id) {
            new_deltas.push((d.id, load_delta(shared, &shard.schema, d).await?));
        }
    }
    // Indexes built since their segment was loaded.
    let mut new_indexes = Vec::new();
    {
        let wanted: Vec<(i64, HashSet<i64>)> = {
            let d = shard.data.read().expect("shard lock");
            d.sealed
                .iter()
                .map(|(id, s)| (*id, s.builds.clone()))
                .collect()
        };
        for (seg, loaded) in wanted {
            for (field, build, built, path) in finished_builds(shared, &live, seg) {
                if !loaded.contains(&build) {
                    let index = load_index(shared, built, &path).await?;
                    // Checked under the read lock: searches go on meanwhile.
                    let index = match shard.data.read().expect("shard lock").sealed.get(&seg) {
                        Some(s) => index.fits(&s.chunk, field, build),
                        None => continue,
                    };
                    new_indexes.push((seg, field, build, index));
                }
            }
        }
    }
    let moved = v.checkpoint > checkpoint;
    if new_segments.is_empty()
        && new_deltas.is_empty()
        && new_indexes.is_empty()
        && !moved
        && !have.iter().any(|s| v.dropped.contains(s))
    {
        return Ok(());
    }
    let loaded_files =
        !(new_segments.is_empty() && new_deltas.is_empty() && new_indexes.is_empty());
    // Which rows of the new segments add to the shard's deletes, found under read locks
    // a piece at a time while searches go on: the write lock records only those (none
    // for a merged segment, whose rows its sources brought already).
    let scan = std::time::Instant::now();
    let news: Vec<Vec<News>> = new_segments
        .iter()
        .map(|s| {
            (0..s.chunk.rows)
                .step_by(NEWS_PIECE)
                .map(|start| {
                    let rows = start..(start + NEWS_PIECE).min(s.chunk.rows);
                    let d = shard.data.read().expect("shard lock");
                    d.deletes.news(&s.chunk, rows)
                })
                .collect()
        })
        .collect();
    let scanned_ms = scan.elapsed().as_millis() as u64;
    let mut d = shard.data.write().expect("shard lock");
    let locked = std::time::Instant::now();
    let (added, indexed) = (new_segments.len(), new_indexes.len());
    for (s, news) in new_segments.into_iter().zip(&news) {
        d.deletes.observe_news(&s.chunk, news);
        d.sealed.insert(s.chunk.id, s);
    }
    for (id, (pks, ts)) in new_deltas {
        d.deltas.insert(id);
        d.deletes.add(&pks, &ts);
    }
    for (seg, field, build, index) in new_indexes {
        if let Some(s) = d.sealed.get_mut(&seg) {
            s.add(field, build, index);
        }
    }
    // Segments (and chunks) that go are freed after the lock is released: freeing a large
    // segment's columns and indexes takes time searches need not wait for.
    let gone: Vec<i64> = d
        .sealed
        .keys()
        .filter(|id| v.dropped.contains(id))
        .copied()
        .collect();
    let removed: Vec<Sealed> = gone.iter().filter_map(|id| d.sealed.remove(id)).collect();
    let mut passed = Vec::new();
    if moved {
        d.checkpoint = v.checkpoint;
        let cp = v.checkpoint as i64;
        let (keep, old) = std::mem::take(&mut d.growing)
            .into_iter()
            .partition(|c| c.id > cp);
        d.growing = keep;
        passed = old;
    }
    if moved || added > 0 || indexed > 0 || !removed.is_empty() {
        log::info!(channel = shard.vchannel.as_str(), replica = shard.replica, sealed_added = added,
            sealed_removed = removed.len(), indexes_added = indexed, checkpoint = d.checkpoint,
            sealed = d.sealed.len(), indexed_segments = d.indexed_segments(),
            scalar_indexes = d.scalar_indexes(), growing_chunks = d.growing.len(),
            scanned_ms = scanned_ms, write_locked_us = locked.elapsed().as_micros() as u64;
            "querynode shard handoff");
    }
    drop(d);
    drop((removed, passed));
    if loaded_files {
        crate::memory::release_free_memory();
    }
    Ok(())
}

/// Applies one log message (skipped when the sealed part already covers it).
fn apply(shard: &Shard, sequence: u64, payload: &[u8]) -> Result<(), String> {
    let msg = WalMessage::decode(payload).map_err(|e| e.to_string())?;
    let mut d = shard.data.write().expect("shard lock");
    if sequence > d.checkpoint {
        match msg.body {
            Some(wal_message::Body::Insert(m)) if m.vchannel == shard.vchannel => {
                let rows = m.num_rows as usize;
                let batch = SegmentBatch {
                    row_ids: m.row_ids,
                    timestamps: vec![m.timestamp; rows],
                    fields: m.fields,
                };
                let c = Chunk::new(&shard.schema, sequence as i64, m.partition_id, batch);
                d.deletes.observe(&c);
                d.growing.push(c);
            }
            Some(wal_message::Body::Delete(m)) if m.vchannel == shard.vchannel => {
                let pks = m
                    .pks
                    .as_ref()
                    .map(PkColumn::of_ids)
                    .unwrap_or(PkColumn::Int(vec![]));
                let ts = vec![m.timestamp; pks.len()];
                d.deletes.add(&pks, &ts);
            }
            _ => {}
        }
    }
    drop(d);
    shard.consumed.send_modify(|c| *c = (*c).max(sequence));
    Ok(())
}

/// Consumes the log after the checkpoint the shard was loaded at, forever.
pub async fn consume(shared: Arc<Shared>, shard: Arc<Shard>) {
    let pchannel = wal::pchannel_of(&shard.vchannel).to_string();
    let mut next = shard.data.read().expect("shard lock").checkpoint + 1;
    shard.consumed.send_modify(|c| *c = (*c).max(next - 1));
    let mut backoff = Duration::from_millis(100);
    loop {
        let r: Result<(), String> = async {
            let wal = shared.wal().await?;
            wal.ensure_channel(&pchannel)
                .await
                .map_err(|e| e.to_string())?;
            let mut reader = wal
                .read_from(&shard.vchannel, next)
                .await
                .map_err(|e| e.to_string())?;
            // Reading again worked: the next failure starts the back-off afresh.
            backoff = Duration::from_millis(100);
            loop {
                let asked = now_ms();
                match reader
                    .next(Duration::from_millis(100))
                    .await
                    .map_err(|e| e.to_string())?
                {
                    Some(e) => {
                        apply(&shard, e.sequence, &e.payload)?;
                        next = e.sequence + 1;
                    }
                    None => shard.caught_up_ms.store(asked, Ordering::Release),
                }
            }
        }
        .await;
        if let Err(e) = r {
            log::warn!(channel = shard.vchannel.as_str(), error = e.as_str(); "querynode consumer failed, resuming");
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(Duration::from_secs(5));
        }
    }
}

/// Loads the shard, then keeps it current: consumes the log and hands segments over
/// until the task is aborted. `on_ready` runs once, when the shard has caught up.
pub async fn serve(
    shared: Arc<Shared>,
    shard: Arc<Shard>,
    on_ready: impl std::future::Future<Output = ()>,
) {
    let mut backoff = Duration::from_millis(200);
    // The first load: every segment and delta up to the checkpoint.
    loop {
        match refresh(&shared, &shard).await {
            Ok(()) => break,
            Err(e) => {
                log::warn!(channel = shard.vchannel.as_str(), error = e.as_str(); "querynode cannot load shard yet, retrying");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(5));
            }
        }
    }
    let consumer = super::super::worker::Task(tokio::spawn(consume(shared.clone(), shard.clone())));
    // Ready once the log is applied up to where it was after the load.
    loop {
        let fresh = match shared.wal().await {
            Ok(w) => shard
                .wait_fresh(w, true, Duration::ZERO, Duration::from_secs(30))
                .await
                .map_err(|e| e.to_string()),
            Err(e) => Err(e),
        };
        match fresh {
            Ok(()) => break,
            Err(e) => {
                log::warn!(channel = shard.vchannel.as_str(), error = e.as_str(); "querynode shard not caught up yet");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    }
    shard.ready.store(true, Ordering::Release);
    let (sealed, growing) = shard.rows();
    let indexed = shard.data.read().expect("shard lock").indexed_segments();
    log::info!(collection = shard.collection_id, channel = shard.vchannel.as_str(), replica = shard.replica,
        sealed_rows = sealed, growing_rows = growing, indexed_segments = indexed;
        "querynode shard loaded and caught up");
    on_ready.await;
    loop {
        tokio::time::sleep(Duration::from_millis(250)).await;
        if let Err(e) = refresh(&shared, &shard).await {
            log::warn!(channel = shard.vchannel.as_str(), error = e.as_str(); "querynode shard refresh failed, retrying");
        }
        if consumer.0.is_finished() {
            return;
        }
    }
}
