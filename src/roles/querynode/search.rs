//! Searches and queries over one shard's rows: sealed segments through their vector
//! index (exactly when they have none yet), growing rows exactly; rows deleted after
//! they were written and rows the filter rejects are skipped; hits are merged best
//! first with each key once.

use std::cmp::Ordering;
use std::collections::{HashMap, HashSet};

use super::chunk::{Chunk, Deletes, Pk, SparseColumn};
use super::shard::ShardData;
use crate::expr::Filter;
use crate::index::params::{Metric, Range, SearchParams};
use crate::index::sparse::{prune_query, search_rows, Scoring, SparseVec};
use crate::index::{flat, Allowed};
use crate::proto::schema::{
    field_data, i_ds, vector_field, FieldData, FloatArray, IDs, LongArray, StringArray, VectorField,
};
use crate::schema::{group_key, GroupKey};

/// One shard search.
pub struct SearchInput<'a> {
    /// The vector field.
    pub field_id: i64,
    /// `nq` query vectors of `dim`.
    pub vectors: &'a [f32],
    /// Their dim.
    pub dim: usize,
    /// Hits per query.
    pub topk: usize,
    /// The metric.
    pub metric: Metric,
    /// `ef` / `nprobe`.
    pub params: SearchParams,
    /// The filter, if any.
    pub filter: Option<&'a Filter>,
    /// Partitions to read (empty: all).
    pub partitions: &'a [i64],
    /// Output columns (field IDs).
    pub output: &'a [i64],
    /// Rows written before this hybrid timestamp have expired (0: none).
    pub expire_before: u64,
    /// A range search's bounds.
    pub range: Option<Range>,
    /// A grouping search's field and group size.
    pub group: Option<Grouping>,
    /// Sparse queries (then `vectors` is empty).
    pub sparse: Option<&'a SparseQueries>,
}

/// The queries of a sparse vector search.
#[derive(Debug, Clone, Default)]
pub struct SparseQueries {
    /// One per query: (dimension, value), dimensions increasing. For BM25 the values
    /// are the terms' counts in the query text.
    pub queries: Vec<SparseVec>,
    /// BM25's `(k1, b)`; None for IP.
    pub bm25: Option<(f32, f32)>,
}

/// The queries as scored on this shard, and how: for BM25 each term's count times its
/// IDF over the shard's rows, `ln(1 + (N - df + 0.5) / (df + 0.5))`, and the rows'
/// average length (Milvus's per-shard statistics: every row of the shard, sealed and
/// growing, in every partition).
fn weighted(d: &ShardData, field_id: i64, sq: &SparseQueries) -> (Vec<SparseVec>, Scoring) {
    let Some((k1, b)) = sq.bm25 else {
        return (sq.queries.clone(), Scoring::Ip);
    };
    let cols: Vec<&SparseColumn> = sources(d, &[])
        .into_iter()
        .filter_map(|at| chunk(d, at).sparse(field_id))
        .collect();
    let n: f64 = cols.iter().map(|c| c.rows.len() as f64).sum();
    let total: f64 = cols.iter().map(|c| c.stats().total_len).sum();
    let avgdl = if n > 0.0 { (total / n) as f32 } else { 1.0 };
    let queries = sq
        .queries
        .iter()
        .map(|q| {
            let values = q
                .dims
                .iter()
                .zip(&q.values)
                .map(|(t, tf)| {
                    let df: f64 = cols
                        .iter()
                        .map(|c| f64::from(c.stats().df.get(t).copied().unwrap_or(0)))
                        .sum();
                    let idf = (1.0 + (n - df + 0.5) / (df + 0.5)).ln();
                    tf * idf as f32
                })
                .collect();
            SparseVec {
                dims: q.dims.clone(),
                values,
            }
        })
        .collect();
    (queries, Scoring::Bm25 { k1, b, avgdl })
}

/// Hits of a shard search or rows of a query.
#[derive(Default)]
pub struct Found {
    /// Hits per query (search).
    pub topks: Vec<i64>,
    /// Keys, in hit order.
    pub ids: Option<IDs>,
    /// Scores (search).
    pub scores: Vec<f32>,
    /// Output columns.
    pub fields: Vec<FieldData>,
    /// Rows matched (count(*)).
    pub count: i64,
    /// Rows considered (the request's cost).
    pub scanned: i64,
}

/// Where a row is.
#[derive(Clone, Copy, PartialEq)]
enum At {
    Sealed(i64),
    Growing(usize),
}

struct Hit {
    score: f32,
    at: At,
    row: usize,
}

fn chunk(d: &ShardData, at: At) -> &Chunk {
    match at {
        At::Sealed(id) => &d.sealed[&id].chunk,
        At::Growing(i) => &d.growing[i],
    }
}

/// The rows of a chunk a request reads.
enum Picked {
    /// A flag per row.
    Mask(Vec<bool>),
    /// The rows, ascending.
    Rows(Vec<u32>),
}

impl Picked {
    /// As a flag per row of a chunk of `n` rows.
    fn into_mask(self, n: usize) -> Vec<bool> {
        match self {
            Picked::Mask(m) => m,
            Picked::Rows(rows) => {
                let mut m = vec![false; n];
                rows.iter().for_each(|r| m[*r as usize] = true);
                m
            }
        }
    }
}

/// The rows of `c` that are visible (not hidden by a delete or a newer version, not
/// expired) and pass `filter`, with their number; None when all rows are. A chunk whose
/// bounds rule the filter out gives no rows without being read; rows found by key or by
/// a scalar index come as a list, each checked for visibility (the filter reads no other
/// row); otherwise the filter runs a column at a time; the rows deletes hide are cached
/// per chunk until the deletes change.
fn mask(
    c: &Chunk,
    deletes: &Deletes,
    filter: Option<&Filter>,
    expire_before: u64,
) -> Option<(Picked, usize)> {
    if filter.is_some_and(|f| !f.may_match(&c.bounds)) {
        return Some((Picked::Rows(Vec::new()), 0));
    }
    let none_expired = expire_before == 0 || c.timestamps.iter().all(|t| *t >= expire_before);
    let hidden = (!deletes.is_empty()).then(|| c.hidden(deletes));
    let none_hidden = hidden.as_ref().is_none_or(|h| h.is_empty());
    if filter.is_none() && none_hidden && none_expired {
        return None;
    }
    let visible = |r: u32| {
        hidden.as_ref().is_none_or(|h| h.binary_search(&r).is_err())
            && (none_expired || c.timestamps[r as usize] >= expire_before)
    };
    // `pk in [...]` / `pk == v`: found by key; an indexed field: by its index.
    let listed = filter.and_then(|f| {
        match f
            .primary_keys(c.pk_field())
            .and_then(|keys| c.rows_of_keys(&keys))
        {
            Some(mut rows) => {
                rows.sort_unstable();
                rows.dedup();
                Some(rows)
            }
            None => f.select_rows(c, c.rows),
        }
    });
    if let Some(mut rows) = listed {
        rows.retain(|r| visible(*r));
        let n = rows.len();
        return Some((Picked::Rows(rows), n));
    }
    let mut m = match filter {
        Some(f) => f.select(c, c.rows),
        None => vec![true; c.rows],
    };
    for row in hidden.iter().flat_map(|h| h.iter()) {
        m[*row as usize] = false;
    }
    if !none_expired {
        m.iter_mut()
            .zip(&c.timestamps)
            .for_each(|(b, t)| *b &= *t >= expire_before);
    }
    let n = m.iter().filter(|b| **b).count();
    Some((Picked::Mask(m), n))
}

fn wanted(partitions: &[i64], c: &Chunk) -> bool {
    partitions.is_empty() || partitions.contains(&c.partition)
}

/// The chunks of `partitions` (all when empty): sealed segments, then growing rows.
fn sources(d: &ShardData, partitions: &[i64]) -> Vec<At> {
    let sealed = d
        .sealed
        .iter()
        .filter(|(_, s)| wanted(partitions, &s.chunk))
        .map(|(id, _)| At::Sealed(*id));
    let growing = d
        .growing
        .iter()
        .enumerate()
        .filter(|(_, c)| wanted(partitions, c))
        .map(|(i, _)| At::Growing(i));
    sealed.chain(growing).collect()
}

fn better(metric: Metric, a: f32, b: f32) -> Ordering {
    if metric.higher_is_better() {
        b.partial_cmp(&a).unwrap_or(Ordering::Equal)
    } else {
        a.partial_cmp(&b).unwrap_or(Ordering::Equal)
    }
}

/// A grouping search: `topk` groups of up to `size` hits each, by `field_id`'s value.
#[derive(Debug, Clone, Copy)]
pub struct Grouping {
    /// The field grouped by (a Bool, integer or VarChar field).
    pub field_id: i64,
    /// Hits per group at most.
    pub size: usize,
}

/// Searches the shard's rows. A grouping search widens the per-segment searches
/// (doubling their `k`) until `topk` groups are found and full, or no segment has more
/// to give: groups are filled as far as the data allows (Milvus's `strict_group_size`,
/// which this shard-level search always honours).
pub fn search(d: &ShardData, input: &SearchInput<'_>) -> Result<Found, String> {
    let Some(g) = input.group else {
        let (hits, scanned, _) = candidates(d, input, input.topk)?;
        let picked = hits
            .into_iter()
            .map(|h| best_once(d, input.metric, h, input.topk))
            .collect();
        return Ok(finish(d, input, picked, scanned));
    };
    let rows: usize = d.sealed.values().map(|s| s.chunk.rows).sum::<usize>()
        + d.growing.iter().map(|c| c.rows).sum::<usize>();
    let mut k = input.topk.saturating_mul(g.size).clamp(1, rows.max(1));
    loop {
        let (hits, scanned, truncated) = candidates(d, input, k)?;
        let mut satisfied = true;
        let picked: Vec<Vec<Hit>> = hits
            .into_iter()
            .map(|h| {
                let once = best_once(d, input.metric, h, usize::MAX);
                let (p, full) = groups(d, g, input.topk, once);
                satisfied &= full;
                p
            })
            .collect();
        if satisfied || !truncated || k >= rows {
            return Ok(finish(d, input, picked, scanned));
        }
        k = k.saturating_mul(2).min(rows);
    }
}

/// Every segment's best `k` hits per query (unordered across segments), the rows
/// considered, and whether any segment's search was cut at `k`.
fn candidates(
    d: &ShardData,
    input: &SearchInput<'_>,
    k: usize,
) -> Result<(Vec<Vec<Hit>>, usize, bool), String> {
    if let Some(sq) = input.sparse {
        return sparse_candidates(d, input, sq, k);
    }
    let nq = input.vectors.len() / input.dim.max(1);
    let mut per_query: Vec<Vec<Hit>> = (0..nq).map(|_| Vec::new()).collect();
    let mut queries: Vec<Vec<f32>> = input
        .vectors
        .chunks_exact(input.dim.max(1))
        .map(<[f32]>::to_vec)
        .collect();
    let cosine = input.metric == Metric::Cosine;
    let mut scanned = 0;
    let mut truncated = false;
    let sources = sources(d, input.partitions);
    for at in sources {
        let c = chunk(d, at);
        let index = match at {
            At::Sealed(id) => d.sealed[&id].indexes.get(&input.field_id),
            At::Growing(_) => None,
        };
        let m = mask(c, &d.deletes, input.filter, input.expire_before);
        scanned += m.as_ref().map_or(c.rows, |(_, n)| *n);
        if m.as_ref().is_some_and(|(_, n)| *n == 0) {
            continue;
        }
        // A vector index takes a short list of rows as it is (scored alone); a longer
        // list, and a scan of the chunk's vectors, test a flag per row (made once for
        // every query).
        let short = |rows: &[u32]| index.is_some_and(|ix| rows.len() * 20 < ix.rows());
        let (listed, bits) = match m {
            Some((Picked::Rows(rows), _)) if short(&rows) => (Some(rows), None),
            Some((picked, n)) => (None, Some((picked.into_mask(c.rows), n))),
            None => (None, None),
        };
        let accept_fn = bits
            .as_ref()
            .map(|(bits, _)| move |r: u32| bits[r as usize]);
        let allowed = match (&listed, &accept_fn, &bits) {
            (Some(rows), ..) => Some(Allowed::Rows(rows)),
            (None, Some(f), Some((_, n))) => Some(Allowed::Accept(f as &flat::Accept<'_>, *n)),
            _ => None,
        };
        for (qi, q) in queries.iter_mut().enumerate() {
            let found = match index {
                Some(ix) => {
                    if ix.spec().metric != input.metric {
                        return Err(format!(
                            "metric type not match: invalid parameter[expected={}][actual={}]",
                            ix.spec().metric.name(),
                            input.metric.name()
                        ));
                    }
                    ix.search_in(q, k, &input.params, allowed, input.range.as_ref())
                        .map_err(|e| e.to_string())?
                }
                None => {
                    let Some((vectors, dim)) = c.vectors(input.field_id) else {
                        continue;
                    };
                    if dim != input.dim {
                        return Err(format!(
                            "the vector dim is {dim}, the query's {}",
                            input.dim
                        ));
                    }
                    if cosine {
                        flat::normalize(q, dim);
                    }
                    flat::search_raw(
                        input.metric,
                        vectors,
                        dim,
                        q,
                        k,
                        accept_fn.as_ref().map(|f| f as &flat::Accept<'_>),
                        input.range.as_ref(),
                    )
                }
            };
            truncated |= found.len() >= k;
            per_query[qi].extend(found.into_iter().map(|(row, score)| Hit {
                score,
                at,
                row: row as usize,
            }));
        }
    }
    Ok((per_query, scanned, truncated))
}

/// [`candidates`] of a sparse search: sealed segments through their index, other rows
/// scored exactly.
fn sparse_candidates(
    d: &ShardData,
    input: &SearchInput<'_>,
    sq: &SparseQueries,
    k: usize,
) -> Result<(Vec<Vec<Hit>>, usize, bool), String> {
    let (queries, scoring) = weighted(d, input.field_id, sq);
    let drop = input.params.drop_ratio_search.map_or(0.0, |r| r.0);
    let pruned: Vec<Vec<(u32, f32)>> = queries.iter().map(|q| prune_query(q, drop)).collect();
    let mut per_query: Vec<Vec<Hit>> = (0..queries.len()).map(|_| Vec::new()).collect();
    let (mut scanned, mut truncated) = (0, false);
    for at in sources(d, input.partitions) {
        let c = chunk(d, at);
        let m = mask(c, &d.deletes, input.filter, input.expire_before);
        scanned += m.as_ref().map_or(c.rows, |(_, n)| *n);
        if m.as_ref().is_some_and(|(_, n)| *n == 0) {
            continue;
        }
        let bits = m.map(|(picked, _)| picked.into_mask(c.rows));
        let accept_fn = bits.as_ref().map(|bits| move |r: u32| bits[r as usize]);
        let accept = accept_fn.as_ref().map(|f| f as &flat::Accept<'_>);
        let index = match at {
            At::Sealed(id) => d.sealed[&id].indexes.get(&input.field_id),
            At::Growing(_) => None,
        };
        for (qi, q) in queries.iter().enumerate() {
            let found = match index {
                Some(ix) => {
                    if ix.spec().metric != input.metric {
                        return Err(format!(
                            "metric type not match: invalid parameter[expected={}][actual={}]",
                            ix.spec().metric.name(),
                            input.metric.name()
                        ));
                    }
                    ix.search_sparse(q, scoring, k, &input.params, accept, input.range.as_ref())
                        .map_err(|e| e.to_string())?
                }
                None => {
                    let Some(col) = c.sparse(input.field_id) else {
                        continue;
                    };
                    search_rows(
                        &col.rows,
                        &pruned[qi],
                        scoring,
                        k,
                        accept,
                        input.range.as_ref(),
                    )
                }
            };
            truncated |= found.len() >= k;
            per_query[qi].extend(found.into_iter().map(|(row, score)| Hit {
                score,
                at,
                row: row as usize,
            }));
        }
    }
    Ok((per_query, scanned, truncated))
}

/// `hits` best first, each key once, at most `n`.
fn best_once(d: &ShardData, metric: Metric, mut hits: Vec<Hit>, n: usize) -> Vec<Hit> {
    hits.sort_by(|a, b| better(metric, a.score, b.score));
    let mut seen: HashSet<Pk<'_>> = HashSet::new();
    let mut out = Vec::new();
    for h in hits {
        if out.len() == n {
            break;
        }
        if seen.insert(chunk(d, h.at).pks.get(h.row)) {
            out.push(h);
        }
    }
    out
}

/// The first `topk` groups of `hits` (best first), each of up to `g.size` hits, in the
/// order of each group's best hit; and whether that is all a search could want (`topk`
/// groups, each full).
fn groups(d: &ShardData, g: Grouping, topk: usize, hits: Vec<Hit>) -> (Vec<Hit>, bool) {
    let mut order: Vec<Vec<Hit>> = Vec::new();
    let mut at: HashMap<GroupKey, usize> = HashMap::new();
    for h in hits {
        let c = chunk(d, h.at);
        let key = crate::expr::Columns::column(c, g.field_id)
            .map_or(GroupKey::Null, |col| group_key(col, h.row));
        match at.get(&key) {
            Some(&i) if order[i].len() < g.size => order[i].push(h),
            Some(_) => {}
            None if order.len() < topk => {
                at.insert(key, order.len());
                order.push(vec![h]);
            }
            None => {}
        }
    }
    let full = order.len() >= topk && order.iter().all(|v| v.len() >= g.size);
    (order.into_iter().flatten().collect(), full)
}

/// The answer: per query its picked hits in order, their keys, scores and columns.
fn finish(d: &ShardData, input: &SearchInput<'_>, picked: Vec<Vec<Hit>>, scanned: usize) -> Found {
    let mut out = Found {
        scanned: scanned as i64,
        ..Default::default()
    };
    let mut hits_all: Vec<(At, usize)> = Vec::new();
    let mut keys = Keys::default();
    for hits in picked {
        out.topks.push(hits.len() as i64);
        for h in hits {
            keys.push(chunk(d, h.at).pks.get(h.row));
            out.scores.push(h.score);
            hits_all.push((h.at, h.row));
        }
    }
    out.ids = Some(keys.into_ids());
    out.fields = columns(d, &hits_all, input.output);
    out
}

/// Keys gathered in order.
#[derive(Default)]
struct Keys {
    ints: Vec<i64>,
    strs: Vec<String>,
    is_str: bool,
}

impl Keys {
    fn push(&mut self, pk: Pk<'_>) {
        match pk {
            Pk::Int(i) => self.ints.push(i),
            Pk::Str(s) => {
                self.is_str = true;
                self.strs.push(s.to_string());
            }
        }
    }

    fn into_ids(self) -> IDs {
        IDs {
            id_field: Some(if self.is_str {
                i_ds::IdField::StrId(StringArray { data: self.strs })
            } else {
                i_ds::IdField::IntId(LongArray { data: self.ints })
            }),
        }
    }
}

/// The output columns of `rows`, in that order: each run of rows from one chunk is
/// taken from its columns at once.
fn columns(d: &ShardData, rows: &[(At, usize)], output: &[i64]) -> Vec<FieldData> {
    let mut cols: Vec<FieldData> = Vec::with_capacity(output.len());
    for field in output {
        let mut col: Option<FieldData> = None;
        let mut add = |part: FieldData| match &mut col {
            None => col = Some(part),
            Some(dst) => crate::schema::extend_field(dst, part),
        };
        for run in rows.chunk_by(|a, b| a.0 == b.0) {
            let at = run[0].0;
            let c = chunk(d, at);
            let Some(src) = crate::expr::Columns::column(c, *field) else {
                continue;
            };
            let idx: Vec<usize> = run.iter().map(|(_, row)| *row).collect();
            if let Some(first) = from_index(d, at, *field, src, idx[0]) {
                add(first);
                for row in &idx[1..] {
                    add(from_index(d, at, *field, src, *row)
                        .unwrap_or_else(|| crate::schema::take_row(src, *row)));
                }
                continue;
            }
            add(crate::schema::take_rows(std::slice::from_ref(src), &idx)
                .pop()
                .expect("one column in, one out"));
        }
        if let Some(c) = col {
            cols.push(c);
        }
    }
    cols
}

/// Row `row` of a vector column whose vectors live in the segment's index only.
fn from_index(d: &ShardData, at: At, field: i64, src: &FieldData, row: usize) -> Option<FieldData> {
    let At::Sealed(id) = at else {
        return None;
    };
    let index = d.sealed[&id].indexes.get(&field)?;
    let Some(field_data::Field::Vectors(v)) = &src.field else {
        return None;
    };
    match &v.data {
        Some(vector_field::Data::FloatVector(f)) if f.data.is_empty() => {}
        _ => return None,
    }
    let data = index.raw_vector(row)?.to_vec();
    Some(FieldData {
        r#type: src.r#type,
        field_name: src.field_name.clone(),
        field_id: src.field_id,
        is_dynamic: src.is_dynamic,
        valid_data: src
            .valid_data
            .get(row)
            .map(|v| vec![*v])
            .unwrap_or_default(),
        field: Some(field_data::Field::Vectors(VectorField {
            dim: v.dim,
            data: Some(vector_field::Data::FloatVector(FloatArray { data })),
        })),
    })
}

/// One shard query.
pub struct QueryInput<'a> {
    /// The filter (None: every row).
    pub filter: Option<&'a Filter>,
    /// Partitions to read (empty: all).
    pub partitions: &'a [i64],
    /// Output columns (field IDs).
    pub output: &'a [i64],
    /// Rows wanted at most, smallest keys first (0: all).
    pub limit: usize,
    /// Only count.
    pub count_only: bool,
    /// Rows written before this hybrid timestamp have expired (0: none).
    pub expire_before: u64,
}

/// The rows of the shard that match, by key order. With a limit, chunks are read in
/// the order of their smallest key and reading stops at the first chunk whose smallest
/// key is past the `limit` smallest keys already found (no later chunk can hold a
/// smaller one): the answer is the same as reading every chunk.
pub fn query(d: &ShardData, input: &QueryInput<'_>) -> Found {
    let mut rows: Vec<(At, usize)> = Vec::new();
    let mut count = 0i64;
    let mut sources = sources(d, input.partitions);
    let limit = if input.count_only { 0 } else { input.limit };
    if limit > 0 {
        // Unknown smallest keys first (None orders before any key).
        sources.sort_by(|a, b| {
            let (a, b) = (chunk(d, *a).min_pk(), chunk(d, *b).min_pk());
            match (a, b) {
                (Some(a), Some(b)) => a.compare(b).unwrap_or(Ordering::Equal),
                _ => a.is_some().cmp(&b.is_some()),
            }
        });
    }
    let by_key = |a: &(At, usize), b: &(At, usize)| {
        chunk(d, a.0).pks.get(a.1).cmp(&chunk(d, b.0).pks.get(b.1))
    };
    let same_key = |a: &mut (At, usize), b: &mut (At, usize)| {
        chunk(d, a.0).pks.get(a.1) == chunk(d, b.0).pks.get(b.1)
    };
    let mut scanned = 0;
    for at in sources {
        let c = chunk(d, at);
        if limit > 0 && rows.len() >= limit {
            let (last_at, last_row) = rows[limit - 1];
            let last = chunk(d, last_at).pks.get(last_row).value();
            if c.min_pk().and_then(|m| m.compare(&last)) == Some(Ordering::Greater) {
                break;
            }
        }
        scanned += c.rows as i64;
        match mask(c, &d.deletes, input.filter, input.expire_before) {
            None => {
                count += c.rows as i64;
                if !input.count_only {
                    rows.extend((0..c.rows).map(|row| (at, row)));
                }
            }
            Some((picked, n)) => {
                count += n as i64;
                if !input.count_only && n > 0 {
                    match picked {
                        Picked::Rows(list) => {
                            rows.extend(list.into_iter().map(|row| (at, row as usize)))
                        }
                        Picked::Mask(bits) => rows.extend(
                            bits.iter()
                                .enumerate()
                                .filter(|(_, b)| **b)
                                .map(|(row, _)| (at, row)),
                        ),
                    }
                }
            }
        }
        if limit > 0 && rows.len() >= limit {
            rows.sort_by(by_key);
            rows.dedup_by(same_key);
            rows.truncate(limit);
        }
    }
    let mut out = Found {
        count,
        scanned,
        ..Default::default()
    };
    if input.count_only {
        return out;
    }
    rows.sort_by(by_key);
    rows.dedup_by(same_key);
    if limit > 0 {
        rows.truncate(limit);
    }
    let mut keys = Keys::default();
    for (at, row) in &rows {
        keys.push(chunk(d, *at).pks.get(*row));
    }
    out.ids = Some(keys.into_ids());
    out.fields = columns(d, &rows, input.output);
    out
}
