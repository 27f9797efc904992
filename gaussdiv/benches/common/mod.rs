//! Inputs and settings shared by the criterion benches.
#![allow(dead_code)]

use criterion::Criterion;
use gaussdiv::GaussianPair;

/// `n` reproducible pairs: μ uniform in [−10, 10], σ log-uniform in
/// [1e-2, 1e2]; with `log_var` the scales are given as ln σ².
pub fn pairs(n: usize, log_var: bool) -> Vec<GaussianPair> {
    let mut s = 0x9e37_79b9_7f4a_7c15u64;
    let mut u = move || {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        (s >> 11) as f64 / (1u64 << 53) as f64
    };
    let a = |x: f64| if log_var { 2.0 * x.ln() } else { x };
    (0..n)
        .map(|_| {
            GaussianPair::new(
                (u() * 20.0 - 10.0) as f32,
                a(10f64.powf(u() * 4.0 - 2.0)) as f32,
                (u() * 20.0 - 10.0) as f32,
                a(10f64.powf(u() * 4.0 - 2.0)) as f32,
            )
        })
        .collect()
}

/// A group with few samples and short times (the machine is small and shared).
pub fn configure<'a>(
    c: &'a mut Criterion,
    name: &str,
) -> criterion::BenchmarkGroup<'a, criterion::measurement::WallTime> {
    let mut g = c.benchmark_group(name);
    g.sample_size(10);
    g.warm_up_time(std::time::Duration::from_millis(500));
    g.measurement_time(std::time::Duration::from_secs(2));
    g
}
