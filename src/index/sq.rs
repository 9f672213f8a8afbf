//! 8-bit scalar quantization (HNSW_SQ's `sq_type: SQ8`): every value becomes a code
//! 0-255 on one scale shared by all dimensions (`x = min + code * step`), so distances
//! are exact integer sums over codes, times `step^2`: a quarter of the memory and the
//! bandwidth of floats.

use super::distance;
use super::graph::{self, Space};

/// Quantized vectors.
pub struct Sq8 {
    /// Rows of `dim` codes.
    pub codes: Vec<u8>,
    /// Dimension.
    pub dim: usize,
    /// The value of code 0.
    pub min: f32,
    /// The value between consecutive codes.
    pub step: f32,
    /// Inner product instead of L2.
    pub ip: bool,
    /// Per row, the sum of its codes (for inner products).
    sums: Vec<u32>,
}

impl Sq8 {
    /// Quantizes `vectors` (rows of `dim`).
    pub fn encode(vectors: &[f32], dim: usize, ip: bool) -> Sq8 {
        let (lo, hi) = vectors
            .iter()
            .fold((f32::INFINITY, f32::NEG_INFINITY), |(l, h), x| {
                (l.min(*x), h.max(*x))
            });
        let (min, step) = if lo.is_finite() && hi > lo {
            (lo, (hi - lo) / 255.0)
        } else {
            (if lo.is_finite() { lo } else { 0.0 }, 1.0)
        };
        let mut q = Sq8 {
            codes: Vec::new(),
            dim,
            min,
            step,
            ip,
            sums: Vec::new(),
        };
        q.codes = q.quantize(vectors);
        q.sums = q.row_sums();
        q
    }

    /// Rebuilds from stored codes and scale.
    pub fn from_parts(codes: Vec<u8>, dim: usize, min: f32, step: f32, ip: bool) -> Sq8 {
        let mut q = Sq8 {
            codes,
            dim,
            min,
            step,
            ip,
            sums: Vec::new(),
        };
        q.sums = q.row_sums();
        q
    }

    fn row_sums(&self) -> Vec<u32> {
        self.codes
            .chunks_exact(self.dim.max(1))
            .map(|r| r.iter().map(|c| u32::from(*c)).sum())
            .collect()
    }

    /// The codes of `v` (values outside the trained range are clamped).
    pub fn quantize(&self, v: &[f32]) -> Vec<u8> {
        v.iter()
            .map(|x| ((x - self.min) / self.step).round().clamp(0.0, 255.0) as u8)
            .collect()
    }

    #[inline]
    fn row(&self, n: u32) -> &[u8] {
        &self.codes[n as usize * self.dim..(n as usize + 1) * self.dim]
    }

    /// Distance from codes `q` (whose code sum is `q_sum`) to node `n`.
    #[inline]
    pub fn to(&self, q: &[u8], q_sum: u32, n: u32) -> f32 {
        let v = self.row(n);
        if self.ip {
            let dot = self.dim as f32 * self.min * self.min
                + self.min * self.step * (q_sum + self.sums[n as usize]) as f32
                + self.step * self.step * distance::dot_u8(q, v) as f32;
            1.0 - dot
        } else {
            self.step * self.step * distance::l2_u8(q, v) as f32
        }
    }

    /// Bytes in memory.
    pub fn memory_usage(&self) -> usize {
        self.codes.len() + self.sums.len() * 4
    }
}

impl Space for Sq8 {
    fn len(&self) -> usize {
        self.codes.len() / self.dim.max(1)
    }

    fn between(&self, a: u32, b: u32) -> f32 {
        self.to(self.row(a), self.sums[a as usize], b)
    }

    fn prefetch(&self, n: u32) {
        graph::prefetch(self.row(n));
    }
}
