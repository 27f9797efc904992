//! Layouts beyond an array of pairs: pairwise N × M (every p_i against every
//! q_j, like `cdist`) and broadcast (many p against one q — the VAE prior
//! N(0, 1) case — or one p against many q).
//!
//! Both run on any [`Evaluator`] backend. On the GPU the cells are computed
//! on the device from the two arrays of Gaussians themselves
//! ([`crate::GpuEvaluator::pairwise_with`], `shaders/pairwise.wgsl`): only
//! the results cross the bus. On the CPU (and on the GPU when p or q exceeds
//! one storage binding) the pairs of a block of rows are formed in a bounded
//! host buffer and evaluated by the per-pair path. Either way the same
//! formulas run, so results equal the per-pair path bit for bit on the same
//! backend.

use crate::error::{Error, Result};
use crate::evaluator::{is_gpu_failure, Backend, Evaluator};
use crate::pair::{EvalOptions, Gaussian, GaussianPair};

/// Pairs formed per block (bounded host memory whatever N × M).
const BLOCK_PAIRS: usize = 1 << 20;

/// `options.metrics` of every (p_i, q_j) into `out`, row-major: `out[(i·M + j)·k + m]`
/// with `k = options.metrics.len()`. The `sigma` fields hold the parameter of
/// `options.param`. Broadcast is the case `q.len() == 1` (or `p.len() == 1`).
pub fn pairwise_with(
    evaluator: &Evaluator,
    p: &[Gaussian],
    q: &[Gaussian],
    options: EvalOptions,
    out: &mut [f32],
) -> Result<()> {
    let k = options.metrics.len();
    let (n, m) = (p.len(), q.len());
    let cells = n.checked_mul(m).ok_or_else(|| {
        Error::TooLarge(format!(
            "{n} × {m} pairs do not fit this platform's address space"
        ))
    })?;
    let expected = cells
        .checked_mul(k)
        .ok_or_else(|| Error::TooLarge(format!("{cells} × {k} values")))?;
    if out.len() != expected {
        return Err(Error::LengthMismatch {
            what: "pairwise output",
            expected: expected as u64,
            got: out.len() as u64,
        });
    }
    if cells == 0 {
        return Ok(());
    }
    if let Some(g) = evaluator.gpu_for(cells) {
        let fits = |len: usize| (len as u64).saturating_mul(8) <= g.max_binding_bytes();
        if fits(n) && fits(m) {
            match g.pairwise_with(p, q, options, out) {
                // Under Auto a failing GPU is recovered by the per-pair path below.
                Err(e) if evaluator.backend() == Backend::Auto && is_gpu_failure(&e) => {}
                r => return r,
            }
        }
    }
    // Whole rows per block when they fit; a row is split when M alone is larger.
    let rows_per_block = (BLOCK_PAIRS / m).max(1);
    let mut pairs = Vec::with_capacity(cells.min(BLOCK_PAIRS.max(m)));
    let row_values = m * k;
    for (b, (block, dst)) in p
        .chunks(rows_per_block)
        .zip(out.chunks_mut(rows_per_block * row_values))
        .enumerate()
    {
        pairs.clear();
        for pi in block {
            pairs.extend(q.iter().map(|qj| GaussianPair::from_gaussians(*pi, *qj)));
        }
        let base = b * rows_per_block * m;
        evaluator
            .evaluate_with(&pairs, options, dst)
            .map_err(|e| absolute_index(e, base))?;
    }
    Ok(())
}

/// Many p against one q: `out[i·k + m]` (the VAE prior case, q = N(0, 1)).
pub fn broadcast_q_with(
    evaluator: &Evaluator,
    p: &[Gaussian],
    q: Gaussian,
    options: EvalOptions,
    out: &mut [f32],
) -> Result<()> {
    pairwise_with(evaluator, p, &[q], options, out)
}

/// One p against many q: `out[j·k + m]`.
pub fn broadcast_p_with(
    evaluator: &Evaluator,
    p: Gaussian,
    q: &[Gaussian],
    options: EvalOptions,
    out: &mut [f32],
) -> Result<()> {
    pairwise_with(evaluator, &[p], q, options, out)
}

/// An invalid-input error of a block names the pair's index within the
/// block; make it the cell's index `i·M + j` in the whole matrix.
fn absolute_index(e: Error, base: usize) -> Error {
    match e {
        Error::InvalidInput {
            index,
            field,
            value,
            reason,
        } => Error::InvalidInput {
            index: base + index,
            field,
            value,
            reason,
        },
        other => other,
    }
}
