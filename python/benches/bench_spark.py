"""Rows per second of gaussdiv.spark.with_measures against a pandas_udf of the
NumPy textbook formula, on the same cached frame, on local[2].

    PYSPARK_PYTHON=$(which python) python python/benches/bench_spark.py [--rows 2000000] [--partitions 16] [--runs 5] [--float]

Both write to Spark's "noop" sink (the whole frame is computed, nothing is
stored); rounds alternate the two methods; medians after a warm-up.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from typing import Callable, Dict, List

import numpy as np
import pandas as pd
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.functions import pandas_udf

import gaussdiv.spark as gspark


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=2_000_000)
    ap.add_argument("--partitions", type=int, default=16)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--float", action="store_true", help="FloatType columns (f32) instead of DoubleType")
    a = ap.parse_args()
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    spark = (
        SparkSession.builder.master("local[2]")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.driver.memory", "4g")
        .getOrCreate()
    )
    spark.sparkContext.setLogLevel("ERROR")
    t = "float" if a.float else "double"
    df = spark.range(a.rows, numPartitions=a.partitions).select(
        F.col("id"),
        (F.rand(1) * 20 - 10).cast(t).alias("mu1"),
        F.pow(F.lit(10.0), F.rand(2) * 4 - 2).cast(t).alias("sigma1"),
        (F.rand(3) * 20 - 10).cast(t).alias("mu2"),
        F.pow(F.lit(10.0), F.rand(4) * 4 - 2).cast(t).alias("sigma2"),
    ).cache()
    df.count()

    @pandas_udf(t)  # type: ignore[untyped-decorator,misc,unused-ignore]
    def kl_numpy(mu1: pd.Series, s1: pd.Series, mu2: pd.Series, s2: pd.Series) -> pd.Series:
        m1, v1, m2, v2 = mu1.to_numpy(), s1.to_numpy(), mu2.to_numpy(), s2.to_numpy()
        r = (v1 / v2) ** 2
        return pd.Series(0.5 * ((m1 - m2) ** 2 / v2**2 + r - np.log(r) - 1.0))

    def run(frame: DataFrame) -> None:
        frame.write.format("noop").mode("overwrite").save()

    methods: Dict[str, Callable[[], None]] = {
        "gaussdiv.spark.with_measures": lambda: run(gspark.with_measures(df, ["kl"])),
        "pandas_udf (NumPy textbook)": lambda: run(df.withColumn("kl", kl_numpy("mu1", "sigma1", "mu2", "sigma2"))),
    }
    times: Dict[str, List[float]] = {k: [] for k in methods}
    for f in methods.values():
        f()  # warm-up: Python workers started, imports done
    for _ in range(a.runs):
        for k, f in methods.items():
            s = time.perf_counter()
            f()
            times[k].append(time.perf_counter() - s)
    print(f"{a.rows} rows ({t}), {a.partitions} partitions, local[2], KL; medians of {a.runs} alternating runs")
    med = {k: statistics.median(v) for k, v in times.items()}
    for k, v in med.items():
        print(f"  {k:<32} {a.rows / v / 1e6:7.2f} M rows/s  ({v:.2f} s)")
    g, p = med["gaussdiv.spark.with_measures"], med["pandas_udf (NumPy textbook)"]
    print(f"  with_measures / pandas_udf       {p / g:.2f}")
    spark.stop()


if __name__ == "__main__":
    main()
