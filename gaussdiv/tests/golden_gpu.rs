//! Every row of the golden file on the GPU f32 path, and GPU ≡ CPU reference
//! on random and adversarial batches.
mod common;
use common::*;
use gaussdiv::{
    verify, Batch, Evaluator, GaussianPair, Metric, Metrics, OnInvalid, Options, Precision,
    Request, Tolerance, Transfer,
};

#[test]
fn golden_gpu_f32() {
    let Some(gpu) = gpu() else { return };
    let rows = golden();
    let pairs: Vec<_> = rows.iter().map(|r| r.pair).collect();
    let out = divergences(gpu, &pairs).unwrap();
    let got: Vec<[f64; 3]> = out
        .iter()
        .map(|d| [d.cross_entropy.into(), d.kl.into(), d.entropy.into()])
        .collect();
    let name = gpu
        .gpu_info()
        .and_then(|i| i.adapter)
        .map(|a| a.to_string())
        .unwrap_or_default();
    assert_golden(
        &format!("GPU f32 on {name}"),
        &rows,
        &got,
        2e-6,
        Precision::F32,
    );
}

#[test]
fn golden_gpu_kernel_alone_without_host_fixups() {
    // The kernel's own results (no CPU recomputation) on rows without
    // subnormal μ: subnormal σ must be exact in the kernel itself.
    let Some(gpu) = gpu() else { return };
    let rows: Vec<_> = golden()
        .into_iter()
        .filter(|r| {
            let tiny = |x: f32| x != 0.0 && x.abs() < f32::MIN_POSITIVE;
            !(tiny(r.pair.mu1) || tiny(r.pair.mu2) || tiny(r.pair.mu1 - r.pair.mu2))
        })
        .collect();
    let sub_sigma = rows
        .iter()
        .filter(|r| r.pair.sigma1 < f32::MIN_POSITIVE || r.pair.sigma2 < f32::MIN_POSITIVE)
        .count();
    assert!(sub_sigma > 0, "the golden file has subnormal σ rows");
    let pairs: Vec<_> = rows.iter().map(|r| r.pair).collect();
    let out = divergences(gpu, &pairs).unwrap();
    let got: Vec<[f64; 3]> = out
        .iter()
        .map(|d| [d.cross_entropy.into(), d.kl.into(), d.entropy.into()])
        .collect();
    assert_golden("GPU f32 kernel only", &rows, &got, 2e-6, Precision::F32);
}

#[test]
fn gpu_matches_cpu_reference_on_random_pairs() {
    let Some(gpu) = gpu() else { return };
    let pairs = random_pairs(100_000, 7);
    let request = Request::default();
    let out = eval(gpu, &pairs, &request).unwrap();
    let report = verify(Batch::Pairs(&pairs), &request, &out, Tolerance::GPU_F32).unwrap();
    println!("{report}");
    assert!(report.passed(), "{report}");
}

#[test]
fn metric_subsets_are_consistent() {
    let Some(gpu) = gpu() else { return };
    let pairs = random_pairs(3000, 11);
    let all = divergences(gpu, &pairs).unwrap();
    for names in [
        &["kl"][..],
        &["cross_entropy", "kl"],
        &["entropy"],
        &["entropy", "cross_entropy"],
    ] {
        let ms: Vec<_> = names.iter().map(|n| n.parse::<Metric>().unwrap()).collect();
        let metrics = Metrics::new(&ms).unwrap();
        let mut flat = vec![0f32; pairs.len() * metrics.len()];
        gpu.evaluate(Batch::Pairs(&pairs), &Request::measures(metrics), &mut flat)
            .unwrap();
        // Each metric set is its own pipeline, which a driver may compile with
        // different floating-point contractions (SPIR-V allows fusing a*b+c):
        // the values agree to a few ulps, not necessarily bit for bit.
        let mut max_ulps = 0u32;
        for (i, d) in all.iter().enumerate() {
            let full = [d.cross_entropy, d.kl, d.entropy];
            for (j, m) in metrics.iter().enumerate() {
                let (a, b) = (
                    flat[i * metrics.len() + j],
                    full[Metric::ALL.iter().position(|&x| x == m).unwrap()],
                );
                let ulps = (a.to_bits() as i64 - b.to_bits() as i64).unsigned_abs() as u32;
                max_ulps = max_ulps.max(ulps);
                assert!(
                    ulps <= 4 || (a - b).abs() <= 1e-6 * (1.0 + b.abs()),
                    "row {i} {m}: {a} vs {b}"
                );
            }
        }
        println!("{names:?}: max difference to the full set {max_ulps} ulps");
    }
}

#[test]
fn gpu_and_cpu_f32_agree_closely() {
    let Some(gpu) = gpu() else { return };
    let pairs = random_pairs(50_000, 3);
    let g = divergences(gpu, &pairs).unwrap();
    let c = divergences(cpu(), &pairs).unwrap();
    let mut worst = 0f64;
    for (a, b) in g.iter().zip(&c) {
        let e = gaussdiv::verify::kl_error(a.kl.into(), b.kl.into(), Precision::F32);
        worst = worst.max(e);
    }
    println!("max KL difference GPU vs CPU f32: {worst:e}");
    assert!(worst < 2e-6);
}

#[test]
fn invalid_input_is_reported_or_nan() {
    let Some(gpu) = gpu() else { return };
    let mut pairs = random_pairs(1000, 5);
    pairs[321].sigma2 = -1.0;
    match divergences(gpu, &pairs) {
        Err(gaussdiv::Error::InvalidInput {
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
    pairs[10].mu1 = f32::NAN;
    pairs[20].sigma1 = f32::INFINITY;
    pairs[30].sigma1 = 0.0;
    let out: Vec<gaussdiv::Divergences> =
        bytemuck::cast_slice(&eval(gpu, &pairs, &nan).unwrap()).to_vec();
    let clean = divergences(gpu, &[pairs[0], pairs[11]]).unwrap();
    for i in [10, 20, 30, 321] {
        assert!(
            out[i].kl.is_nan() && out[i].cross_entropy.is_nan() && out[i].entropy.is_nan(),
            "row {i}"
        );
    }
    assert_eq!(out[0], clean[0]);
    assert_eq!(out[11], clean[1]);
}

#[test]
fn empty_and_single() {
    let Some(gpu) = gpu() else { return };
    assert!(divergences(gpu, &[]).unwrap().is_empty());
    let one = divergences(gpu, &[GaussianPair::new(0.0, 1.0, 1.0, 2.0)]).unwrap();
    let truth = 0.5 * (0.25f64 + 0.25 - 0.25f64.ln() - 1.0);
    assert!((f64::from(one[0].kl) - truth).abs() / truth < 2e-6);
}

#[test]
fn repeated_calls_create_no_new_objects() {
    let Some(shared) = gpu() else { return };
    let (device, queue) = shared.device().unwrap();
    let gpu = Evaluator::from_device(&device, &queue, Options::default()).unwrap();
    let pairs = random_pairs(200_000, 9);
    divergences(&gpu, &pairs).unwrap();
    let smaller = &pairs[..1234];
    divergences(&gpu, smaller).unwrap();
    let before = gpu.gpu_info().unwrap();
    for _ in 0..3 {
        divergences(&gpu, &pairs).unwrap();
        divergences(&gpu, smaller).unwrap();
    }
    let after = gpu.gpu_info().unwrap();
    assert_eq!(after.buffers, before.buffers, "no new buffers");
    assert_eq!(after.pipelines, before.pipelines, "no new pipelines");
    assert_eq!(after.bind_groups, before.bind_groups, "no new bind groups");
    assert!(after.submissions > before.submissions);
}

#[test]
fn evaluate_async_matches_blocking() {
    let Some(gpu) = gpu() else { return };
    let pairs = random_pairs(300_000, 13);
    let request = Request::default();
    let a = eval(gpu, &pairs, &request).unwrap();
    let mut b = vec![0f32; a.len()];
    pollster::block_on(gpu.evaluate_async(Batch::Pairs(&pairs), &request, &mut b)).unwrap();
    assert_eq!(
        bytemuck::cast_slice::<_, u32>(&a),
        bytemuck::cast_slice::<_, u32>(&b)
    );
}

#[test]
fn every_transfer_mode_and_depth_gives_the_same_results() {
    let Some(shared) = gpu() else { return };
    let pairs = random_pairs(700_001, 29);
    let reference = divergences(shared, &pairs).unwrap();
    let (device, queue) = shared.device().unwrap();
    for transfer in [Transfer::Staging, Transfer::MappedStorage] {
        for chunks_in_flight in [1, 2, 3] {
            let g = Evaluator::from_device(
                &device,
                &queue,
                Options {
                    transfer,
                    chunks_in_flight,
                    host_chunk_pairs: 1 << 16,
                    ..Default::default()
                },
            )
            .unwrap();
            let out = divergences(&g, &pairs).unwrap();
            assert_eq!(out, reference, "{transfer:?} × {chunks_in_flight}");
            println!(
                "{transfer:?} × {chunks_in_flight}: mapped storage {}",
                g.gpu_info().unwrap().maps_storage_directly
            );
        }
    }
}

/// Subnormal results come out as on the CPU, whether or not the device
/// flushes them (measured at construction: `GpuInfo::flushes_subnormals`;
/// then the host path recomputes those rows, docs/ARCHITECTURE.md §2.5).
#[test]
fn subnormal_results_match_the_cpu() {
    let Some(gpu) = common::gpu() else { return };
    let flushes = gpu.gpu_info().map(|i| i.flushes_subnormals);
    println!("flushes_subnormals: {flushes:?}");
    // KL = ½(1e-20)² = 5e-41 and a coefficient e^-90 ≈ 8e-40: subnormal f32.
    let pairs = [
        GaussianPair::new(0.0, 1.0, 1e-20, 1.0),
        GaussianPair::new(0.0, 1.0, 26.832816, 1.0),
    ];
    let request = Request::measures(Metrics::ALL);
    let g = common::eval(gpu, &pairs, &request).unwrap();
    let c = common::eval(common::cpu(), &pairs, &request).unwrap();
    assert!(c[1] > 0.0 && c[1] < f32::MIN_POSITIVE, "CPU KL {:e}", c[1]);
    for (i, (a, b)) in g.iter().zip(&c).enumerate() {
        assert!(
            a.to_bits() == b.to_bits() || (a - b).abs() <= 2e-6 * b.abs(),
            "value {i}: gpu {a:e} cpu {b:e}"
        );
    }
}
