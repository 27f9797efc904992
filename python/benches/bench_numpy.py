"""Throughput of gaussdiv.kl from NumPy arrays against the library's own CPU
rate (`gaussdiv bench`), the NumPy textbook formula and jax.jit of it.

    python python/benches/bench_numpy.py [--pairs 10000000] [--runs 7] [--gaussdiv target/release/gaussdiv]

Prints one table of medians (after a warm-up) and the ratios, all from one
run. The library's rate is `gaussdiv bench --backend cpu --metrics kl` on the
same number of pairs (its own in-memory batch), run by this script.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import time
from typing import Any, Callable, Dict, List, Optional

import numpy as np

import gaussdiv


def batch(n: int, dtype: Any = np.float32) -> List[np.ndarray]:
    """The mix of `gaussdiv bench`: uniform means in [-10, 10], log-uniform
    sigma in [1e-2, 1e2], every 16th pair with near-equal scales."""
    r = np.random.default_rng(0x2545F491)
    mu1 = r.uniform(-10, 10, n)
    s1 = 10 ** r.uniform(-2, 2, n)
    mu2 = r.uniform(-10, 10, n)
    s2 = 10 ** r.uniform(-2, 2, n)
    near = np.arange(n) % 16 == 0
    mu2[near] = mu1[near]
    s2[near] = s1[near] * 1.000001
    return [np.ascontiguousarray(x, dtype) for x in (mu1, s1, mu2, s2)]


def textbook(mu1: np.ndarray, s1: np.ndarray, mu2: np.ndarray, s2: np.ndarray) -> np.ndarray:
    """KL(p1 || p2) as every library writes it."""
    r = (s1 / s2) ** 2
    return 0.5 * ((mu1 - mu2) ** 2 / s2**2 + r - np.log(r) - 1.0)


def median_rate(f: Callable[[], Any], n: int, runs: int) -> float:
    f()
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        f()
        times.append(time.perf_counter() - t)
    return n / statistics.median(times)


def library_rate(exe: str, n: int, runs: int) -> Optional[float]:
    if not os.path.exists(exe):
        return None
    out = subprocess.run(
        [exe, "bench", "--pairs", str(n), "--backend", "cpu", "--metrics", "kl", "--runs", str(runs), "--json"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    rows = json.loads(out)
    row = rows[0]
    return float(row["pairs"]) / float(row["median_s"])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--pairs", type=int, default=10_000_000)
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("--gaussdiv", default=os.path.join(os.environ.get("CARGO_TARGET_DIR", "target"), "release", "gaussdiv"))
    a = ap.parse_args()
    n = a.pairs
    x = batch(n)
    out = np.empty(n, np.float32)
    rates: Dict[str, Optional[float]] = {}
    rates["library (gaussdiv bench, cpu)"] = library_rate(a.gaussdiv, n, a.runs)
    rates["gaussdiv.kl (new output)"] = median_rate(lambda: gaussdiv.kl(*x, backend="cpu"), n, a.runs)
    rates["gaussdiv.kl (out=)"] = median_rate(lambda: gaussdiv.kl(*x, backend="cpu", out=out), n, a.runs)
    rates["NumPy textbook f32"] = median_rate(lambda: textbook(*x), n, a.runs)
    try:
        import jax
        import jax.numpy as jnp

        f = jax.jit(textbook)
        xj = [jnp.asarray(v) for v in x]
        rates["jax.jit textbook f32"] = median_rate(lambda: f(*xj).block_until_ready(), n, a.runs)
    except ImportError:
        rates["jax.jit textbook f32"] = None
    print(f"{n} float32 pairs, KL, CPU; medians of {a.runs} runs after a warm-up")
    for k, v in rates.items():
        print(f"  {k:<32} {'not available' if v is None else f'{v / 1e6:8.1f} M pairs/s'}")
    g = rates["gaussdiv.kl (new output)"]
    assert g is not None
    lib = rates["library (gaussdiv bench, cpu)"]
    if lib:
        print(f"  gaussdiv.kl / library          {g / lib:.3f}  (out=: {rates['gaussdiv.kl (out=)'] / lib:.3f})")  # type: ignore[operator]
    print(f"  gaussdiv.kl / NumPy textbook   {g / rates['NumPy textbook f32']:.2f}")  # type: ignore[operator]
    j = rates["jax.jit textbook f32"]
    print(f"  gaussdiv.kl / jax.jit          {'jax not installed' if j is None else f'{g / j:.2f}'}")


if __name__ == "__main__":
    main()
