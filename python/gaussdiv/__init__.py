"""gaussdiv: accurate measures between univariate Gaussians, NumPy-style.

Every function takes array-likes (NumPy arrays, Python scalars and lists,
anything with ``__array__``, DLPack producers such as CPU PyTorch tensors and
JAX arrays), broadcasts them by NumPy's rules and returns NumPy arrays:
float32 in gives float32 out (computed in f32), float64 in gives float64
(computed in f64), integers give float64; Python scalars are weak, as in
NumPy 2 (``kl(x32, 1.0, 0.0, 2.0)`` is float32). Contiguous inputs of the
result's dtype and shape are not copied, and the GIL is released while the
library computes.

Inputs are ``(mu1, a1, mu2, a2)`` for p1 = N(mu1, sigma1^2) and
p2 = N(mu2, sigma2^2), the scales ``a`` given as ``param``: ``"std"`` (sigma,
the default), ``"var"`` (sigma^2), ``"logstd"`` (ln sigma), ``"logvar"``
(ln sigma^2) or ``"precision"`` (1/sigma^2).

Options shared by the functions:

* ``backend``: ``"cpu"``, ``"gpu"`` (``RuntimeError`` without an adapter) or
  ``"auto"`` (the GPU when there is one and the batch is large enough for it
  to be faster, else the CPU);
* ``on_invalid``: ``"error"`` (an :class:`InvalidInputError`, a
  ``ValueError`` naming the index -- a tuple for more than one dimension --,
  the argument and the value of the first invalid element) or ``"nan"``
  (NaN for invalid elements, the others evaluated as if alone).
"""

from __future__ import annotations

from typing import Any, Dict, Iterable, Mapping, Optional, Protocol, Sequence, Tuple, Union

import numpy as np
import numpy.typing as npt

from . import _gaussdiv as _ext

__all__ = [
    "METRICS",
    "PARAMS",
    "InvalidInputError",
    "kl",
    "cross_entropy",
    "reverse_kl",
    "jeffreys",
    "bhattacharyya",
    "bhattacharyya_coefficient",
    "hellinger",
    "wasserstein2",
    "entropy",
    "measures",
    "gradients",
    "pairwise",
    "diagonal",
    "verify",
    "errors",
    "info",
    "mvn",
]

__version__: str = _ext.__version__

#: The measures, in the library's canonical order.
METRICS: Tuple[str, ...] = tuple(_ext.metric_names())
#: The parameterisations of the scales.
PARAMS: Tuple[str, ...] = ("std", "var", "logstd", "logvar", "precision")


class SupportsDLPack(Protocol):
    """An object exporting its data through DLPack (a CPU tensor)."""

    def __dlpack__(self, *args: Any, **kwargs: Any) -> Any: ...

    def __dlpack_device__(self) -> Tuple[int, int]: ...


#: What the functions accept as an array.
ArrayLike = Union[npt.ArrayLike, SupportsDLPack]
#: Their outputs.
Array = npt.NDArray[np.floating[Any]]


class InvalidInputError(ValueError):
    """An invalid input element (``on_invalid="error"``).

    ``index`` is its multi-index in the broadcast shape (for
    :func:`pairwise`: ``(i, j)``, the cell; for :func:`diagonal`: the element
    in the inputs' broadcast shape), ``argument`` the argument it belongs to
    (``"mu1"``, ``"a1"``, ...), ``value`` its value and ``reason`` why it is
    invalid.
    """

    def __init__(
        self, message: str, index: Tuple[int, ...], argument: str, value: float, reason: str
    ) -> None:
        super().__init__(message)
        self.index = index
        self.argument = argument
        self.value = value
        self.reason = reason


_ARGUMENT = {"mu1": "mu1", "sigma1": "a1", "mu2": "mu2", "sigma2": "a2"}


def _as_array(x: Any) -> Any:
    """An ndarray for array-likes; Python scalars are returned as they are (weak)."""
    if isinstance(x, np.ndarray):
        return x
    if type(x) in (bool, int, float):  # not np.float64, a float subclass but a strong type
        return x
    if isinstance(x, np.generic):
        return np.asarray(x)
    if hasattr(x, "__dlpack__") and not hasattr(x, "__array__"):
        try:
            return np.from_dlpack(x)
        except (TypeError, RuntimeError, BufferError) as e:
            raise TypeError(f"could not import a DLPack array: {e}") from e
    if hasattr(x, "__dlpack__") and hasattr(x, "__dlpack_device__"):
        try:
            return np.from_dlpack(x)  # zero-copy for CPU tensors
        except (TypeError, RuntimeError, BufferError, ValueError):
            pass
    return np.asarray(x)


def _result_dtype(values: Sequence[Any]) -> np.dtype[Any]:
    """float32 or float64 by NumPy's promotion, Python scalars weak."""
    dtypes = [v.dtype for v in values if isinstance(v, np.ndarray)]
    if not dtypes:
        return np.dtype(np.float64)
    kinds = {d.kind for d in dtypes}
    if kinds & {"c"}:
        raise TypeError("complex inputs are not supported")
    if not kinds <= {"f", "i", "u", "b"}:
        bad = next(d for d in dtypes if d.kind not in "fiub")
        raise TypeError(f"inputs must be real numbers, not {bad}")
    r = np.result_type(*dtypes)
    if r.kind == "f" and r.itemsize <= 4:
        return np.dtype(np.float32)
    return np.dtype(np.float64)


def _broadcast(
    args: Sequence[Any], names: Sequence[str]
) -> Tuple[Tuple[int, ...], np.dtype[Any], list[npt.NDArray[Any]]]:
    """The broadcast shape, the result dtype and each argument as a C-contiguous
    1-D array of that dtype (a view where the argument already is one)."""
    values = [_as_array(a) for a in args]
    dtype = _result_dtype(values)
    shapes = [np.shape(v) for v in values]
    try:
        shape = tuple(int(s) for s in np.broadcast_shapes(*shapes))
    except ValueError:
        described = ", ".join(f"{n} {s}" for n, s in zip(names, shapes))
        raise ValueError(f"the shapes of the inputs do not broadcast: {described}") from None
    flat = []
    for v in values:
        a = np.asarray(v, dtype=dtype)
        if a.shape != shape:
            a = np.broadcast_to(a, shape)
        flat.append(np.ascontiguousarray(a).reshape(-1))
    return shape, dtype, flat


def _out_buffer(
    out: Optional[npt.NDArray[Any]],
    shape: Tuple[int, ...],
    dtype: np.dtype[Any],
    inputs: Sequence[npt.NDArray[Any]],
) -> Tuple[npt.NDArray[Any], Optional[npt.NDArray[Any]]]:
    """A flat buffer to compute into, and the ``out`` to copy it to (if any)."""
    n = int(np.prod(shape, dtype=np.int64))
    if out is None:
        return np.empty(n, dtype), None
    if not isinstance(out, np.ndarray):
        raise TypeError("out must be a NumPy array")
    if out.shape != shape:
        raise ValueError(f"out has shape {out.shape}; the result has shape {shape}")
    if out.dtype != dtype:
        raise TypeError(f"out has dtype {out.dtype}; the result is {dtype}")
    if out.flags.c_contiguous and out.flags.writeable and not any(
        np.may_share_memory(out, i) for i in inputs
    ):
        return out.reshape(-1), None
    return np.empty(n, dtype), out


def _invalid(
    e: Exception, shape: Tuple[int, ...], names: Sequence[str] = ("mu1", "a1", "mu2", "a2")
) -> InvalidInputError:
    flat, field, value, reason = e.args[0], e.args[1], e.args[2], e.args[3]
    index = tuple(int(i) for i in np.unravel_index(flat, shape)) if shape else ()
    argument = dict(zip(("mu1", "sigma1", "mu2", "sigma2"), names))[field]
    where = str(index[0]) if len(index) == 1 else str(index)
    return InvalidInputError(
        f"invalid input at index {where}: {argument} = {value!r} ({reason})",
        index,
        argument,
        float(value),
        reason,
    )


def _names(metrics: Union[str, Iterable[str]]) -> list[str]:
    names = [metrics] if isinstance(metrics, str) else list(metrics)
    for m in names:
        if not isinstance(m, str):
            raise TypeError(f"measure names must be strings, not {type(m).__name__}")
    return names


def _evaluate(
    mu1: ArrayLike,
    a1: ArrayLike,
    mu2: ArrayLike,
    a2: ArrayLike,
    metrics: Sequence[str],
    param: str,
    backend: str,
    on_invalid: str,
    gradients: bool,
    out: Optional[npt.NDArray[Any]] = None,
) -> Tuple[Tuple[int, ...], npt.NDArray[Any], Optional[npt.NDArray[Any]], list[str]]:
    """One pass of the library: (shape, flat buffer (n*k), out to fill, canonical names)."""
    order = _ext.canonical(list(metrics))
    shape, dtype, cols = _broadcast((mu1, a1, mu2, a2), ("mu1", "a1", "mu2", "a2"))
    k = len(order) * (4 if gradients else 1)
    if out is not None and k != 1:
        raise ValueError("out= is available for one measure only")
    buf, target = _out_buffer(out, shape, dtype, cols)
    if out is None and k != 1:
        buf = np.empty(buf.size * k, dtype)
    fn = _ext.measures_f32 if dtype == np.float32 else _ext.measures_f64
    try:
        fn(cols[0], cols[1], cols[2], cols[3], buf, list(order), param, backend, on_invalid, gradients)
    except _ext.InvalidInputError as e:
        raise _invalid(e, shape) from None
    return shape, buf, target, list(order)


def _one(
    metric: str,
    mu1: ArrayLike,
    a1: ArrayLike,
    mu2: ArrayLike,
    a2: ArrayLike,
    param: str,
    backend: str,
    on_invalid: str,
    out: Optional[npt.NDArray[Any]],
) -> Array:
    shape, buf, target, _ = _evaluate(mu1, a1, mu2, a2, [metric], param, backend, on_invalid, False, out)
    if target is not None:
        target[...] = buf.reshape(shape)
        return target
    if out is not None:
        return out
    return buf.reshape(shape)


def kl(
    mu1: ArrayLike,
    a1: ArrayLike,
    mu2: ArrayLike,
    a2: ArrayLike,
    *,
    param: str = "std",
    backend: str = "auto",
    on_invalid: str = "error",
    out: Optional[npt.NDArray[Any]] = None,
) -> Array:
    """KL(p1 || p2), elementwise over the broadcast inputs."""
    return _one("kl", mu1, a1, mu2, a2, param, backend, on_invalid, out)


def cross_entropy(
    mu1: ArrayLike,
    a1: ArrayLike,
    mu2: ArrayLike,
    a2: ArrayLike,
    *,
    param: str = "std",
    backend: str = "auto",
    on_invalid: str = "error",
    out: Optional[npt.NDArray[Any]] = None,
) -> Array:
    """The cross-entropy H(p1, p2) = H(p1) + KL(p1 || p2), elementwise."""
    return _one("cross_entropy", mu1, a1, mu2, a2, param, backend, on_invalid, out)


def reverse_kl(
    mu1: ArrayLike,
    a1: ArrayLike,
    mu2: ArrayLike,
    a2: ArrayLike,
    *,
    param: str = "std",
    backend: str = "auto",
    on_invalid: str = "error",
    out: Optional[npt.NDArray[Any]] = None,
) -> Array:
    """KL(p2 || p1), elementwise."""
    return _one("reverse_kl", mu1, a1, mu2, a2, param, backend, on_invalid, out)


def jeffreys(
    mu1: ArrayLike,
    a1: ArrayLike,
    mu2: ArrayLike,
    a2: ArrayLike,
    *,
    param: str = "std",
    backend: str = "auto",
    on_invalid: str = "error",
    out: Optional[npt.NDArray[Any]] = None,
) -> Array:
    """The Jeffreys divergence KL(p1 || p2) + KL(p2 || p1), elementwise."""
    return _one("jeffreys", mu1, a1, mu2, a2, param, backend, on_invalid, out)


def bhattacharyya(
    mu1: ArrayLike,
    a1: ArrayLike,
    mu2: ArrayLike,
    a2: ArrayLike,
    *,
    param: str = "std",
    backend: str = "auto",
    on_invalid: str = "error",
    out: Optional[npt.NDArray[Any]] = None,
) -> Array:
    """The Bhattacharyya distance D_B, elementwise."""
    return _one("bhattacharyya", mu1, a1, mu2, a2, param, backend, on_invalid, out)


def bhattacharyya_coefficient(
    mu1: ArrayLike,
    a1: ArrayLike,
    mu2: ArrayLike,
    a2: ArrayLike,
    *,
    param: str = "std",
    backend: str = "auto",
    on_invalid: str = "error",
    out: Optional[npt.NDArray[Any]] = None,
) -> Array:
    """The Bhattacharyya coefficient exp(-D_B), elementwise."""
    return _one("bhattacharyya_coefficient", mu1, a1, mu2, a2, param, backend, on_invalid, out)


def hellinger(
    mu1: ArrayLike,
    a1: ArrayLike,
    mu2: ArrayLike,
    a2: ArrayLike,
    *,
    param: str = "std",
    backend: str = "auto",
    on_invalid: str = "error",
    out: Optional[npt.NDArray[Any]] = None,
) -> Array:
    """The Hellinger distance sqrt(1 - exp(-D_B)), elementwise."""
    return _one("hellinger", mu1, a1, mu2, a2, param, backend, on_invalid, out)


def wasserstein2(
    mu1: ArrayLike,
    a1: ArrayLike,
    mu2: ArrayLike,
    a2: ArrayLike,
    *,
    param: str = "std",
    backend: str = "auto",
    on_invalid: str = "error",
    out: Optional[npt.NDArray[Any]] = None,
) -> Array:
    """The 2-Wasserstein distance sqrt((mu1 - mu2)^2 + (sigma1 - sigma2)^2), elementwise."""
    return _one("wasserstein2", mu1, a1, mu2, a2, param, backend, on_invalid, out)


def entropy(
    a: ArrayLike,
    *,
    param: str = "std",
    backend: str = "auto",
    on_invalid: str = "error",
    out: Optional[npt.NDArray[Any]] = None,
) -> Array:
    """The differential entropy H(p) = 1/2 ln(2 pi e sigma^2) of N(., sigma^2), elementwise."""
    value = _as_array(a)
    zero = np.zeros((), _result_dtype([value]))
    try:
        return _one("entropy", zero, value, zero, value, param, backend, on_invalid, out)
    except InvalidInputError as e:
        raise InvalidInputError(
            str(e).replace(f": {e.argument} =", ": a ="), e.index, "a", e.value, e.reason
        ) from None


def measures(
    mu1: ArrayLike,
    a1: ArrayLike,
    mu2: ArrayLike,
    a2: ArrayLike,
    metrics: Union[str, Iterable[str]] = ("cross_entropy", "kl"),
    *,
    param: str = "std",
    backend: str = "auto",
    on_invalid: str = "error",
) -> Dict[str, Array]:
    """Several measures in one pass: ``{name: array}`` in the order named.

    The arrays are views of one buffer holding the measures of each element
    side by side (strided; ``np.ascontiguousarray`` makes a compact copy).
    """
    names = _names(metrics)
    shape, buf, _, order = _evaluate(mu1, a1, mu2, a2, names, param, backend, on_invalid, False)
    table = buf.reshape(shape + (len(order),))
    return {m: table[..., order.index(m)] for m in names}


def gradients(
    mu1: ArrayLike,
    a1: ArrayLike,
    mu2: ArrayLike,
    a2: ArrayLike,
    *,
    metric: str = "kl",
    param: str = "std",
    backend: str = "auto",
    on_invalid: str = "error",
) -> Tuple[Array, Array, Array, Array]:
    """The gradient of KL (``metric="kl"``) or of the cross-entropy
    (``"cross_entropy"``) with respect to the inputs as given (``param``):
    ``(d/dmu1, d/da1, d/dmu2, d/da2)``, each of the broadcast shape."""
    if metric not in ("kl", "cross_entropy"):
        raise ValueError(f"gradients exist for \"kl\" and \"cross_entropy\", not {metric!r}")
    shape, buf, _, _ = _evaluate(mu1, a1, mu2, a2, [metric], param, backend, on_invalid, True)
    table = buf.reshape(shape + (4,))
    return (table[..., 0], table[..., 1], table[..., 2], table[..., 3])


def pairwise(
    mu_p: ArrayLike,
    a_p: ArrayLike,
    mu_q: ArrayLike,
    a_q: ArrayLike,
    *,
    metric: str = "kl",
    param: str = "std",
    backend: str = "auto",
    on_invalid: str = "error",
) -> Array:
    """One measure of every p_i = N(mu_p[i], .) against every q_j = N(mu_q[j], .):
    an (N, M) array, like ``cdist``. ``mu_p`` and ``a_p`` broadcast to one
    1-D shape (N,), ``mu_q`` and ``a_q`` to (M,). An invalid element is
    reported at its cell ``(i, j)``, naming ``mu_p``, ``a_p``, ``mu_q`` or ``a_q``."""
    p_shape, dtype_p, (mp, ap) = _broadcast((mu_p, a_p), ("mu_p", "a_p"))
    q_shape, dtype_q, (mq, aq) = _broadcast((mu_q, a_q), ("mu_q", "a_q"))
    if len(p_shape) > 1 or len(q_shape) > 1:
        raise ValueError(f"pairwise takes 1-D p and q, not shapes {p_shape} and {q_shape}")
    dtype = np.result_type(dtype_p, dtype_q)
    mp, ap, mq, aq = (c.astype(dtype, copy=False) for c in (mp, ap, mq, aq))
    n, m = mp.size, mq.size
    out = np.empty(n * m, dtype)
    fn = _ext.pairwise_f32 if dtype == np.float32 else _ext.pairwise_f64
    try:
        fn(mp, ap, mq, aq, out, [metric], param, backend, on_invalid)
    except _ext.InvalidInputError as e:
        raise _invalid(e, (n, m), ("mu_p", "a_p", "mu_q", "a_q")) from None
    return out.reshape(n, m)


def diagonal(
    mu1: ArrayLike,
    a1: ArrayLike,
    mu2: ArrayLike,
    a2: ArrayLike,
    *,
    metric: str = "kl",
    param: str = "std",
    backend: str = "auto",
    on_invalid: str = "error",
) -> Array:
    """One measure of diagonal multivariate Gaussians whose dimensions are the
    last axis of the broadcast inputs: shape ``shape[:-1]``. The additive
    measures are compensated sums over the dimensions formed by the library;
    BC = exp(-sum D_B), Hellinger sqrt(1 - exp(-sum D_B)), W2 = sqrt(sum W_d^2).
    With ``on_invalid="nan"`` a row with an invalid element is NaN."""
    shape, dtype, cols = _broadcast((mu1, a1, mu2, a2), ("mu1", "a1", "mu2", "a2"))
    if len(shape) == 0 or shape[-1] == 0:
        raise ValueError(f"diagonal needs a last axis of at least one dimension, not shape {shape}")
    dims = shape[-1]
    rows = cols[0].size // dims
    out = np.empty(rows, dtype)
    fn = _ext.diagonal_f32 if dtype == np.float32 else _ext.diagonal_f64
    try:
        fn(cols[0], cols[1], cols[2], cols[3], dims, out, [metric], param, backend, on_invalid)
    except _ext.InvalidInputError as e:
        raise _invalid(e, shape) from None
    return out.reshape(shape[:-1])


def verify(
    mu1: ArrayLike,
    a1: ArrayLike,
    mu2: ArrayLike,
    a2: ArrayLike,
    results: Union[Dict[str, Any], Sequence[Any]],
    *,
    param: str = "std",
    tolerance: Optional[float] = None,
    gradients: Optional[str] = None,
) -> Dict[str, Any]:
    """Check results against the library's CPU f64 reference under the
    tolerance model (docs/ARCHITECTURE.md §3).

    ``results`` is what :func:`measures` returns (a dict of measures), or,
    with ``gradients="kl"`` or ``"cross_entropy"``, the 4-tuple that
    :func:`gradients` returns. The precision is that of the results;
    ``tolerance`` defaults to 1e-6 for float32 (the CPU bound; GPU f32
    results are held to 2e-6) and 1e-14 for float64.

    Returns ``{"passed", "rows", "bound", "metrics": {name: {"bound",
    "failures", "worst": {"index", "mu1", "a1", "mu2", "a2", "got", "want",
    "error"} or None}}, "text"}`` with ``index`` the worst element's
    multi-index."""
    if gradients is not None:
        metrics = [gradients]
        parts = [np.asarray(r) for r in results]
        if len(parts) != 4:
            raise ValueError("gradients: results must be the 4 arrays that gradients() returns")
    else:
        if not isinstance(results, dict):
            raise TypeError("results must be a dict {measure: array} (as measures() returns)")
        metrics = list(results)
        order = _ext.canonical(metrics)
        parts = [np.asarray(results[m]) for m in order]
    dtype = _result_dtype(parts)
    shape, _, cols = _broadcast((mu1, a1, mu2, a2), ("mu1", "a1", "mu2", "a2"))
    cols = [c.astype(dtype, copy=False) for c in cols]
    table = np.stack([np.broadcast_to(p.astype(dtype, copy=False), shape).reshape(-1) for p in parts], axis=1)
    bound = tolerance if tolerance is not None else (1e-6 if dtype == np.float32 else 1e-14)
    fn = _ext.verify_f32 if dtype == np.float32 else _ext.verify_f64
    report: Dict[str, Any] = fn(
        cols[0],
        cols[1],
        cols[2],
        cols[3],
        np.ascontiguousarray(table).reshape(-1),
        metrics,
        param,
        gradients is not None,
        float(bound),
    )
    for r in report["metrics"].values():
        w = r["worst"]
        if w is not None:
            w["index"] = tuple(int(i) for i in np.unravel_index(w["index"], shape)) if shape else ()
    return report


def errors(
    metric: str,
    got: ArrayLike,
    truth: Mapping[str, ArrayLike],
    *,
    precision: str,
) -> npt.NDArray[np.float64]:
    """Errors of ``got`` against true values under the tolerance model
    (docs/ARCHITECTURE.md §3) in the output ``precision`` (``"f32"`` or
    ``"f64"``), computed by the library's own rule: ``truth`` maps measure
    names to true values (as many as known; the cross-entropy and the
    entropy need ``"entropy"`` and ``"kl"`` beside their own, ``entropy_q``
    needs ``"reverse_kl"``). Relative error for the divergences and
    distances; for the cross-entropy and the entropies, the error relative to
    ``|1/2 (1 + ln 2 pi)| + |ln sigma| + KL``. Overflow, NaN and exact zeros
    as in the model: a wrong kind of value is ``inf``."""
    g = np.ascontiguousarray(np.asarray(_as_array(got), np.float64)).reshape(-1)
    unknown = set(truth) - set(METRICS)
    if unknown:
        raise ValueError(f"unknown measures in truth: {sorted(unknown)}")
    cols = []
    for m in METRICS:
        t = truth.get(m)
        col = np.full(g.shape, np.nan) if t is None else np.asarray(_as_array(t), np.float64)
        cols.append(np.ascontiguousarray(np.broadcast_to(col, g.shape)))
    result: npt.NDArray[np.float64] = _ext.errors(metric, g, cols, precision)
    return result


def info() -> Dict[str, Any]:
    """The GPU adapters of this machine, the one ``backend="gpu"`` uses and
    why (or why there is none), and the version."""
    result: Dict[str, Any] = _ext.info()
    return result



# Full-covariance pairs: gaussdiv.mvn (imported last: it uses the helpers above).
from . import mvn as mvn  # noqa: E402
