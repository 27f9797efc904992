//! GPU backend: the WGSL kernel on any wgpu device.
//!
//! [`GpuEvaluator`] borrows nothing and owns a clone of a device and queue
//! (wgpu handles are reference-counted), so it can be built on an app's own
//! device with [`GpuEvaluator::from_device`] or on a device of its own with
//! [`GpuEvaluator::new`]. Host-memory evaluation goes through
//! [`evaluate`](GpuEvaluator::evaluate) (blocking) or
//! [`evaluate_async`](GpuEvaluator::evaluate_async) (never blocks the
//! executor); device-resident data through [`encode`](GpuEvaluator::encode).

pub(crate) mod context;
mod device;
mod diagonal;
mod element;
mod host;
pub(crate) mod kernel;
mod mvn;
mod mvn_device;
mod pairwise;
mod staging;
mod wait;

use crate::error::{Error, Result};
use crate::evaluator::Options;
use crate::pair::{EvalOptions, Float, GaussianPair, Metric, Metrics, Param};
use crate::validate::OnInvalid;
use context::AdapterSummary;
use element::{DiagonalPair, GradPair, GradPrecision, HostPair};
use kernel::{grid, Counters, Kernel, Layout, PAIR_BYTES};
use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::pin::pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

pub(crate) use kernel::f64_features;

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

/// How a wait for the GPU is carried out. On the web (wasm32) both modes
/// await the mapping callback, which the browser delivers from its event
/// loop: nothing there may block or start a thread.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum WaitMode {
    /// Poll the device on this thread (blocking API).
    #[cfg_attr(target_arch = "wasm32", allow(dead_code))]
    Block,
    /// Poll the device on a helper thread and await the outcome (async API).
    Offload,
}

/// The result of a `map_async` callback, and a signal for it: the callback
/// may run on whichever thread polls the device (another evaluator's, the
/// app's), so a waiter that finds it missing after its own poll waits for it.
/// On the web the callback also fires `fired`, which the waiter awaits.
pub(crate) struct MapSignal {
    slot: Mutex<Option<core::result::Result<(), wgpu::BufferAsyncError>>>,
    signal: std::sync::Condvar,
    #[cfg(target_arch = "wasm32")]
    fired: futures_intrusive::channel::shared::OneshotReceiver<()>,
}

type MapOutcome = Arc<MapSignal>;

/// How long to wait for a mapping callback that another thread collected,
/// once the submission is known to be complete.
#[cfg(not(target_arch = "wasm32"))]
const CALLBACK_GRACE: Duration = Duration::from_secs(10);

/// Evaluates batches of Gaussian pairs with the WGSL kernel.
///
/// Create it once and reuse it: the pipeline is built and warmed up at
/// construction, and staging and storage buffers are kept and reused across
/// calls (they grow by size class and are never shrunk). It is `Send + Sync`;
/// concurrent calls on one evaluator are serialised on its buffers.
pub(crate) struct GpuEvaluator {
    device: wgpu::Device,
    queue: wgpu::Queue,
    adapter: Option<AdapterSummary>,
    reason: Option<String>,
    kernel: Kernel,
    chunk_pairs: u64,
    host_chunk_pairs: u64,
    max_groups_x: u32,
    offset_alignment: u64,
    max_binding: u64,
    mapped_storage: bool,
    slots: usize,
    /// Set when the device is known to be lost (own devices: lost callback).
    lost: Arc<AtomicBool>,
    /// Whether the device flushes subnormal results to zero (WGSL allows it;
    /// the browsers' SwiftShader does): measured at warm-up. Then rows with a
    /// zero or subnormal value are recomputed on the CPU.
    flushes_subnormals: AtomicBool,
    /// Current wait timeout in nanoseconds; `u64::MAX`: none.
    timeout_ns: AtomicU64,
    /// Fault injected for tests (see [`GpuEvaluator::inject_fault`]).
    fault: std::sync::atomic::AtomicU8,
    scratch: futures_intrusive::sync::Mutex<Option<Scratch>>,
    encode_cache: Mutex<HashMap<BindKey, wgpu::BindGroup>>,
    /// The full-covariance host path's buffers (src/gpu/mvn.rs), held
    /// across the waits of a run.
    mvn: futures_intrusive::sync::Mutex<Option<mvn::Buffers>>,
    /// The full-covariance kernel's layout, pipelines, headers and the device
    /// path's scratch (src/gpu/mvn.rs, src/gpu/mvn_device.rs).
    mvn_kernel: std::sync::Mutex<Option<mvn::MvnKernel>>,
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
            .field("host_chunk_pairs", &self.host_chunk_pairs)
            .field("workgroup_size", &self.kernel.workgroup_size)
            .finish_non_exhaustive()
    }
}

fn duration_ns(d: Option<Duration>) -> u64 {
    d.map_or(u64::MAX, |d| {
        u64::try_from(d.as_nanos()).unwrap_or(u64::MAX - 1)
    })
}

#[cfg(not(target_arch = "wasm32"))]
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
    /// An evaluator with its own instance, adapter and device, on the
    /// adapter chosen by [`context::choose_adapter`] (honours `WGPU_BACKEND`,
    /// `WGPU_ADAPTER_NAME`, `WGPU_POWER_PREF`).
    pub(crate) async fn new_async(options: &Options) -> Result<GpuEvaluator> {
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
        #[cfg(not(target_arch = "wasm32"))]
        block_on(ev.warm_up(WaitMode::Block))?;
        #[cfg(target_arch = "wasm32")]
        ev.warm_up(WaitMode::Offload).await?;
        Ok(ev)
    }

    /// An evaluator on the caller's device and queue (cloned handles: the
    /// caller keeps its own). Checks the device's limits and warms the
    /// pipeline up (one tiny blocking dispatch).
    #[cfg(not(target_arch = "wasm32"))]
    pub(crate) fn from_device_with_options(
        device: &wgpu::Device,
        queue: &wgpu::Queue,
        options: &Options,
    ) -> Result<GpuEvaluator> {
        block_on(Self::on_device(device, queue, options, WaitMode::Block))
    }

    /// [`from_device_with_options`](Self::from_device_with_options) for
    /// async code (and the web): the warm-up dispatch is awaited.
    pub(crate) async fn from_device_async(
        device: &wgpu::Device,
        queue: &wgpu::Queue,
        options: &Options,
    ) -> Result<GpuEvaluator> {
        Self::on_device(device, queue, options, WaitMode::Offload).await
    }

    /// Build on the caller's device and warm up, waiting per `mode`.
    async fn on_device(
        device: &wgpu::Device,
        queue: &wgpu::Queue,
        options: &Options,
        mode: WaitMode,
    ) -> Result<GpuEvaluator> {
        let ev = Self::build(device, queue, options)?;
        ev.warm_up(mode).await?;
        Ok(ev)
    }

    fn build(
        device: &wgpu::Device,
        queue: &wgpu::Queue,
        options: &Options,
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
            chunk_pairs,
            host_chunk_pairs,
            max_groups_x: limits.max_compute_workgroups_per_dimension,
            offset_alignment: u64::from(limits.min_storage_buffer_offset_alignment.max(4)),
            max_binding,
            mapped_storage,
            slots: options.chunks_in_flight.clamp(1, 8),
            lost: Arc::new(AtomicBool::new(false)),
            flushes_subnormals: AtomicBool::new(false),
            timeout_ns: AtomicU64::new(duration_ns(options.timeout)),
            fault: std::sync::atomic::AtomicU8::new(0),
            scratch: futures_intrusive::sync::Mutex::new(None, false),
            encode_cache: Mutex::new(HashMap::new()),
            mvn: futures_intrusive::sync::Mutex::new(None, false),
            mvn_kernel: std::sync::Mutex::new(None),
            counters,
        })
    }

    /// Whether the device is known to be lost: every call then fails with
    /// [`Error::DeviceLost`] and the evaluator must be recreated. (Known
    /// through the lost callback on devices the evaluator created, and through
    /// failed waits on any device.)
    pub(crate) fn is_lost(&self) -> bool {
        self.lost.load(Ordering::SeqCst)
    }

    /// Change the longest wait for the GPU (`None`: wait indefinitely).
    pub(crate) fn set_timeout(&self, timeout: Option<Duration>) {
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
    pub(crate) fn inject_fault(&self, fault: Fault) {
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

    /// Compile the pipelines of the common metric sets and run them once, so
    /// that drivers that compile at first dispatch (llvmpipe) do it now.
    async fn warm_up(&self, mode: WaitMode) -> Result<()> {
        let pair = [GaussianPair::<f32>::new(0.0, 1.0, 1.0, 2.0)];
        for metrics in [Metrics::CE_KL_ENTROPY, Metrics::CE_KL] {
            let mut out = vec![0.0f32; metrics.len()];
            self.run(&pair, metrics.into(), &mut out, mode, 0).await?;
        }
        // KL = ½(Δμ/σ)² = 5e-41 here, a subnormal f32: a device that flushes
        // subnormal results writes 0.
        let probe = [GaussianPair::<f32>::new(0.0, 1.0, 1e-20, 1.0)];
        let mut out = [0.0f32; 2];
        self.run(&probe, Metrics::CE_KL.into(), &mut out, mode, 0)
            .await?;
        self.flushes_subnormals
            .store(out[1] == 0.0, Ordering::SeqCst);
        Ok(())
    }

    /// The wgpu device this evaluator runs on.
    pub(crate) fn device(&self) -> &wgpu::Device {
        &self.device
    }

    /// The wgpu queue this evaluator submits to.
    pub(crate) fn queue(&self) -> &wgpu::Queue {
        &self.queue
    }

    /// Pairs per chunk on the host path.
    pub(crate) fn host_chunk_pairs(&self) -> u64 {
        self.host_chunk_pairs
    }

    /// The largest single binding this device allows, in bytes.
    pub(crate) fn max_binding_bytes(&self) -> u64 {
        self.max_binding
    }

    /// What the GPU is and what it has created so far.
    pub(crate) fn info(&self) -> crate::GpuInfo {
        let c = &self.counters;
        crate::GpuInfo {
            adapter: self.adapter.clone(),
            adapter_reason: self.reason.clone(),
            supports_f64: self.supports_f64(),
            lost: self.is_lost(),
            chunk_pairs: self.chunk_pairs,
            host_chunk_pairs: self.host_chunk_pairs,
            max_binding_bytes: self.max_binding,
            flushes_subnormals: self.flushes_subnormals.load(Ordering::Relaxed),
            maps_storage_directly: self.mapped_storage,
            buffers: c.buffers.load(Ordering::Relaxed),
            pipelines: c.pipelines.load(Ordering::Relaxed),
            bind_groups: c.bind_groups.load(Ordering::Relaxed),
            submissions: c.submissions.load(Ordering::Relaxed),
            mvn_cells_on_gpu: c.mvn_gpu.load(Ordering::Relaxed),
            mvn_cells_on_cpu: c.mvn_cpu.load(Ordering::Relaxed),
        }
    }

    /// The device features f64 evaluation needs and this device lacks.
    fn missing_f64_features(&self) -> wgpu::Features {
        f64_features() - self.device.features()
    }

    /// Whether the device can run the f64 kernels (`SHADER_F64` and `SHADER_INT64`).
    pub(crate) fn supports_f64(&self) -> bool {
        self.missing_f64_features().is_empty()
    }

    pub(crate) fn require_f64(&self) -> Result<()> {
        let missing = self.missing_f64_features();
        if missing.is_empty() {
            return Ok(());
        }
        let names: Vec<&str> = missing.iter_names().map(|(name, _)| name).collect();
        Err(Error::Unsupported(format!(
            "f64 on the GPU needs the device features SHADER_F64 and SHADER_INT64; \
             this device lacks {}{} (use the CPU for f64)",
            names.join(" and "),
            self.adapter
                .as_ref()
                .map(|a| format!(" (adapter {})", a.info.name))
                .unwrap_or_default()
        )))
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
        (param, param_policy): (Param, OnInvalid),
        offset: usize,
        base: usize,
        fixups: &mut Vec<usize>,
    ) -> Result<()> {
        if any_invalid && param_policy == OnInvalid::Error {
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
            layout @ (Layout::Pairs64 | Layout::Grad64) => {
                self.require_f64()?;
                self.kernel
                    .pipeline_lazy(&self.device, layout, options, &self.counters)
            }
            layout => self
                .kernel
                .pipeline(&self.device, layout, options, &self.counters)
                .ok_or_else(|| Error::Unsupported("no pipeline for the pair layout".into())),
        }
    }

    /// The measures (or, with `gradients`, their gradients) of an array of
    /// pairs of either precision.
    pub(crate) async fn run_pairs<T: GradPrecision>(
        &self,
        pairs: &[GaussianPair<T>],
        options: EvalOptions,
        gradients: bool,
        out: &mut [T],
        mode: WaitMode,
    ) -> Result<()>
    where
        GaussianPair<T>: HostPair<Value = T>,
    {
        if gradients {
            let pairs: &[GradPair<T>] = bytemuck::cast_slice(pairs);
            self.run(pairs, options, out, mode, 0).await
        } else {
            self.run(pairs, options, out, mode, 0).await
        }
    }

    pub(crate) async fn run<P: HostPair>(
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
                (options.param, options.on_invalid, offset),
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
        // On a device that flushes subnormal results, a zero or subnormal
        // value may be a flushed one: the CPU recomputes the row.
        if self.flushes_subnormals.load(Ordering::Relaxed) {
            let normal = match <P::Value as Float>::PRECISION {
                crate::Precision::F32 => f64::from(f32::MIN_POSITIVE),
                crate::Precision::F64 => f64::MIN_POSITIVE,
            };
            let flushed = |v: &P::Value| {
                let x: f64 = (*v).into();
                x.abs() < normal
            };
            for (p, row) in pairs.iter().zip(out.chunks_exact_mut(k)) {
                if row.iter().any(flushed) {
                    p.fix_row(options.param, metrics, row);
                }
            }
        }
        Ok(())
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
