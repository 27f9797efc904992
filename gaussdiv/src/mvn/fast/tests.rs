//! The lane path's tests: its logarithm, and its agreement with the
//! scalar path.
use super::*;

mod ln {
    use super::super::ops::ln_lane;

    #[test]
    fn ln_lane_is_the_crate_logarithm() {
        for &x in &[
            1e-300,
            3.7e-23,
            0.5,
            1.0,
            std::f64::consts::SQRT_2,
            2.0,
            3.0,
            1e19,
            1e300,
        ] {
            assert_eq!(
                ln_lane(x).to_bits(),
                crate::math::ln(x).to_bits(),
                "x = {x}"
            );
        }
    }
}

mod agreement {
    //! The lane path against the scalar path's f64 evaluation of the same
    //! (exactly widened) inputs, on random pairs far apart and close
    //! together, every dimension class and both forms.
    use super::*;
    use crate::mvn::formulas::{evaluate, Need, Work};
    use crate::mvn::{Cells, Covariance, MvnPairs, Plan};

    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> f64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            (self.0 >> 11) as f64 / (1u64 << 53) as f64
        }
    }

    /// A random lower factor (diagonal e^U(−1,1), off-diagonal U(−½, ½)).
    fn factor(r: &mut Rng, d: usize) -> Vec<f64> {
        let mut l = vec![0.0; d * d];
        for i in 0..d {
            for j in 0..=i {
                l[i * d + j] = if i == j {
                    (2.0 * r.next() - 1.0).exp()
                } else {
                    r.next() - 0.5
                };
            }
        }
        l
    }

    fn gram(l: &[f64], d: usize) -> Vec<f64> {
        let mut s = vec![0.0; d * d];
        for i in 0..d {
            for j in 0..d {
                s[i * d + j] = (0..d).map(|k| l[i * d + k] * l[j * d + k]).sum();
            }
        }
        s
    }

    /// (cells, accepted, worst relative error of KL, reverse KL; CE on its scale).
    fn run<T: Float + crate::mvn::MvnReal>(
        d: usize,
        tril: [bool; 2],
        near: bool,
    ) -> (usize, usize, f64) {
        let n = 37;
        let mut r = Rng(0x2545_f491_4f6c_dd1d ^ (d as u64) << 8);
        let (mut mu1, mut m1, mut mu2, mut m2) = (vec![], vec![], vec![], vec![]);
        for _ in 0..n {
            let l1 = factor(&mut r, d);
            let l2 = if near {
                // L2 = L1·(I + small lower), relative 1e-3 … 1e-6.
                let eps = 10f64.powf(-3.0 - 3.0 * r.next());
                let mut p = l1.clone();
                for i in 0..d {
                    for j in 0..=i {
                        let mut s = 0.0;
                        for k in j..=i {
                            let g = if k == j { 1.0 } else { 0.0 } + eps * (r.next() - 0.5);
                            s += l1[i * d + k] * g;
                        }
                        p[i * d + j] = s;
                    }
                }
                p
            } else {
                factor(&mut r, d)
            };
            let m = (0..d).map(|_| 2.0 * r.next() - 1.0).collect::<Vec<_>>();
            mu1.extend(&m);
            mu2.extend(m.iter().map(|&x| if near { x } else { x + r.next() - 0.5 }));
            m1.extend(if tril[0] { l1.clone() } else { gram(&l1, d) });
            m2.extend(if tril[1] { l2 } else { gram(&l2, d) });
        }
        let cast = |v: &[f64]| v.iter().map(|&x| T::from_f64(x)).collect::<Vec<T>>();
        let (a, b, q, e) = (cast(&mu1), cast(&m1), cast(&mu2), cast(&m2));
        let cov = |t: bool, v| {
            if t {
                Covariance::ScaleTril(v)
            } else {
                Covariance::Cov(v)
            }
        };
        let pairs = MvnPairs {
            dims: d,
            mu1: &a,
            cov1: cov(tril[0], &b),
            mu2: &q,
            cov2: cov(tril[1], &e),
        };
        let sel = [
            idx::CROSS_ENTROPY,
            idx::KL,
            idx::REVERSE_KL,
            idx::JEFFREYS,
            idx::ENTROPY,
        ];
        let plan = Plan::new(Cells::Pairs(pairs), sel.len(), n * sel.len()).unwrap();
        let need = Need {
            kl: true,
            rkl: true,
            db: false,
            w2: false,
        };
        let mut lanes = Lanes::new::<T>(d, need.rkl);
        let mut out = vec![T::NAN; n * sel.len()];
        let mut accepted = 0;
        let mut worst = 0f64;
        let mut work = Work::<f64>::new(d);
        for c0 in (0..n).step_by(LANES) {
            let m = (n - c0).min(LANES);
            let rows = &mut out[c0 * sel.len()..(c0 + m) * sel.len()];
            let cells: Vec<usize> = (c0..c0 + m).collect();
            let done = lanes.run(&plan, &cells, true, &sel, rows);
            accepted += done.iter().take(m).filter(|&&ok| ok).count();
            for (l, &ok) in done.iter().enumerate().take(m) {
                if !ok {
                    continue;
                }
                let c = c0 + l;
                let w = |v: &[T], k: usize| {
                    v[c * k..(c + 1) * k]
                        .iter()
                        .map(|x| x.to_f64())
                        .collect::<Vec<f64>>()
                };
                let (wm1, wa1, wm2, wa2) = (w(&a, d), w(&b, d * d), w(&q, d), w(&e, d * d));
                let kind = |t: bool| if t { Kind::Tril } else { Kind::Cov };
                let s1 = Side {
                    kind: kind(tril[0]),
                    mu: &wm1,
                    m: &wa1,
                };
                let s2 = Side {
                    kind: kind(tril[1]),
                    mu: &wm2,
                    m: &wa2,
                };
                let truth = evaluate(
                    &mut work,
                    s1,
                    s2,
                    Need {
                        kl: true,
                        rkl: true,
                        db: false,
                        w2: false,
                    },
                )
                .unwrap();
                let got = &out[c * sel.len()..(c + 1) * sel.len()];
                let h0 = d as f64 * 1.4189385332046727;
                for (&j, g) in sel.iter().zip(got) {
                    let t = truth[j];
                    let scale = match j {
                        idx::CROSS_ENTROPY | idx::ENTROPY => h0 + t.abs() + truth[idx::KL],
                        _ => t.abs(),
                    };
                    let err = if t == 0.0 {
                        g.to_f64().abs()
                    } else {
                        (g.to_f64() - t).abs() / scale
                    };
                    worst = worst.max(err);
                }
            }
        }
        (n, accepted, worst)
    }

    #[test]
    fn lanes_agree_with_the_scalar_path() {
        for d in [1, 2, 3, 4, 5, 8, 11, 16] {
            for tril in [[false, false], [true, false], [false, true], [true, true]] {
                for near in [false, true] {
                    let (n, acc, worst) = run::<f32>(d, tril, near);
                    // f32 inputs: every valid pair is taken, close or far,
                    // and rounded once from f64 (≤ 2e-6 asked).
                    assert_eq!(acc, n, "f32 d={d} {tril:?} near={near}");
                    assert!(worst <= 2e-6, "f32 d={d} {tril:?} near={near}: {worst:e}");
                    let (n, acc, worst) = run::<f64>(d, tril, near);
                    // f64: the far pairs (KL's scale part ≥ ⅛), within 1e-12
                    // of the scalar path; close ones are left to it.
                    if near {
                        assert_eq!(acc, 0, "f64 d={d} {tril:?} near");
                    } else {
                        assert!(acc * 2 >= n, "f64 d={d} {tril:?}: {acc} of {n}");
                        assert!(worst <= 1e-12, "f64 d={d} {tril:?}: {worst:e}");
                    }
                }
            }
        }
    }
}
