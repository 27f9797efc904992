//! # gaussdiv
//!
//! Cross-entropy H(p1, p2), Kullback-Leibler divergence KL(p1 ‖ p2),
//! entropy H(p1) and seven more information measures ([`Metric`]: H(p2),
//! reverse KL, Jeffreys, Bhattacharyya distance and coefficient, Hellinger,
//! 2-Wasserstein) of batches of univariate Gaussian pairs p1 = N(μ1, σ1²),
//! p2 = N(μ2, σ2²) given by σ, σ², ln σ, ln σ² or 1/σ² ([`Param`]), on the
//! GPU through wgpu (a WGSL compute kernel) or on the CPU — accurate in f32
//! on every input, where the textbook formulas (and NumPy, PyTorch, JAX)
//! lose all precision for near-equal scales, tiny mean differences and
//! extreme ratios.
//!
//! ```
//! use gaussdiv::{Backend, Evaluator, GaussianPair, Tolerance};
//!
//! let pairs = vec![
//!     GaussianPair::new(0.0, 1.0, 1.0, 2.0),
//!     GaussianPair::new(0.5, 1.0, 0.5, 1.000_000_1), // near-equal scales
//! ];
//! // The GPU when there is one (and the batch is large), else the CPU.
//! let evaluator = Evaluator::new(Backend::Auto)?;
//! let out = evaluator.evaluate(&pairs)?;
//! assert!((out[0].kl - 0.443_147_2).abs() < 1e-6);
//! assert!(out[1].kl > 0.0);
//!
//! // Check every result against the CPU f64 reference.
//! let report = gaussdiv::verify(&pairs, &out, Tolerance::GPU_F32)?;
//! assert!(report.passed(), "{report}");
//! # Ok::<(), gaussdiv::Error>(())
//! ```
//!
//! Any subset of the measures, in any parameterisation, through the
//! `…_with` methods and [`EvalOptions`]:
//!
//! ```
//! use gaussdiv::{cpu, EvalOptions, GaussianPair, Metric, Metrics, Param};
//!
//! // (μ1, ln σ1, μ2, ln σ2)
//! let pairs = [GaussianPair::new(0.0, 0.0, 1.0, std::f32::consts::LN_2)];
//! let metrics = Metrics::new(&[Metric::Kl, Metric::Wasserstein2]).unwrap();
//! let mut out = [0f32; 2];
//! cpu::evaluate_with(&pairs, EvalOptions::new(metrics, Param::LogStd), &mut out)?;
//! assert!((out[0] - 0.443_147_2).abs() < 1e-6); // KL(N(0, 1) ‖ N(1, 4))
//! assert!((out[1] - 2f32.sqrt()).abs() < 1e-6); // √(1² + (1 − 2)²)
//! # Ok::<(), gaussdiv::Error>(())
//! ```
//!
//! ## Paths
//!
//! * [`GpuEvaluator`]: the kernel of `shaders/divergence.wgsl`, on a device of
//!   its own ([`GpuEvaluator::new`]) or on yours ([`GpuEvaluator::from_device`]);
//!   blocking [`evaluate`](GpuEvaluator::evaluate),
//!   [`evaluate_async`](GpuEvaluator::evaluate_async), and
//!   [`encode`](GpuEvaluator::encode) into your command encoder.
//! * [`GpuEvaluator::evaluate_f64`] and [`GpuEvaluator::evaluate_f64_with`]
//!   (every measure and parameterisation): f64 on the GPU
//!   (`shaders/divergence_f64.wgsl`, within 1e-14 of the truth like the CPU
//!   f64 path) on devices with `SHADER_F64` and `SHADER_INT64`;
//!   [`Error::Unsupported`] naming the missing features elsewhere.
//! * [`cpu`]: the same formulas on all cores, f32 (mirror of the kernel) and
//!   f64 (the reference).
//! * [`verify()`]: the tolerance model; reports the worst row.
//! * [`gradient`]: analytic gradients of KL and cross-entropy with respect
//!   to (μ1, a1, μ2, a2) in any [`Param`], on the GPU
//!   ([`Evaluator::gradients_with`], [`GpuEvaluator::encode_gradients`]) and
//!   the CPU (f32, f64).
//! * [`layout`]: pairwise N × M, broadcast, and diagonal multivariate
//!   Gaussians ([`layout::diagonal_with`]: rows of D independent dims, the
//!   sums over dims formed on the GPU by `shaders/diagonal.wgsl`).
//!
//! ## Integration into a wgpu app
//!
//! Share the app's device, record into its encoder, read and write its
//! buffers — no host copies, one submit:
//!
//! ```
//! use gaussdiv::{wgpu, GaussianPair, GpuEvaluator};
//! use wgpu::util::DeviceExt;
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let instance = gaussdiv::gpu::context::instance();
//! # let Ok((adapter, _)) = pollster::block_on(gaussdiv::gpu::context::choose_adapter(&instance))
//! # else { return Ok(()) }; // no GPU on this machine: nothing to show
//! # let (device, queue) = pollster::block_on(adapter.request_device(&Default::default()))?;
//! // `device` and `queue` are the app's own.
//! let gaussdiv = GpuEvaluator::from_device(&device, &queue)?;
//!
//! let pairs = [GaussianPair::new(0.0, 1.0, 1.0, 2.0); 1024];
//! let input = device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
//!     label: Some("app pairs"),
//!     contents: bytemuck::cast_slice(&pairs),
//!     usage: wgpu::BufferUsages::STORAGE,
//! });
//! let output = device.create_buffer(&wgpu::BufferDescriptor {
//!     label: Some("app divergences"),
//!     size: 1024 * 12, // cross-entropy, KL, entropy: 3 × f32 per pair
//!     usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC,
//!     mapped_at_creation: false,
//! });
//!
//! let mut encoder = device.create_command_encoder(&Default::default());
//! // … the app's own passes …
//! gaussdiv.encode(&mut encoder, input.slice(..), output.slice(..), 1024)?;
//! // … more passes reading `output` …
//! queue.submit([encoder.finish()]);
//! # Ok(())
//! # }
//! ```
//!
//! In async code, [`GpuEvaluator::evaluate_async`] waits for the GPU on a
//! helper thread and never blocks the executor waiting for it
//! (`examples/async_app.rs` runs it on a tokio runtime next to a task that
//! must stay responsive):
//!
//! ```no_run
//! # async fn app(gpu: &gaussdiv::GpuEvaluator, pairs: &[gaussdiv::GaussianPair]) -> gaussdiv::Result<()> {
//! let out = gpu.evaluate_async(pairs).await?; // inside any async runtime (tokio, async-std, …)
//! # Ok(())
//! # }
//! ```
//!
//! ## Accuracy
//!
//! Measured on the 2000 adversarial rows of `tests/data/golden_public.csv`
//! against 50-digit truth, every row is within 1e-6 (CPU f32), 2e-6 (GPU f32)
//! and 1e-14 (CPU and GPU f64); likewise every measure in every
//! parameterisation on `tests/data/golden_measures_*.csv` (largest errors
//! 4.3e-7 in f32, 6.5e-16 in f64). See [`math`] for the formulation.
#![warn(missing_docs)]
#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::indexing_slicing,
        clippy::unreachable,
        clippy::todo,
        clippy::unimplemented
    )
)]

mod batch;
mod cpu;
mod diagonal;
mod error;
mod evaluator;
mod gpu;
mod gradient;
mod math;
mod pair;
mod request;
mod validate;
pub mod verify;

pub use batch::{Batch, DeviceBatch, DeviceInput};
pub use error::{Error, Field, Result};
pub use evaluator::{Backend, Crossover, Evaluator, GpuInfo, Options, Recovery};
pub use gpu::context::{adapters, AdapterSummary, Adapters};
pub use gpu::Transfer;
pub use gradient::{Gradients, Gradients64};
pub use pair::{
    Divergences, Divergences64, Float, Gaussian, Gaussian64, GaussianPair, GaussianPair64, Metric,
    Metrics, Param,
};
pub use request::{Output, Request};
pub use validate::OnInvalid;
pub use verify::{verify, Precision, Tolerance, VerifyReport};
/// The wgpu this crate is built against, so callers can match its version.
pub use wgpu;

#[cfg(feature = "test-hooks")]
#[doc(hidden)]
pub use gpu::Fault;

/// The README's Rust examples, compiled as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
pub struct ReadmeDoctests;
