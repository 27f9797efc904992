//! The GPU f64 path (`Evaluator::evaluate` of f64 batches, shaders/divergence_f64.wgsl):
//! every row of the golden file within 1e-14 of the 50-digit truth; GPU f64
//! equal to the CPU f64 reference on random and adversarial pairs; sizes
//! around the chunk boundaries; the clear error on devices without
//! SHADER_F64 / SHADER_INT64.
mod common;
use common::*;
use gaussdiv::{
    verify, Batch, Divergences64, Error, Evaluator, GaussianPair64, Metric, Metrics, OnInvalid,
    Options, Precision, Request, Tolerance,
};
use std::time::Instant;

/// The shared evaluator, if it can run f64 (skipped otherwise, unless
/// GAUSSDIV_REQUIRE_GPU=1: lavapipe has both features, so CI must run these).
fn gpu64() -> Option<&'static Evaluator> {
    let gpu = gpu()?;
    let info = gpu.gpu_info().expect("a GPU evaluator");
    if info.supports_f64 {
        return Some(gpu);
    }
    let missing = gaussdiv::wgpu::Features::SHADER_F64 | gaussdiv::wgpu::Features::SHADER_INT64;
    if std::env::var("GAUSSDIV_REQUIRE_GPU").as_deref() == Ok("1") {
        panic!("GAUSSDIV_REQUIRE_GPU=1 but the adapter lacks {missing:?}");
    }
    eprintln!("SKIPPED: the adapter lacks {missing:?}");
    None
}

fn pair64(mu1: f64, sigma1: f64, mu2: f64, sigma2: f64) -> GaussianPair64 {
    GaussianPair64 {
        mu1,
        sigma1,
        mu2,
        sigma2,
    }
}

/// Random and adversarial f64 pairs over the whole f64 range: ordinary
/// values, arbitrary bit patterns (subnormal σ included), near-equal σ a few
/// ulps apart, the seams ρ = ½, 2 (and ¼, 4), tiny mean differences, KL
/// beyond f64::MAX, and subnormal μ (host fix-up rows).
fn adversarial_pairs(n: usize, seed: u64) -> Vec<GaussianPair64> {
    let mut rng = Rng(seed.max(1));
    let any_finite = |rng: &mut Rng| loop {
        let x = f64::from_bits(rng.next_u64());
        if x.is_finite() {
            return x;
        }
    };
    let any_sigma = |rng: &mut Rng| f64::from_bits(rng.next_u64() % 0x7fef_ffff_ffff_ffff + 1);
    let nudge = |x: f64, d: i64| {
        f64::from_bits((x.to_bits() as i64 + d).clamp(1, 0x7fef_ffff_ffff_ffff) as u64)
    };
    let log_uniform =
        |rng: &mut Rng, lo: f64, hi: f64| 10f64.powf(lo + (hi - lo) * rng.unit()).max(1e-307);
    (0..n)
        .map(|i| match i % 9 {
            0 => {
                let s1 = log_uniform(&mut rng, -3.0, 3.0);
                let s2 = log_uniform(&mut rng, -3.0, 3.0);
                pair64(rng.unit() * 20.0 - 10.0, s1, rng.unit() * 20.0 - 10.0, s2)
            }
            1 => {
                let (m1, m2) = (any_finite(&mut rng), any_finite(&mut rng));
                pair64(m1, any_sigma(&mut rng), m2, any_sigma(&mut rng))
            }
            2 => {
                let s = any_sigma(&mut rng);
                let d = (rng.next_u64() % 129) as i64 - 64;
                let m = rng.unit() * 2.0 - 1.0;
                pair64(m, s, m * (1.0 + 1e-12 * rng.unit()), nudge(s, d))
            }
            3 => {
                let s = log_uniform(&mut rng, -300.0, 300.0);
                let f = [0.5, 2.0, 0.25, 4.0][(rng.next_u64() % 4) as usize];
                let d = (rng.next_u64() % 9) as i64 - 4;
                pair64(0.0, nudge(s * f, d), rng.unit(), s)
            }
            4 => {
                let m = rng.unit() * 2e6 - 1e6;
                let d = (rng.next_u64() % 17) as i64 - 8;
                let m2 = f64::from_bits((m.to_bits() as i64 + d) as u64);
                let s = log_uniform(&mut rng, -5.0, 5.0);
                pair64(m, s, m2, nudge(s, d))
            }
            5 => {
                // Overflow: |μ1 − μ2|/σ2 beyond √MAX, and ratios beyond 2^512.
                let m = f64::MAX * (0.5 + 0.5 * rng.unit());
                let s2 = log_uniform(&mut rng, -300.0, 0.0);
                pair64(m, 1.0, -m, s2)
            }
            6 => {
                // Subnormal σ (exact in the kernel: integer decomposition).
                let s1 = f64::from_bits(rng.next_u64() % (1 << 52) + 1);
                let s2 = f64::from_bits(rng.next_u64() % (1 << 53) + 1);
                pair64(rng.unit(), s1, -rng.unit(), s2)
            }
            7 => {
                // Subnormal μ or μ1 − μ2: recomputed on the host.
                let m1 = f64::from_bits(rng.next_u64() % (1 << 52));
                let m2 = f64::from_bits(rng.next_u64() % (1 << 54));
                pair64(m1, log_uniform(&mut rng, -320.0, 0.0), -m2, 1e-310)
            }
            _ => {
                // Near-equal σ at extreme magnitudes, with an exactly equal pair now and then.
                let s = log_uniform(&mut rng, -307.0, 307.0);
                let d = (rng.next_u64() % 5) as i64 - 2;
                let m = any_finite(&mut rng) * 1e-300;
                pair64(m, s, m, nudge(s, d))
            }
        })
        .collect()
}

/// `verify` of cross-entropy, KL and entropy of f64 pairs.
fn verify_f64(
    pairs: &[GaussianPair64],
    out: &[Divergences64],
    tolerance: Tolerance,
) -> gaussdiv::Result<gaussdiv::VerifyReport> {
    verify(
        Batch::Pairs(pairs),
        &Request::default(),
        bytemuck::cast_slice(out),
        tolerance,
    )
}

fn rows_of(out: &[Divergences64]) -> Vec<[f64; 3]> {
    out.iter()
        .map(|d| [d.cross_entropy, d.kl, d.entropy])
        .collect()
}

#[test]
fn golden_gpu_f64() {
    let Some(gpu) = gpu64() else { return };
    let rows = golden();
    let pairs: Vec<_> = rows.iter().map(|r| r.pair.to_f64()).collect();
    let out = divergences64(gpu, &pairs).unwrap();
    let name = gpu
        .gpu_info()
        .and_then(|i| i.adapter)
        .map(|a| a.to_string())
        .unwrap_or_default();
    assert_golden(
        &format!("GPU f64 on {name}"),
        &rows,
        &rows_of(&out),
        1e-14,
        Precision::F64,
    );
    // The golden inputs are f32 values: none is subnormal in f64, so these
    // are the kernel's own results, no host fix-up involved.
    assert!(pairs.iter().all(|p| [p.mu1, p.mu2, p.mu1 - p.mu2]
        .iter()
        .all(|x| *x == 0.0 || x.abs() >= f64::MIN_POSITIVE)));
}

#[test]
fn gpu_f64_matches_cpu_f64_on_random_and_adversarial_pairs() {
    let Some(gpu) = gpu64() else { return };
    let pairs = adversarial_pairs(200_000, 0x5eed_0f64);
    let out = divergences64(gpu, &pairs).unwrap();
    let report = verify_f64(&pairs, &out, Tolerance::F64).unwrap();
    println!("GPU f64 on 200000 random and adversarial pairs: {report}");
    assert!(report.passed(), "{report}");
    assert!(out.iter().all(|d| d.kl >= 0.0), "KL is never negative");
    // Against the CPU f64 mirror directly: the same formulas, so the same
    // values up to the rounding of possibly fused multiply-adds.
    let reference = divergences64(cpu(), &pairs).unwrap();
    let mut identical = 0usize;
    let mut worst = 0f64;
    for (g, c) in out.iter().zip(&reference) {
        if bytemuck::bytes_of(g) == bytemuck::bytes_of(c) {
            identical += 1;
        }
        worst = worst.max(gaussdiv::verify::kl_error(g.kl, c.kl, Precision::F64));
    }
    println!(
        "GPU f64 vs CPU f64: {identical} of {} rows bit-identical, max KL difference {worst:e}",
        pairs.len()
    );
    assert!(worst <= 1e-14);
    let inf_rows = out.iter().filter(|d| d.kl == f64::INFINITY).count();
    assert!(inf_rows > 1000, "overflow rows are covered ({inf_rows})");
}

#[test]
fn gpu_f64_sizes_around_chunk_boundaries() {
    let Some(shared) = gpu64() else { return };
    let all = adversarial_pairs(300_001, 77);
    // Default chunking: 4 MiB host chunks = 131 072 f64 pairs, so 300 001
    // pairs take three chunks (two in flight).
    let default = on_same_device(shared, Options::default());
    // Small chunks (2048 f64 pairs), three in flight, workgroup 64.
    let small = on_same_device(
        shared,
        Options {
            host_chunk_pairs: 4096,
            chunks_in_flight: 3,
            workgroup_size: 64,
            ..Default::default()
        },
    );
    let f64_chunk = default.gpu_info().unwrap().host_chunk_pairs as usize / 2;
    for (gpu, label) in [(&default, "default"), (&small, "small chunks")] {
        for n in [
            0,
            1,
            63,
            64,
            65,
            255,
            256,
            257,
            2047,
            2048,
            2049,
            10_000,
            f64_chunk - 1,
            f64_chunk,
            f64_chunk + 1,
            300_001,
        ] {
            let pairs = &all[..n];
            let out = divergences64(gpu, pairs).unwrap();
            assert_eq!(out.len(), n);
            let report = verify_f64(pairs, &out, Tolerance::F64).unwrap();
            assert!(report.passed(), "{label} n={n}: {report}");
        }
    }
}

#[test]
fn gpu_f64_metric_subsets_async_and_reuse() {
    let Some(shared) = gpu64() else { return };
    let gpu = on_same_device(shared, Options::default());
    let pairs = adversarial_pairs(5000, 3);
    let all = divergences64(&gpu, &pairs).unwrap();
    let full = rows_of(&all);
    for names in [
        &[Metric::Kl][..],
        &[Metric::CrossEntropy, Metric::Kl],
        &[Metric::Entropy],
        &[Metric::Entropy, Metric::CrossEntropy],
    ] {
        let metrics = Metrics::new(names).unwrap();
        let k = metrics.len();
        let mut flat = vec![0f64; pairs.len() * k];
        gpu.evaluate(Batch::Pairs(&pairs), &Request::measures(metrics), &mut flat)
            .unwrap();
        let mut differ = 0usize;
        for (i, row) in flat.chunks(k).enumerate() {
            let scale = gaussdiv::verify::term_scale(pairs[i].sigma1, full[i][1]);
            for (v, m) in row.iter().zip(metrics.iter()) {
                let want = full[i][metric_index(m)];
                // Each metric set is its own pipeline, which the driver may
                // compile with different fused multiply-adds: a few ulps of
                // the summed terms (cross-entropy can cancel them).
                if v.to_bits() != want.to_bits() {
                    differ += 1;
                    assert!(
                        (v - want).abs() <= 1e-15 * scale,
                        "row {i} {m}: {v:e} vs {want:e}"
                    );
                }
            }
        }
        println!("{names:?}: {differ} values differ from the full set (within 1e-15 scaled)");
    }
    let mut asynchronous = vec![0f64; pairs.len() * 3];
    pollster::block_on(gpu.evaluate_async(
        Batch::Pairs(&pairs),
        &Request::default(),
        &mut asynchronous,
    ))
    .unwrap();
    assert_eq!(
        bytemuck::cast_slice::<_, u64>(&all),
        bytemuck::cast_slice::<_, u64>(&asynchronous)
    );
    // f32 and f64 calls share the evaluator's buffers: after one round of
    // each, repeating them creates no wgpu object.
    let f32_pairs = random_pairs(200_000, 9);
    let big = adversarial_pairs(200_000, 10);
    divergences(&gpu, &f32_pairs).unwrap();
    divergences64(&gpu, &big).unwrap();
    divergences64(&gpu, &pairs).unwrap();
    let before = gpu.gpu_info().unwrap();
    for _ in 0..2 {
        divergences(&gpu, &f32_pairs).unwrap();
        divergences64(&gpu, &big).unwrap();
        divergences64(&gpu, &pairs).unwrap();
    }
    let after = gpu.gpu_info().unwrap();
    assert_eq!(after.buffers, before.buffers, "no new buffers");
    assert_eq!(after.pipelines, before.pipelines, "no new pipelines");
    assert_eq!(after.bind_groups, before.bind_groups, "no new bind groups");
}

#[test]
fn gpu_f64_invalid_input_is_reported_or_nan() {
    let Some(shared) = gpu64() else { return };
    let mut pairs = adversarial_pairs(1000, 5);
    pairs[321].sigma2 = -1.0;
    match divergences64(shared, &pairs) {
        Err(Error::InvalidInput {
            index,
            field,
            value,
            ..
        }) => {
            assert_eq!(index, 321);
            assert_eq!(field, gaussdiv::Field::Sigma2);
            assert_eq!(value, -1.0);
        }
        other => panic!("expected InvalidInput, got {other:?}"),
    }
    let nan = Request::default().with_on_invalid(OnInvalid::Nan);
    pairs[10].mu1 = f64::NAN;
    pairs[20].sigma1 = f64::INFINITY;
    pairs[30].sigma1 = 0.0;
    pairs[40].mu2 = f64::NEG_INFINITY;
    let out: Vec<Divergences64> =
        bytemuck::cast_slice(&eval(shared, &pairs, &nan).unwrap()).to_vec();
    let reference: Vec<Divergences64> =
        bytemuck::cast_slice(&eval(cpu(), &pairs, &nan).unwrap()).to_vec();
    for (i, (g, c)) in out.iter().zip(&reference).enumerate() {
        if [10, 20, 30, 40, 321].contains(&i) {
            assert!(g.kl.is_nan() && g.cross_entropy.is_nan() && g.entropy.is_nan());
        } else {
            assert!(
                g.kl == c.kl || (g.kl - c.kl).abs() <= 1e-14 * c.kl,
                "row {i}"
            );
        }
    }
}

#[test]
fn gpu_f64_subnormal_inputs() {
    let Some(gpu) = gpu64() else { return };
    let tiny = f64::from_bits(1); // 4.9e-324
    let pairs = [
        pair64(0.0, tiny, 0.0, 1.0), // KL ≈ 743.7: subnormal σ1, exact in the kernel
        pair64(0.0, 1.0, 0.0, tiny), // KL ≈ 2^2148: +inf
        pair64(tiny, 1.0, 0.0, 1.0), // subnormal μ (host fix-up): KL = 0 in f64
        pair64(3.0 * tiny, tiny, 0.0, tiny), // subnormal μ and σ: KL = 4.5
        pair64(2.5e-308, 1e-310, 2.4e-308, 1e-310), // μ1 − μ2 subnormal
        pair64(1.0, tiny, 1.0, tiny), // identical: exactly 0
    ];
    let out = divergences64(gpu, &pairs).unwrap();
    let reference = divergences64(cpu(), &pairs).unwrap();
    for (i, (g, c)) in out.iter().zip(&reference).enumerate() {
        println!("{:?}: GPU {:e} CPU {:e}", pairs[i], g.kl, c.kl);
    }
    let report = verify_f64(&pairs, &out, Tolerance::F64).unwrap();
    assert!(report.passed(), "{report}");
    assert_eq!(out[1].kl, f64::INFINITY);
    assert_eq!(out[5].kl, 0.0);
    assert!((out[3].kl - 4.5).abs() <= 1e-14 * 4.5);
    let truth = 1074.0 * std::f64::consts::LN_2 - 0.5; // ½ρ² − ½ − ln ρ, ρ = 2^−1074
    assert!((out[0].kl - truth).abs() <= 1e-14 * truth, "{}", out[0].kl);
}

#[test]
fn gpu_f64_without_the_features_is_a_clear_error() {
    let Some(shared) = gpu() else { return };
    // A device requested without SHADER_F64 / SHADER_INT64, on the same adapter.
    let adapter = chosen_adapter().expect("an adapter: the shared evaluator found one");
    let (device, queue) =
        pollster::block_on(adapter.request_device(&gaussdiv::wgpu::DeviceDescriptor {
            required_features: gaussdiv::wgpu::Features::empty(),
            required_limits: adapter.limits(),
            ..Default::default()
        }))
        .unwrap();
    let gpu = Evaluator::from_device(&device, &queue, Options::default()).unwrap();
    assert!(!gpu.gpu_info().unwrap().supports_f64);
    let pairs = [pair64(0.0, 1.0, 1.0, 2.0)];
    let all = Request::default();
    let ce_kl_entropy = Request::measures(Metrics::CE_KL_ENTROPY);
    for result in [
        gpu.evaluate(Batch::Pairs(&pairs), &all, &mut [0.0; 3]),
        gpu.evaluate(Batch::<f64>::Pairs(&[]), &all, &mut []),
        gpu.evaluate(Batch::Pairs(&pairs), &ce_kl_entropy, &mut [0.0; 3]),
        pollster::block_on(gpu.evaluate_async(Batch::Pairs(&pairs), &all, &mut [0.0; 3])),
    ] {
        match result {
            Err(Error::Unsupported(message)) => {
                println!("{message}");
                assert!(
                    message.contains("SHADER_F64") && message.contains("SHADER_INT64"),
                    "{message}"
                );
                assert!(
                    message.contains("lacks SHADER_F64 and SHADER_INT64"),
                    "{message}"
                );
            }
            other => panic!("expected Error::Unsupported, got {other:?}"),
        }
    }
    // f32 keeps working on that device, and nothing was compiled for f64.
    let out = divergences(&gpu, &[gaussdiv::GaussianPair::new(0.0, 1.0, 1.0, 2.0)]).unwrap();
    assert!((f64::from(out[0].kl) - 0.443_147_18).abs() < 1e-6);
    // The shared evaluator's own device (context::request_device) has them.
    assert!(
        shared.gpu_info().unwrap().supports_f64,
        "lavapipe offers SHADER_F64 and SHADER_INT64"
    );
}

/// Rough throughput of the f32 and f64 host paths (end to end: validation,
/// upload, kernel, readback). `cargo test --release --test golden_gpu_f64 --
/// --ignored --nocapture throughput`.
#[test]
#[ignore]
fn throughput_f32_vs_f64() {
    let Some(gpu) = gpu64() else { return };
    let n = 8_000_000;
    let p32 = random_pairs(n, 1);
    let p64: Vec<_> = p32.iter().map(|p| p.to_f64()).collect();
    let mut out32 = vec![0f32; n * 2];
    let mut out64 = vec![0f64; n * 2];
    let ce_kl = Request::measures(Metrics::CE_KL);
    // What compiling the f64 kernel would add to construction (measured to
    // choose: it is compiled lazily, on the first f64 call).
    let started = Instant::now();
    let fresh = on_same_device(gpu, Options::default());
    let built = started.elapsed();
    let started = Instant::now();
    divergences64(&fresh, &[pair64(0.0, 1.0, 1.0, 2.0)]).unwrap();
    println!(
        "from_device (f32 pipelines, warm-up): {built:?}; first f64 call (f64 module, \
         pipelines, first dispatch): {:?}",
        started.elapsed()
    );
    for _ in 0..2 {
        gpu.evaluate(Batch::Pairs(&p32), &ce_kl, &mut out32)
            .unwrap();
        gpu.evaluate(Batch::Pairs(&p64), &ce_kl, &mut out64)
            .unwrap();
    }
    let runs = 5;
    let mut best = [f64::MAX; 2];
    for _ in 0..runs {
        let t = Instant::now();
        gpu.evaluate(Batch::Pairs(&p32), &ce_kl, &mut out32)
            .unwrap();
        best[0] = best[0].min(t.elapsed().as_secs_f64());
        let t = Instant::now();
        gpu.evaluate(Batch::Pairs(&p64), &ce_kl, &mut out64)
            .unwrap();
        best[1] = best[1].min(t.elapsed().as_secs_f64());
    }
    let cpu_t = Instant::now();
    let _ = divergences64(cpu(), &p64).unwrap();
    let cpu_s = cpu_t.elapsed().as_secs_f64();
    println!(
        "n = {n}, cross_entropy+kl, best of {runs}: GPU f32 {:.1} Mpairs/s, GPU f64 {:.1} Mpairs/s \
         ({:.2}x), CPU f64 {:.1} Mpairs/s",
        n as f64 / best[0] / 1e6,
        n as f64 / best[1] / 1e6,
        best[0] / best[1],
        n as f64 / cpu_s / 1e6
    );
}
