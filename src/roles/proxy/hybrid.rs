//! `HybridSearch`: one search per request, each over its own vector field with its own
//! data, filter, parameters and limit (all under the hybrid request's partitions,
//! consistency and output fields), run concurrently; their hits are then fused per
//! query by a reranker, Milvus 2.5's two:
//!
//! - `rrf` (the default, `k` 60): a key's score is the sum over the searches that
//!   found it of `1 / (k + rank)`, rank 1 being a search's best hit;
//! - `weighted`: the sum of `weight * s`, with `s` the hit's score normalized to
//!   [0, 1] by its metric (COSINE `(1 + s) / 2`, IP `0.5 + atan(s) / pi`, L2
//!   `1 - 2 atan(d) / pi`) unless `norm_score` is false.
//!
//! Fused hits are ordered by score (higher first), then `offset`, `limit` and
//! `round_decimal` of the rank parameters apply. Every key appears once per query.
//!
//! With `group_by_field` (and `group_size`, `rank_group_scorer`) in the rank parameters,
//! every search is a grouping search on that field, and the fused keys, best first (ties:
//! smaller key), fill groups of at most `group_size` by their value; a group scores the
//! max (default), sum or average of its keys' fused scores; groups are ordered by that
//! score (ties: the larger group, then the smaller first key) and `offset` / `limit`
//! count groups (Milvus 2.5's `rankSearchResultDataByGroup`).

use std::collections::HashMap;

use super::read::{append_row, invalid, output_columns, output_fields};
use super::search::{empty_search, key_at, round, Key, MAX_GROUP_SIZE, MAX_TOPK};
use super::Proxy;
use crate::index::params::Metric;
use crate::proto::common::{KeyValuePair, Status};
use crate::proto::milvus as pb;
use crate::proto::schema::{i_ds, FieldData, IDs, LongArray, SearchResultData, StringArray};
use crate::schema::{group_key, GroupKey};
use crate::status::{code, error};

/// Milvus's bound on the RRF constant.
const MAX_RRF_K: f64 = 16384.0;
/// Milvus's bound on the searches of one hybrid search.
const MAX_REQUESTS: usize = 1024;

/// How the searches' hits are fused.
#[derive(Debug, Clone, PartialEq)]
enum Ranker {
    Rrf { k: f32 },
    Weighted { weights: Vec<f32>, norm: bool },
}

/// How a group's score comes from its keys' fused scores (`rank_group_scorer`).
#[derive(Debug, Clone, Copy, PartialEq)]
enum GroupScore {
    Max,
    Sum,
    Avg,
}

/// Grouping of the fused hits.
#[derive(Debug, Clone, PartialEq)]
struct Grouping {
    field: String,
    size: usize,
    score: GroupScore,
}

/// The rank parameters.
#[derive(Debug, Clone, PartialEq)]
struct Rank {
    ranker: Ranker,
    limit: i64,
    offset: i64,
    round_decimal: i64,
    group: Option<Grouping>,
}

fn unexpected(why: impl Into<String>) -> Status {
    error(code::UNEXPECTED, why)
}

/// A rank parameter's value (a JSON string's quotes removed).
fn rank_param(pairs: &[KeyValuePair], key: &str) -> Option<String> {
    pairs
        .iter()
        .find(|p| p.key == key)
        .map(|p| p.value.trim().trim_matches('"').to_string())
}

/// The answer's window: `limit`, `offset` and `round_decimal` of the rank parameters
/// (Milvus checks it before anything else of a hybrid search).
fn parse_window(pairs: &[KeyValuePair]) -> Result<(i64, i64, i64), Status> {
    let get = |k: &str| rank_param(pairs, k);
    let int = |k: &str, default: i64| -> Result<i64, Status> {
        match get(k) {
            None => Ok(default),
            Some(v) => v
                .parse::<i64>()
                .map_err(|_| invalid(format!("{k} [{v}] is invalid, it should be an integer"))),
        }
    };
    let limit = int("limit", 10)?;
    let offset = int("offset", 0)?;
    let round_decimal = int("round_decimal", -1)?;
    if limit + offset < 1 || limit + offset > MAX_TOPK || limit < 1 || offset < 0 {
        return Err(unexpected(format!(
            "invalid max query result window, (offset+limit) should be in range [1, {MAX_TOPK}], but got {}",
            limit + offset
        )));
    }
    if !(-1..=6).contains(&round_decimal) {
        return Err(unexpected(format!(
            "round_decimal [{round_decimal}] is invalid, should be -1 or an integer in range [0, 6]"
        )));
    }
    Ok((limit, offset, round_decimal))
}

/// The grouping of the rank parameters, if any.
fn parse_group(pairs: &[KeyValuePair]) -> Result<Option<Grouping>, Status> {
    let get = |k: &str| rank_param(pairs, k);
    let Some(field) = get("group_by_field").filter(|v| !v.is_empty()) else {
        return Ok(None);
    };
    let size = match get("group_size") {
        None => 1,
        Some(v) => match v.parse::<i64>() {
            Ok(n) if (1..=MAX_GROUP_SIZE).contains(&n) => n as usize,
            _ => {
                return Err(invalid(format!(
                    "group_size [{v}] is invalid, it should be an integer in range [1, {MAX_GROUP_SIZE}]"
                )))
            }
        },
    };
    let score = match get("rank_group_scorer").as_deref() {
        None | Some("max") => GroupScore::Max,
        Some("sum") => GroupScore::Sum,
        Some("avg") => GroupScore::Avg,
        Some(other) => {
            return Err(invalid(format!(
                "input group scorer type: {other} is not supported!"
            )))
        }
    };
    Ok(Some(Grouping { field, size, score }))
}

fn parse_rank(pairs: &[KeyValuePair], requests: usize) -> Result<Rank, Status> {
    let (limit, offset, round_decimal) = parse_window(pairs)?;
    let group = parse_group(pairs)?;
    let get = |k: &str| rank_param(pairs, k);
    let ranker = match get("strategy") {
        None => Ranker::Rrf { k: 60.0 },
        Some(strategy) => {
            let params: serde_json::Value = match get_raw(pairs, "params") {
                None => return Err(unexpected("params not found in rank_params")),
                Some(p) => serde_json::from_str(&p)
                    .map_err(|e| unexpected(format!("rank params are not JSON: {e}")))?,
            };
            match strategy.as_str() {
                "rrf" => {
                    let k = params
                        .get("k")
                        .ok_or_else(|| unexpected("k not found in rank_params"))?
                        .as_f64()
                        .ok_or_else(|| unexpected("The type of rank param k should be float"))?;
                    if k <= 0.0 || k >= MAX_RRF_K {
                        return Err(unexpected(format!(
                            "The rank params k should be in range (0, {MAX_RRF_K})"
                        )));
                    }
                    Ranker::Rrf { k: k as f32 }
                }
                "weighted" => {
                    let list = params
                        .get("weights")
                        .ok_or_else(|| unexpected("weights not found in rank_params"))?
                        .as_array()
                        .ok_or_else(|| unexpected("The weights param should be an array"))?;
                    let mut weights = Vec::with_capacity(list.len());
                    for w in list {
                        let w = w.as_f64().ok_or_else(|| {
                            unexpected("The type of rank param weight should be float")
                        })?;
                        if !(0.0..=1.0).contains(&w) {
                            return Err(unexpected("rank param weight should be in range [0, 1]"));
                        }
                        weights.push(w as f32);
                    }
                    if weights.len() != requests {
                        return Err(invalid(format!(
                            "the length of weights param mismatch with ann search requests: invalid parameter[expected={requests}][actual={}]",
                            weights.len()
                        )));
                    }
                    let norm = match params.get("norm_score") {
                        None => true,
                        Some(v) => v.as_bool().ok_or_else(|| {
                            unexpected("The type of rank param norm_score should be bool")
                        })?,
                    };
                    Ranker::Weighted { weights, norm }
                }
                other => return Err(unexpected(format!("unsupported rank type {other}"))),
            }
        }
    };
    Ok(Rank {
        ranker,
        limit,
        offset,
        round_decimal,
        group,
    })
}

/// A fused key: its score and where its row is (part, flat index).
type Fused = HashMap<Key, (f32, usize, usize)>;

fn key_order(a: &Key, b: &Key) -> std::cmp::Ordering {
    match (a, b) {
        (Key::Int(x), Key::Int(y)) => x.cmp(y),
        (Key::Str(x), Key::Str(y)) => x.cmp(y),
        (Key::Int(_), Key::Str(_)) => std::cmp::Ordering::Less,
        (Key::Str(_), Key::Int(_)) => std::cmp::Ordering::Greater,
    }
}

/// The keys of the groups kept, group after group (see the module's docs).
fn pick_groups<'a>(
    fused: &Fused,
    keys: &'a [Key],
    parts: &[Part],
    rank: &Rank,
    g: &Grouping,
) -> Vec<&'a Key> {
    let mut sorted: Vec<&Key> = keys.iter().collect();
    sorted.sort_by(|a, b| {
        fused[*b]
            .0
            .partial_cmp(&fused[*a].0)
            .unwrap_or(std::cmp::Ordering::Equal)
            .then_with(|| key_order(a, b))
    });
    struct Group<'k> {
        keys: Vec<&'k Key>,
        max: f32,
        sum: f32,
    }
    let mut groups: Vec<Group<'a>> = Vec::new();
    let mut at: HashMap<GroupKey, usize> = HashMap::new();
    for key in sorted {
        let (score, pi, i) = fused[key];
        let value = parts[pi]
            .data
            .group_by_field_value
            .as_ref()
            .map_or(GroupKey::Null, |c| group_key(c, i));
        let gi = *at.entry(value).or_insert_with(|| {
            groups.push(Group {
                keys: Vec::new(),
                // Go's zero value: a group of negative scores only scores 0.
                max: 0.0,
                sum: 0.0,
            });
            groups.len() - 1
        });
        let group = &mut groups[gi];
        if group.keys.len() < g.size {
            group.keys.push(key);
            group.max = group.max.max(score);
            group.sum += score;
        }
    }
    let final_score = |x: &Group<'_>| match g.score {
        GroupScore::Max => x.max,
        GroupScore::Sum => x.sum,
        GroupScore::Avg => x.sum / x.keys.len().max(1) as f32,
    };
    groups.sort_by(|a, b| {
        final_score(b)
            .partial_cmp(&final_score(a))
            .unwrap_or(std::cmp::Ordering::Equal)
            .then(b.keys.len().cmp(&a.keys.len()))
            .then_with(|| key_order(a.keys[0], b.keys[0]))
    });
    groups
        .into_iter()
        .skip(rank.offset as usize)
        .take(rank.limit as usize)
        .flat_map(|x| x.keys)
        .collect()
}

/// A rank parameter's value as sent (JSON objects keep their quotes).
fn get_raw(pairs: &[KeyValuePair], key: &str) -> Option<String> {
    pairs.iter().find(|p| p.key == key).map(|p| p.value.clone())
}

/// `s` of `metric` mapped to [0, 1], higher better (Milvus's weighted ranker).
fn normalized(metric: Metric, s: f32) -> f32 {
    let atan = |x: f32| f64::from(x).atan() as f32;
    match metric {
        Metric::Cosine => (1.0 + s) * 0.5,
        Metric::Ip => 0.5 + atan(s) / std::f32::consts::PI,
        Metric::Bm25 => 2.0 * atan(s) / std::f32::consts::PI,
        // L2 and the binary metrics (Milvus's default case).
        Metric::L2
        | Metric::Hamming
        | Metric::Jaccard
        | Metric::Substructure
        | Metric::Superstructure => 1.0 - 2.0 * atan(s) / std::f32::consts::PI,
    }
}

/// One search's answer: its hits and the metric of their scores.
struct Part {
    data: SearchResultData,
    metric: Metric,
    /// Where query `q`'s hits start.
    starts: Vec<usize>,
}

impl Part {
    fn new(data: SearchResultData, metric: Metric) -> Part {
        let mut acc = 0usize;
        let starts = data
            .topks
            .iter()
            .map(|t| {
                let s = acc;
                acc += (*t).max(0) as usize;
                s
            })
            .collect();
        Part {
            data,
            metric,
            starts,
        }
    }

    /// Query `q`'s hits as flat indexes, best first.
    fn hits(&self, q: usize) -> std::ops::Range<usize> {
        let start = self.starts.get(q).copied().unwrap_or(0);
        let n = self.data.topks.get(q).copied().unwrap_or(0).max(0) as usize;
        start..start + n
    }
}

impl Proxy {
    /// `HybridSearch`.
    pub async fn hybrid_search(&self, db: &str, req: pb::HybridSearchRequest) -> pb::SearchResults {
        let name = req.collection_name.clone();
        match self.try_hybrid_search(db, req).await {
            Ok(r) => r,
            Err(s) => pb::SearchResults {
                status: Some(s),
                collection_name: name,
                ..Default::default()
            },
        }
    }

    async fn try_hybrid_search(
        &self,
        db: &str,
        req: pb::HybridSearchRequest,
    ) -> Result<pb::SearchResults, Status> {
        let db = if req.db_name.is_empty() {
            db
        } else {
            &req.db_name
        };
        let loaded = self.loaded(db, &req.collection_name).await?;
        let schema = loaded.schema().clone();
        if req.requests.is_empty() {
            return Err(invalid("no ann search requests in the hybrid search"));
        }
        if req.requests.len() > MAX_REQUESTS {
            return Err(invalid(format!(
                "maximum of ann search requests is {MAX_REQUESTS}"
            )));
        }
        // Milvus's order of checks: the answer's window, the partitions, each search,
        // then the ranker.
        parse_window(&req.rank_params)?;
        parse_group(&req.rank_params)?;
        loaded.partitions(&req.partition_names)?;
        let out = output_fields(&schema, &req.output_fields, false)?;
        let searches = req.requests.iter().map(|sub| {
            let mut s = sub.clone();
            s.db_name = db.to_string();
            s.collection_name = req.collection_name.clone();
            s.partition_names = req.partition_names.clone();
            s.output_fields = req.output_fields.clone();
            s.guarantee_timestamp = req.guarantee_timestamp;
            s.consistency_level = req.consistency_level;
            s.use_default_consistency = req.use_default_consistency;
            // Each search keeps its own limit; offset and rounding apply after fusion.
            s.search_params
                .retain(|p| p.key != "offset" && p.key != "round_decimal");
            // Grouped: every search groups by the field (its limit counts groups).
            for key in ["group_by_field", "group_size", "strict_group_size"] {
                if let Some(v) = rank_param(&req.rank_params, key) {
                    s.search_params.retain(|p| p.key != key);
                    s.search_params.push(KeyValuePair {
                        key: key.into(),
                        value: v,
                    });
                }
            }
            async move {
                let (r, metric) = self.search_scored(db, s).await?;
                match r.status {
                    Some(st) if st.code != 0 || st.error_code != 0 => Err(st),
                    _ => Ok(Part::new(r.results.unwrap_or_default(), metric)),
                }
            }
        });
        let parts = futures::future::try_join_all(searches).await?;
        let rank = parse_rank(&req.rank_params, req.requests.len())?;
        let nq = parts[0].data.num_queries;
        if parts.iter().any(|p| p.data.num_queries != nq) {
            return Err(invalid(
                "every ann search request of a hybrid search must have the same number of queries",
            ));
        }
        let pk = schema
            .fields
            .iter()
            .find(|f| f.is_primary_key)
            .map(|f| f.name.clone())
            .unwrap_or_default();
        let is_str = schema
            .fields
            .iter()
            .any(|f| f.is_primary_key && f.data_type() == crate::proto::schema::DataType::VarChar);
        let mut columns = output_columns(&schema, &out.ids);
        let (mut ints, mut strs, mut scores, mut topks) = (vec![], vec![], vec![], vec![]);
        let mut group_values: Option<FieldData> = None;
        for q in 0..nq.max(0) as usize {
            // key -> (fused score, where its row is: part, flat index)
            let mut fused: Fused = HashMap::new();
            let mut order: Vec<Key> = Vec::new();
            for (pi, part) in parts.iter().enumerate() {
                for (rank_in_part, i) in part.hits(q).enumerate() {
                    let Some(key) = part.data.ids.as_ref().and_then(|ids| key_at(ids, i)) else {
                        continue;
                    };
                    let add = match &rank.ranker {
                        Ranker::Rrf { k } => 1.0 / (k + (rank_in_part + 1) as f32),
                        Ranker::Weighted { weights, norm } => {
                            let s = part.data.scores.get(i).copied().unwrap_or(0.0);
                            weights[pi] * if *norm { normalized(part.metric, s) } else { s }
                        }
                    };
                    fused
                        .entry(key.clone())
                        .and_modify(|e| e.0 += add)
                        .or_insert_with(|| {
                            order.push(key);
                            (add, pi, i)
                        });
                }
            }
            let picked: Vec<&Key> = match &rank.group {
                Some(g) => pick_groups(&fused, &order, &parts, &rank, g),
                None => {
                    // Higher first; equal scores in the order the keys were first found.
                    let mut ranked: Vec<(usize, &Key)> = order.iter().enumerate().collect();
                    ranked.sort_by(|a, b| {
                        fused[b.1]
                            .0
                            .partial_cmp(&fused[a.1].0)
                            .unwrap_or(std::cmp::Ordering::Equal)
                            .then(a.0.cmp(&b.0))
                    });
                    ranked
                        .into_iter()
                        .skip(rank.offset as usize)
                        .take(rank.limit as usize)
                        .map(|(_, k)| k)
                        .collect()
                }
            };
            for key in &picked {
                let (score, pi, i) = fused[*key];
                match key {
                    Key::Int(v) => ints.push(*v),
                    Key::Str(v) => strs.push(v.clone()),
                }
                scores.push(round(score, rank.round_decimal));
                append_row(&mut columns, &parts[pi].data.fields_data, i);
                if let Some(c) = &parts[pi].data.group_by_field_value {
                    let value = crate::schema::take_row(c, i);
                    match &mut group_values {
                        None => group_values = Some(value),
                        Some(dst) => crate::schema::extend_field(dst, value),
                    }
                }
            }
            topks.push(picked.len() as i64);
        }
        if topks.iter().all(|t| *t == 0) {
            return Ok(empty_search(nq, rank.limit, &pk));
        }
        let ids = IDs {
            id_field: Some(if is_str {
                i_ds::IdField::StrId(StringArray { data: strs })
            } else {
                i_ds::IdField::IntId(LongArray { data: ints })
            }),
        };
        Ok(pb::SearchResults {
            status: Some(Status::default()),
            results: Some(SearchResultData {
                num_queries: nq,
                top_k: rank.limit,
                fields_data: if out.ids.is_empty() { vec![] } else { columns },
                scores,
                ids: Some(ids),
                topks,
                output_fields: out.names.clone(),
                primary_field_name: pk,
                group_by_field_value: group_values,
                ..Default::default()
            }),
            collection_name: req.collection_name.clone(),
            session_ts: 0,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::sample::kv;

    #[test]
    fn rank_parameters_are_read_and_checked_as_milvus_does() {
        let r = parse_rank(&[kv("limit", "5")], 2).unwrap();
        assert_eq!(r.ranker, Ranker::Rrf { k: 60.0 });
        assert_eq!((r.limit, r.offset, r.round_decimal), (5, 0, -1));
        let r = parse_rank(
            &[
                kv("strategy", "weighted"),
                kv("params", r#"{"weights": [0.2, 0.8]}"#),
                kv("limit", "10"),
                kv("offset", "3"),
            ],
            2,
        )
        .unwrap();
        assert_eq!(
            r.ranker,
            Ranker::Weighted {
                weights: vec![0.2, 0.8],
                norm: true
            }
        );
        let e = parse_rank(
            &[
                kv("strategy", "weighted"),
                kv("params", r#"{"weights": [0.2]}"#),
            ],
            2,
        )
        .unwrap_err();
        assert_eq!(e.code, 1100);
        assert!(e.reason.contains(
            "the length of weights param mismatch with ann search requests: invalid parameter[expected=2][actual=1]"
        ), "{}", e.reason);
        let e = parse_rank(&[kv("strategy", "rrf"), kv("params", r#"{"k": 0}"#)], 1).unwrap_err();
        assert!(
            e.reason.contains("should be in range (0, 16384)"),
            "{}",
            e.reason
        );
        let e = parse_rank(&[kv("limit", "16385")], 1).unwrap_err();
        assert!(
            e.reason
                .contains("(offset+limit) should be in range [1, 16384], but got 16385"),
            "{}",
            e.reason
        );
        let e = parse_rank(&[kv("strategy", "max"), kv("params", "{}")], 1).unwrap_err();
        assert!(
            e.reason.contains("unsupported rank type max"),
            "{}",
            e.reason
        );
    }

    #[test]
    fn weighted_scores_are_normalized_by_metric() {
        assert!((normalized(Metric::Cosine, 1.0) - 1.0).abs() < 1e-6);
        assert!((normalized(Metric::Cosine, -1.0)).abs() < 1e-6);
        assert!((normalized(Metric::L2, 0.0) - 1.0).abs() < 1e-6);
        assert!(normalized(Metric::L2, 1.0) > normalized(Metric::L2, 2.0));
        assert!((normalized(Metric::Ip, 0.0) - 0.5).abs() < 1e-6);
    }
}
