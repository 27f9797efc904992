#!/usr/bin/env python3
"""Accuracy of popular implementations on the golden file, under docs/ARCHITECTURE.md §3's
tolerance model: share of rows whose KL is within 1e-6 relative error of the
50-digit truth, and spurious inf/NaN / negative KL counts.

    python3 gaussdiv/benches/baselines/accuracy.py [gaussdiv/tests/data/golden_public.csv] [--gaussdiv OUT.csv]

NumPy is required; PyTorch and JAX are measured when installed. --gaussdiv
takes the output of `gaussdiv eval golden.csv --metrics kl -o OUT.csv`.
"""
import csv
import math
import sys
import warnings

import numpy as np

F32_MAX = float(np.finfo(np.float32).max)
F32_TINY = float(np.finfo(np.float32).tiny)


def load(path):
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    bits = np.array([[int(b, 16) for b in r["bits"].split(":")] for r in rows], dtype=np.uint32)
    x = bits.view(np.float32)
    truth = np.array([float(r["kl"]) for r in rows])
    return x, truth


def score(name, kl, truth):
    kl = np.asarray(kl, dtype=np.float64)
    ok = 0
    spurious = 0
    negative = int(np.sum(kl < 0))
    for y, t in zip(kl, truth):
        if t > F32_MAX:
            good = y == math.inf
        elif t == 0.0:
            good = y == 0.0
        elif not math.isfinite(y):
            good = False
            spurious += 1
        elif t < F32_TINY and y == 0.0:
            good = True
        else:
            good = abs(y - t) / max(t, F32_TINY) <= 1e-6
        ok += good
    n = len(truth)
    print(f"{name:<34} {100.0 * ok / n:6.1f} %   spurious inf/NaN {spurious:4d}   negative KL {negative:4d}")


def textbook(m1, s1, m2, s2, xp):
    v1 = s1 * s1
    v2 = s2 * s2
    d = m1 - m2
    return 0.5 * (d * d / v2 + v1 / v2 - xp.log(v1 / v2) - 1.0)


def main():
    args = sys.argv[1:]
    ours = None
    if "--gaussdiv" in args:
        i = args.index("--gaussdiv")
        ours = args[i + 1]
        del args[i : i + 2]
    path = args[0] if args else "gaussdiv/tests/data/golden_public.csv"
    x, truth = load(path)
    m1, s1, m2, s2 = (x[:, i] for i in range(4))
    print(f"{len(truth)} rows of {path}: share of rows with KL within 1e-6 (docs/ARCHITECTURE.md §3 model)")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        score("NumPy f32 (textbook)", textbook(m1, s1, m2, s2, np), truth)
        score(
            "textbook in f64, rounded to f32",
            textbook(*(c.astype(np.float64) for c in (m1, s1, m2, s2)), np).astype(np.float32),
            truth,
        )
    try:
        import torch
        from torch.distributions import Normal, kl_divergence

        p = Normal(torch.from_numpy(m1), torch.from_numpy(s1))
        q = Normal(torch.from_numpy(m2), torch.from_numpy(s2))
        score("PyTorch f32 kl_divergence", kl_divergence(p, q).numpy(), truth)
    except Exception as e:  # not installed
        print(f"{'PyTorch':<34} not measured ({type(e).__name__})")
    try:
        import jax.numpy as jnp

        score("JAX f32 (textbook)", np.asarray(textbook(*(jnp.asarray(c) for c in (m1, s1, m2, s2)), jnp)), truth)
    except Exception as e:
        print(f"{'JAX':<34} not measured ({type(e).__name__})")
    if ours:
        with open(ours, newline="") as f:
            kl = [float(r["kl"]) for r in csv.DictReader(f)]
        score("gaussdiv f32", np.array(kl), truth)


if __name__ == "__main__":
    main()
