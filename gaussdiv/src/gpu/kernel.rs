//! The shader module, bind group layout and pipelines: created once per
//! evaluator, pipelines specialised per metric set and parameterisation
//! through WGSL `override`s.

use crate::error::{Error, Result};
use crate::pair::{EvalOptions, Metric};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

/// The WGSL module sources, assembled from `shaders/` (see `shaders/modules.rs`).
mod sources {
    include!("../../shaders/modules.rs");
}

/// The kernel's WGSL source: the f32 prelude (`shaders/prelude_f32.wgsl`),
/// the shared pieces (`io.wgsl`, `ln_exp.wgsl`, `measures.wgsl`) and the
/// kernels `divergence.wgsl` (entry points `main` and `main_soa`),
/// `gradients.wgsl` (`main_grad`) and `pairwise.wgsl` (`main_pairwise`).
pub const SHADER_SOURCE: &str = sources::MAIN_F32;

/// The f64 kernel's WGSL source: [`SHADER_SOURCE`] with the f64 prelude
/// (`shaders/prelude_f64.wgsl`) — the same entry points (`main`,
/// `main_soa`, `main_grad`, `main_pairwise`) and bindings, on f64 values
/// (pairs of 4 × f64 read as `vec4<u64>`, f64 results). Needs the device
/// features `SHADER_F64` and `SHADER_INT64`.
pub const SHADER_SOURCE_F64: &str = sources::MAIN_F64;

/// The diagonal kernel's WGSL source: the f32 prelude, the shared pieces
/// and `shaders/diagonal.wgsl` (entry points `main_diagonal` and
/// `main_diagonal_wide`; bindings 0 and 1, as `main`).
pub const DIAGONAL_SHADER_SOURCE: &str = sources::DIAGONAL_F32;

/// The f64 diagonal kernel's WGSL source: [`DIAGONAL_SHADER_SOURCE`] with
/// the f64 prelude (rows of 32-byte pairs at binding 0, f64 results at
/// binding 1). Needs [`f64_features`].
pub(crate) const DIAGONAL_SHADER_SOURCE_F64: &str = sources::DIAGONAL_F64;

/// The full-covariance kernel's WGSL source: the f32 prelude, the shared
/// pieces, `shaders/mvn_linalg.wgsl` and `shaders/mvn.wgsl` (entry point
/// `main_mvn`; bindings 0, 1 and 9).
pub(crate) const MVN_SHADER_SOURCE: &str = sources::MVN_F32;

/// [`MVN_SHADER_SOURCE`] with the f64 prelude. Needs [`f64_features`].
pub(crate) const MVN_SHADER_SOURCE_F64: &str = sources::MVN_F64;

/// Dims from which a diagonal row is reduced by a workgroup (the lanes of
/// `main_diagonal_wide`) instead of one invocation: the CPU mirror's
/// threshold ([`crate::diagonal::WIDE_DIMS`]), so both sum in the same order.
pub(crate) const WIDE_DIMS: usize = crate::diagonal::WIDE_DIMS;

/// Bytes of one input pair in the kernel's input binding.
pub const PAIR_BYTES: u64 = 16;

/// The device features the f64 kernel needs (`f64`, and `u64` for its bit manipulation).
pub fn f64_features() -> wgpu::Features {
    wgpu::Features::SHADER_F64 | wgpu::Features::SHADER_INT64
}

/// Counters of the wgpu objects an evaluator has created (diagnostics; used
/// by tests to show that repeated calls allocate nothing).
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub buffers: AtomicU64,
    pub pipelines: AtomicU64,
    pub bind_groups: AtomicU64,
    pub submissions: AtomicU64,
    /// Full-covariance cells finished by the kernel, and left to the CPU.
    pub mvn_gpu: AtomicU64,
    pub mvn_cpu: AtomicU64,
}

impl Counters {
    pub fn bump(c: &AtomicU64) {
        c.fetch_add(1, Ordering::Relaxed);
    }
}

/// Input layout of a dispatch: which entry point and bind group layout.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Layout {
    /// `main`: an array of 16-byte pairs at binding 0.
    Pairs,
    /// `main_soa`: four arrays of f32 (μ1, σ1, μ2, σ2) at bindings 2–5.
    Soa,
    /// `main` of the f64 kernel: an array of 32-byte pairs at binding 0, f64
    /// values at binding 1 (the bind group layout of [`Layout::Pairs`]).
    Pairs64,
    /// `main_grad` (`shaders/gradients.wgsl`): 16-byte pairs at binding 0,
    /// four gradient values per selected measure at binding 1.
    Grad,
    /// `main_pairwise` (`shaders/pairwise.wgsl`): arrays of 8-byte
    /// Gaussians p and q at bindings 6 and 7, the block's uniform at 8
    /// (dynamic offset), the measures at binding 1.
    Pairwise,
    /// `main_diagonal` of the diagonal module: rows of D pairs at binding 0,
    /// one invocation per row (the bind group layout of [`Layout::Pairs`]).
    Diagonal,
    /// `main_diagonal_wide`: one workgroup per row (large D).
    DiagonalWide,
    /// `main_grad` of the f64 kernel: 32-byte pairs, four f64 gradient
    /// values per selected measure.
    Grad64,
    /// `main_diagonal` of the f64 diagonal module (rows of 32-byte pairs, f64 results).
    Diagonal64,
    /// `main_diagonal_wide` of the f64 diagonal module.
    DiagonalWide64,
}

pub(crate) struct Kernel {
    module: wgpu::ShaderModule,
    /// Bind group layout of `main` (bindings 0, 1).
    pub layout: wgpu::BindGroupLayout,
    /// Bind group layout of `main_soa` (bindings 1–5); `None` on devices
    /// with fewer than 5 storage buffers per shader stage.
    pub soa_layout: Option<wgpu::BindGroupLayout>,
    pipeline_layout: wgpu::PipelineLayout,
    soa_pipeline_layout: Option<wgpu::PipelineLayout>,
    /// Bind group layout of `main_pairwise` (bindings 1, 6, 7, 8).
    pub pairwise_layout: wgpu::BindGroupLayout,
    pairwise_pipeline_layout: wgpu::PipelineLayout,
    pub workgroup_size: u32,
    pipelines: Mutex<HashMap<(Layout, u16, u32), wgpu::ComputePipeline>>,
    /// The f64 module, compiled on first use (only on devices with [`f64_features`]).
    module_f64: Mutex<Option<wgpu::ShaderModule>>,
    /// The diagonal module ([`DIAGONAL_SHADER_SOURCE`]), compiled on first use.
    module_diag: Mutex<Option<wgpu::ShaderModule>>,
    /// The f64 diagonal module, compiled on first use (devices with [`f64_features`]).
    module_diag64: Mutex<Option<wgpu::ShaderModule>>,
}

/// A compute-stage storage-buffer entry of a bind group layout (no dynamic
/// offset, any size): every binding of the kernels is one.
pub(super) fn storage(binding: u32, read_only: bool) -> wgpu::BindGroupLayoutEntry {
    wgpu::BindGroupLayoutEntry {
        binding,
        visibility: wgpu::ShaderStages::COMPUTE,
        ty: wgpu::BindingType::Buffer {
            ty: wgpu::BufferBindingType::Storage { read_only },
            has_dynamic_offset: false,
            min_binding_size: None,
        },
        count: None,
    }
}

impl Kernel {
    pub fn new(device: &wgpu::Device, workgroup_size: u32) -> Kernel {
        let module = device.create_shader_module(wgpu::ShaderModuleDescriptor {
            label: Some("gaussdiv divergence.wgsl"),
            source: wgpu::ShaderSource::Wgsl(SHADER_SOURCE.into()),
        });
        let layout = device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
            label: Some("gaussdiv bind group layout"),
            entries: &[storage(0, true), storage(1, false)],
        });
        let soa_layout = (device.limits().max_storage_buffers_per_shader_stage >= 5).then(|| {
            device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
                label: Some("gaussdiv SoA bind group layout"),
                entries: &[
                    storage(1, false),
                    storage(2, true),
                    storage(3, true),
                    storage(4, true),
                    storage(5, true),
                ],
            })
        });
        let pairwise_layout = device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
            label: Some("gaussdiv pairwise bind group layout"),
            entries: &[
                storage(1, false),
                storage(6, true),
                storage(7, true),
                wgpu::BindGroupLayoutEntry {
                    binding: 8,
                    visibility: wgpu::ShaderStages::COMPUTE,
                    ty: wgpu::BindingType::Buffer {
                        ty: wgpu::BufferBindingType::Uniform,
                        has_dynamic_offset: true,
                        min_binding_size: wgpu::BufferSize::new(PAIRWISE_BLOCK_BYTES),
                    },
                    count: None,
                },
            ],
        });
        let pairwise_pipeline_layout =
            device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
                label: Some("gaussdiv pairwise pipeline layout"),
                bind_group_layouts: &[Some(&pairwise_layout)],
                immediate_size: 0,
            });
        let pipeline_layout = device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
            label: Some("gaussdiv pipeline layout"),
            bind_group_layouts: &[Some(&layout)],
            immediate_size: 0,
        });
        let soa_pipeline_layout = soa_layout.as_ref().map(|l| {
            device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
                label: Some("gaussdiv SoA pipeline layout"),
                bind_group_layouts: &[Some(l)],
                immediate_size: 0,
            })
        });
        Kernel {
            module,
            layout,
            soa_layout,
            pipeline_layout,
            soa_pipeline_layout,
            pairwise_layout,
            pairwise_pipeline_layout,
            workgroup_size,
            pipelines: Mutex::new(HashMap::new()),
            module_f64: Mutex::new(None),
            module_diag: Mutex::new(None),
            module_diag64: Mutex::new(None),
        }
    }

    /// The pipeline for `layout` writing `options.metrics` of pairs in
    /// `options.param`, created on first use; `None` for the SoA layout on
    /// devices without enough storage bindings.
    pub fn pipeline(
        &self,
        device: &wgpu::Device,
        layout: Layout,
        options: EvalOptions,
        counters: &Counters,
    ) -> Option<wgpu::ComputePipeline> {
        let metrics = options.metrics;
        let param = options.param.code();
        let (pipeline_layout, entry, other_module) = match layout {
            Layout::Pairs => (&self.pipeline_layout, "main", None),
            Layout::Grad => (&self.pipeline_layout, "main_grad", None),
            Layout::Pairwise => (&self.pairwise_pipeline_layout, "main_pairwise", None),
            Layout::Soa => (self.soa_pipeline_layout.as_ref()?, "main_soa", None),
            // Created by `pipeline_lazy` (the caller checks the device's features).
            Layout::Pairs64 => (&self.pipeline_layout, "main", Some(self.f64_module()?)),
            Layout::Grad64 => (&self.pipeline_layout, "main_grad", Some(self.f64_module()?)),
            // Created by `pipeline_lazy`, which compiles the module.
            Layout::Diagonal => (
                &self.pipeline_layout,
                "main_diagonal",
                Some(self.diag_module()?),
            ),
            Layout::DiagonalWide => (
                &self.pipeline_layout,
                "main_diagonal_wide",
                Some(self.diag_module()?),
            ),
            Layout::Diagonal64 => (
                &self.pipeline_layout,
                "main_diagonal",
                Some(lock(&self.module_diag64).clone()?),
            ),
            Layout::DiagonalWide64 => (
                &self.pipeline_layout,
                "main_diagonal_wide",
                Some(lock(&self.module_diag64).clone()?),
            ),
        };
        let module = other_module.as_ref().unwrap_or(&self.module);
        let mut map = lock(&self.pipelines);
        let pipeline = map
            .entry((layout, metrics.bits(), param))
            .or_insert_with(|| {
                Counters::bump(&counters.pipelines);
                let flag = |m: Metric| if metrics.contains(m) { 1.0 } else { 0.0 };
                let constants = [
                    ("WORKGROUP_SIZE", f64::from(self.workgroup_size)),
                    ("PARAM", f64::from(param)),
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
                ];
                let label = match layout {
                    Layout::Diagonal | Layout::Diagonal64 => "gaussdiv diagonal pipeline",
                    Layout::DiagonalWide | Layout::DiagonalWide64 => {
                        "gaussdiv diagonal (workgroup per row) pipeline"
                    }
                    _ => "gaussdiv divergence pipeline",
                };
                device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
                    label: Some(label),
                    layout: Some(pipeline_layout),
                    module,
                    entry_point: Some(entry),
                    compilation_options: wgpu::PipelineCompilationOptions {
                        constants: &constants,
                        zero_initialize_workgroup_memory: false,
                    },
                    cache: None,
                })
            })
            .clone();
        Some(pipeline)
    }
}

/// Bytes of the pairwise kernel's per-dispatch uniform (`PairwiseBlock`).
pub(crate) const PAIRWISE_BLOCK_BYTES: u64 = 32;

impl Kernel {
    /// The f64 module, if it has been created.
    fn f64_module(&self) -> Option<wgpu::ShaderModule> {
        lock(&self.module_f64).clone()
    }

    /// The diagonal module, if it has been created.
    fn diag_module(&self) -> Option<wgpu::ShaderModule> {
        lock(&self.module_diag).clone()
    }

    /// The pipeline of a layout whose module is compiled on first use —
    /// the f64 kernels ([`Layout::Pairs64`], [`Layout::Grad64`],
    /// [`Layout::Diagonal64`], [`Layout::DiagonalWide64`]; the caller has
    /// checked [`f64_features`]) and the f32 diagonal kernels — for `options`.
    /// A compilation failure is an error, and nothing is cached then.
    pub fn pipeline_lazy(
        &self,
        device: &wgpu::Device,
        layout: Layout,
        options: EvalOptions,
        counters: &Counters,
    ) -> Result<wgpu::ComputePipeline> {
        let module = match layout {
            Layout::Diagonal64 | Layout::DiagonalWide64 => LazyModule {
                slot: &self.module_diag64,
                label: "gaussdiv diagonal.wgsl (f64)",
                source: DIAGONAL_SHADER_SOURCE_F64,
                what: "f64 diagonal",
            },
            Layout::Diagonal | Layout::DiagonalWide => LazyModule {
                slot: &self.module_diag,
                label: "gaussdiv diagonal.wgsl",
                source: DIAGONAL_SHADER_SOURCE,
                what: "diagonal",
            },
            _ => LazyModule {
                slot: &self.module_f64,
                label: "gaussdiv divergence.wgsl (f64)",
                source: SHADER_SOURCE_F64,
                what: "f64",
            },
        };
        self.lazy_pipeline(device, layout, options, counters, module)
    }

    /// A pipeline of a module compiled on first use (`module.slot`): cached
    /// like every pipeline; a compilation failure is an error, and then
    /// neither the module nor the pipeline is kept, so that a later call
    /// reports it again.
    fn lazy_pipeline(
        &self,
        device: &wgpu::Device,
        layout: Layout,
        options: EvalOptions,
        counters: &Counters,
        module: LazyModule<'_>,
    ) -> Result<wgpu::ComputePipeline> {
        let key = (layout, options.metrics.bits(), options.param.code());
        if let Some(p) = lock(&self.pipelines).get(&key).cloned() {
            return Ok(p);
        }
        let scope = device.push_error_scope(wgpu::ErrorFilter::Validation);
        {
            let mut slot = lock(module.slot);
            if slot.is_none() {
                *slot = Some(device.create_shader_module(wgpu::ShaderModuleDescriptor {
                    label: Some(module.label),
                    source: wgpu::ShaderSource::Wgsl(module.source.into()),
                }));
            }
        }
        let pipeline = self.pipeline(device, layout, options, counters);
        if let Some(e) = super::now(scope.pop()).flatten() {
            lock(&self.pipelines).remove(&key);
            *lock(module.slot) = None;
            return Err(Error::Gpu(format!(
                "the {} kernel did not compile: {e}",
                module.what
            )));
        }
        pipeline.ok_or_else(|| Error::Gpu(format!("the {} kernel module is missing", module.what)))
    }
}

/// A shader module compiled on first use: where it is kept, its label and
/// source, and its name in errors.
struct LazyModule<'a> {
    slot: &'a Mutex<Option<wgpu::ShaderModule>>,
    label: &'static str,
    source: &'static str,
    what: &'static str,
}

/// The guarded value, also after a panic elsewhere poisoned the lock.
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    match m.lock() {
        Ok(g) => g,
        Err(poisoned) => poisoned.into_inner(),
    }
}

/// Workgroup grid for `groups` workgroups: `(x, y)` with `x ≤ max_x`, `x·y ≥ groups`.
pub(crate) fn grid(groups: u64, max_x: u32) -> (u32, u32) {
    let max_x = u64::from(max_x.max(1));
    if groups <= max_x {
        return (groups as u32, 1);
    }
    let y = groups.div_ceil(max_x);
    let x = groups.div_ceil(y);
    (x as u32, y as u32)
}

#[cfg(test)]
mod tests {
    use super::grid;

    #[test]
    fn grid_covers_and_respects_limits() {
        for &(g, m) in &[
            (1u64, 65535u32),
            (65535, 65535),
            (65536, 65535),
            (131_071, 65535),
            (65535 * 65535, 65535),
            (1_000_003, 7),
        ] {
            let (x, y) = grid(g, m);
            assert!(x <= m, "{g} {m}");
            assert!(y <= 65535 || m < 65535, "{g} {m}");
            assert!(u64::from(x) * u64::from(y) >= g);
            assert!(
                u64::from(x) * u64::from(y) - g < u64::from(y),
                "little waste"
            );
        }
    }
}
