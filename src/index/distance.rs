//! Distance kernels: squared L2 and inner product over f32, vectorized with AVX2 + FMA
//! when the CPU has them (checked once at run time), portable code otherwise.

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

#[cfg(target_arch = "x86_64")]
mod avx {
    /// # Safety
    /// The CPU must support AVX2 and FMA.
    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn l2(a: &[f32], b: &[f32]) -> f32 {
        super::l2_portable(a, b)
    }

    /// # Safety
    /// The CPU must support AVX2 and FMA.
    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn dot(a: &[f32], b: &[f32]) -> f32 {
        super::dot_portable(a, b)
    }

    pub fn l2_safe(a: &[f32], b: &[f32]) -> f32 {
        // SAFETY: chosen only after `is_x86_feature_detected!` found AVX2 and FMA.
        unsafe { l2(a, b) }
    }

    pub fn dot_safe(a: &[f32], b: &[f32]) -> f32 {
        // SAFETY: as above.
        unsafe { dot(a, b) }
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
    }
}
