//! Exact search over raw vectors: FLAT, the inverted lists of IVF_FLAT, and ground truth.

use super::params::{Metric, Range};

/// The score of `b` for query `a` under `metric` (COSINE expects normalized vectors,
/// so it is the inner product).
#[inline]
pub fn score(metric: Metric, a: &[f32], b: &[f32]) -> f32 {
    match metric {
        Metric::L2 => super::distance::l2(a, b),
        // BM25 scores sparse rows only (index::sparse); as dense, an inner product.
        Metric::Ip | Metric::Cosine | Metric::Bm25 => super::distance::dot(a, b),
        Metric::Hamming => super::distance::hamming(a, b),
        Metric::Jaccard => super::distance::jaccard(a, b),
        Metric::Substructure => super::distance::contained(a, b),
        Metric::Superstructure => super::distance::contained(b, a),
    }
}

/// Whether score `s` can be a hit: any score, but only matches (0) under the structure
/// metrics, which filter rather than rank.
#[inline]
pub fn admits(metric: Metric, s: f32) -> bool {
    !metric.is_structure() || s == 0.0
}

/// Normalizes every `dim`-long vector of `v` in place (zero vectors stay zero).
pub fn normalize(v: &mut [f32], dim: usize) {
    for row in v.chunks_mut(dim.max(1)) {
        let norm = row.iter().map(|x| x * x).sum::<f32>().sqrt();
        if norm > 0.0 {
            row.iter_mut().for_each(|x| *x /= norm);
        }
    }
}

/// Keeps the best `k` (row, score) pairs seen, best first at the end.
pub struct TopK {
    k: usize,
    higher: bool,
    items: Vec<(u32, f32)>,
}

impl TopK {
    /// An empty selection of `k` for `metric`.
    pub fn new(k: usize, metric: Metric) -> TopK {
        TopK {
            k,
            higher: metric.higher_is_better(),
            // A client's `k` may be huge: grow as hits come.
            items: Vec::with_capacity(k.min(4096) + 1),
        }
    }

    fn better(&self, a: f32, b: f32) -> bool {
        if self.higher {
            a > b
        } else {
            a < b
        }
    }

    /// Offers a candidate.
    pub fn push(&mut self, row: u32, s: f32) {
        if self.k == 0 {
            return;
        }
        if self.items.len() == self.k {
            let worst = self.items[self.items.len() - 1].1;
            if !self.better(s, worst) {
                return;
            }
            self.items.pop();
        }
        let pos = self
            .items
            .iter()
            .position(|(_, x)| self.better(s, *x))
            .unwrap_or(self.items.len());
        self.items.insert(pos, (row, s));
    }

    /// The selection, best first.
    pub fn into_sorted(self) -> Vec<(u32, f32)> {
        self.items
    }
}

/// The best `k` rows of `vectors` (or of `rows` only, when given) for `query`.
pub fn search(
    metric: Metric,
    vectors: &[f32],
    dim: usize,
    query: &[f32],
    k: usize,
    rows: Option<&[u32]>,
) -> Vec<(u32, f32)> {
    let mut top = TopK::new(k, metric);
    match rows {
        Some(rows) => {
            for &r in rows {
                let v = &vectors[r as usize * dim..(r as usize + 1) * dim];
                top.push(r, score(metric, query, v));
            }
        }
        None => {
            for (r, v) in vectors.chunks_exact(dim.max(1)).enumerate() {
                top.push(r as u32, score(metric, query, v));
            }
        }
    }
    top.into_sorted()
}

/// The best `k` rows of raw (not normalized) `vectors` accepted by `accept` (and with
/// a score within `range`, when given), with Milvus's scores: for COSINE the query
/// must be normalized, rows are normalized here.
pub fn search_raw(
    metric: Metric,
    vectors: &[f32],
    dim: usize,
    query: &[f32],
    k: usize,
    accept: Option<&Accept<'_>>,
    range: Option<&Range>,
) -> Vec<(u32, f32)> {
    let mut top = TopK::new(k, metric);
    // COSINE: each row normalized exactly as an index normalizes it when built, so a
    // row scores the same here and through its index (bit for bit).
    let mut unit = vec![0f32; if metric == Metric::Cosine { dim } else { 0 }];
    for (r, v) in vectors.chunks_exact(dim.max(1)).enumerate() {
        if accept.is_some_and(|a| !a(r as u32)) {
            continue;
        }
        let s = match metric {
            Metric::Cosine => {
                unit.copy_from_slice(v);
                normalize(&mut unit, dim);
                super::distance::dot(query, &unit)
            }
            other => score(other, query, v),
        };
        if admits(metric, s) && range.is_none_or(|range| range.contains(s)) {
            top.push(r as u32, s);
        }
    }
    top.into_sorted()
}

/// Which rows a search may return.
pub type Accept<'a> = dyn Fn(u32) -> bool + Sync + 'a;
