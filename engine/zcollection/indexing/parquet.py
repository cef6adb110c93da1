"""Indexer: a Parquet-backed table from user-defined key columns to partition row ranges."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy
import pyarrow as pa
import pyarrow.parquet as pq

from .._sync import run_sync
from .columns import RESERVED, check_table, concat_tables, partition_table
from .location import locate, read_bytes_async, write_bytes_async
from .ranges import merged_ranges, row_mask

#: What a builder returns for one partition.
BuilderOutput = numpy.ndarray[Any, Any] | dict[str, numpy.ndarray[Any, Any]]


def _table_of(outputs: dict[str, Any]) -> pa.Table:
    return concat_tables([partition_table(output, path) for path, output in outputs.items()])


class Indexer:
    """Lookup table over a Collection's rows.

    Each row maps values of the user's key columns to a row range ``[_start, _stop)`` of the
    partition ``_partition``. Build one with :meth:`build`, query it with :meth:`lookup`,
    keep it as Parquet with :meth:`write` / :meth:`read` (a local path or a store URL such
    as ``s3://bucket/indexes/passes.parquet``).
    """

    def __init__(self, table: pa.Table) -> None:
        self._table = check_table(table)

    # -- building -----------------------------------------------------------------------
    @classmethod
    def build(
        cls,
        collection: Any,
        *,
        builder: Callable[[Any], BuilderOutput],
        filters: str | None = None,
        variables: Iterable[str] | None = None,
    ) -> Indexer:
        """Build an index by running ``builder`` on each partition of ``collection``.

        ``builder`` receives one partition (a Dataset) and returns a structured array or a
        dict of equal-length 1-D arrays, with the row ranges in ``_start`` / ``_stop`` and
        the key columns in the other fields; a ``_partition`` column is added. Partitions
        are visited through ``collection.map``, in key order.

        Raises:
            ValueError: If an output lacks ``_start`` or ``_stop`` (or is malformed).
            TypeError: If ``builder`` returns neither a structured array nor a dict.
        """
        outputs = collection.map(builder, filters=filters, variables=variables)
        return cls(_table_of(outputs))

    @classmethod
    async def build_async(
        cls,
        collection: Any,
        *,
        builder: Callable[[Any], BuilderOutput],
        filters: str | None = None,
        variables: Iterable[str] | None = None,
    ) -> Indexer:
        """Async variant of :meth:`build` (through ``collection.map_async``)."""
        outputs = await collection.map_async(builder, filters=filters, variables=variables)
        return cls(_table_of(outputs))

    # -- properties ---------------------------------------------------------------------
    @property
    def table(self) -> pa.Table:
        """Return the underlying PyArrow table."""
        return self._table

    @property
    def key_columns(self) -> tuple[str, ...]:
        """Return the user-defined key column names (excluding reserved ones)."""
        return tuple(name for name in self._table.column_names if name not in RESERVED)

    def __len__(self) -> int:
        return int(self._table.num_rows)

    def __repr__(self) -> str:
        return f"<zcollection.indexing.Indexer rows={len(self)} keys={list(self.key_columns)}>"

    # -- lookups ------------------------------------------------------------------------
    def lookup(self, **predicates: Any) -> dict[str, list[tuple[int, int]]]:
        """Return ``{partition: [(start, stop), ...]}`` for the rows matching all predicates.

        A scalar predicate is equality; a list, tuple, set or ndarray is membership (IN).
        Without predicates every row matches. Ranges of one partition are sorted, and
        overlapping or touching ones merged; partitions without a match are absent.

        Raises:
            KeyError: If a predicate names a column that is not a key column.
            TypeError: If a value cannot be compared with its column's type.
        """
        keys = self.key_columns
        unknown = [name for name in predicates if name not in keys]
        if unknown:
            raise KeyError(f"unknown index column(s) {unknown}; the key columns are {list(keys)}")
        mask = row_mask(self._table, predicates)
        rows = self._table if mask is None else self._table.filter(mask)
        return merged_ranges(rows)

    # -- Parquet ------------------------------------------------------------------------
    def to_parquet_bytes(self) -> bytes:
        """Return the index as the bytes of a Parquet file."""
        sink = pa.BufferOutputStream()
        pq.write_table(self._table, sink)
        return bytes(sink.getvalue().to_pybytes())

    @classmethod
    def from_parquet_bytes(cls, data: bytes) -> Indexer:
        """Load an index from the bytes of a Parquet file."""
        return cls(pq.read_table(pa.BufferReader(data)))

    async def write_async(
        self, path: str | os.PathLike[str], *, storage_options: dict[str, Any] | None = None
    ) -> None:
        """Async variant of :meth:`write`."""
        location = locate(path)
        if location.local is not None:
            target = Path(location.local).expanduser()
            target.parent.mkdir(parents=True, exist_ok=True)
            pq.write_table(self._table, str(target))
            return
        await write_bytes_async(location, self.to_parquet_bytes(), storage_options)

    def write(
        self, path: str | os.PathLike[str], *, storage_options: dict[str, Any] | None = None
    ) -> None:
        """Write the index to ``path`` as a Parquet file.

        ``path`` is a local path (or ``file://`` URL), written directly with pyarrow, or a
        file inside a store URL (``memory://name/index.parquet``, ``s3://bucket/a/b.parquet``)
        written through ``zcollection.open_store`` on its parent.
        """
        run_sync(self.write_async(path, storage_options=storage_options))

    @classmethod
    async def read_async(
        cls, path: str | os.PathLike[str], *, storage_options: dict[str, Any] | None = None
    ) -> Indexer:
        """Async variant of :meth:`read`."""
        location = locate(path)
        if location.local is not None:
            return cls(pq.read_table(str(Path(location.local).expanduser())))
        return cls.from_parquet_bytes(await read_bytes_async(location, storage_options))

    @classmethod
    def read(
        cls, path: str | os.PathLike[str], *, storage_options: dict[str, Any] | None = None
    ) -> Indexer:
        """Load an indexer from a Parquet file at ``path`` (a local path or a store URL).

        Raises:
            FileNotFoundError: If there is no file at ``path``.
            ValueError: If the file is not an index (it lacks a reserved column).
        """
        return run_sync(cls.read_async(path, storage_options=storage_options))


__all__ = ["Indexer"]
