//! The index path's records in etcd, shared by the indexcoord (which writes definitions
//! and assigns builds) and the indexnodes (which register finished builds):
//!
//! - `<meta>/field-index/<coll>/<indexID>`: [`IndexRecord`]
//! - `<meta>/segment-index/<coll>/<seg>/<buildID>`: [`BuildRecord`]

use std::collections::BTreeMap;

use prost::Message;

use super::follower::Mirror;
use crate::proto::common::IndexState;
use crate::proto::indexcoord::{BuildRecord, IndexRecord};

/// Key names of the index records.
#[derive(Debug, Clone)]
pub struct IndexKeys {
    defs: String,
    builds: String,
}

impl IndexKeys {
    /// Keys under `<meta_root>/field-index/` and `<meta_root>/segment-index/`.
    pub fn new(meta_root: &str) -> Self {
        IndexKeys {
            defs: format!("{meta_root}/field-index/"),
            builds: format!("{meta_root}/segment-index/"),
        }
    }

    /// An index definition's key.
    pub fn def(&self, coll: i64, id: i64) -> String {
        format!("{}{coll}/{id}", self.defs)
    }

    /// A build record's key.
    pub fn build(&self, coll: i64, seg: i64, build: i64) -> String {
        format!("{}{coll}/{seg}/{build}", self.builds)
    }

    /// Keys each new active indexcoord writes its epoch to (one per followed prefix).
    pub fn epoch_markers(&self) -> [String; 2] {
        [
            format!("{}~active-epoch", self.defs),
            format!("{}~active-epoch", self.builds),
        ]
    }
}

/// Index files live under this prefix of the object store.
pub const INDEX_FILES: &str = "index_files";

/// The object key of a build's index file.
pub fn index_file(build: i64) -> String {
    format!("{INDEX_FILES}/{build}/index")
}

fn decode<M: Message + Default>(key: &str, value: &[u8]) -> Result<M, String> {
    M::decode(value).map_err(|e| format!("{key}: {e}"))
}

/// Index definitions by ID.
#[derive(Debug, Default, Clone)]
pub struct IndexDefs {
    defs: BTreeMap<i64, IndexRecord>,
}

impl Mirror for IndexDefs {
    type Keys = IndexKeys;

    fn prefix(keys: &IndexKeys) -> &str {
        &keys.defs
    }

    fn apply_put(
        &mut self,
        keys: &IndexKeys,
        key: &str,
        value: &[u8],
        _rev: i64,
    ) -> Result<(), String> {
        let Some(rest) = key.strip_prefix(&keys.defs) else {
            return Ok(());
        };
        if rest.starts_with('~') {
            return Ok(());
        }
        let d: IndexRecord = decode(key, value)?;
        self.defs.insert(d.id, d);
        Ok(())
    }

    fn apply_delete(&mut self, keys: &IndexKeys, key: &str) {
        if let Some(id) = key
            .strip_prefix(&keys.defs)
            .and_then(|r| r.rsplit('/').next())
            .and_then(|id| id.parse().ok())
        {
            self.defs.remove(&id);
        }
    }
}

impl IndexDefs {
    /// Every definition (dropped ones too).
    pub fn all(&self) -> impl Iterator<Item = &IndexRecord> {
        self.defs.values()
    }

    /// The live definitions of a collection.
    pub fn of_collection(&self, coll: i64) -> Vec<&IndexRecord> {
        self.defs
            .values()
            .filter(|d| d.collection_id == coll && d.dropped_at_ms == 0)
            .collect()
    }

    /// The live definitions of a collection that have per-segment builds
    /// ([`IndexRecord::has_builds`]): what indexnodes build and querynodes load.
    pub fn with_builds(&self, coll: i64) -> Vec<&IndexRecord> {
        let mut defs = self.of_collection(coll);
        defs.retain(|d| d.has_builds());
        defs
    }
}

/// A build record and the revision it was last written at.
#[derive(Debug, Clone)]
pub struct Build {
    /// The record.
    pub record: BuildRecord,
    /// Its mod revision.
    pub revision: i64,
}

/// Build records by build ID.
#[derive(Debug, Default, Clone)]
pub struct Builds {
    builds: BTreeMap<i64, Build>,
}

impl Mirror for Builds {
    type Keys = IndexKeys;

    fn prefix(keys: &IndexKeys) -> &str {
        &keys.builds
    }

    fn apply_put(
        &mut self,
        keys: &IndexKeys,
        key: &str,
        value: &[u8],
        revision: i64,
    ) -> Result<(), String> {
        let Some(rest) = key.strip_prefix(&keys.builds) else {
            return Ok(());
        };
        if rest.starts_with('~') {
            return Ok(());
        }
        let record: BuildRecord = decode(key, value)?;
        self.builds
            .insert(record.build_id, Build { record, revision });
        Ok(())
    }

    fn apply_delete(&mut self, keys: &IndexKeys, key: &str) {
        if let Some(id) = key
            .strip_prefix(&keys.builds)
            .and_then(|r| r.rsplit('/').next())
            .and_then(|id| id.parse().ok())
        {
            self.builds.remove(&id);
        }
    }
}

impl Builds {
    /// Every build.
    pub fn all(&self) -> impl Iterator<Item = &Build> {
        self.builds.values()
    }

    /// Whether segment `seg` has a finished (or, unless `finished`, a failed) build of
    /// every index of `indexes`: how querynodes judge a segment's builds done (and the
    /// indexcoord judges it as they do).
    pub fn done<'a>(
        &self,
        seg: i64,
        indexes: impl IntoIterator<Item = &'a i64>,
        finished: bool,
    ) -> bool {
        indexes.into_iter().all(|index| {
            self.builds.values().map(|b| &b.record).any(|b| {
                b.index_id == *index
                    && b.segment_id == seg
                    && match b.state() {
                        IndexState::Finished => true,
                        IndexState::Failed => !finished,
                        _ => false,
                    }
            })
        })
    }

    /// The builds of one index.
    pub fn of_index(&self, index: i64) -> Vec<&Build> {
        self.builds
            .values()
            .filter(|b| b.record.index_id == index)
            .collect()
    }
}

impl IndexRecord {
    /// Whether indexnodes build it segment by segment: every vector index; a scalar index
    /// on a whole flat scalar field (booleans, integers, floats, strings; a geometry's
    /// RTREE) whose record
    /// keeps the field's type; a JSON path index of cast BOOL, DOUBLE or VARCHAR. ARRAY
    /// indexes, JSON indexes of the ARRAY_* casts, and scalar records written before the
    /// type was kept, are recorded only (filters scan those fields).
    pub fn has_builds(&self) -> bool {
        use crate::proto::schema::DataType as T;
        !self.scalar
            || match T::try_from(self.data_type) {
                Ok(T::Json) => self.json_cast().is_some(),
                Ok(
                    T::Bool
                    | T::Int8
                    | T::Int16
                    | T::Int32
                    | T::Int64
                    | T::Float
                    | T::Double
                    | T::String
                    | T::VarChar
                    | T::Geometry,
                ) => self.json_path.is_empty(),
                _ => false,
            }
    }

    /// A JSON field's index's cast (`json_cast_type`), when it is one that is built.
    pub fn json_cast(&self) -> Option<crate::index::scalar::JsonCast> {
        if self.data_type != crate::proto::schema::DataType::Json as i32 {
            return None;
        }
        let params = crate::index::params::flatten(&self.params).ok()?;
        crate::index::scalar::JsonCast::parse(params.get("json_cast_type")?)
    }

    /// The vector field's type (records written before it was kept: FloatVector).
    pub fn vector_type(&self) -> crate::proto::schema::DataType {
        use crate::proto::schema::DataType;
        match DataType::try_from(self.data_type) {
            Ok(DataType::None) | Err(_) => DataType::FloatVector,
            Ok(t) => t,
        }
    }
}
