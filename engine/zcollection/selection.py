"""Row selection inside partitions: keep rows whose axis value lies within bounds."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy

from .errors import SchemaError


@dataclass(frozen=True)
class RowSelection:
    """Rows kept by a query: axis-variable values between ``lower`` and ``upper``.

    A bound of None is open. Bounds are converted to the axis variable's dtype, so strings
    such as ``"2024-01-15"`` work for datetime axes.
    """

    lower: Any = None
    upper: Any = None
    lower_inclusive: bool = True
    upper_inclusive: bool = False

    def typed(self, dtype: numpy.dtype[Any]) -> RowSelection:
        """Return this selection with bounds converted to ``dtype``."""

        def convert(value: Any) -> Any:
            if value is None:
                return None
            try:
                if dtype.kind == "M" and isinstance(value, str):
                    return numpy.datetime64(value).astype(dtype)
                if dtype.kind == "m" and isinstance(value, str):
                    count, unit = value.split()
                    return numpy.asarray(int(count)).astype(f"m8[{unit}]").astype(dtype)[()]
                return numpy.asarray(value).astype(dtype)[()]
            except (ValueError, TypeError, IndexError) as exc:
                raise SchemaError(
                    f"row bound {value!r} does not fit the axis dtype {dtype}"
                ) from exc

        return RowSelection(
            convert(self.lower), convert(self.upper), self.lower_inclusive, self.upper_inclusive
        )

    def mask(self, values: numpy.ndarray[Any, Any]) -> numpy.ndarray[Any, Any]:
        """Return the boolean mask of the rows kept."""
        keep = numpy.ones(values.shape, dtype=bool)
        if self.lower is not None:
            keep &= values >= self.lower if self.lower_inclusive else values > self.lower
        if self.upper is not None:
            keep &= values <= self.upper if self.upper_inclusive else values < self.upper
        return keep

    @property
    def is_open(self) -> bool:
        """Return whether the selection keeps every row."""
        return self.lower is None and self.upper is None


def rows_of(mask: numpy.ndarray[Any, Any]) -> slice | numpy.ndarray[Any, Any]:
    """Return a slice when the kept rows are contiguous, else their indices."""
    indices = numpy.flatnonzero(mask)
    if indices.size == 0:
        return slice(0, 0)
    if indices[-1] - indices[0] + 1 == indices.size:
        return slice(int(indices[0]), int(indices[-1]) + 1)
    return indices
