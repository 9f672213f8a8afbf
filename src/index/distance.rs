//! Distance kernels: squared L2 and inner product over f32 and over 8-bit codes,
//! vectorized with AVX2 (+ FMA) when the CPU has them (checked once at run time),
//! portable code otherwise.

use std::sync::OnceLock;

type Kernel = fn(&[f32], &[f32]) -> f32;

/// Lanes summed independently (one AVX register; wider was slower here).
const LANES: usize = 8;

#[inline(always)]
fn l2_portable(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0f32; LANES];
    let (ca, cb) = (a.chunks_exact(LANES), b.chunks_exact(LANES));
    let tail: f32 = ca
        .remainder()
        .iter()
        .zip(cb.remainder())
        .map(|(x, y)| (x - y) * (x - y))
        .sum();
    for (x, y) in ca.zip(cb) {
        for i in 0..LANES {
            let d = x[i] - y[i];
            acc[i] += d * d;
        }
    }
    acc.iter().sum::<f32>() + tail
}

#[inline(always)]
fn dot_portable(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0f32; LANES];
    let (ca, cb) = (a.chunks_exact(LANES), b.chunks_exact(LANES));
    let tail: f32 = ca
        .remainder()
        .iter()
        .zip(cb.remainder())
        .map(|(x, y)| x * y)
        .sum();
    for (x, y) in ca.zip(cb) {
        for i in 0..LANES {
            acc[i] += x[i] * y[i];
        }
    }
    acc.iter().sum::<f32>() + tail
}

type ByteKernel = fn(&[u8], &[u8]) -> u32;

#[inline(always)]
fn l2_u8_portable(a: &[u8], b: &[u8]) -> u32 {
    let mut acc = [0u32; 32];
    let (ca, cb) = (a.chunks_exact(32), b.chunks_exact(32));
    let tail: u32 = ca
        .remainder()
        .iter()
        .zip(cb.remainder())
        .map(|(x, y)| {
            let d = i32::from(*x) - i32::from(*y);
            (d * d) as u32
        })
        .sum();
    for (x, y) in ca.zip(cb) {
        for i in 0..32 {
            let d = i32::from(x[i]) - i32::from(y[i]);
            acc[i] += (d * d) as u32;
        }
    }
    acc.iter().sum::<u32>() + tail
}

#[inline(always)]
fn dot_u8_portable(a: &[u8], b: &[u8]) -> u32 {
    let mut acc = [0u32; 32];
    let (ca, cb) = (a.chunks_exact(32), b.chunks_exact(32));
    let tail: u32 = ca
        .remainder()
        .iter()
        .zip(cb.remainder())
        .map(|(x, y)| u32::from(*x) * u32::from(*y))
        .sum();
    for (x, y) in ca.zip(cb) {
        for i in 0..32 {
            acc[i] += u32::from(x[i]) * u32::from(y[i]);
        }
    }
    acc.iter().sum::<u32>() + tail
}

#[cfg(target_arch = "x86_64")]
mod avx_u8 {
    use std::arch::x86_64::{
        __m128i, __m256i, _mm256_add_epi32, _mm256_cvtepu8_epi16, _mm256_madd_epi16,
        _mm256_setzero_si256, _mm256_storeu_si256, _mm256_sub_epi16, _mm_loadu_si128,
    };

    /// Sums `f(x, y)` (pairwise 16-bit products, added in pairs into 32-bit lanes) over
    /// 16 codes at a time, widened to 16 bits.
    ///
    /// # Safety
    /// The CPU must support AVX2; `a` and `b` have the same length.
    #[target_feature(enable = "avx2")]
    unsafe fn sum16(a: &[u8], b: &[u8], l2: bool) -> u32 {
        let n = a.len().min(b.len());
        let mut acc = _mm256_setzero_si256();
        let mut i = 0;
        while i + 16 <= n {
            // SAFETY: i + 16 <= n, so both 16-byte loads stay inside the slices.
            let (va, vb) = unsafe {
                (
                    _mm256_cvtepu8_epi16(_mm_loadu_si128(a.as_ptr().add(i).cast::<__m128i>())),
                    _mm256_cvtepu8_epi16(_mm_loadu_si128(b.as_ptr().add(i).cast::<__m128i>())),
                )
            };
            let prod = if l2 {
                let d = _mm256_sub_epi16(va, vb);
                _mm256_madd_epi16(d, d)
            } else {
                _mm256_madd_epi16(va, vb)
            };
            acc = _mm256_add_epi32(acc, prod);
            i += 16;
        }
        let mut lanes = [0i32; 8];
        // SAFETY: `lanes` is 32 bytes, the size of one register.
        unsafe { _mm256_storeu_si256(lanes.as_mut_ptr().cast::<__m256i>(), acc) };
        let mut sum = lanes.iter().map(|x| *x as u32).sum::<u32>();
        for j in i..n {
            let (x, y) = (i32::from(a[j]), i32::from(b[j]));
            sum += if l2 {
                ((x - y) * (x - y)) as u32
            } else {
                (x * y) as u32
            };
        }
        sum
    }

    pub fn l2_safe(a: &[u8], b: &[u8]) -> u32 {
        // SAFETY: chosen only after `is_x86_feature_detected!` found AVX2.
        unsafe { sum16(a, b, true) }
    }

    pub fn dot_safe(a: &[u8], b: &[u8]) -> u32 {
        // SAFETY: as above.
        unsafe { sum16(a, b, false) }
    }
}

fn byte_kernels() -> &'static (ByteKernel, ByteKernel) {
    static K: OnceLock<(ByteKernel, ByteKernel)> = OnceLock::new();
    K.get_or_init(|| {
        #[cfg(target_arch = "x86_64")]
        {
            if is_x86_feature_detected!("avx2") {
                return (
                    avx_u8::l2_safe as ByteKernel,
                    avx_u8::dot_safe as ByteKernel,
                );
            }
        }
        (l2_u8_portable as ByteKernel, dot_u8_portable as ByteKernel)
    })
}

/// Squared Euclidean distance of 8-bit codes.
#[inline]
pub fn l2_u8(a: &[u8], b: &[u8]) -> u32 {
    (byte_kernels().0)(a, b)
}

/// Inner product of 8-bit codes.
#[inline]
pub fn dot_u8(a: &[u8], b: &[u8]) -> u32 {
    (byte_kernels().1)(a, b)
}

#[cfg(target_arch = "x86_64")]
mod avx {
    use std::arch::x86_64::{
        __m256, _mm256_add_ps, _mm256_fmadd_ps, _mm256_loadu_ps, _mm256_setzero_ps,
        _mm256_storeu_ps, _mm256_sub_ps,
    };

    /// The sum of the 8 lanes.
    ///
    /// # Safety
    /// The CPU must support AVX.
    #[target_feature(enable = "avx2,fma")]
    unsafe fn lanes(v: __m256) -> f32 {
        let mut out = [0f32; 8];
        // SAFETY: `out` is 32 bytes, the size of one register.
        unsafe { _mm256_storeu_ps(out.as_mut_ptr(), v) };
        out.iter().sum()
    }

    /// `sum f(a[i], b[i])` over both slices, with `f` a fused multiply-add on 8 lanes at a
    /// time in two independent chains (one chain waits on the add latency at every step):
    /// squared differences for L2, products for the inner product.
    ///
    /// # Safety
    /// The CPU must support AVX2 and FMA.
    #[target_feature(enable = "avx2,fma")]
    unsafe fn fused<const L2: bool>(a: &[f32], b: &[f32]) -> f32 {
        #[inline(always)]
        fn step<const L2: bool>(x: __m256, y: __m256, acc: __m256) -> __m256 {
            // SAFETY: only called from `fused`, which runs with AVX2 and FMA enabled.
            unsafe {
                if L2 {
                    let d = _mm256_sub_ps(x, y);
                    _mm256_fmadd_ps(d, d, acc)
                } else {
                    _mm256_fmadd_ps(x, y, acc)
                }
            }
        }
        let n = a.len().min(b.len());
        let (mut s0, mut s1) = (_mm256_setzero_ps(), _mm256_setzero_ps());
        let (pa, pb) = (a.as_ptr(), b.as_ptr());
        let mut i = 0;
        // SAFETY (every load below): i + 8 (or i + 16) <= n, inside both slices.
        while i + 16 <= n {
            unsafe {
                s0 = step::<L2>(_mm256_loadu_ps(pa.add(i)), _mm256_loadu_ps(pb.add(i)), s0);
                s1 = step::<L2>(
                    _mm256_loadu_ps(pa.add(i + 8)),
                    _mm256_loadu_ps(pb.add(i + 8)),
                    s1,
                );
            }
            i += 16;
        }
        if i + 8 <= n {
            unsafe {
                s0 = step::<L2>(_mm256_loadu_ps(pa.add(i)), _mm256_loadu_ps(pb.add(i)), s0);
            }
            i += 8;
        }
        let tail: f32 = a[i..n]
            .iter()
            .zip(&b[i..n])
            .map(|(x, y)| if L2 { (x - y) * (x - y) } else { x * y })
            .sum();
        // SAFETY: AVX2 and FMA are enabled here.
        unsafe { lanes(_mm256_add_ps(s0, s1)) + tail }
    }

    pub fn l2_safe(a: &[f32], b: &[f32]) -> f32 {
        // SAFETY: chosen only after `is_x86_feature_detected!` found AVX2 and FMA.
        unsafe { fused::<true>(a, b) }
    }

    pub fn dot_safe(a: &[f32], b: &[f32]) -> f32 {
        // SAFETY: as above.
        unsafe { fused::<false>(a, b) }
    }
}

fn kernels() -> &'static (Kernel, Kernel) {
    static K: OnceLock<(Kernel, Kernel)> = OnceLock::new();
    K.get_or_init(|| {
        #[cfg(target_arch = "x86_64")]
        {
            if is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma") {
                return (avx::l2_safe as Kernel, avx::dot_safe as Kernel);
            }
        }
        (l2_portable as Kernel, dot_portable as Kernel)
    })
}

/// Squared Euclidean distance.
#[inline]
pub fn l2(a: &[f32], b: &[f32]) -> f32 {
    (kernels().0)(a, b)
}

/// Inner product.
#[inline]
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    (kernels().1)(a, b)
}

/// Bits that differ between two binary vectors packed 32 bits to a word (each `f32`
/// only carries bits: see `crate::schema::vectors`).
#[inline]
pub fn hamming(a: &[f32], b: &[f32]) -> f32 {
    let mut n = 0u32;
    for (x, y) in a.iter().zip(b) {
        n += (x.to_bits() ^ y.to_bits()).count_ones();
    }
    n as f32
}

/// 0 when every bit of `a` is set in `b` (packed binary vectors), else infinity: the
/// SUBSTRUCTURE test of query `a` against row `b` (SUPERSTRUCTURE swaps them).
#[inline]
pub fn contained(a: &[f32], b: &[f32]) -> f32 {
    let inside = a
        .iter()
        .zip(b)
        .all(|(x, y)| x.to_bits() & y.to_bits() == x.to_bits());
    if inside {
        0.0
    } else {
        f32::INFINITY
    }
}

/// Jaccard distance of two packed binary vectors: `1 - |a and b| / |a or b|`, 1 when
/// both are empty (no bit set in either), as faiss (Milvus's library) scores it.
#[inline]
pub fn jaccard(a: &[f32], b: &[f32]) -> f32 {
    let (mut and, mut or) = (0u32, 0u32);
    for (x, y) in a.iter().zip(b) {
        let (x, y) = (x.to_bits(), y.to_bits());
        and += (x & y).count_ones();
        or += (x | y).count_ones();
    }
    if or == 0 {
        1.0
    } else {
        1.0 - and as f32 / or as f32
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn kernels_agree_with_the_definitions() {
        let a: Vec<f32> = (0..37).map(|i| i as f32 * 0.5).collect();
        let b: Vec<f32> = (0..37).map(|i| 3.0 - i as f32).collect();
        let l2: f32 = a.iter().zip(&b).map(|(x, y)| (x - y) * (x - y)).sum();
        let dot: f32 = a.iter().zip(&b).map(|(x, y)| x * y).sum();
        assert!((super::l2(&a, &b) - l2).abs() < 1e-2);
        assert!((super::dot(&a, &b) - dot).abs() < 1e-2);
        let x: Vec<u8> = (0..70).map(|i| (i * 7 % 256) as u8).collect();
        let y: Vec<u8> = (0..70).map(|i| (255 - i * 3 % 256) as u8).collect();
        let l2: u32 = x
            .iter()
            .zip(&y)
            .map(|(a, b)| ((i32::from(*a) - i32::from(*b)).pow(2)) as u32)
            .sum();
        let dot: u32 = x
            .iter()
            .zip(&y)
            .map(|(a, b)| u32::from(*a) * u32::from(*b))
            .sum();
        assert_eq!(super::l2_u8(&x, &y), l2);
        assert_eq!(super::dot_u8(&x, &y), dot);
    }
}
