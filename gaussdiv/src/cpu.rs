//! CPU backend: the formulas of [`crate::math`] over slices, on all cores
//! and all SIMD lanes.
//!
//! The f32 path mirrors the GPU kernel (bit for bit: the same operations in
//! the same order); the f64 path is the reference that [`crate::verify()`]
//! compares against. [`crate::math::divergences`] is branch-free, so the
//! block loops below vectorise; they are compiled three times — for
//! AVX-512, AVX2+FMA and the baseline — and the best one the running CPU
//! supports is chosen at run time.

use crate::error::{Error, Result};
use crate::math::{measures, measures_fast, param, Real, MEASURES};
use crate::pair::{EvalOptions, GaussianPair, GaussianPair64, Metric, Metrics, Param};
use rayon::prelude::*;

/// Pairs per parallel task: large enough to amortise scheduling, small
/// enough to balance on few cores.
const TASK: usize = 1 << 14;

/// Below this many pairs the work stays on the calling thread.
const PARALLEL_MIN: usize = 1 << 15;

/// Pairs per block of the vectorised loop (structure-of-arrays scratch on the stack).
pub(crate) const BLOCK: usize = 64;

/// The measure sets the block loops are compiled for (bit i = `Metric::ALL[i]`):
/// a loop stores only its set, and the compiler drops the work of the rest.
/// Cross-entropy, KL and entropy (every request of the three-measure API).
const SET_DIV: u16 = 0b00_0000_0111;
/// Everything but the Bhattacharyya family (no `exp` of the mean part).
const SET_CHEAP: u16 = 0b10_0011_1111;
/// Every measure.
const SET_ALL: u16 = (1 << MEASURES) - 1;

/// The smallest compiled set that holds `metrics`.
fn set_for(metrics: Metrics) -> u16 {
    let bits = metrics.bits();
    if bits & !SET_DIV == 0 {
        SET_DIV
    } else if bits & !SET_CHEAP == 0 {
        SET_CHEAP
    } else {
        SET_ALL
    }
}

/// The four input columns of a block and its output columns.
struct Block<T> {
    input: [[T; BLOCK]; 4],
    out: [[T; BLOCK]; MEASURES],
    /// Lanes whose sums reach the overflow threshold's range.
    exact: [bool; BLOCK],
}

impl<T: Real> Block<T> {
    fn new() -> Self {
        let z = [T::ZERO; BLOCK];
        Block {
            input: [z; 4],
            out: [z; MEASURES],
            exact: [false; BLOCK],
        }
    }

    /// Evaluate the first `n` lanes in parameterisation `P`, storing the
    /// measures of set `S`: unit-stride, branch-free, vectorisable.
    // Indices: i < n ≤ BLOCK, the arrays' length; j < MEASURES, the row's.
    // Plain indexing keeps this loop vectorised (checked by the benchmarks).
    #[allow(clippy::indexing_slicing)]
    #[inline(always)]
    fn compute<const P: u32, const S: u16>(&mut self, n: usize) {
        let n = n.min(BLOCK);
        let [mu1, a1, mu2, a2] = &self.input;
        for i in 0..n {
            let (r, exact) = measures_fast::<T, P>(mu1[i], a1[i], mu2[i], a2[i]);
            for (j, v) in r.into_iter().enumerate() {
                if S >> j & 1 == 1 {
                    self.out[j][i] = v;
                }
            }
            self.exact[i] = exact;
        }
        // The rare lanes whose KL-type sums or D_B reach 2^SAFE_EXP: the
        // exact variant decides overflow at the threshold (the same values
        // as the GPU kernel, which always forms the low parts).
        if self.exact[..n].contains(&true) {
            for i in 0..n {
                if self.exact[i] {
                    let r = measures::<T, P>(mu1[i], a1[i], mu2[i], a2[i]);
                    for (j, v) in r.into_iter().enumerate() {
                        if S >> j & 1 == 1 {
                            self.out[j][i] = v;
                        }
                    }
                }
            }
        }
    }
}

/// Something that can be evaluated block by block: f32 or f64 pairs (also
/// the element of the gradient loops, [`crate::gradient`]).
pub(crate) trait Pairs: Sync + Copy {
    type T: Real + Send + Sync;
    /// `[μ1, a1, μ2, a2]`.
    fn parts(&self) -> [Self::T; 4];
}

impl Pairs for GaussianPair {
    type T = f32;
    #[inline(always)]
    fn parts(&self) -> [f32; 4] {
        [self.mu1, self.sigma1, self.mu2, self.sigma2]
    }
}

impl Pairs for GaussianPair64 {
    type T = f64;
    #[inline(always)]
    fn parts(&self) -> [f64; 4] {
        [self.mu1, self.sigma1, self.mu2, self.sigma2]
    }
}

/// Up to [`BLOCK`] pairs transposed into four columns μ1, a1, μ2, a2.
// i < BLOCK (take, or the full block's length), the columns' length.
#[allow(clippy::indexing_slicing)]
#[inline(always)]
pub(crate) fn load_columns<P: Pairs>(chunk: &[P], cols: &mut [[P::T; BLOCK]; 4]) {
    // A full block with a constant trip count: vectorised without a
    // scalar remainder (the general loop below kept one in every block).
    if let Ok(full) = <&[P; BLOCK]>::try_from(chunk) {
        for (i, p) in full.iter().enumerate() {
            let [a, b, c, d] = p.parts();
            cols[0][i] = a;
            cols[1][i] = b;
            cols[2][i] = c;
            cols[3][i] = d;
        }
        return;
    }
    for (i, p) in chunk.iter().take(BLOCK).enumerate() {
        let [a, b, c, d] = p.parts();
        cols[0][i] = a;
        cols[1][i] = b;
        cols[2][i] = c;
        cols[3][i] = d;
    }
}

/// The input of the block loops: an array of pairs, or four columns read
/// in place (a structure-of-arrays batch needs no interleaved copy).
pub(crate) trait Source: Sync + Copy {
    type T: Real + Send + Sync;
    /// Number of pairs.
    fn len(self) -> usize;
    /// Pairs `start..end` (empty where out of range).
    fn range(self, start: usize, end: usize) -> Self;
    /// The first `min(len, BLOCK)` pairs into the block's four columns.
    fn load(self, cols: &mut [[Self::T; BLOCK]; 4]);
}

impl<P: Pairs> Source for &[P] {
    type T = P::T;
    fn len(self) -> usize {
        <[P]>::len(self)
    }
    fn range(self, start: usize, end: usize) -> Self {
        self.get(start..end).unwrap_or_default()
    }
    #[inline(always)]
    fn load(self, cols: &mut [[P::T; BLOCK]; 4]) {
        load_columns(self, cols)
    }
}

/// Four columns μ1, a1, μ2, a2 of one length (checked by the caller; the
/// shortest bounds what is read).
#[derive(Clone, Copy)]
pub(crate) struct Cols<'a, T>(pub [&'a [T]; 4]);

impl<T: Real + Send + Sync> Source for Cols<'_, T> {
    type T = T;
    fn len(self) -> usize {
        self.0.iter().map(|c| c.len()).min().unwrap_or(0)
    }
    fn range(self, start: usize, end: usize) -> Self {
        Cols(self.0.map(|c| c.get(start..end).unwrap_or_default()))
    }
    #[inline(always)]
    fn load(self, cols: &mut [[T; BLOCK]; 4]) {
        for (dst, src) in cols.iter_mut().zip(self.0) {
            // A full block as an array copy (no remainder loop).
            match src.get(..BLOCK).map(<&[T; BLOCK]>::try_from) {
                Some(Ok(full)) => *dst = *full,
                _ => {
                    for (d, v) in dst.iter_mut().zip(src) {
                        *d = *v;
                    }
                }
            }
        }
    }
}

/// Evaluate `input` into `out` (`k` values per pair: the measures at
/// canonical positions `sel`, a subset of set `S`); whether any row's first
/// value is NaN (the mark of an invalid pair), checked per block while its
/// column is in L1 (a branch-free reduction, vectorised like the loop).
// Indices: a destination block holds at most BLOCK rows (chunks_mut(BLOCK·k)),
// so i < BLOCK, the columns' length; rows come from chunks_exact of their
// width; j % MEASURES < MEASURES.
#[allow(clippy::indexing_slicing)]
#[inline(always)]
fn task_body<I: Source, const PARAM: u32, const S: u16>(
    input: I,
    sel: &[usize],
    out: &mut [I::T],
) -> bool {
    let k = sel.len().max(1);
    let first = sel.first().map_or(0, |j| j % MEASURES);
    let mut nan = false;
    let mut b = Block::<I::T>::new();
    let len = input.len();
    for (i, dst) in out.chunks_mut(BLOCK * k).enumerate() {
        let start = i * BLOCK;
        let n = (dst.len() / k).min(len.saturating_sub(start));
        input.range(start, start + n).load(&mut b.input);
        if n == BLOCK {
            // Constant trip count: no remainder loop in full blocks.
            b.compute::<PARAM, S>(BLOCK);
        } else {
            b.compute::<PARAM, S>(n);
        }
        let unordered = |v: &I::T| v.partial_cmp(&I::T::ZERO).is_none();
        nan |= b.out[first][..n]
            .iter()
            .fold(false, |a, v| a | unordered(v));
        // Interleave the selected columns into rows; the common widths with
        // the columns resolved once per block (no per-value index).
        let col = |j: usize| &b.out[j % MEASURES];
        match *sel {
            [a] => {
                let ca = col(a);
                for (d, v) in dst.iter_mut().zip(ca) {
                    *d = *v;
                }
            }
            // Zipped (no index), so that the interleaving stores vectorise:
            // with `ca[i]` the bounds checks kept this loop scalar.
            // Full blocks as fixed-size arrays: constant trip count and
            // bounds, so that the interleaving stores vectorise.
            [a, c] => {
                let (ca, cc) = (col(a), col(c));
                if let Ok(d) = <&mut [I::T; 2 * BLOCK]>::try_from(&mut *dst) {
                    for i in 0..BLOCK {
                        d[2 * i] = ca[i];
                        d[2 * i + 1] = cc[i];
                    }
                } else {
                    for ((row, x), y) in dst.chunks_exact_mut(2).zip(ca).zip(cc) {
                        row[0] = *x;
                        row[1] = *y;
                    }
                }
            }
            [a, c, e] => {
                let (ca, cc, ce) = (col(a), col(c), col(e));
                if let Ok(d) = <&mut [I::T; 3 * BLOCK]>::try_from(&mut *dst) {
                    for i in 0..BLOCK {
                        d[3 * i] = ca[i];
                        d[3 * i + 1] = cc[i];
                        d[3 * i + 2] = ce[i];
                    }
                } else {
                    for (((row, x), y), z) in dst.chunks_exact_mut(3).zip(ca).zip(cc).zip(ce) {
                        row[0] = *x;
                        row[1] = *y;
                        row[2] = *z;
                    }
                }
            }
            _ => {
                for (i, row) in dst.chunks_exact_mut(k).enumerate() {
                    for (d, &j) in row.iter_mut().zip(sel) {
                        *d = col(j)[i];
                    }
                }
            }
        }
    }
    nan
}

#[cfg(target_arch = "x86_64")]
mod simd {
    use super::{task_body, Source};

    /// # Safety
    /// The CPU must support AVX-512 F/VL/DQ/BW/CD (checked by the caller).
    #[target_feature(enable = "avx512f,avx512vl,avx512dq,avx512bw,avx512cd,avx2,fma")]
    pub unsafe fn avx512<I: Source, const PARAM: u32, const S: u16>(
        input: I,
        sel: &[usize],
        out: &mut [I::T],
    ) -> bool {
        task_body::<I, PARAM, S>(input, sel, out)
    }

    /// # Safety
    /// The CPU must support AVX2 and FMA (checked by the caller).
    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn avx2<I: Source, const PARAM: u32, const S: u16>(
        input: I,
        sel: &[usize],
        out: &mut [I::T],
    ) -> bool {
        task_body::<I, PARAM, S>(input, sel, out)
    }
}

/// The instruction set the batch loops use on this CPU.
#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
pub fn simd_level() -> &'static str {
    #[cfg(target_arch = "x86_64")]
    {
        if is_x86_feature_detected!("avx512f")
            && is_x86_feature_detected!("avx512vl")
            && is_x86_feature_detected!("avx512dq")
            && is_x86_feature_detected!("avx512bw")
            && is_x86_feature_detected!("avx512cd")
        {
            return "avx512";
        }
        if is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma") {
            return "avx2";
        }
    }
    "baseline"
}

fn task_level<I: Source, const PARAM: u32, const S: u16>(
    input: I,
    sel: &[usize],
    out: &mut [I::T],
) -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        match simd_level() {
            // SAFETY: the features these functions are compiled for were detected above.
            "avx512" => return unsafe { simd::avx512::<I, PARAM, S>(input, sel, out) },
            "avx2" => return unsafe { simd::avx2::<I, PARAM, S>(input, sel, out) },
            _ => {}
        }
    }
    task_body::<I, PARAM, S>(input, sel, out)
}

/// One task: the loop compiled for this parameterisation and measure set;
/// whether any row's first value is NaN.
fn task<I: Source>(input: I, param: Param, set: u16, sel: &[usize], out: &mut [I::T]) -> bool {
    macro_rules! by_set {
        ($p:expr) => {
            match set {
                SET_DIV => task_level::<I, { $p }, SET_DIV>(input, sel, out),
                SET_CHEAP => task_level::<I, { $p }, SET_CHEAP>(input, sel, out),
                _ => task_level::<I, { $p }, SET_ALL>(input, sel, out),
            }
        };
    }
    match param {
        Param::Std => by_set!(param::STD),
        Param::Var => by_set!(param::VAR),
        Param::LogStd => by_set!(param::LOGSTD),
        Param::LogVar => by_set!(param::LOGVAR),
        Param::Precision => by_set!(param::PRECISION),
    }
}

fn run<I: Source>(input: I, options: EvalOptions, out: &mut [I::T]) -> Result<()> {
    run_flagged(input, options, out).map(|_| ())
}

/// [`run`], and whether any row came out NaN (the mark of an invalid pair),
/// found by the block loops while each block's output is in L1.
fn run_flagged<I: Source>(input: I, options: EvalOptions, out: &mut [I::T]) -> Result<bool> {
    let metrics = options.metrics;
    let k = metrics.len();
    let n = input.len();
    check_len("output", n.saturating_mul(k), out.len())?;
    if k == 0 {
        return Ok(false);
    }
    let sel: Vec<usize> = metrics.iter().map(Metric::index).collect();
    let set = set_for(metrics);
    if n < PARALLEL_MIN {
        Ok(task(input, options.param, set, &sel, out))
    } else {
        Ok(out
            .par_chunks_mut(TASK * k)
            .enumerate()
            .map(|(t, o)| {
                let start = t * TASK;
                let part = input.range(start, start + o.len() / k);
                task(part, options.param, set, &sel, o)
            })
            .reduce(|| false, |a, b| a || b))
    }
}

/// [`evaluate_with`] (either precision) on four columns μ1, a1, μ2, a2 of one
/// length, read in place; whether any row is NaN (an invalid pair).
pub(crate) fn evaluate_columns<T: Real + Send + Sync>(
    columns: [&[T]; 4],
    options: EvalOptions,
    out: &mut [T],
) -> Result<bool> {
    run_flagged(Cols(columns), options, out)
}

/// Evaluate the selected metrics of pairs in the selected parameterisation
/// (the second and fourth fields of each pair hold `a1`, `a2`; see [`Param`])
/// in f32 into a flat `out` of `pairs.len() × options.metrics.len()` values,
/// row by row, metrics in canonical order. Invalid pairs give NaN.
pub fn evaluate_with(pairs: &[GaussianPair], options: EvalOptions, out: &mut [f32]) -> Result<()> {
    run(pairs, options, out)
}

/// [`evaluate_with`] in f64: the reference path, any measures and parameterisation.
pub fn evaluate_f64_with(
    pairs: &[GaussianPair64],
    options: EvalOptions,
    out: &mut [f64],
) -> Result<()> {
    run(pairs, options, out)
}

/// Elements per block of rows of the diagonal layout (every measure of a
/// block is evaluated by the batch loops into a scratch buffer, then each
/// row is reduced); rows longer than this are evaluated element by element.
const DIAG_BLOCK: usize = 1 << 13;

/// The diagonal layout on the CPU, either precision: `out` is checked.
fn diagonal<P: Pairs + Send>(
    pairs: &[P],
    dims: usize,
    options: EvalOptions,
    out: &mut [P::T],
    scalar: impl Fn(&P, Param) -> [P::T; MEASURES] + Sync,
) -> Result<()>
where
    P::T: Send,
{
    let metrics = options.metrics;
    let k = metrics.len();
    let rows = crate::diagonal::rows(pairs.len(), dims, k, out.len())?;
    if rows == 0 {
        return Ok(());
    }
    let sel: Vec<usize> = metrics.iter().map(Metric::index).collect();
    // Only the per-dim measures the row needs are computed and summed.
    let mask = crate::diagonal::accumulators(metrics);
    let need_list: Vec<Metric> = Metric::ALL
        .into_iter()
        .filter(|m| mask >> m.index() & 1 == 1)
        .collect();
    let need = Metrics::new(&need_list).unwrap_or(Metrics::ALL);
    let kn = need.len();
    let need_idx: Vec<usize> = need.iter().map(Metric::index).collect();
    let per_dim = EvalOptions::new(need, options.param);
    let rows_per_block = (DIAG_BLOCK / dims).max(1);
    let block = |(p, o): (&[P], &mut [P::T])| {
        let store = |row: [P::T; MEASURES], dst: &mut [P::T]| {
            for (d, j) in dst.iter_mut().zip(&sel) {
                if let Some(v) = row.get(*j) {
                    *d = *v;
                }
            }
        };
        if dims > DIAG_BLOCK {
            for (row, dst) in p.chunks_exact(dims).zip(o.chunks_exact_mut(k)) {
                let r = crate::diagonal::reduce_row(dims, mask, |d| {
                    row.get(d)
                        .map_or([P::T::NAN; MEASURES], |e| scalar(e, options.param))
                });
                store(r, dst);
            }
            return;
        }
        let mut scratch = vec![P::T::ZERO; p.len() * kn];
        if run(p, per_dim, &mut scratch).is_err() {
            o.fill(P::T::NAN);
            return;
        }
        for (row, dst) in scratch.chunks_exact(dims * kn).zip(o.chunks_exact_mut(k)) {
            let r = crate::diagonal::reduce_row(dims, mask, |d| {
                let mut m = [P::T::NAN; MEASURES];
                if let Some(src) = row.get(d * kn..(d + 1) * kn) {
                    for (v, &j) in src.iter().zip(&need_idx) {
                        if let Some(slot) = m.get_mut(j) {
                            *slot = *v;
                        }
                    }
                }
                m
            });
            store(r, dst);
        }
    };
    let chunks = pairs
        .chunks(rows_per_block * dims)
        .zip(out.chunks_mut(rows_per_block * k));
    if pairs.len() < PARALLEL_MIN && rows_per_block >= rows {
        chunks.for_each(block);
    } else {
        pairs
            .par_chunks(rows_per_block * dims)
            .zip(out.par_chunks_mut(rows_per_block * k))
            .for_each(block);
    }
    Ok(())
}

/// The diagonal multivariate layout in f32: `pairs` holds N rows of `dims`
/// pairs (row `r`, dimension `d` at `r·dims + d`), each row the
/// p = N(μ1, diag(σ1²)), q = N(μ2, diag(σ2²)) of one D-dimensional pair in
/// `options.param`; `out` receives `options.metrics` of every row
/// (`N × metrics.len()` values, canonical order).
///
/// The additive measures are the sums over dims of the per-dim values
/// (compensated summation; the same order as the GPU kernel); the
/// Bhattacharyya coefficient is exp(−Σ D_B), Hellinger √(−expm1(−Σ D_B)),
/// Wasserstein-2 √(Σ W_d²). A row with an invalid element is NaN (validate
/// first to reject it; `Batch::Diagonal` does). See
/// `Batch::Diagonal` for the accuracy.
pub fn diagonal_with(
    pairs: &[GaussianPair],
    dims: usize,
    options: EvalOptions,
    out: &mut [f32],
) -> Result<()> {
    diagonal(pairs, dims, options, out, measures32)
}

/// [`diagonal_with`] in f64 (any measures and parameterisation).
pub fn diagonal_f64_with(
    pairs: &[GaussianPair64],
    dims: usize,
    options: EvalOptions,
    out: &mut [f64],
) -> Result<()> {
    diagonal(pairs, dims, options, out, measures64)
}

/// One row of the diagonal layout: every measure, canonical order (the GPU
/// path's fix-up of rows with elements it cannot evaluate exactly).
pub(crate) fn diagonal_row<T: Real + crate::pair::Float>(
    row: &[GaussianPair<T>],
    param: Param,
) -> [T; MEASURES] {
    crate::diagonal::reduce_row(
        row.len(),
        crate::diagonal::accumulators(Metrics::ALL),
        |d| {
            row.get(d).map_or([T::NAN; MEASURES], |e| {
                measures_one(e.mu1, e.sigma1, e.mu2, e.sigma2, param)
            })
        },
    )
}

/// Every measure of one pair in parameterisation `param`, canonical order
/// (see [`Metric::ALL`]): the scalar formula the batch loops vectorise.
#[inline(always)]
pub fn measures_one<T: Real>(mu1: T, a1: T, mu2: T, a2: T, param: Param) -> [T; MEASURES] {
    match param {
        Param::Std => measures::<T, { param::STD }>(mu1, a1, mu2, a2),
        Param::Var => measures::<T, { param::VAR }>(mu1, a1, mu2, a2),
        Param::LogStd => measures::<T, { param::LOGSTD }>(mu1, a1, mu2, a2),
        Param::LogVar => measures::<T, { param::LOGVAR }>(mu1, a1, mu2, a2),
        Param::Precision => measures::<T, { param::PRECISION }>(mu1, a1, mu2, a2),
    }
}

/// `r` with the measures outside set `S` replaced by NaN (so that, inlined,
/// the compiler drops their work).
#[inline(always)]
fn keep<const S: u16>(r: [f64; MEASURES]) -> [f64; MEASURES] {
    let mut o = [f64::NAN; MEASURES];
    for (j, (o, v)) in o.iter_mut().zip(r).enumerate() {
        if S >> j & 1 == 1 {
            *o = v;
        }
    }
    o
}

/// The f64 reference of one pair for verifying `metrics`: those measures and
/// the ones their error scales need (see [`crate::verify::measure_error`]),
/// canonical order, the others NaN. Compiled per measure set, like the
/// batch loops, so that verifying a few measures costs only their work.
pub fn reference_row(p: &GaussianPair64, param: Param, metrics: Metrics) -> [f64; MEASURES] {
    let r = || measures_one(p.mu1, p.sigma1, p.mu2, p.sigma2, param);
    match set_for(metrics) {
        SET_DIV => keep::<SET_DIV>(r()),
        SET_CHEAP => keep::<SET_CHEAP>(r()),
        _ => r(),
    }
}

/// Every measure of one f32 pair in parameterisation `param` (canonical order).
#[inline]
pub fn measures32(p: &GaussianPair, param: Param) -> [f32; MEASURES] {
    measures_one(p.mu1, p.sigma1, p.mu2, p.sigma2, param)
}

/// Every measure of one f64 pair in parameterisation `param` (canonical order).
#[inline]
pub fn measures64(p: &GaussianPair64, param: Param) -> [f64; MEASURES] {
    measures_one(p.mu1, p.sigma1, p.mu2, p.sigma2, param)
}

/// `Ok` if `got == expected`, else [`Error::LengthMismatch`] naming `what`.
pub(crate) fn check_len(what: &'static str, expected: usize, got: usize) -> Result<()> {
    if expected == got {
        Ok(())
    } else {
        Err(Error::LengthMismatch {
            what,
            expected: expected as u64,
            got: got as u64,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::pair::{Divergences, Divergences64};

    fn evaluate(p: &[GaussianPair]) -> Vec<Divergences> {
        let mut out = vec![Divergences::default(); p.len()];
        run(
            p,
            Metrics::CE_KL_ENTROPY.into(),
            bytemuck::cast_slice_mut(&mut out),
        )
        .unwrap();
        out
    }

    fn evaluate_f64(p: &[GaussianPair64]) -> Vec<Divergences64> {
        let mut out = vec![Divergences64::default(); p.len()];
        run(
            p,
            Metrics::CE_KL_ENTROPY.into(),
            bytemuck::cast_slice_mut(&mut out),
        )
        .unwrap();
        out
    }

    fn evaluate_metrics_into(p: &[GaussianPair], m: Metrics, out: &mut [f32]) -> Result<()> {
        run(p, m.into(), out)
    }

    fn eval32(p: &GaussianPair) -> Divergences {
        let m = measures32(p, Param::Std);
        Divergences {
            cross_entropy: m[0],
            kl: m[1],
            entropy: m[2],
        }
    }

    fn eval64(p: &GaussianPair64) -> Divergences64 {
        let m = measures64(p, Param::Std);
        Divergences64 {
            cross_entropy: m[0],
            kl: m[1],
            entropy: m[2],
        }
    }

    /// `measures_fast` equals `measures` bit for bit wherever it does not
    /// flag the lane, and the block loops (fast variant, exact on flagged
    /// lanes) equal the exact scalar formulas on rows near the threshold.
    #[test]
    fn fast_variant_is_exact_where_unflagged() {
        use crate::math::param;
        let mut s = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = move || {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            s
        };
        fn check<const P: u32>(x: [f32; 4], flagged: &mut usize) {
            use crate::math::measures_fast;
            let exact = measures::<f32, P>(x[0], x[1], x[2], x[3]);
            let (fast, flag) = measures_fast::<f32, P>(x[0], x[1], x[2], x[3]);
            *flagged += usize::from(flag);
            if !flag {
                assert_eq!(exact.map(f32::to_bits), fast.map(f32::to_bits), "{P} {x:?}");
            }
        }
        let mut flagged = 0;
        for i in 0..200_000 {
            // Bit patterns, and values near the overflow threshold's range.
            let x: [f32; 4] = if i % 2 == 0 {
                [0; 4].map(|_: u8| f32::from_bits(next() as u32))
            } else {
                let u = |r: u64| (r >> 11) as f64 / (1u64 << 53) as f64;
                let mut v = [0f32; 4];
                for (k, x) in v.iter_mut().enumerate() {
                    let e = u(next()) * 300.0 - 150.0;
                    let m = 2f64.powf(e)
                        * if k % 2 == 0 && next() & 1 == 1 {
                            -1.0
                        } else {
                            1.0
                        };
                    *x = m as f32;
                }
                v
            };
            check::<{ param::STD }>(x, &mut flagged);
            check::<{ param::VAR }>(x, &mut flagged);
            check::<{ param::LOGSTD }>(x, &mut flagged);
            check::<{ param::LOGVAR }>(x, &mut flagged);
            check::<{ param::PRECISION }>(x, &mut flagged);
        }
        // The exact variant really was exercised.
        assert!(flagged > 1000, "{flagged}");
        // The block loop (fast variant plus the exact one on flagged lanes)
        // equals the exact scalar formulas on such rows, every measure.
        let pairs: Vec<GaussianPair> = (0..4096)
            .map(|_| {
                let u = |r: u64| (r >> 11) as f64 / (1u64 << 53) as f64;
                let mut v = [0f32; 4];
                for x in v.iter_mut() {
                    *x = 2f64.powf(u(next()) * 300.0 - 150.0) as f32;
                }
                GaussianPair::new(v[0], v[1], v[2], v[3])
            })
            .collect();
        for p in [
            Param::Std,
            Param::Var,
            Param::LogStd,
            Param::LogVar,
            Param::Precision,
        ] {
            let mut out = vec![0f32; pairs.len() * MEASURES];
            let o = EvalOptions::new(Metrics::ALL, p);
            evaluate_with(&pairs, o, &mut out).unwrap();
            for (row, q) in out.chunks(MEASURES).zip(&pairs) {
                let want = measures_one(q.mu1, q.sigma1, q.mu2, q.sigma2, p);
                assert_eq!(
                    want.map(f32::to_bits).as_slice(),
                    row.iter()
                        .map(|v| v.to_bits())
                        .collect::<Vec<_>>()
                        .as_slice(),
                    "{p} {q:?}"
                );
            }
        }
    }

    /// The vectorised batch path equals the scalar formula bit for bit, for
    /// every metric subset and every block remainder.
    #[test]
    fn batch_equals_scalar_bitwise() {
        let mut s = 0x1234_5678_9abc_def0u64;
        let mut next = move || {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            s
        };
        let pairs: Vec<GaussianPair> = (0..5000)
            .map(|i| {
                let r = next();
                let bits = |x: u64| f32::from_bits(x as u32);
                if i % 3 == 0 {
                    // arbitrary bit patterns, invalid ones included
                    GaussianPair::new(bits(r), bits(r >> 32), bits(next()), bits(next() >> 32))
                } else {
                    let u = |x: u64| (x >> 11) as f64 / (1u64 << 53) as f64;
                    GaussianPair::new(
                        (u(r) * 20.0 - 10.0) as f32,
                        10f64.powf(u(next()) * 8.0 - 4.0) as f32,
                        (u(next()) * 20.0 - 10.0) as f32,
                        10f64.powf(u(next()) * 8.0 - 4.0) as f32,
                    )
                }
            })
            .collect();
        for n in [0, 1, 63, 64, 65, 1000, 5000] {
            let p = &pairs[..n];
            let all = evaluate(p);
            for (d, q) in all.iter().zip(p) {
                let e = eval32(q);
                assert_eq!(
                    [
                        d.cross_entropy.to_bits(),
                        d.kl.to_bits(),
                        d.entropy.to_bits()
                    ],
                    [
                        e.cross_entropy.to_bits(),
                        e.kl.to_bits(),
                        e.entropy.to_bits()
                    ],
                    "{q:?}"
                );
            }
            for m in [&[Metric::Kl][..], &[Metric::Entropy, Metric::CrossEntropy]] {
                let metrics = Metrics::new(m).unwrap_or(Metrics::CE_KL_ENTROPY);
                let mut flat = vec![0f32; n * metrics.len()];
                evaluate_metrics_into(p, metrics, &mut flat).unwrap();
                for (i, q) in p.iter().enumerate() {
                    let e = eval32(q);
                    let full = [e.cross_entropy, e.kl, e.entropy];
                    for (j, m) in metrics.iter().enumerate() {
                        assert_eq!(
                            flat[i * metrics.len() + j].to_bits(),
                            full[m.index()].to_bits()
                        );
                    }
                }
            }
            let wide: Vec<GaussianPair64> = p.iter().map(|q| q.to_f64()).collect();
            for (d, q) in evaluate_f64(&wide).iter().zip(&wide) {
                let e = eval64(q);
                assert_eq!(d.kl.to_bits(), e.kl.to_bits());
                assert_eq!(d.cross_entropy.to_bits(), e.cross_entropy.to_bits());
            }
            // Every parameterisation, and subsets in each compiled measure set
            // (SET_DIV, SET_CHEAP, SET_ALL), f32 and f64: bit for bit the
            // scalar formula.
            let subsets: [&[Metric]; 5] = [
                &[Metric::Kl],
                &[Metric::Wasserstein2, Metric::ReverseKl, Metric::Entropy],
                &[Metric::Jeffreys, Metric::EntropyQ],
                &[Metric::Hellinger, Metric::CrossEntropy],
                &Metric::ALL,
            ];
            for param in Param::ALL {
                for m in subsets {
                    let metrics = Metrics::new(m).unwrap_or(Metrics::ALL);
                    let o = EvalOptions::new(metrics, param);
                    let k = metrics.len();
                    let mut flat = vec![0f32; n * k];
                    evaluate_with(p, o, &mut flat).unwrap();
                    let mut flat64 = vec![0f64; n * k];
                    evaluate_f64_with(&wide, o, &mut flat64).unwrap();
                    for (i, (q, w)) in p.iter().zip(&wide).enumerate() {
                        let (e, e64) = (measures32(q, param), measures64(w, param));
                        for (j, m) in metrics.iter().enumerate() {
                            assert_eq!(
                                flat[i * k + j].to_bits(),
                                e[m.index()].to_bits(),
                                "{param} {m} {q:?}"
                            );
                            assert_eq!(
                                flat64[i * k + j].to_bits(),
                                e64[m.index()].to_bits(),
                                "{param} {m} (f64) {w:?}"
                            );
                        }
                    }
                }
            }
        }
        println!("SIMD level: {}", simd_level());
    }
}
