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


def textbook(mu1: Any, s1: Any, mu2: Any, s2: Any, xp: Any = np) -> Any:
    """KL(p1 || p2) as every library writes it (``xp``: numpy or jax.numpy)."""
    r = (s1 / s2) ** 2
    return 0.5 * ((mu1 - mu2) ** 2 / s2**2 + r - xp.log(r) - 1.0)


def timed(f: Callable[[], Any]) -> float:
    t = time.perf_counter()
    f()
    return time.perf_counter() - t


def library_time(exe: str, n: int) -> float:
    """One `gaussdiv bench --runs 1` (its own warm-up, then one timed run): seconds."""
    out = subprocess.run(
        [exe, "bench", "--pairs", str(n), "--backend", "cpu", "--metrics", "kl", "--runs", "1", "--json"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return float(json.loads(out)[0]["median_s"])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--pairs", type=int, default=10_000_000)
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("--gaussdiv", default=os.path.join(os.environ.get("CARGO_TARGET_DIR", "target"), "release", "gaussdiv"))
    a = ap.parse_args()
    n = a.pairs
    x = batch(n)
    out = np.empty(n, np.float32)
    methods: Dict[str, Optional[Callable[[], float]]] = {
        "library (gaussdiv bench, cpu)": (lambda: library_time(a.gaussdiv, n)) if os.path.exists(a.gaussdiv) else None,
        "gaussdiv.kl (new output)": lambda: timed(lambda: gaussdiv.kl(*x, backend="cpu")),
        "gaussdiv.kl (out=)": lambda: timed(lambda: gaussdiv.kl(*x, backend="cpu", out=out)),
        "NumPy textbook f32": lambda: timed(lambda: textbook(*x)),
    }
    try:
        import jax
        import jax.numpy as jnp

        f = jax.jit(lambda a, b, c, d: textbook(a, b, c, d, jnp))
        xj = [jnp.asarray(v) for v in x]
        methods["jax.jit textbook f32"] = lambda: timed(lambda: f(*xj).block_until_ready())
    except ImportError:
        methods["jax.jit textbook f32"] = None
    times: Dict[str, List[float]] = {k: [] for k, m in methods.items() if m is not None}
    for k, m in methods.items():
        if m is not None:
            m()  # warm-up
    # Rounds: every method once per round, so that the machine's load hits them alike.
    for _ in range(a.runs):
        for k, m in methods.items():
            if m is not None:
                times[k].append(m())
    rates: Dict[str, Optional[float]] = {
        k: (n / statistics.median(times[k]) if k in times else None) for k in methods
    }
    print(f"{n} float32 pairs, KL, CPU; medians of {a.runs} interleaved rounds after a warm-up")
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
