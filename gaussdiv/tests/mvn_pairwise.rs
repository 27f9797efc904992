//! Full-covariance pairwise N × M (`Batch::MvnPairwise`, issue 15): every
//! cell equals the pair layout on the same two Gaussians bit for bit (both
//! precisions, mixed forms, sizes around the 64-cell task), an invalid
//! Gaussian is named by its index in its own set, the NaN policy blanks
//! exactly its row or column, and mismatched sets are refused.
use gaussdiv::{
    Backend, Batch, Covariance, Error, Evaluator, Float, Metrics, MvnPairs, MvnSet, OnInvalid,
    Request,
};

/// `n` Gaussians of dimension `d`: means and covariances L·Lᵀ (f64).
fn set(n: usize, d: usize, seed: u64) -> (Vec<f64>, Vec<f64>) {
    let mut s = seed;
    let mut next = move || {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        (s >> 11) as f64 / (1u64 << 53) as f64
    };
    let mut mu = Vec::new();
    let mut cov = Vec::new();
    for _ in 0..n {
        let mut l = vec![0.0; d * d];
        for i in 0..d {
            for j in 0..=i {
                l[i * d + j] = if i == j { 0.3 + next() } else { next() - 0.5 };
            }
            mu.push(next() * 4.0 - 2.0);
        }
        for i in 0..d {
            for j in 0..d {
                cov.push((0..d).map(|k| l[i * d + k] * l[j * d + k]).sum());
            }
        }
    }
    (mu, cov)
}

fn cast<T: Float>(v: &[f64], f: fn(f64) -> T) -> Vec<T> {
    v.iter().map(|&x| f(x)).collect()
}

/// The lower Cholesky factors of `cov` (f64, then cast): a `scale_tril` side.
fn tril(cov: &[f64], d: usize) -> Vec<f64> {
    let mut out = vec![0.0; cov.len()];
    for (a, l) in cov.chunks(d * d).zip(out.chunks_mut(d * d)) {
        for j in 0..d {
            let s: f64 = (0..j).map(|k| l[j * d + k] * l[j * d + k]).sum();
            l[j * d + j] = (a[j * d + j] - s).sqrt();
            for i in j + 1..d {
                let s: f64 = (0..j).map(|k| l[i * d + k] * l[j * d + k]).sum();
                l[i * d + j] = (a[i * d + j] - s) / l[j * d + j];
            }
        }
    }
    out
}

fn check<T: Float>(f: fn(f64) -> T, np: usize, nq: usize, d: usize) {
    let (mp, cp) = set(np, d, 0x51ed_270b_2f0a_9c11 ^ np as u64);
    let (mq, cq) = set(nq, d, 0x2545_f491_4f6c_dd1d ^ nq as u64);
    let lq = tril(&cq, d);
    let (mp, cp, mq, lq) = (cast(&mp, f), cast(&cp, f), cast(&mq, f), cast(&lq, f));
    let ev = Evaluator::new(Backend::Cpu).unwrap();
    let request = Request::measures(Metrics::ALL);
    let k = request.values_per_pair();
    let mut got = vec![T::default(); np * nq * k];
    let p = MvnSet {
        dims: d,
        mu: &mp,
        cov: Covariance::Cov(&cp),
    };
    let q = MvnSet {
        dims: d,
        mu: &mq,
        cov: Covariance::ScaleTril(&lq),
    };
    ev.evaluate(Batch::MvnPairwise { p, q }, &request, &mut got)
        .unwrap();
    // The same cells as pairs, formed by hand.
    let (mut mu1, mut c1, mut mu2, mut c2) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for i in 0..np {
        for j in 0..nq {
            mu1.extend_from_slice(&mp[i * d..(i + 1) * d]);
            c1.extend_from_slice(&cp[i * d * d..(i + 1) * d * d]);
            mu2.extend_from_slice(&mq[j * d..(j + 1) * d]);
            c2.extend_from_slice(&lq[j * d * d..(j + 1) * d * d]);
        }
    }
    let mut want = vec![T::default(); got.len()];
    let pairs = MvnPairs {
        dims: d,
        mu1: &mu1,
        cov1: Covariance::Cov(&c1),
        mu2: &mu2,
        cov2: Covariance::ScaleTril(&c2),
    };
    ev.evaluate(Batch::Mvn(pairs), &request, &mut want).unwrap();
    let bits =
        |v: &[T]| -> Vec<u64> { v.iter().map(|&x| Into::<f64>::into(x).to_bits()).collect() };
    assert_eq!(bits(&got), bits(&want), "{np} x {nq}, d = {d}");
}

#[test]
fn cells_equal_the_pair_layout() {
    for (np, nq, d) in [
        (1, 1, 1),
        (3, 5, 2),
        (7, 10, 3),
        (9, 8, 4),
        (2, 33, 6),
        (65, 1, 3),
        (1, 129, 2),
    ] {
        check::<f32>(|x| x as f32, np, nq, d);
        check::<f64>(|x| x, np, nq, d);
    }
}

#[test]
fn invalid_gaussian_is_named_by_its_set_index() {
    let d = 3;
    let (mp, mut cp) = set(4, d, 11);
    let (mq, mut cq) = set(6, d, 12);
    // q's Gaussian 4 is not positive definite.
    cq[4 * 9..5 * 9].copy_from_slice(&[1.0, 2.0, 0.0, 2.0, 1.0, 0.0, 0.0, 0.0, 1.0]);
    let ev = Evaluator::new(Backend::Cpu).unwrap();
    let run = |cp: &[f64], cq: &[f64], policy| {
        let request = Request::measures(Metrics::CE_KL).with_on_invalid(policy);
        let mut out = vec![0.0; 4 * 6 * 2];
        let p = MvnSet {
            dims: d,
            mu: &mp,
            cov: Covariance::Cov(cp),
        };
        let q = MvnSet {
            dims: d,
            mu: &mq,
            cov: Covariance::Precision(cq),
        };
        ev.evaluate(Batch::MvnPairwise { p, q }, &request, &mut out)
            .map(|_| out)
    };
    match run(&cp, &cq, OnInvalid::Error) {
        Err(Error::InvalidMatrix {
            index,
            array,
            reason,
        }) => {
            assert_eq!((index, array), (4, "precision2"), "{reason}");
            assert!(reason.contains("pivot"), "{reason}");
        }
        other => panic!("{other:?}"),
    }
    let out = run(&cp, &cq, OnInvalid::Nan).unwrap();
    for (c, row) in out.chunks(2).enumerate() {
        assert_eq!(
            row.iter().all(|x| x.is_nan()),
            c % 6 == 4,
            "cell {c}: {row:?}"
        );
    }
    // p's Gaussian 2 with a NaN entry: named as p's (cov1), index 2.
    cp[2 * 9 + 4] = f64::NAN;
    cq.copy_from_slice(&set(6, d, 12).1);
    match run(&cp, &cq, OnInvalid::Error) {
        Err(Error::InvalidMatrix { index, array, .. }) => assert_eq!((index, array), (2, "cov1")),
        other => panic!("{other:?}"),
    }
}

#[test]
fn mismatched_sets_are_refused() {
    let (m3, c3) = set(2, 3, 5);
    let (m2, c2) = set(2, 2, 6);
    let ev = Evaluator::new(Backend::Cpu).unwrap();
    let request = Request::measures(Metrics::CE_KL);
    let p = MvnSet {
        dims: 3,
        mu: &m3,
        cov: Covariance::Cov(&c3),
    };
    let q = MvnSet {
        dims: 2,
        mu: &m2,
        cov: Covariance::Cov(&c2),
    };
    let mut out = vec![0.0; 8];
    assert!(matches!(
        ev.evaluate(Batch::MvnPairwise { p, q }, &request, &mut out),
        Err(Error::Unsupported(_))
    ));
    let q = MvnSet {
        dims: 3,
        mu: &m3,
        cov: Covariance::Cov(&c3[..17]),
    };
    assert!(matches!(
        ev.evaluate(Batch::MvnPairwise { p, q }, &request, &mut out),
        Err(Error::LengthMismatch { what: "cov2", .. })
    ));
    let q = MvnSet {
        dims: 3,
        mu: &m3,
        cov: Covariance::Cov(&c3),
    };
    let mut short = vec![0.0; 7];
    assert!(matches!(
        ev.evaluate(Batch::MvnPairwise { p, q }, &request, &mut short),
        Err(Error::LengthMismatch { .. })
    ));
    let mut empty: Vec<f64> = Vec::new();
    let none = MvnSet {
        dims: 3,
        mu: &[],
        cov: Covariance::Cov(&[]),
    };
    ev.evaluate(Batch::MvnPairwise { p, q: none }, &request, &mut empty)
        .unwrap();
    if let Ok(gpu) = Evaluator::new(Backend::Gpu) {
        // The GPU path refuses the same mismatch and evaluates the valid
        // sets as the CPU does (f64 bounds).
        let q2 = MvnSet {
            dims: 2,
            mu: &m2,
            cov: Covariance::Cov(&c2),
        };
        assert!(matches!(
            gpu.evaluate(Batch::MvnPairwise { p, q: q2 }, &request, &mut out),
            Err(Error::Unsupported(_))
        ));
        let mut want = vec![0.0; 8];
        ev.evaluate(Batch::MvnPairwise { p, q }, &request, &mut want)
            .unwrap();
        gpu.evaluate(Batch::MvnPairwise { p, q }, &request, &mut out)
            .unwrap();
        for (g, w) in out.iter().zip(&want) {
            assert!(
                (g - w).abs() <= 1e-12 * w.abs().max(3.0 * 1.4189),
                "{g} {w}"
            );
        }
    }
}
