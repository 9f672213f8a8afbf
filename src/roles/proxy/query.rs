//! `Query` (and `get`, `count(*)`), and the keys a delete by filter removes: the filter
//! is checked against the schema, each shard answers its matching rows smallest keys
//! first, and the proxy merges them (each key once), then `offset` and `limit`.

use std::collections::HashSet;
use std::time::Duration;

use super::read::{append_row, invalid, output_columns, output_fields, Loaded};
use super::search::MAX_TOPK;
use super::Proxy;
use crate::expr::Filter;
use crate::proto::common::{ConsistencyLevel, Status};
use crate::proto::milvus as pb;
use crate::proto::querynode as qn;
use crate::proto::schema::{
    field_data, i_ds, scalar_field, DataType, FieldData, LongArray, ScalarField,
};
use crate::schema::Pks;
use crate::status::{code, error};

fn count_column(n: i64) -> FieldData {
    FieldData {
        r#type: DataType::Int64 as i32,
        field_name: "count(*)".into(),
        field: Some(field_data::Field::Scalars(ScalarField {
            data: Some(scalar_field::Data::LongData(LongArray { data: vec![n] })),
        })),
        ..Default::default()
    }
}

#[derive(PartialEq, Eq, PartialOrd, Ord, Hash, Clone)]
enum Key {
    Int(i64),
    Str(String),
}

fn keys_of(ids: Option<&crate::proto::schema::IDs>) -> Vec<Key> {
    match ids.and_then(|i| i.id_field.as_ref()) {
        Some(i_ds::IdField::IntId(l)) => l.data.iter().map(|v| Key::Int(*v)).collect(),
        Some(i_ds::IdField::StrId(s)) => s.data.iter().map(|v| Key::Str(v.clone())).collect(),
        None => vec![],
    }
}

impl Proxy {
    /// `Query`.
    pub async fn query(&self, db: &str, req: pb::QueryRequest) -> pb::QueryResults {
        let name = req.collection_name.clone();
        match self.try_query(db, req).await {
            Ok(r) => r,
            Err(s) => pb::QueryResults {
                status: Some(s),
                collection_name: name,
                ..Default::default()
            },
        }
    }

    async fn try_query(&self, db: &str, req: pb::QueryRequest) -> Result<pb::QueryResults, Status> {
        let db = if req.db_name.is_empty() {
            db
        } else {
            &req.db_name
        };
        let loaded = self.loaded(db, &req.collection_name).await?;
        let schema = loaded.schema().clone();
        let param = |k: &str| -> Result<i64, Status> {
            match req.query_params.iter().find(|p| p.key == k) {
                Some(p) => p.value.trim().parse::<i64>().map_err(|_| {
                    invalid(format!(
                        "{k} [{}] is invalid, it should be an integer",
                        p.value
                    ))
                }),
                None => Ok(-1),
            }
        };
        let (limit, offset) = (param("limit")?, param("offset")?.max(0));
        let count = req.output_fields.len() == 1
            && req.output_fields[0].trim().eq_ignore_ascii_case("count(*)");
        if req.expr.trim().is_empty() && limit < 0 && !count {
            return Err(invalid("empty expression should be used with limit"));
        }
        if limit >= 0 && (limit == 0 || limit + offset > MAX_TOPK) && !count {
            return Err(invalid(format!(
                "invalid max query result window, (offset+limit) should be in range [1, {MAX_TOPK}], but got {}",
                limit.max(0) + offset
            )));
        }
        let filter = super::read::plan_filter(&req.expr, &schema, &req.expr_template_values)?;
        let out = if count {
            super::read::Output {
                ids: vec![],
                names: vec!["count(*)".into()],
            }
        } else {
            output_fields(&schema, &req.output_fields, true)?
        };
        let partitions =
            loaded.key_partitions(loaded.partitions(&req.partition_names)?, filter.as_ref());
        let freshness = self.freshness(
            &loaded.record,
            req.consistency_level,
            req.use_default_consistency,
            req.guarantee_timestamp,
        );
        let want = if limit >= 0 { limit + offset } else { 0 };
        let parts = self
            .query_shards(
                &loaded,
                &req.expr,
                &req.expr_template_values,
                &out.ids,
                partitions,
                freshness,
                want,
                count,
            )
            .await?;
        let mut status = Status::default();
        crate::status::set_cost(&mut status, parts.iter().map(|p| p.scanned).sum());
        if count {
            let n: i64 = parts.iter().map(|p| p.count).sum();
            return Ok(pb::QueryResults {
                status: Some(status),
                fields_data: vec![count_column(n)],
                collection_name: req.collection_name.clone(),
                output_fields: out.names,
                ..Default::default()
            });
        }
        // Merge in key order, each key once.
        let mut all: Vec<(Key, usize, usize)> = Vec::new();
        for (s, p) in parts.iter().enumerate() {
            let keys = keys_of(p.ids.as_ref());
            all.extend(keys.into_iter().enumerate().map(|(i, k)| (k, s, i)));
        }
        all.sort_by(|a, b| a.0.cmp(&b.0));
        let mut seen = HashSet::new();
        all.retain(|(k, _, _)| seen.insert(k.clone()));
        let skip = offset as usize;
        let take = if limit >= 0 {
            limit as usize
        } else {
            usize::MAX
        };
        let mut columns = output_columns(&schema, &out.ids);
        for (_, s, i) in all.into_iter().skip(skip).take(take) {
            append_row(&mut columns, &parts[s].fields_data, i);
        }
        let pk = schema
            .fields
            .iter()
            .find(|f| f.is_primary_key)
            .map(|f| f.name.clone())
            .unwrap_or_default();
        Ok(pb::QueryResults {
            status: Some(status),
            fields_data: columns,
            collection_name: req.collection_name.clone(),
            output_fields: out.names,
            session_ts: 0,
            primary_field_name: pk,
        })
    }

    /// Runs a shard query on every shard.
    #[allow(clippy::too_many_arguments)]
    async fn query_shards(
        &self,
        loaded: &Loaded,
        expr: &str,
        templates: &std::collections::HashMap<String, crate::proto::schema::TemplateValue>,
        output: &[i64],
        partitions: Vec<i64>,
        freshness: qn::Freshness,
        limit: i64,
        count_only: bool,
    ) -> Result<Vec<qn::ShardQueryResults>, Status> {
        let shard_req = qn::ShardQueryRequest {
            base: Some(qn::ShardRequestBase {
                collection_id: loaded.record.id,
                vchannel: String::new(),
                replica: 0,
                partition_ids: partitions,
                filter: expr.to_string(),
                template_values: templates.clone(),
                output_field_ids: output.to_vec(),
                freshness: Some(freshness),
                expire_before: loaded.expire_before(),
            }),
            limit,
            count_only,
        };
        self.each_shard(
            loaded,
            Duration::from_secs(15),
            |mut client, replica, vch| {
                let mut r = shard_req.clone();
                if let Some(b) = r.base.as_mut() {
                    b.vchannel = vch;
                    b.replica = replica;
                }
                async move {
                    let res = client.query(r).await?.into_inner();
                    Ok((res.status.clone().unwrap_or_default(), res))
                }
            },
        )
        .await
    }

    /// The primary keys a delete's filter names: read from the expression itself when it
    /// is `pk in [...]` / `pk == v`, else found by a Strong query of the loaded collection.
    pub(super) async fn delete_keys(
        &self,
        db: &str,
        collection: &str,
        expr: &str,
        templates: &std::collections::HashMap<String, crate::proto::schema::TemplateValue>,
        schema: &crate::proto::schema::CollectionSchema,
        partition: Option<i64>,
    ) -> Result<Pks, Status> {
        let pk = schema
            .fields
            .iter()
            .find(|f| f.is_primary_key)
            .ok_or_else(|| error(code::UNEXPECTED, "the collection has no primary key"))?;
        if expr.trim().is_empty() {
            return Err(invalid("delete needs a filter expression"));
        }
        let filter =
            Filter::compile(expr, schema, templates).map_err(|e| invalid(e.to_string()))?;
        let int = pk.data_type() == DataType::Int64;
        if let Some(values) = filter.primary_keys(pk.field_id) {
            use crate::expr::Value;
            return if int {
                values
                    .into_iter()
                    .map(|v| match v {
                        Value::Int(i) => Ok(i),
                        v => Err(invalid(format!(
                            "{} is an Int64 key, {v:?} is not an integer",
                            pk.name
                        ))),
                    })
                    .collect::<Result<Vec<_>, _>>()
                    .map(Pks::Int)
            } else {
                values
                    .into_iter()
                    .map(|v| match v {
                        Value::Str(s) => Ok(s.into_owned()),
                        v => Err(invalid(format!(
                            "{} is a VarChar key, {v:?} is not a string",
                            pk.name
                        ))),
                    })
                    .collect::<Result<Vec<_>, _>>()
                    .map(Pks::Str)
            };
        }
        let loaded = self.loaded(db, collection).await?;
        let freshness = self.freshness(&loaded.record, ConsistencyLevel::Strong as i32, false, 0);
        let partitions = partition
            .map(|p| vec![p])
            .unwrap_or_else(|| loaded.info.partition_ids.clone());
        let parts = self
            .query_shards(
                &loaded,
                expr,
                templates,
                &[pk.field_id],
                partitions,
                freshness,
                0,
                false,
            )
            .await?;
        let mut keys: Vec<Key> = parts.iter().flat_map(|p| keys_of(p.ids.as_ref())).collect();
        keys.sort();
        keys.dedup();
        Ok(if int {
            Pks::Int(
                keys.into_iter()
                    .filter_map(|k| match k {
                        Key::Int(i) => Some(i),
                        Key::Str(_) => None,
                    })
                    .collect(),
            )
        } else {
            Pks::Str(
                keys.into_iter()
                    .filter_map(|k| match k {
                        Key::Str(s) => Some(s),
                        Key::Int(_) => None,
                    })
                    .collect(),
            )
        })
    }
}
