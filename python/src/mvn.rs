//! Full-covariance pairs (`gaussdiv.mvn`, docs/ARCHITECTURE.md §9): contiguous
//! means (N·d values) and matrices (N·d·d values, each side in its own form)
//! into a flat output of N·k values, computed with the GIL released.

use crate::convert::{self, to_py};
use gaussdiv::{Backend, Batch, Covariance, Float, MvnPairs, Output};
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

fn slice<'a, T: Element>(a: &'a PyReadonlyArray1<'_, T>, name: &str) -> PyResult<&'a [T]> {
    a.as_slice()
        .map_err(|_| PyValueError::new_err(format!("{name} must be a contiguous 1-D array")))
}

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
    mut out: PyReadwriteArray1<'_, T>,
    metrics: &[String],
    backend: &str,
    on_invalid: &str,
) -> PyResult<()> {
    let request = convert::request(
        Output::Measures(convert::metrics(metrics)?),
        "std",
        on_invalid,
    )?;
    // No GPU kernel for full covariance yet: "auto" is the CPU, "gpu" the
    // library's error saying so.
    let backend = match convert::backend(backend)? {
        Backend::Gpu => Backend::Gpu,
        _ => Backend::Cpu,
    };
    let batch = MvnPairs {
        dims,
        mu1: slice(mu1, "mu1")?,
        cov1: form(kind1, slice(m1, kind1)?)?,
        mu2: slice(mu2, "mu2")?,
        cov2: form(kind2, slice(m2, kind2)?)?,
    };
    let out = out
        .as_slice_mut()
        .map_err(|_| PyValueError::new_err("out must be a contiguous 1-D array"))?;
    py.detach(|| {
        let ev = convert::evaluator(backend)?;
        ev.evaluate(Batch::Mvn(batch), &request, out)
    })
    .map_err(to_py)
}

macro_rules! per_precision {
    ($t:ty, $name:ident) => {
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

per_precision!(f32, mvn_measures_f32);
per_precision!(f64, mvn_measures_f64);

/// Add the functions to the module.
pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(mvn_measures_f32, m)?)?;
    m.add_function(wrap_pyfunction!(mvn_measures_f64, m)?)?;
    Ok(())
}
