#!/usr/bin/env python3
"""CSV end to end: `gaussdiv eval` against pandas (read_csv, the formulas, to_csv)
on the same file, runs interleaved, medians reported.

    python3 gaussdiv/benches/baselines/csv_pandas.py [--rows 10000000] [--runs 3] [--gaussdiv target/release/gaussdiv]

Creates /tmp/gaussdiv-bench/pairs_<rows>.csv once (mu1,sigma1,mu2,sigma2).
"""
import argparse
import os
import statistics
import subprocess
import time

import numpy as np
import pandas as pd


def make_csv(path, rows):
    if os.path.exists(path):
        return
    rng = np.random.default_rng(7)
    df = pd.DataFrame(
        {
            "mu1": rng.uniform(-10, 10, rows).astype(np.float32),
            "sigma1": (10 ** rng.uniform(-3, 3, rows)).astype(np.float32),
            "mu2": rng.uniform(-10, 10, rows).astype(np.float32),
            "sigma2": (10 ** rng.uniform(-3, 3, rows)).astype(np.float32),
        }
    )
    tmp = path + ".tmp"
    df.to_csv(tmp, index=False, float_format="%.8g")
    os.replace(tmp, path)


def run_pandas(src, dst):
    t = time.perf_counter()
    df = pd.read_csv(src)
    m1, s1, m2, s2 = (df[c].to_numpy() for c in ("mu1", "sigma1", "mu2", "sigma2"))
    v1, v2 = s1 * s1, s2 * s2
    d = m1 - m2
    ce = 0.5 * np.log(2 * np.pi * v2) + (d * d + v1) / (2 * v2)
    kl = 0.5 * (d * d / v2 + v1 / v2 - np.log(v1 / v2) - 1.0)
    pd.DataFrame({"cross_entropy": ce, "kl": kl}).to_csv(dst, index=False)
    return time.perf_counter() - t


def run_gaussdiv(exe, src, dst, extra):
    t = time.perf_counter()
    subprocess.run([exe, "eval", src, "-o", dst, "--progress", "never", *extra], check=True)
    return time.perf_counter() - t


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=10_000_000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--gaussdiv", default="target/release/gaussdiv")
    ap.add_argument("--backend", default="auto")
    a = ap.parse_args()
    os.makedirs("/tmp/gaussdiv-bench", exist_ok=True)
    src = f"/tmp/gaussdiv-bench/pairs_{a.rows}.csv"
    make_csv(src, a.rows)
    size = os.path.getsize(src)
    ours, theirs = [], []
    for _ in range(a.runs):
        ours.append(run_gaussdiv(a.gaussdiv, src, "/tmp/gaussdiv-bench/out_gaussdiv.csv", ["--backend", a.backend]))
        theirs.append(run_pandas(src, "/tmp/gaussdiv-bench/out_pandas.csv"))
    mo, mt = statistics.median(ours), statistics.median(theirs)
    print(f"{a.rows} rows, {size / 1e6:.0f} MB CSV; medians of {a.runs} interleaved runs")
    print(f"  gaussdiv eval (--backend {a.backend}): {mo:7.2f} s  ({a.rows / mo / 1e6:.2f} M rows/s)  runs {['%.2f' % x for x in ours]}")
    print(f"  pandas read_csv + numpy + to_csv: {mt:7.2f} s  ({a.rows / mt / 1e6:.2f} M rows/s)  runs {['%.2f' % x for x in theirs]}")
    print(f"  speed-up: {mt / mo:.2f}x")


if __name__ == "__main__":
    main()
