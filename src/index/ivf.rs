//! IVF_FLAT: k-means centroids (`nlist`) over a sample, every vector in the list of its
//! nearest centroid; a search scans the `nprobe` nearest lists exactly.
//!
//! BIN_IVF_FLAT (binary vectors, packed 32 bits to a word) is the same with Hamming
//! distance to the centroids and each centroid bit the majority of its members' bits.

use super::flat::{self, TopK};
use super::params::Metric;

/// Training points per list, at most (as faiss samples).
const SAMPLE_PER_LIST: usize = 256;
/// k-means iterations.
const ITERATIONS: usize = 10;

/// The trained lists.
#[derive(Debug, Clone, PartialEq)]
pub struct Ivf {
    /// `nlist x dim` centroids.
    pub centroids: Vec<f32>,
    /// Rows of each list.
    pub lists: Vec<Vec<u32>>,
}

/// The distance to a centroid: squared L2 for floats, Hamming for packed bits.
fn coarse(bits: bool) -> fn(&[f32], &[f32]) -> f32 {
    if bits {
        super::distance::hamming
    } else {
        super::distance::l2
    }
}

fn nearest(centroids: &[f32], dim: usize, v: &[f32], bits: bool) -> usize {
    let distance = coarse(bits);
    let mut best = (0, f32::INFINITY);
    for (c, cv) in centroids.chunks_exact(dim).enumerate() {
        let d = distance(v, cv);
        if d < best.1 {
            best = (c, d);
        }
    }
    best.0
}

/// The nearest centroid of every row, computed on `threads` threads.
fn assign(
    centroids: &[f32],
    dim: usize,
    vectors: &[f32],
    threads: usize,
    bits: bool,
) -> Vec<usize> {
    let n = vectors.len() / dim;
    let mut out = vec![0usize; n];
    let chunk = n.div_ceil(threads.max(1)).max(1);
    std::thread::scope(|s| {
        for (part, slot) in out.chunks_mut(chunk).enumerate() {
            s.spawn(move || {
                for (i, o) in slot.iter_mut().enumerate() {
                    let r = part * chunk + i;
                    *o = nearest(centroids, dim, &vectors[r * dim..(r + 1) * dim], bits);
                }
            });
        }
    });
    out
}

/// Trains `nlist` lists over `vectors` (rows of `dim`; packed bits when `bits`) with a
/// fixed seed.
pub fn train(vectors: &[f32], dim: usize, nlist: usize, threads: usize, bits: bool) -> Ivf {
    let n = vectors.len() / dim.max(1);
    let nlist = nlist.min(n).max(1);
    // An evenly strided sample (deterministic).
    let sample_n = n.min(nlist * SAMPLE_PER_LIST);
    let stride = (n / sample_n.max(1)).max(1);
    let sample: Vec<f32> = (0..sample_n)
        .flat_map(|i| {
            vectors[i * stride * dim..(i * stride + 1) * dim]
                .iter()
                .copied()
        })
        .collect();
    let pick = (sample_n / nlist).max(1);
    let mut centroids: Vec<f32> = (0..nlist)
        .flat_map(|c| {
            let r = (c * pick).min(sample_n - 1);
            sample[r * dim..(r + 1) * dim].to_vec()
        })
        .collect();
    for _ in 0..ITERATIONS {
        let owner = assign(&centroids, dim, &sample, threads, bits);
        if bits {
            majority(&mut centroids, dim, &sample, &owner, nlist);
            continue;
        }
        let mut sums = vec![0f64; nlist * dim];
        let mut counts = vec![0usize; nlist];
        for (r, &c) in owner.iter().enumerate() {
            counts[c] += 1;
            for (s, x) in sums[c * dim..(c + 1) * dim]
                .iter_mut()
                .zip(&sample[r * dim..(r + 1) * dim])
            {
                *s += f64::from(*x);
            }
        }
        for c in 0..nlist {
            if counts[c] == 0 {
                continue; // an empty list keeps its centroid
            }
            for d in 0..dim {
                centroids[c * dim + d] = (sums[c * dim + d] / counts[c] as f64) as f32;
            }
        }
    }
    let owner = assign(&centroids, dim, vectors, threads, bits);
    let mut lists = vec![Vec::new(); nlist];
    for (r, &c) in owner.iter().enumerate() {
        lists[c].push(r as u32);
    }
    Ivf { centroids, lists }
}

/// Sets each centroid's bits to the majority of its members' (ties to 0); a centroid
/// with no members keeps its bits. Counts one centroid at a time (`dim x 32` counters).
fn majority(centroids: &mut [f32], dim: usize, sample: &[f32], owner: &[usize], nlist: usize) {
    let mut members: Vec<Vec<usize>> = vec![Vec::new(); nlist];
    for (r, &c) in owner.iter().enumerate() {
        members[c].push(r);
    }
    let mut ones = vec![0u32; dim * 32];
    for (c, rows) in members.iter().enumerate() {
        if rows.is_empty() {
            continue;
        }
        ones.iter_mut().for_each(|x| *x = 0);
        for &r in rows {
            for (w, x) in sample[r * dim..(r + 1) * dim].iter().enumerate() {
                let word = x.to_bits();
                for b in 0..32 {
                    ones[w * 32 + b] += (word >> b) & 1;
                }
            }
        }
        for w in 0..dim {
            let mut word = 0u32;
            for b in 0..32 {
                if ones[w * 32 + b] * 2 > rows.len() as u32 {
                    word |= 1 << b;
                }
            }
            centroids[c * dim + w] = f32::from_bits(word);
        }
    }
}

impl Ivf {
    /// The `nprobe` lists nearest to `query` (packed bits when `bits`), nearest first.
    pub fn probes(&self, query: &[f32], dim: usize, nprobe: usize, bits: bool) -> Vec<u32> {
        let distance = coarse(bits);
        let mut probes = TopK::new(nprobe.max(1), Metric::L2);
        for (c, cv) in self.centroids.chunks_exact(dim).enumerate() {
            probes.push(c as u32, distance(query, cv));
        }
        probes.into_sorted().into_iter().map(|(c, _)| c).collect()
    }

    /// The best `k` rows among the `nprobe` lists nearest to `query`.
    #[allow(clippy::too_many_arguments)] // the index's parts are passed in, not owned
    pub fn search(
        &self,
        metric: Metric,
        vectors: &[f32],
        dim: usize,
        query: &[f32],
        k: usize,
        nprobe: usize,
        accept: Option<&flat::Accept<'_>>,
    ) -> Vec<(u32, f32)> {
        let mut top = TopK::new(k, metric);
        for c in self.probes(query, dim, nprobe, metric.is_binary()) {
            for &r in &self.lists[c as usize] {
                if accept.is_some_and(|a| !a(r)) {
                    continue;
                }
                let v = &vectors[r as usize * dim..(r as usize + 1) * dim];
                top.push(r, flat::score(metric, query, v));
            }
        }
        top.into_sorted()
    }
}
