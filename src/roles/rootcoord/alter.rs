//! `AlterCollection` (pymilvus `alter_collection_properties` / `drop_collection_properties`):
//! sets or deletes collection properties, in one fenced rewrite of the collection record
//! conditioned on it being the one read.
//!
//! Keys this build acts on are checked: `mmap.enabled` and `lazyload.enabled` take `true`
//! or `false` (recorded; segments are always in memory here), and are not changed while
//! the collection is loaded (the proxy refuses, as Milvus's proxy does);
//! `collection.ttl.seconds` takes an integer (Milvus's "collection TTL is not a valid
//! positive integer" otherwise): above 0, rows older than it are invisible to searches
//! and queries (the proxy sends the cut-off with each read) and segments of only such
//! rows are dropped by the datacoord. Other keys are
//! recorded as given, as Milvus records keys it does not know.
//!
//! `AlterDatabase` (pymilvus `alter_database_properties` / `drop_database_properties`)
//! does the same for a database record: any key, any value (Milvus checks none);
//! removing an absent key is no error. They are recorded and described; the ones
//! Milvus's quota center and load acts on (`database.force.deny.*`,
//! `database.replica.number`, `database.resource_groups`) are not acted on here yet.

use etcd_client::TxnOp;
use prost::Message;

use super::ddl::db_not_found;
use super::RootCoord;
use crate::proto::common::Status;
use crate::proto::milvus as pb;
use crate::schema::properties::{check_properties, invalid};
use crate::status::{code, error};

impl RootCoord {
    /// `AlterCollection`: `properties` set (a key again replaces its value) or
    /// `delete_keys` removed, never both in one call (Milvus's rule).
    pub async fn alter_collection(
        &self,
        req: pb::AlterCollectionRequest,
        request: Option<String>,
    ) -> Status {
        let c = match self.begin(request).await {
            Ok(x) => x,
            Err(s) => return s,
        };
        if !req.properties.is_empty() && !req.delete_keys.is_empty() {
            return invalid("cannot provide both DeleteKeys and ExtraParams".to_string());
        }
        if let Err(s) = check_properties(&req.properties) {
            return s;
        }
        let mut coll = match self.find(&req.db_name, &req.collection_name) {
            Ok(x) => x,
            Err(s) => return s,
        };
        for kv in req.properties {
            match coll.properties.iter_mut().find(|p| p.key == kv.key) {
                Some(p) => p.value = kv.value,
                None => coll.properties.push(kv),
            }
        }
        coll.properties
            .retain(|p| !req.delete_keys.contains(&p.key));
        log::info!(collection = coll.id, delete_keys:? = req.delete_keys; "altering collection properties");
        self.rewrite_collection(&c, coll, vec![], vec![]).await
    }

    /// `AlterDatabase`: `properties` set or `delete_keys` removed (Milvus's rules and
    /// words: one of the two, not both).
    pub async fn alter_database(
        &self,
        req: pb::AlterDatabaseRequest,
        request: Option<String>,
    ) -> Status {
        let c = match self.begin(request).await {
            Ok(x) => x,
            Err(s) => return s,
        };
        match (req.properties.is_empty(), req.delete_keys.is_empty()) {
            (true, true) => return error(
                code::UNEXPECTED,
                "alter database requires either properties or deletekeys to modify or delete keys, both cannot be empty",
            ),
            (false, false) => return error(
                code::UNEXPECTED,
                "alter database operation cannot modify properties and delete keys at the same time",
            ),
            _ => {}
        }
        let name = if req.db_name.is_empty() {
            crate::meta::catalog::DEFAULT_DB
        } else {
            req.db_name.as_str()
        };
        let Some(mut db) = self.read().database(name) else {
            return db_not_found(name);
        };
        for kv in req.properties {
            match db.properties.iter_mut().find(|p| p.key == kv.key) {
                Some(p) => p.value = kv.value,
                None => db.properties.push(kv),
            }
        }
        db.properties.retain(|p| !req.delete_keys.contains(&p.key));
        log::info!(database = name, delete_keys:? = req.delete_keys; "altering database properties");
        let key = self.keys.database(db.id);
        self.commit_if(&c, vec![], vec![TxnOp::put(key, db.encode_to_vec(), None)])
            .await
    }

    /// `AlterCollectionField`: sets `max_length` (VARCHAR, arrays of VARCHAR),
    /// `max_capacity` (arrays) or `mmap.enabled` of one field, or removes its
    /// `mmap.enabled` (the proxy has checked the keys and, for mmap, that the collection
    /// is not loaded). A smaller `max_length` applies to later writes; rows already
    /// stored keep their values, as in Milvus.
    pub async fn alter_collection_field(
        &self,
        req: pb::AlterCollectionFieldRequest,
        request: Option<String>,
    ) -> Status {
        use crate::proto::schema::DataType;
        use crate::schema::properties::{check_field_keys, check_field_value, field_key};
        let c = match self.begin(request).await {
            Ok(x) => x,
            Err(s) => return s,
        };
        if req.properties.is_empty() && req.delete_keys.is_empty() {
            return error(
                code::UNEXPECTED,
                "The field properties to alter and keys to delete must not be empty at the same time",
            );
        }
        if let Err(s) = check_field_keys(&req.properties, &req.delete_keys) {
            return s;
        }
        let mut coll = match self.find(&req.db_name, &req.collection_name) {
            Ok(x) => x,
            Err(s) => return s,
        };
        let Some(field) = coll.schema.as_mut().and_then(|s| {
            s.fields
                .iter_mut()
                .find(|f| f.name == req.field_name && !f.is_dynamic)
        }) else {
            return invalid(format!(
                "field {} does not exist in collection",
                req.field_name
            ));
        };
        let t = field.data_type();
        let is_array = t == DataType::Array;
        let is_string =
            t == DataType::VarChar || (is_array && field.element_type() == DataType::VarChar);
        for kv in &req.properties {
            if let Err(s) = check_field_value(
                &field.name,
                kv,
                is_string,
                is_array,
                super::validate::MAX_VARCHAR_LEN,
            ) {
                return s;
            }
        }
        for kv in &req.properties {
            let key = field_key(&kv.key).to_string();
            let value = kv.value.trim().to_string();
            match field.type_params.iter_mut().find(|p| p.key == key) {
                Some(p) => p.value = value,
                None => field
                    .type_params
                    .push(crate::proto::common::KeyValuePair { key, value }),
            }
        }
        let removed: Vec<&str> = req.delete_keys.iter().map(|k| field_key(k)).collect();
        field
            .type_params
            .retain(|p| !removed.contains(&p.key.as_str()));
        log::info!(collection = coll.id, field = req.field_name.as_str(),
            set:? = req.properties.iter().map(|p| (&p.key, &p.value)).collect::<Vec<_>>(),
            removed:? = req.delete_keys; "altering field properties");
        self.rewrite_collection(&c, coll, vec![], vec![]).await
    }
}
