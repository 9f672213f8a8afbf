//! The datacoord's gRPC service. A standby answers only `GetComponentStates`; a caller
//! that names another ServerID in the `serverid` metadata gets a mismatch status.

use std::sync::Arc;

use tonic::{Request, Response};

use super::DataCoord;
use crate::proto::common as pb_common;
use crate::proto::datacoord as dc;
use crate::proto::datacoord::data_coord_server::{DataCoord as DataCoordApi, DataCoordServer};
use crate::proto::milvus as pb;
use crate::roles::coordinator::server_id_mismatch;
use crate::status::{code, component_states, error, ok, WithStatus};

/// The gRPC face of a [`DataCoord`].
pub struct Service(pub Arc<DataCoord>);

impl Service {
    /// A tonic service for it.
    pub fn server(d: Arc<DataCoord>) -> DataCoordServer<Service> {
        DataCoordServer::new(Service(d))
    }

    /// Refuses a call to the wrong ServerID or to a process that is not the active one.
    fn gate<T: WithStatus, R>(&self, req: &Request<R>) -> Option<T> {
        server_id_mismatch(&self.0.ctx, req)
            .or_else(|| self.0.active().err())
            .map(T::from_status)
    }
}

type Reply<T> = Result<Response<T>, tonic::Status>;

#[tonic::async_trait]
impl DataCoordApi for Service {
    async fn get_component_states(
        &self,
        _req: Request<pb::GetComponentStatesRequest>,
    ) -> Reply<pb::ComponentStates> {
        Ok(Response::new(component_states(&self.0.ctx.state)))
    }

    async fn get_flush_state(
        &self,
        req: Request<dc::FlushStateRequest>,
    ) -> Reply<dc::FlushStateResponse> {
        if let Some(r) = self.gate(&req) {
            return Ok(Response::new(r));
        }
        let req = req.into_inner();
        let meta = self.0.meta.read().expect("meta lock");
        // A channel whose datanode failed to write its rows since this flush was asked:
        // the flush cannot finish now; say why rather than let the client wait out its
        // timeout. (A failure from before is not the answer: the sync may succeed on its
        // next attempt, storage having come back.)
        let asked_ms = (req.flush_ts >> 18) as i64;
        let failing = req
            .vchannels
            .iter()
            .filter_map(|v| meta.sync_failure(v))
            .find(|f| f.last_ms >= asked_ms);
        if let Some(f) = failing {
            return Ok(Response::new(dc::FlushStateResponse::from_status(error(
                code::UNEXPECTED,
                format!(
                    "flush cannot complete: datanode {} cannot write segment(s) {:?} of channel {} ({} attempts since {} ms): {}",
                    f.node_id, f.segment_ids, f.vchannel, f.attempts, f.since_ms, f.reason
                ),
            ))));
        }
        let flushed = req.vchannels.iter().all(|v| {
            meta.checkpoint(v)
                .is_some_and(|cp| cp.timestamp >= req.flush_ts)
        });
        let segment_ids = meta
            .live_segments(req.collection_id)
            .iter()
            .map(|s| s.id)
            .collect();
        Ok(Response::new(dc::FlushStateResponse {
            status: Some(ok()),
            flushed,
            segment_ids,
        }))
    }

    async fn get_collection_statistics(
        &self,
        req: Request<dc::CollectionRequest>,
    ) -> Reply<dc::CollectionStatistics> {
        if let Some(r) = self.gate(&req) {
            return Ok(Response::new(r));
        }
        let req = req.into_inner();
        let (rows, segments) = self
            .0
            .meta
            .read()
            .expect("meta lock")
            .statistics(req.collection_id, &req.partition_ids);
        Ok(Response::new(dc::CollectionStatistics {
            status: Some(ok()),
            row_count: rows,
            segments: segments as i64,
        }))
    }

    async fn list_segments(&self, req: Request<dc::CollectionRequest>) -> Reply<dc::SegmentList> {
        if let Some(r) = self.gate(&req) {
            return Ok(Response::new(r));
        }
        let req = req.into_inner();
        let meta = self.0.meta.read().expect("meta lock");
        let segments = meta
            .live_segments_in(req.collection_id, &req.partition_ids)
            .into_iter()
            .cloned()
            .collect();
        Ok(Response::new(dc::SegmentList {
            status: Some(ok()),
            segments,
        }))
    }

    async fn create_import(&self, req: Request<dc::ImportJob>) -> Reply<pb_common::Status> {
        if let Some(r) = self.gate(&req) {
            return Ok(Response::new(r));
        }
        let mut job = req.into_inner();
        let active = match self.0.active() {
            Ok(a) => a,
            Err(s) => return Ok(Response::new(s)),
        };
        let store = &active.store;
        job.state = dc::ImportState::ImportPending as i32;
        job.node_id = 0;
        job.attempts = 0;
        job.created_ms = crate::meta::now_ms();
        let key = self.0.keys.import(job.id);
        // Put-if-absent: a retried create of the same job changes nothing.
        let when = vec![etcd_client::Compare::version(
            key.clone(),
            etcd_client::CompareOp::Equal,
            0,
        )];
        let put = etcd_client::TxnOp::put(key, prost::Message::encode_to_vec(&job), None);
        Ok(Response::new(match store.write_if(when, vec![put]).await {
            Ok(written) => {
                log::info!(job = job.id, collection = job.collection_name.as_str(),
                    files = job.files.len(); "import job created");
                // Read your writes: a describe right after the create is answered from
                // the followed records, so they must hold the job first.
                if let Some(rev) = written {
                    self.0
                        .followers()
                        .meta
                        .wait_applied(rev, std::time::Duration::from_secs(10))
                        .await;
                }
                ok()
            }
            Err(e) => crate::status::retriable(
                code::UNEXPECTED,
                format!("the import job was not recorded: {e}"),
            ),
        }))
    }

    async fn list_imports(&self, req: Request<dc::ImportQuery>) -> Reply<dc::ImportJobs> {
        if let Some(r) = self.gate(&req) {
            return Ok(Response::new(r));
        }
        let q = req.into_inner();
        let meta = self.0.meta.read().expect("meta lock");
        let jobs = meta
            .imports()
            .map(|i| &i.job)
            .filter(|j| q.job_id == 0 || j.id == q.job_id)
            .filter(|j| q.collection_id == 0 || j.collection_id == q.collection_id)
            .cloned()
            .collect();
        Ok(Response::new(dc::ImportJobs {
            status: Some(ok()),
            jobs,
        }))
    }

    async fn compact(&self, req: Request<dc::CompactRequest>) -> Reply<dc::CompactResponse> {
        if let Some(r) = self.gate(&req) {
            return Ok(Response::new(r));
        }
        let req = req.into_inner();
        let active = match self.0.active() {
            Ok(a) => a,
            Err(s) => return Ok(Response::new(dc::CompactResponse::from_status(s))),
        };
        if !self.0.ctx.config.segment.compaction.enabled {
            return Ok(Response::new(dc::CompactResponse::from_status(error(
                code::SERVICE_UNAVAILABLE,
                "compaction disabled (dataCoord.enableCompaction is false): service unavailable",
            ))));
        }
        let planned = super::compaction::plan(
            &self.0,
            &active.store,
            Some(req.collection_id),
            req.compaction_id,
            req.clustering,
        )
        .await;
        Ok(Response::new(match planned {
            Ok(n) => {
                log::info!(collection = req.collection_id, compaction = req.compaction_id, plans = n;
                    "manual compaction planned");
                dc::CompactResponse {
                    status: Some(ok()),
                    plans: n as i32,
                }
            }
            Err(e) => dc::CompactResponse::from_status(crate::status::retriable(
                code::UNEXPECTED,
                format!("the compaction was not planned: {e}"),
            )),
        }))
    }

    async fn list_compactions(
        &self,
        req: Request<dc::CompactionQuery>,
    ) -> Reply<dc::CompactionPlans> {
        if let Some(r) = self.gate(&req) {
            return Ok(Response::new(r));
        }
        let q = req.into_inner();
        let meta = self.0.meta.read().expect("meta lock");
        let plans = meta
            .compactions()
            .map(|p| &p.plan)
            .filter(|p| q.compaction_id == 0 || p.compaction_id == q.compaction_id)
            .filter(|p| q.collection_id == 0 || p.collection_id == q.collection_id)
            .cloned()
            .collect();
        Ok(Response::new(dc::CompactionPlans {
            status: Some(ok()),
            plans,
        }))
    }
}
