//! `ManualCompaction`, `GetCompactionState` and `GetCompactionStateWithPlans` (pymilvus
//! `compact`, `get_compaction_state`, `get_compaction_plans`): the proxy allocates the
//! compaction's ID and has the active datacoord plan it now; its state is that of its
//! plans (Executing while any is Pending or Executing, else Completed, as Milvus: an ID
//! with no plans, unknown or with nothing to compact, is Completed).

use super::{coord_down, Proxy};
use crate::proto::common::{CompactionState, Status};
use crate::proto::datacoord::{self as dc, CompactionPlanState};
use crate::proto::milvus as pb;
use crate::status::{code, error, is_ok, WithStatus};

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
            if req.major_compaction {
                return Err(error(
                    code::UNEXPECTED,
                    "clustering compaction (is_clustering=True) is not supported by this build: call compact without it for a mix compaction",
                ));
            }
            let (compaction_id, _) = self.alloc(1).await?;
            let r = self
                .datacoord
                .call_write(
                    dc::CompactRequest {
                        collection_id: record.id,
                        compaction_id,
                    },
                    |mut c, r| async move { c.compact(r).await },
                )
                .await
                .map_err(coord_down)?;
            match r.status {
                Some(s) if !is_ok(&s) => Err(s),
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
                .map(|p| pb::CompactionMergeInfo {
                    sources: p.segment_ids.clone(),
                    target: p.result_segment_id,
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
