//! The crate's error type.

use core::fmt;

/// Which parameter of a [`crate::GaussianPair`] a message is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Field {
    /// μ1.
    Mu1,
    /// σ1.
    Sigma1,
    /// μ2.
    Mu2,
    /// σ2.
    Sigma2,
}

impl Field {
    /// The column name used in files (`mu1`, `sigma1`, `mu2`, `sigma2`).
    pub const fn name(self) -> &'static str {
        match self {
            Field::Mu1 => "mu1",
            Field::Sigma1 => "sigma1",
            Field::Mu2 => "mu2",
            Field::Sigma2 => "sigma2",
        }
    }

    /// All fields in input order.
    pub const ALL: [Field; 4] = [Field::Mu1, Field::Sigma1, Field::Mu2, Field::Sigma2];
}

impl fmt::Display for Field {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Every way an operation of this crate can fail.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An input pair is not a pair of valid Gaussians: a mean that is NaN or
    /// infinite, or a standard deviation that is not finite and > 0.
    /// `index` is the 0-based position of the first such pair.
    #[error("invalid input at index {index}: {field} = {value} ({reason})")]
    InvalidInput {
        /// 0-based index of the first invalid pair.
        index: usize,
        /// The offending parameter.
        field: Field,
        /// Its value (widened to f64).
        value: f64,
        /// Why it is invalid.
        reason: &'static str,
    },
    /// An element of a diagonal multivariate input (see
    /// [`crate::Batch::Diagonal`]) is not a pair of valid Gaussians:
    /// `index` is its position in the flat input, `row` and `dim` its row and
    /// dimension (`index = row·dims + dim`).
    #[error("invalid input at index {index} (row {row}, dim {dim}): {field} = {value} ({reason})")]
    InvalidElement {
        /// 0-based index of the first invalid element in the flat input.
        index: usize,
        /// Its row.
        row: usize,
        /// Its dimension within the row.
        dim: usize,
        /// The offending parameter.
        field: Field,
        /// Its value (widened to f64).
        value: f64,
        /// Why it is invalid.
        reason: &'static str,
    },
    /// A full-covariance pair ([`crate::Batch::Mvn`]) is not valid input:
    /// a mean or matrix entry that is not finite, a covariance or precision
    /// matrix that is not symmetric (beyond the tolerance of
    /// [`crate::Covariance`]) or not positive definite (the reason names the
    /// Cholesky pivot where the factorisation failed), a `scale_tril` with a
    /// non-positive diagonal entry or a non-zero entry above the diagonal.
    /// `index` is the 0-based position of the first such pair.
    #[error("invalid input at pair {index}: {array}: {reason}")]
    InvalidMatrix {
        /// 0-based index of the first invalid pair.
        index: usize,
        /// The array at fault: `mu1`, `mu2`, `cov1`, `scale_tril1`,
        /// `precision1`, `cov2`, ….
        array: &'static str,
        /// What is wrong, with the entry's position and value.
        reason: String,
    },
    /// No GPU adapter could be found (or none matched `WGPU_ADAPTER_NAME`).
    #[error("no GPU adapter: {0}")]
    NoAdapter(String),
    /// The adapter refused to create a device.
    #[error("could not create a GPU device on {adapter}: {message}")]
    RequestDevice {
        /// Name of the adapter.
        adapter: String,
        /// What wgpu reported.
        message: String,
    },
    /// The operation is not available: the device lacks a feature or limit
    /// it needs, or the path does not offer it (e.g. gradients of a measure
    /// other than KL and cross-entropy). The message says which.
    #[error("not supported: {0}")]
    Unsupported(String),
    /// The GPU reported an error (validation, out of memory, internal).
    #[error("GPU error: {0}")]
    Gpu(String),
    /// Mapping a buffer for readback or upload failed.
    #[error("mapping a GPU buffer failed: {0}")]
    Map(String),
    /// The device was lost (destroyed, reset, driver failure); the evaluator
    /// must be recreated (see [`crate::GpuInfo::lost`]).
    #[error("GPU device lost: {0}")]
    DeviceLost(String),
    /// The GPU did not finish within the evaluator's timeout. The evaluator
    /// stays usable: its buffers are released and recreated on the next call.
    #[error("the GPU did not finish within {waited:?}")]
    Timeout {
        /// The timeout that expired.
        waited: std::time::Duration,
    },
    /// An output slice or buffer does not have the length the input requires.
    #[error("length mismatch for {what}: expected {expected}, got {got}")]
    LengthMismatch {
        /// What was too short or too long.
        what: &'static str,
        /// The length required.
        expected: u64,
        /// The length given.
        got: u64,
    },
    /// A buffer passed to [`crate::Evaluator::encode`] is unusable: no
    /// `STORAGE` usage, too small, a misaligned offset, a count of 0, or the
    /// output aliasing an input. (Buffers from another device cannot be
    /// detected here; wgpu reports them when the encoder is submitted.)
    #[error("invalid buffer argument: {0}")]
    InvalidBuffer(String),
    /// The request is too large for this platform's address space.
    #[error("request too large: {0}")]
    TooLarge(String),
}

/// `Result` with this crate's [`enum@Error`].
pub type Result<T, E = Error> = core::result::Result<T, E>;
