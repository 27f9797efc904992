//! Latency figures: cold start (new evaluator + first call of 1 000 pairs),
//! one pair on a warm GPU evaluator, one pair on the CPU (invalid input an
//! error, the default, and NaN).
//!
//! ```text
//! cargo run --release --example latency -- --empty-cache   # Mesa's shader cache disabled
//! cargo run --release --example latency
//! ```

use gaussdiv::{Backend, Batch, Evaluator, GaussianPair, Metrics, OnInvalid, Request};
use std::time::Instant;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    if std::env::args().any(|a| a == "--empty-cache") {
        // Before any thread or instance exists: Mesa reads it at instance creation.
        std::env::set_var("MESA_SHADER_CACHE_DISABLE", "true");
    }
    if std::env::var_os("XDG_RUNTIME_DIR").is_none() {
        std::env::set_var("XDG_RUNTIME_DIR", std::env::temp_dir());
    }
    let pairs: Vec<GaussianPair> = (0..1000)
        .map(|i| GaussianPair::new(i as f32 * 0.01, 1.0 + i as f32 * 0.001, 0.5, 2.0))
        .collect();

    let t = Instant::now();
    let gpu = Evaluator::new(Backend::Gpu)?;
    let built = t.elapsed().as_secs_f64();
    let request = Request::default(); // cross-entropy, KL, entropy
    let mut out = vec![0f32; pairs.len() * request.values_per_pair()];
    gpu.evaluate(Batch::Pairs(&pairs), &request, &mut out)?;
    let cold = t.elapsed().as_secs_f64();
    assert_eq!(out.len(), 3000);
    println!(
        "cold start: new evaluator {:.1} ms + first call of 1000 pairs = {:.1} ms (shader cache {})",
        built * 1e3,
        cold * 1e3,
        if std::env::var_os("MESA_SHADER_CACHE_DISABLE").is_some() { "disabled" } else { "enabled" }
    );

    let one = Batch::Pairs(&pairs[..1]);
    let ce_kl = Request::measures(Metrics::CE_KL);
    let mut out1 = [0f32; 2];
    let mut t_gpu = Vec::new();
    for _ in 0..300 {
        let s = Instant::now();
        gpu.evaluate(one, &ce_kl, &mut out1)?;
        t_gpu.push(s.elapsed().as_secs_f64());
    }
    let ev = Evaluator::new(Backend::Cpu)?;
    let mut t_cpu = Vec::new();
    for _ in 0..10_000 {
        let s = Instant::now();
        ev.evaluate(one, &ce_kl, &mut out1)?;
        t_cpu.push(s.elapsed().as_secs_f64());
    }
    let ce_kl_nan = ce_kl.with_on_invalid(OnInvalid::Nan);
    let mut t_raw = Vec::new();
    for _ in 0..10_000 {
        let s = Instant::now();
        ev.evaluate(one, &ce_kl_nan, &mut out1)?;
        t_raw.push(s.elapsed().as_secs_f64());
    }
    println!(
        "warm GPU evaluator, 1 pair: median {:.1} us",
        median(t_gpu) * 1e6
    );
    println!(
        "CPU backend (invalid input an error), 1 pair: median {:.2} us",
        median(t_cpu) * 1e6
    );
    println!(
        "CPU backend (invalid input NaN), 1 pair: median {:.2} us",
        median(t_raw) * 1e6
    );
    Ok(())
}
