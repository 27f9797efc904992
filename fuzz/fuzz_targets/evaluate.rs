//! The library's evaluate path on arbitrary bit patterns: every row is either
//! within tolerance of the f64 reference or reported (error policy: the first
//! invalid row; NaN policy: NaN), KL is never negative, nothing panics.
#![no_main]

use gaussdiv::validate::{check_pair, check_pair_f64};
use gaussdiv::{
    cpu, verify, Backend, Error, Evaluator, GaussianPair, GaussianPair64, OnInvalid, Tolerance,
};

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let pairs: Vec<GaussianPair> = data
        .chunks_exact(16)
        .map(bytemuck::pod_read_unaligned)
        .collect();
    let out = cpu::evaluate(&pairs);
    for (p, d) in pairs.iter().zip(&out) {
        if check_pair(p).is_some() {
            assert!(d.kl.is_nan() && d.cross_entropy.is_nan() && d.entropy.is_nan());
        } else {
            assert!(d.kl >= 0.0, "{p:?} -> {d:?}");
        }
    }
    let valid: Vec<GaussianPair> = pairs
        .iter()
        .copied()
        .filter(|p| check_pair(p).is_none())
        .collect();
    let r = verify(&valid, &cpu::evaluate(&valid), Tolerance::CPU_F32).unwrap();
    assert!(r.passed(), "{r}");

    let strict = Evaluator::with_policy(Backend::Cpu, OnInvalid::Error).unwrap();
    match strict.evaluate(&pairs) {
        Ok(_) => assert!(valid.len() == pairs.len()),
        Err(Error::InvalidInput { index, .. }) => {
            assert_eq!(
                Some(index),
                pairs.iter().position(|p| check_pair(p).is_some())
            )
        }
        Err(e) => panic!("unexpected error {e}"),
    }

    let wide: Vec<GaussianPair64> = data
        .chunks_exact(32)
        .map(bytemuck::pod_read_unaligned)
        .collect();
    for (p, d) in wide.iter().zip(cpu::evaluate_f64(&wide)) {
        if check_pair_f64(p).is_some() {
            assert!(d.kl.is_nan());
        } else {
            assert!(d.kl >= 0.0 && !d.cross_entropy.is_nan(), "{p:?} -> {d:?}");
        }
    }
});
