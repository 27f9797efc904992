//! Evaluate a batch on the GPU, verify it against the CPU f64 reference,
//! print the worst error. Exits non-zero if any result is out of tolerance.
//!
//! ```text
//! cargo run --release --example quickstart
//! ```

use gaussdiv::{Backend, Batch, Divergences, Evaluator, GaussianPair, Metric, Request, Tolerance};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // A batch mixing ordinary pairs with the cases textbook formulas get wrong.
    let mut pairs = Vec::new();
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state >> 11) as f64 / (1u64 << 53) as f64
    };
    for i in 0..1_000_000 {
        let mu1 = (next() * 20.0 - 10.0) as f32;
        let s1 = 10f64.powf(next() * 6.0 - 3.0) as f32;
        let pair = match i % 4 {
            // near-equal scales
            0 => GaussianPair::new(mu1, s1, mu1, s1 * (1.0 + 1e-6 * next() as f32)),
            // tiny mean difference
            1 => GaussianPair::new(mu1, s1, mu1 + s1 * 1e-4, s1),
            // extreme scale ratio
            2 => GaussianPair::new(mu1, s1 * 1e-20, 0.0, s1),
            _ => GaussianPair::new(
                mu1,
                s1,
                (next() * 20.0 - 10.0) as f32,
                10f64.powf(next() * 6.0 - 3.0) as f32,
            ),
        };
        pairs.push(pair);
    }

    let gpu = Evaluator::new(Backend::Gpu)?;
    if let Some(a) = gpu.gpu_info().and_then(|info| info.adapter) {
        println!("adapter: {a}");
    }
    // Cross-entropy, KL and entropy (the default request): three values per
    // pair, the layout of `Divergences`.
    let request = Request::default();
    let mut out = vec![0f32; pairs.len() * request.values_per_pair()];
    gpu.evaluate(Batch::Pairs(&pairs), &request, &mut out)?;
    let divergences: &[Divergences] = bytemuck::cast_slice(&out);
    println!("first pair: {:?} -> {:?}", pairs[3], divergences[3]);

    let report = gaussdiv::verify(Batch::Pairs(&pairs), &request, &out, Tolerance::GPU_F32)?;
    print!("{report}");
    if let Some(kl) = report.metric(Metric::Kl).and_then(|m| m.worst) {
        println!(
            "worst KL relative error: {:.3e} (row {})",
            kl.error, kl.index
        );
    }
    if !report.passed() {
        return Err("results out of tolerance".into());
    }
    Ok(())
}
