//! `milvus status --channels`: every virtual channel, the datanode that consumes it
//! (and whether that datanode's session is alive), its checkpoint, and why its sync
//! keeps failing when it does.

use std::time::Duration;

use prost::Message;
use serde::Serialize;

use crate::config::Config;
use crate::etcd::{Etcd, EtcdError};
use crate::exit;
use crate::meta::data::DataKeys;
use crate::proto::datacoord::{ChannelCheckpoint, ChannelWatch, SyncFailure};
use crate::role::Role;
use crate::session::{discovery, Keys};

/// One row of the channel table.
#[derive(Debug, Serialize)]
pub struct Row {
    /// The virtual channel.
    pub vchannel: String,
    /// Its collection.
    pub collection_id: i64,
    /// ServerID of the datanode it is assigned to.
    pub datanode: i64,
    /// That datanode's address, or `gone` when its session has expired.
    pub datanode_address: String,
    /// Log sequence up to which it is persisted (0: nothing yet).
    pub checkpoint_sequence: u64,
    /// Hybrid timestamp up to which it is persisted.
    pub checkpoint_ts: u64,
    /// Why its datanode cannot write its rows, when a sync keeps failing (it retries).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failing: Option<String>,
}

/// Reads the assignments, checkpoints and datanode sessions.
pub async fn rows(etcd: &Etcd, config: &Config) -> Result<Vec<Row>, EtcdError> {
    let meta = config.etcd.meta_root();
    let keys = DataKeys::new(&meta);
    let (watches, _) = etcd.get_prefix(keys.watch_prefix()).await?;
    let (cps, _) = etcd
        .get_prefix(&format!("{}channel-cp/", keys.meta_prefix()))
        .await?;
    let (failures, _) = etcd
        .get_prefix(&format!("{}sync-failed/", keys.meta_prefix()))
        .await?;
    let failures: Vec<SyncFailure> = failures
        .iter()
        .filter_map(|kv| SyncFailure::decode(kv.value()).ok())
        .collect();
    let (sessions, _) = discovery::all(etcd, &Keys::new(meta)).await?;
    let checkpoints: Vec<ChannelCheckpoint> = cps
        .iter()
        .filter_map(|kv| ChannelCheckpoint::decode(kv.value()).ok())
        .collect();
    let mut out: Vec<Row> = watches
        .iter()
        .filter_map(|kv| ChannelWatch::decode(kv.value()).ok())
        .filter(|w| !w.vchannel.is_empty())
        .map(|w| {
            let cp = checkpoints.iter().find(|c| c.vchannel == w.vchannel);
            let address = sessions
                .iter()
                .find(|s| {
                    s.value.server_name == Role::DataNode.name() && s.value.server_id == w.node_id
                })
                .map_or_else(|| "gone".to_string(), |s| s.value.address.clone());
            let failing = failures.iter().find(|f| f.vchannel == w.vchannel);
            Row {
                vchannel: w.vchannel,
                collection_id: w.collection_id,
                datanode: w.node_id,
                datanode_address: address,
                checkpoint_sequence: cp.map_or(0, |c| c.sequence),
                checkpoint_ts: cp.map_or(0, |c| c.timestamp),
                failing: failing.map(|f| {
                    format!(
                        "sync of segment(s) {:?} failed {} times: {}",
                        f.segment_ids, f.attempts, f.reason
                    )
                }),
            }
        })
        .collect();
    out.sort_by(|a, b| a.vchannel.cmp(&b.vchannel));
    Ok(out)
}

/// Prints the channels; returns the exit code.
pub fn run(config: &Config, json: bool) -> i32 {
    let Ok(rt) = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    else {
        eprintln!("milvus: cannot start the async runtime");
        return exit::RUNTIME;
    };
    let result = rt.block_on(async {
        let etcd = Etcd::connect(&config.etcd).await?;
        rows(&etcd, config).await
    });
    rt.shutdown_timeout(Duration::from_millis(100));
    let rows = match result {
        Ok(r) => r,
        Err(e) => {
            eprintln!(
                "milvus: cannot read channels from etcd at {}: {e}",
                config.etcd.endpoints.join(",")
            );
            return exit::RUNTIME;
        }
    };
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&rows).expect("rows serialize")
        );
        return exit::OK;
    }
    if rows.is_empty() {
        println!("no channel is assigned (no collection yet, or no datacoord running)");
        return exit::OK;
    }
    println!(
        "{:<44} {:>20} {:>9}  {:<22} {:>10}",
        "VCHANNEL", "COLLECTION", "DATANODE", "ADDRESS", "CHECKPOINT"
    );
    for r in rows {
        println!(
            "{:<44} {:>20} {:>9}  {:<22} {:>10}",
            r.vchannel, r.collection_id, r.datanode, r.datanode_address, r.checkpoint_sequence
        );
        if let Some(f) = &r.failing {
            println!("    FAILING: {f}");
        }
    }
    exit::OK
}
