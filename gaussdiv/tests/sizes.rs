//! GPU results equal the CPU f64 reference for sizes around every boundary:
//! 0, 1, workgroup ± 1, one binding's worth ± 1 (8 388 608 pairs of 16 B on
//! lavapipe's 128 MiB), more than 65535 × workgroup in one dispatch, and
//! several chunks.
mod common;
use common::*;
use gaussdiv::{verify, Batch, Evaluator, Options, Request, Tolerance};

const SIZES: [usize; 9] = [
    0, 1, 255, 256, 257, 8_388_607, 8_388_608, 8_388_609, 20_000_000,
];

fn check(gpu: &Evaluator, pairs: &[gaussdiv::GaussianPair], label: &str) {
    let out = divergences(gpu, pairs).unwrap();
    assert_eq!(out.len(), pairs.len());
    let report = verify(
        Batch::Pairs(pairs),
        &Request::default(),
        bytemuck::cast_slice(&out),
        Tolerance::GPU_F32,
    )
    .unwrap();
    println!(
        "{label} n={}: worst/bound {:.3}",
        pairs.len(),
        report.worst_ratio()
    );
    assert!(report.passed(), "{label} n={}: {report}", pairs.len());
}

#[test]
fn sizes_around_every_boundary() {
    let Some(shared) = gpu() else { return };
    let all = random_pairs(*SIZES.iter().max().unwrap(), 42);
    // Default chunking (256 Ki pairs per host chunk, two in flight).
    let (device, queue) = shared.device().unwrap();
    let default = Evaluator::from_device(&device, &queue, Options::default()).unwrap();
    // Chunks as large as one binding allows (the output of every measure,
    // 40 B per pair, must fit one), and a small workgroup so that a single
    // dispatch needs more than 65535 workgroups (a 2-D grid).
    let widest = Evaluator::from_device(
        &device,
        &queue,
        Options {
            max_chunk_pairs: u64::MAX,
            host_chunk_pairs: u64::MAX,
            workgroup_size: 32,
            ..Default::default()
        },
    )
    .unwrap();
    let info = widest.gpu_info().unwrap();
    let binding_pairs = info.max_binding_bytes / 16;
    println!(
        "adapter binding limit {} bytes = {} pairs; widest chunk {} pairs; workgroup 32",
        info.max_binding_bytes, binding_pairs, info.host_chunk_pairs,
    );
    if binding_pairs * 16 / 40 >= 65536 * 32 {
        assert!(
            info.host_chunk_pairs.div_ceil(32) > 65535,
            "one full chunk must need a 2-D grid of workgroups"
        );
    }
    for &n in &SIZES {
        check(&default, &all[..n], "default chunks");
        check(&widest, &all[..n], "binding-sized chunks, workgroup 32");
    }
    // Exactly the adapter's own binding boundary, whatever it is.
    for n in [
        binding_pairs as usize - 1,
        binding_pairs as usize,
        binding_pairs as usize + 1,
    ] {
        if n <= all.len() {
            check(&widest, &all[..n], "adapter binding boundary");
        }
    }
}
