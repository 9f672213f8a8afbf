//! Vector indexes over one segment's vectors: FLAT, IVF_FLAT, IVF_SQ8, IVF_PQ, SCANN,
//! HNSW, HNSW_SQ and DISKANN (a Vamana graph searched as HNSW's base level)
//! (and BIN_FLAT / BIN_IVF_FLAT over packed bits, as FLAT / IVF_FLAT) behind one type,
//! built from the vectors, written to bytes (an index file) and read back, searched with
//! Milvus's score conventions (L2: squared distance, smaller first; IP: inner product,
//! COSINE: cosine similarity, larger first). Rows are the vectors' offsets in the segment.
//!
//! File layout (little-endian): `MVIX`, version u32, kind u8 (0 FLAT with its vectors,
//! 1 IVF_FLAT, 2 HNSW, 3 HNSW_SQ, 4 IVF_SQ8, 5 IVF_PQ, 6 SCANN, 7 sparse, 8 FLAT over the
//! segment's vectors), metric u8 (0 L2, 1 IP, 2 COSINE, 3 HAMMING, 4 JACCARD, 7 BM25),
//! dim u32, rows u32, then the vectors (rows x dim f32, normalized for COSINE; none for
//! HNSW_SQ, IVF_SQ8 and kind 8), then for IVF_FLAT nlist u32, the centroids and each list (count
//! u32, rows u32...), for HNSW and DISKANN M u32 and the graph ([`graph::Graph::to_bytes`];
//! DISKANN's is one level, M = ceil(max_degree / 2)), for
//! HNSW_SQ the scale (min, step f32), the codes (rows x dim u8), M u32 and the graph, for
//! IVF_SQ8 the lists as IVF_FLAT's, then the scale and the codes, for IVF_PQ and SCANN
//! the lists, then m, dsub, ksub u32, the sub-centroids (m x ksub x dsub f32) and the
//! codes (rows x m u8); SCANN keeps the vectors only `with_raw_data`; a sparse index
//! (dim 0, no vectors) its inverted lists ([`sparse::Inverted::to_bytes`]).
//!
//! A FLAT index is written as kind 8, a header only, as Milvus's FLAT holds nothing the
//! segment does not: whoever loads it hands it the segment's vectors
//! ([`VectorIndex::adopt_vectors`]) before it answers a search. Kind 0 files (FLAT with
//! a copy of the vectors, written before) are still read.

pub mod distance;
pub mod flat;
pub mod graph;
pub mod ivf;
pub mod params;
pub mod pq;
pub mod rtree;
pub mod scalar;
pub mod sparse;
pub mod sq;

use params::{IndexSpec, Kind, Metric, Range, SearchParams};

/// Why an index could not be built, read or searched.
#[derive(Debug, thiserror::Error)]
pub enum IndexError {
    /// The bytes are not an index file of this version.
    #[error("not an index file: {0}")]
    Format(String),
    /// The vector library failed.
    #[error("vector index library: {0}")]
    Library(String),
    /// Input of the wrong shape.
    #[error("{0}")]
    Shape(String),
}

const MAGIC: &[u8; 4] = b"MVIX";
/// Exact scans of at least this many floats (16 MiB) run on several cores.
const PARALLEL_SCAN_FLOATS: usize = 1 << 22;
const VERSION: u32 = 1;

enum Body {
    /// Exact search over `vectors` (empty until [`VectorIndex::adopt_vectors`] when read
    /// from a kind 8 file).
    Flat,
    Ivf(ivf::Ivf),
    Hnsw(graph::Graph),
    /// The graph and the quantized vectors (the floats are not kept).
    HnswSq(graph::Graph, sq::Sq8),
    /// The lists and the quantized vectors (the floats are not kept).
    IvfSq(ivf::Ivf, sq::Sq8),
    /// The lists and the product-quantized residuals (IVF_PQ, SCANN).
    IvfPq(ivf::Ivf, pq::Pq),
    /// An inverted index over sparse vectors (no dense vectors, `dim` 0).
    Sparse(sparse::Inverted),
}

/// The rows a filtered search may return.
#[derive(Clone, Copy)]
pub enum Allowed<'a> {
    /// The rows `accept` takes, and how many it takes.
    Accept(&'a flat::Accept<'a>, usize),
    /// These rows, ascending, each once.
    Rows(&'a [u32]),
}

impl Allowed<'_> {
    /// How many rows it allows.
    pub fn count(&self) -> usize {
        match self {
            Allowed::Accept(_, n) => *n,
            Allowed::Rows(rows) => rows.len(),
        }
    }
}

/// A built or loaded index.
pub struct VectorIndex {
    spec: IndexSpec,
    dim: usize,
    rows: usize,
    /// The vectors (normalized for COSINE); empty for HNSW_SQ, which keeps codes.
    vectors: Vec<f32>,
    body: Body,
}

impl std::fmt::Debug for VectorIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VectorIndex")
            .field("spec", &self.spec)
            .field("dim", &self.dim)
            .field("rows", &self.rows())
            .finish()
    }
}

impl VectorIndex {
    /// Builds `spec` over `vectors` (rows of `dim`) using `threads` threads.
    pub fn build(
        spec: IndexSpec,
        dim: usize,
        vectors: Vec<f32>,
        threads: usize,
    ) -> Result<VectorIndex, IndexError> {
        VectorIndex::build_with(spec, dim, vectors, threads, &[]).map(|(index, _)| index)
    }

    /// Builds as [`VectorIndex::build`] does, an HNSW graph (HNSW, HNSW_SQ) starting
    /// from `seeds`' graphs: index files of the same definition, each over the rows
    /// `first_row..` of `vectors`, unchanged and in the same order
    /// ([`graph::Graph::build_seeded`]). Also how many seeds were used: none of another
    /// definition or shape, none when the kind builds no graph.
    pub fn build_seeded(
        spec: IndexSpec,
        dim: usize,
        vectors: Vec<f32>,
        threads: usize,
        seeds: &[(&Seed, usize)],
    ) -> Result<(VectorIndex, usize), IndexError> {
        let graphs: Vec<(&graph::Graph, usize)> = seeds
            .iter()
            .filter_map(|(seed, first_row)| match &seed.graph {
                Some(g) if seed.spec == spec && seed.dim == dim && g.nodes() == seed.rows => {
                    Some((g, *first_row))
                }
                _ => None,
            })
            .collect();
        VectorIndex::build_with(spec, dim, vectors, threads, &graphs)
    }

    fn build_with(
        spec: IndexSpec,
        dim: usize,
        mut vectors: Vec<f32>,
        threads: usize,
        seeds: &[(&graph::Graph, usize)],
    ) -> Result<(VectorIndex, usize), IndexError> {
        if dim == 0 || !vectors.len().is_multiple_of(dim) {
            return Err(IndexError::Shape(format!(
                "{} floats are not rows of dim {dim}",
                vectors.len()
            )));
        }
        if spec.metric == Metric::Cosine {
            flat::normalize(&mut vectors, dim);
        }
        let rows = vectors.len() / dim;
        let mut seeded = 0;
        let body = match spec.kind {
            Kind::Sparse { .. } => {
                return Err(IndexError::Shape(
                    "a sparse vector index is built from sparse rows".to_string(),
                ))
            }
            Kind::Flat => Body::Flat,
            Kind::IvfFlat { nlist } => Body::Ivf(ivf::train(
                &vectors,
                dim,
                nlist,
                threads,
                spec.metric.is_binary(),
            )),
            Kind::Hnsw { m, ef_construction } => {
                let space = graph::FloatSpace {
                    vectors: &vectors,
                    dim,
                    ip: spec.metric.higher_is_better(),
                };
                let (g, used) =
                    graph::Graph::build_seeded(&space, m, ef_construction, threads, seeds);
                seeded = used;
                Body::Hnsw(g)
            }
            Kind::DiskAnn {
                max_degree,
                search_list_size,
            } => {
                let ip = spec.metric.higher_is_better();
                let space = graph::FloatSpace {
                    vectors: &vectors,
                    dim,
                    ip,
                };
                // Searched as HNSW's base level is (file kind 2, `ef` = `search_list`).
                // COSINE vectors are normalized: `1 - dot` is half the squared L2
                // distance, so alpha applies as on L2; only IP prunes plainly.
                Body::Hnsw(graph::Graph::build_vamana(
                    &space,
                    max_degree,
                    search_list_size,
                    params::DISKANN_ALPHA,
                    spec.metric == Metric::Ip,
                    threads,
                ))
            }
            Kind::HnswSq { m, ef_construction } => {
                let codes = sq::Sq8::encode(&vectors, dim, spec.metric.higher_is_better());
                let (g, used) =
                    graph::Graph::build_seeded(&codes, m, ef_construction, threads, seeds);
                seeded = used;
                vectors = Vec::new();
                Body::HnswSq(g, codes)
            }
            Kind::IvfSq8 { nlist } => {
                let lists = ivf::train(&vectors, dim, nlist, threads, false);
                let codes = sq::Sq8::encode(&vectors, dim, spec.metric.higher_is_better());
                vectors = Vec::new();
                Body::IvfSq(lists, codes)
            }
            Kind::IvfPq { nlist, m, nbits } => {
                if !dim.is_multiple_of(m) {
                    return Err(IndexError::Shape(format!(
                        "m {m} does not divide dim {dim}"
                    )));
                }
                let lists = ivf::train(&vectors, dim, nlist, threads, false);
                let codes = pq::Pq::train(&vectors, dim, &lists, m, nbits, threads);
                vectors = Vec::new();
                Body::IvfPq(lists, codes)
            }
            Kind::Scann {
                nlist,
                sub_dim,
                with_raw_data,
            } => {
                if !dim.is_multiple_of(sub_dim) {
                    return Err(IndexError::Shape(format!(
                        "sub_dim {sub_dim} does not divide dim {dim}"
                    )));
                }
                let lists = ivf::train(&vectors, dim, nlist, threads, false);
                let codes = pq::Pq::train(&vectors, dim, &lists, dim / sub_dim, 4, threads);
                if !with_raw_data {
                    vectors = Vec::new();
                }
                Body::IvfPq(lists, codes)
            }
        };
        Ok((
            VectorIndex {
                spec,
                dim,
                rows,
                vectors,
                body,
            },
            seeded,
        ))
    }

    /// A FLAT index over a segment's `rows` vectors of `dim` words, without them: what an
    /// indexnode writes (kind 8), so a FLAT build reads and copies nothing. Searches need
    /// [`VectorIndex::adopt_vectors`] first.
    pub fn flat_over_segment(
        spec: IndexSpec,
        dim: usize,
        rows: usize,
    ) -> Result<VectorIndex, IndexError> {
        if spec.kind != Kind::Flat || dim == 0 {
            return Err(IndexError::Shape(format!(
                "{:?} of dim {dim} is not a FLAT index of dense vectors",
                spec.kind
            )));
        }
        Ok(VectorIndex {
            spec,
            dim,
            rows,
            vectors: Vec::new(),
            body: Body::Flat,
        })
    }

    /// True for a FLAT index read without its vectors (see [`VectorIndex::adopt_vectors`]).
    pub fn needs_vectors(&self) -> bool {
        matches!(self.body, Body::Flat) && self.vectors.is_empty() && self.rows > 0
    }

    /// True when the index keeps its vectors in another form than given (COSINE
    /// normalizes them): [`VectorIndex::adopt_vectors`] then needs a copy, not the
    /// segment's own column.
    pub fn transforms_vectors(&self) -> bool {
        self.spec.metric == Metric::Cosine
    }

    /// Whether a column of `len` words, `words` a vector, holds this index's rows.
    pub fn fits_column(&self, len: usize, words: usize) -> bool {
        words == self.dim && Some(len) == self.rows.checked_mul(words)
    }

    /// Gives a FLAT index read without its vectors the segment's: `rows x dim` words in
    /// row order (normalized here for COSINE). Refused, the index unchanged, when the
    /// count does not fit or the index already has its vectors.
    pub fn adopt_vectors(&mut self, mut vectors: Vec<f32>) -> Result<(), IndexError> {
        if !self.needs_vectors() {
            return Err(IndexError::Shape(
                "the index already has its vectors".to_string(),
            ));
        }
        if !self.fits_column(vectors.len(), self.dim) {
            return Err(IndexError::Shape(format!(
                "{} words are not {} rows of dim {}",
                vectors.len(),
                self.rows,
                self.dim
            )));
        }
        if self.spec.metric == Metric::Cosine {
            flat::normalize(&mut vectors, self.dim);
        }
        self.vectors = vectors;
        Ok(())
    }

    /// Builds a sparse vector index (`spec` of [`Kind::Sparse`]) over `rows`.
    pub fn build_sparse(
        spec: IndexSpec,
        rows: &sparse::SparseRows,
    ) -> Result<VectorIndex, IndexError> {
        let Kind::Sparse { .. } = spec.kind else {
            return Err(IndexError::Shape(format!(
                "{:?} is not an index of sparse vectors",
                spec.kind
            )));
        };
        Ok(VectorIndex {
            spec,
            dim: 0,
            rows: rows.len(),
            vectors: Vec::new(),
            body: Body::Sparse(sparse::Inverted::build(rows)),
        })
    }

    /// The best `k` accepted rows within `range` for a sparse query (its smallest
    /// `drop_ratio_search` of values left out), best first.
    pub fn search_sparse(
        &self,
        query: &sparse::SparseVec,
        scoring: sparse::Scoring,
        k: usize,
        p: &SearchParams,
        accept: Option<&flat::Accept<'_>>,
        range: Option<&Range>,
    ) -> Result<Vec<(u32, f32)>, IndexError> {
        let Body::Sparse(inv) = &self.body else {
            return Err(IndexError::Shape(
                "a sparse query needs an index of sparse vectors".to_string(),
            ));
        };
        let q = sparse::prune_query(query, p.drop_ratio_search.map_or(0.0, |r| r.0));
        Ok(inv.search(&q, scoring, k, accept, range))
    }

    /// What it is.
    pub fn spec(&self) -> &IndexSpec {
        &self.spec
    }

    /// The vector of `row` as it was given, when the index keeps it (not for COSINE,
    /// which keeps normalized vectors, nor HNSW_SQ, which keeps codes).
    pub fn raw_vector(&self, row: usize) -> Option<&[f32]> {
        if self.spec.metric == Metric::Cosine || self.vectors.is_empty() || row >= self.rows {
            return None;
        }
        Some(&self.vectors[row * self.dim..(row + 1) * self.dim])
    }

    /// Whether [`VectorIndex::raw_vector`] answers for every row.
    pub fn keeps_raw_vectors(&self) -> bool {
        self.spec.metric != Metric::Cosine && !self.vectors.is_empty()
    }

    /// Number of vectors.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Bytes it occupies in memory (vectors, lists, graph).
    pub fn memory_usage(&self) -> usize {
        let own = self.vectors.len() * 4;
        own + match &self.body {
            Body::Flat => 0,
            Body::Ivf(ivf) => ivf.centroids.len() * 4 + self.rows * 4,
            Body::Hnsw(g) => g.memory_usage(),
            Body::HnswSq(g, c) => g.memory_usage() + c.memory_usage(),
            Body::IvfSq(ivf, c) => ivf.centroids.len() * 4 + self.rows * 4 + c.memory_usage(),
            Body::IvfPq(ivf, c) => ivf.centroids.len() * 4 + self.rows * 4 + c.memory_usage(),
            Body::Sparse(inv) => inv.memory_usage(),
        }
    }

    /// The best `k` rows for `query`, best first: (row, Milvus score).
    pub fn search(
        &self,
        query: &[f32],
        k: usize,
        p: &SearchParams,
    ) -> Result<Vec<(u32, f32)>, IndexError> {
        self.search_filtered(query, k, p, None)
    }

    /// As [`VectorIndex::search`], returning only the rows `filter` allows. When few rows
    /// pass, they are searched exactly (a graph walk would mostly visit rejected rows):
    /// a list of rows by scoring those rows alone.
    pub fn search_filtered(
        &self,
        query: &[f32],
        k: usize,
        p: &SearchParams,
        filter: Option<Allowed<'_>>,
    ) -> Result<Vec<(u32, f32)>, IndexError> {
        self.search_in(query, k, p, filter, None)
    }

    /// As [`VectorIndex::search_filtered`], with only scores within `range` (a range
    /// search): the best `k` of them. Exact bodies test every accepted row; a graph or
    /// IVF search is widened (doubling `k`) until `k` hits are in range, the search
    /// returns fewer rows than asked (nothing more to find), or its worst hit is past
    /// the radius (every further hit would be too).
    pub fn search_in(
        &self,
        query: &[f32],
        k: usize,
        p: &SearchParams,
        filter: Option<Allowed<'_>>,
        range: Option<&Range>,
    ) -> Result<Vec<(u32, f32)>, IndexError> {
        if query.len() != self.dim {
            return Err(IndexError::Shape(format!(
                "the query has dim {}, the index {}",
                query.len(),
                self.dim
            )));
        }
        if self.needs_vectors() {
            return Err(IndexError::Shape(
                "the FLAT index has not been given its segment's vectors".to_string(),
            ));
        }
        let mut q = query.to_vec();
        if self.spec.metric == Metric::Cosine {
            flat::normalize(&mut q, self.dim);
        }
        let k = k.min(self.rows());
        let sparse = filter.is_some_and(|f| f.count() * 20 < self.rows);
        let exact = (sparse || matches!(self.body, Body::Flat)) && !self.vectors.is_empty();
        if let (true, Some(Allowed::Rows(rows))) = (exact, filter) {
            return Ok(self.exact_rows(&q, k, rows, range));
        }
        let mask = match filter {
            Some(Allowed::Rows(rows)) => {
                let mut m = vec![false; self.rows];
                for r in rows.iter().map(|r| *r as usize) {
                    if let Some(b) = m.get_mut(r) {
                        *b = true;
                    }
                }
                Some(m)
            }
            _ => None,
        };
        let in_mask = mask.as_ref().map(|m| move |r: u32| m[r as usize]);
        let accept: Option<&flat::Accept<'_>> = match filter {
            Some(Allowed::Accept(a, _)) => Some(a),
            Some(Allowed::Rows(_)) => in_mask.as_ref().map(|f| f as &flat::Accept<'_>),
            None => None,
        };
        if exact {
            return Ok(self.exact(&q, k, accept, range));
        }
        let Some(r) = range else {
            return Ok(self.approximate(&q, k, p, accept));
        };
        let mut want = k;
        loop {
            let found = self.approximate(&q, want, p, accept);
            let exhausted = found.len() < want || want >= self.rows;
            let past = found.last().is_some_and(|(_, s)| r.beyond(*s));
            let in_range: Vec<(u32, f32)> = found
                .into_iter()
                .filter(|(_, s)| r.contains(*s))
                .take(k)
                .collect();
            if in_range.len() >= k || exhausted || past {
                return Ok(in_range);
            }
            want = (want * 2).min(self.rows);
        }
    }

    /// The best `k` of `rows` (ascending) within `range`, each one's score computed: the
    /// answer of [`Self::exact`] accepting those rows (the same scores, pushed in the
    /// same row order), at the cost of those rows alone.
    fn exact_rows(
        &self,
        q: &[f32],
        k: usize,
        rows: &[u32],
        range: Option<&Range>,
    ) -> Vec<(u32, f32)> {
        let mut top = flat::TopK::new(k, self.spec.metric);
        for r in rows.iter().map(|r| *r as usize) {
            self.consider(&mut top, q, r, range);
        }
        top.into_sorted()
    }

    /// Scores row `r` (of the index's vectors; none past them) and offers it to `top`
    /// when its score is admitted and within `range`.
    fn consider(&self, top: &mut flat::TopK, q: &[f32], r: usize, range: Option<&Range>) {
        let dim = self.dim;
        let Some(v) = self.vectors.get(r * dim..(r + 1) * dim) else {
            return;
        };
        let s = flat::score(self.spec.metric, q, v);
        if flat::admits(self.spec.metric, s) && range.is_none_or(|range| range.contains(s)) {
            top.push(r as u32, s);
        }
    }

    /// The best `k` accepted rows within `range`, every row's score computed. A large
    /// index is scanned in parts on the machine's cores (each part keeps its best `k`;
    /// merged in row order, ties resolve as one scan resolves them: the earlier row).
    fn exact(
        &self,
        q: &[f32],
        k: usize,
        accept: Option<&flat::Accept<'_>>,
        range: Option<&Range>,
    ) -> Vec<(u32, f32)> {
        let metric = self.spec.metric;
        let dim = self.dim;
        let scan = |from: usize, to: usize| {
            let mut top = flat::TopK::new(k, metric);
            for r in from..to {
                if accept.is_none_or(|a| a(r as u32)) {
                    self.consider(&mut top, q, r, range);
                }
            }
            top
        };
        let rows = self.vectors.len() / dim.max(1);
        let parts = if rows * dim >= PARALLEL_SCAN_FLOATS {
            std::thread::available_parallelism().map_or(1, |n| n.get().min(8))
        } else {
            1
        };
        if parts <= 1 {
            return scan(0, rows).into_sorted();
        }
        let tops: Vec<flat::TopK> = std::thread::scope(|s| {
            let scan = &scan;
            let handles: Vec<_> = (0..parts)
                .map(|i| s.spawn(move || scan(rows * i / parts, rows * (i + 1) / parts)))
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().expect("a scan thread panicked"))
                .collect()
        });
        let mut top = flat::TopK::new(k, metric);
        for part in tops {
            for (r, s) in part.into_sorted() {
                top.push(r, s);
            }
        }
        top.into_sorted()
    }

    /// The index's own search for the best `k` accepted rows.
    fn approximate(
        &self,
        q: &[f32],
        k: usize,
        p: &SearchParams,
        accept: Option<&flat::Accept<'_>>,
    ) -> Vec<(u32, f32)> {
        let all = |_: u32| true;
        let take: &flat::Accept<'_> = accept.unwrap_or(&all);
        match &self.body {
            Body::Flat => self.exact(q, k, accept, None),
            Body::Ivf(ivf) => ivf.search(
                self.spec.metric,
                &self.vectors,
                self.dim,
                q,
                k,
                p.nprobe.unwrap_or(8),
                accept,
            ),
            Body::Hnsw(g) => {
                let ef = p.ef.unwrap_or(k.max(16)).max(k);
                let space = graph::FloatSpace {
                    vectors: &self.vectors,
                    dim: self.dim,
                    ip: self.spec.metric.higher_is_better(),
                };
                let found = g.search(&space, &|n| space.to(q, n), k, ef, &|n| take(n));
                self.scores(q, found)
            }
            Body::HnswSq(g, codes) => {
                let ef = p.ef.unwrap_or(k.max(16)).max(k);
                let qc = codes.quantize(q);
                let qs: u32 = qc.iter().map(|c| u32::from(*c)).sum();
                let found = g.search(codes, &|n| codes.to(&qc, qs, n), k, ef, &|n| take(n));
                self.scores(q, found)
            }
            Body::IvfSq(lists, codes) => {
                let qc = codes.quantize(q);
                let qs: u32 = qc.iter().map(|c| u32::from(*c)).sum();
                // Distances from the codes, smaller first (as the graph's).
                let mut top = flat::TopK::new(k, Metric::L2);
                for c in lists.probes(q, self.dim, p.nprobe.unwrap_or(8), false) {
                    for &r in &lists.lists[c as usize] {
                        if take(r) {
                            top.push(r, codes.to(&qc, qs, r));
                        }
                    }
                }
                self.scores(q, top.into_sorted())
            }
            Body::IvfPq(lists, codes) => {
                let metric = self.spec.metric;
                let ip = metric.higher_is_better();
                // SCANN with raw vectors: the best `reorder_k` by the codes, rescored.
                let want = match self.spec.kind {
                    Kind::Scann { .. } if !self.vectors.is_empty() => {
                        p.reorder_k.unwrap_or(k).max(k).min(self.rows)
                    }
                    _ => k,
                };
                let shared = ip.then(|| codes.table(q, true));
                let mut top = flat::TopK::new(want, metric);
                let mut residual = vec![0f32; self.dim];
                for c in lists.probes(q, self.dim, p.nprobe.unwrap_or(8), false) {
                    let cv = &lists.centroids[c as usize * self.dim..(c as usize + 1) * self.dim];
                    let own;
                    let (table, base) = match &shared {
                        Some(t) => (t, distance::dot(q, cv)),
                        None => {
                            for ((r, a), b) in residual.iter_mut().zip(q).zip(cv) {
                                *r = a - b;
                            }
                            own = codes.table(&residual, false);
                            (&own, 0.0)
                        }
                    };
                    for &r in &lists.lists[c as usize] {
                        if take(r) {
                            top.push(r, base + codes.lookup(table, r));
                        }
                    }
                }
                let found = top.into_sorted();
                if self.vectors.is_empty() {
                    return found;
                }
                let mut exact = self.scores(q, found);
                exact.truncate(k);
                exact
            }
            // Searched by `search_sparse` only (its dim is 0: no dense query reaches it).
            Body::Sparse(_) => Vec::new(),
        }
    }

    /// Milvus's scores for a graph's hits: computed again from the stored vectors when
    /// the index keeps them, so a row scores exactly as the exact paths (FLAT, growing
    /// rows) score it and a search iterator's bound never sees one row at two scores;
    /// else from the graph's distances (`1 - dot` for inner products).
    fn scores(&self, q: &[f32], found: Vec<(u32, f32)>) -> Vec<(u32, f32)> {
        let metric = self.spec.metric;
        if self.vectors.is_empty() {
            return found
                .into_iter()
                .map(|(r, d)| match metric {
                    Metric::Ip | Metric::Cosine => (r, 1.0 - d),
                    _ => (r, d),
                })
                .collect();
        }
        let mut exact: Vec<(u32, f32)> = found
            .into_iter()
            .map(|(r, _)| {
                let at = r as usize * self.dim;
                (r, flat::score(metric, q, &self.vectors[at..at + self.dim]))
            })
            .collect();
        exact.sort_by(|a, b| {
            let o = a.1.partial_cmp(&b.1).unwrap_or(std::cmp::Ordering::Equal);
            if metric.higher_is_better() {
                o.reverse()
            } else {
                o
            }
        });
        exact
    }

    /// The index file.
    pub fn to_bytes(&self) -> Result<Vec<u8>, IndexError> {
        let (kind, head, rest) = self.file_parts();
        let floats = if kind == 8 { 0 } else { self.vectors.len() };
        let mut out = Vec::with_capacity(head.len() + floats * 4 + rest.len());
        out.extend_from_slice(&head);
        put_f32s(&mut out, &self.vectors[..floats]);
        out.extend_from_slice(&rest);
        Ok(out)
    }

    /// The index file as [`VectorIndex::to_bytes`] writes it, in three parts: the
    /// header, the vectors (the index's own, not copied) and the rest. A large build
    /// is written this way: a file made in one piece would hold the vectors twice (the
    /// rest, a graph's links or the codes, is still a copy).
    pub fn into_file(self) -> [bytes::Bytes; 3] {
        let (kind, head, rest) = self.file_parts();
        let vectors = if kind == 8 { Vec::new() } else { self.vectors };
        // The file is little-endian: so are the machines this builds for; a big-endian
        // one has its floats copied in the file's order.
        #[cfg(target_endian = "little")]
        let vectors = bytes::Bytes::from_owner(FloatBytes(arrow_buffer::Buffer::from_vec(vectors)));
        #[cfg(target_endian = "big")]
        let vectors = {
            let mut b = Vec::new();
            put_f32s(&mut b, &vectors);
            bytes::Bytes::from(b)
        };
        [head.into(), vectors, rest.into()]
    }

    /// The file's kind, its header and what follows the vectors.
    fn file_parts(&self) -> (u8, Vec<u8>, Vec<u8>) {
        let mut out = Vec::with_capacity(18);
        out.extend_from_slice(MAGIC);
        put_u32(&mut out, VERSION);
        let (kind, extra) = match &self.body {
            Body::Flat => (8u8, Vec::new()),
            Body::Ivf(ivf) => {
                let mut e = Vec::new();
                put_lists(&mut e, ivf);
                (1u8, e)
            }
            Body::Hnsw(g) => {
                let mut e = Vec::new();
                put_u32(&mut e, g.m() as u32);
                g.to_bytes(&mut e);
                (2u8, e)
            }
            Body::HnswSq(g, c) => {
                let mut e = Vec::new();
                put_f32s(&mut e, &[c.min, c.step]);
                e.extend_from_slice(&c.codes);
                put_u32(&mut e, g.m() as u32);
                g.to_bytes(&mut e);
                (3u8, e)
            }
            Body::IvfSq(ivf, c) => {
                let mut e = Vec::new();
                put_lists(&mut e, ivf);
                put_f32s(&mut e, &[c.min, c.step]);
                e.extend_from_slice(&c.codes);
                (4u8, e)
            }
            Body::IvfPq(ivf, c) => {
                let mut e = Vec::new();
                put_lists(&mut e, ivf);
                put_u32(&mut e, c.m as u32);
                put_u32(&mut e, c.dsub as u32);
                put_u32(&mut e, c.ksub as u32);
                put_f32s(&mut e, &c.centroids);
                e.extend_from_slice(&c.codes);
                let kind = if matches!(self.spec.kind, Kind::Scann { .. }) {
                    6u8
                } else {
                    5u8
                };
                (kind, e)
            }
            Body::Sparse(inv) => {
                let mut e = Vec::new();
                inv.to_bytes(&mut e);
                (7u8, e)
            }
        };
        out.push(kind);
        out.push(self.spec.metric.code());
        put_u32(&mut out, self.dim as u32);
        put_u32(&mut out, self.rows() as u32);
        (kind, out, extra)
    }

    /// Reads an index file written by [`VectorIndex::to_bytes`] for `spec`.
    pub fn from_bytes(spec: IndexSpec, bytes: &[u8]) -> Result<VectorIndex, IndexError> {
        let layout = FileLayout::read(spec, bytes)?;
        let raw = bytes
            .get(layout.vectors.clone())
            .ok_or_else(|| IndexError::Format("truncated".into()))?;
        let mut vectors = Vec::new();
        extend_floats(&mut vectors, raw);
        VectorIndex::from_parts(spec, &layout, vectors, &bytes[layout.vectors.end..])
    }

    /// Reads an index file from its parts: its layout ([`FileLayout::read`]), the
    /// floats at `layout.vectors` ([`extend_floats`]) and the bytes after them. A large
    /// file is read this way in pieces, so that it is not held whole beside its vectors.
    pub fn from_parts(
        spec: IndexSpec,
        layout: &FileLayout,
        vectors: Vec<f32>,
        rest: &[u8],
    ) -> Result<VectorIndex, IndexError> {
        let (kind, dim, rows) = (layout.kind, layout.dim, layout.rows);
        if vectors.len() * 4 != layout.vectors.len() {
            return Err(IndexError::Format(format!(
                "{} floats where the file holds {}",
                vectors.len(),
                layout.vectors.len() / 4
            )));
        }
        let mut r = Reader { b: rest, at: 0 };
        let body = match (kind, spec.kind) {
            (0 | 8, Kind::Flat) => Body::Flat,
            (1, Kind::IvfFlat { .. }) => Body::Ivf(r.lists(dim, rows)?),
            (4, Kind::IvfSq8 { .. }) => {
                let lists = r.lists(dim, rows)?;
                Body::IvfSq(lists, r.sq8(rows, dim, spec.metric.higher_is_better())?)
            }
            (5, Kind::IvfPq { .. }) | (6, Kind::Scann { .. }) => {
                let lists = r.lists(dim, rows)?;
                let (m, dsub, ksub) = (r.u32()? as usize, r.u32()? as usize, r.u32()? as usize);
                if m == 0 || m.checked_mul(dsub) != Some(dim) || !(1..=256).contains(&ksub) {
                    return Err(IndexError::Format(format!(
                        "product codes of {m} x {dsub} values, {ksub} each, do not fit dim {dim}"
                    )));
                }
                let centroids = r.f32s(m * ksub * dsub)?;
                let codes = r
                    .take(
                        rows.checked_mul(m)
                            .ok_or_else(|| IndexError::Format("too large".into()))?,
                    )?
                    .to_vec();
                Body::IvfPq(lists, pq::Pq::from_parts(m, dsub, ksub, centroids, codes))
            }
            (2, Kind::Hnsw { .. } | Kind::DiskAnn { .. }) => {
                let m = r.u32()? as usize;
                let g = graph::Graph::from_bytes(r.rest(), m)
                    .filter(|g| g.nodes() == rows)
                    .ok_or_else(|| {
                        IndexError::Format("the graph is cut short or not of its rows".into())
                    })?;
                Body::Hnsw(g)
            }
            (7, Kind::Sparse { .. }) => Body::Sparse(
                sparse::Inverted::from_bytes(r.rest(), rows).map_err(IndexError::Format)?,
            ),
            (3, Kind::HnswSq { .. }) => {
                let c = r.sq8(rows, dim, spec.metric.higher_is_better())?;
                let m = r.u32()? as usize;
                let g = graph::Graph::from_bytes(r.rest(), m)
                    .filter(|g| g.nodes() == rows)
                    .ok_or_else(|| {
                        IndexError::Format("the graph is cut short or not of its rows".into())
                    })?;
                Body::HnswSq(g, c)
            }
            (k, _) => {
                return Err(IndexError::Format(format!(
                    "the file's kind ({k}) is not the definition's ({:?})",
                    spec.kind
                )))
            }
        };
        Ok(VectorIndex {
            spec,
            dim,
            rows,
            vectors,
            body,
        })
    }
}

fn put_u32(out: &mut Vec<u8>, v: u32) {
    out.extend_from_slice(&v.to_le_bytes());
}

fn put_lists(out: &mut Vec<u8>, ivf: &ivf::Ivf) {
    put_u32(out, ivf.lists.len() as u32);
    put_f32s(out, &ivf.centroids);
    for l in &ivf.lists {
        put_u32(out, l.len() as u32);
        for r in l {
            put_u32(out, *r);
        }
    }
}

fn put_f32s(out: &mut Vec<u8>, v: &[f32]) {
    out.reserve(v.len() * 4);
    for x in v {
        out.extend_from_slice(&x.to_le_bytes());
    }
}

/// Where an index file's parts lie, from its header.
pub struct FileLayout {
    kind: u8,
    dim: usize,
    rows: usize,
    /// The bytes of the float vectors (empty when the file holds none).
    pub vectors: std::ops::Range<usize>,
    /// Where what a seed reads starts ([`Seed::from_parts`]): after the vectors, and
    /// after HNSW_SQ's scale and codes.
    pub seed_from: usize,
}

impl FileLayout {
    /// The header's length: the bytes [`FileLayout::read`] needs.
    pub const HEADER: usize = 18;

    /// Reads the header at the start of `head`, checked against `spec`.
    pub fn read(spec: IndexSpec, head: &[u8]) -> Result<FileLayout, IndexError> {
        let mut r = Reader { b: head, at: 0 };
        if r.take(4)? != MAGIC {
            return Err(IndexError::Format("bad magic".into()));
        }
        let version = r.u32()?;
        if version != VERSION {
            return Err(IndexError::Format(format!("version {version}")));
        }
        let kind = r.take(1)?[0];
        let metric = r.take(1)?[0];
        let dim = r.u32()? as usize;
        let rows = r.u32()? as usize;
        if metric != spec.metric.code() {
            return Err(IndexError::Format(format!(
                "the file's metric ({metric}) is not the definition's ({})",
                spec.metric.name()
            )));
        }
        let raw = match (kind, spec.kind) {
            (3..=5 | 8, _) => false,
            (6, Kind::Scann { with_raw_data, .. }) => with_raw_data,
            _ => true,
        };
        let floats = if raw { rows.checked_mul(dim) } else { Some(0) };
        let too_large = || IndexError::Format(format!("too large: {rows} rows of dim {dim}"));
        let end = floats
            .and_then(|n| n.checked_mul(4))
            .and_then(|len| len.checked_add(FileLayout::HEADER))
            .ok_or_else(too_large)?;
        // HNSW_SQ's scale (min, step: 8 bytes) and codes (a byte per value).
        let codes = match kind {
            3 => rows.checked_mul(dim).and_then(|n| n.checked_add(8)),
            _ => Some(0),
        };
        let seed_from = codes
            .and_then(|n| n.checked_add(end))
            .ok_or_else(too_large)?;
        Ok(FileLayout {
            kind,
            dim,
            rows,
            vectors: FileLayout::HEADER..end,
            seed_from,
        })
    }
}

/// Appends the little-endian floats of `raw` (whole floats; a trailing part is ignored).
pub fn extend_floats(out: &mut Vec<f32>, raw: &[u8]) {
    out.extend(
        raw.chunks_exact(4)
            .map(|c| f32::from_le_bytes(c.try_into().expect("4 bytes"))),
    );
}

/// Floats seen as their bytes (in the machine's order), owned.
#[cfg(target_endian = "little")]
struct FloatBytes(arrow_buffer::Buffer);

#[cfg(target_endian = "little")]
impl AsRef<[u8]> for FloatBytes {
    fn as_ref(&self) -> &[u8] {
        self.0.as_slice()
    }
}

/// The graph of an index file, read to start another build from
/// ([`VectorIndex::build_seeded`]): the file's vectors and codes are skipped, as the
/// build has the same rows' vectors, so a seed costs its graph's memory alone.
pub struct Seed {
    spec: IndexSpec,
    dim: usize,
    rows: usize,
    /// None for a kind that builds no graph (such a seed is never used).
    graph: Option<graph::Graph>,
}

impl Seed {
    /// Reads the graph of an index file written by [`VectorIndex::to_bytes`] for `spec`.
    pub fn from_bytes(spec: IndexSpec, bytes: &[u8]) -> Result<Seed, IndexError> {
        let layout = FileLayout::read(spec, bytes)?;
        let rest = bytes
            .get(layout.seed_from..)
            .ok_or_else(|| IndexError::Format("truncated".into()))?;
        Seed::from_parts(spec, &layout, rest)
    }

    /// Reads the graph from the file's bytes from `layout.seed_from` ([`FileLayout::read`]):
    /// past the vectors, and past HNSW_SQ's scale and codes.
    pub fn from_parts(
        spec: IndexSpec,
        layout: &FileLayout,
        rest: &[u8],
    ) -> Result<Seed, IndexError> {
        let (kind, dim, rows) = (layout.kind, layout.dim, layout.rows);
        let mut r = Reader { b: rest, at: 0 };
        let graph = match (kind, spec.kind) {
            (2, Kind::Hnsw { .. } | Kind::DiskAnn { .. }) | (3, Kind::HnswSq { .. }) => {
                let m = r.u32()? as usize;
                Some(
                    graph::Graph::from_bytes(r.rest(), m)
                        .filter(|g| g.nodes() == rows)
                        .ok_or_else(|| {
                            IndexError::Format("the graph is cut short or not of its rows".into())
                        })?,
                )
            }
            _ => None,
        };
        Ok(Seed {
            spec,
            dim,
            rows,
            graph,
        })
    }

    /// The rows its graph links.
    pub fn rows(&self) -> usize {
        self.rows
    }
}

struct Reader<'a> {
    b: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], IndexError> {
        let end = self
            .at
            .checked_add(n)
            .filter(|e| *e <= self.b.len())
            .ok_or_else(|| IndexError::Format("truncated".into()))?;
        let s = &self.b[self.at..end];
        self.at = end;
        Ok(s)
    }

    fn u32(&mut self) -> Result<u32, IndexError> {
        Ok(u32::from_le_bytes(
            self.take(4)?.try_into().expect("4 bytes"),
        ))
    }

    fn f32s(&mut self, n: usize) -> Result<Vec<f32>, IndexError> {
        let raw = self.take(
            n.checked_mul(4)
                .ok_or_else(|| IndexError::Format("too large".into()))?,
        )?;
        Ok(raw
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes(c.try_into().expect("4 bytes")))
            .collect())
    }

    /// IVF lists written by `put_lists` (centroids of `dim`, entries below `rows`).
    fn lists(&mut self, dim: usize, rows: usize) -> Result<ivf::Ivf, IndexError> {
        let nlist = self.u32()? as usize;
        let centroids = self.f32s(
            nlist
                .checked_mul(dim)
                .ok_or_else(|| IndexError::Format("too large".into()))?,
        )?;
        let mut lists = Vec::with_capacity(nlist.min(1 << 16));
        for _ in 0..nlist {
            let c = self.u32()? as usize;
            let mut l = Vec::with_capacity(c.min(self.b.len() / 4));
            for _ in 0..c {
                let r = self.u32()?;
                if r as usize >= rows {
                    return Err(IndexError::Format(format!(
                        "a list names row {r} of {rows}"
                    )));
                }
                l.push(r);
            }
            lists.push(l);
        }
        Ok(ivf::Ivf { centroids, lists })
    }

    /// 8-bit codes written as the scale (min, step) and `rows x dim` codes.
    fn sq8(&mut self, rows: usize, dim: usize, ip: bool) -> Result<sq::Sq8, IndexError> {
        let scale = self.f32s(2)?;
        let n = rows
            .checked_mul(dim)
            .ok_or_else(|| IndexError::Format("too large".into()))?;
        let codes = self.take(n)?.to_vec();
        Ok(sq::Sq8::from_parts(codes, dim, scale[0], scale[1], ip))
    }

    fn rest(&mut self) -> &'a [u8] {
        let s = &self.b[self.at..];
        self.at = self.b.len();
        s
    }
}

#[cfg(test)]
mod tests;
