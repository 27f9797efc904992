//! Helpers shared by the integration tests.
#![allow(dead_code)]

use gaussdiv::verify::{kl_error, scaled_error, term_scale};
use gaussdiv::{GaussianPair, Precision};
use std::collections::BTreeMap;

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

/// A GPU evaluator, or `None` (test skipped with a printed reason) when no
/// adapter exists — unless GAUSSDIV_REQUIRE_GPU=1, where that is a failure.
pub fn gpu() -> Option<&'static gaussdiv::GpuEvaluator> {
    use std::sync::OnceLock;
    static GPU: OnceLock<Result<gaussdiv::GpuEvaluator, String>> = OnceLock::new();
    let r = GPU.get_or_init(|| {
        if std::env::var_os("XDG_RUNTIME_DIR").is_none() {
            // Mesa warns on every instance without it; any writable directory will do.
            std::env::set_var("XDG_RUNTIME_DIR", std::env::temp_dir());
        }
        gaussdiv::GpuEvaluator::new().map_err(|e| e.to_string())
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
