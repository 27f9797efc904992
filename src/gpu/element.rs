//! The precisions of the host path: what differs between f32 and f64 pairs
//! (element sizes, kernel, validation, CPU fix-up), so that one generic
//! upload / dispatch / readback loop serves both.

use super::kernel::Layout;
use crate::cpu;
use crate::error::Result;
use crate::pair::{GaussianPair, GaussianPair64};
use crate::validate;

/// An input pair of one precision and the values the kernel writes for it.
pub(crate) trait HostPair: bytemuck::Pod + Sync {
    /// One output value (f32 or f64).
    type Value: bytemuck::Pod;
    /// Bytes of one pair in the kernel's input binding.
    const PAIR_BYTES: u64;
    /// Bytes of one output value.
    const VALUE_BYTES: u64;
    /// The kernel (and entry point) that evaluates this precision.
    const LAYOUT: Layout;
    /// `(any invalid pair, any pair needing a host fix-up)`, branch-free.
    fn screen(pairs: &[Self]) -> (bool, bool);
    /// Ok, or the first invalid pair as [`crate::Error::InvalidInput`] (absolute index).
    fn validate_at(pairs: &[Self], offset: usize) -> Result<()>;
    /// Whether the kernel may be inexact here (subnormal μ or μ1 − μ2).
    fn needs_host_fixup(&self) -> bool;
    /// `[cross_entropy, kl, entropy]` on the CPU in the same precision.
    fn eval_cpu(&self) -> [Self::Value; 3];
}

impl HostPair for GaussianPair {
    type Value = f32;
    const PAIR_BYTES: u64 = super::kernel::PAIR_BYTES;
    const VALUE_BYTES: u64 = 4;
    const LAYOUT: Layout = Layout::Pairs;

    #[inline]
    fn screen(pairs: &[Self]) -> (bool, bool) {
        validate::screen(pairs)
    }

    fn validate_at(pairs: &[Self], offset: usize) -> Result<()> {
        validate::validate_at(pairs, offset)
    }

    #[inline]
    fn needs_host_fixup(&self) -> bool {
        validate::needs_host_fixup(self)
    }

    fn eval_cpu(&self) -> [f32; 3] {
        let d = cpu::eval32(self);
        [d.cross_entropy, d.kl, d.entropy]
    }
}

impl HostPair for GaussianPair64 {
    type Value = f64;
    const PAIR_BYTES: u64 = 32;
    const VALUE_BYTES: u64 = 8;
    const LAYOUT: Layout = Layout::Pairs64;

    #[inline]
    fn screen(pairs: &[Self]) -> (bool, bool) {
        validate::screen_f64(pairs)
    }

    fn validate_at(pairs: &[Self], offset: usize) -> Result<()> {
        validate::validate_f64_at(pairs, offset)
    }

    #[inline]
    fn needs_host_fixup(&self) -> bool {
        validate::needs_host_fixup_f64(self)
    }

    fn eval_cpu(&self) -> [f64; 3] {
        let d = cpu::eval64(self);
        [d.cross_entropy, d.kl, d.entropy]
    }
}

// The kernels' element sizes are the Rust types' sizes.
const _: () = {
    assert!(core::mem::size_of::<GaussianPair>() as u64 == GaussianPair::PAIR_BYTES);
    assert!(core::mem::size_of::<GaussianPair64>() as u64 == GaussianPair64::PAIR_BYTES);
    assert!(core::mem::size_of::<f32>() as u64 == GaussianPair::VALUE_BYTES);
    assert!(core::mem::size_of::<f64>() as u64 == GaussianPair64::VALUE_BYTES);
};
