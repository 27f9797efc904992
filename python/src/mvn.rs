//! Full-covariance pairs (`gaussdiv.mvn`, docs/ARCHITECTURE.md §9): contiguous
//! means (N·d values) and matrices (N·d·d values, each side in its own form)
//! into a flat output of N·k values, computed with the GIL released.

use crate::convert::{self, to_py};
use crate::eval::slice;
use gaussdiv::{Backend, Batch, Covariance, Float, MvnPairs, MvnSet, Output};
use numpy::{Element, PyReadonlyArray1, PyReadwriteArray1};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;

/// One side's matrices in the form `kind` names.
fn form<'a, T: Float>(kind: &str, values: &'a [T]) -> PyResult<Covariance<'a, T>> {
    match kind {
        "cov" => Ok(Covariance::Cov(values)),
        "scale_tril" => Ok(Covariance::ScaleTril(values)),
        "precision" => Ok(Covariance::Precision(values)),
        _ => Err(PyValueError::new_err(format!(
            "unknown matrix form {kind:?}; expected \"cov\", \"scale_tril\" or \"precision\""
        ))),
    }
}

/// One side: means (N·dims values) and matrices (N·dims² values) in the
/// form `kind` names.
fn set<'a, T: Float + Element>(
    dims: usize,
    mu: &'a PyReadonlyArray1<'_, T>,
    mu_name: &str,
    m: &'a PyReadonlyArray1<'_, T>,
    kind: &str,
) -> PyResult<MvnSet<'a, T>> {
    Ok(MvnSet {
        dims,
        mu: slice(mu, mu_name)?,
        cov: form(kind, slice(m, kind)?)?,
    })
}

/// `metrics` of `batch` into `out` on `backend`, the GIL released.
fn run<T: Float + Element>(
    py: Python<'_>,
    batch: Batch<'_, T>,
    mut out: PyReadwriteArray1<'_, T>,
    metrics: &[String],
    backend: Backend,
    on_invalid: &str,
) -> PyResult<()> {
    let request = convert::request(
        Output::Measures(convert::metrics(metrics)?),
        "std",
        on_invalid,
    )?;
    let out = out
        .as_slice_mut()
        .map_err(|_| PyValueError::new_err("out must be a contiguous 1-D array"))?;
    py.detach(|| {
        let ev = convert::evaluator(backend)?;
        ev.evaluate(batch, &request, out)
    })
    .map_err(to_py)
}

/// Every p_i against every q_j into `out` (N·M·k values), on the CPU.
#[allow(clippy::too_many_arguments)]
fn pairwise<T: Float + Element>(
    py: Python<'_>,
    dims: usize,
    mu_p: &PyReadonlyArray1<'_, T>,
    m_p: &PyReadonlyArray1<'_, T>,
    kind_p: &str,
    mu_q: &PyReadonlyArray1<'_, T>,
    m_q: &PyReadonlyArray1<'_, T>,
    kind_q: &str,
    out: PyReadwriteArray1<'_, T>,
    metrics: &[String],
    on_invalid: &str,
) -> PyResult<()> {
    let p = set(dims, mu_p, "mu_p", m_p, kind_p)?;
    let q = set(dims, mu_q, "mu_q", m_q, kind_q)?;
    let batch = Batch::MvnPairwise { p, q };
    run(py, batch, out, metrics, Backend::Cpu, on_invalid)
}

/// Pair i of the two sides into row i of `out` (N·k values).
#[allow(clippy::too_many_arguments)]
fn measures<T: Float + Element>(
    py: Python<'_>,
    dims: usize,
    mu1: &PyReadonlyArray1<'_, T>,
    m1: &PyReadonlyArray1<'_, T>,
    kind1: &str,
    mu2: &PyReadonlyArray1<'_, T>,
    m2: &PyReadonlyArray1<'_, T>,
    kind2: &str,
    out: PyReadwriteArray1<'_, T>,
    metrics: &[String],
    backend: &str,
    on_invalid: &str,
) -> PyResult<()> {
    // "auto" is the CPU (as in the library); "gpu" the kernel for pairs far
    // apart and the CPU mirror for the rest.
    let backend = match convert::backend(backend)? {
        Backend::Gpu => Backend::Gpu,
        _ => Backend::Cpu,
    };
    let (a, b) = (
        set(dims, mu1, "mu1", m1, kind1)?,
        set(dims, mu2, "mu2", m2, kind2)?,
    );
    let batch = Batch::Mvn(MvnPairs {
        dims,
        mu1: a.mu,
        cov1: a.cov,
        mu2: b.mu,
        cov2: b.cov,
    });
    run(py, batch, out, metrics, backend, on_invalid)
}

macro_rules! per_precision {
    ($t:ty, $name:ident, $pairwise:ident) => {
        /// Every full-covariance p_i (means `mu_p`, matrices `m_p` in the
        /// form `kind_p`) against every q_j into the flat `out` (N·M·k
        /// values, cell (i, j) at row i·M + j), on the CPU.
        #[pyfunction]
        #[allow(clippy::too_many_arguments)]
        fn $pairwise(
            py: Python<'_>,
            dims: usize,
            mu_p: PyReadonlyArray1<'_, $t>,
            m_p: PyReadonlyArray1<'_, $t>,
            kind_p: &str,
            mu_q: PyReadonlyArray1<'_, $t>,
            m_q: PyReadonlyArray1<'_, $t>,
            kind_q: &str,
            out: PyReadwriteArray1<'_, $t>,
            metrics: Vec<String>,
            on_invalid: &str,
        ) -> PyResult<()> {
            pairwise(
                py, dims, &mu_p, &m_p, kind_p, &mu_q, &m_q, kind_q, out, &metrics, on_invalid,
            )
        }

        /// Measures of full-covariance pairs: means `mu1`, `mu2` (N·dims
        /// values), matrices `m1`, `m2` (N·dims² values, row-major) in the
        /// forms `kind1`, `kind2` ("cov", "scale_tril", "precision"), into
        /// the flat `out` (k values per pair, canonical order).
        #[pyfunction]
        #[allow(clippy::too_many_arguments)]
        fn $name(
            py: Python<'_>,
            dims: usize,
            mu1: PyReadonlyArray1<'_, $t>,
            m1: PyReadonlyArray1<'_, $t>,
            kind1: &str,
            mu2: PyReadonlyArray1<'_, $t>,
            m2: PyReadonlyArray1<'_, $t>,
            kind2: &str,
            out: PyReadwriteArray1<'_, $t>,
            metrics: Vec<String>,
            backend: &str,
            on_invalid: &str,
        ) -> PyResult<()> {
            measures(
                py, dims, &mu1, &m1, kind1, &mu2, &m2, kind2, out, &metrics, backend, on_invalid,
            )
        }
    };
}

per_precision!(f32, mvn_measures_f32, mvn_pairwise_f32);
per_precision!(f64, mvn_measures_f64, mvn_pairwise_f64);

/// Add the functions to the module.
pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(mvn_measures_f32, m)?)?;
    m.add_function(wrap_pyfunction!(mvn_measures_f64, m)?)?;
    m.add_function(wrap_pyfunction!(mvn_pairwise_f32, m)?)?;
    m.add_function(wrap_pyfunction!(mvn_pairwise_f64, m)?)?;
    Ok(())
}
