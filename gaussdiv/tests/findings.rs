//! Regression tests for the accuracy-defect classes of an independent check
//! (subnormal Bhattacharyya coefficients, results at the overflow threshold,
//! the diagonal layout's transformed measures, pairwise = per-pair bits).
//!
//! The rows come from a seeded generator, `scripts/findings_truth.py`, with
//! truth from mpmath (`tests/data/findings.csv`): a class, the precision,
//! the parameterisation, the row (a `;`-list of `dims` pairs), the measure,
//! and a verdict — `inf` (truth ≥ MAX + ½ ulp: +inf required), `window`
//! (MAX ≤ truth < MAX + ½ ulp: MAX or +inf) or `value` (judged against the
//! truth by the tolerance model, with the smallest normal m as the floor and
//! no flush accepted: a subnormal truth must come out as a subnormal).
//!
//! Every row runs on the CPU in its precision and, where an adapter exists,
//! on the GPU (f32; f64 where the adapter supports it, per pair only).
//! Run with `--nocapture` for the measured worst errors per class and path.
mod common;
use gaussdiv::{
    Batch, Evaluator, Gaussian, GaussianPair, GaussianPair64, Metric, Metrics, OnInvalid, Param,
    Request,
};
use std::collections::BTreeMap;

/// Every measure (canonical order) of `pairs` on `ev`, invalid input NaN.
fn eval_all<T: gaussdiv::Float>(
    ev: &Evaluator,
    batch: Batch<'_, T>,
    rows: usize,
    param: Param,
) -> Vec<T> {
    let request = Request::measures(Metrics::ALL)
        .with_param(param)
        .with_on_invalid(OnInvalid::Nan);
    let mut out = vec![T::default(); rows * Metric::COUNT];
    ev.evaluate(batch, &request, &mut out).expect("evaluate");
    out
}

/// The GPU evaluator when it runs `precision` (f64 needs SHADER_F64).
fn gpu_for(f64: bool) -> Option<&'static Evaluator> {
    let g = common::gpu()?;
    let info = g.gpu_info()?;
    (!f64 || info.supports_f64).then_some(g)
}

// ---- the data ----

/// The `measure` of a `grad_a2` row: ∂/∂a2 of KL (and of the cross-entropy).
const D_A2: usize = usize::MAX;

struct Row {
    class: String,
    prec: u32,
    param: Param,
    dims: usize,
    inputs: Vec<[f64; 4]>,
    measure: usize,
    verdict: String,
    truth: f64,
}

fn rows() -> Vec<Row> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/findings.csv");
    let text = std::fs::read_to_string(path).expect("tests/data/findings.csv");
    let mut out = Vec::new();
    for line in text.lines().skip(1) {
        let f: Vec<&str> = line.split(',').collect();
        assert_eq!(f.len(), 11, "{line}");
        let dims: usize = f[3].parse().unwrap();
        let cols: Vec<Vec<f64>> = (4..8)
            .map(|i| f[i].split(';').map(|v| v.parse().unwrap()).collect())
            .collect();
        let inputs = (0..dims)
            .map(|d| [cols[0][d], cols[1][d], cols[2][d], cols[3][d]])
            .collect();
        out.push(Row {
            class: f[0].to_string(),
            prec: f[1].parse().unwrap(),
            param: f[2].parse().unwrap(),
            dims,
            inputs,
            measure: if f[8] == "d_a2" {
                D_A2
            } else {
                common::metric_index(f[8].parse().unwrap())
            },
            verdict: f[9].to_string(),
            truth: if f[10].is_empty() {
                f64::NAN
            } else {
                f[10].parse().unwrap()
            },
        });
    }
    out
}

/// The bound of the tolerance model (ARCHITECTURE §3) for a measure and path.
fn bound(prec: u32, gpu: bool, measure: usize) -> f64 {
    let kl_like = measure <= common::metric_index(Metric::Kl);
    match (prec, gpu, kl_like) {
        (64, _, _) => 1e-14,
        (_, false, true) => 1e-6,
        (_, true, true) => 2e-6,
        _ => 1e-5,
    }
}

/// The error of `y` against the row (0 = pass exactly), in units of the bound:
/// > 1 fails. The overflow rule is exact; values are relative to max(t, m).
fn judged(y: f64, r: &Row, max: f64, min_normal: f64, b: f64) -> f64 {
    match r.verdict.as_str() {
        "inf" => {
            if y == f64::INFINITY {
                0.0
            } else {
                f64::INFINITY
            }
        }
        "window" => {
            if y == f64::INFINITY || y == max {
                0.0
            } else {
                f64::INFINITY
            }
        }
        _ => {
            if !y.is_finite() {
                return f64::INFINITY;
            }
            (y - r.truth).abs() / r.truth.abs().max(min_normal) / b
        }
    }
}

#[derive(Default)]
struct Tally {
    /// (class, path) → (rows, failures, worst error relative to the bound, worst row)
    worst: BTreeMap<(String, String), (usize, usize, f64, String)>,
}

impl Tally {
    fn add(&mut self, r: &Row, path: &str, y: f64, e: f64) {
        let key = (r.class.clone(), path.to_string());
        let w = self.worst.entry(key).or_insert((0, 0, 0.0, String::new()));
        w.0 += 1;
        if e > 1.0 {
            w.1 += 1;
        }
        if e > w.2 || (w.3.is_empty() && e == w.2) {
            w.2 = e;
            w.3 = format!(
                "{:?} {:?} m{} -> {y:e} (truth {:e}, {})",
                r.param, r.inputs, r.measure, r.truth, r.verdict
            );
        }
    }
    fn finish(self) {
        let mut failed = Vec::new();
        for ((class, path), (n, bad, worst, row)) in &self.worst {
            println!(
                "{class:16} {path:10} rows {n:4} failures {bad:4} worst/bound {worst:.3e}  {row}"
            );
            if *bad > 0 {
                failed.push(format!("{class} {path}: {bad} of {n} (worst {row})"));
            }
        }
        assert!(failed.is_empty(), "failures:\n{}", failed.join("\n"));
    }
}

fn p32(i: &[f64; 4]) -> GaussianPair {
    GaussianPair::new(i[0] as f32, i[1] as f32, i[2] as f32, i[3] as f32)
}
fn p64(i: &[f64; 4]) -> GaussianPair64 {
    GaussianPair64::new(i[0], i[1], i[2], i[3])
}

/// Class 1: Bhattacharyya coefficients below the smallest normal, every
/// parameterisation — a subnormal truth must come out as that subnormal.
#[test]
fn bc_subnormal() {
    per_pair_class("bc_subnormal");
}

/// Class 2: KL, reverse KL, Jeffreys, D_B and cross-entropy within a few
/// ulps of MAX + ½ ulp: +∞ at and beyond it, MAX or +∞ in the window below
/// it, the truth within its bound below MAX.
#[test]
fn overflow_threshold() {
    per_pair_class("overflow");
}

fn per_pair_class(class: &str) {
    let mut t = Tally::default();
    let cpu = common::cpu();
    for r in rows().iter().filter(|r| r.dims == 1 && r.class == class) {
        if r.prec == 32 {
            let pairs = [p32(&r.inputs[0])];
            let (mx, mn) = (f32::MAX as f64, f32::MIN_POSITIVE as f64);
            let out = eval_all(cpu, Batch::Pairs(&pairs), 1, r.param);
            let y = out[r.measure] as f64;
            t.add(
                r,
                "cpu f32",
                y,
                judged(y, r, mx, mn, bound(32, false, r.measure)),
            );
            if let Some(g) = gpu_for(false) {
                let out = eval_all(g, Batch::Pairs(&pairs), 1, r.param);
                let y = out[r.measure] as f64;
                t.add(
                    r,
                    "gpu f32",
                    y,
                    judged(y, r, mx, mn, bound(32, true, r.measure)),
                );
            }
        } else {
            let pairs = [p64(&r.inputs[0])];
            let (mx, mn) = (f64::MAX, f64::MIN_POSITIVE);
            let out = eval_all(cpu, Batch::Pairs(&pairs), 1, r.param);
            let y = out[r.measure];
            t.add(r, "cpu f64", y, judged(y, r, mx, mn, 1e-14));
            if let Some(g) = gpu_for(true) {
                let out = eval_all(g, Batch::Pairs(&pairs), 1, r.param);
                let y = out[r.measure];
                t.add(r, "gpu f64", y, judged(y, r, mx, mn, 1e-14));
            }
        }
    }
    t.finish();
}

/// Class 3: diagonal rows — tiny Hellinger distances, coefficients of
/// large sums, Bhattacharyya sums at the overflow threshold.
#[test]
fn diagonal_classes() {
    let mut t = Tally::default();
    let cpu = common::cpu();
    for r in rows().iter().filter(|r| r.class.starts_with("diag")) {
        let dims = r.dims;
        if r.prec == 32 {
            let pairs: Vec<_> = r.inputs.iter().map(p32).collect();
            let (mx, mn) = (f32::MAX as f64, f32::MIN_POSITIVE as f64);
            let batch = || Batch::Diagonal {
                pairs: &pairs,
                dims,
            };
            let y = eval_all(cpu, batch(), 1, r.param)[r.measure] as f64;
            t.add(r, "cpu f32", y, judged(y, r, mx, mn, 1e-5));
            if let Some(g) = gpu_for(false) {
                let y = eval_all(g, batch(), 1, r.param)[r.measure] as f64;
                t.add(r, "gpu f32", y, judged(y, r, mx, mn, 1e-5));
            }
        } else {
            let pairs: Vec<_> = r.inputs.iter().map(p64).collect();
            let (mx, mn) = (f64::MAX, f64::MIN_POSITIVE);
            let batch = || Batch::Diagonal {
                pairs: &pairs,
                dims,
            };
            let y = eval_all(cpu, batch(), 1, r.param)[r.measure];
            t.add(r, "cpu f64", y, judged(y, r, mx, mn, 1e-14));
            if let Some(g) = gpu_for(true) {
                let y = eval_all(g, batch(), 1, r.param)[r.measure];
                t.add(r, "gpu f64", y, judged(y, r, mx, mn, 1e-14));
            }
        }
    }
    t.finish();
}

/// Pairwise on the GPU gives the per-pair path's bits, cell for cell, for
/// the same measure set: every measure alone and all together, in every
/// parameterisation. (Between different measure sets the GPU's last bits
/// may differ: each set compiles its own specialised pipeline, see the
/// README's table of layouts.)
#[test]
fn pairwise_is_bit_identical_to_per_pair() {
    let Some(g) = gpu_for(false) else { return };
    let mut rng = common::Rng(0x5eed_f1d5);
    let mut differ = Vec::new();
    for param in [
        Param::Std,
        Param::Var,
        Param::LogStd,
        Param::LogVar,
        Param::Precision,
    ] {
        let gauss = |rng: &mut common::Rng| {
            let mu = ((rng.unit() - 0.5) * 10f64.powf(rng.unit() * 6.0 - 3.0)) as f32;
            let ls = (rng.unit() - 0.5) * 6.0;
            let a = match param {
                Param::Std => ls.exp(),
                Param::Var => (2.0 * ls).exp(),
                Param::LogStd => ls,
                Param::LogVar => 2.0 * ls,
                _ => (-2.0 * ls).exp(),
            } as f32;
            Gaussian::new(mu, a)
        };
        let p: Vec<_> = (0..30).map(|_| gauss(&mut rng)).collect();
        let q: Vec<_> = (0..35).map(|_| gauss(&mut rng)).collect();
        let pairs: Vec<_> = p
            .iter()
            .flat_map(|a| {
                q.iter()
                    .map(move |b| GaussianPair::new(a.mu, a.sigma, b.mu, b.sigma))
            })
            .collect();
        let sets: Vec<Metrics> = Metric::ALL
            .iter()
            .filter_map(|m| Metrics::new(&[*m]))
            .chain([Metrics::ALL, Metrics::CE_KL])
            .collect();
        for metrics in sets {
            let request = Request::measures(metrics).with_param(param);
            let k = request.values_per_pair();
            let mut pw = vec![0f32; pairs.len() * k];
            let mut pp = vec![0f32; pairs.len() * k];
            g.evaluate(Batch::Pairwise { p: &p, q: &q }, &request, &mut pw)
                .expect("gpu pairwise");
            g.evaluate(Batch::Pairs(&pairs), &request, &mut pp)
                .expect("gpu pairs");
            let n = pw
                .iter()
                .zip(&pp)
                .filter(|(a, b)| a.to_bits() != b.to_bits())
                .count();
            if n > 0 {
                differ.push(format!(
                    "{param:?} {metrics:?}: {n} of {} values differ",
                    pw.len()
                ));
            }
        }
    }
    assert!(differ.is_empty(), "{}", differ.join("\n"));
}

/// ρ² and |f2| of a row (f64, for the error scale of ∂/∂a2).
fn rho2_f2(i: &[f64; 4], param: Param) -> (f64, f64) {
    let (a1, a2) = (i[1], i[3]);
    match param {
        Param::Std => ((a1 / a2).powi(2), 1.0 / a2),
        Param::Var => (a1 / a2, 0.5 / a2),
        Param::LogStd => ((2.0 * (a1 - a2)).exp(), 1.0),
        Param::LogVar => ((a1 - a2).exp(), 0.5),
        _ => (a2 / a1, 0.5 / a2),
    }
}

/// Class 5: ∂/∂a2 = (1 − ρ² − q²)·f2 of KL and of the cross-entropy where
/// it cancels (ρ < 1, q² near 1). With σ, σ² or 1/σ² given the kernels form
/// B = 1 − q² exactly, so the error is relative to max(|truth|, ρ²·|f2|)
/// (the scale of `verify::gradient_scales`); with log-parameters B carries
/// the accuracy δ of the two-float e^(−2 ln σ2) (about 2⁻³⁰ in f32, 2⁻⁵⁹
/// in f64, see `math::exp_tri`), so the error is at most q²·δ·|f2| ≤
/// 2δ·|f2| — against about 2⁻²⁴ (2⁻⁵³) of the terms before.
#[test]
fn grad_a2_cancellation() {
    let mut t = Tally::default();
    let cpu = common::cpu();
    for r in rows().iter().filter(|r| r.class == "grad_a2") {
        let (rho2, f2) = rho2_f2(&r.inputs[0], r.param);
        let logp = matches!(r.param, Param::LogStd | Param::LogVar);
        // B = 1 − q² with q² ≤ 2 carrying e^(−2 ln σ2)'s relative error δ:
        // at most 2δ.
        let b_abs = match (logp, r.prec) {
            (false, _) => 0.0,
            (true, 32) => 2.0 * f64::powi(2.0, -30),
            (true, _) => 2.0 * f64::powi(2.0, -59),
        };
        let request = Request::gradients(Metrics::CE_KL).with_param(r.param);
        let mut judge = |path: &str, ce: f64, kl: f64, bound: f64| {
            let path = format!("{path} {:?}", r.param);
            let scale = r.truth.abs().max(rho2 * f2).max(b_abs * f2 / bound);
            for y in [ce, kl] {
                let e = (y - r.truth).abs() / scale / bound;
                t.add(r, &path, y, if y.is_finite() { e } else { f64::INFINITY });
            }
        };
        if r.prec == 32 {
            let pairs = [p32(&r.inputs[0])];
            let mut out = [0f32; 8];
            cpu.evaluate(Batch::Pairs(&pairs), &request, &mut out)
                .unwrap();
            judge("cpu f32", out[3] as f64, out[7] as f64, 1e-6);
            if let Some(g) = gpu_for(false) {
                g.evaluate(Batch::Pairs(&pairs), &request, &mut out)
                    .unwrap();
                judge("gpu f32", out[3] as f64, out[7] as f64, 2e-6);
            }
        } else {
            let pairs = [p64(&r.inputs[0])];
            let mut out = [0f64; 8];
            cpu.evaluate(Batch::Pairs(&pairs), &request, &mut out)
                .unwrap();
            judge("cpu f64", out[3], out[7], 1e-14);
            if let Some(g) = gpu_for(true) {
                g.evaluate(Batch::Pairs(&pairs), &request, &mut out)
                    .unwrap();
                judge("gpu f64", out[3], out[7], 1e-14);
            }
        }
    }
    t.finish();
}
