//! The precisions of the host path: what differs between f32 and f64 pairs
//! (element sizes, kernel, validation, CPU fix-up), so that one generic
//! upload / dispatch / readback loop serves both.

use super::kernel::Layout;
use crate::cpu;
use crate::error::{Error, Result};
use crate::gradient::{gradients_one, PER_MEASURE};
use crate::math::{Real, MEASURES};
use crate::pair::{Float, GaussianPair, GaussianPair64, Metric, Metrics, Param};
use crate::validate;
use bytemuck::{Pod, Zeroable};

/// Bytes per block of [`HostPair::screen_copy`]: inside the L1 cache.
const SCREEN_BLOCK_BYTES: usize = 32 << 10;

/// An input pair of one precision and the values the kernel writes for it.
pub(crate) trait HostPair: bytemuck::Pod + Sync {
    /// One output value (f32 or f64).
    type Value: crate::pair::Float;
    /// Bytes of one pair in the kernel's input binding.
    const PAIR_BYTES: u64;
    /// Bytes of one output value.
    const VALUE_BYTES: u64;
    /// The kernel (and entry point) that evaluates this precision.
    const LAYOUT: Layout;
    /// Output values per pair and selected measure.
    const VALUES_PER_METRIC: usize = 1;
    /// `(any invalid pair, any pair needing a host fix-up)`, branch-free.
    fn screen(pairs: &[Self], param: Param) -> (bool, bool);
    /// [`HostPair::screen`] fused with the upload: `pairs` copied into `dst`
    /// (their byte image, the same length) block by block, each block
    /// screened just after its copy, while it is in the L1 cache — one pass
    /// over the caller's input instead of two. (Copy first: the copy streams
    /// from memory faster than the screen's loads; measured 4 ms less per
    /// 10⁷ pairs on lavapipe than screening first.)
    fn screen_copy(
        pairs: &[Self],
        param: Param,
        mut dst: wgpu::WriteOnly<'_, [u8]>,
    ) -> Result<(bool, bool)>
    where
        Self: Sized,
    {
        let (mut invalid, mut fixup) = (false, false);
        let block = (SCREEN_BLOCK_BYTES / size_of::<Self>()).max(1);
        for chunk in pairs.chunks(block) {
            let bytes: &[u8] = bytemuck::cast_slice(chunk);
            let (mut head, rest) = dst
                .split_at_checked(bytes.len())
                .map_err(|_| Error::Gpu("upload larger than its buffer".into()))?;
            head.copy_from_slice(bytes);
            let (i, f) = Self::screen(chunk, param);
            invalid |= i;
            fixup |= f;
            dst = rest;
        }
        if !dst.is_empty() {
            return Err(Error::Gpu("upload smaller than its buffer".into()));
        }
        Ok((invalid, fixup))
    }
    /// Ok, or the first invalid pair as [`crate::Error::InvalidInput`] (absolute index).
    fn validate_at(pairs: &[Self], offset: usize, param: Param) -> Result<()>;
    /// Whether the kernel may be inexact here (subnormal μ or μ1 − μ2).
    fn needs_host_fixup(&self) -> bool;
    /// The row of `metrics` recomputed on the CPU in the same precision.
    fn fix_row(&self, param: Param, metrics: Metrics, row: &mut [Self::Value]);
}

/// A pair precision whose rows the diagonal kernels reduce.
pub(crate) trait DiagonalPair: HostPair {
    /// The diagonal kernels of this precision: one invocation per row, and
    /// one workgroup per row.
    const DIAGONAL: (Layout, Layout);
    /// Every measure of one row, recomputed on the CPU (canonical order).
    fn diagonal_row(row: &[Self], param: Param) -> [Self::Value; MEASURES];
}

impl DiagonalPair for GaussianPair {
    const DIAGONAL: (Layout, Layout) = (Layout::Diagonal, Layout::DiagonalWide);
    fn diagonal_row(row: &[Self], param: Param) -> [f32; MEASURES] {
        cpu::diagonal_row(row, param)
    }
}

impl DiagonalPair for GaussianPair64 {
    const DIAGONAL: (Layout, Layout) = (Layout::Diagonal64, Layout::DiagonalWide64);
    fn diagonal_row(row: &[Self], param: Param) -> [f64; MEASURES] {
        cpu::diagonal_row(row, param)
    }
}

impl HostPair for GaussianPair {
    type Value = f32;
    const PAIR_BYTES: u64 = super::kernel::PAIR_BYTES;
    const VALUE_BYTES: u64 = 4;
    const LAYOUT: Layout = Layout::Pairs;

    #[inline]
    fn screen(pairs: &[Self], param: Param) -> (bool, bool) {
        validate::screen_param(pairs, param)
    }

    fn validate_at(pairs: &[Self], offset: usize, param: Param) -> Result<()> {
        validate::validate_param_at(pairs, param, offset)
    }

    #[inline]
    fn needs_host_fixup(&self) -> bool {
        validate::needs_host_fixup(self)
    }

    fn fix_row(&self, param: Param, metrics: Metrics, row: &mut [f32]) {
        let all = cpu::measures32(self, param);
        select_into(&all, metrics, row);
    }
}

impl HostPair for GaussianPair64 {
    type Value = f64;
    const PAIR_BYTES: u64 = 32;
    const VALUE_BYTES: u64 = 8;
    const LAYOUT: Layout = Layout::Pairs64;

    #[inline]
    fn screen(pairs: &[Self], param: Param) -> (bool, bool) {
        if param == Param::Std {
            validate::screen_f64(pairs)
        } else {
            // The fast screen knows σ only: other parameterisations take the exact scans.
            (true, true)
        }
    }

    fn validate_at(pairs: &[Self], offset: usize, param: Param) -> Result<()> {
        validate::validate_param_f64_at(pairs, param, offset)
    }

    #[inline]
    fn needs_host_fixup(&self) -> bool {
        validate::needs_host_fixup_f64(self)
    }

    fn fix_row(&self, param: Param, metrics: Metrics, row: &mut [f64]) {
        let all = cpu::measures64(self, param);
        select_into(&all, metrics, row);
    }
}

/// The selected measures of `all` (canonical positions) into `row`.
fn select_into<V: Copy>(all: &[V], metrics: Metrics, row: &mut [V]) {
    for (dst, m) in row.iter_mut().zip(metrics.iter()) {
        if let Some(v) = all.get(m.index()) {
            *dst = *v;
        }
    }
}

/// A pair whose gradients are evaluated (`main_grad` of
/// `shaders/gradients.wgsl`, f32 or f64): the input element of
/// [`GaussianPair`] of that precision, four output values per selected measure.
#[repr(transparent)]
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub(crate) struct GradPair<T: Float>(pub GaussianPair<T>);

// SAFETY: a transparent wrapper of a `Pod` type.
unsafe impl<T: Float> Zeroable for GradPair<T> {}
unsafe impl<T: Float> Pod for GradPair<T> {}

/// The gradient precisions: the pair type's screen and kernel, and how small
/// a log-parameter must be for the host to recompute it (see
/// [`GradPair::needs_host_fixup`](HostPair::needs_host_fixup)).
pub(crate) trait GradPrecision: Float + Real
where
    GaussianPair<Self>: HostPair<Value = Self>,
{
    /// The gradient kernel of this precision.
    const LAYOUT: Layout;
    /// |a| below this (and nonzero) is recomputed on the host: 26 binades
    /// above the smallest normal, 2^−100 in f32 and 2^−996 in f64.
    const TINY: f64;
}

impl GradPrecision for f32 {
    const LAYOUT: Layout = Layout::Grad;
    const TINY: f64 = f64::from_bits((1023 - 100) << 52); // 2^−100
}

impl GradPrecision for f64 {
    const LAYOUT: Layout = Layout::Grad64;
    const TINY: f64 = f64::from_bits((1023 - 996) << 52); // 2^−996
}

/// Whether `a` is nonzero and below `T::TINY` in magnitude (branch-free).
#[inline]
fn tiny<T: GradPrecision>(a: T) -> bool
where
    GaussianPair<T>: HostPair<Value = T>,
{
    let a: f64 = a.into();
    (a != 0.0) & (a.abs() < T::TINY)
}

impl<T: GradPrecision> HostPair for GradPair<T>
where
    GaussianPair<T>: HostPair<Value = T>,
{
    type Value = T;
    const PAIR_BYTES: u64 = <GaussianPair<T> as HostPair>::PAIR_BYTES;
    const VALUE_BYTES: u64 = <GaussianPair<T> as HostPair>::VALUE_BYTES;
    const LAYOUT: Layout = T::LAYOUT;
    const VALUES_PER_METRIC: usize = PER_MEASURE;

    #[inline]
    fn screen(pairs: &[Self], param: Param) -> (bool, bool) {
        let (invalid, fixup) = GaussianPair::<T>::screen(bytemuck::cast_slice(pairs), param);
        // Tiny nonzero a1, a2 (see needs_host_fixup): one branch-free pass over the block.
        let any_tiny = pairs
            .iter()
            .fold(false, |acc, p| acc | tiny(p.0.sigma1) | tiny(p.0.sigma2));
        (invalid, fixup || any_tiny)
    }

    fn validate_at(pairs: &[Self], offset: usize, param: Param) -> Result<()> {
        GaussianPair::<T>::validate_at(bytemuck::cast_slice(pairs), offset, param)
    }

    /// Also tiny nonzero a1, a2: with log-parameters the gradients are
    /// linear in ½a1 − ½a2 there, which a device that flushes subnormals
    /// would lose (for σ, σ², 1/σ² the kernel decomposes a exactly, and the
    /// CPU gives the same values).
    #[inline]
    fn needs_host_fixup(&self) -> bool {
        self.0.needs_host_fixup() || tiny(self.0.sigma1) || tiny(self.0.sigma2)
    }

    fn fix_row(&self, param: Param, metrics: Metrics, row: &mut [T]) {
        let p = self.0;
        let g = gradients_one(p.mu1, p.sigma1, p.mu2, p.sigma2, param);
        let parts = [Metric::CrossEntropy, Metric::Kl]
            .into_iter()
            .zip(g.chunks_exact(PER_MEASURE))
            .filter(|(m, _)| metrics.contains(*m))
            .flat_map(|(_, v)| v.iter().copied());
        for (dst, v) in row.iter_mut().zip(parts) {
            *dst = v;
        }
    }
}

// The kernels' element sizes are the Rust types' sizes.
const _: () = {
    assert!(core::mem::size_of::<GaussianPair>() as u64 == <GaussianPair>::PAIR_BYTES);
    assert!(core::mem::size_of::<GaussianPair64>() as u64 == <GaussianPair64>::PAIR_BYTES);
    assert!(core::mem::size_of::<GradPair<f32>>() as u64 == <GradPair<f32>>::PAIR_BYTES);
    assert!(core::mem::size_of::<GradPair<f64>>() as u64 == <GradPair<f64>>::PAIR_BYTES);
    assert!(core::mem::size_of::<f32>() as u64 == <GaussianPair>::VALUE_BYTES);
    assert!(core::mem::size_of::<f64>() as u64 == <GaussianPair64>::VALUE_BYTES);
};
