"""Throughput of gaussdiv.kl from NumPy arrays against the library's own CPU
rate (`gaussdiv bench`), the NumPy textbook formula and jax.jit of it.

    python python/benches/bench_numpy.py [--pairs 10000000] [--runs 7] [--gaussdiv target/release/gaussdiv]

Prints one table of medians (after a warm-up) and the ratios, all from one
run. The library's rates are `gaussdiv bench --backend cpu --metrics kl` on
the same number of pairs (its own in-memory batch), run by this script in
three conditions:

* pairs: the interleaved `Batch::Pairs` layout, on_invalid nan, an output
  reused by every run (the tool's default; the figure the issue names);
* columns: four f32 arrays (`Batch::Columns`), on_invalid error, an output
  reused by every run: what `gaussdiv.kl(..., out=o)` asks of the library,
  so their ratio is the binding's overhead;
* columns, fresh output: the same into a new zeroed buffer per call
  (allocated, first touched and freed inside the timing), as
  `gaussdiv.kl(...)` returns a new array.
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


def library_time(exe: str, n: int, *conditions: str) -> float:
    """One `gaussdiv bench --runs 1` (its own warm-up, then one timed run): seconds."""
    out = subprocess.run(
        [exe, "bench", "--pairs", str(n), "--backend", "cpu", "--metrics", "kl", "--runs", "1", "--json", *conditions],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return float(json.loads(out)[0]["median_s"])


LIB_PAIRS = "library: pairs, reused output"
LIB_COLUMNS = "library: columns, error, reused"
LIB_FRESH = "library: columns, error, fresh"
KL_NEW = "gaussdiv.kl (new output)"
KL_OUT = "gaussdiv.kl (out=)"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--pairs", type=int, default=10_000_000)
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("--gaussdiv", default=os.path.join(os.environ.get("CARGO_TARGET_DIR", "target"), "release", "gaussdiv"))
    a = ap.parse_args()
    n = a.pairs
    x = batch(n)
    out = np.empty(n, np.float32)
    exe = a.gaussdiv if os.path.exists(a.gaussdiv) else None
    columns = ("--layout", "columns", "--on-invalid", "error")
    methods: Dict[str, Optional[Callable[[], float]]] = {
        LIB_PAIRS: (lambda: library_time(a.gaussdiv, n)) if exe else None,
        LIB_COLUMNS: (lambda: library_time(a.gaussdiv, n, *columns)) if exe else None,
        LIB_FRESH: (lambda: library_time(a.gaussdiv, n, *columns, "--output", "fresh")) if exe else None,
        KL_NEW: lambda: timed(lambda: gaussdiv.kl(*x, backend="cpu")),
        KL_OUT: lambda: timed(lambda: gaussdiv.kl(*x, backend="cpu", out=out)),
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
    g, o = rates[KL_NEW], rates[KL_OUT]
    assert g is not None and o is not None
    lib, cols, fresh = rates[LIB_PAIRS], rates[LIB_COLUMNS], rates[LIB_FRESH]
    if lib and cols and fresh:

        def per_round(py: str, library: str) -> str:
            """The ratio of the rates within each round: median [min, max]."""
            r = sorted(tl / tp for tp, tl in zip(times[py], times[library]))
            return f"{statistics.median(r):.3f} [{r[0]:.3f}, {r[-1]:.3f}]"

        print("  ratios of medians; in brackets the per-round ratios' median [min, max]")
        print(f"  out= / library columns reused  {o / cols:.3f}  {per_round(KL_OUT, LIB_COLUMNS)}  (binding overhead, like for like)")
        print(f"  new  / library columns fresh   {g / fresh:.3f}  {per_round(KL_NEW, LIB_FRESH)}  (like for like)")
        print(f"  out= / library pairs           {o / lib:.3f}  {per_round(KL_OUT, LIB_PAIRS)}")
        print(f"  new  / library pairs           {g / lib:.3f}  {per_round(KL_NEW, LIB_PAIRS)}")
    print(f"  gaussdiv.kl / NumPy textbook   {g / rates['NumPy textbook f32']:.2f}")  # type: ignore[operator]
    j = rates["jax.jit textbook f32"]
    print(f"  gaussdiv.kl / jax.jit          {'jax not installed' if j is None else f'{g / j:.2f}'}")


if __name__ == "__main__":
    main()
