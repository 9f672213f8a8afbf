//! `AlterCollection` (pymilvus `alter_collection_properties` / `drop_collection_properties`):
//! sets or deletes collection properties, in one fenced rewrite of the collection record
//! conditioned on it being the one read.
//!
//! Keys this build acts on are checked: `mmap.enabled` and `lazyload.enabled` take `true`
//! or `false` (recorded; segments are always in memory here), and are not changed while
//! the collection is loaded (the proxy refuses, as Milvus's proxy does); `collection.ttl.seconds` is refused
//! with a message saying so, because expired rows would stay visible (nothing here expires
//! rows yet), and an accepted TTL that does nothing would be a silent lie. Other keys are
//! recorded as given, as Milvus records keys it does not know.

use super::RootCoord;
use crate::proto::common::Status;
use crate::proto::milvus as pb;
use crate::schema::properties::{check_properties, invalid};

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
}
