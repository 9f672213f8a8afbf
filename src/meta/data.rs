//! The data plane's records in etcd, shared by the datacoord (which follows and writes
//! them) and the datanodes (which register segments and checkpoints, and follow the
//! channel assignments).
//!
//! - `<meta>/datacoord-meta/s/<coll>/<part>/<seg>`: [`SegmentRecord`]
//! - `<meta>/datacoord-meta/d/<coll>/<id>`: [`DeltaRecord`] (deleted pks)
//! - `<meta>/datacoord-meta/channel-cp/<vchannel>`: [`ChannelCheckpoint`]
//! - `<meta>/datacoord-meta/dropped/<coll>`: a dropped collection (Unix ms of the drop)
//! - `<meta>/datacoord-meta/sync-failed/<vchannel>`: [`SyncFailure`] (a datanode that
//!   cannot write the channel's rows)
//! - `<meta>/datacoord-meta/import/<id>`: [`ImportJob`] (a bulk import)
//! - `<meta>/datacoord-meta/compaction/<id>`: [`CompactionPlan`] (a compaction task)
//! - `<meta>/channelwatch/<vchannel>`: [`ChannelWatch`] (which datanode consumes it)

use std::collections::{BTreeMap, BTreeSet, HashMap};

use prost::Message;

use super::follower::Mirror;
use crate::proto::datacoord::{
    ChannelCheckpoint, ChannelWatch, CompactionPlan, DeltaRecord, ImportJob, SegmentRecord,
    SegmentState, SyncFailure,
};

/// How long, after a compaction, the segments it replaced stand in for its new segment
/// while the new segment's vector index is built: querynodes serve them (keeping their
/// indexes) and DescribeIndex counts the new segment's rows as indexed through them, as
/// Milvus does. Milvus waits without a bound; this bound keeps a build that never
/// finishes (its indexnodes gone) from pinning old segments for ever.
pub const COMPACTED_INDEX_WAIT_MS: i64 = 30 * 60_000;

/// How long after a compaction its sources may stand in for its new segment: 30 minutes
/// ([`COMPACTED_INDEX_WAIT_MS`]) or half of `gc.dropTolerance`, after which GC deletes
/// their files and records, whichever is shorter.
pub fn stand_in_window_ms(drop_tolerance: std::time::Duration) -> i64 {
    let half = i64::try_from(drop_tolerance.as_millis() / 2).unwrap_or(i64::MAX);
    COMPACTED_INDEX_WAIT_MS.min(half)
}

/// How much longer than [`stand_in_window_ms`] the datacoord keeps the delete records
/// stand-ins need: the querynodes measure the window on their own clocks.
pub const STAND_IN_CLOCK_MARGIN_MS: i64 = 5 * 60_000;

/// Whether the segments compaction result `r` replaced may stand in for it at `now_ms`
/// (its index permitting): served by querynodes in its place, and loaded by a querynode
/// loading now, while [`stand_in_window_ms`] lasts. The indexcoord keeps their builds and
/// the datacoord the delete records they need meanwhile (docs/architecture.md §6.2).
pub fn sources_may_stand_in(
    r: &SegmentRecord,
    now_ms: i64,
    drop_tolerance: std::time::Duration,
) -> bool {
    !r.compacted_from.is_empty() && now_ms - r.compacted_ms <= stand_in_window_ms(drop_tolerance)
}

/// Whether compaction result `r` is the only one of `records` (the live segments of its
/// channel) written from its sources: a clustering compaction writes several segments
/// from the same sources, which stand in for none of them (serving the sources beside an
/// output would show that output's rows twice).
pub fn sole_output(r: &SegmentRecord, records: &[&SegmentRecord]) -> bool {
    records.iter().all(|o| {
        o.id == r.id
            || !o
                .compacted_from
                .iter()
                .any(|s| r.compacted_from.contains(s))
    })
}

/// Key names of the data plane's records.
#[derive(Debug, Clone)]
pub struct DataKeys {
    meta: String,
    watch: String,
}

impl DataKeys {
    /// Keys under `<meta_root>/datacoord-meta/` and `<meta_root>/channelwatch/`.
    pub fn new(meta_root: &str) -> Self {
        DataKeys {
            meta: format!("{meta_root}/datacoord-meta/"),
            watch: format!("{meta_root}/channelwatch/"),
        }
    }

    /// The prefix of segment, delta and checkpoint records.
    pub fn meta_prefix(&self) -> &str {
        &self.meta
    }

    /// The prefix of channel assignments.
    pub fn watch_prefix(&self) -> &str {
        &self.watch
    }

    /// A segment record's key.
    pub fn segment(&self, coll: i64, part: i64, seg: i64) -> String {
        format!("{}s/{coll}/{part}/{seg}", self.meta)
    }

    /// A delta record's key.
    pub fn delta(&self, coll: i64, id: i64) -> String {
        format!("{}d/{coll}/{id}", self.meta)
    }

    /// A channel checkpoint's key.
    pub fn checkpoint(&self, vchannel: &str) -> String {
        format!("{}channel-cp/{vchannel}", self.meta)
    }

    /// The key of a channel's failing sync.
    pub fn sync_failure(&self, vchannel: &str) -> String {
        format!("{}sync-failed/{vchannel}", self.meta)
    }

    /// The key of a bulk import job.
    pub fn import(&self, id: i64) -> String {
        format!("{}import/{id}", self.meta)
    }

    /// The key of a compaction plan.
    pub fn compaction(&self, id: i64) -> String {
        format!("{}compaction/{id}", self.meta)
    }

    /// The key marking a collection as dropped.
    pub fn dropped(&self, coll: i64) -> String {
        format!("{}dropped/{coll}", self.meta)
    }

    /// A channel assignment's key.
    pub fn watch(&self, vchannel: &str) -> String {
        format!("{}{vchannel}", self.watch)
    }

    /// Keys each new active datacoord writes its epoch to (one per followed prefix).
    pub fn epoch_markers(&self) -> [String; 2] {
        [
            format!("{}active-epoch", self.meta),
            format!("{}~active-epoch", self.watch),
        ]
    }
}

/// Insert files live under this prefix of the object store.
pub const INSERT_LOG: &str = "insert_log";
/// Delta (deleted pk) files live under this prefix of the object store.
pub const DELTA_LOG: &str = "delta_log";

/// The object key of a segment's insert file.
pub fn insert_file(coll: i64, part: i64, seg: i64) -> String {
    format!("{INSERT_LOG}/{coll}/{part}/{seg}/{seg}.parquet")
}

/// The object key of a delta file.
pub fn delta_file(coll: i64, id: i64) -> String {
    format!("{DELTA_LOG}/{coll}/{id}.parquet")
}

/// A segment record and the etcd revision it was last written at.
#[derive(Debug, Clone)]
pub struct Segment {
    /// The record.
    pub record: SegmentRecord,
    /// Its mod revision.
    pub revision: i64,
}

/// Segments, deltas, checkpoints and dropped collections, as stored.
#[derive(Debug, Default, Clone)]
pub struct DataMeta {
    segments: BTreeMap<i64, Segment>,
    deltas: BTreeMap<i64, DeltaRecord>,
    checkpoints: HashMap<String, ChannelCheckpoint>,
    dropped: BTreeMap<i64, i64>,
    sync_failures: HashMap<String, SyncFailure>,
    imports: BTreeMap<i64, Import>,
    compactions: BTreeMap<i64, Compaction>,
}

/// A compaction plan and the etcd revision it was last written at.
#[derive(Debug, Clone)]
pub struct Compaction {
    /// The record.
    pub plan: CompactionPlan,
    /// Its mod revision.
    pub revision: i64,
}

/// An import job and the etcd revision it was last written at.
#[derive(Debug, Clone)]
pub struct Import {
    /// The record.
    pub job: ImportJob,
    /// Its mod revision.
    pub revision: i64,
}

fn decode<M: Message + Default>(key: &str, value: &[u8]) -> Result<M, String> {
    M::decode(value).map_err(|e| format!("{key}: {e}"))
}

impl Mirror for DataMeta {
    type Keys = DataKeys;

    fn prefix(keys: &DataKeys) -> &str {
        keys.meta_prefix()
    }

    fn apply_put(
        &mut self,
        keys: &DataKeys,
        key: &str,
        value: &[u8],
        revision: i64,
    ) -> Result<(), String> {
        let Some(rest) = key.strip_prefix(keys.meta_prefix()) else {
            return Ok(());
        };
        if rest.starts_with("s/") {
            let record: SegmentRecord = decode(key, value)?;
            self.segments
                .insert(record.id, Segment { record, revision });
        } else if rest.starts_with("d/") {
            let d: DeltaRecord = decode(key, value)?;
            self.deltas.insert(d.id, d);
        } else if let Some(vch) = rest.strip_prefix("channel-cp/") {
            let cp: ChannelCheckpoint = decode(key, value)?;
            self.checkpoints.insert(vch.to_string(), cp);
        } else if let Some(coll) = rest.strip_prefix("dropped/") {
            let coll = coll
                .parse()
                .map_err(|_| format!("{key}: not a collection ID"))?;
            let at = String::from_utf8_lossy(value).parse().unwrap_or(0);
            self.dropped.insert(coll, at);
        } else if let Some(vch) = rest.strip_prefix("sync-failed/") {
            let f: SyncFailure = decode(key, value)?;
            self.sync_failures.insert(vch.to_string(), f);
        } else if rest.starts_with("import/") {
            let job: ImportJob = decode(key, value)?;
            self.imports.insert(job.id, Import { job, revision });
        } else if rest.starts_with("compaction/") {
            let plan: CompactionPlan = decode(key, value)?;
            self.compactions
                .insert(plan.id, Compaction { plan, revision });
        }
        Ok(())
    }

    fn apply_delete(&mut self, keys: &DataKeys, key: &str) {
        let Some(rest) = key.strip_prefix(keys.meta_prefix()) else {
            return;
        };
        let last = rest.rsplit('/').next().unwrap_or_default();
        if rest.starts_with("s/") {
            if let Ok(id) = last.parse() {
                self.segments.remove(&id);
            }
        } else if rest.starts_with("d/") {
            if let Ok(id) = last.parse() {
                self.deltas.remove(&id);
            }
        } else if let Some(vch) = rest.strip_prefix("channel-cp/") {
            self.checkpoints.remove(vch);
        } else if rest.starts_with("dropped/") {
            if let Ok(id) = last.parse() {
                self.dropped.remove(&id);
            }
        } else if let Some(vch) = rest.strip_prefix("sync-failed/") {
            self.sync_failures.remove(vch);
        } else if rest.starts_with("import/") {
            if let Ok(id) = last.parse() {
                self.imports.remove(&id);
            }
        } else if rest.starts_with("compaction/") {
            if let Ok(id) = last.parse() {
                self.compactions.remove(&id);
            }
        }
    }
}

fn live(s: &SegmentRecord) -> bool {
    s.state() != SegmentState::Dropped
}

impl DataMeta {
    /// The failing sync of a channel, if its datanode reported one.
    pub fn sync_failure(&self, vchannel: &str) -> Option<&SyncFailure> {
        self.sync_failures.get(vchannel)
    }

    /// Every segment record.
    pub fn segments(&self) -> impl Iterator<Item = &Segment> {
        self.segments.values()
    }

    /// Every import job, oldest first.
    pub fn imports(&self) -> impl Iterator<Item = &Import> {
        self.imports.values()
    }

    /// An import job.
    pub fn import(&self, id: i64) -> Option<&Import> {
        self.imports.get(&id)
    }

    /// Every compaction plan, oldest first.
    pub fn compactions(&self) -> impl Iterator<Item = &Compaction> {
        self.compactions.values()
    }

    /// A compaction plan.
    pub fn compaction(&self, id: i64) -> Option<&Compaction> {
        self.compactions.get(&id)
    }

    /// A segment record by ID.
    pub fn segment(&self, id: i64) -> Option<&Segment> {
        self.segments.get(&id)
    }

    /// The records of the segments compaction result `r` replaced, when every one is
    /// still kept (GC removes them `gc.dropTolerance` after the compaction).
    pub fn sources_of(&self, r: &SegmentRecord) -> Option<Vec<&SegmentRecord>> {
        r.compacted_from
            .iter()
            .map(|id| self.segments.get(id).map(|s| &s.record))
            .collect()
    }

    /// Every delta record.
    pub fn deltas(&self) -> impl Iterator<Item = &DeltaRecord> {
        self.deltas.values()
    }

    /// Live segments of a collection.
    pub fn live_segments(&self, coll: i64) -> Vec<&SegmentRecord> {
        self.segments
            .values()
            .map(|s| &s.record)
            .filter(|s| s.collection_id == coll && live(s))
            .collect()
    }

    /// Live segments of a collection's `partitions` (every partition when empty).
    pub fn live_segments_in(&self, coll: i64, partitions: &[i64]) -> Vec<&SegmentRecord> {
        self.live_segments(coll)
            .into_iter()
            .filter(|s| partitions.is_empty() || partitions.contains(&s.partition_id))
            .collect()
    }

    /// Rows and number of a collection's live segments (of `partitions` only, unless
    /// empty).
    pub fn statistics(&self, coll: i64, partitions: &[i64]) -> (i64, usize) {
        let segs = self.live_segments_in(coll, partitions);
        (segs.iter().map(|s| s.num_rows).sum(), segs.len())
    }

    /// A channel's checkpoint, if it has one.
    pub fn checkpoint(&self, vchannel: &str) -> Option<&ChannelCheckpoint> {
        self.checkpoints.get(vchannel)
    }

    /// Every checkpoint.
    pub fn checkpoints(&self) -> impl Iterator<Item = &ChannelCheckpoint> {
        self.checkpoints.values()
    }

    /// Dropped collections and when (Unix ms) they were dropped.
    pub fn dropped(&self) -> &BTreeMap<i64, i64> {
        &self.dropped
    }

    /// Collections that have any record.
    pub fn collections(&self) -> BTreeSet<i64> {
        let mut c: BTreeSet<i64> = self
            .segments
            .values()
            .map(|s| s.record.collection_id)
            .collect();
        c.extend(self.deltas.values().map(|d| d.collection_id));
        c
    }

    /// Every object key a record names (live or dropped): the files that are not garbage.
    pub fn referenced_files(&self) -> BTreeSet<String> {
        let mut files: BTreeSet<String> = self
            .segments
            .values()
            .flat_map(|s| s.record.insert_files.iter().cloned())
            .collect();
        files.extend(self.deltas.values().map(|d| d.path.clone()));
        files
    }
}

/// A channel assignment and the etcd revision it was written at: a datanode registers
/// files only while the key's revision is the one it took the channel at.
#[derive(Debug, Clone)]
pub struct Watch {
    /// The assignment.
    pub record: ChannelWatch,
    /// Its mod revision.
    pub revision: i64,
}

/// Which datanode consumes each virtual channel.
#[derive(Debug, Default, Clone)]
pub struct ChannelMap {
    watches: BTreeMap<String, Watch>,
}

impl Mirror for ChannelMap {
    type Keys = DataKeys;

    fn prefix(keys: &DataKeys) -> &str {
        keys.watch_prefix()
    }

    fn apply_put(
        &mut self,
        keys: &DataKeys,
        key: &str,
        value: &[u8],
        revision: i64,
    ) -> Result<(), String> {
        let Some(vch) = key.strip_prefix(keys.watch_prefix()) else {
            return Ok(());
        };
        if vch.starts_with('~') {
            return Ok(());
        }
        let record: ChannelWatch = decode(key, value)?;
        self.watches
            .insert(vch.to_string(), Watch { record, revision });
        Ok(())
    }

    fn apply_delete(&mut self, keys: &DataKeys, key: &str) {
        if let Some(vch) = key.strip_prefix(keys.watch_prefix()) {
            self.watches.remove(vch);
        }
    }
}

impl ChannelMap {
    /// The assignment of `vchannel`.
    pub fn get(&self, vchannel: &str) -> Option<&Watch> {
        self.watches.get(vchannel)
    }

    /// Every assignment.
    pub fn all(&self) -> impl Iterator<Item = &Watch> {
        self.watches.values()
    }

    /// The channels assigned to datanode `node`.
    pub fn of_node(&self, node: i64) -> Vec<&Watch> {
        self.watches
            .values()
            .filter(|w| w.record.node_id == node)
            .collect()
    }
}
