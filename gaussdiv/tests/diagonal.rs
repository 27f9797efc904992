//! The diagonal multivariate layout: every row equals the exact sum of its
//! per-dim values from the per-pair path (within 1e-5 relative), on the GPU
//! and the CPU, for every parameterisation and measure; the transformed
//! measures match their definitions; errors name the row and dim.
//!
//! Run with `--nocapture` to see the measured worst errors.
mod common;
use common::*;
use gaussdiv::{
    Backend, Batch, DeviceBatch, DeviceInput, Evaluator, Float, GaussianPair, GaussianPair64,
    Metric, Metrics, OnInvalid, Options, Param, Request,
};

/// `request` on an array of pairs into `out` (the per-pair path).
fn per_pair<T: Float>(
    ev: &Evaluator,
    pairs: &[GaussianPair<T>],
    request: Request,
    out: &mut [T],
) -> gaussdiv::Result<()> {
    ev.evaluate(Batch::Pairs(pairs), &request, out)
}

/// `request` on rows of `dims` pairs into `out` (the diagonal layout).
fn diagonal_with<T: Float>(
    ev: &Evaluator,
    pairs: &[GaussianPair<T>],
    dims: usize,
    request: Request,
    out: &mut [T],
) -> gaussdiv::Result<()> {
    ev.evaluate(Batch::Diagonal { pairs, dims }, &request, out)
}

/// Every measure of pairs in `param`.
fn every_in(param: Param) -> Request {
    Request::measures(Metrics::ALL).with_param(param)
}
use std::collections::BTreeMap;

/// Around both seams: the lanes (64) and the kernel switch (256 dims).
const DIMS: [usize; 11] = [1, 2, 3, 63, 64, 65, 255, 256, 257, 1000, 4096];
/// The required bound: relative to the sum (see `Worst::check` for sums that cancel).
const TOL: f64 = 1e-5;
/// Where |S| < CANCEL · Σ|terms| the relative error is ill-defined; such rows
/// are checked relative to Σ|terms| with this bound instead (and reported).
const CANCEL: f64 = 1e-3;
const TOL_ABS_TERMS: f64 = 1e-7;
/// A tighter guard for the sums (and Wasserstein-2): compensated summation
/// leaves about the final f32 rounding (measured ≤ 9.1e-8); a plain f32 sum
/// measured up to 8.3e-6 on the same rows, inside TOL, so without this guard
/// a lost error term (e.g. a compiler simplifying the two-sum) would go unseen.
const GUARD: f64 = 2.5e-7;

fn rows_for(d: usize) -> &'static [usize] {
    match d {
        1..=65 => &[1, 5, 300],
        255..=257 => &[1, 5, 40],
        1000 => &[1, 37],
        _ => &[1, 13],
    }
}

/// Exact-enough sum of f32 values (f64 Neumaier: every f32 is exact in f64,
/// and the compensated f64 sum of 4096 of them is within ~1e-16 of Σ|t|).
fn hp_sum(terms: impl Iterator<Item = f64>) -> (f64, f64) {
    let (mut s, mut c, mut abs) = (0f64, 0f64, 0f64);
    for t in terms {
        if t.is_infinite() {
            return (f64::INFINITY, f64::INFINITY);
        }
        abs += t.abs();
        let u = s + t;
        c += if s.abs() >= t.abs() {
            (s - u) + t
        } else {
            (t - u) + s
        };
        s = u;
    }
    (s + c, abs)
}

/// The definition of every measure of one row from its per-dim values (the
/// per-pair path's, `per[d·10 + m]`): high-precision sums, then the transforms.
/// The coefficient and the Hellinger distance are exp(−S) and √(1 − exp(−S))
/// of S = Σ D_B,d; S is summed from `db64`, the per-dim distances of the f64
/// reference path on the same (exactly widened) inputs, because a sum of the
/// f32 per-dim values carries up to ½ ulp of each term, a relative error of
/// about 6e-8·S in exp(−S): 4e-6 at S = 76, beyond the library's own error
/// there (it multiplies the per-dim coefficients where S exceeds their count).
fn expected(per: &[f32], db64: &[f64]) -> [(f64, f64); 10] {
    let col = |m: usize| per.iter().skip(m).step_by(10).map(|v| f64::from(*v));
    let mut e = [(0.0, 0.0); 10];
    for (m, slot) in e.iter_mut().enumerate().take(7) {
        *slot = hp_sum(col(m));
    }
    let db = hp_sum(db64.iter().copied()).0;
    e[7] = ((-db).exp(), (-db).exp());
    let h = (-(-db).exp_m1()).sqrt();
    e[8] = (h, h);
    let (w2, _) = hp_sum(col(9).map(|w| w * w));
    e[9] = (w2.sqrt(), w2.sqrt());
    e
}

/// Worst errors per (label, measure).
#[derive(Default)]
struct Worst {
    rel: BTreeMap<(String, usize), f64>,
    cancel: BTreeMap<(String, usize), f64>,
    cancel_rows: usize,
    failures: Vec<String>,
}

impl Worst {
    /// Compare `got` (every measure of one row) with the definitions.
    fn check(&mut self, label: &str, row: usize, got: &[f32], want: &[(f64, f64); 10]) {
        for (m, (g, (s, abs))) in got.iter().zip(want).enumerate() {
            let g = f64::from(*g);
            let key = (label.to_string(), m);
            if s.is_infinite() || g.is_infinite() {
                if g != *s {
                    self.failures.push(format!(
                        "{label} row {row} {}: got {g:e} want {s:e}",
                        name(m)
                    ));
                }
                continue;
            }
            let err = (g - s).abs();
            let denom = s.abs().max(f64::from(f32::MIN_POSITIVE));
            if m < 7 && s.abs() < CANCEL * abs {
                // Cancellation: relative to the sum of magnitudes.
                let e = err / abs.max(f64::from(f32::MIN_POSITIVE));
                self.cancel_rows += 1;
                let w = self.cancel.entry(key).or_default();
                *w = w.max(e);
                if e.is_nan() || e > TOL_ABS_TERMS {
                    self.failures.push(format!(
                        "{label} row {row} {} (cancelling): got {g:e} want {s:e}, error {e:e} of Σ|t| = {abs:e}",
                        name(m)
                    ));
                }
                continue;
            }
            let e = err / denom;
            let w = self.rel.entry(key).or_default();
            *w = w.max(e);
            if e.is_nan() || e > TOL {
                self.failures.push(format!(
                    "{label} row {row} {}: got {g:e} want {s:e}, relative error {e:e}",
                    name(m)
                ));
            } else if (m < 7 || m == 9) && e > GUARD {
                self.failures.push(format!(
                    "{label} row {row} {}: got {g:e} want {s:e}, relative error {e:e} \
                     (above the compensated-summation guard {GUARD:e})",
                    name(m)
                ));
            }
        }
    }

    fn report(&self, title: &str) {
        println!("{title}: worst relative error per measure (vs high-precision sums)");
        let mut labels: Vec<&String> = self.rel.keys().map(|(l, _)| l).collect();
        labels.dedup();
        for l in labels {
            let row: Vec<String> = (0..10)
                .map(|m| {
                    let v = self.rel.get(&(l.clone(), m)).copied().unwrap_or(0.0);
                    format!("{} {v:.1e}", short(m))
                })
                .collect();
            println!("  {l:<14} {}", row.join("  "));
        }
        if !self.cancel.is_empty() {
            println!(
                "  rows with |S| < {CANCEL:e}·Σ|t| ({}), error relative to Σ|t|:",
                self.cancel_rows
            );
            for ((l, m), v) in &self.cancel {
                println!("    {l:<14} {} {v:.1e}", name(*m));
            }
        }
    }

    fn assert_ok(&self) {
        if !self.failures.is_empty() {
            let shown: Vec<_> = self.failures.iter().take(30).cloned().collect();
            panic!("{} failures:\n{}", self.failures.len(), shown.join("\n"));
        }
    }
}

fn name(m: usize) -> &'static str {
    Metric::ALL[m].name()
}

fn short(m: usize) -> &'static str {
    ["ce", "kl", "H", "Hq", "rkl", "jef", "bh", "bc", "hel", "w2"][m]
}

/// (μ, σ) rows: random, plus adversarial dims mixed in.
fn data(rows: usize, dims: usize, seed: u64) -> Vec<GaussianPair> {
    let mut rng = Rng(seed);
    let mut v = Vec::with_capacity(rows * dims);
    for r in 0..rows {
        for d in 0..dims {
            let p = rng.pair();
            let kind = (r * 31 + d * 7 + seed as usize) % 11;
            v.push(match (r % 5, kind) {
                // Row kind 1: near-equal pairs only (tiny KL everywhere).
                (1, _) => {
                    let s = p.sigma1;
                    GaussianPair::new(p.mu1, s, p.mu1 + 1e-6 * s, s * (1.0 + 1e-6))
                }
                // Row kind 2: huge and tiny σ mixed with ordinary dims.
                (2, 0) => GaussianPair::new(p.mu1, 1e30, p.mu2, 1e28),
                (2, 1) => GaussianPair::new(p.mu1, 1e-30, p.mu2, 3e-30),
                (2, 2) => GaussianPair::new(p.mu1, 1e-40, p.mu2, 1.0), // subnormal σ1
                (2, 3) => GaussianPair::new(p.mu1, p.sigma1, p.mu1, p.sigma1), // identical
                // Row kind 3 (with 3 or more dims): one dim whose measures overflow (+inf).
                (3, _) if d == dims / 2 && dims >= 3 => GaussianPair::new(0.0, 1e-30, 0.0, 1e30),
                // Row kind 4: entropies (and cross-entropies) of opposite signs that cancel:
                // ln σ = ±46 − ½ ln(2πe) alternately, so H(p) ≈ ±46 and the sum ≈ 0.
                (4, _) => {
                    let wobble = 1.0 + 1e-3 * (p.mu2 / 10.0); // relative ±1e-3, so that the sums are inexact
                    let s = if d % 2 == 0 {
                        1e-20f32
                    } else {
                        (-2.837_877_f32).exp() * 1e20 * wobble
                    };
                    GaussianPair::new(p.mu1, s, p.mu1, s)
                }
                _ => p,
            });
        }
    }
    v
}

/// The pairs in parameterisation `param` (f32 parameters; the reference
/// uses the same values).
fn to_param(pairs: &[GaussianPair], param: Param) -> Vec<GaussianPair> {
    let a = |s: f32| -> f32 {
        let s = f64::from(s);
        (match param {
            Param::Std => s,
            Param::Var => s * s,
            Param::LogStd => s.ln(),
            Param::LogVar => 2.0 * s.ln(),
            Param::Precision => 1.0 / (s * s),
            _ => s,
        }) as f32
    };
    pairs
        .iter()
        .map(|p| {
            let (a1, a2) = (a(p.sigma1), a(p.sigma2));
            // Keep valid inputs valid (σ² of a huge σ overflows f32).
            let ok = |x: f32| {
                x.is_finite() && (x > 0.0 || matches!(param, Param::LogStd | Param::LogVar))
            };
            if ok(a1) && ok(a2) {
                GaussianPair::new(p.mu1, a1, p.mu2, a2)
            } else {
                GaussianPair::new(p.mu1, a(1.0), p.mu2, a(2.0))
            }
        })
        .collect()
}

/// The per-pair Bhattacharyya distances of `pairs` on the f64 CPU path (the
/// inputs widened exactly), to sum the reference coefficient from.
fn distances_f64(pairs: &[GaussianPair], param: Param) -> Vec<f64> {
    let wide: Vec<GaussianPair64> = pairs
        .iter()
        .map(|p| {
            let w = |x: f32| f64::from(x);
            GaussianPair::new(w(p.mu1), w(p.sigma1), w(p.mu2), w(p.sigma2))
        })
        .collect();
    let request =
        Request::measures(Metrics::new(&[Metric::Bhattacharyya]).unwrap()).with_param(param);
    let mut out = vec![0f64; wide.len()];
    cpu()
        .evaluate(Batch::Pairs(&wide), &request, &mut out)
        .unwrap();
    out
}

type PerPair<'a> = &'a dyn Fn(&[GaussianPair], Request, &mut [f32]);
type Diag<'a> = &'a dyn Fn(&[GaussianPair], usize, Request, &mut [f32]);

/// Check one backend on every D, N and parameterisation; `per_pair` is the
/// same backend's per-pair path.
fn sums_match(label: &str, per_pair: PerPair, diag: Diag, params: &[Param]) -> Worst {
    let mut w = Worst::default();
    for &param in params {
        for d in DIMS {
            for &n in rows_for(d) {
                let pairs = to_param(&data(n, d, 7 + d as u64 + n as u64), param);
                let every = every_in(param);
                let mut per = vec![0f32; pairs.len() * 10];
                per_pair(&pairs, every, &mut per);
                let mut out = vec![0f32; n * 10];
                diag(&pairs, d, every, &mut out);
                let db64 = distances_f64(&pairs, param);
                let rows = out.chunks(10).zip(per.chunks(d * 10)).zip(db64.chunks(d));
                for (r, ((got, per), db64)) in rows.enumerate() {
                    let tag = if params.len() > 1 {
                        format!("{label} {param} D={d}")
                    } else {
                        format!("{label} D={d}")
                    };
                    w.check(&tag, r, got, &expected(per, db64));
                }
            }
        }
    }
    w
}

#[test]
fn cpu_sums_match_high_precision() {
    let per: PerPair = &|p, o, out| per_pair(cpu(), p, o, out).unwrap();
    let diag: Diag = &|p, d, o, out| diagonal_with(cpu(), p, d, o, out).unwrap();
    let w = sums_match("cpu", per, diag, &[Param::Std]);
    w.report("CPU f32, std");
    w.assert_ok();
}

#[test]
fn gpu_sums_match_high_precision() {
    let Some(gpu) = gpu() else { return };
    let per: PerPair = &|p, o, out| per_pair(gpu, p, o, out).unwrap();
    let diag: Diag = &|p, d, o, out| diagonal_with(gpu, p, d, o, out).unwrap();
    let w = sums_match("gpu", per, diag, &[Param::Std]);
    w.report("GPU f32, std");
    w.assert_ok();
}

#[test]
fn every_param_cpu_and_gpu() {
    let params = [Param::Var, Param::LogStd, Param::LogVar, Param::Precision];
    let per: PerPair = &|p, o, out| per_pair(cpu(), p, o, out).unwrap();
    let diag: Diag = &|p, d, o, out| diagonal_with(cpu(), p, d, o, out).unwrap();
    let w = sums_match("cpu", per, diag, &params);
    w.report("CPU f32, other parameterisations");
    w.assert_ok();
    let Some(gpu) = gpu() else { return };
    let per: PerPair = &|p, o, out| per_pair(gpu, p, o, out).unwrap();
    let diag: Diag = &|p, d, o, out| diagonal_with(gpu, p, d, o, out).unwrap();
    let w = sums_match("gpu", per, diag, &params);
    w.report("GPU f32, other parameterisations");
    w.assert_ok();
}

/// GPU and CPU diagonal results agree (each within its bound of the exact
/// sums of its own per-dim values, which agree within the 1-D bounds).
#[test]
fn gpu_agrees_with_cpu() {
    let Some(gpu) = gpu() else { return };
    let mut worst: BTreeMap<usize, [f64; 10]> = BTreeMap::new();
    let mut bitwise = 0usize;
    let mut total = 0usize;
    for d in DIMS {
        for &n in rows_for(d) {
            let pairs = data(n, d, 99 + d as u64);
            let every = every_in(Param::Std);
            let (mut g, mut c) = (vec![0f32; n * 10], vec![0f32; n * 10]);
            diagonal_with(gpu, &pairs, d, every, &mut g).unwrap();
            diagonal_with(cpu(), &pairs, d, every, &mut c).unwrap();
            let mut per = vec![0f32; pairs.len() * 10];
            per_pair(cpu(), &pairs, every, &mut per).unwrap();
            let db64 = distances_f64(&pairs, Param::Std);
            for (r, (((gr, cr), per), db64)) in g
                .chunks(10)
                .zip(c.chunks(10))
                .zip(per.chunks(d * 10))
                .zip(db64.chunks(d))
                .enumerate()
            {
                let want = expected(per, db64);
                for m in 0..10 {
                    total += 1;
                    let (gv, cv) = (f64::from(gr[m]), f64::from(cr[m]));
                    if gr[m].to_bits() == cr[m].to_bits() {
                        bitwise += 1;
                        continue;
                    }
                    assert!(
                        gv.is_finite() && cv.is_finite(),
                        "D={d} row {r} {}: gpu {gv:e} cpu {cv:e}",
                        name(m)
                    );
                    // The two backends' per-dim (1-D) values differ within the
                    // 1-D bounds (2e-6 scaled; relative to the value that is up to
                    // ~5e-6 for an entropy near 0); the sums add nothing to that.
                    let scale = if m < 7 { want[m].1 } else { want[m].0.abs() };
                    let e = (gv - cv).abs() / scale.max(f64::from(f32::MIN_POSITIVE));
                    let slot = &mut worst.entry(d).or_default()[m];
                    *slot = slot.max(e);
                    assert!(
                        e <= 1e-5,
                        "D={d} row {r} {}: gpu {gv:e} cpu {cv:e} ({e:e})",
                        name(m)
                    );
                }
            }
        }
    }
    println!("GPU vs CPU diagonal: {bitwise} of {total} values bitwise equal; worst difference (relative to Σ|t| for the sums, to the value otherwise):");
    for (d, w) in &worst {
        let row: Vec<String> = (0..10)
            .map(|m| format!("{} {:.1e}", short(m), w[m]))
            .collect();
        println!("  D={d:<5} {}", row.join("  "));
    }
}

/// Every metric subset writes exactly the columns of the full set (CPU: all
/// 1023 subsets; GPU: every single metric, pairs of the transformed ones,
/// and a spread of others, on both kernels).
#[test]
fn metric_subsets_are_columns_of_every() {
    let subsets: Vec<Metrics> = (1u16..1024)
        .map(|bits| {
            let ms: Vec<Metric> = (0..10)
                .filter(|j| bits >> j & 1 == 1)
                .map(|j| Metric::ALL[j])
                .collect();
            Metrics::new(&ms).unwrap()
        })
        .collect();
    let check = |label: &str, d: usize, subsets: &[Metrics], f: Diag| {
        let n = 9;
        let pairs = to_param(&data(n, d, 5 + d as u64), Param::LogVar);
        let mut all = vec![0f32; n * 10];
        f(&pairs, d, every_in(Param::LogVar), &mut all);
        for &s in subsets {
            let k = s.len();
            let mut out = vec![0f32; n * k];
            f(
                &pairs,
                d,
                Request::measures(s).with_param(Param::LogVar),
                &mut out,
            );
            for (r, (o, a)) in out.chunks(k).zip(all.chunks(10)).enumerate() {
                for (v, m) in o.iter().zip(s.iter()) {
                    assert_eq!(
                        v.to_bits(),
                        a[metric_index(m)].to_bits(),
                        "{label} D={d} subset {:?} row {r} {m}",
                        s.iter().collect::<Vec<_>>()
                    );
                }
            }
        }
    };
    let cpu_f: Diag = &|p, d, o, out| diagonal_with(cpu(), p, d, o, out).unwrap();
    for d in [3, 300] {
        check("cpu", d, &subsets, cpu_f);
    }
    let Some(gpu) = gpu() else { return };
    let mut some: Vec<Metrics> = Metric::ALL
        .iter()
        .map(|m| Metrics::new(&[*m]).unwrap())
        .collect();
    use Metric::*;
    for ms in [
        &[BhattacharyyaCoefficient, Hellinger][..],
        &[Bhattacharyya, Wasserstein2],
        &[CrossEntropy, Hellinger],
        &[Kl, ReverseKl, Jeffreys],
        &[Entropy, EntropyQ, Wasserstein2],
    ] {
        some.push(Metrics::new(ms).unwrap());
    }
    some.extend(subsets.iter().step_by(97).copied());
    let gpu_f: Diag = &|p, d, o, out| diagonal_with(gpu, p, d, o, out).unwrap();
    for d in [3, 300] {
        check("gpu", d, &some, gpu_f);
    }
    println!(
        "metric subsets: CPU all {} subsets, GPU {} subsets, each on D = 3 and 300: bitwise columns of the full set",
        subsets.len(),
        some.len()
    );
}

/// Multi-chunk inputs (rows split over several host chunks, and a row longer
/// than one host chunk) give the same rows as evaluating each row alone.
#[test]
fn chunking_matches_single_rows() {
    let cases: &[(usize, usize)] = &[(3, 200_001), (100, 6000), (1000, 700), (300_000, 2)];
    let every = every_in(Param::Std);
    let mut backends: Vec<(&str, Diag)> = Vec::new();
    let cpu_f: Diag = &|p, d, o, out| diagonal_with(cpu(), p, d, o, out).unwrap();
    backends.push(("cpu", cpu_f));
    let gpu = gpu();
    let gpu_f = gpu.map(|g| {
        move |p: &[GaussianPair], d: usize, o: Request, out: &mut [f32]| {
            diagonal_with(g, p, d, o, out).unwrap()
        }
    });
    if let Some(f) = &gpu_f {
        backends.push(("gpu", f));
    }
    for &(d, n) in cases {
        let pairs = random_pairs(n * d, 17 + d as u64);
        for (label, f) in &backends {
            let mut out = vec![0f32; n * 10];
            f(&pairs, d, every, &mut out);
            for r in [0, n / 2, n - 1] {
                let mut one = [0f32; 10];
                f(&pairs[r * d..(r + 1) * d], d, every, &mut one);
                assert_eq!(
                    &out[r * 10..(r + 1) * 10],
                    &one,
                    "{label} D={d} N={n} row {r}"
                );
            }
        }
    }
}

/// The f64 CPU variant against an f64 sum of the f64 per-pair values.
#[test]
fn f64_cpu_variant() {
    let pairs: Vec<GaussianPair64> = data(7, 65, 3).iter().map(|p| p.to_f64()).collect();
    let every = every_in(Param::Std);
    let mut out = vec![0f64; 7 * 10];
    diagonal_with(cpu(), &pairs, 65, every, &mut out).unwrap();
    let mut per = vec![0f64; pairs.len() * 10];
    per_pair(cpu(), &pairs, every, &mut per).unwrap();
    let mut worst = 0f64;
    for (got, per) in out.chunks(10).zip(per.chunks(650)) {
        for (m, g) in got.iter().enumerate().take(7) {
            let s: f64 = per.iter().skip(m).step_by(10).sum();
            let abs: f64 = per.iter().skip(m).step_by(10).map(|v| v.abs()).sum();
            if s.is_infinite() {
                assert_eq!(*g, s);
                continue;
            }
            let e = (*g - s).abs() / abs.max(f64::MIN_POSITIVE);
            worst = worst.max(e);
            assert!(e < 1e-14, "{} {e:e}", name(m));
        }
    }
    println!("f64 CPU diagonal: worst error {worst:.1e} of Σ|t| (vs a plain f64 sum)");
}

/// The GPU f64 diagonal kernels (narrow below 256 dims, a workgroup per row
/// from 256 on) against the CPU f64 path, every parameterisation: the
/// additive measures within 1e-14 of Σ|t| (the per-dim values' magnitudes),
/// the others within 1e-14 relative.
#[test]
fn f64_gpu_matches_cpu() {
    let Some(g) = gpu() else { return };
    if !g.gpu_info().is_some_and(|i| i.supports_f64) {
        eprintln!("SKIPPED: the adapter lacks SHADER_F64/SHADER_INT64");
        return;
    }
    let mut worst = 0f64;
    for (rows, dims) in [(9, 65), (5, 300)] {
        let base = data(rows, dims, 11 + dims as u64);
        for param in Param::ALL {
            let pairs: Vec<GaussianPair64> =
                to_param(&base, param).iter().map(|p| p.to_f64()).collect();
            let every = every_in(param);
            let mut gpu_out = vec![0f64; rows * 10];
            diagonal_with(g, &pairs, dims, every, &mut gpu_out).unwrap();
            let mut cpu_out = vec![0f64; rows * 10];
            diagonal_with(cpu(), &pairs, dims, every, &mut cpu_out).unwrap();
            let mut per = vec![0f64; pairs.len() * 10];
            per_pair(cpu(), &pairs, every, &mut per).unwrap();
            for (r, (got, want)) in gpu_out.chunks(10).zip(cpu_out.chunks(10)).enumerate() {
                for m in 0..10 {
                    let (a, b) = (got[m], want[m]);
                    if a == b || (a.is_nan() && b.is_nan()) {
                        continue;
                    }
                    let scale = if m < 7 {
                        per[r * dims * 10..(r + 1) * dims * 10]
                            .iter()
                            .skip(m)
                            .step_by(10)
                            .map(|v| v.abs())
                            .sum::<f64>()
                    } else {
                        b.abs()
                    };
                    let e = (a - b).abs() / scale.max(f64::MIN_POSITIVE);
                    worst = worst.max(e);
                    assert!(
                        e <= 1e-14,
                        "{param} D={dims} row {r} {}: GPU {a:e} CPU {b:e} ({e:.2e})",
                        name(m)
                    );
                }
            }
        }
    }
    println!("f64 GPU diagonal vs CPU f64: worst difference {worst:.1e}");
}

fn check_errors(ev: &Evaluator, label: &str) {
    use gaussdiv::Error;
    let opts = Request::measures(Metrics::CE_KL);
    let pairs = random_pairs(24, 1);
    let mut out = vec![0f32; 8 * 2];
    // dims = 0, a length not a multiple of dims, a wrong output length.
    assert!(matches!(
        diagonal_with(ev, &pairs, 0, opts, &mut out),
        Err(Error::LengthMismatch { .. })
    ));
    assert!(matches!(
        diagonal_with(ev, &pairs, 5, opts, &mut out),
        Err(Error::LengthMismatch { .. })
    ));
    assert!(matches!(
        diagonal_with(ev, &pairs, 3, opts, &mut out[..15]),
        Err(Error::LengthMismatch { .. })
    ));
    diagonal_with(ev, &pairs, 3, opts, &mut out).unwrap();
    // An invalid element names its flat index, row and dim.
    let mut bad = pairs.clone();
    bad[2 * 3 + 1].sigma2 = -1.0;
    match diagonal_with(ev, &bad, 3, opts, &mut out) {
        Err(
            e @ Error::InvalidElement {
                index: 7,
                row: 2,
                dim: 1,
                field: gaussdiv::Field::Sigma2,
                ..
            },
        ) => {
            let msg = e.to_string();
            assert!(msg.contains("row 2, dim 1"), "{label}: {msg}");
            println!("{label}: {msg}");
        }
        other => panic!("{label}: {other:?}"),
    }
}

#[test]
fn errors_name_row_and_dim() {
    check_errors(&Evaluator::new(Backend::Cpu).unwrap(), "cpu");
    if gpu().is_none() {
        return;
    }
    check_errors(&Evaluator::new(Backend::Gpu).unwrap(), "gpu");
}

/// Under OnInvalid::Nan a row with an invalid element is NaN, the others are unaffected.
#[test]
fn nan_policy_poisons_only_the_row() {
    let mut backends = vec![Evaluator::new(Backend::Cpu).unwrap()];
    if gpu().is_some() {
        backends.push(Evaluator::new(Backend::Gpu).unwrap());
    }
    for d in [4, 300] {
        let mut pairs = random_pairs(5 * d, 9);
        pairs[3 * d + d - 1].mu1 = f32::NAN;
        let every = every_in(Param::Std).with_on_invalid(OnInvalid::Nan);
        for ev in &backends {
            let mut out = vec![0f32; 50];
            diagonal_with(ev, &pairs, d, every, &mut out).unwrap();
            for (r, row) in out.chunks(10).enumerate() {
                assert_eq!(
                    row.iter().all(|v| v.is_nan()),
                    r == 3,
                    "{:?} D={d} row {r}: {row:?}",
                    ev.backend()
                );
            }
        }
    }
}

/// A row of many tiny, non-zero per-dim coefficients: their product's
/// exponent runs past the floor that keeps it from wrapping (with a few
/// million dims it would pass i32's end; a review finding), and the row's
/// coefficient is 0 (truth far below the smallest subnormal), Hellinger 1,
/// D_B the finite sum — f32 and f64, CPU and GPU, both kernels (below and
/// above 256 dims per row).
#[test]
fn coefficient_exponent_floor() {
    fn check<T: gaussdiv::Float + From<u8>>(ev: &Evaluator, mu2: T, dims: usize, label: &str) {
        let (zero, one) = (T::from(0), T::from(1));
        let row = vec![GaussianPair::new(zero, one, mu2, one); dims];
        let mut out = vec![zero; 10];
        ev.evaluate(
            Batch::Diagonal { pairs: &row, dims },
            &every_in(Param::Std),
            &mut out,
        )
        .unwrap();
        let per = mu2.into() * mu2.into() / 8.0; // D_B per dim: Δμ²/(4·2)
        let v: Vec<f64> = out.iter().map(|x| (*x).into()).collect();
        assert_eq!(v[7], 0.0, "{label}: coefficient");
        assert_eq!(v[8], 1.0, "{label}: Hellinger");
        let want = per * dims as f64;
        assert!(
            (v[6] - want).abs() <= 1e-5 * want,
            "{label}: D_B {} want {want}",
            v[6]
        );
    }
    // f32: D_B ≈ 100 per dim, a coefficient of about 2^−145 each; 10 000 dims
    // take the exponent to about −1.45e6, below the floor (−2^20).
    check::<f32>(cpu(), 28.28, 10_000, "cpu f32");
    // f64: about 2^−1042 per dim; 1 100 dims pass the floor, and 2.2 million
    // would have wrapped an unclamped i32 (the product came out +inf).
    check::<f64>(cpu(), 76.0, 1_100, "cpu f64");
    check::<f64>(cpu(), 76.0, 2_200_000, "cpu f64, 2.2e6 dims");
    check::<f64>(cpu(), 76.0, 200, "cpu f64 narrow");
    if let Some(g) = gpu() {
        check::<f32>(g, 28.28, 10_000, "gpu f32");
        check::<f32>(g, 28.28, 200, "gpu f32 narrow");
        if g.gpu_info().is_some_and(|i| i.supports_f64) {
            check::<f64>(g, 76.0, 1_100, "gpu f64");
        }
    }
}

/// +inf per-dim values make the sums +inf, the coefficient 0, Hellinger 1.
#[test]
fn infinite_dims() {
    let row = [
        GaussianPair::new(0.0, 1.0, 1.0, 2.0),
        GaussianPair::new(0.0, 1e-30, 0.0, 1e30), // KL, Jeffreys, D_B overflow
        GaussianPair::new(0.0, 1.0, 3.4e38, 1.0),
    ];
    let every = every_in(Param::Std);
    let mut c = [0f32; 10];
    diagonal_with(cpu(), &row, 3, every, &mut c).unwrap();
    let mut per = [0f32; 30];
    per_pair(cpu(), &row, every, &mut per).unwrap();
    let want = expected(&per, &distances_f64(&row, Param::Std));
    for m in 0..10 {
        if m < 7 && want[m].0.is_infinite() {
            assert_eq!(c[m], f32::INFINITY, "{}", name(m));
        }
    }
    assert_eq!(c[7], 0.0);
    assert_eq!(c[8], 1.0);
    if let Some(gpu) = gpu() {
        let mut g = [0f32; 10];
        diagonal_with(gpu, &row, 3, every, &mut g).unwrap();
        assert_eq!(
            bytemuck::cast_slice::<f32, u32>(&g),
            bytemuck::cast_slice::<f32, u32>(&c),
            "gpu {g:?} cpu {c:?}"
        );
    }
}

/// Rows with an element whose μ1 − μ2 is subnormal (which a device may
/// flush) are recomputed on the CPU: the GPU row equals the CPU row.
#[test]
fn subnormal_mean_rows_are_exact() {
    let Some(gpu) = gpu() else { return };
    for d in [5, 300] {
        let mut pairs = random_pairs(4 * d, 21);
        pairs[d + 2] = GaussianPair::new(1e-40, 1e-40, 0.0, 2e-40);
        pairs[3 * d] = GaussianPair::new(3e-39, 1.0, 2e-39, 1.0);
        let every = every_in(Param::Std);
        let (mut g, mut c) = (vec![0f32; 40], vec![0f32; 40]);
        diagonal_with(gpu, &pairs, d, every, &mut g).unwrap();
        diagonal_with(cpu(), &pairs, d, every, &mut c).unwrap();
        for r in [1, 3] {
            assert_eq!(
                bytemuck::cast_slice::<f32, u32>(&g[r * 10..r * 10 + 10]),
                bytemuck::cast_slice::<f32, u32>(&c[r * 10..r * 10 + 10]),
                "D={d} row {r}"
            );
        }
    }
}

/// `encode_diagonal` on `g`'s device: rows of `dims` pairs at offset 256,
/// output at offset 256; the values read back, or the encode error.
fn via_encode_diagonal(
    g: &Evaluator,
    pairs: &[GaussianPair],
    rows: usize,
    dims: usize,
    options: Request,
) -> Result<Vec<u32>, gaussdiv::Error> {
    use gaussdiv::wgpu::{self, util::DeviceExt};
    let (device, queue) = g.device().expect("a GPU evaluator");
    let diagonal = |input, output, rows, dims| DeviceBatch {
        input: DeviceInput::Diagonal {
            pairs: input,
            rows,
            dims,
        },
        output,
    };
    let mut bytes = vec![0u8; 256];
    bytes.extend_from_slice(bytemuck::cast_slice(pairs));
    let input = device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
        label: Some("rows"),
        contents: &bytes,
        usage: wgpu::BufferUsages::STORAGE,
    });
    let values = rows * options.values_per_pair();
    let output = device.create_buffer(&wgpu::BufferDescriptor {
        label: Some("out"),
        size: 256 + values as u64 * 4,
        usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC,
        mapped_at_creation: false,
    });
    let staging = device.create_buffer(&wgpu::BufferDescriptor {
        label: Some("staging"),
        size: values as u64 * 4,
        usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
        mapped_at_creation: false,
    });
    let mut enc = device.create_command_encoder(&Default::default());
    g.encode(
        &mut enc,
        diagonal(
            input.slice(256..),
            output.slice(256..),
            rows as u64,
            dims as u64,
        ),
        &options,
    )?;
    // Misuse: output aliasing the input, dims 0.
    for (out, d) in [(input.slice(..), 1), (output.slice(..), 0)] {
        let e = g
            .encode(&mut enc, diagonal(input.slice(256..), out, 1, d), &options)
            .unwrap_err();
        assert!(matches!(e, gaussdiv::Error::InvalidBuffer(_)), "{e}");
    }
    enc.copy_buffer_to_buffer(&output, 256, &staging, 0, values as u64 * 4);
    queue.submit([enc.finish()]);
    staging
        .slice(..)
        .map_async(wgpu::MapMode::Read, |r| r.unwrap());
    device.poll(wgpu::PollType::wait_indefinitely()).unwrap();
    let got = bytemuck::cast_slice(&staging.slice(..).get_mapped_range().unwrap()).to_vec();
    Ok(got)
}

/// `encode_diagonal` into the app's encoder and buffers equals the host path
/// bit for bit, on both kernels (D < 256 and D ≥ 256), in one dispatch and —
/// with 256-pair chunks — in 32 aligned dispatches; a row that cannot be
/// bound at an aligned offset within the chunk is `TooLarge`.
#[test]
fn encode_diagonal_equals_host_path() {
    let Some(g) = gpu() else { return };
    let small = pollster::block_on(Evaluator::new_async(
        Backend::Gpu,
        Options {
            max_chunk_pairs: 256,
            ..Default::default()
        },
    ))
    .unwrap();
    let options = every_in(Param::Std);
    for (rows, dims) in [(1000usize, 7usize), (37, 300)] {
        let pairs = data(rows, dims, 40 + dims as u64);
        let mut want = vec![0f32; rows * 10];
        diagonal_with(g, &pairs, dims, options, &mut want).unwrap();
        let want: Vec<u32> = bytemuck::cast_slice(&want).to_vec();
        assert_eq!(
            via_encode_diagonal(g, &pairs, rows, dims, options).unwrap(),
            want
        );
        match via_encode_diagonal(&small, &pairs, rows, dims, options) {
            Ok(got) => {
                assert_eq!(dims, 7);
                assert_eq!(got, want, "{rows} × {dims} in small chunks");
            }
            Err(e) => {
                assert_eq!(dims, 300);
                assert!(matches!(e, gaussdiv::Error::TooLarge(_)), "{e}");
            }
        }
    }
}
