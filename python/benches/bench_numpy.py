"""Throughput of gaussdiv.kl from NumPy arrays against the library's own CPU
rate (`gaussdiv bench`), the NumPy textbook formula and jax.jit of it.

    python python/benches/bench_numpy.py [--pairs 10000000] [--runs 7] [--gaussdiv target/release/gaussdiv]

Prints one table of medians (after a warm-up) and the ratios, all from one
run. The library's rate is measured in this process and in the tool.

In this process, `_gaussdiv.library_seconds_f32` does what `gaussdiv.kl`
asks of the extension (the same arrays, four columns, on_invalid error, the
same thread pool) and returns the seconds the library's `evaluate` took
inside it, without the Python layer, the argument conversion and the GIL
release around it: into the reused output (the baseline of `out=`) and into
a new NumPy array per call (that of a new output).

In the tool, `gaussdiv bench --backend cpu --metrics kl` runs on the same
number of pairs (its own in-memory batch, its own process) in three
conditions:

* pairs: the interleaved `Batch::Pairs` layout, on_invalid nan, an output
  reused by every run (the tool's default; the figure the issue names);
* columns: four f32 arrays (`Batch::Columns`), on_invalid error, an output
  reused by every run: what `gaussdiv.kl(..., out=o)` asks of the library,
  so their ratio is the binding's overhead;
* columns, fresh output: the same into a new zeroed buffer per call
  (allocated and first touched inside the timing, freed after it), as
  `gaussdiv.kl(...)` returns a new array.
"""

from __future__ import annotations

import argparse
import json
import os
import random
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
    """Seconds of one call; a returned array is freed after the clock stops (as
    the caller frees it later), so a new output costs its allocation and pages."""
    t = time.perf_counter()
    r = f()
    dt = time.perf_counter() - t
    del r
    return dt


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
LIB_HERE = "library here: reused output"
LIB_HERE_NEW = "library here: new output"
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
    def library_here(o: np.ndarray) -> float:
        return gaussdiv._gaussdiv.library_seconds_f32(x[0], x[1], x[2], x[3], o, ["kl"], "std", "cpu", "error", False)

    methods: Dict[str, Optional[Callable[[], float]]] = {
        LIB_HERE: lambda: library_here(out),
        LIB_HERE_NEW: lambda: library_here(np.empty(n, np.float32)),
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
    # Rounds: every method once per round, so that the machine's load hits them alike, in an
    # order shuffled per round (seeded), so that no method always follows the same one: the
    # tool's processes and NumPy's temporaries leave the page allocator (free huge pages) and
    # the caches in a different state for whatever runs next.
    active = [(k, m) for k, m in methods.items() if m is not None]
    for r in range(a.runs):
        random.Random(r).shuffle(active)
        for k, m in active:
            times[k].append(m())
    rates: Dict[str, Optional[float]] = {
        k: (n / statistics.median(times[k]) if k in times else None) for k in methods
    }
    print(f"{n} float32 pairs, KL, CPU; medians of {a.runs} interleaved rounds after a warm-up")
    for k, v in rates.items():
        print(f"  {k:<32} {'not available' if v is None else f'{v / 1e6:8.1f} M pairs/s'}")
    g, o = rates[KL_NEW], rates[KL_OUT]
    assert g is not None and o is not None
    def per_round(py: str, library: str) -> str:
        """The ratio of the rates within each round: median [min, max]."""
        r = sorted(tl / tp for tp, tl in zip(times[py], times[library]))
        return f"{statistics.median(r):.3f} [{r[0]:.3f}, {r[-1]:.3f}]"

    def ratio(label: str, py: str, library: str, note: str = "") -> None:
        a, b = rates[py], rates[library]
        if a and b:
            print(f"  {label:<30} {a / b:.3f}  {per_round(py, library)}{note}")

    # The binding's fixed cost per call (the Python layer, argument conversion, GIL release,
    # plus the library's own latency on one pair): an upper bound of what it adds to a call
    # of any size, free of the large calls' round-to-round noise.
    one = [v[:1].copy() for v in x]
    out1 = np.empty(1, np.float32)
    per_call = []
    for _ in range(21):
        t = time.perf_counter()
        for _ in range(200):
            gaussdiv.kl(*one, backend="cpu", out=out1)
        per_call.append((time.perf_counter() - t) / 200)
    fixed = statistics.median(per_call)
    o_time = statistics.median(times[KL_OUT])
    print(f"  gaussdiv.kl(out=) on 1 pair: {fixed * 1e6:.1f} us per call = {fixed / o_time:.2e} of the {n}-pair call")
    print("  ratios of medians; in brackets the per-round ratios' median [min, max]")
    ratio("out= / library here", KL_OUT, LIB_HERE, "  (the binding's overhead)")
    ratio("new  / library here, new", KL_NEW, LIB_HERE_NEW)
    ratio("out= / tool columns reused", KL_OUT, LIB_COLUMNS)
    ratio("new  / tool columns fresh", KL_NEW, LIB_FRESH)
    ratio("out= / tool pairs", KL_OUT, LIB_PAIRS)
    ratio("new  / tool pairs", KL_NEW, LIB_PAIRS)
    print(f"  gaussdiv.kl / NumPy textbook   {g / rates['NumPy textbook f32']:.2f}")  # type: ignore[operator]
    j = rates["jax.jit textbook f32"]
    print(f"  gaussdiv.kl / jax.jit          {'jax not installed' if j is None else f'{g / j:.2f}'}")


if __name__ == "__main__":
    main()
