"""The NumPy-style API: accuracy on the golden files, dtype and broadcasting
rules, array-likes, invalid input, the GIL, and the other functions."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from typing import Any, Dict, Tuple

import numpy as np
import pytest

import gaussdiv
from conftest import read_golden

F32, F64 = np.float32, np.float64
INPUTS = ("mu1", "a1", "mu2", "a2")
TWO_MEASURE_FNS = {
    "kl": gaussdiv.kl,
    "cross_entropy": gaussdiv.cross_entropy,
    "reverse_kl": gaussdiv.reverse_kl,
    "jeffreys": gaussdiv.jeffreys,
    "bhattacharyya": gaussdiv.bhattacharyya,
    "bhattacharyya_coefficient": gaussdiv.bhattacharyya_coefficient,
    "hellinger": gaussdiv.hellinger,
    "wasserstein2": gaussdiv.wasserstein2,
}


def inputs(cols: Dict[str, np.ndarray], dtype: Any) -> Tuple[np.ndarray, ...]:
    return tuple(cols[h].astype(dtype) for h in INPUTS)


def truth_of(cols: Dict[str, np.ndarray]) -> Dict[str, np.ndarray]:
    return {m: cols[m] for m in gaussdiv.METRICS if m in cols}


def worst(metric: str, got: np.ndarray, cols: Dict[str, np.ndarray], precision: str) -> float:
    e = gaussdiv.errors(metric, got.astype(np.float64), truth_of(cols), precision=precision)
    assert e.shape == got.shape
    return float(e.max())


# --- accuracy on the golden files -------------------------------------------------------


@pytest.mark.parametrize(
    "dtype,backend,bound",
    [(F32, "cpu", 1e-6), (F64, "cpu", 1e-14)],
)
def test_golden_public_kl_ce_entropy(public: Dict[str, np.ndarray], dtype: Any, backend: str, bound: float) -> None:
    x = inputs(public, dtype)
    prec = "f32" if dtype == F32 else "f64"
    kl = gaussdiv.kl(*x, backend=backend)
    ce = gaussdiv.cross_entropy(*x, backend=backend)
    h = gaussdiv.entropy(x[1], backend=backend)
    for name, got in (("kl", kl), ("cross_entropy", ce), ("entropy", h)):
        assert got.dtype == dtype, name
        assert got.shape == (2000,)
        w = worst(name, got, public, prec)
        print(f"golden_public {prec} {backend} {name}: worst {w:.3g}")
        assert w <= bound, (name, w)
    both = gaussdiv.measures(*x, ("kl", "cross_entropy"), backend=backend)
    assert list(both) == ["kl", "cross_entropy"]
    assert np.array_equal(both["kl"], kl) and np.array_equal(both["cross_entropy"], ce)


@pytest.mark.parametrize("dtype,bound", [(F32, 2e-6), (F64, 1e-14)])
def test_golden_public_gpu(public: Dict[str, np.ndarray], gpu: bool, dtype: Any, bound: float) -> None:
    if dtype == F64 and not gaussdiv.info()["chosen"]["f64"]:
        pytest.skip("the adapter has no SHADER_F64/SHADER_INT64")
    x = inputs(public, dtype)
    prec = "f32" if dtype == F32 else "f64"
    for name, fn in (("kl", gaussdiv.kl), ("cross_entropy", gaussdiv.cross_entropy)):
        got = fn(*x, backend="gpu")
        assert got.dtype == dtype
        w = worst(name, got, public, prec)
        print(f"golden_public {prec} gpu {name}: worst {w:.3g}")
        assert w <= bound, (name, w)


@pytest.mark.parametrize("param", gaussdiv.PARAMS)
@pytest.mark.parametrize("dtype", [F32, F64])
def test_golden_measures_every_function(param: str, dtype: Any) -> None:
    cols = read_golden(f"golden_measures_{param}.csv")
    x = inputs(cols, dtype)
    prec, bound = ("f32", 1e-6) if dtype == F32 else ("f64", 1e-14)
    for name, fn in TWO_MEASURE_FNS.items():
        got = fn(*x, param=param, backend="cpu")
        assert got.dtype == dtype
        w = worst(name, got, cols, prec)
        assert w <= bound, (param, name, w)
    h = gaussdiv.entropy(x[1], param=param, backend="cpu")
    assert worst("entropy", h, cols, prec) <= bound
    everything = gaussdiv.measures(*x, gaussdiv.METRICS, param=param, backend="cpu")
    for name, got in everything.items():
        assert worst(name, got, cols, prec) <= bound, (param, name)
    # The library's verify agrees: every row within the bound of the f64 reference.
    report = gaussdiv.verify(*x, everything, param=param)
    assert report["passed"], report["text"]
    assert report["rows"] == len(cols["kl"])


@pytest.mark.parametrize("metric", ["kl", "cross_entropy"])
@pytest.mark.parametrize("dtype", [F32, F64])
def test_gradients_verified(metric: str, dtype: Any) -> None:
    cols = read_golden("golden_measures_std.csv")
    x = inputs(cols, dtype)
    g = gaussdiv.gradients(*x, metric=metric, backend="cpu")
    assert len(g) == 4 and all(v.dtype == dtype and v.shape == x[0].shape for v in g)
    report = gaussdiv.verify(*x, g, gradients=metric, tolerance=1e-6 if dtype == F32 else 1e-14)
    if dtype == F32:
        assert report["passed"], report["text"]
    # dKL/dmu1 = (mu1 - mu2)/sigma2^2 against the golden truth where it is finite.
    prefix = "dkl" if metric == "kl" else "dce"
    want = cols[f"{prefix}_dmu1"]
    ok = np.isfinite(want) & (np.abs(want) > 1e-30) & (np.abs(want) < 1e30)
    rel = np.abs(g[0][ok].astype(np.float64) - want[ok]) / np.abs(want[ok])
    assert rel.max() <= (1e-6 if dtype == F32 else 1e-14)


def test_verify_names_the_worst_element() -> None:
    x = [np.full((3, 5), v, F32) for v in (0.0, 1.0, 0.5, 2.0)]
    res = gaussdiv.measures(*x, ("kl",))
    bad = {"kl": res["kl"].copy()}
    bad["kl"][2, 3] *= 1.01
    report = gaussdiv.verify(*x, bad)
    assert not report["passed"]
    assert report["metrics"]["kl"]["failures"] == 1
    assert report["metrics"]["kl"]["worst"]["index"] == (2, 3)


# --- dtypes, broadcasting, array-likes -----------------------------------------------------


def test_dtype_rules() -> None:
    a32 = np.array([1.0, 2.0], F32)
    a64 = np.array([1.0, 2.0], F64)
    assert gaussdiv.kl(a32, a32, 0.0, 1.0).dtype == F32  # Python scalars are weak
    assert gaussdiv.kl(a32, 1, 0, 2).dtype == F32
    assert gaussdiv.kl(a64, a64, 0.0, 1.0).dtype == F64
    assert gaussdiv.kl(a32, a64, 0.0, 1.0).dtype == F64
    assert gaussdiv.kl(np.array([1, 2]), 1, 0, 2).dtype == F64  # integers
    assert gaussdiv.kl(a32, np.float64(1.0), 0, 2).dtype == F64  # NumPy scalars are strong
    assert gaussdiv.kl(a32.astype(np.float16), 1, 0, 2).dtype == F32
    assert gaussdiv.kl(0.0, 1.0, 1.0, 2.0).dtype == F64
    assert gaussdiv.kl(0.0, 1.0, 1.0, 2.0).shape == ()
    # f32 is computed in f32: the f32 result of inputs exact in f32 differs from f64's rounding.
    x32 = gaussdiv.kl(a32, 1.0, 0.3, 2.0)
    x64 = gaussdiv.kl(a32.astype(F64), 1.0, np.float32(0.3).astype(F64), 2.0)
    assert np.allclose(x32, x64, rtol=1e-6)
    with pytest.raises(TypeError):
        gaussdiv.kl(np.array([1j]), 1, 0, 1)


def test_broadcasting() -> None:
    mu1 = np.arange(3, dtype=F64).reshape(3, 1)
    s2 = np.array([[1.0, 2.0, 3.0, 4.0]])
    r = gaussdiv.kl(mu1, 1.0, 0.0, s2)
    assert r.shape == (3, 4) and r.dtype == F64
    for i in range(3):
        for j in range(4):
            assert r[i, j] == gaussdiv.kl(float(i), 1.0, 0.0, float(s2[0, j]))
    assert gaussdiv.kl(np.zeros((2, 1, 3)), 1, 0, np.ones((4, 1))).shape == (2, 4, 3)
    assert gaussdiv.kl(np.zeros(0), 1, 0, 1).shape == (0,)
    with pytest.raises(ValueError, match="do not broadcast"):
        gaussdiv.kl(np.zeros(3), 1, 0, np.ones(4))
    d = gaussdiv.measures(mu1, 1.0, 0.0, s2, ("kl", "entropy"))
    assert d["kl"].shape == (3, 4) and np.array_equal(d["kl"], r)


class ArrayOnly:
    """An object with only __array__."""

    def __init__(self, a: np.ndarray) -> None:
        self.a = a

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        return self.a if dtype is None else self.a.astype(dtype)


class DLPackOnly:
    """A DLPack producer (like a CPU torch tensor or a JAX array) and nothing else."""

    def __init__(self, a: np.ndarray) -> None:
        self.a = a
        self.calls = 0

    def __dlpack__(self, *args: Any, **kwargs: Any) -> Any:
        self.calls += 1
        return self.a.__dlpack__(*args, **kwargs)

    def __dlpack_device__(self) -> Tuple[int, int]:
        return self.a.__dlpack_device__()  # type: ignore[no-any-return]


def test_array_likes() -> None:
    mu1 = np.linspace(-1, 1, 7).astype(F32)
    want = gaussdiv.kl(mu1, 1.0, 0.5, 2.0)
    assert np.array_equal(gaussdiv.kl(mu1.tolist(), 1.0, 0.5, 2.0), want.astype(F64) * 0 + gaussdiv.kl(mu1.astype(F64), 1.0, 0.5, 2.0))
    assert gaussdiv.kl(ArrayOnly(mu1), 1.0, 0.5, 2.0).dtype == F32
    assert np.array_equal(gaussdiv.kl(ArrayOnly(mu1), 1.0, 0.5, 2.0), want)
    producer = DLPackOnly(mu1)
    got = gaussdiv.kl(producer, 1.0, 0.5, 2.0)
    assert producer.calls >= 1
    assert got.dtype == F32 and np.array_equal(got, want)
    # NumPy arrays export DLPack too: same result through np.from_dlpack.
    assert np.array_equal(gaussdiv.kl(np.from_dlpack(mu1), 1.0, 0.5, 2.0), want)


def test_contiguous_inputs_are_not_copied() -> None:
    x = [np.ones(1000, F32) for _ in range(4)]
    shape, dtype, cols = gaussdiv._broadcast(x, INPUTS)
    assert shape == (1000,) and dtype == F32
    assert all(np.shares_memory(c, a) for c, a in zip(cols, x))
    m = np.ones((10, 100), F64)
    _, _, cols = gaussdiv._broadcast((m, m, m, m), INPUTS)
    assert np.shares_memory(cols[0], m)
    producer = DLPackOnly(np.ones(100, F32))
    _, _, cols = gaussdiv._broadcast((producer, 1.0, 0.0, 1.0), INPUTS)
    assert np.shares_memory(cols[0], producer.a)
    # A strided input is copied (the library reads contiguous columns).
    _, _, cols = gaussdiv._broadcast((m[:, ::2], 1.0, 0.0, 1.0), INPUTS)
    assert not np.shares_memory(cols[0], m)


def test_out() -> None:
    x = np.linspace(0.5, 2, 12).reshape(3, 4)
    out = np.empty((3, 4))
    r = gaussdiv.kl(0.0, x, 0.0, 1.0, out=out)
    assert r is out and np.array_equal(out, gaussdiv.kl(0.0, x, 0.0, 1.0))
    strided = np.empty((3, 8))[:, ::2]
    gaussdiv.kl(0.0, x, 0.0, 1.0, out=strided)
    assert np.array_equal(strided, out)
    alias = x.copy()
    gaussdiv.kl(0.0, alias, 0.0, 1.0, out=alias)  # out may be an input
    assert np.array_equal(alias, out)
    with pytest.raises(ValueError):
        gaussdiv.kl(0.0, x, 0.0, 1.0, out=np.empty(12))
    with pytest.raises(TypeError):
        gaussdiv.kl(0.0, x, 0.0, 1.0, out=np.empty((3, 4), F32))


# --- invalid input -----------------------------------------------------------------------


def test_invalid_index_17() -> None:
    s = np.ones(40, F32)
    s[17] = -1.0
    with pytest.raises(ValueError, match=r"index 17\b.*a1 = -1\.0") as e:
        gaussdiv.kl(0.0, s, 0.0, 1.0)
    assert isinstance(e.value, gaussdiv.InvalidInputError)
    assert e.value.index == (17,) and e.value.argument == "a1" and e.value.value == -1.0


def test_invalid_multi_index_and_fields() -> None:
    mu2 = np.zeros((4, 5))
    mu2[2, 3] = np.nan
    with pytest.raises(ValueError, match=r"index \(2, 3\): mu2 = nan") as e:
        gaussdiv.cross_entropy(0.0, 1.0, mu2, 1.0)
    assert e.value.index == (2, 3)  # type: ignore[attr-defined]
    with pytest.raises(ValueError, match="a2 = inf"):
        gaussdiv.kl(0.0, 1.0, 0.0, [1.0, np.inf])
    # logstd accepts any finite scale, even negative.
    assert np.isfinite(gaussdiv.kl(0.0, -3.0, 0.0, 2.0, param="logstd"))
    with pytest.raises(ValueError, match=r"index 1: a = 0\.0"):
        gaussdiv.entropy([1.0, 0.0])
    # The first invalid element of a large array is named, across the library's parallel
    # tasks and blocks, for measures and gradients; so is the last element (the last lane
    # of a partial block).
    big = np.ones(300_000, F32)
    big[[200_001, 250_000]] = 0.0
    with pytest.raises(ValueError, match="index 200001"):
        gaussdiv.kl(0.0, 1.0, 0.0, big, backend="cpu")
    with pytest.raises(ValueError, match=r"index 200001: a2 = 0\.0"):
        gaussdiv.gradients(0.0, 1.0, 0.0, big, backend="cpu")
    last = np.ones(300_001, F32)
    last[-1] = np.inf
    with pytest.raises(ValueError, match="index 300000"):
        gaussdiv.cross_entropy(0.0, 1.0, 0.0, last, backend="cpu")
    with pytest.raises(ValueError, match="index 300000"):
        gaussdiv.gradients(0.0, 1.0, 0.0, last, metric="cross_entropy", backend="cpu")


def test_invalid_nan_policy() -> None:
    s = np.linspace(0.5, 2.0, 1000)
    s[[3, 500, 999]] = [-1.0, np.nan, 0.0]
    r = gaussdiv.measures(0.1, s, 0.2, 1.5, ("kl", "hellinger"), on_invalid="nan")
    for m, v in r.items():
        assert np.isnan(v[[3, 500, 999]]).all(), m
        good = np.ones(1000, bool)
        good[[3, 500, 999]] = False
        assert np.array_equal(v[good], gaussdiv.measures(0.1, s[good], 0.2, 1.5, (m,))[m])
    g = gaussdiv.gradients(0.1, s, 0.2, 1.5, on_invalid="nan")
    assert all(np.isnan(v[3]) for v in g)


def test_option_errors() -> None:
    with pytest.raises(ValueError, match="unknown measure"):
        gaussdiv.measures(0, 1, 0, 1, ("kl", "nope"))
    with pytest.raises(ValueError, match="unknown param"):
        gaussdiv.kl(0, 1, 0, 1, param="sd")
    with pytest.raises(ValueError, match="unknown backend"):
        gaussdiv.kl(0, 1, 0, 1, backend="tpu")
    with pytest.raises(ValueError, match="on_invalid"):
        gaussdiv.kl(0, 1, 0, 1, on_invalid="skip")
    with pytest.raises(ValueError, match="gradients exist"):
        gaussdiv.gradients(0, 1, 0, 1, metric="hellinger")


def test_gpu_without_adapter_is_runtime_error() -> None:
    code = (
        "import gaussdiv\n"
        "try:\n"
        "    gaussdiv.kl(0.0, 1.0, 0.0, 2.0, backend='gpu')\n"
        "except RuntimeError as e:\n"
        "    print('RuntimeError:', e)\n"
        "print('auto', float(gaussdiv.kl(0.0, 1.0, 0.0, 2.0, backend='auto')))\n"
    )
    env = dict(os.environ, WGPU_ADAPTER_NAME="no such adapter anywhere")
    r = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "RuntimeError: backend=\"gpu\" needs a GPU adapter" in r.stdout, r.stdout
    assert "auto 0.318" in r.stdout


# --- the GIL -------------------------------------------------------------------------------


def test_gil_released_during_a_large_call() -> None:
    n = 20_000_000
    x = [np.full(n, v, F32) for v in (0.0, 1.0, 0.5, 2.0)]
    out = np.empty(n, F32)
    stamps: list = []
    stop = threading.Event()

    def spin() -> None:
        while not stop.is_set():
            stamps.append(time.perf_counter())

    t = threading.Thread(target=spin)
    t.start()
    time.sleep(0.05)
    start = time.perf_counter()
    gaussdiv.kl(*x, backend="cpu", out=out)
    end = time.perf_counter()
    stop.set()
    t.join()
    # The Python preparation of a call on contiguous f32 inputs takes microseconds: ticks
    # in the middle half of the call can only come from the thread running while the
    # library computes, which it cannot while the GIL is held.
    lo, hi = start + 0.25 * (end - start), start + 0.75 * (end - start)
    inside = sum(lo <= s <= hi for s in stamps)
    print(f"call {end - start:.3f} s; {inside} ticks of the other thread in its middle half")
    assert end - start > 0.02
    assert inside > 1000


# --- the other functions -------------------------------------------------------------------


def test_pairwise() -> None:
    mp, sp = np.array([0.0, 1.0, -2.0], F32), np.array([1.0, 0.5, 3.0], F32)
    mq, sq = np.array([0.5, 0.0], F32), np.array([2.0, 1.0], F32)
    r = gaussdiv.pairwise(mp, sp, mq, sq, metric="jeffreys")
    assert r.shape == (3, 2) and r.dtype == F32
    assert np.array_equal(r, gaussdiv.jeffreys(mp[:, None], sp[:, None], mq[None, :], sq[None, :]))
    sq[1] = -1
    with pytest.raises(ValueError, match=r"index \(2, 1\): a_q = -1\.0|index \(0, 1\): a_q = -1\.0") as e:
        gaussdiv.pairwise(mp, sp, mq, sq)
    assert e.value.argument == "a_q"  # type: ignore[attr-defined]


def test_diagonal() -> None:
    r = np.random.default_rng(3)
    shape = (5, 7, 16)
    mu1, mu2 = r.normal(size=shape), r.normal(size=shape)
    s1, s2 = r.uniform(0.5, 2, shape), r.uniform(0.5, 2, shape)
    for metric in ("kl", "cross_entropy", "bhattacharyya"):
        got = gaussdiv.diagonal(mu1, s1, mu2, s2, metric=metric)
        assert got.shape == (5, 7)
        per = gaussdiv.measures(mu1, s1, mu2, s2, (metric,))[metric].sum(axis=-1)
        assert np.allclose(got, per, rtol=1e-13, atol=1e-13)
    w = gaussdiv.diagonal(mu1, s1, mu2, s2, metric="wasserstein2")
    assert np.allclose(w, np.sqrt((gaussdiv.wasserstein2(mu1, s1, mu2, s2) ** 2).sum(-1)))
    s1[1, 2, 5] = 0.0
    with pytest.raises(ValueError, match=r"index \(1, 2, 5\): a1 = 0\.0"):
        gaussdiv.diagonal(mu1, s1, mu2, s2)
    nan_rows = gaussdiv.diagonal(mu1, s1, mu2, s2, on_invalid="nan")
    assert np.isnan(nan_rows[1, 2]) and np.isfinite(np.delete(nan_rows.ravel(), 1 * 7 + 2)).all()


def test_gpu_matches_cpu(gpu: bool) -> None:
    r = np.random.default_rng(5)
    x = [r.normal(size=5000).astype(F32), r.uniform(0.1, 3, 5000).astype(F32), r.normal(size=5000).astype(F32), r.uniform(0.1, 3, 5000).astype(F32)]
    on_gpu = gaussdiv.measures(*x, gaussdiv.METRICS, backend="gpu")
    report = gaussdiv.verify(*x, on_gpu, tolerance=2e-6)
    assert report["passed"], report["text"]


def test_info() -> None:
    i = gaussdiv.info()
    assert i["version"] == gaussdiv.__version__
    assert isinstance(i["adapters"], list) and isinstance(i["reason"], str)


def test_library_seconds_hook() -> None:
    """The benchmark's in-process baseline writes what measures_f32 writes and times only
    the library's part of the call (positive, within the call's own duration)."""
    from gaussdiv import _gaussdiv as ext

    r = np.random.default_rng(5)
    n = 200_000
    x = [r.uniform(-5, 5, n).astype(F32), r.uniform(0.1, 3, n).astype(F32)] * 2
    want, got = np.empty(n, F32), np.empty(n, F32)
    ext.measures_f32(*x, want, ["kl"], "std", "cpu", "error", False)
    start = time.perf_counter()
    s = ext.library_seconds_f32(*x, got, ["kl"], "std", "cpu", "error", False)
    outer = time.perf_counter() - start
    assert np.array_equal(want.view(np.uint32), got.view(np.uint32))
    assert isinstance(s, float) and 0.0 < s <= outer
    bad = [v.copy() for v in x]
    bad[1][3] = -1.0
    with pytest.raises(ext.InvalidInputError) as e:
        ext.library_seconds_f32(*bad, got, ["kl"], "std", "cpu", "error", False)
    assert e.value.args[:3] == (3, "sigma1", -1.0)
