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

use crate::cpu::{check_len, load_columns, Pairs, BLOCK};
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

/// One task: blocks of [`BLOCK`] pairs transposed into columns, the
/// branch-free [`grad`] over the columns (vectorised), the selected values
/// interleaved back into rows — the structure of the measures' loops in
/// [`crate::cpu`].
// Indices: i < BLOCK (the columns' length; `take(BLOCK)`, `0..BLOCK`), j < 8
// (the row of `grad`), rows from `chunks_exact(k)` with k = 4 or 8.
#[allow(clippy::indexing_slicing)]
#[inline(always)]
fn task_body<E: Pairs, const P: u32>(pairs: &[E], ce: bool, kl: bool, out: &mut [E::T]) {
    let k = values_per_pair_flags(ce, kl);
    if k == 0 {
        return;
    }
    let first = if ce { 0 } else { PER_MEASURE };
    let zero = [<E::T as Real>::ZERO; BLOCK];
    let mut input = [zero; 4];
    let mut g = [zero; GRADIENTS];
    for (chunk, dst) in pairs.chunks(BLOCK).zip(out.chunks_mut(BLOCK * k)) {
        load_columns(chunk, &mut input);
        // The whole block (stale lanes past the chunk are computed and dropped).
        let [mu1, a1, mu2, a2] = &input;
        for i in 0..BLOCK {
            let r = grad::<E::T, P>(mu1[i], a1[i], mu2[i], a2[i]);
            for (j, v) in r.into_iter().enumerate() {
                g[j][i] = v;
            }
        }
        for (i, row) in dst.chunks_exact_mut(k).enumerate() {
            for (j, d) in row.iter_mut().enumerate() {
                *d = g[first + j][i];
            }
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod simd {
    use super::{task_body, Pairs};

    /// # Safety
    /// The CPU must support AVX-512 F/VL/DQ/BW/CD (checked by the caller).
    #[target_feature(enable = "avx512f,avx512vl,avx512dq,avx512bw,avx512cd,avx2,fma")]
    pub unsafe fn avx512<E: Pairs, const P: u32>(
        pairs: &[E],
        ce: bool,
        kl: bool,
        out: &mut [E::T],
    ) {
        task_body::<E, P>(pairs, ce, kl, out)
    }

    /// # Safety
    /// The CPU must support AVX2 and FMA (checked by the caller).
    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn avx2<E: Pairs, const P: u32>(pairs: &[E], ce: bool, kl: bool, out: &mut [E::T]) {
        task_body::<E, P>(pairs, ce, kl, out)
    }
}

/// One loop, compiled per parameterisation and instruction set (the best
/// the running CPU supports, as for the measures).
fn task_p<E: Pairs, const P: u32>(pairs: &[E], ce: bool, kl: bool, out: &mut [E::T]) {
    #[cfg(target_arch = "x86_64")]
    {
        match crate::cpu::simd_level() {
            // SAFETY: the features these functions are compiled for were detected.
            "avx512" => return unsafe { simd::avx512::<E, P>(pairs, ce, kl, out) },
            "avx2" => return unsafe { simd::avx2::<E, P>(pairs, ce, kl, out) },
            _ => {}
        }
    }
    task_body::<E, P>(pairs, ce, kl, out)
}

fn values_per_pair_flags(ce: bool, kl: bool) -> usize {
    PER_MEASURE * (usize::from(ce) + usize::from(kl))
}

fn task<E: Pairs>(pairs: &[E], p: Param, ce: bool, kl: bool, out: &mut [E::T]) {
    match p {
        Param::Std => task_p::<E, { param::STD }>(pairs, ce, kl, out),
        Param::Var => task_p::<E, { param::VAR }>(pairs, ce, kl, out),
        Param::LogStd => task_p::<E, { param::LOGSTD }>(pairs, ce, kl, out),
        Param::LogVar => task_p::<E, { param::LOGVAR }>(pairs, ce, kl, out),
        Param::Precision => task_p::<E, { param::PRECISION }>(pairs, ce, kl, out),
    }
}

/// Pairs per parallel task.
const TASK: usize = 1 << 13;

fn run<E: Pairs>(pairs: &[E], options: EvalOptions, out: &mut [E::T]) -> Result<()> {
    check_metrics(options.metrics)?;
    let k = values_per_pair(options.metrics);
    // (A slice of 16-byte pairs is far below usize::MAX / 8: no overflow.)
    check_len("gradient output", pairs.len().saturating_mul(k), out.len())?;
    let ce = options.metrics.contains(Metric::CrossEntropy);
    let kl = options.metrics.contains(Metric::Kl);
    pairs
        .par_chunks(TASK)
        .zip(out.par_chunks_mut(TASK * k))
        .for_each(|(p, o)| task(p, options.param, ce, kl, o));
    Ok(())
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
    run(pairs, options, out)
}

/// [`cpu_gradients_with`] in f64.
pub fn cpu_gradients_f64_with(
    pairs: &[GaussianPair64],
    options: EvalOptions,
    out: &mut [f64],
) -> Result<()> {
    run(pairs, options, out)
}
