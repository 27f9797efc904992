//! The gradients of the cross-entropy and of KL ([`gradients`];
//! docs/ARCHITECTURE.md §2.9).
//!
//! KEEP IN SYNC with `shaders/gradients.wgsl` (fn gradients and its
//! helpers: same steps, same order, same names).

use super::ln_exp::*;
use super::measures::*;
use super::{param, Real};

/// Number of values [`gradients`] computes: ∂/∂(μ1, a1, μ2, a2) of the
/// cross-entropy, then the same four of KL (canonical order of the measures).
pub const GRADIENTS: usize = 8;

/// The parameterisation-specific pieces of the gradients, each a mantissa
/// and an integer exponent (value m·2^e), so that no intermediate over- or
/// underflows before the result does.
struct GradPrep<T> {
    /// Whether the inputs are valid in the parameterisation.
    valid: bool,
    /// 1/σ2² = (im + il)·2^ie: `il` its low part (two-float accuracy, for
    /// ∂/∂a2 where it cancels; to about 2⁻³⁰ relative in f32 and 2⁻⁵⁹ in
    /// f64 with log-parameters).
    im: T,
    il: T,
    ie: i32,
    /// ρ² = rho2m·2^rho2e.
    rho2m: T,
    rho2e: i32,
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
    // 1/m2² = 1/(d + dl) with m2² = d + dl exactly.
    let (d2, d2l) = two_prod(m2, m2);
    let (i2, r2) = quot_dw(T::ONE, T::ZERO, d2);
    GradPrep {
        valid: a1 > T::ZERO && a1 <= T::MAX && a2 > T::ZERO && a2 <= T::MAX,
        im: i2,
        il: r2 - i2 * i2 * d2l,
        ie: -2 * k2,
        rho2m: m1 * m1 * i2,
        rho2e: 2 * k1 - 2 * k2,
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
    let (i2, r2) = quot_dw(T::ONE, T::ZERO, v2);
    GradPrep {
        valid: a1 > T::ZERO && a1 <= T::MAX && a2 > T::ZERO && a2 <= T::MAX,
        im: i2,
        il: r2,
        ie: -k2,
        rho2m: v1 * i2,
        rho2e: k1 - k2,
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
        il: T::ZERO,
        ie: k2,
        rho2m: p2 * i1,
        rho2e: k2 - k1,
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
    let (_, ih, il) = exp_tri(-T::TWO * s2c);
    let f = sel(LOGVAR, T::HALF, T::ONE);
    GradPrep {
        valid: a1.is_finite() && a2.is_finite(),
        im,
        il: low_of(im, ih, il),
        ie,
        rho2m: rm,
        rho2e: pe,
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
    // Δμ = ±mh·2^kd, as in `measures`, and its rounding error (Δμ = (mh + dl)·2^kd).
    let DeltaMu {
        halve,
        diff,
        has_diff,
        mh,
        kh,
        kd,
    } = delta_mu(mu1, mu2);
    let xa = sel(halve, T::HALF * mu1, mu1);
    let ya = sel(halve, -T::HALF * mu2, -mu2);
    let swap = xa.abs() < ya.abs();
    let (_, derr) = fast_two_sum(sel(swap, ya, xa), sel(swap, xa, ya));
    let dl = scale2(sel(diff < T::ZERO, -derr, derr), -kh);
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
    // Where −(A + q²) cancels (ρ < 1 and q² ∈ [½, 2]): B = 1 − q² from the
    // two-float q² (1 − q² is exact there, Sterbenz), then B − ρ²; exact
    // for q = 1 (a finding: ∂/∂a2 came out 0 where it is −ρ²·f2).
    let (nh, nl0) = two_prod(mh, mh);
    let nl = nl0 + T::TWO * mh * dl;
    let (qt, qte) = two_prod(nh, g.im);
    let qlow = qte + (nh * g.il + nl * g.im);
    let qs = scale2(qt, qe);
    let qsl = scale2(qlow, qe);
    let mid = has_diff && g.am < T::ZERO && qs >= T::HALF && qs <= T::TWO;
    let bq_dw = (T::ONE - sel(mid, qs, T::ONE)) - sel(mid, qsl, T::ZERO);
    // σ given: B = (σ2 − |Δμ|)(σ2 + |Δμ|)/σ2², the difference exact
    // (Sterbenz) at σ2's scale, so B is accurate relative to itself (0 for
    // q = 1).
    let (m2, k2) = a2.frexp1();
    let sc = T::pow2((kd - k2).clamp(-2, 2));
    let (mhs, dls) = (mh * sc, dl * sc);
    let b_std = ((m2 - mhs) - dls) * ((m2 + mhs) + dls) * g.im;
    let bq = match P {
        param::STD => sel(mid, b_std, T::ZERO),
        _ => bq_dw,
    };
    let rv = scale2(g.rho2m, g.rho2e);
    let b_zero = bq == T::ZERO;
    let bm_mid = sel(b_zero, -g.rho2m, bq - rv);
    let be_mid = sel(b_zero, g.rho2e, 0);
    let d_a2 = finish(sel(mid, bm_mid, bm) * g.f2m, sel(mid, be_mid, be) + g.f2e);
    let kl_a1 = finish(g.km, g.ke);
    let ce_a1 = finish(g.cm, g.ce);
    let out = [d_mu1, ce_a1, d_mu2, d_a2, d_mu1, kl_a1, d_mu2, d_a2];
    out.map(|v| sel(valid, v, T::NAN))
}
