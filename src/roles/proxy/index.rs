//! `CreateIndex`, `DescribeIndex` and `DropIndex`: the proxy resolves the collection and
//! field, the active indexcoord checks, stores and reports.

use super::Proxy;
use crate::coord_client::CoordError;
use crate::proto::common::Status;
use crate::proto::indexcoord as ic;
use crate::proto::milvus as pb;
use crate::status::{code, error, retriable};

fn indexcoord_down(e: CoordError) -> Status {
    retriable(code::SERVICE_UNAVAILABLE, e.to_string())
}

impl Proxy {
    /// `CreateIndex` on a field of a collection.
    pub async fn create_index(&self, db: &str, req: pb::CreateIndexRequest) -> Status {
        let answer = async {
            let c = self.target(db, &req.collection_name, "").await?.collection;
            let schema = c.schema.clone().unwrap_or_default();
            let field = schema
                .fields
                .iter()
                .find(|f| f.name == req.field_name)
                .ok_or_else(|| {
                    error(
                        code::PARAMETER_INVALID,
                        format!("cannot create index on non-exist field: {}", req.field_name),
                    )
                })?;
            let dim = field
                .type_params
                .iter()
                .find(|p| p.key == "dim")
                .and_then(|p| p.value.parse().ok())
                .unwrap_or(0);
            let m = ic::CreateIndexRequest {
                collection_id: c.collection_id,
                field_id: field.field_id,
                field_name: field.name.clone(),
                index_name: req.index_name.clone(),
                params: req.extra_params.clone(),
                data_type: field.data_type,
                dim,
                collection_name: req.collection_name.clone(),
            };
            self.indexcoord
                .call_write(m, |mut c, r| async move { c.create_index(r).await })
                .await
                .map_err(indexcoord_down)
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
                .map_err(indexcoord_down)
        };
        answer.await.unwrap_or_else(|s| pb::DescribeIndexResponse {
            status: Some(s),
            ..Default::default()
        })
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
                .map_err(indexcoord_down)
        };
        answer.await.unwrap_or_else(|s| s)
    }
}
