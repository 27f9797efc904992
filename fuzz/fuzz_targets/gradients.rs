//! The gradients on arbitrary bit patterns, every parameterisation: invalid
//! rows are NaN in all eight values, valid rows are within 1e-6 of the f64
//! gradients (error of `verify::gradient_error`: relative, and for ∂/∂a2
//! relative to its terms), the μ derivatives are exact negatives of each
//! other and the same for both measures, nothing panics.
#![no_main]

use gaussdiv::verify::{gradient_error, gradient_scales};
use gaussdiv::{
    Backend, Batch, Evaluator, GaussianPair, Metrics, OnInvalid, Param, Precision, Request,
};
use std::sync::OnceLock;

/// The CPU evaluator, built once.
fn cpu() -> &'static Evaluator {
    static CPU: OnceLock<Evaluator> = OnceLock::new();
    CPU.get_or_init(|| Evaluator::new(Backend::Cpu).unwrap())
}

/// The f32 pair in 16 bytes (native endian, as in memory).
fn pair32(b: &[u8]) -> GaussianPair {
    let f = |i: usize| f32::from_ne_bytes([b[4 * i], b[4 * i + 1], b[4 * i + 2], b[4 * i + 3]]);
    GaussianPair::new(f(0), f(1), f(2), f(3))
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Some((&sel, rest)) = data.split_first() else {
        return;
    };
    let param = Param::ALL[usize::from(sel) % Param::ALL.len()];
    // Invalid rows NaN (in all eight values).
    let options = Request::gradients(Metrics::CE_KL)
        .with_param(param)
        .with_on_invalid(OnInvalid::Nan);
    let pairs: Vec<GaussianPair> = rest.chunks_exact(16).map(pair32).collect();
    let mut out = vec![0f32; pairs.len() * 8];
    cpu()
        .evaluate(Batch::Pairs(&pairs), &options, &mut out)
        .unwrap();
    let wide: Vec<_> = pairs.iter().map(|p| p.to_f64()).collect();
    let mut reference = vec![0f64; pairs.len() * 8];
    cpu()
        .evaluate(Batch::Pairs(&wide), &options, &mut reference)
        .unwrap();
    for (i, p) in pairs.iter().enumerate() {
        let row = &out[i * 8..i * 8 + 8];
        if p.invalid_field(param).is_some() {
            assert!(row.iter().all(|v| v.is_nan()), "{p:?} {param:?} -> {row:?}");
            continue;
        }
        assert!(
            row.iter().all(|v| !v.is_nan()),
            "{p:?} {param:?} -> {row:?}"
        );
        assert_eq!(row[0].to_bits(), row[4].to_bits());
        assert_eq!(row[0], -row[2], "{p:?}");
        assert_eq!(row[3].to_bits(), row[7].to_bits());
        let scales = gradient_scales(&wide[i], param);
        for j in 0..8 {
            let want = reference[i * 8 + j];
            let e = gradient_error(f64::from(row[j]), want, scales[j], Precision::F32);
            // A reference within one f32 rounding of f32::MAX cannot be decided in f32.
            let max = f64::from(f32::MAX);
            let undecidable = want.abs() > max * (1.0 - 1e-6) && want.abs() < max * (1.0 + 1e-6);
            assert!(
                e <= 1e-6 || undecidable,
                "{p:?} {param:?} value {j}: got {} want {want:e} error {e:e}",
                row[j]
            );
        }
    }
});
