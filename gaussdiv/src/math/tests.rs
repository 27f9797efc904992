//! Unit tests of the scalar formulas.

use super::ln_exp::*;
use super::*;

#[test]
fn frexp1_normal_and_subnormal() {
    for &x in &[1.0f32, 1.5, 3.0, 0.1, f32::MAX, f32::MIN_POSITIVE] {
        let (m, k) = x.frexp1();
        assert!((1.0..2.0).contains(&m), "{x}: {m}");
        assert_eq!(m as f64 * 2f64.powi(k), x as f64);
    }
    for bits in [1u32, 2, 3, 0x7fffff, 0x400000, 0x12345] {
        let x = f32::from_bits(bits);
        let (m, k) = x.frexp1();
        assert!((1.0..2.0).contains(&m), "{x}: {m}");
        assert_eq!(m as f64 * 2f64.powi(k), x as f64, "bits {bits:#x}");
    }
    for bits in [1u64, 0xfffffffffffff, 0x8000000000000] {
        let x = f64::from_bits(bits);
        let (m, k) = x.frexp1();
        assert!((1.0..2.0).contains(&m));
        assert_eq!(m * 2f64.powi(k + 1074) * 2f64.powi(-1074), x);
    }
}

/// The reduced-argument logarithms equal [`ln_scaled`] bit for bit on
/// their whole domain (every f32 in [½, 2]), f64 on a sample.
#[test]
fn ln_mant_and_ln_ratio_equal_ln_scaled() {
    let (lo, hi) = (0.5f32.to_bits(), 2.0f32.to_bits());
    for bits in lo..=hi {
        let r = f32::from_bits(bits);
        for k in [-300, -1, 0, 1, 77] {
            assert_eq!(
                ln_ratio(r, k).to_bits(),
                ln_scaled(r, k).to_bits(),
                "{r} {k}"
            );
            if r >= 1.0 {
                assert_eq!(
                    ln_mant(r, k).to_bits(),
                    ln_scaled(r, k).to_bits(),
                    "{r} {k}"
                );
            }
        }
    }
    let mut r = 0.5f64;
    while r <= 2.0 {
        for k in [-3000, -1, 0, 1, 77] {
            assert_eq!(
                ln_ratio(r, k).to_bits(),
                ln_scaled(r, k).to_bits(),
                "{r} {k}"
            );
            if r >= 1.0 {
                assert_eq!(
                    ln_mant(r, k).to_bits(),
                    ln_scaled(r, k).to_bits(),
                    "{r} {k}"
                );
            }
        }
        r = f64::from_bits(r.to_bits() + 0x1_2345_6789);
    }
    assert_eq!(
        ln_ratio(2.0f32, 3).to_bits(),
        ln_scaled(2.0f32, 3).to_bits()
    );
}

#[test]
fn ln_matches_std() {
    let mut worst32 = 0.0f64;
    let mut worst64 = 0.0f64;
    let mut x = 1e-40f64;
    while x < 1e38 {
        let y32 = ln(x as f32) as f64;
        let t32 = (x as f32 as f64).ln();
        worst32 = worst32.max((y32 - t32).abs() / t32.abs().max(1.0));
        let y64 = ln(x);
        worst64 = worst64.max((y64 - x.ln()).abs() / x.ln().abs().max(1.0));
        x *= 1.000_37;
    }
    assert!(worst32 < 1.2e-7, "f32 ln error {worst32}");
    assert!(worst64 < 2.3e-16, "f64 ln error {worst64}");
}

#[test]
fn identical_distributions_give_exact_zero() {
    for &(mu, s) in &[(0.0f32, 1.0f32), (-3.5, 1e-30), (1e30, 7.0), (0.0, 1e-45)] {
        let [_, kl, _] = divergences(mu, s, mu, s);
        assert_eq!(kl, 0.0);
    }
    let [_, kl, _] = divergences(-0.0f32, 2.0, 0.0, 2.0);
    assert_eq!(kl, 0.0);
}

#[test]
fn invalid_gives_nan() {
    for &(m1, s1) in &[
        (0.0f32, 0.0f32),
        (0.0, -1.0),
        (f32::NAN, 1.0),
        (0.0, f32::INFINITY),
    ] {
        assert!(divergences(m1, s1, 0.0, 1.0).iter().all(|v| v.is_nan()));
    }
}

/// Parse and validate a WGSL module with naga (f64 capabilities).
fn naga_module(src: &str, caps: naga::valid::Capabilities) -> naga::Module {
    let module = naga::front::wgsl::parse_str(src).expect("WGSL parses");
    naga::valid::Validator::new(naga::valid::ValidationFlags::all(), caps)
        .validate(&module)
        .expect("WGSL validates");
    module
}

/// KEEP IN SYNC, checked: the f64 kernel's constants are exactly the f64
/// instantiation's of src/math/real.rs (the f64 prelude).
#[test]
fn f64_shader_constants_match_math_rs() {
    use crate::math::Real;
    let module = naga_module(
        crate::gpu::kernel::SHADER_SOURCE_F64,
        naga::valid::Capabilities::FLOAT64 | naga::valid::Capabilities::SHADER_INT64,
    );
    let value = |name: &str| -> f64 {
        let (_, c) = module
            .constants
            .iter()
            .find(|(_, c)| c.name.as_deref() == Some(name))
            .unwrap_or_else(|| panic!("constant {name} missing"));
        match module.global_expressions[c.init] {
            naga::Expression::Literal(naga::Literal::F64(v)) => v,
            ref other => panic!("{name}: not an f64 literal: {other:?}"),
        }
    };
    let same = |name: &str, want: f64| {
        let got = value(name);
        assert_eq!(got.to_bits(), want.to_bits(), "{name}: {got:e} vs {want:e}");
    };
    for (i, c) in <f64 as Real>::LN_COEFFS.iter().enumerate() {
        same(&format!("LG{}", i + 1), *c);
    }
    assert_eq!(<f64 as Real>::ATANH_COEFFS.len(), 16);
    for (i, c) in <f64 as Real>::ATANH_COEFFS.iter().enumerate() {
        same(&format!("R{i}"), *c);
    }
    same("LN2_HI", <f64 as Real>::LN2_HI);
    same("LN2_LO", <f64 as Real>::LN2_LO);
    same("SQRT2", <f64 as Real>::SQRT2);
    same("HALF_LN_2PI_E", <f64 as Real>::HALF_LN_2PI_E);
    same("HALVE_THRESHOLD", <f64 as Real>::HALVE_THRESHOLD);
    same("F_MAX", <f64 as Real>::MAX);
    same("F_MIN_NORMAL", <f64 as Real>::MIN_POSITIVE);
    assert_eq!(<f64 as Real>::ATANH_WIDE.len(), 36);
    for (i, c) in <f64 as Real>::ATANH_WIDE.iter().enumerate() {
        same(&format!("R{i}"), *c);
    }
    assert_eq!(<f64 as Real>::EXP_COEFFS.len(), 5);
    for (i, c) in <f64 as Real>::EXP_COEFFS.iter().enumerate() {
        same(&format!("EXP_P{}", i + 1), *c);
    }
    assert_eq!(<f64 as Real>::EXP_TAYLOR.len(), 21);
    for (i, c) in <f64 as Real>::EXP_TAYLOR.iter().enumerate() {
        same(&format!("T{}", i + 1), *c);
    }
    same("HALF_LN2", <f64 as Real>::HALF_LN2);
    same("INV_LN2", <f64 as Real>::INV_LN2);
    same("EXP_LN2_HI", <f64 as Real>::EXP_LN2_HI);
    same("EXP_LN2_LO", <f64 as Real>::EXP_LN2_LO);
    same("EXP_ARG_MAX", <f64 as Real>::EXP_ARG_MAX);
    same("LOG_BIG", <f64 as Real>::LOG_BIG);
    // The integer constants of the f64 format.
    let int = |name: &str| -> i32 {
        let (_, c) = module
            .constants
            .iter()
            .find(|(_, c)| c.name.as_deref() == Some(name))
            .unwrap_or_else(|| panic!("constant {name} missing"));
        match module.global_expressions[c.init] {
            naga::Expression::Literal(naga::Literal::I32(v)) => v,
            ref other => panic!("{name}: not an i32 literal: {other:?}"),
        }
    };
    assert_eq!(int("MAX_EXP"), <f64 as Real>::MAX_EXP);
    assert_eq!(int("MIN_EXP"), <f64 as Real>::MIN_EXP);
    assert_eq!(int("SAFE_EXP"), <f64 as Real>::SAFE_EXP);
    assert_eq!(int("SAT_EXP"), 1 << 20);
}
