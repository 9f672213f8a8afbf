//! `Search`: checked against the schema and the field's index (Milvus's rules and
//! codes), sent to one querynode per shard, merged best first with each key once, then
//! `offset`, `limit`, `round_decimal` and the output columns.

use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

use prost::Message;

use super::read::{append_row, invalid, output_columns, output_fields, Loaded};
use super::Proxy;
use crate::index::params::{self, Kind, Metric, Range, SearchParams};
use crate::proto::common::{PlaceholderGroup, PlaceholderType, Status};
use crate::proto::milvus as pb;
use crate::proto::querynode as qn;
use crate::proto::schema::{
    i_ds, template_array_value as tav, template_value, DataType, FieldSchema, IDs, LongArray,
    SearchIteratorV2Results, SearchResultData, StringArray, TemplateArrayValue, TemplateValue,
};
use crate::schema::vectors::Encoding;
use crate::status::{code, error};

/// Milvus's bound on `limit + offset` (`quotaAndLimits.limits.topK`).
pub const MAX_TOPK: i64 = 16384;
/// Milvus's bound on a grouping search's `group_size` (`queryNode.maxGroupSize`).
pub(super) const MAX_GROUP_SIZE: i64 = 1024;

/// The search parameters pymilvus sends, by name.
struct Knobs {
    topk: i64,
    offset: i64,
    round_decimal: i64,
    anns_field: String,
    metric: String,
    params: BTreeMap<String, String>,
    /// A range search's outer bound.
    radius: Option<f64>,
    /// A range search's inner bound.
    range_filter: Option<f64>,
    /// A grouping search's field name.
    group_by: Option<String>,
    /// Hits per group at most.
    group_size: i64,
    /// The request is a page of pymilvus's search iterator.
    iterator: bool,
    /// A search iterator v2 page: its token.
    iter_token: Option<String>,
    /// A search iterator v2 page after the first: the last score of the page before.
    last_bound: Option<f64>,
    /// The collection ID the client resolved the name to when it began (pymilvus's
    /// search iterator sends it with every page).
    collection_id: Option<i64>,
}

/// A new search iterator's token: opaque to the client, which sends it back with every
/// page (nothing is kept here: a page is a range search past the last bound).
fn new_iterator_token() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!(
        "{nanos:x}-{:x}-{:x}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

fn knobs(pairs: &[crate::proto::common::KeyValuePair]) -> Result<Knobs, Status> {
    let get = |k: &str| {
        pairs
            .iter()
            .find(|p| p.key == k)
            .map(|p| p.value.trim().to_string())
    };
    let int = |k: &str, default: Option<i64>| -> Result<i64, Status> {
        match get(k) {
            Some(v) => v
                .parse::<i64>()
                .map_err(|_| invalid(format!("{k} [{v}] is invalid, it should be an integer"))),
            None => default.ok_or_else(|| invalid(format!("{k} not found in search_params"))),
        }
    };
    let topk = int("topk", None)?;
    let offset = int("offset", Some(0))?;
    let round_decimal = int("round_decimal", Some(-1))?;
    if !(1..=MAX_TOPK).contains(&topk) {
        return Err(invalid(format!(
            "topk [{topk}] is invalid, it should be in range [1, {MAX_TOPK}], but got {topk}"
        )));
    }
    if offset < 0 || topk + offset > MAX_TOPK {
        return Err(invalid(format!(
            "offset [{offset}] is invalid, limit + offset should be in range [1, {MAX_TOPK}]"
        )));
    }
    if !(-1..=6).contains(&round_decimal) {
        return Err(invalid(format!(
            "round_decimal {round_decimal} is invalid, it should be -1 or in range [0, 6]"
        )));
    }
    let mut params = BTreeMap::new();
    let mut metric = get("metric_type").unwrap_or_default();
    if let Some(json) = get("params").filter(|j| !j.is_empty()) {
        let v: serde_json::Value = serde_json::from_str(&json)
            .map_err(|e| invalid(format!("search params are not JSON: {e}")))?;
        if let Some(o) = v.as_object() {
            for (k, v) in o {
                let s = match v {
                    serde_json::Value::String(s) => s.clone(),
                    v => v.to_string(),
                };
                if k == "metric_type" {
                    if metric.is_empty() {
                        metric = s;
                    }
                } else {
                    params.insert(k.clone(), s);
                }
            }
        }
    }
    let group_by = params
        .get("group_by_field")
        .cloned()
        .or_else(|| get("group_by_field"))
        .filter(|v| !v.is_empty());
    let group_size = match params.get("group_size").cloned().or_else(|| get("group_size")) {
        None => 1,
        Some(v) => match v.parse::<i64>() {
            Ok(n) if (1..=MAX_GROUP_SIZE).contains(&n) => n,
            _ => {
                return Err(invalid(format!(
                    "group_size [{v}] is invalid, it should be an integer in range [1, {MAX_GROUP_SIZE}]"
                )))
            }
        },
    };
    let flag = |key: &str| {
        params
            .get(key)
            .cloned()
            .or_else(|| get(key))
            .is_some_and(|v| v.eq_ignore_ascii_case("true"))
    };
    // `strict_group_size` needs no flag: groups are always filled as far as the data
    // allows.
    // Milvus's one filter-execution hint; its answers are the same with or without it
    // here (filters are evaluated before the vector search).
    if let Some(h) = params.get("hints").cloned().or_else(|| get("hints")) {
        if h != "iterative_filter" {
            return Err(error(
                code::UNEXPECTED,
                format!("Create Plan by expr failed:  => hints: {h} not supported"),
            ));
        }
    }
    let iterator = flag("iterator");
    // pymilvus's search iterator v2: a token naming the iterator (made here on its first
    // page) and the last score of the page before.
    let iter_token = flag("search_iter_v2").then(|| {
        params
            .get("search_iter_id")
            .cloned()
            .or_else(|| get("search_iter_id"))
            .filter(|t| !t.is_empty())
            .unwrap_or_else(new_iterator_token)
    });
    let bound = |key: &str| -> Result<Option<f64>, Status> {
        let Some(v) = params.get(key).cloned().or_else(|| get(key)) else {
            return Ok(None);
        };
        if v == "null" || v.is_empty() {
            return Err(invalid(format!(
                "pass invalid type for {key}: invalid parameter"
            )));
        }
        v.trim_matches('"')
            .parse::<f64>()
            .map(Some)
            .map_err(|_| invalid(format!("must pass numpy type for {key}: invalid parameter")))
    };
    let radius = bound("radius")?;
    let last_bound = if iter_token.is_some() {
        bound("search_iter_last_bound")?
    } else {
        None
    };
    // Milvus reads `range_filter` only with a `radius`.
    let range_filter = if radius.is_some() {
        bound("range_filter")?
    } else {
        None
    };
    Ok(Knobs {
        topk,
        offset,
        round_decimal,
        anns_field: get("anns_field").unwrap_or_default(),
        metric,
        params,
        radius,
        range_filter,
        group_by,
        group_size,
        iterator,
        iter_token,
        last_bound,
        collection_id: get("collection_id").and_then(|v| v.parse().ok()),
    })
}

/// The placeholder type of search data for a vector field of type `t`.
fn placeholder_type(t: DataType) -> PlaceholderType {
    match t {
        DataType::BinaryVector => PlaceholderType::BinaryVector,
        DataType::Float16Vector => PlaceholderType::Float16Vector,
        DataType::BFloat16Vector => PlaceholderType::BFloat16Vector,
        _ => PlaceholderType::FloatVector,
    }
}

/// Dense query vectors sent to querynodes as words (schema::vectors), checked against
/// the field's dim.
fn dense_queries(
    field: &FieldSchema,
    enc: Encoding,
    dim: usize,
    values: &[Vec<u8>],
) -> Result<Vec<u8>, Status> {
    let width = enc.bytes(dim);
    let mut vectors = Vec::with_capacity(values.len() * enc.words(dim) * 4);
    for v in values {
        if v.len() != width && enc == Encoding::Float {
            return Err(invalid(format!(
                "the dim ({}) of search data is not equal to the dim ({dim}) of vector field {}",
                v.len() / 4,
                field.name
            )));
        }
        if v.len() != width {
            return Err(invalid(format!(
                "vector dimension mismatch, expected vector size(byte) {width}, actual {}.",
                v.len()
            )));
        }
        for w in enc.decode(v, dim) {
            vectors.extend_from_slice(&w.to_le_bytes());
        }
    }
    Ok(vectors)
}

/// The texts of a BM25 search as term-count rows (the querynodes weight them by their
/// shard's IDF), cut by the BM25 function's input field's analyzer.
/// With several analyzers on the field, `analyzer_name` picks one (else `default`).
fn bm25_queries(
    text_field: &FieldSchema,
    values: &[Vec<u8>],
    analyzer_name: &str,
) -> Result<Vec<Vec<u8>>, Status> {
    let mut analyzer = crate::schema::TextAnalyzer::of(text_field)?;
    values
        .iter()
        .map(|v| {
            let text = std::str::from_utf8(v)
                .map_err(|e| invalid(format!("string data must be utf8 format: {e}")))?;
            Ok(crate::index::sparse::encode_pairs(
                &analyzer.term_counts(analyzer_name, text),
            ))
        })
        .collect()
}

/// A placeholder type as Milvus's query engine names it in messages.
fn engine_name(t: i32) -> &'static str {
    match PlaceholderType::try_from(t) {
        Ok(PlaceholderType::BinaryVector) => "VECTOR_BINARY",
        Ok(PlaceholderType::FloatVector) => "VECTOR_FLOAT",
        Ok(PlaceholderType::Float16Vector) => "VECTOR_FLOAT16",
        Ok(PlaceholderType::BFloat16Vector) => "VECTOR_BFLOAT16",
        Ok(PlaceholderType::SparseFloatVector) => "VECTOR_SPARSE_FLOAT",
        Ok(PlaceholderType::VarChar) => "VARCHAR",
        Ok(PlaceholderType::Int64) => "INT64",
        _ => "NONE",
    }
}

pub(super) fn round(x: f32, decimals: i64) -> f32 {
    if decimals < 0 {
        return x;
    }
    let p = 10f64.powi(decimals as i32);
    ((f64::from(x) * p).round() / p) as f32
}

/// A key of a hit, for de-duplication across shards.
#[derive(PartialEq, Eq, Hash, Clone)]
pub(super) enum Key {
    Int(i64),
    Str(String),
}

pub(super) fn key_at(ids: &IDs, i: usize) -> Option<Key> {
    match &ids.id_field {
        Some(i_ds::IdField::IntId(l)) => l.data.get(i).map(|v| Key::Int(*v)),
        Some(i_ds::IdField::StrId(s)) => s.data.get(i).map(|v| Key::Str(v.clone())),
        None => None,
    }
}

pub(super) fn empty_search(nq: i64, topk: i64, pk: &str) -> pb::SearchResults {
    pb::SearchResults {
        status: Some(Status::default()),
        results: Some(SearchResultData {
            num_queries: nq,
            top_k: topk,
            topks: vec![0; nq.max(0) as usize],
            primary_field_name: pk.to_string(),
            ..Default::default()
        }),
        ..Default::default()
    }
}

impl Proxy {
    /// `Search`.
    pub async fn search(&self, db: &str, req: pb::SearchRequest) -> pb::SearchResults {
        let name = req.collection_name.clone();
        match self.try_search(db, req).await {
            Ok(r) => r,
            Err(s) => pb::SearchResults {
                status: Some(s),
                collection_name: name,
                ..Default::default()
            },
        }
    }

    async fn try_search(
        &self,
        db: &str,
        req: pb::SearchRequest,
    ) -> Result<pb::SearchResults, Status> {
        self.search_scored(db, req).await.map(|(r, _)| r)
    }

    /// A search and the metric its scores are in.
    pub(super) async fn search_scored(
        &self,
        db: &str,
        mut req: pb::SearchRequest,
    ) -> Result<(pb::SearchResults, Metric), Status> {
        let db = if req.db_name.is_empty() {
            db
        } else {
            &req.db_name
        };
        let loaded = self.loaded(db, &req.collection_name).await?;
        let schema = loaded.schema().clone();
        let k = knobs(&req.search_params)?;
        // A search iterator pinned the collection at its start: an alias or database
        // that now names another collection must not splice two collections' pages.
        if let Some(id) = k
            .collection_id
            .filter(|id| *id > 0 && *id != loaded.record.id)
        {
            return Err(invalid(format!(
                "collection id:{id} in the request is not consistent to that in the search context,alias or database may have been changed: {}: invalid parameter",
                loaded.record.id
            )));
        }
        let vector_fields: Vec<&FieldSchema> = schema
            .fields
            .iter()
            .filter(|f| crate::schema::is_vector(f.data_type()))
            .collect();
        let field = if k.anns_field.is_empty() {
            match vector_fields.as_slice() {
                [one] => *one,
                [] => return Err(invalid("the collection has no vector field to search")),
                _ => {
                    return Err(invalid(
                        "multiple anns_fields exist, please specify a anns_field in search_params",
                    ))
                }
            }
        } else {
            *vector_fields
                .iter()
                .find(|f| f.name == k.anns_field)
                .ok_or_else(|| {
                    invalid(format!(
                        "failed to create query plan: failed to get field schema by name: fieldName({}) not found: invalid parameter",
                        k.anns_field
                    ))
                })?
        };
        let pk = schema
            .fields
            .iter()
            .find(|f| f.is_primary_key)
            .map(|f| f.name.clone())
            .unwrap_or_default();
        // A search iterator's page after a bound that hits of the page before tie with:
        // the bound is taken inclusively and the keys given at it are filtered out.
        let seen = match (&k.iter_token, k.last_bound) {
            (Some(t), Some(b)) => iterator_ties(self, t, b as f32),
            _ => None,
        };
        if let Some(keys) = &seen {
            exclude_keys(&mut req, &pk, keys);
        }
        // The filter is checked first (Milvus plans it before it reads the vectors).
        let filter = super::read::plan_filter(&req.dsl, &schema, &req.expr_template_values)?;
        let dim = crate::schema::dim(field).max(0) as usize;
        let group = PlaceholderGroup::decode(req.placeholder_group.as_slice())
            .map_err(|e| invalid(format!("the search data cannot be decoded: {e}")))?;
        let ph = group
            .placeholders
            .first()
            .ok_or_else(|| invalid("no search data (placeholder group is empty)"))?;
        let bm25 = crate::schema::bm25_source(&schema, field.field_id);
        let sparse = field.data_type() == DataType::SparseFloatVector;
        let wanted = match (sparse, bm25) {
            (true, Some(_)) => PlaceholderType::VarChar,
            (true, None) => PlaceholderType::SparseFloatVector,
            (false, _) => placeholder_type(field.data_type()),
        };
        if ph.r#type != wanted as i32 {
            if bm25.is_some() {
                // Milvus's delegator.
                return Err(invalid(format!(
                    "please provide varchar for BM25 Function based search, got {}",
                    PlaceholderType::try_from(ph.r#type).map_or("None", |t| t.as_str_name())
                )));
            }
            // Milvus's query plan check (segcore's Plan.cpp).
            return Err(invalid(format!(
                "vector type must be the same, field {} - type {}, search info type {}",
                field.name,
                engine_name(wanted as i32),
                engine_name(ph.r#type)
            )));
        }
        let nq = ph.values.len() as i64;
        if nq == 0 {
            return Err(invalid("nq (number of search vectors) must be at least 1"));
        }
        let enc = Encoding::of(field.data_type());
        let (vectors, sparse_vectors) = match (enc, bm25) {
            (Some(enc), _) => (dense_queries(field, enc, dim, &ph.values)?, Vec::new()),
            (None, None) => {
                for v in &ph.values {
                    crate::index::sparse::validate_row(v).map_err(invalid)?;
                }
                (Vec::new(), ph.values.clone())
            }
            (None, Some(text_field)) => {
                let name = req
                    .search_params
                    .iter()
                    .find(|p| p.key == "analyzer_name")
                    .map(|p| p.value.clone())
                    .or_else(|| k.params.get("analyzer_name").cloned())
                    .filter(|n| !n.is_empty())
                    .unwrap_or_else(|| "default".to_string());
                (Vec::new(), bm25_queries(text_field, &ph.values, &name)?)
            }
        };
        let def = self
            .index_params(loaded.record.id, field.field_id)
            .ok_or_else(|| {
                error(
                    code::INDEX_NOT_FOUND,
                    format!(
                        "index not found[collection={}][field={}]",
                        req.collection_name, field.name
                    ),
                )
            })?;
        let spec = params::parse(
            &params::flatten(&def.params).map_err(invalid)?,
            field.data_type(),
        )
        .map_err(invalid)?;
        let metric = if k.metric.is_empty() {
            spec.metric
        } else {
            let m = Metric::parse(&k.metric.to_uppercase()).map_err(invalid)?;
            if m != spec.metric {
                return Err(invalid(format!(
                    "metric type not match: invalid parameter[expected={}][actual={}]",
                    spec.metric.name(),
                    m.name()
                )));
            }
            m
        };
        let mut range = match k.radius {
            Some(r) => Some(
                Range::new(metric, r, k.range_filter)
                    .map_err(|e| invalid(format!("{e}: invalid parameter")))?,
            ),
            None => None,
        };
        if let Some(b) = k.last_bound {
            let r = range.unwrap_or_else(|| Range::unbounded(metric));
            range = Some(if seen.is_some() {
                r.at_or_after(b as f32)
            } else {
                r.after(b as f32)
            });
        }
        let grouping = match &k.group_by {
            None => None,
            Some(name) => {
                if k.iterator {
                    return Err(invalid("Not allowed to do groupBy when doing iteration"));
                }
                if enc == Some(Encoding::Binary) {
                    return Err(invalid(
                        "not support search_group_by operation based on binary vector column",
                    ));
                }
                if range.is_some() {
                    return Err(invalid(
                        "Not allowed to do range-search when doing search-group-by",
                    ));
                }
                let f = schema
                    .fields
                    .iter()
                    .find(|f| &f.name == name)
                    .ok_or_else(|| {
                        invalid(format!(
                            "groupBy field not found in schema: field not found[field={name}]"
                        ))
                    })?;
                if !crate::schema::groupable(f.data_type()) {
                    return Err(invalid(format!(
                        "unsupported data type {} for group by operator: group by a Bool, Int8, Int16, Int32, Int64 or VarChar field",
                        f.data_type().as_str_name()
                    )));
                }
                Some(f.field_id)
            }
        };
        let want = (k.topk + k.offset) as usize;
        let sp = SearchParams::parse(&k.params, &spec, want).map_err(invalid)?;
        let partitions =
            loaded.key_partitions(loaded.partitions(&req.partition_names)?, filter.as_ref());
        let out = output_fields(&schema, &req.output_fields, false)?;
        // The shards return the grouped field's column (after the asked ones when it is
        // not one of them): the merge groups by it.
        let mut shard_output = out.ids.clone();
        let group_column = grouping.map(|id| match out.ids.iter().position(|o| *o == id) {
            Some(i) => i,
            None => {
                shard_output.push(id);
                shard_output.len() - 1
            }
        });
        let freshness = self.freshness(
            &loaded.record,
            req.consistency_level,
            req.use_default_consistency,
            req.guarantee_timestamp,
        );
        let shard_req = qn::ShardSearchRequest {
            base: Some(qn::ShardRequestBase {
                collection_id: loaded.record.id,
                vchannel: String::new(),
                replica: 0,
                partition_ids: partitions,
                filter: req.dsl.clone(),
                template_values: req.expr_template_values.clone(),
                output_field_ids: shard_output,
                freshness: Some(freshness),
                expire_before: loaded.expire_before(),
            }),
            field_id: field.field_id,
            vectors,
            nq,
            dim: enc.map_or(0, |e| e.words(dim)) as i64,
            topk: want as i64,
            metric_type: metric.name().to_string(),
            ef: sp.ef.unwrap_or(0) as i64,
            nprobe: sp.nprobe.unwrap_or(0) as i64,
            reorder_k: sp.reorder_k.unwrap_or(0) as i64,
            has_radius: k.radius.is_some(),
            radius: range.map_or(0.0, |r| r.radius),
            has_range_filter: range.is_some_and(|r| r.range_filter.is_some()),
            range_filter: range.and_then(|r| r.range_filter).unwrap_or(0.0),
            has_after: range.is_some_and(|r| r.after.is_some()),
            after_inclusive: range.is_some_and(|r| r.after_inclusive),
            after: range.and_then(|r| r.after).unwrap_or(0.0),
            group_by_field_id: grouping.unwrap_or(0),
            group_size: k.group_size,
            sparse_vectors,
            drop_ratio_search: sp.drop_ratio_search.map_or(0.0, |r| r.0),
            bm25: metric == Metric::Bm25,
            bm25_k1: match spec.kind {
                Kind::Sparse { k1, .. } => k1.0,
                _ => 0.0,
            },
            bm25_b: match spec.kind {
                Kind::Sparse { b, .. } => b.0,
                _ => 0.0,
            },
        };
        let parts = self
            .each_shard(
                &loaded,
                Duration::from_secs(15),
                |mut client, replica, vch| {
                    let mut r = shard_req.clone();
                    if let Some(b) = r.base.as_mut() {
                        b.vchannel = vch;
                        b.replica = replica;
                    }
                    async move {
                        let res = client.search(r).await?.into_inner();
                        Ok((res.status.clone().unwrap_or_default(), res))
                    }
                },
            )
            .await?;
        let group = group_column.map(|column| Group {
            column,
            size: k.group_size as usize,
        });
        let (mut r, last) = merge(&loaded, &req, &k, metric, nq, &out, parts, &pk, group);
        if let Some(token) = &k.iter_token {
            let res = r.results.get_or_insert_with(Default::default);
            remember_ties(self, token, res, k.last_bound.map(|b| b as f32), seen);
            res.search_iterator_v2_results = Some(SearchIteratorV2Results {
                token: token.clone(),
                // An empty page ends the iteration; its bound is not read again.
                last_bound: last.or(k.last_bound.map(|b| b as f32)).unwrap_or(0.0),
            });
        }
        Ok((r, metric))
    }
}

/// The keys a search iterator was given at exactly `bound`, when its last page ended
/// there (None: nothing recorded, or another bound).
fn iterator_ties(p: &Proxy, token: &str, bound: f32) -> Option<Vec<Key>> {
    let ties = p.reads.iter_ties.lock().unwrap_or_else(|e| e.into_inner());
    ties.get(token)
        .filter(|(b, keys)| *b == bound && !keys.is_empty())
        .map(|(_, keys)| keys.clone())
}

/// Records the keys of the page's hits that score its last bound (with those of the
/// pages before at the same bound), for [`iterator_ties`]. Kept for the 4,096 most
/// recent iterators (an older one pages on with a strict bound, as before).
fn remember_ties(
    p: &Proxy,
    token: &str,
    page: &SearchResultData,
    before: Option<f32>,
    seen: Option<Vec<Key>>,
) {
    let Some(last) = page.scores.last().copied() else {
        return;
    };
    let ids = page.ids.clone().unwrap_or_default();
    let mut keys: Vec<Key> = (0..page.scores.len())
        .filter(|i| page.scores[*i] == last)
        .filter_map(|i| key_at(&ids, i))
        .collect();
    if before == Some(last) {
        keys.extend(seen.unwrap_or_default());
    }
    let mut ties = p.reads.iter_ties.lock().unwrap_or_else(|e| e.into_inner());
    if ties.len() >= 4096 && !ties.contains_key(token) {
        ties.clear();
    }
    ties.insert(token.to_string(), (last, keys));
}

/// Adds `pk not in {seen}` to the request's filter (a template value: no quoting).
fn exclude_keys(req: &mut pb::SearchRequest, pk: &str, keys: &[Key]) {
    const SEEN: &str = "__search_iterator_seen";
    let data = match keys.first() {
        Some(Key::Str(_)) => tav::Data::StringData(StringArray {
            data: keys
                .iter()
                .filter_map(|k| match k {
                    Key::Str(s) => Some(s.clone()),
                    Key::Int(_) => None,
                })
                .collect(),
        }),
        _ => tav::Data::LongData(LongArray {
            data: keys
                .iter()
                .filter_map(|k| match k {
                    Key::Int(i) => Some(*i),
                    Key::Str(_) => None,
                })
                .collect(),
        }),
    };
    req.expr_template_values.insert(
        SEEN.to_string(),
        TemplateValue {
            val: Some(template_value::Val::ArrayVal(TemplateArrayValue {
                data: Some(data),
            })),
        },
    );
    req.dsl = if req.dsl.trim().is_empty() {
        format!("{pk} not in {{{SEEN}}}")
    } else {
        format!("({}) and {pk} not in {{{SEEN}}}", req.dsl)
    };
}

/// A grouping search's merge: the grouped field's column in the shards' answers, and
/// the hits per group at most.
#[derive(Clone, Copy)]
struct Group {
    column: usize,
    size: usize,
}

/// Hits as (score, shard, flat index in the shard's answer).
type Hits = Vec<(f32, usize, usize)>;

/// Milvus's grouped reduce over `hits` (best first, each key once): the first `offset`
/// groups are skipped, then `topk` groups of up to `g.size` hits are kept; the answer
/// lists each group's hits together, groups in the order of their best hit.
fn pick_groups(
    parts: &[qn::ShardSearchResults],
    g: Group,
    offset: usize,
    topk: usize,
    hits: Hits,
) -> Hits {
    use crate::schema::{group_key, GroupKey};
    let mut skipped: HashSet<GroupKey> = HashSet::new();
    let mut index: std::collections::HashMap<GroupKey, usize> = std::collections::HashMap::new();
    let mut groups: Vec<Hits> = Vec::new();
    for (score, s, i) in hits {
        let key = parts[s]
            .fields_data
            .get(g.column)
            .map_or(GroupKey::Null, |c| group_key(c, i));
        if skipped.len() < offset || skipped.contains(&key) {
            skipped.insert(key);
            continue;
        }
        match index.get(&key) {
            Some(&at) if groups[at].len() < g.size => groups[at].push((score, s, i)),
            Some(_) => {}
            None if groups.len() < topk => {
                index.insert(key, groups.len());
                groups.push(vec![(score, s, i)]);
            }
            None => {}
        }
    }
    groups.into_iter().flatten().collect()
}

/// Merges the shards' hits: per query best first, each key once, then offset/limit
/// (or, grouping, offset groups and limit groups).
#[allow(clippy::too_many_arguments)]
fn merge(
    loaded: &Loaded,
    req: &pb::SearchRequest,
    k: &Knobs,
    metric: Metric,
    nq: i64,
    out: &super::read::Output,
    parts: Vec<qn::ShardSearchResults>,
    pk: &str,
    group: Option<Group>,
) -> (pb::SearchResults, Option<f32>) {
    let mut status = Status::default();
    crate::status::set_cost(&mut status, parts.iter().map(|p| p.scanned).sum());
    let schema = loaded.schema();
    // Each shard's hits start at this flat index for query i.
    let starts: Vec<Vec<usize>> = parts
        .iter()
        .map(|p| {
            let mut acc = 0usize;
            p.topks
                .iter()
                .map(|t| {
                    let s = acc;
                    acc += *t as usize;
                    s
                })
                .collect()
        })
        .collect();
    let mut columns = output_columns(schema, &out.ids);
    let mut int_ids = Vec::new();
    let mut str_ids = Vec::new();
    let mut scores = Vec::new();
    let mut topks = Vec::new();
    let mut group_values: Option<crate::proto::schema::FieldData> = None;
    // The first query's last score, unrounded (a search iterator's next bound).
    let mut last = None;
    let is_str = schema
        .fields
        .iter()
        .any(|f| f.is_primary_key && f.data_type() == DataType::VarChar);
    for q in 0..nq as usize {
        let mut hits: Hits = Vec::new();
        for (s, p) in parts.iter().enumerate() {
            let n = p.topks.get(q).copied().unwrap_or(0) as usize;
            let start = starts[s].get(q).copied().unwrap_or(0);
            for i in start..start + n {
                hits.push((p.scores[i], s, i));
            }
        }
        hits.sort_by(|a, b| {
            let o = a.0.partial_cmp(&b.0).unwrap_or(std::cmp::Ordering::Equal);
            if metric.higher_is_better() {
                o.reverse()
            } else {
                o
            }
        });
        let mut seen = HashSet::new();
        hits.retain(|(_, s, i)| {
            parts[*s]
                .ids
                .as_ref()
                .and_then(|ids| key_at(ids, *i))
                .is_some_and(|key| seen.insert(key))
        });
        let chosen: Hits = match group {
            None => hits
                .into_iter()
                .skip(k.offset as usize)
                .take(k.topk as usize)
                .collect(),
            Some(g) => pick_groups(&parts, g, k.offset as usize, k.topk as usize, hits),
        };
        topks.push(chosen.len() as i64);
        if q == 0 {
            last = chosen.last().map(|c| c.0);
        }
        for (score, s, i) in chosen {
            match parts[s].ids.as_ref().and_then(|ids| key_at(ids, i)) {
                Some(Key::Int(v)) => int_ids.push(v),
                Some(Key::Str(v)) => str_ids.push(v),
                None => {}
            }
            scores.push(round(score, k.round_decimal));
            append_row(&mut columns, &parts[s].fields_data, i);
            if let Some(g) = group {
                if let Some(c) = parts[s].fields_data.get(g.column) {
                    let value = crate::schema::take_row(c, i);
                    match &mut group_values {
                        None => group_values = Some(value),
                        Some(dst) => crate::schema::extend_field(dst, value),
                    }
                }
            }
        }
    }
    if topks.iter().all(|t| *t == 0) {
        return (
            pb::SearchResults {
                status: Some(status),
                ..empty_search(nq, k.topk, pk)
            },
            None,
        );
    }
    let ids = IDs {
        id_field: Some(if is_str {
            i_ds::IdField::StrId(crate::proto::schema::StringArray { data: str_ids })
        } else {
            i_ds::IdField::IntId(crate::proto::schema::LongArray { data: int_ids })
        }),
    };
    let answer = pb::SearchResults {
        status: Some(status),
        results: Some(SearchResultData {
            num_queries: nq,
            top_k: k.topk,
            fields_data: if out.ids.is_empty() { vec![] } else { columns },
            scores,
            ids: Some(ids),
            topks,
            output_fields: out.names.clone(),
            primary_field_name: pk.to_string(),
            group_by_field_value: group_values,
            ..Default::default()
        }),
        collection_name: req.collection_name.clone(),
        session_ts: 0,
    };
    (answer, last)
}
