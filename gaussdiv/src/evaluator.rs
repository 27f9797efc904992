//! [`Evaluator`]: one front for the GPU and CPU backends.

use crate::cpu;
use crate::error::{Error, Result};
use crate::gpu::{GpuEvaluator, GpuOptions};
use crate::gradient::{self, Gradients};
use crate::pair::{Divergences, EvalOptions, GaussianPair, Metrics};
use crate::validate::{self, OnInvalid};
use std::sync::{Arc, Mutex, RwLock};
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
    let (one, one_out) = (pairs.get(..1).unwrap_or_default(), &mut [0f32; 2]);
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

/// What [`Backend::Auto`] does when the GPU fails (device lost, mapping
/// failed, timeout, GPU error).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Recovery {
    /// Recreate the GPU evaluator on a new device and retry the call; if that
    /// fails too, use the CPU from then on (default).
    #[default]
    Recreate,
    /// Use the CPU for the failed call and from then on.
    Cpu,
}

/// Evaluates batches on the GPU or the CPU, with one API.
///
/// `Send + Sync`; under [`Backend::Auto`] it survives GPU failures (see
/// [`Recovery`]) and records what it did ([`Evaluator::recoveries`]).
#[derive(Debug)]
pub struct Evaluator {
    gpu: RwLock<Option<Arc<GpuEvaluator>>>,
    backend: Backend,
    on_invalid: OnInvalid,
    fallback_reason: Option<String>,
    crossover: Option<Crossover>,
    recovery: Recovery,
    events: Mutex<Vec<String>>,
}

impl Evaluator {
    /// An evaluator for `backend`, invalid input an error.
    pub fn new(backend: Backend) -> Result<Evaluator> {
        Self::with_policy(backend, OnInvalid::Error)
    }

    fn gpu_options(on_invalid: OnInvalid) -> GpuOptions {
        GpuOptions {
            on_invalid,
            ..GpuOptions::default()
        }
    }

    /// An evaluator for `backend` with the given invalid-input policy. Under
    /// [`Backend::Auto`] with an adapter, the crossover is measured here
    /// unless [`AUTO_ENV`] fixes it.
    pub fn with_policy(backend: Backend, on_invalid: OnInvalid) -> Result<Evaluator> {
        let options = Self::gpu_options(on_invalid);
        let (mut gpu, mut fallback_reason) = match backend {
            Backend::Cpu => (None, None),
            Backend::Gpu => (Some(GpuEvaluator::with_options(options)?), None),
            Backend::Auto => match GpuEvaluator::with_options(options) {
                Ok(g) => (Some(g), None),
                Err(e) => (None, Some(format!("no usable GPU ({e}); using the CPU"))),
            },
        };
        let mut crossover = None;
        if let (Some(g), Backend::Auto) = (&gpu, backend) {
            let fixed = std::env::var(AUTO_ENV)
                .ok()
                .and_then(|v| v.trim().parse().ok());
            match fixed.map_or_else(|| calibrate(g), |n| Ok(Crossover::fixed(n))) {
                Ok(c) => crossover = Some(c),
                Err(e) => {
                    // A GPU that fails its calibration is not usable: the CPU it is.
                    fallback_reason = Some(format!(
                        "the GPU failed while measuring the crossover ({e}); using the CPU"
                    ));
                    gpu = None;
                }
            }
        }
        Ok(Evaluator {
            gpu: RwLock::new(gpu.map(Arc::new)),
            backend,
            on_invalid,
            fallback_reason,
            crossover,
            recovery: Recovery::default(),
            events: Mutex::new(Vec::new()),
        })
    }

    /// Wrap an existing GPU evaluator (its invalid-input policy applies); GPU only.
    pub fn from_gpu(gpu: GpuEvaluator) -> Evaluator {
        let on_invalid = gpu.options().on_invalid;
        Evaluator {
            gpu: RwLock::new(Some(Arc::new(gpu))),
            backend: Backend::Gpu,
            on_invalid,
            fallback_reason: None,
            crossover: None,
            recovery: Recovery::default(),
            events: Mutex::new(Vec::new()),
        }
    }

    /// Under [`Backend::Auto`], send batches of at least `pairs` to the GPU
    /// (replaces the measured crossover).
    pub fn set_auto_gpu_min_pairs(&mut self, pairs: usize) {
        if self.backend == Backend::Auto && self.gpu().is_some() {
            self.crossover = Some(Crossover::fixed(pairs));
        }
    }

    /// Under [`Backend::Auto`], what to do when the GPU fails.
    pub fn set_recovery(&mut self, recovery: Recovery) {
        self.recovery = recovery;
    }

    /// What [`Backend::Auto`] measured (or was told), if it has a GPU to choose.
    pub fn crossover(&self) -> Option<Crossover> {
        self.crossover
    }

    /// The GPU evaluator in use, if any.
    pub fn gpu(&self) -> Option<Arc<GpuEvaluator>> {
        match self.gpu.read() {
            Ok(g) => g.clone(),
            Err(p) => p.into_inner().clone(),
        }
    }

    /// The backend requested.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Under [`Backend::Auto`] without a GPU: why.
    pub fn fallback_reason(&self) -> Option<&str> {
        self.fallback_reason.as_deref()
    }

    /// What [`Backend::Auto`] did after GPU failures, oldest first (e.g.
    /// "GPU failed (…); recreated the GPU evaluator" or "…; using the CPU").
    pub fn recoveries(&self) -> Vec<String> {
        match self.events.lock() {
            Ok(e) => e.clone(),
            Err(p) => p.into_inner().clone(),
        }
    }

    /// Whether a batch of `n` pairs goes to the GPU.
    pub fn uses_gpu_for(&self, n: usize) -> bool {
        self.gpu_for(n).is_some()
    }

    /// The GPU evaluator a batch of `n` pairs goes to, if any. Batches below
    /// the crossover are decided without touching the lock.
    fn gpu_for(&self, n: usize) -> Option<Arc<GpuEvaluator>> {
        let wanted = match self.backend {
            Backend::Cpu => false,
            Backend::Gpu => true,
            Backend::Auto => self.crossover.is_some_and(|c| n >= c.gpu_min_pairs),
        };
        if wanted {
            self.gpu()
        } else {
            None
        }
    }

    /// Cross-entropy, KL and entropy of every pair.
    pub fn evaluate(&self, pairs: &[GaussianPair]) -> Result<Vec<Divergences>> {
        let mut out = vec![Divergences::default(); pairs.len()];
        self.evaluate_metrics_into(pairs, Metrics::ALL, bytemuck::cast_slice_mut(&mut out))?;
        Ok(out)
    }

    /// The selected metrics of every pair into `out` (`pairs.len() × metrics.len()`).
    /// On an error, the contents of `out` are unspecified.
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
    /// On an error, the contents of `out` are unspecified.
    pub fn evaluate_with(
        &self,
        pairs: &[GaussianPair],
        options: EvalOptions,
        out: &mut [f32],
    ) -> Result<()> {
        self.route(
            pairs.len(),
            out,
            |g, out| g.evaluate_with(pairs, options, out),
            |out| self.cpu(pairs, options, out),
        )
    }

    /// One batch of `n` elements: `gpu_job` on the GPU when the routing says
    /// so — under Auto a GPU failure is recovered (a recreated GPU, or the
    /// CPU from now on; see [`Recovery`]) — else `cpu_job`.
    pub(crate) fn route(
        &self,
        n: usize,
        out: &mut [f32],
        gpu_job: impl Fn(&GpuEvaluator, &mut [f32]) -> Result<()>,
        cpu_job: impl Fn(&mut [f32]) -> Result<()>,
    ) -> Result<()> {
        match self.gpu_for(n) {
            Some(g) => match gpu_job(&g, out) {
                Err(e) if self.backend == Backend::Auto && is_gpu_failure(&e) => {
                    self.recover(&g, e, out, gpu_job, cpu_job)
                }
                r => r,
            },
            None => cpu_job(out),
        }
    }

    /// The gradients of `options.metrics` (cross-entropy and/or KL) of every
    /// pair given in `options.param`, into `out` (`pairs.len() × 4 ×
    /// options.metrics.len()` values: `[∂/∂μ1, ∂/∂a1, ∂/∂μ2, ∂/∂a2]` per
    /// measure, cross-entropy first; see [`crate::gradient`]). Same routing,
    /// validation and recovery as [`evaluate_with`](Self::evaluate_with).
    /// On an error, the contents of `out` are unspecified.
    pub fn gradients_with(
        &self,
        pairs: &[GaussianPair],
        options: EvalOptions,
        out: &mut [f32],
    ) -> Result<()> {
        gradient::check_metrics(options.metrics)?;
        self.route(
            pairs.len(),
            out,
            |g, out| g.gradients_with(pairs, options, out),
            |out| self.cpu_gradients(pairs, options, out),
        )
    }

    /// Both gradients of every pair given by σ.
    pub fn gradients(&self, pairs: &[GaussianPair]) -> Result<Vec<Gradients>> {
        let mut out = vec![Gradients::default(); pairs.len()];
        self.gradients_with(
            pairs,
            Metrics::CE_KL.into(),
            bytemuck::cast_slice_mut(&mut out),
        )?;
        Ok(out)
    }

    fn cpu_gradients(
        &self,
        pairs: &[GaussianPair],
        options: EvalOptions,
        out: &mut [f32],
    ) -> Result<()> {
        gradient::cpu_gradients_with(pairs, options, out)?;
        // Every gradient of a valid pair is a number (or ±∞); of an invalid one, NaN.
        if self.on_invalid == OnInvalid::Error && out.iter().any(|v| v.is_nan()) {
            validate::validate_param(pairs, options.param)?;
        }
        Ok(())
    }

    pub(crate) fn cpu(
        &self,
        pairs: &[GaussianPair],
        options: EvalOptions,
        out: &mut [f32],
    ) -> Result<()> {
        cpu::evaluate_with(pairs, options, out)?;
        // Every measure of a valid pair is a number; of an invalid one, NaN.
        // So the output itself says whether the (slower) exact scan is needed.
        if self.on_invalid == OnInvalid::Error {
            let k = options.metrics.len().max(1);
            let any_nan = if out.len() < 1 << 16 {
                out.iter().step_by(k).any(|v| v.is_nan())
            } else {
                use rayon::prelude::*;
                out.par_chunks(k << 12)
                    .any(|c| c.iter().step_by(k).any(|v| v.is_nan()))
            };
            if any_nan {
                validate::validate_param(pairs, options.param)?;
            }
        }
        Ok(())
    }

    /// The diagonal multivariate layout (see [`crate::layout::diagonal_with`]):
    /// routed by the number of elements `pairs.len()`, like a batch of pairs.
    pub(crate) fn diagonal_with(
        &self,
        pairs: &[GaussianPair],
        dims: usize,
        options: EvalOptions,
        out: &mut [f32],
    ) -> Result<()> {
        self.route(
            pairs.len(),
            out,
            |g, out| g.evaluate_diagonal_with(pairs, dims, options, out),
            |out| self.diagonal_cpu(pairs, dims, options, out),
        )
    }

    fn diagonal_cpu(
        &self,
        pairs: &[GaussianPair],
        dims: usize,
        options: EvalOptions,
        out: &mut [f32],
    ) -> Result<()> {
        cpu::diagonal_with(pairs, dims, options, out)?;
        // A row with an invalid element is NaN: only then is the exact scan needed.
        if self.on_invalid == OnInvalid::Error {
            let k = options.metrics.len().max(1);
            if out.iter().step_by(k).any(|v| v.is_nan()) {
                validate::validate_param(pairs, options.param)
                    .map_err(|e| crate::diagonal::element_error(e, dims))?;
            }
        }
        Ok(())
    }

    fn log(&self, event: String) {
        if let Ok(mut e) = self.events.lock() {
            e.push(event);
        }
    }

    fn set_gpu(&self, failed: &Arc<GpuEvaluator>, new: Option<Arc<GpuEvaluator>>) {
        if let Ok(mut slot) = self.gpu.write() {
            // Only replace the evaluator that failed (another thread may have recovered already).
            if slot.as_ref().is_some_and(|g| Arc::ptr_eq(g, failed)) {
                *slot = new;
            }
        }
    }

    /// Backend::Auto after a GPU failure: recreate or fall back, then finish the call.
    /// After a GPU failure under Auto: `gpu_job` on a recreated GPU
    /// evaluator, or `cpu_job` from now on.
    fn recover(
        &self,
        failed: &Arc<GpuEvaluator>,
        error: Error,
        out: &mut [f32],
        gpu_job: impl Fn(&GpuEvaluator, &mut [f32]) -> Result<()>,
        cpu_job: impl Fn(&mut [f32]) -> Result<()>,
    ) -> Result<()> {
        if self.recovery == Recovery::Recreate {
            match GpuEvaluator::with_options(Self::gpu_options(self.on_invalid)) {
                Ok(new) => {
                    let new = Arc::new(new);
                    if gpu_job(&new, out).is_ok() {
                        self.log(format!("GPU failed ({error}); recreated the GPU evaluator"));
                        self.set_gpu(failed, Some(new));
                        return Ok(());
                    }
                }
                Err(e) => {
                    self.log(format!(
                        "GPU failed ({error}); recreating it failed too ({e})"
                    ));
                }
            }
        }
        self.log(format!("GPU failed ({error}); using the CPU from now on"));
        self.set_gpu(failed, None);
        cpu_job(out)
    }
}

/// Errors after which the GPU, not the input, is to blame.
fn is_gpu_failure(e: &Error) -> bool {
    matches!(
        e,
        Error::DeviceLost(_) | Error::Timeout { .. } | Error::Map(_) | Error::Gpu(_)
    )
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
