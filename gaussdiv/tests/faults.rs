//! GPU faults surface as documented errors; the evaluator stays usable or
//! says it must be recreated; Backend::Auto recovers and reports how.
mod common;
use common::*;
use gaussdiv::gpu::Fault;
use gaussdiv::wgpu;
use gaussdiv::{verify, Backend, Error, Evaluator, GpuEvaluator, OnInvalid, Tolerance};
use std::time::Duration;

#[test]
fn device_loss_is_reported_and_sticky() {
    if gpu().is_none() {
        return;
    }
    let g = GpuEvaluator::new().unwrap();
    let pairs = random_pairs(100_000, 1);
    assert!(g.evaluate(&pairs).is_ok());
    g.device().destroy();
    for attempt in 0..3 {
        match g.evaluate(&pairs) {
            Err(Error::DeviceLost(msg)) => println!("attempt {attempt}: DeviceLost: {msg}"),
            other => panic!("attempt {attempt}: expected DeviceLost, got {other:?}"),
        }
    }
    assert!(g.is_lost());
    // a fresh evaluator works
    let fresh = GpuEvaluator::new().unwrap();
    assert!(
        verify(&pairs, &fresh.evaluate(&pairs).unwrap(), Tolerance::GPU_F32)
            .unwrap()
            .passed()
    );
}

#[test]
fn timeout_is_reported_and_the_evaluator_stays_usable() {
    if gpu().is_none() {
        return;
    }
    // A device of its own: no other test polls it (which could complete the
    // work before the 1 ns wait starts).
    let g = GpuEvaluator::new().unwrap();
    let pairs = random_pairs(4_000_000, 2);
    g.set_timeout(Some(Duration::from_nanos(1)));
    match g.evaluate(&pairs) {
        Err(Error::Timeout { waited }) => assert_eq!(waited, Duration::from_nanos(1)),
        other => panic!("expected Timeout, got {:?}", other.map(|v| v.len())),
    }
    assert!(!g.is_lost());
    g.set_timeout(None);
    let out = g.evaluate(&pairs).unwrap();
    assert!(verify(&pairs, &out, Tolerance::GPU_F32).unwrap().passed());
    // A wait that never completes (injected), blocking and async: the
    // configured timeout ends it, and the evaluator goes on working.
    g.set_timeout(Some(Duration::from_millis(50)));
    for asynchronous in [false, true] {
        g.inject_fault(Fault::Hang);
        let t = std::time::Instant::now();
        let r = if asynchronous {
            pollster::block_on(g.evaluate_async(&pairs))
        } else {
            g.evaluate(&pairs)
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
            pollster::block_on(g.evaluate_async(&pairs)).unwrap()
        } else {
            g.evaluate(&pairs).unwrap()
        };
        assert_eq!(again, out);
    }
}

#[test]
fn failed_mapping_is_reported_and_the_evaluator_stays_usable() {
    let Some(shared) = gpu() else { return };
    let g = GpuEvaluator::from_device(shared.device(), shared.queue()).unwrap();
    let pairs = random_pairs(600_000, 3);
    g.inject_fault(Fault::MapFailure);
    match g.evaluate(&pairs) {
        Err(Error::Map(msg)) => println!("Map: {msg}"),
        other => panic!("expected Map, got {:?}", other.map(|v| v.len())),
    }
    let out = g.evaluate(&pairs).unwrap();
    assert_eq!(out, shared.evaluate(&pairs).unwrap());
}

#[test]
fn tiny_device_limits_are_respected_by_chunking() {
    let Some(shared) = gpu() else { return };
    let _ = shared;
    let instance = gaussdiv::gpu::context::instance();
    let (adapter, _) =
        pollster::block_on(gaussdiv::gpu::context::choose_adapter(&instance)).unwrap();
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
    let g = GpuEvaluator::from_device(&device, &queue).unwrap();
    assert!(g.max_binding_bytes() <= 1 << 16);
    assert!(g.host_chunk_pairs() * 16 <= 1 << 16);
    let pairs = random_pairs(100_003, 4);
    let scope = device.push_error_scope(wgpu::ErrorFilter::Validation);
    let out = g.evaluate(&pairs).unwrap();
    assert!(
        pollster::block_on(scope.pop()).is_none(),
        "no wgpu validation error"
    );
    assert!(verify(&pairs, &out, Tolerance::GPU_F32).unwrap().passed());
    // a device-path request beyond the buffer is an error, not a wgpu failure
    let buf = device.create_buffer(&wgpu::BufferDescriptor {
        label: None,
        size: 1 << 16,
        usage: wgpu::BufferUsages::STORAGE,
        mapped_at_creation: false,
    });
    let mut enc = device.create_command_encoder(&Default::default());
    assert!(matches!(
        g.encode(&mut enc, buf.slice(..), buf.slice(..), 5000),
        Err(Error::InvalidBuffer(_))
    ));
}

#[test]
fn auto_recovers_by_recreating_the_device_or_falling_back_to_the_cpu() {
    if gpu().is_none() {
        return;
    }
    let pairs = random_pairs(200_000, 5);
    let expected = gaussdiv::cpu::evaluate(&pairs);

    let mut ev = Evaluator::with_policy(Backend::Auto, OnInvalid::Error).unwrap();
    ev.set_auto_gpu_min_pairs(1); // force the GPU
    assert!(ev.uses_gpu_for(pairs.len()));
    let first = ev.gpu().unwrap();
    first.device().destroy();
    let out = ev.evaluate(&pairs).unwrap();
    assert!(verify(&pairs, &out, Tolerance::GPU_F32).unwrap().passed());
    let log = ev.recoveries();
    println!("{log:?}");
    assert!(
        log.iter()
            .any(|l| l.contains("recreated the GPU evaluator")),
        "{log:?}"
    );
    assert!(!std::sync::Arc::ptr_eq(&first, &ev.gpu().unwrap()));

    let mut ev = Evaluator::with_policy(Backend::Auto, OnInvalid::Error).unwrap();
    ev.set_auto_gpu_min_pairs(1);
    ev.set_recovery(gaussdiv::evaluator::Recovery::Cpu);
    ev.gpu().unwrap().device().destroy();
    let out = ev.evaluate(&pairs).unwrap();
    assert_eq!(out, expected, "the CPU path computed this call");
    assert!(ev.gpu().is_none() && !ev.uses_gpu_for(pairs.len()));
    assert!(ev.recoveries().iter().any(|l| l.contains("using the CPU")));
}

#[test]
fn a_cancelled_async_call_leaves_the_evaluator_usable() {
    let Some(shared) = gpu() else { return };
    let g = GpuEvaluator::from_device(shared.device(), shared.queue()).unwrap();
    let pairs = random_pairs(3_000_000, 6);
    // Poll the future a few times (so that buffers are mapped or in flight), then drop it.
    {
        use std::future::Future;
        use std::task::{Context, Waker};
        let mut fut = Box::pin(g.evaluate_async(&pairs));
        let mut cx = Context::from_waker(Waker::noop());
        for _ in 0..3 {
            let _ = fut.as_mut().poll(&mut cx);
            std::thread::sleep(Duration::from_millis(2));
        }
    }
    let out = g.evaluate(&pairs).unwrap();
    assert_eq!(out, shared.evaluate(&pairs).unwrap());
    let out = pollster::block_on(g.evaluate_async(&pairs)).unwrap();
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
    let options = gaussdiv::EvalOptions::from(gaussdiv::Metrics::CE_KL);
    for recovery in [
        gaussdiv::evaluator::Recovery::Recreate,
        gaussdiv::evaluator::Recovery::Cpu,
    ] {
        // Diagonal rows of 16 dims.
        let mut ev = Evaluator::with_policy(Backend::Auto, OnInvalid::Error).unwrap();
        ev.set_auto_gpu_min_pairs(1);
        ev.set_recovery(recovery);
        let first = ev.gpu().unwrap();
        first.device().destroy();
        let mut out = vec![0f32; pairs.len() / 16 * 2];
        gaussdiv::layout::diagonal_with(&ev, &pairs, 16, options, &mut out).unwrap();
        let mut want = vec![0f32; out.len()];
        gaussdiv::cpu::diagonal_with(&pairs, 16, options, &mut want).unwrap();
        for (a, b) in out.iter().zip(&want) {
            assert!((a - b).abs() <= 2e-6 * b.abs().max(1.0), "{a} vs {b}");
        }
        assert!(ev.gpu().is_none_or(|g| !std::sync::Arc::ptr_eq(&first, &g)));
        assert_eq!(ev.recoveries().len(), 1, "{:?}", ev.recoveries());

        // Gradients.
        let mut ev = Evaluator::with_policy(Backend::Auto, OnInvalid::Error).unwrap();
        ev.set_auto_gpu_min_pairs(1);
        ev.set_recovery(recovery);
        let first = ev.gpu().unwrap();
        first.device().destroy();
        let got = ev.gradients(&pairs).unwrap();
        assert_eq!(got, gaussdiv::gradient::gradients(&pairs));
        assert!(ev.gpu().is_none_or(|g| !std::sync::Arc::ptr_eq(&first, &g)));
        assert_eq!(ev.recoveries().len(), 1, "{:?}", ev.recoveries());
    }
}
