//! The read path's records in etcd, shared by the querycoord (which writes load infos and
//! shard assignments), the querynodes (which serve assignments and say so) and proxies:
//!
//! - `<meta>/querycoord-collection-loadinfo/<coll>`: [`LoadInfo`]
//! - `<meta>/querycoord-replica/<coll>/<replica>/<vchannel>`: [`ShardAssignment`]
//! - `<meta>/querynode-serving/<coll>/<replica>/<vchannel>/<node>`: [`ServingRecord`],
//!   written with the querynode's session lease

use super::records::Records;
use crate::proto::querycoord::{LoadInfo, ServingRecord, ShardAssignment};

/// Loaded collections, by `<coll>`.
pub type LoadInfos = Records<LoadInfo>;
/// Shard assignments, by `<coll>/<replica>/<vchannel>`.
pub type Assignments = Records<ShardAssignment>;
/// What querynodes serve, by `<coll>/<replica>/<vchannel>/<node>`.
pub type Serving = Records<ServingRecord>;

/// Key names of the read path's records.
#[derive(Debug, Clone)]
pub struct QueryKeys {
    /// `<meta>/querycoord-collection-loadinfo/`
    pub loads: String,
    /// `<meta>/querycoord-replica/`
    pub assignments: String,
    /// `<meta>/querynode-serving/`
    pub serving: String,
}

impl QueryKeys {
    /// Keys under `meta_root`.
    pub fn new(meta_root: &str) -> Self {
        QueryKeys {
            loads: format!("{meta_root}/querycoord-collection-loadinfo/"),
            assignments: format!("{meta_root}/querycoord-replica/"),
            serving: format!("{meta_root}/querynode-serving/"),
        }
    }

    /// A load info's key.
    pub fn load(&self, coll: i64) -> String {
        format!("{}{coll}", self.loads)
    }

    /// An assignment's key.
    pub fn assignment(&self, coll: i64, replica: i32, vchannel: &str) -> String {
        format!(
            "{}{}",
            self.assignments,
            assignment_rest(coll, replica, vchannel)
        )
    }

    /// A serving record's key.
    pub fn serving(&self, coll: i64, replica: i32, vchannel: &str, node: i64) -> String {
        format!(
            "{}{}/{node}",
            self.serving,
            assignment_rest(coll, replica, vchannel)
        )
    }

    /// Keys each new active querycoord writes its epoch to (one per followed prefix).
    pub fn epoch_markers(&self) -> [String; 2] {
        [
            format!("{}~active-epoch", self.loads),
            format!("{}~active-epoch", self.assignments),
        ]
    }
}

/// `<coll>/<replica>/<vchannel>`: an assignment's key after its prefix.
pub fn assignment_rest(coll: i64, replica: i32, vchannel: &str) -> String {
    format!("{coll}/{replica}/{vchannel}")
}
