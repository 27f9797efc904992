//! [`verify_mvn`]: full-covariance results against the CPU f64 evaluation
//! of the same pairs, under the bounds of issue 15 ([`MvnRow`]).

use super::formulas::{self, Kind, Need, Side, Work};
use super::linalg::{at, cholesky, cholesky_rev, column_norm2, one_sided_jacobi, MvnReal};
use super::{Cells, MvnPairs, Plan};
use crate::error::{Error, Result};
use crate::math::MEASURES;
use crate::pair::{EvalOptions, Float, GaussianPair64, Metric, Param};
use crate::request::Request;
use crate::verify::{collect, kl_error, MvnRow, Precision, Tolerance, VerifyReport, WorstRow};

/// Verify the full-covariance results `out` of `request` on `pairs`
/// (`k` = [`Request::values_per_pair`] values per pair, canonical order)
/// row by row: each pair is evaluated again on the CPU in f64 from its
/// inputs widened exactly, and each value is held to `tolerance`
/// ([`Tolerance::MVN_F32`] or [`Tolerance::MVN_F64`]: the bounds of issue 15)
/// raised to 4·u·max(cond Σ1, cond Σ2) on ill-conditioned pairs (u the unit
/// roundoff of `tolerance.precision`), with the entropies' scale
/// d·½(1 + ln 2π) + Σ|ln L_ii| + KL ([`MvnRow`]). The conditioning is
/// computed in f64 from each side's Cholesky factor (singular values by
/// one-sided Jacobi). The report's worst rows carry `mvn` (d, cond) and
/// their own bound; their `pair` is all zero.
///
/// What it means: for f32 results, the results against a reference with
/// about 1e-16 relative accuracy of its own (times cond), so an f32 check
/// verifies accuracy. For f64 results (from the GPU or the CPU), the
/// reference is the same CPU f64 formulation: the check is the consistency
/// of the path under test with the CPU f64 path within 1e-12, not accuracy
/// beyond what the f64 formulation itself has (docs/ARCHITECTURE.md §9 and
/// tests/mvn.rs hold that against mpmath truth).
///
/// Each row is judged by the validity rules of the evaluated precision `T`
/// (the library's checks and factorisations in `T`): a pair that is invalid
/// there (NaN under [`OnInvalid::Nan`](crate::OnInvalid::Nan)) must be NaN
/// in every value and is not a failure then; a NaN from a valid pair is. The
/// reference reads each symmetric input's lower triangle, as the
/// evaluation does. A pair valid in `T` whose f64 factorisation fails
/// (a covariance singular to within f64, possible only for f32 results)
/// has no reference: its cond is ∞ and it passes with error 0.
///
/// [`Error::Unsupported`] for gradients; [`Error::LengthMismatch`] when
/// `out` or the arrays do not match the batch.
///
/// ```
/// use gaussdiv::{Backend, Batch, Covariance, Evaluator, Metrics, MvnPairs, Request, Tolerance};
///
/// let pairs = MvnPairs {
///     dims: 2,
///     mu1: &[0.0_f32, 0.0, 1.0, 2.0],
///     cov1: Covariance::Cov(&[1.0, 0.2, 0.2, 1.0, 2.0, 0.0, 0.0, 0.5]),
///     mu2: &[1.0, 0.0, 1.0, 2.0],
///     cov2: Covariance::ScaleTril(&[2.0, 0.0, 0.3, 1.0, 1.0, 0.0, 0.0, 1.0]),
/// };
/// let request = Request::measures(Metrics::ALL);
/// let mut out = vec![0f32; 2 * request.values_per_pair()];
/// Evaluator::new(Backend::Cpu)?.evaluate(Batch::Mvn(pairs), &request, &mut out)?;
/// let report = gaussdiv::verify_mvn(pairs, &request, &out, Tolerance::MVN_F32)?;
/// assert!(report.passed(), "{report}");
/// # Ok::<(), gaussdiv::Error>(())
/// ```
pub fn verify_mvn<T: Float>(
    pairs: MvnPairs<'_, T>,
    request: &Request,
    out: &[T],
    tolerance: Tolerance,
) -> Result<VerifyReport> {
    if request.is_gradients() {
        return Err(Error::Unsupported(
            "verify: gradients are not available for full-covariance pairs".into(),
        ));
    }
    let o = request.options()?;
    let internal = || Error::Unsupported("verify: the batch's precision is not its own".into());
    match T::PRECISION {
        Precision::F32 => {
            let p = pairs.cast::<f32>().ok_or_else(internal)?;
            let out = bytemuck::try_cast_slice::<T, f32>(out).map_err(|_| internal())?;
            verify_in(p, o, out, tolerance)
        }
        Precision::F64 => {
            let p = pairs.cast::<f64>().ok_or_else(internal)?;
            let out = bytemuck::try_cast_slice::<T, f64>(out).map_err(|_| internal())?;
            verify_in(p, o, out, tolerance)
        }
    }
}

/// One task's working space.
struct Scratch<T> {
    /// The evaluated precision's checks and factorisations.
    work: Work<T>,
    wide: Work<f64>,
    mu1: Vec<f64>,
    m1: Vec<f64>,
    mu2: Vec<f64>,
    m2: Vec<f64>,
    a: Vec<f64>,
    b: Vec<f64>,
}

/// `src` widened into `dst`; for a symmetric form the lower triangle
/// mirrored (the evaluation reads only it).
fn widen<T: MvnReal>(src: &[T], dst: &mut Vec<f64>, d: usize, kind: Option<Kind>) {
    dst.clear();
    dst.extend(src.iter().map(|&x| x.to_f64()));
    if matches!(kind, Some(Kind::Cov | Kind::Prec)) {
        for i in 0..d {
            for j in 0..i {
                let v = at(dst, i * d + j);
                if let Some(x) = dst.get_mut(j * d + i) {
                    *x = v;
                }
            }
        }
    }
}

/// Σ|ln L_ii| and cond Σ (2-norm) of one side in f64 from its widened
/// matrix `m` (lower triangle read), L the lower Cholesky factor of Σ:
/// computed for a covariance, given (`scale_tril`), U⁻ᵀ for a precision
/// P = U·Uᵀ (so ln L_ii = −ln U_ii, and cond Σ = cond P = cond(U)²). The
/// matrix is first scaled by a power of 2 near its largest diagonal entry
/// (no overflow in the squares). cond is ∞ when the factorisation fails.
fn conditioning(kind: Kind, m: &[f64], d: usize, a: &mut [f64], b: &mut [f64]) -> (f64, f64) {
    let big = (0..d).map(|i| at(m, i * d + i).abs()).fold(0.0, f64::max);
    let e = if big > 0.0 && big.is_finite() {
        (big.log2().floor() as i32).clamp(-1000, 1000)
    } else {
        0
    };
    // The factor's scale 2^k: Σ (or P) times 4^−k, a factor times 2^−k.
    let k = if kind == Kind::Tril {
        e
    } else {
        e.div_euclid(2)
    };
    let s = if kind == Kind::Tril {
        f64::powi(2.0, -k)
    } else {
        f64::powi(2.0, -2 * k)
    };
    for (x, &y) in b.iter_mut().zip(m) {
        *x = y * s;
    }
    let factored = match kind {
        Kind::Cov => cholesky(b, a, d).is_ok(),
        Kind::Prec => cholesky_rev(b, a, d).is_ok(),
        Kind::Tril => {
            for (x, &y) in a.iter_mut().zip(b.iter()) {
                *x = y;
            }
            (0..d).all(|i| at(a, i * d + i) > 0.0)
        }
    };
    if !factored {
        return (f64::NAN, f64::INFINITY);
    }
    let ln2k = f64::from(k) * std::f64::consts::LN_2;
    let abs_ln: f64 = (0..d).map(|i| (at(a, i * d + i).ln() + ln2k).abs()).sum();
    one_sided_jacobi(a, None, d);
    let (lo, hi) = (0..d)
        .map(|j| column_norm2(a, j, d))
        .fold((f64::INFINITY, 0.0_f64), |(lo, hi), s| {
            (lo.min(s), hi.max(s))
        });
    let cond = if lo > 0.0 && hi.is_finite() {
        hi / lo
    } else {
        f64::INFINITY
    };
    (abs_ln, cond)
}

/// [`verify_mvn`] in the batch's own precision.
fn verify_in<T: Float + MvnReal>(
    pairs: MvnPairs<'_, T>,
    o: EvalOptions,
    out: &[T],
    tol: Tolerance,
) -> Result<VerifyReport> {
    let list: Vec<Metric> = o.metrics.iter().collect();
    let k = list.len();
    let plan = Plan::new(Cells::Pairs(pairs), k, out.len())?;
    let d = plan.dims();
    // The reference's groups, with KL and reverse KL for the entropies' scales.
    let mut need = Need::of(o.metrics);
    need.kl |= o.metrics.contains(Metric::Entropy);
    need.rkl |= o.metrics.contains(Metric::EntropyQ);
    let check_only = Need {
        kl: false,
        rkl: false,
        db: false,
        w2: false,
    };
    let scratch = || Scratch {
        work: Work::<T>::new(d),
        wide: Work::<f64>::new(d),
        mu1: Vec::new(),
        m1: Vec::new(),
        mu2: Vec::new(),
        m2: Vec::new(),
        a: vec![0.0; d * d],
        b: vec![0.0; d * d],
    };
    let row = |s: &mut Scratch<T>, c: usize| -> Vec<WorstRow> {
        let got = |j: usize| out.get(c * k + j).map_or(f64::NAN, |&v| v.into());
        let (s1, s2) = plan.sides(c);
        let make = |reference: &[f64; MEASURES], info: MvnRow, judged: bool| {
            list.iter()
                .enumerate()
                .map(|(j, &m)| {
                    let got = got(j);
                    let want = reference.get(m.index()).copied().unwrap_or(f64::NAN);
                    WorstRow {
                        index: c,
                        pair: GaussianPair64::default(),
                        got,
                        want,
                        error: if judged {
                            info.error(m, got, reference, tol.precision)
                        } else {
                            0.0
                        },
                        bound: info.bound(m, &tol),
                        mvn: Some(info),
                    }
                })
                .collect()
        };
        let unknown = MvnRow {
            dims: d,
            cond: f64::NAN,
            abs_ln_diag: [f64::NAN; 2],
        };
        // Invalid in the evaluated precision: every value must be NaN
        // (kl_error against a NaN reference).
        if formulas::evaluate(&mut s.work, s1, s2, check_only).is_err() {
            return list
                .iter()
                .enumerate()
                .map(|(j, &m)| {
                    let got = got(j);
                    WorstRow {
                        index: c,
                        pair: GaussianPair64::default(),
                        got,
                        want: f64::NAN,
                        error: kl_error(got, f64::NAN, tol.precision),
                        bound: tol.bound(m),
                        mvn: Some(unknown),
                    }
                })
                .collect();
        }
        widen(s1.mu, &mut s.mu1, d, None);
        widen(s1.m, &mut s.m1, d, Some(s1.kind));
        widen(s2.mu, &mut s.mu2, d, None);
        widen(s2.m, &mut s.m2, d, Some(s2.kind));
        let a = Side {
            kind: s1.kind,
            mu: &s.mu1,
            m: &s.m1,
        };
        let b = Side {
            kind: s2.kind,
            mu: &s.mu2,
            m: &s.m2,
        };
        let Ok(reference) = formulas::evaluate(&mut s.wide, a, b, need) else {
            // No f64 reference (singular to within f64): cond ∞, passes.
            let info = MvnRow {
                cond: f64::INFINITY,
                ..unknown
            };
            return make(&[f64::NAN; MEASURES], info, false);
        };
        let (l1, c1) = conditioning(s1.kind, &s.m1, d, &mut s.a, &mut s.b);
        let (l2, c2) = conditioning(s2.kind, &s.m2, d, &mut s.a, &mut s.b);
        let info = MvnRow {
            dims: d,
            cond: c1.max(c2),
            abs_ln_diag: [l1, l2],
        };
        make(&reference, info, true)
    };
    Ok(collect(plan.cells, &list, tol, Param::Std, scratch, row))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Backend, Batch, Covariance, Evaluator, Metrics, OnInvalid};

    /// Two pairs in d = 2 (f64): the second side of pair 1 given as a precision.
    fn batch() -> (Vec<f64>, Vec<f64>, Vec<f64>, Vec<f64>) {
        (
            vec![0.0, 0.0, 1.0, -1.0],
            vec![1.0, 0.3, 0.3, 2.0, 4.0, 0.0, 0.0, 0.25],
            vec![0.5, 0.0, 1.0, -1.0],
            vec![2.0, -0.1, -0.1, 1.0, 1.0, 0.5, 0.5, 3.0],
        )
    }

    #[test]
    fn conditioning_of_the_three_forms() {
        // Σ = diag(4, 1/4): cond 16, Σ|ln L_ii| = 2 ln 2 for every form.
        let cov = [4.0, 0.0, 0.0, 0.25];
        let tril = [2.0, 0.0, 0.0, 0.5];
        let prec = [0.25, 0.0, 0.0, 4.0];
        let (mut a, mut b) = (vec![0.0; 4], vec![0.0; 4]);
        for (kind, m) in [(Kind::Cov, cov), (Kind::Tril, tril), (Kind::Prec, prec)] {
            let (l, c) = conditioning(kind, &m, 2, &mut a, &mut b);
            assert!((l - 2.0 * 2f64.ln()).abs() < 1e-15, "{kind:?}: {l}");
            assert!((c - 16.0).abs() < 1e-13, "{kind:?}: {c}");
        }
        // Far from 1 in scale: the same.
        let big: Vec<f64> = cov.iter().map(|x| x * 2f64.powi(900)).collect();
        let (l, c) = conditioning(Kind::Cov, &big, 2, &mut a, &mut b);
        assert!((c - 16.0).abs() < 1e-13, "{c}");
        assert!((l - (452.0 + 448.0) * 2f64.ln()).abs() < 1e-12, "{l}");
        // Not positive definite: cond ∞.
        let (_, c) = conditioning(Kind::Cov, &[1.0, 2.0, 2.0, 1.0], 2, &mut a, &mut b);
        assert_eq!(c, f64::INFINITY);
    }

    #[test]
    fn corrupted_values_fail_and_nan_rows_pass() {
        let (mu1, c1, mu2, c2) = batch();
        let pairs = MvnPairs {
            dims: 2,
            mu1: &mu1,
            cov1: Covariance::Cov(&c1),
            mu2: &mu2,
            cov2: Covariance::Precision(&c2),
        };
        let request = Request::measures(Metrics::ALL);
        let mut out = vec![0.0; 20];
        let ev = Evaluator::new(Backend::Cpu).unwrap();
        ev.evaluate(Batch::Mvn(pairs), &request, &mut out).unwrap();
        let tol = Tolerance::MVN_F64;
        let report = verify_mvn(pairs, &request, &out, tol).unwrap();
        assert!(report.passed(), "{report}");
        assert_eq!(report.worst_ratio(), 0.0, "the same code in f64: {report}");
        // W₂ of pair 1 off by 1e-11 relative: over 1e-12.
        out[10 + 9] *= 1.0 + 1e-11;
        let report = verify_mvn(pairs, &request, &out, tol).unwrap();
        assert!(!report.passed());
        let w2 = report.metric(Metric::Wasserstein2).unwrap();
        assert_eq!(w2.failures, 1);
        assert_eq!(w2.worst.unwrap().index, 1);
        assert!(
            report.to_string().contains("at row 1: d=2 cond="),
            "{report}"
        );
        // An invalid pair under the NaN policy is NaN, and passes.
        let mut bad = c2.clone();
        bad[4..].copy_from_slice(&[1.0, 2.0, 2.0, 1.0]);
        let pairs = MvnPairs {
            cov2: Covariance::Precision(&bad),
            ..pairs
        };
        let request = request.with_on_invalid(OnInvalid::Nan);
        ev.evaluate(Batch::Mvn(pairs), &request, &mut out).unwrap();
        assert!(out[10..].iter().all(|x| x.is_nan()));
        let report = verify_mvn(pairs, &request, &out, tol).unwrap();
        assert!(report.passed(), "{report}");
        // A NaN in a valid pair fails.
        out[0] = f64::NAN;
        let report = verify_mvn(pairs, &request, &out, tol).unwrap();
        assert_eq!(report.metric(Metric::CrossEntropy).unwrap().failures, 1);
        // Lengths are checked, gradients refused.
        assert!(verify_mvn(pairs, &request, &out[..19], tol).is_err());
        let g = Request::gradients(Metrics::CE_KL);
        assert!(verify_mvn(pairs, &g, &out, tol).is_err());
    }
}
