//! The rootcoord's gRPC service. A standby answers only `GetComponentStates`; every
//! other call gets a not-serving status. A caller that names the ServerID it expects in
//! the `serverid` metadata and reaches another process gets a mismatch status, so it
//! re-resolves instead of talking to, say, a restarted ex-active on the same address.

use std::sync::Arc;

use tonic::{Request, Response};

use super::ddl::respond;
use super::RootCoord;
use crate::proto::common::Status;
use crate::proto::milvus as pb;
use crate::proto::rootcoord as rc;
use crate::proto::rootcoord::root_coord_server::{RootCoord as RootCoordApi, RootCoordServer};
use crate::roles::coordinator::server_id_mismatch;
use crate::status::{code, component_states, error, ok, WithStatus};

pub use crate::coord_client::{REQUEST_ID_HEADER, SERVER_ID_HEADER};

/// The gRPC face of a [`RootCoord`].
pub struct Service(pub Arc<RootCoord>);

impl Service {
    /// A tonic service for it.
    pub fn server(rc: Arc<RootCoord>) -> RootCoordServer<Service> {
        RootCoordServer::new(Service(rc))
    }

    /// Refuses a call to the wrong ServerID.
    fn gate<T: WithStatus, R>(&self, req: &Request<R>) -> Option<T> {
        server_id_mismatch(&self.0.ctx, req).map(T::from_status)
    }
}

type Reply<T> = Result<Response<T>, tonic::Status>;

macro_rules! read_call {
    ($self:ident, $req:ident, $method:ident) => {{
        if let Some(r) = $self.gate(&$req) {
            return Ok(Response::new(r));
        }
        Ok(Response::new(respond($self.0.$method($req.into_inner()))))
    }};
}

macro_rules! write_call {
    ($self:ident, $req:ident, $method:ident) => {{
        if let Some(r) = $self.gate::<Status, _>(&$req) {
            return Ok(Response::new(r));
        }
        let request = $req
            .metadata()
            .get(REQUEST_ID_HEADER)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        // Run the change in its own task: a caller that gives up (a dropped request)
        // must not cut it short between its etcd write and its catalog update.
        let rc = $self.0.clone();
        let req = $req.into_inner();
        let done = tokio::spawn(async move { rc.$method(req, request).await }).await;
        Ok(Response::new(done.unwrap_or_else(|e| {
            error(code::UNEXPECTED, format!("catalog change failed: {e}"))
        })))
    }};
}

#[tonic::async_trait]
impl RootCoordApi for Service {
    async fn get_component_states(
        &self,
        _req: Request<pb::GetComponentStatesRequest>,
    ) -> Reply<pb::ComponentStates> {
        Ok(Response::new(component_states(&self.0.ctx.state)))
    }

    async fn alloc_timestamp(
        &self,
        req: Request<rc::AllocRequest>,
    ) -> Reply<rc::AllocTimestampResponse> {
        if let Some(r) = self.gate(&req) {
            return Ok(Response::new(r));
        }
        let count = req.into_inner().count.max(1);
        Ok(Response::new(match self.0.alloc_timestamp(count).await {
            Ok((ts, epoch)) => rc::AllocTimestampResponse {
                status: Some(ok()),
                timestamp: ts,
                count,
                epoch,
                server_id: self.0.ctx.state.report().server_id,
            },
            Err(s) => WithStatus::from_status(s),
        }))
    }

    async fn alloc_id(&self, req: Request<rc::AllocRequest>) -> Reply<rc::AllocIdResponse> {
        if let Some(r) = self.gate(&req) {
            return Ok(Response::new(r));
        }
        let count = req.into_inner().count.max(1);
        Ok(Response::new(match self.0.alloc_id(count).await {
            Ok((id, epoch)) => rc::AllocIdResponse {
                status: Some(ok()),
                id,
                count,
                epoch,
                server_id: self.0.ctx.state.report().server_id,
            },
            Err(s) => WithStatus::from_status(s),
        }))
    }

    async fn create_database(&self, req: Request<pb::CreateDatabaseRequest>) -> Reply<Status> {
        write_call!(self, req, create_database)
    }

    async fn drop_database(&self, req: Request<pb::DropDatabaseRequest>) -> Reply<Status> {
        write_call!(self, req, drop_database)
    }

    async fn list_databases(
        &self,
        req: Request<pb::ListDatabasesRequest>,
    ) -> Reply<pb::ListDatabasesResponse> {
        if let Some(r) = self.gate(&req) {
            return Ok(Response::new(r));
        }
        Ok(Response::new(respond(self.0.list_databases())))
    }

    async fn describe_database(
        &self,
        req: Request<pb::DescribeDatabaseRequest>,
    ) -> Reply<pb::DescribeDatabaseResponse> {
        read_call!(self, req, describe_database)
    }

    async fn create_collection(&self, req: Request<pb::CreateCollectionRequest>) -> Reply<Status> {
        write_call!(self, req, create_collection)
    }

    async fn drop_collection(&self, req: Request<pb::DropCollectionRequest>) -> Reply<Status> {
        write_call!(self, req, drop_collection)
    }

    async fn has_collection(
        &self,
        req: Request<pb::HasCollectionRequest>,
    ) -> Reply<pb::BoolResponse> {
        read_call!(self, req, has_collection)
    }

    async fn describe_collection(
        &self,
        req: Request<pb::DescribeCollectionRequest>,
    ) -> Reply<pb::DescribeCollectionResponse> {
        read_call!(self, req, describe_collection)
    }

    async fn show_collections(
        &self,
        req: Request<pb::ShowCollectionsRequest>,
    ) -> Reply<pb::ShowCollectionsResponse> {
        read_call!(self, req, show_collections)
    }

    async fn create_partition(&self, req: Request<pb::CreatePartitionRequest>) -> Reply<Status> {
        write_call!(self, req, create_partition)
    }

    async fn drop_partition(&self, req: Request<pb::DropPartitionRequest>) -> Reply<Status> {
        write_call!(self, req, drop_partition)
    }

    async fn has_partition(
        &self,
        req: Request<pb::HasPartitionRequest>,
    ) -> Reply<pb::BoolResponse> {
        read_call!(self, req, has_partition)
    }

    async fn show_partitions(
        &self,
        req: Request<pb::ShowPartitionsRequest>,
    ) -> Reply<pb::ShowPartitionsResponse> {
        read_call!(self, req, show_partitions)
    }

    async fn create_alias(&self, req: Request<pb::CreateAliasRequest>) -> Reply<Status> {
        write_call!(self, req, create_alias)
    }

    async fn drop_alias(&self, req: Request<pb::DropAliasRequest>) -> Reply<Status> {
        write_call!(self, req, drop_alias)
    }

    async fn alter_alias(&self, req: Request<pb::AlterAliasRequest>) -> Reply<Status> {
        write_call!(self, req, alter_alias)
    }

    async fn rename_collection(&self, req: Request<pb::RenameCollectionRequest>) -> Reply<Status> {
        write_call!(self, req, rename_collection)
    }

    async fn alter_collection_field(
        &self,
        req: Request<pb::AlterCollectionFieldRequest>,
    ) -> Reply<Status> {
        write_call!(self, req, alter_collection_field)
    }

    async fn alter_database(&self, req: Request<pb::AlterDatabaseRequest>) -> Reply<Status> {
        write_call!(self, req, alter_database)
    }

    async fn alter_collection(&self, req: Request<pb::AlterCollectionRequest>) -> Reply<Status> {
        write_call!(self, req, alter_collection)
    }

    async fn describe_alias(
        &self,
        req: Request<pb::DescribeAliasRequest>,
    ) -> Reply<pb::DescribeAliasResponse> {
        read_call!(self, req, describe_alias)
    }

    async fn list_aliases(
        &self,
        req: Request<pb::ListAliasesRequest>,
    ) -> Reply<pb::ListAliasesResponse> {
        read_call!(self, req, list_aliases)
    }

    async fn put_credential(&self, req: Request<rc::CredentialChange>) -> Reply<Status> {
        write_call!(self, req, put_credential)
    }

    async fn delete_credential(&self, req: Request<pb::DeleteCredentialRequest>) -> Reply<Status> {
        write_call!(self, req, delete_credential)
    }

    async fn list_cred_users(
        &self,
        req: Request<pb::ListCredUsersRequest>,
    ) -> Reply<pb::ListCredUsersResponse> {
        read_call!(self, req, list_cred_users)
    }

    async fn create_role(&self, req: Request<pb::CreateRoleRequest>) -> Reply<Status> {
        write_call!(self, req, create_role)
    }

    async fn drop_role(&self, req: Request<pb::DropRoleRequest>) -> Reply<Status> {
        write_call!(self, req, drop_role)
    }

    async fn operate_user_role(&self, req: Request<pb::OperateUserRoleRequest>) -> Reply<Status> {
        write_call!(self, req, operate_user_role)
    }

    async fn select_role(
        &self,
        req: Request<pb::SelectRoleRequest>,
    ) -> Reply<pb::SelectRoleResponse> {
        read_call!(self, req, select_role)
    }

    async fn select_user(
        &self,
        req: Request<pb::SelectUserRequest>,
    ) -> Reply<pb::SelectUserResponse> {
        read_call!(self, req, select_user)
    }

    async fn operate_privilege(&self, req: Request<pb::OperatePrivilegeRequest>) -> Reply<Status> {
        write_call!(self, req, operate_privilege)
    }

    async fn select_grant(
        &self,
        req: Request<pb::SelectGrantRequest>,
    ) -> Reply<pb::SelectGrantResponse> {
        read_call!(self, req, select_grant)
    }

    async fn create_privilege_group(
        &self,
        req: Request<pb::CreatePrivilegeGroupRequest>,
    ) -> Reply<Status> {
        write_call!(self, req, create_privilege_group)
    }

    async fn drop_privilege_group(
        &self,
        req: Request<pb::DropPrivilegeGroupRequest>,
    ) -> Reply<Status> {
        write_call!(self, req, drop_privilege_group)
    }

    async fn list_privilege_groups(
        &self,
        req: Request<pb::ListPrivilegeGroupsRequest>,
    ) -> Reply<pb::ListPrivilegeGroupsResponse> {
        read_call!(self, req, list_privilege_groups)
    }

    async fn operate_privilege_group(
        &self,
        req: Request<pb::OperatePrivilegeGroupRequest>,
    ) -> Reply<Status> {
        write_call!(self, req, operate_privilege_group)
    }
}
