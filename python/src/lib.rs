//! `gaussdiv._gaussdiv`: the compiled half of the Python package `gaussdiv`
//! (docs/ARCHITECTURE.md §11).
//!
//! A thin layer over the library: every function takes contiguous 1-D NumPy
//! arrays of one precision (f32 or f64) and a flat output array, and runs the
//! library with the GIL released. Array-likes, broadcasting, dtypes, output
//! shapes and the multi-index of an invalid element are the business of the
//! pure-Python layer (`gaussdiv/__init__.py`).
#![warn(missing_docs)]
#![deny(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::unreachable,
    clippy::todo,
    clippy::unimplemented
)]

mod convert;
mod eval;
mod mvn;

use pyo3::prelude::*;

pyo3::create_exception!(
    _gaussdiv,
    InvalidInputError,
    pyo3::exceptions::PyValueError,
    "An invalid input element: args are (flat index, field, value, reason, row, dim) \
     (row and dim are None outside the diagonal layout; for full-covariance pairs the \
     index is the pair's, the field the array's name and the value NaN)."
);

/// The module `gaussdiv._gaussdiv`.
#[pymodule]
fn _gaussdiv(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("InvalidInputError", m.py().get_type::<InvalidInputError>())?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    eval::register(m)?;
    mvn::register(m)?;
    Ok(())
}
