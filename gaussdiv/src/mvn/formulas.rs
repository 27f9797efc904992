//! The ten measures of one full-covariance pair (docs/ARCHITECTURE.md §9),
//! generic over f32 and f64.
//!
//! # Formulation
//!
//! Each side's covariance Σ gets a lower factor L (Σ = L·Lᵀ): the Cholesky
//! factor of a covariance, the given `scale_tril`, or U⁻ᵀ for a precision
//! matrix P = U·Uᵀ (U upper: Cholesky in reversed order). Everything is
//! first scaled by a common power of 4 (covariances ×4ʲ, factors and means
//! ×2ʲ, precisions ×4⁻ʲ) that brings the pair's variances near 1: the
//! divergences do not change, W₂ and the entropies are corrected exactly.
//!
//! With M = L2⁻¹L1 the whitened difference is N = M·Mᵀ − I; its eigenvalues
//! ν give λ = 1 + ν, the eigenvalues of Σ2⁻¹Σ1.
//!
//! **Far apart** (‖N‖_F ≥ ½, estimated from M):
//! * KL = Σ_j V(L1_jj/L2_jj) + ½Σ_{i>j} m_ij² + ½‖L2⁻¹Δμ‖², V(ρ) = ½(ρ² − 1) −
//!   ln ρ the univariate kernel's accurate scale part, taken from the two
//!   diagonal entries (not their rounded ratio); reverse KL with L1⁻¹L2;
//! * D_B's scale part Σ_k ½ ln cosh ln σ_k over the singular values σ_k of M
//!   (one-sided Jacobi: small ones keep their relative accuracy), each by
//!   the univariate kernel;
//! * W₂² = ‖Δμ‖² + ‖L1 − L2·U‖²_F, U the polar factor of L2ᵀL1 (one-sided
//!   Jacobi SVD): a sum of squares.
//!
//! **Close together** (‖N‖_F < ½): separate factorisations of Σ1 and Σ2
//! already lose the difference, so the pair is rewritten as one factor X_b of
//! a base side and a small triangular H, formed from the *exact* difference of
//! the inputs, with X_o = X_b·(I + H) a factor of the other side:
//! * cov/cov: N = L2⁻¹(Σ1 − Σ2)L2⁻ᵀ with Σ1 − Σ2 exact (Sterbenz), the
//!   solves refined once with a double-word residual so that every entry of
//!   N is accurate to its own magnitude (W₂ weighs N's entries by the
//!   variances: a normwise-accurate N is not enough when Σ is
//!   ill-conditioned), and
//!   I + N = (I + E)(I + E)ᵀ factored directly in E (e_jj = s/(1 + √(1 + s)),
//!   s = N_jj − Σ_{k<j} e_jk²; e_ij = (N_ij − Σ_{k<j} e_ik e_jk)/(1 + e_jj)): H = E;
//! * tril/tril: H = L2⁻¹(L1 − L2);
//! * prec/prec: N = U1⁻¹(P2 − P1)U1⁻ᵀ, factored as above into E, then
//!   H = ((I + E)⁻¹ − I)ᵀ (upper) with base side 1 (X_b = U1⁻ᵀ);
//! * cov/tril: Σ − L·Lᵀ with L·Lᵀ in double-word arithmetic (exact products);
//! * prec/tril: K = Lᵀ·P·L − I in double-word arithmetic, I + K = (I + F)(I + F)ᵀ,
//!   H = ((I + F)⁻¹ − I)ᵀ;
//! * prec/cov: as prec/tril with the computed Cholesky factor L of the
//!   covariance corrected by its exact residual δ = Σ − L·Lᵀ (double-word):
//!   X_b = L·R, R = (I + Z)^½, Z = L⁻¹δL⁻ᵀ (a short series), so that
//!   X_b·X_bᵀ = Σ exactly and K = R(LᵀPL − I)R + Z.
//!
//! Then, for any triangular H (lower or upper),
//! KL(o‖b) = Σ_j φ(h_jj) + ½Σ_{i≠j} h_ij², φ(e) = e + e²/2 − ln(1 + e) = V(1 + e)
//! (the univariate near-1 series), and KL(b‖o) the same of
//! H' = (I + H)⁻¹ − I; every term is non-negative. D_B's scale part is
//! −¼Σ_k ln(1 − τ_k²), τ = ν/(2 + ν) over the eigenvalues ν of
//! N = H + Hᵀ + H·Hᵀ (cyclic Jacobi, absolute accuracy u‖N‖), as
//! ½ atanh(τ²/(2 − τ²)) by its series. (The factor is ¼, not ½ as issue 15
//! wrote it: ½ ln(det Σ̄/√(det Σ1 det Σ2)) = −¼ Σ ln(1 − τ²).)
//! W₂'s covariance part is the Bures distance B² = tr(Σ_b⁻¹Y²), where Y =
//! (Σ_b^½Σ_oΣ_b^½)^½ − Σ_b solves Σ_bY + YΣ_b + Y² = Σ_b^½(Σ_o − Σ_b)Σ_b^½ (the
//! diagonal of this equation turns tr Σ_o + tr Σ_b − 2 tr(…)^½ into that sum
//! of squares). In the singular basis of X_b (X_b·Q = W, s_k = ‖w_k‖²) the
//! right-hand side is s_i s_j N'_ij with N' = QᵀNQ, and the fixed point
//! Y ← (C − Y²)∘[1/(s_i + s_j)] converges at a rate of about ‖N‖ without any
//! cancellation.
//!
//! **Both**: the mean parts ½‖L2⁻¹Δμ‖² (a product UᵀΔμ for a precision),
//! ⅛ΔμᵀΣ̄⁻¹Δμ = ¼ z2ᵀ(I + MMᵀ)⁻¹z2 (z2 = L2⁻¹Δμ), ‖Δμ‖²; entropies
//! d/2(1 + ln 2π) + Σ ln L_jj, the product of the diagonal carried as a
//! mantissa and an integer exponent and one logarithm taken; the
//! cross-entropy H(p1) + KL; the coefficient e^(−D_B) and Hellinger
//! √(1 − e^(−D_B)) as the univariate kernel forms them (√D·√φ(D) for
//! D < ½, φ(D) = (1 − e^(−D))/D by its series).

use super::linalg::*;
use super::near::{bures_near, db_term, inverse_minus_i, near_factor, whitened_difference};
use crate::math::{
    exp_split, horner, idx, ln_mant, measures, param, scale2, scale_part_near, Real, MEASURES,
};

/// How one side's matrix is given.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    /// A covariance Σ (symmetric; the lower triangle is used).
    Cov,
    /// The lower Cholesky factor L of Σ.
    Tril,
    /// A precision matrix P = Σ⁻¹ (symmetric; the lower triangle is used).
    Prec,
}

/// One side's inputs: the mean (d values) and the matrix (d·d, row-major).
#[derive(Clone, Copy)]
pub(crate) struct Side<'a, T> {
    pub kind: Kind,
    pub mu: &'a [T],
    pub m: &'a [T],
}

/// Which part of a pair is invalid, and why.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Bad {
    /// 1 or 2.
    pub side: u8,
    /// The mean (else the matrix).
    pub mean: bool,
    pub reason: String,
}

/// Which groups of measures a request needs (the rest are skipped).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Need {
    pub kl: bool,
    pub rkl: bool,
    pub db: bool,
    pub w2: bool,
}

impl Need {
    pub(crate) fn of(m: crate::Metrics) -> Need {
        use crate::Metric as M;
        Need {
            kl: m.contains(M::CrossEntropy) || m.contains(M::Kl) || m.contains(M::Jeffreys),
            rkl: m.contains(M::ReverseKl) || m.contains(M::Jeffreys),
            db: m.contains(M::Bhattacharyya)
                || m.contains(M::BhattacharyyaCoefficient)
                || m.contains(M::Hellinger),
            w2: m.contains(M::Wasserstein2),
        }
    }
}

/// Scratch space for pairs of dimension `d`, reused from pair to pair.
pub(crate) struct Work<T> {
    pub(super) d: usize,
    pub(super) a1: Vec<T>,
    pub(super) a2: Vec<T>,
    pub(super) l1: Vec<T>,
    pub(super) l2: Vec<T>,
    pub(super) u1: Vec<T>,
    pub(super) u2: Vec<T>,
    pub(super) m: Vec<T>,
    pub(super) h: Vec<T>,
    pub(super) xb: Vec<T>,
    pub(super) t1: Vec<T>,
    pub(super) t2: Vec<T>,
    pub(super) t3: Vec<T>,
    pub(super) t4: Vec<T>,
    pub(super) t5: Vec<T>,
    pub(super) t6: Vec<T>,
    pub(super) t7: Vec<T>,
    pub(super) mu1: Vec<T>,
    pub(super) mu2: Vec<T>,
    pub(super) dmu: Vec<T>,
    pub(super) z: Vec<T>,
    pub(super) sv: Vec<T>,
}

impl<T: MvnReal> Work<T> {
    pub(crate) fn new(d: usize) -> Work<T> {
        let mat = || vec![T::ZERO; d * d];
        let vector = || vec![T::ZERO; d];
        Work {
            d,
            a1: mat(),
            a2: mat(),
            l1: mat(),
            l2: mat(),
            u1: mat(),
            u2: mat(),
            m: mat(),
            h: mat(),
            xb: mat(),
            t1: mat(),
            t2: mat(),
            t3: mat(),
            t4: mat(),
            t5: mat(),
            t6: mat(),
            t7: mat(),
            mu1: vector(),
            mu2: vector(),
            dmu: vector(),
            z: vector(),
            sv: vector(),
        }
    }
}

/// `dst ← src` (equal lengths by construction; never panics).
pub(super) trait CopyFrom<T> {
    fn copy_from(&mut self, src: &[T]);
}

impl<T: Real> CopyFrom<T> for [T] {
    fn copy_from(&mut self, src: &[T]) {
        for (k, x) in self.iter_mut().enumerate() {
            *x = at(src, k);
        }
    }
}

impl<T: Real> CopyFrom<T> for Vec<T> {
    fn copy_from(&mut self, src: &[T]) {
        self.as_mut_slice().copy_from(src);
    }
}

/// Relative tolerance of the symmetry check, per dimension: a covariance
/// or precision matrix is accepted when |a_ij − a_ji| ≤ 64·d·u·√(a_ii·a_jj)
/// (u the unit roundoff); only its lower triangle is used.
pub const SYM_TOL_ULPS: f64 = 64.0;

fn fmt<T: MvnReal>(v: T) -> String {
    format!("{}", v.to_f64())
}

/// Why side `side` is not valid input, checked on the raw values.
pub(crate) fn check<T: MvnReal>(s: &Side<'_, T>, side: u8, d: usize) -> Result<(), Bad> {
    let bad = |mean: bool, reason: String| Err(Bad { side, mean, reason });
    for i in 0..d {
        let v = at(s.mu, i);
        if !v.is_finite() {
            return bad(true, format!("entry [{i}] = {} is not finite", fmt(v)));
        }
    }
    for i in 0..d {
        for j in 0..d {
            let v = at(s.m, i * d + j);
            if s.kind == Kind::Tril && j > i {
                if v != T::ZERO {
                    return bad(
                        false,
                        format!("upper-triangle entry [{i}, {j}] = {} is not zero", fmt(v)),
                    );
                }
            } else if !v.is_finite() {
                return bad(
                    false,
                    format!("entry [{i}, {j}] = {} is not finite", fmt(v)),
                );
            }
        }
    }
    match s.kind {
        Kind::Tril => {
            for i in 0..d {
                let v = at(s.m, i * d + i);
                if not_above(v, T::ZERO) {
                    return bad(
                        false,
                        format!("diagonal entry [{i}, {i}] = {} is not positive", fmt(v)),
                    );
                }
            }
        }
        Kind::Cov | Kind::Prec => {
            let tol = T::from_i32(SYM_TOL_ULPS as i32 * d as i32) * T::EPS;
            for i in 0..d {
                for j in 0..i {
                    let (x, y) = (at(s.m, i * d + j), at(s.m, j * d + i));
                    let scale = (at(s.m, i * d + i).abs() * at(s.m, j * d + j).abs()).sqrt();
                    let diff = (x - y).abs();
                    if diff > tol * scale || (scale == T::ZERO && diff > T::ZERO) {
                        return bad(
                            false,
                            format!(
                                "not symmetric: entry [{i}, {j}] = {} but [{j}, {i}] = {} \
                                 (relative tolerance {:.2e})",
                                fmt(x),
                                fmt(y),
                                tol.to_f64()
                            ),
                        );
                    }
                }
            }
        }
    }
    Ok(())
}

/// log2 of a typical variance of the side (an integer): from the largest
/// diagonal entry.
fn scale_exp<T: MvnReal>(s: &Side<'_, T>, d: usize) -> i32 {
    let mut big = T::ZERO;
    for i in 0..d {
        big = max(big, at(s.m, i * d + i).abs());
    }
    let e = if big > T::ZERO { big.frexp1().1 } else { 0 };
    match s.kind {
        Kind::Cov => e,
        Kind::Tril => 2 * e,
        Kind::Prec => -e,
    }
}

/// The lower triangle of the symmetric input mirrored (or the triangular
/// one copied), times 2^e.
fn load<T: MvnReal>(s: &Side<'_, T>, a: &mut [T], d: usize, e: i32) {
    for i in 0..d {
        for j in 0..d {
            let v = match s.kind {
                Kind::Tril if j > i => T::ZERO,
                Kind::Tril => at(s.m, i * d + j),
                _ if j > i => at(s.m, j * d + i),
                _ => at(s.m, i * d + j),
            };
            put(a, i * d + j, scale2(v, e));
        }
    }
}

/// ln of a product of positive diagonal entries times 2^k0, from a
/// mantissa and an integer exponent (one logarithm).
fn ln_diag<T: MvnReal>(a: &[T], d: usize, k0: i32) -> T {
    let mut m = T::ONE;
    let mut k = k0;
    for i in 0..d {
        let (x, e) = at(a, i * d + i).frexp1();
        let (p, f) = (m * x).frexp1();
        m = p;
        k += e + f;
    }
    ln_mant(m, k)
}

/// V(a/b) = ½((a/b)² − 1) − ln(a/b) from the two positive values (the
/// univariate kernel's KL scale part).
#[inline(always)]
fn v_pair<T: MvnReal>(a: T, b: T) -> T {
    at(
        &measures::<T, { param::STD }>(T::ZERO, a, T::ZERO, b),
        idx::KL,
    )
}

/// φ(e) = e + e²/2 − ln(1 + e) = V(1 + e): the near-1 series of the
/// univariate kernel with w = e/(2 + e) (relative to itself), else V directly.
#[inline(always)]
fn phi<T: MvnReal>(e: T) -> T {
    let w = e / (T::TWO + e);
    let third = T::ONE / T::from_i32(3);
    if w.abs() <= third {
        scale_part_near(w)
    } else {
        v_pair(T::ONE + e, T::ONE)
    }
}

/// Σ_j φ(h_jj) + ½Σ_{i≠j} h_ij² for a triangular H: KL of the factor I + H.
fn kl_of_factor<T: MvnReal>(h: &[T], d: usize) -> T {
    let mut diag = T::ZERO;
    let mut off = T::ZERO;
    for i in 0..d {
        for j in 0..d {
            let v = at(h, i * d + j);
            if i == j {
                diag = diag + phi(v);
            } else {
                off = off + v * v;
            }
        }
    }
    diag + T::HALF * off
}

/// KL of the lower factor M = L_b⁻¹L_a far from equality: Σ V(La_jj, Lb_jj) + ½Σ_{i>j} m_ij².
fn kl_far<T: MvnReal>(la: &[T], lb: &[T], m: &[T], d: usize) -> T {
    let mut diag = T::ZERO;
    let mut off = T::ZERO;
    for i in 0..d {
        diag = diag + v_pair(at(la, i * d + i), at(lb, i * d + i));
        for j in 0..i {
            let v = at(m, i * d + j);
            off = off + v * v;
        }
    }
    diag + T::HALF * off
}

/// The polar residual ‖L1 − L2·U‖²_F, U the polar factor of L2ᵀL1.
fn bures_far<T: MvnReal>(l1: &[T], l2: &[T], a: &mut [T], v: &mut [T], u: &mut [T], d: usize) -> T {
    mul(l2, true, l1, false, a, d);
    one_sided_jacobi(a, Some(v), d);
    // U = Σ_k (a_k/‖a_k‖)·v_kᵀ
    for k in 0..d {
        let nk = column_norm2(a, k, d).sqrt();
        for i in 0..d {
            put(a, i * d + k, at(a, i * d + k) / nk);
        }
    }
    mul(a, false, v, true, u, d);
    let mut b2 = T::ZERO;
    for i in 0..d {
        for j in 0..d {
            let mut s = T::ZERO;
            for k in 0..d {
                s = s + at(l2, i * d + k) * at(u, k * d + j);
            }
            let r = at(l1, i * d + j) - s;
            b2 = b2 + r * r;
        }
    }
    b2
}

/// ‖x‖² of `x = L⁻¹·v` for side with lower factor `l` (or `Uᵀv` for a
/// precision side): the Mahalanobis part; `x` receives the vector.
fn whiten<T: MvnReal>(kind: Kind, l: &[T], u: &[T], v: &[T], x: &mut [T], d: usize) -> T {
    if kind == Kind::Prec {
        for i in 0..d {
            let mut s = T::ZERO;
            for k in 0..d {
                s = s + at(u, k * d + i) * at(v, k);
            }
            put(x, i, s);
        }
    } else {
        x.copy_from(v);
        solve_lower(l, x, d, 1);
    }
    norm2(x, d)
}

/// e^(−D) and √(1 − e^(−D)) for D ≥ 0 (√D·√φ(D) for D < ½: no cancellation).
fn coefficient_hellinger<T: MvnReal>(db: T) -> (T, T) {
    let (y, k) = exp_split(-db);
    let bc = scale2(y, k);
    let small = db < T::HALF;
    let phi = horner(T::EXP_TAYLOR, -db);
    let hel = if small {
        db.sqrt() * phi.sqrt()
    } else {
        (T::ONE - bc).sqrt()
    };
    let inf = db > T::MAX;
    (
        if inf { T::ZERO } else { bc },
        if inf { T::ONE } else { hel },
    )
}

/// Every measure of one pair (canonical order), or why it is invalid.
/// `need` says which groups to compute; the others are NaN.
pub(crate) fn evaluate<T: MvnReal>(
    w: &mut Work<T>,
    s1: Side<'_, T>,
    s2: Side<'_, T>,
    need: Need,
) -> Result<[T; MEASURES], Bad> {
    let d = w.d;
    check(&s1, 1, d)?;
    check(&s2, 2, d)?;
    // A common power of 4 brings the variances near 1.
    let e = -((scale_exp(&s1, d) + scale_exp(&s2, d)) / 4);
    let factor_exp = |k: Kind| match k {
        Kind::Cov => 2 * e,
        Kind::Tril => e,
        Kind::Prec => -2 * e,
    };
    load(&s1, &mut w.a1, d, factor_exp(s1.kind));
    load(&s2, &mut w.a2, d, factor_exp(s2.kind));
    for i in 0..d {
        put(&mut w.mu1, i, scale2(at(s1.mu, i), e));
        put(&mut w.mu2, i, scale2(at(s2.mu, i), e));
        put(&mut w.dmu, i, at(&w.mu1, i) - at(&w.mu2, i));
    }

    // Lower covariance factors L1, L2 (and U for precisions).
    factor(&s1, 1, &w.a1, &mut w.l1, &mut w.u1, &mut w.t1, d)?;
    factor(&s2, 2, &w.a2, &mut w.l2, &mut w.u2, &mut w.t1, d)?;

    let mut out = [T::NAN; MEASURES];
    // Entropies: d/2(1 + ln 2π) + ln det Σ^½ of the unscaled input.
    let h0 = T::from_i32(d as i32) * T::HALF_LN_2PI_E;
    let ent = |kind: Kind, l: &[T], u: &[T]| match kind {
        Kind::Prec => h0 - ln_diag(u, d, d as i32 * e),
        _ => h0 + ln_diag(l, d, -(d as i32) * e),
    };
    let h1 = ent(s1.kind, &w.l1, &w.u1);
    let h2 = ent(s2.kind, &w.l2, &w.u2);
    put(&mut out, idx::ENTROPY, h1);
    put(&mut out, idx::ENTROPY_Q, h2);
    if !(need.kl || need.rkl || need.db || need.w2) {
        return Ok(out);
    }

    // M = L2⁻¹L1 and the regime.
    if s2.kind == Kind::Prec {
        mul(&w.u2, true, &w.l1, false, &mut w.m, d);
    } else {
        w.m.copy_from(&w.l1);
        solve_lower(&w.l2, &mut w.m, d, d);
    }
    mul(&w.m, false, &w.m, true, &mut w.t1, d);
    let mut nn = T::ZERO;
    for i in 0..d {
        for j in 0..d {
            let v = at(&w.t1, i * d + j) - if i == j { T::ONE } else { T::ZERO };
            nn = nn + v * v;
        }
    }
    let near = nn < T::HALF * T::HALF;

    // Mean parts.
    let q2 = whiten(s2.kind, &w.l2, &w.u2, &w.dmu, &mut w.z, d);
    let q1 = whiten(s1.kind, &w.l1, &w.u1, &w.dmu, &mut w.mu1, d);
    let (mut kl, mut rkl) = (T::NAN, T::NAN);
    let (mut db_scale, mut b2) = (T::NAN, T::NAN);
    if near {
        let (lower, base, base_inv) = near_factor(w, &s1, &s2, d);
        let (ko, kb) = if need.kl || need.rkl {
            let ko = kl_of_factor(&w.h, d);
            inverse_minus_i(&w.h, lower, &mut w.t1, d);
            (ko, kl_of_factor(&w.t1, d))
        } else {
            (T::NAN, T::NAN)
        };
        // The other side is side 1 when the base is side 2.
        let (k12, k21) = if base == 2 { (ko, kb) } else { (kb, ko) };
        kl = k12;
        rkl = k21;
        if need.db || need.w2 {
            whitened_difference(&w.h, &mut w.t2, d);
        }
        if need.db {
            w.t1.copy_from(&w.t2);
            jacobi_eigenvalues(&mut w.t1, d);
            let mut s = T::ZERO;
            for k in 0..d {
                s = s + db_term(at(&w.t1, k * d + k));
            }
            db_scale = s;
        }
        if need.w2 {
            let Work {
                xb,
                t2,
                t1,
                t3,
                t4,
                t5,
                sv,
                ..
            } = w;
            b2 = bures_near(xb, base_inv, t2, t1, t3, t4, t5, sv, d);
        }
    } else {
        if need.kl {
            kl = kl_far(&w.l1, &w.l2, &w.m, d);
        }
        if need.rkl {
            if s1.kind == Kind::Prec {
                mul(&w.u1, true, &w.l2, false, &mut w.t1, d);
            } else {
                w.t1.copy_from(&w.l2);
                solve_lower(&w.l1, &mut w.t1, d, d);
            }
            rkl = kl_far(&w.l2, &w.l1, &w.t1, d);
        }
        if need.db {
            w.t1.copy_from(&w.m);
            one_sided_jacobi(&mut w.t1, None, d);
            let mut s = T::ZERO;
            for k in 0..d {
                let sigma = column_norm2(&w.t1, k, d).sqrt();
                s = s + at(
                    &measures::<T, { param::STD }>(T::ZERO, sigma, T::ZERO, T::ONE),
                    idx::BHATTACHARYYA,
                );
            }
            db_scale = s;
        }
        if need.w2 {
            let Work {
                l1, l2, t1, t2, t3, ..
            } = w;
            b2 = bures_far(l1, l2, t1, t2, t3, d);
        }
    }
    let kl = kl + T::HALF * q2;
    let rkl = rkl + T::HALF * q1;
    put(&mut out, idx::KL, kl);
    put(&mut out, idx::CROSS_ENTROPY, h1 + kl);
    put(&mut out, idx::REVERSE_KL, rkl);
    put(&mut out, idx::JEFFREYS, kl + rkl);
    if need.db {
        // ⅛ΔμᵀΣ̄⁻¹Δμ = ¼ z2ᵀ(I + MMᵀ)⁻¹z2, z2 = L2⁻¹Δμ (in w.z).
        mul(&w.m, false, &w.m, true, &mut w.t1, d);
        for i in 0..d {
            let v = at(&w.t1, i * d + i) + T::ONE;
            put(&mut w.t1, i * d + i, v);
        }
        let mean = match cholesky(&w.t1, &mut w.t2, d) {
            Ok(()) => {
                solve_lower(&w.t2, &mut w.z, d, 1);
                T::HALF * T::HALF * norm2(&w.z, d)
            }
            Err(_) => T::NAN,
        };
        let db = mean + db_scale;
        let (bc, hel) = coefficient_hellinger(db);
        put(&mut out, idx::BHATTACHARYYA, db);
        put(&mut out, idx::BHATTACHARYYA_COEFFICIENT, bc);
        put(&mut out, idx::HELLINGER, hel);
    }
    if need.w2 {
        let w2 = (norm2(&w.dmu, d) + b2).sqrt();
        put(&mut out, idx::WASSERSTEIN2, scale2(w2, -e));
    }
    Ok(out)
}

/// The lower covariance factor `l` of a side (and `u` for a precision);
/// a failed factorisation names its pivot.
fn factor<T: MvnReal>(
    s: &Side<'_, T>,
    side: u8,
    a: &[T],
    l: &mut [T],
    u: &mut [T],
    t: &mut [T],
    d: usize,
) -> Result<(), Bad> {
    let not_pd = |j: usize, p: T| Bad {
        side,
        mean: false,
        reason: format!(
            "not positive definite: Cholesky pivot {j} is {} (the leading {}×{} block is not \
             positive definite)",
            fmt(p),
            j + 1,
            j + 1
        ),
    };
    match s.kind {
        Kind::Cov => cholesky(a, l, d).map_err(|(j, p)| not_pd(j, p)),
        Kind::Tril => {
            l.copy_from(a);
            Ok(())
        }
        Kind::Prec => {
            if cholesky_rev(a, u, d).is_err() {
                // Name the first failing pivot of the ordinary order.
                return Err(match cholesky(a, t, d) {
                    Err((j, p)) => not_pd(j, p),
                    Ok(()) => Bad {
                        side,
                        mean: false,
                        reason: "not positive definite (Cholesky factorisation in reversed \
                                 order failed)"
                            .into(),
                    },
                });
            }
            inverse_upper_t(u, l, t, d);
            Ok(())
        }
    }
}
