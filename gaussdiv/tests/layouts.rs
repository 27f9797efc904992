//! Pairwise (N × M) and broadcast layouts equal the per-pair path, on the
//! CPU and the GPU, for every measure and parameterisation; so do four
//! columns (structure of arrays) on the CPU, invalid pairs included.
mod common;
use common::*;
use gaussdiv::{
    Backend, Batch, DeviceBatch, DeviceInput, Error, Evaluator, Gaussian, GaussianPair, Metric,
    Metrics, OnInvalid, Param, Request,
};

/// Every p_i against every q_j (N·M cells, row-major) into `out`.
fn pairwise_with(
    ev: &Evaluator,
    p: &[Gaussian],
    q: &[Gaussian],
    request: Request,
    out: &mut [f32],
) -> gaussdiv::Result<()> {
    ev.evaluate(Batch::Pairwise { p, q }, &request, out)
}

/// Many p against one q (`Batch::Pairwise` with M = 1).
fn broadcast_q_with(
    ev: &Evaluator,
    p: &[Gaussian],
    q: Gaussian,
    request: Request,
    out: &mut [f32],
) -> gaussdiv::Result<()> {
    pairwise_with(ev, p, &[q], request, out)
}

/// One p against many q (`Batch::Pairwise` with N = 1).
fn broadcast_p_with(
    ev: &Evaluator,
    p: Gaussian,
    q: &[Gaussian],
    request: Request,
    out: &mut [f32],
) -> gaussdiv::Result<()> {
    pairwise_with(ev, &[p], q, request, out)
}

fn gaussians(n: usize, seed: u64) -> Vec<Gaussian> {
    random_pairs(n, seed)
        .into_iter()
        .map(|p| Gaussian {
            mu: p.mu1,
            sigma: p.sigma1,
        })
        .collect()
}

fn per_pair(ev: &Evaluator, p: &[Gaussian], q: &[Gaussian], options: Request) -> Vec<f32> {
    let pairs: Vec<GaussianPair> = p
        .iter()
        .flat_map(|a| {
            q.iter()
                .map(move |b| GaussianPair::new(a.mu, a.sigma, b.mu, b.sigma))
        })
        .collect();
    let mut out = vec![0f32; pairs.len() * options.values_per_pair()];
    ev.evaluate(Batch::Pairs(&pairs), &options, &mut out)
        .unwrap();
    out
}

fn check(ev: &Evaluator, label: &str) {
    for (n, m) in [(0, 5), (5, 0), (1, 1), (37, 53), (3, 700_000), (1500, 1000)] {
        let p = gaussians(n, 1 + n as u64);
        let q = gaussians(m, 2 + m as u64);
        for options in [
            Request::measures(Metrics::CE_KL),
            Request::measures(Metrics::ALL),
        ] {
            let k = options.values_per_pair();
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
    let options = Request::measures(Metrics::CE_KL);
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
    let ev = Evaluator::new(Backend::Cpu).unwrap();
    check(&ev, "cpu");
    let mut p = gaussians(10, 3);
    p[4].sigma = -1.0;
    let q = gaussians(7, 4);
    let mut out = vec![0f32; 70 * 2];
    match pairwise_with(&ev, &p, &q, Request::measures(Metrics::CE_KL), &mut out) {
        Err(gaussdiv::Error::InvalidInput { index, .. }) => assert_eq!(index, 4 * 7),
        other => panic!("{other:?}"),
    }
}

/// The four columns of `pairs`.
fn columns(pairs: &[GaussianPair]) -> [Vec<f32>; 4] {
    [
        pairs.iter().map(|p| p.mu1).collect(),
        pairs.iter().map(|p| p.sigma1).collect(),
        pairs.iter().map(|p| p.mu2).collect(),
        pairs.iter().map(|p| p.sigma2).collect(),
    ]
}

/// `request` on the columns of `pairs` and on `pairs` themselves (CPU).
fn columns_and_pairs(
    pairs: &[GaussianPair],
    request: &Request,
) -> (gaussdiv::Result<Vec<f32>>, gaussdiv::Result<Vec<f32>>) {
    let c = columns(pairs);
    let run = |b: Batch<'_, f32>| {
        let mut out = vec![0f32; pairs.len() * request.values_per_pair()];
        cpu().evaluate(b, request, &mut out).map(|()| out)
    };
    (
        run(Batch::Columns([&c[0], &c[1], &c[2], &c[3]])),
        run(Batch::Pairs(pairs)),
    )
}

/// On the CPU, four columns (read in place, in parallel tasks, measures and
/// gradients) give the bits of the array of pairs, at every size around the
/// block, task and parallel thresholds; under the error policy the first
/// invalid pair is named wherever it lies (first lane, block edges, a later
/// task, the last lane of a partial block), and under the NaN policy its
/// row is NaN and the others are unchanged.
#[test]
fn columns_on_the_cpu_equal_pairs_and_name_the_first_invalid() {
    let requests = [
        Request::measures(Metrics::new(&[Metric::Kl]).unwrap()),
        Request::measures(Metrics::CE_KL_ENTROPY).with_param(Param::LogVar),
        Request::measures(Metrics::ALL),
        Request::gradients(Metrics::CE_KL),
        Request::gradients(Metrics::new(&[Metric::Kl]).unwrap()),
    ];
    for n in [0, 1, 63, 64, 65, 40_000, 100_003] {
        let pairs = random_pairs(n, 7 + n as u64);
        for r in &requests {
            let (c, p) = columns_and_pairs(&pairs, r);
            let bits = |v: Vec<f32>| v.into_iter().map(f32::to_bits).collect::<Vec<_>>();
            assert_eq!(bits(c.unwrap()), bits(p.unwrap()), "n = {n}, {r:?}");
        }
    }
    let n = 100_003;
    for first in [0, 63, 64, 70_000, n - 1] {
        let mut pairs = random_pairs(n, 11);
        pairs[first].sigma2 = f32::INFINITY;
        if first + 5 < n {
            pairs[first + 5].mu1 = f32::NAN;
        }
        for r in &requests {
            match columns_and_pairs(&pairs, r).0 {
                Err(Error::InvalidInput { index, .. }) => assert_eq!(index, first, "{r:?}"),
                other => panic!("pair {first}, {r:?}: {:?}", other.map(|v| v.len())),
            }
            let nan = r.with_on_invalid(OnInvalid::Nan);
            let (c, p) = columns_and_pairs(&pairs, &nan);
            let (c, p) = (c.unwrap(), p.unwrap());
            let k = nan.values_per_pair();
            assert!(c[first * k..(first + 1) * k].iter().all(|v| v.is_nan()));
            assert_eq!(
                c.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
                p.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
                "{r:?}"
            );
        }
    }
}

#[test]
fn pairwise_and_broadcast_gpu() {
    if gpu().is_none() {
        return;
    }
    let ev = Evaluator::new(Backend::Gpu).unwrap();
    check(&ev, "gpu");
}

/// The device-resident pairwise kernel (what `pairwise_with` uses on the
/// GPU) in every parameterisation, with subnormal means (recomputed on the
/// host), invalid q and p (the first invalid cell, row-major), and the NaN
/// policy; and `encode_pairwise` into the app's buffers at odd offsets.
#[test]
fn device_pairwise_every_param_fixups_and_errors() {
    let Some(g) = gpu() else { return };
    let ev = Evaluator::new(Backend::Gpu).unwrap();
    let cpu = Evaluator::new(Backend::Cpu).unwrap();
    for param in Param::ALL {
        let conv = |v: &[Gaussian]| -> Vec<Gaussian> {
            v.iter()
                .map(|x| Gaussian {
                    mu: x.mu,
                    sigma: match param {
                        Param::Std => x.sigma,
                        Param::Var => x.sigma * x.sigma,
                        Param::LogStd => x.sigma.ln(),
                        Param::LogVar => 2.0 * x.sigma.ln(),
                        _ => 1.0 / (x.sigma * x.sigma),
                    },
                })
                .collect()
        };
        let mut p = conv(&gaussians(301, 11));
        let q = conv(&gaussians(257, 12));
        p[5].mu = 3e-39; // subnormal: those cells come from the CPU
        p[6].mu = 2e-38;
        let options = Request::measures(Metrics::ALL).with_param(param);
        let mut out = vec![0f32; p.len() * q.len() * 10];
        pairwise_with(g, &p, &q, options, &mut out).unwrap();
        assert_eq!(
            bytemuck::cast_slice::<f32, u32>(&out),
            bytemuck::cast_slice::<f32, u32>(&per_pair(&ev, &p, &q, options)),
            "{param}: device pairwise vs per-pair GPU"
        );
        // Against the CPU: reported (the accuracy of both against truth is
        // asserted per measure by tests/measures.rs).
        let want = per_pair(&cpu, &p, &q, options);
        let differ = out
            .iter()
            .zip(&want)
            .filter(|(a, b)| a.to_bits() != b.to_bits() && !(a.is_nan() && b.is_nan()))
            .count();
        println!(
            "{param}: {differ} of {} values differ from the CPU",
            out.len()
        );
    }
    // Invalid input: q_3 (cell 3 of row 0) comes before p_2 (cell 2·M).
    let mut p = gaussians(5, 1);
    let mut q = gaussians(4, 2);
    p[2].sigma = 0.0;
    let mut out = vec![0f32; 20 * 2];
    match pairwise_with(g, &p, &q, Request::measures(Metrics::CE_KL), &mut out) {
        Err(gaussdiv::Error::InvalidInput { index, .. }) => assert_eq!(index, 2 * 4),
        other => panic!("{other:?}"),
    }
    q[3].sigma = f32::NAN;
    match pairwise_with(g, &p, &q, Request::measures(Metrics::CE_KL), &mut out) {
        Err(gaussdiv::Error::InvalidInput { index, field, .. }) => {
            assert_eq!(index, 3);
            assert_eq!(field, gaussdiv::Field::Sigma2);
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn encode_pairwise_into_app_buffers() {
    use gaussdiv::wgpu::{self, util::DeviceExt};
    let Some(g) = gpu() else { return };
    let (device, queue) = g.device().unwrap();
    let pairwise = |p, n, q, m, output| DeviceBatch {
        input: DeviceInput::Pairwise { p, n, q, m },
        output,
    };
    let p = gaussians(1000, 21);
    let q = gaussians(77, 22);
    let options = Request::measures(Metrics::CE_KL);
    let mut bytes = vec![0u8; 256];
    bytes.extend_from_slice(bytemuck::cast_slice(&p));
    let pb = device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
        label: Some("p"),
        contents: &bytes,
        usage: wgpu::BufferUsages::STORAGE,
    });
    let qb = device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
        label: Some("q"),
        contents: bytemuck::cast_slice(&q),
        usage: wgpu::BufferUsages::STORAGE,
    });
    let values = p.len() * q.len() * 2;
    let out = device.create_buffer(&wgpu::BufferDescriptor {
        label: Some("out"),
        size: 512 + values as u64 * 4,
        usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC,
        mapped_at_creation: false,
    });
    let staging = device.create_buffer(&wgpu::BufferDescriptor {
        label: Some("staging"),
        size: values as u64 * 4,
        usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
        mapped_at_creation: false,
    });
    let mut enc = device.create_command_encoder(&Default::default());
    g.encode(
        &mut enc,
        pairwise(
            pb.slice(256..),
            p.len() as u64,
            qb.slice(..),
            q.len() as u64,
            out.slice(512..),
        ),
        &options,
    )
    .unwrap();
    enc.copy_buffer_to_buffer(&out, 512, &staging, 0, values as u64 * 4);
    queue.submit([enc.finish()]);
    staging
        .slice(..)
        .map_async(wgpu::MapMode::Read, |r| r.unwrap());
    device.poll(wgpu::PollType::wait_indefinitely()).unwrap();
    let got: Vec<f32> =
        bytemuck::cast_slice(&staging.slice(..).get_mapped_range().unwrap()).to_vec();
    let mut want = vec![0f32; values];
    pairwise_with(g, &p, &q, options, &mut want).unwrap();
    assert_eq!(got, want);
    // Misuse: output aliasing an input, too small an output.
    let mut enc = device.create_command_encoder(&Default::default());
    assert!(g
        .encode(
            &mut enc,
            pairwise(pb.slice(256..), 10, qb.slice(..), 7, pb.slice(..)),
            &options
        )
        .is_err());
    assert!(g
        .encode(
            &mut enc,
            pairwise(pb.slice(256..), 1000, qb.slice(..), 77, out.slice(..256)),
            &options
        )
        .is_err());
}

/// Pairwise in f64 on the GPU (cells formed on the host, the f64 per-pair
/// kernel): equal, bit for bit, to the per-pair f64 path on the GPU, and
/// within 1e-14 of the CPU f64 path (the tolerance model of verify).
#[test]
fn pairwise_f64_on_the_gpu() {
    let Some(g) = gpu() else { return };
    if !g.gpu_info().is_some_and(|i| i.supports_f64) {
        eprintln!("SKIPPED: the adapter lacks SHADER_F64/SHADER_INT64");
        return;
    }
    let wide = |v: Vec<Gaussian>| -> Vec<gaussdiv::Gaussian64> {
        v.iter()
            .map(|x| gaussdiv::Gaussian64::new(x.mu.into(), x.sigma.into()))
            .collect()
    };
    let (p, q) = (wide(gaussians(37, 5)), wide(gaussians(53, 6)));
    let request = Request::measures(Metrics::ALL);
    let mut out = vec![0f64; p.len() * q.len() * 10];
    g.evaluate(Batch::Pairwise { p: &p, q: &q }, &request, &mut out)
        .unwrap();
    let pairs: Vec<gaussdiv::GaussianPair64> = p
        .iter()
        .flat_map(|a| {
            q.iter()
                .map(move |b| gaussdiv::GaussianPair64::new(a.mu, a.sigma, b.mu, b.sigma))
        })
        .collect();
    let mut per = vec![0f64; out.len()];
    g.evaluate(Batch::Pairs(&pairs), &request, &mut per)
        .unwrap();
    assert!(out
        .iter()
        .zip(&per)
        .all(|(a, b)| a.to_bits() == b.to_bits()));
    let report = gaussdiv::verify(
        Batch::Pairwise { p: &p, q: &q },
        &request,
        &out,
        gaussdiv::Tolerance::F64,
    )
    .unwrap();
    assert!(report.passed(), "{report}");
}
