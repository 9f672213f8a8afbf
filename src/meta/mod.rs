//! Coordinator metadata in etcd, shared by the roles: the rootcoord's catalog records,
//! the data plane's segment and channel records, and the follower that mirrors any of
//! them into memory (an active coordinator and its hot standby write and follow their
//! own; other roles follow them read-only).

pub mod catalog;
pub mod data;
pub mod follower;
pub mod index;
pub mod query;
pub mod records;
