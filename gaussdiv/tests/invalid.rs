//! Invalid-input semantics on every path: any f32/f64 bit pattern in any
//! field either evaluates correctly or is reported (error policy: the first
//! invalid row; NaN policy: NaN), and under the NaN policy every valid row is
//! bit-identical to its result in a run without the invalid rows.
mod common;
use common::*;
use gaussdiv::{
    Divergences, Error, Evaluator, Field, GaussianPair, GaussianPair64, OnInvalid, Param, Request,
};
use proptest::prelude::*;

/// Why a pair given by σ is invalid (the evaluators' check), or `None`.
fn check_pair(p: &GaussianPair) -> Option<(Field, &'static str)> {
    p.invalid_field(Param::Std)
}

/// The same for an f64 pair.
fn check_pair_f64(p: &GaussianPair64) -> Option<(Field, &'static str)> {
    p.invalid_field(Param::Std)
}

/// Cross-entropy, KL and entropy of every pair under the invalid-input policy `policy`.
fn evaluate(
    ev: &Evaluator,
    pairs: &[GaussianPair],
    policy: OnInvalid,
) -> gaussdiv::Result<Vec<Divergences>> {
    let out = eval(ev, pairs, &Request::default().with_on_invalid(policy))?;
    Ok(bytemuck::cast_slice(&out).to_vec())
}

/// Rows mixing arbitrary bit patterns (invalid ones included) and ordinary pairs.
fn rows() -> impl Strategy<Value = Vec<GaussianPair>> {
    let any_bits = any::<[u32; 4]>().prop_map(|b| {
        GaussianPair::new(
            f32::from_bits(b[0]),
            f32::from_bits(b[1]),
            f32::from_bits(b[2]),
            f32::from_bits(b[3]),
        )
    });
    let ordinary = (-10f32..10.0, 0.01f32..10.0, -10f32..10.0, 0.01f32..10.0)
        .prop_map(|(a, b, c, d)| GaussianPair::new(a, b, c, d));
    let specials = prop::sample::select(vec![
        0.0f32,
        -0.0,
        f32::NAN,
        f32::INFINITY,
        f32::NEG_INFINITY,
        -1.0,
        f32::MIN_POSITIVE,
        1e-45,
        f32::MAX,
    ]);
    let one_special = (ordinary.clone(), 0usize..4, specials).prop_map(|(mut p, i, v)| {
        match i {
            0 => p.mu1 = v,
            1 => p.sigma1 = v,
            2 => p.mu2 = v,
            _ => p.sigma2 = v,
        }
        p
    });
    prop::collection::vec(prop_oneof![any_bits, ordinary, one_special], 0..200)
}

fn same_bits(a: &gaussdiv::Divergences, b: &gaussdiv::Divergences) -> bool {
    a.cross_entropy.to_bits() == b.cross_entropy.to_bits()
        && a.kl.to_bits() == b.kl.to_bits()
        && a.entropy.to_bits() == b.entropy.to_bits()
}

fn check_policies(
    pairs: &[GaussianPair],
    strict: &dyn Fn(&[GaussianPair]) -> gaussdiv::Result<Vec<gaussdiv::Divergences>>,
    lenient: &dyn Fn(&[GaussianPair]) -> gaussdiv::Result<Vec<gaussdiv::Divergences>>,
) -> Result<(), TestCaseError> {
    let first_bad = pairs.iter().position(|p| check_pair(p).is_some());
    match (strict(pairs), first_bad) {
        (Ok(out), None) => prop_assert_eq!(out.len(), pairs.len()),
        (Err(Error::InvalidInput { index, field, .. }), Some(i)) => {
            prop_assert_eq!(index, i);
            prop_assert_eq!(Some(field), check_pair(&pairs[i]).map(|(f, _)| f));
        }
        (other, i) => prop_assert!(
            false,
            "first invalid {:?}, got {:?}",
            i,
            other.map(|v| v.len())
        ),
    }
    let out = lenient(pairs).unwrap();
    let valid: Vec<GaussianPair> = pairs
        .iter()
        .copied()
        .filter(|p| check_pair(p).is_none())
        .collect();
    let clean = lenient(&valid).unwrap();
    let mut j = 0;
    for (p, d) in pairs.iter().zip(&out) {
        if check_pair(p).is_some() {
            prop_assert!(d.kl.is_nan() && d.cross_entropy.is_nan() && d.entropy.is_nan());
        } else {
            prop_assert!(
                same_bits(d, &clean[j]),
                "{:?}: {:?} vs {:?}",
                p,
                d,
                clean[j]
            );
            j += 1;
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn cpu_policies(pairs in rows()) {
        let ev = cpu();
        check_policies(
            &pairs,
            &|p| evaluate(ev, p, OnInvalid::Error),
            &|p| evaluate(ev, p, OnInvalid::Nan),
        )?;
    }

    #[test]
    fn f64_path_any_bits(bits in prop::collection::vec(any::<[u64; 4]>(), 0..100)) {
        let pairs: Vec<GaussianPair64> = bits.iter().map(|b| GaussianPair64 {
            mu1: f64::from_bits(b[0]), sigma1: f64::from_bits(b[1]), mu2: f64::from_bits(b[2]), sigma2: f64::from_bits(b[3]) }).collect();
        // The NaN policy: every row evaluated, invalid ones NaN.
        let lenient = Request::default().with_on_invalid(OnInvalid::Nan);
        let out: Vec<gaussdiv::Divergences64> =
            bytemuck::cast_slice(&eval(cpu(), &pairs, &lenient).unwrap()).to_vec();
        for (p, d) in pairs.iter().zip(&out) {
            if check_pair_f64(p).is_some() {
                prop_assert!(d.kl.is_nan());
            } else {
                prop_assert!(d.kl >= 0.0 && !d.kl.is_nan() && !d.entropy.is_nan());
            }
        }
        // The error policy: the first invalid row, by index.
        match eval(cpu(), &pairs, &Request::default()) {
            Ok(_) => prop_assert!(pairs.iter().all(|p| check_pair_f64(p).is_none())),
            Err(Error::InvalidInput { index, .. }) => prop_assert_eq!(Some(index), pairs.iter().position(|p| check_pair_f64(p).is_some())),
            Err(e) => prop_assert!(false, "{e}"),
        }
    }
}

#[test]
fn gpu_policies() {
    let Some(gpu) = gpu() else { return };
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig {
        cases: 60,
        failure_persistence: None,
        ..ProptestConfig::default()
    });
    runner
        .run(&rows(), |pairs| {
            check_policies(&pairs, &|p| evaluate(gpu, p, OnInvalid::Error), &|p| {
                evaluate(gpu, p, OnInvalid::Nan)
            })
        })
        .unwrap();
}
