//! The scalar formulas, generic over `f32` and `f64`.
//!
//! KEEP IN SYNC with `shaders/divergence.wgsl`: the f32 instantiation of every
//! function here is mirrored, step for step, by the WGSL kernel (same names,
//! same order of operations, same constants). A change on one side is a
//! change on both.
//!
//! KEEP IN SYNC with `shaders/divergence_f64.wgsl` too: the GPU f64 kernel
//! mirrors the f64 instantiation of [`measures`] (every measure, every
//! parameterisation) the same way (its constants are checked against these
//! by `tests/shader.rs`; its square root and rounding are its own, as f64
//! builtins are not relied on there).
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
//!
//! # The other measures ([`measures`])
//!
//! * reverse KL: the same with the roles swapped; H(p2) = ½(1 + ln 2π) + ln σ2;
//! * Jeffreys J = ½Δμ²(σ1⁻² + σ2⁻²) + V(ρ) + V(1/ρ): one evaluation of the
//!   KL shape — the ln ρ terms cancel exactly, so far from ρ = 1 the rest is
//!   ½ρ_big² + (½ρs² − 1) (ρs = σ_small/σ_big), without cancellation;
//! * Bhattacharyya D_B = X + ½ ln cosh ln ρ, X = ¼Δμ²/(σ1² + σ2²) =
//!   ¼(Δμ/σ_big)²/(1 + ρs²); ½ ln cosh ln ρ = atanh(w²) near ρ = 1 and
//!   ½(|ln ρ| − ln 2 + ln(1 + ρs²)) elsewhere, ln(1 + x) = 2 atanh(x/(2 + x));
//!   all series in +, −, ×, ÷;
//! * coefficient exp(−D_B) = exp(−X)·√(sech ln ρ), sech = (1 − w²)/(1 + w²) or
//!   2ρs/(1 + ρs²): the large log part never goes through `exp`. An error δ in
//!   X is an error δ *relative* in the coefficient, so X is formed in
//!   two-float accuracy: μ1 − μ2 with its exact rounding error, exact squares
//!   by bit-mask splitting, σ1² + σ2² exactly (or to 2⁻³⁰ from our `exp` with
//!   log-parameters), a corrected quotient. Every cancelling difference of
//!   these error-free transformations is taken on the bit patterns
//!   ([`Real::exact_sub`]), because GPU compilers may rewrite `(a + b) − a`,
//!   `(a/b)·b` or reassociate sums (Mesa's NIR does);
//! * Hellinger √(1 − e⁻ᴰ): for D < ½, √D·√φ(D), φ(D) = (1 − e⁻ᴰ)/D by its
//!   series and √D = hypot(√X, √(log part)) formed without squaring (tiny
//!   distances do not underflow); √(1 − e⁻ᴰ) directly elsewhere;
//! * Wasserstein-2: hypot(Δμ, σ1 − σ2) at a common power-of-two scale, with
//!   σ1 − σ2 formed without cancellation in each parameterisation.
//!
//! # Parameterisations ([`param`])
//!
//! Each input form is converted to the representation above as accurately as
//! it allows: σ² (and 1/σ²) keep their exact mantissas — ρ² is a ratio of
//! inputs, ln σ = ½ ln a, near ρ = 1 u = (σ1² − σ2²)/(σ1² + σ2²) = tanh ln ρ
//! gives V = u²[1/(1 − u) − u·R(u²)] directly; ln σ and ln σ² give ln σ and
//! ln ρ directly (near ρ = 1, V = (ln ρ)²·φ₂(2 ln ρ), φ₂(x) = 2(eˣ − 1 − x)/x²),
//! and σ², 1/σ², ρ² from our own `exp` (fdlibm's reduction and polynomial,
//! under one ulp, with the exponent carried as an integer and saturated
//! beyond the exact range), so σ may lie far outside the format's range.

// Constants are written as published (fdlibm), digits beyond the type's precision included.
#![allow(clippy::excessive_precision)]

use core::ops::{Add, Div, Mul, Neg, Sub};

/// Exponent marker for "this term is absent" (far below any real exponent).
const NO_EXP: i32 = -100_000;

/// Exponent of a saturated `exp`: beyond every format's range, and small
/// enough that sums of a few of them stay far inside the i32 range.
const SAT_EXP: i32 = 1 << 20;

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
    /// The same series with as many terms as the precision needs for t ≤ 0.36.
    const ATANH_WIDE: &'static [Self];
    /// ½ ln 2, rounded: the bound of the near region in ln ρ.
    const HALF_LN2: Self;
    /// 1/ln 2, rounded (only used to pick the reduction integer of `exp`).
    const INV_LN2: Self;
    /// High part of ln 2 for `exp` (more trailing zero bits than [`Real::LN2_HI`], so that
    /// k·EXP_LN2_HI is exact for every k the clamped argument can give).
    const EXP_LN2_HI: Self;
    /// ln 2 − EXP_LN2_HI.
    const EXP_LN2_LO: Self;
    /// fdlibm's minimax coefficients P1, P2, … of `exp` on the reduced range.
    const EXP_COEFFS: &'static [Self];
    /// Arguments of `exp` are clamped to ±EXP_ARG_MAX (far beyond the
    /// format's range; the reduction is exact up to there). Beyond, the
    /// exponent is replaced by a saturating one (±2²⁰) where that matters.
    const EXP_ARG_MAX: Self;
    /// 1/1!, 1/2!, 1/3!, …: Taylor coefficients of (eˣ − 1)/x, enough for
    /// |x| ≤ ½, and those from 1/2! on of 2(eˣ − 1 − x)/x² for |x| ≤ 2 ln 2.
    const EXP_TAYLOR: &'static [Self];
    /// Log parameterisations: beyond this |ln σ|, ρ² = e^(2 ln ρ) is formed from ln ρ
    /// directly instead of from the product of e^(2 ln σ1) and e^(−2 ln σ2).
    const LOG_BIG: Self;

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
    /// Square root (IEEE, correctly rounded on the CPU).
    fn sqrt(self) -> Self;
    /// Round to the nearest integer, ties to even (WGSL `round`).
    fn round_even(self) -> Self;
    /// The integer value of an integral `self` in the i32 range (saturating, NaN to 0).
    fn to_i32(self) -> i32;
    /// The high half of the significand (low bits cleared by a bit mask, so
    /// that products of two high halves, or of a high and a low half, are exact).
    fn split_hi(self) -> Self;
    /// `a − b` exactly, for positive normal `a`, `b` whose binary exponents
    /// differ by at most one (then the difference is representable): computed
    /// with integer operations on the bit patterns, so that no compiler can
    /// rewrite it algebraically. Some value, without panicking, otherwise.
    fn exact_sub(a: Self, b: Self) -> Self;
}

macro_rules! impl_real {
    ($t:ty, $bits:ty, $ibits:ty, $split:expr, $mant:expr, $bias:expr, $max_exp:expr, $safe:expr,
     $ln2_hi:expr, $ln2_lo:expr, $ln:expr, $atanh:expr, $atanh_wide:expr,
     $exp_hi:expr, $exp_lo:expr, $exp:expr, $exp_max:expr, $taylor:expr, $log_big:expr) => {
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
            const ATANH_WIDE: &'static [Self] = &$atanh_wide;
            const HALF_LN2: Self = 0.346_573_590_279_972_654_708_616_060_729 as $t;
            const INV_LN2: Self = core::f64::consts::LOG2_E as $t;
            const EXP_LN2_HI: Self = $exp_hi;
            const EXP_LN2_LO: Self = $exp_lo;
            const EXP_COEFFS: &'static [Self] = &$exp;
            const EXP_ARG_MAX: Self = $exp_max;
            const EXP_TAYLOR: &'static [Self] = &$taylor;
            const LOG_BIG: Self = $log_big;

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

            #[inline(always)]
            fn sqrt(self) -> Self {
                <$t>::sqrt(self)
            }

            #[inline(always)]
            fn round_even(self) -> Self {
                <$t>::round_ties_even(self)
            }

            #[inline(always)]
            fn to_i32(self) -> i32 {
                self as i32
            }

            #[inline(always)]
            fn split_hi(self) -> Self {
                <$t>::from_bits(self.to_bits() & !(((1 as $bits) << $split) - 1))
            }

            #[inline(always)]
            fn exact_sub(a: Self, b: Self) -> Self {
                const MANT: u32 = $mant;
                const MANT_MASK: $bits = ((1 as $bits) << MANT) - 1;
                const HIDDEN: $bits = (1 as $bits) << MANT;
                let (ab, bb) = (a.to_bits(), b.to_bits());
                let ea = (ab >> MANT) as i32;
                let eb = (bb >> MANT) as i32;
                let e = ea.min(eb);
                let ma = ((ab & MANT_MASK) | HIDDEN) as $ibits;
                let mb = ((bb & MANT_MASK) | HIDDEN) as $ibits;
                let sa = (ea - e).clamp(0, 1) as u32;
                let sb = (eb - e).clamp(0, 1) as u32;
                let d = ((ma << sa) - (mb << sb)) as $t;
                let sc = e - ($bias) - MANT as i32;
                let s1 = sc >> 1;
                d * Self::pow2(s1) * Self::pow2(sc - s1)
            }
        }
    };
}

impl_real!(
    f32,
    u32,
    i32,
    12,
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
        1.0 / 31.0
    ],
    // FreeBSD e_expf.c: ln2HI 0x3f317200, ln2LO 0x35bfbe8e, P1 0xaaaaa8.0p-26, P2 -0xb55215.0p-32
    6.931_457_519_5e-1,
    1.428_606_765_3e-6,
    [1.666_662_544_0e-1, -2.766_733_290_6e-3],
    352.0,
    [
        1.0,
        1.0 / 2.0,
        1.0 / 6.0,
        1.0 / 24.0,
        1.0 / 120.0,
        1.0 / 720.0,
        1.0 / 5040.0,
        1.0 / 40320.0,
        1.0 / 362880.0,
        1.0 / 3628800.0,
        1.0 / 39916800.0,
        1.0 / 479001600.0
    ],
    150.0
);

impl_real!(
    f64,
    u64,
    i64,
    27,
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
        1.0 / 33.0,
        1.0 / 35.0,
        1.0 / 37.0,
        1.0 / 39.0,
        1.0 / 41.0,
        1.0 / 43.0,
        1.0 / 45.0,
        1.0 / 47.0,
        1.0 / 49.0,
        1.0 / 51.0,
        1.0 / 53.0,
        1.0 / 55.0,
        1.0 / 57.0,
        1.0 / 59.0,
        1.0 / 61.0,
        1.0 / 63.0,
        1.0 / 65.0,
        1.0 / 67.0,
        1.0 / 69.0,
        1.0 / 71.0,
        1.0 / 73.0
    ],
    // fdlibm e_exp.c
    6.931_471_803_691_238_164_90e-1,
    1.908_214_929_270_587_700_02e-10,
    [
        1.666_666_666_666_660_190_37e-1,
        -2.777_777_777_701_559_338_42e-3,
        6.613_756_321_437_934_361_17e-5,
        -1.653_390_220_546_525_153_90e-6,
        4.138_136_797_057_238_460_39e-8
    ],
    3000.0,
    [
        1.0,
        1.0 / 2.0,
        1.0 / 6.0,
        1.0 / 24.0,
        1.0 / 120.0,
        1.0 / 720.0,
        1.0 / 5040.0,
        1.0 / 40320.0,
        1.0 / 362880.0,
        1.0 / 3628800.0,
        1.0 / 39916800.0,
        1.0 / 479001600.0,
        1.0 / 6227020800.0,
        1.0 / 87178291200.0,
        1.0 / 1307674368000.0,
        1.0 / 20922789888000.0,
        1.0 / 355687428096000.0,
        1.0 / 6402373705728000.0,
        1.0 / 121645100408832000.0,
        1.0 / 2432902008176640000.0,
        1.0 / 51090942171709440000.0
    ],
    1200.0
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
    ln_mant(m0, e0 + k)
}

/// `ln(m·2^k)` for `m ∈ [1, 2]` already reduced (a mantissa from
/// [`Real::frexp1`]): [`ln_scaled`] without its own `frexp1`, which would
/// return `(m, 0)` (for `m = 2`, `(1, 1)`, the same after the reduction
/// below), so the result is identical, bit for bit.
#[inline(always)]
pub fn ln_mant<T: Real>(m0: T, k: i32) -> T {
    let high = m0 > T::SQRT2;
    let m = sel(high, m0 * T::HALF, m0);
    let dk = T::from_i32(k + i32::from(high));
    let f = m - T::ONE;
    let s = f / (T::TWO + f);
    let z = s * s;
    let r = z * horner(T::LN_COEFFS, z);
    let hfsq = T::HALF * f * f;
    dk * T::LN2_HI - ((hfsq - (s * (hfsq + r) + dk * T::LN2_LO)) - f)
}

/// `ln(r·2^k)` for a ratio `r ∈ [½, 2]` of two mantissas in `[1, 2)`:
/// [`ln_scaled`] with the exponent split reduced to one comparison (for `r`
/// in that range `frexp1` gives `(2r, −1)` below 1 and `(r, 0)` from 1 on,
/// and both are exact), so the result is identical, bit for bit.
#[inline(always)]
fn ln_ratio<T: Real>(r: T, k: i32) -> T {
    let below = r < T::ONE;
    ln_mant(sel(below, T::TWO * r, r), k - i32::from(below))
}

/// Natural logarithm of a positive finite `x` (subnormals included).
#[inline]
pub fn ln<T: Real>(x: T) -> T {
    let (m, e) = x.frexp1();
    ln_mant(m, e)
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

/// `x` clamped to `[lo, hi]` (selects only).
#[inline(always)]
fn clampf<T: Real>(x: T, lo: T, hi: T) -> T {
    sel(x > hi, hi, sel(x < lo, lo, x))
}

/// `(y, k)` with `eˣ ≈ y·2^k`, `y ∈ [√½, √2]`: fdlibm's `exp` without the final
/// scaling (the exponent is returned as an integer, so nothing over- or
/// underflows). `x` is clamped to `±EXP_ARG_MAX` first, far beyond the
/// format's range, so `k` saturates correctly for any finite input.
#[inline(always)]
pub fn exp_split<T: Real>(x: T) -> (T, i32) {
    let xc = clampf(x, -T::EXP_ARG_MAX, T::EXP_ARG_MAX);
    let kf = (xc * T::INV_LN2).round_even();
    let k = kf.to_i32();
    let hi = xc - kf * T::EXP_LN2_HI;
    let lo = kf * T::EXP_LN2_LO;
    let r = hi - lo;
    let t = r * r;
    let c = r - t * horner(T::EXP_COEFFS, t);
    let y = T::ONE - ((lo - (r * c) / (T::TWO - c)) - hi);
    (y, k)
}

/// [`exp_split`] with the exponent saturated to ±[`SAT_EXP`] beyond
/// `±EXP_ARG_MAX`, so that a product with any finite value still over- or
/// underflows as the exact one does.
#[inline(always)]
fn exp_sat<T: Real>(x: T) -> (T, i32) {
    let (y, k) = exp_split(x);
    (
        y,
        sel(
            x > T::EXP_ARG_MAX,
            SAT_EXP,
            sel(x < -T::EXP_ARG_MAX, -SAT_EXP, k),
        ),
    )
}

/// `eˣ − 1`, accurate relative to the result for every `x`: the Taylor
/// series for `|x| ≤ ½` (no cancellation), `y·2^k − 1` from [`exp_split`]
/// elsewhere (where the cancellation costs at most a factor 2.6).
#[inline(always)]
pub fn expm1<T: Real>(x: T) -> T {
    let small = x.abs() <= T::HALF;
    let series = x * horner(T::EXP_TAYLOR, x);
    let (y, k) = exp_split(x);
    let big = y * T::pow2(k) - T::ONE;
    sel(small, series, big)
}

/// `y·2^e` and whether it exceeds the format's largest finite value (for
/// `0 ≤ y ≤ 2^8`; any `e`): the overflow is found by comparison, never by
/// IEEE overflow. Results below the normal range may flush to zero.
#[inline(always)]
pub fn scale_exp<T: Real>(y: T, e: i32) -> (T, bool) {
    let e1 = e >> 1;
    let e2 = e - e1;
    let v = y * T::pow2(e1) * T::pow2(e2);
    let inf =
        e > T::MAX_EXP + 8 || (e > T::MAX_EXP - 16 && y > T::MAX * T::pow2(-e1) * T::pow2(-e2));
    (v, inf)
}

/// `√(m·2^e)` as `(s, f)` with value `s·2^f` (`m` in a bounded range, any `e`).
#[inline(always)]
fn sqrt_exp<T: Real>(m: T, e: i32) -> (T, i32) {
    let odd = e & 1;
    (sel(odd != 0, T::TWO * m, m).sqrt(), (e - odd) >> 1)
}

/// `m1·2^(k1−k) − m2·2^(k2−k)` and `k = max(k1, k2)`: a difference of two
/// positive numbers at a common scale (one rounding; exact when they are close).
#[inline(always)]
fn diff_scaled<T: Real>(m1: T, k1: i32, m2: T, k2: i32) -> (T, i32) {
    let k = k1.max(k2);
    (m1 * T::pow2(k1 - k) - m2 * T::pow2(k2 - k), k)
}

/// `m1·2^(k1−k) + m2·2^(k2−k)` and `k = max(k1, k2)`.
#[inline(always)]
fn sum_scaled<T: Real>(m1: T, k1: i32, m2: T, k2: i32) -> (T, i32) {
    let k = k1.max(k2);
    (m1 * T::pow2(k1 - k) + m2 * T::pow2(k2 - k), k)
}

/// `x + y = s + err` exactly, for `|x| ≥ |y|` (Dekker's Fast2Sum). The
/// intermediate `s − x` is formed by [`Real::exact_sub`] from the bit
/// patterns, so that a GPU compiler allowed to simplify `(x + y) − x` to `y`
/// (Mesa's NIR does, for instance) cannot cancel the error term. Outside the
/// normal range the error term is 0.
#[inline(always)]
pub(crate) fn fast_two_sum<T: Real>(x: T, y: T) -> (T, T) {
    let s = x + y;
    let ax = x.abs();
    let asum = s.abs();
    let same = (s > T::ZERO) == (x > T::ZERO);
    let ok = same
        && asum >= T::HALF * ax
        && T::HALF * asum <= ax
        && ax >= T::MIN_POSITIVE
        && asum >= T::MIN_POSITIVE;
    let z_abs = T::exact_sub(asum, ax);
    let z = sel(x < T::ZERO, -z_abs, z_abs); // s − x
    (s, sel(ok, y - z, T::ZERO))
}

/// `x·y = p + e` for positive `x`, `y` of moderate size, `e` accurate to a
/// few units in its own last place: the factors are split by a bit mask, so
/// every partial product is exact (and a fused multiply-add of an exact
/// product changes nothing); the one cancelling difference `xh·yh − p` is
/// formed by [`Real::exact_sub`], so no compiler reassociation can round it.
#[inline(always)]
fn two_prod<T: Real>(x: T, y: T) -> (T, T) {
    let p = x * y;
    let xh = x.split_hi();
    let xl = x - xh;
    let yh = y.split_hi();
    let yl = y - yh;
    (
        p,
        (T::exact_sub(xh * yh, p) + (xh * yl + xl * yh)) + xl * yl,
    )
}

/// `m² = h + l` with `h` exact and `l` to a few units in its own last place.
#[inline(always)]
fn square_dw<T: Real>(m: T) -> (T, T) {
    let a = m.split_hi();
    let b = m - a;
    (a * a, T::TWO * a * b + b * b)
}

/// `(k, h, l)` with `eˣ ≈ 2^k·(h + l)` to about 2⁻³⁰ relative (2⁻⁵⁹ in
/// f64): the reduction of [`exp_split`] kept in two parts, `r = rh − rl`
/// with `rh` exact, and `e^r = 1 + rh + ½rh² + rh³/6 + …` summed so that
/// the large terms add exactly (Fast2Sum, an exact square) and only small
/// ones are rounded.
#[inline(always)]
fn exp_tri<T: Real>(x: T) -> (i32, T, T) {
    let xc = clampf(x, -T::EXP_ARG_MAX, T::EXP_ARG_MAX);
    let kf = (xc * T::INV_LN2).round_even();
    let rh = xc - kf * T::EXP_LN2_HI;
    let rl = kf * T::EXP_LN2_LO;
    let ar = rh.abs();
    let (sq, sqe) = two_prod(ar, ar); // rh²
    let qh = T::HALF * sq;
    let ql = T::HALF * sqe + sq * rh * horner(T::EXP_TAYLOR.get(2..).unwrap_or_default(), rh);
    let (u, v) = fast_two_sum(T::ONE, rh);
    let (h, v2) = fast_two_sum(u, qh);
    // e^(rh − rl) = e^rh·(1 − rl + ½rl²) (rl³ is below the last bit).
    let l = ((v + v2) + ql) + (T::HALF * rl * rl - rl) * (T::ONE + rh + (qh + ql));
    let k = sel(
        x > T::EXP_ARG_MAX,
        SAT_EXP,
        sel(x < -T::EXP_ARG_MAX, -SAT_EXP, kf.to_i32()),
    );
    (k, h, l)
}

/// `y·2^e` for any `e` (two factors, so that no power of two leaves the range).
#[inline(always)]
fn scale2<T: Real>(y: T, e: i32) -> T {
    let e1 = e >> 1;
    y * T::pow2(e1) * T::pow2(e - e1)
}

/// Parameterisation codes: how the second and fourth input columns give σ
/// (the WGSL override constant `PARAM`; see [`crate::Param`]).
pub mod param {
    /// σ.
    pub const STD: u32 = 0;
    /// σ².
    pub const VAR: u32 = 1;
    /// ln σ.
    pub const LOGSTD: u32 = 2;
    /// ln σ².
    pub const LOGVAR: u32 = 3;
    /// 1/σ².
    pub const PRECISION: u32 = 4;
}

/// Number of measures [`measures`] computes.
pub const MEASURES: usize = 10;

/// Positions of the measures in the output of [`measures`] (canonical order).
pub mod idx {
    /// H(p1, p2).
    pub const CROSS_ENTROPY: usize = 0;
    /// KL(p1 ‖ p2).
    pub const KL: usize = 1;
    /// H(p1).
    pub const ENTROPY: usize = 2;
    /// H(p2).
    pub const ENTROPY_Q: usize = 3;
    /// KL(p2 ‖ p1).
    pub const REVERSE_KL: usize = 4;
    /// KL(p1 ‖ p2) + KL(p2 ‖ p1).
    pub const JEFFREYS: usize = 5;
    /// Bhattacharyya distance D_B.
    pub const BHATTACHARYYA: usize = 6;
    /// exp(−D_B).
    pub const BHATTACHARYYA_COEFFICIENT: usize = 7;
    /// √(1 − exp(−D_B)).
    pub const HELLINGER: usize = 8;
    /// √((μ1 − μ2)² + (σ1 − σ2)²).
    pub const WASSERSTEIN2: usize = 9;
}

/// A pair converted to the internal representation the shared formulas use.
/// Every quantity is carried as a mantissa and an integer exponent where its
/// range exceeds the format's.
struct Prep<T> {
    /// Whether the inputs are valid in the parameterisation.
    valid: bool,
    /// ln σ1, ln σ2.
    ln1: T,
    ln2: T,
    /// (μ1 − μ2)²/σ1² = q1·2^e1 and (μ1 − μ2)²/σ2² = q2·2^e2 (before the μ1 = μ2 select).
    q1: T,
    e1: i32,
    q2: T,
    e2: i32,
    /// ρ² = p·2^pe and ρ⁻² = pr·2^pre, ρ = σ1/σ2.
    p: T,
    pe: i32,
    pr: T,
    pre: i32,
    /// ln ρ (clamped to ±MAX) and ½ ln ρ (never overflows).
    ln_rho: T,
    hl: T,
    /// |ln ρ| exceeds the largest finite value (log parameterisations only).
    hl_inf: bool,
    /// ρ ∈ [½, 2], and there w = (ρ − 1)/(ρ + 1) = tanh(½ ln ρ), relative to
    /// itself, and the scale parts V(ρ), V(1/ρ) of KL and reverse KL.
    near: bool,
    w: T,
    v_near: T,
    rv_near: T,
    /// |σ1 − σ2| = ds·2^dse.
    ds: T,
    dse: i32,
    /// σ1² + σ2² = (sh + sl)·2^se, and a factor (gh + gl)·2^ge of the numerator
    /// of X = ¼Δμ²·G/S (G = σ1⁻²σ2⁻² for precisions, else 1): two-float
    /// accuracy, for the Bhattacharyya coefficient only.
    sh: T,
    sl: T,
    se: i32,
    gh: T,
    gl: T,
    ge: i32,
}

/// σ given directly: the mantissas and exponents are exact.
#[inline(always)]
fn prep_std<T: Real>(a1: T, a2: T, mh: T, kd: i32) -> Prep<T> {
    let (m1, k1) = a1.frexp1();
    let (m2, k2) = a2.frexp1();
    let kk = k1 - k2;
    // Near ρ = 1: w from the exact difference (Sterbenz) of the scaled mantissas.
    let kc = kk.clamp(-1, 1);
    let a = T::pow2(kc) * m1; // ρ·m2 when |K| ≤ 1
    let near = kk == kc && a <= T::TWO * m2 && T::TWO * a >= m2;
    let w = (a - m2) / (a + m2);
    let r = m1 / m2;
    let rr = m2 / m1;
    let ln_rho = ln_ratio(r, kk);
    let q2 = mh / m2;
    let q1 = mh / m1;
    let (d, km) = diff_scaled(m1, k1, m2, k2);
    // σ1² + σ2² from the exact squares of the mantissas.
    let em = k1.max(k2);
    let (h1, l1) = square_dw(m1);
    let (h2, l2) = square_dw(m2);
    let c1 = T::pow2(2 * (k1 - em));
    let c2 = T::pow2(2 * (k2 - em));
    let (sa, sb) = (h1 * c1, h2 * c2);
    let (sh, e0) = fast_two_sum(sel(sa >= sb, sa, sb), sel(sa >= sb, sb, sa));
    Prep {
        valid: a1 > T::ZERO && a1 <= T::MAX && a2 > T::ZERO && a2 <= T::MAX,
        ln1: ln_mant(m1, k1),
        ln2: ln_mant(m2, k2),
        q1: q1 * q1,
        e1: 2 * (kd - k1),
        q2: q2 * q2,
        e2: 2 * (kd - k2),
        p: r * r,
        pe: 2 * kk,
        pr: rr * rr,
        pre: -2 * kk,
        ln_rho,
        hl: T::HALF * ln_rho,
        hl_inf: false,
        near,
        w,
        v_near: scale_part_near(w),
        rv_near: scale_part_near(-w),
        ds: d.abs(),
        dse: km,
        sh,
        sl: e0 + (l1 * c1 + l2 * c2),
        se: 2 * em,
        gh: T::ONE,
        gl: T::ZERO,
        ge: 0,
    }
}

/// `(q, e)` with `q·2^e` unchanged and `q < 4`, so that `½q·2^e` is below
/// the normal range whenever `2^e` is (the flush in [`Real::pow2`] then
/// loses nothing representable).
#[inline(always)]
fn norm_q<T: Real>(q: T, e: i32) -> (T, i32) {
    let big = q >= T::TWO * T::TWO;
    (sel(big, T::HALF * q, q), e + i32::from(big))
}

/// `n1·2^k1 + n2·2^k2 = (h + l)·2^k` exactly, for positive mantissas in [1, 2).
#[inline(always)]
fn sum_dw<T: Real>(n1: T, k1: i32, n2: T, k2: i32) -> (T, T, i32) {
    let k = k1.max(k2);
    let a = n1 * T::pow2(k1 - k);
    let b = n2 * T::pow2(k2 - k);
    let (h, l) = fast_two_sum(sel(a >= b, a, b), sel(a >= b, b, a));
    (h, l, k)
}

/// The ratio part for parameters that are squares of a scale: ρ² = n/d with
/// n = nm·2^nk, d = dm·2^dk (variances σ1², σ2²; or precisions 1/σ2², 1/σ1²).
/// Near ρ = 1, u = (n − d)/(n + d) = tanh(ln ρ) and w = u/(1 + √(1 − u²)),
/// and the scale parts V(ρ), V(1/ρ) from u directly.
#[inline(always)]
#[allow(clippy::type_complexity)]
fn ratio_sq<T: Real>(nm: T, nk: i32, dm: T, dk: i32) -> (T, i32, T, i32, T, bool, T, T, T) {
    let e = nk - dk;
    let ec = e.clamp(-3, 3);
    let vv = T::pow2(ec) * nm;
    let four = T::TWO * T::TWO;
    let near = e == ec && vv <= four * dm && four * vv >= dm;
    let u = (vv - dm) / (vv + dm);
    let w = u / (T::ONE + (T::ONE - u * u).sqrt());
    let p = nm / dm;
    let pr = dm / nm;
    let ln_rho = T::HALF * ln_ratio(p, e);
    (
        p,
        e,
        pr,
        -e,
        ln_rho,
        near,
        w,
        scale_part_u(u),
        scale_part_u(-u),
    )
}

/// `V(ρ) = ½(ρ² − 1) − ln ρ` from `u = (ρ² − 1)/(ρ² + 1) = tanh(ln ρ)`,
/// `|u| ≤ 0.6`: `V = u²·[1/(1 − u) − u·R(u²)]` (½(ρ² − 1) = u/(1 − u),
/// ln ρ = atanh u), terms of one sign, no `ln`.
#[inline(always)]
fn scale_part_u<T: Real>(u: T) -> T {
    let t = u * u;
    t * (T::ONE / (T::ONE - u) - u * horner(T::ATANH_WIDE, t))
}

/// σ² given: exact mantissas of the variances; σ by a square root only where needed.
#[inline(always)]
fn prep_var<T: Real>(a1: T, a2: T, mh: T, kd: i32) -> Prep<T> {
    let (mv1, kv1) = a1.frexp1();
    let (mv2, kv2) = a2.frexp1();
    let (p, pe, pr, pre, ln_rho, near, w, v_near, rv_near) = ratio_sq(mv1, kv1, mv2, kv2);
    // σ1 − σ2 = (σ1² − σ2²)/(σ1 + σ2): no cancellation.
    let (ms1, ks1) = sqrt_exp(mv1, kv1);
    let (ms2, ks2) = sqrt_exp(mv2, kv2);
    let (dv, kvm) = diff_scaled(mv1, kv1, mv2, kv2);
    let (ss, ksm) = sum_scaled(ms1, ks1, ms2, ks2);
    let mh2 = mh * mh;
    let (sh, sl, se) = sum_dw(mv1, kv1, mv2, kv2);
    Prep {
        valid: a1 > T::ZERO && a1 <= T::MAX && a2 > T::ZERO && a2 <= T::MAX,
        ln1: T::HALF * ln_mant(mv1, kv1),
        ln2: T::HALF * ln_mant(mv2, kv2),
        q1: mh2 / mv1,
        e1: 2 * kd - kv1,
        q2: mh2 / mv2,
        e2: 2 * kd - kv2,
        p,
        pe,
        pr,
        pre,
        ln_rho,
        hl: T::HALF * ln_rho,
        hl_inf: false,
        near,
        w,
        v_near,
        rv_near,
        ds: dv.abs() / ss,
        dse: kvm - ksm,
        sh,
        sl,
        se,
        gh: T::ONE,
        gl: T::ZERO,
        ge: 0,
    }
}

/// 1/σ² given: the precisions multiply the mean parts directly.
#[inline(always)]
fn prep_precision<T: Real>(a1: T, a2: T, mh: T, kd: i32) -> Prep<T> {
    let (mp1, kp1) = a1.frexp1();
    let (mp2, kp2) = a2.frexp1();
    let (p, pe, pr, pre, ln_rho, near, w, v_near, rv_near) = ratio_sq(mp2, kp2, mp1, kp1);
    // σ1 − σ2 = (τ2² − τ1²)/(τ1·τ2·(τ1 + τ2)), τ = √precision = 1/σ.
    let (mt1, kt1) = sqrt_exp(mp1, kp1);
    let (mt2, kt2) = sqrt_exp(mp2, kp2);
    let (dp, kpm) = diff_scaled(mp2, kp2, mp1, kp1);
    let (st, ktm) = sum_scaled(mt1, kt1, mt2, kt2);
    let (q1, e1) = norm_q(mh * mh * mp1, 2 * kd + kp1);
    let (q2, e2) = norm_q(mh * mh * mp2, 2 * kd + kp2);
    // σ1² + σ2² = (p1 + p2)/(p1·p2): X = ¼Δμ²·p1·p2/(p1 + p2).
    let (sh, sl, se) = sum_dw(mp1, kp1, mp2, kp2);
    let (gh, gl) = two_prod(mp1, mp2);
    Prep {
        valid: a1 > T::ZERO && a1 <= T::MAX && a2 > T::ZERO && a2 <= T::MAX,
        ln1: -T::HALF * ln_mant(mp1, kp1),
        ln2: -T::HALF * ln_mant(mp2, kp2),
        q1,
        e1,
        q2,
        e2,
        p,
        pe,
        pr,
        pre,
        ln_rho,
        hl: T::HALF * ln_rho,
        hl_inf: false,
        near,
        w,
        v_near,
        rv_near,
        ds: dp.abs() / (mt1 * mt2 * st),
        dse: kpm - kt1 - kt2 - ktm,
        sh,
        sl,
        se,
        gh,
        gl,
        ge: kp1 + kp2,
    }
}

/// ln σ (`LOGVAR == false`) or ln σ² (`true`) given: ln σ and ln ρ come from
/// the inputs exactly (up to one rounding), σ and ρ from our own `exp`.
#[inline(always)]
fn prep_log<T: Real, const LOGVAR: bool>(a1: T, a2: T, mh: T, kd: i32) -> Prep<T> {
    let s1 = sel(LOGVAR, T::HALF * a1, a1); // ln σ1
    let s2 = sel(LOGVAR, T::HALF * a2, a2);
    let hl = T::HALF * s1 - T::HALF * s2; // ½ ln ρ, never overflows
    let half_max = T::HALF * T::MAX;
    let hl_inf = hl.abs() > half_max;
    let ln_rho = T::TWO * clampf(hl, -half_max, half_max);
    // Clamped so that the doubled arguments below stay finite; the
    // saturating exps see that they are out of range.
    let lim = T::EXP_ARG_MAX;
    let s1c = clampf(s1, -lim, lim);
    let s2c = clampf(s2, -lim, lim);
    // 1/σ² = e^(−2 ln σ) and σ² = e^(2 ln σ).
    let (iv1, ive1) = exp_sat(-T::TWO * s1c);
    let (iv2, ive2) = exp_sat(-T::TWO * s2c);
    let (sq1, sqe1) = exp_split(T::TWO * s1c);
    let (sq2, sqe2) = exp_split(T::TWO * s2c);
    // ρ² = σ1²·σ2⁻² (two exps of exact arguments); for huge |ln σ|, where
    // ln ρ is exact whenever ρ² matters, e^(2 ln ρ) directly.
    let small = s1.abs() <= T::LOG_BIG && s2.abs() <= T::LOG_BIG;
    let hx = clampf(hl, -lim, lim);
    let (pb, pbe) = exp_sat(T::TWO * T::TWO * hx);
    let (pbr, pbre) = exp_sat(-T::TWO * T::TWO * hx);
    let near = hl.abs() <= T::HALF_LN2;
    let em = expm1(sel(near, ln_rho, T::ZERO));
    // σ1 − σ2 = ±σ_max·(1 − e^(−|ln ρ|)).
    let (xm, xe) = exp_sat(sel(s1c > s2c, s1c, s2c));
    let mh2 = mh * mh;
    let (q1, e1) = norm_q(mh2 * iv1, 2 * kd + ive1);
    let (q2, e2) = norm_q(mh2 * iv2, 2 * kd + ive2);
    // σ1² + σ2² = 2^k1(h1 + l1) + 2^k2(h2 + l2).
    let (k1, h1, l1) = exp_tri(T::TWO * s1c);
    let (k2, h2, l2) = exp_tri(T::TWO * s2c);
    let (h0, l0, se) = sum_dw(h1, k1, h2, k2);
    let sl = l0 + (l1 * T::pow2(k1 - se) + l2 * T::pow2(k2 - se));
    // Near ρ = 1, V(ρ) = ½(e^(2 ln ρ) − 1) − ln ρ = (ln ρ)²·φ₂(2 ln ρ) with
    // φ₂(x) = 2(eˣ − 1 − x)/x² = 2Σ xᵏ/(k + 2)!, from ln ρ directly.
    let lrn = sel(near, ln_rho, T::ZERO);
    let l2r = lrn * lrn;
    let v_near = l2r * (T::TWO * horner(T::EXP_TAYLOR.get(1..).unwrap_or_default(), T::TWO * lrn));
    let rv_near =
        l2r * (T::TWO * horner(T::EXP_TAYLOR.get(1..).unwrap_or_default(), -T::TWO * lrn));
    Prep {
        valid: a1.is_finite() && a2.is_finite(),
        ln1: s1,
        ln2: s2,
        q1,
        e1,
        q2,
        e2,
        p: sel(small, sq1 * iv2, pb),
        pe: sel(small, sqe1 + ive2, pbe),
        pr: sel(small, sq2 * iv1, pbr),
        pre: sel(small, sqe2 + ive1, pbre),
        ln_rho,
        hl,
        hl_inf,
        near,
        w: em / (em + T::TWO),
        v_near,
        rv_near,
        ds: xm * -expm1(-ln_rho.abs()),
        dse: xe,
        sh: h0,
        sl,
        se,
        gh: T::ONE,
        gl: T::ZERO,
        ge: 0,
    }
}

/// KL(p‖q) = M + V from the pieces: the mean part M = ½q·2^e (q = 0 for
/// μ1 = μ2), ρ² = p·2^pe, the rest of V far from ρ = 1 (−½ − ln ρ), and near
/// ρ = 1 the series value of V. Returns the value (meaningless when
/// infinite) and whether it exceeds the format's largest finite value.
/// (Jeffreys' divergence has the same shape, see [`measures`].) `logv`: the
/// inputs are log-parameters, so the rest of V may itself be huge.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn kl_core<T: Real>(
    logv: bool,
    q: T,
    e_m: i32,
    p: T,
    pe: i32,
    v_far: T,
    v_inf: bool,
    near: bool,
    v_near: T,
) -> (T, bool) {
    let b = sel(near, T::ZERO, p);
    let e_b = sel(near, NO_EXP, pe);
    let v_rest = sel(near, v_near, v_far);

    let g = e_m.max(e_b);
    // Ordinary magnitudes: sum directly.
    // scale2: terms below the smallest normal underflow gradually (a
    // fuzzing finding: a KL that is itself subnormal lost its mean part).
    let m_term = scale2(T::HALF * q, e_m);
    let b_term = scale2(T::HALF * b, e_b);
    let kl_direct = m_term + (b_term + v_rest);
    // At least one term beyond 2^(SAFE_EXP−3): sum the large terms at scale
    // 2^−g (v_rest, at most a few hundred with σ, σ² or 1/σ² given, is far
    // below their last bit) and compare with MAX at that scale.
    let y0 = T::HALF * q * T::pow2(e_m - g) + T::HALF * b * T::pow2(e_b - g);
    // With log-parameters, ln ρ itself may be as large as the largest
    // finite value: then v_rest belongs in the scaled sum too.
    let y = if logv { y0 + scale2(v_rest, -g) } else { y0 };
    let hi = g - T::SAFE_EXP;
    let limit = T::MAX * T::pow2(-T::SAFE_EXP) * T::pow2(-hi);
    let kl_scaled = y * T::pow2(hi) * T::pow2(T::SAFE_EXP);
    let big = g > T::SAFE_EXP;
    let kl_inf = v_inf || (big && (g >= T::MAX_EXP + 3 || y > limit));
    (sel(big, kl_scaled, kl_direct), kl_inf)
}

/// `atanh(t)/t − 1 = t²·R(t²)` for `0 ≤ t ≤ 1/9`.
#[inline(always)]
fn atanh_tail<T: Real>(t: T) -> T {
    let t2 = t * t;
    t2 * horner(T::ATANH_COEFFS, t2)
}

/// Δμ = μ1 − μ2 (formed from halves when it could overflow) and its
/// magnitude as `mh·2^kd`, `mh ∈ [1, 2)` (`mh = 1` when μ1 = μ2): the mean
/// part shared by [`measures`] and [`gradients`].
struct DeltaMu<T> {
    /// The inputs were halved first (|μ| beyond a quarter of the largest value).
    halve: bool,
    /// μ1 − μ2, or (μ1 − μ2)/2 when `halve`.
    diff: T,
    has_diff: bool,
    mh: T,
    /// The exponent of `diff` itself (`kd` without the halving).
    kh: i32,
    kd: i32,
}

#[inline(always)]
fn delta_mu<T: Real>(mu1: T, mu2: T) -> DeltaMu<T> {
    let halve = mu1.abs() > T::HALVE_THRESHOLD || mu2.abs() > T::HALVE_THRESHOLD;
    let diff = sel(halve, T::HALF * mu1 - T::HALF * mu2, mu1 - mu2);
    let has_diff = diff != T::ZERO;
    let (mh, kh) = sel(has_diff, diff.abs(), T::ONE).frexp1();
    DeltaMu {
        halve,
        diff,
        has_diff,
        mh,
        kh,
        kd: kh + i32::from(halve),
    }
}

/// Every measure of one pair, in canonical order (see [`idx`]), in the
/// parameterisation `P` (see [`param`]): the inputs are `(μ1, a1, μ2, a2)`
/// with `a` = σ, σ², ln σ, ln σ² or 1/σ².
///
/// Invalid input (for σ, σ², 1/σ²: not finite and > 0; for ln σ, ln σ²: not
/// finite; μ not finite) gives NaN in every measure. Branch-free, so that
/// loops over it vectorise; callers that need only some measures keep only
/// those, and the compiler drops the work of the others.
#[inline(always)]
pub fn measures<T: Real, const P: u32>(mu1: T, a1: T, mu2: T, a2: T) -> [T; MEASURES] {
    // Δμ = μ1 − μ2 = mh·2^kd (formed from halves when it could overflow).
    let DeltaMu {
        halve,
        diff,
        has_diff,
        mh,
        kh,
        kd,
    } = delta_mu(mu1, mu2);
    // Its rounding error, for the Bhattacharyya coefficient: Δμ = (mh + dl)·2^kd.
    let xa = sel(halve, T::HALF * mu1, mu1);
    let ya = sel(halve, -T::HALF * mu2, -mu2);
    let swap = xa.abs() < ya.abs();
    let (_, derr) = fast_two_sum(sel(swap, ya, xa), sel(swap, xa, ya));
    let dl = scale2(sel(diff < T::ZERO, -derr, derr), -kh);

    let pp = match P {
        param::VAR => prep_var(a1, a2, mh, kd),
        param::LOGSTD => prep_log::<T, false>(a1, a2, mh, kd),
        param::LOGVAR => prep_log::<T, true>(a1, a2, mh, kd),
        param::PRECISION => prep_precision(a1, a2, mh, kd),
        _ => prep_std(a1, a2, mh, kd),
    };
    let valid = pp.valid && mu1.is_finite() && mu2.is_finite();
    let q1 = sel(has_diff, pp.q1, T::ZERO);
    let e1 = sel(has_diff, pp.e1, NO_EXP);
    let q2 = sel(has_diff, pp.q2, T::ZERO);
    let e2 = sel(has_diff, pp.e2, NO_EXP);

    // Entropies, KL both ways, cross-entropy, Jeffreys.
    let entropy = T::HALF_LN_2PI_E + pp.ln1;
    let entropy_q = T::HALF_LN_2PI_E + pp.ln2;
    let v_far = -T::HALF - pp.ln_rho;
    // (A pipeline constant: the branch on it in kl_core folds away.)
    let logv = matches!(P, param::LOGSTD | param::LOGVAR);
    let (kl, kl_inf) = kl_core(
        logv, q2, e2, pp.p, pp.pe, v_far, pp.hl_inf, pp.near, pp.v_near,
    );
    // With log-parameters H(p1) may be near −MAX: the cross-entropy can be
    // finite where KL overflows through ln ρ → −∞ (then H(p1, p2) =
    // ½(1 + ln 2π) − ½ + ln σ2 + M exactly, as ρ² = 0), and can overflow
    // where KL does not.
    let (m2v, m2_inf) = scale_exp(T::HALF * q2, e2);
    let ce_base = T::HALF_LN_2PI_E - T::HALF + pp.ln2;
    let ce_alt = ce_base + m2v;
    let ce_alt_inf = m2_inf || T::HALF * ce_base + T::HALF * m2v > T::HALF * T::MAX;
    // Also whenever ρ² is negligible (ln ρ < −64: ½ρ² < 1e-56 against terms
    // of at least 64): the sum H(p1) + KL cancels ln σ1, and with ln σ1 near
    // −MAX the KL can overflow where the cross-entropy does not (a fuzzing
    // finding).
    let use_alt = logv && ((pp.hl_inf && pp.ln_rho < T::ZERO) || pp.ln_rho < T::from_i32(-64));
    let ce_sum_inf = logv && T::HALF * entropy + T::HALF * kl > T::HALF * T::MAX;
    let cross_entropy = sel(use_alt, ce_alt, entropy + kl);
    let ce_inf = sel(use_alt, ce_alt_inf, kl_inf || ce_sum_inf);
    let rv_far = -T::HALF + pp.ln_rho;
    let (rkl, rkl_inf) = kl_core(
        logv, q1, e1, pp.pr, pp.pre, rv_far, pp.hl_inf, pp.near, pp.rv_near,
    );

    // ρs = σ_small/σ_big ≤ 1.
    let side1 = pp.ln_rho >= T::ZERO; // σ1 ≥ σ2
    let ps = sel(side1, pp.pr, pp.p);
    let pes = sel(side1, pp.pre, pp.pe);
    let rs2 = ps * T::pow2(pes); // ρs² ≤ 1
    let one_rs2 = T::ONE + rs2;

    // Jeffreys J = ½Δμ²(σ1⁻² + σ2⁻²) + V(ρ) + V(1/ρ), one evaluation of the
    // KL shape: the ln ρ terms cancel exactly, so far from ρ = 1 the rest is
    // ½ρs² − 1 next to ½ρ_big² ≥ 2 (no cancellation), and the mean parts are
    // added before any flush to zero.
    let ej = e1.max(e2);
    let (qj, ejn) = norm_q(q1 * T::pow2(e1 - ej) + q2 * T::pow2(e2 - ej), ej);
    let (jeffreys, jeffreys_inf) = kl_core(
        logv,
        qj,
        sel(has_diff, ejn, NO_EXP),
        sel(side1, pp.p, pp.pr),
        sel(side1, pp.pe, pp.pre),
        T::HALF * rs2 - T::ONE,
        pp.hl_inf,
        pp.near,
        pp.v_near + pp.rv_near,
    );

    // Bhattacharyya distance D_B = X + ½ ln cosh(ln ρ), X = ¼Δμ²/(σ1² + σ2²)
    // = ¼(Δμ/σ_big)²/(1 + ρs²).
    let qs = sel(side1, q1, q2);
    let es = sel(side1, e1, e2);
    let xm = T::HALF * T::HALF * qs / one_rs2;
    let (x, x_inf) = scale_exp(xm, es);
    // ½ ln cosh(ln ρ) = atanh(w²) near ρ = 1, ½(|ln ρ| − ln 2 + ln(1 + ρs²)) elsewhere
    // (ln(1 + x) = 2 atanh(x/(2 + x)), a series again).
    let t = pp.w * pp.w;
    let at_tail = atanh_tail(t);
    let lp_near = t + t * at_tail;
    let sg = rs2 / (T::TWO + rs2);
    let log1p = T::TWO * sg + T::TWO * sg * atanh_tail(sg);
    let lp_far = ((pp.hl.abs() - T::HALF * T::LN2_HI) - T::HALF * T::LN2_LO) + T::HALF * log1p;
    let lp = sel(pp.near, lp_near, lp_far);
    let bhattacharyya = x + lp;

    // Coefficient exp(−D_B) = exp(−X)·√(sech ln ρ): the large log part never
    // goes through exp. sech = (1 − w²)/(1 + w²) near ρ = 1, 2ρs/(1 + ρs²) elsewhere.
    // X in two-float accuracy (an error δ in X is an error δ relative in the
    // coefficient): X = ¼(nh + nl)·G/(sh + sl)·2^xe, Δμ² = (mh + dl)²·2^(2kd).
    let na = mh.split_hi();
    let nb = mh - na;
    let nh = na * na;
    let nl = (T::TWO * na * nb + nb * nb) + T::TWO * mh * dl;
    let (gp, gpe) = two_prod(nh, pp.gh);
    let (ph, pl) = match P {
        param::PRECISION => (gp, gpe + (nh * pp.gl + nl * pp.gh)),
        _ => (nh, nl),
    };
    let (sh, sl) = fast_two_sum(pp.sh, pp.sl);
    // The quotient is truncated by a bit mask: a GPU compiler may rewrite
    // ((a/b)·b) as a, or reassociate the residual, but not through integer
    // operations (split_hi, exact_sub). The residual gives the correction,
    // and Fast2Sum renormalises.
    let qx = ((ph + pl) / sh).split_hi();
    let (qp, qe) = two_prod(qx, sh);
    let cx = (((T::exact_sub(ph, qp) + pl) - qe) - qx * sl) / sh;
    let (xq, xc) = fast_two_sum(qx, cx);
    let xe = 2 * kd + pp.ge - pp.se;
    let xh = sel(has_diff, scale2(T::HALF * T::HALF * xq, xe), T::ZERO);
    let xl = sel(has_diff, scale2(T::HALF * T::HALF * xc, xe), T::ZERO);
    let x_big = x_inf || xh > T::EXP_ARG_MAX;
    let (ex0, exk) = exp_split(-sel(x_big, T::EXP_ARG_MAX, xh));
    let ex = ex0 * (T::ONE - sel(x_big, T::ZERO, xl));

    let f_near = ((T::ONE - t) / (T::ONE + t)).sqrt();
    let (rm, re) = sqrt_exp(ps, pes); // ρs = rm·2^re
    let (f_far, fe_far) = sqrt_exp(T::TWO * rm / one_rs2, re);
    let fm = sel(pp.near, f_near, f_far);
    let fe = sel(pp.near, 0, fe_far);
    let (coefficient, _) = scale_exp(ex * fm, exk + fe);

    // Hellinger √(1 − e^(−D)): for D < ½, √D·√φ(D) with φ(D) = (1 − e^(−D))/D
    // and √D = hypot(√X, √lp) formed without squaring (no underflow);
    // √(1 − e^(−D)) directly elsewhere.
    let (sxm, sxe) = sqrt_exp(xm, es);
    let ha = scale2(sxm, sxe); // gradual underflow for tiny X (a fuzzing finding)
    let hb = sel(
        pp.near,
        pp.w.abs() * (T::ONE + at_tail).sqrt(),
        lp_far.sqrt(),
    );
    let hmax = sel(ha > hb, ha, hb);
    let hmin = sel(ha > hb, hb, ha);
    let ratio = hmin / sel(hmax > T::ZERO, hmax, T::ONE);
    let sqrt_d = hmax * (T::ONE + ratio * ratio).sqrt();
    let small = !x_inf && bhattacharyya < T::HALF;
    let phi = horner(T::EXP_TAYLOR, -bhattacharyya);
    let h_small = sqrt_d * phi.sqrt();
    let (ed, edk) = exp_split(-sel(
        small,
        T::ZERO,
        sel(x_inf, T::EXP_ARG_MAX, bhattacharyya),
    ));
    let h_large = (T::ONE - ed * T::pow2(edk)).sqrt();
    let hellinger = sel(small, h_small, h_large);

    // Wasserstein-2: hypot(Δμ, σ1 − σ2) at a common power-of-two scale.
    let has_ds = pp.ds > T::ZERO;
    let (dsm, dsk) = sel(has_ds, pp.ds, T::ONE).frexp1();
    let kmu = sel(has_diff, kd, NO_EXP);
    let ksd = sel(has_ds, pp.dse + dsk, NO_EXP);
    let km = kmu.max(ksd);
    let wa = sel(has_diff, mh, T::ZERO) * T::pow2(kmu - km);
    let wb = sel(has_ds, dsm, T::ZERO) * T::pow2(ksd - km);
    let (w2, w2_inf0) = scale_exp((wa * wa + wb * wb).sqrt(), km);
    // |Δμ| just above MAX (by less than the rounding of μ1 − μ2, but by more
    // than 2⁻⁵⁴ of it, i.e. distinguishable in double precision): still +inf.
    let amu1 = mu1.abs();
    let amu2 = mu2.abs();
    let big_mu = sel(amu1 > amu2, amu1, amu2);
    let small_mu = sel(amu1 > amu2, amu2, amu1);
    let same_sign = (mu1 > T::ZERO && mu2 > T::ZERO) || (mu1 < T::ZERO && mu2 < T::ZERO);
    let opposite = !same_sign;
    let excess = (T::HALF * big_mu - T::HALF * T::MAX) + T::HALF * small_mu;
    let w2_inf =
        w2_inf0 || (opposite && big_mu >= T::HALF * T::MAX && excess > scale2(T::MAX, -55));

    let inf = T::INFINITY;
    let out = [
        sel(ce_inf, inf, cross_entropy),
        sel(kl_inf, inf, kl),
        entropy,
        entropy_q,
        sel(rkl_inf, inf, rkl),
        sel(jeffreys_inf, inf, jeffreys),
        sel(x_inf, inf, bhattacharyya),
        coefficient,
        hellinger,
        sel(w2_inf, inf, w2),
    ];
    out.map(|v| sel(valid, v, T::NAN))
}

/// Cross-entropy, KL divergence and entropy of p1 for one pair (σ given), in one precision.
///
/// The result is `[cross_entropy, kl, entropy]`: the first three of
/// [`measures`]. Invalid input (σ ≤ 0, NaN or ±∞ anywhere) gives NaN in all
/// three; callers that must reject it validate first (see [`crate::validate`]).
///
/// Branch-free: every path is computed and the right one selected, so that
/// loops over this function vectorise (see [`crate::cpu`]); no input, however
/// invalid, can make it panic.
#[inline(always)]
pub fn divergences<T: Real>(mu1: T, sigma1: T, mu2: T, sigma2: T) -> [T; 3] {
    let m = measures::<T, { param::STD }>(mu1, sigma1, mu2, sigma2);
    [m[0], m[1], m[2]]
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

/// Number of values [`gradients`] computes: ∂/∂(μ1, a1, μ2, a2) of the
/// cross-entropy, then the same four of KL (canonical order of the measures).
pub const GRADIENTS: usize = 8;

/// The parameterisation-specific pieces of the gradients, each a mantissa
/// and an integer exponent (value m·2^e), so that no intermediate over- or
/// underflows before the result does.
struct GradPrep<T> {
    /// Whether the inputs are valid in the parameterisation.
    valid: bool,
    /// 1/σ2² = im·2^ie.
    im: T,
    ie: i32,
    /// A = ρ² − 1 = am·2^ae (signed), accurate relative to itself near ρ = 1.
    am: T,
    ae: i32,
    /// ∂H/∂a1 = ρ²·f1 = cm·2^ce (signed), formed directly.
    cm: T,
    ce: i32,
    /// ∂KL/∂a1 = A·f1 = km·2^ke (signed), formed directly.
    km: T,
    ke: i32,
    /// Chain factor ∂σ-form/∂a2: ∂/∂a2 = (1 − ρ² − q²)·f2 (both measures),
    /// f2 = f2m·2^f2e (signed).
    f2m: T,
    f2e: i32,
}

/// σ given: f = 1/σ; A = (σ1 − σ2)(σ1 + σ2)/σ2² with the exact difference.
#[inline(always)]
fn grad_std<T: Real>(a1: T, a2: T) -> GradPrep<T> {
    let (m1, k1) = a1.frexp1();
    let (m2, k2) = a2.frexp1();
    let (dm, dk) = diff_scaled(m1, k1, m2, k2);
    let (sm, _) = sum_scaled(m1, k1, m2, k2);
    let i2 = T::ONE / (m2 * m2);
    GradPrep {
        valid: a1 > T::ZERO && a1 <= T::MAX && a2 > T::ZERO && a2 <= T::MAX,
        im: i2,
        ie: -2 * k2,
        am: dm * sm * i2,
        ae: 2 * dk - 2 * k2,
        cm: m1 * i2,
        ce: k1 - 2 * k2,
        km: dm * (sm / m1) * i2,
        ke: 2 * dk - k1 - 2 * k2,
        f2m: T::ONE / m2,
        f2e: -k2,
    }
}

/// σ² given: f = 1/(2σ²); A = (σ1² − σ2²)/σ2² with the exact difference.
#[inline(always)]
fn grad_var<T: Real>(a1: T, a2: T) -> GradPrep<T> {
    let (v1, k1) = a1.frexp1();
    let (v2, k2) = a2.frexp1();
    let (dm, dk) = diff_scaled(v1, k1, v2, k2);
    let i2 = T::ONE / v2;
    GradPrep {
        valid: a1 > T::ZERO && a1 <= T::MAX && a2 > T::ZERO && a2 <= T::MAX,
        im: i2,
        ie: -k2,
        am: dm * i2,
        ae: dk - k2,
        cm: T::HALF * i2,
        ce: -k2,
        km: T::HALF * dm * i2 / v1,
        ke: dk - k2 - k1,
        f2m: T::HALF * i2,
        f2e: -k2,
    }
}

/// 1/σ² = τ given: ρ² = τ2/τ1, f = −1/(2τ); A = (τ2 − τ1)/τ1 with the exact difference.
#[inline(always)]
fn grad_precision<T: Real>(a1: T, a2: T) -> GradPrep<T> {
    let (p1, k1) = a1.frexp1();
    let (p2, k2) = a2.frexp1();
    let (dm, dk) = diff_scaled(p2, k2, p1, k1);
    let i1 = T::ONE / p1;
    GradPrep {
        valid: a1 > T::ZERO && a1 <= T::MAX && a2 > T::ZERO && a2 <= T::MAX,
        im: p2,
        ie: k2,
        am: dm * i1,
        ae: dk - k1,
        cm: -T::HALF * p2 * i1 * i1,
        ce: k2 - 2 * k1,
        km: -T::HALF * dm * i1 * i1,
        ke: dk - 2 * k1,
        f2m: -T::HALF / p2,
        f2e: -k2,
    }
}

/// ln σ (`LOGVAR == false`, f = 1) or ln σ² (`true`, f = ½) given:
/// x = ln ρ² from the exact difference of the inputs (as a two-float sum),
/// ρ² = eˣ, A = expm1(x) (and ±eˣ / −1 where the other term is negligible),
/// 1/σ2² = e^(−2 ln σ2) from an exact argument.
#[inline(always)]
fn grad_log<T: Real, const LOGVAR: bool>(a1: T, a2: T) -> GradPrep<T> {
    // ½a1 − ½a2 = hh + hl exactly (never overflows); x = c·(hh + hl).
    let h1 = T::HALF * a1;
    let h2 = -T::HALF * a2;
    let swap = h1.abs() < h2.abs();
    let (hh, hl) = fast_two_sum(sel(swap, h2, h1), sel(swap, h1, h2));
    let c = sel(LOGVAR, T::TWO, T::TWO * T::TWO);
    let lim = T::EXP_ARG_MAX;
    let in_range = hh.abs() <= lim;
    let xh = c * clampf(hh, -lim, lim);
    let xl = sel(in_range, c * hl, T::ZERO);
    let (pm, pe) = exp_sat(xh);
    let rm = pm * (T::ONE + xl);
    // A = ρ² − 1: for |x| ≤ 64 expm1 (plus the low part); beyond, ρ² or −1 alone.
    let lim_a = T::from_i32(64);
    let em = expm1(clampf(xh, -lim_a, lim_a));
    let am_mid = em + (T::ONE + em) * xl;
    let high = xh > lim_a;
    let low = xh < -lim_a;
    let am = sel(high, rm, sel(low, -T::ONE, am_mid));
    let ae = sel(high, pe, 0);
    // 1/σ2² = e^(−2 ln σ2) = e^(−a2) (log-variance) or e^(−2·a2).
    let s2 = sel(LOGVAR, T::HALF * a2, a2);
    let s2c = clampf(s2, -lim, lim);
    let (im, ie) = exp_sat(-T::TWO * s2c);
    let f = sel(LOGVAR, T::HALF, T::ONE);
    GradPrep {
        valid: a1.is_finite() && a2.is_finite(),
        im,
        ie,
        am,
        ae,
        cm: f * rm,
        ce: pe,
        km: f * am,
        ke: ae,
        f2m: f,
        f2e: 0,
    }
}

/// `m·2^e` as a value: ±∞ where it exceeds the largest finite value (found
/// by comparing exponents, never by IEEE overflow), gradual underflow below
/// the normal range, 0 for `m = 0`.
#[inline(always)]
fn finish<T: Real>(m: T, e: i32) -> T {
    let nz = m != T::ZERO;
    let (f, k) = sel(nz, m.abs(), T::ONE).frexp1();
    let t = k + e;
    let v = sel(t >= T::MAX_EXP, T::INFINITY, scale2(f, t));
    sel(nz, sel(m < T::ZERO, -v, v), T::ZERO)
}

/// The gradients of the cross-entropy and of KL with respect to the inputs
/// `(μ1, a1, μ2, a2)` in the parameterisation `P` (see [`param`]):
/// `[∂H/∂μ1, ∂H/∂a1, ∂H/∂μ2, ∂H/∂a2, ∂KL/∂μ1, ∂KL/∂a1, ∂KL/∂μ2, ∂KL/∂a2]`.
///
/// With q = (μ1 − μ2)/σ2, ρ = σ1/σ2 and A = ρ² − 1:
/// ∂/∂μ1 = (μ1 − μ2)/σ2² = −∂/∂μ2 (both measures), ∂KL/∂a1 = A·f1,
/// ∂H/∂a1 = ρ²·f1, ∂/∂a2 = (1 − ρ² − q²)·f2 = −(A + q²)·f2 (both), where
/// f = ∂σ-form/∂a is 1/σ (σ), 1/(2σ²) (σ²), 1 (ln σ), ½ (ln σ²) and
/// −1/(2τ) (τ = 1/σ²). A comes from the exact difference of the inputs
/// (or `expm1` of it), so it stays accurate near ρ = 1; every quantity is
/// carried as a mantissa and an integer exponent, so results overflow to
/// ±∞ (or underflow) only where the exact gradient does.
///
/// Invalid input (as for [`measures`]) gives NaN in all eight values.
/// Branch-free, mirrored line for line by `shaders/gradients.wgsl`.
// KEEP IN SYNC with shaders/gradients.wgsl (fn gradients and its helpers).
#[inline(always)]
pub fn gradients<T: Real, const P: u32>(mu1: T, a1: T, mu2: T, a2: T) -> [T; GRADIENTS] {
    // Δμ = ±mh·2^kd, as in `measures`.
    let DeltaMu {
        diff,
        has_diff,
        mh,
        kd,
        ..
    } = delta_mu(mu1, mu2);
    let md = sel(has_diff, sel(diff < T::ZERO, -mh, mh), T::ZERO);

    let g = match P {
        param::VAR => grad_var(a1, a2),
        param::LOGSTD => grad_log::<T, false>(a1, a2),
        param::LOGVAR => grad_log::<T, true>(a1, a2),
        param::PRECISION => grad_precision(a1, a2),
        _ => grad_std(a1, a2),
    };
    let valid = g.valid && mu1.is_finite() && mu2.is_finite();

    // ∂/∂μ1 = Δμ/σ2².
    let gm = md * g.im;
    let ge = kd + g.ie;
    // A normalised to a mantissa in [1, 2) (with log-parameters it comes
    // as expm1(x) at exponent 0, tiny for tiny x: aligned as it is, a tiny
    // q² would be flushed — a fuzzing finding).
    let a_nz = g.am != T::ZERO;
    let (af, ak) = sel(a_nz, g.am.abs(), T::ONE).frexp1();
    let an = sel(a_nz, sel(g.am < T::ZERO, -af, af), T::ZERO);
    let ane = sel(a_nz, g.ae + ak, NO_EXP);
    // q² = Δμ²/σ2², and 1 − ρ² − q² = −(A + q²) at a common scale.
    let qm = sel(has_diff, mh * mh * g.im, T::ZERO);
    let qe = 2 * kd + g.ie;
    let be = sel(has_diff, qe.max(ane), ane);
    let bm = -(an * T::pow2(ane - be) + qm * T::pow2(qe - be));

    let d_mu1 = finish(gm, ge);
    let d_mu2 = finish(-gm, ge);
    let d_a2 = finish(bm * g.f2m, be + g.f2e);
    let kl_a1 = finish(g.km, g.ke);
    let ce_a1 = finish(g.cm, g.ce);
    let out = [d_mu1, ce_a1, d_mu2, d_a2, d_mu1, kl_a1, d_mu2, d_a2];
    out.map(|v| sel(valid, v, T::NAN))
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

    /// The reduced-argument logarithms equal [`ln_scaled`] bit for bit on
    /// their whole domain (every f32 in [½, 2]), f64 on a sample.
    #[test]
    fn ln_mant_and_ln_ratio_equal_ln_scaled() {
        let (lo, hi) = (0.5f32.to_bits(), 2.0f32.to_bits());
        for bits in lo..=hi {
            let r = f32::from_bits(bits);
            for k in [-300, -1, 0, 1, 77] {
                assert_eq!(
                    ln_ratio(r, k).to_bits(),
                    ln_scaled(r, k).to_bits(),
                    "{r} {k}"
                );
                if r >= 1.0 {
                    assert_eq!(
                        ln_mant(r, k).to_bits(),
                        ln_scaled(r, k).to_bits(),
                        "{r} {k}"
                    );
                }
            }
        }
        let mut r = 0.5f64;
        while r <= 2.0 {
            for k in [-3000, -1, 0, 1, 77] {
                assert_eq!(
                    ln_ratio(r, k).to_bits(),
                    ln_scaled(r, k).to_bits(),
                    "{r} {k}"
                );
                if r >= 1.0 {
                    assert_eq!(
                        ln_mant(r, k).to_bits(),
                        ln_scaled(r, k).to_bits(),
                        "{r} {k}"
                    );
                }
            }
            r = f64::from_bits(r.to_bits() + 0x1_2345_6789);
        }
        assert_eq!(
            ln_ratio(2.0f32, 3).to_bits(),
            ln_scaled(2.0f32, 3).to_bits()
        );
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
