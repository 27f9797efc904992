"""Type stubs of the compiled module gaussdiv._gaussdiv (python/src)."""

from typing import Any, Dict, List, Optional

import numpy as np
import numpy.typing as npt

__version__: str
__all__ = [
    "InvalidInputError", "__version__", "canonical", "diagonal_f32", "diagonal_f64", "errors", "info",
    "library_seconds_f32", "measures_f32", "measures_f64", "metric_names", "mvn_measures_f32",
    "mvn_measures_f64", "mvn_pairwise_f32", "mvn_pairwise_f64", "pairwise_f32",
    "pairwise_f64", "verify_f32", "verify_f64",
]

class InvalidInputError(ValueError):
    """args: (flat index, field, value, reason, row or None, dim or None)."""

_F32 = npt.NDArray[np.float32]
_F64 = npt.NDArray[np.float64]

def measures_f32(
    mu1: _F32, a1: _F32, mu2: _F32, a2: _F32, out: _F32, metrics: List[str],
    param: str, backend: str, on_invalid: str, gradients: bool,
) -> None: ...
def measures_f64(
    mu1: _F64, a1: _F64, mu2: _F64, a2: _F64, out: _F64, metrics: List[str],
    param: str, backend: str, on_invalid: str, gradients: bool,
) -> None: ...
def mvn_measures_f32(
    dims: int, mu1: _F32, m1: _F32, kind1: str, mu2: _F32, m2: _F32, kind2: str, out: _F32,
    metrics: List[str], backend: str, on_invalid: str,
) -> None: ...
def mvn_measures_f64(
    dims: int, mu1: _F64, m1: _F64, kind1: str, mu2: _F64, m2: _F64, kind2: str, out: _F64,
    metrics: List[str], backend: str, on_invalid: str,
) -> None: ...
def mvn_pairwise_f32(
    dims: int, mu_p: _F32, m_p: _F32, kind_p: str, mu_q: _F32, m_q: _F32, kind_q: str, out: _F32,
    metrics: List[str], on_invalid: str,
) -> None: ...
def mvn_pairwise_f64(
    dims: int, mu_p: _F64, m_p: _F64, kind_p: str, mu_q: _F64, m_q: _F64, kind_q: str, out: _F64,
    metrics: List[str], on_invalid: str,
) -> None: ...
def library_seconds_f32(
    mu1: _F32, a1: _F32, mu2: _F32, a2: _F32, out: _F32, metrics: List[str],
    param: str, backend: str, on_invalid: str, gradients: bool,
) -> float:
    """measures_f32, returning the seconds the library's evaluate took inside the call."""
    ...
def pairwise_f32(
    mu_p: _F32, a_p: _F32, mu_q: _F32, a_q: _F32, out: _F32, metrics: List[str],
    param: str, backend: str, on_invalid: str,
) -> None: ...
def pairwise_f64(
    mu_p: _F64, a_p: _F64, mu_q: _F64, a_q: _F64, out: _F64, metrics: List[str],
    param: str, backend: str, on_invalid: str,
) -> None: ...
def diagonal_f32(
    mu1: _F32, a1: _F32, mu2: _F32, a2: _F32, dims: int, out: _F32, metrics: List[str],
    param: str, backend: str, on_invalid: str,
) -> None: ...
def diagonal_f64(
    mu1: _F64, a1: _F64, mu2: _F64, a2: _F64, dims: int, out: _F64, metrics: List[str],
    param: str, backend: str, on_invalid: str,
) -> None: ...
def verify_f32(
    mu1: _F32, a1: _F32, mu2: _F32, a2: _F32, results: _F32, metrics: List[str],
    param: str, gradients: bool, bound: float,
) -> Dict[str, Any]: ...
def verify_f64(
    mu1: _F64, a1: _F64, mu2: _F64, a2: _F64, results: _F64, metrics: List[str],
    param: str, gradients: bool, bound: float,
) -> Dict[str, Any]: ...
def errors(metric: str, got: _F64, truth: List[_F64], precision: str) -> _F64: ...
def metric_names() -> List[str]: ...
def canonical(metrics: List[str]) -> List[str]: ...
def info() -> Dict[str, Any]: ...
