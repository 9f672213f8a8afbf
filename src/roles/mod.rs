//! The eight roles of a Milvus cluster and what each one runs.
//!
//! Coordinators (`rootcoord`, `querycoord`, `datacoord`, `indexcoord`) are exclusive and
//! can run in active-standby pairs; the proxy and the three worker kinds register one
//! session per process and may run in any number.

pub mod coordinator;
pub mod proxy;
pub mod rootcoord;
pub mod worker;

use std::sync::Arc;

use crate::process::Context;

use std::fmt;
use std::str::FromStr;

/// A component of the cluster, as named on the command line (`milvus run <role>`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Role {
    /// Root coordinator: DDL, timestamps and IDs.
    RootCoord,
    /// Client entry point.
    Proxy,
    /// Query coordinator.
    QueryCoord,
    /// Query worker.
    QueryNode,
    /// Index coordinator.
    IndexCoord,
    /// Index worker.
    IndexNode,
    /// Data coordinator.
    DataCoord,
    /// Data worker.
    DataNode,
}

impl Role {
    /// Every role, in the order a cluster starts them.
    pub const ALL: [Role; 8] = [
        Role::RootCoord,
        Role::DataCoord,
        Role::QueryCoord,
        Role::IndexCoord,
        Role::DataNode,
        Role::IndexNode,
        Role::QueryNode,
        Role::Proxy,
    ];

    /// The role's command-line and session name (`rootcoord`).
    pub fn name(self) -> &'static str {
        match self {
            Role::RootCoord => "rootcoord",
            Role::Proxy => "proxy",
            Role::QueryCoord => "querycoord",
            Role::QueryNode => "querynode",
            Role::IndexCoord => "indexcoord",
            Role::IndexNode => "indexnode",
            Role::DataCoord => "datacoord",
            Role::DataNode => "datanode",
        }
    }

    /// The role's section in `milvus.yaml` (`rootCoord`).
    pub fn section(self) -> &'static str {
        match self {
            Role::RootCoord => "rootCoord",
            Role::Proxy => "proxy",
            Role::QueryCoord => "queryCoord",
            Role::QueryNode => "queryNode",
            Role::IndexCoord => "indexCoord",
            Role::IndexNode => "indexNode",
            Role::DataCoord => "dataCoord",
            Role::DataNode => "dataNode",
        }
    }

    /// The name Milvus uses in its start-up log lines (`RootCoord`).
    pub fn display_name(self) -> &'static str {
        match self {
            Role::RootCoord => "RootCoord",
            Role::Proxy => "Proxy",
            Role::QueryCoord => "QueryCoord",
            Role::QueryNode => "QueryNode",
            Role::IndexCoord => "IndexCoord",
            Role::IndexNode => "IndexNode",
            Role::DataCoord => "DataCoord",
            Role::DataNode => "DataNode",
        }
    }

    /// Milvus 2.2.3's default port for the role.
    pub fn default_port(self) -> u16 {
        match self {
            Role::RootCoord => 53100,
            Role::Proxy => 19530,
            Role::QueryCoord => 19531,
            Role::QueryNode => 21123,
            Role::IndexCoord => 31000,
            Role::IndexNode => 21121,
            Role::DataCoord => 13333,
            Role::DataNode => 21124,
        }
    }

    /// Whether the role is an exclusive coordinator (and so can run active-standby).
    pub fn is_coordinator(self) -> bool {
        matches!(
            self,
            Role::RootCoord | Role::QueryCoord | Role::DataCoord | Role::IndexCoord
        )
    }

    /// The role whose session has this `ServerName`, if any.
    pub fn from_name(name: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.name() == name)
    }

    /// The valid role names, comma separated, for error messages.
    pub fn valid_names() -> String {
        Role::ALL.map(Role::name).join(", ")
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// An unknown role name.
#[derive(Debug, thiserror::Error)]
#[error("unknown role {0:?}; expected one of: {valid}", valid = Role::valid_names())]
pub struct UnknownRole(pub String);

impl FromStr for Role {
    type Err = UnknownRole;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Role::from_name(s).ok_or_else(|| UnknownRole(s.to_string()))
    }
}

/// What this process runs: the role's own state and gRPC services, if any.
pub enum Component {
    /// The root coordinator.
    RootCoord(Arc<rootcoord::RootCoord>),
    /// A coordinator with no state of its own yet (query, data, index).
    Coordinator,
    /// The proxy (a worker that serves the Milvus client protocol).
    Proxy(Arc<proxy::Proxy>),
    /// A worker or the proxy.
    Worker,
}

impl Component {
    /// The component for `ctx.role`.
    pub fn new(ctx: &Arc<Context>) -> Component {
        match ctx.role {
            Role::RootCoord => Component::RootCoord(rootcoord::RootCoord::new(ctx.clone())),
            Role::Proxy => Component::Proxy(proxy::Proxy::new(ctx.clone())),
            r if r.is_coordinator() => Component::Coordinator,
            _ => Component::Worker,
        }
    }

    /// Its gRPC services, served on the role's port beside `/healthz` and `/status`.
    pub fn grpc_routes(&self) -> Option<axum::Router> {
        match self {
            Component::RootCoord(rc) => Some(
                tonic::service::Routes::new(rootcoord::service::Service::server(rc.clone()))
                    .into_axum_router(),
            ),
            Component::Proxy(p) => Some(
                tonic::service::Routes::new(proxy::service::Service::server(p.clone()))
                    .into_axum_router(),
            ),
            _ => None,
        }
    }

    /// Runs it until it must exit; returns the exit code.
    pub async fn run(&self, ctx: &Context) -> i32 {
        match self {
            Component::RootCoord(rc) => coordinator::run(ctx, rc).await,
            Component::Coordinator => coordinator::run(ctx, &coordinator::Stateless).await,
            Component::Worker | Component::Proxy(_) => worker::run(ctx).await,
        }
    }
}
