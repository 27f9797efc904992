//! Full-covariance pairs on the GPU (docs/ARCHITECTURE.md §9): the kernel
//! `shaders/mvn.wgsl` (one invocation per pair or cell, its matrices in a
//! scratch binding) evaluates the pairs far apart in the CPU's own
//! formulation; the cells it leaves — close together (the near forms and
//! their double-word residuals stay on the CPU), inputs the host's checks
//! reject, failed factorisations, f32 coefficients with a large D_B, cells llvmpipe's loop limit cut
//! short, results
//! the device may have flushed — are evaluated by the CPU mirror
//! ([`crate::mvn::redo`]), which also names an invalid pair.

use super::*;
use crate::mvn::{Cells, MvnReal, Plan};
use crate::verify::Precision;
use rayon::prelude::*;

/// The largest dimension the kernel takes (the d ≤ 64; the cost per
/// invocation grows as d³ and beyond this a single pair's loops are long
/// enough to risk a device's watchdog). Larger pairs are refused on the GPU
/// (the CPU backend takes any d). On llvmpipe (the CI's adapter) cells whose
/// loops exceed that driver's shared iteration limit — from about d = 16 on
/// for D_B and W₂ — are flagged by the kernel and evaluated on the CPU.
pub(crate) const MAX_GPU_DIMS: usize = 64;

/// Invocations per workgroup of `main_mvn` (its per-invocation work is large).
pub(super) const WORKGROUP: u32 = 64;

/// Most cells per dispatch (bounds the buffers whatever the batch).
pub(super) const CHUNK_CAP: u64 = 1 << 16;

/// A pipeline of the full-covariance kernel: precision (f64?), the
/// measures' bits and the dimension (a pipeline constant: constant loop
/// bounds, see `shaders/mvn_linalg.wgsl`); which f32 rows go to the host for
/// refinement follows from them, and the forms are read from the input.
type Key = (bool, u16, usize);

/// The compiled side of the full-covariance kernel, shared by the host path
/// and the device path ([`GpuEvaluator::encode`]): its bind group layout,
/// modules (compiled on first use), pipelines, the small uniform headers
/// (dimension, forms, loop probe) and the device path's scratch buffer
/// (grown, never shrunk). Held under a plain mutex, never across an await.
pub(super) struct MvnKernel {
    pub(super) layout: wgpu::BindGroupLayout,
    pipeline_layout: wgpu::PipelineLayout,
    modules: [Option<wgpu::ShaderModule>; 2],
    pipelines: HashMap<Key, wgpu::ComputePipeline>,
    headers: HashMap<(u32, u32, u32), wgpu::Buffer>,
    /// Scratch of the device path (reused by every pass it records: passes
    /// of one queue run in order).
    pub(super) device_scratch: Option<wgpu::Buffer>,
}

/// The host path's buffers of one chunk (grown, never shrunk): packed
/// input, output, scratch, readback.
pub(super) struct Buffers {
    input: wgpu::Buffer,
    output: wgpu::Buffer,
    scratch: wgpu::Buffer,
    download: wgpu::Buffer,
}

/// Byte sizes of one chunk's bindings.
#[derive(Clone, Copy)]
struct Sizes {
    input: u64,
    output: u64,
    scratch: u64,
}

impl MvnKernel {
    fn new(device: &wgpu::Device) -> MvnKernel {
        let layout = device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
            label: Some("gaussdiv mvn bind group layout"),
            entries: &[
                kernel::storage(0, true),
                kernel::storage(1, false),
                kernel::storage(2, false),
                wgpu::BindGroupLayoutEntry {
                    binding: 3,
                    visibility: wgpu::ShaderStages::COMPUTE,
                    ty: wgpu::BindingType::Buffer {
                        ty: wgpu::BufferBindingType::Uniform,
                        has_dynamic_offset: false,
                        min_binding_size: wgpu::BufferSize::new(HEADER_BYTES),
                    },
                    count: None,
                },
            ],
        });
        let pipeline_layout = device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
            label: Some("gaussdiv mvn pipeline layout"),
            bind_group_layouts: &[Some(&layout)],
            immediate_size: 0,
        });
        MvnKernel {
            layout,
            pipeline_layout,
            modules: [None, None],
            pipelines: HashMap::new(),
            headers: HashMap::new(),
            device_scratch: None,
        }
    }

    /// The uniform header for dimension `d` and the forms `(k1, k2)`.
    pub(super) fn header(
        &mut self,
        device: &wgpu::Device,
        d: u32,
        k1: u32,
        k2: u32,
    ) -> wgpu::Buffer {
        use wgpu::util::DeviceExt;
        self.headers
            .entry((d, k1, k2))
            .or_insert_with(|| {
                device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
                    label: Some("gaussdiv mvn header"),
                    contents: bytemuck::cast_slice(&[d, k1, k2, LOOP_PROBE]),
                    usage: wgpu::BufferUsages::UNIFORM,
                })
            })
            .clone()
    }
}

/// Bytes of the uniform header (binding 3): the dimension, the sides' forms
/// and the trip count of the kernel's `loops_completed` probe, as `u32`.
pub(super) const HEADER_BYTES: u64 = 16;

/// The trip count of `loops_completed` in `shaders/mvn.wgsl` (read from the
/// input, so that the compiler cannot unroll that loop).
const LOOP_PROBE: u32 = 2;

/// Values per packed pair (see [`crate::mvn::packed_stride`]).
pub(super) fn pair_stride(d: usize) -> usize {
    crate::mvn::packed_stride(d)
}

/// Scratch values per cell (`scratch_per_pair` of `shaders/mvn.wgsl`).
pub(super) fn scratch_per_pair(d: usize) -> usize {
    10 * d * d + 5 * d
}

/// Cells `cells` of `plan` packed as the kernel reads them into `dst`.
fn pack<T: Float + MvnReal>(plan: &Plan<'_, T>, cells: std::ops::Range<usize>, dst: &mut [T]) {
    let d = plan.dims();
    let (dd, stride) = (d * d, pair_stride(d));
    dst.par_chunks_mut(stride)
        .zip(cells.into_par_iter())
        .for_each(|(row, c)| {
            let (i1, i2) = plan.at(c);
            let parts = [
                plan.p.mu.get(i1 * d..(i1 + 1) * d),
                plan.p.cov.values().get(i1 * dd..(i1 + 1) * dd),
                plan.q.mu.get(i2 * d..(i2 + 1) * d),
                plan.q.cov.values().get(i2 * dd..(i2 + 1) * dd),
            ];
            crate::mvn::pack_pair(row, parts);
        });
}

impl GpuEvaluator {
    /// Full-covariance pairs (or pairwise cells) on the GPU into `out`
    /// (`k` values per cell, canonical order), with the CPU evaluating the
    /// cells the kernel leaves (see the module documentation).
    pub(crate) async fn run_mvn<T: Float + MvnReal>(
        &self,
        cells: Cells<'_, T>,
        o: EvalOptions,
        out: &mut [T],
        mode: WaitMode,
    ) -> Result<()> {
        let k = o.metrics.len();
        let plan = Plan::new(cells, k, out.len())?;
        if plan.cells == 0 || k == 0 {
            return Ok(());
        }
        let d = plan.dims();
        if d > MAX_GPU_DIMS {
            return Err(Error::Unsupported(format!(
                "full-covariance pairs of dims {d} on the GPU: its kernel takes dims ≤ \
                 {MAX_GPU_DIMS} (the CPU backend takes any d)"
            )));
        }
        let f64 = T::PRECISION == Precision::F64;
        if f64 {
            self.require_f64()?;
        }
        self.check_alive()?;
        if self.device.limits().max_storage_buffers_per_shader_stage < 3 {
            return Err(Error::Unsupported(
                "the full-covariance kernel needs 3 storage buffers per shader stage".into(),
            ));
        }
        let size = size_of::<T>() as u64;
        let stride = pair_stride(d);
        let per_cell = Sizes {
            input: stride as u64 * size,
            output: k as u64 * size,
            scratch: scratch_per_pair(d) as u64 * size,
        };
        let widest = per_cell.input.max(per_cell.output).max(per_cell.scratch);
        let max_x = u64::from(self.max_groups_x);
        let chunk = (self.max_binding / widest)
            .min(CHUNK_CAP)
            .min(max_x * max_x * u64::from(WORKGROUP)) as usize;
        if chunk == 0 {
            return Err(Error::TooLarge(format!(
                "one full-covariance pair of dims {d} does not fit this device's bindings"
            )));
        }
        // The input checks of the CPU path, on every cell: the kernel trusts its input.
        let mut redo: Vec<usize> = (0..plan.cells)
            .into_par_iter()
            .filter(|&c| !plan.inputs_valid(c))
            .collect();

        let (k1, k2) = plan.kind_codes();
        let (pipeline, layout, header) = self.mvn_kernel(f64, o.metrics, d, (k1, k2))?;
        let chunk_sizes = Sizes {
            input: per_cell.input * chunk.min(plan.cells) as u64,
            output: per_cell.output * chunk.min(plan.cells) as u64,
            scratch: per_cell.scratch * chunk.min(plan.cells) as u64,
        };
        let mut guard = self.mvn.lock().await;
        self.mvn_buffers(&mut guard, chunk_sizes)?;
        let bufs = guard
            .as_ref()
            .ok_or_else(|| Error::Gpu("full-covariance buffers missing".into()))?;
        let mut packed = vec![T::default(); chunk.min(plan.cells) * stride];
        let mut c0 = 0;
        while c0 < plan.cells {
            let n = chunk.min(plan.cells - c0);
            let src = packed.get_mut(..n * stride).unwrap_or_default();
            pack(&plan, c0..c0 + n, src);
            let n64 = n as u64;
            let out_bytes = n64 * per_cell.output;
            self.queue
                .write_buffer(&bufs.input, 0, bytemuck::cast_slice(src));
            Counters::bump(&self.counters.bind_groups);
            let bind_group = self.device.create_bind_group(&wgpu::BindGroupDescriptor {
                label: Some("gaussdiv mvn bind group"),
                layout: &layout,
                entries: &[
                    buffer_entry(0, &bufs.input, 0, n64 * per_cell.input),
                    buffer_entry(1, &bufs.output, 0, out_bytes),
                    buffer_entry(2, &bufs.scratch, 0, n64 * per_cell.scratch),
                    buffer_entry(3, &header, 0, HEADER_BYTES),
                ],
            });
            let scope = self.device.push_error_scope(wgpu::ErrorFilter::Validation);
            let mut encoder = self
                .device
                .create_command_encoder(&wgpu::CommandEncoderDescriptor {
                    label: Some("gaussdiv mvn chunk"),
                });
            {
                let (x, y) = grid(n64.div_ceil(u64::from(WORKGROUP)), self.max_groups_x);
                let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
                    label: Some("gaussdiv mvn pass"),
                    timestamp_writes: None,
                });
                pass.set_pipeline(&pipeline);
                pass.set_bind_group(0, &bind_group, &[]);
                pass.dispatch_workgroups(x, y, 1);
            }
            encoder.copy_buffer_to_buffer(&bufs.output, 0, &bufs.download, 0, out_bytes);
            let submission = self.queue.submit([encoder.finish()]);
            Counters::bump(&self.counters.submissions);
            if let Some(e) = scope.pop().await {
                return Err(Error::Gpu(e.to_string()));
            }
            let outcome = self.request_map(&bufs.download, out_bytes, wgpu::MapMode::Read)?;
            self.wait(&outcome, Some(submission), mode).await?;
            {
                let view = bufs
                    .download
                    .slice(..out_bytes)
                    .get_mapped_range()
                    .map_err(|e| Error::Map(e.to_string()))?;
                let dst = out
                    .get_mut(c0 * k..(c0 + n) * k)
                    .ok_or_else(|| Error::Gpu("readback range outside the output".into()))?;
                let dst: &mut [u8] = bytemuck::cast_slice_mut(dst);
                if dst.len() != view.len() {
                    return Err(Error::Gpu("readback size mismatch".into()));
                }
                dst.copy_from_slice(&view);
            }
            bufs.download.unmap();
            c0 += n;
        }
        drop(guard);

        // The cells the kernel left (NaN rows), and where the device may flush
        // subnormal results, rows holding a zero or subnormal value.
        let flushes = self.flushes_subnormals.load(Ordering::Relaxed);
        let tiny = if f64 {
            f64::MIN_POSITIVE
        } else {
            f64::from(f32::MIN_POSITIVE)
        };
        let left = crate::mvn::rows_where(out, k, |v| v.is_nan() || (flushes && v.abs() < tiny));
        redo.extend(left);
        redo.sort_unstable();
        redo.dedup();
        let on_cpu = redo.len() as u64;
        self.counters.mvn_cpu.fetch_add(on_cpu, Ordering::Relaxed);
        self.counters
            .mvn_gpu
            .fetch_add(plan.cells as u64 - on_cpu, Ordering::Relaxed);
        crate::mvn::redo(&plan, &redo, o, out)
    }

    /// The pipeline for (precision, measures, dimension), the bind group
    /// layout and the uniform header for the forms `kinds`, compiling the
    /// precision's module on first use (a compilation failure is an error;
    /// nothing is cached then).
    pub(super) fn mvn_kernel(
        &self,
        f64: bool,
        metrics: Metrics,
        d: usize,
        kinds: (u32, u32),
    ) -> Result<(wgpu::ComputePipeline, wgpu::BindGroupLayout, wgpu::Buffer)> {
        let mut guard = match self.mvn_kernel.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        let state = guard.get_or_insert_with(|| MvnKernel::new(&self.device));
        let header = state.header(&self.device, d as u32, kinds.0, kinds.1);
        let pipeline = self.mvn_pipeline(state, (f64, metrics.bits(), d), metrics)?;
        Ok((pipeline, state.layout.clone(), header))
    }

    /// The pipeline for `key`, compiling its precision's module on first use;
    /// a compilation failure is an error (nothing is cached then).
    fn mvn_pipeline(
        &self,
        state: &mut MvnKernel,
        key: Key,
        metrics: Metrics,
    ) -> Result<wgpu::ComputePipeline> {
        if let Some(p) = state.pipelines.get(&key) {
            return Ok(p.clone());
        }
        let (f64, _, dims) = key;
        // f32 rows the host finishes in f64 (mvn::f32_db_refinement).
        let refine = if f64 {
            None
        } else {
            crate::mvn::f32_db_refinement(dims, metrics)
        };
        let scope = self.device.push_error_scope(wgpu::ErrorFilter::Validation);
        let slot = usize::from(f64);
        let module = match state.modules.get(slot).cloned().flatten() {
            Some(m) => m,
            None => {
                let (label, source) = if f64 {
                    ("gaussdiv mvn.wgsl (f64)", kernel::MVN_SHADER_SOURCE_F64)
                } else {
                    ("gaussdiv mvn.wgsl", kernel::MVN_SHADER_SOURCE)
                };
                self.device
                    .create_shader_module(wgpu::ShaderModuleDescriptor {
                        label: Some(label),
                        source: wgpu::ShaderSource::Wgsl(source.into()),
                    })
            }
        };
        let flag = |m: Metric| if metrics.contains(m) { 1.0 } else { 0.0 };
        let constants = [
            ("WORKGROUP_SIZE", f64::from(WORKGROUP)),
            ("PARAM", 0.0),
            ("WRITE_CE", flag(Metric::CrossEntropy)),
            ("WRITE_KL", flag(Metric::Kl)),
            ("WRITE_ENTROPY", flag(Metric::Entropy)),
            ("WRITE_ENTROPY_Q", flag(Metric::EntropyQ)),
            ("WRITE_REVERSE_KL", flag(Metric::ReverseKl)),
            ("WRITE_JEFFREYS", flag(Metric::Jeffreys)),
            ("WRITE_BHATTACHARYYA", flag(Metric::Bhattacharyya)),
            (
                "WRITE_BHATTACHARYYA_COEFFICIENT",
                flag(Metric::BhattacharyyaCoefficient),
            ),
            ("WRITE_HELLINGER", flag(Metric::Hellinger)),
            ("WRITE_WASSERSTEIN2", flag(Metric::Wasserstein2)),
            ("REFINE_BC", if refine.is_some() { 1.0 } else { 0.0 }),
            ("D", dims as f64),
            (
                "BC_REFINE_LIMIT",
                refine.unwrap_or(crate::mvn::bc_refine_db(dims)),
            ),
            ("SYM_TOL_ULPS", crate::mvn::SYM_TOL_ULPS),
            (
                "W2_ON_HOST",
                if !f64 && crate::mvn::f32_w2_in_f64(dims, metrics) {
                    1.0
                } else {
                    0.0
                },
            ),
        ];
        Counters::bump(&self.counters.pipelines);
        let pipeline = self
            .device
            .create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
                label: Some("gaussdiv mvn pipeline"),
                layout: Some(&state.pipeline_layout),
                module: &module,
                entry_point: Some("main_mvn"),
                compilation_options: wgpu::PipelineCompilationOptions {
                    constants: &constants,
                    zero_initialize_workgroup_memory: false,
                },
                cache: None,
            });
        if let Some(e) = now(scope.pop()).flatten() {
            return Err(Error::Gpu(format!(
                "the full-covariance kernel did not compile: {e}"
            )));
        }
        if let Some(m) = state.modules.get_mut(slot) {
            *m = Some(module);
        }
        state.pipelines.insert(key, pipeline.clone());
        Ok(pipeline)
    }

    /// Buffers with room for one chunk of `sizes`, reused when large enough.
    fn mvn_buffers(&self, buffers: &mut Option<Buffers>, sizes: Sizes) -> Result<()> {
        use wgpu::BufferUsages as U;
        let enough = matches!(buffers, Some(b)
            if b.input.size() >= sizes.input
                && b.output.size() >= sizes.output
                && b.scratch.size() >= sizes.scratch);
        if !enough {
            *buffers = None; // release the old ones first
            let oom = self.device.push_error_scope(wgpu::ErrorFilter::OutOfMemory);
            let validation = self.device.push_error_scope(wgpu::ErrorFilter::Validation);
            let b = Buffers {
                input: self.buffer("gaussdiv mvn input", sizes.input, U::STORAGE | U::COPY_DST),
                output: self.buffer(
                    "gaussdiv mvn output",
                    sizes.output,
                    U::STORAGE | U::COPY_SRC,
                ),
                scratch: self.buffer("gaussdiv mvn scratch", sizes.scratch, U::STORAGE),
                download: self.buffer(
                    "gaussdiv mvn readback",
                    sizes.output,
                    U::MAP_READ | U::COPY_DST,
                ),
            };
            let v = now(validation.pop()).flatten();
            let o = now(oom.pop()).flatten();
            if let Some(e) = v.or(o) {
                return Err(Error::Gpu(format!(
                    "could not allocate the full-covariance buffers: {e}"
                )));
            }
            *buffers = Some(b);
        }
        Ok(())
    }
}
