//! The proxy: Milvus's client entry point. It serves `milvus.proto.milvus.MilvusService`
//! on its port, answers what is its own (Connect, version, health, states) and forwards
//! catalog calls and timestamps to the active rootcoord, riding through its failovers;
//! its write path (`write`) publishes inserts, upserts and deletes to the log, and
//! flushes (`flush`) are markers in the log that the datanodes act on; loads go to the
//! querycoord (`load`), and searches and queries (`search`, `query`) straight to the
//! querynodes serving each shard, found through records followed from etcd (`read`);
//! replicas, segments, statistics and the topology are read, never changed (`info`);
//! `RunAnalyzer` is answered here (`analyzer`).

mod analyzer;
pub mod auth;
mod compact;
mod flush;
mod hybrid;
mod import;
mod index;
mod info;
mod load;
mod query;
mod read;
pub mod rest;
mod search;
pub mod service;
mod users;
mod write;

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use crate::context::Context;
use crate::coord_client::{ActiveDataCoord, ActiveIndexCoord, ActiveQueryCoord, ActiveRootCoord};

/// The status a call answers when no active coordinator answered it in time (the
/// client retries).
fn coord_down(e: crate::coord_client::CoordError) -> crate::proto::common::Status {
    crate::status::retriable(crate::status::code::SERVICE_UNAVAILABLE, e.to_string())
}

/// A proxy process's shared state.
pub struct Proxy {
    ctx: Arc<Context>,
    rootcoord: ActiveRootCoord,
    datacoord: ActiveDataCoord,
    indexcoord: ActiveIndexCoord,
    querycoord: ActiveQueryCoord,
    connections: AtomicI64,
    auth: auth::Gate,
    writes: write::WriteState,
    reads: read::ReadState,
}

impl Proxy {
    /// A proxy that follows the rootcoord sessions of its cluster.
    pub fn new(ctx: Arc<Context>) -> Arc<Self> {
        let rootcoord =
            ActiveRootCoord::for_process(ctx.etcd.clone(), ctx.keys.clone(), &ctx.config, ctx.role);
        let datacoord =
            ActiveDataCoord::for_process(ctx.etcd.clone(), ctx.keys.clone(), &ctx.config, ctx.role);
        let indexcoord = ActiveIndexCoord::for_process(
            ctx.etcd.clone(),
            ctx.keys.clone(),
            &ctx.config,
            ctx.role,
        );
        let querycoord = ActiveQueryCoord::for_process(
            ctx.etcd.clone(),
            ctx.keys.clone(),
            &ctx.config,
            ctx.role,
        );
        Arc::new(Proxy {
            auth: auth::Gate::new(&ctx),
            ctx,
            rootcoord,
            datacoord,
            indexcoord,
            querycoord,
            connections: AtomicI64::new(0),
            writes: write::WriteState::new(),
            reads: read::ReadState::default(),
        })
    }

    /// A new connection identifier, unique across proxies (ServerID in the high bits).
    pub fn next_identifier(&self) -> i64 {
        let n = self.connections.fetch_add(1, Ordering::SeqCst) + 1;
        (self.ctx.state.report().server_id << 32) | (n & 0xffff_ffff)
    }
}
