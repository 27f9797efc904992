//! Host-path tuning on the GPU backend: end-to-end time of `evaluate`
//! (CE + KL, f32) for several `Options::host_chunk_pairs` ×
//! `chunks_in_flight` settings, interleaved with the kernel-only time of the
//! same batch already on the device; medians over rounds, and each setting's
//! ratio end-to-end / kernel-only (rates).
//!
//! ```text
//! cargo run --release --example gpu_tune -- [N] [ROUNDS] [CHUNK_KiPAIRS:IN_FLIGHT ...]
//! cargo run --release --example gpu_tune -- 10000000 9 256:2 256:3 512:2 1024:2
//! ```

use gaussdiv::wgpu;
use gaussdiv::{
    Backend, Batch, DeviceBatch, DeviceInput, Evaluator, GaussianPair, Metrics, Options, Request,
};
use std::time::{Duration, Instant};

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    if std::env::var_os("XDG_RUNTIME_DIR").is_none() {
        std::env::set_var("XDG_RUNTIME_DIR", std::env::temp_dir());
    }
    let args: Vec<String> = std::env::args().skip(1).collect();
    let n: usize = args.first().map_or(Ok(10_000_000), |a| a.parse())?;
    let rounds: usize = args.get(1).map_or(Ok(9), |a| a.parse())?;
    let mut configs: Vec<(u64, usize)> = Vec::new();
    for a in args.iter().skip(2) {
        let (c, f) = a.split_once(':').ok_or("CHUNK_KiPAIRS:IN_FLIGHT")?;
        configs.push((c.parse::<u64>()? << 10, f.parse()?));
    }
    if configs.is_empty() {
        configs.push((256 << 10, 2));
    }

    let mut s = 0x2545_f491_4f6c_dd1du64;
    let mut next = move || {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        (s >> 11) as f64 / (1u64 << 53) as f64
    };
    let pairs: Vec<GaussianPair> = (0..n)
        .map(|_| {
            GaussianPair::new(
                (next() * 20.0 - 10.0) as f32,
                10f64.powf(next() * 4.0 - 2.0) as f32,
                (next() * 20.0 - 10.0) as f32,
                10f64.powf(next() * 4.0 - 2.0) as f32,
            )
        })
        .collect();
    let set = Request::measures(Metrics::CE_KL);
    let k = set.values_per_pair();

    let evaluators = configs
        .iter()
        .map(|&(chunk, inflight)| {
            pollster::block_on(Evaluator::new_async(
                Backend::Gpu,
                Options {
                    host_chunk_pairs: chunk,
                    chunks_in_flight: inflight,
                    ..Options::default()
                },
            ))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let gpu = &evaluators[0];
    let (device, queue) = gpu.device().ok_or("a GPU evaluator has a device")?;
    let input = device.create_buffer(&wgpu::BufferDescriptor {
        label: None,
        size: n as u64 * 16,
        usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_DST,
        mapped_at_creation: false,
    });
    queue.write_buffer(&input, 0, bytemuck::cast_slice(&pairs));
    let output = device.create_buffer(&wgpu::BufferDescriptor {
        label: None,
        size: (n * k * 4) as u64,
        usage: wgpu::BufferUsages::STORAGE,
        mapped_at_creation: false,
    });
    let kernel = || -> Result<Duration, Box<dyn std::error::Error>> {
        let t = Instant::now();
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
            &set,
        )?;
        let idx = queue.submit([enc.finish()]);
        device.poll(wgpu::PollType::Wait {
            submission_index: Some(idx),
            timeout: None,
        })?;
        Ok(t.elapsed())
    };
    let mut out = vec![0f32; n * k];
    kernel()?;
    for e in &evaluators {
        e.evaluate(Batch::Pairs(&pairs), &set, &mut out)?;
    }
    let mut kt = Vec::new();
    let mut et = vec![Vec::new(); evaluators.len()];
    for r in 0..rounds {
        kt.push(kernel()?);
        for j in 0..evaluators.len() {
            let j = (j + r) % evaluators.len();
            let t = Instant::now();
            evaluators[j].evaluate(Batch::Pairs(&pairs), &set, &mut out)?;
            et[j].push(t.elapsed());
        }
    }
    let km = median(kt);
    let rate = |d: Duration| n as f64 / d.as_secs_f64() / 1e6;
    println!("kernel-only {:.1} Mpairs/s", rate(km));
    for ((chunk, inflight), t) in configs.iter().zip(et) {
        let m = median(t);
        println!(
            "chunk {:>5} Ki  in flight {}  end-to-end {:.1} Mpairs/s  ratio {:.3}",
            chunk >> 10,
            inflight,
            rate(m),
            km.as_secs_f64() / m.as_secs_f64()
        );
    }
    Ok(())
}
