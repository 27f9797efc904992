//! The device path of full-covariance pairs (`DeviceInput::Mvn`,
//! src/gpu/mvn_device.rs): the kernel recorded into the app's encoder on
//! the app's packed buffer gives the host path's bits on every pair it
//! finishes and a row of NaN on every pair it leaves (close together,
//! invalid); `Evaluator::complete` then gives the host path's output bit for
//! bit and names an invalid pair under `OnInvalid::Error`; misuse is a
//! documented error.
mod common;
use common::device::{output_buffer, read_f32, storage_with};
use common::mvn::{far_pairs, form};
use gaussdiv::wgpu;
use gaussdiv::{
    Batch, DeviceBatch, DeviceInput, Error, Evaluator, MatrixForm, Metric, Metrics, MvnPairs,
    OnInvalid, Request,
};

const FORMS: [MatrixForm; 3] = [
    MatrixForm::Cov,
    MatrixForm::ScaleTril,
    MatrixForm::Precision,
];

/// `n` f32 pairs of dimension `d` in forms (f1, f2): far apart, except pair
/// 5 (identical sides), pair 6 (nearly equal), pair 7 (side 1 not
/// symmetric or, for a factor, with a non-zero upper entry; at d = 1
/// negative) and pair 8 (a
/// NaN mean).
fn batch(n: usize, d: usize, f1: usize, f2: usize) -> [Vec<f32>; 4] {
    let a = far_pairs(n, d, f1, f2, (d * 13 + f1 * 3 + f2) as u64);
    let mut a: [Vec<f32>; 4] = a.map(|v| v.iter().map(|&x| x as f32).collect());
    let dd = d * d;
    if f1 == f2 {
        let (m1, m2) = (a[1][5 * dd..6 * dd].to_vec(), a[0][5 * d..6 * d].to_vec());
        a[3][5 * dd..6 * dd].copy_from_slice(&m1);
        a[2][5 * d..6 * d].copy_from_slice(&m2);
        for k in 0..dd {
            // Nearly equal: every non-zero entry one part in 10⁵ larger.
            a[3][6 * dd + k] = a[1][6 * dd + k] * (1.0 + 1e-5);
        }
        let mu = a[0][6 * d..7 * d].to_vec();
        a[2][6 * d..7 * d].copy_from_slice(&mu);
    }
    if d > 1 {
        a[1][7 * dd + 1] += 0.5; // entry [0, 1]: breaks symmetry or triangularity
    } else {
        a[1][7] = -a[1][7]; // a negative variance, factor or precision
    }
    a[0][8 * d] = f32::NAN;
    a
}

/// The pairs of `a` (dimension `d`, side forms `f1`, `f2`).
fn pairs_of(d: usize, (f1, f2): (usize, usize), a: &[Vec<f32>; 4]) -> MvnPairs<'_, f32> {
    MvnPairs {
        dims: d,
        mu1: &a[0],
        cov1: form(f1, &a[1]),
        mu2: &a[2],
        cov2: form(f2, &a[3]),
    }
}

/// Encodes `request` on the packed pairs into the app's encoder, submits,
/// reads the output back.
fn on_device(
    gpu: &Evaluator,
    pairs: &MvnPairs<'_, f32>,
    forms: [MatrixForm; 2],
    request: &Request,
) -> Vec<f32> {
    let (device, queue) = gpu.device().unwrap();
    let packed = pairs.packed().unwrap();
    let input = storage_with(&device, bytemuck::cast_slice(&packed));
    let n = pairs.len() as u64;
    let out_bytes = n * request.values_per_pair() as u64 * 4;
    // The output at an aligned offset of a larger buffer of the app's.
    let output = output_buffer(&device, 512 + out_bytes);
    let mut encoder = device.create_command_encoder(&Default::default());
    let batch = DeviceBatch {
        input: DeviceInput::Mvn {
            pairs: input.slice(..),
            count: n,
            dims: pairs.dims as u32,
            forms,
        },
        output: output.slice(512..),
    };
    gpu.encode(&mut encoder, batch, request).unwrap();
    queue.submit([encoder.finish()]);
    read_f32(&device, &queue, &output, 512, out_bytes)
}

#[test]
fn device_rows_are_the_host_paths_and_complete_fills_the_rest() {
    let Some(gpu) = common::gpu() else { return };
    let nan = Request::measures(Metrics::ALL).with_on_invalid(OnInvalid::Nan);
    let k = nan.values_per_pair();
    for d in [1, 3, 6] {
        for (f1, f2) in [(0, 0), (1, 1), (2, 2), (0, 1), (1, 2), (2, 0)] {
            let n = 40;
            let a = batch(n, d, f1, f2);
            let pairs = pairs_of(d, (f1, f2), &a);
            let mut host = vec![0f32; n * k];
            gpu.evaluate(Batch::Mvn(pairs), &nan, &mut host).unwrap();
            let mut dev = on_device(gpu, &pairs, [FORMS[f1], FORMS[f2]], &nan);
            let what = format!("d={d} forms {f1}/{f2}");
            let mut left = 0;
            for (i, (g, h)) in dev.chunks(k).zip(host.chunks(k)).enumerate() {
                if g.iter().any(|v| v.is_nan()) {
                    assert!(
                        g.iter().all(|v| v.is_nan()),
                        "{what} pair {i}: part of a row NaN"
                    );
                    left += 1;
                } else {
                    let (g, h): (Vec<u32>, Vec<u32>) = (
                        g.iter().map(|v| v.to_bits()).collect(),
                        h.iter().map(|v| v.to_bits()).collect(),
                    );
                    assert_eq!(g, h, "{what} pair {i}: not the host path's bits");
                }
            }
            // The invalid pairs are left (7, 8), and so are the identical and
            // the nearly equal ones (5, 6: the CPU's close-together forms).
            for i in [7, 8]
                .into_iter()
                .chain(if f1 == f2 { vec![5, 6] } else { vec![] })
            {
                assert!(
                    dev[i * k..(i + 1) * k].iter().all(|v| v.is_nan()),
                    "{what} pair {i}"
                );
            }
            let done = gpu.complete(Batch::Mvn(pairs), &nan, &mut dev).unwrap();
            assert_eq!(done, left, "{what}");
            let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(&dev), bits(&host), "{what}: completed output");
            // Under OnInvalid::Error, complete names the first invalid pair.
            let mut again = on_device(gpu, &pairs, [FORMS[f1], FORMS[f2]], &nan);
            let strict = Request::measures(Metrics::ALL);
            let e = gpu
                .complete(Batch::Mvn(pairs), &strict, &mut again)
                .unwrap_err();
            assert!(
                matches!(e, Error::InvalidMatrix { index: 7, .. }),
                "{what}: {e}"
            );
        }
    }
}

#[test]
fn a_subset_of_measures_and_the_identity_are_exact() {
    let Some(gpu) = common::gpu() else { return };
    let d = 4;
    let a = batch(16, d, 0, 0);
    let pairs = pairs_of(d, (0, 0), &a);
    let kl = Request::measures(Metrics::new(&[Metric::Kl, Metric::Wasserstein2]).unwrap())
        .with_on_invalid(OnInvalid::Nan);
    let mut dev = on_device(gpu, &pairs, [MatrixForm::Cov; 2], &kl);
    gpu.complete(Batch::Mvn(pairs), &kl, &mut dev).unwrap();
    // Identical sides: exact zeros once completed.
    assert_eq!(&dev[10..12], &[0.0, 0.0]);
    let mut host = vec![0f32; 32];
    gpu.evaluate(Batch::Mvn(pairs), &kl, &mut host).unwrap();
    assert_eq!(
        dev.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
        host.iter().map(|v| v.to_bits()).collect::<Vec<_>>()
    );
}

#[test]
fn device_path_misuse_is_a_documented_error() {
    let Some(gpu) = common::gpu() else { return };
    let (device, _) = gpu.device().unwrap();
    let d = 3;
    let a = batch(16, d, 1, 1);
    let pairs = pairs_of(d, (1, 1), &a);
    let packed = pairs.packed().unwrap();
    // 2d + 2d² = 24 values per pair at d = 3: μ1, Σ1, μ2, Σ2 as given.
    assert_eq!(packed.len(), 16 * 24);
    assert_eq!(&packed[24..27], &a[0][3..6]);
    assert_eq!(&packed[27..36], &a[1][9..18]);
    assert_eq!(&packed[36..39], &a[2][3..6]);
    assert_eq!(&packed[39..48], &a[3][9..18]);
    let input = storage_with(&device, bytemuck::cast_slice(&packed));
    let output = output_buffer(&device, 4096);
    let all = Request::measures(Metrics::ALL);
    let encode =
        |input: wgpu::BufferSlice<'_>, output: wgpu::BufferSlice<'_>, count: u64, dims: u32| {
            let mut encoder = device.create_command_encoder(&Default::default());
            let batch = DeviceBatch {
                input: DeviceInput::Mvn {
                    pairs: input,
                    count,
                    dims,
                    forms: [MatrixForm::ScaleTril; 2],
                },
                output,
            };
            gpu.encode(&mut encoder, batch, &all)
        };
    let unsupported = |r: Result<(), Error>| matches!(r, Err(Error::Unsupported(_)));
    let invalid = |r: Result<(), Error>| matches!(r, Err(Error::InvalidBuffer(_)));
    assert!(encode(input.slice(..), output.slice(..), 16, 3).is_ok());
    assert!(unsupported(encode(
        input.slice(..),
        output.slice(..),
        16,
        0
    )));
    assert!(unsupported(encode(
        input.slice(..),
        output.slice(..),
        1,
        65
    )));
    // 17 pairs do not fit 16 pairs' bytes; nor 16 rows of ten values 512 bytes.
    assert!(invalid(encode(input.slice(..), output.slice(..), 17, 3)));
    assert!(invalid(encode(input.slice(..), output.slice(..512), 16, 3)));
    assert!(
        invalid(encode(input.slice(..), output.slice(4..), 16, 3)),
        "misaligned"
    );
    assert!(
        invalid(encode(input.slice(..), output.slice(..), 0, 3)),
        "count 0"
    );
    assert!(
        invalid(encode(input.slice(..), input.slice(..), 4, 3)),
        "output is the input"
    );
    // Gradients, and complete on another layout.
    let mut encoder = device.create_command_encoder(&Default::default());
    let batch = DeviceBatch {
        input: DeviceInput::Mvn {
            pairs: input.slice(..),
            count: 16,
            dims: 3,
            forms: [MatrixForm::Cov; 2],
        },
        output: output.slice(..),
    };
    let grads = Request::gradients(Metrics::CE_KL);
    assert!(matches!(
        gpu.encode(&mut encoder, batch, &grads),
        Err(Error::Unsupported(_))
    ));
    let mut out = vec![0f32; 10];
    let p = [gaussdiv::GaussianPair::new(0.0, 1.0, 0.0, 1.0)];
    assert!(matches!(
        gpu.complete(Batch::Pairs(&p), &all, &mut out),
        Err(Error::Unsupported(_))
    ));
    // A wrong output length for complete is a length error.
    let mut short = vec![0f32; 15];
    assert!(matches!(
        gpu.complete(Batch::Mvn(pairs), &all, &mut short),
        Err(Error::LengthMismatch { .. })
    ));
}
