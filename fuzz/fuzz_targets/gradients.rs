//! The gradients on arbitrary bit patterns, every parameterisation: invalid
//! rows are NaN in all eight values, valid rows are within 1e-6 of the f64
//! gradients (error of `verify::gradient_error`: relative, and for ∂/∂a2
//! relative to its terms), the μ derivatives are exact negatives of each
//! other and the same for both measures, nothing panics.
#![no_main]

use gaussdiv::gradient::{cpu_gradients_f64_with, cpu_gradients_with};
use gaussdiv::validate::check_param;
use gaussdiv::verify::{gradient_error, gradient_scales};
use gaussdiv::{EvalOptions, GaussianPair, Metrics, Param, Precision};

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Some((&sel, rest)) = data.split_first() else {
        return;
    };
    let param = Param::ALL[usize::from(sel) % Param::ALL.len()];
    let options = EvalOptions::new(Metrics::CE_KL, param);
    let pairs: Vec<GaussianPair> = rest
        .chunks_exact(16)
        .map(bytemuck::pod_read_unaligned)
        .collect();
    let mut out = vec![0f32; pairs.len() * 8];
    cpu_gradients_with(&pairs, options, &mut out).unwrap();
    let wide: Vec<_> = pairs.iter().map(|p| p.to_f64()).collect();
    let mut reference = vec![0f64; pairs.len() * 8];
    cpu_gradients_f64_with(&wide, options, &mut reference).unwrap();
    for (i, p) in pairs.iter().enumerate() {
        let row = &out[i * 8..i * 8 + 8];
        if check_param(p, param).is_some() {
            assert!(row.iter().all(|v| v.is_nan()), "{p:?} {param:?} -> {row:?}");
            continue;
        }
        assert!(row.iter().all(|v| !v.is_nan()), "{p:?} {param:?} -> {row:?}");
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
