//! Gradients of KL and cross-entropy in every parameterisation: against the
//! 50-digit truth of `tests/data/golden_measures_*.csv` (columns
//! `dce_*`, `dkl_*`) row by row, on the CPU (f32, f64) and the GPU (f32);
//! against central finite differences of the f64 closed forms; and the GPU
//! against the CPU.
//!
//! `cargo test --release --test gradients -- --nocapture` prints the maxima.
mod common;
use common::{all_measures, gpu, metric_index};
use gaussdiv::verify::{gradient_error, gradient_scales};
use gaussdiv::{
    Backend, Batch, Evaluator, GaussianPair, GaussianPair64, Gradients, Metric, Metrics, OnInvalid,
    Param, Precision, Request,
};

/// Gradient values per pair: ∂/∂(μ1, a1, μ2, a2) of the cross-entropy, then of KL.
const GRADIENTS: usize = 8;

/// `request` on an array of pairs into `out` (f32 or f64).
fn run<T: gaussdiv::Float>(
    ev: &Evaluator,
    pairs: &[GaussianPair<T>],
    request: Request,
    out: &mut [T],
) -> gaussdiv::Result<()> {
    ev.evaluate(Batch::Pairs(pairs), &request, out)
}

/// The gradients of cross-entropy and KL of every pair.
fn gradients(
    ev: &Evaluator,
    pairs: &[GaussianPair],
    request: Request,
) -> gaussdiv::Result<Vec<Gradients>> {
    let mut out = vec![0f32; pairs.len() * GRADIENTS];
    run(ev, pairs, request, &mut out)?;
    Ok(bytemuck::cast_slice(&out).to_vec())
}

const NAMES: [&str; GRADIENTS] = [
    "dce_dmu1", "dce_da1", "dce_dmu2", "dce_da2", "dkl_dmu1", "dkl_da1", "dkl_dmu2", "dkl_da2",
];

/// The bound asserted per path: the issue asks for 1e-5 relative in f32;
/// these are docs/ARCHITECTURE.md §3's tighter targets (CPU f32 1e-6, GPU f32 2e-6, f64
/// 1e-14), under the error of `verify::gradient_error`.
fn bound(path: &str) -> f64 {
    match path {
        "CPU f32" => 1e-6,
        "CPU f64" | "GPU f64" => 1e-14,
        _ => 2e-6,
    }
}

struct Row {
    pair: GaussianPair,
    truth: [f64; GRADIENTS],
    family: String,
}

fn load(param: Param) -> Vec<Row> {
    common::golden_rows(&format!("golden_measures_{}.csv", param.name()), &NAMES)
        .into_iter()
        .map(|r| {
            let mut truth = [0.0; GRADIENTS];
            truth.copy_from_slice(&r.values);
            Row {
                pair: r.pair,
                truth,
                family: r.family,
            }
        })
        .collect()
}

/// Max error per gradient value; panics listing the rows beyond the bound.
fn check(
    path: &str,
    param: Param,
    rows: &[Row],
    got: &[f64],
    precision: Precision,
    fails: &mut Vec<String>,
) -> f64 {
    let mut max = [0f64; GRADIENTS];
    let scales: Vec<[f64; GRADIENTS]> = rows
        .iter()
        .map(|r| gradient_scales(&r.pair.to_f64(), param))
        .collect();
    let mut beyond_relative = Vec::new();
    for (i, r) in rows.iter().enumerate() {
        for j in 0..GRADIENTS {
            let g = got[i * GRADIENTS + j];
            let e = gradient_error(g, r.truth[j], scales[i][j], precision);
            let rel = gradient_error(g, r.truth[j], 0.0, precision);
            if rel > 1e-5 || rel.is_nan() {
                beyond_relative.push(format!(
                    "row {i} ({}) {} rel {rel:.2e} scaled {e:.2e}",
                    r.family, NAMES[j]
                ));
            }
            if e.is_nan() || e > max[j] {
                max[j] = e;
            }
            if e.is_nan() || e > bound(path) {
                fails.push(format!(
                    "{path} {param} row {i} ({}) {}: got {g:e} want {:e} error {e:.3e}; inputs {:?}",
                    r.family, NAMES[j], r.truth[j], r.pair
                ));
            }
        }
    }
    let worst = max.iter().cloned().fold(0.0, f64::max);
    if !beyond_relative.is_empty() {
        println!(
            "  {path} {param}: {} values beyond 1e-5 relative to themselves (within the bound relative to their terms): {}",
            beyond_relative.len(),
            beyond_relative.join("; ")
        );
    }
    println!(
        "{path} {param}: {} rows, max relative error {worst:.2e} ({})",
        rows.len(),
        NAMES
            .iter()
            .zip(max)
            .map(|(n, m)| format!("{n} {m:.1e}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    worst
}

fn assert_no_fails(fails: &[String]) {
    assert!(
        fails.is_empty(),
        "{} values beyond the bound:\n{}",
        fails.len(),
        fails[..fails.len().min(30)].join("\n")
    );
}

fn options(param: Param) -> Request {
    Request::gradients(Metrics::CE_KL).with_param(param)
}

/// The kernel's code of `param` (its position in `Param::ALL`), for seeds.
fn code(param: Param) -> u64 {
    Param::ALL.iter().position(|&p| p == param).unwrap() as u64
}

#[test]
fn golden_cpu_f32() {
    let mut fails = Vec::new();
    for param in Param::ALL {
        let rows = load(param);
        let pairs: Vec<GaussianPair> = rows.iter().map(|r| r.pair).collect();
        let mut out = vec![0f32; pairs.len() * GRADIENTS];
        run(common::cpu(), &pairs, options(param), &mut out).unwrap();
        let got: Vec<f64> = out.iter().map(|&v| f64::from(v)).collect();
        check("CPU f32", param, &rows, &got, Precision::F32, &mut fails);
    }
    assert_no_fails(&fails);
}

#[test]
fn golden_cpu_f64() {
    let mut fails = Vec::new();
    for param in Param::ALL {
        let rows = load(param);
        let pairs: Vec<GaussianPair64> = rows.iter().map(|r| r.pair.to_f64()).collect();
        let mut out = vec![0f64; pairs.len() * GRADIENTS];
        run(common::cpu(), &pairs, options(param), &mut out).unwrap();
        check("CPU f64", param, &rows, &out, Precision::F64, &mut fails);
    }
    assert_no_fails(&fails);
}

/// A parameter value of σ in `param` (for random test pairs).
fn to_param(sigma: f64, param: Param) -> f64 {
    match param {
        Param::Std => sigma,
        Param::Var => sigma * sigma,
        Param::LogStd => sigma.ln(),
        Param::LogVar => 2.0 * sigma.ln(),
        _ => 1.0 / (sigma * sigma),
    }
}

/// Random pairs of moderate magnitude (finite differences are well
/// conditioned there), exactly representable in f32.
fn moderate_pairs(param: Param, n: usize, seed: u64) -> Vec<GaussianPair> {
    let mut rng = common::Rng(seed);
    (0..n)
        .map(|i| {
            let mu1 = 10.0 * rng.unit() - 5.0;
            // Every fourth pair near-equal (ρ ≈ 1, Δμ ≈ 0).
            let near = i % 4 == 0;
            let mu2 = if near {
                mu1 + 1e-3 * (rng.unit() - 0.5)
            } else {
                10.0 * rng.unit() - 5.0
            };
            let s1 = (0.1f64).powf(2.0 * rng.unit() - 1.0);
            let s2 = if near {
                s1 * (1.0 + 1e-3 * (rng.unit() - 0.5))
            } else {
                (0.1f64).powf(2.0 * rng.unit() - 1.0)
            };
            GaussianPair::new(
                mu1 as f32,
                to_param(s1, param) as f32,
                mu2 as f32,
                to_param(s2, param) as f32,
            )
        })
        .collect()
}

/// ∂/∂x_j of cross-entropy and KL by Richardson-extrapolated central differences
/// of the f64 closed forms (the CPU f64 measures): error O(h⁴) + rounding.
/// Also returns each difference's rounding noise (absolute): 1e-14 of the
/// function's magnitude over the step.
fn finite_differences(p: GaussianPair64, param: Param) -> ([f64; GRADIENTS], [f64; GRADIENTS]) {
    let f = |x: [f64; 4]| {
        let m = all_measures(
            &GaussianPair64 {
                mu1: x[0],
                sigma1: x[1],
                mu2: x[2],
                sigma2: x[3],
            },
            param,
        );
        [
            m[metric_index(Metric::CrossEntropy)],
            m[metric_index(Metric::Kl)],
        ]
    };
    let x0 = [p.mu1, p.sigma1, p.mu2, p.sigma2];
    let f0 = f(x0);
    let mut out = [0.0; GRADIENTS];
    let mut noise = [0.0; GRADIENTS];
    for j in 0..4 {
        let h = 1e-3 * x0[j].abs().max(1e-2);
        let d = |h: f64| {
            let (mut a, mut b) = (x0, x0);
            a[j] += h;
            b[j] -= h;
            let (fa, fb) = (f(a), f(b));
            [(fa[0] - fb[0]) / (2.0 * h), (fa[1] - fb[1]) / (2.0 * h)]
        };
        let (d1, d2) = (d(h), d(h / 2.0));
        for m in 0..2 {
            out[m * 4 + j] = (4.0 * d2[m] - d1[m]) / 3.0;
            noise[m * 4 + j] = 1e-14 * (f0[m].abs() + 1.0) / h;
        }
    }
    (out, noise)
}

/// The analytic gradients (f64 and f32) match finite differences of the
/// f64 closed forms, in every parameterisation.
#[test]
fn finite_differences_agree() {
    for param in Param::ALL {
        let pairs = moderate_pairs(param, 2000, 17 + code(param));
        let p64: Vec<GaussianPair64> = pairs.iter().map(|p| p.to_f64()).collect();
        let mut g32 = vec![0f32; pairs.len() * GRADIENTS];
        let mut g64 = vec![0f64; pairs.len() * GRADIENTS];
        run(common::cpu(), &pairs, options(param), &mut g32).unwrap();
        run(common::cpu(), &p64, options(param), &mut g64).unwrap();
        let (mut max32, mut max64) = (0f64, 0f64);
        for (i, p) in p64.iter().enumerate() {
            let (fd, noise) = finite_differences(*p, param);
            let scales = gradient_scales(p, param);
            for j in 0..GRADIENTS {
                // Relative to the value (or its terms, see gradient_scales),
                // after the difference's own rounding noise.
                let err = |g: f64| {
                    ((g - fd[j]).abs() - noise[j]).max(0.0) / fd[j].abs().max(scales[j]).max(1e-300)
                };
                let e64 = err(g64[i * GRADIENTS + j]);
                let e32 = err(f64::from(g32[i * GRADIENTS + j]));
                assert!(
                    e64 < 1e-7,
                    "{param} row {i} {}: f64 {} vs fd {} ({e64:e}) {p:?}",
                    NAMES[j],
                    g64[i * GRADIENTS + j],
                    fd[j]
                );
                assert!(
                    e32 < 1e-5,
                    "{param} row {i} {}: f32 {} vs fd {} ({e32:e}) {p:?}",
                    NAMES[j],
                    g32[i * GRADIENTS + j],
                    fd[j]
                );
                max32 = max32.max(e32);
                max64 = max64.max(e64);
            }
        }
        println!("finite differences {param}: max error f64 {max64:.2e}, f32 {max32:.2e}");
    }
}

#[test]
fn golden_gpu_f32() {
    let Some(g) = gpu() else { return };
    let mut fails = Vec::new();
    for param in Param::ALL {
        let rows = load(param);
        let pairs: Vec<GaussianPair> = rows.iter().map(|r| r.pair).collect();
        let mut out = vec![0f32; pairs.len() * GRADIENTS];
        run(g, &pairs, options(param), &mut out).unwrap();
        let got: Vec<f64> = out.iter().map(|&v| f64::from(v)).collect();
        check("GPU f32", param, &rows, &got, Precision::F32, &mut fails);
        // The kernel mirrors the CPU formulas: equal values but for the
        // rounding of subnormal intermediates (the device may flush them).
        let mut cpu = vec![0f32; pairs.len() * GRADIENTS];
        run(common::cpu(), &pairs, options(param), &mut cpu).unwrap();
        let differ = out
            .iter()
            .zip(&cpu)
            .filter(|(a, b)| a.to_bits() != b.to_bits() && !(a.is_nan() && b.is_nan()))
            .count();
        println!(
            "  GPU vs CPU {param}: {differ} of {} values not bit-identical",
            out.len()
        );
    }
    assert_no_fails(&fails);
}

/// The GPU f64 gradients (`main_grad` of the f64 module) against the
/// 50-digit truth, with the f64 bound, and against the CPU f64 path.
#[test]
fn golden_gpu_f64() {
    let Some(g) = gpu() else { return };
    if !g.gpu_info().is_some_and(|i| i.supports_f64) {
        eprintln!("SKIPPED: the adapter lacks SHADER_F64/SHADER_INT64");
        return;
    }
    let mut fails = Vec::new();
    for param in Param::ALL {
        let rows = load(param);
        let pairs: Vec<GaussianPair64> = rows.iter().map(|r| r.pair.to_f64()).collect();
        let mut out = vec![0f64; pairs.len() * GRADIENTS];
        run(g, &pairs, options(param), &mut out).unwrap();
        check("GPU f64", param, &rows, &out, Precision::F64, &mut fails);
        let mut cpu = vec![0f64; pairs.len() * GRADIENTS];
        run(common::cpu(), &pairs, options(param), &mut cpu).unwrap();
        let mut differ = 0;
        for (i, (a, b)) in out.iter().zip(&cpu).enumerate() {
            if a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan()) {
                continue;
            }
            differ += 1;
            let scale = gradient_scales(&pairs[i / GRADIENTS], param)[i % GRADIENTS];
            let e = gradient_error(*a, *b, scale, Precision::F64);
            assert!(
                e <= 1e-14,
                "{param} value {i}: GPU {a:e} CPU {b:e} ({e:.2e})"
            );
        }
        println!(
            "  GPU f64 vs CPU f64 {param}: {differ} of {} values not bit-identical",
            out.len()
        );
    }
    assert_no_fails(&fails);
}

/// Every metric subset, every parameterisation, on random pairs (subnormal
/// means included: those rows are recomputed on the host): the GPU equals
/// the CPU within 2e-6, and a subset equals the matching columns of both.
#[test]
fn gpu_matches_cpu_and_subsets() {
    let Some(g) = gpu() else { return };
    let mut pairs = common::random_pairs(100_003, 5);
    pairs[7].mu1 = 1e-40;
    pairs[7].mu2 = -1e-41;
    for param in Param::ALL {
        let both = Request::gradients(Metrics::CE_KL).with_param(param);
        let mut cpu = vec![0f32; pairs.len() * GRADIENTS];
        run(common::cpu(), &pairs, both, &mut cpu).unwrap();
        let mut dev = vec![0f32; pairs.len() * GRADIENTS];
        run(g, &pairs, both, &mut dev).unwrap();
        let mut worst = 0f64;
        for (a, b) in dev.iter().zip(&cpu) {
            let e = gradient_error(f64::from(*a), f64::from(*b), 0.0, Precision::F32);
            worst = worst.max(e);
        }
        // The rows with subnormal means come from the CPU exactly.
        assert_eq!(&dev[7 * 8..8 * 8], &cpu[7 * 8..8 * 8]);
        println!("GPU vs CPU {param}: max relative difference {worst:.2e}");
        assert!(worst <= 2e-6, "{param}: {worst:e}");
        for (m, cols) in [(Metric::CrossEntropy, 0..4), (Metric::Kl, 4..8)] {
            let one = Request::gradients(Metrics::new(&[m]).unwrap()).with_param(param);
            let mut sub = vec![0f32; pairs.len() * 4];
            run(g, &pairs, one, &mut sub).unwrap();
            let mut sub_cpu = vec![0f32; pairs.len() * 4];
            run(common::cpu(), &pairs, one, &mut sub_cpu).unwrap();
            for i in 0..pairs.len() {
                assert_eq!(
                    sub[i * 4..i * 4 + 4],
                    dev[i * 8 + cols.start..i * 8 + cols.end]
                );
                assert_eq!(
                    sub_cpu[i * 4..i * 4 + 4],
                    cpu[i * 8 + cols.start..i * 8 + cols.end]
                );
            }
        }
    }
}

/// The Evaluator routes, validates and reports like the measures' path.
#[test]
fn evaluator_gradients_and_errors() {
    let pairs = vec![
        GaussianPair::new(0.0, 1.0, 1.0, 2.0),
        GaussianPair::new(0.5, 0.0, 1.0, 2.0), // σ1 = 0: invalid
    ];
    let mut backends = vec![Backend::Cpu];
    if gpu().is_some() {
        backends.push(Backend::Gpu);
    }
    for backend in backends {
        let ev = Evaluator::new(backend).unwrap();
        let both = Request::gradients(Metrics::CE_KL);
        let g: Vec<Gradients> = gradients(&ev, &pairs[..1], both).unwrap();
        assert_eq!(g[0].kl[0], -0.25);
        assert_eq!(g[0].kl[2], 0.25);
        assert!((g[0].kl[1] + 0.75).abs() < 1e-6); // σ1/σ2² − 1/σ1
        assert!((g[0].cross_entropy[1] - 0.25).abs() < 1e-7); // σ1/σ2²
                                                              // ∂/∂σ2 = (σ2² − σ1² − Δμ²)/σ2³ = 2/8.
        assert!((g[0].kl[3] - 0.25).abs() < 1e-7);
        assert_eq!(g[0].kl[3], g[0].cross_entropy[3]);

        let err = gradients(&ev, &pairs, both).unwrap_err().to_string();
        assert!(
            err.contains("index 1") || err.contains("row 1"),
            "{backend:?}: {err}"
        );
        assert!(err.contains("sigma1"), "{err}");

        let mut out = vec![0f32; 3];
        let e = run(&ev, &pairs[..1], both, &mut out).unwrap_err();
        assert!(matches!(e, gaussdiv::Error::LengthMismatch { .. }), "{e}");
        let e = run(
            &ev,
            &pairs[..1],
            Request::gradients(Metrics::ALL),
            &mut [0f32; 40],
        )
        .unwrap_err();
        assert!(matches!(e, gaussdiv::Error::Unsupported(_)), "{e}");
        assert!(e.to_string().contains("hellinger"), "{e}");
    }
    // With the NaN policy, the invalid row is NaN and the valid one is not.
    let ev = Evaluator::new(Backend::Cpu).unwrap();
    let nan = Request::gradients(Metrics::CE_KL).with_on_invalid(OnInvalid::Nan);
    let g = gradients(&ev, &pairs, nan).unwrap();
    assert!(g[1].kl.iter().all(|v| v.is_nan()));
    assert!(g[0].kl.iter().all(|v| v.is_finite()));
}

/// Fuzzing findings, CPU and GPU against the f64 gradients: with
/// log-parameters A = expm1(2 ln ρ) is tiny and was aligned unnormalised,
/// so a (subnormal) q² was flushed from ∂/∂a2 (error 2e-3).
#[test]
fn fuzz_regressions() {
    let cases = [
        (
            GaussianPair::new(6.456e-42, 1.1660601e-38, 6.776212e-21, -0.0),
            Param::LogStd,
        ),
        // Review finding: tiny log-parameters (the gradients are linear in
        // ½a1 − ½a2, subnormal here) are recomputed on the host, so a device
        // that flushes subnormals cannot lose them.
        (GaussianPair::new(0.0, 2e-38, 0.0, 0.0), Param::LogStd),
        (GaussianPair::new(1.0, 3e-39, 0.5, -1e-39), Param::LogVar),
    ];
    for (p, param) in cases {
        let mut got = vec![0f32; GRADIENTS];
        run(common::cpu(), &[p], options(param), &mut got).unwrap();
        let mut dev = got.clone();
        if let Some(g) = gpu() {
            run(g, &[p], options(param), &mut dev).unwrap();
        }
        let mut want = vec![0f64; GRADIENTS];
        run(common::cpu(), &[p.to_f64()], options(param), &mut want).unwrap();
        let scales = gradient_scales(&p.to_f64(), param);
        for j in 0..GRADIENTS {
            for (path, v) in [("cpu", got[j]), ("gpu", dev[j])] {
                let e = gradient_error(f64::from(v), want[j], scales[j], Precision::F32);
                assert!(
                    e <= 1e-6,
                    "{path} {p:?} {param} {}: {v:e} vs {:e} ({e:e})",
                    NAMES[j],
                    want[j]
                );
            }
        }
    }
}
