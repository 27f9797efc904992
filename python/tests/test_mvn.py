"""gaussdiv.mvn: full-covariance pairs through the binding.

The 60+-digit truth rows (gaussdiv/tests/data/mvn_truth.csv, every d and
form) within the issue's bounds, dtypes preserved, batch shapes broadcast,
invalid input named by multi-index or NaN, argument errors.
"""

from __future__ import annotations

import math
import struct
import threading
from collections import defaultdict
from pathlib import Path
from typing import Any, Dict, List, Tuple

import numpy as np
import pytest

import gaussdiv
import gaussdiv.mvn as mvn

TRUTH = Path(__file__).resolve().parents[2] / "gaussdiv" / "tests" / "data" / "mvn_truth.csv"
FORM = {"cov": "cov", "tril": "scale_tril", "prec": "precision"}
HALF_LN_2PI_E = 0.5 * math.log(2 * math.pi * math.e)


def _hex(values: str, prec: int) -> List[float]:
    fmt, size = (">f", 8) if prec == 32 else (">d", 16)
    return [struct.unpack(fmt, bytes.fromhex(h.rjust(size, "0")))[0] for h in values.split(";")]


def _full(lower: List[float], d: int, tril: bool) -> np.ndarray:
    m = np.zeros((d, d))
    k = 0
    for i in range(d):
        for j in range(i + 1):
            m[i, j] = lower[k]
            if not tril:
                m[j, i] = lower[k]
            k += 1
    return m


def _rows() -> Dict[Tuple[int, int, str, str], List[Dict[str, Any]]]:
    lines = [line for line in TRUTH.read_text().splitlines() if not line.startswith("#")]
    header = lines[0].split(",")
    groups: Dict[Tuple[int, int, str, str], List[Dict[str, Any]]] = defaultdict(list)
    for line in lines[1:]:
        c = dict(zip(header, line.split(",")))
        prec, d = int(c["prec"]), int(c["d"])
        groups[(prec, d, c["param1"], c["param2"])].append(
            {
                "mu1": _hex(c["mu1"], prec),
                "m1": _full(_hex(c["m1"], prec), d, c["param1"] == "tril"),
                "mu2": _hex(c["mu2"], prec),
                "m2": _full(_hex(c["m2"], prec), d, c["param2"] == "tril"),
                "cond": max(float(c["cond1"]), float(c["cond2"])),
                "lnl1": float(c["lnl1"]),
                "lnl2": float(c["lnl2"]),
                "truth": {m: float(c[m]) for m in gaussdiv.METRICS},
                "family": c["family"],
            }
        )
    return groups


def test_truth_rows_within_bounds() -> None:
    groups = _rows()
    assert sum(len(g) for g in groups.values()) > 600
    worst: Dict[str, float] = defaultdict(float)
    for (prec, d, p1, p2), rows in groups.items():
        dtype = np.float32 if prec == 32 else np.float64
        u = 2.0**-24 if prec == 32 else 2.0**-53
        kw = {
            f"{FORM[p1]}1": np.array([r["m1"] for r in rows], dtype),
            f"{FORM[p2]}2": np.array([r["m2"] for r in rows], dtype),
        }
        got = mvn.measures(
            np.array([r["mu1"] for r in rows], dtype),
            np.array([r["mu2"] for r in rows], dtype),
            gaussdiv.METRICS,
            backend="cpu",
            **kw,
        )
        for m, values in got.items():
            assert values.dtype == dtype and values.shape == (len(rows),)
            for r, g in zip(rows, values.tolist()):
                t = r["truth"][m]
                if prec == 32:
                    base = 1e-5 if m in ("bhattacharyya", "bhattacharyya_coefficient", "hellinger", "wasserstein2") else 2e-6
                else:
                    base = 1e-12
                bound = max(base, 4 * u * r["cond"])
                if m in ("cross_entropy", "entropy", "entropy_q"):
                    # Relative to the scale of the terms: d/2 (1 + ln 2 pi) +
                    # sum |ln L_ii| + KL (the model).
                    lnl, kl = (r["lnl1"], r["truth"]["kl"]) if m != "entropy_q" else (r["lnl2"], r["truth"]["reverse_kl"])
                    err = abs(g - t) / (d * HALF_LN_2PI_E + lnl + kl)
                else:
                    # The library's rule for divergences and distances:
                    # relative; exact zeros and overflow exact; absolute
                    # below the smallest normal.
                    err = float(gaussdiv.errors(m, g, {m: t}, precision=f"f{prec}")[0])
                worst[f"f{prec} {m}"] = max(worst[f"f{prec} {m}"], err / bound)
                assert err <= bound, (prec, d, p1, p2, m, r["family"], g, t, err, bound)
    assert worst, "no rows were checked"


def _pairs(shape: Tuple[int, ...], d: int, seed: int = 3) -> Tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    mu = rng.normal(size=shape + (d,))
    a = rng.normal(size=shape + (d, d))
    cov = a @ np.swapaxes(a, -1, -2) + d * np.eye(d)
    return mu, cov


def _kl_reference(mu1: np.ndarray, c1: np.ndarray, mu2: np.ndarray, c2: np.ndarray) -> np.ndarray:
    d = mu1.shape[-1]
    inv2 = np.linalg.inv(c2)
    dm = (mu2 - mu1)[..., None]
    tr = np.trace(inv2 @ c1, axis1=-2, axis2=-1)
    maha = (np.swapaxes(dm, -1, -2) @ inv2 @ dm)[..., 0, 0]
    logdet = np.linalg.slogdet(c2)[1] - np.linalg.slogdet(c1)[1]
    return 0.5 * (tr + maha - d + logdet)


def test_forms_agree_with_numpy_and_each_other() -> None:
    mu1, c1 = _pairs((40,), 4, 1)
    mu2, c2 = _pairs((40,), 4, 2)
    want = _kl_reference(mu1, c1, mu2, c2)
    got = mvn.kl(mu1, mu2, cov1=c1, cov2=c2)
    np.testing.assert_allclose(got, want, rtol=1e-10)
    l1 = np.linalg.cholesky(c1)
    p2 = np.linalg.inv(c2)
    np.testing.assert_allclose(mvn.kl(mu1, mu2, scale_tril1=l1, precision2=p2), want, rtol=1e-10)
    ce = mvn.cross_entropy(mu1, mu2, cov1=c1, cov2=c2)
    h = mvn.entropy(mu1, cov=c1)
    np.testing.assert_allclose(ce, h + want, rtol=1e-12)
    np.testing.assert_allclose(
        h, 0.5 * (4 * (1 + math.log(2 * math.pi)) + np.linalg.slogdet(c1)[1]), rtol=1e-12
    )
    assert np.all(mvn.kl(mu1, mu1, cov1=c1, cov2=c1) == 0.0)


def test_dtypes_and_broadcasting() -> None:
    mu1, c1 = _pairs((3, 1), 2, 4)
    mu2, c2 = _pairs((1, 4), 2, 5)
    out = mvn.kl(mu1, mu2, cov1=c1, cov2=c2)
    assert out.shape == (3, 4) and out.dtype == np.float64
    want = _kl_reference(
        np.broadcast_to(mu1, (3, 4, 2)),
        np.broadcast_to(c1, (3, 4, 2, 2)),
        np.broadcast_to(mu2, (3, 4, 2)),
        np.broadcast_to(c2, (3, 4, 2, 2)),
    )
    np.testing.assert_allclose(out, want, rtol=1e-10)
    f = mvn.kl(mu1.astype(np.float32), mu2.astype(np.float32), cov1=c1.astype(np.float32), cov2=c2.astype(np.float32))
    assert f.dtype == np.float32 and f.shape == (3, 4)
    np.testing.assert_allclose(f, want, rtol=1e-5)
    # One mean for every pair, integer inputs -> float64, lists.
    i = mvn.hellinger([0, 0], [[1, 0]], cov1=[[1, 0], [0, 1]], cov2=[[[2, 0], [0, 2]]])
    assert i.dtype == np.float64 and i.shape == (1,)
    m = mvn.measures(mu1, mu2, ("wasserstein2", "kl"), cov1=c1, cov2=c2)
    assert list(m) == ["wasserstein2", "kl"] and m["kl"].shape == (3, 4)
    np.testing.assert_array_equal(m["kl"], out)


def test_invalid_named_or_nan() -> None:
    mu, cov = _pairs((2, 3), 3, 6)
    bad = cov.copy()
    bad[1, 2] = np.diag([1.0, -1.0, 1.0])
    with pytest.raises(gaussdiv.InvalidInputError) as e:
        mvn.kl(mu, mu + 1, cov1=cov, cov2=bad)
    assert e.value.index == (1, 2) and e.value.argument == "cov2"
    assert "(1, 2)" in str(e.value) and "pivot" in str(e.value)
    assert isinstance(e.value, ValueError)
    got = mvn.kl(mu, mu + 1, cov1=cov, cov2=bad, on_invalid="nan")
    ok = mvn.kl(mu, mu + 1, cov1=cov, cov2=cov)
    assert np.isnan(got[1, 2])
    mask = np.ones((2, 3), bool)
    mask[1, 2] = False
    np.testing.assert_array_equal(got[mask], ok[mask])
    tril = np.linalg.cholesky(cov)
    tril[0, 0, 0, 1] = 1e-3
    with pytest.raises(gaussdiv.InvalidInputError, match="scale_tril1"):
        mvn.kl(mu, mu, scale_tril1=tril, cov2=cov)


def test_argument_errors() -> None:
    mu, cov = _pairs((2,), 3)
    with pytest.raises(TypeError, match="exactly one of cov1"):
        mvn.kl(mu, mu, cov2=cov)
    with pytest.raises(TypeError, match="got cov2, precision2"):
        mvn.kl(mu, mu, cov1=cov, cov2=cov, precision2=cov)
    with pytest.raises(ValueError, match="must be"):
        mvn.kl(mu, mu[:, :2], cov1=cov, cov2=cov)
    with pytest.raises(ValueError, match="do not broadcast"):
        mvn.kl(mu, np.zeros((3, 3)), cov1=cov, cov2=cov)
    with pytest.raises(ValueError, match="unknown measure"):
        mvn.measures(mu, mu, ["kl", "nope"], cov1=cov, cov2=cov)


def test_pairwise_equals_broadcast_pairs() -> None:
    mu_p, cov_p = _pairs((5,), 3, 9)
    mu_q, cov_q = _pairs((7,), 3, 10)
    for dtype in (np.float32, np.float64):
        got = mvn.pairwise(
            mu_p.astype(dtype), mu_q.astype(dtype), cov_p=cov_p.astype(dtype),
            precision_q=np.linalg.inv(cov_q).astype(dtype), metric="hellinger",
        )
        want = mvn.hellinger(
            mu_p[:, None].astype(dtype), mu_q[None].astype(dtype), cov1=cov_p[:, None].astype(dtype),
            precision2=np.linalg.inv(cov_q)[None].astype(dtype),
        )
        assert got.shape == (5, 7) and got.dtype == dtype
        np.testing.assert_array_equal(got, want)
    bad = cov_q.copy()
    bad[3] = -np.eye(3)
    with pytest.raises(gaussdiv.InvalidInputError) as e:
        mvn.pairwise(mu_p, mu_q, cov_p=cov_p, cov_q=bad)
    assert e.value.index == (3,) and e.value.argument == "cov_q"
    nan = mvn.pairwise(mu_p, mu_q, cov_p=cov_p, cov_q=bad, on_invalid="nan")
    assert np.isnan(nan[:, 3]).all() and not np.isnan(np.delete(nan, 3, axis=1)).any()


def test_module_example() -> None:
    import doctest

    assert doctest.testmod(mvn).failed == 0


def test_gil_released() -> None:
    mu, cov = _pairs((200_000,), 3, 8)
    ticks = 0
    done = threading.Event()

    def count() -> None:
        nonlocal ticks
        while not done.is_set():
            ticks += 1

    t = threading.Thread(target=count)
    t.start()
    before = ticks
    mvn.kl(mu, mu[::-1], cov1=cov, cov2=cov[::-1])
    during = ticks - before
    done.set()
    t.join()
    assert during > 1000, during


def test_gpu_equals_cpu_within_bounds(gpu: bool) -> None:
    """backend="gpu": the kernel for pairs far apart, the CPU for the rest
    (here pair 0 has identical sides: exact zeros), the measures of both
    dtypes within the issue's bounds of the f64 CPU evaluation."""
    mu1, c1 = _pairs((30,), 5, 7)
    mu2, c2 = _pairs((30,), 5, 8)
    mu2[0], c2[0] = mu1[0], c1[0]
    bounds = {"kl": 2e-6, "reverse_kl": 2e-6, "jeffreys": 2e-6, "bhattacharyya": 1e-5,
              "hellinger": 1e-5, "wasserstein2": 1e-5}
    for dtype in (np.float32, np.float64):
        x = [v.astype(dtype) for v in (mu1, mu2, c1, c2)]
        w = [v.astype(np.float64) for v in x]
        want = mvn.measures(w[0], w[1], list(bounds), cov1=w[2], cov2=w[3])
        got = mvn.measures(x[0], x[1], list(bounds), cov1=x[2], cov2=x[3], backend="gpu")
        for name, b in bounds.items():
            assert got[name].dtype == dtype
            assert got[name][0] == 0.0, name
            err = np.abs(got[name][1:] - want[name][1:]) / np.abs(want[name][1:])
            bound = b if dtype == np.float32 else 1e-12
            assert err.max() <= bound, (dtype, name, err.max())
