//! The shader module, bind group layout and pipelines: created once per
//! evaluator, pipelines specialised per metric set and parameterisation
//! through WGSL `override`s.

use crate::pair::{EvalOptions, Metric};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

/// The kernel's WGSL source (`shaders/divergence.wgsl`).
pub const SHADER_SOURCE: &str = include_str!("../../shaders/divergence.wgsl");

/// Bytes of one input pair in the kernel's input binding.
pub const PAIR_BYTES: u64 = 16;

/// Counters of the wgpu objects an evaluator has created (diagnostics; used
/// by tests to show that repeated calls allocate nothing).
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub buffers: AtomicU64,
    pub pipelines: AtomicU64,
    pub bind_groups: AtomicU64,
    pub submissions: AtomicU64,
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
}

pub(crate) struct Kernel {
    module: wgpu::ShaderModule,
    /// Bind group layout of `main` (bindings 0, 1).
    pub layout: wgpu::BindGroupLayout,
    /// Bind group layout of `main_soa` (bindings 1–5).
    pub soa_layout: wgpu::BindGroupLayout,
    pipeline_layout: wgpu::PipelineLayout,
    soa_pipeline_layout: wgpu::PipelineLayout,
    pub workgroup_size: u32,
    pipelines: Mutex<HashMap<(Layout, u16, u32), wgpu::ComputePipeline>>,
}

impl Kernel {
    pub fn new(device: &wgpu::Device, workgroup_size: u32) -> Kernel {
        let module = device.create_shader_module(wgpu::ShaderModuleDescriptor {
            label: Some("gaussdiv divergence.wgsl"),
            source: wgpu::ShaderSource::Wgsl(SHADER_SOURCE.into()),
        });
        let storage = |binding, read_only| wgpu::BindGroupLayoutEntry {
            binding,
            visibility: wgpu::ShaderStages::COMPUTE,
            ty: wgpu::BindingType::Buffer {
                ty: wgpu::BufferBindingType::Storage { read_only },
                has_dynamic_offset: false,
                min_binding_size: None,
            },
            count: None,
        };
        let layout = device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
            label: Some("gaussdiv bind group layout"),
            entries: &[storage(0, true), storage(1, false)],
        });
        let soa_layout = device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
            label: Some("gaussdiv SoA bind group layout"),
            entries: &[
                storage(1, false),
                storage(2, true),
                storage(3, true),
                storage(4, true),
                storage(5, true),
            ],
        });
        let pipeline_layout = device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
            label: Some("gaussdiv pipeline layout"),
            bind_group_layouts: &[Some(&layout)],
            immediate_size: 0,
        });
        let soa_pipeline_layout = device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
            label: Some("gaussdiv SoA pipeline layout"),
            bind_group_layouts: &[Some(&soa_layout)],
            immediate_size: 0,
        });
        Kernel {
            module,
            layout,
            soa_layout,
            pipeline_layout,
            soa_pipeline_layout,
            workgroup_size,
            pipelines: Mutex::new(HashMap::new()),
        }
    }

    /// The pipeline for `layout` writing `options.metrics` of pairs in
    /// `options.param`, created on first use.
    pub fn pipeline(
        &self,
        device: &wgpu::Device,
        layout: Layout,
        options: EvalOptions,
        counters: &Counters,
    ) -> wgpu::ComputePipeline {
        let metrics = options.metrics;
        let param = options.param.code();
        let mut map = match self.pipelines.lock() {
            Ok(m) => m,
            Err(poisoned) => poisoned.into_inner(),
        };
        map.entry((layout, metrics.bits(), param))
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
                let (pipeline_layout, entry) = match layout {
                    Layout::Pairs => (&self.pipeline_layout, "main"),
                    Layout::Soa => (&self.soa_pipeline_layout, "main_soa"),
                };
                device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
                    label: Some("gaussdiv divergence pipeline"),
                    layout: Some(pipeline_layout),
                    module: &self.module,
                    entry_point: Some(entry),
                    compilation_options: wgpu::PipelineCompilationOptions {
                        constants: &constants,
                        zero_initialize_workgroup_memory: false,
                    },
                    cache: None,
                })
            })
            .clone()
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
