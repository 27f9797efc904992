//! [`Evaluator`]: the one front for every layout, precision and backend —
//! construction, routing ([`Backend::Auto`]) and recovery from GPU failures.
//! The layouts themselves are in [`crate::batch`]; the device path in
//! [`crate::gpu::device`].

use crate::batch::{
    absolute_index, cell_pair, columns_len, pairwise_cells, Batch, DeviceBatch, Elem,
};
use crate::error::{Error, Result};
use crate::gpu::context::AdapterSummary;
use crate::gpu::{GpuEvaluator, Transfer, WaitMode};
use crate::pair::{EvalOptions, Float, GaussianPair, Metrics};
use crate::request::Request;
use crate::verify::Precision;
use crate::OnInvalid;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;
use web_time::Instant;

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
pub(crate) const AUTO_ENV: &str = "GAUSSDIV_AUTO_GPU_MIN_PAIRS";

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
    /// Whether the figures were measured (false: set by hand or from `GAUSSDIV_AUTO_GPU_MIN_PAIRS`).
    pub measured: bool,
}

impl Crossover {
    /// A fixed crossover, not measured.
    fn fixed(gpu_min_pairs: usize) -> Crossover {
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
async fn calibrate(gpu: &GpuEvaluator, mode: WaitMode) -> Result<Crossover> {
    const PROBE: usize = 1 << 19;
    let pairs: Vec<GaussianPair> = (0..PROBE)
        .map(|i| {
            let t = (i % 1021) as f32 / 1021.0;
            GaussianPair::new(t * 4.0 - 2.0, 0.5 + t, 1.0 - t, 2.0 - t)
        })
        .collect();
    let options = EvalOptions::from(Metrics::CE_KL);
    let mut out = vec![0f32; PROBE * 2];
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
    // The GPU runs are awaited (`mode`: blocking natively, the browser's
    // event loop on the web); timed the same way as `time`.
    async fn gpu_time(
        gpu: &GpuEvaluator,
        p: &[GaussianPair],
        options: EvalOptions,
        mode: WaitMode,
        runs: usize,
    ) -> Result<f64> {
        let mut o = vec![0f32; p.len() * 2];
        gpu.run(p, options, &mut o, mode, 0).await?; // warm-up
        let mut t = Vec::with_capacity(runs);
        for _ in 0..runs {
            let s = Instant::now();
            gpu.run(p, options, &mut o, mode, 0).await?;
            t.push(s.elapsed().as_secs_f64());
        }
        Ok(median(t))
    }
    let (one, one_out) = (pairs.get(..1).unwrap_or_default(), &mut [0f32; 2]);
    let cl = time(&mut || f32::cpu_measures(one, options, one_out), 9)?;
    let gl = gpu_time(gpu, one, options, mode, 5).await?;
    let ct = time(&mut || f32::cpu_measures(&pairs, options, &mut out), 3)?;
    let gt = gpu_time(gpu, &pairs, options, mode, 3).await?;
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

/// Tunables of an [`Evaluator`]; `Options::default()` suits most uses.
#[derive(Clone, Debug, PartialEq)]
pub struct Options {
    /// Largest chunk of pairs per binding and dispatch on the device path
    /// ([`Evaluator::encode`]); clamped to what one storage binding and one
    /// dispatch grid can hold. Default: as large as the device allows.
    pub max_chunk_pairs: u64,
    /// Pairs per chunk on the host path: small enough to stay in cache while
    /// the next chunk is uploaded, large enough to amortise a submission.
    /// Clamped to `max_chunk_pairs`. Default 256 Ki pairs, measured best on lavapipe.
    pub host_chunk_pairs: u64,
    /// Invocations per workgroup (WGSL `override WORKGROUP_SIZE`), clamped to
    /// the device's limits. Default 256.
    pub workgroup_size: u32,
    /// Longest wait for the GPU before giving up with [`Error::Timeout`];
    /// `None` waits indefinitely. Default: 60 s.
    pub timeout: Option<Duration>,
    /// How host data reaches the device on the host path.
    pub transfer: Transfer,
    /// Chunks in flight at once on the host path (2 or more overlap upload,
    /// compute and readback). Default 2.
    pub chunks_in_flight: usize,
    /// Under [`Backend::Auto`], what to do when the GPU fails.
    pub recovery: Recovery,
    /// Under [`Backend::Auto`], send batches of at least this many pairs to
    /// the GPU instead of measuring the crossover at construction (the
    /// environment variable `GAUSSDIV_AUTO_GPU_MIN_PAIRS` does the same).
    pub auto_gpu_min_pairs: Option<usize>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            max_chunk_pairs: u64::MAX,
            host_chunk_pairs: 1 << 18,
            workgroup_size: 256,
            timeout: Some(Duration::from_secs(60)),
            transfer: Transfer::Auto,
            chunks_in_flight: 2,
            recovery: Recovery::default(),
            auto_gpu_min_pairs: None,
        }
    }
}

/// What the GPU of an [`Evaluator`] is and what it has done.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct GpuInfo {
    /// The adapter, when the evaluator created its own device.
    pub adapter: Option<AdapterSummary>,
    /// Why that adapter was chosen (honours `WGPU_BACKEND`,
    /// `WGPU_ADAPTER_NAME`, `WGPU_POWER_PREF`).
    pub adapter_reason: Option<String>,
    /// Whether f64 batches run on this GPU (it has `SHADER_F64` and `SHADER_INT64`).
    pub supports_f64: bool,
    /// Whether the device is known to be lost (every GPU call then fails; under
    /// [`Backend::Auto`] the evaluator recovers).
    pub lost: bool,
    /// Pairs per binding and dispatch on the device path.
    pub chunk_pairs: u64,
    /// Pairs per chunk on the host path.
    pub host_chunk_pairs: u64,
    /// The largest single storage binding the device allows, in bytes.
    pub max_binding_bytes: u64,
    /// Whether the device flushes subnormal results to zero (measured at
    /// construction; WGSL allows it, the browsers' SwiftShader does): rows
    /// with a zero or subnormal value are then recomputed on the CPU.
    pub flushes_subnormals: bool,
    /// Whether the host path maps the storage buffers directly (no staging copies).
    pub maps_storage_directly: bool,
    /// wgpu buffers created so far (storage and staging).
    pub buffers: u64,
    /// Compute pipelines created so far (one per measure set and layout used).
    pub pipelines: u64,
    /// Bind groups created so far.
    pub bind_groups: u64,
    /// Command buffers submitted so far.
    pub submissions: u64,
    /// Full-covariance pairs (or pairwise cells) the GPU kernel has evaluated
    /// so far, and those it left to the CPU mirror: pairs close together
    /// (‖Σ2^-½Σ1Σ2^-½ − I‖_F < ½, the near forms run on the CPU), invalid
    /// input, f32 Bhattacharyya coefficients with a large D_B (above 4, less from
    /// d = 9 on), cells whose loops llvmpipe's iteration limit cut short
    /// (docs/ARCHITECTURE.md §9).
    pub mvn_cells_on_gpu: u64,
    /// See [`GpuInfo::mvn_cells_on_gpu`].
    pub mvn_cells_on_cpu: u64,
}

/// Evaluates batches on the GPU or the CPU, in f32 or f64, in every layout,
/// with one API: [`evaluate_async`](Self::evaluate_async) (the primitive),
/// [`evaluate`](Self::evaluate) (blocking) and [`encode`](Self::encode)
/// (record into an app's command encoder).
///
/// Create it once and reuse it: the GPU pipelines are built and warmed up at
/// construction, and staging buffers are kept across calls. `Send + Sync`;
/// under [`Backend::Auto`] it survives GPU failures (see [`Recovery`]) and
/// records what it did ([`recoveries`](Self::recoveries)).
#[derive(Debug)]
pub struct Evaluator {
    gpu: RwLock<Option<Arc<GpuEvaluator>>>,
    backend: Backend,
    options: Options,
    fallback_reason: Option<String>,
    crossover: Option<Crossover>,
    events: Mutex<Vec<String>>,
}

impl Evaluator {
    /// An evaluator for `backend` with default [`Options`] (blocking; see
    /// [`new_async`](Self::new_async)). [`Backend::Gpu`] without an adapter is
    /// [`Error::NoAdapter`]; [`Backend::Auto`] then uses the CPU (see
    /// [`fallback_reason`](Self::fallback_reason)) and otherwise measures the
    /// crossover here (20–50 ms) unless the options fix it. Native only (on
    /// the web use [`new_async`](Self::new_async)).
    #[cfg(not(target_arch = "wasm32"))]
    pub fn new(backend: Backend) -> Result<Evaluator> {
        pollster::block_on(Self::new_async(backend, Options::default()))
    }

    /// [`new`](Self::new) with options, for async code: the GPU device is
    /// requested and the pipelines prepared without blocking.
    pub async fn new_async(backend: Backend, options: Options) -> Result<Evaluator> {
        let (mut gpu, mut fallback_reason) = match backend {
            Backend::Cpu => (None, None),
            Backend::Gpu => (Some(GpuEvaluator::new_async(&options).await?), None),
            Backend::Auto => match GpuEvaluator::new_async(&options).await {
                Ok(g) => (Some(g), None),
                Err(e) => (None, Some(format!("no usable GPU ({e}); using the CPU"))),
            },
        };
        let mut crossover = None;
        if let (Some(g), Backend::Auto) = (&gpu, backend) {
            let fixed = options.auto_gpu_min_pairs.or_else(|| {
                std::env::var(AUTO_ENV)
                    .ok()
                    .and_then(|v| v.trim().parse().ok())
            });
            let measured = match fixed {
                Some(n) => Ok(Crossover::fixed(n)),
                // Natively the calibration blocks (as it always has); on the
                // web it awaits the browser.
                #[cfg(not(target_arch = "wasm32"))]
                None => pollster::block_on(calibrate(g, WaitMode::Block)),
                #[cfg(target_arch = "wasm32")]
                None => calibrate(g, WaitMode::Offload).await,
            };
            match measured {
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
            options,
            fallback_reason,
            crossover,
            events: Mutex::new(Vec::new()),
        })
    }

    /// A GPU evaluator on the caller's device and queue (cloned handles: the
    /// caller keeps its own), as wgpu apps need for [`encode`](Self::encode):
    /// checks the device's limits and warms the pipeline up (one tiny
    /// blocking dispatch). f64 batches need the device to have been created
    /// with `SHADER_F64` and `SHADER_INT64`. Native only (on the web use
    /// [`from_device_async`](Self::from_device_async)).
    #[cfg(not(target_arch = "wasm32"))]
    pub fn from_device(
        device: &wgpu::Device,
        queue: &wgpu::Queue,
        options: Options,
    ) -> Result<Evaluator> {
        let gpu = GpuEvaluator::from_device_with_options(device, queue, &options)?;
        Ok(Self::on_device(gpu, options))
    }

    /// [`from_device`](Self::from_device) for async code and the web (where
    /// an app passes the `GPUDevice` it already has): the warm-up dispatch
    /// is awaited instead of blocking.
    pub async fn from_device_async(
        device: &wgpu::Device,
        queue: &wgpu::Queue,
        options: Options,
    ) -> Result<Evaluator> {
        let gpu = GpuEvaluator::from_device_async(device, queue, &options).await?;
        Ok(Self::on_device(gpu, options))
    }

    /// The evaluator of [`from_device`](Self::from_device) and
    /// [`from_device_async`](Self::from_device_async): the GPU only.
    fn on_device(gpu: GpuEvaluator, options: Options) -> Evaluator {
        Evaluator {
            gpu: RwLock::new(Some(Arc::new(gpu))),
            backend: Backend::Gpu,
            options,
            fallback_reason: None,
            crossover: None,
            events: Mutex::new(Vec::new()),
        }
    }

    /// Evaluate `request` on `batch` into `out` (blocking): see
    /// [`evaluate_async`](Self::evaluate_async), of which this is the
    /// blocking form (it waits for the GPU on the calling thread). Native
    /// only.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn evaluate<T: Float>(
        &self,
        batch: Batch<'_, T>,
        request: &Request,
        out: &mut [T],
    ) -> Result<()> {
        pollster::block_on(self.dispatch(batch, request, out, WaitMode::Block))
    }

    /// Evaluate `request` on `batch` into `out`, which holds
    /// [`request.values_per_pair()`](Request::values_per_pair) values per
    /// pair (per cell of a pairwise batch, per row of a diagonal one),
    /// row-major. On an error the contents of `out` are unspecified.
    ///
    /// Routing: [`Backend::Cpu`] and [`Backend::Gpu`] as named (the GPU
    /// refuses what it cannot do with [`Error::Unsupported`]);
    /// [`Backend::Auto`] sends the batch to the GPU from the measured
    /// crossover on and when the GPU can run it (f64 needs `SHADER_F64`),
    /// else to the CPU, and recovers from GPU failures per
    /// [`Options::recovery`].
    ///
    /// The waits for the GPU happen on a helper thread and are awaited, so
    /// the executor is never blocked waiting for the GPU; the CPU work of
    /// the call (validation, copies, or the CPU path itself) runs on the
    /// calling task. Dropping the future mid-way is safe.
    pub async fn evaluate_async<T: Float>(
        &self,
        batch: Batch<'_, T>,
        request: &Request,
        out: &mut [T],
    ) -> Result<()> {
        self.dispatch(batch, request, out, WaitMode::Offload).await
    }

    /// The precision's path: f32 or f64 (identity casts).
    async fn dispatch<T: Float>(
        &self,
        batch: Batch<'_, T>,
        request: &Request,
        out: &mut [T],
        mode: WaitMode,
    ) -> Result<()> {
        let cast_err = || Error::Gpu("internal: precision cast".into());
        match T::PRECISION {
            Precision::F32 => {
                let b = batch.cast::<f32>().ok_or_else(cast_err)?;
                let o = bytemuck::try_cast_slice_mut(out).map_err(|_| cast_err())?;
                self.run(b, request, o, mode).await
            }
            Precision::F64 => {
                let b = batch.cast::<f64>().ok_or_else(cast_err)?;
                let o = bytemuck::try_cast_slice_mut(out).map_err(|_| cast_err())?;
                self.run(b, request, o, mode).await
            }
        }
    }

    /// Record the evaluation of a batch that lives on the device into the
    /// caller's `encoder`: no submit, no host copies (f32). Results are in
    /// `batch.output` once the app submits the encoder.
    ///
    /// Every misuse is [`Error::InvalidBuffer`] (checked here, so wgpu never
    /// sees an invalid binding): a slice without `STORAGE` usage, a
    /// misaligned offset, a slice too small for its count, a count of 0, an
    /// output that is also an input. Counts beyond one binding or dispatch
    /// are split. Bind groups of the pair layouts are cached: after the first
    /// call with the same buffers and counts, a call creates no wgpu object.
    ///
    /// Contract of the device path: nothing is read back, so invalid inputs
    /// give NaN whatever the request's policy; means and μ1 − μ2 must not be
    /// subnormal (a device may flush them; subnormal σ is exact). Needs a GPU
    /// ([`Error::Unsupported`] on [`Backend::Cpu`]).
    pub fn encode(
        &self,
        encoder: &mut wgpu::CommandEncoder,
        batch: DeviceBatch<'_>,
        request: &Request,
    ) -> Result<()> {
        let gpu = self.gpu().ok_or_else(|| {
            Error::Unsupported("encode needs a GPU; this evaluator runs on the CPU".into())
        })?;
        gpu.encode(encoder, batch, request)
    }

    /// Evaluate on the CPU the rows of `out` that hold a NaN, from the host
    /// copy of a full-covariance batch ([`Batch::Mvn`], [`Batch::MvnPairwise`]):
    /// the rows the device path ([`DeviceInput::Mvn`](crate::DeviceInput::Mvn))
    /// leaves to the CPU. The other rows are kept bit for bit; `request` is
    /// the one given to [`encode`](Self::encode), and an invalid pair follows
    /// its policy ([`OnInvalid::Error`](crate::OnInvalid::Error): an error
    /// naming the first). Returns how many rows were evaluated. Works on any
    /// backend (it runs on the CPU).
    pub fn complete<T: Float>(
        &self,
        batch: Batch<'_, T>,
        request: &Request,
        out: &mut [T],
    ) -> Result<usize> {
        crate::mvn::complete(batch, request, out)
    }

    /// The backend requested.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The GPU in use, if any: adapter, capabilities, limits and counts of
    /// the wgpu objects created.
    pub fn gpu_info(&self) -> Option<GpuInfo> {
        self.gpu().map(|g| g.info())
    }

    /// The wgpu device and queue of the GPU in use, if any (cloned handles),
    /// to create buffers for [`encode`](Self::encode).
    pub fn device(&self) -> Option<(wgpu::Device, wgpu::Queue)> {
        self.gpu().map(|g| (g.device().clone(), g.queue().clone()))
    }

    /// Under [`Backend::Auto`] without a GPU: why.
    pub fn fallback_reason(&self) -> Option<&str> {
        self.fallback_reason.as_deref()
    }

    /// What [`Backend::Auto`] measured (or was told), if it has a GPU to choose.
    pub fn crossover(&self) -> Option<Crossover> {
        self.crossover
    }

    /// What [`Backend::Auto`] did after GPU failures, oldest first (e.g.
    /// "GPU failed (…); recreated the GPU evaluator" or "…; using the CPU").
    pub fn recoveries(&self) -> Vec<String> {
        match self.events.lock() {
            Ok(e) => e.clone(),
            Err(p) => p.into_inner().clone(),
        }
    }

    /// Whether a batch of `n` pairs (f32 measures) goes to the GPU.
    pub fn uses_gpu_for(&self, n: usize) -> bool {
        self.gpu_for::<f32>(n).is_some()
    }

    /// Change the longest wait for the GPU (`None`: wait indefinitely).
    pub fn set_timeout(&self, timeout: Option<Duration>) {
        if let Some(g) = self.gpu() {
            g.set_timeout(timeout);
        }
    }

    /// Drop the bind groups that [`encode`](Self::encode) caches (each keeps
    /// its buffers alive; at most 16 are kept): call it after dropping large
    /// buffers used with `encode` to release their memory at once.
    pub fn clear_cache(&self) {
        if let Some(g) = self.gpu() {
            g.clear_encode_cache();
        }
    }

    /// Make the next GPU wait or mapping fail (fault tests only).
    #[cfg(feature = "test-hooks")]
    #[doc(hidden)]
    pub fn inject_fault(&self, fault: crate::gpu::Fault) {
        if let Some(g) = self.gpu() {
            g.inject_fault(fault);
        }
    }

    fn gpu(&self) -> Option<Arc<GpuEvaluator>> {
        match self.gpu.read() {
            Ok(g) => g.clone(),
            Err(p) => p.into_inner().clone(),
        }
    }

    /// The GPU a batch of `n` pairs in precision `T` goes to, if any.
    /// Batches below the crossover are decided without touching the lock.
    fn gpu_for<T: Elem>(&self, n: usize) -> Option<Arc<GpuEvaluator>> {
        let wanted = match self.backend {
            Backend::Cpu => false,
            Backend::Gpu => true,
            Backend::Auto => self.crossover.is_some_and(|c| n >= c.gpu_min_pairs),
        };
        let g = if wanted { self.gpu()? } else { return None };
        // Backend::Gpu goes to the GPU whatever it supports: it says what it lacks.
        (self.backend == Backend::Gpu || T::gpu_can(&g)).then_some(g)
    }

    /// One batch in one precision: routed, run, recovered.
    async fn run<T: Elem>(
        &self,
        batch: Batch<'_, T>,
        request: &Request,
        out: &mut [T],
        mode: WaitMode,
    ) -> Result<()> {
        let call = Call {
            options: request.options()?,
            gradients: request.is_gradients(),
            k: request.values_per_pair(),
            mode,
        };
        if call.gradients && matches!(batch, Batch::Pairwise { .. } | Batch::Diagonal { .. }) {
            return Err(Error::Unsupported(
                "gradients are available for arrays of pairs and their columns".into(),
            ));
        }
        let mvn = match batch {
            Batch::Mvn(m) => Some(crate::mvn::Cells::Pairs(m)),
            Batch::MvnPairwise { p, q } => Some(crate::mvn::Cells::Pairwise(p, q)),
            _ => None,
        };
        if let Some(cells) = mvn {
            if call.gradients {
                return Err(Error::Unsupported(
                    "gradients are not available for full-covariance pairs".into(),
                ));
            }
            // Auto keeps full covariance on the CPU (docs/ARCHITECTURE.md §9);
            // Backend::Gpu runs the kernel (on_gpu).
            if self.backend != Backend::Gpu {
                return T::cpu_mvn(cells, call.options, out);
            }
        }
        let Some(g) = self.gpu_for::<T>(batch.elements()) else {
            return on_cpu(batch, call, out);
        };
        if !T::gpu_can(&g) {
            // Backend::Gpu in f64 without the device features: the error names what is missing.
            g.require_f64()?;
        }
        match on_gpu(&g, batch, call, out).await {
            Err(e) if self.backend == Backend::Auto && is_gpu_failure(&e) => {
                self.recover(&g, e, batch, call, out).await
            }
            r => r,
        }
    }

    /// After a GPU failure under Auto: the batch on a recreated GPU
    /// evaluator, or on the CPU from now on.
    async fn recover<T: Elem>(
        &self,
        failed: &Arc<GpuEvaluator>,
        error: Error,
        batch: Batch<'_, T>,
        call: Call,
        out: &mut [T],
    ) -> Result<()> {
        if self.options.recovery == Recovery::Recreate {
            match GpuEvaluator::new_async(&self.options).await {
                Ok(new) => {
                    let new = Arc::new(new);
                    if on_gpu(&new, batch, call, out).await.is_ok() {
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
        on_cpu(batch, call, out)
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
}

/// How one call runs, whatever its layout.
#[derive(Clone, Copy)]
struct Call {
    options: EvalOptions,
    gradients: bool,
    /// Output values per pair ([`Request::values_per_pair`]).
    k: usize,
    mode: WaitMode,
}

/// A batch on the GPU.
async fn on_gpu<T: Elem>(
    g: &GpuEvaluator,
    batch: Batch<'_, T>,
    call: Call,
    out: &mut [T],
) -> Result<()> {
    let (o, grads, mode) = (call.options, call.gradients, call.mode);
    match batch {
        Batch::Pairs(pairs) => T::gpu_pairs(g, pairs, o, grads, out, mode).await,
        Batch::Columns(columns) => {
            let block = (g.host_chunk_pairs() as usize).max(1);
            let mut pairs = Vec::new();
            for (range, dst) in column_blocks(columns, call.k, block, out)? {
                interleave(columns, range.clone(), &mut pairs);
                T::gpu_pairs(g, &pairs, o, grads, dst, mode)
                    .await
                    .map_err(|e| absolute_index(e, range.start))?;
            }
            Ok(())
        }
        Batch::Pairwise { p, q } => {
            let k = call.k;
            if pairwise_cells(p.len(), q.len(), k, out.len())? == 0 {
                return Ok(());
            }
            if let Some(f) = T::gpu_pairwise(g, p, q, o, out, mode) {
                return f.await;
            }
            let mut pairs = Vec::new();
            for (cells, dst) in pairwise_blocks(q.len(), k, out) {
                form_cells(p, q, cells.clone(), &mut pairs);
                T::gpu_pairs(g, &pairs, o, false, dst, mode)
                    .await
                    .map_err(|e| absolute_index(e, cells.start))?;
            }
            Ok(())
        }
        Batch::Diagonal { pairs, dims } => T::gpu_diagonal(g, pairs, dims, o, out, mode).await,
        Batch::Mvn(m) => g.run_mvn(crate::mvn::Cells::Pairs(m), o, out, mode).await,
        Batch::MvnPairwise { p, q } => {
            g.run_mvn(crate::mvn::Cells::Pairwise(p, q), o, out, mode)
                .await
        }
    }
}

/// A batch on the CPU; under the error policy, a NaN in the output (the
/// mark of an invalid pair) triggers the exact scan that names it.
fn on_cpu<T: Elem>(batch: Batch<'_, T>, call: Call, out: &mut [T]) -> Result<()> {
    let (o, k) = (call.options, call.k);
    let pairs_path = |pairs: &[GaussianPair<T>], dst: &mut [T], base: usize| -> Result<()> {
        if call.gradients {
            T::cpu_gradients(pairs, o, dst)?;
        } else {
            T::cpu_measures(pairs, o, dst)?;
        }
        if o.on_invalid == OnInvalid::Error && any_nan(dst, k) {
            T::validate(pairs, o, base)?;
        }
        Ok(())
    };
    match batch {
        Batch::Pairs(pairs) => pairs_path(pairs, out, 0),
        // Measures and gradients read the columns in place; only a block with
        // an invalid pair (under the error policy) is interleaved, to name it.
        Batch::Columns(columns) => {
            columns_len(columns)?;
            let nan_rows = T::cpu_columns(columns, o, call.gradients, out)?;
            if o.on_invalid == OnInvalid::Error && nan_rows {
                let mut pairs = Vec::new();
                for (range, dst) in column_blocks(columns, k, CPU_BLOCK, out)? {
                    if any_nan(dst, k) {
                        interleave(columns, range.clone(), &mut pairs);
                        T::validate(&pairs, o, range.start)?;
                    }
                }
            }
            Ok(())
        }
        Batch::Pairwise { p, q } => {
            if pairwise_cells(p.len(), q.len(), k, out.len())? == 0 {
                return Ok(());
            }
            let mut pairs = Vec::new();
            for (cells, dst) in pairwise_blocks(q.len(), k, out) {
                form_cells(p, q, cells.clone(), &mut pairs);
                pairs_path(&pairs, dst, cells.start)?;
            }
            Ok(())
        }
        Batch::Mvn(m) => T::cpu_mvn(crate::mvn::Cells::Pairs(m), o, out),
        Batch::MvnPairwise { p, q } => T::cpu_mvn(crate::mvn::Cells::Pairwise(p, q), o, out),
        Batch::Diagonal { pairs, dims } => {
            T::cpu_diagonal(pairs, dims, o, out)?;
            if o.on_invalid == OnInvalid::Error && any_nan(out, k) {
                T::validate(pairs, o, 0).map_err(|e| crate::diagonal::element_error(e, dims))?;
            }
            Ok(())
        }
    }
}

/// Pairs per block when columns are interleaved on the CPU.
const CPU_BLOCK: usize = 1 << 16;

/// Pairs formed per block of a pairwise batch (bounded host memory whatever N × M).
const PAIRWISE_BLOCK: usize = 1 << 20;

/// The blocks of a structure-of-arrays batch: pair ranges of at most
/// `block` pairs and their output rows, after checking the lengths.
fn column_blocks<'o, T: Float>(
    columns: [&[T]; 4],
    k: usize,
    block: usize,
    out: &'o mut [T],
) -> Result<impl Iterator<Item = (std::ops::Range<usize>, &'o mut [T])>> {
    let n = columns_len(columns)?;
    crate::cpu::check_len("output", n.saturating_mul(k), out.len())?;
    let block = block.max(1);
    Ok(out
        .chunks_mut((block * k).max(1))
        .enumerate()
        .map(move |(b, dst)| (b * block..(b * block + dst.len() / k.max(1)), dst)))
}

/// Pairs `range` of the columns, interleaved into `pairs`.
fn interleave<T: Float>(
    columns: [&[T]; 4],
    range: std::ops::Range<usize>,
    pairs: &mut Vec<GaussianPair<T>>,
) {
    pairs.clear();
    let [a, b, c, d] = columns.map(|c| c.get(range.clone()).unwrap_or_default());
    pairs.extend(
        a.iter()
            .zip(b)
            .zip(c.iter().zip(d))
            .map(|((&a, &b), (&c, &d))| GaussianPair::new(a, b, c, d)),
    );
}

/// The blocks of a pairwise batch: cell ranges (whole rows of M cells when
/// they fit a block, column ranges of one row otherwise) and their output.
fn pairwise_blocks<T: Float>(
    m: usize,
    k: usize,
    out: &mut [T],
) -> impl Iterator<Item = (std::ops::Range<usize>, &mut [T])> {
    let cells_per_block = PAIRWISE_BLOCK.checked_div(m).map_or(1, |r| r.max(1) * m);
    out.chunks_mut((cells_per_block * k).max(1))
        .enumerate()
        .map(move |(b, dst)| {
            let start = b * cells_per_block;
            (start..start + dst.len() / k.max(1), dst)
        })
}

/// The pairs of `cells` (row-major indices i·M + j) into `pairs`.
fn form_cells<T: Float>(
    p: &[crate::Gaussian<T>],
    q: &[crate::Gaussian<T>],
    cells: std::ops::Range<usize>,
    pairs: &mut Vec<GaussianPair<T>>,
) {
    pairs.clear();
    pairs.extend(cells.filter_map(|c| cell_pair(p, q, c)));
}

/// Errors after which the GPU, not the input, is to blame.
fn is_gpu_failure(e: &Error) -> bool {
    matches!(
        e,
        Error::DeviceLost(_) | Error::Timeout { .. } | Error::Map(_) | Error::Gpu(_)
    )
}

/// Whether any row of `out` (`k` values each) starts with NaN.
fn any_nan<T: Float>(out: &[T], k: usize) -> bool {
    let k = k.max(1);
    let nan = |v: &T| Into::<f64>::into(*v).is_nan();
    if out.len() < 1 << 16 {
        out.iter().step_by(k).any(nan)
    } else {
        use rayon::prelude::*;
        out.par_chunks(k << 12)
            .any(|c| c.iter().step_by(k).any(nan))
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
