//! [`Evaluator`]: one front for the GPU and CPU backends.

use crate::cpu;
use crate::error::Result;
use crate::gpu::{GpuEvaluator, GpuOptions};
use crate::pair::{Divergences, EvalOptions, GaussianPair, Metrics};
use crate::validate::{self, OnInvalid};
use std::time::Instant;

/// Which backend an [`Evaluator`] should use.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Backend {
    /// The GPU for batches large enough that it is faster than the CPU
    /// (the crossover is measured when the evaluator is built, see
    /// [`Crossover`]), the CPU otherwise and when there is no adapter (the
    /// reason is kept, see [`Evaluator::fallback_reason`]).
    #[default]
    Auto,
    /// The GPU only: construction fails with [`crate::Error::NoAdapter`] when there is none.
    Gpu,
    /// The CPU only (all cores, SIMD).
    Cpu,
}

/// Environment variable that fixes [`Backend::Auto`]'s crossover (in pairs)
/// instead of measuring it.
pub const AUTO_ENV: &str = "GAUSSDIV_AUTO_GPU_MIN_PAIRS";

/// What [`Backend::Auto`] measured on this machine: a fixed cost and a rate
/// per backend, and the batch size from which the GPU is faster.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Crossover {
    /// Batches of at least this many pairs go to the GPU (`usize::MAX`: never).
    pub gpu_min_pairs: usize,
    /// CPU: time for one pair, seconds.
    pub cpu_latency_s: f64,
    /// CPU: throughput on a large batch, pairs per second.
    pub cpu_pairs_per_s: f64,
    /// GPU: time for one pair, seconds.
    pub gpu_latency_s: f64,
    /// GPU: end-to-end throughput on a large batch, pairs per second.
    pub gpu_pairs_per_s: f64,
    /// Whether the figures were measured (false: set by hand or from [`AUTO_ENV`]).
    pub measured: bool,
}

impl Crossover {
    /// A fixed crossover, not measured.
    pub fn fixed(gpu_min_pairs: usize) -> Crossover {
        Crossover {
            gpu_min_pairs,
            cpu_latency_s: f64::NAN,
            cpu_pairs_per_s: f64::NAN,
            gpu_latency_s: f64::NAN,
            gpu_pairs_per_s: f64::NAN,
            measured: false,
        }
    }

    /// From the two linear cost models `a + n/r`: the smallest n at which the GPU wins.
    fn from_models(cl: f64, cr: f64, gl: f64, gr: f64) -> usize {
        let per_pair_gain = 1.0 / cr - 1.0 / gr; // seconds saved per pair on the GPU
        if per_pair_gain.is_nan() || per_pair_gain <= 0.0 || !gl.is_finite() {
            return usize::MAX;
        }
        let n = ((gl - cl).max(0.0) / per_pair_gain).ceil();
        if n >= usize::MAX as f64 {
            usize::MAX
        } else {
            (n as usize).max(1)
        }
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
}

/// Measure the CPU and GPU cost models on synthetic pairs (about 20–50 ms).
fn calibrate(gpu: &GpuEvaluator) -> Result<Crossover> {
    const PROBE: usize = 1 << 19;
    let pairs: Vec<GaussianPair> = (0..PROBE)
        .map(|i| {
            let t = (i % 1021) as f32 / 1021.0;
            GaussianPair::new(t * 4.0 - 2.0, 0.5 + t, 1.0 - t, 2.0 - t)
        })
        .collect();
    let metrics = Metrics::CE_KL;
    let mut out = vec![0f32; PROBE * metrics.len()];
    let time = |f: &mut dyn FnMut() -> Result<()>, runs: usize| -> Result<f64> {
        f()?; // warm-up
        let mut t = Vec::with_capacity(runs);
        for _ in 0..runs {
            let s = Instant::now();
            f()?;
            t.push(s.elapsed().as_secs_f64());
        }
        Ok(median(t))
    };
    let (one, one_out) = (&pairs[..1], &mut [0f32; 2]);
    let cl = time(&mut || cpu::evaluate_metrics_into(one, metrics, one_out), 9)?;
    let gl = time(&mut || gpu.evaluate_metrics_into(one, metrics, one_out), 5)?;
    let ct = time(
        &mut || cpu::evaluate_metrics_into(&pairs, metrics, &mut out),
        3,
    )?;
    let gt = time(
        &mut || gpu.evaluate_metrics_into(&pairs, metrics, &mut out),
        3,
    )?;
    let cr = PROBE as f64 / (ct - cl).max(1e-9);
    let gr = PROBE as f64 / (gt - gl).max(1e-9);
    Ok(Crossover {
        gpu_min_pairs: Crossover::from_models(cl, cr, gl, gr),
        cpu_latency_s: cl,
        cpu_pairs_per_s: cr,
        gpu_latency_s: gl,
        gpu_pairs_per_s: gr,
        measured: true,
    })
}

/// Evaluates batches on the GPU or the CPU, with one API.
#[derive(Debug)]
pub struct Evaluator {
    gpu: Option<GpuEvaluator>,
    backend: Backend,
    on_invalid: OnInvalid,
    fallback_reason: Option<String>,
    crossover: Option<Crossover>,
}

impl Evaluator {
    /// An evaluator for `backend`, invalid input an error.
    pub fn new(backend: Backend) -> Result<Evaluator> {
        Self::with_policy(backend, OnInvalid::Error)
    }

    /// An evaluator for `backend` with the given invalid-input policy. Under
    /// [`Backend::Auto`] with an adapter, the crossover is measured here
    /// unless [`AUTO_ENV`] fixes it.
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
        let crossover = match (&gpu, backend) {
            (Some(g), Backend::Auto) => Some(
                match std::env::var(AUTO_ENV)
                    .ok()
                    .and_then(|v| v.trim().parse().ok())
                {
                    Some(n) => Crossover::fixed(n),
                    None => calibrate(g)?,
                },
            ),
            _ => None,
        };
        Ok(Evaluator {
            gpu,
            backend,
            on_invalid,
            fallback_reason,
            crossover,
        })
    }

    /// Wrap an existing GPU evaluator (its invalid-input policy applies); GPU only.
    pub fn from_gpu(gpu: GpuEvaluator) -> Evaluator {
        let on_invalid = gpu.options().on_invalid;
        Evaluator {
            gpu: Some(gpu),
            backend: Backend::Gpu,
            on_invalid,
            fallback_reason: None,
            crossover: None,
        }
    }

    /// Under [`Backend::Auto`], send batches of at least `pairs` to the GPU
    /// (replaces the measured crossover).
    pub fn set_auto_gpu_min_pairs(&mut self, pairs: usize) {
        if self.backend == Backend::Auto && self.gpu.is_some() {
            self.crossover = Some(Crossover::fixed(pairs));
        }
    }

    /// What [`Backend::Auto`] measured (or was told), if it has a GPU to choose.
    pub fn crossover(&self) -> Option<Crossover> {
        self.crossover
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
            (Backend::Auto, Some(_)) => self.crossover.is_some_and(|c| n >= c.gpu_min_pairs),
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
        self.evaluate_with(pairs, metrics.into(), out)
    }

    /// `options.metrics` of every pair given in `options.param` (see
    /// [`crate::Param`]) into `out` (`pairs.len() × options.metrics.len()`).
    pub fn evaluate_with(
        &self,
        pairs: &[GaussianPair],
        options: EvalOptions,
        out: &mut [f32],
    ) -> Result<()> {
        match &self.gpu {
            Some(gpu) if self.uses_gpu_for(pairs.len()) => gpu.evaluate_with(pairs, options, out),
            _ => {
                if self.on_invalid == OnInvalid::Error {
                    validate::validate_param(pairs, options.param)?;
                }
                cpu::evaluate_with(pairs, options, out)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Crossover;

    #[test]
    fn crossover_from_models() {
        // GPU slower per pair: never.
        assert_eq!(Crossover::from_models(1e-6, 1e9, 1e-4, 1e8), usize::MAX);
        // GPU 10× faster per pair, 100 µs more latency: 100e-6 / (1e-9 - 1e-10) ≈ 111 112.
        let n = Crossover::from_models(1e-6, 1e9, 101e-6, 1e10);
        assert!((111_000..111_200).contains(&n), "{n}");
        // No extra latency: from the first pair.
        assert_eq!(Crossover::from_models(1e-4, 1e9, 1e-5, 1e10), 1);
        assert_eq!(
            Crossover::from_models(1e-6, 1e9, f64::NAN, 1e10),
            usize::MAX
        );
    }
}
