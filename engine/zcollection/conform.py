"""Checking user data against a collection schema before anything is written."""

from __future__ import annotations

from typing import Any

import numpy

from .data import Dataset, Variable
from .errors import PartitionError, SchemaError
from .schema import DatasetSchema


def _cast(name: str, data: Any, dtype: numpy.dtype[Any]) -> Any:
    src = numpy.dtype(getattr(data, "dtype", None) or numpy.asarray(data).dtype)
    if src == dtype:
        return data
    if not numpy.can_cast(src, dtype, casting="safe"):
        raise SchemaError(
            f"variable {name!r} has dtype {src}, the collection stores {dtype}; "
            "casting would lose information: convert it explicitly"
        )
    return data.astype(dtype)


def conform(
    dataset: Dataset,
    schema: DatasetSchema,
    axis: str,
    *,
    required: tuple[str, ...] = (),
    require_all: bool = True,
) -> Dataset:
    """Return ``dataset`` rebound to the collection ``schema`` (dtypes cast safely).

    Raises:
        SchemaError: On unknown variables, dimension or shape mismatches, unsafe dtype casts,
            or (with ``require_all``) missing partitioned variables.
        PartitionError: If a variable named in ``required`` is missing.
    """
    if not isinstance(dataset, Dataset):
        raise SchemaError(f"expected a zcollection.Dataset, got {type(dataset).__name__}")
    known = schema.all_variables()
    given = {("/" + k): v for k, v in dataset.all_variables().items()}
    missing_keys = [r for r in required if "/" + r.lstrip("/") not in given]
    if missing_keys:
        raise PartitionError(f"the dataset lacks the partitioning variable(s) {missing_keys}")
    unknown = sorted(set(given) - set(known))
    if unknown:
        raise SchemaError(f"unknown variable(s) {unknown}; the collection has {sorted(known)}")
    if require_all:
        missing = sorted(p for p, v in known.items() if not v.immutable and p not in given)
        if missing:
            raise SchemaError(f"the dataset lacks partitioned variable(s) {missing}")
    sizes = {name: dim.size for name, dim in schema.all_dimensions().items()}
    axis_length: int | None = None
    variables: dict[str, Variable] = {}
    for path, var in given.items():
        target = known[path]
        if tuple(var.dimensions) != target.dimensions:
            raise SchemaError(
                f"variable {path!r} has dimensions {var.dimensions}, the collection declares "
                f"{target.dimensions}"
            )
        if var.data is None:
            raise SchemaError(f"variable {path!r} has no data")
        for dim, length in zip(var.dimensions, var.shape, strict=True):
            if dim == axis:
                if axis_length is None:
                    axis_length = length
                elif axis_length != length:
                    raise SchemaError(
                        f"variable {path!r} has {length} rows along {axis!r}, others {axis_length}"
                    )
            elif sizes.get(dim) is not None and sizes[dim] != length:
                raise SchemaError(
                    f"variable {path!r} has {dim}={length}, the collection declares "
                    f"{dim}={sizes[dim]}"
                )
        data = _cast(path, var.data, target.dtype)
        variables[path.lstrip("/")] = Variable(target, data)
    return Dataset(schema_for(schema, variables), variables, attrs=dict(schema.attrs))


def schema_for(schema: DatasetSchema, variables: dict[str, Any]) -> DatasetSchema:
    """Return ``schema`` restricted to the variables present (empty groups pruned)."""
    return schema.select(["/" + k for k in variables]) if variables else schema.select([])
