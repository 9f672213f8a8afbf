//! Sparse vectors (SPARSE_FLOAT_VECTOR): rows of (dimension, value) pairs, searched by
//! inner product (IP) or BM25 through an inverted index (SPARSE_INVERTED_INDEX,
//! SPARSE_WAND) or exactly (growing rows, segments without an index).
//!
//! Invariants:
//! - S1: a row is held with its dimensions strictly increasing (pymilvus sends them so;
//!   the proxy refuses other rows), so two rows meet by a merge and a row's bytes round
//!   trip unchanged.
//! - S2: only rows sharing a dimension with the query score (a row with none has no
//!   score and is no hit, as knowhere's inverted index answers); an index and the exact
//!   scan give the same scores for the same rows (both sum the same products in the
//!   row's dimension order... the index in the query's order: equal up to float
//!   rounding, which the tests allow for).
//! - S3: BM25 scores a row by its own length (the sum of its values, its term count) and
//!   the shard's average length given with the query; the query's values are the
//!   terms' IDF weights. A row's length is computed from the row as stored, never from
//!   an index that dropped small values.
//!
//! Index file body (little-endian, after [`super::VectorIndex`]'s header): the
//! dimensions u32, then per dimension its id u32, its count u32, its rows u32... and its
//! values f32..., then the row lengths (rows x f32).

use std::collections::HashMap;

use super::flat::{Accept, TopK};
use super::params::{Metric, Range};
use crate::proto::schema::{
    field_data, vector_field, FieldData, FieldSchema, SparseFloatArray, VectorField,
};

/// A row's dimensions and values, dimensions strictly increasing.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SparseVec {
    /// Dimensions (term hashes for BM25).
    pub dims: Vec<u32>,
    /// Their values.
    pub values: Vec<f32>,
}

/// The row in `bytes` ((index u32, value f32) pairs, little-endian).
pub fn parse_row(bytes: &[u8]) -> Result<SparseVec, String> {
    if !bytes.len().is_multiple_of(8) {
        return Err(format!(
            "invalid data length in sparse float vector: {}",
            bytes.len()
        ));
    }
    let mut v = SparseVec::default();
    for pair in bytes.chunks_exact(8) {
        v.dims
            .push(u32::from_le_bytes([pair[0], pair[1], pair[2], pair[3]]));
        v.values
            .push(f32::from_le_bytes([pair[4], pair[5], pair[6], pair[7]]));
    }
    Ok(v)
}

/// The row in `bytes`, checked as Milvus's proxy checks inserted rows and queries
/// (typeutil.ValidateSparseFloatRows, its messages): indices strictly increasing and
/// below 2^32 - 1, values finite and not negative. An empty row is a row.
pub fn validate_row(bytes: &[u8]) -> Result<SparseVec, String> {
    let v = parse_row(bytes)?;
    for (i, (d, x)) in v.dims.iter().zip(&v.values).enumerate() {
        if *d == u32::MAX {
            return Err(
                "invalid index in sparse float vector: must be less than 2^32-1".to_string(),
            );
        }
        if i > 0 && v.dims[i - 1] >= *d {
            return Err("unsorted or same indices in sparse float vector".to_string());
        }
        if !x.is_finite() {
            return Err(format!("value '{x:.6}' is not a number or infinity"));
        }
        if *x < 0.0 {
            return Err("negative value in sparse float vector".to_string());
        }
    }
    Ok(v)
}

/// The bytes of a row as clients send it, from its (index, value) pairs.
pub fn encode_pairs(pairs: &[(u32, f32)]) -> Vec<u8> {
    let mut out = Vec::with_capacity(pairs.len() * 8);
    for (d, x) in pairs {
        out.extend_from_slice(&d.to_le_bytes());
        out.extend_from_slice(&x.to_le_bytes());
    }
    out
}

/// A sparse vector column of field `f` holding `contents`; its dim is the largest
/// row's (last index + 1), as Milvus sets it.
pub fn column(f: &FieldSchema, contents: Vec<Vec<u8>>) -> FieldData {
    let dim = contents
        .iter()
        .filter_map(|r| r.len().checked_sub(8).map(|at| &r[at..at + 4]))
        .map(|d| i64::from(u32::from_le_bytes([d[0], d[1], d[2], d[3]])) + 1)
        .max()
        .unwrap_or(0);
    FieldData {
        r#type: f.data_type,
        field_name: f.name.clone(),
        field_id: f.field_id,
        field: Some(field_data::Field::Vectors(VectorField {
            dim,
            data: Some(vector_field::Data::SparseFloatVector(SparseFloatArray {
                contents,
                dim,
            })),
        })),
        ..Default::default()
    }
}

/// Many rows in one allocation (compressed rows).
#[derive(Debug, Clone, Default)]
pub struct SparseRows {
    starts: Vec<usize>,
    dims: Vec<u32>,
    values: Vec<f32>,
}

impl SparseRows {
    /// The rows of a column's contents (each as [`parse_row`] reads it; a malformed
    /// row, which the proxy never lets in, is held empty).
    pub fn from_contents<B: AsRef<[u8]>>(contents: &[B]) -> SparseRows {
        let total: usize = contents.iter().map(|c| c.as_ref().len() / 8).sum();
        let mut out = SparseRows {
            starts: Vec::with_capacity(contents.len() + 1),
            dims: Vec::with_capacity(total),
            values: Vec::with_capacity(total),
        };
        out.starts.push(0);
        for c in contents {
            if let Ok(v) = parse_row(c.as_ref()) {
                out.dims.extend_from_slice(&v.dims);
                out.values.extend_from_slice(&v.values);
            }
            out.starts.push(out.dims.len());
        }
        out
    }

    /// Number of rows.
    pub fn len(&self) -> usize {
        self.starts.len().saturating_sub(1)
    }

    /// Whether there are no rows.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Row `r`'s dimensions and values.
    pub fn row(&self, r: usize) -> (&[u32], &[f32]) {
        let (a, b) = (self.starts[r], self.starts[r + 1]);
        (&self.dims[a..b], &self.values[a..b])
    }

    /// Row `r`'s length for BM25: the sum of its values (its terms' counts).
    pub fn length(&self, r: usize) -> f32 {
        self.row(r).1.iter().sum()
    }

    /// Bytes held.
    pub fn memory_usage(&self) -> usize {
        self.starts.len() * 8 + self.dims.len() * 8
    }
}

/// How a row's value for a dimension is scored against the query's value.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Scoring {
    /// Inner product.
    Ip,
    /// BM25: `q * tf * (k1 + 1) / (tf + k1 * (1 - b + b * len / avgdl))`.
    Bm25 {
        /// Term frequency saturation.
        k1: f32,
        /// Length normalization.
        b: f32,
        /// The average row length of the rows searched (the shard's).
        avgdl: f32,
    },
}

impl Scoring {
    #[inline]
    fn term(self, q: f32, x: f32, len: f32) -> f32 {
        match self {
            Scoring::Ip => q * x,
            // knowhere's: the average length at least 1.
            Scoring::Bm25 { k1, b, avgdl } => {
                q * x * (k1 + 1.0) / (x + k1 * (1.0 - b + b * len / avgdl.max(1.0)))
            }
        }
    }

    /// The metric scores are in (both larger first).
    pub fn metric(self) -> Metric {
        match self {
            Scoring::Ip => Metric::Ip,
            Scoring::Bm25 { .. } => Metric::Bm25,
        }
    }
}

/// The value below which the smallest `ratio` of `values` lie (knowhere's rule for
/// `drop_ratio_search`: the `floor(ratio * n)`-th smallest magnitude; values strictly
/// below it are dropped).
pub fn threshold(values: impl Iterator<Item = f32>, ratio: f32) -> f32 {
    if ratio <= 0.0 {
        return f32::NEG_INFINITY;
    }
    let mut v: Vec<f32> = values.map(f32::abs).collect();
    if v.is_empty() {
        return f32::NEG_INFINITY;
    }
    let at = ((v.len() as f32 * ratio) as usize).min(v.len() - 1);
    let (_, x, _) = v.select_nth_unstable_by(at, |a, b| a.total_cmp(b));
    *x
}

/// The query with its smallest `drop_ratio` of values left out.
pub fn prune_query(q: &SparseVec, drop_ratio: f32) -> Vec<(u32, f32)> {
    let t = threshold(q.values.iter().copied(), drop_ratio);
    q.dims
        .iter()
        .zip(&q.values)
        .filter(|(_, x)| x.abs() >= t)
        .map(|(d, x)| (*d, *x))
        .collect()
}

fn admitted(s: f32, accept: Option<&Accept<'_>>, r: u32, range: Option<&Range>) -> bool {
    s != 0.0 && accept.is_none_or(|a| a(r)) && range.is_none_or(|g| g.contains(s))
}

/// The best `k` accepted rows of `rows` for `query`, every row scored (the exact path).
pub fn search_rows(
    rows: &SparseRows,
    query: &[(u32, f32)],
    scoring: Scoring,
    k: usize,
    accept: Option<&Accept<'_>>,
    range: Option<&Range>,
) -> Vec<(u32, f32)> {
    let mut top = TopK::new(k, scoring.metric());
    for r in 0..rows.len() {
        let (dims, values) = rows.row(r);
        let len = match scoring {
            Scoring::Ip => 0.0,
            Scoring::Bm25 { .. } => values.iter().sum(),
        };
        let (mut i, mut j, mut s) = (0, 0, 0f32);
        while i < query.len() && j < dims.len() {
            match query[i].0.cmp(&dims[j]) {
                std::cmp::Ordering::Less => i += 1,
                std::cmp::Ordering::Greater => j += 1,
                std::cmp::Ordering::Equal => {
                    s += scoring.term(query[i].1, values[j], len);
                    i += 1;
                    j += 1;
                }
            }
        }
        if admitted(s, accept, r as u32, range) {
            top.push(r as u32, s);
        }
    }
    top.into_sorted()
}

/// An inverted index over sparse rows: for each dimension, the rows holding it and
/// their values, and every row's length. (Milvus 2.5 range-checks `drop_ratio_build`
/// and then ignores it, knowhere's "deprecated, it won't change anything": so does
/// this index.)
#[derive(Debug, Default)]
pub struct Inverted {
    rows: usize,
    lists: HashMap<u32, (Vec<u32>, Vec<f32>)>,
    lengths: Vec<f32>,
}

impl Inverted {
    /// Builds over `rows`.
    pub fn build(rows: &SparseRows) -> Inverted {
        let mut lists: HashMap<u32, (Vec<u32>, Vec<f32>)> = HashMap::new();
        let mut lengths = Vec::with_capacity(rows.len());
        for r in 0..rows.len() {
            let (dims, values) = rows.row(r);
            lengths.push(values.iter().sum());
            for (d, x) in dims.iter().zip(values) {
                let l = lists.entry(*d).or_default();
                l.0.push(r as u32);
                l.1.push(*x);
            }
        }
        Inverted {
            rows: rows.len(),
            lists,
            lengths,
        }
    }

    /// Number of rows.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Bytes held.
    pub fn memory_usage(&self) -> usize {
        self.lists
            .values()
            .map(|l| l.0.len() * 8 + 32)
            .sum::<usize>()
            + self.lengths.len() * 4
    }

    /// The best `k` accepted rows for `query` (term at a time: each query dimension's
    /// list adds to the rows' scores).
    pub fn search(
        &self,
        query: &[(u32, f32)],
        scoring: Scoring,
        k: usize,
        accept: Option<&Accept<'_>>,
        range: Option<&Range>,
    ) -> Vec<(u32, f32)> {
        let mut scores = vec![0f32; self.rows];
        for (d, q) in query {
            if let Some((rows, values)) = self.lists.get(d) {
                for (r, x) in rows.iter().zip(values) {
                    let len = self.lengths[*r as usize];
                    scores[*r as usize] += scoring.term(*q, *x, len);
                }
            }
        }
        let mut top = TopK::new(k, scoring.metric());
        for (r, s) in scores.into_iter().enumerate() {
            if admitted(s, accept, r as u32, range) {
                top.push(r as u32, s);
            }
        }
        top.into_sorted()
    }

    /// The body of an index file.
    pub fn to_bytes(&self, out: &mut Vec<u8>) {
        let mut dims: Vec<&u32> = self.lists.keys().collect();
        dims.sort();
        out.extend_from_slice(&(dims.len() as u32).to_le_bytes());
        for d in dims {
            let (rows, values) = &self.lists[d];
            out.extend_from_slice(&d.to_le_bytes());
            out.extend_from_slice(&(rows.len() as u32).to_le_bytes());
            rows.iter()
                .for_each(|r| out.extend_from_slice(&r.to_le_bytes()));
            values
                .iter()
                .for_each(|x| out.extend_from_slice(&x.to_le_bytes()));
        }
        self.lengths
            .iter()
            .for_each(|x| out.extend_from_slice(&x.to_le_bytes()));
    }

    /// Reads a body written by [`Inverted::to_bytes`] for `rows` rows.
    pub fn from_bytes(b: &[u8], rows: usize) -> Result<Inverted, String> {
        let mut at = 0usize;
        let u32_at = |at: &mut usize| -> Result<u32, String> {
            let s = b.get(*at..*at + 4).ok_or("the sparse index is cut short")?;
            *at += 4;
            Ok(u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
        };
        let n = u32_at(&mut at)? as usize;
        let mut lists = HashMap::with_capacity(n);
        for _ in 0..n {
            let d = u32_at(&mut at)?;
            let count = u32_at(&mut at)? as usize;
            let mut rs = Vec::with_capacity(count);
            for _ in 0..count {
                let r = u32_at(&mut at)?;
                if r as usize >= rows {
                    return Err(format!("the sparse index names row {r} of {rows}"));
                }
                rs.push(r);
            }
            let mut xs = Vec::with_capacity(count);
            for _ in 0..count {
                xs.push(f32::from_bits(u32_at(&mut at)?));
            }
            lists.insert(d, (rs, xs));
        }
        let mut lengths = Vec::with_capacity(rows);
        for _ in 0..rows {
            lengths.push(f32::from_bits(u32_at(&mut at)?));
        }
        Ok(Inverted {
            rows,
            lists,
            lengths,
        })
    }
}
