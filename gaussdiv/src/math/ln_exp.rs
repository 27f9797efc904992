//! Our own logarithm and exponential, and the scaled and error-free
//! arithmetic the formulas are built from (docs/ARCHITECTURE.md §2.3, §2.11).
//!
//! KEEP IN SYNC with `shaders/ln_exp.wgsl`: the f32 and f64 instantiations of
//! every function here are mirrored, step for step, by that file (same
//! names, same order of operations); the precision-dependent polynomials
//! (`horner` over the [`Real`] coefficients here) are the preludes'
//! `ln_poly`, `exp_poly`, `atanh_r`, `atanh_r_wide` and `taylor_tail2` there.

use super::Real;

/// Exponent marker for "this term is absent" (far below any real exponent).
pub(crate) const NO_EXP: i32 = -100_000;

/// Exponent of a saturated `exp`: beyond every format's range, and small
/// enough that sums of a few of them stay far inside the i32 range.
pub(crate) const SAT_EXP: i32 = 1 << 20;

/// Horner evaluation of `c[0] + t·(c[1] + t·(c[2] + …))`.
#[inline(always)]
pub(crate) fn horner<T: Real>(coeffs: &[T], t: T) -> T {
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
#[allow(dead_code)] // the Rust mirror of ln_exp.wgsl's `ln_scaled`
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
    ln_mant_kf(m0, T::from_i32(k))
}

/// [`ln_mant`] with the exponent given as a float (an integer value below
/// 2^24 in magnitude, so that adding the reduction's 1 is exact and the
/// result is bit for bit `ln_mant`'s): the form the CPU's lane-parallel
/// full-covariance path calls, which keeps exponents in f64 lanes.
#[inline(always)]
pub(crate) fn ln_mant_kf<T: Real>(m0: T, k: T) -> T {
    let high = m0 > T::SQRT2;
    let m = sel(high, m0 * T::HALF, m0);
    let dk = k + sel(high, T::ONE, T::ZERO);
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
pub(crate) fn ln_ratio<T: Real>(r: T, k: i32) -> T {
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
pub(crate) fn sel<T>(c: bool, a: T, b: T) -> T {
    if c {
        a
    } else {
        b
    }
}

/// `x` clamped to `[lo, hi]` (selects only).
#[inline(always)]
pub(crate) fn clampf<T: Real>(x: T, lo: T, hi: T) -> T {
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
pub(crate) fn exp_sat<T: Real>(x: T) -> (T, i32) {
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
pub(crate) fn sqrt_exp<T: Real>(m: T, e: i32) -> (T, i32) {
    let odd = e & 1;
    (sel(odd != 0, T::TWO * m, m).sqrt(), (e - odd) >> 1)
}

/// `m1·2^(k1−k) − m2·2^(k2−k)` and `k = max(k1, k2)`: a difference of two
/// positive numbers at a common scale (one rounding; exact when they are close).
#[inline(always)]
pub(crate) fn diff_scaled<T: Real>(m1: T, k1: i32, m2: T, k2: i32) -> (T, i32) {
    let k = k1.max(k2);
    (m1 * T::pow2(k1 - k) - m2 * T::pow2(k2 - k), k)
}

/// `m1·2^(k1−k) + m2·2^(k2−k)` and `k = max(k1, k2)`.
#[inline(always)]
pub(crate) fn sum_scaled<T: Real>(m1: T, k1: i32, m2: T, k2: i32) -> (T, i32) {
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

/// `x·y = p + e` for positive `x`, `y` of moderate size, exactly (no
/// underflow): the factors are split by a bit mask into halves, so every
/// partial product is exact (and a fused multiply-add of an exact product
/// changes nothing); the one cancelling difference `xh·yh − p` is formed
/// by [`Real::exact_sub`], so no compiler reassociation can round it; the
/// partial products are then added in Dekker's order, in which every
/// partial sum is exact. (Summing the two cross products first, as an
/// earlier version did, rounds at 2⁻¹² of `e` — a finding of the ∂/∂a2
/// regression rows.)
#[inline(always)]
pub(crate) fn two_prod<T: Real>(x: T, y: T) -> (T, T) {
    let p = x * y;
    let xh = x.split_hi();
    let xl = x - xh;
    let yh = y.split_hi();
    let yl = y - yh;
    (
        p,
        ((T::exact_sub(xh * yh, p) + xh * yl) + xl * yh) + xl * yl,
    )
}

/// `m² = h + l` with `h` exact and `l` to a few units in its own last place.
#[inline(always)]
pub(crate) fn square_dw<T: Real>(m: T) -> (T, T) {
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
pub(crate) fn exp_tri<T: Real>(x: T) -> (i32, T, T) {
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
pub(crate) fn scale2<T: Real>(y: T, e: i32) -> T {
    let e1 = e >> 1;
    y * T::pow2(e1) * T::pow2(e - e1)
}
