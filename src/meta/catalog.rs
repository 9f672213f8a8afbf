//! The rootcoord's catalog in memory: databases and collections (with their partitions),
//! rebuilt from and kept current by the records under `<meta>/root-coord/`.
//!
//! Besides the records, every database, collection and partition name has a name key
//! (`names/...`), written and checked (`version == 0`) in the same txn that creates the
//! record, so etcd itself refuses a second record with the same name, even from a
//! write that reaches etcd late.

use std::collections::{BTreeMap, HashMap, HashSet};

use prost::Message;

use crate::proto::rootcoord::{CollectionRecord, DatabaseRecord};

/// The ID of the `default` database, which always exists.
pub const DEFAULT_DB_ID: i64 = 1;
/// The name of the default database.
pub const DEFAULT_DB: &str = "default";
/// The name of the default partition.
pub const DEFAULT_PARTITION: &str = "_default";

/// Key names of catalog records.
#[derive(Debug, Clone)]
pub struct CatalogKeys {
    prefix: String,
}

impl CatalogKeys {
    /// Keys under `<meta_root>/root-coord/`.
    pub fn new(meta_root: &str) -> Self {
        CatalogKeys {
            prefix: format!("{meta_root}/root-coord/"),
        }
    }

    /// The prefix of every catalog record.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The key each new active writes its epoch to when it takes over.
    pub fn epoch_marker(&self) -> String {
        format!("{}active-epoch", self.prefix)
    }

    /// A database record's key.
    pub fn database(&self, id: i64) -> String {
        format!("{}database/db-info/{id}", self.prefix)
    }

    /// A collection record's key.
    pub fn collection(&self, db_id: i64, id: i64) -> String {
        format!("{}database/collection-info/{db_id}/{id}", self.prefix)
    }

    /// The name key of a database.
    pub fn database_name(&self, name: &str) -> String {
        format!("{}names/database/{name}", self.prefix)
    }

    /// The name key of a collection in database `db_id`.
    pub fn collection_name(&self, db_id: i64, name: &str) -> String {
        format!("{}names/collection/{db_id}/{name}", self.prefix)
    }

    /// The prefix of the partition name keys of collection `coll_id`.
    pub fn partition_names(&self, coll_id: i64) -> String {
        format!("{}names/partition/{coll_id}/", self.prefix)
    }

    /// The name key of a partition of collection `coll_id`.
    pub fn partition_name(&self, coll_id: i64, name: &str) -> String {
        format!("{}{name}", self.partition_names(coll_id))
    }

    /// Every name key a collection record implies (its own and its partitions').
    pub fn collection_name_keys(&self, c: &CollectionRecord) -> Vec<(String, String)> {
        let mut out = vec![(
            self.collection_name(c.db_id, collection_name(c)),
            c.id.to_string(),
        )];
        for p in &c.partitions {
            out.push((self.partition_name(c.id, &p.name), p.id.to_string()));
        }
        out
    }
}

/// Databases and collections by ID, with name indexes.
#[derive(Debug, Default, Clone)]
pub struct Catalog {
    dbs: BTreeMap<i64, DatabaseRecord>,
    colls: BTreeMap<i64, CollectionRecord>,
    coll_by_name: HashMap<(i64, String), i64>,
    coll_revision: HashMap<i64, i64>,
    names: HashSet<String>,
}

impl Catalog {
    /// Applies a put of `key` at `revision` (ignoring keys that are not catalog records).
    pub fn apply_put(
        &mut self,
        keys: &CatalogKeys,
        key: &str,
        value: &[u8],
        revision: i64,
    ) -> Result<(), String> {
        let Some(rest) = key.strip_prefix(keys.prefix()) else {
            return Ok(());
        };
        if rest.starts_with("names/") {
            self.names.insert(key.to_string());
        } else if rest.starts_with("database/db-info/") {
            let db = DatabaseRecord::decode(value).map_err(|e| format!("{key}: {e}"))?;
            self.dbs.insert(db.id, db);
        } else if rest.starts_with("database/collection-info/") {
            let c = CollectionRecord::decode(value).map_err(|e| format!("{key}: {e}"))?;
            self.remove_collection(c.id);
            self.coll_by_name
                .insert((c.db_id, collection_name(&c).to_string()), c.id);
            self.coll_revision.insert(c.id, revision);
            self.colls.insert(c.id, c);
        }
        Ok(())
    }

    /// Applies a delete of `key`.
    pub fn apply_delete(&mut self, keys: &CatalogKeys, key: &str) {
        let Some(rest) = key.strip_prefix(keys.prefix()) else {
            return;
        };
        if rest.starts_with("names/") {
            self.names.remove(key);
            return;
        }
        let id = rest.rsplit('/').next().and_then(|s| s.parse::<i64>().ok());
        let Some(id) = id else { return };
        if rest.starts_with("database/db-info/") {
            self.dbs.remove(&id);
        } else if rest.starts_with("database/collection-info/") {
            self.remove_collection(id);
        }
    }

    fn remove_collection(&mut self, id: i64) {
        self.coll_revision.remove(&id);
        if let Some(old) = self.colls.remove(&id) {
            self.coll_by_name
                .remove(&(old.db_id, collection_name(&old).to_string()));
        }
    }

    /// The database named `name` (the `default` one exists even before it is stored).
    pub fn database(&self, name: &str) -> Option<DatabaseRecord> {
        self.dbs
            .values()
            .find(|d| d.name == name)
            .cloned()
            .or_else(|| {
                (name == DEFAULT_DB).then(|| DatabaseRecord {
                    id: DEFAULT_DB_ID,
                    name: DEFAULT_DB.to_string(),
                    ..Default::default()
                })
            })
    }

    /// Every database, `default` first.
    pub fn databases(&self) -> Vec<DatabaseRecord> {
        let mut v: Vec<DatabaseRecord> = self.dbs.values().cloned().collect();
        if !v.iter().any(|d| d.name == DEFAULT_DB) {
            v.push(self.database(DEFAULT_DB).expect("default"));
        }
        v.sort_by_key(|d| (d.name != DEFAULT_DB, d.created_timestamp, d.id));
        v
    }

    /// Whether the default database has its record in etcd.
    pub fn default_db_stored(&self) -> bool {
        self.dbs.contains_key(&DEFAULT_DB_ID)
    }

    /// The collection `name` in database `db_id`.
    pub fn collection(&self, db_id: i64, name: &str) -> Option<&CollectionRecord> {
        self.coll_by_name
            .get(&(db_id, name.to_string()))
            .and_then(|id| self.colls.get(id))
    }

    /// The etcd revision at which a collection's record was last written.
    pub fn collection_revision(&self, id: i64) -> i64 {
        self.coll_revision.get(&id).copied().unwrap_or(0)
    }

    /// The collections of a database, oldest first.
    pub fn collections_in(&self, db_id: i64) -> Vec<&CollectionRecord> {
        let mut v: Vec<&CollectionRecord> =
            self.colls.values().filter(|c| c.db_id == db_id).collect();
        v.sort_by_key(|c| (c.created_timestamp, c.id));
        v
    }

    /// Name keys the stored records imply but etcd lacks (a catalog written before name
    /// keys existed), as (key, value) pairs to write.
    pub fn missing_name_keys(&self, keys: &CatalogKeys) -> Vec<(String, String)> {
        let mut want: Vec<(String, String)> = self
            .dbs
            .values()
            .map(|d| (keys.database_name(&d.name), d.id.to_string()))
            .collect();
        for c in self.colls.values() {
            want.extend(keys.collection_name_keys(c));
        }
        want.retain(|(k, _)| !self.names.contains(k));
        want
    }

    /// How many virtual channels live on each of the `names` physical channels.
    pub fn pchannel_usage(&self, names: &[String]) -> Vec<usize> {
        names
            .iter()
            .map(|p| {
                self.colls
                    .values()
                    .flat_map(|c| &c.physical_channel_names)
                    .filter(|q| *q == p)
                    .count()
            })
            .collect()
    }

    /// How many collections there are in all.
    pub fn collection_count(&self) -> usize {
        self.colls.len()
    }
}

/// A collection's name (its schema's name).
pub fn collection_name(c: &CollectionRecord) -> &str {
    c.schema.as_ref().map_or("", |s| s.name.as_str())
}

impl Catalog {
    /// A collection by ID.
    pub fn collections_by_id(&self, id: i64) -> Option<CollectionRecord> {
        self.colls.get(&id).cloned()
    }

    /// A collection by ID, borrowed.
    pub fn collection_by_id(&self, id: i64) -> Option<&CollectionRecord> {
        self.colls.get(&id)
    }

    /// Every collection, by ID.
    pub fn all_collections(&self) -> impl Iterator<Item = &CollectionRecord> {
        self.colls.values()
    }
}

impl super::follower::Mirror for Catalog {
    type Keys = CatalogKeys;

    fn prefix(keys: &CatalogKeys) -> &str {
        keys.prefix()
    }

    fn apply_put(
        &mut self,
        keys: &CatalogKeys,
        key: &str,
        value: &[u8],
        revision: i64,
    ) -> Result<(), String> {
        Catalog::apply_put(self, keys, key, value, revision)
    }

    fn apply_delete(&mut self, keys: &CatalogKeys, key: &str) {
        Catalog::apply_delete(self, keys, key);
    }
}
