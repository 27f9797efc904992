//! Helpers shared by the integration tests.
#![allow(dead_code)]

use gaussdiv::verify::{kl_error, scaled_error, term_scale};
use gaussdiv::{
    Backend, Batch, Divergences, Divergences64, Evaluator, Float, GaussianPair, GaussianPair64,
    Metrics, OnInvalid, Param, Precision, Request, Result,
};
use std::collections::BTreeMap;

pub mod device;
pub mod mvn;

/// One row of tests/data/golden_public.csv.
pub struct GoldenRow {
    pub pair: GaussianPair,
    pub ce: f64,
    pub kl: f64,
    pub entropy: f64,
    pub family: String,
}

pub fn golden() -> Vec<GoldenRow> {
    golden_rows("golden_public.csv", &["ce", "kl", "entropy1"])
        .into_iter()
        .map(|r| GoldenRow {
            pair: r.pair,
            ce: r.values[0],
            kl: r.values[1],
            entropy: r.values[2],
            family: r.family,
        })
        .collect()
}

/// One row of a golden CSV file: the float32 inputs (from its `bits`
/// column), the values of the asked columns, its family.
pub struct CsvRow {
    pub pair: GaussianPair,
    pub values: Vec<f64>,
    pub family: String,
}

/// The rows of `tests/data/FILE`, with the values of `columns` in that
/// order; the decimal input columns must agree with the bit patterns.
pub fn golden_rows(file: &str, columns: &[&str]) -> Vec<CsvRow> {
    let path = format!(
        "{}/../gaussdiv/tests/data/{file}",
        env!("CARGO_MANIFEST_DIR")
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
    let cols: Vec<usize> = columns.iter().map(|c| col(c)).collect();
    let (fam, bits) = (col("family"), col("bits"));
    lines
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            let b: Vec<f32> = f[bits]
                .split(':')
                .map(|x| f32::from_bits(u32::from_str_radix(x, 16).unwrap()))
                .collect();
            // The decimal columns must agree with the bit patterns.
            for (i, v) in b.iter().enumerate() {
                let dec: f32 = f[i].parse().unwrap();
                assert!(dec.to_bits() == v.to_bits() || (dec == 0.0 && *v == 0.0));
            }
            CsvRow {
                pair: GaussianPair::new(b[0], b[1], b[2], b[3]),
                values: cols.iter().map(|&c| f[c].parse().unwrap()).collect(),
                family: f[fam].to_string(),
            }
        })
        .collect()
}

/// Errors of one path on the golden file, per measure, with per-family maxima.
#[derive(Default)]
pub struct GoldenErrors {
    pub max: [f64; 3],
    pub worst_row: [usize; 3],
    pub by_family: BTreeMap<String, [f64; 3]>,
    pub failures: Vec<String>,
}

/// Check results `got[i] = [ce, kl, entropy]` against the golden truth with bound `tol`.
/// Every row is asserted individually (collected, then reported together).
pub fn check_golden(
    label: &str,
    rows: &[GoldenRow],
    got: &[[f64; 3]],
    tol: f64,
    precision: Precision,
) -> GoldenErrors {
    assert_eq!(rows.len(), got.len());
    let mut e = GoldenErrors::default();
    for (i, (r, g)) in rows.iter().zip(got).enumerate() {
        let scale = term_scale(f64::from(r.pair.sigma1), r.kl);
        let errs = [
            scaled_error(g[0], r.ce, scale, precision),
            kl_error(g[1], r.kl, precision),
            scaled_error(g[2], r.entropy, scale, precision),
        ];
        let fam = e.by_family.entry(r.family.clone()).or_default();
        for j in 0..3 {
            if errs[j] > e.max[j] || errs[j].is_nan() {
                e.max[j] = errs[j];
                e.worst_row[j] = i;
            }
            fam[j] = fam[j].max(errs[j]);
            if errs[j].is_nan() || errs[j] > tol {
                e.failures.push(format!(
                    "row {i} ({}) {}: got {:e} want {:e} error {:e} pair {:?}",
                    r.family,
                    ["cross_entropy", "kl", "entropy"][j],
                    g[j],
                    [r.ce, r.kl, r.entropy][j],
                    errs[j],
                    r.pair
                ));
            }
        }
        // Structural properties, asserted per row.
        if g[1] < 0.0 {
            e.failures.push(format!("row {i}: negative KL {:e}", g[1]));
        }
        if r.kl == 0.0 && g[1] != 0.0 {
            e.failures
                .push(format!("row {i}: KL must be exactly 0, got {:e}", g[1]));
        }
    }
    println!("{label}: max errors  cross_entropy {:.3e} (row {})  kl {:.3e} (row {})  entropy {:.3e} (row {})  [bound {tol:e}]",
        e.max[0], e.worst_row[0], e.max[1], e.worst_row[1], e.max[2], e.worst_row[2]);
    for (fam, m) in &e.by_family {
        println!(
            "  {fam:<18} ce {:.2e}  kl {:.2e}  entropy {:.2e}",
            m[0], m[1], m[2]
        );
    }
    e
}

pub fn assert_golden(
    label: &str,
    rows: &[GoldenRow],
    got: &[[f64; 3]],
    tol: f64,
    precision: Precision,
) {
    let e = check_golden(label, rows, got, tol, precision);
    if !e.failures.is_empty() {
        let n = e.failures.len();
        let shown: Vec<_> = e.failures.iter().take(30).cloned().collect();
        panic!("{label}: {n} failures:\n{}", shown.join("\n"));
    }
}

/// A GPU evaluator (`Backend::Gpu`), or `None` (test skipped with a printed
/// reason) when no adapter exists — unless GAUSSDIV_REQUIRE_GPU=1, where that
/// is a failure.
pub fn gpu() -> Option<&'static Evaluator> {
    use std::sync::OnceLock;
    static GPU: OnceLock<Result<Evaluator, String>> = OnceLock::new();
    let r = GPU.get_or_init(|| {
        if std::env::var_os("XDG_RUNTIME_DIR").is_none() {
            // Mesa warns on every instance without it; any writable directory will do.
            std::env::set_var("XDG_RUNTIME_DIR", std::env::temp_dir());
        }
        Evaluator::new(Backend::Gpu).map_err(|e| e.to_string())
    });
    match r {
        Ok(g) => Some(g),
        Err(e) => {
            if std::env::var("GAUSSDIV_REQUIRE_GPU").as_deref() == Ok("1") {
                panic!("GAUSSDIV_REQUIRE_GPU=1 but no GPU evaluator could be created: {e}");
            }
            eprintln!(
                "SKIPPED: no GPU adapter ({e}); set GAUSSDIV_REQUIRE_GPU=1 to make this a failure"
            );
            None
        }
    }
}

/// A GPU evaluator of the caller's own (its `GpuInfo` counters count that
/// test's work only), or `None` under the rules of [`gpu`].
pub fn own_gpu() -> Option<Evaluator> {
    if std::env::var_os("XDG_RUNTIME_DIR").is_none() {
        std::env::set_var("XDG_RUNTIME_DIR", std::env::temp_dir());
    }
    match Evaluator::new(Backend::Gpu) {
        Ok(g) => Some(g),
        Err(e) if std::env::var("GAUSSDIV_REQUIRE_GPU").as_deref() == Ok("1") => {
            panic!("GAUSSDIV_REQUIRE_GPU=1 but no GPU evaluator: {e}")
        }
        Err(e) => {
            eprintln!("SKIPPED: no GPU ({e})");
            None
        }
    }
}

/// The CPU evaluator (`Backend::Cpu`).
pub fn cpu() -> &'static Evaluator {
    use std::sync::OnceLock;
    static CPU: OnceLock<Evaluator> = OnceLock::new();
    CPU.get_or_init(|| Evaluator::new(Backend::Cpu).expect("CPU evaluator"))
}

/// `request` on an array of pairs, into a new vector (f32 or f64).
pub fn eval<T: Float>(
    ev: &Evaluator,
    pairs: &[GaussianPair<T>],
    request: &Request,
) -> Result<Vec<T>> {
    let mut out = vec![T::default(); pairs.len() * request.values_per_pair()];
    ev.evaluate(Batch::Pairs(pairs), request, &mut out)?;
    Ok(out)
}

/// Cross-entropy, KL and entropy of every f32 pair given by σ.
pub fn divergences(ev: &Evaluator, pairs: &[GaussianPair]) -> Result<Vec<Divergences>> {
    let out = eval(ev, pairs, &Request::default())?;
    Ok(bytemuck::cast_slice(&out).to_vec())
}

/// Cross-entropy, KL and entropy of every f64 pair given by σ.
pub fn divergences64(ev: &Evaluator, pairs: &[GaussianPair64]) -> Result<Vec<Divergences64>> {
    let out = eval(ev, pairs, &Request::default())?;
    Ok(bytemuck::cast_slice(&out).to_vec())
}

/// Every measure of one pair on the CPU (canonical order), invalid input NaN.
pub fn all_measures<T: Float>(p: &GaussianPair<T>, param: Param) -> [T; 10] {
    let r = Request::measures(Metrics::ALL)
        .with_param(param)
        .with_on_invalid(OnInvalid::Nan);
    let v = eval(cpu(), std::slice::from_ref(p), &r).expect("CPU measures");
    let mut a = [T::default(); 10];
    a.copy_from_slice(&v);
    a
}

/// Deterministic pseudo-random numbers (xorshift64*), no dependencies.
pub struct Rng(pub u64);
impl Rng {
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545F4914F6CDD1D)
    }
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
    /// A pair with μ ∈ [−10, 10], σ log-uniform in [1e-3, 1e3].
    pub fn pair(&mut self) -> GaussianPair {
        let mut s = || 10f64.powf(self.unit() * 6.0 - 3.0) as f32;
        let (s1, s2) = (s(), s());
        GaussianPair::new(
            (self.unit() * 20.0 - 10.0) as f32,
            s1,
            (self.unit() * 20.0 - 10.0) as f32,
            s2,
        )
    }
}

pub fn random_pairs(n: usize, seed: u64) -> Vec<GaussianPair> {
    let mut rng = Rng(seed.max(1));
    (0..n).map(|_| rng.pair()).collect()
}

/// The position of `m` in the canonical order ([`gaussdiv::Metric::ALL`]).
pub fn metric_index(m: gaussdiv::Metric) -> usize {
    gaussdiv::Metric::ALL
        .iter()
        .position(|&x| x == m)
        .expect("a metric of Metric::ALL")
}

/// A second GPU evaluator on the device and queue of `shared`, with `options`.
pub fn on_same_device(shared: &Evaluator, options: gaussdiv::Options) -> Evaluator {
    let (device, queue) = shared.device().expect("a GPU evaluator");
    Evaluator::from_device(&device, &queue, options).expect("from_device")
}

/// The wgpu adapter gaussdiv chooses (`gaussdiv::adapters().chosen`), from an
/// instance configured like the library's (`WGPU_*` variables, no display).
pub fn chosen_adapter() -> Option<gaussdiv::wgpu::Adapter> {
    use gaussdiv::wgpu;
    let (chosen, _) = pollster::block_on(gaussdiv::adapters()).chosen.ok()?;
    let instance =
        wgpu::Instance::new(wgpu::InstanceDescriptor::new_without_display_handle_from_env());
    pollster::block_on(instance.enumerate_adapters(wgpu::Backends::all()))
        .into_iter()
        .find(|a| a.get_info() == chosen.info)
}

/// The textbook formulas in f64 (cross-entropy, KL, entropy), as the
/// library's internal `math::textbook_f64` wrote them: the naive reference
/// the accurate paths are compared against.
pub fn textbook_f64(mu1: f64, s1: f64, mu2: f64, s2: f64) -> [f64; 3] {
    let v1 = s1 * s1;
    let v2 = s2 * s2;
    let d = mu1 - mu2;
    let ce = 0.5 * (2.0 * core::f64::consts::PI * v2).ln() + (d * d + v1) / (2.0 * v2);
    let kl = 0.5 * (d * d / v2 + v1 / v2 - (v1 / v2).ln() - 1.0);
    let h = 0.5 * (2.0 * core::f64::consts::PI * core::f64::consts::E * v1).ln();
    [ce, kl, h]
}
