//! Full-covariance multivariate Gaussians (docs/ARCHITECTURE.md §9): pairs
//! p1 = N(μ1, Σ1), p2 = N(μ2, Σ2) of dimension d, each side's matrix given
//! as a covariance, its lower Cholesky factor (`scale_tril`) or a precision
//! matrix ([`Covariance`]), in a [`MvnPairs`] batch — the layout
//! [`Batch::Mvn`](crate::Batch::Mvn) of the one API.
//!
//! The measures are the ten of [`Metric`](crate::Metric), multivariate:
//! KL = ½(tr(Σ2⁻¹Σ1) − d + ln det Σ2 − ln det Σ1 + Δμᵀ Σ2⁻¹ Δμ),
//! H(p1) = d/2(1 + ln 2π) + ½ ln det Σ1, D_B = ⅛ΔμᵀΣ̄⁻¹Δμ +
//! ½ ln(det Σ̄/√(det Σ1 det Σ2)) with Σ̄ = (Σ1 + Σ2)/2, BC = e^(−D_B),
//! Hellinger √(1 − BC), W₂² = ‖Δμ‖² + tr Σ1 + tr Σ2 − 2 tr((Σ1^½Σ2Σ1^½)^½) —
//! evaluated by formulations without cancellation (`formulas`), on the CPU
//! (all cores). The GPU has no kernel for them yet: [`Backend::Gpu`](crate::Backend::Gpu)
//! answers [`Error::Unsupported`], [`Backend::Auto`](crate::Backend::Auto)
//! uses the CPU. f32 pairs are evaluated in f32 arithmetic, except the
//! Bhattacharyya coefficient of pairs with D_B > 4, which is recomputed from
//! the inputs widened to f64 (its relative error is D_B times that of D_B).
//!
//! **Limits.** Any d ≥ 1; the cost grows as d³ per pair (no size limit is
//! imposed: memory is O(d²) per thread). The sides' variance scales may
//! differ by up to about 2²⁵⁰ (f32) or 2²⁰⁴⁰ (f64): beyond, the common
//! rescaling that keeps intermediate products in range overflows and the
//! pair is reported as not positive definite.

mod formulas;
mod linalg;
mod near;

use crate::error::{Error, Result};
use crate::math::{idx, Real};
use crate::pair::{EvalOptions, Float, Metric};
use crate::validate::OnInvalid;
use crate::verify::Precision;
use formulas::{Bad, Kind, Need, Side, Work};
use linalg::MvnReal;
use rayon::prelude::*;
use std::num::NonZeroUsize;

pub use formulas::SYM_TOL_ULPS;

/// One side's matrices in a [`MvnPairs`] batch: `N·d·d` values, row-major,
/// pair after pair (the matrix of pair `i` at `[i·d², (i + 1)·d²)`).
///
/// * `Cov`: covariance matrices Σ, symmetric positive definite. Only the
///   lower triangle is used; the upper must equal it within a relative
///   tolerance of [`SYM_TOL_ULPS`]·d·u of √(a_ii·a_jj) (u = 2⁻²⁴ in f32,
///   2⁻⁵³ in f64), else the pair is invalid ("not symmetric").
/// * `ScaleTril`: lower Cholesky factors L (Σ = L·Lᵀ): a positive diagonal
///   and an upper triangle of exact zeros.
/// * `Precision`: precision matrices P = Σ⁻¹, symmetric positive definite
///   (the symmetry rule of `Cov`).
#[derive(Clone, Copy, Debug)]
pub enum Covariance<'a, T: Float> {
    /// Covariance matrices Σ.
    Cov(&'a [T]),
    /// Lower Cholesky factors of the covariances (`scale_tril`).
    ScaleTril(&'a [T]),
    /// Precision matrices Σ⁻¹.
    Precision(&'a [T]),
}

impl<'a, T: Float> Covariance<'a, T> {
    /// The values, whichever form they are in.
    pub fn values(&self) -> &'a [T] {
        match *self {
            Covariance::Cov(v) | Covariance::ScaleTril(v) | Covariance::Precision(v) => v,
        }
    }

    /// The name of this form for side `side` (1 or 2), as error messages
    /// and the tool's NPZ arrays spell it: `cov1`, `scale_tril2`, `precision1`, ….
    pub const fn name(&self, side: u8) -> &'static str {
        match (self, side) {
            (Covariance::Cov(_), 1) => "cov1",
            (Covariance::Cov(_), _) => "cov2",
            (Covariance::ScaleTril(_), 1) => "scale_tril1",
            (Covariance::ScaleTril(_), _) => "scale_tril2",
            (Covariance::Precision(_), 1) => "precision1",
            (Covariance::Precision(_), _) => "precision2",
        }
    }

    fn kind(&self) -> Kind {
        match self {
            Covariance::Cov(_) => Kind::Cov,
            Covariance::ScaleTril(_) => Kind::Tril,
            Covariance::Precision(_) => Kind::Prec,
        }
    }

    fn cast<U: Float>(self) -> Option<Covariance<'a, U>> {
        let c = |v: &'a [T]| bytemuck::try_cast_slice::<T, U>(v).ok();
        Some(match self {
            Covariance::Cov(v) => Covariance::Cov(c(v)?),
            Covariance::ScaleTril(v) => Covariance::ScaleTril(c(v)?),
            Covariance::Precision(v) => Covariance::Precision(c(v)?),
        })
    }
}

/// N pairs of `dims`-dimensional Gaussians p1 = N(μ1, Σ1), p2 = N(μ2, Σ2)
/// with full covariance matrices: the [`Batch::Mvn`](crate::Batch::Mvn)
/// layout. Means are `N·d` values (pair `i` at `[i·d, (i + 1)·d)`), the
/// matrices as [`Covariance`] says; the two sides may be given in different
/// forms. The output holds [`Request::values_per_pair`](crate::Request::values_per_pair)
/// values per pair; the request's [`Param`](crate::Param) does not apply
/// (each side says its form) and gradients are not available.
///
/// ```
/// use gaussdiv::{Backend, Batch, Covariance, Evaluator, Metrics, MvnPairs, Request};
///
/// // One pair in d = 2: Σ1 = I against Σ2 given by its Cholesky factor.
/// let mvn = MvnPairs {
///     dims: 2,
///     mu1: &[0.0_f64, 0.0],
///     cov1: Covariance::Cov(&[1.0, 0.0, 0.0, 1.0]),
///     mu2: &[1.0, 0.0],
///     cov2: Covariance::ScaleTril(&[2.0, 0.0, 0.0, 1.0]),
/// };
/// let ev = Evaluator::new(Backend::Cpu)?;
/// let request = Request::measures(Metrics::ALL);
/// let mut out = vec![0.0; request.values_per_pair()];
/// ev.evaluate(Batch::Mvn(mvn), &request, &mut out)?;
/// // KL = ½(¼ + 1 − 2 + ln 4 + ¼)
/// assert!((out[1] - 0.5 * (0.5 - 1.0 + 4f64.ln())).abs() < 1e-15);
/// # Ok::<(), gaussdiv::Error>(())
/// ```
#[derive(Clone, Copy, Debug)]
pub struct MvnPairs<'a, T: Float> {
    /// The dimension d (≥ 1).
    pub dims: usize,
    /// Means of p1, `N·d` values.
    pub mu1: &'a [T],
    /// Covariances of p1, `N·d·d` values.
    pub cov1: Covariance<'a, T>,
    /// Means of p2, `N·d` values.
    pub mu2: &'a [T],
    /// Covariances of p2, `N·d·d` values.
    pub cov2: Covariance<'a, T>,
}

impl<'a, T: Float> MvnPairs<'a, T> {
    /// The number of pairs N (`mu1.len() / dims`; 0 for `dims` = 0).
    pub fn len(&self) -> usize {
        self.mu1.len().checked_div(self.dims).unwrap_or(0)
    }

    /// Whether the batch holds no pair.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The same batch viewed in precision `U` (`None` unless `U` is `T`).
    pub(crate) fn cast<U: Float>(self) -> Option<MvnPairs<'a, U>> {
        Some(MvnPairs {
            dims: self.dims,
            mu1: bytemuck::try_cast_slice(self.mu1).ok()?,
            cov1: self.cov1.cast()?,
            mu2: bytemuck::try_cast_slice(self.mu2).ok()?,
            cov2: self.cov2.cast()?,
        })
    }

    /// The number of pairs after checking every length against `dims` and
    /// the output length against `k` values per pair.
    fn checked_len(&self, k: usize, out_len: usize) -> Result<usize> {
        let d = self.dims;
        if d == 0 {
            return Err(Error::Unsupported(
                "a full-covariance batch needs dims ≥ 1".into(),
            ));
        }
        let n = self.mu1.len() / d;
        let dd = d
            .checked_mul(d)
            .ok_or_else(|| Error::TooLarge(format!("dims {d}")))?;
        let mismatch = |what: &'static str, expected: usize, got: usize| Error::LengthMismatch {
            what,
            expected: expected as u64,
            got: got as u64,
        };
        let need = |per: usize| {
            n.checked_mul(per)
                .ok_or_else(|| Error::TooLarge(format!("{n} pairs × {per} values")))
        };
        if self.mu1.len() != n * d {
            return Err(mismatch("mu1 (a multiple of dims)", n * d, self.mu1.len()));
        }
        if self.mu2.len() != n * d {
            return Err(mismatch("mu2 (N·dims values)", n * d, self.mu2.len()));
        }
        if self.cov1.values().len() != need(dd)? {
            return Err(mismatch(
                self.cov1.name(1),
                n * dd,
                self.cov1.values().len(),
            ));
        }
        if self.cov2.values().len() != need(dd)? {
            return Err(mismatch(
                self.cov2.name(2),
                n * dd,
                self.cov2.values().len(),
            ));
        }
        if out_len != need(k)? {
            return Err(mismatch("full-covariance output", n * k, out_len));
        }
        Ok(n)
    }
}

/// A set of `dims`-dimensional Gaussians N(μ_i, Σ_i) with full covariance:
/// one side of [`Batch::MvnPairwise`](crate::Batch::MvnPairwise). Means are
/// `N·d` values, matrices `N·d·d` as [`Covariance`] says.
#[derive(Clone, Copy, Debug)]
pub struct MvnSet<'a, T: Float> {
    /// The dimension d (≥ 1; both sets of a pairwise batch share it).
    pub dims: usize,
    /// Means, `N·d` values.
    pub mu: &'a [T],
    /// Matrices, `N·d·d` values.
    pub cov: Covariance<'a, T>,
}

impl<'a, T: Float> MvnSet<'a, T> {
    /// The number of Gaussians N (`mu.len() / dims`; 0 for `dims` = 0).
    pub fn len(&self) -> usize {
        self.mu.len().checked_div(self.dims).unwrap_or(0)
    }

    /// Whether the set holds no Gaussian.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub(crate) fn cast<U: Float>(self) -> Option<MvnSet<'a, U>> {
        Some(MvnSet {
            dims: self.dims,
            mu: bytemuck::try_cast_slice(self.mu).ok()?,
            cov: self.cov.cast()?,
        })
    }

    /// The set's length after checking its arrays against `dims`; `side`
    /// (1 for p, 2 for q) names them as the pair layout does.
    fn checked_len(&self, side: u8) -> Result<usize> {
        let d = self.dims;
        let n = self.len();
        let mismatch = |what: &'static str, expected: usize, got: usize| Error::LengthMismatch {
            what,
            expected: expected as u64,
            got: got as u64,
        };
        if self.mu.len() != n * d {
            let what = if side == 1 {
                "mu1 (p's means, a multiple of dims)"
            } else {
                "mu2 (q's means, a multiple of dims)"
            };
            return Err(mismatch(what, n * d, self.mu.len()));
        }
        let dd = d
            .checked_mul(d)
            .and_then(|dd| dd.checked_mul(n))
            .ok_or_else(|| Error::TooLarge(format!("{n} matrices of dims {d}")))?;
        if self.cov.values().len() != dd {
            return Err(mismatch(self.cov.name(side), dd, self.cov.values().len()));
        }
        Ok(n)
    }
}

/// What the CPU evaluates: pairs, or every p_i against every q_j.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Cells<'a, T: Float> {
    Pairs(MvnPairs<'a, T>),
    Pairwise(MvnSet<'a, T>, MvnSet<'a, T>),
}

/// Side `i` of a batch (empty slices, read as NaN, if out of range).
fn side<'a, T: Float>(kind: Kind, mu: &'a [T], m: &'a [T], i: usize, d: usize) -> Side<'a, T> {
    let dd = d * d;
    Side {
        kind,
        mu: mu.get(i * d..(i + 1) * d).unwrap_or_default(),
        m: m.get(i * dd..(i + 1) * dd).unwrap_or_default(),
    }
}

/// Above this D_B an f32 coefficient e^(−D_B) is recomputed in f64: its
/// relative error is D_B times that of D_B, and the f32 D_B (a few ulps,
/// from matrix products and solves) would exceed 1e-5 near D_B ≈ 25–80.
const BC_REFINE_DB: i32 = 4;

/// The f64 evaluation of single pairs (the inputs widened exactly) for the
/// f32 coefficients that need it; created on first use in a task.
#[derive(Default)]
struct Refine {
    work: Option<Work<f64>>,
    mu1: Vec<f64>,
    m1: Vec<f64>,
    mu2: Vec<f64>,
    m2: Vec<f64>,
}

impl Refine {
    /// e^(−D_B) of the pair in f64 (NaN if the f64 evaluation fails).
    fn coefficient<T: MvnReal>(
        &mut self,
        k1: Kind,
        k2: Kind,
        s1: &Side<'_, T>,
        s2: &Side<'_, T>,
        d: usize,
    ) -> f64 {
        let widen = |src: &[T], dst: &mut Vec<f64>| {
            dst.clear();
            dst.extend(src.iter().map(|&x| x.to_f64()));
        };
        widen(s1.mu, &mut self.mu1);
        widen(s1.m, &mut self.m1);
        widen(s2.mu, &mut self.mu2);
        widen(s2.m, &mut self.m2);
        let work = self.work.get_or_insert_with(|| Work::new(d));
        let need = Need {
            kl: false,
            rkl: false,
            db: true,
            w2: false,
        };
        let a = Side {
            kind: k1,
            mu: &self.mu1,
            m: &self.m1,
        };
        let b = Side {
            kind: k2,
            mu: &self.mu2,
            m: &self.m2,
        };
        match formulas::evaluate(work, a, b, need) {
            Ok(v) => linalg::at(&v, idx::BHATTACHARYYA_COEFFICIENT),
            Err(_) => f64::NAN,
        }
    }
}

/// Pairs per parallel task.
const BLOCK: usize = 64;

/// The first invalid cell of a task: cell, index of the Gaussian at fault
/// (the pair's index for pairs; p's or q's index pairwise), array, reason.
type FirstBad = Option<(usize, usize, &'static str, String)>;

/// Evaluates `cells` on the CPU into `out` (`k = o.metrics.len()` values per
/// pair or cell, canonical order): invalid pairs are NaN rows, and under
/// [`OnInvalid::Error`] the first one is reported as [`Error::InvalidMatrix`].
pub(crate) fn evaluate<T: Float + MvnReal>(
    cells: Cells<'_, T>,
    o: EvalOptions,
    out: &mut [T],
) -> Result<()> {
    let k = o.metrics.len();
    // Cells to evaluate, and for pairwise the number of columns M: cell c
    // reads p's Gaussian c / M and q's c mod M (pairs: Gaussian c of each side).
    let (p, q, cells, cols) = match cells {
        Cells::Pairs(b) => {
            let n = b.checked_len(k, out.len())?;
            let p = MvnSet {
                dims: b.dims,
                mu: b.mu1,
                cov: b.cov1,
            };
            let q = MvnSet {
                dims: b.dims,
                mu: b.mu2,
                cov: b.cov2,
            };
            (p, q, n, None)
        }
        Cells::Pairwise(p, q) => {
            if p.dims == 0 || p.dims != q.dims {
                return Err(Error::Unsupported(format!(
                    "a full-covariance pairwise batch needs one dims ≥ 1 (p: {}, q: {})",
                    p.dims, q.dims
                )));
            }
            let (np, nq) = (p.checked_len(1)?, q.checked_len(2)?);
            let cells = np
                .checked_mul(nq)
                .ok_or_else(|| Error::TooLarge(format!("{np} × {nq} cells")))?;
            let values = cells
                .checked_mul(k)
                .ok_or_else(|| Error::TooLarge(format!("{np} × {nq} cells")))?;
            if out.len() != values {
                return Err(Error::LengthMismatch {
                    what: "full-covariance pairwise output",
                    expected: values as u64,
                    got: out.len() as u64,
                });
            }
            (p, q, cells, NonZeroUsize::new(nq))
        }
    };
    if cells == 0 {
        return Ok(());
    }
    let at = |c: usize| match cols {
        Some(m) => (c / m, c % m),
        None => (c, c),
    };
    let d = p.dims;
    let need = Need::of(o.metrics);
    let sel: Vec<usize> = o.metrics.iter().map(Metric::index).collect();
    let (k1, k2) = (p.cov.kind(), q.cov.kind());
    let (m1, m2) = (p.cov.values(), q.cov.values());
    let refine_bc =
        T::PRECISION == Precision::F32 && o.metrics.contains(Metric::BhattacharyyaCoefficient);
    let first_bad = out
        .par_chunks_mut(BLOCK * k)
        .enumerate()
        .map(|(c, dst)| {
            let mut work = Work::<T>::new(d);
            let mut refine = Refine::default();
            let mut first: FirstBad = None;
            for (r, row) in dst.chunks_mut(k).enumerate() {
                let (i1, i2) = at(c * BLOCK + r);
                let s1 = side(k1, p.mu, m1, i1, d);
                let s2 = side(k2, q.mu, m2, i2, d);
                match formulas::evaluate(&mut work, s1, s2, need) {
                    Ok(mut v) => {
                        if refine_bc
                            && linalg::at(&v, idx::BHATTACHARYYA) > T::from_i32(BC_REFINE_DB)
                        {
                            let bc = refine.coefficient(k1, k2, &s1, &s2, d);
                            linalg::put(&mut v, idx::BHATTACHARYYA_COEFFICIENT, T::from_f64(bc));
                        }
                        for (x, &j) in row.iter_mut().zip(&sel) {
                            *x = linalg::at(&v, j);
                        }
                    }
                    Err(Bad { side, mean, reason }) => {
                        row.fill(<T as Real>::NAN);
                        if first.is_none() {
                            let array = match (mean, side) {
                                (true, 1) => "mu1",
                                (true, _) => "mu2",
                                (false, 1) => p.cov.name(1),
                                (false, _) => q.cov.name(2),
                            };
                            // The Gaussian at fault: its index in its own set.
                            let index = if side == 1 { i1 } else { i2 };
                            first = Some((c * BLOCK + r, index, array, reason));
                        }
                    }
                }
            }
            first
        })
        .reduce(
            || None,
            |a, b| match (a, b) {
                (Some(a), Some(b)) => Some(if a.0 <= b.0 { a } else { b }),
                (a, b) => a.or(b),
            },
        );
    match (first_bad, o.on_invalid) {
        (Some((_, index, array, reason)), OnInvalid::Error) => Err(Error::InvalidMatrix {
            index,
            array,
            reason,
        }),
        _ => Ok(()),
    }
}
