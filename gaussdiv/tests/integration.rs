//! Integration into a wgpu app: the app's device, its encoder, its buffers.
mod common;
use common::device::*;
use common::*;
use gaussdiv::wgpu;
use gaussdiv::{
    Batch, DeviceBatch, DeviceInput, Divergences, Error, Evaluator, GaussianPair, Metrics, Options,
    Param, Request,
};

/// The device and queue of a GPU evaluator.
fn device_of(gpu: &Evaluator) -> (wgpu::Device, wgpu::Queue) {
    gpu.device().expect("a GPU evaluator has a device")
}

/// Record `request` on `count` pairs of `input` into `output` (device path).
fn encode_pairs(
    gpu: &Evaluator,
    enc: &mut wgpu::CommandEncoder,
    input: wgpu::BufferSlice<'_>,
    output: wgpu::BufferSlice<'_>,
    count: u64,
    request: &Request,
) -> Result<(), Error> {
    gpu.encode(
        enc,
        DeviceBatch {
            input: DeviceInput::Pairs {
                pairs: input,
                count,
            },
            output,
        },
        request,
    )
}

/// Evaluate `pairs` through `encode` (measures `metrics`) on device buffers
/// (input at a non-zero aligned offset) and read the results back.
fn via_encode(gpu: &Evaluator, pairs: &[GaussianPair], metrics: Metrics) -> Vec<f32> {
    let (device, queue) = device_of(gpu);
    let pad = 256usize;
    let mut bytes = vec![0u8; pad];
    bytes.extend_from_slice(bytemuck::cast_slice(pairs));
    let input = storage_with(&device, &bytes);
    let out_bytes = (pairs.len() * metrics.len() * 4) as u64;
    let output = output_buffer(&device, out_bytes + 512);
    let mut enc = device.create_command_encoder(&Default::default());
    encode_pairs(
        gpu,
        &mut enc,
        input.slice(pad as u64..),
        output.slice(512..),
        pairs.len() as u64,
        &Request::measures(metrics),
    )
    .unwrap();
    queue.submit([enc.finish()]);
    read_f32(&device, &queue, &output, 512, out_bytes)
}

#[test]
fn evaluator_is_send_and_sync() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Evaluator>();
}

#[test]
fn encode_equals_evaluate_for_several_sizes() {
    let Some(gpu) = gpu() else { return };
    let all = random_pairs(2_500_000, 21);
    for n in [1usize, 255, 257, 100_000, 2_500_000] {
        let pairs = &all[..n];
        let host = divergences(gpu, pairs).unwrap();
        let device = via_encode(gpu, pairs, Metrics::CE_KL_ENTROPY);
        assert_eq!(
            bytemuck::cast_slice::<Divergences, u32>(&host),
            bytemuck::cast_slice::<f32, u32>(&device),
            "n={n}"
        );
        let kl_only = via_encode(gpu, pairs, Metrics::new(&[gaussdiv::Metric::Kl]).unwrap());
        assert!(host
            .iter()
            .zip(&kl_only)
            .all(|(h, k)| h.kl.to_bits() == k.to_bits()));
    }
}

#[test]
fn encode_beyond_one_device_binding() {
    let Some(shared) = gpu() else { return };
    let (device, queue) = device_of(shared);
    let widest = Evaluator::from_device(
        &device,
        &queue,
        Options {
            max_chunk_pairs: u64::MAX,
            ..Default::default()
        },
    )
    .unwrap();
    let n = (widest.gpu_info().unwrap().max_binding_bytes / 16 + 1000) as usize;
    let pairs = random_pairs(n, 5);
    let host = divergences(shared, &pairs).unwrap();
    let device = via_encode(&widest, &pairs, Metrics::CE_KL_ENTROPY);
    assert_eq!(device.len(), 3 * n);
    assert_eq!(
        bytemuck::cast_slice::<Divergences, u32>(&host),
        bytemuck::cast_slice::<f32, u32>(&device)
    );
}

#[test]
fn every_misuse_is_a_documented_error() {
    let Some(gpu) = gpu() else { return };
    let (device, queue) = device_of(gpu);
    let pairs = random_pairs(1024, 1);
    let input = storage_with(&device, bytemuck::cast_slice(&pairs));
    let output = output_buffer(&device, 1024 * 12);
    let not_storage = device.create_buffer(&wgpu::BufferDescriptor {
        label: Some("copy only"),
        size: 1024 * 16,
        usage: wgpu::BufferUsages::COPY_DST,
        mapped_at_creation: false,
    });
    let mut enc = device.create_command_encoder(&Default::default());
    let r = Request::default();
    let cases: Vec<(&str, Result<(), Error>)> = vec![
        (
            "missing STORAGE",
            encode_pairs(
                gpu,
                &mut enc,
                not_storage.slice(..),
                output.slice(..),
                1024,
                &r,
            ),
        ),
        (
            "output too small",
            encode_pairs(
                gpu,
                &mut enc,
                input.slice(..),
                output.slice(..1000),
                1024,
                &r,
            ),
        ),
        (
            "input too small",
            encode_pairs(
                gpu,
                &mut enc,
                input.slice(..16 * 100),
                output.slice(..),
                1024,
                &r,
            ),
        ),
        (
            "misaligned offset",
            encode_pairs(gpu, &mut enc, input.slice(4..), output.slice(..), 10, &r),
        ),
        (
            "count 0",
            encode_pairs(gpu, &mut enc, input.slice(..), output.slice(..), 0, &r),
        ),
        (
            "count overflow",
            encode_pairs(
                gpu,
                &mut enc,
                input.slice(..),
                output.slice(..),
                u64::MAX / 2,
                &r,
            ),
        ),
        (
            "output aliases the input",
            encode_pairs(
                gpu,
                &mut enc,
                input.slice(..8192),
                input.slice(8192..),
                100,
                &r,
            ),
        ),
    ];
    for (name, r) in cases {
        match r {
            Err(Error::InvalidBuffer(msg)) => println!("{name}: {msg}"),
            other => panic!("{name}: expected InvalidBuffer, got {other:?}"),
        }
    }
    // Nothing invalid reached wgpu: the encoder still finishes and submits cleanly.
    let scope = device.push_error_scope(wgpu::ErrorFilter::Validation);
    queue.submit([enc.finish()]);
    assert!(pollster::block_on(scope.pop()).is_none());
}

#[test]
fn repeated_encode_creates_no_wgpu_objects() {
    let Some(shared) = gpu() else { return };
    let (device, queue) = device_of(shared);
    // 1 Mi-pair bindings, so that 3 M pairs take several passes and bind groups.
    let gpu = Evaluator::from_device(
        &device,
        &queue,
        Options {
            max_chunk_pairs: 1 << 20,
            ..Default::default()
        },
    )
    .unwrap();
    let pairs = random_pairs(3_000_000, 2);
    let input = storage_with(&device, bytemuck::cast_slice(&pairs));
    let output = output_buffer(&device, pairs.len() as u64 * 12);
    let run = || {
        let mut enc = device.create_command_encoder(&Default::default());
        encode_pairs(
            &gpu,
            &mut enc,
            input.slice(..),
            output.slice(..),
            pairs.len() as u64,
            &Request::default(),
        )
        .unwrap();
        queue.submit([enc.finish()]);
    };
    // The counts of wgpu objects the evaluator created and command buffers it submitted.
    let stats = || {
        let i = gpu.gpu_info().unwrap();
        (i.buffers, i.pipelines, i.bind_groups, i.submissions)
    };
    run();
    let before = stats();
    for _ in 0..5 {
        run();
    }
    let after = stats();
    assert_eq!(
        before, after,
        "no buffers, pipelines or bind groups created after warm-up"
    );
    assert!(
        before.2 >= 3,
        "several bindings were used: (buffers, pipelines, bind groups, submissions) = {before:?}"
    );
}

#[test]
fn structure_of_arrays_host_and_device() {
    let Some(gpu) = gpu() else { return };
    let pairs = random_pairs(300_001, 8);
    let cols: [Vec<f32>; 4] = [
        pairs.iter().map(|p| p.mu1).collect(),
        pairs.iter().map(|p| p.sigma1).collect(),
        pairs.iter().map(|p| p.mu2).collect(),
        pairs.iter().map(|p| p.sigma2).collect(),
    ];
    let request = Request::default();
    let soa = |c: [&[f32]; 4]| -> Result<Vec<Divergences>, Error> {
        let mut out = vec![0f32; c[0].len() * request.values_per_pair()];
        gpu.evaluate(Batch::Columns(c), &request, &mut out)?;
        Ok(bytemuck::cast_slice(&out).to_vec())
    };
    let aos = divergences(gpu, &pairs).unwrap();
    let soa_out = soa([&cols[0], &cols[1], &cols[2], &cols[3]]).unwrap();
    assert_eq!(aos, soa_out);
    // device SoA: four buffers
    let (device, queue) = device_of(gpu);
    let bufs: Vec<wgpu::Buffer> = cols
        .iter()
        .map(|c| storage_with(&device, bytemuck::cast_slice(c)))
        .collect();
    let output = output_buffer(&device, pairs.len() as u64 * 12);
    let mut enc = device.create_command_encoder(&Default::default());
    gpu.encode(
        &mut enc,
        DeviceBatch {
            input: DeviceInput::Columns {
                columns: [
                    bufs[0].slice(..),
                    bufs[1].slice(..),
                    bufs[2].slice(..),
                    bufs[3].slice(..),
                ],
                count: pairs.len() as u64,
            },
            output: output.slice(..),
        },
        &Request::measures(Metrics::CE_KL_ENTROPY),
    )
    .unwrap();
    queue.submit([enc.finish()]);
    let dev = read_f32(&device, &queue, &output, 0, pairs.len() as u64 * 12);
    assert_eq!(
        bytemuck::cast_slice::<Divergences, u32>(&aos),
        bytemuck::cast_slice::<f32, u32>(&dev)
    );
    // mismatched columns
    assert!(matches!(
        soa([&cols[0], &cols[1][..10], &cols[2], &cols[3]]),
        Err(Error::LengthMismatch { .. })
    ));
    // an invalid row reports its absolute index through the SoA path too
    let mut bad = cols[3].clone();
    bad[299_999] = -2.0;
    match soa([&cols[0], &cols[1], &cols[2], &bad]) {
        Err(Error::InvalidInput { index, .. }) => assert_eq!(index, 299_999),
        other => panic!("{other:?}"),
    }
}

#[test]
fn two_evaluators_one_device_and_one_evaluator_many_threads() {
    let Some(shared) = gpu() else { return };
    let (device, queue) = device_of(shared);
    let a = Evaluator::from_device(&device, &queue, Options::default()).unwrap();
    let b = Evaluator::from_device(&device, &queue, Options::default()).unwrap();
    let pairs = random_pairs(50_000, 4);
    let expected = divergences(shared, &pairs).unwrap();
    assert_eq!(divergences(&a, &pairs).unwrap(), expected);
    assert_eq!(divergences(&b, &pairs).unwrap(), expected);
    std::thread::scope(|s| {
        for t in 0..6u64 {
            let (a, b) = (&a, &b);
            s.spawn(move || {
                for round in 0..5u64 {
                    let n = ((t * 7919 + round * 104_729) % 200_000) as usize;
                    let p = random_pairs(n, t * 100 + round + 1);
                    let want = divergences(shared, &p).unwrap();
                    let ev = if round % 2 == 0 { a } else { b };
                    let got = if t % 2 == 0 {
                        divergences(ev, &p).unwrap()
                    } else {
                        let mut out = vec![Divergences::default(); p.len()];
                        pollster::block_on(ev.evaluate_async(
                            Batch::Pairs(&p),
                            &Request::default(),
                            bytemuck::cast_slice_mut(&mut out),
                        ))
                        .unwrap();
                        out
                    };
                    assert_eq!(got, want, "thread {t} round {round} n={n}");
                }
            });
        }
    });
}

/// Gradients recorded into the app's encoder equal the host path's, for
/// both measures and each alone, in a log-variance parameterisation (the
/// VAE case); misuse is an error, not a panic.
#[test]
fn encode_gradients_equals_host_path() {
    let Some(gpu) = gpu() else { return };
    let (device, queue) = device_of(gpu);
    let pairs: Vec<GaussianPair> = random_pairs(10_001, 9)
        .into_iter()
        .map(|p| GaussianPair::new(p.mu1, p.sigma1.ln() * 2.0, p.mu2, p.sigma2.ln() * 2.0))
        .collect();
    let input = storage_with(&device, bytemuck::cast_slice(&pairs));
    for metrics in [
        Metrics::CE_KL,
        Metrics::new(&[gaussdiv::Metric::Kl]).unwrap(),
        Metrics::new(&[gaussdiv::Metric::CrossEntropy]).unwrap(),
    ] {
        let request = Request::gradients(metrics).with_param(Param::LogVar);
        let values = pairs.len() * 4 * metrics.len();
        assert_eq!(values, pairs.len() * request.values_per_pair());
        let output = output_buffer(&device, (values * 4) as u64);
        let mut enc = device.create_command_encoder(&Default::default());
        encode_pairs(
            gpu,
            &mut enc,
            input.slice(..),
            output.slice(..),
            pairs.len() as u64,
            &request,
        )
        .unwrap();
        queue.submit([enc.finish()]);
        let got = read_f32(&device, &queue, &output, 0, (values * 4) as u64);
        let mut want = vec![0f32; values];
        gpu.evaluate(Batch::Pairs(&pairs), &request, &mut want)
            .unwrap();
        assert_eq!(
            got.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
            want.iter().map(|v| v.to_bits()).collect::<Vec<_>>()
        );
    }
    // Too small an output, and a measure without gradients.
    let small = output_buffer(&device, 16);
    let mut enc = device.create_command_encoder(&Default::default());
    let e = encode_pairs(
        gpu,
        &mut enc,
        input.slice(..),
        small.slice(..),
        2,
        &Request::gradients(Metrics::CE_KL),
    )
    .unwrap_err();
    assert!(matches!(e, Error::InvalidBuffer(_)), "{e}");
    let e = encode_pairs(
        gpu,
        &mut enc,
        input.slice(..),
        small.slice(..),
        1,
        &Request::gradients(Metrics::CE_KL_ENTROPY),
    )
    .unwrap_err();
    assert!(matches!(e, Error::Unsupported(_)), "{e}");
}
