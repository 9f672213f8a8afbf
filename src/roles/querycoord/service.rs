//! The querycoord's gRPC service. A standby answers only `GetComponentStates`; a caller
//! that names another ServerID in the `serverid` metadata gets a mismatch status.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use etcd_client::TxnOp;
use prost::Message;
use tonic::{Request, Response};

use super::reconcile::{load_per_node, pick, release_ops};
use super::QueryCoord;
use crate::meta::now_ms;
use crate::meta::query::assignment_rest;
use crate::proto::common::{LoadState, Status};
use crate::proto::milvus as pb;
use crate::proto::querycoord as qc;
use crate::proto::querycoord::query_coord_server::{QueryCoord as QueryCoordApi, QueryCoordServer};
use crate::roles::coordinator::server_id_mismatch;
use crate::status::{code, component_states, error, ok, retriable, WithStatus};

/// Milvus's code for a collection that is not loaded.
pub const COLLECTION_NOT_LOADED: i32 = 101;

/// The gRPC face of a [`QueryCoord`].
pub struct Service(pub Arc<QueryCoord>);

impl Service {
    /// A tonic service for it.
    pub fn server(q: Arc<QueryCoord>) -> QueryCoordServer<Service> {
        QueryCoordServer::new(Service(q))
    }

    fn gate<T: WithStatus, R>(&self, req: &Request<R>) -> Option<T> {
        server_id_mismatch(&self.0.ctx, req)
            .or_else(|| self.0.active().err())
            .map(T::from_status)
    }
}

impl WithStatus for qc::LoadStateResponse {
    fn status(&self) -> Status {
        self.status.clone().unwrap_or_default()
    }
    fn from_status(status: Status) -> Self {
        qc::LoadStateResponse {
            status: Some(status),
            ..Default::default()
        }
    }
}

impl WithStatus for qc::ShardLeadersResponse {
    fn status(&self) -> Status {
        self.status.clone().unwrap_or_default()
    }
    fn from_status(status: Status) -> Self {
        qc::ShardLeadersResponse {
            status: Some(status),
            ..Default::default()
        }
    }
}

type Reply<T> = Result<Response<T>, tonic::Status>;

impl QueryCoord {
    /// Writes `ops` fenced (load infos, and shard assignments when `assignments`) and
    /// waits until this process's followers of what they touch have applied them. A
    /// follower only learns of revisions that touch its prefix: waiting on one the write
    /// did not touch would wait out the timeout.
    async fn write(&self, ops: Vec<TxnOp>, assignments: bool) -> Result<(), Status> {
        let a = self.active()?;
        let rev = a
            .store
            .write(ops)
            .await
            .map_err(|e| retriable(code::UNEXPECTED, format!("cannot store the load: {e}")))?;
        let f = self.followers();
        f.loads.wait_applied(rev, Duration::from_secs(10)).await;
        if assignments {
            f.assignments
                .wait_applied(rev, Duration::from_secs(10))
                .await;
        }
        Ok(())
    }

    async fn load(&self, req: qc::LoadRequest) -> Result<(), Status> {
        let replicas = req.replica_number.max(1);
        let coll = req.collection_id;
        let mut parts: Vec<i64> = req.partition_ids.clone();
        parts.sort_unstable();
        parts.dedup();
        if let Some(mut info) = self.load_info(coll) {
            if info.replica_number != replicas {
                return Err(error(
                    code::PARAMETER_INVALID,
                    format!(
                        "can't change the replica number for loaded collection: expected={}, actual={replicas}",
                        info.replica_number
                    ),
                ));
            }
            let merged: Vec<i64> = if info.partition_ids.is_empty() || parts.is_empty() {
                Vec::new()
            } else {
                let set: BTreeSet<i64> = info.partition_ids.iter().chain(&parts).copied().collect();
                set.into_iter().collect()
            };
            if merged == info.partition_ids {
                return Ok(());
            }
            info.partition_ids = merged;
            info.loaded_at_ms = now_ms();
            return self
                .write(
                    vec![TxnOp::put(self.keys.load(coll), info.encode_to_vec(), None)],
                    false,
                )
                .await;
        }
        let nodes: BTreeSet<i64> = self.live_querynodes().into_keys().collect();
        if nodes.len() < replicas as usize {
            return Err(error(
                code::UNEXPECTED,
                format!(
                    "not enough querynodes to load {replicas} replica(s): {} running (the replicas of a shard need different querynodes)",
                    nodes.len()
                ),
            ));
        }
        let info = qc::LoadInfo {
            collection_id: coll,
            partition_ids: parts,
            replica_number: replicas,
            vchannels: req.vchannels.clone(),
            collection_name: req.collection_name.clone(),
            loaded_at_ms: now_ms(),
        };
        let epoch = self.active()?.store.term().epoch;
        let mut ops = vec![TxnOp::put(self.keys.load(coll), info.encode_to_vec(), None)];
        let mut load = load_per_node(self, &nodes);
        for vch in &req.vchannels {
            let mut taken = BTreeSet::new();
            for replica in 0..replicas {
                let node = pick(&load, &taken).unwrap_or(0);
                taken.insert(node);
                *load.entry(node).or_default() += 1;
                let a = qc::ShardAssignment {
                    collection_id: coll,
                    replica,
                    vchannel: vch.clone(),
                    node_id: node,
                    epoch,
                };
                ops.push(TxnOp::put(
                    self.keys.assignment(coll, replica, vch),
                    a.encode_to_vec(),
                    None,
                ));
            }
        }
        self.write(ops, true).await?;
        log::info!(collection = coll, name = req.collection_name.as_str(), replicas = replicas,
            shards = req.vchannels.len(); "collection load stored");
        Ok(())
    }

    async fn release(&self, req: qc::ReleaseRequest) -> Result<(), Status> {
        let coll = req.collection_id;
        let Some(mut info) = self.load_info(coll) else {
            return Ok(());
        };
        if !req.partition_ids.is_empty() {
            let loaded: BTreeSet<i64> = if info.partition_ids.is_empty() {
                self.catalog
                    .read()
                    .expect("catalog lock")
                    .collection_by_id(coll)
                    .map(|c| c.partitions.iter().map(|p| p.id).collect())
                    .unwrap_or_default()
            } else {
                info.partition_ids.iter().copied().collect()
            };
            let left: Vec<i64> = loaded
                .into_iter()
                .filter(|p| !req.partition_ids.contains(p))
                .collect();
            if !left.is_empty() {
                info.partition_ids = left;
                self.write(
                    vec![TxnOp::put(self.keys.load(coll), info.encode_to_vec(), None)],
                    false,
                )
                .await?;
                log::info!(collection = coll, partitions:? = req.partition_ids; "partitions released");
                return Ok(());
            }
        }
        self.write(release_ops(self, coll), true).await?;
        log::info!(collection = coll; "collection released");
        Ok(())
    }
}

fn status_of(r: Result<(), Status>) -> Status {
    r.err().unwrap_or_else(ok)
}

#[tonic::async_trait]
impl QueryCoordApi for Service {
    async fn get_component_states(
        &self,
        _req: Request<pb::GetComponentStatesRequest>,
    ) -> Reply<pb::ComponentStates> {
        Ok(Response::new(component_states(&self.0.ctx.state)))
    }

    async fn load(&self, req: Request<qc::LoadRequest>) -> Reply<Status> {
        if let Some(r) = self.gate(&req) {
            return Ok(Response::new(r));
        }
        Ok(Response::new(status_of(
            self.0.load(req.into_inner()).await,
        )))
    }

    async fn release(&self, req: Request<qc::ReleaseRequest>) -> Reply<Status> {
        if let Some(r) = self.gate(&req) {
            return Ok(Response::new(r));
        }
        Ok(Response::new(status_of(
            self.0.release(req.into_inner()).await,
        )))
    }

    async fn get_load_state(
        &self,
        req: Request<qc::LoadStateRequest>,
    ) -> Reply<qc::LoadStateResponse> {
        if let Some(r) = self.gate(&req) {
            return Ok(Response::new(r));
        }
        let req = req.into_inner();
        let not_loaded = qc::LoadStateResponse {
            status: Some(ok()),
            state: LoadState::NotLoad as i32,
            progress: 0,
        };
        let Some(info) = self.0.load_info(req.collection_id) else {
            return Ok(Response::new(not_loaded));
        };
        if !info.partition_ids.is_empty()
            && req
                .partition_ids
                .iter()
                .any(|p| !info.partition_ids.contains(p))
        {
            return Ok(Response::new(not_loaded));
        }
        let progress = self.0.progress(&info).percent();
        let state = if progress >= 100 {
            LoadState::Loaded
        } else {
            LoadState::Loading
        };
        Ok(Response::new(qc::LoadStateResponse {
            status: Some(ok()),
            state: state as i32,
            progress,
        }))
    }

    async fn get_shard_leaders(
        &self,
        req: Request<qc::ShardLeadersRequest>,
    ) -> Reply<qc::ShardLeadersResponse> {
        if let Some(r) = self.gate(&req) {
            return Ok(Response::new(r));
        }
        let coll = req.into_inner().collection_id;
        let Some(info) = self.0.load_info(coll) else {
            return Ok(Response::new(qc::ShardLeadersResponse::from_status(error(
                COLLECTION_NOT_LOADED,
                "collection not loaded",
            ))));
        };
        let assignments = self.0.assignments.read().expect("assignments lock");
        let serving = self.0.serving.read().expect("serving lock");
        let mut shards = Vec::new();
        for vch in &info.vchannels {
            let mut leader = qc::ShardLeader {
                vchannel: vch.clone(),
                ..Default::default()
            };
            for replica in 0..info.replica_number.max(1) {
                let rest = assignment_rest(coll, replica, vch);
                let Some(a) = assignments.get(&rest) else {
                    continue;
                };
                if let Some(s) = serving.get(&format!("{rest}/{}", a.value.node_id)) {
                    if s.value.assignment_revision == a.revision {
                        leader.node_ids.push(s.value.node_id);
                        leader.addresses.push(s.value.address.clone());
                    }
                }
            }
            shards.push(leader);
        }
        Ok(Response::new(qc::ShardLeadersResponse {
            status: Some(ok()),
            shards,
            partition_ids: info.partition_ids.clone(),
        }))
    }
}
