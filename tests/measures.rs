//! Every measure in every parameterisation against 50-digit truth
//! (`tests/data/golden_measures_*.csv`), on the CPU (f32, f64) and the GPU
//! (f32), asserted row by row under the tolerance model of DESIGN §3:
//!
//! every measure within DESIGN §3's targets, 1e-6 (CPU f32), 2e-6 (GPU f32),
//! 1e-14 (f64) — tighter than the 1e-5 (f32) and 1e-13 (f64) for
//! the measures beyond KL and cross-entropy. Exact zeros must be exact,
//! truths beyond the format's range +inf (see `gaussdiv::verify`).
//!
//! The per-measure, per-parameterisation maxima are printed
//! (`cargo test --release --test measures -- --nocapture`).
mod common;
use common::gpu;
use gaussdiv::verify::measure_error;
use gaussdiv::{cpu, EvalOptions, GaussianPair, Metric, Metrics, Param, Precision};
use std::collections::BTreeMap;

const N: usize = Metric::COUNT;

/// One golden row: float32 inputs (from the bit patterns) and the truth of every measure.
struct Row {
    pair: GaussianPair,
    truth: [f64; N],
    family: String,
}

fn load(param: Param) -> Vec<Row> {
    let path = format!(
        "{}/tests/data/golden_measures_{}.csv",
        env!("CARGO_MANIFEST_DIR"),
        param.name()
    );
    let text = std::fs::read_to_string(&path).expect("golden file");
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().expect("header").split(',').collect();
    let col = |n: &str| {
        header
            .iter()
            .position(|h| *h == n)
            .unwrap_or_else(|| panic!("{path}: no column {n}"))
    };
    let cols: Vec<usize> = Metric::ALL.iter().map(|m| col(m.name())).collect();
    let (fam, bits) = (col("family"), col("bits"));
    lines
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            let b: Vec<f32> = f[bits]
                .split(':')
                .map(|x| f32::from_bits(u32::from_str_radix(x, 16).unwrap()))
                .collect();
            // The decimal columns agree with the bit patterns.
            for (i, v) in b.iter().enumerate() {
                let dec: f32 = f[i].parse().unwrap();
                assert!(dec.to_bits() == v.to_bits() || (dec == 0.0 && *v == 0.0));
            }
            let mut truth = [0.0; N];
            for (t, &c) in truth.iter_mut().zip(&cols) {
                *t = f[c].parse().unwrap();
            }
            Row {
                pair: GaussianPair::new(b[0], b[1], b[2], b[3]),
                truth,
                family: f[fam].to_string(),
            }
        })
        .collect()
}

/// The bound of one measure on one path: DESIGN §3's targets for every
/// measure (the issue asks for 1e-5 on the f32 paths and 1e-13 in f64 for the
/// new measures; these are the tighter bounds the `Tolerance` constants of
/// `verify` promise, so they are what is asserted).
fn bound(path: &str, _m: Metric) -> f64 {
    match path {
        "CPU f32" => 1e-6,
        "CPU f64" => 1e-14,
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
            if !(e <= max[j]) {
                max[j] = e;
            }
            fam[j] = fam[j].max(e);
            if !(e <= bound(path, m)) {
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

fn every(param: Param) -> EvalOptions {
    EvalOptions::new(Metrics::EVERY, param)
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
        cpu::evaluate_with(&pairs, every(param), &mut out).unwrap();
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
        cpu::evaluate_f64_with(&pairs, every(param), &mut out).unwrap();
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
        gpu.evaluate_with(&pairs, every(param), &mut out).unwrap();
        let got: Vec<f64> = out.iter().map(|&v| v.into()).collect();
        let (max, f) = check("GPU f32", param, &rows, &got, Precision::F32);
        table.push((param, max));
        fails.extend(f);

        // GPU ≡ CPU f32 within tolerance (each against the other, same model).
        let mut cpu_out = vec![0f32; pairs.len() * N];
        cpu::evaluate_with(&pairs, every(param), &mut cpu_out).unwrap();
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
                if !(e <= 4e-6) {
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
    let name = gpu.adapter().map(|a| a.to_string()).unwrap_or_default();
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
        gpu.evaluate_with(&pairs, every(param), &mut out).unwrap();
        let got: Vec<f64> = out.iter().map(|&v| v.into()).collect();
        let (max, f) = check("GPU f32 kernel only", param, &rows, &got, Precision::F32);
        table.push((param, max));
        fails.extend(f);
    }
    report("GPU f32, kernel alone", &table);
    finish(fails);
}
