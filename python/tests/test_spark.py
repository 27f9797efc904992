"""gaussdiv.spark.with_measures on a local[2] Spark session."""

from __future__ import annotations

import os
import sys
from typing import Any, Dict, Iterator

import numpy as np
import pytest

import gaussdiv

if os.environ.get("GAUSSDIV_REQUIRE_SPARK") == "1":
    import pyspark  # noqa: F401  (fails the module when Spark is required but missing)
else:
    pytest.importorskip("pyspark")
    pytest.importorskip("pyarrow")

import pyarrow as pa
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import DoubleType, FloatType, LongType, StructField, StructType

import gaussdiv.spark as gspark


@pytest.fixture(scope="module")
def spark() -> Iterator[SparkSession]:
    # Executors start this interpreter, which has gaussdiv (not the system python3).
    os.environ["PYSPARK_PYTHON"] = sys.executable
    os.environ["PYSPARK_DRIVER_PYTHON"] = sys.executable
    s = (
        SparkSession.builder.master("local[2]")
        .appName("gaussdiv-tests")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.sql.shuffle.partitions", "4")
        .config("spark.sql.execution.arrow.pyspark.enabled", "true")
        .config("spark.driver.memory", "2g")
        .getOrCreate()
    )
    s.sparkContext.setLogLevel("ERROR")
    yield s
    s.stop()


def golden_frame(spark: SparkSession, cols: Dict[str, np.ndarray], spark_type: Any) -> DataFrame:
    schema = StructType(
        [StructField("id", LongType(), False)]
        + [StructField(c, spark_type, False) for c in ("mu1", "sigma1", "mu2", "sigma2")]
    )
    n = len(cols["mu1"])
    rows = [
        (i, float(cols["mu1"][i]), float(cols["a1"][i]), float(cols["mu2"][i]), float(cols["a2"][i]))
        for i in range(n)
    ]
    # Reverse the ids so that "order kept" means the frame's order, not sorted ids.
    rows = rows[::-1]
    return spark.createDataFrame(rows, schema).repartition(8).sortWithinPartitions("id", ascending=False)


def collect(df: DataFrame) -> pa.Table:
    return df.toArrow()


@pytest.mark.parametrize("spark_type,dtype,bound", [(FloatType(), np.float32, 1e-6), (DoubleType(), np.float64, 1e-14)])
def test_golden_through_spark(spark: SparkSession, public: Dict[str, np.ndarray], spark_type: Any, dtype: Any, bound: float) -> None:
    df = golden_frame(spark, public, spark_type).withColumn("tag", F.lit("x"))
    before = collect(df)
    out = gspark.with_measures(df, ["kl", "cross_entropy"])
    assert out.columns == df.columns + ["kl", "cross_entropy"]
    assert out.schema["kl"].dataType == spark_type and out.schema["cross_entropy"].dataType == spark_type
    t = collect(out)
    assert t.num_rows == 2000
    # Every input column and the row order are kept.
    for c in df.columns:
        assert t.column(c).equals(before.column(c)), c
    ids = t.column("id").to_numpy()
    prec = "f32" if dtype == np.float32 else "f64"
    truth = {m: public[m][ids] for m in ("kl", "cross_entropy", "entropy")}
    for m in ("kl", "cross_entropy"):
        got = t.column(m).to_numpy()
        assert got.dtype == dtype
        e = gaussdiv.errors(m, got.astype(np.float64), truth, precision=prec)
        print(f"spark {prec} {m}: worst {e.max():.3g}")
        assert e.max() <= bound, (m, e.max())


def random_frame(spark: SparkSession, n: int, partitions: int) -> DataFrame:
    return spark.range(n, numPartitions=partitions).select(
        F.col("id"),
        (F.rand(1) * 20 - 10).alias("mu1"),
        F.pow(F.lit(10.0), F.rand(2) * 4 - 2).alias("sigma1"),
        (F.rand(3) * 20 - 10).alias("mu2"),
        F.pow(F.lit(10.0), F.rand(4) * 4 - 2).alias("sigma2"),
    )


@pytest.mark.parametrize("n,partitions,single", [(2_000_000, 16, False), (1_000_000, 8, True)])
def test_large_frame_bit_for_bit(spark: SparkSession, n: int, partitions: int, single: bool) -> None:
    df = random_frame(spark, n, partitions)
    if single:
        df = df.select("id", *[F.col(c).cast("float").alias(c) for c in ("mu1", "sigma1", "mu2", "sigma2")])
    df = df.cache()
    assert df.rdd.getNumPartitions() == partitions
    metrics = ["cross_entropy", "kl", "hellinger"]
    t = collect(gspark.with_measures(df, metrics))
    assert t.num_rows == n
    assert np.array_equal(t.column("id").to_numpy(), np.arange(n))
    x = [t.column(c).to_numpy() for c in ("mu1", "sigma1", "mu2", "sigma2")]
    direct = gaussdiv.measures(*x, metrics, backend="cpu")
    for m in metrics:
        got = t.column(m).to_numpy()
        assert got.dtype == (np.float32 if single else np.float64)
        assert np.array_equal(got, direct[m]), m
    df.unpersist()


def test_nulls_invalid_and_names(spark: SparkSession) -> None:
    schema = StructType([StructField(c, DoubleType(), True) for c in ("m1", "s1", "m2", "s2")])
    df = spark.createDataFrame([(0.0, 1.0, 1.0, 2.0), (None, 1.0, 0.0, 1.0), (0.0, -1.0, 0.0, 1.0)], schema).coalesce(1)
    names = dict(mu1="m1", a1="s1", mu2="m2", a2="s2")
    rows = gspark.with_measures(df, "kl", on_invalid="nan", **names).collect()
    assert abs(rows[0]["kl"] - 0.4431471805599453) < 1e-15
    assert rows[1]["kl"] is None
    assert np.isnan(rows[2]["kl"])
    with pytest.raises(Exception, match=r"column 's1' at partition 0, row 2 of the partition: s1 = -1.0 .*'m1': 0.0, 's1': -1.0"):
        gspark.with_measures(df, "kl", **names).collect()
    with pytest.raises(ValueError, match="no column 'mu1'"):
        gspark.with_measures(df, "kl")
    with pytest.raises(ValueError, match="unknown measure"):
        gspark.with_measures(df, ["kl", "kld"], **names)
    with pytest.raises(ValueError, match="already has columns"):
        gspark.with_measures(df.withColumn("kl", F.lit(1.0)), "kl", **names)
