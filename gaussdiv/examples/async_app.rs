//! gaussdiv inside an app that already runs an async runtime (tokio here):
//! `evaluate_async` awaits the GPU without blocking the executor, so other
//! tasks keep running while batches are in flight.
//!
//! ```text
//! cargo run --release --example async_app
//! ```

use gaussdiv::{Backend, Batch, Evaluator, GaussianPair, Options, Request, Tolerance};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let gpu = Arc::new(Evaluator::new_async(Backend::Gpu, Options::default()).await?);

    // A task that must stay responsive: it ticks every millisecond.
    let ticks = Arc::new(AtomicU64::new(0));
    let ticker = {
        let ticks = ticks.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_millis(1)).await;
                ticks.fetch_add(1, Ordering::Relaxed);
            }
        })
    };

    // Four batches evaluated concurrently on the shared evaluator.
    let mut jobs = Vec::new();
    for j in 0..4u32 {
        let gpu = gpu.clone();
        jobs.push(tokio::spawn(async move {
            let pairs: Vec<GaussianPair> = (0..500_000u32)
                .map(|i| {
                    let t = (i % 997) as f32 / 997.0;
                    GaussianPair::new(t * 4.0 - 2.0, 0.5 + t + j as f32, 1.0, 1.5)
                })
                .collect();
            let request = Request::default(); // cross-entropy, KL, entropy
            let mut out = vec![0f32; pairs.len() * request.values_per_pair()];
            gpu.evaluate_async(Batch::Pairs(&pairs), &request, &mut out)
                .await?;
            let report =
                gaussdiv::verify(Batch::Pairs(&pairs), &request, &out, Tolerance::GPU_F32)?;
            Ok::<_, gaussdiv::Error>((pairs.len(), report))
        }));
    }
    let mut failed = false;
    for (j, job) in jobs.into_iter().enumerate() {
        let (n, report) = job.await??;
        println!(
            "batch {j}: {n} pairs, worst error/bound {:.3}",
            report.worst_ratio()
        );
        failed |= !report.passed();
    }
    ticker.abort();
    println!(
        "the ticker task ran {} times meanwhile",
        ticks.load(Ordering::Relaxed)
    );
    if failed {
        return Err("results out of tolerance".into());
    }
    Ok(())
}
