//! The [`Real`] trait: the operations and constants of a floating-point
//! format that the formulas need, and the macro that implements it. The two
//! implementations are in `prelude_f32.rs` and `prelude_f64.rs`, one beside
//! each WGSL prelude (docs/ARCHITECTURE.md §4.3).

use core::ops::{Add, Div, Mul, Neg, Sub};

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
    /// Smallest normal binary exponent (−126 or −1022; checked against the f64 prelude).
    #[allow(dead_code)]
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

/// `[1/3, 1/5, …, 1/(2N + 1)]` in f32: the coefficients 1/(2j + 3) of
/// R(t) = Σ t^j/(2j + 3), each one correctly rounded division, as
/// `1.0 / 3.0` written out would be.
// Used in const items only: an index out of range is a build error, never a panic.
#[allow(clippy::indexing_slicing)]
pub(crate) const fn atanh_coeffs_f32<const N: usize>() -> [f32; N] {
    let mut c = [0.0; N];
    let mut j = 0;
    while j < N {
        c[j] = 1.0 / (2 * j + 3) as f32;
        j += 1;
    }
    c
}

/// [`atanh_coeffs_f32`] in f64.
// Used in const items only: an index out of range is a build error, never a panic.
#[allow(clippy::indexing_slicing)]
pub(crate) const fn atanh_coeffs_f64<const N: usize>() -> [f64; N] {
    let mut c = [0.0; N];
    let mut j = 0;
    while j < N {
        c[j] = 1.0 / (2 * j + 3) as f64;
        j += 1;
    }
    c
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
