"""Dataset operations used by the collection and the merge strategies."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy

from ..errors import SchemaError
from ..schema import VariableSchema
from .dataset import Dataset
from .variable import Variable


def _concat_arrays(arrays: list[Any], axis: int) -> Any:
    if any(not isinstance(a, numpy.ndarray) and hasattr(a, "compute") for a in arrays):
        import dask.array as da

        return da.concatenate(arrays, axis=axis)
    return numpy.concatenate([numpy.asarray(a) for a in arrays], axis=axis)


def concat(datasets: Sequence[Dataset], dim: str) -> Dataset:
    """Concatenate datasets along ``dim``; variables that do not span ``dim`` come from the first.

    Every dataset must carry the same variables.
    """
    if not datasets:
        raise ValueError("concat needs at least one dataset")
    if len(datasets) == 1:
        return datasets[0]
    first = datasets[0]
    names = list(first.all_variables())
    for other in datasets[1:]:
        missing = set(names) ^ set(other.all_variables())
        if missing:
            raise ValueError(f"cannot concatenate datasets with different variables: {missing}")
    variables: dict[str, Variable] = {}
    for name in names:
        var = first.all_variables()[name]
        if dim not in var.dimensions:
            variables[name] = var
            continue
        axis = var.dimensions.index(dim)
        parts = [ds.all_variables()[name].data for ds in datasets]
        variables[name] = var.with_data(_concat_arrays(parts, axis))
    return first.replace(variables)


def full_variable(schema: VariableSchema, sizes: dict[str, int]) -> Variable:
    """Return a variable of ``schema`` filled with its fill value (zeros when there is none)."""
    shape = tuple(sizes[d] for d in schema.dimensions)
    fill = schema.fill_value
    if fill is None:
        data = numpy.zeros(shape, dtype=schema.dtype)
    else:
        data = numpy.full(shape, fill, dtype=schema.dtype)
    return Variable(schema, data)


def take(dataset: Dataset, dim: str, index: Any) -> Dataset:
    """Return ``dataset`` indexed along ``dim`` by a slice or an integer array."""
    return dataset.isel(dim, index)


def same_array(stored: numpy.ndarray[Any, Any] | None, new: numpy.ndarray[Any, Any]) -> bool:
    """Return whether ``stored`` holds exactly ``new`` (same dtype, shape and bytes)."""
    if stored is None or stored.dtype != new.dtype or stored.shape != new.shape:
        return False
    if new.dtype.hasobject:
        return False
    return numpy.ascontiguousarray(stored).tobytes() == numpy.ascontiguousarray(new).tobytes()


def check_same_variables(seen: Mapping[str, Variable], new: Mapping[str, Variable]) -> None:
    """Refuse variables of ``new`` that are absent from ``seen`` or hold other values.

    Raises:
        SchemaError: Naming the first such variable (the immutable variables of a stream of
            datasets must be the same in each).
    """
    for name, variable in new.items():
        old = seen.get(name)
        if old is None or not same_array(old.to_numpy(), variable.to_numpy()):
            raise SchemaError(
                f"immutable variable {name!r} differs from one dataset of the stream to another"
            )
