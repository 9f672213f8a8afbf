//! The indexcoord's gRPC service. A standby answers only `GetComponentStates`; a caller
//! that names another ServerID in the `serverid` metadata gets a mismatch status.

use std::sync::Arc;

use tonic::{Request, Response};

use super::IndexCoord;
use crate::proto::common::Status;
use crate::proto::indexcoord as ic;
use crate::proto::indexcoord::index_coord_server::{IndexCoord as IndexCoordApi, IndexCoordServer};
use crate::proto::milvus as pb;
use crate::roles::coordinator::server_id_mismatch;
use crate::status::{code, component_states, error, WithStatus};

/// The gRPC face of an [`IndexCoord`].
pub struct Service(pub Arc<IndexCoord>);

impl Service {
    /// A tonic service for it.
    pub fn server(i: Arc<IndexCoord>) -> IndexCoordServer<Service> {
        IndexCoordServer::new(Service(i))
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
impl IndexCoordApi for Service {
    async fn get_component_states(
        &self,
        _req: Request<pb::GetComponentStatesRequest>,
    ) -> Reply<pb::ComponentStates> {
        Ok(Response::new(component_states(&self.0.ctx.state)))
    }

    async fn create_index(&self, req: Request<ic::CreateIndexRequest>) -> Reply<Status> {
        if let Some(r) = self.gate(&req) {
            return Ok(Response::new(r));
        }
        // Its own task: a caller that gives up must not cut the change short.
        let me = self.0.clone();
        let req = req.into_inner();
        let done = tokio::spawn(async move { me.create_index(req).await }).await;
        Ok(Response::new(done.unwrap_or_else(|e| {
            error(code::UNEXPECTED, format!("create index failed: {e}"))
        })))
    }

    async fn describe_index(
        &self,
        req: Request<ic::DescribeIndexRequest>,
    ) -> Reply<pb::DescribeIndexResponse> {
        if let Some(r) = self.gate(&req) {
            return Ok(Response::new(r));
        }
        Ok(Response::new(self.0.describe_index(req.into_inner())))
    }

    async fn alter_index(&self, req: Request<ic::AlterIndexRequest>) -> Reply<Status> {
        if let Some(r) = self.gate(&req) {
            return Ok(Response::new(r));
        }
        let me = self.0.clone();
        let req = req.into_inner();
        let done = tokio::spawn(async move { me.alter_index(req).await }).await;
        Ok(Response::new(done.unwrap_or_else(|e| {
            error(code::UNEXPECTED, format!("alter index failed: {e}"))
        })))
    }

    async fn drop_index(&self, req: Request<ic::DropIndexRequest>) -> Reply<Status> {
        if let Some(r) = self.gate(&req) {
            return Ok(Response::new(r));
        }
        let me = self.0.clone();
        let req = req.into_inner();
        let done = tokio::spawn(async move { me.drop_index(req).await }).await;
        Ok(Response::new(done.unwrap_or_else(|e| {
            error(code::UNEXPECTED, format!("drop index failed: {e}"))
        })))
    }
}
