//! Collection aliases, as Milvus 2.5 has them: a second name for a collection in its
//! database, usable wherever a collection name is (the catalog resolves it), never equal
//! to a collection's name, and in the way of dropping its collection until dropped.
//!
//! Changes go through the DDL queue and fenced, conditional txns like every catalog
//! change: creating an alias requires its key and a collection name key of the same
//! name to be absent and the collection's record present; altering one requires the
//! alias key present. Messages and codes are Milvus's (`internal/rootcoord/meta_table.go`).

use etcd_client::{Compare, CompareOp, TxnOp};

use super::ddl::{collection_not_found, db_name, db_not_found};
use super::RootCoord;
use crate::meta::catalog::collection_name;
use crate::proto::common::Status;
use crate::proto::milvus as pb;
use crate::schema::names;
use crate::status::{code, error, ok};

fn conflict(db: &str, alias: &str) -> Status {
    error(
        code::ALIAS_COLLECTION_NAME_CONFLICT,
        format!("alias and collection name conflict[database={db}][alias={alias}]"),
    )
}

fn alias_not_found(db: &str, alias: &str) -> Status {
    error(
        code::ALIAS_NOT_FOUND,
        format!("alias not found[database={db}][alias={alias}]"),
    )
}

/// Milvus's "collection not found" of alter and list, without the database.
fn no_collection(name: &str) -> Status {
    error(
        code::COLLECTION_NOT_FOUND,
        format!("collection not found[collection={name}]"),
    )
}

impl RootCoord {
    /// `CreateAlias`: idempotent for the same collection; 1602 when the alias stands
    /// for another one.
    pub async fn create_alias(
        &self,
        req: pb::CreateAliasRequest,
        request: Option<String>,
    ) -> Status {
        let c = match self.begin(request).await {
            Ok(x) => x,
            Err(s) => return s,
        };
        if let Err(s) = names::alias(&req.alias).and(names::collection(&req.collection_name)) {
            return s;
        }
        let db = db_name(&req.db_name).to_string();
        let (db_id, coll_id) = {
            let cat = self.read();
            let Some(d) = cat.database(&db) else {
                return db_not_found(&db);
            };
            // Milvus names the database by its ID here.
            let Some(target) = cat.collection(d.id, &req.collection_name) else {
                return collection_not_found(&d.id.to_string(), &req.collection_name);
            };
            if cat.named(d.id, &req.alias).is_some() {
                return conflict(&db, &req.alias);
            }
            // An alias of an alias is not a thing: the target must be a collection's name.
            if cat.named(d.id, &req.collection_name).is_none() {
                return collection_not_found(&db, &req.collection_name);
            }
            match cat.alias(d.id, &req.alias) {
                Some(id) if id == target.id => return ok(),
                Some(id) => {
                    let other = cat
                        .collection_by_id(id)
                        .map(|c| collection_name(c).to_string())
                        .unwrap_or_default();
                    return error(
                        code::ALIAS_ALREADY_EXIST,
                        format!(
                            "{a} is alias to another collection: {other}: alias already exist[database={db}][alias={a}]",
                            a = req.alias
                        ),
                    );
                }
                None => {}
            }
            (d.id, target.id)
        };
        let key = self.keys.alias(db_id, &req.alias);
        let when = vec![
            Compare::version(key.clone(), CompareOp::Equal, 0),
            Compare::version(
                self.keys.collection_name(db_id, &req.alias),
                CompareOp::Equal,
                0,
            ),
            Compare::version(self.keys.collection(db_id, coll_id), CompareOp::Greater, 0),
        ];
        self.commit_if(&c, when, vec![TxnOp::put(key, coll_id.to_string(), None)])
            .await
    }

    /// `AlterAlias`: points an existing alias at another collection of its database.
    pub async fn alter_alias(&self, req: pb::AlterAliasRequest, request: Option<String>) -> Status {
        let c = match self.begin(request).await {
            Ok(x) => x,
            Err(s) => return s,
        };
        if let Err(s) = names::alias(&req.alias).and(names::collection(&req.collection_name)) {
            return s;
        }
        let db = db_name(&req.db_name).to_string();
        let (db_id, coll_id) = {
            let cat = self.read();
            let Some(d) = cat.database(&db) else {
                return db_not_found(&db);
            };
            if cat.named(d.id, &req.alias).is_some() {
                return conflict(&db, &req.alias);
            }
            let Some(target) = cat.named(d.id, &req.collection_name) else {
                return no_collection(&req.collection_name);
            };
            match cat.alias(d.id, &req.alias) {
                None => return alias_not_found(&db, &req.alias),
                Some(id) if id == target.id => return ok(),
                Some(_) => {}
            }
            (d.id, target.id)
        };
        let key = self.keys.alias(db_id, &req.alias);
        let when = vec![
            Compare::version(key.clone(), CompareOp::Greater, 0),
            Compare::version(self.keys.collection(db_id, coll_id), CompareOp::Greater, 0),
        ];
        self.commit_if(&c, when, vec![TxnOp::put(key, coll_id.to_string(), None)])
            .await
    }

    /// `DropAlias`: a success for an alias that does not exist (Milvus 2.5 checks only
    /// the database).
    pub async fn drop_alias(&self, req: pb::DropAliasRequest, request: Option<String>) -> Status {
        let c = match self.begin(request).await {
            Ok(x) => x,
            Err(s) => return s,
        };
        let db = db_name(&req.db_name).to_string();
        let key = {
            let cat = self.read();
            let Some(d) = cat.database(&db) else {
                return db_not_found(&db);
            };
            if cat.alias(d.id, &req.alias).is_none() {
                log::info!(alias = req.alias.as_str(), database = db.as_str(); "drop of an alias that does not exist");
                return ok();
            }
            self.keys.alias(d.id, &req.alias)
        };
        self.commit(&c, vec![TxnOp::delete(key, None)]).await
    }

    /// `DescribeAlias`.
    pub fn describe_alias(
        &self,
        req: pb::DescribeAliasRequest,
    ) -> Result<pb::DescribeAliasResponse, Status> {
        self.active()?;
        names::alias(&req.alias)?;
        let db = db_name(&req.db_name).to_string();
        let cat = self.read();
        let d = cat.database(&db).ok_or_else(|| db_not_found(&db))?;
        let id = cat
            .alias(d.id, &req.alias)
            .ok_or_else(|| alias_not_found(&db, &req.alias))?;
        let coll = cat.collection_by_id(id).ok_or_else(|| {
            error(
                code::ALIAS_COLLECTION_NOT_FOUND,
                format!("collection id of alias not found[collectionID={id}]"),
            )
        })?;
        Ok(pb::DescribeAliasResponse {
            status: Some(ok()),
            db_name: db.clone(),
            alias: req.alias,
            collection: collection_name(coll).to_string(),
        })
    }

    /// `ListAliases`: of one collection (by its own name), or of the whole database.
    pub fn list_aliases(
        &self,
        req: pb::ListAliasesRequest,
    ) -> Result<pb::ListAliasesResponse, Status> {
        self.active()?;
        if !req.collection_name.is_empty() {
            names::collection(&req.collection_name)?;
        }
        let db = db_name(&req.db_name).to_string();
        let cat = self.read();
        let d = cat.database(&db).ok_or_else(|| db_not_found(&db))?;
        let aliases = if req.collection_name.is_empty() {
            cat.aliases_in(d.id)
        } else {
            let coll = cat
                .named(d.id, &req.collection_name)
                .ok_or_else(|| no_collection(&req.collection_name))?;
            cat.aliases_of(coll.id)
        };
        Ok(pb::ListAliasesResponse {
            status: Some(ok()),
            db_name: db.clone(),
            collection_name: req.collection_name,
            aliases,
        })
    }
}
