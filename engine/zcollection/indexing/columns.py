"""Turning what an index builder returns for one partition into an Arrow table."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy
import pyarrow as pa

#: Columns the index keeps for itself; the others are the user's key columns.
PARTITION, START, STOP = "_partition", "_start", "_stop"
RESERVED = (PARTITION, START, STOP)


def output_columns(output: Any, partition: str) -> dict[str, numpy.ndarray[Any, Any]]:
    """Return the columns of a builder's output for ``partition``.

    Raises:
        TypeError: If ``output`` is neither a structured array nor a dict of arrays.
        ValueError: If it lacks ``_start`` / ``_stop``, names ``_partition``, or holds
            columns that are not 1-D or not of equal length.
    """
    if isinstance(output, numpy.ndarray) and output.dtype.names is not None:
        columns = {name: output[name] for name in output.dtype.names}
    elif isinstance(output, Mapping):
        columns = {}
        for name, values in output.items():
            if not isinstance(name, str):
                raise TypeError(f"index column names must be strings, not {name!r}")
            columns[name] = numpy.asarray(values)
    else:
        raise TypeError(
            "an index builder must return a structured numpy array or a dict of 1-D arrays, "
            f"not {type(output).__name__} (partition {partition!r})"
        )
    missing = [name for name in (START, STOP) if name not in columns]
    if missing:
        raise ValueError(f"the index builder's output for {partition!r} lacks {missing}")
    if PARTITION in columns:
        raise ValueError(f"{PARTITION!r} is added by the indexer; the builder must not return it")
    lengths = set()
    for name, values in columns.items():
        if values.ndim != 1:
            raise ValueError(
                f"index column {name!r} of partition {partition!r} must be 1-D, "
                f"not of shape {values.shape}"
            )
        lengths.add(len(values))
    if len(lengths) > 1:
        raise ValueError(
            f"the index columns of partition {partition!r} have different lengths {sorted(lengths)}"
        )
    for name in (START, STOP):
        if columns[name].dtype.kind not in "iu":
            raise ValueError(f"{name!r} must hold integers, not {columns[name].dtype}")
    if numpy.any(columns[START] < 0) or numpy.any(columns[STOP] < columns[START]):
        raise ValueError(
            f"the row ranges of partition {partition!r} must satisfy 0 <= _start <= _stop"
        )
    return columns


def partition_table(output: Any, partition: str) -> pa.Table:
    """Return the index rows a builder produced for ``partition`` as an Arrow table."""
    columns = output_columns(output, partition)
    size = len(columns[START])
    arrays: dict[str, pa.Array] = {
        name: pa.array(values) for name, values in columns.items() if name not in RESERVED
    }
    arrays[PARTITION] = pa.array(numpy.full(size, partition, dtype=f"U{max(len(partition), 1)}"))
    arrays[START] = pa.array(columns[START].astype("int64"))
    arrays[STOP] = pa.array(columns[STOP].astype("int64"))
    return pa.table(arrays)


def empty_table() -> pa.Table:
    """Return an index without rows nor key columns."""
    return pa.table(
        {
            PARTITION: pa.array([], pa.string()),
            START: pa.array([], pa.int64()),
            STOP: pa.array([], pa.int64()),
        }
    )


def concat_tables(tables: list[pa.Table]) -> pa.Table:
    """Concatenate per-partition tables (same columns; types unified where Arrow can).

    Raises:
        ValueError: If the partitions produced different columns or incompatible types.
    """
    if not tables:
        return empty_table()
    names = tables[0].column_names
    for table in tables[1:]:
        if table.column_names != names:
            raise ValueError(
                f"the index builder returned columns {table.column_names} for one partition "
                f"and {names} for another"
            )
    try:
        return pa.concat_tables(tables, promote_options="permissive").combine_chunks()
    except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
        raise ValueError(f"the index builder returned incompatible column types: {exc}") from exc


def check_table(table: Any) -> pa.Table:
    """Return ``table`` with its reserved columns in their canonical types.

    Raises:
        TypeError: If ``table`` is not a pyarrow Table.
        ValueError: If it lacks a reserved column or one cannot take its type.
    """
    if not isinstance(table, pa.Table):
        raise TypeError(f"an Indexer wraps a pyarrow.Table, not {type(table).__name__}")
    missing = [name for name in RESERVED if name not in table.column_names]
    if missing:
        raise ValueError(f"an index table needs the columns {list(RESERVED)}; missing {missing}")
    wanted = {PARTITION: pa.string(), START: pa.int64(), STOP: pa.int64()}
    for name, kind in wanted.items():
        column = table[name]
        if column.type != kind:
            try:
                column = column.cast(kind)
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError) as exc:
                raise ValueError(f"index column {name!r} cannot be read as {kind}: {exc}") from exc
            table = table.set_column(table.column_names.index(name), name, column)
    return table


__all__ = [
    "PARTITION",
    "RESERVED",
    "START",
    "STOP",
    "check_table",
    "concat_tables",
    "empty_table",
    "partition_table",
]
