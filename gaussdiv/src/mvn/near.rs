//! The close-together representation of a pair (docs/ARCHITECTURE.md §9):
//! one factor X_b of a base side and a small triangular H, formed from the
//! exact difference of the inputs, with X_o = X_b·(I + H) a factor of the
//! other side; and the measures taken from it (see `formulas` for the whole
//! formulation).

use super::formulas::{CopyFrom, Kind, Side, Work};
use super::linalg::*;
use crate::math::{horner, ln};

/// I + N = (I + E)(I + E)ᵀ solved for the lower E directly (no 1 + x rounded
/// away). False when I + N is not positive definite.
pub(super) fn factor_near_identity<T: MvnReal>(n: &[T], e: &mut [T], d: usize) -> bool {
    for j in 0..d {
        let mut s = at(n, j * d + j);
        for k in 0..j {
            let v = at(e, j * d + k);
            s = s - v * v;
        }
        if not_above(T::ONE + s, T::ZERO) {
            return false;
        }
        let ejj = s / (T::ONE + (T::ONE + s).sqrt());
        put(e, j * d + j, ejj);
        for i in (j + 1)..d {
            let mut t = at(n, i * d + j);
            for k in 0..j {
                t = t - at(e, i * d + k) * at(e, j * d + k);
            }
            put(e, i * d + j, t / (T::ONE + ejj));
        }
        for i in 0..j {
            put(e, i * d + j, T::ZERO);
        }
    }
    true
}

/// `g = (I + h)⁻¹ − I = −(I + h)⁻¹·h` for triangular `h`.
pub(super) fn inverse_minus_i<T: MvnReal>(h: &[T], lower: bool, g: &mut [T], d: usize) {
    for k in 0..d * d {
        put(g, k, -at(h, k));
    }
    solve_unit_plus(h, lower, g, d, d);
}

/// ½ atanh(τ²/(2 − τ²)) = −¼ ln(1 − τ²), τ = ν/(2 + ν): one eigenvalue's
/// share of D_B (without cancellation for small ν).
pub(super) fn db_term<T: MvnReal>(nu: T) -> T {
    let tau = nu / (T::TWO + nu);
    let x = tau * tau;
    let y = x / (T::TWO - x);
    let third = T::ONE / T::from_i32(3);
    if y <= third {
        let y2 = y * y;
        T::HALF * (y + y * (y2 * horner(T::ATANH_COEFFS, y2)))
    } else {
        -(T::HALF * T::HALF) * ln(T::ONE - x)
    }
}

/// `n = h + hᵀ + h·hᵀ` (symmetric): (I + H)(I + H)ᵀ − I.
pub(super) fn whitened_difference<T: MvnReal>(h: &[T], n: &mut [T], d: usize) {
    mul(h, false, h, true, n, d);
    for i in 0..d {
        for j in 0..d {
            let v = at(n, i * d + j) + at(h, i * d + j) + at(h, j * d + i);
            put(n, i * d + j, v);
        }
    }
    symmetrize(n, d);
}

/// `n = l⁻¹·a·l⁻ᵀ` (symmetric `a`, lower or upper triangular `l`); `t` scratch.
pub(super) fn congruence_solve<T: MvnReal>(
    l: &[T],
    upper: bool,
    a: &[T],
    n: &mut [T],
    t: &mut [T],
    d: usize,
) {
    t.copy_from(a);
    if upper {
        solve_upper(l, t, d, d);
    } else {
        solve_lower(l, t, d, d);
    }
    transpose(t, n, d);
    if upper {
        solve_upper(l, n, d, d);
    } else {
        solve_lower(l, n, d, d);
    }
    symmetrize(n, d);
}

/// `r = Σ_k c_k·Zᵏ` (k = 0..4, Horner) for a small symmetric `Z`; `t` scratch.
pub(super) fn series_near_identity<T: MvnReal>(
    z: &[T],
    c: [T; 5],
    r: &mut [T],
    t: &mut [T],
    d: usize,
) {
    let [c0, c1, c2, c3, c4] = c;
    for i in 0..d {
        for j in 0..d {
            put(r, i * d + j, if i == j { c4 } else { T::ZERO });
        }
    }
    for ck in [c3, c2, c1, c0] {
        mul(z, false, r, false, t, d);
        for i in 0..d {
            for j in 0..d {
                let v = at(t, i * d + j) + if i == j { ck } else { T::ZERO };
                put(r, i * d + j, v);
            }
        }
    }
    symmetrize(r, d);
}

/// (I + Z)^½ = I + Z/2 − Z²/8 + Z³/16 − 5Z⁴/128 …
pub(super) fn sqrt_coeffs<T: MvnReal>() -> [T; 5] {
    let f = |n: i32, m: i32| T::from_i32(n) / T::from_i32(m);
    [T::ONE, f(1, 2), f(-1, 8), f(1, 16), f(-5, 128)]
}

/// (I + Z)^−½ = I − Z/2 + 3Z²/8 − 5Z³/16 + 35Z⁴/128 …
pub(super) fn inv_sqrt_coeffs<T: MvnReal>() -> [T; 5] {
    let f = |n: i32, m: i32| T::from_i32(n) / T::from_i32(m);
    [T::ONE, f(-1, 2), f(3, 8), f(-5, 16), f(35, 128)]
}

/// For a computed factor `f` of the symmetric `a` (`f·fᵀ = a − δ`, `f`
/// lower or upper), the exact correction: `z = f⁻¹·δ·f⁻ᵀ` with δ = a − f·fᵀ
/// in double-word arithmetic, `r = (I + z)^½` and `ri = r⁻¹`, so that
/// (f·r)(f·r)ᵀ = a to about u² (Z is of the order of u·cond). `t*` scratch.
#[allow(clippy::too_many_arguments)]
pub(super) fn residual_root<T: MvnReal>(
    a: &[T],
    f: &[T],
    upper: bool,
    r: &mut [T],
    ri: &mut [T],
    z: &mut [T],
    t: &mut [T],
    t2: &mut [T],
    d: usize,
) {
    gram_dw(f, t, t2, d);
    for k in 0..d * d {
        let v = (at(a, k) - at(t, k)) - at(t2, k);
        put(t, k, v);
    }
    congruence_solve(f, upper, t, z, t2, d);
    series_near_identity(z, sqrt_coeffs(), r, t, d);
    series_near_identity(z, inv_sqrt_coeffs(), ri, t, d);
}

/// `n ← ri·n·ri` (symmetric result); `t` scratch.
pub(super) fn sandwich<T: MvnReal>(ri: &[T], n: &mut [T], t: &mut [T], d: usize) {
    mul(ri, false, n, false, t, d);
    mul(t, false, ri, false, n, d);
    symmetrize(n, d);
}

/// The Bures distance² of Σ_o = X_b(I + N)X_bᵀ and Σ_b = X_bX_bᵀ for small N:
/// tr(Σ_b⁻¹Y²) with Y from the fixed point in the singular basis of X_b.
/// `xb` holds X_b, or U with X_b = U⁻ᵀ when `inverse_t` (a precision's
/// factor: its singular vectors are X_b's, without forming the inverse);
/// it is destroyed. `q`, `np`, `y`, `y2` scratch.
#[allow(clippy::too_many_arguments)]
pub(super) fn bures_near<T: MvnReal>(
    xb: &mut [T],
    inverse_t: bool,
    n: &[T],
    q: &mut [T],
    np: &mut [T],
    y: &mut [T],
    y2: &mut [T],
    s: &mut [T],
    d: usize,
) -> T {
    one_sided_jacobi(xb, Some(q), d);
    for k in 0..d {
        let c = column_norm2(xb, k, d);
        // X_b = xb⁻ᵀ: the same right singular vectors, reciprocal values.
        put(s, k, if inverse_t { T::ONE / c } else { c });
    }
    // N' = Qᵀ N Q
    mul(q, true, n, false, y, d);
    mul(y, false, q, false, np, d);
    symmetrize(np, d);
    let c = |i: usize, j: usize| at(s, i) * at(s, j) * at(np, i * d + j);
    let den = |i: usize, j: usize| at(s, i) + at(s, j);
    for i in 0..d {
        for j in 0..d {
            put(y, i * d + j, c(i, j) / den(i, j));
        }
    }
    for _ in 0..200 {
        mul(y, false, y, false, y2, d);
        let mut change = T::ZERO;
        let mut big = T::ZERO;
        for i in 0..d {
            for j in 0..d {
                let new = (c(i, j) - at(y2, i * d + j)) / den(i, j);
                change = max(change, (new - at(y, i * d + j)).abs());
                big = max(big, new.abs());
                put(y, i * d + j, new);
            }
        }
        if not_above(change, T::from_i32(4) * T::EPS * big) {
            break;
        }
    }
    let mut b2 = T::ZERO;
    for i in 0..d {
        let mut row = T::ZERO;
        for j in 0..d {
            let v = at(y, i * d + j);
            row = row + v * v;
        }
        b2 = b2 + row / at(s, i);
    }
    b2
}

/// Forms the near representation X_o = X_b(I + H) in `w.h` (and `w.xb`):
/// returns whether H is lower triangular, the base side, and whether
/// `w.xb` holds U with X_b = U⁻ᵀ (a precision side) rather than X_b.
///
/// A computed Cholesky factor F of the base side's given matrix A is not
/// exact (F·Fᵀ = A − δ, δ of the order of u·|F||Fᵀ|); its error would shift
/// both sides alike and cost a factor cond(A) in W₂ and about u·cond in KL.
/// So the base factor is corrected by its exact residual: X_b = F·R with
/// R = (I + F⁻¹δF⁻ᵀ)^½ ([`residual_root`]), and the whitened difference taken
/// against it (N ← R⁻¹·N·R⁻¹). A given `scale_tril` needs no correction.
pub(super) fn near_factor<T: MvnReal>(
    w: &mut Work<T>,
    s1: &Side<'_, T>,
    s2: &Side<'_, T>,
    d: usize,
) -> (bool, u8, bool) {
    let Work {
        a1,
        a2,
        l1,
        l2,
        u1,
        h,
        xb,
        t1,
        t2,
        t3,
        t4,
        t5,
        t6,
        t7,
        ..
    } = w;
    let sub = |x: &[T], y: &[T], out: &mut [T]| {
        for k in 0..d * d {
            put(out, k, at(x, k) - at(y, k));
        }
    };
    // Σ − L·Lᵀ (L·Lᵀ in double-word), into `out`; `hi`, `lo` scratch.
    let minus_gram = |sig: &[T], l: &[T], out: &mut [T], hi: &mut [T], lo: &mut [T]| {
        gram_dw(l, hi, lo, d);
        for k in 0..d * d {
            put(out, k, (at(sig, k) - at(hi, k)) - at(lo, k));
        }
    };
    let ok;
    let (lower, base);
    let mut inverse_t = false;
    match (s1.kind, s2.kind) {
        (Kind::Tril, Kind::Tril) => {
            sub(l1, l2, h);
            solve_lower(l2, h, d, d);
            xb.copy_from(l2);
            ok = true;
            (lower, base) = (true, 2);
        }
        (Kind::Prec, Kind::Prec) => {
            // P1 = U1·R·R·U1ᵀ exactly; N = R⁻¹U1⁻¹(P2 − P1)U1⁻ᵀR⁻¹.
            sub(a2, a1, h);
            congruence_refined(u1, true, h, t2, t1, t3, t4, t5, d);
            residual_root(a1, u1, true, t6, t7, t3, t4, t5, d);
            sandwich(t7, t2, t4, d);
            ok = factor_near_identity(t2, t3, d);
            inverse_minus_i(t3, true, t1, d);
            transpose(t1, h, d);
            mul(u1, false, t6, false, xb, d); // X_b = (U1·R)⁻ᵀ
            inverse_t = true;
            (lower, base) = (false, 1);
        }
        (Kind::Cov | Kind::Tril, Kind::Cov | Kind::Tril) => {
            // D = Σ1 − Σ2 from the exact difference (a factor's square in double-word).
            match (s1.kind, s2.kind) {
                (Kind::Cov, Kind::Cov) => sub(a1, a2, t1),
                (Kind::Cov, _) => minus_gram(a1, l2, t1, t4, t5),
                _ => {
                    minus_gram(a2, l1, t1, t4, t5);
                    for k in 0..d * d {
                        let v = -at(t1, k);
                        put(t1, k, v);
                    }
                }
            }
            h.copy_from(t1);
            congruence_refined(l2, false, h, t2, t1, t3, t4, t5, d);
            if s2.kind == Kind::Cov {
                residual_root(a2, l2, false, t6, t7, t3, t4, t5, d);
                sandwich(t7, t2, t4, d);
                mul(l2, false, t6, false, xb, d); // X_b = L2·R
            } else {
                xb.copy_from(l2);
            }
            ok = factor_near_identity(t2, h, d);
            (lower, base) = (true, 2);
        }
        _ => {
            // One side a precision P, the other given by a factor L (tril) or a
            // covariance Σ = L·R·R·Lᵀ (R from the exact Cholesky residual):
            // I + K = X_bᵀ·P·X_b, K = R(LᵀPL − I)R + (R² − I).
            let p_side = if s1.kind == Kind::Prec { 1 } else { 2 };
            let (p, l, sig, kind_b) = if p_side == 1 {
                (&*a1, &*l2, &*a2, s2.kind)
            } else {
                (&*a2, &*l1, &*a1, s1.kind)
            };
            congruence_minus_i(l, p, t1, t4, t5, d); // K0 = LᵀPL − I
            if kind_b == Kind::Cov {
                residual_root(sig, l, false, t6, t7, t3, t4, t5, d); // R in t6, Z in t3
                mul(t6, false, t1, false, t4, d);
                mul(t4, false, t6, false, t5, d);
                for k in 0..d * d {
                    put(t1, k, at(t5, k) + at(t3, k));
                }
                symmetrize(t1, d);
                mul(l, false, t6, false, xb, d); // X_b = L·R
            } else {
                xb.copy_from(l);
            }
            ok = factor_near_identity(t1, t3, d);
            inverse_minus_i(t3, true, t2, d);
            transpose(t2, h, d);
            (lower, base) = (false, 3 - p_side);
        }
    }
    if !ok {
        for k in 0..d * d {
            put(h, k, T::NAN);
        }
    }
    (lower, base, inverse_t)
}
