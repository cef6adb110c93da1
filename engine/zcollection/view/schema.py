"""The view's schema: validation against the base and the merged base + overlay schema."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace

from ..errors import SchemaError
from ..schema import DatasetSchema, VariableSchema


def build_view_schema(
    base: DatasetSchema, axis: str, variables: Iterable[VariableSchema]
) -> DatasetSchema:
    """Return the view schema: the base's root dimensions plus the view's variables.

    Raises:
        SchemaError: If there are no variables, if a variable does not span ``axis`` or uses a
            dimension that is not a root dimension of the base, or if a variable shadowing a
            base variable does not have the same dimensions.
    """
    if isinstance(variables, VariableSchema):
        variables = [variables]
    items = list(variables)
    if not items:
        raise SchemaError("a view needs at least one variable")
    for var in items:
        if not isinstance(var, VariableSchema):
            raise SchemaError(
                f"view variables must be VariableSchema objects, not {type(var).__name__}"
            )
    schema = DatasetSchema(
        dimensions=base.dimensions,
        variables={var.name: var.with_immutable(False) for var in items},
    )
    check_view_schema(base, axis, schema)
    return schema.with_partition_axis(axis)


def check_view_schema(base: DatasetSchema, axis: str, view: DatasetSchema) -> None:
    """Check that the view schema ``view`` can overlay ``base`` partitioned along ``axis``.

    Raises:
        SchemaError: If it cannot.
    """
    if view.groups:
        raise SchemaError("view variables live at the root; nested groups are not supported")
    for name, var in view.variables.items():
        unknown = [d for d in var.dimensions if d not in base.dimensions]
        if unknown:
            raise SchemaError(
                f"view variable {name!r} uses dimension(s) {unknown} that are not root "
                f"dimensions of the base collection ({', '.join(base.dimensions)})"
            )
        if axis not in var.dimensions:
            raise SchemaError(
                f"view variable {name!r} must span the partitioning dimension {axis!r}; "
                f"its dimensions are {var.dimensions}"
            )
        shadowed = base.variables.get(name)
        if shadowed is not None and shadowed.dimensions != var.dimensions:
            raise SchemaError(
                f"view variable {name!r} shadows the base variable of the same name, so it "
                f"must have its dimensions {shadowed.dimensions}, not {var.dimensions}"
            )
    view.with_partition_axis(axis)
    merged_schema(base, axis, view)


def merged_schema(base: DatasetSchema, axis: str, view: DatasetSchema) -> DatasetSchema:
    """Return the schema of the merged dataset: base variables, then view variables.

    A view variable named like a root variable of the base takes its place.
    """
    variables = dict(base.variables)
    variables.update(view.variables)
    return replace(base, variables=variables).with_partition_axis(axis)


__all__ = ["build_view_schema", "check_view_schema", "merged_schema"]
