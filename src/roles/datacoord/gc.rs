//! Garbage collection of segment files, every `dataCoord.gc.interval`:
//! - a file under `insert_log/` or `delta_log/` that no record names (a datanode wrote
//!   it but crashed or lost its channel before registering it) is deleted once older
//!   than `dataCoord.gc.missingTolerance`;
//! - a Dropped segment's (or a dropped collection's delta's) files are deleted
//!   `dataCoord.gc.dropTolerance` after the drop, then its record;
//! - in a local store, the staging file of any write that was cut off (a process killed
//!   mid-write) is deleted once not written to for `dataCoord.gc.missingTolerance`
//!   ([`Storage::remove_cut_off_writes`]; a writer's registration window is shorter).
//!
//! The listing is taken before the records are read, so a file registered in between
//! counts as named; and a file's age is measured when the records are read, so a file
//! registered after that was older than the tolerance when it was registered, which its
//! writer does not do (invariant GC1 in `crate::storage`).

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use etcd_client::TxnOp;

use super::DataCoord;
use crate::meta::data::{DELTA_LOG, INSERT_LOG};
use crate::proto::datacoord::SegmentState;
use crate::session::fenced::{FenceError, FencedStore};
use crate::storage::{older_at, Storage, StorageError};

/// Why a collection pass stopped.
#[derive(Debug, thiserror::Error)]
enum GcError {
    #[error(transparent)]
    Fence(#[from] FenceError),
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// Runs until the term ends.
pub async fn run(dc: Arc<DataCoord>, store: FencedStore, storage: Storage) {
    let every = dc.ctx.config.segment.gc_interval;
    loop {
        tokio::time::sleep(every).await;
        if !store.term().is_valid() {
            return;
        }
        match collect(&dc, &store, &storage).await {
            Ok((files, records)) if files + records > 0 => {
                log::info!(files = files, records = records; "garbage collected")
            }
            Ok(_) => {}
            Err(GcError::Fence(FenceError::NotActive | FenceError::Fenced { .. })) => return,
            Err(e) => {
                log::warn!(error:% = e; "garbage collection failed, trying at the next interval")
            }
        }
    }
}

fn older_than(t: SystemTime, age: Duration) -> bool {
    older_at(SystemTime::now(), t, age)
}

fn dropped_long_ago(dropped_at_ms: i64, age: Duration) -> bool {
    let at = SystemTime::UNIX_EPOCH + Duration::from_millis(dropped_at_ms.max(0) as u64);
    dropped_at_ms > 0 && older_than(at, age)
}

async fn collect(
    dc: &DataCoord,
    store: &FencedStore,
    storage: &Storage,
) -> Result<(usize, usize), GcError> {
    let cfg = &dc.ctx.config.segment;
    let mut listed = storage.list_with_times(INSERT_LOG).await?;
    listed.extend(storage.list_with_times(DELTA_LOG).await?);
    let read_at = SystemTime::now();
    let (named, expired_segments, expired_deltas) = {
        let meta = dc.meta.read().expect("meta lock");
        let segs: Vec<(String, Vec<String>)> = meta
            .segments()
            .map(|s| &s.record)
            .filter(|r| {
                r.state() == SegmentState::Dropped
                    && dropped_long_ago(r.dropped_at_ms, cfg.gc_drop_tolerance)
            })
            .map(|r| {
                (
                    dc.keys.segment(r.collection_id, r.partition_id, r.id),
                    r.insert_files.clone(),
                )
            })
            .collect();
        let deltas: Vec<(String, Vec<String>)> = meta
            .deltas()
            .filter(|d| dropped_long_ago(d.dropped_at_ms, cfg.gc_drop_tolerance))
            .map(|d| (dc.keys.delta(d.collection_id, d.id), vec![d.path.clone()]))
            .collect();
        (meta.referenced_files(), segs, deltas)
    };
    let mut files = 0;
    for (key, written) in listed {
        if !named.contains(&key) && older_at(read_at, written, cfg.gc_missing_tolerance) {
            log::info!(file = key.as_str(); "deleting a file no segment names");
            storage.delete(&key).await?;
            files += 1;
        }
    }
    for key in storage
        .remove_cut_off_writes(cfg.gc_missing_tolerance)
        .await?
    {
        log::info!(file = key.as_str(); "deleted the staging file of a write that was cut off");
        files += 1;
    }
    let mut records = 0;
    for batch in [expired_segments, expired_deltas]
        .concat()
        .chunks(super::reconcile::BATCH)
    {
        for (_, paths) in batch {
            for p in paths {
                storage.delete(p).await?;
                files += 1;
            }
        }
        let ops = batch
            .iter()
            .map(|(k, _)| TxnOp::delete(k.clone(), None))
            .collect();
        store.write(ops).await?;
        records += batch.len();
    }
    // A dropped collection's marker goes once nothing of it is left.
    let done: Vec<String> = {
        let meta = dc.meta.read().expect("meta lock");
        let left = meta.collections();
        meta.dropped()
            .iter()
            .filter(|(c, at)| !left.contains(c) && dropped_long_ago(**at, cfg.gc_drop_tolerance))
            .map(|(c, _)| dc.keys.dropped(*c))
            .collect()
    };
    if !done.is_empty() {
        let ops = done.into_iter().map(|k| TxnOp::delete(k, None)).collect();
        store.write(ops).await?;
    }
    Ok((files, records))
}
