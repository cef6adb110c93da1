"""Partitioning by a datetime64 variable truncated to a resolution."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

import numpy

from ..errors import PartitionError
from .base import Codes, Partitioning, PartitionKey, register

if TYPE_CHECKING:
    from ..data import Dataset

#: Key components, from the coarsest; a resolution keeps a prefix of them.
_COMPONENTS = ("year", "month", "day", "hour", "minute", "second")
_RESOLUTIONS = ("Y", "M", "D", "h", "m", "s")
#: Inclusive bounds of every component but year (day is also checked against the month).
_BOUNDS = {"month": (1, 12), "day": (1, 31), "hour": (0, 23), "minute": (0, 59), "second": (0, 59)}


def _days_in_month(year: int, month: int) -> int:
    if month == 2:
        return 29 if year % 4 == 0 and (year % 100 != 0 or year % 400 == 0) else 28
    return 30 if month in (4, 6, 9, 11) else 31


def _one_variable(variables: tuple[str, ...] | list[str] | str) -> str:
    if isinstance(variables, str):
        return variables
    names = tuple(variables)
    if len(names) != 1 or not isinstance(names[0], str):
        raise PartitionError(f"Date partitions by exactly one variable, got {variables!r}")
    return names[0]


@register
class Date(Partitioning):
    """Partition by truncating a 1-D datetime64 variable to ``resolution``.

    Component names follow the layout ``year=2024/month=03/day=01``.
    """

    name = "date"
    dtype_kinds = "M"
    _widths: ClassVar[dict[str, int]] = {
        "year": 4,
        "month": 2,
        "day": 2,
        "hour": 2,
        "minute": 2,
        "second": 2,
    }

    def __init__(
        self,
        variables: tuple[str, ...] | str,
        *,
        resolution: str,
        dimension: str | None = None,
    ) -> None:
        variable = _one_variable(variables)
        if not variable or "/" in variable:
            raise PartitionError(f"invalid partitioning variable name {variable!r}")
        if resolution not in _RESOLUTIONS:
            raise PartitionError(
                f"invalid Date resolution {resolution!r}; use one of {', '.join(_RESOLUTIONS)}"
            )
        if dimension is not None and (not isinstance(dimension, str) or not dimension):
            raise PartitionError(f"invalid partitioning dimension {dimension!r}")
        self._variable = variable
        self._resolution = resolution
        self._dimension = dimension or variable
        self._axis = _COMPONENTS[: _RESOLUTIONS.index(resolution) + 1]

    @property
    def axis(self) -> tuple[str, ...]:
        """Return the partition-key component names (``year``, ``month``, ...)."""
        return self._axis

    @property
    def dimension(self) -> str:
        """Return the dimension this partitioning splits."""
        return self._dimension

    @property
    def variables(self) -> tuple[str, ...]:
        """Return the one datetime64 variable the key is derived from."""
        return (self._variable,)

    @property
    def variable(self) -> str:
        """Return the datetime64 variable the key is derived from."""
        return self._variable

    @property
    def resolution(self) -> str:
        """Return the resolution code (Y/M/D/h/m/s)."""
        return self._resolution

    def row_codes(self, dataset: Dataset) -> Codes:
        """Return the values truncated to the resolution, as int64 (one code per row)."""
        (values,) = self.key_variables(dataset)
        if bool(numpy.isnat(values).any()):
            raise PartitionError(f"variable {self._variable!r} holds NaT; cannot partition it")
        truncated = values.astype(f"datetime64[{self._resolution}]")
        return (truncated.view(numpy.int64),)

    def keys_at(self, codes: Codes) -> list[PartitionKey]:
        """Return the keys of truncated datetimes given as int64 codes."""
        (code,) = codes
        dates = code.astype(numpy.int64).view(f"datetime64[{self._resolution}]")
        parts = []
        for unit, coarse in zip(
            _RESOLUTIONS[: len(self._axis)], (None, *_RESOLUTIONS), strict=False
        ):
            value = dates.astype(f"datetime64[{unit}]")
            if coarse is None:
                parts.append(value.view(numpy.int64) + 1970)
            elif unit == "M":
                parts.append(value.view(numpy.int64) % 12 + 1)
            else:
                offset = (value - dates.astype(f"datetime64[{coarse}]")).astype(numpy.int64)
                parts.append(offset + 1 if unit == "D" else offset)
        columns = [part.tolist() for part in parts]
        return [tuple(zip(self._axis, row, strict=True)) for row in zip(*columns, strict=True)]

    def check_values(self, values: tuple[int, ...]) -> None:
        """Raise PartitionError if a component is out of range (e.g. ``month=13``)."""
        for name, value in zip(self._axis[1:], values[1:], strict=False):
            low, high = _BOUNDS[name]
            if not low <= value <= high:
                raise PartitionError(f"{name}={value} is out of range [{low}, {high}]")
        if len(values) >= 3 and values[2] > _days_in_month(values[0], values[1]):
            raise PartitionError(
                f"day={values[2]} does not exist in {values[0]:04d}-{values[1]:02d}"
            )

    def to_json(self) -> dict[str, Any]:
        """Return the JSON form: ``{"name": "date", "variable", "resolution", "dimension"}``."""
        return {
            "name": self.name,
            "variable": self._variable,
            "resolution": self._resolution,
            "dimension": self._dimension,
        }

    @classmethod
    def from_json(cls, payload: dict[str, Any]) -> Date:
        """Rebuild a Date partitioning from its JSON form (``variable`` or ``variables``)."""
        if not isinstance(payload, dict) or payload.get("name", cls.name) != cls.name:
            raise PartitionError(f"not a {cls.name!r} partitioning: {payload!r}")
        variables = payload.get("variable", payload.get("variables"))
        if variables is None or "resolution" not in payload:
            raise PartitionError(
                f"a date partitioning needs a variable and a resolution: {payload!r}"
            )
        if not isinstance(variables, str | list | tuple):
            raise PartitionError(f"invalid date partitioning variable {variables!r}")
        return cls(
            variables if isinstance(variables, str) else tuple(variables),
            resolution=payload["resolution"],
            dimension=payload.get("dimension"),
        )
