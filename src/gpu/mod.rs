//! GPU backend: the WGSL kernel on any wgpu device.
//!
//! [`GpuEvaluator`] borrows nothing and owns a clone of a device and queue
//! (wgpu handles are reference-counted), so it can be built on an app's own
//! device with [`GpuEvaluator::from_device`] or on a device of its own with
//! [`GpuEvaluator::new`]. Host-memory evaluation goes through
//! [`evaluate`](GpuEvaluator::evaluate) (blocking) or
//! [`evaluate_async`](GpuEvaluator::evaluate_async) (never blocks the
//! executor); device-resident data through [`encode`](GpuEvaluator::encode).

pub mod context;
pub(crate) mod kernel;

use crate::cpu;
use crate::error::{Error, Result};
use crate::pair::{Divergences, EvalOptions, GaussianPair, Metric, Metrics};
use crate::validate::{self, OnInvalid};
use context::AdapterSummary;
use kernel::{grid, Counters, Kernel, Layout, PAIR_BYTES};
use rayon::prelude::*;
use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::pin::pin;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

pub use kernel::SHADER_SOURCE;

/// Smallest staging capacity, in pairs (buffers grow by powers of two from here).
const MIN_CAPACITY: u64 = 4096;

/// Chunk sizes are multiples of this many pairs, so that chunk offsets in
/// caller buffers meet any `min_storage_buffer_offset_alignment` (≤ 256 bytes).
const CHUNK_GRANULE: u64 = 256;

/// Tunables of a [`GpuEvaluator`].
#[derive(Clone, Debug, PartialEq)]
pub struct GpuOptions {
    /// Largest chunk of pairs per binding and dispatch on the device path
    /// ([`GpuEvaluator::encode`]); clamped to what one storage binding and one
    /// dispatch grid can hold. Default: as large as the device allows.
    pub max_chunk_pairs: u64,
    /// Pairs per chunk on the host path ([`GpuEvaluator::evaluate`]): small
    /// enough to stay in cache while the next chunk is uploaded, large enough
    /// to amortise a submission. Clamped to `max_chunk_pairs`. Default 256 Ki
    /// pairs (4 MiB in, 3 MiB out per chunk), measured best on lavapipe.
    pub host_chunk_pairs: u64,
    /// Invocations per workgroup (WGSL `override WORKGROUP_SIZE`), clamped to
    /// the device's limits. Default 256.
    pub workgroup_size: u32,
    /// What to do with invalid pairs on the host path. Default: error.
    pub on_invalid: OnInvalid,
    /// Longest wait for the GPU before giving up with [`Error::DeviceLost`];
    /// `None` waits indefinitely. Default: 60 s.
    pub timeout: Option<Duration>,
    /// How host data reaches the device on the host path.
    pub transfer: Transfer,
    /// Chunks in flight at once on the host path (2 or more overlap upload,
    /// compute and readback). Default 2.
    pub chunks_in_flight: usize,
}

/// How the host path moves data to and from the device.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Transfer {
    /// Map the storage buffers themselves when the device has
    /// `MAPPABLE_PRIMARY_BUFFERS` and its memory is the host's (a CPU or
    /// integrated adapter); reused staging buffers otherwise.
    #[default]
    Auto,
    /// Reused mapped staging buffers and copies on the device.
    Staging,
    /// Mapped storage buffers (requires `MAPPABLE_PRIMARY_BUFFERS`; falls back
    /// to staging without it).
    MappedStorage,
}

impl Default for GpuOptions {
    fn default() -> Self {
        GpuOptions {
            max_chunk_pairs: u64::MAX,
            host_chunk_pairs: 1 << 18,
            workgroup_size: 256,
            on_invalid: OnInvalid::Error,
            timeout: Some(Duration::from_secs(60)),
            transfer: Transfer::Auto,
            chunks_in_flight: 2,
        }
    }
}

/// Counts of the wgpu objects an evaluator has created since it was built.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GpuStats {
    /// Buffers created (storage and staging).
    pub buffers: u64,
    /// Compute pipelines created (one per metric set used).
    pub pipelines: u64,
    /// Bind groups created.
    pub bind_groups: u64,
    /// Command buffers submitted.
    pub submissions: u64,
}

/// One set of buffers for a chunk in flight.
struct Slot {
    input: wgpu::Buffer,
    output: wgpu::Buffer,
    /// Staging for the upload; `None` when `input` itself is mappable.
    upload: Option<wgpu::Buffer>,
    /// Staging for the readback; `None` when `output` itself is mappable.
    download: Option<wgpu::Buffer>,
    last_submission: Option<wgpu::SubmissionIndex>,
    /// Bind groups by (pairs, values per pair): a full chunk and the tail.
    bind_groups: HashMap<(u64, usize), wgpu::BindGroup>,
}

struct Scratch {
    capacity: u64,
    slots: Vec<Slot>,
}

/// Four device arrays of f32 — μ1, σ1, μ2, σ2 — the structure-of-arrays
/// input of [`GpuEvaluator::encode_soa`]. Each slice starts at its first value.
#[derive(Clone, Copy, Debug)]
pub struct SoaSlices<'a> {
    /// Means of p1.
    pub mu1: wgpu::BufferSlice<'a>,
    /// Standard deviations of p1.
    pub sigma1: wgpu::BufferSlice<'a>,
    /// Means of p2.
    pub mu2: wgpu::BufferSlice<'a>,
    /// Standard deviations of p2.
    pub sigma2: wgpu::BufferSlice<'a>,
}

/// Input bindings of one dispatch: buffer and byte offset of each array.
#[derive(Clone, PartialEq, Eq, Hash)]
enum BindInputs {
    Pairs(wgpu::Buffer, u64),
    Soa([(wgpu::Buffer, u64); 4]),
}

impl BindInputs {
    /// The same inputs, `pairs` pairs further on.
    fn advanced(&self, pairs: u64) -> BindInputs {
        match self {
            BindInputs::Pairs(b, o) => BindInputs::Pairs(b.clone(), o + pairs * PAIR_BYTES),
            BindInputs::Soa(a) => BindInputs::Soa(a.clone().map(|(b, o)| (b, o + pairs * 4))),
        }
    }
}

/// Key of a cached bind group on the device path.
#[derive(Clone, PartialEq, Eq, Hash)]
struct BindKey {
    inputs: BindInputs,
    output: wgpu::Buffer,
    output_offset: u64,
    pairs: u64,
    k: usize,
}

/// How a wait for the GPU is carried out.
#[derive(Clone, Copy, PartialEq, Eq)]
enum WaitMode {
    /// Poll the device on this thread (blocking API).
    Block,
    /// Poll the device on a helper thread and await the outcome (async API).
    Offload,
}

type MapOutcome = Arc<Mutex<Option<core::result::Result<(), wgpu::BufferAsyncError>>>>;

/// Evaluates batches of Gaussian pairs with the WGSL kernel.
///
/// Create it once and reuse it: the pipeline is built and warmed up at
/// construction, and staging and storage buffers are kept and reused across
/// calls (they grow by size class and are never shrunk). It is `Send + Sync`;
/// concurrent calls on one evaluator are serialised on its buffers.
pub struct GpuEvaluator {
    device: wgpu::Device,
    queue: wgpu::Queue,
    adapter: Option<AdapterSummary>,
    reason: Option<String>,
    kernel: Kernel,
    options: GpuOptions,
    chunk_pairs: u64,
    host_chunk_pairs: u64,
    max_groups_x: u32,
    offset_alignment: u64,
    max_binding: u64,
    mapped_storage: bool,
    slots: usize,
    scratch: futures_intrusive::sync::Mutex<Option<Scratch>>,
    encode_cache: Mutex<HashMap<BindKey, wgpu::BindGroup>>,
    counters: Counters,
}

impl std::fmt::Debug for GpuEvaluator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GpuEvaluator")
            .field(
                "adapter",
                &self.adapter.as_ref().map(|a| a.info.name.clone()),
            )
            .field("chunk_pairs", &self.chunk_pairs)
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

fn block_on<F: Future>(f: F) -> F::Output {
    pollster::block_on(f)
}

/// Polls a future once; `Some` if it was ready.
fn now<F: Future>(f: F) -> Option<F::Output> {
    let mut f = pin!(f);
    let mut cx = Context::from_waker(Waker::noop());
    match f.as_mut().poll(&mut cx) {
        Poll::Ready(v) => Some(v),
        Poll::Pending => None,
    }
}

impl GpuEvaluator {
    /// An evaluator on a device of its own, on the adapter chosen by
    /// [`context::choose_adapter`] (honours `WGPU_BACKEND`, `WGPU_ADAPTER_NAME`,
    /// `WGPU_POWER_PREF`). Blocking; see [`GpuEvaluator::new_async`].
    pub fn new() -> Result<GpuEvaluator> {
        block_on(Self::new_async(GpuOptions::default()))
    }

    /// [`GpuEvaluator::new`] with options.
    pub fn with_options(options: GpuOptions) -> Result<GpuEvaluator> {
        block_on(Self::new_async(options))
    }

    /// Create an evaluator with its own instance, adapter and device.
    pub async fn new_async(options: GpuOptions) -> Result<GpuEvaluator> {
        let instance = context::instance();
        let (adapter, reason) = context::choose_adapter(&instance).await?;
        let (device, queue) = context::request_device(&adapter).await?;
        // Our own device: report errors through our error scopes, never by panicking.
        device.on_uncaptured_error(Arc::new(|e| {
            eprintln!("gaussdiv: uncaptured wgpu error: {e}");
        }));
        let mut ev = Self::build(&device, &queue, options)?;
        ev.adapter = Some(context::summarize(&adapter));
        ev.reason = Some(reason);
        ev.warm_up()?;
        Ok(ev)
    }

    /// An evaluator on the caller's device and queue (cloned handles: the
    /// caller keeps its own). Checks the device's limits and warms the
    /// pipeline up (one tiny blocking dispatch).
    pub fn from_device(device: &wgpu::Device, queue: &wgpu::Queue) -> Result<GpuEvaluator> {
        Self::from_device_with_options(device, queue, GpuOptions::default())
    }

    /// [`GpuEvaluator::from_device`] with options.
    pub fn from_device_with_options(
        device: &wgpu::Device,
        queue: &wgpu::Queue,
        options: GpuOptions,
    ) -> Result<GpuEvaluator> {
        let ev = Self::build(device, queue, options)?;
        ev.warm_up()?;
        Ok(ev)
    }

    fn build(
        device: &wgpu::Device,
        queue: &wgpu::Queue,
        options: GpuOptions,
    ) -> Result<GpuEvaluator> {
        let limits = device.limits();
        let mut missing = Vec::new();
        if limits.max_storage_buffers_per_shader_stage < 5 {
            missing.push(format!(
                "max_storage_buffers_per_shader_stage is {} (need 5)",
                limits.max_storage_buffers_per_shader_stage
            ));
        }
        if limits.max_compute_workgroups_per_dimension == 0
            || limits.max_compute_invocations_per_workgroup == 0
        {
            missing.push("the device has no compute support".to_string());
        }
        let max_binding = limits
            .max_storage_buffer_binding_size
            .min(limits.max_buffer_size);
        if max_binding < CHUNK_GRANULE * PAIR_BYTES {
            missing.push(format!(
                "max_storage_buffer_binding_size is {} bytes (need at least {})",
                max_binding,
                CHUNK_GRANULE * PAIR_BYTES
            ));
        }
        if !missing.is_empty() {
            return Err(Error::Unsupported(missing.join("; ")));
        }
        let wg_limit = limits
            .max_compute_invocations_per_workgroup
            .min(limits.max_compute_workgroup_size_x);
        let workgroup_size = options.workgroup_size.clamp(1, wg_limit.max(1));
        let binding_pairs = (max_binding / PAIR_BYTES) / CHUNK_GRANULE * CHUNK_GRANULE;
        // One chunk is one dispatch: at most max_x × max_x workgroups in the 2-D grid.
        let max_x = u64::from(limits.max_compute_workgroups_per_dimension);
        let grid_pairs =
            (max_x * max_x * u64::from(workgroup_size)) / CHUNK_GRANULE * CHUNK_GRANULE;
        let chunk_pairs = options.max_chunk_pairs.clamp(
            CHUNK_GRANULE,
            binding_pairs.min(grid_pairs).max(CHUNK_GRANULE),
        ) / CHUNK_GRANULE
            * CHUNK_GRANULE;
        // The host path's output buffers hold any metric set: every measure
        // of a chunk must fit one binding.
        let out_binding_pairs =
            (max_binding / (4 * Metric::COUNT as u64)) / CHUNK_GRANULE * CHUNK_GRANULE;
        let host_chunk_pairs = options.host_chunk_pairs.clamp(
            CHUNK_GRANULE,
            chunk_pairs.min(out_binding_pairs).max(CHUNK_GRANULE),
        ) / CHUNK_GRANULE
            * CHUNK_GRANULE;
        let kernel = Kernel::new(device, workgroup_size);
        let counters = Counters::default();
        let can_map = device
            .features()
            .contains(wgpu::Features::MAPPABLE_PRIMARY_BUFFERS);
        let unified = matches!(
            device.adapter_info().device_type,
            wgpu::DeviceType::Cpu | wgpu::DeviceType::IntegratedGpu
        );
        let mapped_storage = can_map
            && match options.transfer {
                Transfer::Auto => unified,
                Transfer::MappedStorage => true,
                Transfer::Staging => false,
            };
        Ok(GpuEvaluator {
            device: device.clone(),
            queue: queue.clone(),
            adapter: None,
            reason: None,
            kernel,
            options: GpuOptions {
                workgroup_size,
                max_chunk_pairs: chunk_pairs,
                host_chunk_pairs,
                ..options
            },
            chunk_pairs,
            host_chunk_pairs,
            max_groups_x: limits.max_compute_workgroups_per_dimension,
            offset_alignment: u64::from(limits.min_storage_buffer_offset_alignment.max(4)),
            max_binding,
            mapped_storage,
            slots: options.chunks_in_flight.clamp(1, 8),
            scratch: futures_intrusive::sync::Mutex::new(None, false),
            encode_cache: Mutex::new(HashMap::new()),
            counters,
        })
    }

    /// Whether the host path maps the storage buffers directly (no staging copies).
    pub fn maps_storage_directly(&self) -> bool {
        self.mapped_storage
    }

    /// Compile the pipelines of the common metric sets and run them once, so
    /// that drivers that compile at first dispatch (llvmpipe) do it now.
    fn warm_up(&self) -> Result<()> {
        let pair = [GaussianPair::new(0.0, 1.0, 1.0, 2.0)];
        for metrics in [Metrics::ALL, Metrics::CE_KL] {
            let mut out = vec![0.0f32; metrics.len()];
            self.evaluate_metrics_into(&pair, metrics, &mut out)?;
        }
        Ok(())
    }

    /// The wgpu device this evaluator runs on.
    pub fn device(&self) -> &wgpu::Device {
        &self.device
    }

    /// The wgpu queue this evaluator submits to.
    pub fn queue(&self) -> &wgpu::Queue {
        &self.queue
    }

    /// The adapter, when the evaluator created its own device.
    pub fn adapter(&self) -> Option<&AdapterSummary> {
        self.adapter.as_ref()
    }

    /// Why that adapter was chosen, when the evaluator created its own device.
    pub fn adapter_reason(&self) -> Option<&str> {
        self.reason.as_deref()
    }

    /// The options in effect (after clamping to the device's limits).
    pub fn options(&self) -> &GpuOptions {
        &self.options
    }

    /// Pairs per binding and dispatch on the device path (at most: with
    /// more than four measures per pair, the output binding limits chunks
    /// to fewer pairs).
    pub fn chunk_pairs(&self) -> u64 {
        self.chunk_pairs
    }

    /// Pairs per chunk on the host path.
    pub fn host_chunk_pairs(&self) -> u64 {
        self.host_chunk_pairs
    }

    /// Counts of wgpu objects created so far.
    pub fn stats(&self) -> GpuStats {
        let c = &self.counters;
        GpuStats {
            buffers: c.buffers.load(Ordering::Relaxed),
            pipelines: c.pipelines.load(Ordering::Relaxed),
            bind_groups: c.bind_groups.load(Ordering::Relaxed),
            submissions: c.submissions.load(Ordering::Relaxed),
        }
    }

    /// Evaluate cross-entropy, KL and entropy of every pair (blocking).
    ///
    /// Invalid pairs are an [`Error::InvalidInput`] naming the first one,
    /// unless the evaluator was built with [`OnInvalid::Nan`].
    pub fn evaluate(&self, pairs: &[GaussianPair]) -> Result<Vec<Divergences>> {
        let mut out = vec![Divergences::default(); pairs.len()];
        block_on(self.run(
            pairs,
            Metrics::ALL.into(),
            bytemuck::cast_slice_mut(&mut out),
            WaitMode::Block,
            0,
        ))?;
        Ok(out)
    }

    /// [`evaluate`](Self::evaluate) for async code: the waits for the GPU
    /// happen on a helper thread, so the executor is never blocked.
    pub async fn evaluate_async(&self, pairs: &[GaussianPair]) -> Result<Vec<Divergences>> {
        let mut out = vec![Divergences::default(); pairs.len()];
        self.run(
            pairs,
            Metrics::ALL.into(),
            bytemuck::cast_slice_mut(&mut out),
            WaitMode::Offload,
            0,
        )
        .await?;
        Ok(out)
    }

    /// Evaluate the selected metrics into `out` (`pairs.len() × metrics.len()`
    /// values, row-major, metrics in canonical order). Blocking.
    pub fn evaluate_metrics_into(
        &self,
        pairs: &[GaussianPair],
        metrics: Metrics,
        out: &mut [f32],
    ) -> Result<()> {
        block_on(self.run(pairs, metrics.into(), out, WaitMode::Block, 0))
    }

    /// [`evaluate_metrics_into`](Self::evaluate_metrics_into) for async code.
    pub async fn evaluate_metrics_into_async(
        &self,
        pairs: &[GaussianPair],
        metrics: Metrics,
        out: &mut [f32],
    ) -> Result<()> {
        self.run(pairs, metrics.into(), out, WaitMode::Offload, 0)
            .await
    }

    /// Evaluate `options.metrics` of pairs in the parameterisation
    /// `options.param` (the `sigma` fields of each pair hold `a1`, `a2`; see
    /// [`crate::Param`]) into `out` (`pairs.len() × options.metrics.len()`
    /// values, row-major, metrics in canonical order). Blocking. Inputs are
    /// validated for the parameterisation (see [`crate::validate::check_param`]).
    pub fn evaluate_with(
        &self,
        pairs: &[GaussianPair],
        options: EvalOptions,
        out: &mut [f32],
    ) -> Result<()> {
        block_on(self.run(pairs, options, out, WaitMode::Block, 0))
    }

    /// [`evaluate_with`](Self::evaluate_with) for async code.
    pub async fn evaluate_with_async(
        &self,
        pairs: &[GaussianPair],
        options: EvalOptions,
        out: &mut [f32],
    ) -> Result<()> {
        self.run(pairs, options, out, WaitMode::Offload, 0).await
    }

    /// Cross-entropy, KL and entropy of pairs kept as a structure of arrays
    /// (`mu1[i], sigma1[i], mu2[i], sigma2[i]` is pair `i`). Blocking.
    pub fn evaluate_soa(
        &self,
        mu1: &[f32],
        sigma1: &[f32],
        mu2: &[f32],
        sigma2: &[f32],
    ) -> Result<Vec<Divergences>> {
        let mut out = vec![Divergences::default(); mu1.len()];
        block_on(self.run_soa(
            [mu1, sigma1, mu2, sigma2],
            Metrics::ALL.into(),
            bytemuck::cast_slice_mut(&mut out),
            WaitMode::Block,
        ))?;
        Ok(out)
    }

    /// [`evaluate_soa`](Self::evaluate_soa) with a metric selection, into `out`
    /// (`len × metrics.len()` values). Blocking.
    pub fn evaluate_soa_metrics_into(
        &self,
        columns: [&[f32]; 4],
        metrics: Metrics,
        out: &mut [f32],
    ) -> Result<()> {
        block_on(self.run_soa(columns, metrics.into(), out, WaitMode::Block))
    }

    /// [`evaluate_soa_metrics_into`](Self::evaluate_soa_metrics_into) with a
    /// parameterisation: the columns are μ1, a1, μ2, a2. Blocking.
    pub fn evaluate_soa_with(
        &self,
        columns: [&[f32]; 4],
        options: EvalOptions,
        out: &mut [f32],
    ) -> Result<()> {
        block_on(self.run_soa(columns, options, out, WaitMode::Block))
    }

    /// [`evaluate_soa_metrics_into`](Self::evaluate_soa_metrics_into) for async code.
    pub async fn evaluate_soa_metrics_into_async(
        &self,
        columns: [&[f32]; 4],
        metrics: Metrics,
        out: &mut [f32],
    ) -> Result<()> {
        self.run_soa(columns, metrics.into(), out, WaitMode::Offload)
            .await
    }

    async fn run_soa(
        &self,
        columns: [&[f32]; 4],
        options: EvalOptions,
        out: &mut [f32],
        mode: WaitMode,
    ) -> Result<()> {
        let n = columns[0].len();
        for c in &columns[1..] {
            if c.len() != n {
                return Err(Error::LengthMismatch {
                    what: "structure-of-arrays column",
                    expected: n as u64,
                    got: c.len() as u64,
                });
            }
        }
        let k = options.metrics.len();
        if n.checked_mul(k) != Some(out.len()) {
            return Err(Error::LengthMismatch {
                what: "output",
                expected: (n as u64).saturating_mul(k as u64),
                got: out.len() as u64,
            });
        }
        // Interleave block by block into a bounded host buffer.
        let block = self.host_chunk_pairs as usize;
        let mut pairs = Vec::with_capacity(n.min(block));
        let mut start = 0;
        while start < n {
            let end = (start + block).min(n);
            pairs.clear();
            pairs.extend((start..end).map(|i| {
                GaussianPair::new(columns[0][i], columns[1][i], columns[2][i], columns[3][i])
            }));
            self.run(&pairs, options, &mut out[start * k..end * k], mode, start)
                .await?;
            start = end;
        }
        Ok(())
    }

    /// Validate (per the policy) and find the rows the CPU must recompute.
    /// `offset` is the index of `pairs[0]` in the caller's input (for errors).
    fn scan(
        &self,
        pairs: &[GaussianPair],
        param: crate::Param,
        offset: usize,
    ) -> Result<Vec<usize>> {
        if self.options.on_invalid == OnInvalid::Error {
            validate::validate_param_at(pairs, param, offset)?;
        }
        let fixup = |(i, p): (usize, &GaussianPair)| validate::needs_host_fixup(p).then_some(i);
        Ok(if pairs.len() < 1 << 15 {
            pairs.iter().enumerate().filter_map(fixup).collect()
        } else {
            pairs.par_iter().enumerate().filter_map(fixup).collect()
        })
    }

    async fn run(
        &self,
        pairs: &[GaussianPair],
        options: EvalOptions,
        out: &mut [f32],
        mode: WaitMode,
        offset: usize,
    ) -> Result<()> {
        let metrics = options.metrics;
        let k = metrics.len();
        let n = pairs.len();
        if n.checked_mul(k) != Some(out.len()) {
            return Err(Error::LengthMismatch {
                what: "output",
                expected: (n as u64).saturating_mul(k as u64),
                got: out.len() as u64,
            });
        }
        let fixups = self.scan(pairs, options.param, offset)?;
        if n == 0 {
            return Ok(());
        }
        let pipeline = self
            .kernel
            .pipeline(&self.device, Layout::Pairs, options, &self.counters);
        let mut guard = self.scratch.lock().await;
        let result = self
            .run_chunks(&mut guard, &pipeline, pairs, k, out, mode)
            .await;
        if result.is_err() {
            // Buffers may be left mapped or in flight: start afresh next time.
            *guard = None;
        }
        result?;
        drop(guard);

        // Rows whose arithmetic may meet subnormals the device flushes: CPU.
        for i in fixups {
            let all = cpu::measures32(&pairs[i], options.param);
            for (j, m) in metrics.iter().enumerate() {
                out[i * k + j] = all[m.index()];
            }
        }
        Ok(())
    }

    async fn run_chunks(
        &self,
        guard: &mut Option<Scratch>,
        pipeline: &wgpu::ComputePipeline,
        pairs: &[GaussianPair],
        k: usize,
        out: &mut [f32],
        mode: WaitMode,
    ) -> Result<()> {
        let n = pairs.len();
        let scratch = self.ensure_scratch(guard, n as u64)?;
        let chunk = scratch.capacity as usize;
        let value_bytes = 4 * k as u64;

        struct InFlight {
            slot: usize,
            start: usize,
            len: usize,
            outcome: MapOutcome,
            submission: wgpu::SubmissionIndex,
        }
        let mut inflight: VecDeque<InFlight> = VecDeque::with_capacity(self.slots);

        for (c, chunk_pairs) in pairs.chunks(chunk).enumerate() {
            let slot_index = c % self.slots;
            if inflight.len() == self.slots {
                if let Some(done) = inflight.pop_front() {
                    let slot = &scratch.slots[done.slot];
                    self.wait(&done.outcome, Some(done.submission), mode)
                        .await?;
                    Self::read_back(slot, done.start, done.len, k, out)?;
                }
            }
            let slot = &mut scratch.slots[slot_index];
            let len = chunk_pairs.len() as u64;
            let in_bytes = len * PAIR_BYTES;
            let out_bytes = len * value_bytes;

            // Upload through the reused, mapped staging buffer.
            let up = slot.upload.as_ref().unwrap_or(&slot.input);
            let upload = Self::request_map(up, in_bytes, wgpu::MapMode::Write);
            self.wait(&upload, slot.last_submission.clone(), mode)
                .await?;
            {
                let mut view = up
                    .slice(..in_bytes)
                    .get_mapped_range_mut()
                    .map_err(|e| Error::Map(e.to_string()))?;
                view.copy_from_slice(bytemuck::cast_slice(chunk_pairs));
            }
            up.unmap();

            let bind_group = {
                let key = (len, k);
                if !slot.bind_groups.contains_key(&key) {
                    let inputs = BindInputs::Pairs(slot.input.clone(), 0);
                    let bg = self.bind_group(&inputs, &slot.output, 0, len, k);
                    slot.bind_groups.insert(key, bg);
                }
                slot.bind_groups.get(&key).cloned()
            };
            let bind_group = bind_group.ok_or_else(|| Error::Gpu("bind group cache".into()))?;

            let scope = self.device.push_error_scope(wgpu::ErrorFilter::Validation);
            let mut encoder = self
                .device
                .create_command_encoder(&wgpu::CommandEncoderDescriptor {
                    label: Some("gaussdiv host chunk"),
                });
            if let Some(up) = &slot.upload {
                encoder.copy_buffer_to_buffer(up, 0, &slot.input, 0, in_bytes);
            }
            self.record_pass(&mut encoder, pipeline, &bind_group, len);
            if let Some(down) = &slot.download {
                encoder.copy_buffer_to_buffer(&slot.output, 0, down, 0, out_bytes);
            }
            let submission = self.queue.submit([encoder.finish()]);
            Counters::bump(&self.counters.submissions);
            let error = scope.pop();
            if let Some(e) = error.await {
                return Err(Error::Gpu(e.to_string()));
            }
            slot.last_submission = Some(submission.clone());
            let down = slot.download.as_ref().unwrap_or(&slot.output);
            let outcome = Self::request_map(down, out_bytes, wgpu::MapMode::Read);
            inflight.push_back(InFlight {
                slot: slot_index,
                start: c * chunk,
                len: chunk_pairs.len(),
                outcome,
                submission,
            });
        }
        while let Some(done) = inflight.pop_front() {
            let slot = &scratch.slots[done.slot];
            self.wait(&done.outcome, Some(done.submission), mode)
                .await?;
            Self::read_back(slot, done.start, done.len, k, out)?;
        }
        Ok(())
    }

    fn read_back(slot: &Slot, start: usize, len: usize, k: usize, out: &mut [f32]) -> Result<()> {
        let bytes = (len * k * 4) as u64;
        let down = slot.download.as_ref().unwrap_or(&slot.output);
        {
            let view = down
                .slice(..bytes)
                .get_mapped_range()
                .map_err(|e| Error::Map(e.to_string()))?;
            let dst: &mut [u8] = bytemuck::cast_slice_mut(&mut out[start * k..(start + len) * k]);
            dst.copy_from_slice(&view);
        }
        down.unmap();
        Ok(())
    }

    fn request_map(buffer: &wgpu::Buffer, bytes: u64, mode: wgpu::MapMode) -> MapOutcome {
        let outcome: MapOutcome = Arc::new(Mutex::new(None));
        let sink = outcome.clone();
        buffer.slice(..bytes).map_async(mode, move |r| {
            if let Ok(mut s) = sink.lock() {
                *s = Some(r);
            }
        });
        outcome
    }

    /// Wait until `until` (or the latest submission) has completed and the
    /// mapping in `outcome` has resolved.
    async fn wait(
        &self,
        outcome: &MapOutcome,
        until: Option<wgpu::SubmissionIndex>,
        mode: WaitMode,
    ) -> Result<()> {
        let poll = move |device: &wgpu::Device, timeout: Option<Duration>| -> Result<()> {
            device
                .poll(wgpu::PollType::Wait {
                    submission_index: until,
                    timeout,
                })
                .map(|_| ())
                .map_err(|e| match e {
                    wgpu::PollError::Timeout => Error::DeviceLost(format!(
                        "the GPU did not finish within {:?}",
                        timeout.unwrap_or_default()
                    )),
                    other => Error::DeviceLost(other.to_string()),
                })
        };
        let take = |outcome: &MapOutcome| -> Result<()> {
            let got = outcome.lock().ok().and_then(|mut s| s.take());
            match got {
                Some(Ok(())) => Ok(()),
                Some(Err(e)) => Err(Error::Map(e.to_string())),
                None => Err(Error::Map(
                    "the mapping did not complete after the GPU finished".into(),
                )),
            }
        };
        let timeout = self.options.timeout;
        match mode {
            WaitMode::Block => {
                poll(&self.device, timeout)?;
                take(outcome)
            }
            WaitMode::Offload => {
                let (tx, rx) = futures_intrusive::channel::shared::oneshot_channel();
                let device = self.device.clone();
                let outcome = outcome.clone();
                std::thread::Builder::new()
                    .name("gaussdiv-poll".into())
                    .spawn(move || {
                        let r = poll(&device, timeout).and_then(|_| take(&outcome));
                        let _ = tx.send(r);
                    })
                    .map_err(|e| Error::Gpu(format!("could not start a polling thread: {e}")))?;
                match rx.receive().await {
                    Some(r) => r,
                    None => Err(Error::DeviceLost("the polling thread ended".into())),
                }
            }
        }
    }

    fn ensure_scratch<'a>(
        &self,
        guard: &'a mut Option<Scratch>,
        n: u64,
    ) -> Result<&'a mut Scratch> {
        let want = n
            .max(MIN_CAPACITY)
            .checked_next_power_of_two()
            .unwrap_or(u64::MAX)
            .min(self.host_chunk_pairs);
        let enough = matches!(guard, Some(s) if s.capacity >= want);
        if !enough {
            *guard = None; // release the old buffers first
            let slots = (0..self.slots)
                .map(|_| self.make_slot(want))
                .collect::<Result<Vec<_>>>()?;
            *guard = Some(Scratch {
                capacity: want,
                slots,
            });
        }
        guard
            .as_mut()
            .ok_or_else(|| Error::Gpu("scratch buffers missing".into()))
    }

    fn make_slot(&self, capacity: u64) -> Result<Slot> {
        use wgpu::BufferUsages as U;
        let in_bytes = capacity * PAIR_BYTES;
        // Room for every measure: 4 bytes each per pair.
        let out_bytes = capacity * 4 * Metric::COUNT as u64;
        let oom = self.device.push_error_scope(wgpu::ErrorFilter::OutOfMemory);
        let validation = self.device.push_error_scope(wgpu::ErrorFilter::Validation);
        let (input, output, upload, download) = if self.mapped_storage {
            // Unified memory: map the storage buffers themselves, no staging copies.
            let input = self.buffer(
                "gaussdiv input (mapped)",
                in_bytes,
                U::STORAGE | U::MAP_WRITE,
            );
            let output = self.buffer(
                "gaussdiv output (mapped)",
                out_bytes,
                U::STORAGE | U::MAP_READ,
            );
            (input, output, None, None)
        } else {
            let input = self.buffer("gaussdiv input", in_bytes, U::STORAGE | U::COPY_DST);
            let output = self.buffer("gaussdiv output", out_bytes, U::STORAGE | U::COPY_SRC);
            let upload = self.buffer(
                "gaussdiv upload staging",
                in_bytes,
                U::MAP_WRITE | U::COPY_SRC,
            );
            let download = self.buffer(
                "gaussdiv readback staging",
                out_bytes,
                U::MAP_READ | U::COPY_DST,
            );
            (input, output, Some(upload), Some(download))
        };
        let v = now(validation.pop()).flatten();
        let o = now(oom.pop()).flatten();
        if let Some(e) = v.or(o) {
            return Err(Error::Gpu(format!(
                "could not allocate staging for {capacity} pairs: {e}"
            )));
        }
        Ok(Slot {
            input,
            output,
            upload,
            download,
            last_submission: None,
            bind_groups: HashMap::new(),
        })
    }

    fn buffer(&self, label: &str, size: u64, usage: wgpu::BufferUsages) -> wgpu::Buffer {
        Counters::bump(&self.counters.buffers);
        self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some(label),
            size,
            usage,
            mapped_at_creation: false,
        })
    }

    fn bind_group(
        &self,
        inputs: &BindInputs,
        output: &wgpu::Buffer,
        output_offset: u64,
        pairs: u64,
        k: usize,
    ) -> wgpu::BindGroup {
        Counters::bump(&self.counters.bind_groups);
        let entry = |binding, buffer, offset, size| wgpu::BindGroupEntry {
            binding,
            resource: wgpu::BindingResource::Buffer(wgpu::BufferBinding {
                buffer,
                offset,
                size: wgpu::BufferSize::new(size),
            }),
        };
        let out = entry(1, output, output_offset, pairs * 4 * k as u64);
        match inputs {
            BindInputs::Pairs(buffer, offset) => {
                self.device.create_bind_group(&wgpu::BindGroupDescriptor {
                    label: Some("gaussdiv bind group"),
                    layout: &self.kernel.layout,
                    entries: &[entry(0, buffer, *offset, pairs * PAIR_BYTES), out],
                })
            }
            BindInputs::Soa(arrays) => {
                let [a, b, c, d] = arrays;
                self.device.create_bind_group(&wgpu::BindGroupDescriptor {
                    label: Some("gaussdiv SoA bind group"),
                    layout: &self.kernel.soa_layout,
                    entries: &[
                        out,
                        entry(2, &a.0, a.1, pairs * 4),
                        entry(3, &b.0, b.1, pairs * 4),
                        entry(4, &c.0, c.1, pairs * 4),
                        entry(5, &d.0, d.1, pairs * 4),
                    ],
                })
            }
        }
    }

    fn record_pass(
        &self,
        encoder: &mut wgpu::CommandEncoder,
        pipeline: &wgpu::ComputePipeline,
        bind_group: &wgpu::BindGroup,
        pairs: u64,
    ) {
        let groups = pairs.div_ceil(u64::from(self.kernel.workgroup_size));
        let (x, y) = grid(groups, self.max_groups_x);
        let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
            label: Some("gaussdiv divergence pass"),
            timestamp_writes: None,
        });
        pass.set_pipeline(pipeline);
        pass.set_bind_group(0, bind_group, &[]);
        pass.dispatch_workgroups(x, y, 1);
    }

    /// Record the evaluation of `count` pairs that already live on the device
    /// into the caller's `encoder`: cross-entropy, KL and entropy, written to
    /// `output` in the layout of [`Divergences`] (12 bytes per pair). No
    /// submit, no host copies. See [`encode_metrics`](Self::encode_metrics).
    pub fn encode(
        &self,
        encoder: &mut wgpu::CommandEncoder,
        input: wgpu::BufferSlice<'_>,
        output: wgpu::BufferSlice<'_>,
        count: u64,
    ) -> Result<()> {
        self.encode_metrics(encoder, input, output, count, Metrics::ALL)
    }

    /// Record the evaluation of `count` [`GaussianPair`]s (16 bytes each, from
    /// the start of `input`) into `encoder`, writing the selected `metrics`
    /// (`metrics.len()` f32 per pair, canonical order) from the start of `output`.
    ///
    /// Both slices need `STORAGE` usage, offsets aligned to the device's
    /// `min_storage_buffer_offset_alignment`, and room for `count` pairs;
    /// anything else is [`Error::InvalidBuffer`] (checked here, so wgpu never
    /// sees an invalid binding). Counts beyond one binding or one dispatch are
    /// split into several bindings and passes. Bind groups are cached: after
    /// the first call with the same buffers, offsets and count, a call creates
    /// no wgpu object.
    ///
    /// Contract of the device path: invalid pairs (σ ≤ 0, NaN, ±inf) produce
    /// NaN, since nothing is read back to report them; μ and μ1 − μ2 must not
    /// be subnormal (a device may flush them to zero; subnormal σ is exact).
    /// The buffers must belong to this evaluator's device.
    pub fn encode_metrics(
        &self,
        encoder: &mut wgpu::CommandEncoder,
        input: wgpu::BufferSlice<'_>,
        output: wgpu::BufferSlice<'_>,
        count: u64,
        metrics: Metrics,
    ) -> Result<()> {
        self.encode_with(encoder, input, output, count, metrics.into())
    }

    /// [`encode_metrics`](Self::encode_metrics) with a parameterisation: the
    /// pairs hold `(μ1, a1, μ2, a2)` in `options.param` (see [`crate::Param`]).
    pub fn encode_with(
        &self,
        encoder: &mut wgpu::CommandEncoder,
        input: wgpu::BufferSlice<'_>,
        output: wgpu::BufferSlice<'_>,
        count: u64,
        options: EvalOptions,
    ) -> Result<()> {
        self.check_slice("input", &input, count, PAIR_BYTES)?;
        let inputs = BindInputs::Pairs(input.buffer().clone(), input.offset());
        self.encode_chunks(encoder, Layout::Pairs, inputs, output, count, options)
    }

    /// [`encode_metrics`](Self::encode_metrics) for data kept as a structure
    /// of arrays: four f32 arrays μ1, σ1, μ2, σ2 of `count` values each.
    pub fn encode_soa(
        &self,
        encoder: &mut wgpu::CommandEncoder,
        input: SoaSlices<'_>,
        output: wgpu::BufferSlice<'_>,
        count: u64,
        metrics: Metrics,
    ) -> Result<()> {
        self.encode_soa_with(encoder, input, output, count, metrics.into())
    }

    /// [`encode_soa`](Self::encode_soa) with a parameterisation: the four
    /// arrays hold μ1, a1, μ2, a2 in `options.param`.
    pub fn encode_soa_with(
        &self,
        encoder: &mut wgpu::CommandEncoder,
        input: SoaSlices<'_>,
        output: wgpu::BufferSlice<'_>,
        count: u64,
        options: EvalOptions,
    ) -> Result<()> {
        let names = ["mu1", "sigma1", "mu2", "sigma2"];
        let slices = [input.mu1, input.sigma1, input.mu2, input.sigma2];
        for (name, slice) in names.iter().zip(&slices) {
            self.check_slice(name, slice, count, 4)?;
        }
        let inputs = BindInputs::Soa(slices.map(|s| (s.buffer().clone(), s.offset())));
        self.encode_chunks(encoder, Layout::Soa, inputs, output, count, options)
    }

    fn encode_chunks(
        &self,
        encoder: &mut wgpu::CommandEncoder,
        layout: Layout,
        inputs: BindInputs,
        output: wgpu::BufferSlice<'_>,
        count: u64,
        options: EvalOptions,
    ) -> Result<()> {
        let k = options.metrics.len();
        let value_bytes = 4 * k as u64;
        self.check_slice("output", &output, count, value_bytes)?;
        let pipeline = self
            .kernel
            .pipeline(&self.device, layout, options, &self.counters);
        // A chunk's input and output must each fit one binding (with many
        // measures the output is the larger).
        let per_binding =
            (self.max_binding / value_bytes.max(PAIR_BYTES)) / CHUNK_GRANULE * CHUNK_GRANULE;
        let chunk = self.chunk_pairs.min(per_binding.max(CHUNK_GRANULE));
        let mut start = 0u64;
        while start < count {
            let len = (count - start).min(chunk);
            let key = BindKey {
                inputs: inputs.advanced(start),
                output: output.buffer().clone(),
                output_offset: output.offset() + start * value_bytes,
                pairs: len,
                k,
            };
            let bind_group = {
                let mut cache = match self.encode_cache.lock() {
                    Ok(c) => c,
                    Err(p) => p.into_inner(),
                };
                match cache.get(&key) {
                    Some(bg) => bg.clone(),
                    None => {
                        if cache.len() >= 256 {
                            cache.clear();
                        }
                        let bg =
                            self.bind_group(&key.inputs, &key.output, key.output_offset, len, k);
                        cache.insert(key, bg.clone());
                        bg
                    }
                }
            };
            self.record_pass(encoder, &pipeline, &bind_group, len);
            start += len;
        }
        Ok(())
    }

    fn check_slice(
        &self,
        what: &str,
        slice: &wgpu::BufferSlice<'_>,
        count: u64,
        bytes_per_pair: u64,
    ) -> Result<()> {
        if count == 0 {
            return Err(Error::InvalidBuffer(
                "count is 0: there is nothing to encode".into(),
            ));
        }
        let usage = slice.buffer().usage();
        if !usage.contains(wgpu::BufferUsages::STORAGE) {
            return Err(Error::InvalidBuffer(format!(
                "the {what} buffer lacks STORAGE usage (has {usage:?})"
            )));
        }
        let offset = slice.offset();
        if !offset.is_multiple_of(self.offset_alignment) {
            return Err(Error::InvalidBuffer(format!(
                "the {what} offset {offset} is not a multiple of \
                 min_storage_buffer_offset_alignment ({})",
                self.offset_alignment
            )));
        }
        match count.checked_mul(bytes_per_pair) {
            Some(need) if need <= slice.size() => Ok(()),
            need => Err(Error::InvalidBuffer(format!(
                "the {what} slice holds {} bytes; {count} pairs need {}",
                slice.size(),
                need.map_or("more than 2^64".to_string(), |b| b.to_string())
            ))),
        }
    }

    /// The largest single binding this device allows, in bytes.
    pub fn max_binding_bytes(&self) -> u64 {
        self.max_binding
    }
}
