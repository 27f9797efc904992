//! The KL term of a VAE on the GPU, inside the app's own command stream: a
//! batch of B samples with D latent dims, the encoder's outputs (μ, ln σ²)
//! already in a device buffer, the prior N(0, I). One encoder records
//!
//! * `encode` of a diagonal batch (`DeviceInput::Diagonal`): the per-sample
//!   KL(q(z|x) ‖ N(0, I)) summed over the D dims (the reduction runs in the
//!   kernel), and
//! * `encode` of the gradient request on the same pairs
//!   (`DeviceInput::Pairs`, `Request::gradients`): ∂KL/∂μ and ∂KL/∂ln σ²
//!   per latent dim (what the backward pass needs, without autograd),
//!
//! one submit, and the results are checked against the closed forms
//! KL = ½Σ(μ² + e^lv − 1 − lv), ∂/∂μ = μ, ∂/∂lv = ½(e^lv − 1), in f64.
//! Exits non-zero on a mismatch.
//!
//! ```text
//! cargo run --release --example vae_kl
//! ```

use gaussdiv::wgpu::{self, util::DeviceExt};
use gaussdiv::{
    Backend, DeviceBatch, DeviceInput, Evaluator, GaussianPair, Metric, Metrics, Param, Request,
};

const B: usize = 4096;
const D: usize = 32;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    if std::env::var_os("XDG_RUNTIME_DIR").is_none() {
        std::env::set_var("XDG_RUNTIME_DIR", std::env::temp_dir());
    }
    let gpu = match Evaluator::new(Backend::Gpu) {
        Ok(g) => g,
        Err(e) => {
            println!("no GPU adapter ({e}); nothing to show");
            return Ok(());
        }
    };
    // The evaluator's own device: the app creates its buffers there.
    let (device, queue) = gpu.device().ok_or("a GPU evaluator has a device")?;

    // The encoder's outputs: (μ, ln σ²) per latent dim; the prior N(0, 1) is (0, ln 1 = 0).
    let mut s = 0x2545_f491_4f6c_dd1du64;
    let mut unit = move || {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        (s >> 40) as f32 / (1u64 << 24) as f32
    };
    let pairs: Vec<GaussianPair> = (0..B * D)
        .map(|i| {
            // every 16th dim collapsed onto the prior (KL ≈ 0: the hard case in f32)
            let scale = if i % 16 == 0 { 1e-4 } else { 1.0 };
            let mu = scale * (4.0 * unit() - 2.0);
            let lv = scale * (6.0 * unit() - 3.0);
            GaussianPair::new(mu, lv, 0.0, 0.0)
        })
        .collect();
    let input = device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
        label: Some("app latent parameters"),
        contents: bytemuck::cast_slice(&pairs),
        usage: wgpu::BufferUsages::STORAGE,
    });
    let kl_bytes = (B * 4) as u64;
    let grad_bytes = (B * D * 4 * 4) as u64;
    let kl_out = device.create_buffer(&wgpu::BufferDescriptor {
        label: Some("app per-sample KL"),
        size: kl_bytes,
        usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC,
        mapped_at_creation: false,
    });
    let grad_out = device.create_buffer(&wgpu::BufferDescriptor {
        label: Some("app KL gradients"),
        size: grad_bytes,
        usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC,
        mapped_at_creation: false,
    });
    let readback = device.create_buffer(&wgpu::BufferDescriptor {
        label: Some("app readback"),
        size: kl_bytes + grad_bytes,
        usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
        mapped_at_creation: false,
    });

    // KL of inputs given as (μ, ln σ²), and its gradients (4 values per pair).
    let kl = Metrics::new(&[Metric::Kl]).ok_or("metrics")?;
    let kl_only = Request::measures(kl).with_param(Param::LogVar);
    let kl_gradients = Request::gradients(kl).with_param(Param::LogVar);
    let mut encoder = device.create_command_encoder(&wgpu::CommandEncoderDescriptor {
        label: Some("app training step"),
    });
    // … the app's encoder network would run here …
    gpu.encode(
        &mut encoder,
        DeviceBatch {
            input: DeviceInput::Diagonal {
                pairs: input.slice(..),
                rows: B as u64,
                dims: D as u64,
            },
            output: kl_out.slice(..),
        },
        &kl_only,
    )?;
    gpu.encode(
        &mut encoder,
        DeviceBatch {
            input: DeviceInput::Pairs {
                pairs: input.slice(..),
                count: (B * D) as u64,
            },
            output: grad_out.slice(..),
        },
        &kl_gradients,
    )?;
    encoder.copy_buffer_to_buffer(&kl_out, 0, &readback, 0, kl_bytes);
    encoder.copy_buffer_to_buffer(&grad_out, 0, &readback, kl_bytes, grad_bytes);
    queue.submit([encoder.finish()]);

    let (tx, rx) = std::sync::mpsc::channel();
    readback
        .slice(..)
        .map_async(wgpu::MapMode::Read, move |r| drop(tx.send(r)));
    device.poll(wgpu::PollType::wait_indefinitely())?;
    rx.recv()??;
    let (kl, grads): (Vec<f32>, Vec<f32>) = {
        let view = readback.slice(..).get_mapped_range()?;
        let all: &[f32] = bytemuck::cast_slice(&view);
        (all[..B].to_vec(), all[B..].to_vec())
    };
    readback.unmap();

    // Closed forms in f64 (with expm1 and a compensated sum: the reference).
    let (mut worst_kl, mut worst_grad) = (0f64, 0f64);
    for (b, &got) in kl.iter().enumerate() {
        let terms = pairs[b * D..(b + 1) * D].iter().map(|p| {
            let (mu, lv) = (f64::from(p.mu1), f64::from(p.sigma1));
            // e^lv − 1 − lv without cancellation for tiny lv
            let t = if lv.abs() < 1e-3 {
                lv * lv / 2.0 + lv * lv * lv / 6.0 + lv.powi(4) / 24.0
            } else {
                lv.exp_m1() - lv
            };
            0.5 * (mu * mu + t)
        });
        let want: f64 = terms.sum();
        worst_kl = worst_kl.max((f64::from(got) - want).abs() / want);
    }
    for (i, p) in pairs.iter().enumerate() {
        let (mu, lv) = (f64::from(p.mu1), f64::from(p.sigma1));
        let want = [mu, 0.5 * lv.exp_m1()];
        let got = [grads[4 * i], grads[4 * i + 1]];
        for (g, w) in got.iter().zip(want) {
            if w != 0.0 {
                worst_grad = worst_grad.max((f64::from(*g) - w).abs() / w.abs());
            }
        }
    }
    println!(
        "{B} samples × {D} latent dims on {}: per-sample KL worst relative error {worst_kl:.2e}, \
         gradients (∂/∂μ, ∂/∂ln σ²) worst {worst_grad:.2e} (bound 2e-6)",
        gpu.gpu_info()
            .and_then(|i| i.adapter)
            .map_or("?".into(), |a| a.info.name),
    );
    if worst_kl > 2e-6 || worst_grad > 2e-6 {
        return Err("VAE KL term out of tolerance".into());
    }
    Ok(())
}
