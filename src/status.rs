//! In-band `common.Status` values, with Milvus's `code` and the legacy `error_code`
//! paired as Milvus does, and a way to put a status into any response type.

use crate::proto::common::{ErrorCode, Status};
use crate::proto::{datacoord as dc, milvus as pb, rootcoord as rc};
use crate::session::state::ComponentState;

/// Milvus error codes (`Status.code`) used here.
pub mod code {
    /// The service is not ready (a standby, or a coordinator still activating).
    pub const SERVICE_NOT_READY: i32 = 1;
    /// The service is unavailable (wrong server, lost term).
    pub const SERVICE_UNAVAILABLE: i32 = 2;
    /// The method is not served by this build.
    pub const SERVICE_UNIMPLEMENTED: i32 = 10;
    /// Too much work queued: retry later.
    pub const RATE_LIMIT: i32 = 8;
    /// No such collection.
    pub const COLLECTION_NOT_FOUND: i32 = 100;
    /// The client's cached schema is not the collection's (pymilvus re-describes).
    pub const SCHEMA_MISMATCH: i32 = 109;
    /// The collection is loaded and must be released first.
    pub const COLLECTION_LOADED: i32 = 104;
    /// No such partition.
    pub const PARTITION_NOT_FOUND: i32 = 200;
    /// ErrResourceGroupNotFound.
    pub const RESOURCE_GROUP_NOT_FOUND: i32 = 300;
    /// No such index.
    pub const INDEX_NOT_FOUND: i32 = 700;
    /// More than one index answers to the name (or to none given).
    pub const INDEX_DUPLICATE: i32 = 702;
    /// No such database.
    pub const DATABASE_NOT_FOUND: i32 = 800;
    /// A database name breaks the rules.
    pub const DATABASE_NAME_INVALID: i32 = 802;
    /// No such field.
    pub const FIELD_NOT_FOUND: i32 = 1700;
    /// A field name breaks the rules.
    pub const FIELD_NAME_INVALID: i32 = 1701;
    /// A parameter is invalid.
    pub const PARAMETER_INVALID: i32 = 1100;
    /// No alias of that name.
    pub const ALIAS_NOT_FOUND: i32 = 1600;
    /// An alias would equal a collection's name.
    pub const ALIAS_COLLECTION_NAME_CONFLICT: i32 = 1601;
    /// The alias stands for another collection.
    pub const ALIAS_ALREADY_EXIST: i32 = 1602;
    /// The alias's collection is gone.
    pub const ALIAS_COLLECTION_NOT_FOUND: i32 = 1603;
    /// An unexpected failure (etcd error, ...).
    pub const UNEXPECTED: i32 = 65535;
}

/// This process's `ComponentStates` as Milvus reports them (role, ServerID, state code).
pub fn component_states(state: &ComponentState) -> pb::ComponentStates {
    let r = state.report();
    pb::ComponentStates {
        state: Some(pb::ComponentInfo {
            node_id: r.server_id,
            role: r.role.to_string(),
            state_code: r.state as i32,
            extra_info: vec![],
        }),
        subcomponent_states: vec![],
        status: Some(ok()),
    }
}

/// Success.
pub fn ok() -> Status {
    Status::default()
}

/// An error with Milvus code `code` and the legacy `error_code` that goes with it.
pub fn error(code: i32, reason: impl Into<String>) -> Status {
    let legacy = match code {
        code::COLLECTION_NOT_FOUND => ErrorCode::CollectionNotExists,
        code::PARAMETER_INVALID => ErrorCode::IllegalArgument,
        code::SERVICE_NOT_READY => ErrorCode::NotReadyServe,
        code::RATE_LIMIT => ErrorCode::RateLimit,
        code::SCHEMA_MISMATCH => ErrorCode::SchemaMismatch,
        code::INDEX_NOT_FOUND => ErrorCode::IndexNotExist,
        code::PARTITION_NOT_FOUND => ErrorCode::MetaFailed,
        _ => ErrorCode::UnexpectedError,
    };
    Status {
        error_code: legacy as i32,
        reason: reason.into(),
        code,
        retriable: matches!(
            code,
            code::SERVICE_NOT_READY | code::SERVICE_UNAVAILABLE | code::RATE_LIMIT
        ),
        ..Default::default()
    }
}

/// An error that says nothing was changed for good, or that the change is safe to repeat
/// (the request ID makes a retry exactly-once): the caller should try again.
pub fn retriable(code: i32, reason: impl Into<String>) -> Status {
    Status {
        retriable: true,
        ..error(code, reason)
    }
}

/// Puts a request's cost in a successful status, where pymilvus reads it
/// (`extra_info["report_value"]`, shown as `cost`), as Milvus's `SetReportValue` does:
/// here the number of rows a search or query read. A cost of 0 is not reported.
pub fn set_cost(status: &mut Status, rows: i64) {
    if rows > 0 && is_ok(status) {
        status
            .extra_info
            .insert("report_value".to_string(), rows.to_string());
    }
}

/// True when the status is a success (both `code` and `error_code` are 0).
pub fn is_ok(s: &Status) -> bool {
    s.code == 0 && s.error_code == 0
}

/// A response type that carries a `status` field.
pub trait WithStatus: Default {
    /// The response's status.
    fn status(&self) -> Status;
    /// A response holding only `status`.
    fn from_status(status: Status) -> Self;
}

impl WithStatus for Status {
    fn status(&self) -> Status {
        self.clone()
    }
    fn from_status(status: Status) -> Self {
        status
    }
}

macro_rules! with_status {
    ($($t:ty),* $(,)?) => {$(
        #[allow(clippy::needless_update)]
        impl WithStatus for $t {
            fn status(&self) -> Status {
                self.status.clone().unwrap_or_default()
            }
            fn from_status(status: Status) -> Self {
                Self { status: Some(status), ..Default::default() }
            }
        }
    )*};
}

with_status!(
    pb::ConnectResponse,
    pb::GetVersionResponse,
    pb::CheckHealthResponse,
    pb::ComponentStates,
    pb::AllocTimestampResponse,
    pb::ListDatabasesResponse,
    pb::DescribeDatabaseResponse,
    pb::BoolResponse,
    pb::DescribeCollectionResponse,
    pb::ShowCollectionsResponse,
    pb::ShowPartitionsResponse,
    rc::AllocTimestampResponse,
    rc::AllocIdResponse,
    pb::FlushResponse,
    pb::GetFlushStateResponse,
    pb::GetCollectionStatisticsResponse,
    dc::FlushStateResponse,
    dc::CollectionStatistics,
    dc::SegmentList,
    dc::ImportJobs,
    dc::CompactResponse,
    dc::CompactionPlans,
    pb::DescribeIndexResponse,
    pb::SearchResults,
    pb::MutationResult,
    pb::GetLoadingProgressResponse,
    pb::GetLoadStateResponse,
    pb::QueryResults,
    pb::BackupRbacMetaResponse,
    pb::CalcDistanceResults,
    pb::DescribeAliasResponse,
    pb::DescribeResourceGroupResponse,
    pb::DescribeSegmentIndexDataResponse,
    pb::FlushAllResponse,
    pb::GetCompactionPlansResponse,
    pb::GetCompactionStateResponse,
    pb::GetFlushAllStateResponse,
    pb::GetImportStateResponse,
    pb::GetIndexBuildProgressResponse,
    pb::GetIndexStateResponse,
    pb::GetIndexStatisticsResponse,
    pb::GetMetricsResponse,
    pb::GetPartitionStatisticsResponse,
    pb::GetPersistentSegmentInfoResponse,
    pb::GetQuerySegmentInfoResponse,
    pb::GetReplicasResponse,
    pb::ImportResponse,
    pb::ListAliasesResponse,
    pb::ListCredUsersResponse,
    pb::ListImportTasksResponse,
    pb::ListIndexedSegmentResponse,
    pb::ListPrivilegeGroupsResponse,
    pb::ListResourceGroupsResponse,
    pb::ManualCompactionResponse,
    pb::ReplicateMessageResponse,
    pb::RunAnalyzerResponse,
    pb::SelectGrantResponse,
    pb::SelectRoleResponse,
    pb::SelectUserResponse,
);
