//! The rootcoord's catalog in memory: databases and collections (with their partitions),
//! rebuilt from and kept current by the records under `<meta>/root-coord/`.
//!
//! Besides the records, every database, collection and partition name has a name key
//! (`names/...`), written and checked (`version == 0`) in the same txn that creates the
//! record, so etcd itself refuses a second record with the same name, even from a
//! write that reaches etcd late.
//!
//! An alias is a name key of its own (`names/alias/<db>/<alias>`, its collection's ID as
//! value). A collection name and an alias never coincide in a database: creating either
//! checks in the same txn that the other's name key is absent. Lookups by name
//! ([`Catalog::collection`]) take a collection's name or one of its aliases.

use std::collections::{BTreeMap, HashMap, HashSet};

use prost::Message;

use super::auth::{AuthKeys, AuthState};
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
    /// The users, roles and grants (`credential/`), part of the catalog.
    pub auth: AuthKeys,
}

impl CatalogKeys {
    /// Keys under `<meta_root>/root-coord/`.
    pub fn new(meta_root: &str) -> Self {
        CatalogKeys {
            prefix: format!("{meta_root}/root-coord/"),
            auth: AuthKeys::new(meta_root),
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

    /// The key of alias `alias` in database `db_id` (its value: the collection's ID).
    pub fn alias(&self, db_id: i64, alias: &str) -> String {
        format!("{}names/alias/{db_id}/{alias}", self.prefix)
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
    aliases: HashMap<(i64, String), i64>,
    auth: AuthState,
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
        if rest.starts_with("credential/") {
            return self.auth.apply_put(&keys.auth, key, value, revision);
        }
        if rest.starts_with("names/") {
            self.names.insert(key.to_string());
            if let Some((db, alias)) = alias_of_key(rest) {
                let coll = std::str::from_utf8(value)
                    .ok()
                    .and_then(|v| v.parse().ok())
                    .ok_or_else(|| format!("{key}: not a collection ID"))?;
                self.aliases.insert((db, alias), coll);
            }
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
        if rest.starts_with("credential/") {
            return self.auth.apply_delete(&keys.auth, key);
        }
        if rest.starts_with("names/") {
            self.names.remove(key);
            if let Some(k) = alias_of_key(rest) {
                self.aliases.remove(&k);
            }
            return;
        }
        let id = rest.rsplit('/').next().and_then(|s| s.parse::<i64>().ok());
        let Some(id) = id else { return };
        if rest.starts_with("database/db-info/") {
            self.dbs.remove(&id);
        } else if let Some(db_and_id) = rest.strip_prefix("database/collection-info/") {
            // Only the record under this key: a collection moved to another database by a
            // rename is stored under its new key (whatever order the two events come in).
            let db = db_and_id
                .split('/')
                .next()
                .and_then(|d| d.parse::<i64>().ok());
            if self.colls.get(&id).map(|c| c.db_id) == db {
                self.remove_collection(id);
            }
        }
    }

    fn remove_collection(&mut self, id: i64) {
        self.coll_revision.remove(&id);
        if let Some(old) = self.colls.remove(&id) {
            self.coll_by_name
                .remove(&(old.db_id, collection_name(&old).to_string()));
        }
    }

    /// Users, roles and grants.
    pub fn auth(&self) -> &AuthState {
        &self.auth
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

    /// The collection named `name`, or aliased `name`, in database `db_id`.
    pub fn collection(&self, db_id: i64, name: &str) -> Option<&CollectionRecord> {
        self.named(db_id, name).or_else(|| {
            self.alias(db_id, name)
                .and_then(|id| self.colls.get(&id))
                .filter(|c| c.db_id == db_id)
        })
    }

    /// The collection whose own name is `name` in database `db_id` (aliases not taken).
    pub fn named(&self, db_id: i64, name: &str) -> Option<&CollectionRecord> {
        self.coll_by_name
            .get(&(db_id, name.to_string()))
            .and_then(|id| self.colls.get(id))
    }

    /// The collection ID alias `name` of database `db_id` stands for.
    pub fn alias(&self, db_id: i64, name: &str) -> Option<i64> {
        self.aliases.get(&(db_id, name.to_string())).copied()
    }

    /// The aliases of collection `id`, sorted.
    pub fn aliases_of(&self, id: i64) -> Vec<String> {
        let mut v: Vec<String> = self
            .aliases
            .iter()
            .filter(|(_, c)| **c == id)
            .map(|((_, a), _)| a.clone())
            .collect();
        v.sort();
        v
    }

    /// Every alias of database `db_id` whose collection exists, sorted.
    pub fn aliases_in(&self, db_id: i64) -> Vec<String> {
        let mut v: Vec<String> = self
            .aliases
            .iter()
            .filter(|((db, _), c)| *db == db_id && self.colls.contains_key(c))
            .map(|((_, a), _)| a.clone())
            .collect();
        v.sort();
        v
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

/// (database ID, alias) of an alias key's part after the catalog prefix.
fn alias_of_key(rest: &str) -> Option<(i64, String)> {
    let (db, alias) = rest.strip_prefix("names/alias/")?.split_once('/')?;
    Some((db.parse().ok()?, alias.to_string()))
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::schema::CollectionSchema;

    #[test]
    fn an_alias_names_its_collection_until_its_key_is_deleted() {
        let keys = CatalogKeys::new("m");
        let mut cat = Catalog::default();
        let record = CollectionRecord {
            id: 7,
            db_id: DEFAULT_DB_ID,
            schema: Some(CollectionSchema {
                name: "books".to_string(),
                ..Default::default()
            }),
            ..Default::default()
        };
        cat.apply_put(&keys, &keys.collection(1, 7), &record.encode_to_vec(), 5)
            .unwrap();
        let alias = keys.alias(1, "shelf");
        assert_eq!(alias, "m/root-coord/names/alias/1/shelf");
        cat.apply_put(&keys, &alias, b"7", 6).unwrap();
        assert_eq!(cat.collection(1, "shelf").map(|c| c.id), Some(7));
        assert!(cat.named(1, "shelf").is_none(), "an alias is not a name");
        assert!(
            cat.collection(2, "shelf").is_none(),
            "aliases belong to their database"
        );
        assert_eq!(cat.aliases_of(7), vec!["shelf".to_string()]);
        assert_eq!(cat.aliases_in(1), vec!["shelf".to_string()]);
        assert!(
            cat.apply_put(&keys, &keys.alias(1, "bad"), b"x", 7)
                .is_err(),
            "an alias key must hold a collection ID"
        );
        cat.apply_delete(&keys, &alias);
        assert!(cat.collection(1, "shelf").is_none());
        assert!(cat.aliases_of(7).is_empty());
    }
}
