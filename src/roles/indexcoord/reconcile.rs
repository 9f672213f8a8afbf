//! The active indexcoord's loop: a build record for every (live index, flushed segment
//! big enough), each unassigned, orphaned (its indexnode's session vanished) or failed
//! build (up to [`MAX_ATTEMPTS`]) given to a free live indexnode, and the builds and files
//! of dropped indexes and dropped segments removed. Every write is fenced and conditioned
//! on the revision it read.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use etcd_client::{Compare, CompareOp, TxnOp};
use prost::Message;

use super::IndexCoord;
use crate::meta::data::{sole_output, sources_may_stand_in, DataMeta};
use crate::meta::index::{Build, Builds};
use crate::meta::now_ms;
use crate::proto::common::IndexState;
use crate::proto::datacoord::SegmentRecord;
use crate::proto::indexcoord::{BuildRecord, BuildSeed, IndexRecord};
use crate::role::Role;
use crate::session::fenced::{FenceError, FencedStore};

/// Attempts a build gets (each on a live indexnode) before its failure is final.
pub const MAX_ATTEMPTS: u32 = 3;
const PASS_EVERY: Duration = Duration::from_millis(250);

/// Runs until the term ends: a pass as soon as an index definition, a build record or a
/// segment record changes (a finished build frees its indexnode for the next one at
/// once), and at least every [`PASS_EVERY`].
pub async fn run(ic: Arc<IndexCoord>, store: FencedStore) {
    let f = ic.followers();
    while store.term().is_valid() {
        // Read before the pass: a change during it starts the next one at once.
        let seen = (f.defs.applied(), f.builds.applied(), f.segments.applied());
        match pass(&ic, &store).await {
            Ok(()) => {}
            Err(PassError::Fence(FenceError::NotActive | FenceError::Fenced { .. })) => return,
            Err(e) => {
                log::warn!(error:% = e; "indexcoord pass failed, trying again");
                tokio::time::sleep(PASS_EVERY).await;
                continue;
            }
        }
        // Whichever applies a change first, or all three time out.
        tokio::select! {
            _ = f.defs.wait_applied(seen.0 + 1, PASS_EVERY) => {}
            _ = f.builds.wait_applied(seen.1 + 1, PASS_EVERY) => {}
            _ = f.segments.wait_applied(seen.2 + 1, PASS_EVERY) => {}
        }
    }
}

#[derive(Debug, thiserror::Error)]
enum PassError {
    #[error(transparent)]
    Fence(#[from] FenceError),
    #[error("{0}")]
    Other(String),
}

async fn pass(ic: &IndexCoord, store: &FencedStore) -> Result<(), PassError> {
    create_builds(ic, store).await?;
    assign(ic, store).await?;
    clean(ic, store).await
}

/// A build record for each (live index, live segment of at least the minimum rows) pair
/// that has none.
async fn create_builds(ic: &IndexCoord, store: &FencedStore) -> Result<(), PassError> {
    let min_rows = ic.ctx.config.segment.min_rows_to_index as i64;
    let missing: Vec<BuildRecord> = {
        let defs = ic.defs.read().expect("defs lock");
        let builds = ic.builds.read().expect("builds lock");
        let segments = ic.segments.read().expect("segments lock");
        let have: BTreeSet<(i64, i64)> = builds
            .all()
            .map(|b| (b.record.index_id, b.record.segment_id))
            .collect();
        defs.all()
            .filter(|d| d.dropped_at_ms == 0 && d.has_builds())
            .flat_map(|d| {
                segments
                    .live_segments(d.collection_id)
                    .into_iter()
                    .filter(|s| s.num_rows >= min_rows && !have.contains(&(d.id, s.id)))
                    .map(|s| {
                        let seeds = if grows_a_graph(d) {
                            seeds_of(&builds, d.id, s)
                        } else {
                            Vec::new()
                        };
                        BuildRecord {
                            index_id: d.id,
                            collection_id: d.collection_id,
                            partition_id: s.partition_id,
                            segment_id: s.id,
                            num_rows: s.num_rows,
                            state: IndexState::Unissued as i32,
                            insert_files: s.insert_files.clone(),
                            field_name: d.field_name.clone(),
                            seeds,
                            ..Default::default()
                        }
                    })
                    .collect::<Vec<_>>()
            })
            .collect()
    };
    if missing.is_empty() {
        return Ok(());
    }
    let first = ic
        .alloc_ids(missing.len() as u32)
        .await
        .map_err(PassError::Other)?;
    let f = ic.followers();
    let mut last = 0;
    for (i, mut b) in missing.into_iter().enumerate() {
        b.build_id = first + i as i64;
        let key = ic.keys.build(b.collection_id, b.segment_id, b.build_id);
        last = store
            .write(vec![TxnOp::put(key, b.encode_to_vec(), None)])
            .await?;
        log::info!(build = b.build_id, segment = b.segment_id, index = b.index_id,
            rows = b.num_rows, seeds = b.seeds.len(); "index build created");
    }
    // The next pass must see these, or it would create them again.
    f.builds.wait_applied(last, Duration::from_secs(10)).await;
    Ok(())
}

/// Whether builds of `d` make a graph another build can start from (HNSW, HNSW_SQ).
fn grows_a_graph(d: &IndexRecord) -> bool {
    !d.scalar
        && crate::index::params::flatten(&d.params)
            .and_then(|p| crate::index::params::parse(&p, d.vector_type()))
            .is_ok_and(|spec| spec.kind.has_graph())
}

/// The builds a build of `index` over `segment` starts from: of the sources a
/// compaction copied whole into `segment`, those with a finished build of `index` over
/// the same rows, largest first (the merge takes the largest's graph as it is, as Lucene
/// seeds a merge from its largest segment, and merges the others' into it).
fn seeds_of(builds: &Builds, index: i64, segment: &SegmentRecord) -> Vec<BuildSeed> {
    let mut seeds: Vec<BuildSeed> = segment
        .compacted_spans
        .iter()
        .filter_map(|span| {
            builds
                .all()
                .map(|b| &b.record)
                .find(|b| {
                    b.index_id == index
                        && b.segment_id == span.segment_id
                        && b.state() == IndexState::Finished
                        && b.num_rows == span.num_rows
                        && !b.index_files.is_empty()
                })
                .map(|b| BuildSeed {
                    build_id: b.build_id,
                    files: b.index_files.clone(),
                    first_row: span.first_row,
                    num_rows: b.num_rows,
                })
        })
        .collect();
    seeds.sort_by_key(|s| (std::cmp::Reverse(s.num_rows), s.build_id));
    seeds
}

/// Whether the build of a segment that is no longer live is still wanted as a seed: a
/// live segment a compaction copied its segment into has no decided build of its index
/// yet, and that build names it as a seed or is not created yet (so the seeds are not
/// chosen yet).
fn wanted_as_seed(
    r: &BuildRecord,
    builds: &Builds,
    live: &[&SegmentRecord],
    min_rows: i64,
) -> bool {
    live.iter()
        .filter(|s| {
            s.num_rows >= min_rows
                && s.compacted_spans
                    .iter()
                    .any(|span| span.segment_id == r.segment_id)
        })
        .any(|s| {
            let of = builds
                .all()
                .map(|b| &b.record)
                .find(|b| b.index_id == r.index_id && b.segment_id == s.id);
            match of {
                None => true,
                Some(b) => b.seeds.iter().any(|x| x.build_id == r.build_id) && !decided(b),
            }
        })
}

/// Whether compaction result `s` (one of `live`, its collection's live segments) is served
/// through its sources, as a querynode decides (`roles/querynode/shard.rs`, `stand_ins`):
/// the sole output of its compaction, its sources within their window, at least
/// `min_rows`, some live index (`indexes`) without a finished or failed build of it, and
/// every source of at least `min_rows` with a finished build of every live index.
#[allow(clippy::too_many_arguments)]
pub(super) fn served_by_sources(
    s: &SegmentRecord,
    live: &[&SegmentRecord],
    segments: &DataMeta,
    builds: &Builds,
    indexes: &BTreeSet<i64>,
    min_rows: i64,
    now: i64,
    tolerance: Duration,
) -> bool {
    sources_may_stand_in(s, now, tolerance)
        && sole_output(s, live)
        && s.num_rows >= min_rows
        && !builds.done(s.id, indexes, false)
        && segments.sources_of(s).is_some_and(|sources| {
            sources
                .iter()
                .all(|x| x.num_rows < min_rows || builds.done(x.id, indexes, true))
        })
}

/// Whether build `r`, of a segment a compaction replaced, may be loaded by a querynode in
/// place of the compaction's new segment: the new segment is its compaction's sole output,
/// within its sources' window, and some live index (`indexes`) has no finished or failed
/// build of it yet.
fn wanted_as_stand_in(
    r: &BuildRecord,
    builds: &Builds,
    live: &[&SegmentRecord],
    indexes: &BTreeSet<i64>,
    now: i64,
    tolerance: Duration,
) -> bool {
    live.iter().any(|s| {
        s.compacted_from.contains(&r.segment_id)
            && sources_may_stand_in(s, now, tolerance)
            && sole_output(s, live)
            && !builds.done(s.id, indexes, false)
    })
}

/// The live indexes of a collection that have builds (what a querynode loads).
pub(super) fn live_indexes(defs: &crate::meta::index::IndexDefs, collection: i64) -> BTreeSet<i64> {
    defs.with_builds(collection)
        .into_iter()
        .map(|d| d.id)
        .collect()
}

/// A build whose outcome is final: finished, or failed on its last attempt.
fn decided(b: &BuildRecord) -> bool {
    match b.state() {
        IndexState::Finished => true,
        IndexState::Failed => b.attempts >= MAX_ATTEMPTS,
        _ => false,
    }
}

/// Live indexnodes' ServerIDs.
fn live_indexnodes(ic: &IndexCoord) -> BTreeSet<i64> {
    ic.sessions
        .snapshot()
        .values()
        .filter(|s| s.value.server_name == Role::IndexNode.name() && !s.value.stopping)
        .map(|s| s.value.server_id)
        .collect()
}

/// The order waiting builds are given out in: first those whose segment nothing serves
/// indexed meanwhile, then the builds of compactions' new segments whose indexed sources
/// stand in for them (`stood_in`), each group oldest first. So a newly flushed segment is
/// not searched without an index for as long as a large merged segment's graph takes
/// (a build of 738,000 rows: minutes), and `create_index` reports Finished as soon as the
/// segments without stand-ins are built, whenever compaction merged the others.
fn in_assign_order(waiting: &mut [Build], stood_in: impl Fn(&BuildRecord) -> bool) {
    waiting.sort_by_cached_key(|b| (stood_in(&b.record), b.record.build_id));
}

/// Gives waiting builds to indexnodes without a build in progress, in
/// [`in_assign_order`].
async fn assign(ic: &IndexCoord, store: &FencedStore) -> Result<(), PassError> {
    let nodes = live_indexnodes(ic);
    if nodes.is_empty() {
        return Ok(());
    }
    let (mut busy, waiting) = {
        let defs = ic.defs.read().expect("defs lock");
        let builds = ic.builds.read().expect("builds lock");
        let segments = ic.segments.read().expect("segments lock");
        let mut busy: BTreeMap<i64, usize> = nodes.iter().map(|n| (*n, 0)).collect();
        let mut waiting = Vec::new();
        for b in builds.all() {
            let r = &b.record;
            match r.state() {
                IndexState::InProgress if nodes.contains(&r.node_id) => {
                    *busy.entry(r.node_id).or_default() += 1;
                }
                IndexState::InProgress | IndexState::Unissued | IndexState::Retry => {
                    waiting.push(b.clone())
                }
                IndexState::Failed if r.attempts < MAX_ATTEMPTS => waiting.push(b.clone()),
                _ => {}
            }
        }
        if waiting.is_empty() || busy.values().all(|n| *n > 0) {
            return Ok(());
        }
        // The segments stood in for, once per collection with waiting builds.
        let min_rows = ic.ctx.config.segment.min_rows_to_index as i64;
        let (now, tolerance) = (now_ms(), ic.ctx.config.segment.gc_drop_tolerance);
        let collections: BTreeSet<i64> = waiting.iter().map(|b| b.record.collection_id).collect();
        let stood_in: BTreeSet<i64> = collections
            .into_iter()
            .flat_map(|c| {
                let live = segments.live_segments(c);
                let indexes = live_indexes(&defs, c);
                live.iter()
                    .filter(|s| {
                        served_by_sources(
                            s, &live, &segments, &builds, &indexes, min_rows, now, tolerance,
                        )
                    })
                    .map(|s| s.id)
                    .collect::<Vec<_>>()
            })
            .collect();
        in_assign_order(&mut waiting, |r| stood_in.contains(&r.segment_id));
        (busy, waiting)
    };
    let mut last = 0;
    for b in waiting {
        let Some((&node, _)) = busy
            .iter()
            .filter(|(_, n)| **n == 0)
            .min_by_key(|(id, _)| **id)
        else {
            break;
        };
        let mut r = b.record.clone();
        let from = r.node_id;
        r.state = IndexState::InProgress as i32;
        r.node_id = node;
        r.attempts += 1;
        r.fail_reason.clear();
        let key = ic.keys.build(r.collection_id, r.segment_id, r.build_id);
        let when = vec![Compare::mod_revision(
            key.clone(),
            CompareOp::Equal,
            b.revision,
        )];
        if let Some(revision) = store
            .write_if(when, vec![TxnOp::put(key, r.encode_to_vec(), None)])
            .await?
        {
            busy.insert(node, 1);
            last = revision;
            log::info!(build = r.build_id, segment = r.segment_id, indexnode = node, previous = from,
                attempt = r.attempts; "index build assigned");
        }
    }
    // The next pass must see these assignments, or it would find the indexnode free and
    // give it a second build at once (two builds then share its cores).
    if last > 0 {
        ic.followers()
            .builds
            .wait_applied(last, Duration::from_secs(10))
            .await;
    }
    Ok(())
}

/// Removes the builds (files, then records) of dropped indexes and of segments that are
/// no longer live (once no merged segment's build may start from them and they may no
/// longer stand in for one), and dropped definitions with no build left.
async fn clean(ic: &IndexCoord, store: &FencedStore) -> Result<(), PassError> {
    let (gone_builds, gone_defs) = {
        let defs = ic.defs.read().expect("defs lock");
        let builds = ic.builds.read().expect("builds lock");
        let segments = ic.segments.read().expect("segments lock");
        let live_defs: BTreeSet<i64> = defs
            .all()
            .filter(|d| d.dropped_at_ms == 0)
            .map(|d| d.id)
            .collect();
        let min_rows = ic.ctx.config.segment.min_rows_to_index as i64;
        let (now, tolerance) = (now_ms(), ic.ctx.config.segment.gc_drop_tolerance);
        let gone: Vec<BuildRecord> = builds
            .all()
            .map(|b| &b.record)
            .filter(|r| {
                if !live_defs.contains(&r.index_id) {
                    return true;
                }
                let live = segments.live_segments(r.collection_id);
                !live.iter().any(|s| s.id == r.segment_id)
                    && !wanted_as_seed(r, &builds, &live, min_rows)
                    && !wanted_as_stand_in(
                        r,
                        &builds,
                        &live,
                        &live_indexes(&defs, r.collection_id),
                        now,
                        tolerance,
                    )
            })
            .cloned()
            .collect();
        let with_builds: BTreeSet<i64> = builds.all().map(|b| b.record.index_id).collect();
        let defs_gone: Vec<(i64, i64)> = defs
            .all()
            .filter(|d| d.dropped_at_ms != 0 && !with_builds.contains(&d.id))
            .map(|d| (d.collection_id, d.id))
            .collect();
        (gone, defs_gone)
    };
    for r in &gone_builds {
        for f in &r.index_files {
            ic.storage
                .delete(f)
                .await
                .map_err(|e| PassError::Other(e.to_string()))?;
        }
        let key = ic.keys.build(r.collection_id, r.segment_id, r.build_id);
        store.write(vec![TxnOp::delete(key, None)]).await?;
    }
    for (coll, id) in &gone_defs {
        store
            .write(vec![TxnOp::delete(ic.keys.def(*coll, *id), None)])
            .await?;
    }
    if !gone_builds.is_empty() || !gone_defs.is_empty() {
        log::info!(builds = gone_builds.len(), indexes = gone_defs.len(); "index builds of dropped indexes or segments removed");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::meta::follower::Mirror;
    use crate::meta::index::IndexKeys;
    use crate::proto::datacoord::CompactedSpan;

    fn builds(records: &[BuildRecord]) -> Builds {
        let keys = IndexKeys::new("m");
        let mut b = Builds::default();
        for r in records {
            let key = keys.build(r.collection_id, r.segment_id, r.build_id);
            b.apply_put(&keys, &key, &r.encode_to_vec(), 1).unwrap();
        }
        b
    }

    fn finished(build_id: i64, segment_id: i64, num_rows: i64) -> BuildRecord {
        BuildRecord {
            build_id,
            index_id: 7,
            segment_id,
            num_rows,
            state: IndexState::Finished as i32,
            index_files: vec![format!("index_files/{build_id}/index")],
            ..Default::default()
        }
    }

    #[test]
    fn builds_without_stand_ins_are_given_out_first_each_group_oldest_first() {
        let waiting = |ids: &[i64]| -> Vec<Build> {
            ids.iter()
                .map(|&id| Build {
                    record: BuildRecord {
                        build_id: id,
                        segment_id: 100 + id,
                        ..Default::default()
                    },
                    revision: id,
                })
                .collect()
        };
        // Builds 2 and 4 are of merged segments whose sources stand in for them.
        let mut w = waiting(&[1, 2, 3, 4, 5]);
        in_assign_order(&mut w, |r| r.segment_id == 102 || r.segment_id == 104);
        let order: Vec<i64> = w.iter().map(|b| b.record.build_id).collect();
        assert_eq!(order, [1, 3, 5, 2, 4]);
        let mut w = waiting(&[5, 3, 1]);
        in_assign_order(&mut w, |_| false);
        let order: Vec<i64> = w.iter().map(|b| b.record.build_id).collect();
        assert_eq!(order, [1, 3, 5]);
    }

    #[test]
    fn only_graph_indexes_name_seeds() {
        let def = |pairs: &[(&str, &str)], scalar: bool| IndexRecord {
            params: pairs
                .iter()
                .map(|(k, v)| crate::proto::common::KeyValuePair {
                    key: k.to_string(),
                    value: v.to_string(),
                })
                .collect(),
            scalar,
            ..Default::default()
        };
        let hnsw = [
            ("index_type", "HNSW"),
            ("metric_type", "L2"),
            ("M", "16"),
            ("efConstruction", "64"),
        ];
        assert!(grows_a_graph(&def(&hnsw, false)));
        assert!(
            grows_a_graph(&def(&[("metric_type", "COSINE")], false)),
            "AUTOINDEX"
        );
        let ivf = [
            ("index_type", "IVF_FLAT"),
            ("metric_type", "L2"),
            ("nlist", "8"),
        ];
        assert!(!grows_a_graph(&def(&ivf, false)));
        assert!(!grows_a_graph(&def(&[("index_type", "INVERTED")], true)));
    }

    #[test]
    fn finished_whole_sources_seed_largest_first_and_are_kept_until_the_merged_build_is_decided() {
        let span = |segment_id, first_row, num_rows| CompactedSpan {
            segment_id,
            first_row,
            num_rows,
        };
        // Segment 3 merged 1 (2,000 rows, at row 0) and 2 (3,000 rows, at 2,000).
        let merged = SegmentRecord {
            id: 3,
            num_rows: 5000,
            compacted_spans: vec![span(1, 0, 2000), span(2, 2000, 3000)],
            ..Default::default()
        };
        let sources = [finished(11, 1, 2000), finished(12, 2, 3000)];
        let b = builds(&sources);
        let seeds: Vec<(i64, i64)> = seeds_of(&b, 7, &merged)
            .iter()
            .map(|s| (s.build_id, s.first_row))
            .collect();
        assert_eq!(seeds, [(12, 2000), (11, 0)], "largest first");
        // Another index, or a source build of other rows, is no seed.
        assert!(seeds_of(&b, 8, &merged).is_empty());
        let b = builds(&[finished(11, 1, 2000), finished(12, 2, 2999)]);
        let seeds: Vec<i64> = seeds_of(&b, 7, &merged)
            .iter()
            .map(|s| s.build_id)
            .collect();
        assert_eq!(seeds, [11]);
        // Unfinished builds are no seeds.
        let mut unfinished = finished(12, 2, 3000);
        unfinished.state = IndexState::InProgress as i32;
        let b = builds(&[finished(11, 1, 2000), unfinished]);
        assert_eq!(seeds_of(&b, 7, &merged).len(), 1);

        let live = [&merged];
        // No build of the merged segment yet: every whole source is kept.
        let b = builds(&sources);
        assert!(sources.iter().all(|s| wanted_as_seed(s, &b, &live, 1024)));
        // Its build names 12 only (11 was not finished then): 11 goes, 12 stays until the
        // build is decided.
        let mut build = BuildRecord {
            build_id: 13,
            index_id: 7,
            segment_id: 3,
            seeds: vec![BuildSeed {
                build_id: 12,
                ..Default::default()
            }],
            state: IndexState::InProgress as i32,
            ..Default::default()
        };
        let b = builds(&[sources[0].clone(), sources[1].clone(), build.clone()]);
        assert!(!wanted_as_seed(&sources[0], &b, &live, 1024));
        assert!(wanted_as_seed(&sources[1], &b, &live, 1024));
        build.state = IndexState::Failed as i32;
        build.attempts = 1;
        let b = builds(&[sources[1].clone(), build.clone()]);
        assert!(wanted_as_seed(&sources[1], &b, &live, 1024), "retried");
        build.attempts = MAX_ATTEMPTS;
        let b = builds(&[sources[1].clone(), build.clone()]);
        assert!(
            !wanted_as_seed(&sources[1], &b, &live, 1024),
            "failed for good"
        );
        build.state = IndexState::Finished as i32;
        let b = builds(&[sources[1].clone(), build]);
        assert!(!wanted_as_seed(&sources[1], &b, &live, 1024), "finished");
        // A merged segment too small for a build keeps nothing.
        let b = builds(&sources);
        assert!(!wanted_as_seed(&sources[1], &b, &live, 6000));
    }
}
