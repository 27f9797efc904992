//! Plain-data types shared by the CPU and GPU paths.
//!
//! KEEP IN SYNC with `shaders/divergence.wgsl`: `GaussianPair` is the kernel's
//! input element (`vec4<u32>` of f32 bits: mu1, sigma1, mu2, sigma2) and the
//! kernel writes the selected metrics of [`Metric`] in their canonical order,
//! which for cross-entropy, KL and entropy is exactly the layout of [`Divergences`].

use crate::verify::Precision;
use bytemuck::{Pod, Zeroable};
use core::mem::{offset_of, size_of};

/// The two precisions gaussdiv evaluates in: `f32` (the GPU's native
/// precision, accurate to ~1e-7 on every input) and `f64` (the reference,
/// ~1e-16). Sealed: implemented for `f32` and `f64` only.
pub trait Float:
    sealed::Sealed
    + Pod
    + Default
    + core::fmt::Debug
    + core::fmt::Display
    + PartialEq
    + PartialOrd
    + Into<f64>
    + Send
    + Sync
    + 'static
{
    /// Which of the two this is.
    const PRECISION: Precision;
}

impl Float for f32 {
    const PRECISION: Precision = Precision::F32;
}

impl Float for f64 {
    const PRECISION: Precision = Precision::F64;
}

mod sealed {
    pub trait Sealed {}
    impl Sealed for f32 {}
    impl Sealed for f64 {}
}

/// A univariate Gaussian N(μ, σ²), given by its mean and standard deviation
/// (or the scale parameter of another [`Param`]). `Gaussian` is f32,
/// [`Gaussian64`] f64.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Gaussian<T: Float = f32> {
    /// Mean μ.
    pub mu: T,
    /// Standard deviation σ (> 0), or the `a` of another [`Param`].
    pub sigma: T,
}

/// A [`Gaussian`] in f64.
pub type Gaussian64 = Gaussian<f64>;

impl<T: Float> Gaussian<T> {
    /// N(`mu`, `sigma`²) (or `sigma` the `a` of another [`Param`]).
    pub const fn new(mu: T, sigma: T) -> Self {
        Self { mu, sigma }
    }
}

/// A pair p1 = N(μ1, σ1²), p2 = N(μ2, σ2²): one row of input (16 bytes in
/// f32, 32 in f64 — the kernels' input element). `GaussianPair` is f32,
/// [`GaussianPair64`] f64.
///
/// With another parameterisation than σ ([`Param`], through a [`crate::Request`]),
/// `sigma1` and `sigma2` hold its parameters `a1`, `a2` (σ², ln σ, ln σ² or 1/σ²).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct GaussianPair<T: Float = f32> {
    /// Mean of p1.
    pub mu1: T,
    /// Standard deviation of p1 (or `a1` of another [`Param`]).
    pub sigma1: T,
    /// Mean of p2.
    pub mu2: T,
    /// Standard deviation of p2 (or `a2` of another [`Param`]).
    pub sigma2: T,
}

/// A [`GaussianPair`] in f64: the reference path's and the GPU f64 kernels' element.
pub type GaussianPair64 = GaussianPair<f64>;

// SAFETY: `repr(C)` structs of two or four fields of one `Float` type (f32 or
// f64, both `Pod`) have no padding, and every bit pattern is valid.
unsafe impl<T: Float> Zeroable for Gaussian<T> {}
unsafe impl<T: Float> Pod for Gaussian<T> {}
unsafe impl<T: Float> Zeroable for GaussianPair<T> {}
unsafe impl<T: Float> Pod for GaussianPair<T> {}

impl<T: Float> GaussianPair<T> {
    /// A pair from its four parameters.
    pub const fn new(mu1: T, sigma1: T, mu2: T, sigma2: T) -> Self {
        Self {
            mu1,
            sigma1,
            mu2,
            sigma2,
        }
    }

    /// Why this pair is not valid input in `param`, or `None` when it is:
    /// the first invalid field and the reason (μ must be finite; σ, σ² and
    /// 1/σ² finite and > 0; ln σ and ln σ² finite). What the evaluators
    /// check, for readers that report a row and column themselves.
    pub fn invalid_field(&self, param: Param) -> Option<(crate::Field, &'static str)> {
        crate::validate::check_param_f64(&self.to_f64(), param)
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

    /// The pair (p, q).
    pub(crate) const fn from_gaussians(p: Gaussian<T>, q: Gaussian<T>) -> Self {
        Self::new(p.mu, p.sigma, q.mu, q.sigma)
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
    assert!(size_of::<Gaussian64>() == 16);
    assert!(offset_of!(GaussianPair64, sigma2) == 24);
};

/// One of the measures gaussdiv computes. The discriminants give the
/// canonical order: the order of output columns, of the kernel's `WRITE_*`
/// constants and of `math::measures`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Metric {
    /// Cross-entropy H(p1, p2) = H(p1) + KL(p1 ‖ p2).
    CrossEntropy,
    /// KL(p1 ‖ p2).
    Kl,
    /// Entropy H(p1).
    Entropy,
    /// Entropy H(p2).
    EntropyQ,
    /// Reverse KL divergence KL(p2 ‖ p1).
    ReverseKl,
    /// Jeffreys divergence KL(p1 ‖ p2) + KL(p2 ‖ p1).
    Jeffreys,
    /// Bhattacharyya distance D_B = (μ1 − μ2)²/(4(σ1² + σ2²)) + ½ ln((σ1² + σ2²)/(2σ1σ2)).
    Bhattacharyya,
    /// Bhattacharyya coefficient exp(−D_B).
    BhattacharyyaCoefficient,
    /// Hellinger distance √(1 − exp(−D_B)).
    Hellinger,
    /// 2-Wasserstein distance √((μ1 − μ2)² + (σ1 − σ2)²).
    Wasserstein2,
}

impl Metric {
    /// Number of metrics.
    pub const COUNT: usize = 10;

    /// Every metric, in canonical (output) order.
    pub const ALL: [Metric; Metric::COUNT] = [
        Metric::CrossEntropy,
        Metric::Kl,
        Metric::Entropy,
        Metric::EntropyQ,
        Metric::ReverseKl,
        Metric::Jeffreys,
        Metric::Bhattacharyya,
        Metric::BhattacharyyaCoefficient,
        Metric::Hellinger,
        Metric::Wasserstein2,
    ];

    /// The name used on the command line and in CSV headers.
    pub const fn name(self) -> &'static str {
        match self {
            Metric::CrossEntropy => "cross_entropy",
            Metric::Kl => "kl",
            Metric::Entropy => "entropy",
            Metric::EntropyQ => "entropy_q",
            Metric::ReverseKl => "reverse_kl",
            Metric::Jeffreys => "jeffreys",
            Metric::Bhattacharyya => "bhattacharyya",
            Metric::BhattacharyyaCoefficient => "bhattacharyya_coefficient",
            Metric::Hellinger => "hellinger",
            Metric::Wasserstein2 => "wasserstein2",
        }
    }

    const fn bit(self) -> u16 {
        1 << (self as u16)
    }

    /// Index of this metric in the canonical order (for the first three,
    /// also the field order of [`Divergences`]).
    pub(crate) const fn index(self) -> usize {
        self as usize
    }
}

impl core::str::FromStr for Metric {
    type Err = crate::Error;

    /// The metric with this command-line name (`"kl"`, `"cross_entropy"`, …).
    fn from_str(name: &str) -> crate::Result<Metric> {
        Metric::ALL
            .into_iter()
            .find(|m| m.name() == name)
            .ok_or_else(|| {
                let valid: Vec<&str> = Metric::ALL.iter().map(|m| m.name()).collect();
                crate::Error::Unsupported(format!(
                    "unknown measure {name:?} (valid: {})",
                    valid.join(", ")
                ))
            })
    }
}

impl core::fmt::Display for Metric {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.name())
    }
}

/// A non-empty set of metrics. Output rows hold the selected metrics in
/// canonical order (that of [`Metric::ALL`]), whatever order they were named in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Metrics(u16);

impl Metrics {
    /// Every metric of [`Metric::ALL`] (ten values per pair).
    pub const ALL: Metrics = Metrics((1 << Metric::COUNT) - 1);
    /// Cross-entropy, KL and entropy: the layout of [`Divergences`] (the default).
    pub const CE_KL_ENTROPY: Metrics = Metrics(0b111);
    /// Cross-entropy and KL (the command line's default; the measures with gradients).
    pub const CE_KL: Metrics = Metrics(0b011);

    /// The set of the given metrics; `None` when empty.
    pub fn new(metrics: &[Metric]) -> Option<Metrics> {
        let bits = metrics.iter().fold(0u16, |acc, m| acc | m.bit());
        (bits != 0).then_some(Metrics(bits))
    }

    /// Whether `m` is selected.
    pub const fn contains(self, m: Metric) -> bool {
        self.0 & m.bit() != 0
    }

    /// Whether every metric of `other` is selected.
    pub(crate) const fn contains_all(self, other: Metrics) -> bool {
        self.0 & other.0 == other.0
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
    pub(crate) const fn bits(self) -> u16 {
        self.0
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::CE_KL_ENTROPY
    }
}

/// How the second and fourth input columns give the standard deviations:
/// an input row is `(μ1, a1, μ2, a2)` with `a = σ`, `σ²`, `ln σ`, `ln σ²`
/// or `1/σ²`. ([`GaussianPair`] keeps its field names `sigma1`, `sigma2`
/// for `a1`, `a2`.)
///
/// The conversion happens inside the kernel and the CPU loops, from the
/// input directly where that is more accurate: with variances and
/// precisions, ρ² = σ1²/σ2² is a ratio of exact inputs and ln σ = ½ ln a;
/// with log-parameters, ln σ is the input itself and ln ρ one subtraction,
/// while σ (where a measure needs it) carries the rounding of our own `exp`
/// (under one unit in the last place).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Param {
    /// `a = σ` (must be finite and > 0).
    #[default]
    Std,
    /// `a = σ²` (finite and > 0).
    Var,
    /// `a = ln σ` (finite).
    LogStd,
    /// `a = ln σ²` (finite).
    LogVar,
    /// `a = 1/σ²` (finite and > 0).
    Precision,
}

impl Param {
    /// Every parameterisation.
    pub const ALL: [Param; 5] = [
        Param::Std,
        Param::Var,
        Param::LogStd,
        Param::LogVar,
        Param::Precision,
    ];

    /// The name used on the command line (`--param`).
    pub const fn name(self) -> &'static str {
        match self {
            Param::Std => "std",
            Param::Var => "var",
            Param::LogStd => "logstd",
            Param::LogVar => "logvar",
            Param::Precision => "precision",
        }
    }

    /// The code of the kernel's `PARAM` override constant (see `math::param`).
    pub(crate) const fn code(self) -> u32 {
        match self {
            Param::Std => crate::math::param::STD,
            Param::Var => crate::math::param::VAR,
            Param::LogStd => crate::math::param::LOGSTD,
            Param::LogVar => crate::math::param::LOGVAR,
            Param::Precision => crate::math::param::PRECISION,
        }
    }

    /// Name of the scale column of p1 or p2 (`side` 1 or 2) in this
    /// parameterisation: `sigma1`, `var1`, `logstd1`, `logvar1`, `precision1`.
    pub const fn column(self, side: u8) -> &'static str {
        match (self, side) {
            (Param::Std, 1) => "sigma1",
            (Param::Std, _) => "sigma2",
            (Param::Var, 1) => "var1",
            (Param::Var, _) => "var2",
            (Param::LogStd, 1) => "logstd1",
            (Param::LogStd, _) => "logstd2",
            (Param::LogVar, 1) => "logvar1",
            (Param::LogVar, _) => "logvar2",
            (Param::Precision, 1) => "precision1",
            (Param::Precision, _) => "precision2",
        }
    }
}

impl core::str::FromStr for Param {
    type Err = crate::Error;

    /// The parameterisation with this command-line name (`"std"`, `"logvar"`, …).
    fn from_str(name: &str) -> crate::Result<Param> {
        Param::ALL
            .into_iter()
            .find(|p| p.name() == name)
            .ok_or_else(|| {
                let valid: Vec<&str> = Param::ALL.iter().map(|p| p.name()).collect();
                crate::Error::Unsupported(format!(
                    "unknown parameterisation {name:?} (valid: {})",
                    valid.join(", ")
                ))
            })
    }
}

impl core::fmt::Display for Param {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.name())
    }
}

/// What the internal paths evaluate: which measures, how the inputs give σ,
/// and what invalid input does (the public form is [`crate::Request`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub(crate) struct EvalOptions {
    /// The measures to write, `metrics.len()` values per pair in canonical order.
    pub metrics: Metrics,
    /// The parameterisation of the inputs.
    pub param: Param,
    /// Invalid input: an error (after an exact scan) or NaN rows.
    pub on_invalid: crate::OnInvalid,
}

impl EvalOptions {
    /// The given measures of pairs in the given parameterisation (invalid input an error).
    pub const fn new(metrics: Metrics, param: Param) -> EvalOptions {
        EvalOptions {
            metrics,
            param,
            on_invalid: crate::OnInvalid::Error,
        }
    }
}

impl From<Metrics> for EvalOptions {
    /// The given measures of pairs given by σ.
    fn from(metrics: Metrics) -> EvalOptions {
        EvalOptions::new(metrics, Param::Std)
    }
}
