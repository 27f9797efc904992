//! Plain-data types shared by the CPU and GPU paths.
//!
//! KEEP IN SYNC with `shaders/divergence.wgsl`: `GaussianPair` is the kernel's
//! input element (`vec4<u32>` of f32 bits: mu1, sigma1, mu2, sigma2) and the
//! kernel writes the selected metrics of [`Metric`] in their canonical order,
//! which for all three is exactly the layout of [`Divergences`].

use bytemuck::{Pod, Zeroable};
use core::mem::{offset_of, size_of};

/// A univariate Gaussian N(μ, σ²), given by its mean and standard deviation.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Pod, Zeroable)]
pub struct Gaussian {
    /// Mean μ.
    pub mu: f32,
    /// Standard deviation σ (> 0).
    pub sigma: f32,
}

/// A pair p1 = N(μ1, σ1²), p2 = N(μ2, σ2²): one row of input, 16 bytes.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Pod, Zeroable)]
pub struct GaussianPair {
    /// Mean of p1.
    pub mu1: f32,
    /// Standard deviation of p1.
    pub sigma1: f32,
    /// Mean of p2.
    pub mu2: f32,
    /// Standard deviation of p2.
    pub sigma2: f32,
}

impl GaussianPair {
    /// A pair from its four parameters.
    pub const fn new(mu1: f32, sigma1: f32, mu2: f32, sigma2: f32) -> Self {
        Self {
            mu1,
            sigma1,
            mu2,
            sigma2,
        }
    }

    /// The pair (p, q).
    pub const fn from_gaussians(p: Gaussian, q: Gaussian) -> Self {
        Self::new(p.mu, p.sigma, q.mu, q.sigma)
    }

    /// The same pair in f64 (exact).
    pub fn to_f64(self) -> GaussianPair64 {
        GaussianPair64 {
            mu1: self.mu1.into(),
            sigma1: self.sigma1.into(),
            mu2: self.mu2.into(),
            sigma2: self.sigma2.into(),
        }
    }
}

/// The measures of one pair in f32: 12 bytes, the GPU output layout.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Pod, Zeroable)]
pub struct Divergences {
    /// Cross-entropy H(p1, p2), in nats.
    pub cross_entropy: f32,
    /// Kullback-Leibler divergence KL(p1 ‖ p2), in nats.
    pub kl: f32,
    /// Entropy H(p1), in nats.
    pub entropy: f32,
}

/// A pair of Gaussians in f64, for the reference path and the GPU f64 kernel.
///
/// KEEP IN SYNC with `shaders/divergence_f64.wgsl`: its input element
/// (`vec4<u64>` of f64 bits: mu1, sigma1, mu2, sigma2; 32 bytes).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Pod, Zeroable)]
pub struct GaussianPair64 {
    /// Mean of p1.
    pub mu1: f64,
    /// Standard deviation of p1.
    pub sigma1: f64,
    /// Mean of p2.
    pub mu2: f64,
    /// Standard deviation of p2.
    pub sigma2: f64,
}

/// The measures of one pair in f64 (also the f64 kernel's output layout
/// when it writes all three).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Pod, Zeroable)]
pub struct Divergences64 {
    /// Cross-entropy H(p1, p2), in nats.
    pub cross_entropy: f64,
    /// Kullback-Leibler divergence KL(p1 ‖ p2), in nats.
    pub kl: f64,
    /// Entropy H(p1), in nats.
    pub entropy: f64,
}

// Layout checks: the kernel reads 16-byte pairs and writes 4-byte values.
const _: () = {
    assert!(size_of::<GaussianPair>() == 16);
    assert!(offset_of!(GaussianPair, mu1) == 0);
    assert!(offset_of!(GaussianPair, sigma1) == 4);
    assert!(offset_of!(GaussianPair, mu2) == 8);
    assert!(offset_of!(GaussianPair, sigma2) == 12);
    assert!(size_of::<Divergences>() == 12);
    assert!(offset_of!(Divergences, cross_entropy) == 0);
    assert!(offset_of!(Divergences, kl) == 4);
    assert!(offset_of!(Divergences, entropy) == 8);
    assert!(size_of::<GaussianPair64>() == 32);
    assert!(size_of::<Divergences64>() == 24);
    assert!(size_of::<Gaussian>() == 8);
};

/// One of the measures gaussdiv computes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Metric {
    /// Cross-entropy H(p1, p2).
    CrossEntropy,
    /// KL(p1 ‖ p2).
    Kl,
    /// Entropy H(p1).
    Entropy,
}

impl Metric {
    /// Every metric, in canonical (output) order.
    pub const ALL: [Metric; 3] = [Metric::CrossEntropy, Metric::Kl, Metric::Entropy];

    /// The name used on the command line and in CSV headers.
    pub const fn name(self) -> &'static str {
        match self {
            Metric::CrossEntropy => "cross_entropy",
            Metric::Kl => "kl",
            Metric::Entropy => "entropy",
        }
    }

    /// The metric with this name, if any.
    pub fn from_name(name: &str) -> Option<Metric> {
        Metric::ALL.into_iter().find(|m| m.name() == name)
    }

    const fn bit(self) -> u8 {
        1 << (self as u8)
    }

    /// Index of this metric in [`Divergences`] / the full output row.
    pub const fn index(self) -> usize {
        self as usize
    }
}

impl core::fmt::Display for Metric {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.name())
    }
}

/// A non-empty set of metrics. Output rows hold the selected metrics in
/// canonical order (cross-entropy, KL, entropy), whatever order they were named in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Metrics(u8);

impl Metrics {
    /// Cross-entropy, KL and entropy: the layout of [`Divergences`].
    pub const ALL: Metrics = Metrics(0b111);
    /// Cross-entropy and KL (the command line's default).
    pub const CE_KL: Metrics = Metrics(0b011);

    /// The set of the given metrics; `None` when empty.
    pub fn new(metrics: &[Metric]) -> Option<Metrics> {
        let bits = metrics.iter().fold(0u8, |acc, m| acc | m.bit());
        (bits != 0).then_some(Metrics(bits))
    }

    /// Whether `m` is selected.
    pub const fn contains(self, m: Metric) -> bool {
        self.0 & m.bit() != 0
    }

    /// Number of selected metrics (values per output row).
    pub const fn len(self) -> usize {
        self.0.count_ones() as usize
    }

    /// Always false: a `Metrics` is never empty.
    pub const fn is_empty(self) -> bool {
        false
    }

    /// The selected metrics in output order.
    pub fn iter(self) -> impl Iterator<Item = Metric> {
        Metric::ALL.into_iter().filter(move |m| self.contains(*m))
    }

    /// The raw bit set (bit i = `Metric::ALL[i]`).
    pub const fn bits(self) -> u8 {
        self.0
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::ALL
    }
}
