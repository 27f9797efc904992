//! Throughput of the layouts beyond an array of pairs and of the gradients
//! (criterion), CPU and GPU: gradients of KL and cross-entropy (log-variance
//! inputs, the VAE case), the pairwise N × M matrix (device-resident on the
//! GPU) and diagonal multivariate rows (D = 16 and 1024).
//!
//! ```text
//! cargo bench --bench layouts                    # everything
//! cargo bench --bench layouts -- gradients       # one group
//! ```
//! GPU cases are skipped (with a message) when there is no adapter.

mod common;
use common::{configure, pairs};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use gaussdiv::{
    Backend, Batch, Evaluator, Gaussian, GaussianPair, Metric, Metrics, OnInvalid, Param, Request,
};

/// The evaluators to compare: the CPU and, when there is an adapter, the GPU.
fn evaluators() -> Vec<(&'static str, Evaluator)> {
    let mut v = vec![("cpu", Evaluator::new(Backend::Cpu).expect("cpu"))];
    match Evaluator::new(Backend::Gpu) {
        Ok(e) => v.push(("gpu", e)),
        Err(e) => eprintln!("skipping GPU cases: {e}"),
    }
    v
}

fn bench_gradients(c: &mut Criterion) {
    let n = 10_000_000;
    let all = pairs(n, true);
    let request = Request::gradients(Metrics::new(&[Metric::Kl]).expect("kl"))
        .with_param(Param::LogVar)
        .with_on_invalid(OnInvalid::Nan);
    let mut g = configure(c, "gradients_kl_logvar");
    g.throughput(Throughput::Elements(n as u64));
    let mut out = vec![0f32; n * request.values_per_pair()];
    for (name, ev) in evaluators() {
        g.bench_with_input(BenchmarkId::new(name, n), &n, |b, _| {
            b.iter(|| {
                ev.evaluate(Batch::Pairs(&all), &request, &mut out)
                    .expect("gradients")
            })
        });
    }
    g.finish();
}

fn bench_pairwise(c: &mut Criterion) {
    let (n, m) = (4000, 2500);
    let to_g = |v: Vec<GaussianPair>| -> Vec<Gaussian> {
        v.into_iter()
            .map(|p| Gaussian {
                mu: p.mu1,
                sigma: p.sigma1,
            })
            .collect()
    };
    let p = to_g(pairs(n, false));
    let q = to_g(pairs(m, false));
    let request =
        Request::measures(Metrics::new(&[Metric::Kl]).expect("kl")).with_on_invalid(OnInvalid::Nan);
    let mut out = vec![0f32; n * m];
    let mut g = configure(c, "pairwise_kl");
    g.throughput(Throughput::Elements((n * m) as u64));
    for (name, ev) in evaluators() {
        g.bench_with_input(BenchmarkId::new(name, n * m), &n, |b, _| {
            b.iter(|| {
                ev.evaluate(Batch::Pairwise { p: &p, q: &q }, &request, &mut out)
                    .expect("pairwise")
            })
        });
    }
    g.finish();
}

fn bench_diagonal(c: &mut Criterion) {
    let total = 8 << 20;
    let all = pairs(total, false);
    let request = Request::measures(Metrics::CE_KL).with_on_invalid(OnInvalid::Nan);
    let mut g = configure(c, "diagonal_ce_kl");
    g.throughput(Throughput::Elements(total as u64));
    for dims in [16usize, 1024] {
        let mut out = vec![0f32; total / dims * 2];
        for (name, ev) in evaluators() {
            g.bench_with_input(
                BenchmarkId::new(format!("{name}_d{dims}"), total),
                &dims,
                |b, &d| {
                    b.iter(|| {
                        ev.evaluate(
                            Batch::Diagonal {
                                pairs: &all,
                                dims: d,
                            },
                            &request,
                            &mut out,
                        )
                        .expect("diagonal")
                    })
                },
            );
        }
    }
    g.finish();
}

criterion_group!(benches, bench_gradients, bench_pairwise, bench_diagonal);
criterion_main!(benches);
