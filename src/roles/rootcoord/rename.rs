//! `RenameCollection`, within a database or into another one, as Milvus 2.5 does it.
//!
//! The collection keeps its ID, so everything keyed by it (segments, indexes, loads,
//! channels, partitions, aliases) follows without being touched. One fenced txn moves
//! the record (to `collection-info/<new db>/<id>` when the database changes: the old key
//! deleted first) and its name key, conditioned on the record being the one read, the new
//! name key and an alias of the new name being absent. Checks, codes and messages are
//! Milvus's (`internal/rootcoord/meta_table.go` RenameCollection).

use etcd_client::{Compare, CompareOp, TxnOp};
use prost::Message;

use super::ddl::{collection_not_found, db_name};
use super::RootCoord;
use crate::meta::catalog::collection_name;
use crate::proto::common::Status;
use crate::proto::milvus as pb;
use crate::schema::names;
use crate::status::{code, error};

fn refused(why: String) -> Status {
    error(code::UNEXPECTED, why)
}

impl RootCoord {
    /// `RenameCollection`: `oldName` of `db_name` becomes `newName` of `newDBName` (the
    /// same database when empty).
    pub async fn rename_collection(
        &self,
        req: pb::RenameCollectionRequest,
        request: Option<String>,
    ) -> Status {
        let c = match self.begin(request).await {
            Ok(x) => x,
            Err(s) => return s,
        };
        // The old name is only looked up (Milvus answers a malformed one "not found").
        if let Err(s) = names::collection(&req.new_name) {
            return s;
        }
        let db = db_name(&req.db_name).to_string();
        let new_db = if req.new_db_name.is_empty() {
            db.clone()
        } else {
            req.new_db_name.clone()
        };
        let (mut record, new_db_id) = {
            let cat = self.read();
            let Some(to) = cat.database(&new_db) else {
                return refused(format!("target database:{new_db} not found"));
            };
            let Some(from) = cat.database(&db) else {
                return collection_not_found(&db, &req.old_name);
            };
            if cat.alias(from.id, &req.old_name).is_some() {
                return refused(format!(
                    "unsupported use an alias to rename collection, alias:{}",
                    req.old_name
                ));
            }
            if cat.alias(to.id, &req.new_name).is_some() {
                return refused(format!(
                    "cannot rename collection to an existing alias: {}",
                    req.new_name
                ));
            }
            if cat.named(to.id, &req.new_name).is_some() {
                return refused(format!(
                    "duplicated new collection name {new_db}:{} with other collection name or alias",
                    req.new_name
                ));
            }
            // Milvus names the database by its ID here.
            let Some(coll) = cat.named(from.id, &req.old_name) else {
                return collection_not_found(&from.id.to_string(), &req.old_name);
            };
            if to.id != from.id && !cat.aliases_of(coll.id).is_empty() {
                return refused(
                    "fail to rename db name, must drop all aliases of this collection before rename"
                        .to_string(),
                );
            }
            (coll.clone(), to.id)
        };
        let old_key = self.keys.collection(record.db_id, record.id);
        let old_name_key = self
            .keys
            .collection_name(record.db_id, collection_name(&record));
        let seen = self.read().collection_revision(record.id);
        let mut when = vec![Compare::mod_revision(
            old_key.clone(),
            CompareOp::Equal,
            seen,
        )];
        let new_name_key = self.keys.collection_name(new_db_id, &req.new_name);
        for k in [&new_name_key, &self.keys.alias(new_db_id, &req.new_name)] {
            when.push(Compare::version(k.clone(), CompareOp::Equal, 0));
        }
        let mut ops = vec![TxnOp::delete(old_name_key, None)];
        if new_db_id != record.db_id {
            ops.push(TxnOp::delete(old_key, None));
        }
        record.db_id = new_db_id;
        if let Some(s) = record.schema.as_mut() {
            s.name = req.new_name.clone();
            s.db_name = new_db.clone();
        }
        ops.push(TxnOp::put(new_name_key, record.id.to_string(), None));
        ops.push(TxnOp::put(
            self.keys.collection(new_db_id, record.id),
            record.encode_to_vec(),
            None,
        ));
        log::info!(collection = record.id, old = req.old_name.as_str(), new = req.new_name.as_str(),
            database = db.as_str(), new_database = new_db.as_str(); "renaming a collection");
        self.commit_if(&c, when, ops).await
    }
}
