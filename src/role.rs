//! The eight roles of a Milvus cluster, by name, section and default port: a leaf that
//! configuration, sessions and roles all import (it imports none of them).

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

    /// The workers whose sessions this coordinator acts on (moves their channels, shards
    /// or builds when they are gone): the datacoord's datanodes, the querycoord's
    /// querynodes, the indexcoord's indexnodes.
    pub fn workers(self) -> &'static [Role] {
        match self {
            Role::DataCoord => &[Role::DataNode],
            Role::QueryCoord => &[Role::QueryNode],
            Role::IndexCoord => &[Role::IndexNode],
            _ => &[],
        }
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
