//! GPU faults surface as documented errors; the evaluator stays usable or
//! says it must be recreated; Backend::Auto recovers and reports how.
mod common;
use common::*;
use gaussdiv::wgpu;
use gaussdiv::{
    verify, Backend, Batch, DeviceBatch, DeviceInput, Divergences, Error, Evaluator, Fault,
    GaussianPair, Metrics, Options, Recovery, Request, Tolerance,
};
use std::time::Duration;

/// `verify` of cross-entropy, KL and entropy of `pairs` at the GPU's f32 tolerance.
fn passes(pairs: &[GaussianPair], out: &[Divergences]) -> bool {
    verify(
        Batch::Pairs(pairs),
        &Request::default(),
        bytemuck::cast_slice(out),
        Tolerance::GPU_F32,
    )
    .unwrap()
    .passed()
}

/// Cross-entropy, KL and entropy of `pairs` through `evaluate_async`, blocking on it.
fn divergences_async(ev: &Evaluator, pairs: &[GaussianPair]) -> gaussdiv::Result<Vec<Divergences>> {
    let mut out = vec![Divergences::default(); pairs.len()];
    pollster::block_on(ev.evaluate_async(
        Batch::Pairs(pairs),
        &Request::default(),
        bytemuck::cast_slice_mut(&mut out),
    ))?;
    Ok(out)
}

/// The device of the GPU an evaluator uses now, if any.
fn device_of(ev: &Evaluator) -> Option<wgpu::Device> {
    ev.device().map(|(d, _)| d)
}

/// After a recovery from a destroyed device under `Backend::Auto`: the
/// evaluator no longer uses the failed GPU evaluator (the public form of
/// "not the same `Arc<GpuEvaluator>`": wgpu device handles of different
/// instances compare equal, as their ids are per instance). The failed one
/// knows its device is lost (its lost callback); a replacement does not, and
/// runs a GPU call without another recovery.
fn not_the_destroyed_gpu(ev: &Evaluator) -> bool {
    let Some(info) = ev.gpu_info() else {
        return true; // the CPU from now on
    };
    let before = ev.recoveries().len();
    !info.lost
        && divergences(ev, &random_pairs(1000, 99)).is_ok()
        && ev.recoveries().len() == before
}

/// Under `Backend::Auto` with the GPU forced for every batch.
fn auto_forced(recovery: Recovery) -> Evaluator {
    pollster::block_on(Evaluator::new_async(
        Backend::Auto,
        Options {
            auto_gpu_min_pairs: Some(1), // force the GPU
            recovery,
            ..Default::default()
        },
    ))
    .unwrap()
}

#[test]
fn device_loss_is_reported_and_sticky() {
    if gpu().is_none() {
        return;
    }
    let g = Evaluator::new(Backend::Gpu).unwrap();
    let pairs = random_pairs(100_000, 1);
    assert!(divergences(&g, &pairs).is_ok());
    device_of(&g).unwrap().destroy();
    for attempt in 0..3 {
        match divergences(&g, &pairs) {
            Err(Error::DeviceLost(msg)) => println!("attempt {attempt}: DeviceLost: {msg}"),
            other => panic!("attempt {attempt}: expected DeviceLost, got {other:?}"),
        }
    }
    assert!(g.gpu_info().unwrap().lost);
    // a fresh evaluator works
    let fresh = Evaluator::new(Backend::Gpu).unwrap();
    assert!(passes(&pairs, &divergences(&fresh, &pairs).unwrap()));
}

#[test]
fn timeout_is_reported_and_the_evaluator_stays_usable() {
    if gpu().is_none() {
        return;
    }
    // A device of its own: no other test polls it (which could complete the
    // work before the 1 ns wait starts).
    let g = Evaluator::new(Backend::Gpu).unwrap();
    let pairs = random_pairs(4_000_000, 2);
    g.set_timeout(Some(Duration::from_nanos(1)));
    match divergences(&g, &pairs) {
        Err(Error::Timeout { waited }) => assert_eq!(waited, Duration::from_nanos(1)),
        other => panic!("expected Timeout, got {:?}", other.map(|v| v.len())),
    }
    assert!(!g.gpu_info().unwrap().lost);
    g.set_timeout(None);
    let out = divergences(&g, &pairs).unwrap();
    assert!(passes(&pairs, &out));
    // A wait that never completes (injected), blocking and async: the
    // configured timeout ends it, and the evaluator goes on working.
    g.set_timeout(Some(Duration::from_millis(50)));
    for asynchronous in [false, true] {
        g.inject_fault(Fault::Hang);
        let t = std::time::Instant::now();
        let r = if asynchronous {
            divergences_async(&g, &pairs)
        } else {
            divergences(&g, &pairs)
        };
        match r {
            Err(Error::Timeout { waited }) => assert_eq!(waited, Duration::from_millis(50)),
            other => panic!("expected Timeout, got {:?}", other.map(|v| v.len())),
        }
        assert!(
            t.elapsed() < Duration::from_secs(5),
            "bounded by the timeout"
        );
        let again = if asynchronous {
            divergences_async(&g, &pairs).unwrap()
        } else {
            divergences(&g, &pairs).unwrap()
        };
        assert_eq!(again, out);
    }
}

#[test]
fn failed_mapping_is_reported_and_the_evaluator_stays_usable() {
    let Some(shared) = gpu() else { return };
    let (device, queue) = shared.device().unwrap();
    let g = Evaluator::from_device(&device, &queue, Options::default()).unwrap();
    let pairs = random_pairs(600_000, 3);
    g.inject_fault(Fault::MapFailure);
    match divergences(&g, &pairs) {
        Err(Error::Map(msg)) => println!("Map: {msg}"),
        other => panic!("expected Map, got {:?}", other.map(|v| v.len())),
    }
    let out = divergences(&g, &pairs).unwrap();
    assert_eq!(out, divergences(shared, &pairs).unwrap());
}

#[test]
fn tiny_device_limits_are_respected_by_chunking() {
    let Some(shared) = gpu() else { return };
    let _ = shared;
    let instance =
        wgpu::Instance::new(wgpu::InstanceDescriptor::new_without_display_handle_from_env());
    let adapter = pollster::block_on(wgpu::util::initialize_adapter_from_env_or_default(
        &instance, None,
    ))
    .unwrap();
    let limits = wgpu::Limits {
        max_storage_buffer_binding_size: 1 << 16, // 4096 pairs per binding
        max_buffer_size: 1 << 16,
        ..wgpu::Limits::downlevel_defaults()
    };
    let (device, queue) = pollster::block_on(adapter.request_device(&wgpu::DeviceDescriptor {
        label: Some("tiny limits"),
        required_limits: limits,
        ..Default::default()
    }))
    .unwrap();
    let g = Evaluator::from_device(&device, &queue, Options::default()).unwrap();
    let info = g.gpu_info().unwrap();
    assert!(info.max_binding_bytes <= 1 << 16);
    assert!(info.host_chunk_pairs * 16 <= 1 << 16);
    let pairs = random_pairs(100_003, 4);
    let scope = device.push_error_scope(wgpu::ErrorFilter::Validation);
    let out = divergences(&g, &pairs).unwrap();
    assert!(
        pollster::block_on(scope.pop()).is_none(),
        "no wgpu validation error"
    );
    assert!(passes(&pairs, &out));
    // a device-path request beyond the buffer is an error, not a wgpu failure
    let buf = device.create_buffer(&wgpu::BufferDescriptor {
        label: None,
        size: 1 << 16,
        usage: wgpu::BufferUsages::STORAGE,
        mapped_at_creation: false,
    });
    let mut enc = device.create_command_encoder(&Default::default());
    assert!(matches!(
        g.encode(
            &mut enc,
            DeviceBatch {
                input: DeviceInput::Pairs {
                    pairs: buf.slice(..),
                    count: 5000
                },
                output: buf.slice(..),
            },
            &Request::default()
        ),
        Err(Error::InvalidBuffer(_))
    ));
}

#[test]
fn auto_recovers_by_recreating_the_device_or_falling_back_to_the_cpu() {
    if gpu().is_none() {
        return;
    }
    let pairs = random_pairs(200_000, 5);
    let expected = divergences(cpu(), &pairs).unwrap();

    let ev = auto_forced(Recovery::Recreate);
    assert!(ev.uses_gpu_for(pairs.len()));
    let first = device_of(&ev).unwrap();
    first.destroy();
    let out = divergences(&ev, &pairs).unwrap();
    assert!(passes(&pairs, &out));
    let log = ev.recoveries();
    println!("{log:?}");
    assert!(
        log.iter()
            .any(|l| l.contains("recreated the GPU evaluator")),
        "{log:?}"
    );
    // A new GPU evaluator, not the one on the destroyed device.
    assert!(not_the_destroyed_gpu(&ev));

    let ev = auto_forced(Recovery::Cpu);
    device_of(&ev).unwrap().destroy();
    let out = divergences(&ev, &pairs).unwrap();
    assert_eq!(out, expected, "the CPU path computed this call");
    assert!(ev.gpu_info().is_none() && !ev.uses_gpu_for(pairs.len()));
    assert!(ev.recoveries().iter().any(|l| l.contains("using the CPU")));
}

#[test]
fn a_cancelled_async_call_leaves_the_evaluator_usable() {
    let Some(shared) = gpu() else { return };
    let (device, queue) = shared.device().unwrap();
    let g = Evaluator::from_device(&device, &queue, Options::default()).unwrap();
    let pairs = random_pairs(3_000_000, 6);
    let request = Request::default();
    let mut out = vec![0f32; pairs.len() * request.values_per_pair()];
    // Poll the future a few times (so that buffers are mapped or in flight), then drop it.
    {
        use std::future::Future;
        use std::task::{Context, Waker};
        let mut fut = Box::pin(g.evaluate_async(Batch::Pairs(&pairs), &request, &mut out));
        let mut cx = Context::from_waker(Waker::noop());
        for _ in 0..3 {
            let _ = fut.as_mut().poll(&mut cx);
            std::thread::sleep(Duration::from_millis(2));
        }
    }
    let out = divergences(&g, &pairs).unwrap();
    assert_eq!(out, divergences(shared, &pairs).unwrap());
    let out = divergences_async(&g, &pairs).unwrap();
    assert_eq!(out.len(), pairs.len());
}

/// Gradients and the diagonal layout recover under Auto like every other
/// batch: a failed GPU is replaced (or dropped for the CPU) once, not retried
/// on every call.
#[test]
fn auto_recovers_for_gradients_and_the_diagonal_layout() {
    if gpu().is_none() {
        return;
    }
    let pairs = random_pairs(4096, 8);
    let request = Request::measures(Metrics::CE_KL);
    let diagonal = Batch::Diagonal {
        pairs: &pairs,
        dims: 16,
    };
    for recovery in [Recovery::Recreate, Recovery::Cpu] {
        // Diagonal rows of 16 dims.
        let ev = auto_forced(recovery);
        let first = device_of(&ev).unwrap();
        first.destroy();
        let mut out = vec![0f32; pairs.len() / 16 * 2];
        ev.evaluate(diagonal, &request, &mut out).unwrap();
        let mut want = vec![0f32; out.len()];
        cpu().evaluate(diagonal, &request, &mut want).unwrap();
        for (a, b) in out.iter().zip(&want) {
            assert!((a - b).abs() <= 2e-6 * b.abs().max(1.0), "{a} vs {b}");
        }
        assert!(not_the_destroyed_gpu(&ev));
        assert_eq!(ev.recoveries().len(), 1, "{:?}", ev.recoveries());

        // Gradients.
        let gradients = Request::gradients(Metrics::CE_KL);
        let ev = auto_forced(recovery);
        let first = device_of(&ev).unwrap();
        first.destroy();
        let got = eval(&ev, &pairs, &gradients).unwrap();
        assert_eq!(got, eval(cpu(), &pairs, &gradients).unwrap());
        assert!(not_the_destroyed_gpu(&ev));
        assert_eq!(ev.recoveries().len(), 1, "{:?}", ev.recoveries());
    }
}
