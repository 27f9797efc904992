//! The functions of `gaussdiv._gaussdiv`: measures, gradients, pairwise,
//! diagonal rows and verification of contiguous 1-D arrays, one set per
//! precision (`*_f32`, `*_f64`), computed with the GIL released.

use crate::convert::{self, to_py};
use gaussdiv::verify::measure_error;
use gaussdiv::{
    Batch, Float, Gaussian, GaussianPair, Metric, Metrics, Output, Precision, Tolerance,
};
use numpy::{Element, PyReadonlyArray1, PyReadwriteArray1};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};

/// A contiguous slice of a read-only array.
pub(crate) fn slice<'a, T: Element>(
    a: &'a PyReadonlyArray1<'_, T>,
    name: &str,
) -> PyResult<&'a [T]> {
    a.as_slice()
        .map_err(|_| PyValueError::new_err(format!("{name} must be a contiguous 1-D array")))
}

/// The four input columns, checked for a common length.
fn columns<'a, T: Element>(
    cols: [&'a PyReadonlyArray1<'_, T>; 4],
    names: [&str; 4],
) -> PyResult<[&'a [T]; 4]> {
    let [a, b, c, d] = cols;
    let s = [
        slice(a, names[0])?,
        slice(b, names[1])?,
        slice(c, names[2])?,
        slice(d, names[3])?,
    ];
    if s.iter().any(|x| x.len() != s[0].len()) {
        return Err(PyValueError::new_err(
            "the four input arrays must have one length",
        ));
    }
    Ok(s)
}

/// The output slice, checked to hold `len` values.
fn out_slice<'a, T: Element>(
    out: &'a mut PyReadwriteArray1<'_, T>,
    len: usize,
) -> PyResult<&'a mut [T]> {
    let o = out
        .as_slice_mut()
        .map_err(|_| PyValueError::new_err("out must be a contiguous 1-D array"))?;
    if o.len() != len {
        return Err(PyValueError::new_err(format!(
            "out holds {} values; {len} are needed",
            o.len()
        )));
    }
    Ok(o)
}

/// `metrics` of the pairs in `cols` into `out` (n·k values, canonical order);
/// the seconds the library's `evaluate` took (the GIL released around it).
#[allow(clippy::too_many_arguments)]
fn measures<T: Float + Element>(
    py: Python<'_>,
    cols: [&PyReadonlyArray1<'_, T>; 4],
    mut out: PyReadwriteArray1<'_, T>,
    metrics: &[String],
    param: &str,
    backend: &str,
    on_invalid: &str,
    gradients: bool,
) -> PyResult<f64> {
    let set = convert::metrics(metrics)?;
    let output = if gradients {
        Output::Gradients(set)
    } else {
        Output::Measures(set)
    };
    let request = convert::request(output, param, on_invalid)?;
    let backend = convert::backend(backend)?;
    let cols = columns(cols, ["mu1", "a1", "mu2", "a2"])?;
    let n = cols[0].len();
    let out = out_slice(&mut out, n * request.values_per_pair())?;
    if n == 0 {
        return Ok(0.0);
    }
    // The library routes the batch (GPU from the crossover on, else its CPU
    // loops, which read the four columns in place, in parallel).
    py.detach(|| {
        let ev = convert::evaluator(backend)?;
        let t = std::time::Instant::now();
        ev.evaluate(Batch::Columns(cols), &request, out)?;
        Ok(t.elapsed().as_secs_f64())
    })
    .map_err(to_py)
}

/// `metrics` of every p_i against every q_j into `out` (N·M·k values).
#[allow(clippy::too_many_arguments)]
fn pairwise<T: Float + Element>(
    py: Python<'_>,
    cols: [&PyReadonlyArray1<'_, T>; 4],
    mut out: PyReadwriteArray1<'_, T>,
    metrics: &[String],
    param: &str,
    backend: &str,
    on_invalid: &str,
) -> PyResult<()> {
    let request = convert::request(
        Output::Measures(convert::metrics(metrics)?),
        param,
        on_invalid,
    )?;
    let backend = convert::backend(backend)?;
    let [mp, ap, mq, aq] = cols;
    let (mp, ap, mq, aq) = (
        slice(mp, "mu_p")?,
        slice(ap, "a_p")?,
        slice(mq, "mu_q")?,
        slice(aq, "a_q")?,
    );
    if mp.len() != ap.len() || mq.len() != aq.len() {
        return Err(PyValueError::new_err(
            "mu_p and a_p (and mu_q and a_q) must have one length",
        ));
    }
    let cells = mp
        .len()
        .checked_mul(mq.len())
        .and_then(|c| c.checked_mul(request.values_per_pair()))
        .ok_or_else(|| PyValueError::new_err("the pairwise output does not fit in memory"))?;
    let out = out_slice(&mut out, cells)?;
    if cells == 0 {
        return Ok(());
    }
    py.detach(|| {
        let gauss = |m: &[T], a: &[T]| -> Vec<Gaussian<T>> {
            m.iter()
                .zip(a)
                .map(|(&m, &a)| Gaussian::new(m, a))
                .collect()
        };
        let (p, q) = (gauss(mp, ap), gauss(mq, aq));
        convert::evaluator(backend)?.evaluate(Batch::Pairwise { p: &p, q: &q }, &request, out)
    })
    .map_err(to_py)
}

/// `metrics` of diagonal Gaussians of `dims` dimensions (rows of `dims`
/// consecutive pairs) into `out` (rows·k values).
#[allow(clippy::too_many_arguments)]
fn diagonal<T: Float + Element>(
    py: Python<'_>,
    cols: [&PyReadonlyArray1<'_, T>; 4],
    dims: usize,
    mut out: PyReadwriteArray1<'_, T>,
    metrics: &[String],
    param: &str,
    backend: &str,
    on_invalid: &str,
) -> PyResult<()> {
    let request = convert::request(
        Output::Measures(convert::metrics(metrics)?),
        param,
        on_invalid,
    )?;
    let backend = convert::backend(backend)?;
    let cols = columns(cols, ["mu1", "a1", "mu2", "a2"])?;
    let n = cols[0].len();
    if dims == 0 || n % dims != 0 {
        return Err(PyValueError::new_err(format!(
            "{n} elements do not form rows of {dims} dimensions"
        )));
    }
    let out = out_slice(&mut out, n / dims * request.values_per_pair())?;
    if n == 0 {
        return Ok(());
    }
    py.detach(|| {
        let [a, b, c, d] = cols;
        let pairs: Vec<GaussianPair<T>> = a
            .iter()
            .zip(b)
            .zip(c.iter().zip(d))
            .map(|((&a, &b), (&c, &d))| GaussianPair::new(a, b, c, d))
            .collect();
        convert::evaluator(backend)?.evaluate(
            Batch::Diagonal {
                pairs: &pairs,
                dims,
            },
            &request,
            out,
        )
    })
    .map_err(to_py)
}

/// Verify `out` (measures or gradients of `metrics`) against the CPU f64
/// reference with one `bound` for every measure; the report as a dict.
#[allow(clippy::too_many_arguments)]
fn verify<'py, T: Float + Element>(
    py: Python<'py>,
    cols: [&PyReadonlyArray1<'_, T>; 4],
    out: PyReadonlyArray1<'_, T>,
    metrics: &[String],
    param: &str,
    gradients: bool,
    bound: f64,
) -> PyResult<Bound<'py, PyDict>> {
    let set = convert::metrics(metrics)?;
    let output = if gradients {
        Output::Gradients(set)
    } else {
        Output::Measures(set)
    };
    let request = convert::request(output, param, "nan")?;
    let cols = columns(cols, ["mu1", "a1", "mu2", "a2"])?;
    let out = slice(&out, "results")?;
    let tolerance = Tolerance::uniform(bound, T::PRECISION);
    let report = py
        .detach(|| gaussdiv::verify(Batch::Columns(cols), &request, out, tolerance))
        .map_err(to_py)?;
    let d = PyDict::new(py);
    d.set_item("passed", report.passed())?;
    d.set_item("rows", report.rows)?;
    d.set_item("bound", bound)?;
    let per = PyDict::new(py);
    for m in &report.metrics {
        let r = PyDict::new(py);
        r.set_item("bound", m.bound)?;
        r.set_item("failures", m.failures)?;
        match m.worst {
            None => r.set_item("worst", py.None())?,
            Some(w) => {
                let row = PyDict::new(py);
                row.set_item("index", w.index)?;
                row.set_item("mu1", w.pair.mu1)?;
                row.set_item("a1", w.pair.sigma1)?;
                row.set_item("mu2", w.pair.mu2)?;
                row.set_item("a2", w.pair.sigma2)?;
                row.set_item("got", w.got)?;
                row.set_item("want", w.want)?;
                row.set_item("error", w.error)?;
                r.set_item("worst", row)?;
            }
        }
        per.set_item(m.metric.name(), r)?;
    }
    d.set_item("metrics", per)?;
    d.set_item("text", report.to_string())?;
    Ok(d)
}

macro_rules! per_precision {
    ($t:ty, $measures:ident, $pairwise:ident, $diagonal:ident, $verify:ident) => {
        /// Measures (or, with `gradients`, their gradients) of contiguous
        /// 1-D columns into the flat `out` (k values per pair, canonical order).
        #[pyfunction]
        #[allow(clippy::too_many_arguments)]
        fn $measures(
            py: Python<'_>,
            mu1: PyReadonlyArray1<'_, $t>,
            a1: PyReadonlyArray1<'_, $t>,
            mu2: PyReadonlyArray1<'_, $t>,
            a2: PyReadonlyArray1<'_, $t>,
            out: PyReadwriteArray1<'_, $t>,
            metrics: Vec<String>,
            param: &str,
            backend: &str,
            on_invalid: &str,
            gradients: bool,
        ) -> PyResult<()> {
            measures(
                py,
                [&mu1, &a1, &mu2, &a2],
                out,
                &metrics,
                param,
                backend,
                on_invalid,
                gradients,
            )
            .map(|_| ())
        }

        /// Every p_i against every q_j into the flat `out` (N·M·k values).
        #[pyfunction]
        #[allow(clippy::too_many_arguments)]
        fn $pairwise(
            py: Python<'_>,
            mu_p: PyReadonlyArray1<'_, $t>,
            a_p: PyReadonlyArray1<'_, $t>,
            mu_q: PyReadonlyArray1<'_, $t>,
            a_q: PyReadonlyArray1<'_, $t>,
            out: PyReadwriteArray1<'_, $t>,
            metrics: Vec<String>,
            param: &str,
            backend: &str,
            on_invalid: &str,
        ) -> PyResult<()> {
            pairwise(
                py,
                [&mu_p, &a_p, &mu_q, &a_q],
                out,
                &metrics,
                param,
                backend,
                on_invalid,
            )
        }

        /// Diagonal Gaussians: rows of `dims` consecutive pairs into the flat
        /// `out` (k values per row).
        #[pyfunction]
        #[allow(clippy::too_many_arguments)]
        fn $diagonal(
            py: Python<'_>,
            mu1: PyReadonlyArray1<'_, $t>,
            a1: PyReadonlyArray1<'_, $t>,
            mu2: PyReadonlyArray1<'_, $t>,
            a2: PyReadonlyArray1<'_, $t>,
            dims: usize,
            out: PyReadwriteArray1<'_, $t>,
            metrics: Vec<String>,
            param: &str,
            backend: &str,
            on_invalid: &str,
        ) -> PyResult<()> {
            diagonal(
                py,
                [&mu1, &a1, &mu2, &a2],
                dims,
                out,
                &metrics,
                param,
                backend,
                on_invalid,
            )
        }

        /// Verification of `results` against the CPU f64 reference (dict report).
        #[pyfunction]
        #[allow(clippy::too_many_arguments)]
        fn $verify<'py>(
            py: Python<'py>,
            mu1: PyReadonlyArray1<'_, $t>,
            a1: PyReadonlyArray1<'_, $t>,
            mu2: PyReadonlyArray1<'_, $t>,
            a2: PyReadonlyArray1<'_, $t>,
            results: PyReadonlyArray1<'_, $t>,
            metrics: Vec<String>,
            param: &str,
            gradients: bool,
            bound: f64,
        ) -> PyResult<Bound<'py, PyDict>> {
            verify(
                py,
                [&mu1, &a1, &mu2, &a2],
                results,
                &metrics,
                param,
                gradients,
                bound,
            )
        }
    };
}

per_precision!(f32, measures_f32, pairwise_f32, diagonal_f32, verify_f32);
per_precision!(f64, measures_f64, pairwise_f64, diagonal_f64, verify_f64);

/// `measures_f32`, returning the seconds the library's `evaluate` took
/// inside the call: the same arrays, layout, request, thread pool and
/// process as a Python call, without the binding around it (the baseline of
/// the binding's overhead in python/benches/bench_numpy.py).
#[pyfunction]
#[allow(clippy::too_many_arguments)]
fn library_seconds_f32(
    py: Python<'_>,
    mu1: PyReadonlyArray1<'_, f32>,
    a1: PyReadonlyArray1<'_, f32>,
    mu2: PyReadonlyArray1<'_, f32>,
    a2: PyReadonlyArray1<'_, f32>,
    out: PyReadwriteArray1<'_, f32>,
    metrics: Vec<String>,
    param: &str,
    backend: &str,
    on_invalid: &str,
    gradients: bool,
) -> PyResult<f64> {
    measures(
        py,
        [&mu1, &a1, &mu2, &a2],
        out,
        &metrics,
        param,
        backend,
        on_invalid,
        gradients,
    )
}

/// Errors of `got` against reference values under the tolerance model
/// (docs/ARCHITECTURE.md §3) in the output precision `precision` ("f32" or
/// "f64"), through the library's `verify::measure_error`: `truth` holds the
/// ten reference measures in canonical order (columns of NaN where unknown;
/// the cross-entropy and the entropies take their scale from the reference
/// entropy and KL, the divergences and distances need only themselves).
#[pyfunction]
fn errors<'py>(
    py: Python<'py>,
    metric: &str,
    got: PyReadonlyArray1<'py, f64>,
    truth: Vec<PyReadonlyArray1<'py, f64>>,
    precision: &str,
) -> PyResult<Bound<'py, numpy::PyArray1<f64>>> {
    let m: Metric = metric
        .parse()
        .map_err(|_| PyValueError::new_err(format!("unknown measure {metric:?}")))?;
    let p = match precision {
        "f32" => Precision::F32,
        "f64" => Precision::F64,
        _ => {
            return Err(PyValueError::new_err(
                "precision must be \"f32\" or \"f64\"",
            ))
        }
    };
    let got = slice(&got, "got")?;
    if truth.len() != Metric::COUNT {
        return Err(PyValueError::new_err(format!(
            "truth must hold {} columns (every measure, canonical order)",
            Metric::COUNT
        )));
    }
    let mut cols = Vec::with_capacity(truth.len());
    for t in &truth {
        let c = slice(t, "truth")?;
        if c.len() != got.len() {
            return Err(PyValueError::new_err(
                "truth columns must have the length of got",
            ));
        }
        cols.push(c);
    }
    let e: Vec<f64> = got
        .iter()
        .enumerate()
        .map(|(i, &g)| {
            let mut row = [f64::NAN; Metric::COUNT];
            for (r, c) in row.iter_mut().zip(&cols) {
                *r = c.get(i).copied().unwrap_or(f64::NAN);
            }
            measure_error(m, g, &row, p)
        })
        .collect();
    Ok(numpy::PyArray1::from_vec(py, e))
}

/// The measure names in canonical order (the order of every output row).
#[pyfunction]
fn metric_names() -> Vec<&'static str> {
    Metric::ALL.iter().map(|m| m.name()).collect()
}

/// The canonical order of a set of measures: their names as the library
/// writes them.
#[pyfunction]
fn canonical(metrics: Vec<String>) -> PyResult<Vec<&'static str>> {
    let set: Metrics = convert::metrics(&metrics)?;
    Ok(set.iter().map(|m| m.name()).collect())
}

/// The GPU adapters of this machine and the one a GPU evaluator would use.
#[pyfunction]
fn info(py: Python<'_>) -> PyResult<Bound<'_, PyDict>> {
    let adapters = py.detach(|| pollster::block_on(gaussdiv::adapters()));
    let summary = |a: &gaussdiv::AdapterSummary| -> PyResult<Bound<'_, PyDict>> {
        let d = PyDict::new(py);
        d.set_item("name", &a.info.name)?;
        d.set_item("backend", format!("{:?}", a.info.backend))?;
        d.set_item("device_type", format!("{:?}", a.info.device_type))?;
        d.set_item("driver", &a.info.driver)?;
        d.set_item("driver_info", &a.info.driver_info)?;
        let f = a.features;
        d.set_item(
            "f64",
            f.contains(gaussdiv::wgpu::Features::SHADER_F64)
                && f.contains(gaussdiv::wgpu::Features::SHADER_INT64),
        )?;
        Ok(d)
    };
    let list = PyList::empty(py);
    for a in &adapters.available {
        list.append(summary(a)?)?;
    }
    let d = PyDict::new(py);
    d.set_item("version", env!("CARGO_PKG_VERSION"))?;
    d.set_item("adapters", list)?;
    match &adapters.chosen {
        Ok((a, why)) => {
            d.set_item("chosen", summary(a)?)?;
            d.set_item("reason", why)?;
        }
        Err(why) => {
            d.set_item("chosen", py.None())?;
            d.set_item("reason", why)?;
        }
    }
    Ok(d)
}

/// Add the functions to the module.
pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(measures_f32, m)?)?;
    m.add_function(wrap_pyfunction!(measures_f64, m)?)?;
    m.add_function(wrap_pyfunction!(pairwise_f32, m)?)?;
    m.add_function(wrap_pyfunction!(pairwise_f64, m)?)?;
    m.add_function(wrap_pyfunction!(diagonal_f32, m)?)?;
    m.add_function(wrap_pyfunction!(diagonal_f64, m)?)?;
    m.add_function(wrap_pyfunction!(verify_f32, m)?)?;
    m.add_function(wrap_pyfunction!(verify_f64, m)?)?;
    m.add_function(wrap_pyfunction!(library_seconds_f32, m)?)?;
    m.add_function(wrap_pyfunction!(errors, m)?)?;
    m.add_function(wrap_pyfunction!(metric_names, m)?)?;
    m.add_function(wrap_pyfunction!(canonical, m)?)?;
    m.add_function(wrap_pyfunction!(info, m)?)?;
    Ok(())
}
