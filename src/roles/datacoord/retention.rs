//! Log retention: the active datacoord deletes from each physical channel's stream the
//! messages no reader can still need, so the log holds what is not yet persisted plus
//! what readers are still reading, not everything ever written.
//!
//! A channel's **floor** (the lowest sequence anyone may still need) is the least of:
//! - for each shard on the channel (the catalog's, and every one with messages in the
//!   stream) except those of collections known to be dropped: its first message after
//!   its datanode checkpoint (none: no bound). Everything of a shard at or below its
//!   checkpoint is in registered segments: a datanode that takes the shard over reads
//!   from checkpoint + 1, a querynode loads those segments and drops its growing rows up
//!   to the checkpoint (a shard with no checkpoint yet has checkpoint 0);
//! - for each reader the server knows (datanode and querynode consumers, a reader
//!   catching up): the first sequence it has not been sent (readers of collections
//!   known to be dropped, which the server keeps for 30 s after their last pull, need
//!   nothing);
//! - the stream's last sequence + 1 (nothing else is needed).
//!
//! Messages below a sequence are deleted only once every floor computed over the last
//! `dataCoord.logRetention.grace` seconds (10 by default) was at or above it: the purge
//! point trails the floors by the grace and never passes the lowest of them. The grace
//! covers a reader between two consumers (reconnecting), a collection the catalog
//! follower learns of late, and messages a client has been sent but not yet handled.
//!
//! Safety: a datanode never needs a message at or below its shard's checkpoint, and the
//! floor never passes a shard's first message after its checkpoint, so no acknowledged
//! write is lost to retention whatever crashes (a message published after a floor was
//! computed has a higher sequence than every floor of that pass). A querynode whose reader
//! vanished for longer than the grace may find the messages it had not read deleted;
//! every one of them is at or below its shard's checkpoint, so it reads them from the
//! segments at its next refresh. A new active datacoord starts with no history: it
//! deletes nothing for one grace.

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::DataCoord;
use crate::session::fenced::FencedStore;
use crate::wal::{self, Wal, WalError};

/// Runs until the term ends.
pub async fn run(dc: Arc<DataCoord>, store: FencedStore) {
    let log = dc.ctx.config.log.clone();
    if !log.retention {
        return;
    }
    let every = (log.retention_grace / 4).clamp(Duration::from_millis(500), Duration::from_secs(5));
    let pchannels: Vec<String> = (0..log.dml_channels)
        .map(|n| wal::pchannel_name(&log.cluster_prefix, &log.dml_prefix, n))
        .collect();
    let mut history: HashMap<String, VecDeque<(Instant, u64)>> = HashMap::new();
    let mut conn: Option<Wal> = None;
    loop {
        tokio::time::sleep(every).await;
        if !store.term().is_valid() {
            return;
        }
        let w = match &conn {
            Some(w) => w.clone(),
            None => match Wal::for_config(&log, wal::connection_name("datacoord")).await {
                Ok(w) => conn.insert(w).clone(),
                Err(e) => {
                    log::warn!(error:% = e; "log retention cannot reach the log, trying again");
                    continue;
                }
            },
        };
        let (shards, dropped) = known_shards(&dc);
        for pchannel in &pchannels {
            let h = history.entry(pchannel.clone()).or_default();
            if let Err(e) = pass(
                &dc,
                &w,
                pchannel,
                (&shards, &dropped),
                h,
                log.retention_grace,
            )
            .await
            {
                // The floor is unknown: forget the window, so a purge needs a whole
                // grace of known floors again.
                h.clear();
                log::debug!(channel = pchannel.as_str(), error:% = e; "log retention skipped a channel");
            }
        }
    }
}

/// The shards of every collection in the catalog that is not dropped, and the IDs of
/// the dropped collections.
fn known_shards(dc: &DataCoord) -> (BTreeSet<String>, BTreeSet<i64>) {
    let catalog = dc.catalog.read().expect("catalog lock");
    let meta = dc.meta.read().expect("meta lock");
    let dropped: BTreeSet<i64> = meta.dropped().keys().copied().collect();
    let live = catalog
        .all_collections()
        .filter(|c| !dropped.contains(&c.id))
        .flat_map(|c| c.virtual_channel_names.iter().cloned())
        .collect();
    (live, dropped)
}

/// One channel: its floor now, then the purge the window allows.
async fn pass(
    dc: &DataCoord,
    w: &Wal,
    pchannel: &str,
    (shards, dropped): (&BTreeSet<String>, &BTreeSet<i64>),
    history: &mut VecDeque<(Instant, u64)>,
    grace: Duration,
) -> Result<(), WalError> {
    let state = w.channel_state(pchannel).await?;
    let mut floor = state.last_sequence + 1;
    // A shard of a collection known to be dropped needs nothing; every other shard (the
    // catalog's, and any with messages in the stream, so a collection this datacoord's
    // catalog has not seen yet is bounded too) holds the floor at its first message
    // after its checkpoint, and its readers at what they have not been sent.
    let is_dropped = |v: &str| wal::collection_of(v).is_some_and(|c| dropped.contains(&c));
    for (shard, p) in w.reader_positions(pchannel).await? {
        if !shard.as_deref().is_some_and(is_dropped) {
            floor = floor.min(p);
        }
    }
    let mut bounded: BTreeSet<String> = shards
        .iter()
        .filter(|v| wal::pchannel_of(v) == pchannel)
        .cloned()
        .collect();
    bounded.extend(w.shards_with_messages(pchannel).await?);
    bounded.retain(|v| !is_dropped(v));
    let checkpoints: Vec<(String, u64)> = {
        let meta = dc.meta.read().expect("meta lock");
        bounded
            .into_iter()
            .map(|v| {
                let cp = meta.checkpoint(&v).map_or(0, |c| c.sequence);
                (v, cp)
            })
            .collect()
    };
    for (vchannel, checkpoint) in checkpoints {
        // Only a shard that could lower the floor is asked for its first unpersisted
        // message.
        if checkpoint + 1 < floor {
            if let Some(first) = w.first_sequence_of(&vchannel, checkpoint + 1).await? {
                floor = floor.min(first);
            }
        }
    }
    let now = Instant::now();
    history.push_back((now, floor));
    // Keep the newest floor from before the window and every one since.
    while history
        .get(1)
        .is_some_and(|(t, _)| now.duration_since(*t) >= grace)
    {
        history.pop_front();
    }
    let covered = history
        .front()
        .is_some_and(|(t, _)| now.duration_since(*t) >= grace);
    let target = history.iter().map(|(_, f)| *f).min().unwrap_or(0);
    if covered && target > state.first_sequence.max(1) {
        let purged = w.purge_below(pchannel, target).await?;
        if purged > 0 {
            log::info!(channel = pchannel, below = target, purged = purged,
                kept = state.messages.saturating_sub(purged);
                "log messages every reader has passed deleted");
        }
    }
    Ok(())
}
