//! One evaluator shared by many threads (and by async tasks on a
//! multi-threaded executor): every call gets exactly its own results, in
//! order, within a bounded time.
//!
//! CI runs a scaled-down load; the full one (8 threads × 100 calls of 0 to
//! 3 000 000 pairs) runs with `GAUSSDIV_FULL_LOAD=1`:
//! `GAUSSDIV_FULL_LOAD=1 cargo test --release --test concurrency -- --nocapture`
mod common;
use common::*;
use gaussdiv::{verify, Batch, Divergences, Evaluator, GaussianPair, Options, Request, Tolerance};
use std::time::{Duration, Instant};

fn load() -> (usize, usize, usize) {
    if std::env::var("GAUSSDIV_FULL_LOAD").as_deref() == Ok("1") {
        (8, 100, 3_000_000)
    } else {
        (8, 12, 300_000)
    }
}

fn check(pairs: &[GaussianPair], out: &[Divergences], what: &str) {
    assert_eq!(out.len(), pairs.len(), "{what}");
    let r = verify(
        Batch::Pairs(pairs),
        &Request::default(),
        bytemuck::cast_slice(out),
        Tolerance::GPU_F32,
    )
    .unwrap();
    assert!(r.passed(), "{what}: {r}");
}

#[test]
fn one_evaluator_many_threads() {
    let Some(shared) = gpu() else { return };
    let (device, queue) = shared.device().unwrap();
    let ev = Evaluator::from_device(&device, &queue, Options::default()).unwrap();
    let (threads, calls, max_n) = load();
    let t0 = Instant::now();
    let total: usize = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let ev = &ev;
                s.spawn(move || {
                    let mut rng = Rng(0xabcdef + t as u64);
                    let mut done = 0;
                    for c in 0..calls {
                        let n = (rng.next_u64() % (max_n as u64 + 1)) as usize;
                        let pairs = random_pairs(n, rng.next_u64());
                        let out = divergences(ev, &pairs).unwrap();
                        check(&pairs, &out, &format!("thread {t} call {c} n={n}"));
                        done += n;
                    }
                    done
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).sum()
    });
    let secs = t0.elapsed().as_secs_f64();
    println!("{threads} threads × {calls} calls: {total} pairs in {secs:.1} s, all verified");
    assert!(t0.elapsed() < Duration::from_secs(600), "bounded time");
}

#[test]
fn async_api_on_a_multi_threaded_executor() {
    let Some(shared) = gpu() else { return };
    let (device, queue) = shared.device().unwrap();
    let ev =
        std::sync::Arc::new(Evaluator::from_device(&device, &queue, Options::default()).unwrap());
    let (tasks, calls, max_n) = load();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .build()
        .unwrap();
    let t0 = Instant::now();
    let total: usize = rt.block_on(async {
        let mut handles = Vec::new();
        for t in 0..tasks {
            let ev = ev.clone();
            handles.push(tokio::spawn(async move {
                let mut rng = Rng(0x1234 + t as u64);
                let mut done = 0;
                for c in 0..calls {
                    let n = (rng.next_u64() % (max_n as u64 + 1)) as usize;
                    let pairs = random_pairs(n, rng.next_u64());
                    let mut out = vec![Divergences::default(); n];
                    ev.evaluate_async(
                        Batch::Pairs(&pairs),
                        &Request::default(),
                        bytemuck::cast_slice_mut(&mut out),
                    )
                    .await
                    .unwrap();
                    check(&pairs, &out, &format!("task {t} call {c} n={n}"));
                    done += n;
                }
                done
            }));
        }
        let mut sum = 0;
        for h in handles {
            sum += h.await.unwrap();
        }
        sum
    });
    println!(
        "{tasks} async tasks × {calls} calls: {total} pairs in {:.1} s, all verified",
        t0.elapsed().as_secs_f64()
    );
}
