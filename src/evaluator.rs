//! [`Evaluator`]: one front for the GPU and CPU backends.

use crate::cpu;
use crate::error::Result;
use crate::gpu::{GpuEvaluator, GpuOptions};
use crate::pair::{Divergences, GaussianPair, Metrics};
use crate::validate::{self, OnInvalid};

/// Which backend an [`Evaluator`] should use.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Backend {
    /// The GPU when an adapter exists and the batch is large enough to pay
    /// for the transfers; the CPU otherwise (the reason is kept, see
    /// [`Evaluator::fallback_reason`]).
    #[default]
    Auto,
    /// The GPU only: construction fails with [`crate::Error::NoAdapter`] when there is none.
    Gpu,
    /// The CPU only (all cores).
    Cpu,
}

/// Batches smaller than this stay on the CPU under [`Backend::Auto`].
pub const AUTO_GPU_MIN_PAIRS: usize = 1 << 16;

/// Evaluates batches on the GPU or the CPU, with one API.
#[derive(Debug)]
pub struct Evaluator {
    gpu: Option<GpuEvaluator>,
    backend: Backend,
    on_invalid: OnInvalid,
    fallback_reason: Option<String>,
    auto_gpu_min_pairs: usize,
}

impl Evaluator {
    /// An evaluator for `backend`, invalid input an error.
    pub fn new(backend: Backend) -> Result<Evaluator> {
        Self::with_policy(backend, OnInvalid::Error)
    }

    /// An evaluator for `backend` with the given invalid-input policy.
    pub fn with_policy(backend: Backend, on_invalid: OnInvalid) -> Result<Evaluator> {
        let options = GpuOptions {
            on_invalid,
            ..GpuOptions::default()
        };
        let (gpu, fallback_reason) = match backend {
            Backend::Cpu => (None, None),
            Backend::Gpu => (Some(GpuEvaluator::with_options(options)?), None),
            Backend::Auto => match GpuEvaluator::with_options(options) {
                Ok(g) => (Some(g), None),
                Err(e) => (None, Some(format!("no usable GPU ({e}); using the CPU"))),
            },
        };
        Ok(Evaluator {
            gpu,
            backend,
            on_invalid,
            fallback_reason,
            auto_gpu_min_pairs: AUTO_GPU_MIN_PAIRS,
        })
    }

    /// Wrap an existing GPU evaluator (its invalid-input policy applies).
    pub fn from_gpu(gpu: GpuEvaluator) -> Evaluator {
        let on_invalid = gpu.options().on_invalid;
        Evaluator {
            gpu: Some(gpu),
            backend: Backend::Gpu,
            on_invalid,
            fallback_reason: None,
            auto_gpu_min_pairs: AUTO_GPU_MIN_PAIRS,
        }
    }

    /// Under [`Backend::Auto`], the smallest batch sent to the GPU.
    pub fn set_auto_gpu_min_pairs(&mut self, pairs: usize) {
        self.auto_gpu_min_pairs = pairs;
    }

    /// The GPU evaluator, if this evaluator has one.
    pub fn gpu(&self) -> Option<&GpuEvaluator> {
        self.gpu.as_ref()
    }

    /// The backend requested.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Under [`Backend::Auto`] without a GPU: why.
    pub fn fallback_reason(&self) -> Option<&str> {
        self.fallback_reason.as_deref()
    }

    /// Whether a batch of `n` pairs goes to the GPU.
    pub fn uses_gpu_for(&self, n: usize) -> bool {
        match (self.backend, &self.gpu) {
            (_, None) | (Backend::Cpu, _) => false,
            (Backend::Gpu, Some(_)) => true,
            (Backend::Auto, Some(_)) => n >= self.auto_gpu_min_pairs,
        }
    }

    /// Cross-entropy, KL and entropy of every pair.
    pub fn evaluate(&self, pairs: &[GaussianPair]) -> Result<Vec<Divergences>> {
        let mut out = vec![Divergences::default(); pairs.len()];
        self.evaluate_metrics_into(pairs, Metrics::ALL, bytemuck::cast_slice_mut(&mut out))?;
        Ok(out)
    }

    /// The selected metrics of every pair into `out` (`pairs.len() × metrics.len()`).
    pub fn evaluate_metrics_into(
        &self,
        pairs: &[GaussianPair],
        metrics: Metrics,
        out: &mut [f32],
    ) -> Result<()> {
        match &self.gpu {
            Some(gpu) if self.uses_gpu_for(pairs.len()) => {
                gpu.evaluate_metrics_into(pairs, metrics, out)
            }
            _ => {
                if self.on_invalid == OnInvalid::Error {
                    validate::validate(pairs)?;
                }
                cpu::evaluate_metrics_into(pairs, metrics, out)
            }
        }
    }
}
