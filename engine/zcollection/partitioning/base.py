"""The Partitioning contract, the strategy registry and row-grouping helpers."""

from __future__ import annotations

import abc
import json
import re
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any, ClassVar

import numpy

from ..errors import PartitionError

if TYPE_CHECKING:
    from ..data import Dataset
    from ..schema import DatasetSchema

#: A partition key: ``(("year", 2024), ("month", 3))``.
type PartitionKey = tuple[tuple[str, int], ...]
#: Rows of one partition: a slice for one contiguous run, else an int64 index array.
type Rows = numpy.ndarray[Any, numpy.dtype[numpy.int64]] | slice
#: Per-row code arrays whose lexicographic order and equality match the partition keys.
type Codes = tuple[numpy.ndarray[Any, Any], ...]

_COMPONENT = re.compile(r"^([^=/]+)=(-?[0-9]+)$")


class Partitioning(abc.ABC):
    """Maps dataset rows along a partitioning dimension to partition keys."""

    #: The registry name of the strategy (``"date"``, ``"sequence"``, ...).
    name: ClassVar[str]
    #: numpy dtype kinds accepted for the key variables.
    dtype_kinds: ClassVar[str]
    #: Zero-padding width of each path component (0: no padding), keyed by component.
    _widths: ClassVar[dict[str, int]] = {}

    @property
    @abc.abstractmethod
    def axis(self) -> tuple[str, ...]:
        """Return the partition-key component names, in path order."""

    @property
    @abc.abstractmethod
    def dimension(self) -> str:
        """Return the dataset dimension this partitioning splits."""

    @property
    @abc.abstractmethod
    def variables(self) -> tuple[str, ...]:
        """Return the names of the (root, 1-D) variables the key is derived from."""

    @abc.abstractmethod
    def row_codes(self, dataset: Dataset) -> Codes:
        """Return per-row code arrays; equal codes mean equal keys, code order is key order.

        Raises:
            PartitionError: If the key variables are missing, malformed or invalid.
        """

    @abc.abstractmethod
    def keys_at(self, codes: Codes) -> list[PartitionKey]:
        """Return the keys of the rows whose codes are given (one entry per row)."""

    @abc.abstractmethod
    def to_json(self) -> dict[str, Any]:
        """Return a JSON-serializable description of the partitioning."""

    @classmethod
    def from_json(cls, payload: dict[str, Any]) -> Partitioning:
        """Rebuild a partitioning from its JSON form (dispatching on ``payload["name"]``)."""
        return from_json(payload)

    # -- keys and paths ---------------------------------------------------------------------
    def check_key(self, key: PartitionKey) -> tuple[int, ...]:
        """Return the values of ``key`` after checking its component names and types.

        Raises:
            PartitionError: If the key does not match this partitioning's axis.
        """
        try:
            names = tuple(name for name, _ in key)
            values = tuple(value for _, value in key)
        except (TypeError, ValueError):
            raise PartitionError(f"malformed partition key {key!r}") from None
        if names != self.axis:
            raise PartitionError(f"partition key {key!r} does not match the axis {self.axis}")
        for value in values:
            if isinstance(value, bool) or not isinstance(value, int | numpy.integer):
                raise PartitionError(f"partition key {key!r} has a non-integer value")
        result = tuple(int(value) for value in values)
        self.check_values(result)
        return result

    def check_values(self, values: tuple[int, ...]) -> None:
        """Raise PartitionError if ``values`` cannot be a key (hook for subclasses)."""
        del values

    def make_key(self, values: Iterable[int]) -> PartitionKey:
        """Return the key made of ``values``, one per axis component."""
        return tuple(zip(self.axis, (int(v) for v in values), strict=True))

    def encode(self, key: PartitionKey) -> str:
        """Encode a key as a relative storage path (``year=2024/month=03``).

        Raises:
            PartitionError: If the key does not match this partitioning.
        """
        values = self.check_key(key)
        return "/".join(
            f"{name}={value:0{self._widths.get(name, 0)}d}"
            for name, value in zip(self.axis, values, strict=True)
        )

    def decode(self, path: str) -> PartitionKey:
        """Decode a relative storage path into a key.

        Raises:
            PartitionError: If the path is not the canonical path of a valid key.
        """
        if not isinstance(path, str):
            raise PartitionError(f"a partition path must be a string, not {type(path).__name__}")
        parts = path.strip("/").split("/")
        if len(parts) != len(self.axis):
            raise PartitionError(
                f"partition path {path!r} must have {len(self.axis)} component(s): "
                + "/".join(f"{name}=..." for name in self.axis)
            )
        values: list[int] = []
        for part, name in zip(parts, self.axis, strict=True):
            match = _COMPONENT.match(part)
            if match is None or match.group(1) != name:
                raise PartitionError(
                    f"partition path {path!r}: expected {name}=<int>, got {part!r}"
                )
            values.append(int(match.group(2)))
        key = self.make_key(values)
        if self.encode(key) != path.strip("/"):
            raise PartitionError(f"partition path {path!r} is not canonical: {self.encode(key)!r}")
        return key

    # -- splitting --------------------------------------------------------------------------
    def split(self, dataset: Dataset) -> Iterator[tuple[PartitionKey, slice]]:
        """Yield ``(key, slice)`` for each contiguous run of equal keys, in row order.

        Raises:
            PartitionError: If the key variables are missing, malformed or invalid.
        """
        codes = self.row_codes(dataset)
        starts, stops = _runs(codes)
        keys = self.keys_at(tuple(code[starts] for code in codes))
        for key, start, stop in zip(keys, starts.tolist(), stops.tolist(), strict=True):
            yield key, slice(start, stop)

    def key_variables(self, dataset: Dataset) -> list[numpy.ndarray[Any, Any]]:
        """Return the 1-D numpy arrays of the key variables.

        Raises:
            PartitionError: If a variable is missing, not 1-D along the dimension, of the
                wrong dtype kind, or if the arrays differ in length.
        """
        arrays = []
        for name in self.variables:
            try:
                variable = dataset.get_variable(name)
            except KeyError:
                raise PartitionError(f"partitioning variable {name!r} is missing") from None
            if variable.dimensions != (self.dimension,):
                raise PartitionError(
                    f"partitioning variable {name!r} must be 1-D along {self.dimension!r}, "
                    f"not {variable.dimensions}"
                )
            array = variable.to_numpy()
            if array.ndim != 1 or array.dtype.kind not in self.dtype_kinds:
                raise PartitionError(
                    f"partitioning variable {name!r} has dtype {array.dtype} and "
                    f"{array.ndim} dimension(s); {self.name!r} needs 1-D {self._kind_names()}"
                )
            arrays.append(array)
        if len({len(a) for a in arrays}) > 1:
            raise PartitionError("partitioning variables differ in length")
        return arrays

    def _kind_names(self) -> str:
        return "datetime64" if self.dtype_kinds == "M" else "integers"

    # -- identity ---------------------------------------------------------------------------
    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Partitioning):
            return NotImplemented
        return type(self) is type(other) and self.to_json() == other.to_json()

    def __hash__(self) -> int:
        return hash(json.dumps(self.to_json(), sort_keys=True))

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.to_json().items() if k != "name")
        return f"{type(self).__name__}({args})"


def _runs(codes: Codes) -> tuple[numpy.ndarray[Any, Any], numpy.ndarray[Any, Any]]:
    """Return the start and stop rows of each run of equal codes."""
    size = len(codes[0]) if codes else 0
    if size == 0:
        empty = numpy.zeros(0, dtype=numpy.int64)
        return empty, empty
    change = numpy.zeros(size - 1, dtype=bool)
    for code in codes:
        change |= code[1:] != code[:-1]
    starts = numpy.concatenate(([0], numpy.flatnonzero(change) + 1)).astype(numpy.int64)
    stops = numpy.append(starts[1:], size).astype(numpy.int64)
    return starts, stops


def partition_rows(partitioning: Partitioning, dataset: Dataset) -> list[tuple[PartitionKey, Rows]]:
    """Group every row of ``dataset`` by partition key, in key order.

    Each entry holds the rows of one key in row order: a slice when they form one contiguous
    run, else an int64 index array (rows of one key may arrive non-contiguously).

    Raises:
        PartitionError: If the key variables are missing, malformed or invalid.
    """
    codes = partitioning.row_codes(dataset)
    starts, stops = _runs(codes)
    if len(starts) == 0:
        return []
    run_codes = tuple(code[starts] for code in codes)
    # Sort the runs by key (stable, so equal keys keep their row order), then number groups.
    order = numpy.lexsort(run_codes[::-1])
    same = numpy.ones(len(order) - 1, dtype=bool)
    for code in run_codes:
        ordered = code[order]
        same &= ordered[1:] == ordered[:-1]
    new_group = numpy.concatenate(([True], ~same))
    group_of_sorted = numpy.cumsum(new_group) - 1
    run_group = numpy.empty(len(order), dtype=numpy.int64)
    run_group[order] = group_of_sorted
    first_runs = order[new_group]
    runs_per_group = numpy.bincount(run_group)
    keys = partitioning.keys_at(tuple(code[first_runs] for code in run_codes))
    result: list[tuple[PartitionKey, Rows]] = []
    if bool((runs_per_group == 1).all()):
        for key, run in zip(keys, first_runs.tolist(), strict=True):
            result.append((key, slice(int(starts[run]), int(stops[run]))))
        return result
    row_group = numpy.repeat(run_group, stops - starts)
    row_order = numpy.argsort(row_group, kind="stable").astype(numpy.int64)
    bounds = numpy.concatenate(([0], numpy.cumsum(numpy.bincount(row_group))))
    for group, (key, run) in enumerate(zip(keys, first_runs.tolist(), strict=True)):
        if runs_per_group[group] == 1:
            result.append((key, slice(int(starts[run]), int(stops[run]))))
        else:
            result.append((key, row_order[bounds[group] : bounds[group + 1]]))
    return result


_DIGITS_TO_ZERO = str.maketrans("123456789", "000000000")


def sort_paths(partitioning: Partitioning, paths: Iterable[str]) -> list[str]:
    """Return ``paths`` sorted by decoded key values (``num=2`` before ``num=10``).

    When every path has the shape of the first (the same components and separators at the
    same places, digit fields of the same widths, no sign, no digit in component names: a
    catalog of date partitions), string order is key order: only the first path is decoded
    in full, which checks that shape, so sorting 100,000 paths takes milliseconds. The values
    of the others are then not range-checked one by one (``month=13`` is not caught here).

    Raises:
        PartitionError: If a path cannot be decoded.
    """
    paths = list(paths)
    if len(paths) > 1 and not any(c.isdigit() for name in partitioning.axis for c in name):
        ordered = sorted(paths)
        shape = ordered[0].translate(_DIGITS_TO_ZERO)
        if "-" not in shape and "\n".join(ordered).translate(_DIGITS_TO_ZERO) == "\n".join(
            [shape] * len(ordered)
        ):
            partitioning.decode(ordered[0])
            return ordered
    decoded = [(tuple(v for _, v in partitioning.decode(p)), p) for p in paths]
    decoded.sort(key=lambda item: item[0])
    return [path for _, path in decoded]


def check_schema(partitioning: Partitioning, schema: DatasetSchema) -> None:
    """Check that ``schema`` holds the key variables of ``partitioning``.

    Raises:
        PartitionError: If a key variable is missing from the root group, is not 1-D along
            the partitioning dimension, or has the wrong dtype kind.
    """
    for name in partitioning.variables:
        variable = schema.variables.get(name)
        if variable is None:
            raise PartitionError(
                f"partitioning variable {name!r} is not a variable of the schema's root group"
            )
        if variable.dimensions != (partitioning.dimension,):
            raise PartitionError(
                f"partitioning variable {name!r} must be 1-D along "
                f"{partitioning.dimension!r}, not {variable.dimensions}"
            )
        if variable.dtype.kind not in partitioning.dtype_kinds:
            raise PartitionError(
                f"partitioning variable {name!r} has dtype {variable.dtype}; "
                f"{partitioning.name!r} partitioning needs {partitioning._kind_names()}"
            )


# -- registry -------------------------------------------------------------------------------
_REGISTRY: dict[str, type[Partitioning]] = {}


def register[P: type[Partitioning]](cls: P) -> P:
    """Register a Partitioning class under its ``name`` (usable as a decorator).

    Raises:
        PartitionError: If another class is already registered under that name.
    """
    name = getattr(cls, "name", None)
    if not isinstance(name, str) or not name:
        raise PartitionError(f"{cls.__name__} has no registry name")
    known = _REGISTRY.get(name)
    if known is not None and known is not cls:
        raise PartitionError(f"partitioning {name!r} is already registered by {known.__name__}")
    _REGISTRY[name] = cls
    return cls


def registered() -> dict[str, type[Partitioning]]:
    """Return a copy of the registry (name -> class)."""
    return dict(_REGISTRY)


def from_json(payload: dict[str, Any]) -> Partitioning:
    """Rebuild a partitioning from its JSON form, dispatching on ``payload["name"]``.

    Raises:
        PartitionError: If the name is unknown or the payload is invalid.
    """
    if not isinstance(payload, dict):
        raise PartitionError("a partitioning must be a JSON object")
    name = payload.get("name")
    cls = _REGISTRY.get(name) if isinstance(name, str) else None
    if cls is None:
        raise PartitionError(
            f"unknown partitioning {name!r}; known: {', '.join(sorted(_REGISTRY))}"
        )
    try:
        return cls.from_json(payload)
    except PartitionError:
        raise
    except (KeyError, TypeError, ValueError) as exc:
        raise PartitionError(f"invalid {name!r} partitioning JSON: {exc}") from exc
