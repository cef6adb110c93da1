"""Rows of a streamed insert, held per partition until the stream has moved past them."""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import numpy

from ..config import STREAM_BUFFER_BYTES
from ..data import Dataset
from ..data.ops import concat
from ..errors import PartitionError, StoreError
from ..partitioning import Partitioning, partition_rows

Key = tuple[tuple[str, int], ...]


__all__ = ["STREAM_BUFFER_BYTES", "PartitionBuffer", "PendingPartition", "StagedPartition"]


@dataclass
class PendingPartition:
    """The rows received so far for one partition: pieces of the incoming datasets."""

    path: str
    key: Key
    pieces: list[tuple[Dataset, Any]] = field(default_factory=list)
    nbytes: int = 0

    def take_rows(self, dim: str) -> Dataset:
        """Return the partition's rows in arrival order, releasing the pieces.

        Several in-memory pieces are copied one after the other into one new array per
        variable, each piece let go once copied: the pages of the result are touched as
        those of the pieces are freed, so the partition is not held twice.
        """
        pieces, self.pieces = self.pieces, []
        if len(pieces) == 1:
            dataset, index = pieces[0]
            return dataset.isel(dim, index)
        first = pieces[0][0].isel(dim, pieces[0][1])
        if first.is_lazy:
            return concat([dataset.isel(dim, index) for dataset, index in pieces], dim)
        total = sum(_count(index) for _, index in pieces)
        outputs: dict[str, numpy.ndarray[Any, Any]] = {}
        for name, variable in first.all_variables().items():
            if dim in variable.dimensions:
                shape = list(variable.shape)
                shape[variable.dimensions.index(dim)] = total
                outputs[name] = numpy.empty(shape, dtype=variable.to_numpy().dtype)
        offset = 0
        while pieces:
            dataset, index = pieces.pop(0)
            count = _count(index)
            for name, variable in dataset.isel(dim, index).all_variables().items():
                if name in outputs:
                    axis = variable.dimensions.index(dim)
                    target = (slice(None),) * axis + (slice(offset, offset + count),)
                    outputs[name][target] = variable.to_numpy()
            offset += count
            del dataset
        return first.replace(
            {
                name: variable.with_data(outputs[name]) if name in outputs else variable
                for name, variable in first.all_variables().items()
            }
        )


class PartitionBuffer:
    """Splits incoming datasets by partition and says which partitions are complete.

    A partition is complete once a dataset arrives without rows for it (the stream has moved
    past it). Complete partitions are handed out, oldest first, while the rows held exceed
    ``limit`` bytes (``None``: never before :meth:`drain`), so a stream sorted along the
    partitioning holds about ``max(limit, one partition)``; the writer stops reading while
    it writes and more than ``limit`` bytes are held (:meth:`over_limit`). Rows arriving
    for a partition already handed out are refused: its content would depend on how the
    stream was cut.
    """

    def __init__(self, partitioning: Partitioning, axis: str, limit: int | None) -> None:
        self._partitioning = partitioning
        self._axis = axis
        self._limit = limit
        self._pending: dict[str, PendingPartition] = {}
        self._flushed: set[str] = set()
        self._latest: set[str] = set()
        self.nbytes = 0

    def add(self, dataset: Dataset) -> list[PendingPartition]:
        """Hold the rows of ``dataset``; return the partitions it opens (seen for the first time).

        Raises:
            PartitionError: If the key variables are invalid, or rows arrive for a partition
                already handed out.
        """
        groups = partition_rows(self._partitioning, dataset)
        dim = self._partitioning.dimension
        rows = _rows_along(dataset, dim)
        per_row = dataset.nbytes / rows if rows else 0.0
        opened: list[PendingPartition] = []
        latest: set[str] = set()
        for key, index in groups:
            path = self._partitioning.encode(key)
            if path in self._flushed:
                raise PartitionError(
                    f"rows of partition {path!r} arrived after it was written (a partition "
                    f"is written once the stream has moved past it and {self._limit} bytes "
                    f"of rows are held); send the rows of each partition together, for "
                    f"example sorted along {self._axis!r}"
                )
            pending = self._pending.get(path)
            if pending is None:
                pending = self._pending[path] = PendingPartition(path, key)
                opened.append(pending)
            count = _count(index)
            size = int(per_row * count)
            pending.pieces.append((dataset, index))
            pending.nbytes += size
            self.nbytes += size
            latest.add(path)
        self._latest = latest
        return opened

    def complete(self) -> list[PendingPartition]:
        """Hand out the complete partitions to write now, oldest first (maybe none)."""
        if self._limit is None:
            return []
        ready = []
        for path in list(self._pending):
            if self.nbytes <= self._limit:
                break
            if path in self._latest:
                continue
            ready.append(self._take(path))
        return ready

    def over_limit(self) -> bool:
        """Whether more rows than the limit are held."""
        return self._limit is not None and self.nbytes > self._limit

    def drain(self) -> list[PendingPartition]:
        """Hand out every partition still held (the stream has ended)."""
        return [self._take(path) for path in list(self._pending)]

    def _take(self, path: str) -> PendingPartition:
        pending = self._pending.pop(path)
        self._flushed.add(path)
        self.nbytes -= pending.nbytes
        return pending


def _rows_along(dataset: Dataset, dim: str) -> int:
    for variable in dataset.all_variables().values():
        if dim in variable.dimensions:
            return int(variable.shape[variable.dimensions.index(dim)])
    return 0


def _count(index: Any) -> int:
    if isinstance(index, slice):
        return int(index.stop - index.start)
    return int(numpy.asarray(index).size)


@dataclass
class StagedPartition:
    """A partition written aside (or in place, when ``swap`` is None) awaiting its commit."""

    path: str
    swap: Callable[[], Awaitable[None]] | None = None
    cleanup: Callable[[], Awaitable[None]] | None = None

    async def commit(self) -> None:
        """Put the partition in place (the staged copy is removed if that fails).

        Raises:
            StoreError: If the store refuses the swap.
        """
        if self.swap is None:
            return
        try:
            await self.swap()
        except BaseException as exc:
            await self.discard()
            if isinstance(exc, OSError):
                raise StoreError(f"cannot replace partition {self.path!r}: {exc}") from exc
            raise

    async def discard(self) -> None:
        """Remove the staged copy; the stored partition stays as it was."""
        if self.cleanup is not None:
            with contextlib.suppress(Exception):
                await self.cleanup()
