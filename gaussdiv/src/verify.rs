//! The tolerance model of DESIGN §3, and verification of results against
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

use crate::cpu;
use crate::error::{Error, Result};
use crate::math::{idx, Real, MEASURES};
use crate::pair::{
    Divergences, Divergences64, EvalOptions, GaussianPair, GaussianPair64, Metric, Metrics, Param,
};
use rayon::prelude::*;
use std::fmt;

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

/// Error of a KL value `got` against the truth `want` (DESIGN §3); `f64::INFINITY`
/// for a result of the wrong kind (NaN, a spurious or missing ∞, non-zero for zero).
pub fn kl_error(got: f64, want: f64, precision: Precision) -> f64 {
    if want.is_nan() {
        return if got.is_nan() { 0.0 } else { f64::INFINITY };
    }
    if want > precision.max_finite() {
        return if got == f64::INFINITY {
            0.0
        } else {
            f64::INFINITY
        };
    }
    if want == 0.0 {
        return if got == 0.0 { 0.0 } else { f64::INFINITY };
    }
    if !got.is_finite() {
        return f64::INFINITY;
    }
    let m = precision.min_normal();
    if want < m && got == 0.0 {
        return 0.0; // underflow to 0 is right
    }
    (got - want).abs() / want.max(m)
}

/// Relative error of one gradient value (any sign) against its reference:
/// 0 when both are NaN; a reference that rounds beyond the format's range
/// must be ±∞ of its sign; an exact zero must be exact; a reference below
/// the normal range may underflow to 0; otherwise
/// `|got − want| / max(|want|, min_normal)`.
///
/// `scale` (0 for none) is the magnitude of the terms that cancel in the
/// value (see [`gradient_scales`]); the error is taken relative to
/// `max(|want|, scale)`, as DESIGN §3 does for the cross-entropy.
pub fn gradient_error(got: f64, want: f64, scale: f64, precision: Precision) -> f64 {
    if want.is_nan() {
        return if got.is_nan() { 0.0 } else { f64::INFINITY };
    }
    // Values from the largest finite one up to half a unit beyond it round to it.
    let overflow = match precision {
        Precision::F32 => f64::from(f32::MAX) * (1.0 + f64::powi(2.0, -25)),
        Precision::F64 => f64::MAX,
    };
    if want.abs() >= overflow {
        return if got == f64::INFINITY.copysign(want) {
            0.0
        } else {
            f64::INFINITY
        };
    }
    if want == 0.0 {
        return if got == 0.0 { 0.0 } else { f64::INFINITY };
    }
    if !got.is_finite() {
        return f64::INFINITY;
    }
    let m = precision.min_normal();
    if want.abs() < m && got == 0.0 {
        return 0.0;
    }
    let scale = if scale.is_finite() { scale } else { 0.0 };
    (got - want).abs() / want.abs().max(scale).max(m)
}

/// The term scales of the eight gradient values of one pair (order of
/// [`crate::math::gradients`]) for [`gradient_error`]: ∂/∂a2 = (1 − ρ² − q²)·f2
/// is a difference, so its scale is `(|ρ² − 1| + q²)·|f2|` (when the two
/// terms nearly cancel, the rounding of the inputs' conversions — e.g. of
/// e^(−2 ln σ2) with log-parameters — is amplified relative to the result,
/// but not relative to the terms); the other values are products and
/// quotients (scale 0: plain relative error). Computed in f64 from the
/// inputs; a scale that does not fit is 0.
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
    let s = ((rho2 - 1.0).abs() + q2) * f2.abs();
    let s = if s.is_finite() { s } else { 0.0 };
    [0.0, 0.0, 0.0, s, 0.0, 0.0, 0.0, s]
}

/// The magnitude of the terms summed in H(p1) + KL: `|½(1 + ln 2π)| + |ln σ1| + KL`.
pub fn term_scale(sigma1: f64, kl: f64) -> f64 {
    <f64 as Real>::HALF_LN_2PI_E + crate::math::ln(sigma1).abs() + kl.abs()
}

/// Scaled error of a cross-entropy or entropy value (DESIGN §3): `|got − want| / scale`.
pub fn scaled_error(got: f64, want: f64, scale: f64, precision: Precision) -> f64 {
    if want.is_nan() {
        return if got.is_nan() { 0.0 } else { f64::INFINITY };
    }
    if want > precision.max_finite() {
        return if got == f64::INFINITY {
            0.0
        } else {
            f64::INFINITY
        };
    }
    if !got.is_finite() {
        return f64::INFINITY;
    }
    (got - want).abs() / scale
}

/// Error of one measure (cross-entropy, KL or entropy) of one pair given by
/// σ against its reference.
pub fn metric_error(
    metric: Metric,
    got: f64,
    reference: &Divergences64,
    sigma1: f64,
    precision: Precision,
) -> f64 {
    match metric {
        Metric::CrossEntropy | Metric::Entropy => {
            let want = if metric == Metric::Entropy {
                reference.entropy
            } else {
                reference.cross_entropy
            };
            let scale = if sigma1 > 0.0 && sigma1.is_finite() {
                term_scale(sigma1, reference.kl)
            } else {
                f64::NAN
            };
            scaled_error(got, want, scale, precision)
        }
        _ => kl_error(got, reference.kl, precision),
    }
}

/// Error of one measure of one pair against its reference `truth` (every
/// measure, canonical order, as [`crate::cpu::measures64`] returns them or a
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

/// The worst row of one measure.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct WorstRow {
    /// 0-based row index.
    pub index: usize,
    /// The inputs of that row.
    pub pair: GaussianPair64,
    /// The value under test.
    pub got: f64,
    /// The reference value.
    pub want: f64,
    /// The error under the tolerance model.
    pub error: f64,
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
                        if m.worst.is_none_or(|mw| w.error > mw.error) {
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

    /// The largest error over all measures, relative to its bound (≤ 1 passes).
    pub fn worst_ratio(&self) -> f64 {
        self.metrics
            .iter()
            .filter_map(|m| m.worst.map(|w| w.error / m.bound))
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
    fn add(&mut self, row: WorstRow, bound: f64) {
        if row.error.is_nan() || row.error > bound {
            self.failures += 1;
        }
        let worse = match self.worst {
            None => true,
            Some(w) => row.error > w.error || (row.error.is_nan() && !w.error.is_nan()),
        };
        if worse {
            self.worst = Some(row);
        }
    }

    fn merge(mut self, other: Acc) -> Acc {
        self.failures += other.failures;
        if let Some(w) = other.worst {
            let worse = match self.worst {
                None => true,
                Some(s) => w.error > s.error || (w.error == s.error && w.index < s.index),
            };
            if worse {
                self.worst = Some(w);
            }
        }
        self
    }
}

/// Core: `value(i, metric_position)` gives the result under test.
fn verify_core(
    n: usize,
    pair: impl Fn(usize) -> GaussianPair64 + Sync,
    options: EvalOptions,
    tol: Tolerance,
    value: impl Fn(usize, usize) -> f64 + Sync,
) -> VerifyReport {
    let list: Vec<Metric> = options.metrics.iter().collect();
    let k = list.len();
    let param = options.param;
    let accs = (0..n)
        .into_par_iter()
        .fold(
            || vec![Acc::default(); k],
            |mut accs, i| {
                let p = &pair(i);
                let reference = cpu::reference_row(p, param, options.metrics);
                for (j, &m) in list.iter().enumerate() {
                    let got = value(i, j);
                    let error = measure_error(m, got, &reference, tol.precision);
                    let row = WorstRow {
                        index: i,
                        pair: *p,
                        got,
                        want: reference.get(m.index()).copied().unwrap_or(f64::NAN),
                        error,
                    };
                    if let Some(acc) = accs.get_mut(j) {
                        acc.add(row, tol.bound(m));
                    }
                }
                accs
            },
        )
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

/// Verify f32 results (all three measures) against the CPU f64 reference.
pub fn verify(pairs: &[GaussianPair], out: &[Divergences], tol: Tolerance) -> Result<VerifyReport> {
    // (The flat check below covers the lengths: 3 values per result.)
    verify_with(pairs, Metrics::ALL.into(), bytemuck::cast_slice(out), tol)
}

/// Verify a flat f32 output of the selected metrics (row-major, canonical order).
pub fn verify_metrics(
    pairs: &[GaussianPair],
    metrics: Metrics,
    out: &[f32],
    tol: Tolerance,
) -> Result<VerifyReport> {
    verify_with(pairs, metrics.into(), out, tol)
}

/// Verify a flat f32 output of the selected metrics (row-major, canonical
/// order) of pairs in the selected parameterisation.
pub fn verify_with(
    pairs: &[GaussianPair],
    options: EvalOptions,
    out: &[f32],
    tol: Tolerance,
) -> Result<VerifyReport> {
    let k = options.metrics.len();
    check_flat_len(pairs.len(), k, out.len())?;
    Ok(verify_core(
        pairs.len(),
        |i| pairs.get(i).map(|p| p.to_f64()).unwrap_or_default(),
        options,
        tol,
        |i, j| out.get(i * k + j).map_or(f64::NAN, |&v| f64::from(v)),
    ))
}

/// Verify f64 results against the f64 reference recomputed here.
pub fn verify_f64(
    pairs: &[GaussianPair64],
    out: &[Divergences64],
    tol: Tolerance,
) -> Result<VerifyReport> {
    verify_f64_with(pairs, Metrics::ALL.into(), bytemuck::cast_slice(out), tol)
}

/// Verify a flat f64 output of the selected metrics (row-major, canonical
/// order) of f64 pairs in the selected parameterisation against the f64
/// reference recomputed here.
pub fn verify_f64_with(
    pairs: &[GaussianPair64],
    options: EvalOptions,
    out: &[f64],
    tol: Tolerance,
) -> Result<VerifyReport> {
    let k = options.metrics.len();
    check_flat_len(pairs.len(), k, out.len())?;
    Ok(verify_core(
        pairs.len(),
        |i| pairs.get(i).copied().unwrap_or_default(),
        options,
        tol,
        |i, j| out.get(i * k + j).copied().unwrap_or(f64::NAN),
    ))
}
