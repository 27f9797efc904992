//! Small dense linear algebra for the full-covariance formulas
//! (docs/ARCHITECTURE.md §9): Cholesky factorisations, triangular solves,
//! products (also in double-word arithmetic), cyclic Jacobi for symmetric
//! eigenvalues and one-sided (Hestenes) Jacobi for singular values.
//!
//! Matrices are `d × d`, row-major, in slices the caller sized `d·d`.
//! Every access goes through [`at`] and [`put`]: an index outside the slice
//! reads NaN and writes nothing, so no input can make these routines panic
//! (a wrong size would show as NaN results, never as a crash).
//!
//! The double-word routines use Knuth's TwoSum and Dekker's product with a
//! bit-mask split on plain IEEE arithmetic: exact on a CPU. (A GPU mirror
//! would take the cancelling differences on the bit patterns, as
//! `math::ln_exp` does, docs/ARCHITECTURE.md §2.11.)

use crate::math::Real;

/// The unit roundoff of the format (2⁻²⁴ for f32, 2⁻⁵³ for f64).
pub(crate) trait MvnReal: Real {
    /// Unit roundoff u.
    const EPS: Self;
    /// The value widened to f64 (exact).
    fn to_f64(self) -> f64;
    /// The f64 value rounded to this format (IEEE round to nearest,
    /// subnormal results included).
    fn from_f64(x: f64) -> Self;
}

impl MvnReal for f32 {
    const EPS: Self = f32::EPSILON * 0.5;
    fn to_f64(self) -> f64 {
        f64::from(self)
    }
    fn from_f64(x: f64) -> Self {
        x as f32
    }
}

impl MvnReal for f64 {
    const EPS: Self = f64::EPSILON * 0.5;
    fn to_f64(self) -> f64 {
        self
    }
    fn from_f64(x: f64) -> Self {
        x
    }
}

/// `a[k]`, or NaN outside the slice.
#[inline(always)]
pub(crate) fn at<T: Real>(a: &[T], k: usize) -> T {
    match a.get(k) {
        Some(&v) => v,
        None => T::NAN,
    }
}

/// `a[k] = v` (nothing outside the slice).
#[inline(always)]
pub(crate) fn put<T: Real>(a: &mut [T], k: usize, v: T) {
    if let Some(x) = a.get_mut(k) {
        *x = v;
    }
}

/// The larger of two values (NaN-propagation unspecified).
#[inline(always)]
pub(crate) fn max<T: Real>(a: T, b: T) -> T {
    if a >= b {
        a
    } else {
        b
    }
}

/// Whether `a > b` does not hold (also when either is NaN).
#[inline(always)]
pub(crate) fn not_above<T: Real>(a: T, b: T) -> bool {
    !matches!(a.partial_cmp(&b), Some(core::cmp::Ordering::Greater))
}

/// The identity.
pub(crate) fn identity<T: Real>(a: &mut [T], d: usize) {
    for i in 0..d {
        for j in 0..d {
            put(a, i * d + j, if i == j { T::ONE } else { T::ZERO });
        }
    }
}

/// `b = aᵀ`.
pub(crate) fn transpose<T: Real>(a: &[T], b: &mut [T], d: usize) {
    for i in 0..d {
        for j in 0..d {
            put(b, j * d + i, at(a, i * d + j));
        }
    }
}

/// `a = (a + aᵀ)/2`.
pub(crate) fn symmetrize<T: Real>(a: &mut [T], d: usize) {
    for i in 0..d {
        for j in 0..i {
            let v = T::HALF * (at(a, i * d + j) + at(a, j * d + i));
            put(a, i * d + j, v);
            put(a, j * d + i, v);
        }
    }
}

/// `c = op(a)·op(b)` with `op` the transpose where `ta`/`tb` say.
pub(crate) fn mul<T: Real>(a: &[T], ta: bool, b: &[T], tb: bool, c: &mut [T], d: usize) {
    let ia = |i: usize, k: usize| if ta { k * d + i } else { i * d + k };
    let ib = |k: usize, j: usize| if tb { j * d + k } else { k * d + j };
    for i in 0..d {
        for j in 0..d {
            let mut s = T::ZERO;
            for k in 0..d {
                s = s + at(a, ia(i, k)) * at(b, ib(k, j));
            }
            put(c, i * d + j, s);
        }
    }
}

/// Squared Frobenius norm.
pub(crate) fn norm2<T: Real>(a: &[T], n: usize) -> T {
    let mut s = T::ZERO;
    for k in 0..n {
        let v = at(a, k);
        s = s + v * v;
    }
    s
}

/// Lower Cholesky factor `l` of the symmetric `a` (its lower triangle is
/// read): `a = l·lᵀ`. `Err((j, p))` names the first pivot `p = a_jj −
/// Σ l_jk²` that is not positive (or not a number).
pub(crate) fn cholesky<T: Real>(a: &[T], l: &mut [T], d: usize) -> Result<(), (usize, T)> {
    for j in 0..d {
        let mut p = at(a, j * d + j);
        for k in 0..j {
            let v = at(l, j * d + k);
            p = p - v * v;
        }
        if !(p > T::ZERO && p <= T::MAX) {
            return Err((j, p));
        }
        let ljj = p.sqrt();
        put(l, j * d + j, ljj);
        for i in (j + 1)..d {
            let mut s = at(a, i * d + j);
            for k in 0..j {
                s = s - at(l, i * d + k) * at(l, j * d + k);
            }
            put(l, i * d + j, s / ljj);
        }
        for i in 0..j {
            put(l, i * d + j, T::ZERO);
        }
    }
    Ok(())
}

/// Upper factor `u` of the symmetric `a` (lower triangle read) with
/// `a = u·uᵀ`: the Cholesky factorisation in reversed order. For a
/// precision matrix P = U·Uᵀ the covariance is Σ = U⁻ᵀ·U⁻¹, whose lower
/// factor is U⁻ᵀ. `Err((j, p))`: the pivot at `j` (counted from the end)
/// was not positive.
pub(crate) fn cholesky_rev<T: Real>(a: &[T], u: &mut [T], d: usize) -> Result<(), (usize, T)> {
    for j in (0..d).rev() {
        let mut p = at(a, j * d + j);
        for k in (j + 1)..d {
            let v = at(u, j * d + k);
            p = p - v * v;
        }
        if !(p > T::ZERO && p <= T::MAX) {
            return Err((j, p));
        }
        let ujj = p.sqrt();
        put(u, j * d + j, ujj);
        for i in 0..j {
            // a is symmetric with its lower triangle stored: a_ij = a_ji for i < j.
            let mut s = at(a, j * d + i);
            for k in (j + 1)..d {
                s = s - at(u, i * d + k) * at(u, j * d + k);
            }
            put(u, i * d + j, s / ujj);
        }
        for i in (j + 1)..d {
            put(u, i * d + j, T::ZERO);
        }
    }
    Ok(())
}

/// `b ← l⁻¹·b` for lower triangular `l` and the `cols` columns of the
/// `d × cols` row-major `b` (forward substitution).
pub(crate) fn solve_lower<T: Real>(l: &[T], b: &mut [T], d: usize, cols: usize) {
    for c in 0..cols {
        for i in 0..d {
            let mut s = at(b, i * cols + c);
            for k in 0..i {
                s = s - at(l, i * d + k) * at(b, k * cols + c);
            }
            put(b, i * cols + c, s / at(l, i * d + i));
        }
    }
}

/// `b ← u⁻¹·b` for upper triangular `u` (back substitution), `b` as in [`solve_lower`].
pub(crate) fn solve_upper<T: Real>(u: &[T], b: &mut [T], d: usize, cols: usize) {
    for c in 0..cols {
        for i in (0..d).rev() {
            let mut s = at(b, i * cols + c);
            for k in (i + 1)..d {
                s = s - at(u, i * d + k) * at(b, k * cols + c);
            }
            put(b, i * cols + c, s / at(u, i * d + i));
        }
    }
}

/// `b ← (I + h)⁻¹·b` for a strictly-or-not triangular `h` (`lower` says
/// which), with `1 + h_ii` as the diagonal: the inverse of a factor near I
/// applied without forming I + h (no rounding of 1 + h_ij off the diagonal).
pub(crate) fn solve_unit_plus<T: Real>(h: &[T], lower: bool, b: &mut [T], d: usize, cols: usize) {
    for c in 0..cols {
        for step in 0..d {
            let i = if lower { step } else { d - 1 - step };
            let mut s = at(b, i * cols + c);
            for k in 0..d {
                let before = if lower { k < i } else { k > i };
                if before {
                    s = s - at(h, i * d + k) * at(b, k * cols + c);
                }
            }
            put(b, i * cols + c, s / (T::ONE + at(h, i * d + i)));
        }
    }
}

/// `x = t⁻¹·(bh + bl)` for triangular `t` (`upper` says which) and the
/// double-word right-hand side `bh + bl` (`bl` may be all zero), as the
/// double-word `xh + xl`: one step of iterative refinement with the residual
/// `bh + bl − t·xh` in double-word arithmetic, so that the result is accurate
/// to about u relative to each entry's own magnitude (plus u²·cond(t)), where
/// a plain substitution is accurate only to u·cond(t) relative to the largest.
pub(crate) fn solve_refined<T: Real>(
    t: &[T],
    upper: bool,
    bh: &[T],
    bl: &[T],
    xh: &mut [T],
    xl: &mut [T],
    d: usize,
) {
    for k in 0..d * d {
        put(xh, k, at(bh, k) + at(bl, k));
    }
    if upper {
        solve_upper(t, xh, d, d);
    } else {
        solve_lower(t, xh, d, d);
    }
    for i in 0..d {
        for c in 0..d {
            let (p, e) = dot2(d, |k| at(t, i * d + k), |k| at(xh, k * d + c));
            let r = ((at(bh, i * d + c) - p) - e) + at(bl, i * d + c);
            put(xl, i * d + c, r);
        }
    }
    if upper {
        solve_upper(t, xl, d, d);
    } else {
        solve_lower(t, xl, d, d);
    }
}

/// `n = t⁻¹·a·t⁻ᵀ` for symmetric `a` and triangular `t`, each entry
/// accurate to about u of its own magnitude ([`solve_refined`] twice, the
/// intermediate kept in double-word). `s1..s4` scratch.
#[allow(clippy::too_many_arguments)]
pub(crate) fn congruence_refined<T: Real>(
    t: &[T],
    upper: bool,
    a: &[T],
    n: &mut [T],
    s1: &mut [T],
    s2: &mut [T],
    s3: &mut [T],
    s4: &mut [T],
    d: usize,
) {
    for k in 0..d * d {
        put(s4, k, T::ZERO);
    }
    solve_refined(t, upper, a, s4, s1, s2, d); // X = t⁻¹a = s1 + s2
    transpose(s1, s3, d);
    transpose(s2, s4, d);
    solve_refined(t, upper, s3, s4, s1, s2, d); // t⁻¹Xᵀ
    for k in 0..d * d {
        put(n, k, at(s1, k) + at(s2, k));
    }
    symmetrize(n, d);
}

/// `l = u⁻ᵀ` for upper triangular `u` (lower triangular result).
pub(crate) fn inverse_upper_t<T: Real>(u: &[T], l: &mut [T], tmp: &mut [T], d: usize) {
    identity(tmp, d);
    solve_upper(u, tmp, d, d);
    transpose(tmp, l, d);
}

// ---- double-word arithmetic -----------------------------------------------

/// `a + b = s + e` exactly (Knuth's TwoSum; any order of magnitudes).
#[inline(always)]
pub(crate) fn two_sum<T: Real>(a: T, b: T) -> (T, T) {
    let s = a + b;
    let bb = s - a;
    (s, (a - (s - bb)) + (b - bb))
}

/// `a·b = p + e` exactly (Dekker's product, factors split by a bit mask),
/// for products and partial products inside the normal range.
#[inline(always)]
pub(crate) fn two_prod<T: Real>(a: T, b: T) -> (T, T) {
    let p = a * b;
    let ah = a.split_hi();
    let al = a - ah;
    let bh = b.split_hi();
    let bl = b - bh;
    (p, (((ah * bh - p) + ah * bl) + al * bh) + al * bl)
}

/// Σ xᵢ·yᵢ as a double-word `(hi, lo)` (Ogita–Rump–Oishi Dot2): about
/// u²·Σ|xᵢyᵢ| from the exact value, plus u relative to the result.
#[inline(always)]
pub(crate) fn dot2<T: Real>(n: usize, x: impl Fn(usize) -> T, y: impl Fn(usize) -> T) -> (T, T) {
    let mut p = T::ZERO;
    let mut s = T::ZERO;
    for k in 0..n {
        let (h, r) = two_prod(x(k), y(k));
        let (q, e) = two_sum(p, h);
        p = q;
        s = s + (e + r);
    }
    two_sum(p, s)
}

/// `(hi, lo)` of `l·lᵀ` (full symmetric) for any square `l` (a lower or
/// upper Cholesky factor), in double-word arithmetic.
pub(crate) fn gram_dw<T: Real>(l: &[T], hi: &mut [T], lo: &mut [T], d: usize) {
    for i in 0..d {
        for j in 0..=i {
            let (h, e) = dot2(d, |k| at(l, i * d + k), |k| at(l, j * d + k));
            for (r, c) in [(i, j), (j, i)] {
                put(hi, r * d + c, h);
                put(lo, r * d + c, e);
            }
        }
    }
}

/// `k = lᵀ·p·l − I` for lower triangular `l` and symmetric `p` (lower
/// triangle read), in double-word arithmetic and rounded once: about
/// u²·|lᵀ||p||l| from the exact value, so accurate where lᵀ·p·l ≈ I.
/// `yh`, `yl` are scratch.
pub(crate) fn congruence_minus_i<T: Real>(
    l: &[T],
    p: &[T],
    k: &mut [T],
    yh: &mut [T],
    yl: &mut [T],
    d: usize,
) {
    let ps = |i: usize, j: usize| {
        if i >= j {
            at(p, i * d + j)
        } else {
            at(p, j * d + i)
        }
    };
    // y = p·l (double-word).
    for i in 0..d {
        for j in 0..d {
            let (h, e) = dot2(d, |t| ps(i, t), |t| at(l, t * d + j));
            put(yh, i * d + j, h);
            put(yl, i * d + j, e);
        }
    }
    // lᵀ·y − I.
    for i in 0..d {
        for j in 0..d {
            let (h, e) = dot2(d, |t| at(l, t * d + i), |t| at(yh, t * d + j));
            let mut low = e;
            for t in 0..d {
                low = low + at(l, t * d + i) * at(yl, t * d + j);
            }
            let h1 = if i == j { h - T::ONE } else { h };
            put(k, i * d + j, h1 + low);
        }
    }
    symmetrize(k, d);
}

// ---- Jacobi -----------------------------------------------------------------

/// Eigenvalues of the symmetric `a` (full storage; destroyed), left on its
/// diagonal: cyclic Jacobi, to an absolute accuracy of a few u·‖a‖_F.
pub(crate) fn jacobi_eigenvalues<T: MvnReal>(a: &mut [T], d: usize) {
    let tol = T::EPS * norm2(a, d * d).sqrt();
    for _sweep in 0..60 {
        let mut rotated = false;
        for p in 0..d {
            for q in (p + 1)..d {
                let apq = at(a, p * d + q);
                if not_above(apq.abs(), tol) {
                    continue;
                }
                rotated = true;
                let app = at(a, p * d + p);
                let aqq = at(a, q * d + q);
                let theta = (aqq - app) / (T::TWO * apq);
                let big = theta.abs() > T::ONE / T::EPS;
                let t0 = T::ONE / (theta.abs() + (T::ONE + theta * theta).sqrt());
                let t1 = T::HALF / theta.abs();
                let t = if big { t1 } else { t0 };
                let t = if theta < T::ZERO { -t } else { t };
                let c = T::ONE / (T::ONE + t * t).sqrt();
                let s = t * c;
                put(a, p * d + p, app - t * apq);
                put(a, q * d + q, aqq + t * apq);
                put(a, p * d + q, T::ZERO);
                put(a, q * d + p, T::ZERO);
                for r in 0..d {
                    if r == p || r == q {
                        continue;
                    }
                    let arp = at(a, r * d + p);
                    let arq = at(a, r * d + q);
                    let np = c * arp - s * arq;
                    let nq = s * arp + c * arq;
                    put(a, r * d + p, np);
                    put(a, p * d + r, np);
                    put(a, r * d + q, nq);
                    put(a, q * d + r, nq);
                }
            }
        }
        if !rotated {
            break;
        }
    }
}

/// One-sided (Hestenes) Jacobi: rotates the columns of `a` until they are
/// orthogonal, `a ← a·V`, and accumulates `V` in `v` when given. The
/// singular values are the column norms; small ones keep a relative
/// accuracy that plain eigenvalues of aᵀa would not.
pub(crate) fn one_sided_jacobi<T: MvnReal>(a: &mut [T], mut v: Option<&mut [T]>, d: usize) {
    if let Some(v) = v.as_deref_mut() {
        identity(v, d);
    }
    for _sweep in 0..60 {
        let mut rotated = false;
        for p in 0..d {
            for q in (p + 1)..d {
                let (mut al, mut be, mut ga) = (T::ZERO, T::ZERO, T::ZERO);
                for i in 0..d {
                    let x = at(a, i * d + p);
                    let y = at(a, i * d + q);
                    al = al + x * x;
                    be = be + y * y;
                    ga = ga + x * y;
                }
                if not_above(ga.abs(), T::EPS * (al * be).sqrt()) {
                    continue;
                }
                rotated = true;
                let zeta = (be - al) / (T::TWO * ga);
                let big = zeta.abs() > T::ONE / T::EPS;
                let t0 = T::ONE / (zeta.abs() + (T::ONE + zeta * zeta).sqrt());
                let t1 = T::HALF / zeta.abs();
                let t = if big { t1 } else { t0 };
                let t = if zeta < T::ZERO { -t } else { t };
                let c = T::ONE / (T::ONE + t * t).sqrt();
                let s = c * t;
                for i in 0..d {
                    let x = at(a, i * d + p);
                    let y = at(a, i * d + q);
                    put(a, i * d + p, c * x - s * y);
                    put(a, i * d + q, s * x + c * y);
                }
                if let Some(v) = v.as_deref_mut() {
                    for i in 0..d {
                        let x = at(v, i * d + p);
                        let y = at(v, i * d + q);
                        put(v, i * d + p, c * x - s * y);
                        put(v, i * d + q, s * x + c * y);
                    }
                }
            }
        }
        if !rotated {
            break;
        }
    }
}

/// Squared norm of column `j` of `a`.
pub(crate) fn column_norm2<T: Real>(a: &[T], j: usize, d: usize) -> T {
    let mut s = T::ZERO;
    for i in 0..d {
        let x = at(a, i * d + j);
        s = s + x * x;
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_prod_and_sum_are_exact() {
        let (a, b) = (1.000_000_1_f32, -2.718_7_f32);
        let (p, e) = two_prod(a, b);
        assert_eq!(f64::from(p) + f64::from(e), f64::from(a) * f64::from(b));
        let (s, e) = two_sum(1e8_f32, 1.2345_f32);
        assert_eq!(f64::from(s) + f64::from(e), 1e8 + f64::from(1.2345_f32));
    }

    #[test]
    fn cholesky_names_the_pivot() {
        let a = [4.0, 2.0, 2.0, 1.0_f64];
        let mut l = [0.0; 4];
        let e = cholesky(&a, &mut l, 2).unwrap_err();
        assert_eq!(e.0, 1);
        assert!(e.1 <= 0.0);
        let mut u = [0.0; 4];
        let a = [2.0, 1.0, 1.0, 3.0_f64];
        cholesky_rev(&a, &mut u, 2).unwrap();
        // u·uᵀ = a
        let mut c = [0.0; 4];
        mul(&u, false, &u, true, &mut c, 2);
        for k in 0..4 {
            assert!((c[k] - a[k]).abs() < 1e-15);
        }
        assert_eq!(u[2], 0.0);
    }

    #[test]
    fn jacobi_finds_eigenvalues() {
        let mut a = [2.0, 1.0, 0.0, 1.0, 2.0, 0.0, 0.0, 0.0, -1.0_f64];
        jacobi_eigenvalues(&mut a, 3);
        let mut e = [a[0], a[4], a[8]];
        e.sort_by(|x, y| x.partial_cmp(y).unwrap());
        assert!(
            (e[0] + 1.0).abs() < 1e-15 && (e[1] - 1.0).abs() < 1e-15 && (e[2] - 3.0).abs() < 1e-15
        );
        let mut m = [3.0, 0.0, 4.0, 5.0_f64];
        let mut v = [0.0; 4];
        one_sided_jacobi(&mut m, Some(&mut v), 2);
        let mut s = [column_norm2(&m, 0, 2).sqrt(), column_norm2(&m, 1, 2).sqrt()];
        s.sort_by(|x, y| x.partial_cmp(y).unwrap());
        // singular values of [[3, 0], [4, 5]]: √(45 ± √(45² − 4·225))/… = √5, 3√5
        assert!((s[0] - 5f64.sqrt()).abs() < 1e-14 && (s[1] - 3.0 * 5f64.sqrt()).abs() < 1e-14);
    }
}
