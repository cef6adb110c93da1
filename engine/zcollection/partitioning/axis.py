"""The variable that holds a collection's axis values (rows are compared and selected on it)."""

from __future__ import annotations

from ..schema import DatasetSchema
from .base import Partitioning


def axis_variable(schema: DatasetSchema, axis: str, partitioning: Partitioning) -> str:
    """Return the 1-D root variable along ``axis`` named like it, else the first key variable.

    Merge strategies compare rows on it and row selections apply to it; falls back to
    ``axis`` itself when no such variable exists.
    """
    for name in (axis, *partitioning.variables):
        var = schema.variables.get(name)
        if var is not None and var.dimensions == (axis,):
            return name
    return axis
