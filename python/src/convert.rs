//! Options from their Python spellings, the cached evaluators, and the
//! library's errors as Python exceptions.

use crate::InvalidInputError;
use gaussdiv::{Backend, Error, Evaluator, Metric, Metrics, OnInvalid, Param, Request};
use pyo3::exceptions::{PyMemoryError, PyRuntimeError, PyValueError};
use pyo3::prelude::*;
use std::sync::{Arc, Mutex, OnceLock};

/// The measures named in `names` (any order, no repeats), as a set.
pub fn metrics(names: &[String]) -> PyResult<Metrics> {
    let mut list = Vec::with_capacity(names.len());
    for name in names {
        let m: Metric = name.parse().map_err(|_| {
            let valid: Vec<&str> = Metric::ALL.iter().map(|m| m.name()).collect();
            PyValueError::new_err(format!(
                "unknown measure {name:?}; expected one of {}",
                valid.join(", ")
            ))
        })?;
        if list.contains(&m) {
            return Err(PyValueError::new_err(format!(
                "measure {name:?} named twice"
            )));
        }
        list.push(m);
    }
    Metrics::new(&list).ok_or_else(|| PyValueError::new_err("no measure requested"))
}

/// The parameterisation named `name` (`std`, `var`, `logstd`, `logvar`, `precision`).
pub fn param(name: &str) -> PyResult<Param> {
    name.parse().map_err(|_| {
        let valid: Vec<&str> = Param::ALL.iter().map(|p| p.name()).collect();
        PyValueError::new_err(format!(
            "unknown param {name:?}; expected one of {}",
            valid.join(", ")
        ))
    })
}

/// The invalid-input policy named `name` (`error` or `nan`).
pub fn on_invalid(name: &str) -> PyResult<OnInvalid> {
    match name {
        "error" => Ok(OnInvalid::Error),
        "nan" => Ok(OnInvalid::Nan),
        _ => Err(PyValueError::new_err(format!(
            "unknown on_invalid {name:?}; expected \"error\" or \"nan\""
        ))),
    }
}

/// The backend named `name` (`auto`, `gpu` or `cpu`).
pub fn backend(name: &str) -> PyResult<Backend> {
    match name {
        "auto" => Ok(Backend::Auto),
        "gpu" => Ok(Backend::Gpu),
        "cpu" => Ok(Backend::Cpu),
        _ => Err(PyValueError::new_err(format!(
            "unknown backend {name:?}; expected \"auto\", \"gpu\" or \"cpu\""
        ))),
    }
}

/// A request from the options shared by every function.
pub fn request(output: gaussdiv::Output, param_name: &str, policy: &str) -> PyResult<Request> {
    Ok(Request {
        output,
        param: param(param_name)?,
        on_invalid: on_invalid(policy)?,
    })
}

/// One evaluator per backend for the life of the process (the GPU pipelines
/// are built once). A GPU evaluator whose device was lost is replaced.
pub fn evaluator(backend: Backend) -> gaussdiv::Result<Arc<Evaluator>> {
    static CPU: OnceLock<Arc<Evaluator>> = OnceLock::new();
    static GPU: Mutex<Option<Arc<Evaluator>>> = Mutex::new(None);
    static AUTO: Mutex<Option<Arc<Evaluator>>> = Mutex::new(None);
    let slot = match backend {
        Backend::Cpu => {
            if let Some(e) = CPU.get() {
                return Ok(e.clone());
            }
            let e = Arc::new(Evaluator::new(Backend::Cpu)?);
            return Ok(CPU.get_or_init(|| e).clone());
        }
        Backend::Gpu => &GPU,
        Backend::Auto => &AUTO,
    };
    let mut guard = match slot.lock() {
        Ok(g) => g,
        Err(p) => p.into_inner(),
    };
    if let Some(e) = guard.as_ref() {
        if !e.gpu_info().is_some_and(|g| g.lost) {
            return Ok(e.clone());
        }
    }
    let e = Arc::new(Evaluator::new(backend)?);
    *guard = Some(e.clone());
    Ok(e)
}

/// The library's error as a Python exception: invalid input is
/// [`InvalidInputError`] (a `ValueError`) with the flat index, the field, the
/// value and the reason as its arguments (the Python layer turns the index
/// into a multi-index); a missing or failing GPU is `RuntimeError`.
pub fn to_py(e: Error) -> PyErr {
    match e {
        Error::InvalidInput {
            index,
            field,
            value,
            reason,
        } => InvalidInputError::new_err((
            index,
            field.name(),
            value,
            reason,
            None::<usize>,
            None::<usize>,
        )),
        Error::InvalidElement {
            index,
            row,
            dim,
            field,
            value,
            reason,
        } => InvalidInputError::new_err((index, field.name(), value, reason, Some(row), Some(dim))),
        Error::InvalidMatrix {
            index,
            array,
            reason,
        } => InvalidInputError::new_err((
            index,
            array,
            f64::NAN,
            reason,
            None::<usize>,
            None::<usize>,
        )),
        Error::LengthMismatch { .. } => PyValueError::new_err(e.to_string()),
        Error::TooLarge(_) => PyMemoryError::new_err(e.to_string()),
        Error::NoAdapter(_) => PyRuntimeError::new_err(format!(
            "backend=\"gpu\" needs a GPU adapter and none is usable: {e} \
             (backend=\"auto\" falls back to the CPU)"
        )),
        other => PyRuntimeError::new_err(other.to_string()),
    }
}
