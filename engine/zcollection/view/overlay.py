"""Reading and writing the overlay arrays of one view partition."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

import numpy

from ..collection import Collection
from ..collection.layout import parents
from ..collection.zarr_io import (
    PARTITION_KEY_ATTR,
    array_shape,
    join,
    read_array,
    read_group_attrs,
    write_array,
    write_group,
)
from ..data import Variable
from ..data.ops import full_variable
from ..errors import SchemaError
from ..schema import DatasetSchema
from .selection import VariableSelection


async def base_length(base: Collection, path: str) -> int:
    """Return the number of rows of the base partition at ``path`` (from array metadata)."""
    zs = base.store.zarr_store()
    for var_path, var in base.schema.all_variables().items():
        if var.immutable:
            continue
        shape = await array_shape(zs, join(path, var_path))
        if shape is not None:
            return shape[var.dimensions.index(base.axis)]
    return 0


def dimension_sizes(schema: DatasetSchema, axis: str, length: int) -> dict[str, int]:
    """Return the size of every dimension of ``schema`` in a partition of ``length`` rows."""
    sizes = {name: dim.size or 0 for name, dim in schema.all_dimensions().items()}
    sizes[axis] = length
    return sizes


def expected_shape(var: Any, sizes: dict[str, int]) -> tuple[int, ...]:
    """Return the shape an array of variable schema ``var`` has in a partition."""
    return tuple(sizes[d] for d in var.dimensions)


async def load_merged(
    base: Collection,
    merged: DatasetSchema,
    view_zs: Any,
    path: str,
    selection: VariableSelection,
) -> tuple[dict[str, Variable], int]:
    """Return the partitioned variables of one partition, base and overlay merged.

    Returns the variables keyed by absolute path and the partition's length. Overlay arrays
    come from ``view_zs``; an overlay variable with no array in this partition (or a stale
    one whose length no longer matches the base partition) shows the base variable it
    shadows, if any, else its fill value.
    """
    length = await base_length(base, path)
    sizes = dimension_sizes(merged, base.axis, length)
    arrays = await asyncio.gather(*(read_array(view_zs, join(path, n)) for n in selection.view))
    result: dict[str, Variable] = {}
    fall_through: list[str] = []
    for name, array in zip(selection.view, arrays, strict=True):
        var = merged.variables[name]
        if array is not None and array.shape == expected_shape(var, sizes):
            result["/" + name] = Variable(var, array)
        elif name in base.schema.variables:
            fall_through.append(name)
        else:
            result["/" + name] = full_variable(var, sizes)
    from_base = [*selection.base_partitioned, *("/" + n for n in fall_through)]
    if from_base:
        loaded = await base.load_partition_async(path, variables=from_base)
        for rel, variable in loaded.all_variables().items():
            if rel in fall_through:
                var = merged.variables[rel]
                data = numpy.asarray(variable.to_numpy()).astype(var.dtype, copy=False)
                result["/" + rel] = Variable(var, data)
            else:
                result["/" + rel] = variable
    return result, length


def coerce_result(
    result: Any, view: DatasetSchema, sizes: dict[str, int], path: str
) -> dict[str, numpy.ndarray[Any, Any]]:
    """Check what an update function returned for partition ``path``; return its arrays.

    Raises:
        TypeError: If ``result`` is not a mapping.
        SchemaError: If it names a variable the view does not have, or if an array has the
            wrong shape or a dtype that cannot be cast to the variable's.
    """
    if not isinstance(result, Mapping):
        raise TypeError(
            "a view update function must return a dict {view variable: array}, "
            f"not {type(result).__name__}"
        )
    arrays: dict[str, numpy.ndarray[Any, Any]] = {}
    unknown = []
    for key, value in result.items():
        name = key.lstrip("/") if isinstance(key, str) else key
        if name not in view.variables:
            unknown.append(key)
            continue
        var = view.variables[name]
        data = value.to_numpy() if isinstance(value, Variable) else numpy.asarray(value)
        shape = expected_shape(var, sizes)
        if data.shape != shape:
            raise SchemaError(
                f"partition {path!r}: view variable {name!r} must have shape {shape} "
                f"{var.dimensions}, the update function returned {data.shape}"
            )
        if data.dtype != var.dtype:
            try:
                data = data.astype(var.dtype, casting="same_kind")
            except TypeError as exc:
                raise SchemaError(
                    f"partition {path!r}: view variable {name!r} is {var.dtype}, the update "
                    f"function returned {data.dtype}"
                ) from exc
        arrays[name] = data
    if unknown:
        raise SchemaError(
            f"the update function returned unknown view variable(s) {unknown}; "
            f"the view has {', '.join(view.variables)}"
        )
    return arrays


async def write_overlay(
    zs: Any,
    view: DatasetSchema,
    path: str,
    key: tuple[tuple[str, int], ...],
    arrays: dict[str, numpy.ndarray[Any, Any]],
) -> None:
    """Write the overlay arrays of one partition; the arrays it does not name stay as they are.

    The partition group (with its key attribute) is written last.
    """
    await asyncio.gather(
        *(
            write_array(zs, join(path, name), view.variables[name], data, view)
            for name, data in arrays.items()
        )
    )
    for parent in reversed(parents(path)):
        if await read_group_attrs(zs, parent) is None:
            await write_group(zs, parent)
    await write_group(zs, path, {PARTITION_KEY_ATTR: [[name, value] for name, value in key]})


__all__ = ["base_length", "coerce_result", "dimension_sizes", "load_merged", "write_overlay"]
