//! HNSW (Malkov and Yashunin), built the way hnswlib (Milvus's knowhere) builds it:
//! levels drawn with `mL = 1/ln(M)`, lists of up to `M` links per node on upper levels
//! and `2M` on the base level, a new node linked to the `M` neighbours the diversity
//! heuristic chooses from `efConstruction` candidates on each of its levels, a full
//! neighbour list re-pruned with the same heuristic when a new node links back. Insertion
//! runs on several threads with a lock per node; the finished graph is searched without
//! locks, with `ef` per query.
//!
//! Distances come from a [`Space`] and are "smaller is closer": squared L2, or `1 - dot`
//! for inner products (COSINE vectors come normalized), over floats or 8-bit codes.

use std::cmp::Ordering;
use std::collections::BinaryHeap;
use std::sync::atomic::{AtomicU32, Ordering as AtOrd};
use std::sync::{Mutex, RwLock};

use super::distance;

/// A (distance, node) pair ordered by distance.
#[derive(Clone, Copy, PartialEq)]
struct Near(f32, u32);

impl Eq for Near {}

impl PartialOrd for Near {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Near {
    fn cmp(&self, other: &Self) -> Ordering {
        self.0.total_cmp(&other.0).then(self.1.cmp(&other.1))
    }
}

/// Marks of nodes seen by one search (a generation counter avoids clearing; one byte a
/// node keeps the marks of a large graph in the cache, cleared every 255 searches).
struct Visited {
    mark: Vec<u8>,
    stamp: u8,
}

impl Visited {
    fn new(n: usize) -> Visited {
        Visited {
            mark: vec![0; n],
            stamp: 0,
        }
    }

    /// Makes room for marks of `n` nodes (new marks are unset).
    fn fit(&mut self, n: usize) {
        if self.mark.len() < n {
            self.mark.resize(n, 0);
        }
    }

    fn next(&mut self) {
        self.stamp = self.stamp.wrapping_add(1);
        if self.stamp == 0 {
            self.mark.iter_mut().for_each(|m| *m = 0);
            self.stamp = 1;
        }
    }

    /// True the first time `n` is seen in this search.
    fn first(&mut self, n: u32) -> bool {
        let m = &mut self.mark[n as usize];
        if *m == self.stamp {
            false
        } else {
            *m = self.stamp;
            true
        }
    }
}

thread_local! {
    /// Each thread's marks for [`Graph::search`], kept between queries (a byte per node of
    /// the largest graph the thread searched): a query neither allocates nor clears them.
    static MARKS: std::cell::RefCell<Visited> = std::cell::RefCell::new(Visited::new(0));
}

/// The base level's links: per node a count and `2M` slots, in one array (no pointer
/// to chase per node). Atomics let a search read while another thread rewrites a node's
/// list under that node's lock; every slot always holds some valid node.
struct BaseLinks {
    stride: usize,
    cells: Vec<AtomicU32>,
}

impl BaseLinks {
    fn new(n: usize, m0: usize) -> BaseLinks {
        BaseLinks {
            stride: m0 + 1,
            cells: (0..n * (m0 + 1)).map(|_| AtomicU32::new(0)).collect(),
        }
    }

    fn read(&self, node: u32, out: &mut Vec<u32>) {
        let at = node as usize * self.stride;
        let count = (self.cells[at].load(AtOrd::Acquire) as usize).min(self.stride - 1);
        out.extend(
            self.cells[at + 1..at + 1 + count]
                .iter()
                .map(|c| c.load(AtOrd::Relaxed)),
        );
    }

    fn write(&self, node: u32, links: &[u32]) {
        let at = node as usize * self.stride;
        for (c, l) in self.cells[at + 1..].iter().zip(links) {
            c.store(*l, AtOrd::Relaxed);
        }
        self.cells[at].store(links.len() as u32, AtOrd::Release);
    }
}

/// The finished base level, compacted: every node's links back to back, so a node
/// costs what it links to (about two thirds of `2M` on average), not `2M` slots.
struct Compact {
    /// Node `n`'s links are `links[start[n]..start[n + 1]]`.
    start: Vec<u32>,
    links: Vec<u32>,
}

impl Compact {
    fn from_lists<'a>(n: usize, lists: impl Fn(u32, &mut Vec<u32>) + 'a) -> Compact {
        let mut start = Vec::with_capacity(n + 1);
        let mut links = Vec::new();
        let mut buf = Vec::new();
        start.push(0);
        for node in 0..n as u32 {
            buf.clear();
            lists(node, &mut buf);
            links.extend_from_slice(&buf);
            start.push(links.len() as u32);
        }
        links.shrink_to_fit();
        Compact { start, links }
    }

    #[inline]
    fn read(&self, node: u32, out: &mut Vec<u32>) {
        let (a, b) = (
            self.start[node as usize] as usize,
            self.start[node as usize + 1] as usize,
        );
        out.extend_from_slice(&self.links[a..b]);
    }
}

/// The finished graph (links only: the vectors are its [`Space`]'s).
pub struct Graph {
    m: usize,
    entry: u32,
    max_level: usize,
    base: Compact,
    /// Links of each node on levels 1 and up (`upper[n][l - 1]`).
    upper: Vec<Vec<Vec<u32>>>,
}

impl std::fmt::Debug for Graph {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Graph")
            .field("m", &self.m)
            .field("nodes", &self.upper.len())
            .field("max_level", &self.max_level)
            .finish()
    }
}

/// The vectors a graph links: how far two nodes are, and a hint to load one.
pub trait Space: Sync {
    /// Number of nodes.
    fn len(&self) -> usize;
    /// True when there are none.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Distance between two nodes (smaller is closer).
    fn between(&self, a: u32, b: u32) -> f32;
    /// Starts loading a node's vector into the cache.
    fn prefetch(&self, _n: u32) {}
}

/// Float vectors: squared L2, or `1 - dot` for inner products.
pub struct FloatSpace<'a> {
    /// Rows of `dim`.
    pub vectors: &'a [f32],
    /// Dimension.
    pub dim: usize,
    /// Inner product instead of L2.
    pub ip: bool,
}

impl FloatSpace<'_> {
    /// A node's vector.
    #[inline]
    pub fn row(&self, n: u32) -> &[f32] {
        &self.vectors[n as usize * self.dim..(n as usize + 1) * self.dim]
    }

    /// Distance from a query vector to a node.
    #[inline]
    pub fn to(&self, q: &[f32], n: u32) -> f32 {
        let v = self.row(n);
        if self.ip {
            1.0 - distance::dot(q, v)
        } else {
            distance::l2(q, v)
        }
    }
}

impl Space for FloatSpace<'_> {
    fn len(&self) -> usize {
        self.vectors.len() / self.dim.max(1)
    }

    fn between(&self, a: u32, b: u32) -> f32 {
        self.to(self.row(a), b)
    }

    fn prefetch(&self, n: u32) {
        prefetch(self.row(n));
    }
}

/// Keeps, of `candidates` (closest first), those closer to the base than to every one
/// kept before them, up to `m` (hnswlib's `getNeighborsByHeuristic2`).
fn heuristic<S: Space>(space: &S, candidates: &[Near], m: usize) -> Vec<u32> {
    if candidates.len() <= m {
        return candidates.iter().map(|n| n.1).collect();
    }
    let mut kept: Vec<Near> = Vec::with_capacity(m);
    for c in candidates {
        let good = kept.iter().all(|k| space.between(c.1, k.1) >= c.0);
        if good {
            kept.push(*c);
            if kept.len() >= m {
                break;
            }
        }
    }
    kept.iter().map(|n| n.1).collect()
}

/// Asks the CPU to start loading the first cache lines of `v` (the graph's accesses are
/// random, so the hardware prefetcher cannot guess them).
#[inline]
pub fn prefetch<T>(v: &[T]) {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        let p = v.as_ptr().cast::<i8>();
        let lines = std::mem::size_of_val(v).div_ceil(64).min(4);
        for i in 0..lines {
            // SAFETY: SSE is part of x86_64; a prefetch never faults, and the address
            // stays inside the slice.
            unsafe { _mm_prefetch(p.add(i * 64), _MM_HINT_T0) };
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = v;
}

/// One level's links, as a search reads them.
trait Level {
    /// Appends node `n`'s links to `out`.
    fn links(&self, n: u32, out: &mut Vec<u32>);
    /// Starts loading node `n`'s links into the cache (the next node a search expands).
    fn prefetch(&self, n: u32);
}

impl Level for Compact {
    fn links(&self, n: u32, out: &mut Vec<u32>) {
        self.read(n, out);
    }

    fn prefetch(&self, n: u32) {
        let a = self.start[n as usize] as usize;
        prefetch(&self.links[a..(a + 16).min(self.links.len())]);
    }
}

/// A level of a graph being built.
struct Building<'b, 'a, S: Space> {
    builder: &'b Builder<'a, S>,
    level: usize,
}

impl<S: Space> Level for Building<'_, '_, S> {
    fn links(&self, n: u32, out: &mut Vec<u32>) {
        self.builder.links_of(n, self.level, out);
    }

    fn prefetch(&self, n: u32) {
        if self.level == 0 {
            let b = &self.builder.base;
            let at = n as usize * b.stride;
            prefetch(&b.cells[at..(at + b.stride).min(b.cells.len())]);
        }
    }
}

/// The `ef` nodes closest to the query (`dq(n)` is its distance to node `n`) on one
/// `level`, from `entries`, closest first; `accept` filters what may be returned (every
/// node is still traversed).
fn search_level<S: Space>(
    space: &S,
    dq: &dyn Fn(u32) -> f32,
    entries: &[u32],
    ef: usize,
    visited: &mut Visited,
    level: &impl Level,
    accept: &dyn Fn(u32) -> bool,
) -> Vec<Near> {
    visited.next();
    let mut candidates = BinaryHeap::new(); // min-heap through Reverse
    let mut best: BinaryHeap<Near> = BinaryHeap::new(); // max-heap: worst on top
    for &entry in entries {
        if !visited.first(entry) {
            continue;
        }
        let d0 = dq(entry);
        candidates.push(std::cmp::Reverse(Near(d0, entry)));
        if accept(entry) {
            best.push(Near(d0, entry));
            if best.len() > ef {
                best.pop();
            }
        }
    }
    let mut bound = if best.len() >= ef {
        best.peek().map_or(f32::INFINITY, |w| w.0)
    } else {
        f32::INFINITY
    };
    let mut buf = Vec::new();
    let mut fresh = Vec::new();
    while let Some(std::cmp::Reverse(Near(d, n))) = candidates.pop() {
        if d > bound {
            break;
        }
        buf.clear();
        level.links(n, &mut buf);
        if let Some(std::cmp::Reverse(next)) = candidates.peek() {
            level.prefetch(next.1);
        }
        fresh.clear();
        fresh.extend(buf.iter().copied().filter(|nb| visited.first(*nb)));
        if let Some(&f) = fresh.first() {
            space.prefetch(f);
        }
        for (i, &nb) in fresh.iter().enumerate() {
            if let Some(&next) = fresh.get(i + 1) {
                space.prefetch(next);
            }
            let dn = dq(nb);
            if best.len() < ef || dn < bound {
                candidates.push(std::cmp::Reverse(Near(dn, nb)));
                if accept(nb) {
                    best.push(Near(dn, nb));
                    if best.len() > ef {
                        best.pop();
                    }
                    if best.len() >= ef {
                        bound = best.peek().map_or(f32::INFINITY, |w| w.0);
                    }
                }
            }
        }
    }
    let mut out = best.into_vec();
    out.sort();
    out
}

/// Greedy descent on one level (ef = 1).
fn greedy(dq: &dyn Fn(u32) -> f32, mut ep: u32, mut links: impl FnMut(u32, &mut Vec<u32>)) -> u32 {
    let mut best = dq(ep);
    let mut buf = Vec::new();
    loop {
        let mut changed = false;
        buf.clear();
        links(ep, &mut buf);
        for &nb in &buf {
            let d = dq(nb);
            if d < best {
                best = d;
                ep = nb;
                changed = true;
            }
        }
        if !changed {
            return ep;
        }
    }
}

/// A deterministic level generator (splitmix64 from a fixed seed, as hnswlib seeds its
/// generator): the same vectors give the same graph shape.
fn levels(n: usize, m: usize) -> Vec<u8> {
    let ml = 1.0 / (m.max(2) as f64).ln();
    let mut state: u64 = 100;
    (0..n)
        .map(|_| {
            state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = state;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^= z >> 31;
            let u = ((z >> 11) as f64 + 0.5) / (1u64 << 53) as f64;
            (-u.ln() * ml).floor().min(32.0) as u8
        })
        .collect()
}

/// How many of its own links into the join set a merged source's node needs to be left
/// out of it (and inserted from them).
const MERGE_COVER: usize = 2;
/// A node inserted from its join-set neighbours searches with this percentage of
/// `efConstruction`. Both measured over 300,000 x 128 in three sources (`cargo bench
/// --bench index -- --rows 300000 --queries 500 --parts 3`, one run each): 58.4 s against
/// 73.1 s seeded from the largest source alone, recall@10 0.230 / 0.342 / 0.483 at `ef`
/// 64 / 128 / 256 against 0.223 / 0.340 / 0.478; with the full list no faster (73.9 s),
/// with half of it 45.0 s but recall 0.211 / 0.319 / 0.463.
const MERGE_EF_PERCENT: usize = 70;

/// A join set of `g` (Ponomarenko's merge of HNSW graphs, as Lucene merges segments):
/// every node on an upper level, and every node fewer than `cover` of whose base-level
/// links point into the set when its turn comes (in node order). Every node outside it
/// therefore links to at least `cover` nodes in it: once those are in the merged graph,
/// a short search from them finds the node's neighbourhood there.
fn join_set(g: &Graph, cover: usize) -> Vec<bool> {
    let n = g.nodes();
    let mut joined: Vec<bool> = g.upper.iter().map(|u| !u.is_empty()).collect();
    let mut buf = Vec::new();
    for node in 0..n as u32 {
        if joined[node as usize] {
            continue;
        }
        buf.clear();
        g.base.read(node, &mut buf);
        if buf.iter().filter(|&&x| joined[x as usize]).count() < cover {
            joined[node as usize] = true;
        }
    }
    joined
}

/// Runs `f(i)` for `i` in `0..count` on `threads` threads, each with marks for `n`
/// nodes, handing out small batches in order (so the threads' insertions interleave).
fn parallel(threads: usize, n: usize, count: usize, f: impl Fn(usize, &mut Visited) + Sync) {
    let next = std::sync::atomic::AtomicUsize::new(0);
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| {
                let mut visited = Visited::new(n);
                loop {
                    let start = next.fetch_add(16, std::sync::atomic::Ordering::Relaxed);
                    if start >= count {
                        return;
                    }
                    for i in start..(start + 16).min(count) {
                        f(i, &mut visited);
                    }
                }
            });
        }
    });
}

struct Builder<'a, S: Space> {
    space: &'a S,
    m: usize,
    ef_construction: usize,
    levels: Vec<u8>,
    base: BaseLinks,
    /// Held while a node's base links change.
    locks: Vec<Mutex<()>>,
    upper: Vec<Mutex<Vec<Vec<u32>>>>,
    /// (entry node, its level).
    entry: RwLock<(u32, usize)>,
    /// Held through the insertion of a node above the current top level.
    top: Mutex<()>,
}

impl<S: Space> Builder<'_, S> {
    fn links_of(&self, n: u32, level: usize, out: &mut Vec<u32>) {
        if level == 0 {
            self.base.read(n, out);
            return;
        }
        let l = self.upper[n as usize].lock().expect("node lock");
        if let Some(v) = l.get(level - 1) {
            out.extend_from_slice(v);
        }
    }

    fn set_links(&self, n: u32, level: usize, links: &[u32]) {
        if level == 0 {
            let _g = self.locks[n as usize].lock().expect("node lock");
            self.base.write(n, links);
        } else {
            self.upper[n as usize].lock().expect("node lock")[level - 1] = links.to_vec();
        }
    }

    fn insert(&self, q: u32, visited: &mut Visited) {
        let lq = self.levels[q as usize] as usize;
        let dq = |n: u32| self.space.between(q, n);
        let top_guard = {
            let g = self.top.lock().expect("top lock");
            if lq > self.entry.read().expect("entry lock").1 {
                Some(g)
            } else {
                None
            }
        };
        let (mut ep, max_level) = *self.entry.read().expect("entry lock");
        for level in (lq + 1..=max_level).rev() {
            ep = greedy(&dq, ep, |n, out| self.links_of(n, level, out));
        }
        for level in (0..=lq.min(max_level)).rev() {
            let found = search_level(
                self.space,
                &dq,
                &[ep],
                self.ef_construction,
                visited,
                &Building {
                    builder: self,
                    level,
                },
                &|_| true,
            );
            // M links on every level, as hnswlib (Milvus's knowhere) links a new node; the
            // base level's lists hold up to 2M as other nodes link back.
            let chosen = heuristic(self.space, &found, self.m);
            self.set_links(q, level, &chosen);
            for &nb in &chosen {
                self.connect(nb, q, level);
            }
            if let Some(first) = found.first() {
                ep = first.1;
            }
        }
        if top_guard.is_some() {
            *self.entry.write().expect("entry lock") = (q, lq);
        }
    }

    /// Inserts `q`, a base-level node, by a search of the base level from `entries`
    /// (nodes near it already linked) with list `ef`, instead of a descent from the top,
    /// choosing its links from what the search found and the entries' links: how a node
    /// of a merged source that the join set covers joins the graph.
    fn insert_near(&self, q: u32, entries: &[u32], ef: usize, visited: &mut Visited) {
        let dq = |n: u32| self.space.between(q, n);
        let level = Building {
            builder: self,
            level: 0,
        };
        let mut found = search_level(self.space, &dq, entries, ef, visited, &level, &|_| true);
        // The entries' own links join the candidates (those the search did not reach):
        // the shorter list then loses little of the neighbourhood a full one finds.
        let mut buf = Vec::new();
        for &e in entries {
            buf.clear();
            self.base.read(e, &mut buf);
            for &x in &buf {
                if visited.first(x) {
                    found.push(Near(dq(x), x));
                }
            }
        }
        found.sort();
        found.retain(|c| c.1 != q);
        let chosen = heuristic(self.space, &found, self.m);
        self.set_links(q, 0, &chosen);
        for &nb in &chosen {
            self.connect(nb, q, 0);
        }
    }

    /// Adds `q` to `n`'s links on `level`, re-pruning a full list.
    fn connect(&self, n: u32, q: u32, level: usize) {
        let max = if level == 0 { 2 * self.m } else { self.m };
        let prune = |list: &[u32]| -> Vec<u32> {
            let mut cands: Vec<Near> = list
                .iter()
                .chain(std::iter::once(&q))
                .map(|&c| Near(self.space.between(n, c), c))
                .collect();
            cands.sort();
            heuristic(self.space, &cands, max)
        };
        if level == 0 {
            let _g = self.locks[n as usize].lock().expect("node lock");
            let mut list = Vec::with_capacity(max + 1);
            self.base.read(n, &mut list);
            if list.contains(&q) {
                return;
            }
            if list.len() < max {
                list.push(q);
                self.base.write(n, &list);
            } else {
                self.base.write(n, &prune(&list));
            }
            return;
        }
        let mut l = self.upper[n as usize].lock().expect("node lock");
        let list = &mut l[level - 1];
        if list.contains(&q) {
            return;
        }
        if list.len() < max {
            list.push(q);
            return;
        }
        *list = prune(list);
    }
}

impl Graph {
    /// A graph of no nodes.
    fn empty(m: usize) -> Graph {
        Graph {
            m,
            entry: 0,
            max_level: 0,
            base: Compact::from_lists(0, |_, _| {}),
            upper: Vec::new(),
        }
    }

    /// Builds over the nodes of `space` on `threads` threads.
    pub fn build<S: Space>(space: &S, m: usize, ef_construction: usize, threads: usize) -> Graph {
        Graph::build_from(space, m, ef_construction, threads, &[])
    }

    /// Builds over the nodes of `space`, starting from `seeds`: graphs of the same `M`,
    /// each over the nodes `offset..offset + seed.nodes()` of `space` (the same vectors
    /// in the same order, as when a compaction copied a segment whole), not overlapping.
    /// The largest seed's links are taken as they are (Lucene seeds a merged segment's
    /// graph from its largest source the same way); of each other seed only a join set
    /// is inserted as any node is (see [`join_set`]), and every other node of it by a
    /// search of the base level started from its join-set neighbours with a shorter
    /// list; rows in no seed are inserted as any node is. Also how many seeds were used:
    /// a seed that does not fit `space`, `M` or the seeds before it is left out (0: a
    /// build from scratch).
    pub fn build_seeded<S: Space>(
        space: &S,
        m: usize,
        ef_construction: usize,
        threads: usize,
        seeds: &[(&Graph, usize)],
    ) -> (Graph, usize) {
        let mut sorted: Vec<(&Graph, usize)> = seeds.to_vec();
        sorted.sort_by_key(|(g, offset)| (std::cmp::Reverse(g.nodes()), *offset));
        let mut taken: Vec<(&Graph, usize)> = Vec::new();
        for (g, offset) in sorted {
            let end = offset.checked_add(g.nodes());
            let fits = g.m == m
                && g.nodes() > 0
                && end.is_some_and(|end| end <= space.len() && end <= u32::MAX as usize)
                && taken
                    .iter()
                    .all(|(t, o)| offset + g.nodes() <= *o || *o + t.nodes() <= offset);
            if fits {
                taken.push((g, offset));
            }
        }
        let used = taken.len();
        (
            Graph::build_from(space, m, ef_construction, threads, &taken),
            used,
        )
    }

    fn build_from<S: Space>(
        space: &S,
        m: usize,
        ef_construction: usize,
        threads: usize,
        seeds: &[(&Graph, usize)],
    ) -> Graph {
        let n = space.len();
        if n == 0 {
            return Graph::empty(m);
        }
        let mut levels = levels(n, m);
        for (g, offset) in seeds {
            for (i, l) in g.upper.iter().enumerate() {
                levels[offset + i] = l.len() as u8;
            }
        }
        // Nodes a search from their join-set neighbours inserts: (node, entries).
        let mut near: Vec<(u32, Vec<u32>)> = Vec::new();
        let mut planned = vec![false; n];
        for (i, (g, offset)) in seeds.iter().enumerate() {
            let shift = *offset as u32;
            if i == 0 {
                planned[*offset..offset + g.nodes()].fill(true);
                continue;
            }
            let joined = join_set(g, MERGE_COVER);
            let mut buf = Vec::new();
            for node in 0..g.nodes() as u32 {
                if joined[node as usize] {
                    continue;
                }
                buf.clear();
                g.base.read(node, &mut buf);
                let entries: Vec<u32> = buf
                    .iter()
                    .filter(|&&x| joined[x as usize])
                    .map(|x| x + shift)
                    .collect();
                planned[(node + shift) as usize] = true;
                near.push((node + shift, entries));
            }
        }
        // Highest levels first (as faiss inserts): the upper layers exist before the
        // mass of base-level nodes arrives, which gives a better connected graph.
        let mut order: Vec<u32> = (0..n as u32).filter(|i| !planned[*i as usize]).collect();
        order.sort_by_key(|&i| std::cmp::Reverse(levels[i as usize]));
        // The entry: the largest seed's, or the first node inserted (which then needs no
        // links).
        let (entry, done) = match seeds.first() {
            Some((g, offset)) => ((g.entry + *offset as u32, g.max_level), 0),
            None => ((order[0], levels[order[0] as usize] as usize), 1),
        };
        let b = Builder {
            space,
            m,
            ef_construction: ef_construction.max(m),
            base: BaseLinks::new(n, 2 * m),
            locks: (0..n).map(|_| Mutex::new(())).collect(),
            upper: levels
                .iter()
                .map(|&l| Mutex::new(vec![Vec::new(); l as usize]))
                .collect(),
            entry: RwLock::new(entry),
            levels,
            top: Mutex::new(()),
        };
        if let Some((g, offset)) = seeds.first() {
            let shift = |l: &[u32]| l.iter().map(|x| x + *offset as u32).collect::<Vec<u32>>();
            let mut buf = Vec::new();
            for (i, up) in g.upper.iter().enumerate() {
                let node = (offset + i) as u32;
                buf.clear();
                g.base.read(i as u32, &mut buf);
                b.base.write(node, &shift(&buf));
                *b.upper[node as usize].lock().expect("node lock") =
                    up.iter().map(|l| shift(l)).collect();
            }
        }
        let threads = threads.max(1);
        parallel(threads, n, order.len() - done, |i, visited| {
            b.insert(order[done + i], visited)
        });
        let ef_near = (b.ef_construction * MERGE_EF_PERCENT / 100).max(m);
        parallel(threads, n, near.len(), |i, visited| {
            let (q, entries) = &near[i];
            b.insert_near(*q, entries, ef_near, visited)
        });
        let (entry, max_level) = *b.entry.read().expect("entry lock");
        Graph {
            m,
            entry,
            max_level,
            base: Compact::from_lists(n, |node, out| b.base.read(node, out)),
            upper: b
                .upper
                .into_iter()
                .map(|l| l.into_inner().expect("node lock"))
                .collect(),
        }
    }

    /// The `k` nodes of `space` nearest to a query (`dq(n)`: its distance to node `n`),
    /// among those `accept` lets through, with candidate list `ef`: (row, distance),
    /// closest first.
    pub fn search<S: Space>(
        &self,
        space: &S,
        dq: &dyn Fn(u32) -> f32,
        k: usize,
        ef: usize,
        accept: &dyn Fn(u32) -> bool,
    ) -> Vec<(u32, f32)> {
        if self.upper.is_empty() || k == 0 {
            return Vec::new();
        }
        let mut ep = self.entry;
        for level in (1..=self.max_level).rev() {
            ep = greedy(dq, ep, |n, out| {
                if let Some(v) = self.upper[n as usize].get(level - 1) {
                    out.extend_from_slice(v);
                }
            });
        }
        let found = MARKS.with(|marks| {
            let mut visited = marks.borrow_mut();
            visited.fit(self.upper.len());
            search_level(
                space,
                dq,
                &[ep],
                ef.max(k),
                &mut visited,
                &self.base,
                accept,
            )
        });
        found.into_iter().take(k).map(|n| (n.1, n.0)).collect()
    }

    /// `M`.
    pub fn m(&self) -> usize {
        self.m
    }

    /// Number of nodes.
    pub fn nodes(&self) -> usize {
        self.upper.len()
    }

    /// Bytes the links occupy.
    pub fn memory_usage(&self) -> usize {
        (self.base.start.len() + self.base.links.len()) * 4
            + self
                .upper
                .iter()
                .map(|l| l.iter().map(|v| v.capacity() * 4 + 24).sum::<usize>() + 24)
                .sum::<usize>()
    }

    /// The graph as bytes: entry u32, max level u32, nodes u32, then per node its level
    /// count u8 and per level (base first) the link count u32 and the links.
    pub fn to_bytes(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&(self.entry).to_le_bytes());
        out.extend_from_slice(&(self.max_level as u32).to_le_bytes());
        out.extend_from_slice(&(self.upper.len() as u32).to_le_bytes());
        let mut base = Vec::new();
        for (n, node) in self.upper.iter().enumerate() {
            out.push(node.len() as u8 + 1);
            base.clear();
            self.base.read(n as u32, &mut base);
            for l in std::iter::once(&base).chain(node.iter()) {
                out.extend_from_slice(&(l.len() as u32).to_le_bytes());
                for x in l {
                    out.extend_from_slice(&x.to_le_bytes());
                }
            }
        }
    }

    /// Reads [`Graph::to_bytes`]; `None` when the bytes are cut short or inconsistent.
    pub fn from_bytes(b: &[u8], m: usize) -> Option<Graph> {
        let mut at = 0;
        let u32_at = |at: &mut usize| -> Option<u32> {
            let v = u32::from_le_bytes(b.get(*at..*at + 4)?.try_into().ok()?);
            *at += 4;
            Some(v)
        };
        let entry = u32_at(&mut at)?;
        let max_level = u32_at(&mut at)? as usize;
        let n = u32_at(&mut at)? as usize;
        // Every node takes at least 5 bytes: a size read from a damaged file cannot make
        // these reservations larger than the file.
        if n > b.len() / 5 {
            return None;
        }
        let mut start = Vec::with_capacity(n + 1);
        let mut base_links = Vec::new();
        start.push(0u32);
        let mut upper = Vec::with_capacity(n);
        for _ in 0..n {
            let levels = *b.get(at)? as usize;
            at += 1;
            let mut lists = Vec::with_capacity(levels);
            for _ in 0..levels {
                let c = u32_at(&mut at)? as usize;
                let mut l = Vec::with_capacity(c);
                for _ in 0..c {
                    let x = u32_at(&mut at)?;
                    if x as usize >= n {
                        return None;
                    }
                    l.push(x);
                }
                lists.push(l);
            }
            if lists.is_empty() || lists[0].len() > 2 * m {
                return None;
            }
            base_links.extend_from_slice(&lists[0]);
            start.push(base_links.len() as u32);
            lists.remove(0);
            upper.push(lists);
        }
        if n > 0 && entry as usize >= n {
            return None;
        }
        let base = Compact {
            start,
            links: base_links,
        };
        Some(Graph {
            m,
            entry,
            max_level,
            base,
            upper,
        })
    }
}

/// One level of adjacency lists, read by the searches of a Vamana batch.
struct Lists<'a>(&'a [Vec<u32>]);

impl Level for Lists<'_> {
    fn links(&self, n: u32, out: &mut Vec<u32>) {
        out.extend_from_slice(&self.0[n as usize]);
    }

    fn prefetch(&self, n: u32) {
        prefetch(&self.0[n as usize]);
    }
}

/// Vamana's RobustPrune: of `candidates` (closest to `p` first, `p` itself left out),
/// keeps the closest, drops every candidate `c` the kept one `k` covers (`factor ·
/// d(k, c) <= d(p, c)`), and repeats, up to `r` links. `factor` is alpha for the
/// distance compared (alpha² for squared L2).
fn robust_prune<S: Space>(space: &S, candidates: &[Near], factor: f32, r: usize) -> Vec<u32> {
    let mut alive = vec![true; candidates.len()];
    let mut kept = Vec::with_capacity(r);
    for i in 0..candidates.len() {
        if !alive[i] {
            continue;
        }
        let k = candidates[i].1;
        kept.push(k);
        if kept.len() >= r {
            break;
        }
        for j in i + 1..candidates.len() {
            if alive[j] && factor * space.between(k, candidates[j].1) <= candidates[j].0 {
                alive[j] = false;
            }
        }
    }
    kept
}

/// A node close to the data's centre: of up to 512 sampled nodes, the one with the
/// smallest summed distance to up to 512 others (the entry point DiskANN takes, the
/// medoid, estimated from at most 512 x 512 distances through the space).
fn approximate_medoid<S: Space>(space: &S, seed: &mut u64) -> u32 {
    let n = space.len();
    let mut sample = |k: usize| -> Vec<u32> {
        if n <= k {
            return (0..n as u32).collect();
        }
        (0..k).map(|_| (splitmix(seed) % n as u64) as u32).collect()
    };
    let (candidates, probes) = (sample(512), sample(512));
    candidates
        .into_iter()
        .map(|c| {
            let total: f64 = probes.iter().map(|&p| f64::from(space.between(c, p))).sum();
            (total, c)
        })
        .min_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)))
        .map_or(0, |(_, c)| c)
}

fn splitmix(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Runs `f` over `items` on up to `threads` threads (each with its own marks), in order.
fn par_map<T: Sync, R: Send>(
    items: &[T],
    threads: usize,
    n: usize,
    f: impl Fn(&T, &mut Visited) -> R + Sync,
) -> Vec<R> {
    let threads = threads.max(1).min(items.len().max(1));
    let chunk = items.len().div_ceil(threads).max(1);
    std::thread::scope(|s| {
        let parts: Vec<_> = items
            .chunks(chunk)
            .map(|part| {
                let f = &f;
                s.spawn(move || {
                    let mut visited = Visited::new(n);
                    part.iter().map(|x| f(x, &mut visited)).collect::<Vec<R>>()
                })
            })
            .collect();
        parts
            .into_iter()
            .flat_map(|p| p.join().expect("a build thread panicked"))
            .collect()
    })
}

impl Graph {
    /// Builds a Vamana graph (DiskANN's, Subramanya et al. 2019) over the nodes of
    /// `space`: one level, entered at an approximate medoid, each node linked to at most
    /// `r` others chosen by RobustPrune from the nodes a search with list `l` finds for
    /// it, in two passes (alpha 1, then `alpha`), every chosen link also added back and
    /// the other end re-pruned when it holds more than `r`. Nodes go in batches whose
    /// searches run in parallel on the graph as the previous batch left it (sizes
    /// doubling from 1 in the first pass, as ParlayANN builds), so the result does not
    /// depend on thread timing. `plain`: prune without alpha (inner products of vectors
    /// that are not normalized, where `1 - dot` is no squared distance); otherwise the
    /// distances are squared L2 (or `1 - dot` of unit vectors, half of it) and alpha
    /// applies squared.
    pub fn build_vamana<S: Space>(
        space: &S,
        r: usize,
        l: usize,
        alpha: f32,
        plain: bool,
        threads: usize,
    ) -> Graph {
        let n = space.len();
        let r = r.max(1);
        let m = r.div_ceil(2);
        if n == 0 {
            return Graph::empty(m);
        }
        let l = l.max(r);
        let mut seed = 0x5EED_u64;
        let medoid = approximate_medoid(space, &mut seed);
        let mut order: Vec<u32> = (0..n as u32).filter(|&x| x != medoid).collect();
        for i in (1..order.len()).rev() {
            let j = (splitmix(&mut seed) % (i as u64 + 1)) as usize;
            order.swap(i, j);
        }
        let most = (n / 50).clamp(1, 4096);
        let mut adj: Vec<Vec<u32>> = vec![Vec::new(); n];
        let factors = if plain {
            [1.0, 1.0]
        } else {
            [1.0, alpha * alpha]
        };
        for (pass, factor) in factors.into_iter().enumerate() {
            let mut at = 0;
            let mut size = if pass == 0 { 1 } else { most };
            while at < order.len() {
                let batch = &order[at..(at + size).min(order.len())];
                let lists = par_map(batch, threads, n, |&p, visited| {
                    let dq = |x: u32| space.between(p, x);
                    let found =
                        search_level(space, &dq, &[medoid], l, visited, &Lists(&adj), &|_| true);
                    let mut cands: Vec<Near> = found.into_iter().filter(|c| c.1 != p).collect();
                    for &x in &adj[p as usize] {
                        if !cands.iter().any(|c| c.1 == x) {
                            cands.push(Near(dq(x), x));
                        }
                    }
                    cands.sort();
                    robust_prune(space, &cands, factor, r)
                });
                let mut back: Vec<(u32, u32)> = Vec::new();
                for (&p, list) in batch.iter().zip(lists) {
                    back.extend(list.iter().map(|&j| (j, p)));
                    adj[p as usize] = list;
                }
                back.sort_unstable();
                back.dedup();
                let groups: Vec<(u32, Vec<u32>)> = back
                    .chunk_by(|a, b| a.0 == b.0)
                    .map(|g| (g[0].0, g.iter().map(|x| x.1).collect()))
                    .collect();
                let updates = par_map(&groups, threads, 0, |(j, add), _| {
                    let mut list = adj[*j as usize].clone();
                    for &p in add {
                        if p != *j && !list.contains(&p) {
                            list.push(p);
                        }
                    }
                    if list.len() > r {
                        let mut cands: Vec<Near> = list
                            .iter()
                            .map(|&x| Near(space.between(*j, x), x))
                            .collect();
                        cands.sort();
                        list = robust_prune(space, &cands, factor, r);
                    }
                    list
                });
                for ((j, _), list) in groups.iter().zip(updates) {
                    adj[*j as usize] = list;
                }
                at += batch.len();
                size = (size * 2).min(most);
            }
        }
        Graph {
            m,
            entry: medoid,
            max_level: 0,
            base: Compact::from_lists(n, |node, out| out.extend_from_slice(&adj[node as usize])),
            upper: vec![Vec::new(); n],
        }
    }
}
