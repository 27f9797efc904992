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
//! (all cores) or with [`Backend::Gpu`](crate::Backend::Gpu) by the GPU
//! kernel for pairs far apart and this CPU code for the rest
//! (`src/gpu/mvn.rs`, d ≤ 64); [`Backend::Auto`](crate::Backend::Auto) uses
//! the CPU. f32 pairs are evaluated in f32 arithmetic, except the
//! Bhattacharyya coefficient of pairs with a large D_B (`bc_refine_db`:
//! its relative error is D_B times that of D_B), recomputed from the inputs
//! widened to f64, and for d > 32 the whole Bhattacharyya group (D_B, its
//! coefficient, Hellinger) and W₂, evaluated in f64 from the same widened
//! inputs.
//!
//! **Limits.** Any d ≥ 1; the cost grows as d³ per pair (no size limit is
//! imposed: memory is O(d²) per thread). The sides' variance scales may
//! differ by up to about 2²⁵⁰ (f32) or 2²⁰⁴⁰ (f64): beyond, the common
//! rescaling that keeps intermediate products in range overflows and the
//! pair is reported as not positive definite.

mod fast;
mod formulas;
mod linalg;
mod near;
mod pairs;
pub(crate) mod verify;

use crate::error::{Error, Result};
use crate::math::{idx, Real, MEASURES};
use crate::pair::{EvalOptions, Float, Metric};
use crate::validate::OnInvalid;
use crate::verify::Precision;
use formulas::{Bad, Kind, Need, Side, Work};
pub(crate) use linalg::MvnReal;
use rayon::prelude::*;
use std::num::NonZeroUsize;

pub use formulas::SYM_TOL_ULPS;
pub(crate) use pairs::{pack_pair, packed_stride};
pub use pairs::{Covariance, MatrixForm, MvnPairs, MvnSet};

/// What the CPU evaluates: pairs, or every p_i against every q_j.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Cells<'a, T: Float> {
    Pairs(MvnPairs<'a, T>),
    Pairwise(MvnSet<'a, T>, MvnSet<'a, T>),
}

/// Rows `i..i + n` of `v`, `w` values each (`None` if out of range).
fn rows<T>(v: &[T], i: usize, n: usize, w: usize) -> Option<&[T]> {
    v.get(i.checked_mul(w)?..i.checked_add(n)?.checked_mul(w)?)
}

/// Side `i` of a batch (empty slices, read as NaN, if out of range).
fn side<'a, T: Float>(kind: Kind, mu: &'a [T], m: &'a [T], i: usize, d: usize) -> Side<'a, T> {
    Side {
        kind,
        mu: rows(mu, i, 1, d).unwrap_or_default(),
        m: rows(m, i, 1, d.saturating_mul(d)).unwrap_or_default(),
    }
}

/// Above this D_B an f32 coefficient e^(−D_B) of dimension `d` is
/// recomputed in f64: its relative error is D_B times D_B's relative error,
/// and the f32 D_B carries a few ulps per matrix product and solve — more as
/// d grows (measured 4.8e-6 relative at d = 32, D_B ≈ 2.8, which made the
/// coefficient 1.3e-5 off). 4 up to d = 8, then 32/d (1 at d = 32, ½ at
/// d = 64). The GPU kernel flags the same rows (`BC_REFINE_LIMIT`).
pub(crate) fn bc_refine_db(d: usize) -> f64 {
    4.0 * (8.0 / d.max(1) as f64).min(1.0)
}

/// Above this dimension an f32 D_B (and with it the coefficient and the
/// Hellinger distance) is evaluated in f64 from the inputs widened exactly:
/// the f32 formulas' D_B error grows with d and passed 1e-5 relative at
/// d = 64 (1.2e-5, random far-apart pairs), where it is 4.7e-6 at d = 32.
/// The GPU kernel leaves those rows to the CPU mirror.
const F32_DB_IN_F64_ABOVE: usize = 32;

/// Above this dimension an f32 W₂ is evaluated in f64 from the inputs
/// widened exactly: the f32 close-together form (`bures_near`) reached
/// 1.29e-5 relative at d = 64 (a truth row of KL ≈ 5e-6, cond 5.1), above
/// the 1e-5 bound. The GPU kernel leaves those rows to the CPU mirror
/// (`W2_ON_HOST`).
const F32_W2_IN_F64_ABOVE: usize = 32;

/// Whether f32 rows of dimension `d` get W₂ from the f64 evaluation, for
/// the measures `metrics` (the one rule of the CPU path and the GPU host).
pub(crate) fn f32_w2_in_f64(d: usize, metrics: crate::Metrics) -> bool {
    d > F32_W2_IN_F64_ABOVE && metrics.contains(Metric::Wasserstein2)
}

/// Which f32 rows of dimension `d` get Bhattacharyya values from the f64
/// evaluation, for the measures `metrics`: `None`, none; `Some(limit)`,
/// rows with D_B > `limit` (−1 for d > 32: every row, and then D_B, the
/// coefficient and Hellinger; else the coefficient alone, above
/// [`bc_refine_db`]). The one rule of the CPU path and the GPU host (the
/// kernel's `REFINE_BC` and `BC_REFINE_LIMIT`).
pub(crate) fn f32_db_refinement(d: usize, metrics: crate::Metrics) -> Option<f64> {
    if d > F32_DB_IN_F64_ABOVE && Need::of(metrics).db {
        Some(-1.0)
    } else if metrics.contains(Metric::BhattacharyyaCoefficient) {
        Some(bc_refine_db(d))
    } else {
        None
    }
}

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
    /// The measures `need` asks for of the pair in f64, from its inputs
    /// widened exactly (NaN if the f64 evaluation fails).
    fn in_f64<T: MvnReal>(
        &mut self,
        s1: &Side<'_, T>,
        s2: &Side<'_, T>,
        d: usize,
        need: Need,
    ) -> [f64; MEASURES] {
        let widen = |src: &[T], dst: &mut Vec<f64>| {
            dst.clear();
            dst.extend(src.iter().map(|&x| x.to_f64()));
        };
        widen(s1.mu, &mut self.mu1);
        widen(s1.m, &mut self.m1);
        widen(s2.mu, &mut self.mu2);
        widen(s2.m, &mut self.m2);
        let work = self.work.get_or_insert_with(|| Work::new(d));
        let a = Side {
            kind: s1.kind,
            mu: &self.mu1,
            m: &self.m1,
        };
        let b = Side {
            kind: s2.kind,
            mu: &self.mu2,
            m: &self.m2,
        };
        formulas::evaluate(work, a, b, need).unwrap_or([f64::NAN; MEASURES])
    }
}

/// Pairs per parallel task.
const BLOCK: usize = 64;
const _: () = assert!(BLOCK.is_multiple_of(fast::LANES));

/// The first invalid cell of a task: cell, index of the Gaussian at fault
/// (the pair's index for pairs; p's or q's index pairwise), array, reason.
type FirstBad = Option<(usize, usize, &'static str, String)>;

/// A batch of cells after its lengths were checked: cell `c` reads p's
/// Gaussian `c / M` and q's `c mod M` pairwise (`cols` = M), Gaussian `c`
/// of each side for pairs.
#[derive(Clone, Copy)]
pub(crate) struct Plan<'a, T: Float> {
    pub p: MvnSet<'a, T>,
    pub q: MvnSet<'a, T>,
    pub cells: usize,
    cols: Option<NonZeroUsize>,
}

impl<'a, T: Float + MvnReal> Plan<'a, T> {
    /// The checked plan of `cells` for `k` values per cell into `out_len` values.
    pub(crate) fn new(cells: Cells<'a, T>, k: usize, out_len: usize) -> Result<Plan<'a, T>> {
        Ok(match cells {
            Cells::Pairs(b) => {
                let n = b.checked_len(k, out_len)?;
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
                Plan {
                    p,
                    q,
                    cells: n,
                    cols: None,
                }
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
                if out_len != values {
                    return Err(Error::LengthMismatch {
                        what: "full-covariance pairwise output",
                        expected: values as u64,
                        got: out_len as u64,
                    });
                }
                Plan {
                    p,
                    q,
                    cells,
                    cols: NonZeroUsize::new(nq),
                }
            }
        })
    }

    /// The dimension d.
    pub(crate) fn dims(&self) -> usize {
        self.p.dims
    }

    /// The indices of cell `c`'s Gaussians in p and in q.
    pub(crate) fn at(&self, c: usize) -> (usize, usize) {
        match self.cols {
            Some(m) => (c / m, c % m),
            None => (c, c),
        }
    }

    /// The two sides of cell `c`.
    fn sides(&self, c: usize) -> (Side<'a, T>, Side<'a, T>) {
        let (i1, i2) = self.at(c);
        let d = self.dims();
        (
            side(self.p.cov.kind(), self.p.mu, self.p.cov.values(), i1, d),
            side(self.q.cov.kind(), self.q.mu, self.q.cov.values(), i2, d),
        )
    }

    /// The inputs of the `n` pairs from `c0` on — (μ, matrix) of p, then of
    /// q, `n·d` and `n·d²` values — when they are contiguous (pairs, not
    /// pairwise) and in range.
    pub(crate) fn run_of(&self, c0: usize, n: usize) -> Option<[(&'a [T], &'a [T]); 2]> {
        if self.cols.is_some() {
            return None;
        }
        let d = self.dims();
        let dd = d.checked_mul(d)?;
        let side =
            |s: &MvnSet<'a, T>| Some((rows(s.mu, c0, n, d)?, rows(s.cov.values(), c0, n, dd)?));
        Some([side(&self.p)?, side(&self.q)?])
    }

    /// The sides' forms as the GPU kernel codes them (0 covariance, 1
    /// `scale_tril`, 2 precision: `shaders/mvn.wgsl`).
    pub(crate) fn kind_codes(&self) -> (u32, u32) {
        let code = |k: Kind| match k {
            Kind::Cov => 0,
            Kind::Tril => 1,
            Kind::Prec => 2,
        };
        (code(self.p.cov.kind()), code(self.q.cov.kind()))
    }

    /// Whether cell `c`'s inputs pass the checks of [`Covariance`] (finite,
    /// symmetric, triangular; positive definiteness is the factorisation's).
    pub(crate) fn inputs_valid(&self, c: usize) -> bool {
        let (s1, s2) = self.sides(c);
        formulas::check(&s1, 1, self.dims()).is_ok() && formulas::check(&s2, 2, self.dims()).is_ok()
    }
}

/// Evaluates single cells of a plan on the CPU, with scratch space reused
/// from cell to cell (one per task).
struct Rows<T: Float + MvnReal> {
    work: Work<T>,
    refine: Refine,
    need: Need,
    sel: Vec<usize>,
    /// `f32_db_refinement` for f32 cells, `None` for f64.
    db_limit: Option<f64>,
    /// `f32_w2_in_f64` for f32 cells, false for f64.
    w2_in_f64: bool,
    /// Scratch of [`Rows::block`].
    pending: Vec<usize>,
    deferred: Vec<usize>,
}

impl<T: Float + MvnReal> Rows<T> {
    /// For cells of dimension `d` and the measures of `o`.
    fn new(d: usize, o: EvalOptions) -> Rows<T> {
        Rows {
            work: Work::new(d),
            refine: Refine::default(),
            need: Need::of(o.metrics),
            sel: o.metrics.iter().map(Metric::index).collect(),
            db_limit: if T::PRECISION == Precision::F32 {
                f32_db_refinement(d, o.metrics)
            } else {
                None
            },
            w2_in_f64: T::PRECISION == Precision::F32 && f32_w2_in_f64(d, o.metrics),
            pending: Vec::new(),
            deferred: Vec::new(),
        }
    }

    /// Cell `c` into `row` (its `k` values): NaN if invalid, and then the
    /// cell, the Gaussian at fault (its index in its own set), array and reason.
    fn row(&mut self, plan: &Plan<'_, T>, c: usize, row: &mut [T]) -> FirstBad {
        let d = plan.dims();
        let (i1, i2) = plan.at(c);
        let (s1, s2) = plan.sides(c);
        match formulas::evaluate(&mut self.work, s1, s2, self.need) {
            Ok(mut v) => {
                // limit < 0: every row (even one whose f32 D_B is NaN).
                let db = self.db_limit.is_some_and(|limit| {
                    limit < 0.0 || linalg::at(&v, idx::BHATTACHARYYA) > T::from_f64(limit)
                });
                if db || self.w2_in_f64 {
                    let need = Need {
                        kl: false,
                        rkl: false,
                        db,
                        w2: self.w2_in_f64,
                    };
                    let g = self.refine.in_f64(&s1, &s2, d, need);
                    let mut take =
                        |j: usize| linalg::put(&mut v, j, T::from_f64(linalg::at(&g, j)));
                    if db {
                        take(idx::BHATTACHARYYA_COEFFICIENT);
                        if d > F32_DB_IN_F64_ABOVE {
                            take(idx::BHATTACHARYYA);
                            take(idx::HELLINGER);
                        }
                    }
                    if self.w2_in_f64 {
                        take(idx::WASSERSTEIN2);
                    }
                }
                for (x, &j) in row.iter_mut().zip(&self.sel) {
                    *x = linalg::at(&v, j);
                }
                None
            }
            Err(Bad { side, mean, reason }) => {
                row.fill(<T as Real>::NAN);
                let array = match (mean, side) {
                    (true, 1) => "mu1",
                    (true, _) => "mu2",
                    (false, 1) => plan.p.cov.name(1),
                    (false, _) => plan.q.cov.name(2),
                };
                let index = if side == 1 { i1 } else { i2 };
                Some((c, index, array, reason))
            }
        }
    }
}

impl<T: Float + MvnReal> Rows<T> {
    /// The cells `c0 ..` of one block of `plan` into `dst` (at most
    /// [`BLOCK`] rows): the lane path's measures from it where it accepts a
    /// cell (close f32 pairs in a second, packed pass), the rest (and every
    /// cell it does not accept) from [`Rows::row`].
    fn block(
        &mut self,
        plan: &Plan<'_, T>,
        lanes: Option<&mut fast::Lanes>,
        c0: usize,
        dst: &mut [T],
    ) -> FirstBad {
        let k = self.sel.len();
        let lanes = match lanes {
            Some(l) if k > 0 && k <= MEASURES => l,
            _ => return self.scalar_rows(plan, c0, dst),
        };
        // Measures the lane path does not compute: the scalar rows first.
        let rest = self.sel.iter().any(|&j| !fast::computes(j));
        let mut first = if rest {
            self.scalar_rows(plan, c0, dst)
        } else {
            None
        };
        // Rows left to the scalar path, and close pairs for the second pass
        // (reused from block to block).
        let (mut pending, mut deferred) = (
            std::mem::take(&mut self.pending),
            std::mem::take(&mut self.deferred),
        );
        pending.clear();
        deferred.clear();
        for (g, group) in dst.chunks_mut(fast::LANES * k).enumerate() {
            let r0 = g * fast::LANES;
            let mut cells = [0usize; fast::LANES];
            let n = (group.len() / k).min(fast::LANES);
            for (l, c) in cells.iter_mut().enumerate() {
                *c = c0 + r0 + l;
            }
            let cells = cells.get(..n).unwrap_or_default();
            let done = lanes.run(plan, cells, false, &self.sel, group);
            let later = lanes.deferred();
            for (l, (done, later)) in done.into_iter().zip(later).take(cells.len()).enumerate() {
                if later {
                    deferred.push(r0 + l);
                } else if !done {
                    pending.push(r0 + l);
                }
            }
        }
        let mut tmp = [<T as Real>::NAN; fast::LANES * MEASURES];
        for chunk in deferred.chunks(fast::LANES) {
            let mut cells = [0usize; fast::LANES];
            for (c, r) in cells.iter_mut().zip(chunk) {
                *c = c0 + r;
            }
            let cells = cells.get(..chunk.len()).unwrap_or_default();
            let rows = tmp.get_mut(..chunk.len() * k).unwrap_or_default();
            for (t, &r) in rows.chunks_mut(k).zip(chunk) {
                if let Some(src) = dst.get(r * k..(r + 1) * k) {
                    t.copy_from_slice(src);
                }
            }
            let done = lanes.run(plan, cells, true, &self.sel, rows);
            for ((t, &r), done) in rows.chunks(k).zip(chunk).zip(done) {
                match dst.get_mut(r * k..(r + 1) * k) {
                    Some(d) if done => d.copy_from_slice(t),
                    _ => pending.push(r),
                }
            }
        }
        if !rest {
            for &r in &pending {
                if let Some(row) = dst.get_mut(r * k..(r + 1) * k) {
                    first = first_of(first, self.row(plan, c0 + r, row));
                }
            }
        }
        (self.pending, self.deferred) = (pending, deferred);
        first
    }

    /// Every cell of a block by [`Rows::row`].
    fn scalar_rows(&mut self, plan: &Plan<'_, T>, c0: usize, dst: &mut [T]) -> FirstBad {
        let mut first = None;
        for (r, row) in dst.chunks_mut(self.sel.len().max(1)).enumerate() {
            first = first_of(first, self.row(plan, c0 + r, row));
        }
        first
    }
}

/// The first of two invalid cells (by cell index).
fn first_of(a: FirstBad, b: FirstBad) -> FirstBad {
    match (a, b) {
        (Some(a), Some(b)) => Some(if a.0 <= b.0 { a } else { b }),
        (a, b) => a.or(b),
    }
}

/// The error policy applied to the first invalid cell.
fn report(first_bad: FirstBad, on_invalid: OnInvalid) -> Result<()> {
    match (first_bad, on_invalid) {
        (Some((_, index, array, reason)), OnInvalid::Error) => Err(Error::InvalidMatrix {
            index,
            array,
            reason,
        }),
        _ => Ok(()),
    }
}

/// Evaluates `cells` on the CPU into `out` (`k = o.metrics.len()` values per
/// pair or cell, canonical order): invalid pairs are NaN rows, and under
/// [`OnInvalid::Error`] the first one is reported as [`Error::InvalidMatrix`].
pub(crate) fn evaluate<T: Float + MvnReal>(
    cells: Cells<'_, T>,
    o: EvalOptions,
    out: &mut [T],
) -> Result<()> {
    let k = o.metrics.len();
    let plan = Plan::new(cells, k, out.len())?;
    if plan.cells == 0 {
        return Ok(());
    }
    let first_bad = out
        .par_chunks_mut(BLOCK * k)
        .enumerate()
        .map_init(
            || {
                // Scratch space per rayon job, reused across its blocks.
                let rows = Rows::<T>::new(plan.dims(), o);
                let (k1, k2) = (plan.p.cov.kind(), plan.q.cov.kind());
                let lanes = fast::applies(k1, k2)
                    .then(|| fast::Lanes::new::<T>(plan.dims(), rows.need.rkl));
                (rows, lanes)
            },
            |(rows, lanes), (b, dst)| rows.block(&plan, lanes.as_mut(), b * BLOCK, dst),
        )
        .reduce(|| None, first_of);
    report(first_bad, o.on_invalid)
}

/// Evaluates the cells `redo` of `plan` on the CPU into their rows of `out`
/// (`k` values per cell) and applies the error policy to them: the cells
/// the GPU kernel leaves to the CPU (src/gpu/mvn.rs).
pub(crate) fn redo<T: Float + MvnReal>(
    plan: &Plan<'_, T>,
    redo: &[usize],
    o: EvalOptions,
    out: &mut [T],
) -> Result<()> {
    let k = o.metrics.len();
    if k == 0 || redo.is_empty() {
        return Ok(());
    }
    let mut values = vec![<T as Real>::NAN; redo.len() * k];
    let first_bad = values
        .par_chunks_mut(BLOCK * k)
        .zip(redo.par_chunks(BLOCK))
        .map(|(dst, cells)| {
            let mut rows = Rows::<T>::new(plan.dims(), o);
            let mut first: FirstBad = None;
            for (row, &c) in dst.chunks_mut(k).zip(cells) {
                first = first_of(first, rows.row(plan, c, row));
            }
            first
        })
        .reduce(|| None, first_of);
    for (src, &c) in values.chunks(k).zip(redo) {
        if let Some(dst) = out.get_mut(c * k..(c + 1) * k) {
            dst.copy_from_slice(src);
        }
    }
    report(first_bad, o.on_invalid)
}

/// [`crate::Evaluator::complete`]: evaluates on the CPU the rows of `out`
/// holding a NaN (`k` values per row) of a full-covariance batch; the
/// number of rows evaluated.
pub(crate) fn complete<T: Float>(
    batch: crate::Batch<'_, T>,
    request: &crate::Request,
    out: &mut [T],
) -> Result<usize> {
    if let crate::Output::Gradients(_) = request.output {
        return Err(Error::Unsupported(
            "gradients are not available for full-covariance pairs".into(),
        ));
    }
    let o = request.options()?;
    let cast_err = || Error::Gpu("internal: precision cast".into());
    match T::PRECISION {
        crate::verify::Precision::F32 => {
            let b = batch.cast::<f32>().ok_or_else(cast_err)?;
            complete_in(
                b,
                o,
                bytemuck::try_cast_slice_mut(out).map_err(|_| cast_err())?,
            )
        }
        crate::verify::Precision::F64 => {
            let b = batch.cast::<f64>().ok_or_else(cast_err)?;
            complete_in(
                b,
                o,
                bytemuck::try_cast_slice_mut(out).map_err(|_| cast_err())?,
            )
        }
    }
}

fn complete_in<T: Float + MvnReal>(
    batch: crate::Batch<'_, T>,
    o: EvalOptions,
    out: &mut [T],
) -> Result<usize> {
    let cells = match batch {
        crate::Batch::Mvn(m) => Cells::Pairs(m),
        crate::Batch::MvnPairwise { p, q } => Cells::Pairwise(p, q),
        _ => {
            return Err(Error::Unsupported(
                "complete takes full-covariance batches (Batch::Mvn, Batch::MvnPairwise); the \
                 other layouts are evaluated whole on the device"
                    .into(),
            ))
        }
    };
    let k = o.metrics.len();
    let plan = Plan::new(cells, k, out.len())?;
    if k == 0 {
        return Ok(0);
    }
    let left = rows_where(out, k, f64::is_nan);
    redo(&plan, &left, o, out)?;
    Ok(left.len())
}

/// The rows of `out` (`k` values each, k ≥ 1) holding a value for which
/// `hit` is true: the rows a GPU run left to the CPU.
pub(crate) fn rows_where<T: Float>(
    out: &[T],
    k: usize,
    hit: impl Fn(f64) -> bool + Sync,
) -> Vec<usize> {
    out.par_chunks(k)
        .enumerate()
        .filter(|(_, row)| row.iter().any(|&v| hit(v.into())))
        .map(|(c, _)| c)
        .collect()
}
