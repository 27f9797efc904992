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
use gaussdiv::{
    Backend, Batch, DeviceBatch, DeviceInput, Evaluator, GaussianPair64, Metrics, OnInvalid,
    Request,
};

const SIZES: [usize; 6] = [100, 10_000, 1_000_000, 3_000_000, 10_000_000, 30_000_000];

fn bench_cpu(c: &mut Criterion) {
    let cpu = Evaluator::new(Backend::Cpu).unwrap();
    let all = pairs(*SIZES.iter().max().unwrap_or(&0), false);
    let request = Request::measures(Metrics::CE_KL).with_on_invalid(OnInvalid::Nan);
    let mut g = configure(c, "cpu_f32");
    for &n in &SIZES {
        let mut out = vec![0f32; n * request.values_per_pair()];
        g.throughput(Throughput::Elements(n as u64));
        g.bench_with_input(BenchmarkId::from_parameter(n), &n, |b, &n| {
            b.iter(|| {
                cpu.evaluate(Batch::Pairs(&all[..n]), &request, &mut out)
                    .unwrap()
            })
        });
    }
    g.finish();
    // Cross-entropy, KL and entropy in f64 (the reference).
    let wide: Vec<GaussianPair64> = all.iter().map(|p| p.to_f64()).collect();
    let request = Request::default().with_on_invalid(OnInvalid::Nan);
    let mut g = configure(c, "cpu_f64");
    for &n in &SIZES {
        let mut out = vec![0f64; n * request.values_per_pair()];
        g.throughput(Throughput::Elements(n as u64));
        g.bench_with_input(BenchmarkId::from_parameter(n), &n, |b, &n| {
            b.iter(|| {
                cpu.evaluate(Batch::Pairs(&wide[..n]), &request, &mut out)
                    .unwrap()
            })
        });
    }
    g.finish();
}

fn bench_gpu(c: &mut Criterion) {
    let gpu = match Evaluator::new(Backend::Gpu) {
        Ok(g) => g,
        Err(e) => {
            eprintln!("skipping GPU benchmarks: {e}");
            return;
        }
    };
    let all = pairs(*SIZES.iter().max().unwrap_or(&0), false);
    let request = Request::measures(Metrics::CE_KL).with_on_invalid(OnInvalid::Nan);
    let mut g = configure(c, "gpu_f32_end_to_end");
    for &n in &SIZES {
        let mut out = vec![0f32; n * request.values_per_pair()];
        g.throughput(Throughput::Elements(n as u64));
        g.bench_with_input(BenchmarkId::from_parameter(n), &n, |b, &n| {
            b.iter(|| {
                gpu.evaluate(Batch::Pairs(&all[..n]), &request, &mut out)
                    .unwrap()
            })
        });
    }
    g.finish();

    let (device, queue) = gpu.device().unwrap();
    let n_max = *SIZES.iter().max().unwrap_or(&0) as u64;
    let input = device.create_buffer(&wgpu::BufferDescriptor {
        label: Some("bench input"),
        size: n_max * 16,
        usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_DST,
        mapped_at_creation: false,
    });
    queue.write_buffer(&input, 0, bytemuck::cast_slice(&all));
    let output = device.create_buffer(&wgpu::BufferDescriptor {
        label: Some("bench output"),
        size: n_max * 4 * request.values_per_pair() as u64,
        usage: wgpu::BufferUsages::STORAGE,
        mapped_at_creation: false,
    });
    let mut g = configure(c, "gpu_f32_kernel_only");
    for &n in &SIZES {
        g.throughput(Throughput::Elements(n as u64));
        g.bench_with_input(BenchmarkId::from_parameter(n), &n, |b, &n| {
            b.iter(|| {
                let mut enc = device.create_command_encoder(&Default::default());
                gpu.encode(
                    &mut enc,
                    DeviceBatch {
                        input: DeviceInput::Pairs {
                            pairs: input.slice(..),
                            count: n as u64,
                        },
                        output: output.slice(..),
                    },
                    &request,
                )
                .unwrap();
                let idx = queue.submit([enc.finish()]);
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
