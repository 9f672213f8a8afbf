//! `ManualCompaction`, `GetCompactionState` and `GetCompactionStateWithPlans` (pymilvus
//! `compact`, `get_compaction_state`, `get_compaction_plans`): the proxy allocates the
//! compaction's ID and has the active datacoord plan it now; its state is that of its
//! plans (Executing while any is Pending or Executing, else Completed, as Milvus: an ID
//! with no plans, unknown or -1 for nothing to compact, is Completed). A clustering
//! compaction (`is_clustering=True`) rewrites every segment of a shard and partition in
//! clustering-key order; on a collection without a clustering key it has nothing to do.

use super::{coord_down, Proxy};
use crate::proto::common::{CompactionState, Status};
use crate::proto::datacoord::{self as dc, CompactionPlanState};
use crate::proto::milvus as pb;
use crate::status::{is_ok, WithStatus};

/// The compaction ID Milvus answers when there is nothing to compact.
const NO_PLANS: i64 = -1;

impl Proxy {
    /// `ManualCompaction` of a collection (by name, or by ID when no name is given).
    pub async fn manual_compaction(
        &self,
        db: &str,
        req: pb::ManualCompactionRequest,
    ) -> pb::ManualCompactionResponse {
        let answer = async {
            let record = if req.collection_name.is_empty() {
                self.collection_by_id(req.collection_id).await?
            } else {
                self.collection_record(db, &req.collection_name).await?
            };
            // A clustering compaction of a collection without a clustering key has
            // nothing to do (Milvus answers success with no plans).
            let clustering = req.major_compaction;
            if clustering
                && record
                    .schema
                    .as_ref()
                    .and_then(crate::schema::clustering_key_field)
                    .is_none()
            {
                return Ok((NO_PLANS, 0));
            }
            let (compaction_id, _) = self.alloc(1).await?;
            let r = self
                .datacoord
                .call_write(
                    dc::CompactRequest {
                        collection_id: record.id,
                        compaction_id,
                        clustering,
                    },
                    |mut c, r| async move { c.compact(r).await },
                )
                .await
                .map_err(coord_down)?;
            match r.status {
                Some(s) if !is_ok(&s) => Err(s),
                // Nothing to compact: Milvus answers the ID -1 (whose state is Completed).
                _ if r.plans == 0 => Ok((NO_PLANS, 0)),
                _ => Ok((compaction_id, r.plans)),
            }
        };
        match answer.await {
            Ok((id, plans)) => pb::ManualCompactionResponse {
                status: Some(Status::default()),
                compaction_id: id,
                compaction_plan_count: plans,
            },
            Err(s) => pb::ManualCompactionResponse::from_status(s),
        }
    }

    async fn compaction_plans(
        &self,
        compaction_id: i64,
    ) -> Result<Vec<dc::CompactionPlan>, Status> {
        let r = self
            .datacoord
            .call(
                dc::CompactionQuery {
                    compaction_id,
                    collection_id: 0,
                },
                |mut c, r| async move { c.list_compactions(r).await },
            )
            .await
            .map_err(coord_down)?;
        match r.status {
            Some(s) if !is_ok(&s) => Err(s),
            _ => Ok(r.plans),
        }
    }

    /// `GetCompactionState`: plan counts by state.
    pub async fn get_compaction_state(
        &self,
        req: pb::GetCompactionStateRequest,
    ) -> pb::GetCompactionStateResponse {
        let plans = match self.compaction_plans(req.compaction_id).await {
            Ok(p) => p,
            Err(s) => return pb::GetCompactionStateResponse::from_status(s),
        };
        let count = |want: &[CompactionPlanState]| {
            plans.iter().filter(|p| want.contains(&p.state())).count() as i64
        };
        let executing = count(&[
            CompactionPlanState::CompactionPending,
            CompactionPlanState::CompactionExecuting,
        ]);
        pb::GetCompactionStateResponse {
            status: Some(Status::default()),
            state: state_of(executing) as i32,
            executing_plan_no: executing,
            timeout_plan_no: 0,
            completed_plan_no: count(&[CompactionPlanState::CompactionCompleted]),
            failed_plan_no: count(&[CompactionPlanState::CompactionFailed]),
        }
    }

    /// `GetCompactionStateWithPlans`: the state and each completed plan's sources and
    /// target segment.
    pub async fn get_compaction_plans(
        &self,
        req: pb::GetCompactionPlansRequest,
    ) -> pb::GetCompactionPlansResponse {
        let plans = match self.compaction_plans(req.compaction_id).await {
            Ok(p) => p,
            Err(s) => return pb::GetCompactionPlansResponse::from_status(s),
        };
        let executing = plans
            .iter()
            .filter(|p| {
                matches!(
                    p.state(),
                    CompactionPlanState::CompactionPending
                        | CompactionPlanState::CompactionExecuting
                )
            })
            .count();
        pb::GetCompactionPlansResponse {
            status: Some(Status::default()),
            state: state_of(executing as i64) as i32,
            merge_infos: plans
                .iter()
                .filter(|p| p.state() == CompactionPlanState::CompactionCompleted)
                .flat_map(|p| {
                    let targets = if p.result_segment_ids.is_empty() {
                        vec![p.result_segment_id]
                    } else {
                        p.result_segment_ids.clone()
                    };
                    targets.into_iter().map(|target| pb::CompactionMergeInfo {
                        sources: p.segment_ids.clone(),
                        target,
                    })
                })
                .collect(),
        }
    }
}

fn state_of(executing: i64) -> CompactionState {
    if executing > 0 {
        CompactionState::Executing
    } else {
        CompactionState::Completed
    }
}
