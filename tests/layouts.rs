//! Pairwise (N × M) and broadcast layouts equal the per-pair path, on the
//! CPU and the GPU, for every measure and parameterisation.
mod common;
use common::*;
use gaussdiv::layout::{broadcast_p_with, broadcast_q_with, pairwise_with};
use gaussdiv::{
    Backend, EvalOptions, Evaluator, Gaussian, GaussianPair, Metrics, OnInvalid, Param,
};

fn gaussians(n: usize, seed: u64) -> Vec<Gaussian> {
    random_pairs(n, seed)
        .into_iter()
        .map(|p| Gaussian {
            mu: p.mu1,
            sigma: p.sigma1,
        })
        .collect()
}

fn per_pair(ev: &Evaluator, p: &[Gaussian], q: &[Gaussian], options: EvalOptions) -> Vec<f32> {
    let pairs: Vec<GaussianPair> = p
        .iter()
        .flat_map(|a| q.iter().map(move |b| GaussianPair::from_gaussians(*a, *b)))
        .collect();
    let mut out = vec![0f32; pairs.len() * options.metrics.len()];
    ev.evaluate_with(&pairs, options, &mut out).unwrap();
    out
}

fn check(ev: &Evaluator, label: &str) {
    for (n, m) in [(0, 5), (5, 0), (1, 1), (37, 53), (3, 700_000), (1500, 1000)] {
        let p = gaussians(n, 1 + n as u64);
        let q = gaussians(m, 2 + m as u64);
        for options in [
            EvalOptions::new(Metrics::CE_KL, Param::Std),
            EvalOptions::new(Metrics::EVERY, Param::Std),
        ] {
            let k = options.metrics.len();
            let mut out = vec![0f32; n * m * k];
            pairwise_with(ev, &p, &q, options, &mut out).unwrap();
            let want = per_pair(ev, &p, &q, options);
            assert_eq!(
                bytemuck::cast_slice::<f32, u32>(&out),
                bytemuck::cast_slice::<f32, u32>(&want),
                "{label}: {n} × {m}"
            );
        }
    }
    // Broadcast: many p against the prior N(0, 1), one p against many q.
    let p = gaussians(100_001, 7);
    let prior = Gaussian {
        mu: 0.0,
        sigma: 1.0,
    };
    let options = EvalOptions::from(Metrics::CE_KL);
    let mut out = vec![0f32; p.len() * 2];
    broadcast_q_with(ev, &p, prior, options, &mut out).unwrap();
    assert_eq!(
        out,
        per_pair(ev, &p, &[prior], options),
        "{label}: broadcast q"
    );
    let mut out = vec![0f32; p.len() * 2];
    broadcast_p_with(ev, prior, &p, options, &mut out).unwrap();
    assert_eq!(
        out,
        per_pair(ev, &[prior], &p, options),
        "{label}: broadcast p"
    );
    // Wrong output length and invalid input are errors; the index is the cell's.
    let mut short = vec![0f32; 3];
    assert!(pairwise_with(ev, &p[..2], &p[..2], options, &mut short).is_err());
}

#[test]
fn pairwise_and_broadcast_cpu() {
    let ev = Evaluator::with_policy(Backend::Cpu, OnInvalid::Error).unwrap();
    check(&ev, "cpu");
    let mut p = gaussians(10, 3);
    p[4].sigma = -1.0;
    let q = gaussians(7, 4);
    let mut out = vec![0f32; 70 * 2];
    match pairwise_with(&ev, &p, &q, Metrics::CE_KL.into(), &mut out) {
        Err(gaussdiv::Error::InvalidInput { index, .. }) => assert_eq!(index, 4 * 7),
        other => panic!("{other:?}"),
    }
}

#[test]
fn pairwise_and_broadcast_gpu() {
    if gpu().is_none() {
        return;
    }
    let ev = Evaluator::with_policy(Backend::Gpu, OnInvalid::Error).unwrap();
    check(&ev, "gpu");
}
