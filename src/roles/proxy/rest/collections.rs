//! REST v2 collections: create (quick or with a schema; then indexed and loaded, as
//! Milvus's REST does), describe, list, has, drop, rename, load, release, load state,
//! statistics, properties.

use std::sync::Arc;

use prost::Message;
use serde_json::{json, Map, Value};

use super::other::{index_request, kv_list, pairs, row_count};
use super::{checked, endpoint, fail, missing, wrong_type, Answer, Call, Reply, Routes};
use crate::proto::common::{ConsistencyLevel, KeyValuePair, LoadState, Status};
use crate::proto::milvus as pb;
use crate::proto::milvus::milvus_service_server::MilvusService;
use crate::proto::schema::{
    value_field, CollectionSchema, DataType, FieldSchema, FunctionSchema, FunctionType, ValueField,
};
use crate::roles::proxy::service::Service;
use crate::status::code;

/// `replicaNumber`, checked to fit (the querycoord checks its range).
pub fn replica_number(c: &Call) -> Result<i32, Status> {
    let n = c.opt_i64("replicaNumber")?.unwrap_or(0);
    i32::try_from(n).map_err(|_| {
        invalid(format!(
            "replicaNumber {n} is out of range: invalid parameter"
        ))
    })
}

/// The first user field ID Milvus numbers fields from.
const FIRST_FIELD_ID: i64 = 100;

fn invalid(message: String) -> Status {
    fail(code::PARAMETER_INVALID, message)
}

/// A `params` value as Milvus's REST reads it (`fmt.Sprintf("%v")`).
fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn data_type(name: &str, what: &str) -> Result<DataType, Status> {
    DataType::from_str_name(name).ok_or_else(|| {
        invalid(format!(
            "invalid parameter, {what} {name} is invalid(case sensitive)."
        ))
    })
}

fn default_value(v: &Value, t: DataType, field: &str) -> Result<Option<ValueField>, Status> {
    use value_field::Data;
    let bad = || {
        invalid(format!(
            "convert defaultValue fail, err: cannot use \"{v}\" as {} default value of field {field}",
            t.as_str_name()
        ))
    };
    let data = match (t, v) {
        (_, Value::Null) => return Ok(None),
        (DataType::Bool, Value::Bool(b)) => Data::BoolData(*b),
        (DataType::Int8 | DataType::Int16 | DataType::Int32, Value::Number(n)) => Data::IntData(
            n.as_i64()
                .and_then(|n| i32::try_from(n).ok())
                .ok_or_else(bad)?,
        ),
        (DataType::Int64, Value::Number(n)) => Data::LongData(n.as_i64().ok_or_else(bad)?),
        (DataType::Float, Value::Number(n)) => Data::FloatData(n.as_f64().ok_or_else(bad)? as f32),
        (DataType::Double, Value::Number(n)) => Data::DoubleData(n.as_f64().ok_or_else(bad)?),
        (DataType::VarChar, Value::String(s)) => Data::StringData(s.clone()),
        // WKT, checked by the rootcoord (`invalid default value for geometry field`).
        (DataType::Geometry, Value::String(s)) => Data::StringData(s.clone()),
        _ => return Err(bad()),
    };
    Ok(Some(ValueField { data: Some(data) }))
}

/// The schema of a create with `schema.fields` (Milvus's REST field shape).
fn full_schema(
    c: &Call,
    name: &str,
    schema: &Map<String, Value>,
) -> Result<CollectionSchema, Status> {
    let auto_id = schema
        .get("autoID")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let mut fields = Vec::new();
    let list = match schema.get("fields") {
        Some(Value::Array(a)) => a,
        _ => return Err(missing("schema.fields")),
    };
    let functions = match schema.get("functions") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(list)) => list
            .iter()
            .map(function_schema)
            .collect::<Result<Vec<_>, Status>>()?,
        Some(other) => return Err(wrong_type("schema.functions", "a list of objects", other)),
    };
    for (i, f) in list.iter().enumerate() {
        let Value::Object(f) = f else {
            return Err(wrong_type("schema.fields", "a list of objects", f));
        };
        let s = |k: &str| {
            f.get(k)
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string()
        };
        let b = |k: &str| f.get(k).and_then(Value::as_bool).unwrap_or(false);
        let field_name = s("fieldName");
        if field_name.is_empty() {
            return Err(missing("schema.fields.fieldName"));
        }
        let type_name = s("dataType");
        if type_name.is_empty() {
            return Err(missing("schema.fields.dataType"));
        }
        let t = data_type(&type_name, "data type")?;
        let element_type = if t == DataType::Array {
            data_type(&s("elementDataType"), "element data type")? as i32
        } else {
            0
        };
        let type_params = match f.get("elementTypeParams") {
            Some(Value::Object(p)) => p
                .iter()
                .map(|(k, v)| KeyValuePair {
                    key: k.clone(),
                    value: text(v),
                })
                .collect(),
            _ => vec![],
        };
        let primary = b("isPrimary");
        fields.push(FieldSchema {
            field_id: FIRST_FIELD_ID + i as i64,
            name: field_name.clone(),
            is_primary_key: primary,
            data_type: t as i32,
            type_params,
            auto_id: primary && auto_id,
            element_type,
            default_value: default_value(
                f.get("defaultValue").unwrap_or(&Value::Null),
                t,
                &field_name,
            )?,
            is_partition_key: b("isPartitionKey"),
            is_clustering_key: b("isClusteringKey"),
            nullable: b("nullable"),
            description: s("description"),
            ..Default::default()
        });
    }
    Ok(CollectionSchema {
        name: name.to_string(),
        description: c.opt_string("description")?,
        auto_id,
        fields,
        functions,
        enable_dynamic_field: schema
            .get("enableDynamicField")
            .and_then(Value::as_bool)
            .unwrap_or(false),
        ..Default::default()
    })
}

/// One entry of `schema.functions` (Milvus's REST shape: `name`, `type` ("BM25"),
/// `inputFieldNames`, `outputFieldNames`, `params`, `description`).
fn function_schema(v: &Value) -> Result<FunctionSchema, Status> {
    let Value::Object(f) = v else {
        return Err(wrong_type("schema.functions", "a list of objects", v));
    };
    let s = |k: &str| {
        f.get(k)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    let names = |k: &str| -> Result<Vec<String>, Status> {
        match f.get(k) {
            None => Ok(Vec::new()),
            Some(Value::Array(a)) => a
                .iter()
                .map(|n| {
                    n.as_str()
                        .map(str::to_string)
                        .ok_or_else(|| wrong_type(k, "a list of field names", n))
                })
                .collect(),
            Some(other) => Err(wrong_type(k, "a list of field names", other)),
        }
    };
    let kind = s("type");
    let r#type = match kind.to_ascii_uppercase().as_str() {
        "BM25" => FunctionType::Bm25,
        "TEXTEMBEDDING" => FunctionType::TextEmbedding,
        _ => {
            return Err(invalid(format!(
                "function type {kind:?} is not valid: expected BM25"
            )))
        }
    };
    let params = match f.get("params") {
        Some(Value::Object(p)) => p
            .iter()
            .map(|(k, v)| KeyValuePair {
                key: k.clone(),
                value: text(v),
            })
            .collect(),
        _ => Vec::new(),
    };
    Ok(FunctionSchema {
        name: s("name"),
        description: s("description"),
        r#type: r#type as i32,
        input_field_names: names("inputFieldNames")?,
        output_field_names: names("outputFieldNames")?,
        params,
        ..Default::default()
    })
}

/// The schema of a quick create (`dimension`, `idType`, ...): a primary key and one
/// vector field, dynamic fields on unless `params.enableDynamicField` says otherwise.
fn quick_schema(
    c: &Call,
    name: &str,
    params: &Map<String, Value>,
) -> Result<CollectionSchema, Status> {
    let dim = c.opt_i64("dimension")?.unwrap_or(0);
    if dim == 0 {
        return Err(invalid(
            "invalid parameter[expected=collectionName & dimension][actual=collectionName]: dimension is required for quickly create collection(default metric type: COSINE)".into(),
        ));
    }
    let (id_type, id_params) = match c.opt_string("idType")?.as_str() {
        "VarChar" | "Varchar" => (
            DataType::VarChar,
            vec![KeyValuePair {
                key: "max_length".into(),
                value: params.get("max_length").map(text).unwrap_or_default(),
            }],
        ),
        "" | "Int64" | "int64" => (DataType::Int64, vec![]),
        other => {
            return Err(invalid(format!(
                "invalid parameter[expected=Int64, Varchar][actual={other}]: idType can only be [Int64, VarChar], default: Int64"
            )))
        }
    };
    let pk = Some(c.opt_string("primaryFieldName")?)
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "id".into());
    let vector = Some(c.opt_string("vectorFieldName")?)
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "vector".into());
    let dynamic = match params.get("enableDynamicField") {
        None => true,
        Some(v) => crate::schema::properties::parse_bool(&text(v)).ok_or_else(|| {
            invalid(format!(
                "parse enableDynamicField fail, err: invalid syntax: {v}"
            ))
        })?,
    };
    Ok(CollectionSchema {
        name: name.to_string(),
        description: c.opt_string("description")?,
        fields: vec![
            FieldSchema {
                field_id: FIRST_FIELD_ID,
                name: pk,
                is_primary_key: true,
                data_type: id_type as i32,
                auto_id: c.opt_bool("autoID")?.unwrap_or(false),
                type_params: id_params,
                ..Default::default()
            },
            FieldSchema {
                field_id: FIRST_FIELD_ID + 1,
                name: vector,
                data_type: DataType::FloatVector as i32,
                type_params: vec![KeyValuePair {
                    key: "dim".into(),
                    value: dim.to_string(),
                }],
                ..Default::default()
            },
        ],
        enable_dynamic_field: dynamic,
        ..Default::default()
    })
}

async fn create(s: Arc<Service>, c: Call) -> Answer {
    let name = c.string("collectionName")?;
    let empty = Map::new();
    let params = c.opt_object("params")?.unwrap_or(&empty);
    let schema_json = c.opt_object("schema")?;
    let quick = schema_json.is_none_or(|s| {
        s.get("fields")
            .and_then(Value::as_array)
            .is_none_or(|f| f.is_empty())
    });
    let schema = if quick {
        quick_schema(&c, &name, params)?
    } else {
        full_schema(&c, &name, schema_json.expect("not quick"))?
    };
    let consistency = match params.get("consistencyLevel") {
        None => ConsistencyLevel::Bounded,
        Some(v) => ConsistencyLevel::from_str_name(&text(v)).ok_or_else(|| {
            invalid(format!(
                "invalid parameter[expected=Strong, Session, Bounded, Eventually, Customized][actual={}]: consistencyLevel can only be [Strong, Session, Bounded, Eventually, Customized], default: Bounded",
                text(v)
            ))
        })?,
    };
    let number = |k: &str| params.get(k).and_then(|v| text(v).parse::<i64>().ok());
    let mut properties = Vec::new();
    for (key, prop) in [
        ("ttlSeconds", "collection.ttl.seconds"),
        ("partitionKeyIsolation", "partitionkey.isolation"),
        ("mmap.enabled", "mmap.enabled"),
    ] {
        if let Some(v) = params.get(key) {
            properties.push(KeyValuePair {
                key: prop.into(),
                value: text(v),
            });
        }
    }
    let fields: Vec<String> = schema.fields.iter().map(|f| f.name.clone()).collect();
    let vector_field = schema.fields[1.min(schema.fields.len() - 1)].name.clone();
    let m = pb::CreateCollectionRequest {
        db_name: c.db.clone(),
        collection_name: name.clone(),
        schema: schema.encode_to_vec(),
        shards_num: i32::try_from(number("shardsNum").unwrap_or(1))
            .map_err(|_| invalid("shardsNum must be between 1 and 16".into()))?,
        consistency_level: consistency as i32,
        properties,
        num_partitions: number("partitionsNum").filter(|n| *n > 0).unwrap_or(0),
        ..Default::default()
    };
    checked(s.create_collection(c.request(m)).await)?;
    // Milvus's REST then indexes (the quick way: the vector field, its metric) and loads.
    let indexes: Vec<Value> = if quick {
        let metric = Some(c.opt_string("metricType")?)
            .filter(|m| !m.is_empty())
            .unwrap_or_else(|| "COSINE".into());
        vec![json!({"fieldName": vector_field, "indexName": vector_field, "metricType": metric})]
    } else {
        match c.body.get("indexParams") {
            Some(Value::Array(a)) => a.clone(),
            _ => vec![],
        }
    };
    if !quick && indexes.is_empty() {
        return Ok(Reply::done());
    }
    for p in &indexes {
        let field = p
            .get("fieldName")
            .and_then(Value::as_str)
            .unwrap_or_default();
        if !fields.iter().any(|f| f == field) {
            return Err(fail(
                super::MISSING_REQUIRED_PARAMETERS,
                format!("missing required parameters, error: `{field}` hasn't defined in schema"),
            ));
        }
        let m = index_request(&c.db, &name, p)?;
        checked(s.create_index(c.request(m)).await)?;
    }
    let m = pb::LoadCollectionRequest {
        db_name: c.db.clone(),
        collection_name: name,
        ..Default::default()
    };
    checked(s.load_collection(c.request(m)).await)?;
    Ok(Reply::done())
}

fn field_json(f: &FieldSchema) -> Value {
    let t = f.data_type();
    let mut m = Map::new();
    m.insert("name".into(), json!(f.name));
    m.insert("primaryKey".into(), json!(f.is_primary_key));
    m.insert("partitionKey".into(), json!(f.is_partition_key));
    m.insert("clusteringKey".into(), json!(f.is_clustering_key));
    m.insert("autoId".into(), json!(f.auto_id));
    m.insert("description".into(), json!(f.description));
    m.insert("nullable".into(), json!(f.nullable));
    if let Some(d) = f.default_value.as_ref().and_then(|d| d.data.as_ref()) {
        use value_field::Data;
        let v = match d {
            Data::BoolData(b) => json!({"Data": {"BoolData": b}}),
            Data::IntData(n) => json!({"Data": {"IntData": n}}),
            Data::LongData(n) => json!({"Data": {"LongData": n}}),
            Data::FloatData(n) => json!({"Data": {"FloatData": n}}),
            Data::DoubleData(n) => json!({"Data": {"DoubleData": n}}),
            Data::StringData(s) => json!({"Data": {"StringData": s}}),
            Data::BytesData(_) => json!({}),
        };
        m.insert("defaultValue".into(), v);
    }
    if f.is_function_output {
        m.insert("isFunctionOutput".into(), json!(true));
    }
    m.insert("type".into(), json!(t.as_str_name()));
    m.insert("id".into(), json!(f.field_id));
    m.insert("params".into(), kv_list(&f.type_params));
    if t == DataType::Array {
        m.insert("elementType".into(), json!(f.element_type().as_str_name()));
    }
    Value::Object(m)
}

async fn describe(s: Arc<Service>, c: Call) -> Answer {
    let name = c.string("collectionName")?;
    let m = pb::DescribeCollectionRequest {
        db_name: c.db.clone(),
        collection_name: name.clone(),
        ..Default::default()
    };
    let d = checked(s.describe_collection(c.request(m)).await)?;
    let schema = d.schema.clone().unwrap_or_default();
    let mut notes = String::new();
    let load = match load_state(&s, &c, &name).await {
        Ok(st) => st.as_str_name().to_string(),
        Err(e) => {
            notes.push_str(&e.reason);
            notes.push(';');
            String::new()
        }
    };
    let m = pb::DescribeIndexRequest {
        db_name: c.db.clone(),
        collection_name: name.clone(),
        ..Default::default()
    };
    let indexes: Vec<Value> = match checked(s.describe_index(c.request(m)).await) {
        Ok(r) => r
            .index_descriptions
            .iter()
            .map(|i| {
                let metric = i
                    .params
                    .iter()
                    .find(|p| p.key == "metric_type")
                    .map_or("COSINE".to_string(), |p| p.value.clone());
                json!({"indexName": i.index_name, "fieldName": i.field_name, "metricType": metric})
            })
            .collect(),
        Err(e) => {
            notes.push_str(&e.reason);
            notes.push(';');
            vec![]
        }
    };
    let m = pb::ListAliasesRequest {
        db_name: c.db.clone(),
        collection_name: name.clone(),
        ..Default::default()
    };
    let aliases = checked(s.list_aliases(c.request(m)).await)
        .map(|r| r.aliases)
        .unwrap_or_default();
    let auto_id = schema
        .fields
        .iter()
        .find(|f| f.is_primary_key)
        .is_some_and(|f| f.auto_id);
    let consistency = ConsistencyLevel::try_from(d.consistency_level)
        .map(|l| l.as_str_name())
        .unwrap_or("Bounded");
    let reply = Reply::data(json!({
        "collectionName": d.collection_name,
        "collectionID": d.collection_id,
        "description": schema.description,
        "autoId": auto_id,
        "fields": schema.fields.iter().map(field_json).collect::<Vec<_>>(),
        "functions": schema.functions.iter().map(|f| json!({
            "name": f.name,
            "id": f.id,
            "description": f.description,
            "type": FunctionType::try_from(f.r#type).map_or("Unknown", |t| t.as_str_name()),
            "inputFieldNames": f.input_field_names,
            "outputFieldNames": f.output_field_names,
            "params": kv_list(&f.params),
        })).collect::<Vec<_>>(),
        "aliases": aliases,
        "indexes": indexes,
        "load": load,
        "shardsNum": d.shards_num,
        "partitionsNum": d.num_partitions,
        "consistencyLevel": consistency,
        "enableDynamicField": schema.enable_dynamic_field,
        "properties": kv_list(&d.properties),
    }));
    Ok(reply.with("message", json!(notes)))
}

async fn load_state(s: &Service, c: &Call, name: &str) -> Result<LoadState, Status> {
    let m = pb::GetLoadStateRequest {
        db_name: c.db.clone(),
        collection_name: name.to_string(),
        ..Default::default()
    };
    let r = checked(s.get_load_state(c.request(m)).await)?;
    Ok(r.state())
}

async fn list(s: Arc<Service>, c: Call) -> Answer {
    let m = pb::ShowCollectionsRequest {
        db_name: c.db.clone(),
        ..Default::default()
    };
    let r = checked(s.show_collections(c.request(m)).await)?;
    Ok(Reply::data(json!(r.collection_names)))
}

async fn has(s: Arc<Service>, c: Call) -> Answer {
    let m = pb::HasCollectionRequest {
        db_name: c.db.clone(),
        collection_name: c.string("collectionName")?,
        ..Default::default()
    };
    let r = checked(s.has_collection(c.request(m)).await)?;
    Ok(Reply::data(json!({"has": r.value})))
}

async fn drop(s: Arc<Service>, c: Call) -> Answer {
    let m = pb::DropCollectionRequest {
        db_name: c.db.clone(),
        collection_name: c.string("collectionName")?,
        ..Default::default()
    };
    checked(s.drop_collection(c.request(m)).await)?;
    Ok(Reply::done())
}

async fn rename(s: Arc<Service>, c: Call) -> Answer {
    let m = pb::RenameCollectionRequest {
        db_name: c.db.clone(),
        old_name: c.string("collectionName")?,
        new_name: c.string("newCollectionName")?,
        new_db_name: c.opt_string("newDbName")?,
        ..Default::default()
    };
    checked(s.rename_collection(c.request(m)).await)?;
    Ok(Reply::done())
}

async fn load(s: Arc<Service>, c: Call) -> Answer {
    let m = pb::LoadCollectionRequest {
        db_name: c.db.clone(),
        collection_name: c.string("collectionName")?,
        replica_number: replica_number(&c)?,
        ..Default::default()
    };
    checked(s.load_collection(c.request(m)).await)?;
    Ok(Reply::done())
}

async fn release(s: Arc<Service>, c: Call) -> Answer {
    let m = pb::ReleaseCollectionRequest {
        db_name: c.db.clone(),
        collection_name: c.string("collectionName")?,
        ..Default::default()
    };
    checked(s.release_collection(c.request(m)).await)?;
    Ok(Reply::done())
}

/// `{"loadState": ..., "loadProgress": ...}` (no progress when not loaded); a collection
/// that does not exist is 100, as Milvus's REST answers.
async fn get_load_state(s: Arc<Service>, c: Call) -> Answer {
    let name = c.string("collectionName")?;
    let partitions = c.strings("partitionNames")?;
    let m = pb::GetLoadStateRequest {
        db_name: c.db.clone(),
        collection_name: name.clone(),
        partition_names: partitions.clone(),
        ..Default::default()
    };
    let r = checked(s.get_load_state(c.request(m)).await)?;
    match r.state() {
        LoadState::NotExist => Err(fail(
            code::COLLECTION_NOT_FOUND,
            format!("collection not found[collection={name}]"),
        )),
        LoadState::NotLoad => Ok(Reply::data(json!({"loadState": "LoadStateNotLoad"}))),
        _ => {
            let m = pb::GetLoadingProgressRequest {
                db_name: c.db.clone(),
                collection_name: name,
                partition_names: partitions,
                ..Default::default()
            };
            let (progress, message) = match checked(s.get_loading_progress(c.request(m)).await) {
                Ok(p) => (p.progress, String::new()),
                Err(e) => (-1, format!("{}.", e.reason)),
            };
            let state = if progress >= 100 {
                "LoadStateLoaded"
            } else {
                "LoadStateLoading"
            };
            Ok(
                Reply::data(json!({"loadState": state, "loadProgress": progress}))
                    .with("message", json!(message)),
            )
        }
    }
}

async fn get_stats(s: Arc<Service>, c: Call) -> Answer {
    let m = pb::GetCollectionStatisticsRequest {
        db_name: c.db.clone(),
        collection_name: c.string("collectionName")?,
        ..Default::default()
    };
    let r = checked(s.get_collection_statistics(c.request(m)).await)?;
    Ok(Reply::data(json!({"rowCount": row_count(&r.stats)})))
}

async fn alter_properties(s: Arc<Service>, c: Call) -> Answer {
    let m = pb::AlterCollectionRequest {
        db_name: c.db.clone(),
        collection_name: c.string("collectionName")?,
        properties: pairs(c.opt_object("properties")?),
        ..Default::default()
    };
    if m.properties.is_empty() {
        return Err(missing("properties"));
    }
    checked(s.alter_collection(c.request(m)).await)?;
    Ok(Reply::done())
}

async fn drop_properties(s: Arc<Service>, c: Call) -> Answer {
    let m = pb::AlterCollectionRequest {
        db_name: c.db.clone(),
        collection_name: c.string("collectionName")?,
        delete_keys: c.required_strings("propertyKeys")?,
        ..Default::default()
    };
    checked(s.alter_collection(c.request(m)).await)?;
    Ok(Reply::done())
}

async fn alter_field_properties(s: Arc<Service>, c: Call) -> Answer {
    let m = pb::AlterCollectionFieldRequest {
        db_name: c.db.clone(),
        collection_name: c.string("collectionName")?,
        field_name: c.string("fieldName")?,
        properties: pairs(c.opt_object("fieldParams")?),
        ..Default::default()
    };
    if m.properties.is_empty() {
        return Err(missing("fieldParams"));
    }
    checked(s.alter_collection_field(c.request(m)).await)?;
    Ok(Reply::done())
}

async fn flush(s: Arc<Service>, c: Call) -> Answer {
    let m = pb::FlushRequest {
        db_name: c.db.clone(),
        collection_names: vec![c.string("collectionName")?],
        ..Default::default()
    };
    checked(s.flush(c.request(m)).await)?;
    Ok(Reply::done())
}

async fn compact(s: Arc<Service>, c: Call) -> Answer {
    let m = pb::ManualCompactionRequest {
        db_name: c.db.clone(),
        collection_name: c.string("collectionName")?,
        major_compaction: c.opt_bool("isClustering")?.unwrap_or(false),
        ..Default::default()
    };
    let r = checked(s.manual_compaction(c.request(m)).await)?;
    Ok(Reply::data(json!({"compactionID": r.compaction_id})))
}

async fn get_compaction_state(s: Arc<Service>, c: Call) -> Answer {
    let job = c.opt_i64("jobID")?.unwrap_or(0);
    let m = pb::GetCompactionStateRequest { compaction_id: job };
    let r = checked(s.get_compaction_state(c.request(m)).await)?;
    Ok(Reply::data(json!({
        "compactionID": job,
        "state": r.state().as_str_name(),
        "executingPlanNumber": r.executing_plan_no,
        "timeoutPlanNumber": r.timeout_plan_no,
        "completedPlanNumber": r.completed_plan_no,
    })))
}

pub(super) fn routes() -> Routes {
    vec![
        ("collections/create", endpoint(create)),
        ("collections/describe", endpoint(describe)),
        ("collections/list", endpoint(list)),
        ("collections/has", endpoint(has)),
        ("collections/drop", endpoint(drop)),
        ("collections/rename", endpoint(rename)),
        ("collections/load", endpoint(load)),
        ("collections/release", endpoint(release)),
        ("collections/get_load_state", endpoint(get_load_state)),
        ("collections/get_stats", endpoint(get_stats)),
        ("collections/alter_properties", endpoint(alter_properties)),
        ("collections/drop_properties", endpoint(drop_properties)),
        (
            "collections/fields/alter_properties",
            endpoint(alter_field_properties),
        ),
        ("collections/flush", endpoint(flush)),
        ("collections/compact", endpoint(compact)),
        (
            "collections/get_compaction_state",
            endpoint(get_compaction_state),
        ),
    ]
}
