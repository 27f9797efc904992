//! Every measure in every parameterisation against 50-digit truth
//! (`tests/data/golden_measures_*.csv`), on the CPU (f32, f64) and the GPU
//! (f32, f64), asserted row by row under the tolerance model of docs/ARCHITECTURE.md §3:
//!
//! every measure within docs/ARCHITECTURE.md §3's targets, 1e-6 (CPU f32), 2e-6 (GPU f32),
//! 1e-14 (f64) — tighter than the 1e-5 (f32) and 1e-13 (f64) for
//! the measures beyond KL and cross-entropy. Exact zeros must be exact,
//! truths beyond the format's range +inf (see `gaussdiv::verify`).
//!
//! The per-measure, per-parameterisation maxima are printed
//! (`cargo test --release --test measures -- --nocapture`).
mod common;
use common::gpu;
use common::{all_measures, cpu, metric_index};
use gaussdiv::verify::measure_error;
use gaussdiv::{
    verify, Batch, DeviceBatch, DeviceInput, Evaluator, GaussianPair, Metric, Metrics, OnInvalid,
    Param, Precision, Request,
};
use std::collections::BTreeMap;

const N: usize = Metric::COUNT;

/// One golden row: float32 inputs (from the bit patterns) and the truth of every measure.
struct Row {
    pair: GaussianPair,
    truth: [f64; N],
    family: String,
}

fn load(param: Param) -> Vec<Row> {
    let names: Vec<&str> = Metric::ALL.iter().map(|m| m.name()).collect();
    common::golden_rows(&format!("golden_measures_{}.csv", param.name()), &names)
        .into_iter()
        .map(|r| {
            let mut truth = [0.0; N];
            truth.copy_from_slice(&r.values);
            Row {
                pair: r.pair,
                truth,
                family: r.family,
            }
        })
        .collect()
}

/// The bound of one measure on one path: docs/ARCHITECTURE.md §3's targets for every
/// measure (the issue asks for 1e-5 on the f32 paths and 1e-13 in f64 for the
/// new measures; these are the tighter bounds the `Tolerance` constants of
/// `verify` promise, so they are what is asserted).
fn bound(path: &str, _m: Metric) -> f64 {
    match path {
        "CPU f32" => 1e-6,
        "CPU f64" | "GPU f64" | "GPU f64 kernel only" => 1e-14,
        _ => 2e-6, // GPU f32
    }
}

/// Check `got` (every measure of every row, row-major) against the truth;
/// returns the maxima per measure and the failing rows.
fn check(
    path: &str,
    param: Param,
    rows: &[Row],
    got: &[f64],
    precision: Precision,
) -> ([f64; N], Vec<String>) {
    let mut max = [0f64; N];
    let mut fails = Vec::new();
    let mut by_family: BTreeMap<&str, [f64; N]> = BTreeMap::new();
    for (i, r) in rows.iter().enumerate() {
        let fam = by_family.entry(&r.family).or_default();
        for (j, m) in Metric::ALL.into_iter().enumerate() {
            let g = got[i * N + j];
            let e = measure_error(m, g, &r.truth, precision);
            if e.is_nan() || e > max[j] {
                max[j] = e;
            }
            fam[j] = fam[j].max(e);
            if e.is_nan() || e > bound(path, m) {
                fails.push(format!(
                    "{path} {param} row {i} ({}) {m}: got {g:e} want {:e} error {e:.3e} > {:e}; inputs {:?} (bits {:08x}:{:08x}:{:08x}:{:08x})",
                    r.family,
                    r.truth[j],
                    bound(path, m),
                    r.pair,
                    r.pair.mu1.to_bits(),
                    r.pair.sigma1.to_bits(),
                    r.pair.mu2.to_bits(),
                    r.pair.sigma2.to_bits(),
                ));
            }
        }
        // Structural properties: non-negative divergences and distances.
        for j in 4..N {
            if got[i * N + j] < 0.0 || got[i * N + 1] < 0.0 {
                fails.push(format!(
                    "{path} {param} row {i}: negative value {:?}",
                    &got[i * N..i * N + N]
                ));
            }
        }
    }
    println!("{path} {param}: {} rows", rows.len());
    for (j, m) in Metric::ALL.iter().enumerate() {
        println!(
            "  {:<26} max error {:.2e}  (bound {:.0e})",
            m.name(),
            max[j],
            bound(path, *m)
        );
    }
    for (fam, e) in &by_family {
        let worst = e.iter().cloned().fold(0.0, f64::max);
        println!("    {fam:<18} worst measure error {worst:.2e}");
    }
    (max, fails)
}

fn every(param: Param) -> Request {
    Request::measures(Metrics::ALL).with_param(param)
}

/// `request` with invalid input NaN in its rows instead of an error.
fn nan(request: Request) -> Request {
    request.with_on_invalid(OnInvalid::Nan)
}

/// The kernel's code of `param` (its position in `Param::ALL`), for seeds.
fn code(param: Param) -> u64 {
    Param::ALL.iter().position(|&p| p == param).unwrap() as u64
}

/// `request` on an array of pairs into `out` (f32 or f64).
fn run<T: gaussdiv::Float>(
    ev: &Evaluator,
    pairs: &[GaussianPair<T>],
    request: Request,
    out: &mut [T],
) -> gaussdiv::Result<()> {
    ev.evaluate(Batch::Pairs(pairs), &request, out)
}

fn report(title: &str, table: &[(Param, [f64; N])]) {
    println!("\n{title}: maximum error per measure and parameterisation");
    print!("  {:<26}", "measure");
    for (p, _) in table {
        print!(" {:>9}", p.name());
    }
    println!();
    for (j, m) in Metric::ALL.iter().enumerate() {
        print!("  {:<26}", m.name());
        for (_, max) in table {
            print!(" {:>9.2e}", max[j]);
        }
        println!();
    }
}

fn finish(fails: Vec<String>) {
    if !fails.is_empty() {
        let shown: Vec<_> = fails.iter().take(40).cloned().collect();
        panic!("{} failures:\n{}", fails.len(), shown.join("\n"));
    }
}

#[test]
fn golden_measures_cpu_f32() {
    let mut table = Vec::new();
    let mut fails = Vec::new();
    for param in Param::ALL {
        let rows = load(param);
        let pairs: Vec<_> = rows.iter().map(|r| r.pair).collect();
        let mut out = vec![0f32; pairs.len() * N];
        run(cpu(), &pairs, every(param), &mut out).unwrap();
        let got: Vec<f64> = out.iter().map(|&v| v.into()).collect();
        let (max, f) = check("CPU f32", param, &rows, &got, Precision::F32);
        table.push((param, max));
        fails.extend(f);
    }
    report("CPU f32", &table);
    finish(fails);
}

#[test]
fn golden_measures_cpu_f64() {
    let mut table = Vec::new();
    let mut fails = Vec::new();
    for param in Param::ALL {
        let rows = load(param);
        let pairs: Vec<_> = rows.iter().map(|r| r.pair.to_f64()).collect();
        let mut out = vec![0f64; pairs.len() * N];
        run(cpu(), &pairs, every(param), &mut out).unwrap();
        let (max, f) = check("CPU f64", param, &rows, &out, Precision::F64);
        table.push((param, max));
        fails.extend(f);
    }
    report("CPU f64", &table);
    finish(fails);
}

#[test]
fn golden_measures_gpu_f32() {
    let Some(gpu) = gpu() else { return };
    let mut table = Vec::new();
    let mut fails = Vec::new();
    for param in Param::ALL {
        let rows = load(param);
        let pairs: Vec<_> = rows.iter().map(|r| r.pair).collect();
        let mut out = vec![0f32; pairs.len() * N];
        run(gpu, &pairs, every(param), &mut out).unwrap();
        let got: Vec<f64> = out.iter().map(|&v| v.into()).collect();
        let (max, f) = check("GPU f32", param, &rows, &got, Precision::F32);
        table.push((param, max));
        fails.extend(f);

        // GPU ≡ CPU f32 within tolerance (each against the other, same model).
        let mut cpu_out = vec![0f32; pairs.len() * N];
        run(cpu(), &pairs, every(param), &mut cpu_out).unwrap();
        let mut worst = [0f64; N];
        for (i, r) in rows.iter().enumerate() {
            let mut as_truth = [0f64; N];
            for j in 0..N {
                as_truth[j] = cpu_out[i * N + j].into();
            }
            // The scale of the entropies comes from the CPU values; fall back
            // to the truth's where the CPU KL is infinite.
            for (j, m) in Metric::ALL.into_iter().enumerate() {
                let e = if as_truth[1].is_finite() && as_truth[4].is_finite() {
                    measure_error(m, out[i * N + j].into(), &as_truth, Precision::F32)
                } else {
                    measure_error(m, out[i * N + j].into(), &r.truth, Precision::F32)
                };
                worst[j] = worst[j].max(e);
                if e.is_nan() || e > 4e-6 {
                    fails.push(format!(
                        "GPU vs CPU f32 {param} row {i} {m}: GPU {:e} CPU {:e} ({e:.2e})",
                        out[i * N + j],
                        cpu_out[i * N + j]
                    ));
                }
            }
        }
        let w: Vec<String> = worst.iter().map(|e| format!("{e:.1e}")).collect();
        println!(
            "  GPU vs CPU f32 ({param}): max difference per measure [{}]",
            w.join(", ")
        );
    }
    let name = gpu
        .gpu_info()
        .and_then(|i| i.adapter)
        .map(|a| a.to_string())
        .unwrap_or_default();
    report(&format!("GPU f32 on {name}"), &table);
    finish(fails);
}

#[test]
fn golden_measures_gpu_kernel_alone() {
    // The kernel's own results on rows without subnormal μ (no CPU fix-ups).
    let Some(gpu) = gpu() else { return };
    let mut fails = Vec::new();
    let mut table = Vec::new();
    for param in Param::ALL {
        let rows: Vec<Row> = load(param)
            .into_iter()
            .filter(|r| {
                let tiny = |x: f32| x != 0.0 && x.abs() < f32::MIN_POSITIVE;
                let p = r.pair;
                !(tiny(p.mu1) || tiny(p.mu2) || tiny(p.mu1 - p.mu2))
            })
            .collect();
        let pairs: Vec<_> = rows.iter().map(|r| r.pair).collect();
        let mut out = vec![0f32; pairs.len() * N];
        run(gpu, &pairs, every(param), &mut out).unwrap();
        let got: Vec<f64> = out.iter().map(|&v| v.into()).collect();
        let (max, f) = check("GPU f32 kernel only", param, &rows, &got, Precision::F32);
        table.push((param, max));
        fails.extend(f);
    }
    report("GPU f32, kernel alone", &table);
    finish(fails);
}

/// The scale parameter `a` of σ in `param`, rounded to f32 (`None` when it
/// leaves the f32 range).
fn to_param(sigma: f64, param: Param) -> Option<f32> {
    let a = match param {
        Param::Std => sigma,
        Param::Var => sigma * sigma,
        Param::LogStd => sigma.ln(),
        Param::LogVar => 2.0 * sigma.ln(),
        _ => 1.0 / (sigma * sigma), // precision
    } as f32;
    (a.is_finite() && (a != 0.0 || matches!(param, Param::LogStd | Param::LogVar))).then_some(a)
}

/// Random and adversarial pairs in `param`: wide scales, near-equal scales
/// (both sides of the ρ = 2 seam too), tiny and huge mean differences.
fn random_pairs(n: usize, seed: u64, param: Param) -> Vec<GaussianPair> {
    let mut rng = common::Rng(seed);
    let mut out = Vec::with_capacity(n);
    while out.len() < n {
        let kind = rng.next_u64() % 6;
        let s1 = 10f64.powf(rng.unit() * 40.0 - 20.0);
        let s2 = match kind {
            0 => s1 * (1.0 + (rng.unit() - 0.5) * 1e-5),
            1 => s1 * (1.0 + (rng.unit() - 0.5) * 0.5),
            2 => {
                s1 * [0.5, 2.0, 0.7, 1.41][(rng.next_u64() % 4) as usize]
                    * (1.0 + (rng.unit() - 0.5) * 1e-3)
            }
            _ => 10f64.powf(rng.unit() * 40.0 - 20.0),
        };
        let mu1 = (rng.unit() - 0.5) * 10f64.powf(rng.unit() * 12.0 - 6.0);
        let mu2 = match kind {
            3 => mu1,
            4 => mu1 + (rng.unit() - 0.5) * s1 * 1e-4,
            _ => (rng.unit() - 0.5) * 10f64.powf(rng.unit() * 12.0 - 6.0),
        };
        if let (Some(a1), Some(a2)) = (to_param(s1, param), to_param(s2, param)) {
            out.push(GaussianPair::new(mu1 as f32, a1, mu2 as f32, a2));
        }
    }
    out
}

/// Extreme inputs in `param`: the ends of the f32 range, subnormals, huge
/// log-parameters (σ far outside the f32 range), identical pairs.
fn extreme_pairs(param: Param) -> Vec<GaussianPair> {
    let m = f32::MAX;
    let scales: Vec<f32> = match param {
        Param::Std | Param::Var | Param::Precision => vec![
            f32::from_bits(1),
            1e-40,
            f32::MIN_POSITIVE,
            1e-30,
            0.5,
            1.0,
            1.0000001,
            2.0,
            1e30,
            m,
        ],
        _ => vec![
            -m, -1e30, -1e6, -300.0, -104.0, -88.0, -1.0, -1e-30, 0.0, 1e-30, 0.7, 88.0, 104.0,
            300.0, 1e6, 1e30, m,
        ],
    };
    let mus = [0.0f32, -0.0, 1.0, -3.5, 1e-30, 1e30, -m, m];
    let mut out = Vec::new();
    for &a1 in &scales {
        for &a2 in &scales {
            for &mu1 in &mus {
                for &mu2 in &[0.0f32, 1.0, -m, m, mu1] {
                    out.push(GaussianPair::new(mu1, a1, mu2, a2));
                }
            }
        }
    }
    out
}

#[test]
fn random_and_extreme_pairs_in_every_parameterisation() {
    use gaussdiv::Tolerance;
    let gpu = gpu();
    for param in Param::ALL {
        // The overflow rule is decided in two-float arithmetic: only a truth
        // within 1e-12 of MAX + ½ ulp (where the f64 reference itself cannot
        // tell the side) is left out.
        let threshold = f64::from(f32::MAX) * (1.0 + f64::powi(2.0, -25));
        let (extreme, boundary): (Vec<_>, Vec<_>) =
            extreme_pairs(param).into_iter().partition(|p| {
                all_measures(&p.to_f64(), param)
                    .iter()
                    .all(|r| (r.abs() / threshold - 1.0).abs() > 1e-12)
            });
        let mut bout = vec![0f32; boundary.len() * N];
        run(cpu(), &boundary, every(param), &mut bout).unwrap();
        let b = verify(
            Batch::Pairs(&boundary),
            &every(param),
            &bout,
            Tolerance::CPU_F32,
        )
        .unwrap();
        println!(
            "{param}: {} extreme pairs at the overflow threshold left out ({} values there \
             on the other side of it than the f64 truth)",
            boundary.len(),
            b.metrics.iter().map(|m| m.failures).sum::<usize>()
        );
        for (label, pairs) in [
            ("random", random_pairs(100_000, 17 + code(param), param)),
            ("extreme", extreme),
        ] {
            let o = every(param);
            let mut out = vec![0f32; pairs.len() * N];
            run(cpu(), &pairs, o, &mut out).unwrap();
            let report = verify(Batch::Pairs(&pairs), &o, &out, Tolerance::CPU_F32).unwrap();
            println!("CPU f32 {param} {label}: {report}");
            assert!(report.passed(), "CPU f32 {param} {label}: {report}");
            let mut wide = vec![0f64; pairs.len() * N];
            let wide_pairs: Vec<_> = pairs.iter().map(|p| p.to_f64()).collect();
            run(cpu(), &wide_pairs, o, &mut wide).unwrap();
            assert!(
                wide.iter().all(|v| !v.is_nan()),
                "f64 NaN ({param} {label})"
            );
            if let Some(gpu) = gpu {
                let mut g = vec![0f32; pairs.len() * N];
                run(gpu, &pairs, o, &mut g).unwrap();
                let report = verify(Batch::Pairs(&pairs), &o, &g, Tolerance::GPU_F32).unwrap();
                println!("GPU f32 {param} {label}: {report}");
                assert!(report.passed(), "GPU f32 {param} {label}: {report}");
            }
        }
    }
}

#[test]
fn identical_distributions_give_exact_zeros_and_one() {
    for param in Param::ALL {
        for p in extreme_pairs(param) {
            let same = GaussianPair::new(p.mu1, p.sigma1, p.mu1, p.sigma1);
            let m = all_measures(&same, param);
            let d = all_measures(&same.to_f64(), param);
            for (j, metric) in Metric::ALL.iter().enumerate() {
                let want = match metric {
                    Metric::Kl
                    | Metric::ReverseKl
                    | Metric::Jeffreys
                    | Metric::Bhattacharyya
                    | Metric::Hellinger
                    | Metric::Wasserstein2 => Some(0.0),
                    Metric::BhattacharyyaCoefficient => Some(1.0),
                    _ => None,
                };
                if let Some(w) = want {
                    assert_eq!(m[j], w as f32, "{param} {metric} of {same:?}");
                    assert_eq!(d[j], w, "{param} {metric} (f64) of {same:?}");
                }
            }
            // Cross-entropy equals entropy exactly for identical distributions.
            assert_eq!(m[0], m[2], "{param} {same:?}");
        }
    }
}

#[test]
fn swapping_p1_and_p2_swaps_the_measures() {
    use gaussdiv::verify::kl_error;
    for param in Param::ALL {
        for p in random_pairs(20_000, 99, param) {
            let q = GaussianPair::new(p.mu2, p.sigma2, p.mu1, p.sigma1);
            let (a, b) = (all_measures(&p, param), all_measures(&q, param));
            let close = |x: f32, y: f32| kl_error(x.into(), y.into(), Precision::F32) <= 1e-6;
            assert_eq!(a[2], b[3], "entropy {param} {p:?}");
            assert!(
                close(a[1], b[4]),
                "kl/reverse {param} {p:?}: {} {}",
                a[1],
                b[4]
            );
            for j in 5..N {
                assert!(
                    close(a[j], b[j]),
                    "symmetric measure {j} {param} {p:?}: {} {}",
                    a[j],
                    b[j]
                );
            }
        }
    }
}

#[test]
fn invalid_input_per_parameterisation() {
    use gaussdiv::Field;
    let bad: [(Param, f32, &str); 6] = [
        (Param::Std, 0.0, "a standard deviation must be > 0"),
        (Param::Var, -1.0, "a variance must be > 0"),
        (Param::Precision, 0.0, "a precision must be > 0"),
        (Param::LogStd, f32::INFINITY, "infinite"),
        (Param::LogVar, f32::NAN, "not a number"),
        (Param::Var, f32::INFINITY, "infinite"),
    ];
    for (param, v, reason) in bad {
        let mut pairs = random_pairs(100, 5, param);
        pairs[42].sigma2 = v;
        // The validation of the evaluators (the CPU's, under the error policy)
        // and of one pair.
        assert_eq!(
            pairs[42].invalid_field(param),
            Some((Field::Sigma2, reason)),
            "{param}"
        );
        let mut out = vec![0f32; pairs.len() * N];
        match run(cpu(), &pairs, every(param), &mut out) {
            Err(gaussdiv::Error::InvalidInput {
                index,
                field,
                reason: r,
                ..
            }) => {
                assert_eq!((index, field, r), (42, Field::Sigma2, reason), "{param}");
            }
            other => panic!("{param}: expected InvalidInput, got {other:?}"),
        }
        run(cpu(), &pairs, nan(every(param)), &mut out).unwrap();
        assert!(out[42 * N..43 * N].iter().all(|v| v.is_nan()), "{param}");
        assert!(out[..42 * N].iter().all(|v| !v.is_nan()), "{param}");
        if let Some(gpu) = gpu() {
            assert!(matches!(
                run(gpu, &pairs, every(param), &mut out),
                Err(gaussdiv::Error::InvalidInput { index: 42, .. })
            ));
            run(gpu, &pairs, nan(every(param)), &mut out).unwrap();
            assert!(out[42 * N..43 * N].iter().all(|v| v.is_nan()), "{param}");
            assert!(out[..42 * N].iter().all(|v| !v.is_nan()), "{param}");
        }
    }
    // Log-parameters may be zero or negative; variances may be subnormal.
    let valid = |p: GaussianPair, param: Param| {
        p.invalid_field(param).is_none() && run(cpu(), &[p], every(param), &mut [0f32; N]).is_ok()
    };
    assert!(valid(GaussianPair::new(0.0, 0.0, 1.0, -5.0), Param::LogStd));
    assert!(valid(GaussianPair::new(0.0, 1e-45, 1.0, 1.0), Param::Var));
}

#[test]
fn metric_subsets_match_every_measure() {
    // Each subset is its own pipeline and CPU instantiation: the values agree
    // with the full set (bit for bit on the CPU; within 1e-6 under the
    // tolerance model on the GPU, where a driver may contract differently
    // per pipeline).
    let subsets: [&[Metric]; 5] = [
        &[Metric::Kl, Metric::CrossEntropy],
        &[Metric::Hellinger],
        &[Metric::Wasserstein2, Metric::ReverseKl, Metric::EntropyQ],
        &[Metric::BhattacharyyaCoefficient, Metric::Bhattacharyya],
        &[Metric::Jeffreys, Metric::Entropy],
    ];
    for param in Param::ALL {
        let pairs = random_pairs(5000, 3, param);
        let mut all = vec![0f32; pairs.len() * N];
        run(cpu(), &pairs, every(param), &mut all).unwrap();
        let mut gall = vec![0f32; pairs.len() * N];
        if let Some(gpu) = gpu() {
            run(gpu, &pairs, every(param), &mut gall).unwrap();
        }
        for s in subsets {
            let set = Metrics::new(s).unwrap();
            let k = set.len();
            let mut out = vec![0f32; pairs.len() * k];
            run(
                cpu(),
                &pairs,
                Request::measures(set).with_param(param),
                &mut out,
            )
            .unwrap();
            for i in 0..pairs.len() {
                for (j, m) in set.iter().enumerate() {
                    assert_eq!(
                        out[i * k + j].to_bits(),
                        all[i * N + metric_index(m)].to_bits(),
                        "{param} {m} row {i}"
                    );
                }
            }
            if let Some(gpu) = gpu() {
                run(
                    gpu,
                    &pairs,
                    Request::measures(set).with_param(param),
                    &mut out,
                )
                .unwrap();
                for i in 0..pairs.len() {
                    let mut full = [0f64; N];
                    for (f, &v) in full.iter_mut().zip(&gall[i * N..(i + 1) * N]) {
                        *f = v.into();
                    }
                    for (j, m) in set.iter().enumerate() {
                        let a = out[i * k + j];
                        let e = measure_error(m, a.into(), &full, Precision::F32);
                        assert!(
                            e <= 1e-6,
                            "GPU {param} {m} row {i}: {a} vs {} ({e:e})",
                            full[metric_index(m)]
                        );
                    }
                }
            }
        }
    }
}

#[test]
fn device_path_every_measure_beyond_one_output_binding() {
    // Ten measures are 40 B per pair: the output binding, not the 16-byte
    // input, limits a chunk. More pairs than one output binding holds must
    // split into several bindings and passes.
    use gaussdiv::wgpu;
    use wgpu::util::DeviceExt;
    let Some(gpu) = gpu() else { return };
    let per_binding = (gpu.gpu_info().unwrap().max_binding_bytes / (4 * N as u64)) as usize;
    let n = per_binding + 1000;
    let param = Param::LogVar;
    let pairs = random_pairs(n, 23, param);
    let (device, queue) = gpu.device().unwrap();
    let input = device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
        label: Some("test pairs"),
        contents: bytemuck::cast_slice(&pairs),
        usage: wgpu::BufferUsages::STORAGE,
    });
    let size = (n * N * 4) as u64;
    let output = device.create_buffer(&wgpu::BufferDescriptor {
        label: Some("test output"),
        size,
        usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC,
        mapped_at_creation: false,
    });
    let readback = device.create_buffer(&wgpu::BufferDescriptor {
        label: Some("test readback"),
        size,
        usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
        mapped_at_creation: false,
    });
    let mut encoder = device.create_command_encoder(&Default::default());
    gpu.encode(
        &mut encoder,
        DeviceBatch {
            input: DeviceInput::Pairs {
                pairs: input.slice(..),
                count: n as u64,
            },
            output: output.slice(..),
        },
        &every(param),
    )
    .unwrap();
    encoder.copy_buffer_to_buffer(&output, 0, &readback, 0, size);
    queue.submit([encoder.finish()]);
    readback.slice(..).map_async(wgpu::MapMode::Read, |_| {});
    device.poll(wgpu::PollType::wait_indefinitely()).unwrap();
    let device_out: Vec<f32> =
        bytemuck::cast_slice(&readback.slice(..).get_mapped_range().unwrap()).to_vec();
    let mut host_out = vec![0f32; n * N];
    run(gpu, &pairs, every(param), &mut host_out).unwrap();
    assert_eq!(
        bytemuck::cast_slice::<f32, u32>(&device_out),
        bytemuck::cast_slice::<f32, u32>(&host_out),
        "device path = host path, bit for bit"
    );
    let report = verify(
        Batch::Pairs(&pairs),
        &every(param),
        &device_out,
        gaussdiv::Tolerance::GPU_F32,
    )
    .unwrap();
    assert!(report.passed(), "{report}");
}

/// The shared evaluator, if it can run f64 (skipped otherwise, unless
/// GAUSSDIV_REQUIRE_GPU=1: lavapipe has SHADER_F64 and SHADER_INT64).
fn gpu64() -> Option<&'static Evaluator> {
    let gpu = gpu()?;
    if gpu.gpu_info().expect("a GPU evaluator").supports_f64 {
        return Some(gpu);
    }
    let missing = gaussdiv::wgpu::Features::SHADER_F64 | gaussdiv::wgpu::Features::SHADER_INT64;
    if std::env::var("GAUSSDIV_REQUIRE_GPU").as_deref() == Ok("1") {
        panic!("GAUSSDIV_REQUIRE_GPU=1 but the adapter lacks {missing:?}");
    }
    eprintln!("SKIPPED: the adapter lacks {missing:?}");
    None
}

#[test]
fn golden_measures_gpu_f64() {
    let Some(gpu) = gpu64() else { return };
    let mut table = Vec::new();
    let mut fails = Vec::new();
    for param in Param::ALL {
        let rows = load(param);
        let pairs: Vec<_> = rows.iter().map(|r| r.pair.to_f64()).collect();
        let mut out = vec![0f64; pairs.len() * N];
        run(gpu, &pairs, every(param), &mut out).unwrap();
        let (max, f) = check("GPU f64", param, &rows, &out, Precision::F64);
        table.push((param, max));
        fails.extend(f);

        // These are the kernel's own results: no row has a subnormal μ or
        // μ1 − μ2 in f64 (the golden inputs are f32 values), so no row was
        // recomputed on the CPU.
        let fixed = pairs
            .iter()
            .filter(|p| {
                let tiny = |x: f64| x != 0.0 && x.abs() < f64::MIN_POSITIVE;
                tiny(p.mu1) || tiny(p.mu2) || tiny(p.mu1 - p.mu2)
            })
            .count();
        assert_eq!(fixed, 0, "{param}: golden rows recomputed on the CPU");

        // GPU f64 against CPU f64 under the same error model.
        let mut cpu_out = vec![0f64; pairs.len() * N];
        run(cpu(), &pairs, every(param), &mut cpu_out).unwrap();
        let mut worst = [0f64; N];
        let mut same_bits = 0usize;
        for (i, r) in rows.iter().enumerate() {
            let mut as_truth = [0f64; N];
            as_truth.copy_from_slice(&cpu_out[i * N..(i + 1) * N]);
            for (j, m) in Metric::ALL.into_iter().enumerate() {
                let g = out[i * N + j];
                same_bits += usize::from(g.to_bits() == as_truth[j].to_bits());
                let e = if as_truth[1].is_finite() && as_truth[4].is_finite() {
                    measure_error(m, g, &as_truth, Precision::F64)
                } else {
                    measure_error(m, g, &r.truth, Precision::F64)
                };
                worst[j] = worst[j].max(e);
                if e.is_nan() || e > 1e-14 {
                    fails.push(format!(
                        "GPU vs CPU f64 {param} row {i} {m}: GPU {g:e} CPU {:e} ({e:.2e})",
                        as_truth[j]
                    ));
                }
            }
        }
        let w: Vec<String> = worst.iter().map(|e| format!("{e:.1e}")).collect();
        println!(
            "  GPU vs CPU f64 ({param}): max difference per measure [{}]; {same_bits} of {} values bit-identical",
            w.join(", "),
            out.len()
        );
    }
    report("GPU f64", &table);
    finish(fails);
}

/// The scale parameter `a` of σ = 2^lg in `param`, in f64 (`None` when it
/// leaves the f64 range).
fn to_param64(lg: f64, param: Param) -> Option<f64> {
    let ln_s = lg * std::f64::consts::LN_2;
    let a = match param {
        Param::Std => lg.exp2(),
        Param::Var => (2.0 * lg).exp2(),
        Param::LogStd => ln_s,
        Param::LogVar => 2.0 * ln_s,
        _ => (-2.0 * lg).exp2(), // precision
    };
    (a.is_finite() && (a != 0.0 || matches!(param, Param::LogStd | Param::LogVar))).then_some(a)
}

/// Random and adversarial f64 pairs in `param` over the whole f64 range:
/// σ from 2^-1074 to 2^1023 (log-parameters far beyond), near-equal scales,
/// the seams of the near region, equal, tiny and huge mean differences,
/// subnormal μ (host fix-up rows).
fn random_pairs64(n: usize, seed: u64, param: Param) -> Vec<gaussdiv::GaussianPair64> {
    let mut rng = common::Rng(seed.max(1));
    let mut out = Vec::with_capacity(n);
    let log_param = matches!(param, Param::LogStd | Param::LogVar);
    while out.len() < n {
        let kind = rng.next_u64() % 8;
        let lg1 = rng.unit() * 2000.0 - 1000.0;
        let lg2 = match kind {
            0 => lg1 + (rng.unit() - 0.5) * 1e-12,
            1 => lg1 + (rng.unit() - 0.5) * 1.2,
            2 => {
                lg1 + [1.0, -1.0, 0.5, -0.5, 2.0, -2.0][(rng.next_u64() % 6) as usize]
                    + (rng.unit() - 0.5) * 1e-9
            }
            _ => rng.unit() * 2000.0 - 1000.0,
        };
        let scale = 10f64.powf(rng.unit() * 600.0 - 300.0);
        let mu1 = (rng.unit() - 0.5) * scale;
        let mu2 = match kind {
            3 => mu1,
            4 => mu1 * (1.0 + (rng.unit() - 0.5) * 1e-12),
            5 => mu1 + (rng.unit() - 0.5) * lg1.exp2() * 1e-6,
            6 => f64::from_bits(rng.next_u64() % 0x000f_ffff_ffff_ffff + 1),
            _ => (rng.unit() - 0.5) * 10f64.powf(rng.unit() * 600.0 - 300.0),
        };
        let (a1, a2) = if log_param && kind == 7 {
            // ln σ far beyond the range of σ.
            let big = |rng: &mut common::Rng| (rng.unit() - 0.5) * 10f64.powf(rng.unit() * 300.0);
            (Some(big(&mut rng)), Some(big(&mut rng)))
        } else {
            (to_param64(lg1, param), to_param64(lg2, param))
        };
        if let (Some(a1), Some(a2)) = (a1, a2) {
            out.push(gaussdiv::GaussianPair64 {
                mu1,
                sigma1: a1,
                mu2,
                sigma2: a2,
            });
        }
    }
    out
}

/// Extreme f64 inputs in `param`: the ends of the f64 range, subnormals,
/// huge log-parameters, identical pairs.
fn extreme_pairs64(param: Param) -> Vec<gaussdiv::GaussianPair64> {
    let m = f64::MAX;
    let scales: Vec<f64> = match param {
        Param::Std | Param::Var | Param::Precision => vec![
            f64::from_bits(1),
            1e-310,
            f64::MIN_POSITIVE,
            1e-300,
            0.5,
            1.0,
            1.0 + f64::EPSILON,
            2.0,
            1e300,
            m,
        ],
        _ => vec![
            -m, -1e300, -1e6, -3000.0, -1200.0, -745.0, -709.0, -1.0, -1e-300, 0.0, 1e-300, 0.7,
            709.0, 745.0, 1200.0, 3000.0, 1e6, 1e300, m,
        ],
    };
    let mus = [0.0f64, -0.0, 1.0, -3.5, 1e-300, 1e300, -m, m];
    let mut out = Vec::new();
    for &a1 in &scales {
        for &a2 in &scales {
            for &mu1 in &mus {
                for &mu2 in &[0.0f64, 1.0, -m, m, mu1] {
                    out.push(gaussdiv::GaussianPair64 {
                        mu1,
                        sigma1: a1,
                        mu2,
                        sigma2: a2,
                    });
                }
            }
        }
    }
    out
}

#[test]
fn gpu_f64_matches_cpu_f64_in_every_parameterisation() {
    use gaussdiv::Tolerance;
    let Some(gpu) = gpu64() else { return };
    for param in Param::ALL {
        for (label, pairs) in [
            ("random", random_pairs64(100_000, 23 + code(param), param)),
            ("extreme", extreme_pairs64(param)),
        ] {
            let o = every(param);
            let mut g = vec![0f64; pairs.len() * N];
            run(gpu, &pairs, o, &mut g).unwrap();
            let report = verify(Batch::Pairs(&pairs), &o, &g, Tolerance::F64).unwrap();
            let mut c = vec![0f64; pairs.len() * N];
            run(cpu(), &pairs, o, &mut c).unwrap();
            let same = g
                .iter()
                .zip(&c)
                .filter(|(a, b)| a.to_bits() == b.to_bits())
                .count();
            println!(
                "GPU f64 {param} {label}: {report}; {same} of {} values bit-identical to the CPU",
                g.len()
            );
            assert!(report.passed(), "GPU f64 {param} {label}: {report}");
            // Infinities, zeros and NaN where the CPU has them.
            for (i, (a, b)) in g.iter().zip(&c).enumerate() {
                assert_eq!(
                    (a.is_nan(), a.is_infinite(), *a == 0.0),
                    (b.is_nan(), b.is_infinite(), *b == 0.0),
                    "{param} {label} row {} measure {}: GPU {a:e} CPU {b:e} ({:?})",
                    i / N,
                    Metric::ALL[i % N],
                    pairs[i / N]
                );
            }
        }
    }
}

#[test]
fn gpu_f64_metric_subsets_match_every_measure() {
    let Some(gpu) = gpu64() else { return };
    let subsets: [&[Metric]; 6] = [
        &[Metric::Kl, Metric::CrossEntropy],
        &[Metric::Hellinger],
        &[Metric::Wasserstein2, Metric::ReverseKl, Metric::EntropyQ],
        &[Metric::BhattacharyyaCoefficient, Metric::Bhattacharyya],
        &[Metric::Jeffreys, Metric::Entropy],
        &[Metric::CrossEntropy, Metric::Kl, Metric::Entropy],
    ];
    for param in Param::ALL {
        let pairs = random_pairs64(5000, 3, param);
        let mut all = vec![0f64; pairs.len() * N];
        run(gpu, &pairs, every(param), &mut all).unwrap();
        for s in subsets {
            let set = Metrics::new(s).unwrap();
            let k = set.len();
            let mut out = vec![0f64; pairs.len() * k];
            run(
                gpu,
                &pairs,
                Request::measures(set).with_param(param),
                &mut out,
            )
            .unwrap();
            let mut async_out = vec![0f64; pairs.len() * k];
            pollster::block_on(gpu.evaluate_async(
                Batch::Pairs(&pairs),
                &Request::measures(set).with_param(param),
                &mut async_out,
            ))
            .unwrap();
            for i in 0..pairs.len() {
                let full = &all[i * N..(i + 1) * N];
                let mut full_arr = [0f64; N];
                full_arr.copy_from_slice(full);
                for (j, m) in set.iter().enumerate() {
                    let a = out[i * k + j];
                    // Each subset is its own pipeline: a driver may contract
                    // differently per pipeline, so within 1e-14, not bit for bit.
                    let e = measure_error(m, a, &full_arr, Precision::F64);
                    assert!(
                        e <= 1e-14 || a.to_bits() == full[metric_index(m)].to_bits(),
                        "GPU f64 {param} {m} row {i}: {a:e} vs {:e} ({e:e})",
                        full[metric_index(m)]
                    );
                    assert_eq!(a.to_bits(), async_out[i * k + j].to_bits());
                }
            }
        }
    }
}

#[test]
fn gpu_f64_invalid_input_per_parameterisation() {
    let Some(gpu) = gpu64() else { return };
    let bad: [(Param, f64); 6] = [
        (Param::Std, 0.0),
        (Param::Var, -1.0),
        (Param::Precision, 0.0),
        (Param::LogStd, f64::INFINITY),
        (Param::LogVar, f64::NAN),
        (Param::Var, f64::INFINITY),
    ];
    for (param, v) in bad {
        let mut pairs = random_pairs64(100, 5, param);
        pairs[42].sigma2 = v;
        let mut out = vec![0f64; pairs.len() * N];
        match run(gpu, &pairs, every(param), &mut out) {
            Err(gaussdiv::Error::InvalidInput { index: 42, .. }) => {}
            other => panic!("{param}: expected InvalidInput at 42, got {other:?}"),
        }
        run(gpu, &pairs, nan(every(param)), &mut out).unwrap();
        assert!(out[42 * N..43 * N].iter().all(|v| v.is_nan()), "{param}");
        assert!(out[..42 * N].iter().all(|v| !v.is_nan()), "{param}");
    }
    // Log-parameters may be zero or negative.
    let p = [gaussdiv::GaussianPair64 {
        mu1: 0.0,
        sigma1: 0.0,
        mu2: 1.0,
        sigma2: -5.0,
    }];
    let mut out = vec![0f64; N];
    run(gpu, &p, every(Param::LogStd), &mut out).unwrap();
    assert!(out.iter().all(|v| !v.is_nan()));
}
