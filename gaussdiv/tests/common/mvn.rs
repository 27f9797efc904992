//! Full-covariance test data shared by tests/mvn_gpu.rs and tests/mvn_device.rs.
use gaussdiv::{Covariance, Float};

/// A small deterministic generator (xorshift), values in [−1, 1).
pub struct Rng(pub u64);
impl Rng {
    pub fn next(&mut self) -> f64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 >> 11) as f64 / (1u64 << 52) as f64 - 1.0
    }
}

/// One side of a pair in each form: (covariance, its Cholesky factor, the
/// precision), row-major, from a random SPD matrix scaled by `scale`.
pub fn spd(rng: &mut Rng, d: usize, scale: f64) -> [Vec<f64>; 3] {
    let b: Vec<f64> = (0..d * d).map(|_| rng.next()).collect();
    let mut a = vec![0.0; d * d];
    for i in 0..d {
        for j in 0..d {
            let s: f64 = (0..d).map(|k| b[i * d + k] * b[j * d + k]).sum();
            a[i * d + j] = scale * (s + if i == j { 0.5 * d as f64 } else { 0.0 });
        }
    }
    // Cholesky
    let mut l = vec![0.0; d * d];
    for j in 0..d {
        let p = a[j * d + j] - (0..j).map(|k| l[j * d + k] * l[j * d + k]).sum::<f64>();
        l[j * d + j] = p.sqrt();
        for i in j + 1..d {
            let s = a[i * d + j] - (0..j).map(|k| l[i * d + k] * l[j * d + k]).sum::<f64>();
            l[i * d + j] = s / l[j * d + j];
        }
    }
    // Precision: (L Lᵀ)⁻¹ column by column (Gauss–Jordan on a copy).
    let mut m = a.clone();
    let mut inv = vec![0.0; d * d];
    for i in 0..d {
        inv[i * d + i] = 1.0;
    }
    for c in 0..d {
        let p = m[c * d + c];
        for j in 0..d {
            m[c * d + j] /= p;
            inv[c * d + j] /= p;
        }
        for r in 0..d {
            if r != c {
                let f = m[r * d + c];
                for j in 0..d {
                    m[r * d + j] -= f * m[c * d + j];
                    inv[r * d + j] -= f * inv[c * d + j];
                }
            }
        }
    }
    for i in 0..d {
        for j in 0..i {
            let v = 0.5 * (inv[i * d + j] + inv[j * d + i]);
            inv[i * d + j] = v;
            inv[j * d + i] = v;
        }
    }
    [a, l, inv]
}

/// `n` random far-apart pairs of dimension `d`: side 1 in form `f1`, side 2
/// in form `f2` (0 covariance, 1 scale_tril, 2 precision), as f64 arrays.
pub fn far_pairs(n: usize, d: usize, f1: usize, f2: usize, seed: u64) -> [Vec<f64>; 4] {
    let mut rng = Rng(seed | 1);
    let (mut mu1, mut m1, mut mu2, mut m2) = (vec![], vec![], vec![], vec![]);
    for i in 0..n {
        let s1 = spd(&mut rng, d, 1.0);
        // The second side 8 times wider or 10 times narrower: far apart
        // (‖N‖_F ≥ ½ even at d = 1, where the variances are within 3× of
        // each other before this scaling).
        let s2 = spd(&mut rng, d, if i % 2 == 0 { 8.0 } else { 0.1 });
        mu1.extend((0..d).map(|_| rng.next()));
        mu2.extend((0..d).map(|_| 2.0 * rng.next()));
        m1.extend_from_slice(&s1[f1]);
        m2.extend_from_slice(&s2[f2]);
    }
    [mu1, m1, mu2, m2]
}

pub fn form<T: Float>(f: usize, v: &[T]) -> Covariance<'_, T> {
    match f {
        0 => Covariance::Cov(v),
        1 => Covariance::ScaleTril(v),
        _ => Covariance::Precision(v),
    }
}
