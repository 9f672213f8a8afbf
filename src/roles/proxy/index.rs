//! `CreateIndex`, `DescribeIndex` and `DropIndex`: the proxy resolves the collection and
//! field, the active indexcoord checks, stores and reports.

use super::{coord_down, Proxy};
use crate::proto::common::{KeyValuePair, Status};
use crate::proto::indexcoord as ic;
use crate::proto::milvus as pb;
use crate::proto::schema::DataType;
use crate::schema::names;
use crate::status::{code, error, WithStatus};

fn has_key(params: &[KeyValuePair], key: &str) -> bool {
    params.iter().any(|p| p.key == key)
        || crate::index::params::flatten(params).is_ok_and(|f| f.contains_key(key))
}

impl Proxy {
    /// `CreateIndex` on a field of a collection (or, with dynamic fields, on a key of
    /// `$meta`: a JSON path index).
    pub async fn create_index(&self, db: &str, req: pb::CreateIndexRequest) -> Status {
        let answer = async {
            let c = self.target(db, &req.collection_name, "").await?.collection;
            names::index(&req.index_name)?;
            let schema = c.schema.clone().unwrap_or_default();
            let field = schema
                .fields
                .iter()
                .find(|f| f.name == req.field_name && !f.is_dynamic)
                .or_else(|| {
                    schema
                        .enable_dynamic_field
                        .then(|| schema.fields.iter().find(|f| f.is_dynamic))
                        .flatten()
                })
                .ok_or_else(|| {
                    error(
                        code::UNEXPECTED,
                        format!("cannot create index on non-exist field: {}", req.field_name),
                    )
                })?;
            let dim = crate::schema::dim(field);
            let mut params = req.extra_params.clone();
            let mut json_path = String::new();
            let is_json = field.data_type() == DataType::Json;
            if is_json {
                // A JSON index covers one path (default: the field, or the dynamic key).
                let flat = crate::index::params::flatten(&params)
                    .map_err(|e| error(code::PARAMETER_INVALID, e))?;
                let given = flat
                    .get("json_path")
                    .cloned()
                    .unwrap_or_else(|| req.field_name.clone());
                let (id, pointer) = crate::expr::json_pointer(&given, &schema).map_err(|e| {
                    if e.why.starts_with("syntax error") {
                        // Milvus's words for a path its grammar does not take.
                        error(
                            code::UNEXPECTED,
                            format!("cannot parse identifier: {given}"),
                        )
                    } else {
                        error(code::PARAMETER_INVALID, e.to_string())
                    }
                })?;
                if id != field.field_id {
                    return Err(error(
                        code::UNEXPECTED,
                        format!(
                            "json_path {given} is not a path of field {}",
                            req.field_name
                        ),
                    ));
                }
                json_path = pointer;
            } else if crate::schema::is_vector(field.data_type()) {
                let flat = crate::index::params::flatten(&params)
                    .map_err(|e| error(code::PARAMETER_INVALID, e))?;
                let auto = flat
                    .get("index_type")
                    .is_none_or(|t| t.is_empty() || t.eq_ignore_ascii_case("AUTOINDEX"));
                if !has_key(&params, "index_type") {
                    // No index type on a vector field is AUTOINDEX, and says so (Milvus 2.5).
                    params.push(KeyValuePair {
                        key: "index_type".into(),
                        value: "AUTOINDEX".into(),
                    });
                }
                let bm25 = crate::schema::bm25_source(&schema, field.field_id).is_some();
                let given = flat.get("metric_type").map(|m| m.to_ascii_uppercase());
                match (bm25, given.as_deref()) {
                    (true, Some(m)) if m != "BM25" => {
                        return Err(error(
                            code::UNEXPECTED,
                            format!("index metric type of BM25 function output field must be BM25, got {m}"),
                        ))
                    }
                    (false, Some("BM25")) if field.data_type() == DataType::SparseFloatVector => {
                        return Err(error(
                            code::PARAMETER_INVALID,
                            "only BM25 Function output field support BM25 metric type: invalid parameter[expected=valid index params][actual=invalid index params]",
                        ))
                    }
                    _ => {}
                }
                if (auto || bm25) && given.is_none() {
                    // AUTOINDEX's metric by the field's type, shown as Milvus shows it
                    // (a BM25 function's output: BM25, whatever the index type).
                    let metric = match field.data_type() {
                        DataType::BinaryVector => "HAMMING",
                        DataType::SparseFloatVector if bm25 => "BM25",
                        DataType::SparseFloatVector => "IP",
                        _ => "COSINE",
                    };
                    params.push(KeyValuePair {
                        key: "metric_type".into(),
                        value: metric.into(),
                    });
                }
            }
            let display_name = if field.is_dynamic {
                json_path
                    .trim_start_matches('/')
                    .split('/')
                    .next()
                    .map(|k| k.replace("~1", "/").replace("~0", "~"))
                    .unwrap_or_default()
            } else {
                field.name.clone()
            };
            let m = ic::CreateIndexRequest {
                collection_id: c.collection_id,
                field_id: field.field_id,
                field_name: field.name.clone(),
                index_name: req.index_name.clone(),
                params,
                data_type: field.data_type,
                dim,
                collection_name: req.collection_name.clone(),
                element_type: field.element_type,
                is_primary_key: field.is_primary_key,
                json_path,
                is_json,
                display_name,
            };
            self.indexcoord
                .call_write(m, |mut c, r| async move { c.create_index(r).await })
                .await
                .map_err(coord_down)
        };
        answer.await.unwrap_or_else(|s| s)
    }

    /// `DescribeIndex` (every index when `index_name` is empty).
    pub async fn describe_index(
        &self,
        db: &str,
        req: pb::DescribeIndexRequest,
    ) -> pb::DescribeIndexResponse {
        let answer = async {
            let c = self.target(db, &req.collection_name, "").await?.collection;
            let m = ic::DescribeIndexRequest {
                collection_id: c.collection_id,
                index_name: req.index_name.clone(),
                collection_name: req.collection_name.clone(),
            };
            self.indexcoord
                .call(m, |mut c, r| async move { c.describe_index(r).await })
                .await
                .map_err(coord_down)
        };
        answer.await.unwrap_or_else(|s| pb::DescribeIndexResponse {
            status: Some(s),
            ..Default::default()
        })
    }

    /// `AlterIndex`: Milvus's checks in its order (keys, collection, index name, not
    /// loaded), then the indexcoord checks the values and records them.
    pub async fn alter_index(&self, db: &str, req: pb::AlterIndexRequest) -> Status {
        use crate::schema::properties::{invalid, INDEX_PROPERTIES};
        let answer = async {
            if !req.extra_params.is_empty() && !req.delete_keys.is_empty() {
                return Err(invalid(
                    "cannot provide both DeleteKeys and ExtraParams".to_string(),
                ));
            }
            let keys: Vec<&String> = if req.extra_params.is_empty() {
                req.delete_keys.iter().collect()
            } else {
                req.extra_params.iter().map(|p| &p.key).collect()
            };
            if let Some(k) = keys
                .iter()
                .find(|k| !INDEX_PROPERTIES.contains(&k.as_str()))
            {
                return Err(invalid(format!("{k} is not a configable index proptery")));
            }
            let c = self.target(db, &req.collection_name, "").await?.collection;
            if req.index_name.is_empty() {
                return Err(invalid("index name is empty".to_string()));
            }
            if self.is_loaded(c.collection_id).await? {
                return Err(super::load::collection_loaded(
                    &req.collection_name,
                    "can't alter index on loaded collection, please release the collection first",
                ));
            }
            let m = ic::AlterIndexRequest {
                collection_id: c.collection_id,
                index_name: req.index_name.clone(),
                collection_name: req.collection_name.clone(),
                params: req.extra_params.clone(),
                delete_keys: req.delete_keys.clone(),
            };
            self.indexcoord
                .call_write(m, |mut c, r| async move { c.alter_index(r).await })
                .await
                .map_err(coord_down)
        };
        answer.await.unwrap_or_else(|s| s)
    }

    /// `DropIndex`.
    pub async fn drop_index(&self, db: &str, req: pb::DropIndexRequest) -> Status {
        let answer = async {
            let c = self.target(db, &req.collection_name, "").await?.collection;
            self.refuse_if_loaded(c.collection_id).await?;
            let m = ic::DropIndexRequest {
                collection_id: c.collection_id,
                index_name: req.index_name.clone(),
                field_name: req.field_name.clone(),
                collection_name: req.collection_name.clone(),
            };
            self.indexcoord
                .call_write(m, |mut c, r| async move { c.drop_index(r).await })
                .await
                .map_err(coord_down)
        };
        answer.await.unwrap_or_else(|s| s)
    }
}

/// The description `GetIndexState` / `GetIndexBuildProgress` / `GetIndexStatistics` are
/// about: the index named, else the one on `field` (if named), else the collection's
/// only index (Milvus: "index not found" / "index duplicates").
fn pick_index(
    all: Vec<pb::IndexDescription>,
    index_name: &str,
    field: &str,
) -> Result<Vec<pb::IndexDescription>, Status> {
    let named = if index_name.is_empty() {
        "".to_string()
    } else {
        index_name.to_string()
    };
    let chosen: Vec<pb::IndexDescription> = all
        .into_iter()
        .filter(|d| index_name.is_empty() || d.index_name == index_name)
        .filter(|d| field.is_empty() || d.field_name == field)
        .collect();
    match chosen.len() {
        0 => Err(error(
            code::INDEX_NOT_FOUND,
            format!("index not found[indexName={named}]"),
        )),
        _ => Ok(chosen),
    }
}

fn only_one(
    found: Vec<pb::IndexDescription>,
    index_name: &str,
) -> Result<pb::IndexDescription, Status> {
    if found.len() > 1 {
        return Err(error(
            code::INDEX_DUPLICATE,
            format!("index duplicates[indexName={index_name}]: there are multiple indexes, please specify the index_name"),
        ));
    }
    Ok(found
        .into_iter()
        .next()
        .expect("pick_index returns one or more"))
}

impl Proxy {
    /// The index descriptions of a collection that a state or progress call is about.
    async fn described(
        &self,
        db: &str,
        collection: &str,
        index_name: &str,
        field: &str,
    ) -> Result<Vec<pb::IndexDescription>, Status> {
        names::collection(collection)?;
        let r = self
            .describe_index(
                db,
                pb::DescribeIndexRequest {
                    collection_name: collection.to_string(),
                    ..Default::default()
                },
            )
            .await;
        match r.status {
            Some(s) if s.code == code::INDEX_NOT_FOUND => Err(error(
                code::INDEX_NOT_FOUND,
                format!("index not found[indexName={index_name}]"),
            )),
            Some(s) if !crate::status::is_ok(&s) => Err(s),
            _ => pick_index(r.index_descriptions, index_name, field),
        }
    }

    /// `GetIndexState`: Finished once every row of the collection's persisted segments
    /// is indexed (or searched exactly by design: small segments), Failed with the
    /// reason when a build gave up.
    pub async fn get_index_state(
        &self,
        db: &str,
        req: pb::GetIndexStateRequest,
    ) -> pb::GetIndexStateResponse {
        let found = self
            .described(db, &req.collection_name, &req.index_name, &req.field_name)
            .await
            .and_then(|f| only_one(f, &req.index_name));
        match found {
            Ok(d) => pb::GetIndexStateResponse {
                status: Some(Status::default()),
                state: d.state,
                fail_reason: d.index_state_fail_reason,
            },
            Err(s) => pb::GetIndexStateResponse::from_status(s),
        }
    }

    /// `GetIndexBuildProgress`: rows indexed of the rows persisted.
    pub async fn get_index_build_progress(
        &self,
        db: &str,
        req: pb::GetIndexBuildProgressRequest,
    ) -> pb::GetIndexBuildProgressResponse {
        let found = self
            .described(db, &req.collection_name, &req.index_name, &req.field_name)
            .await
            .and_then(|f| only_one(f, &req.index_name));
        match found {
            Ok(d) => pb::GetIndexBuildProgressResponse {
                status: Some(Status::default()),
                indexed_rows: d.indexed_rows,
                total_rows: d.total_rows,
            },
            Err(s) => pb::GetIndexBuildProgressResponse::from_status(s),
        }
    }

    /// `GetIndexStatistics`: the descriptions of the index named (every index when no
    /// name is given).
    pub async fn get_index_statistics(
        &self,
        db: &str,
        req: pb::GetIndexStatisticsRequest,
    ) -> pb::GetIndexStatisticsResponse {
        match self
            .described(db, &req.collection_name, &req.index_name, "")
            .await
        {
            Ok(d) => pb::GetIndexStatisticsResponse {
                status: Some(Status::default()),
                index_descriptions: d,
            },
            Err(s) => pb::GetIndexStatisticsResponse::from_status(s),
        }
    }
}
