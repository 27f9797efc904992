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
//! use gaussdiv::{Backend, Batch, Evaluator, GaussianPair, Request, Tolerance};
//!
//! let pairs = [
//!     GaussianPair::<f32>::new(0.0, 1.0, 1.0, 2.0),
//!     GaussianPair::new(0.5, 1.0, 0.5, 1.000_000_1), // near-equal scales
//! ];
//! // The GPU when there is one (and the batch is large), else the CPU.
//! let gaussdiv = Evaluator::new(Backend::Auto)?;
//! let request = Request::default(); // cross-entropy, KL, entropy; σ given
//! let mut out = vec![0f32; pairs.len() * request.values_per_pair()];
//! gaussdiv.evaluate(Batch::Pairs(&pairs), &request, &mut out)?;
//! assert!((out[1] - 0.443_147_2).abs() < 1e-6); // KL(N(0, 1) ‖ N(1, 4))
//! assert!(out[4] > 0.0);
//!
//! // Check every result against the CPU f64 reference.
//! let report = gaussdiv::verify(Batch::Pairs(&pairs), &request, &out, Tolerance::GPU_F32)?;
//! assert!(report.passed(), "{report}");
//! # Ok::<(), gaussdiv::Error>(())
//! ```
//!
//! ## The API
//!
//! * [`Evaluator`]: the one evaluator, on the GPU (its own device, or the
//!   app's through [`Evaluator::from_device`]), on the CPU, or [`Backend::Auto`]
//!   (routing by a measured crossover and by what the GPU can run, with
//!   recovery from GPU failures). [`evaluate_async`](Evaluator::evaluate_async)
//!   is the primitive, [`evaluate`](Evaluator::evaluate) its blocking form,
//!   [`encode`](Evaluator::encode) records into an app's command encoder.
//! * [`Batch`]: the host layouts — pairs, columns (structure of arrays),
//!   pairwise N × M (and broadcast), diagonal multivariate rows, and
//!   full-covariance pairs and pairwise sets ([`MvnPairs`], [`MvnSet`]) —
//!   in f32 or f64 ([`Float`]); [`DeviceBatch`] the same on the device.
//! * [`Request`]: measures ([`Metrics`] of [`Metric`]) or their gradients,
//!   the parameterisation of the inputs ([`Param`]) and the invalid-input
//!   policy ([`OnInvalid`]).
//! * [`verify()`]: the tolerance model (docs/ARCHITECTURE.md §3), against
//!   the CPU f64 reference; reports the worst row.
//!
//! ## Integration into a wgpu app
//!
//! Share the app's device, record into its encoder, read and write its
//! buffers — no host copies, one submit:
//!
//! ```no_run
//! use gaussdiv::{wgpu, DeviceBatch, DeviceInput, Evaluator, GaussianPair, Options, Request};
//! use wgpu::util::DeviceExt;
//!
//! # fn app(device: &wgpu::Device, queue: &wgpu::Queue) -> Result<(), gaussdiv::Error> {
//! // `device` and `queue` are the app's own.
//! let gaussdiv = Evaluator::from_device(device, queue, Options::default())?;
//!
//! let pairs = [GaussianPair::<f32>::new(0.0, 1.0, 1.0, 2.0); 1024];
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
//! let batch = DeviceBatch {
//!     input: DeviceInput::Pairs { pairs: input.slice(..), count: 1024 },
//!     output: output.slice(..),
//! };
//! gaussdiv.encode(&mut encoder, batch, &Request::default())?;
//! // … more passes reading `output` …
//! queue.submit([encoder.finish()]);
//! # Ok(())
//! # }
//! ```
//!
//! In async code, [`Evaluator::evaluate_async`] waits for the GPU on a
//! helper thread and never blocks the executor waiting for it
//! (`examples/async_app.rs` runs it on a tokio runtime next to a task that
//! must stay responsive).
//!
//! ## Accuracy
//!
//! Measured on the 2000 adversarial rows of `tests/data/golden_public.csv`
//! against 50-digit truth, every row is within 1e-6 (CPU f32), 2e-6 (GPU f32)
//! and 1e-14 (CPU and GPU f64); likewise every measure in every
//! parameterisation on `tests/data/golden_measures_*.csv` (largest errors
//! 4.3e-7 in f32, 6.5e-16 in f64). docs/ARCHITECTURE.md §2 explains the
//! formulation.
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
mod mvn;
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
pub use mvn::{Covariance, MatrixForm, MvnPairs, MvnSet, SYM_TOL_ULPS};
pub use pair::{
    Divergences, Divergences64, Float, Gaussian, Gaussian64, GaussianPair, GaussianPair64, Metric,
    Metrics, Param,
};
pub use request::{Output, Request};
pub use validate::OnInvalid;
pub use verify::{verify, verify_mvn, Precision, Tolerance, VerifyReport};
/// The wgpu this crate is built against, so callers can match its version.
pub use wgpu;

#[cfg(feature = "test-hooks")]
#[doc(hidden)]
pub use gpu::Fault;

/// The README's Rust examples, compiled as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
pub struct ReadmeDoctests;
