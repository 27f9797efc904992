#!/usr/bin/env python3
"""Parquet end to end: `gaussdiv eval` on a float32 Parquet file (row groups of 1e6 rows, an
int64 id column kept with --keep id) against the same pairs as NPY and as CSV, and against
pandas reading the Parquet, computing the textbook formulas in float32 and writing Parquet.
One run each (the machine is shared: read the ratios), each under /usr/bin/time -v for the
wall time and the peak RSS.

    python3 cli/benches/tables.py [--rows 30000000] [--gaussdiv target/release/gaussdiv] [--backend cpu]

Needs numpy, pandas and pyarrow (e.g. python3 -m venv /tmp/venv && /tmp/venv/bin/pip install
pandas pyarrow). Creates /tmp/gaussdiv-bench/tables_<rows>.{parquet,npy,csv} once.
"""
import argparse
import os
import re
import subprocess
import sys

import numpy as np

PANDAS_JOB = r"""
import sys
import numpy as np
import pandas as pd
df = pd.read_parquet(sys.argv[1])
m1, s1, m2, s2 = (df[c].to_numpy() for c in ("mu1", "sigma1", "mu2", "sigma2"))
v1, v2 = s1 * s1, s2 * s2
d = m1 - m2
ce = np.float32(0.5) * np.log(np.float32(2 * np.pi) * v2) + (d * d + v1) / (np.float32(2) * v2)
kl = np.float32(0.5) * (d * d / v2 + v1 / v2 - np.log(v1 / v2) - np.float32(1))
pd.DataFrame({"id": df["id"], "cross_entropy": ce, "kl": kl}).to_parquet(
    sys.argv[2], compression="zstd", index=False)
"""


def make_files(base, rows):
    import pandas as pd
    import pyarrow as pa
    import pyarrow.parquet as pq

    paths = {ext: f"{base}.{ext}" for ext in ("parquet", "npy", "csv")}
    if all(os.path.exists(p) for p in paths.values()):
        return paths
    rng = np.random.default_rng(7)
    cols = {
        "mu1": rng.uniform(-10, 10, rows).astype(np.float32),
        "sigma1": (10 ** rng.uniform(-3, 3, rows)).astype(np.float32),
        "mu2": rng.uniform(-10, 10, rows).astype(np.float32),
        "sigma2": (10 ** rng.uniform(-3, 3, rows)).astype(np.float32),
    }
    ids = np.arange(rows, dtype=np.int64)
    table = pa.table({"id": ids, **cols})
    pq.write_table(table, paths["parquet"] + ".tmp", row_group_size=1_000_000, compression="zstd")
    os.replace(paths["parquet"] + ".tmp", paths["parquet"])
    np.save(paths["npy"] + ".tmp.npy", np.stack([cols[c] for c in ("mu1", "sigma1", "mu2", "sigma2")], axis=1))
    os.replace(paths["npy"] + ".tmp.npy", paths["npy"])
    pd.DataFrame({"id": ids, **cols}).to_csv(paths["csv"] + ".tmp", index=False, float_format="%.9g")
    os.replace(paths["csv"] + ".tmp", paths["csv"])
    return paths


def timed(cmd):
    """Wall seconds and peak RSS (MiB) of `cmd` under /usr/bin/time -v."""
    r = subprocess.run(["/usr/bin/time", "-v", *cmd], capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit(f"failed: {' '.join(cmd)}\n{r.stderr}")
    wall = re.search(r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): (\S+)", r.stderr).group(1)
    secs = sum(float(x) * 60**i for i, x in enumerate(reversed(wall.split(":"))))
    rss = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", r.stderr).group(1)) / 1024
    return secs, rss


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=30_000_000)
    ap.add_argument("--gaussdiv", default="target/release/gaussdiv")
    ap.add_argument("--backend", default="cpu")
    a = ap.parse_args()
    os.makedirs("/tmp/gaussdiv-bench", exist_ok=True)
    base = f"/tmp/gaussdiv-bench/tables_{a.rows}"
    p = make_files(base, a.rows)
    out = "/tmp/gaussdiv-bench/tables_out"
    g = [a.gaussdiv, "eval", "--progress", "never", "--backend", a.backend]
    runs = [
        ("gaussdiv Parquet -> Parquet (--keep id)", g + [p["parquet"], "-o", out + ".parquet", "--keep", "id"]),
        ("gaussdiv NPY -> NPY", g + [p["npy"], "-o", out + ".npy"]),
        ("gaussdiv CSV -> CSV (--keep id)", g + [p["csv"], "-o", out + ".csv", "--keep", "id"]),
        ("pandas read_parquet + numpy f32 textbook + to_parquet(zstd)",
         [sys.executable, "-c", PANDAS_JOB, p["parquet"], out + "_pandas.parquet"]),
    ]
    print(f"{a.rows} rows; Parquet {os.path.getsize(p['parquet']) / 2**20:.0f} MiB "
          f"(row groups of 1e6), NPY {os.path.getsize(p['npy']) / 2**20:.0f} MiB, "
          f"CSV {os.path.getsize(p['csv']) / 2**20:.0f} MiB; one run each")
    results = []
    for name, cmd in runs:
        secs, rss = timed(cmd)
        results.append((name, secs, rss))
        print(f"  {name:<62} {secs:7.2f} s  {a.rows / secs / 1e6:6.1f} M rows/s  peak RSS {rss:6.0f} MiB")
    first = results[0][1]
    for name, secs, _ in results[1:]:
        print(f"  {name}: {secs / first:.2f}x the Parquet time")


if __name__ == "__main__":
    main()
