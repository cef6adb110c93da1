"""Vectorised lookups: predicates to a row mask, matching rows to merged row ranges."""

from __future__ import annotations

import contextlib
from typing import Any

import numpy
import pyarrow as pa
import pyarrow.compute as pc

from .columns import PARTITION, START, STOP

_COLLECTIONS = (list, tuple, set, frozenset, numpy.ndarray)


def value_set(value: Any, kind: pa.DataType, column: str) -> pa.Array:
    """Return the values a predicate accepts, as an Arrow array of the column's type.

    A list, tuple, set or ndarray is a set of accepted values; anything else one value.

    Raises:
        TypeError: If the values cannot be converted to the column's type.
    """
    if isinstance(value, set | frozenset):
        value = list(value)
    if isinstance(value, numpy.ndarray):
        items: list[Any] | numpy.ndarray[Any, Any] = value.ravel()
    elif isinstance(value, list | tuple):
        items = list(value)
    else:
        items = [value]
    if pa.types.is_dictionary(kind):
        kind = kind.value_type
    if (
        not isinstance(items, numpy.ndarray)
        and items
        and all(isinstance(item, numpy.generic) for item in items)
    ):
        # pyarrow converts numpy arrays better than lists of numpy scalars
        items = numpy.asarray(items)
    errors = (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError, TypeError)
    if not isinstance(items, numpy.ndarray):
        with contextlib.suppress(*errors):
            return pa.array(items, type=kind)
    try:
        return pa.array(items).cast(kind)
    except errors as exc:
        raise TypeError(
            f"lookup value {value!r} does not fit index column {column!r} of type {kind}"
        ) from exc


def row_mask(table: pa.Table, predicates: dict[str, Any]) -> pa.ChunkedArray | None:
    """Return the AND of the predicates as a boolean mask (None when there are none)."""
    mask = None
    for name, value in predicates.items():
        column = table[name]
        accepted = value_set(value, column.type, name)
        matches = pc.is_in(column, value_set=accepted)
        mask = matches if mask is None else pc.and_(mask, matches)
    return mask


def merged_ranges(rows: pa.Table) -> dict[str, list[tuple[int, int]]]:
    """Return ``{partition: [(start, stop), ...]}`` of ``rows``.

    Ranges are sorted by start; overlapping or touching ranges of one partition are merged
    and empty ones dropped. Partitions come in the order they first appear in ``rows`` (the
    collection's key order for an index built by ``Indexer.build``).
    """
    starts = rows[START].to_numpy()
    stops = rows[STOP].to_numpy()
    keep = stops > starts
    if not keep.any():
        return {}
    encoded = pc.dictionary_encode(rows[PARTITION]).combine_chunks()
    codes = encoded.indices.to_numpy(zero_copy_only=False)[keep]
    names = encoded.dictionary.to_pylist()
    starts, stops = starts[keep], stops[keep]
    order = numpy.lexsort((stops, starts, codes))
    codes, starts, stops = codes[order], starts[order], stops[order]
    bounds = numpy.flatnonzero(numpy.diff(codes)) + 1
    result: dict[str, list[tuple[int, int]]] = {}
    for group, begin, end in zip(
        numpy.split(codes, bounds),
        numpy.split(starts, bounds),
        numpy.split(stops, bounds),
        strict=True,
    ):
        reach = numpy.maximum.accumulate(end)
        first = numpy.flatnonzero(numpy.concatenate(([True], begin[1:] > reach[:-1])))
        merged_stop = numpy.maximum.reduceat(end, first)
        result[names[int(group[0])]] = list(
            zip(begin[first].tolist(), merged_stop.tolist(), strict=True)
        )
    return result


__all__ = ["merged_ranges", "row_mask", "value_set"]
