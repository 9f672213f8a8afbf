//! Product quantization of IVF residuals (IVF_PQ, and SCANN's 4-bit codes): each vector's
//! residual from its list's centroid is split into `m` sub-vectors of `dsub` values, each
//! replaced by the nearest of `2^nbits` sub-centroids trained (k-means, as the lists) on
//! that subspace. A query scores a row by table lookups: for L2 `|(q - c) - r|^2` summed
//! over subspaces from a table of `q - c` against every sub-centroid (one table per
//! probed list); for inner products `q.c + q.r`, one table of `q` for every list.

use super::ivf;

/// The trained sub-centroids and every row's codes.
pub struct Pq {
    /// Subspaces.
    pub m: usize,
    /// Values per subspace.
    pub dsub: usize,
    /// Sub-centroids per subspace (`2^nbits`, fewer when there were fewer rows).
    pub ksub: usize,
    /// `m x ksub x dsub` sub-centroids.
    pub centroids: Vec<f32>,
    /// `rows x m` codes.
    pub codes: Vec<u8>,
}

impl Pq {
    /// Trains `m` subspaces of `2^nbits` (at most 256) sub-centroids on the residuals of
    /// `vectors` from the centroids of `owner` (each row's list) and encodes every row.
    pub fn train(
        vectors: &[f32],
        dim: usize,
        lists: &ivf::Ivf,
        m: usize,
        nbits: usize,
        threads: usize,
    ) -> Pq {
        let rows = vectors.len() / dim.max(1);
        let dsub = dim / m.max(1);
        let residuals = residuals(vectors, dim, lists);
        let want = 1usize << nbits.min(8);
        let mut centroids = Vec::new();
        let mut codes = vec![0u8; rows * m];
        let mut sub = vec![0f32; rows * dsub];
        for s in 0..m {
            for r in 0..rows {
                sub[r * dsub..(r + 1) * dsub]
                    .copy_from_slice(&residuals[r * dim + s * dsub..r * dim + (s + 1) * dsub]);
            }
            let trained = ivf::train(&sub, dsub, want, threads, false);
            for (c, members) in trained.lists.iter().enumerate() {
                for &r in members {
                    codes[r as usize * m + s] = c as u8;
                }
            }
            // Every subspace keeps `want` slots (fewer rows than slots: unused zeros, which no
            // code names), so tables line up.
            let mut cs = trained.centroids;
            cs.resize(want * dsub, 0.0);
            centroids.extend_from_slice(&cs);
        }
        Pq {
            m,
            dsub,
            ksub: want,
            centroids,
            codes,
        }
    }

    /// Rebuilds from stored parts.
    pub fn from_parts(
        m: usize,
        dsub: usize,
        ksub: usize,
        centroids: Vec<f32>,
        codes: Vec<u8>,
    ) -> Pq {
        Pq {
            m,
            dsub,
            ksub,
            centroids,
            codes,
        }
    }

    /// The lookup table of `q` (`m x ksub`): squared L2 (`ip` false) or inner product of
    /// each sub-vector of `q` with each sub-centroid.
    pub fn table(&self, q: &[f32], ip: bool) -> Vec<f32> {
        let mut t = vec![0f32; self.m * self.ksub];
        for s in 0..self.m {
            let qs = &q[s * self.dsub..(s + 1) * self.dsub];
            for c in 0..self.ksub {
                let at = (s * self.ksub + c) * self.dsub;
                let cv = &self.centroids[at..at + self.dsub];
                t[s * self.ksub + c] = if ip {
                    qs.iter().zip(cv).map(|(a, b)| a * b).sum()
                } else {
                    qs.iter().zip(cv).map(|(a, b)| (a - b) * (a - b)).sum()
                };
            }
        }
        t
    }

    /// Row `r`'s value under `table`.
    #[inline]
    pub fn lookup(&self, table: &[f32], r: u32) -> f32 {
        let codes = &self.codes[r as usize * self.m..(r as usize + 1) * self.m];
        codes
            .iter()
            .enumerate()
            .map(|(s, c)| table[s * self.ksub + *c as usize])
            .sum()
    }

    /// Bytes in memory.
    pub fn memory_usage(&self) -> usize {
        self.codes.len() + self.centroids.len() * 4
    }
}

/// Every row minus the centroid of its list.
fn residuals(vectors: &[f32], dim: usize, lists: &ivf::Ivf) -> Vec<f32> {
    let mut out = vectors.to_vec();
    for (c, members) in lists.lists.iter().enumerate() {
        let cv = &lists.centroids[c * dim..(c + 1) * dim];
        for &r in members {
            for (x, y) in out[r as usize * dim..(r as usize + 1) * dim]
                .iter_mut()
                .zip(cv)
            {
                *x -= y;
            }
        }
    }
    out
}
