//! `gaussdiv bench --mvn D`: full-covariance pairs of dimension D (both
//! sides given as covariance matrices, f32), end-to-end on the CPU; the
//! worst error is against the same pairs evaluated in f64.

use super::bench::{median, Row};
use super::CliError;
use gaussdiv::{
    wgpu, Backend, Batch, Covariance, DeviceBatch, DeviceInput, Evaluator, MatrixForm, MvnPairs,
    Request, Tolerance,
};
use std::time::{Duration, Instant};

/// N reproducible pairs of dimension `d`: means in [−2, 2], covariances
/// s²·(I + N)(I + N)ᵀ with a scale s per side spread over two decades and
/// correlated off-diagonal entries (N strictly lower, |n_ij| ≤ 0.3/d, so
/// cond Σ ≤ 2.4: the f32 worst error is the formulations', not the
/// conditioning's, ARCHITECTURE §9); every 16th pair has Σ2 = Σ1·(1 + 2⁻¹⁸)
/// (the close-together formulation) and every 16th, offset by 8, equal means.
pub struct MvnBatch {
    pub d: usize,
    pub mu1: Vec<f32>,
    pub cov1: Vec<f32>,
    pub mu2: Vec<f32>,
    pub cov2: Vec<f32>,
}

impl MvnBatch {
    pub fn new(n: usize, d: usize) -> MvnBatch {
        let mut s = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = move || {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            (s >> 11) as f64 / (1u64 << 53) as f64
        };
        let dd = d * d;
        let mut b = MvnBatch {
            d,
            mu1: Vec::with_capacity(n * d),
            cov1: Vec::with_capacity(n * dd),
            mu2: Vec::with_capacity(n * d),
            cov2: Vec::with_capacity(n * dd),
        };
        let cov = |next: &mut dyn FnMut() -> f64, out: &mut Vec<f32>| -> Vec<f32> {
            let scale = 10f64.powf(next() * 2.0 - 1.0);
            let off = 0.6 / d as f64;
            let l: Vec<Vec<f64>> = (0..d)
                .map(|i| {
                    (0..=i)
                        .map(|j| scale * if i == j { 1.0 } else { (next() - 0.5) * off })
                        .collect()
                })
                .collect();
            let start = out.len();
            for li in &l {
                for lj in &l {
                    // Rows of a lower factor: the zip stops at min(i, j) + 1 terms.
                    let v: f64 = li.iter().zip(lj).map(|(a, b)| a * b).sum();
                    out.push(v as f32);
                }
            }
            out.get(start..).unwrap_or_default().to_vec()
        };
        for i in 0..n {
            let m1: Vec<f32> = (0..d).map(|_| (next() * 4.0 - 2.0) as f32).collect();
            let c1 = cov(&mut next, &mut b.cov1);
            b.mu1.extend_from_slice(&m1);
            if i % 16 == 0 {
                b.mu2.extend_from_slice(&m1);
                b.cov2.extend(
                    c1.iter()
                        .map(|&x| (f64::from(x) * (1.0 + 2f64.powi(-18))) as f32),
                );
            } else {
                if i % 16 == 8 {
                    b.mu2.extend_from_slice(&m1);
                } else {
                    b.mu2.extend((0..d).map(|_| (next() * 4.0 - 2.0) as f32));
                }
                cov(&mut next, &mut b.cov2);
            }
        }
        b
    }

    pub fn batch(&self) -> MvnPairs<'_, f32> {
        MvnPairs {
            dims: self.d,
            mu1: &self.mu1,
            cov1: Covariance::Cov(&self.cov1),
            mu2: &self.mu2,
            cov2: Covariance::Cov(&self.cov2),
        }
    }

    /// The worst error of `out` (f32) under `gaussdiv::verify_mvn` (the
    /// same pairs evaluated in f64, the bounds' error model of issue 15):
    /// relative for the divergences and distances, the cross-entropy and
    /// entropies relative to their scale d·½(1 + ln 2π) + Σ|ln L_ii| + KL.
    fn worst_error(&self, request: &Request, out: &[f32]) -> Result<f64, CliError> {
        let r = gaussdiv::verify_mvn(self.batch(), request, out, Tolerance::MVN_F32)?;
        Ok(r.metrics
            .iter()
            .filter_map(|m| m.worst.map(|w| w.error))
            .fold(0.0, f64::max))
    }
}

/// One row per backend: `cpu`, `auto` (which takes the CPU for these pairs,
/// as the library's Auto does) and `gpu` (the kernel for the pairs far
/// apart, the CPU mirror for the others; end to end, the device string
/// saying how many cells each did) with its kernel-only rate: the device
/// path (`DeviceInput::Mvn`) on the packed pairs already on the device,
/// encode + submit + wait, interleaved with the end-to-end runs (the close
/// pairs the kernel leaves as NaN cost nothing there; end to end adds them
/// on the CPU).
pub fn rows(
    n: usize,
    d: usize,
    request: &Request,
    runs: usize,
    backends: &[&str],
) -> Result<Vec<Row>, CliError> {
    // Four arrays of n·d² f32 (and their f64 copies for the check): refuse
    // sizes that cannot be held rather than abort on allocation.
    if d.checked_mul(d)
        .and_then(|dd| dd.checked_mul(n))
        .is_none_or(|v| v > 1 << 31)
    {
        return Err(CliError::input(format!(
            "bench --mvn {d} --pairs {n}: {n} pairs of {d}×{d} matrices are too large for a bench \
             (at most 2^31 matrix entries per side)"
        )));
    }
    let input = MvnBatch::new(n, d);
    let mut rows = Vec::new();
    for &b in backends {
        let gpu = b == "gpu";
        let ev = Evaluator::new(if gpu { Backend::Gpu } else { Backend::Cpu })?;
        let mut out = vec![0f32; n * request.values_per_pair()];
        ev.evaluate(Batch::Mvn(input.batch()), request, &mut out)?;
        let kernel = if gpu && n > 0 {
            Some(Kernel::new(&ev, &input, request)?)
        } else {
            None
        };
        if let Some(k) = &kernel {
            k.once(&ev, request)?; // warm-up
        }
        let mut times = Vec::with_capacity(runs);
        let mut kernel_times = Vec::with_capacity(runs);
        for _ in 0..runs {
            let t = Instant::now();
            ev.evaluate(Batch::Mvn(input.batch()), request, &mut out)?;
            times.push(t.elapsed());
            if let Some(k) = &kernel {
                kernel_times.push(k.once(&ev, request)?);
            }
        }
        let device = match ev.gpu_info() {
            Some(info) if gpu => {
                let total = (info.mvn_cells_on_gpu + info.mvn_cells_on_cpu).max(1);
                format!(
                    "{}, full covariance d={d}, {:.1} % of cells on the kernel",
                    info.adapter
                        .as_ref()
                        .map_or_else(|| "GPU".to_string(), |a| a.info.name.clone()),
                    100.0 * info.mvn_cells_on_gpu as f64 / total as f64
                )
            }
            _ => format!(
                "{} threads, full covariance d={d}",
                rayon::current_num_threads()
            ),
        };
        rows.push(Row {
            backend: match b {
                "auto" => "auto",
                "gpu" => "gpu",
                _ => "cpu",
            },
            chose: (b == "auto").then_some(("cpu", usize::MAX)),
            device,
            pairs: n,
            median: median(times),
            kernel_median: kernel.as_ref().map(|_| median(kernel_times)),
            worst_error: input.worst_error(request, &out)?,
            runs,
        });
    }
    Ok(rows)
}

/// The device-resident buffers of the kernel-only rate: the packed pairs
/// and the output.
struct Kernel {
    device: wgpu::Device,
    queue: wgpu::Queue,
    pairs: wgpu::Buffer,
    output: wgpu::Buffer,
    count: u64,
    dims: u32,
}

impl Kernel {
    fn new(ev: &Evaluator, input: &MvnBatch, request: &Request) -> Result<Kernel, CliError> {
        let (device, queue) = ev
            .device()
            .ok_or_else(|| CliError::input("internal: a GPU evaluator without a device"))?;
        let packed = input.batch().packed()?;
        let count = input.batch().len() as u64;
        let out_bytes = count * request.values_per_pair() as u64 * 4;
        let in_bytes = packed.len() as u64 * 4;
        let max = device.limits().max_buffer_size;
        if in_bytes > max || out_bytes > max {
            return Err(CliError::input(format!(
                "bench --mvn --backend gpu: {count} packed pairs ({in_bytes} bytes) do not fit \
                 one device buffer ({max} bytes); use fewer --pairs"
            )));
        }
        let pairs = device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("bench mvn pairs"),
            size: in_bytes.max(4),
            usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        queue.write_buffer(&pairs, 0, bytemuck::cast_slice(&packed));
        let output = device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("bench mvn output"),
            size: out_bytes.max(4),
            usage: wgpu::BufferUsages::STORAGE,
            mapped_at_creation: false,
        });
        Ok(Kernel {
            device,
            queue,
            pairs,
            output,
            count,
            dims: input.d as u32,
        })
    }

    /// One encode + submit + wait of every pair.
    fn once(&self, ev: &Evaluator, request: &Request) -> Result<Duration, CliError> {
        let t = Instant::now();
        let mut enc = self
            .device
            .create_command_encoder(&wgpu::CommandEncoderDescriptor {
                label: Some("bench mvn kernel"),
            });
        let batch = DeviceBatch {
            input: DeviceInput::Mvn {
                pairs: self.pairs.slice(..),
                count: self.count,
                dims: self.dims,
                forms: [MatrixForm::Cov; 2],
            },
            output: self.output.slice(..),
        };
        ev.encode(&mut enc, batch, request)?;
        let idx = self.queue.submit([enc.finish()]);
        self.device
            .poll(wgpu::PollType::Wait {
                submission_index: Some(idx),
                timeout: None,
            })
            .map_err(|e| CliError::input(format!("GPU wait failed: {e}")))?;
        Ok(t.elapsed())
    }
}
