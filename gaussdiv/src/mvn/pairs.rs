//! The host layouts of full-covariance batches: each side's matrices
//! ([`Covariance`], or [`MatrixForm`] on the device), pairs ([`MvnPairs`]),
//! the sets of a pairwise batch ([`MvnSet`]) and the packed layout the GPU
//! kernel reads.

use super::formulas::Kind;
use crate::error::{Error, Result};
use crate::pair::Float;

/// One side's matrices in a [`MvnPairs`] batch: `N·d·d` values, row-major,
/// pair after pair (the matrix of pair `i` at `[i·d², (i + 1)·d²)`).
///
/// * `Cov`: covariance matrices Σ, symmetric positive definite. Only the
///   lower triangle is used; the upper must equal it within a relative
///   tolerance of [`SYM_TOL_ULPS`](crate::SYM_TOL_ULPS)·d·u of √(a_ii·a_jj) (u = 2⁻²⁴ in f32,
///   2⁻⁵³ in f64), else the pair is invalid ("not symmetric").
/// * `ScaleTril`: lower Cholesky factors L (Σ = L·Lᵀ): a positive diagonal
///   and an upper triangle of exact zeros.
/// * `Precision`: precision matrices P = Σ⁻¹, symmetric positive definite
///   (the symmetry rule of `Cov`).
#[derive(Clone, Copy, Debug)]
pub enum Covariance<'a, T: Float> {
    /// Covariance matrices Σ.
    Cov(&'a [T]),
    /// Lower Cholesky factors of the covariances (`scale_tril`).
    ScaleTril(&'a [T]),
    /// Precision matrices Σ⁻¹.
    Precision(&'a [T]),
}

impl<'a, T: Float> Covariance<'a, T> {
    /// The values, whichever form they are in.
    pub fn values(&self) -> &'a [T] {
        match *self {
            Covariance::Cov(v) | Covariance::ScaleTril(v) | Covariance::Precision(v) => v,
        }
    }

    /// The name of this form for side `side` (1 or 2), as error messages
    /// and the tool's NPZ arrays spell it: `cov1`, `scale_tril2`, `precision1`, ….
    pub const fn name(&self, side: u8) -> &'static str {
        match (self, side) {
            (Covariance::Cov(_), 1) => "cov1",
            (Covariance::Cov(_), _) => "cov2",
            (Covariance::ScaleTril(_), 1) => "scale_tril1",
            (Covariance::ScaleTril(_), _) => "scale_tril2",
            (Covariance::Precision(_), 1) => "precision1",
            (Covariance::Precision(_), _) => "precision2",
        }
    }

    pub(super) fn kind(&self) -> Kind {
        match self {
            Covariance::Cov(_) => Kind::Cov,
            Covariance::ScaleTril(_) => Kind::Tril,
            Covariance::Precision(_) => Kind::Prec,
        }
    }

    fn cast<U: Float>(self) -> Option<Covariance<'a, U>> {
        let c = |v: &'a [T]| bytemuck::try_cast_slice::<T, U>(v).ok();
        Some(match self {
            Covariance::Cov(v) => Covariance::Cov(c(v)?),
            Covariance::ScaleTril(v) => Covariance::ScaleTril(c(v)?),
            Covariance::Precision(v) => Covariance::Precision(c(v)?),
        })
    }
}

/// The form one side's matrices are given in, without the matrices: a side
/// of a device batch ([`DeviceInput::Mvn`](crate::DeviceInput::Mvn)), as
/// [`Covariance`] is of a host batch.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MatrixForm {
    /// Covariance matrices Σ (see [`Covariance::Cov`]).
    Cov,
    /// Lower Cholesky factors of the covariances (see [`Covariance::ScaleTril`]).
    ScaleTril,
    /// Precision matrices Σ⁻¹ (see [`Covariance::Precision`]).
    Precision,
}

impl MatrixForm {
    /// The code the GPU kernel reads (`shaders/mvn.wgsl`).
    pub(crate) const fn code(self) -> u32 {
        match self {
            MatrixForm::Cov => 0,
            MatrixForm::ScaleTril => 1,
            MatrixForm::Precision => 2,
        }
    }
}

/// Values per pair in the packed layout of full-covariance pairs that the
/// GPU kernel reads ([`crate::DeviceInput::Mvn`], [`MvnPairs::packed`]): μ1
/// (d), the side-1 matrix (d², row-major), μ2 (d), the side-2 matrix (d²):
/// 2d(d + 1), always a multiple of 4 (the kernel reads `vec4`s).
pub(crate) const fn packed_stride(dims: usize) -> usize {
    2 * dims * (dims + 1)
}

/// One packed pair ([`packed_stride`]): μ1, the side-1 matrix, μ2, the
/// side-2 matrix, one after the other into `row` (a missing part, which the
/// callers' length checks rule out, leaves its place unwritten).
pub(crate) fn pack_pair<T: Copy>(row: &mut [T], parts: [Option<&[T]>; 4]) {
    let mut at = 0;
    for part in parts {
        let part = part.unwrap_or_default();
        if let Some(slot) = row.get_mut(at..at + part.len()) {
            slot.copy_from_slice(part);
        }
        at += part.len();
    }
}

/// N pairs of `dims`-dimensional Gaussians p1 = N(μ1, Σ1), p2 = N(μ2, Σ2)
/// with full covariance matrices: the [`Batch::Mvn`](crate::Batch::Mvn)
/// layout. Means are `N·d` values (pair `i` at `[i·d, (i + 1)·d)`), the
/// matrices as [`Covariance`] says; the two sides may be given in different
/// forms. The output holds [`Request::values_per_pair`](crate::Request::values_per_pair)
/// values per pair; the request's [`Param`](crate::Param) does not apply
/// (each side says its form) and gradients are not available.
///
/// ```
/// use gaussdiv::{Backend, Batch, Covariance, Evaluator, Metrics, MvnPairs, Request};
///
/// // One pair in d = 2: Σ1 = I against Σ2 given by its Cholesky factor.
/// let mvn = MvnPairs {
///     dims: 2,
///     mu1: &[0.0_f64, 0.0],
///     cov1: Covariance::Cov(&[1.0, 0.0, 0.0, 1.0]),
///     mu2: &[1.0, 0.0],
///     cov2: Covariance::ScaleTril(&[2.0, 0.0, 0.0, 1.0]),
/// };
/// let ev = Evaluator::new(Backend::Cpu)?;
/// let request = Request::measures(Metrics::ALL);
/// let mut out = vec![0.0; request.values_per_pair()];
/// ev.evaluate(Batch::Mvn(mvn), &request, &mut out)?;
/// // KL = ½(¼ + 1 − 2 + ln 4 + ¼)
/// assert!((out[1] - 0.5 * (0.5 - 1.0 + 4f64.ln())).abs() < 1e-15);
/// # Ok::<(), gaussdiv::Error>(())
/// ```
#[derive(Clone, Copy, Debug)]
pub struct MvnPairs<'a, T: Float> {
    /// The dimension d (≥ 1).
    pub dims: usize,
    /// Means of p1, `N·d` values.
    pub mu1: &'a [T],
    /// Covariances of p1, `N·d·d` values.
    pub cov1: Covariance<'a, T>,
    /// Means of p2, `N·d` values.
    pub mu2: &'a [T],
    /// Covariances of p2, `N·d·d` values.
    pub cov2: Covariance<'a, T>,
}

impl<'a, T: Float> MvnPairs<'a, T> {
    /// The number of pairs N (`mu1.len() / dims`; 0 for `dims` = 0).
    pub fn len(&self) -> usize {
        self.mu1.len().checked_div(self.dims).unwrap_or(0)
    }

    /// Whether the batch holds no pair.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The pairs in the packed layout of the device path
    /// ([`DeviceInput::Mvn`](crate::DeviceInput::Mvn)): pair after pair, each
    /// 2d + 2d² values (μ1, the side-1 matrix row-major, μ2, the side-2
    /// matrix), ready to upload. The lengths are
    /// checked as by [`Evaluator::evaluate`](crate::Evaluator::evaluate)
    /// ([`Error::LengthMismatch`], [`Error::Unsupported`] for dims 0).
    pub fn packed(&self) -> Result<Vec<T>> {
        let n = self.checked_len(0, 0)?;
        let d = self.dims;
        let (dd, stride) = (d * d, packed_stride(d));
        let len = n
            .checked_mul(stride)
            .ok_or_else(|| Error::TooLarge(format!("{n} pairs × {stride} values")))?;
        let mut out = vec![T::default(); len];
        for (i, row) in out.chunks_exact_mut(stride).enumerate() {
            let parts = [
                self.mu1.get(i * d..(i + 1) * d),
                self.cov1.values().get(i * dd..(i + 1) * dd),
                self.mu2.get(i * d..(i + 1) * d),
                self.cov2.values().get(i * dd..(i + 1) * dd),
            ];
            pack_pair(row, parts);
        }
        Ok(out)
    }

    /// The same batch viewed in precision `U` (`None` unless `U` is `T`).
    pub(crate) fn cast<U: Float>(self) -> Option<MvnPairs<'a, U>> {
        Some(MvnPairs {
            dims: self.dims,
            mu1: bytemuck::try_cast_slice(self.mu1).ok()?,
            cov1: self.cov1.cast()?,
            mu2: bytemuck::try_cast_slice(self.mu2).ok()?,
            cov2: self.cov2.cast()?,
        })
    }

    /// The number of pairs after checking every length against `dims` and
    /// the output length against `k` values per pair.
    pub(super) fn checked_len(&self, k: usize, out_len: usize) -> Result<usize> {
        let d = self.dims;
        if d == 0 {
            return Err(Error::Unsupported(
                "a full-covariance batch needs dims ≥ 1".into(),
            ));
        }
        let n = self.mu1.len() / d;
        let dd = d
            .checked_mul(d)
            .ok_or_else(|| Error::TooLarge(format!("dims {d}")))?;
        let mismatch = |what: &'static str, expected: usize, got: usize| Error::LengthMismatch {
            what,
            expected: expected as u64,
            got: got as u64,
        };
        let need = |per: usize| {
            n.checked_mul(per)
                .ok_or_else(|| Error::TooLarge(format!("{n} pairs × {per} values")))
        };
        if self.mu1.len() != n * d {
            return Err(mismatch("mu1 (a multiple of dims)", n * d, self.mu1.len()));
        }
        if self.mu2.len() != n * d {
            return Err(mismatch("mu2 (N·dims values)", n * d, self.mu2.len()));
        }
        if self.cov1.values().len() != need(dd)? {
            return Err(mismatch(
                self.cov1.name(1),
                n * dd,
                self.cov1.values().len(),
            ));
        }
        if self.cov2.values().len() != need(dd)? {
            return Err(mismatch(
                self.cov2.name(2),
                n * dd,
                self.cov2.values().len(),
            ));
        }
        if out_len != need(k)? {
            return Err(mismatch("full-covariance output", n * k, out_len));
        }
        Ok(n)
    }
}

/// A set of `dims`-dimensional Gaussians N(μ_i, Σ_i) with full covariance:
/// one side of [`Batch::MvnPairwise`](crate::Batch::MvnPairwise). Means are
/// `N·d` values, matrices `N·d·d` as [`Covariance`] says.
#[derive(Clone, Copy, Debug)]
pub struct MvnSet<'a, T: Float> {
    /// The dimension d (≥ 1; both sets of a pairwise batch share it).
    pub dims: usize,
    /// Means, `N·d` values.
    pub mu: &'a [T],
    /// Matrices, `N·d·d` values.
    pub cov: Covariance<'a, T>,
}

impl<'a, T: Float> MvnSet<'a, T> {
    /// The number of Gaussians N (`mu.len() / dims`; 0 for `dims` = 0).
    pub fn len(&self) -> usize {
        self.mu.len().checked_div(self.dims).unwrap_or(0)
    }

    /// Whether the set holds no Gaussian.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub(crate) fn cast<U: Float>(self) -> Option<MvnSet<'a, U>> {
        Some(MvnSet {
            dims: self.dims,
            mu: bytemuck::try_cast_slice(self.mu).ok()?,
            cov: self.cov.cast()?,
        })
    }

    /// The set's length after checking its arrays against `dims`; `side`
    /// (1 for p, 2 for q) names them as the pair layout does.
    pub(super) fn checked_len(&self, side: u8) -> Result<usize> {
        let d = self.dims;
        let n = self.len();
        let mismatch = |what: &'static str, expected: usize, got: usize| Error::LengthMismatch {
            what,
            expected: expected as u64,
            got: got as u64,
        };
        if self.mu.len() != n * d {
            let what = if side == 1 {
                "mu1 (p's means, a multiple of dims)"
            } else {
                "mu2 (q's means, a multiple of dims)"
            };
            return Err(mismatch(what, n * d, self.mu.len()));
        }
        let dd = d
            .checked_mul(d)
            .and_then(|dd| dd.checked_mul(n))
            .ok_or_else(|| Error::TooLarge(format!("{n} matrices of dims {d}")))?;
        if self.cov.values().len() != dd {
            return Err(mismatch(self.cov.name(side), dd, self.cov.values().len()));
        }
        Ok(n)
    }
}
