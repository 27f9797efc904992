//! The information measures of one Gaussian pair ([`measures`]) and the
//! conversion of each parameterisation (docs/ARCHITECTURE.md §2.1–§2.8).
//!
//! KEEP IN SYNC with `shaders/measures.wgsl`: the f32 and f64
//! instantiations of [`measures`] and of every function it calls are
//! mirrored, step for step, by that file (same names, same order of
//! operations, same constants).

use super::ln_exp::*;
use super::Real;

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

/// Positions of the measures in the output of [`measures`] (canonical order;
/// the full table, mirrored by the kernels' `WRITE_*` order, though the Rust
/// paths name only some).
#[allow(dead_code)]
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
    /// The low parts of q1 and q2: (q + ql)·2^e to about twice the format's
    /// precision (for the overflow decision, §3: only the scaled sums of
    /// [`kl_core`] read them).
    q1l: T,
    q2l: T,
    /// ρ² = p·2^pe and ρ⁻² = pr·2^pre, ρ = σ1/σ2, and their low parts.
    p: T,
    pe: i32,
    pr: T,
    pre: i32,
    pl: T,
    prl: T,
    /// ln ρ (clamped to ±MAX) and ½ ln ρ (never overflows).
    ln_rho: T,
    hl: T,
    /// The exact rounding error of `hl` (log-parameters, where ½ ln ρ =
    /// ½s1 − ½s2 is one subtraction; 0 elsewhere).
    hle: T,
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
fn prep_std<T: Real, const EXACT: bool>(a1: T, a2: T, mh: T, kd: i32) -> Prep<T> {
    let (m1, k1) = a1.frexp1();
    let (m2, k2) = a2.frexp1();
    let kk = k1 - k2;
    // Near ρ = 1: w from the exact difference (Sterbenz) of the scaled mantissas.
    let kc = kk.clamp(-1, 1);
    let a = T::pow2(kc) * m1; // ρ·m2 when |K| ≤ 1
    let near = kk == kc && a <= T::TWO * m2 && T::TWO * a >= m2;
    let w = (a - m2) / (a + m2);
    let ln_rho = ln_ratio(m1 / m2, kk);
    let (q2, q2l) = sq_quot(mh, m2);
    let (q1, q1l) = sq_quot(mh, m1);
    let (p, pl) = sq_quot(m1, m2);
    let (pr, prl) = sq_quot(m2, m1);
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
        q1,
        e1: 2 * (kd - k1),
        q2,
        e2: 2 * (kd - k2),
        q1l: low(EXACT, q1l),
        q2l: low(EXACT, q2l),
        p,
        pe: 2 * kk,
        pr,
        pre: -2 * kk,
        pl: low(EXACT, pl),
        prl: low(EXACT, prl),
        ln_rho,
        hl: T::HALF * ln_rho,
        hle: T::ZERO,
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

/// A low part that only the overflow decision reads: kept by the exact
/// variant, 0 in the fast one (the compiler then drops its computation).
#[inline(always)]
fn low<T: Real>(exact: bool, l: T) -> T {
    if exact {
        l
    } else {
        T::ZERO
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

/// The low part of `q` after [`norm_q`] halved it (or not).
#[inline(always)]
fn norm_l<T: Real>(q: T, ql: T) -> T {
    sel(q >= T::TWO * T::TWO, T::HALF * ql, ql)
}

/// `(nh + nl)/d = q + ql` (two-float), for positive `nh ∈ [1, 4)`, `d ∈ [1, 2)`:
/// `q` is the rounded quotient, `ql` from the exact residual.
#[inline(always)]
pub(crate) fn quot_dw<T: Real>(nh: T, nl: T, d: T) -> (T, T) {
    let q = nh / d;
    let (t, te) = two_prod(q, d);
    (q, ((T::exact_sub(nh, t) - te) + nl) / d)
}

/// `(n/d)² = h + l` (two-float) for mantissas `n, d ∈ [1, 2)`; `h` is
/// `(n/d)·(n/d)` rounded, as the one-float formulas form it.
#[inline(always)]
fn sq_quot<T: Real>(n: T, d: T) -> (T, T) {
    let (r, rl) = quot_dw(n, T::ZERO, d);
    let (h, e) = two_prod(r, r);
    (h, e + T::TWO * r * rl)
}

/// The low part of `reference` against the two-float `h + l` of the same
/// quantity (`h` close to `reference`, both positive and normal).
#[inline(always)]
pub(crate) fn low_of<T: Real>(reference: T, h: T, l: T) -> T {
    T::exact_sub(h, reference) + l
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
fn ratio_sq<T: Real>(nm: T, nk: i32, dm: T, dk: i32) -> (T, i32, T, i32, T, bool, T, T, T, T, T) {
    let e = nk - dk;
    let ec = e.clamp(-3, 3);
    let vv = T::pow2(ec) * nm;
    let four = T::TWO * T::TWO;
    let near = e == ec && vv <= four * dm && four * vv >= dm;
    let u = (vv - dm) / (vv + dm);
    let w = u / (T::ONE + (T::ONE - u * u).sqrt());
    let (p, pl) = quot_dw(nm, T::ZERO, dm);
    let (pr, prl) = quot_dw(dm, T::ZERO, nm);
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
        pl,
        prl,
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
fn prep_var<T: Real, const EXACT: bool>(a1: T, a2: T, mh: T, kd: i32) -> Prep<T> {
    let (mv1, kv1) = a1.frexp1();
    let (mv2, kv2) = a2.frexp1();
    let (p, pe, pr, pre, ln_rho, near, w, v_near, rv_near, pl, prl) = ratio_sq(mv1, kv1, mv2, kv2);
    // σ1 − σ2 = (σ1² − σ2²)/(σ1 + σ2): no cancellation.
    let (ms1, ks1) = sqrt_exp(mv1, kv1);
    let (ms2, ks2) = sqrt_exp(mv2, kv2);
    let (dv, kvm) = diff_scaled(mv1, kv1, mv2, kv2);
    let (ss, ksm) = sum_scaled(ms1, ks1, ms2, ks2);
    let (mh2, nl) = two_prod(mh, mh);
    let (q1, q1l) = quot_dw(mh2, nl, mv1);
    let (q2, q2l) = quot_dw(mh2, nl, mv2);
    let (sh, sl, se) = sum_dw(mv1, kv1, mv2, kv2);
    Prep {
        valid: a1 > T::ZERO && a1 <= T::MAX && a2 > T::ZERO && a2 <= T::MAX,
        ln1: T::HALF * ln_mant(mv1, kv1),
        ln2: T::HALF * ln_mant(mv2, kv2),
        q1,
        e1: 2 * kd - kv1,
        q2,
        e2: 2 * kd - kv2,
        q1l: low(EXACT, q1l),
        q2l: low(EXACT, q2l),
        p,
        pe,
        pr,
        pre,
        pl: low(EXACT, pl),
        prl: low(EXACT, prl),
        ln_rho,
        hl: T::HALF * ln_rho,
        hle: T::ZERO,
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
fn prep_precision<T: Real, const EXACT: bool>(a1: T, a2: T, mh: T, kd: i32) -> Prep<T> {
    let (mp1, kp1) = a1.frexp1();
    let (mp2, kp2) = a2.frexp1();
    let (p, pe, pr, pre, ln_rho, near, w, v_near, rv_near, pl, prl) = ratio_sq(mp2, kp2, mp1, kp1);
    // σ1 − σ2 = (τ2² − τ1²)/(τ1·τ2·(τ1 + τ2)), τ = √precision = 1/σ.
    let (mt1, kt1) = sqrt_exp(mp1, kp1);
    let (mt2, kt2) = sqrt_exp(mp2, kp2);
    let (dp, kpm) = diff_scaled(mp2, kp2, mp1, kp1);
    let (st, ktm) = sum_scaled(mt1, kt1, mt2, kt2);
    let (nh, nl) = two_prod(mh, mh);
    let (tq1, tq1e) = two_prod(nh, mp1);
    let (tq2, tq2e) = two_prod(nh, mp2);
    let (q1, e1) = norm_q(tq1, 2 * kd + kp1);
    let (q2, e2) = norm_q(tq2, 2 * kd + kp2);
    let q1l = norm_l(tq1, tq1e + nl * mp1);
    let q2l = norm_l(tq2, tq2e + nl * mp2);
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
        q1l: low(EXACT, q1l),
        q2l: low(EXACT, q2l),
        p,
        pe,
        pr,
        pre,
        pl: low(EXACT, pl),
        prl: low(EXACT, prl),
        ln_rho,
        hl: T::HALF * ln_rho,
        hle: T::ZERO,
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
fn prep_log<T: Real, const LOGVAR: bool, const EXACT: bool>(
    a1: T,
    a2: T,
    mh: T,
    kd: i32,
) -> Prep<T> {
    let s1 = sel(LOGVAR, T::HALF * a1, a1); // ln σ1
    let s2 = sel(LOGVAR, T::HALF * a2, a2);
    // ½ ln ρ (never overflows) and its exact rounding error.
    let (hx1, hx2) = (T::HALF * s1, -T::HALF * s2);
    let hswap = hx1.abs() < hx2.abs();
    let (hl, hle) = fast_two_sum(sel(hswap, hx2, hx1), sel(hswap, hx1, hx2));
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
    // Low parts (for the overflow decision): σ⁻², ρ² and ρ⁻² as two-float
    // products of two-float exps of exact arguments (exp_tri's h is not
    // normalised: its l reaches 2⁻⁷·h, so the l·l products count);
    // e^(±4 hl) with hl's rounding error.
    let (_, hi1, li1) = exp_tri(-T::TWO * s1c);
    let (_, hi2, li2) = exp_tri(-T::TWO * s2c);
    let (nh, nl) = two_prod(mh, mh);
    let (t1, t1e) = two_prod(nh, hi1);
    let (t2, t2e) = two_prod(nh, hi2);
    let q1l = norm_l(
        mh2 * iv1,
        low_of(mh2 * iv1, t1, t1e + ((nh * li1 + nl * hi1) + nl * li1)),
    );
    let q2l = norm_l(
        mh2 * iv2,
        low_of(mh2 * iv2, t2, t2e + ((nh * li2 + nl * hi2) + nl * li2)),
    );
    let (u1, u1e) = two_prod(h1, hi2);
    let (u2, u2e) = two_prod(h2, hi1);
    let hle_x = sel(hl.abs() <= lim, hle, T::ZERO);
    let (_, hb, lb) = exp_tri(T::TWO * T::TWO * hx);
    let (_, hbr, lbr) = exp_tri(-T::TWO * T::TWO * hx);
    let pl_small = low_of(sq1 * iv2, u1, u1e + ((h1 * li2 + l1 * hi2) + l1 * li2));
    let prl_small = low_of(sq2 * iv1, u2, u2e + ((h2 * li1 + l2 * hi1) + l2 * li1));
    let pl_big = low_of(pb, hb, lb + hb * (T::TWO * T::TWO * hle_x));
    let prl_big = low_of(pbr, hbr, lbr - hbr * (T::TWO * T::TWO * hle_x));
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
        q1l: low(EXACT, q1l),
        q2l: low(EXACT, q2l),
        p: sel(small, sq1 * iv2, pb),
        pe: sel(small, sqe1 + ive2, pbe),
        pr: sel(small, sq2 * iv1, pbr),
        pre: sel(small, sqe2 + ive1, pbre),
        pl: low(EXACT, sel(small, pl_small, pl_big)),
        prl: low(EXACT, sel(small, prl_small, prl_big)),
        ln_rho,
        hl,
        hle,
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

/// KL(p‖q) = M + V from the pieces: the mean part M = ½(q + ql)·2^e (q = 0
/// for μ1 = μ2), ρ² = (p + pl)·2^pe, the rest of V far from ρ = 1 (−½ − ln ρ,
/// with the low part `vl` of its rounding), and near ρ = 1 the series value
/// of V. Returns the value (meaningless when infinite) and whether it
/// exceeds the format's largest finite value. (Jeffreys' divergence has the
/// same shape, see [`measures`].) `logv`: the inputs are log-parameters, so
/// the rest of V may itself be huge.
///
/// Large sums are formed in two-float arithmetic and rounded once, so that
/// the result is +∞ exactly when the value reaches MAX + ½ ulp (the
/// overflow rule of docs/ARCHITECTURE.md §3), and MAX just below it.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn kl_core<T: Real>(
    exact: bool,
    logv: bool,
    q: T,
    ql: T,
    e_m: i32,
    p: T,
    pl: T,
    pe: i32,
    v_far: T,
    vl: T,
    v_inf: bool,
    near: bool,
    v_near: T,
) -> (T, bool, bool) {
    let b = sel(near, T::ZERO, p);
    let bl = sel(near, T::ZERO, pl);
    let e_b = sel(near, NO_EXP, pe);
    let v_rest = sel(near, v_near, v_far);
    let v_low = sel(near, T::ZERO, vl);

    let g = e_m.max(e_b);
    // Ordinary magnitudes: sum directly.
    // scale2: terms below the smallest normal underflow gradually (a
    // fuzzing finding: a KL that is itself subnormal lost its mean part).
    let m_term = scale2(T::HALF * q, e_m);
    let b_term = scale2(T::HALF * b, e_b);
    let kl_direct = m_term + (b_term + v_rest);
    // At least one term beyond 2^(SAFE_EXP−3): sum the large terms at scale
    // 2^−g in two-float arithmetic (v_rest, at most a few hundred with σ, σ²
    // or 1/σ² given, is far below even their low parts), round once and
    // compare with MAX at that scale.
    let (cm, cb) = (T::pow2(e_m - g), T::pow2(e_b - g));
    let (ya, yb) = (T::HALF * q * cm, T::HALF * b * cb);
    let (y0, r0) = fast_two_sum(sel(ya >= yb, ya, yb), sel(ya >= yb, yb, ya));
    let low0 = r0 + (T::HALF * ql * cm + T::HALF * bl * cb);
    // With log-parameters, ln ρ itself may be as large as the largest
    // finite value: then v_rest belongs in the scaled sum too.
    let yv = scale2(v_rest, -g);
    let vswap = y0.abs() < yv.abs();
    let (y1, r1) = fast_two_sum(sel(vswap, yv, y0), sel(vswap, y0, yv));
    let y = match (exact, logv) {
        (true, true) => y1 + ((r1 + scale2(v_low, -g)) + low0),
        (true, false) => y0 + low0,
        // The fast variant (see `measures_fast`): the one-float sum; a lane
        // that reaches this branch is flagged and evaluated exactly.
        (false, true) => (ya + yb) + yv,
        (false, false) => ya + yb,
    };
    let hi = g - T::SAFE_EXP;
    let limit = T::MAX * T::pow2(-T::SAFE_EXP) * T::pow2(-hi);
    let kl_scaled = y * T::pow2(hi) * T::pow2(T::SAFE_EXP);
    let big = g > T::SAFE_EXP;
    let kl_inf = v_inf || (big && (g >= T::MAX_EXP + 3 || y > limit));
    (sel(big, kl_scaled, kl_direct), kl_inf, big)
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
pub(crate) struct DeltaMu<T> {
    /// The inputs were halved first (|μ| beyond a quarter of the largest value).
    pub(crate) halve: bool,
    /// μ1 − μ2, or (μ1 − μ2)/2 when `halve`.
    pub(crate) diff: T,
    pub(crate) has_diff: bool,
    pub(crate) mh: T,
    /// The exponent of `diff` itself (`kd` without the halving).
    pub(crate) kh: i32,
    pub(crate) kd: i32,
}

#[inline(always)]
pub(crate) fn delta_mu<T: Real>(mu1: T, mu2: T) -> DeltaMu<T> {
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
    measures_with::<T, P, true>(mu1, a1, mu2, a2).0
}

/// [`measures`] without the low parts that decide overflow at the threshold
/// (§3 of docs/ARCHITECTURE.md), and whether the pair needs them: where the
/// flag is false the values are bit-identical to [`measures`]; where it is
/// true (a KL-type sum or D_B beyond 2^SAFE_EXP) the caller evaluates
/// [`measures`] instead. The CPU block loops use it so that the two-float
/// sums cost nothing on ordinary rows.
#[inline(always)]
pub(crate) fn measures_fast<T: Real, const P: u32>(
    mu1: T,
    a1: T,
    mu2: T,
    a2: T,
) -> ([T; MEASURES], bool) {
    measures_with::<T, P, false>(mu1, a1, mu2, a2)
}

#[inline(always)]
fn measures_with<T: Real, const P: u32, const EXACT: bool>(
    mu1: T,
    a1: T,
    mu2: T,
    a2: T,
) -> ([T; MEASURES], bool) {
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
        param::VAR => prep_var::<T, EXACT>(a1, a2, mh, kd),
        param::LOGSTD => prep_log::<T, false, EXACT>(a1, a2, mh, kd),
        param::LOGVAR => prep_log::<T, true, EXACT>(a1, a2, mh, kd),
        param::PRECISION => prep_precision::<T, EXACT>(a1, a2, mh, kd),
        _ => prep_std::<T, EXACT>(a1, a2, mh, kd),
    };
    let valid = pp.valid && mu1.is_finite() && mu2.is_finite();
    let q1 = sel(has_diff, pp.q1, T::ZERO);
    let e1 = sel(has_diff, pp.e1, NO_EXP);
    let q2 = sel(has_diff, pp.q2, T::ZERO);
    let e2 = sel(has_diff, pp.e2, NO_EXP);

    // Entropies, KL both ways, cross-entropy, Jeffreys.
    let entropy = T::HALF_LN_2PI_E + pp.ln1;
    let entropy_q = T::HALF_LN_2PI_E + pp.ln2;
    // −½ − ln ρ and +ln ρ − ½ with the low parts of their rounding (ln ρ =
    // 2hl + 2hle exactly with log-parameters).
    let v_far = -T::HALF - pp.ln_rho;
    let rv_far = -T::HALF + pp.ln_rho;
    let lr_big = pp.ln_rho.abs() >= T::HALF;
    let (_, ve) = fast_two_sum(
        sel(lr_big, -pp.ln_rho, -T::HALF),
        sel(lr_big, -T::HALF, -pp.ln_rho),
    );
    let (_, rve) = fast_two_sum(
        sel(lr_big, pp.ln_rho, -T::HALF),
        sel(lr_big, -T::HALF, pp.ln_rho),
    );
    let vl = ve - T::TWO * pp.hle;
    let rvl = rve + T::TWO * pp.hle;
    // (A pipeline constant: the branch on it in kl_core folds away.)
    let logv = matches!(P, param::LOGSTD | param::LOGVAR);
    let q1l = sel(has_diff, pp.q1l, T::ZERO);
    let q2l = sel(has_diff, pp.q2l, T::ZERO);
    let (kl, kl_inf, kl_big) = kl_core(
        EXACT, logv, q2, q2l, e2, pp.p, pp.pl, pp.pe, v_far, vl, pp.hl_inf, pp.near, pp.v_near,
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
    let (rkl, rkl_inf, rkl_big) = kl_core(
        EXACT, logv, q1, q1l, e1, pp.pr, pp.prl, pp.pre, rv_far, rvl, pp.hl_inf, pp.near,
        pp.rv_near,
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
    let (ja, jb) = (q1 * T::pow2(e1 - ej), q2 * T::pow2(e2 - ej));
    let (jq, jr) = fast_two_sum(sel(ja >= jb, ja, jb), sel(ja >= jb, jb, ja));
    let jl = jr + (q1l * T::pow2(e1 - ej) + q2l * T::pow2(e2 - ej));
    let (qj, ejn) = norm_q(jq, ej);
    let (jeffreys, jeffreys_inf, j_big) = kl_core(
        EXACT,
        logv,
        qj,
        norm_l(jq, jl),
        sel(has_diff, ejn, NO_EXP),
        sel(side1, pp.p, pp.pr),
        sel(side1, pp.pl, pp.prl),
        sel(side1, pp.pe, pp.pre),
        T::HALF * rs2 - T::ONE,
        T::ZERO,
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
    // |½ ln ρ| = |hl + hle|: hle is 0 unless the inputs are log-parameters.
    let hle_abs = sel(pp.hl < T::ZERO, -pp.hle, pp.hle);
    let lp_far =
        ((pp.hl.abs() - T::HALF * T::LN2_HI) + (hle_abs - T::HALF * T::LN2_LO)) + T::HALF * log1p;
    let lp = sel(pp.near, lp_near, lp_far);

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
    // D_B: X + lp directly; for large X from X's two-float value at scale
    // 2^−xe, rounded once and compared with MAX there (the overflow rule).
    let db_big = has_diff && xe > T::SAFE_EXP;
    let xd = T::HALF * T::HALF * xq + (T::HALF * T::HALF * xc + scale2(lp, -xe));
    let dhi = xe - T::SAFE_EXP;
    let db_limit = T::MAX * T::pow2(-T::SAFE_EXP) * T::pow2(-dhi);
    let db_scaled = xd * T::pow2(dhi) * T::pow2(T::SAFE_EXP);
    // (¼xq > 2⁻⁵: from 2^(MAX_EXP + 8) on, D_B overflows whatever xq is.)
    let db_inf = sel(db_big, xe >= T::MAX_EXP + 8 || xd > db_limit, x_inf);
    let bhattacharyya = sel(db_big, db_scaled, x + lp);
    let x_big = x_inf || xh > T::EXP_ARG_MAX;
    let (ex0, exk) = exp_split(-sel(x_big, T::EXP_ARG_MAX, xh));
    let ex = ex0 * (T::ONE - sel(x_big, T::ZERO, xl));

    let f_near = ((T::ONE - t) / (T::ONE + t)).sqrt();
    let (rm, re) = sqrt_exp(ps, pes); // ρs = rm·2^re
    let (f_far0, fe_far0) = sqrt_exp(T::TWO * rm / one_rs2, re);
    // With log-parameters ρs² = e^(−4|½ ln ρ|) saturates beyond EXP_ARG_MAX
    // (f32: |½ ln ρ| > 88) while √ρs = e^(−|½ ln ρ|) can still give a
    // subnormal coefficient: there √(2ρs/(1 + ρs²)) = e^(−|hl|)·√2 (ρs² is
    // 0 beside 1), hl = ½s1 − ½s2 with its exact rounding error (a finding:
    // the coefficient was flushed to 0).
    let sat = logv && T::TWO * T::TWO * pp.hl.abs() > T::EXP_ARG_MAX;
    let (ey, ek) = exp_split(-sel(sat, pp.hl.abs(), T::ZERO));
    let f_sat = ey * (T::ONE - hle_abs) * T::SQRT2;
    let f_far = sel(sat, f_sat, f_far0);
    let fe_far = sel(sat, ek, fe_far0);
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
        sel(db_inf, inf, bhattacharyya),
        coefficient,
        hellinger,
        sel(w2_inf, inf, w2),
    ];
    // Whether any scaled sum was taken (a cheap superset of the three
    // kl_core flags: their exponents are at most max(e1, e2) + 1 and
    // max(pe, pre); the flags themselves are checked in debug builds).
    let exact_needed = e1.max(e2) + 1 > T::SAFE_EXP || pp.pe.max(pp.pre) > T::SAFE_EXP || db_big;
    debug_assert!(exact_needed || !(kl_big || rkl_big || j_big));
    (out.map(|v| sel(valid, v, T::NAN)), exact_needed)
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
#[cfg(test)]
#[inline(always)]
pub fn divergences<T: Real>(mu1: T, sigma1: T, mu2: T, sigma2: T) -> [T; 3] {
    let m = measures::<T, { param::STD }>(mu1, sigma1, mu2, sigma2);
    [m[0], m[1], m[2]]
}
