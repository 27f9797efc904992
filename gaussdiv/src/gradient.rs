//! Gradients of KL(p1 ‖ p2) and of the cross-entropy H(p1, p2) with respect
//! to the inputs `(μ1, a1, μ2, a2)`, in any [`Param`]eterisation: the
//! analytic derivatives of the closed forms (see `math::gradients`),
//! on the CPU (f32, f64) and on the GPU (f32, `shaders/gradients.wgsl`).
//!
//! Output: 4 values per selected measure and pair, `[∂/∂μ1, ∂/∂a1, ∂/∂μ2,
//! ∂/∂a2]`, the measures in canonical order (cross-entropy, then KL) — the
//! memory layout of [`Gradients`] when both are selected.
//!
//! ```
//! use gaussdiv::{Backend, Batch, Evaluator, GaussianPair, Gradients, Metrics, Request};
//! // KL(N(0, 1) ‖ N(1, 2²)): ∂/∂μ1 = (μ1 − μ2)/σ2² = −0.25.
//! let mut g = [Gradients::default()];
//! let pairs = [GaussianPair::<f32>::new(0.0, 1.0, 1.0, 2.0)];
//! let request = Request::gradients(Metrics::CE_KL);
//! Evaluator::new(Backend::Cpu)?.evaluate(Batch::Pairs(&pairs), &request, bytemuck::cast_slice_mut(&mut g))?;
//! assert_eq!(g[0].kl[0], -0.25);
//! // ∂KL/∂σ1 = σ1/σ2² − 1/σ1 = −0.75.
//! assert!((g[0].kl[1] + 0.75).abs() < 1e-6);
//! # Ok::<(), gaussdiv::Error>(())
//! ```

use crate::cpu::{check_len, Cols, Source, BLOCK};
use crate::error::{Error, Result};
use crate::math::{gradients as grad, param, Real, GRADIENTS};
use crate::pair::{EvalOptions, GaussianPair, GaussianPair64, Metric, Metrics, Param};
use bytemuck::{Pod, Zeroable};
use core::mem::{offset_of, size_of};
use rayon::prelude::*;

/// Values per pair and measure: ∂/∂μ1, ∂/∂a1, ∂/∂μ2, ∂/∂a2.
pub const PER_MEASURE: usize = 4;

/// The measures whose gradients are available.
pub const GRADIENT_METRICS: Metrics = Metrics::CE_KL;

/// The gradients of one pair in f32 (both measures; 32 bytes, the GPU output
/// layout when both are selected). Each array is `[∂/∂μ1, ∂/∂a1, ∂/∂μ2, ∂/∂a2]`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Pod, Zeroable)]
pub struct Gradients {
    /// Gradient of the cross-entropy H(p1, p2).
    pub cross_entropy: [f32; 4],
    /// Gradient of KL(p1 ‖ p2).
    pub kl: [f32; 4],
}

/// [`Gradients`] in f64.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Pod, Zeroable)]
pub struct Gradients64 {
    /// Gradient of the cross-entropy H(p1, p2).
    pub cross_entropy: [f64; 4],
    /// Gradient of KL(p1 ‖ p2).
    pub kl: [f64; 4],
}

// KEEP IN SYNC with shaders/gradients.wgsl (write_gradients: 4 values per
// selected measure, cross-entropy first) and math::gradients' output order.
const _: () = {
    assert!(size_of::<Gradients>() == 4 * GRADIENTS);
    assert!(offset_of!(Gradients, cross_entropy) == 0);
    assert!(offset_of!(Gradients, kl) == 16);
    assert!(size_of::<Gradients64>() == 8 * GRADIENTS);
    assert!(offset_of!(Gradients64, kl) == 32);
    assert!(2 * PER_MEASURE == GRADIENTS);
};

/// Ok if `metrics` asks only for measures with gradients.
pub fn check_metrics(metrics: Metrics) -> Result<()> {
    if GRADIENT_METRICS.contains_all(metrics) {
        Ok(())
    } else {
        let names: Vec<&str> = metrics
            .iter()
            .filter(|m| !GRADIENT_METRICS.contains(*m))
            .map(Metric::name)
            .collect();
        Err(Error::Unsupported(format!(
            "gradients are available for cross_entropy and kl only (asked for: {})",
            names.join(", ")
        )))
    }
}

/// Values per pair for `metrics` (4 per measure).
pub fn values_per_pair(metrics: Metrics) -> usize {
    PER_MEASURE * metrics.len()
}

/// The gradients of one pair in the parameterisation `param`, in the
/// precision of `T` (`[H: ∂μ1, ∂a1, ∂μ2, ∂a2, KL: ∂μ1, ∂a1, ∂μ2, ∂a2]`).
#[inline]
pub fn gradients_one<T: Real>(mu1: T, a1: T, mu2: T, a2: T, p: Param) -> [T; GRADIENTS] {
    match p {
        Param::Std => grad::<T, { param::STD }>(mu1, a1, mu2, a2),
        Param::Var => grad::<T, { param::VAR }>(mu1, a1, mu2, a2),
        Param::LogStd => grad::<T, { param::LOGSTD }>(mu1, a1, mu2, a2),
        Param::LogVar => grad::<T, { param::LOGVAR }>(mu1, a1, mu2, a2),
        Param::Precision => grad::<T, { param::PRECISION }>(mu1, a1, mu2, a2),
    }
}

/// One task: blocks of [`BLOCK`] pairs loaded into columns (transposed from
/// pairs, or copied from columns read in place), the branch-free [`grad`]
/// over the columns (vectorised), the selected values interleaved back into
/// rows — the structure of the measures' loops in [`crate::cpu`]; whether
/// any row's first value is NaN (the mark of an invalid pair).
// Indices: i < BLOCK (the columns' length; `0..BLOCK`, n ≤ BLOCK as a
// destination block holds at most BLOCK rows), j < 8 (the row of `grad`),
// rows from `chunks_exact(k)` with k = 4 or 8.
#[allow(clippy::indexing_slicing)]
#[inline(always)]
fn task_body<I: Source, const P: u32>(input: I, ce: bool, kl: bool, out: &mut [I::T]) -> bool {
    let k = values_per_pair_flags(ce, kl);
    if k == 0 {
        return false;
    }
    let first = if ce { 0 } else { PER_MEASURE };
    let zero = [<I::T as Real>::ZERO; BLOCK];
    let mut cols = [zero; 4];
    let mut g = [zero; GRADIENTS];
    let mut nan = false;
    let len = input.len();
    for (b, dst) in out.chunks_mut(BLOCK * k).enumerate() {
        let start = b * BLOCK;
        let n = (dst.len() / k).min(len.saturating_sub(start)).min(BLOCK);
        input.range(start, start + n).load(&mut cols);
        // The whole block (stale lanes past the chunk are computed and dropped).
        let [mu1, a1, mu2, a2] = &cols;
        for i in 0..BLOCK {
            let r = grad::<I::T, P>(mu1[i], a1[i], mu2[i], a2[i]);
            for (j, v) in r.into_iter().enumerate() {
                g[j][i] = v;
            }
        }
        let unordered = |v: &I::T| v.partial_cmp(&I::T::ZERO).is_none();
        nan |= g[first][..n].iter().fold(false, |a, v| a | unordered(v));
        for (i, row) in dst.chunks_exact_mut(k).enumerate() {
            for (j, d) in row.iter_mut().enumerate() {
                *d = g[first + j][i];
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
    pub unsafe fn avx512<I: Source, const P: u32>(
        input: I,
        ce: bool,
        kl: bool,
        out: &mut [I::T],
    ) -> bool {
        task_body::<I, P>(input, ce, kl, out)
    }

    /// # Safety
    /// The CPU must support AVX2 and FMA (checked by the caller).
    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn avx2<I: Source, const P: u32>(
        input: I,
        ce: bool,
        kl: bool,
        out: &mut [I::T],
    ) -> bool {
        task_body::<I, P>(input, ce, kl, out)
    }
}

/// One loop, compiled per parameterisation and instruction set (the best
/// the running CPU supports, as for the measures).
fn task_p<I: Source, const P: u32>(input: I, ce: bool, kl: bool, out: &mut [I::T]) -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        match crate::cpu::simd_level() {
            // SAFETY: the features these functions are compiled for were detected.
            "avx512" => return unsafe { simd::avx512::<I, P>(input, ce, kl, out) },
            "avx2" => return unsafe { simd::avx2::<I, P>(input, ce, kl, out) },
            _ => {}
        }
    }
    task_body::<I, P>(input, ce, kl, out)
}

fn values_per_pair_flags(ce: bool, kl: bool) -> usize {
    PER_MEASURE * (usize::from(ce) + usize::from(kl))
}

fn task<I: Source>(input: I, p: Param, ce: bool, kl: bool, out: &mut [I::T]) -> bool {
    match p {
        Param::Std => task_p::<I, { param::STD }>(input, ce, kl, out),
        Param::Var => task_p::<I, { param::VAR }>(input, ce, kl, out),
        Param::LogStd => task_p::<I, { param::LOGSTD }>(input, ce, kl, out),
        Param::LogVar => task_p::<I, { param::LOGVAR }>(input, ce, kl, out),
        Param::Precision => task_p::<I, { param::PRECISION }>(input, ce, kl, out),
    }
}

/// Pairs per parallel task.
const TASK: usize = 1 << 13;

/// The gradients of `input` into `out` in parallel tasks; whether any row's
/// first value is NaN (found by the block loops while each block is in L1).
fn run<I: Source>(input: I, options: EvalOptions, out: &mut [I::T]) -> Result<bool> {
    check_metrics(options.metrics)?;
    let k = values_per_pair(options.metrics);
    check_len("gradient output", input.len().saturating_mul(k), out.len())?;
    if k == 0 {
        return Ok(false);
    }
    let ce = options.metrics.contains(Metric::CrossEntropy);
    let kl = options.metrics.contains(Metric::Kl);
    Ok(out
        .par_chunks_mut(TASK * k)
        .enumerate()
        .map(|(t, o)| {
            let start = t * TASK;
            let part = input.range(start, start + o.len() / k);
            task(part, options.param, ce, kl, o)
        })
        .reduce(|| false, |a, b| a || b))
}

/// The gradients (either precision) of four columns μ1, a1, μ2, a2 of one
/// length, read in place (no interleaved copy); whether any row is NaN (an
/// invalid pair).
pub(crate) fn cpu_gradient_columns<T: Real + Send + Sync>(
    columns: [&[T]; 4],
    options: EvalOptions,
    out: &mut [T],
) -> Result<bool> {
    run(Cols(columns), options, out)
}

/// The gradients of `options.metrics` (cross-entropy and/or KL) of every
/// pair given in `options.param`, on the CPU in f32, into `out`
/// (`pairs.len() × 4 × options.metrics.len()` values, row-major). Invalid
/// pairs give NaN rows (validate first to reject them, or use
/// [`crate::Evaluator::gradients_with`]).
pub fn cpu_gradients_with(
    pairs: &[GaussianPair],
    options: EvalOptions,
    out: &mut [f32],
) -> Result<()> {
    run(pairs, options, out).map(|_| ())
}

/// [`cpu_gradients_with`] in f64.
pub fn cpu_gradients_f64_with(
    pairs: &[GaussianPair64],
    options: EvalOptions,
    out: &mut [f64],
) -> Result<()> {
    run(pairs, options, out).map(|_| ())
}
