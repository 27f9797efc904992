#!/usr/bin/env python3
"""Full-covariance CE + KL throughput: `gaussdiv bench --mvn D` (the tool, CPU,
f32) against jax.jit of the batched Cholesky arrangement every library uses
(PyTorch's `_kl_multivariatenormal_multivariatenormal`: two Choleskys,
triangular solves, log-diagonals), f32, and gaussdiv.mvn from Python when the
package is installed. Rounds interleave the methods; medians per method.

    python3 gaussdiv/benches/baselines/mvn.py --gaussdiv target/release/gaussdiv \
        --case 3:200000 --case 16:20000 --rounds 5

Needs NumPy; jax is measured when installed (`pip install jax`).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from typing import Any, Callable, Dict, List, Optional, Tuple

import numpy as np


def batch(n: int, d: int, seed: int = 7) -> Tuple[np.ndarray, ...]:
    """Well-conditioned f32 pairs like `bench --mvn`'s: s^2 (I + N)(I + N)^T."""
    rng = np.random.default_rng(seed)

    def cov() -> np.ndarray:
        scale = 10.0 ** rng.uniform(-1, 1, size=(n, 1, 1))
        l = np.tril((rng.uniform(size=(n, d, d)) - 0.5) * (0.6 / d), -1) + np.eye(d)
        return (scale**2 * (l @ np.swapaxes(l, -1, -2))).astype(np.float32)

    mu1 = rng.uniform(-2, 2, size=(n, d)).astype(np.float32)
    mu2 = rng.uniform(-2, 2, size=(n, d)).astype(np.float32)
    return mu1, cov(), mu2, cov()


def jax_fn() -> Optional[Callable[..., Any]]:
    try:
        import jax
        import jax.numpy as jnp
        from jax.scipy.linalg import solve_triangular
    except ImportError:
        return None

    @jax.jit
    def ce_kl(mu1: Any, c1: Any, mu2: Any, c2: Any) -> Any:
        d = mu1.shape[-1]
        l1 = jnp.linalg.cholesky(c1)
        l2 = jnp.linalg.cholesky(c2)
        half_logdet1 = jnp.sum(jnp.log(jnp.diagonal(l1, axis1=-2, axis2=-1)), -1)
        half_logdet2 = jnp.sum(jnp.log(jnp.diagonal(l2, axis1=-2, axis2=-1)), -1)
        m = solve_triangular(l2, l1, lower=True)
        z = solve_triangular(l2, (mu2 - mu1)[..., None], lower=True)[..., 0]
        kl = half_logdet2 - half_logdet1 + 0.5 * (
            jnp.sum(m * m, (-2, -1)) + jnp.sum(z * z, -1) - d
        )
        h1 = 0.5 * d * (1 + jnp.log(2 * jnp.pi)) + half_logdet1
        return h1 + kl, kl

    return lambda *a: jax.block_until_ready(ce_kl(*a))


def jax_child(d: int, n: int, tries: int = 3) -> float:
    """jax.jit's rate in a child process (compiled there first): jax shares
    no process with gaussdiv's thread pool. XLA's CPU client sometimes hangs
    on a repeated call on these machines (jax 0.10.2: measured in about one
    run of five, any shape, with or without async dispatch); a hung child is
    killed after 60 s and the round retried, up to `tries` times, else NaN."""
    for _ in range(tries):
        rate = jax_once(d, n)
        if rate == rate:
            return rate
    return float("nan")


def jax_once(d: int, n: int) -> float:
    """One child process's rate, NaN if it hung or failed."""
    code = (
        "import sys, json; sys.path.insert(0, %r); import mvn as b; import jax.numpy as jnp; "
        "f = b.jax_fn(); a = [jnp.asarray(x) for x in b.batch(%d, %d)]; f(*a); "
        "print(b.timed(lambda: f(*a), %d))" % (str(__import__("pathlib").Path(__file__).parent), n, d, n)
    )
    try:
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
        return float(out.stdout.strip().splitlines()[-1])
    except (subprocess.TimeoutExpired, ValueError, IndexError):
        return float("nan")


def tool(exe: str, d: int, n: int) -> float:
    out = subprocess.run(
        [exe, "bench", "--mvn", str(d), "--pairs", str(n), "--runs", "3", "--backend", "cpu", "--json"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return float(json.loads(out)[0]["mpairs_per_s"])


def timed(f: Callable[[], Any], n: int, repeat: int = 3) -> float:
    best = []
    for _ in range(repeat):
        t = time.perf_counter()
        f()
        best.append(time.perf_counter() - t)
    return n / statistics.median(best) / 1e6


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--gaussdiv", required=True)
    ap.add_argument("--case", action="append", default=[], help="D:PAIRS (repeatable)")
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()
    cases = [tuple(int(x) for x in c.split(":")) for c in (args.case or ["3:200000", "16:20000"])]
    jf = jax_fn()  # whether jax is installed; it runs in child processes
    try:
        import gaussdiv.mvn as gmvn
    except ImportError:
        gmvn = None
    for d, n in cases:
        arrays = batch(n, d)
        methods: Dict[str, Callable[[], float]] = {"gaussdiv bench (tool)": lambda: tool(args.gaussdiv, d, n)}
        if gmvn is not None:
            mu1, c1, mu2, c2 = arrays
            methods["gaussdiv.mvn.measures"] = lambda: timed(
                lambda: gmvn.measures(mu1, mu2, ("cross_entropy", "kl"), cov1=c1, cov2=c2, backend="cpu"), n
            )
        if jf is not None:
            methods["jax.jit Cholesky f32"] = lambda: jax_child(d, n)
        rates: Dict[str, List[float]] = {k: [] for k in methods}
        rng = np.random.default_rng(1)
        for _ in range(args.rounds):
            for k in rng.permutation(list(methods)):
                rates[k].append(methods[k]())
        print(f"d={d}, {n} pairs, CE + KL, f32, CPU; medians of {args.rounds} shuffled rounds (M pairs/s)")
        # Medians of the rounds that gave a rate (a jax round can be NaN: jax_child).
        med = {k: statistics.median([x for x in v if x == x] or [float("nan")]) for k, v in rates.items()}
        for k, v in med.items():
            print(f"  {k:<26} {v:10.3f}   rounds: {', '.join(f'{x:.3f}' for x in rates[k])}")
        if "jax.jit Cholesky f32" in med:
            j = med["jax.jit Cholesky f32"]
            for k, v in med.items():
                if not k.startswith("jax"):
                    print(f"  {k} / jax.jit = {v / j:.2f}")


if __name__ == "__main__":
    main()
