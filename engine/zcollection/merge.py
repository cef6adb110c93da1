"""Merge strategies: how an inserted dataset combines with a partition already on disk.

A strategy is any callable matching :class:`MergeCallable`. The built-in ones are
:func:`replace`, :func:`concat`, :func:`time_series`, :func:`upsert` and the
tolerance-bound :func:`upsert_within`. They are addressable by name through
:data:`STRATEGIES` / :func:`resolve`, and the built-ins can travel over the wire as
JSON (:func:`to_json` / :func:`from_json`); custom callables never do.
"""

from __future__ import annotations

import dataclasses
import datetime
import numbers
from collections.abc import Mapping
from typing import Any, Protocol, cast, runtime_checkable

import numpy
from numpy.typing import NDArray

from .data import Dataset, Variable
from .data.ops import concat as _concat_datasets

__all__ = [
    "STRATEGIES",
    "MergeCallable",
    "UpsertWithin",
    "concat",
    "from_json",
    "replace",
    "resolve",
    "time_series",
    "to_json",
    "upsert",
    "upsert_within",
]


@runtime_checkable
class MergeCallable(Protocol):
    """Contract for a merge strategy.

    Called when the slice of an inserted dataset destined for a partition collides with
    that partition's existing data; returns the dataset that should be written.
    ``axis`` names the 1-D variable rows are compared on and ``partitioning_dim`` the
    dimension rows are sliced and concatenated along.
    """

    def __call__(
        self, existing: Dataset, inserted: Dataset, *, axis: str, partitioning_dim: str
    ) -> Dataset:
        """Merge ``inserted`` into ``existing`` and return the dataset to write."""
        ...


# -- helpers ----------------------------------------------------------------------------------


def _axis_values(dataset: Dataset, axis: str, partitioning_dim: str, side: str) -> NDArray[Any]:
    """Return the 1-D axis values of ``dataset``, validating the axis variable."""
    try:
        variable = dataset.get_variable(axis)
    except KeyError:
        raise ValueError(f"axis {axis!r} is not a variable of the {side} dataset") from None
    if variable.ndim != 1:
        raise ValueError(
            f"axis {axis!r} must be 1-D, but the {side} dataset's has dimensions "
            f"{variable.dimensions}"
        )
    if variable.dimensions[0] != partitioning_dim:
        raise ValueError(
            f"axis {axis!r} spans {variable.dimensions[0]!r}, not the partitioning "
            f"dimension {partitioning_dim!r}"
        )
    if variable.data is None:
        raise ValueError(f"axis {axis!r} of the {side} dataset has no data")
    return variable.to_numpy()


def _invalid(values: NDArray[Any]) -> NDArray[numpy.bool_]:
    """Return the mask of NaT/NaN entries (which never match anything)."""
    if values.dtype.kind in "mM":
        return numpy.isnat(values)
    if values.dtype.kind in "fc":
        return numpy.isnan(values)
    return numpy.zeros(values.shape, dtype=bool)


def _with_inserted_layout(merged: Dataset, inserted: Dataset, partitioning_dim: str) -> Dataset:
    """Rebuild ``merged`` on ``inserted``'s schema; non-partitioned variables from ``inserted``."""
    rows = merged.all_variables()
    variables: dict[str, Variable] = {}
    for name, variable in inserted.all_variables().items():
        if partitioning_dim in variable.dimensions:
            variables[name] = variable.with_data(rows[name].data)
        else:
            variables[name] = variable
    return inserted.replace(variables)


def _merge_sorted(
    existing: Dataset,
    keep: NDArray[numpy.bool_],
    inserted: Dataset,
    existing_axis: NDArray[Any],
    inserted_axis: NDArray[Any],
    partitioning_dim: str,
) -> Dataset:
    """Concatenate the kept existing rows with ``inserted`` and stably sort by axis."""
    if keep.all():
        kept, kept_axis = existing, existing_axis
    else:
        index = numpy.flatnonzero(keep)
        kept, kept_axis = existing.isel(partitioning_dim, index), existing_axis[index]
    merged = _concat_datasets([kept, inserted], partitioning_dim)
    order = numpy.argsort(numpy.concatenate([kept_axis, inserted_axis]), kind="stable")
    if order.size and not (order == numpy.arange(order.size)).all():
        merged = merged.isel(partitioning_dim, order)
    return _with_inserted_layout(merged, inserted, partitioning_dim)


def _check_tolerance(tolerance: Any) -> Any:
    """Validate and normalise a tolerance (None, a non-negative timedelta64 or a float)."""
    if tolerance is None:
        return None
    if isinstance(tolerance, datetime.timedelta):
        tolerance = numpy.timedelta64(tolerance)
    if isinstance(tolerance, numpy.timedelta64):
        if numpy.isnat(tolerance):
            raise ValueError("tolerance must not be NaT")
        if numpy.datetime_data(tolerance.dtype)[0] == "generic":
            raise ValueError("a timedelta64 tolerance needs a unit, e.g. timedelta64(500, 'ms')")
        if tolerance < numpy.timedelta64(0, "s"):
            raise ValueError(f"tolerance must be non-negative, got {tolerance!r}")
        return tolerance
    if isinstance(tolerance, bool | numpy.bool_) or not isinstance(tolerance, numbers.Real):
        raise TypeError(
            "tolerance must be None, a numpy.timedelta64 or a real number, "
            f"not {type(tolerance).__name__}"
        )
    value = float(tolerance)
    if not numpy.isfinite(value) or value < 0:
        raise ValueError(f"tolerance must be a finite non-negative number, got {tolerance!r}")
    return value


def _abs_diff_int(a: NDArray[Any], b: NDArray[Any]) -> NDArray[numpy.uint64]:
    """Return ``|a - b|`` for integer arrays without overflow, as uint64."""
    if a.dtype.kind == "u" and b.dtype.kind == "u":
        ua, ub = a.astype(numpy.uint64), b.astype(numpy.uint64)
    else:
        # Order-preserving map of int64 onto uint64: flip the sign bit.
        sign = numpy.uint64(1 << 63)
        ua = a.astype(numpy.int64).view(numpy.uint64) ^ sign
        ub = b.astype(numpy.int64).view(numpy.uint64) ^ sign
    return numpy.where(ua >= ub, ua - ub, ub - ua)


def _within(
    a: NDArray[Any], b: NDArray[Any], tolerance: Any, unit_dtype: numpy.dtype[Any] | None
) -> NDArray[numpy.bool_]:
    """Return ``|a - b| <= tolerance`` element-wise (inputs must hold no NaT/NaN)."""
    if unit_dtype is not None:  # datetime64 / timedelta64 axes
        unit, count = numpy.datetime_data(unit_dtype)
        step = numpy.timedelta64(count, cast(Any, unit))
        # Truncating a non-negative tolerance to the axis unit floors it: exact for integers.
        limit = int(tolerance // step)
        ai = a.astype(unit_dtype).view(numpy.int64)
        bi = b.astype(unit_dtype).view(numpy.int64)
        return _abs_diff_int(ai, bi) <= limit
    if a.dtype.kind in "iu" and b.dtype.kind in "iu":
        return _abs_diff_int(a, b) <= tolerance
    return numpy.abs(a.astype(numpy.float64) - b.astype(numpy.float64)) <= tolerance


def _matches(
    existing_axis: NDArray[Any], inserted_axis: NDArray[Any], tolerance: Any
) -> NDArray[numpy.bool_]:
    """Return, per existing row, whether some inserted axis value matches it."""
    valid = ~_invalid(existing_axis)
    if tolerance is None:
        return numpy.isin(existing_axis, inserted_axis) & valid
    kinds = existing_axis.dtype.kind + inserted_axis.dtype.kind
    if isinstance(tolerance, numpy.timedelta64):
        if kinds not in ("MM", "mm"):
            raise TypeError("a timedelta64 tolerance needs a datetime64 or timedelta64 axis")
        unit_dtype: numpy.dtype[Any] | None = numpy.result_type(
            existing_axis.dtype, inserted_axis.dtype
        )
    else:
        if not all(kind in "iuf" for kind in kinds):
            raise TypeError(
                f"a numeric tolerance needs a numeric axis, not {existing_axis.dtype} / "
                f"{inserted_axis.dtype}; use numpy.timedelta64 for datetime axes"
            )
        unit_dtype = None
    candidates = numpy.sort(inserted_axis[~_invalid(inserted_axis)], kind="stable")
    result = numpy.zeros(existing_axis.shape, dtype=bool)
    if candidates.size == 0:
        return result
    values = existing_axis[valid]
    # Nearest neighbour: the closest candidate is just before or at the insertion point.
    position = numpy.searchsorted(candidates, values)
    last = candidates.size - 1
    below = candidates[numpy.clip(position - 1, 0, last)]
    above = candidates[numpy.clip(position, 0, last)]
    result[valid] = _within(values, below, tolerance, unit_dtype) | _within(
        values, above, tolerance, unit_dtype
    )
    return result


# -- strategies -------------------------------------------------------------------------------


def replace(existing: Dataset, inserted: Dataset, *, axis: str, partitioning_dim: str) -> Dataset:
    """Drop ``existing`` entirely; return ``inserted`` unchanged.

    ``axis`` and ``partitioning_dim`` are unused (protocol compatibility).
    """
    del existing, axis, partitioning_dim
    return inserted


def concat(existing: Dataset, inserted: Dataset, *, axis: str, partitioning_dim: str) -> Dataset:
    """Append ``inserted`` after ``existing`` along ``partitioning_dim``.

    No deduplication or sorting; ``axis`` is unused. Variables that do not span
    ``partitioning_dim`` come from ``inserted``.

    Raises:
        ValueError: If the two datasets do not hold the same variables.
    """
    del axis
    merged = _concat_datasets([existing, inserted], partitioning_dim)
    return _with_inserted_layout(merged, inserted, partitioning_dim)


def time_series(
    existing: Dataset, inserted: Dataset, *, axis: str, partitioning_dim: str
) -> Dataset:
    """Drop the existing rows inside ``inserted``'s axis window, add ``inserted``, sort.

    Rows of ``existing`` whose ``axis`` value lies in ``[min, max]`` of ``inserted``'s
    (NaT/NaN ignored) are dropped; the rest are concatenated with ``inserted`` and the
    result is stably sorted by ``axis``. Returns ``existing`` when ``inserted`` has no
    rows and ``inserted`` when ``existing`` has none. Variables that do not span
    ``partitioning_dim`` come from ``inserted``.

    Raises:
        ValueError: If ``axis`` is not a 1-D variable along ``partitioning_dim`` on both sides.
    """
    existing_axis = _axis_values(existing, axis, partitioning_dim, "existing")
    inserted_axis = _axis_values(inserted, axis, partitioning_dim, "inserted")
    if inserted_axis.size == 0:
        return existing
    if existing_axis.size == 0:
        return inserted
    window = inserted_axis[~_invalid(inserted_axis)]
    if window.size:
        inside = (existing_axis >= window.min()) & (existing_axis <= window.max())
    else:
        inside = numpy.zeros(existing_axis.shape, dtype=bool)
    return _merge_sorted(
        existing, ~inside, inserted, existing_axis, inserted_axis, partitioning_dim
    )


def upsert(
    existing: Dataset,
    inserted: Dataset,
    *,
    axis: str,
    partitioning_dim: str,
    tolerance: Any = None,
) -> Dataset:
    """Row-wise replace-or-add by axis proximity.

    An existing row is kept iff its ``axis`` value matches no value of ``inserted``'s;
    the kept rows are concatenated with ``inserted`` and stably sorted by ``axis``.
    With ``tolerance=None`` a match is exact equality; otherwise a row matches when
    ``|value - nearest inserted value| <= tolerance`` (a ``numpy.timedelta64`` for
    datetime axes, a float for numeric ones). NaT/NaN never match. Returns ``existing``
    when ``inserted`` has no rows and ``inserted`` when ``existing`` has none. Variables
    that do not span ``partitioning_dim`` come from ``inserted``.

    Raises:
        ValueError: If ``axis`` is not a 1-D variable along ``partitioning_dim`` on both
            sides, or if ``tolerance`` is negative, NaN or NaT.
        TypeError: If ``tolerance`` does not suit the axis dtype.
    """
    tolerance = _check_tolerance(tolerance)
    existing_axis = _axis_values(existing, axis, partitioning_dim, "existing")
    inserted_axis = _axis_values(inserted, axis, partitioning_dim, "inserted")
    if inserted_axis.size == 0:
        return existing
    if existing_axis.size == 0:
        return inserted
    matched = _matches(existing_axis, inserted_axis, tolerance)
    return _merge_sorted(
        existing, ~matched, inserted, existing_axis, inserted_axis, partitioning_dim
    )


@dataclasses.dataclass(frozen=True, slots=True)
class UpsertWithin:
    """An :func:`upsert` strategy bound to ``tolerance`` (see :func:`upsert_within`)."""

    tolerance: Any = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "tolerance", _check_tolerance(self.tolerance))

    def __call__(
        self, existing: Dataset, inserted: Dataset, *, axis: str, partitioning_dim: str
    ) -> Dataset:
        """Run :func:`upsert` with the bound tolerance."""
        return upsert(
            existing,
            inserted,
            axis=axis,
            partitioning_dim=partitioning_dim,
            tolerance=self.tolerance,
        )


def upsert_within(tolerance: Any) -> MergeCallable:
    """Return an :func:`upsert` strategy bound to ``tolerance``.

    ``tolerance`` is None (exact equality), a ``numpy.timedelta64`` (datetime axes) or a
    float (numeric axes). The result is an :class:`UpsertWithin`, serialisable with
    :func:`to_json`.

    Raises:
        ValueError: If ``tolerance`` is negative, NaN, NaT or a unit-less timedelta64.
        TypeError: If ``tolerance`` is of another type.
    """
    return UpsertWithin(tolerance)


# -- registry and wire form ------------------------------------------------------------------

#: The strategies addressable by name.
STRATEGIES: dict[str, MergeCallable] = {
    "replace": replace,
    "concat": concat,
    "time_series": time_series,
    "upsert": upsert,
}


def resolve(merge: str | MergeCallable | None) -> MergeCallable | None:
    """Return the strategy for a name, a callable (returned as-is) or None.

    Raises:
        KeyError: If ``merge`` is a string naming no strategy (the message lists the
            known names).
        TypeError: If ``merge`` is neither None, a string nor a callable.
    """
    if merge is None:
        return None
    if isinstance(merge, str):
        try:
            return STRATEGIES[merge]
        except KeyError:
            known = ", ".join(sorted(STRATEGIES))
            raise KeyError(f"unknown merge strategy {merge!r}; known: {known}") from None
    if not callable(merge):
        raise TypeError(f"merge must be a strategy name or a callable, not {type(merge).__name__}")
    return merge


def _tolerance_to_json(tolerance: Any) -> Any:
    if tolerance is None:
        return None
    if isinstance(tolerance, numpy.timedelta64):
        unit, count = numpy.datetime_data(tolerance.dtype)
        return {"value": int(tolerance.astype(numpy.int64)) * count, "unit": unit}
    return float(tolerance)


def _tolerance_from_json(payload: Any) -> Any:
    if payload is None:
        return None
    if isinstance(payload, Mapping):
        value, unit = payload.get("value"), payload.get("unit")
        if isinstance(value, bool) or not isinstance(value, int) or not isinstance(unit, str):
            raise ValueError(f"malformed timedelta tolerance {payload!r}")
        try:
            return numpy.timedelta64(value, cast(Any, unit))
        except (TypeError, ValueError) as exc:
            raise ValueError(f"malformed timedelta tolerance {payload!r}: {exc}") from None
    if isinstance(payload, bool) or not isinstance(payload, int | float):
        raise ValueError(f"malformed tolerance {payload!r}")
    return float(payload)


def to_json(strategy: str | MergeCallable) -> dict[str, Any]:
    """Return the JSON form of a built-in strategy (or of a strategy name).

    Named strategies give ``{"name": ...}``; :func:`upsert_within` strategies give
    ``{"name": "upsert_within", "tolerance": ...}`` with the tolerance as
    ``{"value": int, "unit": str}`` for a timedelta64, a float, or null.

    Raises:
        KeyError: If ``strategy`` is an unknown strategy name.
        ValueError: If ``strategy`` is a custom callable (callables never travel).
    """
    if isinstance(strategy, str):
        resolve(strategy)
        return {"name": strategy}
    if isinstance(strategy, UpsertWithin):
        return {"name": "upsert_within", "tolerance": _tolerance_to_json(strategy.tolerance)}
    for name, known in STRATEGIES.items():
        if strategy is known:
            return {"name": name}
    raise ValueError(
        f"cannot serialise custom merge callable {strategy!r}; only built-in strategies "
        "travel as JSON"
    )


def from_json(payload: Mapping[str, Any]) -> MergeCallable:
    """Rebuild a strategy from its :func:`to_json` form.

    Raises:
        KeyError: If the payload names an unknown strategy.
        ValueError: If the payload is malformed.
    """
    if not isinstance(payload, Mapping) or not isinstance(payload.get("name"), str):
        raise ValueError(f"malformed merge strategy payload {payload!r}")
    name: str = payload["name"]
    if name == "upsert_within":
        return UpsertWithin(_tolerance_from_json(payload.get("tolerance")))
    strategy = resolve(name)
    assert strategy is not None
    return strategy
