//! Every row of the golden file on the CPU paths (f32 and f64).
mod common;
use common::*;
use gaussdiv::Precision;

#[test]
fn golden_cpu_f32() {
    let rows = golden();
    let pairs: Vec<_> = rows.iter().map(|r| r.pair).collect();
    let out = divergences(cpu(), &pairs).unwrap();
    let got: Vec<[f64; 3]> = out
        .iter()
        .map(|d| [d.cross_entropy.into(), d.kl.into(), d.entropy.into()])
        .collect();
    assert_golden("CPU f32", &rows, &got, 1e-6, Precision::F32);
}

#[test]
fn golden_cpu_f64() {
    let rows = golden();
    let pairs: Vec<_> = rows.iter().map(|r| r.pair.to_f64()).collect();
    let out = divergences64(cpu(), &pairs).unwrap();
    let got: Vec<[f64; 3]> = out
        .iter()
        .map(|d| [d.cross_entropy, d.kl, d.entropy])
        .collect();
    assert_golden("CPU f64", &rows, &got, 1e-14, Precision::F64);
}

#[test]
fn golden_textbook_f64_for_comparison() {
    // Not a target: shows how the textbook formula fares on the same rows.
    let rows = golden();
    let got: Vec<[f64; 3]> = rows
        .iter()
        .map(|r| {
            let p = r.pair.to_f64();
            textbook_f64(p.mu1, p.sigma1, p.mu2, p.sigma2)
        })
        .collect();
    let e = check_golden(
        "textbook f64 (reference only)",
        &rows,
        &got,
        1e-14,
        Precision::F64,
    );
    assert!(
        !e.failures.is_empty(),
        "the textbook formula is expected to fail some rows"
    );
}
