//! REST v2 partitions, indexes, aliases and databases.

use std::sync::Arc;

use serde_json::{json, Map, Value};

use super::{checked, endpoint, missing, wrong_type, Answer, Call, Reply, Routes};
use crate::proto::common::KeyValuePair;
use crate::proto::milvus as pb;
use crate::proto::milvus::milvus_service_server::MilvusService;
use crate::roles::proxy::service::Service;

/// Key-value pairs of a JSON object (`properties`, index `params`): strings as they are,
/// other values as JSON text.
pub fn pairs(o: Option<&Map<String, Value>>) -> Vec<KeyValuePair> {
    o.map(|o| {
        o.iter()
            .map(|(k, v)| KeyValuePair {
                key: k.clone(),
                value: match v {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                },
            })
            .collect()
    })
    .unwrap_or_default()
}

/// `[{"key": .., "value": ..}]`, as Milvus's REST writes properties.
pub fn kv_list(p: &[KeyValuePair]) -> Value {
    Value::Array(
        p.iter()
            .map(|kv| json!({"key": kv.key, "value": kv.value}))
            .collect(),
    )
}

async fn partitions_create(s: Arc<Service>, c: Call) -> Answer {
    let m = pb::CreatePartitionRequest {
        db_name: c.db.clone(),
        collection_name: c.string("collectionName")?,
        partition_name: c.string("partitionName")?,
        ..Default::default()
    };
    checked(s.create_partition(c.request(m)).await)?;
    Ok(Reply::done())
}

async fn partitions_drop(s: Arc<Service>, c: Call) -> Answer {
    let m = pb::DropPartitionRequest {
        db_name: c.db.clone(),
        collection_name: c.string("collectionName")?,
        partition_name: c.string("partitionName")?,
        ..Default::default()
    };
    checked(s.drop_partition(c.request(m)).await)?;
    Ok(Reply::done())
}

async fn partitions_has(s: Arc<Service>, c: Call) -> Answer {
    let m = pb::HasPartitionRequest {
        db_name: c.db.clone(),
        collection_name: c.string("collectionName")?,
        partition_name: c.string("partitionName")?,
        ..Default::default()
    };
    let r = checked(s.has_partition(c.request(m)).await)?;
    Ok(Reply::data(json!({"has": r.value})))
}

async fn partitions_list(s: Arc<Service>, c: Call) -> Answer {
    let m = pb::ShowPartitionsRequest {
        db_name: c.db.clone(),
        collection_name: c.string("collectionName")?,
        ..Default::default()
    };
    let r = checked(s.show_partitions(c.request(m)).await)?;
    Ok(Reply::data(json!(r.partition_names)))
}

async fn partitions_load(s: Arc<Service>, c: Call) -> Answer {
    let m = pb::LoadPartitionsRequest {
        db_name: c.db.clone(),
        collection_name: c.string("collectionName")?,
        partition_names: c.required_strings("partitionNames")?,
        replica_number: super::collections::replica_number(&c)?,
        ..Default::default()
    };
    checked(s.load_partitions(c.request(m)).await)?;
    Ok(Reply::done())
}

async fn partitions_release(s: Arc<Service>, c: Call) -> Answer {
    let m = pb::ReleasePartitionsRequest {
        db_name: c.db.clone(),
        collection_name: c.string("collectionName")?,
        partition_names: c.required_strings("partitionNames")?,
        ..Default::default()
    };
    checked(s.release_partitions(c.request(m)).await)?;
    Ok(Reply::done())
}

async fn partitions_stats(s: Arc<Service>, c: Call) -> Answer {
    let m = pb::GetPartitionStatisticsRequest {
        db_name: c.db.clone(),
        collection_name: c.string("collectionName")?,
        partition_name: c.string("partitionName")?,
        ..Default::default()
    };
    let r = checked(s.get_partition_statistics(c.request(m)).await)?;
    Ok(Reply::data(json!({"rowCount": row_count(&r.stats)})))
}

/// The `row_count` of a statistics answer.
pub fn row_count(stats: &[KeyValuePair]) -> i64 {
    stats
        .iter()
        .find(|kv| kv.key == "row_count")
        .and_then(|kv| kv.value.parse().ok())
        .unwrap_or(0)
}

/// One entry of `indexParams` as a CreateIndex request.
pub fn index_request(
    db: &str,
    collection: &str,
    p: &Value,
) -> Result<pb::CreateIndexRequest, crate::proto::common::Status> {
    let Value::Object(o) = p else {
        return Err(wrong_type("indexParams", "a list of objects", p));
    };
    let get = |k: &str| {
        o.get(k)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    let field = get("fieldName");
    if field.is_empty() {
        return Err(missing("indexParams.fieldName"));
    }
    let mut params = Vec::new();
    for (key, value) in [
        ("index_type", get("indexType")),
        ("metric_type", get("metricType")),
    ] {
        if !value.is_empty() {
            params.push(KeyValuePair {
                key: key.into(),
                value,
            });
        }
    }
    if let Some(Value::Object(extra)) = o.get("params") {
        for kv in pairs(Some(extra)) {
            // The index type may also come inside params (Milvus reads both).
            let key = match kv.key.as_str() {
                "index_type" | "indexType" => "index_type".to_string(),
                "metric_type" | "metricType" => "metric_type".to_string(),
                _ => kv.key,
            };
            params.retain(|p: &KeyValuePair| p.key != key);
            params.push(KeyValuePair {
                key,
                value: kv.value,
            });
        }
    }
    Ok(pb::CreateIndexRequest {
        db_name: db.to_string(),
        collection_name: collection.to_string(),
        field_name: field,
        index_name: get("indexName"),
        extra_params: params,
        ..Default::default()
    })
}

async fn indexes_create(s: Arc<Service>, c: Call) -> Answer {
    let coll = c.string("collectionName")?;
    let list = match c.body.get("indexParams") {
        Some(Value::Array(a)) if !a.is_empty() => a.clone(),
        None | Some(Value::Null) => return Err(missing("indexParams")),
        Some(Value::Array(_)) => return Err(missing("indexParams")),
        Some(other) => return Err(wrong_type("indexParams", "a list of objects", other)),
    };
    for p in &list {
        let m = index_request(&c.db, &coll, p)?;
        checked(s.create_index(c.request(m)).await)?;
    }
    Ok(Reply::done())
}

/// DescribeIndex's answer as REST writes each index.
pub fn index_json(d: &pb::IndexDescription) -> Value {
    let param = |k: &str| {
        d.params
            .iter()
            .find(|p| p.key == k)
            .map(|p| p.value.clone())
            .unwrap_or_default()
    };
    let state = crate::proto::common::IndexState::try_from(d.state)
        .map(|s| s.as_str_name().to_string())
        .unwrap_or_default();
    json!({
        "indexName": d.index_name,
        "fieldName": d.field_name,
        "indexType": param("index_type"),
        "metricType": param("metric_type"),
        "indexState": state,
        "indexedRows": d.indexed_rows,
        "totalRows": d.total_rows,
        "pendingRows": d.pending_index_rows,
        "failReason": d.index_state_fail_reason,
    })
}

async fn indexes_describe(s: Arc<Service>, c: Call) -> Answer {
    let m = pb::DescribeIndexRequest {
        db_name: c.db.clone(),
        collection_name: c.string("collectionName")?,
        index_name: c.string("indexName")?,
        ..Default::default()
    };
    let r = checked(s.describe_index(c.request(m)).await)?;
    Ok(Reply::data(Value::Array(
        r.index_descriptions.iter().map(index_json).collect(),
    )))
}

async fn indexes_list(s: Arc<Service>, c: Call) -> Answer {
    let m = pb::DescribeIndexRequest {
        db_name: c.db.clone(),
        collection_name: c.string("collectionName")?,
        ..Default::default()
    };
    match checked(s.describe_index(c.request(m)).await) {
        Ok(r) => Ok(Reply::data(json!(r
            .index_descriptions
            .iter()
            .map(|d| d.index_name.clone())
            .collect::<Vec<_>>()))),
        // No index at all: an empty list.
        Err(st) if st.code == crate::status::code::INDEX_NOT_FOUND => Ok(Reply::data(json!([]))),
        Err(st) => Err(st),
    }
}

async fn indexes_drop(s: Arc<Service>, c: Call) -> Answer {
    let m = pb::DropIndexRequest {
        db_name: c.db.clone(),
        collection_name: c.string("collectionName")?,
        index_name: c.string("indexName")?,
        ..Default::default()
    };
    checked(s.drop_index(c.request(m)).await)?;
    Ok(Reply::done())
}

async fn indexes_alter(s: Arc<Service>, c: Call) -> Answer {
    let m = pb::AlterIndexRequest {
        db_name: c.db.clone(),
        collection_name: c.string("collectionName")?,
        index_name: c.string("indexName")?,
        extra_params: pairs(c.opt_object("properties")?),
        ..Default::default()
    };
    if m.extra_params.is_empty() {
        return Err(missing("properties"));
    }
    checked(s.alter_index(c.request(m)).await)?;
    Ok(Reply::done())
}

async fn indexes_drop_properties(s: Arc<Service>, c: Call) -> Answer {
    let m = pb::AlterIndexRequest {
        db_name: c.db.clone(),
        collection_name: c.string("collectionName")?,
        index_name: c.string("indexName")?,
        delete_keys: c.required_strings("propertyKeys")?,
        ..Default::default()
    };
    checked(s.alter_index(c.request(m)).await)?;
    Ok(Reply::done())
}

async fn aliases_create(s: Arc<Service>, c: Call) -> Answer {
    let m = pb::CreateAliasRequest {
        db_name: c.db.clone(),
        collection_name: c.string("collectionName")?,
        alias: c.string("aliasName")?,
        ..Default::default()
    };
    checked(s.create_alias(c.request(m)).await)?;
    Ok(Reply::done())
}

async fn aliases_alter(s: Arc<Service>, c: Call) -> Answer {
    let m = pb::AlterAliasRequest {
        db_name: c.db.clone(),
        collection_name: c.string("collectionName")?,
        alias: c.string("aliasName")?,
        ..Default::default()
    };
    checked(s.alter_alias(c.request(m)).await)?;
    Ok(Reply::done())
}

async fn aliases_drop(s: Arc<Service>, c: Call) -> Answer {
    let m = pb::DropAliasRequest {
        db_name: c.db.clone(),
        alias: c.string("aliasName")?,
        ..Default::default()
    };
    checked(s.drop_alias(c.request(m)).await)?;
    Ok(Reply::done())
}

async fn aliases_describe(s: Arc<Service>, c: Call) -> Answer {
    let m = pb::DescribeAliasRequest {
        db_name: c.db.clone(),
        alias: c.string("aliasName")?,
        ..Default::default()
    };
    let r = checked(s.describe_alias(c.request(m)).await)?;
    Ok(Reply::data(json!({
        "dbName": r.db_name,
        "aliasName": r.alias,
        "collectionName": r.collection,
    })))
}

async fn aliases_list(s: Arc<Service>, c: Call) -> Answer {
    let m = pb::ListAliasesRequest {
        db_name: c.db.clone(),
        collection_name: c.opt_string("collectionName")?,
        ..Default::default()
    };
    let r = checked(s.list_aliases(c.request(m)).await)?;
    Ok(Reply::data(json!(r.aliases)))
}

async fn databases_create(s: Arc<Service>, c: Call) -> Answer {
    let m = pb::CreateDatabaseRequest {
        db_name: c.string("dbName")?,
        properties: pairs(c.opt_object("properties")?),
        ..Default::default()
    };
    checked(s.create_database(c.request(m)).await)?;
    Ok(Reply::done())
}

async fn databases_drop(s: Arc<Service>, c: Call) -> Answer {
    let m = pb::DropDatabaseRequest {
        db_name: c.string("dbName")?,
        ..Default::default()
    };
    checked(s.drop_database(c.request(m)).await)?;
    Ok(Reply::done())
}

async fn databases_list(s: Arc<Service>, c: Call) -> Answer {
    let r = checked(
        s.list_databases(c.request(pb::ListDatabasesRequest::default()))
            .await,
    )?;
    Ok(Reply::data(json!(r.db_names)))
}

async fn databases_describe(s: Arc<Service>, c: Call) -> Answer {
    let m = pb::DescribeDatabaseRequest {
        db_name: c.string("dbName")?,
        ..Default::default()
    };
    let r = checked(s.describe_database(c.request(m)).await)?;
    Ok(Reply::data(json!({
        "dbName": r.db_name,
        "dbID": r.db_id,
        "properties": kv_list(&r.properties),
    })))
}

async fn databases_alter(s: Arc<Service>, c: Call) -> Answer {
    let m = pb::AlterDatabaseRequest {
        db_name: c.string("dbName")?,
        properties: pairs(c.opt_object("properties")?),
        ..Default::default()
    };
    if m.properties.is_empty() {
        return Err(missing("properties"));
    }
    checked(s.alter_database(c.request(m)).await)?;
    Ok(Reply::done())
}

async fn databases_drop_properties(s: Arc<Service>, c: Call) -> Answer {
    let m = pb::AlterDatabaseRequest {
        db_name: c.string("dbName")?,
        delete_keys: c.required_strings("propertyKeys")?,
        ..Default::default()
    };
    checked(s.alter_database(c.request(m)).await)?;
    Ok(Reply::done())
}

pub(super) fn routes() -> Routes {
    vec![
        ("partitions/create", endpoint(partitions_create)),
        ("partitions/drop", endpoint(partitions_drop)),
        ("partitions/has", endpoint(partitions_has)),
        ("partitions/list", endpoint(partitions_list)),
        ("partitions/load", endpoint(partitions_load)),
        ("partitions/release", endpoint(partitions_release)),
        ("partitions/get_stats", endpoint(partitions_stats)),
        ("indexes/create", endpoint(indexes_create)),
        ("indexes/describe", endpoint(indexes_describe)),
        ("indexes/list", endpoint(indexes_list)),
        ("indexes/drop", endpoint(indexes_drop)),
        ("indexes/alter_properties", endpoint(indexes_alter)),
        ("indexes/drop_properties", endpoint(indexes_drop_properties)),
        ("aliases/create", endpoint(aliases_create)),
        ("aliases/alter", endpoint(aliases_alter)),
        ("aliases/drop", endpoint(aliases_drop)),
        ("aliases/describe", endpoint(aliases_describe)),
        ("aliases/list", endpoint(aliases_list)),
        ("databases/create", endpoint(databases_create)),
        ("databases/drop", endpoint(databases_drop)),
        ("databases/list", endpoint(databases_list)),
        ("databases/describe", endpoint(databases_describe)),
        ("databases/alter", endpoint(databases_alter)),
        (
            "databases/drop_properties",
            endpoint(databases_drop_properties),
        ),
    ]
}
