"""Checked by `mypy --strict` in CI (scripts/test.sh): the package's annotations
and stubs (py.typed, _gaussdiv.pyi) type ordinary use."""

from __future__ import annotations

from typing import Any, Dict, Tuple

import numpy as np
import numpy.typing as npt

import gaussdiv


def use() -> Tuple[float, Dict[str, Any]]:
    mu = np.zeros(10, np.float32)
    s = np.ones(10, np.float32)
    kl: npt.NDArray[np.floating[Any]] = gaussdiv.kl(mu, s, 0.5, 2.0, param="std", backend="cpu")
    ce = gaussdiv.cross_entropy([0.0, 1.0], 1.0, 0.0, 2.0, on_invalid="nan")
    both = gaussdiv.measures(mu, s, 0.0, 1.0, ("kl", "hellinger"))
    d_mu1, d_a1, d_mu2, d_a2 = gaussdiv.gradients(mu, s, 0.0, 1.0, metric="kl")
    m = gaussdiv.pairwise(mu, s, mu[:3], s[:3], metric="jeffreys")
    r = gaussdiv.diagonal(mu.reshape(2, 5), s.reshape(2, 5), 0.0, 1.0, metric="kl")
    report = gaussdiv.verify(mu, s, 0.0, 1.0, both)
    h = gaussdiv.entropy(s)
    e = gaussdiv.errors("kl", kl, {"kl": kl}, precision="f32")
    total = float(kl.sum() + ce.sum() + both["kl"].sum() + d_mu1.sum() + d_a1.sum() + d_mu2.sum())
    total += float(d_a2.sum() + m.sum() + r.sum() + h.sum() + e.sum())
    try:
        gaussdiv.kl(0.0, -1.0, 0.0, 1.0)
    except gaussdiv.InvalidInputError as err:
        total += len(err.index) + err.value
    info: Dict[str, Any] = gaussdiv.info()
    return total, {"report": report, "info": info}
