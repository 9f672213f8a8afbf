//! CreateIndex, DescribeIndex and DropIndex as Milvus answers them.

use std::time::Duration;

use etcd_client::TxnOp;
use prost::Message;

use super::reconcile::{live_indexes, served_by_sources};
use super::IndexCoord;
use crate::index::params;
use crate::meta::index::IndexKeys;
use crate::meta::now_ms;
use crate::proto::common::{IndexState, KeyValuePair, Status};
use crate::proto::datacoord::SegmentRecord;
use crate::proto::indexcoord::{
    AlterIndexRequest, CreateIndexRequest, DescribeIndexRequest, DropIndexRequest, IndexRecord,
};
use crate::proto::milvus as pb;
use crate::proto::schema::DataType;
use crate::status::{code, error, ok, retriable};

fn same_params(a: &[KeyValuePair], b: &[KeyValuePair]) -> bool {
    let norm = |v: &[KeyValuePair]| params::flatten(v).unwrap_or_default();
    norm(a) == norm(b)
}

impl IndexCoord {
    /// Writes `ops` fenced and waits until the definitions reflect them.
    async fn write_defs(&self, ops: Vec<TxnOp>) -> Result<(), Status> {
        let active = self.active()?;
        let rev = active.store.write(ops).await.map_err(|e| {
            retriable(
                code::UNEXPECTED,
                format!("index definition not stored: {e}"),
            )
        })?;
        let f = self.followers();
        if !f.defs.wait_applied(rev, Duration::from_secs(10)).await {
            return Err(retriable(
                code::UNEXPECTED,
                "index definition stored but not yet visible",
            ));
        }
        Ok(())
    }

    /// CreateIndex: checks the parameters, then stores the definition (idempotent for
    /// the same parameters).
    pub async fn create_index(&self, req: CreateIndexRequest) -> Status {
        if let Err(s) = self.active() {
            return s;
        }
        let _ddl = self.ddl.lock().await;
        let flat = match params::flatten(&req.params) {
            Ok(f) => f,
            Err(e) => return error(code::PARAMETER_INVALID, e),
        };
        let data_type = DataType::try_from(req.data_type).unwrap_or(DataType::None);
        let scalar_type = match data_type {
            DataType::FloatVector
            | DataType::BinaryVector
            | DataType::Float16Vector
            | DataType::BFloat16Vector => {
                match params::parse(&flat, data_type)
                    .and_then(|spec| params::check_dim(&spec, req.dim.max(0) as usize))
                {
                    Ok(()) => None,
                    // Milvus's proxy wraps its index checkers' refusals so (an unknown
                    // index type has its own words).
                    Err(e) if e.starts_with("invalid index type") => {
                        return error(code::PARAMETER_INVALID, e)
                    }
                    Err(e) => {
                        return error(
                            code::PARAMETER_INVALID,
                            format!("{e}: invalid parameter[expected=valid index params][actual=invalid index params]"),
                        )
                    }
                }
            }
            DataType::SparseFloatVector => match params::parse(&flat, data_type) {
                Ok(_) => None,
                Err(e) => {
                    return error(
                        code::PARAMETER_INVALID,
                        format!("{e}: invalid parameter[expected=valid index params][actual=invalid index params]"),
                    )
                }
            },
            _ => {
                let field = params::ScalarField {
                    data_type,
                    element_type: DataType::try_from(req.element_type).unwrap_or(DataType::None),
                    primary: req.is_primary_key,
                };
                match params::scalar_index_type(&flat, field) {
                    Ok(t) => Some(t),
                    Err(e) => return error(code::PARAMETER_INVALID, e),
                }
            }
        };
        // Milvus's rules (datacoord's CanCreateIndex): an index name names one index; a
        // field has one index, but a JSON field one per path. An empty name is the
        // field's own name (plus the path), or that of the index already on it.
        let same_field = |d: &IndexRecord| {
            d.field_id == req.field_id && (!req.is_json || d.json_path == req.json_path)
        };
        let name = {
            let defs = self.defs.read().expect("defs lock");
            let live = defs.of_collection(req.collection_id);
            if req.index_name.is_empty() {
                match live.iter().find(|d| same_field(d)) {
                    Some(d) => d.index_name.clone(),
                    None => format!("{}{}", req.field_name, req.json_path),
                }
            } else {
                req.index_name.clone()
            }
        };
        {
            let defs = self.defs.read().expect("defs lock");
            for d in defs.of_collection(req.collection_id) {
                if d.index_name == name {
                    if same_field(d) && same_params(&d.params, &req.params) {
                        return ok();
                    }
                    return error(
                        code::UNEXPECTED,
                        "CreateIndex failed: at most one distinct index is allowed per field",
                    );
                }
                if same_field(d) {
                    return error(
                        code::UNEXPECTED,
                        "CreateIndex failed: creating multiple indexes on same field is not supported",
                    );
                }
            }
        }
        let id = match self.alloc_ids(1).await {
            Ok(id) => id,
            Err(e) => {
                return retriable(
                    code::UNEXPECTED,
                    format!("cannot allocate an index ID: {e}"),
                )
            }
        };
        let record = IndexRecord {
            id,
            collection_id: req.collection_id,
            field_id: req.field_id,
            field_name: req.display_name.clone(),
            index_name: name.clone(),
            params: req.params.clone(),
            dim: req.dim,
            dropped_at_ms: 0,
            scalar: scalar_type.is_some(),
            data_type: req.data_type,
            index_type: scalar_type.unwrap_or_default(),
            json_path: req.json_path.clone(),
        };
        let key = self.keys.def(req.collection_id, id);
        match self
            .write_defs(vec![TxnOp::put(key, record.encode_to_vec(), None)])
            .await
        {
            Ok(()) => {
                log::info!(collection = req.collection_name.as_str(), field = req.field_name.as_str(),
                    index = name.as_str(), index_id = id; "index created");
                ok()
            }
            Err(s) => s,
        }
    }

    /// DescribeIndex: each matching definition with its progress over the collection's
    /// live segments.
    pub fn describe_index(&self, req: DescribeIndexRequest) -> pb::DescribeIndexResponse {
        if let Err(s) = self.active() {
            return pb::DescribeIndexResponse {
                status: Some(s),
                ..Default::default()
            };
        }
        let min_rows = self.ctx.config.segment.min_rows_to_index as i64;
        let defs = self.defs.read().expect("defs lock");
        let builds = self.builds.read().expect("builds lock");
        let segments = self.segments.read().expect("segments lock");
        let matching: Vec<&IndexRecord> = defs
            .of_collection(req.collection_id)
            .into_iter()
            .filter(|d| req.index_name.is_empty() || d.index_name == req.index_name)
            .collect();
        if matching.is_empty() {
            return pb::DescribeIndexResponse {
                status: Some(error(
                    code::INDEX_NOT_FOUND,
                    format!("index not found[collection={}]", req.collection_name),
                )),
                ..Default::default()
            };
        }
        let live = segments.live_segments(req.collection_id);
        let (now, tolerance) = (now_ms(), self.ctx.config.segment.gc_drop_tolerance);
        let indexes = live_indexes(&defs, req.collection_id);
        let sources_stand_in = |s: &SegmentRecord| {
            served_by_sources(
                s, &live, &segments, &builds, &indexes, min_rows, now, tolerance,
            )
        };
        let descriptions = matching
            .into_iter()
            .map(|d| {
                let of_index = builds.of_index(d.id);
                let mut total = 0;
                let mut indexed = 0;
                let mut failed = None;
                for s in &live {
                    total += s.num_rows;
                    if !d.has_builds() || s.num_rows < min_rows {
                        // Nothing to build: JSON path and ARRAY indexes are recorded
                        // only, small segments are searched (and filtered) by scans.
                        indexed += s.num_rows;
                        continue;
                    }
                    let b = of_index.iter().find(|b| b.record.segment_id == s.id);
                    match b.map(|b| (b.record.state(), b)) {
                        Some((IndexState::Finished, _)) => indexed += s.num_rows,
                        Some((IndexState::Failed, b))
                            if b.record.attempts >= reconcile_attempts() =>
                        {
                            failed = Some(b.record.fail_reason.clone());
                        }
                        // Failed, to be retried: not indexed, and the querynodes take
                        // the segment as it is.
                        Some((IndexState::Failed, _)) => {}
                        // A compaction's new segment, its index being built: its rows
                        // are searched through the indexes of the segments it replaced,
                        // which querynodes serve meanwhile (as Milvus counts them).
                        _ if sources_stand_in(s) => indexed += s.num_rows,
                        _ => {}
                    }
                }
                let state = match (&failed, indexed == total) {
                    (Some(_), _) => IndexState::Failed,
                    (None, true) => IndexState::Finished,
                    (None, false) => IndexState::InProgress,
                };
                pb::IndexDescription {
                    index_name: d.index_name.clone(),
                    index_id: d.id,
                    params: d.params.clone(),
                    field_name: d.field_name.clone(),
                    indexed_rows: indexed,
                    total_rows: total,
                    state: state as i32,
                    index_state_fail_reason: failed.unwrap_or_default(),
                    pending_index_rows: total - indexed,
                }
            })
            .collect();
        pb::DescribeIndexResponse {
            status: Some(ok()),
            index_descriptions: descriptions,
        }
    }

    /// AlterIndex: sets (replacing) or removes properties of one index, checked for the
    /// index's type. Only the definition changes: the properties are recorded and
    /// described, builds are unaffected (segments are held in memory either way).
    pub async fn alter_index(&self, req: AlterIndexRequest) -> Status {
        if let Err(s) = self.active() {
            return s;
        }
        let _ddl = self.ddl.lock().await;
        let found = self
            .defs
            .read()
            .expect("defs lock")
            .of_collection(req.collection_id)
            .into_iter()
            .find(|d| d.index_name == req.index_name)
            .cloned();
        let Some(mut record) = found else {
            return error(
                code::INDEX_NOT_FOUND,
                format!("index not found[indexName={}]", req.index_name),
            );
        };
        let index_type = if record.scalar {
            record.index_type.clone()
        } else {
            params::flatten(&record.params)
                .ok()
                .and_then(|f| f.get("index_type").cloned())
                .unwrap_or_default()
        };
        if let Err(s) = crate::schema::properties::check_index_properties(&req.params, &index_type)
        {
            return s;
        }
        let touched: Vec<&str> = req
            .params
            .iter()
            .map(|p| p.key.as_str())
            .chain(req.delete_keys.iter().map(String::as_str))
            .collect();
        record.params.retain(|p| !touched.contains(&p.key.as_str()));
        record.params.extend(req.params.iter().cloned());
        let key = self.keys.def(req.collection_id, record.id);
        match self
            .write_defs(vec![TxnOp::put(key, record.encode_to_vec(), None)])
            .await
        {
            Ok(()) => {
                log::info!(collection = req.collection_name.as_str(), index = req.index_name.as_str(),
                    set:? = req.params.iter().map(|p| (&p.key, &p.value)).collect::<Vec<_>>(),
                    removed:? = req.delete_keys; "index altered");
                ok()
            }
            Err(s) => s,
        }
    }

    /// DropIndex: marks the definition dropped (its builds and files go next); a missing
    /// index is not an error.
    pub async fn drop_index(&self, req: DropIndexRequest) -> Status {
        if let Err(s) = self.active() {
            return s;
        }
        let _ddl = self.ddl.lock().await;
        let target: Vec<IndexRecord> = self
            .defs
            .read()
            .expect("defs lock")
            .of_collection(req.collection_id)
            .into_iter()
            .filter(|d| {
                (req.index_name.is_empty() || d.index_name == req.index_name)
                    && (req.field_name.is_empty() || d.field_name == req.field_name)
            })
            .cloned()
            .collect();
        if target.len() > 1 {
            return error(
                code::PARAMETER_INVALID,
                "there are multiple indexes, please specify the index_name",
            );
        }
        let Some(mut d) = target.into_iter().next() else {
            return ok();
        };
        d.dropped_at_ms = now_ms();
        let key = IndexKeys::def(&self.keys, d.collection_id, d.id);
        match self
            .write_defs(vec![TxnOp::put(key, d.encode_to_vec(), None)])
            .await
        {
            Ok(()) => {
                log::info!(collection = req.collection_name.as_str(), index = d.index_name.as_str(); "index dropped");
                ok()
            }
            Err(s) => s,
        }
    }
}

/// Attempts a build gets before its failure is final.
pub fn reconcile_attempts() -> u32 {
    super::reconcile::MAX_ATTEMPTS
}
