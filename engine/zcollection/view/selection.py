"""Which variables a view read or update touches, and on which side they live."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from ..schema import DatasetSchema


@dataclass(frozen=True)
class VariableSelection:
    """The variables of one view read, as absolute paths of the merged schema.

    ``view`` names are the overlay's (root) variable names; every other path is read from
    the base, split into its partitioned and immutable variables.
    """

    order: tuple[str, ...]
    view: tuple[str, ...]
    base_partitioned: tuple[str, ...]
    base_immutable: tuple[str, ...]


def select_variables(
    base: DatasetSchema,
    view: DatasetSchema,
    merged: DatasetSchema,
    variables: Iterable[str] | None,
) -> VariableSelection:
    """Resolve a whitelist mixing base and view names (None: everything).

    Raises:
        SchemaError: If a name is neither a view nor a base variable.
    """
    everything = merged.all_variables()
    if variables is None:
        wanted = set(everything)
    else:
        if isinstance(variables, str):
            variables = [variables]
        wanted = set()
        for name in variables:
            short = name.lstrip("/")
            wanted.add("/" + short if short in view.variables else base.resolve(name))
    order = tuple(p for p in everything if p in wanted)
    in_view = tuple(p[1:] for p in order if p[1:] in view.variables)
    rest = [p for p in order if p[1:] not in view.variables]
    return VariableSelection(
        order=order,
        view=in_view,
        base_partitioned=tuple(p for p in rest if not everything[p].immutable),
        base_immutable=tuple(p for p in rest if everything[p].immutable),
    )


__all__ = ["VariableSelection", "select_variables"]
