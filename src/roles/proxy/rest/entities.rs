//! REST v2 entities: insert, upsert, delete, get, query, search. Rows are converted by
//! the collection's schema (`convert`); results come back as JSON rows, a search's hits
//! of every query one after another with `topks` saying how many each has.

use std::collections::HashMap;
use std::sync::Arc;

use prost::Message;
use serde_json::{json, Map, Value};

use super::INCORRECT_PARAMETER_FORMAT;
use super::{checked, endpoint, fail, missing, wrong_type, Answer, Call, Reply, Routes};
use crate::proto::common::{
    ConsistencyLevel, DslType, KeyValuePair, PlaceholderGroup, PlaceholderType, PlaceholderValue,
    Status,
};
use crate::proto::milvus as pb;
use crate::proto::milvus::milvus_service_server::MilvusService;
use crate::proto::schema::{
    template_array_value, template_value, CollectionSchema, DataType, DoubleArray, LongArray,
    StringArray, TemplateArrayValue, TemplateValue,
};
use crate::roles::proxy::service::Service;
use crate::schema::rows::{column_len, columns_to_rows, rows_to_columns, Int64s};
use crate::status::code;

/// Milvus's code for rows that cannot be converted.
const INVALID_INSERT_DATA: i32 = 1804;
/// Milvus's code for a primary key the call cannot use.
const CHECK_PRIMARY_KEY: i32 = 1806;

/// The collection's schema (as DescribeCollection gives it) and whether it has dynamic
/// fields.
async fn schema(s: &Service, c: &Call, name: &str) -> Result<CollectionSchema, Status> {
    let m = pb::DescribeCollectionRequest {
        db_name: c.db.clone(),
        collection_name: name.to_string(),
        ..Default::default()
    };
    let d = checked(s.describe_collection(c.request(m)).await)?;
    Ok(d.schema.unwrap_or_default())
}

fn cost(status: &Option<Status>) -> Value {
    let v = status
        .as_ref()
        .and_then(|s| s.extra_info.get("report_value"))
        .and_then(|v| v.parse::<i64>().ok())
        .unwrap_or(0);
    json!(v)
}

fn ids_json(ids: &Option<crate::proto::schema::IDs>, int64: Int64s) -> Value {
    use crate::proto::schema::i_ds::IdField;
    match ids.as_ref().and_then(|i| i.id_field.as_ref()) {
        Some(IdField::IntId(a)) => Value::Array(
            a.data
                .iter()
                .map(|n| {
                    if int64.as_numbers {
                        json!(n)
                    } else {
                        json!(n.to_string())
                    }
                })
                .collect(),
        ),
        Some(IdField::StrId(a)) => json!(a.data),
        None => json!([]),
    }
}

fn data_rows(c: &Call) -> Result<Vec<Value>, Status> {
    match c.body.get("data") {
        None | Some(Value::Null) => Err(missing("data")),
        Some(Value::Array(a)) if a.is_empty() => Err(fail(
            INVALID_INSERT_DATA,
            "fail to deal the insert data, error: missing required parameters",
        )),
        Some(Value::Array(a)) => Ok(a.clone()),
        Some(other) => Err(wrong_type("data", "a list of rows", other)),
    }
}

async fn write(s: Arc<Service>, c: Call, upsert: bool) -> Answer {
    let name = c.string("collectionName")?;
    let rows = data_rows(&c)?;
    let schema = schema(&s, &c, &name).await?;
    let fields =
        rows_to_columns(&schema, schema.enable_dynamic_field, &rows, upsert).map_err(|e| {
            fail(
                INVALID_INSERT_DATA,
                format!("fail to deal the insert data, error: {e}"),
            )
        })?;
    let m = pb::InsertRequest {
        db_name: c.db.clone(),
        collection_name: name,
        partition_name: c.opt_string("partitionName")?,
        fields_data: fields,
        num_rows: rows.len() as u32,
        ..Default::default()
    };
    if upsert {
        c.authorize(
            &s,
            pb::UpsertRequest {
                db_name: c.db.clone(),
                collection_name: m.collection_name.clone(),
                ..Default::default()
            },
        )?;
    } else {
        c.authorize(
            &s,
            pb::InsertRequest {
                db_name: c.db.clone(),
                collection_name: m.collection_name.clone(),
                ..Default::default()
            },
        )?;
    }
    // The proxy's own insert (an upsert is an insert that replaces keys), as gRPC's.
    let count = s.0.insert(&c.db, m, upsert).await;
    if let Some(st) = count.status.as_ref().filter(|st| !crate::status::is_ok(st)) {
        return Err(st.clone());
    }
    let (ids_key, count_key) = if upsert {
        ("upsertIds", "upsertCount")
    } else {
        ("insertIds", "insertCount")
    };
    let n = if upsert {
        count.upsert_cnt
    } else {
        count.insert_cnt
    };
    Ok(Reply::data(json!({
        count_key: n,
        ids_key: ids_json(&count.i_ds, c.int64),
    }))
    .with("cost", cost(&count.status)))
}

async fn insert(s: Arc<Service>, c: Call) -> Answer {
    write(s, c, false).await
}

async fn upsert(s: Arc<Service>, c: Call) -> Answer {
    write(s, c, true).await
}

/// `exprParams` as expression template values.
fn template_values(c: &Call) -> Result<HashMap<String, TemplateValue>, Status> {
    let Some(o) = c.opt_object("exprParams")? else {
        return Ok(HashMap::new());
    };
    let mut out = HashMap::new();
    for (k, v) in o {
        use template_value::Val;
        let val = match v {
            Value::Bool(b) => Val::BoolVal(*b),
            Value::String(s) => Val::StringVal(s.clone()),
            Value::Number(n) if n.is_i64() => Val::Int64Val(n.as_i64().expect("i64")),
            Value::Number(n) => Val::FloatVal(n.as_f64().unwrap_or(0.0)),
            Value::Array(a) => {
                use template_array_value::Data;
                let data = if a.iter().all(|x| x.is_i64()) {
                    Data::LongData(LongArray {
                        data: a.iter().filter_map(Value::as_i64).collect(),
                    })
                } else if a.iter().all(Value::is_number) {
                    Data::DoubleData(DoubleArray {
                        data: a.iter().filter_map(Value::as_f64).collect(),
                    })
                } else if a.iter().all(Value::is_string) {
                    Data::StringData(StringArray {
                        data: a
                            .iter()
                            .filter_map(|x| x.as_str().map(str::to_string))
                            .collect(),
                    })
                } else {
                    return Err(fail(
                        code::PARAMETER_INVALID,
                        format!("exprParams.{k}: an array must hold numbers or strings only"),
                    ));
                };
                Val::ArrayVal(TemplateArrayValue { data: Some(data) })
            }
            other => {
                return Err(wrong_type(
                    &format!("exprParams.{k}"),
                    "a bool, number, string or array",
                    other,
                ))
            }
        };
        out.insert(k.clone(), TemplateValue { val: Some(val) });
    }
    Ok(out)
}

/// `consistencyLevel`: (level, use the collection's default).
fn consistency(c: &Call) -> Result<(i32, bool), Status> {
    let v = c.opt_string("consistencyLevel")?;
    if v.is_empty() {
        return Ok((ConsistencyLevel::Bounded as i32, true));
    }
    match ConsistencyLevel::from_str_name(&v) {
        Some(l) => Ok((l as i32, false)),
        None => Err(fail(
            code::PARAMETER_INVALID,
            format!("consistencyLevel can only be [Strong, Session, Bounded, Eventually, Customized], default: Bounded, err:parameter:'{v}' is incorrect, please check it: invalid parameter"),
        )),
    }
}

async fn delete(s: Arc<Service>, c: Call) -> Answer {
    let name = c.string("collectionName")?;
    let filter = c.string("filter")?;
    let m = pb::DeleteRequest {
        db_name: c.db.clone(),
        collection_name: name,
        partition_name: c.opt_string("partitionName")?,
        expr: filter,
        expr_template_values: template_values(&c)?,
        ..Default::default()
    };
    let r = checked(s.delete(c.request(m)).await)?;
    Ok(Reply::data(json!({"deleteCount": r.delete_cnt})))
}

/// Output fields: the given ones, else `default`.
fn output_fields(c: &Call, default: &[&str]) -> Result<Vec<String>, Status> {
    match c.body.get("outputFields") {
        None | Some(Value::Null) => Ok(default.iter().map(|s| s.to_string()).collect()),
        _ => c.strings("outputFields"),
    }
}

async fn run_query(
    s: &Service,
    c: &Call,
    name: String,
    expr: String,
    output: Vec<String>,
    params: Vec<KeyValuePair>,
) -> Answer {
    let (level, use_default) = consistency(c)?;
    let m = pb::QueryRequest {
        db_name: c.db.clone(),
        collection_name: name,
        expr,
        output_fields: output.clone(),
        partition_names: c.strings("partitionNames")?,
        query_params: params,
        consistency_level: level,
        use_default_consistency: use_default,
        expr_template_values: template_values(c)?,
        ..Default::default()
    };
    let r = checked(s.query(c.request(m)).await)?;
    let n = r.fields_data.first().map_or(0, column_len);
    let rows = columns_to_rows(&r.fields_data, n, &output, c.int64);
    Ok(
        Reply::data(Value::Array(rows.into_iter().map(Value::Object).collect()))
            .with("cost", cost(&r.status)),
    )
}

async fn query(s: Arc<Service>, c: Call) -> Answer {
    let name = c.string("collectionName")?;
    let output = output_fields(&c, &["*"])?;
    let limit = c.opt_i64("limit")?.unwrap_or(100);
    let offset = c.opt_i64("offset")?.unwrap_or(0);
    let mut params = Vec::new();
    if offset > 0 {
        params.push(KeyValuePair {
            key: "offset".into(),
            value: offset.to_string(),
        });
    }
    let count_only = output.len() == 1 && output[0].trim().eq_ignore_ascii_case("count(*)");
    if limit > 0 && !count_only {
        params.push(KeyValuePair {
            key: "limit".into(),
            value: limit.to_string(),
        });
    }
    let filter = c.opt_string("filter")?;
    run_query(&s, &c, name, filter, output, params).await
}

/// A primary key value of `get` as it goes into `pk in [...]`.
fn pk_literal(v: &Value, varchar: bool) -> Result<String, Status> {
    let bad = || {
        fail(
            CHECK_PRIMARY_KEY,
            format!("please check the primary key and its' type can only in [int, string], error: {v} is not a valid primary key"),
        )
    };
    if varchar {
        match v {
            Value::String(s) => Ok(serde_json::to_string(s).expect("JSON string")),
            _ => Err(bad()),
        }
    } else {
        match v {
            Value::Number(n) => n.as_i64().map(|n| n.to_string()).ok_or_else(bad),
            Value::String(s) => s.parse::<i64>().map(|n| n.to_string()).map_err(|_| bad()),
            _ => Err(bad()),
        }
    }
}

async fn get(s: Arc<Service>, c: Call) -> Answer {
    let name = c.string("collectionName")?;
    let ids: Vec<Value> = match c.body.get("id") {
        None | Some(Value::Null) => return Err(missing("id")),
        Some(Value::Array(a)) => a.clone(),
        Some(v) => vec![v.clone()],
    };
    let schema = schema(&s, &c, &name).await?;
    let pk = schema
        .fields
        .iter()
        .find(|f| f.is_primary_key)
        .ok_or_else(|| {
            fail(
                CHECK_PRIMARY_KEY,
                format!("collection: {name} has no primary field"),
            )
        })?;
    let varchar = pk.data_type() == DataType::VarChar;
    let literals = ids
        .iter()
        .map(|v| pk_literal(v, varchar))
        .collect::<Result<Vec<_>, _>>()?;
    let expr = format!("{} in [{}]", pk.name, literals.join(","));
    let output = output_fields(&c, &["*"])?;
    run_query(&s, &c, name, expr, output, vec![]).await
}

/// `searchParams` as the search's key-value parameters (Milvus's REST rules: `params`
/// merged with the other top-level keys into one JSON object, each top-level key also on
/// its own).
fn search_params(c: &Call) -> Result<Vec<KeyValuePair>, Status> {
    let mut out = Vec::new();
    let Some(sp) = c.opt_object("searchParams")? else {
        out.push(KeyValuePair {
            key: "params".into(),
            value: "{}".into(),
        });
        return Ok(out);
    };
    let mut merged = match sp.get("params") {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(o)) => o.clone(),
        Some(_) => {
            return Err(fail(
                code::PARAMETER_INVALID,
                "searchParams.params must be a dict: invalid parameter",
            ))
        }
    };
    for (k, v) in sp {
        if k == "params" {
            continue;
        }
        match merged.get(k) {
            Some(existing) if existing.as_f64().zip(v.as_f64()).map_or(existing != v, |(a, b)| a != b) => {
                return Err(fail(
                    code::PARAMETER_INVALID,
                    format!("ambiguous parameter: {k}, in search_param: {v}, in search_param.params: {existing}: invalid parameter"),
                ))
            }
            Some(_) => {}
            None => {
                merged.insert(k.clone(), v.clone());
            }
        }
    }
    out.push(KeyValuePair {
        key: "params".into(),
        value: Value::Object(merged).to_string(),
    });
    for (k, v) in sp {
        if k == "params" {
            continue;
        }
        let key = if k == "ignoreGrowing" {
            "ignore_growing".to_string()
        } else {
            k.clone()
        };
        let value = match v {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        out.push(KeyValuePair { key, value });
    }
    Ok(out)
}

/// The query vectors of `data` for the vector field searched.
fn placeholder(c: &Call, schema: &CollectionSchema, anns: &str) -> Result<(Vec<u8>, i64), Status> {
    let format_err = |why: String| {
        fail(
            INCORRECT_PARAMETER_FORMAT,
            format!("can only accept json format request, error: {why}"),
        )
    };
    let vectors: Vec<_> = schema
        .fields
        .iter()
        .filter(|f| crate::schema::is_vector(f.data_type()))
        .collect();
    let field = if anns.is_empty() {
        match vectors.as_slice() {
            [one] => *one,
            _ => {
                return Err(format_err(format!(
                    "search without annsField, but already found multiple vector fields: [{}]",
                    vectors
                        .iter()
                        .map(|f| f.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                )))
            }
        }
    } else {
        vectors
            .iter()
            .find(|f| f.name == anns)
            .copied()
            .ok_or_else(|| format_err(format!("cannot find a vector field named: {anns}")))?
    };
    let data = match c.body.get("data") {
        Some(Value::Array(a)) if !a.is_empty() => a,
        _ => return Err(missing("data")),
    };
    let dim = crate::schema::dim(field).max(0) as usize;
    let (placeholder, values) = match field.data_type() {
        DataType::FloatVector => {
            let mut values = Vec::with_capacity(data.len());
            for q in data {
                let floats: Option<Vec<f32>> = q
                    .as_array()
                    .and_then(|a| a.iter().map(|x| x.as_f64().map(|f| f as f32)).collect());
                let Some(floats) = floats else {
                    return Err(format_err(format!("{q} is not a list of floats")));
                };
                if floats.len() != dim {
                    return Err(fail(
                        INCORRECT_PARAMETER_FORMAT,
                        format!(
                            "can only accept json format request, error: dimension: {dim}, but length of []float: {}: invalid parameter[expected=FloatVector][actual={q}]",
                            floats.len()
                        ),
                    ));
                }
                values.push(floats.iter().flat_map(|f| f.to_le_bytes()).collect());
            }
            (PlaceholderType::FloatVector, values)
        }
        t @ (DataType::BinaryVector | DataType::Float16Vector | DataType::BFloat16Vector) => {
            let values = data
                .iter()
                .map(|q| crate::schema::rows::vector_bytes(field, q))
                .collect::<Result<Vec<Vec<u8>>, String>>()
                .map_err(|e| fail(INCORRECT_PARAMETER_FORMAT, e))?;
            let placeholder = match t {
                DataType::BinaryVector => PlaceholderType::BinaryVector,
                DataType::Float16Vector => PlaceholderType::Float16Vector,
                _ => PlaceholderType::BFloat16Vector,
            };
            (placeholder, values)
        }
        DataType::SparseFloatVector if field.is_function_output => {
            // A BM25 function's output is searched by text.
            let values = data
                .iter()
                .map(|q| q.as_str().map(|t| t.as_bytes().to_vec()))
                .collect::<Option<Vec<Vec<u8>>>>()
                .ok_or_else(|| format_err("a BM25 search's data are texts".to_string()))?;
            (PlaceholderType::VarChar, values)
        }
        DataType::SparseFloatVector => {
            let values = data
                .iter()
                .map(|q| crate::schema::rows::sparse_row(field, q))
                .collect::<Result<Vec<Vec<u8>>, String>>()
                .map_err(|e| fail(INCORRECT_PARAMETER_FORMAT, e))?;
            (PlaceholderType::SparseFloatVector, values)
        }
        other => {
            return Err(format_err(format!(
                "searching a {} field over REST is not supported by this build yet",
                other.as_str_name()
            )))
        }
    };
    let group = PlaceholderGroup {
        placeholders: vec![PlaceholderValue {
            tag: "$0".into(),
            r#type: placeholder as i32,
            values,
        }],
    };
    Ok((group.encode_to_vec(), data.len() as i64))
}

/// The search a REST body asks for (a search's body, or one entry of a hybrid
/// search's `search` list); consistency is the caller's.
fn search_request(
    c: &Call,
    schema: &CollectionSchema,
    name: &str,
) -> Result<pb::SearchRequest, Status> {
    let mut params = search_params(c)?;
    params.push(KeyValuePair {
        key: "round_decimal".into(),
        value: "-1".into(),
    });
    let limit = c.opt_i64("limit")?.unwrap_or(100);
    params.push(KeyValuePair {
        key: "topk".into(),
        value: limit.to_string(),
    });
    params.push(KeyValuePair {
        key: "offset".into(),
        value: c.opt_i64("offset")?.unwrap_or(0).to_string(),
    });
    let group_by = c.opt_string("groupingField")?;
    if !group_by.is_empty() {
        params.push(KeyValuePair {
            key: "group_by_field".into(),
            value: group_by,
        });
    }
    let anns = c.opt_string("annsField")?;
    params.push(KeyValuePair {
        key: "anns_field".into(),
        value: anns.clone(),
    });
    let (placeholder_group, nq) = placeholder(c, schema, &anns)?;
    Ok(pb::SearchRequest {
        db_name: c.db.clone(),
        collection_name: name.to_string(),
        partition_names: c.strings("partitionNames")?,
        dsl: c.opt_string("filter")?,
        dsl_type: DslType::BoolExprV1 as i32,
        placeholder_group,
        output_fields: c.strings("outputFields")?,
        search_params: params,
        nq,
        expr_template_values: template_values(c)?,
        ..Default::default()
    })
}

/// A search's hits as REST rows: the key, `distance` and the output fields.
fn search_reply(
    c: &Call,
    schema: &CollectionSchema,
    output: &[String],
    r: pb::SearchResults,
) -> Answer {
    let res = r.results.unwrap_or_default();
    if res.top_k == 0 {
        return Ok(Reply::data(json!([])).with("cost", cost(&r.status)));
    }
    let ids = ids_json(&res.ids, c.int64);
    let n = ids.as_array().map_or(0, Vec::len);
    let mut rows = columns_to_rows(&res.fields_data, n, output, c.int64);
    let pk = schema
        .fields
        .iter()
        .find(|f| f.is_primary_key)
        .map_or("id".to_string(), |f| f.name.clone());
    for (i, row) in rows.iter_mut().enumerate() {
        row.insert(pk.clone(), ids[i].clone());
        let score = res.scores.get(i).copied().unwrap_or(0.0) as f64;
        row.insert(
            "distance".into(),
            serde_json::Number::from_f64(score).map_or(Value::Null, Value::Number),
        );
    }
    Ok(
        Reply::data(Value::Array(rows.into_iter().map(Value::Object).collect()))
            .with("cost", cost(&r.status))
            .with("topks", json!(res.topks)),
    )
}

async fn search(s: Arc<Service>, c: Call) -> Answer {
    let name = c.string("collectionName")?;
    let (level, use_default) = consistency(&c)?;
    let schema = schema(&s, &c, &name).await?;
    let m = pb::SearchRequest {
        consistency_level: level,
        use_default_consistency: use_default,
        ..search_request(&c, &schema, &name)?
    };
    let output = m.output_fields.clone();
    let r = checked(s.search(c.request(m)).await)?;
    search_reply(&c, &schema, &output, r)
}

/// `entities/hybrid_search`: `search` is a list of searches (each with `data`,
/// `annsField`, `filter`, `limit`, `metricType` and `params`, or `searchParams`),
/// `rerank` the ranker (`{"strategy": "rrf", "params": {"k": 60}}` or `{"strategy":
/// "weighted", "params": {"weights": [...]}}`; RRF when absent), `limit` and
/// `outputFields` those of the fused answer.
async fn hybrid_search(s: Arc<Service>, c: Call) -> Answer {
    let name = c.string("collectionName")?;
    let (level, use_default) = consistency(&c)?;
    let schema = schema(&s, &c, &name).await?;
    let subs = match c.body.get("search") {
        Some(Value::Array(a)) if !a.is_empty() => a.clone(),
        _ => return Err(missing("search")),
    };
    let mut requests = Vec::with_capacity(subs.len());
    for sub in subs {
        let Value::Object(mut body) = sub else {
            return Err(fail(
                INCORRECT_PARAMETER_FORMAT,
                format!("can only accept json format request, error: search entry {sub} is not an object"),
            ));
        };
        if !body.contains_key("searchParams") {
            let mut sp = Map::new();
            for key in ["metricType", "params"] {
                if let Some(v) = body.remove(key) {
                    sp.insert(key.to_string(), v);
                }
            }
            body.insert("searchParams".into(), Value::Object(sp));
        }
        let sc = Call {
            db: c.db.clone(),
            body,
            int64: c.int64,
            caller: c.caller.clone(),
        };
        requests.push(search_request(&sc, &schema, &name)?);
    }
    let mut rank_params = Vec::new();
    if let Some(rerank) = c.opt_object("rerank")? {
        if let Some(strategy) = rerank.get("strategy").and_then(Value::as_str) {
            rank_params.push(KeyValuePair {
                key: "strategy".into(),
                value: strategy.to_string(),
            });
        }
        rank_params.push(KeyValuePair {
            key: "params".into(),
            value: rerank
                .get("params")
                .cloned()
                .unwrap_or_else(|| json!({}))
                .to_string(),
        });
    }
    for (key, value) in [
        ("limit", c.opt_i64("limit")?.unwrap_or(100)),
        ("offset", c.opt_i64("offset")?.unwrap_or(0)),
        ("round_decimal", -1),
    ] {
        rank_params.push(KeyValuePair {
            key: key.into(),
            value: value.to_string(),
        });
    }
    let output = c.strings("outputFields")?;
    let m = pb::HybridSearchRequest {
        db_name: c.db.clone(),
        collection_name: name,
        partition_names: c.strings("partitionNames")?,
        requests,
        rank_params,
        output_fields: output.clone(),
        consistency_level: level,
        use_default_consistency: use_default,
        ..Default::default()
    };
    let r = checked(s.hybrid_search(c.request(m)).await)?;
    search_reply(&c, &schema, &output, r)
}

pub(super) fn routes() -> Routes {
    vec![
        ("entities/insert", endpoint(insert)),
        ("entities/upsert", endpoint(upsert)),
        ("entities/delete", endpoint(delete)),
        ("entities/get", endpoint(get)),
        ("entities/query", endpoint(query)),
        ("entities/search", endpoint(search)),
        ("entities/hybrid_search", endpoint(hybrid_search)),
        ("entities/advanced_search", endpoint(hybrid_search)),
    ]
}
