"""Full-covariance multivariate Gaussians: p1 = N(mu1, S1), p2 = N(mu2, S2).

Each side's matrices are given in one of three forms, by keyword:
``cov1`` (covariance S1), ``scale_tril1`` (its lower Cholesky factor L1,
S1 = L1 L1^T) or ``precision1`` (S1^-1); likewise ``cov2``, ``scale_tril2``,
``precision2``. The sides may use different forms.

Means have shape ``(..., d)`` and matrices ``(..., d, d)``; the batch shapes
(everything before the last one or two axes) broadcast by NumPy's rules and
the result has the broadcast batch shape. float32 inputs give float32 results
(computed in f32), float64 give float64, integers float64; array-likes are
taken as in :mod:`gaussdiv` (lists, ``__array__``, DLPack producers). The
GIL is released while the library computes.

The measures are evaluated by formulations that do not cancel when the two
distributions are close (docs/ARCHITECTURE.md §9). ``backend="auto"`` (the
default) and ``"cpu"`` compute on the CPU (all cores); ``backend="gpu"``
evaluates the pairs far apart with the GPU kernel (d ≤ 64) and the others
on the CPU, and raises ``RuntimeError`` without a GPU adapter.

Invalid input (a non-finite entry, a covariance or precision matrix that is
not symmetric or not positive definite, a ``scale_tril`` with a non-positive
diagonal or a non-zero upper triangle) raises
:class:`gaussdiv.InvalidInputError` naming the batch index, the array and
the reason, or with ``on_invalid="nan"`` gives NaN for that pair only.

>>> import numpy as np, gaussdiv.mvn as mvn
>>> kl = mvn.kl(np.zeros(2), np.zeros(2), cov1=np.eye(2), cov2=2 * np.eye(2))
>>> round(float(kl), 12)  # ln 2 - 1/2
0.19314718056
"""

from __future__ import annotations

from typing import Any, Dict, Iterable, Optional, Protocol, Sequence, Tuple, Union

import numpy as np
import numpy.typing as npt

from . import _gaussdiv as _ext
from . import (
    ArrayLike,
    InvalidInputError,
    _as_array,
    _names,
    _result_dtype,
)

__all__ = [
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
    "pairwise",
]

_FORMS = ("cov", "scale_tril", "precision")


def _form(suffix: str, cov: Any, scale_tril: Any, precision: Any) -> Tuple[str, Any]:
    """The one matrix form given for a side (its arguments end in ``suffix``)."""
    present = [(f, v) for f, v in zip(_FORMS, (cov, scale_tril, precision)) if v is not None]
    if len(present) != 1:
        names = ", ".join(f"{f}{suffix}" for f in _FORMS)
        found = ", ".join(f"{f}{suffix}" for f, _ in present) or "none"
        raise TypeError(f"give exactly one of {names} (got {found})")
    return present[0]


def _evaluate(
    mu1: ArrayLike,
    mu2: ArrayLike,
    side1: Tuple[str, Any],
    side2: Tuple[str, Any],
    metrics: Sequence[str],
    backend: str,
    on_invalid: str,
) -> Tuple[Tuple[int, ...], npt.NDArray[Any], list[str]]:
    """One pass: (batch shape, flat (n*k) result, canonical names)."""
    order = _ext.canonical(list(metrics))
    (kind1, m1), (kind2, m2) = side1, side2
    values = [_as_array(v) for v in (mu1, m1, mu2, m2)]
    dtype = _result_dtype(values)
    arrays = [np.asarray(v, dtype=dtype) for v in values]
    a_mu1, a_m1, a_mu2, a_m2 = arrays
    names = ("mu1", f"{kind1}1", "mu2", f"{kind2}2")
    for a, name, axes in zip(arrays, names, (1, 2, 1, 2)):
        if a.ndim < axes:
            want = "(..., d)" if axes == 1 else "(..., d, d)"
            raise ValueError(f"{name} must have shape {want}, not {a.shape}")
    d = a_mu1.shape[-1]
    for a, name, axes in zip(arrays, names, (1, 2, 1, 2)):
        if a.shape[-axes:] != (d,) * axes:
            want = f"(..., {d})" if axes == 1 else f"(..., {d}, {d})"
            raise ValueError(
                f"{name} has shape {a.shape}; with mu1 of shape {a_mu1.shape} it must be {want}"
            )
    if d < 1:
        raise ValueError("the dimension d (the last axis of mu1) must be at least 1")
    batch_shapes = [a.shape[: a.ndim - axes] for a, axes in zip(arrays, (1, 2, 1, 2))]
    try:
        shape = tuple(int(s) for s in np.broadcast_shapes(*batch_shapes))
    except ValueError:
        described = ", ".join(f"{n} {s}" for n, s in zip(names, batch_shapes))
        raise ValueError(f"the batch shapes of the inputs do not broadcast: {described}") from None
    flat = []
    for a, axes in zip(arrays, (1, 2, 1, 2)):
        full = shape + a.shape[a.ndim - axes :]
        if a.shape != full:
            a = np.broadcast_to(a, full)
        flat.append(np.ascontiguousarray(a).reshape(-1))
    n = int(np.prod(shape, dtype=np.int64))
    buf = np.empty(n * len(order), dtype)
    fn = _ext.mvn_measures_f32 if dtype == np.float32 else _ext.mvn_measures_f64
    try:
        fn(d, flat[0], flat[1], kind1, flat[2], flat[3], kind2, buf, list(order), backend, on_invalid)
    except _ext.InvalidInputError as e:
        raise _invalid(e, shape) from None
    return shape, buf, list(order)


def _invalid(e: Exception, shape: Tuple[int, ...]) -> InvalidInputError:
    flat, array, reason = e.args[0], e.args[1], e.args[3]
    index = tuple(int(i) for i in np.unravel_index(flat, shape)) if shape else ()
    where = str(index[0]) if len(index) == 1 else str(index)
    return InvalidInputError(
        f"invalid input at index {where}: {array}: {reason}",
        index,
        array,
        float("nan"),
        reason,
    )


def measures(
    mu1: ArrayLike,
    mu2: ArrayLike,
    metrics: Union[str, Iterable[str]] = ("cross_entropy", "kl"),
    *,
    cov1: Optional[ArrayLike] = None,
    scale_tril1: Optional[ArrayLike] = None,
    precision1: Optional[ArrayLike] = None,
    cov2: Optional[ArrayLike] = None,
    scale_tril2: Optional[ArrayLike] = None,
    precision2: Optional[ArrayLike] = None,
    backend: str = "auto",
    on_invalid: str = "error",
) -> Dict[str, npt.NDArray[Any]]:
    """Several measures in one pass: ``{name: array}`` in the order named,
    each of the batch shape (views of one buffer, as :func:`gaussdiv.measures`)."""
    names = _names(metrics)
    s1 = _form("1", cov1, scale_tril1, precision1)
    s2 = _form("2", cov2, scale_tril2, precision2)
    shape, buf, order = _evaluate(mu1, mu2, s1, s2, names, backend, on_invalid)
    table = buf.reshape(shape + (len(order),))
    return {m: table[..., order.index(m)] for m in names}


class Measure(Protocol):
    """The signature of :func:`kl` and the other single measures."""

    def __call__(
        self,
        mu1: ArrayLike,
        mu2: ArrayLike,
        *,
        cov1: Optional[ArrayLike] = None,
        scale_tril1: Optional[ArrayLike] = None,
        precision1: Optional[ArrayLike] = None,
        cov2: Optional[ArrayLike] = None,
        scale_tril2: Optional[ArrayLike] = None,
        precision2: Optional[ArrayLike] = None,
        backend: str = "auto",
        on_invalid: str = "error",
    ) -> npt.NDArray[Any]: ...


def _make(metric: str, doc: str) -> Measure:
    def f(
        mu1: ArrayLike,
        mu2: ArrayLike,
        *,
        cov1: Optional[ArrayLike] = None,
        scale_tril1: Optional[ArrayLike] = None,
        precision1: Optional[ArrayLike] = None,
        cov2: Optional[ArrayLike] = None,
        scale_tril2: Optional[ArrayLike] = None,
        precision2: Optional[ArrayLike] = None,
        backend: str = "auto",
        on_invalid: str = "error",
    ) -> npt.NDArray[Any]:
        # One measure's column of a one-measure table: contiguous, of the batch shape.
        return measures(
            mu1,
            mu2,
            (metric,),
            cov1=cov1,
            scale_tril1=scale_tril1,
            precision1=precision1,
            cov2=cov2,
            scale_tril2=scale_tril2,
            precision2=precision2,
            backend=backend,
            on_invalid=on_invalid,
        )[metric]

    f.__name__ = f.__qualname__ = metric
    f.__doc__ = doc + " Arguments as in the module's description."
    return f


kl: Measure = _make("kl", "KL(p1 || p2) of full-covariance pairs.")
cross_entropy: Measure = _make("cross_entropy", "The cross-entropy H(p1, p2) = H(p1) + KL(p1 || p2).")
reverse_kl: Measure = _make("reverse_kl", "KL(p2 || p1).")
jeffreys: Measure = _make("jeffreys", "KL(p1 || p2) + KL(p2 || p1).")
bhattacharyya: Measure = _make("bhattacharyya", "The Bhattacharyya distance D_B.")
bhattacharyya_coefficient: Measure = _make("bhattacharyya_coefficient", "The Bhattacharyya coefficient exp(-D_B).")
hellinger: Measure = _make("hellinger", "The Hellinger distance sqrt(1 - exp(-D_B)).")
wasserstein2: Measure = _make("wasserstein2", "The 2-Wasserstein (Frechet) distance.")


def entropy(
    mu: ArrayLike,
    *,
    cov: Optional[ArrayLike] = None,
    scale_tril: Optional[ArrayLike] = None,
    precision: Optional[ArrayLike] = None,
    on_invalid: str = "error",
) -> npt.NDArray[Any]:
    """The differential entropy of N(mu, S), S given as ``cov``,
    ``scale_tril`` or ``precision``; shape and dtype as the other functions
    (``mu`` gives the dimension and takes part in broadcasting and the dtype)."""
    s = _form("", cov, scale_tril, precision)
    shape, buf, _ = _evaluate(mu, mu, s, s, ["entropy"], "cpu", on_invalid)
    return buf.reshape(shape)


def pairwise(
    mu_p: ArrayLike,
    mu_q: ArrayLike,
    *,
    cov_p: Optional[ArrayLike] = None,
    scale_tril_p: Optional[ArrayLike] = None,
    precision_p: Optional[ArrayLike] = None,
    cov_q: Optional[ArrayLike] = None,
    scale_tril_q: Optional[ArrayLike] = None,
    precision_q: Optional[ArrayLike] = None,
    metric: str = "kl",
    on_invalid: str = "error",
) -> npt.NDArray[Any]:
    """One measure of every p_i against every q_j (Gaussian-mixture
    reduction): an (N, M) array, like ``cdist``. ``mu_p`` has shape (N, d)
    and p's matrices (N, d, d) in one form (``cov_p``, ``scale_tril_p`` or
    ``precision_p``); likewise q with M. On the CPU. An invalid Gaussian is
    reported by its index in its own set, naming ``mu_p``, ``cov_p``, ...
    (``InvalidInputError.index`` is ``(i,)``)."""
    sides = []
    for name, mu, form in (
        ("p", mu_p, _form("_p", cov_p, scale_tril_p, precision_p)),
        ("q", mu_q, _form("_q", cov_q, scale_tril_q, precision_q)),
    ):
        sides.append((name, _as_array(mu), form[0], _as_array(form[1])))
    dtype = _result_dtype([v for s in sides for v in (s[1], s[3])])
    flat = []
    d = None
    for name, mu, kind, m in sides:
        mu = np.asarray(mu, dtype)
        m = np.asarray(m, dtype)
        if mu.ndim != 2 or m.ndim != 3 or m.shape != (mu.shape[0], mu.shape[1], mu.shape[1]):
            raise ValueError(
                f"mu_{name} must have shape (N, d) and {kind}_{name} (N, d, d), not {mu.shape} and {m.shape}"
            )
        if d is not None and mu.shape[1] != d:
            raise ValueError(f"p and q must have one dimension d, not {d} and {mu.shape[1]}")
        d = mu.shape[1]
        flat.append((mu.shape[0], np.ascontiguousarray(mu).reshape(-1), kind, np.ascontiguousarray(m).reshape(-1)))
    (n, mp, kp, cp), (m_, mq, kq, cq) = flat
    if d is None or d < 1:
        raise ValueError("the dimension d must be at least 1")
    out = np.empty(n * m_, dtype)
    fn = _ext.mvn_pairwise_f32 if dtype == np.float32 else _ext.mvn_pairwise_f64
    try:
        fn(d, mp, cp, kp, mq, cq, kq, out, [metric], on_invalid)
    except _ext.InvalidInputError as e:
        index, array, reason = int(e.args[0]), str(e.args[1]), e.args[3]
        side = "p" if array.endswith("1") else "q"
        argument = f"{array[:-1]}_{side}"
        raise InvalidInputError(
            f"invalid input at {side}[{index}]: {argument}: {reason}", (index,), argument, float("nan"), reason
        ) from None
    return out.reshape(n, m_)
