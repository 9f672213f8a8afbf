//! The eight roles of a Milvus cluster and what each one runs.
//!
//! Coordinators (`rootcoord`, `querycoord`, `datacoord`, `indexcoord`) are exclusive and
//! can run in active-standby pairs; the proxy and the three worker kinds register one
//! session per process and may run in any number.

pub mod coordinator;
pub mod datacoord;
pub mod datanode;
pub mod indexcoord;
pub mod indexnode;
pub mod proxy;
pub mod querycoord;
pub mod querynode;
pub mod rootcoord;
pub mod worker;

use std::sync::Arc;

use crate::context::Context;
use crate::grpc::GrpcLimits;
pub use crate::role::{Role, UnknownRole};

/// What this process runs: the role's own state and gRPC services, if any.
pub enum Component {
    /// The root coordinator.
    RootCoord(Arc<rootcoord::RootCoord>),
    /// The data coordinator.
    DataCoord(Arc<datacoord::DataCoord>),
    /// The index coordinator.
    IndexCoord(Arc<indexcoord::IndexCoord>),
    /// The query coordinator.
    QueryCoord(Arc<querycoord::QueryCoord>),
    /// The proxy (a worker that serves the Milvus client protocol).
    Proxy(Arc<proxy::Proxy>),
    /// A datanode.
    DataNode(Arc<datanode::DataNode>),
    /// An indexnode.
    IndexNode(Arc<indexnode::IndexNode>),
    /// A querynode.
    QueryNode(Arc<querynode::QueryNode>),
}

impl Component {
    /// The component for `ctx.role`, or why it cannot run (a message for the operator).
    pub fn new(ctx: &Arc<Context>) -> Result<Component, String> {
        Ok(match ctx.role {
            Role::RootCoord => Component::RootCoord(rootcoord::RootCoord::new(ctx.clone())),
            Role::Proxy => Component::Proxy(proxy::Proxy::new(ctx.clone())),
            Role::DataCoord => Component::DataCoord(datacoord::DataCoord::new(ctx.clone())?),
            Role::DataNode => Component::DataNode(datanode::DataNode::new(ctx.clone())?),
            Role::IndexCoord => Component::IndexCoord(indexcoord::IndexCoord::new(ctx.clone())?),
            Role::IndexNode => Component::IndexNode(indexnode::IndexNode::new(ctx.clone())?),
            Role::QueryCoord => Component::QueryCoord(querycoord::QueryCoord::new(ctx.clone())),
            Role::QueryNode => Component::QueryNode(querynode::QueryNode::new(ctx.clone())?),
        })
    }

    /// Its gRPC services, served on the role's port beside `/healthz` and `/status`,
    /// with the role's message size limits (`section`: its `milvus.yaml` section).
    pub fn grpc_routes(&self, section: &str, limits: &GrpcLimits) -> Option<axum::Router> {
        macro_rules! routes {
            ($server:expr) => {
                tonic::service::Routes::new($crate::limit_server!($server, limits))
                    .into_axum_router()
            };
        }
        let router = match self {
            Component::RootCoord(rc) => routes!(rootcoord::service::Service::server(rc.clone())),
            // The proxy also serves Milvus's RESTful API v2 on its port.
            // Users are checked before tonic decodes a call.
            Component::Proxy(p) => routes!(proxy::service::Service::server(p.clone()))
                .layer(axum::middleware::from_fn_with_state(
                    p.clone(),
                    proxy::auth::grpc_gate,
                ))
                .merge(proxy::rest::router(p.clone())),
            Component::DataCoord(d) => routes!(datacoord::service::Service::server(d.clone())),
            Component::IndexCoord(i) => {
                routes!(indexcoord::service::Service::server(i.clone()))
            }
            Component::QueryCoord(q) => {
                routes!(querycoord::service::Service::server(q.clone()))
            }
            Component::QueryNode(q) => routes!(querynode::service::Service::server(q.clone())),
            _ => return None,
        };
        Some(crate::grpc::refuse_oversized(
            router,
            format!("{section}.grpc.serverMaxRecvSize"),
            limits.server_max_recv,
        ))
    }

    /// Runs it until it must exit; returns the exit code.
    pub async fn run(&self, ctx: &Context) -> i32 {
        match self {
            Component::RootCoord(rc) => coordinator::run(ctx, rc).await,
            Component::DataCoord(d) => coordinator::run(ctx, d).await,
            Component::QueryCoord(q) => coordinator::run(ctx, q).await,
            Component::DataNode(d) => worker::run(ctx, d).await,
            Component::IndexCoord(i) => coordinator::run(ctx, i).await,
            Component::IndexNode(i) => worker::run(ctx, i).await,
            Component::QueryNode(q) => worker::run(ctx, q).await,
            Component::Proxy(_) => worker::run(ctx, &worker::Plain).await,
        }
    }
}
