//! The tolerance model of docs/ARCHITECTURE.md §3, and verification of results against
//! the CPU f64 reference.
//!
//! * KL, and likewise reverse KL, Jeffreys, the Bhattacharyya distance and
//!   coefficient, Hellinger and Wasserstein-2 (all non-negative): relative
//!   error `|y − t| / max(t, m)`, `m` the smallest normal number of the
//!   output format (below it the error is absolute, and an underflow to 0 is
//!   right). `t = 0` requires `y = 0` exactly; `t` above the format's largest
//!   finite value requires `y = +∞`.
//! * Cross-entropy and entropy: `|y − t|` over the magnitude of the summed
//!   terms, `|½(1 + ln 2π)| + |ln σ1| + KL`; the entropy of p2 likewise with
//!   the roles swapped, `|½(1 + ln 2π)| + |ln σ2| + KL(p2 ‖ p1)`.
//! * NaN equals nothing, except where the reference is NaN (invalid input
//!   under the NaN policy).
//! * Full-covariance pairs ([`verify_mvn`], docs/ARCHITECTURE.md §9): the
//!   bounds of [`Tolerance::MVN_F32`] and [`Tolerance::MVN_F64`], each
//!   raised to 4·u·max(cond Σ1, cond Σ2) on ill-conditioned pairs, and the
//!   entropies' scale d·½(1 + ln 2π) + Σ|ln L_ii| + KL ([`MvnRow`]).

use crate::batch::Batch;
use crate::cpu;
use crate::error::{Error, Result};
use crate::math::{idx, Real, MEASURES};
use crate::pair::{EvalOptions, Float, GaussianPair, GaussianPair64, Metric, Param};
use crate::request::Request;
use rayon::prelude::*;
use std::fmt;

pub use crate::mvn::verify::verify_mvn;

/// The numeric format a result was computed in: it sets the smallest normal
/// and the largest finite value of the tolerance model.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Precision {
    /// IEEE binary32.
    F32,
    /// IEEE binary64.
    F64,
}

impl Precision {
    /// Smallest positive normal value of the format.
    pub fn min_normal(self) -> f64 {
        match self {
            Precision::F32 => f64::from(f32::MIN_POSITIVE),
            Precision::F64 => f64::MIN_POSITIVE,
        }
    }

    /// Largest finite value of the format.
    pub fn max_finite(self) -> f64 {
        match self {
            Precision::F32 => f64::from(f32::MAX),
            Precision::F64 => f64::MAX,
        }
    }

    /// The unit roundoff u of the format: 2⁻²⁴ (f32), 2⁻⁵³ (f64).
    pub fn unit_roundoff(self) -> f64 {
        match self {
            Precision::F32 => f64::powi(2.0, -24),
            Precision::F64 => f64::powi(2.0, -53),
        }
    }
}

/// Error bounds per measure, and the format they apply to.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Tolerance {
    /// Bound on the relative error of KL.
    pub kl: f64,
    /// Bound on the scaled error of the cross-entropy.
    pub cross_entropy: f64,
    /// Bound on the scaled error of the entropy.
    pub entropy: f64,
    /// Bound on the scaled error of the entropy of p2.
    pub entropy_q: f64,
    /// Bound on the relative error of the reverse KL divergence.
    pub reverse_kl: f64,
    /// Bound on the relative error of the Jeffreys divergence.
    pub jeffreys: f64,
    /// Bound on the relative error of the Bhattacharyya distance.
    pub bhattacharyya: f64,
    /// Bound on the relative error of the Bhattacharyya coefficient.
    pub bhattacharyya_coefficient: f64,
    /// Bound on the relative error of the Hellinger distance.
    pub hellinger: f64,
    /// Bound on the relative error of the 2-Wasserstein distance.
    pub wasserstein2: f64,
    /// The output format.
    pub precision: Precision,
}

impl Tolerance {
    /// The CPU f32 path's target: 1e-6 for every measure.
    pub const CPU_F32: Tolerance = Tolerance::uniform(1e-6, Precision::F32);
    /// The GPU f32 path's target on any conformant adapter: 2e-6 for every measure.
    pub const GPU_F32: Tolerance = Tolerance::uniform(2e-6, Precision::F32);
    /// The f64 paths' target: 1e-14 for every measure.
    pub const F64: Tolerance = Tolerance::uniform(1e-14, Precision::F64);
    /// Full-covariance pairs in f32 (issue 15; CPU and GPU paths alike): KL,
    /// reverse KL, Jeffreys 2e-6 relative; Bhattacharyya distance and
    /// coefficient, Hellinger, W₂ 1e-5 relative; cross-entropy and entropies
    /// 2e-6 of their scale ([`MvnRow::error`]). [`MvnRow::bound`] raises each
    /// to 4·u·cond on ill-conditioned pairs.
    pub const MVN_F32: Tolerance = Tolerance {
        kl: 2e-6,
        cross_entropy: 2e-6,
        entropy: 2e-6,
        entropy_q: 2e-6,
        reverse_kl: 2e-6,
        jeffreys: 2e-6,
        bhattacharyya: 1e-5,
        bhattacharyya_coefficient: 1e-5,
        hellinger: 1e-5,
        wasserstein2: 1e-5,
        precision: Precision::F32,
    };
    /// Full-covariance pairs in f64: 1e-12 for every measure (raised to
    /// 4·u·cond as for [`Tolerance::MVN_F32`]).
    pub const MVN_F64: Tolerance = Tolerance::uniform(1e-12, Precision::F64);

    /// [`Tolerance::MVN_F32`] or [`Tolerance::MVN_F64`].
    pub const fn mvn(precision: Precision) -> Tolerance {
        match precision {
            Precision::F32 => Tolerance::MVN_F32,
            Precision::F64 => Tolerance::MVN_F64,
        }
    }

    /// The same bound for every measure.
    pub const fn uniform(bound: f64, precision: Precision) -> Tolerance {
        Tolerance {
            kl: bound,
            cross_entropy: bound,
            entropy: bound,
            entropy_q: bound,
            reverse_kl: bound,
            jeffreys: bound,
            bhattacharyya: bound,
            bhattacharyya_coefficient: bound,
            hellinger: bound,
            wasserstein2: bound,
            precision,
        }
    }

    /// The bound for one measure.
    pub fn bound(&self, m: Metric) -> f64 {
        match m {
            Metric::CrossEntropy => self.cross_entropy,
            Metric::Kl => self.kl,
            Metric::Entropy => self.entropy,
            Metric::EntropyQ => self.entropy_q,
            Metric::ReverseKl => self.reverse_kl,
            Metric::Jeffreys => self.jeffreys,
            Metric::Bhattacharyya => self.bhattacharyya,
            Metric::BhattacharyyaCoefficient => self.bhattacharyya_coefficient,
            Metric::Hellinger => self.hellinger,
            Metric::Wasserstein2 => self.wasserstein2,
        }
    }
}

/// The overflow rule of docs/ARCHITECTURE.md §3 for a reference value
/// (either sign): which results are right where the truth is at or beyond
/// the largest finite value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Overflow {
    /// |truth| ≤ MAX: the result must be finite.
    Finite,
    /// MAX < |truth| < MAX + ½ ulp(MAX): ±MAX (the correctly rounded value)
    /// or ±∞ of the truth's sign are both right (and any finite value
    /// within the bound).
    Allowed,
    /// |truth| ≥ MAX + ½ ulp(MAX), where IEEE rounding gives ±∞: the result
    /// must be ±∞ of the truth's sign.
    Required,
}

/// Which [`Overflow`] case a reference `want` falls in for `precision`.
///
/// In f32 the threshold MAX + ½ ulp = MAX·(1 + 2⁻²⁵) is exact in f64. An
/// f64 reference cannot represent the f64 window: `±inf` means the truth is
/// at least the threshold (`Required`), and `±f64::MAX` means the truth
/// rounds to MAX, which includes the window (`Allowed`).
pub fn overflow(want: f64, precision: Precision) -> Overflow {
    let a = want.abs();
    let (max, threshold) = match precision {
        Precision::F32 => {
            let max = f64::from(f32::MAX);
            (max, max * (1.0 + f64::powi(2.0, -25)))
        }
        Precision::F64 => (f64::MAX, f64::INFINITY),
    };
    if a >= threshold {
        Overflow::Required
    } else if a > max || (precision == Precision::F64 && a == max) {
        Overflow::Allowed
    } else {
        Overflow::Finite
    }
}

/// 0 when `got` is ∞ of `want`'s sign, else ∞ (a failure).
fn exact_inf(got: f64, want: f64) -> f64 {
    if got == f64::INFINITY.copysign(want) {
        0.0
    } else {
        f64::INFINITY
    }
}

/// Error of a KL value `got` against the truth `want` (docs/ARCHITECTURE.md §3); `f64::INFINITY`
/// for a result of the wrong kind (NaN, a spurious or missing ∞, non-zero for zero).
pub fn kl_error(got: f64, want: f64, precision: Precision) -> f64 {
    if want.is_nan() {
        return if got.is_nan() { 0.0 } else { f64::INFINITY };
    }
    match overflow(want, precision) {
        Overflow::Required => return exact_inf(got, want),
        Overflow::Allowed if got == f64::INFINITY => return 0.0,
        _ => {}
    }
    if want == 0.0 {
        return if got == 0.0 { 0.0 } else { f64::INFINITY };
    }
    if !got.is_finite() {
        return f64::INFINITY;
    }
    // Below the smallest normal m the error is absolute with floor m: a
    // subnormal truth must come out as that subnormal (0 passes only where
    // the truth is below tol·m).
    let m = precision.min_normal();
    (got - want).abs() / want.max(m)
}

/// Relative error of one gradient value (any sign) against its reference:
/// 0 when both are NaN; a reference that rounds beyond the format's range
/// must be ±∞ of its sign; an exact zero must be exact; otherwise
/// `|got − want| / max(|want|, min_normal)` (below the normal range the
/// error is absolute with that floor: no flush of a subnormal reference).
///
/// `scale` (0 for none) is the magnitude of the terms that cancel in the
/// value (see [`gradient_scales`]); the error is taken relative to
/// `max(|want|, scale)`, as docs/ARCHITECTURE.md §3 does for the cross-entropy.
pub fn gradient_error(got: f64, want: f64, scale: f64, precision: Precision) -> f64 {
    if want.is_nan() {
        return if got.is_nan() { 0.0 } else { f64::INFINITY };
    }
    match overflow(want, precision) {
        Overflow::Required => return exact_inf(got, want),
        Overflow::Allowed if got == f64::INFINITY.copysign(want) => return 0.0,
        _ => {}
    }
    if want == 0.0 {
        return if got == 0.0 { 0.0 } else { f64::INFINITY };
    }
    if !got.is_finite() {
        return f64::INFINITY;
    }
    let m = precision.min_normal();
    let scale = if scale.is_finite() { scale } else { 0.0 };
    (got - want).abs() / want.abs().max(scale).max(m)
}

/// The term scales of the eight gradient values of one pair (order of
/// `math::gradients`) for [`gradient_error`]: ∂/∂a2 = (1 − ρ² − q²)·f2 is
/// a difference, so its scale is `(|ρ² − 1| + q²)·|f2|` (when the two terms
/// nearly cancel, the rounding of the inputs' conversions — e.g. of
/// e^(−2 ln σ2) with log-parameters — is amplified relative to the result,
/// but not relative to the terms). Where that cancellation is worst (ρ < 1,
/// q² near 1) and σ, σ² or 1/σ² are given, the kernels form B = 1 − q²
/// exactly and return B − ρ², accurate relative to `ρ²·|f2|`: that is the
/// scale there (q² ∈ [0.51, 1.98], a margin inside the kernels' [½, 2]).
/// The other values are products and quotients (scale 0: plain relative
/// error). Computed in f64 from the inputs; a scale that does not fit is 0.
pub fn gradient_scales(p: &GaussianPair64, param: Param) -> [f64; 8] {
    let (a1, a2) = (p.sigma1, p.sigma2);
    let d = p.mu1 - p.mu2;
    // ρ², q² = Δμ²/σ2² and |f2| per parameterisation.
    let (rho2, q2, f2) = match param {
        Param::Std => ((a1 / a2).powi(2), (d / a2).powi(2), 1.0 / a2),
        Param::Var => (a1 / a2, d * d / a2, 0.5 / a2),
        Param::LogStd => ((2.0 * (a1 - a2)).exp(), d * d * (-2.0 * a2).exp(), 1.0),
        Param::LogVar => ((a1 - a2).exp(), d * d * (-a2).exp(), 0.5),
        Param::Precision => (a2 / a1, d * d * a2, 0.5 / a2),
        #[allow(unreachable_patterns)]
        _ => (f64::NAN, f64::NAN, f64::NAN),
    };
    let exact_b = matches!(param, Param::Std | Param::Var | Param::Precision)
        && rho2 < 1.0
        && (0.51..=1.98).contains(&q2);
    let s = if exact_b {
        rho2 * f2.abs()
    } else {
        ((rho2 - 1.0).abs() + q2) * f2.abs()
    };
    let s = if s.is_finite() { s } else { 0.0 };
    [0.0, 0.0, 0.0, s, 0.0, 0.0, 0.0, s]
}

/// The magnitude of the terms summed in H(p1) + KL: `|½(1 + ln 2π)| + |ln σ1| + KL`.
pub fn term_scale(sigma1: f64, kl: f64) -> f64 {
    <f64 as Real>::HALF_LN_2PI_E + crate::math::ln(sigma1).abs() + kl.abs()
}

/// Scaled error of a cross-entropy or entropy value (docs/ARCHITECTURE.md §3): `|got − want| / scale`.
pub fn scaled_error(got: f64, want: f64, scale: f64, precision: Precision) -> f64 {
    if want.is_nan() {
        return if got.is_nan() { 0.0 } else { f64::INFINITY };
    }
    match overflow(want, precision) {
        Overflow::Required => return exact_inf(got, want),
        Overflow::Allowed if got == f64::INFINITY => return 0.0,
        _ => {}
    }
    if !got.is_finite() {
        return f64::INFINITY;
    }
    (got - want).abs() / scale
}

/// Error of one measure of one pair against its reference `truth` (every
/// measure, canonical order, as the CPU f64 path returns them or a
/// golden file holds them), in any parameterisation: relative error for
/// the divergences and distances, scaled error for the entropies and the
/// cross-entropy, whose scale `|½(1 + ln 2π)| + |ln σ| + KL` is taken from
/// the reference itself (ln σ1 = H(p1) − ½(1 + ln 2π)).
pub fn measure_error(
    metric: Metric,
    got: f64,
    truth: &[f64; MEASURES],
    precision: Precision,
) -> f64 {
    let h0 = <f64 as Real>::HALF_LN_2PI_E;
    let at = |i: usize| truth.get(i).copied().unwrap_or(f64::NAN);
    let want = at(metric.index());
    match metric {
        Metric::CrossEntropy | Metric::Entropy => {
            let scale = h0 + (at(idx::ENTROPY) - h0).abs() + at(idx::KL);
            scaled_error(got, want, scale, precision)
        }
        Metric::EntropyQ => {
            let scale = h0 + (at(idx::ENTROPY_Q) - h0).abs() + at(idx::REVERSE_KL);
            scaled_error(got, want, scale, precision)
        }
        _ => kl_error(got, want, precision),
    }
}

/// What the tolerance model needs to know of one full-covariance pair
/// besides its reference values (issue 15, docs/ARCHITECTURE.md §9).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct MvnRow {
    /// The dimension d.
    pub dims: usize,
    /// max(cond Σ1, cond Σ2), the covariances' 2-norm condition numbers
    /// (NaN where unknown: the bounds are then the base ones; ∞ where the
    /// pair has no f64 reference, see [`verify_mvn`]).
    pub cond: f64,
    /// Σ|ln L_ii| of each side's lower Cholesky factor L (Σ = L·Lᵀ): the
    /// entropies' term magnitudes.
    pub abs_ln_diag: [f64; 2],
}

impl MvnRow {
    /// The bound of `metric` on this pair: `tolerance`'s, raised to
    /// 4·u·cond (u the unit roundoff of `tolerance.precision`).
    pub fn bound(&self, metric: Metric, tolerance: &Tolerance) -> f64 {
        let floor = 4.0 * tolerance.precision.unit_roundoff() * self.cond;
        tolerance.bound(metric).max(floor)
    }

    /// Error of one measure `got` against the reference `truth` (every
    /// measure, canonical order): relative ([`kl_error`]) for the
    /// divergences and distances; for the cross-entropy and H(p1)
    /// [`scaled_error`] with the scale d·½(1 + ln 2π) + Σ|ln L1_ii| + KL, for
    /// H(p2) d·½(1 + ln 2π) + Σ|ln L2_ii| + KL(p2 ‖ p1).
    pub fn error(
        &self,
        metric: Metric,
        got: f64,
        truth: &[f64; MEASURES],
        precision: Precision,
    ) -> f64 {
        let h0 = self.dims as f64 * <f64 as Real>::HALF_LN_2PI_E;
        let at = |i: usize| truth.get(i).copied().unwrap_or(f64::NAN);
        let [l1, l2] = self.abs_ln_diag;
        let want = at(metric.index());
        match metric {
            Metric::CrossEntropy | Metric::Entropy => {
                scaled_error(got, want, h0 + l1 + at(idx::KL).abs(), precision)
            }
            Metric::EntropyQ => {
                scaled_error(got, want, h0 + l2 + at(idx::REVERSE_KL).abs(), precision)
            }
            _ => kl_error(got, want, precision),
        }
    }
}

/// The worst row of one measure: the row with the largest error relative
/// to its bound.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct WorstRow {
    /// 0-based row index.
    pub index: usize,
    /// The inputs of that row (all zero for a full-covariance pair: see `mvn`).
    pub pair: GaussianPair64,
    /// The value under test.
    pub got: f64,
    /// The reference value.
    pub want: f64,
    /// The error under the tolerance model.
    pub error: f64,
    /// The bound this row was held to: the measure's, or for an
    /// ill-conditioned full-covariance pair the larger of [`MvnRow::bound`].
    pub bound: f64,
    /// For a full-covariance pair, its dimension and conditioning; `None`
    /// for univariate rows.
    pub mvn: Option<MvnRow>,
}

impl WorstRow {
    /// `error / bound` (0 for an exact result, NaN for a NaN error).
    pub fn ratio(&self) -> f64 {
        if self.error == 0.0 {
            0.0
        } else {
            self.error / self.bound
        }
    }

    /// Whether this row is worse than `other`: a larger ratio to its bound,
    /// or a NaN error where `other` has none.
    fn worse_than(&self, other: &WorstRow) -> bool {
        let (a, b) = (self.ratio(), other.ratio());
        a > b || (a.is_nan() && !b.is_nan())
    }
}

/// Verification of one measure.
#[derive(Clone, Debug, PartialEq)]
pub struct MetricReport {
    /// The measure.
    pub metric: Metric,
    /// Its bound.
    pub bound: f64,
    /// Rows whose error exceeds the bound.
    pub failures: usize,
    /// The row with the largest error (`None` for no rows).
    pub worst: Option<WorstRow>,
}

/// The outcome of [`verify`]: per measure, the worst row and the failure count.
#[derive(Clone, Debug, PartialEq)]
pub struct VerifyReport {
    /// Rows compared.
    pub rows: usize,
    /// The tolerance applied.
    pub tolerance: Tolerance,
    /// The parameterisation of the inputs (the `sigma` fields of the worst
    /// rows hold `a1`, `a2` in it).
    pub param: Param,
    /// One report per verified measure, canonical order.
    pub metrics: Vec<MetricReport>,
}

impl VerifyReport {
    /// Whether every row of every measure is within tolerance.
    pub fn passed(&self) -> bool {
        self.metrics.iter().all(|m| m.failures == 0)
    }

    /// The report of one measure, if it was verified.
    pub fn metric(&self, m: Metric) -> Option<&MetricReport> {
        self.metrics.iter().find(|r| r.metric == m)
    }

    /// Fold in the report of a later chunk whose rows start at `offset` (for
    /// streaming verification): failures add up, the worst row wins, and row
    /// indices become absolute.
    pub fn merge(&mut self, other: &VerifyReport, offset: usize) {
        self.rows += other.rows;
        self.param = other.param;
        for o in &other.metrics {
            let shifted = o.worst.map(|w| WorstRow {
                index: w.index + offset,
                ..w
            });
            match self.metrics.iter_mut().find(|m| m.metric == o.metric) {
                Some(m) => {
                    m.failures += o.failures;
                    if let Some(w) = shifted {
                        if m.worst.is_none_or(|mw| w.worse_than(&mw)) {
                            m.worst = Some(w);
                        }
                    }
                }
                None => self.metrics.push(MetricReport {
                    worst: shifted,
                    ..o.clone()
                }),
            }
        }
    }

    /// An empty report (no rows) to merge chunk reports into.
    pub fn empty(tolerance: Tolerance) -> VerifyReport {
        VerifyReport {
            rows: 0,
            tolerance,
            param: Param::Std,
            metrics: Vec::new(),
        }
    }

    /// The largest error over all measures, relative to its row's bound (≤ 1 passes).
    pub fn worst_ratio(&self) -> f64 {
        self.metrics
            .iter()
            .filter_map(|m| m.worst.map(|w| w.ratio()))
            .fold(0.0, f64::max)
    }
}

impl fmt::Display for VerifyReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "verified {} rows against the CPU f64 reference: {}",
            self.rows,
            if self.passed() { "PASS" } else { "FAIL" }
        )?;
        let (a1, a2) = (self.param.column(1), self.param.column(2));
        for m in &self.metrics {
            match m.worst {
                None => writeln!(f, "  {:<14} no rows", m.metric.name())?,
                Some(WorstRow {
                    mvn: Some(r),
                    index,
                    got,
                    want,
                    error,
                    bound,
                    ..
                }) => {
                    write!(
                        f,
                        "  {:<14} max error {error:.3e} (bound {:.0e}, {} rows over) at row {index}",
                        m.metric.name(),
                        m.bound,
                        m.failures,
                    )?;
                    if bound > m.bound {
                        write!(f, " (bound there {bound:.1e})")?;
                    }
                    writeln!(
                        f,
                        ": d={} cond={:.2e} got={got:e} want={want:e}",
                        r.dims, r.cond
                    )?
                }
                Some(w) => writeln!(
                    f,
                    "  {:<14} max error {:.3e} (bound {:.0e}, {} rows over) at row {}: \
                     mu1={:e} {a1}={:e} mu2={:e} {a2}={:e} got={:e} want={:e}",
                    m.metric.name(),
                    w.error,
                    m.bound,
                    m.failures,
                    w.index,
                    w.pair.mu1,
                    w.pair.sigma1,
                    w.pair.mu2,
                    w.pair.sigma2,
                    w.got,
                    w.want
                )?,
            }
        }
        Ok(())
    }
}

#[derive(Clone, Copy, Default)]
struct Acc {
    failures: usize,
    worst: Option<WorstRow>,
}

impl Acc {
    /// Counts `row` against its own bound and keeps the worst.
    fn add(&mut self, row: WorstRow) {
        if row.error.is_nan() || row.error > row.bound {
            self.failures += 1;
        }
        if self.worst.is_none_or(|w| row.worse_than(&w)) {
            self.worst = Some(row);
        }
    }

    fn merge(mut self, other: Acc) -> Acc {
        self.failures += other.failures;
        if let Some(w) = other.worst {
            let worse = match self.worst {
                None => true,
                Some(s) => {
                    w.worse_than(&s)
                        || (w.ratio().total_cmp(&s.ratio()).is_eq() && w.index < s.index)
                }
            };
            if worse {
                self.worst = Some(w);
            }
        }
        self
    }
}

/// The report on `n` rows of the measures `list`: `row(scratch, i)` gives
/// row `i`'s error per measure (in `list`'s order, each with its bound),
/// `scratch()` the working space of one parallel task. The one fold of
/// [`verify`] and [`verify_mvn`].
pub(crate) fn collect<S: Send>(
    n: usize,
    list: &[Metric],
    tol: Tolerance,
    param: Param,
    scratch: impl Fn() -> S + Sync + Send,
    row: impl Fn(&mut S, usize) -> Vec<WorstRow> + Sync + Send,
) -> VerifyReport {
    let k = list.len();
    let accs = (0..n)
        .into_par_iter()
        .fold(
            || (scratch(), vec![Acc::default(); k]),
            |(mut s, mut accs), i| {
                for (acc, r) in accs.iter_mut().zip(row(&mut s, i)) {
                    acc.add(r);
                }
                (s, accs)
            },
        )
        .map(|(_, accs)| accs)
        .reduce(
            || vec![Acc::default(); k],
            |a, b| a.into_iter().zip(b).map(|(x, y)| x.merge(y)).collect(),
        );
    VerifyReport {
        rows: n,
        tolerance: tol,
        param,
        metrics: list
            .iter()
            .zip(accs)
            .map(|(&metric, a)| MetricReport {
                metric,
                bound: tol.bound(metric),
                failures: a.failures,
                worst: a.worst,
            })
            .collect(),
    }
}

/// Core: `pair(i)` gives row `i`'s inputs (in f64, exactly), `value(i, j)`
/// the `j`-th value under test of that row.
fn verify_core(
    n: usize,
    pair: impl Fn(usize) -> GaussianPair64 + Sync + Send,
    options: EvalOptions,
    gradients: bool,
    tol: Tolerance,
    value: impl Fn(usize, usize) -> f64 + Sync + Send,
) -> VerifyReport {
    let list: Vec<Metric> = options.metrics.iter().collect();
    let param = options.param;
    let row = |_: &mut (), i: usize| {
        let p = &pair(i);
        if gradients {
            gradient_rows(i, p, param, &list, tol, &value)
        } else {
            let reference = cpu::reference_row(p, param, options.metrics);
            list.iter()
                .enumerate()
                .map(|(j, &m)| {
                    let got = value(i, j);
                    WorstRow {
                        index: i,
                        pair: *p,
                        got,
                        want: reference.get(m.index()).copied().unwrap_or(f64::NAN),
                        error: measure_error(m, got, &reference, tol.precision),
                        bound: tol.bound(m),
                        mvn: None,
                    }
                })
                .collect()
        }
    };
    collect(n, &list, tol, param, || (), row)
}

/// The worst of the four gradient values of each selected measure of row
/// `i` against the CPU f64 gradients ([`gradient_error`], scaled by
/// [`gradient_scales`]).
fn gradient_rows(
    i: usize,
    p: &GaussianPair64,
    param: Param,
    list: &[Metric],
    tol: Tolerance,
    value: &(impl Fn(usize, usize) -> f64 + Sync),
) -> Vec<WorstRow> {
    let precision = tol.precision;
    let reference = crate::gradient::gradients_one(p.mu1, p.sigma1, p.mu2, p.sigma2, param);
    let scales = gradient_scales(p, param);
    let per = crate::gradient::PER_MEASURE;
    list.iter()
        .enumerate()
        .map(|(j, &m)| {
            let base = if m == Metric::Kl { per } else { 0 };
            (0..per)
                .map(|c| {
                    let got = value(i, j * per + c);
                    let want = reference.get(base + c).copied().unwrap_or(f64::NAN);
                    let scale = scales.get(base + c).copied().unwrap_or(0.0);
                    WorstRow {
                        index: i,
                        pair: *p,
                        got,
                        want,
                        error: gradient_error(got, want, scale, precision),
                        bound: tol.bound(m),
                        mvn: None,
                    }
                })
                .fold(None::<WorstRow>, |w, r| match w {
                    Some(w) if !r.worse_than(&w) => Some(w),
                    _ => Some(r),
                })
                .unwrap_or(WorstRow {
                    index: i,
                    pair: *p,
                    got: f64::NAN,
                    want: f64::NAN,
                    error: f64::NAN,
                    bound: tol.bound(m),
                    mvn: None,
                })
        })
        .collect()
}

/// `len` must be `n × k` (k values per pair).
fn check_flat_len(n: usize, k: usize, len: usize) -> Result<()> {
    if n.checked_mul(k) == Some(len) {
        Ok(())
    } else {
        Err(Error::LengthMismatch {
            what: "results",
            expected: (n as u64).saturating_mul(k as u64),
            got: len as u64,
        })
    }
}

/// Verify the results `out` of `request` on `batch` against the CPU f64
/// reference recomputed here (the measures, or their gradients), row by row
/// under the tolerance model of docs/ARCHITECTURE.md §3: per measure the
/// worst row and the number of rows over `tolerance`. Pairs, columns and
/// pairwise batches; full-covariance pairs ([`Batch::Mvn`]) as
/// [`verify_mvn`] does them; a diagonal or full-covariance pairwise batch
/// is [`Error::Unsupported`].
///
/// ```
/// use gaussdiv::{Backend, Batch, Evaluator, GaussianPair, Request, Tolerance};
///
/// let pairs = [GaussianPair::new(0.0, 1.0, 1.0, 2.0), GaussianPair::new(0.5, 1.0, 0.5, 1.000_000_1)];
/// let request = Request::default(); // cross-entropy, KL, entropy
/// let mut out = vec![0f32; pairs.len() * request.values_per_pair()];
/// Evaluator::new(Backend::Cpu)?.evaluate(Batch::Pairs(&pairs), &request, &mut out)?;
/// let report = gaussdiv::verify(Batch::Pairs(&pairs), &request, &out, Tolerance::CPU_F32)?;
/// assert!(report.passed(), "{report}");
/// # Ok::<(), gaussdiv::Error>(())
/// ```
pub fn verify<T: Float>(
    batch: Batch<'_, T>,
    request: &Request,
    out: &[T],
    tolerance: Tolerance,
) -> Result<VerifyReport> {
    let options = request.options()?;
    let k = request.values_per_pair();
    let value = |i: usize, j: usize| out.get(i * k + j).map_or(f64::NAN, |&v| v.into());
    let g = request.is_gradients();
    match batch {
        Batch::Pairs(pairs) => {
            check_flat_len(pairs.len(), k, out.len())?;
            let pair = |i: usize| pairs.get(i).map(|p| p.to_f64()).unwrap_or_default();
            Ok(verify_core(pairs.len(), pair, options, g, tolerance, value))
        }
        Batch::Columns(c) => {
            let n = crate::batch::columns_len(c)?;
            check_flat_len(n, k, out.len())?;
            let at = |c: &[T], i: usize| c.get(i).copied().unwrap_or_default();
            let pair = |i: usize| {
                GaussianPair::new(at(c[0], i), at(c[1], i), at(c[2], i), at(c[3], i)).to_f64()
            };
            Ok(verify_core(n, pair, options, g, tolerance, value))
        }
        Batch::Pairwise { p, q } => {
            let cells = crate::batch::pairwise_cells(p.len(), q.len(), k, out.len())?;
            let pair = |i: usize| {
                crate::batch::cell_pair(p, q, i)
                    .map(GaussianPair::to_f64)
                    .unwrap_or_default()
            };
            Ok(verify_core(cells, pair, options, g, tolerance, value))
        }
        Batch::Diagonal { .. } => Err(Error::Unsupported(
            "verify: diagonal batches are not verified row by row; verify their pairs".into(),
        )),
        Batch::Mvn(pairs) => verify_mvn(pairs, request, out, tolerance),
        Batch::MvnPairwise { .. } => Err(Error::Unsupported(
            "verify: full-covariance pairwise batches are not verified yet; verify the pairs \
             (Batch::Mvn) of the cells in question"
                .into(),
        )),
    }
}

#[cfg(test)]
mod overflow_rule_tests {
    use super::*;

    const MAX32: f64 = f32::MAX as f64;
    /// MAX + ½ ulp in f32 (exact in f64).
    fn thr32() -> f64 {
        MAX32 + f64::powi(2.0, 103)
    }

    #[test]
    fn f32_window_and_beyond() {
        let p = Precision::F32;
        let below = MAX32 * (1.0 - 1e-9);
        let window = MAX32 + f64::powi(2.0, 102);
        let beyond = thr32();
        assert_eq!(overflow(below, p), Overflow::Finite);
        assert_eq!(overflow(MAX32, p), Overflow::Finite);
        assert_eq!(overflow(window, p), Overflow::Allowed);
        assert_eq!(overflow(beyond, p), Overflow::Required);
        assert_eq!(overflow(-beyond, p), Overflow::Required);
        for f in [
            kl_error as fn(f64, f64, Precision) -> f64,
            |g, w, p| scaled_error(g, w, w.abs().max(1.0), p),
            |g, w, p| gradient_error(g, w, 0.0, p),
        ] {
            // At or beyond MAX + ½ ulp: +inf only.
            assert_eq!(f(f64::INFINITY, beyond, p), 0.0);
            assert_eq!(f(MAX32, beyond, p), f64::INFINITY);
            assert_eq!(f(f64::INFINITY, f64::INFINITY, p), 0.0);
            // In the window: MAX (correctly rounded) or +inf.
            assert_eq!(f(f64::INFINITY, window, p), 0.0);
            assert!(f(MAX32, window, p) < 1e-7);
            // Below MAX: no inf.
            assert_eq!(f(f64::INFINITY, MAX32, p), f64::INFINITY);
            assert_eq!(f(f64::INFINITY, below, p), f64::INFINITY);
        }
        // Gradients: the sign counts.
        assert_eq!(gradient_error(f64::NEG_INFINITY, -beyond, 0.0, p), 0.0);
        assert_eq!(
            gradient_error(f64::INFINITY, -beyond, 0.0, p),
            f64::INFINITY
        );
        assert_eq!(gradient_error(-MAX32, -beyond, 0.0, p), f64::INFINITY);
        assert_eq!(gradient_error(f64::NEG_INFINITY, -window, 0.0, p), 0.0);
        assert!(gradient_error(-MAX32, -window, 0.0, p) < 1e-7);
    }

    #[test]
    fn f64_reference_rounded() {
        let p = Precision::F64;
        assert_eq!(overflow(f64::INFINITY, p), Overflow::Required);
        assert_eq!(overflow(f64::MAX, p), Overflow::Allowed);
        assert_eq!(overflow(f64::MAX * (1.0 - 1e-15), p), Overflow::Finite);
        assert_eq!(kl_error(f64::MAX, f64::INFINITY, p), f64::INFINITY);
        assert_eq!(kl_error(f64::INFINITY, f64::MAX, p), 0.0);
        assert_eq!(kl_error(f64::MAX, f64::MAX, p), 0.0);
        assert_eq!(kl_error(f64::INFINITY, f64::MAX * 0.5, p), f64::INFINITY);
    }
}
