//! [`Request`]: what one call evaluates — the measures or their gradients,
//! the parameterisation of the inputs and what invalid input does — the same
//! value for every layout, precision and backend.

use crate::error::Result;
use crate::gradient::{check_metrics, PER_MEASURE};
use crate::pair::{EvalOptions, Metrics, Param};
use crate::validate::OnInvalid;

/// What a [`Request`] writes for each pair (or cell, or row).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Output {
    /// The selected measures: `metrics.len()` values per pair, in canonical
    /// order (that of [`crate::Metric::ALL`]) whatever order they were named in.
    Measures(Metrics),
    /// The gradients of the selected measures (cross-entropy and/or KL) with
    /// respect to the inputs `(μ1, a1, μ2, a2)` in the request's
    /// parameterisation: 4 values per measure and pair, `[∂/∂μ1, ∂/∂a1,
    /// ∂/∂μ2, ∂/∂a2]`, cross-entropy first — the layout of
    /// [`crate::Gradients`] when both are selected. Available for arrays of
    /// pairs (and their columns); other measures are [`Error::Unsupported`](crate::Error::Unsupported).
    Gradients(Metrics),
}

/// What to evaluate: measures or gradients, the parameterisation of the
/// inputs, and the policy for invalid input.
///
/// ```
/// use gaussdiv::{Metric, Metrics, OnInvalid, Param, Request};
///
/// let kl_of_logvar = Request::measures(Metrics::new(&[Metric::Kl]).unwrap())
///     .with_param(Param::LogVar)
///     .with_on_invalid(OnInvalid::Nan);
/// assert_eq!(kl_of_logvar.values_per_pair(), 1);
/// assert_eq!(Request::gradients(Metrics::CE_KL).values_per_pair(), 8);
/// assert_eq!(Request::default().values_per_pair(), 3); // CE, KL, entropy
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Request {
    /// Measures or gradients, and which.
    pub output: Output,
    /// How the second and fourth input values give σ (default: σ itself).
    pub param: Param,
    /// Invalid input (σ ≤ 0, NaN, ±∞ …): an [`Error::InvalidInput`](crate::Error::InvalidInput) naming the
    /// first invalid row (default), or NaN in its output row.
    pub on_invalid: OnInvalid,
}

impl Default for Request {
    /// Cross-entropy, KL and entropy of pairs given by σ; invalid input an error.
    fn default() -> Self {
        Request::measures(Metrics::CE_KL_ENTROPY)
    }
}

impl Request {
    /// The measures `metrics` of pairs given by σ; invalid input an error.
    pub const fn measures(metrics: Metrics) -> Request {
        Request {
            output: Output::Measures(metrics),
            param: Param::Std,
            on_invalid: OnInvalid::Error,
        }
    }

    /// The gradients of `metrics` (cross-entropy and/or KL) of pairs given
    /// by σ; invalid input an error.
    pub const fn gradients(metrics: Metrics) -> Request {
        Request {
            output: Output::Gradients(metrics),
            param: Param::Std,
            on_invalid: OnInvalid::Error,
        }
    }

    /// The same request for inputs in `param`.
    pub const fn with_param(self, param: Param) -> Request {
        Request { param, ..self }
    }

    /// The same request with the invalid-input policy `on_invalid`.
    pub const fn with_on_invalid(self, on_invalid: OnInvalid) -> Request {
        Request { on_invalid, ..self }
    }

    /// Output values per pair (per cell of a pairwise batch, per row of a
    /// diagonal one): the number of measures, or 4 per measure for gradients.
    pub const fn values_per_pair(&self) -> usize {
        match self.output {
            Output::Measures(m) => m.len(),
            Output::Gradients(m) => PER_MEASURE * m.len(),
        }
    }

    /// The selected measures (of the values or of the gradients).
    pub(crate) const fn metrics(&self) -> Metrics {
        match self.output {
            Output::Measures(m) | Output::Gradients(m) => m,
        }
    }

    pub(crate) const fn is_gradients(&self) -> bool {
        matches!(self.output, Output::Gradients(_))
    }

    /// The internal options; gradients of measures that have none are an error.
    pub(crate) fn options(&self) -> Result<EvalOptions> {
        if let Output::Gradients(m) = self.output {
            check_metrics(m)?;
        }
        Ok(EvalOptions {
            metrics: self.metrics(),
            param: self.param,
            on_invalid: self.on_invalid,
        })
    }
}
