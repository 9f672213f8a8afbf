//! The active datacoord's loop: every virtual channel of every collection has a live
//! datanode consuming it (least loaded first; a datanode whose session vanished loses
//! its channels to the others), and a dropped collection's channels are released and its
//! segments marked Dropped. Every write is fenced and conditioned on what was read, so a
//! pass that raced with another write changes nothing and the next pass sees the new
//! state.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use etcd_client::{Compare, CompareOp, TxnOp};
use prost::Message;

use super::DataCoord;
use crate::meta::now_ms;
use crate::proto::datacoord::{ChannelWatch, SegmentState};
use crate::role::Role;
use crate::schema::properties;
use crate::session::fenced::{FenceError, FencedStore};

/// How often the loop looks again (also how soon a new collection gets a datanode).
const PASS_EVERY: Duration = Duration::from_millis(250);
/// Records changed per txn (etcd allows 128 operations in one).
pub(super) const BATCH: usize = 64;

/// Runs until the term ends.
pub async fn run(dc: Arc<DataCoord>, store: FencedStore) {
    let mut no_nodes_warned = false;
    while store.term().is_valid() {
        match pass(&dc, &store, &mut no_nodes_warned).await {
            Ok(()) => {}
            Err(FenceError::NotActive | FenceError::Fenced { .. }) => return,
            Err(e) => log::warn!(error:% = e; "datacoord pass failed, trying again"),
        }
        tokio::time::sleep(PASS_EVERY).await;
    }
}

/// The ServerIDs of live datanodes.
fn live_datanodes(dc: &DataCoord) -> BTreeSet<i64> {
    dc.sessions
        .snapshot()
        .values()
        .filter(|s| s.value.server_name == Role::DataNode.name() && !s.value.stopping)
        .map(|s| s.value.server_id)
        .collect()
}

async fn pass(dc: &DataCoord, store: &FencedStore, warned: &mut bool) -> Result<(), FenceError> {
    assign(dc, store, warned).await?;
    assign_imports(dc, store).await?;
    super::compaction::assign(dc, store, &live_datanodes(dc)).await?;
    super::compaction::drop_applied_deltas(dc, store).await?;
    super::compaction::forget_finished(
        dc,
        store,
        dc.ctx.config.segment.gc_drop_tolerance.as_millis() as i64,
    )
    .await?;
    release_dropped(dc, store).await?;
    mark_dropped(dc, store).await
}

/// Gives every unowned channel (or one owned by a vanished datanode) to the least loaded
/// live datanode.
async fn assign(dc: &DataCoord, store: &FencedStore, warned: &mut bool) -> Result<(), FenceError> {
    let nodes = live_datanodes(dc);
    let wanted: Vec<(String, i64)> = {
        let catalog = dc.catalog.read().expect("catalog lock");
        catalog
            .all_collections()
            .flat_map(|c| {
                c.virtual_channel_names
                    .iter()
                    .map(move |v| (v.clone(), c.id))
            })
            .collect()
    };
    let mut load: BTreeMap<i64, usize> = nodes.iter().map(|n| (*n, 0)).collect();
    let mut moves = Vec::new();
    {
        let channels = dc.channels.read().expect("channels lock");
        for w in channels.all() {
            if let Some(n) = load.get_mut(&w.record.node_id) {
                *n += 1;
            }
        }
        for (vch, coll) in wanted {
            match channels.get(&vch) {
                Some(w) if nodes.contains(&w.record.node_id) => {}
                Some(w) => moves.push((vch, coll, w.revision, Some(w.record.node_id))),
                None => moves.push((vch, coll, 0, None)),
            }
        }
    }
    if moves.is_empty() {
        return Ok(());
    }
    if nodes.is_empty() {
        if !*warned {
            log::warn!(channels = moves.len(); "no datanode is running: channels wait for one");
            *warned = true;
        }
        return Ok(());
    }
    *warned = false;
    for (vch, coll, revision, from) in moves {
        let Some((&node, _)) = load.iter().min_by_key(|(id, n)| (**n, **id)) else {
            break;
        };
        let key = dc.keys.watch(&vch);
        let record = ChannelWatch {
            vchannel: vch.clone(),
            collection_id: coll,
            node_id: node,
            epoch: store.term().epoch,
        };
        let when = vec![Compare::mod_revision(
            key.clone(),
            CompareOp::Equal,
            revision,
        )];
        let put = TxnOp::put(key, record.encode_to_vec(), None);
        if store.write_if(when, vec![put]).await?.is_some() {
            *load.entry(node).or_default() += 1;
            match from {
                Some(old) => log::info!(channel = vch.as_str(), from = old, to = node;
                    "datanode session gone: channel moved to another datanode"),
                None => {
                    log::info!(channel = vch.as_str(), datanode = node; "channel assigned to datanode")
                }
            }
        }
    }
    Ok(())
}

/// How many datanodes may die running one import job before it is failed.
const IMPORT_ATTEMPTS: i32 = 3;

/// Gives each Pending import job (or a Running one whose datanode's session is gone) to
/// the live datanode running the fewest imports, conditioned on the job being unchanged;
/// a job whose datanodes died `IMPORT_ATTEMPTS` times is failed. An unfinished job whose
/// collection or partition was dropped is failed too (which changes its record, so its
/// datanode can no longer register anything for it); "dropped" only once the catalog has
/// applied past the job's record, so a catalog that lags is never taken for a drop.
async fn assign_imports(dc: &DataCoord, store: &FencedStore) -> Result<(), FenceError> {
    use crate::proto::datacoord::ImportState;
    let nodes = live_datanodes(dc);
    let applied = dc
        .followers
        .lock()
        .expect("followers lock")
        .as_ref()
        .map_or(0, |f| f.catalog.applied());
    let (todo, mut load) = {
        // Catalog before meta, as everywhere in the datacoord: std's RwLock queues new
        // readers behind a waiting writer, so two orders can deadlock.
        let catalog = dc.catalog.read().expect("catalog lock");
        let meta = dc.meta.read().expect("meta lock");
        let mut load: BTreeMap<i64, usize> = nodes.iter().map(|n| (*n, 0)).collect();
        let mut todo = Vec::new();
        for i in meta.imports() {
            let j = &i.job;
            if !matches!(
                j.state(),
                ImportState::ImportPending | ImportState::ImportRunning
            ) {
                continue;
            }
            let gone = match catalog.collection_by_id(j.collection_id) {
                None => Some(format!("collection {} was dropped", j.collection_name)),
                Some(c) if !c.partitions.iter().any(|p| p.id == j.partition_id) => {
                    Some(format!("partition {} was dropped", j.partition_name))
                }
                Some(_) => None,
            }
            .filter(|_| i.revision <= applied);
            match (j.state(), gone) {
                (_, Some(why)) => todo.push((i.clone(), Some(why))),
                (ImportState::ImportRunning, None) if nodes.contains(&j.node_id) => {
                    *load.entry(j.node_id).or_default() += 1;
                }
                _ => todo.push((i.clone(), None)),
            }
        }
        (todo, load)
    };
    for (i, dropped) in todo {
        let mut job = i.job;
        let gone = job.node_id;
        if dropped.is_some() || job.attempts >= IMPORT_ATTEMPTS {
            job.state = ImportState::ImportFailed as i32;
            job.reason = dropped.unwrap_or_else(|| {
                format!(
                    "{} datanodes running it stopped before it finished",
                    job.attempts
                )
            });
            job.finished_ms = crate::meta::now_ms();
            job.node_id = 0;
        } else {
            let Some((&node, _)) = load.iter().min_by_key(|(id, n)| (**n, **id)) else {
                continue; // no datanode yet: the job waits
            };
            job.state = ImportState::ImportRunning as i32;
            job.node_id = node;
            job.attempts += 1;
            *load.entry(node).or_default() += 1;
        }
        let key = dc.keys.import(job.id);
        let when = vec![Compare::mod_revision(
            key.clone(),
            CompareOp::Equal,
            i.revision,
        )];
        let put = TxnOp::put(key, job.encode_to_vec(), None);
        if store.write_if(when, vec![put]).await?.is_some() {
            log::info!(job = job.id, collection = job.collection_name.as_str(), state = job.state().as_str_name(),
                datanode = job.node_id, previous_datanode = gone, attempt = job.attempts, reason = job.reason.as_str();
                "import job state changed");
        }
    }
    Ok(())
}

/// For each collection no longer in the catalog: marks it dropped and releases its
/// channels (assignments and checkpoints) in one txn, so no datanode registers anything
/// for it afterwards.
async fn release_dropped(dc: &DataCoord, store: &FencedStore) -> Result<(), FenceError> {
    let applied = dc
        .followers
        .lock()
        .expect("followers lock")
        .as_ref()
        .map_or(0, |f| f.catalog.applied());
    let mut gone: BTreeMap<i64, Vec<(String, i64)>> = BTreeMap::new();
    {
        let catalog = dc.catalog.read().expect("catalog lock");
        let channels = dc.channels.read().expect("channels lock");
        for w in channels.all() {
            let coll = w.record.collection_id;
            // The assignment was written after its collection was seen in the catalog: a
            // catalog that has applied past it and lacks the collection saw it dropped.
            if catalog.collection_by_id(coll).is_none() && w.revision <= applied {
                gone.entry(coll)
                    .or_default()
                    .push((w.record.vchannel.clone(), w.revision));
            }
        }
    }
    for (coll, watches) in gone {
        let mut when = Vec::new();
        let mut ops = vec![TxnOp::put(
            dc.keys.dropped(coll),
            now_ms().to_string(),
            None,
        )];
        for (vch, rev) in &watches {
            let key = dc.keys.watch(vch);
            when.push(Compare::mod_revision(key.clone(), CompareOp::Equal, *rev));
            ops.push(TxnOp::delete(key, None));
            ops.push(TxnOp::delete(dc.keys.checkpoint(vch), None));
        }
        if store.write_if(when, ops).await?.is_some() {
            log::info!(collection = coll, channels = watches.len(); "collection dropped: channels released");
        }
    }
    Ok(())
}

/// Marks Dropped the live segments and deltas of dropped collections, the segments of
/// partitions the catalog no longer has, and the segments whose every row has expired
/// (written before the collection's TTL: its newest row is older than the TTL, so every
/// search and query already skips all of its rows; GC then deletes its files).
async fn mark_dropped(dc: &DataCoord, store: &FencedStore) -> Result<(), FenceError> {
    let now = now_ms();
    let mut ops = Vec::new();
    let mut expired = 0usize;
    {
        let catalog = dc.catalog.read().expect("catalog lock");
        let meta = dc.meta.read().expect("meta lock");
        let dropped = meta.dropped();
        for s in meta.segments() {
            let r = &s.record;
            if r.state() == SegmentState::Dropped {
                continue;
            }
            let drop = dropped.contains_key(&r.collection_id)
                || catalog.collection_by_id(r.collection_id).is_some_and(|c| {
                    // The collection record was written after the segment and has no
                    // such partition: the partition was dropped.
                    catalog.collection_revision(c.id) >= s.revision
                        && !c.partitions.iter().any(|p| p.id == r.partition_id)
                });
            let expire_before = catalog.collection_by_id(r.collection_id).map_or(0, |c| {
                properties::expire_before(properties::ttl(&c.properties), now.max(0) as u64)
            });
            let all_expired = r.state() == SegmentState::Flushed && r.end_ts < expire_before;
            if all_expired && !drop {
                expired += 1;
            }
            if drop || all_expired {
                let mut r = r.clone();
                r.set_state(SegmentState::Dropped);
                r.dropped_at_ms = now;
                let key = dc.keys.segment(r.collection_id, r.partition_id, r.id);
                ops.push((key, r.encode_to_vec(), s.revision));
            }
        }
        for d in meta.deltas() {
            if d.dropped_at_ms == 0 && dropped.contains_key(&d.collection_id) {
                let mut d = d.clone();
                d.dropped_at_ms = now;
                ops.push((dc.keys.delta(d.collection_id, d.id), d.encode_to_vec(), 0));
            }
        }
    }
    if ops.is_empty() {
        return Ok(());
    }
    let count = ops.len();
    for batch in ops.chunks(BATCH) {
        let when = batch
            .iter()
            .filter(|(_, _, rev)| *rev > 0)
            .map(|(k, _, rev)| Compare::mod_revision(k.clone(), CompareOp::Equal, *rev))
            .collect();
        let puts = batch
            .iter()
            .map(|(k, v, _)| TxnOp::put(k.clone(), v.clone(), None))
            .collect();
        store.write_if(when, puts).await?;
    }
    if expired > 0 {
        log::info!(segments = expired; "segments whose rows have all expired (collection TTL) marked Dropped");
    }
    if count > expired {
        log::info!(records = count - expired; "segments of dropped collections or partitions marked Dropped");
    }
    Ok(())
}
