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
mod diagonal;
mod element;
pub(crate) mod kernel;
mod pairwise;

use crate::error::{Error, Result};
use crate::gradient::Gradients;
use crate::pair::{
    Divergences, Divergences64, EvalOptions, GaussianPair, GaussianPair64, Metric, Metrics, Param,
};
use crate::validate::OnInvalid;
use context::AdapterSummary;
use element::{GradPair, HostPair};
use kernel::{grid, Counters, Kernel, Layout, PAIR_BYTES};
use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::pin::pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

pub use kernel::{f64_features, DIAGONAL_SHADER_SOURCE, SHADER_SOURCE, SHADER_SOURCE_F64};

/// Smallest staging capacity, in f32 pairs (buffers grow by powers of two
/// from here; f64 pairs take twice the bytes).
const MIN_CAPACITY: u64 = 4096;

/// Bind groups cached for the device path (each keeps its buffers alive;
/// see [`GpuEvaluator::clear_encode_cache`]).
const ENCODE_CACHE_ENTRIES: usize = 16;

/// Bind groups kept per staging slot on the host path (one per distinct
/// chunk length and metric count).
const SLOT_BIND_GROUPS: usize = 8;

/// Largest chunk (one binding, one dispatch): the kernel indexes a chunk's
/// outputs with u32 `i × k`, which stays below 2^32 for k ≤ 16.
const MAX_CHUNK_PAIRS: u64 = 1 << 27;

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
    /// Longest wait for the GPU before giving up with [`Error::Timeout`];
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
    /// Bind groups by (input bytes, output bytes): a full chunk and the tail
    /// (of either precision: the kernels share one bind group layout).
    bind_groups: HashMap<(u64, u64), wgpu::BindGroup>,
}

struct Scratch {
    /// Bytes of each slot's input buffer (its output holds ¾ of that: 12
    /// bytes per 16-byte f32 pair, 24 per 32-byte f64 pair).
    in_bytes: u64,
    slots: Vec<Slot>,
}

/// Drops the scratch buffers unless the run that uses them completed.
/// How a host-path call maps pairs to output rows and workgroups (see
/// [`GpuEvaluator::run_chunks`]).
#[derive(Clone, Copy, Debug)]
struct ChunkShape {
    /// Pairs per output row: 1, or the diagonal layout's dims.
    per_row: usize,
    /// One workgroup per row (the wide diagonal kernel) instead of one
    /// invocation per row.
    workgroup_per_row: bool,
}

impl ChunkShape {
    /// An array of pairs: one row per pair, one invocation each.
    const PAIRS: ChunkShape = ChunkShape {
        per_row: 1,
        workgroup_per_row: false,
    };
}

struct ResetUnlessDone<'a> {
    scratch: &'a mut Option<Scratch>,
    done: bool,
}

impl Drop for ResetUnlessDone<'_> {
    fn drop(&mut self) {
        if !self.done {
            *self.scratch = None;
        }
    }
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

/// `(start, len)` of the chunks covering `count` pairs, `chunk` at a time
/// (all in u64: counts and byte offsets beyond 2^32 are fine).
fn chunk_ranges(count: u64, chunk: u64) -> impl Iterator<Item = (u64, u64)> {
    let chunk = chunk.max(1);
    (0..count.div_ceil(chunk)).map(move |c| {
        let start = c * chunk;
        (start, chunk.min(count - start))
    })
}

/// Faults that tests can inject into an evaluator (feature `test-hooks`).
#[doc(hidden)]
#[cfg_attr(not(feature = "test-hooks"), allow(dead_code))]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Fault {
    /// The next buffer mapping fails.
    MapFailure = 1,
    /// The next wait for the GPU never completes (it lasts the timeout).
    Hang = 2,
}

/// How a wait for the GPU is carried out.
#[derive(Clone, Copy, PartialEq, Eq)]
enum WaitMode {
    /// Poll the device on this thread (blocking API).
    Block,
    /// Poll the device on a helper thread and await the outcome (async API).
    Offload,
}

/// The result of a `map_async` callback, and a signal for it: the callback
/// may run on whichever thread polls the device (another evaluator's, the
/// app's), so a waiter that finds it missing after its own poll waits for it.
type MapOutcome = Arc<(
    Mutex<Option<core::result::Result<(), wgpu::BufferAsyncError>>>,
    std::sync::Condvar,
)>;

/// How long to wait for a mapping callback that another thread collected,
/// once the submission is known to be complete.
const CALLBACK_GRACE: Duration = Duration::from_secs(10);

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
    /// Set when the device is known to be lost (own devices: lost callback).
    lost: Arc<AtomicBool>,
    /// Current wait timeout in nanoseconds; `u64::MAX`: none.
    timeout_ns: AtomicU64,
    /// Fault injected for tests (see [`GpuEvaluator::inject_fault`]).
    fault: std::sync::atomic::AtomicU8,
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

fn duration_ns(d: Option<Duration>) -> u64 {
    d.map_or(u64::MAX, |d| {
        u64::try_from(d.as_nanos()).unwrap_or(u64::MAX - 1)
    })
}

fn block_on<F: Future>(f: F) -> F::Output {
    pollster::block_on(f)
}

/// A bind group entry: `size` bytes of `buffer` from `offset` (every
/// binding of every kernel is a buffer range).
fn buffer_entry(
    binding: u32,
    buffer: &wgpu::Buffer,
    offset: u64,
    size: u64,
) -> wgpu::BindGroupEntry<'_> {
    wgpu::BindGroupEntry {
        binding,
        resource: wgpu::BindingResource::Buffer(wgpu::BufferBinding {
            buffer,
            offset,
            size: wgpu::BufferSize::new(size),
        }),
    }
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
        let lost = ev.lost.clone();
        device.set_device_lost_callback(move |_reason, _message| {
            lost.store(true, Ordering::SeqCst);
        });
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
        if limits.max_storage_buffers_per_shader_stage < 2 {
            missing.push(format!(
                "max_storage_buffers_per_shader_stage is {} (need 2)",
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
        // And below 2^27 pairs, so that the kernel's u32 index × values per pair never wraps.
        let chunk_pairs = options.max_chunk_pairs.clamp(
            CHUNK_GRANULE,
            binding_pairs
                .min(grid_pairs)
                .clamp(CHUNK_GRANULE, MAX_CHUNK_PAIRS),
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
            lost: Arc::new(AtomicBool::new(false)),
            timeout_ns: AtomicU64::new(duration_ns(options.timeout)),
            fault: std::sync::atomic::AtomicU8::new(0),
            scratch: futures_intrusive::sync::Mutex::new(None, false),
            encode_cache: Mutex::new(HashMap::new()),
            counters,
        })
    }

    /// Whether the device is known to be lost: every call then fails with
    /// [`Error::DeviceLost`] and the evaluator must be recreated. (Known
    /// through the lost callback on devices the evaluator created, and through
    /// failed waits on any device.)
    pub fn is_lost(&self) -> bool {
        self.lost.load(Ordering::SeqCst)
    }

    /// Change the longest wait for the GPU (`None`: wait indefinitely).
    pub fn set_timeout(&self, timeout: Option<Duration>) {
        self.timeout_ns
            .store(duration_ns(timeout), Ordering::SeqCst);
    }

    fn timeout(&self) -> Option<Duration> {
        match self.timeout_ns.load(Ordering::SeqCst) {
            u64::MAX => None,
            ns => Some(Duration::from_nanos(ns)),
        }
    }

    /// Make the next buffer mapping fail, as a driver error would (for
    /// testing the failure paths of callers; not part of the stable API).
    #[cfg(feature = "test-hooks")]
    #[doc(hidden)]
    pub fn inject_fault(&self, fault: Fault) {
        self.fault.store(fault as u8, Ordering::SeqCst);
    }

    fn check_alive(&self) -> Result<()> {
        if self.is_lost() {
            Err(Error::DeviceLost(
                "the device was lost earlier; create a new evaluator".into(),
            ))
        } else {
            Ok(())
        }
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
    /// happen on a helper thread and are awaited, so the executor is never
    /// blocked waiting for the GPU. The call's CPU work — validating the input
    /// and copying it into the staging buffers, about as long as reading the
    /// data once — runs on the calling task; for very large batches inside a
    /// latency-sensitive runtime, run it under `spawn_blocking` or in chunks.
    /// Dropping the future mid-way is safe: the buffers it used are released.
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

    /// The gradients of `options.metrics` (cross-entropy and/or KL; see
    /// [`crate::gradient`]) of every pair given in `options.param`, into
    /// `out` (`pairs.len() × 4 × options.metrics.len()` values, row-major:
    /// `[∂/∂μ1, ∂/∂a1, ∂/∂μ2, ∂/∂a2]` per measure, cross-entropy first).
    /// Blocking. Inputs are validated as by [`evaluate_with`](Self::evaluate_with).
    pub fn gradients_with(
        &self,
        pairs: &[GaussianPair],
        options: EvalOptions,
        out: &mut [f32],
    ) -> Result<()> {
        block_on(self.run::<GradPair>(
            bytemuck::cast_slice(pairs),
            options,
            out,
            WaitMode::Block,
            0,
        ))
    }

    /// [`gradients_with`](Self::gradients_with) for async code.
    pub async fn gradients_with_async(
        &self,
        pairs: &[GaussianPair],
        options: EvalOptions,
        out: &mut [f32],
    ) -> Result<()> {
        self.run::<GradPair>(
            bytemuck::cast_slice(pairs),
            options,
            out,
            WaitMode::Offload,
            0,
        )
        .await
    }

    /// Both gradients of every pair given by σ (blocking).
    pub fn gradients(&self, pairs: &[GaussianPair]) -> Result<Vec<Gradients>> {
        let mut out = vec![Gradients::default(); pairs.len()];
        self.gradients_with(
            pairs,
            Metrics::CE_KL.into(),
            bytemuck::cast_slice_mut(&mut out),
        )?;
        Ok(out)
    }

    /// The device features f64 evaluation needs and this device lacks
    /// (empty when [`evaluate_f64`](Self::evaluate_f64) is available).
    pub fn missing_f64_features(&self) -> wgpu::Features {
        f64_features() - self.device.features()
    }

    /// Whether the device can run the f64 kernel (it has `SHADER_F64` and
    /// `SHADER_INT64`; see [`evaluate_f64`](Self::evaluate_f64)).
    pub fn supports_f64(&self) -> bool {
        self.missing_f64_features().is_empty()
    }

    fn require_f64(&self) -> Result<()> {
        let missing = self.missing_f64_features();
        if missing.is_empty() {
            return Ok(());
        }
        let names: Vec<&str> = missing.iter_names().map(|(name, _)| name).collect();
        Err(Error::Unsupported(format!(
            "f64 on the GPU needs the device features SHADER_F64 and SHADER_INT64; \
             this device lacks {}{} (use the CPU f64 path, cpu::evaluate_f64)",
            names.join(" and "),
            self.adapter
                .as_ref()
                .map(|a| format!(" (adapter {})", a.info.name))
                .unwrap_or_default()
        )))
    }

    /// Compile the f64 kernel's common pipelines and run them once, so that
    /// the first [`evaluate_f64`](Self::evaluate_f64) call is not slowed by
    /// compilation. Optional: without it, the first f64 call compiles what it
    /// needs. [`Error::Unsupported`] without the f64 device features.
    pub fn prepare_f64(&self) -> Result<()> {
        self.require_f64()?;
        let pair = [GaussianPair64 {
            mu1: 0.0,
            sigma1: 1.0,
            mu2: 1.0,
            sigma2: 2.0,
        }];
        for metrics in [Metrics::ALL, Metrics::CE_KL] {
            let mut out = vec![0.0f64; metrics.len()];
            self.evaluate_f64_metrics_into(&pair, metrics, &mut out)?;
        }
        Ok(())
    }

    /// Cross-entropy, KL and entropy of every pair in f64, on the GPU
    /// (blocking): the f64 twin of the f32 kernel (`shaders/divergence_f64.wgsl`,
    /// a mirror of the CPU f64 reference, within 1e-14 of it and of the truth).
    /// Every other measure and parameterisation: [`evaluate_f64_with`](Self::evaluate_f64_with).
    ///
    /// Needs the device features `SHADER_F64` and `SHADER_INT64` (requested by
    /// [`GpuEvaluator::new`] when the adapter offers them; an app's device must
    /// have been created with them): without them the result is
    /// [`Error::Unsupported`] naming what is missing — see
    /// [`supports_f64`](Self::supports_f64). The kernel is compiled at the
    /// first f64 call (or by [`prepare_f64`](Self::prepare_f64)). Invalid pairs
    /// follow the evaluator's [`OnInvalid`] policy; rows with subnormal μ or
    /// μ1 − μ2 are recomputed on the CPU, as on the f32 path. Host chunks hold
    /// the same bytes as f32 chunks: half as many pairs.
    pub fn evaluate_f64(&self, pairs: &[GaussianPair64]) -> Result<Vec<Divergences64>> {
        self.require_f64()?;
        let mut out = vec![Divergences64::default(); pairs.len()];
        block_on(self.run(
            pairs,
            Metrics::ALL.into(),
            bytemuck::cast_slice_mut(&mut out),
            WaitMode::Block,
            0,
        ))?;
        Ok(out)
    }

    /// [`evaluate_f64`](Self::evaluate_f64) for async code (see
    /// [`evaluate_async`](Self::evaluate_async)).
    pub async fn evaluate_f64_async(&self, pairs: &[GaussianPair64]) -> Result<Vec<Divergences64>> {
        self.require_f64()?;
        let mut out = vec![Divergences64::default(); pairs.len()];
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

    /// [`evaluate_f64`](Self::evaluate_f64) of the selected metrics into `out`
    /// (`pairs.len() × metrics.len()` values, row-major, canonical order). Blocking.
    pub fn evaluate_f64_metrics_into(
        &self,
        pairs: &[GaussianPair64],
        metrics: Metrics,
        out: &mut [f64],
    ) -> Result<()> {
        self.require_f64()?;
        block_on(self.run(pairs, metrics.into(), out, WaitMode::Block, 0))
    }

    /// [`evaluate_f64_metrics_into`](Self::evaluate_f64_metrics_into) for async code.
    pub async fn evaluate_f64_metrics_into_async(
        &self,
        pairs: &[GaussianPair64],
        metrics: Metrics,
        out: &mut [f64],
    ) -> Result<()> {
        self.require_f64()?;
        self.run(pairs, metrics.into(), out, WaitMode::Offload, 0)
            .await
    }

    /// Every measure and parameterisation in f64 on the GPU (blocking): the
    /// selected `options.metrics` of pairs whose `sigma` fields hold `a1`,
    /// `a2` in `options.param` (see [`Param`]), into `out`
    /// (`pairs.len() × options.metrics.len()` values, row-major, canonical
    /// order) — the f64 twin of [`evaluate_with`](Self::evaluate_with), a
    /// mirror of [`cpu::evaluate_f64_with`](crate::cpu::evaluate_f64_with)
    /// within 1e-14 of it and of the truth. Needs the f64 device features, as
    /// [`evaluate_f64`](Self::evaluate_f64); validation follows the
    /// evaluator's [`OnInvalid`] policy in the parameterisation.
    pub fn evaluate_f64_with(
        &self,
        pairs: &[GaussianPair64],
        options: EvalOptions,
        out: &mut [f64],
    ) -> Result<()> {
        self.require_f64()?;
        block_on(self.run(pairs, options, out, WaitMode::Block, 0))
    }

    /// [`evaluate_f64_with`](Self::evaluate_f64_with) for async code (see
    /// [`evaluate_async`](Self::evaluate_async)).
    pub async fn evaluate_f64_with_async(
        &self,
        pairs: &[GaussianPair64],
        options: EvalOptions,
        out: &mut [f64],
    ) -> Result<()> {
        self.require_f64()?;
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
        let block = (self.host_chunk_pairs as usize).max(1);
        let mut pairs = Vec::with_capacity(n.min(block));
        let [mu1, s1, mu2, s2] = columns;
        let blocks = mu1
            .chunks(block)
            .zip(s1.chunks(block))
            .zip(mu2.chunks(block).zip(s2.chunks(block)))
            .zip(out.chunks_mut(block * k));
        let mut start = 0;
        for (((a, b), (c, d)), dst) in blocks {
            pairs.clear();
            pairs.extend(
                a.iter()
                    .zip(b)
                    .zip(c.iter().zip(d))
                    .map(|((&a, &b), (&c, &d))| GaussianPair::new(a, b, c, d)),
            );
            self.run(&pairs, options, dst, mode, start).await?;
            start += pairs.len();
        }
        Ok(())
    }

    /// Act on a chunk's screen (taken during its copy, see
    /// [`HostPair::screen_copy`]): validate it per the policy and find the
    /// rows the CPU must recompute — exact scans that run only when the
    /// screen found something. `offset` is the index of `pairs[0]` in the
    /// caller's input (for errors): the first invalid row under the error
    /// policy; the rows to recompute on the CPU are appended to `fixups` as
    /// `base + i`.
    fn screened_chunk<P: HostPair>(
        &self,
        chunk: &[P],
        (any_invalid, any_fixup): (bool, bool),
        param: Param,
        offset: usize,
        base: usize,
        fixups: &mut Vec<usize>,
    ) -> Result<()> {
        if any_invalid && self.options.on_invalid == OnInvalid::Error {
            P::validate_at(chunk, offset, param)?;
        }
        if !any_fixup {
            return Ok(());
        }
        fixups.extend(
            chunk
                .iter()
                .enumerate()
                .filter(|(_, p)| p.needs_host_fixup())
                .map(|(i, _)| base + i),
        );
        Ok(())
    }

    /// The pipeline of precision `P` writing `options`.
    fn host_pipeline<P: HostPair>(&self, options: EvalOptions) -> Result<wgpu::ComputePipeline> {
        match P::LAYOUT {
            Layout::Pairs64 => {
                self.require_f64()?;
                self.kernel
                    .pipeline_f64(&self.device, options, &self.counters)
            }
            Layout::Grad => {
                crate::gradient::check_metrics(options.metrics)?;
                self.kernel
                    .pipeline(&self.device, Layout::Grad, options, &self.counters)
                    .ok_or_else(|| Error::Unsupported("no gradient pipeline".into()))
            }
            layout => self
                .kernel
                .pipeline(&self.device, layout, options, &self.counters)
                .ok_or_else(|| Error::Unsupported("no pipeline for the pair layout".into())),
        }
    }

    async fn run<P: HostPair>(
        &self,
        pairs: &[P],
        options: EvalOptions,
        out: &mut [P::Value],
        mode: WaitMode,
        offset: usize,
    ) -> Result<()> {
        let metrics = options.metrics;
        let k = metrics.len() * P::VALUES_PER_METRIC;
        let n = pairs.len();
        if n.checked_mul(k) != Some(out.len()) {
            return Err(Error::LengthMismatch {
                what: "output",
                expected: (n as u64).saturating_mul(k as u64),
                got: out.len() as u64,
            });
        }
        if n == 0 {
            return Ok(());
        }
        self.check_alive()?;
        let pipeline = self.host_pipeline::<P>(options)?;
        let mut fixups = Vec::new();
        let mut guard = self.scratch.lock().await;
        {
            // If the call fails or its future is dropped mid-way (a cancelled
            // evaluate_async), buffers may be left mapped or in flight: the
            // reset drops them, and the next call starts afresh.
            let mut scratch = ResetUnlessDone {
                scratch: &mut guard,
                done: false,
            };
            let sc = self.ensure_scratch(scratch.scratch, n as u64 * P::PAIR_BYTES)?;
            let chunk = (sc.in_bytes / P::PAIR_BYTES) as usize;
            self.run_chunks(
                sc,
                &pipeline,
                pairs,
                (chunk, ChunkShape::PAIRS),
                k,
                out,
                mode,
                (options.param, offset),
                &mut fixups,
            )
            .await?;
            scratch.done = true;
        }
        drop(guard);

        // Rows whose arithmetic may meet subnormals the device flushes: CPU.
        for i in fixups {
            let (Some(p), Some(row)) = (pairs.get(i), out.chunks_exact_mut(k).nth(i)) else {
                continue;
            };
            p.fix_row(options.param, metrics, row);
        }
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    /// The host path's chunk driver, shared by every layout that uploads
    /// pairs: chunks of `chunk` pairs (whole output rows of `shape.per_row`
    /// pairs) go through the slots — upload with the fused screen, dispatch,
    /// readback — with up to `self.slots` chunks in flight. `k` values per
    /// output row; `fixups` receives pair indices (relative to `pairs`).
    #[allow(clippy::too_many_arguments)]
    async fn run_chunks<P: HostPair>(
        &self,
        scratch: &mut Scratch,
        pipeline: &wgpu::ComputePipeline,
        pairs: &[P],
        (chunk, shape): (usize, ChunkShape),
        k: usize,
        out: &mut [P::Value],
        mode: WaitMode,
        (param, offset): (Param, usize),
        fixups: &mut Vec<usize>,
    ) -> Result<()> {
        let per_row = shape.per_row.max(1);
        let chunk = (chunk / per_row).max(1) * per_row;
        let full_in_bytes = chunk as u64 * P::PAIR_BYTES;
        let value_bytes = P::VALUE_BYTES * k as u64;

        /// A chunk in flight: its slot, first output row and row count.
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
                    let slot = Self::slot(&scratch.slots, done.slot)?;
                    self.wait(&done.outcome, Some(done.submission), mode)
                        .await?;
                    Self::read_back(slot, done.start * k, done.len * k, out)?;
                }
            }
            let slot = scratch
                .slots
                .get_mut(slot_index)
                .ok_or_else(|| Error::Gpu("staging slot missing".into()))?;
            let len = chunk_pairs.len() as u64;
            let rows = len / per_row as u64;
            let in_bytes = len * P::PAIR_BYTES;
            let out_bytes = rows * value_bytes;

            // Upload through the reused, mapped staging buffer.
            let up = slot.upload.as_ref().unwrap_or(&slot.input);
            let upload = self.request_map(up, in_bytes, wgpu::MapMode::Write)?;
            self.wait(&upload, slot.last_submission.clone(), mode)
                .await?;
            // The screen fused with the copy (one pass over the caller's input).
            let screened = {
                let mut view = up
                    .slice(..in_bytes)
                    .get_mapped_range_mut()
                    .map_err(|e| Error::Map(e.to_string()))?;
                P::screen_copy(chunk_pairs, param, view.slice(..))
            };
            up.unmap();
            self.screened_chunk(
                chunk_pairs,
                screened?,
                param,
                offset + c * chunk,
                c * chunk,
                fixups,
            )?;

            let bind_group = {
                let key = (in_bytes, out_bytes);
                if !slot.bind_groups.contains_key(&key) {
                    // Bounded: every distinct tail length would otherwise stay
                    // cached. Full-chunk entries survive the pruning.
                    if slot.bind_groups.len() >= SLOT_BIND_GROUPS {
                        slot.bind_groups.retain(|(b, _), _| *b == full_in_bytes);
                    }
                    let bg = self.pairs_bind_group(&slot.input, in_bytes, &slot.output, out_bytes);
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
            let groups = if shape.workgroup_per_row {
                rows
            } else {
                rows.div_ceil(u64::from(self.kernel.workgroup_size))
            };
            self.record_groups(&mut encoder, pipeline, &bind_group, groups);
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
            let outcome = self.request_map(down, out_bytes, wgpu::MapMode::Read)?;
            inflight.push_back(InFlight {
                slot: slot_index,
                start: c * chunk / per_row,
                len: rows as usize,
                outcome,
                submission,
            });
        }
        while let Some(done) = inflight.pop_front() {
            let slot = Self::slot(&scratch.slots, done.slot)?;
            self.wait(&done.outcome, Some(done.submission), mode)
                .await?;
            Self::read_back(slot, done.start * k, done.len * k, out)?;
        }
        Ok(())
    }

    fn slot(slots: &[Slot], i: usize) -> Result<&Slot> {
        slots
            .get(i)
            .ok_or_else(|| Error::Gpu("staging slot missing".into()))
    }

    /// Copy `count` values from the slot's (mapped) output to `out[first..]`.
    fn read_back<V: bytemuck::Pod>(
        slot: &Slot,
        first: usize,
        count: usize,
        out: &mut [V],
    ) -> Result<()> {
        let bytes = (count * size_of::<V>()) as u64;
        let down = slot.download.as_ref().unwrap_or(&slot.output);
        {
            let view = down
                .slice(..bytes)
                .get_mapped_range()
                .map_err(|e| Error::Map(e.to_string()))?;
            let dst = out
                .get_mut(first..first + count)
                .ok_or_else(|| Error::Gpu("readback range outside the output".into()))?;
            let dst: &mut [u8] = bytemuck::cast_slice_mut(dst);
            if dst.len() != view.len() {
                return Err(Error::Gpu("readback size mismatch".into()));
            }
            dst.copy_from_slice(&view);
        }
        down.unmap();
        Ok(())
    }

    /// Request a mapping; a validation error (e.g. on a lost device) is
    /// returned here instead of reaching the device's uncaptured-error handler.
    fn request_map(
        &self,
        buffer: &wgpu::Buffer,
        bytes: u64,
        mode: wgpu::MapMode,
    ) -> Result<MapOutcome> {
        if self.fault.load(Ordering::SeqCst) == Fault::MapFailure as u8 {
            self.fault.store(0, Ordering::SeqCst);
            return Err(self.map_failure("injected mapping failure".into()));
        }
        let outcome: MapOutcome = Arc::new((Mutex::new(None), std::sync::Condvar::new()));
        let sink = outcome.clone();
        let scope = self.device.push_error_scope(wgpu::ErrorFilter::Validation);
        buffer.slice(..bytes).map_async(mode, move |r| {
            if let Ok(mut s) = sink.0.lock() {
                *s = Some(r);
            }
            sink.1.notify_all();
        });
        match now(scope.pop()).flatten() {
            None => Ok(outcome),
            Some(e) => Err(self.map_failure(e.to_string())),
        }
    }

    /// A mapping failed: on a lost device that is the reason to report.
    fn map_failure(&self, message: String) -> Error {
        if self.is_lost() {
            Error::DeviceLost(format!(
                "{message} (the device was lost; create a new evaluator)"
            ))
        } else {
            Error::Map(message)
        }
    }

    /// Wait until `until` (or the latest submission) has completed and the
    /// mapping in `outcome` has resolved.
    async fn wait(
        &self,
        outcome: &MapOutcome,
        until: Option<wgpu::SubmissionIndex>,
        mode: WaitMode,
    ) -> Result<()> {
        let lost = self.lost.clone();
        let poll = move |device: &wgpu::Device, timeout: Option<Duration>| -> Result<()> {
            device
                .poll(wgpu::PollType::Wait {
                    submission_index: until,
                    timeout,
                })
                .map(|_| ())
                .map_err(|e| match e {
                    wgpu::PollError::Timeout => Error::Timeout {
                        waited: timeout.unwrap_or_default(),
                    },
                    other => {
                        lost.store(true, Ordering::SeqCst);
                        Error::DeviceLost(other.to_string())
                    }
                })
        };
        let lost = self.lost.clone();
        let take = move |outcome: &MapOutcome| -> Result<()> {
            // Our poll has seen the submission complete; the callback has run or
            // is running on the thread that collected it.
            let (slot, signal) = &**outcome;
            let got = slot.lock().ok().and_then(|guard| {
                signal
                    .wait_timeout_while(guard, CALLBACK_GRACE, |s| s.is_none())
                    .ok()
                    .and_then(|(mut s, _)| s.take())
            });
            let lost = lost.load(Ordering::SeqCst);
            match got {
                Some(Ok(())) => Ok(()),
                Some(Err(e)) if lost => Err(Error::DeviceLost(format!(
                    "{e} (the device was lost; create a new evaluator)"
                ))),
                Some(Err(e)) => Err(Error::Map(e.to_string())),
                None => Err(Error::Map(
                    "the mapping did not complete after the GPU finished".into(),
                )),
            }
        };
        let timeout = self.timeout();
        if self.fault.load(Ordering::SeqCst) == Fault::Hang as u8 {
            self.fault.store(0, Ordering::SeqCst);
            let waited = timeout.unwrap_or_default();
            if mode == WaitMode::Block {
                std::thread::sleep(waited);
            } else {
                let (tx, rx) = futures_intrusive::channel::shared::oneshot_channel();
                std::thread::Builder::new()
                    .name("gaussdiv-hang".into())
                    .spawn(move || {
                        std::thread::sleep(waited);
                        let _ = tx.send(());
                    })
                    .map_err(|e| Error::Gpu(format!("could not start a thread: {e}")))?;
                let _ = rx.receive().await;
            }
            return Err(Error::Timeout { waited });
        }
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

    /// Scratch buffers for an input of `n_bytes`: a power of two from
    /// `MIN_CAPACITY` f32 pairs up to one host chunk (`host_chunk_pairs` f32
    /// pairs; f64 chunks hold the same bytes, half the pairs).
    fn ensure_scratch<'a>(
        &self,
        guard: &'a mut Option<Scratch>,
        n_bytes: u64,
    ) -> Result<&'a mut Scratch> {
        self.ensure_scratch_at_least(guard, n_bytes, 0)
    }

    /// [`ensure_scratch`](Self::ensure_scratch), but with room for at least
    /// `at_least` bytes even beyond one host chunk (a diagonal row longer than
    /// a chunk; the caller keeps it within one binding).
    fn ensure_scratch_at_least<'a>(
        &self,
        guard: &'a mut Option<Scratch>,
        n_bytes: u64,
        at_least: u64,
    ) -> Result<&'a mut Scratch> {
        let want = n_bytes
            .max(MIN_CAPACITY * PAIR_BYTES)
            .checked_next_power_of_two()
            .unwrap_or(u64::MAX)
            .min(self.host_chunk_pairs * PAIR_BYTES)
            .max(at_least);
        let enough = matches!(guard, Some(s) if s.in_bytes >= want);
        if !enough {
            *guard = None; // release the old buffers first
            let slots = (0..self.slots)
                .map(|_| self.make_slot(want))
                .collect::<Result<Vec<_>>>()?;
            *guard = Some(Scratch {
                in_bytes: want,
                slots,
            });
        }
        guard
            .as_mut()
            .ok_or_else(|| Error::Gpu("scratch buffers missing".into()))
    }

    fn make_slot(&self, in_bytes: u64) -> Result<Slot> {
        use wgpu::BufferUsages as U;
        // Room for every measure: 4 bytes each per f32 pair (16 bytes in);
        // f64 pairs (32 bytes in) write at most 10 × 8 bytes, the same ratio.
        let out_bytes = in_bytes / PAIR_BYTES * 4 * Metric::COUNT as u64;
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
                "could not allocate staging for {} pairs: {e}",
                in_bytes / PAIR_BYTES
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
        let out = buffer_entry(1, output, output_offset, pairs * 4 * k as u64);
        match inputs {
            BindInputs::Pairs(buffer, offset) => {
                self.device.create_bind_group(&wgpu::BindGroupDescriptor {
                    label: Some("gaussdiv bind group"),
                    layout: &self.kernel.layout,
                    entries: &[buffer_entry(0, buffer, *offset, pairs * PAIR_BYTES), out],
                })
            }
            BindInputs::Soa(arrays) => {
                let [a, b, c, d] = arrays;
                // encode_chunks checked that the SoA pipeline (and layout) exists.
                let layout = self
                    .kernel
                    .soa_layout
                    .as_ref()
                    .unwrap_or(&self.kernel.layout);
                self.device.create_bind_group(&wgpu::BindGroupDescriptor {
                    label: Some("gaussdiv SoA bind group"),
                    layout,
                    entries: &[
                        out,
                        buffer_entry(2, &a.0, a.1, pairs * 4),
                        buffer_entry(3, &b.0, b.1, pairs * 4),
                        buffer_entry(4, &c.0, c.1, pairs * 4),
                        buffer_entry(5, &d.0, d.1, pairs * 4),
                    ],
                })
            }
        }
    }

    /// The bind group of a `main` entry point (either kernel) on whole buffers' prefixes.
    fn pairs_bind_group(
        &self,
        input: &wgpu::Buffer,
        in_bytes: u64,
        output: &wgpu::Buffer,
        out_bytes: u64,
    ) -> wgpu::BindGroup {
        Counters::bump(&self.counters.bind_groups);
        self.device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: Some("gaussdiv bind group"),
            layout: &self.kernel.layout,
            entries: &[
                buffer_entry(0, input, 0, in_bytes),
                buffer_entry(1, output, 0, out_bytes),
            ],
        })
    }

    fn record_pass(
        &self,
        encoder: &mut wgpu::CommandEncoder,
        pipeline: &wgpu::ComputePipeline,
        bind_group: &wgpu::BindGroup,
        pairs: u64,
    ) {
        let groups = pairs.div_ceil(u64::from(self.kernel.workgroup_size));
        self.record_groups(encoder, pipeline, bind_group, groups);
    }

    /// One pass of `groups` workgroups on the 2-D grid.
    fn record_groups(
        &self,
        encoder: &mut wgpu::CommandEncoder,
        pipeline: &wgpu::ComputePipeline,
        bind_group: &wgpu::BindGroup,
        groups: u64,
    ) {
        let (x, y) = grid(groups, self.max_groups_x);
        let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
            label: Some("gaussdiv divergence pass"),
            timestamp_writes: None,
        });
        pass.set_pipeline(pipeline);
        pass.set_bind_group(0, bind_group, &[]);
        pass.dispatch_workgroups(x, y, 1);
    }

    /// Drop the bind groups cached by [`encode`](Self::encode) and friends.
    /// Each cached bind group keeps its buffers alive (at most 16 are kept);
    /// call this after dropping large buffers used with `encode` to release
    /// their memory at once.
    pub fn clear_encode_cache(&self) {
        match self.encode_cache.lock() {
            Ok(mut c) => c.clear(),
            Err(p) => p.into_inner().clear(),
        }
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

    /// Record the gradients of `options.metrics` (cross-entropy and/or KL;
    /// see [`crate::gradient`]) of `count` pairs on the device into `encoder`:
    /// `4 × options.metrics.len()` f32 per pair from the start of `output`
    /// (`[∂/∂μ1, ∂/∂a1, ∂/∂μ2, ∂/∂a2]` per measure, cross-entropy first — the
    /// layout of [`Gradients`] when both are selected). Same buffer checks,
    /// chunking, caching and device-path contract as
    /// [`encode_metrics`](Self::encode_metrics): what a training loop on the
    /// GPU needs for a KL term without a round trip to the host.
    pub fn encode_gradients(
        &self,
        encoder: &mut wgpu::CommandEncoder,
        input: wgpu::BufferSlice<'_>,
        output: wgpu::BufferSlice<'_>,
        count: u64,
        options: EvalOptions,
    ) -> Result<()> {
        crate::gradient::check_metrics(options.metrics)?;
        self.check_slice("input", &input, count, PAIR_BYTES)?;
        let inputs = BindInputs::Pairs(input.buffer().clone(), input.offset());
        self.encode_chunks(encoder, Layout::Grad, inputs, output, count, options)
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
        let per_metric = match layout {
            Layout::Grad => crate::gradient::PER_MEASURE,
            _ => 1,
        };
        let k = options.metrics.len() * per_metric;
        let value_bytes = 4 * k as u64;
        self.check_slice("output", &output, count, value_bytes)?;
        let aliased = match &inputs {
            BindInputs::Pairs(b, _) => b == output.buffer(),
            BindInputs::Soa(a) => a.iter().any(|(b, _)| b == output.buffer()),
        };
        if aliased {
            return Err(Error::InvalidBuffer(
                "the output buffer is also an input buffer; a buffer cannot be bound both \
                 read-only and writable in one pass (use separate buffers)"
                    .into(),
            ));
        }
        let pipeline = self
            .kernel
            .pipeline(&self.device, layout, options, &self.counters)
            .ok_or_else(|| {
                Error::Unsupported(
                    "structure-of-arrays input needs 5 storage buffers per shader stage; \
                     this device has fewer (use the array-of-pairs layout)"
                        .into(),
                )
            })?;
        // A chunk's input and output must each fit one binding (with many
        // measures the output is the larger).
        let per_binding =
            (self.max_binding / value_bytes.max(PAIR_BYTES)) / CHUNK_GRANULE * CHUNK_GRANULE;
        let chunk = self.chunk_pairs.min(per_binding.max(CHUNK_GRANULE));
        for (start, len) in chunk_ranges(count, chunk) {
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
                        if cache.len() >= ENCODE_CACHE_ENTRIES {
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

#[cfg(test)]
mod tests {
    use super::{chunk_ranges, PAIR_BYTES};

    /// Index arithmetic at the 2^31 / 2^32 boundaries: chunks cover every
    /// pair exactly once and byte offsets do not wrap.
    #[test]
    fn chunk_ranges_at_32_bit_boundaries() {
        let chunk = 8_388_608u64; // one 128 MiB binding of 16-byte pairs
        for count in [
            (1u64 << 31) - 1,
            1 << 31,
            (1 << 31) + 1,
            (1 << 32) - 1,
            1 << 32,
            (1 << 32) + 1,
            (1 << 34) + 12_345,
        ] {
            let mut next = 0u64;
            let mut n = 0u64;
            let mut last = (0, 0);
            for (start, len) in chunk_ranges(count, chunk) {
                assert_eq!(start, next);
                assert!(len >= 1 && len <= chunk);
                next = start + len;
                n += 1;
                last = (start, len);
            }
            assert_eq!(next, count, "all pairs covered");
            assert_eq!(n, count.div_ceil(chunk));
            // the byte offset of the last chunk needs more than 32 bits
            assert_eq!(last.0 * PAIR_BYTES, (count - last.1) * 16);
        }
        assert_eq!(chunk_ranges(0, 256).count(), 0);
        assert_eq!(
            chunk_ranges(5, 0).count(),
            5,
            "a zero chunk is treated as 1"
        );
    }
}
