"""Conversions between zcollection Datasets and xarray Datasets (root group only)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy

from ..schema import Dimension, SchemaBuilder
from .variable import Variable

if TYPE_CHECKING:
    import xarray

    from .dataset import Dataset


def _xarray() -> Any:
    try:
        import xarray
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise ImportError(
            "xarray is not installed; install the 'xarray' extra: "
            "pip install 'zcollection-flight[xarray]'"
        ) from exc
    return xarray


def to_xarray(dataset: Dataset, group: str | None) -> xarray.Dataset:
    """Convert the variables of one group of ``dataset`` to an xarray Dataset."""
    xr = _xarray()
    node = dataset if group in (None, "/") else dataset.get_group(group)
    data_vars = {}
    for name, var in node.variables.items():
        attrs = dict(var.schema.attrs)
        if var.fill_value is not None:
            attrs["_FillValue"] = var.fill_value
        data_vars[name] = xr.Variable(var.dimensions, var.data, attrs=attrs)
    return xr.Dataset(data_vars, attrs=dict(node.attrs))


def from_xarray(ds: xarray.Dataset) -> Dataset:
    """Build a flat Dataset from an xarray Dataset, inferring the schema."""
    from .dataset import Dataset

    builder = SchemaBuilder()
    for dim, size in ds.sizes.items():
        builder.with_dimension(str(dim), size=int(size))
    for key, value in ds.attrs.items():
        builder.with_attribute(str(key), value)
    arrays: dict[str, Any] = {}
    for name, xvar in {**dict(ds.coords), **dict(ds.data_vars)}.items():
        attrs = dict(xvar.attrs)
        fill_value = attrs.pop("_FillValue", xvar.encoding.get("_FillValue"))
        if isinstance(fill_value, float) and numpy.isnan(fill_value) and xvar.dtype.kind != "f":
            fill_value = None
        builder.with_variable(
            str(name),
            dtype=xvar.dtype,
            dimensions=tuple(str(d) for d in xvar.dims),
            fill_value=fill_value,
            attrs=attrs,
        )
        arrays[str(name)] = xvar.data
    schema = builder.build()
    variables = [Variable(schema.variables[n], data) for n, data in arrays.items()]
    return Dataset(schema, variables, attrs=dict(ds.attrs))


__all__ = ["Dimension", "from_xarray", "to_xarray"]
