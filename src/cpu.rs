//! CPU backend: the formulas of [`crate::math`] over slices, on all cores.
//!
//! The f32 path mirrors the GPU kernel; the f64 path is the reference that
//! [`crate::verify()`] compares against.

use crate::error::{Error, Result};
use crate::math::divergences;
use crate::pair::{Divergences, Divergences64, GaussianPair, GaussianPair64, Metrics};
use rayon::prelude::*;

/// Pairs per parallel task: large enough to amortise scheduling, small
/// enough to balance on few cores.
const TASK: usize = 1 << 14;

/// Below this many pairs the work stays on the calling thread.
const PARALLEL_MIN: usize = 1 << 15;

/// Evaluate every pair in f32. Invalid pairs give NaN (validate first to reject them).
pub fn evaluate(pairs: &[GaussianPair]) -> Vec<Divergences> {
    let mut out = vec![Divergences::default(); pairs.len()];
    fill(pairs, &mut out, |p, o| *o = eval32(p));
    out
}

/// Evaluate every pair in f32 into `out` (same length as `pairs`).
pub fn evaluate_into(pairs: &[GaussianPair], out: &mut [Divergences]) -> Result<()> {
    check_len("output", pairs.len(), out.len())?;
    fill(pairs, out, |p, o| *o = eval32(p));
    Ok(())
}

/// Evaluate the selected metrics in f32 into a flat `out` of `pairs.len() × metrics.len()`
/// values, row by row, metrics in canonical order.
pub fn evaluate_metrics_into(
    pairs: &[GaussianPair],
    metrics: Metrics,
    out: &mut [f32],
) -> Result<()> {
    let k = metrics.len();
    check_len("output", pairs.len().saturating_mul(k), out.len())?;
    let sel: Vec<usize> = metrics.iter().map(|m| m.index()).collect();
    let run = |(p, o): (&[GaussianPair], &mut [f32])| {
        for (p, row) in p.iter().zip(o.chunks_exact_mut(k)) {
            let all = divergences(p.mu1, p.sigma1, p.mu2, p.sigma2);
            for (dst, &j) in row.iter_mut().zip(&sel) {
                *dst = all[j];
            }
        }
    };
    if pairs.len() < PARALLEL_MIN {
        run((pairs, out));
    } else {
        pairs
            .par_chunks(TASK)
            .zip(out.par_chunks_mut(TASK * k))
            .for_each(run);
    }
    Ok(())
}

/// Evaluate every pair in f64: the reference path.
pub fn evaluate_f64(pairs: &[GaussianPair64]) -> Vec<Divergences64> {
    let mut out = vec![Divergences64::default(); pairs.len()];
    fill(pairs, &mut out, |p, o| *o = eval64(p));
    out
}

/// Evaluate every pair in f64 into `out` (same length as `pairs`).
pub fn evaluate_f64_into(pairs: &[GaussianPair64], out: &mut [Divergences64]) -> Result<()> {
    check_len("output", pairs.len(), out.len())?;
    fill(pairs, out, |p, o| *o = eval64(p));
    Ok(())
}

/// The f64 reference for f32 pairs (inputs widened exactly).
pub fn reference(pairs: &[GaussianPair]) -> Vec<Divergences64> {
    let mut out = vec![Divergences64::default(); pairs.len()];
    fill(pairs, &mut out, |p, o| *o = eval64(&p.to_f64()));
    out
}

/// The f64 measures of one pair.
#[inline]
pub fn eval64(p: &GaussianPair64) -> Divergences64 {
    let [ce, kl, h] = divergences(p.mu1, p.sigma1, p.mu2, p.sigma2);
    Divergences64 {
        cross_entropy: ce,
        kl,
        entropy: h,
    }
}

/// The f32 measures of one pair.
#[inline]
pub fn eval32(p: &GaussianPair) -> Divergences {
    let [ce, kl, h] = divergences(p.mu1, p.sigma1, p.mu2, p.sigma2);
    Divergences {
        cross_entropy: ce,
        kl,
        entropy: h,
    }
}

fn check_len(what: &'static str, expected: usize, got: usize) -> Result<()> {
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

fn fill<P: Sync, O: Send>(pairs: &[P], out: &mut [O], f: impl Fn(&P, &mut O) + Sync) {
    debug_assert_eq!(pairs.len(), out.len());
    if pairs.len() < PARALLEL_MIN {
        pairs.iter().zip(out.iter_mut()).for_each(|(p, o)| f(p, o));
    } else {
        pairs
            .par_chunks(TASK)
            .zip(out.par_chunks_mut(TASK))
            .for_each(|(p, o)| p.iter().zip(o.iter_mut()).for_each(|(p, o)| f(p, o)));
    }
}
