//! Coordinator metadata in etcd, shared by the roles: the rootcoord's catalog records,
//! the data plane's segment and channel records, and the follower that mirrors any of
//! them into memory (an active coordinator and its hot standby write and follow their
//! own; other roles follow them read-only).

pub mod auth;
pub mod catalog;
pub mod data;
pub mod follower;
pub mod index;
pub mod query;
pub mod records;

/// Wall-clock Unix milliseconds, the time records carry (drops, failures, loads).
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}
