//! The active querycoord's loop: every shard (replica x virtual channel) of every loaded
//! collection has a live querynode, the replicas of one channel on different querynodes
//! when there are enough (least loaded first); a loaded collection that was dropped is
//! released. Writes are fenced and conditioned on the revision they read.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use etcd_client::{Compare, CompareOp, DeleteOptions, TxnOp};
use prost::Message;

use super::QueryCoord;
use crate::meta::query::assignment_rest;
use crate::proto::querycoord::{LoadInfo, ShardAssignment};
use crate::session::fenced::{FenceError, FencedStore};

/// How often the loop looks again.
const PASS_EVERY: Duration = Duration::from_millis(250);

/// Runs until the term ends.
pub async fn run(qc: Arc<QueryCoord>, store: FencedStore) {
    let mut warned = false;
    while store.term().is_valid() {
        match pass(&qc, &store, &mut warned).await {
            Ok(()) => {}
            Err(FenceError::NotActive | FenceError::Fenced { .. }) => return,
            Err(e) => log::warn!(error:% = e; "querycoord pass failed, trying again"),
        }
        tokio::time::sleep(PASS_EVERY).await;
    }
}

async fn pass(qc: &QueryCoord, store: &FencedStore, warned: &mut bool) -> Result<(), FenceError> {
    release_dropped(qc, store).await?;
    assign(qc, store, warned).await
}

/// Shards per querynode now.
pub(super) fn load_per_node(qc: &QueryCoord, nodes: &BTreeSet<i64>) -> BTreeMap<i64, usize> {
    let mut load: BTreeMap<i64, usize> = nodes.iter().map(|n| (*n, 0)).collect();
    for (_, a) in qc.assignments.read().expect("assignments lock").all() {
        if let Some(n) = load.get_mut(&a.value.node_id) {
            *n += 1;
        }
    }
    load
}

/// The least loaded node of `load` not in `taken`.
pub(super) fn pick(load: &BTreeMap<i64, usize>, taken: &BTreeSet<i64>) -> Option<i64> {
    load.iter()
        .filter(|(n, _)| !taken.contains(n))
        .min_by_key(|(id, n)| (**n, **id))
        .map(|(id, _)| *id)
}

/// Gives every shard without a live querynode to one.
async fn assign(qc: &QueryCoord, store: &FencedStore, warned: &mut bool) -> Result<(), FenceError> {
    let nodes: BTreeSet<i64> = qc.live_querynodes().into_keys().collect();
    let infos: Vec<LoadInfo> = qc
        .loads
        .read()
        .expect("loads lock")
        .all()
        .map(|(_, r)| r.value.clone())
        .collect();
    let mut load = load_per_node(qc, &nodes);
    let mut waiting = 0;
    for info in infos {
        for vch in &info.vchannels {
            // The nodes serving this channel in the collection's replicas.
            let current: Vec<(i32, i64, i64)> = {
                let assignments = qc.assignments.read().expect("assignments lock");
                (0..info.replica_number.max(1))
                    .map(|r| {
                        let a = assignments.get(&assignment_rest(info.collection_id, r, vch));
                        (
                            r,
                            a.map_or(0, |a| a.value.node_id),
                            a.map_or(0, |a| a.revision),
                        )
                    })
                    .collect()
            };
            let mut taken: BTreeSet<i64> = current
                .iter()
                .map(|(_, n, _)| *n)
                .filter(|n| nodes.contains(n))
                .collect();
            for (replica, node, revision) in current {
                if nodes.contains(&node) {
                    continue;
                }
                let Some(to) = pick(&load, &taken) else {
                    waiting += 1;
                    continue;
                };
                let key = qc.keys.assignment(info.collection_id, replica, vch);
                let record = ShardAssignment {
                    collection_id: info.collection_id,
                    replica,
                    vchannel: vch.clone(),
                    node_id: to,
                    epoch: store.term().epoch,
                };
                let when = vec![Compare::mod_revision(
                    key.clone(),
                    CompareOp::Equal,
                    revision,
                )];
                let put = TxnOp::put(key, record.encode_to_vec(), None);
                if store.write_if(when, vec![put]).await?.is_some() {
                    taken.insert(to);
                    *load.entry(to).or_default() += 1;
                    if node == 0 {
                        log::info!(collection = info.collection_id, replica = replica, channel = vch.as_str(),
                            querynode = to; "shard assigned to querynode");
                    } else {
                        log::info!(collection = info.collection_id, replica = replica, channel = vch.as_str(),
                            from = node, to = to; "querynode session gone: shard moved to another querynode");
                    }
                }
            }
        }
    }
    if waiting > 0 && !*warned {
        log::warn!(shards = waiting, querynodes = nodes.len();
            "not enough live querynodes: shards wait for one (a channel's replicas never share a querynode)");
        *warned = true;
    } else if waiting == 0 {
        *warned = false;
    }
    Ok(())
}

/// Releases the loads of collections no longer in the catalog.
async fn release_dropped(qc: &QueryCoord, store: &FencedStore) -> Result<(), FenceError> {
    let applied = qc
        .followers
        .lock()
        .expect("followers lock")
        .as_ref()
        .map_or(0, |f| f.catalog.applied());
    let gone: Vec<(i64, i64)> = {
        let catalog = qc.catalog.read().expect("catalog lock");
        qc.loads
            .read()
            .expect("loads lock")
            .all()
            .filter(|(_, r)| {
                catalog.collection_by_id(r.value.collection_id).is_none() && r.revision <= applied
            })
            .map(|(_, r)| (r.value.collection_id, r.revision))
            .collect()
    };
    for (coll, revision) in gone {
        if store
            .write_if(
                vec![Compare::mod_revision(
                    qc.keys.load(coll),
                    CompareOp::Equal,
                    revision,
                )],
                release_ops(qc, coll),
            )
            .await?
            .is_some()
        {
            log::info!(collection = coll; "collection dropped: released");
        }
    }
    Ok(())
}

/// The deletes that release a collection: its load info and every assignment.
pub(super) fn release_ops(qc: &QueryCoord, coll: i64) -> Vec<TxnOp> {
    vec![
        TxnOp::delete(qc.keys.load(coll), None),
        TxnOp::delete(
            format!("{}{coll}/", qc.keys.assignments),
            Some(DeleteOptions::new().with_prefix()),
        ),
    ]
}
