"""gaussdiv on Spark: the measures of every row of a DataFrame, through
``mapInArrow`` (Arrow record batches in, Arrow record batches out).

Every executor needs the ``gaussdiv`` package: install the wheel there and
point ``PYSPARK_PYTHON`` at the interpreter that has it (see the README,
"Beyond one machine").
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Iterable, Iterator, List, Union

import numpy as np

import gaussdiv

if TYPE_CHECKING:  # pragma: no cover
    import pyarrow as pa
    from pyspark.sql import DataFrame

__all__ = ["with_measures"]


def _column(batch: "pa.RecordBatch", name: str, dtype: Any) -> "tuple[np.ndarray, Any]":
    """A column as a NumPy array of ``dtype`` -- the Arrow buffer itself (no
    copy) when the column has that type and no nulls -- and its null mask
    (None without nulls)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    col = batch.column(name)
    arrow_type = pa.float32() if dtype == np.float32 else pa.float64()
    if col.type != arrow_type:
        col = pc.cast(col, arrow_type)
    if col.null_count == 0:
        return col.to_numpy(zero_copy_only=True), None
    mask = col.is_null().to_numpy(zero_copy_only=False)
    values = col.fill_null(1.0).to_numpy(zero_copy_only=False)
    return values, mask


def _to_arrow(values: np.ndarray, mask: Any) -> "pa.Array":
    """A contiguous NumPy array as an Arrow array over the same memory (nulls where ``mask``)."""
    import pyarrow as pa

    values = np.ascontiguousarray(values)
    arrow_type = pa.float32() if values.dtype == np.float32 else pa.float64()
    if mask is None:
        return pa.Array.from_buffers(arrow_type, len(values), [None, pa.py_buffer(values)])
    return pa.array(values, type=arrow_type, mask=mask)


def _located(
    e: "gaussdiv.InvalidInputError", batch: "pa.RecordBatch", offset: int, columns: "dict[str, str]"
) -> "gaussdiv.InvalidInputError":
    """``e`` (an invalid element of a batch) restated for a Spark user: the
    column, the partition, the row's position in its partition and the row
    itself (every column, so that an id column identifies it)."""
    from pyspark import TaskContext

    row = int(e.index[0]) if e.index else 0
    ctx = TaskContext.get()
    part = ctx.partitionId() if ctx is not None else None
    values = {name: batch.column(name)[row].as_py() for name in batch.schema.names}
    column = columns.get(e.argument, e.argument)
    where = f"partition {part}, row {offset + row} of the partition" if part is not None else f"row {offset + row}"
    return gaussdiv.InvalidInputError(
        f"invalid input in column {column!r} at {where}: {column} = {e.value!r} ({e.reason}); the row: {values}",
        (offset + row,),
        column,
        e.value,
        e.reason,
    )


def with_measures(
    df: "DataFrame",
    metrics: Union[str, Iterable[str]],
    *,
    mu1: str = "mu1",
    a1: str = "sigma1",
    mu2: str = "mu2",
    a2: str = "sigma2",
    param: str = "std",
    backend: str = "cpu",
    on_invalid: str = "error",
) -> "DataFrame":
    """``df`` with one column per measure appended, named as the measures
    (``"kl"``, ``"cross_entropy"``, ...), every row and column kept, in order.

    The inputs are the columns ``mu1``, ``a1``, ``mu2``, ``a2`` (``a`` in the
    parameterisation ``param``). If all four are ``FloatType`` the measures
    are computed in f32 and are ``FloatType``; otherwise (``DoubleType`` or
    other numeric types, cast to double) in f64 as ``DoubleType``. A row with
    a null input gets null measures. Invalid rows raise (in the executor)
    a ``ValueError`` (:class:`gaussdiv.InvalidInputError`) naming the column,
    the value, the partition, the row's position in it and the whole row
    (so that an id column identifies it), or with
    ``on_invalid="nan"`` give NaN. ``backend`` is the executors' backend
    (``"cpu"`` by default: executors rarely own a GPU).

    Arrow buffers are handed to the library without copies where the batch
    allows (right type, no nulls), and the results are wrapped as Arrow
    buffers without copies.
    """
    from pyspark.sql.types import DoubleType, FloatType, NumericType, StructField, StructType

    names: List[str] = [metrics] if isinstance(metrics, str) else list(metrics)
    gaussdiv._ext.canonical(list(names))  # validates the names early, on the driver
    if param not in gaussdiv.PARAMS:
        raise ValueError(f"unknown param {param!r}; expected one of {', '.join(gaussdiv.PARAMS)}")
    fields = {f.name: f for f in df.schema.fields}
    inputs = [mu1, a1, mu2, a2]
    for c in inputs:
        if c not in fields:
            raise ValueError(f"no column {c!r} in the DataFrame (columns: {', '.join(fields)})")
        if not isinstance(fields[c].dataType, NumericType):
            raise TypeError(f"column {c!r} is {fields[c].dataType.simpleString()}, not numeric")
    clash = [m for m in names if m in fields]
    if clash:
        raise ValueError(f"the DataFrame already has columns named {clash}")
    single = all(isinstance(fields[c].dataType, FloatType) for c in inputs)
    dtype = np.float32 if single else np.float64
    spark_type = FloatType() if single else DoubleType()
    schema = StructType(list(df.schema.fields) + [StructField(m, spark_type, True) for m in names])

    def compute(batches: Iterator["pa.RecordBatch"]) -> Iterator["pa.RecordBatch"]:
        import pyarrow as pa

        import gaussdiv as gd

        offset = 0  # rows of this partition before the batch
        for batch in batches:
            pieces = [_column(batch, c, dtype) for c in inputs]
            cols = [p[0] for p in pieces]
            nulls = None
            for _, m in pieces:
                if m is not None:
                    nulls = m if nulls is None else (nulls | m)
            try:
                result = gd.measures(cols[0], cols[1], cols[2], cols[3], names, param=param, backend=backend, on_invalid=on_invalid)
            except gd.InvalidInputError as e:
                raise _located(e, batch, offset, dict(zip(("mu1", "a1", "mu2", "a2"), inputs))) from None
            offset += batch.num_rows
            arrays = list(batch.columns) + [_to_arrow(result[m], nulls) for m in names]
            yield pa.RecordBatch.from_arrays(arrays, schema=schema_arrow)

    from pyspark.sql.pandas.types import to_arrow_schema

    schema_arrow = to_arrow_schema(schema)
    return df.mapInArrow(compute, schema)
