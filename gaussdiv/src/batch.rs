//! The layouts a batch comes in ([`Batch`] on the host, [`DeviceBatch`] on
//! the device) and, per precision, which internal path evaluates each of
//! them on the CPU and on the GPU ([`Elem`]).

use crate::cpu;
use crate::error::{Error, Result};
use crate::gpu::{GpuEvaluator, WaitMode};
use crate::pair::{EvalOptions, Float, Gaussian, GaussianPair, GaussianPair64};
use crate::validate;
use std::future::Future;

/// A batch in host memory, in one of six layouts. `T` is the precision
/// (`f32` or `f64`) of the inputs and of the output.
///
/// The output of a call is row-major: [`Request::values_per_pair`](crate::Request::values_per_pair)
/// values per pair ([`Batch::Pairs`], [`Batch::Columns`]), per cell
/// ([`Batch::Pairwise`]) or per row ([`Batch::Diagonal`]).
#[derive(Clone, Copy, Debug)]
pub enum Batch<'a, T: Float> {
    /// An array of pairs.
    Pairs(&'a [GaussianPair<T>]),
    /// The same pairs kept as a structure of arrays: μ1, a1, μ2, a2, of one
    /// length (pair `i` is the `i`-th value of each).
    Columns([&'a [T]; 4]),
    /// Every p_i against every q_j, like `cdist`: N·M cells, cell (i, j) at
    /// output row `i·M + j`. Broadcast (many p against one q, e.g. the VAE
    /// prior N(0, 1)) is `q` of length 1.
    Pairwise {
        /// The first distributions p_i (N of them).
        p: &'a [Gaussian<T>],
        /// The second distributions q_j (M of them).
        q: &'a [Gaussian<T>],
    },
    /// Diagonal multivariate Gaussians p = N(μ1, diag(σ1²)), q = N(μ2,
    /// diag(σ2²)) of `dims` dimensions: `pairs` holds the rows one after the
    /// other (row `r`, dim `d` at `pairs[r·dims + d]`), and each row gets the
    /// measures of its joint distributions. The additive measures are sums
    /// over the dims (compensated; formed on the GPU by the kernel itself),
    /// the Bhattacharyya coefficient exp(−Σ D_B), Hellinger √(1 − exp(−Σ D_B)),
    /// 2-Wasserstein √(Σ W_d²). Measures only (no gradients).
    Diagonal {
        /// N·`dims` pairs.
        pairs: &'a [GaussianPair<T>],
        /// Dimensions per row (≥ 1).
        dims: usize,
    },
    /// Full-covariance multivariate Gaussians: N pairs N(μ1, Σ1), N(μ2, Σ2),
    /// each side's matrices as covariances, Cholesky factors or precisions
    /// ([`crate::Covariance`]); one output row per pair. Measures only. On
    /// the GPU (dims ≤ 64) the kernel evaluates the pairs far apart and the
    /// CPU the rest (docs/ARCHITECTURE.md §9); the CPU takes any dims.
    Mvn(crate::MvnPairs<'a, T>),
    /// Every full-covariance p_i against every q_j (Gaussian-mixture
    /// reduction): N·M cells, cell (i, j) at output row `i·M + j`, as
    /// [`Batch::Pairwise`]. Both sets share `dims`; each gives its matrices
    /// in its own form. An invalid Gaussian is named by its index in its set
    /// ([`Error::InvalidMatrix`] with `mu1`/`cov1`/… for p, `mu2`/`cov2`/…
    /// for q). Measures only; on the GPU as [`Batch::Mvn`].
    MvnPairwise {
        /// The first distributions p_i (N of them).
        p: crate::MvnSet<'a, T>,
        /// The second distributions q_j (M of them).
        q: crate::MvnSet<'a, T>,
    },
}

impl<'a, T: Float> Batch<'a, T> {
    /// The number of pairs the batch evaluates (the routing's size).
    pub(crate) fn elements(&self) -> usize {
        match self {
            Batch::Pairs(p) | Batch::Diagonal { pairs: p, .. } => p.len(),
            Batch::Columns(c) => c[0].len(),
            Batch::Pairwise { p, q } => p.len().saturating_mul(q.len()),
            Batch::Mvn(m) => m.len(),
            Batch::MvnPairwise { p, q } => p.len().saturating_mul(q.len()),
        }
    }

    /// The same batch viewed in the precision `U` (the identity cast; `None`
    /// when `U` is not `T`).
    pub(crate) fn cast<U: Float>(self) -> Option<Batch<'a, U>> {
        if T::PRECISION != U::PRECISION {
            return None;
        }
        Some(match self {
            Batch::Pairs(p) => Batch::Pairs(bytemuck::try_cast_slice(p).ok()?),
            Batch::Columns([a, b, c, d]) => Batch::Columns([
                bytemuck::try_cast_slice(a).ok()?,
                bytemuck::try_cast_slice(b).ok()?,
                bytemuck::try_cast_slice(c).ok()?,
                bytemuck::try_cast_slice(d).ok()?,
            ]),
            Batch::Pairwise { p, q } => Batch::Pairwise {
                p: bytemuck::try_cast_slice(p).ok()?,
                q: bytemuck::try_cast_slice(q).ok()?,
            },
            Batch::Diagonal { pairs, dims } => Batch::Diagonal {
                pairs: bytemuck::try_cast_slice(pairs).ok()?,
                dims,
            },
            Batch::Mvn(m) => Batch::Mvn(m.cast()?),
            Batch::MvnPairwise { p, q } => Batch::MvnPairwise {
                p: p.cast()?,
                q: q.cast()?,
            },
        })
    }
}

/// The inputs of a batch that lives on the device (in the app's buffers),
/// for [`Evaluator::encode`](crate::Evaluator::encode). f32 only. Every
/// slice needs `STORAGE` usage, an offset aligned to the device's
/// `min_storage_buffer_offset_alignment` and room for its values.
#[derive(Clone, Copy, Debug)]
pub enum DeviceInput<'a> {
    /// `count` [`GaussianPair`]s (16 bytes each) from the start of the slice.
    Pairs {
        /// The pairs.
        pairs: wgpu::BufferSlice<'a>,
        /// How many.
        count: u64,
    },
    /// Four arrays of `count` f32 each: μ1, a1, μ2, a2.
    Columns {
        /// The arrays.
        columns: [wgpu::BufferSlice<'a>; 4],
        /// Values per array.
        count: u64,
    },
    /// `n` [`Gaussian`]s p (8 bytes each) against `m` Gaussians q: `n·m`
    /// cells, row-major. p and q are bound whole: each must fit one binding.
    Pairwise {
        /// The Gaussians p.
        p: wgpu::BufferSlice<'a>,
        /// How many p.
        n: u64,
        /// The Gaussians q.
        q: wgpu::BufferSlice<'a>,
        /// How many q.
        m: u64,
    },
    /// `rows` rows of `dims` pairs (row `r`, dim `d` at pair `r·dims + d`).
    Diagonal {
        /// The pairs.
        pairs: wgpu::BufferSlice<'a>,
        /// Rows (output rows).
        rows: u64,
        /// Dimensions per row.
        dims: u64,
    },
    /// `count` full-covariance pairs in the packed layout (pair after pair,
    /// each 2d + 2d² f32: μ1, the side-1 matrix row-major, μ2, the side-2
    /// matrix; [`MvnPairs::packed`](crate::MvnPairs::packed) writes it), each side's
    /// matrices in the form `forms` says; `dims` ≤ 64. The kernel evaluates
    /// the pairs far apart (‖L2⁻¹Σ1L2⁻ᵀ − I‖_F ≥ ½) and writes a row of NaN
    /// for every pair it leaves: invalid input (the checks of
    /// [`Covariance`](crate::Covariance)), pairs close together (their
    /// accurate forms run on the CPU), failed factorisations, the f32 values
    /// the CPU computes in f64 (Bhattacharyya coefficients of a large
    /// distance; for dims > 32 the Bhattacharyya group and W₂), and, on llvmpipe,
    /// pairs whose loops reached that driver's iteration limit.
    /// [`Evaluator::complete`](crate::Evaluator::complete) evaluates those
    /// rows on the CPU from a host copy.
    Mvn {
        /// The packed pairs.
        pairs: wgpu::BufferSlice<'a>,
        /// How many.
        count: u64,
        /// The dimension d (1 to 64).
        dims: u32,
        /// The forms of side 1 and side 2.
        forms: [crate::MatrixForm; 2],
    },
}

/// A batch on the device: its inputs and the slice the results go to
/// ([`Request::values_per_pair`](crate::Request::values_per_pair) f32 per
/// pair, cell or row, from the start of `output`; `STORAGE` usage; it may
/// not be one of the input buffers).
#[derive(Clone, Copy, Debug)]
pub struct DeviceBatch<'a> {
    /// The inputs.
    pub input: DeviceInput<'a>,
    /// The results.
    pub output: wgpu::BufferSlice<'a>,
}

/// One precision's internal paths (implemented for f32 and f64).
pub(crate) trait Elem: Float + crate::mvn::MvnReal {
    /// The measures of an array of pairs on the CPU (invalid pairs NaN).
    fn cpu_measures(pairs: &[GaussianPair<Self>], o: EvalOptions, out: &mut [Self]) -> Result<()>;
    /// The measures (or the gradients) of four columns on the CPU, read in
    /// place, in parallel (invalid pairs NaN); whether any row is NaN.
    fn cpu_columns(
        columns: [&[Self]; 4],
        o: EvalOptions,
        gradients: bool,
        out: &mut [Self],
    ) -> Result<bool>;
    /// The gradients of an array of pairs on the CPU (invalid pairs NaN).
    fn cpu_gradients(pairs: &[GaussianPair<Self>], o: EvalOptions, out: &mut [Self]) -> Result<()>;
    /// The diagonal layout on the CPU (rows with an invalid element NaN).
    fn cpu_diagonal(
        pairs: &[GaussianPair<Self>],
        dims: usize,
        o: EvalOptions,
        out: &mut [Self],
    ) -> Result<()>;
    /// Full-covariance pairs on the CPU (invalid pairs NaN, and the first
    /// one an error under [`crate::OnInvalid::Error`]).
    fn cpu_mvn(cells: crate::mvn::Cells<'_, Self>, o: EvalOptions, out: &mut [Self]) -> Result<()>;
    /// Ok, or the first invalid pair (index `offset + i`).
    fn validate(pairs: &[GaussianPair<Self>], o: EvalOptions, offset: usize) -> Result<()>;
    /// Whether the GPU runs this precision (every layout, measures and gradients).
    fn gpu_can(g: &GpuEvaluator) -> bool;
    /// Measures or gradients of an array of pairs on the GPU.
    fn gpu_pairs<'a>(
        g: &'a GpuEvaluator,
        pairs: &'a [GaussianPair<Self>],
        o: EvalOptions,
        gradients: bool,
        out: &'a mut [Self],
        mode: WaitMode,
    ) -> impl Future<Output = Result<()>> + Send + 'a;
    /// The pairwise layout on the GPU from the Gaussians themselves, when
    /// the kernel can (else `None`: the caller forms the pairs).
    fn gpu_pairwise<'a>(
        g: &'a GpuEvaluator,
        p: &'a [Gaussian<Self>],
        q: &'a [Gaussian<Self>],
        o: EvalOptions,
        out: &'a mut [Self],
        mode: WaitMode,
    ) -> Option<impl Future<Output = Result<()>> + Send + 'a>;
    /// The diagonal layout on the GPU.
    fn gpu_diagonal<'a>(
        g: &'a GpuEvaluator,
        pairs: &'a [GaussianPair<Self>],
        dims: usize,
        o: EvalOptions,
        out: &'a mut [Self],
        mode: WaitMode,
    ) -> impl Future<Output = Result<()>> + Send + 'a;
}

// The futures are spelled out (not `async fn`) so that they are `Send`.
#[allow(clippy::manual_async_fn)]
impl Elem for f32 {
    fn cpu_measures(pairs: &[GaussianPair], o: EvalOptions, out: &mut [f32]) -> Result<()> {
        cpu::evaluate_with(pairs, o, out)
    }

    fn cpu_columns(
        columns: [&[f32]; 4],
        o: EvalOptions,
        gradients: bool,
        out: &mut [f32],
    ) -> Result<bool> {
        columns_on_cpu(columns, o, gradients, out)
    }

    fn cpu_gradients(pairs: &[GaussianPair], o: EvalOptions, out: &mut [f32]) -> Result<()> {
        crate::gradient::cpu_gradients_with(pairs, o, out)
    }

    fn cpu_diagonal(
        pairs: &[GaussianPair],
        dims: usize,
        o: EvalOptions,
        out: &mut [f32],
    ) -> Result<()> {
        cpu::diagonal_with(pairs, dims, o, out)
    }

    fn cpu_mvn(cells: crate::mvn::Cells<'_, f32>, o: EvalOptions, out: &mut [f32]) -> Result<()> {
        crate::mvn::evaluate(cells, o, out)
    }

    fn validate(pairs: &[GaussianPair], o: EvalOptions, offset: usize) -> Result<()> {
        validate::validate_param_at(pairs, o.param, offset)
    }

    fn gpu_can(_: &GpuEvaluator) -> bool {
        true
    }

    fn gpu_pairs<'a>(
        g: &'a GpuEvaluator,
        pairs: &'a [GaussianPair],
        o: EvalOptions,
        gradients: bool,
        out: &'a mut [f32],
        mode: WaitMode,
    ) -> impl Future<Output = Result<()>> + Send + 'a {
        g.run_pairs(pairs, o, gradients, out, mode)
    }

    fn gpu_pairwise<'a>(
        g: &'a GpuEvaluator,
        p: &'a [Gaussian],
        q: &'a [Gaussian],
        o: EvalOptions,
        out: &'a mut [f32],
        mode: WaitMode,
    ) -> Option<impl Future<Output = Result<()>> + Send + 'a> {
        // The device-resident kernel binds p and q whole.
        let fits = |len: usize| (len as u64).saturating_mul(8) <= g.max_binding_bytes();
        (fits(p.len()) && fits(q.len())).then(|| g.run_pairwise(p, q, o, out, mode))
    }

    fn gpu_diagonal<'a>(
        g: &'a GpuEvaluator,
        pairs: &'a [GaussianPair],
        dims: usize,
        o: EvalOptions,
        out: &'a mut [f32],
        mode: WaitMode,
    ) -> impl Future<Output = Result<()>> + Send + 'a {
        g.run_diagonal(pairs, dims, o, out, mode)
    }
}

#[allow(clippy::manual_async_fn)]
impl Elem for f64 {
    fn cpu_measures(pairs: &[GaussianPair64], o: EvalOptions, out: &mut [f64]) -> Result<()> {
        cpu::evaluate_f64_with(pairs, o, out)
    }

    fn cpu_columns(
        columns: [&[f64]; 4],
        o: EvalOptions,
        gradients: bool,
        out: &mut [f64],
    ) -> Result<bool> {
        columns_on_cpu(columns, o, gradients, out)
    }

    fn cpu_gradients(pairs: &[GaussianPair64], o: EvalOptions, out: &mut [f64]) -> Result<()> {
        crate::gradient::cpu_gradients_f64_with(pairs, o, out)
    }

    fn cpu_diagonal(
        pairs: &[GaussianPair64],
        dims: usize,
        o: EvalOptions,
        out: &mut [f64],
    ) -> Result<()> {
        cpu::diagonal_f64_with(pairs, dims, o, out)
    }

    fn cpu_mvn(cells: crate::mvn::Cells<'_, f64>, o: EvalOptions, out: &mut [f64]) -> Result<()> {
        crate::mvn::evaluate(cells, o, out)
    }

    fn validate(pairs: &[GaussianPair64], o: EvalOptions, offset: usize) -> Result<()> {
        validate::validate_param_f64_at(pairs, o.param, offset)
    }

    fn gpu_can(g: &GpuEvaluator) -> bool {
        g.supports_f64()
    }

    fn gpu_pairs<'a>(
        g: &'a GpuEvaluator,
        pairs: &'a [GaussianPair64],
        o: EvalOptions,
        gradients: bool,
        out: &'a mut [f64],
        mode: WaitMode,
    ) -> impl Future<Output = Result<()>> + Send + 'a {
        g.run_pairs(pairs, o, gradients, out, mode)
    }

    fn gpu_pairwise<'a>(
        _: &'a GpuEvaluator,
        _: &'a [Gaussian64],
        _: &'a [Gaussian64],
        _: EvalOptions,
        _: &'a mut [f64],
        _: WaitMode,
    ) -> Option<impl Future<Output = Result<()>> + Send + 'a> {
        // The f64 cells are formed on the host and evaluated by the per-pair kernel.
        None::<std::future::Ready<Result<()>>>
    }

    fn gpu_diagonal<'a>(
        g: &'a GpuEvaluator,
        pairs: &'a [GaussianPair64],
        dims: usize,
        o: EvalOptions,
        out: &'a mut [f64],
        mode: WaitMode,
    ) -> impl Future<Output = Result<()>> + Send + 'a {
        g.run_diagonal(pairs, dims, o, out, mode)
    }
}

use crate::pair::Gaussian64;

/// Measures or gradients of four columns on the CPU (either precision).
fn columns_on_cpu<T: crate::math::Real + Send + Sync>(
    columns: [&[T]; 4],
    o: EvalOptions,
    gradients: bool,
    out: &mut [T],
) -> Result<bool> {
    if gradients {
        crate::gradient::cpu_gradient_columns(columns, o, out)
    } else {
        cpu::evaluate_columns(columns, o, out)
    }
}

/// The common length of the four columns of a structure-of-arrays batch.
pub(crate) fn columns_len<T: Float>(columns: [&[T]; 4]) -> Result<usize> {
    let n = columns[0].len();
    match columns.iter().find(|c| c.len() != n) {
        Some(c) => Err(Error::LengthMismatch {
            what: "structure-of-arrays column",
            expected: n as u64,
            got: c.len() as u64,
        }),
        None => Ok(n),
    }
}

/// The pair (p_i, q_j) of cell `c = i·M + j` of a pairwise batch.
pub(crate) fn cell_pair<T: Float>(
    p: &[Gaussian<T>],
    q: &[Gaussian<T>],
    c: usize,
) -> Option<GaussianPair<T>> {
    let m = q.len().max(1);
    Some(GaussianPair::from_gaussians(*p.get(c / m)?, *q.get(c % m)?))
}

/// The number of cells N·M of a pairwise batch, after checking that `out`
/// holds N·M·k values.
pub(crate) fn pairwise_cells(n: usize, m: usize, k: usize, out_len: usize) -> Result<usize> {
    let cells = n.checked_mul(m).ok_or_else(|| {
        Error::TooLarge(format!(
            "{n} × {m} pairs do not fit this platform's address space"
        ))
    })?;
    let expected = cells
        .checked_mul(k)
        .ok_or_else(|| Error::TooLarge(format!("{cells} × {k} values")))?;
    if out_len != expected {
        return Err(Error::LengthMismatch {
            what: "pairwise output",
            expected: expected as u64,
            got: out_len as u64,
        });
    }
    Ok(cells)
}

/// An invalid-input error of a block names the pair's index within the
/// block; make it the index in the whole batch.
pub(crate) fn absolute_index(e: Error, base: usize) -> Error {
    match e {
        Error::InvalidInput {
            index,
            field,
            value,
            reason,
        } => Error::InvalidInput {
            index: base + index,
            field,
            value,
            reason,
        },
        other => other,
    }
}
