"""Partitioning by the values of integer variables, exact or grouped into buckets."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy

from ..errors import PartitionError
from .base import Codes, Partitioning, PartitionKey, register

if TYPE_CHECKING:
    from ..data import Dataset


def _names(variables: tuple[str, ...] | list[str] | str) -> tuple[str, ...]:
    names = (variables,) if isinstance(variables, str) else tuple(variables)
    if not names:
        raise PartitionError("a sequence partitioning needs at least one variable")
    for name in names:
        if not isinstance(name, str) or not name or "/" in name or "=" in name:
            raise PartitionError(f"invalid partitioning variable name {name!r}")
    if len(set(names)) != len(names):
        raise PartitionError(f"partitioning variables repeat a name: {names}")
    return names


def _integer(value: Any, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | numpy.integer):
        raise PartitionError(f"{what} must be an integer, not {value!r}")
    return int(value)


def _check_payload(cls: type[Partitioning], payload: Any) -> list[str]:
    if not isinstance(payload, dict) or payload.get("name", cls.name) != cls.name:
        raise PartitionError(f"not a {cls.name!r} partitioning: {payload!r}")
    variables = payload.get("variables")
    if not isinstance(variables, list | tuple):
        raise PartitionError(f"a {cls.name!r} partitioning needs a list of variables")
    return list(variables)


@register
class Sequence(Partitioning):
    """Partition by the unique value tuples of one or more integer variables.

    Paths are ``cycle=31/pass=100`` (no padding; negative values allowed).
    """

    name = "sequence"
    dtype_kinds = "iu"

    def __init__(self, variables: tuple[str, ...] | str, *, dimension: str | None) -> None:
        self._variables = _names(variables)
        if dimension is not None and (not isinstance(dimension, str) or not dimension):
            raise PartitionError(f"invalid partitioning dimension {dimension!r}")
        self._dimension = dimension or self._variables[0]

    @property
    def axis(self) -> tuple[str, ...]:
        """Return the partition-key variable names."""
        return self._variables

    @property
    def dimension(self) -> str:
        """Return the dimension this partitioning splits."""
        return self._dimension

    @property
    def variables(self) -> tuple[str, ...]:
        """Return the integer variables the key is made of."""
        return self._variables

    def row_codes(self, dataset: Dataset) -> Codes:
        """Return the key variables' values, one array per variable."""
        return tuple(self.key_variables(dataset))

    def keys_at(self, codes: Codes) -> list[PartitionKey]:
        """Return the keys made of the given values."""
        columns = [code.tolist() for code in codes]
        return [tuple(zip(self._variables, row, strict=True)) for row in zip(*columns, strict=True)]

    def to_json(self) -> dict[str, Any]:
        """Return the JSON form: ``{"name": "sequence", "variables", "dimension"}``."""
        return {"name": self.name, "variables": list(self._variables), "dimension": self._dimension}

    @classmethod
    def from_json(cls, payload: dict[str, Any]) -> Sequence:
        """Rebuild a Sequence partitioning from its JSON form."""
        variables = _check_payload(cls, payload)
        return cls(tuple(variables), dimension=payload.get("dimension"))


@register
class GroupedSequence(Sequence):
    """Like Sequence, but the last variable is grouped into buckets of ``size``.

    The last variable maps to ``(value - start) // size * size + start``.
    """

    name = "grouped-sequence"

    def __init__(
        self,
        variables: tuple[str, ...] | str,
        *,
        dimension: str | None,
        size: int,
        start: int = 0,
    ) -> None:
        super().__init__(variables, dimension=dimension)
        self._size = _integer(size, "size")
        self._start = _integer(start, "start")
        if self._size < 2:
            raise PartitionError(f"size must be >= 2 (use Sequence otherwise), got {size}")

    @property
    def size(self) -> int:
        """Return the bucket size of the grouped variable."""
        return self._size

    @property
    def start(self) -> int:
        """Return the bucket origin of the grouped variable."""
        return self._start

    def row_codes(self, dataset: Dataset) -> Codes:
        """Return the key values, the last variable mapped to its bucket origin."""
        arrays = self.key_variables(dataset)
        last = arrays[-1]
        if (
            last.dtype == numpy.uint64
            and last.size
            and int(last.max()) > numpy.iinfo(numpy.int64).max
        ):
            raise PartitionError(f"variable {self._variables[-1]!r} exceeds the int64 range")
        values = last.astype(numpy.int64)
        arrays[-1] = (values - self._start) // self._size * self._size + self._start
        return tuple(arrays)

    def check_values(self, values: tuple[int, ...]) -> None:
        """Raise PartitionError if the grouped value is not a bucket origin."""
        if (values[-1] - self._start) % self._size:
            raise PartitionError(
                f"{self._variables[-1]}={values[-1]} is not a multiple of {self._size} "
                f"from {self._start}"
            )

    def to_json(self) -> dict[str, Any]:
        """Return the JSON form: sequence's plus ``size`` and ``start``."""
        return {**super().to_json(), "size": self._size, "start": self._start}

    @classmethod
    def from_json(cls, payload: dict[str, Any]) -> GroupedSequence:
        """Rebuild a GroupedSequence from its JSON form."""
        variables = _check_payload(cls, payload)
        if "size" not in payload:
            raise PartitionError("a grouped-sequence partitioning needs a size")
        return cls(
            tuple(variables),
            dimension=payload.get("dimension"),
            size=payload["size"],
            start=payload.get("start", 0),
        )
