//! The scalar formulas, generic over `f32` and `f64`.
//!
//! KEEP IN SYNC with `shaders/divergence.wgsl`: the f32 instantiation of every
//! function here is mirrored, step for step, by the WGSL kernel (same names,
//! same order of operations, same constants). A change on one side is a
//! change on both.
//!
//! KEEP IN SYNC with `shaders/divergence_f64.wgsl` too: the GPU f64 kernel
//! mirrors the f64 instantiation of `divergences` the same way (its constants
//! are checked against these by `tests/shader.rs`).
//!
//! # Formulation (DESIGN §2)
//!
//! Write σ = m·2^k with m ∈ [1, 2) (exact, from the bits; subnormals are
//! normalised with integer operations only). Then, with K = k1 − k2:
//!
//! * entropy H(p1) = ½(1 + ln 2π) + ln σ1, with our own `ln` (fdlibm's
//!   reduction and minimax polynomial, ln 2 split into high and low parts);
//! * mean part M = ½·D², D = |μ1 − μ2| / σ2 = q·2^E with q = m_h / m2 ∈ (½, 2):
//!   the square is formed from q and the exponent is carried as an integer, so
//!   nothing overflows or underflows before the result does;
//! * scale part V(ρ) = ½(ρ² − 1) − ln ρ, ρ = σ1/σ2:
//!   - near ρ = 1 (ρ ∈ [½, 2], where σ1 − σ2 is exact), with
//!     w = (σ1 − σ2)/(σ1 + σ2) ∈ [−⅓, ⅓] and ln ρ = 2·atanh(w):
//!     V = 2w²·[(2 − w)/(1 − w)² − w·R(w²)], R(t) = Σ t^j/(2j + 3),
//!     a sum of terms of one sign — no `ln`, no cancellation;
//!   - elsewhere V = ½r²·2^(2K) − ½ − ln ρ with r = m1/m2 and
//!     ln ρ = ln r + K·ln 2 (condition number below 4.2 there);
//! * KL = M + V, every piece non-negative; the large terms are summed at a
//!   common power-of-two scale, so overflow is detected by comparison and
//!   +inf is produced explicitly rather than by IEEE overflow;
//! * cross-entropy = H(p1) + KL.

// Constants are written as published (fdlibm), digits beyond the type's precision included.
#![allow(clippy::excessive_precision)]

use core::ops::{Add, Div, Mul, Neg, Sub};

/// Exponent marker for "this term is absent" (far below any real exponent).
const NO_EXP: i32 = -100_000;

/// The floating-point operations the formulas need, for `f32` and `f64`.
pub trait Real:
    Copy
    + PartialOrd
    + Add<Output = Self>
    + Sub<Output = Self>
    + Mul<Output = Self>
    + Div<Output = Self>
    + Neg<Output = Self>
    + Send
    + Sync
    + 'static
{
    /// 0.
    const ZERO: Self;
    /// 0.5.
    const HALF: Self;
    /// 1.
    const ONE: Self;
    /// 2.
    const TWO: Self;
    /// The largest finite value.
    const MAX: Self;
    /// The smallest positive normal value.
    const MIN_POSITIVE: Self;
    /// +∞.
    const INFINITY: Self;
    /// A quiet NaN.
    const NAN: Self;
    /// √2, rounded.
    const SQRT2: Self;
    /// High part of ln 2 (trailing mantissa bits zero, so k·LN2_HI is exact for small k).
    const LN2_HI: Self;
    /// ln 2 − LN2_HI.
    const LN2_LO: Self;
    /// ½(1 + ln 2π): the entropy of N(0, 1).
    const HALF_LN_2PI_E: Self;
    /// 2^(MAX_EXP−1) region: above this |μ|, μ1 − μ2 may overflow and is formed from halves.
    const HALVE_THRESHOLD: Self;
    /// Largest binary exponent + 1 (128 or 1024): 2^MAX_EXP is the first power of two past MAX.
    const MAX_EXP: i32;
    /// Smallest normal binary exponent (−126 or −1022).
    const MIN_EXP: i32;
    /// Terms up to 2^SAFE_EXP are summed directly; beyond, at a common scale.
    const SAFE_EXP: i32;
    /// fdlibm's minimax coefficients Lg1, Lg2, … for ln(1+f) on the reduced range.
    const LN_COEFFS: &'static [Self];
    /// R(t) = Σ t^j/(2j+3): 1/3, 1/5, 1/7, … (as many as the precision needs for t ≤ 1/9).
    const ATANH_COEFFS: &'static [Self];

    /// `m, k` with `self = m·2^k`, `m ∈ [1, 2)`, for positive finite `self`
    /// (subnormals included); for other inputs some value, without panicking.
    fn frexp1(self) -> (Self, i32);
    /// 2^e for `MIN_EXP ≤ e < MAX_EXP`; 0 below `MIN_EXP` (flush, as the GPU
    /// does); 2^(MAX_EXP−1) above (callers select such values away).
    fn pow2(e: i32) -> Self;
    /// The value of a small integer.
    fn from_i32(i: i32) -> Self;
    /// |self|.
    fn abs(self) -> Self;
    /// true if neither NaN nor infinite.
    fn is_finite(self) -> bool;
}

macro_rules! impl_real {
    ($t:ty, $bits:ty, $mant:expr, $bias:expr, $max_exp:expr, $safe:expr,
     $ln2_hi:expr, $ln2_lo:expr, $ln:expr, $atanh:expr) => {
        impl Real for $t {
            const ZERO: Self = 0.0;
            const HALF: Self = 0.5;
            const ONE: Self = 1.0;
            const TWO: Self = 2.0;
            const MAX: Self = <$t>::MAX;
            const MIN_POSITIVE: Self = <$t>::MIN_POSITIVE;
            const INFINITY: Self = <$t>::INFINITY;
            const NAN: Self = <$t>::NAN;
            const SQRT2: Self = core::f64::consts::SQRT_2 as $t;
            const LN2_HI: Self = $ln2_hi;
            const LN2_LO: Self = $ln2_lo;
            const HALF_LN_2PI_E: Self = 1.418_938_533_204_672_741_780_329_736_4 as $t;
            const HALVE_THRESHOLD: Self = <$t>::MAX * 0.25;
            const MAX_EXP: i32 = $max_exp;
            const MIN_EXP: i32 = 1 - $bias;
            const SAFE_EXP: i32 = $safe;
            const LN_COEFFS: &'static [Self] = &$ln;
            const ATANH_COEFFS: &'static [Self] = &$atanh;

            #[inline(always)]
            fn frexp1(self) -> (Self, i32) {
                const MANT: u32 = $mant;
                const MANT_MASK: $bits = ((1 as $bits) << MANT) - 1;
                const EXP_MASK: $bits = (2 * ($bias) + 1) as $bits;
                const ONE_BITS: $bits = (($bias) as $bits) << MANT;
                // A subnormal is first scaled by 2^MANT (exact); branch-free, so
                // that batch loops vectorise. (The WGSL kernel normalises with
                // integer operations instead, as devices may flush subnormals;
                // both are exact, so the results are identical.)
                let subnormal = (self.to_bits() >> MANT) & EXP_MASK == 0;
                let scale = <$t>::from_bits(((MANT + $bias) as $bits) << MANT);
                let x = if subnormal { self * scale } else { self };
                let bits = x.to_bits();
                let exp_field = ((bits >> MANT) & EXP_MASK) as i32;
                let shift = if subnormal { MANT as i32 } else { 0 };
                (
                    <$t>::from_bits((bits & MANT_MASK) | ONE_BITS),
                    exp_field - $bias - shift,
                )
            }

            #[inline(always)]
            fn pow2(e: i32) -> Self {
                // Clamped so that any e is safe: below MIN_EXP the bits are 0 (+0.0).
                let c = e.clamp(-$bias, $bias);
                <$t>::from_bits(((c + $bias) as $bits) << $mant)
            }

            #[inline(always)]
            fn from_i32(i: i32) -> Self {
                i as $t
            }

            #[inline(always)]
            fn abs(self) -> Self {
                <$t>::abs(self)
            }

            #[inline(always)]
            fn is_finite(self) -> bool {
                <$t>::is_finite(self)
            }
        }
    };
}

impl_real!(
    f32,
    u32,
    23,
    127,
    128,
    64,
    // 0x3f317180, 0x3717f7d1 (FreeBSD e_logf.c)
    6.931_381_225_6e-1,
    9.058_000_614_5e-6,
    // Lg1..Lg4 of FreeBSD e_logf.c (0xaaaaaa.0p-24, 0xccce13.0p-25, 0x91e9ee.0p-25, 0xf89e26.0p-26)
    [
        0.666_666_626_93,
        0.400_009_721_52,
        0.284_987_866_88,
        0.242_790_788_41
    ],
    [
        1.0 / 3.0,
        1.0 / 5.0,
        1.0 / 7.0,
        1.0 / 9.0,
        1.0 / 11.0,
        1.0 / 13.0,
        1.0 / 15.0
    ]
);

impl_real!(
    f64,
    u64,
    52,
    1023,
    1024,
    512,
    // fdlibm e_log.c
    6.931_471_803_691_238_164_90e-1,
    1.908_214_929_270_587_700_02e-10,
    [
        6.666_666_666_666_735_130e-1,
        3.999_999_999_940_941_908e-1,
        2.857_142_874_366_239_149e-1,
        2.222_219_843_214_978_396e-1,
        1.818_357_216_161_805_012e-1,
        1.531_383_769_920_937_332e-1,
        1.479_819_860_511_658_591e-1
    ],
    [
        1.0 / 3.0,
        1.0 / 5.0,
        1.0 / 7.0,
        1.0 / 9.0,
        1.0 / 11.0,
        1.0 / 13.0,
        1.0 / 15.0,
        1.0 / 17.0,
        1.0 / 19.0,
        1.0 / 21.0,
        1.0 / 23.0,
        1.0 / 25.0,
        1.0 / 27.0,
        1.0 / 29.0,
        1.0 / 31.0,
        1.0 / 33.0
    ]
);

/// Horner evaluation of `c[0] + t·(c[1] + t·(c[2] + …))`.
#[inline(always)]
fn horner<T: Real>(coeffs: &[T], t: T) -> T {
    let mut acc = T::ZERO;
    for &c in coeffs.iter().rev() {
        acc = acc * t + c;
    }
    acc
}

/// `ln(x·2^k)` for positive normal `x` (any `k`): fdlibm's algorithm.
///
/// `x = m·2^e` with `m ∈ [√½, √2)`, `f = m − 1` (exact), `s = f/(2 + f)`,
/// `ln(1 + f) = f − ½f² + s·(½f² + R(s²))`, and `(e + k)·ln 2` added in two parts.
#[inline(always)]
pub fn ln_scaled<T: Real>(x: T, k: i32) -> T {
    let (m0, e0) = x.frexp1();
    let high = m0 > T::SQRT2;
    let m = sel(high, m0 * T::HALF, m0);
    let e = e0 + i32::from(high);
    let dk = T::from_i32(e + k);
    let f = m - T::ONE;
    let s = f / (T::TWO + f);
    let z = s * s;
    let r = z * horner(T::LN_COEFFS, z);
    let hfsq = T::HALF * f * f;
    dk * T::LN2_HI - ((hfsq - (s * (hfsq + r) + dk * T::LN2_LO)) - f)
}

/// Natural logarithm of a positive finite `x` (subnormals included).
#[inline]
pub fn ln<T: Real>(x: T) -> T {
    let (m, e) = x.frexp1();
    ln_scaled(m, e)
}

/// `V(ρ) = ½(ρ² − 1) − ln ρ` for `ρ ∈ [½, 2]`, from `w = (ρ − 1)/(ρ + 1) ∈ [−⅓, ⅓]`.
///
/// `V = 2w²·[(2 − w)/(1 − w)² − w·R(w²)]` with `R(t) = Σ t^j/(2j + 3)`: a
/// `log1pmx`-type kernel that uses only +, −, ×, ÷.
#[inline(always)]
pub fn scale_part_near<T: Real>(w: T) -> T {
    let t = w * w;
    let one_minus_w = T::ONE - w;
    let lead = (T::TWO - w) / (one_minus_w * one_minus_w);
    let tail = w * horner(T::ATANH_COEFFS, t);
    T::TWO * t * (lead - tail)
}

/// `if c { a } else { b }` on values already computed: a select, not a branch.
#[inline(always)]
fn sel<T>(c: bool, a: T, b: T) -> T {
    if c {
        a
    } else {
        b
    }
}

/// Cross-entropy, KL divergence and entropy of p1 for one pair, in one precision.
///
/// The result is `[cross_entropy, kl, entropy]`. Invalid input (σ ≤ 0, NaN or
/// ±∞ anywhere) gives NaN in all three; callers that must reject it validate
/// first (see [`crate::validate`]).
///
/// Branch-free: every path is computed and the right one selected, so that
/// loops over this function vectorise (see [`crate::cpu`]); no input, however
/// invalid, can make it panic.
#[inline(always)]
pub fn divergences<T: Real>(mu1: T, sigma1: T, mu2: T, sigma2: T) -> [T; 3] {
    let valid = sigma1 > T::ZERO
        && sigma1 <= T::MAX
        && sigma2 > T::ZERO
        && sigma2 <= T::MAX
        && mu1.is_finite()
        && mu2.is_finite();
    let (m1, k1) = sigma1.frexp1();
    let (m2, k2) = sigma2.frexp1();
    let kk = k1 - k2;

    // Entropy of p1.
    let entropy = T::HALF_LN_2PI_E + ln_scaled(m1, k1);

    // Mean part M = ½q²·2^e_m: D = |μ1 − μ2|/σ2 = q·2^(e_m/2).
    let halve = mu1.abs() > T::HALVE_THRESHOLD || mu2.abs() > T::HALVE_THRESHOLD;
    let diff = sel(halve, T::HALF * mu1 - T::HALF * mu2, mu1 - mu2);
    let has_diff = diff != T::ZERO;
    let (mh, kh) = sel(has_diff, diff.abs(), T::ONE).frexp1();
    let q = sel(has_diff, mh / m2, T::ZERO);
    let e_m = sel(has_diff, 2 * (kh - k2 + i32::from(halve)), NO_EXP);

    // Scale part: V = ½r²·2^e_b + v_rest; near ρ = 1 the series, else ½ρ² − ½ − ln ρ.
    let kc = kk.clamp(-1, 1);
    let a = T::pow2(kc) * m1; // ρ·m2 when |K| ≤ 1
    let near = kk == kc && a <= T::TWO * m2 && T::TWO * a >= m2;
    let w = (a - m2) / (a + m2);
    let v_near = scale_part_near(w);
    let r_far = m1 / m2;
    let v_far = -T::HALF - ln_scaled(r_far, kk);
    let r = sel(near, T::ZERO, r_far);
    let e_b = sel(near, NO_EXP, 2 * kk);
    let v_rest = sel(near, v_near, v_far);

    let g = e_m.max(e_b);
    // Ordinary magnitudes: sum directly.
    let m_term = T::HALF * q * q * T::pow2(e_m);
    let b_term = T::HALF * r * r * T::pow2(e_b);
    let kl_direct = m_term + (b_term + v_rest);
    // At least one term beyond 2^(SAFE_EXP−3): sum the large terms at scale
    // 2^−g (v_rest, at most a few hundred, is far below their last bit) and
    // compare with MAX at that scale.
    let y = T::HALF * q * q * T::pow2(e_m - g) + T::HALF * r * r * T::pow2(e_b - g);
    let hi = g - T::SAFE_EXP;
    let limit = T::MAX * T::pow2(-T::SAFE_EXP) * T::pow2(-hi);
    let kl_scaled = y * T::pow2(hi) * T::pow2(T::SAFE_EXP);
    let big = g > T::SAFE_EXP;
    let kl_inf = big && (g >= T::MAX_EXP + 3 || y > limit);
    let kl = sel(big, kl_scaled, kl_direct);

    let cross_entropy = entropy + kl;
    let ce = sel(kl_inf, T::INFINITY, cross_entropy);
    let kl = sel(kl_inf, T::INFINITY, kl);
    [
        sel(valid, ce, T::NAN),
        sel(valid, kl, T::NAN),
        sel(valid, entropy, T::NAN),
    ]
}

/// The textbook f64 formulas, for comparison in tests and benchmarks only.
#[doc(hidden)]
pub fn textbook_f64(mu1: f64, s1: f64, mu2: f64, s2: f64) -> [f64; 3] {
    let v1 = s1 * s1;
    let v2 = s2 * s2;
    let d = mu1 - mu2;
    let ce = 0.5 * (2.0 * core::f64::consts::PI * v2).ln() + (d * d + v1) / (2.0 * v2);
    let kl = 0.5 * (d * d / v2 + v1 / v2 - (v1 / v2).ln() - 1.0);
    let h = 0.5 * (2.0 * core::f64::consts::PI * core::f64::consts::E * v1).ln();
    [ce, kl, h]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frexp1_normal_and_subnormal() {
        for &x in &[1.0f32, 1.5, 3.0, 0.1, f32::MAX, f32::MIN_POSITIVE] {
            let (m, k) = x.frexp1();
            assert!((1.0..2.0).contains(&m), "{x}: {m}");
            assert_eq!(m as f64 * 2f64.powi(k), x as f64);
        }
        for bits in [1u32, 2, 3, 0x7fffff, 0x400000, 0x12345] {
            let x = f32::from_bits(bits);
            let (m, k) = x.frexp1();
            assert!((1.0..2.0).contains(&m), "{x}: {m}");
            assert_eq!(m as f64 * 2f64.powi(k), x as f64, "bits {bits:#x}");
        }
        for bits in [1u64, 0xfffffffffffff, 0x8000000000000] {
            let x = f64::from_bits(bits);
            let (m, k) = x.frexp1();
            assert!((1.0..2.0).contains(&m));
            assert_eq!(m * 2f64.powi(k + 1074) * 2f64.powi(-1074), x);
        }
    }

    #[test]
    fn ln_matches_std() {
        let mut worst32 = 0.0f64;
        let mut worst64 = 0.0f64;
        let mut x = 1e-40f64;
        while x < 1e38 {
            let y32 = ln(x as f32) as f64;
            let t32 = (x as f32 as f64).ln();
            worst32 = worst32.max((y32 - t32).abs() / t32.abs().max(1.0));
            let y64 = ln(x);
            worst64 = worst64.max((y64 - x.ln()).abs() / x.ln().abs().max(1.0));
            x *= 1.000_37;
        }
        assert!(worst32 < 1.2e-7, "f32 ln error {worst32}");
        assert!(worst64 < 2.3e-16, "f64 ln error {worst64}");
    }

    #[test]
    fn identical_distributions_give_exact_zero() {
        for &(mu, s) in &[(0.0f32, 1.0f32), (-3.5, 1e-30), (1e30, 7.0), (0.0, 1e-45)] {
            let [_, kl, _] = divergences(mu, s, mu, s);
            assert_eq!(kl, 0.0);
        }
        let [_, kl, _] = divergences(-0.0f32, 2.0, 0.0, 2.0);
        assert_eq!(kl, 0.0);
    }

    #[test]
    fn invalid_gives_nan() {
        for &(m1, s1) in &[
            (0.0f32, 0.0f32),
            (0.0, -1.0),
            (f32::NAN, 1.0),
            (0.0, f32::INFINITY),
        ] {
            assert!(divergences(m1, s1, 0.0, 1.0).iter().all(|v| v.is_nan()));
        }
    }
}
