//! Compaction planning (the active datacoord): which segments are rewritten, by which
//! datanode. A datanode executes a plan (`roles/datanode/compact.rs`).
//!
//! - **Mix**: the small segments (under `maxSize × smallProportion` bytes) of one virtual
//!   channel and partition are merged, oldest first, into plans of at most `maxSize`
//!   bytes; automatically only when at least `dataCoord.compaction.min.segment` of them
//!   go into one plan, on a manual `compact` whenever two do.
//! - **Single**: a segment of which about `single.ratio.threshold` of the rows are
//!   deleted (counted from the delta records written after it was, an upper bound) or
//!   expired (the collection's TTL, from its timestamp range) is rewritten alone; on a
//!   manual `compact` any segment with such rows is.
//!
//! Automatic plans take a segment only once it is indexed ([`awaiting_index`]), as Milvus
//! does, and none of a collection whose `collection.autocompaction.enabled` property is
//! false; a manual `compact` takes them either way.
//!
//! A plan is written in one fenced txn with its segments marked as taken by it
//! (`compaction_plan`), conditioned on each segment's record being the one read: a
//! segment is in at most one live plan, and a plan is only made of segments whose
//! records did not change since. Automatic planning runs every
//! `dataCoord.compaction.mix.triggerInterval`; each reconcile pass assigns Pending plans
//! (and those of a datanode whose session is gone) to the live datanode with the fewest,
//! fails a plan after [`ATTEMPTS`] datanodes died running it, and fails a plan whose
//! segments changed (dropped by a TTL, a partition or collection drop). A failed plan's
//! segments are free for the next plan.

use std::collections::{BTreeMap, BTreeSet};

use etcd_client::{Compare, CompareOp, TxnOp};
use prost::Message;

use super::DataCoord;
use crate::config::CompactionConfig;
use crate::meta::data::{stand_in_window_ms, STAND_IN_CLOCK_MARGIN_MS};
use crate::meta::now_ms;
use crate::proto::common::IndexState;
use crate::proto::datacoord::{
    CompactionKind, CompactionPlan, CompactionPlanState, DeltaRecord, SegmentRecord, SegmentState,
};
use crate::schema::properties;
use crate::session::fenced::{FenceError, FencedStore};

/// How many datanodes may die running one plan before it is failed.
pub const ATTEMPTS: i32 = 3;
/// Segments in one plan at most (one txn op each when registering it).
const MAX_SEGMENTS: usize = 30;
/// Plans written per planning pass at most.
const MAX_PLANS: usize = 64;

/// A segment as the planner sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct Candidate {
    /// Its record.
    pub record: SegmentRecord,
    /// The record's mod revision.
    pub revision: i64,
}

/// Why plans could not be written.
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    /// Not active any more, or etcd failed.
    #[error(transparent)]
    Fence(#[from] FenceError),
    /// No IDs for the plans.
    #[error("cannot allocate compaction plan IDs: {0}")]
    Ids(String),
}

/// An estimate of the fraction of `s`'s rows no reader can see: deleted by the deltas of
/// its channel not yet applied to it (each delete counted as if it hit `s`), or expired.
pub fn removable_fraction(s: &SegmentRecord, deltas: &[&DeltaRecord], expire_before: u64) -> f64 {
    if s.num_rows <= 0 {
        return 1.0;
    }
    let deleted: i64 = deltas
        .iter()
        .filter(|d| d.id > s.applied_delta_id && d.end_ts > s.start_ts)
        .map(|d| d.num_rows)
        .sum();
    let expired = if expire_before > s.start_ts {
        let span = s.end_ts.saturating_sub(s.start_ts) + 1;
        (expire_before.min(s.end_ts + 1) - s.start_ts) as f64 / span as f64
    } else {
        0.0
    };
    (deleted as f64 / s.num_rows as f64 + expired).min(1.0)
}

/// A segment joins an automatic mix plan only when the segments already in it hold at
/// least 1 / `TIER_RATIO` of its size.
const TIER_RATIO: i64 = 2;

/// Automatic mix plans from `small` (smallest first): runs of segments in which each is
/// at most `TIER_RATIO` times the total of those before it in the run, within `max_bytes`
/// and [`MAX_SEGMENTS`]; a run of at least `at_least` segments is a plan.
fn tiered<'a>(
    small: &[&'a SegmentRecord],
    at_least: usize,
    max_bytes: i64,
) -> Vec<Vec<&'a SegmentRecord>> {
    let mut plans = Vec::new();
    let mut run: Vec<&SegmentRecord> = Vec::new();
    let mut total = 0i64;
    for s in small {
        if !run.is_empty()
            && (s.size_bytes > TIER_RATIO * total
                || total + s.size_bytes > max_bytes
                || run.len() >= MAX_SEGMENTS)
        {
            if run.len() >= at_least {
                plans.push(std::mem::take(&mut run));
            }
            run.clear();
            total = 0;
        }
        total += s.size_bytes;
        run.push(*s);
    }
    if run.len() >= at_least {
        plans.push(run);
    }
    plans
}

/// The plans for the free segments of one channel and partition: (kind, segment IDs).
/// `manual`: merge any two small segments, rewrite any segment with removable rows.
pub fn plan_group(
    segments: &[&SegmentRecord],
    deltas: &[&DeltaRecord],
    expire_before: u64,
    max_bytes: u64,
    c: &CompactionConfig,
    manual: bool,
) -> Vec<(CompactionKind, Vec<i64>)> {
    let small_below = (max_bytes as f64 * c.small_proportion) as i64;
    let mut small: Vec<&SegmentRecord> = segments
        .iter()
        .copied()
        .filter(|s| s.size_bytes < small_below)
        .collect();
    let at_least = if manual { 2 } else { c.min_segments.max(2) };
    let mut plans = Vec::new();
    let mut merged = BTreeSet::new();
    if !manual {
        // Tiers: smallest first, and a segment joins only segments holding at least
        // 1 / TIER_RATIO of its size, so a large segment is rewritten only when the
        // small ones it absorbs are worth it: under nonstop ingestion each row is
        // rewritten O(log n) times, not once per trigger.
        small.sort_by_key(|s| (s.size_bytes, s.start_ts, s.id));
        for run in tiered(&small, at_least, max_bytes as i64) {
            merged.extend(run.iter().map(|s| s.id));
            plans.push((
                CompactionKind::CompactionMix,
                run.iter().map(|s| s.id).collect(),
            ));
        }
        small.clear();
    }
    small.sort_by_key(|s| (s.start_ts, s.id));
    let mut bin: Vec<&SegmentRecord> = Vec::new();
    let mut bytes = 0i64;
    let mut close = |bin: &mut Vec<&SegmentRecord>, plans: &mut Vec<_>| {
        if bin.len() >= at_least {
            merged.extend(bin.iter().map(|s| s.id));
            plans.push((
                CompactionKind::CompactionMix,
                bin.iter().map(|s| s.id).collect(),
            ));
        }
        bin.clear();
    };
    for s in small {
        if !bin.is_empty() && (bytes + s.size_bytes > max_bytes as i64 || bin.len() >= MAX_SEGMENTS)
        {
            close(&mut bin, &mut plans);
            bytes = 0;
        }
        bytes += s.size_bytes;
        bin.push(s);
    }
    close(&mut bin, &mut plans);
    for s in segments {
        if merged.contains(&s.id) {
            continue;
        }
        let f = removable_fraction(s, deltas, expire_before);
        if (manual && f > 0.0) || f >= c.single_ratio {
            plans.push((CompactionKind::CompactionSingle, vec![s.id]));
        }
    }
    plans
}

/// The Flushed segments automatic compaction leaves alone until they are indexed, as
/// Milvus's `dataCoord.compaction.indexBasedCompaction` does (its compaction trigger keeps
/// only segments whose vector fields' indexes are Finished): every segment of a collection
/// where some vector field has no live index yet, and every segment of at least
/// `minSegmentNumRowsToEnableIndex` rows with no finished or failed build of some live
/// index. Merging before `create_index` would make one large segment whose graph is then
/// built from scratch instead of the sealed segments' in turn (issue 25: 295 against
/// 583 s at 1,000,000 rows).
fn awaiting_index(
    dc: &DataCoord,
    catalog: &crate::meta::catalog::Catalog,
    meta: &crate::meta::data::DataMeta,
) -> BTreeSet<i64> {
    let defs = dc.index_defs.read().expect("index defs lock");
    let builds = dc.builds.read().expect("builds lock");
    let done: BTreeSet<(i64, i64)> = builds
        .all()
        .map(|b| &b.record)
        .filter(|b| matches!(b.state(), IndexState::Finished | IndexState::Failed))
        .map(|b| (b.segment_id, b.index_id))
        .collect();
    let min_rows = dc.ctx.config.segment.min_rows_to_index;
    // Per collection: its live indexes with builds, and whether some vector field has none.
    let mut of_collection: BTreeMap<i64, (Vec<i64>, bool)> = BTreeMap::new();
    meta.segments()
        .map(|s| &s.record)
        .filter(|r| r.state() == SegmentState::Flushed)
        .filter(|r| {
            let (live, without_index) = of_collection.entry(r.collection_id).or_insert_with(|| {
                let live = defs.with_builds(r.collection_id);
                let without_index = catalog
                    .collection_by_id(r.collection_id)
                    .and_then(|c| c.schema.as_ref())
                    .is_some_and(|schema| {
                        schema.fields.iter().any(|f| {
                            crate::schema::is_vector(f.data_type())
                                && !live.iter().any(|d| !d.scalar && d.field_id == f.field_id)
                        })
                    });
                (live.iter().map(|d| d.id).collect(), without_index)
            });
            *without_index
                || (r.num_rows as u64 >= min_rows
                    && live.iter().any(|index| !done.contains(&(r.id, *index))))
        })
        .map(|r| r.id)
        .collect()
}

/// A plan before it is written: its kind and segments.
type Planned = (CompactionKind, Vec<Candidate>);

/// Whether a plan is still to be finished.
pub fn is_live(p: &CompactionPlan) -> bool {
    matches!(
        p.state(),
        CompactionPlanState::CompactionPending | CompactionPlanState::CompactionExecuting
    )
}

/// Plans compactions of `collection` (every collection when `None`) and writes them;
/// `compaction_id` is the manual compaction they belong to (0: automatic). `clustering`:
/// a clustering compaction of every segment (the caller checked the collection has a
/// clustering key). The number of plans written.
pub async fn plan(
    dc: &DataCoord,
    store: &FencedStore,
    collection: Option<i64>,
    compaction_id: i64,
    clustering: bool,
) -> Result<usize, PlanError> {
    let c = dc.ctx.config.segment.compaction.clone();
    let max_bytes = dc.ctx.config.segment.max_size_mb * 1024 * 1024;
    let manual = compaction_id != 0;
    // Per (collection, partition, vchannel) of free Flushed segments: the plans for them.
    let mut todo: Vec<(i64, i64, String, Vec<Planned>)> = Vec::new();
    {
        let catalog = dc.catalog.read().expect("catalog lock");
        let meta = dc.meta.read().expect("meta lock");
        let live_plans: BTreeSet<i64> = meta
            .compactions()
            .filter(|p| is_live(&p.plan))
            .map(|p| p.plan.id)
            .collect();
        // Automatic compaction leaves a segment alone until its vector indexes are built,
        // as Milvus does: else a segment that keeps absorbing new ones is rewritten
        // before any index of it exists, and searches of it never use one.
        let awaiting = if manual {
            BTreeSet::new()
        } else {
            awaiting_index(dc, &catalog, &meta)
        };
        let mut groups: BTreeMap<(i64, i64, String), Vec<Candidate>> = BTreeMap::new();
        for s in meta.segments() {
            let r = &s.record;
            if r.state() != SegmentState::Flushed
                || collection.is_some_and(|c| c != r.collection_id)
                || live_plans.contains(&r.compaction_plan)
                || meta.dropped().contains_key(&r.collection_id)
                || awaiting.contains(&r.id)
            {
                continue;
            }
            groups
                .entry((r.collection_id, r.partition_id, r.vchannel.clone()))
                .or_default()
                .push(Candidate {
                    record: r.clone(),
                    revision: s.revision,
                });
        }
        let now = now_ms().max(0) as u64;
        for ((coll, part, vch), segs) in groups {
            let Some(record) = catalog.collection_by_id(coll) else {
                continue;
            };
            if !manual && !properties::auto_compaction(&record.properties) {
                continue;
            }
            let expire_before = properties::expire_before(properties::ttl(&record.properties), now);
            let deltas: Vec<&DeltaRecord> = meta
                .deltas()
                .filter(|d| d.collection_id == coll && d.vchannel == vch && d.dropped_at_ms == 0)
                .collect();
            let records: Vec<&SegmentRecord> = segs.iter().map(|s| &s.record).collect();
            let plans = if clustering {
                // Every segment of the group, oldest first, in plans of at most 30.
                let mut ids: Vec<(u64, i64)> = records.iter().map(|s| (s.start_ts, s.id)).collect();
                ids.sort_unstable();
                ids.chunks(MAX_SEGMENTS)
                    .map(|c| {
                        (
                            CompactionKind::CompactionClustering,
                            c.iter().map(|(_, id)| *id).collect(),
                        )
                    })
                    .collect()
            } else {
                plan_group(&records, &deltas, expire_before, max_bytes, &c, manual)
            };
            if plans.is_empty() {
                continue;
            }
            let by_id: BTreeMap<i64, &Candidate> = segs.iter().map(|s| (s.record.id, s)).collect();
            let plans = plans
                .into_iter()
                .map(|(k, ids)| (k, ids.iter().map(|i| by_id[i].clone()).collect()))
                .collect();
            todo.push((coll, part, vch, plans));
        }
    }
    let wanted: usize = todo.iter().map(|t| t.3.len()).sum::<usize>().min(MAX_PLANS);
    if wanted == 0 {
        return Ok(0);
    }
    let first_id = dc
        .rootcoord
        .alloc_ids(wanted as u32)
        .await
        .map_err(PlanError::Ids)?;
    let mut ids = first_id..first_id + wanted as i64;
    let mut written = 0;
    'groups: for (coll, part, vch, plans) in todo {
        for (kind, segs) in plans {
            let Some(id) = ids.next() else {
                break 'groups;
            };
            let plan = CompactionPlan {
                id,
                compaction_id,
                collection_id: coll,
                partition_id: part,
                vchannel: vch.clone(),
                segment_ids: segs.iter().map(|s| s.record.id).collect(),
                kind: kind as i32,
                state: CompactionPlanState::CompactionPending as i32,
                created_ms: now_ms(),
                source_rows: segs.iter().map(|s| s.record.num_rows).sum(),
                ..Default::default()
            };
            let mut when = Vec::new();
            let mut ops = vec![TxnOp::put(
                dc.keys.compaction(id),
                plan.encode_to_vec(),
                None,
            )];
            for s in &segs {
                let key = dc.keys.segment(coll, part, s.record.id);
                when.push(Compare::mod_revision(
                    key.clone(),
                    CompareOp::Equal,
                    s.revision,
                ));
                let mut r = s.record.clone();
                r.compaction_plan = id;
                ops.push(TxnOp::put(key, r.encode_to_vec(), None));
            }
            if store.write_if(when, ops).await?.is_some() {
                written += 1;
                log::info!(plan = id, compaction = compaction_id, collection = coll, partition = part,
                    channel = vch.as_str(), kind = kind.as_str_name(), segments:? = plan.segment_ids,
                    rows = plan.source_rows; "compaction planned");
            }
        }
    }
    Ok(written)
}

/// Assigns Pending plans (and those whose datanode's session is gone) to the live
/// datanode running the fewest; fails plans whose segments changed, whose collection was
/// dropped, or whose datanodes died [`ATTEMPTS`] times.
pub async fn assign(
    dc: &DataCoord,
    store: &FencedStore,
    nodes: &BTreeSet<i64>,
) -> Result<(), FenceError> {
    let mut load: BTreeMap<i64, usize> = nodes.iter().map(|n| (*n, 0)).collect();
    let mut todo = Vec::new();
    {
        let meta = dc.meta.read().expect("meta lock");
        for p in meta.compactions() {
            let plan = &p.plan;
            if !is_live(plan) {
                continue;
            }
            // Its segments, unchanged since planned (the plan and their marks are one txn,
            // so a follower that has the plan has the marks).
            let changed = plan.segment_ids.iter().find(|id| {
                !meta.segment(**id).is_some_and(|s| {
                    s.record.state() == SegmentState::Flushed && s.record.compaction_plan == plan.id
                })
            });
            let why = changed.map(|id| {
                format!("segment {id} changed before the plan ran (dropped, or its collection or partition was)")
            });
            match (plan.state(), why) {
                (_, Some(why)) => todo.push((p.clone(), Some(why))),
                (CompactionPlanState::CompactionExecuting, None)
                    if nodes.contains(&plan.node_id) =>
                {
                    *load.entry(plan.node_id).or_default() += 1;
                }
                _ => todo.push((p.clone(), None)),
            }
        }
    }
    for (p, why) in todo {
        let mut plan = p.plan;
        let gone = plan.node_id;
        if why.is_some() || plan.attempts >= ATTEMPTS {
            plan.state = CompactionPlanState::CompactionFailed as i32;
            plan.reason = why.unwrap_or_else(|| {
                format!(
                    "{} datanodes running it stopped before it finished",
                    plan.attempts
                )
            });
            plan.finished_ms = now_ms();
            plan.node_id = 0;
        } else {
            let Some((&node, _)) = load.iter().min_by_key(|(id, n)| (**n, **id)) else {
                continue; // no datanode yet: the plan waits
            };
            plan.state = CompactionPlanState::CompactionExecuting as i32;
            plan.node_id = node;
            plan.attempts += 1;
            *load.entry(node).or_default() += 1;
        }
        let key = dc.keys.compaction(plan.id);
        let when = vec![Compare::mod_revision(
            key.clone(),
            CompareOp::Equal,
            p.revision,
        )];
        let put = TxnOp::put(key, plan.encode_to_vec(), None);
        if store.write_if(when, vec![put]).await?.is_some() {
            log::info!(plan = plan.id, collection = plan.collection_id, state = plan.state().as_str_name(),
                datanode = plan.node_id, previous_datanode = gone, attempt = plan.attempts,
                reason = plan.reason.as_str(); "compaction plan state changed");
        }
    }
    Ok(())
}

/// Whether delta record `d` is applied to every row it could hide: each of `segments`
/// of its channel (those a querynode may load: the Flushed ones and the ones standing in
/// for a compaction's new segment, [`crate::meta::data::sources_may_stand_in`]) either
/// was written with it applied (`applied_delta_id`) or holds only rows at or after its
/// newest delete; no unfinished import of its collection carries
/// older rows; and its newest delete is `retention` old at `now_ts` (a row with an older
/// timestamp than a delete can reach the log after it only when its proxy's publish was
/// slow, bounded by the proxy's retry limit, 2 x TTL + 1 s (at least 10 s) by default; the default
/// retention, 600 s, is far beyond that).
pub fn delta_applied(
    d: &DeltaRecord,
    segments: &[&SegmentRecord],
    now_ts: u64,
    pending_import_ts: &[u64],
    retention: std::time::Duration,
) -> bool {
    let late_window = u64::try_from(retention.as_millis()).unwrap_or(u64::MAX >> 18) << 18;
    d.end_ts.saturating_add(late_window) < now_ts
        && pending_import_ts.iter().all(|t| *t >= d.end_ts)
        && segments
            .iter()
            .filter(|s| s.vchannel == d.vchannel)
            .all(|s| s.applied_delta_id >= d.id || s.start_ts >= d.end_ts)
}

/// Marks dropped (GC deletes them after `dropTolerance`) the delta records whose deletes
/// are applied to every row they could hide ([`delta_applied`]), conditioned on the
/// channel's segment records being the ones read.
pub async fn drop_applied_deltas(dc: &DataCoord, store: &FencedStore) -> Result<(), FenceError> {
    use crate::proto::datacoord::ImportState;
    let retention = dc.ctx.config.segment.compaction.delta_retention;
    let now = now_ms();
    let now_ts = (now.max(0) as u64) << 18;
    let mut work: Vec<(DeltaRecord, Vec<(String, i64)>)> = Vec::new();
    {
        let meta = dc.meta.read().expect("meta lock");
        let tolerance = dc.ctx.config.segment.gc_drop_tolerance;
        let mut by_channel: BTreeMap<&str, Vec<(&SegmentRecord, i64)>> = BTreeMap::new();
        for s in meta.segments() {
            if s.record.state() != SegmentState::Flushed {
                continue;
            }
            let of_channel = by_channel.entry(s.record.vchannel.as_str()).or_default();
            of_channel.push((&s.record, s.revision));
            // A querynode loading while the new segment's index is built loads the
            // segments it replaced instead: they need the deltas they were written
            // without (kept a margin longer than the querynodes' window).
            let r = &s.record;
            if !r.compacted_from.is_empty()
                && now - r.compacted_ms <= stand_in_window_ms(tolerance) + STAND_IN_CLOCK_MARGIN_MS
            {
                for id in &r.compacted_from {
                    if let Some(source) = meta.segment(*id) {
                        if !of_channel.iter().any(|(x, _)| x.id == *id) {
                            of_channel.push((&source.record, source.revision));
                        }
                    }
                }
            }
        }
        for d in meta.deltas() {
            if d.dropped_at_ms != 0 || meta.dropped().contains_key(&d.collection_id) {
                continue;
            }
            let segs = by_channel
                .get(d.vchannel.as_str())
                .cloned()
                .unwrap_or_default();
            let records: Vec<&SegmentRecord> = segs.iter().map(|(r, _)| *r).collect();
            let imports: Vec<u64> = meta
                .imports()
                .filter(|i| {
                    i.job.collection_id == d.collection_id
                        && matches!(
                            i.job.state(),
                            ImportState::ImportPending | ImportState::ImportRunning
                        )
                })
                .map(|i| i.job.timestamp)
                .collect();
            if delta_applied(d, &records, now_ts, &imports, retention) {
                let pins = segs
                    .iter()
                    .map(|(r, rev)| (dc.keys.segment(r.collection_id, r.partition_id, r.id), *rev))
                    .collect();
                work.push((d.clone(), pins));
            }
        }
    }
    for (mut d, pins) in work {
        d.dropped_at_ms = now;
        let when = pins
            .iter()
            .take(super::reconcile::BATCH)
            .map(|(k, rev)| Compare::mod_revision(k.clone(), CompareOp::Equal, *rev))
            .collect::<Vec<_>>();
        if pins.len() > when.len() {
            continue; // too many segments to pin in one txn: wait for compaction
        }
        let put = TxnOp::put(
            dc.keys.delta(d.collection_id, d.id),
            d.encode_to_vec(),
            None,
        );
        if store.write_if(when, vec![put]).await?.is_some() {
            log::info!(delta = d.id, collection = d.collection_id, channel = d.vchannel.as_str(),
                keys = d.num_rows; "delete record applied to every segment: dropped");
        }
    }
    Ok(())
}

/// Deletes the records of plans finished longer than `keep` ago (Milvus keeps them for
/// `dataCoord.compaction.dropTolerance`; here `dataCoord.gc.dropTolerance`).
pub async fn forget_finished(
    dc: &DataCoord,
    store: &FencedStore,
    keep_ms: i64,
) -> Result<(), FenceError> {
    let now = now_ms();
    let old: Vec<(String, i64)> = dc
        .meta
        .read()
        .expect("meta lock")
        .compactions()
        .filter(|p| {
            !is_live(&p.plan) && p.plan.finished_ms > 0 && now - p.plan.finished_ms > keep_ms
        })
        .map(|p| (dc.keys.compaction(p.plan.id), p.revision))
        .collect();
    for batch in old.chunks(super::reconcile::BATCH) {
        let when = batch
            .iter()
            .map(|(k, rev)| Compare::mod_revision(k.clone(), CompareOp::Equal, *rev))
            .collect();
        let ops = batch
            .iter()
            .map(|(k, _)| TxnOp::delete(k.clone(), None))
            .collect();
        store.write_if(when, ops).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> CompactionConfig {
        CompactionConfig {
            enabled: true,
            auto: true,
            trigger_interval: std::time::Duration::from_secs(60),
            min_segments: 3,
            single_ratio: 0.2,
            small_proportion: 0.5,
            delta_retention: std::time::Duration::from_secs(600),
        }
    }

    fn seg(id: i64, size: i64, rows: i64, ts: (u64, u64)) -> SegmentRecord {
        SegmentRecord {
            id,
            size_bytes: size,
            num_rows: rows,
            start_ts: ts.0,
            end_ts: ts.1,
            state: SegmentState::Flushed as i32,
            ..Default::default()
        }
    }

    #[test]
    fn small_segments_merge_into_plans_under_max_size_big_ones_stay() {
        let segs: Vec<SegmentRecord> = (1..=7)
            .map(|i| seg(i, if i == 4 { 900 } else { 300 }, 10, (i as u64, i as u64)))
            .collect();
        let refs: Vec<&SegmentRecord> = segs.iter().collect();
        let plans = plan_group(&refs, &[], 0, 1000, &config(), false);
        // Small (< 500): 1,2,3,5,6,7; bins of at most 1000 bytes: [1,2,3], [5,6,7].
        assert_eq!(
            plans,
            vec![
                (CompactionKind::CompactionMix, vec![1, 2, 3]),
                (CompactionKind::CompactionMix, vec![5, 6, 7]),
            ]
        );
        // Two small segments: merged only on a manual compaction.
        let two: Vec<&SegmentRecord> = refs[..2].to_vec();
        assert!(plan_group(&two, &[], 0, 1000, &config(), false).is_empty());
        assert_eq!(
            plan_group(&two, &[], 0, 1000, &config(), true),
            vec![(CompactionKind::CompactionMix, vec![1, 2])]
        );
    }

    #[test]
    fn automatic_merges_go_by_tiers_a_large_segment_waits_for_enough_small_ones() {
        let plan = |sizes: &[i64], manual: bool| {
            let segs: Vec<SegmentRecord> = sizes
                .iter()
                .enumerate()
                .map(|(i, b)| seg(i as i64 + 1, *b, 10, (i as u64, i as u64)))
                .collect();
            let refs: Vec<&SegmentRecord> = segs.iter().collect();
            plan_group(&refs, &[], 0, 10_000, &config(), manual)
        };
        let mix = |ids: Vec<i64>| vec![(CompactionKind::CompactionMix, ids)];
        // A segment of 600 bytes and three new ones of 10: only the new ones merge.
        assert_eq!(plan(&[600, 10, 10, 10], false), mix(vec![2, 3, 4]));
        // 50 bytes is at most twice the 30 of the new ones: all four merge.
        assert_eq!(plan(&[50, 10, 10, 10], false), mix(vec![2, 3, 4, 1]));
        // A lone tiny segment does not keep equal larger ones from merging.
        assert_eq!(plan(&[1, 10, 10, 10], false), mix(vec![2, 3, 4]));
        // A manual compaction merges every small segment, oldest first.
        assert_eq!(plan(&[600, 10, 10, 10], true), mix(vec![1, 2, 3, 4]));
    }

    #[test]
    fn a_delta_is_dropped_only_once_applied_everywhere_and_old_enough() {
        let retention = std::time::Duration::from_secs(600);
        let window = 600_000u64 << 18;
        let d = DeltaRecord {
            id: 10,
            vchannel: "v".into(),
            end_ts: 1000,
            ..Default::default()
        };
        let mut applied = seg(1, 100, 10, (500, 900));
        applied.vchannel = "v".into();
        applied.applied_delta_id = 10;
        let mut newer = seg(2, 100, 10, (1000, 2000));
        newer.vchannel = "v".into();
        let mut older = seg(3, 100, 10, (500, 900));
        older.vchannel = "v".into();
        let cp = 1001 + window;
        assert!(delta_applied(&d, &[&applied, &newer], cp, &[], retention));
        // A segment with rows older than its deletes that it was not applied to.
        assert!(!delta_applied(&d, &[&applied, &older], cp, &[], retention));
        // Not old enough.
        assert!(!delta_applied(
            &d,
            &[&applied],
            1000 + window,
            &[],
            retention
        ));
        // An unfinished import with older rows.
        assert!(!delta_applied(&d, &[&applied], cp, &[999], retention));
        assert!(delta_applied(&d, &[&applied], cp, &[1000], retention));
        // A segment a compaction replaced, written without it, that still stands in for
        // the compaction's new segment (passed by the caller) keeps it.
        let mut source = older.clone();
        source.set_state(SegmentState::Dropped);
        assert!(!delta_applied(&d, &[&applied, &source], cp, &[], retention));
    }

    #[test]
    fn deletes_and_expiry_past_the_threshold_rewrite_a_segment_once() {
        let mut s = seg(1, 900, 100, (100, 200));
        let d = |id, rows, end_ts| DeltaRecord {
            id,
            num_rows: rows,
            end_ts,
            ..Default::default()
        };
        let (d1, d2, old) = (d(10, 15, 300), d(11, 10, 400), d(5, 90, 50));
        // 25 of 100 rows deleted at most (the delta older than every row does not count).
        assert_eq!(removable_fraction(&s, &[&d1, &d2, &old], 0), 0.25);
        let refs = [&s];
        assert_eq!(
            plan_group(&refs, &[&d1, &d2, &old], 0, 1000, &config(), false),
            vec![(CompactionKind::CompactionSingle, vec![1])]
        );
        // Once rewritten with those deltas applied, they no longer count.
        s.applied_delta_id = 11;
        assert_eq!(removable_fraction(&s, &[&d1, &d2], 0), 0.0);
        // Half its time range expired.
        assert!((removable_fraction(&s, &[], 151) - 0.5).abs() < 0.01);
        // A manual compaction rewrites for any removable row; an automatic one waits.
        let few = d(12, 1, 500);
        let refs = [&s];
        assert!(plan_group(&refs, &[&few], 0, 1000, &config(), false).is_empty());
        assert_eq!(
            plan_group(&refs, &[&few], 0, 1000, &config(), true).len(),
            1
        );
    }
}
