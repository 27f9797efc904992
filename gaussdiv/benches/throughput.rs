//! Throughput of every path across N = 1e2 … 3e7 (criterion).
//!
//! ```text
//! cargo bench --bench throughput                 # everything
//! cargo bench --bench throughput -- cpu_f32      # one group
//! ```
//! GPU groups are skipped (with a message) when there is no adapter.

mod common;
use common::{configure, pairs};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use gaussdiv::wgpu;
use gaussdiv::{cpu, GaussianPair64, GpuEvaluator, Metrics, OnInvalid};

const SIZES: [usize; 6] = [100, 10_000, 1_000_000, 3_000_000, 10_000_000, 30_000_000];

fn bench_cpu(c: &mut Criterion) {
    let all = pairs(*SIZES.iter().max().unwrap_or(&0), false);
    let metrics = Metrics::CE_KL;
    let mut g = configure(c, "cpu_f32");
    for &n in &SIZES {
        let mut out = vec![0f32; n * metrics.len()];
        g.throughput(Throughput::Elements(n as u64));
        g.bench_with_input(BenchmarkId::from_parameter(n), &n, |b, &n| {
            b.iter(|| cpu::evaluate_metrics_into(&all[..n], metrics, &mut out).unwrap())
        });
    }
    g.finish();
    let wide: Vec<GaussianPair64> = all.iter().map(|p| p.to_f64()).collect();
    let mut g = configure(c, "cpu_f64");
    for &n in &SIZES {
        let mut out = vec![gaussdiv::Divergences64::default(); n];
        g.throughput(Throughput::Elements(n as u64));
        g.bench_with_input(BenchmarkId::from_parameter(n), &n, |b, &n| {
            b.iter(|| cpu::evaluate_f64_into(&wide[..n], &mut out).unwrap())
        });
    }
    g.finish();
}

fn bench_gpu(c: &mut Criterion) {
    let gpu = match GpuEvaluator::with_options(gaussdiv::GpuOptions {
        on_invalid: OnInvalid::Nan,
        ..Default::default()
    }) {
        Ok(g) => g,
        Err(e) => {
            eprintln!("skipping GPU benchmarks: {e}");
            return;
        }
    };
    let all = pairs(*SIZES.iter().max().unwrap_or(&0), false);
    let metrics = Metrics::CE_KL;
    let mut g = configure(c, "gpu_f32_end_to_end");
    for &n in &SIZES {
        let mut out = vec![0f32; n * metrics.len()];
        g.throughput(Throughput::Elements(n as u64));
        g.bench_with_input(BenchmarkId::from_parameter(n), &n, |b, &n| {
            b.iter(|| {
                gpu.evaluate_metrics_into(&all[..n], metrics, &mut out)
                    .unwrap()
            })
        });
    }
    g.finish();

    let device = gpu.device();
    let n_max = *SIZES.iter().max().unwrap_or(&0) as u64;
    let input = device.create_buffer(&wgpu::BufferDescriptor {
        label: Some("bench input"),
        size: n_max * 16,
        usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_DST,
        mapped_at_creation: false,
    });
    gpu.queue()
        .write_buffer(&input, 0, bytemuck::cast_slice(&all));
    let output = device.create_buffer(&wgpu::BufferDescriptor {
        label: Some("bench output"),
        size: n_max * 4 * metrics.len() as u64,
        usage: wgpu::BufferUsages::STORAGE,
        mapped_at_creation: false,
    });
    let mut g = configure(c, "gpu_f32_kernel_only");
    for &n in &SIZES {
        g.throughput(Throughput::Elements(n as u64));
        g.bench_with_input(BenchmarkId::from_parameter(n), &n, |b, &n| {
            b.iter(|| {
                let mut enc = device.create_command_encoder(&Default::default());
                gpu.encode_metrics(
                    &mut enc,
                    input.slice(..),
                    output.slice(..),
                    n as u64,
                    metrics,
                )
                .unwrap();
                let idx = gpu.queue().submit([enc.finish()]);
                device
                    .poll(wgpu::PollType::Wait {
                        submission_index: Some(idx),
                        timeout: None,
                    })
                    .unwrap();
            })
        });
    }
    g.finish();
}

criterion_group!(benches, bench_cpu, bench_gpu);
criterion_main!(benches);
